"""Each strategy of a session and its step on one minute: the bars it sees, what it asks
for, what the book decides on that, and its snapshots. The loop and the rebuild step
strategies through these alike."""

from __future__ import annotations

import traceback

import msgspec

from njord.core.bars import SymbolFrames, Timeframes
from njord.core.book import BarE8, Book
from njord.core.strategy import Context, Strategy
from njord.data.history import BarBatch
from njord.data.qc import utc
from njord.errors import NjordError, StrategyError
from njord.records import Bar, OrderIntent


class Runner:
    """One strategy of the session and what it sees: its sleeve's id ("" when it is the
    session's only strategy), its symbols, its bars and its context."""

    __slots__ = ("ctx", "id", "on_error", "strategy", "symbols", "timeframes")

    def __init__(
        self,
        strategy: Strategy,
        timeframes: Timeframes | SymbolFrames,
        ctx: Context,
        *,
        symbols: tuple[str, ...],
        id: str = "",
        on_error: str = "halt_sleeve",
    ) -> None:
        self.strategy = strategy
        self.timeframes = timeframes
        self.ctx = ctx
        self.symbols = symbols
        self.id = id
        self.on_error = on_error


def ask(
    strategy: Strategy | None,
    symbol: str,
    timeframes: Timeframes,
    ctx: Context,
    batch: BarBatch,
    i: int,
    bar: BarE8,
) -> tuple[list[OrderIntent], list[str]]:
    """The strategy's step on one bar: the intents and the cancels it asked for (None: the
    bar only steps the timeframes, a halted sleeve's)."""
    ctx.now_ms = bar.ts_ms
    own = Bar(
        bar.ts_ms,
        batch.open[i],
        batch.high[i],
        batch.low[i],
        batch.close[i],
        batch.volume[i],
        timeframes.base,
        1,
        batch.filled[i],
    )
    # One decision step per bar: what every timeframe's bar asked for, in call order.
    intents: list[OrderIntent] = []
    views = timeframes.step(own)
    if strategy is None:
        return intents, []
    for view in views:
        try:
            intents += strategy.on_bar(ctx, symbol, view)
            intents += ctx.take_submitted()
        except Exception as e:
            raise raised_in(e, view, timeframes.base) from e
    return intents, ctx.take_cancels()


def raised_in(error: Exception, view: Bar, base: str) -> StrategyError:
    """The error of a strategy that raised in `on_bar` on `view`, named by its bar."""
    where = utc(view.ts_ms) if view.timeframe == base else f"{view.timeframe} {utc(view.ts_ms)}"
    return StrategyError(f"strategy raised in on_bar at bar {where}: {error!r}")


def bars_of(batch: BarBatch, i: int, j: int) -> list[BarE8]:
    """The bars of rows i..j (one minute), each with its symbol when the batch has several."""
    ts = batch.ts_ms[i]
    o, h, lo, c = batch.open_e8, batch.high_e8, batch.low_e8, batch.close_e8
    symbol = batch.symbol
    if symbol is None:
        return [BarE8(ts, o[i], h[i], lo[i], c[i])]
    return [BarE8(ts, o[k], h[k], lo[k], c[k], symbol[k]) for k in range(i, j)]


def load_history(timeframes: Timeframes | SymbolFrames, batch: BarBatch) -> None:
    """The batch's bars into the history buffers, each symbol's into its own."""
    several = batch.symbol is not None
    frames = timeframes.frames if isinstance(timeframes, SymbolFrames) else [timeframes]
    for one in frames:
        one.load(*batch.arrays(one.symbol if several else None))


def ask_minute(
    runner: Runner, batch: BarBatch, bars: list[BarE8], i: int, only: str, *, call: bool = True
) -> tuple[list[OrderIntent], list[str]]:
    """A strategy's step on one minute: each of its symbols' bars, in session order.
    `only`: the symbol of a one-symbol session (whose bars do not name it). `call` False:
    a halted sleeve's strategy is not asked, its bars still step (history stays whole)."""
    strategy = runner.strategy if call else None
    ctx = runner.ctx
    if len(bars) == 1 and not bars[0].symbol:
        return ask(strategy, only, runner.timeframes.of(only), ctx, batch, i, bars[0])
    intents: list[OrderIntent] = []
    cancels: list[str] = []
    for k, bar in enumerate(bars, start=i):
        if bar.symbol not in runner.symbols:
            continue  # a symbol the strategy did not declare: marked, never shown to it
        frames = runner.timeframes.of(bar.symbol)
        asked, cancel = ask(strategy, bar.symbol, frames, ctx, batch, k, bar)
        intents += asked
        cancels += cancel
    return intents, cancels


def decide(book: Book, runners: list[Runner], batch: BarBatch, bars: list[BarE8], i: int) -> None:
    """Every strategy's step on one minute, in config order, and the book's decisions on
    what each asked for (one sequence of intents across them). A strategy of several that
    raises is stopped alone (`isolate`); the session's only one ends the session."""
    bar = bars[-1]
    seq = 0
    for runner in runners:
        try:
            asked = ask_runner(book, runner, batch, bars, i)
        except StrategyError as e:
            if not runner.id:
                raise
            isolate(book, runner, bar, e)
            continue
        if asked is not None:
            intents, cancels = asked
            book_decisions(book, bar, intents, cancels, runner.id, seq)
            seq += len(intents)
    if book.sleeves:
        book.net(bar)


def ask_runner(
    book: Book, runner: Runner, batch: BarBatch, bars: list[BarE8], i: int
) -> tuple[list[OrderIntent], list[str]] | None:
    """One strategy's step on the minute; None for a halted sleeve's, which is not asked
    (its bars still step its timeframes)."""
    if runner.id and book.sleeves[runner.id].halted is not None:
        ask_minute(runner, batch, bars, i, book.symbol, call=False)
        return None
    return ask_minute(runner, batch, bars, i, book.symbol)


def book_decisions(
    book: Book, bar: BarE8, intents: list[OrderIntent], cancels: list[str], owner: str, seq: int
) -> None:
    """What one strategy asked for at this minute, to the book: its cancels, then its
    intents (numbered on from `seq`)."""
    if cancels:
        book.cancel(bar, cancels, owner=owner)
    if intents:
        book.decide(bar, intents, strategy_id=owner, first_seq=seq)


def isolate(book: Book, runner: Runner, bar: BarE8, error: StrategyError) -> None:
    """A sleeve's strategy raised: its sleeve halts (its orders canceled; the others trade
    on), or, with `on_error = "halt_all"`, the whole session halts. Its traceback is kept
    in the log record's context."""
    cause = error.__cause__
    trace = "".join(traceback.format_exception(cause)) if cause is not None else ""
    book.log("strategy", "ERROR", f"strategy {runner.id}: {error}", traceback=trace)
    book.halt_sleeve(runner.id, bar.ts_ms, str(error))
    if runner.on_error == "halt_all":
        book.control("halt", bar, by=f"strategy {runner.id}", reason=str(error))


def notify_fills(book: Book, runners: list[Runner], bar: BarE8 | None) -> None:
    """Each finished order's strategy hears of it (`on_fill`)."""
    mine = {r.id: r for r in runners}
    for fill in book.take_filled():
        runner = mine.get(fill.strategy_id)
        if runner is None or (runner.id and book.sleeves[runner.id].halted is not None):
            continue  # no strategy asked for it (an operator's order), or its sleeve halted
        try:
            runner.strategy.on_fill(runner.ctx, fill)
        except Exception as e:
            error = StrategyError(f"strategy raised in on_fill: {e!r}")
            if not runner.id or bar is None:
                raise error from e
            error.__cause__ = e
            isolate(book, runner, bar, error)


def snapshot_runners(runners: list[Runner]) -> tuple[bytes, bytes] | None:
    """The strategies' and their timeframes' state, when every one keeps snapshots (one
    strategy: its own bytes; several: a list of each one's, in config order)."""
    states, frames = [], []
    for runner in runners:
        try:
            state = runner.strategy.snapshot_state()
        except Exception as e:
            raise StrategyError(f"strategy raised in snapshot_state: {e!r}") from e
        if state is None:
            return None
        states.append(state)
        frames.append(runner.timeframes.snapshot())
    if len(runners) == 1:
        return states[0], frames[0]
    return msgspec.msgpack.encode(states), msgspec.msgpack.encode(frames)


def restore_runners(runners: list[Runner], strategy: bytes, timeframes: bytes) -> None:
    """What `snapshot_runners` saved, back into each strategy and its timeframes."""
    if len(runners) == 1:
        states, frames = [strategy], [timeframes]
    else:
        states = msgspec.msgpack.decode(strategy, type=list[bytes])
        frames = msgspec.msgpack.decode(timeframes, type=list[bytes])
    for runner, state, frame in zip(runners, states, frames, strict=True):
        try:
            runner.strategy.restore_state(state)
        except NjordError:
            raise
        except Exception as e:
            raise StrategyError(f"strategy raised in restore_state: {e!r}") from e
        runner.timeframes.restore(frame)
