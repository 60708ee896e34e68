"""Turn a loaded backup into a restore plan: decide per object (skip, or the exact object
to create after sanitizing, resource modifiers, mappings and labels), add namespaces
the objects need, and lay the rest out as dependency levels."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from migrate.cluster import Discovery
from migrate.errors import UsageError
from migrate.restore.graph import LATE_KINDS, Level, build_graph, levels
from migrate.restore.policy import skip_reason
from migrate.restore.source import Item, ItemTable, LoadedBackup, Selection
from migrate.restore.spool import Spool
from migrate.store.crypto import EncryptionKey
from migrate.transform.bindings import split_binding
from migrate.transform.hold import hold
from migrate.transform.mappings import Mappings, apply_mappings, label_restored
from migrate.transform.modifiers import Modifiers
from migrate.transform.sanitize import SanitizeOptions, sanitize
from migrate.transform.scope import Scope
from migrate.transform.volumes import DEFAULT_PV_POLICY, pv_decision

if TYPE_CHECKING:
    import networkx as nx

EXISTING_POLICIES = ("none", "update", "fail")


@dataclass
class RestoreOptions:
    name: str
    backup: str
    scope: Scope = field(default_factory=Scope)
    mappings: Mappings = field(default_factory=Mappings)
    modifiers: Modifiers | None = None
    existing_policy: str = "none"
    restore_status: bool = False
    preserve_node_ports: bool = False
    parallelism: int = 16  # creates in flight (the API server's own limit on 2 cores: 16-32)
    wait_ready: bool = False
    ready_timeout: float = 600.0
    resume: bool = False
    encryption_key: EncryptionKey | None = None  # of an encrypted backup
    pv_policy: str = DEFAULT_PV_POLICY  # what happens to PersistentVolumes (transform.volumes)
    yes: bool = False  # confirmed: retain-as-is into the cluster the backup came from
    run: str | None = None  # the playbook run this restore belongs to (journal, results)
    fail_on: str = "error"  # warning: a PartiallyFailed backup is refused, not just warned of
    hold_workloads: bool = False  # workloads restored running nothing (transform.hold)


@dataclass
class Plan:
    items: ItemTable
    graph: nx.DiGraph[Any]
    levels: list[Level]  # created in this order, each level in parallel
    late: list[Item]
    spool: Spool  # where the items' JSON (and the restore's results) are kept

    @cached_property
    def restorable(self) -> Selection:
        return self.items.where(lambda it: it.skip is None)

    def rows(self) -> list[dict[str, Any]]:
        """The ordered plan, one row per object (for -o table/json)."""
        out = []
        for n, level in enumerate(self.levels):
            for it in level:
                out.append(_row(n, it.kind, it.key[2], it.key[3], "create"))
        last = len(self.levels)
        for it in self.late:
            row = {
                "level": last,
                "kind": it.kind,
                "namespace": it.target_ns or "",
                "name": it.key[3],
            }
            out.append({**row, "action": "create after its backends are ready"})
        for it in self.items:
            if it.skip:
                row = {
                    "level": "-",
                    "kind": it.kind,
                    "namespace": it.namespace or "",
                    "name": it.name,
                }
                verb = "refuse" if it.refused else "skip"
                out.append({**row, "action": f"{verb}: {it.skip}"})
        return out


def _row(level: Any, kind: str, ns: str | None, name: str, action: str) -> dict[str, Any]:
    return {"level": level, "kind": kind, "namespace": ns or "", "name": name, "action": action}


def _resource_filter(scope: Scope, disc: Discovery, held: set[str]) -> Any:
    """`held`: the backup's resource.group names; a name that is neither served by the
    target nor in the backup is a typo, reported before anything is written."""
    known = held | {gr.split(".", 1)[0] for gr in held}

    def names(values: tuple[str, ...], flag: str) -> set[str]:
        out = set()
        for v in values:
            if v == "*":
                continue
            try:
                out.add(disc.resolve(v).full_name)
            except UsageError:  # not served by the target: match the backup's spelling
                if v not in known:
                    raise UsageError(
                        f"unknown resource {v!r} in {flag}: the target does not serve it "
                        "and the backup holds none",
                        hint="use a name from `kubectl api-resources`, e.g. deployments.apps",
                    ) from None
                out.add(v)
        return out

    inc = (
        None
        if "*" in scope.include_resources
        else names(scope.include_resources, "--include-resources")
    )
    exc = names(scope.exclude_resources, "--exclude-resources")

    def keep(gr: str) -> bool:
        plural = gr.split(".", 1)[0]
        hit_inc = inc is None or gr in inc or plural in inc
        return hit_inc and gr not in exc and plural not in exc

    return keep


def _check_mapped_namespaces(items: ItemTable, mappings: Mappings) -> None:
    """A namespace must not be mapped onto one this restore also fills (and keeps)."""
    restored: set[str] = set()
    for it in items:
        if it.namespace:
            restored.add(it.namespace)
        elif it.kind == "Namespace":
            restored.add(it.name)
    for src, dst in mappings.namespaces.items():
        if src in restored and dst in restored and dst not in mappings.namespaces:
            raise UsageError(
                f"--namespace-mappings maps {src!r} onto {dst!r}, which this restore also "
                "restores (their objects would collide)",
                hint=f"map {src!r} to a namespace of its own, or leave {dst!r} out "
                "with --exclude-namespaces",
            )


def _volume_refusal(
    it: Item, obj: dict[str, Any], policy: str, refused_pvs: dict[str, str]
) -> tuple[str | None, bool]:
    """(skip reason, refused) for PersistentVolumes and the claims bound to refused ones
    (--pv-policy; migrate.transform.volumes)."""
    if it.kind == "PersistentVolume":
        decision = pv_decision(obj, policy)
        return decision.skip or decision.refused, bool(decision.refused)
    if it.kind == "PersistentVolumeClaim":
        volume = (obj.get("spec") or {}).get("volumeName")
        if volume in refused_pvs:
            return f"its PersistentVolume {volume} is refused ({refused_pvs[volume]})", True
    return None, False


def _clone_copies(
    items: ItemTable, it: Item, desired: dict[str, Any], mappings: Mappings
) -> list[dict[str, Any]]:
    """The copies of a ClusterRoleBinding (`desired`, as decided for `it`) a
    namespace-mapped clone gets (see migrate.transform.bindings); the original is skipped
    when they replace it."""
    split = split_binding(desired, mappings.namespaces)
    if split is None:
        return []
    if not split.keep_original:
        stub = {"apiVersion": it.api_version, "kind": it.kind, "metadata": {"name": it.name}}
        items.decide(it, stub, "copied for the mapped namespaces as " + ", ".join(split.names()))
    return split.copies


def _transformed(
    it: Item, obj: dict[str, Any], opts: RestoreOptions, sopts: SanitizeOptions
) -> dict[str, Any]:
    """The object to create from obj (a fresh decoded copy, changed in place): sanitized,
    modified, mapped, held if asked, labelled as restored."""
    desired = sanitize(obj, sopts, in_place=True)
    if opts.modifiers:
        desired = opts.modifiers.apply(it.gr, desired, it.namespace)
    apply_mappings(desired, opts.mappings)
    if opts.hold_workloads:
        hold(desired)
    return label_restored(desired, opts.backup, opts.name)


def make_plan(loaded: LoadedBackup, opts: RestoreOptions, target: Discovery) -> Plan:
    """Streams over the objects (each read and decided in turn): the heap holds sets of
    namespaces and names, not the objects."""
    resources = loaded.resources or {it.gr for it in loaded.items}
    keep = _resource_filter(opts.scope, target, set(resources))
    items = loaded.items
    if not all(keep(gr) for gr in resources):  # a copy of those kept, else the same table
        items = ItemTable(loaded.spool, (it for it in loaded.items if keep(it.gr)))
    _check_mapped_namespaces(items, opts.mappings)
    services: set[str] = set()  # Services with a selector (their Endpoints are skipped)
    refused_pvs: dict[str, str] = {}  # PV name -> why restoring it is refused
    for it in items:
        if it.kind == "Service" and (it.read_obj().get("spec") or {}).get("selector"):
            services.add(f"{it.namespace}/{it.name}")
        elif it.kind == "PersistentVolume":
            why = pv_decision(it.read_obj(), opts.pv_policy).refused
            if why:
                refused_pvs[it.name] = why
    selector_services = frozenset(services)
    sopts = SanitizeOptions(
        opts.preserve_node_ports, keep_status=opts.restore_status, pv_policy=opts.pv_policy
    )
    have_ns: set[str] = set()  # Namespace objects restored
    used_ns: set[str] = set()  # namespaces restored objects go into
    copies: list[tuple[Item, dict[str, Any]]] = []  # ClusterRoleBindings copied for clones
    for it in items:
        obj = it.read_obj()
        skip = skip_reason(obj, selector_services)
        refused = False
        if it.kind == "StorageClass" and it.name in opts.mappings.storage_classes:
            new = opts.mappings.storage_classes[it.name]
            skip = f"mapped to the target's storage class {new} (class objects are not renamed)"
        if not skip:
            skip, refused = _volume_refusal(it, obj, opts.pv_policy, refused_pvs)
        if skip:
            meta = {"name": it.name, "namespace": opts.mappings.namespace(it.namespace)}
            stub = {"apiVersion": obj.get("apiVersion"), "kind": it.kind, "metadata": meta}
            items.decide(it, stub, skip, refused)
            continue
        desired = _transformed(it, obj, opts, sopts)
        planned = items.decide(it, desired)
        copies += [(it, dup) for dup in _clone_copies(items, planned, desired, opts.mappings)]
        if it.kind == "Namespace":
            have_ns.add(planned.key[3])
        if planned.target_ns:
            used_ns.add(planned.target_ns)
    for src, dup in copies:
        name = dup["metadata"]["name"]
        items.append(Item(src.gr, None, name, dup, dup, spool=loaded.spool))
    for ns in sorted(used_ns - have_ns):
        obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        items.append(
            Item(
                "namespaces",
                None,
                ns,
                obj,
                label_restored(dict(obj), opts.backup, opts.name),
                spool=loaded.spool,
            )
        )
    graph = build_graph(items)
    late = [it for it in items if it.skip is None and it.kind in LATE_KINDS]
    return Plan(items, graph, levels(graph, items), late, loaded.spool)
