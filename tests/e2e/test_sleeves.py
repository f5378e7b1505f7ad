"""Several strategies in one session, each a sleeve of the account (issue 17): its own
cash, positions and fills, a budget from the allocator, a fault that stops it alone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import ROOT, SAMPLE, invoke, query, run_killable

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
    # The results per strategy and symbol, and the portfolio line: the account's P&L exactly.
    out = db.parent / f"{db.stem}-out"
    lines = (out / "breakdown.csv").read_text().splitlines()
    assert lines[0] == "strategy_id,symbol,fills,bought,sold,fees,position,pnl"
    assert [line.split(",")[:2] for line in lines[1:]] == [
        ["trend_btc", "BTCUSDT"],
        ["trend_eth", "ETHUSDT"],
        ["*", "*"],
    ]
    ((final,),) = query(db, "SELECT equity_e8 FROM equity ORDER BY ts_ms DESC LIMIT 1")
    assert lines[-1].split(",")[-1] == f"{(int(str(final)) - 10_000 * 10**8) / 10**8:.8f}"
    assert (out / "sleeve_equity.csv").exists()
    assert (out / "marks.csv").exists()
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
        ([_sleeve("a", "BTCUSDT", extra="enabled = false\n")], "every [[strategies]] entry"),
        ([_sleeve("a", "BTCUSDT") + "[strategies.risk]\nnotional_cap = -1\n"], "must be >= 0"),
        ([_sleeve("a", "BTCUSDT") + "[portfolio]\nlookback_days = 1\n"], "must be >= 2"),
        (  # no symbols: every one of the session's, which this sample would mix
            [_sleeve("a", "BTCUSDT").replace('symbols = ["BTCUSDT"]\n', "")],
            "strategies a keeps one set of running sums of closes and would mix BTCUSDT, ETHUSDT",
        ),
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


@pytest.mark.parametrize("command", ["live", "torture"])
def test_a_live_session_of_several_strategies_is_refused(tmp_path: Path, command: str) -> None:
    """Paper and shadow run several strategies; live, not yet (nor torture's live mode)."""
    path = tmp_path / "live.toml"
    path.write_text('[[strategies]]\nid = "a"\nname = "sma_crossover"\nallocation = 0.5\n')
    db, out = tmp_path / "live.db", tmp_path / "torture"
    where = ["--db", str(db)] if command == "live" else ["--mode", "live", "--out", str(out)]
    result = invoke(command, "--config", str(path), *where)
    assert result.exit_code == 2, result.output
    assert result.output.startswith(
        "error: [[strategies]]: a live session runs one strategy for now, [strategy] "
        "(paper and shadow run several)"
    )
    assert len(result.output.strip().splitlines()) == 1
    assert not db.exists()
    assert not out.exists()


def test_one_sleeve_halted_and_resumed_by_the_operator_while_the_other_trades_on(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path, _sleeve("trend_btc", "BTCUSDT"), _sleeve("trend_eth", "ETHUSDT"))
    db = tmp_path / "ops.db"
    args = ["backtest", "--config", str(config), "--db", str(db), "--quiet", "--no-report"]
    args += ["--out", str(tmp_path / "out"), "--set", "runtime.commit_every=500"]
    env = {**os.environ, "NJORD_KILL_AT": "commit:2"}
    assert run_killable(args, env=env) == -9  # 1,000 minutes in
    halted = invoke("halt", "--db", str(db), "--strategy", "trend_eth", "--reason", "look")
    assert halted.exit_code == 0, halted.output
    assert "halt of strategy trend_eth posted" in halted.output
    assert run_killable(["continue", str(db), "--quiet"], env=env) == -9  # 1,000 more
    resumed = invoke("resume", "--db", str(db), "--strategy", "trend_eth", "--confirm")
    assert resumed.exit_code == 0, resumed.output
    assert run_killable(["continue", str(db), "--quiet"], env=dict(os.environ)) == 0
    changes = query(
        db, "SELECT bar_ts_ms, payload FROM decisions WHERE kind = 'sleeve' ORDER BY seq"
    )
    assert str(changes[0][1]).startswith('{"halted":"halted by ')
    assert changes[1][1] == '{"halted":null}'
    (halt_ms, _), (resume_ms, _) = changes
    between = f"bar_ts_ms > {halt_ms} AND bar_ts_ms < {resume_ms}"
    eth = query(db, f"SELECT count(*) FROM intents WHERE strategy_id = 'trend_eth' AND {between}")
    btc = query(db, f"SELECT count(*) FROM intents WHERE strategy_id = 'trend_btc' AND {between}")
    assert eth == [(0,)]
    assert btc[0][0] > 5
    after = query(
        db,
        f"SELECT count(*) FROM intents WHERE strategy_id = 'trend_eth' AND bar_ts_ms > {resume_ms}",
    )
    assert after[0][0] > 5
    for check in ("verify", "audit", "replay"):
        result = invoke(check, str(db))
        assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["halt", "--strategy", "nope"], "has no strategy 'nope': it runs trend_btc, trend_eth"),
        (["resume", "--confirm", "--strategy", "nope"], "has no strategy 'nope'"),
        (["halt", "--strategy", "trend_btc", "--file", "k"], "--strategy halts one sleeve"),
    ],
)
def test_a_sleeve_control_for_a_strategy_the_session_lacks_is_refused(
    tmp_path: Path, args: list[str], says: str
) -> None:
    config = _config(tmp_path, _sleeve("trend_btc", "BTCUSDT"), _sleeve("trend_eth", "ETHUSDT"))
    db = tmp_path / "s.db"
    run = ["backtest", "--config", str(config), "--db", str(db), "--quiet", "--no-report"]
    env = {**os.environ, "NJORD_KILL_AT": "commit:1"}
    assert run_killable([*run, "--out", str(tmp_path / "o")], env=env) == -9
    args = [a if a != "k" else str(tmp_path / "k") for a in args]
    result = invoke(*args, "--db", str(db))
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert query(db, "SELECT count(*) FROM controls") == [(0,)]


def test_risk_parity_budgets_follow_each_sleeves_volatility_and_survive_a_restart(
    tmp_path: Path,
) -> None:
    sleeves = (_sleeve("trend_btc", "BTCUSDT"), _sleeve("trend_eth", "ETHUSDT"))
    text = _config(tmp_path, *sleeves).read_text().replace('"2024-01-03"', '"2024-01-08"')
    config = tmp_path / "parity.toml"
    config.write_text(text + '\n[portfolio]\nallocator = "risk_parity"\nlookback_days = 3\n')
    whole = tmp_path / "whole.db"
    _run(config, whole, "--set", "runtime.commit_every=997")  # as the killed run's (its ids)
    budgets = query(
        whole,
        "SELECT ref, json_extract(payload, '$.day'), json_extract(payload, '$.budget_e8') "
        "FROM decisions WHERE kind = 'budget' ORDER BY seq",
    )
    by_day: dict[object, dict[object, object]] = {}
    for ref, day, budget in budgets:
        by_day.setdefault(day, {})[ref] = budget
    days = sorted(by_day, key=str)
    assert len(days) == 7
    assert by_day[days[0]]["trend_btc"] == by_day[days[0]]["trend_eth"]  # no history yet
    late = by_day[days[-1]]
    assert late["trend_btc"] != late["trend_eth"]  # weighed by their volatilities
    killed = tmp_path / "killed.db"
    out = str(tmp_path / "killed-out")
    args = ["backtest", "--config", str(config), "--db", str(killed), "--out", out, "--quiet"]
    env = {**os.environ, "NJORD_KILL_AT": "commit:5"}
    assert run_killable([*args, "--no-report", "--set", "runtime.commit_every=997"], env=env) == -9
    assert run_killable(["continue", str(killed), "--quiet"], env=dict(os.environ)) == 0
    same = "SELECT kind, ref, payload FROM decisions WHERE kind IN ('budget', 'fill') ORDER BY seq"
    assert query(killed, same) == query(whole, same)
    for check in ("verify", "audit", "replay"):
        result = invoke(check, str(whole))
        assert result.exit_code == 0, result.output


def test_a_sleeves_own_limits_stop_it_alone(tmp_path: Path) -> None:
    capped = _sleeve("trend_btc", "BTCUSDT") + "[strategies.risk]\nnotional_cap = 1000\n"
    losing = _sleeve("trend_eth", "ETHUSDT") + "[strategies.risk]\ndaily_loss_limit = 60\n"
    config = _config(tmp_path, capped, losing)
    db = tmp_path / "limits.db"
    _run(config, db)
    refused = query(
        db,
        "SELECT DISTINCT reason, json_extract(rule_inputs, '$.strategy_id') FROM intents "
        "WHERE allowed = 0",
    )
    assert refused == [("NOTIONAL_CAP", "trend_btc")]
    assert query(db, "SELECT count(*) FROM fills WHERE strategy_id = 'trend_btc'") == [(0,)]
    ((halted,),) = query(db, "SELECT halted FROM sleeves WHERE strategy_id = 'trend_eth'")
    assert str(halted).startswith("DAILY_LOSS_LIMIT: -")
    assert query(db, "SELECT state FROM trading_state") == [("ACTIVE",)]  # the account trades
    for check in ("verify", "audit", "replay"):
        result = invoke(check, str(db))
        assert result.exit_code == 0, result.output


def _killed_then_continued(tmp_path: Path, config: Path, name: str, every: int) -> Path:
    db = tmp_path / f"{name}.db"
    args = ["backtest", "--config", str(config), "--db", str(db), "--quiet", "--no-report"]
    args += ["--out", str(tmp_path / f"{name}-out"), "--set", f"runtime.commit_every={every}"]
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'tests' / 'e2e'}{os.pathsep}{ROOT}"}
    assert run_killable(args, env={**env, "NJORD_KILL_AT": "commit:2"}) == -9
    return db


def _continue(db: Path) -> None:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'tests' / 'e2e'}{os.pathsep}{ROOT}"}
    assert run_killable(["continue", str(db), "--quiet"], env=env) == 0
    for check in ("verify", "audit", "replay"):
        result = invoke(check, str(db))
        assert result.exit_code == 0, result.output


def test_a_flatten_of_several_strategies_closes_each_sleeves_positions(tmp_path: Path) -> None:
    config = _config(tmp_path, _sleeve("trend_btc", "BTCUSDT"), _sleeve("trend_eth", "ETHUSDT"))
    db = _killed_then_continued(tmp_path, config, "flat", 500)
    assert invoke("flatten", "--db", str(db)).exit_code == 0
    _continue(db)
    assert query(db, "SELECT state FROM trading_state") == [("HALTED",)]
    assert query(db, "SELECT count(*) FROM positions WHERE qty_e8 != 0") == [(0,)]
    owners = query(db, "SELECT DISTINCT strategy_id FROM intents WHERE tag = 'flatten'")
    assert owners  # the closing orders are the sleeves' own
    assert all(owner != ("",) for owner in owners)
    (row,) = query(
        db,
        "SELECT e.cash_e8 - (SELECT sum(cash_e8) FROM sleeve_equity s WHERE s.ts_ms = e.ts_ms) "
        "FROM equity e ORDER BY ts_ms DESC LIMIT 1",
    )
    assert row == (0,)


def test_a_sleeve_halted_by_its_on_fill_carries_on_after_a_kill(
    tmp_path: Path, user_strategies: None
) -> None:
    raising = _sleeve("faulty", "ETHUSDT", name="user_strategies:RaisesOnFill").replace(
        "params = { fast = 10, slow = 30, fraction = 0.8 }\n", ""
    )
    config = _config(tmp_path, _sleeve("trend_btc", "BTCUSDT"), raising)
    db = _killed_then_continued(tmp_path, config, "onfill", 100)
    _continue(db)
    ((halted,),) = query(db, "SELECT halted FROM sleeves WHERE strategy_id = 'faulty'")
    assert "raised in on_fill" in str(halted)


def test_budgets_carry_on_after_a_kill_without_strategy_snapshots(
    tmp_path: Path, user_strategies: None
) -> None:
    sleeves = [
        _sleeve(sid, symbol, name="user_strategies:EachSymbolCross").replace(
            "params = { fast = 10, slow = 30, fraction = 0.8 }\n", ""
        )
        for sid, symbol in (("cross_btc", "BTCUSDT"), ("cross_eth", "ETHUSDT"))
    ]
    config = _config(tmp_path, *sleeves)
    db = _killed_then_continued(tmp_path, config, "budgets", 1440)  # killed as day 2 ends
    _continue(db)
    days = query(
        db,
        "SELECT count(DISTINCT json_extract(payload, '$.day')) FROM decisions "
        "WHERE kind = 'budget'",
    )
    assert days == [(2,)]


def test_an_order_on_a_symbol_without_a_bar_this_minute_is_refused_no_bar(
    tmp_path: Path, user_strategies: None
) -> None:
    import pyarrow.parquet as pq

    table = pq.read_table(ETH).slice(0, 1440)
    keep = [i for i in range(table.num_rows) if not 300 <= i < 360]  # no ETH 05:00-05:59
    gappy = tmp_path / "eth-gap.parquet"
    pq.write_table(table.take(keep), gappy)
    config = tmp_path / "other.toml"
    config.write_text(
        f'[data]\ngaps = "none"\nend = "2024-01-02"\n[data.paths]\nBTCUSDT = "{SAMPLE}"\n'
        f'ETHUSDT = "{gappy}"\n[risk]\nallowed_symbols = ["BTCUSDT", "ETHUSDT"]\n'
        '[strategy]\nname = "user_strategies:TradesTheOther"\n'
    )
    db = tmp_path / "other.db"
    _run(config, db, "--set", 'risk.rules_off={ backtest = ["order_rate"] }')
    refused = query(db, "SELECT count(*), min(bar_ts_ms) FROM intents WHERE reason = 'NO_BAR'")
    assert refused == [(60, 1704085200000)]  # 05:00
    late = query(
        db,
        "SELECT count(*) FROM fills f JOIN orders o USING (client_order_id) "
        "WHERE f.ts_ms < o.created_ms",
    )
    assert late == [(0,)]
    assert invoke("verify", str(db)).exit_code == 0


def test_exporting_bars_of_several_symbols_is_refused_before_writing(tmp_path: Path) -> None:
    config = _config(tmp_path, _sleeve("trend_btc", "BTCUSDT"), _sleeve("trend_eth", "ETHUSDT"))
    db = tmp_path / "x.db"
    _run(config, db)
    for flag in (["--bars"], ["--timeframe", "1h"]):
        out = tmp_path / f"export{len(flag)}"
        result = invoke("export", str(db), "--out", str(out), *flag)
        assert result.exit_code == 2, result.output
        assert "several" in result.output
        assert not out.exists()


def test_opposite_orders_of_two_strategies_in_one_minute_go_as_one_net_order(
    tmp_path: Path, user_strategies: None
) -> None:
    def scripted(sid: str, orders: str) -> str:
        return (
            f'[[strategies]]\nid = "{sid}"\nname = "user_strategies:Scripted"\n'
            f'symbols = ["BTCUSDT"]\nallocation = 0.5\nparams = {{ orders = "{orders}" }}\n'
        )

    buyer, seller = scripted("buyer", "10:BUY:0.05"), scripted("seller", "1:BUY:0.05,10:SELL:0.03")
    config = _config(tmp_path, buyer, seller)
    db = tmp_path / "net.db"
    _run(config, db, "--set", "runtime.commit_every=5")
    # One venue order for the difference, the account's; the sleeves' own orders filled by it.
    ((net, side, qty),) = query(
        db, "SELECT client_order_id, side, qty_e8 FROM orders WHERE strategy_id = ''"
    )
    assert (side, qty) == ("BUY", 2_000_000)
    ((fill_id, fee, notional),) = query(
        db, f"SELECT fill_id, fee_e8, notional_e8 FROM fills WHERE client_order_id = '{net}'"
    )
    shares = query(
        db,
        "SELECT s.strategy_id, s.side, s.qty_e8, s.notional_e8, s.fee_e8, o.status "
        "FROM fill_shares s JOIN orders o USING (client_order_id) "
        f"WHERE s.fill_id = {fill_id} ORDER BY s.strategy_id",
    )
    assert [(s, sd, q, st) for s, sd, q, _, _, st in shares] == [
        ("buyer", "BUY", 5_000_000, "FILLED"),
        ("seller", "SELL", 3_000_000, "FILLED"),
    ]
    assert sum(int(str(row[4])) for row in shares) == fee  # fees shared exactly
    signed = sum(int(str(n)) * (1 if sd == "BUY" else -1) for _, sd, _, n, _, _ in shares)
    assert signed == notional  # notionals too
    gaps = query(
        db,
        "SELECT count(*) FROM equity e WHERE e.cash_e8 != (SELECT sum(cash_e8) FROM "
        "sleeve_equity s WHERE s.ts_ms = e.ts_ms)",
    )
    assert gaps == [(0,)]
    assert query(db, "SELECT qty_e8 FROM positions WHERE symbol = 'BTCUSDT'") == [(7_000_000,)]
    for check in ("verify", "audit", "replay"):
        result = invoke(check, str(db))
        assert result.exit_code == 0, result.output
    # Killed before the net order's minute and carried on: the same shares.
    killed = _killed_then_continued(tmp_path, config, "net-killed", 5)
    _continue(killed)
    same = "SELECT strategy_id, side, qty_e8, notional_e8, fee_e8 FROM fill_shares ORDER BY 1"
    assert query(killed, same) == query(db, same)


def test_diff_aligns_two_sessions_of_several_strategies_per_strategy(tmp_path: Path) -> None:
    import json

    dbs = []
    for name, eth_fast in (("a", 10), ("b", 12)):
        eth = _sleeve("trend_eth", "ETHUSDT").replace("fast = 10", f"fast = {eth_fast}")
        config = _config(tmp_path, eth, _sleeve("trend_btc", "BTCUSDT"))
        config = config.rename(tmp_path / f"{name}.toml")
        db = tmp_path / f"{name}.db"
        _run(config, db)
        dbs.append(db)
    result = invoke("diff", str(dbs[0]), str(dbs[1]), "--json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)["differences"]
    assert found
    # Only the changed strategy's decisions differ: the other's stay aligned with it.
    assert all(d["a"].startswith("trend_eth ") or d["b"].startswith("trend_eth ") for d in found)
