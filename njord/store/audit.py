"""`njord audit`: is this db what its session wrote?

Four independent checks, each naming the first bad row it finds:
1. SQLite's own integrity check;
2. the decision log's hash chain (every record's hash, and the link to the one before);
3. every row the log speaks of (fills, intents, logs, controls, equity ranges) still says
   what the log says, and no such row exists that the log does not mention;
4. positions, lots, cash, realised P&L and fees recomputed from the fills alone.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from typing import Any

import apsw
import msgspec

from njord.core.book import NET_SEQ
from njord.core.ledger import Ledger
from njord.core.money import to_e8
from njord.records import Fill, Side
from njord.store.chain import GENESIS, chain_hash, equity_digest, fill_payload, share_payload
from njord.store.db import integrity_errors

Check = tuple[str, str | None]  # (name, first problem or None)
_json = msgspec.json.Encoder(order="sorted").encode


def audit(conn: apsw.Connection) -> list[Check]:
    return [
        ("integrity", _first(integrity_errors(conn))),
        ("hash chain", _first(_chain_problems(conn))),
        ("rows match the log", _first(_row_problems(conn))),
        ("book recomputed from fills", _first(_book_problems(conn))),
    ]


def _first(problems: list[str] | Iterator[str]) -> str | None:
    return next(iter(problems), None)


def _chain_problems(conn: apsw.Connection) -> Iterator[str]:
    prev, expected = GENESIS, 1
    for seq, kind, ref, payload, prev_hash, digest in conn.execute(
        "SELECT seq, kind, ref, payload, prev_hash, hash FROM decisions ORDER BY seq"
    ):
        if seq != expected:
            yield f"decision #{expected} is missing (next is #{seq})"
        if prev_hash != prev:
            yield f"decision #{seq} does not link to the record before it"
        if chain_hash(prev_hash, kind, ref, payload) != digest:
            yield f"decision #{seq} ({kind} {ref}) was edited: its hash does not match"
        prev, expected = digest, seq + 1


def _records(conn: apsw.Connection, kind: str) -> dict[str, tuple[int, dict[str, Any]]]:
    return {
        ref: (seq, msgspec.json.decode(payload))
        for seq, ref, payload in conn.execute(
            "SELECT seq, ref, payload FROM decisions WHERE kind = ? ORDER BY seq", (kind,)
        )
    }


def _several(conn: apsw.Connection) -> bool:
    """Whether the session has bars of several symbols (its fill records name theirs)."""
    run = conn.execute("SELECT config_toml FROM runs LIMIT 1").fetchone()
    if run is None:
        return False
    data = tomllib.loads(run[0])["data"]
    return len(data.get("paths", {})) > 1 or len(data.get("symbols", [])) > 1


def _row_problems(conn: apsw.Connection) -> Iterator[str]:
    yield from _compare(conn, "fill", "fills", "fill_id", _fill_rows(conn, _several(conn)))
    yield from _compare(conn, "share", "fill_shares", "share of", _share_rows(conn))
    yield from _compare(conn, "log", "logs", "log record", _log_rows(conn))
    yield from _compare(conn, "intent", "intents", "intent", _intent_rows(conn))
    yield from _equity_problems(conn)


def _compare(
    conn: apsw.Connection,
    kind: str,
    table: str,
    label: str,
    rows: dict[str, dict[str, Any]],
) -> Iterator[str]:
    logged = _records(conn, kind)
    for ref, (seq, payload) in logged.items():
        row = rows.get(ref)
        if row is None:
            yield f"{table}: {label} {ref} is missing (decision #{seq} records it)"
        elif row != payload:
            fields = sorted(k for k in payload if payload.get(k) != row.get(k))
            yield f"{table}: {label} {ref} differs from decision #{seq} in {', '.join(fields)}"
    for ref in sorted(set(rows) - set(logged), key=lambda r: (len(r), r)):  # ids, or order ids
        yield f"{table}: {label} {ref} is not in the decision log"


def _fill_rows(conn: apsw.Connection, several: bool) -> dict[str, dict[str, Any]]:
    out = {}
    for row in conn.execute(
        "SELECT fill_id, client_order_id, ts_ms, symbol, side, qty_e8, price_e8, notional_e8, "
        "fee_e8, realised_e8, strategy_id FROM fills"
    ):
        fill = fill_from_row(row)
        out[str(row[0])] = msgspec.json.decode(_json(fill_payload(fill, symbol=several)))
    return out


def _share_rows(conn: apsw.Connection) -> dict[str, dict[str, Any]]:
    """Net orders' fills as each sleeve's order got them, keyed by that order's id."""
    out = {}
    for coid, fill_id, sid, side, qty, price, notional, fee, ts, symbol in conn.execute(
        "SELECT s.client_order_id, s.fill_id, s.strategy_id, s.side, s.qty_e8, s.price_e8, "
        "s.notional_e8, s.fee_e8, f.ts_ms, f.symbol FROM fill_shares s "
        "JOIN fills f USING (fill_id)"
    ):
        share = Fill(
            fill_id=fill_id,
            client_order_id=coid,
            ts_ms=ts,
            symbol=symbol,
            side=Side(side),
            qty_e8=qty,
            price_e8=price,
            notional_e8=notional,
            fee_e8=fee,
            strategy_id=sid,
        )
        out[str(coid)] = msgspec.json.decode(_json(share_payload(share)))
    return out


def _log_rows(conn: apsw.Connection) -> dict[str, dict[str, Any]]:
    return {
        str(seq): {
            "ts_ms": ts,
            "component": comp,
            "level": level,
            "msg": msg,
            "context": msgspec.json.decode(context),
        }
        for seq, ts, comp, level, msg, context in conn.execute(
            "SELECT seq, ts_ms, component, level, msg, context FROM logs"
        )
    }


def fill_from_row(row: Any) -> Fill:
    """A Fill from `fill_id, client_order_id, ts_ms, symbol, side, qty, price, notional,
    fee[, realised[, strategy_id]]` (the fills table's column order)."""
    return Fill(
        fill_id=row[0],
        client_order_id=row[1],
        ts_ms=row[2],
        symbol=row[3],
        side=Side(row[4]),
        qty_e8=row[5],
        price_e8=row[6],
        notional_e8=row[7],
        fee_e8=row[8],
        realised_e8=row[9] if len(row) > 9 else 0,
        strategy_id=row[10] if len(row) > 10 else "",
    )


def _intent_rows(conn: apsw.Connection) -> dict[str, dict[str, Any]]:
    keys = (
        "seq",
        "symbol",
        "side",
        "type",
        "qty_e8",
        "limit_e8",
        "tag",
        "allowed",
        "reason",
        "client_order_id",
    )
    # A several-strategy session's intents name their strategy, and a net order's intent
    # the sleeve orders it stands for (its rule inputs), as `intent_payload` does.
    out = {}
    for row in conn.execute(
        "SELECT intent_id, seq, symbol, side, type, qty_e8, limit_e8, tag, allowed, reason, "
        "client_order_id, strategy_id, rule_inputs FROM intents"
    ):
        extra: dict[str, Any] = {"strategy_id": row[-2]} if row[-2] else {}
        if row[1] >= NET_SEQ:
            extra["netted"] = msgspec.json.decode(row[-1])["netted"]
        out[str(row[0])] = extra | dict(zip(keys, row[1:-2], strict=True))
    return out


def _equity_problems(conn: apsw.Connection) -> Iterator[str]:
    covered = 0
    for seq, ref, payload in conn.execute(
        "SELECT seq, ref, payload FROM decisions WHERE kind = 'commit' ORDER BY seq"
    ):
        first, last = (int(x) for x in ref.split("-"))
        rows: list[list[int]] = [
            [int(v) for v in r]
            for r in conn.execute(
                "SELECT ts_ms, close_e8, cash_e8, position_e8, equity_e8 FROM equity "
                "WHERE ts_ms BETWEEN ? AND ? ORDER BY ts_ms",
                (first, last),
            )
        ]
        expected = msgspec.json.decode(payload)
        covered += len(rows)
        digest = equity_digest(rows)
        if len(rows) != expected["bars"] or digest != expected["equity_sha256"]:
            yield f"equity: rows {first}..{last} differ from decision #{seq}"
        if (
            "marks_sha256" in expected
            and _marks_digest(conn, first, last) != expected["marks_sha256"]
        ):
            yield f"marks: rows {first}..{last} differ from decision #{seq}"
    total = conn.execute("SELECT count(*) FROM equity").fetchone()
    if total and total[0] != covered:
        yield f"equity: {total[0] - covered} rows are not covered by the decision log"


def _marks_digest(conn: apsw.Connection, first: int, last: int) -> str:
    rows: list[list[int | str]] = [
        [int(t), str(s), int(c), int(p)]
        for t, s, c, p in conn.execute(
            "SELECT ts_ms, symbol, close_e8, position_e8 FROM marks "
            "WHERE ts_ms BETWEEN ? AND ? ORDER BY ts_ms, symbol",
            (first, last),
        )
    ]
    return equity_digest(rows)


def _book_problems(conn: apsw.Connection) -> Iterator[str]:
    run = conn.execute("SELECT config_toml FROM runs LIMIT 1").fetchone()
    if run is None:
        return
    initial = to_e8(str(tomllib.loads(run[0])["runtime"]["initial_cash"]))
    ledger = Ledger(initial)
    for row in conn.execute(
        "SELECT fill_id, client_order_id, ts_ms, symbol, side, qty_e8, price_e8, notional_e8, "
        "fee_e8, realised_e8 FROM fills ORDER BY fill_id"
    ):
        realised, _ = ledger.apply(fill_from_row(row))
        if row[9] != realised:
            yield f"fills: fill_id {row[0]} realised P&L differs from its recomputation"
    account = conn.execute("SELECT cash_e8, realised_e8, fees_e8 FROM account").fetchone()
    mine = (ledger.cash_e8, ledger.realised_e8, ledger.fees_e8)
    if account is not None and tuple(account) != mine:
        yield f"account: (cash, realised, fees) stored {tuple(account)}, recomputed {mine}"
    for symbol, qty, cost in conn.execute("SELECT symbol, qty_e8, cost_e8 FROM positions"):
        want = (ledger.position_e8(symbol), ledger.cost_e8(symbol))
        if (qty, cost) != want:
            yield f"positions: {symbol} (qty_e8, cost_e8) stored {(qty, cost)}, recomputed {want}"
    lots = [
        tuple(r)
        for r in conn.execute("SELECT lot_seq, symbol, qty_e8, cost_e8 FROM lots ORDER BY lot_seq")
    ]
    mine_lots = sorted(  # in lot order, as stored: several symbols' lots interleave
        (lot.lot_seq, lot.symbol, lot.qty_e8, lot.cost_e8)
        for s in sorted(ledger.lots)
        for lot in ledger.lots[s]
    )
    if lots != mine_lots:
        yield f"lots: stored {lots[:3]}, recomputed {mine_lots[:3]}"
