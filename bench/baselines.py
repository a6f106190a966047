"""Reference implementations for the benchmark, outside pyfw.

Each trains a ReLU MLP (``sizes``, e.g. the seed's 2-25-25-25-2) with MSE and
plain SGD over shuffled mini-batches, float64. Each ``make_*`` function does its
setup (conversions, initialization, buffers) when called and returns a
``run()`` that does only the training, so that the benchmark times training
alone. Only their time matters: they return nothing and need not match pyfw's
bits. numpy and torch are optional; the benchmark skips what is not installed.

* :func:`make_numpy_fast`: the strongest numpy MLP a competent user would write
  (the benchmark's main baseline).
* :func:`make_numpy_simple`: the usual vectorized idiom, allocating as it goes.
* :func:`make_torch`: ``nn.Sequential``, ``MSELoss``, ``optim.SGD``.
* :func:`make_naive_python`: plain nested loops.
"""

from __future__ import annotations

import math
import random
from typing import Any, Callable, Sequence

SIZES = (2, 25, 25, 25, 2)


def _uniform_init(np: Any, rng: Any, sizes: Sequence[int]) -> tuple:
    """Weights (out, in) and biases (out,), uniform on +-1/sqrt(in), as torch and pyfw draw them."""
    ws, bs = [], []
    for fan_in, fan_out in zip(sizes, sizes[1:]):
        k = 1.0 / math.sqrt(fan_in)
        ws.append(rng.uniform(-k, k, (fan_out, fan_in)))
        bs.append(rng.uniform(-k, k, fan_out))
    return ws, bs


def make_numpy_fast(np: Any, x: list, t: list, sizes: Sequence[int], epochs: int, batch: int, lr: float,
                    seed: int = 0) -> Callable[[], None]:
    """The strongest numpy MLP a competent user would write; nothing is allocated per step.

    * Activations are feature-major, ``(features + 1, batch)``, their last row all ones:
      the bias is the last column of each weight matrix ``(out, in + 1)``, so a layer is one
      ``np.dot(W, A, out=Z)`` into the first ``out`` rows of the next buffer (contiguous),
      and the weight gradient ``G A^T`` includes the bias gradient.
    * One table ``[x | 1 | t]`` is shuffled once per epoch into a preallocated copy
      (``np.take(..., out=)``); a batch is a view of its rows, passed to BLAS transposed.
    * ReLU in place (``np.maximum(Z, 0, out=Z)``); its backward multiplies the gradient in
      place by ``np.sign`` of the activations (0 or 1), the fastest mask tried.
    * The learning rate is folded into the output gradient, so every gradient below it is
      already scaled; the weights are views of one flat array and the gradients of another,
      so the SGD step is one ``np.subtract(w, dw, out=w)``.
    * Buffers exist per batch size (the last batch may be smaller); every view a step uses
      is made once, before training.
    """
    rng = np.random.default_rng(seed)
    ws0, bs0 = _uniform_init(np, rng, sizes)
    L = len(ws0)
    # every weight (bias as its last column) is a view of one flat array, and every
    # weight gradient of another, so that the SGD step is a single call
    shapes = [(fan_out, fan_in + 1) for fan_in, fan_out in zip(sizes, sizes[1:])]
    total = sum(r * c for r, c in shapes)
    flat_w, flat_dw = np.empty(total), np.empty(total)
    W, dW, at = [], [], 0
    for (r, c), w, b in zip(shapes, ws0, bs0):
        W.append(flat_w[at:at + r * c].reshape(r, c))
        dW.append(flat_dw[at:at + r * c].reshape(r, c))
        W[-1][:, :-1] = w
        W[-1][:, -1] = b
        at += r * c
    n_in, n_out = sizes[0], sizes[-1]
    table = np.empty((len(x), n_in + 1 + n_out))
    table[:, :n_in] = np.asarray(x, dtype=np.float64)
    table[:, n_in] = 1.0
    table[:, n_in + 1:] = np.asarray(t, dtype=np.float64)
    shuffled = np.empty_like(table)
    n = len(table)
    bufs: dict = {}
    for m in {batch, n % batch or batch}:
        acts = []
        for k in sizes[1:-1]:
            a = np.empty((k + 1, m))
            a[k] = 1.0
            acts.append(a)
        acts.append(np.empty((n_out, m)))
        grads = [np.empty((k, m)) for k in sizes[1:-1]]
        masks = [np.empty((k, m)) for k in sizes[1:-1]]
        bufs[m] = (acts, grads, masks)
    # every view used in a step, made once: the batches are fixed views of the shuffled table
    steps = []
    for s in range(0, n, batch):
        rows = shuffled[s:s + batch]
        acts, grads, masks = bufs[len(rows)]
        xT = rows[:, :n_in + 1].T  # (in + 1, m), F-contiguous: BLAS reads it transposed
        ins = [xT] + acts[:-1]
        fwd = [(W[li], ins[li], acts[li][:sizes[li + 1]]) for li in range(L)]  # out: the first rows
        bwd = []
        for li in range(L - 1, -1, -1):
            k = sizes[li]
            hidden = (W[li][:, :k].T, grads[li - 1], ins[li][:k], masks[li - 1]) if li > 0 else None
            bwd.append((ins[li].T, dW[li], hidden))
        steps.append((fwd, acts[-1], rows[:, n_in + 1:].T, bwd))
    scale = 2.0 * lr / n_out
    dot, maximum, sign, multiply, subtract = np.dot, np.maximum, np.sign, np.multiply, np.subtract

    def run() -> None:
        for _ in range(epochs):
            np.take(table, rng.permutation(n), axis=0, out=shuffled)
            for fwd, y, tT, bwd in steps:
                for w, a, out in fwd[:-1]:
                    dot(w, a, out=out)
                    maximum(out, 0.0, out=out)
                w, a, out = fwd[-1]
                dot(w, a, out=out)
                g = y  # the output buffer becomes lr * dL/dy
                subtract(y, tT, out=g)
                g *= scale / y.shape[1]
                for aT, dw, hidden in bwd:
                    dot(g, aT, out=dw)
                    if hidden is not None:
                        wT, gin, a_in, mask = hidden
                        dot(wT, g, out=gin)
                        sign(a_in, out=mask)  # 1 where ReLU passed (a > 0), else 0
                        multiply(gin, mask, out=gin)
                        g = gin
                subtract(flat_w, flat_dw, out=flat_w)
    return run


def make_numpy_simple(np: Any, x: list, t: list, sizes: Sequence[int], epochs: int, batch: int, lr: float,
                      seed: int = 0) -> Callable[[], None]:
    """A simple numpy MLP: the usual vectorized idiom, new arrays at every operation."""
    rng = np.random.default_rng(seed)
    ws, bs = _uniform_init(np, rng, sizes)
    X, T = np.asarray(x, dtype=np.float64), np.asarray(t, dtype=np.float64)
    n = len(X)

    def run() -> None:
        for _ in range(epochs):
            perm = rng.permutation(n)
            for s in range(0, n, batch):
                idx = perm[s:s + batch]
                acts = [X[idx]]
                for li in range(len(ws)):
                    z = acts[-1] @ ws[li].T + bs[li]
                    acts.append(np.maximum(z, 0.0) if li < len(ws) - 1 else z)
                g = 2.0 * (acts[-1] - T[idx]) / acts[-1].size
                for li in range(len(ws) - 1, -1, -1):
                    gin = g @ ws[li]
                    ws[li] -= lr * (g.T @ acts[li])
                    bs[li] -= lr * g.sum(axis=0)
                    if li > 0:
                        g = gin * (acts[li] > 0.0)
    return run


def make_torch(torch: Any, x: list, t: list, sizes: Sequence[int], epochs: int, batch: int, lr: float,
               seed: int = 0) -> Callable[[], None]:
    """The same network in PyTorch: float64, nn.Sequential, MSELoss, optim.SGD (threads set by the caller)."""
    torch.manual_seed(seed)
    nn = torch.nn
    layers: list = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(fan_in, fan_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers).double()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = nn.MSELoss()
    X, T = torch.tensor(x, dtype=torch.float64), torch.tensor(t, dtype=torch.float64)
    n = len(X)

    def run() -> None:
        for _ in range(epochs):
            perm = torch.randperm(n)
            for s in range(0, n, batch):
                idx = perm[s:s + batch]
                opt.zero_grad()
                loss = loss_fn(model(X[idx]), T[idx])
                loss.backward()
                opt.step()
    return run


def _init(rng: random.Random, sizes: Sequence[int]) -> list:
    layers = []
    for fan_in, fan_out in zip(sizes, sizes[1:]):
        k = 1.0 / math.sqrt(fan_in)
        w = [[rng.uniform(-k, k) for _ in range(fan_in)] for _ in range(fan_out)]
        b = [rng.uniform(-k, k) for _ in range(fan_out)]
        layers.append((w, b))
    return layers


def make_naive_python(x: list, t: list, sizes: Sequence[int], epochs: int, batch: int, lr: float,
                      seed: int = 0) -> Callable[[], None]:
    """Plain nested loops over indices, the way one first writes an MLP in Python."""
    rng = random.Random(seed)
    layers = _init(rng, sizes)
    n = len(x)

    def run() -> None:
        _naive_epochs(layers, rng, x, t, n, epochs, batch, lr)
    return run


def _naive_epochs(layers: list, rng: random.Random, x: list, t: list, n: int, epochs: int, batch: int,
                  lr: float) -> None:
    for _ in range(epochs):
        order = list(range(n))
        rng.shuffle(order)
        for s in range(0, n, batch):
            idx = order[s:s + batch]
            acts = [[x[i] for i in idx]]
            for li, (w, b) in enumerate(layers):
                a = acts[-1]
                out = []
                for r in range(len(a)):
                    row = []
                    for o in range(len(w)):
                        v = b[o]
                        for i in range(len(w[o])):
                            v += a[r][i] * w[o][i]
                        if li < len(layers) - 1 and v < 0.0:
                            v = 0.0
                        row.append(v)
                    out.append(row)
                acts.append(out)
            y = acts[-1]
            m = len(y) * len(y[0])
            g = [[2.0 * (y[r][c] - t[idx[r]][c]) / m for c in range(len(y[0]))] for r in range(len(y))]
            for li in range(len(layers) - 1, -1, -1):
                w, b = layers[li]
                a = acts[li]
                gin = [[0.0] * len(w[0]) for _ in range(len(a))]
                for r in range(len(a)):
                    for o in range(len(w)):
                        for i in range(len(w[o])):
                            gin[r][i] += g[r][o] * w[o][i]
                for o in range(len(w)):
                    gb = 0.0
                    for r in range(len(a)):
                        gb += g[r][o]
                    b[o] -= lr * gb
                    for i in range(len(w[o])):
                        gw = 0.0
                        for r in range(len(a)):
                            gw += g[r][o] * a[r][i]
                        w[o][i] -= lr * gw
                if li > 0:
                    prev = acts[li]
                    g = [[gin[r][i] if prev[r][i] > 0.0 else 0.0 for i in range(len(gin[0]))]
                         for r in range(len(gin))]


# --- Convolutions -------------------------------------------------------------------------------


class NumpyConv:
    """One ``Conv2d`` in the strongest numpy a competent user would write; nothing allocated per call.

    Activations are channel-major, ``(C, N, H, W)``, so that a layer's output ``W @ cols``
    (``O x N*oH*oW``) is the next layer's input with no transpose. The input lives in the
    interior of a zero-padded buffer (``self.x`` is that view: the previous layer writes
    there); the im2col view of that buffer (``sliding_window_view``, strided for the stride)
    is built once, so a forward is one copy into the column buffer and one ``np.matmul``
    into a preallocated output. The backward is ``np.matmul`` into preallocated weight and
    column gradients and col2im as ``kH x kW`` strided in-place adds; ``need_dx=False``
    (a first layer) skips the input gradient. ``w``, ``b``, ``dw``, ``db`` may be views
    of flat parameter arrays.
    """

    def __init__(self, np: Any, w: Any, b: Any, dw: Any, db: Any, n: int, h: int, wd: int,
                 stride: int = 1, padding: int = 0, need_dx: bool = True) -> None:
        o, c, kh, kw = w.shape
        p, s = padding, stride
        self.np, self.w2, self.b, self.dw2, self.db = np, w.reshape(o, c * kh * kw), b, dw.reshape(o, -1), db
        self.xp = np.zeros((c, n, h + 2 * p, wd + 2 * p))
        self.x = self.xp[:, :, p:p + h, p:p + wd]
        oh, ow = (h + 2 * p - kh) // s + 1, (wd + 2 * p - kw) // s + 1
        self.out_shape = (o, n, oh, ow)
        win = np.lib.stride_tricks.sliding_window_view(self.xp, (kh, kw), axis=(2, 3))[:, :, ::s, ::s]
        self.win = win.transpose(0, 4, 5, 1, 2, 3)  # (C, kH, kW, N, oH, oW), a view
        self.cols6 = np.empty((c, kh, kw, n, oh, ow))
        self.cols = self.cols6.reshape(c * kh * kw, n * oh * ow)
        self.y = np.empty((o, n * oh * ow))
        self.b2 = b.reshape(o, 1)
        self.need_dx = need_dx
        if need_dx:
            self.dcols6 = np.empty_like(self.cols6)
            self.dcols = self.dcols6.reshape(self.cols.shape)
            self.dxp = np.zeros_like(self.xp)
            self.dx = self.dxp[:, :, p:p + h, p:p + wd]
            self.scatter = [(self.dxp[:, :, ki:ki + s * (oh - 1) + 1:s, kj:kj + s * (ow - 1) + 1:s],
                             self.dcols6[:, ki, kj]) for ki in range(kh) for kj in range(kw)]

    def forward(self) -> Any:
        """``y = W cols + b`` from the input in ``self.x``; returns ``y`` (O, N*oH*oW)."""
        np = self.np
        np.copyto(self.cols6, self.win)
        np.matmul(self.w2, self.cols, out=self.y)
        np.add(self.y, self.b2, out=self.y)
        return self.y

    def backward(self, gy: Any) -> Any:
        """Weight and bias gradients from ``gy`` (O, N*oH*oW); the input gradient in ``self.dx``."""
        np = self.np
        np.sum(gy, axis=1, out=self.db)
        np.matmul(gy, self.cols.T, out=self.dw2)
        if not self.need_dx:
            return None
        np.matmul(self.w2.T, gy, out=self.dcols)
        self.dxp.fill(0.0)
        add = np.add
        for dst, src in self.scatter:
            add(dst, src, out=dst)
        return self.dx


def conv_flops(n: int, c: int, o: int, k: int, oh: int, ow: int) -> float:
    """The forward's flops: 2 N O C kH kW oH oW (the backward counts twice that)."""
    return 2.0 * n * o * c * k * k * oh * ow


def make_numpy_conv_step(np: Any, x: Any, gy: Any, w: Any, b: Any, stride: int, padding: int,
                         steps: int) -> Callable[[], None]:
    """``steps`` forward and backward passes (weight, bias and input gradients) of one Conv2d."""
    n, c, h, wd = x.shape
    dw, db = np.zeros_like(w), np.zeros_like(b)
    conv = NumpyConv(np, w.copy(), b.copy(), dw, db, n, h, wd, stride, padding)
    xc = np.ascontiguousarray(x.transpose(1, 0, 2, 3))
    gc = np.ascontiguousarray(gy.transpose(1, 0, 2, 3)).reshape(gy.shape[1], -1)

    def run() -> None:
        for _ in range(steps):
            np.copyto(conv.x, xc)
            conv.forward()
            conv.backward(gc)
    return run


def make_torch_conv_step(torch: Any, x: list, gy: list, c: int, o: int, steps: int) -> Callable[[], None]:
    """The same in PyTorch float64 (threads set by the caller): ``Conv2d(c, o, 3, padding=1)``, the
    input requiring its gradient; ``x`` and ``gy`` are nested lists."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(c, o, 3, padding=1).double()
    xt = torch.tensor(x, dtype=torch.float64).requires_grad_(True)
    gt = torch.tensor(gy, dtype=torch.float64)

    def run() -> None:
        for _ in range(steps):
            xt.grad = None
            conv(xt).backward(gt)
    return run


DENOISER = ((3, 32, 2), (32, 64, 2), (64, 32, 1), (32, 3, 1))
"""The denoiser's convolutions, ``(in, out, stride)``, kernel 3, padding 1: Conv, ReLU, Conv, ReLU,
Upsample(2), Conv, ReLU, Upsample(2), Conv, Sigmoid."""


def denoiser_flops(n: int, size: int) -> float:
    """Forward plus backward flops of the denoiser on ``n`` images of ``size`` x ``size``:
    3 x the forward's 2 N O C 9 oH oW per convolution (the first layer's input gradient included)."""
    total = 0.0
    for (c, o, _), out in zip(DENOISER, (size // 2, size // 4, size // 2, size)):
        total += conv_flops(n, c, o, 3, out, out)
    return 3.0 * total


def make_numpy_denoiser(np: Any, x: Any, t: Any, epochs: int, batch: int, lr: float,
                        seed: int = 0) -> Callable[[], None]:
    """The denoiser's training (MSE, SGD) in the strongest numpy: :class:`NumpyConv` layers on
    channel-major buffers; ReLU and the upsampling are one ``np.maximum`` into the next layer's
    padded input through a broadcast view; the upsampling's gradient one ``np.sum`` over a
    strided view; the learning rate folded into the output gradient; one flat parameter array."""
    rng = np.random.default_rng(seed)
    n_all, _, size, _ = x.shape
    shapes = [(o, c, 3, 3) for c, o, _ in DENOISER]
    total = sum(o * c * 9 + o for o, c, _, _ in shapes)
    flat_w, flat_dw = np.empty(total), np.empty(total)
    convs, at = [], 0
    ins = (size, size // 2, size // 2, size)  # each convolution's input size
    for li, ((o, c, _, _), (_, _, stride), hw) in enumerate(zip(shapes, DENOISER, ins)):
        bound = 1.0 / math.sqrt(c * 9)
        nw = o * c * 9
        w, dw = flat_w[at:at + nw].reshape(o, c, 3, 3), flat_dw[at:at + nw].reshape(o, c, 3, 3)
        b, db = flat_w[at + nw:at + nw + o], flat_dw[at + nw:at + nw + o]
        w[...] = rng.uniform(-bound, bound, w.shape)
        b[...] = rng.uniform(-bound, bound, o)
        at += nw + o
        convs.append(NumpyConv(np, w, b, dw, db, batch, hw, hw, stride, 1, need_dx=li > 0))
    c1, c2, c3, c4 = convs
    as_strided = np.lib.stride_tricks.as_strided

    def up_view(dst: Any) -> Any:
        """``dst`` (C, N, 2H, 2W) as (C, N, H, 2, W, 2): the nearest upsampling's blocks."""
        c, m, h2, w2 = dst.shape
        s0, s1, s2, s3 = dst.strides
        return as_strided(dst, (c, m, h2 // 2, 2, w2 // 2, 2), (s0, s1, 2 * s2, s2, 2 * s3, s3))

    up3, up4 = up_view(c3.x), up_view(c4.x)
    dup3, dup4 = up_view(c3.dx), up_view(c4.dx)
    y1, y2, y3, y4 = (cv.y.reshape(cv.out_shape) for cv in convs)
    y2b, y3b = y2[:, :, :, None, :, None], y3[:, :, :, None, :, None]
    g2, g3 = np.empty(y2.shape), np.empty(y3.shape)
    m1, m2, m3 = (np.empty(y.shape, dtype=bool) for y in (y1, y2, y3))
    s4, tmp = np.empty(y4.shape), np.empty(y4.shape)
    data = np.ascontiguousarray(x.transpose(1, 0, 2, 3))
    target = np.ascontiguousarray(t.transpose(1, 0, 2, 3))
    sx, st = np.empty_like(data), np.empty_like(target)
    scale = 2.0 * lr / s4.size

    def run() -> None:
        for _ in range(epochs):
            perm = rng.permutation(n_all)
            np.take(data, perm, axis=1, out=sx)
            np.take(target, perm, axis=1, out=st)
            for s in range(0, n_all - batch + 1, batch):
                np.copyto(c1.x, sx[:, s:s + batch])
                c1.forward()
                np.maximum(y1, 0.0, out=c2.x)
                c2.forward()
                np.maximum(y2b, 0.0, out=up3)
                c3.forward()
                np.maximum(y3b, 0.0, out=up4)
                c4.forward()
                # sigmoid, then lr * dMSE/dy * s (1 - s)
                np.negative(y4, out=s4)
                np.exp(s4, out=s4)
                np.add(s4, 1.0, out=s4)
                np.reciprocal(s4, out=s4)
                np.subtract(s4, st[:, s:s + batch], out=tmp)
                np.multiply(tmp, scale, out=tmp)
                np.multiply(tmp, s4, out=tmp)
                np.subtract(1.0, s4, out=s4)
                np.multiply(tmp, s4, out=tmp)
                c4.backward(tmp.reshape(3, -1))
                np.sum(dup4, axis=(3, 5), out=g3)
                np.greater(y3, 0.0, out=m3)
                np.multiply(g3, m3, out=g3)
                c3.backward(g3.reshape(g3.shape[0], -1))
                np.sum(dup3, axis=(3, 5), out=g2)
                np.greater(y2, 0.0, out=m2)
                np.multiply(g2, m2, out=g2)
                g1 = c2.backward(g2.reshape(g2.shape[0], -1))
                np.greater(y1, 0.0, out=m1)
                np.multiply(g1, m1, out=g1)
                c1.backward(g1.reshape(g1.shape[0], -1))
                np.subtract(flat_w, flat_dw, out=flat_w)
    return run


def make_torch_denoiser(torch: Any, x: list, t: list, epochs: int, batch: int, lr: float,
                        seed: int = 0) -> Callable[[], None]:
    """The denoiser in PyTorch float64: nn.Sequential, MSELoss, optim.SGD (threads set by the caller)."""
    torch.manual_seed(seed)
    nn = torch.nn
    (a, b, _), (_, c, _), (_, d, _), (_, e, _) = DENOISER
    model = nn.Sequential(nn.Conv2d(a, b, 3, stride=2, padding=1), nn.ReLU(),
                          nn.Conv2d(b, c, 3, stride=2, padding=1), nn.ReLU(), nn.Upsample(scale_factor=2),
                          nn.Conv2d(c, d, 3, padding=1), nn.ReLU(), nn.Upsample(scale_factor=2),
                          nn.Conv2d(d, e, 3, padding=1), nn.Sigmoid()).double()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = nn.MSELoss()
    X, T = torch.tensor(x, dtype=torch.float64), torch.tensor(t, dtype=torch.float64)
    n = len(X)

    def run() -> None:
        for _ in range(epochs):
            perm = torch.randperm(n)
            for s in range(0, n - batch + 1, batch):
                idx = perm[s:s + batch]
                opt.zero_grad()
                loss_fn(model(X[idx]), T[idx]).backward()
                opt.step()
    return run
