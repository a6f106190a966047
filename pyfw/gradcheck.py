"""Finite-difference check of a module's or a loss's hand-written ``backward``.

Written once for both backends: it only calls ``forward``, ``backward``,
``param()``, ``tolist()`` and ``copy_()``, so it checks the modules of
``pyfw``, of ``pyfw_rs`` and a user's own ``Module`` alike.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from .training import backend_of

_UPSTREAM_SEED = 0
"""Seed of the generator that draws the fixed upstream gradient (never the default generator)."""


class GradcheckError(RuntimeError):
    """An analytic gradient differs from its central difference by more than
    ``atol + rtol * |numeric|``. ``where`` names the input or parameter, ``index``
    the entry, ``analytic`` and ``numeric`` the two values."""

    def __init__(self, message: str, where: str, index: tuple, analytic: float, numeric: float) -> None:
        super().__init__(message)
        self.where = where
        self.index = index
        self.analytic = analytic
        self.numeric = numeric


def _flat(nested: Any) -> tuple:
    """``(values, shape)`` of a nested list of floats, in row-major order."""
    shape = []
    level = nested
    while isinstance(level, list):
        shape.append(len(level))
        level = level[0] if level else None
    values: list = []

    def walk(v: Any) -> None:
        if isinstance(v, list):
            for item in v:
                walk(item)
        else:
            values.append(float(v))

    walk(nested)
    return values, tuple(shape)


def _nest(values: list, shape: tuple) -> Any:
    """The nested list of ``shape`` holding ``values`` in row-major order."""
    if len(shape) <= 1:
        return list(values)
    step = len(values) // shape[0]
    return [_nest(values[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def _unravel(k: int, shape: tuple) -> tuple:
    """The multi-index of the ``k``-th entry in row-major order."""
    index = []
    for d in reversed(shape):
        index.append(k % d)
        k //= d
    return tuple(reversed(index))


def _modules(m: Any) -> list:
    """``m`` and every module below it, depth first."""
    out = [m]
    children = getattr(m, "children", None)
    if callable(children):
        for c in children():
            out.extend(_modules(c))
    return out


def _refuse_random(module: Any, fw: Any) -> None:
    """Refuse a module that would draw random numbers at each forward."""
    dropout = getattr(fw, "Dropout", None)
    for m in _modules(module):
        if dropout is not None and isinstance(m, dropout) and m.training and m.p > 0.0:
            raise ValueError(f"gradcheck: {type(module).__name__} holds a Dropout(p={m.p}) in training mode, "
                             "which draws a new mask at every forward; call .eval() first")


def _dot(out: Any, upstream: list) -> float:
    """The dot product of ``out`` and ``upstream``, folded left to right from 0.0 in row-major order."""
    values, _ = _flat(out.tolist())
    acc = 0.0
    for a, b in zip(values, upstream):
        acc += a * b
    return acc


def gradcheck(module: Any, *inputs: Any, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3) -> bool:
    """Compare ``module.backward`` with central differences; return ``True`` or raise
    :class:`GradcheckError` naming the worst entry.

    For a module, the checked function is ``f = <forward(*inputs), u>`` (the dot product) with a
    fixed upstream gradient ``u`` drawn U(-1, 1) from ``Generator(0)`` of the
    module's backend, so ``backward(u)`` must give ``df/dinput``, and the gradients
    it adds to ``param()`` must give ``df/dparameter``. For a loss (a call that
    returns a Python float), ``f`` is the loss itself, ``backward()`` gives
    ``df/dinputs[0]``, and the other inputs (the target) are not checked.

    Each entry ``x`` is checked with ``(f(x + eps) - f(x - eps)) / (2 eps)``: the
    pair agrees when ``|analytic - numeric| <= atol + rtol * |numeric|``. Inputs that
    are not tensors or nested lists of numbers (class indices) are passed unchanged.

    The module is left as it was found: every parameter keeps its bits, and the
    gradients and the buffers (running statistics) hold what they held before (the
    forward state is that of ``inputs``).
    A module in training mode that draws random numbers (``Dropout``) is refused
    with a ``ValueError`` suggesting ``eval()``. It runs with grad enabled, inside
    ``no_grad`` too.
    """
    for name, v in (("eps", eps), ("atol", atol), ("rtol", rtol)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0.0 or v == float("inf"):
            raise ValueError(f"gradcheck: {name} must be a finite number >= 0, got {v!r}")
    if eps == 0.0:
        raise ValueError("gradcheck: eps must be > 0")
    if not inputs:
        raise TypeError(f"gradcheck: give the inputs of {type(module).__name__} after the module")
    fw = backend_of(module)
    _refuse_random(module, fw)
    with fw.enable_grad():  # the forwards must keep what backward needs, even inside no_grad
        return _check(fw, module, inputs, eps, atol, rtol)


def _check(fw: Any, module: Any, inputs: tuple, eps: float, atol: float, rtol: float) -> bool:
    """:func:`gradcheck` once its arguments are checked, with grad enabled."""
    args = [_as_input(fw, x) for x in inputs]
    pairs = list(module.param())
    saved_params = [p.tolist() for p, _ in pairs]
    saved_grads = [g.tolist() for _, g in pairs]
    buffers = _buffers(module)
    saved_buffers = [b.tolist() for b in buffers]

    first = module(*args)
    is_loss = isinstance(first, (int, float))
    upstream: list = []
    if not is_loss:
        gen = fw.Generator(_UPSTREAM_SEED)
        n = len(_flat(first.tolist())[0])
        upstream = [gen.uniform(-1.0, 1.0) for _ in range(n)]
        shape = _flat(first.tolist())[1]

    def f() -> float:
        out = module(*args)
        return float(out) if is_loss else _dot(out, upstream)

    a, b = f(), f()
    if a != b and (a == a or b == b):
        raise ValueError(f"gradcheck: {type(module).__name__} gives different outputs for the same inputs; "
                         "a module that draws random numbers must be in eval mode")
    try:
        for _, g in pairs:
            g.zero_()
        module(*args)
        if is_loss:
            grads = module.backward()
        else:
            grads = module.backward(fw.tensor(_nest(upstream, shape)))
        if not isinstance(grads, tuple):
            grads = (grads,)
        checks = []
        checked_inputs = [0] if is_loss else [i for i, x in enumerate(args) if isinstance(x, fw.Tensor)]
        for i in checked_inputs:
            if i >= len(grads) or grads[i] is None:
                raise ValueError(f"gradcheck: {type(module).__name__}.backward returned no gradient for input {i}")
            checks.append((f"input {i}", args[i], grads[i].tolist()))
        for k, (p, g) in enumerate(pairs):
            checks.append((f"parameter {k} {_param_name(module, k)}", p, g.tolist()))
        worst = None
        for where, t, analytic in checks:
            found = _compare(where, t, analytic, f, eps, atol, rtol)
            if found is not None and (worst is None or found[0] > worst[0]):
                worst = found
    finally:
        for (p, g), value, grad in zip(pairs, saved_params, saved_grads):
            p.copy_(value)
            g.copy_(grad)
        module(*args)
        for buf, value in zip(buffers, saved_buffers):
            buf.copy_(value)
    if worst is not None:
        _, where, index, a, n = worst
        raise GradcheckError(f"gradcheck: {type(module).__name__}: {where} at index {list(index)}: analytic "
                             f"{a!r} differs from numeric {n!r} (|difference| {abs(a - n):.3g} > atol {atol} + "
                             f"rtol {rtol} * |numeric|)", where, index, a, n)
    return True


def _as_input(fw: Any, x: Any) -> Any:
    """A tensor of ``fw`` for a nested list of floats; anything else unchanged."""
    if isinstance(x, list) and x and isinstance(x[0], (list, float)):
        return fw.tensor(x)
    return x


def _buffers(module: Any) -> list:
    """The module's buffers (running statistics), which its forwards may change."""
    named = getattr(module, "named_buffers", None)
    return [b for _, b in named()] if callable(named) else []


def _param_name(module: Any, k: int) -> str:
    """The dotted name of the ``k``-th parameter, where ``named_parameters`` gives it."""
    named = getattr(module, "named_parameters", None)
    if callable(named):
        names = [n for n, _ in named()]
        if k < len(names):
            return f"({names[k]})"
    return ""


def _compare(where: str, t: Any, analytic: Any, f: Callable[[], float], eps: float, atol: float,
             rtol: float) -> Optional[tuple]:
    """Perturb each entry of ``t`` in place by ``±eps``; return the worst failing entry as
    ``(excess, where, index, analytic, numeric)``, or None when every entry agrees."""
    base, shape = _flat(t.tolist())
    grads, gshape = _flat(analytic)
    if gshape != shape:
        raise ValueError(f"gradcheck: the gradient of {where} has shape {gshape}, expected {shape}")
    worst = None
    for k, x in enumerate(base):
        values = list(base)
        values[k] = x + eps
        t.copy_(_nest(values, shape))
        up = f()
        values[k] = x - eps
        t.copy_(_nest(values, shape))
        down = f()
        numeric = (up - down) / (2.0 * eps)
        a = grads[k]
        excess = abs(a - numeric) - (atol + rtol * abs(numeric))
        if not excess <= 0.0 and (worst is None or not excess <= worst[0]):
            worst = (excess if excess == excess else float("inf"), where, _unravel(k, shape), a, numeric)
    t.copy_(_nest(base, shape))
    return worst
