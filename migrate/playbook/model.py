"""The typed view of a validated playbook: what the runner reads instead of raw dicts.

`Playbook.document` keeps the resolved document (after `--set`, relative paths made
absolute) exactly as it is journaled for `--resume`; everything else is derived from it,
with the defaults taken from the schema (`schema.default`) so they are written once.
Scope and Mappings are the very classes backup, restore and verify already take.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from migrate.cluster.selectors import Selector
from migrate.playbook.live import CutoverHook, CutoverSettings, PrecopySettings
from migrate.playbook.rules import step_name
from migrate.playbook.schema import def_default, default
from migrate.transform.mappings import Mappings
from migrate.transform.scope import Scope
from migrate.units import parse_duration


def _seconds(text: str, what: str) -> float:
    return parse_duration(text, what).total_seconds()


@dataclass(frozen=True)
class Step:
    """One entry of spec.steps: its name, its options ({} except for scale), its position."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    index: int = 0

    @property
    def label(self) -> str:
        """How progress and reports name it: 'restore', 'scale[6]' (scale may repeat)."""
        return f"{self.name}[{self.index}]" if self.name == "scale" else self.name


@dataclass(frozen=True)
class ScaleSettings:
    side: str  # source | target
    replicas: int
    kinds: tuple[str, ...]
    namespaces: tuple[str, ...]  # already mapped for side=target


@dataclass(frozen=True)
class BackupSettings:
    name: str | None  # None: the run's name (or, with from_schedule, found at run time)
    ttl: str  # Go duration as Velero stores it
    ttl_seconds: float
    parallelism: int
    from_schedule: str | None


@dataclass(frozen=True)
class VolumeSettings:
    mode: str  # all | annotated | none (migrate.transform.claims.MODES)
    mover_image: str | None  # None: $KUBE_MIGRATE_MOVER_IMAGE
    quiesce: str  # none | scale-down
    snapshot_volumes: str  # always | auto | never (migrate.transform.snapshot_method.MODES)
    keep_snapshots: bool
    parallelism: int
    per_node: int
    timeout: float  # seconds, one mover


@dataclass(frozen=True)
class WaitForSyncSettings:
    timeout: float  # seconds
    interval: float


@dataclass(frozen=True)
class RestoreSettings:
    name: str | None  # None: the run's name
    mappings: Mappings
    resource_modifiers: str | None  # absolute path when it came from the file
    existing_resource_policy: str  # none | update | fail
    restore_status: bool
    preserve_node_ports: bool
    pv_policy: str  # reprovision | retain-as-is (migrate.transform.volumes)
    parallelism: int
    # into the backup's own cluster: claims made from the snapshots the backup kept (and
    # the run's backup keeps them instead of copying their data through the bucket)
    clone_volumes: bool
    hold_workloads: bool = False  # restored at 0 replicas / suspended (transform.hold)


@dataclass(frozen=True)
class VerifySettings:
    from_backup: bool
    data: bool  # also the claims' files (verify --data)
    ignore_fields: str | None
    show_values: bool  # ConfigMap values in diffs (Secret values never)


@dataclass(frozen=True)
class Gates:
    preflight: str  # error | warning | never
    verify: str  # drift | never
    restore: str  # warning (also refuse a PartiallyFailed backup) | failed | never

    def fail_on(self, step: str) -> str | None:
        """The gate of a step, or None for steps without one."""
        return {"preflight": self.preflight, "verify": self.verify, "restore": self.restore}.get(
            step
        )


@dataclass(frozen=True)
class Playbook:
    """A loaded, validated playbook.  Build it with load_playbook()."""

    path: str  # the file as the user named it
    document: dict[str, Any]  # apiVersion, kind, metadata, spec: resolved
    overrides: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return str(self.document["metadata"]["name"])

    @property
    def description(self) -> str:
        return str(self.document["metadata"].get("description", ""))

    @property
    def spec(self) -> dict[str, Any]:
        return dict(self.document["spec"])

    def section(self, key: str) -> dict[str, Any]:
        """spec.<key> as a dict ({} when absent)."""
        return dict(self.document["spec"].get(key) or {})

    def _opt(self, section: str, key: str) -> Any:
        return self.section(section).get(key, default("spec", section, key))

    @property
    def steps(self) -> tuple[Step, ...]:
        out = []
        for i, raw in enumerate(self.document["spec"]["steps"]):
            name = step_name(raw)
            opts = {} if isinstance(raw, str) else dict(raw[name] or {})
            out.append(Step(name, opts, i))
        return tuple(out)

    def has_step(self, name: str) -> bool:
        return any(s.name == name for s in self.steps)

    def scope(self) -> Scope:
        s = self.section("scope")
        icr = s.get("includeClusterResources", default("spec", "scope", "includeClusterResources"))
        return Scope(
            include_namespaces=tuple(s.get("includeNamespaces") or ("*",)),
            exclude_namespaces=tuple(s.get("excludeNamespaces") or ()),
            include_resources=tuple(s.get("includeResources") or ("*",)),
            exclude_resources=tuple(s.get("excludeResources") or ()),
            selector=Selector.parse(s.get("selector")),
            include_cluster_resources=str(icr).lower(),
        )

    def mappings(self) -> Mappings:
        r = self.section("restore")
        return Mappings(
            namespaces=dict(r.get("namespaceMappings") or {}),
            storage_classes=dict(r.get("storageClassMappings") or {}),
            claim_sizes={k: str(v) for k, v in (r.get("pvcSizeMappings") or {}).items()},
            registries=dict(r.get("imageRegistryMappings") or {}),
            replicas=r.get("replicas"),
            suspend_cronjobs=bool(r.get("suspendCronJobs", False)),
        )

    @property
    def backup(self) -> BackupSettings:
        b = self.section("backup")
        ttl = str(self._opt("backup", "ttl"))
        return BackupSettings(
            name=b.get("name"),
            ttl=ttl,
            ttl_seconds=_seconds(ttl, "spec.backup.ttl"),
            parallelism=int(self._opt("backup", "parallelism")),
            from_schedule=b.get("fromSchedule"),
        )

    @property
    def volumes(self) -> VolumeSettings:
        v = self.section("volumes")
        return VolumeSettings(
            mode=str(self._opt("volumes", "mode")),
            mover_image=v.get("moverImage"),
            quiesce=str(self._opt("volumes", "quiesce")),
            snapshot_volumes=str(self._opt("volumes", "snapshotVolumes")),
            keep_snapshots=bool(self._opt("volumes", "keepSnapshots")),
            parallelism=int(self._opt("volumes", "parallelism")),
            per_node=int(self._opt("volumes", "perNode")),
            timeout=_seconds(self._opt("volumes", "timeout"), "spec.volumes.timeout"),
        )

    @property
    def wait_for_sync(self) -> WaitForSyncSettings:
        return WaitForSyncSettings(
            timeout=_seconds(self._opt("waitForSync", "timeout"), "spec.waitForSync.timeout"),
            interval=_seconds(self._opt("waitForSync", "interval"), "spec.waitForSync.interval"),
        )

    @property
    def restore(self) -> RestoreSettings:
        r = self.section("restore")
        return RestoreSettings(
            name=r.get("name"),
            mappings=self.mappings(),
            resource_modifiers=r.get("resourceModifiers"),
            existing_resource_policy=str(self._opt("restore", "existingResourcePolicy")),
            restore_status=bool(self._opt("restore", "restoreStatus")),
            preserve_node_ports=bool(self._opt("restore", "preserveNodePorts")),
            clone_volumes=bool(self._opt("restore", "cloneVolumes")),
            pv_policy=str(self._opt("restore", "pvPolicy")),
            parallelism=int(self._opt("restore", "parallelism")),
            hold_workloads=bool(self._opt("restore", "holdWorkloads")),
        )

    @property
    def precopy(self) -> PrecopySettings:
        until = self.section("precopy").get("untilBytes")
        return PrecopySettings(
            passes=int(self._opt("precopy", "passes")),
            until_bytes=int(until) if until is not None else None,
        )

    @property
    def cutover(self) -> CutoverSettings:
        hooks = tuple(
            CutoverHook(
                name=str(h.get("name") or (h["command"][0] if "command" in h else "hook")),
                command=tuple(h.get("command") or ()),
                timeout=_seconds(str(h.get("timeout", "1m")), "spec.cutover.hooks[].timeout"),
                job=h.get("job"),
            )
            for h in self.section("cutover").get("hooks") or []
        )
        return CutoverSettings(
            stop_timeout=_seconds(self._opt("cutover", "stopTimeout"), "spec.cutover.stopTimeout"),
            ready_timeout=_seconds(
                self._opt("cutover", "readyTimeout"), "spec.cutover.readyTimeout"
            ),
            verify_data=bool(self._opt("cutover", "verifyData")),
            hooks=hooks,
        )

    @property
    def wait_ready_timeout(self) -> float:
        return _seconds(self._opt("waitReady", "timeout"), "spec.waitReady.timeout")

    @property
    def verify(self) -> VerifySettings:
        v = self.section("verify")
        return VerifySettings(
            from_backup=bool(self._opt("verify", "fromBackup")),
            data=bool(self._opt("verify", "data")),
            ignore_fields=v.get("ignoreFields"),
            show_values=bool(self._opt("verify", "showValues")),
        )

    @property
    def gates(self) -> Gates:
        g = self.section("gates")

        def fail_on(step: str) -> str:
            return str((g.get(step) or {}).get("failOn", default("spec", "gates", step, "failOn")))

        return Gates(fail_on("preflight"), fail_on("verify"), fail_on("restore"))

    @property
    def report_dir(self) -> str | None:
        d = self.section("report").get("dir")
        return str(d) if d else None

    def backup_name(self, run: str) -> str:
        """The backup the run makes (or restores, when named): spec.backup.name, else run."""
        return self.backup.name or run

    def restore_name(self, run: str) -> str:
        return self.restore.name or run

    def scale(self, step: Step) -> ScaleSettings:
        """A scale step's settings; namespaces default to the scope's, mapped on the target."""
        if step.name != "scale":
            raise ValueError(f"{step.label} is not a scale step")
        o = step.options
        side = str(o["side"])
        namespaces = tuple(o.get("namespaces") or self.scope().include_namespaces)
        if side == "target" and "namespaces" not in o:
            m = self.mappings()
            namespaces = tuple(m.namespace(ns) or ns for ns in namespaces)
        return ScaleSettings(
            side=side,
            replicas=int(o.get("replicas", def_default("scale", "replicas"))),
            kinds=tuple(o.get("kinds") or def_default("scale", "kinds")),
            namespaces=namespaces,
        )
