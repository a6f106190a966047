"""Data sets with native kernels: the disk task and one-hot encoding (see ``pyfw.data``)."""

from ._native import DISK_RADIUS2, disk, one_hot

__all__ = ["DISK_RADIUS2", "disk", "one_hot"]
