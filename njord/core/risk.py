"""Pre-trade risk rules (SPEC §9): a fixed order, first failure wins, stable reasons.

Order: trading state, symbol allow-list, notional cap, max open positions, daily loss
limit, order rate. `VENUE_FILTER` and `LIVE_MICRO_CAP` are checked by the live router.

An order that only shrinks a position (a sell no larger than the long, a buy no larger
than the short) skips the exposure rules (trading state, notional cap, open positions,
daily loss): they exist to stop risk being added, never to keep it on. The closing order
of a flatten also skips the order rate. docs/reasons.md has the same table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol

import msgspec

from njord.reasons import Reason, TradingState

# The rules a config can switch off per mode (the trading-state rule never is).
RuleName = Literal[
    "symbol_allowed", "notional_cap", "max_open_positions", "daily_loss_limit", "order_rate"
]


class RiskLimits(msgspec.Struct, frozen=True, kw_only=True):
    """The thresholds of one session in one mode, money in e8 units: built by the caller
    from its config (njord.config.risk_limits), so the core never reads config."""

    allowed_symbols: frozenset[str]
    notional_cap_e8: int
    max_open_positions: int
    daily_loss_limit_e8: int
    max_orders_per_minute: int
    off: frozenset[RuleName] = frozenset()  # switched off in this mode


class RiskInputs(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a rule may look at, recorded with the verdict."""

    state: TradingState
    symbol: str
    notional_e8: int
    reduces: bool  # the order only shrinks an existing position, never flips it
    opens_position: bool  # the symbol is flat now
    open_positions: int
    daily_realised_e8: int  # net of fees, this UTC day
    orders_last_minute: int
    flatten: bool = False  # the closing order of an operator's flatten


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    reason: Reason
    inputs: dict[str, Any]

    @property
    def allowed(self) -> bool:
        return self.reason is Reason.OK


Rule = Callable[[RiskInputs], Reason | None]


class RiskEngine(Protocol):
    """Pre-trade rules in a fixed order; the first failure wins and names its reason.
    Pure: the same inputs give the same verdict, which records the inputs it saw."""

    def check(self, inputs: RiskInputs) -> Verdict: ...

    def loss_breached(self, daily_realised_e8: int) -> bool: ...


class PreTradeRisk:
    """The RiskEngine: the pre-trade rules in their fixed order, with one session's limits."""

    def __init__(self, limits: RiskLimits) -> None:
        off = limits.off
        allowed = limits.allowed_symbols
        cap_e8 = limits.notional_cap_e8
        loss_e8 = limits.daily_loss_limit_e8
        # (switch, rule, also checked for an order that only reduces)
        rules: list[tuple[RuleName | None, Rule, bool]] = [
            (None, _state_rule, False),
            (
                "symbol_allowed",
                lambda i: None if i.symbol in allowed else Reason.SYMBOL_NOT_ALLOWED,
                True,
            ),
            (
                "notional_cap",
                lambda i: Reason.NOTIONAL_CAP if i.notional_e8 > cap_e8 else None,
                False,
            ),
            (
                "max_open_positions",
                lambda i: (
                    Reason.MAX_OPEN_POSITIONS
                    if i.opens_position and i.open_positions >= limits.max_open_positions
                    else None
                ),
                False,
            ),
            (
                "daily_loss_limit",
                lambda i: Reason.DAILY_LOSS_LIMIT if i.daily_realised_e8 <= -loss_e8 else None,
                False,
            ),
            (
                "order_rate",
                lambda i: (
                    Reason.ORDER_RATE_LIMIT
                    if i.orders_last_minute >= limits.max_orders_per_minute
                    else None
                ),
                True,
            ),
        ]
        on = [(name, rule, reducing) for name, rule, reducing in rules if name not in off]
        # One list per kind of order, chosen once per check: no exemption test per rule.
        self._adding = [rule for _, rule, _ in on]
        self._reducing = [rule for _, rule, reducing in on if reducing]
        self._flattening = [rule for name, rule, r in on if r and name != "order_rate"]
        self.daily_loss_limit_e8 = loss_e8 if "daily_loss_limit" not in off else None

    def check(self, inputs: RiskInputs) -> Verdict:
        recorded = msgspec.structs.asdict(inputs)
        if not inputs.reduces:
            rules = self._adding
        else:
            rules = self._flattening if inputs.flatten else self._reducing
        for rule in rules:
            reason = rule(inputs)
            if reason is not None:
                return Verdict(reason=reason, inputs=recorded)
        return Verdict(reason=Reason.OK, inputs=recorded)

    def loss_breached(self, daily_realised_e8: int) -> bool:
        limit = self.daily_loss_limit_e8
        return limit is not None and daily_realised_e8 <= -limit


def _state_rule(inputs: RiskInputs) -> Reason | None:
    """Only orders that add exposure reach it: reducing ones skip the state rule."""
    if inputs.state is TradingState.HALTED:
        return Reason.HALTED
    if inputs.state is TradingState.REDUCING:
        return Reason.REDUCE_ONLY
    return None
