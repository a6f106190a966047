"""The optimizer family. Optimizers update the parameters of ``Module.param()``
(or ``Module.parameters()``) in place; ``OPTIMIZERS`` lists the members, and
``lr_scheduler`` holds the schedulers. ``rust/optim.rs`` holds the same update
rules."""

from __future__ import annotations

import math
import numbers
from itertools import repeat
from operator import mul, sub
from typing import Any, Iterable

from ..tensor import Tensor
from . import lr_scheduler


def _check_lr(lr: Any, who: str) -> float:
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
        raise TypeError(f"{who}: lr must be a real number, got {type(lr).__name__}")
    try:
        lr = float(lr)
    except OverflowError:
        raise ValueError(f"{who}: lr must be finite and non-negative, got {lr!r:.40}") from None
    if not math.isfinite(lr) or lr < 0.0:
        raise ValueError(f"{who}: lr must be finite and non-negative, got {lr}")
    return lr


def _check_pairs(params: Iterable, who: str) -> list:
    try:
        pairs = list(params)
    except TypeError:
        raise TypeError(f"{who}: params must be a list of (parameter, gradient) pairs, "
                        f"got {type(params).__name__}") from None
    if not pairs:
        raise ValueError(f"{who}: got an empty parameter list")
    out = []
    for i, pair in enumerate(pairs):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"{who}: params[{i}] is not a (parameter, gradient) pair")
        p, g = pair
        if not isinstance(p, Tensor) or not isinstance(g, Tensor):
            raise TypeError(f"{who}: params[{i}] must hold two pyfw Tensors, "
                            f"got {type(p).__name__} and {type(g).__name__}")
        if p.shape != g.shape:
            raise ValueError(f"{who}: params[{i}] has parameter shape {p.shape} and gradient shape {g.shape}")
        out.append((p, g))
    return out


class SGD:
    """Plain stochastic gradient descent: ``p = p - (lr * g)`` for every element."""

    def __init__(self, params: Iterable, lr: float = 1e-3) -> None:
        self.lr = lr
        self._pairs = _check_pairs(params, "SGD")

    @property
    def lr(self) -> float:
        """The learning rate; setting it checks it as the constructor does."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = _check_lr(value, "SGD")

    def step(self) -> None:
        """Update every parameter in place from its gradient."""
        lr = self.lr
        for p, g in self._pairs:
            prow, grow = p._rows, g._rows
            for r in range(len(prow)):
                prow[r] = list(map(sub, prow[r], map(mul, repeat(lr), grow[r])))

    def zero_grad(self) -> None:
        """Set every gradient to zero, in place."""
        for _, g in self._pairs:
            g.zero_()

    def __repr__(self) -> str:
        return f"SGD(lr={self.lr})"


OPTIMIZERS: dict = {cls.__name__: cls for cls in (SGD,)}
"""The members of the family, by class name, in table order."""
