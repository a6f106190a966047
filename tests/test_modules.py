"""Modules: gradient checks by central finite differences, the documented kernels
bit for bit, gradient accumulation, initialization, and the module contract."""

from __future__ import annotations

import math
import random
import re
from types import ModuleType
from typing import Callable

import pytest
from fwtest import hexes, state_hex
from conftest import load_backend
from fwtest import th
import pyfw

H = 1e-6       # central-difference step
RTOL = 1e-6
ATOL = 1e-7
SEEDS = [0, 1, 2, 3, 4, 5]


# ---- helpers --------------------------------------------------------------------

def rand_matrix(rng: random.Random, rows: int, cols: int, lo: float = -1.0, hi: float = 1.0) -> list:
    return [[rng.uniform(lo, hi) for _ in range(cols)] for _ in range(rows)]


def rand_away_from_zero(rng: random.Random, rows: int, cols: int, gap: float = 0.05) -> list:
    """Entries in [-1, -gap] or [gap, 1], so that a ReLU kink is never within reach."""
    return [[rng.choice((-1.0, 1.0)) * rng.uniform(gap, 1.0) for _ in range(cols)] for _ in range(rows)]


def flat(x: list) -> list:
    return [v for r in x for v in r] if x and isinstance(x[0], list) else list(x)


def dot(a: list, b: list) -> float:
    """The objective sum_k a_k * b_k over two same-shaped nested lists."""
    acc = 0.0
    for u, v in zip(flat(a), flat(b)):
        acc = acc + u * v
    return acc


def numeric_grad(f: Callable[[list], float], x: list) -> list:
    """Central differences of f at x (a 1-D or 2-D nested list), same shape as x."""
    two_d = isinstance(x[0], list)
    rows = [list(r) for r in x] if two_d else [list(x)]
    out = []
    for r in range(len(rows)):
        grow = []
        for c in range(len(rows[r])):
            v = rows[r][c]
            rows[r][c] = v + H
            fp = f([list(q) for q in rows] if two_d else list(rows[0]))
            rows[r][c] = v - H
            fm = f([list(q) for q in rows] if two_d else list(rows[0]))
            rows[r][c] = v
            grow.append((fp - fm) / (2 * H))
        out.append(grow)
    return out if two_d else out[0]


def assert_grad_close(analytic: list, numeric: list, what: str) -> None:
    a, n = flat(analytic), flat(numeric)
    assert len(a) == len(n), what
    for k, (u, v) in enumerate(zip(a, n)):
        assert abs(u - v) <= ATOL + RTOL * abs(v), f"{what}[{k}]: analytic {u!r}, numeric {v!r}"






# ---- finite-difference gradient checks --------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_linear_gradients(fw: ModuleType, seed: int) -> None:
    rng = random.Random(100 + seed)
    n, i, o = rng.randint(1, 6), rng.randint(1, 6), rng.randint(1, 6)
    W, b, X, C = rand_matrix(rng, o, i), rand_matrix(rng, 1, o)[0], rand_matrix(rng, n, i), rand_matrix(rng, n, o)
    lin = fw.Linear(i, o, generator=fw.Generator(seed))
    lin.load_state_dict({"weight": W, "bias": b})
    lin(X)
    gx = lin.backward(fw.tensor(C))
    assert gx.shape == (n, i)
    (_, gw), (_, gb) = lin.param()
    gx, gw, gb = gx.tolist(), gw.tolist(), gb.tolist()

    def f(W_: list, b_: list, X_: list) -> float:
        lin.load_state_dict({"weight": W_, "bias": b_})
        return dot(lin(X_).tolist(), C)

    assert_grad_close(gx, numeric_grad(lambda v: f(W, b, v), X), "dL/dx")
    assert_grad_close(gw, numeric_grad(lambda v: f(v, b, X), W), "dL/dW")
    assert_grad_close(gb, numeric_grad(lambda v: f(W, v, X), b), "dL/db")


@pytest.mark.parametrize("seed", SEEDS)
def test_relu_gradient(fw: ModuleType, seed: int) -> None:
    rng = random.Random(200 + seed)
    n, c = rng.randint(1, 6), rng.randint(1, 6)
    X, C = rand_away_from_zero(rng, n, c), rand_matrix(rng, n, c)
    relu = fw.ReLU()
    relu(X)
    g = relu.backward(fw.tensor(C)).tolist()
    assert_grad_close(g, numeric_grad(lambda v: dot(relu(v).tolist(), C), X), "ReLU dL/dx")


@pytest.mark.parametrize("seed", SEEDS)
def test_tanh_gradient(fw: ModuleType, seed: int) -> None:
    rng = random.Random(300 + seed)
    n, c = rng.randint(1, 6), rng.randint(1, 6)
    X, C = rand_matrix(rng, n, c, -3.0, 3.0), rand_matrix(rng, n, c)
    tanh = fw.Tanh()
    tanh(X)
    g = tanh.backward(fw.tensor(C)).tolist()
    assert_grad_close(g, numeric_grad(lambda v: dot(tanh(v).tolist(), C), X), "Tanh dL/dx")


@pytest.mark.parametrize("seed", SEEDS)
def test_sequential_gradients(fw: ModuleType, seed: int) -> None:
    rng = random.Random(400 + seed)
    sizes = [rng.randint(1, 5) for _ in range(4)]
    g = fw.Generator(seed)
    model = fw.Sequential(fw.Linear(sizes[0], sizes[1], generator=g), fw.Tanh(),
                          fw.Linear(sizes[1], sizes[2], generator=g), fw.ReLU(),
                          fw.Linear(sizes[2], sizes[3], generator=g))
    n = rng.randint(1, 5)
    # draw inputs until every ReLU pre-activation is clear of the kink
    for _ in range(100):
        X = rand_matrix(rng, n, sizes[0], -2.0, 2.0)
        pre = model[2](model[1](model[0](X))).tolist()
        if min(abs(v) for v in flat(pre)) > 1e-3:
            break
    else:
        pytest.fail("could not draw inputs away from the ReLU kink")
    C = rand_matrix(rng, n, sizes[3])
    model.zero_grad()
    model(X)
    gx = model.backward(fw.tensor(C)).tolist()
    sd = {k: v.tolist() for k, v in model.state_dict().items()}
    grads = {k: pg.tolist() for k, (_, pg) in zip(sd, model.param())}

    def f(sd_: dict, X_: list) -> float:
        model.load_state_dict(sd_)
        return dot(model(X_).tolist(), C)

    assert_grad_close(gx, numeric_grad(lambda v: f(sd, v), X), "Sequential dL/dx")
    for key in sd:
        def fk(v: list, key: str = key) -> float:
            return f({**sd, key: v}, X)
        assert_grad_close(grads[key], numeric_grad(fk, sd[key]), f"Sequential dL/d[{key}]")


def test_gradient_check_detects_a_wrong_gradient() -> None:
    """The checker itself must be able to fail: a gradient off by 1e-5 is caught."""
    x = [[0.3, -0.7]]
    num = numeric_grad(lambda v: dot(v, v), x)
    assert_grad_close([[0.6, -1.4]], num, "exact")
    with pytest.raises(AssertionError):
        assert_grad_close([[0.6 + 1e-5, -1.4]], num, "perturbed")


# ---- the documented kernels, bit for bit --------------------------------------------

def ref_linear_forward(X: list, W: list, b: list) -> list:
    out = []
    for xr in X:
        row = []
        for o in range(len(W)):
            acc = b[o]
            for i, xi in enumerate(xr):
                if xi != 0.0:
                    acc = acc + xi * W[o][i]
            row.append(acc)
        out.append(row)
    return out


def ref_linear_backward(X: list, W: list, G: list, GW: list, Gb: list) -> tuple:
    nout, nin = len(W), len(W[0])
    GW = [list(r) for r in GW]
    Gb = list(Gb)
    for o in range(nout):
        for i in range(nin):
            acc = GW[o][i]
            for n in range(len(X)):
                if G[n][o] != 0.0:
                    acc = acc + G[n][o] * X[n][i]
            GW[o][i] = acc
        acc = Gb[o]
        for n in range(len(X)):
            acc = acc + G[n][o]
        Gb[o] = acc
    GX = []
    for n in range(len(X)):
        row = []
        for i in range(nin):
            acc = 0.0
            for o in range(nout):
                if G[n][o] != 0.0:
                    acc = acc + G[n][o] * W[o][i]
            row.append(acc)
        GX.append(row)
    return GX, GW, Gb


def sprinkle_zeros(rng: random.Random, x: list, p: float = 0.3) -> list:
    return [[0.0 if rng.random() < p else v for v in r] for r in x]


@pytest.mark.parametrize("seed", SEEDS)
def test_linear_kernel_bits(fw: ModuleType, seed: int) -> None:
    rng = random.Random(500 + seed)
    n, i, o = rng.randint(1, 7), rng.randint(1, 7), rng.randint(1, 7)
    W = rand_matrix(rng, o, i, -3, 3)
    b = rand_matrix(rng, 1, o, -3, 3)[0]
    b[0] = -0.0  # with an all-zero input row the skipped terms keep -0.0
    X = sprinkle_zeros(rng, rand_matrix(rng, n, i, -3, 3))
    X[0] = [0.0] * i
    G1 = sprinkle_zeros(rng, rand_matrix(rng, n, o, -3, 3))
    G2 = sprinkle_zeros(rng, rand_matrix(rng, n, o, -3, 3))
    lin = fw.Linear(i, o)
    lin.load_state_dict({"weight": W, "bias": b})
    assert hexes(lin(X).tolist()) == hexes(ref_linear_forward(X, W, b))
    gx1 = lin.backward(G1)
    gx2 = lin.backward(fw.tensor(G2))  # accumulates onto the first
    rx1, rw, rb = ref_linear_backward(X, W, G1, [[0.0] * i for _ in range(o)], [0.0] * o)
    rx2, rw, rb = ref_linear_backward(X, W, G2, rw, rb)
    (_, gw), (_, gb) = lin.param()
    assert hexes(gx1.tolist()) == hexes(rx1)
    assert hexes(gx2.tolist()) == hexes(rx2)
    assert hexes(gw.tolist()) == hexes(rw)
    assert hexes(gb.tolist()) == hexes(rb)


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_activation_kernel_bits(fw: ModuleType, seed: int) -> None:
    rng = random.Random(600 + seed)
    n, c = rng.randint(1, 6), rng.randint(1, 6)
    X = sprinkle_zeros(rng, rand_matrix(rng, n, c, -4, 4))
    X[0][0] = -0.0
    G = rand_matrix(rng, n, c, -2, 2)
    relu, tanh = fw.ReLU(), fw.Tanh()
    assert hexes(relu(X).tolist()) == hexes([[v if v > 0.0 else 0.0 for v in r] for r in X])
    assert hexes(relu.backward(G).tolist()) == hexes(
        [[g if v > 0.0 else 0.0 for g, v in zip(gr, r)] for gr, r in zip(G, X)])
    Y = [[math.tanh(v) for v in r] for r in X]
    assert hexes(tanh(X).tolist()) == hexes(Y)
    assert hexes(tanh.backward(G).tolist()) == hexes(
        [[g * (1.0 - (y * y)) for g, y in zip(gr, yr)] for gr, yr in zip(G, Y)])


def test_activations_accept_1d(fw: ModuleType) -> None:
    x = [-1.5, 0.0, 2.0]
    r, t = fw.ReLU(), fw.Tanh()
    assert r(x).shape == (3,) and r(x).tolist() == [0.0, 0.0, 2.0]
    assert r.backward([1.0, 1.0, 1.0]).tolist() == [0.0, 0.0, 1.0]
    assert t(x).tolist() == [math.tanh(v) for v in x]
    assert t.backward([1.0, 2.0, 3.0]).shape == (3,)


def test_relu_gradient_is_zero_at_zero(fw: ModuleType) -> None:
    relu = fw.ReLU()
    relu([[0.0, -0.0, 1e-300]])
    assert relu.backward([[5.0, 5.0, 5.0]]).tolist() == [[0.0, 0.0, 5.0]]


# ---- accumulation and zero_grad ---------------------------------------------------

def make_mlp(fw: ModuleType, seed: int = 0, sizes: tuple = (2, 25, 25, 25, 2)) -> object:
    g = fw.Generator(seed)
    layers: list = []
    for k in range(len(sizes) - 1):
        layers.append(fw.Linear(sizes[k], sizes[k + 1], generator=g))
        if k < len(sizes) - 2:
            layers.append(fw.ReLU() if k % 2 == 0 else fw.Tanh())
    return fw.Sequential(*layers)


def grads_of(model: object) -> list:
    return [g.tolist() for _, g in model.param()]


def test_linear_accumulation_single_sample_is_exact(fw: ModuleType) -> None:
    """With one sample, two backward calls give exactly G1 + G2 (one addition per element)."""
    rng = random.Random(7)
    x, g1, g2 = rand_matrix(rng, 1, 4), rand_matrix(rng, 1, 3), rand_matrix(rng, 1, 3)
    a, b, both = (fw.Linear(4, 3, generator=fw.Generator(1)) for _ in range(3))
    for m, gs in ((a, [g1]), (b, [g2]), (both, [g1, g2])):
        m(x)
        for g in gs:
            m.backward(g)
    for (_, ga), (_, gb), (_, gab) in zip(a.param(), b.param(), both.param()):
        want = [u + v for u, v in zip(flat(ga.tolist()), flat(gb.tolist()))]
        assert [v.hex() for v in flat(gab.tolist())] == [v.hex() for v in want]


def test_sequential_accumulates_until_zero_grad(fw: ModuleType) -> None:
    rng = random.Random(8)
    model = make_mlp(fw, 3, (3, 5, 4, 2))
    x, g = rand_matrix(rng, 6, 3), rand_matrix(rng, 6, 2)
    model(x)
    gx1 = model.backward(g).tolist()
    once = grads_of(model)
    assert any(v != 0.0 for gr in once for v in flat(gr))
    model(x)
    gx2 = model.backward(g).tolist()
    twice = grads_of(model)
    assert hexes(gx1) == hexes(gx2), "the input gradient must not accumulate"
    for a, b in zip(once, twice):
        for u, v in zip(flat(a), flat(b)):
            assert abs(v - 2 * u) <= 1e-12 * (1 + abs(u))
    model.zero_grad()
    assert all(v == 0.0 for gr in grads_of(model) for v in flat(gr))
    # after zeroing, the same backward gives the single-pass gradients again, bit for bit
    model(x)
    model.backward(g)
    assert [hexes(a) for a in grads_of(model)] == [hexes(a) for a in once]


def test_optimizer_zero_grad(fw: ModuleType) -> None:
    model = make_mlp(fw, 4, (2, 3, 2))
    opt = fw.SGD(model.param(), lr=0.1)
    model(fw.tensor([[0.5, -0.25], [1.0, 2.0]]))
    model.backward([[1.0, -1.0], [0.5, 2.0]])
    assert any(v != 0.0 for gr in grads_of(model) for v in flat(gr))
    opt.zero_grad()
    assert all(v == 0.0 for gr in grads_of(model) for v in flat(gr))
    assert [g.shape for _, g in model.param()] == [(3, 2), (3,), (2, 3), (2,)]


def test_forward_does_not_touch_gradients(fw: ModuleType) -> None:
    model = make_mlp(fw, 5, (2, 4, 2))
    model([[1.0, 2.0]])
    model.backward([[1.0, 1.0]])
    before = [hexes(a) for a in grads_of(model)]
    model([[3.0, -1.0], [0.5, 0.5]])
    assert [hexes(a) for a in grads_of(model)] == before


# ---- Linear: initialization and sizes --------------------------------------------------

def test_linear_shapes(fw: ModuleType) -> None:
    lin = fw.Linear(2, 25)
    assert lin.weight.shape == (25, 2) and lin.bias.shape == (25,)
    assert [(p.shape, g.shape) for p, g in lin.param()] == [((25, 2), (25, 2)), ((25,), (25,))]
    assert all(v == 0.0 for _, g in lin.param() for v in flat(g.tolist()))
    assert lin(fw.tensor([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])).shape == (3, 25)


def test_linear_init_range(fw: ModuleType) -> None:
    for fan_in, fan_out in [(1, 50), (4, 60), (25, 25), (100, 10)]:
        lin = fw.Linear(fan_in, fan_out, generator=fw.Generator(fan_in))
        k = 1.0 / math.sqrt(fan_in)
        for name, t in (("weight", lin.weight), ("bias", lin.bias)):
            vals = flat(t.tolist())
            assert all(-k <= v < k for v in vals), name
        w = flat(lin.weight.tolist())
        assert min(w) < -0.8 * k and max(w) > 0.8 * k  # spread over the whole range


def test_linear_init_draw_order(fw: ModuleType) -> None:
    """weight[o][i] = -k + (k - -k) * random(), row-major, then bias, from one generator."""
    lin = fw.Linear(3, 4, generator=fw.Generator(17))
    g = fw.Generator(17)
    k = 1.0 / math.sqrt(3)
    lo, span = -k, k - -k
    w = [[lo + span * g.random() for _ in range(3)] for _ in range(4)]
    b = [lo + span * g.random() for _ in range(4)]
    assert hexes(lin.weight.tolist()) == hexes(w)
    assert hexes(lin.bias.tolist()) == hexes(b)


def test_same_seed_same_weights(fw: ModuleType) -> None:
    a = make_mlp(fw, 9)
    b = make_mlp(fw, 9)
    c = make_mlp(fw, 10)
    assert state_hex(a) == state_hex(b)
    assert state_hex(a) != state_hex(c)


def test_default_generator_init(fw: ModuleType) -> None:
    fw.manual_seed(5)
    a = fw.Linear(3, 4)
    b = fw.Linear(3, 4, generator=fw.Generator(5))
    assert state_hex(a) == state_hex(b)
    c = fw.Linear(3, 4)  # the default generator moved on
    assert state_hex(c) != state_hex(a)


@pytest.mark.parametrize("size", [0, -1, -25], ids=["0", "-1", "-25"])
def test_linear_bad_size_value(fw: ModuleType, size: int) -> None:
    with pytest.raises(ValueError):
        fw.Linear(size, 3)
    with pytest.raises(ValueError):
        fw.Linear(3, size)


@pytest.mark.parametrize("size", [2.5, "3", None, True, 3.0], ids=["2.5", "str", "none", "bool", "3.0"])
def test_linear_bad_size_type(fw: ModuleType, size: object) -> None:
    with pytest.raises(TypeError):
        fw.Linear(size, 3)
    with pytest.raises(TypeError):
        fw.Linear(3, size)


# ---- bad input to modules --------------------------------------------------------------

def _numbers_in(msg: str) -> set:
    return set(re.findall(r"\d+", msg))


def test_wrong_input_width_names_module_and_widths(fw: ModuleType) -> None:
    lin = fw.Linear(2, 25)
    with pytest.raises(ValueError) as e:
        lin(fw.tensor([[0.1, 0.2, 0.3]]))
    msg = str(e.value)
    assert "Linear(2 -> 25)" in msg
    rest = msg.replace("Linear(2 -> 25)", "")
    assert {"2", "3"} <= _numbers_in(rest), msg
    lin = fw.Linear(7, 4)
    with pytest.raises(ValueError) as e:
        lin([[1.0] * 5, [2.0] * 5])
    msg = str(e.value)
    assert "Linear(7 -> 4)" in msg and {"7", "5"} <= _numbers_in(msg.replace("Linear(7 -> 4)", "")), msg


def test_wrong_width_inside_sequential(fw: ModuleType) -> None:
    model = fw.Sequential(fw.Linear(2, 25), fw.ReLU(), fw.Linear(25, 2))
    with pytest.raises(ValueError, match=re.escape("Linear(2 -> 25)")):
        model([[1.0, 2.0, 3.0]])


def test_linear_takes_1d_input_as_torch_and_checks_its_width(fw: ModuleType) -> None:
    lin = fw.Linear(2, 3)
    assert lin(fw.tensor([0.1, 0.2])).shape == (3,)
    assert lin.backward([1.0, 0.5, -1.0]).shape == (2,)
    with pytest.raises(ValueError, match=re.escape("Linear(2 -> 3): expected input with 2 columns, got 3")):
        lin([0.1, 0.2, 0.3])


@pytest.mark.parametrize("bad, exc", [
    ([[1.0, 2.0], [3.0]], ValueError),
    ([[1.0, float("nan")]], ValueError),
    ([[1.0, float("inf")]], ValueError),
    ([[1.0, "a"]], TypeError),
    ([[1.0, None]], TypeError),
    ([[True, 1.0]], TypeError),
    ([], ValueError),
], ids=["ragged", "nan", "inf", "str", "none", "bool", "empty"])
def test_linear_bad_nested_list_input(fw: ModuleType, bad: list, exc: type) -> None:
    with pytest.raises(exc):
        fw.Linear(2, 3)(bad)


@pytest.mark.parametrize("make", ["linear", "relu", "tanh", "sequential"])
def test_backward_before_forward(fw: ModuleType, make: str) -> None:
    m = {"linear": lambda: fw.Linear(2, 3), "relu": fw.ReLU, "tanh": fw.Tanh,
         "sequential": lambda: fw.Sequential(fw.Linear(2, 3), fw.ReLU())}[make]()
    with pytest.raises(RuntimeError):
        m.backward(fw.tensor([[1.0, 1.0, 1.0]]))


@pytest.mark.parametrize("shape", [(4, 4), (3, 3), (3,), (1, 3)])
def test_linear_wrong_gradient_shape(fw: ModuleType, shape: tuple) -> None:
    lin = fw.Linear(2, 3)
    lin([[1.0, 2.0]] * 4)
    g = [1.0] * shape[0] if len(shape) == 1 else [[1.0] * shape[1] for _ in range(shape[0])]
    with pytest.raises(ValueError):
        lin.backward(fw.tensor(g))


@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_activation_wrong_gradient_shape(fw: ModuleType, act: str) -> None:
    m = fw.ReLU() if act == "relu" else fw.Tanh()
    m([[1.0, 2.0], [3.0, 4.0]])
    for g in ([[1.0, 2.0]], [[1.0], [2.0]], [1.0, 2.0], [[1.0, 2.0, 3.0]] * 2):
        with pytest.raises(ValueError):
            m.backward(g)


def test_bad_gradient_values(fw: ModuleType) -> None:
    lin = fw.Linear(2, 2)
    lin([[1.0, 2.0]])
    with pytest.raises(ValueError):
        lin.backward([[1.0, float("nan")]])
    with pytest.raises(TypeError):
        lin.backward([[1.0, "x"]])


def test_failed_backward_leaves_gradients_unchanged(fw: ModuleType) -> None:
    lin = fw.Linear(2, 3)
    lin([[1.0, 2.0]])
    lin.backward([[1.0, 2.0, 3.0]])
    before = [hexes(g.tolist()) for _, g in lin.param()]
    with pytest.raises(ValueError):
        lin.backward([[1.0, 2.0]])
    assert [hexes(g.tolist()) for _, g in lin.param()] == before


def test_sequential_rejects_non_modules(fw: ModuleType) -> None:
    with pytest.raises(TypeError):
        fw.Sequential(fw.Linear(2, 2), "relu")
    with pytest.raises(TypeError):
        fw.Sequential(lambda x: x)


# ---- the module contract -----------------------------------------------------------------

def test_call_is_forward_and_accepts_nested_lists(fw: ModuleType) -> None:
    a, b = make_mlp(fw, 1), make_mlp(fw, 1)
    data = [[0.1, 0.9], [0.5, 0.5], [0.0, 1.0]]
    out_list = a(data)
    out_tensor = b.forward(fw.tensor(data))
    assert isinstance(out_list, fw.Tensor) and out_list.shape == (3, 2)
    assert hexes(out_list.tolist()) == hexes(out_tensor.tolist())
    assert hexes(a.backward([[1.0, 0.0]] * 3).tolist()) == hexes(b.backward(fw.tensor([[1.0, 0.0]] * 3)).tolist())


def test_activations_have_no_param(fw: ModuleType) -> None:
    assert fw.ReLU().param() == [] and fw.Tanh().param() == []


def test_sequential_param_order(fw: ModuleType) -> None:
    model = fw.Sequential(fw.Linear(2, 25), fw.ReLU(), fw.Linear(25, 25), fw.ReLU(),
                          fw.Linear(25, 25), fw.ReLU(), fw.Linear(25, 2))
    params = model.param()
    assert [p.shape for p, _ in params] == [(25, 2), (25,), (25, 25), (25,), (25, 25), (25,), (2, 25), (2,)]
    assert all(p.shape == g.shape for p, g in params)
    layers = [model[0], model[2], model[4], model[6]]
    want = []
    for lin in layers:
        want += [hexes(lin.weight.tolist()), hexes(lin.bias.tolist())]
    assert [hexes(p.tolist()) for p, _ in params] == want
    assert len(model) == 7


def test_sequential_backward_runs_backwards(fw: ModuleType) -> None:
    rng = random.Random(3)
    g = fw.Generator(2)
    l1, act, l2 = fw.Linear(3, 4, generator=g), fw.Tanh(), fw.Linear(4, 2, generator=g)
    g = fw.Generator(2)
    model = fw.Sequential(fw.Linear(3, 4, generator=g), fw.Tanh(), fw.Linear(4, 2, generator=g))
    x, gy = rand_matrix(rng, 5, 3), rand_matrix(rng, 5, 2)
    manual = l2(act(l1(x)))
    assert hexes(model(x).tolist()) == hexes(manual.tolist())
    gx = l1.backward(act.backward(l2.backward(gy)))
    assert hexes(model.backward(gy).tolist()) == hexes(gx.tolist())


def test_train_eval_propagate(fw: ModuleType) -> None:
    inner = fw.Sequential(fw.Linear(2, 2), fw.Tanh())
    model = fw.Sequential(fw.Linear(2, 2), fw.ReLU(), inner)
    mods = [model, model[0], model[1], inner, inner[0], inner[1]]
    assert all(m.training for m in mods)
    assert model.eval() is model
    assert not any(m.training for m in mods)
    assert model.train() is model
    assert all(m.training for m in mods)
    model.train(False)
    assert not any(m.training for m in mods)
    model.train(True)
    assert all(m.training for m in mods)


def test_user_module_without_param_in_sequential(fw: ModuleType) -> None:
    class Double(fw.Module):
        def forward(self, x: object) -> object:
            return fw.tensor([[2.0 * v for v in r] for r in fw.tensor(x).tolist()])

        def backward(self, g: object) -> object:
            return fw.tensor([[2.0 * v for v in r] for r in fw.tensor(g).tolist()])

    g = fw.Generator(0)
    model = fw.Sequential(fw.Linear(2, 3, generator=g), Double(), fw.Linear(3, 1, generator=g))
    g = fw.Generator(0)
    l1, l2 = fw.Linear(2, 3, generator=g), fw.Linear(3, 1, generator=g)
    x = [[0.25, -0.5], [1.0, 2.0]]
    want = l2(fw.tensor([[2.0 * v for v in r] for r in l1(x).tolist()]))
    assert hexes(model(x).tolist()) == hexes(want.tolist())
    gy = [[1.0], [-0.5]]
    gx = model.backward(gy)
    gm = l2.backward(gy)
    want_gx = l1.backward(fw.tensor([[2.0 * v for v in r] for r in gm.tolist()]))
    assert hexes(gx.tolist()) == hexes(want_gx.tolist())
    assert len(model.param()) == 4
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    model.eval()
    assert model[1].training is False


def test_user_module_with_param_in_sequential(fw: ModuleType) -> None:
    class Scale(fw.Module):
        """y = s * x with a learnable scalar s, held as a 1-element tensor."""

        def __init__(self) -> None:
            super().__init__()
            self.s = fw.tensor([1.5])
            self.s_grad = fw.tensor([3.0])

        def forward(self, x: object) -> object:
            return fw.tensor([[1.5 * v for v in r] for r in fw.tensor(x).tolist()])

        def backward(self, g: object) -> object:
            return fw.tensor([[1.5 * v for v in r] for r in fw.tensor(g).tolist()])

        def param(self) -> list:
            return [(self.s, self.s_grad)]

    model = fw.Sequential(fw.Linear(2, 3), Scale(), fw.Linear(3, 1))
    params = model.param()
    assert [p.shape for p, _ in params] == [(3, 2), (3,), (1,), (1, 3), (1,)]
    assert params[2][0].tolist() == [1.5]
    assert len(model.state_dict()) == 5
    assert {"0.weight", "0.bias", "2.weight", "2.bias"} <= set(model.state_dict())
    assert model([[1.0, 2.0]]).shape == (1, 1)
    model.zero_grad()
    assert model[1].s_grad.tolist() == [0.0], "zero_grad must reach user modules"


# The layer family beyond Linear: Dropout, parameters()/named_parameters() with
# ``.grad``, and Sequential slicing and append, on both backends.

def rand_rows(rng: random.Random, rows: int, cols: int) -> list:
    return [[rng.uniform(-2.0, 2.0) for _ in range(cols)] for _ in range(rows)]


def test_both_backends_list_the_same_layers() -> None:
    rs = load_backend("rs")
    assert list(pyfw.LAYERS) == list(rs.LAYERS) == [row[0] for row in rs._native.LAYER_TABLE]
    assert {"Linear", "Dropout", "Sequential"} <= set(pyfw.LAYERS)
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
