"""The session's book: intents → risk → NEW orders; venue reports → fills → ledger.

Pure, and it calls nothing: time arrives as the bar's timestamp, the orders it decides are
handed out (`take_outgoing`) for the loop to send once they are durable, and what the venue
answers comes back as reports (`apply`). Everything to persist is appended to an `Outbox`
the loop hands to the store. Every order moves through one state machine (`_NEXT`); a
transition it does not allow is a bug, never a silent overwrite.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import msgspec

from njord.core import filters
from njord.core.execution import CostModel, SymbolRules, cash_needed_e8
from njord.core.ledger import Ledger, Lot, Trade, net_of_base_fee
from njord.core.money import E8, e8_to_decimal, mul_e8, to_e8
from njord.core.reports import Ack, Canceled, Execution, Expired, Reject, Report, Unknown
from njord.core.risk import RiskEngine, RiskInputs, Verdict
from njord.core.sleeves import Allocator, FixedFraction, Sleeve, SleeveState, split_int
from njord.core.time import MINUTE_MS, bar_index, day_index
from njord.errors import InvariantViolation
from njord.reasons import Reason, TradingState
from njord.records import Fill, Order, OrderIntent, OrderStatus, OrderType, Side

FLATTEN_SEQ = 1_000_000  # a flatten's closing order: after any strategy intent of its bar
NET_SEQ = 2_000_000  # several strategies' opposite orders on a symbol, as one venue order
CLOSED_KEPT = 1_000  # closed orders remembered to recognise a venue's repeated reports


class BarE8(msgspec.Struct, frozen=True, gc=False):
    ts_ms: int
    open_e8: int
    high_e8: int
    low_e8: int
    close_e8: int
    symbol: str = ""  # "": the session's only symbol (a one-symbol session never sets it)


S = OrderStatus
# The order state machine: from each status, the statuses a report may move it to.
_NEXT: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.NEW: frozenset({S.SUBMITTED, S.PARTIALLY_FILLED, S.FILLED, S.REJECTED, S.CANCELED}),
    S.SUBMITTED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELED}),
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELED}),
    S.FILLED: frozenset(),
    S.CANCELED: frozenset(),
    S.REJECTED: frozenset(),
}


class VenueRules(msgspec.Struct, frozen=True, kw_only=True):
    """A live venue's filters for the symbol (refreshed from exchangeInfo) and the micro-cap:
    the risk step shapes every order to them, or refuses it, before it is ever sent."""

    filters: filters.SymbolFilters
    tiny: bool = False
    tiny_allow_min_notional: bool = False


class VenueTrade(msgspec.Struct, frozen=True, kw_only=True):
    """A fill as the venue reported it: its trade id, the quantity it executed (before a
    commission taken from it) and the commission exactly, in the asset it was taken in."""

    fill_id: int
    trade_id: str
    qty_e8: int
    commission_e8: int
    commission_asset: str


class Outgoing(msgspec.Struct, kw_only=True):
    """What the book wants sent, in this order: cancels first (a halt's cancels go before a
    flatten's closing order), then the NEW orders, as decided."""

    cancels: list[str]
    orders: list[Order]

    def __bool__(self) -> bool:
        return bool(self.cancels or self.orders)


class _Closing(msgspec.Struct, kw_only=True):
    """One position a flatten closes: its closing order, or why that was refused."""

    symbol: str
    client_order_id: str | None = None
    refused: Reason | None = None


class _Flatten(msgspec.Struct, kw_only=True):
    """A flatten waiting for its closing orders' outcomes (one per open position)."""

    ts_ms: int
    by: str
    reason: str
    # A one-symbol session's snapshots before several symbols: its closing order, if any.
    closing: str | None = None
    refused: Reason | None = None
    closings: list[_Closing] = []


class IntentRow(msgspec.Struct, frozen=True, kw_only=True):
    intent_id: int
    bar_ts_ms: int
    seq: int
    intent: OrderIntent
    qty_e8: int
    limit_e8: int | None
    verdict: Verdict
    client_order_id: str | None
    strategy_id: str = ""
    netted: list[str] = []  # a net order's intent: the sleeves' orders it stands for


class SleeveChange(msgspec.Struct, frozen=True, kw_only=True):
    """A sleeve stopped (its strategy raised, or an operator halted it) or resumed."""

    ts_ms: int
    strategy_id: str
    halted: str | None  # why; None: trading again
    # After its bar's decisions (a fill, or its strategy's on_fill): a rebuild applies it
    # after asking the strategies at that bar, as it happened.
    after: bool = False


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
    # Trade ids applied to orders still open: a report the venue repeats is applied once.
    applied_trades: list[tuple[str, str]] = []
    cancel_reasons: list[tuple[str, Reason]] = []  # cancels asked for, not yet reported
    flatten: _Flatten | None = None  # a flatten whose closing order is still open
    sleeves: list[SleeveState] = []  # several strategies: each one's own account
    day_equity_e8: int = 0  # the equity at the last close: a day's budgets start from it


class Outbox:
    """What one bar produced that the store must write in the bar's transaction."""

    def __init__(self) -> None:
        self.intents: list[IntentRow] = []
        self.orders: dict[str, Order] = {}
        self.order_events: list[tuple[str, int, str, str]] = []
        self.fills: list[Fill] = []
        self.trades: list[Trade] = []
        self.trade_ids: list[VenueTrade] = []  # the venue's trade behind each fill
        self.state_changes: list[StateChange] = []
        self.sleeve_changes: list[SleeveChange] = []
        # (strategy id, day, budget_e8, the sleeve's equity as the day began)
        self.budgets: list[tuple[str, int, int, int]] = []
        self.shares: list[Fill] = []  # a net order's fill, as each sleeve's order got it
        self.logs: list[tuple[str, str, str, dict[str, Any]]] = []
        # What makes it worth writing (the others come with these), in one tuple: asked
        # after every bar, mostly of an empty outbox, and `any` tests them in C.
        self._kept = (
            self.intents,
            self.orders,
            self.fills,
            self.state_changes,
            self.sleeve_changes,
            self.budgets,
            self.shares,
            self.logs,
        )

    def __bool__(self) -> bool:
        return any(self._kept)


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
        symbols: tuple[str, ...] = (),
        multi: bool = False,
    ) -> None:
        self.symbol = symbol  # the first of `symbols`: a one-symbol session's only one
        self.symbols = symbols or (symbol,)  # what the strategy declared, in session order
        # Whether the session has bars of several symbols (bars carry their symbol).
        self.multi = multi
        # Each symbol's last bar: a several-symbol session prices and marks each at its own.
        self.marks: dict[str, BarE8] = {}
        # Several strategies: each one's sleeve, in config order (empty: one strategy).
        self.sleeves: dict[str, Sleeve] = {}
        self.decided_ms: int | None = None  # the bar whose decisions were last taken
        self.allocator: Allocator = FixedFraction()
        # Net orders (`net`): each one's sleeve orders, and each sleeve order's net order.
        self.netted: dict[str, list[str]] = {}
        self.net_of: dict[str, str] = {}
        self.day_equity_e8 = initial_cash_e8
        self.costs = costs
        self.rules = rules
        self.venue: VenueRules | None = None  # live: shape to the venue's filters
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
        self._trades: dict[str, set[str]] = {}  # open order -> trade ids applied
        self._parts: dict[str, list[Fill]] = {}  # open order -> its executions so far
        self._cancel_reasons: dict[str, Reason] = {}  # cancels asked for, not yet reported
        self._outgoing = Outgoing(cancels=[], orders=[])
        self._flatten: _Flatten | None = None
        # How recent orders ended, so that a venue repeating itself is recognised.
        self._closed_status: dict[str, OrderStatus] = {}
        self._closed_trades: dict[str, frozenset[str]] = {}
        self.filled: list[Fill] = []  # logical fills (one per order) for the strategy
        self.out = Outbox()

    # -- the bar --------------------------------------------------------------------------

    def start_bar(self, bar: BarE8) -> None:
        self.roll_day(bar.ts_ms)

    def start_minute(self, bars: list[BarE8]) -> None:
        """A minute of several symbols' bars: each symbol's becomes its mark."""
        for bar in bars:
            self.marks[bar.symbol] = bar
        self.roll_day(bars[0].ts_ms)

    def roll_day(self, ts_ms: int) -> None:
        """A bar or a fill of a later UTC day starts the day's realised P&L from 0. Days
        only move forward: a venue's fill for the day's last bar can carry the next day's
        time, and the bar after it must not go back (a replay applies the same rule)."""
        day = day_index(ts_ms)
        if day > self.day:
            self.day, self.daily_realised_e8 = day, 0
            if self.sleeves:
                self._begin_day(day)

    def _begin_day(self, day: int) -> None:
        """The sleeves' budgets for the day, from the allocator and the portfolio's equity
        as the day begins; each sleeve's opening equity is kept (the allocator's input) and
        logged with its budget, so a replay has both."""
        sleeves = list(self.sleeves.values())
        for sleeve in sleeves:
            sleeve.begin_day(day, sleeve.last_equity_e8, max(self.allocator.days, 1))
            sleeve.daily_realised_e8 = 0
        for sleeve, share in zip(sleeves, self.allocator.shares(sleeves), strict=True):
            sleeve.budget_day, sleeve.budget_e8 = day, mul_e8(self.day_equity_e8, share)
            self.out.budgets.append((sleeve.id, day, sleeve.budget_e8, sleeve.last_equity_e8))

    def decide(
        self, bar: BarE8, intents: list[OrderIntent], *, strategy_id: str = "", first_seq: int = 0
    ) -> None:
        """Risk and account checks; the orders allowed become NEW (see `take_outgoing`).
        `strategy_id`: the sleeve whose strategy asked (its intents numbered on from
        `first_seq`: one minute's intents of every strategy share the sequence)."""
        sleeve = self.sleeves[strategy_id] if strategy_id else None
        for seq, intent in enumerate(intents, start=first_seq):
            self._handle_intent(bar, seq, intent, sleeve=sleeve)

    def net(self, bar: BarE8) -> None:
        """Several strategies' market orders of this minute on one symbol, buys and sells
        from different sleeves: one venue order for the difference instead, whose fill is
        shared back to them exactly (`_share`). Each sleeve order stays in the book (its
        strategy sees it, its cash is held) but is never sent. Not when they cancel out
        to nothing, nor with commissions taken from the asset received."""
        if self.costs.fee_asset != "quote":
            return
        fresh = [
            o
            for o in self._outgoing.orders
            if o.strategy_id and o.type is OrderType.MARKET and o.created_ms == bar.ts_ms
        ]
        for symbol in sorted({o.symbol for o in fresh}):
            mine = [o for o in fresh if o.symbol == symbol]
            buys = sum(o.qty_e8 for o in mine if o.side is Side.BUY)
            sells = sum(o.qty_e8 for o in mine if o.side is Side.SELL)
            owners = {o.strategy_id for o in mine}
            if not buys or not sells or buys == sells or len(owners) < 2:
                continue
            side = Side.BUY if buys > sells else Side.SELL
            qty = abs(buys - sells)
            children = [o.client_order_id for o in mine]
            self._outgoing.orders = [o for o in self._outgoing.orders if o not in mine]
            intent = OrderIntent(symbol=symbol, side=side, qty=e8_to_decimal(qty), tag="net")
            verdict = Verdict(reason=Reason.OK, inputs={"netted": children})
            seq = NET_SEQ + len(self.netted)
            self._new_order(
                bar,
                seq,
                intent,
                qty,
                None,
                self._mark(bar, symbol) or bar,
                verdict,
                owner="",
                netted=children,
            )

    def cancel(self, bar: BarE8, client_order_ids: list[str], *, owner: str = "") -> None:
        """The strategy's cancels, in the order it asked for them (`owner`: the sleeve
        whose strategy asked, which cancels only its own orders)."""
        for coid in client_order_ids:
            order = self.open_orders.get(coid)
            if order is None or order.strategy_id != owner:
                self.log(
                    "strategy",
                    "WARNING",
                    f"cancel of {coid}: not an open order, nothing done",
                    client_order_id=coid,
                )
                continue
            self._cancel(coid, Reason.CANCELED_BY_STRATEGY)

    def end_bar(self, bar: BarE8) -> tuple[int, int]:
        """Mark to the close: (equity, position). Several symbols: each position at its own
        symbol's last close, and position 0 (`marks` has them per symbol)."""
        if self.multi:
            position, equity = 0, self.ledger.equity_e8(self.marks_e8())
        else:
            position = self.ledger.position_e8(self.symbol)
            equity = self.ledger.cash_e8
            if position:
                equity += mul_e8(position, bar.close_e8)
        self._marked(bar.ts_ms, equity, equity, 1)
        return equity, position

    def end_quiet_bars(self, ts_ms: list[int], closes_e8: list[int]) -> tuple[list[int], int]:
        """`end_bar` for one symbol's bars on which nothing reached the book (no fill, no
        order): (each one's equity, the position). Cash and position are the same at every
        one of them, so only the close moves the mark, and flat, nothing does."""
        position, cash = self.ledger.position_e8(self.symbol), self.ledger.cash_e8
        if position:
            equities = [cash + mul_e8(position, close) for close in closes_e8]
            peak = max(equities)
        else:
            equities, peak = [cash] * len(closes_e8), cash
        self._marked(ts_ms[-1], peak, equities[-1], len(ts_ms))
        return equities, position

    def _marked(self, last_ms: int, peak_e8: int, equity_e8: int, bars: int) -> None:
        if peak_e8 > self.peak_equity_e8:
            self.peak_equity_e8 = peak_e8
        self.day_equity_e8 = equity_e8
        self.bars += bars
        self.last_bar_ms = last_ms

    @property
    def sending(self) -> bool:
        """Whether `take_outgoing` has anything: a check that builds nothing."""
        out = self._outgoing
        return bool(out.cancels or out.orders)

    def take_outgoing(self) -> Outgoing:
        out, self._outgoing = self._outgoing, Outgoing(cancels=[], orders=[])
        return out

    def replayed_close(self, coid: str) -> None:
        """An order the decision log closes (a replay or a rebuild): no longer open, and
        no cancel of it still asked for."""
        self.open_orders.pop(coid, None)
        self._cancel_reasons.pop(coid, None)

    def unsent_cancels(self) -> list[str]:
        """A rebuild's end: the strategy's cancels of orders still open, which the venue may
        never have been sent (a kill after they were decided); nothing else stays queued."""
        cancels = self.take_outgoing().cancels
        return [coid for coid in cancels if coid in self.open_orders]

    def take_filled(self) -> list[Fill]:
        """Orders whose execution ended since the last call, each as one logical fill."""
        filled, self.filled = self.filled, []
        return filled

    def note_trades(self, applied: dict[str, set[str]]) -> None:
        """A rebuilt book learns which trades its open orders' fills were (from the db), so
        a venue answering a query with them again applies each once."""
        for coid, trade_ids in applied.items():
            if coid in self.open_orders:
                self._trades.setdefault(coid, set()).update(trade_ids)

    # -- venue reports --------------------------------------------------------------------

    def apply(self, report: Report) -> None:
        """One venue report. Repeats are no-ops; an impossible transition is a bug."""
        coid = report.client_order_id
        order = self.open_orders.get(coid)
        if order is None:
            self._closed_report(report)
            return
        if isinstance(report, Execution):
            self._execute(order, report)
        elif isinstance(report, Ack):
            if order.status is OrderStatus.NEW:
                self._transition(order, OrderStatus.SUBMITTED, report.ts_ms)
        elif isinstance(report, Reject):
            order.reason = report.reason
            self._close(order, OrderStatus.REJECTED, report.ts_ms, f"{report.code} {report.reason}")
        elif isinstance(report, Canceled):
            reason = self._cancel_reasons.get(coid)
            order.reason = reason
            self._close(order, OrderStatus.CANCELED, report.ts_ms, reason or "by the venue")
        elif isinstance(report, Expired):
            # Binance expires what it will not fill (IOC, FOK, self-trade prevention): a
            # cancel by the venue, recorded as one with the reason.
            order.reason = "EXPIRED"
            self._close(order, OrderStatus.CANCELED, report.ts_ms, "expired at the venue")
        elif isinstance(report, Unknown):
            self.log(
                "router",
                "WARNING",
                f"order {coid}: outcome unknown ({report.detail}); asking the venue",
                client_order_id=coid,
            )
        self._settle_flatten(report.ts_ms)

    def _closed_report(self, report: Report) -> None:
        """A report on an order the book has closed (or never made): only a repeat of what
        closed it is possible. New executions, or another ending, mean the book is wrong."""
        if isinstance(report, (Ack, Unknown)):
            return
        if isinstance(report, Execution) and report.trade_id and self._known_trade(report):
            return
        if isinstance(report, (Canceled, Reject, Expired)) and self._ended_as(report):
            return
        raise InvariantViolation(
            f"venue report {type(report).__name__} for order {report.client_order_id}, which "
            "the book holds closed or never made: refusing to overwrite its state"
        )

    def _known_trade(self, report: Execution) -> bool:
        return report.trade_id in self._closed_trades.get(report.client_order_id, ())

    def _ended_as(self, report: Report) -> bool:
        ended = self._closed_status.get(report.client_order_id)
        want = S.REJECTED if isinstance(report, Reject) else S.CANCELED
        # A cancel racing a fill: the venue says canceled to an order that filled. Its final
        # state is the fill; the cancel changed nothing (SPEC §9: cancel of a filled order).
        return ended is want or (ended is S.FILLED and isinstance(report, Canceled))

    # -- operator controls ----------------------------------------------------------------

    def control(self, command: str, bar: BarE8, *, by: str, reason: str) -> None:
        if command == "resume":
            self._set_state(TradingState.ACTIVE, bar.ts_ms, by, reason)
            self.log("state", "INFO", "resumed by the operator", clear="daily_loss_halt")
        elif command == "reduce":
            self._set_state(TradingState.REDUCING, bar.ts_ms, by, reason)
        elif command == "halt":
            self._cancel_all(Reason.CANCELED_BY_OPERATOR)
            self._set_state(TradingState.HALTED, bar.ts_ms, by, reason)
        elif command == "flatten":
            self._cancel_all(Reason.CANCELED_BY_OPERATOR)
            self._start_flatten(bar, by=by, reason=reason)
        else:
            raise ValueError(f"unknown control {command!r}")

    def _start_flatten(self, bar: BarE8, *, by: str, reason: str) -> None:
        """Close every position through the normal path (one closing order per symbol, in
        session order); once the venue has answered for them all, halt and say what
        happened (`_settle_flatten`)."""
        flatten = _Flatten(ts_ms=bar.ts_ms, by=by, reason=reason)
        # Several strategies: each sleeve closes its own positions, so they stay its own.
        holders: list[Sleeve | None] = [*self.sleeves.values()] or [None]
        for sleeve, symbol in [(h, s) for h in holders for s in self.symbols]:
            ledger = self.ledger if sleeve is None else sleeve.ledger
            position = ledger.position_e8(symbol)
            if not position:
                continue
            side = Side.SELL if position > 0 else Side.BUY
            intent = OrderIntent(
                symbol=symbol, side=side, qty=e8_to_decimal(abs(position)), tag="flatten"
            )
            seq = FLATTEN_SEQ + len(flatten.closings)
            self._handle_intent(bar, seq, intent, qty_e8=abs(position), sleeve=sleeve)
            row = self.out.intents[-1]
            refused = None if row.verdict.allowed else row.verdict.reason
            closing = _Closing(symbol=symbol, client_order_id=row.client_order_id, refused=refused)
            flatten.closings.append(closing)
        self._flatten = flatten
        self._settle_flatten(bar.ts_ms)

    def _settle_flatten(self, ts_ms: int) -> None:
        flatten = self._flatten
        if flatten is None:
            return
        closings = flatten.closings
        if flatten.closing is not None or flatten.refused is not None:  # an old snapshot's
            old = _Closing(symbol=self.symbol, client_order_id=flatten.closing)
            old.refused = flatten.refused
            closings = [old]
        if any(c.client_order_id in self.open_orders for c in closings):
            return  # a closing order's outcome is not known yet
        self._flatten = None
        first: dict[str, _Closing] = {}  # two sleeves may each close one symbol
        for closing in closings:
            first.setdefault(closing.symbol, closing)
        held = [(c, self.ledger.position_e8(s)) for s, c in first.items()]
        held = [(c, left) for c, left in held if left]
        outcome = "; ".join(self._left_open(c, left) for c, left in held) or "flat"
        refused = next((c.refused for c in closings if c.refused is not None), None)
        self._set_state(
            TradingState.HALTED,
            flatten.ts_ms,
            flatten.by,
            f"{flatten.reason}; flatten: {outcome}",
            always=True,
        )
        left = sum(abs(q) for _, q in held) if self.multi else (held[0][1] if held else 0)
        if refused is not None:
            self.log(
                "control",
                "ERROR",
                f"flatten: {outcome}",
                position_e8=left,
                reason=refused,
                alert="flatten_refused",
            )
        elif held:
            self.log("control", "WARNING", f"flatten: {outcome}", position_e8=left)
        else:
            self.log("control", "INFO", "flatten: flat", clear="flatten_refused")

    def _left_open(self, closing: _Closing, left: int) -> str:
        held = f"{e8_to_decimal(left)} {closing.symbol} stayed open"
        if closing.refused is not None:
            return f"{held}: closing order refused {closing.refused}"
        status = self._closed_status.get(closing.client_order_id or "", "not filled")
        return f"{held}: closing order {closing.client_order_id} is {status}"

    # -- internals ------------------------------------------------------------------------

    def _handle_intent(
        self,
        bar: BarE8,
        seq: int,
        intent: OrderIntent,
        *,
        qty_e8: int = -1,
        sleeve: Sleeve | None = None,
    ) -> None:
        """`qty_e8` given: the closing order of a flatten, for the whole position.
        `sleeve`: the strategy's own account, which the order is checked against too."""
        flatten = qty_e8 >= 0
        limit_e8 = to_e8(intent.limit_price) if intent.limit_price is not None else None
        asked_e8 = qty_e8 if flatten else to_e8(intent.qty)  # what a refusal records
        verdict: Verdict | None = None
        refusal: Verdict | None = None
        mark = self._mark(bar, intent.symbol)
        declared = self.symbols if sleeve is None else sleeve.symbols
        if mark is None or intent.symbol not in declared:
            # The session has bars of its declared symbols only: an order on another would
            # fill at another symbol's price and never be marked. Refused before any rule
            # reads prices (a declared symbol whose first bar is still to come: the same).
            qty_e8 = asked_e8
            inputs: dict[str, Any] = {"symbol": intent.symbol, "declared": list(declared)}
            reason = Reason.SYMBOL_NOT_DECLARED
            if mark is None and intent.symbol in declared:
                reason = Reason.NO_BAR  # declared: no bar of it this minute
                last = self.marks.get(intent.symbol)
                inputs["last_bar_ms"] = None if last is None else last.ts_ms
            verdict = Verdict(reason=reason, inputs=inputs)
            mark = mark or bar
        elif self.venue is not None:
            shaped = self._venue_shape(intent, mark, qty_e8, limit_e8, flatten=flatten)
            if isinstance(shaped, filters.Refusal):
                qty_e8 = asked_e8
                refusal = Verdict(reason=shaped.reason, inputs=shaped.inputs)
            else:
                qty_e8, limit_e8 = shaped.qty_e8, shaped.price_e8
        elif not flatten:
            qty_e8 = self.rules.floor_qty(asked_e8)
        price_e8 = limit_e8 if limit_e8 is not None else mark.close_e8
        if verdict is None and sleeve is not None:
            verdict, qty_e8 = self._allocate(sleeve, bar, intent, qty_e8, price_e8, flatten=flatten)
        if verdict is None:
            verdict = self._verdict(
                intent,
                qty_e8,
                price_e8,
                bar.ts_ms,
                flatten=flatten,
                venue_refusal=refusal,
                sleeve=sleeve,
            )
        self._new_order(
            bar,
            seq,
            intent,
            qty_e8,
            limit_e8,
            mark,
            verdict,
            owner="" if sleeve is None else sleeve.id,
            slot="" if sleeve is None else sleeve.slot,
        )

    def _new_order(
        self,
        bar: BarE8,
        seq: int,
        intent: OrderIntent,
        qty_e8: int,
        limit_e8: int | None,
        mark: BarE8,
        verdict: Verdict,
        *,
        owner: str,
        slot: str = "",
        netted: list[str] | None = None,
    ) -> None:
        """The intent's row with its verdict and, allowed, its NEW order, to be sent."""
        price_e8 = limit_e8 if limit_e8 is not None else mark.close_e8
        intent_id = self.next_intent
        self.next_intent += 1
        coid = None
        if verdict.allowed:
            coid = f"nj{self.order_key}{slot}-{bar_index(bar.ts_ms, self.bar_ms)}-{seq}"
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
                strategy_id=owner,
                netted=netted or [],
            )
        )
        if coid is None:
            return
        if netted:
            self.note_net(coid, netted)
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
            avg_price_e8=price_e8 if intent.type is OrderType.MARKET else None,
            strategy_id=owner,
        )
        self._order_times.append(bar.ts_ms)
        self._record(order, bar.ts_ms)
        self.open_orders[coid] = order
        self._trades[coid] = set()
        self._outgoing.orders.append(order)

    def _allocate(
        self,
        sleeve: Sleeve,
        bar: BarE8,
        intent: OrderIntent,
        qty_e8: int,
        price_e8: int,
        *,
        flatten: bool,
    ) -> tuple[Verdict | None, int]:
        """The sleeve's own say, before the account's rules: a halted sleeve only shrinks
        its positions (STRATEGY_HALTED), and what adds exposure must fit its day's budget
        (FixedFraction: its allocation of the portfolio's equity as the day began), cut
        down to fit it or refused (ALLOCATION). Returns (a refusal or None, quantity)."""
        inputs: dict[str, Any] = {"strategy_id": sleeve.id}
        notional = mul_e8(qty_e8, price_e8)
        if sleeve.notional_cap_e8 and notional > sleeve.notional_cap_e8 and not flatten:
            inputs |= {"notional_e8": notional, "cap_e8": sleeve.notional_cap_e8}
            return Verdict(reason=Reason.NOTIONAL_CAP, inputs=inputs), qty_e8
        position = sleeve.ledger.position_e8(intent.symbol)
        shrinkable = position if intent.side is Side.SELL else -position
        held = self._held_qty(intent.symbol, intent.side, sleeve.id)
        if flatten or 0 < qty_e8 <= shrinkable - held:
            return None, qty_e8
        if sleeve.halted is not None:
            inputs["halted"] = sleeve.halted
            return Verdict(reason=Reason.STRATEGY_HALTED, inputs=inputs), qty_e8

        def close(symbol: str) -> int:
            return (self.marks[symbol] if self.multi else bar).close_e8

        exposure = sleeve.exposure_e8(close) + self._held_cash(sleeve.id)
        room = sleeve.budget_e8 - exposure
        if notional <= room:
            return None, qty_e8
        fits = self.rules.floor_qty(room * E8 // price_e8) if room > 0 and price_e8 > 0 else 0
        if fits > 0 and mul_e8(fits, price_e8) >= self.costs.min_notional_e8:
            return None, fits
        inputs |= {"budget_e8": sleeve.budget_e8, "exposure_e8": exposure}
        return Verdict(reason=Reason.ALLOCATION, inputs=inputs), qty_e8

    def marks_e8(self) -> dict[str, int]:
        """Each symbol's last close (several symbols)."""
        return {symbol: bar.close_e8 for symbol, bar in self.marks.items()}

    def note_net(self, coid: str, children: list[str]) -> None:
        """A net order and the sleeve orders it stands for (a replay learns it from the
        net order's intent record)."""
        self.netted[coid] = children
        for child in children:
            self.net_of[child] = coid

    def _share(self, net: Order, fill: Fill) -> None:
        """A net order's whole fill, shared back to the sleeve orders it stands for: each
        fills its own quantity at the fill's price; notionals (the largest order on the
        net order's side takes the unit left by rounding) and fees (pro rata to quantity,
        largest remainder) add up to the fill's exactly."""
        children = [self.open_orders[c] for c in self.netted[net.client_order_id]]
        fees = split_int(fill.fee_e8, [c.qty_e8 for c in children])
        notionals = [mul_e8(c.qty_e8, fill.price_e8) for c in children]
        signed = sum(
            n if c.side is net.side else -n for c, n in zip(children, notionals, strict=True)
        )
        largest = max(
            (i for i, c in enumerate(children) if c.side is net.side),
            key=lambda i: children[i].qty_e8,
        )
        notionals[largest] += fill.notional_e8 - signed
        for child, notional, fee in zip(children, notionals, fees, strict=True):
            share = Fill(
                fill_id=fill.fill_id,
                client_order_id=child.client_order_id,
                ts_ms=fill.ts_ms,
                symbol=child.symbol,
                side=child.side,
                qty_e8=child.qty_e8,
                price_e8=fill.price_e8,
                notional_e8=notional,
                fee_e8=fee,
                strategy_id=child.strategy_id,
            )
            sleeve = self.book_share(share)
            self.out.shares.append(share)
            child.filled_qty_e8, child.avg_price_e8 = child.qty_e8, fill.price_e8
            self._parts[child.client_order_id] = [share]
            self._close(child, OrderStatus.FILLED, fill.ts_ms, f"netted in {net.client_order_id}")
            self._loss_halt(sleeve, fill.ts_ms)

    def _loss_halt(self, sleeve: Sleeve, ts_ms: int) -> None:
        """A fill took the sleeve to its own daily loss limit: it halts, alone."""
        if sleeve.halted is None and sleeve.loss_breached():
            why = f"{Reason.DAILY_LOSS_LIMIT}: {e8_to_decimal(sleeve.daily_realised_e8)} today"
            self.halt_sleeve(sleeve.id, ts_ms, why)

    def book_share(self, share: Fill) -> Sleeve:
        """A sleeve's share of a net order's fill, into its ledger only (the account booked
        the venue's fill)."""
        sleeve = self.sleeves[share.strategy_id]
        realised, _ = sleeve.ledger.apply(share)
        sleeve.daily_realised_e8 += realised - share.fee_e8
        return sleeve

    def _mark(self, bar: BarE8, symbol: str) -> BarE8 | None:
        """The bar `symbol` is priced at: this bar in a one-symbol session; with several,
        the symbol's last one (`start_minute` keeps them); None for a symbol not declared or
        without a bar yet."""
        if symbol not in self.symbols:
            return None
        if not self.multi:
            return bar
        mark = self.marks.get(symbol)
        # Only a bar of this minute: an older one's price is stale, and a fill at it would
        # be dated before its order.
        return mark if mark is not None and mark.ts_ms >= bar.ts_ms else None

    def _venue_shape(
        self, intent: OrderIntent, bar: BarE8, qty_e8: int, limit_e8: int | None, *, flatten: bool
    ) -> filters.Shaped | filters.Refusal:
        """The order as the venue will take it: cut to the micro-cap (`--tiny`: orders that
        add exposure; one that only reduces it, a flatten's among them, is never cut, or what
        tiny mode bought could be left unsellable), then on the step and tick and within
        the filters; or the first of them it fails (LIVE_MICRO_CAP, VENUE_FILTER)."""
        venue = self.venue
        assert venue is not None
        f = venue.filters
        qty = to_e8(intent.qty) if qty_e8 < 0 else qty_e8
        position = self.ledger.position_e8(intent.symbol)
        reduces = 0 < qty <= (position if intent.side is Side.SELL else -position)
        if venue.tiny and not flatten and not reduces:
            capped = filters.tiny_cap(
                f,
                kind=intent.type,
                qty_e8=qty,
                price_e8=limit_e8 if limit_e8 is not None else bar.close_e8,
                allow_min_notional=venue.tiny_allow_min_notional,
            )
            if isinstance(capped, filters.Refusal):
                return capped
            qty = capped.qty_e8
        return filters.check(
            f,
            side=intent.side,
            kind=intent.type,
            qty_e8=qty,
            price_e8=limit_e8,
            reference_e8=bar.close_e8,
            open_orders=sum(1 for o in self.open_orders.values() if o.symbol == intent.symbol),
        )

    def _verdict(
        self,
        intent: OrderIntent,
        qty_e8: int,
        price_e8: int,
        ts_ms: int,
        *,
        flatten: bool,
        venue_refusal: Verdict | None = None,
        sleeve: Sleeve | None = None,
    ) -> Verdict:
        """The risk rules first, then the venue's filters (what it would refuse before it
        looked at the balances), then what the account (a sleeve's: its own) holds."""
        position = self.ledger.position_e8(intent.symbol)
        # Only shrinks: a sell no larger than the long, a buy no larger than the short,
        # counting what open orders on the same side will already take off.
        if intent.side is Side.SELL:
            held = position - self._held_qty(intent.symbol, Side.SELL)
        else:
            held = -position - self._held_qty(intent.symbol, Side.BUY)
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
        if venue_refusal is not None:
            return venue_refusal
        owner = None if sleeve is None else sleeve.id
        ledger = self.ledger if sleeve is None else sleeve.ledger
        if sleeve is not None:
            position = ledger.position_e8(intent.symbol)
        refusal = self._account_refusal(intent, qty_e8, price_e8, position, notional, ledger, owner)
        if refusal is not None:
            return Verdict(reason=refusal, inputs=verdict.inputs)
        return verdict

    def _account_refusal(
        self,
        intent: OrderIntent,
        qty_e8: int,
        price_e8: int,
        position: int,
        notional: int,
        ledger: Ledger,
        owner: str | None,
    ) -> Reason | None:
        """Against what is free: cash and position less what open orders hold, as a venue
        locks funds for an open order (an order decided this bar has not filled yet); a
        sleeve's, against its own cash, position and orders (`owner`)."""
        if qty_e8 <= 0:
            return Reason.ZERO_QUANTITY
        if self.venue is None and notional < self.costs.min_notional_e8:
            return Reason.BELOW_MIN_NOTIONAL  # a venue's own minimum is its NOTIONAL filter
        if intent.side is Side.BUY:
            cover = min(qty_e8, -position) if position < 0 else 0
            extra = qty_e8 - cover
            free = ledger.cash_e8 - self._held_cash(owner)
            if extra and cash_needed_e8(extra, price_e8, self.costs) > free:
                return Reason.INSUFFICIENT_CASH
        elif not self.allow_short and qty_e8 > max(position, 0) - self._held_qty(
            intent.symbol, Side.SELL, owner
        ):
            return Reason.SHORT_NOT_ALLOWED
        return None

    def _held_cash(self, owner: str | None = None) -> int:
        """What open buys (of every symbol; `owner`'s only, when given) hold of the cash."""
        held = 0
        for o in self.open_orders.values():
            if o.side is Side.BUY and (owner is None or o.strategy_id == owner):
                left = o.qty_e8 - o.filled_qty_e8
                held += cash_needed_e8(left, o.limit_e8 or o.avg_price_e8 or 0, self.costs)
        return held

    def _held_qty(self, symbol: str, side: Side, owner: str | None = None) -> int:
        return sum(
            o.qty_e8 - o.filled_qty_e8
            for o in self.open_orders.values()
            if o.side is side and o.symbol == symbol and (owner is None or o.strategy_id == owner)
        )

    def _execute(self, order: Order, execution: Execution) -> None:
        trades = self._trades.setdefault(order.client_order_id, set())
        if execution.trade_id:
            if execution.trade_id in trades:
                return  # a repeat: applied once
            trades.add(execution.trade_id)
        if execution.qty_e8 <= 0 or order.filled_qty_e8 + execution.qty_e8 > order.qty_e8:
            raise InvariantViolation(
                f"venue reports {execution.qty_e8} e8 executed of order "
                f"{order.client_order_id}, which has {order.qty_e8 - order.filled_qty_e8} left"
            )
        self.roll_day(execution.ts_ms)
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
            strategy_id=order.strategy_id,
        )
        self.next_fill += 1
        realised, closed = self.book_fill(fill)
        if fill.strategy_id:
            self._loss_halt(self.sleeves[fill.strategy_id], execution.ts_ms)
        fill = msgspec.structs.replace(fill, realised_e8=realised)
        self.daily_realised_e8 += realised - fill.fee_e8
        before = order.filled_qty_e8
        order.filled_qty_e8 += execution.qty_e8
        # The average over every execution; one execution: its price, exactly.
        order.avg_price_e8 = (
            ((order.avg_price_e8 or 0) * before + execution.price_e8 * execution.qty_e8)
            // order.filled_qty_e8
            if before
            else execution.price_e8
        )
        self.out.fills.append(fill)
        if execution.trade_id:
            self.out.trade_ids.append(
                VenueTrade(
                    fill_id=fill.fill_id,
                    trade_id=execution.trade_id,
                    qty_e8=execution.qty_e8,
                    commission_e8=execution.commission_e8,
                    commission_asset=execution.fee_asset,
                )
            )
        self._parts.setdefault(order.client_order_id, []).append(fill)
        self.out.trades.extend(closed)
        if order.client_order_id in self.netted:
            if order.filled_qty_e8 < order.qty_e8:
                raise InvariantViolation(
                    f"net order {order.client_order_id} filled in part: its shares are "
                    "split on whole fills only (several strategies run on njord's own matchers)"
                )
            self._share(order, fill)
        if order.filled_qty_e8 >= order.qty_e8:
            self._close(order, OrderStatus.FILLED, execution.ts_ms)
        else:
            self._transition(order, OrderStatus.PARTIALLY_FILLED, execution.ts_ms)
        if self.state is not TradingState.HALTED and self.risk.loss_breached(
            self.daily_realised_e8
        ):
            self._cancel_all(Reason.CANCELED_BY_OPERATOR)
            self._set_state(TradingState.HALTED, execution.ts_ms, "risk", Reason.DAILY_LOSS_LIMIT)
            self.log(
                "risk",
                "WARNING",
                "daily loss limit breached: trading halted",
                daily_realised_e8=self.daily_realised_e8,
                alert="daily_loss_halt",
            )

    def sleeve_marks(self, bar: BarE8) -> list[tuple[str, int, int]]:
        """Each sleeve's (id, cash, equity) at this close, its positions at their symbols'
        last closes."""

        def close(symbol: str) -> int:
            return (self.marks[symbol] if self.multi else bar).close_e8

        rows = []
        for sleeve in self.sleeves.values():
            sleeve.last_equity_e8 = sleeve.equity_e8(close)
            rows.append((sleeve.id, sleeve.ledger.cash_e8, sleeve.last_equity_e8))
        return rows

    def book_fill(self, fill: Fill) -> tuple[int, list[Trade]]:
        """Into the account's ledger and, an order of a sleeve's, into the sleeve's: the
        account's realised P&L and the round trips it closed."""
        if fill.strategy_id:
            sleeve = self.sleeves[fill.strategy_id]
            realised, _ = sleeve.ledger.apply(fill)
            sleeve.daily_realised_e8 += realised - fill.fee_e8
        return self.ledger.apply(fill)

    def sleeve_control(self, command: str, strategy_id: str, ts_ms: int, *, by: str) -> None:
        """An operator's halt or resume of one sleeve (`njord halt --strategy ID`), at a
        bar's start or between bars (`ts_ms`: the last bar's open + 1 ms)."""
        if command == "halt":
            self.halt_sleeve(strategy_id, ts_ms, f"halted by {by}")
        elif command == "resume":
            sleeve = self.sleeves[strategy_id]
            if sleeve.halted is None:
                return
            sleeve.halted = None
            self.out.sleeve_changes.append(
                SleeveChange(ts_ms=ts_ms, strategy_id=strategy_id, halted=None)
            )
            self.log("strategy", "INFO", f"strategy {strategy_id} resumed by {by}")
        else:
            raise ValueError(f"{command!r} does not apply to one strategy")

    def halt_sleeve(self, strategy_id: str, ts_ms: int, why: str) -> None:
        """Stop one strategy (it raised, or an operator said so): its open orders are
        canceled and it only shrinks its positions from now on; the others trade on."""
        sleeve = self.sleeves[strategy_id]
        if sleeve.halted is not None:
            return
        sleeve.halted = why
        for coid, order in list(self.open_orders.items()):
            if order.strategy_id == strategy_id:
                self._cancel(coid, Reason.STRATEGY_HALTED)
        after = self.decided_ms == ts_ms
        self.out.sleeve_changes.append(
            SleeveChange(ts_ms=ts_ms, strategy_id=strategy_id, halted=why, after=after)
        )
        self.log(
            "strategy", "WARNING", f"strategy {strategy_id} halted: {why}", strategy=strategy_id
        )

    def _close(self, order: Order, status: OrderStatus, ts_ms: int, detail: str = "") -> None:
        coid = order.client_order_id
        self._transition(order, status, ts_ms, detail)
        del self.open_orders[coid]
        self._cancel_reasons.pop(coid, None)
        self._closed_trades[coid] = frozenset(self._trades.pop(coid, ()))
        self._closed_status[coid] = status
        if len(self._closed_status) > CLOSED_KEPT:
            oldest = next(iter(self._closed_status))
            del self._closed_status[oldest], self._closed_trades[oldest]
        parts = self._parts.pop(coid, [])
        children = self.netted.pop(coid, None)
        if children is not None:  # a net order: its sleeve orders end as it did
            for child in children:
                del self.net_of[child]
                if child in self.open_orders:
                    self._close(self.open_orders[child], status, ts_ms, detail or status)
        elif parts:
            self.filled.append(self._logical_fill(order, parts, ts_ms))

    @staticmethod
    def _logical_fill(order: Order, mine: list[Fill], ts_ms: int) -> Fill:
        """What the strategy is told: the order's executions as one fill (SPEC §7)."""
        if len(mine) == 1:
            return mine[0]
        return Fill(
            fill_id=mine[-1].fill_id,
            client_order_id=order.client_order_id,
            ts_ms=ts_ms,
            symbol=order.symbol,
            side=order.side,
            qty_e8=sum(f.qty_e8 for f in mine),
            price_e8=order.avg_price_e8 or 0,
            notional_e8=sum(f.notional_e8 for f in mine),
            fee_e8=sum(f.fee_e8 for f in mine),
            realised_e8=sum(f.realised_e8 for f in mine),
        )

    def _cancel_all(self, reason: Reason) -> None:
        for coid in list(self.open_orders):
            self._cancel(coid, reason)

    def _cancel(self, coid: str, reason: Reason) -> None:
        """Asked of the venue: it may answer that the order filled first."""
        if coid in self._cancel_reasons:
            return
        self._cancel_reasons[coid] = reason
        self._outgoing.cancels.append(coid)

    def _transition(self, order: Order, status: OrderStatus, ts_ms: int, detail: str = "") -> None:
        if status not in _NEXT[order.status]:
            raise InvariantViolation(
                f"order {order.client_order_id}: {order.status} -> {status} is not a "
                "transition of the order state machine"
            )
        order.status = status
        self._record(order, ts_ms, detail)

    def _record(self, order: Order, ts_ms: int, detail: str = "") -> None:
        self.out.orders[order.client_order_id] = order
        self.out.order_events.append((order.client_order_id, ts_ms, order.status, detail))

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
            lots=ledger.copied_lots(),
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
            applied_trades=sorted((c, t) for c, ids in self._trades.items() for t in ids),
            cancel_reasons=sorted(self._cancel_reasons.items()),
            flatten=msgspec.structs.replace(self._flatten) if self._flatten else None,
            sleeves=[s.snapshot() for s in self.sleeves.values()],
            day_equity_e8=self.day_equity_e8,
        )

    def restore(self, state: BookState) -> None:
        self.ledger.restore(state)
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
        self._trades = {coid: set() for coid in self.open_orders}
        for coid, trade_id in state.applied_trades:
            self._trades.setdefault(coid, set()).add(trade_id)
        self._cancel_reasons = dict(state.cancel_reasons)
        self._flatten = msgspec.structs.replace(state.flatten) if state.flatten else None
        for kept in state.sleeves:
            self.sleeves[kept.id].restore(kept)
        self.day_equity_e8 = state.day_equity_e8

    def adds_exposure(self, order: Order) -> bool:
        """Whether the order would do more than shrink its symbol's position (a sell no
        larger than the long, a buy no larger than the short only reduces)."""
        position = self.ledger.position_e8(order.symbol)
        shrinkable = position if order.side is Side.SELL else -position
        return order.qty_e8 > max(shrinkable, 0)

    def lot_e8(self, symbol: str) -> int:
        """The smallest quantity an order on `symbol` can be: the venue's lot step."""
        return self.venue.filters.step_e8 if self.venue is not None else self.rules.step_e8

    def take_outbox(self) -> Outbox:
        out, self.out = self.out, Outbox()
        return out

    def cash_e8(self) -> int:
        return self.ledger.cash_e8

    def open_order_list(self) -> list[Order]:
        return list(self.open_orders.values())

    def orders_of(self, strategy_id: str) -> list[Order]:
        """A sleeve's open orders: what its strategy sees as `ctx.state.open_orders`."""
        return [o for o in self.open_orders.values() if o.strategy_id == strategy_id]
