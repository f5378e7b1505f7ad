"""The torture invariants against a fake venue: each names what broke."""

from __future__ import annotations

from njord.core.reports import Execution
from njord.records import Side
from njord.store.torture import DbFill
from njord.torture import invariants
from njord.torture.venues import VenueFill

E8 = 100_000_000


class FakeVenue:
    def __init__(self, fills: list[VenueFill], *, sends: int = 1, open_: set[str] | None = None):
        self._fills, self._sends, self._open = fills, sends, open_ or set()

    def received(self) -> dict[str, int]:
        return {f.client_order_id: self._sends for f in self._fills}

    def fills(self) -> list[VenueFill]:
        return self._fills

    def open_orders(self) -> set[str]:
        return self._open

    def balances(self) -> dict[str, int]:
        return {"BTC": E8 // 100 - 1_000, "USDT": 9_000 * E8}


def _buy(fee_qty_e8: int = 0) -> VenueFill:
    execution = Execution(
        client_order_id="nj1-5-0",
        ts_ms=0,
        qty_e8=E8 // 100,
        price_e8=42_000 * E8,
        fee_e8=0,
        fee_qty_e8=fee_qty_e8,
        trade_id="7",
    )
    return VenueFill("nj1-5-0", "7", Side.BUY, execution)


def test_a_base_commission_is_booked_at_the_fill_price_and_checked_exactly() -> None:
    venue = FakeVenue([_buy(fee_qty_e8=1_000)])
    booked = DbFill("nj1-5-0", "7", E8 // 100 - 1_000, 42_000 * E8, 42_000_000)
    assert invariants.fills_exact(venue, [booked]).ok
    wrong_fee = booked._replace(fee_e8=42_000_001)
    assert "not booked exactly once" in str(invariants.fills_exact(venue, [wrong_fee]).problem)
    twice = invariants.fills_exact(venue, [booked, booked])
    assert "never made" in str(twice.problem)


def test_a_second_send_is_a_duplicate() -> None:
    check = invariants.no_duplicate_execution(FakeVenue([_buy()], sends=2))
    assert check.problem == "1 client order ids reached the venue more than once: nj1-5-0"


def test_a_balance_difference_needs_an_external_event() -> None:
    venue = FakeVenue([_buy()], open_={"nj1-9-0"})
    book = {"BTC": E8 // 100 - 1_000, "USDT": 9_100 * E8}
    check = invariants.book_equals_venue(
        venue, book_open={"nj1-9-0"}, book_balances=book, external=set()
    )
    assert str(check.problem).startswith("USDT: venue")
    explained = invariants.book_equals_venue(
        venue, book_open={"nj1-9-0"}, book_balances=book, external={"USDT"}
    )
    assert explained.ok
    missing = invariants.book_equals_venue(
        venue, book_open=set(), book_balances=book, external=set()
    )
    assert missing.problem == "order nj1-9-0 is open only at the venue"


def test_bars_once_and_the_halt() -> None:
    assert invariants.bars_once([1, 2, 3], [1, 2, 3]).ok
    assert "committed 2 times" in str(invariants.bars_once([1, 2, 2, 3], [1, 2, 3]).problem)
    assert "missing, from 2" in str(invariants.bars_once([1, 3], [1, 2, 3]).problem)
    assert invariants.halt_within_1s([(1_000, 1_900)]).ok
    assert invariants.halt_within_1s([(1_000, 2_100)]).problem == "a halt took 1100 ms to apply"
    assert invariants.halt_within_1s([]).problem == "no halt was posted"
