"""Starting, running and wrapping up a session: shared by the CLI commands and by the TUI,
which drives the same loop in a worker thread. Signal handling and printing stay with the
caller (signals can only be set from the main thread; a TUI owns the screen)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from njord import config as configuration
from njord import secrets, wiring
from njord.config import Config
from njord.core.metrics import Metrics
from njord.core.money import to_e8
from njord.core.strategy import Strategy
from njord.data.polled import Polled
from njord.errors import ConfigError, InvariantViolation
from njord.log import SessionLog
from njord.loop import LoopResult, Stop
from njord.ports import BarFeed, OrderRouter, Pacer
from njord.store import reads
from njord.store.db import Aside
from njord.store.export import Following, check_apart, export_session
from njord.store.lease import wall_ms

if TYPE_CHECKING:
    from njord.notify import Notifier


class Launch(msgspec.Struct, kw_only=True):
    """A leased session with everything the loop needs, ready to run."""

    session: wiring.Session
    strategy: Strategy | list[Strategy]  # several: the sleeves', in config order
    feed: BarFeed
    resume_after_ms: int | None
    total: int  # bars expected (0: open-ended, a live feed)
    pacer: Pacer
    final_status: str  # a backtest that reaches its end is finished; a live run, stopped
    out: Path | None  # where a backtest writes its results
    notifier: Notifier | None = None  # live-market sessions with [alerts] channels
    stored: Polled | None = None  # a restarted live-market session's committed bars
    router: OrderRouter | None = None  # live: the venue (other modes: the mode's own)
    exports: bool = False  # a backtest that ends in `wrap_up`: see `drive`
    curve: Following | None = None  # equity.csv written as the session commits


def check(config: Config, *, env_prefix: str) -> type[Strategy]:
    """What a run of `config` refuses before it opens a db, without running it, so
    `njord config show` exits 2 where the run would: the strategy and its params, and for
    a backtest the secrets file, the range and the data files (QC of the bars is the
    run's own work)."""
    cls, _ = wiring.strategy_of(config)
    if config.runtime.mode == "backtest":
        secrets.provider(configuration.environ(), env_prefix, config.venue.secrets_file)
        wiring.history_of(config)
    else:
        wiring.check_live_bars(config)
        wiring.parse_utc(config.data.start, "data.start")
    return cls


def backtest(
    config: Config,
    *,
    env_prefix: str,
    db_path: Path | None,
    out_dir: Path | None,
    pace_ms: float = 0.0,
    echo: bool = True,
    facts: wiring.Facts | None = None,
    exports: bool = False,
) -> Launch:
    """`facts`, when a sweep measured them once for every combination, stand in for this
    session's own QC scan, data hashes and git lookups. `exports`: the run ends in
    `wrap_up`, whose equity.csv is then written while the session runs."""
    if config.runtime.mode != "backtest":
        raise ConfigError(
            f"runtime.mode is {config.runtime.mode!r}; `njord backtest` runs backtests"
        )
    vault = secrets.provider(configuration.environ(), env_prefix, config.venue.secrets_file)
    plan = wiring.plan_backtest(config, facts)
    out = out_dir or Path("runs") / plan.manifest.run_id
    db_file = db_path or (Path(config.store.db) if config.store.db else out / "session.db")
    check_apart(db_file, out)
    total = facts.bars if facts else wiring.prescan(plan.feed).bars_out
    log = _log(echo, secrets.all_secrets(vault))
    # Before the db: a strategy that cannot start makes none.
    strategy = wiring.instantiate(plan.config, plan.strategies)
    session = wiring.open_session(db_file, config=config, manifest=plan.manifest, log=log)
    runtime = wiring.build_runtime(plan.feed, pace_ms=pace_ms)
    return Launch(
        session=session,
        strategy=strategy,
        feed=runtime.feed,
        resume_after_ms=None,
        total=total,
        pacer=runtime.pacer,
        final_status="finished",
        out=out,
        exports=exports,
    )


def live(
    config: Config,
    db_path: Path,
    *,
    mode: str,
    max_bars: int | None,
    deadline: float | None,
    poll_s: float = 1.0,
    echo: bool = True,
    origins: Mapping[str, str] | None = None,
    env_prefix: str = "NJORD_",
) -> Launch:
    """`origins` (config.Loaded's): keys the user gave amend a resumed session or are
    refused; without them a resumed session keeps its own config."""
    from njord import live as live_sessions

    if max_bars is not None and max_bars < 1:
        raise ConfigError(f"--bars must be >= 1, got {max_bars}")
    run = live_sessions.open_live(
        config,
        db_path,
        mode=mode,
        log=_log(echo, []),
        max_bars=max_bars,
        deadline=deadline,
        poll_s=poll_s,
        origins=origins,
        env_prefix=env_prefix,
    )
    return Launch(
        session=run.session,
        strategy=run.strategy,
        feed=run.runtime.feed,
        stored=run.runtime.stored,
        resume_after_ms=run.resume_after_ms,
        total=max_bars or 0,
        pacer=run.runtime.pacer,
        final_status="stopped",
        out=None,
        notifier=_notifier(run.session, env_prefix),
        router=run.router,
    )


def _notifier(session: wiring.Session, env_prefix: str) -> Notifier | None:
    """Alerts reach a person from live-market sessions only: a backtest's alerts are
    history (and a sweep would mail one per combination)."""
    from njord import alerting
    from njord.notify import Notifier

    config = session.config
    vault = secrets.provider(configuration.environ(), env_prefix, config.venue.secrets_file)
    channels = alerting.channels(config.alerts, vault)
    if not channels:
        return None
    session.log.add_secrets(alerting.secrets_of(vault))
    notifier = Notifier(
        alerting.Dispatcher(channels, max_per_hour=config.alerts.max_per_hour, wall_ms=wall_ms),
        session=session.manifest.run_id,
        mode=session.manifest.mode,
        symbol=config.data.symbol,
        db=str(session.path),
        log=session.log,
        record=session.writer.record_deliveries,
        wall_ms=wall_ms,
    )
    session.writer.bus.subscribe(notifier)
    return notifier


def in_mode(
    config: Config,
    *,
    env_prefix: str,
    mode: str | None,
    session_db: Path | None,
    max_bars: int | None,
    duration: str | None,
    pace_ms: float,
    origins: Mapping[str, str] | None = None,
) -> Launch:
    """A session of `mode` (default: the config's), quiet on stderr: what a TUI drives.
    Shadow and paper default to `runs/<mode>.db`, resumed when it holds that session."""
    from njord import live as live_sessions

    mode = mode or config.runtime.mode
    if mode == "backtest":
        if max_bars is not None or duration is not None:
            raise ConfigError(
                "--bars and --for limit shadow and paper sessions; a backtest "
                "takes data.start / data.end"
            )
        config = msgspec.structs.replace(
            config, runtime=msgspec.structs.replace(config.runtime, mode="backtest")
        )
        return backtest(
            config,
            env_prefix=env_prefix,
            db_path=session_db,
            out_dir=None,
            pace_ms=pace_ms,
            echo=False,
        )
    if mode not in ("shadow", "paper"):
        raise ConfigError(
            f"the TUI drives backtest, shadow and paper sessions, not {mode!r}: start live "
            "trading with `njord live`, then watch and steer it with `njord tui DB`"
        )
    return live(
        config,
        session_db or Path("runs") / f"{mode}.db",
        mode=mode,
        max_bars=max_bars,
        deadline=live_sessions.deadline_from(duration, None),
        echo=False,
        origins=origins,
    )


def _log(echo: bool, hidden: list[secrets.Secret]) -> SessionLog:
    # Simulated time until the loop sets its clock; no stderr echo under a TUI.
    if echo:
        return SessionLog(now_ms=lambda: 0, secrets=hidden)
    return SessionLog(now_ms=lambda: 0, secrets=hidden, echo=None)


def drive(launch: Launch, *, stop: Stop, progress: Callable[[int], None]) -> LoopResult:
    """Run the loop to the end of the feed or a stop request (then Interrupted, exit 130,
    with everything committed to the last bar). On any error the lease is released."""
    session, feed = launch.session, launch.feed
    try:
        if launch.exports and launch.out is not None:  # equity.csv as the session commits
            launch.curve = Following(session.path, launch.out)
        result = wiring.run_session(
            session,
            strategy=launch.strategy,
            feed=feed,
            resume_after_ms=launch.resume_after_ms,
            pacer=launch.pacer,
            progress=progress,
            stop=stop,
            final_status=launch.final_status,
            notifier=launch.notifier,
            stored=launch.stored,
            router=launch.router,
        )
        if feed.summary.policy != "stored":
            with session.conn:
                session.writer.save_qc(feed.summary, feed.events)
    except BaseException:
        try:
            if launch.curve is not None:  # first: its connection closes before the session's
                launch.curve.abandon()
        finally:
            session.close()
        raise
    return result


class Results(msgspec.Struct, kw_only=True):
    facts: dict[str, Any]
    metrics: Metrics
    qc: dict[str, Any]
    reconciliation: dict[str, int]
    files: list[Path]


def wrap_up(
    session: wiring.Session, out: Path, *, report: bool, curve: Following | None = None
) -> Results:
    """Exports, the report, the summary facts; then the lease goes. A session whose equity
    does not reconcile is a bug (exit 70), reported after its files are written."""
    conn = session.conn
    initial = to_e8(session.config.runtime.initial_cash)
    try:
        # The metrics read the whole equity curve: on a connection of their own, beside
        # the exports, which read it too.
        with Aside(session.path, lambda reader: reads.metrics(reader, initial)) as metrics_read:
            facts = reads.status(conn)
            qc = reads.qc_summary(conn)
            facts["qc"] = (
                f"{qc.get('policy')}: {qc.get('gaps', 0)} gaps, {qc.get('missing_bars', 0)} bars"
            )
            recon = reads.reconciliation(conn, initial)
            files = export_session(conn, out, curve=curve)
            metrics = metrics_read.result()
        if report:
            from njord import report as reporting

            # On the session's own connection: it closes last, leaving no -wal/-shm behind.
            path = out / "report.html"
            path.write_text(reporting.render(conn, session.path), "utf-8")
            files.append(path)
    finally:
        try:
            if curve is not None:  # a failure before its file was finished
                curve.abandon()
        finally:
            session.close()
    if recon["difference_e8"] != 0:
        raise InvariantViolation(f"equity does not reconcile: {recon}")
    return Results(facts=facts, metrics=metrics, qc=qc, reconciliation=recon, files=files)
