"""Rebuilding a stored session without touching a venue (`continue`, a paper restart).

The book is rebuilt from the decision log, record by record, exactly as `njord replay`
does; the strategy is rebuilt by feeding it the stored bars in step with that log: at each
bar it sees the book as it was when it decided then (what resting orders did during the
bar is applied first, its own orders' outcomes after), and what it asks for must be what
the log says it asked for. Nothing is sent and nothing is written: no write transaction is
held, so operator controls can be posted throughout.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import msgspec

from njord import killpoints, replay
from njord.core.book import FLATTEN_SEQ, BarE8, Book
from njord.core.time import bar_index
from njord.data.history import BarBatch
from njord.errors import MismatchError, StrategyError
from njord.reasons import Reason
from njord.runners import Runner, ask_runner, bars_of, load_history, notify_fills
from njord.store import db, history, versions
from njord.swap import ReloadFailed, swap

Record = tuple[int, str, str, str]


def rebuild(
    conn: db.Connection,
    *,
    book: Book,
    runners: list[Runner],
    batches: Iterator[BarBatch],
    after_seq: int = 0,
) -> BarE8 | None:
    """Step the strategy over `batches` (the stored bars, through the last decided one)
    with the book following the decision log after `after_seq` (0, or the snapshot the
    book, strategy and timeframes were restored from); returns the last bar stepped."""
    log = _Log(history.decisions_after(conn, after_seq))
    last: BarE8 | None = None
    for batch in batches:
        for runner in runners:
            if runner.timeframes.wants_batches:
                load_history(runner.timeframes, batch)
        for i, j in batch.steps():
            ts = batch.ts_ms[i]
            killpoints.reach("rebuild", ts)
            bars = bars_of(batch, i, j)
            before, after = _split(log.take(ts), bar_index(ts, book.bar_ms), book)
            if book.multi:
                book.start_minute(bars)
            else:
                book.start_bar(bars[0])
            _apply(book, conn, before)
            _reload(conn, runners, before, batch, i)
            asked = _ask(book, runners, batch, bars, i)
            _check(asked, after, ts)
            _apply(book, conn, after)
            notify_fills(book, runners, bars[-1])
            last = bars[-1]
    _apply(book, conn, log.rest())
    book.take_outbox()
    return last


def _reload(
    conn: db.Connection, runners: list[Runner], records: list[Record], batch: BarBatch, i: int
) -> None:
    """The reloads the session applied at this bar, swapped in as it swapped them (one
    that failed then fails again, and its strategy stays)."""
    for bar_ts, kind, _, payload in records:
        if kind != "control" or '"command":"reload"' not in payload:
            continue
        control = msgspec.json.decode(payload)
        runner = next(r for r in runners if r.id == control.get("strategy_id", ""))
        version = versions.one(conn, control["version"])
        with contextlib.suppress(ReloadFailed):
            blobs = history.stored_bar_blobs(conn)
            swap(runner, version, blobs, before_ms=bar_ts, batch=batch, row=i)


def _ask(book: Book, runners: list[Runner], batch: BarBatch, bars: list[BarE8], i: int) -> int:
    """How many orders the strategies asked for at this minute, as they did then: one of
    several that raised asked for none (its sleeve's halt is in the log)."""
    asked = 0
    for runner in runners:
        try:
            made = ask_runner(book, runner, batch, bars, i)
        except StrategyError:
            if not runner.id:
                raise
            continue
        if made is None:
            continue
        asked += len(made[0])
        if made[1]:  # its cancels, as the book took them then: their reason is the strategy's
            book.cancel(bars[-1], made[1], owner=runner.id)
    return asked


class _Log:
    """The decision log read once, in order, a bar's records at a time."""

    def __init__(self, records: Iterator[Record]) -> None:
        self._records = records
        self._next: Record | None = next(records, None)

    def take(self, bar_ts: int) -> list[Record]:
        taken = []
        while self._next is not None and self._next[0] <= bar_ts:
            taken.append(self._next)
            self._next = next(self._records, None)
        return taken

    def rest(self) -> list[Record]:
        rest = [] if self._next is None else [self._next]
        return rest + list(self._records)


def _split(records: list[Record], bar_no: int, book: Book) -> tuple[list[Record], list[Record]]:
    """What happened before the strategy decided at this bar (controls, and reports on
    orders made at earlier bars), and what its decisions led to (its own orders, its
    cancels). Order ids carry the bar they were made at (`nj<key>-<bar>-<seq>`)."""
    before: list[Record] = []
    after: list[Record] = []
    mine = f"-{bar_no}-"
    for record in records:
        _, kind, ref, payload = record
        own = kind == "intent" or (
            kind in ("order", "fill", "share") and mine in _coid(kind, ref, payload)
        )
        strategy_cancel = kind == "order" and Reason.CANCELED_BY_STRATEGY in payload
        late = kind == "sleeve" and '"after":true' in payload  # halted after deciding
        (after if own or strategy_cancel or late or kind == "commit" else before).append(record)
    return before, after


def _coid(kind: str, ref: str, payload: str) -> str:
    if kind in ("order", "share"):
        return ref
    coid: str = msgspec.json.decode(payload)["client_order_id"]
    return coid


def _apply(book: Book, conn: db.Connection, records: list[Record]) -> None:
    for bar_ts, kind, ref, payload in records:
        replay.apply_record(book, conn, bar_ts, kind, ref, msgspec.json.decode(payload))


def _check(asked: int, records: list[Record], ts: int) -> None:
    """The strategy must ask for as many orders as the log says it asked for at this bar
    (a flatten's closing order is the operator's, not the strategy's)."""
    intents = [msgspec.json.decode(r[3]) for r in records if r[1] == "intent"]
    logged = [p for p in intents if p["seq"] < FLATTEN_SEQ]
    if asked != len(logged):
        raise MismatchError(
            f"rebuilding at bar {ts}: the strategy asked for {asked} orders, the "
            f"session's log holds {len(logged)}; is it the strategy that made this session?"
        )
