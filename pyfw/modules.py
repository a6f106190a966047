"""The layer family: ``Module`` (the contract), ``Linear``, ``Dropout`` and ``Sequential``.

Every module follows the same contract:

* ``forward(*input)`` computes the output and keeps what ``backward`` needs;
* ``backward(*gradwrtoutput)`` adds the parameter gradients into the gradient
  tensors and returns the gradient with respect to the input;
* ``param()`` lists ``(parameter, gradient)`` pairs of equal shapes.

Gradients accumulate until ``zero_grad()``. The order of floating-point
operations of each kernel is in docs/NUMERICS.md; ``rust/modules.rs`` holds the
same kernels. The activations are a family of their own (``activations.py``).
"""

from __future__ import annotations

import math
import numbers
import os
import sys
from typing import Any, Iterator, NamedTuple, Optional

import threading

from .error import check_grad, check_real, check_size, check_thread, described, mixed, not_forwarded
from .generator import Generator, _resolve
from .tensor import Tensor, _parse, as_tensor, zeros_like_rows


_WEIGHTS_LOCK = threading.RLock()
"""Held while weights are read for a forward, snapshotted or loaded, so that another
thread's ``load_state_dict`` is seen either wholly or not at all (as in ``pyfw_rs``,
whose native forward holds the interpreter lock throughout)."""


_BYTES_PER_WEIGHT = 32
"""What one weight of a pyfw ``Linear`` takes: a float object (24 bytes) and its slot in a row list."""


def _memory_bytes() -> int:
    """The machine's physical memory in bytes (``sys.maxsize`` where the platform does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return sys.maxsize


def _check_tensor(t: Any, shape: tuple, who: str, name: str) -> None:
    """``t`` is a pyfw Tensor of ``shape`` whose storage holds that many floats (an unpickled
    module's tensors, which no constructor checked)."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{who}: {name} must be a pyfw Tensor, got {type(t).__name__}")
    rows = getattr(t, "_rows", None)
    width = shape[-1]
    if (t.shape != shape or not isinstance(rows, list) or len(rows) != (shape[0] if len(shape) == 2 else 1)
            or not all(type(r) is list and len(r) == width and all(type(v) is float for v in r) for r in rows)):
        raise ValueError(f"{who}: {name} has shape {getattr(t, 'shape', None)}, the module expects {shape}")


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
    _forward_state: tuple = ("_saved",)
    """The attributes holding what ``forward`` kept for ``backward``: a copy or a pickle
    resets them to None, so a copy, like a fresh module, needs a ``forward`` first."""

    def __init__(self) -> None:
        self.training = True

    def __getstate__(self) -> dict:
        """The attributes, without what the last ``forward`` kept (``copy``, ``deepcopy``, ``pickle``)."""
        state = dict(self.__dict__)
        for name in self._forward_state:
            if name in state:
                state[name] = None
        return state

    def __setstate__(self, state: dict) -> None:
        """Restore the attributes of :meth:`__getstate__`, then check them (an unpickled file
        may have been changed): a ``TypeError`` or ``ValueError`` as the constructor's."""
        if not isinstance(state, dict):
            raise TypeError(f"{type(self).__name__}: cannot restore from a {type(state).__name__}")
        self.__dict__.update(state)
        self._check_restored()

    def _check_restored(self) -> None:
        """Check the attributes just restored by :meth:`__setstate__`; members extend it."""
        training = self.__dict__.get("training", True)
        if not isinstance(training, bool):
            raise TypeError(f"{type(self).__name__}: training must be a bool, got {type(training).__name__}")

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
        for _, g in self._pairs():
            g.zero_()

    def _pairs(self) -> list:
        """``param()``, checked: ``(parameter, gradient)`` pairs of tensors (a ``TypeError`` otherwise)."""
        who = self._name()
        pairs = self.param()
        if not isinstance(pairs, (list, tuple)):
            raise TypeError(f"{who}: param() must return a list of (parameter, gradient) pairs, "
                            f"got {type(pairs).__name__}")
        for i, pair in enumerate(pairs):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(f"{who}: param()[{i}] is not a (parameter, gradient) pair")
            if not isinstance(pair[0], Tensor) or not isinstance(pair[1], Tensor):
                raise TypeError(f"{who}: param()[{i}] must hold two pyfw Tensors, "
                                f"got {described(pair[0])} and {described(pair[1])}{mixed(tuple(pair), 'pyfw')}")
        return list(pairs)

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
        return [(f"{prefix}{n}", p, g) for n, (p, g) in zip(self._param_names(), self._pairs())]

    def _param_names(self) -> list:
        return [str(i) for i in range(len(self.param()))]

    def parameters(self) -> Iterator[Tensor]:
        """The parameter tensors in module order, each once; each carries its gradient as ``.grad``."""
        for _, p in self.named_parameters():
            yield p

    def named_parameters(self, prefix: str = "") -> Iterator[tuple]:
        """``(name, parameter)`` pairs with torch's dotted names (``prefix.0.weight``), each
        parameter once (a module held twice contributes once)."""
        seen = set()
        for name, p, _ in self.named_param(f"{prefix}." if prefix else ""):
            if id(p) not in seen:
                seen.add(id(p))
                yield name, p

    def state_dict(self) -> dict:
        """``{name: copy of parameter}``, keys as in ``torch.nn.Sequential``."""
        with _WEIGHTS_LOCK:
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
        with _WEIGHTS_LOCK:
            for p, rows in staged:
                p.copy_(Tensor._wrap(rows, p.shape))
        return IncompatibleKeys(missing, extra)

    def _name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"{self._name()}()"


class Linear(Module):
    """A fully connected layer: ``y = x W^T + b``.

    ``weight`` has shape (out, in) and ``bias`` shape (out,), both drawn from
    U(-k, k) with ``k = 1 / sqrt(in)`` as in PyTorch: all of ``weight`` in
    row-major order, then ``bias``. ``weight.grad`` is ``weight_grad`` and
    ``bias.grad`` is ``bias_grad``.

    Forward and backward, for ``g = dL/dy``::

        y      = x W^T + b
        dL/dW += g^T x
        dL/db += sum over the batch of g
        dL/dx  = g W

    Every sum is a left fold that skips the terms whose first factor is exactly
    zero (docs/NUMERICS.md, "Linear").
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 generator: Optional[Generator] = None) -> None:
        super().__init__()
        self.in_features = check_size(in_features, "Linear", "in_features")
        self.out_features = check_size(out_features, "Linear", "out_features")
        if not bias:
            raise ValueError("Linear: bias=False is not supported")
        n = self.in_features * self.out_features
        if n > sys.maxsize // 8 or n * _BYTES_PER_WEIGHT > _memory_bytes():
            gib = n * _BYTES_PER_WEIGHT / 2**30
            raise MemoryError(f"{self._name()}: cannot allocate {n} elements ({self.out_features} x "
                              f"{self.in_features} weights take {gib:.3g} GiB as Python floats, more than "
                              f"this machine's {_memory_bytes() / 2**30:.3g} GiB)")
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
        self.weight.grad = self.weight_grad
        self.bias.grad = self.bias_grad
        self._input: Optional[Tensor] = None
        self._thread: Optional[int] = None

    _forward_state = ("_input", "_thread")

    def _check_restored(self) -> None:
        super()._check_restored()
        who = "Linear"
        check_size(self.__dict__.get("in_features"), who, "in_features")
        check_size(self.__dict__.get("out_features"), who, "out_features")
        who = self._name()
        shape = (self.out_features, self.in_features)
        for name, want in (("weight", shape), ("bias", shape[:1]), ("weight_grad", shape), ("bias_grad", shape[:1])):
            _check_tensor(self.__dict__.get(name), want, who, name)

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
        self._thread = threading.get_ident()
        with _WEIGHTS_LOCK:
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
            raise not_forwarded(who)
        check_thread(self._thread, who)
        xs = self._input._rows
        g = list(check_grad(grad, (len(xs), self.out_features), who)._rows)  # snapshot, as the input
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


class Dropout(Module):
    """In training mode, zero each element with probability ``p`` and scale the
    others by ``1 / (1 - p)``: ``y = x * m``, ``dx = g * m`` (docs/NUMERICS.md,
    "Dropout"); the identity in eval mode.

    ``generator`` is None for the default generator, looked up at each forward.
    """

    def __init__(self, p: float = 0.5, generator: Optional[Generator] = None) -> None:
        super().__init__()
        self.p = p
        if generator is not None:
            _resolve(generator)
        self.generator = generator
        self._mask: Optional[list] = None
        self._shape: Optional[tuple] = None
        self._thread: Optional[int] = None

    @property
    def p(self) -> float:
        """The probability of zeroing an element; setting it checks it as the constructor does."""
        return self._p

    @p.setter
    def p(self, value: float) -> None:
        p = check_real(value, "Dropout", "p")
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p!r}")
        self._p = p

    _forward_state = ("_mask", "_shape", "_thread")

    def _check_restored(self) -> None:
        super()._check_restored()
        self.p = self.__dict__.get("_p")
        generator = self.__dict__.get("generator")
        if generator is not None and not isinstance(generator, Generator):
            raise TypeError(f"Dropout: generator must be a pyfw Generator or None, got {type(generator).__name__}")

    def forward(self, x: Any) -> Tensor:
        """Drop and rescale (training mode), or pass ``x`` through (eval mode)."""
        x = as_tensor(x, self._name())
        self._shape = x.shape
        self._thread = threading.get_ident()
        if not self.training or self.p == 0.0:
            self._mask = []  # the identity
            return Tensor._wrap(list(x._rows), x.shape)
        rnd, p = _resolve(self.generator).random, self.p
        scale = 1.0 / (1.0 - p)
        mask = [[0.0 if rnd() < p else scale for _ in r] for r in x._rows]
        self._mask = mask
        return Tensor._wrap([[v * m for v, m in zip(r, mr)] for r, mr in zip(x._rows, mask)], x.shape)

    def backward(self, grad: Any) -> Tensor:
        """``g * m`` with the mask of the last forward."""
        who = self._name()
        if self._mask is None:
            raise not_forwarded(who)
        check_thread(self._thread, who)
        g = check_grad(grad, self._shape, who)
        if not self._mask:
            return Tensor._wrap(list(g._rows), g.shape)
        return Tensor._wrap([[v * m for v, m in zip(r, mr)] for r, mr in zip(g._rows, self._mask)], g.shape)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p!r})"


def check_children(owner: Any, modules: list, who: str) -> None:
    """Check the modules a container is about to hold, with all they hold in turn.

    ``ValueError`` if one module object appears twice, or the container inside
    itself: a module keeps only its last input for ``backward``, so a second use
    would give wrong gradients (build one module per use). ``RecursionError``
    past ``sys.getrecursionlimit()`` levels of nesting, where running the model
    would exhaust the stack. Both backends' ``Sequential`` call this.
    """
    seen = {id(owner): "the Sequential itself"}
    limit = sys.getrecursionlimit()
    stack = [(m, f"item {i}", 1) for i, m in reversed(list(enumerate(modules)))]
    while stack:
        m, where, depth = stack.pop()
        if id(m) in seen:
            raise ValueError(f"{who}: {where} is {seen[id(m)]} again ({type(m).__name__}); a module keeps only "
                             "its last input, so a second use would give wrong gradients: build one per use")
        if depth > limit:
            raise RecursionError(f"{who}: modules nested more than {limit} levels deep")
        seen[id(m)] = where
        kids = m.named_children()
        stack.extend((k, f"{where}.{name}", depth + 1) for name, k in reversed(list(kids)))


class Sequential(Module):
    """Modules applied in order; backward runs them in reverse. A module may appear
    only once (see :func:`check_children`)."""

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: item {i} is a {described(m)}, not a pyfw Module{mixed((m,), 'pyfw')}")
        check_children(self, list(modules), "Sequential")
        self._modules = list(modules)

    def _check_restored(self) -> None:
        super()._check_restored()
        modules = self.__dict__.get("_modules")
        if not isinstance(modules, list) or not all(isinstance(m, Module) for m in modules):
            raise TypeError("Sequential: the restored modules must be a list of pyfw Modules")
        check_children(self, modules, "Sequential")

    def forward(self, x: Any) -> Any:
        """Feed ``x`` through every module in order (seeing one state of the weights)."""
        with _WEIGHTS_LOCK:
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

    def __getitem__(self, i: Any) -> Any:
        """The module at ``i``, or a ``Sequential`` of the modules in a slice."""
        if isinstance(i, slice):
            return Sequential(*self._modules[i])
        if isinstance(i, bool) or not isinstance(i, numbers.Integral):
            raise TypeError(f"Sequential indices must be integers or slices, not {type(i).__name__}")
        return self._modules[i]

    def append(self, module: Module) -> "Sequential":
        """Add ``module`` at the end; returns self."""
        if not isinstance(module, Module):
            raise TypeError(f"Sequential.append: expected a pyfw Module, got {described(module)}"
                            f"{mixed((module,), 'pyfw')}")
        check_children(self, self._modules + [module], "Sequential.append")
        self._modules.append(module)
        return self

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules)

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({i}): {m!r}" for i, m in enumerate(self._modules))
        return f"Sequential({inner}\n)"


LAYERS: dict = {cls.__name__: cls for cls in (Linear, Dropout, Sequential)}
"""The members of the layer family, by class name, in table order."""
