"""Trendline break: a least-squares line over the last `window` closes; enter long when
the close breaks above the line by `k` residual standard deviations, exit when it breaks
below by the same margin."""

from __future__ import annotations

import math
from collections import deque

import msgspec

from njord.core.strategy import Context, Strategy
from njord.records import Bar, OrderIntent
from njord.strategies.sizing import enter_long, exit_long


class TrendlineParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    window: int = 60
    k: float = 2.0
    fraction: float = 0.95

    def __post_init__(self) -> None:
        if self.window < 3:
            raise ValueError(f"window must be >= 3, got {self.window}")
        if self.k <= 0:
            raise ValueError(f"k must be > 0, got {self.k}")


def fit_line(ys: list[float]) -> tuple[float, float, float]:
    """(intercept, slope, residual std) of ys against x = 0..n-1."""
    n = len(ys)
    mean_x = (n - 1) / 2
    mean_y = sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in range(n))
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(ys))
    slope = sxy / sxx
    intercept = mean_y - slope * mean_x
    ss = sum((y - (intercept + slope * x)) ** 2 for x, y in enumerate(ys))
    return intercept, slope, math.sqrt(ss / (n - 2))


class TrendlineBreak(Strategy):
    Params = TrendlineParams

    def __init__(self, params: TrendlineParams) -> None:
        super().__init__(params)
        self._closes: deque[float] = deque(maxlen=params.window)

    def on_bar(self, ctx: Context, symbol: str, bar: Bar) -> list[OrderIntent]:
        window = list(self._closes)
        self._closes.append(bar.close)
        if len(window) < self.params.window:
            return []
        intercept, slope, std = fit_line(window)
        line = intercept + slope * len(window)  # the trendline projected onto this bar
        margin = self.params.k * std
        holding = ctx.state.position_e8(symbol) > 0
        if not holding and bar.close > line + margin:
            return [enter_long(ctx, symbol, bar.close, self.params.fraction, "trend_break_up")]
        if holding and bar.close < line - margin:
            return exit_long(ctx, symbol, "trend_break_down")
        return []
