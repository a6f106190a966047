"""The training loop shared by the CLI, the benchmark and users, for either backend."""

from __future__ import annotations

import math
import numbers
import os
import sys
import time
from typing import Any, Callable, Optional

from . import io
from .optim import Regularized
from .optim.lr_scheduler import ReduceLROnPlateau

PROGRESS_EVERY = 0.1
"""The least time, in seconds, between two calls of ``on_progress`` within an epoch."""
_clock = time.perf_counter  # the Python loop's clock for on_progress


def backend_of(obj: Any) -> Any:
    """The package (``pyfw`` or ``pyfw_rs``) that defines ``type(obj)``, or, for a
    subclass defined elsewhere (a user's ``Module``), its nearest base class that a
    backend defines. A backend is a package with ``randperm`` and ``train_epoch``."""
    for cls in type(obj).__mro__:
        mod = sys.modules.get(cls.__module__.split(".")[0])
        if mod is not None and hasattr(mod, "randperm") and hasattr(mod, "train_epoch"):
            return mod
    raise TypeError(f"cannot tell the backend of a {type(obj).__name__}")


def gather(data: Any, idx: list) -> Any:
    """The rows ``idx`` of ``data``: ``data[idx]`` for a tensor, ``[data[i] for i in idx]``
    for a list (class indices). Used by :func:`train_epoch` and ``data.DataLoader``."""
    return [data[i] for i in idx] if isinstance(data, list) else data[idx]


def _backend(model: Any, inputs: Any, who: str) -> Any:
    """The model's backend or, for a model no backend defines, that of the input tensor."""
    for obj in (model, inputs):
        try:
            fw = backend_of(obj)
        except TypeError:
            continue
        if obj is model or isinstance(inputs, fw.Tensor):
            return fw
    raise TypeError(f"{who}: cannot tell the backend: the model is a {type(model).__name__} (not a pyfw or "
                    f"pyfw_rs Module) and inputs a {type(inputs).__name__}")


def _plain(data: Any, fw: Any, who: str, name: str) -> Any:
    """``data`` as a list (or tuple): numpy arrays and the like through ``tolist()``."""
    if isinstance(data, (list, tuple)):
        return data
    try:
        other = backend_of(data)
    except TypeError:
        other = None
    if other is not None:
        raise TypeError(f"{who}: {name} is a {other.__name__} {type(data).__name__} but the model is a "
                        f"{fw.__name__} model; convert it with {fw.__name__}.tensor({name}.tolist())")
    tolist = getattr(data, "tolist", None)
    if callable(tolist) and not isinstance(data, (str, bytes)):
        return tolist()
    return None


def _as_inputs(inputs: Any, fw: Any, who: str) -> Any:
    """``inputs`` as an ``fw`` tensor of rank 2 or more (one entry of dim 0 per sample): a tensor of ``fw`` as it is; a nested list or a
    numpy array (through ``tolist()``) through ``fw.tensor``."""
    if isinstance(inputs, fw.Tensor):
        x = inputs
    else:
        data = _plain(inputs, fw, who, "inputs")
        if data is None:
            raise TypeError(f"{who}: inputs must be a {fw.__name__} Tensor, a nested list or a numpy array, "
                            f"got {type(inputs).__name__}")
        try:
            x = fw.tensor(data)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{who}: inputs: {e}") from None
    if len(x.shape) < 2:
        raise ValueError(f"{who}: inputs must be at least 2-D (samples x features, or samples x channels x ...), "
                         f"got shape {tuple(x.shape)}")
    return x


def _as_targets(targets: Any, fw: Any, who: str) -> Any:
    """``targets`` as an ``fw`` tensor, or as a list of ints (class indices).

    A tensor of ``fw`` stays as it is. A list, tuple or numpy array (through
    ``tolist()``) of ints is a list of class indices; one of rows (lists) goes
    through ``fw.tensor``.
    """
    if isinstance(targets, fw.Tensor):
        return targets
    data = _plain(targets, fw, who, "targets")
    need = (f"{who}: targets must be a {fw.__name__} Tensor, a nested list or a numpy array with one row per "
            f"sample, or a list of class indices (ints)")
    if data is None:
        raise TypeError(f"{need}, got {type(targets).__name__}")
    if not data:
        raise ValueError(f"{who}: targets is empty")
    if all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in data):
        return [int(v) for v in data]
    if all(isinstance(v, (list, tuple)) for v in data):
        try:
            return fw.tensor(data)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{who}: targets: {e}") from None
    kinds = sorted({type(v).__name__ for v in data})
    raise TypeError(f"{need}, got a {type(targets).__name__} of {', '.join(kinds)}")


def _prepare(model: Any, inputs: Any, targets: Any, batch_size: Any, who: str) -> tuple:
    """Check ``batch_size`` and the data; returns ``(fw, inputs, targets)`` converted."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise TypeError(f"{who}: batch_size must be an int, got {type(batch_size).__name__}")
    if batch_size <= 0:
        raise ValueError(f"{who}: batch_size must be positive, got {batch_size}")
    fw = _backend(model, inputs, who)
    if not fw.is_grad_enabled():
        raise RuntimeError(f"{who}: grad is disabled in this thread (inside {fw.__name__}.no_grad()), so no module "
                           "would keep what backward needs: train outside no_grad")
    x = _as_inputs(inputs, fw, who)
    t = _as_targets(targets, fw, who)
    if len(t) != len(x):
        raise ValueError(f"{who}: {len(x)} inputs but {len(t)} targets")
    return fw, x, t


def train_epoch(model: Any, criterion: Any, optimizer: Any, inputs: Any, targets: Any,
                batch_size: int = 10, generator: Any = None, shuffle: bool = True,
                on_batch: Optional[Callable[[int, int, float], None]] = None,
                on_progress: Optional[Callable[[int, int, float], None]] = None) -> float:
    """One pass over the data in mini-batches; returns the mean loss over samples.

    Each batch runs ``optimizer.zero_grad()``, ``model(xb)``, ``criterion(out, tb)``,
    ``model.backward(criterion.backward())`` and ``optimizer.step()``. With
    ``shuffle`` the order is one ``randperm(n, generator)`` of the model's backend
    per epoch, drawn before the first batch; batch ``k`` holds the entries
    ``k*batch_size`` to ``(k+1)*batch_size - 1`` of the order (the last batch may
    be smaller). The epoch loss is the fold ``((0.0 + l_0 * m_0) + l_1 * m_1) + ...``
    divided by ``n``, for batch losses ``l_k`` over ``m_k`` samples. ``inputs`` and ``targets`` are
    converted as :func:`fit` says. With grad disabled in the calling thread (inside the
    backend's ``no_grad``) it raises a ``RuntimeError`` before the model changes.

    In ``pyfw_rs``, when the model, the loss and the optimizer are native (no
    Python subclass overrides what the loop calls) and there is no ``on_batch``,
    the whole epoch runs in Rust with the interpreter lock released: the same
    steps in the same order, so the same bits. ``param_groups[0]`` is then read
    once, at the epoch's start (a change another thread makes during the epoch
    applies from the next one), and Ctrl-C is acted on at the epoch's end; pass
    an ``on_batch`` to have the Python loop, which does both at every step. A
    ``pyfw_rs.optim.Regularized`` around a native optimizer keeps the epoch native:
    its ``regularize_`` runs in Rust before each step.

    ``on_progress(k, nbatches, loss)``, which :func:`fit` describes, keeps the epoch
    native: Rust takes the interpreter lock back only to call it (and checks for
    Ctrl-C then), so Ctrl-C stops the epoch within about :data:`PROGRESS_EVERY`
    seconds. Until the last batch the native epoch holds the model, the loss and
    the optimizer: a call before it that touches them gets a ``RuntimeError``.
    """
    fw, inputs, targets = _prepare(model, inputs, targets, batch_size, "train_epoch")
    n = len(inputs)
    every = PROGRESS_EVERY
    native = getattr(fw, "_train_epoch", None)  # pyfw_rs: the same loop in Rust, when all is native
    if native is not None and on_batch is None:
        inner, extra = optimizer, {}
        if isinstance(optimizer, Regularized) and type(optimizer).step is Regularized.step \
                and optimizer.regularize is fw.optim.regularize_:  # the same steps, natively
            inner, extra = optimizer.optimizer, {"regularize": (optimizer.params, optimizer.l1, optimizer.l2)}
        if on_progress is not None:
            extra.update(progress=on_progress, every=every)
        total = native(model, criterion, inner, inputs, targets, min(batch_size, n), generator, bool(shuffle),
                       **extra)
        if total is not None:
            if on_progress is not None:  # the last batch's report, the model released
                nbatches = (n + batch_size - 1) // batch_size
                on_progress(nbatches, nbatches, total / n)
            return total / n
    order = fw.randperm(n, generator=generator) if shuffle else list(range(n))
    nbatches = (n + batch_size - 1) // batch_size
    total = 0.0
    seen, shown, flagged = 0, _clock(), False
    for k in range(nbatches):
        idx = order[k * batch_size:(k + 1) * batch_size]
        xb, tb = inputs[idx], gather(targets, idx)
        optimizer.zero_grad()
        loss = criterion(model(xb), tb)
        model.backward(criterion.backward())
        optimizer.step()
        total += loss * len(idx)
        if on_batch is not None:
            on_batch(k + 1, nbatches, loss)
        if on_progress is not None:
            seen += len(idx)
            if k + 1 < nbatches:  # at most every PROGRESS_EVERY s, and at once when the loss turns non-finite
                now = _clock()
                if math.isfinite(total) or flagged:
                    if now - shown < every:
                        continue
                else:
                    flagged = True
                shown = now
            on_progress(k + 1, nbatches, total / seen)
    return total / n


def fit(model: Any, criterion: Any, optimizer: Any, inputs: Any, targets: Any, epochs: int,
        batch_size: int = 10, generator: Any = None, shuffle: bool = True,
        on_epoch: Optional[Callable[[int, float], Optional[bool]]] = None,
        on_batch: Optional[Callable[[int, int, float], None]] = None,
        on_progress: Optional[Callable[[int, int, float], None]] = None,
        scheduler: Any = None, checkpoint: Any = None, resume: bool = False,
        checkpoint_extra: Optional[dict] = None) -> list:
    """Up to ``epochs`` calls of :func:`train_epoch`; returns the list of epoch losses.

    After each epoch (epochs count from 1), in this order: ``scheduler.step()``
    (``scheduler.step(loss)`` for a ``ReduceLROnPlateau``, with the epoch loss), then
    ``on_epoch(epoch, loss)``. If ``on_epoch`` returns ``False`` (exactly ``False``;
    ``None`` or ``True`` continue) training stops after that epoch, and the list
    holds the epochs run. A scheduler that should step per batch (``OneCycleLR``)
    can be stepped from ``on_batch(k, nbatches, loss)`` instead, which is called
    after every batch ``k`` (from 1) with that batch's loss.

    ``on_progress(k, nbatches, loss)`` is for a progress display: it is called
    after batch ``k`` at most every :data:`PROGRESS_EVERY` seconds (0.1), at once
    the first time the loss turns non-finite, and always after the last batch of
    each epoch (``k == nbatches``, before the checkpoint is written), with the
    epoch's running mean loss: the fold of the batch losses times their sizes so
    far divided by the samples so far (at ``k == nbatches``, the epoch's loss). An
    exception it raises stops training after that batch. Unlike ``on_batch``, it
    keeps ``pyfw_rs``'s native epoch (see :func:`train_epoch`).

    ``inputs``: a tensor of the model's backend, or a rectangular nested list or a
    numpy array (anything with ``tolist()``), converted once with that backend's
    ``tensor()``. ``targets``: a tensor, a nested list or numpy array of rows
    (converted the same way), or a list or 1-D integer array of class indices,
    kept as a list of ints (for ``CrossEntropyLoss`` and ``NLLLoss``). Anything
    else is a ``TypeError`` that says what ``fit`` needs; every check runs before
    the model changes. Inside the backend's ``no_grad`` (grad disabled in the calling
    thread) it is a ``RuntimeError``: no module would keep what ``backward`` needs.

    With ``checkpoint`` (a path), after every epoch (after the scheduler step,
    before ``on_epoch``) the model, the optimizer, the scheduler, the generator
    (``generator``, or the backend's default generator), the epoch and the losses
    so far are written there atomically (:func:`pyfw.io.save_checkpoint`). With
    ``resume=True`` and an existing ``checkpoint``, they are read back first and
    training continues after the stored epoch, so a run stopped at any moment and
    resumed ends with the same bits as a run never stopped. The returned list then
    holds every epoch's loss, the stored ones first; a checkpoint of more epochs
    than ``epochs`` is a ``ValueError`` that says both numbers, and changes nothing.
    The generators that modules hold (a ``Dropout`` given ``generator=``) are in the
    checkpoint too. ``checkpoint_extra`` is any JSON stored with each checkpoint (the
    CLI stores the run's configuration); one that is not JSON is a ``TypeError``
    before the first epoch.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral):
        raise TypeError(f"fit: epochs must be an int, got {type(epochs).__name__}")
    if epochs <= 0:
        raise ValueError(f"fit: epochs must be positive, got {epochs}")
    fw, inputs, targets = _prepare(model, inputs, targets, batch_size, "fit")
    if scheduler is not None and not callable(getattr(scheduler, "step", None)):
        raise TypeError(f"fit: scheduler must have a step() method, got {type(scheduler).__name__}")
    if on_epoch is not None and not callable(on_epoch):
        raise TypeError(f"fit: on_epoch must be callable, got {type(on_epoch).__name__}")
    plateau = isinstance(scheduler, ReduceLROnPlateau)
    gen = generator if generator is not None else fw.default_generator
    if checkpoint is not None:
        io._checkpoint_text({"extra": checkpoint_extra}, "fit: checkpoint_extra")  # refused now, not after an epoch
    start, losses = 1, []
    if resume:
        if checkpoint is None:
            raise ValueError("fit: resume=True needs a checkpoint path")
        if os.path.exists(checkpoint):
            done = io.checkpoint_info(checkpoint)["epoch"]
            if done > epochs:
                raise ValueError(f"fit: {os.fspath(checkpoint)} holds {done} finished epochs, more than the "
                                 f"epochs={epochs} asked for: pass epochs={done} or more to continue that run")
            info = io.load_checkpoint(checkpoint, model, optimizer, scheduler, gen)
            start, losses = info["epoch"] + 1, info["losses"]
    model.train()
    for e in range(start, epochs + 1):
        loss = train_epoch(model, criterion, optimizer, inputs, targets, batch_size,
                           generator, shuffle, on_batch, on_progress)
        losses.append(loss)
        if scheduler is not None:
            if plateau:
                scheduler.step(loss)
            else:
                scheduler.step()
        if checkpoint is not None:
            io.save_checkpoint(checkpoint, model, optimizer, scheduler, gen, e, losses, checkpoint_extra)
        if on_epoch is not None and on_epoch(e, loss) is False:
            break
    return losses
