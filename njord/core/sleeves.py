"""Sleeves: several strategies sharing one account, each with its own cash and positions.

A sleeve starts with its allocation of the initial cash and books exactly the fills of its
own orders in a ledger of its own, so what its strategy sees (`ctx.state`) is its own
account, and the sleeves' cash and positions (plus the cash no sleeve was given) add up to
the account's to the e8 unit. The allocator (`FixedFraction`) bounds how much exposure a
sleeve may add: its allocation of the portfolio's equity at the start of the UTC day.
The allocator is a port: `FixedFraction` (the default) or `RiskParity`, which shares the
sleeves' total allocation in inverse proportion to each one's trailing volatility of daily
returns. Pure, like the rest of the core.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Protocol

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
    days: list[tuple[int, int]] = []  # (day, its equity as the day began), the latest last
    last_equity_e8: int = 0
    daily_realised_e8: int = 0


class Sleeve:
    def __init__(
        self,
        *,
        id: str,
        index: int,
        symbols: tuple[str, ...],
        allocation_e8: int,
        cash_e8: int,
        daily_loss_limit_e8: int = 0,
        notional_cap_e8: int = 0,
    ) -> None:
        self.id = id
        self.slot = slot(index)
        self.symbols = symbols
        self.allocation_e8 = allocation_e8  # its share of the account, e8 (0.5: 50_000_000)
        self.ledger = Ledger(cash_e8)
        self.halted: str | None = None  # why it stopped trading; None while it trades
        self.budget_day = -1
        self.budget_e8 = 0
        self.last_equity_e8 = cash_e8  # at the last close
        # Its own limits (0: off): a day's realised loss net of fees that halts it, and
        # the largest notional of one of its orders.
        self.daily_loss_limit_e8 = daily_loss_limit_e8
        self.notional_cap_e8 = notional_cap_e8
        self.daily_realised_e8 = 0
        self.days: list[tuple[int, int]] = []  # (day, equity as it began): RiskParity's input

    def equity_e8(self, close_e8: Callable[[str], int]) -> int:
        return self.ledger.cash_e8 + sum(
            mul_e8(qty, close_e8(symbol)) for symbol, qty in self.ledger.positions() if qty
        )

    def exposure_e8(self, close_e8: Callable[[str], int]) -> int:
        return sum(
            abs(mul_e8(qty, close_e8(symbol))) for symbol, qty in self.ledger.positions() if qty
        )

    def loss_breached(self) -> bool:
        """Its own daily loss limit (net of fees) reached today."""
        limit = self.daily_loss_limit_e8
        return bool(limit) and self.daily_realised_e8 <= -limit

    def begin_day(self, day: int, equity_e8: int, keep: int) -> None:
        """The sleeve's equity as `day` began (a replay's record replaces the estimate a
        rebuilt book made of it); the last `keep` days are kept."""
        if self.days and self.days[-1][0] == day:
            self.days[-1] = (day, equity_e8)
        else:
            self.days.append((day, equity_e8))
        del self.days[:-keep]

    def snapshot(self) -> SleeveState:
        ledger = self.ledger
        return SleeveState(
            id=self.id,
            cash_e8=ledger.cash_e8,
            realised_e8=ledger.realised_e8,
            fees_e8=ledger.fees_e8,
            lots=ledger.copied_lots(),
            next_lot_seq=ledger.next_lot_seq,
            halted=self.halted,
            budget_day=self.budget_day,
            budget_e8=self.budget_e8,
            days=list(self.days),
            last_equity_e8=self.last_equity_e8,
            daily_realised_e8=self.daily_realised_e8,
        )

    def restore(self, state: SleeveState) -> None:
        self.ledger.restore(state)
        self.halted = state.halted
        self.budget_day, self.budget_e8 = state.budget_day, state.budget_e8
        self.days, self.last_equity_e8 = list(state.days), state.last_equity_e8
        self.daily_realised_e8 = state.daily_realised_e8


class Allocator(Protocol):
    """How the sleeves' day budgets are set: each sleeve's share (e8) of the portfolio's
    equity as a UTC day begins. `days`: the days of equity each one needs (0: none)."""

    days: int

    def shares(self, sleeves: Sequence[Sleeve]) -> list[int]: ...


class FixedFraction:
    """Each sleeve's share is its allocation."""

    days = 0

    def shares(self, sleeves: Sequence[Sleeve]) -> list[int]:
        return [s.allocation_e8 for s in sleeves]


class RiskParity:
    """The sleeves' total allocation, shared in inverse proportion to each one's volatility
    of daily returns over the last `lookback` days (its allocation until every sleeve has
    two returns, or while one has none at all); exact to the e8 unit (largest remainder)."""

    def __init__(self, lookback: int) -> None:
        self.lookback = lookback
        self.days = lookback + 1

    def shares(self, sleeves: Sequence[Sleeve]) -> list[int]:
        vols = [_volatility([e for _, e in s.days[-self.days :]]) for s in sleeves]
        if any(v is None or v <= 0 for v in vols):
            return [s.allocation_e8 for s in sleeves]
        weights = [1 / v for v in vols if v is not None]
        return split(sum(s.allocation_e8 for s in sleeves), weights)


def _volatility(equities: list[int]) -> float | None:
    """The standard deviation of the daily returns between `equities` (None: under two)."""
    returns = [b / a - 1 for a, b in itertools.pairwise(equities) if a > 0]
    if len(returns) < 2:
        return None
    mean = sum(returns) / len(returns)
    return math.sqrt(sum((r - mean) ** 2 for r in returns) / (len(returns) - 1))


def split(total: int, weights: Sequence[float]) -> list[int]:
    """`total` in integer parts proportional to `weights`, summing to it exactly: each
    part floored, the units left over to the largest remainders (ties: the earliest)."""
    whole = sum(weights)
    exact = [total * w / whole for w in weights]
    parts = [math.floor(x) for x in exact]
    order = sorted(range(len(parts)), key=lambda i: (parts[i] - exact[i], i))
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts


def allocator_of(name: str, lookback: int) -> Allocator:
    return RiskParity(lookback) if name == "risk_parity" else FixedFraction()


def split_int(total: int, weights: Sequence[int]) -> list[int]:
    """`total` in integer parts proportional to integer `weights`, summing to it exactly:
    each part floored, the units left over to the largest remainders (ties: the earliest)."""
    whole = sum(weights)
    parts = [total * w // whole for w in weights]
    order = sorted(range(len(parts)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts
