"""The session's book and the decisions of one bar: intents → risk → orders → fills → ledger.

Pure: time arrives as the bar's timestamp, executions arrive from the router port, and
everything that must be persisted is appended to an `Outbox` the loop hands to the store.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol

import msgspec

from njord.core.execution import CostModel, SymbolRules, cash_needed_e8
from njord.core.ledger import Ledger, Lot, Trade, net_of_base_fee
from njord.core.money import e8_to_decimal, mul_e8, to_e8
from njord.core.risk import RiskEngine, RiskInputs, Verdict
from njord.core.time import MINUTE_MS, bar_index, day_index
from njord.reasons import Reason, TradingState
from njord.records import Fill, Order, OrderIntent, OrderStatus, Side

FLATTEN_SEQ = 1_000_000  # a flatten's closing order: after any strategy intent of its bar


class BarE8(msgspec.Struct, frozen=True, gc=False):
    ts_ms: int
    open_e8: int
    high_e8: int
    low_e8: int
    close_e8: int


class Execution(msgspec.Struct, frozen=True, kw_only=True):
    """One aggregated fill as the router reports it (sim matcher or venue)."""

    client_order_id: str
    ts_ms: int
    qty_e8: int
    price_e8: int
    fee_e8: int
    fee_qty_e8: int = 0  # commission taken from the base asset received (a buy), if any


class OrderRouter(Protocol):
    """Takes orders to a venue (or a simulation of one) and reports executions.

    `submit` is called once per client order id, after the order is recorded; it returns
    what executed at once (a market order in simulation) and never raises for a venue
    refusal (that is an order status); a second submit of a known client order id executes
    nothing. `on_bar` reports what executed for resting orders during that bar. Each
    execution is one aggregated fill of one order. `cancel` of a filled or canceled order
    changes nothing and answers the order's final status.
    """

    def submit(self, order: Order, bar: BarE8) -> list[Execution]: ...

    def on_bar(self, bar: BarE8, open_orders: list[Order]) -> list[Execution]: ...

    def cancel(self, order: Order) -> OrderStatus:
        """CANCELED if the order was still open; its final status otherwise (a no-op)."""
        ...


class IntentRow(msgspec.Struct, frozen=True, kw_only=True):
    intent_id: int
    bar_ts_ms: int
    seq: int
    intent: OrderIntent
    qty_e8: int
    limit_e8: int | None
    verdict: Verdict
    client_order_id: str | None


class StateChange(msgspec.Struct, frozen=True, kw_only=True):
    ts_ms: int
    from_state: TradingState
    to_state: TradingState
    changed_by: str
    reason: str


class BookState(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the book knows, as one value: what a snapshot stores."""

    cash_e8: int
    realised_e8: int
    fees_e8: int
    lots: list[Lot]
    next_lot_seq: int
    open_orders: list[Order]
    state: TradingState
    day: int
    daily_realised_e8: int
    counters: list[tuple[str, int]]
    last_block: str | None
    peak_equity_e8: int
    next_intent: int
    next_fill: int
    bars: int
    last_bar_ms: int | None
    order_times: list[int]


class Outbox:
    """What one bar produced that the store must write in the bar's transaction."""

    def __init__(self) -> None:
        self.intents: list[IntentRow] = []
        self.orders: dict[str, Order] = {}
        self.order_events: list[tuple[str, int, str, str]] = []
        self.fills: list[Fill] = []
        self.trades: list[Trade] = []
        self.state_changes: list[StateChange] = []
        self.logs: list[tuple[str, str, str, dict[str, Any]]] = []

    def __bool__(self) -> bool:
        return bool(self.intents or self.orders or self.fills or self.state_changes or self.logs)


class Book:
    def __init__(
        self,
        *,
        symbol: str,
        initial_cash_e8: int,
        costs: CostModel,
        rules: SymbolRules,
        risk: RiskEngine,
        allow_short: bool,
        order_key: str,
        bar_ms: int = MINUTE_MS,
    ) -> None:
        self.symbol = symbol
        self.costs = costs
        self.rules = rules
        self.risk = risk
        self.allow_short = allow_short
        self.order_key = order_key
        self.bar_ms = bar_ms  # the session's bar length: the bar number in order ids
        self.ledger = Ledger(initial_cash_e8)
        self.open_orders: dict[str, Order] = {}
        self.state = TradingState.ACTIVE
        self.day = -1
        self.daily_realised_e8 = 0
        self.counters: dict[str, int] = {}
        self.last_block: str | None = None
        self.peak_equity_e8 = initial_cash_e8
        self.next_intent = 1
        self.next_fill = 1
        self.bars = 0
        self.last_bar_ms: int | None = None
        self._order_times: deque[int] = deque()
        self.out = Outbox()

    # -- the bar --------------------------------------------------------------------------

    def start_bar(self, bar: BarE8, router: OrderRouter) -> None:
        day = day_index(bar.ts_ms)
        if day != self.day:
            self.day, self.daily_realised_e8 = day, 0
        if self.open_orders:
            for execution in router.on_bar(bar, list(self.open_orders.values())):
                self._execute(execution, router)

    def decide(self, bar: BarE8, intents: list[OrderIntent], router: OrderRouter) -> None:
        for seq, intent in enumerate(intents):
            self._handle_intent(bar, seq, intent, router)

    def cancel(self, bar: BarE8, client_order_ids: list[str], router: OrderRouter) -> None:
        """The strategy's cancels, in the order it asked for them."""
        for coid in client_order_ids:
            order = self.open_orders.get(coid)
            if order is None:
                self.log(
                    "strategy",
                    "WARNING",
                    f"cancel of {coid}: not an open order, nothing done",
                    client_order_id=coid,
                )
                continue
            self._cancel(order, bar.ts_ms, Reason.CANCELED_BY_STRATEGY, router)

    def end_bar(self, bar: BarE8) -> tuple[int, int]:
        """Mark to the close: (equity, position)."""
        position = self.ledger.position_e8(self.symbol)
        equity = self.ledger.cash_e8
        if position:
            equity += mul_e8(position, bar.close_e8)
        if equity > self.peak_equity_e8:
            self.peak_equity_e8 = equity
        self.bars += 1
        self.last_bar_ms = bar.ts_ms
        return equity, position

    # -- operator controls ----------------------------------------------------------------

    def control(
        self, command: str, bar: BarE8, router: OrderRouter, *, by: str, reason: str
    ) -> None:
        if command == "resume":
            self._set_state(TradingState.ACTIVE, bar.ts_ms, by, reason)
            self.log("state", "INFO", "resumed by the operator", clear="daily_loss_halt")
        elif command == "reduce":
            self._set_state(TradingState.REDUCING, bar.ts_ms, by, reason)
        elif command == "halt":
            self._cancel_all(bar.ts_ms, Reason.CANCELED_BY_OPERATOR, router)
            self._set_state(TradingState.HALTED, bar.ts_ms, by, reason)
        elif command == "flatten":
            self._cancel_all(bar.ts_ms, Reason.CANCELED_BY_OPERATOR, router)
            self._flatten(bar, router, by=by, reason=reason)
        else:
            raise ValueError(f"unknown control {command!r}")

    def _flatten(self, bar: BarE8, router: OrderRouter, *, by: str, reason: str) -> None:
        """Close the position through the normal path, halt, and say what happened: the
        state change and a log record read "flat" or what stayed open and why."""
        position = self.ledger.position_e8(self.symbol)
        refused: Reason | None = None
        closing: str | None = None
        if position:
            side = Side.SELL if position > 0 else Side.BUY
            intent = OrderIntent(
                symbol=self.symbol, side=side, qty=e8_to_decimal(abs(position)), tag="flatten"
            )
            self._handle_intent(bar, FLATTEN_SEQ, intent, router, qty_e8=abs(position))
            row = self.out.intents[-1]
            refused = None if row.verdict.allowed else row.verdict.reason
            closing = row.client_order_id
        left = self.ledger.position_e8(self.symbol)
        if not left:
            outcome = "flat"
        else:
            held = f"{e8_to_decimal(left)} {self.symbol} stayed open"
            if refused is not None:
                outcome = f"{held}: closing order refused {refused}"
            else:
                order = self.open_orders.get(closing or "")
                status = order.status if order is not None else "not filled"
                outcome = f"{held}: closing order {closing} is {status}"
        self._set_state(
            TradingState.HALTED, bar.ts_ms, by, f"{reason}; flatten: {outcome}", always=True
        )
        if refused is not None:
            self.log(
                "control",
                "ERROR",
                f"flatten: {outcome}",
                position_e8=left,
                reason=refused,
                alert="flatten_refused",
            )
        elif left:
            self.log("control", "WARNING", f"flatten: {outcome}", position_e8=left)
        else:
            self.log("control", "INFO", "flatten: flat", clear="flatten_refused")

    # -- internals ------------------------------------------------------------------------

    def _handle_intent(
        self, bar: BarE8, seq: int, intent: OrderIntent, router: OrderRouter, *, qty_e8: int = -1
    ) -> None:
        """`qty_e8` given: the closing order of a flatten, for the whole position."""
        flatten = qty_e8 >= 0
        qty_e8 = self.rules.floor_qty(to_e8(intent.qty)) if qty_e8 < 0 else qty_e8
        limit_e8 = to_e8(intent.limit_price) if intent.limit_price is not None else None
        price_e8 = limit_e8 if limit_e8 is not None else bar.close_e8
        verdict = self._verdict(intent, qty_e8, price_e8, bar.ts_ms, flatten=flatten)
        intent_id = self.next_intent
        self.next_intent += 1
        coid = None
        if verdict.allowed:
            coid = f"nj{self.order_key}-{bar_index(bar.ts_ms, self.bar_ms)}-{seq}"
        else:
            self.counters[verdict.reason] = self.counters.get(verdict.reason, 0) + 1
            self.last_block = verdict.reason
        self.out.intents.append(
            IntentRow(
                intent_id=intent_id,
                bar_ts_ms=bar.ts_ms,
                seq=seq,
                intent=intent,
                qty_e8=qty_e8,
                limit_e8=limit_e8,
                verdict=verdict,
                client_order_id=coid,
            )
        )
        if coid is None:
            return
        order = Order(
            client_order_id=coid,
            intent_id=intent_id,
            symbol=intent.symbol,
            side=intent.side,
            type=intent.type,
            qty_e8=qty_e8,
            limit_e8=limit_e8,
            status=OrderStatus.NEW,
            created_ms=bar.ts_ms,
        )
        self._order_times.append(bar.ts_ms)
        self._transition(order, OrderStatus.NEW, bar.ts_ms)
        self._transition(order, OrderStatus.SUBMITTED, bar.ts_ms)
        self.open_orders[coid] = order
        for execution in router.submit(order, bar):
            self._execute(execution, router)

    def _verdict(
        self, intent: OrderIntent, qty_e8: int, price_e8: int, ts_ms: int, *, flatten: bool
    ) -> Verdict:
        position = self.ledger.position_e8(intent.symbol)
        # Only shrinks: a sell no larger than the long, a buy no larger than the short.
        held = position if intent.side is Side.SELL else -position
        reduces = 0 < qty_e8 <= held
        while self._order_times and self._order_times[0] <= ts_ms - MINUTE_MS:
            self._order_times.popleft()
        notional = mul_e8(qty_e8, price_e8)
        inputs = RiskInputs(
            state=self.state,
            symbol=intent.symbol,
            notional_e8=notional,
            reduces=reduces,
            opens_position=position == 0,
            open_positions=len(self.ledger.open_symbols()),
            daily_realised_e8=self.daily_realised_e8,
            orders_last_minute=len(self._order_times),
            flatten=flatten,
        )
        verdict = self.risk.check(inputs)
        if not verdict.allowed:
            return verdict
        refusal = self._account_refusal(intent, qty_e8, price_e8, position, notional)
        if refusal is not None:
            return Verdict(reason=refusal, inputs=verdict.inputs)
        return verdict

    def _account_refusal(
        self, intent: OrderIntent, qty_e8: int, price_e8: int, position: int, notional: int
    ) -> Reason | None:
        if qty_e8 <= 0:
            return Reason.ZERO_QUANTITY
        if notional < self.costs.min_notional_e8:
            return Reason.BELOW_MIN_NOTIONAL
        if intent.side is Side.BUY:
            cover = min(qty_e8, -position) if position < 0 else 0
            extra = qty_e8 - cover
            if extra and cash_needed_e8(extra, price_e8, self.costs) > self.ledger.cash_e8:
                return Reason.INSUFFICIENT_CASH
        elif not self.allow_short and qty_e8 > max(position, 0):
            return Reason.SHORT_NOT_ALLOWED
        return None

    def _execute(self, execution: Execution, router: OrderRouter) -> None:
        order = self.open_orders[execution.client_order_id]
        received, notional, base_fee = net_of_base_fee(
            execution.qty_e8, execution.price_e8, execution.fee_qty_e8
        )
        fill = Fill(
            fill_id=self.next_fill,
            client_order_id=order.client_order_id,
            ts_ms=execution.ts_ms,
            symbol=order.symbol,
            side=order.side,
            qty_e8=received,
            price_e8=execution.price_e8,
            notional_e8=notional,
            fee_e8=execution.fee_e8 + base_fee,
        )
        self.next_fill += 1
        realised, trades = self.ledger.apply(fill)
        fill = msgspec.structs.replace(fill, realised_e8=realised)
        self.daily_realised_e8 += realised - fill.fee_e8
        order.filled_qty_e8 += execution.qty_e8
        order.avg_price_e8 = fill.price_e8
        done = order.filled_qty_e8 >= order.qty_e8
        status = OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED
        self._transition(order, status, execution.ts_ms)
        if done:
            del self.open_orders[order.client_order_id]
        self.out.fills.append(fill)
        self.out.trades.extend(trades)
        if self.state is not TradingState.HALTED and self.risk.loss_breached(
            self.daily_realised_e8
        ):
            self._cancel_all(execution.ts_ms, Reason.CANCELED_BY_OPERATOR, router)
            self._set_state(TradingState.HALTED, execution.ts_ms, "risk", Reason.DAILY_LOSS_LIMIT)
            self.log(
                "risk",
                "WARNING",
                "daily loss limit breached: trading halted",
                daily_realised_e8=self.daily_realised_e8,
                alert="daily_loss_halt",
            )

    def _cancel_all(self, ts_ms: int, reason: Reason, router: OrderRouter) -> None:
        for order in list(self.open_orders.values()):
            self._cancel(order, ts_ms, reason, router)

    def _cancel(self, order: Order, ts_ms: int, reason: Reason, router: OrderRouter) -> None:
        """Through the router: a venue may answer that the order filled first."""
        if router.cancel(order) is OrderStatus.CANCELED:
            order.reason = reason
            self._transition(order, OrderStatus.CANCELED, ts_ms, reason)
            del self.open_orders[order.client_order_id]

    def _transition(self, order: Order, status: OrderStatus, ts_ms: int, detail: str = "") -> None:
        order.status = status
        self.out.orders[order.client_order_id] = order
        self.out.order_events.append((order.client_order_id, ts_ms, status, detail))

    def _set_state(
        self, to: TradingState, ts_ms: int, by: str, reason: str, *, always: bool = False
    ) -> None:
        """`always`: record the change even when the state stays (a flatten's outcome)."""
        if to is self.state and not always:
            return
        self.out.state_changes.append(
            StateChange(
                ts_ms=ts_ms, from_state=self.state, to_state=to, changed_by=by, reason=reason
            )
        )
        self.log("state", "WARNING", f"trading state {self.state} -> {to} by {by}: {reason}")
        self.state = to

    def log(self, component: str, level: str, msg: str, **context: Any) -> None:
        self.out.logs.append((component, level, msg, context))

    def snapshot(self) -> BookState:
        ledger = self.ledger
        return BookState(
            cash_e8=ledger.cash_e8,
            realised_e8=ledger.realised_e8,
            fees_e8=ledger.fees_e8,
            lots=[
                msgspec.structs.replace(lot) for s in sorted(ledger.lots) for lot in ledger.lots[s]
            ],
            next_lot_seq=ledger.next_lot_seq,
            open_orders=[msgspec.structs.replace(o) for o in self.open_orders.values()],
            state=self.state,
            day=self.day,
            daily_realised_e8=self.daily_realised_e8,
            counters=sorted(self.counters.items()),
            last_block=self.last_block,
            peak_equity_e8=self.peak_equity_e8,
            next_intent=self.next_intent,
            next_fill=self.next_fill,
            bars=self.bars,
            last_bar_ms=self.last_bar_ms,
            order_times=list(self._order_times),
        )

    def restore(self, state: BookState) -> None:
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
        self.open_orders = {
            o.client_order_id: msgspec.structs.replace(o) for o in state.open_orders
        }
        self.state = state.state
        self.day, self.daily_realised_e8 = state.day, state.daily_realised_e8
        self.counters = dict(state.counters)
        self.last_block = state.last_block
        self.peak_equity_e8 = state.peak_equity_e8
        self.next_intent, self.next_fill = state.next_intent, state.next_fill
        self.bars, self.last_bar_ms = state.bars, state.last_bar_ms
        self._order_times = deque(state.order_times)

    def take_outbox(self) -> Outbox:
        out, self.out = self.out, Outbox()
        return out

    def cash_e8(self) -> int:
        return self.ledger.cash_e8

    def open_order_list(self) -> list[Order]:
        return list(self.open_orders.values())
