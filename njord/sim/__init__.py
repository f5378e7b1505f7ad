"""The loopback exchange simulator (SPEC §12)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path

from njord.errors import ConfigError
from njord.paths import check_input
from njord.sim import faults as fault_config
from njord.sim.exchange import Exchange
from njord.sim.faults import FaultConfig, FaultPlan
from njord.sim.market import Market, MarketClock, split_symbol
from njord.sim.server import SimServer, SimState, new_credentials


def parse_balances(items: tuple[str, ...] | list[str]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for item in items:
        asset, sep, amount = item.partition("=")
        try:
            value = Decimal(amount)
        except InvalidOperation:
            value = Decimal(-1)
        if not sep or not asset.isalnum() or value < 0:
            raise ConfigError(f"--balance takes ASSET=AMOUNT with AMOUNT >= 0, got {item!r}")
        out[asset.upper()] = value
    return out or {"USDT": Decimal(10_000)}


def parse_data(items: tuple[str, ...] | list[str], symbol: str) -> dict[str, Path]:
    """`--data [SYMBOL=]PATH`, once per symbol; a bare PATH is `symbol`'s."""
    out: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.rpartition("=")
        name = name.upper() if sep else symbol
        if name in out:
            raise ConfigError(f"--data gives {name} twice; give each symbol once (SYMBOL=PATH)")
        out[name] = check_input(Path(path), kind=None, name="--data")
    return out


def markets(
    data: Mapping[str, Path], *, first_ms: int | None = None, end_ms: int | None = None
) -> list[Market]:
    out = []
    for symbol, path in data.items():
        try:
            base, quote = split_symbol(symbol)
        except ValueError as e:
            raise ConfigError(f"--data {symbol}=...: {e}") from None
        out.append(
            Market(path, symbol=symbol, base=base, quote=quote, start_ms=first_ms, end_ms=end_ms)
        )
    return out


def build(
    data: Path | Mapping[str, Path],
    *,
    symbol: str = "BTCUSDT",
    port: int = 0,
    speed: float = 60.0,
    start_ms: int | None = None,
    balances: dict[str, Decimal] | None = None,
    faults: FaultConfig | None = None,
    api_key: str | None = None,
    api_secret: str | None = None,
    first_ms: int | None = None,
    end_ms: int | None = None,
) -> SimServer:
    """A ready (not yet serving) simulator on 127.0.0.1; port 0 lets the OS choose.
    `first_ms` / `end_ms`: replay only the bars opening in that range."""
    plan = faults or FaultConfig()
    replayed = markets(
        {symbol: data} if isinstance(data, Path) else data, first_ms=first_ms, end_ms=end_ms
    )
    for market in replayed:
        market.hidden = [(*o.window_ms(), o.missing) for o in plan.klines_outages]
    first = min(m.ts[0] for m in replayed)
    exchange = Exchange(
        replayed,
        MarketClock(start_ms=start_ms if start_ms is not None else first, speed=speed),
        balances=balances or {"USDT": Decimal(10_000)},
        partial_parts=plan.partial_fill_parts,
    )
    key, secret = (api_key, api_secret) if api_key and api_secret else new_credentials()
    state = SimState(exchange, api_key=key, api_secret=secret, faults=FaultPlan(plan))
    try:
        return SimServer(state, port)
    except OSError as e:
        raise ConfigError(f"cannot listen on 127.0.0.1:{port}: {e.strerror}") from e


__all__ = ["SimServer", "build", "fault_config", "parse_balances", "parse_data"]
