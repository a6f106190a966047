"""pyfw gives the same bits on every CPython it supports (no version-dependent float sums).

Runs the CLI under each other interpreter it finds (python3.9 ... python3.13, on
PATH or under ~/.pyenv/versions) and compares its epoch losses and final weights
with this interpreter's run. Interpreters that are not installed are skipped.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest

from fwtest import hexes
from pyfw import cli, io

ARGS = ["--epochs", "3", "--n-train", "120", "--n-test", "40", "--batch-size", "40", "--seed", "3"]
VERSIONS = ["3.9", "3.10", "3.11", "3.12", "3.13"]


def find_python(version: str) -> Optional[str]:
    """A working ``python{version}`` executable, or None."""
    candidates = [shutil.which(f"python{version}")]
    candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python{version}")))
    for exe in candidates:
        if exe and subprocess.run([exe, "-S", "-c", "pass"], capture_output=True, timeout=30).returncode == 0:
            return exe
    return None


@pytest.mark.parametrize("version", VERSIONS)
def test_same_bits_on_other_pythons(version: str, repo_root: Path, tmp_path: Path) -> None:
    exe = find_python(version)
    if exe is None:
        pytest.skip(f"python{version} is not installed")
    out, state = tmp_path / "run.json", tmp_path / "model.safetensors"
    proc = subprocess.run([exe, "-S", "-m", "pyfw", "train", *ARGS, "--quiet", "--json", str(out), "--save", str(state)],
                          cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    theirs = json.loads(out.read_text())
    mine = cli.run("py", epochs=3, n_train=120, n_test=40, batch_size=40, seed=3)
    assert hexes(theirs["losses"]) == hexes(mine["losses"]), f"python{version} vs python{sys.version_info[:2]}"
    assert theirs["test_error"] == mine["test_error"]
    theirs_sd = {k: v.tolist() for k, v in io.load_safetensors(str(state)).items()}
    assert hexes(theirs_sd) == hexes({k: v.tolist() for k, v in mine["model"].state_dict().items()})
