"""The tensor type: an array of float64 of any rank >= 1, stored as a list of row lists.

A tensor of shape ``(d0, ..., dk)`` holds its values in row-major order as
``d0 * ... * d(k-1)`` row lists of ``dk`` floats each: one run of the last
dimension per row. A 1-D tensor of shape ``(n,)`` is a single row of ``n``
floats, a 2-D tensor its rows, so every 2-D kernel walks rows the same way
whatever the rank. Tensors are never empty and have no 0-d form: what would be
0-d is a Python float. ``tensor()`` admits only finite real numbers; arithmetic
follows IEEE 754 (docs/NUMERICS.md, "Tensor arithmetic").

A row list is never changed in place: every in-place operation (``zero_``,
``copy_``, ``add_``, ``x[i] = v``, ``SGD.step``, gradient accumulation) puts new
row lists in the tensor. So a shallow copy of ``_rows`` is a snapshot, which is
how modules keep what ``backward`` needs.
"""

from __future__ import annotations

import math
import numbers
import operator
from functools import reduce
from itertools import repeat
from typing import Any, Callable, Iterable, Iterator, Optional, Union

from .generator import _resolve

Shape = tuple

MAX_RANK = 16
"""The most dimensions a tensor can have (as in pyfw_rs, whose shapes are stored inline)."""

_NAN = math.inf - math.inf
"""The hardware's own NaN (docs/NUMERICS.md, "NaN"), where Python would raise."""


class Tensor:
    """A float64 array of any rank >= 1, never empty. Build one with :func:`tensor`.

    ``grad`` is None, or for a parameter the tensor its module accumulates
    the gradient into (the one ``param()`` pairs it with).
    """

    __slots__ = ("_rows", "_shape", "_grad")

    def __init__(self, data: Any) -> None:
        rows, shape = _parse(data, "tensor", any_rank=True)
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

    # ---- shape and conversion ----------------------------------------------------

    @property
    def shape(self) -> Shape:
        """The shape, a tuple of ints (``(rows, cols)``, ``(n,)``, ...)."""
        return self._shape

    @property
    def ndim(self) -> int:
        """The number of dimensions (the rank, at least 1)."""
        return len(self._shape)

    def dim(self) -> int:
        """The number of dimensions (as ``torch.Tensor.dim``)."""
        return len(self._shape)

    def numel(self) -> int:
        """The number of elements."""
        return _prod(self._shape)

    def item(self) -> float:
        """The value of a one-element tensor, as a Python float."""
        if len(self._rows) != 1 or len(self._rows[0]) != 1:
            raise ValueError(f"item: a tensor of {self.numel()} elements (shape {self._shape}) has no single value; "
                             "only one-element tensors can be converted to a Python float")
        return self._rows[0][0]

    def tolist(self) -> list:
        """A fresh list of Python floats, nested to the tensor's rank."""
        if len(self._shape) == 1:
            return list(self._rows[0])
        return _group([list(r) for r in self._rows], self._shape)

    def clone(self) -> "Tensor":
        """A copy that shares no storage with this tensor."""
        return Tensor._wrap([list(r) for r in self._rows], self._shape)

    def reshape(self, *shape: Any) -> "Tensor":
        """A new tensor with the same values in row-major order and shape ``shape``
        (ints or one tuple/list of ints; one of them may be -1, inferred)."""
        n = self.numel()
        dims = _size_args(shape, "reshape", allow_infer=True)
        if -1 in dims:
            known = _prod([d for d in dims if d != -1])
            if n % known:
                raise ValueError(f"reshape: shape {_shape_text(dims)} is invalid for a tensor of {n} elements "
                                 f"(shape {self._shape})")
            dims = tuple(n // known if d == -1 else d for d in dims)
        if _prod(dims) != n:
            raise ValueError(f"reshape: shape {_shape_text(dims)} is invalid for a tensor of {n} elements "
                             f"(shape {self._shape})")
        return _from_flat(_flat(self), dims)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> "Tensor":
        """A new tensor with dims ``start_dim..end_dim`` merged into one."""
        nd = len(self._shape)
        s = _dim(start_dim, nd, "flatten")
        e = _dim(end_dim, nd, "flatten")
        if s > e:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} "
                             f"(tensor of shape {self._shape})")
        shape = self._shape[:s] + (_prod(self._shape[s:e + 1]),) + self._shape[e + 1:]
        return _from_flat(_flat(self), shape)

    def permute(self, *dims: Any) -> "Tensor":
        """A new tensor whose dim ``k`` is this tensor's dim ``dims[k]`` (ints or one tuple/list)."""
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        nd = len(self._shape)
        if len(dims) != nd:
            raise ValueError(f"permute: expected {nd} dims for a tensor of shape {self._shape}, got {len(dims)}")
        perm = tuple(_dim(d, nd, "permute") for d in dims)
        if len(set(perm)) != nd:
            raise ValueError(f"permute: dims {tuple(dims)} are not a permutation of the {nd} dims of {self._shape}")
        return _permuted(self, perm)

    def transpose(self, dim0: int, dim1: int) -> "Tensor":
        """A new tensor with dims ``dim0`` and ``dim1`` swapped."""
        nd = len(self._shape)
        a, b = _dim(dim0, nd, "transpose"), _dim(dim1, nd, "transpose")
        perm = list(range(nd))
        perm[a], perm[b] = b, a
        return _permuted(self, tuple(perm))

    @property
    def T(self) -> "Tensor":
        """The transpose of a 2-D tensor (a copy of a 1-D one); a ``ValueError`` for rank > 2."""
        if len(self._shape) > 2:
            raise ValueError(f"T: defined for 1-D and 2-D tensors, got shape {self._shape}; use permute")
        return _permuted(self, (1, 0) if len(self._shape) == 2 else (0,))

    # ---- in place ------------------------------------------------------------------

    def zero_(self) -> "Tensor":
        """Set every element to 0.0, in place; returns self."""
        rows = self._rows
        for r in range(len(rows)):
            rows[r] = [0.0] * len(rows[r])
        return self

    def copy_(self, src: Any) -> "Tensor":
        """Copy ``src`` (a tensor of either backend or a nested list) of the same shape, in place."""
        rows, shape = _parse(src, "Tensor.copy_", any_rank=True)
        if shape != self._shape:
            raise ValueError(f"Tensor.copy_: source shape {shape} differs from {self._shape}")
        self._rows[:] = rows
        return self

    def add_(self, other: Any, alpha: float = 1.0) -> "Tensor":
        """``self = self + (alpha * other)`` element by element (``other`` broadcast), in place; returns self."""
        a = _number(alpha, "Tensor.add_ alpha")
        o = _in_place_operand(other, "Tensor.add_")
        _check_finite(o, "Tensor.add_")  # as ever: add_ takes finite values only
        if a != 1.0:
            o = _binary(o, a, "Tensor.add_", operator.mul, None) if isinstance(o, Tensor) else o * a
        return self._update(_binary(self, o, "Tensor.add_", operator.add, None), "Tensor.add_")

    def sub_(self, other: Any, alpha: float = 1.0) -> "Tensor":
        """``self = self - (alpha * other)`` element by element (``other`` broadcast), in place; returns self."""
        a = _number(alpha, "Tensor.sub_ alpha")  # finite, as add_'s
        o = _in_place_operand(other, "Tensor.sub_")
        if a != 1.0:
            o = _binary(o, a, "Tensor.sub_", operator.mul, None) if isinstance(o, Tensor) else o * a
        return self._update(_binary(self, o, "Tensor.sub_", operator.sub, None), "Tensor.sub_")

    def mul_(self, other: Any) -> "Tensor":
        """``self = self * other`` element by element (``other`` broadcast), in place; returns self."""
        o = _in_place_operand(other, "Tensor.mul_")
        return self._update(_binary(self, o, "Tensor.mul_", operator.mul, None), "Tensor.mul_")

    def div_(self, other: Any) -> "Tensor":
        """``self = self / other`` element by element (``other`` broadcast, IEEE division), in place; returns self."""
        o = _in_place_operand(other, "Tensor.div_")
        return self._update(_binary(self, o, "Tensor.div_", operator.truediv, _div), "Tensor.div_")

    def clamp_(self, min: Optional[float] = None, max: Optional[float] = None) -> "Tensor":
        """``self = self.clamp(min, max)``, in place; returns self."""
        return self._update(self.clamp(min, max), "Tensor.clamp_")

    def _update(self, result: "Tensor", who: str) -> "Tensor":
        """Put ``result``'s rows (new lists) in self, whose shape it must have."""
        if result._shape != self._shape:
            raise ValueError(f"{who}: the result has the broadcast shape {result._shape}, "
                             f"this tensor has shape {self._shape}; an in-place operation cannot change the shape")
        self._rows[:] = result._rows
        return self

    # ---- indexing --------------------------------------------------------------------

    def __len__(self) -> int:
        return self._shape[0]

    def __getitem__(self, index: Any) -> Union["Tensor", float]:
        """A copy of the selected elements: a new tensor, or a Python float when every
        dim is indexed by an int.

        ``index`` is an int, a slice (step >= 1), a list of ints (along dim 0), or a tuple
        of ints, slices and at most one ``...``; dims left out are taken whole.
        """
        shape = self._shape
        if not isinstance(index, tuple):
            n = shape[0]
            one_d = len(shape) == 1
            items = self._rows[0] if one_d else self._rows
            span = len(self._rows) // n  # rows per entry of dim 0
            if type(index) is int and 0 <= index < n:
                pass
            elif isinstance(index, slice):
                if one_d or span == 1:
                    picked = items[index] if index.step is None else items[_range(index, n, 0)]
                    if not picked:
                        raise _empty(shape)
                    if one_d:
                        return Tensor._wrap([picked], (len(picked),))
                    return Tensor._wrap([list(r) for r in picked], (len(picked),) + shape[1:])
                index = _range(index, n, 0)
                picked = [i for i in range(n)][index]
                return self._gather(picked, span)
            elif isinstance(index, list):
                picked = [i if type(i) is int and 0 <= i < n else _index(i, n) for i in list.copy(index)]
                if not picked:
                    raise _empty(shape)
                if one_d:
                    return Tensor._wrap([[items[i] for i in picked]], (len(picked),))
                return self._gather(picked, span)
            elif index is ...:
                return self.clone()
            else:
                index = _index(index, n)
            if one_d:
                return items[index]
            if span == 1:
                return Tensor._wrap([list(items[index])], shape[1:])
            return Tensor._wrap([list(r) for r in items[index * span:(index + 1) * span]], shape[1:])
        plan, out_shape = _plan(index, shape)
        flat = _flat(self)
        values = [flat[o] for o in _offsets(plan)]
        if not out_shape:
            return values[0]
        return _from_flat(values, out_shape)

    def _gather(self, picked: list, span: int) -> "Tensor":
        """The entries ``picked`` of dim 0 (each ``span`` rows), as a new tensor."""
        rows = self._rows
        _reserve(len(picked) * span * self._shape[-1], "Tensor")
        if span == 1:
            out = [list(rows[i]) for i in picked]
        else:
            out = [list(r) for i in picked for r in rows[i * span:(i + 1) * span]]
        return Tensor._wrap(out, (len(picked),) + self._shape[1:])

    def __setitem__(self, index: Any, value: Any) -> None:
        """Write ``value`` (a number, a pyfw tensor broadcastable to the selection, or a
        nested list) into the selected elements, in place (new row lists for the rows that change)."""
        if isinstance(index, tuple):
            plan, sel = _plan(index, self._shape)
        else:
            plan, sel = _plan((index,), self._shape)
        offsets = _offsets(plan)
        if isinstance(value, numbers.Real) and not isinstance(value, Tensor):
            values: Any = repeat(_scalar(value, "Tensor.__setitem__"))
        else:
            if isinstance(value, (list, tuple)):
                v = Tensor(value)
            else:
                v = _operand(value, "Tensor.__setitem__")
            vshape = v._shape
            while len(vshape) > len(sel) and vshape[0] == 1:
                vshape = vshape[1:]
            if _broadcast(vshape, sel, "Tensor.__setitem__", v._shape) != sel:
                raise ValueError(f"Tensor.__setitem__: a value of shape {v._shape} does not broadcast to "
                                 f"the selected shape {sel}")
            values = _expand(_flat(v), vshape, sel)
        rows = self._rows
        width = self._shape[-1]
        changed: dict = {}
        for o, x in zip(offsets, values):
            r, c = divmod(o, width)
            row = changed.get(r)
            if row is None:
                row = changed[r] = list(rows[r])
            row[c] = x
        for r, row in changed.items():
            rows[r] = row

    def __iter__(self) -> Iterator[Union["Tensor", float]]:
        for i in range(self._shape[0]):
            yield self[i]

    # ---- arithmetic -------------------------------------------------------------------

    def __add__(self, other: Any) -> "Tensor":
        return _binary(self, _operand(other, "add"), "add", operator.add, None)

    def __radd__(self, other: Any) -> "Tensor":
        return _binary(_operand(other, "add"), self, "add", operator.add, None)

    def __sub__(self, other: Any) -> "Tensor":
        return _binary(self, _operand(other, "sub"), "sub", operator.sub, None)

    def __rsub__(self, other: Any) -> "Tensor":
        return _binary(_operand(other, "sub"), self, "sub", operator.sub, None)

    def __mul__(self, other: Any) -> "Tensor":
        return _binary(self, _operand(other, "mul"), "mul", operator.mul, None)

    def __rmul__(self, other: Any) -> "Tensor":
        return _binary(_operand(other, "mul"), self, "mul", operator.mul, None)

    def __truediv__(self, other: Any) -> "Tensor":
        return _binary(self, _operand(other, "div"), "div", operator.truediv, _div)

    def __rtruediv__(self, other: Any) -> "Tensor":
        return _binary(_operand(other, "div"), self, "div", operator.truediv, _div)

    def __pow__(self, exponent: Any) -> "Tensor":
        e = _operand(exponent, "pow")
        if isinstance(e, Tensor):
            raise TypeError("pow: the exponent must be a number (int or float), not a tensor")
        return _binary(self, e, "pow", math.pow, _pow)

    def __neg__(self) -> "Tensor":
        return _unary(self, operator.neg)

    def __abs__(self) -> "Tensor":
        return _unary(self, abs)

    def abs(self) -> "Tensor":
        """``|x|`` element by element."""
        return _unary(self, abs)

    def exp(self) -> "Tensor":
        """``exp(x)`` element by element (``inf`` on overflow)."""
        return _unary(self, math.exp, _exp)

    def log(self) -> "Tensor":
        """``log(x)`` element by element (``log(0) = -inf``, NaN for ``x < 0``)."""
        return _unary(self, math.log, _log)

    def sqrt(self) -> "Tensor":
        """``sqrt(x)`` element by element (NaN for ``x < 0``)."""
        return _unary(self, math.sqrt, _sqrt)

    def tanh(self) -> "Tensor":
        """``tanh(x)`` element by element."""
        return _unary(self, math.tanh)

    def sigmoid(self) -> "Tensor":
        """The ``Sigmoid`` activation's formula, element by element."""
        from .activations import _sigmoid  # activations imports this module
        return _unary(self, _sigmoid)

    def clamp(self, min: Optional[float] = None, max: Optional[float] = None) -> "Tensor":
        """Each element limited to ``[min, max]`` (either may be None; NaN stays NaN;
        ``min > max`` gives ``max``, as torch)."""
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must be given")
        lo = None if min is None else _scalar(min, "clamp min")
        hi = None if max is None else _scalar(max, "clamp max")

        def f(x: float) -> float:
            if x != x:
                return x
            if lo is not None and x < lo:
                x = lo
            if hi is not None and x > hi:
                x = hi
            return x
        return _unary(self, f)

    def __lt__(self, other: Any) -> "Tensor":
        return _compare(self, other, "lt", operator.lt)

    def __le__(self, other: Any) -> "Tensor":
        return _compare(self, other, "le", operator.le)

    def __gt__(self, other: Any) -> "Tensor":
        return _compare(self, other, "gt", operator.gt)

    def __ge__(self, other: Any) -> "Tensor":
        return _compare(self, other, "ge", operator.ge)

    def __eq__(self, other: Any) -> Any:  # type: ignore[override]
        if not _comparable(other):
            return NotImplemented
        return _compare(self, other, "eq", operator.eq)

    def __ne__(self, other: Any) -> Any:  # type: ignore[override]
        if not _comparable(other):
            return NotImplemented
        return _compare(self, other, "ne", operator.ne)

    __hash__ = object.__hash__  # identity: tensors stay usable as dict keys and in sets

    def __bool__(self) -> bool:
        if len(self._rows) != 1 or len(self._rows[0]) != 1:
            raise RuntimeError(f"bool of a tensor of {self.numel()} elements is ambiguous")
        return bool(self._rows[0][0])

    def __matmul__(self, other: Any) -> Union["Tensor", float]:
        return matmul(self, other)

    def __rmatmul__(self, other: Any) -> Union["Tensor", float]:
        return matmul(other, self)

    # ---- reductions ----------------------------------------------------------------------

    def sum(self, dim: Any = None, keepdim: bool = False) -> Union["Tensor", float]:
        """The sum over ``dim`` (None: all, an int, or a tuple of ints), folded in row-major order."""
        return _reduce(self, dim, keepdim, "sum", _fold)

    def mean(self, dim: Any = None, keepdim: bool = False) -> Union["Tensor", float]:
        """The mean over ``dim``: the sum divided by the number of reduced elements."""
        return _reduce(self, dim, keepdim, "mean", lambda t: _fold(t) / len(t))

    def var(self, dim: Any = None, unbiased: bool = True, keepdim: bool = False) -> Union["Tensor", float]:
        """The variance over ``dim``, divided by ``n - 1`` (``unbiased=True``) or ``n``."""
        if not isinstance(unbiased, bool):
            raise TypeError(f"var: unbiased must be a bool, got {type(unbiased).__name__}")

        def f(t: list) -> float:
            n = len(t)
            m = _fold(t) / n
            acc = _fold([(v - m) * (v - m) for v in t])
            return _div(acc, float(n - 1) if unbiased else float(n))
        return _reduce(self, dim, keepdim, "var", f)

    def max(self, dim: Optional[int] = None, keepdim: bool = False) -> Any:
        """The largest element (``dim=None``: a float), or ``(values, indices)`` along ``dim``."""
        return _extreme(self, dim, keepdim, "max", operator.gt, True)

    def min(self, dim: Optional[int] = None, keepdim: bool = False) -> Any:
        """The smallest element (``dim=None``: a float), or ``(values, indices)`` along ``dim``."""
        return _extreme(self, dim, keepdim, "min", operator.lt, True)

    def argmax(self, dim: Optional[int] = None, keepdim: bool = False) -> Any:
        """The index of the first largest element (``dim=None``: an int in row-major order),
        or the indices along ``dim`` as a nested list of ints."""
        return _extreme(self, dim, keepdim, "argmax", operator.gt, False)

    def argmin(self, dim: Optional[int] = None, keepdim: bool = False) -> Any:
        """The index of the first smallest element, as :meth:`argmax`."""
        return _extreme(self, dim, keepdim, "argmin", operator.lt, False)

    # ---- conversion ------------------------------------------------------------------------

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
        """``tensor([...])`` nested to the rank; past :data:`SUMMARY_THRESHOLD` elements,
        summarized as torch does."""
        nd = len(self._shape)
        rows = self._rows if nd == 2 else (self._rows[0] if nd == 1 else self.tolist())
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


# ---- module-level functions ---------------------------------------------------------------

def zeros(*size: Any) -> Tensor:
    """A tensor of ``size`` (ints, or one tuple/list of ints) filled with 0.0."""
    return _filled(_size_args(size, "zeros"), 0.0)


def ones(*size: Any) -> Tensor:
    """A tensor of ``size`` filled with 1.0."""
    return _filled(_size_args(size, "ones"), 1.0)


def full(size: Any, fill_value: float) -> Tensor:
    """A tensor of ``size`` (a tuple/list of ints, or an int) filled with ``fill_value``
    (any float, inf and NaN included)."""
    dims = _size_args(size if isinstance(size, (tuple, list)) else (size,), "full")
    return _filled(dims, _scalar(fill_value, "full fill_value"))


def zeros_like(t: Tensor) -> Tensor:
    """A tensor of ``t``'s shape filled with 0.0."""
    return _filled(_operand(t, "zeros_like", scalars=False)._shape, 0.0)


def ones_like(t: Tensor) -> Tensor:
    """A tensor of ``t``'s shape filled with 1.0."""
    return _filled(_operand(t, "ones_like", scalars=False)._shape, 1.0)


def rand(*size: Any, generator: Any = None) -> Tensor:
    """Uniform draws in [0, 1): one ``random()`` per element, in row-major order."""
    dims = _size_args(size, "rand")
    draw = _resolve(generator).random
    return _from_flat([draw() for _ in range(_prod(dims))], dims)


def randn(*size: Any, generator: Any = None) -> Tensor:
    """Standard normal draws: one ``normal()`` per element, in row-major order."""
    dims = _size_args(size, "randn")
    draw = _resolve(generator).normal
    return _from_flat([draw() for _ in range(_prod(dims))], dims)


def cat(tensors: Any, dim: int = 0) -> Tensor:
    """The tensors joined along ``dim``: same rank, same sizes but along ``dim``."""
    if not isinstance(tensors, (list, tuple)):
        raise TypeError(f"cat: expected a list or tuple of tensors, got {type(tensors).__name__}")
    ts = [_operand(t, "cat", scalars=False) for t in tensors]
    if not ts:
        raise ValueError("cat: expected at least one tensor; tensors are never empty")
    first = ts[0]._shape
    d = _dim(dim, len(first), "cat")
    for t in ts[1:]:
        s = t._shape
        if len(s) != len(first) or s[:d] != first[:d] or s[d + 1:] != first[d + 1:]:
            raise ValueError(f"cat: shapes {first} and {s} differ in a dim other than dim {dim}")
    total = 0
    for t in ts:
        total += t._shape[d]
    shape = first[:d] + (total,) + first[d + 1:]
    _reserve(_prod(shape), "cat")
    if d == len(first) - 1:  # join rows side by side
        rows = [[v for t in ts for v in t._rows[r]] for r in range(len(ts[0]._rows))]
        return Tensor._wrap(rows, shape)
    outer = _prod(first[:d])
    parts = []
    for t in ts:
        flat = _flat(t)
        step = len(flat) // outer
        parts.append((flat, step))
    out: list = []
    for o in range(outer):
        for flat, step in parts:
            out.extend(flat[o * step:(o + 1) * step])
    return _from_flat(out, shape)


def maximum(a: Tensor, b: Any) -> Tensor:
    """The larger of ``a`` and ``b`` element by element (broadcast; NaN if either is NaN; ``a`` on ties)."""
    return _binary(_operand(a, "maximum", scalars=False), _operand(b, "maximum"), "maximum", _max2, None)


def minimum(a: Tensor, b: Any) -> Tensor:
    """The smaller of ``a`` and ``b`` element by element (broadcast; NaN if either is NaN; ``a`` on ties)."""
    return _binary(_operand(a, "minimum", scalars=False), _operand(b, "minimum"), "minimum", _min2, None)


def matmul(a: Any, b: Any) -> Union[Tensor, float]:
    """The matrix product with torch's rules for 1-D, 2-D and batched operands; each
    output is a skipping fold over the inner dim (docs/NUMERICS.md). 1-D @ 1-D is a float."""
    a = _operand(a, "matmul", scalars=False)
    b = _operand(b, "matmul", scalars=False)
    sa, sb = a._shape, b._shape
    k = sa[-1]
    kb = sb[0] if len(sb) == 1 else sb[-2]
    if k != kb:
        raise ValueError(f"matmul: shapes {sa} and {sb} cannot be multiplied ({k} != {kb})")
    if len(sa) == 1 and len(sb) == 1:
        acc = 0.0
        for x, y in zip(a._rows[0], b._rows[0]):
            if x != 0.0:
                acc = acc + x * y
        return acc
    n = 1 if len(sa) == 1 else sa[-2]
    m = 1 if len(sb) == 1 else sb[-1]
    brows = [[v] for v in b._rows[0]] if len(sb) == 1 else b._rows
    ba, bb = sa[:-2], sb[:-2]
    batch = _broadcast(ba, bb, "matmul", sa, sb)
    _reserve(_prod(batch) * n * m, "matmul")
    ia = _offsets(_broadcast_plan(ba, batch))
    ib = _offsets(_broadcast_plan(bb, batch))
    arows = a._rows
    out: list = []
    for i, j in zip(ia, ib):
        out.extend(_mm(arows[i * n:(i + 1) * n], brows[j * k:(j + 1) * k], m))
    shape = batch + ((n,) if len(sa) > 1 else ()) + ((m,) if len(sb) > 1 else ())
    if len(sb) == 1:  # the rows were columns of one value
        return _from_flat([r[0] for r in out], shape)
    return Tensor._wrap(out, shape)


# ---- internals -------------------------------------------------------------------------------

def _prod(dims: Iterable[int]) -> int:
    n = 1
    for d in dims:
        n *= d
    return n


def _shape_text(dims: Iterable[int]) -> str:
    return str(tuple(dims))


def _flat(t: Tensor) -> list:
    """The values in row-major order (a tensor's own row for 1-D: read only)."""
    rows = t._rows
    if len(rows) == 1:
        return rows[0]
    return [v for r in rows for v in r]


def _from_flat(flat: list, shape: Shape) -> Tensor:
    """A new tensor of ``shape`` holding copies of the runs of ``flat``."""
    w = shape[-1]
    return Tensor._wrap([flat[i:i + w] for i in range(0, len(flat), w)], tuple(shape))


def _group(rows: list, shape: Shape) -> list:
    """Rows (runs of the last dim) grouped into nested lists for ``shape`` (rank >= 2)."""
    for size in reversed(shape[1:-1]):
        rows = [rows[i:i + size] for i in range(0, len(rows), size)]
    return rows


def _nested(flat: list, shape: Shape) -> Any:
    """``flat`` nested as ``tolist()`` nests a tensor of ``shape`` (a scalar for shape ())."""
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return list(flat)
    w = shape[-1]
    return _group([flat[i:i + w] for i in range(0, len(flat), w)], shape)


def _strides(shape: Shape) -> list:
    st = [1] * len(shape)
    for d in range(len(shape) - 2, -1, -1):
        st[d] = st[d + 1] * shape[d + 1]
    return st


def _offsets(plan: list) -> list:
    """Flat offsets in row-major order of the selection ``plan``: a list of
    ``(positions, stride)`` per dim."""
    idx = [0]
    for positions, stride in plan:
        steps = [p * stride for p in positions]
        if len(idx) == 1:
            base = idx[0]
            idx = [base + s for s in steps]
        else:
            idx = [i + s for i in idx for s in steps]
    return idx


def _permuted(t: Tensor, perm: tuple) -> Tensor:
    shape = t._shape
    if perm == tuple(range(len(shape))):
        return t.clone()
    if len(shape) == 2:
        return Tensor._wrap([list(c) for c in zip(*t._rows)], (shape[1], shape[0]))
    st = _strides(shape)
    out_shape = tuple(shape[p] for p in perm)
    flat = _flat(t)
    return _from_flat([flat[o] for o in _offsets([(range(shape[p]), st[p]) for p in perm])], out_shape)


def _dim(d: Any, nd: int, who: str) -> int:
    """``d`` as a dim in ``0..nd-1`` (negative counts from the end)."""
    if isinstance(d, bool) or not isinstance(d, numbers.Integral):
        raise TypeError(f"{who}: dim must be an int, got {type(d).__name__}")
    d = int(d)
    if not -nd <= d < nd:
        raise IndexError(f"{who}: dim {d} is out of range for a tensor of rank {nd}")
    return d + nd if d < 0 else d


def _size_args(args: tuple, who: str, allow_infer: bool = False) -> tuple:
    """Sizes given as ints or one tuple/list of ints, checked (``reshape`` allows one -1)."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    if not args:
        raise ValueError(f"{who}: expected at least one size; tensors have rank >= 1")
    if len(args) > MAX_RANK:
        raise ValueError(f"{who}: {len(args)} sizes are more than the {MAX_RANK} dimensions a tensor can have")
    dims = []
    for d in args:
        if isinstance(d, bool) or not isinstance(d, numbers.Integral):
            raise TypeError(f"{who}: sizes must be ints, got {type(d).__name__} {d!r}")
        d = int(d)
        if d < 1 and not (allow_infer and d == -1):
            raise ValueError(f"{who}: size {d} in {_shape_text(args)} is not positive; tensors are never empty")
        dims.append(d)
    if allow_infer and dims.count(-1) > 1:
        raise ValueError(f"{who}: only one size may be -1, got {_shape_text(dims)}")
    if not allow_infer:
        _reserve(_prod(dims), who)
    return tuple(dims)


def _filled(shape: Shape, value: float) -> Tensor:
    w = shape[-1]
    return Tensor._wrap([[value] * w for _ in range(_prod(shape[:-1]))], tuple(shape))


def _scalar(v: Any, who: str) -> float:
    """A Python number (bools too, True = 1.0) as a float; no finiteness check."""
    if not isinstance(v, numbers.Real):
        raise TypeError(f"{who}: expected a number, got {type(v).__name__}")
    if isinstance(v, float):
        return float.__float__(v)
    try:
        return float(v)
    except OverflowError:
        raise OverflowError(f"{who}: {_value_text(v)} is too large for a float") from None


def _comparable(v: Any) -> bool:
    """Whether ``==`` / ``!=`` compare element by element with ``v`` (else Python's
    identity answer: a tensor never equals None, a string, ...)."""
    return isinstance(v, (numbers.Real, list, tuple)) or (hasattr(v, "tolist") and hasattr(v, "shape"))


def _operand(v: Any, who: str, scalars: bool = True) -> Any:
    """``v`` as a pyfw Tensor, or as a float when it is a Python number and ``scalars``."""
    if isinstance(v, Tensor):
        return v
    if scalars and isinstance(v, numbers.Real):
        return _scalar(v, who)
    from .error import described, mixed  # error imports this module
    hint = mixed((v,), "pyfw")
    if hint:
        raise TypeError(f"{who}: expected a pyfw Tensor{' or a number' if scalars else ''}, "
                        f"got a {described(v)}{hint}")
    if isinstance(v, (list, tuple)):
        raise TypeError(f"{who}: expected a pyfw Tensor{' or a number' if scalars else ''}, got a "
                        f"{type(v).__name__}; convert it with fw.tensor()")
    raise TypeError(f"{who}: expected a pyfw Tensor{' or a number' if scalars else ''}, got {described(v)}")


def _in_place_operand(v: Any, who: str) -> Any:
    """The operand of an in-place update: a tensor or number, or a nested list (checked
    as ``tensor()`` checks it)."""
    if isinstance(v, (list, tuple)):
        rows, shape = _parse(v, who, any_rank=True)
        return Tensor._wrap(rows, shape)
    return _operand(v, who)


def _check_finite(o: Any, who: str) -> None:
    """``ValueError`` if the number or tensor ``o`` holds a NaN or an infinity."""
    isfinite = math.isfinite
    for r in (o._rows if isinstance(o, Tensor) else [[o]]):
        if not all(map(isfinite, r)):
            bad = next(v for v in r if not isfinite(v))
            raise ValueError(f"{who}: expected finite numbers, got {bad!r}")


def _broadcast(a: Shape, b: Shape, who: str, sa: Any = None, sb: Any = None) -> Shape:
    """numpy's broadcast shape of ``a`` and ``b`` (``ValueError`` naming ``sa``, ``sb``)."""
    if a == b:
        return a
    n = max(len(a), len(b))
    pa = (1,) * (n - len(a)) + tuple(a)
    pb = (1,) * (n - len(b)) + tuple(b)
    out = []
    for x, y in zip(pa, pb):
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            raise ValueError(f"{who}: shapes {a if sa is None else sa} and {b if sb is None else sb} "
                             "do not broadcast")
    return tuple(out)


def _broadcast_plan(shape: Shape, out: Shape) -> list:
    """The ``_offsets`` plan that reads a tensor of ``shape`` stretched to ``out``."""
    pad = len(out) - len(shape)
    st = _strides(shape)
    plan = []
    for d, n in enumerate(out):
        if d < pad or shape[d - pad] == 1:
            plan.append(([0] * n, 0))
        else:
            plan.append((range(n), st[d - pad]))
    return plan


def _expand(flat: list, shape: Shape, out: Shape) -> list:
    """``flat`` (a tensor of ``shape``) stretched to ``out``, as a flat list."""
    if tuple(shape) == tuple(out):
        return flat
    return [flat[o] for o in _offsets(_broadcast_plan(shape, out))]


def _map2(f: Callable, safe: Optional[Callable], xs: Iterable, ys: Iterable) -> list:
    """``f`` over pairs; when ``f`` raises where IEEE does not, ``safe`` for every pair."""
    if safe is None:
        return list(map(f, xs, ys))
    try:
        return list(map(f, xs, ys))
    except (ArithmeticError, ValueError):
        return list(map(safe, xs, ys))


def _binary(a: Any, b: Any, who: str, f: Callable, safe: Optional[Callable]) -> Tensor:
    """``f(a, b)`` element by element with broadcasting; ``a`` or ``b`` may be a float."""
    if not isinstance(a, Tensor):
        s = a
        return Tensor._wrap([_map2(f, safe, [s] * len(r), r) for r in b._rows], b._shape)
    if not isinstance(b, Tensor):
        s = b
        return Tensor._wrap([_map2(f, safe, r, [s] * len(r)) for r in a._rows], a._shape)
    sa, sb = a._shape, b._shape
    if sa == sb:
        return Tensor._wrap([_map2(f, safe, ra, rb) for ra, rb in zip(a._rows, b._rows)], sa)
    out = _broadcast(sa, sb, who)
    _reserve(_prod(out), who)
    if len(sb) == 1 and sb[0] == out[-1] and out == sa:  # a row broadcast over every row
        rb = b._rows[0]
        return Tensor._wrap([_map2(f, safe, ra, rb) for ra in a._rows], out)
    xs = _expand(_flat(a), sa, out)
    ys = _expand(_flat(b), sb, out)
    return _from_flat(_map2(f, safe, xs, ys), out)


def _compare(a: Tensor, other: Any, who: str, f: Callable) -> Tensor:
    t = _binary(a, _operand(other, who), who, f, None)
    t._rows = [list(map(float, r)) for r in t._rows]
    return t


def _unary(t: Tensor, f: Callable, safe: Optional[Callable] = None) -> Tensor:
    if safe is None:
        return Tensor._wrap([list(map(f, r)) for r in t._rows], t._shape)
    rows = []
    for r in t._rows:
        try:
            rows.append(list(map(f, r)))
        except (ArithmeticError, ValueError):
            rows.append(list(map(safe, r)))
    return Tensor._wrap(rows, t._shape)


def _div(a: float, b: float) -> float:
    """``a / b`` with IEEE's answers where Python raises (``b = ±0``)."""
    if b == 0.0:
        if a != a:
            return a
        if a == 0.0:
            return _NAN
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def _odd_integer(y: float) -> bool:
    return math.isfinite(y) and y == math.floor(y) and math.fmod(y, 2.0) != 0.0


def _pow(x: float, y: float) -> float:
    """C's ``pow(x, y)`` (C99 Annex F) where ``math.pow`` raises."""
    try:
        return math.pow(x, y)
    except OverflowError:
        return -math.inf if x < 0.0 and _odd_integer(y) else math.inf
    except ValueError:
        if x == 0.0:  # pow(±0, y < 0)
            return math.copysign(math.inf, x) if _odd_integer(y) else math.inf
        return _NAN  # a negative finite x with a finite non-integer y


def _exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _log(x: float) -> float:
    try:
        return math.log(x)
    except ValueError:
        return -math.inf if x == 0.0 else _NAN


def _sqrt(x: float) -> float:
    try:
        return math.sqrt(x)
    except ValueError:
        return _NAN


def _max2(a: float, b: float) -> float:
    return a if a != a or a >= b else b


def _min2(a: float, b: float) -> float:
    return a if a != a or a <= b else b


def _fold(terms: list) -> float:
    """``acc = t_0; acc = acc + t_k`` left to right (never Python's built-in, which compensates)."""
    return reduce(operator.add, terms)


def _mm(arows: list, brows: list, m: int) -> list:
    """Rows of ``A @ B``: each output a skipping fold over k starting at 0.0."""
    out = []
    for ar in arows:
        acc = [0.0] * m
        for av, br in zip(ar, brows):
            if av == 0.0:
                continue
            acc = [c + av * bv for c, bv in zip(acc, br)]
        out.append(acc)
    return out


def _reduced_dims(dim: Any, nd: int, who: str) -> list:
    """The sorted dims a reduction folds over."""
    if dim is None:
        return list(range(nd))
    if isinstance(dim, (tuple, list)):
        dims = [_dim(d, nd, who) for d in dim]
        if len(set(dims)) != len(dims):
            raise ValueError(f"{who}: dim {tuple(dim)} names a dim more than once")
        return sorted(dims) if dims else list(range(nd))
    return [_dim(dim, nd, who)]


def _lines(t: Tensor, dims: list) -> tuple:
    """The reduced terms of every output element (row-major order of both), and the
    output shapes without and with the kept size-1 dims."""
    shape = t._shape
    nd = len(shape)
    kept = [d for d in range(nd) if d not in dims]
    out = tuple(shape[d] for d in kept)
    keep = tuple(1 if d in dims else shape[d] for d in range(nd))
    if not kept:
        return [_flat(t)], out, keep
    if dims == [nd - 1]:
        return t._rows, out, keep
    st = _strides(shape)
    flat = _flat(t)
    outer = _offsets([(range(shape[d]), st[d]) for d in kept])
    inner = _offsets([(range(shape[d]), st[d]) for d in dims])
    return [[flat[o + i] for i in inner] for o in outer], out, keep


def _check_keepdim(keepdim: Any, who: str) -> None:
    if not isinstance(keepdim, bool):
        raise TypeError(f"{who}: keepdim must be a bool, got {type(keepdim).__name__}")


def _reduce(t: Tensor, dim: Any, keepdim: bool, who: str, f: Callable[[list], float]) -> Union[Tensor, float]:
    _check_keepdim(keepdim, who)
    lines, out, keep = _lines(t, _reduced_dims(dim, len(t._shape), who))
    values = [f(line) for line in lines]
    shape = keep if keepdim else out
    if not shape:
        return values[0]
    return _from_flat(values, shape)


def _best(line: list, better: Callable) -> tuple:
    """``(value, index)`` of the first best term; the first NaN wins."""
    best = line[0]
    if best != best:
        return best, 0
    at = 0
    for k in range(1, len(line)):
        v = line[k]
        if v != v:
            return v, k
        if better(v, best):
            best, at = v, k
    return best, at


def _extreme(t: Tensor, dim: Any, keepdim: bool, who: str, better: Callable, values: bool) -> Any:
    _check_keepdim(keepdim, who)
    nd = len(t._shape)
    if dim is not None:
        dims = [_dim(dim, nd, who)]
    else:
        dims = list(range(nd))
    lines, out, keep = _lines(t, dims)
    found = [_best(line, better) for line in lines]
    shape = keep if keepdim else out
    if dim is None:
        if not shape:
            return found[0][0] if values else found[0][1]
        return _from_flat([v for v, _ in found], shape) if values else _nested([i for _, i in found], shape)
    indices = _nested([i for _, i in found], shape)
    if not values:
        return indices
    if not shape:
        return found[0][0], indices
    return _from_flat([v for v, _ in found], shape), indices


def _range(s: slice, n: int, d: int) -> slice:
    """A slice of a dim of size ``n`` with its step checked (>= 1)."""
    if s.step is not None:
        step = s.step
        if isinstance(step, bool) or not isinstance(step, numbers.Integral):
            raise TypeError(f"Tensor: slice steps must be ints, got {type(step).__name__}")
        if step < 1:
            raise ValueError(f"Tensor: slice step must be positive, got {step} (dim {d})")
    return s


def _empty(shape: Shape) -> ValueError:
    return ValueError(f"Tensor: index selects no elements from shape {shape}; empty tensors are not supported")


def _plan(index: tuple, shape: Shape) -> tuple:
    """The ``_offsets`` plan of a tuple index, and the shape of what it selects."""
    nd = len(shape)
    n_ell = 0
    n_real = 0
    for ix in index:
        if ix is ...:
            n_ell += 1
        else:
            n_real += 1
    if n_ell > 1:
        raise IndexError("Tensor: an index can hold only one ellipsis (...)")
    if n_real > nd:
        raise IndexError(f"Tensor: too many indices ({n_real}) for a tensor of rank {nd} (shape {shape})")
    full = []
    for ix in index:
        if ix is ...:
            full.extend([slice(None)] * (nd - n_real))
        else:
            full.append(ix)
    full.extend([slice(None)] * (nd - len(full)))
    st = _strides(shape)
    plan = []
    out = []
    for d, (ix, n) in enumerate(zip(full, shape)):
        if isinstance(ix, slice):
            positions = range(n)[_range(ix, n, d)]
            if not positions:
                raise _empty(shape)
            out.append(len(positions))
        elif isinstance(ix, list):
            if len(index) != 1:
                raise TypeError("Tensor: advanced indexing (a list inside a tuple index) is not supported; "
                                "a list of ints is allowed only as the whole index")
            positions = [_index(i, n) for i in list.copy(ix)]
            if not positions:
                raise _empty(shape)
            out.append(len(positions))
        else:
            positions = [_index(ix, n)]
        plan.append((positions, st[d]))
    return plan, tuple(out)


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
        raise ValueError(f"{who}: ragged or too deeply nested list (a list where a number was expected)")
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
    if count < 1 << 16:
        return
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


def _parse(data: Any, who: str, any_rank: bool = False) -> tuple:
    """Check ``data`` and return fresh ``(rows, shape)``.

    Only ``any_rank`` admits rank > 2 (``tensor()``, ``copy_``, in-place operands, module
    inputs); the other doors (file writers, ``load_state_dict``) take 1-D and 2-D data.
    """
    if isinstance(data, Tensor):
        if not any_rank and len(data._shape) > 2:
            raise ValueError(f"{who}: expected a 1-D or 2-D tensor, got shape {data._shape}")
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
        first = _items(data[0])
        if first and _is_seq(first[0]) and any_rank:
            return _parse_nd(data, who)
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


def _parse_nd(data: list, who: str) -> tuple:
    """``(rows, shape)`` of nested lists of rank >= 3, level by level (no recursion)."""
    shape = []
    v: Any = data
    while _is_seq(v):
        items = _items(v)
        if not items:
            raise ValueError(f"{who}: empty list at depth {len(shape)}; tensors need at least one element")
        shape.append(len(items))
        if len(shape) > MAX_RANK:
            raise ValueError(f"{who}: nested deeper than the {MAX_RANK} dimensions a tensor can have")
        v = items[0]
    _reserve(_prod(shape), who)
    level = [data]
    for depth, size in enumerate(shape[:-1]):
        nxt = []
        for v in level:
            items = _items(v)
            if len(items) != size:
                raise ValueError(f"{who}: ragged nested list: a list at depth {depth} has {len(items)} items, "
                                 f"the first has {size}")
            for x in items:
                if not _is_seq(x):
                    raise ValueError(f"{who}: ragged nested list: a {type(x).__name__} at depth {depth + 1}, "
                                     "where the first entry has a list")
            nxt.extend(items)
        level = nxt
    width = shape[-1]
    rows = []
    for v in level:
        items = _items(v)
        if len(items) != width:
            raise ValueError(f"{who}: ragged nested list: a row has {len(items)} items, the first has {width}")
        rows.append([_number(x, who) for x in items])
    return rows, tuple(shape)


def tensor(data: Any) -> Tensor:
    """Build a float64 tensor from a rectangular nested list of any depth, a numpy
    array of any rank, or a tensor.

    Raises ``TypeError`` for non-numbers and ``ValueError`` for ragged, empty or
    non-finite data.
    """
    return Tensor(data)


def as_tensor(data: Any, who: str) -> Tensor:
    """``data`` itself if it is a Tensor, else a new one of any rank (the input of a
    module, a loss or a gradient); errors name ``who``."""
    if isinstance(data, Tensor):
        return data
    rows, shape = _parse(data, who, any_rank=True)
    return Tensor._wrap(rows, shape)


def zeros_like_rows(shape: Shape) -> list:
    """Row storage of zeros for ``shape``."""
    cols = shape[-1]
    return [[0.0] * cols for _ in range(_prod(shape[:-1]))]


def shape_str(shape: Iterable[int]) -> str:
    """``(2, 3)`` -> ``'(2, 3)'``; ``(4,)`` -> ``'(4,)'``."""
    return str(tuple(shape))
