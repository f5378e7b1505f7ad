"""Swapping a strategy for another version of it (`njord reload`), at a bar boundary.

The new version gets its own bar buffers (its params may want more history) and is warmed
on the session's stored bars before the bar it takes over at: each is shown to it as it
was to the old version, and what it asks for then is dropped (those bars were decided).
Its `on_bar` then runs from that bar on with the same portfolio view and context. The
swap is the same wherever it happens: in the running loop, in a rebuild after a restart
and in `verify`'s re-run, so each version decides the same bars in all three.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

from njord import strategies
from njord.core.bars import SymbolFrames, Timeframes
from njord.core.strategy import Context, Strategy
from njord.data.history import BarBatch, StoredFeed
from njord.errors import ConfigError, MismatchError, StrategyError
from njord.runners import Runner, ask_minute, bars_of, load_history
from njord.store.controls import Control
from njord.store.versions import StrategyVersion


class ReloadFailed(Exception):
    """The version could not be built or warmed: the strategy in force stays."""


def _built(runner: Runner, version: StrategyVersion) -> tuple[Strategy, Timeframes | SymbolFrames]:
    """The version's strategy, with empty bar buffers of its own history length."""
    try:
        identity = version.identity
        kept = identity.source is not None
        cls = strategies.from_source(identity) if kept else strategies.from_identity(identity)
        strategy = cls(strategies.parse_params(cls, version.params))
    except (ConfigError, MismatchError) as e:
        raise ReloadFailed(str(e)) from e
    except Exception as e:  # the user's constructor, or stored source that does not run
        raise ReloadFailed(f"{version.identity.path} raised building: {e!r}") from e
    old = runner.timeframes
    each = old.frames if isinstance(old, SymbolFrames) else [old]
    frames = [Timeframes(f.symbol, f.declared, strategy.history, base=f.base) for f in each]
    return strategy, frames[0] if len(frames) == 1 else SymbolFrames(frames)


def _install(runner: Runner, strategy: Strategy, frames: Timeframes | SymbolFrames) -> None:
    """From now on the runner steps `strategy` on `frames`, through the same context."""
    runner.strategy, runner.timeframes = strategy, frames
    runner.ctx.params = strategy.params
    runner.ctx.history = frames.history


def swap(
    runner: Runner,
    version: StrategyVersion,
    blobs: Sequence[bytes],
    *,
    before_ms: int,
    batch: BarBatch | None = None,
    row: int = 0,
) -> int:
    """Build `version`, warm it on the stored bars (`blobs`) before `before_ms`, and
    install it; `batch` and `row`: the batch being stepped and the row the new version
    takes over at (its bars from there on are queued for it, as the loop queued them for
    the old one). Returns the bars it was warmed on; ReloadFailed changes nothing."""
    strategy, frames = _built(runner, version)
    warm = Context(
        params=strategy.params, state=runner.ctx.state, log=_quiet, history=frames.history
    )
    warming = Runner(strategy, frames, warm, symbols=runner.symbols, id=runner.id)
    only = runner.symbols[0]
    steps = 0
    try:
        strategy.on_start(warm)
    except Exception as e:
        raise ReloadFailed(f"{version.identity.path} raised in on_start: {e!r}") from e
    try:
        for stored in StoredFeed(list(blobs), symbol=only, until_ms=before_ms - 1).batches():
            if frames.wants_batches:
                load_history(frames, stored)
            for i, j in stored.steps():
                ask_minute(warming, stored, bars_of(stored, i, j), i, only)
                steps += 1
    except StrategyError as e:
        raise ReloadFailed(f"warming on the stored bars: {e}") from e
    if batch is not None and frames.wants_batches:
        first, batch.first = batch.first, row
        try:
            load_history(frames, batch)
        finally:
            batch.first = first
    _install(runner, strategy, frames)
    return steps


def in_force(
    runners: Sequence[Runner],
    applied: Mapping[int, Sequence[Control]],
    stored: Sequence[StrategyVersion],
    blobs: Sequence[bytes],
    *,
    through_ms: int,
) -> None:
    """Swap in the versions reloads had swapped in by bar `through_ms`, each as it was
    then (warmed on the bars before its bar): a restart restores their state from a
    snapshot taken after. A reload that failed then fails again here, and the strategy it
    would have replaced stays, as it did."""
    by_number = {v.version: v for v in stored}
    for bar_ts in sorted(ts for ts in applied if ts <= through_ms):
        for control in applied[bar_ts]:
            if control.command != "reload":
                continue
            runner = next(r for r in runners if r.id == control.strategy_id)
            with contextlib.suppress(ReloadFailed):
                swap(runner, by_number[control.version], blobs, before_ms=bar_ts)


def _quiet(message: str) -> None:
    """What a strategy logs while it is warmed: those bars' records were written then."""
