from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import requests

from njord.sim.server import SimServer
from tests.conftest import ROOT, SAMPLE, invoke
from tests.sim.conftest import FIRST_BAR_MS


def test_exchange_sim_serves_on_an_os_chosen_port_and_stops_on_sigterm(eth_bars: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "njord",
            "exchange-sim",
            "--data",
            str(SAMPLE),
            "--data",
            f"ETHUSDT={eth_bars}",
            "--port",
            "0",
            "--speed",
            "0",
            "--start",
            "2024-01-01T03:00",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert proc.stdout.readline().startswith("api-key ")
        assert requests.get(f"{url}/api/v3/ping", timeout=5).json() == {}
        bars = requests.get(
            f"{url}/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1m"}, timeout=5
        ).json()
        assert len(bars) == 181  # closed by 03:00, then the open bar
        info = requests.get(f"{url}/api/v3/exchangeInfo", timeout=5).json()
        assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT", "ETHUSDT"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_exchange_sim_bad_input(tmp_path: Path) -> None:
    faults = tmp_path / "f.toml"
    empty = tmp_path / "empty.parquet"
    pq.write_table(pq.read_table(SAMPLE).slice(0, 0), empty)
    faults.write_text('[[faults]]\nkind = "500"\nevery = 2\noops = 1\n')
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        cases = [
            (["--data", str(tmp_path / "none.parquet")], "does not exist"),
            (
                ["--data", str(SAMPLE), "--faults", str(faults)],
                "unknown field `oops` - at `$.faults[0]`",
            ),
            (["--data", str(SAMPLE), "--port", str(port)], f"cannot listen on 127.0.0.1:{port}"),
            (["--data", str(SAMPLE), "--balance", "USDT=-1"], "--balance takes ASSET=AMOUNT"),
            (
                ["--data", str(SAMPLE), "--data", f"BTCUSDT={SAMPLE}"],
                "--data gives BTCUSDT twice",
            ),
            (["--data", f"NOPE={SAMPLE}"], "cannot tell the base and quote assets of 'NOPE'"),
            (["--data", f"ETHUSDT={empty}"], f"--data ETHUSDT={empty}: no bars to replay"),
        ]
        for args, needle in cases:
            result = invoke("exchange-sim", *args)
            assert result.exit_code == 2, (args, result.output)
            assert needle in result.output
            assert len(result.output.strip().splitlines()) == 1
    finally:
        busy.close()


def test_data_fetch_pages_through_the_simulator(stepped: SimServer, tmp_path: Path) -> None:
    requests.post(f"{stepped.url}/sim/advance?minutes=1500", timeout=5)  # 27 hours in
    out = tmp_path / "fetched.parquet"
    result = invoke(
        "data",
        "fetch",
        "--symbol",
        "BTCUSDT",
        "--from",
        "2024-01-01",
        "--to",
        "2024-01-02",
        "--base-url",
        stepped.url,
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert "fetched 1440 bars" in result.output
    fetched = pq.read_table(out)
    original = pq.read_table(SAMPLE).slice(0, 1440)
    assert fetched.column("close").equals(original.column("close"))
    assert fetched.column("ts_utc").to_pylist()[0].timestamp() * 1000 == FIRST_BAR_MS


@pytest.mark.parametrize("adapter", ["history", "live-feed", "paper"])
def test_contract_tests_write_junit_and_json(tmp_path: Path, adapter: str) -> None:
    junit, summary = tmp_path / "c.xml", tmp_path / "c.json"
    result = invoke(
        "contract-tests",
        "--adapter",
        adapter,
        "--data",
        str(SAMPLE),
        "--junit",
        str(junit),
        "--json",
        str(summary),
    )
    assert result.exit_code == 0, result.output
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert suite.get("failures") == "0"
    assert int(suite.get("tests") or 0) >= 4
    doc = json.loads(summary.read_text())
    assert doc["failed"] == 0
    assert doc["passed"] == len(doc["results"])
