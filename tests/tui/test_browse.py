"""Browsing a real session db: tables, filters, one order's history."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.widgets import DataTable, Select, Static, TabbedContent

from njord.store import browse, db
from njord.tui.app import NjordApp
from njord.tui.browse import Browse, OrderDetail
from tests.conftest import query


def test_reads_filter_and_count_like_sql(halted: Path) -> None:
    conn = db.open_reader(halted)
    try:
        assert browse.choices(conn)["reason"] == ["HALTED", "OK"]
        blocked = browse.page(conn, "verdicts", browse.Filters(reason="HALTED"), limit=10)
        assert (
            blocked.total
            == query(halted, "SELECT count(*) FROM intents WHERE reason = 'HALTED'")[0][0]
        )
        assert len(blocked.rows) == 10
        assert all(r[5] == "HALTED" for r in blocked.rows)
        assert blocked.keys == [""] * 10  # a blocked intent never became an order
        warnings = browse.page(conn, "logs", browse.Filters(level="WARNING"))
        assert warnings.total == 2
        assert all(r[1] == "WARNING" for r in warnings.rows)
        assert browse.page(conn, "alerts", browse.Filters()).rows[0][1] == "daily_loss_halt"
        assert browse.page(conn, "fills", browse.Filters(symbol="ETHUSDT")).total == 0
        assert browse.order_history(conn, "no-such-order") is None
        with pytest.raises(ValueError, match="no browse table 'trades'"):
            browse.page(conn, "trades", browse.Filters())
    finally:
        conn.close()


def test_browse_filters_tables_and_opens_an_orders_history(halted: Path) -> None:
    async def run() -> None:
        app = NjordApp(halted)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("b")
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, Browse)
            orders = screen.query_one("#table-orders", DataTable)
            assert orders.row_count == query(halted, "SELECT count(*) FROM orders")[0][0] == 2
            assert screen.query_one("#table-verdicts", DataTable).row_count == 88

            screen.query_one("#by-reason", Select).value = "OK"
            await pilot.pause()
            assert screen.query_one("#table-verdicts", DataTable).row_count == 2
            screen.query_one("#by-level", Select).value = "WARNING"
            await pilot.press("5")
            await pilot.pause()
            assert screen.query_one(TabbedContent).active == "tab-logs"
            assert screen.query_one("#table-logs", DataTable).row_count == 2
            assert "logs: newest 2 of 2" in str(screen.query_one("#count", Static).render())

            await pilot.press("1", "enter")  # the newest order
            await pilot.pause()
            detail = app.screen
            assert isinstance(detail, OrderDetail)
            newest = query(halted, "SELECT client_order_id FROM orders ORDER BY intent_id")[-1][0]
            assert detail.client_order_id == newest
            events = detail.query_one("#events", DataTable)
            states = [events.get_row_at(i)[1] for i in range(events.row_count)]
            stored = query(
                halted,
                f"SELECT status FROM order_events WHERE client_order_id = '{newest}' ORDER BY seq",
            )
            assert states == [s for (s,) in stored] == ["NEW", "SUBMITTED", "FILLED"]
            assert "verdict OK" in str(detail.query_one("#order", Static).render())
            await pilot.press("escape", "escape")
            await pilot.pause()
            assert app.screen is app.dashboard

    asyncio.run(run())
