"""SessionWriter: everything a bar produced goes into the db inside one transaction."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import Any

import apsw
import msgspec

from njord import events as ev
from njord.core.book import Book, IntentRow, Outbox
from njord.data.history import BarBatch
from njord.data.qc import QcEvent, QcSummary
from njord.errors import MismatchError
from njord.log import LogRecord, SessionLog
from njord.records import Fill
from njord.store import lease as leases
from njord.store import logs as log_store
from njord.store import venue
from njord.store.portfolio import SqlitePortfolioStore, SqliteSnapshotStore

_json = msgspec.json.Encoder(order="sorted").encode
GENESIS = "0" * 64


def chain_hash(prev: str, kind: str, ref: str, payload: str) -> str:
    return hashlib.sha256(f"{prev}|{kind}|{ref}|{payload}".encode()).hexdigest()


def equity_digest(rows: Sequence[Sequence[int]]) -> str:
    # Tuples and lists both encode as msgpack arrays: the writer's tuples and the
    # auditor's lists hash alike without a copy.
    return hashlib.sha256(msgspec.msgpack.encode(rows)).hexdigest()


def intent_payload(r: IntentRow) -> dict[str, Any]:
    return {
        "seq": r.seq,
        "symbol": r.intent.symbol,
        "side": r.intent.side,
        "type": r.intent.type,
        "qty_e8": r.qty_e8,
        "limit_e8": r.limit_e8,
        "tag": r.intent.tag,
        "allowed": int(r.verdict.allowed),
        "reason": r.verdict.reason,
        "client_order_id": r.client_order_id,
    }


def fill_payload(f: Fill) -> dict[str, Any]:
    return {
        "client_order_id": f.client_order_id,
        "ts_ms": f.ts_ms,
        "side": f.side,
        "qty_e8": f.qty_e8,
        "price_e8": f.price_e8,
        "notional_e8": f.notional_e8,
        "fee_e8": f.fee_e8,
        "realised_e8": f.realised_e8,
    }


def log_payload(r: LogRecord) -> dict[str, Any]:
    return {
        "ts_ms": r.ts_ms,
        "component": r.component,
        "level": r.level,
        "msg": r.msg,
        "context": r.context,
    }


class Control(msgspec.Struct, frozen=True):
    seq: int
    command: str
    reason: str
    posted_by: str


def applied_controls(conn: apsw.Connection) -> dict[int, list[Control]]:
    """Controls already applied, by the bar they were applied at (for replays)."""
    by_bar: dict[int, list[Control]] = {}
    for bar_ts, *fields in conn.execute(
        "SELECT bar_ts_ms, seq, command, reason, posted_by FROM controls "
        "WHERE applied_ms IS NOT NULL ORDER BY seq"
    ):
        by_bar.setdefault(int(bar_ts), []).append(Control(*fields))
    return by_bar


class SessionWriter:
    def __init__(
        self, conn: apsw.Connection, *, run_id: str, log: SessionLog, lease: leases.Lease
    ) -> None:
        self.conn = conn
        self.run_id = run_id
        self.log = log
        self.lease = lease
        self.portfolio = SqlitePortfolioStore(conn)
        self.snapshots = SqliteSnapshotStore(conn)
        self._equity: list[tuple[int, int, int, int, int]] = []
        self._metrics: list[tuple[int, str, float]] = []
        self._in_txn = False
        self._decisions: list[tuple[int, int, str, str, str, str, str]] = []
        self._seq, self._prev_hash, self._log_seq = 0, GENESIS, 0
        self._load_heads()
        self._book_changed = True
        self._bars_since_snapshot = 0
        self.snapshot_every = 10_080
        self.beat_every_s = 10.0
        self._beaten = time.monotonic()
        # Events wait here until their transaction commits; nothing is staged while the bus
        # has no subscriber (a backtest pays nothing for it).
        self.bus: ev.EventBus = ev.Bus(lambda msg: log.error("events", msg))
        self._staged: list[ev.Event] = []
        self._deliveries: list[tuple[int, str, str, str, int, str]] = []

    # -- transactions ---------------------------------------------------------------------

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
        self._insert_logs(self.log.drain(), book.last_bar_ms or 0)
        self._chain_commit(book)
        self._flush_equity()
        if self._metrics:
            self.conn.executemany("INSERT INTO metrics VALUES (?, ?, ?)", self._metrics)
            self._metrics.clear()
        self.portfolio.save(book.snapshot(), symbol=book.symbol)
        self._flush_decisions()
        self._flush_deliveries()
        self._maybe_snapshot(book)
        if strategy_state is not None:
            snapshot_id = self.snapshots.save(
                book.snapshot(), bar_ts_ms=book.last_bar_ms or 0, decision_seq=self._seq
            )
            venue.save_strategy_snapshot(
                self.conn, snapshot_id, book.last_bar_ms or 0, *strategy_state
            )
        leases.beat(self.conn, self.lease)
        self.conn.execute("COMMIT")
        self._in_txn = False
        self._beaten = time.monotonic()
        self._publish()

    def record_deliveries(self, rows: Sequence[tuple[int, str, str, str, int, str]]) -> None:
        """Alert deliveries (ts_ms, channel, kind, event, ok, detail) for the next commit:
        wall-clock facts, kept outside the decision log."""
        self._deliveries += rows

    def _flush_deliveries(self) -> None:
        if self._deliveries:
            self.conn.executemany(
                "INSERT INTO alert_deliveries (ts_ms, channel, kind, event, ok, detail) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                self._deliveries,
            )
            self._deliveries.clear()

    def _stage(self, event: ev.Event) -> None:
        self._staged.append(event)

    def _publish(self) -> None:
        if self._staged:
            staged, self._staged = self._staged, []
            self.bus.publish(staged)

    def keep_alive(self) -> None:
        """While a live feed waits between bars: refresh the lease heartbeat, so a writer on
        another host never takes a waiting session for a dead one."""
        if self._in_txn or time.monotonic() - self._beaten < self.beat_every_s:
            return
        with self.conn:
            leases.beat(self.conn, self.lease)
        self._beaten = time.monotonic()

    # -- the decision log -----------------------------------------------------------------

    def _chain(self, kind: str, bar_ts_ms: int, ref: str, payload: dict[str, Any]) -> None:
        text = _json(payload).decode()
        self._seq += 1
        digest = chain_hash(self._prev_hash, kind, ref, text)
        self._decisions.append((self._seq, bar_ts_ms, kind, ref, text, self._prev_hash, digest))
        self._prev_hash = digest

    def _chain_commit(self, book: Book) -> None:
        rows = self._equity
        if not rows:
            return
        self._bars_since_snapshot += len(rows)
        payload = {
            "bars": len(rows),
            "equity_sha256": equity_digest(rows),
            "last_equity_e8": rows[-1][4],
            "peak_equity_e8": book.peak_equity_e8,
        }
        self._chain("commit", rows[-1][0], f"{rows[0][0]}-{rows[-1][0]}", payload)
        if self.bus.active:
            self._stage(
                ev.BarsCommitted(
                    first_ts_ms=rows[0][0],
                    last_ts_ms=rows[-1][0],
                    bars=len(rows),
                    equity_e8=rows[-1][4],
                )
            )

    def _flush_decisions(self) -> None:
        if self._decisions:
            self.conn.executemany(
                "INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?)", self._decisions
            )
            self._decisions.clear()

    def _insert_logs(self, records: list[LogRecord], bar_ts_ms: int) -> None:
        for record in records:
            self._alert(record)
            self._log_seq += 1
            self._chain("log", bar_ts_ms, str(self._log_seq), log_payload(record))
        log_store.insert(self.conn, records, first_seq=self._log_seq - len(records) + 1)

    def _alert(self, record: LogRecord) -> None:
        """A log record may open an alert episode or close one: once per episode."""
        kind = record.context.get("alert")
        if kind is not None:
            open_ = self.conn.execute(
                "SELECT 1 FROM alerts WHERE kind = ? AND cleared_ms IS NULL", (kind,)
            ).fetchone()
            if open_ is None:
                self.conn.execute(
                    "INSERT INTO alerts (kind, raised_ms, msg) VALUES (?, ?, ?)",
                    (kind, record.ts_ms, record.msg),
                )
                if self.bus.active:
                    self._stage(ev.AlertRaised(kind=kind, ts_ms=record.ts_ms, msg=record.msg))
        cleared = record.context.get("clear")
        if cleared is not None:
            self.conn.execute(
                "UPDATE alerts SET cleared_ms = ? WHERE kind = ? AND cleared_ms IS NULL",
                (record.ts_ms, cleared),
            )
            if self.conn.changes() and self.bus.active:
                self._stage(ev.AlertCleared(kind=cleared, ts_ms=record.ts_ms))

    def _maybe_snapshot(self, book: Book) -> None:
        if not (self._book_changed or self._bars_since_snapshot >= self.snapshot_every):
            return
        self.snapshots.save(
            book.snapshot(), bar_ts_ms=book.last_bar_ms or 0, decision_seq=self._seq
        )
        self._book_changed = False
        self._bars_since_snapshot = 0

    def rollback(self) -> None:
        if self._in_txn:
            self.conn.execute("ROLLBACK")
            self._in_txn = False
        self._equity.clear()
        self._decisions.clear()
        self._staged.clear()  # a rolled-back bar publishes nothing
        self.log.discard()
        self._load_heads()

    def _load_heads(self) -> None:
        """Continue the chain and the log numbering from what is committed."""
        last = self.conn.execute("SELECT seq, hash FROM decisions ORDER BY seq DESC LIMIT 1")
        row = last.fetchone()
        self._seq, self._prev_hash = (int(row[0]), str(row[1])) if row else (0, GENESIS)
        logs = self.conn.execute("SELECT COALESCE(max(seq), 0) FROM logs").fetchone()
        self._log_seq = int(logs[0]) if logs else 0

    def write_now(self, records: list[LogRecord], *, status: str | None = None) -> None:
        """A small transaction of its own (start/stop records, failure notes)."""
        with self.conn:
            self._insert_logs(records, records[0].ts_ms if records else 0)
            self._flush_decisions()
            self._flush_deliveries()
            if status is not None:
                self.conn.execute(
                    "UPDATE runs SET status = ? WHERE run_id = ?", (status, self.run_id)
                )
        if status is not None and self.bus.active:
            self._stage(ev.SessionStopped(run_id=self.run_id, status=status))
        self._publish()

    # -- per bar --------------------------------------------------------------------------

    def add_equity(self, ts_ms: int, close_e8: int, cash_e8: int, pos_e8: int, eq: int) -> None:
        self._equity.append((ts_ms, close_e8, cash_e8, pos_e8, eq))

    def add_bars(self, batch: BarBatch, *, keep: bool) -> None:
        blob = batch.ipc_bytes()
        self.conn.execute(
            "INSERT OR IGNORE INTO bar_chunks VALUES (?, ?, ?, ?, ?)",
            (
                batch.ts_ms[0],
                batch.ts_ms[-1],
                batch.n,
                hashlib.sha256(blob).hexdigest(),
                blob if keep else None,
            ),
        )

    def write_outbox(self, out: Outbox, book: Book) -> None:
        c = self.conn
        self._chain_outbox(out)
        c.executemany(
            "INSERT INTO intents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    r.intent_id,
                    r.bar_ts_ms,
                    r.seq,
                    r.intent.symbol,
                    r.intent.side,
                    r.intent.type,
                    r.qty_e8,
                    r.limit_e8,
                    r.intent.tag,
                    int(r.verdict.allowed),
                    r.verdict.reason,
                    _json(r.verdict.inputs).decode(),
                    r.client_order_id,
                )
                for r in out.intents
            ],
        )
        c.executemany(
            "INSERT INTO orders (client_order_id, intent_id, symbol, side, type, qty_e8, "
            "limit_e8, status, filled_qty_e8, avg_price_e8, reason, created_ms, updated_ms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (client_order_id) DO "
            "UPDATE SET status = excluded.status, filled_qty_e8 = excluded.filled_qty_e8, "
            "avg_price_e8 = excluded.avg_price_e8, reason = excluded.reason, "
            "updated_ms = excluded.updated_ms",
            [
                (
                    o.client_order_id,
                    o.intent_id,
                    o.symbol,
                    o.side,
                    o.type,
                    o.qty_e8,
                    o.limit_e8,
                    o.status,
                    o.filled_qty_e8,
                    o.avg_price_e8,
                    o.reason,
                    o.created_ms,
                    book.last_bar_ms or o.created_ms,
                )
                for o in out.orders.values()
            ],
        )
        c.executemany(
            "INSERT INTO order_events (client_order_id, ts_ms, status, detail) VALUES (?, ?, ?, ?)",
            out.order_events,
        )
        c.executemany(
            "INSERT INTO fills VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    f.fill_id,
                    f.client_order_id,
                    f.ts_ms,
                    f.symbol,
                    f.side,
                    f.qty_e8,
                    f.price_e8,
                    f.notional_e8,
                    f.fee_e8,
                    f.realised_e8,
                )
                for f in out.fills
            ],
        )
        c.executemany(
            "INSERT INTO trades (symbol, direction, qty_e8, entry_ms, entry_cost_e8, exit_ms, "
            "exit_value_e8, pnl_e8, fees_e8, entry_fill_id, exit_fill_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    t.symbol,
                    t.direction,
                    t.qty_e8,
                    t.entry_ms,
                    t.entry_cost_e8,
                    t.exit_ms,
                    t.exit_value_e8,
                    t.pnl_e8,
                    t.fees_e8,
                    t.entry_fill_id,
                    t.exit_fill_id,
                )
                for t in out.trades
            ],
        )
        for s in out.state_changes:
            c.execute(
                "INSERT INTO state_changes (ts_ms, from_state, to_state, changed_by, reason) "
                "VALUES (?, ?, ?, ?, ?)",
                (s.ts_ms, s.from_state, s.to_state, s.changed_by, s.reason),
            )
            c.execute(
                "UPDATE trading_state SET state = ?, changed_ms = ?, changed_by = ?, reason = ? "
                "WHERE id = 1",
                (s.to_state, s.ts_ms, s.changed_by, s.reason),
            )
        for component, level, msg, context in out.logs:
            self.log.log(component, level, msg, **context)  # type: ignore[arg-type]

    def _chain_outbox(self, out: Outbox) -> None:
        for r in out.intents:
            self._chain("intent", r.bar_ts_ms, str(r.intent_id), intent_payload(r))
        for coid, ts_ms, status, detail in out.order_events:
            self._chain("order", ts_ms, coid, {"status": status, "detail": detail})
        for f in out.fills:
            self._chain("fill", f.ts_ms, str(f.fill_id), fill_payload(f))
            self._book_changed = True
        for sc in out.state_changes:
            self._chain("state", sc.ts_ms, sc.to_state, msgspec.to_builtins(sc))
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

    def _flush_equity(self) -> None:
        if self._equity:
            self.conn.executemany("INSERT INTO equity VALUES (?, ?, ?, ?, ?)", self._equity)
            self._equity.clear()

    def check_rebuilt(self, book: Book) -> None:
        """After a replay, the rebuilt book must equal what the db committed."""
        problems = SqlitePortfolioStore(self.conn).differences(book.snapshot())
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
            "INSERT INTO qc_events (kind, from_ts_ms, to_ts_ms, bars) VALUES (?, ?, ?, ?)",
            [(e.kind, e.from_ts_ms, e.to_ts_ms, e.bars) for e in events],
        )

    def data_version(self) -> int:
        row = self.conn.execute("PRAGMA data_version").fetchone()
        return int(row[0]) if row else 0

    def pending_controls(self) -> list[Control]:
        return [
            Control(*row)
            for row in self.conn.execute(
                "SELECT seq, command, reason, posted_by FROM controls "
                "WHERE applied_ms IS NULL ORDER BY seq"
            )
        ]

    def applied_controls(self) -> dict[int, list[Control]]:
        return applied_controls(self.conn)

    def mark_applied(self, control: Control, *, bar_ts_ms: int, wall_ms: int) -> None:
        self._chain("control", bar_ts_ms, str(control.seq), msgspec.to_builtins(control))
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
        self.conn.execute(
            "UPDATE controls SET applied_ms = ?, bar_ts_ms = ? WHERE seq = ?",
            (wall_ms, bar_ts_ms, control.seq),
        )
