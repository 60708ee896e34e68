"""What the steps of one run share: the run journal, the playbook, where the run
connects, the clients (each made on first use, so a step that needs no bucket opens
none), the event sink, and the artefacts one step leaves for another or the report.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from migrate.backup import catalog
from migrate.cluster import Cluster, ClusterRef
from migrate.errors import UsageError
from migrate.pipeline.events import EventSink, discard
from migrate.playbook import BucketEndpoint, Endpoints, Playbook, RunState
from migrate.restore.plan import RestoreOptions
from migrate.runlog import NOTICE
from migrate.store import Store, layout
from migrate.store import open_bucket as store_open_bucket
from migrate.store.crypto import EncryptionKey, load_key
from migrate.store.scratch import ScratchStore
from migrate.transform.modifiers import load_modifiers

POOL_SIZE = 24  # connections to each API server: the steps' workers share them


def open_bucket(ep: BucketEndpoint, read_only: bool = False) -> Store:
    """The store of a bucket endpoint (read-only when it says so or `read_only`)."""
    return store_open_bucket(**{**ep.open_kwargs(), "read_only_bucket": ep.read_only or read_only})


log = logging.getLogger(__name__)


@dataclass
class Context:
    """One run's shared state; the steps take it as their first argument."""

    state: RunState
    pb: Playbook
    endpoints: Endpoints
    sink: EventSink = discard
    dry_run: bool = False
    qps: float | None = None  # None: adaptive (cluster/ratelimit.py)
    burst: int = 100
    clusters: dict[str, Cluster] = field(default_factory=dict)  # "source", "target"
    stores: dict[str, Store] = field(default_factory=dict)
    keys: dict[str, EncryptionKey | None] = field(default_factory=dict)
    # the live source backed up into a private local folder (snapshot.py), once a run
    snapshot: tuple[ScratchStore, str] | None = None
    artefacts: dict[str, Any] = field(default_factory=dict)  # graph DOT, junit XML, ...
    stop_before: str | None = None  # `run --stop-before STEP`: pause the run there
    paused: str | None = None  # the step the run paused before

    def cluster(self, side: str) -> Cluster:
        if side not in self.clusters:
            ep = self.endpoints.source if side == "source" else self.endpoints.target
            self.clusters[side] = Cluster(
                ClusterRef(ep.kubeconfig, ep.context),
                name=side,
                qps=self.qps,
                burst=self.burst,
                pool_size=POOL_SIZE,
            )
        return self.clusters[side]

    def _bucket(self, side: str) -> BucketEndpoint | None:
        ep = self.endpoints.target_bucket if side == "target" else self.endpoints.bucket
        return ep or self.endpoints.bucket

    def store(self, side: str = "source") -> Store:
        """The bucket backup writes ("source") or the target's view of it ("target");
        read-only in a dry run."""
        if side not in self.stores:
            ep = self._bucket(side)
            if ep is None:
                raise UsageError(
                    "this playbook needs a bucket", hint="set --bucket or KUBE_MIGRATE_BUCKET"
                )
            self.stores[side] = open_bucket(ep, read_only=self.dry_run)
        return self.stores[side]

    def key(self, side: str = "source") -> EncryptionKey | None:
        """The tarball key of the bucket on `side` (spec.bucket.encryptionKeyFile or
        --encryption-key-file; the target bucket's falls back to it), read once."""
        if side not in self.keys:
            ep = self._bucket(side)
            path = ep.encryption_key_file if ep else None
            self.keys[side] = load_key(path) if path else None
        return self.keys[side]

    @property
    def run(self) -> str:
        return self.state.run

    def backup_name(self) -> str:
        """The backup this run restores: its own, a named one, or the newest of a schedule."""
        if "backupName" in self.artefacts:
            return str(self.artefacts["backupName"])
        schedule = self.pb.backup.from_schedule
        if schedule:
            rows = catalog.list_backups(self.store("target"))
            done = [r for r in rows if r.schedule == schedule and r.phase == "Completed"]
            if not done:
                named = sum(r.name.startswith(f"{schedule}-") for r in rows)
                raise UsageError(
                    f"no Completed backup of schedule {schedule} (label "
                    f"{layout.SCHEDULE_LABEL}={schedule}) in the bucket",
                    hint=f"{named} backups are named {schedule}-* but not labelled: name one "
                    "with spec.backup.name"
                    if named
                    else "run the schedule first (`schedule run-now`), or set spec.backup.name",
                )
            name = max(done, key=lambda r: (r.created is not None, r.created, r.name)).name
            log.log(NOTICE, "schedule %s: its newest Completed backup is %s", schedule, name)
        else:
            name = self.pb.backup_name(self.run)
        self.artefacts["backupName"] = name
        return name

    def restore_options(self, resume: bool) -> RestoreOptions:
        rs = self.pb.restore
        return RestoreOptions(
            name=self.pb.restore_name(self.run),
            backup=self.backup_name(),
            scope=self.pb.scope(),
            mappings=self.pb.mappings(),
            modifiers=load_modifiers(rs.resource_modifiers) if rs.resource_modifiers else None,
            existing_policy=rs.existing_resource_policy,
            restore_status=rs.restore_status,
            preserve_node_ports=rs.preserve_node_ports,
            pv_policy=rs.pv_policy,
            parallelism=rs.parallelism,
            resume=resume,
            encryption_key=self.key("target"),
            run=self.run,
            fail_on="warning" if self.pb.gates.restore == "warning" else "error",
            hold_workloads=rs.hold_workloads,
        )

    def close(self) -> None:
        """Remove the live snapshot (it holds the source's Secrets), if one was taken."""
        if self.snapshot is not None:
            self.snapshot[0].cleanup()
            self.snapshot = None
