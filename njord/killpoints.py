"""Seeded crash points for the crash tests (and `njord torture`): `NJORD_KILL_AT=point:n`
makes the process SIGKILL itself the n-th time it reaches `point`. Points: `decided` (phase
1 committed, nothing sent), `executed` (live: the venue executed an order and answered,
the answer not yet handed to the book), `sent` (the venue answered, phase 3 not
committed), `committed` (phase 3 committed). Unset, `reach` is one comparison."""

from __future__ import annotations

import os
import signal

_spec = os.environ.get("NJORD_KILL_AT", "")
_point, _, _count = _spec.partition(":")
_left = int(_count) if _spec else 0


def reach(point: str) -> None:
    global _left
    if point != _point or _left <= 0:
        return
    _left -= 1
    if _left == 0:
        os.kill(os.getpid(), signal.SIGKILL)
