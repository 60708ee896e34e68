"""Place a run's steps, and the phases inside them, on one time axis (seconds from the start).

The report draws the run as a timeline (svg.py); this module only does the arithmetic, so
the geometry can be checked without parsing pictures.  A step is placed by its journaled
`started` time (second granularity) relative to the run's first start and is as wide as
its measured `seconds`; a step without a usable time follows the previous one.  Inside a
step: the cut-over's phases (`timeline`, seconds from the step's start) and its downtime
window, and the pre-copy passes (each pass's `phases`, one after the other).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # StepState.started / .finished


@dataclass(frozen=True)
class Segment:
    start: float  # seconds on the run's axis
    end: float
    colour: str  # "status:failed" or "phase:backup": what svg.py fills it with
    title: str  # the tooltip


@dataclass
class Row:
    label: str
    depth: int  # 0: a step; 1: a phase or pass inside the step above it
    note: str  # right of the bar: "12.3 s", "pending"
    segments: list[Segment] = field(default_factory=list)
    step: str = ""  # the step's label, on its own row and on the rows inside it


@dataclass(frozen=True)
class Band:
    start: float
    end: float
    label: str


@dataclass
class Timeline:
    rows: list[Row]
    bands: list[Band]
    total: float  # the last second anything reaches (> 0)


def _when(value: Any) -> datetime | None:
    try:
        return datetime.strptime(str(value), TIME_FORMAT)
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if out >= 0 else None


def seconds_text(value: float) -> str:
    """12.3 / 0.35 / 1234, for labels."""
    if value < 10:
        return f"{value:.2f}".rstrip("0").rstrip(".") or "0"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _cutover_rows(step: str, origin: float, result: dict[str, Any]) -> list[Row]:
    rows = []
    for span in result.get("timeline") or []:
        if not isinstance(span, dict):
            continue
        start, end = _number(span.get("start")), _number(span.get("end"))
        if start is None or end is None:
            continue
        phase = str(span.get("phase", "?"))
        text = f"{seconds_text(max(end - start, 0))} s"
        seg = Segment(origin + start, origin + max(end, start), f"phase:{phase}",
                      f"{step} / {phase}: {text}")  # fmt: skip
        rows.append(Row(phase, 1, text, [seg], step))
    return rows


def _downtime(origin: float, result: dict[str, Any]) -> Band | None:
    window = result.get("downtime")
    if not isinstance(window, dict):
        return None
    start, end = _number(window.get("start")), _number(window.get("end"))
    if start is None or end is None:
        return None
    seconds = _number(result.get("downtimeSeconds"))
    seconds = max(end - start, 0) if seconds is None else seconds
    return Band(origin + start, origin + max(end, start), f"downtime {seconds_text(seconds)} s")


def _pass_rows(step: str, origin: float, result: dict[str, Any]) -> list[Row]:
    rows, t = [], origin
    for n, one in enumerate(result.get("passes") or [], 1):
        phases = one.get("phases") if isinstance(one, dict) else None
        if not isinstance(phases, dict):
            continue
        row = Row(f"pass {n}", 1, "", [], step)
        for phase, value in phases.items():
            seconds = _number(value) or 0.0
            title = f"{step} / pass {n} / {phase}: {seconds_text(seconds)} s"
            row.segments.append(Segment(t, t + seconds, f"phase:{phase}", title))
            t += seconds
        row.note = f"{seconds_text(sum(s.end - s.start for s in row.segments))} s"
        rows.append(row)
    return rows


def lay_out(steps: list[dict[str, Any]]) -> Timeline:
    """The rows (a step, then what happened inside it) and bands (downtime) of a run."""
    starts = [t for t in (_when(s.get("started")) for s in steps) if t is not None]
    first = min(starts) if starts else None
    rows: list[Row] = []
    bands: list[Band] = []
    cursor = 0.0  # where a step without a start time goes: after everything so far
    for step in steps:
        label, status = str(step.get("step", "?")), str(step.get("status", "pending"))
        raw = step.get("result")
        result: dict[str, Any] = raw if isinstance(raw, dict) else {}
        started, finished = _when(step.get("started")), _when(step.get("finished"))
        seconds = _number(step.get("seconds"))
        if seconds is None and started and finished:
            seconds = max((finished - started).total_seconds(), 0.0)
        origin = (started - first).total_seconds() if started and first else cursor
        width = seconds or 0.0
        note = f"{seconds_text(seconds)} s" if seconds is not None else status
        if status not in ("succeeded", "failed") and seconds is not None:
            note = f"{status}, {note}"
        title = f"{label}: {status}" + (f", {seconds_text(seconds)} s" if seconds else "")
        row = Row(label, 0, note, [Segment(origin, origin + width, f"status:{status}", title)])
        row.step = label
        rows.append(row)
        inner = _cutover_rows(label, origin, result) + _pass_rows(label, origin, result)
        rows += inner
        band = _downtime(origin, result)
        if band:
            bands.append(band)
        ends = [origin + width, cursor] + [s.end for r in inner for s in r.segments]
        cursor = max(ends + ([band.end] if band else []))
    return Timeline(rows, bands, cursor if cursor > 0 else 1.0)
