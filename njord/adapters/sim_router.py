"""The in-process venues: the sim matcher of backtests and shadow, and the paper broker.

Both answer router v2 (njord.ports.OrderRouter) with reports from the shared fill model
(SPEC §7): a market order fills at the close of the bar it was sent in (`fill_at =
"close"`) or at the next bar's open (`"next_open"`), ± slippage; a limit order rests from
the next bar on. The paper broker is the same matcher with a journal: what it received and
executed is durable before it answers, so after a crash it knows, like a real venue, which
orders it holds and what they did.
"""

from __future__ import annotations

from typing import Protocol

from njord.core.book import BarE8
from njord.core.execution import CostModel, SymbolRules, limit_fill_price_e8, market_price_e8
from njord.core.money import bps_of, mul_e8
from njord.core.reports import Ack, Canceled, Execution, Report
from njord.records import Order, OrderStatus, OrderType, Side

KEPT = 1_000  # closed orders a matcher remembers (idempotence and queries)


class _Held:
    """An order as the venue holds it: what it answered so far, and whether it is open."""

    __slots__ = ("open", "order", "reports")

    def __init__(self, order: Order, reports: list[Report], *, open_: bool) -> None:
        self.order = order
        self.reports = reports
        self.open = open_


class SimRouter:
    """The matcher of backtest and shadow: in memory, idempotent on client order id."""

    remote = False

    def __init__(self, costs: CostModel, rules: SymbolRules, *, fill_at: str = "close") -> None:
        self.costs = costs
        self.rules = rules
        self.fill_at = fill_at
        self.bar: BarE8 | None = None  # the market now: the bar being processed
        # Several symbols (bars that name theirs): each symbol's market, its last bar.
        self.bars: dict[str, BarE8] = {}
        self._held: dict[str, _Held] = {}
        self._resting: dict[str, _Held] = {}
        self._executions: list[Execution] = []
        self._trade_seq = 0

    # -- the port -------------------------------------------------------------------------

    def submit(self, order: Order) -> list[Report]:
        held = self._held.get(order.client_order_id)
        if held is not None:
            return list(held.reports)  # a repeat executes nothing
        bar = self._now(order.symbol)
        held = _Held(
            order, [Ack(client_order_id=order.client_order_id, ts_ms=bar.ts_ms)], open_=True
        )
        self._keep(held)
        if order.type is OrderType.MARKET and self.fill_at == "close":
            price = market_price_e8(bar.close_e8, order.side, self.costs, self.rules)
            self._execute(held, order.qty_e8, price, bar.ts_ms)
        else:
            self._resting[order.client_order_id] = held  # from the next bar on
        self._journal(held)
        return list(held.reports)

    def cancel(self, client_order_id: str) -> list[Report]:
        held = self._resting.pop(client_order_id, None)
        if held is None:
            known = self._held.get(client_order_id)
            return list(known.reports) if known is not None else []
        held.open = False
        now = self._now(held.order.symbol)
        held.reports.append(Canceled(client_order_id=client_order_id, ts_ms=now.ts_ms))
        self._journal(held)
        return held.reports[-1:]

    def query(self, client_order_id: str) -> list[Report] | None:
        held = self._held.get(client_order_id)
        return list(held.reports) if held is not None else None

    def open_orders(self) -> list[Report]:
        return [h.reports[0] for h in self._resting.values()]

    def fills_since(self, cursor: str) -> list[Execution]:
        after = int(cursor or 0)
        return [e for e in self._executions if int(e.trade_id) > after]

    def on_bar(self, bar: BarE8) -> list[Report]:
        symbol = bar.symbol
        last = self.bars.get(symbol) if symbol else self.bar
        if last is not None and bar.ts_ms <= last.ts_ms:
            return []  # this bar was matched already (a restart goes through it again)
        self.bar = bar
        if symbol:
            self.bars[symbol] = bar
        reports: list[Report] = []
        if not self._resting:  # nothing to match: most bars
            self._journal_bar(bar)
            return reports
        for coid, held in list(self._resting.items()):
            order = held.order
            if symbol and order.symbol != symbol:
                continue  # another symbol's order: its own bars match it
            if order.type is OrderType.MARKET:
                price: int | None = market_price_e8(bar.open_e8, order.side, self.costs, self.rules)
            else:
                price = limit_fill_price_e8(order, bar.open_e8, bar.high_e8, bar.low_e8)
            if price is None:
                continue
            del self._resting[coid]
            left = order.qty_e8 - sum(r.qty_e8 for r in held.reports if isinstance(r, Execution))
            reports.append(self._execute(held, left, price, bar.ts_ms))
            self._journal(held)
        self._journal_bar(bar)
        return reports

    # -- matching -------------------------------------------------------------------------

    def _now(self, symbol: str) -> BarE8:
        bar = self.bars.get(symbol) if self.bars else self.bar
        if bar is None:
            raise RuntimeError("the matcher has no market yet: on_bar comes before submit")
        return bar

    def _execute(self, held: _Held, qty: int, price_e8: int, ts_ms: int) -> Execution:
        self._trade_seq += 1
        order = held.order
        if self.costs.fee_asset == "received" and order.side is Side.BUY:
            fee, fee_qty = 0, bps_of(qty, self.costs.commission_bps)
        else:
            fee, fee_qty = self.costs.fee_e8(mul_e8(qty, price_e8)), 0
        execution = Execution(
            client_order_id=order.client_order_id,
            ts_ms=ts_ms,
            qty_e8=qty,
            price_e8=price_e8,
            fee_e8=fee,
            fee_qty_e8=fee_qty,
            trade_id=str(self._trade_seq),
        )
        held.reports.append(execution)
        held.open = False
        self._executions.append(execution)
        if len(self._executions) > KEPT:
            del self._executions[0]
        return execution

    def _keep(self, held: _Held) -> None:
        self._held[held.order.client_order_id] = held
        if len(self._held) > KEPT:
            for coid, old in self._held.items():
                if not old.open:
                    del self._held[coid]
                    break

    def restore(
        self, orders: list[Order], bar: BarE8 | None, marks: dict[str, BarE8] | None = None
    ) -> None:
        """A backtest carried on: the orders the book holds at the venue rest again (those
        still NEW were never sent; the restart resolves them). `marks`: several symbols'
        last bars."""
        self.bar = bar
        self.bars = dict(marks or {})
        for order in orders:
            if order.status is not OrderStatus.NEW:
                held = _Held(
                    order,
                    [Ack(client_order_id=order.client_order_id, ts_ms=order.created_ms)],
                    open_=True,
                )
                self._keep(held)
                self._resting[order.client_order_id] = held

    # The journal hooks: nothing to keep in memory-only matching.
    def _journal(self, held: _Held) -> None:
        return None

    def _journal_bar(self, bar: BarE8) -> None:
        return None


class Journal(Protocol):
    """Where the paper broker keeps what it received and did (the session db, its own
    table, written in its own transaction: the venue's state, not the session's)."""

    def save_order(self, order: Order, reports: list[Report], *, open_: bool) -> None: ...

    def save_bar(self, bar: BarE8) -> None: ...

    def count_send(self, client_order_id: str) -> None: ...

    def load(self) -> tuple[list[tuple[Order, list[Report], bool]], list[BarE8]]: ...


class PaperBroker(SimRouter):
    """Paper trading's venue: the sim matcher, restart-safe through its journal. A restart
    finds every order it ever answered for, so an order sent before a crash is answered
    from the journal (`query`) and never executed twice."""

    def __init__(
        self, costs: CostModel, rules: SymbolRules, journal: Journal, *, fill_at: str = "close"
    ) -> None:
        super().__init__(costs, rules, fill_at=fill_at)
        self.journal = journal
        held, bars = journal.load()
        self.bar = bars[-1] if bars else None  # the market now: its latest bar
        self.bars = {b.symbol: b for b in bars if b.symbol}  # several symbols: each one's
        for order, reports, open_ in held:
            h = _Held(order, reports, open_=open_)
            self._held[order.client_order_id] = h
            if open_:
                self._resting[order.client_order_id] = h
            for r in reports:
                if isinstance(r, Execution):
                    self._trade_seq = max(self._trade_seq, int(r.trade_id))

    def submit(self, order: Order) -> list[Report]:
        if order.client_order_id in self._held:
            self.journal.count_send(order.client_order_id)
        return super().submit(order)

    def _journal(self, held: _Held) -> None:
        self.journal.save_order(held.order, held.reports, open_=held.open)

    def _journal_bar(self, bar: BarE8) -> None:
        self.journal.save_bar(bar)
