"""Data sets: the disk task and one-hot encoding; Playground's data sets and input
``features``; ``TensorDataset`` and ``DataLoader``, written once for both backends."""

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


# --- Playground's data sets -------------------------------------------------------------------

CLASSIFICATION_SETS = ("circle", "xor", "gauss", "spiral", "moons")
"""The classification data sets of the playground: class indices from 0."""

REGRESSION_SETS = ("plane", "gauss_regression")
"""The regression data sets of the playground: one float label per point."""

FEATURES = ("x1", "x2", "x1^2", "x2^2", "x1*x2", "sin(x1)", "sin(x2)")
"""The input features that :func:`features` computes, by name, in the playground's order."""

_GAUSSIANS = ((-4.0, 2.5, 1.0), (0.0, 2.5, -1.0), (4.0, 2.5, 1.0),
              (-4.0, -2.5, -1.0), (0.0, -2.5, 1.0), (4.0, -2.5, -1.0))
"""gauss_regression's bumps: centre x, centre y and sign."""


def _check_noise(noise: Any, who: str) -> float:
    """``noise`` as a float in [0, 1], else a ``TypeError`` / ``ValueError`` naming ``who``."""
    if isinstance(noise, bool) or not isinstance(noise, numbers.Real):
        raise TypeError(f"{who}: noise must be a number in [0, 1], got {type(noise).__name__}")
    value = float(noise)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{who}: noise must be a number in [0, 1] (a fraction: 0.5 is 50%), got {noise!r}")
    return value


def _split(n: int, k: int) -> list:
    """How many of ``n`` points each of ``k`` classes gets: ``n // k``, one more for the first ``n % k``."""
    return [n // k + (1 if c < n % k else 0) for c in range(k)]


def playground_points(name: str, n: Any, noise: Any = 0.0, generator: Any = None, classes: Any = 2) -> tuple:
    """``(rows, labels)`` of the playground data set ``name`` as plain lists, drawn from ``generator``.

    ``generator`` must already be resolved (an object with ``random``, ``uniform`` and
    ``normal``): each backend's ``data`` module passes its own. The draw order of each
    set is in docs/NUMERICS.md ("Draw order"); :func:`circle` and the others wrap this.
    """
    who = f"data.{name}"
    n = _check_count(n, who)
    noise = _check_noise(noise, who)
    if n > sys.maxsize // 64:
        raise MemoryError(f"{who}: n = {n} is too large to hold in memory")
    g = generator
    uni = g.uniform
    rows: list = []
    labels: list = []
    if name == "circle":
        for c, (lo, hi) in enumerate(((0.0, 2.5), (3.5, 5.0))):  # inner disk: class 1, outer ring: class 0
            for _ in range(_split(n, 2)[c]):
                r = uni(lo, hi)
                angle = uni(0.0, 2.0 * math.pi)
                x = r * math.sin(angle)
                y = r * math.cos(angle)
                nx = uni(-5.0, 5.0) * noise
                ny = uni(-5.0, 5.0) * noise
                px, py = x + nx, y + ny
                rows.append([x, y])
                labels.append(1 if math.sqrt(px * px + py * py) < 2.5 else 0)
    elif name == "xor":
        for _ in range(n):
            x = uni(-5.0, 5.0)
            x = x + 0.3 if x > 0.0 else x - 0.3
            y = uni(-5.0, 5.0)
            y = y + 0.3 if y > 0.0 else y - 0.3
            nx = uni(-5.0, 5.0) * noise
            ny = uni(-5.0, 5.0) * noise
            rows.append([x, y])
            labels.append(1 if (x + nx) * (y + ny) >= 0.0 else 0)
    elif name == "gauss":
        std = math.sqrt(0.5 + 7.0 * noise)  # the variance goes from 0.5 (no noise) to 4 (50%)
        for c, centre in enumerate((2.0, -2.0)):  # class 1 around (2, 2) first, then class 0 around (-2, -2)
            for _ in range(_split(n, 2)[c]):
                x = g.normal(centre, std)
                y = g.normal(centre, std)
                rows.append([x, y])
                labels.append(1 - c)
    elif name == "spiral":
        if isinstance(classes, bool) or not isinstance(classes, numbers.Integral) or classes < 2:
            raise ValueError(f"{who}: classes must be an integer of at least 2, got {classes!r}")
        k = int(classes)
        for c, m in enumerate(_split(n, k)):
            for i in range(m):
                r = i / m * 5.0
                t = 1.75 * i / m * 2.0 * math.pi + 2.0 * math.pi * c / k
                x = r * math.sin(t) + uni(-1.0, 1.0) * noise
                y = r * math.cos(t) + uni(-1.0, 1.0) * noise
                rows.append([x, y])
                labels.append(c)
    elif name == "moons":
        for c in range(2):  # class 0: the upper moon, class 1: the lower one
            for _ in range(_split(n, 2)[c]):
                t = uni(0.0, math.pi)
                if c == 0:
                    x, y = math.cos(t), math.sin(t)
                else:
                    x, y = 1.0 - math.cos(t), 0.5 - math.sin(t)
                x = (x - 0.5) * 3.0 + uni(-3.0, 3.0) * noise
                y = (y - 0.25) * 3.0 + uni(-3.0, 3.0) * noise
                rows.append([x, y])
                labels.append(c)
    elif name in REGRESSION_SETS:
        for _ in range(n):
            x = uni(-6.0, 6.0)
            y = uni(-6.0, 6.0)
            px = x + uni(-6.0, 6.0) * noise
            py = y + uni(-6.0, 6.0) * noise
            if name == "plane":
                label = (px + py) / 10.0
            else:
                label = 0.0
                for cx, cy, sign in _GAUSSIANS:  # the bump largest in absolute value wins
                    dx, dy = px - cx, py - cy
                    v = sign * max(0.0, 1.0 - math.sqrt(dx * dx + dy * dy) / 2.0)
                    if abs(v) > abs(label):
                        label = v
            rows.append([x, y])
            labels.append(label)
    else:
        raise ValueError(f"data: no data set named {name!r}; the playground's are "
                         + ", ".join(CLASSIFICATION_SETS + REGRESSION_SETS))
    return rows, labels


def circle(n: int, noise: float = 0.0, generator: Optional[Generator] = None) -> tuple:
    """Playground's circle: ``n`` points in [-5, 5]^2, the first ``ceil(n/2)`` in the disk of radius
    2.5 (class 1), the others in the ring from 3.5 to 5 (class 0); with ``noise`` (a fraction) the
    label is that of the point moved by up to ``5 * noise`` in each coordinate. Returns an (n, 2)
    tensor and a list of class indices."""
    rows, labels = playground_points("circle", n, noise, _resolve(generator))
    return Tensor._wrap(rows, (len(rows), 2)), labels


def xor(n: int, noise: float = 0.0, generator: Optional[Generator] = None) -> tuple:
    """Playground's xor: points in [-5.3, 5.3]^2 away from the axes, class 1 where ``x * y >= 0``."""
    rows, labels = playground_points("xor", n, noise, _resolve(generator))
    return Tensor._wrap(rows, (len(rows), 2)), labels


def gauss(n: int, noise: float = 0.0, generator: Optional[Generator] = None) -> tuple:
    """Playground's two Gaussian clusters: class 1 around (2, 2), class 0 around (-2, -2), of
    variance from 0.5 (no noise) to 4 (``noise=0.5``)."""
    rows, labels = playground_points("gauss", n, noise, _resolve(generator))
    return Tensor._wrap(rows, (len(rows), 2)), labels


def spiral(n: int, noise: float = 0.0, generator: Optional[Generator] = None, classes: int = 2) -> tuple:
    """Playground's spiral with ``classes`` arms (any number from 2): arm ``c`` (class ``c``) is
    turned by ``2 pi c / classes``; each point moves by up to ``noise`` in each coordinate."""
    rows, labels = playground_points("spiral", n, noise, _resolve(generator), classes)
    return Tensor._wrap(rows, (len(rows), 2)), labels


def moons(n: int, noise: float = 0.0, generator: Optional[Generator] = None) -> tuple:
    """Two interleaving half circles of radius 3 (class 0 above, class 1 below) in [-4.5, 4.5] x
    [-2.25, 2.25]; each point moves by up to ``3 * noise`` in each coordinate."""
    rows, labels = playground_points("moons", n, noise, _resolve(generator))
    return Tensor._wrap(rows, (len(rows), 2)), labels


def plane(n: int, noise: float = 0.0, generator: Optional[Generator] = None) -> tuple:
    """Playground's regression plane: points in [-6, 6]^2 labelled ``(x + y) / 10`` (in [-1.2, 1.2]),
    measured at the point moved by up to ``6 * noise``. Returns an (n, 2) tensor and a list of floats."""
    rows, labels = playground_points("plane", n, noise, _resolve(generator))
    return Tensor._wrap(rows, (len(rows), 2)), labels


def gauss_regression(n: int, noise: float = 0.0, generator: Optional[Generator] = None) -> tuple:
    """Playground's regression Gaussians: points in [-6, 6]^2 labelled by six bumps of height +1 or
    -1 and radius 2 (the largest in absolute value wins), measured at the point moved by up to
    ``6 * noise``. Returns an (n, 2) tensor and a list of floats."""
    rows, labels = playground_points("gauss_regression", n, noise, _resolve(generator))
    return Tensor._wrap(rows, (len(rows), 2)), labels


def feature_rows(rows: Any, names: Any, who: str = "data.features") -> list:
    """The rows of :func:`features` as lists, from ``rows`` (lists of two floats)."""
    if isinstance(names, str) or not isinstance(names, (list, tuple)) or not names:
        raise TypeError(f"{who}: names must be a non-empty list of feature names ({', '.join(FEATURES)})")
    for name in names:
        if name not in FEATURES:
            raise ValueError(f"{who}: no feature named {name!r}; the features are {', '.join(FEATURES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"{who}: a feature is named twice in {list(names)}")
    make = {"x1": lambda a, b: a, "x2": lambda a, b: b, "x1^2": lambda a, b: a * a, "x2^2": lambda a, b: b * b,
            "x1*x2": lambda a, b: a * b, "sin(x1)": lambda a, b: math.sin(a), "sin(x2)": lambda a, b: math.sin(b)}
    fns = [make[name] for name in names]
    out = []
    for row in rows:
        if len(row) != 2:
            raise ValueError(f"{who}: x must have 2 columns (x1, x2), got {len(row)}")
        a, b = row
        out.append([f(a, b) for f in fns])
    return out


def features(x: Any, names: Any) -> Any:
    """The playground's input features of the (n, 2) tensor ``x``: an (n, len(names)) tensor of
    ``x``'s backend whose column ``j`` is the feature ``names[j]``, one of :data:`FEATURES`
    (``x1``, ``x2``, ``x1^2``, ``x2^2``, ``x1*x2``, ``sin(x1)``, ``sin(x2)``; ``math.sin``)."""
    fw = _tensor_backend(x)
    if fw is None:
        raise TypeError(f"data.features: x must be a Tensor of shape (n, 2), got {type(x).__name__}")
    if len(x.shape) != 2:
        raise ValueError(f"data.features: x must have shape (n, 2), got {tuple(x.shape)}")
    return fw.tensor(feature_rows(x.tolist(), names))


# --------------------------------------------------------------------------- the denoiser's images

DENOISE_SHAPES = ("disk", "rectangle", "stripes")
"""The shapes of :func:`denoise_pairs`' clean images, by the index ``randbelow(3)`` draws."""


def _check_denoise_args(n: Any, size: Any, channels: Any, noise: Any, who: str) -> tuple:
    """``(n, size, channels, noise)`` checked: positive ints and a finite noise std >= 0."""
    from .error import check_size
    n, size, channels = check_size(n, who, "n"), check_size(size, who, "size"), check_size(channels, who, "channels")
    if isinstance(noise, bool) or not isinstance(noise, numbers.Real):
        raise TypeError(f"{who}: noise must be a number (the noise's standard deviation), got {type(noise).__name__}")
    std = float(noise)
    if not (math.isfinite(std) and std >= 0.0):
        raise ValueError(f"{who}: noise must be a finite standard deviation >= 0, got {noise!r}")
    if n * channels * size * size > sys.maxsize // 64:
        raise MemoryError(f"{who}: {n} images of {channels}x{size}x{size} are too many to hold in memory")
    return n, size, channels, std


def _edge(d: float, pixel: float) -> float:
    """The share of a pixel inside an edge (a box filter of one pixel across it): 0 at half a pixel
    outside, 1 at half a pixel inside, linear between; ``d`` is the pixel centre's signed distance
    to the edge, positive inside."""
    a = d / pixel + 0.5
    return 0.0 if a <= 0.0 else 1.0 if a >= 1.0 else a


def clean_images(n: int, size: int, channels: int, generator: Any) -> list:
    """The clean images of :func:`denoise_pairs`: a flat list of ``n * channels * size * size``
    floats in [0, 1], row-major over (n, channels, size, size), drawn from ``generator`` (a
    generator of either backend) image by image, as docs/NUMERICS.md ("Draw order") lists.

    Their content is resolvable at their size: every shape edge is anti-aliased (a pixel takes
    the share of it the shape covers, a ramp one pixel wide, :func:`_edge`), stripes have a period
    of 4 to 8 pixels whatever ``size``, the smallest disk a radius of 0.1 of the image, the
    narrowest rectangle 0.1 of it, and the shading is linear."""
    u, pick = generator.uniform, generator.randbelow
    pixel = 1.0 / size
    coords = [(i + 0.5) / size for i in range(size)]  # pixel centres in (0, 1)
    plane = size * size
    out: list = []
    for _ in range(n):
        # The background: a colour per channel, shaded along x or y.
        colour = [u(0.0, 1.0) for _ in range(channels)]
        along_y = pick(2)
        shade = u(0.0, 0.5)
        level = [1.0 - shade * coords[(p // size) if along_y else (p % size)] for p in range(plane)]
        image = [[c * v for v in level] for c in colour]
        for _ in range(2 + pick(3)):
            kind = pick(3)
            colour = [u(0.0, 1.0) for _ in range(channels)]
            shade = u(0.0, 0.5)
            if kind == 0:  # a disk, darker towards its rim
                cx, cy, r = u(0.0, 1.0), u(0.0, 1.0), u(0.1, 0.35)
            else:  # a rectangle, or vertical stripes in a rectangle, shaded left to right / top to bottom
                x0, y0, w, h = u(0.0, 0.8), u(0.0, 0.8), u(0.1, 0.5), u(0.1, 0.5)
                period = u(4.0, 8.0) * pixel if kind == 2 else 0.0
            for p in range(plane):
                x, y = coords[p % size], coords[p // size]
                if kind == 0:
                    dx, dy = x - cx, y - cy
                    d = math.sqrt(dx * dx + dy * dy)
                    a = _edge(r - d, pixel)
                    t = min(d / r, 1.0)
                else:
                    a = _edge(min(x - x0, x0 + w - x), pixel) * _edge(min(y - y0, y0 + h - y), pixel)
                    if kind == 2 and a > 0.0:  # on for (x - x0) mod period below period / 2
                        q = (x - x0 + 0.25 * period) % period
                        a = a * _edge(0.25 * period - abs(q - 0.5 * period), pixel)
                    t = (x - x0) / w if kind == 1 else (y - y0) / h
                    t = 0.0 if t < 0.0 else 1.0 if t > 1.0 else t
                if a == 0.0:
                    continue
                v = 1.0 - shade * t
                for c in range(channels):
                    old = image[c][p]
                    image[c][p] = min(max(old + a * (colour[c] * v - old), 0.0), 1.0)
        for plane_values in image:
            out.extend(plane_values)
    return out


def _denoise_pairs(fw: Any, n: Any, size: Any, channels: Any, noise: Any, generator: Any) -> tuple:
    """:func:`denoise_pairs` with tensors of the backend ``fw`` and a generator of it (already resolved)."""
    n, size, channels, std = _check_denoise_args(n, size, channels, noise, "data.denoise_pairs")
    flat = clean_images(n, size, channels, generator)
    shape = (n, channels, size, size)
    if fw.Tensor is Tensor:
        clean = Tensor._wrap([flat[i:i + size] for i in range(0, len(flat), size)], shape)
    else:
        clean = fw.tensor(flat).reshape(*shape)
    noisy_a = (clean + fw.randn(*shape, generator=generator) * std).clamp(0.0, 1.0)
    noisy_b = (clean + fw.randn(*shape, generator=generator) * std).clamp(0.0, 1.0)
    return noisy_a, noisy_b, clean


def denoise_pairs(n: int, size: int = 32, channels: int = 3, noise: float = 0.1,
                  generator: Optional[Generator] = None) -> tuple:
    """The denoiser's data: ``(noisy_a, noisy_b, clean)``, three (n, channels, size, size) tensors in [0, 1].

    ``clean`` holds synthetic images (:func:`clean_images`): a shaded background and 2 to 4
    overlapping shapes (disks, rectangles, vertical stripes) with smooth shading, every
    channel its own colour, drawn so that a network can resolve them at their size:
    anti-aliased edges, stripes 4 to 8 pixels apart. ``noisy_a`` and ``noisy_b`` are two independently noisy copies,
    ``clamp(clean + z * noise, 0, 1)`` with ``z`` one standard normal draw per element
    (``noise`` is the standard deviation). Draws: the clean images, then ``randn`` of the
    whole shape for ``noisy_a``, then for ``noisy_b`` (docs/NUMERICS.md, "Draw order").
    Written once; ``pyfw_rs.data.denoise_pairs`` is the same with pyfw_rs tensors.
    """
    return _denoise_pairs(importlib.import_module("pyfw"), n, size, channels, noise, _resolve(generator))


# --------------------------------------------------------------------------- IDX files (MNIST)

IDX_TYPES = {0x08: ("B", 1), 0x09: ("b", 1), 0x0B: ("h", 2), 0x0C: ("i", 4), 0x0D: ("f", 4), 0x0E: ("d", 8)}
"""The IDX data types by their code: ``struct`` format (big-endian) and size in bytes."""

_IDX_CHUNK = 1 << 20


def _read_idx_values(path: str, who: str) -> tuple:
    """``(values, dims, code)`` of an IDX file (gzip-compressed when its name ends in ``.gz``)."""
    import gzip
    import os
    import stat
    import struct
    import zlib

    def bad(what: str) -> ValueError:
        return ValueError(f"{who}: {path} is not a valid IDX file: {what}")

    with open(path, "rb") as raw:
        if not stat.S_ISREG(os.fstat(raw.fileno()).st_mode):
            raise ValueError(f"{who}: {path} is not a regular file")
        size = os.fstat(raw.fileno()).st_size
        compressed = path.endswith(".gz")
        f: Any = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        try:
            head = f.read(4)
            if len(head) != 4:
                raise bad(f"it has {len(head)} bytes, fewer than the 4 of the magic number")
            if head[0] != 0 or head[1] != 0 or head[2] not in IDX_TYPES:
                raise bad(f"the magic number {head.hex()} is not 0000, a type code "
                          f"({', '.join(f'{c:02x}' for c in IDX_TYPES)}) and a number of dimensions")
            code, ndims = head[2], head[3]
            if ndims == 0:
                raise bad("it has 0 dimensions")
            sizes = f.read(4 * ndims)
            if len(sizes) != 4 * ndims:
                raise bad(f"it ends inside the {ndims} sizes")
            dims = struct.unpack(f">{ndims}I", sizes)
            if 0 in dims:
                raise bad(f"its sizes {list(dims)} hold a 0; pyfw tensors are never empty")
            fmt, width = IDX_TYPES[code]
            count = 1
            for d in dims:
                count *= d
            need = count * width
            if not compressed and 4 + 4 * ndims + need != size:
                raise bad(f"its sizes {list(dims)} of {width}-byte values need {4 + 4 * ndims + need} bytes, "
                          f"the file has {size}")
            chunks = []
            got = 0
            while got < need:  # what is read is what the file holds, never more than the sizes say
                part = f.read(min(_IDX_CHUNK, need - got))
                if not part:
                    raise bad(f"its data ends after {got} of the {need} bytes its sizes {list(dims)} need")
                chunks.append(part)
                got += len(part)
            if compressed and f.read(1):
                raise bad(f"it has more data than the {need} bytes its sizes {list(dims)} need")
        except (OSError, EOFError, zlib.error) as e:
            if not compressed:
                raise
            raise bad(f"it is not a readable gzip stream ({type(e).__name__}: {e})") from None
        finally:
            if compressed:
                f.close()
    values = struct.unpack(f">{count}{fmt}", b"".join(chunks))
    if code in (0x0D, 0x0E) and not all(map(math.isfinite, values)):
        raise ValueError(f"{who}: {path} holds a value that is not finite; pyfw tensors are finite")
    return values, dims, code


def _read_idx(fw: Any, path: Any, who: str = "data.read_idx") -> Any:
    """:func:`read_idx` with tensors of the backend ``fw``."""
    import os
    from .io import MAX_RANK, _make_tensor
    path = os.fspath(path)
    values, dims, code = _read_idx_values(path, who)
    if len(dims) == 1 and code not in (0x0D, 0x0E):
        return list(values)
    if len(dims) > MAX_RANK:
        raise ValueError(f"{who}: {path} has {len(dims)} dimensions; a tensor has at most {MAX_RANK}")
    cols = dims[-1]
    rows = [[float(v) for v in values[i:i + cols]] for i in range(0, len(values), cols)]
    return _make_tensor(fw, rows, tuple(dims))


def read_idx(path: Any) -> Any:
    """Read one IDX file, the format of MNIST's files (``.gz`` too, through ``gzip``).

    The format: a 4-byte magic number (two zero bytes, the type code, the number of
    dimensions), then each dimension's size as a big-endian unsigned 32-bit integer,
    then the values, big-endian, row-major. Type codes: ``0x08`` u8 (MNIST's), ``0x09`` i8,
    ``0x0B`` i16, ``0x0C`` i32, ``0x0D`` f32, ``0x0E`` f64. Returns a float64 tensor of the
    file's shape with the values as stored (0 to 255 for MNIST's images), or for a 1-D file
    of integers (labels) a list of ints. A file that is truncated, longer than its sizes
    say, or otherwise not an IDX file gets a ``ValueError`` naming it; the sizes are
    checked against the file before its data is read.
    """
    return _read_idx(importlib.import_module("pyfw"), path)
