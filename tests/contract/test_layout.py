"""The checkout's layout: nothing at its root can shadow an installed ``pyfw_rs``.

The pure package ``pyfw`` lives at the root (``python -m pyfw train`` runs from a
bare checkout), while ``pyfw_rs``'s Python part lives in ``python/``, where
maturin builds its native module. Scripts run from the root (``python -m pyfw``,
``bench/bench.py``) put the root first on ``sys.path``; a ``pyfw_rs`` there
would hide the installed one. The slow test installs the wheel into a fresh
virtual environment, offline, and runs the CLI and the benchmark from the root,
and ``pyfw playground`` from another folder: the wheel carries the page.
"""

from __future__ import annotations

import http.client
import importlib.machinery
import json
import os
import signal
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_nothing_named_pyfw_rs_at_the_root() -> None:
    """No package, module or extension ``pyfw_rs`` is importable from the root."""
    assert importlib.machinery.PathFinder.find_spec("pyfw_rs", [str(REPO)]) is None, (
        f"{REPO} holds something importable as pyfw_rs (a leftover of the old layout? remove it): "
        f"{sorted(p.name for p in REPO.glob('pyfw_rs*'))}")
    assert sorted(REPO.glob("pyfw_rs*")) == []


def test_python_part_of_pyfw_rs_is_in_python_source() -> None:
    """pyproject.toml builds ``pyfw_rs._native`` into ``python/pyfw_rs`` and ships ``pyfw`` from the root."""
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert 'module-name = "pyfw_rs._native"' in text and 'python-source = "python"' in text
    assert '"pyfw/**/*.py"' in text and '"pyfw/**/py.typed"' in text
    assert (REPO / "python" / "pyfw_rs" / "__init__.py").is_file()
    assert (REPO / "python" / "pyfw_rs" / "_native.pyi").is_file()
    assert not (REPO / "python" / "pyfw").exists(), "pyfw stays at the root only"


def _maturin() -> str:
    """The maturin next to this interpreter (``make`` installs it into .venv), or on PATH."""
    here = Path(sys.executable).parent / "maturin"
    found = str(here) if here.exists() else shutil.which("maturin")
    if found is None:
        pytest.skip("maturin is not installed")
    return found


@pytest.mark.slow
def test_installed_wheel_runs_from_the_root(tmp_path: Path) -> None:
    """Build the wheel, check what it holds, install it (no network) and run pyfw_rs from the root."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    build = subprocess.run([_maturin(), "build", "--release", "--quiet", "-o", str(tmp_path / "dist")],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {p.relative_to(REPO).as_posix() for p in (REPO / "pyfw").rglob("*.py")}
    sources |= {"pyfw/py.typed"}
    sources |= {p.relative_to(REPO).as_posix() for p in (REPO / "pyfw" / "playground" / "static").iterdir()}
    sources |= {"pyfw_rs/" + p.relative_to(REPO / "python" / "pyfw_rs").as_posix()
                for p in (REPO / "python" / "pyfw_rs").rglob("*")
                if p.suffix in (".py", ".pyi", ".typed")}
    assert sources <= names, sources - names
    assert any(n.startswith("pyfw_rs/_native") for n in names)
    assert not any("__pycache__" in n for n in names)
    entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "pyfw=pyfw.cli:main" in zipfile.ZipFile(wheel).read(entry).decode().replace(" ", "")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    pip = subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", str(wheel)],
                         env=env, capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr

    where = subprocess.run([str(py), "-c", "import pyfw_rs; print(pyfw_rs._native.__file__)"],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert where.returncode == 0 and str(venv) in where.stdout, where.stderr
    train = subprocess.run([str(py), "-m", "pyfw", "train", "--backend", "rs", "--epochs", "2",
                            "--n-train", "50", "--n-test", "50"],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert train.returncode == 0 and "test error" in train.stdout, train.stderr
    bench = subprocess.run([str(py), "bench/bench.py", "--cases", "seed", "--only", "fit", "--repeat", "1",
                            "--epoch-scale", "0.02", "--no-count"],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert bench.returncode == 0, bench.stderr
    assert "pyfw_rs: " in bench.stdout and "pyfw_rs is not importable" not in bench.stdout, bench.stdout

    _serve_the_playground(venv / ("Scripts" if os.name == "nt" else "bin") / "pyfw", tmp_path, env)


def _serve_the_playground(pyfw: Path, folder: Path, env: dict) -> None:
    """``pyfw playground`` from the venv, started in ``folder`` (no checkout in sight): it serves
    the wheel's copy of the page, byte for byte the checkout's, and trains a run."""
    proc = subprocess.Popen([str(pyfw), "playground", "--port", "0", "--backend", "rs"], cwd=folder, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "pyfw playground on pyfw_rs: http://127.0.0.1:" in line, (line, proc.stderr.read())
        port = int(line.split()[-4].rstrip("/").rsplit(":", 1)[1])

        def call(method: str, path: str, body: object = None) -> tuple:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request(method, path, body=None if body is None else json.dumps(body).encode())
            res = conn.getresponse()
            data = res.read()
            conn.close()
            return res.status, data

        static = REPO / "pyfw" / "playground" / "static"
        assert call("GET", "/") == (200, (static / "index.html").read_bytes())
        for f in static.iterdir():
            assert call("GET", "/static/" + f.name) == (200, f.read_bytes()), f.name
        status, data = call("POST", "/api/run", {"settings": {"dataset": "circle", "points": "100"}})
        assert status == 200, data
        key = json.loads(data)["id"]
        status, data = call("POST", f"/api/run/{key}", {"action": "step"})
        assert status == 200 and json.loads(data)["epoch"] == 1, data
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130, proc.stderr.read()
