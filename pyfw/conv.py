"""The convolution family: ``Conv1d``, ``Conv2d``, ``ConvTranspose2d``, ``MaxPool2d``,
``AvgPool2d`` and ``Upsample``, with torch's arguments, output sizes and init.

The classes are written once, for both backends (``_ConvBase`` holds them, as
``_ModuleListBase`` does for ``ModuleList``): their arguments, checks, init and
``repr``. Here ``forward`` and ``backward`` run the loops below; ``pyfw_rs`` replaces
them by those of its native ``_SpatialLayer``, which run the same loops in Rust
(rust/conv.rs, rust/conv_layers.rs) through its stack runner, so that a native
``Sequential`` and the native epoch of ``fit`` run these layers too. Every
output is a left fold in the order of docs/NUMERICS.md ("Conv2d and Conv1d",
"MaxPool2d and AvgPool2d"), so the two
backends agree bit for bit. ``Conv1d`` runs the 2-D kernel with a height of 1.

The members are lines of the layer table (``pyfw.modules.LAYERS``, ``layer_table!`` in
rust/modules.rs): model files, copies and the family's tests reach them from there.
"""

from __future__ import annotations

import math
import numbers
import sys
import threading
from typing import Any, Optional

from .error import NO_GRAD, check_size, check_thread, described, not_forwarded
from .generator import Generator
from .modules import Module, _types
from .tensor import Tensor, _flat, _from_flat, _reserve

Pair = tuple


def _span(off: int, stride: int, size: int, out: int) -> tuple:
    """The output positions ``lo..hi`` (of ``out``) whose input position
    ``pos * stride + off`` falls inside ``0..size``."""
    lo = -(off // stride) if off < 0 else 0  # ceil(-off / stride)
    last = size - 1 - off
    hi = last // stride + 1 if last >= 0 else 0
    lo, hi = min(lo, out), min(hi, out)
    return lo, max(lo, hi)


def _out_size(size: int, k: int, s: int, p: int, d: int) -> int:
    """torch's ``(size + 2 p - d (k - 1) - 1) // s + 1``; 0 or less when the kernel does not fit."""
    padded, span = size + 2 * p, d * (k - 1) + 1
    return (padded - span) // s + 1 if padded >= span else 0


def conv2d_forward(who: str, x: Tensor, weight: Tensor, bias: Optional[Tensor],
                   stride: Pair, padding: Pair, dilation: Pair) -> Tensor:
    """The convolution of ``x`` (N, C, H, W) by ``weight`` (O, C, kH, kW), or (O, C, kW) for a
    kernel of height 1 (``Conv1d``).

    ``y[n, o, i, j]``: a fold over ``(c, ki, kj)`` in row-major order of
    ``x[n, c, i*sh + ki*dh - ph, j*sw + kj*dw - pw] * w[o, c, ki, kj]``, starting at
    ``bias[o]`` (0.0 without a bias), skipping the terms in the padding."""
    N, C, H, W = x.shape
    O, KH, KW = weight.shape[0], *(weight.shape[2:] if weight.ndim == 4 else (1, weight.shape[2]))
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    oh, ow = _out_size(H, KH, sh, ph, dh), _out_size(W, KW, sw, pw, dw)
    _reserve(N * O * oh * ow, who)
    xf, wf = _flat(x), _flat(weight)
    bf = _flat(bias) if bias is not None else None
    y: list = []
    for n in range(N):
        for o in range(O):
            b0 = bf[o] if bf is not None else 0.0
            plane = [[b0] * ow for _ in range(oh)]
            for c in range(C):
                xbase = (n * C + c) * H * W
                for ki in range(KH):
                    offh = ki * dh - ph
                    i0, i1 = _span(offh, sh, H, oh)
                    for kj in range(KW):
                        wv = wf[((o * C + c) * KH + ki) * KW + kj]
                        offw = kj * dw - pw
                        j0, j1 = _span(offw, sw, W, ow)
                        for i in range(i0, i1):
                            start = xbase + (i * sh + offh) * W + j0 * sw + offw
                            xs = xf[start:start + (j1 - j0 - 1) * sw + 1:sw]
                            row = plane[i]
                            row[j0:j1] = [a + v * wv for a, v in zip(row[j0:j1], xs)]
            for row in plane:
                y.extend(row)
    return _from_flat(y, (N, O, oh, ow))


def conv2d_backward(who: str, grad: Tensor, x: Tensor, weight: Tensor, weight_grad: Tensor,
                    bias_grad: Optional[Tensor], stride: Pair, padding: Pair, dilation: Pair) -> Tensor:
    """Add ``dW`` and ``db`` into ``weight_grad`` and ``bias_grad``; return ``dx``.

    ``dW[o, c, ki, kj]`` and ``db[o]`` are folds over ``(n, i, j)`` in row-major order
    starting at the gradient already there; ``dx[n, c, h, w]`` is a fold over
    ``(o, ki, kj)`` in row-major order starting at 0.0 (docs/NUMERICS.md, "Conv2d")."""
    N, C, H, W = x.shape
    O, KH, KW = weight.shape[0], *(weight.shape[2:] if weight.ndim == 4 else (1, weight.shape[2]))
    geom = (N, C, H, W, O, KH, KW, stride, padding, dilation, grad.shape[2], grad.shape[3])
    gf = _flat(grad)
    if bias_grad is not None:
        _channel_sums(gf, N, grad.shape[2] * grad.shape[3], bias_grad)
    _weight_grad_into(geom, _flat(x), gf, weight_grad)
    return _from_flat(_input_grad(geom, _flat(weight), gf, None), x.shape)


def _channel_sums(t: list, n: int, plane: int, acc: Tensor) -> None:
    """Add to ``acc[o]``, for each channel ``o`` of ``t`` (``n`` samples of ``len(acc)`` channels
    of ``plane`` values), a fold over ``(n, position)`` in row-major order of its values."""
    gb = list(_flat(acc))
    ch = len(gb)
    for o in range(ch):
        a = gb[o]
        for s in range(n):
            base = (s * ch + o) * plane
            for v in t[base:base + plane]:
                a = a + v
        gb[o] = a
    acc._rows = [gb]  # new row lists, never changed in place (pyfw/tensor.py)


def _weight_grad_into(geom: tuple, xf: list, gf: list, weight_grad: Tensor) -> None:
    """``dW`` of :func:`conv2d_backward`, folded into ``weight_grad``."""
    N, C, H, W, O, KH, KW, (sh, sw), (ph, pw), (dh, dw), oh, ow = geom
    gw = list(_flat(weight_grad))
    for o in range(O):
        for c in range(C):
            for ki in range(KH):
                offh = ki * dh - ph
                i0, i1 = _span(offh, sh, H, oh)
                for kj in range(KW):
                    offw = kj * dw - pw
                    j0, j1 = _span(offw, sw, W, ow)
                    idx = ((o * C + c) * KH + ki) * KW + kj
                    acc = gw[idx]
                    for n in range(N):
                        xbase, gbase = (n * C + c) * H * W, (n * O + o) * oh * ow
                        for i in range(i0, i1):
                            start = xbase + (i * sh + offh) * W + j0 * sw + offw
                            xs = xf[start:start + (j1 - j0 - 1) * sw + 1:sw]
                            g0 = gbase + i * ow
                            for gv, xv in zip(gf[g0 + j0:g0 + j1], xs):
                                acc = acc + gv * xv
                    gw[idx] = acc
    weight_grad._rows = _from_flat(gw, weight_grad.shape)._rows


def _input_grad(geom: tuple, wf: list, gf: list, start_at: Optional[list]) -> list:
    """``dx`` of :func:`conv2d_backward` (flat); each ``dx[n, c]`` plane starts at ``start_at[c]``
    instead of 0.0 when given (the bias of ``ConvTranspose2d``, whose forward this is)."""
    N, C, H, W, O, KH, KW, (sh, sw), (ph, pw), (dh, dw), oh, ow = geom
    dx = [0.0] * (N * C * H * W)
    for n in range(N):
        for c in range(C):
            dbase = (n * C + c) * H * W
            if start_at is not None:
                dx[dbase:dbase + H * W] = [start_at[c]] * (H * W)
            for o in range(O):
                gbase = (n * O + o) * oh * ow
                for ki in range(KH):
                    offh = ki * dh - ph
                    i0, i1 = _span(offh, sh, H, oh)
                    for kj in range(KW):
                        wv = wf[((o * C + c) * KH + ki) * KW + kj]
                        offw = kj * dw - pw
                        j0, j1 = _span(offw, sw, W, ow)
                        if j0 == j1:
                            continue
                        for i in range(i0, i1):
                            start = dbase + (i * sh + offh) * W + j0 * sw + offw
                            stop = start + (j1 - j0 - 1) * sw + 1
                            g0 = gbase + i * ow
                            dx[start:stop:sw] = [a + gv * wv for a, gv in zip(dx[start:stop:sw], gf[g0 + j0:g0 + j1])]
    return dx


def conv_transpose2d_forward(who: str, x: Tensor, weight: Tensor, bias: Optional[Tensor],
                             stride: Pair, padding: Pair, out: Pair) -> Tensor:
    """The transposed convolution of ``x`` (N, in, H, W) by ``weight`` (in, out, kH, kW) to
    (N, out, oH, oW), ``out = (oH, oW)``: the input gradient of the ``Conv2d`` of weight
    ``weight`` from (N, out, oH, oW) to (N, in, H, W), for the output gradient ``x``, its planes
    starting at ``bias`` (docs/NUMERICS.md, "ConvTranspose2d")."""
    N, C, H, W = x.shape
    _, O, KH, KW = weight.shape
    geom = (N, O, out[0], out[1], C, KH, KW, stride, padding, (1, 1), H, W)
    _reserve(N * O * out[0] * out[1], who)
    start_at = list(_flat(bias)) if bias is not None else None
    return _from_flat(_input_grad(geom, _flat(weight), _flat(x), start_at), (N, O, *out))


def conv_transpose2d_backward(who: str, grad: Tensor, x: Tensor, weight: Tensor, weight_grad: Tensor,
                              bias_grad: Optional[Tensor], stride: Pair, padding: Pair) -> Tensor:
    """Add ``dW`` and ``db`` into the gradients and return ``dx`` for :func:`conv_transpose2d_forward`:
    ``db[o]`` a fold over ``(n, h, w)`` of ``grad``; ``dW`` and ``dx`` the ``Conv2d`` weight gradient
    and output for the input ``grad`` (docs/NUMERICS.md, "ConvTranspose2d")."""
    N, C, H, W = x.shape
    _, O, KH, KW = weight.shape
    oh, ow = grad.shape[2], grad.shape[3]
    geom = (N, O, oh, ow, C, KH, KW, stride, padding, (1, 1), H, W)
    gf, xf = _flat(grad), _flat(x)
    if bias_grad is not None:
        _channel_sums(gf, N, oh * ow, bias_grad)
    _weight_grad_into(geom, gf, xf, weight_grad)
    return conv2d_forward(who, grad, weight, None, stride, padding, (1, 1))


def upsample_nearest2d_forward(who: str, x: Tensor, scale: Pair) -> Tensor:
    """``y[n, c, h, w] = x[n, c, h // sH, w // sW]``."""
    sh, sw = scale
    _reserve(x.numel() * sh * sw, who)
    rows = []
    for r in x._rows:
        wide = [v for v in r for _ in range(sw)]
        rows.extend([list(wide) for _ in range(sh)])
    N, C, H, W = x.shape
    return Tensor._wrap(rows, (N, C, H * sh, W * sw))


def upsample_nearest2d_backward(who: str, grad: Tensor, shape: tuple, scale: Pair) -> Tensor:
    """``dx[n, c, i, j]``: a fold over ``(a, b)`` in row-major order of
    ``g[n, c, i sH + a, j sW + b]``, starting at 0.0."""
    sh, sw = scale
    W = shape[3]
    g = grad._rows
    rows = []
    for k in range(len(g) // sh):
        acc = [0.0] * W
        for a in range(sh):
            gr = g[k * sh + a]
            for b in range(sw):
                acc = [s + v for s, v in zip(acc, gr[b::sw])]
        rows.append(acc)
    return Tensor._wrap(rows, tuple(shape))


def _tuple(v: Any, n: int, who: str, what: str, positive: bool) -> tuple:
    """``v`` (an int, or a tuple or list of ``n`` ints) as a tuple of ``n`` ints."""
    items = (v,) * n if isinstance(v, numbers.Integral) and not isinstance(v, bool) else v
    if not isinstance(items, (tuple, list)):
        raise TypeError(f"{who}: {what} must be an int or a tuple of {n} ints, got {described(v)}")
    if len(items) != n:
        raise ValueError(f"{who}: {what} must be an int or a tuple of {n} ints, got {v!r}")
    out = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, numbers.Integral):
            raise TypeError(f"{who}: {what} must hold ints, got {described(item)}")
        if item < (1 if positive else 0):
            raise ValueError(f"{who}: {what} must be {'positive' if positive else 'non-negative'}, got {v!r}")
        out.append(int(item))
    return tuple(out)


def _file_arg(name: str, v: Any, dims: int) -> bool:
    """Whether ``v`` is argument ``name`` as a model file stores it: a positive count for the
    channels, a bool for ``bias``, ``"nearest"`` for ``mode``, else a list of ``dims`` sizes
    (non-negative for a padding, positive otherwise)."""
    def count(x: Any, least: int) -> bool:
        return isinstance(x, int) and not isinstance(x, bool) and least <= x < 2**31

    if name == "bias":
        return isinstance(v, bool)
    if name == "mode":
        return v == "nearest"
    if name in ("in_channels", "out_channels"):
        return count(v, 1)
    least = 0 if name in ("padding", "output_padding") else 1
    return isinstance(v, list) and len(v) == dims and all(count(x, least) for x in v)


class _Spatial:
    """What every member of the family shares: its backend, the check of its input, and its
    entries in the layer table (``pyfw.modules.LAYERS``)."""

    _dims = 2
    # The layer table's entries (see LAYERS). ``_file_version``: the model file version that
    # brought the family; a file that holds one of its members is written as that version.
    _params: tuple = ()
    _buffers: tuple = ()
    _file_version = "2"
    _weight_channels: tuple = ()

    @classmethod
    def _param_shapes(cls, **args: Any) -> dict:
        """The parameter slots and shapes, in ``state_dict`` order, that the arguments imply,
        given as a model file stores them: exactly :attr:`_params`, every one written, sizes as
        lists of ints (one per spatial dim). ``ValueError`` for anything else. A pooling and
        ``Upsample`` have no parameter."""
        if set(args) != set(cls._params):
            raise ValueError(f"must have exactly the arguments {list(cls._params)}, got {sorted(args)!r:.200}")
        for name in cls._params:
            if not _file_arg(name, args[name], cls._dims):
                raise ValueError(f"invalid {name}: {args[name]!r:.80}")
        if not cls._weight_channels:
            return {}
        shapes = {"weight": (*(args[a] for a in cls._weight_channels), *args["kernel_size"])}
        if args["bias"]:
            shapes["bias"] = (args["out_channels"],)
        return shapes

    def _fw(self) -> Any:
        """The namespace (``pyfw`` or ``pyfw_rs``) of this module's backend."""
        return sys.modules[_types(self)[2]]

    def _checked(self, x: Any, who: str, rank: int, layout: str, detail: str = "") -> Any:
        """``x`` as a tensor of this backend, refused unless of ``rank`` (``layout`` names its dims)."""
        if not isinstance(x, _types(self)[1]):
            x = self._fw().tensor(x)
        if x.ndim != rank:
            raise ValueError(f"{who}: expected a {rank}-D input {layout}{detail}, got shape {x.shape}")
        return x


class _ConvBase(_Spatial):
    """What ``Conv1d`` and ``Conv2d`` do, for the ``Module`` of either backend.

    ``weight`` has shape ``(out_channels, in_channels, *kernel_size)`` and ``bias``
    ``(out_channels,)``, drawn as torch does from U(-k, k) with ``k = 1 / sqrt(fan_in)``,
    ``fan_in = in_channels * prod(kernel_size)``: all of ``weight`` in row-major order,
    then ``bias``, from ``generator`` (the default generator when None), as ``Linear``.
    Gradients accumulate into ``weight.grad`` and ``bias.grad`` until ``zero_grad()``.
    """

    _forward_state = ("_input", "_out_shape", "_thread")
    _kernels: tuple = (conv2d_forward, conv2d_backward)
    _params = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "bias")
    _weight_channels = ("out_channels", "in_channels")

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", generator: Optional[Generator] = None) -> None:
        super().__init__()  # type: ignore[call-arg]
        who, d = type(self).__name__, self._dims
        self.in_channels = check_size(in_channels, who, "in_channels")
        self.out_channels = check_size(out_channels, who, "out_channels")
        self.kernel_size = _tuple(kernel_size, d, who, "kernel_size", True)
        self.stride = _tuple(stride, d, who, "stride", True)
        if isinstance(padding, str):
            raise ValueError(f"{who}: padding={padding!r} is not supported: give an int or a tuple of {d} ints")
        self.padding = _tuple(padding, d, who, "padding", False)
        self.dilation = _tuple(dilation, d, who, "dilation", True)
        if groups != 1:
            raise ValueError(f"{who}: groups={groups!r} is not supported (only groups=1)")
        if padding_mode != "zeros":
            raise ValueError(f"{who}: padding_mode={padding_mode!r} is not supported (only 'zeros')")
        if not isinstance(bias, bool):
            raise TypeError(f"{who}: bias must be a bool, got {type(bias).__name__}")
        self._draw((self.out_channels, self.in_channels, *self.kernel_size), bias, generator)
        self._input: Any = None  # the 4-D input, NO_GRAD (under no_grad) or None
        self._out_shape: Optional[tuple] = None

    def _draw(self, shape: tuple, bias: bool, generator: Optional[Generator]) -> None:
        """Draw ``weight`` of ``shape`` in row-major order, then ``bias`` (``shape[1]`` channels
        for a transposed convolution, else ``shape[0]``), from U(-k, k), ``k = 1 / sqrt(fan_in)``,
        ``fan_in = prod(shape[1:])`` (torch's rule)."""
        fw = self._fw()
        fan_in = math.prod(shape[1:])
        k = 1.0 / math.sqrt(fan_in)
        weight = fw.zeros(shape[0], fan_in)  # drawn in row-major order, then reshaped
        fw.init.uniform_(weight, -k, k, generator=generator)
        self.weight = fw.Parameter(weight.reshape(*shape))
        if bias:
            b = fw.zeros(self.out_channels)
            fw.init.uniform_(b, -k, k, generator=generator)
            self.bias = fw.Parameter(b)
        else:
            self.bias = None

    def _geometry(self) -> tuple:
        """``(stride, padding, dilation)`` as pairs for the 2-D kernel (height 1 for ``Conv1d``)."""
        if self._dims == 2:
            return self.stride, self.padding, self.dilation
        return (1, self.stride[0]), (0, self.padding[0]), (1, self.dilation[0])

    def _name(self) -> str:
        return (f"{type(self).__name__}({self.in_channels} -> {self.out_channels}, "
                f"kernel_size={self.kernel_size})")

    def forward(self, x: Any) -> Any:
        """The convolution of ``x``, of shape ``(N, C, L)`` (Conv1d) or ``(N, C, H, W)`` (Conv2d)."""
        who, fw, d = self._name(), self._fw(), self._dims
        x = self._checked(x, who, d + 2, "(N, C, L)" if d == 1 else "(N, C, H, W)", f" with C = {self.in_channels}")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"{who}: expected {self.in_channels} input channels, got {x.shape[1]} "
                             f"(input shape {x.shape})")
        spatial = x.shape[2:]
        span = tuple(dl * (k - 1) + 1 for k, dl in zip(self.kernel_size, self.dilation))
        padded = tuple(s + 2 * p for s, p in zip(spatial, self.padding))
        if any(p < s for p, s in zip(padded, span)):
            raise ValueError(f"{who}: input of size {spatial} (padded to {padded}) is smaller than the kernel "
                             f"(dilated to {span}) (input shape {x.shape})")
        x4 = x.reshape(x.shape[0], x.shape[1], 1, x.shape[2]) if d == 1 else x.clone()
        stride, padding, dilation = self._geometry()
        y = type(self)._kernels[0](who, x4, self.weight, self.bias, stride, padding, dilation)
        self._input = x4 if fw.is_grad_enabled() else NO_GRAD
        self._out_shape = y.shape
        self._thread = threading.get_ident()
        return y.reshape(y.shape[0], y.shape[1], y.shape[3]) if d == 1 else y

    def backward(self, grad: Any) -> Any:
        """Add dL/dW (and dL/db) into the gradients; return dL/dx."""
        who, fw = self._name(), self._fw()
        if self._input is None or self._input is NO_GRAD:
            raise not_forwarded(who, self._input)
        check_thread(self.__dict__.get("_thread"), who)
        if not isinstance(grad, _types(self)[1]):
            grad = fw.tensor(grad)
        shape = self._out_shape
        want = shape if self._dims == 2 else (shape[0], shape[1], shape[3])
        if grad.shape != want:
            raise ValueError(f"{who}: gradient has shape {grad.shape}, the output had shape {want}")
        g4 = grad.reshape(*shape) if self._dims == 1 else grad
        x4 = self._input
        bias_grad = self.bias.grad if self.bias is not None else None
        stride, padding, dilation = self._geometry()
        dx = type(self)._kernels[1](who, g4, x4, self.weight, self.weight.grad, bias_grad,
                                    stride, padding, dilation)
        return dx.reshape(x4.shape[0], x4.shape[1], x4.shape[3]) if self._dims == 1 else dx

    def _check_restored(self) -> None:
        super()._check_restored()  # type: ignore[misc]
        who = type(self).__name__
        want = (self.__dict__.get("out_channels"), self.__dict__.get("in_channels"),
                *self.__dict__.get("kernel_size", ()))
        weight = self.__dict__.get("weight")
        if getattr(weight, "shape", None) != want:
            raise ValueError(f"{who}: weight has shape {getattr(weight, 'shape', None)}, the module expects {want}")

    def __repr__(self) -> str:
        parts = [f"{self.in_channels}, {self.out_channels}", f"kernel_size={self.kernel_size}",
                 f"stride={self.stride}"]
        if any(self.padding):
            parts.append(f"padding={self.padding}")
        if any(v != 1 for v in self.dilation):
            parts.append(f"dilation={self.dilation}")
        if self.bias is None:
            parts.append("bias=False")
        return f"{type(self).__name__}({', '.join(parts)})"


class Conv2d(_ConvBase, Module):
    """A 2-D convolution over ``(N, C, H, W)``, as ``torch.nn.Conv2d`` with zero padding and
    ``groups=1``: ``kernel_size``, ``stride``, ``padding`` and ``dilation`` are ints or pairs.
    The output is ``(N, out_channels, oH, oW)`` with ``oH = (H + 2 pH - dH (kH - 1) - 1) // sH + 1``
    (the same for ``oW``). Init and folds: see ``_ConvBase`` and docs/NUMERICS.md ("Conv2d")."""


class _ConvTransposeBase(_ConvBase):
    """What ``ConvTranspose2d`` does, for the ``Module`` of either backend: weight
    ``(in_channels, out_channels, kH, kW)`` and bias ``(out_channels,)`` drawn as ``Conv2d``'s with
    ``fan_in = out_channels * kH * kW`` (torch's rule); output size
    ``oH = (H - 1) sH - 2 pH + kH + output_padding`` (the same for ``oW``)."""

    _kernels: tuple = (conv_transpose2d_forward, conv_transpose2d_backward)
    _params = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding", "bias")
    _weight_channels = ("in_channels", "out_channels")

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, output_padding: Any = 0, groups: int = 1, bias: bool = True,
                 dilation: Any = 1, padding_mode: str = "zeros", generator: Optional[Generator] = None) -> None:
        super(_ConvBase, self).__init__()  # the Module's, skipping _ConvBase's
        who = type(self).__name__
        self.in_channels = check_size(in_channels, who, "in_channels")
        self.out_channels = check_size(out_channels, who, "out_channels")
        self.kernel_size = _tuple(kernel_size, 2, who, "kernel_size", True)
        self.stride = _tuple(stride, 2, who, "stride", True)
        if isinstance(padding, str):
            raise ValueError(f"{who}: padding={padding!r} is not supported: give an int or a tuple of 2 ints")
        self.padding = _tuple(padding, 2, who, "padding", False)
        self.output_padding = _tuple(output_padding, 2, who, "output_padding", False)
        if _tuple(dilation, 2, who, "dilation", True) != (1, 1):
            raise ValueError(f"{who}: dilation={dilation!r} is not supported (only dilation=1)")
        self.dilation = (1, 1)
        if any(op >= st for op, st in zip(self.output_padding, self.stride)):
            raise ValueError(f"{who}: output_padding {self.output_padding} must be smaller than stride {self.stride}")
        if groups != 1:
            raise ValueError(f"{who}: groups={groups!r} is not supported (only groups=1)")
        if padding_mode != "zeros":
            raise ValueError(f"{who}: padding_mode={padding_mode!r} is not supported (only 'zeros')")
        if not isinstance(bias, bool):
            raise TypeError(f"{who}: bias must be a bool, got {type(bias).__name__}")
        self._draw((self.in_channels, self.out_channels, *self.kernel_size), bias, generator)
        self._input = None
        self._out_shape = None

    def forward(self, x: Any) -> Any:
        """The transposed convolution of ``x``, of shape ``(N, C, H, W)``."""
        who, fw = self._name(), self._fw()
        x = self._checked(x, who, 4, "(N, C, H, W)", f" with C = {self.in_channels}")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"{who}: expected {self.in_channels} input channels, got {x.shape[1]} "
                             f"(input shape {x.shape})")
        out = tuple((s - 1) * st - 2 * p + k + op for s, st, p, k, op in
                    zip(x.shape[2:], self.stride, self.padding, self.kernel_size, self.output_padding))
        if any(o < 1 for o in out):
            raise ValueError(f"{who}: input of size {x.shape[2:]} gives an output of size {out}, "
                             f"too small for padding {self.padding} (input shape {x.shape})")
        y = type(self)._kernels[0](who, x, self.weight, self.bias, self.stride, self.padding, out)
        self._input = x.clone() if fw.is_grad_enabled() else NO_GRAD
        self._out_shape = y.shape
        self._thread = threading.get_ident()
        return y

    def backward(self, grad: Any) -> Any:
        """Add dL/dW (and dL/db) into the gradients; return dL/dx."""
        who, fw = self._name(), self._fw()
        if self._input is None or self._input is NO_GRAD:
            raise not_forwarded(who, self._input)
        check_thread(self.__dict__.get("_thread"), who)
        if not isinstance(grad, _types(self)[1]):
            grad = fw.tensor(grad)
        if grad.shape != self._out_shape:
            raise ValueError(f"{who}: gradient has shape {grad.shape}, the output had shape {self._out_shape}")
        bias_grad = self.bias.grad if self.bias is not None else None
        return type(self)._kernels[1](who, grad, self._input, self.weight, self.weight.grad, bias_grad,
                                      self.stride, self.padding)

    def _check_restored(self) -> None:
        Module._check_restored(self)  # type: ignore[arg-type]
        want = (self.__dict__.get("in_channels"), self.__dict__.get("out_channels"),
                *self.__dict__.get("kernel_size", ()))
        weight = self.__dict__.get("weight")
        if getattr(weight, "shape", None) != want:
            raise ValueError(f"{type(self).__name__}: weight has shape {getattr(weight, 'shape', None)}, "
                             f"the module expects {want}")

    def __repr__(self) -> str:
        parts = [f"{self.in_channels}, {self.out_channels}", f"kernel_size={self.kernel_size}",
                 f"stride={self.stride}"]
        if any(self.padding):
            parts.append(f"padding={self.padding}")
        if any(self.output_padding):
            parts.append(f"output_padding={self.output_padding}")
        if self.bias is None:
            parts.append("bias=False")
        return f"ConvTranspose2d({', '.join(parts)})"


class _UpsampleBase(_Spatial):
    """What ``Upsample`` does, for the ``Module`` of either backend: nearest upsampling of
    ``(N, C, H, W)`` by an integer ``scale_factor`` (an int or a pair);
    ``y[n, c, h, w] = x[n, c, h // sH, w // sW]``."""

    _forward_state = ("_in_shape", "_out_shape", "_thread")
    _params = ("scale_factor", "mode")
    _kernels: tuple = (upsample_nearest2d_forward, upsample_nearest2d_backward)

    def __init__(self, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
                 align_corners: Any = None, recompute_scale_factor: Any = None) -> None:
        super().__init__()  # type: ignore[call-arg]
        who = "Upsample"
        if size is not None:
            raise ValueError(f"{who}: size={size!r} is not supported: give an integer scale_factor")
        if mode != "nearest":
            raise ValueError(f"{who}: mode={mode!r} is not supported (only 'nearest')")
        if align_corners is not None or recompute_scale_factor is not None:
            raise ValueError(f"{who}: align_corners and recompute_scale_factor are not supported")
        if scale_factor is None:
            raise ValueError(f"{who}: scale_factor is needed (an int or a pair of ints)")
        items = scale_factor if isinstance(scale_factor, (tuple, list)) else (scale_factor, scale_factor)
        whole = [int(v) if isinstance(v, float) and v.is_integer() else v for v in items]
        self.scale_factor = _tuple(tuple(whole) if isinstance(scale_factor, (tuple, list)) else whole[0],
                                   2, who, "scale_factor", True)
        self.mode = "nearest"
        self._in_shape: Any = None
        self._out_shape: Optional[tuple] = None

    def _name(self) -> str:
        return f"Upsample(scale_factor={self.scale_factor})"

    def forward(self, x: Any) -> Any:
        """``x`` (N, C, H, W), each value repeated ``sH`` x ``sW`` times."""
        who, fw = self._name(), self._fw()
        x = self._checked(x, who, 4, "(N, C, H, W)")
        y = type(self)._kernels[0](who, x, self.scale_factor)
        self._in_shape = x.shape if fw.is_grad_enabled() else NO_GRAD
        self._out_shape = y.shape
        self._thread = threading.get_ident()
        return y

    def backward(self, grad: Any) -> Any:
        """dL/dx: each input's gradient folds the ``sH`` x ``sW`` gradients it was copied to."""
        who, fw = self._name(), self._fw()
        if self._in_shape is None or self._in_shape is NO_GRAD:
            raise not_forwarded(who, self._in_shape)
        check_thread(self.__dict__.get("_thread"), who)
        if not isinstance(grad, _types(self)[1]):
            grad = fw.tensor(grad)
        if grad.shape != self._out_shape:
            raise ValueError(f"{who}: gradient has shape {grad.shape}, the output had shape {self._out_shape}")
        return type(self)._kernels[1](who, grad, self._in_shape, self.scale_factor)

    def __repr__(self) -> str:
        return f"Upsample(scale_factor={self.scale_factor}, mode='nearest')"


class ConvTranspose2d(_ConvTransposeBase, Module):
    """``torch.nn.ConvTranspose2d`` with zero padding, ``groups=1`` and ``dilation=1``: the
    gradient of a ``Conv2d`` with respect to its input, as a layer; weight ``(in, out, kH, kW)``."""


class Upsample(_UpsampleBase, Module):
    """``torch.nn.Upsample(scale_factor=s, mode="nearest")`` with an integer ``s`` (or pair)."""


class Conv1d(_ConvBase, Module):
    """A 1-D convolution over ``(N, C, L)``, as ``torch.nn.Conv1d`` with zero padding and
    ``groups=1``: ``Conv2d``'s kernel with a height of 1, weight ``(out, in, k)``."""

    _dims = 1


def _windows(x: Tensor, kernel: Pair, stride: Pair, padding: Pair) -> tuple:
    """``(planes, H, W, oh, ow, flat x)`` of a pooling over the last two dims of ``x``."""
    N, C, H, W = x.shape
    oh, ow = _out_size(H, kernel[0], stride[0], padding[0], 1), _out_size(W, kernel[1], stride[1], padding[1], 1)
    return N * C, H, W, oh, ow, _flat(x)


def max_pool2d_forward(who: str, x: Tensor, kernel: Pair, stride: Pair, padding: Pair) -> tuple:
    """``(y, argmax)``: ``y[n, c, i, j]`` is the maximum of the window's input values in
    row-major order of ``(ki, kj)``, the padding being -inf: the first value in the window
    is kept, then each later one that is greater or NaN replaces it (as torch); ``argmax``
    holds the flat input position of each kept value."""
    planes, H, W, oh, ow, xf = _windows(x, kernel, stride, padding)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    y, arg = [], []
    for p in range(planes):
        base = p * H * W
        for i in range(oh):
            h0, h1 = max(i * sh - ph, 0), min(i * sh - ph + kh, H)
            for j in range(ow):
                v0, v1 = max(j * sw - pw, 0), min(j * sw - pw + kw, W)
                best = base + h0 * W + v0
                acc = xf[best]
                for h in range(h0, h1):
                    for k in range(base + h * W + v0, base + h * W + v1):
                        v = xf[k]
                        if v > acc or v != v:
                            acc, best = v, k
                y.append(acc)
                arg.append(best)
    return _from_flat(y, (*x.shape[:2], oh, ow)), arg


def max_pool2d_backward(who: str, grad: Tensor, argmax: list, shape: tuple) -> Tensor:
    """``dx[n, c, h, w]``: a fold over ``(i, j)`` in row-major order of ``g[n, c, i, j]`` for the
    windows whose maximum was ``(h, w)``, starting at 0.0."""
    dx = [0.0] * (shape[0] * shape[1] * shape[2] * shape[3])
    for k, gv in zip(argmax, _flat(grad)):
        dx[k] = dx[k] + gv
    return _from_flat(dx, shape)


def avg_pool2d_forward(who: str, x: Tensor, kernel: Pair, stride: Pair, padding: Pair) -> Tensor:
    """``y[n, c, i, j]``: a fold over ``(ki, kj)`` in row-major order of the window's input values
    starting at 0.0, skipping the padding, then divided by ``kH * kW`` (the padding counts)."""
    planes, H, W, oh, ow, xf = _windows(x, kernel, stride, padding)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    div = float(kh * kw)
    y: list = []
    for p in range(planes):
        base = p * H * W
        plane = [[0.0] * ow for _ in range(oh)]
        for ki in range(kh):
            i0, i1 = _span(ki - ph, sh, H, oh)
            for kj in range(kw):
                j0, j1 = _span(kj - pw, sw, W, ow)
                for i in range(i0, i1):
                    start = base + (i * sh + ki - ph) * W + j0 * sw + kj - pw
                    xs = xf[start:start + (j1 - j0 - 1) * sw + 1:sw]
                    row = plane[i]
                    row[j0:j1] = [a + v for a, v in zip(row[j0:j1], xs)]
        for row in plane:
            y.extend(a / div for a in row)
    return _from_flat(y, (*x.shape[:2], oh, ow))


def avg_pool2d_backward(who: str, grad: Tensor, shape: tuple, kernel: Pair, stride: Pair, padding: Pair) -> Tensor:
    """``dx[n, c, h, w]``: a fold over ``(ki, kj)`` in row-major order of ``g[n, c, i, j] / (kH * kW)``
    for the window ``(i, j)`` that reads ``(h, w)`` through ``(ki, kj)``, starting at 0.0."""
    N, C, H, W = shape
    oh, ow = grad.shape[2], grad.shape[3]
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    div = float(kh * kw)
    gf = [v / div for v in _flat(grad)]
    dx = [0.0] * (N * C * H * W)
    for p in range(N * C):
        base, gbase = p * H * W, p * oh * ow
        for ki in range(kh):
            i0, i1 = _span(ki - ph, sh, H, oh)
            for kj in range(kw):
                j0, j1 = _span(kj - pw, sw, W, ow)
                if j0 == j1:
                    continue
                for i in range(i0, i1):
                    start = base + (i * sh + ki - ph) * W + j0 * sw + kj - pw
                    stop = start + (j1 - j0 - 1) * sw + 1
                    g0 = gbase + i * ow
                    dx[start:stop:sw] = [a + gv for a, gv in zip(dx[start:stop:sw], gf[g0 + j0:g0 + j1])]
    return _from_flat(dx, shape)


class _PoolBase(_Spatial):
    """What ``MaxPool2d`` and ``AvgPool2d`` do, for the ``Module`` of either backend: a pooling
    over ``(N, C, H, W)`` with torch's arguments (``stride`` defaults to ``kernel_size``;
    ``padding`` at most half the kernel) and torch's output size
    ``oH = (H + 2 pH - kH) // sH + 1`` (the same for ``oW``)."""

    _forward_state = ("_kept", "_out_shape", "_thread")
    _params = ("kernel_size", "stride", "padding")
    _kernels: tuple = ()

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        super().__init__()  # type: ignore[call-arg]
        who = type(self).__name__
        self.kernel_size = _tuple(kernel_size, 2, who, "kernel_size", True)
        self.stride = self.kernel_size if stride is None else _tuple(stride, 2, who, "stride", True)
        self.padding = _tuple(padding, 2, who, "padding", False)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"{who}: padding {self.padding} must be at most half of kernel_size "
                             f"{self.kernel_size}")
        self._kept: Any = None  # what backward needs, NO_GRAD (under no_grad) or None
        self._out_shape: Optional[tuple] = None

    def _name(self) -> str:
        return f"{type(self).__name__}(kernel_size={self.kernel_size})"

    def forward(self, x: Any) -> Any:
        """The pooling of ``x``, of shape ``(N, C, H, W)``."""
        who, fw = self._name(), self._fw()
        x = self._checked(x, who, 4, "(N, C, H, W)")
        padded = tuple(s + 2 * p for s, p in zip(x.shape[2:], self.padding))
        if any(p < k for p, k in zip(padded, self.kernel_size)):
            raise ValueError(f"{who}: input of size {x.shape[2:]} (padded to {padded}) is smaller than the "
                             f"kernel {self.kernel_size} (input shape {x.shape})")
        y, kept = self._run(who, x)
        self._kept = kept if fw.is_grad_enabled() else NO_GRAD
        self._out_shape = y.shape
        self._thread = threading.get_ident()
        return y

    def backward(self, grad: Any) -> Any:
        """dL/dx for the output gradient ``grad``."""
        who, fw = self._name(), self._fw()
        if self._kept is None or self._kept is NO_GRAD:
            raise not_forwarded(who, self._kept)
        check_thread(self.__dict__.get("_thread"), who)
        if not isinstance(grad, _types(self)[1]):
            grad = fw.tensor(grad)
        if grad.shape != self._out_shape:
            raise ValueError(f"{who}: gradient has shape {grad.shape}, the output had shape {self._out_shape}")
        return self._back(who, grad, self._kept)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding})")


class _MaxPoolBase(_PoolBase):
    """``MaxPool2d``: the maximum of each window, the padding being -inf; the gradient goes to the
    first maximum in scan order (docs/NUMERICS.md, "MaxPool2d and AvgPool2d")."""

    _kernels: tuple = (max_pool2d_forward, max_pool2d_backward)

    def _run(self, who: str, x: Any) -> tuple:
        y, arg = type(self)._kernels[0](who, x, self.kernel_size, self.stride, self.padding)
        return y, (arg, x.shape)

    def _back(self, who: str, grad: Any, kept: tuple) -> Any:
        return type(self)._kernels[1](who, grad, kept[0], kept[1])


class _AvgPoolBase(_PoolBase):
    """``AvgPool2d``: the mean of each window, the padding counting as zeros in it (torch's
    default ``count_include_pad=True``; docs/NUMERICS.md, "MaxPool2d and AvgPool2d")."""

    _kernels: tuple = (avg_pool2d_forward, avg_pool2d_backward)

    def _run(self, who: str, x: Any) -> tuple:
        return type(self)._kernels[0](who, x, self.kernel_size, self.stride, self.padding), x.shape

    def _back(self, who: str, grad: Any, shape: tuple) -> Any:
        return type(self)._kernels[1](who, grad, shape, self.kernel_size, self.stride, self.padding)


class MaxPool2d(_MaxPoolBase, Module):
    """``torch.nn.MaxPool2d(kernel_size, stride=None, padding=0)`` over ``(N, C, H, W)``: the
    maximum of each window (padding as -inf); the gradient goes to the first maximum in scan order."""


class AvgPool2d(_AvgPoolBase, Module):
    """``torch.nn.AvgPool2d(kernel_size, stride=None, padding=0)`` over ``(N, C, H, W)``: the
    mean of each window over ``kH * kW`` values, the zero padding included (torch's default)."""
