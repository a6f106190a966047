"""The convolution family for pyfw_rs: the classes of :mod:`pyfw.conv`, written once there,
bound to the native ``_SpatialLayer``: its ``forward`` and ``backward`` run the layer in Rust
(rust/conv_layers.rs, over the kernels of rust/conv.rs) through the stack runner, so a native
``Sequential`` and the native epoch of ``fit`` run these layers without calling back into Python.
``_native_kind`` names the member for the native side. They are lines of the layer table
(``layer_table!`` in rust/modules.rs), which ``pyfw_rs.LAYERS`` lists."""

from __future__ import annotations

from pyfw import conv as _conv

from . import _native

_Native = _native._SpatialLayer


class Conv2d(_conv._ConvBase, _Native):
    """:class:`pyfw.Conv2d` with its loops in Rust, bit-identical."""

    _native_kind = "Conv2d"
    forward = _Native.forward
    backward = _Native.backward


class Conv1d(_conv._ConvBase, _Native):
    """:class:`pyfw.Conv1d` with its loops in Rust, bit-identical."""

    _dims = 1
    _native_kind = "Conv1d"
    forward = _Native.forward
    backward = _Native.backward


class MaxPool2d(_conv._MaxPoolBase, _Native):
    """:class:`pyfw.MaxPool2d` with its loops in Rust, bit-identical."""

    _native_kind = "MaxPool2d"
    forward = _Native.forward
    backward = _Native.backward


class AvgPool2d(_conv._AvgPoolBase, _Native):
    """:class:`pyfw.AvgPool2d` with its loops in Rust, bit-identical."""

    _native_kind = "AvgPool2d"
    forward = _Native.forward
    backward = _Native.backward


class ConvTranspose2d(_conv._ConvTransposeBase, _Native):
    """:class:`pyfw.ConvTranspose2d` with its loops in Rust, bit-identical."""

    _native_kind = "ConvTranspose2d"
    forward = _Native.forward
    backward = _Native.backward


class Upsample(_conv._UpsampleBase, _Native):
    """:class:`pyfw.Upsample` with its loops in Rust, bit-identical."""

    _native_kind = "Upsample"
    forward = _Native.forward
    backward = _Native.backward
