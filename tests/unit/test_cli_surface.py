from __future__ import annotations

import ast
import subprocess
import sys

import click

from njord.cli import cli
from tests.conftest import ROOT, invoke

CORE_FORBIDDEN = {
    "apsw",
    "requests",
    "pyarrow",
    "rich",
    "textual",
    "click",
    "time",
    "random",
    "os",
    "datetime.datetime.now",
    "socket",
    "subprocess",
}


def _commands(group: click.Group, prefix: str = "") -> list[str]:
    names = []
    for name, cmd in sorted(group.commands.items()):
        if isinstance(cmd, click.Group):
            names += _commands(cmd, f"{prefix}{name} ")
        else:
            names.append(f"{prefix}{name}")
    return names


def test_every_command_has_help_and_is_documented() -> None:
    doc = (ROOT / "docs" / "cli.md").read_text()
    for name in _commands(cli):
        result = invoke(*name.split(), "--help")
        assert result.exit_code == 0, name
        assert f"njord {name}" in doc, f"docs/cli.md does not mention `njord {name}`"


def test_launchers_agree() -> None:
    for launcher in ([sys.executable, "njord.py"], [sys.executable, "-m", "njord"]):
        done = subprocess.run([*launcher, "--version"], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0
        assert done.stdout.startswith("njord, version")


def test_core_imports_no_io_and_reads_no_clock() -> None:
    for path in sorted((ROOT / "njord" / "core").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [(node.module or "").split(".")[0]]
            else:
                continue
            bad = set(names) & CORE_FORBIDDEN
            assert not bad, f"{path.name} imports {bad}: the core must stay pure"
        source = path.read_text()
        for call in ("datetime.now(", ".utcnow(", "time.time(", "perf_counter(", "random."):
            assert call not in source, f"{path.name} reads the clock or randomness: {call}"


def test_reason_codes_are_documented() -> None:
    from njord.reasons import Reason

    doc = (ROOT / "docs" / "reasons.md").read_text()
    for reason in Reason:
        assert f"`{reason.value}`" in doc
