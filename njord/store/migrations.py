"""Forward migrations, keyed by the schema version they bring a db to.

schema.sql holds the whole DDL in sections marked `-- @version N`; an additive migration
runs its own section, so the DDL is written once. Each runs inside the one transaction
that `db._migrate` opens, after the backup copy.
"""

from __future__ import annotations

import re

import apsw

from njord.store.db import Migration, schema_sql


def schema_section(version: int) -> str:
    parts = re.split(r"^-- @version (\d+)\n", schema_sql(), flags=re.MULTILINE)
    sections = {int(parts[i]): parts[i + 1] for i in range(1, len(parts), 2)}
    return re.sub(r"^PRAGMA user_version = \d+;\n", "", sections[version], flags=re.MULTILINE)


def _additive(version: int) -> Migration:
    def run(conn: apsw.Connection) -> None:
        conn.execute(schema_section(version))

    return run


MIGRATIONS: dict[int, Migration] = {v: _additive(v) for v in (2, 3, 4, 5, 6, 7, 8, 9, 10)}
