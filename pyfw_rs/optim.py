"""The optimizer family with native update rules (see ``pyfw.optim``).

``lr_scheduler`` is pyfw's, written once: schedulers only set the ``"lr"`` of
``param_groups``, which both backends' optimizers read at every step.
"""

import sys

from pyfw.optim import lr_scheduler

from . import _native

OPTIMIZERS: dict = {name: getattr(_native, name) for name in _native.OPTIMIZERS}
"""The members of the family, by class name, in the table order of rust/optim.rs."""

globals().update(OPTIMIZERS)
sys.modules[__name__ + ".lr_scheduler"] = lr_scheduler
