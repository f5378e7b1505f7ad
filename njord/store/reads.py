"""Typed reads for status, summaries and controls: the queries people and tools ask."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import apsw
import msgspec

from njord.core.metrics import Metrics, compute
from njord.core.money import E8, mul_e8
from njord.core.time import DAY_MS, timeframe_ms
from njord.data.qc import QcSummary
from njord.store import alerts, amendments, controls, db, observe
from njord.store import lease as leases
from njord.store.runs import SqliteManifestStore

if TYPE_CHECKING:
    from njord.core.history import Floats, Ints

COMMANDS = ("halt", "reduce", "flatten", "resume")
LATENCIES = ("decision_latency_ms", "strategy_tick_latency_ms", "bars_lag_ms", "order_rtt_ms")


class TradingStatus(msgspec.Struct, frozen=True, kw_only=True):
    state: str
    changed_ms: int
    changed_by: str
    reason: str


class RiskFacts(msgspec.Struct, frozen=True, kw_only=True):
    daily_realised_net: float
    last_block: str | None
    blocks: dict[str, int]  # reason -> orders it blocked


class Overview(msgspec.Struct, frozen=True, kw_only=True):
    """What a session is doing now (money in quote units)."""

    run_id: str | None
    mode: str | None
    run_status: str | None
    strategy: str | None
    lease: leases.Lease | None
    trading: TradingStatus
    bars: int
    last_bar_ms: int | None
    cash: float | None
    equity: float | None
    realised_pnl: float | None
    fees: float | None
    risk: RiskFacts
    pending_controls: int
    config_amendments: list[amendments.Amendment]
    alert_channels: list[alerts.ChannelState]
    alerts: list[alerts.AlertRow]


class Percentiles(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    p50: float
    p95: float
    p99: float
    n: int | None = None  # values they are taken over (status; the TUI's window omits it)


class Telemetry(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A latency is absent until the session measured one."""

    decision_latency_ms: Percentiles | None = None
    strategy_tick_latency_ms: Percentiles | None = None
    bars_lag_ms: Percentiles | None = None
    order_rtt_ms: Percentiles | None = None  # submit to the venue's answer (paper, live)
    orders_submitted: int
    orders_proposed: int
    orders_blocked_risk: int
    risk_block_rate: float
    errors: int
    error_rate: float
    pnl_intraday: float


class SleeveStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One strategy of several: its sleeve's state and account as of the last commit."""

    strategy_id: str
    strategy: str
    allocation: float
    state: str  # ACTIVE or HALTED
    halted: str | None  # why
    cash: float
    equity: float | None  # at the last committed minute (None before the first)
    pnl: float | None  # equity less its share of the initial cash
    budget: float
    last_decision: str | None  # its latest intent: "<side> <symbol> <reason>"


class Status(Overview, frozen=True, kw_only=True):
    """`njord status`: the overview, the timeframes, the manifest hash, the telemetry,
    the orders by status and, with several strategies, each one's sleeve."""

    timeframes: list[str]
    manifest_sha256: str | None
    telemetry: Telemetry
    orders: dict[str, int]
    sleeves: list[SleeveStatus] = []


def one(conn: apsw.Connection, sql: str) -> tuple[Any, ...]:
    """A query that always yields exactly one row (aggregates, singleton tables)."""
    row = conn.execute(sql).fetchone()
    if row is None:
        raise AssertionError(f"no row from {sql}")
    return tuple(row)


def data_version(conn: apsw.Connection) -> int:
    """Changes whenever another connection commits: a reader re-reads only then."""
    return int(one(conn, "PRAGMA data_version")[0])


def trading_state(conn: apsw.Connection) -> TradingStatus:
    state, changed_ms, by, reason = one(
        conn, "SELECT state, changed_ms, changed_by, reason FROM trading_state"
    )
    return TradingStatus(state=state, changed_ms=changed_ms, changed_by=by, reason=reason)


def session_status(conn: apsw.Connection) -> Status:
    return Status(
        **msgspec.structs.asdict(overview(conn)),
        timeframes=timeframes(conn),
        manifest_sha256=SqliteManifestStore(conn).manifest_sha256(),
        telemetry=telemetry(conn),
        orders=observe.orders_by_status(conn),
        sleeves=sleeves(conn),
    )


def sleeves(conn: apsw.Connection) -> list[SleeveStatus]:
    """Each sleeve of a several-strategy session, in config order."""
    return [
        SleeveStatus(
            strategy_id=str(sid),
            strategy=str(path),
            allocation=alloc / E8,
            state="ACTIVE" if halted is None else "HALTED",
            halted=halted,
            cash=cash / E8,
            equity=None if equity is None else equity / E8,
            pnl=None if equity is None else (equity - initial) / E8,
            budget=budget / E8,
            last_decision=last,
        )
        for sid, path, alloc, halted, cash, initial, budget, equity, last in conn.execute(
            "SELECT s.strategy_id, s.strategy_path, s.allocation_e8, s.halted, s.cash_e8, "
            "s.initial_e8, s.budget_e8, (SELECT e.equity_e8 FROM sleeve_equity e "
            "WHERE e.strategy_id = s.strategy_id ORDER BY e.ts_ms DESC LIMIT 1), "
            "(SELECT i.side || ' ' || i.symbol || ' ' || i.reason FROM intents i "
            "WHERE i.strategy_id = s.strategy_id "
            "ORDER BY i.intent_id DESC LIMIT 1) FROM sleeves s ORDER BY s.slot"
        )
    ]


def status(conn: apsw.Connection) -> dict[str, Any]:
    """`session_status` as plain data. issue 13: launch.wrap_up still wants the dict; it
    goes when the lead switches that call to `session_status`."""
    facts: dict[str, Any] = msgspec.to_builtins(session_status(conn))
    return facts


def timeframes(conn: apsw.Connection) -> list[str]:
    """The bar timeframes the strategy got, as the last start of the session logged them
    (a scan of the log from its end: for `status`, not for a refreshing view)."""
    row = conn.execute(
        "SELECT json_extract(context, '$.timeframes') FROM logs WHERE component = 'session' "
        "AND json_extract(context, '$.timeframes') IS NOT NULL ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    return list(msgspec.json.decode(row[0])) if row else []


def overview(conn: apsw.Connection) -> Overview:
    """What a session is doing now, from singleton rows and indexed lookups only."""
    runs = SqliteManifestStore(conn)
    manifest = runs.load()
    account = conn.execute(
        "SELECT cash_e8, realised_e8, fees_e8, peak_equity_e8, last_bar_ms, bars FROM account"
    ).fetchone()
    risk = conn.execute(
        "SELECT day, daily_realised_e8, last_block, counters FROM risk_state"
    ).fetchone()
    eq = conn.execute("SELECT equity_e8 FROM equity ORDER BY ts_ms DESC LIMIT 1").fetchone()
    return Overview(
        run_id=manifest.run_id if manifest else None,
        mode=manifest.mode if manifest else None,
        run_status=runs.status(manifest.run_id) if manifest else None,
        strategy=manifest.strategy.path if manifest else None,
        lease=leases.holder(conn),
        trading=trading_state(conn),
        bars=account[5] if account else 0,
        last_bar_ms=account[4] if account else None,
        cash=account[0] / E8 if account else None,
        equity=eq[0] / E8 if eq else None,
        realised_pnl=account[1] / E8 if account else None,
        fees=account[2] / E8 if account else None,
        risk=RiskFacts(
            daily_realised_net=risk[1] / E8 if risk else 0.0,
            last_block=risk[2] if risk else None,
            blocks=msgspec.json.decode(risk[3]) if risk else {},
        ),
        pending_controls=controls.pending_count(conn),
        config_amendments=amendments.load(conn),
        alert_channels=alerts.channels(conn, manifest.config_toml) if manifest else [],
        alerts=alerts.every(conn),
    )


def bars_after(conn: apsw.Connection, ts_ms: int | None) -> int:
    """Bars committed after `ts_ms` (all of them for None): what one run of a session added."""
    row = conn.execute(
        "SELECT count(*) FROM equity WHERE ts_ms > ?", (-1 if ts_ms is None else ts_ms,)
    ).fetchone()
    return int(row[0]) if row else 0


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def telemetry(conn: apsw.Connection) -> Telemetry:
    latencies: dict[str, Percentiles] = {}
    for name in LATENCIES:
        values = sorted(
            float(r[0]) for r in conn.execute("SELECT value FROM metrics WHERE name = ?", (name,))
        )
        if values:
            latencies[name] = _percentiles(values, n=len(values))
    intents, allowed, risk_blocked = one(
        conn,
        (
            "SELECT count(*), COALESCE(sum(allowed), 0), COALESCE(sum(reason IN ('HALTED', "
            "'REDUCE_ONLY', 'SYMBOL_NOT_ALLOWED', 'SYMBOL_NOT_DECLARED', 'NOTIONAL_CAP', "
            "'MAX_OPEN_POSITIONS', "
            "'DAILY_LOSS_LIMIT', 'ORDER_RATE_LIMIT', 'VENUE_FILTER', 'LIVE_MICRO_CAP')), 0) "
            "FROM intents"
        ),
    )
    bars = one(conn, "SELECT count(*) FROM equity")[0]
    errors = observe.errors_logged(conn)
    return Telemetry(
        decision_latency_ms=latencies.get("decision_latency_ms"),
        strategy_tick_latency_ms=latencies.get("strategy_tick_latency_ms"),
        bars_lag_ms=latencies.get("bars_lag_ms"),
        order_rtt_ms=latencies.get("order_rtt_ms"),
        orders_submitted=allowed,
        orders_proposed=allowed,
        orders_blocked_risk=risk_blocked,
        risk_block_rate=risk_blocked / intents if intents else 0.0,
        errors=errors,
        # A session that never got a bar (its venue never answered) still has a rate.
        error_rate=errors / max(bars, 1),
        pnl_intraday=_intraday(conn),
    )


def _percentiles(sorted_values: list[float], *, n: int | None = None) -> Percentiles:
    p50, p95, p99 = (round(percentile(sorted_values, q), 3) for q in (50, 95, 99))
    return Percentiles(p50=p50, p95=p95, p99=p99, n=n)


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
    pnls = [
        (pnl - fees) / E8
        for pnl, fees in conn.execute("SELECT pnl_e8, fees_e8 FROM trades ORDER BY trade_id")
    ]
    # Minutes holding any position: a several-symbol session's positions are in `marks`.
    in_market = one(
        conn,
        "SELECT (SELECT count(*) FROM equity WHERE position_e8 != 0) + "
        "(SELECT count(DISTINCT ts_ms) FROM marks WHERE position_e8 != 0)",
    )[0]
    fees = one(conn, "SELECT COALESCE(sum(fee_e8), 0) FROM fills")[0]
    return compute(
        initial=initial_cash_e8 / E8,
        columns=_equity_columns(conn),
        trade_pnls=pnls,
        bars_in_market=in_market,
        fees=fees / E8,
        bar_ms=bar_ms(conn),
    )


# The equity curve `COLUMNS_CHUNK` bars at a time (a year of bars is never held in memory
# at once), each column as one text SQLite writes without coming back to Python per bar.
COLUMNS_CHUNK = 65_536
_COLUMNS_SQL = (
    "SELECT group_concat(ts_ms), group_concat(equity_e8), max(ts_ms), count(*) "
    "FROM (SELECT ts_ms, equity_e8 FROM equity WHERE ts_ms > ? ORDER BY ts_ms LIMIT ?)"
)


def _equity_columns(conn: apsw.Connection) -> Iterator[tuple[Ints, Floats]]:
    """(bar times, equities) as arrays, for `compute`: the equities are the same
    floats as SQLite's `equity_e8 / 1e8` (each a correctly rounded division of the same
    double)."""
    import numpy as np  # not at the top: `njord status` reads this module, measures nothing

    after = -(2**63)  # below any bar's time
    while True:
        ts_text, equity_text, last, n = next(db.rows(conn, _COLUMNS_SQL, (after, COLUMNS_CHUNK)))
        if not n:
            return
        ts = np.fromstring(ts_text, dtype=np.int64, sep=",")
        equity = np.fromstring(equity_text, dtype=np.int64, sep=",")
        if np.any(ts[1:] <= ts[:-1]):  # group_concat's order is SQLite's own to choose
            order = np.argsort(ts)
            ts, equity = ts[order], equity[order]
        yield ts, equity / 1e8
        if n < COLUMNS_CHUNK:
            return
        after = last


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
    # A several-symbol session: each position at its symbol's last close (`marks`).
    held = [
        mul_e8(int(p), int(c))
        for p, c in conn.execute(
            "SELECT position_e8, close_e8 FROM marks WHERE ts_ms = (SELECT max(ts_ms) FROM marks)"
        )
    ]
    unrealised = mul_e8(position, close) + sum(held) - cost
    return {
        "initial_e8": initial_cash_e8,
        "realised_e8": realised,
        "unrealised_e8": unrealised,
        "fees_e8": fees,
        "equity_e8": equity,
        "difference_e8": equity - (initial_cash_e8 + realised + unrealised - fees),
    }


def qc(conn: apsw.Connection) -> QcSummary | None:
    """What quality control did to the session's data (None before its first start)."""
    row = conn.execute(
        "SELECT policy, bars_in, bars_out, gaps, missing_bars, filled_bars, duplicates, "
        "first_gap_ms, last_gap_ms FROM qc_summary"
    ).fetchone()
    if row is None:
        return None
    policy, bars_in, bars_out, gaps, missing, filled, duplicates, first, last = row
    return QcSummary(
        policy=policy,
        bars_in=bars_in,
        bars_out=bars_out,
        gaps=gaps,
        missing_bars=missing,
        filled_bars=filled,
        duplicates=duplicates,
        first_gap_ms=first,
        last_gap_ms=last,
    )


def qc_summary(conn: apsw.Connection) -> dict[str, Any]:
    """`qc` as plain data ({} before the first start). issue 13: launch.wrap_up still
    wants the dict; it goes when the lead switches that call to `qc`."""
    found = qc(conn)
    return {} if found is None else msgspec.structs.asdict(found)


class Position(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    qty: float
    cost: float
    unrealised: float  # at the last close


class OpenOrder(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    side: str
    type: str
    qty: float
    limit: float  # 0.0 for a market order


class RecentFill(msgspec.Struct, frozen=True, kw_only=True):
    ts_ms: int
    side: str
    qty: float
    price: float
    fee: float


class RecentVerdict(msgspec.Struct, frozen=True, kw_only=True):
    ts_ms: int
    side: str
    reason: str


class Dashboard(Overview, frozen=True, kw_only=True):
    """What the TUI shows: the overview, the equity committed since the last read, recent
    latencies (by name, over the last `window` bars) and the newest rows of each table."""

    equity_new: list[tuple[int, float]]
    latency: dict[str, Percentiles]
    bar_lag_ms: float | None
    positions: list[Position]
    open_orders: list[OpenOrder]
    fills: list[RecentFill]
    verdicts: list[RecentVerdict]
    sleeves: list[SleeveStatus] = []  # several strategies: a row each


def dashboard(
    conn: apsw.Connection, *, after_ms: int | None, rows: int = 8, window: int = 1000
) -> Dashboard:
    """What the TUI shows, in one read transaction (never half a bar). Bounded work per
    call however long the session: equity rows only after `after_ms` (the caller keeps the
    curve), latency percentiles over the last `window` bars."""
    with conn:
        found = Dashboard(
            **msgspec.structs.asdict(overview(conn)),
            equity_new=[
                (int(t), e / E8)
                for t, e in conn.execute(
                    "SELECT ts_ms, equity_e8 FROM equity WHERE ts_ms > ? ORDER BY ts_ms",
                    (after_ms if after_ms is not None else -1,),
                )
            ],
            latency=_recent_latencies(conn, window),
            bar_lag_ms=observe.last_metric(conn, "bars_lag_ms"),
            positions=_positions(conn),
            sleeves=sleeves(conn),
            open_orders=[
                OpenOrder(id=c, side=s, type=t, qty=q / E8, limit=(lim or 0) / E8)
                for c, s, t, q, lim in conn.execute(
                    "SELECT client_order_id, side, type, qty_e8, limit_e8 FROM orders "
                    "WHERE status IN ('NEW', 'SUBMITTED', 'PARTIALLY_FILLED') ORDER BY intent_id"
                )
            ],
            fills=[
                RecentFill(ts_ms=t, side=s, qty=q / E8, price=p / E8, fee=f / E8)
                for t, s, q, p, f in conn.execute(
                    "SELECT ts_ms, side, qty_e8, price_e8, fee_e8 FROM fills "
                    "ORDER BY fill_id DESC LIMIT ?",
                    (rows,),
                )
            ],
            verdicts=[
                RecentVerdict(ts_ms=t, side=s, reason=r)
                for t, s, r in conn.execute(
                    "SELECT bar_ts_ms, side, reason FROM intents ORDER BY intent_id DESC LIMIT ?",
                    (rows,),
                )
            ],
        )
    return found


def _recent_latencies(conn: apsw.Connection, window: int) -> dict[str, Percentiles]:
    found = {}
    for name in LATENCIES:
        recent = sorted(
            float(v)
            for (v,) in conn.execute(
                "SELECT value FROM metrics WHERE name = ? ORDER BY bar_ts_ms DESC LIMIT ?",
                (name, window),
            )
        )
        if recent:
            found[name] = _percentiles(recent)
    return found


def _positions(conn: apsw.Connection) -> list[Position]:
    # Each symbol at its own last close: its `marks` in a several-symbol session.
    return [
        Position(
            symbol=s,
            qty=q / E8,
            cost=c / E8,
            unrealised=(q / E8 * last / E8 - c / E8) if last is not None else 0.0,
        )
        for s, q, c, last in conn.execute(
            "SELECT p.symbol, p.qty_e8, p.cost_e8, COALESCE("
            "(SELECT m.close_e8 FROM marks m WHERE m.symbol = p.symbol "
            "ORDER BY m.ts_ms DESC LIMIT 1), "
            "(SELECT close_e8 FROM equity ORDER BY ts_ms DESC LIMIT 1)) "
            "FROM positions p WHERE p.qty_e8 != 0 ORDER BY p.symbol"
        )
    ]


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


def closes(conn: apsw.Connection, symbol: str | None = None) -> Iterator[tuple[int, int]]:
    """(ts_ms, close_e8) of every bar, as a cursor: a year is read once, never held.
    `symbol`: that symbol's, in a several-symbol session (its `marks`)."""
    rows = (
        conn.execute("SELECT ts_ms, close_e8 FROM equity ORDER BY ts_ms")
        if symbol is None
        else conn.execute(
            "SELECT ts_ms, close_e8 FROM marks WHERE symbol = ? ORDER BY ts_ms", (symbol,)
        )
    )
    for ts, close in rows:
        yield int(ts), int(close)


class FillMark(msgspec.Struct, frozen=True, kw_only=True):
    """A fill on the price chart, with the net P&L of the trades it closed (`pnl`, None
    for an opening fill) and of those it opened (`opened`, None while they are open)."""

    ts_ms: int
    side: str
    qty: float
    price: float
    fee: float
    pnl: float | None
    opened: float | None


class TradeRow(msgspec.Struct, frozen=True, kw_only=True):
    trade: int
    direction: str
    entry_ms: int
    exit_ms: int
    qty: float
    entry_price: float
    exit_price: float
    net_pnl: float
    fees: float


class TradeStats(msgspec.Struct, frozen=True, kw_only=True):
    """Closed trades: count, average duration (ms) and expectancy (mean net P&L)."""

    trades: int
    avg_duration_ms: float | None
    expectancy: float | None


def fill_marks(conn: apsw.Connection, symbol: str | None = None) -> list[FillMark]:
    """The fills to mark on a price chart: all, or `symbol`'s."""
    where, args = ("WHERE f.symbol = ? ", (symbol,)) if symbol is not None else ("", ())
    return [
        FillMark(
            ts_ms=int(t),
            side=str(s),
            qty=q / E8,
            price=p / E8,
            fee=f / E8,
            pnl=None if pnl is None else pnl / E8,
            opened=None if opened is None else opened / E8,
        )
        for t, s, q, p, f, pnl, opened in conn.execute(
            "SELECT f.ts_ms, f.side, f.qty_e8, f.price_e8, f.fee_e8, "
            "(SELECT sum(t.pnl_e8 - t.fees_e8) FROM trades t WHERE t.exit_fill_id = f.fill_id), "
            "(SELECT sum(t.pnl_e8 - t.fees_e8) FROM trades t WHERE t.entry_fill_id = f.fill_id) "
            f"FROM fills f {where}ORDER BY f.fill_id",
            args,
        )
    ]


def largest_trades(conn: apsw.Connection, most: int = 500) -> list[TradeRow]:
    """The `most` closed trades with the largest |net P&L|, largest first."""
    return [
        TradeRow(
            trade=int(i),
            direction=str(d),
            entry_ms=int(en),
            exit_ms=int(ex),
            qty=q / E8,
            entry_price=cost / q if q else 0.0,
            exit_price=value / q if q else 0.0,
            net_pnl=net / E8,
            fees=fees / E8,
        )
        for i, d, en, ex, q, cost, value, net, fees in conn.execute(
            "SELECT trade_id, direction, entry_ms, exit_ms, qty_e8, entry_cost_e8, "
            "exit_value_e8, pnl_e8 - fees_e8, fees_e8 FROM trades "
            "ORDER BY abs(pnl_e8 - fees_e8) DESC, trade_id LIMIT ?",
            (most,),
        )
    ]


def trade_stats(conn: apsw.Connection) -> TradeStats:
    count, duration, net = one(
        conn, "SELECT count(*), avg(exit_ms - entry_ms), avg(pnl_e8 - fees_e8) FROM trades"
    )
    return TradeStats(
        trades=int(count),
        avg_duration_ms=None if duration is None else float(duration),
        expectancy=None if net is None else net / E8,
    )


class BreakdownRow(msgspec.Struct, frozen=True, kw_only=True):
    """Results of one strategy on one symbol (several symbols or strategies), or the
    portfolio line (`strategy_id` and `symbol` "*"): P&L is the cash its fills moved, fees
    in, plus what it holds at the symbol's last close."""

    strategy_id: str
    symbol: str
    fills: int
    bought: float
    sold: float
    fees: float
    position: float
    pnl: float


def breakdown(conn: apsw.Connection) -> list[BreakdownRow]:
    """Per strategy and symbol, then the portfolio line; empty for one strategy on one
    symbol (the session's own results say it all)."""
    sleeves = one(conn, "SELECT count(*) FROM sleeves")[0]
    symbols = one(conn, "SELECT count(DISTINCT symbol) FROM marks")[0]
    if not sleeves and not symbols:
        return []
    rows = []
    total = [0, 0, 0, 0, 0]
    for sid, symbol, fills, bought, sold, fees, position, flow, close in conn.execute(
        "SELECT f.strategy_id, f.symbol, count(*), "
        "sum(CASE WHEN f.side = 'BUY' THEN f.qty_e8 ELSE 0 END), "
        "sum(CASE WHEN f.side = 'SELL' THEN f.qty_e8 ELSE 0 END), sum(f.fee_e8), "
        "sum(CASE WHEN f.side = 'BUY' THEN f.qty_e8 ELSE -f.qty_e8 END), "
        "sum(CASE WHEN f.side = 'SELL' THEN f.notional_e8 ELSE -f.notional_e8 END), "
        "COALESCE((SELECT m.close_e8 FROM marks m WHERE m.symbol = f.symbol "
        "ORDER BY m.ts_ms DESC LIMIT 1), "
        "(SELECT close_e8 FROM equity ORDER BY ts_ms DESC LIMIT 1)) "
        "FROM fills f GROUP BY f.strategy_id, f.symbol ORDER BY f.strategy_id, f.symbol"
    ):
        pnl = flow - fees + mul_e8(position, close or 0)
        for k, v in enumerate((fills, 0, 0, fees, pnl)):
            total[k] += v
        rows.append(
            BreakdownRow(
                strategy_id=sid or "-",
                symbol=symbol,
                fills=fills,
                bought=bought / E8,
                sold=sold / E8,
                fees=fees / E8,
                position=position / E8,
                pnl=pnl / E8,
            )
        )
    portfolio = BreakdownRow(
        strategy_id="*",
        symbol="*",
        fills=total[0],
        bought=sum(r.bought for r in rows),
        sold=sum(r.sold for r in rows),
        fees=total[3] / E8,
        position=0.0,
        pnl=total[4] / E8,
    )
    return [*rows, portfolio]
