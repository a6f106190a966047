"""MSELoss: the value (mean over all elements, a left fold, bit for bit), its gradient
2 (x - t) / N, a finite-difference check, and bad input."""

from __future__ import annotations

import random
import re
from types import ModuleType

import pytest

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
