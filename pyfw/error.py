"""Argument and shape checks shared by every family (mirrors ``rust/error.rs``).

Each check raises the exception the README promises for the bad input: a
``TypeError`` for a value of the wrong kind, a ``ValueError`` for a wrong value
or shape, a ``RuntimeError`` for ``backward`` before ``forward`` (or after one
under ``no_grad``). Messages start with the module that raised them.
"""

from __future__ import annotations

import math
import numbers
import threading
from typing import Any, Optional

from .tensor import Tensor, as_tensor


def described(v: Any) -> str:
    """``type(v).__name__``, prefixed with its backend for an object of ``pyfw`` or
    ``pyfw_rs`` (``"pyfw_rs Linear"``), so that a message can say which one it is."""
    root = (getattr(type(v), "__module__", "") or "").split(".")[0]
    name = type(v).__name__
    return f"{root} {name}" if root in ("pyfw", "pyfw_rs") else name


def mixed(values: tuple, mine: str) -> str:
    """The hint of a message about ``values`` when one of them belongs to the other backend."""
    other = "pyfw_rs" if mine == "pyfw" else "pyfw"
    if any(described(v).startswith(other + " ") for v in values):
        return f" (the two backends do not mix: build everything with {mine})"
    return ""


def check_size(v: Any, who: str, what: str) -> int:
    """A positive int (``TypeError`` for other kinds, ``ValueError`` for 0 or less)."""
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{who}: {what} must be an int, got {type(v).__name__}")
    if v <= 0:
        raise ValueError(f"{who}: {what} must be positive, got {v}")
    return int(v)


def check_int(v: Any, who: str, what: str) -> int:
    """An int that fits in 64 bits, bools excluded."""
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{who}: {what} must be an int, got {type(v).__name__}")
    if not -(1 << 63) <= v < (1 << 63):
        raise ValueError(f"{who}: {what} is out of range, got {v}")
    return int(v)


def check_real(v: Any, who: str, what: str) -> float:
    """A finite real number as a float (bools excluded)."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{who}: {what} must be a real number, got {type(v).__name__}")
    try:
        f = float(v)
    except OverflowError:
        f = math.inf
    if not math.isfinite(f):
        raise ValueError(f"{who}: {what} must be finite, got {f!r}")
    return f


def check_grad(grad: Any, shape: tuple, who: str) -> Tensor:
    """``grad`` as a tensor of exactly ``shape``, the shape of the output it belongs to."""
    g = as_tensor(grad, who)
    if g.shape != shape:
        raise ValueError(f"{who}: gradient has shape {g.shape}, the output had shape {shape}")
    return g


def check_thread(owner: Optional[int], who: str) -> None:
    """``RuntimeError`` unless ``backward`` runs in the thread of the last ``forward``.

    A model shared by threads keeps one saved input per module; a forward in another
    thread replaces it, and ``backward`` would then compute with the wrong input.
    ``owner`` is the ``threading.get_ident()`` that ``forward`` recorded.
    """
    if owner is not None and owner != threading.get_ident():
        raise RuntimeError(f"{who}: backward in another thread than the last forward, whose input it would use; "
                           "give each thread its own model")


class _NoGrad:
    """The type of :data:`NO_GRAD`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_GRAD"


NO_GRAD = _NoGrad()
"""What a module keeps of a ``forward`` run under ``no_grad``: nothing but that fact."""


def not_forwarded(who: str, kept: Any = None) -> RuntimeError:
    """The error of ``backward`` with nothing kept: before any ``forward``, or, when
    ``kept`` is :data:`NO_GRAD`, after a ``forward`` under ``no_grad``."""
    if kept is NO_GRAD:
        return RuntimeError(f"{who}: backward after a forward under no_grad, which keeps nothing for backward; "
                            "run the forward with grad enabled")
    return RuntimeError(f"{who}: backward called before forward")
