"""The simulated venue: one account trading the replayed symbols, an order book per symbol.

Matching follows the backtest's documented rules (docs/execution.md) where they apply: a
MARKET order, and a LIMIT order that is marketable on arrival, fill at once as taker at the
latest closed bar's close; a resting LIMIT fills as maker from the next bar on, at the
limit or at the open when the bar opens through it. Commission is charged in the asset
received, as Binance charges by default: BTC on a BTCUSDT buy, USDT on a sell.
"""

from __future__ import annotations

import itertools
import secrets
import threading
from decimal import Decimal
from typing import Any

import msgspec

from njord.sim import params
from njord.sim.errors import ApiError
from njord.sim.market import Market, MarketClock, venue_now_ms

OPEN = ("NEW", "PARTIALLY_FILLED")
TIME_IN_FORCE = ("GTC", "IOC", "FOK")
COMMISSION_PLACES = Decimal("0.00000001")
# Binance's generated ids look like `6gCrw2kRUAF9CvJDGP16IP`: 22 letters and digits.
ID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class SimOrder(msgspec.Struct, kw_only=True):
    order_id: int
    symbol: str
    client_order_id: str
    side: str
    type: str
    time_in_force: str
    qty: Decimal
    price: Decimal | None
    quote_qty: Decimal  # origQuoteOrderQty: what a quoteOrderQty MARKET asked to spend
    status: str
    time_ms: int
    update_ms: int
    placed_bar: int  # bars closed at placement: a resting limit trades from the next one on
    executed: Decimal = Decimal(0)
    quote: Decimal = Decimal(0)
    parts_left: int = 1

    def view(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": self.client_order_id,
            "price": _s(self.price or Decimal(0)),
            "origQty": _s(self.qty),
            "executedQty": _s(self.executed),
            "cummulativeQuoteQty": _s(self.quote),
            "status": self.status,
            "timeInForce": self.time_in_force,
            "type": self.type,
            "side": self.side,
            "stopPrice": _s(Decimal(0)),
            "icebergQty": _s(Decimal(0)),
            "time": self.time_ms,
            "updateTime": self.update_ms,
            "isWorking": True,
            "workingTime": self.time_ms,
            "origQuoteOrderQty": _s(self.quote_qty),
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }


def _s(value: Decimal) -> str:
    return f"{value:.8f}"


class Exchange:
    """One account, several symbols. Thread-safe: the HTTP server is threaded."""

    def __init__(
        self,
        markets: list[Market],
        clock: MarketClock,
        *,
        balances: dict[str, Decimal],
        commission_bps: Decimal = Decimal(10),
        partial_parts: int = 1,
    ) -> None:
        self.markets = {m.symbol: m for m in markets}
        self.clock = clock
        self.rate = commission_bps / 10_000
        self.commission_bps = commission_bps
        self.free = dict(balances)
        for market in markets:
            for asset in (market.base, market.quote):
                self.free.setdefault(asset, Decimal(0))
        self.locked = {asset: Decimal(0) for asset in self.free}
        self.orders: dict[int, SimOrder] = {}
        self.trades: list[dict[str, Any]] = []
        self.partial_parts = partial_parts
        self._order_ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self._matched = dict.fromkeys(self.markets, 0)
        self.lock = threading.RLock()

    def market(self, p: dict[str, str]) -> Market:
        market = self.markets.get(params.text(p, "symbol"))
        if market is None:
            raise ApiError(400, -1121, "Invalid symbol.")
        return market

    # -- the market clock moves: match resting orders against each newly closed bar -----

    def catch_up(self) -> None:
        now = self.clock.now_ms()
        for symbol, market in self.markets.items():
            closed = market.closed_count(now)
            while self._matched[symbol] < closed:
                self._match_bar(market, self._matched[symbol])
                self._matched[symbol] += 1

    def _match_bar(self, market: Market, i: int) -> None:
        _, open_, high, low, _, _ = market.rows[i]
        for order in sorted(self.orders.values(), key=lambda o: o.order_id):
            if order.symbol != market.symbol or order.status not in OPEN or order.placed_bar > i:
                continue
            price = _resting_price(
                order, Decimal(str(open_)), Decimal(str(high)), Decimal(str(low))
            )
            if price is not None:
                self._fill(order, price, maker=True)

    # -- orders --------------------------------------------------------------------------

    def place(self, p: dict[str, str], *, test: bool = False) -> dict[str, Any]:
        with self.lock:
            self.catch_up()
            order = self._validated(p)
            if test:
                return {}
            market = self.markets[order.symbol]
            reference = market.last_close(self.clock.now_ms())
            takes = order.type == "MARKET" or _crosses(order, reference)
            if order.type == "LIMIT_MAKER" and takes:
                raise ApiError(400, -2010, "Order would immediately match and take.")
            self._hold(order, reference, market)
            order.order_id = next(self._order_ids)
            self.orders[order.order_id] = order
            if takes:
                self._fill(order, reference, maker=False)
            if order.status in OPEN and order.time_in_force in ("IOC", "FOK"):
                self._release(order, order.qty - order.executed)
                order.status = "EXPIRED"
            default = "FULL" if order.type in ("MARKET", "LIMIT") else "ACK"
            return self._result(order, p.get("newOrderRespType") or default)

    def _validated(self, p: dict[str, str]) -> SimOrder:
        market = self.market(p)
        side, kind = params.text(p, "side"), params.text(p, "type")
        if side not in ("BUY", "SELL"):
            raise ApiError(400, -1117, "Invalid side.")
        if kind not in ("MARKET", "LIMIT", "LIMIT_MAKER"):
            raise ApiError(400, -1116, "Invalid orderType.")
        tif = p.get("timeInForce")
        if tif is not None and tif not in TIME_IN_FORCE:
            raise ApiError(400, -1115, "Invalid timeInForce.")
        if kind == "LIMIT" and tif is None:
            raise params.mandatory("timeInForce")
        if kind != "LIMIT" and tif is not None:
            raise params.not_required("timeInForce")
        qty, quote_qty = params.decimal(p, "quantity"), params.decimal(p, "quoteOrderQty")
        price = params.decimal(p, "price")
        coid = params.new_client_order_id(p) or _generated_id()
        if kind == "MARKET":
            qty = self._market_qty(market, qty, quote_qty)
            if price is not None:
                raise params.not_required("price")
        else:
            if quote_qty is not None:
                raise params.not_required("quoteOrderQty")
            if qty is None:
                raise params.mandatory("quantity")
            if price is None:
                raise params.mandatory("price")
        self._check_filters(market, kind, qty, price)
        if any(o.client_order_id == coid and o.status in OPEN for o in self.orders.values()):
            raise ApiError(400, -2010, "Duplicate order sent.")
        now, market_now = venue_now_ms(), self.clock.now_ms()
        return SimOrder(
            order_id=0,  # numbered once the engine accepts it
            symbol=market.symbol,
            client_order_id=coid,
            side=side,
            type=kind,
            time_in_force=tif or "GTC",
            qty=qty,
            price=price,
            quote_qty=quote_qty or Decimal(0),
            status="NEW",
            time_ms=now,
            update_ms=now,
            placed_bar=market.closed_count(market_now),
            parts_left=self.partial_parts,
        )

    def _market_qty(self, market: Market, qty: Decimal | None, quote: Decimal | None) -> Decimal:
        """A MARKET order's base quantity; from `quoteOrderQty`, the LOT_SIZE-valid quantity
        whose notional comes closest to it without going over."""
        if qty is None and quote is None:
            raise params.either("quantity", "quoteOrderQty")
        if qty is not None and quote is not None:
            raise params.not_required("quoteOrderQty")
        if qty is not None:
            return qty
        assert quote is not None
        reference = market.last_close(self.clock.now_ms())
        return _floor(quote / reference, market.filters.step)

    def _check_filters(
        self, market: Market, kind: str, qty: Decimal, price: Decimal | None
    ) -> None:
        f = market.filters
        if price is not None and (price < f.min_price or price > f.max_price or price % f.tick):
            raise ApiError(400, -1013, "Filter failure: PRICE_FILTER")
        if qty < f.min_qty or qty > f.max_qty or qty % f.step:
            raise ApiError(400, -1013, "Filter failure: LOT_SIZE")
        if kind == "MARKET" and qty > f.market_max_qty:
            raise ApiError(400, -1013, "Filter failure: MARKET_LOT_SIZE")
        reference = price if price is not None else market.last_close(self.clock.now_ms())
        if qty * reference < f.min_notional:
            raise ApiError(400, -1013, "Filter failure: NOTIONAL")
        held = sum(
            1 for o in self.orders.values() if o.symbol == market.symbol and o.status in OPEN
        )
        if held >= f.max_num_orders:
            raise ApiError(400, -1013, "Filter failure: MAX_NUM_ORDERS")

    def _hold(self, order: SimOrder, reference: Decimal, market: Market) -> None:
        """Funds an order needs: qty x price of the quote for a buy (the commission is taken
        on fill, from what is received), the quantity of the base for a sell."""
        if order.side == "BUY":
            asset, need = market.quote, order.qty * (order.price or reference)
        else:
            asset, need = market.base, order.qty
        if self.free[asset] < need:
            raise ApiError(400, -2010, "Account has insufficient balance for requested action.")
        self.free[asset] -= need
        self.locked[asset] += need

    def _held(self, order: SimOrder, qty: Decimal, fill_price: Decimal) -> Decimal:
        """What `qty` of this order holds: at the limit, or at the fill price when taking."""
        return qty * (order.price or fill_price) if order.side == "BUY" else qty

    def _fill(self, order: SimOrder, price: Decimal, *, maker: bool) -> None:
        market = self.markets[order.symbol]
        left = order.qty - order.executed
        parts = order.parts_left if maker else 1
        qty = left if parts <= 1 else _floor(left / parts, market.filters.step)
        order.parts_left -= 1 if maker else 0
        notional = qty * price
        paid, got = (
            (market.quote, market.base) if order.side == "BUY" else (market.base, market.quote)
        )
        held = self._held(order, qty, price)
        spent = notional if order.side == "BUY" else qty
        received = qty if order.side == "BUY" else notional
        fee = (received * self.rate).quantize(COMMISSION_PLACES)
        self.locked[paid] -= held
        self.free[paid] += held - spent
        self.free[got] += received - fee
        order.executed += qty
        order.quote += notional
        order.status = "FILLED" if order.executed >= order.qty else "PARTIALLY_FILLED"
        order.update_ms = venue_now_ms()
        self.trades.append(
            {
                "symbol": order.symbol,
                "id": next(self._trade_ids),
                "orderId": order.order_id,
                "orderListId": -1,
                "price": _s(price),
                "qty": _s(qty),
                "quoteQty": _s(notional),
                "commission": _s(fee),
                "commissionAsset": got,
                "time": order.update_ms,
                "isBuyer": order.side == "BUY",
                "isMaker": maker,
                "isBestMatch": True,
            }
        )

    def _release(self, order: SimOrder, qty: Decimal) -> None:
        market = self.markets[order.symbol]
        asset = market.quote if order.side == "BUY" else market.base
        amount = self._held(order, qty, Decimal(0))
        self.locked[asset] -= amount
        self.free[asset] += amount
        order.update_ms = venue_now_ms()

    def _result(self, order: SimOrder, kind: str) -> dict[str, Any]:
        view = order.view()
        ack = {
            "symbol": order.symbol,
            "orderId": order.order_id,
            "orderListId": -1,
            "clientOrderId": order.client_order_id,
            "transactTime": order.time_ms,
        }
        if kind == "ACK":
            return ack
        fields = (
            "price",
            "origQty",
            "executedQty",
            "origQuoteOrderQty",
            "cummulativeQuoteQty",
            "status",
            "timeInForce",
            "type",
            "side",
            "workingTime",
            "selfTradePreventionMode",
        )
        result = {**ack, **{k: view[k] for k in fields}}
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
        market = self.market(p)
        order_id = params.integer(p, "orderId")
        if order_id is not None:
            order = self.orders.get(order_id)
            if order and p.get("origClientOrderId", order.client_order_id) != order.client_order_id:
                raise ApiError(400, -2039, "Client order ID is not correct for this order ID.")
        elif p.get("origClientOrderId"):
            matches = [
                o for o in self.orders.values() if o.client_order_id == p["origClientOrderId"]
            ]
            order = max(matches, key=lambda o: o.order_id) if matches else None
        else:
            raise params.either("origClientOrderId", "orderId")
        if order is None or order.symbol != market.symbol:
            raise ApiError(400, -2013, "Order does not exist.")
        return order

    def query(self, p: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            self.catch_up()
            return self.find(p).view()

    def cancel(self, p: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            self.catch_up()
            try:
                order = self.find(p)
            except ApiError as e:
                if e.code != -2013:
                    raise
                raise ApiError(400, -2011, "Unknown order sent.") from None
            if order.status not in OPEN:
                raise ApiError(400, -2011, "Unknown order sent.")
            return self._canceled(order, p.get("newClientOrderId") or _generated_id())

    def _canceled(self, order: SimOrder, cancel_id: str) -> dict[str, Any]:
        self._release(order, order.qty - order.executed)
        order.status = "CANCELED"
        return {
            **order.view(),
            "origClientOrderId": order.client_order_id,
            "clientOrderId": cancel_id,
            "transactTime": order.update_ms,
        }

    def cancel_all(self, p: dict[str, str]) -> list[dict[str, Any]]:
        with self.lock:
            self.catch_up()
            symbol = self.market(p).symbol
            open_orders = [o for o in self._open() if o.symbol == symbol]
            if not open_orders:
                raise ApiError(400, -2011, "Unknown order sent.")
            return [self._canceled(o, _generated_id()) for o in open_orders]

    def _open(self) -> list[SimOrder]:
        return [
            o for o in sorted(self.orders.values(), key=lambda o: o.order_id) if o.status in OPEN
        ]

    def open_orders(self, p: dict[str, str]) -> list[dict[str, Any]]:
        with self.lock:
            self.catch_up()
            symbol = self.market(p).symbol if "symbol" in p else None
            return [o.view() for o in self._open() if symbol in (None, o.symbol)]

    def account(self, p: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            self.catch_up()
            balances = [
                {"asset": a, "free": _s(self.free[a]), "locked": _s(self.locked[a])}
                for a in sorted(self.free)
                if p.get("omitZeroBalances") != "true" or self.free[a] or self.locked[a]
            ]
        bps = int(self.commission_bps)
        return {
            "makerCommission": bps,
            "takerCommission": bps,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": _s(self.rate),
                "taker": _s(self.rate),
                "buyer": _s(Decimal(0)),
                "seller": _s(Decimal(0)),
            },
            "canTrade": True,
            "canWithdraw": False,
            "canDeposit": False,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": venue_now_ms(),
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
            "uid": 1,
        }

    def my_trades(self, p: dict[str, str]) -> list[dict[str, Any]]:
        symbol = self.market(p).symbol
        order_id = params.integer(p, "orderId")
        from_id = params.integer_or(p, "fromId", 0)
        start = params.integer_or(p, "startTime", 0)
        end = params.integer_or(p, "endTime", 2**62)
        limit = params.integer_or(p, "limit", 500)
        with self.lock:
            self.catch_up()
            out = [
                t
                for t in self.trades
                if t["symbol"] == symbol
                and order_id in (None, t["orderId"])
                and t["id"] >= from_id
                and start <= t["time"] <= end
            ]
        return out[: min(limit, 1000)]


def _crosses(order: SimOrder, reference: Decimal) -> bool:
    """A limit marketable on arrival: a buy at or above the market, a sell at or below."""
    assert order.price is not None
    return order.price >= reference if order.side == "BUY" else order.price <= reference


def _resting_price(o: SimOrder, open_: Decimal, high: Decimal, low: Decimal) -> Decimal | None:
    assert o.price is not None
    if o.side == "BUY":
        return min(o.price, open_) if low <= o.price else None
    return max(o.price, open_) if high >= o.price else None


def _floor(value: Decimal, step: Decimal) -> Decimal:
    """Down to a multiple of `step` (quantize would keep `step`'s exponent, not its size)."""
    return (value // step) * step


def _generated_id() -> str:
    """Unique like Binance's: 22 random letters and digits (no counter to cut off)."""
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(22))
