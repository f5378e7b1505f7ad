"""One convention for naming the session db a command acts on: `njord CMD DB` or
`njord CMD --db DB`, whichever the user reaches for; every such command takes both."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from njord.errors import ConfigError
from njord.paths import OutputPath

F = TypeVar("F", bound=Callable[..., Any])


def session_db(*, creates: bool = False, help: str = "the session db") -> Callable[[F], F]:
    """Add `[DB]` and `--db DB` to a command; it receives the one given as `db_path`.

    `creates`: the command may create the db (paper, shadow), so the path is checked as
    an output when the command line is parsed."""
    kind: click.Path = OutputPath("file", db=True) if creates else click.Path(path_type=Path)

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args: Any, db_argument: Path | None, db_option: Path | None, **kw: Any) -> Any:
            return fn(*args, db_path=one_db(db_argument, db_option), **kw)

        run = click.option("--db", "db_option", type=kind, metavar="DB", help=f"{help} (or DB)")(
            run
        )
        return cast(
            F, click.argument("db_argument", metavar="[DB]", required=False, type=kind)(run)
        )

    return decorate


def one_db(argument: Path | None, option: Path | None) -> Path:
    """The db named as DB or --db DB: exactly one of them, or both naming the same file."""
    if argument is not None and option is not None and argument != option:
        raise ConfigError(f"two session dbs given, {argument} and --db {option}: give one")
    found = argument if argument is not None else option
    if found is None:
        raise ConfigError("which session db? give it as DB or --db DB")
    return found
