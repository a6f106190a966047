"""The CLI as a user meets it: model files, predict, plot, output paths checked before
training, a diverging run, Ctrl-C, and JSON on standard output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from test_cli import run_cli

import pyfw
from pyfw import io, task

SMALL = ["--epochs", "3", "--n-train", "200", "--n-test", "200", "--quiet"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """A small run's model file and JSON."""
    d = tmp_path_factory.mktemp("run")
    model, run = d / "m.safetensors", d / "run.json"
    p = run_cli("train", *SMALL, "--save", str(model), "--json", str(run))
    assert p.returncode == 0, p.stderr
    return model, run


def test_predict_reproduces_the_test_error_of_the_run(trained: tuple, tmp_path: Path) -> None:
    """Fresh disk points, raw, through predict: the same error as training printed."""
    model, run = trained
    g = pyfw.Generator(0)
    pyfw.data.disk(200, generator=g)
    points, labels = pyfw.data.disk(200, generator=g)  # the run's test set, raw
    csv = tmp_path / "points.csv"
    csv.write_text("x,y\n" + "".join(f"{x!r},{y!r}\n" for x, y in points.tolist()), encoding="utf-8")
    out = tmp_path / "pred.csv"
    p = run_cli("predict", str(model), "--input", str(csv), "--output", str(out))
    assert p.returncode == 0, p.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "label,score_0,score_1" and len(lines) == 201
    predicted = [int(ln.split(",")[0]) for ln in lines[1:]]
    error = sum(a != b for a, b in zip(predicted, labels)) / 200
    assert error == json.loads(run.read_text(encoding="utf-8"))["test_error"]
    for text in ("0.5,0.5\n", "0.5 0.5\n", "x y\n\n 0.5 ,  0.5 \n"):
        p = subprocess.run([sys.executable, "-m", "pyfw", "predict", str(model), "--input", "-"],
                           input=text, capture_output=True, text=True, timeout=60,
                           cwd=str(Path(pyfw.__file__).parent.parent))
        assert p.returncode == 0 and p.stdout.splitlines()[1].startswith("1,"), (text, p.stderr)
        assert len(p.stdout.splitlines()) == 2


@pytest.mark.parametrize("content, what", [
    ("1,2\n3\n", "line 2: 1 values"), ("a,b\nx,y\n", "line 2: not a row of numbers"),
    ("", "no rows"), ("1,2,3\n", "cannot apply the model"), ("1,nan\n", "NaN"),
])
def test_predict_bad_input_is_one_line(trained: tuple, tmp_path: Path, content: str, what: str) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text(content, encoding="utf-8")
    p = run_cli("predict", str(trained[0]), "--input", str(csv), "--backend", "py")
    assert p.returncode == 1 and len(p.stderr.splitlines()) == 1 and what in p.stderr, p.stderr
    assert "Traceback" not in p.stderr



def test_predict_names_standard_input_when_the_model_does_not_fit_it(trained: tuple) -> None:
    p = subprocess.run([sys.executable, "-m", "pyfw", "predict", str(trained[0]), "--input", "-", "--backend", "py"],
                       input="x,y,label\n0.5,0.5,1\n", capture_output=True, text=True, timeout=60,
                       cwd=str(Path(pyfw.__file__).parent.parent))
    assert p.returncode == 1 and len(p.stderr.splitlines()) == 1, p.stderr
    assert "cannot apply the model to standard input" in p.stderr and "2 columns" in p.stderr, p.stderr

def test_predict_with_a_file_that_is_not_a_model(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    p = run_cli("predict", str(bad), "--input", "-", "--backend", "py")
    assert p.returncode == 1 and len(p.stderr.splitlines()) == 1 and str(bad) in p.stderr
    p = run_cli("predict", str(tmp_path / "missing"), "--input", "-")
    assert p.returncode == 2 and "does not exist" in p.stderr


def test_plot_writes_well_formed_svg(trained: tuple, tmp_path: Path) -> None:
    model, run = trained
    for args, must in (([str(run)], "curve-loss"), (["--model", str(model), "--n-train", "200", "--n-test", "200"],
                                                    "true-circle")):
        out = tmp_path / f"{must}.svg"  # two files: an existing output needs --force
        p = run_cli("plot", *args, "-o", str(out))
        assert p.returncode == 0, p.stderr
        root = ET.fromstring(out.read_text(encoding="utf-8"))
        assert root.tag.endswith("svg")
        assert any(e.get("id") == must for e in root.iter()), must
    p = run_cli("plot", "-o", str(tmp_path / "x.svg"))
    assert p.returncode == 2 and len(p.stderr.splitlines()) == 1


@pytest.mark.parametrize("option", ["--json", "--save"])
def test_output_paths_are_checked_before_training(tmp_path: Path, option: str) -> None:
    for path, what in ((tmp_path / "no" / "such" / "f", "does not exist"), (tmp_path, "is a folder")):
        start = time.perf_counter()
        p = run_cli("train", "--epochs", "150", option, str(path))
        assert p.returncode == 2 and what in p.stderr and str(path) in p.stderr, p.stderr
        assert len(p.stderr.splitlines()) == 1 and p.stdout == ""
        assert time.perf_counter() - start < 20, "the check comes before training"
        assert ".part" not in p.stderr


def test_a_diverging_run_stops_with_one_line_and_status_1(tmp_path: Path) -> None:
    model = tmp_path / "m.safetensors"
    p = run_cli("train", "--lr", "100", "--save", str(model), "--backend", "py")
    assert p.returncode == 1 and "diverged" in p.stderr and len(p.stderr.splitlines()) == 1, p.stderr
    assert "epoch 1," in p.stderr, "it stops at once"
    assert not model.exists()


def test_json_to_standard_output(tmp_path: Path) -> None:
    p = run_cli("train", "--epochs", "2", "--n-train", "30", "--n-test", "30", "--json", "-")
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    assert len(res["losses"]) == 2 and "train error" in p.stderr


def test_ctrl_c_is_one_line_and_status_130(tmp_path: Path) -> None:
    repo = Path(pyfw.__file__).parent.parent
    p = subprocess.Popen([sys.executable, "-m", "pyfw", "train", "--quiet", "--backend", "py"], cwd=str(repo),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert err.strip() == "pyfw: interrupted"


def test_the_console_command_is_declared() -> None:
    text = (Path(pyfw.__file__).parent.parent / "pyproject.toml").read_text(encoding="utf-8")
    assert '[project.scripts]\npyfw = "pyfw.cli:main"' in text


def test_model_files_from_both_backends_predict_the_same(tmp_path: Path) -> None:
    rs = pytest.importorskip("pyfw_rs") if os.environ.get("PYFW_REQUIRE_RS") != "1" else __import__("pyfw_rs")
    outs = []
    for backend, fw in (("py", pyfw), ("rs", rs)):
        path = tmp_path / f"{backend}.safetensors"
        p = run_cli("train", *SMALL, "--backend", backend, "--save", str(path), site=True)
        assert p.returncode == 0, p.stderr
        assert path.read_bytes() == (tmp_path / "py.safetensors").read_bytes()
        model = io.load_model(str(path), fw=fw)
        outs.append([v.hex() for r in model(io.load_preprocess(str(path))(fw.tensor([[0.2, 0.7]]))).tolist()
                     for v in r])
    assert outs[0] == outs[1]
    assert task.PREPROCESS["scale"] == task.SCALE


@pytest.mark.parametrize("content, rows", [("0.5,O.5\n0.1,0.1\n", None), ("\ufeff0.5,0.5\n", 1),
                                           ("x;y\n0.5;0.5\n", 1), ("0.5 0.5\n0.2\t0.3\n", 2)])
def test_predict_never_drops_a_row(trained: tuple, tmp_path: Path, content: str, rows: object) -> None:
    csv = tmp_path / "in.csv"
    csv.write_text(content, encoding="utf-8")
    p = run_cli("predict", str(trained[0]), "--input", str(csv))
    if rows is None:
        assert p.returncode == 1 and "line 1" in p.stderr, p.stderr
    else:
        assert p.returncode == 0, p.stderr
        assert len(p.stdout.splitlines()) == 1 + rows


def test_writes_go_through_symlinks_and_clean_up_after_killed_writers(tmp_path: Path) -> None:
    target = tmp_path / "real.json"
    target.write_text("old", encoding="utf-8")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    stale = tmp_path / ".real.json.999999999.abcdef.part"
    stale.write_text("half", encoding="utf-8")
    io.write_atomic(str(link), "new")
    assert link.is_symlink() and target.read_text(encoding="utf-8") == "new"
    assert not stale.exists(), "a killed writer's temporary file is removed"
