"""The report a trader reads: price with every fill, buy-and-hold beside the equity, the
trades table; `report --compare`; the sweep's page. Tests read the figures' own data."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.conftest import ROOT, SAMPLE, backtest_args, invoke, query


def figures(page: str) -> list[list[dict[str, Any]]]:
    """The traces of every plotly figure in a page, as the browser would get them."""
    decoder, out, at = json.JSONDecoder(), [], 0
    while (at := page.find("Plotly.newPlot(", at)) >= 0:
        _, end = decoder.raw_decode(page, _skip(page, at + len("Plotly.newPlot(")))
        traces, end = decoder.raw_decode(page, _skip(page, page.index(",", end) + 1))
        out.append(traces)
        at = end
    return out


def _skip(text: str, at: int) -> int:
    while text[at].isspace():
        at += 1
    return at


def ms(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp).timestamp() * 1000)


def trace(traces: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(t for t in traces if t.get("name") == name)


def test_the_report_puts_every_fill_on_its_bar_beside_buy_and_hold(
    tmp_path: Path, sample_week: Path
) -> None:
    db = tmp_path / "s.db"
    assert invoke(*backtest_args(sample_week, db)).exit_code == 0
    page = (tmp_path / "out" / "report.html").read_text()
    price, equity, *_ = figures(page)
    (candles,) = [t for t in price if t["type"] == "candlestick"]
    assert len(candles["x"]) == 3 * 1440
    for side in ("BUY", "SELL"):
        marks = trace(price, f"{side} fills")
        sql = f"SELECT ts_ms, price_e8 FROM fills WHERE side = '{side}' ORDER BY fill_id"
        stored = query(db, sql)
        assert [(ms(x), y) for x, y in zip(marks["x"], marks["y"], strict=True)] == [
            (t, int(str(p)) / 1e8) for t, p in stored
        ]
        assert len(marks["customdata"]) == len(stored) > 0
    exits = trace(price, "SELL fills")["customdata"]
    assert all(row[4] != "open" for row in exits)  # long-only: every sell closes a trade
    held = trace(equity, "buy and hold")
    closes = pq.read_table(sample_week).column("close").to_pylist()
    assert held["y"][-1] == pytest.approx(10_000 * closes[-1] / closes[0])
    assert "<th>buy and hold</th>" in page
    assert "avg trade duration" in page
    assert "expectancy (net P&amp;L per trade)" in page
    (trades,) = query(db, "SELECT count(*) FROM trades")[0]
    assert page.count("<tr><td data-k=") == min(500, int(str(trades)))


def test_a_long_session_draws_a_downsampled_close_with_its_band(tmp_path: Path) -> None:
    data = tmp_path / "five.parquet"
    pq.write_table(pq.read_table(SAMPLE).slice(0, 5 * 1440), data)
    db = tmp_path / "s.db"
    assert invoke(*backtest_args(data, db)).exit_code == 0
    price = figures((tmp_path / "out" / "report.html").read_text())[0]
    assert not [t for t in price if t["type"] == "candlestick"]
    close, low, high = (trace(price, n) for n in ("close", "min", "max"))
    assert len(close["x"]) <= 5000 < 5 * 1440
    assert all(lo <= c <= hi for lo, c, hi in zip(low["y"], close["y"], high["y"], strict=True))
    (fills,) = query(db, "SELECT count(*) FROM fills")[0]
    shown = sum(len(trace(price, f"{s} fills")["x"]) for s in ("BUY", "SELL"))
    assert shown == int(str(fills))  # fills are never downsampled


def test_report_compare_puts_sessions_side_by_side(tmp_path: Path, sample_week: Path) -> None:
    dbs = []
    for fast in (10, 20):
        db = tmp_path / f"fast{fast}.db"
        args = backtest_args(sample_week, db, "--set", f"strategy.params.fast={fast}")
        assert invoke(*args, "--no-report").exit_code == 0
        dbs.append(str(db))
    out = tmp_path / "compare.html"
    result = invoke("report", "--compare", *dbs, "-o", str(out))
    assert result.exit_code == 0, result.output
    page = out.read_text()
    (chart,) = figures(page)
    assert [t["name"].split(" ")[0] for t in chart] == ["fast10.db", "fast20.db"]
    assert page.count("<th>fast10.db (") == 1
    assert page.count("<th>fast20.db (") == 1


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--compare", "{db}"], "--compare takes two or more session dbs"),
        (["{db}", "{db}"], "give one session db (--db D or D); several need --compare"),
        (["{tmp}/none.db"], "{tmp}/none.db does not exist"),
        (["{db}", "-o", "{tmp}"], "--out {tmp} is a directory; give a file path"),
    ],
)
def test_bad_report_arguments_are_usage_errors(
    tmp_path: Path, args: list[str], needle: str
) -> None:
    db = ROOT / "tests" / "fixtures" / "session-v1.db"
    filled = [a.format(db=db, tmp=tmp_path) for a in args]
    result = invoke("report", *filled)
    assert result.exit_code == 2, result.output
    assert needle.format(tmp=tmp_path) in result.output
    assert not (tmp_path / "report.html").exists()


def test_the_sweep_page_has_every_combination_and_a_heatmap(
    tmp_path: Path, sample_week: Path
) -> None:
    where = tmp_path / "sweep"
    config = ["--config", str(ROOT / "config.toml"), "--set", f'data.path="{sample_week}"']
    grid = ["--param", "fast=5,10", "--param", "slow=30,60", "--jobs", "1", "--dir", str(where)]
    assert invoke("sweep", *config, *grid).exit_code == 0
    page = (where / "sweep.html").read_text()
    ((heatmap,),) = figures(page)
    assert heatmap["x"] == ["5", "10"]
    assert heatmap["y"] == ["30", "60"]
    rows = pq.read_table(where / "sweep.parquet").to_pylist()
    by_cell = {(r["fast"], r["slow"]): r["sharpe"] for r in rows}
    assert heatmap["z"] == [[by_cell[(f, s)] for f in (5, 10)] for s in (30, 60)]
    assert page.count("<tr><td data-k=") == 4


def test_a_session_with_more_fills_than_a_page_holds_shows_its_largest_trades(
    tmp_path: Path, sample_week: Path
) -> None:
    from njord.research import charts
    from njord.store import db, reads

    path = tmp_path / "s.db"
    assert invoke(*backtest_args(sample_week, path, "--no-report")).exit_code == 0
    conn = db.open_reader(path)
    try:
        marks = reads.fill_marks(conn)
        prices, _ = charts.prices_and_benchmark(
            conn, bars=3 * 1440, initial=10_000.0, timeframe="1m"
        )
    finally:
        conn.close()
    fig = charts.price_figure(prices, marks, "BTCUSDT", most=10)
    shown = [p for t in fig.data if t.name.endswith("fills") for p in t.customdata]
    assert len(shown) == 10 < len(marks)
    assert f"10 of {len(marks):,} fills" in fig.layout.title.text
    weights = sorted(abs(m.pnl if m.pnl is not None else m.opened or 0) for m in marks)
    exits = [float(row[4].replace(",", "")) for row in shown if row[4] != "open"]
    assert min(abs(p) for p in exits) >= weights[-10] - 0.01  # the largest trades' fills


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HEADLESS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=10000",
]


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium (.ci/run installs Debian's)")
def test_the_report_renders_offline_in_headless_chromium(tmp_path: Path, sample_week: Path) -> None:
    """Every chart is drawn by the inlined plotly.js with no network; the screenshot is
    left in the test's tmp dir to look at."""
    assert CHROMIUM is not None
    db = tmp_path / "s.db"
    assert invoke(*backtest_args(sample_week, db)).exit_code == 0
    page = tmp_path / "out" / "report.html"
    text = page.read_text()
    assert 'src="http' not in text  # nothing to fetch: it opens offline
    charts = len(figures(text))
    profile = [f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(
        [CHROMIUM, *HEADLESS, *profile, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert dom.count('class="main-svg"') >= charts >= 3  # drawn, not just embedded
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            CHROMIUM,
            *HEADLESS,
            *profile,
            f"--screenshot={shot}",
            "--window-size=1280,2000",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 50_000  # charts, not a blank page


def test_the_price_chart_is_drawn_on_the_strategys_main_timeframe(
    tmp_path: Path, sample_week: Path, user_strategies: None
) -> None:
    db = tmp_path / "s.db"
    args = backtest_args(sample_week, db, "--set", 'strategy.name="user_strategies:Hourly"')
    assert invoke(*args).exit_code == 0  # declares ("1m", "1h"): read in hours
    price = figures((tmp_path / "out" / "report.html").read_text())[0]
    (candles,) = [t for t in price if t["type"] == "candlestick"]
    assert len(candles["x"]) == 3 * 24
    assert {ms(x) % 3_600_000 for x in candles["x"]} == {0}
    # Each candle is its hour of the stored minutes: first open, extremes, last close.
    minutes = pq.read_table(sample_week)
    hour = [minutes.slice(60 * 5, 60).column(c).to_pylist() for c in ("open", "high", "low")]
    closes = minutes.column("close").to_pylist()
    assert candles["open"][5] == hour[0][0]
    assert candles["high"][5] == max(hour[1])
    assert candles["low"][5] == min(hour[2])
    assert candles["close"][5] == closes[60 * 6 - 1]
    held = trace(figures((tmp_path / "out" / "report.html").read_text())[1], "buy and hold")
    assert len(held["x"]) == 3 * 24  # the benchmark line too: one point an hour
