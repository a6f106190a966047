"""Grad mode for pyfw_rs (see :mod:`pyfw.grad_mode`): the classes written once in pyfw,
bound to the native thread-local switch that pyfw_rs's modules read in ``forward``."""

from __future__ import annotations

from pyfw import grad_mode as _grad_mode

from . import _native
from ._native import is_grad_enabled

__all__ = ["enable_grad", "is_grad_enabled", "no_grad", "set_grad_enabled"]


class no_grad(_grad_mode.no_grad):
    """:class:`pyfw.no_grad` for pyfw_rs's modules: a context manager and a decorator."""

    _set = staticmethod(_native._set_grad_enabled)


class enable_grad(_grad_mode.enable_grad):
    """:class:`pyfw.enable_grad` for pyfw_rs's modules."""

    _set = staticmethod(_native._set_grad_enabled)


class set_grad_enabled(_grad_mode.set_grad_enabled):
    """:class:`pyfw.set_grad_enabled` for pyfw_rs's modules."""

    _set = staticmethod(_native._set_grad_enabled)
