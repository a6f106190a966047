"""Metrics, written once and shared by both backends (they read tensors through ``tolist()``).

Every classification metric reads the predicted class of each row of a model's
output the same way:

* two or more columns: the class is the column of the largest value
  (:func:`argmax_rows`; the first one on ties, as ``torch.argmax``);
* one column: the model is a binary classifier, and the caller says what the
  column holds with ``binary=``: ``"logit"`` (a score such as
  ``BCEWithLogitsLoss`` trains; class 1 when it is above 0) or
  ``"probability"`` (the output of a ``Sigmoid``, as ``BCELoss`` trains; class 1
  when it is above 0.5). There is no default, because a wrong guess gives a
  plausible but wrong number; a one-column output without ``binary=`` is a
  ``ValueError``.

Labels are a list of class indices (ints), or a 2-D tensor or nested list:
one-hot rows of the output's width (their argmax is the label), or for a
one-column output a column of 0.0 / 1.0 targets.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Optional

BINARY = {"logit": 0.0, "probability": 0.5}
"""The readings of a one-column output (``binary=``), with the threshold above which a row is class 1."""


def argmax_rows(output: Any) -> list:
    """The index of the largest value of each row; the first one on ties, as ``torch.argmax``."""
    rows = output.tolist() if hasattr(output, "tolist") else output
    if not isinstance(rows, list) or not rows or not all(isinstance(r, list) and r for r in rows):
        raise ValueError("argmax_rows: expected a non-empty 2-D tensor or nested list")
    out = []
    for r in rows:
        best, arg = r[0], 0
        for j in range(1, len(r)):
            if r[j] > best:
                best, arg = r[j], j
        out.append(arg)
    return out


def predicted_classes(output: Any, binary: Optional[str] = None, who: str = "predicted_classes") -> tuple:
    """``(classes, k)``: the predicted class of each row of ``output`` and the number of classes ``k``.

    ``output`` is a 2-D tensor of either backend or a nested list. With two or more
    columns the class is the row's argmax and ``k`` the number of columns; with one
    column ``binary`` (``"logit"`` or ``"probability"``, see the module docstring)
    sets the threshold and ``k`` is 2. ``ValueError`` when ``binary`` is missing for
    one column, or given for several.
    """
    rows = output.tolist() if hasattr(output, "tolist") else output
    if not isinstance(rows, list) or not rows or not all(isinstance(r, list) and r for r in rows):
        raise ValueError(f"{who}: expected a non-empty 2-D tensor or nested list as the output")
    width = len(rows[0])
    if binary is not None and binary not in BINARY:
        raise ValueError(f"{who}: binary must be 'logit' or 'probability', got {binary!r}")
    if width != 1:
        if binary is not None:
            raise ValueError(f"{who}: binary={binary!r} reads a one-column output, but this output has "
                             f"{width} columns (its class is the argmax of each row)")
        return argmax_rows(rows), width
    if binary is None:
        raise ValueError(f"{who}: the output has one column, so say what it holds: binary='logit' "
                         "(class 1 above 0, e.g. for BCEWithLogitsLoss) or binary='probability' "
                         "(class 1 above 0.5, after a Sigmoid)")
    threshold = BINARY[binary]
    return [1 if r[0] > threshold else 0 for r in rows], 2


def _labels(labels: Any, n: int, k: int, who: str) -> list:
    """``labels`` as a list of ``n`` ints in ``[0, k)``: class indices, one-hot rows, or a 0/1 column."""
    if hasattr(labels, "tolist") and not isinstance(labels, list):
        labels = labels.tolist()
    if isinstance(labels, (list, tuple)) and labels and isinstance(labels[0], list):
        if k == 2 and len(labels[0]) == 1:  # a column of 0.0 / 1.0 targets for a binary classifier
            column = []
            for i, r in enumerate(labels):
                if len(r) != 1 or isinstance(r[0], bool) or r[0] not in (0, 1):
                    raise ValueError(f"{who}: labels[{i}] = {r!r:.40} is not [0.0] or [1.0]")
                column.append(int(r[0]))
            labels = column
        else:
            labels = argmax_rows(labels)
    if not isinstance(labels, (list, tuple)) or len(labels) != n:
        got = len(labels) if isinstance(labels, (list, tuple)) else type(labels).__name__
        raise ValueError(f"{who}: {n} output rows but {got} labels")
    for i, t in enumerate(labels):
        if isinstance(t, bool) or not isinstance(t, numbers.Integral):
            raise TypeError(f"{who}: labels[{i}] is a {type(t).__name__}, not an int")
        if not 0 <= t < k:
            raise ValueError(f"{who}: labels[{i}] = {t} is not a class of the output (0 to {k - 1})")
    return [int(t) for t in labels]


def error_rate(output: Any, labels: Any, binary: Optional[str] = None) -> float:
    """The fraction of rows of ``output`` whose predicted class differs from the label.

    ``labels`` is a list of ints, or a one-hot 2-D tensor of the same shape as ``output``.
    A one-column output needs ``binary="logit"`` or ``binary="probability"`` (see the
    module docstring). ``wrong / n``, so ``error_rate + accuracy`` may differ from 1 in
    the last bit.
    """
    pred, k = predicted_classes(output, binary, "error_rate")
    truth = _labels(labels, len(pred), k, "error_rate")
    wrong = 0
    for p, t in zip(pred, truth):
        if p != t:
            wrong += 1
    return wrong / len(pred)


def accuracy(output: Any, labels: Any, binary: Optional[str] = None) -> float:
    """The fraction of rows of ``output`` whose predicted class is the label: ``correct / n``.

    The arguments are those of :func:`error_rate`.
    """
    pred, k = predicted_classes(output, binary, "accuracy")
    truth = _labels(labels, len(pred), k, "accuracy")
    right = 0
    for p, t in zip(pred, truth):
        if p == t:
            right += 1
    return right / len(pred)


def confusion_matrix(output: Any, labels: Any, binary: Optional[str] = None) -> list:
    """Counts of (true class, predicted class) pairs, as a ``k x k`` list of lists of ints.

    Row ``i`` is the true class ``i`` and column ``j`` the predicted class ``j``
    (scikit-learn's layout), so the diagonal counts the correct rows and row ``i``
    sums to the number of labels ``i``. ``k`` is the number of output columns, or 2
    for a one-column output read with ``binary=``. The arguments are those of
    :func:`error_rate`; every label must be a class of the output.
    """
    pred, k = predicted_classes(output, binary, "confusion_matrix")
    truth = _labels(labels, len(pred), k, "confusion_matrix")
    counts = [[0] * k for _ in range(k)]
    for p, t in zip(pred, truth):
        counts[t][p] += 1
    return counts


def _flat_values(v: Any, who: str, what: str) -> tuple:
    """``(values, shape)`` of a tensor of either backend or a rectangular nested list, row-major."""
    from .tensor import _parse
    try:
        rows, shape = _parse(v, f"{who}: {what}", any_rank=True)
    except TypeError as e:
        raise TypeError(str(e)) from None
    return [x for r in rows for x in r], tuple(shape)


def psnr(output: Any, target: Any, data_range: float = 1.0, *, max_val: Optional[float] = None) -> float:
    """The peak signal-to-noise ratio of ``output`` against ``target``, in dB.

    ``mse`` is ``MSELoss``'s mean (docs/NUMERICS.md, "PSNR"): the fold, starting at
    ``0.0``, of ``e * e`` with ``e = output - target`` over all elements in row-major
    order, divided by their number; then ``10.0 * log10((data_range * data_range) / mse)``,
    ``inf`` when ``mse`` is 0 (``-inf`` when the ratio underflows to 0). ``output`` and
    ``target`` are tensors of either backend or nested lists of one shape; ``data_range``
    (``max_val`` is the same argument under another name) is the span of the values, a
    positive finite number.
    """
    who = "psnr"
    if max_val is not None:
        data_range = max_val
    if isinstance(data_range, bool) or not isinstance(data_range, numbers.Real):
        raise TypeError(f"{who}: data_range must be a number, got {type(data_range).__name__}")
    span = float(data_range)
    if not (math.isfinite(span) and span > 0.0):
        raise ValueError(f"{who}: data_range must be a positive finite number, got {data_range!r}")
    out, out_shape = _flat_values(output, who, "output")
    tgt, tgt_shape = _flat_values(target, who, "target")
    if out_shape != tgt_shape:
        raise ValueError(f"{who}: output has shape {out_shape}, target {tgt_shape}; they must match")
    acc = 0.0
    for o, t in zip(out, tgt):
        e = o - t
        acc = acc + e * e
    mse = acc / float(len(out))
    if mse == 0.0:
        return math.inf
    ratio = (span * span) / mse
    return -math.inf if ratio == 0.0 else 10.0 * math.log10(ratio)
