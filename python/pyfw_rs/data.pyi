from pyfw.data import DataLoader as DataLoader, TensorDataset as TensorDataset

from ._native import DISK_RADIUS2 as DISK_RADIUS2, disk as disk, one_hot as one_hot
