"""Write a run's report directory from the run document the runner assembled.

The run document is plain data (what `report.json` holds): run name, playbook, times,
exit code, cluster versions, and per step its status, duration and result summary.
Markdown and HTML are rendered from it here, so the three files never disagree.  The
HTML page also has pictures: the run's timeline and the restore levels (svg.py), and the
restore graph when Graphviz is installed (dot.py).
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from migrate.report.dot import INLINE_MAX, Drawing, draw
from migrate.report.svg import levels_svg, timeline_svg

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
    ".pic{overflow-x:auto;margin:.5em 0 1.5em}.note{color:#555;font-style:italic}"
)


def _graph_html(doc: dict[str, Any], drawing: Drawing | None) -> list[str]:
    """The restore graph section: dot's SVG inline, else why not and a link to the file."""
    if drawing is None:
        return []
    inline = drawing.inline()
    if inline and len(inline) <= INLINE_MAX:
        return ["<h2>Restore graph</h2>", f"<div class='pic graph'>{inline}</div>"]
    name = html.escape(str(doc.get("graph", "restore-graph.dot")))
    note = drawing.note or "The graph is too large to show here"
    return [
        "<h2>Restore graph</h2>",
        f"<p class='note graph-missing'>{html.escape(note)}.</p>",
        f"<p><a href='{name}'>{name}</a></p>",
    ]


def render_html(doc: dict[str, Any], graph: Drawing | None = None) -> str:
    status = "ok" if doc.get("exitCode") == 0 else "bad"
    steps = doc.get("steps", [])
    timeline = timeline_svg(steps)
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>Run {html.escape(doc['run'])}"
        f"</title><style>{CSS}</style></head><body>",
        f"<h1>Migration run {html.escape(doc['run'])}</h1>",
        f"<p class='{status}'>Exit code {doc.get('exitCode')}; playbook "
        f"<code>{html.escape(str(doc.get('playbook', '')))}</code>; source "
        f"{html.escape(str(doc.get('source', {}).get('version', '?')))}, target "
        f"{html.escape(str(doc.get('target', {}).get('version', '?')))}</p>",
        "<h2>Steps</h2>",
        f"<div class='pic'>{timeline}</div>" if timeline else "",
        _html_table(("step", "status", "seconds", "summary"), steps),
    ]
    for step in steps:
        result = step.get("result") or {}
        if not result:
            continue
        parts.append(f"<h2>{html.escape(step['step'])}</h2>")
        scalars = _scalar_rows(result)
        if scalars:
            rows = [{"field": k, "value": v} for k, v in scalars]
            parts.append(_html_table(("field", "value"), rows))
        levels = levels_svg(result.get("levels") or [])
        if levels:
            parts += ["<h3>Restore levels</h3>", f"<div class='pic'>{levels}</div>"]
        for key, (title, cols) in TABLES.items():
            if result.get(key):
                parts += [f"<h3>{title}</h3>", _html_table(cols, result[key])]
    parts += _graph_html(doc, graph)
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p)


def write_report(
    directory: Path, doc: dict[str, Any], graph_dot: str | None, junit_xml: str | None
) -> list[Path]:
    """Write report.{json,md,html} (+ junit.xml, restore-graph.dot and, when Graphviz is
    installed, restore-graph.svg); return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    drawing = draw(graph_dot) if graph_dot else None
    if graph_dot and drawing is not None:
        (directory / "restore-graph.dot").write_text(graph_dot, encoding="utf-8")
        written.append(directory / "restore-graph.dot")
        doc["graph"] = "restore-graph.dot"
        if drawing.svg:
            (directory / "restore-graph.svg").write_text(drawing.svg, encoding="utf-8")
            written.append(directory / "restore-graph.svg")
            doc["graph"] = "restore-graph.svg"
    if junit_xml:
        (directory / "junit.xml").write_text(junit_xml, encoding="utf-8")
        written.append(directory / "junit.xml")
    (directory / "report.json").write_text(json.dumps(doc, indent=1, default=str), "utf-8")
    (directory / "report.md").write_text(render_markdown(doc), encoding="utf-8")
    (directory / "report.html").write_text(render_html(doc, drawing), encoding="utf-8")
    written += [directory / f"report.{ext}" for ext in ("json", "md", "html")]
    return written
