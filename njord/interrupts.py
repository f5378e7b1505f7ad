"""Stopping a long command from outside it: SIGTERM (`timeout`, a service manager, `kill`)
and SIGINT (Ctrl-C) both raise KeyboardInterrupt in the main thread, which the command turns
into its resumable exit 130.

SIGINT is taken even when the process inherited it ignored (a shell starts background jobs
that way): a sweep someone launched with `&` must still stop cleanly on `kill -INT`.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def stopping_on_signals() -> Iterator[None]:
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
