"""What the venue itself says a tortured session did, behind one interface: paper's venue
is the paper broker, whose journal lives in the session db; live's is the simulator, whose
own order list, trades and account are asked directly."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Protocol

from njord.core.reconcile import balance_effect
from njord.core.reports import Execution
from njord.records import Side
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
