"""Loss functions. A loss is a Module whose ``forward(input, target)`` returns a
Python float and whose ``backward()`` returns dL/d(input)."""

from __future__ import annotations

from functools import reduce
from itertools import chain
from operator import add, mul, sub
from typing import Any, Optional

from .modules import Module
from .tensor import Tensor, as_tensor


class MSELoss(Module):
    """Mean squared error over all N elements, as ``torch.nn.MSELoss()``.

    ``L = (1/N) sum (x_k - t_k)^2`` and ``dL/dx_k = 2 (x_k - t_k) / N``
    (docs/NUMERICS.md, "MSELoss").
    """

    def __init__(self) -> None:
        super().__init__()
        self._diff: Optional[list] = None
        self._shape: tuple = ()

    def forward(self, input: Any, target: Any) -> float:
        """The mean of ``(input - target)**2`` over all elements."""
        x = as_tensor(input, "MSELoss input")
        t = as_tensor(target, "MSELoss target")
        if x.shape != t.shape:
            raise ValueError(f"MSELoss: input shape {x.shape} and target shape {t.shape} differ")
        diff = [list(map(sub, xr, tr)) for xr, tr in zip(x._rows, t._rows)]
        total = reduce(add, chain.from_iterable(map(mul, d, d) for d in diff))
        self._diff = diff
        self._shape = x.shape
        return total / x.numel()

    def backward(self) -> Tensor:
        """``2 (input - target) / N``, the gradient with respect to the input."""
        if self._diff is None:
            raise RuntimeError("MSELoss: backward called before forward")
        n = float(len(self._diff) * len(self._diff[0]))
        out = [[2.0 * v / n for v in d] for d in self._diff]
        return Tensor._wrap(out, self._shape)


LOSSES: dict = {cls.__name__: cls for cls in (MSELoss,)}
"""The members of the family, by class name, in table order."""
