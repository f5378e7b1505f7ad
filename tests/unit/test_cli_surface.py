from __future__ import annotations

import ast
import subprocess
import sys

import click

from njord.cli import LAZY_COMMANDS, cli
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
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # lazy commands too
        cmd = group.get_command(ctx, name)
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


HEAVY = ("pyarrow", "numpy", "pandas", "rich", "textual", "plotly", "requests", "dask", "apsw")


def test_help_imports_no_heavy_library() -> None:
    """`njord --help` lists every command, the lazy ones included, without importing the
    engine or a heavy library (issue 19: it must start in 0.25 s)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "njord", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    for name in LAZY_COMMANDS:
        assert f"  {name} " in done.stdout
    heavy = sorted(m for m in imported if m.split(".")[0] in HEAVY)
    assert not heavy, f"njord --help imports {heavy[:5]}"
    lazy = {target.partition(":")[0] for target, _ in LAZY_COMMANDS.values()}
    engine = {"njord.launch", "njord.wiring", "njord.loop", "njord.config", *lazy}
    assert not engine & imported, sorted(engine & imported)


def test_lazy_commands_are_listed_with_their_own_help() -> None:
    ctx = click.Context(cli)
    for name, (_, line) in LAZY_COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None
        stand_in = click.Command(name, help=line)
        for limit in (30, 45, 60, 200):
            assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit)


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
