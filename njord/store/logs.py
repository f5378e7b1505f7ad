"""Writing and reading structured log records."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import apsw
import msgspec

from njord.log import LogRecord

_encode = msgspec.json.Encoder(order="sorted").encode


def insert(conn: apsw.Connection, records: Iterable[LogRecord]) -> None:
    conn.executemany(
        "INSERT INTO logs (run_id, ts_ms, component, level, msg, context) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [
            (r.run_id, r.ts_ms, r.component, r.level, r.msg, _encode(r.context).decode())
            for r in records
        ],
    )


def iter_jsonl(conn: apsw.Connection) -> Iterator[bytes]:
    for seq, run_id, ts_ms, component, level, msg, context in conn.execute(
        "SELECT seq, run_id, ts_ms, component, level, msg, context FROM logs ORDER BY seq"
    ):
        yield (
            _encode(
                {
                    "seq": seq,
                    "run_id": run_id,
                    "ts_ms": ts_ms,
                    "component": component,
                    "level": level,
                    "msg": msg,
                    "context": msgspec.json.decode(context),
                }
            )
            + b"\n"
        )
