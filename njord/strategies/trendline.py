"""Trendline break: a least-squares line over the last `window` closes; enter long when
the close breaks above the line by `k` residual standard deviations, exit when it breaks
below by the same margin."""

from __future__ import annotations

import msgspec

from njord.core.strategy import Context, Strategy
from njord.indicators import linear_regression
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


class TrendlineState(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    """Nothing: every decision is a function of the history alone. The snapshot still
    says so, and a rebuild starts at it instead of feeding every bar."""


class TrendlineBreak(Strategy):
    Params = TrendlineParams

    def __init__(self, params: TrendlineParams) -> None:
        super().__init__(params)
        self.history = params.window + 1  # the window, then this bar

    def on_bar(self, ctx: Context, symbol: str, bar: Bar) -> list[OrderIntent]:
        window = self.params.window
        closes = ctx.history(symbol, bar.timeframe, window + 1).close
        if len(closes) <= window:
            return []
        intercept, slope, std = linear_regression(closes[:-1], window)
        line = float(intercept[-1] + slope[-1] * window)  # the line projected onto this bar
        margin = self.params.k * float(std[-1])
        holding = ctx.state.holds(symbol)
        if not holding and bar.close > line + margin:
            return [enter_long(ctx, symbol, bar.close, self.params.fraction, "trend_break_up")]
        if holding and bar.close < line - margin:
            return exit_long(ctx, symbol, "trend_break_down")
        return []

    def snapshot_state(self) -> bytes:
        return self.encode_state(TrendlineState())

    def restore_state(self, data: bytes) -> None:
        self.decode_state(data, TrendlineState)
