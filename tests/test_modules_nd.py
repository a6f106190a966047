"""The existing modules on inputs of any rank, as torch takes them, in both backends:
``Linear`` on ``(..., in)``, the activations on any shape (``Softmax``/``LogSoftmax``
along any dim), the element-wise losses on any shape, ``CrossEntropyLoss``/``NLLLoss``
on ``(N, C, d1, ...)`` and ``Dropout`` on any shape. Each result is checked against
the documented reduction to the 2-D case (the same rows, the same lines), bit for bit
across the backends, and with ``fw.gradcheck``. The members come from the family tables."""

from __future__ import annotations

import math
import random
from types import ModuleType
from typing import Any

import pytest
from conftest import load_backend
from fwtest import th

import pyfw

ACTS = list(pyfw.ACTIVATIONS)
LOSSES = list(pyfw.LOSSES)
ELEMENTWISE = [n for n in LOSSES if pyfw.LOSSES[n]._targets == "values"]
CLASS = [n for n in LOSSES if pyfw.LOSSES[n]._targets != "values"]


def nested(rng: random.Random, shape: tuple, lo: float = -2.0, hi: float = 2.0) -> Any:
    """Nested lists of ``shape`` with values uniform in ``[lo, hi]``."""
    if len(shape) == 1:
        return [rng.uniform(lo, hi) for _ in range(shape[0])]
    return [nested(rng, shape[1:], lo, hi) for _ in range(shape[0])]


def flat(v: Any) -> list:
    """The values of nested lists in row-major order."""
    return [x for item in v for x in flat(item)] if isinstance(v, list) else [v]


def both() -> tuple:
    return pyfw, load_backend("rs")


# ---- Linear ------------------------------------------------------------------------

@pytest.mark.parametrize("lead", [(), (1,), (3,), (2, 3), (2, 1, 3)])
def test_linear_applies_to_the_last_dim_with_the_bits_of_the_2d_rows(fw: ModuleType, lead: tuple) -> None:
    rng = random.Random(len(lead))
    x = nested(rng, lead + (4,))
    if not lead:
        x[0] = 0.0  # a zero first factor: the skipping fold
    fw.manual_seed(1)
    lin = fw.Linear(4, 3)
    ref = fw.Linear(4, 3)
    ref.load_state_dict(lin.state_dict())
    y = lin(fw.tensor(x))
    assert y.shape == lead + (3,)
    rows = [flat(x)[k:k + 4] for k in range(0, len(flat(x)), 4)]
    y2 = ref(fw.tensor(rows))
    assert flat(th(y)) == flat(th(y2))
    g = nested(rng, lead + (3,))
    dx = lin.backward(fw.tensor(g))
    assert dx.shape == lead + (4,)
    dx2 = ref.backward(fw.tensor([flat(g)[k:k + 3] for k in range(0, len(flat(g)), 3)]))
    assert flat(th(dx)) == flat(th(dx2))
    assert th(lin.weight.grad) == th(ref.weight.grad) and th(lin.bias.grad) == th(ref.bias.grad)
    assert fw.gradcheck(lin, fw.tensor(x))


def test_linear_is_bit_identical_across_backends_on_3d_input() -> None:
    py, rs = both()
    x = nested(random.Random(3), (2, 3, 5))
    outs = []
    for fw in (py, rs):
        fw.manual_seed(4)
        lin = fw.Linear(5, 2)
        y = lin(x)
        dx = lin.backward([[[0.5, -1.0]] * 3] * 2)
        outs.append((th(y), th(dx), th(lin.weight.grad), th(lin.bias.grad)))
    assert outs[0] == outs[1]


def test_linear_refuses_a_last_dim_of_another_size_in_both_backends() -> None:
    got = []
    for fw in both():
        lin = fw.Linear(4, 3)
        with pytest.raises(ValueError) as e:
            lin(fw.zeros(2, 4, 3))
        got.append(str(e.value))
        lin(fw.zeros(2, 5, 4))
        with pytest.raises(ValueError) as e:
            lin.backward(fw.zeros(10, 3))  # the rows of the output, but not its shape
        got.append(str(e.value))
    assert got[0] == got[2] and got[1] == got[3]
    assert "got 3 (input shape (2, 4, 3))" in got[0] and "(2, 5, 3)" in got[1]


# ---- activations -------------------------------------------------------------------

@pytest.mark.parametrize("name", ACTS)
def test_activations_take_any_shape_bit_identically(name: str) -> None:
    rng = random.Random(sum(map(ord, name)))
    x = nested(rng, (2, 3, 2, 4))
    g = nested(rng, (2, 3, 2, 4))
    kw = {"dim": -1} if "dim" in pyfw.ACTIVATIONS[name]._params else {}
    outs = []
    for fw in both():
        m = fw.ACTIVATIONS[name](**kw)
        y = m(x)
        outs.append((th(y), th(m.backward(g))))
        assert y.shape == (2, 3, 2, 4)
        if not kw:  # element-wise: the bits of the same values as one row
            r = fw.ACTIVATIONS[name]()
            assert flat(th(r(flat(x)))) == flat(outs[-1][0])
        assert fw.gradcheck(fw.ACTIVATIONS[name](**kw), fw.tensor(x))
    assert outs[0] == outs[1]


@pytest.mark.parametrize("name", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("dim", [0, 1, 2, -1, -2, -3])
def test_softmax_works_along_any_dim_of_a_3d_input(name: str, dim: int) -> None:
    rng = random.Random(dim + 7)
    x = nested(rng, (3, 4, 2))
    g = nested(rng, (3, 4, 2))
    outs = []
    for fw in both():
        m = fw.ACTIVATIONS[name](dim=dim)
        y = m(fw.tensor(x))
        dx = m.backward(fw.tensor(g))
        # The same lines moved to the last dim give the same bits (each line on its own).
        d = dim % 3
        r = fw.ACTIVATIONS[name](dim=-1)
        yr = r(fw.tensor(x).transpose(d, 2)).transpose(d, 2)
        dxr = r.backward(fw.tensor(g).transpose(d, 2)).transpose(d, 2)
        assert th(y) == th(yr) and th(dx) == th(dxr)
        assert fw.gradcheck(fw.ACTIVATIONS[name](dim=dim), fw.tensor(x))
        outs.append((th(y), th(dx)))
    assert outs[0] == outs[1]
    if name == "Softmax":
        sums = pyfw.Softmax(dim=dim)(x).sum(dim=dim)
        assert all(abs(v - 1.0) < 1e-12 for v in flat(sums.tolist()))


# ---- losses ------------------------------------------------------------------------

def values_for(name: str, rng: random.Random, shape: tuple) -> tuple:
    probs = pyfw.LOSSES[name]._input_probs
    x = nested(rng, shape, 0.05, 0.95) if probs else nested(rng, shape)
    t = nested(rng, shape, 0.0, 1.0) if pyfw.LOSSES[name]._target_probs else nested(rng, shape)
    return x, t


@pytest.mark.parametrize("name", ELEMENTWISE)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_elementwise_losses_take_any_shape_folding_in_row_major_order(name: str, reduction: str) -> None:
    rng = random.Random(len(name))
    x, t = values_for(name, rng, (2, 3, 4))
    outs = []
    for fw in both():
        loss = fw.LOSSES[name](reduction=reduction)
        v = loss(fw.tensor(x), fw.tensor(t))
        g = loss.backward()
        assert g.shape == (2, 3, 4)
        ref = fw.LOSSES[name](reduction=reduction)
        assert v.hex() == ref(flat(x), flat(t)).hex()
        assert flat(th(g)) == flat(th(ref.backward()))
        assert fw.gradcheck(fw.LOSSES[name](reduction=reduction), fw.tensor(x), fw.tensor(t))
        outs.append((v.hex(), th(g)))
    assert outs[0] == outs[1]


def class_case(rng: random.Random, shape: tuple) -> tuple:
    """Logits of ``shape`` (N, C, d1, ...), and class indices of shape (N, d1, ...)."""
    x = nested(rng, shape)
    c = shape[1]
    idx_shape = shape[:1] + shape[2:]
    idx = nested(rng, idx_shape, 0.0, 1.0)

    def to_int(v: Any) -> Any:
        return [to_int(u) for u in v] if isinstance(v, list) else min(int(v * c), c - 1)
    return x, to_int(idx)


def lines_2d(x: Any, shape: tuple) -> list:
    """The lines along dim 1 of ``x`` as rows of C, in row-major order of (n, d1, ...)."""
    v = flat(x)
    n, c = shape[0], shape[1]
    inner = len(v) // (n * c)
    return [[v[(b * c + k) * inner + j] for k in range(c)] for b in range(n) for j in range(inner)]


@pytest.mark.parametrize("name", CLASS)
@pytest.mark.parametrize("shape", [(2, 3, 4), (3, 4, 2, 2), (2, 3, 1)])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_class_losses_take_n_c_d_inputs_as_the_2d_input_of_their_lines(
        name: str, shape: tuple, reduction: str) -> None:
    rng = random.Random(len(shape) * 10 + len(name))
    x, idx = class_case(rng, shape)
    outs = []
    for fw in both():
        loss = fw.LOSSES[name](reduction=reduction)
        v = loss(fw.tensor(x), idx)
        g = loss.backward()
        assert g.shape == shape
        ref = fw.LOSSES[name](reduction=reduction)
        assert v.hex() == ref(lines_2d(x, shape), flat(idx)).hex()  # mean divides by N * d1 * ...
        assert flat(th(g)) == flat(hex_lines_back(ref.backward().tolist(), shape))
        # A float tensor of integral values of the indices' rank counts as indices.
        floats = fw.tensor([float(k) for k in flat(idx)]).reshape(shape[:1] + shape[2:])
        again = fw.LOSSES[name](reduction=reduction)
        assert again(fw.tensor(x), floats).hex() == v.hex() and th(again.backward()) == th(g)
        assert fw.gradcheck(fw.LOSSES[name](reduction=reduction), fw.tensor(x), idx)
        outs.append((v.hex(), th(g)))
    assert outs[0] == outs[1]


def hex_lines_back(rows: list, shape: tuple) -> list:
    """Rows of C (the lines along dim 1) back in the layout of ``shape``, as float.hex strings."""
    n, c = shape[0], shape[1]
    inner = len(rows) // n
    out = [""] * (len(rows) * c)
    for r, row in enumerate(rows):
        b, j = divmod(r, inner)
        for k in range(c):
            out[(b * c + k) * inner + j] = row[k].hex()
    return out


def test_cross_entropy_takes_n_c_d_probabilities_told_apart_by_rank() -> None:
    rng = random.Random(11)
    shape = (2, 3, 4)
    x = nested(rng, shape)
    p = nested(rng, shape, 0.0, 1.0)
    outs = []
    for fw in both():
        loss = fw.CrossEntropyLoss(label_smoothing=0.25)
        v = loss(fw.tensor(x), fw.tensor(p))
        ref = fw.CrossEntropyLoss(label_smoothing=0.25)
        assert v.hex() == ref(lines_2d(x, shape), lines_2d(p, shape)).hex()
        assert flat(th(loss.backward())) == flat(hex_lines_back(ref.backward().tolist(), shape))
        assert fw.gradcheck(fw.CrossEntropyLoss(), fw.tensor(x), fw.tensor(p))
        outs.append(v.hex())
    assert outs[0] == outs[1]


# ---- Dropout -----------------------------------------------------------------------

def test_dropout_takes_any_shape_drawing_in_row_major_order() -> None:
    x = nested(random.Random(2), (2, 3, 4))
    outs = []
    for fw in both():
        d = fw.Dropout(0.5, generator=fw.Generator(9))
        y = d(fw.tensor(x))
        dx = d.backward(fw.ones(2, 3, 4))
        ref = fw.Dropout(0.5, generator=fw.Generator(9))
        assert flat(th(y)) == flat(th(ref(flat(x))))
        assert flat(th(dx)) == flat(th(ref.backward(fw.ones(24))))
        outs.append((th(y), th(dx)))
    assert outs[0] == outs[1]


# ---- the native Sequential ---------------------------------------------------------

def test_a_sequential_runs_3d_inputs_bit_identically() -> None:
    x = nested(random.Random(5), (2, 3, 4))
    outs = []
    for fw in both():
        fw.manual_seed(0)
        m = fw.Sequential(fw.Linear(4, 5), fw.GELU(), fw.Dropout(0.0), fw.Linear(5, 3), fw.LogSoftmax(dim=1))
        y = m(fw.tensor(x))
        assert y.shape == (2, 3, 3)
        loss = fw.NLLLoss()
        v = loss(y, [[0, 1, 2], [2, 1, 0]])
        dx = m.backward(loss.backward())
        assert dx.shape == (2, 3, 4)
        outs.append((th(y), v.hex(), th(dx), [th(p.grad) for p in m.parameters()]))
    assert outs[0] == outs[1]


# ---- bad input, from the tables ----------------------------------------------------

def bad_uses(name: str) -> dict:
    """What a member must refuse on N-d input, by name: each takes ``(fw, module)``."""
    x3 = [[[0.5, 0.25], [0.75, 0.5], [0.125, 0.5]], [[0.5, 0.5], [0.25, 0.5], [0.5, 0.75]]]  # (2, 3, 2)
    if name in pyfw.ACTIVATIONS:
        uses = {
            "ragged 3-D input": lambda fw, m: m([[[0.5], [0.5, 0.5]]]),
            "3-D nan": lambda fw, m: m([[[0.5, math.nan]]]),
            "gradient of another shape": lambda fw, m: (m(x3), m.backward(fw.zeros(3, 2, 2))),
            "gradient of the same rows": lambda fw, m: (m(x3), m.backward(fw.zeros(6, 2))),
        }
        if "dim" in pyfw.ACTIVATIONS[name]._params:
            uses["dim out of range"] = lambda fw, m: type(m)(dim=3)(x3)
            uses["negative dim out of range"] = lambda fw, m: type(m)(dim=-4)(x3)
        return uses
    cls = pyfw.LOSSES[name]
    if cls._targets == "values":
        uses = {
            "target of another 3-D shape": lambda fw, m: m(x3, [[[0.5, 0.5, 0.5]] * 2] * 2),
            "target of the same values in 2-D": lambda fw, m: m(x3, [[0.5, 0.5]] * 6),
            "3-D target nan": lambda fw, m: m(x3, [[[0.5, math.nan]] * 3] * 2),
            "3-D input ragged": lambda fw, m: m([[[0.5], [0.5, 0.5]]], x3),
        }
        if cls._target_probs:
            uses["3-D target above 1"] = lambda fw, m: m(
                x3, [[[0.5, 0.5]] * 3, [[0.5, 0.5], [0.5, 1.5], [0.5, 0.5]]])
        if cls._input_probs:
            uses["3-D input below 0"] = lambda fw, m: m(
                fw.tensor([[[0.5, 0.5]] * 3, [[0.5, 0.5], [0.5, -0.5], [0.5, 0.5]]]), x3)
        return uses
    uses = {
        "indices of the wrong shape": lambda fw, m: m(x3, [[0, 1, 2], [0, 1, 2]]),
        "indices of too few rows": lambda fw, m: m(x3, [[0, 1]]),
        "ragged indices": lambda fw, m: m(x3, [[0, 1], [0]]),
        "a number among rows of indices": lambda fw, m: m(x3, [[0, 1], 1]),
        "a list among indices": lambda fw, m: m(x3, [[0, [1]], [0, 1]]),
        "index out of range": lambda fw, m: m(x3, [[0, 1], [3, 0]]),
        "negative index": lambda fw, m: m(x3, [[0, 1], [0, -1]]),
        "huge index": lambda fw, m: m(x3, [[0, 2 ** 70], [0, 0]]),
        "float index in a list": lambda fw, m: m(x3, [[0, 1], [1.0, 0]]),
        "bool index": lambda fw, m: m(x3, [[0, True], [1, 0]]),
        "fraction in a tensor": lambda fw, m: m(x3, fw.tensor([[0.0, 1.0], [0.5, 0.0]])),
        "fraction in the other backend's tensor": lambda fw, m: m(x3, other(fw).tensor([[0.0, 1.0], [0.5, 0.0]])),
        "huge integral float in a tensor": lambda fw, m: m(x3, fw.tensor([[0.0, 1e300], [0.0, 0.0]])),
        "negative integral float in a tensor": lambda fw, m: m(x3, fw.tensor([[0.0, -1.0], [0.0, 0.0]])),
        "flat indices": lambda fw, m: m(x3, [0, 1, 0, 1]),
        "1-D float tensor of fractions": lambda fw, m: m([[0.5, 0.5], [0.5, 0.5]], fw.tensor([0.0, 1.5])),
        "probabilities of the wrong shape": lambda fw, m: m(x3, fw.tensor([[[0.5, 0.5]] * 2] * 2)),
        "probability above 1": lambda fw, m: m(x3, [[[0.5, 0.5]] * 3, [[0.5, 0.5], [0.5, 1.5], [0.5, 0.5]]]),
        "4-D target": lambda fw, m: m(x3, [[[[0.5]]]]),
    }
    return uses


def other(fw: ModuleType) -> ModuleType:
    return pyfw if fw is not pyfw else load_backend("rs")


@pytest.mark.parametrize("name", ACTS + LOSSES)
def test_bad_nd_use_gets_the_same_error_in_both_backends(name: str) -> None:
    def outcome(f: Any) -> Any:
        try:
            f()
        except Exception as e:  # noqa: BLE001 - the type and message are compared
            return type(e), str(e)
        return None

    def make(fw: ModuleType) -> Any:
        table = fw.ACTIVATIONS if name in pyfw.ACTIVATIONS else fw.LOSSES
        return table[name]()

    for what, use in bad_uses(name).items():
        got = [outcome(lambda: use(fw, make(fw))) for fw in both()]
        assert got[0] is not None and got[0][0] in (TypeError, ValueError), (what, got[0])
        assert got[0] == got[1], what
        assert got[0][1].startswith(name), (what, got[0])


def test_class_messages_name_the_shapes_and_positions(fw: ModuleType) -> None:
    x3 = fw.zeros(2, 3, 2)
    with pytest.raises(ValueError, match=r"NLLLoss: input shape \(2, 3, 2\) needs class indices of shape \(2, 2\), "
                                         r"got shape \(2, 3\)"):
        fw.NLLLoss()(x3, [[0, 1, 2], [0, 1, 2]])
    with pytest.raises(ValueError, match=r"class index 3 at position \(1, 0\) is out of range for input shape "
                                         r"\(2, 3, 2\) \(3 classes\)"):
        fw.CrossEntropyLoss()(x3, [[0, 1], [3, 0]])
    with pytest.raises(TypeError, match=r"class indices must be ints \(or a tensor of integral values\), "
                                        r"got float at position \(1, 0\)"):
        fw.NLLLoss()(x3, fw.tensor([[0.0, 1.0], [0.5, 0.0]]))
    with pytest.raises(TypeError, match=r"NLLLoss: target must be class indices \(ints\) of shape \(2, 2\)"):
        fw.NLLLoss()(x3, fw.zeros(2, 3, 2))
    with pytest.raises(ValueError, match=r"expected an input of shape \(N, C\) or \(N, C, d1, \.\.\.\), "
                                         r"got shape \(3,\)"):
        fw.CrossEntropyLoss()([0.5, 1.0, 2.0], [0])
