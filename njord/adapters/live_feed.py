"""The live BarFeed: closed 1-minute klines polled over REST, each bar exactly once.

- Asks for `startTime = next expected bar`, so anything missed is backfilled by the next
  successful poll (klines paginate from startTime, up to 1,000 a page). A new session with
  no `data.start` begins at the venue's latest closed bar, never at the page before it.
- Emits only closed bars (closeTime before the venue's now), strictly increasing.
- Retries with exponential backoff and jitter; a Retry-After from the venue wins.
- When no bar arrives for longer than `stall_bars` minutes of venue time, logs a gap
  (once per episode); when the bars come back it logs how many were backfilled. Bars the
  venue skips for good (a later bar exists, the earlier never comes) are a gap event.
- Records `bars_lag` per bar: venue time at emission minus the bar's close.
- Never waits past the loop's deadline: `poll` returns None instead, and a backoff or the
  poll interval only moves the time of the next request. The request itself runs in a
  thread of its own, so a venue that stalls (up to the client's timeout) does not hold the
  loop: it services controls meanwhile, and the answer is taken at a later poll.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import pyarrow as pa

from njord.adapters.binance import Backoff, BinanceClient, VenueError, VenueUnreachable
from njord.core.time import MINUTE_MS
from njord.data.history import STORED_SCHEMA, BarBatch
from njord.data.qc import QcEvent, QcSummary, utc
from njord.manifest import DataSource

ERROR_BURST = 3  # consecutive failed polls that make an error-rate alert
Log = Callable[[str, str, dict[str, Any]], None]


class Limited(ABC):
    """A live feed that ends at `max_bars` bars handed out or at `deadline` (monotonic)."""

    max_bars: int | None
    deadline: float | None
    emitted: int
    finished: bool

    @abstractmethod
    def poll(self, deadline: float) -> BarBatch | None:
        """The next bar(s), or None when none came by `deadline`."""

    def batches(self) -> Iterator[BarBatch]:
        """Every bar until the feed ends, waiting as long as it takes (tests, tools)."""
        while not self.finished:
            batch = self.poll(float("inf"))
            if batch is not None:
                yield batch

    def _ended(self) -> bool:
        if self.max_bars is not None and self.emitted >= self.max_bars:
            return True
        return self.deadline is not None and time.monotonic() >= self.deadline


class LiveFeed(Limited):
    def __init__(
        self,
        client: BinanceClient,
        *,
        symbol: str,
        start_ms: int | None = None,
        max_bars: int | None = None,
        poll_s: float = 1.0,
        stall_bars: int = 3,
        skip_after_bars: int = 30,
        backoff: Backoff | None = None,
        deadline: float | None = None,
        connect_timeout_s: float | None = None,
        log: Log | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.symbol = symbol
        self.next_ms = start_ms
        self.max_bars = max_bars
        self.poll_s = poll_s
        self.stall_bars = stall_bars
        self.skip_after_bars = skip_after_bars
        # A backoff defers the next request; `poll` does the waiting, up to its deadline.
        self.backoff = backoff or Backoff(sleep=self._defer)
        self.deadline = deadline  # time.monotonic() after which the feed ends
        # A venue that has never answered: give up after this (a typo in venue.base_url);
        # None keeps retrying (a session that ran before: that is an outage).
        self.connect_timeout_s = connect_timeout_s
        self._answer_by: float | None = None
        self.log = log or (lambda level, msg, ctx: None)
        self.sleep = sleep
        self.summary = QcSummary(policy="live")
        self.lags_ms: list[int] = []
        self.emitted = 0
        self._events: list[QcEvent] = []
        self._stalled_since: int | None = None
        self._venue_now = 0
        self._ready: deque[BarBatch] = deque()
        self._not_before = 0.0  # time.monotonic() of the next request
        self._asked: _Request | None = None  # a klines request on its way
        self.finished = False

    @property
    def events(self) -> list[QcEvent]:
        return self._events

    @property
    def venue_now_ms(self) -> int:
        """The venue's clock at its last answer (0 before one)."""
        return self._venue_now

    def start_at(self, ms: int | None) -> None:
        """The first bar to ask for (None: the venue's latest)."""
        self.next_ms = ms

    def sources(self) -> list[DataSource]:
        return [
            DataSource(path=f"{self.client.base_url} klines {self.symbol}", sha256="live", rows=0)
        ]

    def poll(self, deadline: float) -> BarBatch | None:
        """The next closed bar, or None when none came by `deadline` (monotonic)."""
        while not self._ready:
            if self._ended():
                self.finished = True
                return None
            if self._asked is None:
                wait = self._not_before - time.monotonic()
                if wait > 0:
                    left = deadline - time.monotonic()
                    self.sleep(max(0.0, min(wait, left)))
                    if wait > left:
                        return None
                self._asked = self._ask()
            left = deadline - time.monotonic()
            if not self._asked.done.wait(None if left == float("inf") else max(0.0, left)):
                return None  # still on its way: the loop services controls meanwhile
            asked, self._asked = self._asked, None
            rows = self._answered(asked)
            if rows is not None:
                fresh = self._accept(rows)
                room = None if self.max_bars is None else self.max_bars - self.emitted
                self._ready.extend(self._emit(row) for row in fresh[:room])
                if not fresh:
                    self._watch_stall()
                    self._defer(self.poll_s)
            if not self._ready and time.monotonic() >= deadline:
                return None
        return self._ready.popleft()

    def _defer(self, seconds: float) -> None:
        self._not_before = time.monotonic() + seconds

    # -- polling --------------------------------------------------------------------------

    def _ask(self) -> _Request:
        params: dict[str, Any] = {"symbol": self.symbol, "interval": "1m", "limit": 1000}
        if self.next_ms is not None:
            params["startTime"] = self.next_ms
        if self.connect_timeout_s is not None and self._answer_by is None:
            self._answer_by = time.monotonic() + self.connect_timeout_s
        return _Request(self.client, params)

    def _answered(self, asked: _Request) -> list[list[Any]] | None:
        if asked.error is not None:
            self._failed(asked.error)
            return None
        self._venue_now, rows = asked.venue_now, asked.rows
        if self.backoff.failures >= ERROR_BURST:
            self.log("INFO", "klines polls succeed again", {"clear": "error_rate"})
        self.backoff.succeeded()
        self.connect_timeout_s = None  # it answered: from now on a failure is an outage
        return rows

    def _failed(self, error: VenueError | VenueUnreachable) -> None:
        retry_after = error.retry_after_s if isinstance(error, VenueError) else None
        if isinstance(error, VenueError) and not error.retryable:
            raise error
        failures = self.backoff.failures + 1
        left = None
        if self.connect_timeout_s is not None and self._answer_by is not None:
            left = self._answer_by - time.monotonic()
            if left <= 0:
                self._give_up(error, failures)
        wait = min(self.backoff.delay(retry_after), left if left is not None else float("inf"))
        # From the burst on, failures are errors: the error_rate alert and
        # telemetry.error_rate (ERROR records per bar) tell the same story.
        context: dict[str, Any] = {"failures": failures}
        if failures == ERROR_BURST:
            context["alert"] = "error_rate"
        level = "ERROR" if failures >= ERROR_BURST else "WARNING"
        self.log(level, f"klines poll failed ({error}); retrying in {wait:.2f}s", context)
        self.backoff.failed(retry_after, at_most=left)

    def _give_up(self, error: VenueError | VenueUnreachable, failures: int) -> NoReturn:
        timeout = f"{self.connect_timeout_s:g}s"
        message = (
            f"the venue at {self.client.base_url} never answered within "
            f"venue.connect_timeout_s = {timeout} ({failures - 1} polls failed, last: {error}); "
            "check venue.base_url"
        )
        self.log("ERROR", message, {"failures": failures, "alert": "error_rate"})
        raise VenueUnreachable(message)

    # -- bars -----------------------------------------------------------------------------

    def _accept(self, rows: list[list[Any]]) -> list[list[Any]]:
        now = self._venue_now
        if self.next_ms is None:
            # A new session with no data.start begins at the venue's latest closed bar. The
            # page before it is history: run as bars, a strategy traded 16 hours of it at
            # once, at old closes (paper) or at today's prices (live).
            rows = [row for row in rows if int(row[6]) < now][-1:]
        fresh = []
        for row in rows:
            open_ms, close_ms = int(row[0]), int(row[6])
            if close_ms >= now:
                break  # still forming
            if self.next_ms is not None and open_ms < self.next_ms:
                continue  # already emitted
            gap = self.next_ms is not None and open_ms > self.next_ms
            if gap and not self._give_up_on(self.next_ms or 0, open_ms, now):
                break  # hold later bars back until the gap fills or is given up
            fresh.append(row)
            self.next_ms = open_ms + MINUTE_MS
        return fresh

    def _give_up_on(self, first_missing: int, next_present: int, now: int) -> bool:
        """Missing minutes with later bars present: wait a while for a backfill, then skip."""
        if now - first_missing < self.skip_after_bars * MINUTE_MS:
            return False
        missing = (next_present - first_missing) // MINUTE_MS
        self._events.append(QcEvent("gap", first_missing, next_present - MINUTE_MS, missing))
        self._events.append(QcEvent("skipped", first_missing, next_present - MINUTE_MS, missing))
        self.summary.gaps += 1
        self.summary.missing_bars += missing
        self.log(
            "WARNING",
            f"gap: {missing} bars from {utc(first_missing)} never arrived",
            {"from_ms": first_missing, "bars": missing},
        )
        return True

    def _watch_stall(self) -> None:
        if self.next_ms is None:
            return
        now = self._venue_now
        overdue = (now - self.next_ms - MINUTE_MS) // MINUTE_MS
        if overdue >= self.stall_bars and self._stalled_since is None:
            self._stalled_since = self.next_ms
            self.log(
                "WARNING",
                f"gap: no bar since {utc(self.next_ms - MINUTE_MS)} "
                f"({overdue} overdue); backfilling when klines return",
                {"from_ms": self.next_ms, "overdue": overdue, "alert": "bar_gap"},
            )

    def _emit(self, row: list[Any]) -> BarBatch:
        open_ms = int(row[0])
        if self._stalled_since is not None:
            self.log(
                "INFO",
                f"klines are back: backfilling from {utc(self._stalled_since)}",
                {"from_ms": self._stalled_since, "clear": "bar_gap"},
            )
            self._stalled_since = None
        lag = self._venue_now - (int(row[6]) + 1)
        self.lags_ms.append(lag)
        self.emitted += 1
        self.summary.bars_in += 1
        self.summary.bars_out += 1
        batch = pa.RecordBatch.from_pylist(
            [
                {
                    "ts_ms": open_ms,
                    "open": float(row[1]),
                    "high": float(row[2]),
                    "low": float(row[3]),
                    "close": float(row[4]),
                    "volume": float(row[5]),
                    "synthetic": False,
                }
            ],
            schema=STORED_SCHEMA,
        )
        return BarBatch(batch, lag_ms=lag)


class _Request:
    """One klines request in a thread of its own (a daemon: a stalled request never holds
    the process at exit). The market's time is read just before the klines are asked for:
    what is closed, how late, how long a stall. Read after, it could be past the close of a
    bar the answer showed still forming, and that bar would pass as closed."""

    def __init__(self, client: BinanceClient, params: dict[str, Any]) -> None:
        self.done = threading.Event()
        self.venue_now = 0
        self.rows: list[list[Any]] = []
        self.error: VenueError | VenueUnreachable | None = None
        threading.Thread(
            target=self._run, args=(client, params), name="njord-klines", daemon=True
        ).start()

    def _run(self, client: BinanceClient, params: dict[str, Any]) -> None:
        try:
            self.venue_now = client.market_now_ms()
            self.rows = client.public("GET", "/api/v3/klines", params)
        except (VenueError, VenueUnreachable) as e:
            self.error = e
        finally:
            self.done.set()
