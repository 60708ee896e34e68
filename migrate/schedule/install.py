"""A schedule's objects in its cluster: apply, read, pause, run now, delete.

`apply` checks every object with a server-side dry run before the first write (a schedule
the API server would refuse installs nothing), then server-side-applies them in order, so
running `schedule create` again updates a schedule in place (new flags, RBAC refreshed for
CRDs installed since). It refuses to take over a CronJob kube-migrate did not install.
Deleting removes what the schedule's label selects; its backups stay in the bucket.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from migrate.cluster import APIResource, Cluster
from migrate.errors import AlreadyExists, NotFound, UsageError
from migrate.schedule.manifests import MANAGED, SCHEDULE_LABEL

KINDS = {  # kind -> (group, resource), in apply order
    "Namespace": ("", "namespaces"),
    "ServiceAccount": ("", "serviceaccounts"),
    "ClusterRole": ("rbac.authorization.k8s.io", "clusterroles"),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io", "clusterrolebindings"),
    "RoleBinding": ("rbac.authorization.k8s.io", "rolebindings"),
    "Secret": ("", "secrets"),  # a drill's playbook and target kubeconfig
    "CronJob": ("batch", "cronjobs"),
}
MANAGED_KEY, MANAGED_VALUE = next(iter(MANAGED.items()))


def served_resources(cluster: Cluster) -> list[tuple[str, str]]:
    """(group, resource) of everything the cluster lists: what a backup may read."""
    return sorted({(r.group, r.resource) for r in cluster.discovery() if r.listable})


def apply(cluster: Cluster, objs: list[dict[str, Any]]) -> None:
    """Dry-run every object, then apply them in order (UsageError if the API refuses one,
    or the CronJob's name is taken by another owner)."""
    cron = next(o for o in objs if o["kind"] == "CronJob")
    _check_owner(cluster, cron)
    ns_planned = {o["metadata"]["name"] for o in objs if o["kind"] == "Namespace"}
    for o in objs:
        ns = o["metadata"].get("namespace")
        try:
            _apply(cluster, o, dry_run=True)
        except NotFound:
            if ns not in ns_planned or _exists(cluster, "Namespace", ns, None):
                raise
    for o in objs:
        _apply(cluster, o, dry_run=False)


def _apply(cluster: Cluster, obj: dict[str, Any], dry_run: bool) -> None:
    m = obj["metadata"]
    cluster.patch(
        _res(cluster, obj["kind"]), m["name"], obj, m.get("namespace"),
        patch_type="apply", force=True, dry_run=dry_run,
    )  # fmt: skip


def _check_owner(cluster: Cluster, cron: dict[str, Any]) -> None:
    m = cron["metadata"]
    try:
        live = cluster.get(_res(cluster, "CronJob"), m["name"], m["namespace"])
    except NotFound:
        return
    labels = live["metadata"].get("labels") or {}
    if labels.get(MANAGED_KEY) != MANAGED_VALUE or labels.get(SCHEDULE_LABEL) != m["name"]:
        raise UsageError(
            f"CronJob {m['namespace']}/{m['name']} exists and is not a kube-migrate schedule",
            hint="choose another schedule name, or --namespace",
        )


def get(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    try:
        obj = cluster.get(_res(cluster, "CronJob"), name, namespace)
    except NotFound:
        obj = {}
    if (obj.get("metadata", {}).get("labels") or {}).get(SCHEDULE_LABEL) != name:
        raise UsageError(
            f"no schedule {name!r} in namespace {namespace}",
            hint="`kube-migrate schedule get` lists them (--namespace for another one)",
        )
    return obj


def list_schedules(cluster: Cluster, namespace: str | None) -> list[dict[str, Any]]:
    sel = f"{MANAGED_KEY}={MANAGED_VALUE},{SCHEDULE_LABEL}"
    items = cluster.list(_res(cluster, "CronJob"), namespace=namespace, label_selector=sel)
    return sorted(items, key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"]))


def set_suspend(cluster: Cluster, namespace: str, name: str, suspend: bool) -> None:
    get(cluster, namespace, name)
    patch = {"spec": {"suspend": suspend}}
    cluster.patch(_res(cluster, "CronJob"), name, patch, namespace)


def run_now(cluster: Cluster, namespace: str, name: str) -> str:
    """A Job from the CronJob's template now (`kubectl create job --from=cronjob/...`);
    its name. Owned by the CronJob: its history and `describe` count it."""
    cron = get(cluster, namespace, name)
    tmpl = cron["spec"]["jobTemplate"]
    job_name = f"{name}-manual-{int(time.time())}"[-63:]
    meta = dict(tmpl.get("metadata") or {})
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta
        | {
            "name": job_name,
            "namespace": namespace,
            "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "name": name,
                    "uid": cron["metadata"]["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": tmpl["spec"],
    }
    try:
        cluster.create(_res(cluster, "Job"), job, namespace)
    except AlreadyExists:
        raise UsageError(f"job {job_name} exists", hint="wait a second and run again") from None
    return job_name


@dataclass(frozen=True)
class JobRun:
    name: str
    started: str | None
    finished: str | None
    outcome: str  # Running, Succeeded, Failed
    manual: bool


def runs(cluster: Cluster, namespace: str, name: str) -> list[JobRun]:
    """The schedule's Jobs the cluster still holds (its history limits), newest first."""
    jobs = cluster.list(_res(cluster, "Job"), namespace=namespace, label_selector=_sel(name))
    out = []
    for j in jobs:
        st, ann = j.get("status") or {}, j["metadata"].get("annotations") or {}
        conds = {c["type"]: c["status"] for c in st.get("conditions") or []}
        outcome = (
            "Succeeded"
            if conds.get("Complete") == "True"
            else "Failed"
            if conds.get("Failed") == "True"
            else "Running"
        )
        manual = ann.get("cronjob.kubernetes.io/instantiate") == "manual"
        started = st.get("startTime") or j["metadata"].get("creationTimestamp")
        out.append(
            JobRun(j["metadata"]["name"], started, st.get("completionTime"), outcome, manual)
        )
    return sorted(out, key=lambda r: r.started or "", reverse=True)


def delete(cluster: Cluster, namespace: str, name: str) -> list[str]:
    """Remove the schedule's CronJob (its Jobs and pods with it), ServiceAccount and RBAC;
    what was deleted, as kind/name. The namespace and the backups stay."""
    get(cluster, namespace, name)
    prefix = f"kube-migrate:schedule:{namespace}:{name}:"  # the RBAC objects' names
    done = []
    for kind in reversed(KINDS):
        res = _res(cluster, kind)
        if kind == "Namespace":
            continue
        by_name = kind.startswith("Cluster") or kind == "RoleBinding"  # in other namespaces
        for o in cluster.list(res, label_selector=_sel(name)):
            m = o["metadata"]
            if m["name"].startswith(prefix) if by_name else m.get("namespace") == namespace:
                cluster.delete(res, o["metadata"]["name"], o["metadata"].get("namespace"))
                done.append(f"{kind}/{o['metadata']['name']}")
    return done


def _sel(name: str) -> str:
    return f"{MANAGED_KEY}={MANAGED_VALUE},{SCHEDULE_LABEL}={name}"


def _exists(cluster: Cluster, kind: str, name: str, namespace: str | None) -> bool:
    try:
        cluster.get(_res(cluster, kind), name, namespace)
    except NotFound:
        return False
    return True


def _res(cluster: Cluster, kind: str) -> APIResource:
    group, resource = KINDS.get(kind) or ("batch", "jobs")
    res = cluster.discovery().get(group, resource)
    if res is None:
        raise UsageError(f"the cluster does not serve {resource}.{group or 'core'}")
    return res
