"""Data: the disk task (shapes, labels, draw order, determinism) and one_hot;
metrics: argmax_rows and error_rate."""

from __future__ import annotations

import math
from types import ModuleType

import pytest

import pyfw

R2 = 1.0 / (2.0 * math.pi)


def test_disk_shapes_and_labels(fw: ModuleType) -> None:
    x, y = fw.data.disk(1000, generator=fw.Generator(0))
    assert isinstance(x, fw.Tensor) and x.shape == (1000, 2)
    assert isinstance(y, list) and len(y) == 1000
    assert all(type(v) is int and v in (0, 1) for v in y)
    assert all(0.0 <= v < 1.0 for r in x.tolist() for v in r)


def test_disk_draw_order_and_label_formula(fw: ModuleType) -> None:
    """Point k is (random(), random()) from the generator; label 1 iff dx*dx + dy*dy < 1/(2 pi)."""
    x, y = fw.data.disk(500, generator=fw.Generator(3))
    g = fw.Generator(3)
    for (a, b), label in zip(x.tolist(), y):
        u, v = g.random(), g.random()
        assert (a.hex(), b.hex()) == (u.hex(), v.hex())
        dx, dy = u - 0.5, v - 0.5
        assert label == (1 if dx * dx + dy * dy < R2 else 0)
    g2 = fw.Generator(3)
    fw.data.disk(500, generator=g2)
    g3 = fw.Generator(3)
    for _ in range(1000):
        g3.next_u64()
    assert g2.next_u64() == g3.next_u64(), "disk(n) consumes exactly 2n draws"


def test_disk_is_half_inside(fw: ModuleType) -> None:
    _, y = fw.data.disk(10000, generator=fw.Generator(1))
    frac = sum(y) / len(y)
    assert 0.45 <= frac <= 0.55


def test_disk_deterministic(fw: ModuleType) -> None:
    a = fw.data.disk(200, generator=fw.Generator(7))
    b = fw.data.disk(200, generator=fw.Generator(7))
    c = fw.data.disk(200, generator=fw.Generator(8))
    assert a[0].tolist() == b[0].tolist() and a[1] == b[1]
    assert a[0].tolist() != c[0].tolist()


def test_disk_default_generator(fw: ModuleType) -> None:
    fw.manual_seed(4)
    a = fw.data.disk(50)
    b = fw.data.disk(50, generator=fw.Generator(4))
    assert a[0].tolist() == b[0].tolist() and a[1] == b[1]


def test_disk_single_point(fw: ModuleType) -> None:
    x, y = fw.data.disk(1, generator=fw.Generator(0))
    assert x.shape == (1, 2) and len(y) == 1


@pytest.mark.parametrize("n, exc", [(0, ValueError), (-1, ValueError), (2.5, TypeError), ("10", TypeError),
                                    (True, TypeError)], ids=["0", "-1", "2.5", "str", "bool"])
def test_disk_bad_count(fw: ModuleType, n: object, exc: type) -> None:
    with pytest.raises(exc):
        fw.data.disk(n, generator=fw.Generator(0))


# ---- one_hot ------------------------------------------------------------------------

def test_one_hot_values(fw: ModuleType) -> None:
    t = fw.data.one_hot([0, 1, 1, 0, 2], 3)
    assert isinstance(t, fw.Tensor) and t.shape == (5, 3)
    assert t.tolist() == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    assert all(type(v) is float for r in t.tolist() for v in r)


def test_one_hot_disk_labels(fw: ModuleType) -> None:
    _, y = fw.data.disk(100, generator=fw.Generator(0))
    t = fw.data.one_hot(y, 2).tolist()
    assert [r.index(1.0) for r in t] == y and all(sorted(r) == [0.0, 1.0] for r in t)


def test_one_hot_default_class_count_like_torch(fw: ModuleType) -> None:
    assert fw.data.one_hot([0, 3]).shape == (2, 4)
    assert fw.data.one_hot((1, 0), 2).tolist() == [[0.0, 1.0], [1.0, 0.0]]


@pytest.mark.parametrize("labels, k, exc", [
    ([0, 2], 2, ValueError),
    ([0, -1], 2, ValueError),
    ([-1], -1, ValueError),
    ([0, 1.0], 2, TypeError),
    ([0, "1"], 2, TypeError),
    ([0, True], 2, TypeError),
    ([0, None], 2, TypeError),
    ([], 2, ValueError),
    ([0, 1], 0, ValueError),
    ([0, 1], -2, ValueError),
    ([0, 1], 2.0, TypeError),
    (5, 2, TypeError),
], ids=["too-big", "negative", "negative-inferred", "float", "str", "bool", "none", "empty",
        "k0", "k-2", "k-float", "not-a-list"])
def test_one_hot_bad_input(fw: ModuleType, labels: object, k: object, exc: type) -> None:
    with pytest.raises(exc):
        fw.data.one_hot(labels, k)


# ---- metrics (pure Python, shared by both backends) ---------------------------------------

def test_argmax_rows_lists() -> None:
    assert pyfw.argmax_rows([[0.1, 0.9], [0.8, 0.2], [-1.0, -2.0, -0.5]]) == [1, 0, 2]


def test_argmax_rows_ties_take_the_lowest_index() -> None:
    assert pyfw.argmax_rows([[0.5, 0.5], [1.0, 1.0, 1.0], [0.0, 2.0, 2.0], [-0.0, 0.0]]) == [0, 0, 1, 0]


def test_argmax_rows_tensor(fw: ModuleType) -> None:
    assert pyfw.metrics.argmax_rows(fw.tensor([[0.1, 0.9], [0.8, 0.2]])) == [1, 0]


@pytest.mark.parametrize("bad", [[], [[]], [1.0, 2.0], [[1.0], []]], ids=["empty", "empty-row", "flat", "one-empty"])
def test_argmax_rows_bad(bad: list) -> None:
    with pytest.raises(ValueError):
        pyfw.argmax_rows(bad)


def test_argmax_rows_1d_tensor_is_rejected(fw: ModuleType) -> None:
    with pytest.raises(ValueError):
        pyfw.argmax_rows(fw.tensor([1.0, 2.0]))


def test_error_rate(fw: ModuleType) -> None:
    out = fw.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    assert pyfw.error_rate(out, [0, 1, 0, 1]) == 0.0
    assert pyfw.error_rate(out, [1, 1, 0, 1]) == 0.25
    assert pyfw.error_rate(out, [1, 0, 1, 0]) == 1.0
    assert pyfw.error_rate(out.tolist(), (0, 0, 0, 0)) == 0.5
    assert type(pyfw.error_rate(out, [0, 1, 0, 1])) is float


def test_error_rate_one_hot_targets(fw: ModuleType) -> None:
    out = fw.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    assert pyfw.error_rate(out, fw.data.one_hot([0, 0, 0], 2)) == 1 / 3
    assert pyfw.error_rate(out, [[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]) == 1 / 3


def test_error_rate_ties_count_as_class_zero() -> None:
    assert pyfw.error_rate([[0.5, 0.5]], [0]) == 0.0
    assert pyfw.error_rate([[0.5, 0.5]], [1]) == 1.0


def test_error_rate_exported_by_backend(fw: ModuleType) -> None:
    assert fw.error_rate([[0.1, 0.9]], [1]) == 0.0
    assert fw.argmax_rows([[0.1, 0.9]]) == [1]


@pytest.mark.parametrize("labels, exc", [([0, 1], ValueError), ([0, 1, 0, 1], ValueError), ([], ValueError),
                                         ([0, 1.0, 0], TypeError), ([0, "1", 0], TypeError)],
                         ids=["short", "long", "empty", "float", "str"])
def test_error_rate_bad_labels(labels: list, exc: type) -> None:
    with pytest.raises(exc):
        pyfw.error_rate([[0.1, 0.9], [0.8, 0.2], [0.5, 0.5]], labels)
