"""`njord verify`: re-run a backtest from its db alone and prove the same decisions."""

from __future__ import annotations

import tempfile
from pathlib import Path

import msgspec

from njord.config import stored_config
from njord.data.history import StoredFeed
from njord.errors import ConfigError, MismatchError
from njord.log import SessionLog
from njord.loop import Stop
from njord.store import db, history, versions
from njord.store.stored import read
from njord.wiring import build_runtime, open_session, run_session, stored_strategies

COMPARED = ("intent", "order", "fill", "state", "control", "sleeve", "budget", "share")


class Verified(msgspec.Struct, frozen=True, kw_only=True):
    decisions: int
    bars: int
    equity_sha256: str
    status: str  # the stored run's: only a finished one was verified to its end
    last_bar_ms: int | None


def verify(path: Path) -> Verified:
    """Re-run the committed bars; an unfinished session (stopped, interrupted, crashed) is
    re-run up to its last committed bar, which is all it decided."""
    conn = db.open_reader(path)
    try:
        with conn:  # one read transaction: a running writer cannot commit between reads
            stored = read(conn, checked=True)
            bars = history.row_count(conn, "equity")
            expected = history.decisions_of(conn, COMPARED)
            expected_equity = history.equity_sha256(conn)
    finally:
        conn.close()
    if stored is None:
        raise MismatchError(f"{path} holds no session to verify")
    manifest, status, last = stored.manifest, stored.status, stored.last_bar_ms
    if manifest.mode == "live":
        # Its fills came from a venue, which a re-run cannot ask again.
        raise ConfigError(
            f"{path} holds a live session: its fills are the venue's, so it cannot be "
            "re-run; check it with `njord audit` (the db) and `njord reconcile` (the venue)"
        )
    config = stored_config(manifest.config_toml)
    # The re-run applies the stored controls only: the session's kill file, if it is still
    # there, halted the session (a stored control), never its verification.
    config = msgspec.structs.replace(
        config, runtime=msgspec.structs.replace(config.runtime, kill_file="")
    )
    strategy = stored_strategies(manifest, config)
    with tempfile.TemporaryDirectory(prefix="njord-verify-") as tmp:
        again = Path(tmp) / "rerun.db"
        session = open_session(
            again, config=config, manifest=manifest, log=SessionLog(now_ms=lambda: 0, echo=None)
        )
        with session.conn:  # the versions its reloads swap in, as the session had them
            versions.insert(session.conn, stored.versions)
        runtime = build_runtime(
            StoredFeed(
                stored.blobs,
                symbol=config.data.symbol,
                events=stored.events,
                until_ms=None if status == "finished" else (0 if last is None else last),
            )
        )
        run_session(
            session,
            strategy=strategy,
            feed=runtime.feed,
            resume_after_ms=None,
            pacer=runtime.pacer,
            progress=lambda n: None,
            stop=Stop(),
            scheduled=stored.controls,
            amendments=stored.amendments,
            # A paced session (shadow, paper, a slowed backtest) committed each phase of a
            # bar apart, and marked the bar decided in between: its log is in that order.
            phases=stored.decided_bar_ms is not None,
        )
        got, got_equity = (
            history.decisions_of(session.conn, COMPARED),
            history.equity_sha256(session.conn),
        )
        session.close()
    if status != "finished":
        # Killed after a bar's decisions were committed and before its fills (a paced
        # session commits each phase): that bar is not a committed bar, and the re-run
        # stops before it. What came between bars is stamped at the last one + 1 ms.
        through = (last or 0) + 1
        expected = [d for d in expected if d[0] <= through]
        got = [d for d in got if d[0] <= through]
    _compare(expected, got)
    if got_equity != expected_equity:
        raise MismatchError("the re-run's equity curve differs from the stored one")
    return Verified(
        decisions=len(expected),
        bars=bars,
        equity_sha256=expected_equity,
        status=status,
        last_bar_ms=last,
    )


def _compare(
    expected: list[tuple[int, str, str, str]], got: list[tuple[int, str, str, str]]
) -> None:
    for n, (a, b) in enumerate(zip(expected, got, strict=False)):
        if a != b:
            raise MismatchError(
                f"decision {n + 1} differs: stored {a[1]} {a[2]} {_short(a[3])}, "
                f"re-run {b[1]} {b[2]} {_short(b[3])}"
            )
    if len(expected) != len(got):
        raise MismatchError(f"stored {len(expected)} decisions, the re-run made {len(got)}")


def _short(payload: str) -> str:
    return payload if len(payload) < 120 else payload[:117] + "..."
