"""numpy interoperation: ``np.asarray(t)`` gives the float64 array in both backends, and
``fw.tensor(ndarray)`` reads arrays of any dtype and layout; pyfw_rs reads native float64
arrays from their bytes, with no Python-level loop. numpy is optional: these tests skip
without it, and pyfw never imports it unless numpy itself asks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
VALUES = [[5e-324, -0.0, 1.7976931348623157e308], [0.1, -2.5, 3.0]]


def np() -> Any:
    return pytest.importorskip("numpy")


def bits(rows: Any) -> list:
    return [[v.hex() for v in r] for r in rows]


def test_pyfw_does_not_import_numpy() -> None:
    code = ("import sys, pyfw; t = pyfw.tensor([[1.0, 2.0]]); t.tolist(); repr(t); "
            "pyfw.Linear(2, 1)(t); print('numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=str(ROOT), capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_asarray_gives_the_float64_array(fw: ModuleType) -> None:
    numpy = np()
    t = fw.tensor(VALUES)
    a = numpy.asarray(t)
    assert a.dtype == numpy.float64 and a.shape == (2, 3)
    assert bits(a.tolist()) == bits(VALUES)
    a[0, 0] = 7.0  # a copy: the tensor keeps its values
    assert t.tolist()[0][0] == 5e-324
    v = numpy.asarray(fw.tensor([1.5, -2.0]))
    assert v.shape == (2,) and v.tolist() == [1.5, -2.0]
    assert numpy.asarray(fw.tensor([[0.5]]), dtype=numpy.float32).dtype == numpy.float32
    assert numpy.array(t).tolist() == numpy.asarray(t).tolist()
    with pytest.raises(ValueError, match="always a copy"):
        t.__array__(copy=False)
    assert t.__array__(copy=True).dtype == numpy.float64


def test_tensor_of_arrays_matches_across_backends(fw: ModuleType) -> None:
    numpy = np()
    base = numpy.array(VALUES)
    arrays = {
        "c-2d": base,
        "c-1d": base[1],
        "fortran": numpy.asfortranarray(base),
        "strided": numpy.array([[1.0, 2.0, 3.0, 4.0]] * 3)[:, ::2],
        "transposed": base.T,
        "big-endian": base.astype(">f8"),
        "float32": numpy.array([[0.1, 0.2]], dtype=numpy.float32),
        "int64": numpy.array([[1, 2], [3, 4]]),
        "column": base[:, :1],
    }
    for name, arr in arrays.items():
        t = fw.tensor(arr)
        assert t.shape == arr.shape, name
        assert [v.hex() for v in numpy.ravel(numpy.asarray(t)).tolist()] == \
            [float(v).hex() for v in numpy.ravel(arr).tolist()], name


@pytest.mark.parametrize("arr, exc", [
    ("nan", ValueError), ("inf", ValueError), ("empty", ValueError), ("0d", TypeError),
    ("empty-rows", ValueError), ("object", TypeError),
])
def test_bad_arrays_get_the_same_errors(arr: str, exc: type) -> None:
    numpy = np()
    import pyfw
    rs = pytest.importorskip("pyfw_rs")
    make = {
        "nan": lambda: numpy.array([[1.0, numpy.nan]]),
        "inf": lambda: numpy.array([1.0, -numpy.inf]),
        "empty": lambda: numpy.zeros(0),
        "0d": lambda: numpy.array(1.5),
        "empty-rows": lambda: numpy.zeros((2, 0)),
        "object": lambda: numpy.array([["a", 1.0]], dtype=object),
    }[arr]
    texts = set()
    for fw in (pyfw, rs):
        with pytest.raises(exc) as e:
            fw.tensor(make())
        texts.add(str(e.value))
    assert len(texts) == 1, texts


def test_float64_arrays_are_read_without_tolist() -> None:
    """pyfw_rs reads a native float64 array from its bytes; other dtypes go through tolist()."""
    numpy = np()
    rs = pytest.importorskip("pyfw_rs")

    class NoList(numpy.ndarray):
        def tolist(self) -> Any:
            raise AssertionError("tolist() called")

    a = numpy.array(VALUES).view(NoList)
    assert bits(rs.tensor(a).tolist()) == bits(VALUES)
    assert rs.tensor(numpy.asfortranarray(numpy.array(VALUES)).view(NoList)).tolist() == VALUES
    with pytest.raises(AssertionError, match="tolist"):
        rs.tensor(numpy.array([[1, 2]]).view(NoList))


def test_numpy_arrays_feed_models_and_losses(fw: ModuleType) -> None:
    numpy = np()
    lin = fw.Linear(2, 2, generator=fw.Generator(0))
    x = numpy.array([[0.5, -1.0], [2.0, 0.25]])
    assert lin(x).tolist() == lin(fw.tensor(x.tolist())).tolist()
    loss = fw.CrossEntropyLoss()
    assert loss(lin(x), numpy.array([1, 0])) == loss(lin(x), [1, 0])
