"""Fault injection for the exchange simulator, from a TOML file; deterministic per seed.

```toml
seed = 7
time_skew_ms = 0              # added to serverTime and to the timestamp check
partial_fill_parts = 1        # limit orders fill over this many bars
weight_limit_1m = 6000        # REQUEST_WEIGHT a minute; raise it only to soak other faults
                              # at replay speeds no real client polls at

[[faults]]
endpoint = "GET /api/v3/klines"   # METHOD PATH, or "*"
kind = "429"                      # 429 | 418 | 500 | 503 | timeout | drop
every = 5                         # every Nth matching request (or: probability = 0.1)
count = 3                         # at most this many times (0 = unlimited)
retry_after_s = 1                 # 429 / 418
executed = false                  # 5xx / timeout / drop on an order: did it execute first?
seconds = 2.0                     # timeout: how long to stall

[[klines_outages]]
start = "2024-01-02T00:00:00"     # market time, UTC
minutes = 20
missing = false                   # false: the bars arrive late; true: they never arrive
```
"""

from __future__ import annotations

import random
import threading
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from njord.core.time import MINUTE_MS
from njord.errors import ConfigError
from njord.sim.limits import WEIGHT_LIMIT_1M
from njord.textfile import read_text


class Fault(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    endpoint: str = "*"
    kind: Literal["429", "418", "500", "503", "timeout", "drop"]
    every: int = 0
    probability: float = 0.0
    count: int = 0
    retry_after_s: float = 1.0
    executed: bool = False
    seconds: float = 2.0


class Outage(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    start: str
    minutes: int
    missing: bool = False

    def window_ms(self) -> tuple[int, int]:
        begin = datetime.fromisoformat(self.start)
        if begin.tzinfo is None:
            begin = begin.replace(tzinfo=UTC)
        first = int(begin.timestamp() * 1000)
        return first, first + self.minutes * MINUTE_MS


class FaultConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    seed: int = 0
    time_skew_ms: int = 0
    partial_fill_parts: int = 1
    weight_limit_1m: Annotated[int, msgspec.Meta(gt=0)] = WEIGHT_LIMIT_1M
    faults: list[Fault] = msgspec.field(default_factory=list)
    klines_outages: list[Outage] = msgspec.field(default_factory=list)


def load(path: Path) -> FaultConfig:
    try:
        doc = tomllib.loads(read_text(path, "faults file"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"faults file {path} is not valid TOML: {e}") from e
    try:
        return msgspec.convert(doc, FaultConfig)
    except msgspec.ValidationError as e:
        raise ConfigError(f"faults file {path}: {e}") from e


class FaultPlan:
    """Decides, request by request, which fault (if any) to inject."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)
        self._seen = [0] * len(config.faults)
        self._fired = [0] * len(config.faults)
        self._lock = threading.Lock()

    def fired(self) -> list[int]:
        """How many times each fault of the config has fired so far, in its order."""
        with self._lock:
            return list(self._fired)

    def pick(self, route: str) -> Fault | None:
        with self._lock:
            for i, fault in enumerate(self.config.faults):
                if fault.endpoint not in ("*", route):
                    continue
                if fault.count and self._fired[i] >= fault.count:
                    continue
                self._seen[i] += 1
                hit = (fault.every and self._seen[i] % fault.every == 0) or (
                    fault.probability and self._rng.random() < fault.probability
                )
                if hit:
                    self._fired[i] += 1
                    return fault
        return None
