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
            "1-D float tensor target": lambda fw, m: m(x, fw.tensor([0.0, 1.0])),
            "other backend's 1-D tensor target": lambda fw, m: m(x, other(fw).tensor([0.0, 1.0])),
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
