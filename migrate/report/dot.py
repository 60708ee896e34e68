"""Draw the restore graph (Graphviz DOT text) as SVG with the `dot` program, if installed.

Graphviz is an optional host tool, not a Python dependency: without it, or when it fails
or takes too long (a very large plan), the report still gets written and the page says
why the picture is missing; restore-graph.dot is then the graph.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

DOT_TIMEOUT = 60.0  # seconds; a plan of many thousand objects can take a while
INLINE_MAX = 3_000_000  # characters of SVG still inlined in report.html (else linked)
NOT_INSTALLED = (
    "Graphviz not installed: restore-graph.dot is the graph; install graphviz to see it here"
)

_SVG_START = re.compile(r"<svg[\s>]")


@dataclass(frozen=True)
class Drawing:
    svg: str | None  # dot's whole output (for restore-graph.svg); None: not drawn
    note: str  # why there is no drawing ('' when there is one)

    def inline(self) -> str | None:
        """The <svg> element alone (no XML prolog, doctype or comments), to put in HTML."""
        if not self.svg:
            return None
        found = _SVG_START.search(self.svg)
        return self.svg[found.start() :] if found else None


def draw(dot_source: str, timeout: float = DOT_TIMEOUT) -> Drawing:
    """`dot -Tsvg` of the source; never raises for a missing or failing Graphviz."""
    dot = shutil.which("dot")
    if not dot:
        return Drawing(None, NOT_INSTALLED)
    try:
        out = subprocess.run(
            [dot, "-Tsvg"],
            input=dot_source,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return Drawing(None, f"Graphviz took over {timeout:g} s: restore-graph.dot is the graph")
    except OSError as exc:
        return Drawing(None, f"Graphviz could not run ({exc}): restore-graph.dot is the graph")
    if out.returncode != 0 or not _SVG_START.search(out.stdout):
        why = (out.stderr.strip().splitlines() or [f"exit {out.returncode}"])[0][:200]
        return Drawing(None, f"Graphviz failed ({why}): restore-graph.dot is the graph")
    return Drawing(out.stdout, "")
