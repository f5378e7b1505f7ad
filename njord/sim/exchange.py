"""The simulated venue: a replayed market, an order book of one account, balances.

Fills follow the same documented rules as the backtest matcher (njord/core/execution.py):
MARKET at the close of the last closed bar (± slippage), LIMIT from the next bar on, at
the limit or at the open when the bar opens through it. Commission is charged in the
quote asset (a simplification: Binance charges a buyer in the base asset).
"""

from __future__ import annotations

import itertools
import threading
import time
from bisect import bisect_right
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import msgspec

from njord.core.money import E8, bps_of, to_e8
from njord.core.time import MINUTE_MS
from njord.data.history import HistoryFeed


class ApiError(Exception):
    """An error answer: HTTP status, Binance code and message."""

    def __init__(self, status: int, code: int, msg: str, retry_after_s: float | None = None):
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg
        self.retry_after_s = retry_after_s


class Filters(msgspec.Struct, frozen=True, kw_only=True):
    tick: Decimal = Decimal("0.01")
    min_price: Decimal = Decimal("0.01")
    max_price: Decimal = Decimal("1000000")
    step: Decimal = Decimal("0.00001")
    min_qty: Decimal = Decimal("0.00001")
    max_qty: Decimal = Decimal("9000")
    market_max_qty: Decimal = Decimal("100")
    min_notional: Decimal = Decimal("5")


class Market:
    """The replayed bars and the market clock: accelerated (`speed`) or stepped."""

    def __init__(self, data: Path, *, symbol: str, speed: float, start_ms: int | None) -> None:
        feed = HistoryFeed(data, symbol=symbol, gaps="none")
        ts: list[int] = []
        rows: list[tuple[int, float, float, float, float, float]] = []
        for batch in feed.batches():
            ts += batch.ts_ms
            rows += zip(
                batch.ts_ms,
                batch.open,
                batch.high,
                batch.low,
                batch.close,
                batch.volume,
                strict=True,
            )
        if not rows:
            raise ApiError(500, -1000, f"no bars in {data}")
        self.symbol = symbol
        self.ts, self.rows = ts, rows
        self.speed = speed
        self.start_ms = start_ms if start_ms is not None else ts[0]
        self._wall0 = time.monotonic()
        self._stepped_ms = 0
        self.skew_ms = 0
        self.hidden: list[tuple[int, int, bool]] = []  # (from, to, permanently) outages

    def now_ms(self) -> int:
        elapsed = (time.monotonic() - self._wall0) * 1000 * self.speed
        return int(self.start_ms + elapsed + self._stepped_ms)

    def advance(self, minutes: float) -> int:
        self._stepped_ms += int(minutes * MINUTE_MS)
        return self.now_ms()

    def closed_count(self, now_ms: int) -> int:
        """How many bars have closed by `now_ms` (a bar closes a minute after it opens)."""
        return bisect_right(self.ts, now_ms - MINUTE_MS)

    def visible(self, now_ms: int) -> list[int]:
        """Indices of the bars a klines request may see now (outages hide some)."""
        count = self.closed_count(now_ms)
        out = []
        for i in range(count):
            t = self.ts[i]
            if any(a <= t < b and (forever or now_ms < b) for a, b, forever in self.hidden):
                continue
            out.append(i)
        return out


class SimOrder(msgspec.Struct, kw_only=True):
    order_id: int
    client_order_id: str
    side: str
    type: str
    qty: Decimal
    price: Decimal | None
    status: str
    time_ms: int
    placed_bar: int  # bars closed at placement: limits trade from the next one on
    executed: Decimal = Decimal(0)
    quote: Decimal = Decimal(0)
    parts_left: int = 1

    def view(self, symbol: str) -> dict[str, Any]:
        return {
            "symbol": symbol,
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": self.client_order_id,
            "price": _s(self.price or Decimal(0)),
            "origQty": _s(self.qty),
            "executedQty": _s(self.executed),
            "cummulativeQuoteQty": _s(self.quote),
            "status": self.status,
            "timeInForce": "GTC",
            "type": self.type,
            "side": self.side,
            "stopPrice": "0.00000000",
            "icebergQty": "0.00000000",
            "time": self.time_ms,
            "updateTime": self.time_ms,
            "isWorking": True,
            "workingTime": self.time_ms,
            "origQuoteOrderQty": "0.00000000",
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }


def _s(value: Decimal) -> str:
    return f"{value:.8f}"


class Exchange:
    """One account trading one symbol. Thread-safe: the HTTP server is threaded."""

    def __init__(
        self,
        market: Market,
        *,
        balances: dict[str, Decimal],
        commission_bps: Decimal = Decimal(10),
        filters: Filters | None = None,
        partial_parts: int = 1,
    ) -> None:
        self.market = market
        self.filters = filters or Filters()
        self.commission_bps = commission_bps
        self.free = dict(balances)
        self.locked: dict[str, Decimal] = {a: Decimal(0) for a in balances}
        self.base, self.quote = _assets(market.symbol)
        for asset in (self.base, self.quote):
            self.free.setdefault(asset, Decimal(0))
            self.locked.setdefault(asset, Decimal(0))
        self.orders: dict[int, SimOrder] = {}
        self.trades: list[dict[str, Any]] = []
        self.partial_parts = partial_parts
        self._ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self._matched = 0
        self.lock = threading.RLock()

    # -- the clock moves: match resting orders against each newly closed bar ------------

    def catch_up(self) -> None:
        closed = self.market.closed_count(self.market.now_ms())
        while self._matched < closed:
            self._match_bar(self._matched)
            self._matched += 1

    def _match_bar(self, i: int) -> None:
        ts, open_, high, low, _, _ = self.market.rows[i]
        for order in sorted(self.orders.values(), key=lambda o: o.order_id):
            if order.status not in ("NEW", "PARTIALLY_FILLED") or order.placed_bar > i:
                continue
            price = self._limit_price(
                order, Decimal(str(open_)), Decimal(str(high)), Decimal(str(low))
            )
            if price is not None:
                self._fill(order, price, ts + MINUTE_MS - 1)

    @staticmethod
    def _limit_price(o: SimOrder, open_: Decimal, high: Decimal, low: Decimal) -> Decimal | None:
        assert o.price is not None
        if o.side == "BUY":
            return min(o.price, open_) if low <= o.price else None
        return max(o.price, open_) if high >= o.price else None

    # -- orders --------------------------------------------------------------------------

    def place(self, p: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            self.catch_up()
            order = self._validated(p)
            self._reserve(order)
            self.orders[order.order_id] = order
            if order.type == "MARKET":
                closed = self.market.closed_count(self.market.now_ms())
                close = Decimal(str(self.market.rows[max(closed - 1, 0)][4]))
                self._fill(order, close, order.time_ms)
            return self._result(order, p.get("newOrderRespType", "FULL"))

    def _validated(self, p: dict[str, str]) -> SimOrder:
        for name in ("symbol", "side", "type"):
            if not p.get(name):
                raise ApiError(
                    400,
                    -1102,
                    f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.",
                )
        if p["symbol"] != self.market.symbol:
            raise ApiError(400, -1121, "Invalid symbol.")
        if p["side"] not in ("BUY", "SELL"):
            raise ApiError(400, -1117, "Invalid side.")
        if p["type"] not in ("MARKET", "LIMIT"):
            raise ApiError(400, -1116, "Invalid orderType.")
        qty = _decimal(p, "quantity")
        price = _decimal(p, "price") if p["type"] == "LIMIT" else None
        if p["type"] == "LIMIT" and p.get("timeInForce") != "GTC":
            raise ApiError(
                400,
                -1102,
                "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.",
            )
        self._check_filters(p["type"], qty, price)
        coid = p.get("newClientOrderId") or f"sim{next(self._ids):020d}"[:22]
        if any(
            o.client_order_id == coid and o.status in ("NEW", "PARTIALLY_FILLED")
            for o in self.orders.values()
        ):
            raise ApiError(400, -2010, "Duplicate order sent.")
        now = self.market.now_ms()
        return SimOrder(
            order_id=next(self._ids),
            client_order_id=coid,
            side=p["side"],
            type=p["type"],
            qty=qty,
            price=price,
            status="NEW",
            time_ms=now,
            placed_bar=self.market.closed_count(now),
            parts_left=self.partial_parts if p["type"] == "LIMIT" else 1,
        )

    def _check_filters(self, kind: str, qty: Decimal, price: Decimal | None) -> None:
        f = self.filters
        if price is not None and (price < f.min_price or price > f.max_price or price % f.tick):
            raise ApiError(400, -1013, "Filter failure: PRICE_FILTER")
        if qty < f.min_qty or qty > f.max_qty or qty % f.step:
            raise ApiError(400, -1013, "Filter failure: LOT_SIZE")
        if kind == "MARKET" and qty > f.market_max_qty:
            raise ApiError(400, -1013, "Filter failure: MARKET_LOT_SIZE")
        reference = price if price is not None else self._last_close()
        if qty * reference < f.min_notional:
            raise ApiError(400, -1013, "Filter failure: NOTIONAL")

    def _last_close(self) -> Decimal:
        closed = self.market.closed_count(self.market.now_ms())
        return Decimal(str(self.market.rows[max(closed - 1, 0)][4]))

    def _reserve(self, order: SimOrder) -> None:
        if order.side == "BUY":
            price = order.price if order.price is not None else self._last_close()
            need = order.qty * price * (1 + self.commission_bps / 10_000)
            asset = self.quote
        else:
            need, asset = order.qty, self.base
        if self.free[asset] < need:
            raise ApiError(400, -2010, "Account has insufficient balance for requested action.")
        if order.type == "LIMIT":
            self.free[asset] -= need
            self.locked[asset] += need

    def _fill(self, order: SimOrder, price: Decimal, ts_ms: int) -> None:
        left = order.qty - order.executed
        qty = (
            left
            if order.parts_left <= 1
            else (left / order.parts_left).quantize(self.filters.step, rounding=ROUND_DOWN)
        )
        order.parts_left -= 1
        notional = qty * price
        fee = Decimal(bps_of(to_e8(notional), self.commission_bps)) / E8
        if order.type == "LIMIT":
            self._release(order, qty)
        if order.side == "BUY":
            self.free[self.base] += qty
            self.free[self.quote] -= notional + fee
        else:
            self.free[self.base] -= qty
            self.free[self.quote] += notional - fee
        order.executed += qty
        order.quote += notional
        order.status = "FILLED" if order.executed >= order.qty else "PARTIALLY_FILLED"
        self.trades.append(
            {
                "symbol": self.market.symbol,
                "id": next(self._trade_ids),
                "orderId": order.order_id,
                "orderListId": -1,
                "price": _s(price),
                "qty": _s(qty),
                "quoteQty": _s(notional),
                "commission": _s(fee),
                "commissionAsset": self.quote,
                "time": ts_ms,
                "isBuyer": order.side == "BUY",
                "isMaker": order.type == "LIMIT",
                "isBestMatch": True,
            }
        )

    def _release(self, order: SimOrder, qty: Decimal) -> None:
        assert order.price is not None
        if order.side == "BUY":
            amount = qty * order.price * (1 + self.commission_bps / 10_000)
            asset = self.quote
        else:
            amount, asset = qty, self.base
        self.locked[asset] -= amount
        self.free[asset] += amount

    def _result(self, order: SimOrder, kind: str) -> dict[str, Any]:
        ack = {
            "symbol": self.market.symbol,
            "orderId": order.order_id,
            "orderListId": -1,
            "clientOrderId": order.client_order_id,
            "transactTime": order.time_ms,
        }
        if kind == "ACK":
            return ack
        view = order.view(self.market.symbol)
        result = {
            **ack,
            **{
                k: view[k]
                for k in (
                    "price",
                    "origQty",
                    "executedQty",
                    "cummulativeQuoteQty",
                    "status",
                    "timeInForce",
                    "type",
                    "side",
                    "workingTime",
                    "selfTradePreventionMode",
                )
            },
            "origQuoteOrderQty": "0.00000000",
        }
        if kind == "FULL":
            result["fills"] = [
                {
                    "price": t["price"],
                    "qty": t["qty"],
                    "commission": t["commission"],
                    "commissionAsset": t["commissionAsset"],
                    "tradeId": t["id"],
                }
                for t in self.trades
                if t["orderId"] == order.order_id
            ]
        return result

    def find(self, p: dict[str, str]) -> SimOrder:
        if p.get("symbol") != self.market.symbol:
            raise ApiError(400, -1121, "Invalid symbol.")
        if "orderId" in p:
            order = self.orders.get(int(p["orderId"]))
            if order and p.get("origClientOrderId", order.client_order_id) != order.client_order_id:
                raise ApiError(400, -2039, "Client order ID is not correct for this order ID.")
        elif "origClientOrderId" in p:
            matches = [
                o for o in self.orders.values() if o.client_order_id == p["origClientOrderId"]
            ]
            order = max(matches, key=lambda o: o.order_id) if matches else None
        else:
            raise ApiError(
                400,
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        if order is None:
            raise ApiError(400, -2013, "Order does not exist.")
        return order

    def query(self, p: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            self.catch_up()
            return self.find(p).view(self.market.symbol)

    def cancel(self, p: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            self.catch_up()
            try:
                order = self.find(p)
            except ApiError as e:
                if e.code != -2013:
                    raise
                raise ApiError(400, -2011, "Unknown order sent.") from None
            if order.status not in ("NEW", "PARTIALLY_FILLED"):
                raise ApiError(400, -2011, "Unknown order sent.")
            self._release(order, order.qty - order.executed)
            order.status = "CANCELED"
            view = order.view(self.market.symbol)
            return {
                **view,
                "origClientOrderId": order.client_order_id,
                "clientOrderId": p.get("newClientOrderId", f"cancel{order.order_id}"),
                "transactTime": self.market.now_ms(),
            }

    def open_orders(self) -> list[dict[str, Any]]:
        with self.lock:
            self.catch_up()
            return [
                o.view(self.market.symbol)
                for o in sorted(self.orders.values(), key=lambda o: o.order_id)
                if o.status in ("NEW", "PARTIALLY_FILLED")
            ]

    def account(self) -> dict[str, Any]:
        with self.lock:
            self.catch_up()
            balances = [
                {"asset": a, "free": _s(self.free[a]), "locked": _s(self.locked[a])}
                for a in sorted(self.free)
            ]
        return {
            "makerCommission": int(self.commission_bps),
            "takerCommission": int(self.commission_bps),
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                k: _s(self.commission_bps / 10_000) for k in ("maker", "taker", "buyer", "seller")
            },
            "canTrade": True,
            "canWithdraw": False,
            "canDeposit": False,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": self.market.now_ms(),
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
            "uid": 1,
        }

    def my_trades(self, p: dict[str, str]) -> list[dict[str, Any]]:
        if p.get("symbol") != self.market.symbol:
            raise ApiError(400, -1121, "Invalid symbol.")
        with self.lock:
            self.catch_up()
            out = [
                t
                for t in self.trades
                if ("orderId" not in p or t["orderId"] == int(p["orderId"]))
                and t["id"] >= int(p.get("fromId", 0))
                and t["time"] >= int(p.get("startTime", 0))
                and t["time"] <= int(p.get("endTime", 2**62))
            ]
        return out[: min(int(p.get("limit", 500)), 1000)]


def _assets(symbol: str) -> tuple[str, str]:
    for quote in ("USDT", "USDC", "BUSD", "BTC", "ETH", "BNB"):
        if symbol.endswith(quote) and symbol != quote:
            return symbol[: -len(quote)], quote
    raise ApiError(400, -1121, "Invalid symbol.")


def _decimal(p: dict[str, str], name: str) -> Decimal:
    raw = p.get(name, "")
    if not raw:
        raise ApiError(
            400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
        )
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ApiError(
            400,
            -1100,
            f"Illegal characters found in parameter '{name}'; legal "
            "range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.",
        ) from None
    if not value.is_finite() or value <= 0:
        raise ApiError(400, -1100, f"Illegal characters found in parameter '{name}'.")
    return value
