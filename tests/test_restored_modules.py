"""Copies and unpickled modules: a copy holds no forward state, an unpickled module is
checked as ``load_state_dict`` checks, and sizes or arguments that cannot work are
refused with messages that name the module, the same way in both backends."""

from __future__ import annotations

import copy
import re
import pickle
import time
from types import ModuleType
from typing import Any, Callable

import pytest

import pyfw

COPIES = {"deepcopy": copy.deepcopy, "copy": copy.copy, "pickle": lambda o: pickle.loads(pickle.dumps(o))}


def _forwarded(fw: ModuleType) -> list:
    """(id, module, run backward) of one module of each kind, each after a forward."""
    x = fw.tensor([[0.5, -1.0], [2.0, 0.25]])
    lin = fw.Linear(2, 3, generator=fw.Generator(0))
    lin(x)
    drop = fw.Dropout(0.5, generator=fw.Generator(1))
    drop(x)
    relu = fw.ReLU()
    relu(x)
    seq = fw.Sequential(fw.Linear(2, 2, generator=fw.Generator(2)), fw.Tanh())
    seq(x)
    loss = fw.MSELoss()
    loss(x, fw.tensor([[0.0, 0.0], [1.0, 1.0]]))
    g2, g3 = fw.tensor([[1.0, 1.0], [1.0, 1.0]]), fw.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    return [("Linear", lin, lambda m: m.backward(g3)), ("Dropout", drop, lambda m: m.backward(g2)),
            ("ReLU", relu, lambda m: m.backward(g2)), ("Sequential", seq, lambda m: m.backward(g2)),
            ("MSELoss", loss, lambda m: m.backward())]


@pytest.mark.parametrize("how", list(COPIES))
@pytest.mark.parametrize("kind", [c[0] for c in _forwarded(pyfw)])
def test_a_copy_between_forward_and_backward_holds_no_forward_state(fw: ModuleType, how: str, kind: str) -> None:
    """As a fresh module: the copy's backward says it had no forward; the original's still works."""
    if how == "copy" and kind == "Sequential":
        pytest.skip("a shallow copy shares the children, which keep their forward state")
    _, module, back = next(c for c in _forwarded(fw) if c[0] == kind)
    twin = COPIES[how](module)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        back(twin)
    back(module)


def _tampered_linear(fw: ModuleType, field: str, value: Callable[[ModuleType], Any]) -> Callable[[], Any]:
    """A function that unpickles a Linear(2 -> 3) whose ``field`` was replaced by ``value(fw)``."""
    lin = fw.Linear(2, 3)
    if fw is pyfw:
        lin.__dict__[field] = value(fw)
        data = pickle.dumps(lin)
        return lambda: pickle.loads(data)
    func, args = lin.__reduce_ex__(4)[:2]  # pyfw_rs: the tensors of the reduce tuple
    names = ["weight", "bias", "weight_grad", "bias_grad"]
    if field not in names:
        pytest.skip("pyfw_rs pickles no such attribute")
    args = list(args)
    args[names.index(field)] = value(fw)
    data = pickle.dumps((func, tuple(args)))
    return lambda: (lambda f, a: f(*a))(*pickle.loads(data))


TAMPERED = [
    ("weight-1x3", "weight", lambda fw: fw.tensor([[1.0, 2.0, 3.0]]), ValueError),
    ("weight-transposed", "weight", lambda fw: fw.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), ValueError),
    ("weight-1d", "weight", lambda fw: fw.tensor([1.0, 2.0]), ValueError),
    ("bias-2", "bias", lambda fw: fw.tensor([1.0, 2.0]), ValueError),
    ("bias-2d", "bias", lambda fw: fw.tensor([[1.0, 2.0, 3.0]]), ValueError),
    ("weight-grad-shape", "weight_grad", lambda fw: fw.tensor([[1.0, 2.0, 3.0]]), ValueError),
    ("bias-grad-shape", "bias_grad", lambda fw: fw.tensor([[1.0], [2.0], [3.0]]), ValueError),
    ("weight-list", "weight", lambda fw: [[1.0, 2.0]] * 3, TypeError),
    ("in-features-0", "in_features", lambda fw: 0, ValueError),
    ("out-features-str", "out_features", lambda fw: "3", TypeError),
    ("training-int", "training", lambda fw: 1, TypeError),
]


@pytest.mark.parametrize("field, value, exc", [c[1:] for c in TAMPERED], ids=[c[0] for c in TAMPERED])
def test_a_tampered_linear_pickle_is_refused(fw: ModuleType, field: str, value: Callable, exc: type) -> None:
    load = _tampered_linear(fw, field, value)
    with pytest.raises((TypeError, ValueError)) as e:
        load()
    if fw is pyfw:
        assert e.type is exc and "Linear" in str(e.value)


def test_a_tampered_pyfw_tensor_inside_a_linear_is_refused() -> None:
    """The tensor says (3, 2) but holds one row: the storage is checked, not only the shape."""
    lin = pyfw.Linear(2, 3)
    lin.weight._rows = [[1.0, 2.0]]
    with pytest.raises(ValueError, match=r"Linear\(2 -> 3\): weight has shape \(3, 2\)"):
        pickle.loads(pickle.dumps(lin))


@pytest.mark.parametrize("field, value", [("_p", 1.5), ("_p", "x"), ("generator", 3), ("_modules", [3])])
def test_other_tampered_pyfw_modules_are_refused(field: str, value: Any) -> None:
    m = pyfw.Sequential(pyfw.Dropout(0.5)) if field == "_modules" else pyfw.Dropout(0.5)
    m.__dict__[field] = value
    with pytest.raises((TypeError, ValueError), match="Dropout|Sequential"):
        pickle.loads(pickle.dumps(m))


def test_a_tampered_loss_pickle_is_refused() -> None:
    loss = pyfw.HuberLoss(2.0)
    loss.__dict__["delta"] = float("nan")
    with pytest.raises(ValueError, match="HuberLoss"):
        pickle.loads(pickle.dumps(loss))
    loss = pyfw.NLLLoss()
    loss.__dict__["reduction"] = "none"
    with pytest.raises(ValueError, match="NLLLoss: reduction"):
        pickle.loads(pickle.dumps(loss))


def test_a_linear_too_large_for_memory_is_refused_at_once(fw: ModuleType) -> None:
    """Linear(2, 10**12): a MemoryError naming the layer and the count, before any weight is drawn."""
    start = time.monotonic()
    with pytest.raises(MemoryError, match=r"Linear\(2 -> 1000000000000\): cannot allocate 2000000000000 elements"):
        fw.Linear(2, 10**12)
    assert time.monotonic() - start < 5.0


@pytest.mark.parametrize("name", list(pyfw.LOSSES))
def test_a_wrong_loss_argument_names_the_member(fw: ModuleType, name: str) -> None:
    with pytest.raises(TypeError, match=f"^{name}.__init__\\(\\) got an unexpected keyword argument 'nope'"):
        getattr(fw, name)(nope=1)
    with pytest.raises(TypeError, match=f"^{name}.__init__\\(\\) takes"):
        getattr(fw, name)(1.0, "mean", 3)


MIXED = [
    ("Sequential", lambda mine, other: mine.Sequential(other.Linear(2, 3)), r"item 0 is a {other} Linear, not a {mine} Module"),
    ("append", lambda mine, other: mine.Sequential().append(other.ReLU()),
     r"Sequential.append: expected a {mine} Module, got {other} ReLU"),
    ("parameters", lambda mine, other: mine.SGD(other.Linear(2, 3).parameters()),
     r"SGD: params\[0\] is neither a {mine} Tensor nor a \(parameter, gradient\) pair, got {other} Tensor"),
    ("pairs", lambda mine, other: mine.Adam(other.Linear(2, 3).param()),
     r"Adam: params\[0\] must hold two {mine} Tensors, got {other} Tensor and {other} Tensor"),
]


@pytest.mark.parametrize("make, message", [c[1:] for c in MIXED], ids=[c[0] for c in MIXED])
def test_the_other_backends_objects_are_named_as_such(fw: ModuleType, make: Callable, message: str) -> None:
    from conftest import load_backend
    other = load_backend("rs") if fw is pyfw else pyfw
    mine_name, other_name = fw.__name__, other.__name__
    with pytest.raises(TypeError) as e:
        make(fw, other)
    assert re.search(message.format(mine=mine_name, other=other_name), str(e.value)), str(e.value)
    assert str(e.value).endswith(f"(the two backends do not mix: build everything with {mine_name})")
