"""RSI + TEMA + Bollinger bands: buy an oversold dip below the lower band once the TEMA
turns up; sell when RSI is overbought or the close reaches the upper band."""

from __future__ import annotations

import msgspec

from njord.core.strategy import Context, Strategy
from njord.indicators import RsiSnapshot, RsiState, TemaSnapshot, TemaState, bollinger
from njord.records import Bar, OrderIntent
from njord.strategies.sizing import enter_long, exit_long


class RsiTemaBbParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    rsi_period: int = 14
    tema_period: int = 9
    bb_period: int = 20
    # 1.5 bands and an RSI under 35: with 2.0 and 30 the three conditions never meet on
    # the sample month, and a sample that never trades demonstrates nothing.
    bb_k: float = 1.5
    oversold: float = 35.0
    overbought: float = 70.0
    fraction: float = 0.95

    def __post_init__(self) -> None:
        for name in ("rsi_period", "tema_period", "bb_period"):
            if getattr(self, name) < 2:
                raise ValueError(f"{name} must be >= 2, got {getattr(self, name)}")
        if not 0 <= self.oversold < self.overbought <= 100:
            raise ValueError(
                f"need 0 <= oversold < overbought <= 100, got {self.oversold}, {self.overbought}"
            )


class RsiTemaBbState(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    rsi: RsiSnapshot
    tema: TemaSnapshot
    prev_tema: float | None


class RsiTemaBollinger(Strategy):
    Params = RsiTemaBbParams

    def __init__(self, params: RsiTemaBbParams) -> None:
        super().__init__(params)
        self.history = params.bb_period
        # RSI and TEMA are recursive from the first bar on: fed bar by bar, they give the
        # same value whatever the history length.
        self._rsi = RsiState(params.rsi_period)
        self._tema = TemaState(params.tema_period)
        self._prev_tema: float | None = None

    def on_bar(self, ctx: Context, symbol: str, bar: Bar) -> list[OrderIntent]:
        p = self.params
        rsi = self._rsi.update(bar.close)
        tema, prev_tema = self._tema.update(bar.close), self._prev_tema
        self._prev_tema = tema
        closes = ctx.history(symbol, bar.timeframe, p.bb_period).close
        if rsi is None or prev_tema is None or len(closes) < p.bb_period:
            return []
        bands = bollinger(closes, p.bb_period, p.bb_k)
        lower, upper = float(bands[0][-1]), float(bands[2][-1])
        if ctx.state.holds(symbol):
            if rsi > p.overbought or bar.close >= upper:
                return exit_long(ctx, symbol, "rsi_bb_exit")
            return []
        if rsi < p.oversold and bar.close < lower and tema > prev_tema:
            return [enter_long(ctx, symbol, bar.close, p.fraction, "rsi_bb_entry")]
        return []

    def snapshot_state(self) -> bytes:
        state = RsiTemaBbState(self._rsi.snapshot(), self._tema.snapshot(), self._prev_tema)
        return self.encode_state(state)

    def restore_state(self, data: bytes) -> None:
        state = self.decode_state(data, RsiTemaBbState)
        self._rsi.restore(state.rsi)
        self._tema.restore(state.tema)
        self._prev_tema = state.prev_tema
