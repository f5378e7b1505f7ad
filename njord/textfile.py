"""Text files the user names (a config, a sweep grid, a faults file), read the same way."""

from __future__ import annotations

from pathlib import Path

from njord.errors import ConfigError


def read_text(path: Path, what: str) -> str:
    """A text file the user names (a config, a grid, a faults file): its text, a leading
    byte-order mark dropped (as Windows editors write one), or one line naming it."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise ConfigError(f"cannot read {what} {path}: {e.strerror}") from e
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not UTF-8 text") from None
