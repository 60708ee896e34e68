"""Parse and print the units users type: Go-style durations ("720h0m0s", "10m", "2s"),
as Velero and kubectl accept them, so `--ttl` and `--timeout` read the same everywhere;
and resource quantities ("250m", "1.5Gi") as the API writes them."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from migrate.errors import UsageError

_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def parse_duration(text: str, what: str = "duration") -> timedelta:
    """ "1h30m", "720h0m0s", "45s", "1.5h" -> timedelta.  A bare number is seconds."""
    raw = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", raw):
        return timedelta(seconds=float(raw))
    pos, total = 0, 0.0
    for m in _PART.finditer(raw):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _SECONDS[m.group(2)]
        pos = m.end()
    if not raw or pos != len(raw):
        raise UsageError(
            f"invalid {what} {text!r}",
            hint="use a Go-style duration such as 720h0m0s, 10m, 90s or 1h30m",
        )
    return timedelta(seconds=total)


def format_duration(td: timedelta) -> str:
    """timedelta -> Go's time.Duration.String() form, e.g. 720h0m0s (Velero's TTL format)."""
    total = int(td.total_seconds())
    if total == 0:
        return "0s"
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h{m}m{s}s"
    if m:
        return f"{m}m{s}s"
    return f"{s}s"


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return f"{n:.1f}GiB"


_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")
SUFFIXES: dict[str, float] = {
    "": 1, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
    "P": 1e15, "E": 1e18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50,
    "Ei": 2**60,
}  # fmt: skip


def quantity(text: Any) -> float:
    """A Kubernetes resource quantity ("250m", "1.5Gi", "2e3") as a number; 0 if bad."""
    m = _QUANTITY.match(str(text).strip())
    if not m or m.group(2) not in SUFFIXES:
        return 0.0
    return float(m.group(1)) * SUFFIXES[m.group(2)]
