"""The NjordError tree, grouped by what the operator must do, and the exit codes (SPEC §13)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    RUNTIME = 1
    USAGE = 2
    DATA = 3
    MISMATCH = 4
    INTERNAL = 70
    LEASED = 75
    INTERRUPTED = 130


class NjordError(Exception):
    """An expected failure with a one-line message for the operator."""

    exit_code: ExitCode = ExitCode.RUNTIME


class ConfigError(NjordError):
    """Bad configuration, arguments or db file: fix the input and run again."""

    exit_code = ExitCode.USAGE


class DataError(NjordError):
    """Market data refused by quality control."""

    exit_code = ExitCode.DATA


class MismatchError(NjordError):
    """audit / verify / replay found that stored state disagrees with a recomputation."""

    exit_code = ExitCode.MISMATCH


class InvariantViolation(NjordError):
    """A bug: an invariant did not hold. The bar was rolled back."""

    exit_code = ExitCode.INTERNAL


class LeaseError(NjordError):
    """Another live process holds the session db."""

    exit_code = ExitCode.LEASED


class StorageError(NjordError):
    """The session db could not be written or read back: a full disk, an I/O error. The
    bar was rolled back; fix the disk, then carry the session on (`njord continue`)."""

    exit_code = ExitCode.RUNTIME


class StrategyError(NjordError):
    """The strategy raised (the bar was rolled back and the session stopped), or a state
    snapshot does not restore into it (not its own, or not readable)."""

    exit_code = ExitCode.RUNTIME


class Interrupted(NjordError):
    """The operator interrupted the run; state is committed up to the last bar."""

    exit_code = ExitCode.INTERRUPTED
