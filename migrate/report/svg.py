"""The report's pictures as inline SVG text: the run's timeline and the restore levels.

report.html is one self-contained file (read offline, attached to tickets), so the pictures
are drawn here as plain SVG markup: no scripts, no fonts or libraries fetched.  All text is
escaped, and the output is well-formed XML (tests parse it).  The layout arithmetic of the
timeline lives in timeline.py.
"""

from __future__ import annotations

import html
import math
import re
from typing import Any

from migrate.report.timeline import Timeline, lay_out

STATUS_FILL = {
    "succeeded": "#3b8f4a",
    "failed": "#c8393b",
    "skipped": "#a6a6a6",
    "pending": "#ffffff",
    "running": "#e0a526",
}
PHASE_FILL = {
    "quiesce": "#8e6cc0",
    "backup": "#3d7fc1",
    "sync": "#41a3b3",
    "restore": "#e08a2c",
    "verifyData": "#b5657d",
    "start": "#5b9e3c",
    "verify": "#6f7fa8",
    "hooks": "#9a8a5a",
}
OTHER_FILL = "#7b8a9a"
FONT = "font-family='system-ui,sans-serif'"
SVG_NS = "http://www.w3.org/2000/svg"

# timeline geometry (px)
LABEL_W, PLOT_W, NOTE_W = 170, 760, 110
STEP_H, SUB_H, GAP = 20, 14, 6
LEGEND_H, BAND_LABEL_H, AXIS_H = 22, 18, 34

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def esc(text: Any) -> str:
    """Text for an SVG/HTML element or attribute (also without characters XML forbids)."""
    return html.escape(_NOT_XML.sub("\ufffd", str(text)), quote=True)


def _fill(colour: str) -> str:
    kind, _, name = colour.partition(":")
    if kind == "status":
        return STATUS_FILL.get(name, OTHER_FILL)
    return PHASE_FILL.get(name, OTHER_FILL)


def _svg_open(width: float, height: float, label: str, cls: str) -> str:
    return (
        f"<svg xmlns='{SVG_NS}' class='{cls}' width='{width:.0f}' height='{height:.0f}' "
        f"viewBox='0 0 {width:.0f} {height:.0f}' role='img' aria-label='{esc(label)}' {FONT} "
        "font-size='12'>"
    )


def _ticks(total: float) -> tuple[float, list[float]]:
    """A round step (1, 2 or 5 x 10^n) giving at most ~8 ticks, and the ticks to past total."""
    raw = total / 8
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    count = math.ceil(total / step - 1e-9)
    return step, [round(i * step, 6) for i in range(count + 1)]


def _legend(colours: list[str]) -> list[str]:
    out, x = [], 0.0
    for colour in colours:
        name = colour.partition(":")[2]
        dash = " stroke-dasharray='3,2'" if name == "pending" else ""
        out.append(
            f"<rect x='{x:.0f}' y='5' width='11' height='11' fill='{_fill(colour)}' "
            f"stroke='#555' stroke-width='0.6'{dash}/>"
            f"<text x='{x + 15:.0f}' y='15'>{esc(name)}</text>"
        )
        x += 15 + 7 * len(name) + 14
    return ["<g class='legend'>", *out, "</g>"]


def timeline_svg(steps: list[dict[str, Any]]) -> str:
    """Every step as a bar on one axis in seconds, with the cut-over's phases, the pre-copy
    passes and the downtime window under their step; '' without steps."""
    if not steps:
        return ""
    tl: Timeline = lay_out(steps)
    step, ticks = _ticks(tl.total)
    scale = PLOT_W / ticks[-1]

    def x(t: float) -> float:
        return LABEL_W + t * scale

    top = LEGEND_H + BAND_LABEL_H
    heights = [STEP_H if r.depth == 0 else SUB_H for r in tl.rows]
    plot_h = sum(heights) + GAP * len(heights) + GAP
    width, height = LABEL_W + PLOT_W + NOTE_W, top + plot_h + AXIS_H
    out = [_svg_open(width, height, "Timeline of the run's steps", "timeline")]
    used = sorted({s.colour for r in tl.rows for s in r.segments}, key=_legend_order)
    out += _legend(used)
    grid = ["<g class='axis' stroke='#ddd' fill='#555' font-size='11'>"]
    for t in ticks:
        grid.append(
            f"<line x1='{x(t):.1f}' y1='{top}' x2='{x(t):.1f}' y2='{top + plot_h + 4}'/>"
            f"<text x='{x(t):.1f}' y='{top + plot_h + 17}' text-anchor='middle' "
            f"stroke='none'>{esc(f'{t:g}')}</text>"
        )
    grid.append(
        f"<text x='{x(ticks[-1]):.1f}' y='{top + plot_h + 31}' text-anchor='end' "
        f"stroke='none'>seconds (grid every {esc(f'{step:g}')} s)</text></g>"
    )
    out += grid
    for band in tl.bands:
        x0, x1 = x(band.start), max(x(band.end), x(band.start) + 1)
        out.append(
            f"<g class='downtime'><rect class='downtime-band' x='{x0:.1f}' y='{top}' "
            f"width='{x1 - x0:.1f}' height='{plot_h}' fill='#c8393b' fill-opacity='0.13' "
            f"stroke='#c8393b' stroke-dasharray='4,3'><title>{esc(band.label)}</title></rect>"
            f"<text x='{x0:.1f}' y='{top - 5}' fill='#a31515' font-weight='bold'>"
            f"{esc(band.label)}</text></g>"
        )
    y = top + GAP
    for row, h in zip(tl.rows, heights, strict=True):
        out.append(_row(row.label, row.depth, row.note, row.step, y, h))
        for seg in row.segments:
            x0 = x(seg.start)
            w = max(x(seg.end) - x0, 2.0)
            dash = " stroke-dasharray='3,2'" if seg.colour == "status:pending" else ""
            kind = "bar step-bar" if row.depth == 0 else "bar sub-bar"
            out.append(
                f"<rect class='{kind}' data-colour='{esc(seg.colour)}' x='{x0:.1f}' y='{y}' "
                f"width='{w:.1f}' height='{h}' rx='2' fill='{_fill(seg.colour)}' "
                f"stroke='#444' stroke-width='0.5'{dash}><title>{esc(seg.title)}</title></rect>"
            )
        if row.segments:  # the note right of the row's last bar
            end = max(max(x(s.end), x(s.start) + 2.0) for s in row.segments)
            out.append(
                f"<text x='{end + 5:.1f}' y='{y + h - 4}' fill='#333' "
                f"font-size='{11 if row.depth else 12}'>{esc(row.note)}</text>"
            )
        y += h + GAP
    out.append("</svg>")
    return "".join(out)


def _legend_order(colour: str) -> tuple[int, int, str]:
    kind, _, name = colour.partition(":")
    order = list(STATUS_FILL if kind == "status" else PHASE_FILL)
    return (kind != "status", order.index(name) if name in order else len(order), name)


def _row(label: str, depth: int, note: str, step: str, y: float, h: float) -> str:
    indent, size, colour = (8, 12, "#111") if depth == 0 else (24, 11, "#555")
    return (
        f"<text class='{'step-label' if depth == 0 else 'sub-label'}' data-step='{esc(step)}' "
        f"x='{indent}' y='{y + h - 4}' font-size='{size}' fill='{colour}'>"
        f"{esc(_clip(label, (LABEL_W - indent) // 7))}<title>{esc(label)}: {esc(note)}</title>"
        "</text>"
    )


def _clip(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: max(chars - 1, 1)] + "\u2026"


def _wrap(text: str, chars: int, lines: int) -> list[str]:
    """At most `lines` lines of about `chars` characters, broken after commas or spaces;
    the last one clipped."""
    out: list[str] = []
    rest = text.strip()
    while rest and len(out) < lines - 1 and len(rest) > chars:
        cut = rest.rfind(" ", 0, chars + 1)
        cut = cut if cut > 0 else chars
        out.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return [*out, _clip(rest, chars)] if rest else out


# restore levels geometry (px)
BOX_W, BOX_H, ARROW_W, PAD = 150, 74, 36, 10


def levels_svg(levels: list[dict[str, Any]]) -> str:
    """One box per restore level (its object count and kinds), left to right, with an arrow
    from each level to the next; '' without levels."""
    rows = [lv for lv in levels if isinstance(lv, dict)]
    if not rows:
        return ""
    width = PAD * 2 + len(rows) * BOX_W + (len(rows) - 1) * ARROW_W
    height = PAD * 2 + BOX_H
    out = [
        _svg_open(width, height, "Restore levels", "levels"),
        "<defs><marker id='km-arrow' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='7' "
        "markerHeight='7' orient='auto-start-reverse'><path d='M0,0 L10,5 L0,10 z' "
        "fill='#555'/></marker></defs>",
    ]
    for i, lv in enumerate(rows):
        x0 = PAD + i * (BOX_W + ARROW_W)
        level, objects, kinds = lv.get("level", i), lv.get("objects", "?"), lv.get("kinds", "")
        out.append(
            f"<g class='level' data-level='{esc(level)}'>"
            f"<rect x='{x0}' y='{PAD}' width='{BOX_W}' height='{BOX_H}' rx='6' fill='#eef3fa' "
            f"stroke='#3d7fc1'><title>level {esc(level)}: {esc(objects)} objects; "
            f"{esc(kinds)}</title></rect>"
            f"<text x='{x0 + 10}' y='{PAD + 18}' font-weight='bold'>level {esc(level)}</text>"
            f"<text x='{x0 + 10}' y='{PAD + 35}'>{esc(objects)} objects</text>"
            + "".join(
                f"<text x='{x0 + 10}' y='{PAD + 51 + 12 * n}' font-size='10' fill='#555'>"
                f"{esc(line)}</text>"
                for n, line in enumerate(_wrap(str(kinds), (BOX_W - 16) // 6, 2))
            )
            + "</g>"
        )
        if i:
            ax = x0 - ARROW_W
            out.append(
                f"<line class='level-arrow' x1='{ax + 3}' y1='{PAD + BOX_H / 2}' "
                f"x2='{x0 - 3}' y2='{PAD + BOX_H / 2}' stroke='#555' stroke-width='1.5' "
                "marker-end='url(#km-arrow)'/>"
            )
    out.append("</svg>")
    return "".join(out)
