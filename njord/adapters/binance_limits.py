"""Binance's rate limits seen from the client: wait before the venue would refuse.

The venue counts request weight per IP per minute and new orders per account per 10 s and
per day (../shared/api/binance_spot.md §5.4), and says how much is used on every answer
(`X-MBX-USED-WEIGHT-1M`, `X-MBX-ORDER-COUNT-10S`, `-1D`). `RateLimiter` keeps our own
log of what we sent and the venue's last word, and answers how long a request must wait so
that it stays under `headroom` of each limit. A 429 or 418 sets a time before which
nothing at all is sent: sending during a Retry-After turns a 429 into an IP ban.

Our estimate of a window: what we sent in it, plus what the venue counted that we did not
send (another process on the same IP), until that answer is a window old. Binance resets
its windows on interval boundaries, so a rolling estimate can only overstate the use.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping

# Documented weights (reference §3); anything not listed weighs 1.
WEIGHTS = {
    "GET /api/v3/exchangeInfo": 20,
    "GET /api/v3/klines": 2,
    "GET /api/v3/order": 4,
    "GET /api/v3/account": 20,
}
ORDER_ROUTE = "POST /api/v3/order"


def request_weight(route: str, params: Mapping[str, object]) -> int:
    if route == "GET /api/v3/openOrders":
        return 6 if "symbol" in params else 80
    if route == "GET /api/v3/myTrades":
        return 5 if "orderId" in params else 20
    if route in ("GET /api/v3/ticker/price", "GET /api/v3/ticker/bookTicker"):
        return 2 if "symbol" in params else 4
    return WEIGHTS.get(route, 1)


class Window:
    """One limit over a rolling window: our sends, and what the venue last said it counted."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self._sent: deque[tuple[float, int]] = deque()
        self._others = 0  # counted by the venue, not sent by us
        self._others_until = 0.0

    def _ours(self, at: float) -> int:
        return sum(cost for t, cost in self._sent if t > at - self.seconds)

    def used(self, at: float) -> int:
        """The estimate at `at` (now, or a moment to come: nothing is forgotten by asking)."""
        return self._ours(at) + (self._others if at < self._others_until else 0)

    def sent(self, now: float, cost: int) -> None:
        while self._sent and self._sent[0][0] <= now - self.seconds:
            self._sent.popleft()
        self._sent.append((now, cost))

    def observed(self, now: float, used: int) -> None:
        self._others = max(0, used - self._ours(now))
        self._others_until = now + self.seconds

    def wait_s(self, now: float, cost: int, budget: int) -> float:
        """How long until `cost` more fits under `budget` (0: now)."""
        if self.used(now) + cost <= budget:
            return 0.0
        moments = sorted({t + self.seconds for t, _ in self._sent} | {self._others_until})
        for moment in moments:
            if moment > now and self.used(moment) + cost <= budget:
                return moment - now
        return self.seconds  # more than the whole budget: a window from now it is all free


class RateLimiter:
    def __init__(
        self,
        *,
        weight_1m: int = 6000,
        orders_10s: int = 100,
        orders_1d: int = 200_000,
        headroom: float = 0.9,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.headroom = headroom
        self.clock = clock
        self.weight = Window(weight_1m, 60.0)
        self.orders_10s = Window(orders_10s, 10.0)
        self.orders_1d = Window(orders_1d, 86_400.0)
        self.blocked_until = 0.0  # a Retry-After from the venue runs until then
        self._lock = threading.Lock()

    def set_limits(self, *, weight_1m: int, orders_10s: int, orders_1d: int) -> None:
        """The venue's own numbers, from exchangeInfo's rateLimits."""
        with self._lock:
            self.weight.limit = weight_1m
            self.orders_10s.limit = orders_10s
            self.orders_1d.limit = orders_1d

    def wait_s(self, route: str, weight: int) -> float:
        """How long this request must wait before it is sent."""
        with self._lock:
            now = self.clock()
            waits = [self.blocked_until - now, self._wait(self.weight, now, weight)]
            if route == ORDER_ROUTE:
                waits += [self._wait(w, now, 1) for w in (self.orders_10s, self.orders_1d)]
            return max(0.0, *waits)

    def _wait(self, window: Window, now: float, cost: int) -> float:
        budget = max(1, math.floor(window.limit * self.headroom))
        return window.wait_s(now, cost, budget)

    def sent(self, route: str, weight: int) -> None:
        with self._lock:
            now = self.clock()
            self.weight.sent(now, weight)
            if route == ORDER_ROUTE:
                self.orders_10s.sent(now, 1)
                self.orders_1d.sent(now, 1)

    def observed(self, headers: Mapping[str, str]) -> None:
        with self._lock:
            now = self.clock()
            for name, window in (
                ("X-MBX-USED-WEIGHT-1M", self.weight),
                ("X-MBX-ORDER-COUNT-10S", self.orders_10s),
                ("X-MBX-ORDER-COUNT-1D", self.orders_1d),
            ):
                value = headers.get(name)
                if value is not None and value.isdigit():
                    window.observed(now, int(value))

    def told_to_wait(self, seconds: float) -> None:
        """A 429 or 418: nothing is sent before `seconds` from now."""
        with self._lock:
            self.blocked_until = max(self.blocked_until, self.clock() + seconds)
