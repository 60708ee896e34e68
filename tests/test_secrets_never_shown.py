"""Secret values never appear in any output: a playbook run that migrates Secrets with
known marker values (in data, in stringData, in a dockerconfigjson, and in the
last-applied-configuration annotation `kubectl apply` leaves on a Secret), at debug log
level, then a drifted verify in every format, describe/logs of the backup and the restore,
the run's reports and every file the bucket holds besides the backup tarball — all
grepped for each marker, raw and base64-encoded.  `verify --show-values` prints ConfigMap
values only; `--show-secrets` is refused.  The control: the same grep finds the markers
in the backup tarball, where they are.

(The tarball holds the Secrets, as Velero's does; `--encryption-key-file` keeps even that
opaque: test_encryption.py.)
"""

from __future__ import annotations

import base64
import gzip
import json
import sys
import uuid
from pathlib import Path

from migrate.cluster import Cluster
from migrate.store import open_store
from tests.conftest import Env
from tests.helpers import run_cli

BIN = Path(sys.executable).parent
MARKERS = [f"M4RK3R-{i}-{uuid.uuid4().hex}" for i in range(5)]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def leaks(text: str) -> list[str]:
    forms = [m for m in MARKERS] + [b64(m) for m in MARKERS]
    forms += [b64(json.dumps({"auths": {"r.example": {"auth": MARKERS[2]}}}))]
    return [f for f in forms if f in text]


def _secrets(source: Cluster, ns: str) -> None:
    res = source.discovery().resolve("secrets")
    applied = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "applied", "namespace": ns},
        "stringData": {"password": MARKERS[3]},
    }
    docs = [
        {"metadata": {"name": "creds"}, "stringData": {"password": MARKERS[0]}},
        {"metadata": {"name": "token"}, "data": {"token": b64(MARKERS[1])}},
        {
            "metadata": {"name": "pull"},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {
                ".dockerconfigjson": b64(json.dumps({"auths": {"r.example": {"auth": MARKERS[2]}}}))
            },
        },
        {
            "metadata": {
                "name": "applied",
                "annotations": {
                    "kubectl.kubernetes.io/last-applied-configuration": json.dumps(applied)
                },
            },
            "stringData": {"password": MARKERS[3]},
        },
    ]
    for doc in docs:
        source.create(res, doc, ns)


def test_no_output_shows_a_secret(
    dev_env: Env, source: Cluster, target: Cluster, source_ns: str, bucket_url: str, tmp_path: Path
) -> None:
    _secrets(source, source_ns)
    dst = f"{source_ns[:50]}-dst"
    book = tmp_path / "secrets.yaml"
    book.write_text(
        "apiVersion: kube-migrate.io/v1alpha1\nkind: Playbook\nmetadata: {name: secrets}\n"
        f"spec:\n  scope: {{includeNamespaces: [{source_ns}]}}\n"
        f"  restore: {{namespaceMappings: {{{source_ns}: {dst}}}}}\n"
        "  steps: [preflight, backup, waitForSync, restore, verify]\n"
    )
    reports = tmp_path / "reports"
    outputs: dict[str, str] = {}
    try:
        run = run_cli(
            "--debug",
            "--log-format",
            "json",
            "run",
            str(book),
            "--bucket",
            bucket_url,
            "--report-dir",
            str(reports),
        )
        assert run.returncode == 0, run.stderr[-3000:]
        outputs["run stdout"], outputs["run stderr"] = run.stdout, run.stderr
        res = target.discovery().resolve("secrets")
        restored = target.get(res, "creds", dst)
        assert base64.b64decode(restored["data"]["password"]).decode() == MARKERS[0]
        # drift: the target's value changes to another marker; verify must say so, blind
        target.patch(res, "creds", {"stringData": {"password": MARKERS[4]}}, dst)
        common = ["--source-kubeconfig", dev_env.source_kubeconfig]
        common += ["--target-kubeconfig", dev_env.target_kubeconfig]
        common += ["--include-namespaces", source_ns, "--namespace-mappings", f"{source_ns}:{dst}"]
        junit = tmp_path / "verify.xml"
        for fmt in ("table", "json", "markdown", "html"):
            out = run_cli("-vv", "verify", *common, "-o", fmt, "--junit", str(junit))
            assert out.returncode == 1, out.stderr[-2000:]
            assert "creds" in out.stdout  # the drift is reported, by name
            outputs[f"verify -o {fmt}"] = out.stdout + out.stderr
            outputs[f"verify junit {fmt}"] = junit.read_text()
        shown = run_cli("verify", *common, "-o", "json", "--show-values")  # opens ConfigMaps only
        assert shown.returncode == 1 and "creds" in shown.stdout
        outputs["verify --show-values"] = shown.stdout + shown.stderr
        refused = run_cli("verify", *common, "--show-secrets")
        assert refused.returncode == 2 and "never prints Secret values" in refused.stderr
        # the control: the grep does see the values where they are (the backup tarball)
        in_tarball = leaks(_tarball_text(bucket_url))
        assert {b64(MARKERS[0]), b64(MARKERS[1]), MARKERS[3]} <= set(in_tarball), in_tarball
        outputs |= _catalog_outputs(bucket_url)
        for f in sorted(reports.rglob("*")):
            if f.is_file():
                outputs[f"report {f.name}"] = f.read_text(errors="replace")
        bucket = _bucket_files(bucket_url)
        assert len(bucket) >= 8  # metadata, manifest, lists, logs, results of both
        outputs |= bucket
        found = {where: leaks(text) for where, text in outputs.items() if leaks(text)}
        assert not found, f"secret values leaked into: {sorted(found)}"
    finally:
        target.delete(target.discovery().resolve("namespaces"), dst)


def _catalog_outputs(bucket_url: str) -> dict[str, str]:
    """get, describe --details and logs of every backup and restore in the bucket."""
    outputs, made = {}, []
    for kind in ("backup", "restore"):
        out = run_cli(kind, "get", "-o", "json", "--bucket", bucket_url)
        assert out.returncode == 0, out.stderr
        outputs[f"{kind} get"] = out.stdout + out.stderr
        made += [(kind, row["name"]) for row in json.loads(out.stdout)]
    assert {k for k, _ in made} == {"backup", "restore"}
    for kind, name in made:
        for args in ([kind, "describe", name, "--details", "-o", "json"], [kind, "logs", name]):
            out = run_cli(*args, "--bucket", bucket_url)
            assert out.returncode == 0, out.stderr
            outputs[" ".join(args)] = out.stdout + out.stderr
    return outputs


def _tarball_text(bucket_url: str) -> str:
    """The backup tarball's content (gunzipped: the tar of the objects' JSON)."""
    store = open_store(bucket_url)
    (tarball,) = [i.key for i in store.list("backups/") if i.key.endswith(".tar.gz")]
    return gzip.decompress(store.get(tarball)).decode(errors="replace")


def _bucket_files(bucket_url: str) -> dict[str, str]:
    """Every file under the prefix (gunzipped) except the backup tarball, which must hold
    the Secrets (test_encryption.py covers that one)."""
    store = open_store(bucket_url)
    out = {}
    for info in store.list(""):
        if info.key.endswith(".tar.gz") and "/backups/" in f"/{info.key}":
            continue
        blob = store.get(info.key)
        if info.key.endswith(".gz"):
            blob = gzip.decompress(blob)
        out[f"bucket {info.key}"] = blob.decode(errors="replace")
    return out
