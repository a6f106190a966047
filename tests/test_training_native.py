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


def _bce_diverges(on_batch: Callable | None) -> tuple:
    """BCELoss on a head without Sigmoid, started at 0.5 and pushed past [0, 1] by a
    large step: it fails after some steps; returns the error, the steps done, the state."""
    g = rs.Generator(1)
    x, labels = rs.data.disk(N, generator=g)
    model = rs.Sequential(rs.Linear(2, 4, generator=g), rs.Tanh(), rs.Linear(4, 2, generator=g))
    model.load_state_dict({"2.weight": [[0.0] * 4] * 2, "2.bias": [0.5, 0.5]}, strict=False)
    crit, opt = rs.BCELoss(), rs.Adam(model.parameters(), lr=0.3)
    steps: list = []
    seen = on_batch or (lambda *a: None)
    with pytest.raises(ValueError) as e:
        rs.fit(model, crit, opt, x, rs.data.one_hot(labels, 2), epochs=3, batch_size=4, generator=g,
               on_batch=on_batch and (lambda *a: (steps.append(a), seen(*a))))
    after = model.backward(rs.tensor([[1.0, 1.0]] * 4))
    return str(e.value), steps, _hex(model.state_dict()), _hex(opt.state_dict()["state"]), _hex(after), \
        g.get_state()


def test_an_error_mid_epoch_leaves_the_state_of_the_python_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    python = _bce_diverges(_loop)
    assert len(python[1]) >= 2, "the error comes after some steps"
    entered: list = []
    real = rs._train_epoch

    def spy(*args: Any) -> Any:
        entered.append("in")
        entered.append(real(*args))
        return entered[-1]

    monkeypatch.setattr(rs, "_train_epoch", spy)
    native = _bce_diverges(None)
    assert entered[-1] == "in", "the error came from the native epoch (it did not hand over to Python)"
    assert native[0] == python[0] and native[2:] == python[2:]
    monkeypatch.setattr(rs, "_train_epoch", lambda *a: None)  # the Python loop instead: the same outcome
    assert _bce_diverges(None)[2:] == python[2:]


def test_a_forward_that_fails_leaves_the_later_layers_untouched() -> None:
    """A shape error in the first batch: the layers after the failing one keep no input,
    so their backward is the error of the Python loop."""
    outcome = []
    for on_batch in (None, _loop):
        g = rs.Generator(2)
        x, labels = rs.data.disk(N, generator=g)
        model = rs.Sequential(rs.Linear(2, 4, generator=g), rs.Softmax(dim=2), rs.Linear(4, 2, generator=g),
                              rs.Tanh())
        opt = rs.SGD(model.parameters(), lr=0.1)
        with pytest.raises(ValueError) as e:
            rs.fit(model, rs.MSELoss(), opt, x, rs.data.one_hot(labels, 2), epochs=1, batch_size=5, generator=g,
                   on_batch=on_batch)
        later = []
        for m in (model[2], model[3]):
            with pytest.raises(RuntimeError) as r:
                m.backward(rs.tensor([[1.0, 1.0]] * 5))
            later.append(str(r.value))
        outcome.append((str(e.value), later, _hex(model[0].backward(rs.tensor([[1.0] * 4] * 5))), g.get_state()))
    assert outcome[0] == outcome[1]


@pytest.mark.parametrize("shuffle, batch", [(0, 5), (1, 5), (None, 7), ("yes", 2**70), ([], 2**64)])
def test_any_truthy_shuffle_and_any_batch_size(shuffle: Any, batch: int) -> None:
    """``shuffle`` is read for its truth and ``batch_size`` may exceed the data, as in pyfw."""
    runs = [_hex(_fit_with(fw, shuffle, batch)) for fw in (rs, pyfw)]
    assert runs[0] == runs[1]


def _fit_with(fw: ModuleType, shuffle: Any, batch: int) -> tuple:
    model, crit, opt, x, t, g = _build(fw, "MSELoss", "SGD", dropout=0.0)
    losses = fw.fit(model, crit, opt, x, t, epochs=2, batch_size=batch, generator=g, shuffle=shuffle)
    return losses, model.state_dict(), g.get_state()


def test_two_threads_train_their_own_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each thread's run, native, gives the bits of the same run alone (the lock is released meanwhile)."""
    alone = _train(rs, "CrossEntropyLoss", "Adam", None, dropout=0.0)
    seen = _calls(monkeypatch)
    results: dict = {}

    def work(k: int) -> None:
        results[k] = _train(rs, "CrossEntropyLoss", "Adam", None, dropout=0.0)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(seen) == 2 * EPOCHS and all(isinstance(v, float) for v in seen)
    for k in range(2):
        got, want = dict(results[k]), dict(alone)
        got.pop("default"), want.pop("default")  # the threads share the default generator (nothing draws from it)
        assert got == want
