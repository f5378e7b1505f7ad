"""Timeframes delivery and `ctx.history`: order within a minute, views, limits."""

from __future__ import annotations

import numpy as np
import pytest

from njord.core.bars import Resampler, Timeframes
from njord.core.time import MINUTE_MS
from njord.records import Bar

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC


def minutes(n: int, first: int = 0) -> list[Bar]:
    return [
        Bar(T0 + (first + i) * MINUTE_MS, 100.0 + i, 102.0 + i, 99.0 + i, 101.0 + i, 1.0 + i)
        for i in range(n)
    ]


def loaded(timeframes: tuple[str, ...], history: int, bars: list[Bar]) -> Timeframes:
    tf = Timeframes("BTCUSDT", timeframes, history)
    cols = [np.array([getattr(b, k) for b in bars]) for k in ("open", "high", "low", "close")]
    ts = np.array([b.ts_ms for b in bars], dtype=np.int64)
    tf.load(ts, *cols, np.array([b.volume for b in bars]))
    return tf


def test_bars_of_a_minute_come_shortest_first_and_history_is_up_to_date() -> None:
    bars = minutes(120)
    tf = loaded(("1h", "1m", "5m"), 4, bars)
    delivered = [[(b.timeframe, b.ts_ms) for b in tf.step(m)] for m in bars]
    assert delivered[58] == [("1m", T0 + 58 * MINUTE_MS)]
    assert delivered[59] == [
        ("1m", T0 + 59 * MINUTE_MS),
        ("5m", T0 + 55 * MINUTE_MS),
        ("1h", T0),
    ]
    assert sum(len(d) for d in delivered) == 120 + 24 + 2
    # At the end every buffer holds what was delivered, the newest last.
    five = tf.history("BTCUSDT", "5m", 4)
    assert list(five.ts) == [T0 + k * 5 * MINUTE_MS for k in (20, 21, 22, 23)]
    hourly = tf.history("BTCUSDT", "1h", 4)
    r = Resampler("1h")
    expected = [
        b for m in bars for b in r.add(m.ts_ms, m.open, m.high, m.low, m.close, m.volume, False)
    ]
    assert list(hourly.close) == [b.close for b in expected]
    assert list(hourly.volume) == [b.volume for b in expected]
    assert list(tf.history("BTCUSDT", "1m", 2).close) == [bars[-2].close, bars[-1].close]


def test_history_is_fewer_at_the_start_never_ahead_and_read_only() -> None:
    bars = minutes(10)
    tf = loaded(("1m",), 3, bars)
    tf.step(bars[0])
    first = tf.history("BTCUSDT", "1m", 3)
    assert len(first) == 1
    assert list(first.close) == [bars[0].close]  # the later minutes are loaded, not shown
    for m in bars[1:5]:
        tf.step(m)
    h = tf.history("BTCUSDT", "1m", 3)
    assert list(h.ts) == [bars[i].ts_ms for i in (2, 3, 4)]
    assert list(h.open) == [bars[i].open for i in (2, 3, 4)]
    assert list(h.high) == [bars[i].high for i in (2, 3, 4)]
    assert list(h.low) == [bars[i].low for i in (2, 3, 4)]
    with pytest.raises(ValueError, match="read-only"):
        h.close[0] = 0.0


def test_the_buffer_keeps_its_tail_across_batches_and_growth() -> None:
    bars = minutes(3 * 24 * 60)
    tf = Timeframes("BTCUSDT", ("1m", "15m"), 5)
    for lo in range(0, len(bars), 1000):  # batches, as the loop loads them
        chunk = bars[lo : lo + 1000]
        cols = [np.array([getattr(b, k) for b in chunk]) for k in ("open", "high", "low", "close")]
        tf.load(np.array([b.ts_ms for b in chunk], dtype=np.int64), *cols, np.ones(len(chunk)))
        for m in chunk:
            tf.step(m)
            assert tf.history("BTCUSDT", "1m", 1).ts[-1] == m.ts_ms
    quarter = tf.history("BTCUSDT", "15m", 5)
    last = bars[-1].ts_ms - 14 * MINUTE_MS
    assert list(quarter.ts) == [last - k * 15 * MINUTE_MS for k in (4, 3, 2, 1, 0)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ETHUSDT", "1m", 2), "no bars of 'ETHUSDT'"),
        (("BTCUSDT", "4h", 2), "no 4h history: the strategy declares"),
        (("BTCUSDT", "1m", 9), "history of 9 bars asked; the strategy keeps 3"),
    ],
)
def test_history_refuses_what_was_not_declared(args: tuple[str, str, int], message: str) -> None:
    tf = loaded(("1m", "1h"), 3, minutes(3))
    with pytest.raises(ValueError, match=message):
        tf.history(*args)


def test_timeframes_are_checked_and_history_must_be_declared() -> None:
    with pytest.raises(ValueError, match="unknown timeframe '7m'"):
        Timeframes("BTCUSDT", ("1m", "7m"), 0)
    with pytest.raises(ValueError, match="at least one timeframe"):
        Timeframes("BTCUSDT", (), 0)
    with pytest.raises(ValueError, match="declare `history`"):
        Timeframes("BTCUSDT", ("1m",), 0).history("BTCUSDT", "1m", 1)
