"""Each indicator against an independent recomputation of its textbook formula (TA-Lib's
and pandas' definitions, written out in plain Python here), on a real-looking series."""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections.abc import Sequence

import numpy as np
import pytest

from njord import indicators

REL = 1e-9


def series(n: int = 300, seed: int = 3) -> list[float]:
    rng = random.Random(seed)
    price, out = 42_000.0, []
    for _ in range(n):
        price = round(price * (1 + rng.gauss(0, 0.002)), 2)
        out.append(price)
    return out


def same(got: np.ndarray, want: Sequence[float | None]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got.tolist(), want, strict=True):
        if w is None:
            assert math.isnan(g)
        else:
            assert g == pytest.approx(w, rel=REL)


def ema_by_weights(xs: list[float], period: int) -> list[float]:
    """pandas `ewm(span=period, adjust=False)`, as its closed form: y_t = a * sum over i of
    (1-a)^i x_(t-i), plus (1-a)^t x_0 for the seed."""
    a = 2 / (period + 1)
    out = []
    for t in range(len(xs)):
        y = sum(a * (1 - a) ** i * xs[t - i] for i in range(t)) + (1 - a) ** t * xs[0]
        out.append(y)
    return out


@pytest.mark.parametrize("period", [1, 5, 30])
def test_sma(period: int) -> None:
    xs = series()
    want = [
        None if i + 1 < period else statistics.fmean(xs[i + 1 - period : i + 1])
        for i in range(len(xs))
    ]
    same(indicators.sma(np.array(xs), period), want)


def test_ema_and_tema() -> None:
    xs = series(120)
    e1 = ema_by_weights(xs, 9)
    same(indicators.ema(np.array(xs), 9), e1)
    e2 = ema_by_weights(e1, 9)
    e3 = ema_by_weights(e2, 9)
    tema = [3 * a - 3 * b + c for a, b, c in zip(e1, e2, e3, strict=True)]
    same(indicators.tema(np.array(xs), 9), tema)


def test_rsi_is_wilders() -> None:
    xs = series()
    period = 14
    changes = [b - a for a, b in itertools.pairwise(xs)]
    gains = [max(c, 0.0) for c in changes]
    losses = [max(-c, 0.0) for c in changes]
    want: list[float | None] = [None] * period
    avg_gain = statistics.fmean(gains[:period])
    avg_loss = statistics.fmean(losses[:period])
    want.append(100 - 100 / (1 + avg_gain / avg_loss))
    for g, lo in zip(gains[period:], losses[period:], strict=True):
        avg_gain = (avg_gain * (period - 1) + g) / period
        avg_loss = (avg_loss * (period - 1) + lo) / period
        want.append(100 * avg_gain / (avg_gain + avg_loss))  # the same ratio, rearranged
    same(indicators.rsi(np.array(xs), period), want)


def test_rsi_of_a_series_that_never_falls_is_100() -> None:
    got = indicators.rsi(np.array([1.0, 2.0, 3.0, 4.0]), 2)
    assert math.isnan(got[1])
    assert got.tolist()[2:] == [100.0, 100.0]


def test_bollinger_uses_the_population_deviation() -> None:
    xs = series()
    lower, middle, upper = indicators.bollinger(np.array(xs), 20, 2.0)
    windows = [xs[i - 19 : i + 1] if i >= 19 else None for i in range(len(xs))]
    same(middle, [None if w is None else statistics.fmean(w) for w in windows])
    same(
        lower,
        [None if w is None else statistics.fmean(w) - 2 * statistics.pstdev(w) for w in windows],
    )
    same(
        upper,
        [None if w is None else statistics.fmean(w) + 2 * statistics.pstdev(w) for w in windows],
    )


def test_linear_regression_against_a_least_squares_solve() -> None:
    xs = series(80)
    period = 20
    intercept, slope, std = indicators.linear_regression(np.array(xs), period)
    for end in range(period - 1, len(xs)):
        ys = xs[end + 1 - period : end + 1]
        fit = statistics.linear_regression(range(period), ys)  # ordinary least squares
        residuals = [y - (fit.intercept + fit.slope * x) for x, y in enumerate(ys)]
        assert slope[end] == pytest.approx(fit.slope, rel=1e-7, abs=1e-9)
        assert intercept[end] == pytest.approx(fit.intercept, rel=REL)
        assert std[end] == pytest.approx(
            math.sqrt(sum(r * r for r in residuals) / (period - 2)), rel=1e-7
        )
    assert math.isnan(slope[period - 2])


def test_an_exact_line_has_no_residual() -> None:
    intercept, slope, std = indicators.linear_regression(np.array([1.0, 2.0, 3.0, 5.0]), 3)
    assert (intercept[2], slope[2], std[2]) == (1.0, 1.0, 0.0)
    assert slope[3] == 1.5


def test_short_input_and_bad_periods() -> None:
    assert np.isnan(indicators.sma(np.array([1.0, 2.0]), 5)).all()
    with pytest.raises(ValueError, match="period must be >= 1"):
        indicators.sma(np.array([1.0]), 0)
    with pytest.raises(ValueError, match="period must be >= 3"):
        indicators.linear_regression(np.array([1.0, 2.0, 3.0]), 2)
