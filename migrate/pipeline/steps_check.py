"""The steps that check, compare or set rather than move data: preflight, verify and
scale (steps_move.py has backup, sync, restore and readiness).  Each returns (exit code,
result); a gate of the playbook (spec.gates) decides which findings fail the step."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

from migrate.errors import EXIT_DRIFT, EXIT_PREFLIGHT, NotFound
from migrate.pipeline.context import Context
from migrate.pipeline.events import Finding, task
from migrate.pipeline.snapshot import check_plan, live_snapshot
from migrate.pipeline.steps_data import (
    check_data,
    clones_in_cluster,
    data_result,
    target_settings,
)
from migrate.playbook import Step
from migrate.preflight.render import rows
from migrate.transform.sanitize import SanitizeOptions
from migrate.verify import Transforms, VerifyOptions, run_verify
from migrate.verify.ignorefile import load_ignore_rules
from migrate.verify.junit import to_xml


def preflight_step(ctx: Context, step: Step, attempts: int) -> tuple[int, dict[str, Any]]:
    if ctx.pb.backup.from_schedule:  # DR: the source side is the backup
        store, name = ctx.store("target"), ctx.backup_name()
        origin = "backup"
    else:
        store, name = live_snapshot(ctx)
        origin = "cluster"
    restore = ctx.restore_options(resume=False)
    restore.backup = name
    if origin == "cluster":
        restore.encryption_key = None  # the live snapshot is a local, plain backup
    vs = ctx.pb.volumes
    report = check_plan(
        ctx.cluster("target"),
        store,
        restore,
        origin,
        volumes=vs.mode,
        source=ctx.cluster("source") if origin == "cluster" else None,
        snapshot_volumes=vs.snapshot_volumes,
        same_cluster=clones_in_cluster(ctx),
    )
    counts = report.counts()
    found = [
        Finding(r["severity"], r["check"], r["objects"], r["message"], r["fix"])
        for r in rows(report)
    ]
    for finding in found:
        ctx.sink(finding)
    findings = [asdict(f) for f in found]  # the report's columns, as the fields are named
    result = {
        "source": report.source.get("version", ""),
        "target": report.target.get("version", ""),
        "errors": counts["error"],
        "warnings": counts["warning"],
        "findings": findings,
    }
    ctx.artefacts["versions"] = (result["source"], result["target"])
    gate = ctx.pb.gates.fail_on("preflight") or "error"
    failing = gate != "never" and report.reaches(gate)
    return (EXIT_PREFLIGHT if failing else 0), result


def restore_transforms(ctx: Context) -> Transforms:
    """What the run's restore does to an object (mappings, modifiers, sanitizing): verify
    applies it to the source side before comparing."""
    rs = ctx.pb.restore
    return Transforms(
        mappings=ctx.pb.mappings(),
        modifiers=ctx.restore_options(resume=False).modifiers,
        sanitize=SanitizeOptions(
            preserve_node_ports=rs.preserve_node_ports, pv_policy=rs.pv_policy
        ),
    )


def verify_step(ctx: Context, step: Step, attempts: int) -> tuple[int, dict[str, Any]]:
    vs = ctx.pb.verify
    transforms = replace(
        restore_transforms(ctx),
        ignore=tuple(load_ignore_rules(vs.ignore_fields)) if vs.ignore_fields else (),
        show_values=vs.show_values,
    )
    backup = ctx.backup_name() if vs.from_backup else None
    key = ctx.key("target") if vs.from_backup else None
    opts = VerifyOptions(ctx.pb.scope(), transforms, backup, encryption_key=key)
    source = None if vs.from_backup else ctx.cluster("source")
    store = ctx.store("target") if vs.from_backup else None
    with task(ctx.sink, "verify") as progress:
        report = run_verify(source, ctx.cluster("target"), opts, store, progress)
    ctx.artefacts["junit"] = to_xml(report).decode()
    drifted = [
        {
            "status": r.status,
            "kind": r.kind,
            "namespace": r.namespace or "",
            "name": r.name,
            "detail": "; ".join(c.as_dict().get("path", "") for c in r.changes)[:300],
        }
        for r in report.drifted
    ]
    result = {**report.summary(), "drifted": len(drifted), "drift": drifted}
    data_drift = False
    if vs.data and ctx.pb.volumes.mode != "none":
        checks = check_data(
            ctx.cluster("target"),
            ctx.store("target"),
            ctx.backup_name(),
            ctx.pb.mappings().namespace,
            target_settings(ctx),
        )
        result["data"] = data_result(checks)
        data_drift = any(not c.ok for c in checks)
    gate = ctx.pb.gates.fail_on("verify") or "drift"
    drift = report.drift or data_drift
    return (EXIT_DRIFT if drift and gate != "never" else 0), result


def scale_step(ctx: Context, step: Step, attempts: int) -> tuple[int, dict[str, Any]]:
    """Set replicas of workloads on one side (the source to 0 for a cut-over)."""
    sc = ctx.pb.scale(step)
    cluster = ctx.cluster(sc.side)
    disc = cluster.discovery()
    scaled = []
    for kind in sc.kinds:
        res = disc.for_kind("apps/v1", kind) or disc.resolve(kind)
        for ns in sc.namespaces:
            for obj in cluster.list(res, ns):
                name = obj["metadata"]["name"]
                before = (obj.get("spec") or {}).get("replicas")
                try:
                    cluster.patch(res, name, {"spec": {"replicas": sc.replicas}}, ns, sub="scale")
                except NotFound:
                    continue
                scaled.append(
                    {"kind": kind, "namespace": ns, "name": name, "from": before, "to": sc.replicas}
                )
    return 0, {"side": sc.side, "replicas": sc.replicas, "scaled": len(scaled), "objects": scaled}
