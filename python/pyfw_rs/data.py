"""Data sets with native kernels: the disk task and one-hot encoding (see ``pyfw.data``);
``TensorDataset`` and ``DataLoader`` are pyfw's, written once for both backends, with
pyfw_rs as the backend of the tensors they build when nothing else says."""

from pyfw import data as _data

from ._native import DISK_RADIUS2, disk, one_hot


class TensorDataset(_data.TensorDataset):
    """:class:`pyfw.data.TensorDataset`; nested lists and numpy arrays become pyfw_rs tensors."""

    _default_backend = "pyfw_rs"


class DataLoader(_data.DataLoader):
    """:class:`pyfw.data.DataLoader`; samples collate into pyfw_rs tensors when nothing else says."""

    _default_backend = "pyfw_rs"


__all__ = ["DISK_RADIUS2", "DataLoader", "TensorDataset", "disk", "one_hot"]
