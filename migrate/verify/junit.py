"""`verify --junit FILE`: the report as JUnit XML, one test case per object and one test
suite per kind, so a CI system shows a migration like a test run (drift = failures).

The common denominator of Jenkins, GitLab and GitHub reporters: <testsuites> with
tests/failures/errors/time, <testsuite name>, <testcase classname name time>, and a
<failure type message> whose text lists the changed fields.  Written with ElementTree,
so every value is escaped.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

from migrate.errors import UsageError
from migrate.verify.render import object_text
from migrate.verify.results import ObjectResult, VerifyReport

SUITE = "kube-migrate verify"


def _case(suite: ET.Element, r: ObjectResult) -> None:
    classname = f"{r.group or 'core'}.{r.kind}"
    case = ET.SubElement(suite, "testcase", classname=classname, name=r.ref(), time="0")
    if r.status == "equal":
        return
    if r.status == "changed":
        n = len(r.changes)
        message = f"changed: {n} field{'s differ' if n != 1 else ' differs'}"
    else:
        message = f"{r.status} on the target"
    failure = ET.SubElement(case, "failure", type=r.status, message=message)
    failure.text = object_text(r)


def to_xml(report: VerifyReport) -> bytes:
    by_kind: dict[str, list[ObjectResult]] = defaultdict(list)
    for r in report.results:
        by_kind[f"{r.kind} ({r.group or 'core'})"].append(r)
    failures = len(report.drifted)
    root = ET.Element(
        "testsuites",
        name=SUITE,
        tests=str(len(report.results)),
        failures=str(failures),
        errors="0",
        time=f"{report.seconds:.3f}",
    )
    for kind in sorted(by_kind):
        results = sorted(by_kind[kind], key=lambda r: r.ref())
        suite = ET.SubElement(
            root,
            "testsuite",
            name=f"{SUITE}: {kind}",
            tests=str(len(results)),
            failures=str(sum(r.status != "equal" for r in results)),
            errors="0",
            skipped="0",
            time="0",
        )
        for r in results:
            _case(suite, r)
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"


def write_junit(report: VerifyReport, path: str) -> None:
    try:
        Path(path).write_bytes(to_xml(report))
    except OSError as exc:
        raise UsageError(f"cannot write --junit {path}: {exc.strerror}") from exc
