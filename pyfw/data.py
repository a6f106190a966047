"""Data sets: the disk task and one-hot encoding; ``TensorDataset`` and ``DataLoader``,
written once for both backends."""

from __future__ import annotations

import math
import numbers
import sys
from typing import Any, Iterator, Optional

from .generator import Generator, _check_count, _resolve
from .tensor import Tensor, _items
from .training import backend_of, gather

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
    too_large = MemoryError(f"data.disk: n = {n} is too large to hold in memory")
    if n > sys.maxsize // 16:
        raise too_large
    try:  # both lists at once, so that an impossible n fails now, as in pyfw_rs
        rows: list = [None] * n
        labels = [0] * n
    except MemoryError:
        raise too_large from None
    for i in range(n):
        x = rnd()
        y = rnd()
        dx, dy = x - 0.5, y - 0.5
        rows[i] = [x, y]
        labels[i] = 1 if dx * dx + dy * dy < DISK_RADIUS2 else 0
    return Tensor._wrap(rows, (n, 2)), labels


def one_hot(labels: Any, num_classes: int = -1) -> Tensor:
    """An (n, num_classes) tensor with 1.0 at each label's column and 0.0 elsewhere.

    ``num_classes=-1`` means ``max(labels) + 1``, as in torch. Checked in this order:
    the labels' types, their signs, ``num_classes``, each label's range, then the size
    (``MemoryError`` naming both numbers).
    """
    if isinstance(labels, Tensor) or not isinstance(labels, (list, tuple)):
        raise TypeError(f"data.one_hot: labels must be a list of ints, got {type(labels).__name__}")
    labels = _items(labels)
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
    for i, v in enumerate(labels):
        if v >= k:
            raise ValueError(f"data.one_hot: labels[{i}] = {v} is outside [0, {k})")
    n = len(labels)
    too_large = MemoryError(f"data.one_hot: {n} labels x {k} classes do not fit in memory")
    if n * k > sys.maxsize // 8:
        raise too_large
    try:
        rows = []
        for v in labels:
            row = [0.0] * k
            row[v] = 1.0
            rows.append(row)
    except MemoryError:
        raise too_large from None
    return Tensor._wrap(rows, (n, k))


class TensorDataset:
    """Samples ``(x[i], t[i])``: ``x`` is a tensor of either backend, and every
    further item (usually one, the targets ``t``) is a tensor of the same backend
    or a list (class indices), all with the same number of rows.

    ``dataset[i]`` gives the row ``i`` of each item (a 1-D tensor, or the list's
    entry); ``dataset[idx]`` with a list of ints gathers those rows: tensors by
    ``item[idx]``, lists as lists. ``tensors`` holds the items.
    """

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise TypeError("TensorDataset: needs at least one tensor")
        first = tensors[0]
        try:
            fw = backend_of(first)
        except TypeError:
            fw = None
        if fw is None or not isinstance(first, fw.Tensor):
            raise TypeError(f"TensorDataset: the first item must be a pyfw or pyfw_rs Tensor, got "
                            f"{type(first).__name__}; build one with fw.tensor(...)")
        n = len(first)
        items = []
        for i, t in enumerate(tensors):
            if isinstance(t, fw.Tensor):
                items.append(t)
            elif isinstance(t, (list, tuple)):
                items.append(list(t))
            else:
                raise TypeError(f"TensorDataset: item {i} must be a {fw.__name__} Tensor (as item 0 is) "
                                f"or a list, got {type(t).__name__}")
            if len(t) != n:
                raise ValueError(f"TensorDataset: item {i} has {len(t)} rows, item 0 has {n}")
        self.tensors: tuple = tuple(items)

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, index: Any) -> tuple:
        if isinstance(index, list):
            return tuple(gather(t, index) for t in self.tensors)
        return tuple(t[index] for t in self.tensors)

    def __repr__(self) -> str:
        return f"TensorDataset({len(self)} samples, {len(self.tensors)} items)"


class DataLoader:
    """Mini-batches of a dataset: iterating yields ``dataset[idx]`` (for a
    ``TensorDataset``, the tuple ``(xb, tb)``) for consecutive slices ``idx`` of an
    order of the samples, ``batch_size`` at a time; the last batch is smaller
    unless ``drop_last``, which leaves it out.

    The order is ``list(range(n))``, or with ``shuffle`` one
    ``randperm(n, generator)`` of the dataset's backend drawn by each ``iter()``,
    the same draw as :func:`pyfw.training.train_epoch`: a loop over a shuffling
    loader performs the same steps, bit for bit, as ``fit`` with the same
    generator and batch size. The backend is that of the dataset's first tensor
    (``dataset.tensors[0]``), else the generator's. Any dataset with ``__len__``
    and a ``__getitem__`` that takes a list of indices works.
    """

    def __init__(self, dataset: Any, batch_size: int = 1, shuffle: bool = False, drop_last: bool = False,
                 generator: Optional[Any] = None) -> None:
        who = "DataLoader"
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(f"{who}: dataset must have __len__ and __getitem__ (a TensorDataset), "
                            f"got {type(dataset).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
            raise TypeError(f"{who}: batch_size must be an int, got {type(batch_size).__name__}")
        if batch_size <= 0:
            raise ValueError(f"{who}: batch_size must be positive, got {batch_size}")
        for name, flag in (("shuffle", shuffle), ("drop_last", drop_last)):
            if not isinstance(flag, bool):
                raise TypeError(f"{who}: {name} must be True or False, got {type(flag).__name__}")
        tensors = getattr(dataset, "tensors", None)
        fw = None
        if isinstance(tensors, (tuple, list)) and tensors:
            fw = backend_of(tensors[0])
        elif generator is not None:
            fw = backend_of(generator)
        elif shuffle:
            raise TypeError(f"{who}: cannot tell which backend's randperm to draw for a "
                            f"{type(dataset).__name__}; pass generator=fw.Generator(seed)")
        if generator is not None and not isinstance(generator, fw.Generator):
            raise TypeError(f"{who}: generator must be a {fw.__name__}.Generator (the dataset's backend), "
                            f"got {type(generator).__module__}.{type(generator).__name__}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = generator
        self._fw = fw

    def __len__(self) -> int:
        """The number of batches: ``n // batch_size`` with ``drop_last``, else ``ceil(n / batch_size)``."""
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else (n + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator:
        """Draw this pass's order now (one ``randperm`` with ``shuffle``), then yield its batches."""
        n = len(self.dataset)
        order = self._fw.randperm(n, generator=self.generator) if self.shuffle else list(range(n))
        return self._batches(order)

    def _batches(self, order: list) -> Iterator:
        size = self.batch_size
        stop = len(order) - len(order) % size if self.drop_last else len(order)
        for start in range(0, stop, size):
            yield self.dataset[order[start:start + size]]
