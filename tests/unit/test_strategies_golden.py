"""Golden tests: a fixed bar sequence in, the exact intents out, for each shipped sample."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np

from njord import strategies
from njord.core.bars import Timeframes
from njord.core.money import E8, to_e8
from njord.core.strategy import Context, PortfolioView
from njord.core.time import MINUTE_MS
from njord.records import Bar, Side


def run(
    name: str, params: dict[str, Any], closes: list[float]
) -> list[tuple[int, Side, Decimal, str]]:
    """Feeds closes to the strategy with 1,000 cash; an intent fills at once at its close."""
    strategy = strategies.build(name, params)
    book = {"cash": 1000 * E8, "pos": 0}
    timeframes = Timeframes("X", strategy.timeframes, strategy.history)
    ts = np.arange(len(closes), dtype=np.int64) * MINUTE_MS
    values = np.array(closes, dtype=np.float64)
    timeframes.load(ts, values, values, values, values, np.ones(len(closes)))
    ctx = Context(
        params=strategy.params,
        state=PortfolioView(
            cash_e8=lambda: book["cash"], position_e8=lambda s: book["pos"], open_orders=list
        ),
        log=lambda m: None,
        history=timeframes.history,
    )
    out = []
    for i, close in enumerate(closes):
        [bar] = timeframes.step(Bar(i * MINUTE_MS, close, close, close, close, 1.0))
        for intent in strategy.on_bar(ctx, "X", bar):
            out.append((i, intent.side, intent.qty, intent.tag))
            qty = to_e8(intent.qty)
            sign = 1 if intent.side is Side.BUY else -1
            book["pos"] += sign * qty
            book["cash"] -= sign * qty * round(close * E8) // E8
    return out


def test_sma_crossover_golden() -> None:
    closes = [10, 10, 10, 11, 12, 12, 9, 8, 8, 12]
    got = run("sma_crossover", {"fast": 2, "slow": 3, "fraction": 0.95}, closes)
    assert got == [
        # fast (10+11)/2 = 10.5 > slow 31/3: cross up, 1000 x 0.95 / 11
        (3, Side.BUY, Decimal("950.00") / Decimal("11"), "sma_cross_up"),
        # fast (12+9)/2 = 10.5 < slow 33/3 = 11: cross down, sell the whole position
        (6, Side.SELL, Decimal("86.36363636"), "sma_cross_down"),
        # fast (8+12)/2 = 10 > slow 28/3: up again. Cash left: 1000 - 86.36363636 x 11
        # + 86.36363636 x 9 = 827.27272728, and 95% of it buys at 12.
        (9, Side.BUY, Decimal("827.27272728") * Decimal("0.95") / Decimal("12"), "sma_cross_up"),
    ]


def test_trendline_break_golden() -> None:
    # [1,2,3] fit exactly (std 0): the line projects to 4 and 5 breaks it upwards.
    # Then [2,3,5] fits slope 1.5, line at x=3 is 6.33, std 0.41: 1 breaks it downwards.
    got = run("trendline_break", {"window": 3, "k": 1.0, "fraction": 0.5}, [1, 2, 3, 5, 1])
    assert got == [
        (3, Side.BUY, Decimal("500.0") / Decimal("5"), "trend_break_up"),
        (4, Side.SELL, Decimal("100"), "trend_break_down"),
    ]


def test_rsi_tema_bollinger_golden() -> None:
    params = {
        "rsi_period": 2,
        "tema_period": 2,
        "bb_period": 3,
        "bb_k": 0.1,
        "oversold": 30.0,
        "overbought": 70.0,
        "fraction": 0.5,
    }
    closes = [100, 100, 90, 80, 70, 71, 60, 75, 95, 96]
    got = run("rsi_tema_bb", params, closes)
    # Bar 5: RSI(2) = 100 - 100 / (1 + 0.5 / 4.375) = 10.26 < 30, close 71 < lower band
    # 73.22 of [80, 70, 71], and TEMA turned up (70.48 > 69.88): enter with half the cash.
    # Bar 7: close 75 >= upper band 69.30 of [71, 60, 75]: exit the whole position.
    assert got == [
        (5, Side.BUY, Decimal("500.0") / Decimal("71"), "rsi_bb_entry"),
        (7, Side.SELL, Decimal("7.04225352"), "rsi_bb_exit"),
    ]
