"""Trade dumps to 1-minute bars: both Binance layouts, headers, ms and µs, block splits."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from njord.data import trades
from njord.data.history import HistoryFeed
from njord.errors import DataError
from tests.conftest import invoke

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
# (ms offset from T0, price, qty): two trades in minute 0, none in 1 and 2, three in 3.
TRADES = [
    (1_000, "42000.10", "0.00100000"),
    (59_999, "42001.00", "0.25000000"),
    (180_000, "41999.50", "1.00000000"),
    (180_500, "42010.00", "0.00050000"),
    (239_000, "42005.25", "0.10000000"),
]
EXPECTED = [
    # ts, open, high, low, close, volume, ntrades, filled
    (T0, 42000.10, 42001.00, 42000.10, 42001.00, 0.251, 2, False),
    (T0 + 60_000, 42001.00, 42001.00, 42001.00, 42001.00, 0.0, 0, True),
    (T0 + 120_000, 42001.00, 42001.00, 42001.00, 42001.00, 0.0, 0, True),
    (T0 + 180_000, 41999.50, 42010.00, 41999.50, 42005.25, 1.1005, 3, False),
]


def dump(kind: str, *, header: bool, micro: bool) -> str:
    lines = [",".join(trades.COLUMNS[kind])] if header else []  # type: ignore[index]
    for i, (dt, price, qty) in enumerate(TRADES):
        t = (T0 + dt) * (1000 if micro else 1)
        if kind == "trades":
            quote = f"{float(price) * float(qty):.8f}"
            lines.append(f"{100 + i},{price},{qty},{quote},{t},True,True")
        else:
            lines.append(f"{500 + i},{price},{qty},{700 + 2 * i},{701 + 2 * i},{t},False,True")
    return "\n".join(lines) + "\n"


def bars(path: Path) -> list[tuple[object, ...]]:
    table = pq.read_table(path)
    cols = ["ts_utc", "open", "high", "low", "close", "volume", "ntrades", "filled"]
    rows = zip(*(table.column(c).to_pylist() for c in cols), strict=True)
    return [(int(r[0].timestamp() * 1000), *r[1:]) for r in rows]


@pytest.mark.parametrize("kind", ["trades", "aggTrades"])
@pytest.mark.parametrize("header", [False, True])
@pytest.mark.parametrize("micro", [False, True])
def test_both_layouts_with_and_without_header_in_ms_and_us(
    tmp_path: Path, kind: str, header: bool, micro: bool
) -> None:
    src = tmp_path / "dump.csv"  # no telling name: the layout comes from the content
    src.write_text(dump(kind, header=header, micro=micro))
    assert trades.layout(src) == kind
    report = trades.import_trades([src], out=tmp_path / "b.parquet", symbol="BTCUSDT")
    assert (report.rows_in, report.rows_out) == (5, 4)
    assert bars(tmp_path / "b.parquet") == EXPECTED


def test_a_zipped_monthly_dump_through_the_cli_and_the_feed(tmp_path: Path) -> None:
    src = tmp_path / "BTCUSDT-aggTrades-2024-01.zip"
    with zipfile.ZipFile(src, "w") as z:
        z.writestr("BTCUSDT-aggTrades-2024-01.csv", dump("aggTrades", header=False, micro=False))
    out = tmp_path / "bars.parquet"
    result = invoke("data", "import", str(src), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "aggregated 5 trades into 4 1-minute bars 2024-01-01 00:00 .. 2024-01-01 00:03" in (
        result.output
    )
    feed = HistoryFeed(out, symbol="BTCUSDT", gaps="strict")
    [batch] = list(feed.batches())
    assert batch.filled == [0, 1, 1, 0]  # the feed keeps the import's filled minutes


def test_out_of_order_or_bad_trades_write_nothing(tmp_path: Path) -> None:
    lines = dump("trades", header=False, micro=False).splitlines()
    swapped = tmp_path / "BTCUSDT-trades-2024-01.csv"
    swapped.write_text("\n".join([lines[1], lines[0], *lines[2:]]) + "\n")
    out = tmp_path / "b.parquet"
    with pytest.raises(DataError, match="trade dumps must be in time order"):
        trades.import_trades([swapped], out=out, symbol="X")
    negative = tmp_path / "neg-trades-.csv"
    negative.write_text(lines[0].replace("42000.10", "-1") + "\n")
    result = invoke("data", "import", str(negative), "--out", str(out))
    assert result.exit_code == 3
    assert "has price -1.0" in result.output
    assert not out.exists()
    assert list(tmp_path.glob("*.partial")) == []


@st.composite
def trade_streams(draw: st.DrawFn) -> list[tuple[int, float, float]]:
    t = T0 + draw(st.integers(0, 10**6))
    out = []
    for _ in range(draw(st.integers(1, 400))):
        t += draw(st.one_of(st.integers(0, 2_000), st.integers(0, 600_000)))
        price = draw(st.integers(1, 10**7)) / 100
        qty = draw(st.integers(0, 10**9)) / 10**8
        out.append((t, price, qty))
    return out


def independent(stream: list[tuple[int, float, float]]) -> list[tuple[object, ...]]:
    by_minute: dict[int, list[tuple[int, float, float]]] = {}
    for trade in stream:
        by_minute.setdefault(trade[0] // 60_000 * 60_000, []).append(trade)
    out: list[tuple[object, ...]] = []
    close = 0.0
    for m in range(min(by_minute), max(by_minute) + 60_000, 60_000):
        got = by_minute.get(m)
        if got is None:
            out.append((m, close, close, close, close, 0.0, 0, True))
            continue
        prices = [p for _, p, _ in got]
        volume = sum(round(q * 10**8) for _, _, q in got) / 10**8
        close = prices[-1]
        out.append((m, prices[0], max(prices), min(prices), close, volume, len(got), False))
    return out


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(trade_streams())
def test_random_trades_aggregate_like_an_independent_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stream: list[tuple[int, float, float]]
) -> None:
    monkeypatch.setattr(trades, "BLOCK_BYTES", 512)  # many blocks: minutes span splits
    src = tmp_path / "x-trades-.csv"
    src.write_text("".join(f"{i},{p},{q},0,{t},True,True\n" for i, (t, p, q) in enumerate(stream)))
    trades.import_trades([src], out=tmp_path / "b.parquet", symbol="X")
    assert bars(tmp_path / "b.parquet") == independent(stream)


def test_trade_dumps_are_labelled_by_their_names_and_one_symbol_at_a_time(tmp_path: Path) -> None:
    eth = tmp_path / "ETHUSDT-trades-2024-01-01.csv"
    eth.write_text(dump("trades", header=False, micro=False))
    out = tmp_path / "eth.parquet"
    result = invoke("data", "import", str(eth), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert set(pq.read_table(out).column("symbol").to_pylist()) == {"ETHUSDT"}
    btc = tmp_path / "BTCUSDT-trades-2024-01-02.csv"
    btc.write_text(dump("trades", header=False, micro=False).replace("1704", "1705"))
    both = invoke("data", "import", str(eth), str(btc), "--out", str(tmp_path / "x.parquet"))
    assert both.exit_code == 3
    assert both.output == (
        "error: the inputs hold BTCUSDT, ETHUSDT: import one symbol per output file\n"
    )
    assert not (tmp_path / "x.parquet").exists()
