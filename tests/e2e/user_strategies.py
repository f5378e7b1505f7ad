"""Strategies for the end-to-end tests: outside the njord package, like a user's own."""

from __future__ import annotations

from decimal import Decimal

from njord.core.strategy import Context, Strategy
from njord.records import Bar, OrderIntent, Side


class EveryBar(Strategy):
    """Buys a little on one bar and sells it on the next: an intent on every bar."""

    def on_bar(self, ctx: Context, symbol: str, bar: Bar) -> list[OrderIntent]:
        side = Side.SELL if ctx.state.position_e8(symbol) > 0 else Side.BUY
        return [OrderIntent(symbol=symbol, side=side, qty=Decimal("0.001"), tag="every_bar")]


class HoldLong(Strategy):
    """Buys once on its first bar and holds."""

    def on_bar(self, ctx: Context, symbol: str, bar: Bar) -> list[OrderIntent]:
        if ctx.state.position_e8(symbol) or ctx.state.open_orders:
            return []
        return [OrderIntent(symbol=symbol, side=Side.BUY, qty=Decimal("0.01"), tag="hold")]
