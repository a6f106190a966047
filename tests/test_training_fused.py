"""pyfw_rs's fused trainer: the native epoch of a small stack of Linear layers and
element-wise activations under SGD gives the bits of the Python loop and of pyfw.

The fused trainer (rust/fused.rs) counts its steps (``pyfw_rs._native._fused_steps``),
so each test also checks which path a stack took. ``PYFW_SIMD`` caps the SIMD path;
a child process per path gives the same bits as this one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from types import ModuleType
from typing import Any, Callable

import pytest

import pyfw

rs = pytest.importorskip("pyfw_rs")

N, BATCH, EPOCHS = 101, 7, 2  # a last batch of 3


def _loop(*_: Any) -> None:
    """An ``on_batch`` that does nothing: it makes ``fit`` run the Python loop."""


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


def _net(fw: ModuleType, sizes: tuple, act: str, g: Any, bias: bool = True) -> Any:
    layers: list = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(fw.Linear(a, b, bias=bias or i % 2 == 1, generator=g))
        if i < len(sizes) - 2:
            layers.append(fw.ACTIVATIONS[act]())
    return fw.Sequential(*layers)


def _train(fw: ModuleType, sizes: tuple, act: str, loss: str, opt: dict, on_batch: Callable | None,
           bias: bool = True) -> dict:
    g = fw.Generator(4)
    x, labels = fw.data.disk(N, generator=g)
    model = _net(fw, sizes, act, g, bias)
    if loss == "CrossEntropyLoss":
        t: Any = labels
    elif sizes[-1] == 1:
        t = fw.tensor([[float(v)] for v in labels])
    else:
        t = fw.data.one_hot(labels, 2)
    crit = fw.LOSSES[loss]()
    name = opt.pop("name", "SGD")
    optimizer = fw.OPTIMIZERS[name](model.parameters(), **opt)
    opt["name"] = name
    losses = fw.fit(model, crit, optimizer, x, t, epochs=EPOCHS, batch_size=BATCH, generator=g, on_batch=on_batch)
    out = crit.backward()  # what the last step kept
    return {"losses": _hex(losses), "state": _hex(model.state_dict()), "opt": _hex(optimizer.state_dict()["state"]),
            "dloss": _hex(out), "dx": _hex(model.backward(out)), "gen": g.get_state()}


def _fused_steps() -> int:
    return rs._native._fused_steps()


STEPS = EPOCHS * -(-N // BATCH)

CASES = [
    ((2, 25, 25, 25, 2), "ReLU", "MSELoss", {"lr": 0.1}),
    ((2, 16, 16, 1), "Tanh", "MSELoss", {"lr": 0.03, "momentum": 0.9}),
    ((2, 64, 64, 64, 2), "ReLU", "CrossEntropyLoss", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ((2, 9, 9, 2), "Sigmoid", "MSELoss", {"lr": 0.2, "momentum": 0.5, "dampening": 0.1, "weight_decay": 0.01}),
    ((2, 9, 9, 2), "GELU", "CrossEntropyLoss", {"lr": 0.1}),
    ((2, 9, 9, 2), "LeakyReLU", "MSELoss", {"lr": 0.1, "momentum": 0.9}),
]


@pytest.mark.parametrize("sizes, act, loss, opt", CASES)
def test_the_fused_trainer_has_the_bits_of_the_python_loop_and_pyfw(sizes: tuple, act: str, loss: str,
                                                                     opt: dict) -> None:
    before = _fused_steps()
    native = _train(rs, sizes, act, loss, dict(opt), None)
    assert _fused_steps() - before == STEPS, "the fused trainer ran every step"
    assert native == _train(rs, sizes, act, loss, dict(opt), _loop)
    assert native == _train(pyfw, sizes, act, loss, dict(opt), None)


def test_bias_free_layers_take_the_fused_trainer() -> None:
    before = _fused_steps()
    native = _train(rs, (2, 12, 12, 2), "ReLU", "MSELoss", {"lr": 0.1}, None, bias=False)
    assert _fused_steps() - before == STEPS
    assert native == _train(pyfw, (2, 12, 12, 2), "ReLU", "MSELoss", {"lr": 0.1}, None, bias=False)


@pytest.mark.parametrize("sizes, opt", [
    ((2, 65, 2), {"lr": 0.1}),
    ((2, 16, 2), {"name": "Adam", "lr": 0.01, "weight_decay": 0.01}),
])
def test_a_stack_it_cannot_take_runs_the_general_path(sizes: tuple, opt: dict) -> None:
    before = _fused_steps()
    native = _train(rs, sizes, "ReLU", "MSELoss", dict(opt), None)
    assert _fused_steps() == before, "the fused trainer did not run"
    assert native == _train(pyfw, sizes, "ReLU", "MSELoss", dict(opt), None)


_CHILD = """
import pyfw_rs as fw
from pyfw_rs import _native
g = fw.Generator(0)
x, labels = fw.data.disk(200, generator=g)
layers = [fw.Linear(2, 25, generator=g), fw.ReLU(), fw.Linear(25, 25, generator=g), fw.ReLU(),
          fw.Linear(25, 25, generator=g), fw.ReLU(), fw.Linear(25, 2, generator=g)]
model = fw.Sequential(*layers)
opt = fw.SGD(model.parameters(), lr=0.1, momentum=0.5)
losses = fw.fit(model, fw.MSELoss(), opt, x, fw.data.one_hot(labels, 2), epochs=3, batch_size=10, generator=g)
print(_native._simd_path(), _native._fused_steps())
print([v.hex() for v in losses], [[v.hex() for v in r] for p in model.parameters() for r in [p.flatten().tolist()]])
"""


def _child(simd: str | None) -> tuple:
    env = dict(os.environ)
    env.pop("PYFW_SIMD", None)
    if simd is not None:
        env["PYFW_SIMD"] = simd
    out = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, check=True)
    head, bits = out.stdout.splitlines()
    path, steps = head.split()
    return path, int(steps), bits


def test_every_simd_path_gives_the_same_bits() -> None:
    path, steps, want = _child(None)
    assert path in ("avx512", "avx2", "portable") and steps == 60
    order = ["portable", "avx2", "avx512"]
    for cap in order:
        got_path, got_steps, got = _child(cap)
        # a cap narrows the path, never widens it past what the CPU runs
        assert got_path == order[min(order.index(cap), order.index(path))]
        assert got_steps == 60
        assert got == want, f"PYFW_SIMD={cap}"


def test_samples_that_are_not_rows_take_the_general_path() -> None:
    """A Linear stack on (N, 3, 4) inputs acts on each sample's last dim: the
    fused trainer, which works on rows, leaves it to the general path, with pyfw's bits."""
    out = []
    for fw in (pyfw, rs):
        g = fw.Generator(3)
        model = fw.Sequential(fw.Linear(4, 8, generator=g), fw.ReLU(), fw.Linear(8, 2, generator=g))
        x, t = fw.randn(30, 3, 4, generator=g), fw.randn(30, 3, 2, generator=g)
        before = rs._native._fused_steps()
        losses = fw.fit(model, fw.MSELoss(), fw.SGD(model.param(), lr=0.1), x, t, 3, 7, g)
        if fw is rs:
            assert rs._native._fused_steps() == before
        out.append(_hex([losses, model.state_dict()]))
    assert out[0] == out[1]
