"""Data sets with native kernels: the disk task and one-hot encoding (see ``pyfw.data``);
Playground's data sets, ``features``, ``TensorDataset`` and ``DataLoader`` are pyfw's,
written once for both backends, with pyfw_rs as the backend of the tensors they build
when nothing else says."""

import sys
from typing import Any, Optional

from pyfw import data as _data
from pyfw.data import CLASSIFICATION_SETS, FEATURES, REGRESSION_SETS, features

from . import _native
from ._native import DISK_RADIUS2, Generator, disk, one_hot, tensor


def _points(name: str, n: int, noise: float, generator: Optional[Generator], classes: int = 2) -> tuple:
    """``pyfw.data.playground_points`` drawn from a pyfw_rs generator, as a pyfw_rs tensor and labels."""
    if generator is None:
        generator = _native.default_generator
    elif not isinstance(generator, Generator):
        raise TypeError(f"generator must be a pyfw_rs.Generator, got {type(generator).__name__}")
    rows, labels = _data.playground_points(name, n, noise, generator, classes)
    return tensor(rows), labels


def circle(n: int, noise: float = 0.0, generator: Optional[Generator] = None) -> tuple:
    """:func:`pyfw.data.circle` with pyfw_rs tensors and generator."""
    return _points("circle", n, noise, generator)


def xor(n: int, noise: float = 0.0, generator: Optional[Generator] = None) -> tuple:
    """:func:`pyfw.data.xor` with pyfw_rs tensors and generator."""
    return _points("xor", n, noise, generator)


def gauss(n: int, noise: float = 0.0, generator: Optional[Generator] = None) -> tuple:
    """:func:`pyfw.data.gauss` with pyfw_rs tensors and generator."""
    return _points("gauss", n, noise, generator)


def spiral(n: int, noise: float = 0.0, generator: Optional[Generator] = None, classes: int = 2) -> tuple:
    """:func:`pyfw.data.spiral` with pyfw_rs tensors and generator."""
    return _points("spiral", n, noise, generator, classes)


def moons(n: int, noise: float = 0.0, generator: Optional[Generator] = None) -> tuple:
    """:func:`pyfw.data.moons` with pyfw_rs tensors and generator."""
    return _points("moons", n, noise, generator)


def plane(n: int, noise: float = 0.0, generator: Optional[Generator] = None) -> tuple:
    """:func:`pyfw.data.plane` with pyfw_rs tensors and generator."""
    return _points("plane", n, noise, generator)


def gauss_regression(n: int, noise: float = 0.0, generator: Optional[Generator] = None) -> tuple:
    """:func:`pyfw.data.gauss_regression` with pyfw_rs tensors and generator."""
    return _points("gauss_regression", n, noise, generator)


class TensorDataset(_data.TensorDataset):
    """:class:`pyfw.data.TensorDataset`; nested lists and numpy arrays become pyfw_rs tensors."""

    _default_backend = "pyfw_rs"


class DataLoader(_data.DataLoader):
    """:class:`pyfw.data.DataLoader`; samples collate into pyfw_rs tensors when nothing else says."""

    _default_backend = "pyfw_rs"


__all__ = ["CLASSIFICATION_SETS", "DISK_RADIUS2", "DataLoader", "FEATURES", "REGRESSION_SETS", "TensorDataset",
           "circle", "denoise_pairs", "disk", "features", "gauss", "gauss_regression", "moons", "one_hot", "plane",
           "read_idx", "spiral", "xor"]


def denoise_pairs(n: int, size: int = 32, channels: int = 3, noise: float = 0.1,
                  generator: Optional[Generator] = None) -> tuple:
    """:func:`pyfw.data.denoise_pairs` with pyfw_rs tensors and generator, bit-identical."""
    if generator is None:
        generator = _native.default_generator
    elif not isinstance(generator, Generator):
        raise TypeError(f"data.denoise_pairs: generator must be a pyfw_rs.Generator, got {type(generator).__name__}")
    return _data._denoise_pairs(sys.modules["pyfw_rs"], n, size, channels, noise, generator)


def read_idx(path: Any) -> Any:
    """:func:`pyfw.data.read_idx`, with a pyfw_rs tensor for images."""
    return _data._read_idx(sys.modules["pyfw_rs"], path)
