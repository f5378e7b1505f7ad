from __future__ import annotations

import csv
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from njord import research
from tests.conftest import ROOT, SAMPLE, backtest_args, invoke


class Links(HTMLParser):
    """src/href of the page's real elements (script text is data, not elements)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.charts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)
            if name == "class" and value and "plotly-graph-div" in value:
                self.charts += 1


def test_backtest_writes_a_self_contained_report(tmp_path: Path, sample_week: Path) -> None:
    result = invoke(*backtest_args(sample_week, tmp_path / "s.db"))
    assert result.exit_code == 0, result.output
    page = (tmp_path / "out" / "report.html").read_text()
    links = Links()
    links.feed(page)
    assert links.urls == [], "no element may fetch anything"
    assert links.charts == 4  # price+fills, equity+drawdown+benchmark, monthly, P&L histogram
    assert "<script" in page
    assert "Sharpe (daily, 365)" in page
    assert "[strategy.params]" in page  # the effective config
    assert "Data quality" in page
    again = tmp_path / "again.html"
    assert invoke("report", "--db", str(tmp_path / "s.db"), "-o", str(again)).exit_code == 0
    assert again.stat().st_size > 1_000_000  # plotly.js inlined, not linked


def _sweep(tmp_path: Path, data: Path, name: str, jobs: int) -> Path:
    out = tmp_path / name / "r.csv"
    result = invoke(
        "sweep",
        "--config",
        str(ROOT / "config.toml"),
        "--set",
        f'data.path="{data}"',
        "--param",
        "fast=5,10,40",
        "--param",
        "slow=30,60,120",
        "--jobs",
        str(jobs),
        "--dir",
        str(tmp_path / name),
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    return out


def test_sweep_is_the_same_whatever_jobs_and_its_best_row_reproduces(
    tmp_path: Path, sample_week: Path
) -> None:
    one = _sweep(tmp_path, sample_week, "one", 1)
    two = _sweep(tmp_path, sample_week, "two", 2)
    assert one.read_bytes() == two.read_bytes()
    assert one.with_suffix(".parquet").read_bytes() == two.with_suffix(".parquet").read_bytes()
    rows = list(csv.DictReader(one.open()))
    assert len(rows) == 9
    skipped = [r for r in rows if r["status"] == "skipped"]
    assert [(r["fast"], r["slow"]) for r in skipped] == [("40", "30")]  # fast >= slow
    assert "fast must be < slow" in skipped[0]["reason"]
    best = rows[0]
    single = tmp_path / "best.db"
    args = backtest_args(
        sample_week,
        single,
        "--set",
        f"strategy.params.fast={best['fast']}",
        "--set",
        f"strategy.params.slow={best['slow']}",
        "--json",
        "--no-report",
    )
    metrics = json.loads(invoke(*args).output)["metrics"]
    for key in ("total_return", "sharpe", "max_drawdown", "trades", "fees"):
        assert repr(metrics[key]) == best[key] or str(metrics[key]) == best[key], key


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--param", "fastt=5,10"], "--param fastt: SmaCrossover declares no param 'fastt'"),
        (["--param", "fast="], "--param fast: the value list is empty"),
        (["--param", "fast=5,ten"], "--param fast: 'ten' is not valid"),
        (["--param", "fast=5,10", "--jobs", "0"], "--jobs must be >= 1, got 0"),
    ],
)
def test_bad_sweep_arguments_refuse_before_any_backtest(
    tmp_path: Path, args: list[str], needle: str
) -> None:
    where = tmp_path / "sweep"
    config = ["--config", str(ROOT / "config.toml"), "--set", f'data.path="{SAMPLE}"']
    result = invoke("sweep", *config, *args, "--dir", str(where))
    assert result.exit_code == 2
    assert needle in result.output
    assert not where.exists()


def test_research_load_gives_tables(tmp_path: Path, sample_week: Path) -> None:
    assert invoke(*backtest_args(sample_week, tmp_path / "s.db")).exit_code == 0
    session = research.load(tmp_path / "s.db")
    assert session.bars.num_rows == 3 * 1440
    assert session.equity.num_rows == 3 * 1440
    assert session.fills.num_rows == session.orders.num_rows > 0
    assert "price_e8" in session.fills.column_names
    assert session.trades.num_rows > 0
