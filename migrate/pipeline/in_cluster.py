"""`run PLAYBOOK --in-cluster`: the same run, as a Job in a cluster instead of this machine.

A migration that takes an hour should not depend on a laptop's lid. The run is handed to
a Job whose pod runs this same CLI from the kube-migrate image, with what this machine
would have used: the playbook, the two kubeconfigs (flattened: certificates embedded, one
context each) and the bucket's credentials as boto3 resolved them here, all in one Secret
that lives exactly as long as the Job. The pod prints its log lines as JSON on stderr and
the report document as JSON on stdout; the kubelet keeps each line of each stream whole,
so following the log separates them again: log lines are shown here, the document becomes
the same report directory a local run writes. The run's state is mirrored to the bucket
as always, so `run --resume RUN` continues it from anywhere.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from migrate.cluster import Cluster
from migrate.errors import EXIT_INTERRUPTED, MigrateError, NotFound
from migrate.schedule.manifests import apply_overrides, container_security, pod_security
from migrate.store import Store
from migrate.store.mover_access import mover_access

MOUNT = "/etc/kube-migrate/run"
TTL = 3600  # seconds a finished Job (and its Secret) stays when no one removed it
LABEL = "kube-migrate.io/in-cluster-run"


@dataclass(frozen=True)
class Submission:
    """What the Job runs, as this machine resolved it."""

    namespace: str
    image: str
    playbook: str  # its YAML text; "" when args resume a run
    kubeconfigs: dict[str, str]  # side -> flattened kubeconfig text
    args: tuple[str, ...]  # `run`'s own flags (--set, --dry-run, --stop-before...)
    bucket_env: dict[str, str] = field(default_factory=dict)
    pod_overrides: tuple[dict[str, Any], ...] = ()


def credentials_file(store: Store) -> str | None:
    """The bucket's credentials in AWS's shared-credentials format, or None (file://)."""
    if store.url.scheme != "s3":
        return None
    a = mover_access(store)
    token = f"aws_session_token={a.session_token}\n" if a.session_token else ""
    keys = f"aws_access_key_id={a.access_key}\naws_secret_access_key={a.secret_key}\n"
    return f"[default]\n{keys}{token}"


def manifests(sub: Submission, name: str, creds: str | None) -> tuple[dict[str, Any], ...]:
    """The Secret and the Job of one in-cluster run."""
    labels = {LABEL: name, "app.kubernetes.io/managed-by": "kube-migrate"}
    data = {f"{k}.kubeconfig": v for k, v in sub.kubeconfigs.items()}
    if sub.playbook:  # else a --resume in args: the pod finds the run in the bucket
        data["playbook.yaml"] = sub.playbook
    if creds:
        data["cloud"] = creds
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": sub.namespace, "labels": labels},
        "stringData": data,
    }
    argv = [
        "--log-format",
        "json",
        "run",
        *([f"{MOUNT}/playbook.yaml"] if sub.playbook else []),
        "-o",
        "json",
        "--report-artefacts",
        "--report-dir",
        "/tmp/report",
        *sub.args,
    ]
    for side in sub.kubeconfigs:
        argv += [f"--{side}-kubeconfig", f"{MOUNT}/{side}.kubeconfig"]
    env = [{"name": k, "value": v} for k, v in sorted(sub.bucket_env.items())]
    if creds:
        env.append({"name": "AWS_SHARED_CREDENTIALS_FILE", "value": f"{MOUNT}/cloud"})
    pod: dict[str, Any] = {
        "metadata": {"labels": labels},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,  # the kubeconfigs are its identity
            "securityContext": pod_security(),
            "containers": [
                {
                    "name": "run",
                    "image": sub.image,
                    "imagePullPolicy": "IfNotPresent",
                    "args": argv,
                    "env": env,
                    "volumeMounts": [
                        {"name": "run", "mountPath": MOUNT, "readOnly": True},
                        {"name": "tmp", "mountPath": "/tmp"},
                    ],
                    "securityContext": container_security(),
                }
            ],
            "volumes": [
                {"name": "run", "secret": {"secretName": name}},
                {"name": "tmp", "emptyDir": {}},
            ],
        },
    }
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": sub.namespace, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": TTL,
            "template": apply_overrides(pod, sub.pod_overrides),
        },
    }
    return secret, job


def run_in_cluster(
    cluster: Cluster,
    sub: Submission,
    store: Store | None,
    on_log: Callable[[dict[str, Any]], None],
) -> tuple[int, dict[str, Any] | None]:
    """Submit, follow until the pod ends, remove the Job and Secret; the pod's exit code
    and its report document (None if it printed none)."""
    name = f"kube-migrate-run-{uuid.uuid4().hex[:8]}"
    disc = cluster.discovery()
    res = {k: disc.resolve(k) for k in ("namespaces", "secrets", "jobs.batch", "pods")}
    try:
        cluster.get(res["namespaces"], sub.namespace)
    except NotFound:
        ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": sub.namespace}}
        cluster.create(res["namespaces"], ns)
    secret, job = manifests(sub, name, credentials_file(store) if store else None)
    cluster.create(res["secrets"], secret, sub.namespace)
    try:
        made = cluster.create(res["jobs.batch"], job, sub.namespace)
    except BaseException:
        cluster.delete(res["secrets"], name, sub.namespace)
        raise
    owner = {"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": made["metadata"]["uid"]}
    # the Secret goes with the Job, whoever removes it (here, or its TTL if this ends first)
    patch = {"metadata": {"ownerReferences": [owner]}}
    cluster.patch(res["secrets"], name, patch, sub.namespace)
    try:
        result = _follow(cluster, res["pods"], sub.namespace, name, on_log)
    except KeyboardInterrupt:
        raise Detached(f"{sub.namespace}/{name}") from None
    cluster.delete(res["jobs.batch"], name, sub.namespace, propagation="Foreground")
    return result


class Detached(MigrateError):
    """This process stopped following; the run goes on in the cluster."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, job: str) -> None:
        ns, name = job.split("/")
        super().__init__(
            f"stopped following; the run goes on as Job {job}",
            hint=f"`kubectl -n {ns} logs -f job/{name}`; its report is in the log, its state "
            f"in the bucket (`kube-migrate run --resume RUN`); Job and Secret go {TTL}s after "
            "it ends",
        )


def _follow(
    cluster: Cluster, pods: Any, ns: str, name: str, on_log: Callable[[dict[str, Any]], None]
) -> tuple[int, dict[str, Any] | None]:
    shown, doc_lines, in_doc = 0, [], False
    while True:
        listed = list(cluster.list(pods, ns, label_selector=f"{LABEL}={name}"))
        pod = listed[0] if listed else None
        phase = (pod or {}).get("status", {}).get("phase", "Pending")
        if pod and phase != "Pending":
            lines = cluster.pod_log(ns, pod["metadata"]["name"], "run").decode().splitlines()
            for line in lines[shown:]:
                parsed = _json(line)
                if isinstance(parsed, dict) and "msg" in parsed:
                    on_log(parsed)
                elif in_doc or line == "{":  # stdout: `-o json`'s document, indented
                    doc_lines.append(line)
                    in_doc = line != "}"
                elif line.strip():  # click's own lines (kube-migrate: error: ..., hint: ...)
                    on_log({"level": "error", "msg": line})
            shown = len(lines)
        if phase in ("Succeeded", "Failed") and pod:
            state = pod["status"]["containerStatuses"][0]["state"].get("terminated") or {}
            doc = _json("\n".join(doc_lines)) if doc_lines else None
            return int(state.get("exitCode", 1)), doc if isinstance(doc, dict) else None
        _check_pending(pod)
        time.sleep(1.0)


def _check_pending(pod: dict[str, Any] | None) -> None:
    """An image that cannot be pulled is an error now, not a hang."""
    for cs in ((pod or {}).get("status") or {}).get("containerStatuses") or []:
        reason = ((cs.get("state") or {}).get("waiting") or {}).get("reason", "")
        if reason in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName"):
            raise MigrateError(
                f"the run's pod cannot start: {reason} for image {cs.get('image')}",
                hint="push the image (`make image`) where the cluster pulls from, or --image",
            )


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None
