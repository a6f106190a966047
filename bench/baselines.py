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
