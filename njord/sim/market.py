"""The replayed market: the market clock, and per symbol its bars, filters and klines.

Two clocks, kept apart as on a real venue seen through a replay:

- the **venue clock** is wall time: request timestamps and `recvWindow`, rate-limit
  windows, `serverTime`, order `transactTime` / `updateTime`, trade times. Any client
  that signs with the machine's clock (Binance's own connector does) works unchanged.
- the **market clock** says which replayed bar is the latest closed one: `--start` plus
  wall time x `--speed`, plus whatever `/sim/advance` added (`--speed 0` moves only then).
"""

from __future__ import annotations

import math
import threading
import time
from bisect import bisect_left, bisect_right
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from njord.core.time import MINUTE_MS, TIMEFRAMES
from njord.data.history import HistoryFeed
from njord.errors import ConfigError

# Kline intervals served, aggregated from the 1-minute data on UTC boundaries: the
# timeframes njord derives (Binance serves these and a few more: 6h, 8h, 12h, 3d, 1w, 1M).
INTERVALS_MS = dict(TIMEFRAMES)

Row = tuple[int, float, float, float, float, float]  # open time, o, h, l, c, volume


def venue_now_ms() -> int:
    """The venue clock: wall time, as Binance's `serverTime` is."""
    return time.time_ns() // 1_000_000


class MarketClock:
    """Market time: accelerated (`speed`) from `start_ms`, plus explicit steps."""

    def __init__(self, *, start_ms: int, speed: float) -> None:
        self.start_ms = start_ms
        self.speed = speed
        self._wall0 = time.monotonic()
        self._stepped_ms = 0
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        elapsed = (time.monotonic() - self._wall0) * 1000 * self.speed
        return int(self.start_ms + elapsed + self._stepped_ms)

    def advance(self, minutes: float) -> int:
        with self._lock:
            self._stepped_ms += int(minutes * MINUTE_MS)
        return self.now_ms()


class Filters(msgspec.Struct, frozen=True, kw_only=True):
    tick: Decimal = Decimal("0.01")
    min_price: Decimal = Decimal("0.01")
    max_price: Decimal = Decimal("1000000")
    step: Decimal = Decimal("0.00001")
    min_qty: Decimal = Decimal("0.00001")
    max_qty: Decimal = Decimal("9000")
    market_max_qty: Decimal = Decimal("100")
    min_notional: Decimal = Decimal("5")
    max_num_orders: int = 200  # open orders on the symbol per account, as Binance's

    @classmethod
    def for_price(cls, price: float) -> Filters:
        """Filters scaled to a symbol's price level, as Binance sets them per symbol:
        BTCUSDT (~42,000) gets step 0.00001 and tick 0.01, ETHUSDT (~2,300) step 0.0001."""
        digits = math.floor(math.log10(price)) if price > 0 else 0
        scale = Decimal(10) ** (4 - digits)  # 1 for a five-digit price
        tick = Decimal("0.01") if digits >= 2 else Decimal(10) ** (digits - 4)
        return cls(
            tick=tick,
            min_price=tick,
            step=Decimal("0.00001") * scale,
            min_qty=Decimal("0.00001") * scale,
            max_qty=Decimal(9000) * scale,
            market_max_qty=Decimal(100) * scale,
        )


class Market:
    """One symbol's replayed 1-minute bars on the shared market clock."""

    def __init__(
        self,
        data: Path,
        *,
        symbol: str,
        base: str,
        quote: str,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> None:
        """`start_ms` / `end_ms`: replay only the bars opening in that range (`njord
        torture` gives a session exactly the bars it is to trade)."""
        ts: list[int] = []
        rows: list[Row] = []
        feed = HistoryFeed(data, symbol=symbol, gaps="none", start_ms=start_ms, end_ms=end_ms)
        for batch in feed.batches():
            ts += batch.ts_ms
            rows += zip(
                batch.ts_ms,
                batch.open,
                batch.high,
                batch.low,
                batch.close,
                batch.volume,
                strict=True,
            )
        if not rows:
            raise ConfigError(f"--data {symbol}={data}: no bars to replay")
        self.symbol, self.base, self.quote = symbol, base, quote
        self.ts, self.rows = ts, rows
        self.filters = Filters() if symbol == "BTCUSDT" else Filters.for_price(rows[0][4])
        self.hidden: list[tuple[int, int, bool]] = []  # (from, to, permanently) outages

    def closed_count(self, now_ms: int) -> int:
        """How many bars have closed by `now_ms` (a bar closes a minute after it opens)."""
        return bisect_right(self.ts, now_ms - MINUTE_MS)

    def last_close(self, now_ms: int) -> Decimal:
        """The reference price: the latest closed bar's close (the first open before any)."""
        count = self.closed_count(now_ms)
        return Decimal(str(self.rows[count - 1][4] if count else self.rows[0][1]))

    def _hidden(self, t: int, now_ms: int) -> bool:
        return any(a <= t < b and (forever or now_ms < b) for a, b, forever in self.hidden)

    def _buckets(
        self, interval_ms: int, now_ms: int, lo_ms: int, hi_ms: int
    ) -> dict[int, list[Row]]:
        """The visible closed minutes opening in [lo_ms, hi_ms), by `interval_ms` bucket."""
        i, j = (
            bisect_left(self.ts, lo_ms),
            min(bisect_left(self.ts, hi_ms), self.closed_count(now_ms)),
        )
        buckets: dict[int, list[Row]] = {}
        for row in self.rows[i:j]:
            if not self._hidden(row[0], now_ms):
                buckets.setdefault(row[0] - row[0] % interval_ms, []).append(row)
        return buckets

    def forming(self, now_ms: int) -> Row | None:
        """The minute that is open now, as far as it has formed: its open price only."""
        i = bisect_left(self.ts, now_ms - now_ms % MINUTE_MS)
        if i == len(self.ts) or self.ts[i] > now_ms or self._hidden(self.ts[i], now_ms):
            return None
        open_ = self.rows[i][1]
        return (self.ts[i], open_, open_, open_, open_, 0.0)

    def klines(
        self, interval_ms: int, now_ms: int, *, start: int | None, end: int | None, limit: int
    ) -> list[list[Any]]:
        """Up to `limit` bars of `interval_ms`, aggregated on UTC boundaries, identified by
        their open time: from `start` on, else the latest up to `end`. Without `end` the
        open bar comes last, as on Binance (its closeTime is in the future)."""
        open_start = now_ms - now_ms % interval_ms
        last = open_start if end is None else min(open_start, end - end % interval_ms)
        if start is not None:
            first = start + (-start) % interval_ms
            buckets = self._buckets(interval_ms, now_ms, first, first + limit * interval_ms)
        else:
            span = limit * interval_ms
            while True:
                lo = last - span + interval_ms
                buckets = self._buckets(interval_ms, now_ms, lo, last + interval_ms)
                if len(buckets) >= limit or lo <= self.ts[0]:
                    break
                span *= 2  # outages and data gaps: reach further back for `limit` bars
        if end is None:
            forming = self.forming(now_ms)
            if forming is not None:
                buckets.setdefault(open_start, []).append(forming)
        else:
            buckets.pop(open_start, None)
        chosen = sorted(t for t in buckets if t <= last and (start is None or t >= start))
        chosen = chosen[:limit] if start is not None else chosen[-limit:]
        return [_kline(t, interval_ms, buckets[t]) for t in chosen]


def _kline(open_ms: int, interval_ms: int, rows: list[Row]) -> list[Any]:
    volume = sum(r[5] for r in rows)
    return [
        open_ms,
        f"{rows[0][1]:.8f}",
        f"{max(r[2] for r in rows):.8f}",
        f"{min(r[3] for r in rows):.8f}",
        f"{rows[-1][4]:.8f}",
        f"{volume:.8f}",
        open_ms + interval_ms - 1,
        f"{sum(r[5] * r[4] for r in rows):.8f}",
        0,
        "0.00000000",
        "0.00000000",
        "0",
    ]


def split_symbol(symbol: str) -> tuple[str, str]:
    """BTCUSDT -> (BTC, USDT), by the quote assets Binance lists most."""
    for quote in ("USDT", "USDC", "FDUSD", "BUSD", "BTC", "ETH", "BNB", "EUR"):
        if symbol.endswith(quote) and symbol != quote:
            return symbol[: -len(quote)], quote
    raise ValueError(f"cannot tell the base and quote assets of {symbol!r}")
