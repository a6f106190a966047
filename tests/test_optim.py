"""SGD: the exact update p - (lr * g), lr = 0, bad learning rates and parameter lists.
The whole family is tested from its table in test_optim_family.py."""

from __future__ import annotations

import math
import random
from types import ModuleType

import pytest


def flat(x: list) -> list:
    return [v for r in x for v in r] if x and isinstance(x[0], list) else list(x)


def model_with_grads(fw: ModuleType, seed: int = 0) -> object:
    rng = random.Random(seed)
    g = fw.Generator(seed)
    model = fw.Sequential(fw.Linear(3, 5, generator=g), fw.Tanh(), fw.Linear(5, 2, generator=g))
    x = [[rng.uniform(-1, 1) for _ in range(3)] for _ in range(4)]
    model(x)
    model.backward([[rng.uniform(-1, 1) for _ in range(2)] for _ in range(4)])
    return model


@pytest.mark.parametrize("lr", [0.1, 0.37, 1e-3, 2.0, 1])
def test_step_is_exact(fw: ModuleType, lr: float) -> None:
    model = model_with_grads(fw, 1)
    before = [(flat(p.tolist()), flat(g.tolist())) for p, g in model.param()]
    opt = fw.SGD(model.param(), lr=lr)
    opt.step()
    lr = float(lr)
    for (p0, g0), (p1, g1) in zip(before, model.param()):
        assert [v.hex() for v in flat(p1.tolist())] == [(p - (lr * g)).hex() for p, g in zip(p0, g0)]
        assert flat(g1.tolist()) == g0, "step must not touch the gradients"


def test_two_steps_without_zero_grad(fw: ModuleType) -> None:
    model = model_with_grads(fw, 2)
    before = [(flat(p.tolist()), flat(g.tolist())) for p, g in model.param()]
    opt = fw.SGD(model.param(), lr=0.25)
    opt.step()
    opt.step()
    for (p0, g0), (p1, _) in zip(before, model.param()):
        assert [v.hex() for v in flat(p1.tolist())] == [((p - 0.25 * g) - 0.25 * g).hex() for p, g in zip(p0, g0)]


def test_lr_zero_changes_nothing(fw: ModuleType) -> None:
    model = model_with_grads(fw, 3)
    before = [[v.hex() for v in flat(p.tolist())] for p, _ in model.param()]
    opt = fw.SGD(model.param(), lr=0.0)
    opt.step()
    assert [[v.hex() for v in flat(p.tolist())] for p, _ in model.param()] == before


def test_step_updates_the_model_in_place(fw: ModuleType) -> None:
    """The optimizer steps the very tensors the model computes with."""
    model = model_with_grads(fw, 4)
    x = [[0.1, 0.2, 0.3]]
    out0 = model(x).tolist()
    opt = fw.SGD(model.param(), lr=0.5)
    opt.step()
    assert model(x).tolist() != out0
    sd = model.state_dict()
    assert [flat(v.tolist()) for v in sd.values()] == [flat(p.tolist()) for p, _ in model.param()]


def test_step_after_load_state_dict_still_reaches_the_model(fw: ModuleType) -> None:
    model = model_with_grads(fw, 5)
    opt = fw.SGD(model.param(), lr=0.5)
    other = model_with_grads(fw, 6)
    model.load_state_dict(other.state_dict())
    loaded = [flat(p.tolist()) for p, _ in model.param()]
    grads = [flat(g.tolist()) for _, g in model.param()]
    opt.step()
    for p1, p0, g in zip(model.param(), loaded, grads):
        assert [v.hex() for v in flat(p1[0].tolist())] == [(p - 0.5 * gg).hex() for p, gg in zip(p0, g)]


def test_zero_grad_then_step_is_a_no_op(fw: ModuleType) -> None:
    model = model_with_grads(fw, 7)
    opt = fw.SGD(model.param(), lr=0.3)
    opt.zero_grad()
    before = [[v.hex() for v in flat(p.tolist())] for p, _ in model.param()]
    opt.step()
    assert [[v.hex() for v in flat(p.tolist())] for p, _ in model.param()] == before


def test_lr_attribute(fw: ModuleType) -> None:
    model = model_with_grads(fw)
    assert fw.SGD(model.param(), lr=0.1).lr == 0.1


@pytest.mark.parametrize("lr", [-1.0, -1e-12, -1, math.nan, math.inf, -math.inf],
                         ids=["-1.0", "-1e-12", "-1int", "nan", "inf", "-inf"])
def test_bad_lr_value(fw: ModuleType, lr: float) -> None:
    model = model_with_grads(fw)
    with pytest.raises(ValueError):
        fw.SGD(model.param(), lr=lr)


@pytest.mark.parametrize("lr", ["0.1", None, [0.1], True], ids=["str", "none", "list", "bool"])
def test_bad_lr_type(fw: ModuleType, lr: object) -> None:
    model = model_with_grads(fw)
    with pytest.raises(TypeError):
        fw.SGD(model.param(), lr=lr)


def test_empty_param_list(fw: ModuleType) -> None:
    with pytest.raises(ValueError):
        fw.SGD([], lr=0.1)
    with pytest.raises(ValueError):
        fw.SGD(fw.ReLU().param(), lr=0.1)


def test_bad_param_list(fw: ModuleType) -> None:
    t = fw.tensor([[1.0, 2.0]])
    with pytest.raises(TypeError):
        fw.SGD(5, lr=0.1)
    with pytest.raises(TypeError):
        fw.SGD(t, lr=0.1)  # a single tensor, not an iterable of them
    with pytest.raises(TypeError):
        fw.SGD([[t]], lr=0.1)
    with pytest.raises(TypeError):
        fw.SGD([([[1.0, 2.0]], [[0.0, 0.0]])], lr=0.1)
    with pytest.raises(ValueError):
        fw.SGD([(t, fw.tensor([[1.0, 2.0, 3.0]]))], lr=0.1)


def test_lr_int_too_large_for_float(fw: ModuleType) -> None:
    with pytest.raises(ValueError):
        fw.SGD(model_with_grads(fw).param(), lr=10**400)
