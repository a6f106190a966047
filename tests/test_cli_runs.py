"""The CLI in everyday use: which backend runs (``--backend auto``), the help as the
command was run, extending and resuming runs with their whole history, ``predict
--proba``, models whose outputs are not finite, and ``plot`` beyond the seed task
(K classes, the user's own points, extreme losses, the output extension)."""

from __future__ import annotations

import dataclasses
import io as stdio
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import load_backend
from test_cli import REPO, run_cli

import pyfw
from pyfw import cli, io, task

SMALL = ["--n-train", "60", "--n-test", "40", "--quiet"]
BACKEND_NAME = {module: name for name, module in task.BACKENDS.items()}


def hexes(values: list) -> list:
    return [None if v is None else v.hex() for v in values]


# ---- --backend auto -----------------------------------------------------------------------

def test_auto_is_the_default_everywhere() -> None:
    for argv in (["train"], ["predict", "m", "--input", "-"], ["plot", "--model", "m", "-o", "x.svg"]):
        assert cli.parser().parse_args(argv).backend == "auto", argv


def test_auto_picks_pyfw_rs_when_importable_and_of_the_same_version(capsys: pytest.CaptureFixture) -> None:
    rs = load_backend("rs")
    assert cli.rs_unusable() is None
    assert cli.load_backend("auto") is rs
    assert capsys.readouterr().err == ""
    out = subprocess.run([sys.executable, "-m", "pyfw", "train", "--epochs", "1", *SMALL], cwd=str(REPO),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    assert out.stdout.splitlines()[0] == "backend rs (pyfw_rs 0.1.0, Rust kernels)"


def test_auto_falls_back_to_pyfw_with_the_reason_and_how_to_build() -> None:
    """``python -S`` from the checkout cannot import pyfw_rs: pyfw runs, and one line says why."""
    p = run_cli("train", "--epochs", "1", *SMALL)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0] == "backend py (pyfw 0.1.0, pure Python)"
    (line,) = p.stderr.splitlines()
    assert line.startswith("pyfw: note: using the pure-Python backend pyfw: pyfw_rs cannot be imported")
    assert "No module named 'pyfw_rs'" in line and "make build" in line and ".venv/bin/pyfw" in line


def test_auto_refuses_pyfw_rs_of_another_version(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture) -> None:
    rs = load_backend("rs")
    monkeypatch.setattr(rs, "__version__", "0.0.9")
    assert cli.load_backend("auto") is pyfw
    (line,) = capsys.readouterr().err.splitlines()
    assert "pyfw_rs 0.0.9" in line and f"pyfw's version {pyfw.__version__}" in line and "rebuild" in line
    assert cli.load_backend("rs") is rs, "--backend rs still forces it"


def test_backend_rs_without_pyfw_rs_says_how_to_build_it() -> None:
    p = run_cli("train", "--backend", "rs", "--epochs", "1", *SMALL)
    assert p.returncode == 1 and len(p.stderr.splitlines()) == 1, p.stderr
    assert "No module named 'pyfw_rs'" in p.stderr and "make build" in p.stderr and ".venv" in p.stderr
    assert "source .venv/bin/activate" in p.stderr and "Traceback" not in p.stderr


def test_the_build_installs_the_pyfw_command_next_to_its_python() -> None:
    """``make build`` (maturin) puts ``pyfw`` into the venv's bin folder, running on pyfw_rs."""
    command = Path(sys.executable).parent / "pyfw"
    if not command.exists():
        if os.environ.get("PYFW_REQUIRE_RS") == "1":
            pytest.fail(f"{command} does not exist: 'make build' must install the pyfw command")
        pytest.skip("not run from a venv built by 'make build'")
    p = subprocess.run([str(command), "train", "--epochs", "1", *SMALL], capture_output=True, text=True,
                       timeout=120, cwd=str(REPO.parent))
    assert p.returncode == 0 and p.stdout.startswith("backend rs "), p.stdout + p.stderr


# ---- help -----------------------------------------------------------------------------------

def test_help_shows_the_command_as_run_and_plain_text(capsys: pytest.CaptureFixture) -> None:
    p = subprocess.run([sys.executable, "-m", "pyfw", "--help"], cwd=str(REPO), capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.startswith("usage: python -m pyfw "), p.stdout
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert capsys.readouterr().out.startswith("usage: pyfw ")
    for command in ("train", "predict", "plot", "demo"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        text = capsys.readouterr().out
        assert text.startswith(f"usage: pyfw {command} ")
        assert "``" not in text and ":class:" not in text and ":func:" not in text, command
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "'train' trains the seed task" in " ".join(capsys.readouterr().out.split())


def test_demo_shows_progress_where_there_is_no_live_line() -> None:
    log = stdio.StringIO()
    prog = cli.Progress(3, quiet=True, stream=stdio.StringIO(), log=log, live=True, every=1e-9)
    for e in (1, 2, 3):
        prog.end_epoch(e, 0.5)
    assert [ln.split()[:2] for ln in log.getvalue().splitlines()] == [["epoch", "1/3"], ["epoch", "2/3"],
                                                                      ["epoch", "3/3"]]
    quiet = stdio.StringIO()
    prog = cli.Progress(3, quiet=True, stream=stdio.StringIO(), log=quiet, live=True)
    prog.end_epoch(1, 0.5)
    assert quiet.getvalue() == ""


# ---- extending and resuming runs --------------------------------------------------------------

def train_json(tmp_path: Path, name: str, *args: str) -> tuple:
    out = tmp_path / f"{name}.json"
    status = cli.main(["train", *SMALL, *args, "--json", str(out)])
    return status, (json.loads(out.read_text(encoding="utf-8")) if out.exists() else None)


def same_run(a: dict, b: dict) -> None:
    for key in ("losses", *task.HISTORY_KEYS):
        assert hexes(a.get(key, [])) == hexes(b.get(key, [])), key
    assert (a["train_error"], a["test_error"], a["final_loss"].hex()) == \
        (b["train_error"], b["test_error"], b["final_loss"].hex())


@pytest.mark.parametrize("backend", ["py", "rs"])
@pytest.mark.parametrize("schedule", sorted(task.EPOCH_FREE_SCHEDULES))
def test_resume_with_more_epochs_extends_a_finished_run_bit_for_bit(tmp_path: Path, backend: str,
                                                                   schedule: str) -> None:
    load_backend(backend)
    ck = tmp_path / "ck.safetensors"
    common = ["--backend", backend, "--optimizer", "adam", "--lr", "0.01", "--schedule", schedule,
              "--track-errors"]
    status, short = train_json(tmp_path, "short", *common, "--epochs", "3", "--checkpoint", str(ck))
    assert status == 0 and len(short["losses"]) == 3
    status, extended = train_json(tmp_path, "extended", *common, "--epochs", "7", "--checkpoint", str(ck),
                                  "--resume")
    assert status == 0
    status, straight = train_json(tmp_path, "straight", *common, "--epochs", "7")
    assert status == 0 and len(straight["test_losses"]) == 7
    same_run(extended, straight)
    model_bits = task.stored_run(str(ck))
    assert model_bits[0] == 7 and model_bits[1]["config"]["epochs"] == 7


def test_a_history_survives_a_stop_and_a_resume(tmp_path: Path, fw: ModuleType) -> None:
    """Stopped after 2 epochs (by on_epoch, as Ctrl-C would), resumed to 5: the history of every
    epoch, at its epoch, as in a run never stopped; a finished run resumed keeps it all."""
    config = task.Config(epochs=5, n_train=60, n_test=40, optimizer="adam", lr=0.01, dropout=0.1)
    full = task.train(fw, config, track_errors=True)
    ck = str(tmp_path / "ck.safetensors")
    task.train(fw, config, on_epoch=lambda e, loss: e < 2, fit_options={"checkpoint": ck}, track_errors=True)
    assert task.stored_run(ck)[1]["history"]["train_errors"] == full["train_errors"][:2]
    resumed = task.train(fw, config, fit_options={"checkpoint": ck, "resume": True}, track_errors=True)
    same_run(resumed, full)
    again = task.train(fw, config, fit_options={"checkpoint": ck, "resume": True}, track_errors=True)
    same_run(again, full)
    with pytest.raises(ValueError, match="tracked errors"):
        task.train(fw, config, fit_options={"checkpoint": ck, "resume": True})
    with pytest.raises(ValueError, match="more than the 4"):
        task.train(fw, dataclasses.replace(config, epochs=4), fit_options={"checkpoint": ck, "resume": True},
                   track_errors=True)


def test_the_cli_history_of_a_stopped_and_resumed_run(tmp_path: Path) -> None:
    ck = tmp_path / "ck.safetensors"
    args = ["--backend", "rs", "--track-errors", "--checkpoint", str(ck)]
    load_backend("rs")
    assert train_json(tmp_path, "a", *args, "--epochs", "2")[0] == 0
    status, resumed = train_json(tmp_path, "b", *args, "--epochs", "6", "--resume")
    assert status == 0
    status, straight = train_json(tmp_path, "c", "--backend", "py", "--track-errors", "--epochs", "6")
    same_run(resumed, straight)
    svg = tmp_path / "c.svg"
    assert cli.main(["plot", str(tmp_path / "b.json"), "-o", str(svg)]) == 0
    root = ET.fromstring(svg.read_text(encoding="utf-8"))
    ids = {e.get("id") for e in root.iter()}
    assert {"curve-loss", "curve-test-loss", "curve-train-error", "curve-test-error"} <= ids


def test_a_run_resumed_on_another_backend_names_both(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Started on py and resumed on rs: the JSON, the checkpoint and the plot say "py, then rs",
    and the time printed is said to be this session's; resumed again on rs it stays so."""
    load_backend("rs")
    ck, out, svg = tmp_path / "ck.safetensors", tmp_path / "r.json", tmp_path / "r.svg"
    base = ["train", *SMALL, "--checkpoint", str(ck), "--json", str(out), "--force"]
    assert cli.main([*base, "--backend", "py", "--epochs", "2"]) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["backend"] == "py"
    assert "this session" not in capsys.readouterr().out
    assert cli.main([*base, "--backend", "rs", "--epochs", "3", "--resume"]) == 0
    printed = capsys.readouterr().out
    assert json.loads(out.read_text(encoding="utf-8"))["backend"] == "py, then rs"
    assert task.stored_run(str(ck))[1]["backends"] == ["py", "rs"]
    (line,) = [x for x in printed.splitlines() if "final loss" in x]
    assert "(3 epochs, this session: 1 epoch in " in line and line.endswith(" s, backend py, then rs)"), line
    assert cli.main(["plot", str(out), "-o", str(svg)]) == 0
    assert "backend py, then rs" in svg.read_text(encoding="utf-8")
    assert cli.main([*base, "--backend", "rs", "--epochs", "4", "--resume"]) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["backend"] == "py, then rs"
    assert task.stored_run(str(ck))[1]["backends"] == ["py", "rs", "rs"]


@pytest.mark.parametrize("args, words", [
    (["--epochs", "6", "--schedule", "cosineannealing"], ["schedule cosineannealing", "built for 3 epochs",
                                                          "new run"]),
    (["--epochs", "2"], ["already holds 3 epochs", "--epochs 2"]),
    (["--epochs", "3", "--track-errors"], ["without --track-errors"]),
    (["--epochs", "3", "--lr", "0.5"], ["belongs to another run", "(--lr 0.1 there, 0.5 here)"]),
    (["--epochs", "3", "--batch-size", "7"], ["belongs to another run", "(--batch-size 10 there, 7 here)"]),
])
def test_resume_explains_why_a_run_cannot_continue(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                   args: list, words: list) -> None:
    ck = tmp_path / "ck.safetensors"
    schedule = ["--schedule", "cosineannealing"] if "cosineannealing" in args else []
    assert cli.main(["train", *SMALL, "--backend", "rs", "--epochs", "3", *schedule, "--checkpoint", str(ck)]) == 0
    before = ck.read_bytes()
    capsys.readouterr()
    status = cli.main(["train", *SMALL, "--backend", "rs", *args, "--checkpoint", str(ck), "--resume"])
    err = capsys.readouterr().err
    assert status == 2 and len(err.splitlines()) == 1, err
    for w in words:
        assert w in err, (w, err)
    assert ck.read_bytes() == before


def test_epoch_free_schedules_are_those_that_ignore_the_epoch_count() -> None:
    for choice, name in task.SCHEDULE_CHOICES.items():
        states = []
        for epochs in (12, 40):
            model = task.make_model(pyfw, pyfw.Generator(0), hidden=2)
            opt = pyfw.Adam(model.param(), lr=0.01)
            sched = task.make_scheduler(pyfw, opt, name, epochs)
            states.append(None if sched is None else json.dumps(sched.state_dict(), sort_keys=True))
        assert (states[0] == states[1]) == (choice in task.EPOCH_FREE_SCHEDULES), choice


# ---- predict --proba and outputs that are not finite ------------------------------------------

def model_file(tmp_path: Path, name: str, *layers: Any) -> str:
    path = str(tmp_path / f"{name}.safetensors")
    io.save_model(pyfw.Sequential(*layers), path)
    return path


def predict(model: str, text: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pyfw", "predict", model, "--input", "-", "--backend", "py",
                           *args], input=text, capture_output=True, text=True, timeout=60, cwd=str(REPO))


def test_predict_proba_softmax_sigmoid_and_heads(tmp_path: Path) -> None:
    g = pyfw.Generator(3)
    lin3, lin1 = pyfw.Linear(2, 3, generator=g), pyfw.Linear(2, 1, generator=g)
    rows = [[0.1, 0.9], [2.0, -1.0]]
    plain = model_file(tmp_path, "plain", lin3)
    p = predict(plain, "0.1,0.9\n2,-1\n", "--proba")
    assert p.returncode == 0 and p.stderr == "", p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "label,p_0,p_1,p_2"
    want = pyfw.Softmax(dim=1)(lin3(pyfw.tensor(rows))).tolist()
    scores = lin3(pyfw.tensor(rows)).tolist()
    for line, w, s in zip(lines[1:], want, scores):
        label, *probs = line.split(",")
        assert [float(v).hex() for v in probs] == [v.hex() for v in w]
        assert int(label) == s.index(max(s)) == w.index(max(w))
    # one column: the sigmoid, the probability of class 1, and the label it gives
    p = predict(model_file(tmp_path, "one", lin1), "0.1,0.9\n2,-1\n", "--proba")
    lines = p.stdout.splitlines()
    assert lines[0] == "label,p_1"
    for line, (s,), (w,) in zip(lines[1:], lin1(pyfw.tensor(rows)).tolist(),
                                pyfw.Sigmoid()(lin1(pyfw.tensor(rows))).tolist()):
        assert line == f"{1 if s > 0 else 0},{w!r}"
    # heads that already give probabilities, or their logarithm
    p = predict(model_file(tmp_path, "soft", lin3, pyfw.Softmax(dim=1)), "0.1,0.9\n", "--proba")
    assert [float(v) for v in p.stdout.splitlines()[1].split(",")[1:]] == want[0]
    p = predict(model_file(tmp_path, "logsoft", lin3, pyfw.LogSoftmax(dim=1)), "0.1,0.9\n", "--proba")
    got = [float(v) for v in p.stdout.splitlines()[1].split(",")[1:]]
    assert got == pytest.approx(want[0], rel=1e-12)
    p = predict(model_file(tmp_path, "sig", lin1, pyfw.Sigmoid()), "0.1,0.9\n")
    (s,) = pyfw.Sigmoid()(lin1(pyfw.tensor([rows[0]]))).tolist()[0]
    assert p.stdout.splitlines()[1] == f"{1 if s > 0.5 else 0},{s!r}"


def huge_model(tmp_path: Path) -> str:
    """A model whose outputs overflow to infinity (and NaN) for inputs far from 0."""
    lin = pyfw.Linear(2, 2, generator=pyfw.Generator(0))
    lin.load_state_dict({"weight": pyfw.tensor([[1e308, 1e308], [-1e308, 1.0]]), "bias": pyfw.tensor([0.0, 0.0])})
    return model_file(tmp_path, "huge", lin, pyfw.Linear(2, 2, generator=pyfw.Generator(1)))


def test_predict_marks_rows_whose_outputs_are_not_finite(tmp_path: Path) -> None:
    model = huge_model(tmp_path)
    for extra in ([], ["--proba"]):
        p = predict(model, "0,0\n5,5\n0.001,0\n", *extra)
        assert p.returncode == 0, p.stderr
        labels = [ln.split(",")[0] for ln in p.stdout.splitlines()[1:]]
        assert labels[0] != "nan" and labels[1] == "nan" and len(labels) == 3
        assert "nan" in p.stdout.splitlines()[2].split(",")[1:]
        (warning,) = p.stderr.splitlines()
        assert warning.startswith("pyfw: warning:") and "NaN or infinite for 1 of the 3 input rows" in warning
        assert "'nan'" in warning and "data row 2" in warning


# ---- plot beyond the seed task -------------------------------------------------------------------

def test_plot_refuses_an_extension_other_than_svg(tmp_path: Path) -> None:
    run = tmp_path / "run.json"
    run.write_text(json.dumps({"losses": [0.5, 0.25]}), encoding="utf-8")
    for name in ("curves.png", "curves", "curves.svg.pdf"):
        p = run_cli("plot", str(run), "-o", str(tmp_path / name))
        assert p.returncode == 2 and len(p.stderr.splitlines()) == 1 and ".svg" in p.stderr, p.stderr
        assert not (tmp_path / name).exists()
    assert run_cli("plot", str(run), "-o", str(tmp_path / "c.SVG")).returncode == 0



def test_plot_names_the_svg_rule_before_an_existing_file(tmp_path: Path) -> None:
    """An existing curves.png: the refusal says .svg, not --force (which would not help)."""
    run = tmp_path / "run.json"
    run.write_text(json.dumps({"losses": [0.5, 0.25]}), encoding="utf-8")
    (tmp_path / "curves.png").write_bytes(b"png")
    p = run_cli("plot", str(run), "-o", str(tmp_path / "curves.png"))
    assert p.returncode == 2 and len(p.stderr.splitlines()) == 1, p.stderr
    assert ".svg" in p.stderr and "--force" not in p.stderr, p.stderr
    assert (tmp_path / "curves.png").read_bytes() == b"png"


def test_help_names_every_command(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for command in cli.COMMANDS:
        assert f"'{command}' " in text, command

@pytest.mark.parametrize("losses", [[1.7976931348623157e308], [1.7976931348623157e308] * 3,
                                    [1e308, 1e-308, 5e-324], [5e-324] * 4, [5e-324, 0.0],
                                    [1e-320, 3e-320]])
def test_plot_draws_extreme_losses(tmp_path: Path, losses: list) -> None:
    run = tmp_path / "run.json"
    run.write_text(json.dumps({"losses": losses}), encoding="utf-8")
    p = run_cli("plot", str(run), "-o", str(tmp_path / "c.svg"))
    assert p.returncode == 0 and p.stderr == "", p.stderr
    ET.fromstring((tmp_path / "c.svg").read_text(encoding="utf-8"))


def test_plot_refuses_in_one_line_what_no_axis_can_show(tmp_path: Path) -> None:
    run = tmp_path / "run.json"
    run.write_text(json.dumps({"losses": [1.7976931348623157e308, -1.0]}), encoding="utf-8")
    p = run_cli("plot", str(run), "-o", str(tmp_path / "c.svg"))
    assert p.returncode == 1 and len(p.stderr.splitlines()) == 1 and "1e300" in p.stderr, p.stderr


def three_class_model(tmp_path: Path) -> tuple:
    """A model of 3 classes (the nearest of three centres), its file, and labelled points far from [0, 1]²."""
    lin = pyfw.Linear(2, 3, generator=pyfw.Generator(0))
    centres = [[-4.0, 0.0], [4.0, 0.0], [0.0, 6.0]]
    lin.load_state_dict({"weight": pyfw.tensor(centres),
                         "bias": pyfw.tensor([-(x * x + y * y) / 2 for x, y in centres])})
    path = model_file(tmp_path, "three", lin)
    g = pyfw.Generator(5)
    rows = []
    for k, (cx, cy) in enumerate(centres):
        for _ in range(20):
            rows.append((cx + 6 * (g.random() - 0.5), cy + 6 * (g.random() - 0.5), k))
    return path, rows


def test_plot_model_with_k_classes_over_the_users_points(tmp_path: Path) -> None:
    model, rows = three_class_model(tmp_path)
    csv = tmp_path / "points.csv"
    csv.write_text("x,y,label\n" + "".join(f"{x!r},{y!r},{k}\n" for x, y, k in rows), encoding="utf-8")
    out = tmp_path / "b.svg"
    p = run_cli("plot", "--model", model, "--data", str(csv), "-o", str(out), "--backend", "py")
    assert p.returncode == 0 and p.stderr == "", p.stderr
    root = ET.fromstring(out.read_text(encoding="utf-8"))
    ids = {e.get("id"): e for e in root.iter() if e.get("id")}
    assert {"region-0", "region-1", "region-2", "points-0", "points-1", "points-2", "misclassified"} <= set(ids)
    assert "true-circle" not in ids
    assert sum(len(list(ids[f"points-{k}"])) for k in range(3)) == len(rows)
    # the axes cover the points' range, not [0, 1]
    labels = [float("".join(t.itertext())) for t in ids["x-axis"].iter("{http://www.w3.org/2000/svg}text")]
    assert labels[0] <= min(x for x, _, _ in rows) + 2 and labels[-1] >= max(x for x, _, _ in rows) - 2
    area = ids["plot-area"]
    x0, y0 = float(area.get("x")), float(area.get("y"))
    x1, y1 = x0 + float(area.get("width")), y0 + float(area.get("height"))
    for k in range(3):
        for marker in ids[f"points-{k}"]:
            if marker.get("cx") is not None:
                assert x0 < float(marker.get("cx")) < x1 and y0 < float(marker.get("cy")) < y1
    # the misclassified points are exactly those the model gets wrong, and the title says how many
    pred = pyfw.argmax_rows(io.load_model(model)(pyfw.tensor([[x, y] for x, y, _ in rows])))
    wrong = sum(1 for p_, (_, _, k) in zip(pred, rows) if p_ != k)
    assert wrong > 0
    assert len(list(ids["misclassified"])) == wrong
    assert f"(error {100 * wrong / len(rows):.2f}%)" in "".join(ids["plot-title"].itertext())



def test_plot_model_of_other_than_2_inputs_says_plot_draws_2(fw: ModuleType, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture) -> None:
    """A model of 3 inputs: one line saying that plot draws models of 2 inputs and naming the
    model's width; a model of 2 raw inputs whose feature map widens them to 4 is drawn."""
    g = fw.Generator(0)
    model, out = tmp_path / "m3.safetensors", tmp_path / "b.svg"
    io.save_model(fw.Sequential(fw.Linear(3, 4, generator=g), fw.ReLU(), fw.Linear(4, 2, generator=g)), str(model))
    csv = tmp_path / "p.csv"
    csv.write_text("0.1,0.2,0\n0.7,0.4,1\n", encoding="utf-8")
    for extra in ([], ["--data", str(csv)]):
        assert cli.main(["plot", "--model", str(model), *extra, "-o", str(out), "--n-train", "20", "--n-test",
                         "20", "--backend", BACKEND_NAME[fw.__name__]]) == 1
        (line,) = capsys.readouterr().err.splitlines()
        assert "plot draws the decision regions of models of 2 inputs; this model takes 3 inputs" in line, line
        assert str(model) in line and not out.exists()
    featured = tmp_path / "f.safetensors"
    io.save_model(fw.Sequential(fw.Linear(4, 2, generator=g)), str(featured),
                  preprocess={"kind": "features", "names": ["x1", "x2", "x1^2", "x2^2"]})
    assert cli.main(["plot", "--model", str(featured), "-o", str(out), "--n-train", "20", "--n-test", "20",
                     "--backend", BACKEND_NAME[fw.__name__]]) == 0, capsys.readouterr().err


def test_plot_data_labels_must_be_classes_of_the_model(tmp_path: Path) -> None:
    """A label the model cannot predict (3 for a model of 3 classes) is refused, naming its row."""
    model, rows = three_class_model(tmp_path)
    csv = tmp_path / "points.csv"
    csv.write_text("x,y,label\n" + "".join(f"{x!r},{y!r},{k}\n" for x, y, k in rows[:3]) + "0,0,3\n",
                   encoding="utf-8")
    out = tmp_path / "b.svg"
    p = run_cli("plot", "--model", model, "--data", str(csv), "-o", str(out), "--backend", "py")
    assert p.returncode == 1 and len(p.stderr.splitlines()) == 1, p.stderr
    assert "data row 4" in p.stderr and "label 3" in p.stderr and "0 to 2" in p.stderr, p.stderr
    assert not out.exists()

def test_plot_model_of_the_seed_task_marks_its_test_errors(tmp_path: Path) -> None:
    model, out = tmp_path / "m.safetensors", tmp_path / "b.svg"
    res = task.train(load_backend("rs"), task.Config(epochs=3, n_train=200, n_test=200))
    io.save_model(res["model"], str(model), preprocess=task.PREPROCESS)
    assert cli.main(["plot", "--model", str(model), "--n-train", "200", "--n-test", "200", "-o", str(out)]) == 0
    root = ET.fromstring(out.read_text(encoding="utf-8"))
    (wrong,) = [e for e in root.iter() if e.get("id") == "misclassified"]
    assert len(list(wrong)) == round(res["test_error"] * 200) > 0


def test_plot_model_marks_cells_with_outputs_that_are_not_finite(tmp_path: Path) -> None:
    model = huge_model(tmp_path)
    csv = tmp_path / "p.csv"
    csv.write_text("0,0,0\n5,5,1\n-3,2,1\n", encoding="utf-8")
    out = tmp_path / "b.svg"
    p = run_cli("plot", "--model", model, "--data", str(csv), "-o", str(out), "--backend", "py")
    assert p.returncode == 0, p.stderr
    (warning,) = p.stderr.splitlines()
    assert warning.startswith("pyfw: warning:") and "NaN or infinite" in warning and "grey" in warning
    root = ET.fromstring(out.read_text(encoding="utf-8"))
    ids = {e.get("id"): e for e in root.iter() if e.get("id")}
    assert len(list(ids["region-none"])) > 0
    assert len(list(ids["misclassified"])) >= 1  # the point (5, 5) has no prediction


def test_plot_data_without_labels_and_bad_data(tmp_path: Path) -> None:
    model, rows = three_class_model(tmp_path)
    csv = tmp_path / "xy.csv"
    csv.write_text("".join(f"{x!r} {y!r}\n" for x, y, _ in rows), encoding="utf-8")
    out = tmp_path / "b.svg"
    assert run_cli("plot", "--model", model, "--data", str(csv), "-o", str(out), "--backend", "py").returncode == 0
    ids = {e.get("id"): e for e in ET.fromstring(out.read_text(encoding="utf-8")).iter() if e.get("id")}
    assert len(list(ids["points-unlabelled"])) == len(rows) and len(list(ids["misclassified"])) == 0
    for content, what in (("1,2,0.5\n", "label must be a class number"), ("1,2,3,4\n", "rows of 4 values"),
                          ("1,2,x\n", "--data")):
        csv.write_text(content, encoding="utf-8")
        p = run_cli("plot", "--model", model, "--data", str(csv), "-o", str(out), "--backend", "py", "--force")
        assert p.returncode in (1, 2) and len(p.stderr.splitlines()) == 1 and what in p.stderr, p.stderr
    p = run_cli("plot", str(csv), "--data", str(csv), "-o", str(out))
    assert p.returncode == 2 and "--data goes with --model" in p.stderr
