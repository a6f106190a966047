"""Playground's data sets (circle, xor, gauss, spiral, moons, plane, gauss_regression) and
``data.features``: shapes, labels, coordinates, draw order, noise, both backends alike."""

from __future__ import annotations

import math
from types import ModuleType

import pytest

from conftest import load_backend

CLASSIFY = ("circle", "xor", "gauss", "spiral", "moons")
REGRESS = ("plane", "gauss_regression")


@pytest.mark.parametrize("name", CLASSIFY + REGRESS)
def test_shapes_labels_and_square(fw: ModuleType, name: str) -> None:
    for noise in (0.0, 0.5):
        x, y = getattr(fw.data, name)(301, noise=noise, generator=fw.Generator(1))
        assert isinstance(x, fw.Tensor) and x.shape == (301, 2) and len(y) == 301
        assert all(-6.0 <= v <= 6.0 for row in x.tolist() for v in row) or name == "gauss"
        if name in CLASSIFY:
            assert all(type(v) is int for v in y) and set(y) == {0, 1}
        else:
            assert all(type(v) is float and abs(v) <= 1.2 * (1.0 + noise) for v in y)


@pytest.mark.parametrize("name", CLASSIFY + REGRESS)
def test_same_bits_in_both_backends(name: str) -> None:
    py, rs = load_backend("py"), load_backend("rs")
    a = getattr(py.data, name)(200, noise=0.3, generator=py.Generator(5))
    b = getattr(rs.data, name)(200, noise=0.3, generator=rs.Generator(5))
    assert [[v.hex() for v in r] for r in a[0].tolist()] == [[v.hex() for v in r] for r in b[0].tolist()]
    assert [float(v).hex() for v in a[1]] == [float(v).hex() for v in b[1]]


def test_circle_draw_order_and_shape(fw: ModuleType) -> None:
    """Per point: r, angle, noise x, noise y; inner disk of radius 2.5 (class 1), ring 3.5 to 5 (class 0)."""
    x, y = fw.data.circle(7, noise=0.2, generator=fw.Generator(9))
    g = fw.Generator(9)
    for i, (row, label) in enumerate(zip(x.tolist(), y)):
        lo, hi = (0.0, 2.5) if i < 4 else (3.5, 5.0)
        r = g.uniform(lo, hi)
        angle = g.uniform(0.0, 2.0 * math.pi)
        px, py = r * math.sin(angle), r * math.cos(angle)
        nx, ny = g.uniform(-5.0, 5.0) * 0.2, g.uniform(-5.0, 5.0) * 0.2
        assert row == [px, py]
        assert label == (1 if math.sqrt((px + nx) ** 2 + (py + ny) ** 2) < 2.5 else 0)
    x, y = fw.data.circle(400, generator=fw.Generator(0))
    for row, label in zip(x.tolist(), y):
        d = math.hypot(*row)
        assert (d < 2.5 + 1e-12) if label == 1 else (3.5 - 1e-12 <= d <= 5.0 + 1e-12)


def test_xor_gauss_plane_labels(fw: ModuleType) -> None:
    x, y = fw.data.xor(300, generator=fw.Generator(2))
    assert all(abs(v) >= 0.3 for row in x.tolist() for v in row)
    assert all(label == (1 if a * b >= 0 else 0) for (a, b), label in zip(x.tolist(), y))
    x, y = fw.data.gauss(300, generator=fw.Generator(2))
    assert y[:150] == [1] * 150 and y[150:] == [0] * 150
    x, y = fw.data.plane(50, generator=fw.Generator(2))
    assert all(label == (a + b) / 10.0 for (a, b), label in zip(x.tolist(), y))


def test_spiral_any_number_of_classes(fw: ModuleType) -> None:
    x, y = fw.data.spiral(10, generator=fw.Generator(0), classes=3)
    assert y == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert x.tolist()[0] == [0.0, 0.0]
    with pytest.raises(ValueError, match="classes"):
        fw.data.spiral(10, classes=1)


def test_bad_arguments(fw: ModuleType) -> None:
    with pytest.raises(ValueError, match="data.circle: noise"):
        fw.data.circle(10, noise=1.5)
    with pytest.raises(TypeError, match="noise"):
        fw.data.circle(10, noise="0.1")
    with pytest.raises(ValueError):
        fw.data.xor(0)
    with pytest.raises(TypeError, match="Generator"):
        fw.data.moons(10, generator=object())


def test_default_generator_is_the_backends(fw: ModuleType) -> None:
    fw.manual_seed(4)
    a = fw.data.moons(20, noise=0.1)
    b = fw.data.moons(20, noise=0.1, generator=fw.Generator(4))
    assert a[0].tolist() == b[0].tolist() and a[1] == b[1]


def test_features(fw: ModuleType) -> None:
    x = fw.tensor([[1.0, 2.0], [-0.5, 3.0]])
    f = fw.data.features(x, ["x1", "x2", "x1^2", "x2^2", "x1*x2", "sin(x1)", "sin(x2)"])
    assert isinstance(f, fw.Tensor) and f.shape == (2, 7)
    assert f.tolist()[1] == [-0.5, 3.0, 0.25, 9.0, -1.5, math.sin(-0.5), math.sin(3.0)]
    assert fw.data.features(x, ["x2"]).tolist() == [[2.0], [3.0]]
    with pytest.raises(ValueError, match="no feature named 'x3'"):
        fw.data.features(x, ["x3"])
    with pytest.raises(ValueError, match="twice"):
        fw.data.features(x, ["x1", "x1"])
    with pytest.raises(TypeError, match="names"):
        fw.data.features(x, "x1")
