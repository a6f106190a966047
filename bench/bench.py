"""Benchmark of the seed task: 2-25-25-25-2 ReLU MLP, MSE, SGD, batch 10, float64, one thread.

Times every available implementation in the same run and prints the median of
``--repeat`` runs, the time per epoch, and ratios against numpy and PyTorch:

* ``pyfw`` and ``pyfw_rs``, each driven by the same Python loop (``pyfw.fit``);
* naive nested Python loops (bench/baselines.py);
* a hand-written numpy MLP and PyTorch, when installed (optional).

Slow implementations run fewer epochs (``--slow-epochs``) and are scaled to the
full run; the table says so. Usage: ``python bench/bench.py [--epochs 150] [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import time
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import baselines  # noqa: E402
import pyfw  # noqa: E402
from pyfw import task  # noqa: E402


def _optional(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _pyfw_runner(fw: Any, epochs: int, batch: int, lr: float) -> Callable[[], None]:
    def go() -> None:
        g = fw.Generator(0)
        x, y, _, _ = task.make_data(fw, g)
        model = task.make_model(fw, g, "relu")
        pyfw.fit(model, fw.MSELoss(), fw.SGD(model.param(), lr=lr), x, fw.data.one_hot(y, 2),
                 epochs, batch, g)
    return go


def _time(fn: Callable[[], None], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--slow-epochs", type=int, default=10, help="epochs for pure-Python implementations")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--slow-repeat", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=10)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--only", default="", help="comma-separated subset of: pyfw_rs,numpy,torch,pyfw,naive")
    args = ap.parse_args()
    bs, lr, E, e_slow = args.batch_size, args.lr, args.epochs, min(args.slow_epochs, args.epochs)

    g = pyfw.Generator(0)
    xs, ys, _, _ = task.make_data(pyfw, g)
    x, t = xs.tolist(), pyfw.data.one_hot(ys, 2).tolist()

    rs = _optional("pyfw_rs")
    np = _optional("numpy")
    torch = _optional("torch")
    if torch is not None:
        torch.set_num_threads(1)

    # name -> (runner, epochs it runs, repeats)
    cases = {}
    if rs is not None:
        cases["pyfw_rs"] = (_pyfw_runner(rs, E, bs, lr), E, args.repeat)
    if np is not None:
        cases["numpy"] = (lambda: baselines.numpy_mlp(np, x, t, E, bs, lr), E, args.repeat)
    if torch is not None:
        cases["torch"] = (lambda: baselines.torch_mlp(torch, x, t, E, bs, lr), E, args.repeat)
    cases["pyfw"] = (_pyfw_runner(pyfw, e_slow, bs, lr), e_slow, args.slow_repeat)
    cases["naive"] = (lambda: baselines.naive_python(x, t, e_slow, bs, lr), e_slow, args.slow_repeat)
    if args.only:
        keep = set(args.only.split(","))
        cases = {k: v for k, v in cases.items() if k in keep}

    print(f"seed task: batch {bs}, lr {lr}, {E} epochs of 1000 samples, float64, one thread; median of runs")
    for name, missing in (("pyfw_rs", rs), ("numpy", np), ("torch", torch)):
        if missing is None:
            print(f"  ({name} is not installed: skipped)")
    full = {}
    for name, (fn, ran, rep) in cases.items():
        sec = _time(fn, rep)
        full[name] = sec * E / ran
        note = "" if ran == E else f"  (ran {ran} epochs x{rep}, scaled to {E})"
        print(f"{name:8s} {full[name]:9.3f} s  {1000 * sec / ran:9.3f} ms/epoch{note}", flush=True)
    for ref in ("numpy", "torch", "naive"):
        if ref in full:
            print(f"speed relative to {ref} (>1 is faster):  " +
                  "  ".join(f"{k} {full[ref] / v:.2f}x" for k, v in full.items() if k != ref))
    return 0


if __name__ == "__main__":
    sys.exit(main())
