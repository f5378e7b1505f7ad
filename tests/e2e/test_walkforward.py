"""Walk-forward: windows, the stitched out-of-sample session, and its parity with
separate backtests of each window."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from njord.research.walkforward import WINDOW_TAG
from tests.conftest import ROOT, SAMPLE, backtest_args, invoke, query

FILLED = (
    "SELECT i.bar_ts_ms, i.side, i.tag FROM intents i JOIN orders o USING (client_order_id) "
    "WHERE o.status = 'FILLED' ORDER BY i.bar_ts_ms, i.seq"
)


@pytest.fixture
def six_days(tmp_path: Path) -> Path:
    path = tmp_path / "six.parquet"
    pq.write_table(pq.read_table(SAMPLE).slice(0, 6 * 1440), path)
    return path


def test_walkforward_stitches_windows_that_equal_their_separate_backtests(
    tmp_path: Path, six_days: Path
) -> None:
    where = tmp_path / "wf"
    common = ["--set", f'data.path="{six_days}"', "--set", "risk.notional_cap=1000000000"]
    result = invoke(
        "walkforward",
        "--config",
        str(ROOT / "config.toml"),
        *common,
        "--param",
        "fast=10,30",
        "--param",
        "slow=120",
        "--train",
        "2d",
        "--test",
        "1d",
        "--jobs",
        "2",
        "--dir",
        str(where),
    )
    assert result.exit_code == 0, result.output
    with (where / "walkforward.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["test_from"][:10] for r in rows] == [f"2024-01-0{d}" for d in (3, 4, 5, 6)]
    assert all(r["status"] == "ok" and r["fast"] in ("10", "30") for r in rows)
    stitched = where / "stitched.db"
    assert invoke("audit", str(stitched)).exit_code == 0
    verified = invoke("verify", str(stitched))
    assert verified.exit_code == 0, verified.output
    assert (where / "stitched" / "report.html").exists()

    fills = [(int(str(t)), str(s), str(tag)) for t, s, tag in query(stitched, FILLED)]
    traded, left_open = 0, 0
    for row in rows:
        db = tmp_path / f"window-{row['window']}.db"
        args = backtest_args(
            six_days,
            db,
            *common[2:],
            "--config",
            str(ROOT / "config.toml"),
            "--set",
            f'data.start="{row["test_from"]}"',
            "--set",
            f'data.end="{row["test_to"]}"',
            "--set",
            f"strategy.params.fast={row['fast']}",
            "--set",
            "strategy.params.slow=120",
            "--no-report",
        )
        assert invoke(*args).exit_code == 0
        alone = [(int(str(t)), str(s)) for t, s, _ in query(db, FILLED)]
        lo, hi = (int(str(v)) for v in query(db, "SELECT min(ts_ms), max(ts_ms) FROM equity")[0])
        inside = [(t, s) for t, s, tag in fills if lo <= t <= hi and tag != WINDOW_TAG]
        assert inside == alone, f"window {row['window']}"
        traded += len(alone)
        if row is not rows[-1]:
            left_open += len(alone) % 2  # long-only: an odd count ends holding
    assert traded > 0
    # each window starts flat: what one left open is closed at the next one's first bar
    assert sum(tag == WINDOW_TAG for _, _, tag in fills) == left_open


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--train", "2x", "--test", "1d"], "--train takes a duration like 55m, 2h or 90s"),
        (["--train", "2d", "--test", "1d", "--step", "12h"], "--step must be at least --test"),
        (["--train", "5d", "--test", "2d"], "the data spans 6.0 days: too short"),
        (
            ["--train", "2d", "--test", "1d", "--param", "costs.slippage_bps=0,1"],
            "walkforward varies strategy params only, not costs.slippage_bps",
        ),
    ],
)
def test_bad_walkforward_arguments_refuse_before_any_backtest(
    tmp_path: Path, six_days: Path, args: list[str], needle: str
) -> None:
    where = tmp_path / "wf"
    config = ["--config", str(ROOT / "config.toml"), "--set", f'data.path="{six_days}"']
    result = invoke("walkforward", *config, "--param", "fast=10", *args, "--dir", str(where))
    assert result.exit_code == 2, result.output
    assert needle in result.output
    assert not where.exists()
