"""The EventBus port and the domain events a session publishes.

Contract (tested in tests/contract/test_events.py):

- Events are published only after the transaction that made them durable has committed, in
  the order they were made; a rolled-back bar publishes nothing.
- Every subscriber receives every event once, in publish order; subscribers are called in
  the order they subscribed, synchronously, on the loop's thread.
- A subscriber that raises is detached and reported through `on_error`; the bar, the other
  subscribers and later events are unaffected.
- With no subscriber nothing is staged, so a backtest pays nothing for the bus.

Delivery is deterministic in backtest: it follows commits, which follow bars.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import msgspec

from njord.reasons import TradingState


class _Event(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    pass


class SessionStarted(_Event, frozen=True, kw_only=True):
    run_id: str
    mode: str


class SessionStopped(_Event, frozen=True, kw_only=True):
    run_id: str
    status: str  # stopped | finished | failed


class BarsCommitted(_Event, frozen=True, kw_only=True):
    """One commit: `bars` bars closed and durable (one in paper/live, a batch in backtest)."""

    first_ts_ms: int
    last_ts_ms: int
    bars: int
    equity_e8: int


class Decided(_Event, frozen=True, kw_only=True):
    """An intent and its risk verdict."""

    intent_id: int
    bar_ts_ms: int
    symbol: str
    side: str
    qty_e8: int
    allowed: bool
    reason: str | None
    client_order_id: str | None


class OrderReport(_Event, frozen=True, kw_only=True):
    client_order_id: str
    ts_ms: int
    status: str
    detail: str


class Filled(_Event, frozen=True, kw_only=True):
    fill_id: int
    client_order_id: str
    ts_ms: int
    symbol: str
    side: str
    qty_e8: int
    price_e8: int
    fee_e8: int


class TradingStateChanged(_Event, frozen=True, kw_only=True):
    ts_ms: int
    from_state: TradingState
    to_state: TradingState
    by: str
    reason: str


class ControlApplied(_Event, frozen=True, kw_only=True):
    seq: int
    command: str
    bar_ts_ms: int
    by: str
    reason: str


class AlertRaised(_Event, frozen=True, kw_only=True):
    kind: str
    ts_ms: int
    msg: str


class AlertCleared(_Event, frozen=True, kw_only=True):
    kind: str
    ts_ms: int


Event = (
    SessionStarted
    | SessionStopped
    | BarsCommitted
    | Decided
    | OrderReport
    | Filled
    | TradingStateChanged
    | ControlApplied
    | AlertRaised
    | AlertCleared
)
Subscriber = Callable[[Event], None]


class EventBus(Protocol):
    @property
    def active(self) -> bool:
        """Whether anyone listens: producers skip building events when nobody does."""

    def subscribe(self, subscriber: Subscriber) -> None: ...

    def publish(self, events: Sequence[Event]) -> None:
        """Called after the commit that made `events` durable, never before."""


class Bus:
    """The in-process, synchronous EventBus."""

    def __init__(self, on_error: Callable[[str], None]) -> None:
        self._subscribers: list[Subscriber] = []
        self._on_error = on_error

    @property
    def active(self) -> bool:
        return bool(self._subscribers)

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def publish(self, events: Sequence[Event]) -> None:
        for event in events:
            for subscriber in list(self._subscribers):
                try:
                    subscriber(event)
                except Exception as e:
                    self._subscribers.remove(subscriber)
                    name = getattr(subscriber, "__qualname__", type(subscriber).__name__)
                    self._on_error(
                        f"event subscriber {name} raised on {type(event).__name__} and was "
                        f"detached: {e!r}"
                    )
