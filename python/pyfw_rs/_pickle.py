"""``copy.deepcopy`` and ``pickle`` for the native classes, written in Python.

Each native class is registered with :mod:`copyreg`: it reduces to a function of
this module and plain values (nested lists of floats, ints, the arguments of a
constructor, state dicts), so a copy or an unpickled object computes the same
bits as the original. What a module saved for ``backward`` is not kept, as
torch keeps no autograd state. Python subclasses of the native classes are
copied by Python's own rules (their ``__dict__``), which native state does not
take part in: copy them through ``state_dict`` instead.
"""

from __future__ import annotations

import copyreg
import inspect
from typing import Any

from . import _native


def _tensor(data: list, grad: Any) -> Any:
    t = _native.tensor(data)
    if grad is not None:
        t.grad = grad
    return t


def _generator(state: dict) -> Any:
    return _native.Generator(0).set_state(state)


def _module(cls: type, args: tuple, kwargs: dict, training: bool) -> Any:
    m = cls(*args, **kwargs)
    m.train(training)
    return m


def _linear(weight: Any, bias: Any, weight_grad: Any, bias_grad: Any, training: bool) -> Any:
    lin = _native.Linear._from_tensors(weight, bias, weight_grad, bias_grad)
    lin.train(training)
    return lin


def _optimizer(cls: type, params: list, hyper: dict, state: dict) -> Any:
    opt = cls(params, **hyper)
    opt.load_state_dict(state)
    return opt


def _arguments(obj: Any) -> dict:
    """The constructor arguments of a family member, read from its attributes."""
    names = [p.name for p in inspect.signature(type(obj)).parameters.values() if p.name != "params"]
    return {n: getattr(obj, n) for n in names}


def _reduce_member(m: Any) -> tuple:
    return _module, (type(m), (), _arguments(m), m.training)


def _reduce_linear(lin: Any) -> tuple:
    # The tensors themselves, so that a copy of a model and of its optimizer share them.
    return _linear, (lin.weight, lin.bias, lin.weight_grad, lin.bias_grad, lin.training)


def _reduce_sequential(s: Any) -> tuple:
    return _module, (_native.Sequential, tuple(s), {}, s.training)


def _reduce_dropout(d: Any) -> tuple:
    return _module, (_native.Dropout, (d.p, d.generator), {}, d.training)


def _reduce_optimizer(opt: Any) -> tuple:
    group = opt.param_groups[0]
    hyper = {k: v for k, v in group.items() if k in inspect.signature(type(opt)).parameters and k != "params"}
    return _optimizer, (type(opt), list(group["params"]), hyper, opt.state_dict())


def register() -> None:
    """Register the reducers of every native class with :mod:`copyreg`."""
    copyreg.pickle(_native.Tensor, lambda t: (_tensor, (t.tolist(), t.grad)))
    copyreg.pickle(_native.Generator, lambda g: (_generator, (g.get_state(),)))
    copyreg.pickle(_native.Linear, _reduce_linear)
    copyreg.pickle(_native.Sequential, _reduce_sequential)
    copyreg.pickle(_native.Dropout, _reduce_dropout)
    for name in (*_native.ACTIVATIONS, *_native.LOSSES):
        copyreg.pickle(getattr(_native, name), _reduce_member)
    for name in _native.OPTIMIZERS:
        copyreg.pickle(getattr(_native, name), _reduce_optimizer)
