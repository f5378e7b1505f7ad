"""`njord metrics` and `njord watch`: observability commands that only read session dbs."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from wsgiref.simple_server import WSGIServer

import click
from prometheus_client import start_http_server

from njord import alerting, openmetrics, secrets
from njord import config as configuration
from njord.errors import ConfigError
from njord.store import db
from njord.store.lease import wall_ms
from njord.watch import Watcher


@click.command("metrics")
@click.argument("db_arg", metavar="[DB]", required=False, type=click.Path(path_type=Path))
@click.option("--db", "db_opt", type=click.Path(path_type=Path), help="session db path")
def metrics_cmd(db_arg: Path | None, db_opt: Path | None) -> None:
    """Print a session's metrics once, in the OpenMetrics text format."""
    path = db_arg or db_opt
    if path is None:
        raise click.UsageError("name the session db: njord metrics D (or --db D)")
    db.check_file(path)
    click.echo(openmetrics.render([path]).decode(), nl=False)


@click.command("watch")
@click.argument("targets", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="[alerts] from it")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="override a config key")
@click.option("--env-prefix", default="NJORD_", show_default=True, help="prefix of env vars")
@click.option("--metrics-port", type=click.IntRange(0, 65535), help="serve OpenMetrics here")
@click.option("--metrics-host", default="127.0.0.1", show_default=True, help="address to bind")
@click.option(
    "--silent-after",
    type=click.FloatRange(min=0, min_open=True),
    default=120.0,
    show_default=True,
    help="seconds without a new bar before a running session is 'silent' (bar + tolerance)",
)
@click.option("--interval", type=click.FloatRange(min=0.05), default=5.0, show_default=True)
@click.option("--once", is_flag=True, help="poll once, print, exit")
@click.option("--for", "duration", help="stop after this long, e.g. 8h (default: until signalled)")
def watch_cmd(
    targets: tuple[Path, ...],
    config_path: Path | None,
    sets: tuple[str, ...],
    env_prefix: str,
    metrics_port: int | None,
    metrics_host: str,
    silent_after: float,
    interval: float,
    once: bool,
    duration: str | None,
) -> None:
    """Watch session dbs (files or folders of them), read-only: forward their alerts, raise
    'session silent' / 'session died', and serve their metrics."""
    from njord.live import parse_duration

    for target in targets:
        if not target.exists():
            raise ConfigError(f"{target} does not exist: name session dbs or folders of them")
    if config_path is not None and not config_path.exists():
        raise ConfigError(f"config file {config_path} does not exist")
    loaded = configuration.load(
        file=config_path, env=configuration.environ(), sets=sets, env_prefix=env_prefix
    )
    alerts = loaded.config.alerts
    vault = secrets.provider(configuration.environ(), env_prefix, loaded.config.venue.secrets_file)
    channels = alerting.channels(alerts, vault)
    hidden = alerting.secrets_of(vault)
    end = time.monotonic() + parse_duration(duration) if duration else None
    watcher = Watcher(
        list(targets),
        silent_after_s=silent_after,
        dispatcher=alerting.Dispatcher(channels, max_per_hour=alerts.max_per_hour, wall_ms=wall_ms),
        wall_ms=wall_ms,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    if metrics_port is not None:
        server = _serve(watcher.paths, metrics_host, metrics_port)
        click.echo(f"metrics on http://{metrics_host}:{server.server_port}/metrics", err=True)
    names = ", ".join(c.name for c in channels) or "none (edges printed only)"
    click.echo(f"watching {len(watcher.paths())} session db(s); channels: {names}", err=True)
    while True:
        for edge in watcher.poll():
            click.echo(secrets.redact(f"{edge.event} {edge.kind} {edge.db}: {edge.msg}", hidden))
        for delivery in watcher.take_deliveries():
            if not delivery.ok:
                click.echo(
                    secrets.redact(
                        f"delivery failed: {delivery.channel} {delivery.kind}: {delivery.detail}",
                        hidden,
                    ),
                    err=True,
                )
        if once or stop.is_set() or (end is not None and time.monotonic() >= end):
            return
        stop.wait(interval)
        if stop.is_set():
            return


def _serve(paths: Callable[[], list[Path]], host: str, port: int) -> WSGIServer:
    try:
        server, _ = start_http_server(port, addr=host, registry=openmetrics.registry(paths))
    except OSError as e:
        raise ConfigError(f"cannot serve metrics on {host}:{port}: {e.strerror}") from None
    return server
