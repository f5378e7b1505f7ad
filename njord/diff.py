"""`njord diff A B`: align two sessions bar by bar and explain every difference.

Intents are matched by (bar, sequence within the bar); fills through the intent that
made their order. Each difference gets one cause, checked in this order: different bar
data, different decision, different risk verdict, different timing, different fill
price, different fee.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec

from njord.data.history import StoredFeed
from njord.data.qc import utc
from njord.store import db, history
from njord.store.db import Connection
from njord.store.history import StoredFill, StoredIntent, stored_bar_blobs


class Difference(msgspec.Struct, frozen=True, kw_only=True):
    bar_ts_ms: int
    bar_utc: str
    what: str
    cause: str
    a: str
    b: str


class Report(msgspec.Struct, kw_only=True):
    first: Difference | None
    differences: list[Difference]
    bars_compared: int
    intents_compared: int


def diff(path_a: Path, path_b: Path) -> Report:
    a, b = db.open_reader(path_a), db.open_reader(path_b)
    try:
        bad_bars, compared = _bar_differences(a, b)
        found = list(_intent_differences(a, b, bad_bars))
        intents = max(history.row_count(a, "intents"), history.row_count(b, "intents"))
    finally:
        a.close()
        b.close()
    found.sort(key=lambda d: (d.bar_ts_ms, d.what))
    if bad_bars and not found:
        first_bar = min(bad_bars)
        found.append(
            Difference(
                bar_ts_ms=first_bar,
                bar_utc=utc(first_bar),
                what="bars",
                cause="different bar data",
                a="",
                b="",
            )
        )
    return Report(
        first=found[0] if found else None,
        differences=found,
        bars_compared=compared,
        intents_compared=intents,
    )


Row = tuple[int, str, float, float, float, float, float]


def _iter_bars(conn: Connection) -> Iterator[Row]:
    """(time, symbol, prices, volume) of every stored bar, by time then symbol ('' with
    one symbol)."""
    for batch in StoredFeed(stored_bar_blobs(conn), symbol="").batches():
        symbols = batch.symbol or [""] * batch.n
        yield from sorted(
            zip(
                batch.ts_ms,
                symbols,
                batch.open,
                batch.high,
                batch.low,
                batch.close,
                batch.volume,
                strict=True,
            )
        )


def _bar_differences(a: Connection, b: Connection) -> tuple[set[int], int]:
    """Walks both sessions' stored bars in step: memory stays flat for long sessions."""
    bars_a, bars_b = _iter_bars(a), _iter_bars(b)
    x, y = next(bars_a, None), next(bars_b, None)
    bad, compared = set(), 0
    while x is not None and y is not None:
        if x[:2] == y[:2]:
            compared += 1
            if x != y:
                bad.add(x[0])
            x, y = next(bars_a, None), next(bars_b, None)
        elif x[:2] < y[:2]:
            x = next(bars_a, None)
        else:
            y = next(bars_b, None)
    return bad, compared


def _intent_differences(a: Connection, b: Connection, bad_bars: set[int]) -> Iterator[Difference]:
    ia, ib, fa, fb = (
        history.intents_by_bar(a),
        history.intents_by_bar(b),
        history.fills_by_order(a),
        history.fills_by_order(b),
    )
    for key in sorted(ia.keys() | ib.keys()):
        bar = key[0]
        x, y = ia.get(key), ib.get(key)
        data_cause = "different bar data" if bar in bad_bars else None
        if x is None or y is None or _decision(x) != _decision(y):
            yield _diff(bar, "intent", data_cause or "different decision", _show(x), _show(y))
            continue
        if x.reason != y.reason:
            yield _diff(bar, "verdict", data_cause or "different risk verdict", x.reason, y.reason)
            continue
        fill_x, fill_y = fa.get(x.client_order_id or ""), fb.get(y.client_order_id or "")
        if fill_x != fill_y:
            cause = data_cause or _fill_cause(fill_x, fill_y)
            yield _diff(bar, "fill", cause, _show_fill(fill_x), _show_fill(fill_y))


def _decision(intent: StoredIntent) -> tuple[str, str, int, int | None]:
    return intent.side, intent.type, intent.qty_e8, intent.limit_e8


def _fill_cause(x: StoredFill | None, y: StoredFill | None) -> str:
    if x is None or y is None or x.ts_ms != y.ts_ms:
        return "different timing"
    if x.price_e8 != y.price_e8:
        return "different fill price"
    if x.fee_e8 != y.fee_e8:
        return "different fee"
    return "different fill quantity"


def _diff(bar: int, what: str, cause: str, a: str, b: str) -> Difference:
    return Difference(bar_ts_ms=bar, bar_utc=utc(bar), what=what, cause=cause, a=a, b=b)


def _show(intent: StoredIntent | None) -> str:
    if intent is None:
        return "(none)"
    limit = f" @{intent.limit_e8 / 1e8:g}" if intent.limit_e8 is not None else ""
    shown = f"{intent.side} {intent.qty_e8 / 1e8:g} {intent.type}{limit} {intent.reason}"
    # Several strategies: whose intent, on which symbol.
    return f"{intent.strategy_id} {intent.symbol} {shown}" if intent.strategy_id else shown


def _show_fill(fill: StoredFill | None) -> str:
    if fill is None:
        return "(no fill)"
    ts, qty, price, fee = fill
    return f"{qty / 1e8:g} @ {price / 1e8:.2f} fee {fee / 1e8:.8f} at {utc(ts)}"
