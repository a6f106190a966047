"""The seed task end to end: its options as data (``task.Config``), the network built
from the activation table, the documented draw order (with and without dropout),
determinism and cross-backend bit-identity, and (slow) the seed report's result, a
test error of at most 3% after 150 epochs with the defaults."""

from __future__ import annotations

import dataclasses
import math
from types import ModuleType

import pytest

import pyfw
from conftest import load_backend
from fwtest import state_hex
from pyfw import cli, task
from pyfw.activations import ACTIVATIONS
from pyfw.training import fit

SEED_CONFIG = {"epochs": 150, "batch_size": 10, "lr": 0.1, "activation": "relu", "seed": 0,
               "n_train": 1000, "n_test": 1000, "dropout": 0.0, "hidden": 25,
               "optimizer": "sgd", "loss": "mse", "schedule": "none", "weight_decay": 0.0,
               "task": "disk", "noise": 0.0, "classes": 2, "features": "x1,x2", "layers": "", "l1": 0.0, "l2": 0.0,
               "arch": "upsample", "channels": "32,64", "image_size": 32}


def bits(res: dict) -> tuple:
    """Everything a run computes, as exact strings: epoch losses, weights, errors."""
    return [v.hex() for v in res["losses"]], state_hex(res["model"]), res["train_error"], res["test_error"]


def test_config_defaults_are_the_seed_configuration() -> None:
    assert dataclasses.asdict(task.Config()) == SEED_CONFIG
    assert [f.name for f in dataclasses.fields(task.Config)] == list(SEED_CONFIG)
    for f in dataclasses.fields(task.Config):
        assert f.metadata["help"] and f.metadata["must_be"], f.name
    with pytest.raises(dataclasses.FrozenInstanceError):
        task.Config().epochs = 3  # type: ignore[misc]


@pytest.mark.parametrize("options, error", [
    ({"epochs": 0}, ValueError), ({"epochs": 1.5}, TypeError), ({"epochs": True}, TypeError),
    ({"batch_size": -1}, ValueError), ({"lr": -0.1}, ValueError), ({"lr": math.nan}, ValueError),
    ({"lr": math.inf}, ValueError), ({"lr": "0.1"}, TypeError), ({"activation": "foo"}, ValueError),
    ({"activation": "ReLU"}, ValueError), ({"seed": 1.0}, TypeError), ({"n_train": 0}, ValueError),
    ({"n_test": 0}, ValueError), ({"dropout": 1.0}, ValueError), ({"dropout": -0.1}, ValueError),
    ({"dropout": math.nan}, ValueError), ({"hidden": 0}, ValueError), ({"bogus": 1}, TypeError),
], ids=repr)
def test_config_checks_every_field(options: dict, error: type) -> None:
    with pytest.raises(error, match=r"Config|bogus"):
        task.Config(**options)


def test_config_stores_ints_of_float_fields_as_floats() -> None:
    c = task.Config(lr=1, dropout=0)
    assert isinstance(c.lr, float) and c.lr == 1.0 and isinstance(c.dropout, float)


def test_activation_choices_are_the_table() -> None:
    assert task.ACTIVATION_CHOICES == {name.lower(): name for name in ACTIVATIONS}
    assert len(task.ACTIVATION_CHOICES) == len(ACTIVATIONS) and task.ACTIVATION_CHOICES["relu"] == "ReLU"
    field = {f.name: f for f in dataclasses.fields(task.Config)}["activation"]
    assert field.metadata["choices"] == tuple(task.ACTIVATION_CHOICES)


def test_seed_network_shape(fw: ModuleType) -> None:
    model = task.make_model(fw, fw.Generator(0))
    assert [p.shape for p, _ in model.param()] == [(25, 2), (25,), (25, 25), (25,), (25, 25), (25,), (2, 25), (2,)]
    assert len(model) == 7
    assert all(isinstance(model[i], fw.ReLU) for i in (1, 3, 5))
    tanh = task.make_model(fw, fw.Generator(0), "tanh", hidden=7)
    assert all(isinstance(tanh[i], fw.Tanh) for i in (1, 3, 5))
    assert [p.shape for p, _ in tanh.param()][::2] == [(7, 2), (7, 7), (7, 7), (2, 7)]
    with pytest.raises(ValueError, match="foo"):
        task.make_model(fw, fw.Generator(0), "foo")


@pytest.mark.parametrize("choice", list(task.ACTIVATION_CHOICES))
def test_make_model_builds_each_member(fw: ModuleType, choice: str) -> None:
    model = task.make_model(fw, fw.Generator(0), choice)
    cls = getattr(fw, task.ACTIVATION_CHOICES[choice])
    assert [type(m) for m in model][1::2] == [cls] * 3


def test_dropout_follows_each_hidden_activation(fw: ModuleType) -> None:
    model = task.make_model(fw, fw.Generator(0), "tanh", dropout=0.25)
    assert len(model) == 10
    assert [i for i, m in enumerate(model) if isinstance(m, fw.Dropout)] == [2, 5, 8]
    assert all(isinstance(model[i], fw.Tanh) for i in (1, 4, 7))
    assert all(model[i].p == 0.25 for i in (2, 5, 8))
    # Dropout draws nothing when built: the Linear layers get the same initial values
    plain = task.make_model(fw, fw.Generator(0), "tanh")
    assert list(state_hex(model).values()) == list(state_hex(plain).values())


def _manual_run(fw: ModuleType, seed: int, epochs: int, n_train: int, n_test: int, dropout: float) -> tuple:
    """The seed task written out by hand in the documented draw order."""
    g = fw.Generator(seed)
    x_train, y_train = fw.data.disk(n_train, generator=g)
    x_test, y_test = fw.data.disk(n_test, generator=g)
    scale = math.sqrt(12.0)
    x_train = fw.tensor([[(v - 0.5) * scale for v in r] for r in x_train.tolist()])
    x_test = fw.tensor([[(v - 0.5) * scale for v in r] for r in x_test.tolist()])
    layers: list = []
    for n_in in (2, 25, 25):
        layers += [fw.Linear(n_in, 25, generator=g), fw.ReLU()]
        if dropout:
            layers.append(fw.Dropout(dropout, generator=g))
    model = fw.Sequential(*layers, fw.Linear(25, 2, generator=g))
    opt = fw.SGD(model.param(), lr=0.1)
    losses = fit(model, fw.MSELoss(), opt, x_train, fw.data.one_hot(y_train, 2), epochs, 10, g)
    model.eval()
    return ([v.hex() for v in losses], state_hex(model),
            pyfw.error_rate(model(x_train), y_train), pyfw.error_rate(model(x_test), y_test))


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_train_follows_the_documented_draw_order(fw: ModuleType, dropout: float) -> None:
    """One Generator(seed): train set, test set, the four Linear layers, then per epoch one
    randperm and per training forward the Dropout masks in module order. The inputs are
    standardized elementwise as (v - 0.5) * sqrt(12.0), in Python."""
    seed, epochs, n_train, n_test = 5, 2, 60, 40
    res = task.train(fw, task.Config(epochs=epochs, n_train=n_train, n_test=n_test, seed=seed, dropout=dropout))
    assert bits(res) == _manual_run(fw, seed, epochs, n_train, n_test, dropout)
    assert res["final_loss"].hex() == res["losses"][-1].hex()
    assert res["model"].training is False


def test_train_reports_the_config(fw: ModuleType) -> None:
    config = task.Config(epochs=1, n_train=20, n_test=10, dropout=0.1, hidden=5, activation="tanh")
    res = task.train(fw, config)
    assert {k: res[k] for k in SEED_CONFIG} == dataclasses.asdict(config)
    assert res["backend"] == {"pyfw": "py", "pyfw_rs": "rs"}[fw.__name__]
    assert {"train_error", "test_error", "final_loss", "losses", "seconds", "model"} <= set(res)


def test_train_is_deterministic(fw: ModuleType) -> None:
    a = task.train(fw, task.Config(epochs=3, n_train=100, n_test=100, seed=7))
    b = task.train(fw, task.Config(epochs=3, n_train=100, n_test=100, seed=7))
    c = task.train(fw, task.Config(epochs=3, n_train=100, n_test=100, seed=8))
    assert bits(a) == bits(b)
    assert bits(a)[0] != bits(c)[0]


def test_cli_run_is_task_train() -> None:
    """``cli.run`` stays as a thin wrapper over ``task.train``."""
    res = cli.run("py", epochs=2, n_train=30, n_test=20, seed=1)
    assert bits(res) == bits(task.train(pyfw, task.Config(epochs=2, n_train=30, n_test=20, seed=1)))
    with pytest.raises(TypeError):
        cli.run("py", bogus=1)


def _both_backends(config: task.Config) -> tuple:
    """``task.train`` on ``pyfw`` and on ``pyfw_rs``; each result also holds its batch losses."""
    out = []
    for fw in (pyfw, load_backend("rs")):
        batch_losses: list = []
        res = task.train(fw, config, on_batch=lambda k, n, loss: batch_losses.append(loss.hex()))
        res["batch_losses"] = batch_losses
        out.append(res)
    return tuple(out)


@pytest.mark.parametrize("choice", list(task.ACTIVATION_CHOICES))
def test_every_activation_choice_trains_with_the_same_bits_on_both_backends(choice: str) -> None:
    """Some members diverge as hidden activations at lr 0.1 (LogSoftmax's outputs are
    about -log(25)); the batch losses are compared from the first, which is finite."""
    args = cli.parser().parse_args(["train", "--activation", choice, "--epochs", "1",
                                    "--n-train", "40", "--n-test", "20", "--seed", "2"])
    config = cli.config_from_args(args)
    assert config.activation == choice
    py, rs = _both_backends(config)
    assert py["batch_losses"] == rs["batch_losses"] and len(py["batch_losses"]) == 4
    assert math.isfinite(float.fromhex(py["batch_losses"][0]))
    assert bits(py) == bits(rs)
    assert [type(m).__name__ for m in rs["model"]][1::2] == [task.ACTIVATION_CHOICES[choice]] * 3


def test_dropout_is_bit_identical_across_backends() -> None:
    config = task.Config(epochs=2, n_train=60, n_test=30, dropout=0.2, seed=3)
    py, rs = _both_backends(config)
    assert py["batch_losses"] == rs["batch_losses"]
    assert bits(py) == bits(rs)
    assert all(math.isfinite(v) for v in py["losses"])
    # the Dropout layers did draw: the run differs from the same run without dropout
    assert bits(py)[0] != bits(task.train(pyfw, dataclasses.replace(config, dropout=0.0)))[0]


@pytest.mark.slow
def test_seed_task_reaches_three_percent() -> None:
    res = task.train(pyfw, task.Config())
    assert res["epochs"] == 150 and len(res["losses"]) == 150
    assert res["losses"][-1] < res["losses"][0]
    assert res["test_error"] <= 0.03, f"test error {res['test_error']:.3%} (train {res['train_error']:.3%})"
