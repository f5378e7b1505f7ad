"""BinanceRouter: router v2 (njord.ports.OrderRouter) over Binance spot REST, exactly once.

- Exactly once. Every send of a client order id is preceded by a lookup of it
  (`GET /api/v3/order?origClientOrderId=`): an order the venue holds is answered from
  there, whatever it did, and never sent again. An outcome the venue did not give (a
  timeout, a dropped connection, a 5xx, -1006/-1007, or "-2010 Duplicate order sent.") is
  resolved by the same lookup before anything else is sent for that order. "The venue
  never had it" (-2013) is believed only once `recvWindow` has passed since the last send
  (or since this router started, for an id it never sent): after that the venue refuses the
  request as too old, so it can no longer land. Nothing is ever resent blindly.
- Before a request: the order must already be on the symbol's step and tick and pass its
  filters; an order that does not is refused (`VENUE_FILTER`) without a request.
- Reports: FULL placement answers give the Ack and every fill; queries give the Ack, every
  fill from myTrades (by orderId, paged by fromId) and the closing report.
- Failures: retryable errors are tried again (a Retry-After waited by the client's
  limiter, others with exponential backoff and jitter); terminal ones and retries used up
  count toward `max_consecutive_failures`, after which `health.halted` says so.
- Clock: the offset to the venue's clock is measured at `start` (no measurement, no start)
  and every 10 minutes (`maintain`); beyond recvWindow / 2 it is an alert.
- exchangeInfo is read at `start` and every hour: the symbol's filters and the rate limits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import msgspec

from njord import killpoints
from njord.adapters import binance_reports as venue
from njord.adapters.binance import (
    Backoff,
    BinanceClient,
    Outcome,
    Throttled,
    VenueError,
    VenueUnreachable,
    classify,
)
from njord.core.book import BarE8
from njord.core.filters import Refusal, Shaped, SymbolFilters, check, exact_e8, parse_symbol
from njord.core.reports import Ack, Execution, Reject, Report, Unknown
from njord.errors import ConfigError, NjordError
from njord.reasons import Reason, VenueCode
from njord.records import Order, OrderType

EXCHANGE_INFO_EVERY_S = 3600.0
CLOCK_EVERY_S = 600.0
TRADES_PAGE = 1000
PRICE_TTL_S = 60.0

T = TypeVar("T")
VenueFailure = VenueError | VenueUnreachable


class VenueStartError(NjordError):
    """The venue could not be measured or described at start: the session does not start."""


class RouterHealth(msgspec.Struct, frozen=True, kw_only=True):
    clock_offset_ms: int | None  # venue clock minus ours, at the last measurement
    skew_alert: bool  # |offset| beyond recvWindow / 2, or the last measurement failed
    consecutive_failures: int
    halted: bool  # consecutive_failures reached max_consecutive_failures: halt, VENUE_FAILURES
    last_error: str


class BinanceRouter:
    remote = True

    def __init__(
        self,
        client: BinanceClient,
        *,
        symbol: str,
        max_consecutive_failures: int = 5,
        retries: int = 4,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.symbol = symbol
        self.max_consecutive_failures = max_consecutive_failures
        self.retries = retries
        self.backoff = backoff or Backoff()
        self.clock = clock
        self.rtt_ms: list[float] = []  # order_rtt_ms per order sent; the loop drains it
        self._filters: SymbolFilters | None = None
        self._offset_ms: int | None = None
        self._skew_alert = False
        self._failures = 0
        self._last_error = ""
        self._started = clock()
        self._sent_at: dict[str, float] = {}
        self._coids: dict[int, str] = {}
        self._reference_e8: int | None = None
        self._prices: dict[str, tuple[float, int]] = {}
        self._due_info = self._due_clock = float("inf")
        self._live_from_ms: int | None = None  # the first bar this router was shown
        self._bar_ms: int | None = None  # the bar shown last: where a kill point lands
        # Orders resting at the venue, by client order id, with the quantity it had executed
        # when last asked: `on_bar` asks again for those that filled since.
        self._resting: dict[str, int] = {}
        # Test-only, njord torture's mutation check (njord.wiring.carry_on sets it): the
        # lookup before a submit's first send is skipped, a blind resend.
        self.unguarded = False

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Measure the venue's clock, read its filters and, when the client has keys, make
        one signed read: VenueStartError if any fails (ConfigError for refused keys)."""
        try:
            # exchangeInfo first: it tells the client's limiter the venue's real limits
            # before any answer's used-weight header is measured against the defaults.
            self._read_exchange_info()
            self._measure_clock()
            if self.client.signs:
                self.balances()
        except (VenueError, VenueUnreachable) as e:
            if classify(e).code in (VenueCode.AUTH, VenueCode.BAD_SIGNATURE):
                raise ConfigError(
                    f"{self.client.base_url} refused the API key or secret ({e}); check "
                    "NJORD_BINANCE_API_KEY / NJORD_BINANCE_API_SECRET or venue.secrets_file"
                ) from e
            raise VenueStartError(
                f"cannot start against {self.client.base_url}: {e}; nothing was sent"
            ) from e
        if self._filters is None:
            raise VenueStartError(f"{self.client.base_url} does not list {self.symbol}")

    def maintain(self) -> None:
        """What is due: the clock every 10 minutes, exchangeInfo every hour. The loop calls
        it once a bar; a failure keeps the last values (and a failed clock is an alert)."""
        now = self.clock()
        if now >= self._due_clock:
            try:
                self._measure_clock()
            except (VenueError, VenueUnreachable) as e:
                self._skew_alert = True
                self._last_error = f"clock not measured: {e}"
                self._due_clock = now + CLOCK_EVERY_S
        if now >= self._due_info:
            try:
                self._read_exchange_info()
            except (VenueError, VenueUnreachable) as e:
                self._last_error = f"exchangeInfo not read: {e}"
                self._due_info = now + EXCHANGE_INFO_EVERY_S

    def _measure_clock(self) -> None:
        self._offset_ms = self._read(self.client.sync_time)
        self._skew_alert = abs(self._offset_ms) > self.client.recv_window_ms / 2
        self._due_clock = self.clock() + CLOCK_EVERY_S

    def _read_exchange_info(self) -> None:
        doc = self._read(
            lambda: self.client.public("GET", "/api/v3/exchangeInfo", {"symbol": self.symbol})
        )
        for entry in doc.get("symbols", []):
            if entry.get("symbol") == self.symbol:
                self._filters = parse_symbol(entry)
        limits = {
            (r["rateLimitType"], r["interval"], int(r["intervalNum"])): int(r["limit"])
            for r in doc.get("rateLimits", [])
        }
        self.client.limiter.set_limits(
            weight_1m=limits.get(("REQUEST_WEIGHT", "MINUTE", 1), 6000),
            orders_10s=limits.get(("ORDERS", "SECOND", 10), 100),
            orders_1d=limits.get(("ORDERS", "DAY", 1), 200_000),
        )
        self._due_info = self.clock() + EXCHANGE_INFO_EVERY_S

    @property
    def filters(self) -> SymbolFilters:
        if self._filters is None:
            raise NjordError("BinanceRouter.start() has not read the symbol's filters yet")
        return self._filters

    @property
    def health(self) -> RouterHealth:
        return RouterHealth(
            clock_offset_ms=self._offset_ms,
            skew_alert=self._skew_alert,
            consecutive_failures=self._failures,
            halted=self._failures >= self.max_consecutive_failures,
            last_error=self._last_error,
        )

    def drain_rtt_ms(self) -> list[float]:
        taken, self.rtt_ms = self.rtt_ms, []
        return taken

    # -- OrderRouter -----------------------------------------------------------------------

    def submit(self, order: Order) -> list[Report]:
        refused = self._refused(order)
        if refused is not None:
            return [refused]
        first_send: float | None = None
        coid = order.client_order_id
        sends = 0
        last: VenueFailure | None = None
        # An order decided at a bar this router has seen cannot have been sent by an
        # earlier process (it would have been committed, and rebuilt, not decided again):
        # "never had it" is believed at once, without waiting out recvWindow.
        fresh = self._live_from_ms is not None and order.created_ms >= self._live_from_ms
        while True:
            found = None
            if sends or not self.unguarded:
                found = self._lookup(coid, fresh=fresh and coid not in self._sent_at)
            known = None if found is None else found[0]
            if known is not None:
                if isinstance(known[0], Unknown):
                    self._failed(VenueCode.OUTCOME_UNKNOWN, known[0].detail)
                else:
                    self._rtt(first_send)
                return known
            if sends > self.retries:
                assert last is not None
                return [self._reject(coid, classify(last), last, "retries used up: ")]
            sends += 1
            self._sent_at[coid] = self.clock()
            first_send = first_send or self._sent_at[coid]
            try:
                body = self._write("POST", "/api/v3/order", self._order_params(order))
            except (VenueError, VenueUnreachable) as e:
                outcome = classify(e)
                if outcome.unknown:
                    last = e
                    continue  # resolved by the lookup at the top before anything is sent
                self._rtt(first_send)
                return [self._reject(coid, outcome, e)]
            # The venue executed it; the book has not heard.
            killpoints.reach("executed", self._bar_ms)
            self._succeeded()
            self._rtt(first_send)
            self._coids[int(body["orderId"])] = coid
            return self._answer(coid, body, list(body.get("fills", [])))

    def _rtt(self, first_send: float | None) -> None:
        """order_rtt_ms: the first send of this submit to the venue's answer about it."""
        if first_send is not None:
            self.rtt_ms.append((self.clock() - first_send) * 1000)

    def cancel(self, client_order_id: str) -> list[Report]:
        found = self._lookup(client_order_id)
        if found is None:
            return []  # never at the venue: nothing to cancel, nothing to report
        known, status = found
        if status not in venue.OPEN_STATUSES:
            return known  # closed already (or not known now): the same answer every time
        params = {"symbol": self.symbol, "origClientOrderId": client_order_id}
        try:
            body = self._write("DELETE", "/api/v3/order", params)
        except (VenueError, VenueUnreachable) as e:
            outcome = classify(e)
            if not outcome.unknown and outcome.code is not VenueCode.CANCEL_REJECTED:
                self._failed(outcome.code, str(e))
            return self.query(client_order_id) or []  # what became of it, either way
        self._succeeded()
        fills = self._fills_of(int(body["orderId"]), venue.executed_e8(body))
        return self._answer(client_order_id, body, fills)

    def query(self, client_order_id: str) -> list[Report] | None:
        """Everything the venue knows of the order, None when it never had it (-2013 after
        recvWindow has passed since it could last have been sent), or [Unknown] when the
        venue could not be asked."""
        found = self._lookup(client_order_id)
        return None if found is None else found[0]

    def _lookup(
        self, client_order_id: str, *, fresh: bool = False
    ) -> tuple[list[Report], str] | None:
        """The order's reports and venue status ("" when the venue could not be asked)."""
        params = {"symbol": self.symbol, "origClientOrderId": client_order_id}
        while True:
            try:
                view = self._get("/api/v3/order", params)
            except (VenueError, VenueUnreachable) as e:
                if not isinstance(e, VenueError) or e.code != -2013:
                    return self._unasked(client_order_id, e), ""
                settle_s = 0.0 if fresh else self._settle_s(client_order_id)
                if settle_s <= 0:
                    return None
                self.client.sleep(settle_s)
                continue
            order_id = int(view["orderId"])
            self._coids[order_id] = client_order_id
            try:
                fills = self._fills_of(order_id, venue.executed_e8(view))
            except (VenueError, VenueUnreachable) as e:  # a ban or a limit mid-lookup
                return self._unasked(client_order_id, e), ""
            return self._answer(client_order_id, view, fills), str(view["status"])

    def _fills_of(self, order_id: int, executed_e8: int) -> list[Mapping[str, Any]]:
        """The order's trades; read again (with backoff) while they add up to less than
        its executed quantity: the venue serves trades from a database that may lag."""
        fills: list[Mapping[str, Any]] = []
        for attempt in range(self.retries + 1):
            if executed_e8 == 0:
                return fills
            if attempt:
                self.backoff.failed()
            fills = self._trades(order_id)
            if sum(exact_e8(str(f["qty"])) for f in fills) >= executed_e8:
                self.backoff.succeeded()
                return fills
        self._last_error = f"order {order_id}: trades still short of its executed quantity"
        return fills  # the rest arrive through fills_since

    def open_orders(self) -> list[Report]:
        views = self._get("/api/v3/openOrders", {"symbol": self.symbol})
        out: list[Report] = []
        for view in sorted(views, key=lambda v: int(v["orderId"])):
            coid = str(view["clientOrderId"])
            self._coids[int(view["orderId"])] = coid
            out.append(
                Ack(
                    client_order_id=coid,
                    ts_ms=int(view["time"]),
                    venue_order_id=str(view["orderId"]),
                )
            )
        return out

    def fills_since(self, cursor: str) -> list[Execution]:
        """Every fill on the symbol with a trade id after `cursor` ("" = all), oldest first,
        whoever placed the order (its client order id says whose it is)."""
        from_id = int(cursor) + 1 if cursor else 0
        out: list[Execution] = []
        while True:
            params = {"symbol": self.symbol, "fromId": from_id, "limit": TRADES_PAGE}
            page = self._get("/api/v3/myTrades", params)
            for trade in page:
                coid = self._client_order_id(int(trade["orderId"]))
                out.append(self._execution(coid, trade))
            if len(page) < TRADES_PAGE:
                return out
            from_id = int(page[-1]["id"]) + 1

    def on_bar(self, bar: BarE8) -> list[Report]:
        """What the venue did to resting orders since the last bar: one `openOrders` read
        (weight 6) while any rest, then a lookup of each that closed or executed more."""
        self._reference_e8 = bar.close_e8  # the price a MARKET order's notional is checked at
        if self._live_from_ms is None:
            self._live_from_ms = bar.ts_ms
        self._bar_ms = bar.ts_ms
        if not self._resting:
            return []
        # One try per request: the next bar asks again, and a halt posted meanwhile must
        # not wait out retries and backoff before this bar's controls are read.
        retries, self.retries = self.retries, 0
        try:
            return self._resting_reports()
        finally:
            self.retries = retries

    def _resting_reports(self) -> list[Report]:
        try:
            views = self._get("/api/v3/openOrders", {"symbol": self.symbol})
        except (VenueError, VenueUnreachable) as e:
            # Asked again next bar; a reconciliation catches up on whatever is missed.
            self._last_error = f"openOrders: {e}"
            return []
        still = {str(v["clientOrderId"]): venue.executed_e8(v) for v in views}
        reports: list[Report] = []
        for coid, reported in list(self._resting.items()):
            if still.get(coid) == reported:
                continue
            # fresh: a -2013 is believed at once; waiting out recvWindow would hold the bar.
            found = self._lookup(coid, fresh=True)
            if found is None:
                # The venue no longer knows it (-2013): the next reconciliation settles what
                # the book holds of it (expired as never received).
                self._resting.pop(coid, None)
            elif found[1]:  # "": the venue could not be asked; again next bar
                reports += found[0]
        return reports

    def _answer(
        self, coid: str, view: Mapping[str, Any], fills: list[Mapping[str, Any]]
    ) -> list[Report]:
        """The order's reports, and whether `on_bar` keeps asking about it: while it rests,
        or while the trades read so far fall short of what it executed (the venue's trades
        database lags). Meanwhile the report that closed it (canceled, expired) is held
        back: the book would close the order without those fills, then refuse them."""
        reports = self._reports(coid, view, fills)
        reported = sum(exact_e8(str(f["qty"])) for f in fills)
        short = reported < venue.executed_e8(view)
        if str(view["status"]) in venue.OPEN_STATUSES or short:
            self._resting[coid] = reported
        else:
            self._resting.pop(coid, None)
        if short:
            reports = [r for r in reports if isinstance(r, Ack | Execution)]
        return reports

    def _unasked(self, coid: str, error: VenueFailure) -> list[Report]:
        """The venue could not be asked about the order: `on_bar` asks from the next bar."""
        self._resting.setdefault(coid, -1)
        return [self._unknown(coid, error)]

    # -- what reconciliation reads ---------------------------------------------------------

    def balances(self) -> dict[str, int]:
        """Each asset the account holds, free plus locked, in e8."""
        account = self._get("/api/v3/account", {"omitZeroBalances": "true"})
        return {
            str(b["asset"]): exact_e8(str(b["free"])) + exact_e8(str(b["locked"]))
            for b in account["balances"]
        }

    def last_trade_id(self) -> str:
        """The account's latest trade id on the symbol ("" if none): the cursor a new
        session starts from, so that what came before it is not taken for its own."""
        params = {"symbol": self.symbol, "limit": 1}
        page = self._get("/api/v3/myTrades", params)
        return str(page[-1]["id"]) if page else ""

    # -- requests --------------------------------------------------------------------------

    def _read(self, call: Callable[[], T]) -> T:
        """A read, retried on any retryable error (a read has no outcome to lose)."""
        return self._retried(call, write=False)

    def _get(self, path: str, params: Mapping[str, Any]) -> Any:
        return self._read(lambda: self.client.signed("GET", path, params))

    def _write(self, method: str, path: str, params: Mapping[str, Any]) -> Any:
        """A write, retried only when the venue surely did not act on it (a 429, a -1021);
        an unknown outcome is raised for the caller to resolve by lookup."""
        return self._retried(lambda: self.client.signed(method, path, params), write=True)

    def _retried(self, call: Callable[[], T], *, write: bool) -> T:
        attempt = 0
        while True:
            try:
                result = call()
            except (VenueError, VenueUnreachable) as e:
                outcome = classify(e)
                give_up = not outcome.retryable or (write and outcome.unknown)
                # A Throttled error is a wait longer than the client allows: retrying sooner
                # only asks again, so it ends the call (nothing was sent).
                if give_up or isinstance(e, Throttled) or attempt >= self.retries:
                    raise
                attempt += 1
                self._last_error = str(e)
                if outcome.code not in (VenueCode.RATE_LIMITED, VenueCode.IP_BANNED):
                    self.backoff.failed()  # a Retry-After is waited by the client's limiter
                continue
            self.backoff.succeeded()
            return result

    def _settle_s(self, client_order_id: str) -> float:
        sent = self._sent_at.get(client_order_id, self._started)
        return sent + self.client.recv_window_ms / 1000 - self.clock()

    # -- reports ---------------------------------------------------------------------------

    def _reports(
        self, coid: str, order: Mapping[str, Any], fills: list[Mapping[str, Any]]
    ) -> list[Report]:
        f = self.filters
        return venue.reports(
            coid, order, fills, base=f.base_asset, quote=f.quote_asset, price_of=self._price_of
        )

    def _execution(self, coid: str, trade: Mapping[str, Any]) -> Execution:
        f = self.filters
        return venue.execution(
            coid,
            trade,
            ts_ms=int(trade["time"]),
            base=f.base_asset,
            quote=f.quote_asset,
            price_of=self._price_of,
        )

    def _trades(self, order_id: int) -> list[Mapping[str, Any]]:
        out: list[Mapping[str, Any]] = []
        from_id = 0
        while True:
            params = {
                "symbol": self.symbol,
                "orderId": order_id,
                "fromId": from_id,
                "limit": TRADES_PAGE,
            }
            page = self._get("/api/v3/myTrades", params)
            out += page
            if len(page) < TRADES_PAGE:
                return out
            from_id = int(page[-1]["id"]) + 1

    def _client_order_id(self, order_id: int) -> str:
        """Whose order: its client order id, or `venue-order-<id>` for one the venue no
        longer shows (archived): never this session's, whatever it was."""
        coid = self._coids.get(order_id)
        if coid is None:
            params = {"symbol": self.symbol, "orderId": order_id}
            try:
                coid = str(self._get("/api/v3/order", params)["clientOrderId"])
            except VenueError as e:
                if e.code not in (-2013, -2026):
                    raise
                coid = f"venue-order-{order_id}"
            self._coids[order_id] = coid
        return coid

    def _price_of(self, asset: str) -> int:
        """A commission asset's last price in the quote asset (a minute's cache); 0, with
        the error kept in `health`, when the venue has no such pair or cannot be asked."""
        cached = self._prices.get(asset)
        if cached is not None and self.clock() - cached[0] < PRICE_TTL_S:
            return cached[1]
        pair = f"{asset}{self.filters.quote_asset}"
        try:
            doc = self._read(
                lambda: self.client.public("GET", "/api/v3/ticker/price", {"symbol": pair})
            )
        except (VenueError, VenueUnreachable) as e:
            self._last_error = f"commission in {asset} not priced ({pair}: {e})"
            return 0
        price = exact_e8(str(doc["price"]))
        self._prices[asset] = (self.clock(), price)
        return price

    # -- refusals and failures --------------------------------------------------------------

    def _refused(self, order: Order) -> Reject | None:
        """An order the venue would refuse, or one not already on the step and tick (the
        venue would then execute something else than what the book committed)."""
        if order.symbol != self.symbol:
            return self._filter_reject(order, {"filter": "SYMBOL", "symbol": order.symbol})
        f = self.filters
        reference = self._reference_e8
        if order.type is OrderType.MARKET and reference is None:
            f = msgspec.structs.replace(f, notional_filter="")  # the venue checks it
        verdict = check(
            f,
            side=order.side,
            kind=order.type,
            qty_e8=order.qty_e8,
            price_e8=order.limit_e8,
            reference_e8=reference or 0,
        )
        if isinstance(verdict, Refusal):
            return self._filter_reject(order, verdict.inputs)
        wanted = Shaped(qty_e8=order.qty_e8, price_e8=order.limit_e8)
        if order.type is OrderType.MARKET:
            wanted = Shaped(qty_e8=order.qty_e8, price_e8=None)
        if verdict != wanted:
            off = "LOT_SIZE" if verdict.qty_e8 != order.qty_e8 else "PRICE_FILTER"
            return self._filter_reject(order, {"filter": off, "bound": "stepSize/tickSize"})
        return None

    def _filter_reject(self, order: Order, inputs: Mapping[str, Any]) -> Reject:
        return Reject(
            client_order_id=order.client_order_id,
            ts_ms=self.client.now_ms(),
            reason=Reason.VENUE_FILTER.value,
            code=str(inputs.get("filter", "")),
        )

    def _reject(self, coid: str, outcome: Outcome, error: VenueFailure, prefix: str = "") -> Reject:
        self._failed(outcome.code, f"{prefix}{error}")
        code = str(error.code) if isinstance(error, VenueError) else ""
        return Reject(
            client_order_id=coid, ts_ms=self.client.now_ms(), reason=outcome.code.value, code=code
        )

    def _unknown(self, coid: str, error: VenueFailure) -> Unknown:
        return Unknown(client_order_id=coid, ts_ms=self.client.now_ms(), detail=str(error))

    def _failed(self, code: VenueCode, detail: str) -> None:
        self._failures += 1
        self._last_error = f"{code.value}: {detail}"

    def _succeeded(self) -> None:
        self._failures = 0

    def _order_params(self, order: Order) -> dict[str, Any]:
        params: dict[str, Any] = {
            "symbol": order.symbol,
            "side": order.side.value,
            "type": order.type.value,
            "quantity": venue.venue_text(order.qty_e8),
        }
        if order.type is OrderType.LIMIT:
            assert order.limit_e8 is not None
            params["timeInForce"] = "GTC"
            params["price"] = venue.venue_text(order.limit_e8)
        params["newClientOrderId"] = order.client_order_id
        params["newOrderRespType"] = "FULL"
        return params
