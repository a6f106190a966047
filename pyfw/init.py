"""Initialization schemes, as ``torch.nn.init``: written once, for the tensors of both backends.

Every function fills a tensor of ``pyfw`` or ``pyfw_rs`` in place and returns it.
The values are computed here, in Python, from the tensor's generator and written
with one ``t.copy_(nested_list)``, so both backends get the same bits for the
same seed.

Draws, element by element in row-major order (``W[0][0], W[0][1], ...``):

* uniform ``U(a, b)``: ``span = b - a`` once, then ``a + span * g.random()``;
* normal ``N(mean, std)``: ``g.normal(mean, std)`` (Box-Muller, two ``random()`` each).

``generator=None`` means the default generator of the tensor's backend
(``pyfw.default_generator`` for a ``pyfw.Tensor``, ``pyfw_rs.default_generator``
for a ``pyfw_rs.Tensor``); a generator of the other backend is a ``TypeError``.
Every argument is checked before anything is drawn, so a refused call consumes
no random numbers; a failed call never changes the tensor (with arguments so large
that a drawn value overflows to inf, the ``ValueError`` comes after the draws).

Fans of a 2-D weight of shape ``(out, in)``: ``fan_in = in``, ``fan_out = out``;
a 1-D tensor has no fans (``ValueError``, as in torch). Scales follow torch's
formulas and their order of evaluation:

* ``xavier_uniform_``: ``std = gain * sqrt(2.0 / (fan_in + fan_out))``,
  ``bound = sqrt(3.0) * std`` (= gain * sqrt(6 / (fan_in + fan_out))), U(-bound, bound);
* ``xavier_normal_``: N(0, std) with the same ``std``;
* ``kaiming_uniform_``: ``std = gain / sqrt(fan)``, ``bound = sqrt(3.0) * std``
  (= gain * sqrt(3 / fan)), U(-bound, bound), with ``gain = calculate_gain(nonlinearity, a)``;
* ``kaiming_normal_``: N(0, std) with the same ``std``.
"""

from __future__ import annotations

import math
import numbers
import sys
from typing import Any, Callable, Optional, Tuple

from . import generator as _generator
from .error import check_real
from .tensor import Tensor as _PyTensor

__all__ = [
    "calculate_gain", "constant_", "kaiming_normal_", "kaiming_uniform_", "normal_", "ones_",
    "uniform_", "xavier_normal_", "xavier_uniform_", "zeros_",
]

#: torch's nonlinearities with gain 1 (besides "sigmoid").
_LINEAR_FNS = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
               "conv_transpose3d")
_NONLINEARITIES = _LINEAR_FNS + ("sigmoid", "tanh", "relu", "leaky_relu", "selu")
_MODES = ("fan_in", "fan_out")

#: A ``pyfw.Tensor`` or a ``pyfw_rs.Tensor`` (1-D or 2-D).
TensorLike = Any
#: A ``pyfw.Generator`` or a ``pyfw_rs.Generator``, of the tensor's backend.
GeneratorLike = Any


# ---- argument checks ---------------------------------------------------------

def _backend(t: TensorLike, who: str) -> Tuple[type, Any, str]:
    """``(Generator class, default generator, package name)`` of the backend that owns ``t``."""
    if isinstance(t, _PyTensor):
        return _generator.Generator, _generator.default_generator, "pyfw"
    native = sys.modules.get("pyfw_rs._native")  # never imported from here: pyfw needs no build
    if native is not None and isinstance(t, native.Tensor):
        return native.Generator, native.default_generator, "pyfw_rs"
    raise TypeError(f"{who}: expected a pyfw or pyfw_rs Tensor, got {_type_name(t)}")


def _type_name(obj: Any) -> str:
    cls = type(obj)
    package = cls.__module__.split(".")[0]
    return cls.__qualname__ if package == "builtins" else f"{package}.{cls.__qualname__}"


def _resolve(t: TensorLike, generator: Any, who: str) -> GeneratorLike:
    """The generator to draw from: ``generator``, or the default one of ``t``'s backend.

    Also checks that ``t`` is a tensor of either backend.
    """
    gen_cls, default, package = _backend(t, who)
    if generator is None:
        return default
    if not isinstance(generator, gen_cls):
        raise TypeError(f"{who}: generator must be a {package}.Generator for a {package} tensor, "
                        f"got {_type_name(generator)}")
    return generator


def _non_negative(v: Any, who: str, what: str) -> float:
    f = check_real(v, who, what)
    if f < 0.0:
        raise ValueError(f"{who}: {what} must be non-negative, got {f!r}")
    return f


def _fans(t: TensorLike, who: str) -> Tuple[int, int]:
    """``(fan_in, fan_out)`` of a 2-D weight of shape ``(out, in)``: ``(in, out)``."""
    shape = tuple(t.shape)
    if len(shape) < 2:
        raise ValueError(f"{who}: fan in and fan out can not be computed for a tensor with fewer "
                         f"than 2 dimensions, got shape {shape}")
    return shape[1], shape[0]


def _fan(t: TensorLike, mode: Any, who: str) -> int:
    """``fan_in`` or ``fan_out`` of ``t`` as ``mode`` says (case-insensitive, as in torch)."""
    if not isinstance(mode, str):
        raise TypeError(f"{who}: mode must be a str, got {_type_name(mode)}")
    m = mode.lower()
    if m not in _MODES:
        raise ValueError(f"{who}: mode {mode!r} is not supported, use one of {list(_MODES)}")
    fan_in, fan_out = _fans(t, who)
    return fan_in if m == "fan_in" else fan_out


def _gain(nonlinearity: Any, param: Any, who: str) -> float:
    """torch's gain table (see :func:`calculate_gain`); errors name ``who``."""
    if not isinstance(nonlinearity, str):
        raise TypeError(f"{who}: nonlinearity must be a str, got {_type_name(nonlinearity)}")
    if nonlinearity in _LINEAR_FNS or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope: Any = 0.01
        elif isinstance(param, numbers.Real) and not isinstance(param, bool):
            negative_slope = param  # an int stays an int, as in torch
        else:
            raise ValueError(f"{who}: negative_slope {param!r} is not a valid number")
        try:
            ok = math.isfinite(negative_slope)
            gain = math.sqrt(2.0 / (1 + negative_slope ** 2)) if ok else math.nan
        except OverflowError:
            gain = math.nan
        if not (gain > 0.0):
            raise ValueError(f"{who}: negative_slope {param!r} must be finite and not too large")
        return gain
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"{who}: unsupported nonlinearity {nonlinearity!r}, "
                     f"use one of {', '.join(_NONLINEARITIES)}")


# ---- filling -----------------------------------------------------------------

def _fill(t: TensorLike, row: Callable[[int], list], who: str) -> TensorLike:
    """Write ``row(cols)`` for each row of ``t`` (one row for a 1-D tensor) through ``copy_``."""
    shape = tuple(t.shape)
    if len(shape) == 1:
        values: list = row(shape[0])
    else:
        rows, cols = shape
        values = [row(cols) for _ in range(rows)]
    try:
        t.copy_(values)
    except ValueError:  # only a value that overflowed to inf can be refused here
        raise ValueError(f"{who}: the arguments are too large, the drawn values are not all finite") from None
    return t


def _fill_uniform(t: TensorLike, a: float, b: float, g: GeneratorLike, who: str) -> TensorLike:
    """U(a, b) element by element in row-major order: ``a + span * g.random()``, ``span = b - a``."""
    span = b - a
    if not math.isfinite(span):
        raise ValueError(f"{who}: the range b - a = {b!r} - {a!r} is too large for a float")
    rand = g.random
    return _fill(t, lambda n: [a + span * rand() for _ in range(n)], who)


def _fill_normal(t: TensorLike, mean: float, std: float, g: GeneratorLike, who: str) -> TensorLike:
    """N(mean, std) element by element in row-major order: ``g.normal(mean, std)``."""
    normal = g.normal
    return _fill(t, lambda n: [normal(mean, std) for _ in range(n)], who)


# ---- the schemes ---------------------------------------------------------------

def calculate_gain(nonlinearity: str, param: Optional[float] = None) -> float:
    """The recommended gain for a nonlinearity, torch's table:

    ``linear``, ``conv1d/2d/3d``, ``conv_transpose1d/2d/3d``, ``sigmoid``: 1;
    ``tanh``: 5/3; ``relu``: sqrt(2); ``leaky_relu``: ``sqrt(2 / (1 + negative_slope**2))``
    with ``negative_slope = param`` (0.01 when ``param`` is None); ``selu``: 3/4.
    ``param`` is used by ``leaky_relu`` only.
    """
    return _gain(nonlinearity, param, "calculate_gain")


def uniform_(t: TensorLike, a: float = 0.0, b: float = 1.0,
             generator: Optional[GeneratorLike] = None) -> TensorLike:
    """Fill ``t`` from U(a, b): ``a + (b - a) * random()`` per element; needs ``a <= b``."""
    who = "uniform_"
    g = _resolve(t, generator, who)
    a, b = check_real(a, who, "a"), check_real(b, who, "b")
    if a > b:
        raise ValueError(f"{who}: a must not exceed b, got a={a!r} > b={b!r}")
    return _fill_uniform(t, a, b, g, who)


def normal_(t: TensorLike, mean: float = 0.0, std: float = 1.0,
            generator: Optional[GeneratorLike] = None) -> TensorLike:
    """Fill ``t`` from N(mean, std**2): ``generator.normal(mean, std)`` per element; ``std >= 0``."""
    who = "normal_"
    g = _resolve(t, generator, who)
    mean, std = check_real(mean, who, "mean"), _non_negative(std, who, "std")
    return _fill_normal(t, mean, std, g, who)


def constant_(t: TensorLike, val: float) -> TensorLike:
    """Fill ``t`` with the finite number ``val``."""
    who = "constant_"
    _backend(t, who)
    v = check_real(val, who, "val")
    return _fill(t, lambda n: [v] * n, who)


def zeros_(t: TensorLike) -> TensorLike:
    """Fill ``t`` with 0.0."""
    _backend(t, "zeros_")
    return _fill(t, lambda n: [0.0] * n, "zeros_")


def ones_(t: TensorLike) -> TensorLike:
    """Fill ``t`` with 1.0."""
    _backend(t, "ones_")
    return _fill(t, lambda n: [1.0] * n, "ones_")


def xavier_uniform_(t: TensorLike, gain: float = 1.0,
                    generator: Optional[GeneratorLike] = None) -> TensorLike:
    """Glorot uniform: U(-bound, bound) with ``bound = gain * sqrt(6 / (fan_in + fan_out))``.

    Evaluated as torch does: ``std = gain * sqrt(2.0 / (fan_in + fan_out))``,
    ``bound = sqrt(3.0) * std``. ``t`` must be 2-D, of shape ``(fan_out, fan_in)``.
    """
    who = "xavier_uniform_"
    g = _resolve(t, generator, who)
    gain = _non_negative(gain, who, "gain")
    fan_in, fan_out = _fans(t, who)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    bound = math.sqrt(3.0) * std
    return _fill_uniform(t, -bound, bound, g, who)


def xavier_normal_(t: TensorLike, gain: float = 1.0,
                   generator: Optional[GeneratorLike] = None) -> TensorLike:
    """Glorot normal: N(0, std**2) with ``std = gain * sqrt(2.0 / (fan_in + fan_out))``.

    ``t`` must be 2-D, of shape ``(fan_out, fan_in)``.
    """
    who = "xavier_normal_"
    g = _resolve(t, generator, who)
    gain = _non_negative(gain, who, "gain")
    fan_in, fan_out = _fans(t, who)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return _fill_normal(t, 0.0, std, g, who)


def _kaiming_std(t: TensorLike, a: Any, mode: Any, nonlinearity: Any, who: str) -> float:
    """``gain / sqrt(fan)`` with ``gain = calculate_gain(nonlinearity, a)`` and ``fan`` by ``mode``."""
    if a is not None:  # torch reads a only for leaky_relu; a non-number is refused everywhere
        check_real(a, who, "a")
    fan = _fan(t, mode, who)
    gain = _gain(nonlinearity, a, who)
    return gain / math.sqrt(fan)


def kaiming_uniform_(t: TensorLike, a: float = 0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu",
                     generator: Optional[GeneratorLike] = None) -> TensorLike:
    """He uniform: U(-bound, bound) with ``bound = gain * sqrt(3 / fan)``.

    ``gain = calculate_gain(nonlinearity, a)`` (``a`` is the negative slope of
    ``leaky_relu``, ignored by the others); ``fan`` is ``fan_in`` (the default) or
    ``fan_out``, as ``mode`` says. Evaluated as torch does: ``std = gain / sqrt(fan)``,
    ``bound = sqrt(3.0) * std``. ``t`` must be 2-D, of shape ``(fan_out, fan_in)``.
    """
    who = "kaiming_uniform_"
    g = _resolve(t, generator, who)
    bound = math.sqrt(3.0) * _kaiming_std(t, a, mode, nonlinearity, who)
    return _fill_uniform(t, -bound, bound, g, who)


def kaiming_normal_(t: TensorLike, a: float = 0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu",
                    generator: Optional[GeneratorLike] = None) -> TensorLike:
    """He normal: N(0, std**2) with ``std = gain / sqrt(fan)``.

    ``gain`` and ``fan`` as in :func:`kaiming_uniform_`.
    """
    who = "kaiming_normal_"
    g = _resolve(t, generator, who)
    std = _kaiming_std(t, a, mode, nonlinearity, who)
    return _fill_normal(t, 0.0, std, g, who)
