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


class SmaCrossover(Strategy):
    Params = SmaParams

    def __init__(self, params: SmaParams) -> None:
        super().__init__(params)
        self._fast, self._slow = params.fast, params.slow
        self._ring = [0] * params.slow
        self._count = 0
        self._fast_sum = 0
        self._slow_sum = 0
        self._above: bool | None = None

    def on_bar(self, ctx: Context, symbol: str, bar: Bar) -> list[OrderIntent]:
        # Integer sums of e8 closes: exact, so a crossover never hinges on float rounding.
        close = round(bar.close * E8)
        i = self._count % self._slow
        self._slow_sum += close - self._ring[i]
        self._fast_sum += close
        if self._count >= self._fast:
            self._fast_sum -= self._ring[(self._count - self._fast) % self._slow]
        self._ring[i] = close
        self._count += 1
        if self._count < self._slow:
            return []
        above = self._fast_sum * self._slow > self._slow_sum * self._fast
        crossed = self._above is not None and above != self._above
        self._above = above
        if not crossed:
            return []
        if above:
            if ctx.state.position_e8(symbol) > 0:
                return []
            fraction = self.params.fraction
            return [enter_long(ctx, symbol, bar.close, fraction, "sma_cross_up")]
        return exit_long(ctx, symbol, "sma_cross_down")
