"""report.html's pictures: the run timeline, the restore levels and the restore graph.

No cluster: a run document is built by hand and written with the report writer.  The SVG
is parsed as XML, its geometry checked, and the page opened in a real headless Chromium
(Debian's `chromium`, which hack/host-deps.sh installs; the test fails without it).
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from migrate.report.dot import NOT_INSTALLED
from migrate.report.svg import STATUS_FILL
from migrate.report.write import write_report

NS = {"s": "http://www.w3.org/2000/svg"}
STEPS = ["backup", "waitForSync", "restore", "precopy", "cutover", "verify", "scale[6]"]
CUTOVER = [
    ("quiesce", 0.0, 1.2),
    ("backup", 1.2, 2.0),
    ("sync", 2.0, 2.5),
    ("restore", 2.5, 4.1),
    ("verifyData", 4.1, 5.0),
    ("start", 5.0, 7.3),
    ("verify", 7.3, 10.0),
    ("hooks", 10.0, 12.3),
]
GRAPH = """digraph restore {
  rankdir=LR;
  node [shape=box, fontsize=10];
  n0 [label="Namespace\\nshop"];
  n1 [label="ConfigMap x3\\nshop/*"];
  n2 [label="Deployment\\nshop/web"];
  n0 -> n1;
  n1 -> n2;
}"""


def _step(
    name: str, status: str, started: str | None, seconds: Any, **result: Any
) -> dict[str, Any]:
    if seconds != "":
        result["seconds"] = seconds
    return {
        "step": name,
        "status": status,
        "seconds": seconds,
        "started": started and f"2030-01-02T10:{started}Z",
        "finished": None,
        "summary": str(result.get("error", "")),
        "result": result,
    }


def _document() -> dict[str, Any]:
    levels = [
        {"level": 0, "objects": 2, "kinds": "Namespace, CustomResourceDefinition"},
        {"level": 1, "objects": 12, "kinds": "ConfigMap, Secret, Foo<Bar>"},
        {"level": 2, "objects": 5, "kinds": "Deployment, Service"},
    ]
    passes = [
        {"backup": "p1", "phases": {"backup": 3.0, "sync": 1.0, "restore": 2.0}},
        {"backup": "p2", "phases": {"backup": 1.5, "sync": 0.5, "restore": 1.0}},
    ]
    timeline = [{"phase": p, "start": a, "end": b} for p, a, b in CUTOVER]
    return {
        "run": "shop-<&>-'run'",
        "playbook": "playbooks/live.yaml",
        "started": "2030-01-02T10:00:00Z",
        "finished": "2030-01-02T10:00:40Z",
        "exitCode": 1,
        "source": {"version": "v1.30.4"},
        "target": {"version": "v1.37.0"},
        "steps": [
            _step("backup", "succeeded", "00:00", 4.2, objects=40),
            _step("waitForSync", "succeeded", "00:05", 1.5),
            _step("restore", "succeeded", "00:07", 6.8, created=19, failed=0, levels=levels),
            _step("precopy", "succeeded", "00:14", 9.0, passes=passes),
            _step(
                "cutover",
                "succeeded",
                "00:24",
                12.4,
                timeline=timeline,
                downtime={"start": 0.0, "end": 7.3},
                downtimeSeconds=7.3,
            ),
            _step("verify", "failed", "00:37", 2.1, error="2 objects drifted", drifted=2),
            _step("scale[6]", "pending", None, ""),
        ],
    }


def _svgs(page: str) -> dict[str, ET.Element]:
    """Every <svg> of the page parsed as XML (fails if one is not well-formed), by class."""
    found = re.findall(r"<svg\b.*?</svg>", page, flags=re.DOTALL)
    parsed = [ET.fromstring(s) for s in found]
    return {el.get("class", "graphviz"): el for el in parsed}


def _bars(svg: ET.Element, kind: str) -> list[ET.Element]:
    return [r for r in svg.iterfind(".//s:rect", NS) if r.get("class") == f"bar {kind}"]


def _x(el: ET.Element) -> tuple[float, float]:
    return float(el.get("x", "nan")), float(el.get("width", "nan"))


def _write(tmp_path: Path) -> str:
    write_report(tmp_path, _document(), GRAPH, None)
    return (tmp_path / "report.html").read_text(encoding="utf-8")


def test_timeline_levels_and_graph_are_wellformed_svg(tmp_path: Path) -> None:
    page = _write(tmp_path)
    assert "<table>" in page and "<h2>verify</h2>" in page  # the tables stay
    assert "shop-&lt;&amp;&gt;-&#x27;run&#x27;" in page and "shop-<&>" not in page
    svgs = _svgs(page)
    timeline, levels = svgs["timeline"], svgs["levels"]

    bars = _bars(timeline, "step-bar")
    assert len(bars) == len(STEPS)
    labels = [t.get("data-step") for t in timeline.iterfind(".//s:text", NS)]
    assert [t for t in labels if t] and all(s in labels for s in STEPS)
    fills = [b.get("fill") for b in bars]
    assert fills[STEPS.index("verify")] == STATUS_FILL["failed"]
    assert fills[STEPS.index("backup")] == STATUS_FILL["succeeded"]
    assert bars[-1].get("stroke-dasharray")  # the pending step: a dashed outline
    # placed by `started`, as wide as `seconds`
    (x_backup, w_backup), (x_restore, w_restore) = _x(bars[0]), _x(bars[2])
    scale = w_backup / 4.2
    assert x_restore - x_backup == pytest.approx(7 * scale, abs=0.2)
    assert w_restore == pytest.approx(6.8 * scale, abs=0.2)
    x_pending = _x(bars[-1])[0]  # no time: after the last step (verify ends at 39.1 s)
    assert x_pending - x_backup == pytest.approx(39.1 * scale, abs=0.2)

    subs = _bars(timeline, "sub-bar")
    assert len(subs) == len(CUTOVER) + 2 * 3  # the cut-over's phases, 2 passes x 3 phases
    x_cut, w_cut = _x(bars[STEPS.index("cutover")])
    band = next(r for r in timeline.iterfind(".//s:rect", NS) if r.get("class") == "downtime-band")
    x_band, w_band = _x(band)
    assert x_band == pytest.approx(x_cut, abs=0.2)
    assert w_band == pytest.approx(7.3 * scale, abs=0.2) and w_cut == pytest.approx(
        12.4 * scale, abs=0.2
    )
    texts = ["".join(t.itertext()) for t in timeline.iterfind(".//s:text", NS)]
    assert any(t.startswith("downtime 7.3 s") for t in texts)
    assert any(t.startswith("seconds") for t in texts)  # the axis

    boxes = [g for g in levels.iterfind(".//s:g", NS) if g.get("class") == "level"]
    assert [b.get("data-level") for b in boxes] == ["0", "1", "2"]
    assert len(levels.findall(".//s:line", NS)) == 2  # level 0 -> 1 -> 2
    level_texts = ["".join(t.itertext()) for t in levels.iterfind(".//s:text", NS)]
    assert "12 objects" in level_texts and "Foo<Bar>" in level_texts  # kinds: 2 lines

    assert (tmp_path / "restore-graph.dot").read_text() == GRAPH
    if shutil.which("dot"):
        assert "graphviz" in svgs and "<?xml" not in page and "<!DOCTYPE" not in page
        assert (tmp_path / "restore-graph.svg").exists()
        assert "Deployment" in "".join(svgs["graphviz"].itertext())
    else:
        assert NOT_INSTALLED in page


def test_without_graphviz_the_page_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    page = _write(tmp_path)
    assert NOT_INSTALLED in page
    assert "href='restore-graph.dot'" in page and not (tmp_path / "restore-graph.svg").exists()
    assert set(_svgs(page)) == {"timeline", "levels"}


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("chromium")
    assert exe, "chromium is missing: hack/host-deps.sh installs it (apt-get install chromium)"
    return subprocess.run(
        [
            exe,
            "--headless=new",
            "--no-sandbox",  # root in CI
            "--disable-gpu",
            "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _png_pixels(path: Path) -> set[tuple[int, int, int]]:
    """The RGB colours of an 8-bit RGB(A) PNG (stdlib only: the test adds no dependency)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        header, idat = (
            (body, idat) if kind == b"IHDR" else (header, idat + body * (kind == b"IDAT"))
        )
        pos += 12 + length
    width, height, depth, colour_type = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour_type in (2, 6), (depth, colour_type)
    bpp = 3 if colour_type == 2 else 4
    raw, stride, prev = zlib.decompress(idat), width * bpp, bytearray(width * bpp)
    colours: set[tuple[int, int, int]] = set()
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        colours.update(zip(line[0::bpp], line[1::bpp], line[2::bpp], strict=False))
        prev = line
    return colours


def test_chromium_renders_the_pictures(tmp_path: Path) -> None:
    page_path = tmp_path / "report.html"
    _write(tmp_path)
    dom = _chromium(tmp_path, "--dump-dom", page_path.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<svg") >= 2 and "downtime 7.3 s" in dom.stdout
    assert 'class="level"' in dom.stdout or "class='level'" in dom.stdout

    png = tmp_path / "out.png"
    shot = _chromium(tmp_path, f"--screenshot={png}", "--window-size=1400,1000", page_path.as_uri())
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert png.exists() and png.stat().st_size > 5 * 1024
    colours = _png_pixels(png)
    for status in ("succeeded", "failed"):  # the bars were painted, not only the tables
        rgb = tuple(int(STATUS_FILL[status][i : i + 2], 16) for i in (1, 3, 5))
        assert rgb in colours, status
