"""The report as people read it: rows for the CLI's table, and Markdown or HTML a person
can paste into a change ticket (header with both clusters' versions, counts by
severity, one table per check).  JSON is Report.as_dict(), written by the CLI.
"""

from __future__ import annotations

import html
from typing import Any

from migrate.preflight.findings import CHECKS, SEVERITIES, Finding, Report

SHOWN_OBJECTS = 3  # objects listed per finding in table/Markdown/HTML (JSON has all)
TITLE = "kube-migrate preflight report"
PLURALS = {"error": "errors", "warning": "warnings", "info": "info"}


def objects_text(f: Finding, limit: int = SHOWN_OBJECTS) -> str:
    shown = ", ".join(f.objects[:limit])
    more = len(f.objects) - limit
    return f"{shown} (+{more} more)" if more > 0 else shown


def rows(report: Report) -> list[dict[str, Any]]:
    """One row per finding, for `-o table`."""
    return [
        {
            "severity": f.severity,
            "check": f.check,
            "objects": objects_text(f, 2) or "-",
            "message": f.message,
            "fix": f.fix or "-",
        }
        for f in report.sorted_findings()
    ]


def _side(facts: dict[str, Any]) -> str:
    if facts.get("origin") == "backup":
        by = f", written by {facts['backupWrittenBy']}" if facts.get("backupWrittenBy") else ""
        return f"backup {facts.get('name')}{by}"
    return (
        f"{facts.get('name')} ({facts.get('server')})"
        if facts.get("server")
        else str(facts.get("name"))
    )


def summary_lines(report: Report) -> list[tuple[str, str]]:
    """(label, value) pairs of the header, shared by every format."""
    counts = report.counts()
    s, t = report.source, report.target
    skew = t.get("minorSkew")
    mappings = ", ".join(
        f"{a}->{b}"
        for m in ("namespaceMappings", "storageClassMappings")
        for a, b in (report.settings.get(m) or {}).items()
    )
    return [
        ("Source", f"{_side(s)}, Kubernetes {s.get('version') or 'unknown'}"),
        ("Target", f"{_side({**t, 'origin': 'cluster'})}, Kubernetes {t.get('version')}"),
        ("Minor version skew", "unknown" if skew is None else f"{skew:+d}"),
        (
            "Objects",
            f"{report.settings.get('restored')} to restore, "
            f"{report.settings.get('skipped')} skipped by restore's rules",
        ),
        ("Existing-resource policy", str(report.settings.get("existingResourcePolicy"))),
        ("Mappings", mappings or "none"),
        ("Findings", ", ".join(f"{counts[sev]} {PLURALS[sev]}" for sev in SEVERITIES)),
    ]


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ") or " "


def markdown(report: Report) -> str:
    lines = [f"# {TITLE}", "", "| | |", "|---|---|"]
    lines += [f"| **{k}** | {_md_cell(v)} |" for k, v in summary_lines(report)]
    counts = report.counts()
    lines += ["", "| Severity | Count |", "|---|---:|"]
    lines += [f"| {sev} | {counts[sev]} |" for sev in SEVERITIES]
    groups = report.by_check()
    if not groups:
        lines += ["", "No findings: nothing blocks this migration."]
    for check, findings in groups.items():
        lines += ["", f"## {CHECKS.get(check, check)} (`{check}`)", ""]
        lines += ["| Severity | Objects | Finding | How to fix |", "|---|---|---|---|"]
        lines += [
            f"| {f.severity} | {_md_cell(objects_text(f))} | {_md_cell(f.message)} | "
            f"{_md_cell(f.fix)} |"
            for f in findings
        ]
    return "\n".join(lines) + "\n"


STYLE = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
    "th,td{border:1px solid #999;padding:4px 8px;text-align:left;vertical-align:top}"
    ".error{background:#fdd}.warning{background:#ffd}.info{background:#eef}"
)


def html_report(report: Report) -> str:
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        f'<html lang="en"><head><meta charset="utf-8"><title>{e(TITLE)}</title>',
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{e(TITLE)}</h1>",
        '<table class="summary">',
    ]
    out += [f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in summary_lines(report)]
    out.append("</table>")
    counts = report.counts()
    out.append('<table class="counts"><tr><th>Severity</th><th>Count</th></tr>')
    out += [f'<tr class="{s}"><td>{s}</td><td>{counts[s]}</td></tr>' for s in SEVERITIES]
    out.append("</table>")
    groups = report.by_check()
    if not groups:
        out.append("<p>No findings: nothing blocks this migration.</p>")
    for check, findings in groups.items():
        out.append(f"<h2>{e(CHECKS.get(check, check))} (<code>{e(check)}</code>)</h2>")
        out.append(
            '<table class="findings"><tr><th>Severity</th><th>Objects</th><th>Finding</th>'
            "<th>How to fix</th></tr>"
        )
        for f in findings:
            objs = "<br>".join(e(o) for o in f.objects) or "&nbsp;"
            out.append(
                f'<tr class="{f.severity}"><td>{f.severity}</td><td>{objs}</td>'
                f"<td>{e(f.message)}</td><td>{e(f.fix)}</td></tr>"
            )
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
