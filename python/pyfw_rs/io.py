"""Files for pyfw_rs: ``pyfw.io``, written once, with pyfw_rs as the default backend.

Everything of :mod:`pyfw.io` is here under the same name. The readers that build
objects of a backend (:func:`load_model`, :func:`build_model`,
:func:`load_safetensors`) build pyfw_rs ones unless ``fw=`` says otherwise, so
``pyfw_rs.io.load_model(path)`` returns a pyfw_rs model, as
``pyfw.io.load_model(path)`` returns a pyfw one.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any, Optional

from pyfw import io as _io
from pyfw.io import PathLike


def _own(fw: Optional[ModuleType]) -> ModuleType:
    return sys.modules["pyfw_rs"] if fw is None else fw


def load_model(path: PathLike, fw: Optional[ModuleType] = None, model: Any = None) -> Any:
    """:func:`pyfw.io.load_model`, building a pyfw_rs model unless ``fw`` or ``model`` says otherwise."""
    return _io._load_model(path, fw, model, sys.modules["pyfw_rs"])


def build_model(metadata: dict, tensors: dict, fw: Optional[ModuleType] = None, source: str = "build_model") -> Any:
    """:func:`pyfw.io.build_model`, building a pyfw_rs model unless ``fw`` says otherwise."""
    return _io.build_model(metadata, tensors, _own(fw), source)


def load_safetensors(path: PathLike, fw: Optional[ModuleType] = None) -> dict:
    """:func:`pyfw.io.load_safetensors`, returning pyfw_rs tensors unless ``fw`` says otherwise."""
    return _io.load_safetensors(path, _own(fw))


def __getattr__(name: str) -> Any:
    """Every other name is pyfw.io's own."""
    try:
        return getattr(_io, name)
    except AttributeError:
        raise AttributeError(f"module 'pyfw_rs.io' has no attribute {name!r}") from None


def __dir__() -> list:
    return sorted(set(dir(_io)) | set(globals()))
