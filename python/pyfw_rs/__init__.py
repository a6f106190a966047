"""pyfw_rs: the pyfw framework with its kernels in Rust, bit-identical to pyfw.

Swapping ``import pyfw as fw`` for ``import pyfw_rs as fw`` changes speed and
never results. The tensor type, the generator, the modules, the loss, the
optimizer and the data sets are native (``pyfw_rs._native``); what is not a
kernel (the training loop, metrics, init schemes, task, CLI, file formats) is
written once in ``pyfw`` and re-exported here, so both namespaces show the
same names.
"""

import sys
from typing import Any

import pyfw
from pyfw.sweeps import sweep as _sweep
from pyfw import init, metrics, training
from pyfw.gradcheck import GradcheckError, gradcheck
from pyfw.metrics import argmax_rows, error_rate
from pyfw.training import fit, train_epoch

from . import _native, _pickle, activations, conv, data, grad_mode, io, losses, modules, optim
from ._native import (
    Generator,
    Module,
    Tensor,
    cat,
    default_generator,
    full,
    manual_seed,
    matmul,
    maximum,
    minimum,
    ones,
    ones_like,
    rand,
    randn,
    randperm,
    _train_epoch,
    tensor,
    zeros,
    zeros_like,
)
from .activations import ACTIVATIONS
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .modules import ModuleList, Parameter
from .losses import LOSSES
from .optim import OPTIMIZERS

__version__ = "0.1.0"


def sweep(configs: Any, seeds: Any, executor: Any = None, **options: Any) -> list:
    """:func:`pyfw.sweeps.sweep` with pyfw_rs as the backend unless ``fw=`` says otherwise
    (by default on a thread pool: the native ``fit`` releases the interpreter lock)."""
    options.setdefault("fw", sys.modules[__name__])
    return _sweep(configs, seeds, executor, **options)


_pickle.register()

LAYERS: dict = {name: getattr(conv, name, None) or getattr(_native, name) for name in _native.LAYERS}
"""The members of the layer family, by class name, in the table order of ``layer_table!``
(rust/modules.rs): native classes, and the convolution family's classes of :mod:`pyfw_rs.conv`."""

globals().update(LAYERS)
globals().update(ACTIVATIONS)
globals().update(LOSSES)
globals().update(OPTIMIZERS)

__all__ = list(pyfw.__all__)  # the same public names; tests/contract/test_rs_native.py checks each exists
