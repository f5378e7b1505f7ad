"""What a sweep varies: any config key, from `--param`, a `--grid` file or `--random` draws.

A bare name is a strategy param (`fast` means `strategy.params.fast`); a dotted name is
any config key (`costs.slippage_bps`). Every key and value is checked before any
backtest: an unknown key, an empty list, a value of the wrong type, or a key given twice
is a usage error naming the `--param`.
"""

from __future__ import annotations

import itertools
import random
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec

from njord import config as configuration
from njord import strategies
from njord.errors import ConfigError
from njord.textfile import read_text

PARAMS = "strategy.params."


class Range(msgspec.Struct, frozen=True):
    """`lo..hi`, both ends included: drawn uniformly by `--random` (ints stay ints)."""

    lo: int | float
    hi: int | float


class Grid(msgspec.Struct, frozen=True):
    keys: list[str]  # dotted config keys, in the order given
    combos: list[dict[str, Any]]  # key -> value, one per combination

    @property
    def columns(self) -> list[str]:
        return [column(k) for k in self.keys]


def column(key: str) -> str:
    """The results column of a key: a strategy param keeps its short name."""
    return key.removeprefix(PARAMS)


def axes_from_params(items: Iterable[str]) -> list[tuple[str, list[Any] | Range]]:
    axes = []
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--param takes name=v1,v2,... or name=lo..hi, got {item!r}")
        axes.append((name.strip(), _values(name.strip(), raw.strip())))
    return axes


def axes_from_file(path: Path) -> list[tuple[str, list[Any] | Range]]:
    """A TOML table of key -> list of values (or "lo..hi"); tables nest as dotted keys."""
    try:
        doc = tomllib.loads(read_text(path, "--grid"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"--grid {path} is not valid TOML: {e}") from e
    return [(key, _file_values(key, value)) for key, value in _leaves(doc)]


def _leaves(doc: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in doc.items():
        if isinstance(value, dict):
            out += _leaves(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out


def _file_values(key: str, value: Any) -> list[Any] | Range:
    if isinstance(value, str) and ".." in value:
        return _values(key, value)
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ConfigError(f"--param {key}: the value list is empty")
    return values


def _values(name: str, raw: str) -> list[Any] | Range:
    lo, dots, hi = raw.partition("..")
    if dots and "," not in raw:
        ends = (_literal(lo.strip()), _literal(hi.strip()))
        if not all(isinstance(e, int | float) and not isinstance(e, bool) for e in ends):
            raise ConfigError(f"--param {name}: a range is number..number, got {raw!r}")
        if ends[1] < ends[0]:
            raise ConfigError(f"--param {name}: the range {raw} is empty")
        return Range(*ends)
    parsed = [_literal(v.strip()) for v in raw.split(",") if v.strip()]
    if not parsed:
        raise ConfigError(f"--param {name}: the value list is empty")
    return parsed


def _literal(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def build(
    axes: list[tuple[str, list[Any] | Range]],
    config: configuration.Config,
    *,
    draws: int | None,
    seed: int,
) -> Grid:
    """Every combination of the axes (or `draws` seeded random ones), each value checked."""
    if not axes:
        raise ConfigError("give at least one --param name=v1,v2,... (or --grid FILE)")
    keys: list[str] = []
    for name, values in axes:
        key = _key(name, config)
        if key in keys:
            raise ConfigError(f"--param {key} is given twice; give each key once")
        keys.append(key)
        for value in [values.lo, values.hi] if isinstance(values, Range) else values:
            _check(key, value, config)
    specs = [values for _, values in axes]
    if draws is None:
        ranged = next((k for k, v in zip(keys, specs, strict=True) if isinstance(v, Range)), None)
        if ranged is not None:
            raise ConfigError(f"--param {column(ranged)} is a range: ranges need --random N")
        lists = [v for v in specs if isinstance(v, list)]
        return Grid(keys, [dict(zip(keys, c, strict=True)) for c in itertools.product(*lists)])
    if draws < 1:
        raise ConfigError(f"--random must be >= 1, got {draws}")
    rng = random.Random(seed)
    combos = [dict(zip(keys, (_draw(rng, s) for s in specs), strict=True)) for _ in range(draws)]
    return Grid(keys, combos)


def _draw(rng: random.Random, spec: list[Any] | Range) -> Any:
    if isinstance(spec, list):
        return rng.choice(spec)
    if isinstance(spec.lo, int) and isinstance(spec.hi, int):
        return rng.randint(spec.lo, spec.hi)
    return round(rng.uniform(spec.lo, spec.hi), 6)  # six places: readable, still seeded


def _key(name: str, config: configuration.Config) -> str:
    """A bare name is a strategy param the strategy must declare; dotted is a config key."""
    if "." in name:
        return name
    cls = strategies.resolve(config.strategy.name)
    declared = [f.name for f in msgspec.structs.fields(cls.Params)]
    if name not in declared:
        elsewhere = [k for k, _ in configuration.leaf_items(config) if k.endswith(f".{name}")]
        hint = f"; for the config key give --param {elsewhere[0]}=..." if elsewhere else ""
        raise ConfigError(
            f"--param {name}: {cls.__name__} declares no param {name!r} "
            f"(declared: {', '.join(declared)}){hint}"
        )
    return PARAMS + name


def _check(key: str, value: Any, config: configuration.Config) -> None:
    """The key exists and takes this value's type; a combination the strategy refuses as
    a whole (fast >= slow) is a skipped row later, not a usage error."""
    if key.startswith(PARAMS):
        name = column(key)
        cls = strategies.resolve(config.strategy.name)
        fields = {f.name: f for f in msgspec.structs.fields(cls.Params)}
        if name not in fields:
            raise ConfigError(f"--param {key}: {cls.__name__} declares no param {name!r}")
        try:
            msgspec.convert({name: value}, msgspec.defstruct("One", [(name, fields[name].type)]))
        except msgspec.ValidationError as e:
            raise ConfigError(f"--param {name}: {value!r} is not valid: {e}") from e
        return
    configuration.with_values(config, {key: value})
