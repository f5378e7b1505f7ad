"""`njord sweep` and `njord walkforward`: many backtests, one row each (docs/research.md).

Imported only when one of them runs or shows its help (njord.cli.LAZY_COMMANDS): the
research modules bring pyarrow, the executors and the report with them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from njord import paths, summary
from njord.cli import config_options, load_config, progress, strategy_option
from njord.errors import ConfigError, Interrupted, NjordError
from njord.interrupts import stopping_on_signals
from njord.research import executors, grid, sweep_page
from njord.research import sweep as sweeping
from njord.research import walkforward as wf


@click.command()
@config_options
@strategy_option
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=V1,V2,...",
    help="a config key and its values, or lo..hi with --random (repeatable); a bare "
    "name is a strategy param",
)
@click.option(
    "--grid",
    "grid_file",
    type=click.Path(path_type=Path),
    help="TOML table of key = [values] (adds to --param)",
)
@click.option("--random", "draws", type=int, help="N seeded random combinations instead of all")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of --random")
@click.option("--jobs", type=int, default=None, help="worker processes (default: cores)")
@click.option(
    "--dask",
    metavar="local:N|tcp://HOST:PORT",
    help="run on a Dask cluster: a LocalCluster of N workers, or a scheduler's address",
)
@click.option(
    "--ship-data",
    is_flag=True,
    help="--dask: send the data files to the workers once (no shared filesystem needed)",
)
@click.option(
    "--keep-dbs",
    type=click.Choice(["parent", "worker"]),
    default="parent",
    show_default=True,
    help="--dask: where each session db ends up (worker: the row names host:path)",
)
@click.option(
    "--sort",
    "sort_key",
    default="sharpe",
    show_default=True,
    type=click.Choice([*sweeping.METRICS, "final_equity"]),
)
@click.option("--out", type=click.Path(path_type=Path), help="results CSV (Parquet beside it)")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    help="where the session dbs go (default runs/sweep-<time>-<id>/)",
)
@click.option(
    "--resume",
    type=click.Path(path_type=Path),
    help="finish an interrupted sweep in this directory, skipping finished combinations",
)
def sweep(
    config_path: Path | None,
    sets: tuple[str, ...],
    env_prefix: str,
    strategy: str | None,
    params: tuple[str, ...],
    grid_file: Path | None,
    draws: int | None,
    seed: int,
    jobs: int | None,
    dask: str | None,
    ship_data: bool,
    keep_dbs: str,
    sort_key: str,
    out: Path | None,
    directory: Path | None,
    resume: Path | None,
) -> None:
    """Backtest every combination of config values (or N random ones); one row each."""
    if out is not None:
        paths.check_output(out, kind="file", name="--out")
    if resume is not None:
        if params or grid_file or draws is not None or config_path or sets or directory:
            raise ConfigError(
                "--resume DIR runs the grid and config stored in DIR; "
                "drop --param, --grid, --random, --config, --set and --dir"
            )
        plan = sweeping.load(resume)
    else:
        if directory is not None:
            paths.check_output(directory, kind="dir", name="--dir")
            if directory.is_dir() and any(directory.iterdir()):
                raise ConfigError(
                    f"--dir {directory} is not empty; choose another, remove it, "
                    f"or finish it with --resume {directory}"
                )
        config = load_config(config_path, sets, env_prefix, strategy).config
        axes = grid.axes_from_file(grid_file) if grid_file else []
        axes += grid.axes_from_params(params)
        plan = sweeping.plan_of(config, grid.build(axes, config, draws=draws, seed=seed))
    executor = executors.choose(
        jobs=jobs,
        dask=dask,
        cores=os.cpu_count() or 1,
        ship_data=ship_data,
        keep_dbs=keep_dbs,
    )
    skipped, runnable = sweeping.prepare(plan)
    facts = sweeping.measure(runnable)  # bad data refuses before anything is written
    where = resume or directory or sweeping.new_dir(plan)
    try:
        with stopping_on_signals(), executor:  # a cluster started before anything is written
            if resume is None:
                sweeping.start(plan, where)
            before = len(sweeping.finished(where))
            advance, close = progress(len(runnable) - before, False, unit="combinations")
            try:
                ran = sweeping.run(where, runnable, facts, executor, progress=advance)
            finally:
                close()
    except KeyboardInterrupt:
        if not (where / sweeping.PLAN_FILE).exists():
            raise Interrupted("sweep interrupted before it started; nothing written") from None
        raise Interrupted(
            f"sweep interrupted; finish it with `njord sweep --resume {where}`"
        ) from None
    rows = sweeping.ordered(sweeping.rows(plan, where, skipped), sort_key)
    csv_path = out or where / "sweep.csv"
    parquet_path = sweeping.write(rows, plan.grid.columns, csv_path)
    page = csv_path.with_suffix(".html")
    page.write_text(sweep_page.render(rows, plan.grid.columns, sort_key), encoding="utf-8")
    _sweep_table(rows, plan.grid.columns, sort_key)
    if resume is not None:
        click.echo(f"{before} of {len(runnable)} combinations were finished; ran {ran}")
    click.echo(f"results: {csv_path}, {parquet_path} and {page}; session dbs in {where}/")
    failed = sum(row["status"] == "failed" for row in rows)
    if failed:
        raise NjordError(f"{failed} of {len(rows)} combinations failed; their rows hold the error")


@click.command()
@config_options
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=V1,V2,...",
    help="a strategy param and its values (repeatable): each window sweeps every combination",
)
@click.option("--grid", "grid_file", type=click.Path(path_type=Path), help="TOML grid file")
@click.option("--train", "train", required=True, help="in-sample length, e.g. 14d")
@click.option("--test", "test", required=True, help="out-of-sample length, e.g. 7d")
@click.option("--step", "step", help="window step (default: --test)")
@click.option(
    "--metric",
    default="sharpe",
    show_default=True,
    type=click.Choice([*sweeping.METRICS, "final_equity"]),
    help="what picks each window's params (max_drawdown: smallest)",
)
@click.option("--jobs", type=int, default=None, help="worker processes (default: cores)")
@click.option("--dask", metavar="local:N|tcp://HOST:PORT", help="run on a Dask cluster")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    help="where everything goes (default runs/walkforward-<time>-<id>/)",
)
def walkforward(
    config_path: Path | None,
    sets: tuple[str, ...],
    env_prefix: str,
    params: tuple[str, ...],
    grid_file: Path | None,
    train: str,
    test: str,
    step: str | None,
    metric: str,
    jobs: int | None,
    dask: str | None,
    directory: Path | None,
) -> None:
    """Per window: sweep on train, pick the best by a metric, trade it on test; one row
    per window and the stitched out-of-sample session."""
    if directory is not None:
        paths.check_output(directory, kind="dir", name="--dir")
        if directory.is_dir() and any(directory.iterdir()):
            raise ConfigError(f"--dir {directory} is not empty; choose another or remove it")
    config = load_config(config_path, sets, env_prefix).config
    axes = grid.axes_from_file(grid_file) if grid_file else []
    built = grid.build(axes + grid.axes_from_params(params), config, draws=None, seed=0)
    test_ms = wf.parse_span(test, "--test")
    spans = wf.windows(
        *wf.data_span(config),
        train_ms=wf.parse_span(train, "--train"),
        test_ms=test_ms,
        step_ms=wf.parse_span(step, "--step") if step else test_ms,
    )
    executor = executors.choose(jobs=jobs, dask=dask, cores=os.cpu_count() or 1)
    where = directory or sweeping.new_dir(wf.in_sample_plan(config, built, spans), "walkforward")
    try:
        with stopping_on_signals(), executor:
            result = wf.walk(
                config,
                built,
                where,
                executor=executor,
                metric=metric,
                spans=spans,
                progress=lambda total, unit: progress(total, False, unit=unit),
            )
    except KeyboardInterrupt:
        raise Interrupted(f"walk-forward interrupted; {where} holds what finished") from None
    csv_path = where / "walkforward.csv"
    sweeping.write_rows(result.rows, result.header, csv_path)
    table = Table(title=f"njord walkforward: {len(spans)} windows by {metric}")
    shown = {"window": "window", "test_from": "test from", **{c: c for c in built.columns}}
    shown[f"in_sample_{metric}"] = f"in-sample {metric}"
    shown["out_of_sample_total_return"] = "test return"
    shown["out_of_sample_trades"] = "test trades"
    for title in shown.values():
        table.add_column(title, justify="right")
    for row in result.rows:
        table.add_row(*(row[c][:10] if c == "test_from" else _cell(c, row.get(c)) for c in shown))
    Console().print(table)
    click.echo(f"results: {csv_path}; stitched out-of-sample session: {result.stitched_db}")
    click.echo(f"report: {result.report}")


def _cell(column: str, value: Any) -> str:
    """A walk-forward cell: in- and out-of-sample metrics shown as the metric itself is."""
    return summary.human(column.removeprefix("in_sample_").removeprefix("out_of_sample_"), value)


def _sweep_table(rows: list[dict[str, Any]], names: list[str], sort_key: str) -> None:
    table = Table(title=f"njord sweep: {len(rows)} combinations by {sort_key}")
    shown = (sort_key, "total_return", "max_drawdown", "trades")
    for column in ("combo", *names, *shown):
        table.add_column(column, justify="right")
    for row in rows:
        values = [str(row["combo"]), *(str(row[n]) for n in names)]
        if row["status"] != "ok":
            table.add_row(*values, f"{row['status']}: {row['reason']}", "", "", "")
        else:
            table.add_row(*values, *(summary.human(k, row.get(k)) for k in shown))
    Console().print(table)
