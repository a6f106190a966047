"""Modules: ``Module`` (the contract), ``Linear``, ``ReLU``, ``Tanh`` and ``Sequential``.

Every module follows the same contract:

* ``forward(*input)`` computes the output and keeps what ``backward`` needs;
* ``backward(*gradwrtoutput)`` adds the parameter gradients into the gradient
  tensors and returns the gradient with respect to the input;
* ``param()`` lists ``(parameter, gradient)`` pairs of equal shapes.

Gradients accumulate until ``zero_grad()``. The exact order of floating-point
operations of each kernel is given in its docstring and in docs/NUMERICS.md.
"""

from __future__ import annotations

import math
import numbers
import sys
from typing import Any, Iterator, NamedTuple, Optional

from .generator import Generator, _resolve
from .tensor import Tensor, _parse, as_tensor, zeros_like_rows


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict`` did not match: keys the module has that the dict lacks, and the reverse."""

    missing_keys: list
    unexpected_keys: list


class Module:
    """Base class of every layer and loss.

    Subclasses override ``forward``, ``backward`` and, when they hold
    parameters, ``param``. A subclass that holds other modules overrides
    ``named_children`` so that ``train``/``eval`` and ``state_dict`` reach them.
    """

    training: bool = True

    def __init__(self) -> None:
        self.training = True

    def forward(self, *input: Any) -> Any:
        """Compute the output; subclasses override it."""
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def backward(self, *gradwrtoutput: Any) -> Any:
        """Accumulate parameter gradients and return the input gradient; subclasses override it."""
        raise NotImplementedError(f"{type(self).__name__}.backward is not implemented")

    def param(self) -> list:
        """``[(parameter, gradient), ...]``; empty for modules without parameters."""
        return []

    def named_children(self) -> list:
        """``[(name, module), ...]`` of directly held modules; empty by default."""
        return []

    def children(self) -> list:
        """``[module, ...]``: the modules of ``named_children()``, without their names."""
        return [m for _, m in self.named_children()]

    def __call__(self, *input: Any) -> Any:
        return self.forward(*input)

    def zero_grad(self) -> None:
        """Set every gradient in ``param()`` to zero, in place."""
        for _, g in self.param():
            g.zero_()

    def train(self, mode: bool = True) -> "Module":
        """Set training mode on this module and its children; returns self."""
        if not isinstance(mode, bool):
            raise TypeError(f"{self._name()}.train: mode must be a bool, got {type(mode).__name__}")
        self.training = mode
        for _, child in self.named_children():
            child.train(mode)
        return self

    def eval(self) -> "Module":
        """Same as ``train(False)``."""
        return self.train(False)

    def named_param(self, prefix: str = "") -> list:
        """``[(name, parameter, gradient), ...]`` with torch-style dotted names."""
        kids = self.named_children()
        if kids:
            out = []
            for name, child in kids:
                out.extend(child.named_param(f"{prefix}{name}."))
            return out
        return [(f"{prefix}{n}", p, g) for n, (p, g) in zip(self._param_names(), self.param())]

    def _param_names(self) -> list:
        return [str(i) for i in range(len(self.param()))]

    def state_dict(self) -> dict:
        """``{name: copy of parameter}``, keys as in ``torch.nn.Sequential``."""
        return {name: p.clone() for name, p, _ in self.named_param()}

    def load_state_dict(self, state_dict: dict, strict: bool = True) -> "IncompatibleKeys":
        """Copy values into the parameters, in place.

        Values may be tensors of either backend or nested lists. Every key and
        shape is checked before anything is written, so a bad dict leaves the
        module unchanged. With ``strict=False`` missing and extra keys are skipped.
        Returns ``IncompatibleKeys(missing_keys, unexpected_keys)``, as torch does.
        """
        who = f"{self._name()}.load_state_dict"
        if not isinstance(state_dict, dict):
            raise TypeError(f"{who}: expected a dict, got {type(state_dict).__name__}")
        named = self.named_param()
        names = [n for n, _, _ in named]
        missing = [n for n in names if n not in state_dict]
        extra = [k for k in state_dict if k not in names]
        if strict and (missing or extra):
            raise ValueError(f"{who}: missing keys {missing}, unexpected keys {extra}")
        staged = []
        for name, p, _ in named:
            if name not in state_dict:
                continue
            rows, shape = _parse(state_dict[name], f"{who}[{name!r}]")
            if shape != p.shape:
                raise ValueError(f"{who}: {name!r} has shape {shape}, the module expects {p.shape}")
            staged.append((p, rows))
        for p, rows in staged:
            p.copy_(Tensor._wrap(rows, p.shape))
        return IncompatibleKeys(missing, extra)

    def _name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"{self._name()}()"


def _check_size(v: Any, who: str, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{who}: {what} must be an int, got {type(v).__name__}")
    if v <= 0:
        raise ValueError(f"{who}: {what} must be positive, got {v}")
    return int(v)


def _check_grad(grad: Any, shape: tuple, who: str) -> Tensor:
    g = as_tensor(grad, who)
    if g.shape != shape:
        raise ValueError(f"{who}: gradient has shape {g.shape}, the output had shape {shape}")
    return g


class Linear(Module):
    """A fully connected layer: ``y = x W^T + b``.

    ``weight`` has shape (out, in) and ``bias`` shape (out,), both drawn from
    U(-k, k) with ``k = 1 / sqrt(in)`` as in PyTorch: all of ``weight`` in
    row-major order, then ``bias``.

    Every sum is a left fold that skips the terms whose first factor is
    exactly zero (ReLU makes half of them so). For each sample ``n``::

        y[n][o]      = b[o]         + sum over i with x[n][i] != 0 of x[n][i] * W[o][i]
        dL/dW[o][i]  = dL/dW[o][i]  + sum over n with g[n][o] != 0 of g[n][o] * x[n][i]
        dL/db[o]     = dL/db[o]     + sum over n of g[n][o]
        dL/dx[n][i]  = 0.0          + sum over o with g[n][o] != 0 of g[n][o] * W[o][i]

    where ``g = dL/dy`` and each sum runs in increasing index order, added one
    term at a time onto the value on its left: ``acc = acc + (a * b)``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 generator: Optional[Generator] = None) -> None:
        super().__init__()
        self.in_features = _check_size(in_features, "Linear", "in_features")
        self.out_features = _check_size(out_features, "Linear", "out_features")
        if not bias:
            raise ValueError("Linear: bias=False is not supported")
        if self.in_features * self.out_features > sys.maxsize // 8:
            raise MemoryError(f"Linear: {self.out_features} x {self.in_features} weights do not fit in memory")
        g = _resolve(generator)
        k = 1.0 / math.sqrt(self.in_features)
        lo, span = -k, k - -k
        rnd = g.random
        w = [[lo + span * rnd() for _ in range(self.in_features)] for _ in range(self.out_features)]
        b = [lo + span * rnd() for _ in range(self.out_features)]
        self.weight = Tensor._wrap(w, (self.out_features, self.in_features))
        self.bias = Tensor._wrap([b], (self.out_features,))
        self.weight_grad = Tensor._wrap(zeros_like_rows(self.weight.shape), self.weight.shape)
        self.bias_grad = Tensor._wrap(zeros_like_rows(self.bias.shape), self.bias.shape)
        self._input: Optional[Tensor] = None

    def forward(self, x: Any) -> Tensor:
        """``x W^T + b`` for a (batch, in) input."""
        who = self._name()
        x = as_tensor(x, who)
        if x.ndim != 2:
            raise ValueError(f"{who}: expected a 2-D input (batch, {self.in_features}), got shape {x.shape}")
        if x.shape[1] != self.in_features:
            raise ValueError(f"{who}: expected input with {self.in_features} columns, "
                             f"got {x.shape[1]} (input shape {x.shape})")
        self._input = Tensor._wrap(list(x._rows), x.shape)  # a snapshot: in-place ops replace rows
        wt = list(zip(*self.weight._rows))
        b = self.bias._rows[0]
        out = []
        for xr in x._rows:
            acc = b
            for xi, wc in zip(xr, wt):
                if xi:
                    acc = [a + xi * w for a, w in zip(acc, wc)]
            out.append(acc if acc is not b else list(b))
        return Tensor._wrap(out, (x.shape[0], self.out_features))

    def backward(self, grad: Any) -> Tensor:
        """Accumulate dL/dW and dL/db; return dL/dx."""
        who = self._name()
        if self._input is None:
            raise RuntimeError(f"{who}: backward called before forward")
        xs = self._input._rows
        g = list(_check_grad(grad, (len(xs), self.out_features), who)._rows)  # snapshot, as the input
        gw = self.weight_grad._rows
        for o, gcol in enumerate(zip(*g)):
            acc = gw[o]
            for gn, xr in zip(gcol, xs):
                if gn:
                    acc = [a + gn * v for a, v in zip(acc, xr)]
            gw[o] = acc
        gb = self.bias_grad._rows
        acc = gb[0]
        for gr in g:
            acc = [a + v for a, v in zip(acc, gr)]
        gb[0] = acc
        w = self.weight._rows
        zero = [0.0] * self.in_features
        gx = []
        for gr in g:
            acc = zero
            for gn, wr in zip(gr, w):
                if gn:
                    acc = [a + gn * v for a, v in zip(acc, wr)]
            gx.append(acc if acc is not zero else list(zero))
        return Tensor._wrap(gx, self._input.shape)

    def param(self) -> list:
        """``[(weight, weight_grad), (bias, bias_grad)]``."""
        return [(self.weight, self.weight_grad), (self.bias, self.bias_grad)]

    def _param_names(self) -> list:
        return ["weight", "bias"]

    def _name(self) -> str:
        return f"Linear({self.in_features} -> {self.out_features})"

    def __repr__(self) -> str:
        return f"Linear(in_features={self.in_features}, out_features={self.out_features}, bias=True)"


class _Elementwise(Module):
    """Shared plumbing of activations: any 1-D or 2-D input, same-shape output."""

    def __init__(self) -> None:
        super().__init__()
        self._output: Optional[Tensor] = None

    def _keep(self, rows: list, shape: tuple) -> Tensor:
        """Save the output for backward and return it; the two share rows but not the row list,
        so an in-place op on the returned tensor leaves the saved one as it was."""
        self._output = Tensor._wrap(rows, shape)
        return Tensor._wrap(list(rows), shape)

    def _grad(self, grad: Any) -> list:
        who = self._name()
        if self._output is None:
            raise RuntimeError(f"{who}: backward called before forward")
        return _check_grad(grad, self._output.shape, who)._rows


class ReLU(_Elementwise):
    """``y = x if x > 0 else 0``; ``dL/dx = dL/dy if x > 0 else 0`` (so 0 at x = 0)."""

    def forward(self, x: Any) -> Tensor:
        """Apply max(x, 0) to every element."""
        x = as_tensor(x, self._name())
        out = [[v if v > 0.0 else 0.0 for v in r] for r in x._rows]
        return self._keep(out, x.shape)

    def backward(self, grad: Any) -> Tensor:
        """Pass the gradient where the output is positive."""
        g = self._grad(grad)
        out = [[gv if yv > 0.0 else 0.0 for gv, yv in zip(gr, yr)] for gr, yr in zip(g, self._output._rows)]
        return Tensor._wrap(out, self._output.shape)


class Tanh(_Elementwise):
    """``y = tanh(x)``; ``dL/dx = dL/dy * (1 - y*y)``, evaluated as ``g * (1.0 - (y * y))``."""

    def forward(self, x: Any) -> Tensor:
        """Apply tanh to every element (C library ``tanh``)."""
        x = as_tensor(x, self._name())
        tanh = math.tanh
        out = [[tanh(v) for v in r] for r in x._rows]
        return self._keep(out, x.shape)

    def backward(self, grad: Any) -> Tensor:
        """Multiply the gradient by 1 - y^2."""
        g = self._grad(grad)
        out = [[gv * (1.0 - yv * yv) for gv, yv in zip(gr, yr)] for gr, yr in zip(g, self._output._rows)]
        return Tensor._wrap(out, self._output.shape)


class Sequential(Module):
    """Modules applied in order; backward runs them in reverse."""

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: item {i} is a {type(m).__name__}, not a Module")
        self._modules = list(modules)

    def forward(self, x: Any) -> Any:
        """Feed ``x`` through every module in order."""
        for m in self._modules:
            x = m.forward(x)
        return x

    def backward(self, grad: Any) -> Any:
        """Feed the gradient through every module in reverse order."""
        for m in reversed(self._modules):
            grad = m.backward(grad)
        return grad

    def param(self) -> list:
        """The children's pairs, in module order."""
        out = []
        for m in self._modules:
            out.extend(m.param())
        return out

    def named_children(self) -> list:
        """``[("0", first), ("1", second), ...]``."""
        return [(str(i), m) for i, m in enumerate(self._modules)]

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, i: int) -> Module:
        return self._modules[i]

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules)

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({i}): {m!r}" for i, m in enumerate(self._modules))
        return f"Sequential({inner}\n)"
