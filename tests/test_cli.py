"""``python -m pyfw train`` as a subprocess from the repository root, with a clean
environment and no site-packages: the bare-checkout promise, the JSON report,
the saved state dict, and argument validation (one-line errors, exit status 2);
and the parser generated from ``task.Config``."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import pyfw
from pyfw import cli, io, task

REPO = Path(__file__).resolve().parent.parent
SEED_KEYS = ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias", "6.weight", "6.bias"]
FIELDS = [f.name for f in dataclasses.fields(task.Config)]
JSON_KEYS = {"train_error", "test_error", "final_loss", "losses", "seconds", "backend", *FIELDS}
CLI_ONLY = {"train": {"backend", "json", "save", "checkpoint", "resume", "track_errors", "quiet", "preset", "force"},
            "demo": {"quiet", "preset"}}
CLI_ONLY_WITH_DEFAULTS = {"train": {"backend", "preset"}, "demo": {"preset"}}


def shown_default(value: object) -> str:
    """How ``--help`` shows a Config field's default: an empty text as "empty"."""
    return "empty" if value == "" else str(value)


def run_cli(*args: str, timeout: float = 120, site: bool = False) -> subprocess.CompletedProcess:
    """``python -S -m pyfw ...`` from the repo root with only PATH in the environment: a bare
    checkout. With ``site``, without ``-S``: the environment's site-packages (and pyfw_rs) too."""
    return subprocess.run([sys.executable, *([] if site else ["-S"]), "-m", "pyfw", *args], cwd=str(REPO),
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                          capture_output=True, text=True, timeout=timeout)


def test_train_writes_json_and_state_dict(tmp_path: Path) -> None:
    out, saved = tmp_path / "metrics.json", tmp_path / "model.safetensors"
    p = run_cli("train", "--epochs", "2", "--n-train", "50", "--n-test", "50", "--backend", "py",
                "--json", str(out), "--save", str(saved))
    assert p.returncode == 0, p.stderr
    res = json.loads(out.read_text(encoding="utf-8"))
    assert JSON_KEYS <= set(res)
    for key in ("train_error", "test_error"):
        assert isinstance(res[key], float) and 0.0 <= res[key] <= 1.0
        assert round(res[key] * 50) == res[key] * 50  # a fraction of 50 points
    assert isinstance(res["final_loss"], float) and math.isfinite(res["final_loss"]) and res["final_loss"] > 0
    assert isinstance(res["seconds"], (int, float)) and res["seconds"] >= 0
    assert (res["epochs"], res["batch_size"], res["lr"], res["seed"], res["backend"]) == (2, 10, 0.1, 0, "py")
    # the same run in process gives the same numbers, bit for bit
    ref = task.train(pyfw, task.Config(epochs=2, n_train=50, n_test=50))
    assert res["final_loss"].hex() == ref["final_loss"].hex()
    assert (res["train_error"], res["test_error"]) == (ref["train_error"], ref["test_error"])
    # the saved model file rebuilds the trained network, with its weights bit for bit
    sd = io.load_safetensors(str(saved))
    assert sorted(sd) == sorted(SEED_KEYS)
    want = {k: v.tolist() for k, v in ref["model"].state_dict().items()}
    assert {k: v.tolist() for k, v in sd.items()} == want
    model = io.load_model(str(saved))
    assert {k: v.tolist() for k, v in model.state_dict().items()} == want
    assert io.load_preprocess(str(saved)) == io.Preprocess(task.PREPROCESS)
    assert sorted(os.listdir(tmp_path)) == ["metrics.json", "model.safetensors"]
    # the log: one line per epoch with the loss, then train and test error
    lines = p.stdout.splitlines()
    assert sum(1 for ln in lines if ln.lstrip().startswith("epoch") and "loss" in ln) == 2
    assert "train error" in p.stdout and "test error" in p.stdout


def test_options_are_honoured(tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    p = run_cli("train", "--epochs", "1", "--n-train", "30", "--n-test", "20", "--batch-size", "7",
                "--lr", "0.05", "--activation", "tanh", "--seed", "3", "--quiet", "--json", str(out))
    assert p.returncode == 0, p.stderr
    res = json.loads(out.read_text(encoding="utf-8"))
    assert (res["epochs"], res["batch_size"], res["lr"], res["seed"]) == (1, 7, 0.05, 3)
    assert res["activation"] == "tanh" and res["dropout"] == 0.0 and res["hidden"] == 25
    ref = task.train(pyfw, task.Config(epochs=1, batch_size=7, lr=0.05, activation="tanh", seed=3,
                                       n_train=30, n_test=20))
    assert res["final_loss"].hex() == ref["final_loss"].hex()
    assert not any(ln.lstrip().startswith("epoch") for ln in p.stdout.splitlines()), "--quiet logs no epochs"
    assert "test error" in p.stdout


def test_no_progress_escape_codes_when_not_a_terminal(tmp_path: Path) -> None:
    p = run_cli("train", "--epochs", "1", "--n-train", "20", "--n-test", "20")
    assert p.returncode == 0, p.stderr
    assert "\r" not in p.stdout and "\x1b" not in p.stdout and "\x1b" not in p.stderr


@pytest.mark.parametrize("args", [
    ["--epochs", "0"], ["--epochs", "-1"], ["--epochs", "x"], ["--epochs", "1.5"],
    ["--lr", "-1"], ["--lr", "nan"], ["--lr", "inf"], ["--lr", "abc"],
    ["--batch-size", "0"], ["--n-train", "0"], ["--n-test", "-5"], ["--hidden", "0"],
    ["--dropout", "1"], ["--dropout", "-0.1"], ["--dropout", "nan"], ["--dropout", "x"],
    ["--activation", "foo"], ["--activation", "ReLU"], ["--backend", "cuda"], ["--seed", "x"], ["--bogus"],
], ids=lambda a: "".join(a).lstrip("-"))
def test_invalid_arguments_get_one_line_and_status_2(tmp_path: Path, args: list) -> None:
    out = tmp_path / "m.json"
    p = run_cli("train", "--n-train", "10", "--n-test", "10", *args, "--json", str(out))
    assert p.returncode == 2
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    assert "error" in lines[0] and args[-1] in lines[0] and "Traceback" not in p.stderr
    assert p.stdout == ""
    assert not out.exists()


def test_no_command_gets_one_line_and_status_2() -> None:
    p = run_cli()
    assert p.returncode == 2
    assert len(p.stderr.splitlines()) == 1 and "--help" in p.stderr and "train" in p.stderr


@pytest.mark.parametrize("command", ["train", "demo"])
def test_parser_has_one_option_per_config_field(command: str, capsys: pytest.CaptureFixture) -> None:
    """Exactly one option per Config field, with the field's default, plus the CLI-only options."""
    args = cli.parser().parse_args([command])
    assert set(vars(args)) == {"command", *CLI_ONLY[command]}, "options left out stay out"
    assert cli.config_from_args(args) == task.Config()
    given = cli.parser().parse_args([command] + [x for f in dataclasses.fields(task.Config)
                                                 for x in ("--" + f.name.replace("_", "-"), str(f.default))])
    assert set(vars(given)) == {"command", *FIELDS, *CLI_ONLY[command]}
    assert cli.config_from_args(given) == task.Config()
    with pytest.raises(SystemExit) as e:
        cli.parser().parse_args([command, "--help"])
    assert e.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # undo the help formatter's line wrapping
    for f in dataclasses.fields(task.Config):
        option = "--" + f.name.replace("_", "-")
        assert len(re.findall(rf"(?<![\w-]){option}(?![\w-])", text)) == 2, option  # usage, then the list
        assert f"{' '.join(f.metadata['help'].split())} (default: {shown_default(f.default)})" in text, option
    for name in CLI_ONLY[command]:
        assert f" --{name.replace('_', '-')}" in text


@pytest.mark.parametrize("command", ["train", "demo", "predict", "plot", "sweep", "playground"])
def test_help_shows_only_defaults_that_mean_something(command: str, capsys: pytest.CaptureFixture) -> None:
    """No "(default: None)" or "(default: False)", none after a required or positional argument;
    the options whose default is a value keep it."""
    with pytest.raises(SystemExit):
        cli.parser().parse_args([command, "--help"])
    text = capsys.readouterr().out
    flat = " ".join(text.split())
    for noise in ("(default: None)", "(default: False)", "(default: [])", "(default: )"):
        assert noise not in flat, noise
    if command == "plot":
        assert "the SVG file to write (ending in .svg) --force" in flat  # -o is required: no default
        assert "a run written by 'train --json' options:" in flat  # the positional RUN.json: no default
        assert "--n-train N with --model: training points (default: 1000)" in flat
    if command == "sweep":
        assert "--seeds LIST the seeds: 0-9, 0,3,7 or 0-4,10 (default: 0-9)" in flat
        assert re.search(r"--seed(?!s)", text) is None, "a sweep's seeds are --seeds; --seed is not listed"
    if command in ("train", "predict", "plot", "sweep", "playground"):
        assert "(default: auto)" in flat


def test_options_set_the_config_fields() -> None:
    last = list(task.ACTIVATION_CHOICES)[-1]
    args = cli.parser().parse_args(["train", "--epochs", "3", "--batch-size", "4", "--lr", "0.5",
                                    "--activation", last, "--seed", "-2", "--n-train", "7",
                                    "--n-test", "8", "--dropout", "0.25", "--hidden", "6"])
    assert cli.config_from_args(args) == task.Config(3, 4, 0.5, last, -2, 7, 8, 0.25, 6)


def test_help_shows_every_default_from_a_bare_checkout() -> None:
    p = run_cli("train", "--help")
    assert p.returncode == 0, p.stderr
    text = " ".join(p.stdout.split())
    for f in dataclasses.fields(task.Config):
        assert f"(default: {shown_default(f.default)})" in text, f.name
    # Every Config field, and the CLI-only options whose default is a value: not the flags
    # (False) nor the outputs that are not written unless named (None).
    assert text.count("(default: ") == len(FIELDS) + len(CLI_ONLY_WITH_DEFAULTS["train"])
    assert "{" + ",".join(task.ACTIVATION_CHOICES) + "}" in text.replace(" ", "")


def test_dropout_run_writes_its_config(tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    assert cli.main(["train", "--epochs", "2", "--n-train", "30", "--n-test", "20", "--dropout", "0.2",
                     "--activation", "tanh", "--quiet", "--json", str(out)]) == 0
    res = json.loads(out.read_text(encoding="utf-8"))
    assert (res["dropout"], res["activation"]) == (0.2, "tanh")
    ref = task.train(pyfw, task.Config(epochs=2, n_train=30, n_test=20, dropout=0.2, activation="tanh"))
    assert [v.hex() for v in res["losses"]] == [v.hex() for v in ref["losses"]]


def test_native_backend_option(tmp_path: Path) -> None:
    """With pyfw_rs importable the run uses it; without, a clear error and a non-zero exit."""
    probe = subprocess.run([sys.executable, "-S", "-c", "import pyfw_rs"], cwd=str(REPO),
                           env={"PATH": os.environ.get("PATH", "")}, capture_output=True)
    out = tmp_path / "m.json"
    p = run_cli("train", "--backend", "rs", "--epochs", "1", "--n-train", "20", "--n-test", "20", "--json", str(out))
    if probe.returncode == 0:
        assert p.returncode == 0, p.stderr
        assert json.loads(out.read_text(encoding="utf-8"))["backend"] == "rs"
    else:
        assert p.returncode != 0
        assert "pyfw_rs" in p.stderr and "Traceback" not in p.stderr
        assert not out.exists()


def test_main_in_process(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "m.json"
    assert cli.main(["train", "--epochs", "1", "--n-train", "20", "--n-test", "20", "--quiet",
                     "--json", str(out)]) == 0
    assert JSON_KEYS <= set(json.loads(out.read_text(encoding="utf-8")))
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--epochs", "0"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines() == ["pyfw train: error: argument --epochs: must be a positive integer, "
                                "got '0' (see pyfw train --help)"]


def test_run_returns_metrics_and_model() -> None:
    """``cli.run``, kept for compatibility, returns what ``task.train`` returns."""
    res = cli.run("py", epochs=1, n_train=20, n_test=20)
    assert {"train_error", "test_error", "final_loss", "losses", "seconds", "model"} <= set(res)
    assert isinstance(res["model"], pyfw.Sequential) and len(res["losses"]) == 1
    assert res["model"].training is False
