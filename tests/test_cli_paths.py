"""The CLI's paths and inputs: two paths of one command that name the same file,
outputs that exist (``--force``), streams as input, the numbers a CSV file and an
option may hold, a run JSON nested too deeply, and Ctrl-C while the CLI starts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from test_cli import REPO, run_cli

import pyfw
from pyfw import cli, io

TINY = ["--epochs", "1", "--n-train", "20", "--n-test", "20", "--quiet"]


@pytest.fixture()
def model(tmp_path: Path) -> Path:
    """A model file of a Linear(2 -> 2)."""
    path = tmp_path / "m.safetensors"
    pyfw.manual_seed(0)
    io.save_model(pyfw.Sequential(pyfw.Linear(2, 2)), str(path))
    return path


def refused(argv: list, capsys: pytest.CaptureFixture, *words: str, status: int = 2) -> str:
    """Run ``cli.main(argv)``: it fails with ``status`` and one line on stderr holding ``words``."""
    assert cli.main([str(a) for a in argv]) == status
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for w in words:
        assert str(w) in err, (w, err)
    return err


def snapshot(folder: Path) -> dict:
    """Every file of ``folder`` with its bytes."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# ------------------------------------------------------------------ paths that collide


@pytest.mark.parametrize("force", [[], ["--force"]], ids=["plain", "force"])
@pytest.mark.parametrize("first, second", [("--save", "--json"), ("--save", "--checkpoint"),
                                           ("--json", "--checkpoint")])
@pytest.mark.parametrize("exists", [False, True], ids=["new", "existing"])
def test_train_outputs_that_collide_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture, first: str,
                                                second: str, exists: bool, force: list) -> None:
    """``--save x --json x`` and the like: refused before any work, even with --force, and
    nothing is written; through a symbolic link too."""
    target = tmp_path / "x"
    if exists:
        target.write_bytes(b"precious")
    link = tmp_path / "link"
    link.symlink_to(target)
    for a, b in ((target, target), (target, link)):
        before = snapshot(tmp_path)
        refused(["train", *TINY, first, a, second, b, *force], capsys, first, second, "same file")
        assert snapshot(tmp_path) == before


@pytest.mark.parametrize("force", [[], ["--force"]], ids=["plain", "force"])
def test_predict_output_onto_its_model_or_input_is_refused(tmp_path: Path, model: Path,
                                                           capsys: pytest.CaptureFixture, force: list) -> None:
    """``predict m --input p.csv --output m`` would turn the model into CSV."""
    csv = tmp_path / "p.csv"
    csv.write_text("0.5,0.5\n", encoding="utf-8")
    hard = tmp_path / "hard.csv"
    os.link(csv, hard)
    soft = tmp_path / "soft.safetensors"
    soft.symlink_to(model)
    before = snapshot(tmp_path)
    for out, option in ((model, "MODEL"), (soft, "MODEL"), (csv, "--input"), (hard, "--input")):
        refused(["predict", model, "--input", csv, "--output", out, *force], capsys, option, "--output",
                "same file")
        assert snapshot(tmp_path) == before


@pytest.mark.parametrize("force", [[], ["--force"]], ids=["plain", "force"])
def test_plot_output_onto_its_run_or_model_is_refused(tmp_path: Path, model: Path,
                                                      capsys: pytest.CaptureFixture, force: list) -> None:
    """``plot run.json -o run.json`` would turn the run into SVG."""
    run = tmp_path / "run.json"
    run.write_text(json.dumps({"losses": [1.0, 0.5], "epochs": 2}), encoding="utf-8")
    link = tmp_path / "link.json"
    link.symlink_to(run)
    before = snapshot(tmp_path)
    for args, out in (([run], run), ([run], link), (["--model", model], model)):
        refused(["plot", *args, "-o", out, *force], capsys, "-o", "same file")
        assert snapshot(tmp_path) == before


def test_streams_named_twice_are_no_collision(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """``/dev/null`` for two outputs is written twice, not refused (nor does it need --force)."""
    assert cli.main(["train", *TINY, "--save", os.devnull, "--json", os.devnull]) == 0
    assert "Traceback" not in capsys.readouterr().err


# ------------------------------------------------------------------ outputs that exist


def test_train_does_not_overwrite_without_force(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """An existing ``--save`` or ``--json`` file is refused before training; ``--force`` replaces it."""
    save, report = tmp_path / "best.safetensors", tmp_path / "best.json"
    for option, path in (("--save", save), ("--json", report)):
        path.write_bytes(b"old")
        refused(["train", *TINY, option, path], capsys, option, path, "exists", "--force")
        assert path.read_bytes() == b"old"
        assert cli.main(["train", *TINY, option, str(path), "--force"]) == 0
        assert path.read_bytes() != b"old"
    assert json.loads(report.read_text(encoding="utf-8"))["epochs"] == 1
    assert io.load_model(str(save)) is not None
    assert sorted(os.listdir(tmp_path)) == ["best.json", "best.safetensors"]


def test_predict_and_plot_do_not_overwrite_without_force(tmp_path: Path, model: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    csv, out = tmp_path / "p.csv", tmp_path / "out.csv"
    csv.write_text("0.5,0.5\n", encoding="utf-8")
    out.write_text("old", encoding="utf-8")
    refused(["predict", model, "--input", csv, "--output", out], capsys, "--output", out, "exists", "--force")
    assert out.read_text(encoding="utf-8") == "old"
    assert cli.main(["predict", str(model), "--input", str(csv), "--output", str(out), "--force"]) == 0
    assert out.read_text(encoding="utf-8").startswith("label,score_0,score_1\n")
    run, svg = tmp_path / "run.json", tmp_path / "curves.svg"
    run.write_text(json.dumps({"losses": [1.0, 0.5], "epochs": 2}), encoding="utf-8")
    svg.write_text("old", encoding="utf-8")
    refused(["plot", run, "-o", svg], capsys, "-o", svg, "exists", "--force")
    assert svg.read_text(encoding="utf-8") == "old"
    assert cli.main(["plot", str(run), "-o", str(svg), "--force"]) == 0
    assert "<svg" in svg.read_text(encoding="utf-8")


def test_force_never_replaces_a_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A checkpoint continues only with ``--resume``: ``--force`` does not start a new run over it."""
    ckpt = tmp_path / "run.ckpt"
    assert cli.main(["train", *TINY, "--checkpoint", str(ckpt)]) == 0
    before = ckpt.read_bytes()
    for force in ([], ["--force"]):
        refused(["train", *TINY, "--epochs", "2", "--checkpoint", ckpt, *force], capsys, ckpt, "--resume")
        assert ckpt.read_bytes() == before
    refused(["train", *TINY, "--seed", "1", "--checkpoint", ckpt, "--resume", "--force"], capsys,
            "belongs to another run")
    assert ckpt.read_bytes() == before


# ------------------------------------------------------------------ streams as input


def test_predict_reads_a_fifo(tmp_path: Path, model: Path, capsys: pytest.CaptureFixture) -> None:
    fifo = tmp_path / "rows"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "w", encoding="utf-8") as f:
            f.write("x,y\n0.5,0.5\n0.1,0.9\n")
    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        status = cli.main(["predict", str(model), "--input", str(fifo)])
    finally:
        if writer.is_alive():  # the FIFO was not read: open it, so that the writer's open returns
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
        writer.join(timeout=10)
    assert status == 0, capsys.readouterr().err
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "label,score_0,score_1" and len(out) == 3


def test_predict_reads_dev_stdin(model: Path) -> None:
    if not os.path.exists("/dev/stdin"):
        pytest.skip("no /dev/stdin here")
    p = subprocess.run([sys.executable, "-S", "-m", "pyfw", "predict", str(model), "--input", "/dev/stdin"],
                       input="0.5,0.5\n", capture_output=True, text=True, timeout=60, cwd=str(REPO))
    assert p.returncode == 0, p.stderr
    assert len(p.stdout.splitlines()) == 2


def test_predict_input_that_is_a_folder_or_missing(tmp_path: Path, model: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    refused(["predict", model, "--input", tmp_path], capsys, "--input", tmp_path, "is a folder")
    refused(["predict", model, "--input", tmp_path / "missing.csv"], capsys, "--input", "does not exist")
    refused(["predict", model, "--input", model / "x"], capsys, "--input", "does not exist")


# ------------------------------------------------------------------ numbers


@pytest.mark.parametrize("text", ["2", "-1.5", "+3", ".5", "5.", "1e-3", "1.5E+10", "0", "-0", "nan", "-inf"])
def test_parse_number_takes_ascii_decimals_as_float_does(text: str) -> None:
    assert cli.parse_number(text).hex() == float(text).hex()


@pytest.mark.parametrize("text", ["1_0", "\u0661", "\u0661.\u0665", "\uff11", "\uff10.\uff15", " 1", "1 ",
                                  "0x10", "", ".", "e3", "1e", "1__0", "\u00b2"])
def test_parse_number_refuses_other_spellings(text: str) -> None:
    with pytest.raises(ValueError, match="ASCII decimal"):
        cli.parse_number(text)
    with pytest.raises(ValueError, match="ASCII decimal"):
        cli.parse_number(text, int)


@pytest.mark.parametrize("content, line", [
    ("1_0,0.5\n", 1), ("0.5,0.5\n\u0661,0.5\n", 2), ("x,y\n\uff10.\uff15,0.5\n", 2),
    ("\u0661,\u0662\n0.5,0.5\n", 1),  # not a header: Python reads numbers there
])
def test_csv_holds_ascii_decimal_numbers(tmp_path: Path, model: Path, capsys: pytest.CaptureFixture,
                                         content: str, line: int) -> None:
    csv = tmp_path / "in.csv"
    csv.write_text(content, encoding="utf-8")
    refused(["predict", model, "--input", csv], capsys, f"line {line}:", "not a row of numbers", "ASCII decimal",
            status=1)


@pytest.mark.parametrize("args", [["--epochs", "1_0"], ["--epochs", "\uff12"], ["--lr", "\uff10.\uff11"],
                                  ["--seed", "\u0661"], ["--n-train", "2_0"], ["--dropout", "0.1_0"]],
                         ids=lambda a: a[0].lstrip("-"))
def test_options_hold_ascii_decimal_numbers(capsys: pytest.CaptureFixture, args: list) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["train", *TINY, *args])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and f"argument {args[0]}:" in err and repr(args[1]) in err, err


# ------------------------------------------------------------------ errors while loading or starting


def test_plot_a_run_nested_too_deeply(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "deep.json"
    run.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    refused(["plot", run, "-o", tmp_path / "c.svg"], capsys, run, "nested too deeply", status=1)
    assert not (tmp_path / "c.svg").exists()


CONSOLE_SCRIPT = "import sys\nfrom pyfw.cli import main\nif __name__ == '__main__':\n    sys.exit(main())\n"


@pytest.mark.parametrize("marker", ["pyfw.tensor", "pyfw.activations", "pyfw.io", "pyfw.data"])
@pytest.mark.parametrize("how", ["-m", "console"])
def test_ctrl_c_while_the_cli_starts(tmp_path: Path, how: str, marker: str) -> None:
    """SIGINT while ``import pyfw`` still runs: one line and status 130, never a traceback.

    ``-X importtime`` writes a line as each import ends; the signal goes out when the
    ``marker`` module is loaded, so it lands while the rest of the package loads.
    (Python's own start, before the first line of pyfw runs, is out of pyfw's reach.)"""
    if how == "-m":
        command = [sys.executable, "-S", "-X", "importtime", "-m", "pyfw", "train", "--quiet"]
    else:  # what 'pip install' writes as the 'pyfw' command
        script = tmp_path / "pyfw"
        script.write_text(CONSOLE_SCRIPT, encoding="utf-8")
        command = [sys.executable, "-S", "-X", "importtime", str(script), "train", "--quiet"]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO)}
    p = subprocess.Popen(command, cwd=str(REPO), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stderr is not None
        seen = []
        for line in p.stderr:
            seen.append(line)
            if line.startswith("import time:") and line.split("|")[-1].strip() == marker:
                break
            assert not line.startswith("Traceback"), "".join(seen)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    lines = [ln for ln in err.splitlines() if not ln.startswith("import time:")]
    assert p.returncode == 130 and lines == ["pyfw: interrupted"], (p.returncode, "".join(seen) + err)


def test_the_startup_guard_stays_out_of_library_use() -> None:
    """Imported by another program, pyfw leaves ``sys.excepthook`` alone."""
    p = subprocess.run([sys.executable, "-S", "-c", "import sys; import pyfw; "
                        "print(sys.excepthook is sys.__excepthook__)"], cwd=str(REPO), capture_output=True,
                       text=True, timeout=60, env={"PATH": os.environ.get("PATH", "")})
    assert p.returncode == 0 and p.stdout.strip() == "True", p.stderr
    p = run_cli("--help")
    assert p.returncode == 0 and "train" in p.stdout
