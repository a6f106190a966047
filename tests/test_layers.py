"""The layer family beyond Linear: Dropout, parameters()/named_parameters() with
``.grad``, and Sequential slicing and append, on both backends."""

from __future__ import annotations

import math
import random
from types import ModuleType

import pytest
from conftest import load_backend
from fwtest import th

import pyfw


def rand_rows(rng: random.Random, rows: int, cols: int) -> list:
    return [[rng.uniform(-2.0, 2.0) for _ in range(cols)] for _ in range(rows)]


def test_both_backends_list_the_same_layers() -> None:
    rs = load_backend("rs")
    assert list(pyfw.LAYERS) == list(rs.LAYERS) == ["Linear", "Dropout", "Sequential"]
    for name in pyfw.LAYERS:
        assert getattr(pyfw, name) is pyfw.LAYERS[name] and getattr(rs, name) is rs.LAYERS[name]
        assert name in pyfw.__all__ and name in rs.__all__


# ---- Dropout -------------------------------------------------------------------------

def test_dropout_follows_the_documented_draws(fw: ModuleType) -> None:
    rng = random.Random(0)
    x = rand_rows(rng, 6, 7)
    p = 0.3
    d = fw.Dropout(p, generator=fw.Generator(4))
    y = d(x).tolist()
    ref = fw.Generator(4)
    scale = 1.0 / (1.0 - p)
    expect = [[v * (0.0 if ref.random() < p else scale) for v in r] for r in x]
    assert th(fw.tensor(y)) == th(fw.tensor(expect))
    assert d.generator.random() == ref.random(), "one draw per element"
    # The gradient is the same mask times g.
    g = rand_rows(rng, 6, 7)
    dx = d.backward(g).tolist()
    for yr, xr, gr, dr in zip(y, x, g, dx):
        for yv, xv, gv, dv in zip(yr, xr, gr, dr):
            m = yv / xv
            assert dv == gv * (0.0 if m == 0.0 else scale)


def test_dropout_is_bit_identical_and_drops_about_p() -> None:
    rs = load_backend("rs")
    x = rand_rows(random.Random(1), 200, 50)
    out = []
    for fw in (pyfw, rs):
        d = fw.Dropout(0.25, generator=fw.Generator(9))
        y = d(x)
        out.append((th(y), th(d.backward(x))))
    assert out[0] == out[1]
    y = pyfw.Dropout(0.25, generator=pyfw.Generator(9))(x).tolist()
    frac = sum(v == 0.0 for r in y for v in r) / 10000
    assert abs(frac - 0.25) < 0.02


def test_dropout_eval_and_p_zero_are_the_identity_and_draw_nothing(fw: ModuleType) -> None:
    x = rand_rows(random.Random(2), 3, 4)
    for d in (fw.Dropout(0.5, generator=fw.Generator(1)).eval(), fw.Dropout(0.0, generator=fw.Generator(1))):
        assert d(x).tolist() == x
        assert d.backward(x).tolist() == x
        assert d.generator.random() == fw.Generator(1).random()


def test_dropout_default_generator(fw: ModuleType) -> None:
    x = rand_rows(random.Random(3), 4, 4)
    fw.manual_seed(5)
    a = fw.Dropout()(x).tolist()
    fw.manual_seed(5)
    b = fw.Dropout()(x).tolist()
    assert a == b and any(v == 0.0 for r in a for v in r)
    fw.manual_seed(0)


def test_dropout_in_a_training_run_is_bit_identical_across_backends() -> None:
    rs = load_backend("rs")
    out = []
    for fw in (pyfw, rs):
        g = fw.Generator(0)
        x, labels = fw.data.disk(60, generator=g)
        model = fw.Sequential(fw.Linear(2, 8, generator=g), fw.SiLU(), fw.Dropout(0.2, generator=g),
                              fw.Linear(8, 2, generator=g), fw.LogSoftmax())
        losses = fw.fit(model, fw.MSELoss(), fw.SGD(model.param(), lr=0.1), x,
                        fw.data.one_hot(labels, 2), 3, 10, g)
        model.eval()
        out.append(([v.hex() for v in losses], th(model(x))))
    assert out[0] == out[1]


@pytest.mark.parametrize("kw, exc", [
    ({"p": 1.0}, ValueError), ({"p": -0.1}, ValueError), ({"p": math.nan}, ValueError),
    ({"p": "0.5"}, TypeError), ({"p": None}, TypeError), ({"p": True}, TypeError),
    ({"generator": 3}, TypeError),
])
def test_dropout_bad_arguments(kw: dict, exc: type) -> None:
    rs = load_backend("rs")
    msgs = []
    for fw in (pyfw, rs):
        with pytest.raises(exc) as e:
            fw.Dropout(**kw)
        msgs.append(str(e.value).replace("pyfw_rs", "pyfw"))
    assert msgs[0] == msgs[1]


def test_dropout_bad_use(fw: ModuleType) -> None:
    d = fw.Dropout()
    with pytest.raises(RuntimeError, match="Dropout: backward called before forward"):
        d.backward([1.0])
    d([[1.0, 2.0]])
    with pytest.raises(ValueError, match=r"Dropout: gradient has shape \(2,\), the output had shape \(1, 2\)"):
        d.backward([1.0, 2.0])
    assert repr(fw.Dropout(0.25)) == "Dropout(p=0.25)"


# ---- parameters() and .grad ------------------------------------------------------------

def test_parameters_carry_their_gradients(fw: ModuleType) -> None:
    model = fw.Sequential(fw.Linear(2, 3), fw.ReLU(), fw.Sequential(fw.Linear(3, 2)))
    params = list(model.parameters())
    pairs = model.param()
    assert len(params) == len(pairs) == 4
    for p, (q, g) in zip(params, pairs):
        assert p is q
        assert p.grad is g
    lin = model[0]
    assert lin.weight.grad is lin.weight_grad
    names = [n for n, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "2.0.weight", "2.0.bias"] == list(model.state_dict())
    assert [n for n, _ in model.named_parameters("net")][0] == "net.0.weight"  # as torch
    # The .grad tensor is live: backward accumulates into it.
    model([[1.0, -1.0]])
    model.backward([[1.0, 1.0]])
    assert th(list(model.parameters())[1].grad) == th(model.param()[1][1])
    assert any(v != 0.0 for v in list(model.parameters())[1].grad.tolist())


def test_grad_is_the_same_object_as_the_pair(fw: ModuleType) -> None:
    lin = fw.Linear(2, 2)
    (w, gw), (b, gb) = lin.param()
    gw.add_([[1.0, 2.0], [3.0, 4.0]])
    assert w.grad.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    b.grad.add_([5.0, 6.0])
    assert gb.tolist() == [5.0, 6.0]


def test_grad_setter_checks(fw: ModuleType) -> None:
    t = fw.tensor([1.0, 2.0])
    assert t.grad is None
    t.grad = fw.tensor([0.0, 0.0])
    assert t.grad.tolist() == [0.0, 0.0]
    t.grad = None
    with pytest.raises(TypeError):
        t.grad = [0.0, 0.0]
    with pytest.raises(ValueError):
        t.grad = fw.tensor([0.0])


# ---- Sequential ------------------------------------------------------------------------

def test_sequential_slicing_and_append(fw: ModuleType) -> None:
    g = fw.Generator(0)
    model = fw.Sequential(fw.Linear(2, 4, generator=g), fw.Tanh(), fw.Linear(4, 3, generator=g), fw.Softmax())
    head = model[0:2]
    assert type(head) is fw.Sequential and len(head) == 2
    assert head[0] is model[0] and head[1] is model[1]
    x = [[0.5, -0.25]]
    assert th(head(x)) == th(model[1](model[0](x)))
    assert type(model[::2]) is fw.Sequential and len(model[::2]) == 2
    assert model[-1] is list(model)[-1]
    m = fw.Sequential(fw.Linear(2, 4, generator=fw.Generator(0)))
    assert m.append(fw.Tanh()) is m
    m.append(fw.Linear(4, 3, generator=fw.Generator(1)))
    assert len(m) == 3
    assert m(x).shape == (1, 3)
    assert [n for n, _ in m.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    with pytest.raises(TypeError, match=f"Sequential.append: expected a {fw.__name__} Module, got int"):
        m.append(3)
    with pytest.raises(TypeError, match="Sequential indices must be integers or slices, not str"):
        m["0"]


def test_appended_modules_run_bit_identically() -> None:
    rs = load_backend("rs")
    out = []
    for fw in (pyfw, rs):
        g = fw.Generator(2)
        m = fw.Sequential(fw.Linear(3, 5, generator=g))
        m.append(fw.ELU()).append(fw.Linear(5, 2, generator=g)).append(fw.LogSoftmax(dim=1))
        y = m([[0.1, 0.2, 0.3], [-1.0, 0.0, 2.0]])
        out.append((th(y), th(m.backward([[1.0, 0.0], [0.0, 1.0]]))))
    assert out[0] == out[1]


def test_a_module_used_twice_is_refused_not_silently_wrong() -> None:
    """A module keeps one input for backward: a second use in one Sequential would give
    wrong gradients, so both backends refuse it, with the same message."""
    rs = load_backend("rs")
    for make in (lambda fw, lin: fw.Sequential(lin, fw.Tanh(), lin),
                 lambda fw, lin: fw.Sequential(fw.Sequential(lin), fw.ReLU(), fw.Sequential(fw.Tanh(), lin)),
                 lambda fw, lin: fw.Sequential(lin).append(fw.Tanh()).append(lin)):
        msgs = []
        for fw in (pyfw, rs):
            with pytest.raises(ValueError) as e:
                make(fw, fw.Linear(2, 2))
            msgs.append(str(e.value))
        assert msgs[0] == msgs[1] and "wrong gradients" in msgs[0]
    for fw in (pyfw, rs):
        act = fw.ReLU()
        with pytest.raises(ValueError, match="item 2 is item 0 again"):
            fw.Sequential(act, fw.Linear(2, 2), act)


def test_parameters_of_a_module_held_twice_by_a_custom_module_appear_once(fw: ModuleType) -> None:
    lin = fw.Linear(2, 2)

    class Tied(fw.Module):
        def named_children(self) -> list:
            return [("a", lin), ("b", lin)]

    assert len(list(Tied().parameters())) == 2
    assert [n for n, _ in Tied().named_parameters()] == ["a.weight", "a.bias"]


def test_a_sequential_inside_itself_or_nested_too_deep_is_refused(fw: ModuleType) -> None:
    s = fw.Sequential(fw.ReLU())
    with pytest.raises(ValueError, match="the Sequential itself"):
        s.append(s)
    assert len(s) == 1
    deep = fw.Sequential(fw.Tanh())
    with pytest.raises(RecursionError):
        for _ in range(3000):
            deep = fw.Sequential(deep)
    ok = fw.Sequential(fw.Tanh())
    for _ in range(200):
        ok = fw.Sequential(ok)
    assert ok([[0.5]]).tolist() == [[math.tanh(0.5)]]


def test_forward_patched_on_an_instance_is_honoured(fw: ModuleType) -> None:
    class Mine(fw.Tanh):
        pass
    m = Mine()
    m.forward = lambda x: fw.tensor([[7.0]])
    assert m([[1.0]]).tolist() == [[7.0]]
    assert fw.Sequential(m)([[1.0]]).tolist() == [[7.0]]


def test_dropout_p_can_be_set_and_is_checked() -> None:
    rs = load_backend("rs")
    for fw in (pyfw, rs):
        d = fw.Dropout(0.5)
        d.p = 0.0
        assert d.p == 0.0 and d([[1.0, 2.0]]).tolist() == [[1.0, 2.0]]
    msgs = [outcome_msg(lambda: setattr(fw.Dropout(), "p", 1.0)) for fw in (pyfw, rs)]
    assert msgs[0] == msgs[1] and msgs[0][0] is ValueError


def test_a_dropout_subclass_passes_p_to_super() -> None:
    rs = load_backend("rs")
    for fw in (pyfw, rs):
        class D(fw.Dropout):
            def __init__(self, tag: str) -> None:
                super().__init__(0.9)
        assert D("x").p == 0.9 and repr(D("x")) == "D(p=0.9)"


def outcome_msg(f: object) -> object:
    try:
        f()
    except Exception as e:  # noqa: BLE001 - compared across backends
        return type(e), str(e)
    return None


def test_float_messages_match_python_repr() -> None:
    """Messages print floats as Python's repr does, in both backends."""
    rs = load_backend("rs")
    rng = random.Random(5)
    values = [1e16, 1e22, 1.5e-7, 123456789.0, 1e300, -1e-5, -0.0] + [
        rng.uniform(1.0, 10.0) * 10.0 ** rng.randint(-300, 300) for _ in range(300)]
    for v in values:
        msgs = [outcome_msg(lambda: fw.Dropout(v)) for fw in (pyfw, rs)]
        if v < 1.0 and v >= 0.0:
            continue
        assert msgs[0] == msgs[1], v
        msgs = [outcome_msg(lambda: fw.Hardtanh(v, v)) for fw in (pyfw, rs)]
        assert msgs[0] == msgs[1], v


def test_reference_cycles_through_modules_are_collected() -> None:
    import gc
    import weakref
    rs = load_backend("rs")
    for fw in (pyfw, rs):
        refs = []
        for _ in range(50):
            class Back(fw.Module):
                def forward(self, x: object) -> object:
                    return x

                def backward(self, g: object) -> object:
                    return g
            b = Back()
            model = fw.Sequential(fw.Linear(2, 2), b, fw.Dropout(0.1, generator=fw.Generator(0)))
            b.model = model  # a cycle: model -> b -> model
            b.weight = model[0].weight
            model[0].weight.grad.grad = model[0].weight  # tensor -> grad -> tensor
            refs.append(weakref.ref(b))
            del b, model
        gc.collect()
        assert all(r() is None for r in refs)
