"""Issue 15: `njord live` against the simulator on loopback, through the real CLI.

The simulator's clock stands still (speed 0) with a known number of closed bars, so a
session catches up on them at once and every test is fast and repeatable; the venue's
own order and trade lists are the truth the db is compared with.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
import requests
from textual.widgets import Static

from njord.adapters.binance import BinanceClient
from njord.core.money import E8
from njord.secrets import Secret
from njord.sim.exchange import SimOrder
from njord.sim.faults import Fault, FaultConfig, FaultPlan
from njord.sim.server import SimServer
from njord.tui.app import NjordApp
from tests.conftest import (
    ROOT,
    backtest_args,
    invoke,
    njord_proc,
    query,
    run_killable,
    user_strategies_env,
    wait_rows,
)
from tests.sim.conftest import FIRST_BAR_MS, KEY, SECRET, start
from tests.sim.test_paper import session_args

LIVE_ENV = {
    "NJORD_ENABLE_LIVE": "1",
    "NJORD_BINANCE_API_KEY": KEY,
    "NJORD_BINANCE_API_SECRET": SECRET,
}
LIVE = ("--set", 'runtime.mode="live"')
FAST = ("--set", "strategy.params.fast=3", "--set", "strategy.params.slow=6")


def _venue(closed: int, faults: FaultConfig | None = None) -> SimServer:
    """The simulator `closed` bars into the sample month, its clock standing still."""
    return start(faults or FaultConfig(), speed=0, start_ms=FIRST_BAR_MS + closed * 60_000)


@pytest.fixture
def venue() -> Iterator[SimServer]:
    server = _venue(200)
    yield server
    server.shutdown()
    server.server_close()


def _client(server: SimServer) -> BinanceClient:
    return BinanceClient(server.url, api_key=Secret(KEY), api_secret=Secret(SECRET))


def _live(db: Path, url: str, *extra: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = invoke(*session_args("live", db, url, *LIVE, *extra), env=env or LIVE_ENV)
    return result.exit_code, result.output


def _advance(server: SimServer, minutes: int) -> None:
    requests.post(f"{server.url}/sim/advance?minutes={minutes}", timeout=5).raise_for_status()


def _venue_trades(server: SimServer) -> list[tuple[object, ...]]:
    """Every trade on the account, read through the API as any client would."""
    client = _client(server)
    ids = {o.order_id: o.client_order_id for o in _venue_orders(server)}
    trades = client.signed("GET", "/api/v3/myTrades", {"symbol": "BTCUSDT", "limit": 1000})
    return sorted(
        (
            ids[t["orderId"]],
            str(t["id"]),
            int(Decimal(t["qty"]) * E8),
            int(Decimal(t["price"]) * E8),
            int(Decimal(t["commission"]) * E8),
            t["commissionAsset"],
        )
        for t in trades
    )


def _venue_orders(server: SimServer) -> list[SimOrder]:
    """The simulator's own order list: every order it ever placed."""
    with server.state.exchange.lock:
        return list(server.state.exchange.orders.values())


def _db_trades(db: Path) -> list[tuple[object, ...]]:
    return sorted(
        query(
            db,
            "SELECT f.client_order_id, t.trade_id, t.qty_e8, f.price_e8, t.commission_e8, "
            "t.commission_asset FROM fills f JOIN fill_trades t USING (fill_id)",
        )
    )


def _one_order(server: SimServer, *, resting: bool = False) -> tuple[str, ...]:
    """user_strategies.OneOrder from the bar before the venue's clock (01:59): a market buy
    of 0.0002 BTC or, `resting`, a limit buy 0.1 % under the last close, which rests."""
    args: tuple[str, ...] = ()
    if resting:
        exchange = server.state.exchange
        close = Decimal(str(exchange.markets["BTCUSDT"].last_close(exchange.clock.now_ms())))
        limit = (close * Decimal("0.999")).quantize(Decimal("0.01"))
        args = (
            "--set",
            'strategy.params.type="LIMIT"',
            "--set",
            f'strategy.params.limit="{limit}"',
        )
    return (
        "--strategy",
        "user_strategies:OneOrder",
        *args,
        "--set",
        'strategy.params.qty="0.0002"',
        "--set",
        'data.start="2024-01-01T01:59"',
    )


# -- the three switches and the keys ---------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "env", "message"),
    [
        ((), {**LIVE_ENV, "NJORD_ENABLE_LIVE": "0"}, "set NJORD_ENABLE_LIVE=1"),
        (("--set", 'runtime.mode="paper"'), LIVE_ENV, 'runtime.mode is "paper"'),
        ((), {**LIVE_ENV, "NJORD_BINANCE_API_SECRET": ""}, "needs the venue's API key"),
    ],
    ids=["environment-switch-off", "config-mode-not-live", "no-keys"],
)
def test_live_refuses_unless_every_key_is_turned(
    venue: SimServer, tmp_path: Path, extra: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    db = tmp_path / "live.db"
    result = invoke(*session_args("live", db, venue.url, *LIVE, *extra, "--bars", "1"), env=env)
    assert result.exit_code == 2
    assert result.output.count("\n") == 1, result.output
    assert message in result.output
    assert not db.exists()
    assert venue.state.requests["POST /api/v3/order"] == 0


def test_a_secrets_file_readable_by_others_is_refused(venue: SimServer, tmp_path: Path) -> None:
    secrets = tmp_path / "keys.toml"
    secrets.write_text(f'binance_api_key = "{KEY}"\nbinance_api_secret = "{SECRET}"\n')
    secrets.chmod(0o644)
    env = {"NJORD_ENABLE_LIVE": "1", "NJORD_BINANCE_API_KEY": "", "NJORD_BINANCE_API_SECRET": ""}
    extra = ("--set", f'venue.secrets_file="{secrets}"', "--bars", "1")
    code, out = _live(tmp_path / "live.db", venue.url, *extra, env=env)
    assert code == 2
    assert "chmod 600" in out
    secrets.chmod(0o600)
    code, out = _live(tmp_path / "live.db", venue.url, *extra, env=env)
    assert code == 0, out


def test_a_venue_that_cannot_be_measured_makes_no_session(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    code, out = _live(db, "http://127.0.0.1:9", "--bars", "1")
    assert code == 1
    assert "cannot start against http://127.0.0.1:9" in out
    assert not db.exists()


def test_the_tui_does_not_start_live_trading(tmp_path: Path) -> None:
    result = invoke("tui", "--config", str(tmp_path / "x.toml"), "--mode", "live")
    assert result.exit_code == 2


# -- end to end --------------------------------------------------------------------------------


def test_tiny_live_trades_and_the_db_holds_exactly_the_venues_fills(
    venue: SimServer, tmp_path: Path
) -> None:
    db = tmp_path / "live.db"
    code, out = _live(db, venue.url, *FAST, "--tiny", "--bars", "60")
    assert code == 0, out
    assert "live live-" in out
    assert "60 new bars" in out
    sync, manifest = query(db, "SELECT config_toml LIKE '%synchronous = \"FULL\"%', 1 FROM runs")[0]
    assert sync == 1
    assert manifest == 1
    orders = _venue_orders(venue)
    assert len(orders) >= 4  # the crossover traded both ways
    for order in orders:
        assert order.status == "FILLED", order
        assert 0 < order.quote <= 10, order
    venue_trades = _venue_trades(venue)
    assert _db_trades(db) == venue_trades
    assert {t[5] for t in venue_trades} == {"BTC", "USDT"}  # commission in what is received
    # and the session's own reconciliations agree with the venue
    assert query(db, "SELECT count(*), sum(external) FROM reconciliations")[0] == (5, 0)


def test_status_shows_order_rtt_and_decision_latency(venue: SimServer, tmp_path: Path) -> None:
    import json

    db = tmp_path / "live.db"
    code, out = _live(db, venue.url, *FAST, "--tiny", "--bars", "30")
    assert code == 0, out
    status = json.loads(invoke("status", str(db), "--json").output)
    rtt = status["telemetry"]["order_rtt_ms"]
    assert rtt["n"] >= 2
    assert rtt["p50"] <= rtt["p95"] <= rtt["p99"]
    assert status["telemetry"]["decision_latency_ms"]["n"] == 30


# -- filters before any request ------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "venue_filter"),
    [
        ({"type": "LIMIT", "qty": "0.001", "limit": "2000000"}, "PRICE_FILTER"),
        ({"type": "MARKET", "qty": "0.000001"}, "LOT_SIZE"),
        ({"type": "MARKET", "qty": "101"}, "MARKET_LOT_SIZE"),
        ({"type": "MARKET", "qty": "0.0001"}, "NOTIONAL"),
    ],
)
@pytest.mark.usefixtures("user_strategies")
def test_an_order_the_venue_would_refuse_is_never_sent(
    venue: SimServer, tmp_path: Path, params: dict[str, str], venue_filter: str
) -> None:
    db = tmp_path / "live.db"
    extra = ["--strategy", "user_strategies:OneOrder", "--set", "risk.notional_cap=1e9"]
    for key, value in params.items():
        extra += ["--set", f'strategy.params.{key}="{value}"']
    code, out = _live(db, venue.url, *extra, "--bars", "2")
    assert code == 0, out
    verdicts = query(db, "SELECT reason, rule_inputs FROM intents")
    assert len(verdicts) == 1
    assert verdicts[0][0] == "VENUE_FILTER"
    assert f'"filter":"{venue_filter}"' in str(verdicts[0][1]).replace(" ", "")
    assert venue.state.requests["POST /api/v3/order"] == 0


@pytest.mark.usefixtures("user_strategies")
def test_max_num_orders_stops_the_order_past_the_venues_count_before_it_is_sent(
    venue: SimServer, tmp_path: Path
) -> None:
    market = venue.state.exchange.markets["BTCUSDT"]
    market.filters = msgspec.structs.replace(market.filters, max_num_orders=20)  # Binance: 200
    db = tmp_path / "live.db"
    code, out = _live(db, venue.url, "--strategy", "user_strategies:RestsEveryBar", "--bars", "22")
    assert code == 0, out
    assert venue.state.requests["POST /api/v3/order"] == 20
    refused = query(db, "SELECT reason, rule_inputs FROM intents WHERE allowed = 0")
    assert [r[0] for r in refused] == ["VENUE_FILTER", "VENUE_FILTER"]
    assert '"MAX_NUM_ORDERS"' in str(refused[0][1])


# -- reconciliation at start ----------------------------------------------------------------


@pytest.mark.usefixtures("user_strategies")
def test_an_order_filled_while_njord_was_down_is_applied_on_start(tmp_path: Path) -> None:
    server = _venue(120)
    try:
        db = tmp_path / "live.db"
        one = _one_order(server, resting=True)
        code, out = _live(db, server.url, *one, "--bars", "1")
        assert code == 0, out
        assert query(db, "SELECT status FROM orders") == [("SUBMITTED",)]
        for _ in range(600):  # njord is down; the market moves on and fills the limit
            _advance(server, 1)
            _client(server).signed("GET", "/api/v3/account")
            if all(o.status == "FILLED" for o in _venue_orders(server)):
                break
        code, out = _live(db, server.url, *one, "--bars", "1")
        assert code == 0, out
        assert query(db, "SELECT status FROM orders") == [("FILLED",)]
        assert _db_trades(db) == _venue_trades(server)
        assert query(db, "SELECT external, action FROM reconciliations ORDER BY seq")[-1] == (
            0,
            "none",
        )
        assert query(db, "SELECT state FROM trading_state") == [("ACTIVE",)]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("policy", ["halt", "adopt"])
def test_a_balance_changed_by_hand_is_an_external_event_on_start(
    venue: SimServer, tmp_path: Path, policy: str
) -> None:
    db = tmp_path / "live.db"
    code, out = _live(db, venue.url, *FAST, "--tiny", "--bars", "20")
    assert code == 0, out
    requests.post(f"{venue.url}/sim/balance?asset=USDT&delta=-250", timeout=5).raise_for_status()
    _advance(venue, 2)
    code, out = _live(db, venue.url, *FAST, "--set", f'venue.on_mismatch="{policy}"', "--bars", "1")
    assert code == 0, out
    events = query(db, "SELECT kind, subject, policy FROM external_events")
    assert events == [("balance", "USDT", policy)]
    state, reason = query(db, "SELECT state, reason FROM trading_state")[0]
    last = query(db, "SELECT action, accepted FROM reconciliations ORDER BY seq DESC LIMIT 1")
    if policy == "halt":
        assert state == "HALTED"
        assert str(reason).startswith("VENUE_MISMATCH: balance USDT")
        assert last == [("halt", 0)]
        assert query(db, "SELECT kind FROM alerts WHERE cleared_ms IS NULL") == [
            ("venue_mismatch",)
        ]
        assert "VENUE_MISMATCH" in invoke("status", str(db)).output
    else:
        assert state == "ACTIVE"
        assert last == [("adopt", 1)]
    result = invoke("reconcile", str(db), env=LIVE_ENV)
    assert result.exit_code == (4 if policy == "halt" else 0), result.output


def test_a_strangers_open_order_is_an_external_event_on_start(
    venue: SimServer, tmp_path: Path
) -> None:
    db = tmp_path / "live.db"
    code, out = _live(db, venue.url, *FAST, "--tiny", "--bars", "5")
    assert code == 0, out
    _client(venue).signed(
        "POST",
        "/api/v3/order",
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.001",
            "price": "20000",
            "newClientOrderId": "web_resting",
        },
    )
    _advance(venue, 2)
    code, out = _live(db, venue.url, *FAST, "--bars", "1")
    assert code == 0, out
    kinds = query(db, "SELECT kind, subject FROM external_events")
    assert ("open_order", "web_resting") in kinds
    assert query(db, "SELECT state FROM trading_state") == [("HALTED",)]


def test_reconcile_refuses_a_missing_db_and_a_session_that_is_not_live(
    tmp_path: Path, sample_week: Path
) -> None:
    result = invoke("reconcile", str(tmp_path / "none.db"))
    assert result.exit_code == 2
    assert "no session db" in result.output
    backtest = tmp_path / "bt.db"
    made = invoke(*backtest_args(sample_week, backtest, "--no-report", "--to", "2024-01-01T01:00"))
    assert made.exit_code == 0, made.output
    result = invoke("reconcile", str(backtest), env=LIVE_ENV)
    assert result.exit_code == 2
    assert (
        result.output
        == f"error: {backtest} holds a backtest session; reconcile checks live sessions\n"
    )


def test_live_continue_needs_the_switch_too(venue: SimServer, tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    code, out = _live(db, venue.url, *FAST, "--bars", "2")
    assert code == 0, out
    result = invoke("continue", str(db), env={**LIVE_ENV, "NJORD_ENABLE_LIVE": ""})
    assert result.exit_code == 2
    assert "NJORD_ENABLE_LIVE=1" in result.output
    assert query(db, "SELECT count(*) FROM equity") == [(2,)]


def test_a_venue_that_cannot_be_reconciled_at_start_starts_halted(tmp_path: Path) -> None:
    """The clock, filters and account can be read, the open orders cannot: it does not trade on
    a guess. It starts, halts before its first bar with the reason, and sends nothing."""
    # Five 500s: the start's reconciliation and its retries; the next bar's retry succeeds.
    fault = Fault(endpoint="GET /api/v3/openOrders", kind="500", every=1, count=5)
    server = _venue(60, faults=FaultConfig(faults=[fault]))
    try:
        db = tmp_path / "live.db"
        code, out = _live(db, server.url, *FAST, "--bars", "30")
        assert code == 0, out
        state, reason = query(db, "SELECT state, reason FROM trading_state")[0]
        assert state == "HALTED"
        assert str(reason).startswith("VENUE_FAILURES: cannot reconcile at start")
        assert query(db, "SELECT kind FROM alerts") == [("venue_failures",)]
        assert server.state.requests["POST /api/v3/order"] == 0
        assert query(db, "SELECT count(*) FROM intents WHERE allowed = 1") == [(0,)]
    finally:
        server.shutdown()
        server.server_close()


def test_the_tui_watches_and_steers_a_live_session(venue: SimServer, tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    code, out = _live(db, venue.url, *FAST, "--tiny", "--bars", "30")
    assert code == 0, out

    async def run() -> None:
        app = NjordApp(db)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            base = app.screen_stack[0]
            assert str(base.query_one("#state", Static).render()) == "ACTIVE\nlive"
            assert "order rtt p50" in str(base.query_one("#summary", Static).render())
            await pilot.press("h", "y")
            await pilot.pause()

    asyncio.run(run())
    assert query(db, "SELECT command FROM controls") == [("halt",)]


def test_keys_the_venue_refuses_make_no_session(venue: SimServer, tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    env = {**LIVE_ENV, "NJORD_BINANCE_API_SECRET": "not-the-secret"}
    code, out = _live(db, venue.url, *FAST, "--bars", "1", env=env)
    assert code == 2
    assert "refused the API key or secret" in out
    assert out.count("\n") == 1
    assert not db.exists()
    assert "not-the-secret" not in out


def test_live_sends_keys_over_https_only_but_to_loopback(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    code, out = _live(db, "http://venue.example:8080", "--bars", "1")
    assert code == 2
    assert "is not https" in out
    assert not db.exists()


def test_verify_refuses_a_live_session(venue: SimServer, tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    code, out = _live(db, venue.url, *FAST, "--tiny", "--bars", "20")
    assert code == 0, out
    result = invoke("verify", str(db))
    assert result.exit_code == 2
    assert "holds a live session" in result.output
    assert invoke("audit", str(db)).exit_code == 0


@pytest.mark.usefixtures("user_strategies")
def test_an_order_whose_send_stayed_unknown_is_expired_never_sent_late(tmp_path: Path) -> None:
    """The venue cannot be asked about an order (its lookups fail) when it is sent: the
    outcome stays unknown. The next reconciliation finds the venue never got it and
    expires it; nothing sends it later."""
    lookups_fail = Fault(endpoint="GET /api/v3/order", kind="503", every=1, count=5)
    server = _venue(60, FaultConfig(faults=[lookups_fail]))
    try:
        db = tmp_path / "live.db"
        extra = ("--strategy", "user_strategies:OneOrder", "--set", 'strategy.params.qty="0.0002"')
        code, out = _live(
            db, server.url, *extra, "--set", "venue.reconcile_every_bars=5", "--bars", "8"
        )
        assert code == 0, out
        assert query(db, "SELECT status, reason FROM orders") == [("CANCELED", "EXPIRED")]
        assert server.state.requests["POST /api/v3/order"] == 0
        _advance(server, 2)
        code, out = _live(
            db, server.url, *extra, "--set", "venue.reconcile_every_bars=5", "--bars", "1"
        )
        assert code == 0, out
        assert server.state.requests["POST /api/v3/order"] == 0
    finally:
        server.shutdown()
        server.server_close()


def test_a_venue_alert_left_open_by_a_run_is_cleared_by_the_next(
    venue: SimServer, tmp_path: Path
) -> None:
    db = tmp_path / "live.db"
    code, out = _live(db, venue.url, *FAST, "--tiny", "--bars", "5")
    assert code == 0, out
    requests.post(f"{venue.url}/sim/balance?asset=USDT&delta=-5", timeout=5).raise_for_status()
    _advance(venue, 2)
    code, out = _live(db, venue.url, *FAST, "--bars", "1")
    assert query(db, "SELECT kind FROM alerts WHERE cleared_ms IS NULL") == [("venue_mismatch",)]
    requests.post(f"{venue.url}/sim/balance?asset=USDT&delta=5", timeout=5).raise_for_status()
    _advance(venue, 2)
    code, out = _live(db, venue.url, *FAST, "--bars", "1")
    assert code == 0, out
    assert query(db, "SELECT kind FROM alerts WHERE cleared_ms IS NULL") == []


@pytest.mark.parametrize("case", ["clean", "trades-503", "restart-lookup-503"])
def test_a_resting_limit_that_fills_is_applied_at_the_next_bar(tmp_path: Path, case: str) -> None:
    """A limit rests; the market reaches it while the session runs. The session learns of
    the fill from the bar after, by asking the venue about its resting orders, not at its
    next reconciliation (here: never again after the one at start). While reading the
    order's trades fails, it asks again every bar; so it does when the order was placed by
    an earlier run and the restart could not look it up."""
    server = _venue(120)
    try:
        db = tmp_path / "live.db"
        exchange = server.state.exchange
        args = session_args(
            "live",
            db,
            server.url,
            *LIVE,
            *_one_order(server, resting=True),
            "--set",
            "venue.reconcile_every_bars=100000",
        )
        env = {**LIVE_ENV, **user_strategies_env()}
        if case == "restart-lookup-503":
            first = njord_proc(*args, "--bars", "1", cwd=ROOT, env=env)
            _, err = first.communicate(timeout=60)
            assert first.returncode == 0, err
            # The restart's lookup of its open order fails past a session's retries.
            failing = Fault(endpoint="GET /api/v3/order", kind="503", every=1, count=5)
            server.state.faults = FaultPlan(FaultConfig(faults=[failing]))
        starts = 2 if case == "restart-lookup-503" else 1
        proc = njord_proc(*args, "--for", "60s", cwd=ROOT, env=env)
        try:
            # Started (its open order looked up first), and the order resting.
            wait_rows(db, f"SELECT 1 FROM reconciliations LIMIT 1 OFFSET {starts - 1}")
            wait_rows(db, "SELECT 1 FROM orders WHERE status = 'SUBMITTED'")
            if case == "restart-lookup-503":
                assert server.state.faults.fired() == [5]
            for _ in range(600):  # the market moves on until it fills the limit
                _advance(server, 1)
                if all(o.status == "FILLED" for o in _venue_orders(server)):
                    break
            filled_ms = exchange.clock.now_ms()
            if case == "trades-503":
                # Five failed reads of the order's trades: more than a session's retries.
                failing = Fault(endpoint="GET /api/v3/myTrades", kind="503", every=1, count=5)
                server.state.faults = FaultPlan(FaultConfig(faults=[failing]))
                for bar_ms in range(filled_ms, filled_ms + 5 * 60_000, 60_000):
                    _advance(server, 1)  # one try a bar, and again the next
                    wait_rows(db, f"SELECT 1 FROM equity WHERE ts_ms = {bar_ms}", timeout=15)
                assert server.state.faults.fired() == [5]
            _advance(server, 1)  # the session asks and applies the fill
            wait_rows(db, "SELECT 1 FROM orders WHERE status = 'FILLED'", timeout=15)
        finally:
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert _db_trades(db) == _venue_trades(server)
        (stamp,) = query(db, "SELECT bar_ts_ms FROM decisions WHERE kind = 'fill'")[0]
        assert isinstance(stamp, int)
        assert stamp <= filled_ms + (5 * 60_000 if case == "trades-503" else 0)
        assert query(db, "SELECT count(*) FROM reconciliations") == [(starts,)]  # at start
    finally:
        server.shutdown()
        server.server_close()


def test_reconcile_with_the_venue_down_says_so_at_once(tmp_path: Path) -> None:
    server = _venue(60)
    db = tmp_path / "live.db"
    try:
        code, out = _live(db, server.url, *FAST, "--bars", "2")
        assert code == 0, out
    finally:
        server.shutdown()
        server.server_close()
    started = time.monotonic()
    result = invoke("reconcile", str(db), env=LIVE_ENV)
    took = time.monotonic() - started
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"error: cannot reconcile {db} against {server.url}: ")
    assert "ConnectionError" in result.output
    assert result.output.endswith("nothing was asked of it and nothing changed\n")
    assert result.output.count("\n") == 1
    assert took < 20  # not a session's backoff (about a minute)


@pytest.mark.parametrize(("command", "state"), [("halt", "HALTED"), ("reduce", "REDUCING")])
def test_a_halt_posted_while_a_live_session_was_down_stops_what_it_decided_before(
    tmp_path: Path, command: str, state: str
) -> None:
    """Killed after an order (a buy from flat) was committed NEW and before it was sent;
    the operator halts the session, or makes it reduce-only, while it is down. The restart
    must not send that order: the operator's word is newer, and the venue's account would
    take on the exposure just stopped."""
    server = _venue(120)
    try:
        db = tmp_path / "live.db"
        args = session_args("live", db, server.url, *LIVE, *_one_order(server), "--bars", "1")
        env = {**LIVE_ENV, **user_strategies_env()}
        assert run_killable(args, {**env, "NJORD_KILL_AT": "decided:1"}) == -9
        assert query(db, "SELECT status FROM orders") == [("NEW",)]
        assert invoke(command, "--db", str(db)).exit_code == 0
        _advance(server, 1)  # a new bar for the restart to run
        assert run_killable(args, env) == 0
        assert query(db, "SELECT status, reason FROM orders") == [("CANCELED", "EXPIRED")]
        assert server.state.requests["POST /api/v3/order"] == 0
        assert query(db, "SELECT state FROM trading_state") == [(state,)]
    finally:
        server.shutdown()
        server.server_close()
