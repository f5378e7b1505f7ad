"""SimRouter: the OrderRouter of backtests, fills from the shared fill model (SPEC §7)."""

from __future__ import annotations

from njord.core.book import BarE8, Execution
from njord.core.execution import CostModel, SymbolRules, limit_fill_price_e8, market_price_e8
from njord.core.money import bps_of, mul_e8
from njord.records import Order, OrderStatus, OrderType, Side


class SimRouter:
    """The matcher of backtest, shadow and paper. Idempotent on client order id, like the
    paper broker it serves: a second submit of a known id executes nothing."""

    def __init__(self, costs: CostModel, rules: SymbolRules) -> None:
        self.costs = costs
        self.rules = rules
        self._known: set[str] = set()
        self._final: dict[str, OrderStatus] = {}

    def _fill(self, order: Order, price_e8: int, ts_ms: int) -> Execution:
        qty = order.qty_e8 - order.filled_qty_e8
        if self.costs.fee_asset == "received" and order.side is Side.BUY:
            return Execution(
                client_order_id=order.client_order_id,
                ts_ms=ts_ms,
                qty_e8=qty,
                price_e8=price_e8,
                fee_e8=0,
                fee_qty_e8=bps_of(qty, self.costs.commission_bps),
            )
        return Execution(
            client_order_id=order.client_order_id,
            ts_ms=ts_ms,
            qty_e8=qty,
            price_e8=price_e8,
            fee_e8=self.costs.fee_e8(mul_e8(qty, price_e8)),
        )

    def submit(self, order: Order, bar: BarE8) -> list[Execution]:
        if order.client_order_id in self._known:
            return []
        self._known.add(order.client_order_id)
        if order.type is OrderType.MARKET:
            price = market_price_e8(bar.close_e8, order.side, self.costs, self.rules)
            return [self._fill(order, price, bar.ts_ms)]
        return []  # a limit rests from the next bar on

    def cancel(self, order: Order) -> OrderStatus:
        final = self._final.get(order.client_order_id)
        if final is not None:
            return final
        done = order.filled_qty_e8 >= order.qty_e8 > 0
        status = OrderStatus.FILLED if done else OrderStatus.CANCELED
        self._final[order.client_order_id] = status
        return status

    def on_bar(self, bar: BarE8, open_orders: list[Order]) -> list[Execution]:
        fills = []
        for order in open_orders:
            price = limit_fill_price_e8(order, bar.open_e8, bar.high_e8, bar.low_e8)
            if price is not None:
                fills.append(self._fill(order, price, bar.ts_ms))
        return fills
