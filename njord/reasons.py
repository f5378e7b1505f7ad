"""Stable reason codes. Add, never rename: they are stored in every session db.

docs/reasons.md and the CHECK-free `reason` columns document them; a test keeps the
enum and the doc in step.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    OK = "OK"
    HALTED = "HALTED"
    REDUCE_ONLY = "REDUCE_ONLY"
    SYMBOL_NOT_ALLOWED = "SYMBOL_NOT_ALLOWED"
    NOTIONAL_CAP = "NOTIONAL_CAP"
    MAX_OPEN_POSITIONS = "MAX_OPEN_POSITIONS"
    DAILY_LOSS_LIMIT = "DAILY_LOSS_LIMIT"
    ORDER_RATE_LIMIT = "ORDER_RATE_LIMIT"
    VENUE_FILTER = "VENUE_FILTER"
    LIVE_MICRO_CAP = "LIVE_MICRO_CAP"
    BELOW_MIN_NOTIONAL = "BELOW_MIN_NOTIONAL"
    INSUFFICIENT_CASH = "INSUFFICIENT_CASH"
    SHORT_NOT_ALLOWED = "SHORT_NOT_ALLOWED"
    ZERO_QUANTITY = "ZERO_QUANTITY"
    CANCELED_BY_STRATEGY = "CANCELED_BY_STRATEGY"
    CANCELED_BY_OPERATOR = "CANCELED_BY_OPERATOR"


class TradingState(StrEnum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"
