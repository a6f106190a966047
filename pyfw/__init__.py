"""pyfw: a small deep-learning framework in pure Python: N-d tensors with arithmetic, layers, losses, optimizers.

``pyfw_rs`` offers the same API with Rust kernels and bit-identical results.
"""

from . import _startup

_startup.guard_cli_startup()  # first: a Ctrl-C while the CLI is still loading gets one line, not a traceback

from . import activations, data, init, io, losses, metrics, optim, training
from .activations import ACTIVATIONS
from .gradcheck import GradcheckError, gradcheck
from .generator import Generator, default_generator, manual_seed, randperm
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .losses import LOSSES
from .metrics import argmax_rows, error_rate
from .modules import LAYERS, Module, ModuleList, Parameter
from .sweeps import sweep
from .optim import OPTIMIZERS
from .tensor import (Tensor, cat, full, matmul, maximum, minimum, ones, ones_like, rand, randn, tensor, zeros,
                     zeros_like)
from .training import fit, train_epoch

__version__ = "0.1.0"

globals().update(LAYERS)
globals().update(ACTIVATIONS)
globals().update(LOSSES)
globals().update(OPTIMIZERS)

__all__ = sorted([
    "Generator", "GradcheckError", "Module", "ModuleList", "Parameter", "Tensor",
    "argmax_rows", "data", "default_generator", "enable_grad", "error_rate", "fit", "gradcheck", "init", "io",
    "is_grad_enabled", "manual_seed", "no_grad", "set_grad_enabled",
    "activations", "losses", "metrics", "optim", "randperm", "sweep", "tensor", "train_epoch", "training",
    "cat", "full", "matmul", "maximum", "minimum", "ones", "ones_like", "rand", "randn", "zeros", "zeros_like",
    *LAYERS, *ACTIVATIONS, *LOSSES, *OPTIMIZERS,
])
