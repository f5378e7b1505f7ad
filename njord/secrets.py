"""Secrets providers. A Secret never shows its value: not in str, repr, logs or encodings."""

from __future__ import annotations

import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from njord.errors import ConfigError

MASK: Final = "***"
SECRET_NAMES: Final = ("binance_api_key", "binance_api_secret")


class Secret:
    """Wraps a secret value; only `reveal()` gives it back, at the point of use."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")


class EnvSecrets:
    """SecretsProvider over environment variables `<PREFIX>BINANCE_API_KEY` / `_SECRET`."""

    def __init__(self, env: Mapping[str, str], prefix: str = "NJORD_") -> None:
        self._env = env
        self._prefix = prefix

    def get(self, name: str) -> Secret | None:
        value = self._env.get(self._prefix + name.upper())
        return Secret(value) if value else None


class FileSecrets:
    """SecretsProvider over a TOML file of `name = "value"`, refused unless its mode is 0600."""

    def __init__(self, path: Path) -> None:
        try:
            mode = path.stat().st_mode
        except OSError as e:
            raise ConfigError(f"cannot read secrets file {path}: {e.strerror}") from e
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"secrets file {path} has mode {stat.S_IMODE(mode):04o}; "
                f"run `chmod 600 {path}` (group/other must have no access)"
            )
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            # Never echo the parser's message: it can quote the secret's line.
            raise ConfigError(f"secrets file {path} is not readable TOML") from None
        self._values = {k: Secret(str(v)) for k, v in doc.items()}

    def get(self, name: str) -> Secret | None:
        return self._values.get(name)


class ChainedSecrets:
    """Environment first, then the file (if configured): the same precedence as config."""

    def __init__(self, env: EnvSecrets, file: FileSecrets | None) -> None:
        self._env = env
        self._file = file

    def get(self, name: str) -> Secret | None:
        found = self._env.get(name)
        if found is None and self._file is not None:
            found = self._file.get(name)
        return found


def provider(env: Mapping[str, str], prefix: str, secrets_file: str) -> ChainedSecrets:
    file = FileSecrets(Path(secrets_file)) if secrets_file else None
    return ChainedSecrets(EnvSecrets(env, prefix), file)


def redact(text: str, secrets: list[Secret]) -> str:
    """Last line of defence for free text headed to the db or a terminal."""
    for secret in secrets:
        value = secret.reveal()
        if value:
            text = text.replace(value, MASK)
    return text


def all_secrets(provider_: ChainedSecrets) -> list[Secret]:
    return [s for s in (provider_.get(n) for n in SECRET_NAMES) if s is not None]
