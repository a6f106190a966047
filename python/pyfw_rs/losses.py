"""The loss family with native kernels (see ``pyfw.losses``): ``LOSSES`` and its members."""

from . import _native

LOSSES: dict = {name: getattr(_native, name) for name in _native.LOSSES}
"""The members of the family, by class name, in the table order of rust/losses.rs."""

globals().update(LOSSES)
