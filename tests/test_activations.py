"""The activation family, tested from its table: every member of ``ACTIVATIONS`` gets
a finite-difference gradient check, a bit-for-bit cross-check between the backends
(also inside a native ``Sequential``), its bad inputs, and its numerical stability.
A new member is tested here without new test code."""

from __future__ import annotations

import inspect
import math
import random
import zlib
from types import ModuleType
from typing import Any

import pytest
from conftest import load_backend
from fwtest import hexes, th
from test_modules import assert_grad_close, dot, numeric_grad

import pyfw

NAMES = list(pyfw.ACTIVATIONS)


def variants(name: str) -> list:
    """Constructor keyword sets for member ``name``: its defaults, then other values
    derived from each default (floats: ``2.5 d + 0.5`` and ``0.5 d - 0.25``, increasing maps
    that keep the order between two arguments; ints: 0 and -1)."""
    params = inspect.signature(pyfw.ACTIVATIONS[name]).parameters.values()
    out = [{}]
    if params:
        out.append({p.name: (2.5 * p.default + 0.5 if isinstance(p.default, float) else 0) for p in params})
        out.append({p.name: (0.5 * p.default - 0.25 if isinstance(p.default, float) else -1) for p in params})
    return out


CASES = [(name, kw) for name in NAMES for kw in variants(name)]
IDS = [f"{name}({','.join(f'{k}={v}' for k, v in kw.items())})" for name, kw in CASES]


def make(fw: ModuleType, name: str, kw: dict) -> Any:
    return fw.ACTIVATIONS[name](**kw)


def away_from_kinks(rng: random.Random, rows: int, cols: int) -> list:
    """Entries in [-3, -0.05] or [0.05, 3], away from the kink at 0. A member with
    kinks elsewhere (Hardtanh) has a chance of about 1e-6 per entry of one within the
    finite-difference step; the seeds are fixed, so a run that passes always passes."""
    return [[rng.choice((-1.0, 1.0)) * rng.uniform(0.05, 3.0) for _ in range(cols)] for _ in range(rows)]


SPECIAL = [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, -1e-310, 1e-300, -1e300, 1e300,
           700.0, -700.0, 800.0, -800.0, 1e10, -1e10, 20.0, 20.000000000000004, 0.5, -0.5]


def mixed(rng: random.Random, rows: int, cols: int) -> list:
    """Random entries with zeros of both signs, subnormals and large magnitudes mixed in."""
    return [[rng.choice(SPECIAL) if rng.random() < 0.4 else rng.uniform(-4.0, 4.0) for _ in range(cols)]
            for _ in range(rows)]


# ---- the table ---------------------------------------------------------------------

def test_both_backends_list_the_same_members() -> None:
    rs = load_backend("rs")
    assert list(rs.ACTIVATIONS) == NAMES
    for name in NAMES:
        assert name in pyfw.__all__ and name in rs.__all__, name
        assert getattr(pyfw, name) is pyfw.ACTIVATIONS[name]
        assert getattr(rs, name) is rs.ACTIVATIONS[name]


@pytest.mark.parametrize("name", NAMES)
def test_signatures_and_reprs_match(name: str) -> None:
    rs = load_backend("rs")

    def params(f: Any) -> list:
        return [(p.name, p.kind, p.default) for p in inspect.signature(f).parameters.values()]

    assert params(pyfw.ACTIVATIONS[name]) == params(rs.ACTIVATIONS[name])
    for kw in variants(name):
        a, b = make(pyfw, name, kw), make(rs, name, kw)
        assert repr(a) == repr(b)
        for k, v in kw.items():
            assert getattr(a, k) == getattr(b, k) == v


# ---- gradients -------------------------------------------------------------------

@pytest.mark.parametrize("name, kw", CASES, ids=IDS)
def test_gradient_matches_finite_differences(fw: ModuleType, name: str, kw: dict) -> None:
    rng = random.Random(zlib.crc32(name.encode()))
    x = away_from_kinks(rng, 4, 5)
    c = [[rng.uniform(-1.0, 1.0) for _ in range(5)] for _ in range(4)]
    m = make(fw, name, kw)
    m(fw.tensor(x))
    g = m.backward(fw.tensor(c)).tolist()
    numeric = numeric_grad(lambda v: dot(make(fw, name, kw)(fw.tensor(v)).tolist(), c), x)
    assert_grad_close(g, numeric, f"{name} dL/dx")


# ---- bit-identity ----------------------------------------------------------------

@pytest.mark.parametrize("name, kw", CASES, ids=IDS)
def test_kernels_are_bit_identical(name: str, kw: dict) -> None:
    rs = load_backend("rs")
    rng = random.Random(7)
    for rows, cols in [(1, 1), (3, 7), (6, 2), (9, 33), (None, 5)]:
        x, g = mixed(rng, rows or 1, cols), mixed(rng, rows or 1, cols)
        if rows is None:  # 1-D input; a member may refuse it, then both must say the same
            x, g = x[0], g[0]

        def run(fw: ModuleType) -> Any:
            m = make(fw, name, kw)
            y = m(fw.tensor(x))
            return th(y), th(m.backward(fw.tensor(g)))
        assert outcome(lambda: run(pyfw)) == outcome(lambda: run(rs)), (rows, cols)
        try:
            got = run(pyfw)
        except ValueError:
            continue
        assert got == run(rs), (rows, cols)


@pytest.mark.parametrize("name, kw", CASES, ids=IDS)
def test_inside_a_native_sequential(name: str, kw: dict) -> None:
    """Forward, backward and the parameter gradients of Linear-member-Linear, bit for bit;
    the pyfw_rs Sequential runs the member natively."""
    rs = load_backend("rs")
    rng = random.Random(3)
    x = [[rng.uniform(-2.0, 2.0) for _ in range(3)] for _ in range(5)]
    g = [[rng.uniform(-1.0, 1.0) for _ in range(2)] for _ in range(5)]
    out = []
    for fw in (pyfw, rs):
        gen = fw.Generator(11)
        model = fw.Sequential(fw.Linear(3, 6, generator=gen), make(fw, name, kw), fw.Linear(6, 2, generator=gen))
        y = model(x)
        dx = model.backward(g)
        out.append((th(y), th(dx), [th(gr) for _, gr in model.param()]))
    assert out[0] == out[1]


def test_a_subclass_that_overrides_nothing_runs_natively_with_the_same_bits() -> None:
    rs = load_backend("rs")
    out = []
    for fw in (pyfw, rs):
        class Mine(fw.Tanh):
            pass
        gen = fw.Generator(1)
        model = fw.Sequential(fw.Linear(2, 3, generator=gen), Mine(), fw.Linear(3, 1, generator=gen))
        out.append((th(model([[0.5, -1.0]])), th(model.backward([[1.0]]))))
        assert repr(Mine()) == "Mine()"
    assert out[0] == out[1]


# ---- numerical stability -----------------------------------------------------------

@pytest.mark.parametrize("name, kw", CASES, ids=IDS)
def test_no_nan_at_large_magnitudes(fw: ModuleType, name: str, kw: dict) -> None:
    x = [[-1e300, -800.0, -0.0, 0.0, 800.0, 1e300], [-1e308, 1e308, 5e-324, -1.0, 1.0, 30.0]]
    m = make(fw, name, kw)
    y = m(fw.tensor(x)).tolist()
    dx = m.backward(fw.tensor([[1.0] * 6, [-0.5] * 6])).tolist()
    assert not any(math.isnan(v) for r in y + dx for v in r), (y, dx)


def test_documented_values_at_the_extremes(fw: ModuleType) -> None:
    assert fw.Sigmoid()([-800.0, 800.0]).tolist() == [0.0, 1.0]
    assert fw.Softmax()([[1e300, -1e300]]).tolist() == [[1.0, 0.0]]
    assert fw.LogSoftmax()([[1e300, -1e300]]).tolist() == [[0.0, -2e300]]
    assert fw.Softmax(dim=0)([[0.0, 1.0], [0.0, 1.0]]).tolist() == [[0.5, 0.5], [0.5, 0.5]]
    assert fw.Softplus()([100.0]).tolist() == [100.0]  # past the threshold, y = x
    assert fw.Softplus()([-800.0]).tolist() == [0.0]
    assert fw.ReLU()([-0.0, 0.0, 2.0]).tolist() == [0.0, 0.0, 2.0]
    assert fw.LeakyReLU(0.5)([-2.0]).tolist() == [-1.0]
    assert fw.GELU()([0.0]).tolist() == [0.0]
    assert fw.Identity()([[1.5, -2.0]]).tolist() == [[1.5, -2.0]]


# ---- bad input ---------------------------------------------------------------------

def bad_cases(name: str) -> list:
    """(constructor kwargs, exception) for every argument of member ``name``."""
    out = []
    for p in inspect.signature(pyfw.ACTIVATIONS[name]).parameters.values():
        out += [({p.name: "x"}, TypeError), ({p.name: True}, TypeError), ({p.name: None}, TypeError)]
        if isinstance(p.default, float):
            out += [({p.name: math.nan}, ValueError), ({p.name: math.inf}, ValueError),
                    ({p.name: 10 ** 400}, ValueError)]
        else:
            out += [({p.name: 1.5}, TypeError)]
    return out


def outcome(f: Any) -> Any:
    try:
        f()
    except Exception as e:  # noqa: BLE001 - compared across backends
        return type(e), str(e)
    return None


@pytest.mark.parametrize("name", NAMES)
def test_bad_arguments_get_the_same_error_in_both_backends(name: str) -> None:
    rs = load_backend("rs")
    for kw, exc in bad_cases(name):
        got = outcome(lambda: make(pyfw, name, kw))
        assert got is not None and got[0] is exc, (kw, got)
        assert outcome(lambda: make(rs, name, kw)) == got, kw


@pytest.mark.parametrize("name", NAMES)
def test_bad_use_gets_the_same_error_in_both_backends(name: str) -> None:
    rs = load_backend("rs")
    uses = {
        "backward first": lambda fw, m: m.backward(fw.tensor([[1.0, 2.0]])),
        "wrong gradient shape": lambda fw, m: (m(fw.tensor([[1.0, 2.0]])), m.backward(fw.tensor([1.0, 2.0]))),
        "a string": lambda fw, m: m("x"),
        "ragged": lambda fw, m: m([[1.0], [1.0, 2.0]]),
        "nan": lambda fw, m: m([[math.nan, 1.0]]),
        "a gradient of the other backend, of the wrong shape":
            lambda fw, m: (m([[1.0]]), m.backward((rs if fw is pyfw else pyfw).tensor([[1.0, 2.0]]))),
        "a dim that does not fit in 64 bits": lambda fw, m: fw.Softmax(dim=2 ** 70),
    }
    for what, use in uses.items():
        got = [outcome(lambda: use(fw, make(fw, name, {}))) for fw in (pyfw, rs)]
        assert got[0] is not None and got[0][0] in (TypeError, ValueError, RuntimeError), (what, got[0])
        assert got[0] == got[1], what


def test_dim_out_of_range_and_zero_beta(fw: ModuleType) -> None:
    with pytest.raises(ValueError, match=r"Softmax: dim 1 is out of range for a 1-D input of shape \(3,\)"):
        fw.Softmax()([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="LogSoftmax: dim -3"):
        fw.LogSoftmax(dim=-3)([[1.0, 2.0]])
    assert fw.Softmax(dim=0)([1.0, 1.0]).tolist() == [0.5, 0.5]
    with pytest.raises(ValueError, match="Softplus: beta must be nonzero"):
        fw.Softplus(beta=0.0)
    with pytest.raises(TypeError, match="LeakyReLU: negative_slope must be a real number, got str"):
        fw.LeakyReLU("0.1")


def test_hexes_helper_sees_the_sign_of_zero() -> None:
    assert hexes([-0.0]) != hexes([0.0])


@pytest.mark.parametrize("name", NAMES)
def test_a_subclass_passes_its_arguments_to_super(name: str) -> None:
    """A subclass with a constructor of its own hands the member's arguments to
    ``super().__init__``; both backends then compute with them."""
    rs = load_backend("rs")
    kw = variants(name)[-1]
    out = []
    for fw in (pyfw, rs):
        class Mine(fw.ACTIVATIONS[name]):
            def __init__(self, tag: str) -> None:
                super().__init__(**kw)
                self.tag = tag
        m = Mine("t")
        assert m.tag == "t" and repr(m).startswith("Mine(")
        for k, v in kw.items():
            assert getattr(m, k) == v
        out.append((repr(m), th(m(fw.tensor([[0.3, -1.2, 2.0]]))), outcome(lambda: Mine("u").backward([[1.0]]))))
    assert out[0] == out[1]
    assert out[0][2][1].startswith("Mine: backward called before forward")


@pytest.mark.parametrize("name", [n for n in NAMES if variants(n)[1:]])
def test_arguments_are_read_only(name: str) -> None:
    rs = load_backend("rs")
    for fw in (pyfw, rs):
        m = make(fw, name, {})
        arg = next(iter(variants(name)[1]))
        with pytest.raises(AttributeError):
            setattr(m, arg, getattr(m, arg))
