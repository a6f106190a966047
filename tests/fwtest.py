"""Helpers shared by the test modules: bit-exact views of tensors and models, and an example of
each member of the layer table with its input."""

from __future__ import annotations

import inspect
from types import ModuleType
from typing import Any

import pyfw
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


# ---- the layer family's members, from its table ------------------------------------------

EXAMPLE_ARGS: dict = {
    "Unflatten": {"dim": -1, "unflattened_size": (3,)},
    "Conv1d": {"stride": 2, "padding": 1},
    "Conv2d": {"stride": (2, 1), "padding": 1, "dilation": (1, 2)},
    "ConvTranspose2d": {"stride": 2, "padding": 1, "output_padding": 1},
    "MaxPool2d": {"stride": 2, "padding": 1},
    "AvgPool2d": {"stride": 2, "padding": 1},
    "Upsample": {"scale_factor": 2},
}
"""Arguments of :func:`example` other than 3: an Unflatten of the last of 3 columns into itself,
and arguments off the defaults for the convolution family."""

SAMPLES: dict = {
    "BatchNorm2d": (3, 2, 2),
    "Conv1d": (3, 5),
    "Conv2d": (3, 4, 4),
    "ConvTranspose2d": (3, 2, 2),
    "MaxPool2d": (3, 4, 4),
    "AvgPool2d": (3, 4, 4),
    "Upsample": (3, 2, 2),
}
"""The shape of one input sample of a member that takes more than a row of 3 values: 3 channels
first. The others take rows of 3."""


def example(fw: ModuleType, name: str) -> Any:
    """Member ``name`` of ``fw.LAYERS``, its required arguments 3 (or :data:`EXAMPLE_ARGS`) and a
    fixed generator if it takes one."""
    kw: dict = dict(EXAMPLE_ARGS.get(name, {}))
    for p in inspect.signature(pyfw.LAYERS[name]).parameters.values():
        if p.default is p.empty and p.kind is p.POSITIONAL_OR_KEYWORD:
            kw.setdefault(p.name, 3)
        elif p.name == "generator":
            kw[p.name] = fw.Generator(7)
    return fw.LAYERS[name](**kw)


def shaped(fw: ModuleType, name: str, rows: list) -> Any:
    """The input member ``name`` takes for ``rows`` (one row of channel values per sample): the
    rows themselves, or for a member of :data:`SAMPLES` each value ``v`` spread over a plane (or
    line) of the sample's size, no two values of a plane alike (a maximum is never a tie)."""
    spatial = SAMPLES.get(name, (0,))[1:]
    if not spatial:
        return fw.tensor(rows)
    size = 1
    for s in spatial:
        size *= s

    def plane(v: float) -> list:
        flat = [v * (1.0 + 0.25 * k) + 0.1 * k * (-1) ** k for k in range(size)]
        for s in reversed(spatial[1:]):
            flat = [flat[i:i + s] for i in range(0, len(flat), s)]
        return flat

    return fw.tensor([[plane(v) for v in r] for r in rows])


def around(fw: ModuleType, name: str, generator: Any = None) -> tuple:
    """The layers before and after member ``name`` (:func:`example`) inside a network of rows of 3
    values: nothing, or for a member of :data:`SAMPLES` a Linear and an Unflatten to its sample's
    shape before, and a Flatten and a Linear back to 3 values after (drawn from ``generator``)."""
    sample = SAMPLES.get(name)
    if sample is None:
        return [], []
    size = 1
    for s in sample:
        size *= s
    out = example(fw, name)(fw.zeros(2, *sample)).numel() // 2
    return ([fw.Linear(3, size, generator=generator), fw.Unflatten(1, sample)],
            [fw.Flatten(), fw.Linear(out, 3, generator=generator)])
