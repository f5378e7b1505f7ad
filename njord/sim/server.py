"""`njord exchange-sim`: a Binance-spot-compatible REST API on loopback.

Answers like the reference (shared facts in docs/exchange-sim.md): the same paths,
parameters, response shapes, error codes, HTTP statuses and used-weight headers. Non-
Binance control endpoints live under /sim/ (clock, stepping, request counts).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import secrets
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from njord.adapters.binance import sign
from njord.core.time import MINUTE_MS
from njord.sim.exchange import ApiError, Exchange
from njord.sim.faults import Fault, FaultPlan

WEIGHTS = {
    "/api/v3/ping": 1,
    "/api/v3/time": 1,
    "/api/v3/exchangeInfo": 20,
    "/api/v3/klines": 2,
    "/api/v3/order": 1,
    "/api/v3/openOrders": 6,
    "/api/v3/account": 20,
    "/api/v3/myTrades": 20,
}
SIGNED = frozenset({"/api/v3/order", "/api/v3/openOrders", "/api/v3/account", "/api/v3/myTrades"})
WEIGHT_LIMIT_1M = 6000
MAX_RECV_WINDOW_MS = 60_000


class SimState:
    """What the request handlers share: the exchange, the keys, faults and counters."""

    def __init__(self, exchange: Exchange, *, api_key: str, api_secret: str, faults: FaultPlan):
        self.exchange = exchange
        self.api_key = api_key
        self.api_secret = api_secret
        self.faults = faults
        self.requests: Counter[str] = Counter()
        self.request_times: dict[str, list[float]] = {}
        self._weights: deque[tuple[float, int]] = deque()
        self.lock = threading.Lock()

    def used_weight(self, add: int) -> int:
        """Weight used in the last minute of the simulator's clock (the replay's minute)."""
        now = self.exchange.market.now_ms()
        with self.lock:
            self._weights.append((now, add))
            while self._weights and self._weights[0][0] <= now - MINUTE_MS:
                self._weights.popleft()
            return sum(w for _, w in self._weights)


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
        body = self.rfile.read(length).decode() if length else ""
        route = f"{method} {path}"
        with state.lock:
            state.requests[route] += 1
            state.request_times.setdefault(route, []).append(time.monotonic())
        if path.startswith("/sim/"):
            self._control(path, dict(parse_qsl(query)))
            return
        weight = state.used_weight(WEIGHTS.get(path, 1))
        fault = state.faults.pick(route)
        try:
            if fault is not None and fault.kind in ("429", "418"):
                raise _rate_fault(fault)
            if weight > WEIGHT_LIMIT_1M:
                raise ApiError(
                    429,
                    -1003,
                    f"Too much request weight used; current limit is "
                    f"{WEIGHT_LIMIT_1M} request weight per 1 MINUTE.",
                    retry_after_s=1,
                )
            params = self._checked_params(method, path, query, body)
            if fault is not None and fault.kind in ("500", "503", "timeout", "drop"):
                self._fail(fault, lambda: _dispatch(state, method, path, params))
                return
            result = _dispatch(state, method, path, params)
        except ApiError as e:
            retry = e.retry_after_s
            extra = {"Retry-After": f"{retry:g}"} if retry is not None else {}
            self._send(e.status, {"code": e.code, "msg": e.msg}, weight, extra)
            return
        self._send(200, result, weight)

    def _checked_params(self, method: str, path: str, query: str, body: str) -> dict[str, str]:
        pairs = parse_qsl(query, keep_blank_values=True) + parse_qsl(body, keep_blank_values=True)
        names = [k for k, _ in pairs]
        if len(names) != len(set(names)):
            raise ApiError(400, -1101, "Duplicate values for a parameter detected.")
        params = dict(pairs)
        if path in SIGNED:
            self._check_signature(params, query, body)
        return params

    def _check_signature(self, params: dict[str, str], query: str, body: str) -> None:
        state = self.server.state
        key = self.headers.get("X-MBX-APIKEY")
        if not key:
            raise ApiError(401, -2014, "API-key format invalid.")
        if not hmac.compare_digest(key, state.api_key):
            raise ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        if "timestamp" not in params:
            raise ApiError(
                400,
                -1102,
                "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.",
            )
        given = params.pop("signature", "")
        payload = _strip_signature(query) + _strip_signature(body)
        if not hmac.compare_digest(given.lower(), sign(state.api_secret, payload)):
            raise ApiError(400, -1022, "Signature for this request is not valid.")
        window = float(params.get("recvWindow", 5000))
        if window > MAX_RECV_WINDOW_MS:
            raise ApiError(400, -1131, "recvWindow must be less than 60000")
        server = state.exchange.market.now_ms() + state.exchange.market.skew_ms
        timestamp = int(params["timestamp"])
        if timestamp >= server + 1000:
            raise ApiError(
                400, -1021, "Timestamp for this request was 1000ms ahead of the server's time."
            )
        if server - timestamp > window:
            raise ApiError(400, -1021, "Timestamp for this request is outside of the recvWindow.")

    def _fail(self, fault: Fault, execute: Callable[[], Any]) -> None:
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
        message = (
            "Unknown error, please check your request or try again later."
            if fault.executed
            else "Service Unavailable."
        )
        self._send(int(fault.kind), {"code": -1000 if fault.executed else -1008, "msg": message}, 0)

    def _control(self, path: str, params: dict[str, str]) -> None:
        market = self.server.state.exchange.market
        if path == "/sim/advance":
            self._send(200, {"now_ms": market.advance(float(params.get("minutes", "1")))}, 0)
        elif path == "/sim/clock":
            self._send(200, {"now_ms": market.now_ms(), "speed": market.speed}, 0)
        elif path == "/sim/stats":
            with self.server.state.lock:
                counts = dict(self.server.state.requests)
            self._send(200, {"requests": counts}, 0)
        else:
            self._send(404, {"code": -1000, "msg": f"no control endpoint {path}"}, 0)

    def _send(
        self, status: int, payload: Any, weight: int, extra: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-MBX-USED-WEIGHT-1M", str(weight))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _strip_signature(text: str) -> str:
    kept = [part for part in text.split("&") if part and not part.startswith("signature=")]
    return "&".join(kept)


def _rate_fault(fault: Fault) -> ApiError:
    if fault.kind == "429":
        return ApiError(429, -1003, "Too many requests queued.", fault.retry_after_s)
    message = "Way too much request weight used; IP banned until later."
    return ApiError(418, -1003, message, fault.retry_after_s)


def _dispatch(state: SimState, method: str, path: str, p: dict[str, str]) -> Any:
    ex = state.exchange
    route = f"{method} {path}"
    if route == "GET /api/v3/ping":
        return {}
    if route == "GET /api/v3/time":
        return {"serverTime": ex.market.now_ms() + ex.market.skew_ms}
    if route == "GET /api/v3/exchangeInfo":
        return exchange_info(ex)
    if route == "GET /api/v3/klines":
        return klines(ex, p)
    if route == "POST /api/v3/order":
        return ex.place(p)
    if route == "GET /api/v3/order":
        return ex.query(p)
    if route == "DELETE /api/v3/order":
        return ex.cancel(p)
    if route == "GET /api/v3/openOrders":
        return ex.open_orders()
    if route == "GET /api/v3/account":
        return ex.account()
    if route == "GET /api/v3/myTrades":
        return ex.my_trades(p)
    raise ApiError(404, -1000, f"unknown endpoint {route}")


def klines(ex: Exchange, p: dict[str, str]) -> list[list[Any]]:
    market = ex.market
    if p.get("symbol") != market.symbol:
        raise ApiError(400, -1121, "Invalid symbol.")
    if p.get("interval") != "1m":
        raise ApiError(400, -1120, "Invalid interval.")
    limit = int(p.get("limit", 500))
    if not 1 <= limit <= 1000:
        raise ApiError(400, -1130, "Data sent for parameter 'limit' is not valid.")
    start, end = p.get("startTime"), p.get("endTime")
    rows = [market.rows[i] for i in market.visible(market.now_ms())]
    if start is not None:
        rows = [r for r in rows if r[0] >= int(start)]
    if end is not None:
        rows = [r for r in rows if r[0] <= int(end)]
    rows = rows[:limit] if start is not None else rows[-limit:]
    return [
        [
            ts,
            f"{o:.8f}",
            f"{h:.8f}",
            f"{lo:.8f}",
            f"{c:.8f}",
            f"{v:.8f}",
            ts + MINUTE_MS - 1,
            f"{v * c:.8f}",
            0,
            "0.00000000",
            "0.00000000",
            "0",
        ]
        for ts, o, h, lo, c, v in rows
    ]


def exchange_info(ex: Exchange) -> dict[str, Any]:
    f = ex.filters
    return {
        "timezone": "UTC",
        "serverTime": ex.market.now_ms(),
        "rateLimits": [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": WEIGHT_LIMIT_1M,
            },
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
            {
                "rateLimitType": "RAW_REQUESTS",
                "interval": "MINUTE",
                "intervalNum": 5,
                "limit": 61000,
            },
        ],
        "exchangeFilters": [],
        "symbols": [
            {
                "symbol": ex.market.symbol,
                "status": "TRADING",
                "baseAsset": ex.base,
                "baseAssetPrecision": 8,
                "quoteAsset": ex.quote,
                "quotePrecision": 8,
                "quoteAssetPrecision": 8,
                "baseCommissionPrecision": 8,
                "quoteCommissionPrecision": 8,
                "orderTypes": ["LIMIT", "MARKET"],
                "icebergAllowed": False,
                "ocoAllowed": False,
                "otoAllowed": False,
                "quoteOrderQtyMarketAllowed": False,
                "allowTrailingStop": False,
                "cancelReplaceAllowed": False,
                "amendAllowed": False,
                "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False,
                "filters": [
                    {
                        "filterType": "PRICE_FILTER",
                        "minPrice": f"{f.min_price:.8f}",
                        "maxPrice": f"{f.max_price:.8f}",
                        "tickSize": f"{f.tick:.8f}",
                    },
                    {
                        "filterType": "LOT_SIZE",
                        "minQty": f"{f.min_qty:.8f}",
                        "maxQty": f"{f.max_qty:.8f}",
                        "stepSize": f"{f.step:.8f}",
                    },
                    {
                        "filterType": "MARKET_LOT_SIZE",
                        "minQty": "0.00000000",
                        "maxQty": f"{f.market_max_qty:.8f}",
                        "stepSize": "0.00000000",
                    },
                    {
                        "filterType": "NOTIONAL",
                        "minNotional": f"{f.min_notional:.8f}",
                        "applyMinToMarket": True,
                        "maxNotional": "9000000.00000000",
                        "applyMaxToMarket": False,
                        "avgPriceMins": 5,
                    },
                ],
                "permissions": [],
                "permissionSets": [["SPOT"]],
                "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
            }
        ],
    }


class SimServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: SimState, port: int = 0) -> None:
        self.state = state
        super().__init__(("127.0.0.1", port), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="exchange-sim", daemon=True)
        thread.start()
        return thread


def new_credentials() -> tuple[str, str]:
    return secrets.token_hex(32), secrets.token_hex(32)
