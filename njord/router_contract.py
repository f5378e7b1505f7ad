"""The OrderRouter (v2) contract as named checks over a venue harness.

A harness is a router plus what a check needs to see the venue's side: how many orders
the venue holds under a client order id, which requests reached it and when, its market
price, and a way to move its market on. `tests/contract/test_router_contract.py` runs every
check against every harness factory; `njord contract-tests --adapter binance` runs them
too (against an in-process simulator, or with `--venue URL` against a running venue, where
the checks that need injected faults are left out).

A check that needs faults names them; a factory that cannot inject them answers None. A
check that needs more of the router (`needs`, e.g. "venue_filters": it refuses what the
venue would) runs only on a harness whose `can` says so.
"""

from __future__ import annotations

import itertools
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Protocol

import msgspec
import requests

from njord.adapters.binance import Backoff, BinanceClient
from njord.adapters.binance_router import BinanceRouter
from njord.adapters.sim_router import PaperBroker, SimRouter
from njord.core.book import BarE8
from njord.core.execution import CostModel, SymbolRules
from njord.core.filters import exact_e8, floor_to
from njord.core.money import E8
from njord.core.reports import Ack, Canceled, Execution, Reject, Report
from njord.core.time import MINUTE_MS
from njord.ports import OrderRouter
from njord.reasons import Reason, VenueCode
from njord.records import Order, OrderStatus, OrderType, Side
from njord.secrets import Secret
from njord.sim.faults import Fault, FaultConfig

ORDER_ROUTE = "POST /api/v3/order"
QUERY_ROUTE = "GET /api/v3/order"


class Harness(Protocol):
    @property
    def router(self) -> OrderRouter: ...

    @property
    def symbol(self) -> str: ...

    @property
    def tick_e8(self) -> int: ...

    @property
    def can(self) -> frozenset[str]:
        """What the router does beyond the port's contract ("venue_filters")."""

    def placed(self, client_order_id: str) -> int:
        """How many orders the venue holds (open or closed) under this client order id."""

    def requests(self) -> list[tuple[float, str]]:
        """(time.monotonic(), "METHOD /path") of every request the venue received."""

    def price_e8(self) -> int:
        """The venue's last price; the router has seen it as the latest bar's close."""

    def advance(self, minutes: int) -> None:
        """Move the venue's market on (resting orders may fill)."""


Factory = Callable[[FaultConfig | None], AbstractContextManager[Harness] | None]
Result = tuple[bool, str]


class RouterCheck(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    run: Callable[[Harness], Result]
    faults: FaultConfig | None = None
    needs: frozenset[str] = frozenset()


# -- harnesses ------------------------------------------------------------------------------


class BinanceHarness:
    """BinanceRouter on a venue reached over HTTP: the simulator in this process (whose
    own books and request log are read), or any venue at a URL (seen through the client)."""

    def __init__(self, router: BinanceRouter, *, server: Any = None) -> None:
        self.binance = router
        self.server = server
        self.sent: list[tuple[float, str]] = []
        self.binance.on_bar(BarE8(0, 0, 0, 0, self.price_e8()))

    @property
    def router(self) -> OrderRouter:
        return self.binance

    @property
    def symbol(self) -> str:
        return self.binance.symbol

    @property
    def tick_e8(self) -> int:
        return self.binance.filters.tick_e8

    @property
    def can(self) -> frozenset[str]:
        return frozenset({"venue_filters"})

    def placed(self, client_order_id: str) -> int:
        if self.server is not None:
            orders = list(self.server.state.exchange.orders.values())
            return sum(o.client_order_id == client_order_id for o in orders)
        # A remote venue: the orders behind its latest trades, and a resting one
        client, symbol = self.binance.client, self.symbol
        trades = client.signed("GET", "/api/v3/myTrades", {"symbol": symbol, "limit": 1000})
        views = [
            client.signed("GET", "/api/v3/order", {"symbol": symbol, "orderId": order_id})
            for order_id in sorted({int(t["orderId"]) for t in trades})
        ]
        count = sum(v["clientOrderId"] == client_order_id for v in views)
        return count or int(self.binance.query(client_order_id) is not None)

    def requests(self) -> list[tuple[float, str]]:
        if self.server is None:
            return list(self.sent)
        with self.server.state.lock:
            times = {k: list(v) for k, v in self.server.state.request_times.items()}
        return sorted((t, route) for route, ts in times.items() for t in ts)

    def price_e8(self) -> int:
        doc = self.binance.client.public("GET", "/api/v3/ticker/price", {"symbol": self.symbol})
        return exact_e8(str(doc["price"]))

    def advance(self, minutes: int) -> None:
        if self.server is None:
            time.sleep(60 * minutes)  # a real venue's market moves on its own
        else:
            self.server.state.exchange.clock.advance(minutes)
        self.binance.on_bar(BarE8(0, 0, 0, 0, self.price_e8()))


class MatcherHarness:
    """An in-process venue: the sim matcher of backtests and shadow, or the paper broker
    (its journal in a fresh db). No network, so no faults and no request log: the checks
    that need them are skipped; the market moves a bar per minute asked for."""

    def __init__(self, router: SimRouter) -> None:
        self.matcher = router
        self.bar = BarE8(0, MARKET_E8, MARKET_E8, MARKET_E8, MARKET_E8)
        router.on_bar(self.bar)

    @property
    def router(self) -> OrderRouter:
        return self.matcher

    @property
    def symbol(self) -> str:
        return "BTCUSDT"

    @property
    def tick_e8(self) -> int:
        return E8 // 100

    @property
    def can(self) -> frozenset[str]:
        return frozenset()

    def placed(self, client_order_id: str) -> int:
        return int(self.matcher.query(client_order_id) is not None)

    def requests(self) -> list[tuple[float, str]]:
        return []

    def price_e8(self) -> int:
        return self.bar.close_e8

    def advance(self, minutes: int) -> None:
        for _ in range(minutes):
            ts, price = self.bar.ts_ms + MINUTE_MS, self.bar.close_e8
            self.bar = BarE8(ts, price, price + E8, price - E8, price)
            self.matcher.on_bar(self.bar)


MARKET_E8 = 42_000 * E8


@contextmanager
def sim_matcher(faults: FaultConfig | None) -> Iterator[MatcherHarness]:
    yield MatcherHarness(SimRouter(CostModel(commission_bps=Decimal(10)), SymbolRules()))


@contextmanager
def paper_broker(faults: FaultConfig | None) -> Iterator[MatcherHarness]:
    from njord.store import db
    from njord.store.venue import PaperJournal

    with tempfile.TemporaryDirectory(prefix="njord-contract-") as tmp:
        conn = db.open_writer(Path(tmp) / "paper.db", create=True, synchronous="NORMAL")
        try:
            journal = PaperJournal(conn)
            yield MatcherHarness(
                PaperBroker(CostModel(commission_bps=Decimal(10)), SymbolRules(), journal)
            )
        finally:
            conn.close()


def in_process(make: Callable[[FaultConfig | None], AbstractContextManager[Harness]]) -> Factory:
    """A factory for an in-process venue: it cannot inject network faults (None then)."""
    return lambda faults: None if faults is not None else make(faults)


class _CountingSession(requests.Session):
    """Remembers every request it sends: a remote venue's request log, seen from here."""

    def __init__(self, log: list[tuple[float, str]]) -> None:
        super().__init__()
        self.log = log

    def request(self, method: str | bytes, url: str | bytes, *a: Any, **kw: Any) -> Any:
        text = url.decode() if isinstance(url, bytes) else url
        verb = method.decode() if isinstance(method, bytes) else method
        path = text.split("://", 1)[-1].partition("/")[2].partition("?")[0]
        self.log.append((time.monotonic(), f"{verb} /{path}"))
        return super().request(verb, text, *a, **kw)


def _router(client: BinanceClient, symbol: str) -> BinanceRouter:
    router = BinanceRouter(
        client, symbol=symbol, retries=3, backoff=Backoff(base_s=0.02, cap_s=0.1)
    )
    router.start()
    return router


@contextmanager
def binance_on_sim(data: Path, faults: FaultConfig | None) -> Iterator[BinanceHarness]:
    from njord import sim

    key, secret = "contract-key-" + "k" * 51, "contract-secret-" + "s" * 48
    server = sim.build(
        data,
        speed=0,
        start_ms=None,
        faults=faults or FaultConfig(),
        balances={"USDT": Decimal(100_000)},
        api_key=key,
        api_secret=secret,
    )
    server.state.exchange.clock.advance(120)  # two hours of bars behind the market
    server.start_in_thread()
    try:
        client = BinanceClient(
            server.url,
            api_key=Secret(key),
            api_secret=Secret(secret),
            recv_window_ms=500,
            timeout_s=1.0,
            max_wait_s=2.0,
        )
        yield BinanceHarness(_router(client, "BTCUSDT"), server=server)
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def binance_at(url: str, *, symbol: str, key: Secret, secret: Secret) -> Iterator[BinanceHarness]:
    log: list[tuple[float, str]] = []
    client = BinanceClient(
        url, api_key=key, api_secret=secret, session=_CountingSession(log), max_wait_s=5.0
    )
    harness = BinanceHarness(_router(client, symbol))
    harness.sent = log
    yield harness


# -- checks ---------------------------------------------------------------------------------

_ids = iter(range(1, 10**9))


def _order(
    h: Harness, *, kind: OrderType = OrderType.MARKET, side: Side = Side.BUY, **kw: Any
) -> Order:
    fields: dict[str, Any] = {
        "client_order_id": f"njct{time.time_ns() % 10**9}-{next(_ids)}",
        "intent_id": 1,
        "symbol": h.symbol,
        "side": side,
        "type": kind,
        "qty_e8": E8 // 1000,
        "limit_e8": None,
        "status": OrderStatus.NEW,
        "created_ms": 0,
    }
    return Order(**(fields | kw))


def _below(h: Harness, ticks: int) -> int:
    return floor_to(h.price_e8(), h.tick_e8) - ticks * h.tick_e8


def _filled(reports: list[Report]) -> int:
    return sum(r.qty_e8 for r in reports if isinstance(r, Execution))


def _trade_ids(reports: list[Report]) -> list[str]:
    return [r.trade_id for r in reports if isinstance(r, Execution)]


def check_market(h: Harness) -> Result:
    order = _order(h)
    out = h.router.submit(order)
    ok = (
        isinstance(out[0], Ack)
        and _filled(out) == order.qty_e8
        and len(set(_trade_ids(out))) == len(_trade_ids(out)) > 0
        and h.placed(order.client_order_id) == 1
    )
    return ok, f"{out}"


def check_duplicate(h: Harness) -> Result:
    order = _order(h)
    first = h.router.submit(order)
    again = h.router.submit(order)
    placed = h.placed(order.client_order_id)
    ok = placed == 1 and _trade_ids(again) == _trade_ids(first) and _filled(again) == order.qty_e8
    return ok, f"venue holds {placed} orders under the id; first {first}, again {again}"


def check_cancel_after_fill(h: Harness) -> Result:
    order = _order(h)
    h.router.submit(order)
    first = h.router.cancel(order.client_order_id)
    again = h.router.cancel(order.client_order_id)
    ok = (
        first == again
        and not any(isinstance(r, Canceled) for r in first)
        and _filled(first) == order.qty_e8
    )
    return ok, f"first {first}, again {again}"


def check_cancel_open(h: Harness) -> Result:
    order = _order(h, kind=OrderType.LIMIT, limit_e8=_below(h, 10_000))
    placed = h.router.submit(order)
    canceled = h.router.cancel(order.client_order_id)
    again = h.router.cancel(order.client_order_id)
    ok = (
        [type(r) for r in placed] == [Ack]
        and isinstance(canceled[-1], Canceled)
        and again == h.router.query(order.client_order_id)
        and isinstance(again[-1], Canceled)
    )
    return ok, f"placed {placed}, canceled {canceled}, again {again}"


def check_open_orders(h: Harness) -> Result:
    order = _order(h, kind=OrderType.LIMIT, limit_e8=_below(h, 10_000))
    h.router.submit(order)
    listed = [r.client_order_id for r in h.router.open_orders() if isinstance(r, Ack)]
    h.router.cancel(order.client_order_id)
    after = [r.client_order_id for r in h.router.open_orders()]
    ok = order.client_order_id in listed and order.client_order_id not in after
    return ok, f"listed {listed}, after the cancel {after}"


def check_query_unknown(h: Harness) -> Result:
    found = h.router.query(f"njct-never-{time.time_ns()}")
    return found is None, f"{found}"


def check_fills_since(h: Harness) -> Result:
    one, two = _order(h), _order(h)
    first = h.router.submit(one)
    h.router.submit(two)
    cursor = str(int(_trade_ids(first)[0]) - 1)
    every = h.router.fills_since(cursor)
    after = h.router.fills_since(_trade_ids(first)[-1])
    mine = [
        e.client_order_id
        for e in every
        if e.client_order_id in (one.client_order_id, two.client_order_id)
    ]
    ok = (
        mine[:1] == [one.client_order_id]
        and mine[-1:] == [two.client_order_id]
        and [int(e.trade_id) for e in every] == sorted(int(e.trade_id) for e in every)
        and one.client_order_id not in [e.client_order_id for e in after]
    )
    return ok, f"since {cursor}: {every}; after {_trade_ids(first)[-1]}: {after}"


def check_partial_fills(h: Harness) -> Result:
    order = _order(h, kind=OrderType.LIMIT, limit_e8=_below(h, 1), qty_e8=3 * E8 // 1000)
    h.router.submit(order)
    seen: list[Report] = []
    for _ in range(240):
        h.advance(1)
        seen = h.router.query(order.client_order_id) or []
        if _filled(seen) >= order.qty_e8:
            break
    fills = [r for r in seen if isinstance(r, Execution)]
    ok = len(fills) > 1 and _filled(seen) == order.qty_e8
    return ok, f"{len(fills)} fills of {_filled(seen)} for {order.qty_e8}: {seen}"


def check_unknown_outcome(h: Harness, *, executed: bool) -> Result:
    order = _order(h)
    before = len(h.requests())
    out = h.router.submit(order)
    routes = [route for _, route in h.requests()[before:]]
    posts = [i for i, r in enumerate(routes) if r == ORDER_ROUTE]
    looked_up = len(posts) == 1 or QUERY_ROUTE in routes[posts[0] : posts[1]]
    ok = (
        h.placed(order.client_order_id) == 1
        and _filled(out) == order.qty_e8
        and len(posts) == (1 if executed else 2)
        and looked_up
    )
    return ok, f"requests {routes}; reports {out}"


def check_rate_limit_storm(h: Harness) -> Result:
    order = _order(h)
    before = len(h.requests())
    out = h.router.submit(order)
    sent = [(t, r) for t, r in h.requests()[before:] if r == ORDER_ROUTE]
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(sent)]
    ok = (
        len(out) == 1
        and isinstance(out[0], Reject)
        and out[0].reason == VenueCode.RATE_LIMITED.value
        and 1 < len(sent) <= 5
        and all(gap >= 0.3 for gap in gaps)
        and h.placed(order.client_order_id) == 0
    )
    return ok, f"{len(sent)} order requests, gaps {gaps}: {out}"


def check_ban(h: Harness) -> Result:
    order = _order(h)
    before = len(h.requests())
    out = h.router.submit(order)
    after = h.requests()[before:]
    banned_at = next(t for t, r in after if r == ORDER_ROUTE)
    during = [(round(t - banned_at, 3), r) for t, r in after if banned_at < t < banned_at + 1.0]
    ok = during == [] and _filled(out) == order.qty_e8 and h.placed(order.client_order_id) == 1
    return ok, f"sent during the ban: {during}; {out}"


def check_refused(h: Harness, *, filter_name: str, **fields: Any) -> Result:
    if "limit_below_ticks" in fields:
        fields["limit_e8"] = _below(h, fields.pop("limit_below_ticks")) + fields.pop("off", 0)
    order = _order(h, **fields)
    before = len(h.requests())
    out = h.router.submit(order)
    sent = h.requests()[before:]
    ok = (
        len(out) == 1
        and isinstance(out[0], Reject)
        and out[0].reason == Reason.VENUE_FILTER.value
        and out[0].code == filter_name
        and sent == []
    )
    return ok, f"sent {sent}: {out}"


UnknownKind = Literal["500", "drop", "timeout"]
UNKNOWN_KINDS: tuple[UnknownKind, ...] = ("500", "drop", "timeout")


def _unknown(kind: UnknownKind, executed: bool) -> RouterCheck:
    # The client gives up after 1 s; the simulator stalls 1.5 s on a timeout.
    fault = Fault(endpoint=ORDER_ROUTE, kind=kind, every=1, count=1, executed=executed, seconds=1.5)
    did = "executed" if executed else "not executed"
    return RouterCheck(
        name=f"unknown outcome ({kind}, {did}): looked up before any resend, executed once",
        run=lambda h: check_unknown_outcome(h, executed=executed),
        faults=FaultConfig(faults=[fault]),
    )


def _refusal(filter_name: str, detail: str, **fields: Any) -> RouterCheck:
    return RouterCheck(
        name=f"VENUE_FILTER before any request: {filter_name} ({detail})",
        run=lambda h: check_refused(h, filter_name=filter_name, **fields),
        needs=frozenset({"venue_filters"}),
    )


CHECKS: list[RouterCheck] = [
    RouterCheck(name="submit MARKET: an Ack, then fills summing to the quantity", run=check_market),
    RouterCheck(
        name="submit twice: the venue executes it once, the answer is the same", run=check_duplicate
    ),
    RouterCheck(
        name="cancel after a fill: a no-op, the same answer every time", run=check_cancel_after_fill
    ),
    RouterCheck(name="cancel an open order: Canceled, then the same answer", run=check_cancel_open),
    RouterCheck(name="open_orders: an Ack per order resting at the venue", run=check_open_orders),
    RouterCheck(name="query of an id the venue never had: None", run=check_query_unknown),
    RouterCheck(
        name="fills_since: every fill after the cursor, oldest first", run=check_fills_since
    ),
    RouterCheck(
        name="partial fills of a resting LIMIT add up to its quantity",
        run=check_partial_fills,
        faults=FaultConfig(partial_fill_parts=3),
    ),
    *(_unknown(kind, executed) for kind in UNKNOWN_KINDS for executed in (True, False)),
    RouterCheck(
        name="429 storm: Retry-After waited between tries, then given up (no hot loop)",
        run=check_rate_limit_storm,
        faults=FaultConfig(
            faults=[Fault(endpoint=ORDER_ROUTE, kind="429", every=1, retry_after_s=0.3)]
        ),
    ),
    RouterCheck(
        name="418 ban: nothing sent until Retry-After has passed, then the order goes",
        run=check_ban,
        faults=FaultConfig(
            faults=[Fault(endpoint=ORDER_ROUTE, kind="418", every=1, count=1, retry_after_s=1.0)]
        ),
    ),
    _refusal(
        "PRICE_FILTER", "price off the tick", kind=OrderType.LIMIT, limit_below_ticks=5, off=1
    ),
    _refusal(
        "PRICE_FILTER", "price above maxPrice", kind=OrderType.LIMIT, limit_e8=10**6 * E8 + E8
    ),
    _refusal("LOT_SIZE", "quantity off the step", qty_e8=E8 // 1000 + 1),
    _refusal("MARKET_LOT_SIZE", "above the market maximum", qty_e8=101 * E8),
    _refusal("NOTIONAL", "below the minimum notional", qty_e8=E8 // 100_000),
    _refusal("SYMBOL", "another symbol", symbol="NOTLISTED"),
]


def run_checks(make: Factory, *, skip_faults: bool = False) -> list[tuple[str, bool, str]]:
    """Every check on a fresh harness; a check whose faults the factory cannot inject is
    left out."""
    results = []
    for check in CHECKS:
        if skip_faults and check.faults is not None:
            continue
        harness = make(check.faults)
        if harness is None:
            continue
        with harness as h:
            if check.needs - h.can:
                continue
            try:
                ok, detail = check.run(h)
            except Exception as e:  # a check that raises fails; the others still run
                ok, detail = False, f"raised {type(e).__name__}: {e}"
        results.append((check.name, ok, "" if ok else detail))
    return results
