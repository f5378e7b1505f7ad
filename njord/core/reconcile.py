"""Reconciliation with the venue (SPEC §11), the pure part: the book's view against the
venue's, matched by client order id.

- Fills on the venue the book has not applied, of orders it made: **missed**, to apply in
  trade-id order (the book applies each trade id once, so applying again is harmless).
- Orders the book believes open that the venue does not list open: **to query**, and close
  with their real outcome (never assumed filled or canceled because a report is missing).
- What the session cannot explain is an **external event** (what, the venue's value, the
  book's value, when): a balance of the symbol's base or quote asset that differs from what
  the book expects beyond dust, an open order with a client order id the session never
  made (or one it holds closed), a trade on the symbol of an order that is not its own.

The book's expected balances are a baseline (the venue's balances at the last accepted
reconciliation) moved by every fill applied after it: `expected_after`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

import msgspec

from njord.core.money import fmt_e8, mul_e8
from njord.core.reports import Ack, Execution
from njord.records import OPEN_STATUSES, OrderStatus, Side

EventKind = Literal["balance", "open_order", "trade", "order_missing"]
Policy = Literal["halt", "adopt"]
Action = Literal["none", "halt", "adopt"]


class OwnOrder(msgspec.Struct, frozen=True, kw_only=True):
    side: Side
    status: OrderStatus


class BookView(msgspec.Struct, frozen=True, kw_only=True):
    """What the session believes. `orders`: every order it ever made, by client order id;
    `applied_trade_ids`: the venue trade ids its fills came from; `expected_e8`: what the
    venue should hold of the base and quote asset (free + locked), before missed fills."""

    symbol: str
    base_asset: str
    quote_asset: str
    orders: dict[str, OwnOrder]
    applied_trade_ids: frozenset[str]
    expected_e8: dict[str, int]


class VenueState(msgspec.Struct, frozen=True, kw_only=True):
    """What the venue shows: balances (free + locked, e8), open orders, and every fill on
    the symbol after `cursor` (fetched so that none lands between the three reads)."""

    ts_ms: int
    balances_e8: dict[str, int]
    open_orders: list[Ack]
    fills: list[Execution]
    cursor: str


class ExternalEvent(msgspec.Struct, frozen=True, kw_only=True):
    ts_ms: int  # venue time of the reconciliation that found it
    kind: EventKind
    subject: str  # the asset, the client order id or the trade id
    venue_value: str
    book_value: str
    detail: str


class Reconciliation(msgspec.Struct, frozen=True, kw_only=True):
    missed: list[Execution]
    to_query: list[str]
    external: list[ExternalEvent]
    cursor: str  # the last venue trade id seen: where the next reconciliation starts
    expected_e8: dict[str, int]  # the book's expectation with the missed fills applied

    @property
    def clean(self) -> bool:
        return not (self.missed or self.to_query or self.external)


def balance_effect(side: Side, fill: Execution, *, base: str, quote: str) -> dict[str, int]:
    """How one fill moves the venue's base and quote balances. A commission in a third
    asset (BNB) moves neither."""
    notional = mul_e8(fill.qty_e8, fill.price_e8)
    sign = 1 if side is Side.BUY else -1
    moved = {base: sign * fill.qty_e8, quote: -sign * notional}
    if fill.fee_qty_e8:
        moved[base] -= fill.fee_qty_e8
    if fill.fee_e8 and fill.fee_asset in ("", quote):
        moved[quote] -= fill.fee_e8
    return moved


def expected_after(
    baseline_e8: Mapping[str, int],
    fills: Iterable[tuple[Side, Execution]],
    *,
    base: str,
    quote: str,
) -> dict[str, int]:
    """The baseline balances of `base` and `quote`, moved by each fill applied since."""
    out = {base: baseline_e8.get(base, 0), quote: baseline_e8.get(quote, 0)}
    for side, fill in fills:
        for asset, delta in balance_effect(side, fill, base=base, quote=quote).items():
            out[asset] += delta
    return out


def match(book: BookView, venue: VenueState, *, dust_e8: Mapping[str, int]) -> Reconciliation:
    expected = dict(book.expected_e8)
    missed: list[Execution] = []
    external: list[ExternalEvent] = []
    cursor = venue.cursor
    for fill in sorted(venue.fills, key=lambda f: int(f.trade_id)):
        cursor = fill.trade_id if not cursor or int(fill.trade_id) > int(cursor) else cursor
        own = book.orders.get(fill.client_order_id)
        if own is None:
            external.append(_trade(venue.ts_ms, fill))
        elif fill.trade_id not in book.applied_trade_ids:
            missed.append(fill)
            for asset, delta in balance_effect(
                own.side, fill, base=book.base_asset, quote=book.quote_asset
            ).items():
                expected[asset] = expected.get(asset, 0) + delta
    external += _open_orders(book, venue)
    open_at_venue = {ack.client_order_id for ack in venue.open_orders}
    to_query = sorted(
        coid
        for coid, own in book.orders.items()
        if own.status in OPEN_STATUSES and coid not in open_at_venue
    )
    for asset in (book.base_asset, book.quote_asset):
        held, wanted = venue.balances_e8.get(asset, 0), expected.get(asset, 0)
        if abs(held - wanted) > dust_e8.get(asset, 0):
            external.append(
                ExternalEvent(
                    ts_ms=venue.ts_ms,
                    kind="balance",
                    subject=asset,
                    venue_value=fmt_e8(held),
                    book_value=fmt_e8(wanted),
                    detail=f"{asset} differs by {fmt_e8(held - wanted)} (dust "
                    f"{fmt_e8(dust_e8.get(asset, 0))})",
                )
            )
    return Reconciliation(
        missed=missed, to_query=to_query, external=external, cursor=cursor, expected_e8=expected
    )


def _trade(ts_ms: int, fill: Execution) -> ExternalEvent:
    return _fill_event(
        ts_ms,
        fill,
        book_value="no such order",
        detail=f"a trade on the symbol of order {fill.client_order_id}, not this session's",
    )


def closed_fill(ts_ms: int, fill: Execution) -> ExternalEvent:
    """A venue fill of an order the book holds closed: the book cannot take it, and no
    report explains it."""
    return _fill_event(
        ts_ms,
        fill,
        book_value="the order is closed",
        detail=f"a fill of order {fill.client_order_id} after the book closed it",
    )


def _fill_event(ts_ms: int, fill: Execution, *, book_value: str, detail: str) -> ExternalEvent:
    return ExternalEvent(
        ts_ms=ts_ms,
        kind="trade",
        subject=fill.trade_id,
        venue_value=f"{fmt_e8(fill.qty_e8)} @ {fmt_e8(fill.price_e8)} for {fill.client_order_id}",
        book_value=book_value,
        detail=detail,
    )


def _open_orders(book: BookView, venue: VenueState) -> list[ExternalEvent]:
    out = []
    for ack in venue.open_orders:
        own = book.orders.get(ack.client_order_id)
        if own is not None and own.status in OPEN_STATUSES:
            continue
        held = "no such order" if own is None else own.status.value
        out.append(
            ExternalEvent(
                ts_ms=venue.ts_ms,
                kind="open_order",
                subject=ack.client_order_id,
                venue_value=f"open, venue order id {ack.venue_order_id}",
                book_value=held,
                detail=f"order {ack.client_order_id} is open at the venue"
                + (", not this session's" if own is None else f", {held} in the book"),
            )
        )
    return out


def missing(client_order_id: str, status: OrderStatus, ts_ms: int) -> ExternalEvent:
    """An order the book holds as acknowledged that the venue says it never had."""
    return ExternalEvent(
        ts_ms=ts_ms,
        kind="order_missing",
        subject=client_order_id,
        venue_value="no such order",
        book_value=status.value,
        detail=f"order {client_order_id} is {status.value} in the book, unknown to the venue",
    )


def action(rec: Reconciliation, policy: Policy) -> Action:
    """What the session does: nothing left unexplained, or the venue.on_mismatch policy."""
    if not rec.external:
        return "none"
    return policy
