"""Shadow, paper and live sessions: the same loop with the live feed, the wall clock and a
commit per bar. Starting on a db that holds a session resumes it (cron-friendly).

Live trades real money, so it starts only with three keys turned (SPEC §11): the config's
`runtime.mode = "live"`, the environment's `NJORD_ENABLE_LIVE=1` and the `live` command
itself; with the venue's API key and secret present; and with the venue's clock and
filters read (no db is made before that). Its db is written with `synchronous = FULL`."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import msgspec

from njord import amend, secrets
from njord import config as configuration
from njord.adapters.binance import BinanceClient
from njord.adapters.binance_router import BinanceRouter
from njord.adapters.live_feed import LiveFeed, Log
from njord.adapters.live_merged import MergedLiveFeed
from njord.config import Config, check_symbols, stored_config
from njord.core.strategy import Strategy
from njord.core.time import MINUTE_MS
from njord.errors import ConfigError
from njord.log import Level, SessionLog
from njord.store.stored import restore
from njord.wiring import (
    Runtime,
    Session,
    build_runtime,
    check_live_bars,
    instantiate,
    new_manifest,
    open_session,
    parse_utc,
    stored_strategies,
    strategies_of,
)


class LiveRun(msgspec.Struct, kw_only=True):
    session: Session
    strategy: Strategy | list[Strategy]  # the one strategy, or each sleeve's in config order
    runtime: Runtime  # the live feed, and a restart's committed bars to rebuild from
    resume_after_ms: int | None
    router: BinanceRouter | None = None  # live: the venue, started (clock and filters read)


def parse_duration(text: str, flag: str = "--for") -> float:
    """`55m`, `2h`, `90s`, `1d` in seconds."""
    found = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", text.strip())
    if found is None:
        raise ConfigError(f"{flag} takes a duration like 55m, 2h or 90s, got {text!r}")
    return float(found.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[found.group(2)]


def open_live(
    config: Config,
    db_path: Path,
    *,
    mode: str,
    log: SessionLog,
    max_bars: int | None,
    deadline: float | None,
    poll_s: float = 1.0,
    origins: Mapping[str, str] | None = None,
    env_prefix: str = "NJORD_",
) -> LiveRun:
    """`origins`: where each key of `config` came from; a resumed session takes the keys
    the user gave (not defaults) as amendments, or refuses them (njord.amend)."""
    check_live_bars(config)
    if mode == "live":
        check_live_only(config)
        _switched_on(env_prefix)
        if not db_path.exists() and config.runtime.mode != "live":
            raise ConfigError(
                f'runtime.mode is "{config.runtime.mode}" in the config; live trading needs '
                f'runtime.mode = "live" there, {env_prefix}ENABLE_LIVE=1 and `njord live`'
            )
    stored = restore(db_path, upgrade=True)  # paper/shadow write: an older db migrates
    existing = stored.manifest if stored is not None else None
    changes: list[amend.Change] = []
    if stored is not None and existing is not None:
        if existing.mode != mode:
            raise ConfigError(f"{db_path} holds a {existing.mode} session, not a {mode} one")
        current = amend.effective(stored_config(existing.config_toml), stored.amendments)
        config, changes = amend.reconcile(
            current, config, origins or {}, session=f"{existing.run_id} in {db_path}"
        )
    else:
        check_symbols(config)
        config = msgspec.structs.replace(
            config, runtime=msgspec.structs.replace(config.runtime, mode=mode)
        )
    router = None
    if mode == "live":
        config = _live_config(config)
        signed = venue_client(config, env_prefix)
        router = BinanceRouter(
            signed,
            symbol=config.data.symbol,
            max_consecutive_failures=config.venue.max_consecutive_failures,
        )
        router.start()  # the clock measured and the filters read, or no session at all
    # The feed's own client (its requests run in a thread of their own, beside the
    # router's), counting against the venue's limits with the router's limiter.
    client = BinanceClient(
        config.venue.base_url,
        recv_window_ms=config.venue.recv_window_ms,
        limiter=router.client.limiter if router is not None else None,
    )
    live = _feed(
        client,
        config.data.session_symbols,
        log=log,
        max_bars=max_bars,
        deadline=deadline,
        poll_s=poll_s,
        connect_timeout_s=config.venue.connect_timeout_s if stored is None else None,
    )
    if stored is None:
        planned = strategies_of(config)
        strategy = instantiate(config, planned)
        live.start_at(parse_utc(config.data.start, "data.start"))
        manifest = new_manifest(config, [cls for cls, _ in planned], live.sources())
        session = open_session(db_path, config=config, manifest=manifest, log=log)
        return LiveRun(
            session=session,
            strategy=strategy,
            runtime=build_runtime(live),
            resume_after_ms=None,
            router=router,
        )
    session = open_session(db_path, config=config, manifest=None, log=log)
    amend.record(session, changes, after_bar_ms=stored.last_bar_ms)
    strategy = stored_strategies(stored.manifest, config)
    # A bar whose decisions committed (phase 1) but not its reports: the restart finishes
    # it from the stored bars; the live feed starts after it.
    through = stored.through_ms
    live.start_at(through + MINUTE_MS if through >= 0 else parse_utc(config.data.start, ""))
    return LiveRun(
        session=session,
        strategy=strategy,
        runtime=build_runtime(live, stored=stored),
        resume_after_ms=through,
        router=router,
    )


def check_live_only(config: Config) -> None:
    """What paper and shadow run and live does not yet: one symbol, one strategy."""
    if config.data.symbols:
        raise ConfigError(
            "data.symbols: a live session trades one symbol for now, data.symbol "
            "(paper and shadow trade several)"
        )
    if config.strategies:
        raise ConfigError(
            "[[strategies]]: a live session runs one strategy for now, [strategy] "
            "(paper and shadow run several)"
        )


def _feed(
    client: BinanceClient,
    symbols: tuple[str, ...],
    *,
    log: SessionLog,
    max_bars: int | None,
    deadline: float | None,
    poll_s: float,
    connect_timeout_s: float | None,
) -> LiveFeed | MergedLiveFeed:
    """The symbol's klines feed, or one per symbol merged by minute (`data.symbols`: the
    session's limits are the merge's, and each feed's records name its symbol)."""

    def said(prefix: str) -> Log:
        return lambda level, msg, ctx: log.log("feed", _level(level), f"{prefix}{msg}", **ctx)

    if len(symbols) == 1:
        return LiveFeed(
            client,
            symbol=symbols[0],
            max_bars=max_bars,
            deadline=deadline,
            poll_s=poll_s,
            connect_timeout_s=connect_timeout_s,
            log=said(""),
        )
    feeds = [
        LiveFeed(
            client,
            symbol=symbol,
            poll_s=poll_s,
            connect_timeout_s=connect_timeout_s,
            log=said(f"{symbol}: "),
        )
        for symbol in symbols
    ]
    return MergedLiveFeed(feeds, max_bars=max_bars, deadline=deadline, log=said(""))


def _live_config(config: Config) -> Config:
    """Live writes every commit through to the disk (recorded in the manifest's config)."""
    if config.store.synchronous == "FULL":
        return config
    return msgspec.structs.replace(
        config, store=msgspec.structs.replace(config.store, synchronous="FULL")
    )


def _switched_on(env_prefix: str) -> None:
    switch = f"{env_prefix}ENABLE_LIVE"
    if configuration.environ().get(switch) != "1":
        raise ConfigError(
            f"live trading is off: set {switch}=1 in the environment to send real orders"
        )


def venue_client(config: Config, env_prefix: str) -> BinanceClient:
    """The venue's signed client, once the keys are there (over TLS, but to loopback)."""
    url = urlsplit(config.venue.base_url)
    if url.scheme != "https" and url.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigError(
            f"venue.base_url {config.venue.base_url} is not https: live trading sends its "
            "API key with every order, so only a loopback venue may be plain http"
        )
    env = configuration.environ()
    vault = secrets.provider(env, env_prefix, config.venue.secrets_file)
    key, secret = (vault.get(name) for name in secrets.SECRET_NAMES)
    if key is None or secret is None:
        raise ConfigError(
            f"live trading needs the venue's API key and secret: set {env_prefix}BINANCE_API_KEY "
            f"and {env_prefix}BINANCE_API_SECRET, or venue.secrets_file (mode 0600)"
        )
    return BinanceClient(
        config.venue.base_url,
        api_key=key,
        api_secret=secret,
        recv_window_ms=config.venue.recv_window_ms,
    )


def _level(level: str) -> Level:
    return "WARNING" if level == "WARNING" else "ERROR" if level == "ERROR" else "INFO"


def deadline_from(duration: str | None, until: str | None) -> float | None:
    if duration and until:
        raise ConfigError("--for and --until exclude each other")
    # Refused before any db exists: a limit already reached would create a session that
    # never runs a bar.
    if duration:
        seconds = parse_duration(duration)
        if seconds <= 0:
            raise ConfigError(f"--for must be longer than 0, got {duration!r}")
        return time.monotonic() + seconds
    if until:
        end_ms = parse_utc(until, "--until")
        assert end_ms is not None
        left = (end_ms - time.time() * 1000) / 1000
        if left <= 0:
            raise ConfigError(f"--until {until} is in the past; give a time still to come (UTC)")
        return time.monotonic() + left
    return None
