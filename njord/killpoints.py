"""Seeded crash points for the crash tests and `njord torture`: the process SIGKILLs itself
at a named point, as `NJORD_KILL_AT` says:

- `point:n` — the n-th time this process reaches `point`;
- `point@bar_ms` — the first time it reaches `point` at a bar opening at or after `bar_ms`
  (a bar position, whatever this run's start: `njord torture` plans its kills this way).

Points, in the order a paced bar reaches them: `decided` (phase 1 committed, nothing
sent), `executed` (live: the venue executed an order and answered, the answer not yet
handed to the book), `sent` (the venue answered, phase 3 not committed; only bars that
send something), `commit` (inside a commit: every row of the transaction written, COMMIT
not yet run), `committed` (phase 3 committed); and `rebuild` (a restart's rebuild stepping
a stored bar, before any venue is asked). Unset, `reach` is one comparison."""

from __future__ import annotations

import os
import signal

POINTS = ("decided", "executed", "sent", "commit", "committed", "rebuild")

_spec = os.environ.get("NJORD_KILL_AT", "")
_point, _at, _bar = _spec.partition("@")
if not _at:
    _point, _, _count = _spec.partition(":")
_left = int(_count) if _spec and not _at else 0
_from_ms = int(_bar) if _at else None


def spec_at(point: str, bar_ms: int) -> str:
    """The `NJORD_KILL_AT` value that kills at `point` of the bar opening at `bar_ms`."""
    if point not in POINTS:
        raise ValueError(f"unknown kill point {point!r}; points: {', '.join(POINTS)}")
    return f"{point}@{bar_ms}"


def reach(point: str, bar_ms: int | None = None) -> None:
    global _left
    if point != _point:
        return
    if _from_ms is not None:
        if bar_ms is not None and bar_ms >= _from_ms:
            os.kill(os.getpid(), signal.SIGKILL)
        return
    if _left <= 0:
        return
    _left -= 1
    if _left == 0:
        os.kill(os.getpid(), signal.SIGKILL)
