"""The optimizer family, tested from its table: every member of ``OPTIMIZERS``, with
several hyperparameter settings, against torch's documented algorithm written out
below (30 steps, 1e-12 relative); bit for bit across the backends; a state_dict
round trip in the middle of a run (within and across backends); bad
hyperparameters (the same type and message in both backends); changes of
``param_groups[0]`` honoured at every step; ``model.parameters()`` accepted. An
optional test compares with torch itself when it is installed."""

from __future__ import annotations

import inspect
import math
import random
import struct
from types import ModuleType
from typing import Any, Callable, Optional

import pytest
from conftest import load_backend
from fwtest import hexes, th

import pyfw

NAMES = list(pyfw.OPTIMIZERS)
STEPS = 30
SHAPES = [(3, 4), (5,)]


def signature(name: str) -> list:
    """The hyperparameters of member ``name`` (its table line), without ``params``."""
    return list(inspect.signature(pyfw.OPTIMIZERS[name]).parameters.values())[1:]


# Settings per member; test_every_hyperparameter_is_exercised checks that together
# they move every hyperparameter of the table away from its default.
VARIANTS: dict = {
    "SGD": [
        {},
        {"lr": 0.1, "weight_decay": 0.05},
        {"lr": 0.05, "momentum": 0.9},
        {"lr": 0.05, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.01},
        {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.02},
    ],
    "Adam": [
        {},
        {"lr": 0.01, "weight_decay": 0.1},
        {"lr": 0.02, "amsgrad": True},
        {"lr": 0.01, "betas": (0.3, 0.6), "eps": 1e-6, "weight_decay": 0.05, "amsgrad": True},
    ],
    "AdamW": [
        {},
        {"lr": 0.01, "weight_decay": 0.3},
        {"lr": 0.02, "weight_decay": 0.0, "amsgrad": True},
        {"lr": 0.01, "betas": (0.7, 0.95), "eps": 1e-4, "amsgrad": True},
    ],
    "Adagrad": [
        {},
        {"lr": 0.1, "lr_decay": 0.05},
        {"lr": 0.05, "weight_decay": 0.1, "initial_accumulator_value": 0.3, "eps": 1e-6},
    ],
    "RMSprop": [
        {},
        {"lr": 0.005, "alpha": 0.9, "weight_decay": 0.05},
        {"lr": 0.005, "centered": True},
        {"lr": 0.002, "momentum": 0.7, "eps": 1e-6},
        {"lr": 0.002, "alpha": 0.4, "momentum": 0.5, "centered": True, "weight_decay": 0.01},
    ],
}

CASES = [(name, kw) for name in NAMES for kw in VARIANTS.get(name, [{}])]
IDS = [f"{name}({','.join(f'{k}={v}' for k, v in kw.items())})" for name, kw in CASES]


def hyper(name: str, kw: dict) -> dict:
    """Every hyperparameter of ``name``: the signature's defaults updated with ``kw``, as floats."""
    hp = {}
    for p in signature(name):
        v = kw.get(p.name, p.default)
        if isinstance(v, bool):
            hp[p.name] = v
        elif isinstance(v, tuple):
            hp[p.name] = tuple(float(b) for b in v)
        else:
            hp[p.name] = float(v)
    return hp


# ---- torch's documented algorithms, written out element by element ------------------
# Each takes the hyperparameters of this step, the parameter and gradient as flat lists,
# the per-parameter state (a dict) and the step count t (1, 2, ...), and returns the new
# parameter. They follow the pseudo-code of torch's documentation, not pyfw's operation
# order, so they agree with pyfw to rounding only.

def ref_sgd(hp: dict, p: list, g: list, st: dict, t: int) -> list:
    lr, mu, tau, wd, nesterov = hp["lr"], hp["momentum"], hp["dampening"], hp["weight_decay"], hp["nesterov"]
    out = []
    for k, (th_, gt) in enumerate(zip(p, g)):
        if wd != 0:
            gt = gt + wd * th_
        if mu != 0:
            b = st.setdefault("b", {})
            b[k] = gt if k not in b else mu * b[k] + (1 - tau) * gt
            gt = gt + mu * b[k] if nesterov else b[k]
        out.append(th_ - lr * gt)
    return out


def ref_adam(hp: dict, p: list, g: list, st: dict, t: int, decoupled: bool = False) -> list:
    lr, (b1, b2), eps, wd, amsgrad = hp["lr"], hp["betas"], hp["eps"], hp["weight_decay"], hp["amsgrad"]
    m, v, vmax = st.setdefault("m", [0.0] * len(p)), st.setdefault("v", [0.0] * len(p)), \
        st.setdefault("vmax", [0.0] * len(p))
    out = []
    for k, (th_, gt) in enumerate(zip(p, g)):
        if decoupled:
            th_ = th_ - lr * wd * th_
        elif wd != 0:
            gt = gt + wd * th_
        m[k] = b1 * m[k] + (1 - b1) * gt
        v[k] = b2 * v[k] + (1 - b2) * gt * gt
        m_hat = m[k] / (1 - b1 ** t)
        if amsgrad:
            vmax[k] = max(vmax[k], v[k])
            v_hat = vmax[k] / (1 - b2 ** t)
        else:
            v_hat = v[k] / (1 - b2 ** t)
        out.append(th_ - lr * m_hat / (math.sqrt(v_hat) + eps))
    return out


def ref_adamw(hp: dict, p: list, g: list, st: dict, t: int) -> list:
    return ref_adam(hp, p, g, st, t, decoupled=True)


def ref_adagrad(hp: dict, p: list, g: list, st: dict, t: int) -> list:
    lr, eta, wd, tau, eps = hp["lr"], hp["lr_decay"], hp["weight_decay"], hp["initial_accumulator_value"], hp["eps"]
    s = st.setdefault("sum", [tau] * len(p))
    gamma = lr / (1 + (t - 1) * eta)
    out = []
    for k, (th_, gt) in enumerate(zip(p, g)):
        if wd != 0:
            gt = gt + wd * th_
        s[k] = s[k] + gt * gt
        out.append(th_ - gamma * gt / (math.sqrt(s[k]) + eps))
    return out


def ref_rmsprop(hp: dict, p: list, g: list, st: dict, t: int) -> list:
    lr, alpha, eps, wd, mu, centered = (hp["lr"], hp["alpha"], hp["eps"], hp["weight_decay"],
                                        hp["momentum"], hp["centered"])
    v, b, ga = (st.setdefault(key, [0.0] * len(p)) for key in ("v", "b", "ga"))
    out = []
    for k, (th_, gt) in enumerate(zip(p, g)):
        if wd != 0:
            gt = gt + wd * th_
        v[k] = alpha * v[k] + (1 - alpha) * gt * gt
        v_tilde = v[k]
        if centered:
            ga[k] = ga[k] * alpha + (1 - alpha) * gt
            v_tilde = v_tilde - ga[k] * ga[k]
        if mu > 0:
            b[k] = mu * b[k] + gt / (math.sqrt(v_tilde) + eps)
            out.append(th_ - lr * b[k])
        else:
            out.append(th_ - lr * gt / (math.sqrt(v_tilde) + eps))
    return out


REFERENCES: dict = {"SGD": ref_sgd, "Adam": ref_adam, "AdamW": ref_adamw, "Adagrad": ref_adagrad,
                    "RMSprop": ref_rmsprop}


# ---- running an optimizer on a fixed sequence of gradients ------------------------

def flat(x: Any) -> list:
    x = x.tolist() if hasattr(x, "tolist") else x
    return [v for r in x for v in r] if x and isinstance(x[0], list) else list(x)


def shaped(values: list, shape: tuple) -> list:
    if len(shape) == 1:
        return list(values)
    return [values[r * shape[1]:(r + 1) * shape[1]] for r in range(shape[0])]


def start_values(seed: int = 0) -> list:
    rng = random.Random(seed)
    return [[rng.uniform(-1.0, 1.0) for _ in range(math.prod(s))] for s in SHAPES]


def gradient_sequence(seed: int = 1, steps: int = STEPS) -> list:
    rng = random.Random(seed)
    return [[[rng.uniform(-1.0, 1.0) for _ in range(math.prod(s))] for s in SHAPES] for _ in range(steps)]


class Run:
    """Parameters and gradient tensors of one backend, and an optimizer over them."""

    def __init__(self, fw: ModuleType, name: str, kw: dict, form: str = "pairs",
                 values: Optional[list] = None) -> None:
        self.fw = fw
        values = values if values is not None else start_values()
        self.params = [fw.tensor(shaped(v, s)) for v, s in zip(values, SHAPES)]
        self.grads = [fw.tensor(shaped([0.0] * len(v), s)) for v, s in zip(values, SHAPES)]
        if form == "pairs":
            spec: Any = list(zip(self.params, self.grads))
        else:
            for p, g in zip(self.params, self.grads):
                p.grad = g
            spec = iter(self.params)
        self.opt = fw.OPTIMIZERS[name](spec, **kw)

    def step(self, grads: list) -> None:
        for g, v, s in zip(self.grads, grads, SHAPES):
            g.copy_(shaped(v, s))
        self.opt.step()

    def values(self) -> list:
        return [flat(p) for p in self.params]

    def hexes(self) -> list:
        return [th(p) for p in self.params]


def state_hex(sd: dict) -> dict:
    """A state dict with every tensor as nested float.hex strings."""
    state = {i: {k: (v if k == "step" else th(v)) for k, v in s.items()} for i, s in sd["state"].items()}
    return {"state": state, "param_groups": sd["param_groups"]}


def assert_close(got: list, want: list, what: str) -> None:
    for gp, wp in zip(got, want):
        for a, b in zip(gp, wp):
            assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12), f"{what}: {a!r} vs {b!r}"


# ---- the table ----------------------------------------------------------------------

def test_both_backends_list_the_same_members() -> None:
    rs = load_backend("rs")
    assert list(rs.OPTIMIZERS) == NAMES
    for fw in (pyfw, rs):
        for name in NAMES:
            assert name in fw.__all__
            assert getattr(fw, name) is fw.OPTIMIZERS[name] is getattr(fw.optim, name)
            assert issubclass(fw.OPTIMIZERS[name], fw.optim.Optimizer)


@pytest.mark.parametrize("name", NAMES)
def test_signatures_match_and_follow_torch(name: str) -> None:
    rs = load_backend("rs")

    def params(f: Any) -> list:
        return [(p.name, p.kind, p.default) for p in inspect.signature(f).parameters.values()]

    assert params(pyfw.OPTIMIZERS[name]) == params(rs.OPTIMIZERS[name])
    assert params(pyfw.OPTIMIZERS[name])[0][0] == "params"


def test_torch_defaults() -> None:
    """The optimizers' documented defaults, as torch's (SGD keeps pyfw's and torch's lr=1e-3)."""
    want = {
        "SGD": dict(lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False),
        "Adam": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False),
        "AdamW": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False),
        "Adagrad": dict(lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10),
        "RMSprop": dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False),
    }
    for name in NAMES:
        assert {p.name: p.default for p in signature(name)} == want[name], name


@pytest.mark.parametrize("name", NAMES)
def test_every_hyperparameter_is_exercised(name: str) -> None:
    assert name in VARIANTS and name in REFERENCES, f"add settings and a reference for {name}"
    for p in signature(name):
        assert any(p.name in kw and kw[p.name] != p.default for kw in VARIANTS[name]), p.name


# ---- against torch's documented algorithm ------------------------------------------

@pytest.mark.parametrize("name, kw", CASES, ids=IDS)
def test_thirty_steps_follow_the_documented_algorithm(fw: ModuleType, name: str, kw: dict) -> None:
    run = Run(fw, name, kw)
    want = start_values()
    states: list = [{} for _ in SHAPES]
    hp = hyper(name, kw)
    for t, grads in enumerate(gradient_sequence(), start=1):
        run.step(grads)
        want = [REFERENCES[name](hp, p, g, st, t) for p, g, st in zip(want, grads, states)]
        assert_close(run.values(), want, f"{name} step {t}")


@pytest.mark.parametrize("name, kw", CASES, ids=IDS)
def test_bit_identical_across_backends(name: str, kw: dict) -> None:
    rs = load_backend("rs")
    runs = [Run(pyfw, name, kw), Run(rs, name, kw)]
    for t, grads in enumerate(gradient_sequence(seed=2)):
        for r in runs:
            r.step(grads)
        assert runs[0].hexes() == runs[1].hexes(), f"step {t}"
    a, b = (state_hex(r.opt.state_dict()) for r in runs)
    assert a == b


def test_first_steps_by_hand(fw: ModuleType) -> None:
    """A few values worked out with the formulas of docs/NUMERICS.md."""
    p, g = fw.tensor([1.0]), fw.tensor([0.5])
    opt = fw.Adam([(p, g)], lr=0.1)
    opt.step()
    m, v = 0.0 + 0.09999999999999998 * (0.5 - 0.0), 0.0 * 0.999 + (0.0010000000000000009 * 0.5) * 0.5
    den = math.sqrt(v) / (1.0 - 0.999) ** 0.5 + 1e-8
    assert p.tolist()[0].hex() == (1.0 + (-(0.1 / (1.0 - 0.9)) * m) / den).hex()
    p, g = fw.tensor([1.0]), fw.tensor([0.5])
    fw.SGD([(p, g)], lr=0.1, momentum=0.9, nesterov=True).step()
    assert p.tolist() == [1.0 - 0.1 * (0.5 + 0.9 * 0.5)]
    p, g = fw.tensor([2.0]), fw.tensor([0.5])
    fw.Adagrad([(p, g)], lr=0.1, initial_accumulator_value=0.75).step()
    assert p.tolist() == [2.0 + (-0.1 * 0.5) / (math.sqrt(0.75 + 0.25) + 1e-10)]


# ---- state dicts ---------------------------------------------------------------------

def _fresh(fw: ModuleType, name: str, values: list, form: str = "pairs") -> Run:
    """An optimizer with default hyperparameters: load_state_dict brings the saved ones."""
    return Run(fw, name, {}, form=form, values=values)


@pytest.mark.parametrize("name, kw", CASES, ids=IDS)
@pytest.mark.parametrize("route", ["py-py", "rs-rs", "py-rs", "rs-py"])
def test_state_dict_round_trip_in_the_middle(name: str, kw: dict, route: str) -> None:
    src_fw, dst_fw = (load_backend(b) for b in route.split("-"))
    grads = gradient_sequence(seed=3)
    whole = Run(src_fw, name, kw)
    for gs in grads:
        whole.step(gs)
    first = Run(src_fw, name, kw)
    for gs in grads[:13]:
        first.step(gs)
    sd = first.opt.state_dict()
    if route == "rs-py":
        # nested lists load too
        sd = {"state": {i: {k: (v if k == "step" else v.tolist()) for k, v in s.items()}
                        for i, s in sd["state"].items()},
              "param_groups": sd["param_groups"]}
    second = _fresh(dst_fw, name, first.values())
    second.opt.load_state_dict(sd)
    assert state_hex(second.opt.state_dict()) == state_hex(first.opt.state_dict())
    for gs in grads[13:]:
        second.step(gs)
    assert second.hexes() == whole.hexes()
    assert state_hex(second.opt.state_dict()) == state_hex(whole.opt.state_dict())


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_layout(fw: ModuleType, name: str) -> None:
    kw = VARIANTS[name][-1]
    run = Run(fw, name, kw)
    for gs in gradient_sequence(steps=3):
        run.step(gs)
    sd = run.opt.state_dict()
    assert list(sd) == ["state", "param_groups"]
    (group,) = sd["param_groups"]
    assert group["params"] == [0, 1]
    assert {k: v for k, v in group.items() if k != "params"} == hyper(name, kw)
    assert set(sd["state"]) <= {0, 1}
    for i, entry in sd["state"].items():
        for key, value in entry.items():
            if key == "step":
                assert type(value) is int and value == 3
            else:
                assert isinstance(value, fw.Tensor) and value.shape == run.params[i].shape
    # copies: changing them changes nothing
    before = state_hex(run.opt.state_dict())
    for entry in sd["state"].values():
        for key, value in entry.items():
            if key != "step":
                value.zero_()
    group["lr"] = 123.0
    assert state_hex(run.opt.state_dict()) == before


def test_state_names_follow_torch(fw: ModuleType) -> None:
    def keys(name: str, kw: dict, steps: int = 1) -> list:
        run = Run(fw, name, kw)
        for gs in gradient_sequence(steps=steps):
            run.step(gs)
        return list(run.opt.state_dict()["state"].get(0, {}))

    assert keys("SGD", {}) == []
    assert keys("SGD", {"momentum": 0.9}) == ["momentum_buffer"]
    assert keys("Adam", {}) == ["step", "exp_avg", "exp_avg_sq"]
    assert keys("AdamW", {"amsgrad": True}) == ["step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"]
    assert keys("Adagrad", {}, steps=0) == ["step", "sum"]  # created by the constructor, as torch
    assert keys("RMSprop", {}) == ["step", "square_avg"]
    assert keys("RMSprop", {"momentum": 0.5, "centered": True}) == ["step", "square_avg", "momentum_buffer",
                                                                    "grad_avg"]
    assert keys("Adam", {}, steps=0) == []


def _bad_state_dicts(fw: ModuleType) -> list:
    """(id, state dict) pairs that load_state_dict of an Adam over SHAPES must refuse."""
    run = Run(fw, "Adam", {"amsgrad": True})
    run.step(gradient_sequence(steps=1)[0])

    def sd() -> dict:
        d = run.opt.state_dict()
        return {"state": {i: {k: (v if k == "step" else v.tolist()) for k, v in s.items()}
                          for i, s in d["state"].items()},
                "param_groups": [dict(g) for g in d["param_groups"]]}

    def edit(f: Callable[[dict], Any]) -> dict:
        d = sd()
        f(d)
        return d

    return [
        ("not-a-dict", [1, 2]),
        ("no-state", {"param_groups": sd()["param_groups"]}),
        ("extra-key", edit(lambda d: d.update(extra=1))),
        ("groups-not-list", edit(lambda d: d.update(param_groups=5))),
        ("two-groups", edit(lambda d: d["param_groups"].append(dict(d["param_groups"][0])))),
        ("group-not-dict", edit(lambda d: d["param_groups"].__setitem__(0, 3))),
        ("no-params", edit(lambda d: d["param_groups"][0].pop("params"))),
        ("too-few-params", edit(lambda d: d["param_groups"][0].update(params=[0]))),
        ("param-id-str", edit(lambda d: d["param_groups"][0].update(params=[0, "1"]))),
        ("param-ids-repeat", edit(lambda d: d["param_groups"][0].update(params=[0, 0]))),
        ("no-lr", edit(lambda d: d["param_groups"][0].pop("lr"))),
        ("bad-lr", edit(lambda d: d["param_groups"][0].update(lr=-1.0))),
        ("bad-betas", edit(lambda d: d["param_groups"][0].update(betas=(0.9, 1.5)))),
        ("bad-amsgrad", edit(lambda d: d["param_groups"][0].update(amsgrad=1))),
        ("state-not-dict", edit(lambda d: d.update(state=[1]))),
        ("unknown-param", edit(lambda d: d["state"].update({7: {}}))),
        ("entry-not-dict", edit(lambda d: d["state"].update({0: 5}))),
        ("unknown-buffer", edit(lambda d: d["state"][0].update(momentum_buffer=[[0.0] * 4] * 3))),
        ("no-step", edit(lambda d: d["state"][0].pop("step"))),
        ("no-exp-avg", edit(lambda d: d["state"][1].pop("exp_avg"))),
        ("step-negative", edit(lambda d: d["state"][0].update(step=-1))),
        ("step-fraction", edit(lambda d: d["state"][0].update(step=2.5))),
        ("step-str", edit(lambda d: d["state"][0].update(step="3"))),
        ("step-bool", edit(lambda d: d["state"][0].update(step=True))),
        ("buffer-shape", edit(lambda d: d["state"][0].update(exp_avg=[[0.0] * 3] * 4))),
        ("buffer-1d", edit(lambda d: d["state"][1].update(exp_avg_sq=[[0.0] * 5]))),
        ("buffer-nan", edit(lambda d: d["state"][1].update(exp_avg=[math.nan] * 5))),
        ("buffer-str", edit(lambda d: d["state"][1].update(exp_avg=["x"] * 5))),
        ("buffer-ragged", edit(lambda d: d["state"][0].update(exp_avg=[[0.0] * 4, [0.0] * 3, [0.0] * 4]))),
        # a key that equals a parameter id but is not an int would alias it
        ("state-key-bool", edit(lambda d: d["state"].update({True: d["state"].pop(1)}))),
        ("state-key-float", edit(lambda d: d["state"].update({1.0: d["state"].pop(1)}))),
        ("state-key-str", edit(lambda d: d["state"].update({"1": d["state"].pop(1)}))),
        ("param-id-bool", edit(lambda d: d["param_groups"][0].update(params=[0, True]))),
        # sums of squares are never negative: sqrt of one would be NaN (or math's domain error)
        ("exp-avg-sq-negative", edit(lambda d: d["state"][1].update(exp_avg_sq=[0.0, 1.0, -5.0, 0.0, 0.0]))),
        ("max-exp-avg-sq-negative", edit(lambda d: d["state"][0].update(max_exp_avg_sq=[[-1e-300] * 4] * 3))),
    ]


BAD_SD_IDS = [c[0] for c in _bad_state_dicts(pyfw)]


def outcome(f: Callable[[], Any]) -> Any:
    try:
        f()
    except Exception as e:  # noqa: BLE001 - compared across backends
        return type(e), str(e)
    return None


@pytest.mark.parametrize("case", BAD_SD_IDS)
def test_bad_state_dicts_are_refused_and_change_nothing(case: str) -> None:
    rs = load_backend("rs")
    got = []
    for fw in (pyfw, rs):
        run = Run(fw, "Adam", {"amsgrad": True})
        for gs in gradient_sequence(steps=2):
            run.step(gs)
        before = state_hex(run.opt.state_dict())
        bad = dict(_bad_state_dicts(fw))[case]
        result = outcome(lambda: run.opt.load_state_dict(bad))
        assert result is not None and result[0] in (TypeError, ValueError), result
        assert state_hex(run.opt.state_dict()) == before
        got.append(result)
    assert got[0] == got[1]


@pytest.mark.parametrize("name, kw", [("Adam", {}), ("Adam", {"amsgrad": True}), ("AdamW", {}), ("Adagrad", {}),
                                      ("RMSprop", {}), ("RMSprop", {"centered": True}),
                                      ("RMSprop", {"momentum": 0.9})])
def test_eps_zero_with_a_zero_gradient_gives_the_same_nan(name: str, kw: dict) -> None:
    """0 / 0 in the update: both backends give NaN, equal under the tests' bit-identity
    (``hexes``), and pyfw makes the hardware's NaN, so the raw bits agree as well."""
    got = []
    for fw in (pyfw, load_backend("rs")):
        w = fw.tensor([[0.5, -0.25], [1.0, 0.0]])
        o = fw.OPTIMIZERS[name]([(w, fw.tensor([[0.0, 0.0], [0.0, 0.0]]))], eps=0.0, **kw)
        o.step()
        o.step()
        values = [v for row in w.tolist() for v in row]
        assert all(math.isnan(v) for v in values)
        got.append(values)
    assert hexes(got[0]) == hexes(got[1])
    raw = [[struct.pack("<d", v) for v in vs] for vs in got]
    assert raw[0] == raw[1], "the same NaN bits on this machine"


NON_NEGATIVE = {"Adam": ("exp_avg_sq", "max_exp_avg_sq"), "AdamW": ("exp_avg_sq", "max_exp_avg_sq"),
                "Adagrad": ("sum",), "RMSprop": ("square_avg",), "SGD": ()}


@pytest.mark.parametrize("name, buffer", [(n, b) for n, bs in NON_NEGATIVE.items() for b in bs])
def test_negative_sums_of_squares_are_refused_at_load(name: str, buffer: str) -> None:
    """A loaded state with a negative element in a buffer of squares is refused, naming the
    optimizer and the key, with the same message in both backends; nothing changes."""
    assert set(NON_NEGATIVE) == set(pyfw.OPTIMIZERS)
    kw = {"amsgrad": True} if "max" in buffer else {}
    got = []
    for fw in (pyfw, load_backend("rs")):
        run = Run(fw, name, kw)
        for gs in gradient_sequence(steps=2):
            run.step(gs)
        sd = run.opt.state_dict()
        before = state_hex(sd)
        rows = sd["state"][0][buffer].tolist()
        rows[1][2] = -0.5
        sd["state"][0][buffer] = rows
        with pytest.raises(ValueError) as e:
            run.opt.load_state_dict(sd)
        assert f"{name}.load_state_dict: state[0]['{buffer}'] must be non-negative, got -0.5" in str(e.value)
        assert state_hex(run.opt.state_dict()) == before
        rows[1][2] = -0.0  # a negative zero is not negative
        run.opt.load_state_dict(sd)
        got.append(str(e.value))
    assert got[0] == got[1]


def test_loaded_extra_group_keys_are_kept(fw: ModuleType) -> None:
    """Schedulers add keys such as "initial_lr" to the group; they survive a round trip."""
    run = Run(fw, "SGD", {"lr": 0.1})
    run.opt.param_groups[0]["initial_lr"] = 0.1
    other = _fresh(fw, "SGD", start_values())
    other.opt.load_state_dict(run.opt.state_dict())
    group = other.opt.param_groups[0]
    assert group["initial_lr"] == 0.1 and group["lr"] == 0.1
    assert group["params"][0] is other.params[0]


# ---- hyperparameters: bad values, param_groups ----------------------------------

def bad_arguments(name: str) -> list:
    """(kwargs, exception) for every hyperparameter of member ``name``, from its kind."""
    out = []
    for p in signature(name):
        n = p.name
        if isinstance(p.default, bool):
            out += [({n: 1}, TypeError), ({n: "x"}, TypeError), ({n: None}, TypeError)]
        elif isinstance(p.default, tuple):
            out += [({n: 0.9}, TypeError), ({n: (0.9,)}, TypeError), ({n: "ab"}, TypeError),
                    ({n: (0.9, "x")}, TypeError), ({n: (1.0, 0.9)}, ValueError), ({n: (0.9, 1.0)}, ValueError),
                    ({n: (-0.1, 0.9)}, ValueError), ({n: (math.nan, 0.9)}, ValueError)]
        else:
            out += [({n: "0.1"}, TypeError), ({n: True}, TypeError), ({n: None}, TypeError),
                    ({n: [0.1]}, TypeError), ({n: math.nan}, ValueError), ({n: math.inf}, ValueError),
                    ({n: 10 ** 400}, ValueError)]
            if n != "dampening":  # the one real hyperparameter torch leaves unchecked
                out += [({n: -1.0}, ValueError), ({n: -1e-300}, ValueError), ({n: -1}, ValueError)]
    if name == "SGD":
        out += [({"nesterov": True}, ValueError),
                ({"nesterov": True, "momentum": 0.9, "dampening": 0.1}, ValueError)]
    return out


@pytest.mark.parametrize("name", NAMES)
def test_bad_hyperparameters_get_the_same_error_in_both_backends(name: str) -> None:
    rs = load_backend("rs")
    for kw, exc in bad_arguments(name):
        got = [outcome(lambda: fw.OPTIMIZERS[name](Run(fw, "SGD", {}).params, **kw)) for fw in (pyfw, rs)]
        assert got[0] is not None and got[0][0] is exc, (kw, got[0])
        assert got[1] == got[0], kw


@pytest.mark.parametrize("name", NAMES)
def test_bad_values_set_in_param_groups_stop_the_step(name: str) -> None:
    rs = load_backend("rs")
    for kw, exc in bad_arguments(name):
        got = []
        for fw in (pyfw, rs):
            run = Run(fw, name, {})
            run.step(gradient_sequence(steps=1)[0])
            before = run.hexes(), state_hex(run.opt.state_dict())
            run.opt.param_groups[0].update(kw)
            got.append(outcome(lambda: run.step(gradient_sequence(steps=2)[1])))
            assert run.hexes() == before[0]
            assert state_hex(run.opt.state_dict())["state"] == before[1]["state"]
        assert got[0] is not None and got[0][0] is exc, (kw, got[0])
        assert got[1] == got[0], kw
    missing = [outcome(lambda: (lambda r: (r.opt.param_groups[0].pop("lr"), r.opt.step()))(Run(fw, name, {})))
               for fw in (pyfw, rs)]
    assert missing[0][0] is KeyError and missing[0] == missing[1]


@pytest.mark.parametrize("name, kw", CASES, ids=IDS)
def test_param_groups_changes_are_honoured(fw: ModuleType, name: str, kw: dict) -> None:
    """A scheduler sets "lr" (OneCycleLR also "momentum" or "betas") between steps."""
    run = Run(fw, name, kw)
    hp = hyper(name, kw)
    want = start_values()
    states: list = [{} for _ in SHAPES]
    for t, grads in enumerate(gradient_sequence(), start=1):
        if t == 11:
            changes = {"lr": 0.05}
            if "momentum" in hp and hp["momentum"] > 0:
                changes["momentum"] = 0.85
            if "betas" in hp:
                changes["betas"] = (0.85, 0.99)
            run.opt.param_groups[0].update(changes)
            hp.update(changes)
        if t == 21:
            run.opt.lr = 0.02  # the lr attribute writes param_groups[0]["lr"]
            hp["lr"] = 0.02
            assert run.opt.param_groups[0]["lr"] == 0.02 == run.opt.lr
        run.step(grads)
        want = [REFERENCES[name](hp, p, g, st, t) for p, g, st in zip(want, grads, states)]
        assert_close(run.values(), want, f"{name} step {t}")


@pytest.mark.parametrize("name", NAMES)
def test_param_groups_and_defaults(fw: ModuleType, name: str) -> None:
    kw = VARIANTS[name][-1]
    run = Run(fw, name, kw)
    opt = run.opt
    assert isinstance(opt.param_groups, list) and len(opt.param_groups) == 1
    group = opt.param_groups[0]
    assert list(group) == ["params"] + [p.name for p in signature(name)]
    assert all(a is b for a, b in zip(group["params"], run.params)) and len(group["params"]) == 2
    assert opt.defaults == hyper(name, kw)
    assert opt.param_groups is opt.param_groups and group is opt.param_groups[0]
    assert opt.lr == hyper(name, kw)["lr"]
    with pytest.raises(ValueError):
        opt.lr = -0.5
    with pytest.raises(TypeError):
        opt.lr = "0.5"
    assert opt.lr == hyper(name, kw)["lr"]


@pytest.mark.parametrize("name", NAMES)
def test_repr_is_the_same_in_both_backends(name: str) -> None:
    rs = load_backend("rs")
    reprs = [repr(Run(fw, name, VARIANTS[name][-1]).opt) for fw in (pyfw, rs)]
    assert reprs[0] == reprs[1]
    assert reprs[0].startswith(f"{name}(lr=")


@pytest.mark.parametrize("name", NAMES)
def test_schedulers_drive_both_backends_alike(name: str) -> None:
    """OneCycleLR sets "lr" and "momentum" or betas[0] in param_groups[0] every step."""
    rs = load_backend("rs")
    out = []
    for fw in (pyfw, rs):
        run = Run(fw, name, VARIANTS[name][-1])
        keys = run.opt.param_groups[0]
        sched = fw.optim.lr_scheduler.OneCycleLR(run.opt, max_lr=0.05, total_steps=STEPS,
                                                 cycle_momentum="momentum" in keys or "betas" in keys)
        for grads in gradient_sequence(seed=4):
            run.step(grads)
            sched.step()
        out.append((run.hexes(), state_hex(run.opt.state_dict())))
    assert out[0] == out[1]


# ---- parameters ---------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_model_parameters_are_accepted(fw: ModuleType, name: str) -> None:
    """``model.parameters()`` (gradients read from .grad) gives the bits of ``model.param()``."""
    kw = VARIANTS[name][-1]
    out = []
    for form in ("param", "parameters"):
        g = fw.Generator(3)
        model = fw.Sequential(fw.Linear(3, 4, generator=g), fw.Tanh(), fw.Linear(4, 2, generator=g))
        opt = fw.OPTIMIZERS[name](model.param() if form == "param" else model.parameters(), **kw)
        rng = random.Random(5)
        for _ in range(4):
            opt.zero_grad()
            model([[rng.uniform(-1, 1) for _ in range(3)] for _ in range(6)])
            model.backward([[rng.uniform(-1, 1) for _ in range(2)] for _ in range(6)])
            opt.step()
        out.append([th(p) for p in model.parameters()])
        opt.zero_grad()
        assert all(v == 0.0 for _, gr in model.param() for v in flat(gr))
    assert out[0] == out[1]


def test_parameters_without_grad_are_skipped(fw: ModuleType) -> None:
    p, q = fw.tensor([1.0, 2.0]), fw.tensor([3.0])
    q.grad = fw.tensor([0.5])
    opt = fw.Adam([p, q], lr=0.1)
    opt.step()
    assert p.tolist() == [1.0, 2.0] and q.tolist() != [3.0]
    assert list(opt.state_dict()["state"]) == [1]
    p.grad = fw.tensor([1.0, 1.0])  # a gradient set later is used, as torch reads p.grad
    opt.step()
    assert p.tolist() != [1.0, 2.0]


def test_a_gradient_that_is_the_parameter_itself(fw: ModuleType) -> None:
    for name in NAMES:
        p = fw.tensor([1.0, -2.0])
        q = fw.tensor([1.0, -2.0])
        fw.OPTIMIZERS[name]([(p, p)], lr=0.1).step()
        fw.OPTIMIZERS[name]([(q, fw.tensor([1.0, -2.0]))], lr=0.1).step()
        assert th(p) == th(q), name


def test_parameter_groups_are_refused(fw: ModuleType) -> None:
    lin = fw.Linear(2, 2)
    for name in NAMES:
        with pytest.raises(TypeError, match="parameter groups are not supported"):
            fw.OPTIMIZERS[name]([{"params": list(lin.parameters())}])
        with pytest.raises(TypeError):
            fw.OPTIMIZERS[name](lin.weight)
        with pytest.raises(ValueError):
            fw.OPTIMIZERS[name]([])


def test_fuzz_never_panics() -> None:
    """Junk into every entry point of the native family: only Exception subclasses come out."""
    rs = load_backend("rs")
    rng = random.Random(0)
    t = rs.tensor([[1.0, 2.0]])
    junk = [None, 1, -1, 0, 2 ** 80, 1.5, math.nan, "s", b"b", [], [[]], [1.0], (0.9, 0.99), (1, 2, 3),
            {"a": 1}, {}, object(), t, [t], [(t, t)], [(t, rs.tensor([1.0]))], pyfw.tensor([1.0]), True,
            {"state": {}, "param_groups": []}, {"state": {0: {}}, "param_groups": [{"params": [0]}]}]
    for _ in range(2000):
        name = rng.choice(NAMES)
        args = [rng.choice(junk) for _ in range(rng.randint(0, 3))]
        try:
            rng.choice([
                lambda: rs.OPTIMIZERS[name](*args),
                lambda: rs.OPTIMIZERS[name]([(t, rs.tensor([[0.5, 0.5]]))]).load_state_dict(*args),
                lambda: setattr(rs.OPTIMIZERS[name]([t]), "lr", *args[:1]),
                lambda: (lambda o: (o.param_groups[0].update({k: args[0] for k in o.defaults}), o.step()))(
                    rs.OPTIMIZERS[name]([(t, t)])) if args else None,
            ])()
        except Exception:  # noqa: BLE001 - anything but a crash or a BaseException
            pass


# ---- the training loop ----------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_training_with_fit_is_bit_identical(name: str) -> None:
    rs = load_backend("rs")
    out = []
    for fw in (pyfw, rs):
        g = fw.Generator(0)
        x, y = fw.data.disk(60, generator=g)
        model = fw.Sequential(fw.Linear(2, 8, generator=g), fw.Tanh(), fw.Linear(8, 2, generator=g))
        opt = fw.OPTIMIZERS[name](model.parameters(), **VARIANTS[name][-1])
        losses = fw.fit(model, fw.MSELoss(), opt, x, fw.data.one_hot(y, 2), epochs=3, batch_size=10,
                        generator=g)
        out.append((hexes(list(losses)), [th(p) for p in model.parameters()]))
    assert out[0] == out[1]


# ---- torch itself (optional) ---------------------------------------------------------

@pytest.mark.parametrize("name, kw", CASES, ids=IDS)
def test_against_torch(name: str, kw: dict) -> None:
    torch = pytest.importorskip("torch")
    params = [torch.tensor(shaped(v, s), dtype=torch.float64) for v, s in zip(start_values(), SHAPES)]
    opt = getattr(torch.optim, name)(params, **kw, foreach=False)
    run = Run(pyfw, name, kw)
    for t, grads in enumerate(gradient_sequence(), start=1):
        for p, gv, s in zip(params, grads, SHAPES):
            p.grad = torch.tensor(shaped(gv, s), dtype=torch.float64)
        opt.step()
        run.step(grads)
        assert_close(run.values(), [flat(p.detach()) for p in params], f"{name} step {t} vs torch")
