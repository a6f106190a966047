"""Reference implementations of the seed task for the benchmark, outside pyfw.

Each trains the 2-25-25-25-2 ReLU MLP with MSE and SGD on the same disk data,
batch by batch, and returns nothing: only their time matters. numpy and torch
are optional; the benchmark skips what is not installed.
"""

from __future__ import annotations

import math
import random
from typing import Any

SIZES = (2, 25, 25, 25, 2)


def _init(rng: random.Random) -> list:
    layers = []
    for fan_in, fan_out in zip(SIZES, SIZES[1:]):
        k = 1.0 / math.sqrt(fan_in)
        w = [[rng.uniform(-k, k) for _ in range(fan_in)] for _ in range(fan_out)]
        b = [rng.uniform(-k, k) for _ in range(fan_out)]
        layers.append((w, b))
    return layers


def naive_python(x: list, t: list, epochs: int, batch: int, lr: float, seed: int = 0) -> None:
    """Plain nested loops over indices, the way one first writes an MLP in Python."""
    rng = random.Random(seed)
    layers = _init(rng)
    n = len(x)
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


def numpy_mlp(np: Any, x: list, t: list, epochs: int, batch: int, lr: float, seed: int = 0) -> None:
    """A hand-written numpy MLP (float64), the usual vectorized idiom."""
    rng = np.random.default_rng(seed)
    ws, bs = [], []
    for fan_in, fan_out in zip(SIZES, SIZES[1:]):
        k = 1.0 / math.sqrt(fan_in)
        ws.append(rng.uniform(-k, k, (fan_out, fan_in)))
        bs.append(rng.uniform(-k, k, fan_out))
    X, T = np.asarray(x, dtype=np.float64), np.asarray(t, dtype=np.float64)
    n = len(X)
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


def torch_mlp(torch: Any, x: list, t: list, epochs: int, batch: int, lr: float, seed: int = 0) -> None:
    """The same network in PyTorch: float64, one thread, nn.Sequential, MSELoss, optim.SGD."""
    torch.manual_seed(seed)
    nn = torch.nn
    model = nn.Sequential(nn.Linear(2, 25), nn.ReLU(), nn.Linear(25, 25), nn.ReLU(),
                          nn.Linear(25, 25), nn.ReLU(), nn.Linear(25, 2)).double()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = nn.MSELoss()
    X, T = torch.tensor(x, dtype=torch.float64), torch.tensor(t, dtype=torch.float64)
    n = len(X)
    for _ in range(epochs):
        perm = torch.randperm(n)
        for s in range(0, n, batch):
            idx = perm[s:s + batch]
            opt.zero_grad()
            loss = loss_fn(model(X[idx]), T[idx])
            loss.backward()
            opt.step()
