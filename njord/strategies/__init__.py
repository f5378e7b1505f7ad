"""Shipped sample strategies and the registry that resolves `strategy.name`."""

from __future__ import annotations

import difflib
import importlib
import types
from typing import Any

import msgspec

from njord.core.strategy import Strategy
from njord.core.time import TIMEFRAMES
from njord.errors import ConfigError, MismatchError
from njord.manifest import StrategyIdentity, strategy_identity

SHIPPED: dict[str, str] = {
    "sma_crossover": "njord.strategies.sma:SmaCrossover",
    "trendline_break": "njord.strategies.trendline:TrendlineBreak",
    "rsi_tema_bb": "njord.strategies.rsi_tema_bb:RsiTemaBollinger",
}


def resolve(name: str) -> type[Strategy]:
    path = SHIPPED.get(name, name)
    module_name, sep, attr = path.partition(":")
    if not sep:
        close = difflib.get_close_matches(name, list(SHIPPED), n=1)
        hint = f"; did you mean {close[0]}?" if close else f"; shipped: {', '.join(SHIPPED)}"
        raise ConfigError(f"unknown strategy {name!r} (strategy.name){hint}")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"cannot load strategy {path!r} (strategy.name): {e}") from e
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise ConfigError(f"strategy {path!r} is not a njord Strategy subclass")
    if not cls.timeframes or not set(cls.timeframes) <= set(TIMEFRAMES):
        raise ConfigError(
            f"strategy {path!r} declares timeframes {cls.timeframes!r}; "
            f"each must be one of {', '.join(TIMEFRAMES)}"
        )
    return cls


def build(name: str, params: dict[str, Any]) -> Strategy:
    cls = resolve(name)
    return cls(parse_params(cls, params))


def parse_params(cls: type[Strategy], params: dict[str, Any]) -> msgspec.Struct:
    declared = list(msgspec.structs.fields(cls.Params))
    names = [f.name for f in declared]
    for key in sorted(params):
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"; did you mean {close[0]}?" if close else f"; declared: {', '.join(names)}"
            raise ConfigError(f"unknown strategy param {key!r} for {cls.__name__}{hint}")
    try:
        return msgspec.convert(params, cls.Params)
    except msgspec.ValidationError as e:
        raise ConfigError(f"strategy params of {cls.__name__}: {e}") from e


def from_identity(identity: StrategyIdentity) -> type[Strategy]:
    """The strategy a session ran, by the identity its manifest recorded.

    A strategy from outside njord comes back from the source stored in the db when the
    installed one is missing or differs, so a copied db verifies on any machine. njord's
    own samples must match the recorded hash: changed code is a mismatch, not a guess.
    """
    module_name, _, attr = identity.path.partition(":")
    try:
        cls = resolve(identity.path)
        if strategy_identity(cls).sha256 == identity.sha256:
            return cls
    except ConfigError:
        if identity.source is None:
            raise
    if identity.source is None:
        raise MismatchError(
            f"strategy {identity.path} changed since the session ran "
            f"(recorded source sha256 {identity.sha256[:12]})"
        )
    module = types.ModuleType(f"{module_name}__stored_{identity.sha256[:8]}")
    exec(compile(identity.source, f"<stored {module_name}>", "exec"), module.__dict__)
    stored = getattr(module, attr)
    if not (isinstance(stored, type) and issubclass(stored, Strategy)):
        raise MismatchError(f"stored source of {identity.path} defines no Strategy {attr}")
    return stored
