"""Port contracts as data: named checks over an adapter, reported as JUnit XML and JSON.

`njord contract-tests --adapter NAME` and the pytest suite run these same checks, so a
new adapter is gated by exactly what gates today's. The router v2 checks live in
njord/router_contract.py (`--adapter binance`).
"""

from __future__ import annotations

import itertools
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import msgspec

from njord.adapters.binance import Backoff, BinanceClient
from njord.adapters.live_feed import LiveFeed
from njord.adapters.sim_router import SimRouter
from njord.config import RiskConfig, risk_limits
from njord.core.book import BarE8, Book
from njord.core.execution import CostModel, SymbolRules
from njord.core.money import E8
from njord.core.risk import PreTradeRisk, RiskEngine, RiskInputs
from njord.core.time import MINUTE_MS
from njord.data.history import HistoryFeed
from njord.data.polled import Polled
from njord.errors import ConfigError
from njord.ports import BarFeed, OrderRouter
from njord.reasons import Reason, TradingState
from njord.records import Order, OrderIntent, OrderStatus, OrderType, Side
from njord.secrets import Secret
from njord.sim.faults import Fault, FaultConfig


class CheckResult(msgspec.Struct, frozen=True, kw_only=True):
    port: str
    adapter: str
    check: str
    ok: bool
    detail: str = ""
    seconds: float = 0.0


def bar_feed_checks(feed: BarFeed, *, live: bool) -> list[tuple[str, bool, str]]:
    """The BarFeed contract: chronological, UTC grid, once each, gaps surfaced, lag."""
    started = time.monotonic()
    ts = []
    while not feed.finished:
        batch = feed.poll(time.monotonic() + 30)
        ts += batch.ts_ms if batch is not None else []
    pairs = list(itertools.pairwise(ts))
    backwards = next(((a, b) for a, b in pairs if b <= a), None)
    off_grid = next((t for t in ts if t % MINUTE_MS), None)
    gaps = [(a, b) for a, b in pairs if b - a > MINUTE_MS]
    surfaced = [
        (e.from_ts_ms - MINUTE_MS, e.to_ts_ms + MINUTE_MS)
        for e in feed.events
        if e.kind in ("skipped", "filled")
    ]
    results = [
        ("yields bars", bool(ts), f"{len(ts)} bars in {time.monotonic() - started:.2f}s"),
        ("strictly increasing, each bar once", backwards is None, f"first violation {backwards}"),
        ("on the UTC minute grid", off_grid is None, f"first off-grid timestamp {off_grid}"),
        (
            "every gap surfaced as an event",
            surfaced == gaps,
            f"gaps {gaps[:3]}, events {surfaced[:3]}",
        ),
    ]
    if live:
        lags = getattr(feed, "lags_ms", [])
        results.append(
            (
                "lag reported for every bar",
                len(lags) == len(ts),
                f"{len(lags)} lags for {len(ts)} bars",
            )
        )
    return results


@contextmanager
def _live_feed(data: Path, bars: int) -> Iterator[BarFeed]:
    from njord import sim

    faults = FaultConfig(
        seed=1,
        faults=[
            Fault(endpoint="GET /api/v3/klines", kind="429", every=7, retry_after_s=0.01),
            Fault(endpoint="GET /api/v3/klines", kind="500", every=11),
        ],
        klines_outages=[],
    )
    server = sim.build(data, speed=6_000, faults=faults)
    server.start_in_thread()
    try:
        yield LiveFeed(
            BinanceClient(server.url, timeout_s=5),
            symbol="BTCUSDT",
            start_ms=server.state.exchange.markets["BTCUSDT"].ts[0],
            max_bars=bars,
            poll_s=0.005,
            backoff=Backoff(base_s=0.005, cap_s=0.1),
        )
    finally:
        server.shutdown()
        server.server_close()


def _order(kind: OrderType, side: Side, coid: str, limit: int | None = None) -> Order:
    return Order(
        client_order_id=coid,
        intent_id=1,
        symbol="BTCUSDT",
        side=side,
        type=kind,
        qty_e8=E8,
        limit_e8=limit,
        status=OrderStatus.SUBMITTED,
        created_ms=0,
    )


def risk_engine_checks(engine: RiskEngine) -> list[tuple[str, bool, str]]:
    halted = RiskInputs(
        state=TradingState.HALTED,
        symbol="BTCUSDT",
        notional_e8=E8,
        reduces=False,
        opens_position=True,
        open_positions=0,
        daily_realised_e8=0,
        orders_last_minute=0,
    )
    first, again = engine.check(halted), engine.check(halted)
    return [
        ("pure: the same inputs give the same verdict", first == again, f"{first} {again}"),
        ("HALTED blocks first", first.reason is Reason.HALTED, f"{first.reason}"),
        ("the verdict records its inputs", first.inputs == msgspec.structs.asdict(halted), ""),
    ]


def settle(book: Book, router: OrderRouter) -> None:
    """Phases 2 and 3 in memory: send what the book wants sent, apply the answers, until
    it wants nothing more (tests drive a book this way without a loop or a db)."""
    while outgoing := book.take_outgoing():
        reports = [r for coid in outgoing.cancels for r in router.cancel(coid)]
        reports += [r for order in outgoing.orders for r in router.submit(order)]
        for report in reports:
            book.apply(report)


def _trade(book: Book, router: SimRouter, bar: BarE8, intents: list[OrderIntent]) -> None:
    """One bar of the loop's three phases, in memory."""
    for report in router.on_bar(bar):
        book.apply(report)
    book.start_bar(bar)
    book.decide(bar, intents)
    settle(book, router)
    book.end_bar(bar)


def busy_book() -> Book:
    """A book with two lots, a partial close, an open limit and a risk block; its outbox
    holds the rows that made them (intents, orders, fills, trades)."""
    book = Book(
        symbol="BTCUSDT",
        initial_cash_e8=10_000 * E8,
        costs=CostModel(),
        rules=SymbolRules(),
        risk=PreTradeRisk(risk_limits(RiskConfig(), mode="backtest")),
        allow_short=False,
        order_key="k",
    )
    router = SimRouter(CostModel(commission_bps=Decimal(10)), SymbolRules())
    for ts, qty in ((60_000, "0.1"), (120_000, "0.05")):
        bar = BarE8(ts, 100 * E8, 100 * E8, 100 * E8, 100 * E8)
        _trade(book, router, bar, [OrderIntent(symbol="BTCUSDT", side=Side.BUY, qty=Decimal(qty))])
    bar = BarE8(180_000, 100 * E8, 100 * E8, 100 * E8, 100 * E8)
    _trade(
        book,
        router,
        bar,
        [
            OrderIntent(symbol="BTCUSDT", side=Side.SELL, qty=Decimal("0.12")),
            OrderIntent(
                symbol="BTCUSDT",
                side=Side.BUY,
                qty=Decimal("0.01"),
                type=OrderType.LIMIT,
                limit_price=Decimal("90"),
            ),
            OrderIntent(symbol="ETHUSDT", side=Side.BUY, qty=Decimal("1")),
        ],
    )
    return book


def store_checks(directory: Path) -> list[tuple[str, bool, str]]:
    """SnapshotStore and PortfolioStore over a fresh session db."""
    from njord.store import db, outbox
    from njord.store.portfolio import SqlitePortfolioStore, SqliteSnapshotStore

    conn = db.open_writer(directory / "contract.db", create=True)
    busy = busy_book()
    state = busy.snapshot()
    snapshots, portfolio = SqliteSnapshotStore(conn), SqlitePortfolioStore(conn)
    with conn:
        outbox.insert(conn, busy.take_outbox(), last_bar_ms=busy.last_bar_ms)  # the lots' fills
        snapshot_id = snapshots.save(state, bar_ts_ms=180_000, decision_seq=0)
        portfolio.save(state, symbols=("BTCUSDT",))
    restored = snapshots.load(snapshot_id)
    book = Book(
        symbol="BTCUSDT",
        initial_cash_e8=1,
        costs=CostModel(),
        rules=SymbolRules(),
        risk=PreTradeRisk(risk_limits(RiskConfig(), mode="backtest")),
        allow_short=False,
        order_key="k",
    )
    book.restore(restored)
    encode = msgspec.msgpack.encode
    changed = msgspec.structs.replace(state, cash_e8=state.cash_e8 + 1)
    result = [
        (
            "snapshot: a busy book has lots, open orders and counters",
            bool(state.lots and state.open_orders and state.counters),
            "",
        ),
        ("snapshot: load(save(x)) == x, byte for byte", encode(restored) == encode(state), ""),
        (
            "snapshot: a book restored from it snapshots the same bytes",
            encode(book.snapshot()) == encode(state),
            "",
        ),
        (
            "portfolio: what was saved reads back with no difference",
            portfolio.differences(state) == [],
            f"{portfolio.differences(state)}",
        ),
        (
            "portfolio: a changed book is named field by field",
            portfolio.differences(changed)
            == [f"cash_e8: stored {state.cash_e8}, in memory {state.cash_e8 + 1}"],
            "",
        ),
    ]
    conn.close()
    return result


def binance_checks(
    data: Path, *, venue: str | None, symbol: str, key: Secret | None, secret: Secret | None
) -> list[tuple[str, bool, str]]:
    """The router v2 contract for BinanceRouter: on an in-process simulator over `data`
    (every check, faults included), or at `venue` with real keys (the checks that need no
    injected faults; they place small orders there: use a testnet)."""
    from njord import router_contract

    if venue is None:
        return router_contract.run_checks(
            lambda faults: router_contract.binance_on_sim(data, faults)
        )
    if key is None or secret is None:
        raise ConfigError(
            "--venue needs API keys: NJORD_BINANCE_API_KEY and NJORD_BINANCE_API_SECRET"
        )
    return router_contract.run_checks(
        lambda _: router_contract.binance_at(venue, symbol=symbol, key=key, secret=secret),
        skip_faults=True,
    )


def run(
    adapter: str,
    data: Path,
    *,
    bars: int = 300,
    venue: str | None = None,
    symbol: str = "BTCUSDT",
    key: Secret | None = None,
    secret: Secret | None = None,
) -> list[CheckResult]:
    started = time.monotonic()
    if venue is not None and adapter != "binance":
        raise ConfigError(f"--venue is for --adapter binance, not {adapter}")
    if adapter == "binance":
        checks = binance_checks(data, venue=venue, symbol=symbol, key=key, secret=secret)
        suites = [("OrderRouter", checks)]
    elif adapter == "history":
        feed = Polled(HistoryFeed(data, symbol="BTCUSDT", gaps="none"))
        suites = [("BarFeed", bar_feed_checks(feed, live=False))]
    elif adapter == "live-feed":
        with _live_feed(data, bars) as live:
            suites = [("BarFeed", bar_feed_checks(live, live=True))]
    elif adapter == "paper":
        from njord import router_contract

        routed = router_contract.run_checks(
            router_contract.in_process(router_contract.paper_broker)
        )
        with tempfile.TemporaryDirectory(prefix="njord-contract-") as tmp:
            suites = [
                ("OrderRouter", routed),
                ("SnapshotStore+PortfolioStore", store_checks(Path(tmp))),
                (
                    "RiskEngine",
                    risk_engine_checks(PreTradeRisk(risk_limits(RiskConfig(), mode="paper"))),
                ),
            ]
    else:
        raise ValueError(f"unknown adapter {adapter!r}")
    took = round(time.monotonic() - started, 3)
    return [
        CheckResult(
            port=port, adapter=adapter, check=name, ok=ok, detail="" if ok else detail, seconds=took
        )
        for port, checks in suites
        for name, ok, detail in checks
    ]


def junit_xml(results: list[CheckResult]) -> bytes:
    root = ET.Element("testsuites")
    for key, group in itertools.groupby(results, key=lambda r: (r.port, r.adapter)):
        cases = list(group)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=f"{key[0]}[{key[1]}]",
            tests=str(len(cases)),
            failures=str(sum(not c.ok for c in cases)),
        )
        for case in cases:
            element = ET.SubElement(
                suite,
                "testcase",
                classname=f"{case.port}.{case.adapter}",
                name=case.check,
                time=f"{case.seconds:.3f}",
            )
            if not case.ok:
                ET.SubElement(element, "failure", message=case.detail).text = case.detail
    xml: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return xml
