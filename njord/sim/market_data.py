"""The public market-data endpoints: exchangeInfo, klines, ticker/price, ticker/bookTicker."""

from __future__ import annotations

import json
from typing import Any

from njord.sim import params
from njord.sim.errors import ApiError
from njord.sim.exchange import Exchange
from njord.sim.limits import ORDERS_LIMIT_1D, ORDERS_LIMIT_10S
from njord.sim.market import INTERVALS_MS, Market

# Binance's own -1100 legal range for `symbols` (a compact JSON array of names).
SYMBOLS = '^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$'


def selected(ex: Exchange, p: dict[str, str]) -> list[Market] | None:
    """The markets `symbol` or `symbols` name (None: neither given); -1121 for a stranger."""
    if "symbol" in p:
        return [ex.market(p)]
    if "symbols" not in p:
        return None
    try:
        names = json.loads(params.text(p, "symbols"))
    except ValueError:
        names = None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise params.illegal("symbols", SYMBOLS)
    return [ex.market({"symbol": n}) for n in names]


def klines(ex: Exchange, p: dict[str, str]) -> list[list[Any]]:
    market = ex.market(p)
    interval = params.text(p, "interval")
    if interval not in INTERVALS_MS:
        raise ApiError(400, -1120, "Invalid interval.")
    limit = params.integer_or(p, "limit", 500)
    start, end = params.integer(p, "startTime"), params.integer(p, "endTime")
    if not 1 <= limit <= 1000:
        raise ApiError(400, -1130, "Data sent for parameter 'limit' is not valid.")
    return market.klines(
        INTERVALS_MS[interval], ex.clock.now_ms(), start=start, end=end, limit=limit
    )


def tickers(ex: Exchange, p: dict[str, str], *, book: bool) -> Any:
    """Prices from the latest closed bar: the close is both the last price and the quote on
    either side of the book (the simulator fills market orders there, both ways)."""
    chosen = selected(ex, p)
    now = ex.clock.now_ms()
    out = []
    for market in chosen if chosen is not None else list(ex.markets.values()):
        price = f"{market.last_close(now):.8f}"
        if book:
            out.append(
                {
                    "symbol": market.symbol,
                    "bidPrice": price,
                    "bidQty": "1.00000000",
                    "askPrice": price,
                    "askQty": "1.00000000",
                }
            )
        else:
            out.append({"symbol": market.symbol, "price": price})
    return out[0] if "symbol" in p else out


def exchange_info(
    ex: Exchange, p: dict[str, str], *, server_time_ms: int, weight_limit: int
) -> dict[str, Any]:
    chosen = selected(ex, p)
    return {
        "timezone": "UTC",
        "serverTime": server_time_ms,
        "rateLimits": [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": weight_limit,
            },
            {
                "rateLimitType": "ORDERS",
                "interval": "SECOND",
                "intervalNum": 10,
                "limit": ORDERS_LIMIT_10S,
            },
            {
                "rateLimitType": "ORDERS",
                "interval": "DAY",
                "intervalNum": 1,
                "limit": ORDERS_LIMIT_1D,
            },
            {
                "rateLimitType": "RAW_REQUESTS",
                "interval": "MINUTE",
                "intervalNum": 5,
                "limit": 61000,
            },
        ],
        "exchangeFilters": [],
        "symbols": [
            _symbol(m) for m in (chosen if chosen is not None else list(ex.markets.values()))
        ],
    }


def _symbol(market: Market) -> dict[str, Any]:
    f = market.filters
    return {
        "symbol": market.symbol,
        "status": "TRADING",
        "baseAsset": market.base,
        "baseAssetPrecision": 8,
        "quoteAsset": market.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
        "icebergAllowed": False,
        "ocoAllowed": False,
        "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": False,
        "amendAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": f"{f.min_price:.8f}",
                "maxPrice": f"{f.max_price:.8f}",
                "tickSize": f"{f.tick:.8f}",
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": f"{f.min_qty:.8f}",
                "maxQty": f"{f.max_qty:.8f}",
                "stepSize": f"{f.step:.8f}",
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": "0.00000000",
                "maxQty": f"{f.market_max_qty:.8f}",
                "stepSize": "0.00000000",
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": f"{f.min_notional:.8f}",
                "applyMinToMarket": True,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": f.max_num_orders},
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }
