"""A Binance spot REST client (requests): signing, time sync, errors, retries.

Works the same against api.binance.com and `njord exchange-sim`. Signing follows the
reference: percent-encode the parameters, sign exactly those bytes with HMAC-SHA256, append
`signature`, and send that string as is (never let the library re-encode or reorder it).
"""

from __future__ import annotations

import hashlib
import hmac
import random
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import requests

from njord.errors import NjordError
from njord.secrets import Secret

# Codes that mean "the outcome is unknown / try again", per the reference (§5).
MARKET_TIME_HEADER = "X-SIM-MARKET-TIME"
RETRYABLE_CODES = frozenset({-1000, -1001, -1003, -1006, -1007, -1008, -1015, -1021})


class VenueError(NjordError):
    """The venue answered with an error; `code` is Binance's stable code."""

    def __init__(self, status: int, code: int, msg: str, *, retry_after_s: float | None = None):
        super().__init__(f"venue error {code} (HTTP {status}): {msg}")
        self.status = status
        self.code = code
        self.msg = msg
        self.retry_after_s = retry_after_s

    @property
    def retryable(self) -> bool:
        return self.status >= 500 or self.status in (418, 429) or self.code in RETRYABLE_CODES

    @property
    def outcome_unknown(self) -> bool:
        """5xx, -1006, -1007: the request may have executed; look it up before resending."""
        return self.status >= 500 or self.code in (-1006, -1007)


class VenueUnreachable(NjordError):
    """No answer at all (refused, reset, timed out): the outcome of a write is unknown."""


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def encode(params: Mapping[str, Any]) -> str:
    """Form-encoded as Binance's own connector does it, `@` left as is: the same params give
    the same bytes, so the same signature, whichever of the two clients sent them."""
    return urlencode(list(params.items())).replace("%40", "@")


def signed_query(params: Mapping[str, Any], secret: str) -> str:
    payload = encode(params)
    return f"{payload}&signature={sign(secret, payload)}"


class Backoff:
    """Exponential backoff with full jitter, capped; a Retry-After from the venue wins."""

    def __init__(
        self,
        *,
        base_s: float = 0.5,
        cap_s: float = 30.0,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_s = base_s
        self.cap_s = cap_s
        self.rng = rng or random.Random(0)
        self.sleep = sleep
        self.failures = 0

    def delay(self, retry_after_s: float | None = None) -> float:
        if retry_after_s is not None:
            return retry_after_s
        ceiling = min(self.cap_s, self.base_s * 2 ** min(self.failures, 32))
        return self.rng.uniform(ceiling / 2, ceiling)

    def failed(self, retry_after_s: float | None = None, *, at_most: float | None = None) -> float:
        wait = self.delay(retry_after_s)
        if at_most is not None:
            wait = min(wait, at_most)
        self.failures += 1
        self.sleep(wait)
        return wait

    def succeeded(self) -> None:
        self.failures = 0


class BinanceClient:
    def __init__(
        self,
        base_url: str,
        *,
        api_key: Secret | None = None,
        api_secret: Secret | None = None,
        recv_window_ms: int = 5000,
        timeout_s: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self._secret = api_secret
        self.recv_window_ms = recv_window_ms
        self.timeout_s = timeout_s
        self.http = session or requests.Session()
        self.offset_ms = 0
        self.used_weight_1m: int | None = None
        self.market_time_ms: int | None = None

    # -- time ---------------------------------------------------------------------------

    def server_time_ms(self) -> int:
        return int(self.public("GET", "/api/v3/time")["serverTime"])

    def sync_time(self) -> int:
        """Offset of the venue's clock from ours, measured at the midpoint of a request."""
        before = _now_ms()
        server = self.server_time_ms()
        self.offset_ms = server - (before + _now_ms()) // 2
        return self.offset_ms

    def now_ms(self) -> int:
        return _now_ms() + self.offset_ms

    def market_now_ms(self) -> int:
        """Which bar is closed: the venue's time, or a replay's market time when the venue
        is `njord exchange-sim` (its `X-SIM-MARKET-TIME` header; Binance sends none)."""
        server = self.server_time_ms()
        return self.market_time_ms if self.market_time_ms is not None else server

    # -- requests -----------------------------------------------------------------------

    def public(self, method: str, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self._send(method, path, encode(params or {}), headers={})

    def signed(self, method: str, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """A SIGNED request; on -1021 (clock drift) resync once and sign again."""
        if self._key is None or self._secret is None:
            raise NjordError("this request needs API keys (NJORD_BINANCE_API_KEY / _SECRET)")
        for attempt in (1, 2):
            full = {**(params or {}), "recvWindow": self.recv_window_ms, "timestamp": self.now_ms()}
            query = signed_query(full, self._secret.reveal())
            try:
                return self._send(method, path, query, headers={"X-MBX-APIKEY": self._key.reveal()})
            except VenueError as e:
                if e.code != -1021 or attempt == 2:
                    raise
                self.sync_time()
        raise AssertionError("unreachable")

    def _send(self, method: str, path: str, query: str, *, headers: dict[str, str]) -> Any:
        url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        try:
            response = self.http.request(method, url, headers=headers, timeout=self.timeout_s)
        except requests.RequestException as e:
            raise VenueUnreachable(f"{method} {path}: {type(e).__name__}") from None
        weight = response.headers.get("X-MBX-USED-WEIGHT-1M")
        if weight is not None:
            self.used_weight_1m = int(weight)
        market = response.headers.get(MARKET_TIME_HEADER)
        if market is not None:
            self.market_time_ms = int(market)
        if response.status_code >= 400:
            raise _error(response)
        try:
            return response.json()
        except ValueError:
            raise VenueError(response.status_code, -1000, "response is not JSON") from None


def _error(response: requests.Response) -> VenueError:
    retry_after = response.headers.get("Retry-After")
    try:
        body = response.json()
        code, msg = int(body["code"]), str(body["msg"])
    except (ValueError, KeyError, TypeError):
        code, msg = -1000, response.text[:200] or response.reason
    return VenueError(
        response.status_code, code, msg, retry_after_s=float(retry_after) if retry_after else None
    )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
