"""SMA crossover: long when the fast average crosses above the slow one, flat when below."""

from __future__ import annotations

import msgspec

from njord.core.money import E8
from njord.core.strategy import Context, Strategy
from njord.records import Bar, OrderIntent
from njord.strategies.sizing import enter_long, exit_long


class SmaParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    fast: int = 10
    slow: int = 30
    fraction: float = 0.95

    def __post_init__(self) -> None:
        if self.fast < 1:
            raise ValueError(f"fast must be >= 1, got {self.fast}")
        if self.fast >= self.slow:
            raise ValueError(f"fast must be < slow, got fast={self.fast} slow={self.slow}")
        if not 0 < self.fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction}")


class SmaState(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    fast_sum: int
    slow_sum: int
    above: bool | None


class SmaCrossover(Strategy):
    Params = SmaParams

    def __init__(self, params: SmaParams) -> None:
        super().__init__(params)
        self._fast, self._slow = params.fast, params.slow
        self.history = params.slow + 1  # this bar, and the one leaving the slow window
        self._fast_sum = 0
        self._slow_sum = 0
        self._above: bool | None = None

    def on_bar(self, ctx: Context, symbol: str, bar: Bar) -> list[OrderIntent]:
        # Integer sums of e8 closes: exact, so a crossover never hinges on float rounding.
        # Running sums, not a sum per bar: each bar adds its close and drops the one that
        # left each window, read from the history.
        closes = ctx.history(symbol, bar.timeframe, self.history).close
        n = len(closes)
        close = round(bar.close * E8)
        self._slow_sum += close
        self._fast_sum += close
        if n > self._slow:
            self._slow_sum -= round(closes.item(0) * E8)
        if n > self._fast:
            self._fast_sum -= round(closes.item(n - 1 - self._fast) * E8)
        if n < self._slow:
            return []
        above = self._fast_sum * self._slow > self._slow_sum * self._fast
        crossed = self._above is not None and above != self._above
        self._above = above
        if not crossed:
            return []
        if above:
            if ctx.state.holds(symbol):
                return []
            fraction = self.params.fraction
            return [enter_long(ctx, symbol, bar.close, fraction, "sma_cross_up")]
        return exit_long(ctx, symbol, "sma_cross_down")

    def snapshot_state(self) -> bytes:
        return self.encode_state(SmaState(self._fast_sum, self._slow_sum, self._above))

    def restore_state(self, data: bytes) -> None:
        state = self.decode_state(data, SmaState)
        self._fast_sum, self._slow_sum, self._above = state.fast_sum, state.slow_sum, state.above
