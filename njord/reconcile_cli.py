"""`njord reconcile`: a live session's book matched to its venue now, on demand.

Read-only on both sides: the venue is only asked (balances, open orders, trades since the
last reconciliation, lookups of orders the venue no longer lists open), and the db is
opened as a reader, so it runs beside the session that trades. What it prints is what the
session's next reconciliation would find; exit 4 when something cannot be explained.
"""

from __future__ import annotations

from pathlib import Path

import click

from njord import amend, reconcile
from njord.adapters.binance_router import BinanceRouter, VenueStartError
from njord.config import stored_config
from njord.core.money import fmt_e8
from njord.core.reports import Execution, Report
from njord.db_param import session_db
from njord.errors import ConfigError, MismatchError
from njord.live import venue_client
from njord.store import amendments, db
from njord.store.runs import SqliteManifestStore
from njord.upkeep import book_view


@click.command("reconcile")
@session_db(help="the live session's db")
@click.option("--env-prefix", default="NJORD_", show_default=True, help="environment prefix")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def reconcile_cmd(db_path: Path, env_prefix: str, as_json: bool) -> None:
    """Match a live session's book to its venue now (read-only on both); exit 4 if they
    differ."""
    conn = db.open_reader(db_path)
    try:
        manifest = SqliteManifestStore(conn).load()
        if manifest is None or manifest.mode != "live":
            held = f"a {manifest.mode} session" if manifest else "no session"
            raise ConfigError(f"{db_path} holds {held}; reconcile checks live sessions")
        config = amend.effective(stored_config(manifest.config_toml), amendments.load(conn))
        router = BinanceRouter(venue_client(config, env_prefix), symbol=config.data.symbol)
        # Its first requests take one try each: an operator's check says at once that the
        # venue is not answering, where a session's router would back off and retry.
        router.retries, retries = 0, router.retries
        try:
            router.start()
        except VenueStartError as e:
            raise VenueStartError(
                f"cannot reconcile {db_path} against {config.venue.base_url}: "
                f"{e.__cause__ or e}; nothing was asked of it and nothing changed"
            ) from e
        router.retries = retries
        view, cursor = book_view(conn, router)
        result = reconcile.run(router, view, cursor=cursor, policy=config.venue.on_mismatch)
    finally:
        conn.close()
    rec = result.reconciliation
    rows = [
        *(("missed fill", f.client_order_id, _fill(f), "") for f in rec.missed),
        *(("to query", coid, _closed(result.closed.get(coid)), "") for coid in rec.to_query),
        *((f"external {e.kind}", e.subject, e.venue_value, e.book_value) for e in rec.external),
    ]
    if as_json:
        import msgspec

        doc = {
            "clean": rec.clean,
            "action": result.action,
            "cursor": rec.cursor,
            "balances_e8": result.venue.balances_e8,
            "expected_e8": rec.expected_e8,
            "missed": rec.missed,
            "to_query": rec.to_query,
            "external": rec.external,
        }
        click.echo(msgspec.json.encode(doc, order="sorted").decode())
    else:
        _table(db_path, rows, result.venue.balances_e8, rec.expected_e8)
    if rec.external:
        raise MismatchError(
            f"{len(rec.external)} difference(s) the session cannot explain; on its next "
            f"reconciliation it will {result.action} (venue.on_mismatch)"
        )


def _fill(f: Execution) -> str:
    return f"{fmt_e8(f.qty_e8)} @ {fmt_e8(f.price_e8)} (trade {f.trade_id})"


def _closed(reports: list[Report] | None) -> str:
    return "never reached the venue" if reports is None else "closed at the venue"


def _table(
    db_path: Path,
    rows: list[tuple[str, str, str, str]],
    balances: dict[str, int],
    expected: dict[str, int],
) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"njord reconcile {db_path}")
    for name in ("what", "subject", "venue", "book"):
        table.add_column(name)
    for asset in sorted(expected):
        table.add_row("balance", asset, fmt_e8(balances.get(asset, 0)), fmt_e8(expected[asset]))
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    if not rows:
        click.echo("book and venue agree")
