"""Strategies outside the njord package that raise on their 101st bar (or never start, or
when told to)."""

from __future__ import annotations

import os
from decimal import Decimal

import msgspec

from njord.core.strategy import Context, Strategy
from njord.errors import ConfigError
from njord.records import Bar, OrderIntent, Side


class RaiseAt(Strategy):
    def __init__(self, params: object) -> None:
        super().__init__(params)
        self.seen = 0

    def on_bar(self, ctx: Context, symbol: str, bar: Bar) -> list[OrderIntent]:
        self.seen += 1
        if self.seen == 101:
            raise RuntimeError("boom")
        return []


class RaiseWhenTold(Strategy):
    """Raises on its 101st bar while NJORD_TEST_RAISE is set: a session that ran clean, whose
    re-run (`verify`) fails."""

    def __init__(self, params: object) -> None:
        super().__init__(params)
        self.seen = 0

    def on_bar(self, ctx: Context, symbol: str, bar: Bar) -> list[OrderIntent]:
        self.seen += 1
        if self.seen == 101 and os.environ.get("NJORD_TEST_RAISE"):
            raise RuntimeError("told to")
        return []


class RaiseInInit(Strategy):
    """Cannot start: its own constructor raises."""

    def __init__(self, params: object) -> None:
        super().__init__(params)
        raise RuntimeError("no model file")

    def on_bar(self, ctx: Context, symbol: str, bar: Bar) -> list[OrderIntent]:
        return []


class RefusesInInit(RaiseInInit):
    """Cannot start either, and says why with njord's own error for a config."""

    def __init__(self, params: object) -> None:
        Strategy.__init__(self, params)
        raise ConfigError("RefusesInInit needs a model file: set strategy.params.model")


_RAISED = False  # per process: the first session to reach its 101st bar fails, later ones not


class RaiseOnce(Strategy):
    """Trades a little on every bar; raises once, on its 101st bar, in a process: a
    transient fault, so a restarted session shows what the failure left behind."""

    def __init__(self, params: object) -> None:
        super().__init__(params)
        self.seen = 0

    def on_bar(self, ctx: Context, symbol: str, bar: Bar) -> list[OrderIntent]:
        global _RAISED
        self.seen += 1
        if self.seen == 101 and not _RAISED:
            _RAISED = True
            raise RuntimeError("transient boom")
        side = Side.SELL if ctx.state.position_e8(symbol) > 0 else Side.BUY
        return [OrderIntent(symbol=symbol, side=side, qty=Decimal("0.001"), tag="every_bar")]


class BoomParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    boom: int = 0


class RaiseWhen(Strategy):
    """Trades every 30th bar; raises on its 101st bar when its param `boom` is 1: a sweep
    over `boom=0,1,2` has one failing combination among good ones."""

    Params = BoomParams

    def __init__(self, params: BoomParams) -> None:
        super().__init__(params)
        self.boom = params.boom
        self.seen = 0

    def on_bar(self, ctx: Context, symbol: str, bar: Bar) -> list[OrderIntent]:
        self.seen += 1
        if self.seen == 101 and self.boom == 1:
            raise RuntimeError("boom")
        if self.seen % 30:
            return []
        side = Side.SELL if ctx.state.position_e8(symbol) > 0 else Side.BUY
        return [OrderIntent(symbol=symbol, side=side, qty=Decimal("0.001"), tag="every_bar")]
