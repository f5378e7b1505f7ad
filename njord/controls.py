"""Controls from outside a session's loop: who the operator is, and the kill file. The
CLI commands and the TUI's keys post through `njord.store.controls.post`, so they refuse
and answer alike (SPEC §9)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from njord.errors import ConfigError


def operator() -> str:
    """Who posted a control from the CLI or the TUI: the operator on this host."""
    return f"operator@{socket.gethostname()}"


def check_kill_file(path: Path) -> None:
    """Refuse (exit 2) a kill file that could not be created, before anything is written."""
    if path.is_dir():
        raise ConfigError(f"kill file {path} is a directory; give a file path")
    if not path.parent.is_dir():
        raise ConfigError(f"cannot create kill file {path}: folder {path.parent} does not exist")


def create_kill_file(path: Path, reason: str, *, by: str) -> str:
    """The file that halts every session whose runtime.kill_file names it (within 1 s)."""
    check_kill_file(path)
    existed = path.exists()
    if not existed:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        try:
            path.write_text(f"halted by {by} at {stamp}: {reason}\n", encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot create kill file {path}: {e.strerror}") from e
    return (
        f"kill file {path.resolve()} {'exists' if existed else 'created'}: sessions whose "
        "runtime.kill_file is this path halt within 1 s; deleting it does not resume "
        "(`njord resume --confirm` does)"
    )
