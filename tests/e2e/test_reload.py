"""`njord reload`: a running session's strategy swapped for its new params or code at the
next bar, each version kept in the db, and `verify`, a restart and `audit` following it."""

from __future__ import annotations

import signal
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import SAMPLE, invoke, njord_proc, query, wait_rows

# A user's strategy in a file of its own, so a test can change its code: it orders on
# every bar and tags each order with its code's mark, its param and the bars it has seen
# (warm-up included: its counter is state, snapshotted and restored).
TAGGER = """
from decimal import Decimal

import msgspec

from njord.core.strategy import Context, Strategy
from njord.records import Bar, OrderIntent, Side

MARK = "{mark}"


class TaggerParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    k: int = 1


class Count(msgspec.Struct, frozen=True, array_like=True):
    seen: int


class Tagger(Strategy):
    Params = TaggerParams
    history = 2

    def __init__(self, params: TaggerParams) -> None:
        super().__init__(params)
        self.seen = 0

    def on_bar(self, ctx: Context, symbol: str, bar: Bar) -> list[OrderIntent]:
        self.seen += 1
        side = Side.SELL if ctx.state.position_e8(symbol) > 0 else Side.BUY
        # Its history must end at this bar: a swapped-in version steps its own buffers.
        stale = "" if ctx.history(symbol, bar.timeframe, 2).close[-1] == bar.close else "-stale"
        tag = f"{{MARK}}{{self.params.k}}-{{self.seen}}{{stale}}"
        return [OrderIntent(symbol=symbol, side=side, qty=Decimal("0.001"), tag=tag)]

    def snapshot_state(self) -> bytes:
        return self.encode_state(Count(self.seen))

    def restore_state(self, data: bytes) -> None:
        self.seen = self.decode_state(data, Count).seen
"""

BARS_FROM = "2024-01-01T00:00:00"


def _config(tmp_path: Path, name: str, *, k: int, bars: int, extra: str = "") -> Path:
    path = tmp_path / name
    end = (datetime.fromisoformat(BARS_FROM) + timedelta(minutes=bars)).isoformat()
    path.write_text(
        f'[data]\npath = "{SAMPLE}"\nstart = "{BARS_FROM}"\nend = "{end}"\n'
        f'[strategy]\nname = "{_file(tmp_path)}:Tagger"\nparams = {{ k = {k} }}\n{extra}',
        encoding="utf-8",
    )
    return path


def _file(tmp_path: Path) -> Path:
    """A module name of its own per test: tests share the process that imports it."""
    return tmp_path / f"tagger_{tmp_path.name}.py"


def _tagger(tmp_path: Path, mark: str) -> None:
    _file(tmp_path).write_text(TAGGER.format(mark=mark), encoding="utf-8")


def _reload(tmp_path: Path, db_path: Path, config: Path) -> str:
    """As an operator runs it: a process of its own, importing the strategy as it is now."""
    done = njord_proc("reload", "--db", str(db_path), "--config", str(config), cwd=tmp_path)
    out, err = done.communicate(timeout=60)
    assert done.returncode == 0, err
    return out


def _start(tmp_path: Path, config: Path, pace_ms: int) -> tuple[Path, subprocess.Popen[str]]:
    db_path = tmp_path / "s.db"
    args = ["backtest", "--config", str(config), "--db", str(db_path), "--out"]
    args += [str(tmp_path / "out"), "--quiet", "--no-report", "--pace-ms", str(pace_ms)]
    return db_path, njord_proc(*args, cwd=tmp_path)


def _tags(db_path: Path) -> list[tuple[int, str]]:
    rows = query(db_path, "SELECT bar_ts_ms, tag FROM intents WHERE seq < 1000000 ORDER BY 1")
    return [(int(str(ts)), str(tag)) for ts, tag in rows]


def _applied(db_path: Path) -> list[tuple[int, int]]:
    rows = query(db_path, "SELECT bar_ts_ms, version FROM controls WHERE command = 'reload'")
    return [(int(str(ts)), int(str(v))) for ts, v in rows]


def test_a_reloaded_param_and_code_are_in_force_from_the_next_bar_and_verify_passes(
    tmp_path: Path,
) -> None:
    _tagger(tmp_path, "a")
    first = _config(tmp_path, "first.toml", k=1, bars=120)
    db_path, proc = _start(tmp_path, first, pace_ms=40)
    try:
        wait_rows(db_path, "SELECT 1 FROM equity LIMIT 1 OFFSET 19")
        # A new param: posted, applied at the session's next bar.
        second = _config(tmp_path, "second.toml", k=2, bars=120)
        assert "version 1 (k 1 -> 2) posted" in _reload(tmp_path, db_path, second)
        wait_rows(db_path, "SELECT 1 FROM controls WHERE version = 1 AND applied_ms > 0")
        wait_rows(db_path, "SELECT 1 FROM equity LIMIT 1 OFFSET 49")
        # New code, same params: its source is kept with the version.
        _tagger(tmp_path, "b")
        assert "version 2 (code sha256" in _reload(tmp_path, db_path, second)
        assert proc.wait(timeout=120) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        proc.kill()
    (one, v1), (two, v2) = _applied(db_path)
    assert (v1, v2) == (1, 2)
    assert one < two
    tags = _tags(db_path)
    assert len(tags) == 120
    for n, (ts, tag) in enumerate(tags, start=1):
        want = "a1" if ts < one else "a2" if ts < two else "b2"
        # Warmed on every bar before it took over: its count goes on unbroken.
        assert tag == f"{want}-{n}", (ts, tag)
    (source,) = query(db_path, "SELECT source FROM strategy_versions WHERE version = 2")[0]
    assert 'MARK = "b"' in str(source)
    # Both versions' code is in the db: verify re-runs each over its bars, with the file
    # changed again (no version's code is on disk any more).
    _tagger(tmp_path, "c")
    verified = invoke("verify", str(db_path))
    assert verified.exit_code == 0, verified.output
    assert invoke("audit", str(db_path)).exit_code == 0


@pytest.mark.parametrize("killed_at", [60, 1500])
def test_a_session_killed_after_a_reload_carries_on_with_the_version_in_force(
    tmp_path: Path, killed_at: int
) -> None:
    """Killed after a reload: at bar 60 the restart rebuilds from the first bar and swaps
    the version in where the log says it was; at bar 1,500 it restores the reloaded
    version from its strategy snapshot of bar 1,440 and rebuilds the bars after it."""
    _tagger(tmp_path, "a")
    bars = 1600
    first = _config(tmp_path, "first.toml", k=1, bars=bars)
    db_path, proc = _start(tmp_path, first, pace_ms=1)
    try:
        wait_rows(db_path, "SELECT 1 FROM equity LIMIT 1 OFFSET 9")
        _reload(tmp_path, db_path, _config(tmp_path, "second.toml", k=2, bars=bars))
        wait_rows(db_path, "SELECT 1 FROM controls WHERE applied_ms > 0")
        wait_rows(db_path, f"SELECT 1 FROM equity LIMIT 1 OFFSET {killed_at - 1}", timeout=120)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
    ((at, _),) = _applied(db_path)
    snapped = query(db_path, f"SELECT count(*) FROM strategy_snapshots WHERE bar_ts_ms > {at}")
    assert (int(str(snapped[0][0])) > 0) == (killed_at > 1440)
    carried = invoke("continue", str(db_path), "--quiet", "--out", str(tmp_path / "out2"))
    assert carried.exit_code == 0, carried.output
    tags = _tags(db_path)
    assert len(tags) == bars
    for n, (ts, tag) in enumerate(tags, start=1):
        assert tag == f"{'a1' if ts < at else 'a2'}-{n}", (ts, tag)
    assert invoke("verify", str(db_path)).exit_code == 0


def test_reload_of_one_sleeve_swaps_that_strategy_alone(tmp_path: Path) -> None:
    _tagger(tmp_path, "a")
    end = (datetime.fromisoformat(BARS_FROM) + timedelta(minutes=90)).isoformat()

    def config(name: str, k_two: int) -> Path:
        path = tmp_path / name
        sleeves = "".join(
            f'[[strategies]]\nid = "{sid}"\nname = "{_file(tmp_path)}:Tagger"\n'
            f"allocation = 0.5\nparams = {{ k = {k} }}\n"
            for sid, k in (("one", 1), ("two", k_two))
        )
        path.write_text(
            f'[data]\npath = "{SAMPLE}"\nstart = "{BARS_FROM}"\nend = "{end}"\n{sleeves}',
            encoding="utf-8",
        )
        return path

    db_path, proc = _start(tmp_path, config("first.toml", 1), pace_ms=40)
    try:
        wait_rows(db_path, "SELECT 1 FROM equity LIMIT 1 OFFSET 19")
        # Both sleeves' params changed in the file; --strategy reloads only the one named.
        both = config("both.toml", 5).read_text(encoding="utf-8").replace("k = 1", "k = 9")
        (tmp_path / "both.toml").write_text(both, encoding="utf-8")
        done = njord_proc(
            "reload",
            "--db",
            str(db_path),
            "--config",
            str(tmp_path / "both.toml"),
            "--strategy",
            "two",
            cwd=tmp_path,
        )
        out, err = done.communicate(timeout=60)
        assert done.returncode == 0, err
        assert out.startswith("strategy two: version 1 (k 1 -> 5)")
        assert proc.wait(timeout=120) == 0
    finally:
        proc.kill()
    ((at, _),) = _applied(db_path)
    rows = query(db_path, "SELECT strategy_id, bar_ts_ms, tag FROM intents WHERE seq < 1000000")
    for sid, ts, tag in rows:
        k = 5 if sid == "two" and int(str(ts)) >= at else 1
        assert str(tag).startswith(f"a{k}-"), (sid, ts, tag)
    assert invoke("verify", str(db_path)).exit_code == 0


@pytest.fixture
def stopped(tmp_path: Path) -> Path:
    """A session killed after a few bars: not finished, so a reload would be posted."""
    _tagger(tmp_path, "a")
    db_path, proc = _start(tmp_path, _config(tmp_path, "first.toml", k=1, bars=600), 20)
    try:
        wait_rows(db_path, "SELECT 1 FROM equity LIMIT 1 OFFSET 4")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return db_path


def _refused(db: Path, config: Path, said: str) -> None:
    """`njord reload` of `config` into `db` exits 2 with one line saying `said`, and posts
    no control."""
    before = query(db, "SELECT count(*) FROM controls")
    answer = invoke("reload", "--db", str(db), "--config", str(config))
    assert answer.exit_code == 2, answer.output
    assert said in answer.output
    assert len(answer.output.strip().splitlines()) == 1
    assert query(db, "SELECT count(*) FROM controls") == before


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ('params = { k = "two" }', "strategy params of Tagger"),
        ("params = { q = 2 }", "unknown strategy param 'q'"),
        ('timeframes = ["5m"]', "strategy.timeframes changed"),
        ('name = "sma_crossover"', "strategy.name changed"),
    ],
)
def test_a_reload_that_does_not_validate_changes_nothing(
    tmp_path: Path, stopped: Path, change: str, said: str
) -> None:
    text = _config(tmp_path, "first.toml", k=1, bars=600).read_text(encoding="utf-8")
    table = text.index("[strategy]")
    lines = text[table:].splitlines()
    key = change.split(" =")[0]
    kept = [line for line in lines if not line.startswith(f"{key} =")]
    bad = tmp_path / "bad.toml"
    bad.write_text(text[:table] + "\n".join([*kept, change]) + "\n", encoding="utf-8")
    _refused(stopped, bad, said)
    assert query(stopped, "SELECT count(*) FROM strategy_versions") == [(0,)]


def test_a_reload_of_broken_code_or_of_a_finished_session_changes_nothing(
    tmp_path: Path, stopped: Path
) -> None:
    config = _config(tmp_path, "first.toml", k=1, bars=600)
    _file(tmp_path).write_text("def broken(:\n", encoding="utf-8")
    answer = invoke("reload", "--db", str(stopped), "--config", str(config))
    assert answer.exit_code == 2, answer.output
    assert "SyntaxError" in answer.output
    _tagger(tmp_path, "a")
    unchanged = invoke("reload", "--db", str(stopped), "--config", str(config))
    assert unchanged.exit_code == 0
    assert "nothing to reload" in unchanged.output
    no_sleeve = invoke("reload", "--db", str(stopped), "--config", str(config), "--strategy", "x")
    assert no_sleeve.exit_code == 2
    assert "has no strategy 'x'" in no_sleeve.output
    missing = invoke("reload", "--db", str(tmp_path / "none.db"), "--config", str(config))
    assert missing.exit_code == 2
    assert "does not exist" in missing.output
    assert query(stopped, "SELECT count(*) FROM controls") == [(0,)]
    finished = tmp_path / "done.db"
    done = invoke(
        "backtest",
        "--config",
        str(config),
        "--db",
        str(finished),
        "--out",
        str(tmp_path / "o"),
        "--quiet",
        "--no-report",
    )
    assert done.exit_code == 0, done.output
    again = _config(tmp_path, "k2.toml", k=2, bars=600)
    refused = invoke("reload", "--db", str(finished), "--config", str(again))
    assert refused.exit_code == 2
    assert "is finished" in refused.output


def test_a_reload_the_session_cannot_take_is_refused_before_anything_is_posted(
    tmp_path: Path,
) -> None:
    """Refused on what the session is, whatever its state: one that keeps no bars (nothing
    to warm a version on), and a config whose strategies are not the session's."""
    _tagger(tmp_path, "a")
    bare = tmp_path / "bare.db"
    config = _config(tmp_path, "first.toml", k=1, bars=30, extra="[store]\nstore_bars = false\n")
    args = ["backtest", "--config", str(config), "--db", str(bare), "--quiet", "--no-report"]
    assert invoke(*args, "--out", str(tmp_path / "o1")).exit_code == 0
    again = _config(tmp_path, "k2.toml", k=2, bars=30)
    refused = invoke("reload", "--db", str(bare), "--config", str(again))
    assert refused.exit_code == 2
    assert "keeps no bars (store.store_bars = false)" in refused.output

    sleeves = tmp_path / "sleeves.toml"
    end = (datetime.fromisoformat(BARS_FROM) + timedelta(minutes=30)).isoformat()
    sleeve = f'name = "{_file(tmp_path)}:Tagger"\nallocation = 0.5\n'
    sleeves.write_text(
        f'[data]\npath = "{SAMPLE}"\nstart = "{BARS_FROM}"\nend = "{end}"\n'
        f'[[strategies]]\nid = "one"\n{sleeve}[[strategies]]\nid = "two"\n{sleeve}',
        encoding="utf-8",
    )
    two = tmp_path / "two.db"
    args = ["backtest", "--config", str(sleeves), "--db", str(two), "--quiet", "--no-report"]
    assert invoke(*args, "--out", str(tmp_path / "o2")).exit_code == 0
    single = tmp_path / "single.db"
    args = ["backtest", "--config", str(again), "--db", str(single), "--quiet", "--no-report"]
    assert invoke(*args, "--out", str(tmp_path / "o3")).exit_code == 0
    one_only = tmp_path / "one.toml"
    one_only.write_text(sleeves.read_text(encoding="utf-8").split('[[strategies]]\nid = "two"')[0])
    for db, given, said in (
        (two, again, "runs several strategies ([[strategies]]); so must the config"),
        (single, sleeves, "runs one ([strategy]); so must the config"),
        (two, one_only, "no enabled [[strategies]] with id = 'two'"),
    ):
        _refused(db, given, said)
