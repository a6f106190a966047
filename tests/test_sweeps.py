"""Sweeps: every setting x seed of the seed task on any executor, the same results whatever the
executor and worker count (paired seeds), streamed to JSON lines, resumed, summarized and plotted."""

from __future__ import annotations

import concurrent.futures
import io
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import load_backend

import pyfw
from pyfw import cli, task
from pyfw.plot import sweep_svg

from pyfw import sweeps as sw
REPO = Path(pyfw.__file__).resolve().parent.parent
BASE = task.Config(epochs=2, n_train=60, n_test=40, batch_size=16)
GRID = {"lr": [0.05, 0.1], "activation": ["relu", "tanh"]}


def same_fields(results: list) -> list:
    """The results without their timings, in a fixed order."""
    return sorted(json.dumps({k: v for k, v in r.items() if k != "seconds"}, sort_keys=True) for r in results)


def test_grid_and_settings() -> None:
    settings = sw.grid(GRID)
    assert settings == [{"lr": 0.05, "activation": "relu"}, {"lr": 0.05, "activation": "tanh"},
                        {"lr": 0.1, "activation": "relu"}, {"lr": 0.1, "activation": "tanh"}]
    with pytest.raises(ValueError, match="seed"):
        sw.grid({"seed": [1, 2]})
    setting, config = sw.resolve({"preset": "best", "lr": 0.02}, BASE)
    assert config.optimizer == "adam" and config.lr == 0.02 and config.epochs == 2 and setting["preset"] == "best"


def test_a_runs_seed_is_the_sweeps_seed_and_results_do_not_depend_on_the_executor() -> None:
    rs = load_backend("rs")
    settings = sw.grid(GRID)
    inline = rs.sweep(settings, [0, 3], concurrent.futures.ThreadPoolExecutor(1), base=BASE)
    two = rs.sweep(settings, [0, 3], concurrent.futures.ThreadPoolExecutor(2), base=BASE)
    procs = pyfw.sweep(settings, [0, 3], base=BASE, workers=2)  # pyfw's default: a process pool
    assert [r["seed"] for r in inline] == [0, 3] * 4
    assert same_fields(inline) == same_fields(two)
    assert [{**r, "backend": "x"} for r in json.loads("[" + ",".join(same_fields(procs)) + "]")] == \
           [{**r, "backend": "x"} for r in json.loads("[" + ",".join(same_fields(inline)) + "]")]
    direct = task.train(rs, task.Config(**{**BASE.__dict__, "lr": 0.1, "activation": "tanh", "seed": 3}))
    assert [v.hex() for v in inline[-1]["losses"]] == [v.hex() for v in direct["losses"]]
    assert inline[-1]["test_error"] == direct["test_error"]


def test_default_executors() -> None:
    rs = load_backend("rs")
    with sw.default_executor(rs, 2) as ex:
        assert isinstance(ex, concurrent.futures.ThreadPoolExecutor)
    with sw.default_executor(pyfw, 2) as ex:
        assert isinstance(ex, concurrent.futures.ProcessPoolExecutor)


def test_results_stream_and_resume_skips_finished_runs(tmp_path: Path) -> None:
    rs = load_backend("rs")
    out = tmp_path / "r.jsonl"
    settings = sw.grid({"lr": [0.05, 0.1]})
    full = rs.sweep(settings, range(4), base=BASE, out=out)
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 8 and same_fields([json.loads(x) for x in lines]) == same_fields(full)
    with pytest.raises(FileExistsError):
        rs.sweep(settings, range(4), base=BASE, out=out)
    # a stopped sweep: three runs and a line cut short
    out.write_text("\n".join(lines[:3]) + "\n" + lines[3][:25], encoding="utf-8")
    calls: list = []
    again = rs.sweep(settings, range(4), base=BASE, out=out, resume=True, on_result=lambda r, d, n: calls.append(d))
    assert calls == [4, 5, 6, 7, 8], "the three finished runs are skipped"
    text = out.read_text(encoding="utf-8")
    assert text.startswith("\n".join(lines[:3]) + "\n") and len(text.splitlines()) == 8
    assert same_fields(again) == same_fields(full)
    out.write_text("not json\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 1"):
        rs.sweep(settings, range(4), base=BASE, out=out, resume=True)



def test_a_stopped_sweep_stops_its_worker_processes_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C (here: on_result raising KeyboardInterrupt) ends the pure-Python runs still going."""
    made: list = []

    def recording(fw, workers=None):  # type: ignore[no-untyped-def]
        made.append(real(fw, workers))
        return made[-1]
    real = sw.default_executor
    monkeypatch.setattr(sw, "default_executor", recording)

    procs: list = []

    def stop(rec: dict, done: int, total: int) -> None:
        procs.extend(made[0]._processes.values())  # the pool's worker processes, while it runs
        raise KeyboardInterrupt
    quick, slow = {"epochs": 1}, {"epochs": 400, "n_train": 1000}  # the slow run takes far more than 10 s
    with pytest.raises(KeyboardInterrupt):
        pyfw.sweep([quick, slow], [0], base=BASE, workers=2, on_result=stop)
    assert len(procs) == 2
    for p in procs:
        p.join(timeout=10)
    assert not any(p.is_alive() for p in procs), "the slow run's worker was left running"

def test_summary_table_and_plot() -> None:
    results = [{"setting": {"lr": lr}, "seed": s, "test_error": e}
               for lr, errs in ((0.1, [0.02, 0.04, 0.03]), (0.2, [0.1, 0.3, 0.2])) for s, e in enumerate(errs)]
    summary = sw.summarize(results)
    assert [(r["runs"], r["median"], r["worst"], r["best"]) for r in summary] == [(3, 0.03, 0.04, 0.02),
                                                                                 (3, 0.2, 0.3, 0.1)]
    assert summary[0]["mean"] == (0.02 + 0.04 + 0.03) / 3 and summary[1]["spread"] == 0.3 - 0.1
    text = sw.table(summary)
    assert "lr=0.1" in text and "mean" in text and "spread" in text and "20.00" in text
    root = ET.fromstring(sweep_svg(summary))
    ids = [e.get("id") for e in root.iter() if e.get("id")]
    assert "sweep-lr" in ids and len(ids) == len(set(ids))
    assert len([e for e in root.iter() if e.get("class") == "spread"]) == 2



def test_sweep_plot_sets_the_series_side_by_side() -> None:
    """Two series at one value of the swept key: their spread bars do not lie on one line."""
    results = [{"setting": {"lr": lr, "activation": act}, "seed": s, "test_error": e}
               for lr in (0.1, 0.2) for act in ("relu", "silu") for s, e in enumerate([0.01, 0.05])]
    root = ET.fromstring(sweep_svg(sw.summarize(results)))
    panel = next(e for e in root.iter() if e.get("id") == "sweep-lr")
    bars = [e for e in panel.iter() if e.get("class") == "spread"]
    assert len(bars) == 4
    assert len({float(b.get("x1")) for b in bars}) == 4, "each series' bar has its own x"
    for series in panel.iter():
        if series.get("class") == "series":
            xs = [float(b.get("x1")) for b in series if b.get("class") == "spread"]
            ms = [float(c.get("cx")) for c in series if c.get("class") == "mean"]
            assert xs == ms, "a series' markers sit on its bars"

def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pyfw", *args], cwd=str(cwd), capture_output=True, text=True,
                          timeout=300, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


SMALL = ["--epochs", "2", "--n-train", "60", "--n-test", "40", "--batch-size", "16"]


def test_cli_sweep_one_worker_two_threads_and_resume(tmp_path: Path) -> None:
    """The done-when check: 2 settings x 10 seeds, the same results with 1 worker and 2 threads."""
    load_backend("rs")
    outs = []
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}.jsonl"
        p = run_cli("sweep", "--grid", "activation=relu,silu", "--seeds", "0-9", "--out", str(out), "--backend",
                    "rs", "--workers", workers, *SMALL, cwd=tmp_path)
        assert p.returncode == 0, p.stderr
        assert "relu" in p.stdout and "silu" in p.stdout and "mean" in p.stdout
        assert "[20/20]" in p.stderr and "best so far" in p.stderr and "ETA" in p.stderr
        outs.append([json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()])
    assert len(outs[0]) == 20 and same_fields(outs[0]) == same_fields(outs[1])
    p = run_cli("sweep", "--grid", "activation=relu,silu", "--out", str(tmp_path / "w1.jsonl"), *SMALL, cwd=tmp_path)
    assert p.returncode == 2 and len(p.stderr.splitlines()) == 1 and "--resume" in p.stderr
    svg = tmp_path / "s.svg"
    p = run_cli("sweep", "--grid", "activation=relu,silu", "--out", str(tmp_path / "w1.jsonl"), "--resume",
                "--plot", str(svg), "--backend", "rs", *SMALL, cwd=tmp_path)
    assert p.returncode == 0 and "relu" in p.stdout and ET.parse(svg).getroot().tag.endswith("svg")
    assert len((tmp_path / "w1.jsonl").read_text(encoding="utf-8").splitlines()) == 20, "nothing ran again"


def test_cli_sweep_best_so_far_counts_the_runs_already_in_a_resumed_file(tmp_path: Path) -> None:
    """The progress line of a resumed sweep: its best setting and mean over the seeds that every
    setting has finished in --out, those of the earlier session included (a paired comparison)."""
    load_backend("rs")
    out = tmp_path / "r.jsonl"
    args = ["sweep", "--grid", "activation=relu,silu", "--out", str(out), "--backend", "rs", "--workers", "1",
            *SMALL]
    assert run_cli(*args, "--seeds", "0-1", cwd=tmp_path).returncode == 0
    p = run_cli(*args, "--seeds", "0-2", "--resume", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    lines = [x for x in p.stderr.splitlines() if "best so far" in x]
    recs = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert len(recs) == 6 and [x.split("]")[0] for x in lines] == ["[5/6", "[6/6"]
    for line, upto in zip(lines, (5, 6)):
        errors: dict = {}
        for r in recs[:upto]:
            errors.setdefault(sw.label(r["setting"]), {})[r["seed"]] = r["test_error"]
        common = sorted(set(errors["activation=relu"]) & set(errors["activation=silu"]))
        assert len(common) == (2 if upto == 5 else 3)
        means = {}
        for k, v in errors.items():
            total = 0.0
            for seed in common:
                total += v[seed]
            means[k] = total / len(common)
        name = min(means, key=lambda k: means[k])
        assert line.endswith(f"best so far: {name} {100 * means[name]:.2f}% mean test error over the "
                             f"{len(common)} seeds every setting has finished"), (line, errors)


def test_cli_sweep_best_so_far_is_paired_and_live_on_a_terminal(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    """On a terminal: one live line, redrawn after each run, kept at the end. The best so far
    compares the settings over the seeds every one of them has finished: a setting ahead on
    seeds the others have not finished yet is not counted as better."""
    load_backend("rs")

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True
    err = Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    out = tmp_path / "t.jsonl"
    assert cli.main(["sweep", "--grid", "activation=relu,silu", "--seeds", "0-2", "--out", str(out),
                     "--backend", "rs", "--workers", "1", *SMALL]) == 0
    text = err.getvalue()
    header, live, rest = text.split("\n", 2)
    assert header.startswith("sweep: 2 settings x 3 seeds = 6 runs") and rest == "", text
    frames = live.split("\r\x1b[K")
    assert frames[0] == "" and len(frames) == 7, frames  # six runs, one live line
    recs = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [r["seed"] for r in recs] == [0, 0, 1, 1, 2, 2], "started seed by seed"
    assert frames[1].endswith("best so far: none yet (no seed finished by every setting)"), frames[1]
    errors = {(sw.label(r["setting"]), r["seed"]): r["test_error"] for r in recs}
    for k, frame in zip(range(1, 4), (frames[2], frames[4], frames[6])):
        means = {}
        for name in ("activation=relu", "activation=silu"):
            total = 0.0
            for seed in range(k):
                total += errors[name, seed]
            means[name] = total / k
        name = min(means, key=lambda n: means[n])
        assert frame.endswith(f"best so far: {name} {100 * means[name]:.2f}% mean test error over the {k} "
                              f"seed{'s' * (k != 1)} every setting has finished"), frame
    # Not a terminal: one line per run, as before.
    p = run_cli("sweep", "--grid", "activation=relu,silu", "--seeds", "0-1", "--out", str(tmp_path / "p.jsonl"),
                "--backend", "rs", "--workers", "1", *SMALL, cwd=tmp_path)
    assert p.returncode == 0 and "\r" not in p.stderr and "\x1b" not in p.stderr
    assert len([x for x in p.stderr.splitlines() if "best so far" in x]) == 4


def _children(pid: int) -> list:
    """The pids of the processes whose parent is ``pid`` (from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the worker processes from /proc")
def test_cli_sweep_ctrl_c_is_one_line_naming_resume_and_stops_the_workers(tmp_path: Path) -> None:
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) after the first result:
    status 130, one line that names --resume, no traceback, the workers gone, the results kept."""
    out = tmp_path / "r.jsonl"
    p = subprocess.Popen([sys.executable, "-m", "pyfw", "sweep", "--grid", "activation=relu,silu", "--seeds", "0-9",
                          "--out", str(out), "--backend", "py", "--workers", "2", "--quiet", "--epochs", "10",
                          "--n-train", "100", "--n-test", "40", "--batch-size", "16"],
                         cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (out.exists() and out.read_text(encoding="utf-8").count("\n") >= 1):
            assert p.poll() is None and time.monotonic() < deadline, "no result line appeared"
            time.sleep(0.02)
        workers = _children(p.pid)
        assert workers, "a process pool runs the pure-Python sweep"
        os.killpg(p.pid, signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130, err
    lines = err.splitlines()
    assert "Traceback" not in err and lines[-1].startswith("pyfw: interrupted"), err
    assert [x for x in lines if "--resume" in x] == [lines[-1]], err
    assert str(out) in lines[-1]
    deadline = time.monotonic() + 30
    while any(_running(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_running(w) for w in workers), "the workers were stopped"
    done = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert 1 <= len(done) < 20


@pytest.mark.parametrize("args, message", [
    (["--grid", "lr=abc"], "lr must be"), (["--grid", "colour=red"], "not an option"),
    (["--grid", "lr=0.1 lr=0.2"], "twice"), (["--seeds", "5-2"], "--seeds"), (["--seeds", "1,1"], "twice"),
    (["--workers", "0"], "positive"), (["--seed", "5", *SMALL], "--seeds"),
])
def test_cli_sweep_bad_arguments(tmp_path: Path, args: list, message: str) -> None:
    p = run_cli("sweep", "--out", str(tmp_path / "r.jsonl"), *args, cwd=tmp_path)
    assert p.returncode == 2 and message in p.stderr and len(p.stderr.splitlines()) == 1, p.stderr
    assert not (tmp_path / "r.jsonl").exists()



def test_cli_sweep_resumed_counts_its_finished_runs_in_the_best_so_far(tmp_path: Path) -> None:
    load_backend("rs")
    out = tmp_path / "r.jsonl"
    args = ["sweep", "--grid", "lr=0.1", "--seeds", "0-3", "--out", str(out), "--backend", "rs", "--workers", "1",
            *SMALL]
    p = run_cli(*args, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "over the 1 seed every setting has finished\n" in p.stderr, p.stderr
    assert "over the 4 seeds every setting has finished" in p.stderr, p.stderr
    out.write_text("".join(out.read_text(encoding="utf-8").splitlines(keepends=True)[:2]), encoding="utf-8")
    p = run_cli(*args, "--resume", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    head, first = p.stderr.splitlines()[:2]
    assert f"(2 finished in {out})" in head, head
    assert first.startswith("[3/4]") and first.endswith("over the 3 seeds every setting has finished"), first


def test_cli_sweep_interrupted_names_the_command_that_continues_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture) -> None:
    def stopped(*args: object, **kwargs: object) -> list:
        raise KeyboardInterrupt
    monkeypatch.setattr(sw, "sweep", stopped)
    out = str(tmp_path / "r.jsonl")
    assert cli.main(["sweep", "--grid", "lr=0.1", "--seeds", "0-1", "--out", out, "--quiet"]) == 130
    line = capsys.readouterr().err.splitlines()[-1]
    assert line.endswith(f"continue the sweep with: pyfw sweep --grid lr=0.1 --seeds 0-1 --out {out} --quiet "
                         "--resume"), line

def test_parse_seeds_and_grid() -> None:
    assert cli.parse_seeds("0-4,10") == [0, 1, 2, 3, 4, 10] and cli.parse_seeds("7") == [7]
    assert cli.parse_grid(["batch-size=10,100", "preset=seed,best"]) == {"batch_size": [10, 100],
                                                                          "preset": ["seed", "best"]}


def test_on_a_local_dask_cluster_as_on_a_thread_pool() -> None:
    """Dask's distributed scheduler is an Executor (Client.get_executor()); optional, test-only."""
    distributed = pytest.importorskip("distributed")
    rs = load_backend("rs")
    settings = sw.grid({"activation": ["relu", "silu"]})
    threads = rs.sweep(settings, range(10), concurrent.futures.ThreadPoolExecutor(2), base=BASE)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c, \
            distributed.Client(c) as client:
        dask = rs.sweep(settings, range(10), client.get_executor(), base=BASE)
    assert same_fields(dask) == same_fields(threads)


def test_bench_recipes_is_a_sweep(tmp_path: Path) -> None:
    out = tmp_path / "rec.jsonl"
    p = subprocess.run([sys.executable, str(REPO / "bench" / "recipes.py"), "--seeds", "2", "--out", str(out),
                        "--epochs", "1", "--n-train", "30", "--n-test", "20", "--quiet"], cwd=str(tmp_path),
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "preset=seed" in p.stdout and "preset=best" in p.stdout
    assert len(out.read_text(encoding="utf-8").splitlines()) == 4
