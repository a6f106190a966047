"""The seed task: the disk data set and the 2-25-25-25-2 network, for either backend.

Draw order from one ``Generator(seed)``: the training set, then the test set
(``data.disk``), then the four Linear layers in order (weight, then bias), then
one ``randperm`` per epoch.
"""

from __future__ import annotations

from typing import Any

ACTIVATIONS = ("relu", "tanh")
DEFAULTS = {"epochs": 150, "batch_size": 10, "lr": 0.1, "activation": "relu", "seed": 0,
            "n_train": 1000, "n_test": 1000}


def make_data(fw: Any, g: Any, n_train: int = 1000, n_test: int = 1000) -> tuple:
    """``(x_train, labels_train, x_test, labels_test)`` from ``fw.data.disk``."""
    x_train, y_train = fw.data.disk(n_train, generator=g)
    x_test, y_test = fw.data.disk(n_test, generator=g)
    return x_train, y_train, x_test, y_test


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
