"""Rules between fields that JSON Schema cannot say well, checked after the schema.

- Every step appears at most once, except `scale` (scale down the source, later the target...).
- The steps other than `scale` keep the migration's order:
  preflight, backup, waitForSync, restore, waitReady, verify (any of them may be left out).
  Preflight checks before anything is written; waitForSync waits for the backup just made;
  verify compares what restore wrote.
- `backup` and `spec.backup.fromSchedule` exclude each other: fromSchedule means "restore the
  newest Completed backup of a schedule" (disaster recovery), so there is nothing to make.
- `restore`, `waitForSync` and `verify` with `fromBackup: true` need a backup: the `backup`
  step before them, or an existing one named by `spec.backup.name` or `spec.backup.fromSchedule`.
- `waitReady` waits for what restore wrote, so it needs the `restore` step; so does
  `cleanup` (a drill's last step: it removes the namespaces that restore created).
- A cut-over hook is a `command` or a `job`, one of them; a job hook's `name` (it names
  the Job) is a DNS label of at most 40 characters.
- `spec.scope.selector` is a valid label selector; `spec.restore.namespaceMappings` maps no
  two namespaces onto the same one (their objects would collide).
"""

from __future__ import annotations

import re
from typing import Any

from migrate.cluster.selectors import Selector
from migrate.errors import UsageError
from migrate.playbook.source import Locator, Path_, dotted

STEP_ORDER = (
    "preflight", "backup", "waitForSync", "restore", "precopy", "cutover", "waitReady", "verify",
    "cleanup",
)  # fmt: skip
STEP_NAMES = (*STEP_ORDER, "scale")
REPEATABLE = frozenset({"scale"})
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?")


def step_name(raw: Any) -> str:
    """A schema-valid step item (`"backup"` or `{"scale": {...}}`) -> its name."""
    return raw if isinstance(raw, str) else next(iter(raw))


def _backup_source(spec: dict[str, Any], seen: dict[str, int]) -> bool:
    backup = spec.get("backup") or {}
    return "backup" in seen or bool(backup.get("name") or backup.get("fromSchedule"))


def check_steps(spec: dict[str, Any], loc: Locator) -> None:
    """Uniqueness, order, and what each step needs before it."""
    seen: dict[str, int] = {}
    backup = spec.get("backup") or {}
    verify = spec.get("verify") or {}
    for i, raw in enumerate(spec["steps"]):
        name = step_name(raw)
        path: Path_ = ("spec", "steps", i)
        if name in seen and name not in REPEATABLE:
            raise loc.error(
                path,
                f"step {name!r} is listed twice (first at {dotted(('spec', 'steps', seen[name]))})",
                hint="list each step once; only scale may repeat",
            )
        if name in STEP_ORDER:
            for other, j in seen.items():
                if other in STEP_ORDER and STEP_ORDER.index(other) > STEP_ORDER.index(name):
                    raise loc.error(
                        path,
                        f"{name} must come before {other} ({dotted(('spec', 'steps', j))})",
                        hint=f"keep the steps in this order: {', '.join(STEP_ORDER)}",
                    )
        if name == "backup" and backup.get("fromSchedule"):
            raise loc.error(
                path,
                "the backup step is not allowed with spec.backup.fromSchedule",
                hint="fromSchedule restores an existing backup: drop the backup step, "
                "or drop fromSchedule to make a new backup",
            )
        needs_backup = name in ("restore", "waitForSync") or (
            name == "verify" and verify.get("fromBackup")
        )
        if needs_backup and not _backup_source(spec, seen):
            what = "verify with fromBackup" if name == "verify" else name
            raise loc.error(
                path,
                f"{what} has no backup to work on",
                hint="put the backup step before it, or name an existing backup with "
                "spec.backup.name or spec.backup.fromSchedule",
            )
        if name in ("precopy", "cutover"):
            _check_live(spec, name, seen, path, loc)
        if name == "cleanup" and "restore" not in seen:
            raise loc.error(
                path,
                "cleanup removes what this run's restore created, and no restore step comes "
                "before it",
                hint="add the restore step before cleanup, or drop cleanup",
            )
        if name == "waitReady" and "restore" not in seen:
            raise loc.error(
                path,
                "waitReady waits for restored workloads but no restore step comes before it",
                hint="add the restore step before waitReady, or drop waitReady",
            )
        seen.setdefault(name, i)


def _check_live(
    spec: dict[str, Any], name: str, seen: dict[str, int], path: Path_, loc: Locator
) -> None:
    """precopy and cutover continue this run's own held restore of its own backup."""
    if "backup" not in seen or "restore" not in seen:
        raise loc.error(
            path,
            f"{name} continues this run's backup and restore, and one of them is missing",
            hint="list backup, waitForSync and restore before it (playbooks/live-migrate.yaml)",
        )
    namespaces = (spec.get("scope") or {}).get("includeNamespaces") or ["*"]
    if any("*" in ns for ns in namespaces):
        raise loc.error(
            path,
            f"{name} stops and starts the workloads of the scope's namespaces, and "
            "spec.scope.includeNamespaces names none",
            hint="list the app's namespaces: spec.scope.includeNamespaces: [shop, shop-data]",
        )
    if not (spec.get("restore") or {}).get("holdWorkloads"):
        raise loc.error(
            path,
            f"{name} needs the target's workloads held until the cut-over",
            hint="set spec.restore.holdWorkloads: true",
        )


def check_hooks(spec: dict[str, Any], loc: Locator) -> None:
    for i, hook in enumerate((spec.get("cutover") or {}).get("hooks") or []):
        path: Path_ = ("spec", "cutover", "hooks", i)
        if ("command" in hook) == ("job" in hook):
            raise loc.error(
                path,
                "a cut-over hook is a command or a job: give one of them",
                hint="{name: dns, command: [./switch-dns.sh]} runs here; {name: dns, job: "
                "{spec: {template: ...}}} runs in the target cluster",
            )
        name = hook.get("name")
        if "job" in hook and not DNS_LABEL.fullmatch(str(name or "")):
            raise loc.error(
                path,
                f"a job hook's name names its Job: {name!r} is not a DNS label"
                if name
                else "a job hook needs a name: it names its Job",
                hint="lower-case letters, digits and '-', at most 40 characters: name: switch-dns",
            )


def check_scope(spec: dict[str, Any], loc: Locator) -> None:
    selector = (spec.get("scope") or {}).get("selector")
    if selector is None:
        return
    try:
        Selector.parse(selector)
    except UsageError as e:
        raise loc.error(("spec", "scope", "selector"), e.message, hint=e.hint) from None


def check_mappings(spec: dict[str, Any], loc: Locator) -> None:
    mappings: dict[str, str] = (spec.get("restore") or {}).get("namespaceMappings") or {}
    owner: dict[str, str] = {}
    for src, dst in mappings.items():
        if dst in owner:
            raise loc.error(
                ("spec", "restore", "namespaceMappings", src),
                f"maps {src!r} to {dst!r}, which {owner[dst]!r} is mapped to already",
                hint="map each source namespace to its own target namespace",
            )
        owner[dst] = src


def check(doc: dict[str, Any], loc: Locator) -> None:
    """Run every cross-field rule on a schema-valid document."""
    spec = doc["spec"]
    check_steps(spec, loc)
    check_hooks(spec, loc)
    check_scope(spec, loc)
    check_mappings(spec, loc)
