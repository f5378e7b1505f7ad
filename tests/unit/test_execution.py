from __future__ import annotations

from decimal import Decimal

import pytest

from njord.core.execution import CostModel, SymbolRules, limit_fill_price_e8, market_price_e8
from njord.core.money import E8
from njord.records import Order, OrderStatus, OrderType, Side

RULES = SymbolRules()


def limit(side: Side, price: int) -> Order:
    return Order(
        client_order_id="c",
        intent_id=1,
        symbol="X",
        side=side,
        type=OrderType.LIMIT,
        qty_e8=E8,
        limit_e8=price * E8,
        status=OrderStatus.SUBMITTED,
        created_ms=0,
    )


@pytest.mark.parametrize(
    ("side", "limit_px", "bar", "expected"),
    [
        (Side.BUY, 100, (105, 106, 101, 104), None),  # never trades down to 100
        (Side.BUY, 100, (105, 106, 100, 104), 100),  # touches the limit exactly
        (Side.BUY, 100, (98, 99, 95, 97), 98),  # opens through it: the open, a better price
        (Side.SELL, 100, (95, 99, 94, 96), None),
        (Side.SELL, 100, (95, 100, 94, 96), 100),
        (Side.SELL, 100, (103, 104, 101, 102), 103),  # gaps up through a sell limit
    ],
)
def test_limit_cross_rule(
    side: Side, limit_px: int, bar: tuple[int, ...], expected: int | None
) -> None:
    o, h, lo, _ = (x * E8 for x in bar)
    got = limit_fill_price_e8(limit(side, limit_px), o, h, lo)
    assert got == (expected * E8 if expected is not None else None)


def test_slippage_and_spread_move_against_the_trader() -> None:
    costs = CostModel(slippage_bps=Decimal(10), spread_bps=Decimal(4))
    close = 100 * E8
    assert market_price_e8(close, Side.BUY, costs, RULES) == int(100.12 * E8)
    assert market_price_e8(close, Side.SELL, costs, RULES) == int(99.88 * E8)


@pytest.mark.parametrize(
    ("costs", "buy", "fee"),
    [
        (CostModel(), 100 * E8, 0),
        (CostModel(commission_bps=Decimal(10)), 100 * E8, E8 // 10),
        (CostModel(spread_bps=Decimal(20)), int(100.1 * E8), 0),
        (CostModel(slippage_bps=Decimal(5)), int(100.05 * E8), 0),
    ],
)
def test_each_cost_component_switches_on_and_off(costs: CostModel, buy: int, fee: int) -> None:
    assert market_price_e8(100 * E8, Side.BUY, costs, RULES) == buy
    assert costs.fee_e8(100 * E8) == fee


def test_prices_round_to_tick_against_the_trader() -> None:
    costs = CostModel(slippage_bps=Decimal(1))
    close = 42_283_58 * E8 // 100  # 42283.58
    assert market_price_e8(close, Side.BUY, costs, RULES) % RULES.tick_e8 == 0
    assert market_price_e8(close, Side.BUY, costs, RULES) == int(42287.81 * E8)
    assert market_price_e8(close, Side.SELL, costs, RULES) == int(42279.35 * E8)
