"""The activation family: modules whose output has the shape of their input.

Every member keeps its input and output for ``backward`` and writes only its
two kernels, ``_forward(xs, shape)`` and ``_backward(xs, ys, gs, shape)``, over
row lists (a 1-D tensor is one row). The order of floating-point operations of
each kernel is in docs/NUMERICS.md, section "Activations"; the docstrings state
the math. ``ACTIVATIONS`` lists the members: the public names, the CLI choices
and the tests come from it. ``rust/activations.rs`` holds the same kernels, in
the same order, under the same names.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import threading

from .error import NO_GRAD, check_grad, check_int, check_real, check_thread, not_forwarded
from .grad_mode import is_grad_enabled
from .modules import Module
from .tensor import Tensor, as_tensor

Rows = list

# 1/sqrt(2) and 1/sqrt(2*pi), as float64 (the same literals in rust/activations.rs).
SQRT1_2 = 0.7071067811865476
INV_SQRT_2PI = 0.3989422804014327


class Activation(Module):
    """Base of the family: checks the input, keeps what ``backward`` needs, checks the gradient.

    ``_params`` names the constructor arguments, in order, for ``repr``. They are
    read-only once set: build a new module to change one.
    """

    _params: tuple = ()
    _saved: Any = None  # what forward kept: a tuple, NO_GRAD (under no_grad) or None

    def __setattr__(self, name: str, value: Any) -> None:
        if name in type(self)._params and name in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.{name} is read-only")
        super().__setattr__(name, value)

    def _check_restored(self) -> None:
        """An unpickled activation's arguments pass its member's constructor again, and are kept
        as the constructor stores them."""
        super()._check_restored()
        member = next(c for c in type(self).__mro__ if c.__module__ == __name__)
        fresh = member.__new__(member)
        member.__init__(fresh, **{name: self.__dict__.get(name) for name in member._params})
        for name in member._params:
            self.__dict__[name] = fresh.__dict__[name]

    def forward(self, x: Any) -> Tensor:
        """Apply the activation to an input of any shape."""
        x = as_tensor(x, self._name())
        ys = self._forward(x._rows, x.shape)
        # Shallow copies are snapshots: no row list is ever changed in place. Under no_grad, nothing.
        self._saved = (list(x._rows), ys, x.shape, threading.get_ident()) if is_grad_enabled() else NO_GRAD
        return Tensor._wrap(list(ys), x.shape)

    def backward(self, grad: Any) -> Tensor:
        """The gradient with respect to the input."""
        who = self._name()
        if self._saved is None or self._saved is NO_GRAD:
            raise not_forwarded(who, self._saved)
        xs, ys, shape, owner = self._saved
        check_thread(owner, who)
        gs = check_grad(grad, shape, who)._rows
        return Tensor._wrap(self._backward(xs, ys, gs, shape), shape)

    def _forward(self, xs: Rows, shape: tuple) -> Rows:
        raise NotImplementedError

    def _backward(self, xs: Rows, ys: Rows, gs: Rows, shape: tuple) -> Rows:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{p}={getattr(self, p)!r}" for p in self._params)
        return f"{type(self).__name__}({args})"


def _map(xs: Rows, f: Callable[[float], float]) -> Rows:
    return [[f(v) for v in r] for r in xs]


def _map_grad(xs: Rows, ys: Rows, gs: Rows, f: Callable[[float, float, float], float]) -> Rows:
    return [[f(x, y, g) for x, y, g in zip(xr, yr, gr)] for xr, yr, gr in zip(xs, ys, gs)]


def _sigmoid(x: float) -> float:
    """``1 / (1 + exp(-x))`` for ``x >= 0``, else ``exp(x) / (1 + exp(x))``: never NaN."""
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


class ReLU(Activation):
    """``y = max(x, 0)``; ``dx = g`` where ``y > 0``, else 0 (0 at the kink)."""

    def _forward(self, xs: Rows, shape: tuple) -> Rows:
        return [[v if v > 0.0 else 0.0 for v in r] for r in xs]

    def _backward(self, xs: Rows, ys: Rows, gs: Rows, shape: tuple) -> Rows:
        return [[g if y > 0.0 else 0.0 for g, y in zip(gr, yr)] for gr, yr in zip(gs, ys)]


class Tanh(Activation):
    """``y = tanh(x)``; ``dx = g (1 - y^2)``."""

    def _forward(self, xs: Rows, shape: tuple) -> Rows:
        return _map(xs, math.tanh)

    def _backward(self, xs: Rows, ys: Rows, gs: Rows, shape: tuple) -> Rows:
        return [[g * (1.0 - y * y) for g, y in zip(gr, yr)] for gr, yr in zip(gs, ys)]


class Sigmoid(Activation):
    """``y = 1 / (1 + exp(-x))``, in a form that never overflows; ``dx = g y (1 - y)``."""

    def _forward(self, xs: Rows, shape: tuple) -> Rows:
        return _map(xs, _sigmoid)

    def _backward(self, xs: Rows, ys: Rows, gs: Rows, shape: tuple) -> Rows:
        return [[g * (y * (1.0 - y)) for g, y in zip(gr, yr)] for gr, yr in zip(gs, ys)]


class LeakyReLU(Activation):
    """``y = x`` for ``x > 0``, else ``negative_slope * x``; ``dx = g`` or ``g * negative_slope``."""

    _params = ("negative_slope",)

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = check_real(negative_slope, "LeakyReLU", "negative_slope")

    def _forward(self, xs: Rows, shape: tuple) -> Rows:
        s = self.negative_slope
        return [[v if v > 0.0 else v * s for v in r] for r in xs]

    def _backward(self, xs: Rows, ys: Rows, gs: Rows, shape: tuple) -> Rows:
        s = self.negative_slope
        return [[g if x > 0.0 else g * s for g, x in zip(gr, xr)] for gr, xr in zip(gs, xs)]


class ELU(Activation):
    """``y = x`` for ``x > 0``, else ``alpha (exp(x) - 1)``; ``dx = g`` or ``g alpha exp(x)``."""

    _params = ("alpha",)

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = check_real(alpha, "ELU", "alpha")

    def _forward(self, xs: Rows, shape: tuple) -> Rows:
        a, expm1 = self.alpha, math.expm1
        return [[v if v > 0.0 else a * expm1(v) for v in r] for r in xs]

    def _backward(self, xs: Rows, ys: Rows, gs: Rows, shape: tuple) -> Rows:
        a, exp = self.alpha, math.exp
        return [[g if x > 0.0 else g * (a * exp(x)) for g, x in zip(gr, xr)] for gr, xr in zip(gs, xs)]


class GELU(Activation):
    """The exact GELU: ``y = x Phi(x)`` with ``Phi(x) = (1 + erf(x / sqrt 2)) / 2``;
    ``dx = g (Phi(x) + x phi(x))`` with the normal density ``phi``."""

    def _forward(self, xs: Rows, shape: tuple) -> Rows:
        erf = math.erf
        return [[v * (0.5 * (1.0 + erf(v * SQRT1_2))) for v in r] for r in xs]

    def _backward(self, xs: Rows, ys: Rows, gs: Rows, shape: tuple) -> Rows:
        def f(x: float, y: float, g: float) -> float:
            cdf = 0.5 * (1.0 + math.erf(x * SQRT1_2))
            pdf = INV_SQRT_2PI * math.exp(-0.5 * (x * x))
            return g * (cdf + x * pdf)
        return _map_grad(xs, ys, gs, f)


class SiLU(Activation):
    """``y = x sigmoid(x)``; ``dx = g s (1 + x (1 - s))`` with ``s = sigmoid(x)``."""

    def _forward(self, xs: Rows, shape: tuple) -> Rows:
        return _map(xs, lambda v: v * _sigmoid(v))

    def _backward(self, xs: Rows, ys: Rows, gs: Rows, shape: tuple) -> Rows:
        def f(x: float, y: float, g: float) -> float:
            s = _sigmoid(x)
            return g * (s * (1.0 + x * (1.0 - s)))
        return _map_grad(xs, ys, gs, f)


class Softplus(Activation):
    """``y = log(1 + exp(beta x)) / beta``, and ``y = x`` where ``beta x > threshold``
    (as torch); ``dx = g sigmoid(beta x)``, and ``g`` past the threshold."""

    _params = ("beta", "threshold")

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta = check_real(beta, "Softplus", "beta")
        self.threshold = check_real(threshold, "Softplus", "threshold")
        if self.beta == 0.0:
            raise ValueError(f"Softplus: beta must be nonzero, got {self.beta!r}")

    def _forward(self, xs: Rows, shape: tuple) -> Rows:
        beta, threshold = self.beta, self.threshold

        def f(x: float) -> float:
            z = x * beta
            if z > threshold:
                return x
            return ((z if z > 0.0 else 0.0) + math.log1p(math.exp(-abs(z)))) / beta
        return _map(xs, f)

    def _backward(self, xs: Rows, ys: Rows, gs: Rows, shape: tuple) -> Rows:
        beta, threshold = self.beta, self.threshold

        def f(x: float, y: float, g: float) -> float:
            z = x * beta
            return g if z > threshold else g * _sigmoid(z)
        return _map_grad(xs, ys, gs, f)


def _lines(rows: Rows, shape: tuple, dim: int, who: str) -> tuple:
    """The lines along ``dim`` (each in order along ``dim``; the lines in row-major order of
    the other dims) and a function that turns per-line results back into rows."""
    nd = len(shape)
    if not -nd <= dim < nd:
        raise ValueError(f"{who}: dim {dim} is out of range for a {nd}-D input of shape {shape}")
    d = dim % nd
    if d == nd - 1:
        return rows, lambda lines: lines
    n = shape[d]
    inner = 1
    for s in shape[d + 1:]:
        inner *= s
    outer = len(rows) * len(rows[0]) // (n * inner)
    flat = [v for r in rows for v in r]
    starts = [o * n * inner + i for o in range(outer) for i in range(inner)]
    lines = [flat[s:s + n * inner:inner] for s in starts]
    cols = shape[-1]

    def back(out: list) -> Rows:
        res = [0.0] * len(flat)
        for s, line in zip(starts, out):
            res[s:s + n * inner:inner] = line
        return [res[k:k + cols] for k in range(0, len(res), cols)]
    return lines, back


class _AlongDim(Activation):
    """Members that normalize along one dimension (``dim``) of the input."""

    _params = ("dim",)

    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = check_int(dim, type(self).__name__, "dim")

    def _forward(self, xs: Rows, shape: tuple) -> Rows:
        lines, back = _lines(xs, shape, self.dim, self._name())
        return back([self._line_forward(v) for v in lines])

    def _backward(self, xs: Rows, ys: Rows, gs: Rows, shape: tuple) -> Rows:
        ylines, back = _lines(ys, shape, self.dim, self._name())
        glines, _ = _lines(gs, shape, self.dim, self._name())
        return back([self._line_backward(y, g) for y, g in zip(ylines, glines)])

    def _line_forward(self, v: list) -> list:
        raise NotImplementedError

    def _line_backward(self, y: list, g: list) -> list:
        raise NotImplementedError


class Softmax(_AlongDim):
    """``y_k = exp(x_k - m) / sum_j exp(x_j - m)`` along ``dim``, ``m`` the line's maximum;
    ``dx_k = y_k (g_k - sum_j g_j y_j)``."""

    def _line_forward(self, v: list) -> list:
        m = max(v)
        e = [math.exp(x - m) for x in v]
        s = 0.0
        for t in e:
            s = s + t
        return [t / s for t in e]

    def _line_backward(self, y: list, g: list) -> list:
        d = 0.0
        for gk, yk in zip(g, y):
            d = d + gk * yk
        return [yk * (gk - d) for gk, yk in zip(g, y)]


class LogSoftmax(_AlongDim):
    """``y_k = (x_k - m) - log(sum_j exp(x_j - m))`` along ``dim``, ``m`` the line's maximum;
    ``dx_k = g_k - exp(y_k) sum_j g_j``."""

    def _line_forward(self, v: list) -> list:
        m = max(v)
        t = [x - m for x in v]
        s = 0.0
        for u in t:
            s = s + math.exp(u)
        lse = math.log(s)
        return [u - lse for u in t]

    def _line_backward(self, y: list, g: list) -> list:
        gs = 0.0
        for gk in g:
            gs = gs + gk
        return [gk - math.exp(yk) * gs for gk, yk in zip(g, y)]


class Identity(Activation):
    """``y = x``; ``dx = g``."""

    def _forward(self, xs: Rows, shape: tuple) -> Rows:
        return [list(r) for r in xs]

    def _backward(self, xs: Rows, ys: Rows, gs: Rows, shape: tuple) -> Rows:
        return [list(r) for r in gs]


class Hardtanh(Activation):
    """``y = x`` clamped to ``[min_val, max_val]``; ``dx = g`` strictly inside, else 0."""

    _params = ("min_val", "max_val")

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0) -> None:
        super().__init__()
        self.min_val = check_real(min_val, "Hardtanh", "min_val")
        self.max_val = check_real(max_val, "Hardtanh", "max_val")
        if self.max_val <= self.min_val:
            raise ValueError(f"Hardtanh: max_val must be above min_val, got {self.min_val!r} and {self.max_val!r}")

    def _forward(self, xs: Rows, shape: tuple) -> Rows:
        lo, hi = self.min_val, self.max_val
        return [[lo if v < lo else (hi if v > hi else v) for v in r] for r in xs]

    def _backward(self, xs: Rows, ys: Rows, gs: Rows, shape: tuple) -> Rows:
        lo, hi = self.min_val, self.max_val
        return [[g if lo < x < hi else 0.0 for g, x in zip(gr, xr)] for gr, xr in zip(gs, xs)]


ACTIVATIONS: dict = {cls.__name__: cls for cls in (
    ReLU, Tanh, Sigmoid, LeakyReLU, ELU, GELU, SiLU, Softplus, Softmax, LogSoftmax, Identity, Hardtanh,
)}
"""The members of the family, by class name, in table order."""
