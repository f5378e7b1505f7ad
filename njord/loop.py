"""The bar loop: the one loop every mode runs (SPEC §2.2).

Feed → strategy → book (risk, router, ledger) → store. Modes differ only in what is
plugged in: the feed, the router, the pacer (how to wait for the next bar) and the
commit cadence. This module is the only caller of those ports.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec

from njord.core.book import BarE8, Book, OrderRouter
from njord.core.strategy import Context, Strategy
from njord.data.history import BarBatch
from njord.data.qc import utc
from njord.errors import Interrupted, StrategyError
from njord.ports import BarFeed, Clock
from njord.records import Bar
from njord.store.session import Control, SessionWriter


class SimClock:
    """Backtest: no waiting; controls are looked at on every commit."""

    paced = False

    def wait(self) -> None:
        return None


class PacedSimClock:
    """A slowed backtest (tests and demos of live-like control latency)."""

    paced = True

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def wait(self) -> None:
        time.sleep(self.seconds)


class LoopResult(msgspec.Struct, kw_only=True):
    bars: int
    last_bar_ms: int | None
    equity_e8: int


class Stop:
    """Set from a signal handler: the loop finishes the bar, commits and raises Interrupted."""

    requested = False


def run(
    *,
    feed: BarFeed,
    book: Book,
    strategy: Strategy,
    ctx: Context,
    router: OrderRouter,
    writer: SessionWriter,
    commit_every: int,
    resume_after_ms: int | None,
    scheduled: dict[int, list[Control]],
    pacer: Clock,
    keep_bars: bool,
    progress: Callable[[int], None],
    stop: Stop,
) -> LoopResult:
    since_commit = 0
    equity = book.ledger.cash_e8
    writer.begin()
    # `scheduled`: controls a replay or a verification re-applies at the bar they were
    # applied at first. Controls posted while the session was down apply at its next bar.
    controls = writer.pending_controls()
    try:
        for batch in feed.batches():
            if resume_after_ms is None or batch.ts_ms[-1] > resume_after_ms:
                writer.add_bars(batch, keep=keep_bars)
            for i in range(batch.n):
                ts = batch.ts_ms[i]
                bar = BarE8(
                    ts, batch.open_e8[i], batch.high_e8[i], batch.low_e8[i], batch.close_e8[i]
                )
                if resume_after_ms is not None:
                    if ts <= resume_after_ms:
                        # Rebuilding state from the stored bars: same code, nothing written.
                        again = scheduled.get(ts, [])
                        _step(book, strategy, ctx, router, batch, i, bar, again, None)
                        if book.out:
                            book.take_outbox()
                        continue
                    writer.check_rebuilt(book)
                    resume_after_ms = None
                if ts in scheduled:
                    controls = [*scheduled[ts], *controls]
                equity, position = _step(
                    book, strategy, ctx, router, batch, i, bar, controls, writer
                )
                controls = []
                if book.out:
                    writer.write_outbox(book.take_outbox(), book)
                writer.add_equity(ts, bar.close_e8, book.ledger.cash_e8, position, equity)
                since_commit += 1
                if since_commit >= commit_every or pacer.paced or stop.requested:
                    writer.commit(book)
                    since_commit = 0
                    if stop.requested:
                        raise Interrupted("stopped by signal; state committed to the last bar")
                    pacer.wait()  # outside any transaction: other processes may write
                    writer.begin()
                    controls = writer.pending_controls()
            progress(batch.n)
        if resume_after_ms is not None:
            writer.check_rebuilt(book)
        writer.commit(book)
    except BaseException:
        writer.rollback()
        raise
    return LoopResult(bars=book.bars, last_bar_ms=book.last_bar_ms, equity_e8=equity)


def _step(
    book: Book,
    strategy: Strategy,
    ctx: Context,
    router: OrderRouter,
    batch: BarBatch,
    i: int,
    bar: BarE8,
    controls: list[Control],
    writer: SessionWriter | None,
) -> tuple[int, int]:
    first_fill = book.next_fill
    book.start_bar(bar, router)
    for control in controls:
        book.control(control.command, bar, router, by=control.posted_by, reason=control.reason)
        if writer is not None:
            writer.mark_applied(control, bar_ts_ms=bar.ts_ms, wall_ms=time.time_ns() // 1_000_000)
    ctx.now_ms = bar.ts_ms
    view = Bar(
        bar.ts_ms, batch.open[i], batch.high[i], batch.low[i], batch.close[i], batch.volume[i]
    )
    try:
        intents = strategy.on_bar(ctx, book.symbol, view)
        submitted = ctx.take_submitted()
    except Exception as e:
        raise StrategyError(f"strategy raised in on_bar at bar {utc(bar.ts_ms)}: {e!r}") from e
    if intents or submitted:
        book.decide(bar, [*intents, *submitted], router)
    if book.next_fill != first_fill:
        _notify_fills(book, strategy, ctx, first_fill)
    return book.end_bar(bar)


def _notify_fills(book: Book, strategy: Strategy, ctx: Context, first_fill: int) -> None:
    for fill in book.out.fills:
        if fill.fill_id >= first_fill:
            try:
                strategy.on_fill(ctx, fill)
            except Exception as e:
                raise StrategyError(f"strategy raised in on_fill: {e!r}") from e
