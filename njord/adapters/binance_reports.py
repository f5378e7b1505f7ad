"""Binance's answers about an order turned into venue reports (njord.core.reports), exactly.

Prices, quantities and commissions arrive as decimal strings and become e8 integers with
no rounding (`exact_e8` refuses anything finer). The commission goes where it was taken:
in the quote asset it is `fee_e8`; in the base asset (a buy, by default) it is
`fee_qty_e8`; in a third asset (BNB, when the account pays fees with it) `fee_asset` says
which and `fee_e8` is its value in the quote asset at the venue's last price for
ASSET+QUOTE, rounded half-even to e8 (the book has no third asset to take it from).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from njord.core.filters import exact_e8
from njord.core.money import e8_to_decimal, mul_e8
from njord.core.reports import Ack, Canceled, Execution, Expired, Reject, Report
from njord.reasons import VenueCode

PriceOf = Callable[[str], int]  # the e8 price of one unit of an asset in the quote asset

OPEN_STATUSES = frozenset({"NEW", "PARTIALLY_FILLED", "PENDING_NEW"})


def venue_text(value_e8: int) -> str:
    """An e8 amount as the venue wants it: plain decimal, no exponent, no trailing zeros."""
    text = format(e8_to_decimal(value_e8), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def fee_fields(
    commission: str, asset: str, *, base: str, quote: str, price_of: PriceOf
) -> dict[str, Any]:
    amount = exact_e8(commission)
    exact = {"fee_asset": asset, "commission_e8": amount}
    if asset == quote or amount == 0:
        return {"fee_e8": amount, **exact}
    if asset == base:
        return {"fee_e8": 0, "fee_qty_e8": amount, **exact}
    return {"fee_e8": mul_e8(amount, price_of(asset)), **exact}


def execution(
    client_order_id: str,
    fill: Mapping[str, Any],
    *,
    ts_ms: int,
    base: str,
    quote: str,
    price_of: PriceOf,
) -> Execution:
    """One fill: a FULL response's `fills[]` item or a myTrades trade (ids differ in name)."""
    trade_id = fill.get("tradeId", fill.get("id"))
    return Execution(
        client_order_id=client_order_id,
        ts_ms=int(fill.get("time", ts_ms)),
        qty_e8=exact_e8(str(fill["qty"])),
        price_e8=exact_e8(str(fill["price"])),
        trade_id=str(trade_id),
        **fee_fields(
            str(fill["commission"]),
            str(fill["commissionAsset"]),
            base=base,
            quote=quote,
            price_of=price_of,
        ),
    )


def closing(client_order_id: str, status: str, ts_ms: int) -> Report | None:
    """The report that ends an order in this venue status (a FILLED order is ended by its
    fills; an open one by nothing yet)."""
    if status in ("CANCELED", "PENDING_CANCEL"):
        return Canceled(client_order_id=client_order_id, ts_ms=ts_ms)
    if status in ("EXPIRED", "EXPIRED_IN_MATCH"):
        return Expired(client_order_id=client_order_id, ts_ms=ts_ms)
    if status == "REJECTED":
        return Reject(
            client_order_id=client_order_id,
            ts_ms=ts_ms,
            reason=VenueCode.ORDER_REJECTED.value,
            code="REJECTED",
        )
    return None


def reports(
    client_order_id: str,
    order: Mapping[str, Any],
    fills: list[Mapping[str, Any]],
    *,
    base: str,
    quote: str,
    price_of: PriceOf,
) -> list[Report]:
    """Everything known of one order: its Ack, each fill, the report that ended it.
    `order` is a FULL placement answer (with `transactTime`) or a query answer (with
    `time` and `updateTime`); `fills` its fills or its trades, in the venue's order."""
    placed_ms = int(order.get("transactTime", order.get("time", 0)))
    updated_ms = int(order.get("updateTime", placed_ms))
    out: list[Report] = [
        Ack(
            client_order_id=client_order_id,
            ts_ms=placed_ms,
            venue_order_id=str(order["orderId"]),
        )
    ]
    out += [
        execution(client_order_id, f, ts_ms=placed_ms, base=base, quote=quote, price_of=price_of)
        for f in fills
    ]
    end = closing(client_order_id, str(order["status"]), updated_ms)
    if end is not None:
        out.append(end)
    return out


def executed_e8(order: Mapping[str, Any]) -> int:
    return exact_e8(str(order.get("executedQty", "0")))
