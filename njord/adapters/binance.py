"""A Binance spot REST client (requests): signing, time sync, errors, rate limits.

Works the same against api.binance.com and `njord exchange-sim`. Signing follows the
reference: percent-encode the parameters, sign exactly those bytes with HMAC-SHA256, append
`signature`, and send that string as is (never let the library re-encode or reorder it).

Every request first asks the `RateLimiter` how long it must wait (a Retry-After still
running, or the weight or order budget spent); a wait longer than the caller allows is a
`Throttled` error and nothing is sent. `classify` maps every error to a stable `VenueCode`,
retryable or terminal, and says whether a write may have executed (docs/reasons.md).
"""

from __future__ import annotations

import hashlib
import hmac
import random
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import msgspec
import requests

from njord.adapters.binance_limits import RateLimiter, request_weight
from njord.errors import NjordError
from njord.reasons import VenueCode
from njord.secrets import Secret

MARKET_TIME_HEADER = "X-SIM-MARKET-TIME"


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
        return classify(self).retryable

    @property
    def outcome_unknown(self) -> bool:
        """5xx, -1006, -1007, ...: the request may have executed; look it up before resending."""
        return classify(self).unknown


class Throttled(VenueError):
    """Not sent: our limiter would have had to wait `retry_after_s`, longer than allowed."""

    def __init__(self, wait_s: float, route: str) -> None:
        super().__init__(
            429, -1003, f"{route} held back {wait_s:.2f}s by the rate limits", retry_after_s=wait_s
        )


class VenueUnreachable(NjordError):
    """No answer at all (refused, reset, timed out): the outcome of a write is unknown."""


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """What an error means: its stable code; whether trying again later may succeed; whether
    a write may have executed (then it is looked up, never sent again blindly)."""

    code: VenueCode
    retryable: bool
    unknown: bool


_BY_CODE: dict[int, tuple[VenueCode, bool, bool]] = {
    -1000: (VenueCode.OUTCOME_UNKNOWN, True, True),
    -1001: (VenueCode.OUTCOME_UNKNOWN, True, True),
    -1003: (VenueCode.RATE_LIMITED, True, False),
    -1006: (VenueCode.OUTCOME_UNKNOWN, True, True),
    -1007: (VenueCode.OUTCOME_UNKNOWN, True, True),
    -1008: (VenueCode.BUSY, True, True),
    -1013: (VenueCode.FILTER_FAILURE, False, False),
    -1015: (VenueCode.TOO_MANY_ORDERS, True, False),
    -1021: (VenueCode.CLOCK_SKEW, True, False),
    -1022: (VenueCode.BAD_SIGNATURE, False, False),
    -1121: (VenueCode.BAD_SYMBOL, False, False),
    -2010: (VenueCode.ORDER_REJECTED, False, False),
    -2011: (VenueCode.CANCEL_REJECTED, False, False),
    -2013: (VenueCode.NO_SUCH_ORDER, False, False),
    -2014: (VenueCode.AUTH, False, False),
    -2015: (VenueCode.AUTH, False, False),
    -2026: (VenueCode.ORDER_ARCHIVED, False, False),
}
# -2010 is one code for many refusals; its message tells them apart (reference §5.2).
_REJECTED: tuple[tuple[str, VenueCode, bool], ...] = (
    ("duplicate order", VenueCode.DUPLICATE_ORDER, True),
    ("insufficient balance", VenueCode.INSUFFICIENT_BALANCE, False),
    ("market is closed", VenueCode.MARKET_CLOSED, False),
)


def classify(error: VenueError | VenueUnreachable) -> Outcome:
    if isinstance(error, VenueUnreachable):
        return Outcome(code=VenueCode.UNREACHABLE, retryable=True, unknown=True)
    if isinstance(error, Throttled):
        return Outcome(code=VenueCode.THROTTLED, retryable=True, unknown=False)
    if error.status == 418:
        return Outcome(code=VenueCode.IP_BANNED, retryable=True, unknown=False)
    if error.status >= 500:
        return Outcome(code=VenueCode.OUTCOME_UNKNOWN, retryable=True, unknown=True)
    if error.code == -2010:
        text = error.msg.lower()
        for needle, code, unknown in _REJECTED:
            if needle in text:
                return Outcome(code=code, retryable=False, unknown=unknown)
    known = _BY_CODE.get(error.code)
    if known is not None:
        return Outcome(code=known[0], retryable=known[1], unknown=known[2])
    if error.status == 429:
        return Outcome(code=VenueCode.RATE_LIMITED, retryable=True, unknown=False)
    if -1199 <= error.code <= -1100:
        return Outcome(code=VenueCode.BAD_REQUEST, retryable=False, unknown=False)
    return Outcome(code=VenueCode.ERROR, retryable=False, unknown=False)


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
        limiter: RateLimiter | None = None,
        max_wait_s: float = 0.25,
        sleep: Callable[[float], None] = time.sleep,
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
        self.limiter = limiter or RateLimiter()
        # The longest a request waits for the limiter before it is a `Throttled` error
        # instead, for the caller to back off (the live feed) or give up (the router).
        self.max_wait_s = max_wait_s
        self.sleep = sleep

    @property
    def signs(self) -> bool:
        """Whether this client holds a key and secret (signed requests)."""
        return self._key is not None and self._secret is not None

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
        return self._send(method, path, encode(params or {}), headers={}, params=params)

    def signed(self, method: str, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """A SIGNED request; on -1021 (clock drift) resync once and sign again."""
        if self._key is None or self._secret is None:
            raise NjordError("this request needs API keys (NJORD_BINANCE_API_KEY / _SECRET)")
        for attempt in (1, 2):
            full = {**(params or {}), "recvWindow": self.recv_window_ms, "timestamp": self.now_ms()}
            query = signed_query(full, self._secret.reveal())
            try:
                key = {"X-MBX-APIKEY": self._key.reveal()}
                return self._send(method, path, query, headers=key, params=params)
            except VenueError as e:
                if e.code != -1021 or attempt == 2:
                    raise
                self.sync_time()
        raise AssertionError("unreachable")

    def _throttle(self, route: str, weight: int) -> None:
        wait = self.limiter.wait_s(route, weight)
        if wait > self.max_wait_s:
            raise Throttled(wait, route)
        if wait > 0:
            self.sleep(wait)

    def _send(
        self,
        method: str,
        path: str,
        query: str,
        *,
        headers: dict[str, str],
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        route = f"{method} {path}"
        weight = request_weight(route, params or {})
        self._throttle(route, weight)
        url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        self.limiter.sent(route, weight)
        try:
            response = self.http.request(method, url, headers=headers, timeout=self.timeout_s)
        except requests.RequestException as e:
            raise VenueUnreachable(f"{method} {path}: {type(e).__name__}") from None
        self.limiter.observed(response.headers)
        weight_header = response.headers.get("X-MBX-USED-WEIGHT-1M")
        if weight_header is not None:
            self.used_weight_1m = int(weight_header)
        market = response.headers.get(MARKET_TIME_HEADER)
        if market is not None:
            self.market_time_ms = int(market)
        if response.status_code >= 400:
            error = _error(response)
            if response.status_code in (418, 429):
                # Without a Retry-After, a minute: the longest a weight window can hold.
                self.limiter.told_to_wait(error.retry_after_s or 60.0)
            raise error
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
