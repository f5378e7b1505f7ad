"""One seed, end to end: a simulator with the seed's faults, the session started, killed at
each planned instant and carried on with `njord continue`, stopped cleanly once, halted at
the end; then `njord audit` and the invariants. A failing seed keeps its evidence."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import msgspec
import requests

from njord import killpoints, sim
from njord.core.time import MINUTE_MS
from njord.errors import NjordError
from njord.sim.faults import FaultConfig, Outage
from njord.sim.server import SimServer
from njord.store import controls, db
from njord.store import torture as rows
from njord.store.audit import audit
from njord.torture import invariants
from njord.torture.invariants import Check
from njord.torture.plan import Kill, SeedPlan, draw
from njord.torture.venues import PaperVenue, Venue

POSTER = "njord-torture"  # posted_by of the halt it posts: how its invariant finds it
RUN_TIMEOUT_S = 120.0  # one run of the session: a stall past the client's timeout fits
HALT_WAIT_S = 5.0
POLL_S = 0.05
MUTATION_ENV = "NJORD_TEST_RESEND_WITHOUT_QUERY"  # read by njord.wiring.carry_on alone


class Setup(msgspec.Struct, frozen=True, kw_only=True):
    """What every seed of one `njord torture` shares: the user's config and the options."""

    config_path: Path
    sets: tuple[str, ...]
    env_prefix: str
    mode: str
    bars: int
    out: Path
    data: Path
    symbol: str
    quote: str
    base: str
    first_ms: int
    initial_cash: Decimal
    recv_window_ms: int

    @property
    def end_ms(self) -> int:
        return self.first_ms + self.bars * MINUTE_MS

    def session_args(self, db_path: Path, url: str, *, poll_s: float) -> list[str]:
        args = [self.mode, "--config", str(self.config_path), "--env-prefix", self.env_prefix]
        for item in self.sets:
            args += ["--set", item]
        start = datetime.fromtimestamp(self.first_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M")
        return [
            *args,
            "--db",
            str(db_path),
            "--set",
            f'venue.base_url="{url}"',
            "--set",
            f'data.start="{start}"',
            "--poll-s",
            str(poll_s),
        ]

    def reproduce(self, seed: int) -> str:
        """The one command that runs `seed` again, as it ran."""
        words = ["njord", "torture", "--config", str(self.config_path)]
        for item in self.sets:
            words += ["--set", item]
        words += ["--seed", str(seed), "--bars", str(self.bars), "--mode", self.mode]
        words += ["--out", str(self.out)]
        if self.env_prefix != "NJORD_":
            words += ["--env-prefix", self.env_prefix]
        prefix = f"{MUTATION_ENV}=1 " if os.environ.get(MUTATION_ENV) == "1" else ""
        return prefix + shlex.join(words)


class SeedResult(msgspec.Struct, kw_only=True):
    seed: int
    kills: dict[str, int]  # kills made, by phase
    stops: int  # clean stops (SIGINT) then restarts
    missed: list[str]  # planned kills the session never reached (it ended first)
    planned: list[str]  # the kill instants, phase@bar
    faults: dict[str, int]
    checks: list[Check]
    reproduce: str
    kept: str | None  # where a failing seed's db, order log and plan are
    wall_s: float

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


class References:
    """Uninterrupted runs over the same bars, one per set of klines that never arrive
    (a missing bar changes what a strategy decides), shared by every seed."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self._lock = threading.Lock()
        self._keys: dict[tuple[tuple[str, int], ...], threading.Lock] = {}
        self._done: dict[tuple[tuple[str, int], ...], dict[str, list[tuple[object, ...]]]] = {}

    def get(self, missing: list[Outage]) -> dict[str, list[tuple[object, ...]]]:
        key = tuple((o.start, o.minutes) for o in missing)
        with self._lock:
            own = self._keys.setdefault(key, threading.Lock())
            n = len(self._keys)
        with own:  # seeds that need another reference do not wait for this one
            if key not in self._done:
                self._done[key] = self._run(missing, n)
            return self._done[key]

    def _run(self, missing: list[Outage], n: int) -> dict[str, list[tuple[object, ...]]]:
        setup = self.setup
        work = setup.out / f"reference-{n}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        server = _simulator(setup, FaultConfig(klines_outages=missing), speed=0, settled=True)
        try:
            expected = expected_bars(server, setup.symbol)
            path = work / "session.db"
            args = [
                *setup.session_args(path, server.url, poll_s=0.01),
                "--bars",
                str(len(expected)),
            ]
            done = subprocess.run(_njord(args), env=_env(None), capture_output=True, text=True)
            if done.returncode != 0:
                raise NjordError(f"the uninterrupted reference run failed: {_last(done.stderr)}")
            conn = db.open_reader(path)
            try:
                return rows.decisions(conn)
            finally:
                conn.close()
        finally:
            _close(server)
            shutil.rmtree(work, ignore_errors=True)


def _simulator(setup: Setup, faults: FaultConfig, *, speed: float, settled: bool) -> SimServer:
    """The venue of one seed: the user's bars from the first one on, `setup.bars` of them;
    `settled`: all closed already (a reference run), else one, the rest at `speed`."""
    server = sim.build(
        setup.data,
        symbol=setup.symbol,
        speed=speed,
        start_ms=(setup.end_ms if settled else setup.first_ms) + MINUTE_MS,
        balances={setup.quote: setup.initial_cash},
        faults=faults,
        first_ms=setup.first_ms,
        end_ms=setup.end_ms,
    )
    server.start_in_thread()
    return server


def _close(server: SimServer) -> None:
    server.shutdown()
    server.server_close()


def expected_bars(server: SimServer, symbol: str) -> list[int]:
    """The bars the venue serves, ever: its replay less the klines that never arrive."""
    market = server.state.exchange.markets[symbol]
    gone = [(a, b) for a, b, forever in market.hidden if forever]
    return [t for t in market.ts if not any(a <= t < b for a, b in gone)]


def _njord(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "njord", *args]


def _env(kill_at: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NJORD_KILL_AT"}
    if kill_at is not None:
        env["NJORD_KILL_AT"] = kill_at
    return env


def _last(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


class Runs:
    """The session's runs against one simulator: each a process, killed or stopped."""

    def __init__(self, setup: Setup, plan: SeedPlan, server: SimServer, work: Path) -> None:
        self.setup, self.plan, self.server = setup, plan, server
        self.db = work / "session.db"
        self.log = work / "runs.log"
        self.expected = expected_bars(server, setup.symbol)
        self.kills: Counter[str] = Counter()
        self.stops = 0
        self.missed: list[str] = []
        self.problems: list[str] = []
        self.started = False

    def all(self) -> None:
        for i, kill in enumerate(self.plan.kills):
            change = self.plan.balance_change
            if change is not None and change.after == i:
                self._by_hand(change.asset, change.delta)
            self._one(kill)
        self._one(None)

    def _by_hand(self, asset: str, delta: str) -> None:
        answer = requests.get(
            f"{self.server.url}/sim/balance", params={"asset": asset, "delta": delta}, timeout=5
        )
        if answer.status_code != 200:
            self.problems.append(f"the by-hand balance change failed: {answer.text}")

    def _one(self, kill: Kill | None) -> None:
        """One run: to `kill`, or (None) to the last bar, then a halt and a SIGINT."""
        before = self.progress()
        if kill is not None and kill.phase != "rebuild" and self._done(before):
            self.missed.append(kill.label())  # the session has every bar already
            return
        args, spec = self._command(kill, before)
        label = kill.label() if kill is not None else "to the end"
        with self.log.open("a") as log:
            log.write(f"--- {label}: {shlex.join(args)} (NJORD_KILL_AT={spec})\n")
            log.flush()
            proc = subprocess.Popen(_njord(args), env=_env(spec), stdout=log, stderr=log)
            self.started = True
            began = time.monotonic()
            interrupted = self._watch(proc, kill, before)
            log.write(f"--- exit {proc.returncode} after {time.monotonic() - began:.1f} s\n")
        code = proc.returncode
        if kill is not None and kill.phase == "stop" and code == 0:
            self.stops += 1
        elif kill is not None and code == -signal.SIGKILL:
            self.kills[kill.phase] += 1
        elif interrupted and code == 130:
            if kill is not None:
                self.missed.append(label)
        else:
            self.problems.append(f"run {label} exited {code}: {_last(self.log.read_text())}")

    def _command(self, kill: Kill | None, before: rows.Progress) -> tuple[list[str], str | None]:
        """`njord continue` with the kill's `NJORD_KILL_AT`, after a first `njord paper`; a
        clean stop is the cron way, `njord paper --db D --bars N` ending at bar `kill.bar`."""
        first = self.setup.session_args(self.db, self.server.url, poll_s=0.05)
        if kill is not None and kill.phase == "stop":
            done = 0 if before.decided_ms is None else self._position(before.decided_ms)
            return [*first, "--bars", str(max(1, kill.bar - done))], None
        spec = None
        if kill is not None:
            spec = killpoints.spec_at(kill.phase, self.setup.first_ms + (kill.bar - 1) * MINUTE_MS)
        return (["continue", str(self.db)] if self.started else first), spec

    def _position(self, bar_ms: int) -> int:
        return (bar_ms - self.setup.first_ms) // MINUTE_MS + 1

    def _done(self, progress: rows.Progress) -> bool:
        return progress.last_ms is not None and progress.last_ms >= self.expected[-1]

    def _watch(
        self, proc: subprocess.Popen[bytes], kill: Kill | None, before: rows.Progress
    ) -> bool:
        """Wait for the run to end. Once it is up (its rebuild committed, or a new
        session's first bar) and has every bar, stop it with SIGINT, halted first when it
        is the last run; True when it was stopped so."""
        deadline = time.monotonic() + RUN_TIMEOUT_S
        up = False
        while proc.poll() is None:
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                self.problems.append(f"run {kill.label() if kill else 'to the end'} hung")
                return False
            progress = self.progress()
            up = up or progress.rebuilds > before.rebuilds or progress.bars > before.bars
            if up and self._done(progress):
                if kill is None:
                    self._halt()
                proc.send_signal(signal.SIGINT)
                proc.wait(RUN_TIMEOUT_S)
                return True
            time.sleep(POLL_S)
        return False

    def _halt(self) -> None:
        """Post a halt as an operator would, and wait (bounded) for the session to apply it."""
        controls.post(self.db, "halt", "njord torture", by=POSTER)
        deadline = time.monotonic() + HALT_WAIT_S
        while time.monotonic() < deadline:
            conn = db.open_reader(self.db)
            try:
                halts = rows.controls_by(conn, POSTER)
            finally:
                conn.close()
            if halts and halts[-1][1] is not None:
                return
            time.sleep(POLL_S)

    def progress(self) -> rows.Progress:
        try:
            conn = db.open_reader(self.db)
        except NjordError:
            return rows.Progress(0, None, None, 0)  # not created yet
        try:
            return rows.progress(conn)
        finally:
            conn.close()


def run_seed(setup: Setup, seed: int, references: References) -> SeedResult:
    started = time.monotonic()
    plan = draw(
        seed,
        bars=setup.bars,
        mode=setup.mode,
        first_ms=setup.first_ms,
        recv_window_ms=setup.recv_window_ms,
    )
    work = setup.out / f"seed-{seed}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    server = _simulator(setup, plan.faults, speed=plan.speed, settled=False)
    try:
        runs = Runs(setup, plan, server, work)
        runs.all()
        missing = [o for o in plan.faults.klines_outages if o.missing]
        checks = _checks(setup, runs, _venue(setup, runs), references.get(missing))
        kept = None
        if not all(c.ok for c in checks):
            kept = str(work)
            _keep(work, plan, server, setup.reproduce(seed))
    finally:
        _close(server)
    if kept is None:
        shutil.rmtree(work, ignore_errors=True)
    return SeedResult(
        seed=seed,
        kills=dict(sorted(runs.kills.items())),
        stops=runs.stops,
        missed=runs.missed,
        planned=[k.label() for k in plan.kills],
        faults=plan.fault_counts(),
        checks=checks,
        reproduce=setup.reproduce(seed),
        kept=kept,
        wall_s=round(time.monotonic() - started, 1),
    )


def _venue(setup: Setup, runs: Runs) -> Venue:
    return PaperVenue(
        runs.db,
        base=setup.base,
        quote=setup.quote,
        initial_cash_e8=int(setup.initial_cash * 100_000_000),
    )


def _checks(
    setup: Setup, runs: Runs, venue: Venue, reference: dict[str, list[tuple[object, ...]]]
) -> list[Check]:
    conn = db.open_reader(runs.db)
    try:
        cash, position = rows.holdings(conn, setup.symbol)
        external = {subject for _, subject in rows.external_events(conn)}
        checks = [
            Check("runs_as_planned", "; ".join(runs.problems) or None),
            invariants.no_duplicate_execution(venue),
            invariants.fills_exact(venue, rows.fills(conn)),
            invariants.book_equals_venue(
                venue,
                book_open=rows.open_orders(conn),
                book_balances={setup.quote: cash, setup.base: position},
                external=external,
            ),
            invariants.audit_passes(_audit(conn)),
            invariants.bars_once(rows.bar_times(conn), runs.expected),
            invariants.halt_within_1s(rows.controls_by(conn, POSTER)),
            invariants.decisions_equal(rows.decisions(conn), reference),
        ]
    finally:
        conn.close()
    return checks


def _audit(conn: db.Connection) -> list[str]:
    """`njord audit`'s checks (the command's own function), the failed ones."""
    return [f"{name}: {problem}" for name, problem in audit(conn) if problem is not None]


def _keep(work: Path, plan: SeedPlan, server: SimServer, command: str) -> None:
    """Beside the db and the runs' output: the plan and the simulator's order log."""
    (work / "plan.json").write_bytes(msgspec.json.format(msgspec.json.encode(plan)))
    exchange = server.state.exchange
    with exchange.lock:
        log = {
            "orders": [o.view() for o in exchange.orders.values()],
            "trades": list(exchange.trades),
        }
    (work / "venue-orders.json").write_text(json.dumps(log, indent=2, default=str))
    (work / "reproduce.txt").write_text(command + "\n")
