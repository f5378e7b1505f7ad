"""docs/research.md's notebook example runs as written, from a fresh directory."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT, invoke


def blocks(kind: str) -> list[str]:
    text = (ROOT / "docs" / "research.md").read_text()
    return re.findall(rf"```{kind}\n(.*?)```", text, flags=re.DOTALL)


def test_the_research_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    (tmp_path / "sample_data").symlink_to(ROOT / "sample_data")
    monkeypatch.chdir(tmp_path)
    commands = [line for b in blocks("console") for line in b.splitlines()]
    assert commands
    for line in commands:
        args = shlex.split(line.removeprefix("$ "))
        assert args[0] == "njord"
        result = invoke(*args[1:])
        assert result.exit_code == 0, result.output
    (code,) = blocks("python")
    exec(compile(code, "docs/research.md", "exec"), {})
