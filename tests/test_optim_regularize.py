"""``fw.optim.regularize_`` and ``fw.optim.Regularized``: Playground's L1 and L2 regularization as a
kernel of both backends (docs/NUMERICS.md, "Regularization"), bit-identical, with the gradient of
its penalty, and kept native inside pyfw_rs's training epoch."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

import pyfw
from conftest import load_backend
from fwtest import state_hex, th
from pyfw import task
from pyfw.training import train_epoch

W = [[0.5, -1.25, 0.0, 3.0], [-0.0, 1e-300, -7.5, 0.125]]
G = [[0.1, 0.2, -0.3, 0.0], [1.5, -2.5, 0.0, 0.7]]


def expected(l1: float, l2: float) -> list:
    """The documented formula, written out here."""
    def sign(v: float) -> float:
        return 1.0 if v > 0.0 else -1.0 if v < 0.0 else 0.0
    return [[g + (l1 * sign(w) + l2 * w) for w, g in zip(wr, gr)] for wr, gr in zip(W, G)]


@pytest.mark.parametrize("l1, l2", [(0.0, 0.0), (0.003, 0.0), (0.0, 0.3), (0.01, 0.001)])
def test_regularize_is_the_documented_formula_in_both_backends(fw: ModuleType, l1: float, l2: float) -> None:
    w, g = fw.tensor(W), fw.tensor(G)
    b, gb = fw.tensor([1.0, -2.0]), fw.tensor([0.5, 0.5])
    w.grad = g
    fw.optim.regularize_([w, (b, gb)], l1, l2)
    assert th(g) == th(fw.tensor(expected(l1, l2)))
    assert th(gb) == th(fw.tensor([0.5 + (l1 * 1.0 + l2 * 1.0), 0.5 + (l1 * -1.0 + l2 * -2.0)]))
    assert th(w) == th(fw.tensor(W))  # the weights do not move


def test_regularize_checks_before_changing_anything(fw: ModuleType) -> None:
    w, g = fw.tensor(W), fw.tensor(G)
    for l1, l2, kind in ((-0.1, 0.0, ValueError), (0.0, float("nan"), ValueError), ("1", 0.0, TypeError)):
        with pytest.raises(kind, match="regularize_"):
            fw.optim.regularize_([(w, g)], l1, l2)
    with pytest.raises(TypeError, match="regularize_"):
        fw.optim.regularize_([(w, g), "x"], 0.1, 0.1)
    assert th(g) == th(fw.tensor(G))
    w.grad = None
    fw.optim.regularize_([w], 0.1, 0.1)  # no gradient: skipped, as an optimizer skips it


@pytest.mark.parametrize("l1, l2", [(0.01, 0.0), (0.0, 0.03), (0.02, 0.5)])
def test_regularize_adds_the_penalty_gradient(fw: ModuleType, l1: float, l2: float) -> None:
    """Finite differences of ``l1 * sum(|w|) + l2 / 2 * sum(w * w)`` match what it adds."""
    w = [[0.5, -1.25, 2.0], [-0.75, 0.3, -3.0]]

    def penalty(v: list) -> float:
        total = 0.0
        for row in v:
            for x in row:
                total += l1 * abs(x) + 0.5 * l2 * x * x
        return total

    g = fw.tensor([[0.0] * 3 for _ in w])
    fw.optim.regularize_([(fw.tensor(w), g)], l1, l2)
    h = 1e-6
    for i, row in enumerate(w):
        for j in range(len(row)):
            up = [r[:] for r in w]
            down = [r[:] for r in w]
            up[i][j] += h
            down[i][j] -= h
            numeric = (penalty(up) - penalty(down)) / (2 * h)
            assert g.tolist()[i][j] == pytest.approx(numeric, rel=1e-6, abs=1e-9)


def _run(fw: ModuleType, python_loop: bool) -> tuple:
    config = task.Config(task="circle", n_train=60, n_test=20, layers="4,3", l1=0.003, l2=0.01, lr=0.1,
                         optimizer="adam", epochs=3)
    parts = task.build_run(fw, config)
    assert isinstance(parts["optimizer"], fw.optim.Regularized)
    losses = []
    for _ in range(config.epochs):
        losses.append(train_epoch(parts["model"], parts["criterion"], parts["optimizer"], parts["x_train"],
                                  parts["targets"], config.batch_size, parts["generator"], True,
                                  on_batch=(lambda *a: None) if python_loop else None).hex())
    return losses, state_hex(parts["model"]), [th(m.weight.grad) for m in parts["model"] if hasattr(m, "weight")]


def test_regularized_runs_are_the_same_bits_natively_in_python_and_in_pyfw() -> None:
    rs = load_backend("rs")
    native, loop, py = _run(rs, False), _run(rs, True), _run(pyfw, False)
    assert native == loop == py


def test_the_native_epoch_takes_a_regularized_optimizer() -> None:
    """pyfw_rs's epoch stays native: its binding accepts the penalties (and declines what it cannot do)."""
    rs = load_backend("rs")
    config = task.Config(task="xor", n_train=40, n_test=10, layers="3", l2=0.01, epochs=1)
    parts = task.build_run(rs, config)
    opt = parts["optimizer"]
    args = (parts["model"], parts["criterion"], opt.optimizer, parts["x_train"], parts["targets"], 10,
            parts["generator"], True)
    assert rs._train_epoch(*args, regularize=(opt.params, opt.l1, opt.l2)) is not None
    # a tensor that is not one of the model's: the Python loop must run
    assert rs._train_epoch(*args, regularize=([rs.tensor([1.0])], 0.1, 0.1)) is None
    assert rs._train_epoch(*args, regularize=(opt.params + opt.params[:1], 0.1, 0.1)) is None
    assert rs._train_epoch(*args, regularize=(opt.params, -1.0, 0.1)) is None


def test_regularized_passes_the_optimizer_on(fw: ModuleType) -> None:
    lin = fw.Linear(2, 2, generator=fw.Generator(0))
    inner = fw.SGD(lin.param(), lr=0.1)
    opt = fw.optim.Regularized(inner, [lin.weight], 0.0, 0.1)
    assert opt.param_groups is inner.param_groups and opt.defaults == inner.defaults
    assert opt.state_dict() == inner.state_dict()
    with pytest.raises(ValueError, match="Regularized: l2"):
        fw.optim.Regularized(inner, [lin.weight], 0.0, -1.0)


def _run_family(fw: ModuleType, python_loop: bool) -> tuple:
    """A stack with a LayerNorm and a bias-free Linear, its LayerNorm weight regularized too."""
    g = fw.Generator(7)
    model = fw.Sequential(fw.Linear(2, 4, generator=g), fw.LayerNorm(4), fw.Tanh(),
                          fw.Linear(4, 1, bias=False, generator=g))
    weights = [model[0].weight, model[1].weight, model[3].weight]
    opt = fw.optim.Regularized(fw.SGD(model.parameters(), lr=0.1), weights, 0.003, 0.01)
    x = fw.tensor([[0.25 * i - 1.0, 0.5 - 0.125 * i] for i in range(12)])
    t = fw.tensor([[0.1 * i] for i in range(12)])
    losses = [train_epoch(model, fw.MSELoss(), opt, x, t, 5, g, True,
                          on_batch=(lambda *a: None) if python_loop else None).hex() for _ in range(3)]
    return losses, state_hex(model)


def test_every_layer_family_slot_is_regularized_natively() -> None:
    """The native epoch regularizes any parameter slot of the layer table (a LayerNorm's weight,
    a Linear without bias), with the bits of the Python loop and of pyfw."""
    rs = load_backend("rs")
    native, loop, py = _run_family(rs, False), _run_family(rs, True), _run_family(pyfw, False)
    assert native == loop == py
    model = rs.Sequential(rs.Linear(2, 3), rs.LayerNorm(3), rs.Linear(3, 1, bias=False))
    weights = [model[1].weight, model[1].bias, model[2].weight]
    opt = rs.SGD(model.parameters(), lr=0.1)
    args = (model, rs.MSELoss(), opt, rs.tensor([[0.5, -0.5]] * 4), rs.tensor([[1.0]] * 4), 2, None, False)
    assert rs._train_epoch(*args, regularize=(weights, 0.003, 0.01)) is not None
