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

DAY_MS = 86_400_000
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


def daily_closes(points: Iterable[tuple[int, float]]) -> list[float]:
    closes: list[float] = []
    day = None
    for ts, equity in points:
        if ts // DAY_MS != day:
            closes.append(equity)
            day = ts // DAY_MS
        else:
            closes[-1] = equity
    return closes


def drawdown(points: Sequence[tuple[int, float]], initial: float) -> tuple[float, float]:
    """(max drawdown as a positive fraction, longest time under water in days).

    The starting capital is the first peak: losing from the first bar on is a drawdown."""
    peak, peak_ts, worst, longest = initial, points[0][0] if points else 0, 0.0, 0
    for ts, equity in points:
        if equity >= peak:
            peak, peak_ts = equity, ts
        else:
            worst = max(worst, (peak - equity) / peak)
            longest = max(longest, ts - peak_ts)
    return worst, longest / DAY_MS


def compute(
    *,
    initial: float,
    points: Sequence[tuple[int, float]],
    trade_pnls: Sequence[float],
    bars_in_market: int,
    fees: float,
) -> Metrics:
    final = points[-1][1] if points else initial
    total = final / initial - 1
    span_days = (points[-1][0] - points[0][0] + 60_000) / DAY_MS if points else 0.0
    cagr = (
        (final / initial) ** (YEAR_DAYS / span_days) - 1 if span_days >= 1 and final > 0 else None
    )
    closes = [initial, *daily_closes(points)]
    rets = [b / a - 1 for a, b in itertools.pairwise(closes) if a]
    vol = sharpe = sortino = None
    if len(rets) >= 2:
        mean = sum(rets) / len(rets)
        sd = math.sqrt(sum((r - mean) ** 2 for r in rets) / (len(rets) - 1))
        vol = sd * math.sqrt(YEAR_DAYS)
        sharpe = mean / sd * math.sqrt(YEAR_DAYS) if sd else None
        downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in rets) / len(rets))
        sortino = mean / downside * math.sqrt(YEAR_DAYS) if downside else None
    mdd, mdd_days = drawdown(points, initial)
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
        max_drawdown_days=mdd_days,
        calmar=cagr / mdd if cagr is not None and mdd else None,
        trades=n,
        win_rate=len(wins) / n if n else None,
        profit_factor=sum(wins) / -sum(losses) if losses and sum(losses) < 0 else None,
        avg_win=sum(wins) / len(wins) if wins else None,
        avg_loss=sum(losses) / len(losses) if losses else None,
        largest_win=max(wins) if wins else None,
        largest_loss=min(losses) if losses else None,
        exposure=bars_in_market / len(points) if points else 0.0,
        fees=fees,
    )
