"""``copy.deepcopy`` and ``pickle`` round-trip every kind of object bit for bit, in both backends."""

from __future__ import annotations

import copy
import pickle
from types import ModuleType
from typing import Any, Callable

import pytest

import pyfw
from fwtest import state_hex, th
import re
import time

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
    _step_both((model, opt, loss), (model2, opt2, loss2), x, y)
    assert state_hex(model2) == state_hex(model), "the copies train on identically"
    assert [p for p in model2.parameters()][0] is opt2.param_groups[0]["params"][0], "still linked"


# ---- Python subclasses of every family member, with constructors of their own


def _step_both(*runs: Any) -> None:
    """One training step of each ``(model, optimizer, loss)`` of ``runs[:-2]`` on ``runs[-2:]``."""
    *trios, x, y = runs
    for m, o, lo in trios:
        o.zero_grad()
        lo(m(x), y)
        m.backward(lo.backward())
        o.step()


def _own(base: type, backend: str) -> type:
    """A subclass of ``base`` whose constructor takes a tag first, keeps it, a cycle
    through ``__dict__`` and a list, and passes the rest to ``super().__init__``. It is
    put in this module's namespace under a unique name, so that pickle finds it."""
    name = f"Own{base.__name__}_{backend}"
    if name not in globals():
        def __init__(self: Any, tag: str, *args: Any, **kwargs: Any) -> None:
            base.__init__(self, *args, **kwargs)
            self.tag, self.me, self.extra = tag, self, [1.5, -0.0]
        cls = type(name, (base,), {"__init__": __init__, "__module__": __name__, "__qualname__": name})
        globals()[name] = cls
    return globals()[name]


def _backend(fw: ModuleType) -> str:
    return "rs" if fw.__name__ == "pyfw_rs" else "py"


def _check_dict(a: Any, b: Any) -> None:
    """``b`` is a copy of ``a``: same type, its own ``__dict__`` with the same content."""
    assert type(b) is type(a) and b is not a
    assert b.tag == a.tag and b.me is b and b.extra == a.extra and b.extra is not a.extra
    assert [v.hex() for v in b.extra] == [v.hex() for v in a.extra]


def test_subclasses_of_every_member_round_trip(fw: ModuleType, again: Callable) -> None:
    """A Sequential subclass holding subclasses of Linear, every activation and Dropout, trained
    in eval mode by a subclass of each optimizer (a constructor of its own) with a subclass of each loss: the copy has the
    same types, ``__dict__``s, training flags and bits, shares its parameters with the copied
    optimizer and trains on identically."""
    be = _backend(fw)
    g = fw.Generator(3)
    layers: list = [_own(fw.Linear, be)("lin", 3, 4, generator=g)]
    for name, cls in fw.ACTIVATIONS.items():
        if name not in ("Softmax", "LogSoftmax"):
            layers.append(_own(cls, be)(name))
    layers += [_own(fw.Dropout, be)("drop", 0.25, generator=g), _own(fw.Linear, be)("out", 4, 3, generator=g),
               _own(fw.LogSoftmax, be)("lsm", dim=1)]
    model = _own(fw.Sequential, be)("seq", *layers)
    x, y = fw.tensor([[0.5, -1.0, 0.25], [2.0, 0.25, -0.5]]), [2, 0]
    for opt_cls in fw.OPTIMIZERS.values():
        for loss_cls in (fw.NLLLoss, fw.CrossEntropyLoss):
            opt = _own(opt_cls, be)("opt", model.parameters(), lr=0.01)
            loss = _own(loss_cls, be)("loss", reduction="sum")
            model.train(opt_cls is fw.SGD)
            for _ in range(2):
                opt.zero_grad()
                loss(model(x), y)
                model.backward(loss.backward())
                opt.step()
            model2, opt2, loss2 = again((model, opt, loss))
            _check_dict(model, model2)
            _check_dict(loss, loss2)
            _check_dict(opt, opt2)
            assert opt2.param_groups[0]["lr"] == 0.01
            assert repr(model2) == repr(model) and repr(loss2) == repr(loss) and loss2.reduction == "sum"
            for a, b in zip(model, model2):
                _check_dict(a, b)
                assert b.training == a.training == model.training
            assert model2[0].in_features == 3 and model2[-2].out_features == 3
            assert state_hex(model2) == state_hex(model) and opt2.state_dict().keys() == opt.state_dict().keys()
            assert list(model2.parameters())[0] is opt2.param_groups[0]["params"][0], "still linked"
            _step_both((model, opt, loss), (model2, opt2, loss2), x, y)
            assert state_hex(model2) == state_hex(model), "the copies train on identically"


@pytest.mark.parametrize("name", list(pyfw.OPTIMIZERS))
def test_an_optimizer_subclass_that_skips_init_fails_cleanly(fw: ModuleType, name: str) -> None:
    """An optimizer subclass whose ``__init__`` never calls ``super().__init__`` gets an
    error at its first use in both backends, never a crash or a silent no-op."""

    class Skips(fw.OPTIMIZERS[name]):  # type: ignore[misc, valid-type]
        def __init__(self, params: Any) -> None:
            pass

    bad = Skips(fw.Linear(2, 2).parameters())
    for use in (bad.step, bad.zero_grad, bad.state_dict, lambda: bad.param_groups, lambda: bad.lr):
        with pytest.raises((RuntimeError, AttributeError)) as e:  # pyfw: no attribute '_param_groups'
            use()
        if fw.__name__ == "pyfw_rs":
            assert e.type is RuntimeError and str(e.value).startswith(f"{name}: not initialized")


def test_subclass_arguments_survive_the_copy(fw: ModuleType, again: Callable) -> None:
    """Non-default arguments of activation and loss subclasses, and a subclass's own
    attribute that shadows nothing, come back; the copy never calls the subclass's constructor."""
    be = _backend(fw)
    act = again(_own(fw.LeakyReLU, be)("a", negative_slope=0.25))
    assert act.negative_slope == 0.25 and act.tag == "a"
    loss = again(_own(fw.HuberLoss, be)("h", delta=0.5, reduction="sum"))
    assert (loss.delta, loss.reduction, loss.tag) == (0.5, "sum", "h")
    drop = again(_own(fw.Dropout, be)("d", 0.75, generator=fw.Generator(2)))
    assert drop.p == 0.75 and drop.generator.random() == fw.Generator(2).random()


class _Scale:
    """A module written in Python on top of ``fw.Module``: one parameter, eval mode kept."""

    @staticmethod
    def make(fw: ModuleType) -> type:
        name = f"Scale_{_backend(fw)}"
        if name not in globals():
            def __init__(self: Any, s: float) -> None:
                fw.Module.__init__(self)
                self.s, self.gs = fw.tensor([s]), fw.tensor([0.0])

            def forward(self: Any, x: Any) -> Any:
                self.x = x
                return fw.tensor([[v * self.s.tolist()[0] for v in r] for r in x.tolist()])

            def backward(self: Any, g: Any) -> Any:
                return fw.tensor([[v * self.s.tolist()[0] for v in r] for r in g.tolist()])

            def param(self: Any) -> list:
                return [(self.s, self.gs)]

            globals()[name] = type(name, (fw.Module,), {
                "__init__": __init__, "forward": forward, "backward": backward, "param": param,
                "__module__": __name__, "__qualname__": name})
        return globals()[name]


def test_a_python_module_keeps_its_training_flag(fw: ModuleType, again: Callable) -> None:
    model = fw.Sequential(fw.Linear(2, 2), _Scale.make(fw)(0.5)).eval()
    opt = fw.SGD(model.param(), lr=0.1)
    model2, opt2 = again((model, opt))
    assert model2[1].training is False and type(model2[1]) is type(model[1])
    assert model2[1].s is opt2.param_groups[0]["params"][2] and th(model2[1].s) == th(model[1].s)


def test_a_linear_subclass_with_its_own_constructor(fw: ModuleType) -> None:
    """``__init__(self, n)`` calling ``super().__init__(n, n)`` works in both backends, with the
    same bits; a subclass that never calls it gets an error on use, never a crash."""
    be = _backend(fw)
    lin = _own(fw.Linear, be)("sq", 3, 3, generator=fw.Generator(0))
    ref = fw.Linear(3, 3, generator=fw.Generator(0))
    assert state_hex(lin) == state_hex(ref) and lin.in_features == lin.out_features == 3

    class Skips(fw.Linear):
        def __init__(self) -> None:
            pass

    bad = Skips()
    uses = [lambda: bad(fw.tensor([[1.0]])), lambda: bad.param(), lambda: bad.weight,
            lambda: bad.state_dict(), lambda: fw.Sequential(bad)(fw.tensor([[1.0]]))]
    if fw.__name__ == "pyfw_rs":
        uses += [lambda: bad.in_features, lambda: bad.backward(fw.tensor([[1.0]])), lambda: copy.deepcopy(bad)]
        assert repr(bad) == "Linear(not initialized)"
    for use in uses:
        with pytest.raises((RuntimeError, AttributeError)) as e:  # pyfw: no attribute 'weight'
            use()
        if fw.__name__ == "pyfw_rs":
            assert e.type is RuntimeError and str(e.value).startswith("Linear: not initialized")


# Copies and unpickled modules: a copy holds no forward state, an unpickled module is
# checked as ``load_state_dict`` checks, and sizes or arguments that cannot work are
# refused with messages that name the module, the same way in both backends.

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
    """The tensor says (3, 2) but holds one row: the storage is checked, not only the shape (by the
    tensor itself, as it is restored before the Linear)."""
    lin = pyfw.Linear(2, 3)
    lin.weight._rows = [[1.0, 2.0]]
    with pytest.raises(ValueError, match=r"Tensor \(copied or unpickled\): shape \(3, 2\) is stored as 3 row\(s\) "
                                         r"of 2 values, got 1"):
        pickle.loads(pickle.dumps(lin))


def _tampered_tensor(shape: tuple, field: str, value: Any) -> bytes:
    """The pickle of a pyfw tensor of ``shape`` (rows over all dimensions but the last, row-major)
    whose slot ``field`` was replaced by ``value``."""
    count = 1
    for d in shape[:-1]:
        count *= d
    t = pyfw.Tensor._wrap([[float(r * shape[-1] + c) for c in range(shape[-1])] for r in range(count)], shape)
    object.__setattr__(t, field, value)
    return pickle.dumps(t)


TAMPERED_TENSORS = [
    ("rows-short", (3, 2), "_rows", [[1.0, 2.0]], ValueError, r"shape \(3, 2\) is stored as 3 row\(s\) of 2 values, got 1"),
    ("rows-long", (2,), "_rows", [[1.0, 2.0], [3.0, 4.0]], ValueError, r"stored as 1 row\(s\) of 2 values, got 2"),
    ("row-ragged", (2, 2), "_rows", [[1.0, 2.0], [3.0]], ValueError, r"row 1 holds 1 items"),
    ("row-tuple", (2, 2), "_rows", [[1.0, 2.0], (3.0, 4.0)], ValueError, r"row 1 holds a tuple"),
    ("rows-dict", (2,), "_rows", {0: [1.0, 2.0]}, ValueError, r"got a dict"),
    ("item-str", (2, 2), "_rows", [[1.0, 2.0], [3.0, "x"]], TypeError, r"expected real numbers, got str 'x'"),
    ("item-bool", (2,), "_rows", [[1.0, True]], TypeError, r"expected real numbers, got bool"),
    ("item-nan", (2,), "_rows", [[1.0, float("nan")]], ValueError, r"expected finite numbers, got nan"),
    ("item-list", (1, 2), "_rows", [[1.0, [2.0]]], ValueError, r"ragged or too deeply nested"),
    ("shape-list", (2,), "_shape", [2], ValueError, r"the shape must be a tuple of one or more positive ints"),
    ("shape-empty", (2,), "_shape", (), ValueError, r"the shape must be a tuple"),
    ("shape-zero", (2,), "_shape", (0, 2), ValueError, r"the shape must be a tuple"),
    ("shape-bool", (2,), "_shape", (True, 2), ValueError, r"the shape must be a tuple"),
    ("shape-float", (2,), "_shape", (2.0,), ValueError, r"the shape must be a tuple"),
    ("shape-other", (2, 2), "_shape", (4,), ValueError, r"shape \(4,\) is stored as 1 row\(s\) of 4 values, got 2"),
    ("grad-list", (2,), "_grad", [0.0, 0.0], TypeError, r"grad must be None or another pyfw Tensor, got list"),
    ("grad-shape", (2,), "_grad", pyfw.tensor([0.0, 0.0, 0.0]), ValueError, r"gradient shape \(3,\) differs from \(2,\)"),
]


@pytest.mark.parametrize("shape, field, value, exc, said", [c[1:] for c in TAMPERED_TENSORS],
                         ids=[c[0] for c in TAMPERED_TENSORS])
def test_a_tampered_pyfw_tensor_pickle_is_refused(shape: tuple, field: str, value: Any, exc: type, said: str) -> None:
    """A lone tensor is checked on unpickling as tensor() checks its data."""
    data = _tampered_tensor(shape, field, value)
    with pytest.raises(exc, match=r"^Tensor \(copied or unpickled\): .*" + said):
        pickle.loads(data)


@pytest.mark.parametrize("shape", [(3,), (2, 3), (2, 3, 4), (1, 1, 1, 2)])
def test_a_pyfw_tensor_of_any_rank_pickles_and_copies(shape: tuple) -> None:
    """Rows over all dimensions but the last, row-major; a copy shares no storage."""
    t = pyfw.Tensor._wrap(pickle.loads(_tampered_tensor(shape, "_grad", None))._rows, shape)
    t.grad = pyfw.Tensor._wrap([[0.5] * shape[-1] for _ in t._rows], shape)
    for twin in (pickle.loads(pickle.dumps(t)), copy.copy(t), copy.deepcopy(t)):
        assert twin.shape == shape and twin._rows == t._rows and twin._rows is not t._rows
        assert all(a is not b for a, b in zip(twin._rows, t._rows))
        assert twin.grad.shape == shape
    assert copy.copy(t).grad is t.grad and copy.deepcopy(t).grad is not t.grad
    ints = pickle.loads(_tampered_tensor(shape, "_rows", [[1] * shape[-1] for _ in t._rows]))
    assert all(type(v) is float for r in ints._rows for v in r)  # stored as tensor() stores numbers


def test_a_tampered_activation_pickle_is_refused() -> None:
    """An activation's arguments are checked on unpickling as its constructor checks them."""
    cases = [(pyfw.LeakyReLU(), "negative_slope", "x", TypeError, r"LeakyReLU: negative_slope must be a real"),
             (pyfw.ELU(), "alpha", float("nan"), ValueError, r"ELU: alpha must be finite"),
             (pyfw.Softplus(), "beta", 0.0, ValueError, r"Softplus: beta must be nonzero"),
             (pyfw.Softplus(), "threshold", None, TypeError, r"Softplus: threshold"),
             (pyfw.Hardtanh(), "max_val", -2.0, ValueError, r"Hardtanh: max_val must be above min_val"),
             (pyfw.Softmax(), "dim", 1.5, TypeError, r"Softmax: dim must be an int"),
             (pyfw.LogSoftmax(), "dim", True, TypeError, r"LogSoftmax: dim")]
    for module, field, value, exc, said in cases:
        module.__dict__[field] = value
        with pytest.raises(exc, match=said):
            pickle.loads(pickle.dumps(module))
    kept = pyfw.LeakyReLU(0.5)
    del kept.__dict__["negative_slope"]
    with pytest.raises(TypeError, match="LeakyReLU: negative_slope"):
        pickle.loads(pickle.dumps(kept))
    one = pyfw.LeakyReLU()
    one.__dict__["negative_slope"] = 1  # an int: kept as the constructor keeps it, a float
    assert repr(pickle.loads(pickle.dumps(one))) == "LeakyReLU(negative_slope=1.0)"


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
