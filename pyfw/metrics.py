"""Metrics, written once and shared by both backends (they read tensors through ``tolist()``)."""

from __future__ import annotations

import numbers
from typing import Any


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


def error_rate(output: Any, labels: Any) -> float:
    """The fraction of rows of ``output`` whose argmax differs from the label.

    ``labels`` is a list of ints, or a one-hot 2-D tensor of the same shape as ``output``.
    """
    pred = argmax_rows(output)
    if hasattr(labels, "tolist") and not isinstance(labels, list):
        labels = labels.tolist()
    if labels and isinstance(labels[0], list):
        labels = argmax_rows(labels)
    if not isinstance(labels, (list, tuple)) or len(labels) != len(pred):
        n = len(labels) if isinstance(labels, (list, tuple)) else type(labels).__name__
        raise ValueError(f"error_rate: {len(pred)} output rows but {n} labels")
    wrong = 0
    for i, (p, t) in enumerate(zip(pred, labels)):
        if isinstance(t, bool) or not isinstance(t, numbers.Integral):
            raise TypeError(f"error_rate: labels[{i}] is a {type(t).__name__}, not an int")
        if p != t:
            wrong += 1
    return wrong / len(pred)
