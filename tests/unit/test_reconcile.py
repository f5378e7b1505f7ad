"""Reconciliation's matching (njord/core/reconcile.py): the book's view against the venue's."""

from __future__ import annotations

from njord.core.money import E8
from njord.core.reconcile import (
    BookView,
    OwnOrder,
    VenueState,
    action,
    balance_effect,
    expected_after,
    match,
)
from njord.core.reports import Ack, Execution
from njord.records import OrderStatus, Side

PRICE = 40_000 * E8


def _fill(coid: str, trade_id: int, qty_e8: int = E8 // 100, **kw: object) -> Execution:
    fields: dict[str, object] = {"fee_e8": 0, "fee_qty_e8": 0, "fee_asset": ""} | kw
    return Execution(
        client_order_id=coid,
        ts_ms=trade_id,
        qty_e8=qty_e8,
        price_e8=PRICE,
        trade_id=str(trade_id),
        **fields,  # type: ignore[arg-type]
    )


def _book(orders: dict[str, OwnOrder], applied: set[str], expected: dict[str, int]) -> BookView:
    return BookView(
        symbol="BTCUSDT",
        base_asset="BTC",
        quote_asset="USDT",
        orders=orders,
        applied_trade_ids=frozenset(applied),
        expected_e8=expected,
    )


def _venue(balances: dict[str, int], fills: list[Execution], open_: list[str] = ()) -> VenueState:  # type: ignore[assignment]
    return VenueState(
        ts_ms=99,
        balances_e8=balances,
        open_orders=[Ack(client_order_id=c, ts_ms=1, venue_order_id="7") for c in open_],
        fills=fills,
        cursor="10",
    )


BUY = OwnOrder(side=Side.BUY, status=OrderStatus.SUBMITTED)
DUST = {"BTC": 999, "USDT": E8 // 100}


def test_balance_effects_follow_the_commission_asset() -> None:
    kw = {"base": "BTC", "quote": "USDT"}
    fill = _fill("a", 1, fee_qty_e8=1000, fee_asset="BTC")
    assert balance_effect(Side.BUY, fill, **kw) == {"BTC": E8 // 100 - 1000, "USDT": -400 * E8}
    sold = _fill("a", 2, fee_e8=40_000_000, fee_asset="USDT")
    assert balance_effect(Side.SELL, sold, **kw) == {
        "BTC": -(E8 // 100),
        "USDT": 400 * E8 - 40_000_000,
    }
    bnb = _fill("a", 3, fee_e8=30_000_000, fee_asset="BNB")  # paid in BNB: not from USDT
    assert balance_effect(Side.BUY, bnb, **kw) == {"BTC": E8 // 100, "USDT": -400 * E8}
    moved = expected_after({"USDT": 1000 * E8}, [(Side.BUY, fill)], **kw)
    assert moved == {"BTC": E8 // 100 - 1000, "USDT": 600 * E8}


def test_a_clean_venue_changes_nothing() -> None:
    book = _book({"a": BUY}, set(), {"BTC": 0, "USDT": 1000 * E8})
    rec = match(book, _venue({"USDT": 1000 * E8}, [], ["a"]), dust_e8=DUST)
    assert rec.clean
    assert action(rec, "halt") == "none"
    assert rec.cursor == "10"


def test_missed_fills_of_own_orders_are_applied_in_trade_order_once() -> None:
    book = _book(
        {"a": BUY, "b": OwnOrder(side=Side.BUY, status=OrderStatus.PARTIALLY_FILLED)},
        {"11"},
        {"BTC": E8 // 100, "USDT": 600 * E8},  # trade 11 already applied
    )
    fills = [_fill("b", 13), _fill("a", 11), _fill("a", 12)]
    held = {"BTC": 3 * E8 // 100, "USDT": -200 * E8}
    rec = match(book, _venue(held, fills, ["b"]), dust_e8=DUST)
    assert [f.trade_id for f in rec.missed] == ["12", "13"]
    assert rec.to_query == ["a"]  # open in the book, not at the venue: filled while down
    assert rec.external == []
    assert rec.cursor == "13"
    assert rec.expected_e8 == held


def test_what_cannot_be_explained_is_an_external_event() -> None:
    book = _book(
        {"a": BUY, "closed": OwnOrder(side=Side.SELL, status=OrderStatus.CANCELED)},
        set(),
        {"BTC": 0, "USDT": 1000 * E8},
    )
    fills = [_fill("web_123", 11)]  # someone traded on the venue's web page
    venue = _venue({"BTC": E8 // 100, "USDT": 500 * E8}, fills, ["a", "stranger", "closed"])
    rec = match(book, venue, dust_e8=DUST)
    kinds = [(e.kind, e.subject, e.venue_value, e.book_value) for e in rec.external]
    assert kinds == [
        ("trade", "11", "0.01000000 @ 40000.00000000 for web_123", "no such order"),
        ("open_order", "stranger", "open, venue order id 7", "no such order"),
        ("open_order", "closed", "open, venue order id 7", "CANCELED"),
        ("balance", "BTC", "0.01000000", "0.00000000"),
        ("balance", "USDT", "500.00000000", "1000.00000000"),
    ]
    assert rec.missed == []
    assert all(e.ts_ms == 99 for e in rec.external)
    assert (action(rec, "halt"), action(rec, "adopt")) == ("halt", "adopt")


def test_differences_within_dust_are_not_events() -> None:
    book = _book({}, set(), {"BTC": E8, "USDT": 1000 * E8})
    near = {"BTC": E8 + 999, "USDT": 1000 * E8 - E8 // 100}
    assert match(book, _venue(near, []), dust_e8=DUST).clean
    over = {"BTC": E8 + 1000, "USDT": 1000 * E8}
    assert [e.subject for e in match(book, _venue(over, []), dust_e8=DUST).external] == ["BTC"]


def test_quote_dust_is_in_the_quote_assets_own_unit() -> None:
    from njord.core.filters import SymbolFilters
    from njord.reconcile import dust

    usdt = SymbolFilters(
        symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", step_e8=1000, min_notional_e8=5 * E8
    )
    btc = SymbolFilters(
        symbol="ETHBTC", base_asset="ETH", quote_asset="BTC", step_e8=10_000, min_notional_e8=10_000
    )
    bare = SymbolFilters(symbol="X", base_asset="A", quote_asset="B")
    assert dust(usdt) == {"BTC": 999, "USDT": 500_000}  # 0.005 USDT
    assert dust(btc) == {"ETH": 9_999, "BTC": 10}  # 0.0000001 BTC, not 0.01
    assert dust(btc, fills=50) == {"ETH": 9_999, "BTC": 110}  # each trade rounded to 1e-8
    tiny = SymbolFilters(
        symbol="Y", base_asset="A", quote_asset="B", step_e8=1, min_notional_e8=100
    )
    assert dust(tiny) == {"A": 0, "B": 1}  # a tiny minimum is still one, not a cent
    assert dust(bare) == {"A": 0, "B": E8 // 100}
