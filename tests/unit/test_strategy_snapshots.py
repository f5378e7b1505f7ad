"""State snapshots (issue 13 item 5): a strategy and what it was fed, restored into fresh
instances after any bar, decide every later bar exactly as an uninterrupted run.

The harness feeds real minutes (the sample month) the way `njord.loop._step` does: `load`
a batch of 1-minute bars, then per minute `timeframes.step(bar)` and `on_bar` for each
view, with a fake book that fills every intent at its minute's close, so the sizing and
the holding checks follow the run."""

from __future__ import annotations

import re
import sys
import types
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pytest

from njord import strategies
from njord.core.bars import Timeframes, TimeframesSnapshot
from njord.core.money import E8, to_e8
from njord.core.strategy import Context, PortfolioView, Strategy
from njord.data.history import HistoryFeed
from njord.errors import StrategyError
from njord.records import Bar, OrderIntent, Side
from tests.conftest import ROOT, SAMPLE

SYMBOL = "BTCUSDT"
HOUR = 60
DAY = 1440
SPAN = 8 * DAY  # of the sample month: enough trades, and the two slow samples stay cheap
# Bars after which a run is cut: before any history is full; a day's last minute (1m, 1h
# and 1d bars all just delivered); mid-hour; mid-4h and just before an hour ends.
CUTS = (7, 2 * DAY - 1, 4 * DAY + 10 * HOUR + 37, 6 * DAY + 2 * HOUR + 58)
SAMPLES = ("sma_crossover", "trendline_break", "rsi_tema_bb")
CASES = [(name, tfs) for name in SAMPLES for tfs in ((), ("1m", "1h"))]
IDS = [f"{name}-{'+'.join(tfs) or 'default'}" for name, tfs in CASES]

Decided = tuple[int, str, OrderIntent]  # (minute, the view's timeframe, intent)
Snapshot = tuple[bytes, bytes, dict[str, int]]  # strategy, timeframes, the fake book


class Minutes(msgspec.Struct, frozen=True):
    columns: tuple[Any, ...]  # ts, open, high, low, close, volume: numpy arrays
    filled: list[int]

    def __len__(self) -> int:
        return len(self.filled)

    def arrays(self, lo: int, hi: int) -> tuple[Any, ...]:
        return tuple(c[lo:hi] for c in self.columns)

    def bar(self, i: int) -> Bar:
        ts, *prices = (c[i].item() for c in self.columns)
        return Bar(ts, *prices, "1m", 1, self.filled[i])

    def without(self, *holes: tuple[int, int]) -> Minutes:
        """The same minutes less some ranges: gaps the resampler jumps over."""
        keep = np.ones(len(self), bool)
        for lo, hi in holes:
            keep[lo:hi] = False
        filled = [f for f, k in zip(self.filled, keep, strict=True) if k]
        return Minutes(tuple(c[keep] for c in self.columns), filled)


@pytest.fixture(scope="module")
def minutes() -> Minutes:
    feed = HistoryFeed(SAMPLE, symbol=SYMBOL, gaps="forward")
    table = pa.Table.from_batches(list(feed.checked_batches())).slice(0, SPAN)
    names = ("ts_ms", "open", "high", "low", "close", "volume")
    filled = [int(x) for x in table.column("synthetic").to_pylist()]
    return Minutes(tuple(table.column(c).to_numpy() for c in names), filled)


class Session:
    """One strategy, its `Timeframes` and a fake book, fed like the loop feeds them."""

    def __init__(self, name: str, tfs: tuple[str, ...], book: dict[str, int]) -> None:
        self.strategy = strategies.build(name, {})
        declared = tfs or self.strategy.timeframes
        self.timeframes = Timeframes(SYMBOL, declared, self.strategy.history)
        self.book = dict(book)
        self.ctx = Context(
            params=self.strategy.params,
            state=PortfolioView(
                cash_e8=lambda: self.book["cash"],
                position_e8=lambda s: self.book["pos"],
                open_orders=list,
            ),
            log=lambda m: None,
            history=self.timeframes.history,
        )

    def feed(self, minutes: Minutes, lo: int, hi: int, batch: int) -> list[Decided]:
        """Minutes [lo, hi), loaded `batch` at a time as a feed's batches would be."""
        out: list[Decided] = []
        for start in range(lo, hi, batch):
            stop = min(start + batch, hi)
            if self.timeframes.wants_batches:
                self.timeframes.load(*minutes.arrays(start, stop))
            for i in range(start, stop):
                out += self.step(minutes.bar(i), i)
        return out

    def step(self, bar: Bar, i: int) -> list[Decided]:
        self.ctx.now_ms = bar.ts_ms
        decided = []
        for view in self.timeframes.step(bar):
            intents = self.strategy.on_bar(self.ctx, SYMBOL, view)
            decided += [(i, view.timeframe, x) for x in intents + self.ctx.take_submitted()]
        for _, _, intent in decided:
            qty = to_e8(intent.qty)
            sign = 1 if intent.side is Side.BUY else -1
            self.book["pos"] += sign * qty
            self.book["cash"] -= sign * qty * round(bar.close * E8) // E8
        return decided

    def snapshot(self) -> Snapshot:
        state = self.strategy.snapshot_state()
        assert state is not None
        return state, self.timeframes.snapshot(), dict(self.book)


def restored(name: str, tfs: tuple[str, ...], snapshot: Snapshot) -> Session:
    state, fed, book = snapshot
    session = Session(name, tfs, book)
    session.strategy.restore_state(state)
    session.timeframes.restore(fed)
    return session


def uninterrupted(
    minutes: Minutes, name: str, tfs: tuple[str, ...]
) -> tuple[list[Decided], dict[int, Snapshot]]:
    """All the minutes in one run (one-week batches, as `HistoryFeed` reads them), with
    a snapshot after each cut."""
    session = Session(name, tfs, {"cash": 10_000 * E8, "pos": 0})
    decided: list[Decided] = []
    snapshots = {}
    lo = 0
    for cut in CUTS:
        decided += session.feed(minutes, lo, cut + 1, 7 * DAY)
        snapshots[cut] = session.snapshot()
        lo = cut + 1
    decided += session.feed(minutes, lo, len(minutes), 7 * DAY)
    return decided, snapshots


@pytest.mark.parametrize(("name", "tfs"), CASES, ids=IDS)
def test_a_restored_strategy_decides_every_later_bar_as_an_uninterrupted_run(
    minutes: Minutes, name: str, tfs: tuple[str, ...]
) -> None:
    decided, snapshots = uninterrupted(minutes, name, tfs)
    assert len({i for i, _, _ in decided}) >= 4, "a sample that never trades proves little"
    # Each restored run is compared intent by intent up to the next cut, where its state
    # must be the uninterrupted run's to the byte; from there on the runs are one (and
    # the next cut's restored run checks that stretch). The last runs to the end.
    ends = [*CUTS[1:], len(minutes) - 1]
    for cut, end in zip(CUTS, ends, strict=True):
        session = restored(name, tfs, snapshots[cut])
        assert session.snapshot() == snapshots[cut]
        # Batches split elsewhere than the uninterrupted run's: that must not matter.
        got = session.feed(minutes, cut + 1, end + 1, 5000)
        assert got == [d for d in decided if cut < d[0] <= end], f"restored after bar {cut}"
        if end in snapshots:  # the same state, reached another way: the same bytes
            assert session.snapshot() == snapshots[end], f"restored after {cut}, at {end}"


# What the session feeds a strategy: the bars in progress and the history windows.

Delivered = tuple[list[Bar], dict[str, tuple[bytes, ...]]]  # views, windows (exact bytes)


def fed(timeframes: Timeframes, minutes: Minutes, lo: int, hi: int) -> list[Delivered]:
    """Every minute's views and, after it, every declared timeframe's whole window."""
    out = []
    for start in range(lo, hi, 3000):
        stop = min(start + 3000, hi)
        if timeframes.wants_batches:
            timeframes.load(*minutes.arrays(start, stop))
        for i in range(start, stop):
            views = timeframes.step(minutes.bar(i))
            windows = {}
            for tf in timeframes.declared if timeframes.size else ():
                h = timeframes.history(SYMBOL, tf, timeframes.size)
                windows[tf] = tuple(
                    a.tobytes() for a in (h.ts, h.open, h.high, h.low, h.close, h.volume)
                )
            out.append((views, windows))
    return out


@pytest.mark.parametrize(
    ("declared", "history"),
    [(("1m", "3m", "1h", "4h", "1d"), 40), (("1h", "4h"), 3), (("1m", "1h"), 0)],
)
def test_restored_timeframes_deliver_the_same_bars_and_windows(
    minutes: Minutes, declared: tuple[str, ...], history: int
) -> None:
    # Two outages: one from 21 minutes into an hour to past its end, one across midnight.
    # A run restored just before each delivers the bars in progress, stale, from the
    # snapshot; one more cut is mid-hour.
    day, rest = DAY + 10 * HOUR, (3 * DAY, len(minutes))
    gappy = minutes.without((day + 21, day + HOUR + 5), (2 * DAY - 10, 2 * DAY + 20), rest)
    jumps = [int(i) for i in np.flatnonzero(np.diff(gappy.columns[0]) > 60_000)]
    cuts = [5 * HOUR + 17, *jumps]
    assert len(cuts) == 3
    whole = Timeframes(SYMBOL, declared, history)
    want: list[Delivered] = []
    snapshots = {}
    for lo, cut in zip([0, *(c + 1 for c in cuts)], cuts, strict=False):
        want += fed(whole, gappy, lo, cut + 1)
        snapshots[cut] = whole.snapshot()
    want += fed(whole, gappy, cuts[-1] + 1, len(gappy))
    assert any(not bar.complete for views, _ in want for bar in views)
    for cut in cuts:
        again = Timeframes(SYMBOL, declared, history)
        again.restore(snapshots[cut])
        assert again.snapshot() == snapshots[cut]
        assert fed(again, gappy, cut + 1, len(gappy)) == want[cut + 1 :], f"after {cut}"


# Refusals: bytes that are not this strategy's, or this session's, never half-restore.


WARM = 3 * HOUR + 17


def warmed(minutes: Minutes, name: str, tfs: tuple[str, ...] = ()) -> Session:
    session = Session(name, tfs, {"cash": 10_000 * E8, "pos": 0})
    session.feed(minutes, 0, WARM, DAY)
    return session


BAD_BLOBS = [b"", b"\x00", b"not msgpack at all", msgspec.msgpack.encode([1, 2, 3])]


@pytest.mark.parametrize("name", SAMPLES)
@pytest.mark.parametrize("blob", BAD_BLOBS)
def test_a_bad_blob_is_a_strategy_error(name: str, blob: bytes) -> None:
    with pytest.raises(StrategyError, match="not a njord strategy state snapshot"):
        strategies.build(name, {}).restore_state(blob)
    timeframes = Timeframes(SYMBOL, ("1m", "1h"), 10)
    with pytest.raises(StrategyError, match="not a njord timeframes snapshot"):
        timeframes.restore(blob)


def test_a_snapshot_restores_only_its_own_class_params_and_timeframes(minutes: Minutes) -> None:
    sma, rsi = warmed(minutes, "sma_crossover"), warmed(minutes, "rsi_tema_bb")
    state, fed_bytes, _ = sma.snapshot()
    with pytest.raises(StrategyError, match="of SmaCrossover cannot restore RsiTemaBollinger"):
        strategies.build("rsi_tema_bb", {}).restore_state(state)
    with pytest.raises(StrategyError, match="SmaCrossover state snapshot was taken under other"):
        strategies.build("sma_crossover", {"fast": 11}).restore_state(state)
    with pytest.raises(StrategyError, match="not a njord strategy state snapshot"):
        strategies.build("sma_crossover", {}).restore_state(fed_bytes)
    with pytest.raises(StrategyError, match="not a njord timeframes snapshot"):
        Timeframes(SYMBOL, ("1m",), sma.strategy.history).restore(state)
    with pytest.raises(StrategyError, match=r"\('BTCUSDT', '1m', \('1m',\), 31\) cannot restore"):
        Timeframes(SYMBOL, ("1m",), rsi.strategy.history).restore(fed_bytes)
    with pytest.raises(StrategyError, match="cannot restore"):
        Timeframes("ETHUSDT", ("1m",), sma.strategy.history).restore(fed_bytes)


def test_a_timeframes_snapshot_that_does_not_hold_changes_nothing(minutes: Minutes) -> None:
    timeframes = Timeframes(SYMBOL, ("1m", "1h"), 5)
    fed(timeframes, minutes, 0, HOUR + 30)
    good = timeframes.snapshot()
    state = msgspec.msgpack.decode(good, type=TimeframesSnapshot)
    [partial] = state.partial
    broken = [
        msgspec.structs.replace(state, format=2),
        msgspec.structs.replace(state, partial=(msgspec.structs.replace(partial, n=60),)),
        msgspec.structs.replace(state, partial=(msgspec.structs.replace(partial, start_ms=7),)),
        msgspec.structs.replace(state, partial=()),
        msgspec.structs.replace(
            state, buffers=(state.buffers[0], msgspec.structs.replace(state.buffers[1], ts=b"x"))
        ),
        msgspec.structs.replace(
            state, buffers=(state.buffers[0], msgspec.structs.replace(state.buffers[1], open=b""))
        ),
        msgspec.structs.replace(
            state, buffers=(state.buffers[0], state.buffers[0], state.buffers[0])
        ),
    ]
    fresh = Timeframes(SYMBOL, ("1m", "1h"), 5)
    other = Timeframes(SYMBOL, ("1m", "1h"), 5)
    fed(other, minutes, 0, 3 * HOUR)
    before = other.snapshot()
    for bad in broken:
        with pytest.raises(StrategyError, match="timeframes snapshot"):
            other.restore(msgspec.msgpack.encode(bad))
        assert other.snapshot() == before
    fresh.restore(good)
    assert fresh.snapshot() == good


def test_a_strategy_without_the_hooks_has_no_snapshot() -> None:
    plain = Strategy(None)
    assert plain.snapshot_state() is None
    with pytest.raises(StrategyError, match="keeps no state snapshots"):
        plain.restore_state(b"")


# Size and determinism.


@pytest.mark.parametrize(("name", "tfs"), CASES, ids=IDS)
def test_snapshots_are_bounded_by_history_and_the_same_state_is_the_same_bytes(
    minutes: Minutes, name: str, tfs: tuple[str, ...]
) -> None:
    session = warmed(minutes, name, tfs)
    # 48 bytes a bar (six 8-byte columns), a bar in progress and framing per timeframe,
    # a header: however long the run.
    declared = len(session.timeframes.declared)
    bound = 48 * session.strategy.history * declared + 80 * declared + 64
    for lo in (WARM, 2 * WARM):
        state, fed_bytes, _ = session.snapshot()
        assert len(fed_bytes) <= bound
        assert len(state) <= 200
        session.feed(minutes, lo, lo + WARM, DAY)
    assert session.strategy.snapshot_state() == session.strategy.snapshot_state()
    twin = restored(name, tfs, session.snapshot())
    assert twin.snapshot() == session.snapshot()


def test_the_guides_snapshot_example_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    guide = (ROOT / "docs" / "strategies.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", guide, flags=re.DOTALL)
    [hooks] = [b for b in blocks if "class RestartableDipBuyer" in b]
    module = types.ModuleType("doc_snapshot")
    monkeypatch.setitem(sys.modules, module.__name__, module)  # msgspec resolves types here
    exec(compile(blocks[0] + hooks, "<docs/strategies.md>", "exec"), module.__dict__)
    cls = module.RestartableDipBuyer
    strategy = cls(module.DipParams(lookback=4))
    ctx = Context(
        params=strategy.params,
        state=PortfolioView(cash_e8=lambda: 0, position_e8=lambda s: 0, open_orders=list),
        log=lambda m: None,
    )
    for i in range(6):
        strategy.on_bar(ctx, SYMBOL, Bar(i * 60_000, 10.0 + i, 11.0 + i, 9.0 - i, 10.0, 1.0))
    fresh = cls(module.DipParams(lookback=4))
    fresh.restore_state(strategy.snapshot_state())
    assert (fresh.lows, fresh.held) == (strategy.lows, strategy.held) == ([7.0, 6.0, 5.0, 4.0], 0)
    assert fresh.snapshot_state() == strategy.snapshot_state()
    with pytest.raises(StrategyError, match="taken under other params"):
        cls(module.DipParams(lookback=5)).restore_state(strategy.snapshot_state())
