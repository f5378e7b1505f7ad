"""A symbol's venue filters as exact e8 integers, and the checks the venue would make.

Parsed from Binance's exchangeInfo (docs `filters.md`; ../shared/api/binance_spot.md §3.1):
PRICE_FILTER, LOT_SIZE, MARKET_LOT_SIZE, NOTIONAL or the legacy MIN_NOTIONAL, and
MAX_NUM_ORDERS. A part of a filter whose value is 0 is off, as on the venue.

`check` shapes an order the way the venue would accept it (the quantity down to the step,
a limit price to the tick: down for a buy, up for a sell, so neither pays more nor gets less
than the strategy asked) and refuses, naming the filter, what the venue would refuse.
`tiny_cap` is the live micro-cap (`--tiny`): every order at most `LIVE_MICRO_CAP_E8` of
quote. Both are pure; the book's risk step calls `tiny_cap` then `check`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final, Literal

import msgspec

from njord.core.money import E8
from njord.reasons import Reason
from njord.records import OrderType, Side

LIVE_MICRO_CAP_E8: Final = 10 * E8  # 10 quote units (SPEC §9)

FilterName = Literal[
    "SYMBOL_STATUS",
    "PRICE_FILTER",
    "LOT_SIZE",
    "MARKET_LOT_SIZE",
    "NOTIONAL",
    "MIN_NOTIONAL",
    "MAX_NUM_ORDERS",
]


class SymbolFilters(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    base_asset: str
    quote_asset: str
    status: str = "TRADING"
    tick_e8: int = 0
    min_price_e8: int = 0
    max_price_e8: int = 0
    step_e8: int = 0
    min_qty_e8: int = 0
    max_qty_e8: int = 0
    market_step_e8: int = 0
    market_min_qty_e8: int = 0
    market_max_qty_e8: int = 0
    notional_filter: Literal["NOTIONAL", "MIN_NOTIONAL", ""] = ""
    min_notional_e8: int = 0
    min_notional_market: bool = True
    max_notional_e8: int = 0
    max_notional_market: bool = False
    max_num_orders: int = 0

    def step_for(self, kind: OrderType) -> int:
        """The quantity step an order of this type must be a multiple of: LOT_SIZE's, and
        for a MARKET order MARKET_LOT_SIZE's as well (both apply to it on the venue)."""
        if kind is OrderType.MARKET and self.market_step_e8:
            return math.lcm(self.step_e8 or 1, self.market_step_e8)
        return self.step_e8 or 1


class Shaped(msgspec.Struct, frozen=True, kw_only=True):
    """An order as the venue will take it. `price_e8` is None for a MARKET order."""

    qty_e8: int
    price_e8: int | None


class Refusal(msgspec.Struct, frozen=True, kw_only=True):
    """What the venue would refuse (`VENUE_FILTER`) or the micro-cap does
    (`LIVE_MICRO_CAP`). `inputs` names the filter and the numbers that failed it; the
    book merges them into the verdict's rule inputs."""

    reason: Reason
    inputs: dict[str, Any]


def exact_e8(text: str) -> int:
    """A venue decimal string as e8, refusing anything finer than 1e-8 (never rounded)."""
    scaled = Decimal(text) * E8
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{text!r} has more than 8 decimal places")
    return int(scaled)


def parse_symbol(entry: Mapping[str, Any]) -> SymbolFilters:
    """One `symbols[]` entry of exchangeInfo; filters it does not list are off."""
    fields: dict[str, Any] = {}
    for f in entry.get("filters", []):
        kind = f.get("filterType")
        if kind == "PRICE_FILTER":
            fields |= _e8s(f, tick_e8="tickSize", min_price_e8="minPrice", max_price_e8="maxPrice")
        elif kind == "LOT_SIZE":
            fields |= _e8s(f, step_e8="stepSize", min_qty_e8="minQty", max_qty_e8="maxQty")
        elif kind == "MARKET_LOT_SIZE":
            fields |= _e8s(
                f,
                market_step_e8="stepSize",
                market_min_qty_e8="minQty",
                market_max_qty_e8="maxQty",
            )
        elif kind == "NOTIONAL":
            fields |= _e8s(f, min_notional_e8="minNotional", max_notional_e8="maxNotional")
            fields["notional_filter"] = "NOTIONAL"
            fields["min_notional_market"] = bool(f.get("applyMinToMarket", True))
            fields["max_notional_market"] = bool(f.get("applyMaxToMarket", False))
        elif kind == "MIN_NOTIONAL" and fields.get("notional_filter") != "NOTIONAL":
            fields |= _e8s(f, min_notional_e8="minNotional")
            fields["notional_filter"] = "MIN_NOTIONAL"
            fields["min_notional_market"] = bool(f.get("applyToMarket", True))
        elif kind == "MAX_NUM_ORDERS":
            fields["max_num_orders"] = int(f.get("maxNumOrders", 0))
    return SymbolFilters(
        symbol=str(entry["symbol"]),
        base_asset=str(entry["baseAsset"]),
        quote_asset=str(entry["quoteAsset"]),
        status=str(entry.get("status", "TRADING")),
        **fields,
    )


def parse_exchange_info(doc: Mapping[str, Any]) -> dict[str, SymbolFilters]:
    return {str(s["symbol"]): parse_symbol(s) for s in doc.get("symbols", [])}


def _e8s(f: Mapping[str, Any], **names: str) -> dict[str, int]:
    return {field: exact_e8(str(f[key])) for field, key in names.items() if key in f}


def floor_to(value_e8: int, step_e8: int) -> int:
    return value_e8 - value_e8 % step_e8 if step_e8 > 0 else value_e8


def ceil_to(value_e8: int, step_e8: int) -> int:
    return -floor_to(-value_e8, step_e8)


def check(
    f: SymbolFilters,
    *,
    side: Side,
    kind: OrderType,
    qty_e8: int,
    price_e8: int | None,
    reference_e8: int,
    open_orders: int = 0,
) -> Shaped | Refusal:
    """The order shaped to the filters, or the first filter it fails.

    `price_e8` is a LIMIT order's price (None for MARKET); `reference_e8` is the price the
    venue would value a MARKET order at for the notional filters (the last close: the
    venue uses a short average, so an order at the very edge may still be refused there).
    `open_orders` counts the symbol's orders open at the venue now (MAX_NUM_ORDERS).
    """
    qty = floor_to(qty_e8, f.step_for(kind))
    price = None
    if kind is OrderType.LIMIT:
        if price_e8 is None:
            raise ValueError("a LIMIT order needs a price")
        round_ = floor_to if side is Side.BUY else ceil_to
        price = round_(price_e8, f.tick_e8)
    shaped = Shaped(qty_e8=qty, price_e8=price)
    failed = _first_failure(f, kind, shaped, reference_e8, open_orders)
    if failed is None:
        return shaped
    name, bound, value, bound_e8 = failed
    inputs: dict[str, Any] = {
        "filter": name,
        "bound": bound,
        "bound_e8": bound_e8,
        "value_e8": value,
        "qty_e8": qty,
        "price_e8": price if price is not None else reference_e8,
    }
    return Refusal(reason=Reason.VENUE_FILTER, inputs=inputs)


Failure = tuple[FilterName, str, int, int]  # filter, which bound, the value, the bound


def _first_failure(
    f: SymbolFilters, kind: OrderType, order: Shaped, reference_e8: int, open_orders: int
) -> Failure | None:
    if f.status != "TRADING":
        return ("SYMBOL_STATUS", f"status {f.status}", 0, 0)
    checks = [
        _price(f, order.price_e8),
        _quantity("LOT_SIZE", order.qty_e8, f.min_qty_e8, f.max_qty_e8),
        _quantity("MARKET_LOT_SIZE", order.qty_e8, f.market_min_qty_e8, f.market_max_qty_e8)
        if kind is OrderType.MARKET
        else None,
        _notional(f, kind, order, reference_e8),
    ]
    if f.max_num_orders and open_orders + 1 > f.max_num_orders:
        checks.append(("MAX_NUM_ORDERS", "maxNumOrders", open_orders + 1, f.max_num_orders))
    return next((c for c in checks if c is not None), None)


def _price(f: SymbolFilters, price: int | None) -> Failure | None:
    if price is None:
        return None
    if price <= 0:
        return ("PRICE_FILTER", "price > 0", price, 0)
    if f.min_price_e8 and price < f.min_price_e8:
        return ("PRICE_FILTER", "minPrice", price, f.min_price_e8)
    if f.max_price_e8 and price > f.max_price_e8:
        return ("PRICE_FILTER", "maxPrice", price, f.max_price_e8)
    return None


def _quantity(name: FilterName, qty: int, low_e8: int, high_e8: int) -> Failure | None:
    if qty <= 0:
        return (name, "quantity > 0", qty, 0)  # nothing left after rounding to the step
    if low_e8 and qty < low_e8:
        return (name, "minQty", qty, low_e8)
    if high_e8 and qty > high_e8:
        return (name, "maxQty", qty, high_e8)
    return None


def _notional(
    f: SymbolFilters, kind: OrderType, order: Shaped, reference_e8: int
) -> Failure | None:
    if not f.notional_filter:
        return None
    market = kind is OrderType.MARKET
    price = order.price_e8 if order.price_e8 is not None else reference_e8
    # Compared as e16 products: exact, no rounding of the notional at all.
    product = order.qty_e8 * price
    value = product // E8
    name: FilterName = f.notional_filter
    low = f.min_notional_e8 if not market or f.min_notional_market else 0
    high = f.max_notional_e8 if not market or f.max_notional_market else 0
    if low and product < low * E8:
        return (name, "minNotional", value, low)
    if high and product > high * E8:
        return (name, "maxNotional", value, high)
    return None


def tiny_cap(
    f: SymbolFilters,
    *,
    kind: OrderType,
    qty_e8: int,
    price_e8: int,
    allow_min_notional: bool,
    cap_e8: int = LIVE_MICRO_CAP_E8,
) -> Shaped | Refusal:
    """The order's quantity cut so its notional at `price_e8` (the limit, or the reference
    price of a MARKET order) is at most `cap_e8`, on the step.

    When the venue's minimum notional leaves no valid quantity under the cap, the order is
    raised to that minimum and one lot step more if `allow_min_notional`
    (venue.tiny_allow_min_notional), never beyond what was asked, and refused with
    LIVE_MICRO_CAP otherwise. The step is headroom: a buy's commission taken in the base
    asset must not leave a position below the minimum, which no order could sell.
    """
    if price_e8 <= 0:
        raise ValueError("the micro-cap needs a positive price")
    step = f.step_for(kind)
    shaped_price = price_e8 if kind is OrderType.LIMIT else None
    if qty_e8 * price_e8 <= cap_e8 * E8:
        return Shaped(qty_e8=qty_e8, price_e8=shaped_price)
    capped = floor_to(cap_e8 * E8 // price_e8, step)
    minimum = _min_notional_for(f, kind)
    if capped > 0 and capped * price_e8 >= minimum * E8:
        return Shaped(qty_e8=capped, price_e8=shaped_price)
    raised = ceil_to(-(-minimum * E8 // price_e8), step) + step if minimum else 0
    if allow_min_notional and 0 < raised <= qty_e8:
        return Shaped(qty_e8=raised, price_e8=shaped_price)
    inputs: dict[str, Any] = {
        "cap_e8": cap_e8,
        "min_notional_e8": minimum,
        "qty_e8": qty_e8,
        "price_e8": price_e8,
        "capped_qty_e8": capped,
        "allow_min_notional": allow_min_notional,
    }
    return Refusal(reason=Reason.LIVE_MICRO_CAP, inputs=inputs)


def _min_notional_for(f: SymbolFilters, kind: OrderType) -> int:
    if kind is OrderType.MARKET and not f.min_notional_market:
        return 0
    return f.min_notional_e8
