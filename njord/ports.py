"""The ports: what the bar loop needs from the world, as typed Protocols.

Modes differ only in the adapters plugged into these (SPEC §4); `njord/wiring.py` is the
one place that chooses them. Each docstring is the contract every adapter must keep;
tests/contract/ runs the same checks against every adapter of a port.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from njord.core.book import BarE8, BookState
from njord.core.reports import Execution, Report
from njord.core.risk import RiskEngine
from njord.data.qc import QcEvent, QcSummary
from njord.manifest import Manifest
from njord.records import Order
from njord.secrets import Secret

if TYPE_CHECKING:  # a type only: the ports import no adapter module
    from njord.data.history import BarBatch

__all__ = [
    "CONTRACT_ADAPTERS",
    "BarFeed",
    "OrderRouter",
    "Pacer",
    "PortfolioStore",
    "RiskEngine",
    "RunManifestStore",
    "SecretsProvider",
    "SnapshotStore",
    "Telemetry",
]


# Adapters `njord contract-tests --adapter` can check (njord/contract.py runs them).
CONTRACT_ADAPTERS = ("history", "live-feed", "paper")


class Pacer(Protocol):
    """When the loop may take its next bar, and how it commits.

    Backtests are not paced: bars go as fast as the feed gives them, and the phases of
    `commit_every` bars share one transaction. Paced sessions (shadow, paper, live, a
    slowed backtest) commit at every phase boundary, so decisions are durable before any
    order is sent and other processes (controls, the TUI) write and read between bars.
    A pacer never reads the session's time: bars carry it.
    """

    paced: bool

    def next_bar_at(self) -> float:
        """`time.monotonic()` at which the next bar may be processed (0: at once)."""
        ...


class OrderRouter(Protocol):
    """Router v2: takes orders to a venue (or a simulation of one) and answers with reports
    (njord.core.reports); it never touches the book. The loop calls it with no write
    transaction held, after the order is durable as NEW.

    - `submit(order)`: what the venue answered (an `Ack`, `Execution`s, or a `Reject`), or
      `[Unknown]` when the outcome is not known (timeout, dropped connection, 5xx). It never
      raises for a venue refusal. Submitting a client order id the venue already holds
      executes nothing again: it answers what `query` would.
    - `cancel(client_order_id)`: `[Canceled]` if it was open; for an order already filled,
      canceled or unknown to the venue it is a no-op answering the order's final reports.
    - `query(client_order_id)`: everything the venue knows of the order (its `Ack`, every
      `Execution`, its terminal report), or None when the venue never received it: the one
      safe ground for sending it (again).
    - `open_orders()`: an `Ack` per order open at the venue.
    - `fills_since(cursor)`: executions with a trade id after `cursor` ("" = all), oldest
      first.
    - `on_bar(bar)`: for venues in this process, what the bar did to resting orders (limit
      fills, a market order deferred to the next open); remote venues answer [] and report
      through `query`/`fills_since`.
    - `remote`: True when the venue is another process (its calls may be slow or fail).
    """

    remote: bool

    def submit(self, order: Order) -> list[Report]: ...

    def cancel(self, client_order_id: str) -> list[Report]: ...

    def query(self, client_order_id: str) -> list[Report] | None: ...

    def open_orders(self) -> list[Report]: ...

    def fills_since(self, cursor: str) -> list[Execution]: ...

    def on_bar(self, bar: BarE8) -> list[Report]: ...


class VenueUpkeep(Protocol):
    """A live venue's care between bars (njord.upkeep): the loop calls `between_bars` after
    a bar committed, with no transaction open, once a bar. It may ask the venue, then apply
    what it found through `apply` (reports into the book, in a transaction it commits), post
    a halt, and log alerts."""

    def between_bars(self, bars: int, apply: Callable[[list[Report]], None]) -> None: ...


class BarFeed(Protocol):
    """Closed bars in strictly increasing time order, UTC, each exactly once, checked by
    quality control; what QC found (gaps and what the policy did) is in `events`. Batches
    are bounded: a feed never holds the whole history in memory.

    `poll(deadline)` returns the next batch, or None when none came by `deadline` (a
    `time.monotonic()` value): it never waits past it and never calls back into the loop,
    which services controls between polls. `finished` is True once no bar will come."""

    finished: bool

    @property
    def events(self) -> list[QcEvent]: ...

    @property
    def summary(self) -> QcSummary: ...

    def poll(self, deadline: float) -> BarBatch | None: ...


class SnapshotStore(Protocol):
    """Whole-book snapshots. `load(save(state))` equals `state`, and saving it again
    gives the same bytes: a restored session is indistinguishable from the original."""

    def save(self, state: BookState, *, bar_ts_ms: int, decision_seq: int) -> int: ...

    def load(self, snapshot_id: int) -> BookState: ...

    def decision_seq(self, snapshot_id: int) -> int:
        """The last decision-log record the snapshot includes: a replay goes on after it."""
        ...

    def ids(self) -> list[int]: ...


class PortfolioStore(Protocol):
    """The book as of the last committed bar (account, positions, lots, risk state,
    trading state), written inside the bar's transaction and read back field by field."""

    def save(self, state: BookState, *, symbols: tuple[str, ...]) -> None: ...

    def load(self) -> dict[str, Any]: ...

    def differences(self, state: BookState) -> list[str]:
        """Where `state` differs from what was saved, field by field ([]: nowhere)."""
        ...


class RunManifestStore(Protocol):
    """One manifest per session: written once at creation, then only its status changes."""

    def create(self, manifest: Manifest) -> None: ...

    def load(self) -> Manifest | None: ...

    def status(self, run_id: str) -> str: ...

    def set_status(self, run_id: str, status: str, *, ended_ms: int | None) -> None: ...


class Telemetry(Protocol):
    """Named measurements per bar (latencies in ms, counters, P&L), committed with the bar
    they describe. Shadow and paper sessions record them; status reports percentiles."""

    def add_metric(self, bar_ts_ms: int, name: str, value: float) -> None: ...


class SecretsProvider(Protocol):
    """Secrets by name, wrapped so that no str, repr, log or encoding shows the value."""

    def get(self, name: str) -> Secret | None: ...
