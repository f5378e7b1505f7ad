"""Observability outside the db: OpenMetrics from session dbs, `njord watch`, alert channels."""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from aiosmtpd.controller import Controller
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from njord import alerting, sim
from njord.alerting import Alert, Dispatcher
from njord.config import AlertsConfig
from njord.secrets import ChainedSecrets, EnvSecrets
from tests.conftest import ROOT, backtest_args, invoke, njord_proc, query, wait_rows
from tests.sim.conftest import FIRST_BAR_MS
from tests.sim.test_paper import live_args


def _metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample by (name, labels without the session identity)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = tuple(
                sorted((k, v) for k, v in s.labels.items() if k not in ("db", "session", "mode"))
            )
            out[(s.name, labels)] = float(s.value)
    return out


def test_metrics_parse_and_equal_status(sample_week: Path, tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    args = backtest_args(sample_week, path, "--no-report", "--set", "risk.notional_cap=9000")
    assert invoke(*args).exit_code == 0
    invoke("halt", "--db", str(path), "--reason", "check")  # pending: the state stays ACTIVE
    printed = invoke("metrics", str(path))
    assert printed.exit_code == 0, printed.output
    assert printed.output.rstrip().endswith("# EOF")
    got = _metrics(printed.output)
    status = json.loads(invoke("status", "--db", str(path), "--json").output)
    assert got[("njord_bars_total", ())] == status["bars"]
    assert got[("njord_equity", ())] == pytest.approx(status["equity"], abs=1e-8)
    assert got[("njord_pnl_intraday", ())] == pytest.approx(
        status["telemetry"]["pnl_intraday"], abs=1e-8
    )
    assert got[("njord_errors_total", ())] == status["telemetry"]["errors"]
    for reason, n in status["risk"]["blocks"].items():
        assert got[("njord_risk_blocks_total", (("reason", reason),))] == n
    assert status["risk"]["blocks"], "the cap blocks something, so the family is not empty"
    for state in ("ACTIVE", "REDUCING", "HALTED"):
        want = float(status["trading"]["state"] == state)
        assert got[("njord_trading_state", (("state", state),))] == want
    for order_status, n in status["orders"].items():
        assert got[("njord_orders_total", (("status", order_status),))] == n
    active = sum(1 for a in status["alerts"] if a["cleared_ms"] is None)
    assert got[("njord_alerts_active", ())] == active


def test_metrics_of_a_paper_session_bucket_its_latencies(tmp_path: Path) -> None:
    server = sim.build(
        ROOT / "sample_data" / "BTCUSDT-1m-2024-01.parquet",
        speed=0,
        start_ms=FIRST_BAR_MS + 200 * 60_000,
        balances={"USDT": Decimal(10_000)},
    )
    server.start_in_thread()
    path = tmp_path / "paper.db"
    try:
        assert invoke(*live_args("paper", path, server.url, "--bars", "200")).exit_code == 0
    finally:
        server.shutdown()
        server.server_close()
    got = _metrics(invoke("metrics", "--db", str(path)).output)
    status = json.loads(invoke("status", "--db", str(path), "--json").output)
    n = status["telemetry"]["decision_latency_ms"]["n"]
    assert got[("njord_decision_latency_seconds_count", ())] == n == 200
    assert got[("njord_decision_latency_seconds_bucket", (("le", "+Inf"),))] == n
    p50 = status["telemetry"]["decision_latency_ms"]["p50"] / 1000
    under = [
        v
        for (name, lb), v in got.items()
        if name.endswith("latency_seconds_bucket")
        and lb
        and lb[0][1] != "+Inf"
        and float(lb[0][1]) >= p50
    ]
    assert min(under) >= n / 2  # the bucket above the median holds at least half


def test_metrics_refuses_a_missing_db(tmp_path: Path) -> None:
    result = invoke("metrics", str(tmp_path / "nope.db"))
    assert result.exit_code == 2
    assert "no session db" in result.output
    assert "Traceback" not in result.output


# --- njord watch -------------------------------------------------------------------------


def test_watch_says_silent_and_died_only_for_the_killed_session(tmp_path: Path) -> None:
    """Three sessions: one running, one stopped cleanly, one killed with -9."""
    server = sim.build(
        ROOT / "sample_data" / "BTCUSDT-1m-2024-01.parquet",
        speed=60,  # a bar a second: the running session keeps committing
        start_ms=FIRST_BAR_MS + 100 * 60_000,
        balances={"USDT": Decimal(10_000)},
    )
    server.start_in_thread()
    folder = tmp_path / "runs"
    folder.mkdir()
    procs = []
    try:
        stopped = folder / "stopped.db"
        assert invoke(*live_args("paper", stopped, server.url, "--bars", "5")).exit_code == 0
        killed = folder / "killed.db"
        victim = njord_proc(*live_args("paper", killed, server.url, "--for", "60s"), cwd=ROOT)
        procs.append(victim)
        wait_rows(killed, "SELECT 1 FROM equity LIMIT 1 OFFSET 50")
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        running = folder / "running.db"
        alive = njord_proc(*live_args("paper", running, server.url, "--for", "20s"), cwd=ROOT)
        procs.append(alive)
        wait_rows(running, "SELECT 1 FROM equity LIMIT 1 OFFSET 100")  # caught up, following
        watch = njord_proc(
            "watch",
            str(folder),
            "--silent-after",
            "3",
            "--interval",
            "0.2",
            "--for",
            "6s",
            cwd=ROOT,
        )
        out, err = watch.communicate(timeout=60)
        assert watch.returncode == 0, err
        assert alive.poll() is None, "the running session was still running throughout"
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(30)
        server.shutdown()
        server.server_close()
    lines = out.splitlines()
    assert f"raised session_silent {killed}" in "\n".join(lines), out
    assert f"raised session_died {killed}" in "\n".join(lines), out
    assert not [ln for ln in lines if str(running) in ln or str(stopped) in ln], out
    assert "watching 3 session db(s)" in err
    # read-only: the killed session's db still says running, untouched by the watcher
    assert query(killed, "SELECT status FROM runs") == [("running",)]


@pytest.mark.parametrize(
    ("extra", "env", "needle"),
    [
        (["{tmp}/absent"], {}, "{tmp}/absent does not exist"),
        (
            ["{tmp}", "--config", "{tmp}/none.toml"],
            {},
            "config file {tmp}/none.toml does not exist",
        ),
        (["{tmp}", "--set", "alerts.webhook=true"], {}, "NJORD_ALERTS_WEBHOOK_URL"),
        (["{tmp}", "--metrics-port", "{port}"], {}, "cannot serve metrics on 127.0.0.1:{port}"),
        (["{tmp}", "--set", "alerts.max_per_hour=0"], {}, "alerts.max_per_hour"),
    ],
)
def test_bad_watch_arguments_are_one_line_usage_errors(
    tmp_path: Path, extra: list[str], env: dict[str, str], needle: str
) -> None:
    with socket.socket() as taken:  # a port something already listens on
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = [a.format(tmp=tmp_path, port=port) for a in extra]
        proc = njord_proc("watch", *args, "--once", cwd=tmp_path, env=env)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert needle.format(tmp=tmp_path, port=port) in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert out == ""


# --- channels ----------------------------------------------------------------------------


def _alert(kind: str = "bar_gap", event: str = "raised") -> Alert:
    return Alert(
        kind=kind,
        event="raised" if event == "raised" else "cleared",
        session="s-1",
        mode="paper",
        symbol="BTCUSDT",
        db="/x/s.db",
        msg="no bar since 01:00",
        ts_ms=1,
    )


class _Hook(BaseHTTPRequestHandler):
    bodies: list[dict[str, Any]]
    fail_first: int

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if type(self).fail_first > 0:
            type(self).fail_first -= 1
            self.send_response(503)
        else:
            type(self).bodies.append(body)
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def hook() -> Iterator[tuple[str, type[_Hook]]]:
    handler = type("Hook", (_Hook,), {"bodies": [], "fail_first": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/T0KEN-hook", handler
    server.shutdown()
    server.server_close()


def _vault(**values: str) -> ChainedSecrets:
    env = {f"NJORD_{k.upper()}": v for k, v in values.items()}
    return ChainedSecrets(EnvSecrets(env, "NJORD_"), None)


def test_webhook_retries_then_delivers_once(hook: tuple[str, type[_Hook]]) -> None:
    url, handler = hook
    handler.fail_first = 1
    targets = alerting.channels(AlertsConfig(webhook=True), _vault(alerts_webhook_url=url))
    sent = Dispatcher(targets, max_per_hour=5, wall_ms=lambda: 0).dispatch(_alert())
    assert [d.ok for d in sent] == [True]
    assert len(handler.bodies) == 1
    assert handler.bodies[0]["text"].startswith("njord raised: bar_gap (s-1)")
    assert "njord status --db /x/s.db" in handler.bodies[0]["text"]
    assert " on BTCUSDT: no bar since 01:00" in handler.bodies[0]["text"]


def test_a_failing_webhook_is_a_result_without_its_url() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    url = f"http://127.0.0.1:{port}/S3CRET-path"
    channel = alerting.WebhookChannel(alerting.Secret(url), 1.0, sleep=lambda s: None)
    [result] = Dispatcher([channel], max_per_hour=5, wall_ms=lambda: 0).dispatch(_alert())
    assert not result.ok
    assert "failed after 3 tries" in result.detail
    assert "S3CRET" not in result.detail


def test_webhook_without_its_secret_is_a_config_error() -> None:
    from njord.errors import ConfigError

    with pytest.raises(ConfigError, match="NJORD_ALERTS_WEBHOOK_URL"):
        alerting.channels(AlertsConfig(webhook=True), _vault())


def test_command_channel_gets_the_alert_on_stdin(tmp_path: Path) -> None:
    out = tmp_path / "got.json"
    script = f"import sys; open({str(out)!r}, 'w').write(sys.argv[1] + chr(10) + sys.stdin.read())"
    template = f"{sys.executable} -c {json.dumps(script)} {{title}}"
    targets = alerting.channels(AlertsConfig(command=template), _vault())
    [result] = Dispatcher(targets, max_per_hour=5, wall_ms=lambda: 0).dispatch(_alert())
    assert result.ok, result.detail
    title, body = out.read_text().split("\n", 1)
    assert title == "njord raised: bar_gap (s-1)"
    assert json.loads(body)["kind"] == "bar_gap"


def test_a_failing_command_is_a_result_not_a_crash() -> None:
    targets = alerting.channels(AlertsConfig(command="false"), _vault())
    [result] = Dispatcher(targets, max_per_hour=5, wall_ms=lambda: 0).dispatch(_alert())
    assert not result.ok
    assert result.detail.startswith("command exited 1")


def test_rate_limit_suppresses_past_max_per_hour(hook: tuple[str, type[_Hook]]) -> None:
    url, handler = hook
    now = [0]
    targets = alerting.channels(AlertsConfig(webhook=True), _vault(alerts_webhook_url=url))
    dispatcher = Dispatcher(targets, max_per_hour=2, wall_ms=lambda: now[0])
    results = [dispatcher.dispatch(_alert())[0] for _ in range(3)]
    assert [r.ok for r in results] == [True, True, False]
    assert "rate limited" in results[2].detail
    now[0] = 3_600_000  # an hour on: the window has room again
    assert dispatcher.dispatch(_alert())[0].ok
    assert len(handler.bodies) == 3


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[str] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.messages.append(envelope.content.decode())
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_email_reaches_a_local_smtp_server() -> None:
    inbox = _Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    smtp.start()
    try:
        config = AlertsConfig(
            email_to=["ops@example.org"],
            email_from="njord@example.org",
            smtp=f"127.0.0.1:{smtp.port}",
            starttls=False,
        )
        targets = alerting.channels(config, _vault())
        dispatcher = Dispatcher(targets, max_per_hour=5, wall_ms=lambda: 0)
        sent = [*dispatcher.dispatch(_alert()), *dispatcher.dispatch(_alert(event="cleared"))]
    finally:
        smtp.stop()
    assert [d.ok for d in sent] == [True, True], sent
    assert len(inbox.messages) == 2
    assert "Subject: njord raised: bar_gap (s-1)" in inbox.messages[0]
    assert "Subject: njord cleared: bar_gap (s-1)" in inbox.messages[1]


def test_watch_forwards_a_sessions_alerts_once_per_edge(
    tmp_path: Path, hook: tuple[str, type[_Hook]]
) -> None:
    """The alerts scenario of the paper tests (a bar gap, error bursts, a daily-loss halt),
    watched: one message per raise and one per clear, nothing sent twice."""
    from tests.sim.test_paper import test_alerts_fire_once_per_episode

    url, handler = hook
    folder = tmp_path / "w"
    folder.mkdir()
    watch = njord_proc(
        "watch",
        str(folder),
        "--interval",
        "0.1",
        "--for",
        "40s",
        "--set",
        "alerts.webhook=true",
        cwd=ROOT,
        env={"NJORD_ALERTS_WEBHOOK_URL": url},
    )
    try:
        test_alerts_fire_once_per_episode(folder)
        rows = query(folder / "alerts.db", "SELECT kind, cleared_ms IS NOT NULL FROM alerts")
        want = len(rows) + sum(1 for _, cleared in rows if cleared)
        deadline = time.monotonic() + 10
        while len(handler.bodies) < want and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        watch.send_signal(signal.SIGTERM)
        out, err = watch.communicate(timeout=30)
    assert watch.returncode == 0, err
    edges = sorted((b["kind"], b["event"]) for b in handler.bodies)
    expected = sorted([(k, "raised") for k, _ in rows] + [(k, "cleared") for k, c in rows if c])
    assert edges == expected, (edges, out)
    assert url not in out + err


# --- export --daily ----------------------------------------------------------------------


def test_export_daily_proves_each_day_and_the_days_link(sample_week: Path, tmp_path: Path) -> None:
    from njord.store.daily import verify_day

    path = tmp_path / "s.db"
    assert invoke(*backtest_args(sample_week, path, "--no-report")).exit_code == 0
    out = tmp_path / "days"
    result = invoke("export", "--db", str(path), "--daily", str(out))
    assert result.exit_code == 0, result.output
    days = sorted(p.name.split(".")[0] for p in out.glob("*.manifest.json"))
    assert days == ["2024-01-01", "2024-01-02", "2024-01-03"]
    heads = [verify_day(out, day) for day in days]
    manifests = [json.loads((out / f"{d}.manifest.json").read_text()) for d in days]
    assert [m["prev_hash"] for m in manifests[1:]] == heads[:-1]  # the days link up
    assert heads[-1] == query(path, "SELECT hash FROM decisions ORDER BY seq DESC LIMIT 1")[0][0]
    assert sum(m["bars"] for m in manifests) == 3 * 1440
    again = tmp_path / "again"
    invoke("export", "--db", str(path), "--daily", str(again))
    for f in sorted(out.iterdir()):
        assert f.read_bytes() == (again / f.name).read_bytes(), f.name  # same db, same bytes


def test_export_daily_detects_an_edited_record(sample_week: Path, tmp_path: Path) -> None:
    import gzip

    from njord.errors import MismatchError
    from njord.store.daily import verify_day

    path = tmp_path / "s.db"
    assert invoke(*backtest_args(sample_week, path, "--no-report")).exit_code == 0
    out = tmp_path / "days"
    invoke("export", "--db", str(path), "--daily", str(out))
    name = out / "2024-01-02.decisions.jsonl.gz"
    lines = gzip.decompress(name.read_bytes()).splitlines()
    rec = json.loads(lines[0])
    rec["payload"] = rec["payload"].replace("1", "2", 1)
    lines[0] = json.dumps(rec, sort_keys=True, separators=(",", ":")).encode()
    name.write_bytes(gzip.compress(b"\n".join(lines) + b"\n", mtime=0))
    manifest = json.loads((out / "2024-01-02.manifest.json").read_text())
    manifest["files"][name.name] = hashlib.sha256(name.read_bytes()).hexdigest()
    (out / "2024-01-02.manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(MismatchError, match="breaks the hash chain"):
        verify_day(out, "2024-01-02")


def test_export_without_a_destination_is_a_usage_error(sample_week: Path, tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    assert invoke(*backtest_args(sample_week, path, "--no-report")).exit_code == 0
    result = invoke("export", "--db", str(path))
    assert result.exit_code == 2
    assert "--daily" in result.output


# --- a session's own deliveries ----------------------------------------------------------

SMTP_PASSWORD = "sm7p-pa55-w0rd"


def _smtp_with_login(inbox: _Inbox) -> Controller:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def authenticate(
        server: object, session: object, envelope: object, mechanism: str, data: object
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.password.decode() == SMTP_PASSWORD
        return AuthResult(success=ok)

    return Controller(
        inbox,
        hostname="127.0.0.1",
        port=_free_port(),
        auth_require_tls=False,
        authenticator=authenticate,
    )


def test_a_paper_session_sends_each_alert_edge_once_to_every_channel(
    tmp_path: Path, hook: tuple[str, type[_Hook]]
) -> None:
    """A bar gap, an error burst and a daily-loss halt, forced through simulator faults:
    one webhook call and one email per raise and per clear; no secret in any byte written."""
    from njord.sim.faults import Fault, FaultConfig, Outage
    from tests.sim.test_paper import _sim

    url, handler = hook
    inbox = _Inbox()
    smtp = _smtp_with_login(inbox)
    smtp.start()
    faults = FaultConfig(
        faults=[Fault(endpoint="GET /api/v3/klines", kind="500", every=1, count=3)],
        klines_outages=[Outage(start="2024-01-01T01:00:00", minutes=20)],
    )
    server = _sim(70, faults)
    path = tmp_path / "alerts.db"
    channels = [
        "--set",
        "alerts.webhook=true",
        "--set",
        'alerts.email_to=["ops@example.org"]',
        "--set",
        'alerts.email_from="njord@example.org"',
        "--set",
        f'alerts.smtp="127.0.0.1:{smtp.port}"',
        "--set",
        "alerts.starttls=false",
    ]
    env = {"NJORD_ALERTS_WEBHOOK_URL": url, "NJORD_SMTP_PASSWORD": SMTP_PASSWORD}
    try:
        proc = njord_proc(
            *live_args(
                "paper",
                path,
                server.url,
                "--for",
                "10s",
                "--set",
                "risk.daily_loss_limit=5",
                *channels,
            ),
            cwd=ROOT,
            env=env,
        )
        wait_rows(path, "SELECT 1 FROM alerts WHERE kind = 'bar_gap'")
        requests.post(f"{server.url}/sim/advance?minutes=60", timeout=5)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        server.shutdown()
        server.server_close()
        smtp.stop()
    rows = query(path, "SELECT kind, cleared_ms IS NOT NULL FROM alerts ORDER BY seq")
    assert sorted(k for k, _ in rows) == ["bar_gap", "daily_loss_halt", "error_rate"]
    expected = sorted([(k, "raised") for k, _ in rows] + [(k, "cleared") for k, c in rows if c])
    assert ("bar_gap", "cleared") in expected
    assert sorted((b["kind"], b["event"]) for b in handler.bodies) == expected
    subjects = sorted(
        line.split("njord ", 1)[1]
        for m in inbox.messages
        for line in m.splitlines()
        if line.startswith("Subject:")
    )
    assert [s.split(" (")[0] for s in subjects] == sorted(f"{e}: {k}" for k, e in expected)
    deliveries = query(path, "SELECT channel, ok FROM alert_deliveries ORDER BY seq")
    assert sorted(deliveries) == sorted(
        [("webhook", 1)] * len(expected) + [("email", 1)] * len(expected)
    )
    status = json.loads(invoke("status", "--db", str(path), "--json").output)
    assert [c["channel"] for c in status["alert_channels"]] == ["webhook", "email"]
    assert all(c["last"]["ok"] for c in status["alert_channels"])
    table = invoke("status", str(path)).output
    assert "alerts via webhook" in table
    assert "alerts via email" in table
    exported = tmp_path / "export"
    assert invoke("export", "--db", str(path), "--out", str(exported)).exit_code == 0
    written = [path, *path.parent.glob("alerts.db-*"), *exported.iterdir()]
    for file in written:
        data = file.read_bytes()
        for secret in (url, url.split("/")[-1], SMTP_PASSWORD):
            assert secret.encode() not in data, (file.name, secret)
    assert url not in out + err
    assert SMTP_PASSWORD not in out + err


def test_a_failing_channel_is_an_alert_not_a_crash(tmp_path: Path) -> None:
    from tests.sim.test_paper import _sim

    server = _sim(300)
    path = tmp_path / "p.db"
    dead = f"http://127.0.0.1:{_free_port()}/hook"
    try:
        proc = njord_proc(
            *live_args(
                "paper",
                path,
                server.url,
                "--bars",
                "300",
                "--set",
                "alerts.webhook=true",
                "--set",
                "risk.daily_loss_limit=5",
            ),
            cwd=ROOT,
            env={"NJORD_ALERTS_WEBHOOK_URL": dead},
        )
        _, err = proc.communicate(timeout=120)
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 0, err
    assert query(path, "SELECT count(*) FROM alerts WHERE kind = 'daily_loss_halt'") == [(1,)]
    assert query(path, "SELECT count(*) FROM alerts WHERE kind = 'alert_channel'") == [(1,)]
    failed = query(path, "SELECT detail FROM alert_deliveries WHERE ok = 0")
    assert failed
    assert all("ConnectionError" in str(d) for (d,) in failed)
    assert query(path, "SELECT count(*) FROM equity") == [(300,)]
    assert _summary_line(path).endswith("→ webhook FAILED"), _summary_line(path)


def _summary_line(path: Path) -> str:
    """The TUI's summary, watching the db: where alerts go and how the last one went."""
    import asyncio

    from textual.widgets import Static

    from njord.tui.app import NjordApp

    async def run() -> str:
        app = NjordApp(path)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            return str(app.screen_stack[0].query_one("#summary", Static).render())

    return asyncio.run(run()).splitlines()[-1]
