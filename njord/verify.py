"""`njord verify`: re-run a backtest from its db alone and prove the same decisions."""

from __future__ import annotations

import tempfile
from pathlib import Path

import msgspec

from njord.config import stored_config
from njord.data.history import StoredFeed
from njord.data.qc import utc
from njord.errors import ConfigError, MismatchError
from njord.log import SessionLog
from njord.loop import Stop
from njord.store import db, history, versions
from njord.store.stored import read
from njord.wiring import build_runtime, open_session, run_session, stored_strategies

Record = tuple[int, str, str, str]  # bar, kind, ref, payload
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
        try:
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
            )
            got, got_equity = (
                history.decisions_of(session.conn, COMPARED),
                history.equity_sha256(session.conn),
            )
        finally:  # a re-run that raised too: closed before its folder goes
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


def _compare(expected: list[Record], got: list[Record]) -> None:
    """Bar by bar, each kind's records in order. A paced session (shadow, paper, a slowed
    backtest) logs each phase of a bar as it commits it, a backtest the whole bar at its
    end, and a session may be both (a paced one carried on by `njord continue`): the kinds
    of one bar interleave differently, but each kind's records are the same, in the same
    order, whichever way the session ran."""
    mine, theirs = _by_bar(expected), _by_bar(got)
    for bar in sorted(set(mine) | set(theirs)):
        stored, again = mine.get(bar, {}), theirs.get(bar, {})
        for kind in sorted(set(stored) | set(again)):
            a, b = stored.get(kind, []), again.get(kind, [])
            for (ref_a, pay_a), (ref_b, pay_b) in zip(a, b, strict=False):
                if (ref_a, pay_a) != (ref_b, pay_b):
                    raise MismatchError(
                        f"at bar {utc(bar)} the {kind} records differ: stored {ref_a} "
                        f"{_short(pay_a)}, re-run {ref_b} {_short(pay_b)}"
                    )
            if len(a) != len(b):
                raise MismatchError(
                    f"at bar {utc(bar)} the session logged {len(a)} {kind} records, the "
                    f"re-run {len(b)}"
                )


def _by_bar(records: list[Record]) -> dict[int, dict[str, list[tuple[str, str]]]]:
    out: dict[int, dict[str, list[tuple[str, str]]]] = {}
    for bar, kind, ref, payload in records:
        out.setdefault(bar, {}).setdefault(kind, []).append((ref, payload))
    return out


def _short(payload: str) -> str:
    return payload if len(payload) < 120 else payload[:117] + "..."
