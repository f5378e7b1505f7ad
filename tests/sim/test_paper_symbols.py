"""Issue 17: a paper session of two symbols (`data.symbols`) against the simulator serving
both, killed -9 at seeded instants in every phase and carried on by the same command,
ends exactly where an uninterrupted run does; each symbol trades as a backtest of its
bars alone would."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from njord.data.history import read_ipc
from njord.sim.server import SimServer
from tests.conftest import SAMPLE, bars_in, invoke, query, run_killable, user_strategies_env
from tests.sim.conftest import (
    ETH_SAMPLE,
    PAIR,
    PAIR_MINUTES,
    assert_ends_as,
    frozen_market,
    kill_in_every_phase,
)

SYMBOLS, BARS = PAIR, PAIR_MINUTES
KILLS = 24
COMPARED = (
    "SELECT ts_ms, cash_e8, equity_e8 FROM equity ORDER BY ts_ms",
    "SELECT * FROM marks ORDER BY ts_ms, symbol",
    "SELECT * FROM fills ORDER BY fill_id",
    "SELECT client_order_id, symbol, side, type, qty_e8, status, filled_qty_e8, avg_price_e8 "
    "FROM orders ORDER BY intent_id",
    "SELECT intent_id, bar_ts_ms, seq, symbol, side, qty_e8, allowed, reason FROM intents",
    "SELECT * FROM account",
    "SELECT * FROM lots",
)


def _args(db: Path, url: str, *extra: str, symbols: tuple[str, ...] = SYMBOLS) -> list[str]:
    """A paper session of `symbols` from the sample's first bar, on its own config file."""
    config = db.with_suffix(".toml")
    named = ", ".join(f'"{s}"' for s in symbols)
    config.write_text(
        f'[data]\nsymbols = [{named}]\nstart = "2024-01-01T00:00"\n'
        f'[venue]\nbase_url = "{url}"\n'
        f"[risk]\nallowed_symbols = [{named}]\nmax_open_positions = 2\n"
        '[strategy]\nname = "user_strategies:EachSymbolCross"\n',
        encoding="utf-8",
    )
    return ["paper", "--config", str(config), "--db", str(db), "--poll-s", "0.01", *extra]


def _paper(db: Path, url: str, kill_at: str | None, *limit: str) -> int:
    """`limit`: the run's end, by default 1.5 s of wall time (a run carried on after a
    kill takes what the market has left); the reference run ends at its last bar instead,
    however slow a loaded machine makes it."""
    env = user_strategies_env()
    if kill_at:
        env["NJORD_KILL_AT"] = kill_at
    return run_killable(_args(db, url, *(limit or ("--for", "1.5s"))), env)


@pytest.mark.usefixtures("user_strategies")
def test_two_symbols_trade_on_paper_and_each_as_its_bars_alone_would(
    pair_market: SimServer, tmp_path: Path
) -> None:
    paper = tmp_path / "paper.db"
    done = invoke(*_args(paper, pair_market.url, "--bars", str(BARS)), env=user_strategies_env())
    assert done.exit_code == 0, done.output
    assert f"{BARS} new bars, {BARS} in all" in done.output
    rows = query(paper, "SELECT symbol, count(*) FROM marks GROUP BY 1 ORDER BY 1")
    assert rows == [(s, BARS) for s in SYMBOLS]
    traded = query(paper, "SELECT symbol, count(*) FROM fills GROUP BY 1 ORDER BY 1")
    assert [s for s, n in traded if isinstance(n, int) and n >= 2] == list(SYMBOLS)
    (market_rows,) = query(paper, "SELECT count(*) FROM paper_market")[0]
    assert market_rows == 2  # the broker's last bar of each symbol
    assert invoke("audit", str(paper)).exit_code == 0
    verified = invoke("verify", str(paper), env=user_strategies_env())
    assert verified.exit_code == 0, verified.output
    assert f"{BARS} bars verified identical" in verified.output
    # The strategy sizes each trade in quote: a symbol's trades depend on its bars only,
    # so each symbol's fills are those of a paper session of that symbol alone.
    fills = "SELECT ts_ms, side, qty_e8, price_e8, fee_e8 FROM fills"
    for symbol in SYMBOLS:
        alone = tmp_path / f"{symbol}.db"
        solo = _args(alone, pair_market.url, "--bars", str(BARS), symbols=(symbol,))
        assert invoke(*solo).exit_code == 0
        mine = query(paper, f"{fills} WHERE symbol = '{symbol}' ORDER BY fill_id")
        assert mine == query(alone, f"{fills} ORDER BY fill_id")


def test_kill_9_in_every_phase_of_a_two_symbol_paper_session_ends_where_a_clean_run_does(
    pair_market: SimServer, tmp_path: Path
) -> None:
    reference = tmp_path / "ref.db"
    assert _paper(reference, pair_market.url, None, "--bars", str(BARS)) == 0
    assert bars_in(reference) == BARS
    crashed = tmp_path / "crash.db"

    def run(kill_at: str | None) -> int:
        return _paper(crashed, pair_market.url, kill_at)

    kills = kill_in_every_phase(run, crashed, bars=BARS, kills=KILLS, seed=17, most=6)
    assert sum(kills.values()) == KILLS
    assert all(kills.values())
    assert_ends_as(crashed, reference, COMPARED, BARS)
    assert invoke("audit", str(crashed)).exit_code == 0
    assert invoke("verify", str(crashed), env=user_strategies_env()).exit_code == 0


@pytest.mark.usefixtures("user_strategies")
def test_a_symbol_whose_klines_stop_holds_the_minutes_only_until_they_are_old(
    tmp_path: Path,
) -> None:
    """ETHUSDT's replay ends after 100 minutes (the venue halted it): the session's minutes
    go on with BTCUSDT alone, once they are 30 minutes old by the venue's clock."""
    eth = tmp_path / "eth-100.parquet"
    pq.write_table(pq.read_table(ETH_SAMPLE).slice(0, 100), eth)
    paper = tmp_path / "paper.db"
    with frozen_market({"BTCUSDT": SAMPLE, "ETHUSDT": eth}, 200) as server:
        done = invoke(*_args(paper, server.url, "--bars", "150"))
    assert done.exit_code == 0, done.output
    assert "150 new bars" in done.output
    blobs = [blob for (blob,) in query(paper, "SELECT arrow FROM bar_chunks")]
    symbols = [s for b in blobs if isinstance(b, bytes) for s in read_ipc(b)["symbol"].to_pylist()]
    assert Counter(symbols) == {"BTCUSDT": 150, "ETHUSDT": 100}
    said = query(paper, "SELECT msg FROM logs WHERE msg LIKE 'ETHUSDT: no bar since%'")
    assert len(said) == 1
    assert invoke("verify", str(paper)).exit_code == 0
