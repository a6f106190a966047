"""The activation family with native kernels (see ``pyfw.activations``): ``ACTIVATIONS``,
its members, and their base class ``Activation``."""

from . import _native
from ._native import Activation

ACTIVATIONS: dict = {name: getattr(_native, name) for name in _native.ACTIVATIONS}
"""The members of the family, by class name, in the table order of rust/activations.rs."""

globals().update(ACTIVATIONS)
