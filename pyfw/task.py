"""The seed task: the disk data set and the 2-25-25-25-2 network, for either backend.

Draw order from one ``Generator(seed)``: the training set, then the test set
(``data.disk``), then the four Linear layers in order (weight, then bias), then
one ``randperm`` per epoch.

The inputs are standardized before training with the fixed map
``x -> (x - 0.5) * sqrt(12.0)``, which gives the uniform distribution on [0, 1]
zero mean and unit variance; the labels stay those of the raw points. Centred
inputs let the ReLU units split the square around the disk from the first
epoch, and halve the test error of the 150-epoch run.
"""

from __future__ import annotations

import math
from typing import Any

ACTIVATIONS = ("relu", "tanh")
SCALE = math.sqrt(12.0)
DEFAULTS = {"epochs": 150, "batch_size": 10, "lr": 0.1, "activation": "relu", "seed": 0,
            "n_train": 1000, "n_test": 1000}


def make_data(fw: Any, g: Any, n_train: int = 1000, n_test: int = 1000) -> tuple:
    """``(x_train, labels_train, x_test, labels_test)`` from ``fw.data.disk``, inputs standardized."""
    x_train, y_train = fw.data.disk(n_train, generator=g)
    x_test, y_test = fw.data.disk(n_test, generator=g)
    return standardize(fw, x_train), y_train, standardize(fw, x_test), y_test


def standardize(fw: Any, x: Any) -> Any:
    """``(v - 0.5) * sqrt(12.0)`` for every element, in Python, as a new ``fw`` tensor."""
    return fw.tensor([[(v - 0.5) * SCALE for v in row] for row in x.tolist()])


def make_model(fw: Any, g: Any, activation: str = "relu", hidden: int = 25) -> Any:
    """2 inputs, three hidden layers of ``hidden`` units with ``activation``, 2 outputs."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"make_model: activation must be one of {ACTIVATIONS}, got {activation!r}")
    act = fw.ReLU if activation == "relu" else fw.Tanh
    return fw.Sequential(
        fw.Linear(2, hidden, generator=g), act(),
        fw.Linear(hidden, hidden, generator=g), act(),
        fw.Linear(hidden, hidden, generator=g), act(),
        fw.Linear(hidden, 2, generator=g),
    )
