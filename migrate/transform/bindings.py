"""ClusterRoleBindings of a namespace-mapped clone: copies of its own, the originals left
as they are.

A clone next to production (same cluster, `--namespace-mappings shop:shop-test`) would
otherwise find the ClusterRoleBindings of its ServiceAccounts already there, skip them,
and run without its cluster-wide permissions, since they still name only the original
namespace; rewriting the originals' subjects would take the permissions away from
production instead.  So a ClusterRoleBinding that names ServiceAccounts of a mapped
namespace is restored as one copy per target namespace:

- named `<original>-<target namespace>` (cut and made unique with a hash when longer
  than the 253 characters a name may have), annotated with the original's name;
- holding only the ServiceAccounts mapped into that namespace, re-pointed to it.  Other
  subjects (ServiceAccounts of unmapped namespaces, Users, Groups) are dropped from the
  copy: they keep the original's grant, and a copy must not widen it;
- the original itself is restored unchanged only when it also names subjects outside
  the mapped namespaces (so it is a no-op where it exists already), else not at all.

Restore creates these copies (labelled as restored, like every object it creates) and
verify expects them, both through `split_binding`.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from typing import Any

COPY_OF = "kube-migrate.io/copy-of"  # annotation: the name of the binding copied
MAX_NAME = 253  # a ClusterRoleBinding's name is a DNS subdomain


def copy_name(original: str, target_ns: str) -> str:
    """`<original>-<target_ns>`; over MAX_NAME, the original is cut and a hash of the
    full name keeps different originals apart."""
    name = f"{original}-{target_ns}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    keep = MAX_NAME - len(target_ns) - len(digest) - 2
    return f"{original[:keep].rstrip('-.')}-{digest}-{target_ns}"


@dataclass(frozen=True)
class Split:
    copies: list[dict[str, Any]]  # the clone's own bindings, subjects re-pointed
    keep_original: bool  # the original names subjects outside the mapped namespaces

    def names(self) -> list[str]:
        return [c["metadata"]["name"] for c in self.copies]


def split_binding(obj: dict[str, Any], namespaces: dict[str, str]) -> Split | None:
    """The copies a namespace mapping makes of ClusterRoleBinding `obj`; None when it is
    restored as it is (another kind, or no ServiceAccount of a mapped namespace)."""
    if obj.get("kind") != "ClusterRoleBinding" or not namespaces:
        return None
    by_target: dict[str, list[dict[str, Any]]] = {}
    others = False
    for subj in obj.get("subjects") or []:
        ns = subj.get("namespace")
        if subj.get("kind") == "ServiceAccount" and ns in namespaces:
            by_target.setdefault(namespaces[ns], []).append({**subj, "namespace": namespaces[ns]})
        else:
            others = True
    if not by_target:
        return None
    original = str((obj.get("metadata") or {}).get("name", ""))
    copies = []
    for target_ns, subjects in sorted(by_target.items()):
        dup = copy.deepcopy(obj)
        meta = dup.setdefault("metadata", {})
        meta["name"] = copy_name(original, target_ns)
        meta.setdefault("annotations", {})[COPY_OF] = original
        dup["subjects"] = subjects
        copies.append(dup)
    return Split(copies, keep_original=others)
