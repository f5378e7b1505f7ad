"""The fill model shared by backtest, shadow and paper (SPEC §7), and the cost model.

Rules (docs/execution.md):
- MARKET fills in one aggregated fill at the close of the bar it was decided on, moved
  against the trader by slippage + half the spread, rounded to the tick against the trader.
- LIMIT rests (GTC) from the next bar on. A buy fills when low <= limit, a sell when
  high >= limit, at the limit price; when the bar opens through the limit (buy: open <
  limit; sell: open > limit) it fills at the open, the price actually available first.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import msgspec

from njord.core.money import E8, bps_of, mul_e8
from njord.records import Order, OrderType, Side


class CostModel(msgspec.Struct, frozen=True, kw_only=True):
    commission_bps: Decimal = Decimal(0)
    spread_bps: Decimal = Decimal(0)
    slippage_bps: Decimal = Decimal(0)
    min_notional_e8: int = 0
    # "quote": every fee in the quote asset. "received": as Binance charges by default, a
    # buy pays in the base asset it receives, a sell in the quote asset.
    fee_asset: Literal["quote", "received"] = "quote"

    def fee_e8(self, notional_e8: int) -> int:
        return bps_of(notional_e8, self.commission_bps)

    def adverse_bps(self) -> Decimal:
        return self.slippage_bps + self.spread_bps / 2


class SymbolRules(msgspec.Struct, frozen=True, kw_only=True):
    """The exchange filters that shape a price or quantity (BTCUSDT's by default)."""

    tick_e8: int = E8 // 100
    step_e8: int = E8 // 100_000

    def floor_qty(self, qty_e8: int) -> int:
        return qty_e8 - qty_e8 % self.step_e8

    def round_price(self, price_e8: int, *, up: bool) -> int:
        down = price_e8 - price_e8 % self.tick_e8
        return down + self.tick_e8 if up and down != price_e8 else down


def market_price_e8(close_e8: int, side: Side, costs: CostModel, rules: SymbolRules) -> int:
    move = bps_of(close_e8, costs.adverse_bps())
    if side is Side.BUY:
        return rules.round_price(close_e8 + move, up=True)
    return rules.round_price(close_e8 - move, up=False)


def limit_fill_price_e8(order: Order, open_e8: int, high_e8: int, low_e8: int) -> int | None:
    limit = order.limit_e8
    if order.type is not OrderType.LIMIT or limit is None:
        return None
    if order.side is Side.BUY:
        return min(limit, open_e8) if low_e8 <= limit else None
    return max(limit, open_e8) if high_e8 >= limit else None


def cash_needed_e8(qty_e8: int, price_e8: int, costs: CostModel) -> int:
    """Cash a buy may take at most: notional at the worst modelled price, plus its fee."""
    notional = mul_e8(qty_e8, price_e8 + bps_of(price_e8, costs.adverse_bps()))
    return notional + costs.fee_e8(notional)
