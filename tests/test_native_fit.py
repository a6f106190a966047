"""pyfw_rs's native fit: an epoch run in Rust gives the bits of the Python loop.

``train_epoch`` hands an epoch to ``pyfw_rs._train_epoch`` when the model, the
loss and the optimizer are native and there is no ``on_batch``; an ``on_batch``
callback forces the Python loop, which is the reference here. Every loss and
optimizer of the tables is covered, with every arm of the native Sequential
(Linear, each activation, Dropout, nested Sequential) and a last batch that is
smaller than the others; pure-Python pyfw gives the same bits too.
"""

from __future__ import annotations

import threading
from types import ModuleType
from typing import Any, Callable

import pytest

import pyfw
from pyfw.task import LOSS_SETUP

rs = pytest.importorskip("pyfw_rs")

N, BATCH, EPOCHS = 23, 5, 2


def _loop(*_: Any) -> None:
    """An ``on_batch`` that does nothing: it makes ``train_epoch`` run the Python loop."""


def _hex(v: Any) -> Any:
    if isinstance(v, float):
        return v.hex()
    if isinstance(v, (list, tuple)):
        return [_hex(x) for x in v]
    if isinstance(v, dict):
        return {k: _hex(x) for k, x in v.items()}
    if hasattr(v, "tolist"):
        return _hex(v.tolist())
    return v


def _build(fw: ModuleType, loss: str, opt: str, seed: int = 3, dropout: float = 0.2) -> tuple:
    """A model with every arm, the loss ``loss`` with its head, and optimizer ``opt``."""
    g = fw.Generator(seed)
    x, labels = fw.data.disk(N, generator=g)
    kind, head = LOSS_SETUP[loss]
    t = labels if kind == "index" else fw.data.one_hot(labels, 2)
    acts = [fw.ACTIVATIONS[a]() for a in fw.ACTIVATIONS if a not in ("Softmax", "LogSoftmax")]
    inner = fw.Sequential(fw.Linear(6, 6, generator=g), acts[0], fw.Dropout(dropout, generator=g))
    layers = [fw.Linear(2, 6, generator=g), inner]
    for a in acts[1:]:
        layers += [a, fw.Linear(6, 6, generator=g)]
    layers += [fw.Dropout(dropout), fw.Linear(6, 2, generator=g)]
    if head is not None:
        layers.append(fw.ACTIVATIONS[head]())
    model = fw.Sequential(*layers)
    crit = fw.LOSSES[loss]()
    optimizer = fw.OPTIMIZERS[opt](model.parameters(), lr=0.01)
    return model, crit, optimizer, x, t, g


def _train(fw: ModuleType, loss: str, opt: str, on_batch: Callable | None, **kw: Any) -> dict:
    fw.manual_seed(5)  # the unseeded Dropout draws from the default generator
    model, crit, optimizer, x, t, g = _build(fw, loss, opt, **kw)
    losses = fw.fit(model, crit, optimizer, x, t, epochs=EPOCHS, batch_size=BATCH, generator=g, on_batch=on_batch)
    out = crit.backward()  # what the last step kept
    return {"losses": _hex(losses), "state": _hex(model.state_dict()), "opt": _hex(optimizer.state_dict()["state"]),
            "dloss": _hex(out), "dx": _hex(model.backward(out)), "gen": g.get_state(),
            "default": fw.default_generator.get_state()}


@pytest.mark.parametrize("opt", list(pyfw.OPTIMIZERS))
@pytest.mark.parametrize("loss", list(pyfw.LOSSES))
def test_native_epoch_has_the_bits_of_the_python_loop(loss: str, opt: str) -> None:
    native = _train(rs, loss, opt, None)
    assert native == _train(rs, loss, opt, _loop)
    assert native == _train(pyfw, loss, opt, None)


def _calls(monkeypatch: pytest.MonkeyPatch) -> list:
    """Record what ``pyfw_rs._train_epoch`` returns."""
    seen: list = []
    real = rs._train_epoch

    def spy(*args: Any) -> Any:
        seen.append(real(*args))
        return seen[-1]

    monkeypatch.setattr(rs, "_train_epoch", spy)
    return seen


def test_the_native_path_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _calls(monkeypatch)
    _train(rs, "MSELoss", "SGD", None)
    assert len(seen) == EPOCHS and all(isinstance(v, float) for v in seen)


def _identity_module(fw: ModuleType) -> Any:
    """A module written in Python, of backend ``fw``."""

    class PyIdentity(fw.Module):
        def forward(self, x: Any) -> Any:
            return x

        def backward(self, g: Any) -> Any:
            return g

        def param(self) -> list:
            return []

    return PyIdentity()


def _stepper(fw: ModuleType, params: Any) -> Any:
    """An SGD whose ``step`` is written in Python, of backend ``fw``."""

    class Stepper(fw.SGD):
        def step(self) -> None:
            super().step()

    return Stepper(params, lr=0.01)


def _python_module(fw: ModuleType) -> tuple:
    model, crit, opt, x, t, g = _build(fw, "MSELoss", "SGD")
    model.append(_identity_module(fw))
    return model, crit, opt, x, t, g


def _subclassed_step(fw: ModuleType) -> tuple:
    model, crit, _, x, t, g = _build(fw, "MSELoss", "SGD")
    return model, crit, _stepper(fw, model.parameters()), x, t, g


def _missing_param(fw: ModuleType) -> tuple:
    model, crit, _, x, t, g = _build(fw, "MSELoss", "SGD")
    return model, crit, fw.SGD(list(model.parameters())[1:], lr=0.01), x, t, g


@pytest.mark.parametrize("make", [_python_module, _subclassed_step, _missing_param])
def test_anything_not_native_runs_the_python_loop(monkeypatch: pytest.MonkeyPatch, make: Callable) -> None:
    seen = _calls(monkeypatch)
    results = []
    for fw in (rs, pyfw):
        fw.manual_seed(5)
        model, crit, opt, x, t, g = make(fw)
        results.append(_hex(fw.fit(model, crit, opt, x, t, epochs=EPOCHS, batch_size=BATCH, generator=g)))
    assert seen and all(v is None for v in seen)
    assert results[0] == results[1]


def test_class_indices_for_a_loss_of_values_fail_as_in_the_python_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _calls(monkeypatch)
    errors = []
    for fw in (rs, pyfw):
        model, crit, opt, x, _, g = _build(fw, "MSELoss", "SGD")
        with pytest.raises((TypeError, ValueError)) as e:
            fw.fit(model, crit, opt, x, [0, 1] * (N // 2) + [0], epochs=1, batch_size=BATCH, generator=g)
        errors.append((type(e.value), str(e.value)))
    assert seen == [None] and errors[0] == errors[1]


def test_an_error_mid_epoch_leaves_the_state_of_the_python_loop() -> None:
    """BCELoss on a head without Sigmoid fails at the first output outside [0, 1]."""
    outcome = []
    for on_batch in (None, _loop):
        fw = rs
        g = fw.Generator(1)
        x, labels = fw.data.disk(N, generator=g)
        model = fw.Sequential(fw.Linear(2, 4, generator=g), fw.Tanh(), fw.Linear(4, 2, generator=g))
        crit, opt = fw.BCELoss(), fw.SGD(model.parameters(), lr=0.5)
        with pytest.raises(ValueError) as e:
            fw.fit(model, crit, opt, x, fw.data.one_hot(labels, 2), epochs=3, batch_size=4, generator=g,
                   on_batch=on_batch)
        outcome.append((str(e.value), _hex(model.state_dict()), _hex(model.backward(fw.tensor([[1.0, 1.0]] * 4)))))
    assert outcome[0] == outcome[1]


def test_two_threads_train_their_own_models() -> None:
    """Each thread's run gives the bits of the same run alone (the lock is released meanwhile)."""
    alone = _train(rs, "CrossEntropyLoss", "Adam", None, dropout=0.0)
    results: dict = {}

    def work(k: int) -> None:
        results[k] = _train(rs, "CrossEntropyLoss", "Adam", None, dropout=0.0)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert results[0]["state"] == alone["state"] == results[1]["state"]
    assert results[0]["losses"] == alone["losses"]
