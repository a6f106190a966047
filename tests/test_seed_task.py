"""The seed task end to end: the documented draw order, determinism, and (slow) the
seed report's result, a test error of at most 3% after 150 epochs with the defaults."""

from __future__ import annotations

import inspect
import math
from types import ModuleType

import pytest

import pyfw
from pyfw import cli, task
from pyfw.training import fit
from fwtest import state_hex

BACKEND_NAME = {"pyfw": "py", "pyfw_rs": "rs"}




def test_defaults_are_the_seed_configuration() -> None:
    d = task.DEFAULTS
    assert d["epochs"] == 150 and d["n_train"] == 1000 and d["n_test"] == 1000
    params = inspect.signature(cli.run).parameters
    for key, value in d.items():
        assert params[key].default == value, key
    args = cli.parser().parse_args(["train"])
    for key, value in d.items():
        assert getattr(args, key) == value, key
    assert args.backend == "py"


def test_seed_network_shape(fw: ModuleType) -> None:
    model = task.make_model(fw, fw.Generator(0))
    assert [p.shape for p, _ in model.param()] == [(25, 2), (25,), (25, 25), (25,), (25, 25), (25,), (2, 25), (2,)]
    assert len(model) == 7
    assert all(isinstance(model[i], fw.ReLU) for i in (1, 3, 5))
    tanh = task.make_model(fw, fw.Generator(0), "tanh")
    assert all(isinstance(tanh[i], fw.Tanh) for i in (1, 3, 5))
    with pytest.raises(ValueError):
        task.make_model(fw, fw.Generator(0), "sigmoid")


def test_run_follows_the_documented_draw_order(fw: ModuleType) -> None:
    """One Generator(seed): train set, test set, the four Linear layers, one randperm per epoch.
    The inputs are standardized elementwise as (v - 0.5) * sqrt(12.0), in Python."""
    seed, epochs, n_train, n_test = 5, 2, 60, 40
    res = cli.run(BACKEND_NAME[fw.__name__], epochs=epochs, n_train=n_train, n_test=n_test, seed=seed)
    g = fw.Generator(seed)
    x_train, y_train = fw.data.disk(n_train, generator=g)
    x_test, y_test = fw.data.disk(n_test, generator=g)
    scale = math.sqrt(12.0)
    x_train = fw.tensor([[(v - 0.5) * scale for v in r] for r in x_train.tolist()])
    x_test = fw.tensor([[(v - 0.5) * scale for v in r] for r in x_test.tolist()])
    model = fw.Sequential(fw.Linear(2, 25, generator=g), fw.ReLU(), fw.Linear(25, 25, generator=g), fw.ReLU(),
                          fw.Linear(25, 25, generator=g), fw.ReLU(), fw.Linear(25, 2, generator=g))
    opt = fw.SGD(model.param(), lr=0.1)
    losses = fit(model, fw.MSELoss(), opt, x_train, fw.data.one_hot(y_train, 2), epochs, 10, g)
    assert [v.hex() for v in res["losses"]] == [v.hex() for v in losses]
    assert res["final_loss"].hex() == losses[-1].hex()
    assert state_hex(res["model"]) == state_hex(model)
    assert res["train_error"] == pyfw.error_rate(model(x_train), y_train)
    assert res["test_error"] == pyfw.error_rate(model(x_test), y_test)


def test_run_is_deterministic(fw: ModuleType) -> None:
    name = BACKEND_NAME[fw.__name__]
    a = cli.run(name, epochs=3, n_train=100, n_test=100, seed=7)
    b = cli.run(name, epochs=3, n_train=100, n_test=100, seed=7)
    c = cli.run(name, epochs=3, n_train=100, n_test=100, seed=8)
    assert [v.hex() for v in a["losses"]] == [v.hex() for v in b["losses"]]
    assert state_hex(a["model"]) == state_hex(b["model"])
    assert (a["train_error"], a["test_error"]) == (b["train_error"], b["test_error"])
    assert [v.hex() for v in a["losses"]] != [v.hex() for v in c["losses"]]


@pytest.mark.slow
def test_seed_task_reaches_three_percent() -> None:
    res = cli.run("py")
    assert res["epochs"] == 150 and len(res["losses"]) == 150
    assert res["losses"][-1] < res["losses"][0]
    assert res["test_error"] <= 0.03, f"test error {res['test_error']:.3%} (train {res['train_error']:.3%})"
