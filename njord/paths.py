"""Paths the user names, checked when the command line is parsed, before any work starts.

A path that cannot be written (or read) is a usage error, exit 2, one line naming the
option and the reason; a run must never compute for an hour and then fail to save.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import click

from njord.errors import ConfigError

Kind = Literal["file", "dir"]


def check_output(path: Path, *, kind: Kind, name: str, db: bool = False) -> Path:
    """`path` can be written as a file (or used as a directory), creating missing parents.
    `db`: the file is a session db, which the command opens; any other output file never
    replaces a SQLite database (`report -o session.db` would have lost the session)."""
    where = f"{name} {path}" if name else str(path)
    if path.exists():
        if kind == "file" and path.is_dir():
            raise ConfigError(f"{where} is a directory; give a file path")
        if kind == "file" and not db and _is_sqlite(path):
            raise ConfigError(f"{where} is a SQLite database; writing there would lose it")
        if kind == "dir" and not path.is_dir():
            raise ConfigError(f"{where} is a file; give a directory")
        if not os.access(path, os.W_OK):
            raise ConfigError(f"{where} is not writable")
        return path
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(f"{where}: {ancestor} is a file, not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"{where}: cannot create it, {ancestor} is read-only")
    return path


# The file format's first 16 bytes (as njord.store.db checks them: the simulator, which
# uses this module, may not import the store).
SQLITE_MAGIC = b"SQLite format 3\x00"


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:  # unreadable: the writability check below reports it
        return False


def check_input(path: Path, *, kind: Kind | None, name: str) -> Path:
    """`path` exists and can be read (as a file or a directory when `kind` says so)."""
    where = f"{name} {path}" if name else str(path)
    if not path.exists():
        raise ConfigError(f"{where} does not exist")
    if kind == "file" and path.is_dir():
        raise ConfigError(f"{where} is a directory; give a file")
    if not os.access(path, os.R_OK):
        raise ConfigError(f"{where} is not readable")
    return path


def write(path: Path, data: str | bytes) -> None:
    """Write an output file checked by `check_output`, creating its missing parents."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)


class OutputPath(click.Path):
    """A click path checked by `check_output`; ConfigError reaches the CLI's one-line handler."""

    def __init__(self, kind: Kind, *, db: bool = False) -> None:
        super().__init__(path_type=Path)
        self.kind: Kind = kind
        self.db = db

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        path = super().convert(value, param, ctx)
        assert isinstance(path, Path)  # path_type=Path
        return check_output(path, kind=self.kind, name=_name(param), db=self.db)


class InputPath(click.Path):
    """A click path checked by `check_input`."""

    def __init__(self, kind: Kind | None = None) -> None:
        super().__init__(path_type=Path)
        self.kind: Kind | None = kind

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        path = super().convert(value, param, ctx)
        assert isinstance(path, Path)  # path_type=Path
        return check_input(path, kind=self.kind, name=_name(param))


def _name(param: click.Parameter | None) -> str:
    # An argument is known by its position: the message names the path alone.
    return "" if param is None or isinstance(param, click.Argument) else max(param.opts, key=len)
