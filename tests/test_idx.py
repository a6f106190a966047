"""``fw.data.read_idx``: MNIST's IDX files, plain and gzip-compressed, in both backends."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from types import ModuleType

import pytest

from fwtest import hexes, th


def idx(code: int, dims: list, fmt: str, values: list) -> bytes:
    """An IDX file by hand: magic, big-endian sizes, big-endian values."""
    return (bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
            + struct.pack(f">{len(values)}{fmt}", *values))


IMAGES = idx(0x08, [2, 2, 3], "B", [0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255])
LABELS = idx(0x08, [4], "B", [7, 0, 9, 1])


@pytest.mark.parametrize("gz", [False, True])
def test_images_and_labels(fw: ModuleType, gz: bool, tmp_path: Path) -> None:
    suffix = ".gz" if gz else ""
    images, labels = tmp_path / f"images-idx3-ubyte{suffix}", tmp_path / f"labels-idx1-ubyte{suffix}"
    images.write_bytes(gzip.compress(IMAGES) if gz else IMAGES)
    labels.write_bytes(gzip.compress(LABELS) if gz else LABELS)
    x = fw.data.read_idx(images)
    assert isinstance(x, fw.Tensor) and tuple(x.shape) == (2, 2, 3)
    assert th(x) == hexes([[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], [[250.0, 251.0, 252.0], [253.0, 254.0, 255.0]]])
    y = fw.data.read_idx(str(labels))
    assert y == [7, 0, 9, 1] and all(type(v) is int for v in y)


def test_other_types(fw: ModuleType, tmp_path: Path) -> None:
    for code, fmt, vals in ((0x09, "b", [-3, 4]), (0x0B, "h", [-300, 2]), (0x0C, "i", [-70000, 1]),
                            (0x0D, "f", [0.5, -2.25]), (0x0E, "d", [0.1, -1e300])):
        path = tmp_path / f"t{code}"
        path.write_bytes(idx(code, [1, 2], fmt, vals))
        assert th(fw.data.read_idx(path)) == hexes([[float(v) for v in vals]])
    path = tmp_path / "f1"
    path.write_bytes(idx(0x0E, [2], "d", [0.25, 3.0]))
    assert th(fw.data.read_idx(path)) == hexes([0.25, 3.0])  # a 1-D float file is a tensor


CORRUPT = {
    "empty": b"",
    "bad-magic": b"\x01\x00\x08\x01" + IMAGES[4:],
    "bad-type": b"\x00\x00\x07\x01" + IMAGES[4:],
    "no-dims": b"\x00\x00\x08\x00",
    "short-sizes": IMAGES[:10],
    "zero-size": idx(0x08, [0, 3], "B", []),
    "truncated": IMAGES[:-1],
    "trailing": IMAGES + b"\x00",
    "huge-sizes": bytes([0, 0, 8, 3]) + struct.pack(">3I", 2**32 - 1, 2**32 - 1, 2**32 - 1) + b"\x00" * 16,
    "not-finite": idx(0x0D, [1, 1], "f", [float("nan")]),
}


@pytest.mark.parametrize("name", list(CORRUPT))
@pytest.mark.parametrize("gz", [False, True])
def test_corrupt_file_is_a_value_error_naming_it(fw: ModuleType, name: str, gz: bool, tmp_path: Path) -> None:
    path = tmp_path / f"{name}-idx{'.gz' if gz else ''}"
    path.write_bytes(gzip.compress(CORRUPT[name]) if gz else CORRUPT[name])
    with pytest.raises(ValueError) as e:
        fw.data.read_idx(path)
    assert str(path) in str(e.value)


def test_not_gzip_is_a_value_error(fw: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "images.gz"
    path.write_bytes(IMAGES)
    with pytest.raises(ValueError, match="images.gz.*gzip"):
        fw.data.read_idx(path)
