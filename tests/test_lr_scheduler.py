"""Learning-rate schedulers (``fw.optim.lr_scheduler``): 50 epochs of every member
against torch's closed forms written out here, state_dict round trips, bad
arguments, and (when torch is importable) torch itself.

The schedulers follow torch's recursive ``get_lr``; the closed forms below are
torch's ``_get_closed_form_lr`` (and, for OneCycleLR and ReduceLROnPlateau, the
documented rule written out), so agreement to 1e-12 relative checks both the
formulas and that the recursion does not drift. Those unit tests run on small
fake optimizers that hold only what a scheduler reads (``param_groups``, here
with two groups, and ``defaults``); the last part drives every real optimizer
of both backends, in ``fit``, across a checkpoint, and bit for bit across
backends.
"""

from __future__ import annotations

import bisect
import copy
import json
import math
from typing import Any, Callable

import pytest

import pyfw
from conftest import BACKENDS, load_backend
from fwtest import state_hex
from pyfw.training import fit, train_epoch
from pyfw.optim import lr_scheduler as sch
from pyfw.optim.lr_scheduler import (
    SCHEDULERS,
    CosineAnnealingLR,
    ExponentialLR,
    LinearLR,
    MultiStepLR,
    OneCycleLR,
    ReduceLROnPlateau,
    StepLR,
)

EPOCHS = 50
REL = 1e-12


class FakeOptimizer:
    """What a scheduler sees of an optimizer: ``param_groups`` (one dict per group
    with ``"lr"`` and the other hyperparameters) and ``defaults``."""

    def __init__(self, lrs: tuple = (0.1,), kind: str = "sgd") -> None:
        extra = {"momentum": 0.0, "dampening": 0.0} if kind == "sgd" else {"betas": (0.9, 0.999), "eps": 1e-8}
        if kind == "plain":
            extra = {}
        self.defaults = {"lr": lrs[0], **extra}
        self.param_groups = [{"params": [], "lr": lr, **copy.deepcopy(extra)} for lr in lrs]

    def state_dict(self) -> dict:
        return {"param_groups": copy.deepcopy(self.param_groups)}

    def load_state_dict(self, sd: dict) -> None:
        self.param_groups = copy.deepcopy(sd["param_groups"])


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL, abs_tol=0.0)


def run(make: Callable[[Any], Any], opt: Any, epochs: int = EPOCHS, metrics: Any = None) -> list:
    """The rates of epochs 0 .. epochs-1: after the constructor, then after each step."""
    s = make(opt)
    out = [s.get_last_lr()]
    for e in range(1, epochs):
        s.step() if metrics is None else s.step(metrics[e - 1])
        out.append(s.get_last_lr())
        assert [g["lr"] for g in opt.param_groups] == out[-1]
    assert s.last_epoch == epochs - 1
    return out


# ---------------------------------------------------------------- closed forms (torch)

def step_lr(base: float, e: int, step_size: int, gamma: float) -> float:
    return base * gamma ** (e // step_size)


def multistep_lr(base: float, e: int, milestones: list, gamma: float) -> float:
    return base * gamma ** bisect.bisect_right(sorted(milestones), e)


def exponential_lr(base: float, e: int, gamma: float) -> float:
    return base * gamma ** e


def cosine_lr(base: float, e: int, T_max: int, eta_min: float) -> float:
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * e / T_max)) / 2


def linear_lr(base: float, e: int, start: float, end: float, total: int) -> float:
    return base * (start + (end - start) * min(total, e) / total)


CLOSED = [
    ("step-7-0.5", lambda o: StepLR(o, 7, 0.5), lambda b, e: step_lr(b, e, 7, 0.5)),
    ("step-1-0.9", lambda o: StepLR(o, step_size=1, gamma=0.9), lambda b, e: step_lr(b, e, 1, 0.9)),
    ("step-default", lambda o: StepLR(o, 10), lambda b, e: step_lr(b, e, 10, 0.1)),
    ("multistep", lambda o: MultiStepLR(o, [5, 12, 30]), lambda b, e: multistep_lr(b, e, [5, 12, 30], 0.1)),
    ("multistep-repeat-unsorted", lambda o: MultiStepLR(o, (30, 12, 5, 12), gamma=0.3),
     lambda b, e: multistep_lr(b, e, [5, 12, 12, 30], 0.3)),
    ("exponential", lambda o: ExponentialLR(o, 0.93), lambda b, e: exponential_lr(b, e, 0.93)),
    ("exponential-up", lambda o: ExponentialLR(o, gamma=1.01), lambda b, e: exponential_lr(b, e, 1.01)),
    ("cosine-50", lambda o: CosineAnnealingLR(o, 50), lambda b, e: cosine_lr(b, e, 50, 0.0)),
    ("cosine-49", lambda o: CosineAnnealingLR(o, T_max=49), lambda b, e: cosine_lr(b, e, 49, 0.0)),
    ("cosine-10-restarting", lambda o: CosineAnnealingLR(o, 10, eta_min=0.01),
     lambda b, e: cosine_lr(b, e, 10, 0.01)),
    ("cosine-17", lambda o: CosineAnnealingLR(o, 17, 1e-3), lambda b, e: cosine_lr(b, e, 17, 1e-3)),
    ("linear-default", lambda o: LinearLR(o), lambda b, e: linear_lr(b, e, 1.0 / 3, 1.0, 5)),
    ("linear-warmup-20", lambda o: LinearLR(o, start_factor=0.1, total_iters=20),
     lambda b, e: linear_lr(b, e, 0.1, 1.0, 20)),
    ("linear-decay", lambda o: LinearLR(o, 1.0, 0.05, 30), lambda b, e: linear_lr(b, e, 1.0, 0.05, 30)),
    ("linear-to-zero", lambda o: LinearLR(o, 0.5, 0.0, 40), lambda b, e: linear_lr(b, e, 0.5, 0.0, 40)),
]


@pytest.mark.parametrize("make, closed", [c[1:] for c in CLOSED], ids=[c[0] for c in CLOSED])
def test_chainable_schedulers_match_closed_forms(make: Callable, closed: Callable) -> None:
    bases = (0.1, 0.0375)  # two param groups with their own rates
    opt = FakeOptimizer(bases)
    got = run(make, opt)
    for e, lrs in enumerate(got):
        for base, lr in zip(bases, lrs):
            assert close(lr, closed(base, e)), (e, lr, closed(base, e))
    assert [g["initial_lr"] for g in opt.param_groups] == list(bases)


def onecycle_closed(e: int, max_lr: float, total: int, pct: float = 0.3, strategy: str = "cos",
                    base_m: float = 0.85, max_m: float = 0.95, div: float = 25.0, final_div: float = 1e4,
                    three_phase: bool = False) -> tuple:
    """torch's OneCycleLR at step e, as (lr, momentum), from its documented phases."""
    initial = max_lr / div
    low = initial / final_div

    def anneal(a: float, b: float, p: float) -> float:
        if strategy == "cos":
            return b + (a - b) * (1 + math.cos(math.pi * p)) / 2
        return a + (b - a) * p

    up = pct * total - 1
    if three_phase:
        phases = [(up, initial, max_lr, max_m, base_m), (2 * pct * total - 2, max_lr, initial, base_m, max_m),
                  (total - 1, initial, low, max_m, max_m)]
    else:
        phases = [(up, initial, max_lr, max_m, base_m), (total - 1, max_lr, low, base_m, max_m)]
    start = 0.0
    for i, (end, a, b, ma, mb) in enumerate(phases):
        if e <= end or i == len(phases) - 1:
            p = (e - start) / (end - start)
            return anneal(a, b, p), anneal(ma, mb, p)
        start = end
    raise AssertionError


ONECYCLE = [
    ("default", {}, {}),
    ("linear-three-phase", {"anneal_strategy": "linear", "three_phase": True},
     {"strategy": "linear", "three_phase": True}),
    ("cos-three-phase", {"three_phase": True}, {"three_phase": True}),
    ("custom", {"pct_start": 0.25, "div_factor": 10.0, "final_div_factor": 100.0, "base_momentum": 0.8,
                "max_momentum": 0.9}, {"pct": 0.25, "div": 10.0, "final_div": 100.0, "base_m": 0.8, "max_m": 0.9}),
]


@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("kwargs, closed_kwargs", [c[1:] for c in ONECYCLE], ids=[c[0] for c in ONECYCLE])
def test_onecycle_matches_closed_form(kind: str, kwargs: dict, closed_kwargs: dict) -> None:
    opt = FakeOptimizer((0.5,), kind)
    s = OneCycleLR(opt, max_lr=0.2, total_steps=EPOCHS, **kwargs)
    for e in range(EPOCHS):
        if e:
            s.step()
        lr, m = onecycle_closed(e, 0.2, EPOCHS, **closed_kwargs)
        group = opt.param_groups[0]
        assert close(s.get_last_lr()[0], lr) and group["lr"] == s.get_last_lr()[0], e
        if kind == "sgd":
            assert close(group["momentum"], m), e
        else:
            assert close(group["betas"][0], m) and group["betas"][1] == 0.999, e
    assert close(opt.param_groups[0]["lr"], 0.2 / 25.0 / 1e4 if "final_div_factor" not in kwargs
                 else 0.2 / 10.0 / 100.0)


def test_onecycle_per_group_max_lr_and_epochs_form() -> None:
    opt = FakeOptimizer((1.0, 1.0))
    s = OneCycleLR(opt, max_lr=[0.2, 0.4], epochs=5, steps_per_epoch=10, cycle_momentum=False)
    assert s.total_steps == 50
    assert "max_momentum" not in opt.param_groups[0] and opt.param_groups[0]["momentum"] == 0.0
    for e in range(EPOCHS):
        if e:
            s.step()
        for top, lr in zip((0.2, 0.4), s.get_last_lr()):
            assert close(lr, onecycle_closed(e, top, EPOCHS)[0])


def test_onecycle_stops_after_total_steps() -> None:
    opt = FakeOptimizer()
    s = OneCycleLR(opt, max_lr=0.1, total_steps=4)
    for _ in range(4):  # torch allows total_steps steps after the constructor's
        s.step()
    before = (s.state_dict(), copy.deepcopy(opt.param_groups))
    with pytest.raises(ValueError, match="total_steps"):
        s.step()
    assert (s.state_dict(), opt.param_groups) == before


# ---------------------------------------------------------------- ReduceLROnPlateau

def plateau_reference(metrics: list, lr: float, mode: str = "min", factor: float = 0.1, patience: int = 10,
                      threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                      min_lr: float = 0.0, eps: float = 1e-8) -> list:
    """torch's documented ReduceLROnPlateau rule, written out: the rate after each metric."""
    best = math.inf if mode == "min" else -math.inf
    bad = cool = 0
    out = []
    for m in metrics:
        if mode == "min":
            better = m < (best * (1 - threshold) if threshold_mode == "rel" else best - threshold)
        else:
            better = m > (best * (1 + threshold) if threshold_mode == "rel" else best + threshold)
        if better:
            best, bad = m, 0
        else:
            bad += 1
        if cool > 0:
            cool, bad = cool - 1, 0
        if bad > patience:
            new = max(lr * factor, min_lr)
            if lr - new > eps:
                lr = new
            cool, bad = cooldown, 0
        out.append(lr)
    return out


def _metrics(mode: str) -> list:
    """50 metrics: improving, then long plateaus with noise, then a slow drift."""
    out = []
    for e in range(EPOCHS):
        v = 1.0 / (1 + e) if e < 12 else 0.08 + 0.001 * ((e * 7) % 5) - (0.0004 * e if e > 35 else 0.0)
        out.append(v if mode == "min" else -v)
    return out


PLATEAU = [
    ("min-rel", {"patience": 3}),
    ("min-abs", {"patience": 2, "threshold": 1e-3, "threshold_mode": "abs", "factor": 0.5}),
    ("max-rel", {"mode": "max", "patience": 4, "factor": 0.5}),
    ("max-abs", {"mode": "max", "patience": 1, "threshold_mode": "abs", "threshold": 0.0}),
    ("cooldown-min_lr", {"patience": 1, "cooldown": 3, "min_lr": 2e-3, "factor": 0.5}),
    ("eps-blocks", {"patience": 0, "factor": 0.5, "eps": 0.01}),
    ("defaults", {}),
]


@pytest.mark.parametrize("kwargs", [c[1] for c in PLATEAU], ids=[c[0] for c in PLATEAU])
def test_plateau_matches_reference(kwargs: dict) -> None:
    metrics = _metrics(kwargs.get("mode", "min"))
    opt = FakeOptimizer((0.1, 0.1))
    s = ReduceLROnPlateau(opt, **kwargs)
    assert s.get_last_lr() == [0.1, 0.1] and s.last_epoch == 0
    got = []
    for m in metrics:
        s.step(m)
        got.append(s.get_last_lr())
        assert [g["lr"] for g in opt.param_groups] == got[-1]
    want = plateau_reference(metrics, 0.1, **kwargs)
    assert [g[0] for g in got] == want and [g[1] for g in got] == want
    assert s.last_epoch == EPOCHS
    assert "initial_lr" not in opt.param_groups[0]


def test_plateau_by_hand() -> None:
    opt = FakeOptimizer((1.0,))
    s = ReduceLROnPlateau(opt, patience=1, factor=0.5, cooldown=1)
    seen = []
    for m in [5.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 3.0, float("nan"), 3.0, 3.0]:
        s.step(m)
        seen.append(s.get_last_lr()[0])
    # bad epochs: 4.0 (1), 4.0 (2 > 1: halve, cool 1), 4.0 (cooldown), 4.0 (1), 4.0 (2: halve) ...
    assert seen == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125, 0.125]
    assert s.best == 3.0 and s.in_cooldown is False and s.num_bad_epochs == 0  # the last 3.0 fell in cooldown


def test_plateau_min_lr_per_group_and_metric_types() -> None:
    opt = FakeOptimizer((1.0, 1.0))
    s = ReduceLROnPlateau(opt, patience=0, min_lr=[0.5, 0.0])
    for m in (1, 2, 3):  # ints are metrics too
        s.step(m)
    assert s.get_last_lr() == [0.5, 0.1 * 0.1]
    with pytest.raises(TypeError):
        s.step("1.0")
    with pytest.raises(TypeError):
        s.step(None)
    before = s.state_dict()
    with pytest.raises(ValueError, match="ReduceLROnPlateau.step: metrics .* too large"):
        s.step(10**400)  # torch converts with float(), which overflows
    assert s.state_dict() == before


# ---------------------------------------------------------------- state_dict

def _make_all() -> dict:
    """One scheduler of every member (kwargs chosen so that 12 steps change the rate)."""
    return {
        "StepLR": lambda o: StepLR(o, 3, 0.5),
        "MultiStepLR": lambda o: MultiStepLR(o, [2, 5, 5, 9], 0.5),
        "ExponentialLR": lambda o: ExponentialLR(o, 0.9),
        "CosineAnnealingLR": lambda o: CosineAnnealingLR(o, 7, 0.001),
        "LinearLR": lambda o: LinearLR(o, 0.2, 1.0, 10),
        "OneCycleLR": lambda o: OneCycleLR(o, 0.3, 30),
        "ReduceLROnPlateau": lambda o: ReduceLROnPlateau(o, patience=1, cooldown=1, factor=0.5),
    }


def test_every_member_has_a_case() -> None:
    assert set(_make_all()) == set(SCHEDULERS) == set(sch.__all__) - {"LRScheduler", "SCHEDULERS"}
    for name, cls in SCHEDULERS.items():
        assert cls.__name__ == name and issubclass(cls, sch.LRScheduler)
        assert pyfw.optim.lr_scheduler.__dict__[name] is cls


def _step(s: Any, e: int) -> None:
    if isinstance(s, ReduceLROnPlateau):
        s.step([3.0, 2.0, 2.0, 2.0, 2.5, 1.0, 1.0, 1.0, 1.0, 0.5][e % 10])
    else:
        s.step()


def _hexes(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _hexes(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_hexes(x) for x in v]
    return v.hex() if isinstance(v, float) else v


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_state_dict_round_trip_mid_run(name: str) -> None:
    make = _make_all()[name]
    ref_opt = FakeOptimizer((0.1, 0.02))
    ref = make(ref_opt)
    opt = FakeOptimizer((0.1, 0.02))
    s = make(opt)
    for e in range(7):
        _step(ref, e)
        _step(s, e)
    # checkpoint: both states through JSON, as a checkpoint file would hold them
    sd = json.loads(json.dumps(s.state_dict()))
    opt_sd = json.loads(json.dumps(opt.state_dict()))
    # resume: a fresh optimizer and scheduler (whose constructor steps), then the states
    opt2 = FakeOptimizer((0.7, 0.7))
    s2 = make(opt2)
    opt2.load_state_dict(opt_sd)
    s2.load_state_dict(sd)
    for e in range(7, 20):
        _step(ref, e)
        _step(s2, e)
        assert [x.hex() for x in s2.get_last_lr()] == [x.hex() for x in ref.get_last_lr()], e
        assert _hexes(opt2.param_groups) == _hexes(ref_opt.param_groups), e
    assert s2.last_epoch == ref.last_epoch
    assert _hexes(s2.state_dict()) == _hexes(ref.state_dict())


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_state_dict_is_a_copy_without_the_optimizer(name: str) -> None:
    s = _make_all()[name](FakeOptimizer())
    sd = s.state_dict()
    assert "optimizer" not in sd and "last_epoch" in sd and "_last_lr" in sd
    assert json.loads(json.dumps(sd)) is not None
    before = _hexes(s.state_dict())
    for v in sd.values():
        if isinstance(v, list):
            v.append(123)
    assert _hexes(s.state_dict()) == before
    sd2 = s.state_dict()
    s.load_state_dict(sd2)
    for v in sd2.values():
        if isinstance(v, list):
            v.append(123)
    assert _hexes(s.state_dict()) == before


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_load_state_dict_checks_keys(name: str) -> None:
    s = _make_all()[name](FakeOptimizer())
    before = _hexes(s.state_dict())
    other = "StepLR" if name != "StepLR" else "ExponentialLR"
    wrong = _make_all()[other](FakeOptimizer()).state_dict()
    with pytest.raises(ValueError, match="missing keys|unexpected keys"):
        s.load_state_dict(wrong)
    with pytest.raises(TypeError):
        s.load_state_dict([("last_epoch", 3)])
    missing = s.state_dict()
    del missing["last_epoch"]
    with pytest.raises(ValueError, match="last_epoch"):
        s.load_state_dict(missing)
    assert _hexes(s.state_dict()) == before


# Tampered values of loaded states: the constructor's rules, field by field. Every
# key of every member also refuses the values of GENERIC_BAD (no field takes them).
TAMPERED = [
    ("StepLR", "last_epoch", "x"), ("StepLR", "last_epoch", -1), ("StepLR", "last_epoch", 2.0),
    ("StepLR", "last_epoch", True), ("StepLR", "gamma", None), ("StepLR", "gamma", 0.0),
    ("StepLR", "gamma", math.inf), ("StepLR", "step_size", 0), ("StepLR", "_last_lr", [-5.0]),
    ("StepLR", "_last_lr", [0.1]), ("StepLR", "_last_lr", [0.1, math.inf]), ("StepLR", "_last_lr", 0.1),
    ("StepLR", "base_lrs", [0.1, -1.0]), ("StepLR", "_step_count", 0),
    ("MultiStepLR", "milestones", [5, 2]), ("MultiStepLR", "milestones", [-1]), ("MultiStepLR", "milestones", 5),
    ("MultiStepLR", "milestones", [2.0]), ("MultiStepLR", "gamma", -0.5),
    ("ExponentialLR", "gamma", None), ("ExponentialLR", "gamma", "0.9"),
    ("CosineAnnealingLR", "T_max", 0), ("CosineAnnealingLR", "T_max", 7.0), ("CosineAnnealingLR", "eta_min", -1e-3),
    ("LinearLR", "start_factor", 0.0), ("LinearLR", "start_factor", 1.5), ("LinearLR", "end_factor", -0.1),
    ("LinearLR", "total_iters", 0),
    ("OneCycleLR", "total_steps", 0), ("OneCycleLR", "total_steps", 30.0), ("OneCycleLR", "last_epoch", 31),
    ("OneCycleLR", "anneal_strategy", "CATS"), ("OneCycleLR", "three_phase", 1), ("OneCycleLR", "three_phase", True),
    ("OneCycleLR", "cycle_momentum", None), ("OneCycleLR", "use_beta1", True), ("OneCycleLR", "use_beta1", 0),
    ("OneCycleLR", "_schedule_phases", []), ("OneCycleLR", "_schedule_phases", None),
    ("ReduceLROnPlateau", "factor", 1.0), ("ReduceLROnPlateau", "mode", "minimum"),
    ("ReduceLROnPlateau", "threshold_mode", "relative"), ("ReduceLROnPlateau", "patience", -1),
    ("ReduceLROnPlateau", "cooldown", 2.5), ("ReduceLROnPlateau", "min_lrs", [0.0]),
    ("ReduceLROnPlateau", "min_lrs", [0.0, -1.0]), ("ReduceLROnPlateau", "default_min_lr", -1.0),
    ("ReduceLROnPlateau", "eps", math.nan), ("ReduceLROnPlateau", "threshold", -1e-4),
    ("ReduceLROnPlateau", "mode_worse", -math.inf), ("ReduceLROnPlateau", "mode_worse", 1.0),
    ("ReduceLROnPlateau", "best", None), ("ReduceLROnPlateau", "cooldown_counter", 2),
    ("ReduceLROnPlateau", "num_bad_epochs", 2), ("ReduceLROnPlateau", "last_epoch", -1),
]
GENERIC_BAD = ["x", math.nan, None, [None], {"a": 1}]


def _tampered_cases() -> list:
    """(name, key, value) of TAMPERED, then every key of every member with each GENERIC_BAD
    value (``None`` is a valid ``default_min_lr``)."""
    cases = list(TAMPERED)
    for name, make in _make_all().items():
        for key in make(FakeOptimizer((0.1, 0.02))).state_dict():
            cases += [(name, key, v) for v in GENERIC_BAD if not (key == "default_min_lr" and v is None)]
    return cases


def test_tampered_table_covers_every_field() -> None:
    for name, make in _make_all().items():
        keys = set(make(FakeOptimizer((0.1, 0.02))).state_dict())
        named = {key for n, key, _ in TAMPERED if n == name}
        assert named <= keys, (name, named - keys)


@pytest.mark.parametrize("name, key, value", _tampered_cases(),
                         ids=[f"{n}-{k}-{v!r:.20}" for n, k, v in _tampered_cases()])
def test_load_state_dict_refuses_tampered_fields(name: str, key: str, value: Any) -> None:
    """A state with one field out of the constructor's rules is refused, naming the field,
    and leaves the scheduler as it was; the scheduler then still steps as before."""
    make = _make_all()[name]
    opt, ref_opt = FakeOptimizer((0.1, 0.02)), FakeOptimizer((0.1, 0.02))
    s, ref = make(opt), make(ref_opt)
    for e in range(3):
        _step(s, e)
        _step(ref, e)
    sd = json.loads(json.dumps(s.state_dict()))
    assert key in sd
    sd[key] = value
    before = _hexes(s.state_dict())
    with pytest.raises((TypeError, ValueError), match=f"{name}.load_state_dict: .*"):
        s.load_state_dict(sd)
    assert _hexes(s.state_dict()) == before, "a refused state changes nothing"
    for e in range(3, 8):
        _step(s, e)
        _step(ref, e)
        assert _hexes(s.get_last_lr()) == _hexes(ref.get_last_lr())


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_load_state_dict_names_the_field(name: str) -> None:
    s = _make_all()[name](FakeOptimizer((0.1, 0.02)))
    sd = s.state_dict()
    sd["last_epoch"] = "x"
    with pytest.raises(TypeError, match=f"{name}.load_state_dict: last_epoch must be an int"):
        s.load_state_dict(sd)
    sd["last_epoch"] = 3
    sd["_last_lr"] = [-5.0, 0.1]
    with pytest.raises(ValueError, match=r"_last_lr\[0\] must be non-negative"):
        s.load_state_dict(sd)


def test_load_state_dict_takes_json_numbers_as_the_constructor() -> None:
    """An int where the constructor keeps a float is stored as that float."""
    s = StepLR(FakeOptimizer((0.1,)), 3, 0.5)
    sd = s.state_dict()
    sd["gamma"], sd["_last_lr"] = 1, [0]
    s.load_state_dict(sd)
    assert type(s.gamma) is float and s.gamma == 1.0 and s.get_last_lr() == [0.0]
    assert type(s.get_last_lr()[0]) is float


def test_initial_lr_is_kept_by_a_second_scheduler() -> None:
    opt = FakeOptimizer((0.1,))
    ExponentialLR(opt, 0.5).step()
    assert opt.param_groups[0]["lr"] == 0.05
    s = StepLR(opt, 2)  # torch: base_lrs come from the existing "initial_lr"
    assert s.base_lrs == [0.1] and s.get_last_lr() == [0.05]


def test_chainable_schedulers_compose() -> None:
    """Two chainable schedulers on one optimizer multiply, as torch's do."""
    opt = FakeOptimizer((1.0,))
    a, b = ExponentialLR(opt, 0.5), StepLR(opt, 2, 0.1)
    lrs = []
    for _ in range(4):
        a.step()
        b.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == [0.5, 0.5 * 0.5 * 0.1, 0.5 * 0.5 * 0.1 * 0.5, 0.5 * 0.5 * 0.1 * 0.5 * 0.5 * 0.1]


def test_user_change_of_lr_is_followed() -> None:
    opt = FakeOptimizer((1.0,))
    s = ExponentialLR(opt, 0.5)
    opt.param_groups[0]["lr"] = 4.0
    s.step()
    assert s.get_last_lr() == [2.0]


def test_get_last_lr_is_a_copy() -> None:
    s = StepLR(FakeOptimizer(), 2)
    s.get_last_lr().append(1.0)
    assert s.get_last_lr() == [0.1]


# ---------------------------------------------------------------- bad arguments

class NoGroups:
    pass


class EmptyGroups:
    param_groups: list = []


class StrLr:
    param_groups = [{"lr": "0.1"}]


BAD = [
    ("step-size-0", lambda o: StepLR(o, 0), ValueError),
    ("step-size-float", lambda o: StepLR(o, 2.0), TypeError),
    ("step-size-bool", lambda o: StepLR(o, True), TypeError),
    ("step-gamma-str", lambda o: StepLR(o, 2, "0.1"), TypeError),
    ("step-gamma-nan", lambda o: StepLR(o, 2, float("nan")), ValueError),
    ("step-gamma-0", lambda o: StepLR(o, 2, 0.0), ValueError),
    ("multistep-int", lambda o: MultiStepLR(o, 5), TypeError),
    ("multistep-float", lambda o: MultiStepLR(o, [5.0]), TypeError),
    ("multistep-negative", lambda o: MultiStepLR(o, [-1, 5]), ValueError),
    ("multistep-str", lambda o: MultiStepLR(o, "12"), TypeError),
    ("exponential-inf", lambda o: ExponentialLR(o, float("inf")), ValueError),
    ("exponential-none", lambda o: ExponentialLR(o, None), TypeError),
    ("exponential-negative", lambda o: ExponentialLR(o, -0.5), ValueError),
    ("cosine-tmax-0", lambda o: CosineAnnealingLR(o, 0), ValueError),
    ("cosine-tmax-float", lambda o: CosineAnnealingLR(o, 10.0), TypeError),
    ("cosine-eta-negative", lambda o: CosineAnnealingLR(o, 10, -1e-3), ValueError),
    ("linear-start-0", lambda o: LinearLR(o, start_factor=0.0), ValueError),
    ("linear-start-big", lambda o: LinearLR(o, start_factor=1.5), ValueError),
    ("linear-end-big", lambda o: LinearLR(o, end_factor=1.5), ValueError),
    ("linear-end-negative", lambda o: LinearLR(o, end_factor=-0.1), ValueError),
    ("linear-iters-0", lambda o: LinearLR(o, total_iters=0), ValueError),
    ("linear-iters-float", lambda o: LinearLR(o, total_iters=5.5), TypeError),
    ("onecycle-no-steps", lambda o: OneCycleLR(o, 0.1), ValueError),
    ("onecycle-epochs-only", lambda o: OneCycleLR(o, 0.1, epochs=3), ValueError),
    ("onecycle-steps-0", lambda o: OneCycleLR(o, 0.1, total_steps=0), ValueError),
    ("onecycle-steps-float", lambda o: OneCycleLR(o, 0.1, total_steps=10.0), ValueError),
    ("onecycle-epochs-0", lambda o: OneCycleLR(o, 0.1, epochs=0, steps_per_epoch=3), ValueError),
    ("onecycle-pct-big", lambda o: OneCycleLR(o, 0.1, 10, pct_start=1.1), ValueError),
    ("onecycle-pct-str", lambda o: OneCycleLR(o, 0.1, 10, pct_start="0.3"), ValueError),
    ("onecycle-anneal", lambda o: OneCycleLR(o, 0.1, 10, anneal_strategy="CATS"), ValueError),
    ("onecycle-max-lr-list", lambda o: OneCycleLR(o, [0.1, 0.2], 10), ValueError),
    ("onecycle-max-lr-str", lambda o: OneCycleLR(o, "0.1", 10), TypeError),
    ("onecycle-max-lr-0", lambda o: OneCycleLR(o, 0.0, 10), ValueError),
    ("onecycle-div-0", lambda o: OneCycleLR(o, 0.1, 10, div_factor=0.0), ValueError),
    ("onecycle-three-phase-int", lambda o: OneCycleLR(o, 0.1, 10, three_phase=1), TypeError),
    ("onecycle-momentum-str", lambda o: OneCycleLR(o, 0.1, 10, base_momentum="x"), TypeError),
    ("plateau-factor-1", lambda o: ReduceLROnPlateau(o, factor=1.0), ValueError),
    ("plateau-factor-negative", lambda o: ReduceLROnPlateau(o, factor=-0.1), ValueError),
    ("plateau-mode", lambda o: ReduceLROnPlateau(o, mode="minimum"), ValueError),
    ("plateau-threshold-mode", lambda o: ReduceLROnPlateau(o, threshold_mode="relative"), ValueError),
    ("plateau-patience-negative", lambda o: ReduceLROnPlateau(o, patience=-1), ValueError),
    ("plateau-patience-float", lambda o: ReduceLROnPlateau(o, patience=2.5), TypeError),
    ("plateau-cooldown-negative", lambda o: ReduceLROnPlateau(o, cooldown=-1), ValueError),
    ("plateau-min-lr-list", lambda o: ReduceLROnPlateau(o, min_lr=[0.0, 0.1]), ValueError),
    ("plateau-min-lr-negative", lambda o: ReduceLROnPlateau(o, min_lr=-1.0), ValueError),
    ("plateau-eps-nan", lambda o: ReduceLROnPlateau(o, eps=float("nan")), ValueError),
]


@pytest.mark.parametrize("make, exc", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_arguments(make: Callable, exc: type) -> None:
    opt = FakeOptimizer((0.1,))
    before = copy.deepcopy(opt.param_groups)
    with pytest.raises(exc):
        make(opt)
    assert opt.param_groups == before, "a rejected scheduler changes nothing"


def test_onecycle_momentum_needs_momentum() -> None:
    opt = FakeOptimizer((0.1,), "plain")
    with pytest.raises(ValueError, match="momentum"):
        OneCycleLR(opt, 0.1, 10)
    assert opt.param_groups == [{"params": [], "lr": 0.1}]
    OneCycleLR(opt, 0.1, 10, cycle_momentum=False)
    assert close(opt.param_groups[0]["lr"], 0.1 / 25.0)  # torch's cos anneal at pct 0: a few ulps off


@pytest.mark.parametrize("name", list(SCHEDULERS))
@pytest.mark.parametrize("bad", [None, NoGroups(), EmptyGroups(), StrLr(), [{"lr": 0.1}]],
                         ids=["none", "no-groups", "empty", "str-lr", "list"])
def test_not_an_optimizer(name: str, bad: Any) -> None:
    with pytest.raises(TypeError):
        _make_all()[name](bad)


# ---------------------------------------------------------------- real optimizers

def _real_optimizers(fw: Any) -> list:
    """(name, optimizer) for every member of the backend's optimizer table."""
    out = []
    for name, cls in fw.OPTIMIZERS.items():
        p = fw.tensor([[0.5, -0.25]])
        out.append((name, cls([(p, fw.tensor([[0.1, 0.2]]))], lr=0.05)))
    return out


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_with_real_optimizers(fw: Any, name: str) -> None:
    """Every scheduler drives every optimizer of the backend's table as it drives a fake one."""
    for opt_name, opt in _real_optimizers(fw):
        if name == "OneCycleLR" and not any(k in opt.defaults for k in ("momentum", "betas")):
            continue
        fake = FakeOptimizer((0.05,), "adam" if "betas" in opt.defaults else "sgd")
        s, ref = _make_all()[name](opt), _make_all()[name](fake)
        for e in range(12):
            opt.step()
            _step(s, e)
            _step(ref, e)
            assert s.get_last_lr() == ref.get_last_lr() == [opt.param_groups[0]["lr"]], (opt_name, e)


# ---------------------------------------------------------------- real optimizers in fit, both backends

def _seed_setup(fw: Any, seed: int, n: int = 60) -> tuple:
    g = fw.Generator(seed)
    x, y = fw.data.disk(n, generator=g)
    model = fw.Sequential(fw.Linear(2, 16, generator=g), fw.Tanh(), fw.Linear(16, 16, generator=g), fw.ReLU(),
                          fw.Linear(16, 2, generator=g))
    return g, x, y, model


RECIPES = [
    ("adam-cosine", lambda fw, m: fw.Adam(m.param(), lr=1e-2), lambda o: CosineAnnealingLR(o, 6)),
    ("sgd-momentum-onecycle", lambda fw, m: fw.SGD(m.param(), lr=0.1, momentum=0.9),
     lambda o: OneCycleLR(o, 0.2, total_steps=6)),
    ("adamw-onecycle", lambda fw, m: fw.AdamW(m.parameters(), lr=1e-2), lambda o: OneCycleLR(o, 0.02, 6)),
    ("adamw-step", lambda fw, m: fw.AdamW(m.param(), lr=1e-2), lambda o: StepLR(o, 2, 0.5)),
    ("rmsprop-plateau", lambda fw, m: fw.RMSprop(m.param(), lr=1e-2, momentum=0.5),
     lambda o: ReduceLROnPlateau(o, patience=0, factor=0.5)),
    ("adagrad-linear", lambda fw, m: fw.Adagrad(m.param(), lr=0.1), lambda o: LinearLR(o, 0.25, 1.0, 4)),
    ("sgd-multistep-exp", lambda fw, m: fw.SGD(m.param(), lr=0.1, nesterov=True, momentum=0.8),
     lambda o: MultiStepLR(o, [2, 4], 0.3)),
]


def _recipe_run(fw: Any, make_opt: Callable, make_sched: Callable, epochs: int = 6) -> tuple:
    g, x, y, model = _seed_setup(fw, 3)
    opt = make_opt(fw, model)
    sched = make_sched(opt)
    lrs: list = []
    losses = fit(model, fw.CrossEntropyLoss(), opt, x, y, epochs=epochs, batch_size=8, generator=g,
                 scheduler=sched, on_epoch=lambda e, l: lrs.append(sched.get_last_lr()[0]))
    return losses, lrs, model, opt, sched


@pytest.mark.parametrize("make_opt, make_sched", [r[1:] for r in RECIPES], ids=[r[0] for r in RECIPES])
def test_fit_with_real_optimizers_is_bit_identical_across_backends(make_opt: Callable, make_sched: Callable) -> None:
    runs = [_recipe_run(load_backend(name), make_opt, make_sched) for name in BACKENDS]
    (la, ra, ma, oa, sa), (lb, rb, mb, ob, sb) = runs
    assert [v.hex() for v in la] == [v.hex() for v in lb]
    assert [v.hex() for v in ra] == [v.hex() for v in rb]
    assert state_hex(ma) == state_hex(mb)
    assert _hexes(sa.state_dict()) == _hexes(sb.state_dict())
    assert oa.param_groups[0]["lr"] == ob.param_groups[0]["lr"] == sa.get_last_lr()[0]
    assert len(set(ra)) > 1, "the schedule changed the rate"


def test_the_optimizer_steps_with_the_scheduled_rate(fw: Any) -> None:
    """fit with Adam and StepLR(1, 0.5) equals epochs run by hand with lr 1e-2 * 0.5**e (exact halvings)."""
    g, x, y, model = _seed_setup(fw, 4, n=30)
    opt = fw.Adam(model.param(), lr=1e-2)
    la = fit(model, fw.CrossEntropyLoss(), opt, x, y, epochs=3, batch_size=7, generator=g,
             scheduler=StepLR(opt, 1, 0.5))
    g2, x2, y2, model2 = _seed_setup(fw, 4, n=30)
    opt2 = fw.Adam(model2.param(), lr=1e-2)
    model2.train()
    lb = []
    for e in range(3):
        opt2.param_groups[0]["lr"] = 1e-2 * 0.5 ** e
        lb.append(train_epoch(model2, fw.CrossEntropyLoss(), opt2, x2, y2, batch_size=7, generator=g2))
    assert [v.hex() for v in la] == [v.hex() for v in lb]
    assert state_hex(model) == state_hex(model2)


@pytest.mark.parametrize("make_opt, make_sched", [r[1:] for r in RECIPES], ids=[r[0] for r in RECIPES])
def test_resume_from_states_gives_the_same_bits(fw: Any, make_opt: Callable, make_sched: Callable) -> None:
    """Model, optimizer and scheduler states saved after 3 epochs and loaded into fresh
    objects (whose scheduler constructor has stepped) continue bit for bit."""
    losses, _, model, _, _ = _recipe_run(fw, make_opt, make_sched, epochs=6)
    g, x, y, m1 = _seed_setup(fw, 3)
    o1 = make_opt(fw, m1)
    s1 = make_sched(o1)
    first = fit(m1, fw.CrossEntropyLoss(), o1, x, y, epochs=3, batch_size=8, generator=g, scheduler=s1)
    saved = json.loads(json.dumps(s1.state_dict())), o1.state_dict(), m1.state_dict()
    _, _, _, m2 = _seed_setup(fw, 99)
    o2 = make_opt(fw, m2)
    s2 = make_sched(o2)
    m2.load_state_dict(saved[2])
    o2.load_state_dict(saved[1])
    s2.load_state_dict(saved[0])
    rest = fit(m2, fw.CrossEntropyLoss(), o2, x, y, epochs=3, batch_size=8, generator=g, scheduler=s2)
    assert [v.hex() for v in first + rest] == [v.hex() for v in losses]
    assert state_hex(m2) == state_hex(model)


def test_onecycle_per_batch_from_on_batch(fw: Any) -> None:
    """OneCycleLR stepped per batch (from on_batch), as torch users do, on both backends alike."""
    out = []
    for name in BACKENDS:
        bfw = load_backend(name)
        g, x, y, model = _seed_setup(bfw, 5, n=40)
        opt = bfw.SGD(model.param(), lr=0.1, momentum=0.9)
        sched = OneCycleLR(opt, max_lr=0.3, epochs=3, steps_per_epoch=5)
        losses = fit(model, bfw.CrossEntropyLoss(), opt, x, y, epochs=3, batch_size=8, generator=g,
                     on_batch=lambda k, m, l: sched.step() if sched.last_epoch < sched.total_steps else None)
        assert sched.last_epoch == 15
        out.append(([v.hex() for v in losses], state_hex(model), opt.param_groups[0]["momentum"]))
    assert out[0] == out[1]


# ---------------------------------------------------------------- torch itself (optional)

def test_against_torch() -> None:
    torch = pytest.importorskip("torch")
    tl = torch.optim.lr_scheduler
    pairs = [
        (lambda o: StepLR(o, 7, 0.5), lambda o: tl.StepLR(o, 7, 0.5)),
        (lambda o: MultiStepLR(o, [5, 12, 12, 30], 0.3), lambda o: tl.MultiStepLR(o, [5, 12, 12, 30], 0.3)),
        (lambda o: ExponentialLR(o, 0.93), lambda o: tl.ExponentialLR(o, 0.93)),
        (lambda o: CosineAnnealingLR(o, 10, 0.01), lambda o: tl.CosineAnnealingLR(o, 10, 0.01)),
        (lambda o: LinearLR(o, 0.1, 1.0, 20), lambda o: tl.LinearLR(o, 0.1, 1.0, 20)),
        (lambda o: OneCycleLR(o, 0.2, 50), lambda o: tl.OneCycleLR(o, 0.2, 50)),
        (lambda o: OneCycleLR(o, 0.2, 50, anneal_strategy="linear", three_phase=True),
         lambda o: tl.OneCycleLR(o, 0.2, 50, anneal_strategy="linear", three_phase=True)),
    ]
    for ours, theirs in pairs:
        fake = FakeOptimizer((0.1,))
        topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
        a, b = ours(fake), theirs(topt)
        for e in range(EPOCHS):
            if e:
                topt.step()
                a.step()
                b.step()
            assert close(a.get_last_lr()[0], float(b.get_last_lr()[0])), (type(a).__name__, e)
            assert close(fake.param_groups[0]["momentum"], topt.param_groups[0]["momentum"]) or \
                not isinstance(a, OneCycleLR)
    metrics = _metrics("min")
    fake = FakeOptimizer((0.1,))
    topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    a = ReduceLROnPlateau(fake, patience=1, cooldown=2, factor=0.5, min_lr=1e-3)
    b = tl.ReduceLROnPlateau(topt, patience=1, cooldown=2, factor=0.5, min_lr=1e-3)
    for m in metrics:
        a.step(m)
        b.step(m)
        assert close(a.get_last_lr()[0], float(b.get_last_lr()[0]))
