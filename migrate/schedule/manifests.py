"""The objects a schedule is: ServiceAccount, least-privilege RBAC and a CronJob.

One function builds them from the schedule's settings, and everything uses it: `schedule
create` applies them, `create --dry-run -o yaml` prints them for a GitOps repository, and
the tests read what was installed against them. The CronJob's pod runs `kube-migrate
schedule fire NAME -- <backup create flags>` with the bucket in its environment and the
bucket's credentials (if any) as a mounted Secret in AWS's shared-credentials format
(Velero's `cloud-credentials` Secret works as is). Nothing here needs hostNetwork; a
cluster that needs more (a proxy, a node selector) gets it through --pod-overrides, a JSON
patch on the pod template.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jsonpatch

from migrate.errors import UsageError
from migrate.schedule.rbac import Rule, cluster_write_rules, namespaced_rules, read_rules

MANAGED = {"app.kubernetes.io/managed-by": "kube-migrate"}
SCHEDULE_LABEL = "kube-migrate.io/schedule"
VELERO_SCHEDULE_LABEL = "velero.io/schedule-name"  # Velero's own: its `backup get` groups by it
TTL_ANNOTATION = "kube-migrate.io/ttl"
UID = 65532
CREDENTIALS_DIR = "/credentials"
DRILL_DIR = "/etc/kube-migrate/drill"
RBAC = "rbac.authorization.k8s.io"


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule's settings, as `schedule create` took them."""

    name: str
    schedule: str
    image: str
    ttl: str
    namespace: str = "kube-migrate"
    time_zone: str | None = None
    backup_args: tuple[str, ...] = ()  # `backup create` flags (scope, volumes...)
    namespaces: tuple[str, ...] = ("*",)  # the backed-up namespaces: where writes are bound
    volumes: bool = False
    snapshots: bool = False
    quiesce: bool = False
    bucket_env: dict[str, str] = field(default_factory=dict)  # never credentials
    credentials_secret: str | None = None
    credentials_key: str = "cloud"
    sa_annotations: dict[str, str] = field(default_factory=dict)  # workload identity
    pod_overrides: tuple[dict[str, Any], ...] = ()  # JSON patch ops on the pod template
    starting_deadline: int = 300
    history: int = 3
    suspend: bool = False
    drill: bool = False  # the pod runs the playbook of drill_secret(), not a backup

    @property
    def account(self) -> str:
        return f"kube-migrate-{self.name}"

    @property
    def role_prefix(self) -> str:
        return f"kube-migrate:schedule:{self.namespace}:{self.name}"


def manifests(spec: ScheduleSpec, resources: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Every object of the schedule, in the order they are applied (the CronJob last: it
    never runs before its identity can)."""
    labels = {**MANAGED, SCHEDULE_LABEL: spec.name}
    objs: list[dict[str, Any]] = [
        _obj("v1", "ServiceAccount", spec.account, spec, labels, spec.sa_annotations),
    ]
    if spec.drill:  # its identity is the target's kubeconfig in its Secret: no RBAC here
        return [*objs, cronjob(spec, labels)]
    subject = [{"kind": "ServiceAccount", "name": spec.account, "namespace": spec.namespace}]
    roles = [(f"{spec.role_prefix}:read", read_rules(resources), ["*"])]
    writes = namespaced_rules(spec.volumes, spec.snapshots, spec.quiesce)
    if writes:
        roles.append((f"{spec.role_prefix}:volumes", writes, list(spec.namespaces)))
    cluster_writes = cluster_write_rules(spec.volumes, spec.snapshots)
    if cluster_writes:
        roles.append((f"{spec.role_prefix}:snapshot-contents", cluster_writes, ["*"]))
    for role, rules, where in roles:
        objs.append(_role(role, rules, labels))
        ref = {"apiGroup": RBAC, "kind": "ClusterRole", "name": role}
        for ns in where:
            kind = "ClusterRoleBinding" if ns == "*" else "RoleBinding"
            b = _obj(f"{RBAC}/v1", kind, role, spec, labels, None, None if ns == "*" else ns)
            objs.append(b | {"roleRef": ref, "subjects": subject})
    objs.append(cronjob(spec, labels))
    return objs


def cronjob(spec: ScheduleSpec, labels: dict[str, str]) -> dict[str, Any]:
    env = [{"name": k, "value": v} for k, v in sorted(spec.bucket_env.items())]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {}}]
    if spec.credentials_secret:
        path = f"{CREDENTIALS_DIR}/{spec.credentials_key}"
        env.append({"name": "AWS_SHARED_CREDENTIALS_FILE", "value": path})
        mounts.append({"name": "credentials", "mountPath": CREDENTIALS_DIR, "readOnly": True})
        volumes.append({"name": "credentials", "secret": {"secretName": spec.credentials_secret}})
    args = ["schedule", "fire", spec.name, "--ttl", spec.ttl, "--", *spec.backup_args]
    if spec.drill:
        args = ["run", f"{DRILL_DIR}/playbook.yaml", "--target-kubeconfig",
                f"{DRILL_DIR}/target.kubeconfig", "--report-dir", "/tmp/report"]  # fmt: skip
        mounts.append({"name": "drill", "mountPath": DRILL_DIR, "readOnly": True})
        volumes.append({"name": "drill", "secret": {"secretName": f"{spec.name}-drill"}})
    container: dict[str, Any] = {
        "name": "drill" if spec.drill else "backup",
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        "env": env,
        "volumeMounts": mounts,
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "2Gi"}},
        "securityContext": container_security(),
    }
    template: dict[str, Any] = {
        "metadata": {"labels": dict(labels)},
        "spec": {
            "serviceAccountName": spec.account,
            "automountServiceAccountToken": not spec.drill,
            "restartPolicy": "Never",
            "securityContext": pod_security(),
            "containers": [container],
            "volumes": volumes,
        },
    }
    template = apply_overrides(template, spec.pod_overrides)
    cron: dict[str, Any] = {
        "schedule": spec.schedule,
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": spec.starting_deadline,
        "successfulJobsHistoryLimit": spec.history,
        "failedJobsHistoryLimit": spec.history,
        "suspend": spec.suspend,
        "jobTemplate": {
            "metadata": {"labels": dict(labels)},
            "spec": {"backoffLimit": 1, "template": template},
        },
    }
    if spec.time_zone:
        cron["timeZone"] = spec.time_zone
    obj = _obj("batch/v1", "CronJob", spec.name, spec, labels, {TTL_ANNOTATION: spec.ttl})
    return obj | {"spec": cron}


def pod_security() -> dict[str, Any]:
    """The pod side of every pod kube-migrate runs itself (schedules, in-cluster runs):
    the image's non-root user, the runtime's default seccomp profile."""
    return {
        "runAsUser": UID,
        "runAsGroup": UID,
        "fsGroup": UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security() -> dict[str, Any]:
    """...and its container's: no privilege, no capability, nothing writable but mounts."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def drill_secret(spec: ScheduleSpec, playbook: str, kubeconfig: str) -> dict[str, Any]:
    """A drill's playbook and the kubeconfig of the cluster it restores into (flattened).
    Applied by `schedule create`, never printed: --dry-run leaves it out."""
    labels = {**MANAGED, SCHEDULE_LABEL: spec.name}
    obj = _obj("v1", "Secret", f"{spec.name}-drill", spec, labels, None)
    data = {"playbook.yaml": playbook, "target.kubeconfig": kubeconfig}
    return obj | {"type": "Opaque", "stringData": data}


def apply_overrides(template: dict[str, Any], ops: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    """The pod template with the RFC 6902 patch applied (paths from the template's root:
    /spec/hostNetwork, /spec/containers/0/env/-)."""
    if not ops:
        return template
    try:
        out: dict[str, Any] = jsonpatch.apply_patch(template, list(ops))
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
        raise UsageError(
            f"--pod-overrides does not apply to the pod template: {exc}",
            hint="paths start at the template: /spec/hostNetwork, /spec/containers/0/env/-",
        ) from None
    return out


def _role(name: str, rules: list[Rule], labels: dict[str, str]) -> dict[str, Any]:
    meta = {"name": name, "labels": dict(labels)}
    return {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "metadata": meta, "rules": rules}


def _obj(
    api: str,
    kind: str,
    name: str,
    spec: ScheduleSpec,
    labels: dict[str, str],
    annotations: dict[str, str] | None,
    namespace: str | None = "",
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": dict(labels)}
    ns = spec.namespace if namespace == "" else namespace
    if ns:
        meta["namespace"] = ns
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": api, "kind": kind, "metadata": meta}
