"""state_dict / load_state_dict: torch.nn.Sequential key names, copies, round trips,
and bad dicts that must raise and leave every parameter unchanged."""

from __future__ import annotations

import math
from types import ModuleType

import pytest
from fwtest import hexes, seed_model

SEED_KEYS = ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias", "6.weight", "6.bias"]
SEED_SHAPES = [(25, 2), (25,), (25, 25), (25,), (25, 25), (25,), (2, 25), (2,)]






def params_hex(model: object) -> list:
    """Every parameter and gradient, read through param() (not through state_dict)."""
    return [(hexes(p.tolist()), hexes(g.tolist())) for p, g in model.param()]


def as_lists(sd: dict) -> dict:
    return {k: v.tolist() for k, v in sd.items()}


def test_keys_and_shapes_like_torch(fw: ModuleType) -> None:
    sd = seed_model(fw).state_dict()
    assert list(sd) == SEED_KEYS
    assert [v.shape for v in sd.values()] == SEED_SHAPES
    assert all(isinstance(v, fw.Tensor) for v in sd.values())


def test_linear_alone_and_nested_keys(fw: ModuleType) -> None:
    assert list(fw.Linear(3, 2).state_dict()) == ["weight", "bias"]
    model = fw.Sequential(fw.Sequential(fw.Linear(2, 3), fw.Tanh()), fw.ReLU(), fw.Linear(3, 1))
    assert list(model.state_dict()) == ["0.0.weight", "0.0.bias", "2.weight", "2.bias"]
    assert fw.Sequential(fw.ReLU(), fw.Tanh()).state_dict() == {}


def test_values_match_params(fw: ModuleType) -> None:
    model = seed_model(fw)
    sd = model.state_dict()
    assert [hexes(v.tolist()) for v in sd.values()] == [p for p, _ in params_hex(model)]


def test_values_are_copies(fw: ModuleType) -> None:
    model = seed_model(fw)
    sd = model.state_dict()
    snapshot = {k: hexes(v.tolist()) for k, v in sd.items()}
    assert sd["0.weight"] is not model[0].weight
    model([[0.2, 0.7], [0.9, 0.1]])
    model.backward([[1.0, -1.0], [0.5, 0.5]])
    fw.SGD(model.param(), lr=0.5).step()
    assert {k: hexes(v.tolist()) for k, v in sd.items()} == snapshot
    assert hexes(model.state_dict()["0.bias"].tolist()) != snapshot["0.bias"]


@pytest.mark.parametrize("form", ["tensor", "list"])
def test_round_trip(fw: ModuleType, form: str) -> None:
    src, dst = seed_model(fw, 1), seed_model(fw, 2)
    sd = src.state_dict()
    if form == "list":
        sd = as_lists(sd)
    assert params_hex(src) != params_hex(dst)
    dst.load_state_dict(sd)
    assert [p for p, _ in params_hex(dst)] == [p for p, _ in params_hex(src)]
    x = [[0.1, 0.2], [0.8, 0.3]]
    assert hexes(dst(x).tolist()) == hexes(src(x).tolist())


def test_loaded_values_are_copies(fw: ModuleType) -> None:
    model = seed_model(fw, 1)
    sd = as_lists(seed_model(fw, 2).state_dict())
    model.load_state_dict(sd)
    want = params_hex(model)
    sd["0.weight"][0][0] = 123.0
    sd["0.bias"][0] = 456.0
    assert params_hex(model) == want


def test_gradients_are_not_part_of_it(fw: ModuleType) -> None:
    model = seed_model(fw, 1)
    model([[0.2, 0.3]])
    model.backward([[1.0, 1.0]])
    grads = [g for _, g in params_hex(model)]
    model.load_state_dict(seed_model(fw, 2).state_dict())
    assert [g for _, g in params_hex(model)] == grads


def test_ints_accepted(fw: ModuleType) -> None:
    lin = fw.Linear(2, 2)
    lin.load_state_dict({"weight": [[1, 2], [3, 4]], "bias": [0, -1]})
    assert lin.weight.tolist() == [[1.0, 2.0], [3.0, 4.0]] and lin.bias.tolist() == [0.0, -1.0]


def test_strict_false_partial(fw: ModuleType) -> None:
    model = seed_model(fw, 1)
    before = params_hex(model)
    new_bias = [float(i) for i in range(25)]
    model.load_state_dict({"2.bias": new_bias, "99.weight": [[1.0]], "junk": 3}, strict=False)
    after = params_hex(model)
    assert model[2].bias.tolist() == new_bias
    assert [p for k, (p, _) in zip(SEED_KEYS, after) if k != "2.bias"] == \
        [p for k, (p, _) in zip(SEED_KEYS, before) if k != "2.bias"]


def test_strict_false_still_checks_shapes(fw: ModuleType) -> None:
    model = seed_model(fw, 1)
    before = params_hex(model)
    with pytest.raises(ValueError):
        model.load_state_dict({"0.bias": [0.0] * 25, "6.bias": [0.0] * 3}, strict=False)
    assert params_hex(model) == before


# ---- bad dicts: an error, and the model untouched ----------------------------------------

def _bad_dicts() -> list:
    """(id, mutate(sd) -> None, exception) over a state dict of nested lists."""
    nan, inf = math.nan, math.inf

    def missing(sd: dict) -> None:
        del sd["6.bias"]

    def missing_first(sd: dict) -> None:
        del sd["0.weight"]

    def extra(sd: dict) -> None:
        sd["8.weight"] = [[0.0] * 2]

    def renamed(sd: dict) -> None:
        sd["6.Bias"] = sd.pop("6.bias")

    def transposed(sd: dict) -> None:
        sd["6.weight"] = [list(c) for c in zip(*sd["6.weight"])]

    def bias_2d(sd: dict) -> None:
        sd["6.bias"] = [sd["6.bias"]]

    def weight_1d(sd: dict) -> None:
        sd["6.weight"] = sd["6.weight"][0]

    def short_bias(sd: dict) -> None:
        sd["6.bias"] = sd["6.bias"][:1]

    def ragged(sd: dict) -> None:
        sd["6.weight"][1] = sd["6.weight"][1][:-1]

    def deep(sd: dict) -> None:
        sd["6.bias"] = [[v] for v in sd["6.bias"]]

    def three_d(sd: dict) -> None:
        sd["6.weight"] = [[[v] for v in r] for r in sd["6.weight"]]

    def empty(sd: dict) -> None:
        sd["6.bias"] = []

    def with_nan(sd: dict) -> None:
        sd["6.weight"][1][3] = nan

    def with_inf(sd: dict) -> None:
        sd["6.bias"][1] = inf

    def with_neg_inf(sd: dict) -> None:
        sd["4.weight"][24][24] = -inf

    def with_str(sd: dict) -> None:
        sd["6.bias"][0] = "a"

    def with_none(sd: dict) -> None:
        sd["6.weight"][0][0] = None

    def with_bool(sd: dict) -> None:
        sd["6.bias"][1] = True

    def not_a_list(sd: dict) -> None:
        sd["6.bias"] = "0.5"

    def none_value(sd: dict) -> None:
        sd["6.bias"] = None

    return [
        ("missing", missing, ValueError), ("missing-0w", missing_first, ValueError),
        ("extra", extra, ValueError), ("renamed", renamed, ValueError),
        ("transposed", transposed, ValueError), ("bias-2d", bias_2d, ValueError),
        ("weight-1d", weight_1d, ValueError), ("short-bias", short_bias, ValueError),
        ("ragged", ragged, ValueError), ("deep", deep, ValueError), ("3d", three_d, ValueError),
        ("empty", empty, ValueError), ("nan", with_nan, ValueError), ("inf", with_inf, ValueError),
        ("neg-inf", with_neg_inf, ValueError), ("str", with_str, TypeError),
        ("none", with_none, TypeError), ("bool", with_bool, TypeError),
        ("str-value", not_a_list, TypeError), ("none-value", none_value, TypeError),
    ]


@pytest.mark.parametrize("name, mutate, exc", _bad_dicts(), ids=[c[0] for c in _bad_dicts()])
def test_bad_dict_raises_and_changes_nothing(fw: ModuleType, name: str, mutate: object, exc: type) -> None:
    model = seed_model(fw, 1)
    model([[0.3, 0.4]])
    model.backward([[1.0, 0.5]])
    before = params_hex(model)
    # every entry differs from the model's, so any partial write would show
    sd = as_lists(seed_model(fw, 2).state_dict())
    mutate(sd)
    with pytest.raises(exc):
        model.load_state_dict(sd)
    assert params_hex(model) == before


def test_wrong_shape_message_names_key_and_shapes(fw: ModuleType) -> None:
    model = seed_model(fw)
    sd = as_lists(model.state_dict())
    sd["2.weight"] = [[0.0] * 24 for _ in range(25)]
    with pytest.raises(ValueError) as e:
        model.load_state_dict(sd)
    msg = str(e.value)
    assert "2.weight" in msg and "(25, 24)" in msg and "(25, 25)" in msg, msg


def test_missing_and_extra_keys_are_named(fw: ModuleType) -> None:
    model = seed_model(fw)
    sd = as_lists(model.state_dict())
    del sd["4.bias"]
    sd["5.weight"] = [[0.0]]
    with pytest.raises(ValueError) as e:
        model.load_state_dict(sd)
    assert "4.bias" in str(e.value) and "5.weight" in str(e.value)


@pytest.mark.parametrize("bad", [None, [("0.weight", [[0.0]])], "state"], ids=["none", "list", "str"])
def test_not_a_dict(fw: ModuleType, bad: object) -> None:
    model = seed_model(fw)
    before = params_hex(model)
    with pytest.raises(TypeError):
        model.load_state_dict(bad)
    assert params_hex(model) == before
