"""Shadow and paper sessions: the same loop with the live feed, the wall clock and a
commit per bar. Starting on a db that holds a session resumes it (cron-friendly)."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from pathlib import Path

import msgspec

from njord import amend, strategies
from njord.adapters.binance import BinanceClient
from njord.adapters.live_feed import LiveFeed
from njord.config import Config, stored_config
from njord.core.strategy import Strategy
from njord.core.time import MINUTE_MS
from njord.data.history import StoredFeed
from njord.data.polled import Polled
from njord.errors import ConfigError
from njord.log import Level, SessionLog
from njord.manifest import Manifest
from njord.store import amendments as amend_store
from njord.store import db
from njord.store import venue as venue_store
from njord.store.amendments import Amendment
from njord.store.history import last_bar_ms, qc_events, stored_bar_blobs
from njord.store.runs import SqliteManifestStore
from njord.wiring import Session, check_live_bars, new_manifest, open_session, parse_utc


class LiveRun(msgspec.Struct, kw_only=True):
    session: Session
    strategy: Strategy
    feed: LiveFeed
    stored: Polled | None  # a restart's committed bars, rebuilt before the live ones
    resume_after_ms: int | None


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
) -> LiveRun:
    """`origins`: where each key of `config` came from; a resumed session takes the keys
    the user gave (not defaults) as amendments, or refuses them (njord.amend)."""
    check_live_bars(config)
    existing, amendments = _stored_manifest(db_path)
    changes: list[amend.Change] = []
    if existing is not None:
        if existing.mode != mode:
            raise ConfigError(f"{db_path} holds a {existing.mode} session, not a {mode} one")
        current = amend.effective(stored_config(existing.config_toml), amendments)
        config, changes = amend.reconcile(
            current, config, origins or {}, session=f"{existing.run_id} in {db_path}"
        )
    else:
        config = msgspec.structs.replace(
            config, runtime=msgspec.structs.replace(config.runtime, mode=mode)
        )
    client = BinanceClient(config.venue.base_url, recv_window_ms=config.venue.recv_window_ms)
    live = LiveFeed(
        client,
        symbol=config.data.symbol,
        max_bars=max_bars,
        deadline=deadline,
        poll_s=poll_s,
        connect_timeout_s=config.venue.connect_timeout_s if existing is None else None,
        log=lambda level, msg, ctx: log.log("feed", _level(level), msg, **ctx),
    )
    if existing is None:
        cls = strategies.resolve(config.strategy.name)
        strategy = cls(strategies.parse_params(cls, config.strategy.params))
        live.next_ms = parse_utc(config.data.start, "data.start")
        manifest = new_manifest(config, cls, live.sources())
        session = open_session(db_path, config=config, manifest=manifest, log=log)
        return LiveRun(
            session=session, strategy=strategy, feed=live, stored=None, resume_after_ms=None
        )
    session = open_session(db_path, config=config, manifest=None, log=log)
    conn = session.conn
    last = last_bar_ms(conn)
    # A bar whose decisions committed (phase 1) but not its reports: the restart finishes
    # it from the stored bars; the live feed starts after it.
    decided = max(venue_store.decided_bar_ms(conn) or -1, -1 if last is None else last)
    amend.record(session, changes, after_bar_ms=last)
    stored = StoredFeed(stored_bar_blobs(conn), symbol=config.data.symbol, events=qc_events(conn))
    cls = strategies.from_identity(existing.strategy)
    strategy = cls(strategies.parse_params(cls, config.strategy.params))
    live.next_ms = decided + MINUTE_MS if decided >= 0 else parse_utc(config.data.start, "")
    return LiveRun(
        session=session,
        strategy=strategy,
        feed=live,
        stored=Polled(stored),
        resume_after_ms=last if last is not None else -1,
    )


def _stored_manifest(path: Path) -> tuple[Manifest | None, list[Amendment]]:
    if not path.exists() or path.stat().st_size == 0:
        return None, []
    conn = db.open_reader(path, upgrade=True)  # paper/shadow write: an older db migrates
    try:
        return SqliteManifestStore(conn).load(), amend_store.load(conn)
    finally:
        conn.close()


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
