"""Per-UTC-day artifacts: what an external archive keeps to prove a day without the db.

For each day with bars, `export_daily` writes:

- `<day>.decisions.jsonl.gz`: that day's decision-log records (seq, bar, kind, ref, payload,
  prev_hash, hash), in order;
- `<day>.logs.jsonl.gz`: that day's structured log records;
- `<day>.manifest.json`: the run's identity (config, strategy and data hashes), the bar
  range, the chain's hash before the day and its head at the end of it, and the sha256 of
  the two files.

`verify_day` re-walks the chain from the manifest's `prev_hash` over the day's records and
checks the files' hashes: the days of one session link up (a day's `prev_hash` is the
previous day's `head_hash`). Gzip is written with mtime 0, so the same db gives the same
bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
from pathlib import Path
from typing import Any

import apsw
import msgspec

from njord.errors import MismatchError
from njord.store.chain import GENESIS, chain_hash
from njord.store.runs import SqliteManifestStore

DAY_MS = 86_400_000


def _day(ts_ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def _gzip_jsonl(rows: list[dict[str, Any]]) -> bytes:
    raw = b"".join(msgspec.json.encode(r, order="sorted") + b"\n" for r in rows)
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
        gz.write(raw)
    return buf.getvalue()


def export_daily(conn: apsw.Connection, out: Path) -> list[Path]:
    manifest = SqliteManifestStore(conn).load()
    if manifest is None:
        raise MismatchError("the db holds no run: nothing to export")
    data_sha = hashlib.sha256(
        b"".join(s.sha256.encode() for s in manifest.data_sources)
    ).hexdigest()
    span = conn.execute(
        "SELECT min(lo), max(hi) FROM (SELECT min(ts_ms) lo, max(ts_ms) hi FROM equity "
        "UNION ALL SELECT min(bar_ts_ms), max(bar_ts_ms) FROM decisions)"
    ).fetchone()
    if span is None or span[0] is None:
        return []
    written: list[Path] = []
    start = span[0] - span[0] % DAY_MS
    prev = _hash_before(conn, start)
    while start <= span[1]:
        end = start + DAY_MS
        bars = tuple(
            conn.execute(
                "SELECT count(*), min(ts_ms), max(ts_ms) FROM equity "
                "WHERE ts_ms >= ? AND ts_ms < ?",
                (start, end),
            ).fetchone()
            or (0, None, None)
        )
        decisions, logs = _records(conn, start, end)
        if not decisions and not bars[0]:
            start = end
            continue
        day = _day(start)
        files = {
            f"{day}.decisions.jsonl.gz": _gzip_jsonl(decisions),
            f"{day}.logs.jsonl.gz": _gzip_jsonl(logs),
        }
        head = decisions[-1]["hash"] if decisions else prev
        doc = {
            "day": day,
            "run_id": manifest.run_id,
            "config_sha256": manifest.config_sha256,
            "strategy_sha256": manifest.strategy.sha256,
            "data_sha256": data_sha,
            "bars": bars[0],
            "first_bar_ms": bars[1],
            "last_bar_ms": bars[2],
            "decisions": len(decisions),
            "prev_hash": prev,
            "head_hash": head,
            "files": {name: hashlib.sha256(blob).hexdigest() for name, blob in files.items()},
        }
        out.mkdir(parents=True, exist_ok=True)
        for name, blob in files.items():
            (out / name).write_bytes(blob)
            written.append(out / name)
        path = out / f"{day}.manifest.json"
        path.write_bytes(msgspec.json.format(msgspec.json.encode(doc, order="sorted")) + b"\n")
        written.append(path)
        prev = head
        start = end
    return written


def _records(
    conn: apsw.Connection, start: int, end: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The decision-log and log records of [start, end), in order."""
    decisions = [
        {
            "seq": s,
            "bar_ts_ms": b,
            "kind": k,
            "ref": r,
            "payload": p,
            "prev_hash": ph,
            "hash": h,
        }
        for s, b, k, r, p, ph, h in conn.execute(
            "SELECT seq, bar_ts_ms, kind, ref, payload, prev_hash, hash FROM decisions "
            "WHERE bar_ts_ms >= ? AND bar_ts_ms < ? ORDER BY seq",
            (start, end),
        )
    ]
    logs = [
        {"seq": s, "ts_ms": t, "component": c, "level": lv, "msg": m, "context": cx}
        for s, t, c, lv, m, cx in conn.execute(
            "SELECT seq, ts_ms, component, level, msg, context FROM logs "
            "WHERE ts_ms >= ? AND ts_ms < ? ORDER BY seq",
            (start, end),
        )
    ]
    return decisions, logs


def _hash_before(conn: apsw.Connection, ts_ms: int) -> str:
    row = conn.execute(
        "SELECT hash FROM decisions WHERE bar_ts_ms < ? ORDER BY seq DESC LIMIT 1", (ts_ms,)
    ).fetchone()
    return str(row[0]) if row else GENESIS


def verify_day(folder: Path, day: str) -> str:
    """Check one day's files against its manifest; returns its head hash."""
    doc = msgspec.json.decode((folder / f"{day}.manifest.json").read_bytes())
    for name, sha in doc["files"].items():
        if hashlib.sha256((folder / name).read_bytes()).hexdigest() != sha:
            raise MismatchError(f"{name}: sha256 differs from {day}.manifest.json")
    prev = doc["prev_hash"]
    raw = gzip.decompress((folder / f"{day}.decisions.jsonl.gz").read_bytes())
    for line in raw.splitlines():
        rec = msgspec.json.decode(line)
        want = chain_hash(prev, rec["kind"], rec["ref"], rec["payload"])
        if rec["prev_hash"] != prev or rec["hash"] != want:
            raise MismatchError(f"{day}: decision #{rec['seq']} breaks the hash chain")
        prev = want
    if prev != doc["head_hash"]:
        raise MismatchError(f"{day}: the chain ends at {prev[:12]}, the manifest says head")
    return str(prev)
