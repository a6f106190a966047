"""``fw.gradcheck``: every member of the activation, loss and layer tables passes in
both backends; a wrong ``backward`` is caught and named; the module is left as found."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

import pyfw
from fwtest import hexes

# Inputs away from every kink of the members (0, ±1, Huber's delta).
X = [[0.31, -0.62, 0.47], [-0.23, 0.78, -0.55]]


def loss_target(name: str) -> Any:
    """A target of the kind the loss ``name`` takes, from pyfw's table."""
    cls = pyfw.LOSSES[name]
    if cls._targets == "classes":
        return [2, 0]
    if cls._target_probs:
        return [[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]]
    return [[0.9, 0.1, -0.8], [0.4, -0.9, 0.2]]


def loss_input(name: str) -> list:
    """Probabilities for the losses that need them, else ``X``."""
    return [[0.3, 0.6, 0.45], [0.2, 0.7, 0.35]] if pyfw.LOSSES[name]._input_probs else X


@pytest.mark.parametrize("name", list(pyfw.ACTIVATIONS))
def test_every_activation_passes(fw: ModuleType, name: str) -> None:
    assert fw.gradcheck(fw.ACTIVATIONS[name](), fw.tensor(X)) is True


@pytest.mark.parametrize("name", list(pyfw.LOSSES))
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_every_loss_passes(fw: ModuleType, name: str, reduction: str) -> None:
    loss = fw.LOSSES[name](reduction=reduction)
    assert fw.gradcheck(loss, fw.tensor(loss_input(name)), loss_target(name)) is True


def test_a_stack_of_layers_passes_and_is_left_as_found(fw: ModuleType) -> None:
    g = fw.Generator(3)
    m = fw.Sequential(fw.Linear(3, 5, generator=g), fw.Tanh(), fw.Linear(5, 4, generator=g), fw.Sigmoid(),
                      fw.Dropout(0.5), fw.Linear(4, 2, generator=g))
    m.eval()
    for p in m.parameters():
        p.grad.copy_([[0.25] * p.shape[1]] * p.shape[0] if len(p.shape) == 2 else [0.25] * p.shape[0])
    params = hexes([p.tolist() for p in m.parameters()])
    grads = hexes([p.grad.tolist() for p in m.parameters()])
    x = fw.tensor(X)
    assert fw.gradcheck(m, x) is True
    assert hexes([p.tolist() for p in m.parameters()]) == params
    assert hexes([p.grad.tolist() for p in m.parameters()]) == grads
    assert x.tolist() == X


def test_nested_lists_are_inputs_too(fw: ModuleType) -> None:
    assert fw.gradcheck(fw.Linear(3, 2, generator=fw.Generator(0)), X) is True


class Doubled(pyfw.Module):
    """A user's module whose backward forgets the factor 2 on the input gradient."""

    def __init__(self, fw: ModuleType, wrong: bool) -> None:
        super().__init__()
        self.fw = fw
        self.wrong = wrong

    def forward(self, x: Any) -> Any:
        return self.fw.tensor([[2.0 * v for v in row] for row in x.tolist()])

    def backward(self, g: Any) -> Any:
        k = 1.0 if self.wrong else 2.0
        return self.fw.tensor([[k * v for v in row] for row in g.tolist()])


def test_a_python_module_passes_and_a_wrong_backward_is_named() -> None:
    assert pyfw.gradcheck(Doubled(pyfw, False), X) is True
    with pytest.raises(pyfw.GradcheckError, match=r"Doubled: input 0 at index \[\d, \d\]") as e:
        pyfw.gradcheck(Doubled(pyfw, True), X)
    assert e.value.where == "input 0"
    assert abs(e.value.numeric - 2.0 * e.value.analytic) < 1e-6


def test_a_wrong_parameter_gradient_is_named(fw: ModuleType) -> None:
    class Lazy(fw.Linear):
        def backward(self, g: Any) -> Any:
            dx = super().backward(g)
            self.bias.grad.zero_()           # forgets the bias gradient
            return dx

    with pytest.raises(fw.GradcheckError, match=r"parameter 1") as e:
        fw.gradcheck(Lazy(3, 2, generator=fw.Generator(0)), X)
    assert e.value.analytic == 0.0 and e.value.numeric != 0.0


def test_dropout_in_training_mode_is_refused(fw: ModuleType) -> None:
    m = fw.Sequential(fw.Linear(3, 2, generator=fw.Generator(0)), fw.Dropout(0.3))
    state = fw.default_generator.get_state() if hasattr(fw, "default_generator") else None
    with pytest.raises(ValueError, match=r"Dropout\(p=0.3\) in training mode.*eval\(\)"):
        fw.gradcheck(m, X)
    if state is not None:
        assert fw.default_generator.get_state() == state


@pytest.mark.parametrize("kw", [{"eps": 0.0}, {"eps": -1e-6}, {"atol": float("nan")}, {"rtol": "x"}])
def test_bad_tolerances_are_refused(fw: ModuleType, kw: dict) -> None:
    with pytest.raises(ValueError, match="gradcheck: "):
        fw.gradcheck(fw.Tanh(), X, **kw)


def test_no_input_is_refused(fw: ModuleType) -> None:
    with pytest.raises(TypeError, match="gradcheck: give the inputs of Tanh"):
        fw.gradcheck(fw.Tanh())


def test_buffers_are_restored(fw: ModuleType) -> None:
    """A module whose forward updates a buffer (as running statistics do) gets its buffer back."""
    class Counting(fw.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = fw.Linear(3, 2, generator=fw.Generator(0))
            self.register_buffer("seen", fw.tensor([0.0]))

        def forward(self, x: Any) -> Any:
            self.seen.copy_([self.seen.tolist()[0] + 1.0])
            return self.fc(x)

        def backward(self, g: Any) -> Any:
            return self.fc.backward(g)

    m = Counting()
    assert fw.gradcheck(m, X) is True
    assert m.seen.tolist() == [0.0]


def test_it_runs_inside_no_grad(fw: ModuleType) -> None:
    m = fw.Sequential(fw.Linear(3, 4, generator=fw.Generator(1)), fw.Tanh())
    with fw.no_grad():
        assert fw.gradcheck(m, X) is True
        assert not fw.is_grad_enabled()
