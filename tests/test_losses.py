"""The loss family, tested from its table: every member of ``LOSSES``, with each of its
argument variants and both reductions, gets a finite-difference gradient check, a
bit-for-bit cross-check between the backends on inputs with zeros of both signs and large
magnitudes, its bad inputs (the same exception type and message in both backends), and,
where PyTorch is installed, a comparison with torch itself. What a member takes (values,
class indices or both; probabilities or not) is read from its class in ``pyfw.losses``,
so a new member is tested here without new test code."""

from __future__ import annotations

import inspect
import math
import random
from types import ModuleType
from typing import Any

import pytest
from conftest import load_backend
from fwtest import th
from test_modules import assert_grad_close, numeric_grad

import pyfw
import re
from typing import Any, Callable

NAMES = list(pyfw.LOSSES)


def own_params(name: str) -> list:
    """The member's own constructor arguments (all but ``reduction``)."""
    return [p for p in inspect.signature(pyfw.LOSSES[name]).parameters.values() if p.name != "reduction"]


def accepted(name: str, kw: dict) -> bool:
    try:
        pyfw.LOSSES[name](**kw)
    except (TypeError, ValueError):
        return False
    return True


def variants(name: str) -> list:
    """Constructor keyword sets for member ``name``: its defaults, then each float argument at
    ``2.5 d + 0.5``, ``0.5 d + 0.25`` and 0.0 where the member accepts them; each with both
    reductions."""
    out: list = [{}]
    for p in own_params(name):
        for v in (2.5 * p.default + 0.5, 0.5 * p.default + 0.25, 0.0):
            kw = {p.name: v}
            if v != p.default and kw not in out and accepted(name, kw):
                out.append(kw)
    return out + [{**kw, "reduction": "sum"} for kw in out]


CASES = [(name, kw) for name in NAMES for kw in variants(name)]
IDS = [f"{name}({','.join(f'{k}={v}' for k, v in kw.items())})" for name, kw in CASES]


def member(name: str) -> Any:
    return pyfw.LOSSES[name]


def is_class_member(name: str) -> bool:
    return member(name)._targets != "values"


def make(fw: ModuleType, name: str, kw: dict) -> Any:
    return fw.LOSSES[name](**kw)


def kinks(name: str, kw: dict) -> list:
    """Where an element-wise member may have a kink in ``|x - t|``: 0 and its float arguments."""
    out = [0.0]
    for p in own_params(name):
        out.append(float(kw.get(p.name, p.default)))
    return out


def smooth_sample(name: str, kw: dict, rng: random.Random, n: int, c: int) -> tuple:
    """An input (n, c) and its targets (a list of (label, target)), away from every kink."""
    cls = member(name)
    if cls._input_probs:
        x = [[rng.uniform(0.05, 0.95) for _ in range(c)] for _ in range(n)]
    else:
        x = [[rng.uniform(-3.0, 3.0) for _ in range(c)] for _ in range(n)]
    targets = []
    if cls._targets == "values":
        if cls._target_probs:
            t = [[rng.uniform(0.0, 1.0) for _ in range(c)] for _ in range(n)]
        else:
            def gap() -> float:
                while True:
                    g = rng.uniform(0.05, 3.0)
                    if all(abs(g - k) > 0.02 for k in kinks(name, kw)):
                        return g * rng.choice((-1.0, 1.0))
            t = [[v + gap() for v in r] for r in x]
        targets.append(("values", t))
    else:
        targets.append(("classes", [rng.randrange(c) for _ in range(n)]))
        if cls._targets == "either":
            targets.append(("probabilities", [[rng.uniform(0.0, 1.0) for _ in range(c)] for _ in range(n)]))
            targets.append(("one-hot", [[1.0 if k == 1 else 0.0 for k in range(c)] for _ in range(n)]))
    return x, targets


# ---- the table ---------------------------------------------------------------------

def test_both_backends_list_the_same_members() -> None:
    rs = load_backend("rs")
    assert list(rs.LOSSES) == NAMES
    for name in NAMES:
        assert name in pyfw.__all__ and name in rs.__all__, name
        assert getattr(pyfw, name) is pyfw.LOSSES[name]
        assert getattr(rs, name) is rs.LOSSES[name]
        assert issubclass(pyfw.LOSSES[name], pyfw.losses.Loss)
        assert issubclass(rs.LOSSES[name], rs._native.Loss)


@pytest.mark.parametrize("name", NAMES)
def test_signatures_and_reprs_match(name: str) -> None:
    rs = load_backend("rs")

    def params(f: Any) -> list:
        return [(p.name, p.kind, p.default) for p in inspect.signature(f).parameters.values()]

    assert params(pyfw.LOSSES[name]) == params(rs.LOSSES[name])
    assert params(pyfw.LOSSES[name])[-1][::2] == ("reduction", "mean")
    for kw in variants(name):
        a, b = make(pyfw, name, kw), make(rs, name, kw)
        assert repr(a) == repr(b)
        assert a.reduction == b.reduction == kw.get("reduction", "mean")
        for k, v in kw.items():
            assert getattr(a, k) == getattr(b, k) == v


# ---- gradients -------------------------------------------------------------------

@pytest.mark.parametrize("name, kw", CASES, ids=IDS)
def test_gradient_matches_finite_differences(fw: ModuleType, name: str, kw: dict) -> None:
    rng = random.Random(sum(map(ord, name)))
    x, targets = smooth_sample(name, kw, rng, 4, 3)
    for label, t in targets:
        loss = make(fw, name, kw)
        value = loss(x, t)
        assert type(value) is float
        g = loss.backward()
        assert g.shape == (4, 3)
        numeric = numeric_grad(lambda v: make(fw, name, kw)(v, t), x)
        assert_grad_close(g.tolist(), numeric, f"{name} {label} dL/dx")


MEAN_CASES = [(name, kw) for name, kw in CASES if "reduction" not in kw]


@pytest.mark.parametrize("name, kw", MEAN_CASES, ids=[i for i, (_, kw) in zip(IDS, CASES) if "reduction" not in kw])
def test_mean_is_the_sum_over_the_number_of_terms(fw: ModuleType, name: str, kw: dict) -> None:
    """With 4 terms the division is exact, so mean and sum / 4 agree bit for bit."""
    rng = random.Random(3)
    n, c = (4, 3) if is_class_member(name) else (2, 2)
    x, targets = smooth_sample(name, kw, rng, n, c)
    for _, t in targets:
        mean, total = make(fw, name, kw), make(fw, name, {**kw, "reduction": "sum"})
        assert mean(x, t).hex() == (total(x, t) / 4.0).hex()
        assert th(mean.backward()) == [[(v / 4.0).hex() for v in r] for r in total.backward().tolist()]


# ---- bit-identity ----------------------------------------------------------------

SPECIAL = [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, -1e-310, 1e-300, -1e300, 1e300,
           700.0, -700.0, 800.0, -800.0, 1e4, -1e4, 0.5, -0.5, 1.0, -1.0, 2.0]
PROBS = [0.0, -0.0, 1.0, 5e-324, 1e-300, 1e-12, 0.5, 0.9999999999999999, 1.0 - 1e-12, 0.25]


def mixed(rng: random.Random, rows: int, cols: int, probs: bool) -> list:
    """Random entries with special values mixed in: zeros of both signs, subnormals and
    large magnitudes, or for probabilities the ends of [0, 1]."""
    pool = PROBS if probs else SPECIAL

    def one() -> float:
        if rng.random() < 0.4:
            return rng.choice(pool)
        return rng.uniform(0.0, 1.0) if probs else rng.uniform(-4.0, 4.0)
    return [[one() for _ in range(cols)] for _ in range(rows)]


def mixed_targets(name: str, rng: random.Random, x: list) -> list:
    cls = member(name)
    n, c = len(x), len(x[0])
    if cls._targets == "values":
        return [mixed(rng, n, c, cls._target_probs)]
    out: list = [[rng.randrange(c) for _ in range(n)]]
    if cls._targets == "either":
        out.append(mixed(rng, n, c, True))
    return out


@pytest.mark.parametrize("name, kw", CASES, ids=IDS)
def test_kernels_are_bit_identical(name: str, kw: dict) -> None:
    rs = load_backend("rs")
    rng = random.Random(7)
    shapes = [(1, 1), (3, 7), (6, 2), (9, 33)]
    for rows, cols in shapes + ([] if is_class_member(name) else [(1, 5)]):
        x = mixed(rng, rows, cols, member(name)._input_probs)
        one_d = rows == 1 and not is_class_member(name) and cols == 5
        for t in mixed_targets(name, rng, x):
            out = []
            for fw in (pyfw, rs):
                loss = make(fw, name, kw)
                if one_d:
                    value = loss(fw.tensor(x[0]), fw.tensor(t[0]))
                else:
                    value = loss(fw.tensor(x), fw.tensor(t) if isinstance(t[0], list) else t)
                out.append((value.hex(), th(loss.backward())))
            assert out[0] == out[1], (rows, cols, t)


@pytest.mark.parametrize("name", NAMES)
def test_inputs_of_either_backend_and_lists_give_the_same_bits(name: str) -> None:
    rs = load_backend("rs")
    rng = random.Random(11)
    x, targets = smooth_sample(name, {}, rng, 3, 4)
    for _, t in targets:
        want = None
        for fw in (pyfw, rs):
            for tensor_of in (pyfw.tensor, rs.tensor, lambda v: v):
                loss = make(fw, name, {})
                tt = tensor_of(t) if isinstance(t[0], list) else t
                got = (loss(tensor_of(x), tt).hex(), th(loss.backward()))
                assert want is None or got == want, (fw.__name__, tensor_of)
                want = got


def test_a_subclass_that_overrides_nothing_runs_natively_with_the_same_bits() -> None:
    rs = load_backend("rs")
    out = []
    for fw in (pyfw, rs):
        class Mine(fw.CrossEntropyLoss):
            pass
        loss = Mine(label_smoothing=0.25)
        out.append((loss([[0.5, -1.0, 2.0]], [2]).hex(), th(loss.backward())))
        assert repr(loss) == "Mine(label_smoothing=0.25, reduction='mean')"
        with pytest.raises(ValueError, match="^CrossEntropyLoss: class index 5"):
            loss([[0.5, -1.0, 2.0]], [5])
    assert out[0] == out[1]


def test_a_subclass_may_override_forward() -> None:
    rs = load_backend("rs")
    for fw in (pyfw, rs):
        class Halved(fw.MSELoss):
            def forward(self, input: Any, target: Any) -> float:
                return super().forward(input, target) / 2.0
        assert Halved()([[3.0]], [[1.0]]) == 2.0


# ---- bad input ---------------------------------------------------------------------

def outcome(f: Any) -> Any:
    try:
        f()
    except Exception as e:  # noqa: BLE001 - compared across backends
        return type(e), str(e)
    return None


def bad_arguments(name: str) -> list:
    """Constructor keyword sets that every member must refuse."""
    out: list = [{"reduction": r} for r in ("none", "Mean", "", "mean ", None, 1, b"mean", ["mean"])]
    for p in own_params(name):
        out += [{p.name: v} for v in ("x", True, None, math.nan, math.inf, -math.inf, 10 ** 400, -1.0, 2.0 ** 80)
                if not accepted(name, {p.name: v})]
        out += [{p.name: "x", "reduction": "none"}, {p.name: -1e9, "reduction": "none"}]
    return out


@pytest.mark.parametrize("name", NAMES)
def test_bad_arguments_get_the_same_error_in_both_backends(name: str) -> None:
    rs = load_backend("rs")
    for kw in bad_arguments(name):
        got = outcome(lambda: make(pyfw, name, kw))
        assert got is not None and got[0] in (TypeError, ValueError), (kw, got)
        assert got[1].startswith(f"{name}: "), got
        assert outcome(lambda: make(rs, name, kw)) == got, kw
    assert "'none' is not supported" in outcome(lambda: make(pyfw, name, {"reduction": "none"}))[1]


def bad_uses(name: str) -> dict:
    """What every member must refuse, by name: each takes ``(fw, loss)``."""
    cls = member(name)
    x = [[0.5, 0.25, 0.75], [0.125, 0.5, 0.5]]
    if cls._targets == "values":
        t = [[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]
    else:
        t = [0, 2]
    uses = {
        "backward first": lambda fw, m: m.backward(),
        "input str": lambda fw, m: m("x", t),
        "input none": lambda fw, m: m(None, t),
        "input ragged": lambda fw, m: m([[1.0], [1.0, 2.0]], t),
        "input nan": lambda fw, m: m([[math.nan, 0.5, 0.5], [0.5, 0.5, 0.5]], t),
        "input inf": lambda fw, m: m([[0.5, 0.5, 0.5], [0.5, -math.inf, 0.5]], t),
        "input empty": lambda fw, m: m([], t),
        "target str": lambda fw, m: m(x, "ab"),
        "target none": lambda fw, m: m(x, None),
        "target int": lambda fw, m: m(x, 3),
        "target nan": lambda fw, m: m(x, [[0.5, math.nan, 0.5], [0.5, 0.5, 0.5]]),
        "target ragged": lambda fw, m: m(x, [[0.5], [0.5, 0.5]]),
    }
    if cls._targets == "values":
        uses.update({
            "transposed target": lambda fw, m: m(fw.tensor(x), fw.tensor([[0.5, 0.5]] * 3)),
            "1-D target": lambda fw, m: m(x, [0.5] * 6),
            "1-D input": lambda fw, m: m([0.5] * 3, t),
            "class indices": lambda fw, m: m(x, [0, 1]),
        })
    else:
        uses.update({
            "1-D input": lambda fw, m: m([0.5, 0.25], [0]),
            "1-D input tensor": lambda fw, m: m(fw.tensor([0.5, 0.25]), [0]),
            "too few indices": lambda fw, m: m(x, [0]),
            "too many indices": lambda fw, m: m(x, (0, 1, 2)),
            "no indices": lambda fw, m: m(x, []),
            "index out of range": lambda fw, m: m(x, [0, 3]),
            "negative index": lambda fw, m: m(x, [-1, 0]),
            "huge index": lambda fw, m: m(x, [0, 2 ** 70]),
            "huge negative index": lambda fw, m: m(x, [-(2 ** 70), 0]),
            "huge, then out of range": lambda fw, m: m(x, [2 ** 70, 5]),
            "out of range, then huge": lambda fw, m: m(x, [5, 2 ** 70]),
            "float index": lambda fw, m: m(x, [0, 1.0]),
            "bool index": lambda fw, m: m(x, [True, 0]),
            "none index": lambda fw, m: m(x, [None, 0]),
            "str index": lambda fw, m: m(x, ["0", 0]),
            "float before out of range": lambda fw, m: m(x, [7, 1.5]),
            "1-D float tensor target of a fraction": lambda fw, m: m(x, fw.tensor([0.0, 1.5])),
            "other backend's 1-D tensor target of a fraction": lambda fw, m: m(x, other(fw).tensor([0.5, 1.0])),
            "probabilities of the wrong shape": lambda fw, m: m(x, [[0.5, 0.5]] * 2),
            "probabilities of too many rows": lambda fw, m: m(x, fw.tensor([[0.5, 0.5, 0.5]] * 3)),
            "probability above 1": lambda fw, m: m(x, [[0.5, 0.5, 0.5], [0.5, 1.5, 0.5]]),
            "negative probability": lambda fw, m: m(x, fw.tensor([[0.5, -0.25, 0.5], [0.5, 0.5, 0.5]])),
            "other backend's probabilities": lambda fw, m: m(x, other(fw).tensor([[0.5, 2.0, 0.5]] * 2)),
            "a mixed list": lambda fw, m: m(x, [0, [1.0, 0.0, 0.0]]),
            "rows then an int": lambda fw, m: m(x, [[1.0, 0.0, 0.0], 1]),
        })
    if cls._input_probs:
        uses["input above 1"] = lambda fw, m: m([[0.5, 0.25, 1.0000000000000002], [0.5, 0.5, 0.5]], t)
        uses["negative input"] = lambda fw, m: m(fw.tensor([[0.5, 0.25, 0.5], [0.5, -5e-324, 0.5]]), t)
    if cls._target_probs and cls._targets == "values":
        uses["target above 1"] = lambda fw, m: m(x, [[0.5, 0.5, 0.5], [0.5, 0.5, 1.5]])
        uses["negative target"] = lambda fw, m: m(x, other(fw).tensor([[0.5, -0.5, 0.5], [0.5, 0.5, 0.5]]))
    return uses


def other(fw: ModuleType) -> ModuleType:
    return pyfw if fw is not pyfw else load_backend("rs")


@pytest.mark.parametrize("name", NAMES)
def test_bad_use_gets_the_same_error_in_both_backends(name: str) -> None:
    rs = load_backend("rs")
    for what, use in bad_uses(name).items():
        got = [outcome(lambda: use(fw, make(fw, name, {}))) for fw in (pyfw, rs)]
        assert got[0] is not None and got[0][0] in (TypeError, ValueError, RuntimeError), (what, got[0])
        assert got[0] == got[1], what
        assert name in got[0][1], (what, got[0])


@pytest.mark.parametrize("name", NAMES)
def test_shape_errors_name_both_shapes(fw: ModuleType, name: str) -> None:
    loss = make(fw, name, {})
    if is_class_member(name):
        with pytest.raises(ValueError) as e:
            loss([[0.5, 0.5, 0.5]] * 4, [0, 1])
        assert "(4, 3)" in str(e.value) and "4 class indices, got 2" in str(e.value)
        if member(name)._targets == "either":
            with pytest.raises(ValueError) as e:
                loss([[0.5, 0.5, 0.5]] * 4, [[0.5, 0.5]] * 4)
            assert "(4, 3)" in str(e.value) and "(4, 2)" in str(e.value)
    else:
        x = [[0.5, 0.5, 0.5]] * 2
        with pytest.raises(ValueError) as e:
            loss(x, [[0.5, 0.5]] * 3)
        assert "(2, 3)" in str(e.value) and "(3, 2)" in str(e.value)


@pytest.mark.parametrize("name", NAMES)
def test_backward_uses_the_last_forward_and_a_failed_one_changes_nothing(fw: ModuleType, name: str) -> None:
    rng = random.Random(5)
    x1, t1 = smooth_sample(name, {}, rng, 2, 3)
    x2, t2 = smooth_sample(name, {}, rng, 3, 2)
    loss = make(fw, name, {})
    loss(x1, t1[0][1])
    loss(x2, t2[0][1])
    want = make(fw, name, {})
    want(x2, t2[0][1])
    assert th(loss.backward()) == th(want.backward())
    assert th(loss.backward()) == th(want.backward())  # backward may be called again
    with pytest.raises((TypeError, ValueError)):
        loss(x1, "bad")
    assert th(loss.backward()) == th(want.backward())


# ---- PyTorch (optional) ------------------------------------------------------------

def torch_close(ours: list, theirs: list, what: str) -> None:
    """Equal to 1e-12 relative; entries far below the largest one (where torch's order of
    operations and ours cancel differently) are compared to 1e-12 of the largest."""
    flat_o = [v for r in ours for v in r] if isinstance(ours[0], list) else list(ours)
    flat_t = [v for r in theirs for v in r] if isinstance(theirs[0], list) else list(theirs)
    scale = max(abs(v) for v in flat_t)
    for k, (a, b) in enumerate(zip(flat_o, flat_t)):
        assert abs(a - b) <= 1e-12 * max(abs(b), 1e-3 * scale, 1e-300), f"{what}[{k}]: {a!r} vs torch {b!r}"


@pytest.mark.parametrize("name, kw", CASES, ids=IDS)
def test_matches_torch(fw: ModuleType, name: str, kw: dict) -> None:
    torch = pytest.importorskip("torch")
    rng = random.Random(sum(map(ord, name)) + 1)
    x, targets = smooth_sample(name, kw, rng, 5, 4)
    for label, t in targets:
        loss = make(fw, name, kw)
        value = loss(x, t)
        grad = loss.backward().tolist()
        tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        tt = torch.tensor(t, dtype=torch.long if label == "classes" else torch.float64)
        tv = getattr(torch.nn, name)(**kw)(tx, tt)
        tv.backward()
        torch_close([value], [tv.item()], f"{name} {label} value")
        torch_close(grad, tx.grad.tolist(), f"{name} {label} dL/dx")


# The members of the loss family one by one: MSELoss's value (mean over all elements, a
# left fold, bit for bit) and gradient 2 (x - t) / N as the seed had them; the documented
# values at the kinks; stability at large magnitudes; known values; every member's value
# against torch's formula written out here; and the forms a target may take. The tests
# derived from the table (gradients, bits, bad input, torch) are earlier in this file.

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
    with pytest.raises(ValueError, match=re.escape("expected an input of shape (N, C) or (N, C, d1, ...), got shape (3,)")):
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
