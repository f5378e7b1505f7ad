"""`njord contract-tests`: a port's contract suite run against one adapter.

Imported only when it runs or shows its help (njord.cli.LAZY_COMMANDS): the suite
builds every adapter, and with them the whole engine.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
import msgspec

from njord import contract, paths
from njord.errors import MismatchError
from njord.paths import InputPath, OutputPath
from njord.ports import CONTRACT_ADAPTERS
from njord.secrets import EnvSecrets


@click.command("contract-tests")
@click.option("--adapter", type=click.Choice([*CONTRACT_ADAPTERS, "binance"]), required=True)
@click.option(
    "--data",
    type=InputPath(),
    default=Path("sample_data/BTCUSDT-1m-2024-01.parquet"),
    show_default=True,
)
@click.option(
    "--venue",
    metavar="URL",
    help="binance: run against this venue (keys from NJORD_BINANCE_API_KEY / _SECRET; "
    "it places small orders: use a testnet) instead of an in-process simulator",
)
@click.option("--symbol", default="BTCUSDT", show_default=True, help="binance --venue: symbol")
@click.option("--junit", "junit_path", type=OutputPath("file"), help="JUnit XML out")
@click.option("--json", "json_path", type=OutputPath("file"), help="JSON summary out")
def contract_tests(
    adapter: str,
    data: Path,
    venue: str | None,
    symbol: str,
    junit_path: Path | None,
    json_path: Path | None,
) -> None:
    """Run a port's contract suite against one adapter (exit 4 if any check fails)."""
    keys = EnvSecrets(os.environ)
    results = contract.run(
        adapter,
        data,
        venue=venue,
        symbol=symbol,
        key=keys.get("binance_api_key"),
        secret=keys.get("binance_api_secret"),
    )
    for r in results:
        click.echo(
            f"{'ok  ' if r.ok else 'FAIL'} {r.port}[{r.adapter}] {r.check}"
            + (f": {r.detail}" if r.detail else "")
        )
    if junit_path:
        paths.write(junit_path, contract.junit_xml(results))
    if json_path:
        summary = {
            "passed": sum(r.ok for r in results),
            "failed": sum(not r.ok for r in results),
            "results": msgspec.to_builtins(results),
        }
        paths.write(json_path, msgspec.json.encode(summary, order="sorted"))
    failed = [r for r in results if not r.ok]
    if failed:
        raise MismatchError(f"{len(failed)} contract check(s) failed, first: {failed[0].check}")
