"""What a venue answers about an order: the reports the book applies (router v2).

A router never changes the book; it returns these, and `Book.apply` moves each order
through its state machine (new → submitted → partially_filled → filled | canceled |
rejected | expired). Applying a report twice changes nothing: an `Ack` of a submitted
order, an `Execution` whose `trade_id` was applied, a `Canceled` of a closed order are
no-ops, so a query after a crash may answer everything it knows about an order.
"""

from __future__ import annotations

import msgspec


class Ack(msgspec.Struct, frozen=True, kw_only=True, tag="ack"):
    """The venue holds the order (it rests, or it is about to fill)."""

    client_order_id: str
    ts_ms: int
    venue_order_id: str = ""


class Reject(msgspec.Struct, frozen=True, kw_only=True, tag="reject"):
    """The venue refused the order; nothing executed. `code`: the venue's own code."""

    client_order_id: str
    ts_ms: int
    reason: str
    code: str = ""


class Execution(msgspec.Struct, frozen=True, kw_only=True, tag="fill"):
    """One fill (or partial fill) of an order. `fee_e8` is the commission in the quote
    currency; `fee_qty_e8` a commission taken from the base asset a buy received.
    `trade_id` is unique per order at its venue: the book applies each one once."""

    client_order_id: str
    ts_ms: int
    qty_e8: int
    price_e8: int
    fee_e8: int
    fee_qty_e8: int = 0
    fee_asset: str = ""
    trade_id: str = ""
    commission_e8: int = 0  # the venue's commission exactly, in `fee_asset` (as recorded)


class Canceled(msgspec.Struct, frozen=True, kw_only=True, tag="canceled"):
    client_order_id: str
    ts_ms: int


class Expired(msgspec.Struct, frozen=True, kw_only=True, tag="expired"):
    client_order_id: str
    ts_ms: int


class Unknown(msgspec.Struct, frozen=True, kw_only=True, tag="unknown"):
    """The request's outcome is not known (a timeout, a dropped connection, a 5xx): the
    order is resolved by `query` before anything else is sent for it."""

    client_order_id: str
    ts_ms: int
    detail: str


Report = Ack | Reject | Execution | Canceled | Expired | Unknown
