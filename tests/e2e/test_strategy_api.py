"""The strategy API end to end: what `ctx.cancel` does to orders, the log, audit and verify."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT, backtest_args, invoke, query


def test_a_strategy_cancels_its_resting_limits(
    tmp_path: Path, sample_week: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    path = tmp_path / "cancels.db"
    args = backtest_args(sample_week, path, "--no-report", "--to", "2024-01-01T02:00")
    result = invoke(*args, "--set", 'strategy.name="user_strategies:RestsAndCancels"')
    assert result.exit_code == 0, result.output

    # 120 bars: a limit rests on every other bar and is canceled on the one after.
    assert query(path, "SELECT status, reason, count(*) FROM orders GROUP BY 1, 2") == [
        ("CANCELED", "CANCELED_BY_STRATEGY", 60)
    ]
    histories = query(
        path,
        "SELECT group_concat(status, '>') FROM "
        "(SELECT client_order_id, status FROM order_events ORDER BY seq) GROUP BY client_order_id",
    )
    assert set(histories) == {("NEW>SUBMITTED>CANCELED",)}
    created_and_canceled = query(
        path,
        "SELECT o.created_ms, e.ts_ms FROM orders o JOIN order_events e USING (client_order_id) "
        "WHERE e.status = 'CANCELED' ORDER BY o.created_ms LIMIT 1",
    )
    assert created_and_canceled == [(1_704_067_200_000, 1_704_067_260_000)]  # the next bar
    assert query(path, "SELECT count(*) FROM fills") == [(0,)]
    assert query(path, "SELECT cash_e8 FROM account") == [(10_000 * 10**8,)]
    assert query(path, "SELECT msg FROM logs WHERE level = 'WARNING'") == [
        ("cancel of nj-never-an-order: not an open order, nothing done",)
    ]

    assert invoke("audit", str(path)).exit_code == 0
    verified = invoke("verify", str(path))
    assert verified.exit_code == 0, verified.output


def test_the_guides_example_strategy_runs_as_written(
    tmp_path: Path, sample_week: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    guide = (ROOT / "docs" / "strategies.md").read_text()
    code = guide.split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "doc_dips.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "guide.db"
    args = backtest_args(sample_week, path, "--no-report", "--to", "2024-01-01T12:00")
    args += ["--set", 'strategy.name="doc_dips:DipBuyer"']
    result = invoke(*args, "--set", "strategy.params.lookback=30")
    assert result.exit_code == 0, result.output
    by_status = dict(query(path, "SELECT status, count(*) FROM orders GROUP BY 1"))
    assert by_status["CANCELED"] > 0
    assert by_status["FILLED"] > 0
    bad = invoke(*args, "--set", "strategy.params.lookback=1", "--db", str(tmp_path / "x.db"))
    assert bad.exit_code == 2
    assert "lookback must be >= 2" in bad.output


def test_an_order_on_a_symbol_the_session_has_no_bars_of_is_refused(
    tmp_path: Path, sample_week: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It used to fill at the BTCUSDT close and stay out of equity: allowed by the risk
    # rules, it is still a symbol with no price in this session.
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    path = tmp_path / "eth.db"
    args = backtest_args(sample_week, path, "--no-report", "--to", "2024-01-01T00:10")
    result = invoke(
        *args,
        "--set",
        'strategy.name="user_strategies:OneOrder"',
        "--set",
        'strategy.params.symbol="ETHUSDT"',
        "--set",
        'risk.allowed_symbols=["BTCUSDT", "ETHUSDT"]',
    )
    assert result.exit_code == 0, result.output
    assert query(path, "SELECT symbol, reason, client_order_id FROM intents") == [
        ("ETHUSDT", "SYMBOL_NOT_DECLARED", None)
    ]
    assert query(path, "SELECT count(*) FROM orders") == [(0,)]
    assert query(path, "SELECT cash_e8 FROM account") == [(10_000 * 10**8,)]
    status = json.loads(invoke("status", "--db", str(path), "--json").output)
    assert status["telemetry"]["orders_blocked_risk"] == 1
    assert invoke("verify", str(path)).exit_code == 0
