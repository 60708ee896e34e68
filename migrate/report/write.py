"""Write a run's report directory from the run document the runner assembled.

The run document is plain data (what `report.json` holds): run name, playbook, times,
exit code, cluster versions, and per step its status, duration and result summary.
Markdown and HTML are rendered from it here, so the three files never disagree.
"""

from __future__ import annotations

import html
import json
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# Step result keys shown as tables, and their columns: key -> (title, columns).
TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "findings": ("Preflight findings", ("severity", "check", "object", "message", "fix")),
    "levels": ("Restore plan by level", ("level", "objects", "kinds")),
    "failedObjects": ("Objects that failed", ("kind", "namespace", "name", "message")),
    "drift": ("Verification", ("status", "kind", "namespace", "name", "detail")),
}


def _scalar_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    return [(k, str(v)) for k, v in result.items() if not isinstance(v, list | dict)]


def _md_table(columns: Iterable[str], rows: list[dict[str, Any]]) -> str:
    cols = list(columns)
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        cells = [str(row.get(c, "")).replace("|", "\\|").replace("\n", " ") for c in cols]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def render_markdown(doc: dict[str, Any]) -> str:
    lines = [
        f"# Migration run {doc['run']}",
        "",
        f"Playbook `{doc.get('playbook', '')}`, exit code **{doc.get('exitCode')}**, "
        f"{doc.get('started', '')} to {doc.get('finished', '')}.",
        "",
        f"Source: {doc.get('source', {}).get('version', '?')} — "
        f"target: {doc.get('target', {}).get('version', '?')}",
        "",
        "## Steps",
        "",
        _md_table(("step", "status", "seconds", "summary"), doc.get("steps", [])),
    ]
    for step in doc.get("steps", []):
        result = step.get("result") or {}
        if not result:
            continue
        lines += ["", f"## {step['step']}", ""]
        scalars = _scalar_rows(result)
        if scalars:
            lines += [_md_table(("field", "value"), [{"field": k, "value": v} for k, v in scalars])]
        for key, (title, cols) in TABLES.items():
            if result.get(key):
                lines += ["", f"### {title}", "", _md_table(cols, result[key])]
    if doc.get("graph"):
        lines += ["", "## Restore graph", "", f"See `{doc['graph']}`."]
    return "\n".join(lines) + "\n"


def _html_table(columns: Iterable[str], rows: list[dict[str, Any]]) -> str:
    cols = list(columns)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>" for c in cols) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:80em}"
    "table{border-collapse:collapse;margin:.5em 0 1.5em}"
    "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;font-size:90%}"
    "th{background:#f3f3f3}.ok{color:#176917}.bad{color:#a31515}"
)


def render_html(doc: dict[str, Any], graph_svg: str | None) -> str:
    status = "ok" if doc.get("exitCode") == 0 else "bad"
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>Run {html.escape(doc['run'])}"
        f"</title><style>{CSS}</style></head><body>",
        f"<h1>Migration run {html.escape(doc['run'])}</h1>",
        f"<p class='{status}'>Exit code {doc.get('exitCode')}; playbook "
        f"<code>{html.escape(str(doc.get('playbook', '')))}</code>; source "
        f"{html.escape(str(doc.get('source', {}).get('version', '?')))}, target "
        f"{html.escape(str(doc.get('target', {}).get('version', '?')))}</p>",
        "<h2>Steps</h2>",
        _html_table(("step", "status", "seconds", "summary"), doc.get("steps", [])),
    ]
    for step in doc.get("steps", []):
        result = step.get("result") or {}
        if not result:
            continue
        parts.append(f"<h2>{html.escape(step['step'])}</h2>")
        scalars = _scalar_rows(result)
        if scalars:
            rows = [{"field": k, "value": v} for k, v in scalars]
            parts.append(_html_table(("field", "value"), rows))
        for key, (title, cols) in TABLES.items():
            if result.get(key):
                parts += [f"<h3>{title}</h3>", _html_table(cols, result[key])]
    if graph_svg:
        parts += ["<h2>Restore graph</h2>", graph_svg]
    elif doc.get("graph"):
        parts += ["<h2>Restore graph</h2>", f"<p>Graphviz source: {html.escape(doc['graph'])}</p>"]
    parts.append("</body></html>")
    return "\n".join(parts)


def _svg(dot_source: str) -> str | None:
    dot = shutil.which("dot")
    if not dot:
        return None
    out = subprocess.run(
        [dot, "-Tsvg"], input=dot_source, capture_output=True, text=True, check=False
    )
    return out.stdout if out.returncode == 0 else None


def write_report(
    directory: Path, doc: dict[str, Any], graph_dot: str | None, junit_xml: str | None
) -> list[Path]:
    """Write report.{json,md,html} (+ junit.xml, restore-graph.{svg|dot}); return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    svg = _svg(graph_dot) if graph_dot else None
    if graph_dot:
        name = "restore-graph.svg" if svg else "restore-graph.dot"
        (directory / name).write_text(svg or graph_dot)
        doc["graph"] = name
        written.append(directory / name)
    if junit_xml:
        (directory / "junit.xml").write_text(junit_xml)
        written.append(directory / "junit.xml")
    (directory / "report.json").write_text(json.dumps(doc, indent=1, default=str))
    (directory / "report.md").write_text(render_markdown(doc))
    (directory / "report.html").write_text(render_html(doc, svg))
    written += [directory / f"report.{ext}" for ext in ("json", "md", "html")]
    return written
