"""Compare the two sides in one pass over the source's objects: equal ones cost one `==`
on the normalized dicts; only objects that differ go through deepdiff, whose paths and
values become the changes of the result.  Recreated objects are compared as counts per
root owner and reported on that owner's result.
"""

from __future__ import annotations

from typing import Any

from migrate.transform.mappings import SCALABLE_KINDS, Mappings
from migrate.verify.collect import Side
from migrate.verify.normalize import Key, Normalizer, Raw, same_but_volatile
from migrate.verify.results import ABSENT, STATUSES, Change, ObjectResult, field_change


def _value(v: Any) -> Any:
    from deepdiff.helper import NotPresent

    return ABSENT if isinstance(v, NotPresent) else v


def diff(kind: str, src: dict[str, Any], tgt: dict[str, Any], show: bool) -> list[Change]:
    """Every differing field, source -> target, list order significant (as in the API)."""
    from deepdiff import DeepDiff  # ~0.05 s, imported by the first diff, not at start-up

    tree = DeepDiff(src, tgt, view="tree", verbose_level=2)
    changes = []
    for levels in tree.values():
        for lvl in levels:
            path = lvl.path(output_format="list")
            changes.append(field_change(kind, path, _value(lvl.t1), _value(lvl.t2), show))
    return sorted(changes, key=lambda c: c.path)


def expected_count(kind: str, root_kind: str, n: int, m: Mappings) -> int:
    """How many recreated objects the target should have, given the source's n: --replicas
    sets the Pods of scalable owners (and whether they keep an active ReplicaSet)."""
    if m.replicas is None or root_kind not in SCALABLE_KINDS:
        return n
    if kind == "Pod":
        return m.replicas
    if kind == "ReplicaSet":
        return max(n, 1) if m.replicas > 0 else 0
    return n


def compare(
    source: Side, target: Side, norm: Normalizer, show_values: bool = False
) -> list[ObjectResult]:
    results: dict[Key, ObjectResult] = {}
    for key, src_read in source.objects.items():
        gr = source.resources[key]
        tgt_read = target.objects.get(key)
        origin = source.origin.get(key)
        if tgt_read is None:
            results[key] = ObjectResult(key, gr, "missing", source=origin)
            continue
        raw_pair = type(src_read) is Raw and type(tgt_read) is Raw
        if raw_pair and same_but_volatile(src_read, tgt_read):
            results[key] = ObjectResult(key, gr, "equal", [], origin)
            continue
        src, tgt = norm.materialize(src_read), norm.materialize(tgt_read)
        changes: list[Change] = []
        if src != tgt:
            norm.drop_target_defaults(src, tgt)
            if src != tgt:
                changes = diff(key[1], src, tgt, show_values)
        results[key] = ObjectResult(key, gr, "changed" if changes else "equal", changes, origin)
    for key in target.objects:
        if key in results or key in source.ignored or key in target.ignored:
            continue
        if key not in target.lookup_only:
            results[key] = ObjectResult(key, target.resources[key], "extra")
    _counts(source, target, norm.t.mappings, results, norm.held)
    rank = {status: n for n, status in enumerate(STATUSES)}
    return sorted(results.values(), key=lambda r: (rank[r.status], *_order(r.key)))


def _order(key: Key) -> tuple[str, str, str, str]:
    return (key[1], key[0], key[2] or "", key[3])


def _counts(
    source: Side,
    target: Side,
    mappings: Mappings,
    results: dict[Key, ObjectResult],
    held: set[Key],
) -> None:
    for root, kind in sorted(set(source.counts) | set(target.counts), key=lambda rk: rk[1]):
        if root in held:
            continue  # held or stopped on one side: its pods are not the migration's doing
        want = expected_count(kind, root[1], source.counts[(root, kind)], mappings)
        have = target.counts[(root, kind)]
        result = results.get(root)
        if result is not None and result.status in ("missing", "extra"):
            continue  # the owner itself is reported
        if result is None:
            if root in source.ignored or root in target.ignored:
                continue  # an owner verify does not compare (a finished Job, say)
            result = results[root] = ObjectResult(root, "(owner of recreated objects)", "equal")
        if want != have:
            result.changes.append(Change(f"count({kind})", want, have))
            result.status = "changed"
