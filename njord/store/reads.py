"""Typed reads for status, summaries and controls: the queries people and tools ask."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterator
from typing import Any

import apsw
import msgspec

from njord.core.metrics import Metrics, compute
from njord.core.money import E8, mul_e8
from njord.core.time import DAY_MS, timeframe_ms
from njord.store import alerts, amendments, observe
from njord.store import lease as leases
from njord.store.runs import SqliteManifestStore

COMMANDS = ("halt", "reduce", "flatten", "resume")


def one(conn: apsw.Connection, sql: str) -> tuple[Any, ...]:
    """A query that always yields exactly one row (aggregates, singleton tables)."""
    row = conn.execute(sql).fetchone()
    if row is None:
        raise AssertionError(f"no row from {sql}")
    return tuple(row)


def trading_state(conn: apsw.Connection) -> dict[str, Any]:
    state, changed_ms, by, reason = one(
        conn, "SELECT state, changed_ms, changed_by, reason FROM trading_state"
    )
    return {"state": state, "changed_ms": changed_ms, "changed_by": by, "reason": reason}


def status(conn: apsw.Connection) -> dict[str, Any]:
    facts = overview(conn)
    facts["timeframes"] = timeframes(conn)
    facts["manifest_sha256"] = SqliteManifestStore(conn).manifest_sha256()
    facts["telemetry"] = telemetry(conn)
    facts["orders"] = observe.orders_by_status(conn)
    return facts


def timeframes(conn: apsw.Connection) -> list[str]:
    """The bar timeframes the strategy got, as the last start of the session logged them
    (a scan of the log from its end: for `status`, not for a refreshing view)."""
    row = conn.execute(
        "SELECT json_extract(context, '$.timeframes') FROM logs WHERE component = 'session' "
        "AND json_extract(context, '$.timeframes') IS NOT NULL ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    return list(msgspec.json.decode(row[0])) if row else []


def overview(conn: apsw.Connection) -> dict[str, Any]:
    """What a session is doing now, from singleton rows and indexed lookups only."""
    manifest = SqliteManifestStore(conn).load()
    holder = leases.holder(conn)
    account = conn.execute(
        "SELECT cash_e8, realised_e8, fees_e8, peak_equity_e8, last_bar_ms, bars FROM account"
    ).fetchone()
    risk = conn.execute("SELECT day, daily_realised_e8, last_block, counters FROM risk_state")
    risk_row = risk.fetchone()
    pending = one(conn, "SELECT count(*) FROM controls WHERE applied_ms IS NULL")
    last_equity = conn.execute("SELECT equity_e8 FROM equity ORDER BY ts_ms DESC LIMIT 1")
    eq = last_equity.fetchone()
    return {
        "run_id": manifest.run_id if manifest else None,
        "mode": manifest.mode if manifest else None,
        "run_status": SqliteManifestStore(conn).status(manifest.run_id) if manifest else None,
        "strategy": manifest.strategy.path if manifest else None,
        "lease": msgspec.to_builtins(holder) if holder else None,
        "trading": trading_state(conn),
        "bars": account[5] if account else 0,
        "last_bar_ms": account[4] if account else None,
        "cash": account[0] / E8 if account else None,
        "equity": eq[0] / E8 if eq else None,
        "realised_pnl": account[1] / E8 if account else None,
        "fees": account[2] / E8 if account else None,
        "risk": {
            "daily_realised_net": risk_row[1] / E8 if risk_row else 0.0,
            "last_block": risk_row[2] if risk_row else None,
            "blocks": msgspec.json.decode(risk_row[3]) if risk_row else {},
        },
        "pending_controls": pending[0],
        "config_amendments": [msgspec.to_builtins(a) for a in amendments.load(conn)],
        "alert_channels": (
            [msgspec.to_builtins(c) for c in alerts.channels(conn, manifest.config_toml)]
            if manifest
            else []
        ),
        "alerts": [
            {"kind": k, "raised_ms": r, "cleared_ms": c, "msg": m}
            for k, r, c, m in conn.execute(
                "SELECT kind, raised_ms, cleared_ms, msg FROM alerts ORDER BY seq"
            )
        ],
    }


def bars_after(conn: apsw.Connection, ts_ms: int | None) -> int:
    """Bars committed after `ts_ms` (all of them for None): what one run of a session added."""
    row = conn.execute(
        "SELECT count(*) FROM equity WHERE ts_ms > ?", (-1 if ts_ms is None else ts_ms,)
    ).fetchone()
    return int(row[0]) if row else 0


LATENCIES = ("decision_latency_ms", "strategy_tick_latency_ms", "bars_lag_ms")


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def telemetry(conn: apsw.Connection) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in LATENCIES:
        values = sorted(
            float(r[0]) for r in conn.execute("SELECT value FROM metrics WHERE name = ?", (name,))
        )
        if values:
            out[name] = {
                "n": len(values),
                **{f"p{q}": round(percentile(values, q), 3) for q in (50, 95, 99)},
            }
    intents, allowed, risk_blocked = one(
        conn,
        (
            "SELECT count(*), COALESCE(sum(allowed), 0), COALESCE(sum(reason IN ('HALTED', "
            "'REDUCE_ONLY', 'SYMBOL_NOT_ALLOWED', 'NOTIONAL_CAP', 'MAX_OPEN_POSITIONS', "
            "'DAILY_LOSS_LIMIT', 'ORDER_RATE_LIMIT', 'VENUE_FILTER', 'LIVE_MICRO_CAP')), 0) "
            "FROM intents"
        ),
    )
    bars = one(conn, "SELECT count(*) FROM equity")[0]
    errors = observe.errors_logged(conn)
    out.update(
        {
            "orders_submitted": allowed,
            "orders_proposed": allowed,
            "orders_blocked_risk": risk_blocked,
            "risk_block_rate": risk_blocked / intents if intents else 0.0,
            "errors": errors,
            # A session that never got a bar (its venue never answered) still has a rate.
            "error_rate": errors / max(bars, 1),
            "pnl_intraday": _intraday(conn),
        }
    )
    return out


def _intraday(conn: apsw.Connection) -> float:
    last = conn.execute("SELECT ts_ms, equity_e8 FROM equity ORDER BY ts_ms DESC LIMIT 1")
    row = last.fetchone()
    if row is None:
        return 0.0
    day_start = row[0] - row[0] % DAY_MS
    first = conn.execute(
        "SELECT equity_e8 FROM equity WHERE ts_ms >= ? ORDER BY ts_ms LIMIT 1", (day_start,)
    ).fetchone()
    return (row[1] - first[0]) / E8 if first else 0.0


def metrics(conn: apsw.Connection, initial_cash_e8: int) -> Metrics:
    # A cursor, not a list: a year of bars is never held in memory at once.
    points = conn.execute("SELECT ts_ms, equity_e8 / 1e8 FROM equity ORDER BY ts_ms")
    pnls = [
        (pnl - fees) / E8
        for pnl, fees in conn.execute("SELECT pnl_e8, fees_e8 FROM trades ORDER BY trade_id")
    ]
    in_market = one(conn, "SELECT count(*) FROM equity WHERE position_e8 != 0")[0]
    fees = one(conn, "SELECT COALESCE(sum(fee_e8), 0) FROM fills")[0]
    return compute(
        initial=initial_cash_e8 / E8,
        points=points,
        trade_pnls=pnls,
        bars_in_market=in_market,
        fees=fees / E8,
        bar_ms=bar_ms(conn),
    )


def data_timeframe(conn: apsw.Connection) -> str:
    """The session's bar length: its data.timeframe (1m before sessions had one)."""
    manifest = SqliteManifestStore(conn).load()
    data = tomllib.loads(manifest.config_toml).get("data", {}) if manifest else {}
    return str(data.get("timeframe", "1m"))


def bar_ms(conn: apsw.Connection) -> int:
    return timeframe_ms(data_timeframe(conn))


def main_timeframe(conn: apsw.Connection) -> str:
    """The timeframe a trader reads the session in (the report's price chart, the TUI's
    sparkline): the longest the strategy declared, else the session's own bars."""
    declared = timeframes(conn)
    if declared:
        return max(declared, key=timeframe_ms)
    return data_timeframe(conn)


def reconciliation(conn: apsw.Connection, initial_cash_e8: int) -> dict[str, int]:
    """final equity = initial + realised + unrealised - fees, in e8 units."""
    realised, fees = one(
        conn, "SELECT COALESCE(sum(realised_e8), 0), COALESCE(sum(fee_e8), 0) FROM fills"
    )
    last = conn.execute(
        "SELECT close_e8, position_e8, equity_e8 FROM equity ORDER BY ts_ms DESC LIMIT 1"
    ).fetchone()
    close, position, equity = last if last else (0, 0, initial_cash_e8)
    cost = one(conn, "SELECT COALESCE(sum(cost_e8), 0) FROM lots")[0]
    unrealised = mul_e8(position, close) - cost
    return {
        "initial_e8": initial_cash_e8,
        "realised_e8": realised,
        "unrealised_e8": unrealised,
        "fees_e8": fees,
        "equity_e8": equity,
        "difference_e8": equity - (initial_cash_e8 + realised + unrealised - fees),
    }


def qc_summary(conn: apsw.Connection) -> dict[str, Any]:
    row = conn.execute(
        "SELECT policy, bars_in, bars_out, gaps, missing_bars, filled_bars, duplicates, "
        "first_gap_ms, last_gap_ms FROM qc_summary"
    ).fetchone()
    keys = (
        "policy",
        "bars_in",
        "bars_out",
        "gaps",
        "missing_bars",
        "filled_bars",
        "duplicates",
        "first_gap_ms",
        "last_gap_ms",
    )
    return dict(zip(keys, row, strict=True)) if row else {}


def dashboard(
    conn: apsw.Connection, *, after_ms: int | None, rows: int = 8, window: int = 1000
) -> dict[str, Any]:
    """What the TUI shows, in one read transaction (never half a bar). Bounded work per
    call however long the session: equity rows only after `after_ms` (the caller keeps the
    curve), latency percentiles over the last `window` bars."""
    with conn:
        facts = overview(conn)
        facts["equity_new"] = [
            (int(t), e / E8)
            for t, e in conn.execute(
                "SELECT ts_ms, equity_e8 FROM equity WHERE ts_ms > ? ORDER BY ts_ms",
                (after_ms if after_ms is not None else -1,),
            )
        ]
        facts["latency"] = {}
        for name in LATENCIES:
            recent = sorted(
                float(v)
                for (v,) in conn.execute(
                    "SELECT value FROM metrics WHERE name = ? ORDER BY bar_ts_ms DESC LIMIT ?",
                    (name, window),
                )
            )
            if recent:
                facts["latency"][name] = {
                    f"p{q}": round(percentile(recent, q), 3) for q in (50, 95, 99)
                }
        lag = conn.execute(
            "SELECT value FROM metrics WHERE name = 'bars_lag_ms' ORDER BY bar_ts_ms DESC LIMIT 1"
        ).fetchone()
        facts["bar_lag_ms"] = float(lag[0]) if lag else None
        facts["positions"] = [
            {"symbol": s, "qty": q / E8, "cost": c / E8}
            for s, q, c in conn.execute(
                "SELECT symbol, qty_e8, cost_e8 FROM positions WHERE qty_e8 != 0 ORDER BY symbol"
            )
        ]
        last = conn.execute("SELECT close_e8 FROM equity ORDER BY ts_ms DESC LIMIT 1").fetchone()
        for p in facts["positions"]:
            p["unrealised"] = (p["qty"] * last[0] / E8 - p["cost"]) if last else 0.0
        facts["open_orders"] = [
            {"id": c, "side": s, "type": t, "qty": q / E8, "limit": (lim or 0) / E8}
            for c, s, t, q, lim in conn.execute(
                "SELECT client_order_id, side, type, qty_e8, limit_e8 FROM orders "
                "WHERE status IN ('NEW', 'SUBMITTED', 'PARTIALLY_FILLED') ORDER BY intent_id"
            )
        ]
        facts["fills"] = [
            {"ts_ms": t, "side": s, "qty": q / E8, "price": p / E8, "fee": f / E8}
            for t, s, q, p, f in conn.execute(
                "SELECT ts_ms, side, qty_e8, price_e8, fee_e8 FROM fills "
                "ORDER BY fill_id DESC LIMIT ?",
                (rows,),
            )
        ]
        facts["verdicts"] = [
            {"ts_ms": t, "side": s, "reason": r}
            for t, s, r in conn.execute(
                "SELECT bar_ts_ms, side, reason FROM intents ORDER BY intent_id DESC LIMIT ?",
                (rows,),
            )
        ]
    return facts


def sampled_equity(conn: apsw.Connection, most: int = 5000) -> list[tuple[int, float]]:
    """A year of minutes is 525,600 points; a chart needs a few thousand (and the last).
    Every step-th bar on the session's own grid (a 1h session's bars are 60 minutes apart)."""
    count = one(conn, "SELECT count(*) FROM equity")[0]
    step = max(1, int(count) // most)
    return [
        (int(t), e / E8)
        for t, e in conn.execute(
            "SELECT ts_ms, equity_e8 FROM equity WHERE (ts_ms / ?) % ? = 0 "
            "OR ts_ms = (SELECT max(ts_ms) FROM equity) ORDER BY ts_ms",
            (bar_ms(conn), step),
        )
    ]


def monthly_equity(conn: apsw.Connection) -> list[tuple[str, float]]:
    """The last equity of each UTC month, as ('YYYY-MM', equity)."""
    return [
        (str(m), e / E8)
        for m, e in conn.execute(
            "SELECT strftime('%Y-%m', ts_ms / 1000, 'unixepoch') AS m, equity_e8 FROM equity "
            "WHERE ts_ms IN (SELECT max(ts_ms) FROM equity GROUP BY ts_ms / 86400000) "
            "GROUP BY m HAVING ts_ms = max(ts_ms) ORDER BY m"
        )
    ]


def trade_net_pnls(conn: apsw.Connection) -> list[float]:
    return [
        (p - f) / E8
        for p, f in conn.execute("SELECT pnl_e8, fees_e8 FROM trades ORDER BY trade_id")
    ]


def equity_span(conn: apsw.Connection) -> tuple[int | None, int | None]:
    """The first and the last bar of the session (None, None before its first)."""
    first, last = one(conn, "SELECT min(ts_ms), max(ts_ms) FROM equity")
    return first, last


def closes(conn: apsw.Connection) -> Iterator[tuple[int, int]]:
    """(ts_ms, close_e8) of every bar, as a cursor: a year is read once, never held."""
    for ts, close in conn.execute("SELECT ts_ms, close_e8 FROM equity ORDER BY ts_ms"):
        yield int(ts), int(close)


def fill_marks(conn: apsw.Connection) -> list[dict[str, Any]]:
    """Every fill with the net P&L of the trades it closed (`pnl`, None for an opening
    fill) and of those it opened (`opened`, None while they are open)."""
    return [
        {
            "ts_ms": int(t),
            "side": str(s),
            "qty": q / E8,
            "price": p / E8,
            "fee": f / E8,
            "pnl": None if pnl is None else pnl / E8,
            "opened": None if opened is None else opened / E8,
        }
        for t, s, q, p, f, pnl, opened in conn.execute(
            "SELECT f.ts_ms, f.side, f.qty_e8, f.price_e8, f.fee_e8, "
            "(SELECT sum(t.pnl_e8 - t.fees_e8) FROM trades t WHERE t.exit_fill_id = f.fill_id), "
            "(SELECT sum(t.pnl_e8 - t.fees_e8) FROM trades t WHERE t.entry_fill_id = f.fill_id) "
            "FROM fills f ORDER BY f.fill_id"
        )
    ]


def largest_trades(conn: apsw.Connection, most: int = 500) -> list[dict[str, Any]]:
    """The `most` closed trades with the largest |net P&L|, largest first."""
    return [
        {
            "trade": int(i),
            "direction": str(d),
            "entry_ms": int(en),
            "exit_ms": int(ex),
            "qty": q / E8,
            "entry_price": cost / q if q else 0.0,
            "exit_price": value / q if q else 0.0,
            "net_pnl": net / E8,
            "fees": fees / E8,
        }
        for i, d, en, ex, q, cost, value, net, fees in conn.execute(
            "SELECT trade_id, direction, entry_ms, exit_ms, qty_e8, entry_cost_e8, "
            "exit_value_e8, pnl_e8 - fees_e8, fees_e8 FROM trades "
            "ORDER BY abs(pnl_e8 - fees_e8) DESC, trade_id LIMIT ?",
            (most,),
        )
    ]


def trade_stats(conn: apsw.Connection) -> dict[str, float | int | None]:
    """Closed trades: count, average duration (ms) and expectancy (mean net P&L)."""
    count, duration, net = one(
        conn, "SELECT count(*), avg(exit_ms - entry_ms), avg(pnl_e8 - fees_e8) FROM trades"
    )
    return {
        "trades": int(count),
        "avg_duration_ms": None if duration is None else float(duration),
        "expectancy": None if net is None else net / E8,
    }
