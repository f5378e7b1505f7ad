"""`njord exchange-sim`: a Binance-spot-compatible REST API on loopback.

Answers like the reference (docs/exchange-sim.md has the fidelity table): the same paths,
parameters, response shapes, error codes, HTTP statuses, weights and limit headers. Non-
Binance control endpoints live under /sim/ (market clock, stepping, request counts).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from njord.sim import params
from njord.sim.errors import ApiError
from njord.sim.exchange import Exchange
from njord.sim.faults import Fault, FaultPlan
from njord.sim.limits import RateLimits
from njord.sim.market import venue_now_ms
from njord.sim.market_data import exchange_info, klines, tickers

MAX_RECV_WINDOW_MS = 60_000
# Not Binance: the replay's market time, for a client that must tell which bar is closed.
MARKET_TIME_HEADER = "X-SIM-MARKET-TIME"
UNKNOWN_OUTCOME = "Unknown error, please check your request or try again later."


WEIGHTS = {
    "GET /api/v3/exchangeInfo": 20,
    "GET /api/v3/klines": 2,
    "GET /api/v3/order": 4,
    "GET /api/v3/account": 20,
}


def weight(route: str, p: dict[str, str]) -> int:
    """Binance's documented request weights (reference §3; docs/exchange-sim.md)."""
    if route in ("GET /api/v3/ticker/price", "GET /api/v3/ticker/bookTicker"):
        return 2 if "symbol" in p else 4
    if route == "GET /api/v3/openOrders":
        return 6 if "symbol" in p else 80
    if route == "GET /api/v3/myTrades":
        return 5 if "orderId" in p else 20
    if route == "POST /api/v3/order/test":
        return 20 if p.get("computeCommissionRates") == "true" else 1
    return WEIGHTS.get(route, 1)


SIGNED = frozenset(
    {
        "POST /api/v3/order",
        "POST /api/v3/order/test",
        "GET /api/v3/order",
        "DELETE /api/v3/order",
        "GET /api/v3/openOrders",
        "DELETE /api/v3/openOrders",
        "GET /api/v3/account",
        "GET /api/v3/myTrades",
    }
)


def signature_of(secret: str, query: str, body: str) -> str:
    """HMAC-SHA256 over the query string then the body, exactly as received (reference §2);
    the simulator's own lines, so a signing bug in njord's client cannot hide here."""
    payload = _without_signature(query) + _without_signature(body)
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def _without_signature(text: str) -> str:
    return "&".join(part for part in text.split("&") if part and not part.startswith("signature="))


class SimState:
    """What the request handlers share: the exchange, the keys, faults, limits, counters."""

    def __init__(self, exchange: Exchange, *, api_key: str, api_secret: str, faults: FaultPlan):
        self.exchange = exchange
        self.api_key = api_key
        self.api_secret = api_secret
        self.faults = faults
        self.skew_ms = faults.config.time_skew_ms
        self.limits = RateLimits(weight_limit=faults.config.weight_limit_1m)
        self.requests: Counter[str] = Counter()
        self.request_times: dict[str, list[float]] = {}
        self.lock = threading.Lock()

    def server_time_ms(self) -> int:
        return venue_now_ms() + self.skew_ms


class Handler(BaseHTTPRequestHandler):
    server: SimServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes; without NODELAY, Nagle and delayed ACKs
        # add ~40 ms to every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: the simulator is a test tool, stdout carries its address

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        state = self.server.state
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode(errors="replace") if length else ""
        route = f"{method} {path}"
        with state.lock:
            state.requests[route] += 1
            state.request_times.setdefault(route, []).append(time.monotonic())
        if path.startswith("/sim/"):
            self._control(path, dict(parse_qsl(query)))
            return
        headers: dict[str, str] = {}
        try:
            p = _params(query, body)
            headers["X-MBX-USED-WEIGHT-1M"] = str(state.limits.charge(weight(route, p)))
            fault = state.faults.pick(route)
            if fault is not None and fault.kind in ("429", "418"):
                raise _rate_fault(fault)
            if route in SIGNED:
                self._check_signed(p, query, body)
            if route == "POST /api/v3/order":
                state.limits.count_order()
            if fault is not None:
                self._fail(fault, lambda: _dispatch(state, route, p), headers)
                return
            result = _dispatch(state, route, p)
        except ApiError as e:
            retry = e.retry_after_s
            extra = {**headers, **e.headers}
            if retry is not None:
                extra["Retry-After"] = f"{retry:g}"
            self._send(e.status, {"code": e.code, "msg": e.msg}, extra, route=route)
            return
        self._send(200, result, headers, route=route)

    def _check_signed(self, p: dict[str, str], query: str, body: str) -> None:
        state = self.server.state
        key = self.headers.get("X-MBX-APIKEY")
        if not key:
            raise ApiError(401, -2014, "API-key format invalid.")
        if not hmac.compare_digest(key.encode(), state.api_key.encode()):
            raise ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        timestamp = params.required_integer(p, "timestamp")
        window = params.recv_window_ms(p)
        given = params.text(p, "signature")
        del p["signature"]
        expected = signature_of(state.api_secret, query, body)
        # bytes: compare_digest refuses str with non-ASCII characters (a garbled signature)
        if not hmac.compare_digest(given.lower().encode(), expected.encode()):
            raise ApiError(400, -1022, "Signature for this request is not valid.")
        if window > MAX_RECV_WINDOW_MS:
            raise ApiError(400, -1131, "recvWindow must be less than 60000")
        if timestamp > 10**14:  # microseconds (reference §1)
            timestamp //= 1000
        server = state.server_time_ms()
        if timestamp >= server + 1000:
            raise ApiError(
                400, -1021, "Timestamp for this request was 1000ms ahead of the server's time."
            )
        if Decimal(server - timestamp) > window:
            raise ApiError(400, -1021, "Timestamp for this request is outside of the recvWindow.")

    def _fail(self, fault: Fault, execute: Callable[[], Any], headers: dict[str, str]) -> None:
        if fault.executed:
            with contextlib.suppress(ApiError):
                execute()
        if fault.kind == "timeout":
            time.sleep(fault.seconds)
            self.close_connection = True
            return
        if fault.kind == "drop":
            self.close_connection = True
            self.connection.close()
            return
        # One answer whether or not the order went through: that is what "unknown" means.
        self._send(int(fault.kind), {"code": -1000, "msg": UNKNOWN_OUTCOME}, headers)

    def _control(self, path: str, p: dict[str, str]) -> None:
        state = self.server.state
        clock = state.exchange.clock
        if path == "/sim/advance":
            now = clock.advance(float(p.get("minutes", "1")))
            with state.exchange.lock:
                state.exchange.catch_up()
            self._send(200, {"now_ms": now}, {})
        elif path == "/sim/clock":
            self._send(200, {"now_ms": clock.now_ms(), "speed": clock.speed}, {})
        elif path == "/sim/stats":
            with state.lock:
                counts = dict(state.requests)
            self._send(200, {"requests": counts}, {})
        elif path == "/sim/balance":
            self._by_hand(p)
        else:
            self._send(404, {"code": -1000, "msg": f"no control endpoint {path}"}, {})

    def _by_hand(self, p: dict[str, str]) -> None:
        """A deposit or withdrawal made outside the API (`delta` may be negative): what a
        client's reconciliation must notice. The free balance never goes below zero."""
        exchange = self.server.state.exchange
        asset = p.get("asset", "").upper()
        try:
            delta = Decimal(p.get("delta", ""))
        except ArithmeticError:
            delta = Decimal("NaN")
        if not delta.is_finite():
            self._send(400, {"code": -1000, "msg": "delta must be a decimal"}, {})
            return
        with exchange.lock:
            free = exchange.free.get(asset, Decimal(0)) + delta
            if not asset.isalnum() or free < 0:
                self._send(400, {"code": -1000, "msg": f"cannot move {delta} {asset}"}, {})
                return
            exchange.free[asset] = free
            exchange.locked.setdefault(asset, Decimal(0))
        self._send(200, {"asset": asset, "free": f"{free:.8f}"}, {})

    def _send(self, status: int, payload: Any, headers: dict[str, str], *, route: str = "") -> None:
        state = self.server.state
        data = json.dumps(payload, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header(MARKET_TIME_HEADER, str(state.exchange.clock.now_ms()))
        if route == "POST /api/v3/order":
            headers = {**headers, **state.limits.order_headers()}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _params(query: str, body: str) -> dict[str, str]:
    """Query string and body merged; the query's value wins (reference §2). A name twice
    in one of them is -1101."""
    merged: dict[str, str] = {}
    for text in (body, query):
        pairs = parse_qsl(text, keep_blank_values=True)
        names = [k for k, _ in pairs]
        if len(names) != len(set(names)):
            raise ApiError(400, -1101, "Duplicate values for a parameter detected.")
        merged.update(pairs)
    return merged


def _rate_fault(fault: Fault) -> ApiError:
    if fault.kind == "429":
        return ApiError(429, -1003, "Too many requests queued.", fault.retry_after_s)
    message = "Way too much request weight used; IP banned until later."
    return ApiError(418, -1003, message, fault.retry_after_s)


def _dispatch(state: SimState, route: str, p: dict[str, str]) -> Any:
    ex = state.exchange
    handlers: dict[str, Callable[[dict[str, str]], Any]] = {
        "GET /api/v3/ping": lambda _: {},
        "GET /api/v3/time": lambda _: {"serverTime": state.server_time_ms()},
        "GET /api/v3/exchangeInfo": lambda q: exchange_info(
            ex, q, server_time_ms=state.server_time_ms(), weight_limit=state.limits.weight_limit
        ),
        "GET /api/v3/klines": lambda q: klines(ex, q),
        "GET /api/v3/ticker/price": lambda q: tickers(ex, q, book=False),
        "GET /api/v3/ticker/bookTicker": lambda q: tickers(ex, q, book=True),
        "POST /api/v3/order": ex.place,
        "POST /api/v3/order/test": lambda q: ex.place(q, test=True),
        "GET /api/v3/order": ex.query,
        "DELETE /api/v3/order": ex.cancel,
        "GET /api/v3/openOrders": ex.open_orders,
        "DELETE /api/v3/openOrders": ex.cancel_all,
        "GET /api/v3/account": ex.account,
        "GET /api/v3/myTrades": ex.my_trades,
    }
    handler = handlers.get(route)
    if handler is None:
        raise ApiError(404, -1000, f"unknown endpoint {route}")
    return handler(p)


class SimServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: SimState, port: int = 0) -> None:
        self.state = state
        super().__init__(("127.0.0.1", port), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start_in_thread(self) -> threading.Thread:
        # A short poll: shutdown() waits for it, and tests stop a simulator each.
        thread = threading.Thread(
            target=self.serve_forever, args=(0.05,), name="exchange-sim", daemon=True
        )
        thread.start()
        return thread


def new_credentials() -> tuple[str, str]:
    return secrets.token_hex(32), secrets.token_hex(32)
