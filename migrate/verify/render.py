"""A verify report as text for people: a kubectl-style table for the terminal, Markdown
for a pull-request or chat message, a standalone HTML page to attach to a change ticket.
JSON (for programs) is VerifyReport.as_dict; JUnit (for CI) is migrate.verify.junit.

Only drift is listed row by row (a verify of 10k equal objects stays readable); the
summary counts everything.  Values were made safe to print when the results were built.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from typing import Any

from migrate.verify.results import ABSENT, ObjectResult, VerifyReport

COLUMNS = ("status", "kind", "namespace", "name", "path", "source", "target")
TABLE_CELL_CHARS = 80


def cell(value: Any, limit: int | None = None) -> str:
    """One value on one line: strings as they are, structures as compact JSON."""
    if value is ABSENT:
        text = "<none>"
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    if limit and len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def rows(report: VerifyReport, limit: int | None = None) -> Iterator[dict[str, str]]:
    """One row per changed field, one per missing or extra object."""
    for r in report.drifted:
        base = {"status": r.status, "kind": r.kind, "namespace": r.namespace or "", "name": r.name}
        if not r.changes:
            yield {**base, "path": "", "source": "", "target": ""}
        for c in r.changes:
            yield {
                **base,
                "path": c.path,
                "source": cell(c.old, limit),
                "target": cell(c.new, limit),
            }


def table(report: VerifyReport) -> str:
    found = list(rows(report, TABLE_CELL_CHARS))
    if not found:
        return report.summary_line()
    widths = {c: max(len(c), *(len(r[c]) for r in found)) for c in COLUMNS}
    lines = ["   ".join(c.upper().ljust(widths[c]) for c in COLUMNS).rstrip()]
    lines += ["   ".join(r[c].ljust(widths[c]) for c in COLUMNS).rstrip() for r in found]
    return "\n".join([*lines, "", report.summary_line()])


def _side(doc: dict[str, Any]) -> str:
    where = f"backup {doc['backup']}" if doc.get("backup") else str(doc.get("cluster") or "?")
    return f"{where} ({doc.get('version') or 'unknown version'})"


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "'")


def markdown(report: VerifyReport) -> str:
    s = report.summary()
    verdict = "drift found" if report.drift else "no drift"
    out = [
        f"### kube-migrate verify: {verdict}",
        "",
        f"Source: {_md(_side(report.source))} -> target: {_md(_side(report.target))}",
        "",
        "| objects | equal | changed | missing | extra | not compared |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {s['objects']} | {s['equal']} | {s['changed']} | {s['missing']} | {s['extra']} "
        f"| {s['notCompared']} |",
    ]
    found = list(rows(report))
    if found:
        out += ["", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        for r in found:
            cells = [_md(r[c]) for c in COLUMNS]
            for i in (4, 5, 6):  # path and values as code
                cells[i] = f"`{cells[i]}`" if cells[i] else ""
            out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


CSS = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
    "code{white-space:pre-wrap}.missing,.extra{color:#b00}.changed{color:#a60}"
    ".equal{color:#070}"
)


def _td(column: str, value: str, status: str) -> str:
    text = html.escape(value)
    if column in ("path", "source", "target"):
        return f"<td><code>{text}</code></td>"
    if column == "status":
        return f'<td class="{html.escape(status)}">{text}</td>'
    return f"<td>{text}</td>"


def _html_rows(found: list[dict[str, str]]) -> str:
    return "\n".join(
        "<tr>" + "".join(_td(c, r[c], r["status"]) for c in COLUMNS) + "</tr>" for r in found
    )


def html_page(report: VerifyReport) -> str:
    s = report.summary()
    verdict = "drift found" if report.drift else "no drift"
    head = "".join(f"<th>{c}</th>" for c in COLUMNS)
    counts = "".join(
        f"<tr><th>{k}</th><td>{s[k]}</td></tr>"
        for k in ("objects", "equal", "changed", "missing", "extra", "notCompared")
    )
    found = list(rows(report))
    body = (
        f"<table><thead><tr>{head}</tr></thead><tbody>\n{_html_rows(found)}\n</tbody></table>"
        if found
        else '<p class="equal">Every object in scope is equal.</p>'
    )
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>kube-migrate verify: {verdict}</title><style>{CSS}</style></head><body>",
            f'<h1 class="{"changed" if report.drift else "equal"}">'
            f"kube-migrate verify: {verdict}</h1>",
            f"<p>Source: {html.escape(_side(report.source))}<br>"
            f"Target: {html.escape(_side(report.target))}</p>",
            f"<table>{counts}</table><h2>Drift</h2>",
            body,
            "</body></html>",
        ]
    )


def object_text(r: ObjectResult) -> str:
    """A result's details as plain lines (JUnit failure bodies)."""
    if r.status == "missing":
        text = f"{r.kind} {r.ref()} is missing on the target"
        if r.source and r.source != (r.namespace, r.name):
            ns, name = r.source
            text += f" (source: {ns + '/' if ns else ''}{name})"
        return text
    if r.status == "extra":
        return f"{r.kind} {r.ref()} exists on the target but not in the source"
    return "\n".join(f"{c.path}: {cell(c.old)} -> {cell(c.new)}" for c in r.changes)
