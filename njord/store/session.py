"""The session's transaction coordinator: everything a bar produced goes into the db inside
one transaction, or nothing does.

`SessionWriter` owns the writer's connection and the transaction boundaries; it buffers
what the loop hands it (equity rows, metrics, alert deliveries) and, at the commit, writes
them with the decision log (`chain.Chain`), the alert episodes (`alerts`), the control
marks (`controls`), the book (`portfolio`) and the lease heartbeat. Domain events wait for
that commit and are published after it, once; a rolled-back bar publishes nothing.
"""

from __future__ import annotations

import bisect
import hashlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

import apsw
import msgspec

from njord import events as ev
from njord import killpoints
from njord.core.book import BarE8, Book, Outbox, VenueTrade
from njord.data.history import BarBatch, ipc_bytes
from njord.data.qc import QcEvent, QcSummary
from njord.errors import MismatchError
from njord.log import LogRecord, SessionLog
from njord.ports import PortfolioStore, SnapshotStore
from njord.store import alerts, outbox, venue
from njord.store import amendments as amendment_rows
from njord.store import controls as queue
from njord.store import lease as leases
from njord.store import logs as log_store
from njord.store.amendments import Amendment
from njord.store.chain import Chain, equity_digest, fill_payload, intent_payload, share_payload
from njord.store.controls import Control
from njord.store.portfolio import SqlitePortfolioStore, SqliteSnapshotStore


class SessionWriter:
    def __init__(
        self, conn: apsw.Connection, *, run_id: str, log: SessionLog, lease: leases.Lease
    ) -> None:
        self.conn = conn
        self.run_id = run_id
        self.log = log
        self.lease = lease
        self.portfolio: PortfolioStore = SqlitePortfolioStore(conn)
        self.snapshots: SnapshotStore = SqliteSnapshotStore(conn)
        self.chain = Chain(conn)
        self._equity: list[tuple[int, int, int, int, int]] = []
        stored = conn.execute("SELECT max(last_ts_ms) FROM bar_chunks").fetchone()
        self._bars_to: int | None = stored[0] if stored else None  # the last bar stored
        self._marks: list[tuple[int, str, int, int]] = []  # several symbols' closes
        self._sleeves: list[tuple[int, str, int, int]] = []  # several strategies' accounts
        # What the decision steps wrote, held for the commit (a statement per table per
        # transaction), with the venue's trade ids of their fills.
        self._rows = outbox.Rows()
        self._trade_ids: list[VenueTrade] = []
        self._metrics: list[tuple[int, str, float]] = []
        self._in_txn = False
        self.several = False  # a several-symbol session: fills chain their symbol too
        self._book_changed = True
        self._bars_since_snapshot = 0
        self.snapshot_every = 10_080
        self.beat_every_s = 10.0
        self._beaten = time.monotonic()
        # Events wait here until their transaction commits; nothing is staged while the bus
        # has no subscriber (a backtest pays nothing for it).
        self.bus: ev.EventBus = ev.Bus(lambda msg: log.error("events", msg))
        self._staged: list[ev.Event] = []
        self._deliveries: list[alerts.Delivery] = []

    # -- transactions ---------------------------------------------------------------------

    @contextmanager
    def bar_transaction(self, book: Book) -> Iterator[None]:
        """BEGIN IMMEDIATE; the body writes the bar; COMMIT (buffers, chain, book, lease
        heartbeat), or ROLLBACK when anything in it raises, the commit included."""
        self.begin()
        try:
            yield
            self.commit(book)
        except BaseException:
            self.rollback()
            raise

    def begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        self._in_txn = True

    def ensure_transaction(self) -> None:
        if not self._in_txn:
            self.begin()

    @property
    def in_transaction(self) -> bool:
        return self._in_txn

    def add_metric(self, bar_ts_ms: int, name: str, value: float) -> None:
        """Telemetry rows go in with the next commit."""
        self._metrics.append((bar_ts_ms, name, value))

    def commit(self, book: Book, *, strategy_state: tuple[bytes, bytes] | None = None) -> None:
        """End a transaction on a bar boundary: flush buffers, chain, save the book, beat.
        `strategy_state` (the strategy's and the timeframes' snapshots): saved beside a book
        snapshot of this very point of the decision log, for a restart to start from."""
        closes_bar = bool(self._equity)  # phase 3 (or a backtest's chunk): its equity rows
        self._flush_rows()  # first: the book's lots refer to its fills
        self._insert_logs(self.log.drain(), book.last_bar_ms or 0)
        self._chain_commit(book)
        self._flush_equity()
        if self._metrics:
            self.conn.executemany("INSERT INTO metrics VALUES (?, ?, ?)", self._metrics)
            self._metrics.clear()
        self.portfolio.save(book.snapshot(), symbols=book.symbols)
        self.chain.flush()
        self._flush_deliveries()
        self._maybe_snapshot(book)
        if strategy_state is not None:
            snapshot_id = self.snapshots.save(
                book.snapshot(), bar_ts_ms=book.last_bar_ms or 0, decision_seq=self.chain.seq
            )
            venue.save_strategy_snapshot(
                self.conn, snapshot_id, book.last_bar_ms or 0, *strategy_state
            )
        leases.beat(self.conn, self.lease)
        if closes_bar:
            killpoints.reach("commit", book.last_bar_ms)
        self.conn.execute("COMMIT")
        self._in_txn = False
        self._beaten = time.monotonic()
        self._publish()

    def rollback(self) -> None:
        # A COMMIT that failed on a full disk or an I/O error may have rolled back already.
        if self._in_txn and self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        self._in_txn = False
        self._equity.clear()
        self._marks.clear()
        self._sleeves.clear()
        self._rows.clear()
        self._trade_ids.clear()
        self._staged.clear()  # a rolled-back bar publishes nothing
        self.log.discard()
        self.chain.discard()

    def write_now(
        self,
        records: list[LogRecord],
        *,
        status: str | None = None,
        amendments: Sequence[Amendment] = (),
    ) -> None:
        """A small transaction of its own: start/stop records, failure notes, config
        amendments with the record that announces them."""
        try:
            with self.conn:
                if amendments:
                    amendment_rows.insert(self.conn, amendments)
                self._insert_logs(records, records[0].ts_ms if records else 0)
                self.chain.flush()
                self._flush_deliveries()
                if status is not None:
                    self.conn.execute(
                        "UPDATE runs SET status = ? WHERE run_id = ?", (status, self.run_id)
                    )
        except BaseException:
            self.chain.discard()  # e.g. a full disk: the next commit chains from the db's head
            raise
        if status is not None and self.bus.active:
            self._stage(ev.SessionStopped(run_id=self.run_id, status=status))
        self._publish()

    def keep_alive(self) -> None:
        """While a live feed waits between bars: refresh the lease heartbeat, so a writer on
        another host never takes a waiting session for a dead one."""
        if self._in_txn or time.monotonic() - self._beaten < self.beat_every_s:
            return
        with self.conn:
            leases.beat(self.conn, self.lease)
        self._beaten = time.monotonic()

    def data_version(self) -> int:
        row = self.conn.execute("PRAGMA data_version").fetchone()
        return int(row[0]) if row else 0

    # -- events ---------------------------------------------------------------------------

    def record_deliveries(self, rows: Sequence[alerts.Delivery]) -> None:
        """Alert deliveries (ts_ms, channel, kind, event, ok, detail) for the next commit:
        wall-clock facts, kept outside the decision log."""
        self._deliveries += rows

    def _flush_deliveries(self) -> None:
        if self._deliveries:
            alerts.insert_deliveries(self.conn, self._deliveries)
            self._deliveries.clear()

    def _stage(self, event: ev.Event) -> None:
        self._staged.append(event)

    def _publish(self) -> None:
        if self._staged:
            staged, self._staged = self._staged, []
            self.bus.publish(staged)

    # -- the decision log -----------------------------------------------------------------

    def _chain_commit(self, book: Book) -> None:
        rows = self._equity
        if not rows:
            return
        self._bars_since_snapshot += len(rows)
        payload: dict[str, object] = {
            "bars": len(rows),
            "equity_sha256": equity_digest(rows),
            "last_equity_e8": rows[-1][4],
            "peak_equity_e8": book.peak_equity_e8,
        }
        if self._marks:  # several symbols: their closes and positions, chained alike
            payload["marks_sha256"] = equity_digest(self._marks)
        if self._sleeves:  # several strategies: each one's cash and equity, chained alike
            payload["sleeves_sha256"] = equity_digest(self._sleeves)
        self.chain.append("commit", rows[-1][0], f"{rows[0][0]}-{rows[-1][0]}", payload)
        if self.bus.active:
            self._stage(
                ev.BarsCommitted(
                    first_ts_ms=rows[0][0],
                    last_ts_ms=rows[-1][0],
                    bars=len(rows),
                    equity_e8=rows[-1][4],
                )
            )

    def _insert_logs(self, records: list[LogRecord], bar_ts_ms: int) -> None:
        for record in records:
            raised = alerts.apply(self.conn, record)
            if raised and self.bus.active:
                self._staged += raised
            self.chain.append_log(record, bar_ts_ms)
        log_store.insert(self.conn, records, first_seq=self.chain.log_seq - len(records) + 1)

    def _maybe_snapshot(self, book: Book) -> None:
        if not (self._book_changed or self._bars_since_snapshot >= self.snapshot_every):
            return
        self.snapshots.save(
            book.snapshot(), bar_ts_ms=book.last_bar_ms or 0, decision_seq=self.chain.seq
        )
        self._book_changed = False
        self._bars_since_snapshot = 0

    # -- per bar --------------------------------------------------------------------------

    def add_equity(self, ts_ms: int, close_e8: int, cash_e8: int, pos_e8: int, eq: int) -> None:
        self._equity.append((ts_ms, close_e8, cash_e8, pos_e8, eq))

    def add_equity_rows(self, rows: Iterable[tuple[int, int, int, int, int]]) -> None:
        """Several bars' rows at once (`add_equity`'s, in bar order)."""
        self._equity.extend(rows)

    def add_marks(
        self, ts_ms: int, marks: dict[str, BarE8], position_e8: Callable[[str], int]
    ) -> None:
        """A several-symbol session's minute: each symbol's last close and its position,
        in symbol order (the `marks` rows beside the minute's equity row)."""
        for symbol in sorted(marks):
            self._marks.append((ts_ms, symbol, marks[symbol].close_e8, position_e8(symbol)))

    def add_sleeves(self, ts_ms: int, rows: list[tuple[str, int, int]]) -> None:
        """A several-strategy session's minute: each sleeve's (id, cash, equity)."""
        self._sleeves += [(ts_ms, strategy_id, cash, equity) for strategy_id, cash, equity in rows]

    def add_bars(self, batch: BarBatch, *, keep: bool) -> None:
        """The batch's bars not stored yet: a restart's first batch may begin before the
        last stored bar (a rebuild from a strategy snapshot cuts a stored chunk), and a bar
        stored twice would be re-run twice by `verify`."""
        arrow, stored_to = batch.arrow, self._bars_to
        if stored_to is not None and batch.ts_ms[0] <= stored_to:
            if batch.ts_ms[-1] <= stored_to:
                return
            arrow = arrow.slice(bisect.bisect_right(batch.ts_ms, stored_to))
        blob = ipc_bytes(arrow)
        ts = arrow.column("ts_ms")
        first, last = ts[0].as_py(), ts[-1].as_py()
        self.conn.execute(
            "INSERT OR IGNORE INTO bar_chunks VALUES (?, ?, ?, ?, ?)",
            (first, last, len(arrow), hashlib.sha256(blob).hexdigest(), blob if keep else None),
        )
        self._bars_to = last

    def write_outbox(self, out: Outbox, book: Book, *, stamp_ms: int) -> None:
        """What one decision step produced: chained, its rows (and the venue's trade ids)
        written at the commit, its events staged. Its order, fill and state records are
        logged at `stamp_ms`, the loop's bar (not the venue's time of the event): a rebuild
        replays them at the bar they happened in."""
        self._chain_outbox(out, stamp_ms)
        self._rows.add(out, last_bar_ms=book.last_bar_ms)
        self._trade_ids += out.trade_ids
        for component, level, msg, context in out.logs:
            self.log.log(component, level, msg, **context)  # type: ignore[arg-type]

    def _chain_outbox(self, out: Outbox, stamp_ms: int) -> None:
        for r in out.intents:
            self.chain.append("intent", r.bar_ts_ms, str(r.intent_id), intent_payload(r))
        for coid, _, status, detail in out.order_events:
            self.chain.append("order", stamp_ms, coid, {"status": status, "detail": detail})
        for f in out.fills:
            self.chain.append(
                "fill", stamp_ms, str(f.fill_id), fill_payload(f, symbol=self.several)
            )
            self._book_changed = True
        for sc in out.state_changes:
            self.chain.append("state", stamp_ms, sc.to_state, msgspec.to_builtins(sc))
        for change in out.sleeve_changes:
            halt: dict[str, object] = {"halted": change.halted}
            if change.after:
                halt["after"] = True
            self.chain.append("sleeve", stamp_ms, change.strategy_id, halt)
        for share in out.shares:  # a net order's fill, as each sleeve's order got it
            self.chain.append("share", stamp_ms, share.client_order_id, share_payload(share))
        for strategy_id, day, budget_e8, equity_e8 in out.budgets:
            budget = {"day": day, "budget_e8": budget_e8, "equity_e8": equity_e8}
            self.chain.append("budget", stamp_ms, strategy_id, budget)
        if self.bus.active:
            self._stage_outbox(out)

    def _stage_outbox(self, out: Outbox) -> None:
        for r in out.intents:
            self._stage(
                ev.Decided(
                    intent_id=r.intent_id,
                    bar_ts_ms=r.bar_ts_ms,
                    symbol=r.intent.symbol,
                    side=r.intent.side,
                    qty_e8=r.qty_e8,
                    allowed=r.verdict.allowed,
                    reason=r.verdict.reason,
                    client_order_id=r.client_order_id,
                )
            )
        for coid, ts_ms, status, detail in out.order_events:
            self._stage(
                ev.OrderReport(client_order_id=coid, ts_ms=ts_ms, status=status, detail=detail)
            )
        for f in out.fills:
            self._stage(
                ev.Filled(
                    fill_id=f.fill_id,
                    client_order_id=f.client_order_id,
                    ts_ms=f.ts_ms,
                    symbol=f.symbol,
                    side=f.side,
                    qty_e8=f.qty_e8,
                    price_e8=f.price_e8,
                    fee_e8=f.fee_e8,
                )
            )
        for sc in out.state_changes:
            self._stage(
                ev.TradingStateChanged(
                    ts_ms=sc.ts_ms,
                    from_state=sc.from_state,
                    to_state=sc.to_state,
                    by=sc.changed_by,
                    reason=sc.reason,
                )
            )

    def _flush_rows(self) -> None:
        self._rows.flush(self.conn)
        if self._trade_ids:
            venue.save_trade_ids(self.conn, self._trade_ids)
            self._trade_ids.clear()

    def _flush_equity(self) -> None:
        if self._equity:
            self.conn.executemany("INSERT INTO equity VALUES (?, ?, ?, ?, ?)", self._equity)
            self._equity.clear()
        if self._marks:
            self.conn.executemany("INSERT INTO marks VALUES (?, ?, ?, ?)", self._marks)
            self._marks.clear()
        if self._sleeves:
            self.conn.executemany("INSERT INTO sleeve_equity VALUES (?, ?, ?, ?)", self._sleeves)
            self._sleeves.clear()

    def check_rebuilt(self, book: Book) -> None:
        """After a replay, the rebuilt book must equal what the db committed."""
        problems = self.portfolio.differences(book.snapshot())
        if problems:
            raise MismatchError(f"replayed state differs from the committed one: {problems[0]}")

    # -- qc and controls ------------------------------------------------------------------

    def save_qc(self, summary: QcSummary, events: list[QcEvent]) -> None:
        s = summary
        self.conn.execute(
            "INSERT OR REPLACE INTO qc_summary VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                s.policy,
                s.bars_in,
                s.bars_out,
                s.gaps,
                s.missing_bars,
                s.filled_bars,
                s.duplicates,
                s.first_gap_ms,
                s.last_gap_ms,
            ),
        )
        self.conn.execute("DELETE FROM qc_events")
        self.conn.executemany(
            "INSERT INTO qc_events (kind, from_ts_ms, to_ts_ms, bars, symbol) "
            "VALUES (?, ?, ?, ?, ?)",
            [(e.kind, e.from_ts_ms, e.to_ts_ms, e.bars, e.symbol) for e in events],
        )

    def post_control(self, command: str, reason: str, *, wall_ms: int, by: str) -> int:
        """The session's own controls (its kill file, a strategy fault's halt) go straight
        into the queue, unchecked; the loop applies them at its next bar. Returns the seq."""
        return queue.post_control(self.conn, command, reason, wall_ms=wall_ms, by=by)

    def pending_controls(self) -> list[Control]:
        return queue.pending(self.conn)

    def applied_controls(self) -> dict[int, list[Control]]:
        return queue.applied(self.conn)

    def mark_applied(self, control: Control, *, bar_ts_ms: int, wall_ms: int) -> None:
        self.chain.append("control", bar_ts_ms, str(control.seq), msgspec.to_builtins(control))
        if self.bus.active:
            self._stage(
                ev.ControlApplied(
                    seq=control.seq,
                    command=control.command,
                    bar_ts_ms=bar_ts_ms,
                    by=control.posted_by,
                    reason=control.reason,
                )
            )
        queue.mark_applied(self.conn, control, bar_ts_ms=bar_ts_ms, wall_ms=wall_ms)
