"""``copy.deepcopy`` and ``pickle`` for the native classes, written in Python.

Each native class is registered with :mod:`copyreg`: it reduces to a function of
this module and plain values (nested lists of floats, ints, the arguments of a
constructor, state dicts), so a copy or an unpickled object computes the same
bits as the original. What a module saved for ``backward`` is not kept, as
torch keeps no autograd state.

A Python subclass of a native class (``class Block(pyfw_rs.Linear)``) is not
registered: the native base classes' ``__reduce__`` calls :func:`reduce`, which
rebuilds it without calling its own constructor: the native class's
``__new__``, then its native state set through the native class (``__init__``
with the member's arguments, and for a layer with parameters ``_adopt`` with
the tensors themselves), then
its ``__dict__``, copied by Python's rules. Tensors shared with an optimizer
stay shared, as for the native classes.
"""

from __future__ import annotations

import copyreg
import inspect
from typing import Any, Optional

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


def _rebuild(obj: Any, base: type, kwargs: dict, tensors: tuple) -> None:
    """Set the native state of ``obj``, an instance of (a subclass of) the layer member
    ``base``: its constructor with ``kwargs`` (initial values drawn from a throwaway
    generator, so the default one does not move), then these tensors, adopted as they are."""
    if "generator" in inspect.signature(base).parameters:
        kwargs = {**kwargs, "generator": _native.Generator(0)}
    base.__init__(obj, **kwargs)
    base._adopt(obj, *tensors)


def _layer(cls: type, kwargs: dict, tensors: tuple, training: bool, buffers: Optional[dict] = None) -> Any:
    m = cls.__new__(cls)
    _rebuild(m, cls, kwargs, tensors)
    for name, b in (buffers or {}).items():
        m.register_buffer(name, b)
    m.train(training)
    return m


_SLOTS = {name: params for name, params, _buffers, _signature in _native.LAYER_TABLE}
"""The parameter slots of each member of the layer table."""

_BUFFERS = {name: buffers for name, _params, buffers, _signature in _native.LAYER_TABLE}
"""The buffer slots of each member of the layer table."""


def _layer_arguments(obj: Any, cls: type) -> dict:
    """The constructor arguments of ``obj``, an instance of the layer member ``cls``, but its
    generator; an argument named as a parameter slot (``bias``) is whether the slot is there."""
    out = {}
    for name in inspect.signature(cls).parameters:
        if name != "generator":
            v = getattr(cls, name).__get__(obj)
            out[name] = v is not None if name in _SLOTS[cls.__name__] else v
    return out


def _tensors(obj: Any, cls: type) -> tuple:
    """The tensors of ``obj``, an instance of the layer member ``cls``, read through ``cls``'s
    getters: every parameter slot, then every slot's gradient (``_from_tensors``'s order)."""
    names = _SLOTS[cls.__name__]
    return tuple(getattr(cls, n).__get__(obj) for n in (*names, *(f"{n}_grad" for n in names)))


def _optimizer(cls: type, params: list, hyper: dict, state: dict) -> Any:
    opt = cls(params, **hyper)
    opt.load_state_dict(state)
    return opt


def _arguments(obj: Any, cls: type) -> dict:
    """The constructor arguments of ``obj``, an instance of the family member ``cls``, read
    from its attributes through ``cls``'s getters (a subclass's own attributes are ignored)."""
    names = [p.name for p in inspect.signature(cls).parameters.values() if p.name != "params"]
    return {n: getattr(cls, n).__get__(obj) for n in names}


def _reduce_member(m: Any) -> tuple:
    return _module, (type(m), (), _arguments(m, type(m)), m.training)


def _reduce_layer(m: Any) -> tuple:
    # The tensors themselves, so that a copy of a model and of its optimizer share them.
    # The buffers too (a BatchNorm1d's running statistics), by their table names.
    buffers = {n: getattr(m, n) for n in _BUFFERS[type(m).__name__]}
    return _layer, (type(m), _layer_arguments(m, type(m)), _tensors(m, type(m)), m.training, buffers)


def _reduce_sequential(s: Any) -> tuple:
    return _module, (_native.Sequential, tuple(s), {}, s.training)



def _optimizer_parts(opt: Any, cls: type) -> tuple:
    """``(params, hyperparameters, state dict)`` of ``opt``, an instance of the member ``cls``."""
    group = opt.param_groups[0]
    hyper = {k: v for k, v in group.items() if k in inspect.signature(cls).parameters and k != "params"}
    return list(group["params"]), hyper, cls.state_dict(opt)


def _reduce_optimizer(opt: Any) -> tuple:
    return _optimizer, (type(opt), *_optimizer_parts(opt, type(opt)))


# ---- Python subclasses of native classes

def _native_base(cls: type) -> type:
    """The first class of ``cls``'s MRO that ``pyfw_rs._native`` defines."""
    for c in cls.__mro__:
        if getattr(_native, c.__name__, None) is c:
            return c
    raise TypeError(f"{cls.__name__} does not derive from a pyfw_rs class")  # pragma: no cover


def _subclass(cls: type, base: type, setup: str, args: tuple, kwargs: dict, training: bool) -> Any:
    """An instance of ``cls`` made by ``base.__new__``, its native state set by ``base``'s method
    ``setup`` (nothing for ``""``); its ``__dict__`` follows, from the reduce tuple's state."""
    if not isinstance(setup, str):  # a tampered pickle (a tensor here has no truth value)
        raise TypeError(f"{cls.__name__}: the pickled setup must be a method name, got {type(setup).__name__}")
    obj = base.__new__(cls)
    if setup:
        getattr(base, setup)(obj, *args, **kwargs)
    _native.Module.training.__set__(obj, training)
    return obj


def _subclass_layer(cls: type, base: type, kwargs: dict, tensors: tuple, training: bool) -> Any:
    """As :func:`_subclass`, for a subclass of a layer member with parameters."""
    obj = base.__new__(cls)
    _rebuild(obj, base, kwargs, tensors)
    _native.Module.training.__set__(obj, training)
    return obj


def _subclass_optimizer(cls: type, base: type, params: list, hyper: dict, state: dict) -> Any:
    obj = base.__new__(cls)
    base.__init__(obj, params, **hyper)
    base.load_state_dict(obj, state)
    return obj


def reduce(obj: Any) -> tuple:
    """The reduce tuple of ``obj``, an instance of a Python subclass of a native class (the
    native classes' ``__reduce__`` calls it): how to rebuild the native part, and ``__dict__``."""
    cls = type(obj)
    base = _native_base(cls)
    state = dict(vars(obj)) if hasattr(obj, "__dict__") else None
    for name in getattr(cls, "_forward_state", ()) if state is not None else ():
        if name in state:
            state[name] = None  # what the last forward kept, as pyfw's Module.__getstate__
    if issubclass(base, _native.Optimizer):
        return _subclass_optimizer, (cls, base, *_optimizer_parts(obj, base)), state
    training = _native.Module.training.__get__(obj)
    if _SLOTS.get(base.__name__):
        return _subclass_layer, (cls, base, _layer_arguments(obj, base), _tensors(obj, base), training), state
    setup, args, kwargs = "", (), {}
    if base is _native.Sequential:
        setup, args = "__init__", tuple(_native.Sequential.__iter__(obj))
    elif base not in (_native.Module, _native._SpatialLayer):  # a member of the layer, activation or loss family
        setup, kwargs = "__init__", _arguments(obj, base)
    return _subclass, (cls, base, setup, args, kwargs, training), state


def register() -> None:
    """Register the reducers of every native class with :mod:`copyreg`."""
    copyreg.pickle(_native.Tensor, lambda t: (_tensor, (t.tolist(), t.grad)))
    copyreg.pickle(_native.Generator, lambda g: (_generator, (g.get_state(),)))
    copyreg.pickle(_native.Sequential, _reduce_sequential)
    for name in _native.LAYERS:
        if name != "Sequential" and hasattr(_native, name):  # not the Python classes of pyfw_rs.conv
            copyreg.pickle(getattr(_native, name), _reduce_layer if _SLOTS[name] else _reduce_member)
    for name in (*_native.ACTIVATIONS, *_native.LOSSES):
        copyreg.pickle(getattr(_native, name), _reduce_member)
    for name in _native.OPTIMIZERS:
        copyreg.pickle(getattr(_native, name), _reduce_optimizer)
