"""Data sets: the disk task and one-hot encoding."""

from __future__ import annotations

import math
import numbers
from typing import Any, Optional

from .generator import Generator, _check_count, _resolve
from .tensor import Tensor

DISK_RADIUS2 = 1.0 / (2.0 * math.pi)


def disk(n: int, generator: Optional[Generator] = None) -> tuple:
    """``n`` points uniform in [0, 1]^2, labelled 1 inside the disk of centre
    (0.5, 0.5) and radius 1/sqrt(2 pi), else 0.

    Draws, point by point: ``x = random()``, then ``y = random()``. The label is
    ``1 if (x - 0.5)*(x - 0.5) + (y - 0.5)*(y - 0.5) < 1 / (2.0 * pi) else 0``.
    The disk covers half of the square. Returns ``(inputs, labels)``: an (n, 2)
    tensor and a list of ints.
    """
    n = _check_count(n, "data.disk")
    rnd = _resolve(generator).random
    rows, labels = [], []
    for _ in range(n):
        x = rnd()
        y = rnd()
        dx, dy = x - 0.5, y - 0.5
        rows.append([x, y])
        labels.append(1 if dx * dx + dy * dy < DISK_RADIUS2 else 0)
    return Tensor._wrap(rows, (n, 2)), labels


def one_hot(labels: Any, num_classes: int = -1) -> Tensor:
    """An (n, num_classes) tensor with 1.0 at each label's column and 0.0 elsewhere.

    ``num_classes=-1`` means ``max(labels) + 1``, as in torch.
    """
    if isinstance(labels, Tensor) or not isinstance(labels, (list, tuple)):
        raise TypeError(f"data.one_hot: labels must be a list of ints, got {type(labels).__name__}")
    if not labels:
        raise ValueError("data.one_hot: labels is empty")
    for i, v in enumerate(labels):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"data.one_hot: labels[{i}] is a {type(v).__name__}, not an int")
    for i, v in enumerate(labels):
        if v < 0:
            raise ValueError(f"data.one_hot: labels[{i}] = {v} is negative")
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral):
        raise TypeError(f"data.one_hot: num_classes must be an int, got {type(num_classes).__name__}")
    k = int(num_classes)
    if k == -1:
        k = int(max(labels)) + 1
    if k <= 0:
        raise ValueError(f"data.one_hot: num_classes must be positive, got {num_classes}")
    rows = []
    for i, v in enumerate(labels):
        if not 0 <= v < k:
            raise ValueError(f"data.one_hot: labels[{i}] = {v} is outside [0, {k})")
        row = [0.0] * k
        row[v] = 1.0
        rows.append(row)
    return Tensor._wrap(rows, (len(rows), k))
