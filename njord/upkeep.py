"""A live session's venue between bars (SPEC §11): what the loop asks of it once a bar.

- The router's clock offset and exchangeInfo are kept fresh (`BinanceRouter.maintain`),
  and the book shapes its orders to the filters read last (`Book.venue`).
- The router's health becomes alert episodes: `clock_skew` while the offset is beyond
  recvWindow / 2 (or cannot be measured), `venue_failures` once
  `venue.max_consecutive_failures` calls failed in a row, which also halts the session
  (reason `VENUE_FAILURES` with the last error, shown by status and the TUI).
- Reconciliation (njord/reconcile.py asks the venue, njord/core/reconcile.py matches) at
  start, before the first new bar, and every `venue.reconcile_every_bars`: missed fills and
  the real outcome of orders the venue no longer lists open are applied to the book; what
  cannot be explained is an external event, and `venue.on_mismatch` either halts
  (`venue_mismatch` alert; the session stays halted while it persists) or adopts the
  venue's balances as the new baseline.

Network calls are made with no write transaction open; what they found is then applied and
recorded in one transaction.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from njord import reconcile
from njord.adapters.binance import VenueError, VenueUnreachable
from njord.adapters.binance_router import BinanceRouter
from njord.config import VenueConfig
from njord.core.book import Book, VenueRules
from njord.core.reconcile import BookView, Reconciliation, expected_after
from njord.core.reports import Report
from njord.reasons import Reason, TradingState
from njord.store import db, external
from njord.store.session import SessionWriter

Apply = Callable[[list[Report]], None]  # the loop applies reports in an open transaction


class VenueUpkeep:
    def __init__(
        self, router: BinanceRouter, *, book: Book, writer: SessionWriter, venue: VenueConfig
    ) -> None:
        self.router = router
        self.book = book
        self.writer = writer
        self.venue = venue
        self._skewed = False
        self._failing = False
        self._mismatch = False
        self._due = False  # a reconciliation the venue could not be read for
        self.shape()

    def shape(self) -> None:
        rules = VenueRules(
            filters=self.router.filters,
            tiny=self.venue.tiny,
            tiny_allow_min_notional=self.venue.tiny_allow_min_notional,
        )
        if rules != self.book.venue:
            self.book.venue = rules

    def between_bars(self, bars: int, apply: Apply) -> None:
        """After a bar committed: the router's upkeep and health, and a reconciliation when
        one is due."""
        self.router.maintain()
        self.shape()
        self._watch_health()
        if self._due or bars % self.venue.reconcile_every_bars == 0:
            try:
                self.reconcile(apply)
                self._due = False
                return
            except (VenueError, VenueUnreachable) as e:
                # The venue could not be read: nothing was applied; try again next bar.
                self._due = True
                self.writer.log.warning("venue", f"reconciliation not done, retried: {e}")
        if self.writer.log.pending:
            self.writer.ensure_transaction()
            self.writer.commit(self.book)

    def start(self, apply: Apply) -> None:
        """Before the first new bar: reconcile, or, when the venue cannot be read, start
        halted rather than trade on a guess."""
        try:
            self.reconcile(apply)
        except (VenueError, VenueUnreachable) as e:
            self.writer.log.error(
                "venue", f"cannot reconcile at start: {e}", alert="venue_failures"
            )
            self._failing = True
            self._halt(f"{Reason.VENUE_FAILURES.value}: cannot reconcile at start: {e}")
            self.writer.ensure_transaction()
            self.writer.commit(self.book)

    def reconcile(self, apply: Apply) -> Reconciliation:
        conn = self.writer.conn
        view, cursor = book_view(conn, self.router)
        result = reconcile.run(self.router, view, cursor=cursor, policy=self.venue.on_mismatch)
        rec = result.reconciliation
        writer = self.writer
        writer.ensure_transaction()
        apply([f for f in rec.missed if f.client_order_id in self.book.open_orders])
        for reports in result.closed.values():
            apply(reports)
        external.record(
            conn,
            rec,
            result.venue,
            symbol=self.router.symbol,
            bar_ts_ms=self.book.last_bar_ms,
            queried=len(rec.to_query),
            action=result.action,
            policy=self.venue.on_mismatch,
        )
        self._act(rec, result.action)
        writer.commit(self.book)
        return rec

    def _act(self, rec: Reconciliation, action: str) -> None:
        log = self.writer.log
        events = "; ".join(
            f"{e.kind} {e.subject}: venue {e.venue_value}, book {e.book_value}"
            for e in rec.external
        )
        if action == "halt":
            if not self._mismatch:
                log.error(
                    "venue",
                    f"reconciliation: the venue differs from the book: {events}",
                    alert="venue_mismatch",
                )
            self._mismatch = True
            self._halt(f"{Reason.VENUE_MISMATCH.value}: {events}")
            return
        if action == "adopt":
            log.warning("venue", f"reconciliation adopted the venue's balances: {events}")
        if self._mismatch:
            self._mismatch = False
            log.info("venue", "reconciliation: book and venue agree", clear="venue_mismatch")

    def _watch_health(self) -> None:
        health = self.router.health
        log = self.writer.log
        if health.skew_alert and not self._skewed:
            log.warning(
                "venue",
                f"clock skew: venue minus ours {health.clock_offset_ms} ms, beyond "
                f"recvWindow/2 ({self.router.client.recv_window_ms // 2} ms) or not measured",
                alert="clock_skew",
            )
        elif self._skewed and not health.skew_alert:
            log.info("venue", "clock skew back within recvWindow/2", clear="clock_skew")
        self._skewed = health.skew_alert
        if health.halted and not self._failing:
            log.error(
                "venue",
                f"{health.consecutive_failures} venue calls failed in a row: {health.last_error}",
                alert="venue_failures",
            )
            self._halt(f"{Reason.VENUE_FAILURES.value}: {health.last_error}")
        elif self._failing and not health.halted:
            log.info("venue", "the venue answers again", clear="venue_failures")
        self._failing = health.halted

    def _halt(self, reason: str) -> None:
        if self.book.state is TradingState.HALTED:
            return
        writer = self.writer
        writer.ensure_transaction()
        writer.post_control(
            "halt", reason, wall_ms=time.time_ns() // 1_000_000, by=f"njord@{socket.gethostname()}"
        )


def book_view(conn: db.Connection, router: BinanceRouter) -> tuple[BookView, str]:
    """What the session's db says it holds, and the trade id to read the venue's fills
    after: from the last accepted reconciliation's balances moved by every fill since, or,
    never reconciled, from the venue's balances and last trade now."""
    base = external.baseline(conn)
    if base is None:
        cursor = router.last_trade_id()
        return _view(conn, router, router.balances(), cursor), cursor
    return _view(conn, router, base.balances_e8, base.cursor), base.cursor


def _view(
    conn: db.Connection, router: BinanceRouter, balances_e8: dict[str, int], cursor: str
) -> BookView:
    f = router.filters
    return BookView(
        symbol=router.symbol,
        base_asset=f.base_asset,
        quote_asset=f.quote_asset,
        orders=external.own_orders(conn),
        applied_trade_ids=external.applied_trade_ids(conn),
        expected_e8=expected_after(
            balances_e8,
            external.fills_after(conn, cursor, base=f.base_asset, quote=f.quote_asset),
            base=f.base_asset,
            quote=f.quote_asset,
        ),
    )
