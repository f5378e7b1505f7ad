"""The click CLI: parse, wire, run, and map errors to the exit codes of SPEC §13.

Only click and a few small modules load with it: each command imports what it uses, so
`njord --help` and a `njord status` do not pay for pyarrow, numpy, rich or the engine.
"""

from __future__ import annotations

import atexit
import importlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

import click

import njord
from njord.core.time import TIMEFRAMES
from njord.db_param import session_db
from njord.errors import ConfigError, ExitCode, Interrupted, MismatchError, NjordError
from njord.paths import InputPath, OutputPath

if TYPE_CHECKING:
    from njord import config as configuration
    from njord import launch, wiring
    from njord.store.export import Following

F = TypeVar("F", bound=Callable[..., Any])


def config_options(fn: F) -> F:
    """--config / --set / --env-prefix, shared by every command that reads a config."""
    fn = click.option(
        "--env-prefix", default="NJORD_", show_default=True, help="prefix of config env vars"
    )(fn)
    fn = click.option(
        "--set", "sets", multiple=True, metavar="KEY=VALUE", help="override a key (repeatable)"
    )(fn)
    return click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path),
        default=None,
        help="config TOML file",
    )(fn)


def strategy_option(fn: F) -> F:
    """--strategy: the one flag that chooses what a session runs."""
    return click.option(
        "--strategy",
        metavar="NAME|MODULE:CLASS|FILE.py:CLASS",
        help="run this strategy with its own defaults (params from --set strategy.params.K=V); "
        "see `njord strategies`",
    )(fn)


def load_config(
    config_path: Path | None,
    sets: tuple[str, ...],
    env_prefix: str,
    strategy: str | None = None,
) -> configuration.Loaded:
    from njord import config as configuration

    if config_path is not None and not config_path.exists():
        raise ConfigError(f"config file {config_path} does not exist")
    return configuration.load(
        file=config_path,
        env=configuration.environ(),
        sets=sets,
        env_prefix=env_prefix,
        strategy=strategy,
    )


def echo_json(value: Any) -> None:
    import msgspec

    click.echo(msgspec.json.encode(value, order="sorted").decode())


# Commands whose modules (and their libraries) are imported only when they run or show
# their own help. `njord --help` lists them with the first sentence of their help, kept
# here so that listing imports nothing (tests/unit/test_cli_surface.py keeps it in step).
LAZY_COMMANDS = {
    "contract-tests": (
        "njord.contract_cli:contract_tests",
        "Run a port's contract suite against one adapter (exit 4 if any check fails).",
    ),
    "reconcile": (
        "njord.reconcile_cli:reconcile_cmd",
        "Match a live session's book to its venue now (read-only on both); exit 4 if they differ.",
    ),
    "metrics": (
        "njord.observe_cli:metrics_cmd",
        "Print a session's metrics once, in the OpenMetrics text format.",
    ),
    "sweep": (
        "njord.research_cli:sweep",
        "Backtest every combination of config values (or N random ones); one row each.",
    ),
    "torture": (
        "njord.torture_cli:torture",
        "Kill -9 a session at seeded instants against a faulty simulator, carry it on, and "
        "check the invariants (exit 4 if any fails; each failing seed prints its "
        "reproduction).",
    ),
    "walkforward": (
        "njord.research_cli:walkforward",
        "Per window: sweep on train, pick the best by a metric, trade it on test; one row "
        "per window and the stitched out-of-sample session.",
    ),
    "watch": (
        "njord.observe_cli:watch_cmd",
        "Watch session dbs (files or folders of them), read-only: forward their alerts, "
        "raise 'session silent' / 'session died', and serve their metrics.",
    ),
}


class NjordGroup(click.Group):
    """Maps NjordError to its exit code for every command, under CliRunner too."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in LAZY_COMMANDS:
            return super().get_command(ctx, cmd_name)
        module, _, name = LAZY_COMMANDS[cmd_name][0].partition(":")
        command = getattr(importlib.import_module(module), name)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # click's listing, with each lazy command standing in by its one line of help
        stand_ins = [click.Command(name, help=line) for name, (_, line) in LAZY_COMMANDS.items()]
        listed = click.Group(commands=[*self.commands.values(), *stand_ins])
        listed.format_commands(ctx, formatter)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise  # click's own: usage errors and exits it reports itself
        except NjordError as e:
            if e.exit_code != ExitCode.INTERNAL:
                click.echo(f"error: {e}", err=True)
                raise click.exceptions.Exit(e.exit_code) from None
            self._internal(e)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            raise click.exceptions.Exit(ExitCode.INTERRUPTED) from None
        except Exception as e:  # a bug: the one place it is caught, exit 70
            self._internal(e)

    @staticmethod
    def _internal(error: Exception) -> NoReturn:
        from njord import crash

        click.echo(f"{crash.one_line(error)}; traceback in {crash.save_traceback(error)}", err=True)
        raise click.exceptions.Exit(ExitCode.INTERNAL) from None


@click.group(cls=NjordGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(njord.__version__, prog_name="njord")
def cli() -> None:
    """njord: one bar loop, four modes, one SQLite session db."""


@cli.command()
@click.argument("path", type=OutputPath("file"), default=Path("config.toml"))
@click.option("--force", is_flag=True, help="overwrite an existing file")
def init(path: Path, force: bool) -> None:
    """Write a commented config.toml with every key and its default (PATH - : stdout)."""
    from njord import config as configuration
    from njord import paths

    text = configuration.commented_toml(configuration.Config())
    if str(path) == "-":
        click.echo(text, nl=False)
        return
    if path.exists() and not force:
        raise ConfigError(f"{path} exists; pass --force to overwrite it")
    paths.write(path, text)
    click.echo(f"wrote {path}")


@cli.group("config")
def config_group() -> None:
    """Inspect configuration."""


@config_group.command("show")
@config_options
@strategy_option
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def config_show(
    config_path: Path | None,
    sets: tuple[str, ...],
    env_prefix: str,
    strategy: str | None,
    as_json: bool,
) -> None:
    """Print the effective config and where each value came from; refuse (exit 2) what a
    run of it would refuse, strategy params included."""
    from njord import config as configuration
    from njord import launch, strategies

    loaded = load_config(config_path, sets, env_prefix, strategy)
    cls = launch.check(loaded.config, env_prefix=env_prefix)

    origins = dict(loaded.origins)
    items = configuration.leaf_items(loaded.config)
    given = loaded.config.strategy.params
    for param in strategies.params_of(cls):
        if param.name not in given and not param.required:
            key = f"strategy.params.{param.name}"
            items.append((key, param.default))
            origins[key] = f"default of {cls.__name__}"
    if as_json:
        echo_json([{"key": k, "value": v, "origin": origins[k]} for k, v in items])
        return
    width = max(len(k) for k, _ in items)
    for key, value in items:
        click.echo(f"{key:<{width}}  {_shown(value):<28}  # {origins[key]}")


@cli.command("strategies")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def strategies_cmd(as_json: bool) -> None:
    """List the shipped and installed strategies with their params and defaults."""
    from rich.console import Console
    from rich.table import Table

    from njord import strategies

    found = strategies.describe()
    if as_json:
        echo_json(found)
        return
    table = Table(title="njord strategies (--strategy NAME, or FILE.py:CLASS, or MODULE:CLASS)")
    for column in ("name", "class", "params (defaults)", "what it does"):
        table.add_column(column, overflow="fold")
    for s in found:
        params = ", ".join(
            f"{p.name} (required)" if p.required else f"{p.name}={_shown(p.default)}"
            for p in s.params
        )
        table.add_row(s.name, f"{s.path} ({s.origin})", params or "-", s.error or s.doc)
    Console().print(table)


def _shown(value: Any) -> str:
    from njord import config as configuration

    return "none" if value is None else configuration.toml_value(value)


def progress(
    total: int, quiet: bool, unit: str = "bars"
) -> tuple[Callable[[int], None], Callable[[], None]]:
    """A rich bar on a TTY, plain lines on stderr otherwise (cron, CI)."""
    if quiet:
        return (lambda n: None), (lambda: None)
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        bar = Progress(
            TextColumn(unit),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        task = bar.add_task("bars", total=total, rate="")
        started = time.perf_counter()
        bar.start()

        def advance(n: int) -> None:
            done = bar.tasks[task].completed + n
            rate = done / max(time.perf_counter() - started, 1e-9)
            bar.update(task, advance=n, rate=f"{rate:,.1f} {unit}/s")

        return advance, bar.stop
    done = [0, 0]

    def plain(n: int) -> None:
        done[0] += n
        if done[0] - done[1] >= max(total // 10, 1) or done[0] == total:
            done[1] = done[0]
            click.echo(f"progress: {done[0]}/{total} {unit}", err=True)

    return plain, (lambda: None)


@cli.command()
@config_options
@strategy_option
@click.option("--db", "db_path", type=OutputPath("file", db=True), help="session db path")
@click.option("--out", "out_dir", type=OutputPath("dir"), help="results directory")
@click.option("--from", "start", help="first bar, ISO date/time UTC (inclusive)")
@click.option("--to", "end", help="end of range, ISO date/time UTC (exclusive)")
@click.option("--strict", is_flag=True, help="refuse data with gaps (data.gaps=strict)")
@click.option("--fill", type=click.Choice(["forward", "none"]), help="gap policy for gaps")
@click.option("--quiet", is_flag=True, help="no progress output")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
@click.option("--pace-ms", type=float, default=0.0, hidden=True, help="test-only: slow bars")
@click.option("--no-report", is_flag=True, help="skip report.html")
def backtest(
    config_path: Path | None,
    sets: tuple[str, ...],
    env_prefix: str,
    strategy: str | None,
    db_path: Path | None,
    out_dir: Path | None,
    start: str | None,
    end: str | None,
    strict: bool,
    fill: str | None,
    quiet: bool,
    as_json: bool,
    pace_ms: float,
    no_report: bool,
) -> None:
    """Run a backtest: session db, CSVs, logs, report.html and a summary."""
    from njord import launch

    if strict and fill:
        raise ConfigError(f"--strict refuses gaps and --fill {fill} handles them: give one")
    gaps = "strict" if strict else fill
    extra = [f"data.start={_q(start)}"] if start else []
    extra += [f"data.end={_q(end)}"] if end else []
    extra += [f"data.gaps={_q(gaps)}"] if gaps else []
    loaded = load_config(config_path, (*sets, *extra), env_prefix, strategy)
    run = launch.backtest(
        loaded.config,
        env_prefix=env_prefix,
        db_path=db_path,
        out_dir=out_dir,
        pace_ms=pace_ms,
        exports=True,
    )
    _drive(run, quiet=quiet)
    assert run.out is not None
    _finish(run.session, run.out, as_json=as_json, report=not no_report, curve=run.curve)


def _q(value: str) -> str:
    return '"' + value.replace('"', "") + '"'


def _drive(run: launch.Launch, *, quiet: bool) -> None:
    from njord import launch
    from njord.loop import Stop

    advance, close = progress(run.total, quiet or run.total == 0)
    stop = Stop()

    # SIGTERM and SIGINT finish the current bar, commit, release the lease: exit 130.
    def request(*_: object) -> None:
        stop.requested = True

    previous = {sig: signal.signal(sig, request) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        launch.drive(run, stop=stop, progress=advance)
    finally:
        close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _finish(
    session: wiring.Session,
    out: Path,
    *,
    as_json: bool,
    report: bool = False,
    curve: Following | None = None,
) -> None:
    from njord import launch

    done = launch.wrap_up(session, out, report=report, curve=curve)
    _show(done, session.path, out, as_json=as_json)


def _show(done: launch.Results, db_path: Path, out: Path, *, as_json: bool) -> None:
    import msgspec

    if as_json:
        echo_json(
            {
                "status": done.facts,
                "metrics": msgspec.to_builtins(done.metrics),
                "qc": done.qc,
                "reconciliation": done.reconciliation,
                "files": [str(p) for p in done.files],
            }
        )
        return
    from rich.console import Console

    from njord import summary
    from njord.store import reads

    # issue 13: launch.Results.facts becomes a reads.Status when the lead switches wrap_up.
    facts = msgspec.convert(done.facts, reads.Status)
    summary.render(
        Console(), f"njord {facts.run_id}", summary.rows(done.metrics, facts, done.facts["qc"])
    )
    click.echo(f"session db: {db_path}")
    click.echo(f"results:    {out}/ ({', '.join(p.name for p in done.files)})")


def _live_options(fn: F) -> F:
    for option in reversed(
        [
            click.option("--for", "duration", help="run this long, e.g. 55m (cron)"),
            click.option("--until", help="run until this time, ISO UTC"),
            click.option("--bars", "max_bars", type=int, help="process at most N new bars"),
            click.option(
                "--headless", is_flag=True, help="no progress output (implied without a TTY)"
            ),
            click.option(
                "--poll-s",
                type=float,
                default=1.0,
                show_default=True,
                help="seconds between klines polls while waiting for a bar",
            ),
        ]
    ):
        fn = option(fn)
    fn = session_db(creates=True, help="session db; one that holds a session is resumed")(fn)
    return config_options(strategy_option(fn))


def _live(mode: str, **kw: Any) -> None:
    from njord import launch, live

    loaded = load_config(kw["config_path"], kw["sets"], kw["env_prefix"], kw["strategy"])
    run = launch.live(
        loaded.config,
        kw["db_path"],
        mode=mode,
        max_bars=kw["max_bars"],
        deadline=live.deadline_from(kw["duration"], kw["until"]),
        poll_s=kw["poll_s"],
        origins=loaded.origins,
        env_prefix=kw["env_prefix"],
    )
    try:
        _drive(run, quiet=True)
    except Interrupted:
        _live_summary(mode, run)  # an operator stop ends with the summary line too
        raise
    run.session.close()
    _live_summary(mode, run)


def _live_summary(mode: str, run: launch.Launch) -> None:
    """The last line on stdout of a shadow/paper run (docs/operating.md), read once the
    session has closed its db."""
    from njord.store import db, reads

    conn = db.open_reader(run.session.path)
    try:
        facts = reads.session_status(conn)
        new = reads.bars_after(conn, run.resume_after_ms)
    finally:
        conn.close()
    latency = facts.telemetry.decision_latency_ms
    click.echo(
        f"{mode} {facts.run_id}: {new} new bars, {facts.bars} in all, "
        f"equity {facts.equity}, state {facts.trading.state}, "
        f"decision latency p95 {latency.p95 if latency else 'n/a'} ms"
    )


@cli.command()
@_live_options
def paper(**kw: Any) -> None:
    """Paper-trade on live bars: the backtest's loop, per-bar commits, simulated fills."""
    _live("paper", **kw)


@cli.command()
@_live_options
def shadow(**kw: Any) -> None:
    """Propose orders on live bars without sending any; shadow P&L from the sim matcher."""
    _live("shadow", **kw)


@cli.command()
@_live_options
@click.option("--tiny", is_flag=True, help="cap every order at 10 quote units (venue.tiny = true)")
def live(tiny: bool, **kw: Any) -> None:
    """Trade on Binance spot: real orders through the same loop, reconciled, exactly once.

    Refused unless runtime.mode = "live" in the config and NJORD_ENABLE_LIVE=1, with the
    API key and secret in the environment or venue.secrets_file (docs/operating.md)."""
    if tiny:
        kw["sets"] = (*kw["sets"], "venue.tiny=true")
    _live("live", **kw)


@cli.command("report")
@click.argument("dbs", nargs=-1, type=click.Path(path_type=Path))
@click.option("--db", "db_path", type=click.Path(path_type=Path), help="the session db")
@click.option("--compare", is_flag=True, help="several sessions' equity and metrics side by side")
@click.option(
    "-o", "--out", type=OutputPath("file"), default=Path("report.html"), show_default=True
)
def report_cmd(dbs: tuple[Path, ...], db_path: Path | None, compare: bool, out: Path) -> None:
    """One self-contained HTML report of a session (opens offline), or with --compare
    several sessions side by side."""
    from njord import paths, report

    named = [*([db_path] if db_path else []), *dbs]
    if compare and len(named) < 2:
        raise ConfigError("--compare takes two or more session dbs: njord report --compare A B")
    if not compare and len(named) != 1:
        raise ConfigError("give one session db (--db D or D); several need --compare")
    for path in named:
        if not path.is_file():
            raise ConfigError(f"{path} does not exist")
    text = report.compare(named) if compare else report.build(named[0])
    paths.write(out, text)
    click.echo(f"wrote {out}")


@cli.command()
@click.argument("db_path", type=click.Path(path_type=Path), required=False)
@config_options
@strategy_option
@click.option(
    "--mode",
    type=click.Choice(["backtest", "shadow", "paper", "live"]),
    help="drive a session of this mode in-process (default: runtime.mode of the config; "
    "live is refused: start it with `njord live`, then watch it here)",
)
@click.option(
    "--db",
    "session_db",
    type=OutputPath("file"),
    help="the driven session's db (default: runs/<run>/session.db, runs/<mode>.db)",
)
@click.option("--bars", "max_bars", type=int, help="shadow/paper: process at most N new bars")
@click.option("--for", "duration", help="shadow/paper: run this long, e.g. 55m")
@click.option("--pace-ms", type=float, default=0.0, hidden=True, help="test-only: slow bars")
def tui(
    db_path: Path | None,
    config_path: Path | None,
    sets: tuple[str, ...],
    env_prefix: str,
    strategy: str | None,
    mode: str | None,
    session_db: Path | None,
    max_bars: int | None,
    duration: str | None,
    pace_ms: float,
) -> None:
    """Watch a session db live and steer it (halt / reduce / flatten / resume).

    `njord tui DB` watches a session another process runs; without DB it offers the
    session dbs under runs/. `njord tui --config C [--mode M]` runs the session itself
    and shows it on the same screens; quitting then asks whether to stop it."""
    from njord import launch
    from njord.store import db
    from njord.tui.app import NjordApp
    from njord.tui.picker import PickerApp

    driving = any(x is not None for x in (config_path, strategy, mode, session_db))
    if not driving and (max_bars is not None or duration is not None):
        raise ConfigError("--bars and --for limit a session the TUI drives (--config/--mode)")
    if not driving:
        if db_path is None:
            db_path = PickerApp().run()
            if db_path is None:
                return
        db.check_file(db_path)  # a missing or foreign file is a one-line error, exit 2
        watching = NjordApp(db_path)
        watching.run()
        if watching.outcome is not None:  # the db could not be read (corrupt, vanished)
            raise watching.outcome
        return
    if db_path is not None:
        raise ConfigError(
            f"give a DB to watch ({db_path}) or --config/--mode to drive a session, not both"
        )
    loaded = load_config(config_path, sets, env_prefix, strategy)
    run = launch.in_mode(
        loaded.config,
        origins=loaded.origins,
        env_prefix=env_prefix,
        mode=mode,
        session_db=session_db,
        max_bars=max_bars,
        duration=duration,
        pace_ms=pace_ms,
    )
    app = NjordApp(  # it stops the session on SIGTERM too
        run.session.path,
        session=run,
        config=lambda: load_config(config_path, sets, env_prefix, strategy).config,
    )
    try:
        app.run()
    finally:
        app.stop.requested = True  # if the app itself failed, the session still stops cleanly
    if app.outcome is not None:
        raise app.outcome
    if app.results is not None and run.out is not None:
        _show(app.results, run.session.path, run.out, as_json=False)
    else:
        click.echo(f"session db: {run.session.path}")


@cli.command("continue")
@session_db()
@config_options
@click.option("--out", "out_dir", type=OutputPath("dir"), help="results directory")
@click.option("--quiet", is_flag=True, help="no progress output")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
def continue_(
    db_path: Path,
    config_path: Path | None,
    sets: tuple[str, ...],
    env_prefix: str,
    out_dir: Path | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Carry a stopped or crashed session on from its last committed bar; a shadow, paper
    or live session goes on in its own mode on live bars, as `njord paper --db D` does.
    Given config keys amend it (venue, risk, store) or are refused (exit 2)."""
    from njord import continuation

    live_mode = continuation.live_mode(db_path)
    if live_mode is not None:
        if out_dir is not None or as_json:
            raise ConfigError(
                f"{db_path} holds a {live_mode} session: it reports one line, not --out/--json"
            )
        _live(
            live_mode,
            config_path=config_path,
            sets=sets,
            env_prefix=env_prefix,
            db_path=db_path,
            max_bars=None,
            duration=None,
            until=None,
            poll_s=1.0,
            strategy=None,
        )
        return
    from njord.store.export import check_apart

    check_apart(db_path, out_dir or db_path.parent)
    loaded = load_config(config_path, sets, env_prefix)
    run = continuation.reopen(db_path, loaded.config, loaded.origins)
    _drive(run, quiet=quiet)
    _finish(run.session, out_dir or db_path.parent, as_json=as_json)


@cli.command()
@session_db()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def status(db_path: Path, as_json: bool) -> None:
    """Manifest, lease, trading state, risk counters and P&L of a session."""
    from njord.store import db, reads

    conn = db.open_reader(db_path)
    facts = reads.session_status(conn)
    conn.close()
    if as_json:
        echo_json(facts)
        return
    from rich.console import Console

    from njord import summary

    rows = summary.status_rows(facts, now_ms=time.time_ns() // 1_000_000)
    summary.render(Console(), f"njord status {db_path}", rows, justify="left")


@cli.command("export")
@session_db()
@click.option("--out", "out_dir", type=OutputPath("dir"))
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv")
@click.option("--bars", "with_bars", is_flag=True, help="also bars.parquet: the bars used")
@click.option(
    "--timeframe",
    type=click.Choice([tf for tf in TIMEFRAMES if tf != "1m"]),
    help="also bars-<timeframe>.parquet: the session's bars resampled",
)
@click.option(
    "--daily",
    "daily_dir",
    type=OutputPath("dir"),
    help="per UTC day: manifest, decision log and logs (gzip JSONL) for an archive",
)
def export_cmd(
    db_path: Path,
    out_dir: Path | None,
    fmt: str,
    with_bars: bool,
    timeframe: str | None,
    daily_dir: Path | None,
) -> None:
    """Write trades, orders, fills, equity and logs.jsonl from a session db."""
    from njord.config import stored_config
    from njord.store import db
    from njord.store.daily import export_daily
    from njord.store.export import (
        check_apart,
        export_bars,
        export_resampled,
        export_session,
        resampled_from,
        several_symbols,
    )
    from njord.store.runs import SqliteManifestStore

    if out_dir is None and daily_dir is None:
        raise click.UsageError("name where to write: --out DIR, --daily DIR, or both")
    if out_dir is not None:
        check_apart(db_path, out_dir)
    conn = db.open_reader(db_path)
    if (with_bars or timeframe is not None) and several_symbols(conn):
        conn.close()  # refused before anything is written
        raise ConfigError(
            "--bars / --timeframe export one symbol's bars; this session has several "
            "(their closes are in marks.csv)"
        )
    if timeframe is not None:
        resampled_from(conn, timeframe)  # refused before anything is written
    if daily_dir is not None:
        for path in export_daily(conn, daily_dir):
            click.echo(str(path))
    if out_dir is None:
        conn.close()
        return
    for path in export_session(conn, out_dir, fmt="parquet" if fmt == "parquet" else "csv"):
        click.echo(str(path))
    manifest = SqliteManifestStore(conn).load()
    if with_bars and manifest is not None:
        symbol = stored_config(manifest.config_toml).data.symbol
        click.echo(str(export_bars(conn, out_dir, symbol=symbol)))
    if timeframe is not None:
        click.echo(str(export_resampled(conn, out_dir, timeframe=timeframe)))
    conn.close()


def _control(command: str) -> Callable[..., None]:
    def run(db_path: Path, reason: str, strategy_id: str = "") -> None:
        from njord import controls
        from njord.store import controls as control_queue

        by = controls.operator()
        click.echo(control_queue.post(db_path, command, reason, by=by, strategy_id=strategy_id))

    return run


@cli.command()
@click.option("--db", "db_path", type=click.Path(path_type=Path), help="the session to halt")
@click.option(
    "--file",
    "kill_file",
    type=click.Path(path_type=Path),
    help="create this kill file: every session whose runtime.kill_file names it halts",
)
@click.option("--reason", default="operator", help="why; stored with the change")
@click.option("--strategy", "strategy_id", default="", help="halt this strategy's sleeve only")
def halt(db_path: Path | None, kill_file: Path | None, reason: str, strategy_id: str) -> None:
    """Stop new exposure (cancels and reducing orders pass) until an explicit resume.

    --db posts the halt to one session; --file creates a kill file (for scripts that
    cannot reach a db: every session watching that path halts within 1 s). Both: both.
    --strategy ID (with --db): one strategy's sleeve only; the others trade on."""
    from njord import controls
    from njord.store import controls as control_queue

    if db_path is None and kill_file is None:
        raise ConfigError("give --db D (the session to halt) or --file PATH (a kill file), or both")
    if strategy_id and (db_path is None or kill_file is not None):
        raise ConfigError("--strategy halts one sleeve of one session: give --db D, not --file")
    if kill_file is not None:
        controls.check_kill_file(kill_file)  # refused before the db is written
    if db_path is not None:
        by = controls.operator()
        click.echo(control_queue.post(db_path, "halt", reason, by=by, strategy_id=strategy_id))
    if kill_file is not None:
        click.echo(controls.create_kill_file(kill_file, reason, by=controls.operator()))


for _name, _help in (
    ("reduce", "Only orders that reduce exposure pass (stop new entries)."),
    ("flatten", "Close every position through the normal path, then halt."),
):
    cli.command(_name, help=_help)(
        click.option("--reason", default="operator", help="why; stored with the change")(
            session_db()(_control(_name))
        )
    )


@cli.command()
@session_db()
@click.option("--reason", default="operator", help="why; stored with the change")
@click.option("--confirm", is_flag=True, help="required: resuming re-enables trading")
@click.option("--strategy", "strategy_id", default="", help="resume this strategy's sleeve only")
def resume(db_path: Path, reason: str, confirm: bool, strategy_id: str) -> None:
    """Return a halted or reducing session (or, --strategy ID, one halted sleeve) to
    ACTIVE (needs --confirm)."""
    if not confirm:
        raise ConfigError("resume re-enables trading; run it again with --confirm")
    _control("resume")(db_path, reason, strategy_id)


@cli.command()
@session_db()
@config_options
@click.option("--strategy", "strategy_id", default="", help="reload this strategy only")
def reload(
    db_path: Path,
    config_path: Path | None,
    sets: tuple[str, ...],
    env_prefix: str,
    strategy_id: str,
) -> None:
    """Swap a running session's strategies for their code and params as they are now (the
    config's [[strategies]] or [strategy], and the source), at the session's next bar.

    Only params and code may change; a version that does not import or validate is
    refused and nothing changes. Each version is kept in the db: `verify` re-runs it."""
    from njord import controls
    from njord.reload import reload as post_reload

    given = load_config(config_path, sets, env_prefix).config
    click.echo(post_reload(db_path, given, strategy_id=strategy_id, by=controls.operator()))


@cli.group("data")
def data_group() -> None:
    """Bar history: import files (data import) or fetch klines from a venue (data fetch)."""


@data_group.command("import")
@click.argument("files", nargs=-1, required=True, type=InputPath("file"))
@click.option("--out", type=OutputPath("file"), required=True, help="Parquet file")
@click.option(
    "--symbol",
    help="label of the bars (default: the data's symbol column, else the symbol a "
    "Binance dump's file name starts with, else BTCUSDT); "
    "a symbol column holding another one is refused",
)
@click.option("--format", "fmt", type=click.Choice(["parquet", "binance", "csv"]))
@click.option("--map", "mapping", multiple=True, help="field=column, e.g. ts=open_time")
def data_import(
    files: tuple[Path, ...],
    out: Path,
    symbol: str | None,
    fmt: str | None,
    mapping: tuple[str, ...],
) -> None:
    """Validate bars and write them as Parquet in the bar schema.

    Binance trade dumps (trades or aggTrades) become 1-minute bars; minutes without a
    trade repeat the last close with zero volume, marked filled."""
    from njord.data import importer, trades
    from njord.data.qc import utc

    if all(trades.layout(f) for f in files):
        named = symbol or importer.one_symbol([importer.named_symbol(f) for f in files])
        report = trades.import_trades(list(files), out=out, symbol=named)
        click.echo(
            f"aggregated {report.rows_in} trades into {report.rows_out} 1-minute bars "
            f"{utc(report.first_ts_ms)} .. {utc(report.last_ts_ms)} -> {report.out}"
        )
        return
    report = importer.import_files(
        list(files),
        out=out,
        fmt=cast(importer.Format | None, fmt),
        mapping=importer.parse_map(mapping),
        symbol=symbol,
    )
    length = "" if report.timeframe == "1m" else f"{report.timeframe} "
    click.echo(
        f"imported {report.rows_out} {length}bars ({report.duplicates_dropped} duplicates dropped) "
        f"{utc(report.first_ts_ms)} .. {utc(report.last_ts_ms)} -> {report.out}; "
        f"{report.gaps_line()}"
    )


@cli.command()
@session_db()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def audit(db_path: Path, as_json: bool) -> None:
    """Integrity, hash chain, rows against the log, book recomputed from fills (exit 4)."""
    from njord.store import db
    from njord.store.audit import audit as run_audit

    conn = db.open_reader(db_path)
    checks = run_audit(conn)
    conn.close()
    if as_json:
        echo_json(
            [{"check": name, "ok": problem is None, "problem": problem} for name, problem in checks]
        )
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"njord audit {db_path}")
        table.add_column("check")
        table.add_column("verdict")
        for name, problem in checks:
            table.add_row(name, "ok" if problem is None else f"[red]FAIL[/red] {problem}")
        Console().print(table)
    failed = [f"{name}: {problem}" for name, problem in checks if problem is not None]
    if failed:
        raise MismatchError(failed[0])


@cli.command()
@session_db()
@click.option("--from-snapshot", "snapshot", type=int, help="snapshot id (default: the first)")
def replay(db_path: Path, snapshot: int | None) -> None:
    """Rebuild the book from a snapshot plus the decision log; compare with the stored one."""
    from njord import replay as replaying
    from njord import wiring
    from njord.config import stored_config
    from njord.store import db
    from njord.store.portfolio import SqlitePortfolioStore, SqliteSnapshotStore
    from njord.store.runs import SqliteManifestStore

    conn = db.open_reader(db_path)
    manifest = SqliteManifestStore(conn).load()
    ids = SqliteSnapshotStore(conn).ids()
    if manifest is None or not ids:
        raise ConfigError(f"{db_path} holds no snapshots to replay from")
    chosen = ids[0] if snapshot is None else snapshot
    book = wiring.build_book(stored_config(manifest.config_toml), manifest)
    replaying.rebuild(book, conn, chosen)
    problems = SqlitePortfolioStore(conn).differences(book.snapshot())
    conn.close()
    if problems:
        for problem in problems:
            click.echo(f"mismatch: {problem}", err=True)
        raise MismatchError(f"replay from snapshot {chosen} differs: {problems[0]}")
    click.echo(f"replay from snapshot {chosen} of {len(ids)}: state matches the stored one")


@cli.command()
@session_db()
def verify(db_path: Path) -> None:
    """Re-run a backtest from its db alone; exit 4 unless every decision is the same."""
    from njord.data.qc import utc
    from njord.verify import verify as run_verify

    result = run_verify(db_path)
    if result.status != "finished":
        stopped = "before its first bar" if result.last_bar_ms is None else utc(result.last_bar_ms)
        click.echo(
            f"incomplete: {result.bars} bars verified identical, session stopped at "
            f"{stopped} (status {result.status}); {result.decisions} decisions reproduce"
        )
        return
    click.echo(
        f"verified: {result.decisions} decisions and the equity curve "
        f"(sha256 {result.equity_sha256[:12]}) reproduce from the db alone"
    )


@cli.command("diff")
@click.argument("db_a", type=click.Path(path_type=Path))
@click.argument("db_b", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--check", is_flag=True, help="exit 4 when the sessions diverge (for scripts)")
def diff_cmd(db_a: Path, db_b: Path, as_json: bool, check: bool) -> None:
    """Align two sessions by bar, name the first divergence and explain each difference."""
    from njord.diff import diff as run_diff

    report = run_diff(db_a, db_b)
    first = report.first
    if as_json:
        echo_json(report)
    elif first is None:
        click.echo(
            f"no divergence over {report.bars_compared} common bars "
            f"and {report.intents_compared} intents"
        )
    else:
        from rich.console import Console
        from rich.table import Table

        click.echo(f"first divergence at {first.bar_utc}: {first.what}: {first.cause}")
        table = Table()
        for column in ("bar", "what", "cause", str(db_a), str(db_b)):
            table.add_column(column)
        for d in report.differences:
            table.add_row(d.bar_utc, d.what, d.cause, d.a, d.b)
        Console().print(table)
    if check and first is not None:
        raise MismatchError(f"the sessions diverge from {first.bar_utc} ({first.what})")


@cli.command()
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("dst", type=OutputPath("file"))
def backup(src: Path, dst: Path) -> None:
    """Copy a session db safely, even while it is being written (SQLite online backup)."""
    from njord.store import db

    db.backup(src, dst)
    click.echo(f"backed up {src} to {dst}")


@cli.command()
@session_db()
def migrate(db_path: Path) -> None:
    """Upgrade a session db of an older schema, after a backup copy (readers never do)."""
    from njord.store import db

    found, kept = db.migrate(db_path)
    if kept is None:
        click.echo(f"{db_path} is at schema version {found} already; nothing to do")
        return
    click.echo(
        f"migrated {db_path} from schema version {found} to {db.schema_version()}; "
        f"the old file is kept as {kept}"
    )


@cli.command("exchange-sim")
@click.option(
    "--data",
    "data",
    multiple=True,
    required=True,
    metavar="[SYMBOL=]PATH",
    help="bars to replay, a Parquet file or directory; once per symbol (bare: --symbol's)",
)
@click.option("--port", type=int, default=0, show_default=True, help="0: the OS picks")
@click.option(
    "--speed",
    type=float,
    default=60.0,
    show_default=True,
    help="simulated seconds per second (0: only /sim/advance moves the clock)",
)
@click.option("--start", help="market time at launch, ISO UTC (default: the first bar)")
@click.option("--symbol", default="BTCUSDT", show_default=True)
@click.option("--api-key", help="accept this key (default: generate a pair and print it)")
@click.option("--api-secret", help="with --api-key")
@click.option(
    "--balance",
    "balances",
    multiple=True,
    metavar="ASSET=AMOUNT",
    help="starting balance (repeatable; default USDT=10000)",
)
@click.option(
    "--faults",
    "faults_path",
    type=InputPath("file"),
    help="fault-injection TOML (docs/exchange-sim.md)",
)
def exchange_sim(
    data: tuple[str, ...],
    port: int,
    speed: float,
    start: str | None,
    symbol: str,
    api_key: str | None,
    api_secret: str | None,
    balances: tuple[str, ...],
    faults_path: Path | None,
) -> None:
    """Serve a Binance-spot-compatible REST API on 127.0.0.1, replaying DATA."""
    from njord import sim, wiring
    from njord.interrupts import stopping_on_signals

    if bool(api_key) != bool(api_secret):
        raise ConfigError("--api-key and --api-secret go together")
    if speed < 0:
        raise ConfigError(f"--speed must be >= 0, got {speed}")
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be 0..65535 (0: the OS picks), got {port}")
    server = sim.build(
        sim.parse_data(data, symbol),
        symbol=symbol,
        port=port,
        speed=speed,
        start_ms=wiring.parse_utc(start or "", "--start"),
        balances=sim.parse_balances(balances),
        faults=sim.fault_config.load(faults_path) if faults_path else None,
        api_key=api_key,
        api_secret=api_secret,
    )
    click.echo(server.url)
    if not api_key:
        click.echo(f"api-key {server.state.api_key}")
        click.echo(f"api-secret {server.state.api_secret}")
    sys.stdout.flush()
    try:
        with stopping_on_signals():
            server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@data_group.command("fetch")
@click.option("--symbol", default="BTCUSDT", show_default=True)
@click.option("--from", "start", required=True, help="first bar, ISO UTC (inclusive)")
@click.option("--to", "end", required=True, help="end, ISO UTC (exclusive)")
@click.option("--base-url", help="REST root (default: venue.base_url from config)")
@click.option("--out", type=OutputPath("file"), required=True, help="Parquet file")
@config_options
def data_fetch(
    symbol: str,
    start: str,
    end: str,
    base_url: str | None,
    out: Path,
    config_path: Path | None,
    sets: tuple[str, ...],
    env_prefix: str,
) -> None:
    """Pull 1-minute klines page by page over REST into a Parquet file of the bar schema."""
    from njord import wiring
    from njord.data.fetch import fetch
    from njord.data.qc import utc

    config = load_config(config_path, sets, env_prefix).config
    first = wiring.parse_utc(start, "--from")
    stop = wiring.parse_utc(end, "--to")
    assert first is not None
    assert stop is not None
    if stop <= first:
        raise ConfigError(f"empty range: --to {end} is not after --from {start}")
    report = fetch(
        base_url or config.venue.base_url,
        symbol=symbol,
        start_ms=first,
        end_ms=stop,
        out=out,
        progress=lambda n, total: click.echo(f"fetched {n}/{total} bars", err=True),
    )
    click.echo(
        f"fetched {report.rows_out} bars {utc(report.first_ts_ms)} .. "
        f"{utc(report.last_ts_ms)} -> {report.out}; {report.gaps_line()}"
    )


def main() -> NoReturn:
    """The `njord` command. It ends the process itself once the command is done: Python's
    own teardown frees pyarrow's and numpy's objects one by one and joins their thread
    pools, a fifth of a second (a month's backtest takes four) spent after the last byte is
    written. What teardown does that matters is done first (`end`)."""
    try:
        cli.main(prog_name="njord")
    except SystemExit as e:
        end(e.code)
    end(0)  # standalone click always exits: only for the type checker


def end(code: object) -> NoReturn:
    """`sys.exit(code)` without the teardown, after what Python's exit does first, in its
    order: threading's own exit callbacks (an executor still alive tells its idle workers
    to stop) and the other non-daemon threads joined, then the exit handlers (weakref
    finalizers among them); output flushed, a flush that fails exiting 120 as Python's
    own does."""
    threading._shutdown()  # type: ignore[attr-defined]  # what Py_Finalize calls first
    atexit._run_exitfuncs()
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"): the message on stderr, status 1
        print(code, file=sys.stderr)
        status = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`njord ... | head`), a closed stream
            status = status or 120
    os._exit(status)
