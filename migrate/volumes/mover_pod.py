"""What a mover pod is: its job (verb, claim, placement), its settings (image, bucket
access, repository password) and the pod spec made of them.

The spec is the safety boundary of the data path: the claim mounted read-only unless the
verb writes, a read-only root filesystem, every capability dropped but the few a verb needs,
no service account token, no host path, never privileged; credentials only through the
Secret named like the pod (mover.py creates it, owned by the pod).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from migrate.cluster import Cluster
from migrate.store.mover_access import MoverAccess
from migrate.transform.exclusions import EXCLUDE_LABEL

MOVER_LABEL = "kube-migrate.io/mover"  # backup | restore | verify | forget
BACKUP_LABEL = "kube-migrate.io/backup"  # a backup mover's backup
MANAGED = {"app.kubernetes.io/managed-by": "kube-migrate"}
# ... on a mover's pod and Secret: ours, and never in a backup (a backup of the namespace
# taken while a mover runs, as an increment's objects are beside its data)
MOVER_OBJECT = {**MANAGED, EXCLUDE_LABEL: "true"}
# The claim's mount point, one level below a writable scratch dir: kopia's restore writes
# beside the directory it restores (<dir>.kopia-entry), and the root filesystem is read-only.
DATA = "/mnt/data"
# Capabilities per verb: reading every file whatever its owner and mode, or also writing
# them back with their owners and modes.  Never privileged, never a host path.
CAPS = {
    "backup": ["DAC_READ_SEARCH"],
    "verify": ["DAC_READ_SEARCH"],
    "restore": ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID"],
    "forget": [],  # deletes snapshots in the repository: no claim, no files
}


@dataclass
class MoverJob:
    verb: str  # backup | restore | verify | forget
    namespace: str
    claim: str  # "" for forget: the pod mounts no claim
    args: list[str]
    node: str = ""  # run on this node (the claim's current user's), "" = scheduler's choice
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    node_selector: dict[str, str] = field(default_factory=dict)
    affinity: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    avoid_nodes: list[str] = field(default_factory=list)  # never these (simulated) nodes
    repository: str = ""  # the source namespace whose repository holds the data ("": namespace)
    # takes the mover's latest progress line while it runs (volumes/progress.py)
    watch: Callable[[dict[str, Any]], None] | None = None
    mount: str = ""  # the claim the pod mounts, when not `claim` (a snapshot's temporary one)
    stop: threading.Event | None = None  # set: the pod is stopped and the job fails


@dataclass(frozen=True)
class MoverSettings:
    image: str
    access: MoverAccess
    password: str = field(repr=False)
    timeout: float = 4 * 3600
    memory_limit: str = "1Gi"


def pod_spec(
    job: MoverJob, name: str, cfg: MoverSettings, args: list[str] | None = None
) -> dict[str, Any]:
    """The mover pod: the claim at /data (read-only unless restoring), /tmp scratch; it
    runs the job's verb, or `args` (a standby's) with the verb's mount and capabilities."""
    writes = job.verb == "restore"
    claim_mount: list[dict[str, Any]] = []  # forget: no claim, the repository only
    claim_volume: list[dict[str, Any]] = []
    if job.claim:
        claim_mount = [{"name": "data", "mountPath": DATA, "readOnly": not writes}]
        claim_volume = [
            {
                "name": "data",
                "persistentVolumeClaim": {
                    "claimName": job.mount or job.claim,
                    "readOnly": not writes,
                },
            }
        ]
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": 5,
        "activeDeadlineSeconds": int(cfg.timeout),
        "enableServiceLinks": False,
        "tolerations": job.tolerations,
        "containers": [
            {
                "name": "mover",
                "image": cfg.image,
                "imagePullPolicy": "IfNotPresent",
                "args": args or command(job),
                "envFrom": [{"secretRef": {"name": name}}],
                "securityContext": {
                    "runAsUser": 0,
                    "runAsGroup": 0,
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"], "add": CAPS[job.verb]},
                },
                "resources": {
                    "requests": {"cpu": "100m", "memory": "128Mi"},
                    "limits": {"memory": cfg.memory_limit},
                },
                "volumeMounts": [
                    {"name": "scratch", "mountPath": "/tmp"},
                    {"name": "mnt", "mountPath": "/mnt"},
                    *claim_mount,
                ],
            }
        ],
        "volumes": [
            *claim_volume,
            {"name": "scratch", "emptyDir": {}},
            {"name": "mnt", "emptyDir": {}},
        ],
    }
    if job.node:
        spec["nodeName"] = job.node
    if job.node_selector:
        spec["nodeSelector"] = job.node_selector
    affinity = _avoiding(job.affinity, job.avoid_nodes) if not job.node else job.affinity
    if affinity:
        spec["affinity"] = affinity
    if cfg.access.loopback:  # the bucket is on the node's own loopback (a local setup)
        spec["hostNetwork"] = True
        spec["dnsPolicy"] = "ClusterFirstWithHostNet"
    labels = {**MOVER_OBJECT, MOVER_LABEL: job.verb, **job.labels}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": job.namespace, "labels": labels},
        "spec": spec,
    }


def command(job: MoverJob) -> list[str]:
    """kmmover's arguments for the job (the image's entrypoint is kmmover)."""
    return [job.verb, *(("--path", DATA) if job.claim else ()), *job.args]


def create_mover(
    cluster: Cluster, job: MoverJob, cfg: MoverSettings, name: str, args: list[str] | None = None
) -> None:
    """The job's Secret (bucket access, repository password), then its pod, which the
    Secret is made owned by (the garbage collector removes it with the pod)."""
    disc = cluster.discovery()
    pods, secrets_res = disc.get("", "pods"), disc.get("", "secrets")
    assert pods is not None and secrets_res is not None
    env = {**cfg.access.env(), "KOPIA_PASSWORD": cfg.password}
    env["KM_S3_PREFIX"] = cfg.access.repository_prefix(job.repository or job.namespace)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": job.namespace, "labels": dict(MOVER_OBJECT)},
        "type": "Opaque",
        "stringData": env,
    }
    cluster.create(secrets_res, secret, job.namespace)
    try:
        pod = cluster.create(pods, pod_spec(job, name, cfg, args), job.namespace)
    except BaseException:
        cluster.delete(secrets_res, name, job.namespace)
        raise
    owner = {"apiVersion": "v1", "kind": "Pod", "name": name, "uid": pod["metadata"]["uid"]}
    cluster.patch(secrets_res, name, {"metadata": {"ownerReferences": [owner]}}, job.namespace)


def _avoiding(affinity: dict[str, Any], nodes: list[str]) -> dict[str, Any]:
    """`affinity` plus a required term keeping the pod off `nodes` (ANDed into each of
    the required node selector terms, which are ORed)."""
    if not nodes:
        return affinity
    # one requirement per node: a node field selector takes exactly one value
    off = [{"key": "metadata.name", "operator": "NotIn", "values": [n]} for n in sorted(nodes)]
    out = dict(affinity)
    node_aff = dict(out.get("nodeAffinity") or {})
    required = dict(node_aff.get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = [dict(t) for t in required.get("nodeSelectorTerms") or []] or [{}]
    for t in terms:
        t["matchFields"] = [*(t.get("matchFields") or []), *off]
    required["nodeSelectorTerms"] = terms
    node_aff["requiredDuringSchedulingIgnoredDuringExecution"] = required
    out["nodeAffinity"] = node_aff
    return out


def pod_name(job: MoverJob) -> str:
    stem = f"km-{job.verb}-{job.claim or job.repository or job.namespace}"[:50].rstrip("-.")
    return f"{stem}-{secrets.token_hex(3)}"
