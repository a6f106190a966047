"""Shared fixtures: the ``fw`` fixture runs API-level tests on every backend.

``fw`` is parametrised over ``"py"`` (the pure-Python ``pyfw``) and ``"rs"``
(the Rust twin ``pyfw_rs``). When ``pyfw_rs`` cannot be imported its tests are
skipped, unless the environment sets ``PYFW_REQUIRE_RS=1``, in which case they
fail (``make test`` sets it, so a missing native build never passes silently).
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# Let ``pytest`` run from a bare checkout (pyfw needs nothing installed).
try:
    import pyfw  # noqa: F401
except ImportError:  # pragma: no cover - depends on how pytest was started
    sys.path.insert(0, str(REPO_ROOT))

BACKENDS = ["py", "rs"]
MODULE_OF = {"py": "pyfw", "rs": "pyfw_rs"}


def load_backend(name: str) -> ModuleType:
    """Import the backend ``name``; skip (or fail under PYFW_REQUIRE_RS=1) if it is missing."""
    try:
        return importlib.import_module(MODULE_OF[name])
    except ImportError as e:
        if name == "py" or os.environ.get("PYFW_REQUIRE_RS") == "1":
            pytest.fail(f"cannot import {MODULE_OF[name]}: {e}", pytrace=False)
        pytest.skip(f"{MODULE_OF[name]} is not built ({e}); set PYFW_REQUIRE_RS=1 to make this an error")


@pytest.fixture(params=BACKENDS)
def fw(request: pytest.FixtureRequest) -> ModuleType:
    """The framework under test: ``pyfw`` or ``pyfw_rs``."""
    return load_backend(request.param)


@pytest.fixture
def repo_root() -> Path:
    """The repository root (the folder that holds ``pyfw/``)."""
    return REPO_ROOT
