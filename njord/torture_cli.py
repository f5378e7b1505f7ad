"""`njord torture`: seeded kill -9 and venue faults against the user's own session.

Imported only when it runs or shows its help (njord.cli.LAZY_COMMANDS)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import click
import msgspec

from njord.cli import config_options, load_config
from njord.errors import ConfigError, MismatchError
from njord.paths import OutputPath
from njord.torture.plan import MIN_BARS

if TYPE_CHECKING:
    from njord.torture.seed import Setup


@click.command("torture")
@config_options
@click.option("--seeds", "seed_count", type=int, help="run seeds 1..N (default 20)")
@click.option("--seed", type=int, help="run this one seed (a failing seed's reproduction)")
@click.option("--mode", type=click.Choice(["paper", "live"]), default="paper", show_default=True)
@click.option("--bars", type=int, default=200, show_default=True, help="bars per seed")
@click.option("--jobs", type=int, default=1, show_default=True, help="seeds run at once")
@click.option(
    "--out",
    type=OutputPath("dir"),
    default=Path("runs/torture"),
    show_default=True,
    help="working directory; a failing seed's db, order log and plan stay here",
)
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON (for CI)")
def torture(
    config_path: Path | None,
    sets: tuple[str, ...],
    env_prefix: str,
    seed_count: int | None,
    seed: int | None,
    mode: str,
    bars: int,
    jobs: int,
    out: Path,
    as_json: bool,
) -> None:
    """Kill -9 a session at seeded instants against a faulty simulator, carry it on, and
    check the invariants (exit 4 if any fails; each failing seed prints its reproduction)."""
    seeds = _seeds(seed_count, seed)
    if bars < MIN_BARS:
        raise ConfigError(
            f"--bars must be >= {MIN_BARS} (room for every kill and fault), got {bars}"
        )
    if jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {jobs}")
    if config_path is None:
        raise ConfigError("--config is required: the session to torture (e.g. config.toml)")
    setup = _setup(config_path, sets, env_prefix, mode=mode, bars=bars, out=out)
    from njord.torture import report as reporting
    from njord.torture.seed import References, run_seed

    started = time.monotonic()
    references = References(setup)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(lambda s: run_seed(setup, s, references), seeds))
    done = reporting.build(results, mode=mode, bars=bars, wall_s=time.monotonic() - started)
    if as_json:
        click.echo(msgspec.json.encode(done).decode())
    else:
        for line in reporting.lines(done):
            click.echo(line)
    if not done.ok:
        first = done.failures[0]
        raise MismatchError(
            f"seed {first.seed} broke {first.invariant}; reproduce: {first.reproduce}"
        )


def _seeds(count: int | None, seed: int | None) -> list[int]:
    if count is not None and seed is not None:
        raise ConfigError("--seed and --seeds exclude each other: give one seed or a count")
    if seed is not None:
        return [seed]
    if count is not None and count < 1:
        raise ConfigError(f"--seeds must be >= 1, got {count}")
    return list(range(1, (count or 20) + 1))


def _setup(
    config_path: Path, sets: tuple[str, ...], env_prefix: str, *, mode: str, bars: int, out: Path
) -> Setup:
    from njord import wiring
    from njord.sim import server as sim_server
    from njord.sim.market import split_symbol
    from njord.torture.seed import LIVE_RECV_WINDOW_MS
    from njord.torture.seed import Setup as Shared

    config = load_config(config_path, sets, env_prefix).config
    wiring.check_live_bars(config)
    if mode == "live":
        from njord.live import check_live_only

        check_live_only(config)
    data = Path(config.data.path)
    if not data.exists():
        raise ConfigError(f"data.path {data} does not exist: the simulator replays it")
    first = wiring.parse_utc(config.data.start, "data.start")
    feed = wiring.history_of(config)
    if first is None:
        first = next(iter(feed.batches())).ts_ms[0]
    try:
        base, quote = split_symbol(config.data.symbol)
    except ValueError as e:
        raise ConfigError(f"data.symbol: {e}") from None
    recv_window_ms = config.venue.recv_window_ms
    key = secret = ""
    if mode == "live":  # keys of torture's own simulators; a shorter recvWindow (seed.py)
        recv_window_ms = min(recv_window_ms, LIVE_RECV_WINDOW_MS)
        key, secret = sim_server.new_credentials()
    out.mkdir(parents=True, exist_ok=True)
    return Shared(
        config_path=config_path.absolute(),
        sets=sets,
        env_prefix=env_prefix,
        mode=mode,
        bars=bars,
        out=out.absolute(),
        data=data.absolute(),
        symbol=config.data.symbol,
        base=base,
        quote=quote,
        first_ms=int(first),
        initial_cash=Decimal(str(config.runtime.initial_cash)),
        recv_window_ms=recv_window_ms,
        api_key=key,
        api_secret=secret,
    )
