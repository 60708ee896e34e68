"""Run every check against the target and gather the report.  Preflight only reads:
the target is listed and asked SelfSubjectAccessReviews (never stored), the source
side comes from a backup (taken into a temporary folder for a live source).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from migrate.cluster import Cluster
from migrate.preflight.access import check_permissions, check_source
from migrate.preflight.capacity import check_capacity
from migrate.preflight.collisions import check_collisions
from migrate.preflight.compat import (
    check_api,
    check_crd_versions,
    check_removed_apis,
    check_versions,
)
from migrate.preflight.context import Context, Planned, PreflightOptions
from migrate.preflight.escalation import check_escalation
from migrate.preflight.facts import SourceFacts
from migrate.preflight.findings import Finding, Report
from migrate.preflight.grants import check_clone, check_grants
from migrate.preflight.podsecurity import check_pod_security
from migrate.preflight.references import check_references
from migrate.preflight.target import TargetView
from migrate.preflight.volumes import check_volumes
from migrate.preflight.webhooks import check_webhooks

log = logging.getLogger(__name__)

# In report order; permissions last, so it also reports what the others could not read.
CHECK_FUNCTIONS: tuple[Callable[[Context], list[Finding]], ...] = (
    check_versions,
    check_api,
    check_removed_apis,
    check_crd_versions,
    check_references,
    check_collisions,
    check_volumes,
    check_webhooks,
    check_grants,
    check_clone,
    check_pod_security,
    check_capacity,
    check_source,
    check_escalation,
    check_permissions,
)


def run_preflight(
    source: SourceFacts,
    target: Cluster,
    items: Sequence[Planned],
    options: PreflightOptions | None = None,
) -> Report:
    """Check that `items` (restore's plan for the source) can move to `target`."""
    opts = options or PreflightOptions()
    view = TargetView(target, opts.parallelism)
    ctx = Context(source, view, list(items), opts)
    tv = view.version
    skew = tv.minor - source.minor if source.known_version and tv.major == source.major else None
    report = Report(
        source=source.header(),
        target={
            "name": target.name,
            "server": target.host,
            "version": str(tv),
            "minor": f"{tv.major}.{tv.minor}",
            "minorSkew": skew,
        },
        settings={
            "existingResourcePolicy": opts.existing_policy,
            "namespaceMappings": dict(opts.namespace_mappings),
            "storageClassMappings": dict(opts.storage_class_mappings),
            "pvPolicy": opts.pv_policy,
            "objects": len(ctx.items),
            "restored": len(ctx.restorable),
            "skipped": len(ctx.items) - len(ctx.restorable),
        },
    )
    for check in CHECK_FUNCTIONS:
        log.debug("preflight: %s", check.__name__)
        report.add(check(ctx))
    counts = report.counts()
    log.info(
        "preflight: %d errors, %d warnings, %d infos",
        counts["error"],
        counts["warning"],
        counts["info"],
    )
    return report
