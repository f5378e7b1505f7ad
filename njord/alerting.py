"""Alerts that reach a person: a shell command, a webhook, an email.

A channel either delivers or raises `DeliveryError` with a one-line reason; the `Dispatcher`
turns that into a `Delivery` result and never lets a failing channel stop its caller (a
session's bar or a watcher's poll). Webhook URLs and SMTP passwords come from the secrets
provider and are scrubbed from every reason a channel reports.
"""

from __future__ import annotations

import json
import shlex
import smtplib
import subprocess
import time
from collections import deque
from collections.abc import Callable, Sequence
from email.message import EmailMessage
from typing import Final, Literal, Protocol

import msgspec
import requests

from njord.config import AlertsConfig
from njord.errors import ConfigError
from njord.ports import SecretsProvider
from njord.secrets import Secret, redact

WEBHOOK_SECRET: Final = "alerts_webhook_url"
SMTP_SECRET: Final = "smtp_password"
WEBHOOK_TRIES: Final = 3


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    """One alert episode's edge: raised once, cleared once."""

    kind: str
    event: Literal["raised", "cleared"]
    session: str
    mode: str
    symbol: str
    db: str
    msg: str
    ts_ms: int  # wall clock when the edge was seen

    @property
    def title(self) -> str:
        return f"njord {self.event}: {self.kind} ({self.session})"

    @property
    def look(self) -> str:
        return f"njord status --db {shlex.quote(self.db)}"

    def text(self) -> str:
        return f"{self.title} on {self.symbol}: {self.msg}. Look: {self.look}"


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    channel: str
    kind: str
    event: str
    ok: bool
    detail: str
    ts_ms: int


class DeliveryError(Exception):
    """A channel could not deliver; the message is one line, free of secrets."""


class Channel(Protocol):
    name: str

    def send(self, alert: Alert) -> None:
        """Deliver within the channel's time bound or raise DeliveryError."""


class CommandChannel:
    """Runs a command (placeholders {title} {kind} {event} {session} {msg}) with the alert
    as JSON on stdin; a non-zero exit or a timeout is a failed delivery."""

    name = "command"

    def __init__(self, template: str, timeout_s: float) -> None:
        self._template = template
        self._timeout_s = timeout_s

    def send(self, alert: Alert) -> None:
        fields = {
            "title": alert.title,
            "kind": alert.kind,
            "event": alert.event,
            "session": alert.session,
            "msg": alert.msg,
        }
        argv = [part.format(**fields) for part in shlex.split(self._template)]
        try:
            done = subprocess.run(
                argv,
                input=msgspec.json.encode(alert),
                capture_output=True,
                timeout=self._timeout_s,
                check=False,
            )
        except FileNotFoundError:
            raise DeliveryError(f"command not found: {argv[0]}") from None
        except subprocess.TimeoutExpired:
            raise DeliveryError(f"command timed out after {self._timeout_s:g}s") from None
        if done.returncode != 0:
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
            raise DeliveryError(f"command exited {done.returncode}: {tail[0][:200]}")


class WebhookChannel:
    """POSTs the alert as JSON with a Slack-compatible `text` field; retries with backoff."""

    name = "webhook"

    def __init__(
        self, url: Secret, timeout_s: float, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._url = url
        self._timeout_s = timeout_s
        self._sleep = sleep

    def send(self, alert: Alert) -> None:
        body = {"text": alert.text(), **msgspec.to_builtins(alert)}
        last = ""
        for attempt in range(WEBHOOK_TRIES):
            if attempt:
                self._sleep(0.5 * 2 ** (attempt - 1))
            try:
                answer = requests.post(self._url.reveal(), json=body, timeout=self._timeout_s)
            except requests.RequestException as e:
                # Only the class: requests' messages quote the URL's host and path apart.
                last = type(e).__name__
                continue
            if answer.status_code < 300:
                return
            last = f"HTTP {answer.status_code}"
            if answer.status_code < 500 and answer.status_code != 429:
                break  # the receiver refused this message; sending it again will not help
        raise DeliveryError(f"webhook failed after {attempt + 1} tries: {last[:200]}")


class EmailChannel:
    name = "email"

    def __init__(self, config: AlertsConfig, password: Secret | None, timeout_s: float) -> None:
        host, _, port = config.smtp.rpartition(":")
        self._host, self._port = host, int(port)
        self._config = config
        self._password = password
        self._timeout_s = timeout_s

    def send(self, alert: Alert) -> None:
        message = EmailMessage()
        message["Subject"] = alert.title
        message["From"] = self._config.email_from
        message["To"] = ", ".join(self._config.email_to)
        message.set_content(f"{alert.text()}\n\n{json.dumps(msgspec.to_builtins(alert))}\n")
        try:
            with smtplib.SMTP(self._host, self._port, timeout=self._timeout_s) as smtp:
                if self._config.starttls:
                    smtp.starttls()
                if self._password is not None:
                    smtp.login(self._config.email_from, self._password.reveal())
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as e:
            hidden = [self._password] if self._password is not None else []
            raise DeliveryError(redact(f"smtp {self._config.smtp}: {e}", hidden)[:200]) from None


def channels(config: AlertsConfig, vault: SecretsProvider) -> list[Channel]:
    """The configured channels; a webhook without its URL secret is a config error."""
    out: list[Channel] = []
    if config.command:
        out.append(CommandChannel(config.command, config.timeout_s))
    if config.webhook:
        url = vault.get(WEBHOOK_SECRET)
        if url is None:
            raise ConfigError(
                "alerts.webhook is on but no URL is set: export NJORD_ALERTS_WEBHOOK_URL "
                "or put alerts_webhook_url in venue.secrets_file"
            )
        out.append(WebhookChannel(url, config.timeout_s))
    if config.email_to:
        out.append(EmailChannel(config, vault.get(SMTP_SECRET), config.timeout_s))
    return out


def secrets_of(vault: SecretsProvider) -> list[Secret]:
    return [s for s in (vault.get(WEBHOOK_SECRET), vault.get(SMTP_SECRET)) if s is not None]


class Dispatcher:
    """Sends each alert edge to every channel, at most `max_per_hour` edges an hour (wall
    clock); an edge over the limit is reported as a suppressed delivery, never queued."""

    def __init__(
        self,
        targets: Sequence[Channel],
        *,
        max_per_hour: int,
        wall_ms: Callable[[], int],
    ) -> None:
        self._targets = list(targets)
        self._max = max_per_hour
        self._wall_ms = wall_ms
        self._sent: deque[int] = deque()

    @property
    def names(self) -> list[str]:
        return [t.name for t in self._targets]

    def dispatch(self, alert: Alert) -> list[Delivery]:
        now = self._wall_ms()
        while self._sent and now - self._sent[0] >= 3_600_000:
            self._sent.popleft()
        if len(self._sent) >= self._max:
            return [
                self._result(t.name, alert, False, "rate limited: alerts.max_per_hour", now)
                for t in self._targets
            ]
        self._sent.append(now)
        results = []
        for target in self._targets:
            try:
                target.send(alert)
            except DeliveryError as e:
                results.append(self._result(target.name, alert, False, str(e), self._wall_ms()))
            else:
                results.append(self._result(target.name, alert, True, "sent", self._wall_ms()))
        return results

    @staticmethod
    def _result(channel: str, alert: Alert, ok: bool, detail: str, ts_ms: int) -> Delivery:
        return Delivery(
            channel=channel, kind=alert.kind, event=alert.event, ok=ok, detail=detail, ts_ms=ts_ms
        )
