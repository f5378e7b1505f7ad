"""The EventBus contract (njord/events.py): after commit, in order, once; raising
subscribers detached; nothing from a rolled-back bar; deterministic in backtest."""

from __future__ import annotations

from pathlib import Path

import pytest

from njord import config as configuration
from njord import events as ev
from njord import launch
from njord.errors import StrategyError
from njord.loop import Stop
from tests.conftest import ROOT, query


def test_subscribers_get_events_in_publish_order_once() -> None:
    errors: list[str] = []
    bus = ev.Bus(errors.append)
    first: list[ev.Event] = []
    second: list[ev.Event] = []
    bus.subscribe(first.append)
    bus.subscribe(second.append)
    sent = [ev.AlertRaised(kind="bar_gap", ts_ms=i, msg=str(i)) for i in range(5)]
    bus.publish(sent[:2])
    bus.publish(sent[2:])
    assert first == second == sent
    assert errors == []


def test_a_raising_subscriber_is_detached_and_reported_the_rest_go_on() -> None:
    errors: list[str] = []
    bus = ev.Bus(errors.append)
    got: list[ev.Event] = []
    calls = []

    def broken(event: ev.Event) -> None:
        calls.append(event)
        raise ValueError("nope")

    bus.subscribe(broken)
    bus.subscribe(got.append)
    sent = [ev.AlertCleared(kind="bar_gap", ts_ms=i) for i in range(3)]
    bus.publish(sent)
    assert got == sent
    assert len(calls) == 1  # detached after its first failure
    assert len(errors) == 1
    assert "broken raised on AlertCleared and was detached" in errors[0]
    assert not ev.Bus(errors.append).active
    assert bus.active


def _backtest(data: Path, db: Path, *sets: str) -> launch.Launch:
    loaded = configuration.load(
        file=None,
        env={},
        sets=[f'data.path="{data}"', *sets],
    )
    return launch.backtest(
        loaded.config, env_prefix="NJORD_", db_path=db, out_dir=db.parent / "out", echo=False
    )


def _events_of(data: Path, db: Path, *sets: str) -> list[ev.Event]:
    run = _backtest(data, db, *sets)
    seen: list[ev.Event] = []
    run.session.writer.bus.subscribe(seen.append)
    launch.drive(run, stop=Stop(), progress=lambda _: None)
    run.session.close()
    return seen


def test_a_backtest_publishes_what_it_committed_deterministically(
    sample_week: Path, tmp_path: Path
) -> None:
    a = _events_of(sample_week, tmp_path / "a" / "s.db")
    b = _events_of(sample_week, tmp_path / "b" / "s.db")
    assert a[1:-1] == b[1:-1]  # deterministic in backtest (the ends carry the run id)
    assert isinstance(a[0], ev.SessionStarted)
    assert a[0].mode == "backtest"
    fills = [e for e in a if isinstance(e, ev.Filled)]
    stored = query(tmp_path / "a" / "s.db", "SELECT fill_id, price_e8 FROM fills ORDER BY fill_id")
    assert [(f.fill_id, f.price_e8) for f in fills] == stored
    assert len(fills) > 10
    commits = [e for e in a if isinstance(e, ev.BarsCommitted)]
    assert sum(c.bars for c in commits) == 3 * 1440
    firsts = [c.first_ts_ms for c in commits]
    assert firsts == sorted(firsts)
    # every event that is about a bar comes after the commit before it and with its own
    ends = [c.last_ts_ms for c in commits]
    position = 0
    for event in a:
        if isinstance(event, ev.BarsCommitted):
            position += 1
        elif isinstance(event, ev.Filled):
            assert event.ts_ms <= ends[position], "published with the commit that holds it"
    decided = [e for e in a if isinstance(e, ev.Decided)]
    assert len(decided) == query(tmp_path / "a" / "s.db", "SELECT count(*) FROM intents")[0][0]
    assert isinstance(a[-1], ev.SessionStopped)
    assert a[-1].status == "finished"


def test_a_rolled_back_bar_publishes_nothing(
    sample_week: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "e2e"))
    db = tmp_path / "s.db"
    run = _backtest(
        sample_week, db, 'strategy.name="raising_strategy:RaiseAt"', "runtime.commit_every=1"
    )
    seen: list[ev.Event] = []
    run.session.writer.bus.subscribe(seen.append)
    with pytest.raises(StrategyError):
        launch.drive(run, stop=Stop(), progress=lambda _: None)
    commits = [e for e in seen if isinstance(e, ev.BarsCommitted)]
    assert sum(c.bars for c in commits) == 100  # the 101st bar raised and rolled back
    assert query(db, "SELECT count(*) FROM equity") == [(100,)]
    assert max(c.last_ts_ms for c in commits) == query(db, "SELECT max(ts_ms) FROM equity")[0][0]
    assert isinstance(seen[-1], ev.SessionStopped)
    assert seen[-1].status == "failed"
