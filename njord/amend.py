"""Carrying a session on under another config is never silent.

A key the user gave (file, env or --set) that differs from the session's is either
operational (how the session runs: where the venue is, risk limits, the lease) and then
amended: recorded in `config_amendments`, logged and hashed into the decision log, in
force from the next bar; or it changes what the strategy decides (strategy, costs, data,
cash, ...) and the session refuses to start (exit 2), naming each such key.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import msgspec

from njord.config import Config, RiskConfig, amended, check_symbols, leaf_items, toml_value
from njord.core.risk import RiskEngine, RiskInputs, Verdict
from njord.data.qc import utc
from njord.errors import ConfigError
from njord.store.amendments import Amendment

if TYPE_CHECKING:
    from njord.wiring import Session

# By prefix, so keys added later under these sections (e.g. runtime.kill_file) are covered.
OPERATIONAL = (
    "venue.",
    "risk.",
    "store.",
    "alerts.",
    "runtime.kill_file",
    "runtime.commit_every",
    "runtime.decision_latency_",
)
# The command (paper, shadow) or the db decides the mode, never the config file.
IGNORED = ("runtime.mode",)


class Change(msgspec.Struct, frozen=True):
    key: str
    old: str | None  # TOML literals; None: unset in the session's config
    new: str


def operational(key: str) -> bool:
    return key.startswith(OPERATIONAL)


def effective(base: Config, amendments: Sequence[Amendment]) -> Config:
    """The config a session runs under now: the one it began with, then its amendments."""
    return amended(base, [(a.key, a.new) for a in amendments]) if amendments else base


def reconcile(
    current: Config, given: Config, origins: Mapping[str, str], *, session: str
) -> tuple[Config, list[Change]]:
    """The config to carry `session` on with, and the operational changes it makes.
    Only keys the user gave count; keys left at their defaults keep the session's value."""
    have = dict(leaf_items(current))
    changes = [
        Change(key, None if key not in have else toml_value(have[key]), toml_value(value))
        for key, value in leaf_items(given)
        if origins.get(key, "default") != "default"
        and not key.startswith(IGNORED)
        and (key not in have or have[key] != value)
    ]
    deciding = [c for c in changes if not operational(c.key)]
    if deciding:
        shown = ", ".join(f"{c.key} ({c.old or 'unset'} -> {c.new})" for c in deciding)
        raise ConfigError(
            f"session {session} cannot take {shown}: these keys change what the strategy "
            "decides; carry it on without them, or start a new session (another --db)"
        )
    carried_on = amended(current, [(c.key, c.new) for c in changes])
    if changes:  # unchanged, a session stored before the check carries on as it ran
        check_symbols(carried_on)
    return carried_on, changes


def record(session: Session, changes: Sequence[Change], *, after_bar_ms: int | None) -> None:
    """The amendment rows and a WARNING record (chained into the decision log), in one
    transaction, before the session's next bar."""
    if not changes:
        return
    posted_ms = time.time_ns() // 1_000_000
    by = f"operator@{socket.gethostname()}"
    rows = [
        Amendment(
            key=c.key,
            old=c.old,
            new=c.new,
            after_bar_ms=after_bar_ms,
            posted_ms=posted_ms,
            posted_by=by,
        )
        for c in changes
    ]
    log = session.log
    log.date_undated(after_bar_ms or 0)
    log.use_clock(lambda: after_bar_ms or 0)
    shown = ", ".join(f"{c.key} {c.old or 'unset'} -> {c.new}" for c in changes)
    start = "its first bar" if after_bar_ms is None else f"the bar after {utc(after_bar_ms)}"
    log.warning(
        "config",
        f"config amended by {by}: {shown}; in force from {start}",
        amendment=[msgspec.to_builtins(c) for c in changes],
        posted_by=by,
    )
    session.writer.write_now(log.drain(), amendments=rows)


def risk_steps(
    base: Config, amendments: Sequence[Amendment]
) -> list[tuple[int | None, RiskConfig]]:
    """The risk config after each bar where risk keys were amended, in order."""
    steps: list[tuple[int | None, RiskConfig]] = []
    config = base
    for a in amendments:
        config = amended(config, [(a.key, a.new)])
        if not a.key.startswith("risk."):
            continue
        if steps and steps[-1][0] == a.after_bar_ms:
            steps.pop()
        steps.append((a.after_bar_ms, config.risk))
    return steps


class ScheduledRisk:
    """A RiskEngine whose rules change after the bars where risk keys were amended, so a
    replay (continue, restart) or `njord verify` decides every bar under the limits that
    were in force at that bar."""

    def __init__(
        self,
        first: RiskEngine,
        steps: list[tuple[int | None, RiskEngine]],
        last_bar_ms: Callable[[], int | None],
    ) -> None:
        self._first, self._steps, self._last_bar_ms = first, steps, last_bar_ms

    def _now(self) -> RiskEngine:
        last, rules = self._last_bar_ms(), self._first
        for after, later in self._steps:
            if after is None or (last is not None and after <= last):
                rules = later
        return rules

    def check(self, inputs: RiskInputs) -> Verdict:
        return self._now().check(inputs)

    def loss_breached(self, daily_realised_e8: int) -> bool:
        return self._now().loss_breached(daily_realised_e8)
