"""A seed's plan: the simulator's faults and the session's kill instants, drawn from
`random.Random(seed)` alone (the same seed draws the same plan, byte for byte), expressed as
bar positions and phase names so a report can say where each kill landed."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import msgspec

from njord.core.time import MINUTE_MS
from njord.sim.faults import Fault, FaultConfig, Outage

KLINES = "GET /api/v3/klines"
ORDER = "POST /api/v3/order"
# The phases a kill lands in (njord.killpoints), and a clean stop (SIGINT) then restart.
BAR_PHASES = ("decided", "sent", "commit", "committed")
PHASES = (*BAR_PHASES, "rebuild", "stop")
KILLS_PER_SEED = 3
MIN_BARS = 60  # room for every phase, a delayed and a missing stretch of klines
STALL_SHARE = 0.25  # seeds whose venue stalls past the client's timeout (each costs it)
CLIENT_TIMEOUT_S = 10.0  # njord.adapters.binance.BinanceClient's request timeout


class Kill(msgspec.Struct, frozen=True):
    """Kill at `phase` of bar `bar` (1 = the session's first bar); `rebuild`: while the
    restart after the previous kill rebuilds bar `bar`; `stop`: SIGINT once `bar` is in."""

    bar: int
    phase: str

    def label(self) -> str:
        return f"{self.phase}@{self.bar}"


class BalanceChange(msgspec.Struct, frozen=True):
    """A deposit made by hand on the venue while the session is down after kill `after`."""

    after: int
    asset: str
    delta: str


class SeedPlan(msgspec.Struct, frozen=True, kw_only=True):
    seed: int
    mode: str
    bars: int
    speed: float  # market minutes per wall minute: the bars take about 4 s to close
    faults: FaultConfig
    kills: list[Kill]
    balance_change: BalanceChange | None
    recv_window_ms: int

    def fault_counts(self) -> dict[str, int]:
        """Faults injected, by kind (request faults at their count; the rest once)."""
        counts: dict[str, int] = {}
        for fault in self.faults.faults:
            key = fault_kind(fault)
            counts[key] = counts.get(key, 0) + fault.count
        for outage in self.faults.klines_outages:
            key = "klines_missing" if outage.missing else "klines_delayed"
            counts[key] = counts.get(key, 0) + 1
        skew = abs(self.faults.time_skew_ms)
        if skew:
            key = "skew_beyond_recv_window" if skew > self.recv_window_ms else "skew_within"
            counts[key] = 1
        if self.faults.partial_fill_parts > 1:
            counts["partial_fills"] = 1
        if self.balance_change is not None:
            counts["balance_change"] = 1
        return dict(sorted(counts.items()))


def fault_kind(fault: Fault) -> str:
    if fault.kind in ("500", "503"):
        return "5xx_after_execution" if fault.executed else "5xx_before_execution"
    if fault.kind == "drop":
        return "drop_after_execution" if fault.executed else "drop"
    if fault.kind == "timeout":
        return "stall_past_timeout"
    return {"429": "429_burst", "418": "418_ban"}[fault.kind]


def draw(seed: int, *, bars: int, mode: str, first_ms: int, recv_window_ms: int) -> SeedPlan:
    """The plan of `seed`. Every draw is made in a fixed order whatever the mode, so a
    seed's kills and klines outages are the same in paper and live; the order faults aim
    at the order endpoint in live, at klines in paper (whose orders never leave the
    process), and partial fills and the balance change are live's alone."""
    rng = random.Random(seed)
    faults = _request_faults(rng, order=ORDER if mode == "live" else KLINES)
    outages = _outages(rng, bars=bars, first_ms=first_ms)
    within = rng.randint(200, recv_window_ms // 2)
    beyond = recv_window_ms + rng.randint(1_000, 5_000)
    skew = (beyond if rng.random() < 0.5 else within) * rng.choice((-1, 1))
    parts = rng.randint(2, 3)
    kills = _kills(rng, bars)
    change = BalanceChange(
        after=rng.randrange(len(kills)), asset="USDT", delta=f"{rng.randint(10, 100)}.5"
    )
    live = mode == "live"
    return SeedPlan(
        seed=seed,
        mode=mode,
        bars=bars,
        speed=max(600.0, bars * 15.0),
        faults=FaultConfig(
            seed=seed,
            time_skew_ms=skew,
            partial_fill_parts=parts if live else 1,
            faults=faults,
            klines_outages=outages,
        ),
        kills=kills,
        balance_change=change if live else None,
        recv_window_ms=recv_window_ms,
    )


def _request_faults(rng: random.Random, *, order: str) -> list[Fault]:
    """Small counts at intervals that interleave them with answered requests (failures in
    a row grow the client's backoff): each fires early in a seed, whatever the timing."""
    faults = [
        Fault(
            endpoint=KLINES,
            kind="429",
            every=rng.randint(4, 6),
            count=rng.randint(2, 3),
            retry_after_s=rng.choice((0.1, 0.2, 0.5)),
        ),
        Fault(endpoint=KLINES, kind="418", every=rng.randint(9, 13), count=1, retry_after_s=1.0),
        Fault(
            endpoint=order,
            kind=rng.choice(("500", "503")),
            every=rng.randint(5, 8),
            count=rng.randint(1, 2),
        ),
        Fault(
            endpoint=order,
            kind=rng.choice(("500", "503")),
            every=rng.randint(7, 10),
            count=1,
            executed=True,
        ),
        Fault(endpoint=order, kind="drop", every=rng.randint(6, 9), count=1, executed=True),
    ]
    if rng.random() < STALL_SHARE:
        faults.append(
            Fault(
                endpoint=order,
                kind="timeout",
                every=rng.randint(3, 6),
                count=1,
                seconds=CLIENT_TIMEOUT_S + 0.5,
                executed=rng.random() < 0.5,
            )
        )
    return faults


def _outages(rng: random.Random, *, bars: int, first_ms: int) -> list[Outage]:
    """A delayed stretch in the first half, and in half the seeds two bars that never
    arrive, after the first third, early enough that the feed gives up on them (30 bars) before the
    last bar. Missing bars change the decisions, so each such stretch needs its own
    uninterrupted run to compare with: there are three places for it, not `bars`."""
    delayed = rng.randint(5, bars // 2)
    outages = [Outage(start=_iso(first_ms, delayed), minutes=rng.randint(2, 6))]
    if rng.random() < 0.5:
        first, last = bars // 3, bars - 35  # a reference run gives up at its last bar + 1
        missing = first + rng.randrange(3) * (last - first) // 2
        outages.append(Outage(start=_iso(first_ms, missing), minutes=2, missing=True))
    return outages


def _iso(first_ms: int, position: int) -> str:
    """Bar `position` (1-based) as the outage's start, market time UTC."""
    at = datetime.fromtimestamp((first_ms + (position - 1) * MINUTE_MS) / 1000, tz=UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S")


def _kills(rng: random.Random, bars: int) -> list[Kill]:
    """Three of the five kill phases and a clean stop, in a seeded order, at increasing
    bars; a rebuild kill follows another kill and lands on a bar that restart has to
    rebuild. Every phase is hit across seeds; each kill costs a restart (a second of
    CPU), and more per seed would not fit CI's 3 minutes for 20 seeds on 2 cores."""
    phases = [*rng.sample((*BAR_PHASES, "rebuild"), KILLS_PER_SEED), "stop"]
    rng.shuffle(phases)
    if phases[0] == "rebuild":
        phases[0], phases[1] = phases[1], phases[0]
    positions = sorted(rng.sample(range(3, bars - 2), len(phases)))
    kills = []
    for i, (phase, position) in enumerate(zip(phases, positions, strict=True)):
        bar = rng.randint(1, positions[i - 1]) if phase == "rebuild" else position
        kills.append(Kill(bar, phase))
    return kills
