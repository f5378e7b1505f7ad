"""`njord continue`: carry a stored session on from its db alone (a backtest here; a
shadow or paper session goes on in its own mode through njord.live)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from njord import amend
from njord.config import Config, stored_config
from njord.data.history import HistoryFeed, StoredFeed
from njord.data.merged import MergedFeed
from njord.data.qc import QcEvent
from njord.errors import ConfigError
from njord.launch import Launch
from njord.log import SessionLog
from njord.manifest import DataSource, file_sha256
from njord.store.stored import restore
from njord.wiring import build_runtime, history_of, open_session, stored_strategies


def live_mode(path: Path) -> str | None:
    """`shadow`, `paper` or `live` when `path` holds such a session: it carries on on live
    bars (live with its switches turned, as `njord live --db D` would)."""
    stored = restore(path, upgrade=True)  # continue writes: an older db migrates
    mode = stored.manifest.mode if stored is not None else None
    return mode if mode in ("shadow", "paper", "live") else None


def reopen(path: Path, given: Config, origins: Mapping[str, str]) -> Launch:
    """A stored session, ready to carry on after its last committed bar. Keys the user
    gave (`origins` not default) amend it or are refused (njord.amend)."""
    stored = restore(path, upgrade=True)  # continue writes: an older db migrates
    # Refused before taking the lease: a finished session's db is not written at all.
    if stored is None:
        raise ConfigError(f"{path} holds no session to continue")
    manifest = stored.manifest
    if stored.status == "finished":
        raise ConfigError(f"session {manifest.run_id} in {path} already finished")
    config, changes = amend.reconcile(
        amend.effective(stored_config(manifest.config_toml), stored.amendments),
        given,
        origins,
        session=f"{manifest.run_id} in {path}",
    )
    strategy = stored_strategies(manifest, config)
    feed = _feed(config, manifest.data_sources, stored.blobs, stored.events)
    total = (
        sum(len(b) for b in feed.fresh().checked_batches())
        if isinstance(feed, (HistoryFeed, MergedFeed))
        else 0
    )
    session = open_session(path, config=config, manifest=None, log=SessionLog(now_ms=lambda: 0))
    amend.record(session, changes, after_bar_ms=stored.last_bar_ms)
    runtime = build_runtime(feed)
    return Launch(
        session=session,
        strategy=strategy,
        feed=runtime.feed,
        resume_after_ms=stored.through_ms,
        total=total,
        pacer=runtime.pacer,
        final_status="finished",
        out=None,
    )


def _feed(
    config: Config,
    sources: list[DataSource],
    blobs: list[bytes],
    events: list[QcEvent],
) -> HistoryFeed | MergedFeed | StoredFeed:
    """The recorded source when it is here unchanged; else the bars stored in the db."""
    here = all(Path(s.path).exists() and file_sha256(Path(s.path)) == s.sha256 for s in sources)
    if sources and here:
        return history_of(config)
    if not blobs:
        raise ConfigError("the session's data source is gone and the db holds no stored bars")
    return StoredFeed(blobs, symbol=config.data.symbol, events=events)
