"""The decision log (`decisions`): append-only, each record carrying the hash of the one
before it, so `audit` detects an edited or deleted row.

`Chain` is the log being written: records wait in memory until the transaction that
flushes them, and a rolled-back transaction takes its records with it (the heads go back
to what is committed). The payload functions are shared with `audit`, which rebuilds the
same bytes from the rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import apsw
import msgspec

from njord.core.book import IntentRow
from njord.log import LogRecord
from njord.records import Fill

_json = msgspec.json.Encoder(order="sorted").encode
GENESIS = "0" * 64

Record = tuple[int, int, str, str, str, str, str]  # a `decisions` row


def chain_hash(prev: str, kind: str, ref: str, payload: str) -> str:
    return hashlib.sha256(f"{prev}|{kind}|{ref}|{payload}".encode()).hexdigest()


def equity_digest(rows: Sequence[Sequence[int | str]]) -> str:
    # Tuples and lists both encode as msgpack arrays: the writer's tuples and the
    # auditor's lists hash alike without a copy.
    return hashlib.sha256(msgspec.msgpack.encode(rows)).hexdigest()


def intent_payload(r: IntentRow) -> dict[str, Any]:
    """A several-strategy session's intent names its strategy (a one-strategy session's
    log, from before there were several, does not)."""
    extra: dict[str, Any] = {"strategy_id": r.strategy_id} if r.strategy_id else {}
    if r.netted:
        extra["netted"] = r.netted
    return {
        **extra,
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


def fill_payload(f: Fill, *, symbol: bool = False) -> dict[str, Any]:
    """`symbol`: a several-symbol session's fill names its symbol (a one-symbol session's
    log, from before there were several, does not)."""
    extra: dict[str, Any] = {"symbol": f.symbol} if symbol else {}
    if f.strategy_id:
        extra["strategy_id"] = f.strategy_id
    return {
        **extra,
        "client_order_id": f.client_order_id,
        "ts_ms": f.ts_ms,
        "side": f.side,
        "qty_e8": f.qty_e8,
        "price_e8": f.price_e8,
        "notional_e8": f.notional_e8,
        "fee_e8": f.fee_e8,
        "realised_e8": f.realised_e8,
    }


def share_payload(s: Fill) -> dict[str, Any]:
    """A sleeve order's share of a net order's fill (`s.fill_id`: the venue fill's id)."""
    return {
        "fill_id": s.fill_id,
        "strategy_id": s.strategy_id,
        "symbol": s.symbol,
        "ts_ms": s.ts_ms,
        "side": s.side,
        "qty_e8": s.qty_e8,
        "price_e8": s.price_e8,
        "notional_e8": s.notional_e8,
        "fee_e8": s.fee_e8,
    }


def log_payload(r: LogRecord) -> dict[str, Any]:
    return {
        "ts_ms": r.ts_ms,
        "component": r.component,
        "level": r.level,
        "msg": r.msg,
        "context": r.context,
    }


class Chain:
    """The heads (last sequence number and hash, last log number) and the records not yet
    flushed. The coordinator flushes inside its transaction and discards on rollback."""

    def __init__(self, conn: apsw.Connection) -> None:
        self.conn = conn
        self.seq, self.prev_hash, self.log_seq = 0, GENESIS, 0
        self._pending: list[Record] = []
        self.load_heads()

    def append(self, kind: str, bar_ts_ms: int, ref: str, payload: dict[str, Any]) -> None:
        text = _json(payload).decode()
        self.seq += 1
        digest = chain_hash(self.prev_hash, kind, ref, text)
        self._pending.append((self.seq, bar_ts_ms, kind, ref, text, self.prev_hash, digest))
        self.prev_hash = digest

    def append_log(self, record: LogRecord, bar_ts_ms: int) -> None:
        """A log record is chained by its number in `logs`, which it takes here."""
        self.log_seq += 1
        self.append("log", bar_ts_ms, str(self.log_seq), log_payload(record))

    def flush(self) -> None:
        if self._pending:
            self.conn.executemany(
                "INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?)", self._pending
            )
            self._pending.clear()

    def discard(self) -> None:
        """The transaction rolled back: its records go, the heads return to the db's."""
        self._pending.clear()
        self.load_heads()

    def load_heads(self) -> None:
        """Continue the chain and the log numbering from what is committed."""
        row = self.conn.execute(
            "SELECT seq, hash FROM decisions ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        self.seq, self.prev_hash = (int(row[0]), str(row[1])) if row else (0, GENESIS)
        logs = self.conn.execute("SELECT COALESCE(max(seq), 0) FROM logs").fetchone()
        self.log_seq = int(logs[0]) if logs else 0
