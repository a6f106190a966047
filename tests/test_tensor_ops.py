"""Tensor arithmetic, reductions, matmul, shape operations, indexing and creation, table-driven.

Each case runs in ``pyfw`` and is checked (a) against a naive reference computed here
from ``tolist()`` with plain loops, in the orders of docs/NUMERICS.md ("Tensor
arithmetic"), and (b) bit for bit (``float.hex``) against ``pyfw_rs``. The bad-input
table checks that both backends raise the same exception type. A ``pyfw_rs`` case is
skipped when ``pyfw_rs`` lacks the operation (no N-d tensors yet, or an
``AttributeError`` / ``NotImplementedError``); a ``pyfw`` case never is.
"""

from __future__ import annotations

import itertools
import math
import operator
import random
from types import ModuleType
from typing import Any, Callable

import pytest

import pyfw
from conftest import load_backend
from fwtest import hexes

INF, NAN = math.inf, math.nan

# ---- backends -------------------------------------------------------------------------


def rs_has_nd(rs: ModuleType) -> bool:
    """Whether ``pyfw_rs`` has the N-d tensor (rank 3 construction and the creation functions)."""
    try:
        rs.tensor([[[0.0]]])
    except (ValueError, TypeError):
        return False
    return all(hasattr(rs, n) for n in ("zeros", "matmul", "cat"))


def require_nd(fw: ModuleType) -> None:
    """Skip a ``pyfw_rs`` test while ``pyfw_rs`` lacks N-d tensors; never skips ``pyfw``."""
    if fw is not pyfw and not rs_has_nd(fw):
        pytest.skip("pyfw_rs has no N-d tensors with arithmetic yet")


def run_rs(fn: Callable[[ModuleType], Any]) -> Any:
    """``fn(pyfw_rs)``, skipping when ``pyfw_rs`` lacks what it calls."""
    rs = load_backend("rs")
    require_nd(rs)
    try:
        return fn(rs)
    except (AttributeError, NotImplementedError) as e:
        pytest.skip(f"pyfw_rs lacks this operation: {e}")


# ---- nested-list helpers and the naive reference -----------------------------------------


def prod(dims: Any) -> int:
    n = 1
    for d in dims:
        n *= d
    return n


def nest(flat: list, shape: tuple) -> Any:
    if len(shape) == 1:
        return list(flat)
    step = prod(shape[1:])
    return [nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def flat_of(nested: Any) -> list:
    if isinstance(nested, list):
        return [v for x in nested for v in flat_of(x)]
    return [nested]


def shape_of(nested: Any) -> tuple:
    s = []
    while isinstance(nested, list):
        s.append(len(nested))
        nested = nested[0]
    return tuple(s)


def at(nested: Any, coord: tuple) -> Any:
    for c in coord:
        nested = nested[c]
    return nested


def build(shape: tuple, fn: Callable[[tuple], Any]) -> Any:
    """The nested list of ``shape`` whose element at ``coord`` is ``fn(coord)``; ``fn(())`` for ``()``."""
    if not shape:
        return fn(())
    return nest([fn(c) for c in itertools.product(*map(range, shape))], shape)


def bshape(a: tuple, b: tuple) -> tuple:
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    out = []
    for x, y in zip(a, b):
        assert x == y or 1 in (x, y)
        out.append(max(x, y) if 1 in (x, y) else x)
    return tuple(out)


def bread(nested: Any, shape: tuple, out: tuple, coord: tuple) -> Any:
    c = coord[len(out) - len(shape):]
    return at(nested, tuple(0 if s == 1 else i for s, i in zip(shape, c)))


def ref_binary(a: Any, b: Any, f: Callable) -> Any:
    if not isinstance(a, list):
        return build(shape_of(b), lambda c: f(a, at(b, c)))
    if not isinstance(b, list):
        return build(shape_of(a), lambda c: f(at(a, c), b))
    sa, sb = shape_of(a), shape_of(b)
    out = bshape(sa, sb)
    return build(out, lambda c: f(bread(a, sa, out, c), bread(b, sb, out, c)))


def ref_unary(a: Any, f: Callable) -> Any:
    return build(shape_of(a), lambda c: f(at(a, c)))


def hw_nan() -> float:
    return INF - INF


def r_div(a: float, b: float) -> float:
    if b == 0.0:
        if math.isnan(a):
            return a
        if a == 0.0:
            return hw_nan()
        neg = (math.copysign(1.0, a) < 0) != (math.copysign(1.0, b) < 0)
        return -INF if neg else INF
    return a / b


def odd_int(y: float) -> bool:
    return math.isfinite(y) and y == int(y) and int(y) % 2 == 1


def r_pow(x: float, y: float) -> float:
    """C99 Annex F ``pow``, from its cases (math.pow where it does not raise)."""
    if x == 0.0 and y < 0.0:
        return math.copysign(INF, x) if odd_int(y) else INF
    if math.isfinite(x) and x < 0.0 and math.isfinite(y) and y != int(y):
        return hw_nan()
    try:
        return math.pow(x, y)
    except OverflowError:
        return -INF if x < 0.0 and odd_int(y) else INF


def r_exp(x: float) -> float:
    return INF if x > 709.8 else math.exp(x)


def r_log(x: float) -> float:
    if math.isnan(x):
        return x
    if x == 0.0:
        return -INF
    return hw_nan() if x < 0.0 else math.log(x)


def r_sqrt(x: float) -> float:
    return hw_nan() if x < 0.0 else math.sqrt(x)


def r_sigmoid(x: float) -> float:
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = r_exp(x)
    return e / (1.0 + e)


def r_clamp(lo: Any, hi: Any) -> Callable:
    def f(x: float) -> float:
        if math.isnan(x):
            return x
        y = lo if lo is not None and x < lo else x
        return hi if hi is not None and y > hi else y
    return f


def r_maximum(a: float, b: float) -> float:
    if math.isnan(a) or math.isnan(b):
        return a if math.isnan(a) else b
    return a if a >= b else b


def r_minimum(a: float, b: float) -> float:
    if math.isnan(a) or math.isnan(b):
        return a if math.isnan(a) else b
    return a if a <= b else b


def cmp(f: Callable) -> Callable:
    return lambda a, b: 1.0 if f(a, b) else 0.0


def fold(terms: list) -> float:
    acc = terms[0]
    for t in terms[1:]:
        acc = acc + t
    return acc


def ref_reduce(a: Any, dim: Any, keepdim: bool, f: Callable[[list], Any]) -> Any:
    """``f`` of each output's terms, taken in row-major order of the reduced coordinates."""
    shape = shape_of(a)
    nd = len(shape)
    if dim is None or dim == ():
        dims = list(range(nd))
    else:
        dims = sorted(d % nd for d in (dim if isinstance(dim, tuple) else (dim,)))
    kept = [d for d in range(nd) if d not in dims]

    def one(kc: tuple) -> Any:
        terms = []
        for rc in itertools.product(*(range(shape[d]) for d in dims)):
            full = [0] * nd
            for d, i in zip(kept, kc):
                full[d] = i
            for d, i in zip(dims, rc):
                full[d] = i
            terms.append(at(a, tuple(full)))
        return f(terms)
    out = tuple(shape[d] for d in kept)
    res = build(out, lambda c: one(c))
    if keepdim:
        keep = tuple(1 if d in dims else shape[d] for d in range(nd))
        res = nest(flat_of(res) if isinstance(res, list) else [res], keep)
    return res


def r_mean(t: list) -> float:
    return fold(t) / float(len(t))


def r_var(unbiased: bool) -> Callable:
    def f(t: list) -> float:
        m = r_mean(t)
        acc = fold([(v - m) * (v - m) for v in t])
        return r_div(acc, float(len(t) - 1) if unbiased else float(len(t)))
    return f


def r_best(larger: bool) -> Callable:
    def f(t: list) -> tuple:
        best, at_ = t[0], 0
        if math.isnan(best):
            return best, 0
        for k, v in enumerate(t[1:], 1):
            if math.isnan(v):
                return v, k
            if (v > best) if larger else (v < best):
                best, at_ = v, k
        return best, at_
    return f


def ref_extreme(a: Any, dim: Any, keepdim: bool, larger: bool, values: bool) -> Any:
    """``max``/``min`` (``values``) or ``argmax``/``argmin`` by scanning each line."""
    pairs = ref_reduce(a, dim, keepdim, r_best(larger))
    if isinstance(pairs, tuple):  # a result of rank 0
        v, i = pairs
        if dim is None:
            return v if values else i
        return (v, i) if values else i
    vals = build(shape_of_pairs(pairs), lambda c: at(pairs, c)[0])
    idx = build(shape_of_pairs(pairs), lambda c: at(pairs, c)[1])
    if dim is None:
        return vals if values else idx
    return (vals, idx) if values else idx


def shape_of_pairs(nested: Any) -> tuple:
    s = []
    while isinstance(nested, list):
        s.append(len(nested))
        nested = nested[0]
    return tuple(s)


def ref_matmul(a: Any, b: Any) -> Any:
    sa, sb = shape_of(a), shape_of(b)

    def dot(row: list, col: list) -> float:
        acc = 0.0
        for x, y in zip(row, col):
            if x != 0.0:
                acc = acc + x * y
        return acc
    if len(sa) == 1 and len(sb) == 1:
        return dot(a, b)
    A = [a] if len(sa) == 1 else a
    B = [[v] for v in b] if len(sb) == 1 else b
    ea = (1, sa[0]) if len(sa) == 1 else sa
    eb = (sb[0], 1) if len(sb) == 1 else sb
    batch = bshape(ea[:-2], eb[:-2]) if ea[:-2] or eb[:-2] else ()
    n, m = ea[-2], eb[-1]

    def elem(c: tuple) -> float:
        bc, i, j = c[:-2], c[-2], c[-1]
        ma = bread(A, ea[:-2], batch, bc) if ea[:-2] else A
        mb = bread(B, eb[:-2], batch, bc) if eb[:-2] else B
        return dot(ma[i], [r[j] for r in mb])
    full = build(batch + (n, m), elem)
    shape = batch + ((n,) if len(sa) > 1 else ()) + ((m,) if len(sb) > 1 else ())
    return nest(flat_of(full), shape)


def ref_permute(a: Any, perm: tuple) -> Any:
    shape = shape_of(a)
    out = tuple(shape[p] for p in perm)

    def elem(c: tuple) -> float:
        src = [0] * len(shape)
        for k, p in enumerate(perm):
            src[p] = c[k]
        return at(a, tuple(src))
    return build(out, elem)


def ref_index(a: Any, index: Any) -> Any:
    """Python list indexing applied dim by dim (an int drops the dim)."""
    if not isinstance(index, tuple):
        if isinstance(index, list):
            return [a[i] for i in index]
        index = (index,)
    nd = len(shape_of(a))
    if ... in index:
        k = index.index(...)
        index = index[:k] + (slice(None),) * (nd - len(index) + 1) + index[k + 1:]

    def go(x: Any, idx: tuple) -> Any:
        if not idx:
            return x
        i, rest = idx[0], idx[1:]
        if isinstance(i, slice):
            return [go(y, rest) for y in x[i]]
        return go(x[i], rest)
    return go(a, index)


def ref_cat(parts: list, dim: int) -> Any:
    shapes = [shape_of(p) for p in parts]
    nd = len(shapes[0])
    d = dim % nd
    out = list(shapes[0])
    out[d] = sum(s[d] for s in shapes)  # ints

    def elem(c: tuple) -> float:
        i = c[d]
        for p, s in zip(parts, shapes):
            if i < s[d]:
                return at(p, c[:d] + (i,) + c[d + 1:])
            i -= s[d]
        raise AssertionError
    return build(tuple(out), elem)


# ---- inputs ---------------------------------------------------------------------------------

SPECIAL = [0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, 3.0, 1e308, -1e308, 5e-324, 1e-300, 710.0, -746.0, 0.1]


def values(shape: tuple, seed: int, special: float = 0.3, nonfinite: bool = False, ints: bool = False) -> Any:
    r = random.Random(seed)
    pool = SPECIAL + ([INF, -INF, NAN] if nonfinite else [])
    out = []
    for _ in range(prod(shape)):
        if ints:
            out.append(float(r.randint(-2, 2)))
        elif r.random() < special:
            out.append(r.choice(pool))
        else:
            out.append(r.uniform(-3.0, 3.0))
    return nest(out, shape)


def make(fw: ModuleType, nested: Any) -> Any:
    """A tensor of ``nested``, NaN and infinities included (written by assignment)."""
    if not isinstance(nested, list):
        return nested
    shape = shape_of(nested)
    coords = list(itertools.product(*map(range, shape)))
    t = fw.tensor(build(shape, lambda c: at(nested, c) if math.isfinite(at(nested, c)) else 0.0))
    for c in coords:
        v = at(nested, c)
        if not math.isfinite(v):
            t[c] = v
    return t


def norm(r: Any) -> Any:
    """A result (tensor, float, int, tuple, nested list of ints) as comparable hex data."""
    if hasattr(r, "tolist") and hasattr(r, "shape"):
        return ("tensor", tuple(r.shape), hexes(r.tolist()))
    if isinstance(r, tuple):
        return tuple(norm(x) for x in r)
    if isinstance(r, float):
        return ("float", r.hex())
    if isinstance(r, bool):
        return ("bool", r)
    if isinstance(r, int):
        return ("int", r)
    if isinstance(r, list):
        return ("list", r)
    return r


def norm_ref(r: Any, kind: str) -> Any:
    """A reference result in ``norm``'s form; ``kind`` says what the backend returns."""
    if kind == "tensor":
        return ("tensor", shape_of(r), hexes(r))
    if kind == "float":
        return ("float", r.hex())
    if kind == "int":
        return ("int", r)
    if kind == "list":
        return ("list", r)
    if kind == "values,indices":
        v, i = r
        if isinstance(v, list):
            return (("tensor", shape_of(v), hexes(v)), ("list", i))
        return (("float", v.hex()), ("int", i))
    raise AssertionError(kind)


# ---- the table of operations ------------------------------------------------------------------
# (id, inputs: {name: nested list or number}, op(fw, *tensors) -> result, reference(*nested) -> result, kind)

S2 = (3, 4)
S3 = (2, 3, 4)
CASES: list = []


def case(cid: str, inputs: list, op: Callable, ref: Callable, kind: str = "tensor") -> None:
    CASES.append(pytest.param(inputs, op, ref, kind, id=cid))


BINARY = [
    ("add", operator.add, operator.add),
    ("sub", operator.sub, operator.sub),
    ("mul", operator.mul, operator.mul),
    ("div", operator.truediv, r_div),
    ("lt", operator.lt, cmp(operator.lt)),
    ("le", operator.le, cmp(operator.le)),
    ("gt", operator.gt, cmp(operator.gt)),
    ("ge", operator.ge, cmp(operator.ge)),
    ("eq", operator.eq, cmp(operator.eq)),
    ("ne", operator.ne, cmp(operator.ne)),
]
SHAPE_PAIRS = [
    ("same2", S2, S2), ("same3", S3, S3), ("row", S2, (4,)), ("col", S2, (3, 1)), ("outer", (3, 1), (1, 4)),
    ("3d-2d", S3, (3, 4)), ("3d-bc", (2, 1, 4), (3, 1)), ("1d", (5,), (5,)), ("1d-1", (5,), (1,)),
    ("lead1", (1, 4), (2, 3, 4)),
]
for name, op, ref in BINARY:
    for sid, sa, sb in SHAPE_PAIRS:
        case(f"{name}-{sid}", [values(sa, 1, nonfinite=True), values(sb, 2, nonfinite=True)],
             lambda fw, a, b, op=op: op(a, b), lambda a, b, ref=ref: ref_binary(a, b, ref))
    for s in (2.5, -0.0, 0.0, 3, True, INF, NAN):
        case(f"{name}-scalar-{s}", [values(S2, 3, nonfinite=True)],
             lambda fw, a, op=op, s=s: op(a, s), lambda a, ref=ref, s=s: ref_binary(a, float(s), ref))
        case(f"{name}-rscalar-{s}", [values(S2, 4, nonfinite=True)],
             lambda fw, a, op=op, s=s: op(s, a), lambda a, ref=ref, s=s: ref_binary(float(s), a, ref))
case("div-zeros", [[[1.0, -1.0, 0.0, -0.0, NAN, INF], [2.0, -3.0, 0.0, -0.0, -INF, 5e-324]],
                   [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [-0.0, -0.0, -0.0, -0.0, 0.0, -0.0]]],
     lambda fw, a, b: a / b, lambda a, b: ref_binary(a, b, r_div))
case("div-overflow", [[1e308, -1e308, 5e-324], [1e-10, 1e-10, 1e10]], lambda fw, a, b: a / b,
     lambda a, b: ref_binary(a, b, r_div))
case("maximum", [values(S3, 5, nonfinite=True), values((3, 1), 6, nonfinite=True)],
     lambda fw, a, b: fw.maximum(a, b), lambda a, b: ref_binary(a, b, r_maximum))
case("minimum", [values(S3, 7, nonfinite=True), values((4,), 8, nonfinite=True)],
     lambda fw, a, b: fw.minimum(a, b), lambda a, b: ref_binary(a, b, r_minimum))
case("maximum-zeros", [[0.0, -0.0, -0.0, 0.0, NAN, 1.0], [-0.0, 0.0, -0.0, 0.0, 1.0, NAN]],
     lambda fw, a, b: fw.maximum(a, b), lambda a, b: ref_binary(a, b, r_maximum))
case("minimum-zeros", [[0.0, -0.0, -0.0, 0.0, NAN, 1.0], [-0.0, 0.0, -0.0, 0.0, 1.0, NAN]],
     lambda fw, a, b: fw.minimum(a, b), lambda a, b: ref_binary(a, b, r_minimum))
case("maximum-scalar", [values(S2, 9, nonfinite=True)], lambda fw, a: fw.maximum(a, 0.5),
     lambda a: ref_binary(a, 0.5, r_maximum))
case("minimum-scalar", [values(S2, 10, nonfinite=True)], lambda fw, a: fw.minimum(a, -0.0),
     lambda a: ref_binary(a, -0.0, r_minimum))

UNARY = [
    ("neg", operator.neg, operator.neg), ("abs-method", lambda t: t.abs(), abs), ("abs", abs, abs),
    ("exp", lambda t: t.exp(), r_exp), ("log", lambda t: t.log(), r_log), ("sqrt", lambda t: t.sqrt(), r_sqrt),
    ("tanh", lambda t: t.tanh(), math.tanh), ("sigmoid", lambda t: t.sigmoid(), r_sigmoid),
]
for name, op, ref in UNARY:
    for shape in (S2, S3, (7,)):
        case(f"{name}-{len(shape)}d", [values(shape, 11, special=0.5, nonfinite=True)],
             lambda fw, a, op=op: op(a), lambda a, ref=ref: ref_unary(a, ref))
case("log-specials", [[0.0, -0.0, -1.0, INF, -INF, NAN, 1.0, 5e-324]], lambda fw, a: a.log(),
     lambda a: ref_unary(a, r_log))
case("sqrt-specials", [[0.0, -0.0, -1.0, INF, -INF, NAN, 4.0, 5e-324]], lambda fw, a: a.sqrt(),
     lambda a: ref_unary(a, r_sqrt))
case("exp-specials", [[709.0, 710.0, -746.0, INF, -INF, NAN, 0.0, -0.0]], lambda fw, a: a.exp(),
     lambda a: ref_unary(a, r_exp))

POW_BASES = [[0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 10.0, -10.0, 1e308, -1e308, INF, -INF, NAN, 5e-324]]
for e in (2, 3, -1, -2, 0.5, -0.5, 0, 1e3, 1001, -1001, 2.5, INF, -INF, NAN, True, 1.0 / 3.0):
    case(f"pow-{e}", POW_BASES, lambda fw, a, e=e: a ** e, lambda a, e=e: ref_unary(a, lambda x: r_pow(x, float(e))))
case("pow-random", [values(S3, 12, nonfinite=True)], lambda fw, a: a ** 1.7, lambda a: ref_unary(a, lambda x: r_pow(x, 1.7)))

for lo, hi in ((0.0, None), (None, 0.5), (-1.0, 1.0), (1.0, -1.0), (-0.0, 0.0), (NAN, 1.0), (-INF, INF)):
    case(f"clamp-{lo}-{hi}", [values(S3, 13, special=0.5, nonfinite=True)],
         lambda fw, a, lo=lo, hi=hi: a.clamp(min=lo, max=hi), lambda a, lo=lo, hi=hi: ref_unary(a, r_clamp(lo, hi)))
case("clamp-positional", [values(S2, 14)], lambda fw, a: a.clamp(-1, 1), lambda a: ref_unary(a, r_clamp(-1.0, 1.0)))

# reductions
RED_SHAPES = [(7,), S2, S3, (2, 1, 3, 2)]
RED_DIMS = {1: [None, 0, -1, (0,)], 2: [None, 0, 1, -1, (0, 1), (1, 0), ()], 3: [None, 0, 1, 2, (0, 2), (2, 0), (-1, 1)],
            4: [None, 1, 3, (0, 2), (1, 3), (0, 1, 2, 3)]}
for shape in RED_SHAPES:
    for dim in RED_DIMS[len(shape)]:
        for keepdim in (False, True):
            full = (dim is None or dim == () or (isinstance(dim, tuple) and len(dim) == len(shape))
                    or len(shape) == 1) and not keepdim
            kind = "float" if full else "tensor"
            tag = f"{len(shape)}d-{dim}-{'keep' if keepdim else 'drop'}"
            data = [values(shape, 15, nonfinite=len(shape) == 2)]
            case(f"sum-{tag}", data, lambda fw, a, d=dim, k=keepdim: a.sum(dim=d, keepdim=k),
                 lambda a, d=dim, k=keepdim: ref_reduce(a, d, k, fold), kind)
            case(f"mean-{tag}", data, lambda fw, a, d=dim, k=keepdim: a.mean(dim=d, keepdim=k),
                 lambda a, d=dim, k=keepdim: ref_reduce(a, d, k, r_mean), kind)
            case(f"var-{tag}", data, lambda fw, a, d=dim, k=keepdim: a.var(dim=d, keepdim=k),
                 lambda a, d=dim, k=keepdim: ref_reduce(a, d, k, r_var(True)), kind)
            case(f"var-biased-{tag}", data, lambda fw, a, d=dim, k=keepdim: a.var(dim=d, unbiased=False, keepdim=k),
                 lambda a, d=dim, k=keepdim: ref_reduce(a, d, k, r_var(False)), kind)
    for dim in [None] + list(range(len(shape))) + [-1]:
        for keepdim in (False, True):
            tag = f"{len(shape)}d-{dim}-{'keep' if keepdim else 'drop'}"
            data = [values(shape, 16, ints=True)]  # ties
            rank0 = (dim is None or len(shape) == 1) and not keepdim
            if dim is None:
                vkind, ikind = ("float", "int") if rank0 else ("tensor", "list")
            else:
                vkind, ikind = ("values,indices", "int" if rank0 else "list")
            for name, larger in (("max", True), ("min", False)):
                case(f"{name}-{tag}", data, lambda fw, a, d=dim, k=keepdim, n=name: getattr(a, n)(dim=d, keepdim=k),
                     lambda a, d=dim, k=keepdim, g=larger: ref_extreme(a, d, k, g, True), vkind)
                case(f"arg{name}-{tag}", data,
                     lambda fw, a, d=dim, k=keepdim, n=name: getattr(a, "arg" + n)(dim=d, keepdim=k),
                     lambda a, d=dim, k=keepdim, g=larger: ref_extreme(a, d, k, g, False), ikind)
for name, larger in (("max", True), ("min", False)):
    nanrow = [[1.0, NAN, 3.0, NAN], [-0.0, 0.0, -0.0, 5.0], [2.0, 2.0, 1.0, -INF]]
    case(f"{name}-nan-dim1", [nanrow], lambda fw, a, n=name: getattr(a, n)(dim=1),
         lambda a, g=larger: ref_extreme(a, 1, False, g, True), "values,indices")
    case(f"{name}-nan-full", [nanrow], lambda fw, a, n=name: getattr(a, n)(),
         lambda a, g=larger: ref_extreme(a, None, False, g, True), "float")
    case(f"arg{name}-nan-dim0", [nanrow], lambda fw, a, n=name: getattr(a, "arg" + n)(dim=0),
         lambda a, g=larger: ref_extreme(a, 0, False, g, False), "list")
case("sum-one-term-negzero", [[[-0.0], [1.0]]], lambda fw, a: a.sum(dim=1), lambda a: ref_reduce(a, 1, False, fold))
case("var-one-term", [[[2.0], [-1.0]]], lambda fw, a: a.var(dim=1), lambda a: ref_reduce(a, 1, False, r_var(True)))
case("sum-overflow", [[1e308, 1e308, -1e308]], lambda fw, a: a.sum(), lambda a: fold(a), "float")

# matmul
MM_SHAPES = [((4,), (4,)), ((3, 4), (4,)), ((4,), (4, 5)), ((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)),
             ((2, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 2)), ((4,), (2, 4, 3)), ((2, 3, 4), (4,)), ((1, 1), (1, 1))]
for sa, sb in MM_SHAPES:
    kind = "float" if len(sa) == len(sb) == 1 else "tensor"
    data = [values(sa, 17, special=0.4), values(sb, 18, special=0.2)]
    case(f"matmul-{sa}-{sb}", data, lambda fw, a, b: a @ b, ref_matmul, kind)
    case(f"fw.matmul-{sa}-{sb}", data, lambda fw, a, b: fw.matmul(a, b), ref_matmul, kind)
case("matmul-skips-zero-times-inf", [[[0.0, 1.0], [-0.0, 2.0]], [[INF, NAN], [1.0, 2.0]]], lambda fw, a, b: a @ b,
     ref_matmul)
case("matmul-nan-a", [[[NAN, 1.0]], [[0.0], [1.0]]], lambda fw, a, b: a @ b, ref_matmul)
case("matmul-negzero", [[[-1.0, 0.0]], [[0.0], [5.0]]], lambda fw, a, b: a @ b, ref_matmul)

# shape operations
X3 = values((2, 3, 4), 19)
X4 = values((2, 1, 3, 2), 20)
for args, shape in (((4, 6), (4, 6)), (((6, 4),), (6, 4)), (([24],), (24,)), ((-1,), (24,)),
                    ((2, -1, 3), (2, 4, 3)), ((1, 24, 1), (1, 24, 1)), (((-1, 2),), (12, 2))):
    case(f"reshape-{args}", [X3], lambda fw, a, s=args: a.reshape(*s), lambda a, s=shape: nest(flat_of(a), s))
for s, e in ((0, -1), (1, 2), (0, 1), (2, 2), (-2, -1), (1, -1)):
    case(f"flatten-{s}-{e}", [X4], lambda fw, a, s=s, e=e: a.flatten(s, e),
         lambda a, s=s, e=e: nest(flat_of(a), (lambda sh, s_, e_: sh[:s_] + (prod(sh[s_:e_ + 1]),) + sh[e_ + 1:])(
             shape_of(a), s % 4, e % 4)))
case("flatten-default", [X3], lambda fw, a: a.flatten(), lambda a: flat_of(a))
for d0, d1 in ((0, 1), (1, 2), (0, 2), (-1, 0), (1, 1)):
    perm = list(range(3))
    perm[d0 % 3], perm[d1 % 3] = perm[d1 % 3], perm[d0 % 3]
    case(f"transpose-{d0}-{d1}", [X3], lambda fw, a, d0=d0, d1=d1: a.transpose(d0, d1),
         lambda a, p=tuple(perm): ref_permute(a, p))
for perm in ((2, 0, 1), (0, 1, 2), (1, 2, 0), (-1, 0, 1)):
    case(f"permute-{perm}", [X3], lambda fw, a, p=perm: a.permute(*p), lambda a, p=perm: ref_permute(a, tuple(q % 3 for q in p)))
case("permute-tuple", [X3], lambda fw, a: a.permute((2, 1, 0)), lambda a: ref_permute(a, (2, 1, 0)))
case("T-2d", [values(S2, 21)], lambda fw, a: a.T, lambda a: ref_permute(a, (1, 0)))
case("T-1d", [values((5,), 22)], lambda fw, a: a.T, lambda a: a)
for parts, dim in (([(2, 3), (1, 3)], 0), ([(2, 3), (2, 1), (2, 2)], 1), ([(2, 3, 4), (2, 1, 4)], 1),
                   ([(2, 3, 4), (2, 3, 2)], -1), ([(3,), (2,)], 0), ([(1, 2, 2)] * 3, 0)):
    data = [values(s, 23 + i) for i, s in enumerate(parts)]
    case(f"cat-{parts}-{dim}", data, lambda fw, *ts, d=dim: fw.cat(list(ts), dim=d), lambda *ps, d=dim: ref_cat(list(ps), d))
case("cat-tuple", [values((2, 2), 30), values((2, 2), 31)], lambda fw, a, b: fw.cat((a, b)),
     lambda a, b: ref_cat([a, b], 0))

# indexing (reads)
INDICES = [0, -1, 1, slice(None), slice(1, None), slice(0, None, 2), slice(-2, None), slice(None, 100), [1, 0, 1],
           [-1], (0, 1), (0, 1, 2), (-1, -1, -1), (slice(None), 0), (slice(None), slice(None), 0),
           (0, slice(None), slice(None, None, 2)), (slice(1, None), slice(None, None, 2)), (..., 1), (0, ...),
           (..., 0, 1), (0, ..., 1), (...,), (slice(None), ..., slice(1, 3)), (1, slice(None, None, 5))]
for ix in INDICES:
    full = isinstance(ix, tuple) and len([i for i in ix if isinstance(i, int)]) == 3
    case(f"getitem-{ix!r}", [X3], lambda fw, a, ix=ix: a[ix], lambda a, ix=ix: ref_index(a, ix),
         "float" if full else "tensor")
for ix in (0, -2, slice(1, 3), [2, 0], (1,), (slice(None), 1), (1, 2), (-1, -4)):
    full = isinstance(ix, tuple) and len(ix) == 2 and all(isinstance(i, int) for i in ix)
    case(f"getitem-2d-{ix!r}", [values(S2, 32)], lambda fw, a, ix=ix: a[ix], lambda a, ix=ix: ref_index(a, ix),
         "float" if full else "tensor")
for ix in (3, -1, slice(2, None, 3), [4, 4], (2,), (...,)):
    case(f"getitem-1d-{ix!r}", [values((6,), 33)], lambda fw, a, ix=ix: a[ix], lambda a, ix=ix: ref_index(a, ix),
         "float" if isinstance(ix, int) or ix == (2,) else "tensor")


# indexing (writes): the whole tensor after the assignment
def ref_set(a: Any, ix: Any, v: Any) -> Any:
    shape = shape_of(a)
    marker = build(shape, lambda c: c)
    sel = ref_index(marker, ix)
    coords = flat_of(sel) if isinstance(sel, list) else [sel]
    sel_shape = shape_of(sel) if isinstance(sel, list) else ()
    if isinstance(v, list):
        vs = shape_of(v)
        while len(vs) > len(sel_shape) and vs[0] == 1:
            v, vs = v[0], vs[1:]
        vals = flat_of(build(sel_shape, lambda c: bread(v, vs, sel_shape, c))) if sel_shape else flat_of(v)
    else:
        vals = [float(v)] * len(coords)
    out = nest(flat_of(a), shape)
    for c, val in zip(coords, vals):
        at(out, c[:-1])[c[-1]] = val
    return out


SETS = [((0,), 7.0), (0, [1.0, 2.0, 3.0, 4.0]), ((slice(None), 0), 0.0), ((slice(None), 0), [[9.0, 8.0, 7.0, 6.0]]),
        ((1, 2, 3), -0.0), ((..., 1), [5.0, 6.0, 7.0]), ((..., 1), [[5.0], [6.0]]), ([1, 0], 2),
        ((0, slice(None, None, 2)), [[[1.5]]]), ((1, slice(1, None), slice(None, None, 3)), NAN),
        ((-1, -1), INF), ((0, 0, 0), True), (slice(None), X3)]
for k, (ix, v) in enumerate(SETS):
    if isinstance(v, list):
        case(f"setitem-{k}", [X3, v], lambda fw, a, t, ix=ix: (a.__setitem__(ix, t), a)[1],
             lambda a, t, ix=ix: ref_set(a, ix, t))
        case(f"setitem-list-{k}", [X3], lambda fw, a, ix=ix, v=v: (a.__setitem__(ix, v), a)[1],
             lambda a, ix=ix, v=v: ref_set(a, ix, v))
    else:
        case(f"setitem-{k}", [X3], lambda fw, a, ix=ix, v=v: (a.__setitem__(ix, v), a)[1],
             lambda a, ix=ix, v=v: ref_set(a, ix, v))

# in place
IP = [("add_", lambda t, o: t.add_(o), operator.add), ("sub_", lambda t, o: t.sub_(o), operator.sub),
      ("mul_", lambda t, o: t.mul_(o), operator.mul), ("div_", lambda t, o: t.div_(o), r_div),
      ("add_-alpha", lambda t, o: t.add_(o, alpha=-0.3), lambda a, b: a + (-0.3 * b)),
      ("sub_-alpha", lambda t, o: t.sub_(o, alpha=2.5), lambda a, b: a - (2.5 * b))]
for name, op, ref in IP:
    for sid, sb in (("same", S3), ("row", (4,)), ("bc", (3, 1)), ("scalar", None)):
        other = 0.7 if sb is None else values(sb, 34, special=0.3)
        inputs = [values(S3, 35, nonfinite=name not in ("add_", "add_-alpha"))] + ([] if sb is None else [other])
        if sb is None:
            case(f"{name}-{sid}", inputs, lambda fw, a, op=op: (op(a, 0.7), a)[1],
                 lambda a, ref=ref: ref_binary(a, 0.7, ref))
        else:
            case(f"{name}-{sid}", inputs, lambda fw, a, b, op=op: (op(a, b), a)[1],
                 lambda a, b, ref=ref: ref_binary(a, b, ref))
for lo, hi in ((0.0, None), (None, -0.5), (-1.0, 1.0)):
    case(f"clamp_-{lo}-{hi}", [values(S2, 36, nonfinite=True)], lambda fw, a, lo=lo, hi=hi: (a.clamp_(lo, hi), a)[1],
         lambda a, lo=lo, hi=hi: ref_unary(a, r_clamp(lo, hi)))

# creation and conversion
for name, val in (("zeros", 0.0), ("ones", 1.0)):
    for size in ((3,), (2, 3), ((2, 3, 1),), ([4, 1],)):
        shape = size[0] if isinstance(size[0], (tuple, list)) else size
        case(f"{name}-{size}", [], lambda fw, n=name, s=size: getattr(fw, n)(*s),
             lambda s=tuple(shape), v=val: build(s, lambda c: v))
    case(f"{name}_like", [X3], lambda fw, a, n=name: getattr(fw, n + "_like")(a), lambda a, v=val: build((2, 3, 4), lambda c: v))
for fill in (2.5, -0.0, INF, NAN, 3):
    case(f"full-{fill}", [], lambda fw, f=fill: fw.full((2, 2, 3), f), lambda f=fill: build((2, 2, 3), lambda c: float(f)))
case("full-list-size", [], lambda fw: fw.full([3], 1.5), lambda: [1.5] * 3)


def ref_draws(shape: tuple, seed: int, normal: bool) -> Any:
    g = pyfw.Generator(seed)
    return nest([g.normal() if normal else g.random() for _ in range(prod(shape))], shape)


for name in ("rand", "randn"):
    for size in ((5,), (2, 3), (2, 2, 3)):
        case(f"{name}-{size}", [], lambda fw, n=name, s=size: getattr(fw, n)(*s, generator=fw.Generator(7)),
             lambda n=name, s=size: ref_draws(s, 7, n == "randn"))
        case(f"{name}-tuple-{size}", [], lambda fw, n=name, s=size: getattr(fw, n)(s, generator=fw.Generator(8)),
             lambda n=name, s=size: ref_draws(s, 8, n == "randn"))
case("item", [[[[2.5]]]], lambda fw, a: a.item(), lambda a: 2.5, "float")
case("tolist-4d", [X4], lambda fw, a: a.tolist(), lambda a: a, "raw")
case("numel-ndim", [X4], lambda fw, a: (a.numel(), a.ndim, a.dim(), a.shape, len(a)), lambda a: (12, 4, 4, (2, 1, 3, 2), 2),
     "raw")
case("iter-3d", [X3], lambda fw, a: [t.tolist() for t in a], lambda a: a, "raw")
case("clone-4d", [X4], lambda fw, a: a.clone(), lambda a: a)
case("chain", [values(S3, 40), values((4,), 41)],
     lambda fw, x, w: ((x * 2 + 1) / (x.abs() + 1.0) - x ** 2).sum(dim=-1) + (x @ w).exp().log(),
     lambda x, w: ref_binary(ref_reduce(ref_binary(ref_binary(ref_binary(ref_binary(x, 2.0, operator.mul), 1.0,
                                                                          operator.add),
                                                               ref_binary(ref_unary(x, abs), 1.0, operator.add),
                                                               r_div),
                                                    ref_unary(x, lambda v: r_pow(v, 2.0)), operator.sub),
                                         -1, False, fold),
                            ref_unary(ref_unary(ref_matmul(x, w), r_exp), r_log), operator.add))


def _run(fw: ModuleType, inputs: list, op: Callable) -> Any:
    return op(fw, *[make(fw, v) for v in inputs])


def _view(r: Any, kind: str) -> Any:
    """A backend's result as comparable data (``raw``: plain Python values, as hex)."""
    return hexes(r) if kind == "raw" else norm(r)


@pytest.mark.parametrize("inputs, op, ref, kind", CASES)
def test_op_matches_reference(inputs: list, op: Callable, ref: Callable, kind: str) -> None:
    got = _run(pyfw, inputs, op)
    want = ref(*[nest(flat_of(v), shape_of(v)) if isinstance(v, list) else v for v in inputs])
    assert _view(got, kind) == (hexes(want) if kind == "raw" else norm_ref(want, kind))


@pytest.mark.parametrize("inputs, op, ref, kind", CASES)
def test_op_is_bit_identical_in_pyfw_rs(inputs: list, op: Callable, ref: Callable, kind: str) -> None:
    want = _view(_run(pyfw, inputs, op), kind)
    got = run_rs(lambda rs: _run(rs, inputs, op))
    assert _view(got, kind) == want


def test_inputs_keep_their_values() -> None:
    """Arithmetic and reads never change their operands."""
    a = pyfw.tensor(X3)
    b = pyfw.tensor(values((4,), 50))
    for f in (lambda: a + b, lambda: a * 2, lambda: a @ b, lambda: a.sum(dim=1), lambda: a[0, :, 1],
              lambda: a.permute(2, 0, 1), lambda: a.reshape(-1), lambda: pyfw.cat([a, a]), lambda: a.clamp(0.0),
              lambda: a.max(dim=0), lambda: -a, lambda: a > b):
        f()
        assert a.tolist() == X3


def test_reads_are_copies_and_writes_renew_rows() -> None:
    """``x[0][1] = v`` changes a temporary; an assignment puts new row lists in the tensor."""
    x = pyfw.tensor(X3)
    x[0][1] = 5.0
    assert x.tolist() == X3
    snapshot = list(x._rows)
    x[:, 0] = 0.0
    assert [list(r) for r in snapshot] == [r for m in X3 for r in m]  # old rows untouched
    assert x[1, 0].tolist() == [0.0] * 4


def test_hash_bool_and_membership(fw: ModuleType) -> None:
    require_nd(fw)
    a, b = fw.tensor([1.0, 2.0]), fw.tensor([1.0, 2.0, 3.0])
    assert {a: 1}[a] == 1 and len({a, b}) == 2 and hash(a) == hash(a)
    assert bool(fw.tensor([[0.5]])) is True and bool(fw.tensor([0.0])) is False
    with pytest.raises(RuntimeError):
        bool(a)
    assert (a == None) is False and (a != None) is True  # noqa: E711 - Python's answer for unrelated objects
    assert (a == "a") is False


def test_matmul_folds_like_linear(fw: ModuleType) -> None:
    """``x @ W.T`` gives ``Linear``'s bits for a zero bias (NUMERICS: the same skipping fold)."""
    require_nd(fw)
    g = fw.Generator(3)
    lin = fw.Linear(4, 3, generator=g)
    x = fw.rand(5, 4, generator=g)
    x[1, 2] = 0.0
    lin.load_state_dict({"weight": lin.weight.tolist(), "bias": [0.0, 0.0, 0.0]})
    assert hexes(lin(x).tolist()) == hexes((x @ lin.weight.T).tolist())


def test_existing_modules_on_higher_ranks(fw: ModuleType) -> None:
    """The modules take any rank as torch does; a shape they cannot take is refused (never a silently
    wrong result). tests/test_modules_nd.py checks the values."""
    require_nd(fw)
    x = fw.tensor(X3)
    assert fw.ReLU()(x).tolist() == ref_unary(X3, lambda v: v if v > 0.0 else 0.0)
    y = fw.Softmax(dim=-1)(x)
    assert y.shape == (2, 3, 4) and hexes(y.tolist()) == hexes(fw.Softmax(dim=1)(x.reshape(6, 4)).reshape(2, 3, 4)
                                                              .tolist())
    assert fw.Linear(4, 2)(x).shape == (2, 3, 2)
    assert fw.Softmax(dim=0)(x).shape == fw.LogSoftmax(dim=1)(x).shape == (2, 3, 4)
    for bad in (lambda: fw.Linear(3, 2)(x), lambda: fw.Softmax(dim=3)(x), lambda: fw.LogSoftmax(dim=-4)(x),
                lambda: fw.CrossEntropyLoss()(x, [0, 1])):
        with pytest.raises(ValueError):
            bad()


# ---- bad input: the same exception type in both backends -----------------------------------------

T2 = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
BAD = [
    ("tensor-ragged-3d", lambda fw: fw.tensor([[[1.0, 2.0]], [[1.0]]]), ValueError),
    ("tensor-mixed-depth", lambda fw: fw.tensor([[[1.0]], [1.0]]), ValueError),
    ("tensor-empty-inner", lambda fw: fw.tensor([[[]]]), ValueError),
    ("tensor-nan-3d", lambda fw: fw.tensor([[[NAN]]]), ValueError),
    ("tensor-str-3d", lambda fw: fw.tensor([[["a"]]]), TypeError),
    ("add-shapes", lambda fw: fw.tensor(T2) + fw.tensor([1.0, 2.0]), ValueError),
    ("mul-shapes-3d", lambda fw: fw.tensor([[[1.0, 2.0]] * 3] * 2) * fw.tensor([[1.0, 2.0]] * 2), ValueError),
    ("add-list", lambda fw: fw.tensor(T2) + [1.0, 2.0, 3.0], TypeError),
    ("radd-list", lambda fw: [1.0, 2.0, 3.0] + fw.tensor(T2), TypeError),
    ("add-str", lambda fw: fw.tensor(T2) + "a", TypeError),
    ("add-none", lambda fw: fw.tensor(T2) + None, TypeError),
    ("lt-none", lambda fw: fw.tensor(T2) < None, TypeError),
    ("eq-list", lambda fw: fw.tensor(T2) == [1.0, 2.0, 3.0], TypeError),
    ("eq-shapes", lambda fw: fw.tensor(T2) == fw.tensor([1.0, 2.0]), ValueError),
    ("pow-tensor", lambda fw: fw.tensor(T2) ** fw.tensor(T2), TypeError),
    ("pow-str", lambda fw: fw.tensor(T2) ** "2", TypeError),
    ("add-huge-int", lambda fw: fw.tensor(T2) + 10 ** 400, OverflowError),
    ("clamp-none", lambda fw: fw.tensor(T2).clamp(), ValueError),
    ("clamp-str", lambda fw: fw.tensor(T2).clamp(min="0"), TypeError),
    ("maximum-list", lambda fw: fw.maximum(fw.tensor(T2), [1.0]), TypeError),
    ("maximum-number-first", lambda fw: fw.maximum(1.0, fw.tensor(T2)), TypeError),
    ("minimum-shapes", lambda fw: fw.minimum(fw.tensor(T2), fw.tensor([1.0, 2.0])), ValueError),
    ("matmul-inner", lambda fw: fw.tensor(T2) @ fw.tensor(T2), ValueError),
    ("matmul-1d", lambda fw: fw.tensor([1.0, 2.0]) @ fw.tensor([1.0, 2.0, 3.0]), ValueError),
    ("matmul-batch", lambda fw: fw.tensor([T2] * 2) @ fw.tensor([[[1.0]] * 3] * 3), ValueError),
    ("matmul-number", lambda fw: fw.tensor(T2) @ 2.0, TypeError),
    ("fw-matmul-list", lambda fw: fw.matmul(fw.tensor(T2), [[1.0]] * 3), TypeError),
    ("sum-dim-range", lambda fw: fw.tensor(T2).sum(dim=2), IndexError),
    ("sum-dim-neg-range", lambda fw: fw.tensor(T2).sum(dim=-3), IndexError),
    ("sum-dim-repeat", lambda fw: fw.tensor(T2).sum(dim=(0, 0)), ValueError),
    ("sum-dim-repeat-neg", lambda fw: fw.tensor(T2).sum(dim=(1, -1)), ValueError),
    ("sum-dim-float", lambda fw: fw.tensor(T2).sum(dim=1.0), TypeError),
    ("sum-dim-str", lambda fw: fw.tensor(T2).sum(dim="0"), TypeError),
    ("mean-dim-range", lambda fw: fw.tensor(T2).mean(dim=(0, 5)), IndexError),
    ("var-dim-range", lambda fw: fw.tensor(T2).var(dim=3), IndexError),
    ("max-dim-range", lambda fw: fw.tensor(T2).max(dim=2), IndexError),
    ("max-dim-tuple", lambda fw: fw.tensor(T2).max(dim=(0, 1)), TypeError),
    ("argmin-dim-range", lambda fw: fw.tensor([1.0]).argmin(dim=1), IndexError),
    ("argmax-dim-bool", lambda fw: fw.tensor(T2).argmax(dim=True), TypeError),
    ("item-many", lambda fw: fw.tensor(T2).item(), ValueError),
    ("bool-many", lambda fw: bool(fw.tensor(T2)), RuntimeError),
    ("reshape-mismatch", lambda fw: fw.tensor(T2).reshape(4, 2), ValueError),
    ("reshape-two-infer", lambda fw: fw.tensor(T2).reshape(-1, -1), ValueError),
    ("reshape-infer-bad", lambda fw: fw.tensor(T2).reshape(4, -1), ValueError),
    ("reshape-zero", lambda fw: fw.tensor(T2).reshape(0, 6), ValueError),
    ("reshape-neg", lambda fw: fw.tensor(T2).reshape(-2, -3), ValueError),
    ("reshape-float", lambda fw: fw.tensor(T2).reshape(2.0, 3), TypeError),
    ("reshape-empty", lambda fw: fw.tensor(T2).reshape(), ValueError),
    ("flatten-range", lambda fw: fw.tensor(T2).flatten(0, 2), IndexError),
    ("flatten-order", lambda fw: fw.tensor([T2]).flatten(2, 1), ValueError),
    ("transpose-range", lambda fw: fw.tensor(T2).transpose(0, 2), IndexError),
    ("permute-not-perm", lambda fw: fw.tensor(T2).permute(0, 0), ValueError),
    ("permute-count", lambda fw: fw.tensor(T2).permute(0), ValueError),
    ("permute-range", lambda fw: fw.tensor(T2).permute(0, 2), IndexError),
    ("T-3d", lambda fw: fw.tensor([T2]).T, ValueError),
    ("index-tuple-range", lambda fw: fw.tensor(T2)[0, 3], IndexError),
    ("index-tuple-neg-range", lambda fw: fw.tensor(T2)[-3, 0], IndexError),
    ("index-too-many", lambda fw: fw.tensor(T2)[0, 0, 0], IndexError),
    ("index-two-ellipsis", lambda fw: fw.tensor(T2)[..., ...], IndexError),
    ("index-step-zero", lambda fw: fw.tensor(T2)[::0], ValueError),
    ("index-step-neg", lambda fw: fw.tensor(T2)[::-1], ValueError),
    ("index-step-neg-tuple", lambda fw: fw.tensor(T2)[:, ::-2], ValueError),
    ("index-empty-slice-tuple", lambda fw: fw.tensor(T2)[:, 3:], ValueError),
    ("index-none", lambda fw: fw.tensor(T2)[None], TypeError),
    ("index-none-tuple", lambda fw: fw.tensor(T2)[0, None], TypeError),
    ("index-float-tuple", lambda fw: fw.tensor(T2)[0, 1.0], TypeError),
    ("index-bool-tuple", lambda fw: fw.tensor(T2)[0, True], TypeError),
    ("index-list-in-tuple", lambda fw: fw.tensor(T2)[[0, 1], 0], TypeError),
    ("index-list-in-tuple-2", lambda fw: fw.tensor(T2)[:, [0, 1]], TypeError),
    ("index-tensor", lambda fw: fw.tensor(T2)[fw.tensor([0.0])], TypeError),
    ("set-shape", lambda fw: fw.tensor(T2).__setitem__(0, fw.tensor([1.0, 2.0])), ValueError),
    ("set-range", lambda fw: fw.tensor(T2).__setitem__((2, 0), 1.0), IndexError),
    ("set-str", lambda fw: fw.tensor(T2).__setitem__(0, "a"), TypeError),
    ("set-none", lambda fw: fw.tensor(T2).__setitem__(0, None), TypeError),
    ("set-list-nan", lambda fw: fw.tensor(T2).__setitem__(0, [NAN, 1.0, 2.0]), ValueError),
    ("set-list-ragged", lambda fw: fw.tensor(T2).__setitem__(slice(None), [[1.0], [1.0, 2.0]]), ValueError),
    ("set-bad-index", lambda fw: fw.tensor(T2).__setitem__(1.5, 0.0), TypeError),
    ("set-step-neg", lambda fw: fw.tensor(T2).__setitem__(slice(None, None, -1), 0.0), ValueError),
    ("add_-shape", lambda fw: fw.tensor([1.0, 2.0]).add_(fw.tensor(T2)), ValueError),
    ("sub_-shape", lambda fw: fw.tensor(T2).sub_(fw.tensor([1.0, 2.0])), ValueError),
    ("mul_-grows", lambda fw: fw.tensor([[1.0, 2.0, 3.0]]).mul_(fw.tensor(T2)), ValueError),
    ("div_-str", lambda fw: fw.tensor(T2).div_("a"), TypeError),
    ("clamp_-none", lambda fw: fw.tensor(T2).clamp_(), ValueError),
    ("zeros-zero", lambda fw: fw.zeros(2, 0), ValueError),
    ("zeros-neg", lambda fw: fw.zeros(-1), ValueError),
    ("zeros-none", lambda fw: fw.zeros(), ValueError),
    ("zeros-float", lambda fw: fw.zeros(2.0), TypeError),
    ("zeros-bool", lambda fw: fw.zeros(True), TypeError),
    ("ones-str", lambda fw: fw.ones("3"), TypeError),
    ("ones-tuple-zero", lambda fw: fw.ones((3, 0)), ValueError),
    ("ones-huge", lambda fw: fw.ones(2 ** 40, 2 ** 30), (MemoryError, ValueError)),
    ("full-str-fill", lambda fw: fw.full((2,), "1"), TypeError),
    ("full-zero", lambda fw: fw.full((0,), 1.0), ValueError),
    ("zeros_like-list", lambda fw: fw.zeros_like([1.0]), TypeError),
    ("ones_like-none", lambda fw: fw.ones_like(None), TypeError),
    ("rand-zero", lambda fw: fw.rand(0), ValueError),
    ("rand-gen", lambda fw: fw.rand(2, generator=3), TypeError),
    ("randn-float", lambda fw: fw.randn(1.5), TypeError),
    ("cat-empty", lambda fw: fw.cat([]), ValueError),
    ("cat-rank", lambda fw: fw.cat([fw.tensor(T2), fw.tensor([1.0])]), ValueError),
    ("cat-size", lambda fw: fw.cat([fw.tensor(T2), fw.tensor([[1.0, 2.0]])]), ValueError),
    ("cat-dim-range", lambda fw: fw.cat([fw.tensor(T2)], dim=2), IndexError),
    ("cat-not-list", lambda fw: fw.cat(fw.tensor(T2)), TypeError),
    ("cat-list-item", lambda fw: fw.cat([fw.tensor(T2), [[1.0, 2.0, 3.0]]]), TypeError),
]


@pytest.mark.parametrize("call, exc", [pytest.param(c, e, id=i) for i, c, e in BAD])
def test_bad_input_same_exception_type(call: Callable, exc: Any) -> None:
    with pytest.raises(exc) as e_py:
        call(pyfw)
    rs = load_backend("rs")
    require_nd(rs)
    try:
        call(rs)
    except (AttributeError, NotImplementedError) as e:
        pytest.skip(f"pyfw_rs lacks this operation: {e}")
    except Exception as e_rs:  # noqa: BLE001 - the type is what is compared
        assert type(e_rs) is type(e_py.value), (type(e_rs), e_rs, type(e_py.value), e_py.value)
    else:
        pytest.fail(f"pyfw_rs raised nothing; pyfw raised {type(e_py.value).__name__}: {e_py.value}")


def test_backends_do_not_mix() -> None:
    """An operand of the other backend is a TypeError that says so."""
    rs = load_backend("rs")
    require_nd(rs)
    for a, b in ((pyfw.tensor(T2), rs.tensor(T2)), (rs.tensor(T2), pyfw.tensor(T2))):
        for f in (operator.add, operator.mul, operator.truediv, operator.lt, operator.matmul, operator.eq):
            with pytest.raises(TypeError, match="do not mix"):
                f(a, b)


def test_names_exported() -> None:
    for name in ("zeros", "ones", "full", "zeros_like", "ones_like", "rand", "randn", "cat", "maximum", "minimum",
                 "matmul"):
        assert name in pyfw.__all__ and callable(getattr(pyfw, name))


def test_rank_is_at_most_16_in_both_backends(fw: ModuleType) -> None:
    """Both backends hold 1 to 16 dimensions: a deeper list or a 17th size is refused alike."""
    deep: Any = 1.0
    for _ in range(17):
        deep = [deep]
    with pytest.raises(ValueError, match="16 dimensions"):
        fw.tensor(deep)
    with pytest.raises(ValueError, match="16 dimensions"):
        fw.ones(*([1] * 17))
    with pytest.raises(ValueError, match="16 dimensions"):
        fw.ones(2).reshape(*([1] * 16 + [2]))
    assert fw.ones(*([1] * 16)).ndim == 16
