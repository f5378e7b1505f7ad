"""Paper against the simulator and a backtest of the bars it recorded see the same
derived bars: a strategy declaring ("1m", "1h") gets identical hourly bars in both."""

from __future__ import annotations

from pathlib import Path

import pytest

from njord.sim.server import SimServer
from tests.conftest import ROOT, invoke, query
from tests.sim.test_paper import BARS, market  # noqa: F401  (the fixture)

HOURLY = 'strategy.name="user_strategies:Hourly"'


def strategy_lines(path: Path) -> list[str]:
    rows = query(path, "SELECT msg FROM logs WHERE component = 'strategy' ORDER BY seq")
    return [str(msg) for (msg,) in rows]


def test_paper_and_backtest_deliver_identical_hourly_bars(
    market: SimServer,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "e2e"))
    paper = tmp_path / "paper.db"
    common = ["--config", str(ROOT / "config.toml"), "--set", HOURLY, "--set", "strategy.params={}"]
    result = invoke(
        "paper",
        *common,
        "--db",
        str(paper),
        "--set",
        f'venue.base_url="{market.url}"',
        "--set",
        'data.start="2024-01-01T00:00"',
        "--poll-s",
        "0.01",
        "--bars",
        str(BARS),
    )
    assert result.exit_code == 0, result.output
    out = tmp_path / "p"
    assert invoke("export", "--db", str(paper), "--out", str(out), "--bars").exit_code == 0
    backtest = tmp_path / "bt.db"
    data = f'data.path="{out / "bars.parquet"}"'
    results = ["--out", str(tmp_path / "bt")]  # never runs/ in the checkout
    result = invoke("backtest", *common, "--set", data, "--db", str(backtest), *results, "--quiet")
    assert result.exit_code == 0, result.output
    lines = strategy_lines(paper)
    assert len(lines) == BARS // 60  # 25 hours, every one complete
    assert lines == strategy_lines(backtest)
    fills = "SELECT ts_ms, side, qty_e8, price_e8, fee_e8 FROM fills ORDER BY fill_id"
    assert query(paper, fills) == query(backtest, fills)
    assert len(query(paper, fills)) == 1
