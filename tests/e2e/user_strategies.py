"""Strategies for the end-to-end tests: outside the njord package, like a user's own."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import msgspec

from njord.core.strategy import Context, Strategy
from njord.records import Bar, OrderIntent, OrderType, Side


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


class RestsAndCancels(Strategy):
    """Rests a buy limit at half the close and cancels it on the next bar, over and over;
    once, it also cancels an id that was never an order."""

    def __init__(self, params: object) -> None:
        super().__init__(params)
        self.asked_bogus = False

    def on_bar(self, ctx: Context, symbol: str, bar: Bar) -> list[OrderIntent]:
        if ctx.state.open_orders:
            for order in ctx.state.open_orders:
                ctx.cancel(order.client_order_id)
            if not self.asked_bogus:
                ctx.cancel("nj-never-an-order")
                self.asked_bogus = True
            return []
        limit = (Decimal(bar.close) / 2).quantize(Decimal("0.01"))
        return [
            OrderIntent(
                symbol=symbol,
                side=Side.BUY,
                qty=Decimal("0.1"),
                type=OrderType.LIMIT,
                limit_price=limit,
                tag="rest",
            )
        ]


class Hourly(Strategy):
    """Declares 1m and 1h bars: logs every bar longer than a minute with what its history
    shows, and buys once, on the first of them."""

    timeframes = ("1m", "1h")
    history = 2

    def on_bar(self, ctx: Context, symbol: str, bar: Bar) -> list[OrderIntent]:
        if bar.timeframe == "1m":
            return []
        h = ctx.history(symbol, bar.timeframe, 2)
        ctx.log(
            f"{bar.timeframe} {bar.ts_ms} {bar.open} {bar.high} {bar.low} {bar.close} "
            f"{bar.volume} {bar.n_bars} {bar.complete} {len(h)} {h.close[-1]}"
        )
        if ctx.state.position_e8(symbol) or ctx.state.open_orders:
            return []
        return [OrderIntent(symbol=symbol, side=Side.BUY, qty=Decimal("0.01"), tag="hourly")]


class SevenMinutes(Hourly):
    """Declares a timeframe njord does not derive."""

    timeframes = ("1m", "7m")


class BuyThenSell(Strategy):
    """Buys 1 on its second bar and sells 1 on its fourth: the fill-timing fixture."""

    def __init__(self, params: object) -> None:
        super().__init__(params)
        self.seen = 0

    def on_bar(self, ctx: Context, symbol: str, bar: Bar) -> list[OrderIntent]:
        self.seen += 1
        side = {2: Side.BUY, 4: Side.SELL}.get(self.seen)
        return [] if side is None else [OrderIntent(symbol=symbol, side=side, qty=Decimal(1))]


class _ActsOnItsDb(Strategy):
    """Calls `act` with the db NJORD_TEST_HALT_DB names, from its first `on_bar` call, once
    per process: how a test steers a session from inside one of its phases."""

    def __init__(self, params: object) -> None:
        super().__init__(params)
        self.acted = False

    def on_bar(self, ctx: Context, symbol: str, bar: Bar) -> list[OrderIntent]:
        db = os.environ.get("NJORD_TEST_HALT_DB")
        if db and not self.acted:
            self.acted = True
            self.act(Path(db))
        return super().on_bar(ctx, symbol, bar)

    def act(self, db: Path) -> None:
        raise NotImplementedError


class HaltsDuringRebuild(_ActsOnItsDb, HoldLong):
    """HoldLong that runs `njord halt` on its db and waits for it: in a restarted session
    its first call comes while the rebuild feeds it the stored bars. The halt's exit code
    and wall time go to <db>.halt (the test reads them)."""

    def act(self, db: Path) -> None:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "njord", "halt", "--db", str(db), "--reason", "during rebuild"],
            capture_output=True,
            text=True,
            check=False,
        )
        took = time.monotonic() - started
        Path(f"{db}.halt").write_text(f"{done.returncode} {took:.3f}\n{done.stderr}")


class OneOrderParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    side: str = "BUY"
    type: str = "MARKET"
    qty: str = "0.001"
    limit: str = ""
    symbol: str = ""  # the bar's own when empty


class OneOrder(Strategy):
    """Asks for one order, as its params say, on its first bar: the venue-filter fixture."""

    Params = OneOrderParams

    def __init__(self, params: object) -> None:
        super().__init__(params)
        self.asked = False

    def on_bar(self, ctx: Context, symbol: str, bar: Bar) -> list[OrderIntent]:
        if self.asked:
            return []
        self.asked = True
        p = self.params
        assert isinstance(p, OneOrderParams)
        return [
            OrderIntent(
                symbol=p.symbol or symbol,
                side=Side(p.side),
                qty=Decimal(p.qty),
                type=OrderType(p.type),
                limit_price=Decimal(p.limit) if p.limit else None,
                tag="one",
            )
        ]


class RestsEveryBar(Strategy):
    """Rests a small buy limit far below the market on every bar and never cancels: the
    venue's open-order count fills up (MAX_NUM_ORDERS)."""

    def on_bar(self, ctx: Context, symbol: str, bar: Bar) -> list[OrderIntent]:
        limit = (Decimal(bar.close) * Decimal("0.6")).quantize(Decimal("0.01"))
        qty = (Decimal(6) / limit).quantize(Decimal("0.00001"), rounding="ROUND_UP")
        return [
            OrderIntent(
                symbol=symbol,
                side=Side.BUY,
                qty=qty,
                type=OrderType.LIMIT,
                limit_price=limit,
                tag="rest",
            )
        ]


class Churns(Strategy):
    """Buys 0.001 when it holds nothing and sells all it holds otherwise: an order on every
    bar, in a session capped by `--tiny` to what the cap allows."""

    def on_bar(self, ctx: Context, symbol: str, bar: Bar) -> list[OrderIntent]:
        if ctx.state.open_orders:
            return []
        if ctx.state.holds(symbol):
            qty = ctx.state.position(symbol)
            return [OrderIntent(symbol=symbol, side=Side.SELL, qty=qty, tag="churn")]
        return [OrderIntent(symbol=symbol, side=Side.BUY, qty=Decimal("0.001"), tag="churn")]


class HaltsBetweenBars(_ActsOnItsDb, EveryBar):
    """EveryBar that posts a halt to its db and, half a second later, a resume, on a thread
    of its own: in a slowed session (--pace-ms) both land while the loop waits for the next
    bar, applied one wait apart."""

    def act(self, db: Path) -> None:
        threading.Thread(target=_halt_then_resume, args=(db,)).start()


def _halt_then_resume(db: Path) -> None:
    from njord.store import controls

    controls.post(db, "halt", "between", by="test")
    time.sleep(0.5)
    controls.post(db, "resume", "between", by="test")


class EachSymbolCross(Strategy):
    """A 5/15 crossover per symbol, sized in quote (about 1,000 a trade, whatever the cash):
    enters with a resting limit just under the close, exits at market. A symbol's trades
    depend on its own bars only, so a session of several symbols makes each one's trades
    exactly as a session of that symbol alone."""

    history = 16

    def __init__(self, params: object) -> None:
        super().__init__(params)
        self.above: dict[str, bool] = {}

    def on_bar(self, ctx: Context, symbol: str, bar: Bar) -> list[OrderIntent]:
        closes = ctx.history(symbol, bar.timeframe, 15).close
        if len(closes) < 15:
            return []
        above = bool(closes[-5:].mean() > closes.mean())
        crossed = self.above.get(symbol) not in (None, above)
        self.above[symbol] = above
        if not crossed:
            return []
        mine = [o for o in ctx.state.open_orders if o.symbol == symbol]
        for order in mine:
            ctx.cancel(order.client_order_id)
        held = ctx.state.position(symbol)
        if not above:
            if not held:
                return []
            return [OrderIntent(symbol=symbol, side=Side.SELL, qty=held, tag="exit")]
        if held or mine:
            return []
        limit = Decimal(str(round(bar.close * 0.9995, 2)))
        qty = (Decimal(1000) / limit).quantize(Decimal("0.00001"))
        return [
            OrderIntent(
                symbol=symbol,
                side=Side.BUY,
                qty=qty,
                type=OrderType.LIMIT,
                limit_price=limit,
                tag="enter",
            )
        ]


class RaisesAtBarParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    at: int = 100


class RaisesAtBar(Strategy):
    """Buys on its first bar, then raises at its `at`-th bar: the faulty sleeve."""

    Params = RaisesAtBarParams

    def __init__(self, params: object) -> None:
        super().__init__(params)
        self.bars = 0

    def on_bar(self, ctx: Context, symbol: str, bar: Bar) -> list[OrderIntent]:
        self.bars += 1
        if self.bars == self.params.at:
            raise RuntimeError(f"raised at bar {self.bars}")
        if self.bars > 1:
            return []
        return [OrderIntent(symbol=symbol, side=Side.BUY, qty=Decimal("0.1"), tag="first")]


class RaisesOnFill(Strategy):
    """Buys on every 30th bar and sells 15 bars later; raises in `on_fill` at its 5th fill."""

    def __init__(self, params: object) -> None:
        super().__init__(params)
        self.bars = 0
        self.fills = 0

    def on_bar(self, ctx: Context, symbol: str, bar: Bar) -> list[OrderIntent]:
        self.bars += 1
        if self.bars % 30 == 0:
            return [OrderIntent(symbol=symbol, side=Side.BUY, qty=Decimal("0.1"), tag="in")]
        if self.bars % 30 == 15 and ctx.state.holds(symbol):
            held = ctx.state.position(symbol)
            return [OrderIntent(symbol=symbol, side=Side.SELL, qty=held, tag="out")]
        return []

    def on_fill(self, ctx: Context, fill: object) -> None:
        self.fills += 1
        if self.fills == 5:
            raise RuntimeError("raised in on_fill")


class TradesTheOther(Strategy):
    """On each bar of its first symbol, buys a little of its second: an order on a symbol
    that may have no bar this minute."""

    def on_bar(self, ctx: Context, symbol: str, bar: Bar) -> list[OrderIntent]:
        if symbol != "BTCUSDT":
            return []
        return [OrderIntent(symbol="ETHUSDT", side=Side.BUY, qty=Decimal("0.01"), tag="other")]


class ScriptedParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    orders: str = ""  # "bar:SIDE:qty,…": a market order at each of its own bars named


class Scripted(Strategy):
    """Market orders at the bars its params name: the netting fixture."""

    Params = ScriptedParams

    def __init__(self, params: object) -> None:
        super().__init__(params)
        self.bars = 0
        self.heard: list[tuple[str, int, int]] = []

    def on_bar(self, ctx: Context, symbol: str, bar: Bar) -> list[OrderIntent]:
        self.bars += 1
        p = self.params
        assert isinstance(p, ScriptedParams)
        out = []
        for item in filter(None, p.orders.split(",")):
            at, side, qty = item.split(":")
            if int(at) == self.bars:
                out.append(OrderIntent(symbol=symbol, side=Side(side), qty=Decimal(qty), tag="s"))
        return out
