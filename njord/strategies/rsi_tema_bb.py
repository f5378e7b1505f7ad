"""RSI + TEMA + Bollinger bands: buy an oversold dip below the lower band once the TEMA
turns up; sell when RSI is overbought or the close reaches the upper band."""

from __future__ import annotations

import math
from collections import deque

import msgspec

from njord.core.strategy import Context, Strategy
from njord.records import Bar, OrderIntent
from njord.strategies.sizing import enter_long, exit_long


class RsiTemaBbParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    rsi_period: int = 14
    tema_period: int = 9
    bb_period: int = 20
    # 1.5 bands and an RSI under 35: with 2.0 and 30 the three conditions never meet on
    # the sample month, and a sample that never trades demonstrates nothing.
    bb_k: float = 1.5
    oversold: float = 35.0
    overbought: float = 70.0
    fraction: float = 0.95

    def __post_init__(self) -> None:
        for name in ("rsi_period", "tema_period", "bb_period"):
            if getattr(self, name) < 2:
                raise ValueError(f"{name} must be >= 2, got {getattr(self, name)}")
        if not 0 <= self.oversold < self.overbought <= 100:
            raise ValueError(
                f"need 0 <= oversold < overbought <= 100, got {self.oversold}, {self.overbought}"
            )


class Rsi:
    """Wilder's RSI: simple average of the first `period` changes, then smoothed."""

    def __init__(self, period: int) -> None:
        self.period = period
        self._prev: float | None = None
        self._gain = self._loss = 0.0
        self._n = 0

    def update(self, close: float) -> float | None:
        prev, self._prev = self._prev, close
        if prev is None:
            return None
        change = close - prev
        gain, loss = max(change, 0.0), max(-change, 0.0)
        self._n += 1
        if self._n <= self.period:
            self._gain += gain / self.period
            self._loss += loss / self.period
            if self._n < self.period:
                return None
        else:
            self._gain = (self._gain * (self.period - 1) + gain) / self.period
            self._loss = (self._loss * (self.period - 1) + loss) / self.period
        if self._loss == 0:
            return 100.0
        return 100.0 - 100.0 / (1.0 + self._gain / self._loss)


class Tema:
    """Triple EMA: 3*e1 - 3*e2 + e3, seeded with the first value."""

    def __init__(self, period: int) -> None:
        self.alpha = 2.0 / (period + 1)
        self._e: list[float] | None = None

    def update(self, value: float) -> float:
        if self._e is None:
            self._e = [value, value, value]
        else:
            a, e = self.alpha, self._e
            e[0] += a * (value - e[0])
            e[1] += a * (e[0] - e[1])
            e[2] += a * (e[1] - e[2])
        return 3 * self._e[0] - 3 * self._e[1] + self._e[2]


def bollinger(window: deque[float], k: float) -> tuple[float, float]:
    mean = sum(window) / len(window)
    std = math.sqrt(sum((x - mean) ** 2 for x in window) / len(window))
    return mean - k * std, mean + k * std


class RsiTemaBollinger(Strategy):
    Params = RsiTemaBbParams

    def __init__(self, params: RsiTemaBbParams) -> None:
        super().__init__(params)
        self._rsi = Rsi(params.rsi_period)
        self._tema = Tema(params.tema_period)
        self._prev_tema: float | None = None
        self._window: deque[float] = deque(maxlen=params.bb_period)

    def on_bar(self, ctx: Context, symbol: str, bar: Bar) -> list[OrderIntent]:
        p = self.params
        rsi = self._rsi.update(bar.close)
        tema, prev_tema = self._tema.update(bar.close), self._prev_tema
        self._prev_tema = tema
        self._window.append(bar.close)
        if rsi is None or prev_tema is None or len(self._window) < p.bb_period:
            return []
        lower, upper = bollinger(self._window, p.bb_k)
        if ctx.state.position_e8(symbol) > 0:
            if rsi > p.overbought or bar.close >= upper:
                return exit_long(ctx, symbol, "rsi_bb_exit")
            return []
        if rsi < p.oversold and bar.close < lower and tema > prev_tema:
            return [enter_long(ctx, symbol, bar.close, p.fraction, "rsi_bb_entry")]
        return []
