"""Typed configuration: frozen msgspec Structs loaded in layers with precise errors.

Precedence: defaults < file < environment < --set. Every value remembers where it came
from, so an error (and `njord config show`) can name the file line, env var or flag.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec

from njord.core.money import to_e8
from njord.core.risk import RiskLimits, RuleName
from njord.core.time import Timeframe
from njord.errors import ConfigError
from njord.textfile import read_text

Scalar = bool | int | float | str


class _Section(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    def __post_init__(self) -> None:
        """Every number a section holds (a strategy's params too) is one the session can
        compute with and store: TOML's nan and inf, or 1e30 of cash, failed only once the
        session had begun (exit 70, a db left behind)."""
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if isinstance(value, dict):
                items = [(f"{name}.{key}", one) for key, one in value.items()]
            else:
                items = [(name, value)]
            for key, one in items:
                problem = _number_problem(one)
                if problem:
                    raise ValueError(f"{key}: must be {problem}, got {one}")

    def _require(self, name: str, ok: bool, rule: str) -> None:
        # The field name leads the message so the loader can name the dotted key.
        if not ok:
            value = getattr(self, name)
            shown = repr(value) if isinstance(value, str) else str(value)
            raise ValueError(f"{name}: must be {rule}, got {shown}")


class DataConfig(_Section, frozen=True):
    path: str = "sample_data/BTCUSDT-1m-2024-01.parquet"
    symbol: str = "BTCUSDT"
    timeframe: Timeframe = "1m"
    gaps: Literal["strict", "forward", "none"] = "strict"
    start: str = ""
    end: str = ""
    # Several symbols: each symbol's bar history (file or directory), in session order.
    # Set, it replaces `path` and `symbol`; empty, the session trades `symbol` only.
    paths: dict[str, str] = msgspec.field(default_factory=dict)
    # Several symbols on live bars (shadow, paper): the venue's symbols, in session order.
    # Set, it replaces `symbol`.
    symbols: list[str] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        super().__post_init__()
        self._require("symbols", len(set(self.symbols)) == len(self.symbols), "distinct symbols")
        if self.paths and self.symbols:
            raise ValueError(
                "symbols: give data.paths (a backtest's history per symbol) or data.symbols "
                "(a shadow or paper session's venue symbols), not both"
            )

    @property
    def session_symbols(self) -> tuple[str, ...]:
        """The symbols the session has bars of, in session order."""
        return tuple(self.paths) or tuple(self.symbols) or (self.symbol,)


class StrategyConfig(_Section, frozen=True):
    name: str = "sma_crossover"
    # Empty means the strategy's own declaration (its `timeframes`).
    timeframes: list[Timeframe] = msgspec.field(default_factory=list)
    # Empty means the strategy's own defaults; unknown names are refused by the strategy.
    params: dict[str, Scalar] = msgspec.field(default_factory=dict)
    # Empty means every symbol the session has bars of.
    symbols: list[str] = msgspec.field(default_factory=list)


class SleeveRisk(_Section, frozen=True):
    """One strategy's own limits (`[strategies.risk]`), besides the account's `[risk]`."""

    daily_loss_limit: Decimal = Decimal("0")  # 0: off
    notional_cap: Decimal = Decimal("0")  # 0: off

    def __post_init__(self) -> None:
        super().__post_init__()
        self._require("daily_loss_limit", self.daily_loss_limit >= 0, ">= 0")
        self._require("notional_cap", self.notional_cap >= 0, ">= 0")


class SleeveConfig(_Section, frozen=True):
    """One of several strategies in a session (`[[strategies]]`): its own symbols, params,
    cash (its allocation of the initial cash) and trading state."""

    id: str
    name: str
    symbols: list[str] = msgspec.field(default_factory=list)  # [] = all the session's
    timeframes: list[Timeframe] = msgspec.field(default_factory=list)
    params: dict[str, Scalar] = msgspec.field(default_factory=dict)
    allocation: Decimal = Decimal("0")
    enabled: bool = True
    on_error: Literal["halt_sleeve", "halt_all"] = "halt_sleeve"
    risk: SleeveRisk = msgspec.field(default_factory=SleeveRisk)

    def __post_init__(self) -> None:
        super().__post_init__()
        self._require(
            "id", re.fullmatch(r"[a-z0-9_]{1,16}", self.id) is not None, "1 to 16 of a-z, 0-9 and _"
        )
        self._require("allocation", 0 < self.allocation <= 1, "in (0, 1]")


class CostsConfig(_Section, frozen=True):
    commission_bps: Decimal = Decimal("10")
    spread_bps: Decimal = Decimal("0")
    slippage_bps: Decimal = Decimal("1")
    min_notional: Decimal = Decimal("10")
    fee_asset: Literal["quote", "received"] = "quote"
    fill_at: Literal["close", "next_open"] = "close"

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("commission_bps", "spread_bps", "slippage_bps", "min_notional"):
            self._require(name, getattr(self, name) >= 0, ">= 0")


class RiskConfig(_Section, frozen=True):
    allowed_symbols: list[str] = msgspec.field(default_factory=lambda: ["BTCUSDT"])
    notional_cap: Decimal = Decimal("10000")
    max_open_positions: int = 1
    daily_loss_limit: Decimal = Decimal("1000")
    max_orders_per_minute: int = 10
    rules_off: dict[str, list[RuleName]] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        self._require("notional_cap", self.notional_cap > 0, "> 0")
        self._require("daily_loss_limit", self.daily_loss_limit > 0, "> 0")
        self._require("max_open_positions", self.max_open_positions >= 1, ">= 1")
        self._require("max_orders_per_minute", self.max_orders_per_minute >= 1, ">= 1")
        modes = set(MODES)
        self._require("rules_off", set(self.rules_off) <= modes, f"keyed by a mode of {MODES}")


MODES = ("backtest", "shadow", "paper", "live")


def risk_limits(risk: RiskConfig, *, mode: str) -> RiskLimits:
    """The risk engine's limits (core.risk.PreTradeRisk) for a session in `mode`."""
    return RiskLimits(
        allowed_symbols=frozenset(risk.allowed_symbols),
        notional_cap_e8=to_e8(risk.notional_cap),
        max_open_positions=risk.max_open_positions,
        daily_loss_limit_e8=to_e8(risk.daily_loss_limit),
        max_orders_per_minute=risk.max_orders_per_minute,
        off=frozenset(risk.rules_off.get(mode, [])),
    )


class RuntimeConfig(_Section, frozen=True):
    mode: Literal["backtest", "shadow", "paper", "live"] = "backtest"
    commit_every: int = 1000
    initial_cash: Decimal = Decimal("10000")
    allow_short: bool = False
    seed: int = 0
    decision_latency_p95_ms: float = 50.0
    decision_latency_p99_ms: float = 100.0
    kill_file: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._require("commit_every", self.commit_every >= 1, ">= 1")
        self._require("initial_cash", to_e8(self.initial_cash) > 0, ">= 0.00000001")
        self._require("initial_cash", self.initial_cash <= MAX_AMOUNT, f"at most {MAX_AMOUNT}")


class VenueConfig(_Section, frozen=True):
    base_url: str = "https://api.binance.com"
    recv_window_ms: int = 5000
    tiny: bool = False
    tiny_allow_min_notional: bool = False
    secrets_file: str = ""
    connect_timeout_s: float = 60.0
    max_consecutive_failures: int = 5
    reconcile_every_bars: int = 15
    on_mismatch: Literal["halt", "adopt"] = "halt"

    def __post_init__(self) -> None:
        super().__post_init__()
        ok = 0 < self.recv_window_ms <= 60000
        self._require("recv_window_ms", ok, "in 1..60000 (Binance's limit)")
        self._require("connect_timeout_s", self.connect_timeout_s > 0, "> 0")
        self._require("max_consecutive_failures", self.max_consecutive_failures >= 1, ">= 1")
        self._require("reconcile_every_bars", self.reconcile_every_bars >= 1, ">= 1")
        url = urlsplit(self.base_url)
        ok = url.scheme in ("http", "https") and bool(url.hostname) and not url.query
        self._require("base_url", ok, "an http:// or https:// URL with a host")


class StoreConfig(_Section, frozen=True):
    db: str = ""
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    store_bars: bool = True
    snapshot_every: int = 10_080
    lease_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self._require("snapshot_every", self.snapshot_every >= 1, ">= 1")
        self._require("lease_timeout_s", self.lease_timeout_s > 0, "> 0")


class AlertsConfig(_Section, frozen=True):
    command: str = ""
    webhook: bool = False
    email_to: list[str] = msgspec.field(default_factory=list)
    email_from: str = ""
    smtp: str = ""
    starttls: bool = True
    max_per_hour: int = 20
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self._require("max_per_hour", self.max_per_hour >= 1, ">= 1")
        self._require("timeout_s", self.timeout_s > 0, "> 0")
        if self.email_to:
            host, _, port = self.smtp.rpartition(":")
            self._require("smtp", bool(host) and port.isdigit(), "host:port when email_to is set")
            self._require("email_from", "@" in self.email_from, "an address when email_to is set")


class PortfolioConfig(_Section, frozen=True):
    allocator: Literal["fixed_fraction", "risk_parity"] = "fixed_fraction"
    lookback_days: int = 20

    def __post_init__(self) -> None:
        super().__post_init__()
        self._require("lookback_days", self.lookback_days >= 2, ">= 2")


class Config(_Section, frozen=True):
    data: DataConfig = msgspec.field(default_factory=DataConfig)
    strategy: StrategyConfig = msgspec.field(default_factory=StrategyConfig)
    costs: CostsConfig = msgspec.field(default_factory=CostsConfig)
    risk: RiskConfig = msgspec.field(default_factory=RiskConfig)
    runtime: RuntimeConfig = msgspec.field(default_factory=RuntimeConfig)
    venue: VenueConfig = msgspec.field(default_factory=VenueConfig)
    store: StoreConfig = msgspec.field(default_factory=StoreConfig)
    alerts: AlertsConfig = msgspec.field(default_factory=AlertsConfig)
    # Several strategies, each a sleeve of the account; empty: `[strategy]` alone.
    strategies: list[SleeveConfig] = msgspec.field(default_factory=list)
    portfolio: PortfolioConfig = msgspec.field(default_factory=PortfolioConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        ids = [s.id for s in self.strategies]
        self._require("strategies", len(set(ids)) == len(ids), "of distinct ids")
        total = sum((s.allocation for s in self.strategies), Decimal(0))
        self._require("strategies", total <= 1, "allocations summing to at most 1")


# Tables whose keys are free-form: the strategy (or the mode list) validates them later.
_OPEN_TABLES = frozenset({"strategy.params", "risk.rules_off", "data.paths"})
# Keys left out of the canonical text while empty: they came after sessions whose config
# hash (and with it their client order ids) must not change.
_LATER_KEYS = (("data", "paths"), ("data", "symbols"), ("strategy", "symbols"))


class Loaded(msgspec.Struct, frozen=True):
    config: Config
    origins: dict[str, str]


def config_to_dict(config: Config) -> dict[str, Any]:
    # Decimals stay Decimals so TOML shows them as numbers, not quoted strings.
    out: dict[str, Any] = msgspec.to_builtins(config, builtin_types=(Decimal,))
    return out


def config_toml(config: Config) -> str:
    """Canonical TOML: the effective config text stored in the manifest and hashed."""
    tree = config_to_dict(config)
    for section, key in _LATER_KEYS:
        if not tree[section][key]:
            del tree[section][key]
    if not tree["strategies"]:
        del tree["strategies"]
    if config.portfolio == PortfolioConfig():
        del tree["portfolio"]
    return dumps_toml(tree)


def config_sha256(config: Config) -> str:
    return hashlib.sha256(config_toml(config).encode()).hexdigest()


def stored_config(text: str) -> Config:
    """The config a session recorded (canonical TOML in its manifest)."""
    return msgspec.convert(tomllib.loads(text), Config)


def amended(config: Config, changes: Sequence[tuple[str, str]]) -> Config:
    """`config` with each (dotted key, TOML literal) applied in order, validated."""
    merged = config_to_dict(config)
    origins = {key: "the session db" for key in _leaf_keys(merged)}
    for key, literal in changes:
        _assign(merged, origins, key, _parse_value(literal), "a config amendment")
    return _convert(merged, origins)


def load(
    *,
    file: Path | None,
    env: Mapping[str, str],
    sets: Sequence[str],
    env_prefix: str = "NJORD_",
    strategy: str | None = None,
) -> Loaded:
    """`strategy` (the CLI's --strategy) replaces strategy.name and drops what the file and
    environment gave the strategy (params, timeframes, symbols: they belong to the strategy
    those named); the table keeps its keys, so `sets` still apply to any of them."""
    merged = config_to_dict(Config())
    origins = {key: "default" for key in _leaf_keys(merged)}
    if file is not None:
        _apply_file(merged, origins, file)
    for name in sorted(env):
        if name.startswith(env_prefix) and "__" in name[len(env_prefix) :]:
            dotted = name[len(env_prefix) :].lower().replace("__", ".")
            _assign(merged, origins, dotted, _parse_value(env[name]), f"env {name}")
    if strategy is not None:
        merged["strategy"] = {**config_to_dict(Config())["strategy"], "name": strategy}
        for key in [k for k in origins if k.startswith("strategy.params.")]:
            del origins[key]
        origins.update({k: "default" for k in origins if k.startswith("strategy.")})
        origins["strategy.name"] = f"--strategy {strategy}"
    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set takes key=value, got {item!r}")
        _assign(merged, origins, key.strip(), _parse_value(raw.strip()), f"--set {item}")
    return Loaded(_convert(merged, origins), origins)


def check_symbols(config: Config) -> None:
    """A session's risk rules must allow the symbol it trades: otherwise every order is
    refused SYMBOL_NOT_ALLOWED, silently but for a count in the summary (what a new user
    switching data.symbol meets first). Checked where a session is planned, resumed with
    new keys or swept (each combination: one that fails is a skipped row), on the config it
    will run with; never on a stored config, so a session made before this check still
    opens."""
    allowed = config.risk.allowed_symbols
    source = next((k for k in ("paths", "symbols") if getattr(config.data, k)), "symbol")
    source = f"data.{source}"
    for symbol in config.data.session_symbols:
        if symbol not in allowed:
            raise ConfigError(
                f"config risk.allowed_symbols {allowed} does not hold {source} "
                f"{symbol}: every order would be refused; add it"
            )
    held = config.data.session_symbols
    named = [("strategy.symbols", s) for s in config.strategy.symbols]
    named += [(f"strategies {c.id}", s) for c in config.strategies for s in c.symbols]
    for key, symbol in named:
        if symbol not in held:
            raise ConfigError(
                f"{key} names {symbol}, which the session has no bars of "
                f"({source}: {', '.join(held)})"
            )


def with_values(config: Config, values: Mapping[str, Any]) -> Config:
    """`config` with dotted keys set (a sweep's combination), checked as `--set` is."""
    merged = config_to_dict(config)
    origins = {key: "base config" for key in _leaf_keys(merged)}
    for key, value in values.items():
        _assign(merged, origins, key, value, f"--param {key}")
    return _convert(merged, origins)


def _apply_file(merged: dict[str, Any], origins: dict[str, str], file: Path) -> None:
    text = read_text(file, "config file")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {file} is not valid TOML: {e}") from e
    lines = _key_lines(text)
    for dotted, value in _flatten(doc):
        where = f"{file}:{lines.get(dotted, 1)}"
        _assign(merged, origins, dotted, value, where)


def _flatten(doc: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in doc.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and dotted not in _OPEN_TABLES:
            out.extend(_flatten(value, dotted + "."))
        elif isinstance(value, dict):
            out.extend((f"{dotted}.{k}", v) for k, v in value.items())
        else:
            out.append((dotted, value))
    return out


def _key_lines(text: str) -> dict[str, int]:
    """Line number of each `key = value` in a TOML file, by dotted key (errors cite it)."""
    section, lines = "", {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line.strip("[]").strip() + "."
        elif "=" in line and not line.startswith("#"):
            lines[section + line.split("=", 1)[0].strip()] = number
    return lines


def _assign(
    merged: dict[str, Any], origins: dict[str, str], dotted: str, value: Any, origin: str
) -> None:
    parts = dotted.split(".")
    node: Any = merged
    for depth, part in enumerate(parts):
        path = ".".join(parts[: depth + 1])
        parent = ".".join(parts[:depth])
        if parent in _OPEN_TABLES and depth == len(parts) - 1:
            node[part] = value
            origins[path] = origin
            return
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(_unknown_key_message(path, origin, node))
        if depth == len(parts) - 1:
            if isinstance(node[part], dict) and path not in _OPEN_TABLES:
                raise ConfigError(f"{path} is a section, not a value ({origin})")
            node[part] = value
            origins[path] = origin
            return
        node = node[part]


def _unknown_key_message(path: str, origin: str, node: Any) -> str:
    parent, _, leaf = path.rpartition(".")
    choices = sorted(node) if isinstance(node, dict) else []
    close = difflib.get_close_matches(leaf, choices, n=1)
    hint = f"; did you mean {(parent + '.' if parent else '') + close[0]}?" if close else ""
    return f"unknown config key {path} ({origin}){hint}"


def _parse_value(raw: str) -> Any:
    """Env and --set values are TOML literals when they parse as one, else plain strings."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _convert(merged: dict[str, Any], origins: Mapping[str, str]) -> Config:
    try:
        return msgspec.convert(merged, Config)
    except msgspec.ValidationError as e:
        raise ConfigError(_validation_message(str(e), origins)) from e


# The most cash an e8 integer holds in SQLite's 64 bits (more failed at the first equity
# row written, after the session had begun). Caps and limits are only compared: any size.
MAX_AMOUNT = Decimal((2**63 - 1) // 10**8)


def _number_problem(value: object) -> str:
    """What is wrong with a number a key holds, '' when nothing is: not finite (TOML's nan
    and inf), or an integer past 64 bits."""
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return "" if -(2**63) <= value < 2**63 else "a 64-bit integer"
    if isinstance(value, float) and not math.isfinite(value):
        return "a finite number"
    if isinstance(value, Decimal) and not value.is_finite():
        return "a finite number"
    return ""


def _validation_message(text: str, origins: Mapping[str, str]) -> str:
    message, _, where = text.rpartition(" - at `$.")
    key = where.rstrip("`")
    field, sep, rule = message.partition(": must be ")
    if sep:
        key, message = f"{key}.{field}", f"must be {rule}"
    key = re.sub(r"\[\.\.\.\]", "", re.sub(r"\[\d+\]$", "", key))
    origin = next((o for k, o in origins.items() if k.startswith(key)), "default")
    if key not in origins:
        origin = origins.get(key, origin)
    return f"config {key}: {message} ({origin})"


def _leaf_keys(tree: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            keys.extend(_leaf_keys(value, dotted + "."))
        else:
            keys.append(dotted)
    return keys


def leaf_items(config: Config) -> list[tuple[str, Any]]:
    return _flatten(config_to_dict(config))


def dumps_toml(tree: Mapping[str, Any]) -> str:
    """A small deterministic TOML writer for our own config shape (tables of scalars/lists)."""
    lines: list[str] = []
    _dump_table(tree, "", lines)
    return "\n".join(lines).strip() + "\n"


def _dump_table(tree: Mapping[str, Any], name: str, lines: list[str], *, header: str = "") -> None:
    """`header`: the line that opens this table (an array's `[[name]]`), `[name]` if not."""
    arrays = [(k, v) for k, v in tree.items() if v and isinstance(v, list) and _tables(v)]
    scalars = [(k, v) for k, v in tree.items() if not isinstance(v, dict) and (k, v) not in arrays]
    tables = [(k, v) for k, v in tree.items() if isinstance(v, dict)]
    if name and (scalars or not tables or header):
        lines.append(header or f"[{name}]")
    lines.extend(f"{k} = {toml_value(v)}" for k, v in scalars)
    if scalars:
        lines.append("")
    for key, sub in tables:
        _dump_table(sub, f"{name}.{key}" if name else key, lines)
    for key, items in arrays:  # after everything else: a later [table] would land in them
        path = f"{name}.{key}" if name else key
        for item in items:
            _dump_table(item, path, lines, header=f"[[{path}]]")


def _tables(values: list[Any]) -> bool:
    return all(isinstance(v, dict) for v in values)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, dict):  # an inline table: a `[[strategies]]` entry in one line
        pairs = [f"{_toml_key(k)} = {toml_value(v)}" for k, v in value.items()]
        return "{ " + ", ".join(pairs) + " }" if pairs else "{}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_value(key)


def environ() -> dict[str, str]:
    return dict(os.environ)


# One line per key: the source of `njord init` comments and docs/configuration.md.
DOCS: dict[str, str] = {
    "data.path": "bar history: a Parquet file or a directory of them (see `njord data import`); "
    "a relative path is read from the working directory, not the config file's folder",
    "data.symbol": "the symbol to trade (a session of one symbol)",
    "data.paths": "several symbols in a backtest: { BTCUSDT = 'btc.parquet', ETHUSDT = "
    "'eth/' }, in session order; set, it replaces data.path and data.symbol",
    "data.symbols": "several symbols in a shadow or paper session: the venue's, e.g. "
    "['BTCUSDT', 'ETHUSDT'], in session order ([] = data.symbol); set, it replaces data.symbol",
    "data.timeframe": "bar length of the data: 1m, or 3m..1d to backtest coarser bars",
    "data.gaps": "gap policy: strict (refuse) | forward (flat bars at last close) | none (skip)",
    "data.start": "first bar to use, ISO date/time UTC, inclusive ('' = from the first bar; "
    "a new live-market session: from the venue's latest closed bar)",
    "data.end": "end of the range, ISO date/time UTC, exclusive ('' = to the last bar)",
    "strategy.name": "a short name (see `njord strategies`), module:Class or path/to/file.py:Class",
    "strategy.timeframes": "bars the strategy gets, e.g. ['1m', '1h'] ([] = what it declares)",
    "strategy.params": "the strategy's typed params; unset ones take the strategy's defaults",
    "strategies": "several strategies, each a sleeve of the account: [[strategies]] tables "
    "with id, name, symbols, timeframes, params, allocation (its share of the cash), enabled, "
    "on_error (halt_sleeve | halt_all) and [strategies.risk] daily_loss_limit, notional_cap "
    "(0 = off); see docs/strategies.md ([] = [strategy] alone)",
    "portfolio.allocator": "several strategies: fixed_fraction (each sleeve's day budget: its "
    "allocation of the equity) | risk_parity (the allocations shared by inverse volatility)",
    "portfolio.lookback_days": "risk_parity: daily returns of each sleeve it weighs (>= 2)",
    "strategy.symbols": "the symbols the strategy gets bars of and may order ([] = all the "
    "session's)",
    "costs.commission_bps": "commission per fill, basis points of notional (0 = off)",
    "costs.spread_bps": "half of it is paid on each market fill, basis points (0 = off)",
    "costs.slippage_bps": "market fills move against you by this, basis points (0 = off)",
    "costs.min_notional": "orders below this notional (quote) are refused (0 = off)",
    "costs.fee_asset": "quote: every fee in quote; received: a buy pays in the base asset, "
    "as Binance charges by default (booked at the fill price)",
    "costs.fill_at": "close: a market order fills at the close of the bar that decided it; "
    "next_open: at the next bar's open (± slippage either way)",
    "risk.allowed_symbols": "symbols orders may be placed on; must hold `data.symbol` (or every "
    "`data.paths` or `data.symbols` symbol; exit 2 otherwise: every order would be refused), "
    "checked for a new "
    "session, a resumed one given new keys and each sweep combination (one that fails is a "
    "skipped row), never for a stored one",
    "risk.notional_cap": "largest notional of one order, quote currency",
    "risk.max_open_positions": "most symbols with a non-zero position at once",
    "risk.daily_loss_limit": "realised loss net of fees in one UTC day that halts trading",
    "risk.max_orders_per_minute": "most orders accepted in one minute of session time",
    "risk.rules_off": "per mode, rules switched off, e.g. { backtest = ['order_rate'] }",
    "runtime.mode": "backtest | shadow | paper | live",
    "runtime.commit_every": "backtest: bars per transaction, ending on a bar boundary "
    "(a year at 100/1000/10000: 6.92/6.80/6.70 s; 1000 keeps a crash's redo small)",
    "runtime.initial_cash": "starting cash in the quote currency",
    "runtime.allow_short": "allow sells beyond the long position (never in live spot)",
    "runtime.seed": "seed of every random choice; recorded in the manifest",
    "runtime.decision_latency_p95_ms": "SLO: bar available to orders sent and bar committed",
    "runtime.decision_latency_p99_ms": "SLO: as above, 99th percentile",
    "runtime.kill_file": "while this path exists the session is HALTED within 1 s; removing "
    "it does not resume (`njord halt --file PATH` creates it; '' = off)",
    "venue.base_url": "REST root of the venue (or of `njord exchange-sim`)",
    "venue.recv_window_ms": "recvWindow sent with signed requests (max 60000)",
    "venue.tiny": "live micro-cap mode: every order that adds exposure capped at 10 quote units",
    "venue.tiny_allow_min_notional": "tiny mode: when the venue's minimum notional is above "
    "the cap, raise an order to it (false: refuse the order, LIVE_MICRO_CAP)",
    "venue.secrets_file": "TOML file with binance_api_key / binance_api_secret (mode 0600)",
    "venue.connect_timeout_s": (
        "a new shadow/paper session whose venue never answered gives up after this (exit 1); "
        "a resumed one keeps retrying"
    ),
    "venue.max_consecutive_failures": "live: venue calls failing for good (terminal errors, "
    "retries used up) in a row that halt the session, reason VENUE_FAILURES",
    "venue.reconcile_every_bars": "live: bars between reconciliations with the venue "
    "(balances, open orders, trades); also at every start",
    "venue.on_mismatch": "live: what reconciliation does with what it cannot explain, "
    "recorded as external events: halt (reason VENUE_MISMATCH) | adopt the venue's view",
    "store.db": "session db path ('' = runs/<run_id>/session.db)",
    "store.synchronous": "SQLite synchronous: NORMAL, or FULL (forced in live)",
    "store.store_bars": "keep the bars used inside the db (needed by verify on another machine)",
    "store.snapshot_every": "bars between snapshots of the book (also taken on every fill)",
    "store.lease_timeout_s": (
        "heartbeat age after which a lease held from another host is stale; a session "
        "waiting for a bar beats every third of it"
    ),
    "alerts.command": "run on each alert edge, the alert as JSON on stdin; placeholders "
    "{title} {kind} {event} {session} {msg} ('' = off)",
    "alerts.webhook": "POST each alert edge as JSON (Slack-compatible `text`) to the URL in "
    "secret alerts_webhook_url (env NJORD_ALERTS_WEBHOOK_URL or venue.secrets_file)",
    "alerts.email_to": "mail each alert edge to these addresses ([] = off)",
    "alerts.email_from": "sender address; also the SMTP login (password: secret smtp_password)",
    "alerts.smtp": "SMTP server host:port for email_to",
    "alerts.starttls": "upgrade the SMTP connection with STARTTLS",
    "alerts.max_per_hour": "most alert edges sent in any hour; the rest are recorded as suppressed",
    "alerts.timeout_s": "time bound of one delivery attempt (command, webhook, SMTP)",
}


def commented_toml(config: Config) -> str:
    """The `njord init` file: every key with its default and a one-line comment."""
    out: list[str] = ["# njord configuration; every key shows its default.", ""]
    section = ""
    for dotted, value in leaf_items(config):
        head, _, key = dotted.rpartition(".")
        if not head:
            continue  # `strategies`: an array of tables, shown commented below
        if head != section:
            out += ["", f"[{head}]"] if out[-1] else [f"[{head}]"]
            section = head
        out.append(f"# {DOCS.get(dotted, '')}".rstrip())
        out.append(f"{key} = {toml_value(value)}")
    out += ["", "# [strategy.params]", f"# {DOCS['strategy.params']}", "# fast = 10", "# slow = 30"]
    out += ["", "# [risk.rules_off]", f"# {DOCS['risk.rules_off']}", '# backtest = ["order_rate"]']
    out += ["", "# [data.paths]", f"# {DOCS['data.paths']}"]
    out += ['# BTCUSDT = "sample_data/BTCUSDT-1m-2024-01.parquet"']
    out += ['# ETHUSDT = "sample_data/ETHUSDT-1m-2024-01.parquet"']
    out += ["", f"# {DOCS['strategies']}", "# [[strategies]]", '# id = "trend_btc"']
    out += ['# name = "sma_crossover"', '# symbols = ["BTCUSDT"]', "# allocation = 0.5"]
    out += ["# params = { fast = 20, slow = 120 }"]
    return "\n".join(out) + "\n"
