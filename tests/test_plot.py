"""pyfw.plot: the SVG of training curves and decision regions is well-formed and holds what it shows.

Each picture is parsed with ``xml.etree.ElementTree`` and its elements are
found by the ``id`` attributes the module documents. An optional test renders
both pictures to PNG with ``rsvg-convert`` or Chromium (skipped when neither is
on PATH) and decodes the PNG with ``zlib`` to check that it is not blank.
"""

from __future__ import annotations

import math
import os
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, List, Optional

import pytest

from pyfw import plot, task

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    """The root of ``svg``, checked to be an SVG 1.1 document with a viewBox and a white background."""
    root = ET.fromstring(svg)
    assert root.tag == SVG + "svg"
    assert root.get("version") == "1.1"
    w, h = float(root.get("width")), float(root.get("height"))
    assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"
    assert "sans-serif" in root.get("font-family")
    bg = by_id(root, "background")
    assert bg.tag == SVG + "rect" and bg.get("fill").upper() == "#FFFFFF"
    assert (float(bg.get("width")), float(bg.get("height"))) == (w, h)
    return root


def by_id(root: ET.Element, ident: str) -> ET.Element:
    """The one element of ``root`` whose ``id`` is ``ident``."""
    found = [e for e in root.iter() if e.get("id") == ident]
    assert len(found) == 1, f"expected one element with id {ident!r}, found {len(found)}"
    return found[0]


def has_id(root: ET.Element, ident: str) -> bool:
    """Whether some element of ``root`` has the ``id`` ``ident``."""
    return any(e.get("id") == ident for e in root.iter())


def texts(el: ET.Element) -> List[str]:
    """The strings of every ``<text>`` under ``el``, in document order."""
    return ["".join(t.itertext()) for t in el.iter(SVG + "text")]


def legend_labels(root: ET.Element) -> List[str]:
    """The texts of the legend."""
    return texts(by_id(root, "legend"))


def path_points(group: ET.Element) -> List[List[tuple]]:
    """The subpaths of the one ``<path>`` in ``group``, as lists of (x, y)."""
    paths = list(group.iter(SVG + "path"))
    if not paths:
        return []
    assert len(paths) == 1
    subpaths = []
    for part in paths[0].get("d").split("M")[1:]:
        pts = []
        for xy in part.split("L"):
            x, y = xy.split()
            pts.append((float(x), float(y)))
        subpaths.append(pts)
    return subpaths


def seed_run(n: int = 20) -> dict:
    """A run dict shaped like ``task.train``'s JSON, with a decreasing loss."""
    losses = [0.25 * 0.9 ** i + 0.01 for i in range(n)]
    return {"backend": "py", "activation": "relu", "lr": 0.1, "batch_size": 10, "seed": 0, "epochs": n,
            "losses": losses, "final_loss": losses[-1], "train_error": 0.013, "test_error": 0.024}


# --- nice ticks --------------------------------------------------------------------------------

@pytest.mark.parametrize("lo,hi", [(0, 1), (0, 0.23), (1, 150), (0.0104, 0.2215), (-3.7, 12.1),
                                   (1e-7, 3e-7), (0, 7), (5, 5), (0, 0), (1e6, 1.3e6)])
def test_nice_ticks_are_1_2_5_steps_covering_the_range(lo: float, hi: float) -> None:
    ticks = plot.nice_ticks(lo, hi)
    assert 2 <= len(ticks) <= 7
    assert ticks[0] <= min(lo, hi) and ticks[-1] >= max(lo, hi)
    step = ticks[1] - ticks[0]
    mantissa = step / 10 ** math.floor(math.log10(step) + 1e-9)
    assert any(math.isclose(mantissa, m, rel_tol=1e-6) for m in (1, 2, 5, 10))
    for a, b in zip(ticks, ticks[1:]):
        assert math.isclose(b - a, step, rel_tol=1e-6)


def test_nice_ticks_examples() -> None:
    assert plot.nice_ticks(0, 1, 5) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert plot.nice_ticks(0.0104, 0.2215) == [0.0, 0.05, 0.1, 0.15, 0.2, 0.25]
    with pytest.raises(ValueError):
        plot.nice_ticks(0, math.inf)


# --- curves ------------------------------------------------------------------------------------

def test_curves_has_axes_ticks_titles_legend_and_one_point_per_epoch() -> None:
    run = seed_run(20)
    root = parse(plot.curves_svg(run))
    for axis in ("x-axis", "y-axis"):
        el = by_id(root, axis)
        assert [e for e in el.iter(SVG + "line") if e.get("class") == "axis-line"]
        assert len([e for e in el.iter(SVG + "line") if e.get("class") == "tick"]) >= 3
    assert texts(by_id(root, "x-axis")) == ["5", "10", "15", "20"]
    y_labels = texts(by_id(root, "y-axis"))
    assert y_labels[0] == "0" and all(float(v) >= 0 for v in y_labels) and len(y_labels) >= 3
    assert "".join(by_id(root, "x-title").itertext()) == "epoch"
    assert "".join(by_id(root, "y-title").itertext()) == "training loss"
    assert "".join(by_id(root, "plot-title").itertext()) == "Training curves"
    assert legend_labels(root) == ["training loss"]
    subpaths = path_points(by_id(root, "curve-loss"))
    assert len(subpaths) == 1 and len(subpaths[0]) == 20
    xs = [x for x, _ in subpaths[0]]
    assert xs == sorted(xs)
    ys = [y for _, y in subpaths[0]]
    assert ys == sorted(ys)  # the loss decreases, so its pixel y increases
    # The final errors are written under the title.
    assert any("train 1.30%" in t and "test 2.40%" in t for t in texts(root))
    assert not has_id(root, "errors-plot-area")


def test_curves_draws_per_epoch_errors_in_a_second_panel() -> None:
    run = seed_run(12)
    run["train_errors"] = [0.5 / (i + 1) for i in range(12)]
    run["test_errors"] = [0.55 / (i + 1) for i in range(12)]
    root = parse(plot.curves_svg(run))
    assert legend_labels(root) == ["training loss", "train error", "test error"]
    for ident in ("curve-train-error", "curve-test-error"):
        assert [len(s) for s in path_points(by_id(root, ident))] == [12]
    assert by_id(root, "errors-plot-area") is not None
    assert "".join(by_id(root, "errors-y-title").itertext()) == "error (%)"
    assert texts(by_id(root, "errors-y-axis"))[0] == "0"
    # The test error is above the train error: smaller pixel y.
    tr, te = (path_points(by_id(root, i))[0] for i in ("curve-train-error", "curve-test-error"))
    assert all(b[1] < a[1] for a, b in zip(tr, te))


def test_curves_accepts_error_lists_under_the_scalar_keys() -> None:
    run = seed_run(5)
    run["train_error"], run["test_error"] = [0.4, 0.3, 0.2, 0.1, 0.05], [0.5, 0.4, None, 0.2, 0.1]
    root = parse(plot.curves_svg(run))
    assert [len(s) for s in path_points(by_id(root, "curve-train-error"))] == [5]
    assert [len(s) for s in path_points(by_id(root, "curve-test-error"))] == [2, 2]
    assert any("train 5.00%, test 10.00%" in t for t in texts(root))


def test_curves_skips_nan_inf_and_null_and_marks_the_breaks() -> None:
    losses = [0.3, 0.2, None, 0.15, float("nan"), float("inf"), 0.1, 0.09, 0.08, float("-inf")]
    root = parse(plot.curves_svg({"losses": losses}))
    subpaths = path_points(by_id(root, "curve-loss"))
    assert [len(s) for s in subpaths] == [2, 3]
    markers = [e for e in by_id(root, "curve-loss").iter(SVG + "circle")]
    assert len(markers) == 1  # epoch 4 stands alone between two gaps
    bands = list(by_id(root, "missing").iter(SVG + "rect"))
    assert len(bands) == 3  # epochs 3, 5-6 and 10
    assert "not finite (NaN/inf), skipped" in legend_labels(root)
    widths = [float(b.get("width")) for b in bands]
    assert widths[1] == pytest.approx(2 * widths[0], rel=0.05)


def test_curves_of_a_run_with_no_finite_loss() -> None:
    run = {"losses": [None] * 30, "train_error": 0.512, "test_error": 0.475, "final_loss": None}
    root = parse(plot.curves_svg(run))
    assert path_points(by_id(root, "curve-loss")) == []
    assert "no finite loss" in texts(root)
    assert len(list(by_id(root, "missing").iter(SVG + "rect"))) == 1


def test_curves_log_scale_when_the_loss_spans_more_than_two_decades() -> None:
    wide = {"losses": [10 ** (-i / 10) for i in range(40)]}  # 1 down to about 1e-3.9
    root = parse(plot.curves_svg(wide))
    title = "".join(by_id(root, "y-title").itertext())
    assert "log scale" in title
    labels = texts(by_id(root, "y-axis"))
    assert labels[0] == "10\u207b\u2074" and labels[-1] == "1"
    assert [e for e in by_id(root, "y-axis").iter(SVG + "line") if e.get("class") == "minor-tick"]
    # On a log axis equal ratios are equal distances.
    pts = path_points(by_id(root, "curve-loss"))[0]
    steps = [b[1] - a[1] for a, b in zip(pts, pts[1:])]
    assert max(steps) - min(steps) < 0.02

    narrow = {"losses": [0.5 * 0.9 ** i for i in range(40)]}  # a span of 61
    root = parse(plot.curves_svg(narrow))
    assert "log" not in "".join(by_id(root, "y-title").itertext())


def test_curves_uses_a_linear_axis_when_a_loss_is_zero() -> None:
    root = parse(plot.curves_svg({"losses": [1.0, 1e-3, 1e-5, 0.0]}))
    assert "log" not in "".join(by_id(root, "y-title").itertext())
    assert [len(s) for s in path_points(by_id(root, "curve-loss"))] == [4]


def test_curves_single_epoch_and_constant_losses() -> None:
    root = parse(plot.curves_svg({"losses": [0.25]}))
    assert path_points(by_id(root, "curve-loss")) == []
    assert len(list(by_id(root, "curve-loss").iter(SVG + "circle"))) == 1
    assert texts(by_id(root, "x-axis")) == ["1"]

    root = parse(plot.curves_svg({"losses": [0.25] * 10}))
    (pts,) = path_points(by_id(root, "curve-loss"))
    assert len(pts) == 10 and len({y for _, y in pts}) == 1
    area = by_id(root, "plot-area")
    top, bottom = float(area.get("y")), float(area.get("y")) + float(area.get("height"))
    assert top < pts[0][1] < bottom

    root = parse(plot.curves_svg({"losses": [0.0] * 3}))
    assert len(path_points(by_id(root, "curve-loss"))[0]) == 3


def test_curves_of_a_real_run_and_its_json(fw: ModuleType) -> None:
    import json

    res = task.train(fw, task.Config(epochs=2, n_train=40, n_test=40, hidden=4))
    res.pop("model")
    for run in (res, json.loads(json.dumps(res))):
        root = parse(plot.curves_svg(run))
        assert [len(s) for s in path_points(by_id(root, "curve-loss"))] == [2]
        sub = " ".join(texts(root))
        assert f"backend {res['backend']}" in sub and "relu" in sub


def test_curves_escapes_text() -> None:
    title = 'A <b>"run"</b> & \x01 more'
    svg = plot.curves_svg({"losses": [1.0, 0.5], "activation": "<relu>"}, title=title)
    root = parse(svg)
    assert "".join(by_id(root, "plot-title").itertext()) == 'A <b>"run"</b> & \ufffd more'
    assert root.find(SVG + "title").text == 'A <b>"run"</b> & \ufffd more'
    assert "<relu>" in " ".join(texts(root))
    assert "<b>" not in svg


@pytest.mark.parametrize("run,exc", [({}, ValueError), ({"losses": []}, ValueError),
                                     ({"losses": [0.1, "x"]}, TypeError), ({"losses": 3}, TypeError),
                                     ([0.1, 0.2], TypeError),
                                     ({"losses": [0.1], "train_error": "bad"}, TypeError)])
def test_curves_bad_runs(run: Any, exc: type) -> None:
    with pytest.raises(exc, match="curves_svg"):
        plot.curves_svg(run)


# --- decision regions --------------------------------------------------------------------------

def inside_disk(rows: List[List[float]]) -> List[int]:
    """The true labels of the seed task."""
    cx, cy = plot.DISK_CENTER
    return [1 if (x - cx) ** 2 + (y - cy) ** 2 < plot.DISK_RADIUS ** 2 else 0 for x, y in rows]


def grid_points(n: int) -> List[List[float]]:
    """``n * n`` points on a slightly shifted lattice in [0, 1]²."""
    return [[(i + 0.37) / n, (j + 0.61) / n] for j in range(n) for i in range(n)]


def test_boundary_has_regions_circle_points_axes_and_legend() -> None:
    pts = grid_points(20)
    labels = inside_disk(pts)
    calls: List[int] = []

    def predict(rows: List[List[float]]) -> List[int]:
        calls.append(len(rows))
        return inside_disk(rows)

    svg = plot.boundary_svg(predict, pts, labels, error=0.024)
    root = parse(svg)
    assert calls == [100 * 100 + len(pts)]  # the grid's cells, then the points
    assert "".join(by_id(root, "plot-title").itertext()) == "Decision regions (test error 2.40%)"
    # One marker per point, shaped by class.
    zeros, ones = by_id(root, "points-0"), by_id(root, "points-1")
    assert len(list(zeros.iter(SVG + "circle"))) == labels.count(0)
    assert len(list(ones.iter(SVG + "polygon"))) == labels.count(1)
    assert len(list(zeros)) + len(list(ones)) == len(pts)
    assert zeros.get("fill") != ones.get("fill")
    # The true circle.
    circle = by_id(root, "true-circle")
    area = by_id(root, "plot-area")
    size = float(area.get("width"))
    span = 1 + 2 * plot.UNIT_MARGIN  # [0, 1]² and a margin, so that points on the edges are whole
    assert float(circle.get("r")) == pytest.approx(plot.DISK_RADIUS * size / span, abs=0.01)
    assert float(circle.get("cx")) == pytest.approx(float(area.get("x")) + size / 2)
    assert circle.get("fill") == "none"
    # Regions: rects that tile the plot area once, merged per row run.
    rects = {c: list(by_id(root, f"region-{c}").iter(SVG + "rect")) for c in (0, 1)}
    covered = 0.0
    for c in (0, 1):
        for r in rects[c]:
            covered += float(r.get("width")) * float(r.get("height"))
    assert covered == pytest.approx(size * size, rel=1e-3)
    # At most 2 runs of class 1 per row for a disk, at most 3 of class 0.
    assert len(rects[1]) <= 100 and len(rects[0]) <= 200
    region_area_1 = 0.0
    for r in rects[1]:
        region_area_1 += float(r.get("width")) * float(r.get("height"))
    assert region_area_1 / (size * size) == pytest.approx(0.5 / span ** 2, abs=0.01)  # the disk: half of [0, 1]²
    # Axes 0..1 with ticks, and a legend.
    assert texts(by_id(root, "x-axis")) == ["0", "0.2", "0.4", "0.6", "0.8", "1.0"]
    assert texts(by_id(root, "y-axis")) == ["0", "0.2", "0.4", "0.6", "0.8", "1.0"]
    assert legend_labels(root)[:7] == ["regions", "predicted 0", "predicted 1", "points",
                                       "label 0 (outside)", "label 1 (inside)", "true boundary"]


def test_boundary_of_a_model_through_the_documented_predict(fw: ModuleType) -> None:
    g = fw.Generator(0)
    model = task.make_model(fw, g, hidden=4)
    x, y = fw.data.disk(50, generator=g)

    def predict(rows: List[List[float]]) -> List[int]:
        return fw.argmax_rows(model(task.standardize(fw, fw.tensor(rows))))

    root = parse(plot.boundary_svg(predict, x, y, grid=25, circle=False))
    assert len(list(by_id(root, "points"))) == 2
    assert len(list(by_id(root, "points-0"))) + len(list(by_id(root, "points-1"))) == 50
    assert not has_id(root, "true-circle")
    assert "true boundary" not in legend_labels(root)
    n_rects = len(list(by_id(root, "regions").iter(SVG + "rect")))
    assert 25 <= n_rects <= 25 * 25


def test_boundary_file_size_stays_small() -> None:
    import random

    rnd = random.Random(0)
    pts = [[rnd.random(), rnd.random()] for _ in range(1000)]
    svg = plot.boundary_svg(inside_disk, pts, inside_disk(pts), error=0.0)
    assert len(svg.encode()) < 200_000
    # Even a model that changes its mind on every second cell stays under a megabyte.
    stripes = plot.boundary_svg(lambda rows: [i % 2 for i in range(len(rows))], pts, inside_disk(pts))
    assert len(stripes.encode()) < 1_000_000
    parse(stripes)


@pytest.mark.parametrize("kwargs,exc", [
    ({"predict": lambda rows: [0] * (len(rows) - 1)}, ValueError),
    ({"predict": lambda rows: [2] * len(rows)}, ValueError),
    ({"predict": None}, TypeError),
    ({"points": [[0.1, float("nan")]], "labels": [0]}, ValueError),
    ({"points": [[0.1, 0.2, 0.3]], "labels": [0]}, ValueError),
    ({"points": [[0.1, 0.2]], "labels": [0, 1]}, ValueError),
    ({"points": [[0.1, 0.2]], "labels": [3]}, ValueError),
    ({"grid": 1}, ValueError),
    ({"error": float("nan")}, ValueError),
])
def test_boundary_bad_input(kwargs: dict, exc: type) -> None:
    args = {"predict": inside_disk, "points": [[0.1, 0.2]], "labels": [0], "grid": 4, **kwargs}
    with pytest.raises(exc, match="boundary_svg"):
        plot.boundary_svg(args.pop("predict"), args.pop("points"), args.pop("labels"), **args)


def test_boundary_empty_points() -> None:
    root = parse(plot.boundary_svg(inside_disk, [], [], grid=10))
    assert len(list(by_id(root, "points-0"))) == len(list(by_id(root, "points-1"))) == 0


# --- files -------------------------------------------------------------------------------------

def test_write_svg_is_atomic_and_checks_the_text(tmp_path: Path) -> None:
    svg = plot.curves_svg(seed_run(3))
    path = tmp_path / "curves.svg"
    plot.write_svg(str(path), svg)
    assert path.read_text(encoding="utf-8") == svg
    with pytest.raises(ValueError, match="bad.svg"):
        plot.write_svg(str(tmp_path / "bad.svg"), "<svg")
    with pytest.raises(ValueError, match="not <svg>"):
        plot.write_svg(str(tmp_path / "bad.svg"), "<html/>")
    with pytest.raises(TypeError):
        plot.write_svg(str(tmp_path / "bad.svg"), b"<svg/>")  # type: ignore[arg-type]
    assert sorted(os.listdir(tmp_path)) == ["curves.svg"]


# --- optional: render to PNG and check the picture is not blank --------------------------------

def _renderer() -> Optional[Callable[[Path, Path, int, int], None]]:
    rsvg = shutil.which("rsvg-convert")
    if rsvg:
        def run_rsvg(svg: Path, png: Path, w: int, h: int) -> None:
            subprocess.run([rsvg, "-o", str(png), str(svg)], check=True, timeout=60, capture_output=True)
        return run_rsvg
    for name in ("chromium", "chromium-browser", "google-chrome"):
        exe = shutil.which(name)
        if exe:
            def run_chromium(svg: Path, png: Path, w: int, h: int, exe: str = exe) -> None:
                subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                f"--screenshot={png}", f"--window-size={w},{h}", svg.as_uri()],
                               check=True, timeout=120, capture_output=True)
            return run_chromium
    return None


def png_pixels(data: bytes) -> tuple:
    """``(width, height, rows)`` of an 8-bit, non-interlaced RGB or RGBA PNG; rows of pixel tuples."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(height):
        filt, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for k in range(stride):
            a = line[k - bpp] if k >= bpp else 0
            b, c = prev[k], prev[k - bpp] if k >= bpp else 0
            if filt == 1:
                line[k] = (line[k] + a) & 255
            elif filt == 2:
                line[k] = (line[k] + b) & 255
            elif filt == 3:
                line[k] = (line[k] + (a + b) // 2) & 255
            elif filt == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[k] = (line[k] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[k:k + 3]) for k in range(0, stride, bpp)])
        prev = line
    return width, height, rows


@pytest.mark.parametrize("which", ["curves", "boundary"])
def test_rendered_png_is_not_blank(which: str, tmp_path: Path) -> None:
    render = _renderer()
    if render is None:
        pytest.skip("neither rsvg-convert nor chromium is on PATH")
    if which == "curves":
        run = seed_run(30)
        run["train_errors"] = [0.5 / (i + 1) for i in range(30)]
        svg = plot.curves_svg(run)
    else:
        pts = grid_points(15)
        svg = plot.boundary_svg(inside_disk, pts, inside_disk(pts), error=0.0, grid=50)
    root = ET.fromstring(svg)
    w, h = int(root.get("width")), int(root.get("height"))
    src, png = tmp_path / f"{which}.svg", tmp_path / f"{which}.png"
    plot.write_svg(str(src), svg)
    render(src, png, w, h)
    width, height, rows = png_pixels(png.read_bytes())
    assert (width, height) == (w, h)
    colours = {p for row in rows[::3] for p in row[::3]}
    assert len(colours) > 8
    dark = sum(1 for row in rows[::2] for p in row[::2] if max(p) < 128)
    assert dark > 200  # text, axes and curves are drawn
    if which == "boundary":
        blue, vermillion = (0x00, 0x72, 0xB2), (0xD5, 0x5E, 0x00)
        assert blue in colours and vermillion in colours


# --- test loss, the error panel's range, K classes ---------------------------------------------

def test_curves_draws_the_test_loss_on_the_loss_axis() -> None:
    run = seed_run(10)
    run["test_losses"] = [v * 1.2 for v in run["losses"]]
    run["test_losses"][4] = None
    root = parse(plot.curves_svg(run))
    assert legend_labels(root)[:2] == ["training loss", "test loss"]
    assert [len(s) for s in path_points(by_id(root, "curve-test-loss"))] == [4, 5]
    assert "".join(by_id(root, "y-title").itertext()) == "loss"
    train, test = path_points(by_id(root, "curve-loss"))[0], path_points(by_id(root, "curve-test-loss"))[0]
    assert all(b[1] < a[1] for a, b in zip(train, test))  # the test loss is higher: smaller pixel y


def test_curves_error_panel_stays_readable_after_the_first_epoch() -> None:
    n = 40
    run = seed_run(n)
    run["test_errors"] = [0.5] + [0.06 - 0.001 * i for i in range(n - 1)]
    run["train_errors"] = [0.45] + [0.05 - 0.001 * i for i in range(n - 1)]
    root = parse(plot.curves_svg(run))
    ticks = [float(t) for t in texts(by_id(root, "errors-y-axis"))]
    assert ticks[-1] <= 10, "the axis covers the later epochs, not the 50 % spike"
    note = "".join(by_id(root, "errors-clipped").itertext())
    assert "epoch 1 reaches up to 50.0%" in note and "clipped at" in note
    area = by_id(root, "errors-plot-area")
    height = float(area.get("height"))
    later = [y for _, y in path_points(by_id(root, "curve-test-error"))[0][1:]]
    assert max(later) - min(later) > 0.3 * height, "the later epochs use the panel's height"
    # without a spike, nothing is clipped
    run["test_errors"][0], run["train_errors"][0] = 0.06, 0.05
    root = parse(plot.curves_svg(run))
    assert not has_id(root, "errors-clipped")


@pytest.mark.parametrize("values", [[0.1, 1.5], [-0.1], [1e308]])
def test_curves_errors_must_be_fractions(values: list) -> None:
    with pytest.raises(ValueError, match="curves_svg.*fraction"):
        plot.curves_svg({"losses": [0.1] * len(values), "test_errors": values})


@pytest.mark.parametrize("losses", [[1.7976931348623157e308] * 3, [1e308, 1e-308, 5e-324], [5e-324] * 2])
def test_curves_extreme_losses_on_a_log_axis(losses: list) -> None:
    root = parse(plot.curves_svg({"losses": losses}))
    assert "log scale" in "".join(by_id(root, "y-title").itertext())
    area = by_id(root, "plot-area")
    top, bottom = float(area.get("y")), float(area.get("y")) + float(area.get("height"))
    pts = [p for s in path_points(by_id(root, "curve-loss")) for p in s]
    assert pts and all(top - 0.01 <= y <= bottom + 0.01 for _, y in pts)


def test_boundary_with_k_classes_a_domain_and_misclassified_points() -> None:
    def nearest(rows: List[List[float]]) -> List[int]:
        return [0 if x < -1 else 1 if x < 3 else 2 for x, _ in rows]

    pts = [[-4.0, 1.0], [0.0, -2.0], [5.0, 2.0], [4.0, 0.0]]
    labels = [0, 1, 2, 1]  # the last one is on the wrong side
    root = parse(plot.boundary_svg(nearest, pts, labels, classes=3, circle=False, grid=20))
    for c in range(3):
        assert by_id(root, f"region-{c}") is not None
    assert [len(list(by_id(root, f"points-{c}"))) for c in range(3)] == [1, 2, 1]
    assert len(list(by_id(root, "misclassified"))) == 1
    assert "misclassified (1)" in legend_labels(root)
    x_labels = [float(t) for t in texts(by_id(root, "x-axis"))]
    assert x_labels[0] <= -3 and x_labels[-1] >= 4, "the axis covers the points' range, not [0, 1]"
    # None: no prediction, drawn grey and counted as misclassified
    root = parse(plot.boundary_svg(lambda rows: [None] * len(rows), pts, labels, classes=3, grid=4,
                                   domain=(-5, 6, -3, 3)))
    assert len(list(by_id(root, "region-none"))) == 4 and len(list(by_id(root, "misclassified"))) == 4
    y_ticks = [float(t) for t in texts(by_id(root, "y-axis"))]
    assert y_ticks == [-3, -2, -1, 0, 1, 2, 3], "the ticks of the given domain"


def _tick_scale(root: ET.Element, axis: str) -> float:
    """Pixels per data unit along ``axis`` ("x-axis" or "y-axis"), from its labelled ticks."""
    el = by_id(root, axis)
    attr = "x1" if axis == "x-axis" else "y1"
    pixels = [float(e.get(attr)) for e in el.iter(SVG + "line") if e.get("class") == "tick"]
    values = [float(t) for t in texts(el)]
    return abs((pixels[-1] - pixels[0]) / (values[-1] - values[0]))


def test_boundary_draws_points_on_the_edges_of_the_unit_square_whole() -> None:
    pts = [[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0], [0.5, 0.5]]
    root = parse(plot.boundary_svg(lambda rows: [0] * len(rows), pts, [0] * 5, grid=10, circle=False))
    area = by_id(root, "plot-area")
    x0, y0 = float(area.get("x")), float(area.get("y"))
    x1, y1 = x0 + float(area.get("width")), y0 + float(area.get("height"))
    markers = list(by_id(root, "points-0"))
    assert len(markers) == 5
    for m in markers:
        cx, cy, r = float(m.get("cx")), float(m.get("cy")), float(m.get("r"))
        assert x0 <= cx - r and cx + r <= x1 and y0 <= cy - r and cy + r <= y1, "a marker cut by the edge"
    assert texts(by_id(root, "x-axis")) == ["0", "0.2", "0.4", "0.6", "0.8", "1.0"]


def test_boundary_of_user_data_has_equal_scales_on_both_axes() -> None:
    for pts in ([[-4.0, 1.0], [0.0, -2.0], [5.0, 2.0]], [[0.0, -30.0], [1.0, 50.0], [2.0, 0.0]]):
        root = parse(plot.boundary_svg(lambda rows: [0] * len(rows), pts, None, grid=10, circle=False))
        assert _tick_scale(root, "x-axis") == pytest.approx(_tick_scale(root, "y-axis"), rel=1e-3), pts
        area = by_id(root, "plot-area")
        x0, y0 = float(area.get("x")), float(area.get("y"))
        for m in by_id(root, "points-unlabelled"):
            assert x0 < float(m.get("cx")) < x0 + float(area.get("width"))
            assert y0 < float(m.get("cy")) < y0 + float(area.get("height"))


def _lab(colour: str) -> tuple:
    """CIELAB (D65) of a ``#RRGGBB`` colour."""
    rgb = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    xyz = ((0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047, 0.2126 * r + 0.7152 * g + 0.0722 * b,
           (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883)
    f = [t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116 for t in xyz]
    return 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])


def test_boundary_region_tints_of_eight_classes_stay_distinct() -> None:
    """Every two classes' regions differ by a CIE76 colour difference of at least 14 (class 4's
    sky blue was 3.9 from class 0's blue), and each is apart from the grey of no prediction."""
    pts = [[float(k), 0.0] for k in range(8)]
    root = parse(plot.boundary_svg(lambda rows: [min(7, max(0, round(x))) for x, _ in rows], pts, list(range(8)),
                                   classes=8, grid=8, circle=False))
    fills = [by_id(root, f"region-{c}").get("fill") for c in range(8)]
    for i in range(8):
        for j in range(i + 1, 8):
            d = math.dist(_lab(fills[i]), _lab(fills[j]))
            assert d >= 14, (i, j, fills[i], fills[j], d)
        assert math.dist(_lab(fills[i]), _lab("#D9D9D9")) >= 9.5, (i, fills[i])


def test_png_bytes_is_a_valid_png_of_the_values(fw: ModuleType) -> None:
    """png_bytes writes 8-bit grey or RGB PNG: values clamped to [0, 1] and rounded to 0..255, the
    rows behind filter 0, zlib-compressed, every chunk with its CRC."""
    from test_cli_images import decode_png
    grey = [[[0.0, 0.5, 1.0], [-0.2, 1.7, 0.25]]]
    assert decode_png(plot.png_bytes(grey)) == (3, 2, 0, [bytes([0, 128, 255]), bytes([0, 255, 64])])
    rgb = fw.tensor([[[0.0, 1.0]], [[0.5, 0.0]], [[1.0, 0.2]]])  # 3 x 1 x 2
    assert decode_png(plot.png_bytes(rgb)) == (2, 1, 2, [bytes([0, 128, 255, 255, 0, 51])])
    with pytest.raises(ValueError, match="1 or 3 channels"):
        plot.png_bytes([[[0.0]], [[0.0]]])
    svg = plot.images_svg([[grey, None]], ["a", "b"], captions=[["x dB", ""]])
    assert svg.count("data:image/png;base64,") == 1 and ">x dB<" in svg
    with pytest.raises(ValueError, match="every row needs 2 images"):
        plot.images_svg([[grey]], ["a", "b"])


def test_a_denoiser_run_draws_its_psnr_curve() -> None:
    """A run with per-epoch PSNRs (train --task denoise) gets a PSNR panel, with the noisy input's
    PSNR as a line, instead of an error panel."""
    run = {"losses": [0.05, 0.03, 0.02], "test_losses": [0.04, 0.03, 0.025], "test_psnrs": [18.0, 22.5, 24.0],
           "noisy_psnr": 20.4, "train_error": None, "test_error": None}
    svg = plot.curves_svg(run)
    root = ET.fromstring(svg)
    ids = {e.get("id") for e in root.iter()}
    assert {"psnr-plot-area", "curve-test-psnr", "noisy-psnr"} <= ids and "errors-plot-area" not in ids
    assert "PSNR (dB)" in svg
    assert "psnr-plot-area" not in plot.curves_svg({"losses": [0.05, 0.03]})
