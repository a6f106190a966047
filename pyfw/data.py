"""Data sets: the disk task and one-hot encoding; ``TensorDataset`` and ``DataLoader``,
written once for both backends."""

from __future__ import annotations

import importlib
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


def _backend_named(name: str) -> Any:
    """The backend module ``pyfw`` or ``pyfw_rs``, by its name (imported if need be)."""
    return importlib.import_module(name)


def _tensor_backend(obj: Any) -> Any:
    """The backend whose ``Tensor`` ``obj`` is, or None."""
    try:
        fw = backend_of(obj)
    except TypeError:
        return None
    return fw if isinstance(obj, fw.Tensor) else None


def _plain(obj: Any) -> Any:
    """A numpy array or scalar (anything with ``tolist`` that is not text) as plain Python; else ``obj``."""
    tolist = getattr(obj, "tolist", None)
    if callable(tolist) and not isinstance(obj, (str, bytes)) and _tensor_backend(obj) is None:
        return tolist()
    return obj


class TensorDataset:
    """Samples ``(x[i], t[i])``: the rows of each item, all items with the same number of rows.

    Each item is a tensor, a nested list or a numpy array (2-D: it becomes a
    tensor), or a flat list, tuple or 1-D numpy array (kept as a list, such as
    class indices). The tensors are of one backend: that of the tensors given,
    else the backend whose ``data`` module this is (``pyfw.data.TensorDataset``
    makes pyfw tensors, ``pyfw_rs.data.TensorDataset`` pyfw_rs ones). The first
    item must be rows (2-D).

    ``dataset[i]`` gives the row ``i`` of each item (a 1-D tensor, or the list's
    entry); ``dataset[idx]`` with a list of ints gathers those rows: tensors by
    ``item[idx]``, lists as lists (``__getitems__(idx)`` too, which ``DataLoader``
    calls). ``tensors`` holds the items.
    """

    _default_backend = "pyfw"

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise TypeError("TensorDataset: needs at least one tensor")
        fw = None
        for t in tensors:
            fw = _tensor_backend(t)
            if fw is not None:
                break
        if fw is None:
            fw = _backend_named(self._default_backend)
        items: list = []
        for i, t in enumerate(tensors):
            other = _tensor_backend(t)
            if other is fw:
                items.append(t)
                continue
            if other is not None:
                raise TypeError(f"TensorDataset: item {i} is a {other.__name__} Tensor, but the dataset's tensors "
                                f"are {fw.__name__}'s; convert it with {fw.__name__}.tensor(item.tolist())")
            data = _plain(t)
            if not isinstance(data, (list, tuple)):
                raise TypeError(f"TensorDataset: item {i} must be a {fw.__name__} Tensor, a nested list, a list "
                                f"or a numpy array, got {type(t).__name__}")
            if data and isinstance(data[0], (list, tuple)):
                try:
                    items.append(fw.tensor(data))
                except (TypeError, ValueError) as e:
                    raise type(e)(f"TensorDataset: item {i}: {e}") from None
            elif i == 0:
                raise TypeError(f"TensorDataset: the first item must be rows: a pyfw or pyfw_rs Tensor, a nested "
                                f"list or a 2-D numpy array, got a flat {type(t).__name__}")
            else:
                items.append(list(data))
        n = len(items[0])
        for i, t in enumerate(items):
            if len(t) != n:
                raise ValueError(f"TensorDataset: item {i} has {len(t)} rows, item 0 has {n}")
        self.tensors: tuple = tuple(items)

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, index: Any) -> tuple:
        if isinstance(index, list):
            return tuple(gather(t, index) for t in self.tensors)
        return tuple(t[index] for t in self.tensors)

    def __getitems__(self, indices: list) -> tuple:
        """The rows ``indices`` of each item at once: ``dataset[indices]`` (the loader's fast path)."""
        return self[list(indices)]

    def __repr__(self) -> str:
        return f"TensorDataset({len(self)} samples, {len(self.tensors)} items)"


def _collate(samples: list, fw: Any) -> Any:
    """One batch from a list of samples: a tuple (or dict) of collated fields, or one collated field."""
    first = samples[0]
    if isinstance(first, tuple):
        for k, s in enumerate(samples):
            if not isinstance(s, tuple) or len(s) != len(first):
                raise TypeError(f"DataLoader: sample {k} of the batch is not a tuple of {len(first)} items, "
                                f"as the first one is: {s!r:.60}")
        return tuple(_collate_field([s[j] for s in samples], fw, f"field {j}") for j in range(len(first)))
    if isinstance(first, dict):
        for k, s in enumerate(samples):
            if not isinstance(s, dict) or s.keys() != first.keys():
                raise TypeError(f"DataLoader: sample {k} of the batch is not a dict with the keys of the first one")
        return {key: _collate_field([s[key] for s in samples], fw, f"field {key!r}") for key in first}
    return _collate_field(samples, fw, "the sample")


def _collate_field(values: list, fw: Any, where: str) -> Any:
    """One field of a batch (see :class:`DataLoader`): rows stacked into a tensor, ints as a list
    of labels, other numbers as a column tensor, anything else as the list of values."""
    own = _tensor_backend(values[0])
    if own is not None:
        for v in values:
            if _tensor_backend(v) is not own or len(v.shape) != 1:
                raise TypeError(f"DataLoader: {where}: every sample must give a 1-D {own.__name__} Tensor (a row), "
                                f"got a {type(v).__module__}.{type(v).__name__} of shape {getattr(v, 'shape', '?')}")
        return own.tensor([v.tolist() for v in values])
    values = [_plain(v) for v in values]
    if all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values):
        return [int(v) for v in values]  # class indices, as CrossEntropyLoss and error_rate take them
    try:
        if all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
            return fw.tensor([[v] for v in values])  # one number per sample: a (batch, 1) column
        if all(isinstance(v, (list, tuple)) for v in values):
            return fw.tensor([list(v) for v in values])  # rows
    except (TypeError, ValueError) as e:
        raise type(e)(f"DataLoader: {where}: {e}") from None
    return list(values)  # text and other values, as they came


class DataLoader:
    """Mini-batches of a dataset, ``batch_size`` samples at a time, in the order
    ``list(range(n))`` or, with ``shuffle``, one ``randperm(n, generator)`` drawn by each
    ``iter()``; the last batch is smaller unless ``drop_last``, which leaves it out.

    The dataset is any map-style dataset: ``len(dataset)`` and ``dataset[i]`` for an
    int ``i`` (a torch-style ``Dataset`` class, or a list of ``(x, y)`` pairs). A batch
    is made of the samples ``dataset[i]``: a tuple (or dict) of fields gives a tuple
    (or dict) of collated fields, anything else one collated field. A field collates
    as follows:

    * 1-D tensors (rows), lists or tuples of numbers, or 1-D numpy arrays: stacked
      into a ``(batch, k)`` tensor;
    * ints: a list of ints (class indices, as ``CrossEntropyLoss`` and the metrics
      take them);
    * other numbers (floats, numpy scalars): a ``(batch, 1)`` tensor, the shape a
      one-output model's loss compares with;
    * anything else (text, ...): the list of the values, as they came.

    A dataset with ``__getitems__(indices)`` (torch's name for it) is asked for a
    whole batch at once and its result is yielded as it is; ``TensorDataset`` has it,
    so its batches are ``(x[idx], t[idx])``, gathered without collating.

    Shuffling draws the same ``randperm`` as :func:`pyfw.training.train_epoch`: a
    loop over a shuffling loader performs the same steps, bit for bit, as ``fit``
    with the same generator and batch size. The backend (for ``randperm`` and for
    the tensors it collates) is that of the dataset's first tensor
    (``dataset.tensors[0]``), else the generator's, else the one whose ``data``
    module this is (``pyfw.data.DataLoader``: pyfw; ``pyfw_rs.data.DataLoader``:
    pyfw_rs); without a generator it draws from that backend's default generator.
    The loader holds the backend by its name, so it can be pickled and deep-copied.
    """

    _default_backend = "pyfw"

    def __init__(self, dataset: Any, batch_size: int = 1, shuffle: bool = False, drop_last: bool = False,
                 generator: Optional[Any] = None) -> None:
        who = "DataLoader"
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(f"{who}: dataset must have __len__ and __getitem__ (a map-style dataset), "
                            f"got {type(dataset).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
            raise TypeError(f"{who}: batch_size must be an int, got {type(batch_size).__name__}")
        if batch_size <= 0:
            raise ValueError(f"{who}: batch_size must be positive, got {batch_size}")
        for name, flag in (("shuffle", shuffle), ("drop_last", drop_last)):
            if not isinstance(flag, bool):
                raise TypeError(f"{who}: {name} must be True or False, got {type(flag).__name__}")
        tensors = getattr(dataset, "tensors", None)
        if isinstance(tensors, (tuple, list)) and tensors:
            fw = backend_of(tensors[0])
        elif generator is not None:
            try:
                fw = backend_of(generator)
            except TypeError:
                fw = _backend_named(self._default_backend)
        else:
            fw = _backend_named(self._default_backend)
        if generator is not None and not isinstance(generator, fw.Generator):
            raise TypeError(f"{who}: generator must be a {fw.__name__}.Generator (the dataset's backend), "
                            f"got {type(generator).__module__}.{type(generator).__name__}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = generator
        self._backend: str = fw.__name__  # a name, not the module, so that the loader pickles

    @property
    def _fw(self) -> Any:
        return _backend_named(self._backend)

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
        getitems = getattr(self.dataset, "__getitems__", None)
        fw = self._fw
        for start in range(0, stop, size):
            idx = order[start:start + size]
            if getitems is not None:
                yield getitems(idx)
            else:
                yield _collate([self.dataset[i] for i in idx], fw)

    def __repr__(self) -> str:
        return (f"DataLoader({type(self.dataset).__name__} of {len(self.dataset)} samples, batch_size="
                f"{self.batch_size}, shuffle={self.shuffle}, drop_last={self.drop_last}, backend {self._backend})")
