"""Playground tasks through pyfw.task and `pyfw train --task`: per-task defaults, features,
layers, regression, L1/L2 on the weights, both backends alike, and stored configs from before
these fields."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import ModuleType

import pytest

from conftest import load_backend
from fwtest import state_hex
from pyfw import cli, io, task


def test_task_defaults_and_checks() -> None:
    c = task.Config.for_task("circle")
    assert (c.task, c.n_train, c.layers, c.activation, c.lr) == ("circle", 250, "4,2", "tanh", 0.03)
    assert task.Config.for_task("circle", lr=0.1).lr == 0.1
    assert task.hidden_sizes(c) == [4, 2] and task.hidden_sizes(task.Config()) == [25, 25, 25]
    assert task.hidden_sizes(task.Config(layers="0")) == []
    with pytest.raises(ValueError, match="regression task plane takes the loss"):
        task.Config(task="plane", loss="crossentropy")
    with pytest.raises(ValueError, match="features"):
        task.Config(task="circle", features="x1,x9")
    with pytest.raises(ValueError, match="layers"):
        task.Config(layers="4,,2")
    with pytest.raises(ValueError, match="disk task takes the features x1,x2 only"):
        task.Config(features="x1")


@pytest.mark.parametrize("options", [
    {"task": "circle", "features": "x1,x2,x1^2,x2^2", "l2": 0.01},
    {"task": "xor", "features": "x1*x2", "l1": 0.003, "layers": "0"},
    {"task": "spiral", "classes": 3, "loss": "crossentropy", "optimizer": "adam", "dropout": 0.1},
    {"task": "gauss_regression", "noise": 0.2, "l1": 0.001, "l2": 0.001},
])
def test_both_backends_same_bits(options: dict) -> None:
    config = task.Config.for_task(**{**options, "epochs": 3})
    a = task.train(load_backend("py"), config)
    b = task.train(load_backend("rs"), config)
    assert [v.hex() for v in a["losses"]] == [v.hex() for v in b["losses"]]
    assert state_hex(a["model"]) == state_hex(b["model"])


def test_regularization_acts_on_weights_only(fw: ModuleType) -> None:
    """With lr 0 nothing moves; with only L2 on a zero gradient each weight shrinks by lr*l2*w
    and each bias stays (SGD: w - lr * (0 + l2 * w))."""
    config = task.Config.for_task("gauss", l2=0.5, lr=0.1)
    run = task.build_run(fw, config)
    model, opt = run["model"], run["optimizer"]
    before = model.state_dict()
    opt.zero_grad()
    opt.step()
    after = model.state_dict()
    for key in before:
        old, new = before[key].tolist(), after[key].tolist()
        if key.endswith("bias"):
            assert old == new
        else:
            assert new == [[w - 0.1 * (0.0 + 0.5 * w) for w in row] for row in old]


def test_regression_reports_losses(fw: ModuleType) -> None:
    res = task.train(fw, task.Config.for_task("plane", epochs=2))
    assert res["train_error"] is None and res["test_error"] is None
    assert res["train_loss"] > 0.0 and res["test_loss"] > 0.0
    assert res["model"](fw.tensor([[1.0, 2.0]])).shape == (1, 1)
    with pytest.raises(ValueError, match="regression"):
        task.train(fw, task.Config.for_task("plane", epochs=1), track_errors=True)


def test_cli_task_regression_and_features(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["train", "--task", "plane", "--epochs", "2", "--quiet", "--backend", "py"]) == 0
    assert "train loss" in capsys.readouterr().out
    model = tmp_path / "m.safetensors"
    assert cli.main(["train", "--task", "circle", "--features", "x1,x2,x1^2,x2^2", "--epochs", "2", "--quiet",
                     "--save", str(model)]) == 0
    out = capsys.readouterr().out
    assert "test error" in out
    pre = io.load_preprocess(model)
    assert pre.spec == {"kind": "features", "names": ["x1", "x2", "x1^2", "x2^2"]}
    assert pre([[2.0, 3.0]]) == [[2.0, 3.0, 4.0, 9.0]]
    assert io.load_model(model)(load_backend("py").tensor(pre([[2.0, 3.0]]))).shape == (1, 2)


def test_a_stored_config_without_the_new_fields_resumes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A checkpoint written before task, noise, classes, features, layers, l1 and l2 existed holds a
    config without them: they mean their defaults, so `train --resume` continues the run."""
    ckpt = tmp_path / "run.ckpt"
    config = task.Config(epochs=1, n_train=20, n_test=20)
    new = ("task", "noise", "classes", "features", "layers", "l1", "l2")
    old = {k: v for k, v in dataclasses.asdict(config).items() if k not in new}
    task.train(load_backend("py"), config, fit_options={"checkpoint": str(ckpt), "checkpoint_extra": {"config": old}})
    assert io.checkpoint_info(ckpt)["extra"]["config"] == old
    argv = ["train", "--epochs", "2", "--n-train", "20", "--n-test", "20", "--quiet", "--checkpoint", str(ckpt),
            "--resume", "--backend", "py"]
    assert cli.main(argv) == 0, capsys.readouterr().err
    assert "resuming from" in capsys.readouterr().out
