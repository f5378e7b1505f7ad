"""FIFO accounting in exact e8 integers.

Quantities and costs of lots are signed (a short lot has qty < 0 and cost < 0, the cash
it brought in). Realised P&L is gross of fees; fees are counted once, in `fees_e8`, so
    equity = initial cash + realised + unrealised - fees
holds to the unit (tests/unit/test_ledger.py proves it on random fill sequences).
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from njord.core.money import mul_e8
from njord.records import Fill, Side


class Lot(msgspec.Struct, kw_only=True):
    lot_seq: int
    symbol: str
    entry_fill_id: int
    entry_ms: int
    qty_e8: int
    cost_e8: int
    fee_e8: int  # the part of the entry fill's fee still carried by this lot


class Trade(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    direction: str
    qty_e8: int
    entry_ms: int
    entry_cost_e8: int
    exit_ms: int
    exit_value_e8: int
    pnl_e8: int
    fees_e8: int
    entry_fill_id: int
    exit_fill_id: int


class LedgerState(Protocol):
    """What a snapshot keeps of a ledger (BookState, SleeveState)."""

    @property
    def cash_e8(self) -> int: ...
    @property
    def realised_e8(self) -> int: ...
    @property
    def fees_e8(self) -> int: ...
    @property
    def lots(self) -> list[Lot]: ...
    @property
    def next_lot_seq(self) -> int: ...


def net_of_base_fee(qty_e8: int, price_e8: int, fee_qty_e8: int) -> tuple[int, int, int]:
    """A buy whose commission was taken from the base asset it received (Binance's default),
    booked as the quote fee it amounts to at the fill price: (quantity received, its
    notional, fee in quote). Exact: notional + fee is to the unit what the buy paid."""
    paid = mul_e8(qty_e8, price_e8)
    received = qty_e8 - fee_qty_e8
    notional = mul_e8(received, price_e8)
    return received, notional, paid - notional


def _share(total: int, part: int, whole: int) -> int:
    """`total * part / whole` truncated toward zero; the caller gives the remainder to the last."""
    if part == whole:
        return total
    sign = -1 if total < 0 else 1
    return sign * (abs(total) * part // whole)


class Ledger:
    def __init__(self, cash_e8: int) -> None:
        self.cash_e8 = cash_e8
        self.realised_e8 = 0
        self.fees_e8 = 0
        self.lots: dict[str, list[Lot]] = {}
        self.next_lot_seq = 1
        self._positions: dict[str, int] = {}  # Σ lot qty, kept so the per-bar mark is O(1)

    def copied_lots(self) -> list[Lot]:
        """Its open lots, copied, symbol by symbol: what a snapshot keeps."""
        return [msgspec.structs.replace(lot) for s in sorted(self.lots) for lot in self.lots[s]]

    def restore(self, state: LedgerState) -> None:
        """Back to a snapshot's state (its lots copied in): the book's or a sleeve's."""
        self.cash_e8, self.realised_e8, self.fees_e8 = (
            state.cash_e8,
            state.realised_e8,
            state.fees_e8,
        )
        self.lots = {}
        for lot in state.lots:
            self.lots.setdefault(lot.symbol, []).append(msgspec.structs.replace(lot))
        self.next_lot_seq = state.next_lot_seq
        self.refresh_positions()

    def position_e8(self, symbol: str) -> int:
        return self._positions.get(symbol, 0)

    def positions(self) -> list[tuple[str, int]]:
        """Every symbol's position, open or not, in symbol order."""
        return sorted(self._positions.items())

    def cost_e8(self, symbol: str) -> int:
        return sum(lot.cost_e8 for lot in self.lots.get(symbol, ()))

    def open_symbols(self) -> list[str]:
        return sorted(s for s, lots in self.lots.items() if lots)

    def equity_e8(self, marks_e8: dict[str, int]) -> int:
        return self.cash_e8 + sum(
            mul_e8(self.position_e8(s), marks_e8[s]) for s in self.open_symbols()
        )

    def apply(self, fill: Fill) -> tuple[int, list[Trade]]:
        """Book one fill; returns (realised P&L of this fill, round trips it closed)."""
        sign = 1 if fill.side is Side.BUY else -1
        flow_left = -sign * fill.notional_e8
        fee_left = fill.fee_e8
        qty_left = fill.qty_e8
        self.cash_e8 += flow_left - fill.fee_e8
        self.fees_e8 += fill.fee_e8
        lots = self.lots.setdefault(fill.symbol, [])
        realised, trades = 0, []
        while qty_left and lots and (lots[0].qty_e8 > 0) != (sign > 0):
            lot = lots[0]
            take = min(qty_left, abs(lot.qty_e8))
            flow = _share(flow_left, take, qty_left)
            fee = _share(fee_left, take, qty_left)
            cost = _share(lot.cost_e8, take, abs(lot.qty_e8))
            lot_fee = _share(lot.fee_e8, take, abs(lot.qty_e8))
            pnl = flow - cost
            realised += pnl
            trades.append(
                Trade(
                    symbol=fill.symbol,
                    direction="LONG" if lot.qty_e8 > 0 else "SHORT",
                    qty_e8=take,
                    entry_ms=lot.entry_ms,
                    entry_cost_e8=abs(cost),
                    exit_ms=fill.ts_ms,
                    exit_value_e8=abs(flow),
                    pnl_e8=pnl,
                    fees_e8=fee + lot_fee,
                    entry_fill_id=lot.entry_fill_id,
                    exit_fill_id=fill.fill_id,
                )
            )
            lot.qty_e8 += sign * take
            lot.cost_e8 -= cost
            lot.fee_e8 -= lot_fee
            flow_left -= flow
            fee_left -= fee
            qty_left -= take
            if lot.qty_e8 == 0:
                lots.pop(0)
        if qty_left:
            lots.append(
                Lot(
                    lot_seq=self.next_lot_seq,
                    symbol=fill.symbol,
                    entry_fill_id=fill.fill_id,
                    entry_ms=fill.ts_ms,
                    qty_e8=sign * qty_left,
                    cost_e8=-flow_left,
                    fee_e8=fee_left,
                )
            )
            self.next_lot_seq += 1
        self.realised_e8 += realised
        self._positions[fill.symbol] = sum(lot.qty_e8 for lot in lots)
        return realised, trades

    def refresh_positions(self) -> None:
        self._positions = {s: sum(lot.qty_e8 for lot in lots) for s, lots in self.lots.items()}

    def unrealised_e8(self, marks_e8: dict[str, int]) -> int:
        return sum(
            mul_e8(self.position_e8(s), marks_e8[s]) - self.cost_e8(s) for s in self.open_symbols()
        )
