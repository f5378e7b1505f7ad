"""Helpers the samples share: sizing a full-cash entry and closing a position."""

from __future__ import annotations

from decimal import Decimal

from njord.core.strategy import Context
from njord.records import OrderIntent, Side


def enter_long(ctx: Context, symbol: str, close: float, fraction: float, tag: str) -> OrderIntent:
    qty = ctx.state.cash * Decimal(str(fraction)) / Decimal(str(close))
    return OrderIntent(symbol=symbol, side=Side.BUY, qty=qty, tag=tag)


def exit_long(ctx: Context, symbol: str, tag: str) -> list[OrderIntent]:
    if not ctx.state.holds(symbol):
        return []
    return [OrderIntent(symbol=symbol, side=Side.SELL, qty=ctx.state.position(symbol), tag=tag)]
