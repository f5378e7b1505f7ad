"""Sleeves: several strategies sharing one account, each with its own cash and positions.

A sleeve starts with its allocation of the initial cash and books exactly the fills of its
own orders in a ledger of its own, so what its strategy sees (`ctx.state`) is its own
account, and the sleeves' cash and positions (plus the cash no sleeve was given) add up to
the account's to the e8 unit. The allocator (`FixedFraction`) bounds how much exposure a
sleeve may add: its allocation of the portfolio's equity at the start of the UTC day.
Pure, like the rest of the core.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from njord.core.ledger import Ledger, Lot
from njord.core.money import mul_e8

SLOTS = "0123456789abcdefghijklmnopqrstuvwxyz"


def slot(index: int) -> str:
    """The two characters a sleeve's client order ids carry, from its place in the config."""
    return SLOTS[index // len(SLOTS)] + SLOTS[index % len(SLOTS)]


class SleeveState(msgspec.Struct, frozen=True, kw_only=True):
    """A sleeve as a book snapshot stores it."""

    id: str
    cash_e8: int
    realised_e8: int
    fees_e8: int
    lots: list[Lot]
    next_lot_seq: int
    halted: str | None
    budget_day: int
    budget_e8: int


class Sleeve:
    def __init__(
        self, *, id: str, index: int, symbols: tuple[str, ...], allocation_e8: int, cash_e8: int
    ) -> None:
        self.id = id
        self.slot = slot(index)
        self.symbols = symbols
        self.allocation_e8 = allocation_e8  # its share of the account, e8 (0.5: 50_000_000)
        self.ledger = Ledger(cash_e8)
        self.halted: str | None = None  # why it stopped trading; None while it trades
        self.budget_day = -1
        self.budget_e8 = 0

    def equity_e8(self, close_e8: Callable[[str], int]) -> int:
        return self.ledger.cash_e8 + sum(
            mul_e8(qty, close_e8(symbol)) for symbol, qty in self.ledger.positions() if qty
        )

    def exposure_e8(self, close_e8: Callable[[str], int]) -> int:
        return sum(
            abs(mul_e8(qty, close_e8(symbol))) for symbol, qty in self.ledger.positions() if qty
        )

    def rebase(self, day: int, portfolio_equity_e8: int) -> bool:
        """FixedFraction: the day's budget is the allocation of the portfolio's equity as
        the day starts (the equity at the last close before it). Whether it changed."""
        if day == self.budget_day:
            return False
        self.budget_day = day
        self.budget_e8 = mul_e8(portfolio_equity_e8, self.allocation_e8)
        return True

    def snapshot(self) -> SleeveState:
        ledger = self.ledger
        return SleeveState(
            id=self.id,
            cash_e8=ledger.cash_e8,
            realised_e8=ledger.realised_e8,
            fees_e8=ledger.fees_e8,
            lots=[
                msgspec.structs.replace(lot) for s in sorted(ledger.lots) for lot in ledger.lots[s]
            ],
            next_lot_seq=ledger.next_lot_seq,
            halted=self.halted,
            budget_day=self.budget_day,
            budget_e8=self.budget_e8,
        )

    def restore(self, state: SleeveState) -> None:
        ledger = self.ledger
        ledger.cash_e8, ledger.realised_e8, ledger.fees_e8 = (
            state.cash_e8,
            state.realised_e8,
            state.fees_e8,
        )
        ledger.lots = {}
        for lot in state.lots:
            ledger.lots.setdefault(lot.symbol, []).append(msgspec.structs.replace(lot))
        ledger.next_lot_seq = state.next_lot_seq
        ledger.refresh_positions()
        self.halted = state.halted
        self.budget_day, self.budget_e8 = state.budget_day, state.budget_e8
