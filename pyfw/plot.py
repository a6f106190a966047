"""Plots as SVG text, written with the standard library: training curves and decision regions.

Two pictures, each returned as the text of a standalone SVG 1.1 document (a
``viewBox``, a white background, the generic ``sans-serif`` font, every text
escaped):

- :func:`curves_svg` draws the training loss (and the test loss) per epoch of a
  run (the dict that :func:`pyfw.task.train` returns, or the JSON that ``pyfw
  train --json`` writes), and the train and test error per epoch in a second
  panel when the run has them as lists.
- :func:`boundary_svg` draws the decision regions of a model of two inputs and
  any number of classes over [0, 1]² or the points' range, the points coloured
  (and shaped) by their label, the misclassified ones circled, and the true
  circle of the seed task.
- :func:`images_svg` draws a grid of images (the denoiser's noisy, denoised and
  clean images, one row per example), each embedded as a PNG (:func:`png_bytes`).

:func:`write_svg` writes either atomically. Colours are from the Okabe-Ito
palette, which readers with the common colour-vision deficiencies can tell
apart; every series also differs by its dash pattern or marker shape.

Elements carry ``id`` attributes (``plot-area``, ``x-axis``, ``y-axis``,
``legend``, ``curve-loss``, ``curve-test-loss``, ``regions``, ``points``,
``misclassified``, ``true-circle``, ...) so that tests and style sheets can find
them.
"""

from __future__ import annotations

import base64
import math
import numbers
import re
import struct
import zlib
import xml.etree.ElementTree as ET
from typing import Any, Callable, List, Mapping, Optional, Sequence, Tuple

from . import io

__all__ = ["curves_svg", "boundary_svg", "images_svg", "png_bytes", "write_svg", "nice_ticks", "DISK_CENTER", "DISK_RADIUS", "UNIT_MARGIN"]

DISK_CENTER = (0.5, 0.5)
"""The centre of the seed task's disk (``fw.data.disk``): label 1 inside, 0 outside."""

DISK_RADIUS = 1.0 / math.sqrt(2.0 * math.pi)
"""The radius of the seed task's disk, ``1 / sqrt(2 pi)``: the disk covers half of [0, 1]²."""

# Okabe-Ito colours, and light tints of the class colours for the regions.
_BLUE, _VERMILLION, _GREEN, _ORANGE = "#0072B2", "#D55E00", "#009E73", "#E69F00"
_CLASS_COLOURS = (_BLUE, _VERMILLION)
# Tints of the eight class colours (see _PALETTE), each mixed with white: the lightest mix for
# which every two differ by a CIE76 colour difference of at least 14 (sky blue, class 4, needs a
# stronger tint than blue's, class 0; black's, class 7, stays apart from the grey of no prediction).
_REGION_COLOURS = ("#D3E5F2", "#F7DCC8", "#BFE7DC", "#F6DDA6", "#A2D6F3", "#EBC9DC", "#FBF8D0", "#B2B2B2")
_INK, _MUTED, _GRID, _MISSING = "#222222", "#555555", "#E6E6E6", "#D9D9D9"

_FONT = 'font-family="sans-serif"'
_SUPERSCRIPT = str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079")


# --- text and numbers --------------------------------------------------------------------------

_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _esc(s: Any) -> str:
    """``s`` as XML character data or an attribute value: escaped, invalid characters replaced."""
    s = _XML_INVALID.sub("\ufffd", str(s))
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _n(v: float) -> str:
    """A coordinate with at most two decimals and no trailing zeros."""
    s = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _text_width(s: str, size: float) -> float:
    """An estimate of the width of ``s`` in a sans-serif font of ``size`` pixels."""
    return 0.58 * size * len(s)


def _text(x: float, y: float, s: str, size: float = 12, anchor: str = "start", fill: str = _INK,
          extra: str = "") -> str:
    a = "" if anchor == "start" else f' text-anchor="{anchor}"'
    return f'<text x="{_n(x)}" y="{_n(y)}" font-size="{_n(size)}" fill="{fill}"{a}{extra}>{_esc(s)}</text>'


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _finite_values(values: Any, what: str) -> List[Optional[float]]:
    """``values`` as floats, with ``None`` for entries that are ``None``, NaN or infinite."""
    if hasattr(values, "tolist") and not isinstance(values, list):
        values = values.tolist()
    if not isinstance(values, (list, tuple)):
        raise TypeError(f"{what} must be a list of numbers, got {type(values).__name__}")
    out: List[Optional[float]] = []
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
        elif _is_number(v):
            f = float(v)
            out.append(f if math.isfinite(f) else None)
        else:
            raise TypeError(f"{what}[{i}] is a {type(v).__name__}, not a number or null")
    return out


def nice_ticks(lo: float, hi: float, target: int = 6) -> List[float]:
    """Ticks at multiples of a "nice" step (1, 2 or 5 times a power of ten) covering [lo, hi].

    The step is the smallest nice step giving at most ``target + 1`` ticks; the
    first tick is at or below ``lo`` and the last at or above ``hi``, so an axis
    whose domain is ``[ticks[0], ticks[-1]]`` starts and ends on a labelled tick.
    ``lo == hi`` gives the ticks of a small interval around it.
    """
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"nice_ticks: the bounds must be finite, got {lo!r} and {hi!r}")
    if target < 1:
        raise ValueError(f"nice_ticks: target must be at least 1, got {target}")
    if lo > hi:
        lo, hi = hi, lo
    if max(abs(lo), abs(hi)) > 1e300:
        raise ValueError(f"nice_ticks: the bounds must be within [-1e300, 1e300] for a linear axis, "
                         f"got {lo!r} and {hi!r}")
    if hi - lo <= 1e-12 * max(abs(lo), abs(hi), 1e-288):
        d = max(abs(lo) * 0.1, 1e-300) if lo != 0 else 1.0
        lo, hi = lo - d, hi + d
    step = _nice_step(lo, hi, target)
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [_clean(k * step) for k in range(first, last + 1)]


def _nice_step(lo: float, hi: float, target: int) -> float:
    raw = (hi - lo) / target
    power = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 5.0, 10.0):
        step = m * power
        if math.ceil(hi / step - 1e-9) - math.floor(lo / step + 1e-9) <= target:
            return step
    return 20.0 * power


def _clean(v: float) -> float:
    """``v`` rounded to 12 significant digits, so that ticks like 0.30000000000000004 print as 0.3."""
    return 0.0 if v == 0 else float(f"{v:.12g}")


def _tick_label(v: float, step: float) -> str:
    """A tick value with as many decimals as the step needs; large or tiny values in e-notation."""
    if v == 0:
        return "0"
    if abs(v) >= 1e6 or abs(v) < 1e-4:
        return f"{v:.3g}".replace("e+0", "e").replace("e-0", "e-").replace("e+", "e")
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return f"{v:.{decimals}f}"


def _power_label(k: int) -> str:
    return "1" if k == 0 else "10" if k == 1 else "10" + str(k).translate(_SUPERSCRIPT)


# --- scales and axes ---------------------------------------------------------------------------

class _Scale:
    """A map from data values to pixels in ``[p0, p1]``, linear or logarithmic.

    ``lo`` and ``hi`` bound the axis in its own space: data values for a linear axis,
    decimal exponents for a log axis (so that no power of ten is ever computed: the
    data may reach 1e308 or 5e-324). :meth:`pos` maps a value of that space (a tick),
    ``scale(v)`` a data value.
    """

    def __init__(self, lo: float, hi: float, p0: float, p1: float, log: bool = False) -> None:
        self.log = log
        self.lo, self.hi = lo, hi
        self.p0, self.p1 = p0, p1

    def pos(self, t: float) -> float:
        """The pixel of ``t`` in the axis's own space."""
        return self.p0 + (t - self.lo) / (self.hi - self.lo) * (self.p1 - self.p0)

    def __call__(self, v: float) -> float:
        return self.pos(math.log10(v) if self.log else v)


def _linear_axis(lo: float, hi: float, target: int = 6, integer: bool = False) -> Tuple[float, float, list]:
    """Domain and labelled ticks ``[(value, label)]`` of a linear axis covering [lo, hi]."""
    ticks = nice_ticks(lo, hi, target)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    if integer and step < 1:
        ticks = nice_ticks(math.floor(lo), math.ceil(hi), max(1, math.ceil(hi) - math.floor(lo)))
        step = 1.0
    return ticks[0], ticks[-1], [(t, _tick_label(t, step)) for t in ticks]


def _log_axis(lo: float, hi: float) -> Tuple[float, float, list, list]:
    """Domain (whole decades), labelled decade ticks and unlabelled minor ticks of a log axis
    covering the positive values [lo, hi], all as decimal exponents (see :class:`_Scale`)."""
    k0, k1 = math.floor(math.log10(lo) + 1e-9), math.ceil(math.log10(hi) - 1e-9)
    if k1 == k0:
        k1 += 1
    every = 1  # decades between labels: 1, 2 or 5 times a power of ten, at most 8 labels
    while (k1 - k0) / every > 7:
        every = every * 5 // 2 if str(every)[0] == "2" else every * 2
    major = [(float(k), _power_label(k)) for k in range(k0, k1 + 1) if k % every == 0]
    minor = ([k + math.log10(m) for k in range(k0, k1) for m in range(2, 10)]
             if every == 1 and k1 - k0 <= 6 else [])
    return float(k0), float(k1), major, minor


def _axes(out: List[str], box: Tuple[float, float, float, float], xs: _Scale, ys: _Scale,
          xticks: list, yticks: list, xtitle: str, ytitle: str, prefix: str = "",
          yminor: Sequence[float] = (), xlabels: bool = True) -> None:
    """Grid lines, the two axis lines with ticks and labels, and the axis titles of one panel."""
    x0, y0, x1, y1 = box
    out.append(f'<g id="{prefix}grid" stroke="{_GRID}" stroke-width="1" shape-rendering="crispEdges">')
    for v, _ in yticks:
        out.append(f'<line x1="{_n(x0)}" y1="{_n(ys.pos(v))}" x2="{_n(x1)}" y2="{_n(ys.pos(v))}"/>')
    for v, _ in xticks:
        out.append(f'<line x1="{_n(xs.pos(v))}" y1="{_n(y0)}" x2="{_n(xs.pos(v))}" y2="{_n(y1)}"/>')
    out.append("</g>")
    # x axis
    out.append(f'<g id="{prefix}x-axis" stroke="{_INK}" stroke-width="1">')
    out.append(f'<line class="axis-line" x1="{_n(x0)}" y1="{_n(y1)}" x2="{_n(x1)}" y2="{_n(y1)}"/>')
    for v, _ in xticks:
        out.append(f'<line class="tick" x1="{_n(xs.pos(v))}" y1="{_n(y1)}" x2="{_n(xs.pos(v))}" '
                   f'y2="{_n(y1 + 5)}"/>')
    if xlabels:
        out.append(f'<g class="tick-labels" stroke="none">')
        for v, label in xticks:
            out.append(_text(xs.pos(v), y1 + 19, label, 12, "middle"))
        out.append("</g>")
    out.append("</g>")
    # y axis
    out.append(f'<g id="{prefix}y-axis" stroke="{_INK}" stroke-width="1">')
    out.append(f'<line class="axis-line" x1="{_n(x0)}" y1="{_n(y0)}" x2="{_n(x0)}" y2="{_n(y1)}"/>')
    for v, _ in yticks:
        out.append(f'<line class="tick" x1="{_n(x0 - 5)}" y1="{_n(ys.pos(v))}" x2="{_n(x0)}" y2="{_n(ys.pos(v))}"/>')
    for v in yminor:
        out.append(f'<line class="minor-tick" x1="{_n(x0 - 3)}" y1="{_n(ys.pos(v))}" x2="{_n(x0)}" '
                   f'y2="{_n(ys.pos(v))}"/>')
    out.append(f'<g class="tick-labels" stroke="none">')
    for v, label in yticks:
        out.append(_text(x0 - 8, ys.pos(v) + 4, label, 12, "end"))
    out.append("</g>")
    out.append("</g>")
    if xtitle:
        out.append(_text((x0 + x1) / 2, y1 + 40, xtitle, 13, "middle", extra=f' id="{prefix}x-title"'))
    width = max((_text_width(label, 12) for _, label in yticks), default=0.0)
    tx = x0 - 8 - width - 12
    out.append(_text(tx, (y0 + y1) / 2, ytitle, 13, "middle",
                     extra=f' id="{prefix}y-title" transform="rotate(-90 {_n(tx)} {_n((y0 + y1) / 2)})"'))


def _y_label_room(yticks: list) -> float:
    """Pixels left of the y axis needed by its tick labels and its rotated title."""
    return 8 + max((_text_width(label, 12) for _, label in yticks), default=0.0) + 12 + 6 + 14


def _document(width: int, height: int, title: str, body: List[str]) -> str:
    head = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" {_FONT}>\n'
            f"<title>{_esc(title)}</title>\n"
            f'<rect id="background" x="0" y="0" width="{width}" height="{height}" fill="#FFFFFF"/>\n')
    return head + "\n".join(body) + "\n</svg>\n"


def _legend_row(out: List[str], x: float, y: float, right: float, items: list) -> float:
    """Legend entries left to right from (x, y), wrapping before ``right``; returns the bottom y.

    ``items`` are ``(kind, label, style)``: kind ``"line"`` (style: stroke colour
    and dash), ``"swatch"`` (style: fill colour).
    """
    out.append('<g id="legend">')
    cx = x
    for kind, label, style in items:
        w = 30 + 6 + _text_width(label, 12) + 20
        if cx + w > right and cx > x:
            cx, y = x, y + 20
        out.append('<g class="legend-entry">')
        if kind == "line":
            colour, dash = style
            d = f' stroke-dasharray="{dash}"' if dash else ""
            out.append(f'<line x1="{_n(cx)}" y1="{_n(y - 4)}" x2="{_n(cx + 30)}" y2="{_n(y - 4)}" '
                       f'stroke="{colour}" stroke-width="2.5"{d}/>')
        else:
            out.append(f'<rect x="{_n(cx + 4)}" y="{_n(y - 11)}" width="22" height="14" fill="{style}" '
                       f'stroke="{_MUTED}" stroke-width="0.5"/>')
        out.append(_text(cx + 36, y, label, 12))
        out.append("</g>")
        cx += w
    out.append("</g>")
    return y + 8


# --- curves ------------------------------------------------------------------------------------

def _series_from(run: Mapping[str, Any], split: str) -> Tuple[Optional[list], Optional[float]]:
    """The per-epoch list (``"<split>_errors"`` or a list under ``"<split>_error"``) and the final value."""
    per_epoch, final = None, None
    for key in (f"{split}_errors", f"{split}_error"):
        v = run.get(key)
        if v is None:
            continue
        if isinstance(v, (list, tuple)) or (hasattr(v, "tolist") and not _is_number(v)):
            if per_epoch is None:
                per_epoch = _finite_values(v, f"curves_svg: run[{key!r}]")
        elif _is_number(v):
            final = float(v) if math.isfinite(float(v)) else None
        else:
            raise TypeError(f"curves_svg: run[{key!r}] must be a number or a list, got {type(v).__name__}")
    if final is None and per_epoch:
        final = per_epoch[-1]
    return per_epoch, final


def _runs_of_missing(values: Sequence[Optional[float]]) -> List[Tuple[int, int]]:
    """``(first, last)`` epoch numbers (from 1) of each run of consecutive missing values."""
    runs, start = [], None
    for i, v in enumerate(values, start=1):
        if v is None and start is None:
            start = i
        elif v is not None and start is not None:
            runs.append((start, i - 1))
            start = None
    if start is not None:
        runs.append((start, len(values)))
    return runs


def _curve(out: List[str], ident: str, values: Sequence[Optional[float]], xs: _Scale, ys: _Scale,
           colour: str, dash: str) -> None:
    """One series as a ``<g id=ident>``: a path broken at missing values, a dot for each isolated value."""
    segments, seg = [], []
    for i, v in enumerate(values, start=1):
        if v is None:
            if seg:
                segments.append(seg)
            seg = []
        else:
            seg.append((xs(i), ys(v)))
    if seg:
        segments.append(seg)
    out.append(f'<g id="{ident}" class="curve">')
    d = " ".join("M" + " L".join(f"{_n(x)} {_n(y)}" for x, y in s) for s in segments if len(s) > 1)
    if d:
        da = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="2" '
                   f'stroke-linejoin="round" stroke-linecap="round"{da}/>')
    for s in segments:
        if len(s) == 1:
            out.append(f'<circle class="marker" cx="{_n(s[0][0])}" cy="{_n(s[0][1])}" r="3.5" fill="{colour}"/>')
    out.append("</g>")


def _missing_bands(out: List[str], prefix: str, runs: List[Tuple[int, int]], xs: _Scale,
                   box: Tuple[float, float, float, float]) -> None:
    x0, y0, x1, y1 = box
    out.append(f'<g id="{prefix}missing" fill="{_MISSING}">')
    for a, b in runs:
        left, right = max(x0, xs(a - 0.5)), min(x1, xs(b + 0.5))
        out.append(f'<rect x="{_n(left)}" y="{_n(y0)}" width="{_n(right - left)}" height="{_n(y1 - y0)}"/>')
    out.append("</g>")


def _subtitle(run: Mapping[str, Any]) -> str:
    parts = []
    for key, fmt in (("backend", "backend {}"), ("activation", "{}"), ("optimizer", "{}"), ("loss", "{} loss"),
                     ("lr", "lr {}"), ("batch_size", "batch {}"), ("dropout", "dropout {}"), ("seed", "seed {}")):
        v = run.get(key)
        if v is None or (key == "dropout" and not v) or isinstance(v, (dict, list)):
            continue
        parts.append(fmt.format(v))
    return " \u00b7 ".join(parts)


def _percent(v: float) -> str:
    return f"{100 * v:.2f}%"


def _loss_axis(finite: List[float]) -> Tuple[bool, float, float, list, list]:
    """``(log, lo, hi, ticks, minor ticks)`` of the loss axis over the finite losses.

    Log when every loss is positive and they span more than two decades, or reach
    beyond 1e300 or below 1e-300 (where a linear axis cannot be drawn); a linear
    axis cannot show values beyond +-1e300 next to values <= 0 (``ValueError``).
    """
    positive = [v for v in finite if v > 0]
    if finite and len(positive) == len(finite):
        lo, hi = min(positive), max(positive)
        if math.log10(hi) - math.log10(lo) > 2.0 or hi > 1e300 or lo < 1e-300:
            ylo, yhi, yticks, yminor = _log_axis(lo, hi)
            return True, ylo, yhi, yticks, yminor
    if finite and max(abs(v) for v in finite) > 1e300:
        raise ValueError(f"curves_svg: the losses reach {max(finite, key=abs)!r} and go down to {min(finite)!r}: "
                         "a linear axis cannot span values beyond +-1e300, and a log axis only positive ones")
    ylo, yhi, yticks = _linear_axis(min(finite, default=0.0), max(finite, default=1.0))
    if finite and min(finite) >= 0 and ylo < 0:  # a constant non-negative loss: start at 0
        ylo, yhi, yticks = _linear_axis(0.0, yhi)
    return False, ylo, yhi, yticks, []


def _error_range(series: list, n: int) -> Tuple[float, Optional[str]]:
    """The top of the error axis (in percent) and, when the first epochs' errors would squash
    the rest, the note that says they are clipped.

    The axis covers the errors after the first tenth of the epochs (after epoch 1 at
    least), with room to spare; when an earlier error is more than 1.5 times that
    top, the axis stops there and the curves leave the panel at its top edge.
    """
    values = [100 * v for s in series for v in s[2] if v is not None]
    top = max(max(values, default=0.0), 1.0)
    warm = max(1, n // 10)
    late = [100 * v for s in series for v in s[2][warm:] if v is not None]
    if not late:
        return top, None
    late_top = max(max(late) * 1.15, 1.0)
    if top <= 1.5 * late_top:
        return top, None
    ticks = nice_ticks(0.0, late_top, 5)
    cut = ticks[-1]
    above = [i for s in series for i, v in enumerate(s[2], start=1) if v is not None and 100 * v > cut]
    first, last = min(above), max(above)
    epochs = f"epoch {first} reaches" if first == last else f"epochs {first} to {last} reach"
    return cut, f"clipped at {_tick_label(cut, ticks[1] - ticks[0])}%: {epochs} up to {top:.1f}%"


def _fractions(values: Optional[list], what: str) -> Optional[list]:
    """Per-epoch errors, checked to be fractions in [0, 1] (or None)."""
    for i, v in enumerate(values or []):
        if v is not None and not 0.0 <= v <= 1.0:
            raise ValueError(f"curves_svg: {what}[{i}] must be a fraction in [0, 1], got {v!r}")
    return values


def curves_svg(run: Mapping[str, Any], title: Optional[str] = None) -> str:
    """The training curves of a run as SVG text.

    ``run`` is the dict of :func:`pyfw.task.train` or the JSON of ``pyfw train
    --json``: ``run["losses"]`` is the loss of each epoch (epochs count from 1), and
    ``run["test_losses"]``, when the run has it (``--track-errors``), the test loss
    of each epoch. The top panel draws them, on a log axis when the finite losses
    are positive and span more than two decades, or reach beyond 1e300 or below
    1e-300 (the axis title then says "log scale"). Entries that are ``None`` (how
    the JSON stores NaN and infinities), NaN or infinite are skipped: the line
    breaks there and a grey band marks those epochs.

    PSNR: a denoiser's run (``"test_psnrs"``, a list of dB per epoch) gets a second panel with
    that curve instead of errors, and the noisy input's PSNR (``"noisy_psnr"``) as a dotted line.

    Errors: when ``run`` has per-epoch lists under ``"train_errors"`` /
    ``"test_errors"`` (or lists under ``"train_error"`` / ``"test_error"``), a
    second panel draws them in percent. Its axis covers the errors after the first
    tenth of the epochs; when an earlier error (the first epoch's, typically) is
    more than 1.5 times as high, the curves are clipped at the top edge and a note
    in the panel says which epochs reach how high, so that the later epochs stay
    readable. Scalar ``"train_error"`` / ``"test_error"`` (the final errors) are
    written under the title.

    ``title`` defaults to "Training curves"; the line under it names the run's
    backend and options where the run has them. Raises ``ValueError`` when
    ``run`` has no ``"losses"`` or they are empty, when a per-epoch error is not in
    [0, 1], or when losses beyond +-1e300 come with losses <= 0; ``TypeError`` when
    an entry is not a number or null.
    """
    if not isinstance(run, Mapping):
        raise TypeError(f"curves_svg: run must be a dict, got {type(run).__name__}")
    if "losses" not in run:
        raise ValueError("curves_svg: the run has no 'losses' (expected the JSON of `pyfw train --json`)")
    losses = _finite_values(run["losses"], "curves_svg: run['losses']")
    if not losses:
        raise ValueError("curves_svg: the run's 'losses' list is empty")
    test_losses = (_finite_values(run["test_losses"], "curves_svg: run['test_losses']")
                   if run.get("test_losses") is not None else [])
    loss_series = [(ident, name, vals, colour, dash)
                   for ident, name, vals, colour, dash in
                   (("curve-loss", "training loss", losses, _BLUE, ""),
                    ("curve-test-loss", "test loss", test_losses, _ORANGE, "4 3"))
                   if vals]
    train_e, train_final = _series_from(run, "train")
    test_e, test_final = _series_from(run, "test")
    error_series = [(ident, name, _fractions(vals, f"run[{split!r}]"), colour, dash)
                    for ident, name, split, vals, colour, dash in
                    (("curve-train-error", "train error", "train_errors", train_e, _GREEN, "7 4"),
                     ("curve-test-error", "test error", "test_errors", test_e, _VERMILLION, ""))
                    if vals]
    psnr_series = []
    if run.get("test_psnrs") is not None:  # the denoiser: its validation PSNR instead of errors
        psnr_series = [("curve-test-psnr", "validation PSNR", _finite_values(run["test_psnrs"], "run['test_psnrs']"),
                        _VERMILLION, "")]
        error_series = []
    n = max([len(s[2]) for s in loss_series + error_series + psnr_series])
    title = "Training curves" if title is None else str(title)
    finals = [f"{name} {_percent(v)}" for name, v in (("train", train_final), ("test", test_final))
              if v is not None]
    sub = _subtitle(run)
    lines = [s for s in (sub, ("final error: " + ", ".join(finals)) if finals else "") if s]

    # The axes' domains and ticks.
    finite = [v for s in loss_series for v in s[2] if v is not None]
    log, ylo, yhi, yticks, yminor = _loss_axis(finite)
    xlo, xhi, xticks = _linear_axis(1, n, 8, integer=True) if n > 1 else (0.5, 1.5, [(1.0, "1")])
    if n > 1:
        xticks = [(v, lab) for v, lab in xticks if 1 <= v <= n] or [(1.0, "1"), (float(n), str(n))]
        xlo, xhi = 1 - 0.01 * (n - 1), n + 0.01 * (n - 1)
    loss_name = run.get("loss") if isinstance(run.get("loss"), str) else None
    ytitle = (("loss" if test_losses else "training loss") + (f" ({loss_name})" if loss_name else "")
              + (", log scale" if log else ""))

    # Layout: title, subtitle lines, legend row, then one or two panels.
    width = 760
    out: List[str] = []
    out.append(_text(width / 2, 30, title, 18, "middle", extra=' font-weight="bold" id="plot-title"'))
    y = 30
    for line in lines:
        y += 20
        out.append(_text(width / 2, y, line, 13, "middle", _MUTED, extra=' class="subtitle"'))
    runs = sorted({r for s in loss_series for r in _runs_of_missing(s[2])})
    items = [("line", name, (colour, dash)) for _, name, _, colour, dash in loss_series + error_series + psnr_series]
    noisy = run.get("noisy_psnr") if psnr_series and _is_number(run.get("noisy_psnr")) else None
    noisy = noisy if noisy is not None and math.isfinite(noisy) else None
    if noisy is not None:
        items.append(("line", "noisy input's PSNR", (_MUTED, "2 3")))
    if runs or any(_runs_of_missing(s[2]) for s in error_series):
        items.append(("swatch", "not finite (NaN/inf), skipped", _MISSING))
    err_ticks: list = []
    clip_note = None
    if error_series:
        top, clip_note = _error_range(error_series, n)
        _, ehi, err_ticks = _linear_axis(0.0, top, 5)
    if psnr_series:
        span = [v for v in psnr_series[0][2] if v is not None] + ([noisy] if noisy is not None else [])
        plo, phi, err_ticks = _linear_axis(min(span, default=0.0), max(span, default=1.0), 5)
        if plo == phi:
            plo, phi, err_ticks = _linear_axis(plo - 1.0, phi + 1.0, 5)
    left = 24 + max(_y_label_room(yticks), _y_label_room(err_ticks) if err_ticks else 0.0)
    right = width - 28
    legend_bottom = _legend_row(out, left, y + 28, right, items)
    panel_h = 300 if not (error_series or psnr_series) else 240
    top_y = legend_bottom + 16
    panels = [("", (left, top_y, right, top_y + panel_h))]
    if error_series or psnr_series:
        top2 = top_y + panel_h + 56
        panels.append(("errors-", (left, top2, right, top2 + panel_h)))
    height = int(panels[-1][1][3] + 56)

    # Loss panel.
    box = panels[0][1]
    xs = _Scale(xlo, xhi, box[0], box[2])
    ys = _Scale(ylo, yhi, box[3], box[1], log)
    out.append(f'<rect id="plot-area" x="{_n(box[0])}" y="{_n(box[1])}" width="{_n(box[2] - box[0])}" '
               f'height="{_n(box[3] - box[1])}" fill="none"/>')
    _missing_bands(out, "", runs, xs, box)
    _axes(out, box, xs, ys, xticks, yticks, "epoch" if not (error_series or psnr_series) else "", ytitle,
          yminor=yminor)
    for ident, _, vals, colour, dash in loss_series:
        _curve(out, ident, vals, xs, ys, colour, dash)
    if not finite:
        out.append(_text((box[0] + box[2]) / 2, (box[1] + box[3]) / 2, "no finite loss", 14, "middle", _MUTED,
                         extra=' id="no-data"'))

    # Error panel.
    if error_series:
        box = panels[1][1]
        xs = _Scale(xlo, xhi, box[0], box[2])
        ys = _Scale(0.0, ehi, box[3], box[1])
        out.append(f'<rect id="errors-plot-area" x="{_n(box[0])}" y="{_n(box[1])}" '
                   f'width="{_n(box[2] - box[0])}" height="{_n(box[3] - box[1])}" fill="none"/>')
        missing = set()
        for s in error_series:
            missing.update(_runs_of_missing(s[2]))
        _missing_bands(out, "errors-", sorted(missing), xs, box)
        _axes(out, box, xs, ys, xticks, err_ticks, "epoch", "error (%)", prefix="errors-")
        out.append(f'<defs><clipPath id="errors-clip"><rect x="{_n(box[0])}" y="{_n(box[1] - 3)}" '
                   f'width="{_n(box[2] - box[0])}" height="{_n(box[3] - box[1] + 6)}"/></clipPath></defs>')
        out.append('<g clip-path="url(#errors-clip)">')
        for ident, _, vals, colour, dash in error_series:
            _curve(out, ident, [None if v is None else 100 * v for v in vals], xs, ys, colour, dash)
        out.append("</g>")
        if clip_note:
            out.append(_text(box[2] - 6, box[1] + 16, clip_note, 12, "end", _MUTED, extra=' id="errors-clipped"'))

    # PSNR panel (the denoiser): the validation PSNR per epoch, and the noisy input's as a dotted line.
    if psnr_series:
        box = panels[1][1]
        xs = _Scale(xlo, xhi, box[0], box[2])
        ys = _Scale(plo, phi, box[3], box[1])
        out.append(f'<rect id="psnr-plot-area" x="{_n(box[0])}" y="{_n(box[1])}" '
                   f'width="{_n(box[2] - box[0])}" height="{_n(box[3] - box[1])}" fill="none"/>')
        _missing_bands(out, "psnr-", _runs_of_missing(psnr_series[0][2]), xs, box)
        _axes(out, box, xs, ys, xticks, err_ticks, "epoch", "PSNR (dB)", prefix="psnr-")
        if noisy is not None:
            out.append(f'<line id="noisy-psnr" x1="{_n(box[0])}" x2="{_n(box[2])}" y1="{_n(ys(noisy))}" '
                       f'y2="{_n(ys(noisy))}" stroke="{_MUTED}" stroke-width="1.5" stroke-dasharray="2 3"/>')
        for ident, _, vals, colour, dash in psnr_series:
            _curve(out, ident, vals, xs, ys, colour, dash)
    return _document(width, height, title, out)


# --- decision regions --------------------------------------------------------------------------

def _rows(points: Any, what: str) -> List[Tuple[float, float]]:
    if hasattr(points, "tolist") and not isinstance(points, list):
        points = points.tolist()
    if not isinstance(points, (list, tuple)):
        raise TypeError(f"boundary_svg: {what} must be a list of [x, y] rows, got {type(points).__name__}")
    out = []
    for i, p in enumerate(points):
        if not isinstance(p, (list, tuple)) or len(p) != 2 or not all(_is_number(c) for c in p):
            raise ValueError(f"boundary_svg: {what}[{i}] must be a row [x, y] of two numbers, got {p!r}")
        x, y = float(p[0]), float(p[1])
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"boundary_svg: {what}[{i}] is not finite: {p!r}")
        out.append((x, y))
    return out


def _labels(labels: Any, n: int, what: str, classes: int = 2, missing: bool = False) -> List[Optional[int]]:
    """``labels`` as ints in ``[0, classes)``; with ``missing``, None entries are kept (no prediction)."""
    if hasattr(labels, "tolist") and not isinstance(labels, list):
        labels = labels.tolist()
    if not isinstance(labels, (list, tuple)):
        raise TypeError(f"boundary_svg: {what} must be a list of class labels, got {type(labels).__name__}")
    if len(labels) != n:
        raise ValueError(f"boundary_svg: {n} points but {len(labels)} {what}")
    out: List[Optional[int]] = []
    for i, v in enumerate(labels):
        if v is None and missing:
            out.append(None)
            continue
        if not _is_number(v) or v != int(v) or not 0 <= v < classes:
            raise ValueError(f"boundary_svg: {what}[{i}] must be an integer class in [0, {classes}) "
                             f"(classes={classes}), got {v!r}")
        out.append(int(v))
    return out


# Okabe-Ito's eight colours, in this order, for classes 0, 1, 2, ... (cycling after 8).
_PALETTE = (_BLUE, _VERMILLION, _GREEN, _ORANGE, "#56B4E9", "#CC79A7", "#F0E442", "#000000")


def _class_colour(k: int) -> str:
    return _PALETTE[k % len(_PALETTE)]


def _region_colour(k: int) -> str:
    """A light tint of the class colour, cycling with it after 8 classes."""
    return _REGION_COLOURS[k % len(_REGION_COLOURS)]


def _triangle(x: float, y: float, r: float, down: bool = False) -> str:
    h = r * 1.45 * (-1 if down else 1)
    return f"{_n(x)},{_n(y - h)} {_n(x + abs(h) * 0.866)},{_n(y + h * 0.5)} {_n(x - abs(h) * 0.866)},{_n(y + h * 0.5)}"


def _marker(k: int, x: float, y: float, r: float, extra: str = "") -> str:
    """The marker of class ``k`` at (x, y): a circle, triangle, square, diamond or downward
    triangle, cycling with the class."""
    shape = k % 5
    if shape == 0:
        return f'<circle cx="{_n(x)}" cy="{_n(y)}" r="{_n(r)}"{extra}/>'
    if shape == 1:
        return f'<polygon points="{_triangle(x, y, r)}"{extra}/>'
    if shape == 2:
        a = r * 0.9
        return f'<rect x="{_n(x - a)}" y="{_n(y - a)}" width="{_n(2 * a)}" height="{_n(2 * a)}"{extra}/>'
    if shape == 3:
        a = r * 1.3
        corners = f"{_n(x)},{_n(y - a)} {_n(x + a)},{_n(y)} {_n(x)},{_n(y + a)} {_n(x - a)},{_n(y)}"
        return f'<polygon points="{corners}"{extra}/>'
    return f'<polygon points="{_triangle(x, y, r, down=True)}"{extra}/>'


UNIT_MARGIN = 0.03
"""How far the default rectangle of points in [0, 1]² reaches beyond it on each side, so that
points on its edges are drawn whole."""


def _domain(pts: List[Tuple[float, float]], domain: Any) -> Tuple[float, float, float, float]:
    """``(x0, x1, y0, y1)``: the given ``domain``, checked; [0, 1]² widened by :data:`UNIT_MARGIN`
    on each side when every point lies in it; else the points' range, widened by 5% on each
    side, and then the shorter axis widened about its middle to the longer one's length, so
    that one unit is as long on both axes (the plot area is square)."""
    if domain is not None:
        try:
            x0, x1, y0, y1 = (float(v) for v in domain)
        except (TypeError, ValueError):
            raise ValueError(f"boundary_svg: domain must be four numbers (x0, x1, y0, y1), got {domain!r}") from None
        if not all(math.isfinite(v) and abs(v) <= 1e300 for v in (x0, x1, y0, y1)) or not (x0 < x1 and y0 < y1):
            raise ValueError(f"boundary_svg: domain must be finite, with x0 < x1 and y0 < y1, got {domain!r}")
        return x0, x1, y0, y1
    if all(0.0 <= x <= 1.0 and 0.0 <= y <= 1.0 for x, y in pts):
        return -UNIT_MARGIN, 1.0 + UNIT_MARGIN, -UNIT_MARGIN, 1.0 + UNIT_MARGIN
    bounds = []
    for axis in (0, 1):
        lo, hi = min(p[axis] for p in pts), max(p[axis] for p in pts)
        pad = 0.05 * (hi - lo) if hi > lo else max(abs(lo) * 0.05, 0.5)
        bounds.append((lo - pad, hi + pad))
    length = max(hi - lo for lo, hi in bounds)
    equal = []
    for lo, hi in bounds:
        widen = (length - (hi - lo)) / 2
        equal += [lo - widen, hi + widen]
    return equal[0], equal[1], equal[2], equal[3]


def _ticks_within(lo: float, hi: float) -> list:
    """Labelled ticks of a linear axis that lie in [lo, hi]."""
    every = nice_ticks(lo, hi, 8)
    step = every[1] - every[0] if len(every) > 1 else 1.0
    return [(t, _tick_label(t, step)) for t in every if lo - 1e-9 * (hi - lo) <= t <= hi + 1e-9 * (hi - lo)]


def boundary_svg(predict: Callable[[List[List[float]]], Any], points: Any, labels: Any, *,
                 error: Optional[float] = None, error_label: str = "test error",
                 title: str = "Decision regions", grid: int = 100, circle: bool = True,
                 classes: int = 2, domain: Any = None, class_names: Optional[Sequence[str]] = None) -> str:
    """The decision regions of a model of two inputs over a rectangle, with labelled points, as SVG text.

    ``predict`` maps a list of ``[x, y]`` rows to their predicted classes (ints in
    ``[0, classes)``, or None where the model gives no prediction, such as NaN
    outputs; a list or anything with ``tolist()``). It is called once, on the
    centres of a ``grid`` × ``grid`` lattice of cells followed by the points; each
    grid row's runs of equal classes become one ``<rect>`` each, so the file stays
    small (about 100 KB for the default grid and 1,000 points). Cells with no
    prediction are grey. For a model of the seed task, where inputs are
    standardized, ``predict`` is for example::

        lambda rows: fw.argmax_rows(model(task.standardize(fw, fw.tensor(rows))))

    ``points`` (``[x, y]`` rows, or a tensor) are drawn with their true ``labels``
    (ints in ``[0, classes)``; None: points without labels, drawn grey), each
    class in its colour of the Okabe-Ito palette and its marker shape (circle,
    triangle, square, diamond, ...): class 0 blue circles, class 1 vermillion
    triangles. Points whose prediction differs from their label (or that have no
    prediction) are circled in black (``id="misclassified"``). The rectangle is
    ``domain`` ``(x0, x1, y0, y1)``; by default [0, 1]² with a margin of
    :data:`UNIT_MARGIN` when every point lies in it, else the points' range, widened
    by 5% on each side and made as long on both axes, so that both scales are equal. The seed
    task's true boundary, the circle of centre :data:`DISK_CENTER` and radius
    :data:`DISK_RADIUS`, is drawn as a dashed outline unless ``circle`` is false.
    ``class_names`` name the classes in the legend (by default "outside" and
    "inside" with the circle). ``error`` (a fraction) is appended to the title as
    "(``error_label`` 2.40%)". Raises ``ValueError`` for points that are not
    finite pairs, labels or predictions out of range, or predictions of the wrong
    length.
    """
    if not callable(predict):
        raise TypeError(f"boundary_svg: predict must be callable, got {type(predict).__name__}")
    if isinstance(grid, bool) or not isinstance(grid, numbers.Integral) or not 2 <= grid <= 1000:
        raise ValueError(f"boundary_svg: grid must be an integer in [2, 1000], got {grid!r}")
    if isinstance(classes, bool) or not isinstance(classes, numbers.Integral) or not 1 <= classes <= 1000:
        raise ValueError(f"boundary_svg: classes must be an integer in [1, 1000], got {classes!r}")
    if error is not None and (not _is_number(error) or not math.isfinite(error)):
        raise ValueError(f"boundary_svg: error must be a finite number or None, got {error!r}")
    pts = _rows(points, "points")
    labs = _labels(labels, len(pts), "labels", classes) if labels is not None else [None] * len(pts)
    x0, x1, y0, y1 = _domain(pts, domain)
    centres = [[x0 + (i + 0.5) / grid * (x1 - x0), y0 + (j + 0.5) / grid * (y1 - y0)]
               for j in range(grid) for i in range(grid)]
    everything = _labels(predict(centres + [[x, y] for x, y in pts]), grid * grid + len(pts), "predictions",
                         classes, missing=True)
    pred, at_points = everything[:grid * grid], everything[grid * grid:]
    if class_names is None:
        class_names = ("outside", "inside") if circle and classes == 2 else ()
    names = [f"{k} ({class_names[k]})" if k < len(class_names) else str(k) for k in range(classes)]

    size, left, top = 500.0, 70.0, 64.0
    box = (left, top, left + size, top + size)
    xs = _Scale(x0, x1, box[0], box[2])
    ys = _Scale(y0, y1, box[3], box[1])
    full_title = str(title) + (f" ({error_label} {_percent(error)})" if error is not None else "")
    width, height = 780, int(max(box[3] + 56, top + 14 + 22 * (2 * classes + 6)))
    out: List[str] = []
    out.append(_text(box[0] + size / 2, 34, full_title, 18, "middle", extra=' font-weight="bold" id="plot-title"'))
    out.append('<defs><clipPath id="plot-clip">'
               f'<rect x="{_n(box[0])}" y="{_n(box[1])}" width="{_n(size)}" height="{_n(size)}"/>'
               "</clipPath></defs>")

    # Regions: per grid row, one rect per run of equal predictions, grouped by class.
    cell = size / grid
    rects: dict = {c: [] for c in [*range(classes), None]}
    for j in range(grid):
        row = pred[j * grid:(j + 1) * grid]
        y_top = box[3] - (j + 1) * cell
        i = 0
        while i < grid:
            k = i
            while k < grid and row[k] == row[i]:
                k += 1
            rects[row[i]].append(f'<rect x="{_n(box[0] + i * cell)}" y="{_n(y_top)}" '
                                 f'width="{_n((k - i) * cell)}" height="{_n(cell)}"/>')
            i = k
    out.append('<g id="regions" shape-rendering="crispEdges">')
    for c in range(classes):
        out.append(f'<g id="region-{c}" fill="{_region_colour(c)}">')
        out.extend(rects[c])
        out.append("</g>")
    if rects[None]:
        out.append(f'<g id="region-none" fill="{_MISSING}">')
        out.extend(rects[None])
        out.append("</g>")
    out.append("</g>")
    _axes(out, box, xs, ys, _ticks_within(x0, x1), _ticks_within(y0, y1), "x", "y")
    out.append(f'<rect id="plot-area" x="{_n(box[0])}" y="{_n(box[1])}" width="{_n(size)}" '
               f'height="{_n(size)}" fill="none" stroke="{_INK}" stroke-width="1"/>')
    if circle:
        cx, cy = DISK_CENTER
        rx, ry = DISK_RADIUS * size / (x1 - x0), DISK_RADIUS * size / (y1 - y0)
        shape = f'circle r="{_n(rx)}"' if _n(rx) == _n(ry) else f'ellipse rx="{_n(rx)}" ry="{_n(ry)}"'
        out.append(f'<{shape} id="true-circle" cx="{_n(xs(cx))}" cy="{_n(ys(cy))}" '
                   f'fill="none" stroke="{_INK}" stroke-width="2" stroke-dasharray="8 5"/>')

    # Points: each class in its own group, colour and shape; then the misclassified ones circled.
    r = 3.2 if len(pts) <= 2000 else 2.2
    out.append('<g id="points" clip-path="url(#plot-clip)" stroke="#FFFFFF" stroke-width="0.7">')
    for c in range(classes):
        out.append(f'<g id="points-{c}" fill="{_class_colour(c)}">')
        out.extend(_marker(c, xs(x), ys(y), r) for (x, y), lab in zip(pts, labs) if lab == c)
        out.append("</g>")
    if labels is None and pts:
        out.append(f'<g id="points-unlabelled" fill="{_MUTED}">')
        out.extend(f'<circle cx="{_n(xs(x))}" cy="{_n(ys(y))}" r="{_n(r)}"/>' for x, y in pts)
        out.append("</g>")
    out.append("</g>")
    wrong = [(x, y) for (x, y), lab, p in zip(pts, labs, at_points) if lab is not None and p != lab]
    out.append(f'<g id="misclassified" clip-path="url(#plot-clip)" fill="none" stroke="{_INK}" stroke-width="1.3">')
    out.extend(f'<circle cx="{_n(xs(x))}" cy="{_n(ys(y))}" r="{_n(r + 3)}"/>' for x, y in wrong)
    out.append("</g>")

    # Legend, in a column right of the plot.
    lx, ly = box[2] + 28, box[1] + 14
    out.append('<g id="legend">')
    entries: list = [("region", c, f"predicted {c}") for c in range(classes)]
    if rects[None]:
        entries.append(("region", None, "no prediction (NaN/inf)"))
    if labels is not None:
        entries += [("point", c, f"label {names[c]}") for c in range(classes)]
    else:
        entries.append(("point", None, "data point (no label)"))
    if circle:
        entries.append(("circle", None, "true boundary"))
    if labels is not None:
        entries.append(("wrong", None, f"misclassified ({len(wrong)})"))
    first_point = next(k for k, e in enumerate(entries) if e[0] == "point")
    heading = {0: "regions", first_point: "points"}
    for k, (kind, c, label) in enumerate(entries):
        if k in heading:
            if k:
                ly += 8
            out.append(_text(lx, ly, heading[k], 12, fill=_MUTED, extra=' font-weight="bold"'))
            ly += 20
        elif kind in ("circle", "wrong"):
            ly += 8
        out.append('<g class="legend-entry">')
        if kind == "region":
            fill = _region_colour(c) if c is not None else _MISSING
            out.append(f'<rect x="{_n(lx)}" y="{_n(ly - 11)}" width="22" height="14" '
                       f'fill="{fill}" stroke="{_MUTED}" stroke-width="0.5"/>')
        elif kind == "point" and c is not None:
            out.append(_marker(c, lx + 11, ly - 4, 4.5, f' fill="{_class_colour(c)}"'))
        elif kind == "point":
            out.append(f'<circle cx="{_n(lx + 11)}" cy="{_n(ly - 4)}" r="4.5" fill="{_MUTED}"/>')
        elif kind == "wrong":
            out.append(f'<circle cx="{_n(lx + 11)}" cy="{_n(ly - 4)}" r="6.5" fill="none" stroke="{_INK}" '
                       'stroke-width="1.3"/>')
        else:
            out.append(f'<line x1="{_n(lx)}" y1="{_n(ly - 4)}" x2="{_n(lx + 22)}" y2="{_n(ly - 4)}" '
                       f'stroke="{_INK}" stroke-width="2" stroke-dasharray="8 5"/>')
        out.append(_text(lx + 30, ly, label, 12))
        out.append("</g>")
        ly += 22
    out.append(_text(lx, ly + 12, f"{len(pts)} points, grid {grid}\u00d7{grid}", 11, fill=_MUTED))
    out.append("</g>")
    return _document(width, height, full_title, out)


# --- sweeps -------------------------------------------------------------------------------------

_SERIES_STYLES = ((_BLUE, ""), (_VERMILLION, "7 4"), (_GREEN, "2 3"), (_ORANGE, "10 3 2 3"), (_INK, "4 4"),
                  (_MUTED, "1 3"))


def sweep_svg(summary: Sequence[Mapping[str, Any]], title: Optional[str] = None,
              metric: str = "test error") -> str:
    """The error of a sweep against each swept setting, with the spread over seeds, as SVG text.

    ``summary`` is :func:`pyfw.sweeps.summarize`'s list: per setting its ``setting``
    dict and the ``mean``, ``best`` and ``worst`` over its seeds. There is one panel
    per swept key: its values along the x axis (in order of appearance, evenly
    spaced), the error in percent up the y axis. Each combination of the other
    keys is one series: a marker at the mean, joined across the values, and a
    vertical bar from the best to the worst seed; the series stand side by side
    around each value, a few pixels apart. Panels have ids ``sweep-KEY``.
    """
    rows = list(summary)
    if not rows:
        raise ValueError("sweep_svg: the summary is empty")
    keys: list = []
    for row in rows:
        for k in row["setting"]:
            if k not in keys:
                keys.append(k)
    if not keys:
        keys = [""]  # no swept setting: one panel with one point
    title = "Sweep" if title is None else str(title)
    width, panel_h = 760, 240
    worst = max(100 * float(r["worst"]) for r in rows)
    _, yhi, yticks = _linear_axis(0.0, max(worst, 1.0), 5)
    left = 24 + _y_label_room(yticks)
    right = width - 28
    out: List[str] = [_text(width / 2, 30, title, 18, "middle", extra=' font-weight="bold" id="plot-title"')]
    seeds = sorted({len(r.get("seeds", ())) or int(r.get("runs", 0)) for r in rows})
    out.append(_text(width / 2, 50, f"mean {metric} over {'/'.join(str(n) for n in seeds)} seeds; bars: best to "
                     "worst seed", 13, "middle", _MUTED, extra=' class="subtitle"'))
    y = 70
    for key in keys:
        values: list = []
        series: dict = {}
        for row in rows:
            setting = row["setting"]
            v = setting.get(key, "") if key else ""
            if v not in values:
                values.append(v)
            other = " ".join(f"{k}={w}" for k, w in setting.items() if k != key) or metric
            series.setdefault(other, []).append((values.index(v), row))
        styles = {name: _SERIES_STYLES[i % len(_SERIES_STYLES)] for i, name in enumerate(series)}
        items = [("line", name, styles[name]) for name in series]
        ident = "sweep-" + re.sub(r"[^A-Za-z0-9_-]", "_", key or "base")
        bottom = y
        if len(series) > 1:
            at = len(out)
            bottom = _legend_row(out, left, y + 10, right, items)
            out[at] = f'<g id="{ident}-legend">'  # one legend per panel, each with its own id
        box = (left, bottom + 14, right, bottom + 14 + panel_h)
        n = len(values)
        xs = _Scale(-0.5, n - 0.5, box[0], box[2])
        ys = _Scale(0.0, yhi, box[3], box[1])
        out.append(f'<g id="{ident}">')
        out.append(f'<rect class="plot-area" x="{_n(box[0])}" y="{_n(box[1])}" width="{_n(box[2] - box[0])}" '
                   f'height="{_n(box[3] - box[1])}" fill="none"/>')
        xticks = [(float(i), str(v)) for i, v in enumerate(values)]
        _axes(out, box, xs, ys, xticks, yticks, key or "setting", f"{metric} (%)", prefix=ident + "-")
        # Series side by side around each value, so that no bar hides another.
        step = min(8.0, 0.3 * (box[2] - box[0]) / n / len(series))
        for j, (name, points) in enumerate(series.items()):
            colour, dash = styles[name]
            shift = (j - (len(series) - 1) / 2) * step
            points.sort(key=lambda p: p[0])
            d = " L".join(f"{_n(xs(i) + shift)} {_n(ys(100 * float(r['mean'])))}" for i, r in points)
            da = f' stroke-dasharray="{dash}"' if dash else ""
            out.append(f'<g class="series"><path d="M{d}" fill="none" stroke="{colour}" stroke-width="2"{da}/>')
            for i, r in points:
                x = xs(i) + shift
                out.append(f'<line class="spread" x1="{_n(x)}" y1="{_n(ys(100 * float(r["best"])))}" x2="{_n(x)}" '
                           f'y2="{_n(ys(100 * float(r["worst"])))}" stroke="{colour}" stroke-width="1.5"/>')
                out.append(f'<circle class="mean" cx="{_n(x)}" cy="{_n(ys(100 * float(r["mean"])))}" r="4" '
                           f'fill="{colour}"/>')
            out.append("</g>")
        out.append("</g>")
        y = box[3] + 56
    return _document(width, int(y), title, out)


# --- images ------------------------------------------------------------------------------------

def _png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, and the CRC-32 of type and data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _byte(v: float) -> int:
    """A value in [0, 1] as a byte 0..255, rounded to nearest; out of range clamped, NaN as 0."""
    if not v > 0.0:
        return 0
    return 255 if v >= 1.0 else int(v * 255.0 + 0.5)


def _planes(image: Any, what: str) -> list:
    """``image`` (C x H x W, C = 1 or 3: a tensor of either backend or nested lists) as a list of C
    planes of H rows of W floats, checked."""
    if hasattr(image, "tolist") and not isinstance(image, list):
        image = image.tolist()
    ok = isinstance(image, list) and len(image) in (1, 3) and all(isinstance(p, list) and p for p in image)
    if ok:
        h, w = len(image[0]), len(image[0][0]) if isinstance(image[0][0], list) else 0
        ok = w > 0 and all(len(p) == h and all(isinstance(r, list) and len(r) == w and all(map(_is_number, r))
                                               for r in p) for p in image)
    if not ok:
        raise ValueError(f"{what} must be an image of 1 or 3 channels (C x H x W numbers)")
    return image


def png_bytes(image: Any) -> bytes:
    """``image`` (C x H x W values in [0, 1], C = 1 for grey or 3 for RGB; a tensor of either
    backend or nested lists) as the bytes of a PNG file: 8 bits per channel, no interlace, each
    row with filter 0 (none), compressed with ``zlib``. Values are clamped to [0, 1] and rounded
    to the nearest of 0..255 (NaN as 0)."""
    planes = _planes(image, "png_bytes: image")
    c, h, w = len(planes), len(planes[0]), len(planes[0][0])
    raw = bytearray()
    for y in range(h):
        raw.append(0)  # filter type 0: the row as it is
        rows = [p[y] for p in planes]
        for x in range(w):
            raw.extend(_byte(r[x]) for r in rows)
    header = struct.pack(">IIBBBBB", w, h, 8, 2 if c == 3 else 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(bytes(raw), 9))
            + _png_chunk(b"IEND", b""))


def images_svg(rows: Sequence[Sequence[Any]], columns: Sequence[str], title: str = "Denoiser",
               captions: Optional[Sequence[Sequence[str]]] = None, subtitle: str = "", cell: int = 128) -> str:
    """A grid of images as SVG: one row per entry of ``rows``, each a list of images (C x H x W
    values in [0, 1], see :func:`png_bytes`; None leaves the cell empty) under the headers
    ``columns``. Each image is embedded as ``data:image/png;base64,...`` and drawn ``cell``
    pixels wide (pixels kept sharp); ``captions[i][j]``, if given, is written under image ``j``
    of row ``i``. The grid is the element ``id="images"``; each image has ``class="image"``."""
    if not rows:
        raise ValueError("images_svg: no images to draw")
    if any(len(r) != len(columns) for r in rows):
        raise ValueError(f"images_svg: every row needs {len(columns)} images, one per column")
    pad, gap, top, caption_h = 20, 12, 76, 18 if captions else 0
    width = 2 * pad + len(columns) * cell + (len(columns) - 1) * gap
    width = max(width, int(2 * pad + _text_width(subtitle, 12)) + 1)
    height = top + len(rows) * (cell + caption_h + gap) + pad
    out = [_text(pad, 24, title, 16, extra=' font-weight="bold"')]
    if subtitle:
        out.append(_text(pad, 42, subtitle, 12, fill=_MUTED))
    for j, name in enumerate(columns):
        out.append(_text(pad + j * (cell + gap) + cell / 2, top - 8, name, 12, anchor="middle"))
    out.append('<g id="images">')
    for i, row in enumerate(rows):
        y = top + i * (cell + caption_h + gap)
        for j, image in enumerate(row):
            x = pad + j * (cell + gap)
            if image is None:
                continue
            planes = _planes(image, f"images_svg: row {i}, image {j}")
            h, w = len(planes[0]), len(planes[0][0])
            ih = cell * h / w
            data = base64.b64encode(png_bytes(planes)).decode("ascii")
            out.append(f'<image class="image" x="{_n(x)}" y="{_n(y)}" width="{cell}" height="{_n(ih)}" '
                       'preserveAspectRatio="none" style="image-rendering:pixelated" '
                       'xmlns:xlink="http://www.w3.org/1999/xlink" '
                       f'xlink:href="data:image/png;base64,{data}"/>')
            if captions:
                out.append(_text(x + cell / 2, y + ih + 14, captions[i][j], 11, anchor="middle", fill=_MUTED))
    out.append("</g>")
    return _document(width, height, title, out)


# --- files -------------------------------------------------------------------------------------

def write_svg(path: str, svg: str) -> None:
    """Write the SVG text ``svg`` to ``path`` atomically (:func:`pyfw.io.write_atomic`).

    ``svg`` is parsed first: text that is not well-formed XML with an ``<svg>``
    root gets a ``ValueError`` and nothing is written.
    """
    if not isinstance(svg, str):
        raise TypeError(f"write_svg: svg must be a str, got {type(svg).__name__}")
    try:
        root = ET.fromstring(svg)
    except ET.ParseError as e:
        raise ValueError(f"write_svg: not well-formed SVG for {path}: {e}") from None
    if root.tag not in ("svg", "{http://www.w3.org/2000/svg}svg"):
        raise ValueError(f"write_svg: the root element is <{root.tag}>, not <svg>, for {path}")
    io.write_atomic(path, svg)
