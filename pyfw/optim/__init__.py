"""The optimizer family: ``SGD``, ``Adam``, ``AdamW``, ``Adagrad`` and ``RMSprop``,
with torch's names, defaults, checks and update formulas term for term.

One base, ``Optimizer``, owns the parameters, ``param_groups``, ``defaults``, the
state of every parameter, ``step``, ``zero_grad``, ``state_dict`` and
``load_state_dict``. Each member writes only its checks and its update rule,
``_update``, over the row lists of one parameter. ``OPTIMIZERS`` lists the
members: the public names, the CLI choices and the tests come from it; each
member's constructor signature is its table line (the hyperparameters, their
order, defaults and kinds). ``rust/optim.rs`` holds the same rules, in the same
order, under the same names. The order of floating-point operations of every
rule is in docs/NUMERICS.md, section "Optimizers".

``params`` is ``model.param()`` (the seed's ``(parameter, gradient)`` pairs) or
``model.parameters()`` (tensors whose ``.grad`` is read at every step; one whose
``.grad`` is None is skipped, as in torch). An optimizer holds **one** parameter
group: ``param_groups`` is a list of one dict holding ``"params"`` and every
hyperparameter, and every ``step()`` reads the hyperparameters from it and checks
them as the constructor does, so a scheduler or a user may set ``"lr"``,
``"momentum"`` or ``"betas"`` there (its ``"params"`` lists the parameter
tensors; changing that list changes nothing). A list of dicts as ``params``
(torch's parameter groups) gets a ``TypeError``. ``state_dict()`` follows torch's
layout, with ``"step"`` as an int. ``zero_grad()`` zeroes the gradients in place
(torch's ``set_to_none=False``): modules keep accumulating into the same tensors.
``lr_scheduler`` holds the schedulers.
"""

from __future__ import annotations

import inspect
import math
import numbers
from itertools import repeat
from operator import mul, sub, truediv
from typing import Any, Callable, Iterable, Optional

from ..error import check_real, described, mixed
from ..tensor import Tensor, _parse
from . import lr_scheduler

Rows = list

# ---------------------------------------------------------------- checks of values

_MAX_STEP = 1 << 53


def _flag(v: Any, who: str, what: str) -> bool:
    """A bool (no other type)."""
    if not isinstance(v, bool):
        raise TypeError(f"{who}: {what} must be a bool, got {type(v).__name__}")
    return v


def _pair(v: Any, who: str, what: str) -> tuple:
    """Two finite reals given as a tuple or list, as a tuple of floats."""
    if not isinstance(v, (tuple, list)) or len(v) != 2:
        raise TypeError(f"{who}: {what} must be a pair of real numbers, got {type(v).__name__}")
    return (check_real(v[0], who, f"{what}[0]"), check_real(v[1], who, f"{what}[1]"))


def _kind(default: Any) -> Callable[[Any, str, str], Any]:
    """The check of a hyperparameter, from the type of its default."""
    if isinstance(default, bool):
        return _flag
    if isinstance(default, tuple):
        return _pair
    return check_real


def _non_negative(who: str, what: str, v: float) -> None:
    if not v >= 0.0:
        raise ValueError(f"{who}: {what} must be non-negative, got {v!r}")


def _betas(who: str, betas: tuple) -> None:
    for i, b in enumerate(betas):
        if not 0.0 <= b < 1.0:
            raise ValueError(f"{who}: betas[{i}] must be in [0, 1), got {b!r}")


def _step_count(v: Any, at: str) -> int:
    """A ``step`` of a loaded state: a whole number in ``[0, 2**53]``."""
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        ok = 0 <= v <= _MAX_STEP
    elif isinstance(v, float):
        ok = v.is_integer() and 0.0 <= v <= _MAX_STEP
    else:
        raise TypeError(f"{at}['step'] must be an int, got {type(v).__name__}")
    if not ok:
        raise ValueError(f"{at}['step'] must be a whole number in [0, 2**53], got {v!r}")
    return int(v)


def _param_list(params: Any, who: str) -> list:
    """``[(parameter, gradient or None), ...]`` from pairs or from tensors carrying ``.grad``."""
    if isinstance(params, (Tensor, dict)):
        items = None
    else:
        try:
            items = list(params)
        except TypeError:
            items = None
    if items is None:
        raise TypeError(f"{who}: params must be an iterable of Tensors or (parameter, gradient) pairs, "
                        f"got {type(params).__name__}")
    out = []
    for i, item in enumerate(items):
        if isinstance(item, Tensor):
            out.append((item, None))
            continue
        if isinstance(item, dict):
            raise TypeError(f"{who}: params[{i}] is a dict; parameter groups are not supported "
                            f"(one group: set its values in param_groups[0])")
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TypeError(f"{who}: params[{i}] is neither a pyfw Tensor nor a (parameter, gradient) pair, "
                            f"got {described(item)}{mixed((item,), 'pyfw')}")
        p, g = item
        if not isinstance(p, Tensor) or not isinstance(g, Tensor):
            raise TypeError(f"{who}: params[{i}] must hold two pyfw Tensors, "
                            f"got {described(p)} and {described(g)}{mixed((p, g), 'pyfw')}")
        if p.shape != g.shape:
            raise ValueError(f"{who}: params[{i}] has parameter shape {p.shape} and gradient shape {g.shape}")
        out.append((p, g))
    if not out:
        raise ValueError(f"{who}: got an empty parameter list")
    return out


_NAN = math.inf - math.inf
"""The NaN that the hardware makes for an invalid operation (``0x7ff8...`` or, on x86,
``0xfff8...``): what ``0.0 / 0.0`` and ``sqrt(-1.0)`` give in Rust on the same machine.
``math.nan`` is always ``0x7ff8...`` (docs/NUMERICS.md, "NaN")."""


def _div(a: float, b: float) -> float:
    """``a / b`` with IEEE semantics for ``b == 0`` (inf or nan, as torch and Rust), where Python raises."""
    if b != 0.0:
        return a / b
    if a != a:
        return a
    if a == 0.0:
        return _NAN
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _sqrt(x: float) -> float:
    """``sqrt(x)``, the hardware's NaN for ``x < 0`` (as torch and Rust), where ``math.sqrt`` raises."""
    return math.sqrt(x) if x >= 0.0 else (x if x != x else _NAN)


def _zeros(p: Rows) -> Rows:
    return [[0.0] * len(r) for r in p]


def _lerp_form(w: float) -> tuple:
    """torch's ``lerp(a, b, w)`` picks its form by ``|w| < 0.5``; returns (small, 1 - w)."""
    return abs(w) < 0.5, 1.0 - w


# ---------------------------------------------------------------- the base

class Optimizer:
    """Base of the family: the parameters, ``param_groups``, ``defaults``, the state of
    every parameter, ``step``, ``zero_grad`` and the state dict.

    A member defines ``__init__`` with its hyperparameters (their order, defaults
    and kinds: a bool default is a flag, a tuple a pair of reals, a number a real),
    ``_check`` (torch's checks of the values) and ``_update`` (one step on one
    parameter). ``_buffers`` names the state entries besides ``"step"`` in torch's
    order; every non-empty state holds ``"step"`` (when ``_counts_steps``) and the
    first ``_required`` buffers; ``load_state_dict`` refuses a negative element in
    the buffers named by ``_non_negative_buffers`` (sums of squares, whose ``sqrt`` a step takes).
    """

    _hyperparameters: tuple = ()
    _buffers: tuple = ()
    _required: int = 0
    _counts_steps: bool = False
    _non_negative_buffers: tuple = ()  # buffers of sums of squares: a loaded negative value is refused

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__module__ == __name__ and "__init__" in vars(cls):
            sig = list(inspect.signature(cls.__init__).parameters.values())[2:]  # self, params
            cls._hyperparameters = tuple((p.name, _kind(p.default)) for p in sig)

    def __init__(self, params: Iterable, hyperparameters: dict) -> None:
        self._who = next((c.__name__ for c in type(self).__mro__ if OPTIMIZERS.get(c.__name__) is c),
                         type(self).__name__)
        hp = self._read(hyperparameters, None)
        # A subclass written elsewhere keeps the values it passes, as torch's base does.
        hp = {k: hp.get(k, v) for k, v in hyperparameters.items()}
        self._params = _param_list(params, self._who)
        self._defaults = dict(hp)
        self._param_groups = [{"params": [p for p, _ in self._params], **hp}]
        self._state = [self._initial_state(hp, p._rows) for p, _ in self._params]

    # -- hyperparameters

    def _read(self, group: dict, missing: Optional[Callable[[str], Exception]]) -> dict:
        """The hyperparameters of ``group``, each checked (type, finiteness), then ``_check``."""
        who = self._who
        hp = {}
        for name, check in self._hyperparameters:
            if name not in group:
                raise (missing or (lambda n: KeyError(f"{who}: param_groups[0] has no {n!r}")))(name)
            hp[name] = check(group[name], who, name)
        self._check(hp)
        return hp

    def _check(self, hp: dict) -> None:
        """torch's checks of the values (``ValueError``)."""

    def _group(self) -> dict:
        """``param_groups[0]``, which must be the one dict of the list."""
        groups = self._param_groups
        if len(groups) != 1:
            raise ValueError(f"{self._who}: param_groups must hold exactly one group, got {len(groups)}")
        if not isinstance(groups[0], dict):
            raise TypeError(f"{self._who}: param_groups[0] must be a dict, got {type(groups[0]).__name__}")
        return groups[0]

    @property
    def param_groups(self) -> list:
        """``[{"params": [tensors], "lr": ..., ...}]``: one group, whose values every step reads."""
        return self._param_groups

    @property
    def defaults(self) -> dict:
        """The hyperparameters given to the constructor."""
        return self._defaults

    @property
    def lr(self) -> Any:
        """The learning rate, ``param_groups[0]["lr"]``; setting it checks it."""
        group = self._group()
        if "lr" not in group:
            raise KeyError(f"{self._who}: param_groups[0] has no 'lr'")
        return group["lr"]

    @lr.setter
    def lr(self, value: Any) -> None:
        group = self._group()
        v = check_real(value, self._who, "lr")
        _non_negative(self._who, "lr", v)
        group["lr"] = v

    # -- steps

    def _initial_state(self, hp: dict, p: Rows) -> dict:
        """The state of a parameter right after the constructor: empty (created at the first step)."""
        return {}

    def _update(self, hp: dict, p: Rows, g: Rows, state: dict) -> None:
        """One step on one parameter: put new rows in ``p`` from the gradient rows ``g``."""
        raise NotImplementedError

    def step(self) -> None:
        """Update every parameter in place, with the hyperparameters of ``param_groups[0]``."""
        hp = self._read(self._group(), None)
        for (p, g), state in zip(self._params, self._state):
            if g is None:
                g = p.grad
                if g is None:
                    continue  # as torch: a parameter without a gradient is left alone
            self._update(hp, p._rows, g._rows, state)

    def zero_grad(self) -> None:
        """Set every gradient to zero, in place."""
        for p, g in self._params:
            if g is None:
                g = p.grad
            if g is not None:
                g.zero_()

    # -- state dict

    def state_dict(self) -> dict:
        """``{"state": {index: {"step": ..., buffer: Tensor, ...}}, "param_groups": [{..., "params": [0, 1, ...]}]}``,
        torch's layout; the tensors are copies."""
        state = {}
        for i, ((p, _), s) in enumerate(zip(self._params, self._state)):
            if s:
                state[i] = {k: (s[k] if k == "step" else Tensor._wrap([list(r) for r in s[k]], p.shape))
                            for k in self._state_keys() if k in s}
        packed = {k: v for k, v in self._group().items() if k != "params"}
        packed["params"] = list(range(len(self._params)))
        return {"state": state, "param_groups": [packed]}

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a dict of ``state_dict()``'s layout (tensors of either backend or nested
        lists). Everything is checked before anything changes."""
        who = self._who
        at = f"{who}.load_state_dict"
        n = len(self._params)
        if not isinstance(state_dict, dict):
            raise TypeError(f"{at}: expected a dict with 'state' and 'param_groups', got {type(state_dict).__name__}")
        for key in ("state", "param_groups"):
            if key not in state_dict:
                raise ValueError(f"{at}: the dict has no {key!r}")
        for key in state_dict:
            if key != "state" and key != "param_groups":
                raise ValueError(f"{at}: unexpected key {key!r}")
        state, groups = state_dict["state"], state_dict["param_groups"]
        if not isinstance(groups, (list, tuple)):
            raise TypeError(f"{at}: param_groups must be a list, got {type(groups).__name__}")
        if len(groups) != 1:
            raise ValueError(f"{at}: expected 1 parameter group, got {len(groups)}")
        saved = groups[0]
        if not isinstance(saved, dict):
            raise TypeError(f"{at}: param_groups[0] must be a dict, got {type(saved).__name__}")
        if "params" not in saved:
            raise ValueError(f"{at}: param_groups[0] has no 'params'")
        ids = saved["params"]
        if not isinstance(ids, (list, tuple)):
            raise TypeError(f"{at}: param_groups[0]['params'] must be a list, got {type(ids).__name__}")
        if len(ids) != n:
            raise ValueError(f"{at}: the saved group has {len(ids)} parameters, this optimizer has {n}")
        index = {}
        for k, pid in enumerate(ids):
            if isinstance(pid, bool) or not isinstance(pid, numbers.Integral):
                raise TypeError(f"{at}: parameter ids must be ints, got {type(pid).__name__}")
            index[pid] = k
        if len(index) != n:
            raise ValueError(f"{at}: the saved parameter ids repeat")
        hp = self._read(saved, lambda name: ValueError(f"{at}: param_groups[0] has no {name!r}"))
        if not isinstance(state, dict):
            raise TypeError(f"{at}: state must be a dict, got {type(state).__name__}")
        allowed = self._state_keys()
        required = allowed[:len(allowed) - len(self._buffers) + self._required]
        new_state: list = [{} for _ in range(n)]
        for key, entry in state.items():
            if isinstance(key, bool) or not isinstance(key, numbers.Integral):
                raise TypeError(f"{at}: state keys must be int parameter ids, got {type(key).__name__} {key!r}")
            if key not in index:
                raise ValueError(f"{at}: state has an entry for parameter {key!r}, which the saved group does not list")
            k = index[key]
            place = f"{at}: state[{key!r}]"
            if not isinstance(entry, dict):
                raise TypeError(f"{place} must be a dict, got {type(entry).__name__}")
            for name in entry:
                if not (isinstance(name, str) and name in allowed):
                    raise ValueError(f"{place} has an unexpected key {name!r}")
            if not entry:
                continue
            for name in required:
                if name not in entry:
                    raise ValueError(f"{place} lacks {name!r}")
            shape = self._params[k][0].shape
            out = new_state[k]
            for name in allowed:
                if name not in entry:
                    continue
                if name == "step":
                    out["step"] = _step_count(entry["step"], place)
                    continue
                rows, got = _parse(entry[name], f"{place}[{name!r}]", any_rank=True)
                if got != shape:
                    raise ValueError(f"{place}[{name!r}] has shape {got}, the parameter has shape {shape}")
                if name in self._non_negative_buffers:
                    flat = [v for row in rows for v in row]
                    i = next((i for i, v in enumerate(flat) if v < 0.0), None)
                    if i is not None:
                        raise ValueError(f"{place}[{name!r}] must be non-negative, got {flat[i]!r} at element {i}")
                out[name] = rows
        # Everything is checked: apply.
        group = {"params": [p for p, _ in self._params]}
        for k, v in saved.items():
            if k != "params":
                group[k] = hp[k] if isinstance(k, str) and k in hp else v
        self._state = new_state
        groups = self._param_groups
        if len(groups) == 1 and isinstance(groups[0], dict):
            groups[0].clear()
            groups[0].update(group)
        else:
            groups[:] = [group]

    def _state_keys(self) -> tuple:
        """The names of the state entries, in torch's order."""
        return (("step",) if self._counts_steps else ()) + tuple(self._buffers)

    def __repr__(self) -> str:
        group = self._group()
        args = ", ".join(f"{name}={group.get(name)!r}" for name, _ in self._hyperparameters)
        return f"{type(self).__name__}({args})"


# ---------------------------------------------------------------- the members

class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum, dampening, weight decay
    (L2) and Nesterov momentum, as ``torch.optim.SGD``::

        d = g + weight_decay * p                     (if weight_decay != 0)
        b = d at the first step, then b = momentum * b + (1 - dampening) * d
        d = d + momentum * b (nesterov), else d = b  (if momentum != 0)
        p = p - lr * d

    State: ``momentum_buffer`` (with momentum). docs/NUMERICS.md, "SGD".
    """

    _buffers = ("momentum_buffer",)

    def __init__(self, params: Iterable, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _check(self, hp: dict) -> None:
        for name in ("lr", "momentum", "weight_decay"):
            _non_negative(self._who, name, hp[name])
        if hp["nesterov"] and (hp["momentum"] <= 0.0 or hp["dampening"] != 0.0):
            raise ValueError(f"{self._who}: nesterov momentum requires a momentum and zero dampening")

    def _update(self, hp: dict, p: Rows, g: Rows, state: dict) -> None:
        lr, mu, wd = hp["lr"], hp["momentum"], hp["weight_decay"]
        if mu == 0.0:
            for r in range(len(p)):
                pr, d = p[r], g[r]
                if wd != 0.0:
                    d = [gv + wd * pv for gv, pv in zip(d, pr)]
                p[r] = list(map(sub, pr, map(mul, repeat(lr), d)))
            return
        fresh = "momentum_buffer" not in state
        bufs = state["momentum_buffer"] = state.get("momentum_buffer") or _zeros(p)
        damp, nesterov = 1.0 - hp["dampening"], hp["nesterov"]
        for r in range(len(p)):
            pr, d = p[r], g[r]
            if wd != 0.0:
                d = [gv + wd * pv for gv, pv in zip(d, pr)]
            b = list(d) if fresh else [bv * mu + damp * dv for bv, dv in zip(bufs[r], d)]
            bufs[r] = b
            d = [dv + mu * bv for dv, bv in zip(d, b)] if nesterov else b
            p[r] = [pv - lr * dv for pv, dv in zip(pr, d)]


def _adam_update(hp: dict, p: Rows, g: Rows, state: dict, decoupled: bool) -> None:
    """torch's ``_single_tensor_adam`` (docs/NUMERICS.md, "Adam and AdamW")."""
    lr, (beta1, beta2), eps, wd, amsgrad = hp["lr"], hp["betas"], hp["eps"], hp["weight_decay"], hp["amsgrad"]
    if not state:
        state["step"] = 0
    for name in ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if amsgrad else ()):
        if name not in state:
            state[name] = _zeros(p)
    t = state["step"] = state["step"] + 1
    bias_correction1 = 1.0 - beta1 ** t
    bias_correction2 = 1.0 - beta2 ** t
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2 ** 0.5
    neg_step_size = -step_size
    decay = 1.0 - lr * wd
    w = 1.0 - beta1
    small, one_minus_w = _lerp_form(w)
    c2 = 1.0 - beta2
    ms, vs, vmaxs = state["exp_avg"], state["exp_avg_sq"], state.get("max_exp_avg_sq") if amsgrad else None
    sqrt = math.sqrt
    div = _div if eps == 0.0 else truediv  # only a zero eps lets a denominator be 0
    for r in range(len(p)):
        pr, d = p[r], g[r]
        if wd != 0.0:
            if decoupled:
                pr = [pv * decay for pv in pr]
            else:
                d = [gv + wd * pv for gv, pv in zip(d, pr)]
        if small:
            m = [mv + w * (dv - mv) for mv, dv in zip(ms[r], d)]
        else:
            m = [dv - (dv - mv) * one_minus_w for mv, dv in zip(ms[r], d)]
        v = [vv * beta2 + (c2 * dv) * dv for vv, dv in zip(vs[r], d)]
        if vmaxs is not None:
            src = vmaxs[r] = [a if a >= b else b for a, b in zip(vmaxs[r], v)]
        else:
            src = v
        denom = [sqrt(x) / bias_correction2_sqrt + eps for x in src]
        p[r] = [pv + div(neg_step_size * mv, dn) for pv, mv, dn in zip(pr, m, denom)]
        ms[r], vs[r] = m, v


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam``, with L2 weight decay and AMSGrad; at step ``t``::

        d = g + weight_decay * p                     (if weight_decay != 0)
        m = lerp(m, d, 1 - beta1);  v = beta2 * v + (1 - beta2) * d * d
        vmax = max(vmax, v) (amsgrad)
        p = p - (lr / (1 - beta1^t)) * m / (sqrt(v or vmax) / sqrt(1 - beta2^t) + eps)

    State: ``step``, ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq`` (AMSGrad).
    docs/NUMERICS.md, "Adam and AdamW".
    """

    _buffers = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    _required = 2
    _counts_steps = True
    _non_negative_buffers = ("exp_avg_sq", "max_exp_avg_sq")

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad))

    def _check(self, hp: dict) -> None:
        _non_negative(self._who, "lr", hp["lr"])
        _non_negative(self._who, "eps", hp["eps"])
        _betas(self._who, hp["betas"])
        _non_negative(self._who, "weight_decay", hp["weight_decay"])

    def _update(self, hp: dict, p: Rows, g: Rows, state: dict) -> None:
        _adam_update(hp, p, g, state, decoupled=False)


class AdamW(Optimizer):
    """Adam with decoupled weight decay, as ``torch.optim.AdamW``: first
    ``p = p * (1 - lr * weight_decay)``, then Adam's step on the gradient itself.

    State: as Adam. docs/NUMERICS.md, "Adam and AdamW".
    """

    _buffers = Adam._buffers
    _required = Adam._required
    _counts_steps = True
    _non_negative_buffers = Adam._non_negative_buffers
    _check = Adam._check

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad))

    def _update(self, hp: dict, p: Rows, g: Rows, state: dict) -> None:
        _adam_update(hp, p, g, state, decoupled=True)


class Adagrad(Optimizer):
    """Adagrad, as ``torch.optim.Adagrad``; at step ``t``::

        clr = lr / (1 + (t - 1) * lr_decay)
        d = g + weight_decay * p                     (if weight_decay != 0)
        sum = sum + d * d;  p = p - clr * d / (sqrt(sum) + eps)

    State (from the constructor, as torch): ``step``, and ``sum`` filled with
    ``initial_accumulator_value``. docs/NUMERICS.md, "Adagrad".
    """

    _buffers = ("sum",)
    _required = 1
    _counts_steps = True
    _non_negative_buffers = ("sum",)

    def __init__(self, params: Iterable, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10) -> None:
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps))

    def _check(self, hp: dict) -> None:
        for name in ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            _non_negative(self._who, name, hp[name])

    def _initial_state(self, hp: dict, p: Rows) -> dict:
        v = hp["initial_accumulator_value"]
        return {"step": 0, "sum": [[v] * len(r) for r in p]}

    def _update(self, hp: dict, p: Rows, g: Rows, state: dict) -> None:
        if not state:
            state.update(self._initial_state(hp, p))
        if "sum" not in state:
            state["sum"] = self._initial_state(hp, p)["sum"]
        t = state["step"] = state["step"] + 1
        lr, wd, eps = hp["lr"], hp["weight_decay"], hp["eps"]
        clr = lr / (1.0 + (t - 1) * hp["lr_decay"])
        neg_clr = -clr
        sums, sqrt = state["sum"], math.sqrt
        div = _div if eps == 0.0 else truediv  # only a zero eps lets a denominator be 0
        for r in range(len(p)):
            pr, d = p[r], g[r]
            if wd != 0.0:
                d = [gv + wd * pv for gv, pv in zip(d, pr)]
            s = sums[r] = [sv + dv * dv for sv, dv in zip(sums[r], d)]
            p[r] = [pv + div(neg_clr * dv, sqrt(sv) + eps) for pv, dv, sv in zip(pr, d, s)]


class RMSprop(Optimizer):
    """RMSprop, as ``torch.optim.RMSprop``, optionally centered and with momentum::

        d = g + weight_decay * p                     (if weight_decay != 0)
        v = alpha * v + (1 - alpha) * d * d
        avg = sqrt(v - ga * ga) + eps with ga = lerp(ga, d, 1 - alpha) (centered), else sqrt(v) + eps
        b = momentum * b + d / avg;  p = p - lr * b  (if momentum > 0), else p = p - lr * d / avg

    State: ``step``, ``square_avg``, ``momentum_buffer`` (momentum > 0),
    ``grad_avg`` (centered). docs/NUMERICS.md, "RMSprop".
    """

    _buffers = ("square_avg", "momentum_buffer", "grad_avg")
    _required = 1
    _counts_steps = True
    _non_negative_buffers = ("square_avg",)

    def __init__(self, params: Iterable, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False) -> None:
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def _check(self, hp: dict) -> None:
        for name in ("lr", "eps", "momentum", "weight_decay", "alpha"):
            _non_negative(self._who, name, hp[name])

    def _update(self, hp: dict, p: Rows, g: Rows, state: dict) -> None:
        lr, alpha, eps, wd, mu, centered = (hp["lr"], hp["alpha"], hp["eps"], hp["weight_decay"],
                                            hp["momentum"], hp["centered"])
        if not state:
            state["step"] = 0
        for name, wanted in (("square_avg", True), ("momentum_buffer", mu > 0.0), ("grad_avg", centered)):
            if wanted and name not in state:
                state[name] = _zeros(p)
        state["step"] = state["step"] + 1
        c = 1.0 - alpha
        small, one_minus_c = _lerp_form(c)
        neg_lr = -lr
        vs, bufs, gas, sqrt = state["square_avg"], state.get("momentum_buffer"), state.get("grad_avg"), math.sqrt
        div = _div if eps == 0.0 else truediv  # only a zero eps lets a denominator be 0
        for r in range(len(p)):
            pr, d = p[r], g[r]
            if wd != 0.0:
                d = [gv + wd * pv for gv, pv in zip(d, pr)]
            v = vs[r] = [vv * alpha + (c * dv) * dv for vv, dv in zip(vs[r], d)]
            if centered:
                if small:
                    ga = [av + c * (dv - av) for av, dv in zip(gas[r], d)]
                else:
                    ga = [dv - (dv - av) * one_minus_c for av, dv in zip(gas[r], d)]
                gas[r] = ga
                avg = [_sqrt(vv - av * av) + eps for vv, av in zip(v, ga)]  # rounding may make it < 0
            else:
                avg = [_sqrt(vv) + eps for vv in v]  # alpha > 1 (torch allows it) may make it < 0
            if mu > 0.0:
                b = bufs[r] = [bv * mu + div(dv, a) for bv, dv, a in zip(bufs[r], d, avg)]
                p[r] = [pv + neg_lr * bv for pv, bv in zip(pr, b)]
            else:
                p[r] = [pv + div(neg_lr * dv, a) for pv, dv, a in zip(pr, d, avg)]


# ---------------------------------------------------------------- L1 and L2 regularization

def _penalties(who: str, l1: Any, l2: Any) -> tuple:
    """``(l1, l2)`` checked: finite and non-negative reals."""
    l1, l2 = check_real(l1, who, "l1"), check_real(l2, who, "l2")
    _non_negative(who, "l1", l1)
    _non_negative(who, "l2", l2)
    return l1, l2


def regularize_(params: Iterable, l1: float, l2: float) -> None:
    """Add the gradient of the penalty ``l1 * Σ|w| + l2 / 2 * Σ w²`` to each parameter's
    gradient, in place: per element ``g = g + (l1 * sign(w) + l2 * w)``, with ``sign(w)`` 1, -1 or 0
    (0 for 0 and NaN), in this order (docs/NUMERICS.md, "Regularization"). ``params`` as an
    optimizer takes them: tensors whose ``.grad`` is read (one without is skipped) or
    ``(parameter, gradient)`` pairs. ``l1`` and ``l2`` are finite and non-negative; everything is
    checked before any gradient changes. This is Playground's regularization: give it the weights
    only, never the biases (:class:`Regularized` does it before each step)."""
    l1, l2 = _penalties("regularize_", l1, l2)
    pairs = [(p, p.grad if g is None else g) for p, g in _param_list(params, "regularize_")]
    for p, g in pairs:
        if g is None:
            continue
        # new row lists (a row list is never changed in place: pyfw/tensor.py)
        g._rows = [[gv + (l1 * (1.0 if v > 0.0 else -1.0 if v < 0.0 else 0.0) + l2 * v) for gv, v in zip(gr, wr)]
                   for gr, wr in zip(g._rows, p._rows)]


class Regularized:
    """``optimizer`` with Playground's L1 and L2 regularization of ``params`` (the weights, never
    the biases): ``step()`` runs ``regularize_(params, l1, l2)``, then ``optimizer.step()``. It
    passes ``zero_grad``, ``param_groups``, ``defaults`` and the state dict on to ``optimizer``
    (a checkpoint stores the inner optimizer's state: the penalties hold none). ``fit`` and
    ``train_epoch`` keep ``pyfw_rs``'s native epoch for it when ``optimizer`` is native."""

    regularize = staticmethod(regularize_)
    """The kernel (each backend's own)."""

    def __init__(self, optimizer: Any, params: Iterable, l1: float, l2: float) -> None:
        self.l1, self.l2 = _penalties("Regularized", l1, l2)
        self.optimizer = optimizer
        self.params = list(params)

    @property
    def param_groups(self) -> list:
        """The wrapped optimizer's ``param_groups``."""
        return self.optimizer.param_groups

    @property
    def defaults(self) -> dict:
        """The wrapped optimizer's ``defaults``."""
        return self.optimizer.defaults

    def zero_grad(self) -> None:
        """Zero the gradients (the wrapped optimizer's ``zero_grad``)."""
        self.optimizer.zero_grad()

    def step(self) -> None:
        """Add the penalties' gradient to each regularized parameter's gradient, then step."""
        self.regularize(self.params, self.l1, self.l2)
        self.optimizer.step()

    def state_dict(self) -> dict:
        """The wrapped optimizer's state dict."""
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Load the wrapped optimizer's state dict."""
        self.optimizer.load_state_dict(state)


OPTIMIZERS: dict = {cls.__name__: cls for cls in (SGD, Adam, AdamW, Adagrad, RMSprop)}
"""The members of the family, by class name, in table order."""

__all__ = ["Optimizer", "OPTIMIZERS", "Regularized", "lr_scheduler", "regularize_", *OPTIMIZERS]
