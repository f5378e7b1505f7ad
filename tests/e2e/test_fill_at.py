"""`costs.fill_at`: a market order fills at its bar's close, or at the next bar's open."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import backtest_args, invoke, query, write_bars

T0 = 1_704_067_200_000  # 2024-01-01
# Five bars whose opens and closes all differ, so each fill price names its bar.
BARS = [
    (T0 + i * 60_000, o, max(o, c) + 1, min(o, c) - 1, c, 1.0)
    for i, (o, c) in enumerate([(100, 101), (102, 103), (104, 105), (106, 107), (108, 109)])
]
COSTS = ["--set", "costs.commission_bps=10", "--set", "costs.slippage_bps=0"]


def _run(tmp_path: Path, fill_at: str) -> list[tuple[object, ...]]:
    data = write_bars(tmp_path / "five.parquet", BARS)
    db = tmp_path / f"{fill_at}.db"
    args = backtest_args(data, db, "--strategy", "user_strategies:BuyThenSell", *COSTS)
    result = invoke(*args, "--set", f'costs.fill_at="{fill_at}"', "--no-report")
    assert result.exit_code == 0, result.output
    return query(
        db,
        "SELECT o.created_ms, f.ts_ms, f.side, f.qty_e8, f.price_e8, f.fee_e8 FROM fills f "
        "JOIN orders o USING (client_order_id) ORDER BY f.fill_id",
    )


@pytest.mark.usefixtures("user_strategies")
def test_market_orders_fill_at_the_close_by_hand(tmp_path: Path) -> None:
    # Bought on bar 2 at its close 103, sold on bar 4 at its close 107; 10 bps fees.
    assert _run(tmp_path, "close") == [
        (T0 + 60_000, T0 + 60_000, "BUY", 10**8, 103 * 10**8, 10_300_000),
        (T0 + 180_000, T0 + 180_000, "SELL", 10**8, 107 * 10**8, 10_700_000),
    ]


@pytest.mark.usefixtures("user_strategies")
def test_market_orders_fill_at_the_next_open_by_hand(tmp_path: Path) -> None:
    # Decided on bar 2 and bar 4; filled at the opens of bars 3 (104) and 5 (108).
    assert _run(tmp_path, "next_open") == [
        (T0 + 60_000, T0 + 120_000, "BUY", 10**8, 104 * 10**8, 10_400_000),
        (T0 + 180_000, T0 + 240_000, "SELL", 10**8, 108 * 10**8, 10_800_000),
    ]
    equity = query(tmp_path / "next_open.db", "SELECT equity_e8 FROM equity ORDER BY ts_ms")
    # Cash 10,000; bought at 104 (fee 0.104) and marked at 105, 107; sold at 108 (fee 0.108).
    assert [e for (e,) in equity] == [
        10_000 * 10**8,
        10_000 * 10**8,
        (10_000 - 104 + 105) * 10**8 - 10_400_000,
        (10_000 - 104 + 107) * 10**8 - 10_400_000,
        (10_000 + 4) * 10**8 - 10_400_000 - 10_800_000,
    ]
