from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from njord.core.history import Floats, Ints
from njord.core.metrics import columns_of, compute
from njord.core.time import DAY_MS


def curve(values: list[float]) -> Iterator[tuple[Ints, Floats]]:
    return columns_of([(i * DAY_MS, v) for i, v in enumerate(values)])


def test_flat_curve_no_trades() -> None:
    m = compute(
        initial=100.0, columns=curve([100.0] * 5), trade_pnls=[], bars_in_market=0, fees=0.0
    )
    assert m.total_return == 0
    assert m.max_drawdown == 0
    assert m.sharpe is None  # zero volatility: undefined, not infinite
    assert m.trades == 0
    assert m.win_rate is None
    assert m.profit_factor is None
    assert m.exposure == 0


def test_hand_computed_curve() -> None:
    # daily closes 100 -> 110 -> 99 -> 108.9: returns +10%, -10%, +10%
    m = compute(
        initial=100.0,
        columns=curve([110.0, 99.0, 108.9]),
        trade_pnls=[10, -11, 9.9],
        bars_in_market=3,
        fees=0.0,
    )
    rets = [0.1, -0.1, 0.1]
    mean = sum(rets) / 3
    sd = math.sqrt(sum((r - mean) ** 2 for r in rets) / 2)
    assert m.total_return == pytest.approx(0.089)
    assert m.sharpe == pytest.approx(mean / sd * math.sqrt(365))
    assert m.max_drawdown == pytest.approx(0.1)
    assert m.max_drawdown_days == pytest.approx(2.0)  # still under water at the end
    assert m.win_rate == pytest.approx(2 / 3)
    assert m.profit_factor == pytest.approx(19.9 / 11)
    assert m.largest_loss == -11


def test_all_wins_and_all_losses() -> None:
    wins = compute(
        initial=100.0, columns=curve([101.0, 102.0]), trade_pnls=[1, 1], bars_in_market=1, fees=0.0
    )
    assert wins.win_rate == 1.0
    assert wins.profit_factor is None
    assert wins.max_drawdown == 0
    losses = compute(
        initial=100.0, columns=curve([99.0, 98.0]), trade_pnls=[-1, -1], bars_in_market=1, fees=0.0
    )
    assert losses.win_rate == 0.0
    assert losses.avg_loss == -1
    assert losses.max_drawdown == pytest.approx(0.02)


def scalar_pass(initial: float, points: list[tuple[int, float]]) -> tuple[list[float], float, int]:
    """The one-point-at-a-time pass the chunked one replaced (issue 19): daily closes, the
    worst drawdown and the longest time under water."""
    closes, day, peak, peak_ts, worst, longest = [initial], None, initial, 0, 0.0, 0
    for i, (ts, equity) in enumerate(points):
        if i == 0:
            peak_ts = ts
        if ts // DAY_MS != day:
            closes.append(equity)
            day = ts // DAY_MS
        else:
            closes[-1] = equity
        if equity >= peak:
            peak, peak_ts = equity, ts
        else:
            worst = max(worst, (peak - equity) / peak)
            longest = max(longest, ts - peak_ts)
    return closes, worst, longest


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from([60_000, 3_600_000, DAY_MS, 3 * DAY_MS]),
            st.floats(min_value=0.2, max_value=3.0),  # of the initial (CAGR stays finite)
        ),
        max_size=60,
    ),
    initial=st.sampled_from([100.0, 10_000.0, 0.5]),
    chunk=st.integers(min_value=1, max_value=70),
)
def test_chunked_pass_gives_the_scalar_pass_floats(
    steps: list[tuple[int, float]], initial: float, chunk: int
) -> None:
    ts, points = 1_700_000_000_000, []
    for step, ratio in steps:
        ts += step
        points.append((ts, initial * ratio))
    m = compute(
        initial=initial,
        columns=columns_of(points, chunk),
        trade_pnls=[],
        bars_in_market=0,
        fees=0.0,
    )
    closes, worst, longest = scalar_pass(initial, points)
    assert m.max_drawdown == worst
    assert m.max_drawdown_days == longest / DAY_MS
    rets = [b / a - 1 for a, b in itertools.pairwise(closes) if a]
    if len(rets) >= 2:
        mean = sum(rets) / len(rets)
        sd = math.sqrt(sum((r - mean) ** 2 for r in rets) / (len(rets) - 1))
        assert m.volatility == sd * math.sqrt(365)
    else:
        assert m.volatility is None
