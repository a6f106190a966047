"""The convolution family for pyfw_rs: the classes of :mod:`pyfw.conv`, written once there,
bound to the native ``Module`` and to the Rust kernels of rust/conv.rs."""

from __future__ import annotations

from pyfw import conv as _conv

from . import _native

_KERNELS = (_native._conv2d_forward, _native._conv2d_backward)


class Conv2d(_conv._ConvBase, _native.Module):
    """:class:`pyfw.Conv2d` with its loops in Rust, bit-identical."""

    _kernels = _KERNELS


class Conv1d(_conv._ConvBase, _native.Module):
    """:class:`pyfw.Conv1d` with its loops in Rust, bit-identical."""

    _dims = 1
    _kernels = _KERNELS


class MaxPool2d(_conv._MaxPoolBase, _native.Module):
    """:class:`pyfw.MaxPool2d` with its loops in Rust, bit-identical."""

    _kernels = (_native._max_pool2d_forward, _native._max_pool2d_backward)


class AvgPool2d(_conv._AvgPoolBase, _native.Module):
    """:class:`pyfw.AvgPool2d` with its loops in Rust, bit-identical."""

    _kernels = (_native._avg_pool2d_forward, _native._avg_pool2d_backward)


class ConvTranspose2d(_conv._ConvTransposeBase, _native.Module):
    """:class:`pyfw.ConvTranspose2d` with its loops in Rust, bit-identical."""

    _kernels = (_native._conv_transpose2d_forward, _native._conv_transpose2d_backward)


class Upsample(_conv._UpsampleBase, _native.Module):
    """:class:`pyfw.Upsample` with its loops in Rust, bit-identical."""

    _kernels = (_native._upsample_nearest2d_forward, _native._upsample_nearest2d_backward)


CONV: dict = {cls.__name__: cls for cls in (Conv1d, Conv2d, ConvTranspose2d, MaxPool2d, AvgPool2d, Upsample)}
"""The members of the convolution family, by class name."""
