"""The `config_amendments` table: operational config changes made to a running session."""

from __future__ import annotations

from collections.abc import Sequence

import apsw
import msgspec


class Amendment(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    old: str | None  # TOML literal; None: the key was unset
    new: str
    after_bar_ms: int | None  # governs the bars after this one (None: from the first)
    posted_ms: int
    posted_by: str


def load(conn: apsw.Connection) -> list[Amendment]:
    """In order; none from a db older than the table (schema version 6), read as it is."""
    table = "SELECT 1 FROM sqlite_master WHERE name = 'config_amendments'"
    if conn.execute(table).fetchone() is None:
        return []
    return [
        Amendment(
            key=str(key),
            old=None if old is None else str(old),
            new=str(new),
            after_bar_ms=None if after is None else int(after),
            posted_ms=int(posted),
            posted_by=str(by),
        )
        for key, old, new, after, posted, by in conn.execute(
            "SELECT key, old_value, new_value, after_bar_ms, posted_ms, posted_by "
            "FROM config_amendments ORDER BY seq"
        )
    ]


def insert(conn: apsw.Connection, amendments: Sequence[Amendment]) -> None:
    conn.executemany(
        "INSERT INTO config_amendments "
        "(posted_ms, posted_by, after_bar_ms, key, old_value, new_value) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(a.posted_ms, a.posted_by, a.after_bar_ms, a.key, a.old, a.new) for a in amendments],
    )
