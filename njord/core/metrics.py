"""Performance metrics (SPEC §15) from an equity curve and closed trades.

Annualisation: returns are taken over UTC days (the last equity of each day), and a
year is 365 days (crypto trades every day). Sharpe and Sortino use a zero risk-free
rate. Volatility and Sharpe are None when there are fewer than two daily returns.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import msgspec

from njord.core.time import DAY_MS, MINUTE_MS

if TYPE_CHECKING:
    from njord.core.history import Floats, Ints

YEAR_DAYS = 365


class Metrics(msgspec.Struct, kw_only=True):
    total_return: float
    cagr: float | None
    volatility: float | None
    sharpe: float | None
    sortino: float | None
    max_drawdown: float
    max_drawdown_days: float
    calmar: float | None
    trades: int
    win_rate: float | None
    profit_factor: float | None
    avg_win: float | None
    avg_loss: float | None
    largest_win: float | None
    largest_loss: float | None
    exposure: float
    fees: float
    days: float  # the span of the equity curve, first bar to the end of the last


class _Pass:
    """One streaming pass over the equity curve, a chunk of points at a time: daily
    closes, drawdown, span. Vectorised, with the scalar pass's arithmetic: each drawdown
    is the same `(peak - equity) / peak`, so the figures are the same floats."""

    def __init__(self, initial: float) -> None:
        self.closes: list[float] = [initial]
        self.day: int | None = None
        self.peak = initial
        self.peak_ts = 0
        self.worst = 0.0
        self.longest_ms = 0
        self.first_ts: int | None = None
        self.last_ts = 0
        self.last = initial
        self.n = 0

    def add(self, ts: Ints, equity: Floats) -> None:
        import numpy as np  # not at the top: `njord status` reads this module, measures nothing

        if self.first_ts is None:
            self.first_ts = self.peak_ts = int(ts[0])
        self._closes(ts, equity)
        before = np.maximum.accumulate(np.concatenate(([self.peak], equity)))[:-1]
        rising = equity >= before  # a new peak (or level with it): the clock restarts there
        under = ~rising
        if under.any():
            worst = ((before[under] - equity[under]) / before[under]).max()
            self.worst = max(self.worst, float(worst))
            last_peak = np.maximum.accumulate(np.where(rising, np.arange(len(ts)), -1))
            since = np.where(last_peak >= 0, ts[last_peak], self.peak_ts)
            self.longest_ms = max(self.longest_ms, int((ts - since)[under].max()))
        if rising.any():
            i = int(np.flatnonzero(rising)[-1])
            self.peak, self.peak_ts = float(equity[i]), int(ts[i])
        self.last_ts, self.last = int(ts[-1]), float(equity[-1])
        self.n += len(ts)

    def _closes(self, ts: Ints, equity: Floats) -> None:
        """The last equity of each UTC day (the first day's may continue a day the
        previous chunk began)."""
        import numpy as np

        days = ts // DAY_MS
        ends = np.append(np.flatnonzero(days[1:] != days[:-1]), len(days) - 1)
        closes = equity[ends].tolist()
        if days[0] == self.day:
            self.closes[-1] = closes.pop(0)
        self.closes.extend(closes)
        self.day = int(days[-1])


def columns_of(
    points: Iterable[tuple[int, float]], chunk: int = 65_536
) -> Iterator[tuple[Ints, Floats]]:
    """(ts_ms, equity) pairs as `compute` takes them: `points` may be a cursor, read `chunk`
    points at a time, never held in memory whole."""
    import numpy as np

    points = iter(points)
    while read := list(itertools.islice(points, chunk)):
        # ms timestamps are exact below 2**53; flattened, the rows convert at twice the speed
        flat = itertools.chain.from_iterable(read)
        both = np.fromiter(flat, np.float64, 2 * len(read)).reshape(-1, 2)
        yield both[:, 0].astype(np.int64), both[:, 1]


def compute(
    *,
    initial: float,
    columns: Iterable[tuple[Ints, Floats]],
    trade_pnls: Sequence[float],
    bars_in_market: int,
    fees: float,
    bar_ms: int = MINUTE_MS,
) -> Metrics:
    """`columns`: the equity curve as arrays, a chunk at a time, in time order: each
    chunk's bar times (int64 ms) and equities (float64), never empty (`columns_of` makes
    them of pairs). `bar_ms`: the length of a bar, so the span reaches the end of the last
    one.

    Drawdown starts from the initial capital, so a loss from the first bar counts."""
    run = _Pass(initial)
    for ts, equity in columns:
        run.add(ts, equity)
    final = run.last
    total = final / initial - 1
    span_days = (run.last_ts - run.first_ts + bar_ms) / DAY_MS if run.first_ts is not None else 0.0
    cagr = (
        (final / initial) ** (YEAR_DAYS / span_days) - 1 if span_days >= 1 and final > 0 else None
    )
    rets = [b / a - 1 for a, b in itertools.pairwise(run.closes) if a]
    vol = sharpe = sortino = None
    if len(rets) >= 2:
        mean = sum(rets) / len(rets)
        sd = math.sqrt(sum((r - mean) ** 2 for r in rets) / (len(rets) - 1))
        vol = sd * math.sqrt(YEAR_DAYS)
        sharpe = mean / sd * math.sqrt(YEAR_DAYS) if sd else None
        downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in rets) / len(rets))
        sortino = mean / downside * math.sqrt(YEAR_DAYS) if downside else None
    mdd = run.worst
    wins = [p for p in trade_pnls if p > 0]
    losses = [p for p in trade_pnls if p <= 0]
    n = len(trade_pnls)
    return Metrics(
        total_return=total,
        cagr=cagr,
        volatility=vol,
        sharpe=sharpe,
        sortino=sortino,
        max_drawdown=mdd,
        max_drawdown_days=run.longest_ms / DAY_MS,
        calmar=cagr / mdd if cagr is not None and mdd else None,
        trades=n,
        win_rate=len(wins) / n if n else None,
        profit_factor=sum(wins) / -sum(losses) if losses and sum(losses) < 0 else None,
        avg_win=sum(wins) / len(wins) if wins else None,
        avg_loss=sum(losses) / len(losses) if losses else None,
        largest_win=max(wins) if wins else None,
        largest_loss=min(losses) if losses else None,
        exposure=bars_in_market / run.n if run.n else 0.0,
        fees=fees,
        days=span_days,
    )
