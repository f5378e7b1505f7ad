"""Binance's rate limits on the venue (wall) clock: request weight, IP bans, order counts.

- REQUEST_WEIGHT: 6000 per minute. Over it: 429 / -1003 with `Retry-After` (seconds until
  enough weight leaves the window). A request sent before that Retry-After has passed
  ignores the 429 and earns a 418 IP ban: 2 minutes, doubling with each ban, at most
  3 days (reference §5.1); during a ban every request is 418 with the time left.
- ORDERS: 100 per 10 seconds and 200,000 per day, answered 429 / -1015; the counts ride on
  every order response as `X-MBX-ORDER-COUNT-10S` / `-1D`.

Windows roll (the last 60 s, 10 s, 24 h) where Binance's reset on interval boundaries: a
test cannot then straddle a boundary and see half its requests in each window.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from njord.sim.errors import ApiError

WEIGHT_LIMIT_1M = 6000
ORDERS_LIMIT_10S = 100
ORDERS_LIMIT_1D = 200_000
FIRST_BAN_S = 120
LONGEST_BAN_S = 3 * 86_400


def _whole_s(seconds: float) -> int:
    """Seconds rounded up, after rounding to the millisecond: `(now + 120) - now` can come out
    as 120.00000000001 in floating point, and a 2-minute ban must say 120, not 121. At least
    1: a refusal never says "retry after 0"."""
    return max(math.ceil(round(seconds, 3)), 1)


class RateLimits:
    def __init__(
        self, *, weight_limit: int = WEIGHT_LIMIT_1M, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.weight_limit = weight_limit
        self._clock = clock
        self._weights: deque[tuple[float, int]] = deque()
        self._used = 0
        self._orders: deque[float] = deque()
        self._told_until = 0.0  # a 429's Retry-After runs until then
        self._banned_until = 0.0
        self._bans = 0
        self._lock = threading.Lock()

    def charge(self, weight: int) -> int:
        """Count a request's weight; the weight used in the last minute, or a 429 / 418."""
        with self._lock:
            now = self._clock()
            if now < self._told_until and now >= self._banned_until:
                self._bans += 1
                ban_s = min(FIRST_BAN_S * 2 ** (self._bans - 1), LONGEST_BAN_S)
                self._banned_until = now + ban_s
            if now < self._banned_until:
                raise self._banned(now)
            while self._weights and self._weights[0][0] <= now - 60:
                self._used -= self._weights.popleft()[1]
            if self._used + weight > self.weight_limit:
                wait_s = _whole_s(self._weights[0][0] + 60 - now) if self._weights else 1
                self._told_until = now + wait_s
                raise ApiError(
                    429,
                    -1003,
                    f"Too much request weight used; current limit is {self.weight_limit} "
                    "request weight per 1 MINUTE. Please use WebSocket Streams for live "
                    "updates to avoid polling the API.",
                    retry_after_s=wait_s,
                    headers={"X-MBX-USED-WEIGHT-1M": str(self._used)},
                )
            self._weights.append((now, weight))
            self._used += weight
            return self._used

    def _banned(self, now: float) -> ApiError:
        until_ms = (time.time() + self._banned_until - now) * 1000
        return ApiError(
            418,
            -1003,
            f"Way too much request weight used; IP banned until {int(until_ms)}. Please use "
            "WebSocket Streams for live updates to avoid bans.",
            retry_after_s=_whole_s(self._banned_until - now),
            headers={"X-MBX-USED-WEIGHT-1M": str(self._used)},
        )

    def count_order(self) -> None:
        """One more new order, or -1015 when a window is full (the order is then not sent)."""
        with self._lock:
            now = self._clock()
            self._expire_orders(now)
            recent = sum(1 for t in self._orders if t > now - 10)
            for count, limit, interval, seconds in (
                (recent, ORDERS_LIMIT_10S, "10 SECOND", 10.0),
                (len(self._orders), ORDERS_LIMIT_1D, "DAY", 86_400.0),
            ):
                if count >= limit:
                    first = next(t for t in self._orders if t > now - seconds)
                    raise ApiError(
                        429,
                        -1015,
                        f"Too many new orders; current limit is {limit} orders per {interval}.",
                        retry_after_s=_whole_s(first + seconds - now),
                    )
            self._orders.append(now)

    def order_headers(self) -> dict[str, str]:
        with self._lock:
            now = self._clock()
            self._expire_orders(now)
            recent = sum(1 for t in self._orders if t > now - 10)
            return {
                "X-MBX-ORDER-COUNT-10S": str(recent),
                "X-MBX-ORDER-COUNT-1D": str(len(self._orders)),
            }

    def _expire_orders(self, now: float) -> None:
        while self._orders and self._orders[0] <= now - 86_400:
            self._orders.popleft()
