"""What the venue itself says a tortured session did, behind one interface: paper's venue
is the paper broker, whose journal lives in the session db; live's is the simulator, whose
own order list, trades and account are read directly (in-process: torture runs it)."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple, Protocol

from njord.core.reconcile import balance_effect
from njord.core.reports import Execution
from njord.records import Side
from njord.sim.exchange import OPEN
from njord.sim.server import SimServer
from njord.store import db
from njord.store import torture as rows


class VenueFill(NamedTuple):
    client_order_id: str
    trade_id: str
    side: Side
    execution: Execution


class Venue(Protocol):
    """The venue's view, read once the session has stopped."""

    def received(self) -> dict[str, int]:
        """Client order id -> how many orders the venue took with it."""
        ...

    def fills(self) -> list[VenueFill]:
        """Every execution, with the commission as the venue charged it."""
        ...

    def open_orders(self) -> set[str]: ...

    def balances(self) -> dict[str, int]:
        """The base and quote assets, e8 (free plus locked)."""
        ...


class PaperVenue:
    """The paper broker's journal (`paper_orders`): a submit of an id it already holds is
    counted in `sends`, executed never; its balances are the starting cash moved by its
    own executions."""

    def __init__(self, path: Path, *, base: str, quote: str, initial_cash_e8: int) -> None:
        conn = db.open_reader(path)
        try:
            self._journal = rows.journal(conn)
        finally:
            conn.close()
        self.base, self.quote = base, quote
        self.initial_cash_e8 = initial_cash_e8

    def received(self) -> dict[str, int]:
        return {o.client_order_id: o.sends for o in self._journal}

    def fills(self) -> list[VenueFill]:
        return [
            VenueFill(o.client_order_id, e.trade_id, o.side, e)
            for o in self._journal
            for e in o.executions
        ]

    def open_orders(self) -> set[str]:
        return {o.client_order_id for o in self._journal if o.open}

    def balances(self) -> dict[str, int]:
        held = {self.base: 0, self.quote: self.initial_cash_e8}
        for fill in self.fills():
            moved = balance_effect(fill.side, fill.execution, base=self.base, quote=self.quote)
            for asset, delta in moved.items():
                held[asset] += delta
        return held


def _e8(value: Decimal | str) -> int:
    return int(Decimal(value) * 100_000_000)


class SimVenue:
    """The simulator's own books, read once the session has stopped: every order it ever
    placed (a client order id twice is an execution twice), every trade with its commission
    exactly as charged, its open orders and the account's balances."""

    def __init__(self, server: SimServer, *, base: str, quote: str) -> None:
        exchange = server.state.exchange
        with exchange.lock:
            orders = list(exchange.orders.values())
            trades = [dict(t) for t in exchange.trades]
            self._balances = {
                a: _e8(exchange.free.get(a, Decimal(0)) + exchange.locked.get(a, Decimal(0)))
                for a in (base, quote)
            }
        self._orders = orders
        self._trades_per_order = Counter(int(t["orderId"]) for t in trades)
        coids = {o.order_id: o.client_order_id for o in orders}
        sides = {o.order_id: Side(o.side) for o in orders}
        self._fills = [
            VenueFill(
                coids[int(t["orderId"])],
                str(t["id"]),
                sides[int(t["orderId"])],
                Execution(
                    client_order_id=coids[int(t["orderId"])],
                    ts_ms=int(t["time"]),
                    qty_e8=_e8(str(t["qty"])),
                    price_e8=_e8(str(t["price"])),
                    fee_e8=0,
                    fee_asset=str(t["commissionAsset"]),
                    trade_id=str(t["id"]),
                    commission_e8=_e8(str(t["commission"])),
                ),
            )
            for t in trades
        ]

    def received(self) -> dict[str, int]:
        return dict(Counter(o.client_order_id for o in self._orders))

    def fills(self) -> list[VenueFill]:
        return list(self._fills)

    def open_orders(self) -> set[str]:
        return {o.client_order_id for o in self._orders if o.status in OPEN}

    def balances(self) -> dict[str, int]:
        return dict(self._balances)

    def partially_filled(self) -> int:
        """Orders the venue filled in more than one trade."""
        return sum(1 for n in self._trades_per_order.values() if n > 1)
