"""Start-up time of the CLI: how long a command takes before it does any work.

Every command used to import the kubernetes client, boto3, networkx and rich (~0.6 s
before `--version` could answer); the root group now imports a command's module only
when that command runs (migrate/cli/main.py) and those libraries are imported where
they are used.  This times, as fresh processes of the installed `kube-migrate` script,
`--version`, `--help`, `backup --help` and `backup get` on an empty local bucket, best
of --runs each (the commands interleaved, so a drift in the machine's load hits them
alike), next to `python -c pass` with the same interpreter: the part of a start-up
that is not ours.  Prints one row per target (bench/targets.py), writes JSON and exits
3 when a figure misses its target.  Needs no cluster; bench/run.py runs it too.
What a command imports (no kubernetes for `backup get`) is tested in
tests/test_startup.py; the seconds are judged here.

    .venv/bin/python bench/startup.py [--runs 5] [--json bench/results/startup.json]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from targets import STARTUP, conclude, verdicts  # bench/ is sys.path[0] as a script

ROOT = Path(__file__).resolve().parent.parent
RUNS = 5
BASELINE = "startupPythonSeconds"  # `python -c pass`: the interpreter's own start-up
# figure -> the arguments of `kube-migrate` ({bucket}: an empty local bucket)
COMMANDS: dict[str, tuple[str, ...]] = {
    "startupVersionSeconds": ("--version",),
    "startupHelpSeconds": ("--help",),
    "startupBackupHelpSeconds": ("backup", "--help"),
    "startupBackupGetSeconds": ("backup", "get", "-o", "json", "--bucket", "{bucket}"),
}


def kube_migrate() -> list[str]:
    """The console script a user runs, installed next to this interpreter."""
    script = Path(sys.executable).with_name("kube-migrate")
    return [str(script)] if script.exists() else [sys.executable, "-m", "migrate"]


def _once(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False
    )
    seconds = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{' '.join(argv)}: exit code {proc.returncode}: {proc.stderr.strip()}")
    return seconds


def measure(runs: int = RUNS) -> dict[str, float]:
    """Best of `runs` fresh processes for each command and for `python -c pass`."""
    # a bucket or an import profile in the caller's environment would change what is timed
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("KUBE_MIGRATE_") and k != "PYTHONPROFILEIMPORTTIME"
    }
    samples: dict[str, list[float]] = {BASELINE: [], **{figure: [] for figure in COMMANDS}}
    with tempfile.TemporaryDirectory(prefix="km-startup-") as bucket:
        argvs = {BASELINE: [sys.executable, "-c", "pass"]}
        for figure, args in COMMANDS.items():
            argvs[figure] = kube_migrate() + [a.format(bucket=f"file://{bucket}") for a in args]
        for _ in range(runs):
            for figure, argv in argvs.items():
                samples[figure].append(_once(argv, env))
    return {figure: round(min(times), 4) for figure, times in samples.items()}


def lines(o: dict[str, float]) -> list[str]:
    """Each command: seconds, share of its target, and its overhead over bare python."""
    out = [f"python -c pass: {o[BASELINE]:.3f}s (the interpreter's own start-up)"]
    for t in STARTUP:
        if t.figure in o:
            seconds = o[t.figure]
            out.append(
                f"{t.label}: {seconds:.3f}s, {seconds / t.limit:.2f} of the {t.limit:.2f}s "
                f"target, {seconds - o[BASELINE]:.3f}s over python -c pass"
            )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--runs", type=int, default=RUNS, help="processes per command (best of)")
    ap.add_argument("--json", default=str(ROOT / "bench" / "results" / "startup.json"))
    args = ap.parse_args()
    result: dict[str, object] = dict(measure(max(args.runs, 1)))
    o = {k: float(v) for k, v in result.items() if isinstance(v, float)}
    judged = verdicts(o, STARTUP)
    print("\n".join(lines(o)))
    conclude(result, judged, args.json)


if __name__ == "__main__":
    main()
