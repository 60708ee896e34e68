"""Restore results in Velero's restore layout (`restores/<name>/restore-<name>-*.gz`), plus
our per-object details; in the bucket, or in a local folder when the bucket is
read-only (then nothing at all is written to the bucket).  Also reads them back for
`restore get/describe/logs`."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from migrate.errors import UsageError
from migrate.restore.bucket_journal import read_header
from migrate.restore.journal import ObjectResult, state_dir
from migrate.store import Store, layout
from migrate.store.gzlists import GzipLists


def _keys(name: str) -> dict[str, str]:
    base = f"restores/{name}/restore-{name}"
    return {
        "results": f"{base}-results.gz",
        "resource_list": f"{base}-resource-list.json.gz",
        "logs": f"{base}-logs.gz",
        "details": f"{base}-kube-migrate.json.gz",
        "details_plain": f"{base}-kube-migrate.json",  # older versions' name: still read
    }


def local_dir() -> Path:
    return state_dir() / "restore-results"


def location(store: Store, name: str) -> str:
    """Where write_results puts a restore's files."""
    if store.read_only:
        return str(local_dir() / f"restores/{name}")
    return f"{store.url}/restores/{name}"


def exists(store: Store, name: str) -> bool:
    """Whether restore `name` left results in the bucket (or, read-only, locally)."""
    if (local_dir() / "restores" / name).exists():
        return True
    return next(iter(store.list(f"restores/{name}/")), None) is not None


def written(store: Store, name: str) -> bool:
    """Whether restore `name` finished and wrote its results (not just its journal)."""
    key = _keys(name)["results"]
    return (local_dir() / key).exists() or store.exists(key)


def write_results(
    store: Store,
    summary: dict[str, Any],
    results: Iterable[ObjectResult],
    warnings: list[str],
    log_lines: list[str],
) -> str:
    """Write the four files; return where they went.  `summary` is the restore's
    details without its objects: one row per object is added here, serialized row by
    row (at 100k objects a document of dicts would cost ~200 MB for a moment)."""
    errors, warns = layout.empty_result(), layout.empty_result()
    resource_list = GzipLists()  # kinds in the order results came
    for r in results:
        group, kind, ns, name = r.key
        ref = f"{ns}/{name}" if ns else name
        resource_list.add(f"{group + '/' if group else ''}{kind}", f"{ref}({r.result})")
        target = (
            errors
            if r.result == "failed"
            else warns
            if r.message and r.result == "skipped"
            else None
        )
        if target is not None:
            bucket = target["namespaces"].setdefault(ns, []) if ns else target["cluster"]
            bucket.append(f"{kind} {ref}: {r.message}")
    warns["velero"] += warnings
    keys = _keys(summary["name"])
    blobs = {
        keys["results"]: layout.gzip_json({"errors": errors, "warnings": warns}),
        keys["resource_list"]: resource_list.gzipped(),
        keys["logs"]: gzip.compress(("\n".join(log_lines) + "\n").encode(), mtime=0),
        keys["details"]: _gzipped(_details_chunks(summary, results)),
    }
    if store.read_only:
        root = local_dir()
        for key, blob in blobs.items():
            path = root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(blob)
    else:
        store.put_all(blobs)
    return location(store, summary["name"])


def _gzipped(chunks: Iterable[bytes]) -> bytes:
    """gzip of the concatenated chunks, compressed as they come: at 100k objects the
    uncompressed documents are ~25 MB, that the heap then never holds."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
        for chunk in chunks:
            gz.write(chunk)
    return buf.getvalue()


def _details_chunks(summary: dict[str, Any], results: Iterable[ObjectResult]) -> Iterator[bytes]:
    """`summary` plus "objects": one compact JSON row per line."""
    yield orjson.dumps({**summary, "objects": []})[: -len(b"[]}")] + b"["
    for i, r in enumerate(results):
        yield (b"\n" if i == 0 else b",\n") + orjson.dumps(r.as_dict())
    yield b"\n]}\n"


def _read_details(store: Store, name: str) -> bytes | None:
    keys = _keys(name)
    blob = _read(store, keys["details"])
    if blob is not None:
        return gzip.decompress(blob)
    return _read(store, keys["details_plain"])


def _read(store: Store, key: str) -> bytes | None:
    path = local_dir() / key
    if path.exists():
        return path.read_bytes()
    return store.get(key) if store.exists(key) else None


def list_restores(store: Store) -> list[dict[str, Any]]:
    names = set(store.list_prefixes("restores/"))
    local = local_dir() / "restores"
    if local.exists():
        names |= {p.name for p in local.iterdir()}
    rows = []
    for name in sorted(names):
        blob = _read_details(store, name)
        doc = json.loads(blob) if blob else _unfinished_row(store, name)
        rows.append({k: v for k, v in doc.items() if k not in ("objects", "warningMessages")})
    return rows


def describe(store: Store, name: str, details: bool) -> dict[str, Any]:
    blob = _read_details(store, name)
    if blob is None:
        raise UsageError(
            f"restore {name!r} not found", hint="`kube-migrate restore get` lists them"
        )
    doc: dict[str, Any] = json.loads(blob)
    if not details:
        doc.pop("objects", None)
    return doc


def logs(store: Store, name: str) -> str:
    blob = _read(store, _keys(name)["logs"])
    if blob is None:
        raise UsageError(
            f"no logs for restore {name!r}", hint="`kube-migrate restore get` lists them"
        )
    return gzip.decompress(blob).decode()


def _unfinished_row(store: Store, name: str) -> dict[str, Any]:
    header = read_header(store, name)
    if header is None and any(store.list(f"restores/{name}/journal/run-")):
        return {"name": name, "phase": "New"}  # a playbook run's, before its restore step
    if header is None:
        return {"name": name, "phase": "Unknown (not ours)"}
    return {"name": name, "backup": header.get("backup"), "phase": "InProgress"}


def newest_unfinished(store: Store, backup: str) -> str | None:
    """The restore of `backup` started last that has not written its results (killed or
    interrupted; or running now): from the journals' headers in the bucket, and the
    local journals (a read-only bucket keeps them only there)."""
    headers = []
    for name in store.list_prefixes("restores/"):
        header = read_header(store, name)
        if header:
            headers.append(header)
    journals = state_dir() / "restores"
    for path in journals.glob("*.journal.jsonl") if journals.is_dir() else ():
        with path.open(encoding="utf-8") as f:
            first = f.readline()
        try:
            header = json.loads(first).get("header")
        except (ValueError, AttributeError):
            continue
        if isinstance(header, dict):
            headers.append(header)
    found = [
        h
        for h in headers
        if h.get("backup") == backup and h.get("restore") and not written(store, h["restore"])
    ]
    if not found:
        return None
    return str(max(found, key=lambda h: (str(h.get("started") or ""), h["restore"]))["restore"])
