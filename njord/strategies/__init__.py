"""Shipped sample strategies and the registry that resolves `strategy.name`."""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import re
import sys
import types
from pathlib import Path
from typing import Any

import msgspec

from njord.core.strategy import Strategy
from njord.core.time import TIMEFRAMES
from njord.errors import ConfigError, MismatchError, NjordError, StrategyError
from njord.manifest import StrategyIdentity, strategy_identity

SHIPPED: dict[str, str] = {
    "sma_crossover": "njord.strategies.sma:SmaCrossover",
    "trendline_break": "njord.strategies.trendline:TrendlineBreak",
    "rsi_tema_bb": "njord.strategies.rsi_tema_bb:RsiTemaBollinger",
}


# Shipped samples that carry one set of state from bar to bar (running sums, indicator
# states), not one per symbol or timeframe: given several they would mix their closes. A
# new session refuses them on more than one (`one_series_only`); their code stays as it is,
# since a stored session's sample must keep its recorded hash to be verified.
ONE_SERIES = {
    "njord.strategies.sma:SmaCrossover": "running sums of closes",
    "njord.strategies.rsi_tema_bb:RsiTemaBollinger": "RSI and TEMA states",
}


def one_series_only(
    cls: type[Strategy], symbols: tuple[str, ...], timeframes: tuple[str, ...], name: str
) -> None:
    """ConfigError (exit 2) for a sample in ONE_SERIES given several symbols, or several
    timeframes: each of its `on_bar` calls would feed another series into one state."""
    kept = ONE_SERIES.get(f"{cls.__module__}:{cls.__qualname__}")
    if kept is None:
        return
    if len(symbols) > 1:
        raise ConfigError(
            f"{name} keeps one set of {kept} and would mix {', '.join(symbols)}: give it one "
            'symbol (strategy.symbols = ["..."], or a [[strategies]] entry per symbol)'
        )
    if len(timeframes) > 1:
        raise ConfigError(
            f"{name} keeps one set of {kept} and would mix its {', '.join(timeframes)} bars: "
            'give it one timeframe (strategy.timeframes = ["..."])'
        )


# Installed packages offer strategies by short name under this entry point group.
ENTRY_POINT_GROUP = "njord.strategies"


def available() -> dict[str, str]:
    """Every short name a user can give, to its `module:Class`: the shipped samples, then
    the `njord.strategies` entry points of installed packages (a shipped name wins)."""
    return {**SHIPPED, **{n: v for n, v in _installed().items() if n not in SHIPPED}}


def _installed() -> dict[str, str]:
    # Scanning every installed distribution costs 20-300 ms, and importing importlib.metadata
    # another 30: only for names that need it.
    from importlib import metadata

    found = metadata.entry_points(group=ENTRY_POINT_GROUP)
    return {ep.name: ep.value for ep in sorted(found, key=lambda ep: ep.name)}


def resolve(name: str) -> type[Strategy]:
    """A short name, `module:Class` (importable) or `path/to/file.py:Class` (any file)."""
    path = SHIPPED.get(name) or (name if ":" in name else _installed().get(name))
    if path is None:
        known = available()
        close = difflib.get_close_matches(name, list(known), n=1)
        hint = f"; did you mean {close[0]}?" if close else f"; known: {', '.join(known)}"
        raise ConfigError(f"unknown strategy {name!r} (strategy.name){hint}")
    module_name, _, attr = path.rpartition(":")
    try:
        if module_name.endswith(".py"):
            module = _import_file(Path(module_name))
        else:
            module = importlib.import_module(module_name)
        cls = getattr(module, attr)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"cannot load strategy {path!r} (strategy.name): {e}") from e
    except Exception as e:  # the user's module raised as it was imported
        raise ConfigError(
            f"cannot load strategy {path!r} (strategy.name): {type(e).__name__}: {e}"
        ) from e
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise ConfigError(f"strategy {path!r} is not a njord Strategy subclass")
    if not cls.timeframes or not set(cls.timeframes) <= set(TIMEFRAMES):
        raise ConfigError(
            f"strategy {path!r} declares timeframes {cls.timeframes!r}; "
            f"each must be one of {', '.join(TIMEFRAMES)}"
        )
    return cls


def _import_file(file: Path) -> types.ModuleType:
    """A strategy file needs no PYTHONPATH: it is imported as a module named after its stem,
    so its identity (`stem:Class`) reads as if it had been imported by that name."""
    if not file.is_file():
        raise ImportError(f"no such file {file}")
    name = file.stem
    loaded = sys.modules.get(name)
    if loaded is not None:
        if Path(getattr(loaded, "__file__", None) or "").resolve() == file.resolve():
            return loaded
        raise ImportError(f"a module named {name!r} is already imported; rename {file}")
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"{file} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # inspect.getsource finds the file through it (manifest)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # the user's code failed to import: one line, exit 2
        del sys.modules[name]
        raise ImportError(f"{type(e).__name__}: {e}") from e
    return module


class ParamInfo(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    type: str
    default: Any
    required: bool  # no default: the config must give it


class StrategyInfo(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    path: str
    origin: str  # "shipped" or "entry point"
    doc: str
    params: list[ParamInfo]
    error: str | None = None  # an entry point that does not load is listed, not fatal


def describe() -> list[StrategyInfo]:
    """`njord strategies`: every available strategy with its params and their defaults."""
    out = []
    for name, path in available().items():
        origin = "shipped" if name in SHIPPED else "entry point"
        try:
            cls = resolve(name)
        except ConfigError as e:
            out.append(
                StrategyInfo(name=name, path=path, origin=origin, doc="", params=[], error=str(e))
            )
            continue
        # The class's own docstring (not Strategy's, which it would inherit), else its module's.
        own = cls.__dict__.get("__doc__") or sys.modules[cls.__module__].__doc__ or ""
        doc = re.split(r"; |\. ", inspect.cleandoc(own).replace("\n", " "))[0]
        out.append(
            StrategyInfo(name=name, path=path, origin=origin, doc=doc, params=params_of(cls))
        )
    return out


def params_of(cls: type[Strategy]) -> list[ParamInfo]:
    infos = []
    for field in msgspec.structs.fields(cls.Params):
        required = field.required
        if field.default is not msgspec.NODEFAULT:
            default = field.default
        elif field.default_factory is not msgspec.NODEFAULT:
            default = field.default_factory()
        else:
            default = None
        kind = getattr(field.type, "__name__", str(field.type))
        infos.append(ParamInfo(name=field.name, type=kind, default=default, required=required))
    return infos


def build(strategy: str | type[Strategy], params: dict[str, Any]) -> Strategy:
    """A strategy (a name `resolve` knows, or its class) built from a config's params."""
    cls = resolve(strategy) if isinstance(strategy, str) else strategy
    return made(cls, parse_params(cls, params))


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


def made(cls: type[Strategy], params: msgspec.Struct) -> Strategy:
    """The strategy, built: one whose own `__init__` raises stops its session the way one
    raising in `on_bar` does (exit 1, named by its class), not as a bug of njord's."""
    try:
        return cls(params)
    except NjordError:  # njord's own, raised through it: its message and exit code stand
        raise
    except Exception as e:
        raise StrategyError(f"strategy {cls.__name__} raised in __init__: {e!r}") from e


def from_identity(identity: StrategyIdentity) -> type[Strategy]:
    """The strategy a session ran, by the identity its manifest recorded.

    A strategy from outside njord comes back from the source stored in the db when the
    installed one is missing or differs, so a copied db verifies on any machine. njord's
    own samples must match the recorded hash: changed code is a mismatch, not a guess.
    """
    try:
        cls = resolve(identity.path)
        if strategy_identity(cls).sha256 == identity.sha256:
            return cls
    except ConfigError:
        if identity.source is None:
            raise
    return from_source(identity)


def from_source(identity: StrategyIdentity) -> type[Strategy]:
    """The strategy built from the source its identity keeps, whatever is installed: a
    reloaded version's (a module imported before it changed would still run the old
    code, and `inspect` would read the new file's text for it)."""
    module_name, _, attr = identity.path.partition(":")
    if identity.source is None:
        raise MismatchError(
            f"strategy {identity.path} changed since the session ran "
            f"(recorded source sha256 {identity.sha256[:12]})"
        )
    name = f"{module_name}__stored_{identity.sha256[:8]}"
    module = types.ModuleType(name)
    # Registered like an imported module: msgspec (and typing) resolve the Params'
    # annotations, e.g. `qty: Decimal`, through sys.modules[cls.__module__].
    sys.modules[name] = module
    exec(compile(identity.source, f"<stored {module_name}>", "exec"), module.__dict__)
    stored = getattr(module, attr)
    if not (isinstance(stored, type) and issubclass(stored, Strategy)):
        raise MismatchError(f"stored source of {identity.path} defines no Strategy {attr}")
    return stored
