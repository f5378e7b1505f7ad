"""Pre-trade risk rules (SPEC §9): a fixed order, first failure wins, stable reasons.

Order: trading state, symbol allow-list, notional cap, max open positions, daily loss
limit, order rate. `VENUE_FILTER` and `LIVE_MICRO_CAP` are checked by the live router.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import msgspec

from njord.config import RiskConfig, RuleName
from njord.core.money import to_e8
from njord.reasons import Reason, TradingState


class RiskInputs(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a rule may look at, recorded with the verdict."""

    state: TradingState
    symbol: str
    notional_e8: int
    reduces: bool  # the order only shrinks an existing position
    opens_position: bool  # the symbol is flat now
    open_positions: int
    daily_realised_e8: int  # net of fees, this UTC day
    orders_last_minute: int


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


class Rules:
    """The RiskEngine: rules and thresholds from config, each switchable per mode."""

    def __init__(self, config: RiskConfig, *, mode: str) -> None:
        off: set[RuleName] = set(config.rules_off.get(mode, []))
        allowed = frozenset(config.allowed_symbols)
        cap_e8 = to_e8(config.notional_cap)
        loss_e8 = to_e8(config.daily_loss_limit)
        rules: list[tuple[RuleName | None, Rule]] = [
            (None, _state_rule),
            (
                "symbol_allowed",
                lambda i: None if i.symbol in allowed else Reason.SYMBOL_NOT_ALLOWED,
            ),
            ("notional_cap", lambda i: Reason.NOTIONAL_CAP if i.notional_e8 > cap_e8 else None),
            (
                "max_open_positions",
                lambda i: (
                    Reason.MAX_OPEN_POSITIONS
                    if i.opens_position and i.open_positions >= config.max_open_positions
                    else None
                ),
            ),
            (
                "daily_loss_limit",
                lambda i: (
                    Reason.DAILY_LOSS_LIMIT
                    if not i.reduces and i.daily_realised_e8 <= -loss_e8
                    else None
                ),
            ),
            (
                "order_rate",
                lambda i: (
                    Reason.ORDER_RATE_LIMIT
                    if i.orders_last_minute >= config.max_orders_per_minute
                    else None
                ),
            ),
        ]
        self._rules = [rule for name, rule in rules if name not in off]
        self.daily_loss_limit_e8 = loss_e8 if "daily_loss_limit" not in off else None

    def check(self, inputs: RiskInputs) -> Verdict:
        recorded = msgspec.structs.asdict(inputs)
        for rule in self._rules:
            reason = rule(inputs)
            if reason is not None:
                return Verdict(reason=reason, inputs=recorded)
        return Verdict(reason=Reason.OK, inputs=recorded)

    def loss_breached(self, daily_realised_e8: int) -> bool:
        limit = self.daily_loss_limit_e8
        return limit is not None and daily_realised_e8 <= -limit


def _state_rule(inputs: RiskInputs) -> Reason | None:
    if inputs.state is TradingState.HALTED:
        return Reason.HALTED
    if inputs.state is TradingState.REDUCING and not inputs.reduces:
        return Reason.REDUCE_ONLY
    return None
