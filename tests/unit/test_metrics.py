from __future__ import annotations

import math

import pytest

from njord.core.metrics import compute
from njord.core.time import DAY_MS


def curve(values: list[float]) -> list[tuple[int, float]]:
    return [(i * DAY_MS, v) for i, v in enumerate(values)]


def test_flat_curve_no_trades() -> None:
    m = compute(initial=100.0, points=curve([100.0] * 5), trade_pnls=[], bars_in_market=0, fees=0.0)
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
        points=curve([110.0, 99.0, 108.9]),
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
        initial=100.0, points=curve([101.0, 102.0]), trade_pnls=[1, 1], bars_in_market=1, fees=0.0
    )
    assert wins.win_rate == 1.0
    assert wins.profit_factor is None
    assert wins.max_drawdown == 0
    losses = compute(
        initial=100.0, points=curve([99.0, 98.0]), trade_pnls=[-1, -1], bars_in_market=1, fees=0.0
    )
    assert losses.win_rate == 0.0
    assert losses.avg_loss == -1
    assert losses.max_drawdown == pytest.approx(0.02)
