"""The CLI as users run it: the installed console scripts, as subprocesses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from migrate.cli.main import run
from migrate.cli.output import emit, emit_with_rows
from migrate.errors import EXIT_ACCESS, EXIT_CODES, EXIT_INTERRUPTED, EXIT_USAGE

from .conftest import Env

BIN = Path(sys.executable).parent


PLANE_NODES = 4  # each dev-env plane: 3 kwok nodes + 1 real node (hack/devenv/node.py)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "kube-migrate"), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("side", ["source", "target"])
def test_cluster_info_formats(dev_env: Env, side: str) -> None:
    kc = getattr(dev_env, f"{side}_kubeconfig")
    expected = getattr(dev_env, f"{side}_version")
    out = run_cli("cluster", "info", "--kubeconfig", kc, "-o", "json")
    assert out.returncode == 0, out.stderr
    facts = json.loads(out.stdout)
    if expected:
        assert facts["version"] == expected
    assert facts["nodes"] == PLANE_NODES
    assert facts["namespaces"] >= 4
    assert facts["resources"] > 40 and facts["apiGroups"] > 15
    as_yaml = yaml.safe_load(run_cli("cluster", "info", "--kubeconfig", kc, "-o", "yaml").stdout)
    assert as_yaml["version"] == facts["version"] and as_yaml["nodes"] == PLANE_NODES
    table = run_cli("cluster", "info", "--kubeconfig", kc).stdout.splitlines()
    assert table[0].split() == [
        "CONTEXT",
        "SERVER",
        "VERSION",
        "APIGROUPS",
        "RESOURCES",
        "NAMESPACES",
        "NODES",
    ]
    assert table[1].split()[2] == facts["version"] and table[1].split()[-1] == str(PLANE_NODES)


def test_kubectl_plugin_and_version(dev_env: Env) -> None:
    out = subprocess.run(
        [str(BIN / "kubectl-migrate"), "--version"], capture_output=True, text=True, check=True
    )
    assert "kube-migrate, version 0.1.0" in out.stdout
    kubectl = next(Path.home().glob(".cache/kube-migrate/bin/k8s-*/kubectl"), None)
    if kubectl is None:
        kubectl = Path(shutil.which("kubectl") or "kubectl")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(
        [
            str(kubectl),
            "migrate",
            "cluster",
            "info",
            "--kubeconfig",
            dev_env.target_kubeconfig,
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["nodes"] == PLANE_NODES


def test_missing_kubeconfig_error(tmp_path: Path) -> None:
    out = run_cli("cluster", "info", "--kubeconfig", str(tmp_path / "missing"))
    assert out.returncode == EXIT_USAGE
    lines = out.stderr.strip().splitlines()
    assert lines[0] == f"kube-migrate: error: kubeconfig not found: {tmp_path / 'missing'}"
    assert lines[1].startswith("hint: ")
    assert out.stdout == ""


def test_bad_context_error(dev_env: Env) -> None:
    out = run_cli("cluster", "info", "--kubeconfig", dev_env.source_kubeconfig, "--context", "nope")
    assert out.returncode == EXIT_USAGE
    assert "error: context 'nope' not found" in out.stderr
    assert "hint: available contexts: source" in out.stderr


def test_unreachable_server_error(tmp_path: Path) -> None:
    kc = tmp_path / "kc"
    kc.write_text(
        "apiVersion: v1\nkind: Config\n"
        "clusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\n"
        "users:\n- name: u\n  user: {token: t}\n"
        "contexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n"
    )
    # both at once: each retries the dead address for its 5 s connect budget
    with ThreadPoolExecutor(2) as pool:
        plain = pool.submit(run_cli, "cluster", "info", "--kubeconfig", str(kc))
        debug = pool.submit(run_cli, "--debug", "cluster", "info", "--kubeconfig", str(kc))
        out, dbg = plain.result(), debug.result()
    assert out.returncode == EXIT_ACCESS
    assert out.stderr.startswith("kube-migrate: error: x: cannot reach https://127.0.0.1:1")
    assert "hint: is the API server up?" in out.stderr
    assert "Traceback" not in out.stderr
    assert dbg.returncode == EXIT_ACCESS and "Traceback" in dbg.stderr


def test_usage_errors() -> None:
    out = run_cli("cluster", "info", "-o", "xml")
    assert out.returncode == EXIT_USAGE
    assert "error: Invalid value for '-o'" in out.stderr
    assert "hint: see 'kube-migrate cluster info --help'" in out.stderr
    assert run_cli("no-such-verb").returncode == EXIT_USAGE
    helptext = run_cli("--help")
    assert helptext.returncode == 0 and "Exit codes" in helptext.stdout


@pytest.mark.parametrize("script", ["kube-migrate", "kubectl-migrate"])
def test_help_prints_the_exit_codes_as_a_table(script: str) -> None:
    """Each exit code on a line of its own, with its meaning (click rewraps paragraphs)."""
    out = subprocess.run(
        [str(BIN / script), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    start = lines.index("  Exit codes:")
    table = [line.split(None, 1) for line in lines[start + 1 :] if line.strip()]
    assert [(int(code), text) for code, text in table] == list(EXIT_CODES.items())


def test_json_logs_go_to_stderr(dev_env: Env) -> None:
    out = run_cli(
        "-vv",
        "--log-format",
        "json",
        "cluster",
        "info",
        "--kubeconfig",
        dev_env.source_kubeconfig,
        "-o",
        "json",
    )
    assert out.returncode == 0
    json.loads(out.stdout)  # stdout is data only
    for line in out.stderr.splitlines():
        assert json.loads(line)["level"] in {"debug", "info", "notice", "warning", "error"}


def test_ctrl_c_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    from migrate.cli import flags_cluster

    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(flags_cluster, "connect", interrupted)
    assert run(["cluster", "info"]) == EXIT_INTERRUPTED


@pytest.mark.parametrize("fmt", ["json", "yaml"])
@pytest.mark.parametrize("rows", [0, 1, 3])
@pytest.mark.parametrize("head", [{}, {"name": "r", "phase": "Completed", "warnings": ["w"]}])
def test_rows_written_one_by_one_equal_the_whole_document(
    capsys: pytest.CaptureFixture[str], fmt: str, rows: int, head: dict[str, Any]
) -> None:
    """restore create -o json|yaml streams its per-object rows; the text is exactly what
    emitting the whole document would print."""
    objects = [{"kind": "ConfigMap", "name": f"c{i}", "uid": None, "n": [i, {"x": i}]}
               for i in range(rows)]  # fmt: skip
    emit_with_rows(head, fmt, "objects", iter(objects))
    streamed = capsys.readouterr().out
    emit({**head, "objects": objects}, fmt)
    assert streamed == capsys.readouterr().out
    parsed = json.loads(streamed) if fmt == "json" else yaml.safe_load(streamed)
    assert parsed == {**head, "objects": objects}
