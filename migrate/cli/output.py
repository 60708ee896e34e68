"""Print command results to stdout as a table, JSON or YAML (`-o table|json|yaml`).

Only data goes to stdout, so `-o json | jq` always works; tables are plain aligned
columns like kubectl's, never wrapped or coloured, so they grep and diff cleanly.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import click

FORMATS = ("table", "json", "yaml")
F = TypeVar("F", bound=Callable[..., Any])


def output_option(*formats: str) -> Callable[[F], F]:
    """The `-o/--output` option, limited to the given formats (table first = default)."""
    choices = formats or FORMATS
    return click.option(
        "-o",
        "--output",
        "output",
        type=click.Choice(choices),
        default=choices[0],
        show_default=True,
        help="Output format.",
    )


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """kubectl-style columns: upper-case headers, left-aligned, three spaces apart."""
    headers = [c.upper() for c in columns]
    cells = [["" if r.get(c) is None else str(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    lines = ["   ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += [
        "   ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def dumps(data: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2, sort_keys=False, default=str)
    import yaml  # only for -o yaml: ~0.02 s of start-up a table or JSON does not need

    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip()


def emit(data: Any, fmt: str, columns: Sequence[str] | None = None) -> None:
    """Write `data` to stdout: a list of rows (or one row) as a table, else JSON/YAML."""
    if fmt == "table":
        rows = data if isinstance(data, list) else [data]
        cols = list(columns or (rows[0].keys() if rows else []))
        text = table(rows, cols) if rows else "No resources found."
    else:
        text = dumps(data, fmt)
    sys.stdout.write(text + "\n")


def emit_with_rows(head: dict[str, Any], fmt: str, key: str, rows: Iterable[Any]) -> None:
    """emit(head | {key: list(rows)}, fmt) for json or yaml, byte for byte, written row
    by row: a restore of 100k objects never holds its whole document (~200 MB) at once."""
    write = sys.stdout.write
    first = True
    if fmt == "json":
        opening = dumps(head, fmt)[: -len("\n}")] + "," if head else "{"
        write(f"{opening}\n  {json.dumps(key)}: [")
        for row in rows:
            write(("\n" if first else ",\n") + textwrap.indent(dumps(row, fmt), "    "))
            first = False
        write("]\n}\n" if first else "\n  ]\n}\n")
        return
    write((dumps(head, fmt) + "\n" if head else "") + f"{key}:")
    for row in rows:
        write(("\n" if first else "") + dumps([row], fmt) + "\n")
        first = False
    write(" []\n" if first else "")
