"""Indicators over bar history: what the samples need, vectorised over numpy arrays.

Every function takes a 1-D float array (e.g. `ctx.history(...).close`) and returns
arrays aligned with it, NaN where the window is not full yet. The recursive ones (EMA,
TEMA, RSI) depend on every value since their seed, so a strategy that wants the same
number bar after bar, whatever its history length, feeds them bar by bar through their
`*State` classes; the array functions run those same updates over an array.
"""

from __future__ import annotations

import math
from typing import Annotated

import msgspec
import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

Floats = npt.NDArray[np.float64]


def _windows(values: Floats, period: int) -> Floats:
    if period < 1:
        raise ValueError(f"period must be >= 1, got {period}")
    return sliding_window_view(values, period) if len(values) >= period else np.zeros((0, period))


def _aligned(values: Floats, period: int, tail: Floats) -> Floats:
    out = np.full(len(values), np.nan)
    out[period - 1 :] = tail
    return out


def sma(values: Floats, period: int) -> Floats:
    """Simple moving average of the last `period` values."""
    return _aligned(values, period, _windows(values, period).mean(axis=1))


def bollinger(values: Floats, period: int, k: float) -> tuple[Floats, Floats, Floats]:
    """(lower, middle, upper): the SMA minus and plus k population standard deviations
    (TA-Lib's BBANDS with MA type SMA)."""
    w = _windows(values, period)
    mean = w.mean(axis=1)
    std = np.sqrt(((w - mean[:, None]) ** 2).mean(axis=1))
    return (
        _aligned(values, period, mean - k * std),
        _aligned(values, period, mean),
        _aligned(values, period, mean + k * std),
    )


def linear_regression(values: Floats, period: int) -> tuple[Floats, Floats, Floats]:
    """(intercept, slope, residual std) of a least-squares line through each window of
    `period` values against x = 0..period-1; the std divides by period - 2 (the
    standard error of the regression). `intercept + slope * period` projects the line
    one step past the window."""
    if period < 3:
        raise ValueError(f"period must be >= 3, got {period}")
    w = _windows(values, period)
    x = np.arange(period, dtype=np.float64) - (period - 1) / 2
    mean = w.mean(axis=1)
    slope = ((w - mean[:, None]) * x).sum(axis=1) / (x * x).sum()
    intercept = mean - slope * (period - 1) / 2
    fitted = intercept[:, None] + slope[:, None] * np.arange(period)
    std = np.sqrt(((w - fitted) ** 2).sum(axis=1) / (period - 2))
    return (
        _aligned(values, period, intercept),
        _aligned(values, period, slope),
        _aligned(values, period, std),
    )


class EmaState:
    """An exponential moving average, alpha = 2 / (period + 1), seeded with the first
    value (pandas' `ewm(span=period, adjust=False)`)."""

    __slots__ = ("alpha", "value")

    def __init__(self, period: int) -> None:
        if period < 1:
            raise ValueError(f"period must be >= 1, got {period}")
        self.alpha = 2.0 / (period + 1)
        self.value: float | None = None

    def update(self, x: float) -> float:
        if self.value is None:
            self.value = x
        else:
            self.value += self.alpha * (x - self.value)
        return self.value


class TemaSnapshot(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    """A `TemaState`'s values, for a strategy's state snapshot (the period is the
    strategy's param, not part of it)."""

    e1: float | None
    e2: float | None
    e3: float | None


class TemaState:
    """Triple EMA: 3*e1 - 3*e2 + e3, each EMA of the one before, all seeded with the
    first value."""

    __slots__ = ("_e1", "_e2", "_e3")

    def __init__(self, period: int) -> None:
        self._e1, self._e2, self._e3 = EmaState(period), EmaState(period), EmaState(period)

    def update(self, x: float) -> float:
        e1 = self._e1.update(x)
        e2 = self._e2.update(e1)
        e3 = self._e3.update(e2)
        return 3 * e1 - 3 * e2 + e3

    def snapshot(self) -> TemaSnapshot:
        return TemaSnapshot(self._e1.value, self._e2.value, self._e3.value)

    def restore(self, snapshot: TemaSnapshot) -> None:
        self._e1.value, self._e2.value, self._e3.value = snapshot.e1, snapshot.e2, snapshot.e3


class RsiSnapshot(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    """An `RsiState`'s values, for a strategy's state snapshot."""

    prev: float | None
    gain: float
    loss: float
    n: Annotated[int, msgspec.Meta(ge=0)]  # changes seen


class RsiState:
    """Wilder's RSI: the simple mean of the first `period` gains and losses, then
    Wilder's smoothing; None until `period` changes have been seen."""

    __slots__ = ("_gain", "_loss", "_n", "_prev", "period")

    def __init__(self, period: int) -> None:
        if period < 1:
            raise ValueError(f"period must be >= 1, got {period}")
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

    def snapshot(self) -> RsiSnapshot:
        return RsiSnapshot(self._prev, self._gain, self._loss, self._n)

    def restore(self, snapshot: RsiSnapshot) -> None:
        self._prev, self._gain, self._loss = snapshot.prev, snapshot.gain, snapshot.loss
        self._n = snapshot.n


def ema(values: Floats, period: int) -> Floats:
    state = EmaState(period)
    return np.array([state.update(float(x)) for x in values], dtype=np.float64)


def tema(values: Floats, period: int) -> Floats:
    state = TemaState(period)
    return np.array([state.update(float(x)) for x in values], dtype=np.float64)


def rsi(values: Floats, period: int) -> Floats:
    state = RsiState(period)
    out = [state.update(float(x)) for x in values]
    return np.array([math.nan if v is None else v for v in out], dtype=np.float64)
