"""The domain records that cross port boundaries."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

import msgspec


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrderType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"


class OrderStatus(StrEnum):
    NEW = "NEW"
    SUBMITTED = "SUBMITTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"


OPEN_STATUSES = frozenset({OrderStatus.NEW, OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED})


class Bar(msgspec.Struct, frozen=True, gc=False):
    """One closed bar; `ts_ms` is its open time (UTC epoch ms). Prices as floats for signal
    maths; the engine uses the exact `_e8` integers for money.

    Bars longer than the session's bars are built from them (njord.core.bars): `n_bars` of
    them (1-minute bars, or the data's own with `data.timeframe`), `n_filled` of those
    forward-filled over a gap. `complete` is false when minutes
    of the bar's window never arrived (a gap the policy skipped, or the data's edge).
    """

    ts_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    timeframe: str = "1m"
    n_bars: int = 1
    n_filled: int = 0
    complete: bool = True


class OrderIntent(msgspec.Struct, frozen=True, kw_only=True):
    """What a strategy wants. It becomes an order only if risk and the account allow."""

    symbol: str
    side: Side
    qty: Decimal
    type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    tag: str = ""


class Order(msgspec.Struct, kw_only=True):
    client_order_id: str
    intent_id: int
    symbol: str
    side: Side
    type: OrderType
    qty_e8: int
    limit_e8: int | None
    status: OrderStatus
    created_ms: int
    filled_qty_e8: int = 0
    avg_price_e8: int | None = None
    reason: str | None = None
    strategy_id: str = ""  # the sleeve whose strategy asked for it ("": the only strategy)


class Fill(msgspec.Struct, frozen=True, kw_only=True):
    fill_id: int
    client_order_id: str
    ts_ms: int
    symbol: str
    side: Side
    qty_e8: int
    price_e8: int
    notional_e8: int
    fee_e8: int
    realised_e8: int = 0
    strategy_id: str = ""  # the sleeve of the order it fills ("": the only strategy)
