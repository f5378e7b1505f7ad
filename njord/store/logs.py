"""Writing and reading structured log records."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import apsw
import msgspec

from njord.log import LogRecord

_encode = msgspec.json.Encoder(order="sorted").encode


def insert(conn: apsw.Connection, records: Iterable[LogRecord], *, first_seq: int) -> None:
    """Sequence numbers are given by the writer: the decision log refers to them."""
    conn.executemany(
        "INSERT INTO logs (seq, run_id, ts_ms, component, level, msg, context) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (seq, r.run_id, r.ts_ms, r.component, r.level, r.msg, _encode(r.context).decode())
            for seq, r in enumerate(records, start=first_seq)
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
