"""The module tree's Python part for pyfw_rs: ``Parameter`` and ``ModuleList``, written once
in :mod:`pyfw.modules` and bound here to the native ``Module`` and ``Tensor``."""

from __future__ import annotations

from pyfw import modules as _modules

from . import _native


class Parameter(_modules.Parameter):
    """:class:`pyfw.modules.Parameter` for pyfw_rs tensors: ``Parameter(t)`` is ``t`` with a
    zero ``.grad`` of its shape (pyfw_rs's ``Tensor`` is a native class, not subclassed)."""

    _backend = "pyfw_rs"

    @staticmethod
    def _tensor_type() -> type:
        return _native.Tensor


class ModuleList(_modules._ModuleListBase, _native.Module):
    """A list of modules, registered as children ``"0"``, ``"1"``, ... (as ``torch.nn.ModuleList``):
    ``append``, ``extend``, ``insert``, ``len``, indexing, slicing and iteration."""
