"""Turn a kubeconfig file and context into a ready HTTP connection to one cluster.

The kubernetes package parses kubeconfigs (certificates, tokens, exec plugins,
merged KUBECONFIG lists); we use it for that and nothing else, and wrap its
ConfigException into the project's KubeconfigError with a hint that names the
contexts that do exist.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrate.errors import KubeconfigError

if TYPE_CHECKING:
    from kubernetes.client import Configuration

DEFAULT_KUBECONFIG = "~/.kube/config"
IN_CLUSTER = "in-cluster"  # the context name reported for a pod's service account
SA_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
_FIX_FILE = "fix the file, or give another kubeconfig file"


def _k8s_config() -> Any:  # untyped package
    """kubernetes.config, imported when a kubeconfig is read (~0.15 s), not at start-up:
    a command that never reaches a cluster (`--help`, `backup get`) does not pay for it."""
    from kubernetes import config

    return config


@dataclass(frozen=True)
class ClusterRef:
    """Where a cluster is: a kubeconfig (path, or os.pathsep-joined list) and a context."""

    kubeconfig: str | None = None
    context: str | None = None

    def resolved_kubeconfig(self) -> str:
        """The kubeconfig path(s) to read: explicit, else $KUBECONFIG, else ~/.kube/config."""
        raw = self.kubeconfig or os.environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG
        return os.pathsep.join(str(Path(p).expanduser()) for p in raw.split(os.pathsep) if p)

    def describe(self) -> str:
        ctx = self.context or "current context"
        return f"{self.resolved_kubeconfig()} ({ctx})"


def _contexts(path: str) -> tuple[list[str], str | None]:
    contexts, active = _k8s_config().list_kube_config_contexts(config_file=path)
    names = [c["name"] for c in contexts or []]
    return names, (active or {}).get("name")


def load_configuration(ref: ClusterRef, pool_size: int = 16) -> tuple[Configuration, str]:
    """Read the kubeconfig; return a client Configuration and the context name used."""
    import yaml
    from kubernetes.client import Configuration
    from kubernetes.config.config_exception import ConfigException

    path = ref.resolved_kubeconfig()
    existing = [p for p in path.split(os.pathsep) if Path(p).is_file()]
    if not existing and in_pod(ref):
        return _in_cluster(pool_size), IN_CLUSTER
    if not existing:
        raise KubeconfigError(
            f"kubeconfig not found: {path}",
            hint="pass --kubeconfig FILE, or set KUBECONFIG (or the KUBE_MIGRATE_*_KUBECONFIG "
            "variables for two-cluster commands)",
        )
    try:
        names, active = _contexts(path)
    except yaml.YAMLError as exc:  # one line: where and what, not PyYAML's multi-line dump
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise KubeconfigError(
            f"kubeconfig {path} is not valid YAML{line}: {problem}", hint=_FIX_FILE
        ) from None
    except (TypeError, AttributeError):  # YAML, but not a mapping of the right shape
        raise KubeconfigError(
            f"kubeconfig {path} is not a kubeconfig (a mapping of clusters, users, contexts)",
            hint=_FIX_FILE,
        ) from None
    except (ConfigException, ValueError) as exc:
        raise KubeconfigError(f"cannot read kubeconfig {path}: {exc}") from exc
    context = ref.context or active
    if context is None or context not in names:
        what = f"context {context!r} not found" if context else "no current-context set"
        raise KubeconfigError(
            f"{what} in kubeconfig {path}",
            hint=f"available contexts: {', '.join(names) or '(none)'}; pass --context NAME",
        )
    cfg = Configuration()
    try:
        _k8s_config().load_kube_config(
            config_file=path, context=context, client_configuration=cfg, persist_config=False
        )
    except (ConfigException, ValueError, OSError) as exc:
        raise KubeconfigError(f"kubeconfig {path}, context {context!r}: {exc}") from exc
    cfg.connection_pool_maxsize = pool_size
    cfg.retries = False  # retries happen in one place: migrate.cluster.transport
    return cfg, context


def flatten(ref: ClusterRef) -> str:
    """The kubeconfig of `ref` as one self-contained file: only its context, with the
    certificate and key files it names embedded (`kubectl config view --flatten
    --minify`), for a pod that has none of this machine's files. Exec plugins and token
    files stay references: they must work where the file is used."""
    import base64

    import yaml

    load_configuration(ref)  # the usual errors, with hints, for a bad file or context
    path = next(p for p in ref.resolved_kubeconfig().split(os.pathsep) if Path(p).is_file())
    doc = yaml.safe_load(Path(path).read_text())
    name = ref.context or doc.get("current-context")
    ctx = next(c for c in doc.get("contexts") or [] if c["name"] == name)
    base = Path(path).parent

    def pick(kind: str, key: str) -> dict[str, Any]:
        entry = next(e for e in doc.get(kind) or [] if e["name"] == ctx["context"].get(key))
        body = dict(entry.get(key) or {})
        for field in ("certificate-authority", "client-certificate", "client-key"):
            if body.get(field):
                data = (base / os.path.expanduser(body.pop(field))).read_bytes()
                body[f"{field}-data"] = base64.b64encode(data).decode()
        return {"name": entry["name"], key: body}

    out = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [pick("clusters", "cluster")],
        "users": [pick("users", "user")],
        "contexts": [ctx],
        "current-context": name,
    }
    return str(yaml.safe_dump(out, sort_keys=False))


def in_pod(ref: ClusterRef) -> bool:
    """Running in a pod, and no kubeconfig named: the pod's service account is the identity
    (a scheduled backup's CronJob, an in-cluster run)."""
    named = ref.kubeconfig or ref.context or os.environ.get("KUBECONFIG")
    return not named and bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and SA_TOKEN.is_file()


def _in_cluster(pool_size: int) -> Configuration:
    from kubernetes.client import Configuration
    from kubernetes.config.config_exception import ConfigException

    cfg = Configuration()
    try:  # re-reads the projected token when it rotates (refresh hook)
        _k8s_config().load_incluster_config(client_configuration=cfg, try_refresh_token=True)
    except ConfigException as exc:
        raise KubeconfigError(f"in-cluster configuration: {exc}") from exc
    cfg.connection_pool_maxsize = pool_size
    cfg.retries = False
    return cfg


def auth_headers(cfg: Configuration) -> dict[str, str]:
    """Authorization header for token/basic/exec-plugin auth (client certificates live in
    the TLS pool).  `auth_settings()` calls the token refresh hook, so exec and OIDC
    credentials stay fresh; its shape is stable across kubernetes package versions."""
    headers: dict[str, str] = {}
    settings: Any = cfg.auth_settings()
    for setting in settings.values():
        if setting.get("in") == "header" and setting.get("value"):
            headers[setting["key"].title()] = str(setting["value"])
    return headers


def new_api_client(cfg: Configuration) -> Any:
    """An ApiClient whose ``rest_client.pool_manager`` carries the TLS and client-cert setup.

    Keep the returned object alive as long as its pool is used.
    """
    from kubernetes.client import ApiClient

    return ApiClient(configuration=cfg)
