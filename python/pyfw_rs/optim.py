"""The optimizer family with native update rules (see ``pyfw.optim``).

``Optimizer`` is the native base class; ``OPTIMIZERS`` lists the members in the
table order of rust/optim.rs. ``lr_scheduler`` is pyfw's, written once:
schedulers only set values of ``param_groups[0]`` (``"lr"``, ``"momentum"``,
``"betas"``), which both backends' optimizers read and check at every step.
"""

import sys

import pyfw.optim
from pyfw.optim import lr_scheduler

from . import _native
from ._native import Optimizer, regularize_

OPTIMIZERS: dict = {name: getattr(_native, name) for name in _native.OPTIMIZERS}
"""The members of the family, by class name, in the table order of rust/optim.rs."""

globals().update(OPTIMIZERS)


class Regularized(pyfw.optim.Regularized):
    """``pyfw.optim.Regularized`` with the native kernel ``regularize_`` (rust/optim.rs)."""

    regularize = staticmethod(regularize_)
    """The kernel: ``pyfw_rs.optim.regularize_``."""


sys.modules[__name__ + ".lr_scheduler"] = lr_scheduler

__all__ = ["Optimizer", "OPTIMIZERS", "Regularized", "lr_scheduler", "regularize_", *OPTIMIZERS]
