"""pyfw/init.py (``fw.init``): torch.nn.init's schemes, written once, on the tensors of both backends.

Each scheme fills a large tensor on each backend from the same seed; the values
must have the right bound and moments, and be bit-identical across backends.
"""

from __future__ import annotations

import functools
import math
import random
import struct
from types import ModuleType
from typing import Any, Callable

import pytest

from conftest import BACKENDS, MODULE_OF, load_backend
from fwtest import th
from pyfw import init as fwinit

ROWS, COLS = 400, 300  # fan_out, fan_in of the uniform schemes' tensor
NROWS, NCOLS = 200, 150  # the normal schemes' (each normal costs two draws and a log, cos and sqrt)
NAN, INF = float("nan"), float("inf")
SQRT2 = 1.4142135623730951


def _zeros(fw: ModuleType, shape: tuple) -> Any:
    if len(shape) == 1:
        return fw.tensor([0.0] * shape[0])
    return fw.tensor([[0.0] * shape[1] for _ in range(shape[0])])


def _flat(t: Any) -> list:
    v = t.tolist()
    return [x for row in v for x in row] if isinstance(v[0], list) else v


def _bits(values: tuple) -> bytes:
    """The IEEE bits of many floats at once (a fast equivalent of comparing float.hex)."""
    return struct.pack(f"<{len(values)}d", *values)


def _fold(values: Any) -> float:
    acc = 0.0
    for x in values:
        acc = acc + x
    return acc


# ---- the schemes on a large tensor --------------------------------------------

XAVIER_BOUND = 5.0 / 3 * math.sqrt(6.0 / (ROWS + COLS))  # gain = calculate_gain("tanh")
KAIMING_BOUND = SQRT2 * math.sqrt(3.0 / COLS)  # leaky_relu with a = 0: gain sqrt(2), fan_in

#: name -> (call, shape, kind, mean, std, (low, high) of the uniforms): the theory for that shape
SCHEMES: dict = {
    "uniform_": (lambda t, g: fwinit.uniform_(t, -0.3, 0.7, generator=g), (ROWS, COLS),
                 "uniform", 0.2, 1.0 / math.sqrt(12.0), (-0.3, 0.7)),
    "normal_": (lambda t, g: fwinit.normal_(t, 0.5, 2.0, generator=g), (NROWS, NCOLS),
                "normal", 0.5, 2.0, None),
    "xavier_uniform_": (lambda t, g: fwinit.xavier_uniform_(t, gain=5.0 / 3, generator=g), (ROWS, COLS),
                        "uniform", 0.0, XAVIER_BOUND / math.sqrt(3.0), (-XAVIER_BOUND, XAVIER_BOUND)),
    "xavier_normal_": (lambda t, g: fwinit.xavier_normal_(t, generator=g), (NROWS, NCOLS),
                       "normal", 0.0, math.sqrt(2.0 / (NROWS + NCOLS)), None),
    "kaiming_uniform_": (lambda t, g: fwinit.kaiming_uniform_(t, generator=g), (ROWS, COLS),
                         "uniform", 0.0, SQRT2 / math.sqrt(COLS), (-KAIMING_BOUND, KAIMING_BOUND)),
    "kaiming_normal_": (lambda t, g: fwinit.kaiming_normal_(t, mode="fan_out", nonlinearity="relu", generator=g),
                        (NROWS, NCOLS), "normal", 0.0, SQRT2 / math.sqrt(NROWS), None),
}


@functools.lru_cache(maxsize=None)
def _filled(backend: str, name: str) -> tuple:
    """The values scheme ``name`` writes into a tensor of ``backend`` from Generator(11)."""
    fw = load_backend(backend)
    call, shape = SCHEMES[name][:2]
    t = _zeros(fw, shape)
    out = call(t, fw.Generator(11))
    assert out is t and t.shape == shape
    return tuple(_flat(t))


@pytest.mark.parametrize("name", list(SCHEMES))
@pytest.mark.parametrize("backend", BACKENDS)
def test_scheme_bounds_and_moments(backend: str, name: str) -> None:
    kind, mean, std, bound = SCHEMES[name][2:]
    v = _filled(backend, name)
    n = len(v)
    m = _fold(v) / n
    s = math.sqrt(_fold((x - m) * (x - m) for x in v) / n)
    assert abs(m - mean) < 0.02 * std, (m, mean)
    assert abs(s - std) < 0.02 * std, (s, std)
    if kind == "uniform":
        lo, hi = bound
        assert lo <= min(v) and max(v) <= hi
        assert min(v) < lo + 0.01 * (hi - lo) and max(v) > hi - 0.01 * (hi - lo)
        if lo == -hi:  # max |v| within the bound and within 1% of it
            assert 0.99 * hi < max(abs(x) for x in v) <= hi
    else:
        # |z| <= sqrt(-2 log(2**-53)) < 8.58
        assert max(abs(x - mean) for x in v) <= 8.58 * std
        share = len([x for x in v if abs(x - mean) > std]) / n  # 31.7% for a normal
        assert 0.30 < share < 0.335, share


@pytest.mark.parametrize("name", list(SCHEMES))
def test_scheme_bit_identical_across_backends(name: str) -> None:
    py, rs = _filled("py", name), _filled("rs", name)
    assert len(py) == len(rs) and _bits(py) == _bits(rs)


# ---- exact draws ---------------------------------------------------------------

def test_uniform_draw_order(fw: ModuleType) -> None:
    """Row-major, ``a + span * random()`` with ``span = b - a`` computed once."""
    a, b = -0.1, 0.35
    span = b - a
    for shape in [(3, 4), (5,), (1, 1)]:
        t = _zeros(fw, shape)
        fwinit.uniform_(t, a, b, generator=fw.Generator(6))
        g = fw.Generator(6)
        n = shape[0] * (shape[1] if len(shape) == 2 else 1)
        want = [a + span * g.random() for _ in range(n)]
        assert [x.hex() for x in _flat(t)] == [x.hex() for x in want]


def test_normal_draw_order(fw: ModuleType) -> None:
    t = _zeros(fw, (4, 3))
    fwinit.normal_(t, -1.0, 0.5, generator=fw.Generator(6))
    g = fw.Generator(6)
    assert [x.hex() for x in _flat(t)] == [g.normal(-1.0, 0.5).hex() for _ in range(12)]


def test_uniform_matches_linear_default_init(fw: ModuleType) -> None:
    """Linear's default init is U(-k, k), k = 1/sqrt(in), weight then bias: uniform_ gives the same bits."""
    lin = fw.Linear(7, 5, generator=fw.Generator(3))
    k = 1.0 / math.sqrt(7)
    g = fw.Generator(3)
    w = fwinit.uniform_(_zeros(fw, (5, 7)), -k, k, generator=g)
    b = fwinit.uniform_(_zeros(fw, (5,)), -k, k, generator=g)
    assert th(w) == th(lin.weight) and th(b) == th(lin.bias)


def test_scales_follow_torch_order_of_evaluation(fw: ModuleType) -> None:
    """The scales are torch's expressions, evaluated in torch's order: ``bound = sqrt(3.0) * std``
    with ``std = gain / sqrt(fan)`` (not ``gain * sqrt(3.0 / fan)``, which may differ in the last bit)."""
    fan_out, fan_in = 6, 10
    gain = math.sqrt(2.0 / (1 + 0.2 ** 2))
    t = fwinit.kaiming_uniform_(_zeros(fw, (fan_out, fan_in)), a=0.2, generator=fw.Generator(1))
    bound = math.sqrt(3.0) * (gain / math.sqrt(fan_in))
    g = fw.Generator(1)
    assert [x.hex() for x in _flat(t)] == [(-bound + (bound - -bound) * g.random()).hex() for _ in range(60)]
    t = fwinit.xavier_normal_(_zeros(fw, (fan_out, fan_in)), gain=0.5, generator=fw.Generator(2))
    std = 0.5 * math.sqrt(2.0 / (fan_in + fan_out))
    g = fw.Generator(2)
    assert [x.hex() for x in _flat(t)] == [g.normal(0.0, std).hex() for _ in range(60)]
    t = fwinit.kaiming_normal_(_zeros(fw, (fan_out, fan_in)), mode="FAN_OUT", nonlinearity="tanh",
                               generator=fw.Generator(2))
    g = fw.Generator(2)
    assert [x.hex() for x in _flat(t)] == [g.normal(0.0, (5.0 / 3) / math.sqrt(fan_out)).hex() for _ in range(60)]


def test_fans_of_a_weight(fw: ModuleType) -> None:
    """For a (out, in) weight, fan_in = in and fan_out = out."""
    t = _zeros(fw, (2, 50))  # fan_in 50, fan_out 2
    fwinit.kaiming_uniform_(t, nonlinearity="linear", generator=fw.Generator(0))
    assert max(abs(x) for x in _flat(t)) <= math.sqrt(3.0) / math.sqrt(50)
    fwinit.kaiming_uniform_(t, mode="fan_out", nonlinearity="linear", generator=fw.Generator(0))
    assert max(abs(x) for x in _flat(t)) > math.sqrt(3.0) / math.sqrt(50)  # bound sqrt(3/2)
    fwinit.xavier_uniform_(t, generator=fw.Generator(0))
    assert max(abs(x) for x in _flat(t)) <= math.sqrt(6.0 / 52)


def test_constant_zeros_ones(fw: ModuleType) -> None:
    for shape in [(3, 2), (4,)]:
        t = _zeros(fw, shape)
        assert fwinit.constant_(t, 0.25) is t and set(_flat(t)) == {0.25}
        assert fwinit.ones_(t) is t and set(_flat(t)) == {1.0}
        assert fwinit.zeros_(t) is t and [x.hex() for x in _flat(t)] == [(0.0).hex()] * len(_flat(t))
        assert all(type(x) is float for x in _flat(fwinit.constant_(t, 3)))


def test_fills_module_parameters_in_place(fw: ModuleType) -> None:
    lin = fw.Linear(3, 2, generator=fw.Generator(0))
    fwinit.ones_(lin.weight)
    fwinit.constant_(lin.bias, 0.5)
    assert lin([[1.0, 2.0, 3.0]]).tolist() == [[6.5, 6.5]]
    w = fwinit.xavier_normal_(lin.weight, generator=fw.Generator(1))
    assert w is lin.weight
    assert th(lin.weight) == th(fwinit.xavier_normal_(_zeros(fw, (2, 3)), generator=fw.Generator(1)))


# ---- generators ------------------------------------------------------------------

RANDOM_SCHEMES: dict = {
    "uniform_": lambda t, **kw: fwinit.uniform_(t, **kw),
    "normal_": lambda t, **kw: fwinit.normal_(t, **kw),
    "xavier_uniform_": lambda t, **kw: fwinit.xavier_uniform_(t, **kw),
    "xavier_normal_": lambda t, **kw: fwinit.xavier_normal_(t, **kw),
    "kaiming_uniform_": lambda t, **kw: fwinit.kaiming_uniform_(t, **kw),
    "kaiming_normal_": lambda t, **kw: fwinit.kaiming_normal_(t, **kw),
}


@pytest.mark.parametrize("name", list(RANDOM_SCHEMES))
def test_default_generator_is_the_tensors_backend(fw: ModuleType, name: str) -> None:
    call = RANDOM_SCHEMES[name]
    fw.manual_seed(9)
    a = call(_zeros(fw, (3, 4)))
    b = call(_zeros(fw, (3, 4)), generator=fw.Generator(9))
    assert th(a) == th(b)
    after = fw.default_generator.next_u64()
    g = fw.Generator(9)
    call(_zeros(fw, (3, 4)), generator=g)
    assert after == g.next_u64()  # the default generator moved on by exactly that many draws


def test_default_generator_of_the_other_backend_is_untouched() -> None:
    for mine, other in [("py", "rs"), ("rs", "py")]:
        fw, fo = load_backend(mine), load_backend(other)
        fw.manual_seed(1)
        fo.manual_seed(2)
        fwinit.normal_(_zeros(fw, (2, 2)))
        assert fo.default_generator.next_u64() == fo.Generator(2).next_u64()
        assert fw.default_generator.next_u64() != fw.Generator(1).next_u64()
    load_backend("py").manual_seed(0)
    load_backend("rs").manual_seed(0)


@pytest.mark.parametrize("name", list(RANDOM_SCHEMES))
def test_generator_of_the_other_backend_is_refused(name: str) -> None:
    call = RANDOM_SCHEMES[name]
    for mine, other in [("py", "rs"), ("rs", "py")]:
        fw, fo = load_backend(mine), load_backend(other)
        t = _zeros(fw, (2, 3))
        before = t.tolist()
        with pytest.raises(TypeError, match=f"{name}: generator must be a {MODULE_OF[mine]}.Generator"):
            call(t, generator=fo.Generator(0))
        assert t.tolist() == before


@pytest.mark.parametrize("gen", [0, "g", random.Random(0), True], ids=["int", "str", "random", "bool"])
def test_non_generator_is_refused(fw: ModuleType, gen: object) -> None:
    for name, call in RANDOM_SCHEMES.items():
        with pytest.raises(TypeError, match=f"^{name}: generator must be"):
            call(_zeros(fw, (2, 3)), generator=gen)


# ---- calculate_gain ---------------------------------------------------------------

GAINS = [
    (("linear",), 1.0), (("conv1d",), 1.0), (("conv2d",), 1.0), (("conv3d",), 1.0),
    (("conv_transpose1d",), 1.0), (("conv_transpose2d",), 1.0), (("conv_transpose3d",), 1.0),
    (("sigmoid",), 1.0), (("tanh",), 1.6666666666666667), (("relu",), 1.4142135623730951),
    (("leaky_relu",), 1.4141428569978354), (("leaky_relu", None), 1.4141428569978354),
    (("leaky_relu", 0), 1.4142135623730951), (("leaky_relu", 0.2), 1.3867504905630728),
    (("leaky_relu", -1), 1.0), (("leaky_relu", math.sqrt(5)), 0.5773502691896257),
    (("selu",), 0.75), (("relu", 0.3), 1.4142135623730951), (("tanh", "ignored"), 1.6666666666666667),
]


@pytest.mark.parametrize("args,want", GAINS, ids=[repr(a) for a, _ in GAINS])
def test_calculate_gain_table(args: tuple, want: float) -> None:
    got = fwinit.calculate_gain(*args)
    assert type(got) is float and got.hex() == want.hex()


def test_calculate_gain_formulas() -> None:
    assert fwinit.calculate_gain("tanh") == 5.0 / 3
    assert fwinit.calculate_gain("relu") == math.sqrt(2.0)
    for slope in [0.01, 0.1, 0.2, 1, 3.5]:
        assert fwinit.calculate_gain("leaky_relu", slope) == math.sqrt(2.0 / (1 + slope ** 2))
    assert fwinit.calculate_gain("leaky_relu", param=0.2) == fwinit.calculate_gain("leaky_relu", 0.2)


# ---- bad input ---------------------------------------------------------------------

def _bad_cases(fw: ModuleType) -> list:
    """(id, thunk, exception, the function named in the message)."""
    t = _zeros(fw, (3, 4))
    v = _zeros(fw, (4,))
    lin = fw.Linear(2, 2, generator=fw.Generator(0))
    return [
        # not a tensor
        ("list", lambda: fwinit.uniform_([[0.0, 0.0]]), TypeError, "uniform_"),
        ("none", lambda: fwinit.zeros_(None), TypeError, "zeros_"),
        ("int", lambda: fwinit.ones_(3), TypeError, "ones_"),
        ("module", lambda: fwinit.kaiming_normal_(lin), TypeError, "kaiming_normal_"),
        ("const-list", lambda: fwinit.constant_([1.0], 1.0), TypeError, "constant_"),
        # non-numbers
        ("uniform-str", lambda: fwinit.uniform_(t, "0", 1.0), TypeError, "uniform_"),
        ("uniform-none", lambda: fwinit.uniform_(t, 0.0, None), TypeError, "uniform_"),
        ("normal-str", lambda: fwinit.normal_(t, std="1"), TypeError, "normal_"),
        ("normal-bool", lambda: fwinit.normal_(t, mean=True), TypeError, "normal_"),
        ("constant-str", lambda: fwinit.constant_(t, "1"), TypeError, "constant_"),
        ("constant-complex", lambda: fwinit.constant_(t, 1j), TypeError, "constant_"),
        ("xavier-gain-str", lambda: fwinit.xavier_uniform_(t, gain="1"), TypeError, "xavier_uniform_"),
        ("xavier-gain-none", lambda: fwinit.xavier_normal_(t, gain=None), TypeError, "xavier_normal_"),
        ("kaiming-a-str", lambda: fwinit.kaiming_uniform_(t, a="x"), TypeError, "kaiming_uniform_"),
        ("kaiming-a-str-relu", lambda: fwinit.kaiming_normal_(t, a="x", nonlinearity="relu"), TypeError,
         "kaiming_normal_"),
        # NaN, inf, out of range
        ("uniform-nan", lambda: fwinit.uniform_(t, NAN, 1.0), ValueError, "uniform_"),
        ("uniform-inf", lambda: fwinit.uniform_(t, 0.0, INF), ValueError, "uniform_"),
        ("uniform-reversed", lambda: fwinit.uniform_(t, 1.0, 0.0), ValueError, "uniform_"),
        ("uniform-span", lambda: fwinit.uniform_(t, -1e308, 1.7e308), ValueError, "uniform_"),
        ("uniform-huge-int", lambda: fwinit.uniform_(t, 0, 2**2000), ValueError, "uniform_"),
        ("normal-nan-mean", lambda: fwinit.normal_(t, NAN), ValueError, "normal_"),
        ("normal-neg-std", lambda: fwinit.normal_(t, 0.0, -1.0), ValueError, "normal_"),
        ("normal-inf-std", lambda: fwinit.normal_(t, 0.0, INF), ValueError, "normal_"),
        ("normal-overflow", lambda: fwinit.normal_(t, 1e308, 1e308), ValueError, "normal_"),
        ("constant-nan", lambda: fwinit.constant_(t, NAN), ValueError, "constant_"),
        ("constant-inf", lambda: fwinit.constant_(v, -INF), ValueError, "constant_"),
        ("xavier-gain-nan", lambda: fwinit.xavier_uniform_(t, gain=NAN), ValueError, "xavier_uniform_"),
        ("xavier-gain-neg", lambda: fwinit.xavier_normal_(t, gain=-1.0), ValueError, "xavier_normal_"),
        ("kaiming-a-nan", lambda: fwinit.kaiming_uniform_(t, a=NAN), ValueError, "kaiming_uniform_"),
        ("kaiming-a-inf-relu", lambda: fwinit.kaiming_uniform_(t, a=INF, nonlinearity="relu"), ValueError,
         "kaiming_uniform_"),
        # fans of a 1-D tensor
        ("xavier-u-1d", lambda: fwinit.xavier_uniform_(v), ValueError, "xavier_uniform_"),
        ("xavier-n-1d", lambda: fwinit.xavier_normal_(v), ValueError, "xavier_normal_"),
        ("kaiming-u-1d", lambda: fwinit.kaiming_uniform_(v), ValueError, "kaiming_uniform_"),
        ("kaiming-n-1d", lambda: fwinit.kaiming_normal_(v, mode="fan_out"), ValueError, "kaiming_normal_"),
        # modes and nonlinearities
        ("mode-unknown", lambda: fwinit.kaiming_uniform_(t, mode="fan_avg"), ValueError, "kaiming_uniform_"),
        ("mode-int", lambda: fwinit.kaiming_normal_(t, mode=1), TypeError, "kaiming_normal_"),
        ("nonlin-unknown", lambda: fwinit.kaiming_uniform_(t, nonlinearity="gelu"), ValueError,
         "kaiming_uniform_"),
        ("nonlin-none", lambda: fwinit.kaiming_normal_(t, nonlinearity=None), TypeError, "kaiming_normal_"),
        ("nonlin-case", lambda: fwinit.kaiming_normal_(t, nonlinearity="ReLU"), ValueError, "kaiming_normal_"),
    ]


GAIN_BAD = [
    ("unknown", ("softmax",), ValueError),
    ("empty", ("",), ValueError),
    ("not-str", (None,), TypeError),
    ("slope-str", ("leaky_relu", "0.1"), ValueError),
    ("slope-bool", ("leaky_relu", True), ValueError),
    ("slope-nan", ("leaky_relu", NAN), ValueError),
    ("slope-inf", ("leaky_relu", -INF), ValueError),
    ("slope-huge", ("leaky_relu", 10**400), ValueError),
]


@pytest.mark.parametrize("case", [c[0] for c in _bad_cases(load_backend("py"))])
def test_bad_input(fw: ModuleType, case: str) -> None:
    """A clear TypeError or ValueError naming the function; the tensor and the generator are untouched."""
    _, thunk, exc, who = {c[0]: c for c in _bad_cases(fw)}[case]
    fw.manual_seed(4)
    with pytest.raises(exc) as e:
        thunk()
    assert str(e.value).startswith(f"{who}: "), str(e.value)
    if case != "normal-overflow":  # the only failure found after drawing
        assert fw.default_generator.next_u64() == fw.Generator(4).next_u64()
    fw.manual_seed(0)


def test_failed_call_leaves_the_tensor_unchanged(fw: ModuleType) -> None:
    t = fwinit.normal_(_zeros(fw, (3, 4)), generator=fw.Generator(0))
    before = th(t)
    for thunk in [lambda: fwinit.normal_(t, 1e308, 1e308, generator=fw.Generator(0)),
                  lambda: fwinit.uniform_(t, 1.0, 0.0, generator=fw.Generator(0)),
                  lambda: fwinit.kaiming_uniform_(t, mode="bad", generator=fw.Generator(0))]:
        with pytest.raises(ValueError):
            thunk()
        assert th(t) == before


@pytest.mark.parametrize("case", GAIN_BAD, ids=[c[0] for c in GAIN_BAD])
def test_calculate_gain_bad_input(case: tuple) -> None:
    _, args, exc = case
    with pytest.raises(exc, match="^calculate_gain: "):
        fwinit.calculate_gain(*args)


def test_public_names_have_docstrings() -> None:
    names = ["uniform_", "normal_", "constant_", "zeros_", "ones_", "xavier_uniform_", "xavier_normal_",
             "kaiming_uniform_", "kaiming_normal_", "calculate_gain"]
    assert sorted(fwinit.__all__) == sorted(names)
    for n in names:
        f: Callable = getattr(fwinit, n)
        assert f.__doc__ and f.__annotations__
