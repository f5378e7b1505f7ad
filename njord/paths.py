"""Paths the user names for output, checked before any work starts (SPEC §2.6): a
problem is a usage error naming the flag, never a traceback after the work is done."""

from __future__ import annotations

import os
from pathlib import Path

from njord.errors import ConfigError


def out_file(path: Path, flag: str) -> None:
    """A file to write: not a directory, under a folder that exists or can be made."""
    if path.is_dir():
        raise ConfigError(f"{flag} {path} is a directory; give a file path")
    _creatable(path.parent, f"{flag} {path}")


def out_dir(path: Path, flag: str) -> None:
    """A directory to fill: not a file, and either present or creatable."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {path} is a file; give a directory")
    if path.is_dir():
        if not os.access(path, os.W_OK):
            raise ConfigError(f"{flag} {path}: cannot write in {path}")
        return
    _creatable(path.parent, f"{flag} {path}")


def _creatable(folder: Path, named: str) -> None:
    """The nearest existing ancestor is a directory we may write in."""
    for ancestor in (folder, *folder.parents):
        if ancestor.exists():
            if not ancestor.is_dir():
                raise ConfigError(f"{named}: {ancestor} is a file")
            if not os.access(ancestor, os.W_OK):
                raise ConfigError(f"{named}: cannot write in {ancestor}")
            return
