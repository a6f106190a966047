"""The training side of the task from the family tables: every optimizer, loss and
schedule through the CLI's Config on both backends, the presets, and checkpoints
that resume bit for bit, across backends too, after a SIGKILL at any moment."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shlex
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import load_backend
from fwtest import state_hex

import pyfw
from pyfw import cli, io, task

REPO = Path(pyfw.__file__).resolve().parent.parent
SMALL = {"epochs": 2, "n_train": 60, "n_test": 40, "batch_size": 16}


def bits(res: dict) -> tuple:
    return [v.hex() for v in res["losses"]], state_hex(res["model"]), res["test_error"]


def test_every_loss_has_its_targets_and_head() -> None:
    assert set(task.LOSS_SETUP) == set(pyfw.LOSSES)
    assert list(task.LOSS_CHOICES.values()) == list(pyfw.LOSSES)
    assert list(task.OPTIMIZER_CHOICES.values()) == list(pyfw.OPTIMIZERS)
    assert [v for v in task.SCHEDULE_CHOICES.values() if v] == list(pyfw.optim.lr_scheduler.SCHEDULERS)


CHOICES = ([("loss", c) for c in task.LOSS_CHOICES] + [("optimizer", c) for c in task.OPTIMIZER_CHOICES]
           + [("schedule", c) for c in task.SCHEDULE_CHOICES])


@pytest.mark.parametrize("field, choice", CHOICES, ids=[f"{f}={c}" for f, c in CHOICES])
def test_every_choice_trains_bit_identically_in_both_backends(field: str, choice: str) -> None:
    rs = load_backend("rs")
    extra = {"optimizer": "adam", "lr": 0.01} if field == "loss" else {}
    config = task.Config(**SMALL, **extra, **{field: choice}, weight_decay=0.01)
    a, b = task.train(pyfw, config), task.train(rs, config)
    assert bits(a) == bits(b)
    assert all(v == v for v in a["losses"]), "finite losses"


def test_the_default_is_still_the_seed_recipe() -> None:
    config = task.Config()
    assert (config.optimizer, config.loss, config.schedule, config.weight_decay) == ("sgd", "mse", "none", 0.0)
    args = cli.parser().parse_args(["train"])
    assert cli.config_from_args(args) == config


def test_preset_best_and_explicit_options() -> None:
    best = task.Config(**task.PRESETS["best"][1])
    assert cli.config_from_args(cli.parser().parse_args(["train", "--preset", "best"])) == best
    mixed = cli.config_from_args(cli.parser().parse_args(["train", "--preset", "best", "--lr", "0.02"]))
    assert mixed == dataclasses.replace(best, lr=0.02)


@pytest.mark.slow
def test_preset_best_reaches_one_percent_over_seeds_0_to_9() -> None:
    rs = load_backend("rs")
    best = task.PRESETS["best"][1]
    errors = [task.train(rs, task.Config(seed=s, **best))["test_error"] for s in range(10)]
    assert statistics.mean(errors) <= 0.010, errors


# ---- checkpoints ------------------------------------------------------------------------

RECIPE = {**SMALL, "epochs": 6, "optimizer": "adam", "lr": 0.01, "loss": "crossentropy",
          "schedule": "cosineannealing", "dropout": 0.1, "activation": "tanh"}


@pytest.mark.parametrize("first, second", [("py", "py"), ("rs", "rs"), ("py", "rs"), ("rs", "py")])
def test_resume_is_bit_identical_across_backends(tmp_path: Path, first: str, second: str) -> None:
    fa, fb = load_backend(first), load_backend(second)
    config = task.Config(**RECIPE)
    full = task.train(fb, config)
    path = tmp_path / "ck.safetensors"
    task.train(fa, config, on_epoch=lambda e, loss: e < 4, fit_options={"checkpoint": str(path)})
    resumed = task.train(fb, config, fit_options={"checkpoint": str(path), "resume": True})
    assert bits(resumed) == bits(full)


def test_a_failed_load_changes_nothing(tmp_path: Path) -> None:
    fw = pyfw
    config = task.Config(**RECIPE)
    path = tmp_path / "ck.safetensors"
    task.train(fw, config, on_epoch=lambda e, loss: e < 2, fit_options={"checkpoint": str(path)})
    g = fw.Generator(0)
    model = task.make_model(fw, g, "relu")  # another network: the load must fail
    opt = fw.Adam(model.parameters())
    sched = fw.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=3)
    before = (state_hex(model), json.dumps(sched.state_dict()), g.get_state())
    with pytest.raises(ValueError, match=str(path)):
        io.load_checkpoint(path, model, opt, sched, g)
    assert (state_hex(model), json.dumps(sched.state_dict()), g.get_state()) == before
    raw = bytearray(path.read_bytes())
    raw[100] ^= 0xFF
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=str(bad)):
        io.load_checkpoint(bad, model, opt, sched, g)


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pyfw", *args], cwd=str(REPO), capture_output=True,
                          text=True, timeout=timeout)


def cli_args(path: Path, backend: str) -> list:
    args = ["train"]
    for k, v in RECIPE.items():
        args += ["--" + k.replace("_", "-"), str(v)]
    return args + ["--epochs", "30", "--checkpoint", str(path), "--resume", "--backend", backend, "--quiet"]


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_is_bit_identical(tmp_path: Path) -> None:
    """Kill `train --checkpoint` with SIGKILL at random moments, resume each time (switching
    backends), and compare the final model file with an uninterrupted run's, byte for byte."""
    ref = tmp_path / "ref.safetensors"
    p = run_cli(*cli_args(tmp_path / "ref-ck", "rs"), "--save", str(ref))
    assert p.returncode == 0, p.stderr
    ck, out = tmp_path / "ck.safetensors", tmp_path / "out.safetensors"
    rng = random.Random(1)
    kills = 0
    for k in range(6):
        backend = "py" if k % 2 == 0 else "rs"
        proc = subprocess.Popen([sys.executable, "-m", "pyfw", *cli_args(ck, backend), "--save", str(out),
                                 "--force"],
                                cwd=str(REPO), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.3, 1.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
        if ck.exists():
            meta = io.load_safetensors_metadata(ck)  # never a torn file
            assert meta["pyfw.format"] == "checkpoint"
    p = run_cli(*cli_args(ck, "rs"), "--save", str(out), "--force")  # a run that finished wrote it
    assert p.returncode == 0, p.stderr
    assert kills >= 1
    assert out.read_bytes() == ref.read_bytes()


def test_resume_refuses_another_runs_checkpoint(tmp_path: Path) -> None:
    ck = tmp_path / "ck.safetensors"
    p = run_cli("train", "--epochs", "1", "--n-train", "20", "--n-test", "20", "--quiet", "--checkpoint", str(ck))
    assert p.returncode == 0, p.stderr
    p = run_cli("train", "--epochs", "2", "--n-train", "20", "--n-test", "20", "--lr", "0.2", "--quiet",
                "--checkpoint", str(ck), "--resume")
    assert p.returncode == 2 and "another run" in p.stderr and "lr" in p.stderr and len(p.stderr.splitlines()) == 1
    p = run_cli("train", "--epochs", "1", "--resume")
    assert p.returncode == 2 and "--checkpoint" in p.stderr
    ck.write_bytes(b"garbage")
    p = run_cli("train", "--epochs", "1", "--quiet", "--checkpoint", str(ck), "--resume")
    assert p.returncode == 1 and str(ck) in p.stderr and len(p.stderr.splitlines()) == 1
    assert ck.read_bytes() == b"garbage"


def test_ctrl_c_leaves_the_last_checkpoint_intact_and_names_the_resume_command(tmp_path: Path) -> None:
    ck = tmp_path / "my ck.safetensors"
    args = ["train", "--quiet", "--backend", "py", "--checkpoint", str(ck), "--n-train", "200", "--epochs", "60"]
    proc = subprocess.Popen([sys.executable, "-m", "pyfw", *args], cwd=str(REPO), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not ck.exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert io.load_safetensors_metadata(ck)["pyfw.format"] == "checkpoint"
    info: Any = json.loads(io.load_safetensors_metadata(ck)["pyfw.checkpoint"])
    assert info["epoch"] >= 1
    command = "python -m pyfw " + " ".join(shlex.quote(a) for a in args) + " --resume"
    assert proc.returncode == 130 and err.strip() == (f"pyfw: interrupted; {ck} holds the run after epoch "
                                                      f"{info['epoch']} of 60; continue it with: {command}")
    # the command named does continue the run, to the bits of a run never stopped
    p = subprocess.run([sys.executable, *shlex.split(command)[1:], "--json", str(tmp_path / "run.json")],
                       cwd=str(REPO), capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and f"after epoch {info['epoch']} of 60" in p.stdout, p.stderr
    full = task.train(pyfw, task.Config(n_train=200, epochs=60))
    assert [v.hex() for v in json.loads((tmp_path / "run.json").read_text())["losses"]] == \
        [v.hex() for v in full["losses"]]


def test_every_combination_of_loss_optimizer_and_schedule_runs() -> None:
    """All choices together, not one at a time: none raises (pyfw_rs, for speed), and the
    combinations with a one-cycle schedule give the same bits in pyfw."""
    rs = load_backend("rs")
    for loss in task.LOSS_CHOICES:
        for opt in task.OPTIMIZER_CHOICES:
            for sched in task.SCHEDULE_CHOICES:
                config = task.Config(**{**SMALL, "epochs": 1}, loss=loss, optimizer=opt, schedule=sched, lr=0.01)
                res = task.train(rs, config)
                if sched == "onecycle" and loss in ("crossentropy", "mse"):
                    assert bits(task.train(pyfw, config)) == bits(res), (loss, opt, sched)


def edit_checkpoint(path: Path, change: Any) -> None:
    """Rewrite a checkpoint's metadata JSON through ``change(doc)``, as a corrupt-but-valid file."""
    meta = io.load_safetensors_metadata(path)
    doc = json.loads(meta["pyfw.checkpoint"])
    change(doc)
    meta["pyfw.checkpoint"] = json.dumps(doc)
    io.save_safetensors(io.load_safetensors(path), path, meta)


@pytest.mark.parametrize("change", [
    lambda d: d.update(epoch=-1), lambda d: d.update(losses=[{}]), lambda d: d.update(losses=[float("nan")]),
    lambda d: d["generator"].update(state=-5), lambda d: d["optimizer"]["param_groups"][0].update(lr="x"),
])
def test_a_corrupt_checkpoint_is_one_line_and_changes_nothing(tmp_path: Path, change: Any) -> None:
    ck = tmp_path / "ck.safetensors"
    p = run_cli("train", "--epochs", "2", "--n-train", "30", "--n-test", "20", "--quiet", "--optimizer", "adam",
                "--checkpoint", str(ck))
    assert p.returncode == 0, p.stderr
    edit_checkpoint(ck, change)
    before = ck.read_bytes()
    p = run_cli("train", "--epochs", "2", "--n-train", "30", "--n-test", "20", "--quiet", "--optimizer", "adam",
                "--checkpoint", str(ck), "--resume")
    assert p.returncode in (1, 2) and len(p.stderr.splitlines()) == 1 and "Traceback" not in p.stderr, p.stderr
    assert ck.read_bytes() == before


def test_an_existing_checkpoint_is_not_overwritten_without_resume(tmp_path: Path) -> None:
    ck = tmp_path / "ck.safetensors"
    ck.write_bytes(b"precious")
    p = run_cli("train", "--epochs", "1", "--checkpoint", str(ck))
    assert p.returncode == 2 and "--resume" in p.stderr and ck.read_bytes() == b"precious"


def test_track_errors_records_every_epoch_for_the_plot(tmp_path: Path) -> None:
    out, svg = tmp_path / "run.json", tmp_path / "c.svg"
    p = run_cli("train", "--epochs", "3", "--n-train", "40", "--n-test", "40", "--quiet", "--track-errors",
                "--json", str(out))
    assert p.returncode == 0, p.stderr
    run = json.loads(out.read_text(encoding="utf-8"))
    assert len(run["train_errors"]) == len(run["test_errors"]) == 3
    assert run["test_errors"][-1] == run["test_error"]
    plain = task.train(pyfw, task.Config(epochs=3, n_train=40, n_test=40))
    assert [v.hex() for v in run["losses"]] == [v.hex() for v in plain["losses"]], "measuring draws nothing"
    assert run_cli("plot", str(out), "-o", str(svg)).returncode == 0
    assert 'id="curve-test' in svg.read_text(encoding="utf-8") or "test error" in svg.read_text(encoding="utf-8")
