"""Checks 1-3: Kubernetes versions, API compatibility per object (both clusters'
discovery, never guessed), removed/deprecated APIs (the packaged table), and CRDs
whose versions the target's copy lacks.

Restore creates an object at its own apiVersion when the target serves it, otherwise at
the target's preferred version of the kind with the fields unchanged (it relabels, it
does not convert); these checks say in advance which objects take which road.
"""

from __future__ import annotations

import json
from typing import Any

from migrate.preflight import deprecations
from migrate.preflight.context import Context, Planned, api_parts, is_builtin_group
from migrate.preflight.findings import Collect, Finding

CRD_GR = "customresourcedefinitions.apiextensions.k8s.io"


def _v(major: int, minor: int) -> str:
    return f"v{major}.{minor}"


def check_versions(ctx: Context) -> list[Finding]:
    c = Collect("version")
    src, tgt = ctx.source, ctx.target.version
    if not src.known_version:
        c.add(
            "warning",
            "the source's Kubernetes version is unknown (the backup does not record it)",
            "compare the versions by hand: restoring into an older Kubernetes is not supported",
        )
        return c.findings()
    sv, tv = (src.major, src.minor), (tgt.major, tgt.minor)
    pair = f"source {src.git_version or _v(*sv)}, target {tgt}"
    if tv < sv:
        c.add(
            "error",
            f"the target is older than the source ({pair}): restoring into an older "
            "Kubernetes is not supported",
            f"migrate to a cluster at {_v(*sv)} or newer, or upgrade the target first",
        )
    elif tv == sv:
        c.add("info", f"same minor version ({pair})")
    else:
        skew = tv[1] - sv[1] if tv[0] == sv[0] else None
        ahead = f"{skew} minor versions" if skew is not None else "a major version"
        c.add(
            "info",
            f"the target is {ahead} newer ({pair}); APIs removed in between are checked "
            "per object below",
        )
    return c.findings()


def _crd_versions(crd: dict[str, Any], served_only: bool = True) -> list[str]:
    return [
        v["name"]
        for v in (crd.get("spec") or {}).get("versions") or []
        if v.get("served", True) or not served_only
    ]


def _planned_crd_wins(ctx: Context, crd: dict[str, Any]) -> bool:
    """Whether the CRD in the plan is the one the target ends up with: it is not there
    yet, or the existing-resource policy replaces it."""
    name = (crd.get("metadata") or {}).get("name", "")
    return ctx.options.existing_policy == "update" or ctx.target.get(CRD_GR, None, name) is None


def check_api(ctx: Context) -> list[Finding]:
    c = Collect("api")
    disc = ctx.target.disc
    live_source = ctx.source.origin == "cluster"
    for it in ctx.restorable:
        api_version = str(it.read_desired().get("apiVersion", ""))
        group, version = api_parts(api_version)
        if disc.serves(group, version, it.kind):
            continue
        crd = ctx.planned_crds.get((group, it.kind))
        if crd is not None and version in _crd_versions(crd) and _planned_crd_wins(ctx, crd):
            continue  # the restore creates its CRD first
        res = disc.for_kind(api_version, it.kind)
        if res is not None:
            c.add("warning", *_relabelled(ctx, it, api_version, res.api_version), ctx.ref(it))
        elif not is_builtin_group(group):
            where = "the CRD is not in scope" if live_source else "the backup has no CRD for it"
            fix = (
                f"include the CRD {it.gr}: --include-cluster-resources auto (brings the CRDs "
                "of custom resources in scope) or --include-resources ...,"
                "customresourcedefinitions; or install it on the target first"
                if live_source
                else f"install the CRD {it.gr} on the target first, or back up again with it"
            )
            c.add(
                "error",
                f"the target serves no {it.kind} ({api_version}) and {where}",
                fix,
                ctx.ref(it),
            )
        else:
            dep = deprecations.lookup(api_version, it.kind)
            why = f": {dep.describe()}" if dep else ""
            fix = dep.advice() if dep else f"exclude it with --exclude-resources {it.gr}"
            c.add(
                "error",
                f"the target ({ctx.target.version}) serves no version of "
                f"{group or 'core'} {it.kind}{why}",
                fix,
                ctx.ref(it),
            )
    return c.findings()


def _relabelled(ctx: Context, it: Planned, api_version: str, as_version: str) -> tuple[str, str]:
    """(message, fix) for an object the target serves at another version only."""
    group, version = api_parts(api_version)
    msg = (
        f"the target does not serve {api_version} {it.kind}: restore sends it as "
        f"{as_version} with its fields unchanged (no conversion)"
    )
    if not is_builtin_group(group):
        crd = ctx.target.get(CRD_GR, None, it.gr) or {}
        strategy = ((crd.get("spec") or {}).get("conversion") or {}).get("strategy", "None")
        served = ", ".join(_crd_versions(crd)) or "?"
        msg += (
            f"; the target's CRD {it.gr} serves {served} (conversion {strategy}), "
            f"fields outside the {api_parts(as_version)[1]} schema are pruned or rejected"
        )
        fix = (
            f"have the target's CRD serve {version} (with a conversion), or convert the "
            f"custom resources to {as_version} before migrating"
        )
        return msg, fix
    dep = deprecations.lookup(api_version, it.kind)
    if dep and dep.note:
        msg += f"; fields that change: {dep.note}"
    if api_parts(as_version)[1] in ctx.source.served.get((group, it.kind), ()):
        msg += f"; the source serves {as_version} too and converts there"
    return msg, f"convert the objects to {as_version} and check they validate there"


def _used_api_versions(obj: dict[str, Any]) -> dict[str, set[str]]:
    """apiVersion -> where the object shows it was written with that version."""
    meta = obj.get("metadata") or {}
    out: dict[str, set[str]] = {str(obj.get("apiVersion", "")): {"stored object"}}
    raw = (meta.get("annotations") or {}).get("kubectl.kubernetes.io/last-applied-configuration")
    try:
        applied = json.loads(raw) if raw else None
    except ValueError:
        applied = None
    if isinstance(applied, dict) and applied.get("apiVersion"):
        out.setdefault(str(applied["apiVersion"]), set()).add("last-applied-configuration")
    for entry in meta.get("managedFields") or []:
        if isinstance(entry, dict) and entry.get("apiVersion"):
            where = f"managedFields of {entry.get('manager') or 'a client'}"
            out.setdefault(str(entry["apiVersion"]), set()).add(where)
    return out


def check_removed_apis(ctx: Context) -> list[Finding]:
    tv = ctx.target.minor
    hits: dict[tuple[str, str, str], tuple[set[str], list[str]]] = {}
    for it in ctx.restorable:
        for api_version, where in _used_api_versions(it.read_obj()).items():
            dep = deprecations.lookup(api_version, it.kind)
            status = dep.status(tv) if dep else None
            if status:
                places, objs = hits.setdefault((api_version, it.kind, status), (set(), []))
                places |= where
                objs.append(ctx.ref(it))
    out = []
    for (api_version, kind, status), (places, objs) in sorted(hits.items()):
        dep = deprecations.lookup(api_version, kind)
        assert dep is not None
        out.append(
            Finding(
                "warning" if status == "removed" else "info",
                "removed-api",
                f"{kind} written with {api_version} ({', '.join(sorted(places))}): "
                f"{dep.describe()}, the target is {ctx.target.version}",
                f"update the manifests, charts and clients that write it: {dep.advice()}",
                tuple(sorted(objs)),
            )
        )
    return out


def check_crd_versions(ctx: Context) -> list[Finding]:
    c = Collect("crd-version")
    policy = ctx.options.existing_policy
    for it in ctx.by_kind("CustomResourceDefinition"):
        spec = it.read_desired().get("spec") or {}
        group, kind = spec.get("group", ""), (spec.get("names") or {}).get("kind", "")
        conversion = spec.get("conversion") or {}
        live = ctx.target.get(CRD_GR, None, it.key[3])
        if live is None:
            if conversion.get("strategy") == "Webhook":
                c.add(
                    "warning",
                    f"CRD {it.key[3]} converts between versions with a webhook: the target "
                    "needs that webhook running before its custom resources are restored",
                    "restore the webhook's workload first, or install the operator on the target",
                    ctx.ref(it),
                )
            continue
        stored = set((it.read_obj().get("status") or {}).get("storedVersions") or [])
        stored |= {v["name"] for v in spec.get("versions") or [] if v.get("storage")}
        used = {
            api_parts(str(o.read_desired().get("apiVersion")))[1]
            for o in ctx.restorable
            if o.kind == kind and api_parts(str(o.read_desired().get("apiVersion")))[0] == group
        }
        have = set(_crd_versions(live))
        missing = sorted((stored | used) - have)
        if not missing:
            continue
        keep = (
            "restore replaces it with the source's CRD"
            if policy == "update"
            else "restore keeps the target's CRD, so custom resources at those versions are "
            "sent as the target's version without conversion"
        )
        c.add(
            "warning",
            f"the target already has CRD {it.key[3]} serving {', '.join(sorted(have))} but "
            f"not {', '.join(missing)}, which the source stores or uses; {keep}",
            f"align the CRD first: make the target's CRD serve {', '.join(missing)} with a "
            f"conversion, or migrate the source's objects to {', '.join(sorted(have))}",
            ctx.ref(it),
        )
    return c.findings()
