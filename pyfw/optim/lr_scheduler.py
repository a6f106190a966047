"""Learning-rate schedulers, written once: they work on the ``param_groups`` of
either backend's optimizers (``fw.optim.lr_scheduler.X``).

A scheduler only reads and writes entries of ``optimizer.param_groups`` (a list
of dicts holding ``"lr"`` and the other hyperparameters, which the optimizer
reads at every step); it never imports a backend. As in torch, the constructor
performs the initial step (epoch 0), each later ``step()`` advances one epoch
(or one batch, for ``OneCycleLR``), and ``get_last_lr()`` returns the rates just
set.

``StepLR``, ``MultiStepLR``, ``ExponentialLR``, ``CosineAnnealingLR`` and
``LinearLR`` follow torch's *chainable* (recursive) ``get_lr``: each step
multiplies or updates the group's current ``"lr"``, with torch's expressions in
torch's order (torch 2.x's ``lr_scheduler.py``), so with the same hyperparameters
they give torch's learning rates, and they compose with a user's or another
scheduler's change of ``"lr"`` as torch's do. They agree with torch's closed forms (listed in each
docstring) to a few units in the last place. ``OneCycleLR`` is not chainable
(as in torch); ``ReduceLROnPlateau`` multiplies the current rate.

``state_dict()`` holds every attribute but the optimizer, as plain numbers,
strings, lists and dicts (JSON can hold it); ``load_state_dict`` checks every
field with the constructor's rules, then restores it (or changes nothing).
The optimizer's own state holds the current ``"lr"``.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from typing import Any, Optional, Union

from ..error import check_int, check_real

__all__ = [
    "LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR",
    "OneCycleLR", "ReduceLROnPlateau", "SCHEDULERS",
]


# ---------------------------------------------------------------- argument checks

def _param_groups(optimizer: Any, who: str) -> list:
    """``optimizer.param_groups``, checked: a non-empty list of dicts with a real ``"lr"``."""
    groups = getattr(optimizer, "param_groups", None)
    if (not isinstance(groups, Sequence) or isinstance(groups, (str, bytes)) or not groups
            or not all(isinstance(g, MutableMapping) for g in groups)):
        raise TypeError(f"{who}: {type(optimizer).__name__} is not an optimizer: it needs param_groups, "
                        f"a non-empty list of dicts")
    for i, group in enumerate(groups):
        lr = group.get("lr")
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
            raise TypeError(f"{who}: param_groups[{i}] must hold a real 'lr', got {type(lr).__name__}")
    return groups


def _int(value: Any, who: str, name: str, minimum: int) -> int:
    """An int (not a bool) at least ``minimum``."""
    value = check_int(value, who, name)
    if value < minimum:
        raise ValueError(f"{who}: {name} must be at least {minimum}, got {value}")
    return value


_real = check_real


def _require(ok: bool, who: str, message: str) -> None:
    if not ok:
        raise ValueError(f"{who}: {message}")


def _bool(value: Any, who: str, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{who}: {name} must be True or False, got {type(value).__name__}")
    return value


def _choice(value: Any, choices: tuple, who: str, name: str) -> Any:
    """One of ``choices`` (compared with ``==`` after an exact type check)."""
    if not any(type(value) is type(c) and value == c for c in choices):
        raise ValueError(f"{who}: {name} must be one of {', '.join(map(repr, choices))}, got {value!r:.60}")
    return value


def _rates(value: Any, n: int, who: str, name: str) -> list:
    """A loaded list of ``n`` learning rates: finite, non-negative reals, as floats."""
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{who}: {name} must be a list of real numbers, got {type(value).__name__}")
    if len(value) != n:
        raise ValueError(f"{who}: {name} must have one value per param group ({n}), got {len(value)}")
    out = [_real(v, who, f"{name}[{i}]") for i, v in enumerate(value)]
    for i, v in enumerate(out):
        _require(v >= 0.0, who, f"{name}[{i}] must be non-negative, got {v}")
    return out


def _per_group(value: Any, groups: list, who: str, name: str) -> list:
    """A real for every group: one real repeated, or a list with one per group (torch's ``_format_param``)."""
    if isinstance(value, (list, tuple)):
        if len(value) != len(groups):
            raise ValueError(f"{who}: {name} must have one value per param group ({len(groups)}), "
                             f"got {len(value)}")
        return [_real(v, who, f"{name}[{i}]") for i, v in enumerate(value)]
    return [_real(value, who, name)] * len(groups)


# ---------------------------------------------------------------- the base class

class LRScheduler:
    """Base of the epoch schedulers: adds ``"initial_lr"`` to every param group
    (if absent), keeps ``base_lrs`` (those initial rates) and ``last_epoch``, and
    performs the initial step, which sets the rates of epoch 0.

    ``step()`` advances ``last_epoch`` by one and sets each group's ``"lr"`` to
    the member's formula; ``get_last_lr()`` returns the rates it set.
    """

    def __init__(self, optimizer: Any) -> None:
        who = type(self).__name__
        groups = _param_groups(optimizer, who)
        for i, group in enumerate(groups):
            _real(group.get("initial_lr", group["lr"]), who, f"param_groups[{i}]['initial_lr']")
        for group in groups:
            group.setdefault("initial_lr", group["lr"])
        self.optimizer = optimizer
        self.base_lrs: list = [group["initial_lr"] for group in groups]
        self.last_epoch: int = -1
        self._step_count: int = 0
        self._last_lr: list = []
        self._advance(initial=True)

    def _get_lr(self, epoch: int, initial: bool) -> list:
        """The rates of epoch ``epoch`` (``initial`` for the constructor's step); no side effect
        on the scheduler. Members override it."""
        raise NotImplementedError

    def _advance(self, initial: bool) -> None:
        epoch = self.last_epoch + 1
        values = self._get_lr(epoch, initial)
        self.last_epoch = epoch
        self._step_count += 1
        groups = self.optimizer.param_groups
        for group, lr in zip(groups, values):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in groups]

    def step(self) -> None:
        """Advance one epoch: ``last_epoch += 1``, then set every group's ``"lr"``."""
        self._advance(initial=False)

    def get_last_lr(self) -> list:
        """The learning rates set by the last step, one per param group."""
        return list(self._last_lr)

    def state_dict(self) -> dict:
        """Every attribute but the optimizer (a deep copy)."""
        return {key: copy.deepcopy(value) for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict: Mapping) -> None:
        """Restore a :meth:`state_dict` of the same scheduler type (a deep copy of it).

        The keys must be exactly those of this scheduler's state; otherwise a
        ``ValueError`` names the missing and unexpected keys. Every value is then
        checked with the constructor's rules (a ``TypeError`` for a wrong kind, a
        ``ValueError`` for a wrong value, naming the field), and the per-group
        lists must have one value per param group of the optimizer. Nothing
        changes unless everything passes.
        """
        who = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"{who}: expected a dict, got {type(state_dict).__name__}")
        mine = set(self.__dict__) - {"optimizer"}
        given = set(state_dict)
        if given != mine:
            raise ValueError(f"{who}: missing keys {sorted(mine - given)}, unexpected keys "
                             f"{sorted(given - mine, key=repr)}")
        loaded = copy.deepcopy(dict(state_dict))
        loaded.update(self._check_state(loaded, who))
        self.__dict__.update(loaded)

    def _n_groups(self, who: str) -> int:
        return len(_param_groups(self.optimizer, who))

    def _check_state(self, sd: dict, who: str) -> dict:
        """The checked values of a loaded state ``sd`` (which has exactly this scheduler's
        keys), normalized as the constructor stores them; raises on the first bad field.
        Members add their own fields."""
        n = self._n_groups(who)
        return {
            "base_lrs": _rates(sd["base_lrs"], n, who, "base_lrs"),
            "last_epoch": _int(sd["last_epoch"], who, "last_epoch", 0),
            "_step_count": _int(sd["_step_count"], who, "_step_count", 1),
            "_last_lr": _rates(sd["_last_lr"], n, who, "_last_lr"),
        }

    def _check_gamma(self, sd: dict, who: str) -> float:
        gamma = _real(sd["gamma"], who, "gamma")
        _require(gamma > 0.0, who, f"gamma must be positive, got {gamma}")
        return gamma

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, last_lr={self._last_lr})"


# ---------------------------------------------------------------- the members

class StepLR(LRScheduler):
    """Multiply the rate by ``gamma`` every ``step_size`` epochs.

    Recursive form (applied): ``lr_e = lr_{e-1} * gamma`` if ``e > 0`` and
    ``e % step_size == 0``, else ``lr_{e-1}``. Closed form:
    ``lr_e = base_lr * gamma ** (e // step_size)``.
    """

    def __init__(self, optimizer: Any, step_size: int, gamma: float = 0.1) -> None:
        who = type(self).__name__
        self.step_size = _int(step_size, who, "step_size", 1)
        self.gamma = _real(gamma, who, "gamma")
        _require(self.gamma > 0.0, who, f"gamma must be positive, got {self.gamma}")
        super().__init__(optimizer)

    def _check_state(self, sd: dict, who: str) -> dict:
        return {**super()._check_state(sd, who), "step_size": _int(sd["step_size"], who, "step_size", 1),
                "gamma": self._check_gamma(sd, who)}

    def _get_lr(self, epoch: int, initial: bool) -> list:
        groups = self.optimizer.param_groups
        if epoch == 0 or epoch % self.step_size != 0:
            return [group["lr"] for group in groups]
        return [group["lr"] * self.gamma for group in groups]


class MultiStepLR(LRScheduler):
    """Multiply the rate by ``gamma`` at each milestone epoch.

    Recursive form (applied): ``lr_e = lr_{e-1} * gamma ** c`` where ``c`` is how
    many times ``e`` appears in ``milestones`` (torch counts repeats), else
    ``lr_{e-1}``. Closed form: ``lr_e = base_lr * gamma ** bisect_right(sorted(milestones), e)``.
    ``milestones`` is kept as a sorted list of ints.
    """

    def __init__(self, optimizer: Any, milestones: Iterable[int], gamma: float = 0.1) -> None:
        who = type(self).__name__
        if isinstance(milestones, (str, bytes, Mapping)) or not isinstance(milestones, Iterable):
            raise TypeError(f"{who}: milestones must be a list of ints, got {type(milestones).__name__}")
        self.milestones = sorted(_int(m, who, f"milestones[{i}]", 0) for i, m in enumerate(milestones))
        self.gamma = _real(gamma, who, "gamma")
        _require(self.gamma > 0.0, who, f"gamma must be positive, got {self.gamma}")
        super().__init__(optimizer)

    def _check_state(self, sd: dict, who: str) -> dict:
        milestones = sd["milestones"]
        if not isinstance(milestones, (list, tuple)):
            raise TypeError(f"{who}: milestones must be a list of ints, got {type(milestones).__name__}")
        milestones = [_int(m, who, f"milestones[{i}]", 0) for i, m in enumerate(milestones)]
        _require(milestones == sorted(milestones), who, f"milestones must be sorted, got {milestones}")
        return {**super()._check_state(sd, who), "milestones": milestones, "gamma": self._check_gamma(sd, who)}

    def _get_lr(self, epoch: int, initial: bool) -> list:
        groups = self.optimizer.param_groups
        count = self.milestones.count(epoch)
        if count == 0:
            return [group["lr"] for group in groups]
        return [group["lr"] * self.gamma ** count for group in groups]


class ExponentialLR(LRScheduler):
    """Multiply the rate by ``gamma`` every epoch.

    Recursive form (applied): ``lr_e = lr_{e-1} * gamma`` for ``e > 0``.
    Closed form: ``lr_e = base_lr * gamma ** e``.
    """

    def __init__(self, optimizer: Any, gamma: float) -> None:
        who = type(self).__name__
        self.gamma = _real(gamma, who, "gamma")
        _require(self.gamma > 0.0, who, f"gamma must be positive, got {self.gamma}")
        super().__init__(optimizer)

    def _check_state(self, sd: dict, who: str) -> dict:
        return {**super()._check_state(sd, who), "gamma": self._check_gamma(sd, who)}

    def _get_lr(self, epoch: int, initial: bool) -> list:
        groups = self.optimizer.param_groups
        if initial:
            return [group["lr"] for group in groups]
        return [group["lr"] * self.gamma for group in groups]


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from ``base_lr`` down to ``eta_min`` over ``T_max`` epochs
    (and back up over the next ``T_max``, as torch's curve continues).

    Closed form: ``lr_e = eta_min + (base_lr - eta_min) * (1 + cos(pi * e / T_max)) / 2``.
    Recursive form (applied, torch's): for ``e > 0``,
    ``lr_e = lr_{e-1} + (base_lr - eta_min) * (1 - cos(pi / T_max)) / 2`` when
    ``(e - 1 - T_max) % (2 * T_max) == 0``, else
    ``lr_e = (1 + cos(pi * e / T_max)) / (1 + cos(pi * (e - 1) / T_max)) * (lr_{e-1} - eta_min) + eta_min``.
    """

    def __init__(self, optimizer: Any, T_max: int, eta_min: float = 0.0) -> None:
        who = type(self).__name__
        self.T_max = _int(T_max, who, "T_max", 1)
        self.eta_min = _real(eta_min, who, "eta_min")
        _require(self.eta_min >= 0.0, who, f"eta_min must be non-negative, got {self.eta_min}")
        super().__init__(optimizer)

    def _check_state(self, sd: dict, who: str) -> dict:
        eta_min = _real(sd["eta_min"], who, "eta_min")
        _require(eta_min >= 0.0, who, f"eta_min must be non-negative, got {eta_min}")
        return {**super()._check_state(sd, who), "T_max": _int(sd["T_max"], who, "T_max", 1), "eta_min": eta_min}

    def _get_lr(self, epoch: int, initial: bool) -> list:
        groups = self.optimizer.param_groups
        if initial:
            return [group["lr"] for group in groups]
        if (epoch - 1 - self.T_max) % (2 * self.T_max) == 0:
            return [group["lr"] + (base_lr - self.eta_min) * (1 - math.cos(math.pi / self.T_max)) / 2
                    for base_lr, group in zip(self.base_lrs, groups)]
        return [(1 + math.cos(math.pi * epoch / self.T_max))
                / (1 + math.cos(math.pi * (epoch - 1) / self.T_max))
                * (group["lr"] - self.eta_min) + self.eta_min
                for group in groups]


class LinearLR(LRScheduler):
    """Scale the rate by a factor going linearly from ``start_factor`` to
    ``end_factor`` over ``total_iters`` epochs, then constant.

    Closed form: ``lr_e = base_lr * (start_factor + (end_factor - start_factor) * min(total_iters, e) / total_iters)``.
    Recursive form (applied, torch's): ``lr_0 = lr * start_factor``; for
    ``0 < e <= total_iters``, ``lr_e = lr_{e-1} * (1.0 + (end_factor - start_factor)
    / (total_iters * start_factor + (e - 1) * (end_factor - start_factor)))``; after that ``lr_{e-1}``.
    """

    def __init__(self, optimizer: Any, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5) -> None:
        who = type(self).__name__
        self.start_factor = _real(start_factor, who, "start_factor")
        _require(0.0 < self.start_factor <= 1.0, who,
                 f"start_factor must be in (0, 1], got {self.start_factor}")
        self.end_factor = _real(end_factor, who, "end_factor")
        _require(0.0 <= self.end_factor <= 1.0, who, f"end_factor must be in [0, 1], got {self.end_factor}")
        self.total_iters = _int(total_iters, who, "total_iters", 1)
        super().__init__(optimizer)

    def _check_state(self, sd: dict, who: str) -> dict:
        start = _real(sd["start_factor"], who, "start_factor")
        _require(0.0 < start <= 1.0, who, f"start_factor must be in (0, 1], got {start}")
        end = _real(sd["end_factor"], who, "end_factor")
        _require(0.0 <= end <= 1.0, who, f"end_factor must be in [0, 1], got {end}")
        return {**super()._check_state(sd, who), "start_factor": start, "end_factor": end,
                "total_iters": _int(sd["total_iters"], who, "total_iters", 1)}

    def _get_lr(self, epoch: int, initial: bool) -> list:
        groups = self.optimizer.param_groups
        if epoch == 0:
            return [group["lr"] * self.start_factor for group in groups]
        if initial or epoch > self.total_iters:
            return [group["lr"] for group in groups]
        return [group["lr"] * (1.0 + (self.end_factor - self.start_factor)
                               / (self.total_iters * self.start_factor
                                  + (epoch - 1) * (self.end_factor - self.start_factor)))
                for group in groups]


_ONE_CYCLE = {
    2: [("initial_lr", "max_lr", "max_momentum", "base_momentum"),
        ("max_lr", "min_lr", "base_momentum", "max_momentum")],
    3: [("initial_lr", "max_lr", "max_momentum", "base_momentum"),
        ("max_lr", "initial_lr", "base_momentum", "max_momentum"),
        ("initial_lr", "min_lr", "max_momentum", "max_momentum")],
}


def _one_cycle_phases(ends: list) -> list:
    """``OneCycleLR``'s phases (two, or three with ``three_phase``), ending at the steps ``ends``."""
    return [{"end_step": end, "start_lr": a, "end_lr": b, "start_momentum": c, "end_momentum": d}
            for end, (a, b, c, d) in zip(ends, _ONE_CYCLE[len(ends)])]


class OneCycleLR(LRScheduler):
    """The 1cycle policy, stepped once per batch: the rate rises from
    ``initial_lr = max_lr / div_factor`` to ``max_lr`` over the first
    ``pct_start * total_steps - 1`` steps, then falls to
    ``min_lr = initial_lr / final_div_factor`` at step ``total_steps - 1``
    (with ``three_phase``: back to ``initial_lr`` symmetrically, then to ``min_lr``).
    The momentum (``"momentum"``, or the first of ``"betas"``) moves the opposite
    way between ``max_momentum`` and ``base_momentum`` when ``cycle_momentum``.

    In a phase from step ``s0`` to ``s1`` with rates ``a -> b``, step ``s`` has
    ``pct = (s - s0) / (s1 - s0)`` and the rate ``b + (a - b) / 2.0 * (cos(pi * pct) + 1)``
    (``"cos"``) or ``(b - a) * pct + a`` (``"linear"``). Not chainable: each rate
    comes from the group's ``initial_lr``, ``max_lr`` and ``min_lr``, which the
    constructor writes into the group. ``total_steps`` calls of ``step()`` are
    allowed after the constructor's (torch's bound); one more is a ``ValueError``.
    """

    def __init__(self, optimizer: Any, max_lr: Union[float, list], total_steps: Optional[int] = None,
                 epochs: Optional[int] = None, steps_per_epoch: Optional[int] = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True,
                 base_momentum: Union[float, list] = 0.85, max_momentum: Union[float, list] = 0.95,
                 div_factor: float = 25.0, final_div_factor: float = 1e4, three_phase: bool = False) -> None:
        who = type(self).__name__
        groups = _param_groups(optimizer, who)
        if total_steps is not None:
            if isinstance(total_steps, bool) or not isinstance(total_steps, numbers.Integral) or total_steps <= 0:
                raise ValueError(f"{who}: expected a positive integer total_steps, got {total_steps!r}")
            self.total_steps = int(total_steps)
        elif epochs is not None and steps_per_epoch is not None:
            for name, v in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
                if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v <= 0:
                    raise ValueError(f"{who}: expected a positive integer {name}, got {v!r}")
            self.total_steps = int(epochs) * int(steps_per_epoch)
        else:
            raise ValueError(f"{who}: give either total_steps or both epochs and steps_per_epoch")
        if isinstance(pct_start, bool) or not isinstance(pct_start, numbers.Real) or not 0 <= pct_start <= 1:
            raise ValueError(f"{who}: expected pct_start, a number between 0 and 1, got {pct_start!r}")
        pct_start = float(pct_start)
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"{who}: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        self.cycle_momentum = _bool(cycle_momentum, who, "cycle_momentum")
        self.three_phase = _bool(three_phase, who, "three_phase")
        div_factor = _real(div_factor, who, "div_factor")
        _require(div_factor > 0.0, who, f"div_factor must be positive, got {div_factor}")
        final_div_factor = _real(final_div_factor, who, "final_div_factor")
        _require(final_div_factor > 0.0, who, f"final_div_factor must be positive, got {final_div_factor}")
        max_lrs = _per_group(max_lr, groups, who, "max_lr")
        for v in max_lrs:
            _require(v > 0.0, who, f"max_lr must be positive, got {v}")
        if self.cycle_momentum:
            defaults = getattr(optimizer, "defaults", None)
            keys = defaults if isinstance(defaults, Mapping) else groups[0]
            if "momentum" not in keys and "betas" not in keys:
                raise ValueError(f"{who}: cycle_momentum needs an optimizer with 'momentum' or 'betas' "
                                 f"({type(optimizer).__name__} has neither)")
            self.use_beta1 = "betas" in keys
            max_momentums = _per_group(max_momentum, groups, who, "max_momentum")
            base_momentums = _per_group(base_momentum, groups, who, "base_momentum")

        n = self.total_steps
        ends = [float(pct_start * n) - 1, float(2 * pct_start * n) - 2, n - 1] if self.three_phase \
            else [float(pct_start * n) - 1, n - 1]
        self._schedule_phases = _one_cycle_phases(ends)
        for group, top in zip(groups, max_lrs):
            group["initial_lr"] = top / div_factor
            group["max_lr"] = top
            group["min_lr"] = group["initial_lr"] / final_div_factor
        if self.cycle_momentum:
            for group, m_top, m_base in zip(groups, max_momentums, base_momentums):
                if self.use_beta1:
                    group["betas"] = (m_top, *group["betas"][1:])
                else:
                    group["momentum"] = m_top
                group["max_momentum"] = m_top
                group["base_momentum"] = m_base
        super().__init__(optimizer)

    def _check_state(self, sd: dict, who: str) -> dict:
        n = sd["total_steps"]
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n <= 0:
            raise ValueError(f"{who}: expected a positive integer total_steps, got {n!r:.60}")
        n = _int(n, who, "total_steps", 1)
        out = {**super()._check_state(sd, who), "total_steps": n,
               "anneal_strategy": _choice(sd["anneal_strategy"], ("cos", "linear"), who, "anneal_strategy"),
               "cycle_momentum": _bool(sd["cycle_momentum"], who, "cycle_momentum"),
               "three_phase": _bool(sd["three_phase"], who, "three_phase")}
        _require(out["last_epoch"] <= n, who, f"last_epoch must be at most total_steps ({n}), got {out['last_epoch']}")
        if out["cycle_momentum"]:
            if "use_beta1" not in sd:
                raise ValueError(f"{who}: cycle_momentum is True but the state has no 'use_beta1'")
            out["use_beta1"] = _bool(sd["use_beta1"], who, "use_beta1")
            key = "betas" if out["use_beta1"] else "momentum"
            if not all(key in group for group in self.optimizer.param_groups):
                raise ValueError(f"{who}: use_beta1 is {out['use_beta1']} but the optimizer's param groups "
                                 f"have no {key!r}")
        phases = sd["_schedule_phases"]
        count = 3 if out["three_phase"] else 2
        if (not isinstance(phases, (list, tuple)) or len(phases) != count
                or not all(isinstance(p, Mapping) for p in phases)):
            raise ValueError(f"{who}: _schedule_phases must be a list of {count} phase dicts")
        ends = [_real(p.get("end_step"), who, f"_schedule_phases[{i}]['end_step']") for i, p in enumerate(phases)]
        ok = (-1.0 <= ends[0] <= n - 1 and ends[-1] == n - 1 and (count == 2 or ends[1] == 2 * ends[0])
              and [dict(p) for p in phases] == _one_cycle_phases([p["end_step"] for p in phases]))
        _require(ok, who, f"_schedule_phases is not a schedule of {n} steps")
        out["_schedule_phases"] = [dict(p) for p in phases]
        return out

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            cos_out = math.cos(math.pi * pct) + 1
            return end + (start - end) / 2.0 * cos_out
        return (end - start) * pct + start

    def _get_lr(self, epoch: int, initial: bool) -> list:
        if epoch > self.total_steps:
            raise ValueError(f"OneCycleLR: tried to step {epoch} times; total_steps is {self.total_steps}")
        lrs = []
        last = len(self._schedule_phases) - 1
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for i, phase in enumerate(self._schedule_phases):
                end_step = phase["end_step"]
                if epoch <= end_step or i == last:
                    pct = (epoch - start_step) / (end_step - start_step)
                    lrs.append(self._anneal(group[phase["start_lr"]], group[phase["end_lr"]], pct))
                    if self.cycle_momentum:
                        momentum = self._anneal(group[phase["start_momentum"]], group[phase["end_momentum"]], pct)
                        if self.use_beta1:
                            group["betas"] = (momentum, *group["betas"][1:])
                        else:
                            group["momentum"] = momentum
                    break
                start_step = phase["end_step"]
        return lrs


class ReduceLROnPlateau(LRScheduler):
    """Multiply the rate by ``factor`` when a metric has stopped improving.

    ``step(metric)``: the metric is better than ``best`` if, in mode ``"min"``,
    ``metric < best * (1.0 - threshold)`` (``"rel"``) or ``metric < best - threshold``
    (``"abs"``); in mode ``"max"``, ``metric > best * (threshold + 1.0)`` or
    ``metric > best + threshold``. A better metric becomes ``best`` and resets the
    count of bad epochs, otherwise the count grows (a NaN metric is never better).
    During ``cooldown`` epochs after a reduction bad epochs are not counted. When
    the count exceeds ``patience``, every group's rate becomes
    ``new = max(old * factor, min_lr)``, kept only if ``old - new > eps``.
    The constructor changes no rate (no initial step); ``last_epoch`` starts at 0.
    """

    def __init__(self, optimizer: Any, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: Union[float, list] = 0, eps: float = 1e-8) -> None:
        who = type(self).__name__
        factor = _real(factor, who, "factor")
        _require(0.0 <= factor < 1.0, who, f"factor must be in [0, 1), got {factor}")
        groups = _param_groups(optimizer, who)
        min_lrs = _per_group(min_lr, groups, who, "min_lr")
        for v in min_lrs:
            _require(v >= 0.0, who, f"min_lr must be non-negative, got {v}")
        if mode not in ("min", "max"):
            raise ValueError(f"{who}: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"{who}: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        threshold = _real(threshold, who, "threshold")
        _require(threshold >= 0.0, who, f"threshold must be non-negative, got {threshold}")
        eps = _real(eps, who, "eps")
        _require(eps >= 0.0, who, f"eps must be non-negative, got {eps}")
        self.factor = factor
        self.optimizer = optimizer
        self.default_min_lr = None if isinstance(min_lr, (list, tuple)) else min_lrs[0]
        self.min_lrs = min_lrs
        self.patience = _int(patience, who, "patience", 0)
        self.cooldown = _int(cooldown, who, "cooldown", 0)
        self.eps = eps
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in groups]
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def _check_state(self, sd: dict, who: str) -> dict:
        n = self._n_groups(who)
        factor = _real(sd["factor"], who, "factor")
        _require(0.0 <= factor < 1.0, who, f"factor must be in [0, 1), got {factor}")
        default = sd["default_min_lr"]
        if default is not None:
            default = _rates([default], 1, who, "default_min_lr")[0]
        out = {"factor": factor, "default_min_lr": default, "min_lrs": _rates(sd["min_lrs"], n, who, "min_lrs"),
               "patience": _int(sd["patience"], who, "patience", 0),
               "cooldown": _int(sd["cooldown"], who, "cooldown", 0),
               "eps": _rates([sd["eps"]], 1, who, "eps")[0],
               "last_epoch": _int(sd["last_epoch"], who, "last_epoch", 0),
               "_last_lr": _rates(sd["_last_lr"], n, who, "_last_lr"),
               "mode": _choice(sd["mode"], ("min", "max"), who, "mode"),
               "threshold": _rates([sd["threshold"]], 1, who, "threshold")[0],
               "threshold_mode": _choice(sd["threshold_mode"], ("rel", "abs"), who, "threshold_mode"),
               "cooldown_counter": _int(sd["cooldown_counter"], who, "cooldown_counter", 0),
               "num_bad_epochs": _int(sd["num_bad_epochs"], who, "num_bad_epochs", 0)}
        worse = math.inf if out["mode"] == "min" else -math.inf
        _require(sd["mode_worse"] == worse and isinstance(sd["mode_worse"], float), who,
                 f"mode_worse must be {worse} in mode {out['mode']!r}, got {sd['mode_worse']!r:.60}")
        best = sd["best"]
        if isinstance(best, bool) or not isinstance(best, numbers.Real):
            raise TypeError(f"{who}: best must be a real number, got {type(best).__name__}")
        _require(isinstance(best, float) and not math.isnan(best), who, f"best must be a float, not NaN, got {best!r:.60}")
        _require(out["cooldown_counter"] <= out["cooldown"], who,
                 f"cooldown_counter must be at most cooldown ({out['cooldown']}), got {out['cooldown_counter']}")
        _require(out["num_bad_epochs"] <= out["patience"], who,
                 f"num_bad_epochs must be at most patience ({out['patience']}), got {out['num_bad_epochs']}")
        return out

    def _is_better(self, a: float, best: float) -> bool:
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def step(self, metrics: Any) -> None:  # type: ignore[override]
        """One epoch with the metric ``metrics`` (a real number); may reduce the rates."""
        if isinstance(metrics, (str, bytes, bool)):
            raise TypeError(f"ReduceLROnPlateau.step: metrics must be a real number, got {type(metrics).__name__}")
        try:
            current = float(metrics)
        except (TypeError, ValueError):
            raise TypeError(f"ReduceLROnPlateau.step: metrics must be a real number, "
                            f"got {type(metrics).__name__}") from None
        except OverflowError:
            raise ValueError(f"ReduceLROnPlateau.step: metrics ({type(metrics).__name__}) is too large "
                             f"for a float") from None
        groups = _param_groups(self.optimizer, "ReduceLROnPlateau.step")
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(f"ReduceLROnPlateau.step: the optimizer has {len(groups)} param groups, "
                                   f"min_lr gives {len(self.min_lrs)}")
            self.min_lrs = [self.default_min_lr] * len(groups)
        self.last_epoch += 1
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for i, group in enumerate(groups):
                old_lr = float(group["lr"])
                new_lr = max(old_lr * self.factor, self.min_lrs[i])
                if old_lr - new_lr > self.eps:
                    group["lr"] = new_lr
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [group["lr"] for group in groups]

    @property
    def in_cooldown(self) -> bool:
        """True while the cooldown after a reduction lasts."""
        return self.cooldown_counter > 0


SCHEDULERS: dict = {cls.__name__: cls for cls in (
    StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, LinearLR, OneCycleLR, ReduceLROnPlateau)}
"""The members of the family, by class name."""
