"""Modules as torch users write them: assigning a module or a ``Parameter`` to an attribute
registers it, ``register_buffer`` registers saved state, and the tree methods, ``ModuleList``,
``state_dict``, copies, every optimizer, ``fit``, ``gradcheck`` and a native ``Sequential`` all
see the registered tree, in both backends."""

from __future__ import annotations

import copy
import pickle
from types import ModuleType
from typing import Any

import pytest

import pyfw
from fwtest import hexes, state_hex


def _residual(fw: ModuleType) -> type:
    """``y = x + fc2(tanh(fc1(x))) * scale``, with a hand-written backward; a module-level class
    per backend (so that pickle finds it), written with ``tolist()``/``tensor()`` only."""
    name = f"Residual_{fw.__name__}"
    if name in globals():
        return globals()[name]

    class Residual(fw.Module):
        def __init__(self, n: int, hidden: int, generator: Any = None) -> None:
            super().__init__()
            self.fc1 = fw.Linear(n, hidden, generator=generator)
            self.act = fw.Tanh()
            self.fc2 = fw.Linear(hidden, n, generator=generator)
            self.scale = fw.Parameter(fw.tensor([0.5] * n))
            self.register_buffer("calls", fw.tensor([0.0]))

        def forward(self, x: Any) -> Any:
            self.h = self.fc2(self.act(self.fc1(x))).tolist()
            s = self.scale.tolist()
            return fw.tensor([[a + h * c for a, h, c in zip(xr, hr, s)] for xr, hr in zip(x.tolist(), self.h)])

        def backward(self, g: Any) -> Any:
            g, s = g.tolist(), self.scale.tolist()
            gs = [0.0] * len(s)
            for gr, hr in zip(g, self.h):
                gs = [acc + a * h for acc, a, h in zip(gs, gr, hr)]
            self.scale.grad.add_(fw.tensor(gs))
            gh = fw.tensor([[a * c for a, c in zip(gr, s)] for gr in g])
            gx = self.fc1.backward(self.act.backward(self.fc2.backward(gh))).tolist()
            return fw.tensor([[a + b for a, b in zip(ar, br)] for ar, br in zip(g, gx)])

    Residual.__name__ = Residual.__qualname__ = name
    Residual.__module__ = __name__
    globals()[name] = Residual
    return Residual


def _block(fw: ModuleType, seed: int = 0) -> Any:
    return _residual(fw)(2, 3, fw.Generator(seed))


def test_assignment_registers_children_parameters_and_buffers(fw: ModuleType) -> None:
    b = _block(fw)
    assert [n for n, _ in b.named_children()] == ["fc1", "act", "fc2"]
    assert b.children() == [b.fc1, b.act, b.fc2]
    assert [n for n, _ in b.named_modules()] == ["", "fc1", "act", "fc2"]
    assert list(b.modules()) == [b, b.fc1, b.act, b.fc2]
    assert [n for n, _ in b.named_parameters()] == ["scale", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert [n for n, _ in b.named_parameters("m")][0] == "m.scale"
    assert [p is q for p, q in zip(b.parameters(), [b.scale, b.fc1.weight])] == [True, True]
    assert [(p is q, g is q.grad) for (p, g), q in zip(b.param(), b.parameters())] == [(True, True)] * 5
    assert [n for n, _ in b.named_buffers()] == ["calls"] and list(b.buffers())[0] is b.calls
    assert list(b.state_dict()) == ["scale", "calls", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert isinstance(b.scale, fw.Parameter) and not isinstance(b.calls, fw.Parameter)
    assert type(b.scale) is fw.Tensor and hexes(b.scale.grad.tolist()) == hexes([0.0, 0.0])


def test_reassigning_keeps_the_order_and_none_or_del_removes(fw: ModuleType) -> None:
    b = _block(fw)
    b.fc1 = fw.Linear(2, 3)  # replaced in place
    assert [n for n, _ in b.named_children()] == ["fc1", "act", "fc2"]
    b.act = None
    assert b.act is None and [n for n, _ in b.named_children()] == ["fc1", "fc2"]
    b.act = fw.ReLU()  # back in its place, as torch keeps it
    assert [n for n, _ in b.named_children()] == ["fc1", "act", "fc2"]
    del b.fc2
    assert [n for n, _ in b.named_children()] == ["fc1", "act"] and not hasattr(b, "fc2")
    assert "fc2.weight" not in b.state_dict()
    with pytest.raises(TypeError, match="'fc1', a registered child module"):
        b.fc1 = 3
    with pytest.raises(TypeError, match="'scale', a registered parameter"):
        b.scale = fw.tensor([1.0, 2.0])
    b.calls = fw.tensor([5.0])  # a buffer takes a new tensor
    assert b.state_dict()["calls"].tolist() == [5.0]
    with pytest.raises(KeyError):
        b.register_buffer("fc1", fw.tensor([1.0]))
    with pytest.raises(KeyError):
        b.register_buffer("a.b", fw.tensor([1.0]))


def test_a_back_reference_is_not_a_child(fw: ModuleType) -> None:
    b = _block(fw)
    b.extra = fw.ModuleList()
    b.extra.owner = b
    b.me = b
    assert [n for n, _ in b.named_modules()] == ["", "fc1", "act", "fc2", "extra"]
    assert list(b.extra.named_children()) == []


def test_load_state_dict_checks_everything_first(fw: ModuleType) -> None:
    b, other = _block(fw, 0), _block(fw, 1)
    before = state_hex(b)
    bad = other.state_dict()
    bad["fc2.bias"] = fw.tensor([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="fc2.bias"):
        b.load_state_dict(bad)
    assert state_hex(b) == before
    other.calls = fw.tensor([7.0])
    b.load_state_dict(other.state_dict())
    assert state_hex(b) == state_hex(other)


def test_train_eval_zero_grad_apply_and_repr(fw: ModuleType) -> None:
    b = _block(fw)
    b.eval()
    assert [m.training for m in b.modules()] == [False] * 4
    b.train()
    assert all(m.training for m in b.modules())
    for p, g in b.param():
        g.copy_(p)
    b.zero_grad()
    assert all(g.tolist() == p.clone().zero_().tolist() for p, g in b.param())
    seen: list = []
    assert b.apply(lambda m: seen.append(type(m).__name__)) is b
    assert seen == ["Linear", "Tanh", "Linear", f"Residual_{fw.__name__}"]
    assert repr(b) == (f"Residual_{fw.__name__}(\n"
                       "  (fc1): Linear(in_features=2, out_features=3, bias=True)\n"
                       "  (act): Tanh()\n"
                       "  (fc2): Linear(in_features=3, out_features=2, bias=True)\n)")
    outer = fw.Sequential(fw.Linear(2, 2), b)
    assert list(outer.state_dict())[:4] == ["0.weight", "0.bias", "1.scale", "1.calls"]


def test_module_list(fw: ModuleType) -> None:
    ml = fw.ModuleList([fw.Linear(1, 2), fw.ReLU()])
    ml.append(fw.Linear(2, 1)).extend([fw.Tanh()])
    ml.insert(1, fw.Sigmoid())
    assert len(ml) == 5 and [type(m).__name__ for m in ml] == ["Linear", "Sigmoid", "ReLU", "Linear", "Tanh"]
    assert ml[-1] is list(ml)[4] and len(ml[1:3]) == 2 and isinstance(ml[1:3], fw.ModuleList)
    assert list(ml.state_dict()) == ["0.weight", "0.bias", "3.weight", "3.bias"]
    assert [n for n, _ in ml.named_children()] == ["0", "1", "2", "3", "4"]
    with pytest.raises(TypeError, match="Module"):
        ml.append(3)

    class Holder(fw.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = fw.ModuleList([fw.Linear(2, 2) for _ in range(2)])
    assert list(Holder().state_dict()) == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"]
    twin = copy.deepcopy(ml)
    assert state_hex(twin) == state_hex(ml) and twin[0] is not ml[0]


def test_a_module_that_overrides_param_keeps_working(fw: ModuleType) -> None:
    class Old(fw.Module):  # the seed's contract: tensors held by hand, param() listed by hand
        def __init__(self) -> None:
            super().__init__()
            self.w = fw.tensor([[1.0, 2.0]])
            self.gw = fw.tensor([[0.0, 0.0]])
            self.inner = fw.Linear(2, 1)

        def param(self) -> list:
            return [(self.w, self.gw)] + self.inner.param()

    m = Old()
    assert [n for n, _, _ in m.named_param()] == ["0", "inner.weight", "inner.bias"]
    assert m.param()[0][0] is m.w and len(list(m.parameters())) == 3
    fw.SGD(m.param(), lr=0.1)


@pytest.mark.parametrize("name", list(pyfw.OPTIMIZERS))
def test_a_custom_module_trains_the_same_in_both_backends(name: str) -> None:
    """Every optimizer, through fit, on a native Sequential holding the custom module (which
    runs in Python), gives the same bits in both backends."""
    from conftest import load_backend
    results = []
    for fw in (load_backend("py"), load_backend("rs")):
        g = fw.Generator(3)
        model = fw.Sequential(fw.Linear(2, 2, generator=g), _residual(fw)(2, 4, g), fw.Linear(2, 2, generator=g))
        x, labels = fw.data.disk(20, generator=fw.Generator(4))
        opt = fw.OPTIMIZERS[name](model.parameters(), lr=0.05)
        losses = fw.fit(model, fw.CrossEntropyLoss(), opt, x, labels, epochs=2, batch_size=5,
                        generator=fw.Generator(5))
        before = state_hex(model)
        assert before != state_hex(fw.Sequential(fw.Linear(2, 2, generator=fw.Generator(3))))
        results.append((hexes(losses), before))
    assert results[0] == results[1]


def test_custom_module_gradcheck_copy_and_pickle(fw: ModuleType) -> None:
    b = _block(fw)
    x = fw.tensor([[0.3, -0.2], [0.1, 0.7]])
    assert fw.gradcheck(b, x)
    for twin in (copy.deepcopy(b), pickle.loads(pickle.dumps(b))):
        assert state_hex(twin) == state_hex(b) and twin.fc1 is not b.fc1
        assert [n for n, _ in twin.named_parameters()] == [n for n, _ in b.named_parameters()]
        assert hexes(twin(x).tolist()) == hexes(b(x).tolist())
    model = fw.Sequential(b, fw.ReLU())
    twin = pickle.loads(pickle.dumps(model))
    assert state_hex(twin) == state_hex(model)


def test_a_python_subclass_of_a_native_module_keeps_its_native_speed_path() -> None:
    """pyfw_rs: a native Sequential of native layers keeps running natively (its state dict keys too)."""
    from conftest import load_backend
    rs = load_backend("rs")
    s = rs.Sequential(rs.Linear(2, 3), rs.ReLU(), rs.Linear(3, 2))
    assert list(s.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert rs._native  # the epoch runs natively: train_epoch's native path answers
    x, labels = rs.data.disk(10, generator=rs.Generator(0))
    total = rs._train_epoch(s, rs.CrossEntropyLoss(), rs.SGD(s.parameters(), lr=0.1), x, labels, 5, None, False)
    assert total is not None
