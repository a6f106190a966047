"""The layer family: ``Module`` (the contract), ``Linear``, ``Dropout``, ``LayerNorm`` and ``Sequential``.

Every module follows the same contract (modules of your own register their children,
parameters and buffers by assignment, as in torch: see ``Module``):

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

from .error import (NO_GRAD, check_grad, check_int, check_real, check_size, check_thread, described, mixed,
                    not_forwarded)
from .generator import Generator, _resolve
from .grad_mode import is_grad_enabled
from .tensor import Tensor, _dim, _parse, as_tensor, zeros_like_rows


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


# ---- the module tree, written once for both backends

_PLAIN = frozenset({type(None), bool, int, float, str, tuple, list, dict})
"""Types that are never registered: assigning one to a name not registered skips the registry."""

_KINDS = {"module": "child module", "param": "parameter", "buffer": "buffer"}
"""The kinds of registered attributes, and how an error message names each."""


def _types(m: Any) -> tuple:
    """``(Module, Tensor, backend name)`` of the backend of module ``m``: the methods of
    :class:`Module` serve ``pyfw_rs``'s native ``Module`` too (rust/bindings/base.rs calls them)."""
    if isinstance(m, Module):
        return Module, Tensor, "pyfw"
    native = sys.modules["pyfw_rs._native"]
    return native.Module, native.Tensor, "pyfw_rs"


def _registry(m: Any) -> dict:
    """``{name: kind}`` of the attributes registered on ``m``, in registration order (empty for
    a module without a ``__dict__``, a native class of ``pyfw_rs``)."""
    reg = getattr(m, "__dict__", {}).get("_registry")
    return reg if isinstance(reg, dict) else {}


def _register(m: Any, name: Any, value: Any) -> None:
    """Record the assignment ``m.name = value`` in ``m``'s registry, before it is made.

    A module registers a child, a tensor with a ``.grad`` (:func:`Parameter`) a parameter;
    None keeps a registered name's place, holding nothing; any other value for a
    registered name is a ``TypeError``, except a tensor for a buffer. Re-assigning keeps
    the order; a value of another kind moves the name to the end, as torch does. A
    module that holds ``m`` (``m`` itself, or a parent) is a plain attribute, not a
    child, so the tree has no cycle.
    """
    d = getattr(m, "__dict__", None)
    if d is None or not isinstance(name, str):
        return
    base, tensor_type, backend = _types(m)
    reg = d.get("_registry")
    if isinstance(value, base):
        if any(k is m for k in value.modules()):
            return  # a reference back up the tree (``self.me = self``), not a child
        kind = "module"
    elif isinstance(value, tensor_type) and value.grad is not None:
        kind = "param"
    else:
        known = reg.get(name) if isinstance(reg, dict) else None
        if known is None or value is None or (known == "buffer" and isinstance(value, tensor_type)):
            return
        need = {"module": f"a {backend} Module", "param": f"a {backend} Parameter (a tensor with .grad)"}[known]
        raise TypeError(f"{type(m).__name__}: cannot assign {described(value)} to {name!r}, a registered "
                        f"{_KINDS[known]}: {need} or None expected{mixed((value,), backend)}")
    if not isinstance(reg, dict):
        reg = d["_registry"] = {}
    if reg.get(name) != kind:
        reg.pop(name, None)
        reg[name] = kind


def _unregister(m: Any, name: Any) -> None:
    """Forget ``name`` (``del m.name``)."""
    _registry(m).pop(name, None)


def _own(m: Any, kind: str) -> list:
    """``[(name, value), ...]`` of ``m``'s registered attributes of ``kind`` that hold a value."""
    d = getattr(m, "__dict__", {})
    return [(n, d[n]) for n, k in _registry(m).items() if k == kind and d.get(n) is not None]


def _checked_pairs(m: Any) -> list:
    """``m.param()``, checked: ``(parameter, gradient)`` pairs of the backend's tensors (a ``TypeError`` otherwise)."""
    _, tensor_type, backend = _types(m)
    who = m._name()
    pairs = m.param()
    if not isinstance(pairs, (list, tuple)):
        raise TypeError(f"{who}: param() must return a list of (parameter, gradient) pairs, "
                        f"got {type(pairs).__name__}")
    for i, pair in enumerate(pairs):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"{who}: param()[{i}] is not a (parameter, gradient) pair")
        if not isinstance(pair[0], tensor_type) or not isinstance(pair[1], tensor_type):
            raise TypeError(f"{who}: param()[{i}] must hold two {backend} Tensors, "
                            f"got {described(pair[0])} and {described(pair[1])}{mixed(tuple(pair), backend)}")
    return list(pairs)


def _entries(m: Any, prefix: str, buffers: bool, whole: bool = False) -> list:
    """``[(dotted name, tensor, gradient or None, is a buffer), ...]`` of ``m`` and its subtree.

    Pre-order, as torch's ``state_dict``: each module's registered parameters, then its
    buffers, then its children's. A module that overrides ``param()`` (``Linear``, or a
    module of the seed's contract) is asked for its pairs instead, which cover its
    subtree: they are named where the tree has them, by ``_param_names()`` for a module
    without children or registered parameters, else by their index. ``whole`` walks
    ``m`` as if it kept the default ``param()``.
    """
    base = _types(m)[0]
    out: list = []
    stack = [(prefix, m, whole)]
    while stack:
        pre, mod, default = stack.pop()
        kids = list(mod.named_children())
        own = _own(mod, "param")
        if default or getattr(type(mod), "param", None) is base.param:
            out.extend((pre + n, p, p.grad, False) for n, p in own)
            if buffers:
                out.extend((pre + n, b, None, True) for n, b in _own(mod, "buffer"))
            stack.extend((f"{pre}{n}.", k, False) for n, k in reversed(kids))
            continue
        pairs = _checked_pairs(mod)
        if not kids and not own:
            out.extend((f"{pre}{n}", p, g, False) for n, (p, g) in zip(mod._param_names(), pairs))
            if buffers:
                out.extend((pre + n, b, None, True) for n, b in _own(mod, "buffer"))
            continue
        tree = _entries(mod, pre, buffers, whole=True)
        names = {id(t): n for n, t, _, buf in tree if not buf}
        out.extend((names.get(id(p), f"{pre}{i}"), p, g, False) for i, (p, g) in enumerate(pairs))
        out.extend(e for e in tree if e[3])
    return out


class Module:
    """Base class of every layer and loss.

    Subclasses override ``forward`` and ``backward``. Assigning a module to an
    attribute registers it as a child, assigning a :func:`Parameter` (a tensor with
    ``.grad``) registers a parameter, and :meth:`register_buffer` registers state
    that is saved but not trained, all in assignment order, as in torch. ``param()``
    then lists the registered parameters' ``(parameter, gradient)`` pairs, the
    children's included; a module may override it instead, as the seed's modules do.
    """

    training: bool = True
    _forward_state: tuple = ("_saved",)
    """The attributes holding what ``forward`` kept for ``backward``: a copy or a pickle
    resets them to None, so a copy, like a fresh module, needs a ``forward`` first."""

    def __init__(self) -> None:
        self.training = True

    def __setattr__(self, name: str, value: Any) -> None:
        if type(value) not in _PLAIN or name in self.__dict__.get("_registry", ()):
            _register(self, name, value)
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        _unregister(self, name)
        object.__delattr__(self, name)

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
        _check_registry(self)

    def forward(self, *input: Any) -> Any:
        """Compute the output; subclasses override it."""
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def backward(self, *gradwrtoutput: Any) -> Any:
        """Accumulate parameter gradients and return the input gradient; subclasses override it."""
        raise NotImplementedError(f"{type(self).__name__}.backward is not implemented")

    def param(self) -> list:
        """``[(parameter, gradient), ...]``: the registered parameters of this module and of
        its children, in the order of :meth:`named_parameters` (empty for none)."""
        return [(p, g) for _, p, g, _ in _entries(self, "", False)]

    def register_buffer(self, name: str, tensor: Any) -> None:
        """Register ``tensor`` (or None) as the buffer ``name``: saved in ``state_dict`` and
        loaded by ``load_state_dict``, but not a parameter (running statistics)."""
        _, tensor_type, backend = _types(self)
        who = f"{type(self).__name__}.register_buffer"
        if not isinstance(name, str):
            raise TypeError(f"{who}: name must be a str, got {type(name).__name__}")
        if not name or "." in name:
            raise KeyError(f"{who}: name must be non-empty and hold no '.', got {name!r}")
        if tensor is not None and not isinstance(tensor, tensor_type):
            raise TypeError(f"{who}: {name!r} must be a {backend} Tensor or None, got {described(tensor)}"
                            f"{mixed((tensor,), backend)}")
        reg = _registry(self)
        if hasattr(self, name) and reg.get(name) != "buffer":
            raise KeyError(f"{who}: attribute {name!r} already exists")
        d = self.__dict__
        if not isinstance(d.get("_registry"), dict):
            d["_registry"] = reg = {}
        reg[name] = "buffer"
        d[name] = tensor

    def named_children(self) -> list:
        """``[(name, module), ...]`` of the registered child modules, in assignment order."""
        return _own(self, "module")

    def children(self) -> list:
        """``[module, ...]``: the modules of ``named_children()``, without their names."""
        return [m for _, m in self.named_children()]

    def named_modules(self, prefix: str = "", remove_duplicate: bool = True) -> Iterator[tuple]:
        """``(dotted name, module)`` for this module (named ``prefix``) and every module
        below it, pre-order; a module held twice comes once unless ``remove_duplicate=False``."""
        seen: set = set()
        out = []
        stack = [(prefix, self)]
        while stack:
            name, m = stack.pop()
            if remove_duplicate:
                if id(m) in seen:
                    continue
                seen.add(id(m))
            out.append((name, m))
            stack.extend((f"{name}.{n}" if name else n, k) for n, k in reversed(list(m.named_children())))
        return iter(out)

    def modules(self) -> Iterator[Any]:
        """This module and every module below it, each once, pre-order."""
        return iter([m for _, m in Module.named_modules(self)])

    def __call__(self, *input: Any) -> Any:
        return self.forward(*input)

    def zero_grad(self) -> None:
        """Set every gradient in ``param()`` to zero, in place."""
        for _, g in _checked_pairs(self):
            g.zero_()

    def _pairs(self) -> list:
        """``param()``, checked: ``(parameter, gradient)`` pairs of tensors (a ``TypeError`` otherwise)."""
        return _checked_pairs(self)

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

    def apply(self, fn: Any) -> "Module":
        """Call ``fn`` on every child (recursively, each child's own children first), then on this module; returns self."""
        if not callable(fn):
            raise TypeError(f"{self._name()}.apply: fn must be callable, got {type(fn).__name__}")
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def named_param(self, prefix: str = "") -> list:
        """``[(name, parameter, gradient), ...]`` with torch-style dotted names."""
        return [(n, p, g) for n, p, g, _ in _entries(self, prefix, False)]

    def _param_names(self) -> list:
        return [str(i) for i in range(len(self.param()))]

    def parameters(self) -> Iterator[Any]:
        """The parameter tensors in module order, each once; each carries its gradient as ``.grad``."""
        return iter([p for _, p in Module.named_parameters(self)])

    def named_parameters(self, prefix: str = "") -> Iterator[tuple]:
        """``(name, parameter)`` pairs with torch's dotted names (``prefix.0.weight``), each
        parameter once (a module held twice contributes once)."""
        return iter(_unique(_entries(self, f"{prefix}." if prefix else "", False)))

    def buffers(self) -> Iterator[Any]:
        """The buffers of this module and of every module below it, each once."""
        return iter([b for _, b in Module.named_buffers(self)])

    def named_buffers(self, prefix: str = "") -> Iterator[tuple]:
        """``(dotted name, buffer)`` pairs, each buffer once."""
        entries = _entries(self, f"{prefix}." if prefix else "", True)
        return iter(_unique([e for e in entries if e[3]]))

    def state_dict(self) -> dict:
        """``{name: copy of tensor}`` for every parameter and buffer, with torch's dotted keys
        (``0.weight``, ``fc1.bias``, ``norm.running_mean``)."""
        with _WEIGHTS_LOCK:
            return {name: t.clone() for name, t, _, _ in _entries(self, "", True)}

    def load_state_dict(self, state_dict: dict, strict: bool = True) -> "IncompatibleKeys":
        """Copy values into the parameters and buffers, in place.

        Values may be tensors of either backend or nested lists. Every key and
        shape is checked before anything is written, so a bad dict leaves the
        module unchanged. With ``strict=False`` missing and extra keys are skipped.
        Returns ``IncompatibleKeys(missing_keys, unexpected_keys)``, as torch does.
        """
        who = f"{self._name()}.load_state_dict"
        if not isinstance(state_dict, dict):
            raise TypeError(f"{who}: expected a dict, got {type(state_dict).__name__}")
        named = _entries(self, "", True)
        names = [n for n, _, _, _ in named]
        missing = [n for n in names if n not in state_dict]
        extra = [k for k in state_dict if k not in names]
        if strict and (missing or extra):
            # Only the parts that are not empty; for the keys both have, the shapes that differ.
            parts = [f"{what} {keys}" for what, keys in (("missing keys", missing), ("unexpected keys", extra))
                     if keys]
            differ = []
            for name, p, _, _ in named:
                if name in state_dict:
                    try:
                        shape = _parse(state_dict[name], f"{who}[{name!r}]", any_rank=True)[1]
                    except (ValueError, TypeError):
                        continue  # not a tensor at all: reported once the keys match
                    if shape != p.shape:
                        differ.append(f"{name!r} {shape} given, {p.shape} in the module")
            if differ:
                parts.append("shapes that differ: " + ", ".join(differ))
            raise ValueError(f"{who}: " + "; ".join(parts))
        staged = []
        for name, p, _, _ in named:
            if name not in state_dict:
                continue
            rows, shape = _parse(state_dict[name], f"{who}[{name!r}]", any_rank=True)
            if shape != p.shape:
                raise ValueError(f"{who}: {name!r} has shape {shape}, the module expects {p.shape}")
            staged.append((p, rows))
        with _WEIGHTS_LOCK:
            for p, rows in staged:
                p.copy_(Tensor._wrap(rows, p.shape))
        return IncompatibleKeys(missing, extra)

    def _name(self) -> str:
        return type(self).__name__

    def extra_repr(self) -> str:
        """What the tree ``repr`` shows inside this module's parentheses; empty by default."""
        return ""

    def __repr__(self) -> str:
        """The tree, as torch prints it: ``Block(\\n  (fc1): Linear(...)\\n)``."""
        kids = self.named_children()
        if not kids:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        extra = self.extra_repr()
        if extra:
            lines.append("  " + extra.replace("\n", "\n  "))
        lines.extend(f"  ({n}): " + repr(k).replace("\n", "\n  ") for n, k in kids)
        return "\n".join(lines) + "\n)"


def _unique(entries: list) -> list:
    """``(name, tensor)`` of ``entries``, each tensor the first time it appears."""
    seen: set = set()
    out = []
    for name, t, _, _ in entries:
        if id(t) not in seen:
            seen.add(id(t))
            out.append((name, t))
    return out


def _check_registry(m: Any) -> None:
    """Check a restored module's registry: names of its attributes, each holding its kind or None."""
    d = m.__dict__
    reg = d.get("_registry", {})
    who = type(m).__name__
    if not isinstance(reg, dict) or not all(isinstance(n, str) and k in _KINDS for n, k in reg.items()):
        raise TypeError(f"{who}: the restored registry must map names to {sorted(_KINDS)}")
    base, tensor_type, _ = _types(m)
    for n, k in reg.items():
        v = d.get(n)
        want = base if k == "module" else tensor_type
        if v is not None and not isinstance(v, want):
            raise TypeError(f"{who}: the restored {_KINDS[k]} {n!r} is a {type(v).__name__}")


class Linear(Module):
    """A fully connected layer: ``y = x W^T + b``.

    ``weight`` has shape (out, in) and ``bias`` shape (out,), both drawn from
    U(-k, k) with ``k = 1 / sqrt(in)`` as in PyTorch: all of ``weight`` in
    row-major order, then ``bias``. ``weight.grad`` is ``weight_grad`` and
    ``bias.grad`` is ``bias_grad``. With ``bias=False``, ``bias`` and
    ``bias_grad`` are None, nothing is drawn for them, and the sums of ``y``
    start at 0.0.

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
        self.weight = Tensor._wrap(w, (self.out_features, self.in_features))
        self.weight_grad = Tensor._wrap(zeros_like_rows(self.weight.shape), self.weight.shape)
        self.weight.grad = self.weight_grad
        self.bias: Optional[Tensor] = None
        self.bias_grad: Optional[Tensor] = None
        if bias:
            b = [lo + span * rnd() for _ in range(self.out_features)]
            self.bias = Tensor._wrap([b], (self.out_features,))
            self.bias_grad = Tensor._wrap(zeros_like_rows(self.bias.shape), self.bias.shape)
            self.bias.grad = self.bias_grad
        self._input: Any = None  # a Tensor, NO_GRAD (under no_grad) or None
        self._thread: Optional[int] = None

    _forward_state = ("_input", "_thread")

    # The layer table's entries (see LAYERS).
    _params = ("in_features", "out_features", "bias")
    _buffers: tuple = ()

    @staticmethod
    def _param_shapes(in_features: int, out_features: int, bias: bool = True) -> dict:
        """The shapes of the parameters, in ``state_dict`` order, for these arguments."""
        in_f = check_size(in_features, "Linear", "in_features")
        out_f = check_size(out_features, "Linear", "out_features")
        return {"weight": (out_f, in_f), "bias": (out_f,)} if bias else {"weight": (out_f, in_f)}

    def _check_restored(self) -> None:
        super()._check_restored()
        who = "Linear"
        check_size(self.__dict__.get("in_features"), who, "in_features")
        check_size(self.__dict__.get("out_features"), who, "out_features")
        who = self._name()
        shape = (self.out_features, self.in_features)
        for name, want in (("weight", shape), ("bias", shape[:1]), ("weight_grad", shape), ("bias_grad", shape[:1])):
            if name.startswith("bias") and self.__dict__.get("bias") is None and self.__dict__.get(name) is None:
                continue  # bias=False
            _check_tensor(self.__dict__.get(name), want, who, name)

    def forward(self, x: Any) -> Tensor:
        """``x W^T + b`` for an input ``(..., in)`` of any rank, over its last dim: the rows of
        all dims but the last are the batch, and the output is ``(..., out)``."""
        who = self._name()
        x = as_tensor(x, who)
        if x.shape[-1] != self.in_features:
            raise ValueError(f"{who}: expected input with {self.in_features} columns, "
                             f"got {x.shape[-1]} (input shape {x.shape})")
        # A snapshot (in-place ops replace rows); under no_grad, nothing.
        self._input = Tensor._wrap(list(x._rows), x.shape) if is_grad_enabled() else NO_GRAD
        self._thread = threading.get_ident()
        with _WEIGHTS_LOCK:
            wt = list(zip(*self.weight._rows))
            b = self.bias._rows[0] if self.bias is not None else [0.0] * self.out_features
        out = []
        for xr in x._rows:
            acc = b
            for xi, wc in zip(xr, wt):
                if xi:
                    acc = [a + xi * w for a, w in zip(acc, wc)]
            out.append(acc if acc is not b else list(b))
        return Tensor._wrap(out, x.shape[:-1] + (self.out_features,))

    def backward(self, grad: Any) -> Tensor:
        """Accumulate dL/dW and dL/db; return dL/dx."""
        who = self._name()
        if self._input is None or self._input is NO_GRAD:
            raise not_forwarded(who, self._input)
        check_thread(self._thread, who)
        xs = self._input._rows
        g = list(check_grad(grad, self._input.shape[:-1] + (self.out_features,), who)._rows)  # a snapshot
        gw = self.weight_grad._rows
        for o, gcol in enumerate(zip(*g)):
            acc = gw[o]
            for gn, xr in zip(gcol, xs):
                if gn:
                    acc = [a + gn * v for a, v in zip(acc, xr)]
            gw[o] = acc
        if self.bias_grad is not None:
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
        """``[(weight, weight_grad), (bias, bias_grad)]`` (no bias for ``bias=False``)."""
        return [(getattr(self, n), getattr(self, f"{n}_grad")) for n in self._param_names()]

    def _param_names(self) -> list:
        return ["weight", "bias"] if self.bias is not None else ["weight"]

    def _name(self) -> str:
        return f"Linear({self.in_features} -> {self.out_features})"

    def __repr__(self) -> str:
        return (f"Linear(in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None})")


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
        self._mask: Any = None  # a list, NO_GRAD (under no_grad) or None
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

    # The layer table's entries (see LAYERS).
    _params = ("p",)
    _buffers: tuple = ()

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
        keep = is_grad_enabled()
        if not self.training or self.p == 0.0:
            self._mask = [] if keep else NO_GRAD  # [] is the identity
            return Tensor._wrap(list(x._rows), x.shape)
        rnd, p = _resolve(self.generator).random, self.p
        scale = 1.0 / (1.0 - p)
        mask = [[0.0 if rnd() < p else scale for _ in r] for r in x._rows]
        self._mask = mask if keep else NO_GRAD
        return Tensor._wrap([[v * m for v, m in zip(r, mr)] for r, mr in zip(x._rows, mask)], x.shape)

    def backward(self, grad: Any) -> Tensor:
        """``g * m`` with the mask of the last forward."""
        who = self._name()
        if self._mask is None or self._mask is NO_GRAD:
            raise not_forwarded(who, self._mask)
        check_thread(self._thread, who)
        g = check_grad(grad, self._shape, who)
        if not self._mask:
            return Tensor._wrap(list(g._rows), g.shape)
        return Tensor._wrap([[v * m for v, m in zip(r, mr)] for r, mr in zip(g._rows, self._mask)], g.shape)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p!r})"


def _normalized_shape(v: Any) -> tuple:
    """``LayerNorm``'s ``normalized_shape``: an int or a sequence of one int (the last dimension)."""
    if isinstance(v, (list, tuple)):
        if len(v) != 1:
            raise ValueError(f"LayerNorm: normalized_shape must have one dimension (the last), got {tuple(v)!r}")
        v = v[0]
    return (check_size(v, "LayerNorm", "normalized_shape"),)


class LayerNorm(Module):
    """Normalize each row over its last dimension, of size ``C = normalized_shape[0]``::

        mean  = sum of x / C
        var   = sum of (x - mean)^2 / C          (biased)
        xhat  = (x - mean) * (1 / sqrt(var + eps))
        y     = xhat * weight + bias

    ``weight`` (C,) starts at 1 and ``bias`` (C,) at 0, as in PyTorch; without
    ``elementwise_affine`` there is neither, without ``bias`` no bias. Backward,
    for ``g = dL/dy`` and ``gx = g * weight``::

        dL/dweight += g * xhat,   dL/dbias += g
        dL/dx = ((gx - Σ gx / C) - xhat * (Σ(gx * xhat) / C)) * (1 / sqrt(var + eps))

    Every sum is a left fold from 0.0 in index order (docs/NUMERICS.md, "LayerNorm").
    """

    def __init__(self, normalized_shape: Any, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True) -> None:
        super().__init__()
        self.normalized_shape = _normalized_shape(normalized_shape)
        self.eps = check_real(eps, "LayerNorm", "eps")
        self.elementwise_affine = bool(elementwise_affine)
        c = self.normalized_shape[0]
        shapes = LayerNorm._param_shapes(c, eps, elementwise_affine, bias)
        for name in ("weight", "bias"):
            t = g = None
            if name in shapes:
                t = Tensor._wrap([[1.0 if name == "weight" else 0.0] * c], (c,))
                g = Tensor._wrap([[0.0] * c], (c,))
                t.grad = g
            setattr(self, name, t)
            setattr(self, f"{name}_grad", g)
        self._input: Any = None  # a Tensor, NO_GRAD (under no_grad) or None
        self._thread: Optional[int] = None

    _forward_state = ("_input", "_thread")

    # The layer table's entries (see LAYERS).
    _params = ("normalized_shape", "eps", "elementwise_affine", "bias")
    _buffers: tuple = ()

    @staticmethod
    def _param_shapes(normalized_shape: Any, eps: float = 1e-5, elementwise_affine: bool = True,
                      bias: bool = True) -> dict:
        """The shapes of the parameters, in ``state_dict`` order, for these arguments."""
        c = _normalized_shape(normalized_shape)
        check_real(eps, "LayerNorm", "eps")
        if not elementwise_affine:
            return {}
        return {"weight": c, "bias": c} if bias else {"weight": c}

    def _name(self) -> str:
        return f"LayerNorm({self.normalized_shape[0]})"

    def _rows(self, x: Any) -> Tensor:
        who = self._name()
        x = as_tensor(x, who)
        if x.shape[-1] != self.normalized_shape[0]:
            raise ValueError(f"{who}: expected an input whose last dimension is {self.normalized_shape[0]}, "
                             f"got shape {x.shape}")
        return x

    def _stats(self, r: list) -> tuple:
        """``(x - mean, 1 / sqrt(var + eps))`` of one row."""
        c = len(r)
        acc = 0.0
        for v in r:
            acc = acc + v
        mean = acc / c
        d = [v - mean for v in r]
        acc = 0.0
        for v in d:
            acc = acc + v * v
        return d, 1.0 / math.sqrt(acc / c + self.eps)

    def forward(self, x: Any) -> Tensor:
        """Normalize every row of ``x`` over its last dimension."""
        x = self._rows(x)
        # A snapshot (in-place ops replace rows); under no_grad, nothing.
        self._input = Tensor._wrap(list(x._rows), x.shape) if is_grad_enabled() else NO_GRAD
        self._thread = threading.get_ident()
        w = self.weight._rows[0] if self.weight is not None else None
        b = self.bias._rows[0] if self.bias is not None else None
        out = []
        for r in x._rows:
            d, rstd = self._stats(r)
            y = [v * rstd for v in d]
            if w is not None:
                y = [v * wv for v, wv in zip(y, w)]
            if b is not None:
                y = [v + bv for v, bv in zip(y, b)]
            out.append(y)
        return Tensor._wrap(out, x.shape)

    def backward(self, grad: Any) -> Tensor:
        """Accumulate dL/dweight and dL/dbias; return dL/dx."""
        who = self._name()
        if self._input is None or self._input is NO_GRAD:
            raise not_forwarded(who, self._input)
        check_thread(self._thread, who)
        g = check_grad(grad, self._input.shape, who)._rows
        w = self.weight._rows[0] if self.weight is not None else None
        c = self.normalized_shape[0]
        gx = []
        for r, gr in zip(self._input._rows, g):
            d, rstd = self._stats(r)
            xhat = [v * rstd for v in d]
            if self.weight_grad is not None:
                self.weight_grad._rows[0] = [a + gv * xv for a, gv, xv in zip(self.weight_grad._rows[0], gr, xhat)]
            if self.bias_grad is not None:
                self.bias_grad._rows[0] = [a + gv for a, gv in zip(self.bias_grad._rows[0], gr)]
            gh = [gv * wv for gv, wv in zip(gr, w)] if w is not None else list(gr)
            s1 = 0.0
            s2 = 0.0
            for gv, xv in zip(gh, xhat):
                s1 = s1 + gv
                s2 = s2 + gv * xv
            m1, m2 = s1 / c, s2 / c
            gx.append([((gv - m1) - xv * m2) * rstd for gv, xv in zip(gh, xhat)])
        return Tensor._wrap(gx, self._input.shape)

    def param(self) -> list:
        """``[(weight, weight_grad), (bias, bias_grad)]``, those that are there."""
        return [(getattr(self, n), getattr(self, f"{n}_grad")) for n in self._param_names()]

    def _param_names(self) -> list:
        return [n for n in ("weight", "bias") if getattr(self, n) is not None]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.normalized_shape}, eps={self.eps!r}, "
                f"elementwise_affine={self.elementwise_affine})")


class _Reshape(Module):
    """What :class:`Flatten` and :class:`Unflatten` share: the values pass through
    unchanged, in row-major order, in a new shape (``_out_shape``); backward gives
    the gradient the shape of the last input (docs/NUMERICS.md, "Flatten and Unflatten")."""

    _forward_state = ("_shapes", "_thread")
    _buffers: tuple = ()

    def __init__(self) -> None:
        super().__init__()
        self._shapes: Any = None  # (input shape, output shape), NO_GRAD (under no_grad) or None
        self._thread: Optional[int] = None

    def _check_restored(self) -> None:
        super()._check_restored()
        args = self._checked(*(self.__dict__.get(a) for a in self._params))
        for name, value in zip(self._params, args):
            object.__setattr__(self, name, value)

    @staticmethod
    def _checked(*args: Any) -> tuple:
        """The constructor's arguments, checked, in the order of ``_params``."""
        raise NotImplementedError  # pragma: no cover

    def _out_shape(self, shape: tuple) -> tuple:
        raise NotImplementedError  # pragma: no cover

    def forward(self, x: Any) -> Tensor:
        """The values of ``x``, unchanged, in the new shape."""
        x = as_tensor(x, self._name())
        out = self._out_shape(x.shape)
        self._shapes = (x.shape, out) if is_grad_enabled() else NO_GRAD
        self._thread = threading.get_ident()
        return x.reshape(out)

    def backward(self, grad: Any) -> Tensor:
        """The values of ``grad``, unchanged, in the shape of the last input."""
        who = self._name()
        if self._shapes is None or self._shapes is NO_GRAD:
            raise not_forwarded(who, self._shapes)
        check_thread(self._thread, who)
        return check_grad(grad, self._shapes[1], who).reshape(self._shapes[0])


class Flatten(_Reshape):
    """Dims ``start_dim..end_dim`` of the input merged into one, as torch's
    ``nn.Flatten``: ``(N, C, L)`` becomes ``(N, C * L)`` with the defaults."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = Flatten._checked(start_dim, end_dim)

    # The layer table's entries (see LAYERS).
    _params = ("start_dim", "end_dim")

    @staticmethod
    def _checked(*args: Any) -> tuple:
        start_dim, end_dim = args
        return check_int(start_dim, "Flatten", "start_dim"), check_int(end_dim, "Flatten", "end_dim")

    def _out_shape(self, shape: tuple) -> tuple:
        who = self._name()
        s = _dim(self.start_dim, len(shape), who)
        e = _dim(self.end_dim, len(shape), who)
        if s > e:
            raise ValueError(f"{who}: start_dim {self.start_dim} comes after end_dim {self.end_dim} "
                             f"(input shape {shape})")
        n = 1
        for d in shape[s:e + 1]:
            n *= d
        return shape[:s] + (n,) + shape[e + 1:]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(start_dim={self.start_dim}, end_dim={self.end_dim})"


def _unflattened_size(v: Any) -> tuple:
    """``Unflatten``'s ``unflattened_size``: a tuple or list of positive ints, one of which may be -1."""
    who = "Unflatten"
    if not isinstance(v, (list, tuple)):
        raise TypeError(f"{who}: unflattened_size must be a tuple or list of ints, got {type(v).__name__}")
    if not v:
        raise ValueError(f"{who}: unflattened_size must hold at least one size")
    sizes = tuple(check_int(k, who, "unflattened_size") for k in v)
    if any(k < 1 and k != -1 for k in sizes):
        raise ValueError(f"{who}: the sizes of unflattened_size must be positive (or one -1), got {v!r}")
    if sizes.count(-1) > 1:
        raise ValueError(f"{who}: only one size of unflattened_size may be -1, got {v!r}")
    return sizes


class Unflatten(_Reshape):
    """Dim ``dim`` of the input split into ``unflattened_size`` (a tuple or list of
    ints, one of which may be -1, inferred), as torch's ``nn.Unflatten``."""

    def __init__(self, dim: int, unflattened_size: Any) -> None:
        super().__init__()
        self.dim, self.unflattened_size = Unflatten._checked(dim, unflattened_size)

    # The layer table's entries (see LAYERS).
    _params = ("dim", "unflattened_size")

    @staticmethod
    def _checked(*args: Any) -> tuple:
        dim, unflattened_size = args
        return check_int(dim, "Unflatten", "dim"), _unflattened_size(unflattened_size)

    def _out_shape(self, shape: tuple) -> tuple:
        who = self._name()
        k = _dim(self.dim, len(shape), who)
        n = shape[k]
        known = 1
        for d in self.unflattened_size:
            if d != -1:
                known *= d
        fits = n % known == 0 if -1 in self.unflattened_size else known == n
        if not fits:
            raise ValueError(f"{who}: unflattened_size {self.unflattened_size} does not fit dim {self.dim} "
                             f"of size {n} (input shape {shape})")
        split = tuple(n // known if d == -1 else d for d in self.unflattened_size)
        return shape[:k] + split + shape[k + 1:]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim}, unflattened_size={self.unflattened_size})"


class _BatchNorm(Module):
    """What ``BatchNorm1d`` and ``BatchNorm2d`` share: each channel normalized over the
    ``m`` values it has in the batch (docs/NUMERICS.md, "BatchNorm1d")::

        training:  mean, var = the batch's (var biased), rstd = 1 / sqrt(var + eps)
                   running = (1 - momentum) * running + momentum * batch statistic
                   (running_var from the unbiased var; momentum None: 1 / num_batches_tracked)
        eval:      mean = running_mean, rstd = 1 / sqrt(running_var + eps)
        y = ((x - mean) * rstd) * weight + bias

    ``weight`` starts at 1 and ``bias`` at 0 (none without ``affine``). The buffers
    ``running_mean`` (0), ``running_var`` (1) and ``num_batches_tracked`` (a float
    tensor of shape (1,): the file formats hold floats) are None without
    ``track_running_stats``, and then eval mode uses the batch's statistics too.
    Backward, for ``gh = g * weight``: through the batch statistics,
    ``dx = ((gh - Σ gh / m) - xhat * (Σ(gh * xhat) / m)) * rstd``; from the
    running ones, ``dx = gh * rstd``.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1, affine: bool = True,
                 track_running_stats: bool = True) -> None:
        super().__init__()
        who = self._kind
        c = check_size(num_features, who, "num_features")
        self.num_features = c
        self.eps = check_real(eps, who, "eps")
        self.momentum = None if momentum is None else check_real(momentum, who, "momentum")
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        for name in ("weight", "bias"):
            t = g = None
            if self.affine:
                t = Tensor._wrap([[1.0 if name == "weight" else 0.0] * c], (c,))
                g = Tensor._wrap([[0.0] * c], (c,))
                t.grad = g
            setattr(self, name, t)
            setattr(self, f"{name}_grad", g)
        track = self.track_running_stats
        for name, value, n in (("running_mean", 0.0, c), ("running_var", 1.0, c), ("num_batches_tracked", 0.0, 1)):
            self.register_buffer(name, Tensor._wrap([[value] * n], (n,)) if track else None)
        self._kept: Any = None  # (input, stats, from the batch), NO_GRAD (under no_grad) or None
        self._thread: Optional[int] = None

    _forward_state = ("_kept", "_thread")
    _kind = "BatchNorm1d"  # the class name its messages give

    # The layer table's entries (see LAYERS).
    _params = ("num_features", "eps", "momentum", "affine", "track_running_stats")
    _buffers = ("running_mean", "running_var", "num_batches_tracked")

    @classmethod
    def _param_shapes(cls, num_features: Any, eps: float = 1e-5, momentum: Optional[float] = 0.1,
                      affine: bool = True, track_running_stats: bool = True) -> dict:
        """The shapes of the parameters, in ``state_dict`` order, for these arguments."""
        c = check_size(num_features, cls._kind, "num_features")
        check_real(eps, cls._kind, "eps")
        return {"weight": (c,), "bias": (c,)} if affine else {}

    @classmethod
    def _buffer_shapes(cls, num_features: Any, eps: float = 1e-5, momentum: Optional[float] = 0.1,
                       affine: bool = True, track_running_stats: bool = True) -> dict:
        """The shapes of the buffers, in ``state_dict`` order, for these arguments (none without
        ``track_running_stats``)."""
        c = check_size(num_features, cls._kind, "num_features")
        return {"running_mean": (c,), "running_var": (c,), "num_batches_tracked": (1,)} if track_running_stats else {}

    def _name(self) -> str:
        return f"{self._kind}({self.num_features})"

    def _dims(self, shape: tuple) -> tuple:
        """``(n, c, l)`` of an input of ``shape``: ``l`` values per channel in each sample."""
        raise NotImplementedError

    @staticmethod
    def _channel(n: int, c: int, l: int, k: int) -> list:
        """The flat indices of channel ``k``, sample by sample, position by position."""
        return [(i * c + k) * l + j for i in range(n) for j in range(l)]

    def _stats(self, flat: list, dims: tuple, batch: bool) -> list:
        """``[(mean, rstd), ...]`` per channel; from the batch, updating the running statistics."""
        n, c, l = dims
        if not batch:
            rm, rv = self.running_mean._rows[0], self.running_var._rows[0]
            return [(rm[k], 1.0 / math.sqrt(rv[k] + self.eps)) for k in range(c)]
        m = n * l
        if m < 2:
            raise ValueError(f"{self._name()}: expected more than 1 value per channel when training, got {m}")
        stats, unbiased = [], []
        for k in range(c):
            idx = self._channel(n, c, l, k)
            acc = 0.0
            for i in idx:
                acc = acc + flat[i]
            mean = acc / m
            acc = 0.0
            for i in idx:
                v = flat[i] - mean
                acc = acc + v * v
            stats.append((mean, 1.0 / math.sqrt(acc / m + self.eps)))
            unbiased.append(acc / (m - 1))
        if self.running_mean is not None:
            count = self.num_batches_tracked._rows[0]
            count[0] = count[0] + 1.0
            f = self.momentum if self.momentum is not None else 1.0 / count[0]
            rm, rv = self.running_mean._rows[0], self.running_var._rows[0]
            for k in range(c):
                rm[k] = (1.0 - f) * rm[k] + f * stats[k][0]
                rv[k] = (1.0 - f) * rv[k] + f * unbiased[k]
        return stats

    def forward(self, x: Any) -> Tensor:
        """Normalize every channel of ``x``."""
        x = as_tensor(x, self._name())
        dims = self._dims(x.shape)
        n, c, l = dims
        flat = [v for r in x._rows for v in r]
        batch = self.training or self.running_mean is None
        stats = self._stats(flat, dims, batch)
        w = self.weight._rows[0] if self.weight is not None else None
        b = self.bias._rows[0] if self.bias is not None else None
        y = [0.0] * len(flat)
        for k, (mean, rstd) in enumerate(stats):
            for i in self._channel(n, c, l, k):
                v = (flat[i] - mean) * rstd
                if w is not None:
                    v = v * w[k]
                if b is not None:
                    v = v + b[k]
                y[i] = v
        self._kept = (flat, x.shape, stats, batch) if is_grad_enabled() else NO_GRAD
        self._thread = threading.get_ident()
        width = x.shape[-1]
        return Tensor._wrap([y[i:i + width] for i in range(0, len(y), width)], x.shape)

    def backward(self, grad: Any) -> Tensor:
        """Accumulate dL/dweight and dL/dbias; return dL/dx."""
        who = self._name()
        if self._kept is None or self._kept is NO_GRAD:
            raise not_forwarded(who, self._kept)
        check_thread(self._thread, who)
        flat, shape, stats, batch = self._kept
        g = [v for r in check_grad(grad, shape, who)._rows for v in r]
        n, c, l = self._dims(shape)
        m = n * l
        w = self.weight._rows[0] if self.weight is not None else None
        gw = self.weight_grad._rows[0] if self.weight_grad is not None else None
        gb = self.bias_grad._rows[0] if self.bias_grad is not None else None
        dx = [0.0] * len(flat)
        for k, (mean, rstd) in enumerate(stats):
            idx = self._channel(n, c, l, k)
            s1 = 0.0
            s2 = 0.0
            for i in idx:
                xhat = (flat[i] - mean) * rstd
                if gw is not None:
                    gw[k] = gw[k] + g[i] * xhat
                if gb is not None:
                    gb[k] = gb[k] + g[i]
                gh = g[i] * w[k] if w is not None else g[i]
                s1 = s1 + gh
                s2 = s2 + gh * xhat
            m1, m2 = s1 / m, s2 / m
            for i in idx:
                gh = g[i] * w[k] if w is not None else g[i]
                dx[i] = ((gh - m1) - ((flat[i] - mean) * rstd) * m2) * rstd if batch else gh * rstd
        width = shape[-1]
        return Tensor._wrap([dx[i:i + width] for i in range(0, len(dx), width)], shape)

    def param(self) -> list:
        """``[(weight, weight_grad), (bias, bias_grad)]`` with ``affine``, else ``[]``."""
        return [(getattr(self, n), getattr(self, f"{n}_grad")) for n in self._param_names()]

    def _param_names(self) -> list:
        return ["weight", "bias"] if self.weight is not None else []

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.num_features}, eps={self.eps!r}, momentum={self.momentum!r}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats})")


class BatchNorm1d(_BatchNorm):
    """Normalize each channel of an ``(N, C)`` or ``(N, C, L)`` input, as torch's
    ``nn.BatchNorm1d`` (docs/NUMERICS.md, "BatchNorm1d"): ``m = N * L`` values per channel."""

    _kind = "BatchNorm1d"

    def _dims(self, shape: tuple) -> tuple:
        c = self.num_features
        if len(shape) not in (2, 3) or shape[1] != c:
            raise ValueError(f"{self._name()}: expected an input of shape (N, {c}) or (N, {c}, L), "
                             f"got shape {shape}")
        return shape[0], c, shape[2] if len(shape) == 3 else 1


class BatchNorm2d(_BatchNorm):
    """Normalize each channel of an ``(N, C, H, W)`` input, as torch's ``nn.BatchNorm2d``
    (docs/NUMERICS.md, "BatchNorm2d"): ``BatchNorm1d``'s formulas over the ``m = N * H * W``
    values of a channel, the positions of each sample in row-major order."""

    _kind = "BatchNorm2d"

    def _dims(self, shape: tuple) -> tuple:
        c = self.num_features
        if len(shape) != 4 or shape[1] != c:
            raise ValueError(f"{self._name()}: expected an input of shape (N, {c}, H, W), got shape {shape}")
        return shape[0], c, shape[2] * shape[3]


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


# The convolution family is written in conv.py, on the Module above.
from .conv import AvgPool2d, Conv1d, Conv2d, ConvTranspose2d, MaxPool2d, Upsample  # noqa: E402

LAYERS: dict = {cls.__name__: cls for cls in (Linear, Dropout, LayerNorm, Flatten, Unflatten, BatchNorm1d,
                                                  BatchNorm2d, Conv1d, Conv2d, ConvTranspose2d, MaxPool2d,
                                                  AvgPool2d, Upsample, Sequential)}
"""The members of the layer family, by class name, in table order.

Each member but the container ``Sequential`` lists, as class attributes,
``_params``: the constructor arguments a model file stores (read back from the
attributes of the same names); ``_buffers``: its buffer slots; and, when it has
parameters, ``_param_shapes(**args)``: their slots and shapes in ``state_dict``
order, which also checks the arguments (the convolution family has it on every
member, with none for a pooling, and takes the arguments only as a file writes
them, every one given). A member whose files need a newer model file version
than ``"1"`` says which in ``_file_version``. A member with parameters draws their
initial values from the ``generator`` its constructor takes. Model files, copies
and the tests read these entries; nothing else names a layer."""


class _ParameterType(type):
    """``isinstance(t, Parameter)``: ``t`` is a tensor of the backend that carries a ``.grad``."""

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, cls._tensor_type()) and obj.grad is not None


class Parameter(metaclass=_ParameterType):
    """``Parameter(t)``: the tensor ``t`` itself, given a zero gradient of its shape as
    ``t.grad`` if it has none, so that assigning it to a module's attribute registers it
    as a parameter (any tensor with a ``.grad`` does). Nested lists are converted with
    ``tensor()`` first. Not a subclass: ``type(Parameter(t))`` is the backend's ``Tensor``,
    and ``isinstance(x, Parameter)`` says whether ``x`` is a tensor with a ``.grad``.
    """

    _backend = "pyfw"

    @staticmethod
    def _tensor_type() -> type:
        return Tensor

    def __new__(cls, data: Any) -> Any:  # type: ignore[misc]
        t = data if isinstance(data, cls._tensor_type()) else sys.modules[cls._backend].tensor(data)
        if t.grad is None:
            g = t.clone()
            g.zero_()
            t.grad = g
        return t


class _ModuleListBase:
    """What :class:`ModuleList` does, for the ``Module`` of either backend: a list of
    modules, registered as the children ``"0"``, ``"1"``, ...; it has no ``forward``."""

    def __init__(self, modules: Any = None) -> None:
        super().__init__()  # type: ignore[call-arg]
        self._items: list = []
        if modules is not None:
            self.extend(modules)

    def _checked(self, module: Any, who: str) -> Any:
        base, _, backend = _types(self)
        if not isinstance(module, base):
            raise TypeError(f"ModuleList.{who}: expected a {backend} Module, got {described(module)}"
                            f"{mixed((module,), backend)}")
        return module

    def named_children(self) -> list:
        """``[("0", first), ("1", second), ...]``."""
        return [(str(i), m) for i, m in enumerate(self._items)]

    def append(self, module: Any) -> Any:
        """Add ``module`` at the end; returns self."""
        self._items.append(self._checked(module, "append"))
        return self

    def extend(self, modules: Any) -> Any:
        """Add every module of the iterable ``modules`` at the end; returns self."""
        if isinstance(modules, _types(self)[0]) and not isinstance(modules, _ModuleListBase):
            raise TypeError(f"ModuleList.extend: expected an iterable of modules, got {described(modules)}")
        items = [self._checked(m, "extend") for m in modules]
        self._items.extend(items)
        return self

    def insert(self, index: int, module: Any) -> None:
        """Put ``module`` before position ``index`` (the later children are renumbered)."""
        self._items.insert(_int_index(index), self._checked(module, "insert"))

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._items))

    def __getitem__(self, i: Any) -> Any:
        """The module at ``i``, or a ``ModuleList`` of the modules in a slice."""
        if isinstance(i, slice):
            return type(self)(self._items[i])
        return self._items[_int_index(i)]

    def __setitem__(self, i: Any, module: Any) -> None:
        self._items[_int_index(i)] = self._checked(module, "__setitem__")

    def __delitem__(self, i: Any) -> None:
        if isinstance(i, slice):
            del self._items[i]
        else:
            del self._items[_int_index(i)]

    def forward(self, *input: Any) -> Any:
        """A ``ModuleList`` only holds modules: a module that owns one calls them."""
        raise NotImplementedError("ModuleList has no forward: call its modules from your module's forward")

    def backward(self, *gradwrtoutput: Any) -> Any:
        """As :meth:`forward`: a module that owns the list runs its children's ``backward``."""
        raise NotImplementedError("ModuleList has no backward: call its modules' backward from your module's")


def _int_index(i: Any) -> int:
    if isinstance(i, bool) or not isinstance(i, numbers.Integral):
        raise TypeError(f"ModuleList indices must be integers or slices, not {type(i).__name__}")
    return int(i)


class ModuleList(_ModuleListBase, Module):
    """A list of modules, registered as children ``"0"``, ``"1"``, ... (as ``torch.nn.ModuleList``):
    ``append``, ``extend``, ``insert``, ``len``, indexing, slicing and iteration."""

