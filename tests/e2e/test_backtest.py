from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import apsw
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from njord.core.metrics import columns_of, compute
from njord.errors import StrategyError
from njord.loop import Loop
from njord.store import db, export, reads
from tests.conftest import ROOT, SAMPLE, backtest_args, invoke, query, write_bars

STRATEGY = Path(__file__).with_name("raising_strategy.py")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_inputs_give_byte_identical_outputs(tmp_path: Path, sample_week: Path) -> None:
    digests = []
    for n in (1, 2):
        out = tmp_path / f"r{n}"
        result = invoke(*backtest_args(sample_week, out / "s.db"))
        assert result.exit_code == 0, result.output
        digests.append([sha(out / "out" / f) for f in ("trades.csv", "orders.csv", "equity.csv")])
    assert digests[0] == digests[1]


def test_full_sample_month_reconciles_and_exports(tmp_path: Path) -> None:
    db_path = tmp_path / "s.db"
    result = invoke(*backtest_args(SAMPLE, db_path), "--json")
    assert result.exit_code == 0, result.output
    conn = db.open_reader(db_path)
    recon = reads.reconciliation(conn, 10_000 * 10**8)
    assert recon["difference_e8"] == 0
    assert recon["fees_e8"] > 0
    assert reads.session_status(conn).bars == 44_640
    out = tmp_path / "out"
    for name in ("trades.csv", "orders.csv", "fills.csv", "equity.csv", "logs.jsonl"):
        assert (out / name).exists()
    header = (out / "equity.csv").read_text().splitlines()[:2]
    assert header[0] == "ts_utc,close,cash,position,equity"
    assert header[1].startswith("2024-01-01T00:00:00Z,42")
    # Records logged before the first bar carry its time, not the epoch.
    logged = conn.execute("SELECT min(ts_ms) FROM logs").fetchone()[0]
    started = conn.execute("SELECT ts_ms FROM logs WHERE msg = 'session started'").fetchone()
    assert logged == started[0] == 1_704_067_200_000  # 2024-01-01 00:00 UTC


def test_range_and_gap_policy_options(tmp_path: Path) -> None:
    result = invoke(
        *backtest_args(SAMPLE, tmp_path / "s.db", "--from", "2024-01-10", "--to", "2024-01-11")
    )
    assert result.exit_code == 0, result.output
    conn = db.open_reader(tmp_path / "s.db")
    assert reads.session_status(conn).bars == 1440


def _bars(
    n: int = 200, start: int = 1_704_067_200_000
) -> list[tuple[int, float, float, float, float, float]]:
    return [
        (
            start + i * 60_000,
            100 + math.sin(i / 7) * 5,
            106.0,
            94.0,
            100 + math.sin((i + 1) / 7) * 5,
            1.0,
        )
        for i in range(n)
    ]


def _bad(tmp_path: Path, kind: str) -> Path:
    rows = _bars()
    if kind == "nonmonotonic":
        rows[50], rows[51] = rows[51], rows[50]
    elif kind == "nan":
        rows[10] = (*rows[10][:4], float("nan"), 1.0)
    elif kind == "negative_volume":
        rows[10] = (*rows[10][:5], -1.0)
    elif kind == "high_below_low":
        ts, o, _, _, c, v = rows[10]
        rows[10] = (ts, o, 90.0, 95.0, c, v)
    elif kind == "gap":
        del rows[100:110]
    return write_bars(tmp_path / f"{kind}.parquet", rows)


@pytest.mark.parametrize(
    ("kind", "code", "needle"),
    [
        ("nonmonotonic", 3, "out-of-order timestamp 2024-01-01 00:50"),
        ("nan", 3, "close = nan"),
        ("negative_volume", 3, "volume = -1.0"),
        ("high_below_low", 3, "is inconsistent: high 90.0 low 95.0"),
        ("gap", 3, "gap of 10 bars after 2024-01-01 01:39"),
    ],
)
def test_bad_data_is_refused_before_any_db(
    tmp_path: Path, kind: str, code: int, needle: str
) -> None:
    db_path = tmp_path / "s.db"
    result = invoke(*backtest_args(_bad(tmp_path, kind), db_path))
    assert result.exit_code == code
    assert needle in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not db_path.exists()


@pytest.mark.parametrize(("policy", "bars"), [("forward", 200), ("none", 190)])
def test_gap_policies(tmp_path: Path, policy: str, bars: int) -> None:
    db_path = tmp_path / "s.db"
    result = invoke(*backtest_args(_bad(tmp_path, "gap"), db_path, "--fill", policy))
    assert result.exit_code == 0, result.output
    conn = db.open_reader(db_path)
    assert reads.session_status(conn).bars == bars
    qc = reads.qc(conn)
    assert qc is not None
    assert (qc.gaps, qc.missing_bars) == (1, 10)
    events = conn.execute("SELECT kind, bars FROM qc_events ORDER BY seq").fetchall()
    assert events[0] == ("gap", 10)


def test_bad_files_and_names(tmp_path: Path) -> None:
    not_parquet = tmp_path / "x.parquet"
    not_parquet.write_text("hello")
    wrong_cols = tmp_path / "w.parquet"
    pq.write_table(pa.table({"a": [1]}), wrong_cols)
    cases = [
        (backtest_args(tmp_path / "missing.parquet", tmp_path / "a.db"), 2, "does not exist"),
        (backtest_args(not_parquet, tmp_path / "b.db"), 3, "not a readable Parquet file"),
        (backtest_args(wrong_cols, tmp_path / "c.db"), 3, "lacks column(s) ts_utc, open"),
        (
            backtest_args(SAMPLE, tmp_path / "d.db", "--from", "2030-01-01"),
            2,
            "no bars in the selected range",
        ),
        (
            backtest_args(SAMPLE, tmp_path / "e.db", "--set", 'strategy.name="sma_crossovr"'),
            2,
            "unknown strategy 'sma_crossovr' (strategy.name); did you mean sma_crossover?",
        ),
        (
            backtest_args(SAMPLE, tmp_path / "f.db", "--set", "strategy.params.fastt=3"),
            2,
            "unknown strategy param 'fastt' for SmaCrossover; did you mean fast?",
        ),
        (
            backtest_args(SAMPLE, tmp_path / "g.db", "--set", "strategy.params.fast=40"),
            2,
            "fast must be < slow",
        ),
    ]
    for args, code, needle in cases:
        result = invoke(*args)
        assert result.exit_code == code, (args, result.output)
        assert needle in result.output
        assert not Path(args[args.index("--db") + 1]).exists()


@pytest.mark.parametrize(
    ("name", "code", "line"),
    [
        (
            "RaiseInInit",
            1,
            "strategy RaiseInInit raised in __init__: RuntimeError('no model file')",
        ),
        ("RefusesInInit", 2, "RefusesInInit needs a model file: set strategy.params.model"),
    ],
)
def test_a_strategy_whose_init_raises_exits_1_naming_it_and_makes_no_db(
    tmp_path: Path,
    sample_week: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    code: int,
    line: str,
) -> None:
    """Its own code failing is the strategy's error (exit 1, SPEC §13), as in `on_bar`, not
    an internal error of njord's (70); njord's own error raised there keeps its code; and
    either fails before any session db is made."""
    monkeypatch.syspath_prepend(str(STRATEGY.parent))
    db_path = tmp_path / "s.db"
    args = backtest_args(sample_week, db_path, "--set", f'strategy.name="raising_strategy:{name}"')
    result = invoke(*args)
    assert result.exit_code == code
    assert result.output.strip().splitlines() == [f"error: {line}"]
    assert not db_path.exists()


def test_a_strategy_that_raises_is_reported_in_one_line(tmp_path: Path, sample_week: Path) -> None:
    """The loop records the error in the db and the command prints it: it used to be
    echoed from the log as well, the same error twice on stderr."""
    args = backtest_args(
        sample_week, tmp_path / "s.db", "--set", 'strategy.name="raising_strategy:RaiseAt"'
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(STRATEGY.parent)])}
    done = subprocess.run(
        [sys.executable, "-m", "njord", *args], capture_output=True, text=True, env=env
    )
    assert done.returncode == 1
    assert done.stderr == (
        "error: strategy raised in on_bar at bar 2024-01-01 01:40: RuntimeError('boom')\n"
    )
    logged = query(tmp_path / "s.db", "SELECT component FROM logs WHERE level = 'ERROR'")
    assert logged == [("loop",)]


def test_a_strategy_that_raises_stops_with_code_1_and_keeps_no_partial_bar(
    tmp_path: Path, sample_week: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(STRATEGY.parent))
    db_path = tmp_path / "s.db"
    args = backtest_args(
        sample_week,
        db_path,
        "--set",
        'strategy.name="raising_strategy:RaiseAt"',
        "--set",
        "runtime.commit_every=1",
    )
    result = invoke(*args)
    assert result.exit_code == 1
    assert (
        "strategy raised in on_bar at bar 2024-01-01 01:40: RuntimeError('boom')" in result.output
    )
    # equity.csv was being written as the session ran: neither it nor the folder made for
    # it stays, and the session's db was closed after the file's reader (no -wal left).
    assert not (tmp_path / "out").exists()
    assert not db_path.with_name("s.db-wal").exists()
    conn = db.open_reader(db_path)
    assert reads.session_status(conn).bars == 100
    assert reads.session_status(conn).run_status == "failed"
    logged = conn.execute("SELECT msg, context FROM logs WHERE level = 'ERROR'").fetchall()
    assert "boom" in logged[0][0]
    trace = json.loads(logged[0][1])["traceback"]
    raised = STRATEGY.read_text().splitlines().index('            raise RuntimeError("boom")')
    assert f'raising_strategy.py", line {raised + 1}, in on_bar' in trace  # its own frame
    assert trace.endswith("RuntimeError: boom\n")


def test_daily_rollups_add_up(tmp_path: Path) -> None:
    import pyarrow.parquet as parquet

    db_path = tmp_path / "s.db"
    assert invoke(*backtest_args(SAMPLE, db_path)).exit_code == 0
    daily = parquet.read_table(tmp_path / "out" / "rollup_daily.parquet").to_pylist()
    assert len(daily) == 31
    assert sum(d["bars"] for d in daily) == 44_640
    conn = db.open_reader(db_path)
    first, last = conn.execute(
        "SELECT (SELECT equity_e8 FROM equity ORDER BY ts_ms LIMIT 1), "
        "(SELECT equity_e8 FROM equity ORDER BY ts_ms DESC LIMIT 1)"
    ).fetchone()
    fees = conn.execute("SELECT sum(fee_e8) FROM fills").fetchone()[0]
    assert sum(d["pnl_e8"] for d in daily) == last - first
    assert sum(d["fees_e8"] for d in daily) == fees
    assert (tmp_path / "out" / "rollup_daily.csv").read_text().startswith("day_utc,bars,")


def test_fees_in_the_asset_received_book_buys_net_of_a_base_fee(
    tmp_path: Path, sample_week: Path
) -> None:
    quote_db, received_db = tmp_path / "q" / "s.db", tmp_path / "r" / "s.db"
    assert invoke(*backtest_args(sample_week, quote_db)).exit_code == 0
    result = invoke(*backtest_args(sample_week, received_db, "--set", 'costs.fee_asset="received"'))
    assert result.exit_code == 0, result.output
    sql = "SELECT side, qty_e8, price_e8, notional_e8, fee_e8 FROM fills ORDER BY fill_id"
    quote_fills, received_fills = query(quote_db, sql), query(received_db, sql)
    first_buy = next(i for i, f in enumerate(quote_fills) if f[0] == "BUY")
    _, qty, price, _, quote_fee = quote_fills[first_buy]
    _, net, same_price, notional, fee = received_fills[first_buy]
    assert same_price == price
    base_fee = int(qty) * 10 // 10_000  # 10 bps of the BTC bought, in BTC
    assert net == int(qty) - base_fee
    assert int(notional) + int(fee) == int(qty) * int(price) // 10**8, "paid, to the unit"
    assert abs(int(fee) - int(quote_fee)) <= 1, "the same 10 bps, valued at the fill price"
    assert invoke("audit", str(received_db)).exit_code == 0, "book recomputed from the fills"


@pytest.mark.parametrize(
    ("strategy", "sets", "plain"),
    [
        # market orders on crossovers: quiet bars, in and out of the market
        ("sma_crossover", [], True),
        # ... filled at the next open: the order rests one bar, the router fills it
        ("sma_crossover", ['costs.fill_at="next_open"'], True),
        # resting limits under the close that bars fill, exits at market
        ("user_strategies:EachSymbolCross", [], True),
        # a limit on every other bar, cancelled on the next (ctx.cancel, router reports)
        ("user_strategies:RestsAndCancels", [], True),
        # an hourly timeframe: `Loop.bar` both ways
        ("user_strategies:Hourly", [], False),
    ],
)
def test_the_plain_walk_and_the_paced_one_give_the_same_bytes(
    tmp_path: Path,
    user_strategies: None,
    monkeypatch: pytest.MonkeyPatch,
    strategy: str,
    sets: list[str],
    plain: bool,
) -> None:
    """A backtest of one strategy on one symbol steps its bars through the loop's inlined
    walk (`Loop._plain`, quiet bars marked together, a commit every 7 bars); a paced one
    takes `Loop.bar`, phase by phase. Same bytes out, and the same book at the end: its peak,
    and its day (the session ends three quiet minutes after a UTC midnight, whose day and
    realised P&L of 0 both walks must have rolled to)."""
    walked: list[int] = []
    real = Loop._plain

    def counted(self: Loop, *args: Any) -> None:
        walked.append(1)
        real(self, *args)

    monkeypatch.setattr(Loop, "_plain", counted)
    files = ("equity.csv", "orders.csv", "fills.csv", "trades.csv")
    book = "SELECT * FROM account, risk_state, positions"
    ends = []
    for name, extra in (("plain", []), ("paced", ["--pace-ms", "0.001"])):
        db_path = tmp_path / name / "s.db"
        result = invoke(
            *backtest_args(
                SAMPLE, db_path, "--from", "2024-01-10T12:00", "--to", "2024-01-11T00:03"
            ),
            *(arg for key in (f'strategy.name="{strategy}"', *sets) for arg in ("--set", key)),
            "--set",
            "runtime.commit_every=7",
            *extra,
        )
        assert result.exit_code == 0, result.output
        ends.append(([sha(db_path.parent / "out" / f) for f in files], query(db_path, book)))
        assert bool(walked) == (plain and name == "plain")
        walked.clear()
    assert ends[0] == ends[1]
    ((orders,),) = query(tmp_path / "plain" / "s.db", "SELECT count(*) FROM orders")
    assert orders != 0  # the walks had something to agree on


def test_metrics_from_sqlites_columns_are_the_floats_of_the_rows_in_any_chunks(
    tmp_path: Path, sample_week: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The summary's metrics read the equity curve as columns of text SQLite writes (a
    chunk at a time): the same floats, to the bit, as the rows read one by one."""
    db_path = tmp_path / "s.db"
    assert invoke(*backtest_args(sample_week, db_path)).exit_code == 0
    conn = db.open_reader(db_path)
    try:
        initial = 10_000 * 10**8
        trades = "SELECT pnl_e8, fees_e8 FROM trades ORDER BY trade_id"
        rows = list(conn.execute("SELECT ts_ms, equity_e8 / 1e8 FROM equity ORDER BY ts_ms"))
        pnls = [(p - f) / 1e8 for p, f in conn.execute(trades)]
        held = conn.execute("SELECT count(*) FROM equity WHERE position_e8 != 0").fetchone()
        assert held is not None
        fees = conn.execute("SELECT COALESCE(sum(fee_e8), 0) FROM fills").fetchone()
        assert fees is not None
        by_rows = compute(
            initial=initial / 1e8,
            columns=columns_of(rows),
            trade_pnls=pnls,
            bars_in_market=held[0],
            fees=fees[0] / 1e8,
        )
        monkeypatch.setattr(reads, "COLUMNS_CHUNK", 7)  # a week of bars: 1,440 chunks
        assert reads.metrics(conn, initial) == by_rows
        assert by_rows.trades  # a curve with something to measure
        assert by_rows.max_drawdown
    finally:
        conn.close()


def test_equity_csv_is_the_same_bytes_in_any_chunks_and_from_njord_export(
    tmp_path: Path, sample_week: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The backtest writes equity.csv in a thread, a chunk of lines per SQLite step;
    `njord export` writes it in its own thread of control: chunks of 7 lines there."""
    db_path = tmp_path / "s.db"
    assert invoke(*backtest_args(sample_week, db_path)).exit_code == 0
    monkeypatch.setattr(export, "CURVE_CHUNK", 7)
    result = invoke("export", "--db", str(db_path), "--out", str(tmp_path / "again"))
    assert result.exit_code == 0, result.output
    ran, exported = tmp_path / "out" / "equity.csv", tmp_path / "again" / "equity.csv"
    assert exported.read_bytes() == ran.read_bytes()
    ((bars,),) = query(db_path, "SELECT count(*) FROM equity")
    assert len(ran.read_text().splitlines()) == 1 + bars


def test_a_failed_backtest_leaves_the_results_already_in_its_out_folder(
    tmp_path: Path, sample_week: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(STRATEGY.parent))
    out = tmp_path / "out"
    out.mkdir()
    (out / "equity.csv").write_text("an earlier run's\n")
    args = backtest_args(sample_week, tmp_path / "s.db")
    assert invoke(*args, "--set", 'strategy.name="raising_strategy:RaiseAt"').exit_code == 1
    assert sorted(p.name for p in out.iterdir()) == ["equity.csv"]
    assert (out / "equity.csv").read_text() == "an earlier run's\n"


def test_equity_csv_holds_bars_from_before_1970(tmp_path: Path) -> None:
    """The curve is read on from the lowest time there is, not from the epoch."""
    data = write_bars(tmp_path / "old.parquet", _bars(120, start=-60 * 60_000))
    db_path = tmp_path / "s.db"
    result = invoke(*backtest_args(data, db_path))
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "out" / "equity.csv").read_text().splitlines()
    assert len(lines) == 1 + 120
    assert lines[1].startswith("1969-12-31T23:00:00Z,")


def test_a_verification_whose_rerun_raises_closes_the_rerun_db(
    tmp_path: Path, sample_week: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A re-run that raises has its db closed before its folder goes, not left open (a
    `verify` in a long-lived process: the TUI, a sweep worker)."""
    from njord import verify

    monkeypatch.syspath_prepend(str(STRATEGY.parent))
    db_path = tmp_path / "s.db"
    name = 'strategy.name="raising_strategy:RaiseWhenTold"'
    assert invoke(*backtest_args(sample_week, db_path, "--set", name)).exit_code == 0
    monkeypatch.setenv("NJORD_TEST_RAISE", "1")
    with pytest.raises(StrategyError, match="told to") as raised:
        verify.verify(db_path)
    # `raised` keeps the frames, and the re-run's Session in them, alive: open, it would show.
    assert raised.traceback
    assert not [c for c in apsw.connections() if "njord-verify-" in c.filename]
