"""Helpers shared by the test modules: bit-exact views of tensors and models."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from pyfw import task


def hexes(v: Any) -> Any:
    """Nested lists of floats (or a float) as the same nesting of ``float.hex`` strings.

    This is the bit-identity of docs/NUMERICS.md ("NaN"): two floats compare equal
    when they have the same bits, or when both are NaN (``float.hex`` writes every
    NaN as ``"nan"``, whatever its sign and payload); ``0.0`` and ``-0.0`` differ.
    Every bit comparison of results goes through it (``th``, ``state_hex``, ``sd_hex``).
    """
    if isinstance(v, (list, tuple)):
        return [hexes(x) for x in v]
    if isinstance(v, float):
        return v.hex()
    return v


def th(t: Any) -> Any:
    """A tensor of either backend as nested ``float.hex`` strings."""
    return hexes(t.tolist())


def state_hex(model: Any) -> dict:
    """``model.state_dict()`` with every value as nested ``float.hex`` strings."""
    return sd_hex(model.state_dict())


def sd_hex(sd: dict) -> dict:
    """A state dict (tensors or nested lists) with every value as nested ``float.hex`` strings."""
    return {k: hexes(v.tolist() if hasattr(v, "tolist") else v) for k, v in sd.items()}


def seed_model(fw: ModuleType, seed: int = 0) -> Any:
    """The seed task's 2-25-25-25-2 ReLU network, initialised from ``Generator(seed)``."""
    return task.make_model(fw, fw.Generator(seed))
