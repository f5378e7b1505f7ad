"""Venue filters (njord/core/filters.py): one test per filter, the micro-cap, and the
rounding checked against Decimal arithmetic done the venue's way."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from njord.core.filters import (
    LIVE_MICRO_CAP_E8,
    Refusal,
    Shaped,
    SymbolFilters,
    check,
    exact_e8,
    parse_exchange_info,
    parse_symbol,
    tiny_cap,
)
from njord.core.money import E8
from njord.reasons import Reason
from njord.records import OrderType, Side

# BTCUSDT as Binance lists it (values as strings, as the venue sends them).
BTCUSDT: dict[str, Any] = {
    "symbol": "BTCUSDT",
    "status": "TRADING",
    "baseAsset": "BTC",
    "quoteAsset": "USDT",
    "filters": [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": "0.01000000",
            "maxPrice": "1000000.00000000",
            "tickSize": "0.01000000",
        },
        {
            "filterType": "LOT_SIZE",
            "minQty": "0.00001000",
            "maxQty": "9000.00000000",
            "stepSize": "0.00001000",
        },
        {
            "filterType": "MARKET_LOT_SIZE",
            "minQty": "0.00000000",
            "maxQty": "100.00000000",
            "stepSize": "0.00000000",
        },
        {
            "filterType": "NOTIONAL",
            "minNotional": "5.00000000",
            "applyMinToMarket": True,
            "maxNotional": "9000000.00000000",
            "applyMaxToMarket": False,
            "avgPriceMins": 5,
        },
        {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
        {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": "5"},
    ],
}
F = parse_symbol(BTCUSDT)
PRICE = 42_000 * E8


def _limit(side: Side, qty: str, price: str, **kw: Any) -> Shaped | Refusal:
    return check(
        F,
        side=side,
        kind=OrderType.LIMIT,
        qty_e8=exact_e8(qty),
        price_e8=exact_e8(price),
        reference_e8=PRICE,
        **kw,
    )


def _market(qty: str, **kw: Any) -> Shaped | Refusal:
    return check(
        F,
        side=Side.BUY,
        kind=OrderType.MARKET,
        qty_e8=exact_e8(qty),
        price_e8=None,
        reference_e8=kw.pop("reference_e8", PRICE),
        **kw,
    )


def _failed(result: Shaped | Refusal) -> tuple[str, str]:
    assert isinstance(result, Refusal), result
    assert result.reason is Reason.VENUE_FILTER
    return result.inputs["filter"], result.inputs["bound"]


def test_parse_exchange_info_reads_every_filter_as_exact_e8() -> None:
    assert parse_exchange_info({"symbols": [BTCUSDT]}) == {"BTCUSDT": F}
    assert (F.tick_e8, F.min_price_e8, F.max_price_e8) == (E8 // 100, E8 // 100, 10**6 * E8)
    assert (F.step_e8, F.min_qty_e8, F.max_qty_e8) == (1000, 1000, 9000 * E8)
    assert (F.market_step_e8, F.market_min_qty_e8, F.market_max_qty_e8) == (0, 0, 100 * E8)
    assert (F.notional_filter, F.min_notional_e8, F.max_notional_e8) == (
        "NOTIONAL",
        5 * E8,
        9 * 10**6 * E8,
    )
    assert (F.min_notional_market, F.max_notional_market, F.max_num_orders) == (True, False, 200)
    assert (F.base_asset, F.quote_asset) == ("BTC", "USDT")


def test_legacy_min_notional_is_read_when_notional_is_absent() -> None:
    legacy = {
        **BTCUSDT,
        "filters": [{"filterType": "MIN_NOTIONAL", "minNotional": "10.0", "applyToMarket": False}],
    }
    f = parse_symbol(legacy)
    assert (f.notional_filter, f.min_notional_e8, f.min_notional_market) == (
        "MIN_NOTIONAL",
        10 * E8,
        False,
    )
    # applyToMarket false: a MARKET order's notional is not checked, a LIMIT order's is.
    market = check(
        f, side=Side.BUY, kind=OrderType.MARKET, qty_e8=1000, price_e8=None, reference_e8=PRICE
    )
    assert isinstance(market, Shaped)
    refused = check(
        f, side=Side.BUY, kind=OrderType.LIMIT, qty_e8=1000, price_e8=PRICE, reference_e8=PRICE
    )
    assert isinstance(refused, Refusal)
    assert refused.inputs["filter"] == "MIN_NOTIONAL"


def test_a_filter_value_finer_than_e8_is_refused_not_rounded() -> None:
    with pytest.raises(ValueError, match="more than 8 decimal places"):
        exact_e8("0.000000001")


def test_price_filter_rounds_to_the_tick_for_the_trader_and_refuses_out_of_range() -> None:
    assert _limit(Side.BUY, "0.001", "42000.019") == Shaped(
        qty_e8=100_000, price_e8=4_200_001_000_000
    )
    assert _limit(Side.SELL, "0.001", "42000.011") == Shaped(
        qty_e8=100_000, price_e8=4_200_002_000_000
    )
    assert _failed(_limit(Side.BUY, "1", "0.001")) == ("PRICE_FILTER", "price > 0")
    assert _failed(_limit(Side.SELL, "0.00001", "1000000.01")) == ("PRICE_FILTER", "maxPrice")
    no_min = SymbolFilters(symbol="X", base_asset="A", quote_asset="B", tick_e8=1, min_price_e8=E8)
    refused = check(
        no_min, side=Side.BUY, kind=OrderType.LIMIT, qty_e8=E8, price_e8=E8 // 2, reference_e8=E8
    )
    assert _failed(refused) == ("PRICE_FILTER", "minPrice")


def test_lot_size_floors_to_the_step_and_refuses_out_of_range() -> None:
    assert _limit(Side.BUY, "0.0123456", "42000") == Shaped(qty_e8=1_234_000, price_e8=PRICE)
    assert _failed(_limit(Side.BUY, "0.000009", "42000")) == ("LOT_SIZE", "quantity > 0")
    assert _failed(_limit(Side.BUY, "9000.00001", "1")) == ("LOT_SIZE", "maxQty")
    step_free = SymbolFilters(symbol="X", base_asset="A", quote_asset="B", min_qty_e8=1000)
    refused = check(
        step_free, side=Side.BUY, kind=OrderType.LIMIT, qty_e8=999, price_e8=E8, reference_e8=E8
    )
    assert _failed(refused) == ("LOT_SIZE", "minQty")


def test_market_lot_size_applies_to_market_orders_only() -> None:
    assert _failed(_market("100.00001", reference_e8=E8)) == ("MARKET_LOT_SIZE", "maxQty")
    assert isinstance(_limit(Side.BUY, "100.00001", "1"), Shaped)
    # Both steps apply to a MARKET order: the quantity is a multiple of each.
    both = SymbolFilters(symbol="X", base_asset="A", quote_asset="B", step_e8=4, market_step_e8=6)
    shaped = check(
        both, side=Side.SELL, kind=OrderType.MARKET, qty_e8=23, price_e8=None, reference_e8=E8
    )
    assert shaped == Shaped(qty_e8=12, price_e8=None)


def test_notional_min_and_max_with_the_market_switches() -> None:
    assert _failed(_limit(Side.BUY, "0.0001", "42000")) == ("NOTIONAL", "minNotional")
    assert _failed(_market("0.0001")) == ("NOTIONAL", "minNotional")
    assert isinstance(_limit(Side.BUY, "0.00012", "42000"), Shaped)  # 5.04
    # exactly the minimum passes: 0.5 x 10 = 5
    assert isinstance(_limit(Side.BUY, "0.5", "10"), Shaped)
    assert _failed(_limit(Side.SELL, "9000", "1001")) == ("NOTIONAL", "maxNotional")
    assert isinstance(_market("100", reference_e8=100_000 * E8), Shaped)  # max off for MARKET


def test_max_num_orders_counts_the_orders_open_now() -> None:
    assert isinstance(_limit(Side.BUY, "0.001", "42000", open_orders=199), Shaped)
    assert _failed(_limit(Side.BUY, "0.001", "42000", open_orders=200)) == (
        "MAX_NUM_ORDERS",
        "maxNumOrders",
    )


def test_a_symbol_that_is_not_trading_refuses_everything() -> None:
    halted = parse_symbol({**BTCUSDT, "status": "HALT"})
    refused = check(
        halted, side=Side.BUY, kind=OrderType.MARKET, qty_e8=E8, price_e8=None, reference_e8=E8
    )
    assert _failed(refused) == ("SYMBOL_STATUS", "status HALT")


def test_refusal_inputs_name_the_numbers() -> None:
    refused = _limit(Side.BUY, "0.0001", "42000")
    assert isinstance(refused, Refusal)
    assert refused.inputs == {
        "filter": "NOTIONAL",
        "bound": "minNotional",
        "bound_e8": 5 * E8,
        "value_e8": 420_000_000,
        "qty_e8": 10_000,
        "price_e8": PRICE,
    }


# -- the micro-cap ------------------------------------------------------------------------


def _tiny(qty: str, price: str, *, allow: bool = False, f: SymbolFilters = F) -> Shaped | Refusal:
    return tiny_cap(
        f,
        kind=OrderType.MARKET,
        qty_e8=exact_e8(qty),
        price_e8=exact_e8(price),
        allow_min_notional=allow,
    )


def test_tiny_caps_the_notional_at_ten_quote_units_on_the_step() -> None:
    assert LIVE_MICRO_CAP_E8 == 10 * E8
    shaped = _tiny("1", "42000")
    assert shaped == Shaped(qty_e8=23_000, price_e8=None)  # 0.00023 x 42000 = 9.66
    assert _tiny("0.0002", "42000") == Shaped(qty_e8=20_000, price_e8=None)  # under: as is


def test_tiny_raises_to_a_minimum_notional_above_ten_only_when_allowed() -> None:
    f = parse_symbol(
        {
            **BTCUSDT,
            "filters": [*BTCUSDT["filters"][:3], {"filterType": "NOTIONAL", "minNotional": "12"}],
        }
    )
    refused = _tiny("1", "42000", f=f)
    assert isinstance(refused, Refusal)
    assert refused.reason is Reason.LIVE_MICRO_CAP
    assert refused.inputs["min_notional_e8"] == 12 * E8
    # 12 / 42000 = 0.000285.. -> 0.00029 on the step, and a step of headroom for a
    # commission taken in BTC: 0.0003 (12.60)
    assert _tiny("1", "42000", allow=True, f=f) == Shaped(qty_e8=30_000, price_e8=None)
    # never more than asked: an order already below the minimum is left to the filters
    assert isinstance(_tiny("0.00029", "42000", allow=True, f=f), Refusal)


def test_tiny_refuses_when_one_step_costs_more_than_the_cap() -> None:
    coarse = SymbolFilters(symbol="X", base_asset="A", quote_asset="B", step_e8=E8)
    refused = _tiny("5", "11", f=coarse)
    assert isinstance(refused, Refusal)
    assert refused.reason is Reason.LIVE_MICRO_CAP


# -- the same answers as Decimal arithmetic done the venue's way ----------------------------

steps = st.sampled_from(["0.00000001", "0.00001", "0.001", "0.01", "0.25", "1", "0.00025", "5"])
decimals = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal(100_000), places=8)


@given(qty=decimals, price=decimals, step=steps, tick=steps, side=st.sampled_from(list(Side)))
def test_rounding_matches_decimal(
    qty: Decimal, price: Decimal, step: str, tick: str, side: Side
) -> None:
    f = SymbolFilters(
        symbol="X", base_asset="A", quote_asset="B", step_e8=exact_e8(step), tick_e8=exact_e8(tick)
    )
    result = check(
        f,
        side=side,
        kind=OrderType.LIMIT,
        qty_e8=exact_e8(str(qty)),
        price_e8=exact_e8(str(price)),
        reference_e8=E8,
    )
    want_qty = (qty / Decimal(step)).to_integral_value(ROUND_FLOOR) * Decimal(step)
    rounding = ROUND_FLOOR if side is Side.BUY else ROUND_CEILING
    want_price = (price / Decimal(tick)).to_integral_value(rounding) * Decimal(tick)
    if want_qty == 0 or want_price == 0:
        assert isinstance(result, Refusal)
        return
    assert result == Shaped(qty_e8=exact_e8(str(want_qty)), price_e8=exact_e8(str(want_price)))
    # and the venue's own rules hold for what we would send (binance_spot.md §3.1)
    assert (Decimal(result.qty_e8) / E8) % Decimal(step) == 0
    assert (Decimal(result.price_e8 or 0) / E8) % Decimal(tick) == 0


@given(qty=decimals, price=decimals, min_notional=st.sampled_from(["0", "5", "10", "12.5"]))
def test_notional_verdict_matches_decimal(qty: Decimal, price: Decimal, min_notional: str) -> None:
    f = SymbolFilters(
        symbol="X",
        base_asset="A",
        quote_asset="B",
        notional_filter="NOTIONAL",
        min_notional_e8=exact_e8(min_notional),
    )
    result = check(
        f,
        side=Side.BUY,
        kind=OrderType.LIMIT,
        qty_e8=exact_e8(str(qty)),
        price_e8=exact_e8(str(price)),
        reference_e8=E8,
    )
    assert isinstance(result, Shaped) == (qty * price >= Decimal(min_notional))


@given(
    qty=decimals,
    price=st.decimals(min_value=Decimal("0.01"), max_value=Decimal(100_000), places=2),
    step=steps,
    allow=st.booleans(),
)
def test_tiny_never_exceeds_the_cap_unless_raised_to_the_minimum(
    qty: Decimal, price: Decimal, step: str, allow: bool
) -> None:
    f = SymbolFilters(
        symbol="X",
        base_asset="A",
        quote_asset="B",
        step_e8=exact_e8(step),
        notional_filter="NOTIONAL",
        min_notional_e8=5 * E8,
    )
    result = tiny_cap(
        f,
        kind=OrderType.LIMIT,
        qty_e8=exact_e8(str(qty)),
        price_e8=exact_e8(str(price)),
        allow_min_notional=allow,
    )
    if isinstance(result, Refusal):
        return
    got = Decimal(result.qty_e8) / E8
    assert got <= qty
    if got != qty:
        assert got % Decimal(step) == 0
        assert got * price <= 10 or (allow and got * price >= 5)
