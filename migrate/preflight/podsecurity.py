"""Check 6b: Pod Security admission.  A namespace labelled
pod-security.kubernetes.io/enforce=baseline|restricted on the target rejects pods that
break its level: a restored bare Pod fails to be created, a restored Deployment is
created but never gets its pods.

RULES is the Pod Security Standards as a table (kubernetes.io/docs/concepts/security/
pod-security-standards): each row a level, an id, and a test on a pod spec that returns
what breaks the rule.  The label on the namespace the pods land in decides: the target's
own namespace when it exists, else the restored Namespace's labels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from migrate.preflight.context import Context
from migrate.preflight.findings import Collect, Finding
from migrate.transform.workloads import containers, pod_spec

LEVELS = {"privileged": 0, "baseline": 1, "restricted": 2}
LABEL = "pod-security.kubernetes.io/"
BASELINE_CAPS = frozenset(
    [
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    ]
)
SAFE_SYSCTLS = frozenset(
    [
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    ]
)
RESTRICTED_VOLUMES = frozenset(
    [
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    ]
)
Spec = dict[str, Any]


def _sc(c: dict[str, Any]) -> dict[str, Any]:
    return c.get("securityContext") or {}


def _names(spec: Spec, bad: Callable[[dict[str, Any]], bool]) -> Iterator[str]:
    return (f"container {c.get('name')}" for c in containers(spec) if bad(c))


def _host_namespaces(spec: Spec) -> Iterator[str]:
    return (f for f in ("hostNetwork", "hostPID", "hostIPC") if spec.get(f))


def _privileged(spec: Spec) -> Iterator[str]:
    return _names(spec, lambda c: bool(_sc(c).get("privileged")))


def _capabilities(spec: Spec) -> Iterator[str]:
    def bad(c: dict[str, Any]) -> bool:
        return bool(set((_sc(c).get("capabilities") or {}).get("add") or []) - BASELINE_CAPS)

    return _names(spec, bad)


def _host_path(spec: Spec) -> Iterator[str]:
    return (f"volume {v.get('name')}" for v in spec.get("volumes") or [] if "hostPath" in v)


def _host_ports(spec: Spec) -> Iterator[str]:
    return _names(spec, lambda c: any(p.get("hostPort") for p in c.get("ports") or []))


def _seccomp_unconfined(spec: Spec) -> Iterator[str]:
    def unconfined(sc: dict[str, Any]) -> bool:
        return (sc.get("seccompProfile") or {}).get("type") == "Unconfined"

    if unconfined(spec.get("securityContext") or {}):
        yield "pod seccompProfile"
    yield from _names(spec, lambda c: unconfined(_sc(c)))


def _proc_mount(spec: Spec) -> Iterator[str]:
    return _names(spec, lambda c: _sc(c).get("procMount", "Default") != "Default")


def _sysctls(spec: Spec) -> Iterator[str]:
    for s in (spec.get("securityContext") or {}).get("sysctls") or []:
        if s.get("name") not in SAFE_SYSCTLS:
            yield f"sysctl {s.get('name')}"


def _volume_types(spec: Spec) -> Iterator[str]:
    for v in spec.get("volumes") or []:
        kinds = set(v) - {"name"}
        if kinds - RESTRICTED_VOLUMES:
            yield f"volume {v.get('name')} ({', '.join(sorted(kinds))})"


def _escalation(spec: Spec) -> Iterator[str]:
    return _names(spec, lambda c: _sc(c).get("allowPrivilegeEscalation") is not False)


def _non_root(spec: Spec) -> Iterator[str]:
    pod_ok = (spec.get("securityContext") or {}).get("runAsNonRoot") is True
    return _names(spec, lambda c: _sc(c).get("runAsNonRoot", pod_ok) is not True)


def _seccomp_required(spec: Spec) -> Iterator[str]:
    allowed = {"RuntimeDefault", "Localhost"}
    pod = ((spec.get("securityContext") or {}).get("seccompProfile") or {}).get("type")
    return _names(
        spec, lambda c: ((_sc(c).get("seccompProfile") or {}).get("type") or pod) not in allowed
    )


def _drop_all(spec: Spec) -> Iterator[str]:
    def bad(c: dict[str, Any]) -> bool:
        caps = _sc(c).get("capabilities") or {}
        return "ALL" not in (caps.get("drop") or []) or bool(
            set(caps.get("add") or []) - {"NET_BIND_SERVICE"}
        )

    return _names(spec, bad)


@dataclass(frozen=True)
class Rule:
    level: str
    id: str
    what: str
    test: Callable[[Spec], Iterator[str]]


RULES: tuple[Rule, ...] = (
    Rule("baseline", "hostNamespaces", "host namespaces", _host_namespaces),
    Rule("baseline", "privileged", "privileged containers", _privileged),
    Rule("baseline", "capabilities", "capabilities beyond the baseline set", _capabilities),
    Rule("baseline", "hostPathVolumes", "hostPath volumes", _host_path),
    Rule("baseline", "hostPorts", "host ports", _host_ports),
    Rule("baseline", "seccomp", "seccomp Unconfined", _seccomp_unconfined),
    Rule("baseline", "procMount", "a non-default procMount", _proc_mount),
    Rule("baseline", "sysctls", "unsafe sysctls", _sysctls),
    Rule("restricted", "volumeTypes", "volume types other than the restricted set", _volume_types),
    Rule("restricted", "allowPrivilegeEscalation", "allowPrivilegeEscalation not false",
         _escalation),
    Rule("restricted", "runAsNonRoot", "runAsNonRoot not true", _non_root),
    Rule("restricted", "seccompProfile", "no RuntimeDefault/Localhost seccompProfile",
         _seccomp_required),
    Rule("restricted", "capabilities", "capabilities not dropping ALL", _drop_all),
)  # fmt: skip


def violations(spec: Spec, level: str) -> list[str]:
    """ "<rule id>: <what breaks it>" for every rule of `level` (and below) that fails."""
    out = []
    for rule in RULES:
        if LEVELS[rule.level] <= LEVELS.get(level, 0):
            hits = list(rule.test(spec))
            if hits:
                out.append(f"{rule.id} ({', '.join(hits)})")
    return out


def check_pod_security(ctx: Context) -> list[Finding]:
    c = Collect("pod-security")
    for it in ctx.restorable:
        spec = pod_spec(it.read_desired())
        ns = it.key[2]
        if spec is None or not ns:
            continue
        labels = ctx.namespace_labels(ns)
        for mode, severity in (("enforce", "error"), ("warn", "info"), ("audit", "info")):
            level = labels.get(LABEL + mode, "privileged")
            broken = violations(spec, level)
            if not broken:
                continue
            what = "Pod is rejected" if it.kind == "Pod" else "pods are rejected"
            effect = what if mode == "enforce" else f"pods are admitted with {mode} messages"
            c.add(
                severity,
                f"namespace {ns} on the target has {mode}={level}: {it.kind} {effect}",
                f"fix the pod spec ({'; '.join(broken)}) with --resource-modifiers, or "
                f"label namespace {ns} {LABEL}{mode} with a lower level",
                ctx.ref(it),
            )
            break  # the strictest mode that fires says it all
    return c.findings()
