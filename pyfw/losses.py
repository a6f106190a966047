"""The loss family: modules whose ``forward(input, target)`` returns a Python float
and whose ``backward()`` returns dL/d(input) as a tensor.

``Loss`` owns everything but the math: the ``reduction`` argument, parsing and
checking the target, the one fold that adds the terms up, and the gradient it
keeps for ``backward``. Every member writes only its kernel, ``_terms(xs, ts)``,
over row lists (a 1-D tensor is one row): the loss terms, one per element or,
for the class losses, one per row, and the derivative of the sum of the terms
with respect to each input element. The order of floating-point operations of
each kernel, and of the fold, is in docs/NUMERICS.md, section "Losses"; the
docstrings state the math. ``LOSSES`` lists the members: the public names, the
CLI choices and the tests come from it. ``rust/losses.rs`` holds the same
kernels, in the same order, under the same names.

Names, defaults and formulas are torch's (``torch.nn.MSELoss`` ...), with these
differences: ``reduction`` is ``"mean"`` or ``"sum"`` only (torch's ``"none"``
would need a tensor result, and ``loss(out, target)`` returns a Python float);
class indices are a (nested) list of ints rather than a LongTensor (an integer
array works too, through its ``tolist()``, and so does a float tensor of integral
values, since pyfw's tensors are float); there are no ``weight``, ``pos_weight`` or
``ignore_index`` arguments; and the member's own arguments come first, so
``HuberLoss(2.0)`` sets ``delta``.
"""

from __future__ import annotations

import math
import numbers
import threading
from typing import Any, Callable

from .activations import _sigmoid
from .error import NO_GRAD, check_real, check_thread, not_forwarded
from .grad_mode import is_grad_enabled
from .modules import Module
from .tensor import Tensor, _items, as_tensor

Rows = list

REDUCTIONS = ("mean", "sum")
"""The accepted values of ``reduction``."""

BCE_LOG_MIN = -100.0
"""``BCELoss`` clamps its log terms at this value, as torch does."""

BCE_EPS = 1e-12
"""``BCELoss``'s backward divides by ``max((1 - x) x, BCE_EPS)``, as torch does."""


def check_reduction(v: Any, who: str) -> str:
    """``"mean"`` or ``"sum"`` (``TypeError`` for a non-string, ``ValueError`` for any other string)."""
    if not isinstance(v, str):
        raise TypeError(f"{who}: reduction must be a str, got {type(v).__name__}")
    if v not in REDUCTIONS:
        raise ValueError(f"{who}: reduction must be 'mean' or 'sum', got {v!r} "
                         "('none' is not supported: a loss returns one Python float)")
    return str(v)


def _is_seq(v: Any) -> bool:
    return isinstance(v, (list, tuple))


def _position(shape: tuple, r: int, k: int) -> str:
    """The index tuple of element ``k`` of storage row ``r`` of a tensor of ``shape``."""
    i = r * shape[-1] + k
    at = []
    for d in reversed(shape):
        at.append(i % d)
        i //= d
    return str(tuple(reversed(at)))


def _check_probabilities(rows: Rows, shape: tuple, who: str, what: str) -> None:
    """Every value of ``rows`` in [0, 1], else a ``ValueError`` naming the first one outside."""
    for r, row in enumerate(rows):
        for k, v in enumerate(row):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{who}: {what} values must be probabilities in [0, 1], "
                                 f"got {v!r} at {_position(shape, r, k)} of shape {shape}")


def _rank(v: Any) -> int:
    """The nesting depth of a list or tuple, along its first items (0 for anything else)."""
    r = 0
    while _is_seq(v):
        r += 1
        items = _items(v)
        v = items[0] if items else None
    return r


def _nested_items(target: Any, depth: int, who: str) -> tuple:
    """``(items, shape)`` of a nested list of class indices ``depth`` levels deep: the items in
    row-major order; a ``ValueError`` where it is ragged."""
    level = [target]
    shape: list = []
    for d in range(depth):
        size = len(_items(level[0]))
        nxt = []
        for v in level:
            items = _items(v) if _is_seq(v) else None
            if items is None or len(items) != size:
                got = f"{len(items)} items" if items is not None else f"a {type(v).__name__}"
                raise ValueError(f"{who}: ragged class indices: {got} at depth {d}, the first entry has "
                                 f"{size} items")
            nxt.extend(items)
        shape.append(size)
        level = nxt
    return level, tuple(shape)


def _class_indices(target: Any, shape: tuple, who: str, floats: bool) -> list:
    """The class indices for an input of ``shape`` (N, C, d1, ...), in row-major order: a list
    of N indices for (N, C), else nested lists of shape (N, d1, ...). The shape (the count for
    (N, C)), then each index's type and range; ``floats`` admits integral floats (a tensor's)."""
    c = shape[1]
    want = shape[:1] + shape[2:]
    if len(shape) == 2:
        items = _items(target)
        if len(items) != shape[0]:
            raise ValueError(f"{who}: input shape {shape} needs {shape[0]} class indices, got {len(items)}")
    else:
        items, got = _nested_items(target, len(want), who)
        if got != want:
            raise ValueError(f"{who}: input shape {shape} needs class indices of shape {want}, got shape {got}")
    out = []
    for i, v in enumerate(items):
        pos = str(i) if len(shape) == 2 else _position(want, 0, i)
        if floats and isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            kind = "ints (or a tensor of integral values)" if floats else "ints"
            raise TypeError(f"{who}: class indices must be {kind}, got {type(v).__name__} at position {pos}")
        k = int(v)
        if not 0 <= k < c:
            raise ValueError(f"{who}: class index {k} at position {pos} is out of range "
                             f"for input shape {shape} ({c} classes)")
        out.append(k)
    return out


def _class_rows(rows: Rows, shape: tuple) -> Rows:
    """The lines along dim 1 of an (N, C, d1, ...) tensor as rows of C, in row-major order of
    (n, d1, ...): the (N * d1 * ..., C) input the class kernels see."""
    if len(shape) == 2:
        return rows
    flat = [v for r in rows for v in r]
    c = shape[1]
    inner = len(flat) // (shape[0] * c)
    return [flat[n * c * inner + j:(n + 1) * c * inner:inner] for n in range(shape[0]) for j in range(inner)]


def _class_unrows(rows: Rows, shape: tuple) -> Rows:
    """The inverse of :func:`_class_rows`: rows of C back into the storage rows of ``shape``."""
    if len(shape) == 2:
        return rows
    c = shape[1]
    inner = len(rows) // shape[0]
    flat = [0.0] * (len(rows) * c)
    for r, row in enumerate(rows):
        n, j = divmod(r, inner)
        flat[n * c * inner + j:(n + 1) * c * inner:inner] = row
    cols = shape[-1]
    return [flat[k:k + cols] for k in range(0, len(flat), cols)]


class Loss(Module):
    """Base of the family: the reduction, the target, the fold, and the gradient for ``backward``.

    A member sets what it takes: ``_targets`` is ``"values"`` (a tensor of the
    input's shape), ``"classes"`` (class indices: N for an (N, C) input, of shape
    (N, d1, ...) for (N, C, d1, ...)) or ``"either"`` (class indices, or a tensor of
    class probabilities of the input's shape, told apart by rank); ``_input_probs`` and ``_target_probs`` require values in
    [0, 1]. ``_params`` names the member's own constructor arguments, in order,
    for ``repr``. The member's ``_terms(xs, ts)`` returns the terms and the
    derivative rows; ``ts`` is the target's row list, or the list of class
    indices. The value is the fold of the terms starting at 0.0 (docs/NUMERICS.md,
    "Losses"), divided by their count for ``"mean"``; the gradient is the
    derivative, divided by the same count for ``"mean"``.
    """

    _params: tuple = ()
    _targets: str = "values"
    _input_probs: bool = False
    _target_probs: bool = False
    _saved: Any = None  # what forward kept: a tuple, NO_GRAD (under no_grad) or None

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction, self._member())

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__module__ == __name__ and "__init__" not in vars(cls):
            # A member that takes only the reduction gets an __init__ of its own name, so
            # that a wrong argument names the member (as pyfw_rs), not Loss.
            def __init__(self: Loss, reduction: str = "mean") -> None:
                Loss.__init__(self, reduction)
            __init__.__qualname__ = f"{cls.__name__}.__init__"
            __init__.__doc__ = f"A {cls.__name__} with ``reduction`` ``\"mean\"`` or ``\"sum\"``."
            cls.__init__ = __init__  # type: ignore[misc]

    def _check_restored(self) -> None:
        """An unpickled loss's arguments pass its member's constructor again."""
        super()._check_restored()
        member = next(c for c in type(self).__mro__ if c.__module__ == __name__)
        kwargs = {name: self.__dict__.get(name) for name in (*member._params, "reduction")}
        member.__init__(member.__new__(member), **kwargs)

    def forward(self, input: Any, target: Any) -> float:
        """The loss of ``input`` against ``target``, as a Python float."""
        who = self._member()
        x = as_tensor(input, f"{who} input")
        ts = self._target(x, target, who)
        classes = self._targets != "values"
        terms, deriv = self._terms(_class_rows(x._rows, x.shape) if classes else x._rows, ts)
        if classes:
            deriv = _class_unrows(deriv, x.shape)
        total = 0.0
        for v in terms:
            total = total + v
        n = float(len(terms)) if self.reduction == "mean" else None
        self._saved = (deriv, n, x.shape, threading.get_ident()) if is_grad_enabled() else NO_GRAD
        return total if n is None else total / n

    def backward(self) -> Tensor:
        """dL/d(input) of the last ``forward``, in the input's shape."""
        if self._saved is None or self._saved is NO_GRAD:
            raise not_forwarded(self._member(), self._saved)
        deriv, n, shape, owner = self._saved
        check_thread(owner, self._member())
        rows = [list(r) for r in deriv] if n is None else [[d / n for d in r] for r in deriv]
        return Tensor._wrap(rows, shape)

    def _target(self, x: Tensor, target: Any, who: str) -> Any:
        """The checked target: the row list of a tensor, or the list of class indices."""
        if self._targets == "values":
            t = as_tensor(target, f"{who} target")
            if t.shape != x.shape:
                raise ValueError(f"{who}: input shape {x.shape} and target shape {t.shape} differ")
            if self._input_probs:
                _check_probabilities(x._rows, x.shape, who, "input")
            if self._target_probs:
                _check_probabilities(t._rows, t.shape, who, "target")
            return t._rows
        if x.ndim < 2:
            raise ValueError(f"{who}: expected an input of shape (N, C) or (N, C, d1, ...), got shape {x.shape}")
        floats = hasattr(target, "tolist") and hasattr(target, "shape") and not _is_seq(target)
        if floats:
            target = target.tolist()  # a tensor of either backend, or an array
        if _is_seq(target) and _rank(target) == x.ndim - 1:
            # The storage is read: a subclass's __len__ or __getitem__ may lie.
            return _class_indices(target, x.shape, who, floats)
        if self._targets == "classes":
            if x.ndim == 2:
                raise TypeError(f"{who}: target must be a list of class indices (ints), "
                                f"one per row of input shape {x.shape}")
            raise TypeError(f"{who}: target must be class indices (ints) of shape {x.shape[:1] + x.shape[2:]} "
                            f"for input shape {x.shape}")
        t = as_tensor(target, f"{who} target")
        if t.shape != x.shape:
            raise ValueError(f"{who}: input shape {x.shape} and target shape {t.shape} differ")
        if self._target_probs:
            _check_probabilities(t._rows, t.shape, who, "target")
        return _class_rows(t._rows, t.shape)

    def _terms(self, xs: Rows, ts: Any) -> tuple:
        raise NotImplementedError

    def _member(self) -> str:
        """The member's name for messages (a Python subclass's errors name the member it extends)."""
        for cls in type(self).__mro__:
            if LOSSES.get(cls.__name__) is cls:
                return cls.__name__
        return type(self).__name__

    def __repr__(self) -> str:
        args = [f"{p}={getattr(self, p)!r}" for p in self._params] + [f"reduction={self.reduction!r}"]
        return f"{type(self).__name__}({', '.join(args)})"


def _each(xs: Rows, ts: Rows, f: Callable[[float, float], tuple]) -> tuple:
    """Element-wise members: ``f(x, t) -> (term, derivative)`` for every element, in row-major order."""
    terms: list = []
    deriv = []
    for xr, tr in zip(xs, ts):
        drow = []
        for x, t in zip(xr, tr):
            v, d = f(x, t)
            terms.append(v)
            drow.append(d)
        deriv.append(drow)
    return terms, deriv


def _by_rows(xs: Rows, ts: list, f: Callable[[list, Any], tuple]) -> tuple:
    """Class members: ``f(row, target) -> (term, derivative row)`` for every row; the target of a
    row is its class index or its row of probabilities."""
    terms = []
    deriv = []
    for xr, t in zip(xs, ts):
        v, drow = f(xr, t)
        terms.append(v)
        deriv.append(drow)
    return terms, deriv


def _l1(x: float, t: float) -> tuple:
    d = x - t
    return abs(d), (1.0 if d > 0.0 else (-1.0 if d < 0.0 else 0.0))


class MSELoss(Loss):
    """Squared error: term ``d^2`` with ``d = x - t``; derivative ``2 d``.

    ``"mean"`` divides by the number of elements, as ``torch.nn.MSELoss()``.
    """

    def _terms(self, xs: Rows, ts: Rows) -> tuple:
        def f(x: float, t: float) -> tuple:
            d = x - t
            return d * d, 2.0 * d
        return _each(xs, ts, f)


class L1Loss(Loss):
    """Absolute error: term ``|d|`` with ``d = x - t``; derivative ``sign(d)``, 0 at ``d = 0`` (torch's)."""

    def _terms(self, xs: Rows, ts: Rows) -> tuple:
        return _each(xs, ts, _l1)


class HuberLoss(Loss):
    """With ``z = |d|``, ``d = x - t``: term ``z^2 / 2`` for ``z < delta``, else ``delta (z - delta / 2)``;
    derivative ``d`` clamped to ``[-delta, delta]`` (at ``|d| = delta``, the quadratic branch's, as torch)."""

    _params = ("delta",)

    def __init__(self, delta: float = 1.0, reduction: str = "mean") -> None:
        self.delta = check_real(delta, "HuberLoss", "delta")
        if self.delta <= 0.0:
            raise ValueError(f"HuberLoss: delta must be positive, got {self.delta!r}")
        super().__init__(reduction)

    def _terms(self, xs: Rows, ts: Rows) -> tuple:
        delta = self.delta

        def f(x: float, t: float) -> tuple:
            d = x - t
            z = abs(d)
            v = 0.5 * z * z if z < delta else delta * (z - 0.5 * delta)
            return v, (-delta if d < -delta else (delta if d > delta else d))
        return _each(xs, ts, f)


class SmoothL1Loss(Loss):
    """With ``z = |d|``, ``d = x - t``: term ``z^2 / (2 beta)`` for ``z < beta``, else ``z - beta / 2``;
    derivative ``d / beta`` clamped to ``[-1, 1]``. ``beta = 0`` is ``L1Loss``, as in torch."""

    _params = ("beta",)

    def __init__(self, beta: float = 1.0, reduction: str = "mean") -> None:
        self.beta = check_real(beta, "SmoothL1Loss", "beta")
        if self.beta < 0.0:
            raise ValueError(f"SmoothL1Loss: beta must be non-negative, got {self.beta!r}")
        super().__init__(reduction)

    def _terms(self, xs: Rows, ts: Rows) -> tuple:
        beta = self.beta
        if beta == 0.0:
            return _each(xs, ts, _l1)

        def f(x: float, t: float) -> tuple:
            d = x - t
            z = abs(d)
            v = 0.5 * z * z / beta if z < beta else z - 0.5 * beta
            return v, (-1.0 if d <= -beta else (1.0 if d >= beta else d / beta))
        return _each(xs, ts, f)


class CrossEntropyLoss(Loss):
    """Cross-entropy of logits ``x`` (N, C) against class indices or class probabilities ``p``.

    With ``logp = log_softmax(x)`` (the row maximum subtracted first) and
    ``q_k = p_k (1 - label_smoothing) + label_smoothing / C`` (a class index ``y``
    is the one-hot row ``p_k = [k == y]``), the term of a row is
    ``-sum_k q_k logp_k`` and its derivative ``softmax(x)_k sum_j q_j - q_k``.
    ``"mean"`` divides by N, as torch. Index and one-hot targets give the same bits.
    """

    _params = ("label_smoothing",)
    _targets = "either"
    _target_probs = True

    def __init__(self, label_smoothing: float = 0.0, reduction: str = "mean") -> None:
        self.label_smoothing = check_real(label_smoothing, "CrossEntropyLoss", "label_smoothing")
        if not 0.0 <= self.label_smoothing <= 1.0:
            raise ValueError("CrossEntropyLoss: label_smoothing must be between 0.0 and 1.0, "
                             f"got {self.label_smoothing!r}")
        super().__init__(reduction)

    def _terms(self, xs: Rows, ts: list) -> tuple:
        c = len(xs[0])
        keep = 1.0 - self.label_smoothing
        spread = self.label_smoothing / float(c)
        exp, log = math.exp, math.log

        def f(x: list, t: Any) -> tuple:
            p = [1.0 if k == t else 0.0 for k in range(c)] if isinstance(t, int) else t
            m = x[0]
            for v in x:
                if v > m:
                    m = v
            u = [v - m for v in x]
            e = [exp(v) for v in u]
            s = 0.0
            for v in e:
                s = s + v
            lse = log(s)
            q = [pk * keep + spread for pk in p]
            term = 0.0
            total_q = 0.0
            for qk, uk in zip(q, u):
                if qk != 0.0:
                    term = term + qk * (lse - uk)
                total_q = total_q + qk
            return term, [ek / s * total_q - qk for ek, qk in zip(e, q)]
        return _by_rows(xs, ts, f)


class NLLLoss(Loss):
    """Negative log-likelihood of log-probabilities ``x`` (N, C) at class indices ``y``:
    the term of a row is ``-x_y``, its derivative ``-1`` at ``y`` and 0 elsewhere. ``"mean"``
    divides by N, as torch."""

    _targets = "classes"

    def _terms(self, xs: Rows, ts: list) -> tuple:
        def f(x: list, y: int) -> tuple:
            d = [0.0] * len(x)
            d[y] = -1.0
            return -x[y], d
        return _by_rows(xs, ts, f)


def _log_clamped(v: float) -> float:
    """``max(log(v), -100)``, and -100 for ``v = 0``."""
    if v > 0.0:
        lv = math.log(v)
        return lv if lv > BCE_LOG_MIN else BCE_LOG_MIN
    return BCE_LOG_MIN


def _log1m_clamped(v: float) -> float:
    """``max(log1p(-v), -100)``, and -100 for ``v = 1``."""
    if v < 1.0:
        lv = math.log1p(-v)
        return lv if lv > BCE_LOG_MIN else BCE_LOG_MIN
    return BCE_LOG_MIN


class BCELoss(Loss):
    """Binary cross-entropy of probabilities ``x`` against probabilities ``t``, as torch:
    term ``(t - 1) max(log(1 - x), -100) - t max(log x, -100)``; derivative
    ``(x - t) / max((1 - x) x, 1e-12)``. Inputs and targets must lie in [0, 1]."""

    _input_probs = True
    _target_probs = True

    def _terms(self, xs: Rows, ts: Rows) -> tuple:
        def f(x: float, t: float) -> tuple:
            v = (t - 1.0) * _log1m_clamped(x) - t * _log_clamped(x)
            w = (1.0 - x) * x
            return v, (x - t) / (w if w > BCE_EPS else BCE_EPS)
        return _each(xs, ts, f)


class BCEWithLogitsLoss(Loss):
    """Binary cross-entropy of logits ``x`` against probabilities ``t``, stable for any logit:
    term ``max(x, 0) - x t + log(1 + exp(-|x|))`` (= ``-t log s(x) - (1 - t) log(1 - s(x))``
    with the sigmoid ``s``); derivative ``s(x) - t``. Targets must lie in [0, 1]."""

    _target_probs = True

    def _terms(self, xs: Rows, ts: Rows) -> tuple:
        exp, log1p = math.exp, math.log1p

        def f(x: float, t: float) -> tuple:
            v = ((x if x > 0.0 else 0.0) - x * t) + log1p(exp(-abs(x)))
            return v, _sigmoid(x) - t
        return _each(xs, ts, f)


LOSSES: dict = {cls.__name__: cls for cls in (
    MSELoss, L1Loss, HuberLoss, SmoothL1Loss, CrossEntropyLoss, NLLLoss, BCELoss, BCEWithLogitsLoss,
)}
"""The members of the family, by class name, in table order."""
