"""Several strategies in one session, each a sleeve of the account (issue 17): its own
cash, positions and fills, a budget from the allocator, a fault that stops it alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT, SAMPLE, invoke, query

ETH = ROOT / "sample_data" / "ETHUSDT-1m-2024-01.parquet"
RANGE = ('data.start = "2024-01-01"', 'data.end = "2024-01-03"')


def _sleeve(id_: str, symbol: str, *, name: str = "sma_crossover", extra: str = "") -> str:
    return (
        f'[[strategies]]\nid = "{id_}"\nname = "{name}"\nsymbols = ["{symbol}"]\n'
        f"allocation = 0.5\n{extra}"
        "params = { fast = 10, slow = 30, fraction = 0.8 }\n"
    )


def _config(tmp: Path, *sleeves: str) -> Path:
    text = (
        f'[data]\ngaps = "forward"\n{RANGE[0][5:]}\n{RANGE[1][5:]}\n\n'
        f'[data.paths]\nBTCUSDT = "{SAMPLE}"\nETHUSDT = "{ETH}"\n\n'
        '[risk]\nallowed_symbols = ["BTCUSDT", "ETHUSDT"]\nmax_open_positions = 2\n\n'
        + "\n".join(sleeves)
    )
    path = tmp / "sleeves.toml"
    path.write_text(text)
    return path


def _run(config: Path, db: Path, *extra: str) -> None:
    out = db.parent / f"{db.stem}-out"
    args = ["backtest", "--config", str(config), "--db", str(db), "--out", str(out)]
    result = invoke(*args, "--quiet", "--no-report", *extra)
    assert result.exit_code == 0, result.output


def _alone(tmp: Path, symbol: str, data: Path, cash: str) -> Path:
    """The same strategy on one symbol, alone, with the sleeve's cash."""
    db = tmp / f"alone-{symbol}.db"
    sets = [
        f'data.path="{data}"',
        f'data.symbol="{symbol}"',
        f'risk.allowed_symbols=["{symbol}"]',
        f"runtime.initial_cash={cash}",
        "strategy.params.fast=10",
        "strategy.params.slow=30",
        "strategy.params.fraction=0.8",
        *(s.replace(" ", "") for s in RANGE),
    ]
    _run(ROOT / "config.toml", db, *(a for s in sets for a in ("--set", s)))
    return db


def _fills(db: Path, where: str) -> list[tuple[object, ...]]:
    return query(
        db,
        "SELECT ts_ms, side, qty_e8, price_e8, notional_e8, fee_e8 FROM fills "
        f"WHERE {where} ORDER BY fill_id",
    )


def test_each_sleeve_trades_as_its_strategy_alone_with_its_cash_and_they_sum_to_the_account(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path, _sleeve("trend_btc", "BTCUSDT"), _sleeve("trend_eth", "ETHUSDT"))
    db = tmp_path / "both.db"
    _run(config, db)
    for sleeve, symbol, data in (("trend_btc", "BTCUSDT", SAMPLE), ("trend_eth", "ETHUSDT", ETH)):
        mine = _fills(db, f"strategy_id = '{sleeve}'")
        assert len(mine) > 20
        assert mine == _fills(_alone(tmp_path, symbol, data, "5000"), "1")
    # Every minute: the sleeves' cash and equity add up to the account's, to the unit.
    gaps = query(
        db,
        "SELECT count(*) FROM equity e WHERE e.cash_e8 != (SELECT sum(cash_e8) FROM "
        "sleeve_equity s WHERE s.ts_ms = e.ts_ms) OR e.equity_e8 != (SELECT sum(equity_e8) "
        "FROM sleeve_equity s WHERE s.ts_ms = e.ts_ms)",
    )
    assert gaps == [(0,)]
    slots = query(db, "SELECT DISTINCT substr(client_order_id, 11, 2), strategy_id FROM orders")
    assert sorted(slots) == [("00", "trend_btc"), ("01", "trend_eth")]
    assert all(len(str(c)) <= 36 for (c,) in query(db, "SELECT client_order_id FROM orders"))
    for check in ("verify", "audit", "replay"):
        result = invoke(check, str(db))
        assert result.exit_code == 0, result.output


def test_a_strategy_that_raises_is_halted_alone_and_the_other_trades_as_if_alone(
    tmp_path: Path, user_strategies: None
) -> None:
    raising = _sleeve(
        "faulty", "ETHUSDT", name="user_strategies:RaisesAtBar", extra="enabled = true\n"
    ).replace("params = { fast = 10, slow = 30, fraction = 0.8 }", "params = { at = 200 }")
    config = _config(tmp_path, _sleeve("trend_btc", "BTCUSDT"), raising)
    db = tmp_path / "faulty.db"
    _run(config, db)
    assert _fills(db, "strategy_id = 'trend_btc'") == _fills(
        _alone(tmp_path, "BTCUSDT", SAMPLE, "5000"), "1"
    )
    ((halted,),) = query(db, "SELECT halted FROM sleeves WHERE strategy_id = 'faulty'")
    assert "raised at bar 200" in str(halted)
    assert query(db, "SELECT halted FROM sleeves WHERE strategy_id = 'trend_btc'") == [(None,)]
    ((context,),) = query(db, "SELECT context FROM logs WHERE msg LIKE 'strategy faulty:%'")
    assert "RuntimeError" in str(context)
    assert "Traceback" in str(context)
    status = invoke("status", str(db), "--json")
    assert '"faulty"' in status.output
    assert "raised at bar 200" in status.output
    assert invoke("verify", str(db)).exit_code == 0


@pytest.mark.parametrize(
    ("sleeves", "says"),
    [
        (
            [_sleeve("a", "BTCUSDT"), _sleeve("a", "ETHUSDT")],
            "strategies: must be of distinct ids",
        ),
        (
            [_sleeve("a", "BTCUSDT").replace("0.5", "0.7"), _sleeve("b", "ETHUSDT")],
            "allocations summing to at most 1",
        ),
        ([_sleeve("A b", "BTCUSDT")], "1 to 16 of a-z, 0-9 and _"),
        ([_sleeve("a", "SOLUSDT")], "strategies a names SOLUSDT"),
        ([_sleeve("a", "BTCUSDT", name="nope")], "unknown strategy 'nope'"),
    ],
)
def test_bad_strategies_are_refused_with_what_to_change(
    tmp_path: Path, sleeves: list[str], says: str
) -> None:
    config = _config(tmp_path, *sleeves)
    db = tmp_path / "bad.db"
    result = invoke("backtest", "--config", str(config), "--db", str(db), "--quiet")
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not db.exists()
