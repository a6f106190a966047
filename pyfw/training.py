"""The training loop shared by the CLI, the benchmark and users, for either backend."""

from __future__ import annotations

import numbers
import sys
from typing import Any, Callable, Optional


def backend_of(obj: Any) -> Any:
    """The package (``pyfw`` or ``pyfw_rs``) that defines ``type(obj)``."""
    top = type(obj).__module__.split(".")[0]
    mod = sys.modules.get(top)
    if mod is None or not hasattr(mod, "randperm"):
        raise TypeError(f"cannot tell the backend of a {type(obj).__name__}")
    return mod


def train_epoch(model: Any, criterion: Any, optimizer: Any, inputs: Any, targets: Any,
                batch_size: int = 10, generator: Any = None, shuffle: bool = True,
                on_batch: Optional[Callable[[int, int, float], None]] = None) -> float:
    """One pass over the data in mini-batches; returns the mean loss over samples.

    Each batch runs ``optimizer.zero_grad()``, ``model(xb)``, ``criterion(out, tb)``,
    ``model.backward(criterion.backward())`` and ``optimizer.step()``. With
    ``shuffle`` the order is one ``randperm(n, generator)`` per epoch; the last
    batch may be smaller. The epoch loss is ``(...(l_0 m_0 + l_1 m_1) + ...) / n``
    for batch losses ``l`` over ``m`` samples.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise TypeError(f"train_epoch: batch_size must be an int, got {type(batch_size).__name__}")
    if batch_size <= 0:
        raise ValueError(f"train_epoch: batch_size must be positive, got {batch_size}")
    n = len(inputs)
    if len(targets) != n:
        raise ValueError(f"train_epoch: {n} inputs but {len(targets)} targets")
    order = backend_of(inputs).randperm(n, generator=generator) if shuffle else list(range(n))
    nbatches = (n + batch_size - 1) // batch_size
    total = 0.0
    for k in range(nbatches):
        idx = order[k * batch_size:(k + 1) * batch_size]
        xb, tb = inputs[idx], targets[idx]
        optimizer.zero_grad()
        loss = criterion(model(xb), tb)
        model.backward(criterion.backward())
        optimizer.step()
        total += loss * len(idx)
        if on_batch is not None:
            on_batch(k + 1, nbatches, loss)
    return total / n


def fit(model: Any, criterion: Any, optimizer: Any, inputs: Any, targets: Any, epochs: int,
        batch_size: int = 10, generator: Any = None, shuffle: bool = True,
        on_epoch: Optional[Callable[[int, float], None]] = None,
        on_batch: Optional[Callable[[int, int, float], None]] = None) -> list:
    """``epochs`` calls of :func:`train_epoch`; returns the list of epoch losses.

    ``on_epoch(epoch, loss)`` is called after each epoch (epochs count from 1).
    """
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral):
        raise TypeError(f"fit: epochs must be an int, got {type(epochs).__name__}")
    if epochs <= 0:
        raise ValueError(f"fit: epochs must be positive, got {epochs}")
    model.train()
    losses = []
    for e in range(1, epochs + 1):
        loss = train_epoch(model, criterion, optimizer, inputs, targets, batch_size,
                           generator, shuffle, on_batch)
        losses.append(loss)
        if on_epoch is not None:
            on_epoch(e, loss)
    return losses
