"""`njord contract-tests --adapter binance --venue URL`: the router contract against a
running venue, keys from the environment, the fault checks left out."""

from __future__ import annotations

import json
from pathlib import Path

from njord.sim.server import SimServer
from tests.conftest import invoke
from tests.sim.conftest import KEY, SECRET


def test_router_contract_against_a_running_venue(stepped: SimServer, tmp_path: Path) -> None:
    out = tmp_path / "binance.json"
    env = {"NJORD_BINANCE_API_KEY": KEY, "NJORD_BINANCE_API_SECRET": SECRET}
    result = invoke(
        "contract-tests",
        "--adapter",
        "binance",
        "--venue",
        stepped.url,
        "--json",
        str(out),
        env=env,
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    names = [r["check"] for r in doc["results"]]
    assert doc["failed"] == 0
    assert "submit twice: the venue executes it once, the answer is the same" in names
    assert not [n for n in names if "unknown outcome" in n or "429" in n]  # need faults


def test_a_venue_without_keys_is_a_usage_error(stepped: SimServer) -> None:
    env = {"NJORD_BINANCE_API_KEY": "", "NJORD_BINANCE_API_SECRET": ""}
    result = invoke("contract-tests", "--adapter", "binance", "--venue", stepped.url, env=env)
    assert result.exit_code == 2
    assert "NJORD_BINANCE_API_KEY" in result.output


def test_venue_is_only_for_the_binance_adapter(stepped: SimServer) -> None:
    result = invoke("contract-tests", "--adapter", "paper", "--venue", stepped.url)
    assert result.exit_code == 2
    assert "--venue is for --adapter binance" in result.output
