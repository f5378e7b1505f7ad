"""Internal errors (bugs, exit 70): the operator gets one line, the traceback goes to a file.

A traceback on the terminal buries the one thing the operator must do (report the bug
with the file) under lines only a developer reads; the file keeps all of it.
"""

from __future__ import annotations

import tempfile
import traceback
from pathlib import Path


def save_traceback(error: BaseException) -> Path:
    """Write the error's traceback to a new file in the temp dir ($TMPDIR) and name it."""
    fd, name = tempfile.mkstemp(prefix="njord-internal-error-", suffix=".txt")
    with open(fd, "w", encoding="utf-8") as fh:
        fh.write("".join(traceback.format_exception(error)))
    return Path(name)


def one_line(error: BaseException) -> str:
    """The error as one line: what broke and where its traceback is."""
    text = " ".join(str(error).split()) or "(no message)"
    return f"internal error (a bug): {type(error).__name__}: {text}"
