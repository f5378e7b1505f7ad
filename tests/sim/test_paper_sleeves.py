"""Several strategies (`[[strategies]]`) on paper: two sleeves, each on its own symbol,
against the simulator serving both. Each sleeve trades as its strategy alone on its symbol
does, and a session killed -9 in every phase and carried on by the same command ends
exactly where an uninterrupted run does."""

from __future__ import annotations

from pathlib import Path

import pytest

from njord.sim.server import SimServer
from tests.conftest import bars_in, invoke, query, run_killable, user_strategies_env
from tests.sim.conftest import PAIR, PAIR_MINUTES, assert_ends_as, kill_in_every_phase

SYMBOLS, BARS = PAIR, PAIR_MINUTES
KILLS = 24
COMPARED = (
    "SELECT ts_ms, cash_e8, equity_e8 FROM equity ORDER BY ts_ms",
    "SELECT * FROM sleeve_equity ORDER BY ts_ms, strategy_id",
    "SELECT * FROM marks ORDER BY ts_ms, symbol",
    "SELECT * FROM fills ORDER BY fill_id",
    "SELECT client_order_id, symbol, side, type, qty_e8, status, filled_qty_e8, avg_price_e8, "
    "strategy_id FROM orders ORDER BY intent_id",
    "SELECT intent_id, bar_ts_ms, seq, symbol, side, qty_e8, allowed, reason, strategy_id "
    "FROM intents",
    "SELECT * FROM account",
    "SELECT * FROM sleeves",
    "SELECT * FROM lots",
)
FILLS = "SELECT ts_ms, symbol, side, qty_e8, price_e8, fee_e8 FROM fills"


def _sleeves() -> str:
    """Two sleeves of the user-style per-symbol crossover, one per symbol."""
    return "".join(
        f'[[strategies]]\nid = "{sid}"\nname = "user_strategies:EachSymbolCross"\n'
        f'symbols = ["{symbol}"]\nallocation = 0.5\n'
        for sid, symbol in (("trend_btc", "BTCUSDT"), ("trend_eth", "ETHUSDT"))
    )


def _paper_args(
    db: Path, url: str, *extra: str, symbols: tuple[str, ...] = SYMBOLS, sleeves: bool = True
) -> list[str]:
    """A paper session of `symbols` from the sample's first bar: the two sleeves, or
    (`sleeves` False) the same strategy alone as `[strategy]`."""
    config = db.with_suffix(".toml")
    named = ", ".join(f'"{s}"' for s in symbols)
    strategy = _sleeves() if sleeves else '[strategy]\nname = "user_strategies:EachSymbolCross"\n'
    config.write_text(
        f'[data]\nsymbols = [{named}]\nstart = "2024-01-01T00:00"\n'
        f'[venue]\nbase_url = "{url}"\n'
        f"[risk]\nallowed_symbols = [{named}]\nmax_open_positions = 2\n" + strategy,
        encoding="utf-8",
    )
    return ["paper", "--config", str(config), "--db", str(db), "--poll-s", "0.01", *extra]


@pytest.mark.usefixtures("user_strategies")
def test_two_sleeves_on_two_symbols_trade_on_paper_each_as_its_strategy_alone(
    pair_market: SimServer, tmp_path: Path
) -> None:
    paper = tmp_path / "paper.db"
    args = _paper_args(paper, pair_market.url, "--bars", str(BARS))
    done = invoke(*args, env=user_strategies_env())
    assert done.exit_code == 0, done.output
    assert f"{BARS} new bars, {BARS} in all" in done.output
    rows = query(paper, "SELECT strategy_id, count(*) FROM sleeve_equity GROUP BY 1 ORDER BY 1")
    assert rows == [("trend_btc", BARS), ("trend_eth", BARS)]
    traded = query(paper, "SELECT strategy_id, symbol, count(*) FROM fills GROUP BY 1, 2")
    assert {(sid, symbol) for sid, symbol, n in traded if isinstance(n, int) and n >= 2} == {
        ("trend_btc", "BTCUSDT"),
        ("trend_eth", "ETHUSDT"),
    }
    # The sleeves' cash and equity add up to the account's, minute by minute.
    split = query(
        paper,
        "SELECT e.ts_ms FROM equity e JOIN sleeve_equity s USING (ts_ms) GROUP BY e.ts_ms "
        "HAVING sum(s.cash_e8) != min(e.cash_e8) OR sum(s.equity_e8) != min(e.equity_e8)",
    )
    assert split == []
    assert invoke("audit", str(paper)).exit_code == 0
    verified = invoke("verify", str(paper), env=user_strategies_env())
    assert verified.exit_code == 0, verified.output
    assert f"{BARS} bars verified identical" in verified.output
    # The strategy sizes each trade in quote, whatever its cash: a sleeve's trades are those
    # of a paper session of its strategy alone on its symbol.
    for sid, symbol in (("trend_btc", "BTCUSDT"), ("trend_eth", "ETHUSDT")):
        alone = tmp_path / f"{symbol}.db"
        bars = ("--bars", str(BARS))
        solo = _paper_args(alone, pair_market.url, *bars, symbols=(symbol,), sleeves=False)
        assert invoke(*solo, env=user_strategies_env()).exit_code == 0
        mine = query(paper, f"{FILLS} WHERE strategy_id = '{sid}' ORDER BY fill_id")
        assert mine == query(alone, f"{FILLS} ORDER BY fill_id")


def test_kill_9_in_every_phase_of_a_two_sleeve_paper_session_ends_where_a_clean_run_does(
    pair_market: SimServer, tmp_path: Path
) -> None:
    env = user_strategies_env()

    def paper(db: Path, kill_at: str | None, *limit: str) -> int:
        run_env = {**env, "NJORD_KILL_AT": kill_at} if kill_at else env
        args = _paper_args(db, pair_market.url, *(limit or ("--for", "1.5s")))
        return run_killable(args, run_env)

    reference = tmp_path / "ref.db"
    assert paper(reference, None, "--bars", str(BARS)) == 0
    assert bars_in(reference) == BARS
    crashed = tmp_path / "crash.db"
    kills = kill_in_every_phase(
        lambda kill_at: paper(crashed, kill_at), crashed, bars=BARS, kills=KILLS, seed=23, most=6
    )
    assert sum(kills.values()) == KILLS
    assert all(kills.values())
    assert_ends_as(crashed, reference, COMPARED, BARS)
    assert invoke("audit", str(crashed)).exit_code == 0
    assert invoke("verify", str(crashed), env=env).exit_code == 0


@pytest.mark.usefixtures("user_strategies")
def test_a_paper_session_of_several_strategies_refuses_other_strategies_when_resumed(
    pair_market: SimServer, tmp_path: Path
) -> None:
    paper = tmp_path / "paper.db"
    args = _paper_args(paper, pair_market.url, "--bars", "30")
    assert invoke(*args, env=user_strategies_env()).exit_code == 0
    config = paper.with_suffix(".toml")
    config.write_text(config.read_text().replace("allocation = 0.5", "allocation = 0.4", 1))
    again = invoke(*args, env=user_strategies_env())
    assert again.exit_code == 2, again.output
    assert "cannot take strategies" in again.output
    assert "these keys change what the strategy decides" in again.output
    assert len(again.output.strip().splitlines()) == 1
    assert bars_in(paper) == 30
