"""The members of the loss family one by one: MSELoss's value (mean over all elements, a
left fold, bit for bit) and gradient 2 (x - t) / N as the seed had them; the documented
values at the kinks; stability at large magnitudes; known values; every member's value
against torch's formula written out here; and the forms a target may take. The tests
derived from the table (gradients, bits, bad input, torch) are in test_loss_family.py."""

from __future__ import annotations

import math
import random
import re
from types import ModuleType
from typing import Any, Callable

import pytest
from fwtest import th

SEEDS = [0, 1, 2, 3, 4, 5]


def rand_matrix(rng: random.Random, rows: int, cols: int) -> list:
    return [[rng.uniform(-2.0, 2.0) for _ in range(cols)] for _ in range(rows)]


def ref_mse(x: list, t: list) -> float:
    """The documented order: d = x - t row-major; ((d0*d0 + d1*d1) + d2*d2) + ...; then / N."""
    acc = None
    n = 0
    for xr, tr in zip(x, t):
        for a, b in zip(xr, tr):
            d = a - b
            acc = d * d if acc is None else acc + d * d
            n += 1
    return acc / n


@pytest.mark.parametrize("seed", SEEDS)
def test_value_bits(fw: ModuleType, seed: int) -> None:
    rng = random.Random(seed)
    n, c = rng.randint(1, 12), rng.randint(1, 5)
    x, t = rand_matrix(rng, n, c), rand_matrix(rng, n, c)
    value = fw.MSELoss()(fw.tensor(x), fw.tensor(t))
    assert type(value) is float
    assert value.hex() == ref_mse(x, t).hex()


@pytest.mark.parametrize("seed", SEEDS)
def test_gradient_bits(fw: ModuleType, seed: int) -> None:
    rng = random.Random(10 + seed)
    n, c = rng.randint(1, 12), rng.randint(1, 5)
    x, t = rand_matrix(rng, n, c), rand_matrix(rng, n, c)
    loss = fw.MSELoss()
    loss(x, t)
    g = loss.backward()
    assert g.shape == (n, c)
    N = float(n * c)
    want = [[((2.0 * (a - b)) / N).hex() for a, b in zip(xr, tr)] for xr, tr in zip(x, t)]
    assert [[v.hex() for v in r] for r in g.tolist()] == want


@pytest.mark.parametrize("seed", SEEDS)
def test_gradient_finite_differences(fw: ModuleType, seed: int) -> None:
    rng = random.Random(20 + seed)
    n, c = rng.randint(1, 6), rng.randint(1, 4)
    x, t = rand_matrix(rng, n, c), rand_matrix(rng, n, c)
    loss = fw.MSELoss()
    loss(x, t)
    g = loss.backward().tolist()
    h = 1e-6
    for r in range(n):
        for k in range(c):
            xp = [list(q) for q in x]
            xm = [list(q) for q in x]
            xp[r][k] += h
            xm[r][k] -= h
            num = (loss(xp, t) - loss(xm, t)) / (2 * h)
            assert abs(g[r][k] - num) <= 1e-7 + 1e-6 * abs(num), (r, k, g[r][k], num)


def test_known_value(fw: ModuleType) -> None:
    loss = fw.MSELoss()
    assert loss([[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]]) == 7.5  # (1+4+9+16)/4
    assert loss.backward().tolist() == [[0.5, 1.0], [1.5, 2.0]]
    assert loss(fw.tensor([[0.5]]), fw.tensor([[0.5]])) == 0.0
    assert loss.backward().tolist() == [[0.0]]


def test_is_a_mean_not_a_sum(fw: ModuleType) -> None:
    loss = fw.MSELoss()
    x = [[1.0] * 4 for _ in range(10)]
    t = [[0.0] * 4 for _ in range(10)]
    assert loss(x, t) == 1.0
    assert all(v == 2.0 / 40.0 for r in loss.backward().tolist() for v in r)


def test_one_dimensional(fw: ModuleType) -> None:
    loss = fw.MSELoss()
    assert loss(fw.tensor([1.0, -1.0, 3.0]), [0.0, 0.0, 0.0]) == 11.0 / 3.0
    g = loss.backward()
    assert g.shape == (3,) and g.tolist() == [2.0 / 3.0, -2.0 / 3.0, 6.0 / 3.0]


def test_backward_uses_the_last_forward(fw: ModuleType) -> None:
    loss = fw.MSELoss()
    loss([[1.0, 1.0]], [[0.0, 0.0]])
    loss([[3.0]], [[1.0]])
    assert loss.backward().tolist() == [[4.0]]


def test_backward_before_forward(fw: ModuleType) -> None:
    with pytest.raises(RuntimeError):
        fw.MSELoss().backward()


@pytest.mark.parametrize("a, b", [((2, 3), (3, 2)), ((4, 2), (4, 3)), ((2,), (2, 1)), ((5, 1), (4, 1))],
                         ids=["transposed", "width", "1d-vs-2d", "count"])
def test_shape_mismatch_names_both_shapes(fw: ModuleType, a: tuple, b: tuple) -> None:
    def make(shape: tuple) -> object:
        return fw.tensor([0.5] * shape[0] if len(shape) == 1 else [[0.5] * shape[1] for _ in range(shape[0])])

    with pytest.raises(ValueError) as e:
        fw.MSELoss()(make(a), make(b))
    msg = str(e.value)
    assert str(a) in msg and str(b) in msg, msg
    assert re.search("mse", msg, re.IGNORECASE), msg


@pytest.mark.parametrize("bad, exc", [
    ([[1.0, float("nan")]], ValueError), ([[1.0, "a"]], TypeError), ([[1.0], [2.0, 3.0]], ValueError),
], ids=["nan", "str", "ragged"])
def test_bad_values(fw: ModuleType, bad: list, exc: type) -> None:
    with pytest.raises(exc):
        fw.MSELoss()(bad, [[0.0, 0.0]])
    with pytest.raises(exc):
        fw.MSELoss()([[0.0, 0.0]], bad)


# ---- the kinks: torch's subgradients -------------------------------------------------

def test_l1_at_zero_has_gradient_zero(fw: ModuleType) -> None:
    loss = fw.L1Loss(reduction="sum")
    assert loss([[1.0, -0.0, 0.0, 2.0]], [[1.0, 0.0, -0.0, 3.0]]) == 1.0
    assert th(loss.backward()) == [[z.hex() for z in (0.0, 0.0, 0.0, -1.0)]]


@pytest.mark.parametrize("delta", [1.0, 0.5, 2.5])
def test_huber_at_delta_uses_the_quadratic_branch(fw: ModuleType, delta: float) -> None:
    loss = fw.HuberLoss(delta=delta)
    x = [delta, -delta, 2.0 * delta, -3.0 * delta, 0.0]
    value = loss(x, [0.0] * 5)
    assert loss.backward().tolist() == [delta / 5, -delta / 5, delta / 5, -delta / 5, 0.0]
    # 0.5 d^2 at |d| = delta (the branch of z < delta is not taken; both give delta^2 / 2)
    assert math.isclose(value, (0.5 * delta * delta * 2 + delta * 1.5 * delta + delta * 2.5 * delta) / 5,
                        rel_tol=1e-15)


@pytest.mark.parametrize("beta", [1.0, 0.25])
def test_smooth_l1_at_beta(fw: ModuleType, beta: float) -> None:
    loss = fw.SmoothL1Loss(beta=beta, reduction="sum")
    assert loss([beta, -beta, 0.5 * beta], [0.0, 0.0, 0.0]) == 0.5 * beta + 0.5 * beta + 0.125 * beta
    assert loss.backward().tolist() == [1.0, -1.0, 0.5]


def test_smooth_l1_with_beta_zero_is_l1_bit_for_bit(fw: ModuleType) -> None:
    rng = random.Random(4)
    x = [[rng.choice([0.0, -0.0, 1.0, rng.uniform(-2, 2)]) for _ in range(5)] for _ in range(4)]
    t = [[rng.choice([0.0, -0.0, 1.0, rng.uniform(-2, 2)]) for _ in range(5)] for _ in range(4)]
    for reduction in ("mean", "sum"):
        a, b = fw.SmoothL1Loss(beta=0.0, reduction=reduction), fw.L1Loss(reduction=reduction)
        assert a(x, t).hex() == b(x, t).hex()
        assert th(a.backward()) == th(b.backward())


# ---- stability ---------------------------------------------------------------------

def test_cross_entropy_at_huge_logits_is_finite(fw: ModuleType) -> None:
    loss = fw.CrossEntropyLoss(reduction="sum")
    assert loss([[1e300, -1e300]], [0]) == 0.0
    assert loss.backward().tolist() == [[0.0, 0.0]]
    assert loss([[1e300, -1e300]], [1]) == 2e300
    assert loss.backward().tolist() == [[1.0, -1.0]]
    for ls in (0.1, 0.5, 1.0):
        smooth = fw.CrossEntropyLoss(label_smoothing=ls)
        v = smooth([[1e300, -1e300, 0.0], [-1e300, -1e300, 1e300]], [2, 0])
        assert math.isfinite(v) and v > 0.0
        assert all(math.isfinite(g) for r in smooth.backward().tolist() for g in r)
    # a class of probability 0 at a log-probability of -inf adds nothing (no 0 * inf)
    assert fw.CrossEntropyLoss()([[1e308, -1e308]], [[1.0, 0.0]]) == 0.0


def test_bce_with_logits_at_large_logits(fw: ModuleType) -> None:
    logits = [-1e4, -800.0, 800.0, 1e4]
    loss = fw.BCEWithLogitsLoss(reduction="sum")
    assert loss(logits, [1.0, 1.0, 0.0, 0.0]) == 1e4 + 800.0 + 800.0 + 1e4
    assert loss.backward().tolist() == [-1.0, -1.0, 1.0, 1.0]
    assert loss(logits, [0.0, 0.0, 1.0, 1.0]) == 0.0
    assert loss.backward().tolist() == [0.0, 0.0, 0.0, 0.0]
    assert loss(logits, [0.5] * 4) == 5000.0 + 400.0 + 400.0 + 5000.0
    assert loss([-1e300, 1e300], [0.25, 0.75]) == 0.25e300 + 0.25e300
    # exact where a naive log(1 - sigmoid) would round to 0
    assert loss([-40.0], [0.0]) == math.log1p(math.exp(-40.0))


def test_bce_clamps_its_logs_at_minus_100(fw: ModuleType) -> None:
    loss = fw.BCELoss(reduction="sum")
    assert loss([0.0, 1.0], [1.0, 0.0]) == 200.0
    assert loss.backward().tolist() == [-1e12, 1e12]  # (x - t) / max((1 - x) x, 1e-12)
    assert loss([0.0, 1.0, -0.0], [0.0, 1.0, 0.0]) == 0.0
    assert loss([1e-300], [1.0]) == 100.0  # log(1e-300) = -690.8, clamped
    assert loss([0.5], [0.5]) == math.log(2.0)


# ---- known values ------------------------------------------------------------------

def test_known_values(fw: ModuleType) -> None:
    assert fw.CrossEntropyLoss()([[0.0, 0.0], [3.0, 3.0]], [0, 1]) == math.log(2.0)
    assert fw.CrossEntropyLoss(label_smoothing=0.5)([[0.0, 0.0]], [1]) == math.log(2.0)
    assert math.isclose(fw.CrossEntropyLoss(label_smoothing=1.0)([[0.0, 0.0, 0.0]], [2]), math.log(3.0),
                        rel_tol=1e-15)
    nll = fw.NLLLoss()
    assert nll([[-1.0, -2.0], [-3.0, -4.0]], [1, 0]) == 2.5
    assert nll.backward().tolist() == [[0.0, -0.5], [-0.5, 0.0]]
    assert fw.HuberLoss()([3.0], [0.0]) == 2.5
    assert fw.HuberLoss(delta=2.0)([1.0], [0.0]) == 0.5
    assert fw.SmoothL1Loss(beta=2.0)([1.0], [0.0]) == 0.25
    assert fw.SmoothL1Loss()([3.0], [0.0]) == 2.5
    assert fw.L1Loss()([[1.0, -2.0]], [[0.0, 0.0]]) == 1.5
    assert fw.MSELoss(reduction="sum")([[1.0, -2.0]], [[0.0, 0.0]]) == 5.0
    ce = fw.CrossEntropyLoss(reduction="sum")
    ce([[0.0, math.log(3.0)]], [1])
    g = ce.backward().tolist()[0]
    assert math.isclose(g[0], 0.25, rel_tol=1e-15) and math.isclose(g[1], -0.25, rel_tol=1e-15)


def test_nll_of_log_softmax_is_cross_entropy(fw: ModuleType) -> None:
    x = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]]
    logp = fw.LogSoftmax(dim=1)(x)
    assert math.isclose(fw.NLLLoss()(logp, [2, 0]), fw.CrossEntropyLoss()(x, [2, 0]), rel_tol=1e-15)


def test_index_and_one_hot_targets_give_the_same_bits(fw: ModuleType) -> None:
    rng = random.Random(2)
    x = [[rng.uniform(-5.0, 5.0) for _ in range(4)] for _ in range(6)]
    y = [rng.randrange(4) for _ in range(6)]
    for ls in (0.0, 0.3):
        a, b = fw.CrossEntropyLoss(ls), fw.CrossEntropyLoss(ls)
        assert a(x, y).hex() == b(x, fw.data.one_hot(y, 4)).hex()
        assert th(a.backward()) == th(b.backward())


def test_targets_in_every_form(fw: ModuleType) -> None:
    """Class indices as a list or a tuple; probabilities as nested lists, tuples or tensors."""
    x = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]]
    p = [[0.25, 0.25, 0.5], [1.0, 0.0, 0.0]]
    loss = fw.CrossEntropyLoss()
    want = loss(x, [2, 0])
    assert loss(fw.tensor(x), (2, 0)) == want
    assert loss(x, [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]) == want
    want_p = loss(x, p)
    assert loss(x, fw.tensor(p)) == want_p == loss(x, tuple(tuple(r) for r in p))
    assert fw.NLLLoss()(x, (1, 1)) == 0.375


def test_reduction_and_arguments(fw: ModuleType) -> None:
    assert fw.MSELoss().reduction == "mean"
    assert repr(fw.MSELoss()) == "MSELoss(reduction='mean')"
    assert repr(fw.HuberLoss(0.5, "sum")) == "HuberLoss(delta=0.5, reduction='sum')"
    assert fw.CrossEntropyLoss(label_smoothing=1).label_smoothing == 1.0
    with pytest.raises(ValueError, match="reduction must be 'mean' or 'sum', got 'none'"):
        fw.L1Loss(reduction="none")
    with pytest.raises(TypeError, match="BCELoss: reduction must be a str, got NoneType"):
        fw.BCELoss(reduction=None)
    with pytest.raises(ValueError, match="HuberLoss: delta must be positive, got 0.0"):
        fw.HuberLoss(delta=0.0)
    with pytest.raises(ValueError, match="SmoothL1Loss: beta must be non-negative, got -1.0"):
        fw.SmoothL1Loss(beta=-1)
    with pytest.raises(ValueError, match=r"label_smoothing must be between 0.0 and 1.0, got 1.5"):
        fw.CrossEntropyLoss(label_smoothing=1.5)


def test_bad_targets_get_clear_messages(fw: ModuleType) -> None:
    x = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]]
    with pytest.raises(ValueError, match=re.escape(
            "CrossEntropyLoss: class index 3 at position 1 is out of range for input shape (2, 3) (3 classes)")):
        fw.CrossEntropyLoss()(x, [0, 3])
    with pytest.raises(TypeError, match=re.escape("NLLLoss: class indices must be ints, got float at position 0")):
        fw.NLLLoss()(x, [1.0, 2])
    with pytest.raises(ValueError, match=re.escape("NLLLoss: input shape (2, 3) needs 2 class indices, got 3")):
        fw.NLLLoss()(x, [0, 1, 2])
    with pytest.raises(ValueError, match=re.escape("expected an input of shape (N, C), got shape (3,)")):
        fw.CrossEntropyLoss()([0.5, 1.0, 2.0], [0])
    with pytest.raises(ValueError, match=re.escape(
            "CrossEntropyLoss: target values must be probabilities in [0, 1], got 1.5 at (1, 2) of shape (2, 3)")):
        fw.CrossEntropyLoss()(x, [[0.0, 0.0, 1.0], [0.0, -0.0, 1.5]])
    with pytest.raises(ValueError, match=re.escape(
            "BCELoss: input values must be probabilities in [0, 1], got -0.5 at (1,) of shape (2,)")):
        fw.BCELoss()([0.5, -0.5], [0.0, 1.0])
    with pytest.raises(ValueError, match=re.escape("BCEWithLogitsLoss: target values must be probabilities")):
        fw.BCEWithLogitsLoss()([0.5, -0.5], [0.0, 2.0])
    assert fw.BCEWithLogitsLoss()([50.0, -50.0], [1.0, 0.0]) < 1e-20  # any logit is fine


# ---- every member against torch's formula, written out ----------------------------

def _logsumexp(row: list) -> float:
    m = max(row)
    return m + math.log(math.fsum(math.exp(v - m) for v in row))


def _ce(x: list, t: Any, ls: float = 0.0) -> list:
    """torch: (1 - ls) * nll + (ls / C) * sum(-logp) for class indices; for probabilities
    -sum(q logp) with q = p (1 - ls) + ls / C."""
    out = []
    for r, row in enumerate(x):
        logp = [v - _logsumexp(row) for v in row]
        if isinstance(t[r], int):
            out.append((1.0 - ls) * -logp[t[r]] + ls / len(row) * math.fsum(-v for v in logp))
        else:
            out.append(-math.fsum((p * (1.0 - ls) + ls / len(row)) * v for p, v in zip(t[r], logp)))
    return out


def _elementwise(f: Callable[[float, float], float]) -> Callable:
    return lambda x, t: [f(a, b) for xr, tr in zip(x, t) for a, b in zip(xr, tr)]


REFERENCE: dict = {
    "MSELoss": lambda kw: _elementwise(lambda a, b: (a - b) ** 2),
    "L1Loss": lambda kw: _elementwise(lambda a, b: abs(a - b)),
    "HuberLoss": lambda kw: _elementwise(
        lambda a, b, d=kw.get("delta", 1.0): 0.5 * (a - b) ** 2 if abs(a - b) < d else d * (abs(a - b) - 0.5 * d)),
    "SmoothL1Loss": lambda kw: _elementwise(
        lambda a, b, e=kw.get("beta", 1.0): 0.5 * (a - b) ** 2 / e if abs(a - b) < e else abs(a - b) - 0.5 * e),
    "CrossEntropyLoss": lambda kw: lambda x, t: _ce(x, t, kw.get("label_smoothing", 0.0)),
    "NLLLoss": lambda kw: lambda x, t: [-row[k] for row, k in zip(x, t)],
    "BCELoss": lambda kw: _elementwise(
        lambda a, b: -(b * max(math.log(a), -100.0) + (1.0 - b) * max(math.log(1.0 - a), -100.0))),
    "BCEWithLogitsLoss": lambda kw: _elementwise(
        lambda a, b: -(b * math.log(1.0 / (1.0 + math.exp(-a))) + (1.0 - b) * math.log(1.0 / (1.0 + math.exp(a))))),
}


OTHER_ARGUMENTS = {"delta": [0.7], "beta": [0.3, 0.0], "label_smoothing": [0.2, 1.0]}


def _reference_cases() -> list:
    import inspect

    import pyfw
    out = []
    for name in sorted(REFERENCE):
        out.append((name, {}))
        for p in inspect.signature(pyfw.LOSSES[name]).parameters:
            out += [(name, {p: v}) for v in OTHER_ARGUMENTS.get(p, [])]
    return out


@pytest.mark.parametrize("name, own", _reference_cases())
def test_value_matches_the_formula_written_out(fw: ModuleType, name: str, own: dict) -> None:
    cls = fw.LOSSES[name]
    rng = random.Random(9)
    n, c = 5, 3
    x = [[rng.uniform(-3.0, 3.0) for _ in range(c)] for _ in range(n)]
    if name == "BCELoss":
        x = [[rng.uniform(0.01, 0.99) for _ in range(c)] for _ in range(n)]
    if name in ("CrossEntropyLoss", "NLLLoss"):
        targets: list = [[rng.randrange(c) for _ in range(n)]]
        if name == "CrossEntropyLoss":
            targets.append([[rng.uniform(0.0, 1.0) for _ in range(c)] for _ in range(n)])
    elif name.startswith("BCE"):
        targets = [[[rng.uniform(0.0, 1.0) for _ in range(c)] for _ in range(n)]]
    else:
        targets = [[[rng.uniform(-3.0, 3.0) for _ in range(c)] for _ in range(n)]]
    for t in targets:
        terms = REFERENCE[name](own)(x, t)
        for reduction, want in (("sum", math.fsum(terms)), ("mean", math.fsum(terms) / len(terms))):
            got = cls(**own, reduction=reduction)(x, t)
            assert math.isclose(got, want, rel_tol=1e-13), (reduction, got, want)
