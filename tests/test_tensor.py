"""Tensors: construction from nested lists, shape, tolist, indexing, and bad input."""

from __future__ import annotations

import math
from types import ModuleType

import pytest


def test_from_nested_lists(fw: ModuleType) -> None:
    x = fw.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    assert isinstance(x, fw.Tensor)
    assert x.shape == (2, 3)
    assert x.tolist() == [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]


def test_values_are_exact(fw: ModuleType) -> None:
    vals = [5e-324, -0.0, 1.7976931348623157e308, 0.1, -2.5e-300, 1 / 3]
    got = fw.tensor([vals]).tolist()[0]
    assert [v.hex() for v in got] == [v.hex() for v in vals]


def test_ints_become_floats(fw: ModuleType) -> None:
    x = fw.tensor([[1, 2], [3, -4]])
    got = x.tolist()
    assert got == [[1.0, 2.0], [3.0, -4.0]]
    assert all(type(v) is float for r in got for v in r)
    assert [type(v) for v in fw.tensor([1, 2.5]).tolist()] == [float, float]


def test_one_dimensional(fw: ModuleType) -> None:
    b = fw.tensor([1.0, 2.0, 3.0])
    assert b.shape == (3,)
    assert b.tolist() == [1.0, 2.0, 3.0]
    single = fw.tensor([7.0])
    assert single.shape == (1,) and single.tolist() == [7.0]


def test_single_element_2d(fw: ModuleType) -> None:
    x = fw.tensor([[7.0]])
    assert x.shape == (1, 1) and x.tolist() == [[7.0]]


def test_tuples_accepted(fw: ModuleType) -> None:
    assert fw.tensor(((1.0, 2.0), (3.0, 4.0))).tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_tolist_is_a_fresh_copy(fw: ModuleType) -> None:
    x = fw.tensor([[1.0, 2.0], [3.0, 4.0]])
    a = x.tolist()
    a[0][0] = 99.0
    a.append([0.0, 0.0])
    assert x.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    b = fw.tensor([1.0, 2.0])
    c = b.tolist()
    c[0] = 5.0
    assert b.tolist() == [1.0, 2.0]


def test_source_list_is_copied(fw: ModuleType) -> None:
    src = [[1.0, 2.0], [3.0, 4.0]]
    x = fw.tensor(src)
    src[0][0] = 42.0
    src[1] = [0.0, 0.0]
    assert x.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_tensor_from_tensor_copies(fw: ModuleType) -> None:
    x = fw.tensor([[1.0, 2.0]])
    y = fw.tensor(x)
    assert y is not x and y.shape == (1, 2) and y.tolist() == [[1.0, 2.0]]


def test_len(fw: ModuleType) -> None:
    assert len(fw.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])) == 3
    assert len(fw.tensor([1.0, 2.0])) == 2


# ---- indexing -----------------------------------------------------------------

ROWS = [[float(10 * i + j) for j in range(3)] for i in range(5)]


def test_int_index_gives_a_row(fw: ModuleType) -> None:
    x = fw.tensor(ROWS)
    r = x[2]
    assert r.shape == (3,) and r.tolist() == ROWS[2]
    assert x[0].tolist() == ROWS[0]


def test_negative_int_index(fw: ModuleType) -> None:
    x = fw.tensor(ROWS)
    assert x[-1].tolist() == ROWS[4]
    assert x[-5].tolist() == ROWS[0]


def test_slice(fw: ModuleType) -> None:
    x = fw.tensor(ROWS)
    s = x[2:5]
    assert s.shape == (3, 3) and s.tolist() == ROWS[2:5]
    assert x[:1].tolist() == ROWS[:1]
    assert x[-2:].tolist() == ROWS[-2:]
    assert x[1:100].tolist() == ROWS[1:]


def test_list_gather_rows(fw: ModuleType) -> None:
    x = fw.tensor(ROWS)
    g = x[[4, 0, 0, -2]]
    assert g.shape == (4, 3)
    assert g.tolist() == [ROWS[4], ROWS[0], ROWS[0], ROWS[3]]


def test_gather_by_randperm(fw: ModuleType) -> None:
    x = fw.tensor(ROWS)
    perm = fw.randperm(5, generator=fw.Generator(0))
    assert x[perm[0:3]].tolist() == [ROWS[i] for i in perm[0:3]]


def test_indexing_does_not_alias(fw: ModuleType) -> None:
    x = fw.tensor(ROWS)
    row = x[1].tolist()
    row[0] = -1.0
    assert x.tolist() == ROWS


def test_one_d_indexing(fw: ModuleType) -> None:
    b = fw.tensor([1.0, 2.0, 3.0, 4.0])
    assert b[1] == 2.0 and type(b[1]) is float
    assert b[-1] == 4.0
    assert b[1:3].tolist() == [2.0, 3.0] and b[1:3].shape == (2,)
    assert b[[3, 0]].tolist() == [4.0, 1.0]


def test_list_index_gathers_rows_of_any_rank(fw: ModuleType) -> None:
    class Index(int):
        """An int subclass, read by value like an int."""

    x = fw.tensor([[[1.0, 2.0]], [[3.0, 4.0]], [[5.0, 6.0]]])
    got = x[[2, Index(0), -1]]
    assert got.shape == (3, 1, 2)
    assert got.tolist() == [[[5.0, 6.0]], [[1.0, 2.0]], [[5.0, 6.0]]]
    assert fw.tensor([1.0, 2.0, 3.0])[[Index(1), 1]].tolist() == [2.0, 2.0]
    got[0] = -1.0  # a copy: the source keeps its values
    assert x.tolist()[2] == [[5.0, 6.0]]
    with pytest.raises(IndexError):
        x[[0, 2 ** 70]]
    with pytest.raises(TypeError):
        x[[0, False]]


@pytest.mark.parametrize("index", [5, -6, 100, [0, 5], [-6]], ids=["5", "-6", "100", "list5", "list-6"])
def test_index_out_of_range(fw: ModuleType, index: object) -> None:
    with pytest.raises(IndexError):
        fw.tensor(ROWS)[index]


def test_one_d_index_out_of_range(fw: ModuleType) -> None:
    with pytest.raises(IndexError):
        fw.tensor([1.0, 2.0])[2]
    with pytest.raises(IndexError):
        fw.tensor([1.0, 2.0])[-3]


@pytest.mark.parametrize("index", [1.0, "0", None, (0, None), [0.0], ["1"], True, [True]],
                         ids=["float", "str", "none", "tuple-none", "list-float", "list-str", "bool", "list-bool"])
def test_bad_index_type(fw: ModuleType, index: object) -> None:
    with pytest.raises(TypeError):
        fw.tensor(ROWS)[index]


# ---- bad construction input ---------------------------------------------------

@pytest.mark.parametrize("data", [
    [[1.0, 2.0], [3.0]],
    [[1.0], [2.0, 3.0]],
    [[1.0, 2.0], 3.0],
    [1.0, [2.0]],
], ids=["short-row", "long-row", "number-after-row", "row-after-number"])
def test_ragged_is_value_error(fw: ModuleType, data: list) -> None:
    with pytest.raises(ValueError):
        fw.tensor(data)


@pytest.mark.parametrize("data", [
    [[1.0, "a"]], ["a"], [[None, 1.0]], [None], [[1.0, {}]], [[1.0, 2j]], [b"1"],
], ids=["str-2d", "str-1d", "none-2d", "none-1d", "dict", "complex", "bytes"])
def test_non_number_is_type_error(fw: ModuleType, data: list) -> None:
    with pytest.raises(TypeError):
        fw.tensor(data)


@pytest.mark.parametrize("data", [[True, 1.0], [[1.0, False]]], ids=["1d", "2d"])
def test_bools_are_type_error(fw: ModuleType, data: list) -> None:
    with pytest.raises(TypeError):
        fw.tensor(data)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_is_value_error(fw: ModuleType, bad: float) -> None:
    with pytest.raises(ValueError):
        fw.tensor([[1.0, bad]])
    with pytest.raises(ValueError):
        fw.tensor([bad])


def test_int_too_large_for_float_is_value_error(fw: ModuleType) -> None:
    with pytest.raises(ValueError):
        fw.tensor([[1.0, 10**400]])


@pytest.mark.parametrize("data", [[], [[]], [[], []]], ids=["empty", "empty-row", "empty-rows"])
def test_empty_is_value_error(fw: ModuleType, data: list) -> None:
    with pytest.raises(ValueError):
        fw.tensor(data)


@pytest.mark.parametrize("data", [[[1.0, [2.0]]], [[[1.0]], [[1.0, 2.0]]], [[[1.0]], [1.0]], [[[1.0]], [[[1.0]]]],
                                  [[[1.0]], [[]]]],
                         ids=["mixed", "ragged-3d", "shallower", "deeper", "empty-inner"])
def test_ragged_any_depth_is_value_error(fw: ModuleType, data: list) -> None:
    with pytest.raises(ValueError):
        fw.tensor(data)


@pytest.mark.parametrize("data, shape", [([[[1.0]]], (1, 1, 1)), ([[[1.0, 2.0], [3.0, 4.0]]], (1, 2, 2)),
                                         ([[[[float(i + 2 * j + 4 * k + 8 * m) for i in range(2)] for j in range(3)]
                                            for k in range(1)] for m in range(2)], (2, 1, 3, 2))],
                         ids=["1x1x1", "1x2x2", "2x1x3x2"])
def test_any_rank_round_trips(fw: ModuleType, data: list, shape: tuple) -> None:
    from test_tensor_ops import require_nd
    require_nd(fw)
    x = fw.tensor(data)
    assert x.shape == shape and x.ndim == len(shape) and x.dim() == len(shape)
    assert x.tolist() == data and fw.tensor(tuple(data)).tolist() == data


@pytest.mark.parametrize("data", [1.0, 3, None, "ab", {"a": 1}], ids=["float", "int", "none", "str", "dict"])
def test_non_list_is_type_error(fw: ModuleType, data: object) -> None:
    with pytest.raises(TypeError):
        fw.tensor(data)


def test_in_place_ops_follow_their_formula(fw: ModuleType) -> None:
    a = [[0.1, -2.0, 3.5], [1e-3, 7.0, -0.25]]
    b = [[0.3, 0.7, -1.1], [2.0, -0.125, 9.0]]
    t = fw.tensor(a)
    assert t.add_(fw.tensor(b), alpha=0.37) is t
    want = [[(p + 0.37 * v).hex() for p, v in zip(ra, rb)] for ra, rb in zip(a, b)]
    assert [[v.hex() for v in r] for r in t.tolist()] == want
    t.add_(b)  # nested list, alpha 1.0
    want2 = [[(p + v).hex() for p, v in zip(ra, rb)] for ra, rb in zip(
        [[float.fromhex(h) for h in r] for r in want], b)]
    assert [[v.hex() for v in r] for r in t.tolist()] == want2
    assert t.copy_(b) is t and t.tolist() == b
    assert t.zero_() is t and t.tolist() == [[0.0] * 3, [0.0] * 3]
    v = fw.tensor([1.0, 2.0])
    v.add_([0.5, 0.5], alpha=-2.0)
    assert v.tolist() == [0.0, 1.0]


@pytest.mark.parametrize("op", ["add_", "copy_"])
def test_in_place_ops_reject_bad_input_and_change_nothing(fw: ModuleType, op: str) -> None:
    t = fw.tensor([[1.0, 2.0], [3.0, 4.0]])
    broadcastable = [([[1.0, 2.0]], ValueError), ([1.0, 2.0], ValueError)]  # add_ broadcasts these
    for other, exc in (*(broadcastable if op == "copy_" else ()),
                       ([[1.0, 2.0, 3.0]], ValueError), ([1.0, 2.0, 3.0], ValueError), ([[1.0, 2.0], [3.0]], ValueError),
                       ([[[1.0, 2.0], [3.0, 4.0]]] * 2, ValueError),
                       ([[1.0, "x"], [3.0, 4.0]], TypeError), ([[1.0, float("nan")], [3.0, 4.0]], ValueError),
                       ("abc", TypeError)):
        with pytest.raises(exc):
            getattr(t, op)(other)
    with pytest.raises(ValueError):
        t.add_([[1.0, 2.0], [3.0, 4.0]], alpha=float("inf"))
    with pytest.raises(TypeError):
        t.add_([[1.0, 2.0], [3.0, 4.0]], alpha="2")
    assert t.tolist() == [[1.0, 2.0], [3.0, 4.0]]


@pytest.mark.parametrize("shape", [(3,), (2, 2), (1000,), (1001,), (40, 30), (2000, 1), (1, 2000), (7, 200)])
def test_repr_is_bounded_and_the_same_in_both_backends(shape: tuple) -> None:
    """Past 1000 elements a tensor prints its first and last 3 rows and columns, as torch does."""
    import random

    import pyfw
    from conftest import load_backend
    rs = load_backend("rs")
    r = random.Random(0)
    data = ([r.uniform(-1e10, 1e10) for _ in range(shape[0])] if len(shape) == 1
            else [[r.uniform(-1.0, 1.0) for _ in range(shape[1])] for _ in range(shape[0])])
    a, b = repr(pyfw.tensor(data)), repr(rs.tensor(data))
    assert a == b
    n = shape[0] * (shape[1] if len(shape) == 2 else 1)
    assert ("..." in a) == (n > 1000)
    assert len(a) < 2000 or n <= 1000
    if n <= 1000:
        assert a == f"tensor({data!r})"
