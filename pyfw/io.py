"""Saving and loading state dicts as JSON, written atomically.

JSON keeps every float exactly: Python writes the shortest repr that reads back
to the same bits. The file holds ``{"format": "pyfw.state_dict", "version": 1,
"tensors": {name: {"shape": [...], "data": nested list}}}``.
"""

from __future__ import annotations

import json
import os

from .tensor import _parse

FORMAT = "pyfw.state_dict"
VERSION = 1


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a new temporary file in the same folder and a rename.

    The temporary file gets the usual permissions (0o666 less the umask). After
    the rename the folder is synced too, where the system allows it.
    """
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.{os.urandom(6).hex()}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
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
    _sync_folder(folder)


def _sync_folder(folder: str) -> None:
    try:
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def save(state_dict: dict, path: str) -> None:
    """Write a state dict (values are tensors of either backend, or nested lists) to ``path``.

    Every value is checked as ``tensor()`` checks its data before anything is written.
    """
    if not isinstance(state_dict, dict):
        raise TypeError(f"save: expected a dict, got {type(state_dict).__name__}")
    tensors = {}
    for name, value in state_dict.items():
        if not isinstance(name, str):
            raise TypeError(f"save: keys must be strings, got {type(name).__name__}")
        rows, shape = _parse(value, f"save[{name!r}]")
        tensors[name] = {"shape": list(shape), "data": rows[0] if len(shape) == 1 else rows}
    text = json.dumps({"format": FORMAT, "version": VERSION, "tensors": tensors})
    write_atomic(path, text)


def load(path: str) -> dict:
    """Read a state dict written by :func:`save`: ``{name: nested list}``.

    Raises ``ValueError`` naming the file for anything that is not such a file.
    """
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"load: {path} is not a pyfw state dict file ({type(e).__name__}: {e})") from None
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
        try:
            _, shape = _parse(entry["data"], f"load: {path}: entry {name!r}")
        except TypeError as e:
            raise ValueError(str(e)) from None
        if list(shape) != entry["shape"]:
            raise ValueError(f"load: {path}: entry {name!r} has data of shape {list(shape)}, "
                             f"header says {entry['shape']}")
        out[name] = entry["data"]
    return out
