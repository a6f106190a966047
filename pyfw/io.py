"""Saving and loading state dicts as JSON, written atomically.

JSON keeps every float exactly: Python writes the shortest repr that reads back
to the same bits. The file holds ``{"format": "pyfw.state_dict", "version": 1,
"tensors": {name: {"shape": [...], "data": nested list}}}``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from typing import Any, Optional

FORMAT = "pyfw.state_dict"
VERSION = 1


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=folder)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save(state_dict: dict, path: str) -> None:
    """Write a state dict (values are tensors of either backend, or nested lists) to ``path``."""
    if not isinstance(state_dict, dict):
        raise TypeError(f"save: expected a dict, got {type(state_dict).__name__}")
    tensors = {}
    for name, value in state_dict.items():
        if not isinstance(name, str):
            raise TypeError(f"save: keys must be strings, got {type(name).__name__}")
        data = value.tolist() if hasattr(value, "tolist") else value
        shape = _shape_of(data)
        if shape is None:
            raise ValueError(f"save: {name!r} is not a non-empty 1-D or 2-D array of finite numbers")
        tensors[name] = {"shape": shape, "data": data}
    text = json.dumps({"format": FORMAT, "version": VERSION, "tensors": tensors})
    write_atomic(path, text)


def load(path: str) -> dict:
    """Read a state dict written by :func:`save`: ``{name: nested list}``.

    Raises ``ValueError`` naming the file for anything that is not such a file.
    """
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"load: {path} is not a pyfw state dict file ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"load: {path} is not a pyfw state dict file")
    if doc.get("version") != VERSION:
        raise ValueError(f"load: {path} has version {doc.get('version')!r}, this pyfw reads {VERSION}")
    tensors = doc.get("tensors")
    if not isinstance(tensors, dict):
        raise ValueError(f"load: {path} has no tensors table")
    out = {}
    for name, entry in tensors.items():
        if not isinstance(entry, dict) or "data" not in entry or "shape" not in entry:
            raise ValueError(f"load: {path}: entry {name!r} is malformed")
        shape = _shape_of(entry["data"])
        if shape is None:
            raise ValueError(f"load: {path}: entry {name!r} is not a non-empty 1-D or 2-D array of finite numbers")
        if shape != entry["shape"]:
            raise ValueError(f"load: {path}: entry {name!r} has data of shape {shape}, header says {entry['shape']}")
        out[name] = entry["data"]
    return out


def _shape_of(data: Any) -> Optional[list]:
    """``[n]`` or ``[rows, cols]`` for a non-empty, rectangular list of finite numbers, else None."""
    if not isinstance(data, list) or not data:
        return None
    if isinstance(data[0], list):
        width = len(data[0])
        if width == 0:
            return None
        for r in data:
            if not isinstance(r, list) or len(r) != width or not all(_finite(v) for v in r):
                return None
        return [len(data), width]
    return [len(data)] if all(_finite(v) for v in data) else None


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
