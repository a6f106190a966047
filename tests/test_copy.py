"""``copy.deepcopy`` and ``pickle`` round-trip every kind of object bit for bit, in both backends."""

from __future__ import annotations

import copy
import pickle
from types import ModuleType
from typing import Any, Callable

import pytest
from fwtest import state_hex, th

ROUND_TRIPS = {"deepcopy": copy.deepcopy, "pickle": lambda o: pickle.loads(pickle.dumps(o))}


@pytest.fixture(params=list(ROUND_TRIPS))
def again(request: pytest.FixtureRequest) -> Callable[[Any], Any]:
    return ROUND_TRIPS[request.param]


def test_tensors_and_generators(fw: ModuleType, again: Callable) -> None:
    t = fw.tensor([[1.5, -0.0], [1e-300, 3.0]])
    t.grad = fw.tensor([[0.25, 0.5], [1.0, 2.0]])
    u = again(t)
    assert type(u) is type(t) and th(u) == th(t) and th(u.grad) == th(t.grad) and u is not t
    g = fw.Generator(7)
    g.random()
    h = again(g)
    assert [g.random() for _ in range(5)] == [h.random() for _ in range(5)]


def test_models_losses_and_optimizers(fw: ModuleType, again: Callable) -> None:
    g = fw.Generator(1)
    model = fw.Sequential(fw.Linear(2, 4, generator=g), fw.LeakyReLU(0.2), fw.Dropout(0.25, generator=g),
                          fw.Sequential(fw.Linear(4, 2, generator=g)), fw.LogSoftmax(dim=1))
    opt = fw.Adam(model.parameters(), lr=0.01, amsgrad=True)
    loss = fw.NLLLoss(reduction="sum")
    x, y = fw.tensor([[0.5, -1.0], [2.0, 0.25]]), [1, 0]
    for _ in range(2):
        opt.zero_grad()
        loss(model(x), y)
        model.backward(loss.backward())
        opt.step()
    model2, opt2, loss2, g2 = again((model, opt, loss, g))
    assert type(model2) is type(model) and repr(model2) == repr(model) and model2.training == model.training
    assert state_hex(model2) == state_hex(model)
    for (_, a), (_, b) in zip(model.param(), model2.param()):
        assert th(a) == th(b)
    assert repr(loss2) == repr(loss) and loss2.reduction == "sum"
    for m, o, lo in ((model, opt, loss), (model2, opt2, loss2)):
        o.zero_grad()
        lo(m(x), y)
        m.backward(lo.backward())
        o.step()
    assert state_hex(model2) == state_hex(model), "the copies train on identically"
    assert [p for p in model2.parameters()][0] is opt2.param_groups[0]["params"][0], "still linked"
