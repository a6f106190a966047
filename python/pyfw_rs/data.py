"""Data sets with native kernels: the disk task and one-hot encoding (see ``pyfw.data``);
``TensorDataset`` and ``DataLoader`` are pyfw's, written once for both backends."""

from pyfw.data import DataLoader, TensorDataset

from ._native import DISK_RADIUS2, disk, one_hot

__all__ = ["DISK_RADIUS2", "DataLoader", "TensorDataset", "disk", "one_hot"]
