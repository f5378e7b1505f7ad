"""The session dashboard: one screen, rendered from `reads.dashboard` facts."""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Sparkline, Static

from njord.store import lease as leases
from njord.store.alerts import ChannelState
from njord.store.amendments import Amendment
from njord.store.reads import Dashboard as Facts
from njord.store.reads import Percentiles, SleeveStatus

STATE_COLOURS = {"ACTIVE": "green", "REDUCING": "yellow", "HALTED": "red"}
# A writer on another host is presumed gone after this long without a heartbeat (on this
# host the pid itself says so).
REMOTE_TIMEOUT_S = 120.0


def utc(ts_ms: int | None) -> str:
    if ts_ms is None:
        return "-"
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


class EquityCurve:
    """The whole session's equity, grown by the rows committed since the last read, so a
    refresh never re-reads history. One point per bar of the strategy's main timeframe
    (reads.main_timeframe: a strategy of 1m and 1h bars is read in hours), the equity at
    its latest bar; 8 bytes a point: a year of minutes is 4 MiB. Peaks and drawdowns are
    measured on every bar; a point's drawdown is the deepest within it."""

    def __init__(self) -> None:
        self.values = array("d")
        self.last_ms: int | None = None
        self.peak = -math.inf
        self.max_drawdown = 0.0
        self.drawdown = 0.0  # at the latest bar
        self.drawdowns = array("d")
        self._point: int | None = None

    def extend(self, rows: Sequence[tuple[int, float]], point_ms: int) -> None:
        """`point_ms`: the length of the main timeframe's bars, one point each."""
        for ts, equity in rows:
            self.peak = max(self.peak, equity)
            drawdown = (self.peak - equity) / self.peak if self.peak > 0 else 0.0
            self.drawdown = drawdown
            self.max_drawdown = max(self.max_drawdown, drawdown)
            if ts // point_ms != self._point:
                self._point = ts // point_ms
                self.values.append(equity)
                self.drawdowns.append(drawdown)
            else:
                self.values[-1] = equity
                self.drawdowns[-1] = max(self.drawdowns[-1], drawdown)
            self.last_ms = ts

    @staticmethod
    def sampled(values: array[float], points: int) -> list[float]:
        """At most `points` values, evenly spaced, always ending with the latest."""
        if not values:
            return [0.0]
        step = max(1, math.ceil(len(values) / points))
        out = list(values[::step])
        if (len(values) - 1) % step:
            out.append(values[-1])
        return out


def amendments_line(amendments: list[Amendment]) -> str:
    """The latest config amendment (njord.amend), when the session has any."""
    if not amendments:
        return ""
    a = amendments[-1]
    return (
        f"\n[yellow]config amended[/] ({len(amendments)}): {a.key} {a.old or 'unset'}"
        f" -> {a.new} by {a.posted_by} at {utc(a.posted_ms)}"
    )


def writer_line(
    lease: leases.Lease | None, run_status: str | None, now_ms: int, *, bar_lag_ms: float | None
) -> str:
    """Is anyone writing this session, and how fresh is the data it shows?"""
    if lease is None:
        return f"writer none ({run_status or 'no run'})"
    dead = leases.is_stale(lease, timeout_s=REMOTE_TIMEOUT_S, now_ms=now_ms)
    alive = "[red]gone[/]" if dead else "[green]alive[/]"
    text = f"writer pid {lease.pid} {alive} beat {leases.age_s(lease, now_ms):.0f}s ago"
    if bar_lag_ms is not None:
        # As the feed measured it: the venue's clock when the bar arrived, minus its close.
        # (The wall clock would be wrong against a simulator replaying past months.)
        text += f"  bar lag {bar_lag_ms / 1000:.1f}s"
    return text


class Dashboard(Screen[None]):
    DEFAULT_CSS = """
    #top { height: 5; }
    #state { width: 12; content-align: center middle; text-style: bold; }
    #facts { width: 1fr; }
    #equity { height: 3; margin: 0 1; }
    #drawdown { height: 1; margin: 0 1; }
    #drawdown > .sparkline--max-color { color: $error; }
    #drawdown > .sparkline--min-color { color: $warning; }
    #tables { height: 1fr; }
    #left { width: 1fr; }
    #positions { height: 4; }
    #sleeves { height: 4; }
    DataTable { height: 1fr; width: 1fr; }
    #summary { height: 2; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="top"):
            yield Static(id="state")
            yield Static(id="facts")
        yield Sparkline([0.0], id="equity")
        yield Sparkline([0.0], id="drawdown")
        with Horizontal(id="tables"):
            with Vertical(id="left"):
                yield DataTable(id="positions", cursor_type="none")
                yield DataTable(id="orders", cursor_type="none")
            yield DataTable(id="fills", cursor_type="none")
            yield DataTable(id="verdicts", cursor_type="none")
        yield Static(id="summary")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#positions", DataTable).add_columns("symbol", "qty", "uPnL")
        self.query_one("#orders", DataTable).add_columns("open order", "qty")
        self.query_one("#fills", DataTable).add_columns("fill", "side", "price")
        self.query_one("#verdicts", DataTable).add_columns("bar", "verdict")

    def show(self, facts: Facts, curve: EquityCurve, now_ms: int) -> None:
        state = facts.trading.state
        self.query_one("#state", Static).update(
            f"[{STATE_COLOURS.get(state, 'white')}]{state}[/]\n{facts.mode}"
        )
        self.show_writer(facts, curve, now_ms)
        width = max(self.size.width - 2, 10)
        self.query_one("#equity", Sparkline).data = curve.sampled(curve.values, width)
        self.query_one("#drawdown", Sparkline).data = curve.sampled(curve.drawdowns, width)
        positions = [(p.symbol, f"{p.qty:.4f}", f"{p.unrealised:,.0f}") for p in facts.positions]
        self._rows("#positions", positions)
        if facts.sleeves:  # several strategies: a row each, above the positions
            if not self.query("#sleeves"):
                table = DataTable[str](id="sleeves", cursor_type="none")
                self.query_one("#left", Vertical).mount(table, before="#positions")
                table.add_columns("strategy", "state", "P&L", "last")
            self._rows("#sleeves", [_sleeve_row(s) for s in facts.sleeves])
        orders = [(f"{o.side} {o.type}", f"{o.qty:.4f}") for o in facts.open_orders]
        self._rows("#orders", orders)
        fills = [(utc(x.ts_ms)[11:], x.side, f"{x.price:,.2f}") for x in facts.fills]
        self._rows("#fills", fills)
        verdicts = [(utc(v.ts_ms)[11:], f"{v.side} {v.reason}") for v in facts.verdicts]
        self._rows("#verdicts", verdicts)
        lat = _percentiles(facts.latency.get("decision_latency_ms"))
        rtt = facts.latency.get("order_rtt_ms")
        if rtt is not None:
            lat += f"  order rtt {_percentiles(rtt)}"
        alerts = [a.kind for a in facts.alerts if a.cleared_ms is None]
        blocks = ", ".join(f"{k} {v}" for k, v in sorted(facts.risk.blocks.items()))
        self.query_one("#summary", Static).update(
            f"decision latency {lat}  open orders {len(facts.open_orders)}\n"
            f"blocks {blocks or 'none'}  alerts "
            f"{'[red]' + ', '.join(alerts) + '[/]' if alerts else 'none'}"
            + amendments_line(facts.config_amendments)
            + channels_line(facts.alert_channels)
        )

    def show_writer(self, facts: Facts, curve: EquityCurve, now_ms: int) -> None:
        """Also called on a timer: a writer can die without committing anything."""
        self.query_one("#facts", Static).update(
            f"run {facts.run_id}  {facts.run_status}\n"
            f"{writer_line(facts.lease, facts.run_status, now_ms, bar_lag_ms=facts.bar_lag_ms)}\n"
            f"bars {facts.bars:,}  last bar {utc(facts.last_bar_ms)}\n"
            f"equity {facts.equity or 0:,.2f}  drawdown {curve.drawdown:.2%} "
            f"(max {curve.max_drawdown:.2%})\n"
            f"realised {facts.realised_pnl or 0:,.2f}  fees {facts.fees or 0:,.2f}  "
            f"cash {facts.cash or 0:,.2f}"
        )

    def _rows(self, selector: str, rows: Sequence[Sequence[Any]]) -> None:
        table = self.query_one(selector, DataTable)
        table.clear()
        table.add_rows(rows)


def channels_line(channels: list[ChannelState]) -> str:
    """Where alerts go and how the last delivery went; nothing when none is configured."""
    if not channels:
        return ""
    parts = []
    for c in channels:
        last = c.last
        state = "-" if last is None else ("ok" if last.ok else "[red]FAILED[/]")
        parts.append(f"{c.channel} {state}")
    return "  → " + ", ".join(parts)


def _sleeve_row(s: SleeveStatus) -> tuple[str, str, str, str]:
    """A sleeve: its id, state, P&L since it started, its latest decision."""
    state = "[green]ACTIVE[/]" if s.halted is None else "[red]HALTED[/]"
    pnl = "-" if s.pnl is None else f"{s.pnl:,.0f}"
    return (s.strategy_id, state, pnl, s.last_decision or "-")


def _percentiles(p: Percentiles | None) -> str:
    return f"p50 {p.p50} p95 {p.p95} p99 {p.p99} ms" if p else "-"
