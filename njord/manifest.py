"""Run manifests: what a session ran with, and the hashes that identify it."""

from __future__ import annotations

import hashlib
import inspect
import platform
import subprocess
import sys
from pathlib import Path

import msgspec

import njord


class DataSource(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    sha256: str
    rows: int


class StrategyIdentity(msgspec.Struct, frozen=True, kw_only=True):
    path: str  # "module:Class"
    sha256: str  # of the defining module's source
    source: str | None  # kept when the module lives outside the njord package


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    run_id: str
    mode: str
    config_toml: str
    config_sha256: str
    njord_version: str
    git_sha: str
    git_dirty: bool
    python: str
    os: str
    data_sources: list[DataSource]
    seed: int
    strategy: StrategyIdentity
    started_ms: int
    ended_ms: int | None = None
    # Several strategies (`[[strategies]]`, the enabled ones in config order): each one's
    # identity; `strategy` is the first of them.
    sleeves: list[StrategyIdentity] = []

    def inputs_sha256(self) -> str:
        """What decides a session's outputs: config, data, strategy code and seed."""
        parts = [self.config_sha256, self.strategy.sha256, str(self.seed)]
        parts += [s.sha256 for s in self.sleeves[1:]]
        parts += [f"{d.path}={d.sha256}" for d in self.data_sources]
        return _sha256("\n".join(parts))

    def order_key(self) -> str:
        """The 8 hex digits in the session's client order ids. Recorded sessions: the same
        inputs give the same ids (same inputs, same bytes). A live session's ids are its own
        (the run id too): a venue account outlives sessions, and an id it holds from another
        session of the same config must never be taken for this one's."""
        if self.mode != "live":
            return self.inputs_sha256()[:8]
        return _sha256(f"{self.inputs_sha256()}\n{self.run_id}")[:8]

    def manifest_sha256(self) -> str:
        """Everything except wall-clock fields and the run id (which embeds the start time)."""
        fields = msgspec.structs.asdict(self)
        for wall_clock in ("run_id", "started_ms", "ended_ms"):
            del fields[wall_clock]
        if not self.sleeves:  # as it was hashed before there were several
            del fields["sleeves"]
        return _sha256(msgspec.json.encode(fields, order="sorted").decode())


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def strategy_identity(cls: type) -> StrategyIdentity:
    module = sys.modules[cls.__module__]
    source = inspect.getsource(module)
    inside = cls.__module__.split(".")[0] == "njord"
    return StrategyIdentity(
        path=f"{cls.__module__}:{cls.__qualname__}",
        sha256=_sha256(source),
        source=None if inside else source,
    )


def git_state() -> tuple[str, bool]:
    """(sha, dirty) of the checkout njord runs from, or ('unknown', False) outside one."""
    root = Path(njord.__file__).resolve().parents[1]
    try:
        sha = _git(root, "rev-parse", "HEAD")
        dirty = bool(_git(root, "status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.CalledProcessError):
        return "unknown", False
    return sha, dirty


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True, timeout=10
    )
    return done.stdout.strip()


def host_facts() -> tuple[str, str]:
    return platform.python_version(), f"{platform.system()} {platform.release()}"
