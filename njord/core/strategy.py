"""The strategy API (SPEC §6): what a strategy sees and what it may do."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

import msgspec

from njord.core.history import History
from njord.core.money import e8_to_decimal
from njord.errors import StrategyError
from njord.records import Bar, Fill, Order, OrderIntent

S = TypeVar("S", bound=msgspec.Struct)

# The envelope's layout. A change that old snapshots cannot be read under bumps it; a
# snapshot of another format is refused, and the rebuild then feeds the stored bars.
STATE_FORMAT = 1

# Sorted dicts and sets: the same state is the same bytes, whatever order it was built in.
_ENCODER = msgspec.msgpack.Encoder(order="deterministic")


class NoParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


class PortfolioView:
    """Read-only view of the session's book, in Decimals for the strategy's convenience."""

    def __init__(
        self,
        *,
        cash_e8: Callable[[], int],
        position_e8: Callable[[str], int],
        open_orders: Callable[[], list[Order]],
        lot_e8: Callable[[str], int] = lambda symbol: 1,
    ) -> None:
        self._cash = cash_e8
        self._position = position_e8
        self._open_orders = open_orders
        self._lot = lot_e8

    @property
    def cash(self) -> Decimal:
        return e8_to_decimal(self._cash())

    def position(self, symbol: str) -> Decimal:
        return e8_to_decimal(self._position(symbol))

    def position_e8(self, symbol: str) -> int:
        return self._position(symbol)

    def holds(self, symbol: str) -> bool:
        """A long position that can be sold: at least one lot step of the venue. Less is
        dust (a commission taken from a buy in the base asset leaves some), which no
        order can close, so a strategy that waits for it to be gone would wait forever."""
        return self._position(symbol) >= self._lot(symbol)

    @property
    def open_orders(self) -> list[Order]:
        return self._open_orders()


def _no_history(symbol: str, timeframe: str, n: int) -> History:
    raise ValueError("this context keeps no bar history")


class Context:
    def __init__(
        self,
        *,
        params: Any,
        state: PortfolioView,
        log: Callable[[str], None],
        history: Callable[[str, str, int], History] = _no_history,
    ) -> None:
        self.params = params
        self.state = state
        self.now_ms = 0
        self._log = log
        # `ctx.history(symbol, timeframe, n)`: the last n completed bars of a declared
        # timeframe as read-only numpy views (njord.core.history.History), oldest first,
        # this minute's last, fewer at the start. n is at most the strategy's `history`;
        # the views are valid during this call of `on_bar` only. An attribute, not a
        # method: it runs on every bar, and a wrapper call would cost a tenth of it.
        self.history = history
        # What `submit` and `cancel` gathered during this step, for the loop to take.
        self.intents_asked: list[OrderIntent] = []
        self.cancels_asked: list[str] = []

    @property
    def now_utc(self) -> datetime:
        return datetime.fromtimestamp(self.now_ms / 1000, tz=UTC)

    def submit(self, intent: OrderIntent) -> None:
        self.intents_asked.append(intent)

    def cancel(self, client_order_id: str) -> None:
        """Cancel one of `state.open_orders`. Cancels apply after `on_bar` returns and
        before that bar's new intents, so a cancel-and-replace frees its cash first; cancels
        asked in `on_fill` apply at the next bar. Cancels pass in every trading state."""
        self.cancels_asked.append(client_order_id)

    def log(self, msg: str) -> None:
        self._log(msg)

    # Most bars submit and cancel nothing: then the (empty) list itself is handed out, read
    # and dropped by the loop, and no new one is built.
    def take_submitted(self) -> list[OrderIntent]:
        taken = self.intents_asked
        if taken:
            self.intents_asked = []
        return taken

    def take_cancels(self) -> list[str]:
        taken = self.cancels_asked
        if taken:
            self.cancels_asked = []
        return taken


class StateEnvelope(
    msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True, tag="njord.strategy"
):
    """What `Strategy.encode_state` wraps a strategy's own state in: whose it is, under
    which params, so a snapshot never restores into another strategy or other params."""

    format: int
    strategy: str  # the class's qualified name
    params_sha256: bytes
    state: msgspec.Raw


class Strategy:
    """Base class. Subclasses set `Params` (a frozen msgspec Struct) and override hooks.

    `on_bar` returns intents (or submits them through `ctx.submit`); either way they go
    through risk, then the router. `ctx.cancel` cancels a resting order. Hooks must not
    read the clock or any random source: `ctx.now_ms` is the bar's time, in every mode.

    `on_bar` runs once per completed bar of each timeframe in `timeframes` (config
    `strategy.timeframes` overrides it), shortest first within a minute, `bar.timeframe`
    telling which; everything one minute asks for is decided in one step. `history` is
    how many bars of each of those timeframes `ctx.history` keeps (0: none); set it on the
    class, or on the instance when it depends on the params.
    """

    Params: ClassVar[type[msgspec.Struct]] = NoParams
    timeframes: ClassVar[tuple[str, ...]] = ("1m",)
    history: int = 0

    def __init__(self, params: Any) -> None:
        self.params = params

    def on_start(self, ctx: Context) -> None:
        return None

    def on_bar(self, ctx: Context, symbol: str, bar: Bar) -> list[OrderIntent]:
        return []

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        return None

    def on_stop(self, ctx: Context) -> None:
        return None

    def snapshot_state(self) -> bytes | None:
        """The strategy's own state (not the bars or the book: the session keeps those) as
        bytes, or None: no snapshot, and a rebuild feeds the strategy every stored bar.

        A strategy that keeps state across bars (running sums, recursive indicators,
        counters) and returns bytes must return the same bytes for the same state, and
        `restore_state` of them into a fresh instance with the same params must decide
        every later bar exactly as this one would. `encode_state` does the encoding."""
        return None

    def restore_state(self, data: bytes) -> None:
        """Undo `snapshot_state` on a fresh instance (built with the same params, before
        any bar). `decode_state` refuses bytes that are not this strategy's."""
        raise StrategyError(f"{type(self).__qualname__} keeps no state snapshots to restore")

    def encode_state(self, state: msgspec.Struct) -> bytes:
        """`state` (a msgspec Struct of the strategy's fields), wrapped with what
        `decode_state` checks: njord's snapshot format, the class and the params."""
        envelope = StateEnvelope(
            format=STATE_FORMAT,
            strategy=type(self).__qualname__,
            params_sha256=_params_sha256(self.params),
            state=msgspec.Raw(_ENCODER.encode(state)),
        )
        return _ENCODER.encode(envelope)

    def decode_state(self, data: bytes, state_type: type[S]) -> S:
        """The state `encode_state` wrapped, as a `state_type`; StrategyError when the
        bytes are not a snapshot of this class under these params."""
        name = type(self).__qualname__
        try:
            envelope = msgspec.msgpack.decode(data, type=StateEnvelope)
        except msgspec.DecodeError as e:
            raise StrategyError(f"not a njord strategy state snapshot for {name}: {e}") from e
        if envelope.format != STATE_FORMAT:
            raise StrategyError(
                f"{name} state snapshot has format {envelope.format}; "
                f"this njord reads format {STATE_FORMAT}"
            )
        if envelope.strategy != name:
            raise StrategyError(f"state snapshot of {envelope.strategy} cannot restore {name}")
        if envelope.params_sha256 != _params_sha256(self.params):
            raise StrategyError(f"{name} state snapshot was taken under other params")
        try:
            return msgspec.msgpack.decode(envelope.state, type=state_type)
        except msgspec.DecodeError as e:
            raise StrategyError(f"{name} state snapshot does not fit its state: {e}") from e


def _params_sha256(params: Any) -> bytes:
    return hashlib.sha256(_ENCODER.encode(params)).digest()
