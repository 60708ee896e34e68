"""The default StorageClass `standard` gets a real provisioner: rancher's
local-path-provisioner (what kind ships) as a hostNetwork pod on the plane's real node,
keeping volumes under <state>/<plane>/local-path.

Only the real node is in its node path map: claims whose pods the scheduler put on a kwok
node stay Pending (the provisioner reports it cannot serve that node), as they did before
there was a provisioner. There is no kube-proxy, so the provisioner reaches the API server
on 127.0.0.1 (KUBERNETES_SERVICE_HOST/PORT).
"""

from __future__ import annotations

import json
import time
import urllib.error
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devenv import procs
from devenv.node_host import LABEL, TAINT

NAMESPACE = "local-path-storage"
SA = "local-path-provisioner-service-account"
NAME = "local-path-provisioner"
TOLERATE = {"key": TAINT["key"], "operator": "Exists", "effect": TAINT["effect"]}

Api = Callable[..., Any]


def _helper_pod(image: str) -> str:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "helper-pod"},
        "spec": {
            "tolerations": [
                TOLERATE,
                {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists"},
            ],
            "containers": [
                {"name": "helper-pod", "image": image, "imagePullPolicy": "IfNotPresent"}
            ],
        },
    }
    return json.dumps(pod, indent=1)


def objects(
    node: str, data: Path, port: int, provisioner_image: str, helper_image: str
) -> list[tuple[str, dict[str, Any]]]:
    """(collection path, object) pairs, in creation order."""
    ns = {"namespace": NAMESPACE}
    config = {"nodePathMap": [{"node": node, "paths": [str(data)]}]}
    rules: list[dict[str, Any]] = [
        {
            "apiGroups": [""],
            "resources": ["nodes", "persistentvolumeclaims", "configmaps", "pods", "pods/log"],
            "verbs": ["get", "list", "watch"],
        },
        {
            "apiGroups": [""],
            "resources": ["persistentvolumes"],
            "verbs": ["get", "list", "watch", "create", "patch", "update", "delete"],
        },
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
        {
            "apiGroups": ["storage.k8s.io"],
            "resources": ["storageclasses"],
            "verbs": ["get", "list", "watch"],
        },
    ]
    pod_rules = [
        {
            "apiGroups": [""],
            "resources": ["pods"],
            "verbs": ["get", "list", "watch", "create", "patch", "update", "delete"],
        }
    ]
    subjects = [{"kind": "ServiceAccount", "name": SA, "namespace": NAMESPACE}]
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    env = {
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": str(port),
        "HEALTH_PORT": str(procs.free_port()),  # hostNetwork: the default 8080 may be taken
        "CONFIG_MOUNT_PATH": "/etc/config/",
    }
    labels = {"app": NAME}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": NAMESPACE},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": SA,
                    "hostNetwork": True,
                    "nodeSelector": {LABEL[0]: LABEL[1]},
                    "tolerations": [TOLERATE],
                    "containers": [
                        {
                            "name": NAME,
                            "image": provisioner_image,
                            "imagePullPolicy": "IfNotPresent",
                            "command": [
                                "local-path-provisioner",
                                "--debug",
                                "start",
                                "--config=/etc/config/config.json",
                                f"--helper-image={helper_image}",
                            ],
                            "env": [
                                {
                                    "name": "POD_NAMESPACE",
                                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
                                },
                                *({"name": k, "value": v} for k, v in env.items()),
                            ],
                            "volumeMounts": [{"name": "config", "mountPath": "/etc/config/"}],
                        }
                    ],
                    "volumes": [{"name": "config", "configMap": {"name": "local-path-config"}}],
                },
            },
        },
    }
    return [
        (
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        ),
        (
            f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts",
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": SA, **ns}},
        ),
        (
            f"{rbac}/clusterroles",
            {"kind": "ClusterRole", "metadata": {"name": NAME}, "rules": rules},
        ),
        (
            f"{rbac}/clusterrolebindings",
            {
                "kind": "ClusterRoleBinding",
                "metadata": {"name": NAME},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": NAME,
                },
                "subjects": subjects,
            },
        ),
        (
            f"{rbac}/namespaces/{NAMESPACE}/roles",
            {"kind": "Role", "metadata": {"name": NAME, **ns}, "rules": pod_rules},
        ),
        (
            f"{rbac}/namespaces/{NAMESPACE}/rolebindings",
            {
                "kind": "RoleBinding",
                "metadata": {"name": NAME, **ns},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME},
                "subjects": subjects,
            },
        ),
        (
            f"/api/v1/namespaces/{NAMESPACE}/configmaps",
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "local-path-config", **ns},
                "data": {
                    "config.json": json.dumps(config),
                    "setup": '#!/bin/sh\nset -eu\nmkdir -m 0777 -p "$VOL_DIR"\n',
                    "teardown": '#!/bin/sh\nset -eu\nrm -rf "$VOL_DIR"\n',
                    "helperPod.yaml": _helper_pod(helper_image),
                },
            },
        ),
        (f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments", deployment),
    ]


def deploy(api: Api, objs: list[tuple[str, dict[str, Any]]]) -> None:
    for path, obj in objs:
        obj.setdefault("apiVersion", "rbac.authorization.k8s.io/v1")
        try:
            api("POST", path, obj)
        except urllib.error.HTTPError as exc:
            if exc.code != 409:
                raise


def wait_running(api: Api, what: str, timeout: float = 120) -> None:
    """Wait until the provisioner's pod runs; the failure says why it does not."""
    deadline = time.monotonic() + timeout
    pods: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        pods = api("GET", f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector=app%3D{NAME}")[
            "items"
        ]
        for p in pods:
            statuses = p.get("status", {}).get("containerStatuses", [])
            if p["status"].get("phase") == "Running" and all(s.get("ready") for s in statuses):
                return
        time.sleep(0.25)
    events = api("GET", f"/api/v1/namespaces/{NAMESPACE}/events")["items"]
    said = "\n".join(f"  {e.get('reason')}: {e.get('message')}" for e in events[-10:])
    status = [json.dumps(p.get("status", {}))[:800] for p in pods]
    raise RuntimeError(
        f"{what}: local-path-provisioner not Running after {timeout:.0f}s; "
        f"pods: {status}\nevents:\n{said}"
    )
