"""RunManifestStore over the `runs` table."""

from __future__ import annotations

import apsw
import msgspec

from njord.manifest import DataSource, Manifest, StrategyIdentity

_COLUMNS = (
    "run_id, mode, config_toml, config_sha256, njord_version, git_sha, git_dirty, python, os, "
    "data_sources, seed, strategy_path, strategy_sha256, strategy_source, started_ms, ended_ms, "
    "sleeves"
)


class SqliteManifestStore:
    def __init__(self, conn: apsw.Connection) -> None:
        self._conn = conn

    def create(self, manifest: Manifest) -> None:
        m = manifest
        self._conn.execute(
            f"INSERT INTO runs ({_COLUMNS}, status, manifest_sha256) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?)",
            (
                m.run_id,
                m.mode,
                m.config_toml,
                m.config_sha256,
                m.njord_version,
                m.git_sha,
                int(m.git_dirty),
                m.python,
                m.os,
                msgspec.json.encode(m.data_sources).decode(),
                m.seed,
                m.strategy.path,
                m.strategy.sha256,
                m.strategy.source,
                m.started_ms,
                m.ended_ms,
                msgspec.json.encode(m.sleeves).decode(),
                m.manifest_sha256(),
            ),
        )

    def load(self) -> Manifest | None:
        row = self._conn.execute(
            f"SELECT {_COLUMNS} FROM runs ORDER BY started_ms DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        return Manifest(
            run_id=row[0],
            mode=row[1],
            config_toml=row[2],
            config_sha256=row[3],
            njord_version=row[4],
            git_sha=row[5],
            git_dirty=bool(row[6]),
            python=row[7],
            os=row[8],
            data_sources=msgspec.json.decode(row[9], type=list[DataSource]),
            seed=row[10],
            strategy=StrategyIdentity(path=row[11], sha256=row[12], source=row[13]),
            started_ms=row[14],
            ended_ms=row[15],
            sleeves=msgspec.json.decode(row[16], type=list[StrategyIdentity]),
        )

    def status(self, run_id: str) -> str:
        row = self._conn.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return str(row[0]) if row else "missing"

    def set_status(self, run_id: str, status: str, *, ended_ms: int | None) -> None:
        self._conn.execute(
            "UPDATE runs SET status = ?, ended_ms = ? WHERE run_id = ?", (status, ended_ms, run_id)
        )

    def manifest_sha256(self) -> str | None:
        row = self._conn.execute(
            "SELECT manifest_sha256 FROM runs ORDER BY started_ms DESC LIMIT 1"
        ).fetchone()
        return str(row[0]) if row else None
