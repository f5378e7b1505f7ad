"""The only place that turns a config and a mode into adapters, and runs a session.

Startup and recovery are one path: a new session and `njord continue` both build the
book from scratch and run the same loop; continuing replays the committed bars in
memory (writing nothing) and checks the rebuilt state against the db before going on.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

import njord
from njord import amend, strategies
from njord.adapters.sim_router import PaperBroker, SimRouter
from njord.config import (
    Config,
    SleeveConfig,
    check_symbols,
    config_sha256,
    config_toml,
    risk_limits,
    stored_config,
)
from njord.core.bars import SymbolFrames, Timeframes
from njord.core.book import BarE8, Book
from njord.core.execution import CostModel, SymbolRules
from njord.core.money import mul_e8, to_e8
from njord.core.reports import Canceled, Execution, Expired, Reject, Report
from njord.core.risk import PreTradeRisk, RiskEngine
from njord.core.sleeves import Sleeve, allocator_of
from njord.core.strategy import Context, PortfolioView, Strategy
from njord.core.time import derives, timeframe_ms
from njord.data.history import HistoryFeed, StoredFeed
from njord.data.merged import MergedFeed
from njord.data.polled import Polled
from njord.data.qc import QcSummary, utc
from njord.errors import ConfigError, ExitCode, NjordError, StrategyError
from njord.events import SessionStarted
from njord.log import Level, SessionLog
from njord.loop import (
    FixedPacing,
    LivePacing,
    Loop,
    LoopResult,
    NoPacing,
    Stop,
)
from njord.manifest import DataSource, Manifest, git_state, host_facts, strategy_identity
from njord.ports import BarFeed, OrderRouter, Pacer, RunManifestStore, SnapshotStore
from njord.rebuild import rebuild
from njord.records import Order
from njord.runners import Runner, restore_runners
from njord.store import amendments as amend_store
from njord.store import db, history, portfolio, versions
from njord.store import lease as leases
from njord.store import venue as venue_store
from njord.store.amendments import Amendment
from njord.store.controls import Control
from njord.store.portfolio import SqliteSnapshotStore
from njord.store.runs import SqliteManifestStore
from njord.store.session import SessionWriter
from njord.store.stored import StoredSession
from njord.store.venue import PaperJournal
from njord.swap import in_force

if TYPE_CHECKING:
    # Live feeds import the venue's client (requests): a backtest never loads it.
    from njord.adapters.binance_router import BinanceRouter
    from njord.adapters.live_feed import LiveFeed
    from njord.adapters.live_merged import MergedLiveFeed
    from njord.notify import Notifier

# At the end of a run, queued alert edges get this long to reach their channels.
ALERT_FLUSH_S = 15.0


class Plan(msgspec.Struct, kw_only=True):
    """A validated session, ready to run: nothing has touched the db yet."""

    config: Config
    strategies: list[tuple[type[Strategy], msgspec.Struct]]
    feed: HistoryFeed | MergedFeed
    manifest: Manifest


def parse_utc(text: str, key: str) -> int | None:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as e:
        raise ConfigError(f"{key} must be an ISO date or date-time, got {text!r}") from e
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


class Facts(msgspec.Struct, frozen=True, kw_only=True):
    """What every backtest over the same data from the same checkout shares: a sweep
    measures it once instead of once per combination (QC scan, file hashes, git)."""

    sources: list[DataSource]
    bars: int  # bars the QC scan passes
    git_sha: str
    git_dirty: bool


def measure(config: Config) -> Facts:
    """The QC scan (bad data refuses here, before any db exists), the hashes and git."""
    feed = history_of(config)
    sha, dirty = git_state()
    return Facts(sources=feed.sources(), bars=prescan(feed).bars_out, git_sha=sha, git_dirty=dirty)


def strategy_of(config: Config) -> tuple[type[Strategy], msgspec.Struct]:
    """The strategy class and its typed params, or ConfigError (exit 2); with several
    strategies, the first's (`strategies_of` has them all)."""
    return strategies_of(config)[0]


def strategies_of(config: Config) -> list[tuple[type[Strategy], msgspec.Struct]]:
    """Each strategy's class and typed params, in config order (the enabled `[[strategies]]`,
    or `[strategy]`), or ConfigError (exit 2)."""
    if not config.strategies:
        cls = strategies.resolve(config.strategy.name)
        source = "strategy.timeframes" if config.strategy.timeframes else "the strategy"
        timeframes = declared_timeframes(config, cls)
        _check_timeframes(config, timeframes, source)
        strategies.one_series_only(cls, traded_symbols(config), timeframes, config.strategy.name)
        return [(cls, strategies.parse_params(cls, config.strategy.params))]
    made = []
    for sleeve in enabled_sleeves(config):
        cls = strategies.resolve(sleeve.name)
        source = f"strategies {sleeve.id}" + (" timeframes" if sleeve.timeframes else "")
        timeframes = tuple(sleeve.timeframes) or cls.timeframes
        _check_timeframes(config, timeframes, source)
        symbols = sleeve_symbols(config, sleeve)
        strategies.one_series_only(cls, symbols, timeframes, f"strategies {sleeve.id}")
        made.append((cls, strategies.parse_params(cls, sleeve.params)))
    if not made:
        raise ConfigError("every [[strategies]] entry is disabled: nothing would trade")
    return made


def _check_timeframes(config: Config, wanted: tuple[str, ...], source: str) -> None:
    base = config.data.timeframe
    if not all(derives(tf, base) for tf in wanted):
        raise ConfigError(
            f"{source} asks for {', '.join(wanted)} bars, but data.timeframe is {base}: "
            f"a session derives only longer bars, whole multiples of {base}, from its data"
        )


def stored_strategies(manifest: Manifest, config: Config) -> Strategy | list[Strategy]:
    """The strategies a stored session ran, by its manifest's identities, with its
    config's params: the one strategy, or the sleeves' in config order."""
    if not manifest.sleeves:
        cls = strategies.from_identity(manifest.strategy)
        return strategies.build(cls, config.strategy.params)
    made: list[Strategy] = []
    for identity, sleeve in zip(manifest.sleeves, enabled_sleeves(config), strict=True):
        made.append(strategies.build(strategies.from_identity(identity), sleeve.params))
    return made


def instantiate(
    config: Config, planned: list[tuple[type[Strategy], msgspec.Struct]]
) -> Strategy | list[Strategy]:
    """The session's strategy, or its sleeves' strategies in config order (`planned`:
    `strategies_of(config)`)."""
    made = [strategies.made(cls, params) for cls, params in planned]
    return made if config.strategies else made[0]


def history_of(config: Config) -> HistoryFeed | MergedFeed:
    """The backtest's bars as configured (range, files), before any QC pass over them:
    several symbols' (`data.paths`) merged by minute."""
    data = config.data
    start = parse_utc(data.start, "data.start (--from)")
    end = parse_utc(data.end, "data.end (--to)")
    if start is not None and end is not None and end <= start:
        raise ConfigError(f"empty range: --to {data.end} is not after --from")
    paths = data.paths or {data.symbol: data.path}
    feeds = [
        HistoryFeed(
            Path(path),
            symbol=symbol,
            gaps=data.gaps,
            start_ms=start,
            end_ms=end,
            timeframe=data.timeframe,
        )
        for symbol, path in paths.items()
    ]
    return MergedFeed(feeds) if data.paths else feeds[0]


def traded_symbols(config: Config) -> tuple[str, ...]:
    """What the strategy gets bars of and may order: `strategy.symbols`, or all the
    session's, in session order (with several strategies: all the session's)."""
    wanted = [] if config.strategies else config.strategy.symbols
    held = config.data.session_symbols
    return tuple(s for s in held if s in wanted) if wanted else held


def enabled_sleeves(config: Config) -> list[SleeveConfig]:
    """The `[[strategies]]` that run, in config order."""
    return [s for s in config.strategies if s.enabled]


def sleeve_symbols(config: Config, sleeve: SleeveConfig) -> tuple[str, ...]:
    wanted = sleeve.symbols
    held = config.data.session_symbols
    return tuple(s for s in held if s in wanted) if wanted else held


def plan_backtest(config: Config, facts: Facts | None = None) -> Plan:
    if config.data.symbols:
        raise ConfigError(
            "data.symbols names a shadow or paper session's venue symbols; a backtest of "
            "several symbols reads each one's history from [data.paths]"
        )
    check_symbols(config)
    made = strategies_of(config)
    feed = history_of(config)
    return Plan(
        config=config,
        strategies=made,
        feed=feed,
        manifest=new_manifest(
            config,
            [cls for cls, _ in made],
            facts.sources if facts else feed.sources(),
            git=(facts.git_sha, facts.git_dirty) if facts else None,
        ),
    )


def check_live_bars(config: Config) -> None:
    """Shadow and paper poll the venue's 1-minute klines (longer bars are derived from
    them), so their data.timeframe is 1m; coarser data is for backtests."""
    if config.data.paths:
        raise ConfigError(
            "data.paths holds a backtest's history files; a "
            f"{config.runtime.mode} session of several symbols names them in data.symbols"
        )

    if config.data.timeframe != "1m":
        raise ConfigError(
            f"data.timeframe is {config.data.timeframe}: live-market sessions run on the "
            "venue's 1-minute bars; set it to 1m and declare longer bars in strategy.timeframes"
        )


def declared_timeframes(config: Config, cls: type[Strategy]) -> tuple[str, ...]:
    """The timeframes a session delivers: `strategy.timeframes` if set, else the class's."""
    return tuple(config.strategy.timeframes) or cls.timeframes


def prescan(feed: HistoryFeed | MergedFeed) -> QcSummary:
    """Run QC over the whole range before a db exists, so bad data never half-writes one."""
    probe = feed.fresh()
    for _ in probe.checked_batches():
        pass
    if probe.summary.bars_out == 0:
        raise ConfigError("no bars in the selected range (data.start / data.end, --from / --to)")
    return probe.summary


def new_manifest(
    config: Config,
    cls: type[Strategy] | list[type[Strategy]],
    sources: list[DataSource],
    *,
    git: tuple[str, bool] | None = None,
) -> Manifest:
    """`cls`: the strategy, or (a list) each strategy's class in config order."""
    classes = cls if isinstance(cls, list) else [cls]
    identities = [strategy_identity(c) for c in classes]
    sha, dirty = git or git_state()
    python, os_name = host_facts()
    started = time.time_ns() // 1_000_000
    manifest = Manifest(
        run_id="",
        mode=config.runtime.mode,
        config_toml=config_toml(config),
        config_sha256=config_sha256(config),
        njord_version=njord.__version__,
        git_sha=sha,
        git_dirty=dirty,
        python=python,
        os=os_name,
        data_sources=sources,
        seed=config.runtime.seed,
        strategy=identities[0],
        started_ms=started,
        sleeves=identities if config.strategies else [],
    )
    stamp = datetime.fromtimestamp(started / 1000, tz=UTC).strftime("%Y%m%d-%H%M%S")
    run_id = f"{config.runtime.mode}-{stamp}-{manifest.inputs_sha256()[:6]}"
    return msgspec.structs.replace(manifest, run_id=run_id)


def build_book(config: Config, manifest: Manifest, amendments: Sequence[Amendment] = ()) -> Book:
    """The book of a session that began with `config`; risk amendments take effect after
    the bars they were made at."""
    costs = cost_model(config)
    mode = config.runtime.mode
    symbols = traded_symbols(config)
    book = Book(
        symbol=symbols[0],
        symbols=symbols,
        multi=len(config.data.session_symbols) > 1,
        initial_cash_e8=to_e8(config.runtime.initial_cash),
        costs=costs,
        rules=SymbolRules(),
        risk=PreTradeRisk(risk_limits(config.risk, mode=mode)),
        allow_short=config.runtime.allow_short,
        order_key=manifest.order_key(),
        bar_ms=timeframe_ms(config.data.timeframe),
    )
    initial = book.ledger.cash_e8
    book.allocator = allocator_of(config.portfolio.allocator, config.portfolio.lookback_days)
    for index, sleeve in enumerate(config.strategies):
        if not sleeve.enabled:
            continue  # its slot stays its own: ids do not shift when one is switched off
        share = to_e8(sleeve.allocation)
        book.sleeves[sleeve.id] = Sleeve(
            id=sleeve.id,
            index=index,
            symbols=sleeve_symbols(config, sleeve),
            allocation_e8=share,
            cash_e8=mul_e8(initial, share),
            daily_loss_limit_e8=to_e8(sleeve.risk.daily_loss_limit),
            notional_cap_e8=to_e8(sleeve.risk.notional_cap),
        )
    steps = amend.risk_steps(config, amendments)
    if steps:
        later: list[tuple[int | None, RiskEngine]] = [
            (after, PreTradeRisk(risk_limits(risk, mode=mode))) for after, risk in steps
        ]
        book.risk = amend.ScheduledRisk(book.risk, later, lambda: book.last_bar_ms)
    return book


def cost_model(config: Config) -> CostModel:
    c = config.costs
    return CostModel(
        commission_bps=c.commission_bps,
        spread_bps=c.spread_bps,
        slippage_bps=c.slippage_bps,
        min_notional_e8=to_e8(c.min_notional),
        fee_asset=c.fee_asset,
    )


class Session(msgspec.Struct, kw_only=True):
    """An open, leased session db and everything wired to it."""

    path: Path
    conn: db.Connection
    writer: SessionWriter
    lease: leases.Lease
    manifest: Manifest
    config: Config
    log: SessionLog

    def close(self) -> None:
        leases.release(self.conn, self.lease)
        db.close_writer(self.conn)


def _log_qc(log: SessionLog, feed: BarFeed) -> None:
    """Every gap, with its timestamps and what the policy did about it (SPEC §5)."""
    for event in feed.events:
        if event.kind == "gap":
            log.warning(
                "qc",
                f"gap of {event.bars} bars from {utc(event.from_ts_ms)} to {utc(event.to_ts_ms)}",
                from_ts_ms=event.from_ts_ms,
                to_ts_ms=event.to_ts_ms,
                bars=event.bars,
            )
        else:
            log.info(
                "qc",
                f"{event.kind} {event.bars} bars from {utc(event.from_ts_ms)}",
                from_ts_ms=event.from_ts_ms,
                to_ts_ms=event.to_ts_ms,
            )


def open_session(
    path: Path, *, config: Config, manifest: Manifest | None, log: SessionLog
) -> Session:
    """Create (manifest given) or reopen a session db and take its lease."""
    conn = db.open_writer(path, create=manifest is not None, synchronous=config.store.synchronous)
    try:
        lease, stale = leases.acquire(conn, timeout_s=config.store.lease_timeout_s)
    except BaseException:
        conn.close()
        raise
    store: RunManifestStore = SqliteManifestStore(conn)
    existing = store.load()
    if manifest is not None and existing is not None:
        leases.release(conn, lease)
        conn.close()
        raise ConfigError(
            f"{path} already holds session {existing.run_id}; carry it on with "
            f"`njord continue {path}` or choose another --db"
        )
    if manifest is not None:
        with conn:
            store.create(manifest)
    loaded = manifest or existing
    if loaded is None:
        raise ConfigError(f"{path} holds no session")
    if manifest is None:
        with conn:  # carried on: running again until this run ends
            store.set_status(loaded.run_id, "running", ended_ms=None)
    log.run_id = loaded.run_id
    if stale is not None:
        # The run before this one ended without a clean stop: one alert episode, raised and
        # cleared here, so it reaches the channels (and `njord watch`) once.
        log.warning(
            "lease",
            f"session stopped unexpectedly: took over a stale lease of pid {stale.pid} "
            f"on {stale.host}",
            alert="session_died",
        )
        log.info("lease", "carried on after the unexpected stop", clear="session_died")
    writer = SessionWriter(conn, run_id=loaded.run_id, log=log, lease=lease)
    writer.snapshot_every = config.store.snapshot_every
    writer.several = len(config.data.session_symbols) > 1
    writer.beat_every_s = config.store.lease_timeout_s / 3
    return Session(
        path=path, conn=conn, writer=writer, lease=lease, manifest=loaded, config=config, log=log
    )


def run_session(
    session: Session,
    *,
    strategy: Strategy | list[Strategy],
    feed: BarFeed,
    resume_after_ms: int | None,
    pacer: Pacer,
    progress: Callable[[int], None],
    stop: Stop,
    scheduled: dict[int, list[Control]] | None = None,
    amendments: Sequence[Amendment] | None = None,
    final_status: str = "finished",
    notifier: Notifier | None = None,
    stored: Polled | None = None,
    router: OrderRouter | None = None,
) -> LoopResult:
    """`scheduled` and `amendments`: a verification's, read from the session it re-runs;
    by default this session's own. `resume_after_ms` set: the session is carried on, rebuilt
    from `stored` (its committed bars: by default the first bars of `feed`). `router`: the
    venue, when not the mode's own (`router_of`)."""
    config = session.config
    book = build_book(
        stored_config(session.manifest.config_toml),
        session.manifest,
        amend_store.load(session.conn) if amendments is None else amendments,
    )
    runners = runners_of(session, book, strategy)
    if book.sleeves:
        rows = [
            (s.id, s.slot, identity.path, s.allocation_e8, s.ledger.cash_e8)
            for s, identity in zip(book.sleeves.values(), session.manifest.sleeves, strict=True)
        ]
        portfolio.create_sleeves(session.conn, rows)
    ctx = runners[0].ctx
    router = router or router_of(session, book)
    upkeep = None
    live = _live_router(router)
    if live is not None:  # before the rebuild: orders shaped as they were
        from njord.upkeep import VenueUpkeep

        upkeep = VenueUpkeep(live, book=book, writer=session.writer, venue=config.venue)
    session.log.use_clock(lambda: ctx.now_ms)
    session.log.info(
        "session",
        "continuing after the last committed bar" if resume_after_ms else "session started",
        run_id=session.manifest.run_id,
        mode=session.manifest.mode,
        strategy=session.manifest.strategy.path,
        timeframes=list(runners[0].timeframes.declared),
        resume_after_ms=resume_after_ms,
    )
    for runner in runners:
        runner.strategy.on_start(runner.ctx)
    writer = session.writer
    # The run row (created, or set running again) was committed when the session opened.
    writer.bus.publish([SessionStarted(run_id=session.manifest.run_id, mode=session.manifest.mode)])
    loop = Loop(
        book=book,
        runners=runners,
        router=router,
        writer=writer,
        commit_every=config.runtime.commit_every,
        scheduled=scheduled if scheduled is not None else {},
        pacer=pacer,
        keep_bars=config.store.store_bars,
        progress=progress,
        stop=stop,
        kill_file=Path(config.runtime.kill_file) if config.runtime.kill_file else None,
        upkeep=upkeep,
    )
    try:
        if resume_after_ms is not None:
            carry_on(session, loop, stored or _restartable(feed))
        if upkeep is not None:  # before the first new bar: the book matched to the venue
            upkeep.start(loop.apply_reports)
        # A backtest's WAL goes into the db file on a thread of its own.
        batch = config.runtime.mode == "backtest"
        checkpoints = db.Checkpointer(session.conn) if batch else contextlib.nullcontext()
        with checkpoints:
            result = loop.run(feed)
        for runner in runners:
            runner.strategy.on_stop(runner.ctx)
        _log_qc(session.log, feed)
        session.log.info(
            "session", "session finished", bars=result.bars, equity_e8=result.equity_e8
        )
    except NjordError as e:
        stopped = e.exit_code == ExitCode.INTERRUPTED
        context = {}
        if isinstance(e, StrategyError) and e.__cause__ is not None:
            # The strategy's own frames, kept in the db beside the error: what its author
            # needs, from a cron run's db too (the command prints one line).
            context["traceback"] = "".join(traceback.format_exception(e.__cause__))
        # Recorded, not echoed: the command reports it in one line (an operator stop is
        # no error: INFO).
        level: Level = "INFO" if stopped else "ERROR"
        session.log.log("loop", level, str(e), echo=False, **context)
        status = "stopped" if stopped else "failed"
        if notifier is not None:
            notifier.close(ALERT_FLUSH_S)
        writer.write_now(session.log.drain(), status=status)
        if isinstance(e, StrategyError) and session.manifest.mode != "backtest":
            # SPEC §6: a live-market session whose strategy raised stays halted, from its
            # next bar on, until an operator has looked and resumed it.
            by = f"njord@{socket.gethostname()}"
            writer.post_control("halt", str(e), wall_ms=leases.wall_ms(), by=by)
        raise
    if notifier is not None:
        notifier.close(ALERT_FLUSH_S)
    writer.write_now(session.log.drain(), status=final_status)
    with session.conn:
        SqliteManifestStore(session.conn).set_status(
            session.manifest.run_id, final_status, ended_ms=time.time_ns() // 1_000_000
        )
    return result


def runners_of(session: Session, book: Book, strategy: Strategy | list[Strategy]) -> list[Runner]:
    """Each strategy with its bars and its context: the session's only one (it sees the
    whole account), or one per sleeve (`[[strategies]]`, in config order: each sees its own
    sleeve's cash, positions and orders)."""
    config = session.config
    log = session.log

    def runner(
        strategy: Strategy, symbols: tuple[str, ...], wanted: tuple[str, ...], view: PortfolioView
    ) -> Runner:
        frames = [
            Timeframes(symbol, wanted, strategy.history, base=config.data.timeframe)
            for symbol in symbols
        ]
        timeframes = frames[0] if len(frames) == 1 else SymbolFrames(frames)
        ctx = Context(
            params=strategy.params,
            state=view,
            log=lambda m: log.info("strategy", m),
            history=timeframes.history,
        )
        return Runner(strategy, timeframes, ctx, symbols=symbols)

    if isinstance(strategy, Strategy):
        view = PortfolioView(
            cash_e8=book.cash_e8,
            position_e8=book.ledger.position_e8,
            open_orders=book.open_order_list,
            lot_e8=book.lot_e8,
        )
        wanted = declared_timeframes(config, type(strategy))
        return [runner(strategy, traded_symbols(config), wanted, view)]
    runners = []
    for sleeve_config, one in zip(enabled_sleeves(config), strategy, strict=True):
        sleeve = book.sleeves[sleeve_config.id]
        view = PortfolioView(
            cash_e8=lambda s=sleeve: s.ledger.cash_e8,  # type: ignore[misc]
            position_e8=sleeve.ledger.position_e8,
            open_orders=lambda s=sleeve: book.orders_of(s.id),  # type: ignore[misc]
            lot_e8=book.lot_e8,
        )
        wanted = tuple(sleeve_config.timeframes) or type(one).timeframes
        made = runner(one, sleeve.symbols, wanted, view)
        made.id, made.on_error = sleeve.id, sleeve_config.on_error
        runners.append(made)
    return runners


def _open_at_venue(order: Order, known: list[Report]) -> bool:
    """Whether the venue's answers leave the order open (nothing ended it, not all filled)."""
    if any(isinstance(r, (Canceled, Expired, Reject)) for r in known):
        return False
    return sum(r.qty_e8 for r in known if isinstance(r, Execution)) < order.qty_e8


def _live_router(router: OrderRouter) -> BinanceRouter | None:
    """The router as a venue's, or None for the simulator's (whose sessions then import
    no venue client, nor `requests`: a backtest starts faster)."""
    if isinstance(router, SimRouter):
        return None
    from njord.adapters.binance_router import BinanceRouter

    return router if isinstance(router, BinanceRouter) else None


def _restartable(feed: BarFeed) -> Polled:
    """A carried-on backtest rebuilds from the first bars of its own feed."""
    if not isinstance(feed, Polled):
        raise ConfigError("a live feed holds no committed bars to rebuild a session from")
    return feed


class Runtime(msgspec.Struct, kw_only=True):
    """What a session of some mode runs on besides its book and strategy."""

    feed: BarFeed
    stored: Polled | None  # a restarted live-market session's committed bars
    pacer: Pacer


def build_runtime(
    source: HistoryFeed | MergedFeed | StoredFeed | LiveFeed | MergedLiveFeed,
    *,
    stored: StoredSession | None = None,
    pace_ms: float = 0.0,
) -> Runtime:
    """The one place that pairs a session's bar source with its pacing (SPEC §4; the
    router is `router_of`'s): recorded bars are polled from history or the db, as fast as
    they come or `pace_ms` apart; live bars come in wall time, every phase committed, and a
    restart first rebuilds from the bars `stored` holds."""
    if not isinstance(source, (HistoryFeed, MergedFeed, StoredFeed)):  # a LiveFeed
        kept = None
        if stored is not None:
            kept = Polled(StoredFeed(stored.blobs, symbol=source.symbol, events=stored.events))
        return Runtime(feed=source, stored=kept, pacer=LivePacing())
    pacer: Pacer = FixedPacing(pace_ms / 1000) if pace_ms else NoPacing()
    return Runtime(feed=Polled(source), stored=None, pacer=pacer)


def router_of(session: Session, book: Book) -> OrderRouter:
    """The venue of each mode (SPEC §4): the sim matcher for backtest and shadow (shadow's
    P&L), the paper broker (the matcher with its own durable journal) for paper."""
    fill_at = session.config.costs.fill_at
    if session.manifest.mode == "paper":
        return PaperBroker(book.costs, book.rules, PaperJournal(session.conn), fill_at=fill_at)
    return SimRouter(book.costs, book.rules, fill_at=fill_at)


def carry_on(session: Session, loop: Loop, stored: Polled) -> None:
    """Rebuild book and strategy from the db (no venue is asked, no write lock held), check
    the book against what was committed, then settle what the venue may not have answered:
    every order still NEW is looked up by client order id and sent only if the venue never
    got it. A bar whose decisions were committed but not its reports is finished here."""
    conn, book, writer = session.conn, loop.book, session.writer
    started = time.perf_counter()
    last_ms = history.last_bar_ms(conn)
    decided = max(venue_store.decided_bar_ms(conn) or -1, last_ms if last_ms is not None else -1)
    loop.scheduled = loop.scheduled or writer.applied_controls()
    snapshot = venue_store.latest_strategy_snapshot(conn, decided)
    if snapshot is not None:
        snapshots: SnapshotStore = SqliteSnapshotStore(conn)
        book.restore(snapshots.load(snapshot.snapshot_id))
        # The strategy versions the snapshot is of: the first, or what reloads swapped in.
        stored_versions = versions.load(conn)
        if stored_versions:
            blobs = history.stored_bar_blobs(conn)
            in_force(
                loop.runners, loop.scheduled, stored_versions, blobs, through_ms=snapshot.bar_ts_ms
            )
        restore_runners(loop.runners, snapshot.strategy, snapshot.timeframes)
    last_bar = rebuild(
        conn,
        book=book,
        runners=loop.runners,
        batches=stored.through(decided, after_ms=snapshot.bar_ts_ms if snapshot else None),
        after_seq=snapshot.decision_seq if snapshot else 0,
    )
    book.take_filled()
    took_ms = round((time.perf_counter() - started) * 1000, 1)
    origin = f"the strategy snapshot at {utc(snapshot.bar_ts_ms)}" if snapshot else "the first bar"
    session.log.info(
        "session",
        f"rebuilt without the venue in {took_ms:.0f} ms, from {origin}",
        rebuild_ms=took_ms,
    )
    for strategy_id, equity_e8 in history.last_sleeve_equity(conn).items():
        book.sleeves[strategy_id].last_equity_e8 = equity_e8  # the next day opens from it
    for symbol, ts, close in history.last_marks(conn) if book.multi else ():
        # A symbol with no bar since the snapshot: its mark as the session last wrote it.
        book.marks.setdefault(symbol, BarE8(ts, close, close, close, close, symbol))
    mark = history.last_mark(conn)
    if last_bar is None and mark is not None:
        # Restored from a snapshot of the last bar: nothing left to feed; controls and a
        # resent order meet the market at that bar's close.
        last_bar = BarE8(mark[0], mark[1], mark[1], mark[1], mark[1])
    loop.last_bar = last_bar
    router = loop.router
    if isinstance(router, SimRouter) and not isinstance(router, PaperBroker):
        router.restore(book.open_order_list(), last_bar, book.marks)  # a backtest's: in memory
    if decided >= 0:  # something was committed (a session killed before: nothing to check)
        writer.check_rebuilt(book)
    book.note_trades(venue_store.trade_ids(conn, list(book.open_orders)))
    reports: list[Report] = []
    # Test-only (njord torture's mutation check, docs/operating.md): skip the lookup and
    # resend every open order, to prove the torture catches a broken duplicate guard.
    # A live router's own lookup before its first send is the same guard: off too.
    unguarded = os.environ.get("NJORD_TEST_RESEND_WITHOUT_QUERY") == "1"
    live = _live_router(router)
    # Live, a halt, flatten or reduce posted while the session was down (the last one
    # decides the state) stops what it decided before that would add exposure: the venue's
    # account outlives the session, and an order it never got is not sent after the
    # operator said stop. Orders that only reduce a position still go, as those states let
    # them. (A paper session sends them all, as it would had it not stopped: verify re-runs
    # it so.)
    stopped = False
    if live is not None:
        live.unguarded = unguarded
        pending = loop.pending()
        # A sleeve's halt stops it alone; a reload changes no trading state.
        whole = [c for c in pending if not c.strategy_id and c.command != "reload"]
        stopped = bool(whole) and whole[-1].command in ("halt", "flatten", "reduce")
    # The strategy's cancels first, as the loop sends them: each one the venue answered
    # before the stop is taken from it, one it still holds the order open for is asked now.
    cancels = book.unsent_cancels()
    for coid in cancels:
        known = None if unguarded else router.query(coid)
        reports += known or []
        if known is None or _open_at_venue(book.open_orders[coid], known):
            reports += router.cancel(coid)
    for coid, order in list(book.open_orders.items()):
        if coid in book.net_of or coid in cancels:
            continue  # a sleeve's order a net order stands for: the venue has that one
        known = None if unguarded else router.query(coid)
        if known is not None:
            reports += known
        elif not unguarded and (
            order.created_ms < decided or (stopped and book.adds_exposure(order))
        ):
            # Never at the venue, and decided bars ago (its send's outcome was unknown and
            # the venue never got it) or, adding exposure, before a halt: sent now it would
            # trade on a decision that no longer stands.
            reports.append(Expired(client_order_id=coid, ts_ms=decided))
        else:
            reports += router.submit(order)
    if live is not None:
        live.unguarded = False
    writer.ensure_transaction()
    for report in reports:
        book.apply(report)
    incomplete = last_bar is not None and (last_ms is None or last_bar.ts_ms > last_ms)
    if incomplete and last_bar is not None:  # what was sent stands in for its phase 3
        loop.between_bars = False
        loop.finish(last_bar)
    elif book.out:
        loop.write_outbox()
    writer.commit(book)
    loop.between_bars = True
