"""The README's usage example runs as written, and prints the same with both backends."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType


def run_usage(repo_root: Path, module: str, cwd: Path) -> str:
    """Run the python block under '## Usage' with ``import {module} as fw``; return its output."""
    text = (repo_root / "README.md").read_text(encoding="utf-8")
    m = re.search(r"## Usage\n\n```python\n(.*?)```", text, re.S)
    assert m, "README.md has no python block under '## Usage'"
    code = m.group(1).replace("import pyfw as fw", f"import {module} as fw")
    cwd.mkdir()
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={"PYTHONPATH": str(repo_root)})
    assert proc.returncode == 0, proc.stderr
    assert (cwd / "model.json").exists()
    return proc.stdout


def test_usage_example_runs(fw: ModuleType, repo_root: Path, tmp_path: Path) -> None:
    out = run_usage(repo_root, fw.__name__, tmp_path / fw.__name__)
    error = float(out.strip().splitlines()[-1])
    assert 0.0 <= error < 0.2, f"error rate after 10 epochs: {error}"
    if fw.__name__ != "pyfw":
        assert out == run_usage(repo_root, "pyfw", tmp_path / "pyfw")


def test_license_and_layout(repo_root: Path) -> None:
    """The LICENSE file holds the license pyproject names, and the README's layout names every doc."""
    license_text = (repo_root / "LICENSE").read_text(encoding="utf-8")
    assert license_text.startswith("MIT License") and "the pyfw authors" in license_text
    assert 'license = { text = "MIT" }' in (repo_root / "pyproject.toml").read_text(encoding="utf-8")
    readme = (repo_root / "README.md").read_text(encoding="utf-8")
    layout = readme[readme.index("## Layout"):]
    for doc in sorted((repo_root / "docs").glob("*.md")):
        assert doc.name in layout, doc.name
    assert "LICENSE" in layout


def test_custom_module_example_runs_the_same_in_both_backends(repo_root: Path, tmp_path: Path) -> None:
    """The python block under '## Custom modules' runs (gradcheck, fit) and prints the same bits in both backends."""
    text = (repo_root / "README.md").read_text(encoding="utf-8")
    m = re.search(r"## Custom modules\n.*?```python\n(.*?)```", text, re.S)
    assert m, "README.md has no python block under '## Custom modules'"
    outs = []
    for module in ("pyfw", "pyfw_rs"):
        code = m.group(1).replace("import pyfw as fw", f"import {module} as fw")
        proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                              timeout=300, env={"PYTHONPATH": str(repo_root)})
        assert proc.returncode == 0, proc.stderr
        outs.append(proc.stdout)
    assert outs[0].splitlines()[0] == "['0.weight', '0.bias', '1.scale', '1.fc1.weight']"
    assert outs[0] == outs[1]
