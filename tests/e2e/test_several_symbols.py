"""One session, several symbols (issue 17, its first step): bars merged by minute, each
symbol priced and marked at its own close, every check that holds for one symbol holding
for several."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import ROOT, SAMPLE, backtest_args, invoke, query, run_killable

ETH = ROOT / "sample_data" / "ETHUSDT-1m-2024-01.parquet"
DAYS = 2


def _slice(source: Path, path: Path, *, drop: range = range(0)) -> Path:
    table = pq.read_table(source).slice(0, DAYS * 1440)
    if drop:
        keep = [i for i in range(table.num_rows) if i not in drop]
        table = table.take(keep)
    pq.write_table(table, path)
    return path


@pytest.fixture
def btc(tmp_path: Path) -> Path:
    return _slice(SAMPLE, tmp_path / "btc.parquet")


@pytest.fixture
def eth(tmp_path: Path) -> Path:
    return _slice(ETH, tmp_path / "eth.parquet")


def _args(db: Path, paths: dict[str, Path], *extra: str) -> list[str]:
    sets = [f'data.paths.{symbol}="{path}"' for symbol, path in paths.items()]
    if len(paths) == 1:  # a session of one symbol, as it has always been configured
        ((symbol, path),) = paths.items()
        sets = [f'data.path="{path}"', f'data.symbol="{symbol}"']
    return [
        "backtest",
        "--config",
        str(ROOT / "config.toml"),
        *(arg for s in sets for arg in ("--set", s)),
        "--set",
        'risk.allowed_symbols=["BTCUSDT", "ETHUSDT"]',
        "--set",
        "risk.max_open_positions=2",
        "--strategy",
        "user_strategies:EachSymbolCross",
        "--db",
        str(db),
        "--out",
        str(db.parent / f"{db.stem}-out"),
        "--quiet",
        "--no-report",
        *extra,
    ]


def _fills(db: Path, symbol: str) -> list[tuple[object, ...]]:
    return query(
        db,
        "SELECT f.ts_ms, f.side, f.qty_e8, f.price_e8, f.fee_e8, f.realised_e8, o.type "
        f"FROM fills f JOIN orders o USING (client_order_id) WHERE f.symbol = '{symbol}' "
        "ORDER BY f.fill_id",
    )


def _equity(db: Path) -> int:
    (row,) = query(db, "SELECT equity_e8 FROM equity ORDER BY ts_ms DESC LIMIT 1")
    return int(str(row[0]))


def test_each_symbol_trades_as_it_would_alone_and_the_account_adds_up(
    tmp_path: Path, btc: Path, eth: Path, user_strategies: None
) -> None:
    both = tmp_path / "both.db"
    runs = {
        both: {"BTCUSDT": btc, "ETHUSDT": eth},
        tmp_path / "btc.db": {"BTCUSDT": btc},
        tmp_path / "eth.db": {"ETHUSDT": eth},
    }
    for db, paths in runs.items():
        result = invoke(*_args(db, paths))
        assert result.exit_code == 0, result.output
    for symbol, alone in (("BTCUSDT", tmp_path / "btc.db"), ("ETHUSDT", tmp_path / "eth.db")):
        mine = _fills(both, symbol)
        assert len(mine) > 20  # limits that rested and filled on the symbol's own bars
        assert {row[6] for row in mine} == {"LIMIT", "MARKET"}
        assert mine == _fills(alone, symbol)
    # One cash account, each position marked at its own close: P&L adds to the unit.
    initial = 10_000 * 10**8
    parts = _equity(tmp_path / "btc.db") - initial + _equity(tmp_path / "eth.db") - initial
    assert _equity(both) - initial == parts
    # One equity row a minute; a mark per symbol a minute, at that symbol's close.
    assert query(both, "SELECT count(*), sum(close_e8), sum(position_e8) FROM equity") == [
        (DAYS * 1440, 0, 0)
    ]
    closes = dict(query(both, "SELECT symbol, sum(close_e8) FROM marks GROUP BY symbol"))
    alone_btc = query(tmp_path / "btc.db", "SELECT sum(close_e8) FROM equity")[0][0]
    assert closes["BTCUSDT"] == alone_btc
    positions = dict(query(both, "SELECT symbol, qty_e8 FROM positions"))
    assert set(positions) == {"BTCUSDT", "ETHUSDT"}
    for check in ("verify", "audit", "replay"):
        result = invoke(check, str(both))
        assert result.exit_code == 0, result.output


def test_a_minute_one_symbol_lacks_is_that_symbols_gap_only(
    tmp_path: Path, btc: Path, user_strategies: None
) -> None:
    eth = _slice(ETH, tmp_path / "eth-gap.parquet", drop=range(100, 103))
    paths = {"BTCUSDT": btc, "ETHUSDT": eth}
    strict = invoke(*_args(tmp_path / "strict.db", paths))
    assert strict.exit_code == 3, strict.output
    assert "eth-gap.parquet" in strict.output
    db = tmp_path / "skip.db"
    result = invoke(*_args(db, paths, "--set", 'data.gaps="none"'))
    assert result.exit_code == 0, result.output
    assert query(db, "SELECT count(*) FROM equity") == [(DAYS * 1440,)]  # BTC's minutes
    events = query(db, "SELECT symbol, kind, bars FROM qc_events")
    assert events == [("ETHUSDT", "gap", 3), ("ETHUSDT", "skipped", 3)]
    bars = query(db, "SELECT sum(rows) FROM bar_chunks")
    assert bars == [(2 * DAYS * 1440 - 3,)]
    assert invoke("verify", str(db)).exit_code == 0


def test_a_killed_session_of_several_symbols_carries_on_to_the_same_end(
    tmp_path: Path, btc: Path, eth: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'tests' / 'e2e'}{os.pathsep}{ROOT}"}
    paths = {"BTCUSDT": btc, "ETHUSDT": eth}
    whole = tmp_path / "whole.db"
    assert run_killable(_args(whole, paths), env=env) == 0
    killed = tmp_path / "killed.db"
    extra = ("--set", "runtime.commit_every=100")
    assert (
        run_killable(_args(killed, paths, *extra), env={**env, "NJORD_KILL_AT": "commit:7"}) == -9
    )
    assert run_killable(["continue", str(killed), "--quiet"], env=env) == 0
    for symbol in paths:
        assert _fills(killed, symbol) == _fills(whole, symbol)
    assert _equity(killed) == _equity(whole)
    same = "SELECT ts_ms, symbol, close_e8, position_e8 FROM marks ORDER BY ts_ms, symbol"
    assert query(killed, same) == query(whole, same)


@pytest.mark.parametrize(
    ("sets", "says"),
    [
        (
            ['risk.allowed_symbols=["BTCUSDT"]'],
            "does not hold data.paths ETHUSDT",
        ),
        (['strategy.symbols=["SOLUSDT"]'], "strategy.symbols names SOLUSDT"),
        (['runtime.mode="paper"'], "session of several symbols names them in data.symbols"),
        (['data.symbols=["BTCUSDT", "ETHUSDT"]'], "give data.paths"),
    ],
)
def test_several_symbols_refused_with_what_to_change(
    tmp_path: Path, btc: Path, eth: Path, sets: list[str], says: str
) -> None:
    db = tmp_path / "bad.db"
    args = _args(db, {"BTCUSDT": btc, "ETHUSDT": eth})
    at = args.index("--strategy")
    del args[at : at + 2]  # the shipped strategy will do
    for s in sets:
        args += ["--set", s]
    if 'runtime.mode="paper"' in sets:  # `njord paper` takes the same config, less its files
        at = args.index("--out")
        args = ["paper", *args[1:at], "--headless"]
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not db.exists()


@pytest.mark.parametrize("several", [False, True])
def test_a_restart_from_a_strategy_snapshot_mid_chunk_stores_no_bar_twice(
    tmp_path: Path, btc: Path, eth: Path, several: bool
) -> None:
    # A session starting at noon takes its strategy snapshots (every 1,440 bars) inside a
    # stored chunk: the restart's first batch begins there, and its bars were stored once.
    paths = {"BTCUSDT": btc, "ETHUSDT": eth} if several else {"BTCUSDT": btc}
    db = tmp_path / "noon.db"
    args = _args(db, paths, "--from", "2024-01-01T12:00", "--set", "runtime.commit_every=720")
    # A shipped sample that snapshots its state and keeps nothing across symbols.
    args[args.index("--strategy") + 1] = "trendline_break"
    args += ["--set", "strategy.params={}"]
    env = {**os.environ, "NJORD_KILL_AT": "commit:3"}
    assert run_killable(args, env=env) == -9
    assert run_killable(["continue", str(db), "--quiet"], env=dict(os.environ)) == 0
    rows = query(db, "SELECT sum(rows), count(DISTINCT first_ts_ms) FROM bar_chunks")
    minutes = (DAYS * 1440 - 720) * (2 if several else 1)
    assert rows[0][0] == minutes
    result = invoke("verify", str(db))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("strategy", "sets", "says"),
    [
        ("sma_crossover", [], "sma_crossover keeps one set of running sums of closes"),
        ("rsi_tema_bb", ["strategy.params={}"], "rsi_tema_bb keeps one set of RSI and TEMA"),
    ],
)
def test_a_sample_that_keeps_one_state_is_refused_several_symbols(
    tmp_path: Path, btc: Path, eth: Path, strategy: str, sets: list[str], says: str
) -> None:
    """Given two symbols, the sample would mix their closes in one running state: refused
    before a db exists; the same sample on one of them (`strategy.symbols`) runs."""
    db = tmp_path / "mixed.db"
    args = _args(db, {"BTCUSDT": btc, "ETHUSDT": eth}, *(a for s in sets for a in ("--set", s)))
    args[args.index("--strategy") + 1] = strategy
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {says}")
    assert "would mix BTCUSDT, ETHUSDT: give it one symbol" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not db.exists()
    alone = invoke(*args, "--set", 'strategy.symbols=["ETHUSDT"]')
    assert alone.exit_code == 0, alone.output


def test_a_sample_that_keeps_one_state_is_refused_several_timeframes(tmp_path: Path) -> None:
    """sma_crossover on 1m and 1h bars fed both series into one running sum: 270 trades,
    neither the 1m run's 1,476 nor the 1h run's 28. Refused before a db exists."""
    db = tmp_path / "mixed.db"
    args = backtest_args(SAMPLE, db, "--set", 'strategy.timeframes=["1m", "1h"]')
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert result.output == (
        "error: sma_crossover keeps one set of running sums of closes and would mix its "
        '1m, 1h bars: give it one timeframe (strategy.timeframes = ["..."])\n'
    )
    assert not db.exists()


@pytest.mark.parametrize(
    ("command", "sets", "says"),
    [
        ("backtest", ['data.symbols=["BTCUSDT", "ETHUSDT"]'], "from [data.paths]"),
        ("paper", ['data.symbols=["BTCUSDT", "BTCUSDT"]'], "distinct symbols"),
        ("live", ['data.symbols=["BTCUSDT", "ETHUSDT"]'], "a live session trades one symbol"),
        ("live", ['data.symbols=["ETHUSDT"]'], "a live session trades one symbol"),
    ],
)
def test_data_symbols_refused_where_it_does_not_apply(
    tmp_path: Path, command: str, sets: list[str], says: str
) -> None:
    db = tmp_path / "bad.db"
    args = [command, "--db", str(db), "--set", 'risk.allowed_symbols=["BTCUSDT", "ETHUSDT"]']
    args += [a for s in sets for a in ("--set", s)]
    if command != "backtest":
        args += ["--set", 'venue.base_url="http://127.0.0.1:9"']
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not db.exists()
