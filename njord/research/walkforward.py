"""`njord walkforward`: for each window, sweep on the train range, pick the best params by
a metric, and trade them out of sample on the test range that follows.

Three phases, each a sweep on the chosen executor: every (window, combination) in sample,
then each window's choice alone on its test range (the per-window out-of-sample rows),
then one session over all the test ranges whose strategy is `Scheduled`: the chosen
params switch at each window's first bar. That stitched session is an ordinary backtest
(its schedule is its params), so `njord report`, `audit` and `verify` work on it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from njord import config as configuration
from njord import strategies, wiring
from njord.core.money import E8
from njord.core.strategy import Context, Strategy
from njord.core.time import timeframe_ms
from njord.errors import ConfigError
from njord.records import Bar, Fill, OrderIntent, Side
from njord.research import sweep
from njord.research.grid import PARAMS, Grid, column

SCHEDULED = "njord.research.walkforward:Scheduled"
WINDOW_TAG = "walkforward_window"
START, END = "data.start", "data.end"
OOS = ("total_return", "sharpe", "max_drawdown", "trades")


class Window(msgspec.Struct, frozen=True):
    index: int
    train_from_ms: int
    train_to_ms: int
    test_from_ms: int
    test_to_ms: int


class ScheduledParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    strategy: str = "sma_crossover"
    # JSON: [{"from_ms": .., "to_ms": .., "params": {..}}, ...], sorted, not overlapping
    schedule: str = "[]"


class Scheduled(Strategy):
    """The walk-forward's out-of-sample trader: inside a window, a fresh instance of the
    inner strategy with that window's params decides; at a window's first bar whatever the
    previous one left open is closed first (each window starts flat, as its separate
    backtest does); between windows it stays out."""

    Params = ScheduledParams

    def __init__(self, params: ScheduledParams) -> None:
        super().__init__(params)
        self._cls = strategies.resolve(params.strategy)
        self._windows = json.loads(params.schedule)
        self._next = 0
        self._inner: Strategy | None = None
        self._from_ms = self._to_ms = 0
        # ctx.history keeps what the hungriest window's strategy asks for (its params may
        # size it, as the samples' do).
        self.history = max(
            (self._make(w["params"]).history for w in self._windows), default=self._cls.history
        )

    def _make(self, params: dict[str, object]) -> Strategy:
        return strategies.build(self._cls, params)

    def on_bar(self, ctx: Context, symbol: str, bar: Bar) -> list[OrderIntent]:
        fresh = self._advance(ctx.now_ms)
        if self._inner is None:
            return self._close(ctx, symbol)
        # The inner reads its own params, and history from its window's start only, as in
        # a separate backtest of that window.
        outer, ctx.params = ctx.params, self._inner.params
        history, since = ctx.history, self._from_ms
        ctx.history = lambda sym, tf, n: history(sym, tf, n).since(since)
        try:
            intents = self._inner.on_bar(ctx, symbol, bar)
        finally:
            ctx.params, ctx.history = outer, history
        closing = self._close(ctx, symbol) if fresh else []
        return closing or intents

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        if self._inner is not None:
            self._inner.on_fill(ctx, fill)

    def _advance(self, now_ms: int) -> bool:
        """Switch to the window holding `now_ms`; True on a window's first bar."""
        if self._inner is not None and now_ms >= self._to_ms:
            self._inner = None
        while self._next < len(self._windows) and self._windows[self._next]["to_ms"] <= now_ms:
            self._next += 1
        if self._next < len(self._windows) and self._windows[self._next]["from_ms"] <= now_ms:
            window = self._windows[self._next]
            self._next += 1
            self._inner = self._make(window["params"])
            self._from_ms, self._to_ms = window["from_ms"], window["to_ms"]
            return True
        return False

    def _close(self, ctx: Context, symbol: str) -> list[OrderIntent]:
        held = ctx.state.position_e8(symbol)
        if held == 0:
            return []
        side = Side.SELL if held > 0 else Side.BUY
        qty = Decimal(abs(held)) / E8
        return [OrderIntent(symbol=symbol, side=side, qty=qty, tag=WINDOW_TAG)]


def parse_span(text: str, flag: str) -> int:
    """`14d`, `12h`, `90m` in milliseconds."""
    from njord.live import parse_duration

    return int(parse_duration(text, flag) * 1000)


def windows(
    first_ms: int, end_ms: int, *, train_ms: int, test_ms: int, step_ms: int
) -> list[Window]:
    if step_ms < test_ms:
        raise ConfigError("--step must be at least --test: test ranges may not overlap")
    out: list[Window] = []
    start = first_ms
    while start + train_ms + test_ms <= end_ms:
        test_from = start + train_ms
        out.append(Window(len(out), start, test_from, test_from, test_from + test_ms))
        start += step_ms
    if not out:
        days = (end_ms - first_ms) / 86_400_000
        raise ConfigError(f"the data spans {days:.1f} days: too short for one --train + --test")
    return out


def data_span(config: configuration.Config) -> tuple[int, int]:
    """First bar and the end of the last one (ms) in the configured range."""
    feed = wiring.plan_backtest(config).feed.fresh()
    first = last = None
    for batch in feed.checked_batches():
        stamps = batch.column("ts_ms")
        if len(stamps):
            first = stamps[0].as_py() if first is None else first
            last = stamps[len(stamps) - 1].as_py()
    if first is None or last is None:
        raise ConfigError("no bars in the selected range (data.start / data.end)")
    return int(first), int(last) + timeframe_ms(config.data.timeframe)


def iso(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).isoformat()


def in_sample_plan(config: configuration.Config, grid: Grid, spans: list[Window]) -> sweep.Plan:
    outside = [k for k in grid.keys if not k.startswith(PARAMS)]
    if outside:
        raise ConfigError(
            f"walkforward varies strategy params only, not {outside[0]}; set it with --set"
        )
    combos = [
        {START: iso(w.train_from_ms), END: iso(w.train_to_ms), **combo}
        for w in spans
        for combo in grid.combos
    ]
    return sweep.plan_of(config, Grid([START, END, *grid.keys], combos))


def choose(
    rows: list[dict[str, Any]], grid: Grid, spans: list[Window], metric: str
) -> dict[int, tuple[dict[str, Any], Any]]:
    """window -> (chosen params by key, its in-sample metric), for windows with a
    combination that ran and has the metric."""
    chosen = {}
    size = len(grid.combos)
    for w in spans:
        mine = sweep.ordered([r for r in rows if r["combo"] // size == w.index], metric)
        best = mine[0] if mine else None
        if best is None or best["status"] != "ok" or best.get(metric) is None:
            continue
        combo = grid.combos[best["combo"] % size]
        chosen[w.index] = (combo, best[metric])
    return chosen


def out_of_sample_plan(
    config: configuration.Config, grid: Grid, spans: list[Window], chosen: dict[int, Any]
) -> tuple[sweep.Plan, list[int]]:
    order = [w.index for w in spans if w.index in chosen]
    combos = [
        {START: iso(spans[i].test_from_ms), END: iso(spans[i].test_to_ms), **chosen[i][0]}
        for i in order
    ]
    return sweep.plan_of(config, Grid([START, END, *grid.keys], combos)), order


def stitched_config(
    config: configuration.Config, spans: list[Window], chosen: dict[int, Any]
) -> configuration.Config:
    schedule = [
        {
            "from_ms": spans[i].test_from_ms,
            "to_ms": spans[i].test_to_ms,
            "params": {**config.strategy.params, **{column(k): v for k, v in combo.items()}},
        }
        for i, (combo, _) in sorted(chosen.items())
    ]
    inner = strategies.resolve(config.strategy.name)
    return configuration.with_values(
        config,
        {
            "strategy.name": SCHEDULED,
            # The bars the inner strategy gets in its own backtests (Scheduled declares none).
            "strategy.timeframes": list(wiring.declared_timeframes(config, inner)),
            "strategy.params": {
                "strategy": config.strategy.name,
                "schedule": json.dumps(schedule, sort_keys=True),
            },
            START: iso(spans[0].test_from_ms),
            END: iso(spans[-1].test_to_ms),
        },
    )


def summary_rows(
    grid: Grid,
    spans: list[Window],
    chosen: dict[int, Any],
    oos: dict[int, dict[str, Any]],
    metric: str,
) -> list[dict[str, Any]]:
    out = []
    for w in spans:
        row: dict[str, Any] = {
            "window": w.index,
            "train_from": iso(w.train_from_ms),
            "train_to": iso(w.train_to_ms),
            "test_from": iso(w.test_from_ms),
            "test_to": iso(w.test_to_ms),
        }
        combo, score = chosen.get(w.index, ({}, None))
        row.update({column(k): combo.get(k) for k in grid.keys})
        row[f"in_sample_{metric}"] = score
        result = oos.get(w.index, {})
        row["status"] = result.get("status", "no combination ran")
        row.update({f"out_of_sample_{m}": result.get(m) for m in OOS})
        out.append(row)
    return out


def summary_columns(grid: Grid, metric: str) -> list[str]:
    return [
        "window",
        "train_from",
        "train_to",
        "test_from",
        "test_to",
        *grid.columns,
        f"in_sample_{metric}",
        "status",
        *(f"out_of_sample_{m}" for m in OOS),
    ]


class Result(msgspec.Struct, kw_only=True):
    rows: list[dict[str, Any]]
    header: list[str]
    stitched_db: Path
    report: Path


Progress = Callable[[int, str], tuple[Callable[[int], None], Callable[[], None]]]


def walk(
    config: configuration.Config,
    grid: Grid,
    where: Path,
    *,
    executor: sweep.Executor,
    metric: str,
    spans: list[Window],
    progress: Progress,
) -> Result:
    """The three phases, each phase's sessions in a folder of `where`."""
    from njord import launch
    from njord.loop import Stop

    plan = in_sample_plan(config, grid, spans)
    rows = _phase(plan, where / "in_sample", executor, progress, "in-sample combinations")
    chosen = choose(rows, grid, spans, metric)
    if not chosen:
        raise ConfigError(
            f"no window has an in-sample combination with a {metric} (Sharpe, Sortino and "
            "volatility need two days of daily returns: a longer --train, or --metric "
            "total_return)"
        )
    plan, order = out_of_sample_plan(config, grid, spans, chosen)
    rows = _phase(plan, where / "out_of_sample", executor, progress, "out-of-sample windows")
    oos = {order[row["combo"]]: row for row in rows}
    stitched = stitched_config(config, spans, chosen)
    run = launch.backtest(
        stitched,
        env_prefix="NJORD_",
        db_path=where / "stitched.db",
        out_dir=where / "stitched",
        echo=False,
    )
    advance, close = progress(run.total, "stitched bars")
    try:
        launch.drive(run, stop=Stop(), progress=advance)
    finally:
        close()
    launch.wrap_up(run.session, where / "stitched", report=True)
    return Result(
        rows=summary_rows(grid, spans, chosen, oos, metric),
        header=summary_columns(grid, metric),
        stitched_db=where / "stitched.db",
        report=where / "stitched" / "report.html",
    )


def _phase(
    plan: sweep.Plan, where: Path, executor: sweep.Executor, progress: Progress, unit: str
) -> list[dict[str, Any]]:
    skipped, runnable = sweep.prepare(plan)
    facts = sweep.measure(runnable)
    sweep.start(plan, where)
    advance, close = progress(len(runnable), unit)
    try:
        sweep.run(where, runnable, facts, executor, progress=advance)
    finally:
        close()
    return sweep.rows(plan, where, skipped)
