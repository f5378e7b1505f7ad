"""Browse a session: orders, fills, verdicts, alerts and logs, filtered; one order's history."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import (
    DataTable,
    Footer,
    Header,
    Select,
    Static,
    TabbedContent,
    TabPane,
)

from njord.store import browse
from njord.store.db import Connection
from njord.tui.dashboard import utc

TIME_COLUMNS = {"created", "time", "bar", "raised", "cleared"}
FILTERS = ("symbol", "reason", "level")


def cell(column: str, value: Any) -> str:
    if value is None:
        return "-"
    if column in TIME_COLUMNS:
        return utc(int(value))
    if column == "allowed":
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.8g}"
    return str(value)


def rule_input(key: str, value: Any) -> str:
    """Rule inputs are stored as the rule saw them (money in e8 units); show them in units."""
    if key.endswith("_e8") and isinstance(value, int):
        return f"{key.removesuffix('_e8')}={value / 1e8:,.8g}"
    return f"{key}={value}"


class Browse(Screen[None]):
    """Tables of what the session did, newest first. Enter on a row that belongs to an order
    opens that order's history. `g` re-reads (the tables do not move under the cursor)."""

    DEFAULT_CSS = """
    #filters { height: 1; }
    #filters Select { margin: 0 1; }
    #filters Select { width: 1fr; }
    #count { height: 1; padding: 0 1; }
    Browse TabbedContent { height: 1fr; }
    Browse ContentSwitcher { height: 1fr; }
    Browse TabPane { height: 1fr; padding: 0; }
    Browse DataTable { height: 1fr; }
    """
    BINDINGS: ClassVar = [
        Binding("escape,b", "app.pop_screen", "dashboard"),
        Binding("g", "reload", "reload"),
        *(
            Binding(str(i), f"tab('{name}')", name, show=False)
            for i, name in enumerate(browse.TABLES, start=1)
        ),
    ]

    def __init__(self, conn: Connection) -> None:
        super().__init__()
        self.conn = conn
        self.keys: dict[str, list[str]] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        options = browse.choices(self.conn)
        with Horizontal(id="filters"):
            for name in FILTERS:
                yield Select(
                    [(v, v) for v in options[name]],
                    prompt=f"{name}: any",
                    id=f"by-{name}",
                    compact=True,
                )
        with TabbedContent(id="tabs"):
            for i, name in enumerate(browse.TABLES, start=1):
                with TabPane(f"{i} {name}", id=f"tab-{name}"):
                    yield DataTable(id=f"table-{name}", cursor_type="row", zebra_stripes=True)
        yield Static(id="count")
        yield Footer()

    def on_mount(self) -> None:
        self.action_reload()
        self.query_one("#table-orders", DataTable).focus()

    def filters(self) -> browse.Filters:
        chosen: dict[str, str | None] = {}
        for name in FILTERS:
            value = self.query_one(f"#by-{name}", Select).value
            chosen[name] = value if isinstance(value, str) else None
        return browse.Filters(**chosen)

    def action_reload(self) -> None:
        filters = self.filters()
        for name in browse.TABLES:
            page = browse.page(self.conn, name, filters)
            table = self.query_one(f"#table-{name}", DataTable)
            table.clear(columns=True)
            table.add_columns(*page.columns)
            table.add_rows(
                [cell(c, v) for c, v in zip(page.columns, r, strict=True)] for r in page.rows
            )
            self.keys[name] = page.keys
            table.border_title = f"newest {len(page.rows):,} of {page.total:,}"
        self.show_count()

    def show_count(self) -> None:
        active = self.query_one(TabbedContent).active.removeprefix("tab-")
        table = self.query_one(f"#table-{active}", DataTable)
        self.query_one("#count", Static).update(
            f"{active}: {table.border_title}  1-5 table  enter order history  g reload"
        )

    def action_tab(self, name: str) -> None:
        self.query_one(TabbedContent).active = f"tab-{name}"
        self.query_one(f"#table-{name}", DataTable).focus()

    def on_select_changed(self, _: Select.Changed) -> None:
        self.action_reload()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.show_count()
        event.pane.query_one(DataTable).focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        table_id = event.data_table.id or ""
        keys = self.keys.get(table_id.removeprefix("table-"), [])
        row = event.cursor_row
        if 0 <= row < len(keys) and keys[row]:
            self.app.push_screen(OrderDetail(self.conn, keys[row]))
        else:
            self.notify("this row belongs to no order")


class OrderDetail(Screen[None]):
    """One order: what it was, the verdict it came from, every state, every fill."""

    DEFAULT_CSS = """
    #order { height: auto; padding: 0 1; }
    OrderDetail DataTable { height: 1fr; }
    """
    BINDINGS: ClassVar = [Binding("escape,b", "app.pop_screen", "back")]

    def __init__(self, conn: Connection, client_order_id: str) -> None:
        super().__init__()
        self.conn = conn
        self.client_order_id = client_order_id

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="order")
        yield DataTable(id="events", cursor_type="row")
        yield DataTable(id="order-fills", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        order = browse.order_history(self.conn, self.client_order_id)
        if order is None:
            self.query_one("#order", Static).update(f"no order {self.client_order_id} in this db")
            return
        limit = f" limit {order.limit:,.8g}" if order.limit is not None else ""
        inputs = "  ".join(rule_input(k, v) for k, v in sorted(order.rule_inputs.items()))
        avg = f"{order.avg_price:,.2f}" if order.avg_price is not None else "-"
        self.query_one("#order", Static).update(
            f"[b]{order.client_order_id}[/]  {order.status}"
            f"{'  ' + order.reason if order.reason else ''}\n"
            f"{order.side} {order.type} {order.qty:,.8g} {order.symbol}{limit}  "
            f"filled {order.filled_qty:,.8g} avg {avg}\n"
            f"bar {utc(order.bar_ts_ms)}  tag {order.tag}  verdict {order.verdict}\n"
            f"rule inputs: {inputs}"
        )
        events = self.query_one("#events", DataTable)
        events.add_columns("time", "status", "detail")
        events.add_rows((utc(e.ts_ms), e.status, e.detail) for e in order.events)
        events.border_title = "state history"
        fills = self.query_one("#order-fills", DataTable)
        fills.add_columns("time", "qty", "price", "fee")
        fills.add_rows(
            (utc(f.ts_ms), f"{f.qty:,.8g}", f"{f.price:,.2f}", f"{f.fee:,.8g}") for f in order.fills
        )
        fills.border_title = "fills"
