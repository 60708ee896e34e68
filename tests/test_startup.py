"""A command imports only what it needs (issue 18): the root group resolves a command's
module when it runs, and the kubernetes client, boto3, networkx and rich are imported
where they are used.  Each case runs the CLI in a fresh interpreter and asserts on the
modules loaded at its end (the seconds are judged in bench/startup.py, not here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from migrate.cli.main import COMMANDS, cli
from migrate.errors import EXIT_CODES, EXIT_USAGE
from migrate.store import open_store

from .builders import ITEMS, write_backup

# Runs the CLI in-process as the console script does, then prints every loaded module
# as the last line of stdout (the command's own output comes before it).
PROBE = """
import json, sys
from migrate.cli.main import run
code = run(sys.argv[1:])
print(json.dumps({"exit": code, "modules": sorted(sys.modules)}))
"""
HEAVY = ("kubernetes", "boto3", "botocore", "networkx", "rich")


def probe(*args: str) -> tuple[int, str, set[str]]:
    """(exit code, the command's stdout, the modules loaded) of one run; its stderr is
    passed through (pytest's capfd sees it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE_MIGRATE_")}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    *out, last = proc.stdout.splitlines()
    doc = json.loads(last)
    return doc["exit"], "\n".join(out), set(doc["modules"])


def _loaded(modules: set[str], package: str) -> bool:
    return any(m == package or m.startswith(package + ".") for m in modules)


def test_backup_get_on_a_local_bucket_needs_no_kubernetes_client_nor_boto3(
    tmp_path: Path,
) -> None:
    url = f"file://{tmp_path}/bucket"
    store = open_store(url)
    write_backup(store, "ours")
    write_backup(store, "theirs", ours=False, items=ITEMS[:2])
    code, out, modules = probe("backup", "get", "-o", "json", "--bucket", url)
    assert code == 0
    assert sorted(row["name"] for row in json.loads(out)) == ["ours", "theirs"]
    for package in ("kubernetes", "boto3", "botocore"):
        assert not _loaded(modules, package), package
    assert "migrate.cli.backup_read_cmd" in modules  # the command did run from its module


def test_version_imports_no_heavy_library_and_no_command() -> None:
    code, out, modules = probe("--version")
    assert code == 0 and out.startswith("kube-migrate, version ")
    for package in HEAVY:
        assert not _loaded(modules, package), package
    assert not [m for m in modules if m.endswith("_cmd")]


def test_root_help_lists_every_command_without_importing_one() -> None:
    code, out, modules = probe("--help")
    assert code == 0
    for package in HEAVY:
        assert not _loaded(modules, package), package
    assert not [m for m in modules if m.endswith("_cmd")]
    listed = out.split("\nCommands:\n")[1].split("\n\n")[0].splitlines()
    assert [line.split()[0] for line in listed] == sorted(COMMANDS)
    assert "Exit codes:" in out
    assert all(f"{code:>3}  {text}" in out for code, text in EXIT_CODES.items())


def test_group_help_imports_no_heavy_library() -> None:
    code, out, modules = probe("backup", "--help")
    assert code == 0 and "create" in out and "wait-sync" in out
    for package in HEAVY:
        assert not _loaded(modules, package), package


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_root_listing_is_each_commands_own_short_help(name: str) -> None:
    """COMMANDS' short help, shortened as click shortens it, is the command's own at any
    width, so the root --help reads as it would with every command imported."""
    real = cli.get_command(click.Context(cli), name)
    assert real is not None and real.name == name
    stub = click.Command(name, help=COMMANDS[name][1])
    for limit in (20, 45, 66, 80, 1000):
        assert stub.get_short_help_str(limit) == real.get_short_help_str(limit), limit


def test_an_unknown_command_is_a_usage_error(capfd: pytest.CaptureFixture[str]) -> None:
    assert cli.get_command(click.Context(cli), "nosuch") is None
    code, out, _ = probe("nosuch")
    assert code == EXIT_USAGE and out == ""
    err = capfd.readouterr().err
    assert "kube-migrate: error: No such command 'nosuch'." in err
    assert "hint: see 'kube-migrate --help'" in err
