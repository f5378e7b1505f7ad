"""The bar loop: the one loop every mode runs (SPEC §2.2).

Feed → strategy → book (risk, router, ledger) → store. Modes differ only in what is
plugged in: the feed, the router, the pacer (how to wait for the next bar) and the
commit cadence. This module is the only caller of those ports.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from njord.core.bars import Timeframes
from njord.core.book import BarE8, Book, OrderRouter
from njord.core.strategy import Context, Strategy
from njord.data.history import BarBatch
from njord.data.qc import utc
from njord.errors import Interrupted, StrategyError
from njord.ports import BarFeed, Clock
from njord.reasons import TradingState
from njord.records import Bar, OrderIntent
from njord.store import controls as control_queue
from njord.store.session import Control, SessionWriter

KILL_FILE_POSTER = "kill-file"


class SimClock:
    """Backtest: no waiting; controls are looked at on every commit."""

    paced = False

    def wait(self) -> None:
        return None

    def set_idle(self, callback: Callable[[], None] | None) -> None:
        return None


class PacedSimClock:
    """A slowed backtest (tests and demos of live-like control latency)."""

    paced = True

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def wait(self) -> None:
        time.sleep(self.seconds)

    def set_idle(self, callback: Callable[[], None] | None) -> None:
        return None  # it commits every bar and reads controls then: nothing to do idle


class LiveClock:
    """Shadow, paper, live: the feed blocks until a bar closes, and sleeps through this
    clock, so operator controls apply while it waits. Every bar commits (paced)."""

    paced = True

    def __init__(self) -> None:
        self._idle: Callable[[], None] | None = None

    def wait(self) -> None:
        return None

    def set_idle(self, callback: Callable[[], None] | None) -> None:
        self._idle = callback

    def sleep(self, seconds: float) -> None:
        """The feed's wait between polls, in slices short enough for a 1 s halt."""
        deadline = time.monotonic() + seconds
        while True:
            if self._idle is not None:
                self._idle()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.2))


class LoopResult(msgspec.Struct, kw_only=True):
    bars: int
    last_bar_ms: int | None
    equity_e8: int


class Stop:
    """Set from a signal handler or another thread (the TUI): the loop finishes the bar,
    commits and raises Interrupted."""

    requested = False


def run(
    *,
    feed: BarFeed,
    book: Book,
    strategy: Strategy,
    timeframes: Timeframes,
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
    kill_file: Path | None = None,
) -> LoopResult:
    since_commit = 0
    equity = book.ledger.cash_e8
    last_bar: BarE8 | None = None

    def pending() -> list[Control]:
        """Controls not applied yet. While the kill file exists, a halt is added whenever
        the book would not end up HALTED (a resume or reduce does not outrun it)."""
        controls = writer.pending_controls()
        if kill_file is not None and not _ends_halted(book, controls) and kill_file.exists():
            reason = f"kill file {kill_file}"
            now = time.time_ns() // 1_000_000
            control_queue.post_control(
                writer.conn, "halt", reason, wall_ms=now, by=KILL_FILE_POSTER
            )
            controls = writer.pending_controls()
        return controls

    # `scheduled`: controls a replay or a verification re-applies at the bar they were
    # applied at first. Controls posted while the session was down apply at its next bar.
    controls = pending()

    def between_bars() -> None:
        """While a live feed waits for the next bar, operator controls still take effect,
        alerts reach the db, and a stop request ends the session (nothing is half-done)."""
        if stop.requested:
            raise Interrupted("stopped on request; state committed to the last bar")
        writer.keep_alive()
        if writer.in_transaction:
            return
        if last_bar is None:
            # No bar yet in this run (a venue that does not answer): its records, alerts
            # among them, still reach the db while it waits.
            if writer.log.pending:
                writer.log.date_undated(book.last_bar_ms or 0)
                writer.write_now(writer.log.drain())
            return
        waiting = pending()
        if not waiting and not writer.log.pending:
            return
        writer.begin()
        _apply(book, router, last_bar, waiting, writer)
        if book.out:
            writer.write_outbox(book.take_outbox(), book)
        writer.commit(book)

    pacer.set_idle(between_bars)
    try:
        for batch in feed.batches():
            available = time.perf_counter()
            if timeframes.wants_batches:
                timeframes.load(*batch.arrays())
            # A batch only replayed writes nothing: no transaction, so a restarted session
            # waiting for its first new bar holds no write lock (controls, heartbeats).
            if resume_after_ms is None or batch.ts_ms[-1] > resume_after_ms:
                writer.ensure_transaction()
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
                        _step(book, strategy, timeframes, ctx, router, batch, i, bar, again, None)
                        if book.out:
                            book.take_outbox()
                        continue
                    writer.check_rebuilt(book)
                    resume_after_ms = None
                if last_bar is None:
                    writer.log.date_undated(ts)
                if ts in scheduled:
                    controls = [*scheduled[ts], *controls]
                ticked = time.perf_counter()
                equity, position = _step(
                    book, strategy, timeframes, ctx, router, batch, i, bar, controls, writer
                )
                controls = []
                last_bar = bar
                if book.out:
                    writer.write_outbox(book.take_outbox(), book)
                writer.add_equity(ts, bar.close_e8, book.ledger.cash_e8, position, equity)
                since_commit += 1
                if since_commit >= commit_every or pacer.paced or stop.requested:
                    if pacer.paced:
                        _telemetry(writer, batch, ts, ticked, available)
                    writer.commit(book)
                    if pacer.paced:
                        # Bar available -> decisions handed to the router -> committed.
                        writer.add_metric(
                            ts, "decision_latency_ms", (time.perf_counter() - available) * 1000
                        )
                    since_commit = 0
                    if stop.requested:
                        raise Interrupted("stopped on request; state committed to the last bar")
                    pacer.wait()  # outside any transaction: other processes may write
                    available = time.perf_counter()  # a paced batch releases a bar per wait
                    controls = pending()
                    if batch.n > i + 1:
                        writer.ensure_transaction()
            progress(batch.n)
        if resume_after_ms is not None:
            writer.ensure_transaction()
            writer.check_rebuilt(book)
        writer.ensure_transaction()
        writer.commit(book)
    except BaseException:
        writer.rollback()
        raise
    finally:
        pacer.set_idle(None)
    return LoopResult(bars=book.bars, last_bar_ms=book.last_bar_ms, equity_e8=equity)


def _ends_halted(book: Book, controls: list[Control]) -> bool:
    """Every control sets the trading state: the last one pending decides it."""
    if controls:
        return controls[-1].command in ("halt", "flatten")
    return book.state is TradingState.HALTED


def _telemetry(
    writer: SessionWriter, batch: BarBatch, ts: int, ticked: float, available: float
) -> None:
    now = time.perf_counter()
    writer.add_metric(ts, "strategy_tick_latency_ms", (now - ticked) * 1000)
    if batch.lag_ms is not None:
        writer.add_metric(ts, "bars_lag_ms", float(batch.lag_ms))


def _apply(
    book: Book, router: OrderRouter, bar: BarE8, controls: list[Control], writer: SessionWriter
) -> None:
    for control in controls:
        book.control(control.command, bar, router, by=control.posted_by, reason=control.reason)
        writer.mark_applied(control, bar_ts_ms=bar.ts_ms, wall_ms=time.time_ns() // 1_000_000)


def _step(
    book: Book,
    strategy: Strategy,
    timeframes: Timeframes,
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
    if controls and writer is not None:
        _apply(book, router, bar, controls, writer)
    else:
        for control in controls:
            book.control(control.command, bar, router, by=control.posted_by, reason=control.reason)
    ctx.now_ms = bar.ts_ms
    own = Bar(
        bar.ts_ms,
        batch.open[i],
        batch.high[i],
        batch.low[i],
        batch.close[i],
        batch.volume[i],
        timeframes.base,
        1,
        batch.filled[i],
    )
    # One decision step per bar: what every timeframe's bar asked for, in call order.
    intents: list[OrderIntent] = []
    for view in timeframes.step(own):
        try:
            intents += strategy.on_bar(ctx, book.symbol, view)
            intents += ctx.take_submitted()
        except Exception as e:
            where = (
                utc(view.ts_ms)
                if view.timeframe == timeframes.base
                else f"{view.timeframe} {utc(view.ts_ms)}"
            )
            raise StrategyError(f"strategy raised in on_bar at bar {where}: {e!r}") from e
    cancels = ctx.take_cancels()
    if cancels:
        book.cancel(bar, cancels, router)
    if intents:
        book.decide(bar, intents, router)
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
