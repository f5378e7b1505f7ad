"""The bar loop: the one loop every mode runs (SPEC §2.2), and the only scheduler.

Per bar, three phases (SPEC §4):
1. one transaction: the bar, what the venue reported for resting orders during it, operator
   controls, the strategy's decisions, their verdicts and the NEW orders;
2. no write transaction held: the cancels and NEW orders go to the router;
3. one transaction: the router's reports are applied (fills, positions, cash), the bar is
   marked to its close and its telemetry written.
A paced session (shadow, paper, live, a slowed backtest) commits at each phase boundary,
so an order is durable as NEW before it is sent; a backtest runs the same code with the
phases sharing a transaction of `commit_every` bars. While the feed has no bar, the loop
itself applies operator controls, watches the kill file and keeps the lease alive: feeds
never call back into it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from itertools import repeat
from pathlib import Path

import msgspec

from njord import killpoints
from njord.core.bars import Timeframes
from njord.core.book import BarE8, Book, Outgoing
from njord.core.history import BarBuffer
from njord.core.reports import Report
from njord.core.time import DAY_MS
from njord.data.history import BarBatch
from njord.errors import Interrupted, InvariantViolation
from njord.ports import BarFeed, OrderRouter, Pacer, Telemetry, VenueUpkeep
from njord.reasons import TradingState
from njord.records import Bar
from njord.runners import (
    Runner,
    ask,
    bars_of,
    book_decisions,
    decide,
    load_history,
    notify_fills,
    raised_in,
    snapshot_runners,
)
from njord.store import history, versions
from njord.store import venue as venue_store
from njord.store.controls import Control
from njord.store.session import SessionWriter
from njord.swap import ReloadFailed, swap

KILL_FILE_POSTER = "kill-file"
IDLE_S = 0.2  # longest wait before controls are looked at again: a halt applies within 1 s
STATE_EVERY = 1440  # bars between strategy snapshots: a restart re-feeds at most a day
NONE: list[Control] = []  # no controls: most bars (never appended to)
NO_REPORTS: list[Report] = []  # a bar no order rests at (never appended to)


class NoPacing:
    """Backtest: bars as fast as they come."""

    paced = False

    def next_bar_at(self) -> float:
        return 0.0


class FixedPacing:
    """A slowed backtest (tests and demos of live-like control latency): a bar every
    `seconds`, committed phase by phase like a live session."""

    paced = True

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._last = 0.0

    def next_bar_at(self) -> float:
        self._last = max(time.monotonic(), self._last + self.seconds)
        return self._last


class LivePacing:
    """Shadow, paper, live: the feed's bars arrive in wall time; every phase commits."""

    paced = True

    def next_bar_at(self) -> float:
        return 0.0


class LoopResult(msgspec.Struct, kw_only=True):
    bars: int
    last_bar_ms: int | None
    equity_e8: int


class Stop:
    """Set from a signal handler or another thread (the TUI): the loop finishes the bar,
    commits and raises Interrupted."""

    requested = False


class Loop:
    def __init__(
        self,
        *,
        book: Book,
        runners: list[Runner],
        router: OrderRouter,
        writer: SessionWriter,
        commit_every: int,
        scheduled: dict[int, list[Control]],
        pacer: Pacer,
        keep_bars: bool,
        progress: Callable[[int], None],
        stop: Stop,
        kill_file: Path | None = None,
        last_bar: BarE8 | None = None,
        upkeep: VenueUpkeep | None = None,
    ) -> None:
        self.book = book
        self.runners = runners
        self._only: tuple[Runner, Timeframes] | None = None
        self._fast_path()
        self.router = router
        self.writer = writer
        self.commit_every = commit_every
        self.scheduled = scheduled
        self.pacer = pacer
        self.keep_bars = keep_bars
        self.progress = progress
        self.stop = stop
        self.kill_file = kill_file
        self.last_bar = last_bar
        self.upkeep = upkeep
        self.equity = book.ledger.cash_e8
        self.between_bars = True  # False from a bar's start to its commit
        self._since_commit = 0
        self._first = True
        self._snapped = book.bars
        self._rtt_ms: list[float] = []

    # -- scheduling -----------------------------------------------------------------------

    def _fast_path(self) -> None:
        """One strategy on one symbol, the common case: its step skips the general walk
        (set again whenever a reload gives the runner other bar buffers)."""
        runner, frames = self.runners[0], self.runners[0].timeframes
        one = len(self.runners) == 1
        self._only = (runner, frames) if one and isinstance(frames, Timeframes) else None

    def run(self, feed: BarFeed) -> LoopResult:
        writer = self.writer
        self._fast_path()  # a restart's rebuild may have swapped in a reloaded version
        try:
            while True:
                batch = feed.poll(time.monotonic() + IDLE_S)
                if batch is None:
                    if feed.finished:
                        break
                    self.service()
                    continue
                for runner in self.runners:
                    if runner.timeframes.wants_batches:
                        load_history(runner.timeframes, batch)
                writer.ensure_transaction()
                writer.add_bars(batch, keep=self.keep_bars)
                if batch.symbol is None:  # one symbol: a bar a row (no step grouping)
                    i = batch.first
                    while i < batch.n:
                        # The session's first bar applies its controls (a reload among
                        # them may swap the strategy): the bars after it may go plain.
                        plain = None if self._first else self._plain_case()
                        if plain is not None:
                            self._plain(batch, i, *plain)
                            break
                        self.bar(batch, i, i + 1)
                        i += 1
                else:
                    for i, j in batch.steps():
                        self.bar(batch, i, j)
                self.progress(batch.n - batch.first)
            writer.ensure_transaction()
            writer.commit(self.book)
        except BaseException:
            writer.rollback()
            raise
        return LoopResult(
            bars=self.book.bars, last_bar_ms=self.book.last_bar_ms, equity_e8=self.equity
        )

    def _plain_case(self) -> tuple[Runner, BarBuffer | None] | None:
        """A backtest of one strategy on one symbol's base bars with no controls scheduled
        (the common case, and the one a year of bars is timed on): its runner and bar
        buffer, for `_plain`. None: every bar goes through `bar`."""
        only, book = self._only, self.book
        if only is None or self.pacer.paced or self.scheduled or book.sleeves or book.multi:
            return None
        runner, frames = only
        return (runner, frames.base_buffer) if frames.base_only else None

    def _plain(self, batch: BarBatch, start: int, runner: Runner, buffer: BarBuffer | None) -> None:
        """`bar`'s walk over a batch, inlined for bars on which the strategy's step is all
        that happens: it runs half a million times for a year of bars, and each call it
        saves is a tenth of a second. No control applies in these bars (`_plain_case`); a
        decision or a report takes the same calls `bar` makes. `verify` re-runs a session
        with controls through `bar` alone, so the two walks are checked against each other
        byte for byte.

        While the book holds no open order, a bar can do nothing at the venue (only an
        order the book holds open rests there), and one the strategy asks nothing at is
        quiet: nothing but its mark reaches the book. Quiet bars are marked together
        (`_mark_quiet`), before the next bar that does something and before a commit; the
        router hears of a bar when it can matter to it, before that bar's orders."""
        book, writer, router, stop = self.book, self.writer, self.router, self.stop
        strategy, ctx, symbol = runner.strategy, runner.ctx, book.symbol
        on_bar, base = strategy.on_bar, runner.timeframes.base
        ts_ms, c8 = batch.ts_ms, batch.close_e8
        opens, highs, lows, closes = batch.open, batch.high, batch.low, batch.close
        volumes, filled = batch.volume, batch.filled
        commit_every, since = self.commit_every, self._since_commit
        unmarked = start  # the first of the quiet bars not yet marked
        for i in range(start, batch.n):
            self.between_bars = False
            ts = ts_ms[i]
            if not since:
                writer.ensure_transaction()
            resting = bool(book.open_orders)
            reports = NO_REPORTS
            if resting:  # the bar may fill one: the router matches it first, as `bar` does
                bar = self._bar_at(batch, i)
                reports = router.on_bar(bar)
                for report in reports:
                    book.apply(report)
            ctx.now_ms = ts
            if buffer is not None:
                buffer.end += 1
            own = Bar(ts, opens[i], highs[i], lows[i], closes[i], volumes[i], base, 1, filled[i])
            try:
                intents = on_bar(ctx, symbol, own)
                if type(intents) is not list:  # any iterable, as `ask` takes it
                    intents = list(intents)
                if ctx.intents_asked:
                    intents = [*intents, *ctx.take_submitted()]
            except Exception as e:
                raise raised_in(e, own, base) from e
            decides = bool(intents or ctx.cancels_asked)
            if resting or decides:
                if not resting:
                    self._mark_quiet(batch, unmarked, i)
                    bar = self._bar_at(batch, i)
                    if router.on_bar(bar):  # nothing rests: nothing can fill
                        raise InvariantViolation("a bar filled an order the book does not hold")
                unmarked = i + 1
                if decides:
                    book_decisions(book, bar, intents, ctx.take_cancels(), runner.id, 0)
                book.decided_ms = ts
                self.last_bar = bar
                if reports or decides:
                    self._settle(bar)
                    self.finish(bar)
                else:  # resting, and the bar filled nothing: only marked
                    equity, position = book.end_bar(bar)
                    self.equity = equity
                    writer.add_equity(ts, c8[i], book.ledger.cash_e8, position, equity)
            since += 1
            if since >= commit_every or stop.requested:
                self._mark_quiet(batch, unmarked, i + 1)
                unmarked = i + 1
                last = self.last_bar
                assert last is not None  # this bar: marked just now, or stepped
                self._since_commit = since
                self._commit_bar(last, batch, 0.0, 0.0)
                since = 0
        self._mark_quiet(batch, unmarked, batch.n)
        self._since_commit = since

    def _bar_at(self, batch: BarBatch, i: int) -> BarE8:
        """The bar of row i, the day it begins rolled in first (as `Book.start_bar`)."""
        ts = batch.ts_ms[i]
        if ts >= (self.book.day + 1) * DAY_MS:
            self.book.roll_day(ts)
        return BarE8(ts, batch.open_e8[i], batch.high_e8[i], batch.low_e8[i], batch.close_e8[i])

    def _mark_quiet(self, batch: BarBatch, lo: int, hi: int) -> None:
        """Quiet bars lo..hi-1 marked to their closes at once (`Book.end_quiet_bars`): their
        equity rows, and the book's last bar, as `Book.end_bar` would leave it bar by bar."""
        if lo >= hi:
            return
        ts, closes = batch.ts_ms[lo:hi], batch.close_e8[lo:hi]
        book = self.book
        equities, position = book.end_quiet_bars(ts, closes)
        cash = book.ledger.cash_e8
        self.writer.add_equity_rows(zip(ts, closes, repeat(cash), repeat(position), equities))
        self.equity = equities[-1]
        self.last_bar = self._bar_at(batch, hi - 1)
        book.decided_ms = ts[-1]

    def bar(self, batch: BarBatch, i: int, j: int) -> None:
        """One bar (rows i..j of the batch: one minute, a row per symbol that has a bar in
        it), three phases."""
        paced = self.pacer.paced
        # Clocks for a paced session's telemetry only: a backtest has no use for them.
        available = time.perf_counter() if paced else 0.0
        book, writer = self.book, self.writer
        self.between_bars = False
        ts = batch.ts_ms[i]
        several = batch.symbol is not None
        if several:
            bars = bars_of(batch, i, j)
            bar = bars[-1]
        else:  # the common case, built inline: this runs on every bar
            bar = BarE8(ts, batch.open_e8[i], batch.high_e8[i], batch.low_e8[i], batch.close_e8[i])
        # Controls posted while the session was down apply at its first bar; a paced
        # session looks at every bar (a backtest runs from its controls at the start).
        controls = self.pending() if paced or self._first else NONE
        if self._first:
            writer.log.date_undated(ts)
            self._first = False
        if ts in self.scheduled:
            controls = [*self.scheduled[ts], *controls]
        router = self.router
        reports = [r for b in bars for r in router.on_bar(b)] if several else router.on_bar(bar)
        # Phase 1: what the bar did to resting orders, controls, decisions, NEW orders.
        writer.ensure_transaction()
        if several:
            book.start_minute(bars)
        else:
            book.start_bar(bar)
        for report in reports:
            book.apply(report)
        if controls:
            self._apply_controls(bar, controls, batch=batch, row=i)
        ticked = time.perf_counter() if paced else 0.0
        if self._only is not None and not several:
            only, frames = self._only
            intents, cancels = ask(only.strategy, book.symbol, frames, only.ctx, batch, i, bar)
            if intents or cancels:  # most bars ask for nothing
                book_decisions(book, bar, intents, cancels, only.id, 0)
        else:
            decide(book, self.runners, batch, bars if several else [bar], i)
        book.decided_ms = ts
        self.last_bar = bar
        if paced:
            self._phase_commit()
        # Phases 2 and 3: send, then apply what the venue answered.
        self._settle(bar)
        self.finish(bar)
        self._since_commit += 1
        if self._since_commit >= self.commit_every or paced or self.stop.requested:
            self._commit_bar(bar, batch, ticked, available)
        between = self.scheduled.get(ts + 1)
        if between:  # a re-run: controls the session applied after this bar, before the next
            self._between(between)

    def _commit_bar(self, bar: BarE8, batch: BarBatch, ticked: float, available: float) -> None:
        """The bar ends its transaction: committed, then a stop asked for takes effect, the
        venue's upkeep runs and a paced session waits for its next bar."""
        paced, writer = self.pacer.paced, self.writer
        if paced:
            self._telemetry(batch, bar.ts_ms, ticked, available)
        writer.commit(self.book, strategy_state=self._state_snapshot())
        self.between_bars = True
        self._since_commit = 0
        if paced:
            killpoints.reach("committed", bar.ts_ms)
        if self.stop.requested:
            raise Interrupted("stopped on request; state committed to the last bar")
        if self.upkeep is not None:
            self.upkeep.between_bars(self.book.bars, self.apply_reports)
        if paced:
            self._wait_for_pace()

    def finish(self, bar: BarE8) -> None:
        """End of phase 3: the strategy hears of its fills; the bar is marked to its close."""
        book, writer = self.book, self.writer
        writer.ensure_transaction()
        if book.filled:
            notify_fills(book, self.runners, bar)
        equity, position = book.end_bar(bar)
        self.equity = equity
        if book.out:
            self.write_outbox()
        if book.multi:  # each symbol's close and position: the equity row has neither
            writer.add_marks(bar.ts_ms, book.marks, book.ledger.position_e8)
            writer.add_equity(bar.ts_ms, 0, book.ledger.cash_e8, 0, equity)
        else:
            writer.add_equity(bar.ts_ms, bar.close_e8, book.ledger.cash_e8, position, equity)
        if book.sleeves:  # each strategy's own account, marked like the whole
            writer.add_sleeves(bar.ts_ms, book.sleeve_marks(bar))

    def apply_reports(self, reports: list[Report]) -> None:
        """Reports learnt outside a bar (a reconciliation, a restart's lookups), applied in
        the open transaction: the strategy hears of orders they ended."""
        writer = self.writer
        writer.ensure_transaction()
        for report in reports:
            self.book.apply(report)
        notify_fills(self.book, self.runners, self.last_bar)
        if self.book.out:
            self.write_outbox()

    def write_outbox(self) -> None:
        """What the book produced, into the open transaction (with the venue's trade ids),
        logged at the bar being processed, or, between bars, just after the last one: a
        rebuild applies it before the next bar's decisions, as it happened."""
        last = self.last_bar
        stamp = 0 if last is None else last.ts_ms + (1 if self.between_bars else 0)
        self.writer.write_outbox(self.book.take_outbox(), self.book, stamp_ms=stamp)

    def _state_snapshot(self) -> tuple[bytes, bytes] | None:
        """Every `STATE_EVERY` bars, the strategy's and the timeframes' state, when the
        strategy keeps snapshots: a restart then feeds it only the bars after them."""
        if self.book.bars - self._snapped < STATE_EVERY:
            return None
        self._snapped = self.book.bars
        return snapshot_runners(self.runners)

    def _wait_for_pace(self) -> None:
        """A slowed session waits for its next bar here, servicing controls meanwhile."""
        due = self.pacer.next_bar_at()
        while (left := due - time.monotonic()) > 0:
            time.sleep(min(left, IDLE_S))
            self.service()

    def service(self) -> None:
        """Between bars: a stop ends the session; operator controls, the kill file and
        alerts take effect at once; the lease stays alive. Nothing is half-done."""
        writer = self.writer
        if self.stop.requested:
            raise Interrupted("stopped on request; state committed to the last bar")
        writer.keep_alive()
        if writer.in_transaction:
            return
        if self.last_bar is None:
            # No bar yet in this run (a venue that does not answer): its records, alerts
            # among them, still reach the db while it waits.
            if writer.log.pending:
                writer.log.date_undated(self.book.last_bar_ms or 0)
                writer.write_now(writer.log.drain())
            return
        # A reload swaps the strategy at a bar boundary: it waits for the next bar.
        waiting = [c for c in self.pending() if c.command != "reload"]
        if not waiting and not writer.log.pending:
            return
        writer.begin()
        self._between(waiting)
        writer.commit(self.book)

    def _between(self, controls: list[Control]) -> None:
        """Controls applied between bars, after the last one: by `service` as they come, and
        by a re-run (`verify`) where the session's db has them, at the last bar's open +
        1 ms, so the re-run applies them after that bar's decisions, as they happened."""
        last = self.last_bar
        assert last is not None  # both callers have stepped a bar
        self.between_bars = True
        # One at a time, each to its records: the session may have applied them in one
        # wait or in several, and a re-run, which has them all at once, must log the same.
        for control in controls:
            self.writer.ensure_transaction()
            self._apply_controls(last, [control], at_ms=last.ts_ms + 1)
            self._phase_commit(force=True)
            self._settle(last, force=True)
        self.writer.ensure_transaction()
        if self.book.out:
            self.write_outbox()

    def pending(self) -> list[Control]:
        """Controls not applied yet. While the kill file exists, a halt is added whenever
        the book would not end up HALTED (a resume or reduce does not outrun it)."""
        writer, kill_file = self.writer, self.kill_file
        controls = writer.pending_controls()
        if kill_file is not None and not _ends_halted(self.book, controls) and kill_file.exists():
            reason = f"kill file {kill_file}"
            now = time.time_ns() // 1_000_000
            writer.post_control("halt", reason, wall_ms=now, by=KILL_FILE_POSTER)
            controls = writer.pending_controls()
        return controls

    # -- phases ---------------------------------------------------------------------------

    def _phase_commit(self, *, force: bool = False) -> None:
        """End a phase: in a paced session the decisions are durable before anything is
        sent; a backtest keeps one transaction (the same path, fewer commits)."""
        book, writer = self.book, self.writer
        if not (self.pacer.paced or force):
            return
        if book.out:
            self.write_outbox()
        if self.last_bar is not None:
            venue_store.mark_decided(writer.conn, self.last_bar.ts_ms)
        writer.commit(book)
        killpoints.reach("decided", self.last_bar.ts_ms if self.last_bar else None)

    def _settle(self, bar: BarE8, *, force: bool = False) -> None:
        """Phase 2 and 3: send what the book decided, apply the answers, until the book
        wants nothing more sent (a fill that breaches the daily loss cancels the rest)."""
        book = self.book
        if not book.sending:
            return  # nothing decided to send: most bars
        outgoing = book.take_outgoing()
        while outgoing:
            reports = self._send(outgoing)
            if self.pacer.paced or force:
                killpoints.reach("sent", bar.ts_ms)
                self.writer.begin()
            for report in reports:
                book.apply(report)
            outgoing = book.take_outgoing()
            if outgoing and (self.pacer.paced or force):
                self._phase_commit(force=True)

    def _send(self, outgoing: Outgoing) -> list[Report]:
        router = self.router
        reports: list[Report] = []
        for coid in outgoing.cancels:
            reports += router.cancel(coid)
        paced = self.pacer.paced  # only a paced session's telemetry keeps round trips
        for order in outgoing.orders:
            sent = time.perf_counter() if paced else 0.0
            reports += router.submit(order)
            if paced:  # a backtest would hold one per order to its end
                self._rtt_ms.append((time.perf_counter() - sent) * 1000)
        return reports

    def _apply_controls(
        self,
        bar: BarE8,
        controls: list[Control],
        *,
        at_ms: int | None = None,
        batch: BarBatch | None = None,
        row: int = 0,
    ) -> None:
        """`at_ms`: when applied between bars, the stamp that says so (see `_between`);
        `batch` and `row`: the bar's, when applied at its start (where a reload applies)."""
        for control in controls:
            if control.command == "reload":
                self._reload(control, bar.ts_ms, batch, row)
            elif control.strategy_id:  # one sleeve's halt or resume
                at = bar.ts_ms if at_ms is None else at_ms
                self.book.sleeve_control(
                    control.command, control.strategy_id, at, by=control.posted_by
                )
            else:
                self.book.control(control.command, bar, by=control.posted_by, reason=control.reason)
            self.writer.mark_applied(
                control,
                bar_ts_ms=bar.ts_ms if at_ms is None else at_ms,
                wall_ms=time.time_ns() // 1_000_000,
            )

    def _reload(self, control: Control, ts: int, batch: BarBatch | None, row: int) -> None:
        """Swap in the strategy version the control names, before this bar's decisions;
        one that cannot be built or warmed is logged and the old version runs on."""
        conn, log = self.writer.conn, self.writer.log
        runner = next(r for r in self.runners if r.id == control.strategy_id)
        version = versions.one(conn, control.version)
        name = f"strategy {runner.id}" if runner.id else "the strategy"
        try:
            warmed = swap(
                runner, version, history.stored_bar_blobs(conn), before_ms=ts, batch=batch, row=row
            )
        except ReloadFailed as e:
            log.error(
                "strategy",
                f"reload of {name} to version {version.version} failed; the version in force "
                f"runs on: {e}",
                version=version.version,
            )
            return
        self._fast_path()  # the new buffers
        log.info(
            "strategy",
            f"{name} reloaded: version {version.version} ({version.identity.path}, source "
            f"sha256 {version.identity.sha256[:12]}), warmed on {warmed} bars",
            version=version.version,
            params=version.params,
        )

    def _telemetry(self, batch: BarBatch, ts: int, ticked: float, available: float) -> None:
        writer: Telemetry = self.writer
        now = time.perf_counter()
        writer.add_metric(ts, "strategy_tick_latency_ms", (now - ticked) * 1000)
        if batch.lag_ms is not None:
            writer.add_metric(ts, "bars_lag_ms", float(batch.lag_ms))
        for rtt in self._rtt_ms:
            writer.add_metric(ts, "order_rtt_ms", rtt)
        self._rtt_ms.clear()
        # Bar available -> decided, sent, answered and about to commit: this bar's own row.
        writer.add_metric(ts, "decision_latency_ms", (now - available) * 1000)


def _ends_halted(book: Book, controls: list[Control]) -> bool:
    """Every control of the session sets its state: the last one pending decides it."""
    controls = [c for c in controls if not c.strategy_id and c.command != "reload"]
    if controls:
        return controls[-1].command in ("halt", "flatten")
    return book.state is TradingState.HALTED
