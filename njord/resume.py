"""`njord continue`: rebuild a session from its db alone and carry it on."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from njord import amend, strategies
from njord.config import Config, stored_config
from njord.data.history import HistoryFeed, StoredFeed
from njord.data.polled import Polled
from njord.data.qc import QcEvent
from njord.errors import ConfigError
from njord.launch import Launch
from njord.log import SessionLog
from njord.loop import NoPacing
from njord.manifest import DataSource, file_sha256
from njord.store import amendments as amend_store
from njord.store import db
from njord.store.history import last_bar_ms, qc_events, stored_bar_blobs
from njord.store.runs import SqliteManifestStore
from njord.wiring import open_session, parse_utc


def live_mode(path: Path) -> str | None:
    """`shadow` or `paper` when `path` holds such a session: it carries on on live bars."""
    reader = db.open_reader(path, upgrade=True)  # continue writes: an older db migrates
    try:
        manifest = SqliteManifestStore(reader).load()
    finally:
        reader.close()
    mode = manifest.mode if manifest is not None else None
    return mode if mode in ("shadow", "paper") else None


def reopen(path: Path, given: Config, origins: Mapping[str, str]) -> Launch:
    """A stored session, ready to carry on after its last committed bar. Keys the user
    gave (`origins` not default) amend it or are refused (njord.amend)."""
    reader = db.open_reader(path, upgrade=True)  # continue writes: an older db migrates
    store = SqliteManifestStore(reader)
    manifest = store.load()
    amendments = amend_store.load(reader)
    # Refuse before taking the lease: a finished session's db is not written at all.
    status = store.status(manifest.run_id) if manifest is not None else "missing"
    last = last_bar_ms(reader)
    blobs = stored_bar_blobs(reader)
    events = qc_events(reader)
    reader.close()
    if manifest is None:
        raise ConfigError(f"{path} holds no session to continue")
    if status == "finished":
        raise ConfigError(f"session {manifest.run_id} in {path} already finished")
    config, changes = amend.reconcile(
        amend.effective(stored_config(manifest.config_toml), amendments),
        given,
        origins,
        session=f"{manifest.run_id} in {path}",
    )
    cls = strategies.from_identity(manifest.strategy)
    strategy = cls(strategies.parse_params(cls, config.strategy.params))
    feed = _feed(config, manifest.data_sources, blobs, events)
    total = (
        sum(len(b) for b in feed.fresh().checked_batches()) if isinstance(feed, HistoryFeed) else 0
    )
    session = open_session(path, config=config, manifest=None, log=SessionLog(now_ms=lambda: 0))
    amend.record(session, changes, after_bar_ms=last)
    return Launch(
        session=session,
        strategy=strategy,
        feed=Polled(feed),
        resume_after_ms=last if last is not None else -1,
        total=total,
        pacer=NoPacing(),
        final_status="finished",
        out=None,
    )


def _feed(
    config: Config,
    sources: list[DataSource],
    blobs: list[bytes],
    events: list[QcEvent],
) -> HistoryFeed | StoredFeed:
    """The recorded source when it is here unchanged; else the bars stored in the db."""
    here = all(Path(s.path).exists() and file_sha256(Path(s.path)) == s.sha256 for s in sources)
    if sources and here:
        return HistoryFeed(
            Path(config.data.path),
            symbol=config.data.symbol,
            gaps=config.data.gaps,
            start_ms=parse_utc(config.data.start, "data.start"),
            end_ms=parse_utc(config.data.end, "data.end"),
        )
    if not blobs:
        raise ConfigError("the session's data source is gone and the db holds no stored bars")
    return StoredFeed(blobs, symbol=config.data.symbol, events=events)
