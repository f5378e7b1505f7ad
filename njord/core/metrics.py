"""Performance metrics (SPEC §15) from an equity curve and closed trades.

Annualisation: returns are taken over UTC days (the last equity of each day), and a
year is 365 days (crypto trades every day). Sharpe and Sortino use a zero risk-free
rate. Volatility and Sharpe are None when there are fewer than two daily returns.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence

import msgspec

from njord.core.time import DAY_MS, MINUTE_MS, day_index

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
    """One streaming pass over the equity curve: daily closes, drawdown, span."""

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

    def add(self, ts: int, equity: float) -> None:
        if self.first_ts is None:
            self.first_ts = self.peak_ts = ts
        if day_index(ts) != self.day:
            self.closes.append(equity)
            self.day = day_index(ts)
        else:
            self.closes[-1] = equity
        if equity >= self.peak:
            self.peak, self.peak_ts = equity, ts
        else:
            self.worst = max(self.worst, (self.peak - equity) / self.peak)
            self.longest_ms = max(self.longest_ms, ts - self.peak_ts)
        self.last_ts, self.last = ts, equity
        self.n += 1


def compute(
    *,
    initial: float,
    points: Iterable[tuple[int, float]],
    trade_pnls: Sequence[float],
    bars_in_market: int,
    fees: float,
    bar_ms: int = MINUTE_MS,
) -> Metrics:
    """`points` may be a cursor: it is read once and never held in memory. `bar_ms`: the
    length of a bar, so the span reaches the end of the last one.

    Drawdown starts from the initial capital, so a loss from the first bar counts."""
    run = _Pass(initial)
    for ts, equity in points:
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
