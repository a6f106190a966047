"""The tensor type: a 1-D or 2-D array of float64, stored as a list of row lists.

A 2-D tensor of shape ``(r, c)`` holds ``r`` lists of ``c`` floats. A 1-D
tensor of shape ``(n,)`` holds a single row of ``n`` floats, so every kernel
can walk rows the same way. Tensors are never empty, and ``tensor()`` admits
only finite real numbers.

A row list is never changed in place: every in-place operation (``zero_``,
``copy_``, ``add_``, ``SGD.step``, gradient accumulation) puts new row lists in
the tensor. So a shallow copy of ``_rows`` is a snapshot, which is how modules
keep what ``backward`` needs.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, Iterator, Optional, Union

Shape = tuple


class Tensor:
    """A 1-D or 2-D float64 array. Build one with :func:`tensor`.

    ``grad`` is None, or for a parameter the tensor its module accumulates
    the gradient into (the one ``param()`` pairs it with).
    """

    __slots__ = ("_rows", "_shape", "_grad")

    def __init__(self, data: Any) -> None:
        rows, shape = _parse(data, "tensor")
        self._rows = rows
        self._shape = shape
        self._grad: Optional[Tensor] = None

    @classmethod
    def _wrap(cls, rows: list, shape: Shape) -> "Tensor":
        """Adopt ``rows`` without copying or checking (internal)."""
        t = cls.__new__(cls)
        t._rows = rows
        t._shape = shape
        t._grad = None
        return t

    @property
    def grad(self) -> Optional["Tensor"]:
        """The gradient tensor of a parameter, or None."""
        return self._grad

    @grad.setter
    def grad(self, value: Optional["Tensor"]) -> None:
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"Tensor.grad: expected a pyfw Tensor or None, got {type(value).__name__}")
            if value is self:
                raise ValueError("Tensor.grad: a tensor cannot be its own gradient (a module would add its "
                                 "gradient into its values, and a step would read the gradient it is overwriting)")
            if value.shape != self._shape:
                raise ValueError(f"Tensor.grad: gradient shape {value.shape} differs from {self._shape}")
        self._grad = value

    @property
    def shape(self) -> Shape:
        """The shape: ``(rows, cols)`` or ``(n,)``."""
        return self._shape

    @property
    def ndim(self) -> int:
        """The number of dimensions, 1 or 2."""
        return len(self._shape)

    def dim(self) -> int:
        """The number of dimensions, 1 or 2 (as ``torch.Tensor.dim``)."""
        return len(self._shape)

    def numel(self) -> int:
        """The number of elements."""
        n = 1
        for d in self._shape:
            n *= d
        return n

    def tolist(self) -> list:
        """A fresh nested list of Python floats (flat for a 1-D tensor)."""
        if len(self._shape) == 1:
            return list(self._rows[0])
        return [list(r) for r in self._rows]

    def clone(self) -> "Tensor":
        """A copy that shares no storage with this tensor."""
        return Tensor._wrap([list(r) for r in self._rows], self._shape)

    def zero_(self) -> "Tensor":
        """Set every element to 0.0, in place; returns self."""
        rows = self._rows
        for r in range(len(rows)):
            rows[r] = [0.0] * len(rows[r])
        return self

    def copy_(self, src: Any) -> "Tensor":
        """Copy ``src`` (a tensor of either backend or a nested list) of the same shape, in place."""
        rows, shape = _parse(src, "Tensor.copy_")
        if shape != self._shape:
            raise ValueError(f"Tensor.copy_: source shape {shape} differs from {self._shape}")
        self._rows[:] = rows
        return self

    def add_(self, other: Any, alpha: float = 1.0) -> "Tensor":
        """``self = self + (alpha * other)`` element by element, in place; returns self."""
        a = _number(alpha, "Tensor.add_ alpha")
        rows, shape = _parse(other, "Tensor.add_")
        if shape != self._shape:
            raise ValueError(f"Tensor.add_: other has shape {shape}, this tensor {self._shape}")
        mine = self._rows
        for r, orow in enumerate(rows):
            mine[r] = [p + a * v for p, v in zip(mine[r], orow)]
        return self

    def __len__(self) -> int:
        return self._shape[0]

    def __getitem__(self, index: Union[int, slice, list]) -> Union["Tensor", float]:
        """Index the first dimension by an int, a slice, or a list of ints.

        On a 2-D tensor an int gives a 1-D row and a slice or list gives a 2-D
        tensor of those rows. On a 1-D tensor an int gives a float and a slice
        or list gives a 1-D tensor.
        """
        n = self._shape[0]
        one_d = len(self._shape) == 1
        items = self._rows[0] if one_d else self._rows
        if isinstance(index, slice):
            picked = items[index]
        elif isinstance(index, list):
            picked = [items[i if type(i) is int and 0 <= i < n else _index(i, n)] for i in list.copy(index)]
            if not one_d:
                _reserve(len(picked) * self._shape[1], "Tensor")
        elif isinstance(index, numbers.Integral) and not isinstance(index, bool):
            item = items[_index(index, n)]
            return item if one_d else Tensor._wrap([list(item)], (len(item),))
        else:
            raise TypeError(f"Tensor: indices must be ints, slices or lists of ints, got {type(index).__name__}")
        if not picked:
            raise ValueError(f"Tensor: index selects no rows from shape {self._shape}; empty tensors are not supported")
        if one_d:
            return Tensor._wrap([picked], (len(picked),))
        return Tensor._wrap([list(r) for r in picked], (len(picked), self._shape[1]))

    def __iter__(self) -> Iterator[Union["Tensor", float]]:
        for i in range(self._shape[0]):
            yield self[i]

    def __array__(self, dtype: Any = None, copy: Optional[bool] = None) -> Any:
        """The float64 numpy array of the values (``numpy.asarray(t)``), always a fresh
        copy; numpy is imported only here. ``dtype`` converts it; ``copy=False`` is a
        ``ValueError``."""
        if copy is not None and not copy:
            raise ValueError("Tensor.__array__: the array is always a copy; copy=False cannot be honoured")
        import numpy  # only when numpy itself asks: pyfw needs no numpy

        arr = numpy.array(self.tolist(), dtype=numpy.float64)
        return arr if dtype is None else arr.astype(dtype)

    def __repr__(self) -> str:
        """``tensor([...])``; past :data:`SUMMARY_THRESHOLD` elements, summarized as torch does."""
        rows = self._rows if len(self._shape) == 2 else self._rows[0]
        if self.numel() > SUMMARY_THRESHOLD:
            rows = summarized(rows)
        return format_repr(rows)

    def __setstate__(self, state: Any) -> None:
        """Restore a copied or unpickled tensor (``copy``, ``deepcopy``, ``pickle``), checked as
        :func:`tensor` checks its data, since a pickle may have been changed: the shape a tuple of
        one or more positive ints, the rows one list per index over all dimensions but the last
        (row-major), each of ``shape[-1]`` finite real numbers (stored as floats), and ``grad`` None
        or a tensor of that shape. ``TypeError`` or ``ValueError`` naming the tensor; the restored
        tensor shares no row list with the original."""
        who = "Tensor (copied or unpickled)"
        slots = state[1] if isinstance(state, tuple) and len(state) == 2 else state
        if not isinstance(slots, dict):
            raise TypeError(f"{who}: cannot restore from a {type(slots).__name__}")
        shape, rows, grad = slots.get("_shape"), slots.get("_rows"), slots.get("_grad")
        if (not isinstance(shape, tuple) or not shape
                or not all(type(d) is int and d > 0 for d in shape)):  # noqa: E721 - bool is no size
            raise ValueError(f"{who}: the shape must be a tuple of one or more positive ints, got {shape!r:.80}")
        count = 1
        for d in shape[:-1]:
            count *= d
        if not isinstance(rows, list) or len(rows) != count:
            got = f"{len(rows)}" if isinstance(rows, list) else f"a {type(rows).__name__}"
            raise ValueError(f"{who}: shape {shape} is stored as {count} row(s) of {shape[-1]} values, got {got}")
        checked = []
        for r, row in enumerate(rows):
            if not isinstance(row, list) or len(row) != shape[-1]:
                got = f"{len(row)} items" if isinstance(row, list) else f"a {type(row).__name__}"
                raise ValueError(f"{who}: shape {shape} has rows of {shape[-1]}, row {r} holds {got}")
            checked.append([_number(v, who) for v in row])
        if grad is not None:
            if not isinstance(grad, Tensor) or grad is self:
                raise TypeError(f"{who}: grad must be None or another pyfw Tensor, got {type(grad).__name__}")
            gshape = getattr(grad, "_shape", shape)  # not yet restored: a gradient whose gradient is this one
            if gshape != shape:
                raise ValueError(f"{who}: gradient shape {gshape} differs from {shape}")
        self._rows, self._shape, self._grad = checked, shape, grad


SUMMARY_THRESHOLD = 1000
"""Tensors with more elements print only their first and last ``EDGE_ITEMS`` rows and columns."""
EDGE_ITEMS = 3


def summarized(items: list) -> list:
    """The first and last ``EDGE_ITEMS`` items of a list, with ``...`` between when some
    are left out; rows (lists) are summarized the same way."""
    if len(items) > 2 * EDGE_ITEMS:
        items = [*items[:EDGE_ITEMS], ..., *items[-EDGE_ITEMS:]]
    return [summarized(r) if isinstance(r, list) else r for r in items]


def format_repr(items: list) -> str:
    """``tensor([...])`` of (possibly summarized) rows or values, floats as ``repr``.

    Both backends print through this function, so their reprs are the same text.
    """
    def fmt(v: Any) -> str:
        if v is ...:
            return "..."
        if isinstance(v, list):
            return "[" + ", ".join(fmt(x) for x in v) + "]"
        return repr(v)
    return f"tensor({fmt(items)})"


def _index(i: Any, n: int) -> int:
    if isinstance(i, bool) or not isinstance(i, numbers.Integral):
        raise TypeError(f"Tensor: indices must be ints, got {type(i).__name__}")
    i = int(i)
    if i < -n or i >= n:
        raise IndexError(f"Tensor: index {i} is out of range for size {n}")
    return i + n if i < 0 else i


def _number(v: Any, who: str) -> float:
    if type(v) is float:
        f = v
    elif isinstance(v, float):
        f = float.__float__(v)  # the value itself, not a subclass that may override arithmetic
    elif _is_seq(v):
        raise ValueError(f"{who}: ragged or deeper than 2-D nested list")
    elif isinstance(v, numbers.Real) and not isinstance(v, bool):
        try:
            f = float(v)
        except OverflowError:
            raise ValueError(f"{who}: expected finite numbers, got {_value_text(v)}, too large for a float") from None
    else:
        raise TypeError(f"{who}: expected real numbers, got {type(v).__name__} {v!r}")
    if not math.isfinite(f):
        raise ValueError(f"{who}: expected finite numbers, got {f!r}")
    return f


def _value_text(v: Any) -> str:
    """How a value shows in a message: its repr, shortened past 40 characters to its
    ends and its length; an int too long for ``repr`` by its bits."""
    try:
        text = repr(v)
    except ValueError:  # an int past sys.get_int_max_str_digits()
        text = f"an int of {int(v).bit_length()} bits"
    if len(text) <= 40:
        return text
    return f"{text[:20]}...{text[-10:]} ({len(text)} characters)"


def _reserve(count: int, who: str) -> None:
    """``MemoryError`` now if ``count`` values cannot be held (8 bytes each, the buffer
    pyfw_rs reserves), rather than after building most of them."""
    try:
        probe = [0.0] * count
    except (MemoryError, OverflowError):
        raise MemoryError(f"{who}: cannot allocate {count} elements") from None
    del probe


def _is_seq(v: Any) -> bool:
    return isinstance(v, (list, tuple))


def _items(v: Any) -> Any:
    """A snapshot of the items of a list or tuple, read from its storage: a subclass's
    ``__len__``, ``__iter__`` and ``__getitem__`` are not consulted, and later changes
    to the list do not show (as pyfw_rs reads it)."""
    return list.copy(v) if isinstance(v, list) else tuple.__getitem__(v, slice(None))


def _parse(data: Any, who: str) -> tuple:
    """Check ``data`` and return fresh ``(rows, shape)``."""
    if isinstance(data, Tensor):
        rows = [list(r) for r in data._rows]
        isfinite = math.isfinite
        for r in rows:
            if not all(map(isfinite, r)):
                bad = next(v for v in r if not isfinite(v))
                raise ValueError(f"{who}: expected finite numbers, got {bad!r}")
        return rows, data._shape
    if hasattr(data, "tolist") and hasattr(data, "shape") and not _is_seq(data):
        data = data.tolist()  # a tensor of the other backend, or an array
    if not _is_seq(data):
        raise TypeError(f"{who}: expected a nested list of numbers, got {type(data).__name__}")
    data = _items(data)
    if len(data) == 0:
        raise ValueError(f"{who}: empty data; tensors need at least one element")
    if _is_seq(data[0]):
        width = len(_items(data[0]))
        _reserve(len(data) * width, who)
        rows = []
        for r, row in enumerate(data):
            if not _is_seq(row):
                raise ValueError(f"{who}: ragged nested list: row {r} is a {type(row).__name__}, row 0 is a list")
            row = _items(row)
            if len(row) != width:
                raise ValueError(f"{who}: ragged nested list: row {r} has {len(row)} items, row 0 has {width}")
            rows.append([_number(v, who) for v in row])
        if width == 0:
            raise ValueError(f"{who}: rows are empty; tensors need at least one element")
        return rows, (len(rows), width)
    return [[_number(v, who) for v in data]], (len(data),)


def tensor(data: Any) -> Tensor:
    """Build a float64 tensor from a rectangular nested list (1-D or 2-D) or a tensor.

    Raises ``TypeError`` for non-numbers and ``ValueError`` for ragged, empty,
    deeper-than-2-D or non-finite data.
    """
    return Tensor(data)


def as_tensor(data: Any, who: str) -> Tensor:
    """``data`` itself if it is a Tensor, else a new one; errors name ``who``."""
    if isinstance(data, Tensor):
        return data
    rows, shape = _parse(data, who)
    return Tensor._wrap(rows, shape)


def zeros_like_rows(shape: Shape) -> list:
    """Row storage of zeros for ``shape``."""
    cols = shape[-1]
    nrows = 1 if len(shape) == 1 else shape[0]
    return [[0.0] * cols for _ in range(nrows)]


def shape_str(shape: Iterable[int]) -> str:
    """``(2, 3)`` -> ``'(2, 3)'``; ``(4,)`` -> ``'(4,)'``."""
    return str(tuple(shape))
