"""Training-speed benchmark: pyfw_rs and pyfw against numpy (and PyTorch when installed).

Every case trains a ReLU MLP with MSE and plain SGD (lr 0.1) on shuffled
mini-batches, float64, one thread. Cases (``--cases``, comma-separated names
or the groups ``seed``, ``small`` (seed, p16, w64b10: the stacks pyfw_rs trains
on its fused trainer), ``wide``, ``mnist``, ``all``):

* ``seed``: the seed task, 2-25-25-25-2 on 1,000 disk points, batch 10, 150 epochs;
* ``p16``: a Playground-sized 2-16-16-1 on the same points (target: the class as
  0.0 or 1.0), batch 10, 150 epochs (the seed task's steps);
* ``w{W}b{B}``: 2-W-W-W-2 on the same data, W in {25, 64, 256, 512}, batch B in
  {10, 100}; the epochs are scaled down with the work per epoch (the table says how many);
* ``mnist``: 784-256-256-10 at batch 64 on 2,000 random samples (uniform inputs,
  one-hot targets of random classes), 3 epochs;
* ``threads``: ``fw.fit`` of one model alone against two models trained in two
  threads at once, for ``seed`` and ``w256b100``: the throughput of two threads
  as a multiple of one's;
* ``memory``: the resident memory over 1,500 epochs of the seed task's ``fw.fit``;
* ``playground``: the playground's step-and-redraw cycle (one epoch, then the
  snapshot the page draws: losses, the 50x50 output grid, the neuron grids) of a
  2-8-8-1 network on 500 training points, per backend, in cycles a second.

Convolution cases (group ``conv``), float64, one thread:

* ``conv3x32`` and ``conv32x64``: one ``Conv2d`` (kernel 3, padding 1) at batch 16,
  3 -> 32 channels on 32x32 and 32 -> 64 on 16x16, forward then backward (weight,
  bias and input gradients), repeated;
* ``denoise``: an epoch of the denoiser network (Conv2d(3, 32, 3, stride 2, padding 1),
  ReLU, Conv2d(32, 64, 3, stride 2, padding 1), ReLU, Upsample(2), Conv2d(64, 32, 3,
  padding 1), ReLU, Upsample(2), Conv2d(32, 3, 3, padding 1), Sigmoid) with MSE and SGD
  at batch 16 on 512 noisy 3x32x32 images (``fw.data.denoise_pairs``);
* ``denoise-small``: the same on 64 images of 16x16, with pure ``pyfw`` (the
  teaching figure; it runs ``--slow-images`` of them, scaled).

Their implementations: ``numpy``, the strongest numpy a competent user would write
(channel-major activations, im2col through a strided view built once per shape,
``np.matmul`` into preallocated buffers, col2im as strided in-place adds;
bench/baselines.py, ``NumpyConv``); ``loop``, pyfw_rs modules called by hand
(``m(x)``, ``m.backward(g)``; the denoiser's zero_grad, forward, loss, backward,
step); ``fit``, ``pyfw_rs.fit``; ``torch``; ``pyfw``. GFLOP/s count 2 N O C kH kW
oH oW per convolution forward and twice that for its backward (the first layer's
input gradient included), whether or not an implementation computes it.

Implementations, each timed on training alone (setup excluded):

* ``numpy``: the strongest numpy MLP a competent user would write, the main
  baseline (bench/baselines.py, ``make_numpy_fast``);
* ``numpy-simple``: a simple numpy MLP, the usual vectorized idiom;
* ``fit``: ``pyfw_rs.fit``; ``loop``: a hand-written loop over pyfw_rs
  (zero_grad, forward, loss, backward, step over ``inputs[idx]``);
* ``pyfw``: pure-Python ``pyfw.fit``, and ``naive``: nested Python loops, on
  the seed task only, over ``--slow-epochs`` epochs scaled to the full run;
* ``torch``: PyTorch when importable (optional).

Within a case the implementations are interleaved across ``--repeat`` rounds;
the table gives medians, the time per step (an epoch's time over its
``ceil(samples / batch)`` steps) and ratios to numpy from the same run. GFLOP/s are
counted two ways: *dense*, 2 flops per multiply-add of every Linear's forward
(x W^T), weight gradient (g^T x) and input gradient (g W), for every sample;
*executed*, the multiply-adds that pyfw's documented sums perform, which skip
the terms whose first factor is exactly 0 (zero activations after ReLU, zero
gradients behind them). The executed count is measured by one instrumented
pyfw_rs run of the case (the same bits as the timed ones), counting the zeros
of each Linear's input and output gradient. BLAS skips nothing, so for numpy
and torch executed equals dense.

numpy is made to use one thread: OPENBLAS_NUM_THREADS, OMP_NUM_THREADS and
MKL_NUM_THREADS are set to 1 before numpy is imported, and OPENBLAS_CORETYPE
and OPENBLAS_L2_SIZE (set on some machines for older OpenBLAS builds, they slow
a current one) are removed from this process's environment unless
``--keep-openblas-env``. The BLAS, its kernel and its thread count are printed,
and the SIMD path pyfw_rs's kernels take (``avx512``, ``avx2`` or ``portable``;
the environment variable ``PYFW_SIMD`` caps it, to measure a narrower path:
``PYFW_SIMD=avx2 python bench/bench.py --cases small``).

Usage: ``python bench/bench.py [--cases all] [--repeat 5] [--only numpy,fit,...]``;
a quick look: ``python bench/bench.py --cases seed,mnist --repeat 1 --slow-epochs 2``.
"""

from __future__ import annotations

import os
import sys

# Before anything can import numpy: one thread, and the current OpenBLAS kernel for this CPU.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
_REMOVED = {v: os.environ.get(v) for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
if "--keep-openblas-env" not in sys.argv:
    for _var in _REMOVED:
        os.environ.pop(_var, None)

import argparse  # noqa: E402
import importlib  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any, Callable, Optional  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import baselines  # noqa: E402
import pyfw  # noqa: E402
from pyfw import task  # noqa: E402

LR = 0.1
IMPLS = ("numpy", "numpy-simple", "fit", "loop", "torch", "pyfw", "naive")
SLOW = ("pyfw", "naive")
LABELS = {
    "numpy": "strongest numpy MLP",
    "numpy-simple": "simple numpy MLP",
    "fit": "pyfw_rs, fw.fit",
    "loop": "pyfw_rs, hand-written loop",
    "torch": "PyTorch, one thread",
    "pyfw": "pyfw (pure Python), fw.fit",
    "naive": "naive nested Python loops",
}


def _optional(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


@dataclass
class Case:
    name: str
    sizes: tuple
    batch: int
    epochs: int
    data: str  # "disk" or "random"
    n: int = 1000

    def macs_per_sample(self) -> int:
        return sum(a * b for a, b in zip(self.sizes, self.sizes[1:]))

    def steps(self, epochs: int) -> int:
        """Optimizer steps in ``epochs`` epochs (the last batch may be smaller)."""
        return epochs * -(-self.n // self.batch)

    def dense_flops(self, epochs: int) -> float:
        """2 flops x (forward + weight gradient + input gradient) multiply-adds, every sample."""
        return 2.0 * 3 * self.macs_per_sample() * self.n * epochs


SEED_MACS = 2 * 25 + 25 * 25 + 25 * 25 + 25 * 2


def all_cases(epoch_scale: float) -> dict:
    cases = {"seed": Case("seed", (2, 25, 25, 25, 2), 10, max(1, round(150 * epoch_scale)), "disk"),
             "p16": Case("p16", (2, 16, 16, 1), 10, max(1, round(150 * epoch_scale)), "disk")}
    for w in (25, 64, 256, 512):
        for b in (10, 100):
            sizes = (2, w, w, w, 2)
            macs = sum(p * q for p, q in zip(sizes, sizes[1:]))
            # the seed's work (150 epochs of 2-25-25-25-2), at least 2 epochs
            epochs = max(2, round(150 * epoch_scale * SEED_MACS / macs))
            cases[f"w{w}b{b}"] = Case(f"w{w}b{b}", sizes, b, epochs, "disk")
    cases["mnist"] = Case("mnist", (784, 256, 256, 10), 64, max(1, round(3 * epoch_scale)), "random", n=2000)
    return cases


def case_data(case: Case) -> tuple:
    """``(x, t)`` as nested lists of floats, the same for every implementation."""
    if case.data == "disk":
        g = pyfw.Generator(0)
        xs, ys, _, _ = task.make_data(pyfw, g, n_train=case.n, n_test=1)
        if case.sizes[-1] == 1:
            return xs.tolist(), [[float(v)] for v in ys]
        return xs.tolist(), pyfw.data.one_hot(ys, 2).tolist()
    rng = random.Random(0)
    k = case.sizes[-1]
    x = [[rng.random() for _ in range(case.sizes[0])] for _ in range(case.n)]
    t = []
    for _ in range(case.n):
        row = [0.0] * k
        row[rng.randrange(k)] = 1.0
        t.append(row)
    return x, t


def _model(fw: Any, sizes: tuple, g: Any) -> Any:
    layers: list = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(fw.Linear(a, b, generator=g))
        if i < len(sizes) - 2:
            layers.append(fw.ReLU())
    return fw.Sequential(*layers)


def make_fw(fw: Any, x: list, t: list, sizes: tuple, epochs: int, batch: int, user_loop: bool) -> Callable[[], None]:
    """Setup for a pyfw or pyfw_rs run; the returned callable trains ``epochs`` epochs."""
    g = fw.Generator(0)
    model = _model(fw, sizes, g)
    crit, opt = fw.MSELoss(), fw.SGD(model.param(), lr=LR)
    xs, ts = fw.tensor(x), fw.tensor(t)
    n = len(x)

    def fit() -> None:
        fw.fit(model, crit, opt, xs, ts, epochs, batch, g)

    def loop() -> None:
        for _ in range(epochs):
            order = fw.randperm(n, generator=g)
            for s in range(0, n, batch):
                idx = order[s:s + batch]
                opt.zero_grad()
                loss = crit(model(xs[idx]), ts[idx])
                model.backward(crit.backward())
                opt.step()
                del loss
    return loop if user_loop else fit


def executed_fraction(fw: Any, x: list, t: list, case: Case, epochs: int) -> float:
    """Executed / dense multiply-adds over ``epochs`` epochs of the case, counted in pyfw_rs.

    The same draws and operations as ``fw.fit``; the zeros of each Linear's input
    (forward) and of its output gradient (both backward products) are counted.
    Long runs count every ``stride``-th epoch (and the last), training the others uncounted.
    """
    g = fw.Generator(0)
    model = _model(fw, case.sizes, g)
    crit, opt = fw.MSELoss(), fw.SGD(model.param(), lr=LR)
    xs, ts = fw.tensor(x), fw.tensor(t)
    n, batch = len(x), case.batch
    mods = list(model.children())
    stride = max(1, epochs // 5)
    done = dense = 0

    def nnz(tensor: Any) -> int:
        return sum(1 for row in tensor.tolist() for v in row if v != 0.0)

    for ep in range(epochs):
        if ep % stride and ep != epochs - 1:
            fw.train_epoch(model, crit, opt, xs, ts, batch, g)
            continue
        order = fw.randperm(n, generator=g)
        for s in range(0, n, batch):
            idx = order[s:s + batch]
            m = len(idx)
            opt.zero_grad()
            a = xs[idx]
            for mod in mods:
                if isinstance(mod, fw.Linear):
                    done += nnz(a) * mod.out_features
                    dense += m * mod.in_features * mod.out_features
                a = mod(a)
            crit(a, ts[idx])
            gr = crit.backward()
            for mod in reversed(mods):
                if isinstance(mod, fw.Linear):
                    done += 2 * nnz(gr) * mod.in_features
                    dense += 2 * m * mod.in_features * mod.out_features
                gr = mod.backward(gr)
            opt.step()
    return done / dense


def blas_report(np: Any) -> list:
    lines = [f"numpy {np.__version__}"]
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        lines[0] += f", built with BLAS {blas.get('name', '?')} {blas.get('version', '')}".rstrip()
    except Exception:  # older numpy: no dicts mode
        pass
    tpc = _optional("threadpoolctl")
    if tpc is None:
        lines.append("  (threadpoolctl not importable: kernel and thread count unknown; "
                     "OPENBLAS_NUM_THREADS=1 was set before numpy was imported)")
        return lines
    for info in tpc.threadpool_info():
        if info.get("user_api") == "blas":
            lines.append(f"  BLAS in use: {info.get('internal_api')} {info.get('version')}, "
                         f"kernel {info.get('architecture')}, {info.get('num_threads')} thread(s), "
                         f"{os.path.basename(info.get('filepath', ''))}")
    return lines


def _build_id(rs: Any) -> str:
    """The native library's file, size and modification time, and the checkout's commit."""
    import hashlib
    import subprocess
    native = getattr(rs, "_native", None)
    path = getattr(native, "__file__", None) or getattr(rs, "__file__", "?")
    try:
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:12]
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.path.getmtime(path)))
        head = subprocess.run(["git", "-C", os.path.dirname(HERE), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip() or "?"
    except OSError:
        return path
    return f"{os.path.basename(path)} sha256 {digest}, built {stamp}; checkout at {head}"


def _fmt_time(sec: float) -> str:
    return f"{sec:.3g} s" if sec < 100 else f"{sec:.0f} s"


def run_case(case: Case, impls: list, mods: dict, args: argparse.Namespace) -> list:
    x, t = case_data(case)
    np, rs, torch = mods.get("numpy"), mods.get("pyfw_rs"), mods.get("torch")
    e_slow = min(args.slow_epochs, case.epochs)
    makers: dict = {}
    for impl in impls:
        if impl == "numpy":
            makers[impl] = (lambda: baselines.make_numpy_fast(np, x, t, case.sizes, case.epochs, case.batch, LR),
                            case.epochs, args.repeat)
        elif impl == "numpy-simple":
            makers[impl] = (lambda: baselines.make_numpy_simple(np, x, t, case.sizes, case.epochs, case.batch, LR),
                            case.epochs, args.repeat)
        elif impl == "torch":
            makers[impl] = (lambda: baselines.make_torch(torch, x, t, case.sizes, case.epochs, case.batch, LR),
                            case.epochs, args.repeat)
        elif impl in ("fit", "loop"):
            makers[impl] = ((lambda u=(impl == "loop"): make_fw(rs, x, t, case.sizes, case.epochs, case.batch, u)),
                            case.epochs, args.repeat)
        elif impl == "pyfw":
            makers[impl] = (lambda: make_fw(pyfw, x, t, case.sizes, e_slow, case.batch, False),
                            e_slow, args.slow_repeat)
        elif impl == "naive":
            makers[impl] = (lambda: baselines.make_naive_python(x, t, case.sizes, e_slow, case.batch, LR),
                            e_slow, args.slow_repeat)
    times: dict = {k: [] for k in makers}
    for r in range(max(v[2] for v in makers.values()) if makers else 0):
        for impl, (make, _, rep) in makers.items():
            if r >= rep:
                continue
            fn = make()
            t0 = time.perf_counter()
            fn()
            times[impl].append(time.perf_counter() - t0)
    frac = None
    if rs is not None and not args.no_count:
        frac = executed_fraction(rs, x, t, case, case.epochs)
    dense = case.dense_flops(case.epochs)
    rows = []
    for impl, (_, ran, _) in makers.items():
        med = statistics.median(times[impl])
        full = med * case.epochs / ran
        spread = (max(times[impl]) - min(times[impl])) / med if len(times[impl]) > 1 else 0.0
        blas = impl in ("numpy", "numpy-simple", "torch")
        gf_dense = dense / full / 1e9
        gf_exec = gf_dense if blas or frac is None else gf_dense * frac
        rows.append({"impl": impl, "time": full, "ran": ran, "runs": len(times[impl]), "spread": spread,
                     "dense": gf_dense, "exec": gf_exec, "exec_known": blas or frac is not None})
    base = next((r["time"] for r in rows if r["impl"] == "numpy"), None)
    for row in rows:
        row["vs"] = None if base is None else row["time"] / base
    return [case, frac, rows]


def _ratio(v: Optional[float]) -> str:
    if v is None:
        return "—"
    if abs(v - 1.0) < 1e-12:
        return "1"
    return f"{1 / v:.2f}× faster" if v < 1 else f"{v:.2f}× slower"


def print_case(case: Case, frac: Optional[float], rows: list) -> None:
    arch = "-".join(map(str, case.sizes))
    data = "disk points" if case.data == "disk" else "random samples"
    head = f"\n{case.name}: {arch}, batch {case.batch}, {case.epochs} epochs of {case.n} {data}"
    dense = case.dense_flops(case.epochs)
    head += f"; {dense / case.epochs / 1e6:.1f} MFLOP/epoch dense"
    if frac is not None:
        head += f", {frac * dense / case.epochs / 1e6:.1f} executed ({100 * frac:.0f}%)"
    print(head)
    print(f"  {'implementation':28s} {'time':>9s} {'per epoch':>10s} {'per step':>9s} {'GFLOP/s dense':>13s} "
          f"{'exec':>6s}  {'against numpy':16s} runs, spread")
    for r in rows:
        note = f"  (ran {r['ran']} epochs, scaled)" if r["ran"] != case.epochs else ""
        ex = f"{r['exec']:6.2f}" if r["exec_known"] else "     ?"
        per_step = 1e6 * r["time"] / case.steps(case.epochs)
        print(f"  {LABELS[r['impl']]:28s} {_fmt_time(r['time']):>9s} {1e3 * r['time'] / case.epochs:8.3g}ms "
              f"{per_step:7.3g}µs {r['dense']:13.2f} {ex}  {_ratio(r['vs']):16s} {r['runs']}, "
              f"{100 * r['spread']:.0f}%{note}",
              flush=True)


def print_markdown(results: list) -> None:
    print("\n| case | implementation | time | per step | GFLOP/s dense / executed | against the strongest numpy |")
    print("|---|---|---|---|---|---|")
    for case, frac, rows in results:
        arch = "-".join(map(str, case.sizes))
        what = f"{arch}, batch {case.batch}, {case.epochs} ep."
        if case.name == "seed":
            what = f"seed task ({what})"
        for r in rows:
            ex = f"{r['exec']:.2f}" if r["exec_known"] else "?"
            scaled = f" (from {r['ran']} ep.)" if r["ran"] != case.epochs else ""
            per_step = 1e6 * r["time"] / case.steps(case.epochs)
            print(f"| {what} | {LABELS[r['impl']]} | {_fmt_time(r['time'])}{scaled} | {per_step:.3g} µs | "
                  f"{r['dense']:.2f} / {ex} | {_ratio(r['vs'])} |")
            what = ""


def thread_scaling(rs: Any, case: Case, repeat: int) -> tuple:
    """The fastest of ``repeat`` runs of one ``fw.fit`` of the case alone, and of
    two fits of two models in two threads started together (interleaved);
    returns ``(alone, together)``. The fastest run is the one least disturbed
    by the machine's other work, which would otherwise decide the ratio."""
    x, t = case_data(case)

    def once(n: int) -> float:
        runs = [make_fw(rs, x, t, case.sizes, case.epochs, case.batch, False) for _ in range(n)]
        threads = [threading.Thread(target=r) for r in runs]
        start = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        return time.perf_counter() - start

    alone, together = [], []
    for _ in range(repeat):
        alone.append(once(1))
        together.append(once(2))
    return min(alone), min(together)


def _rss_mib() -> float:
    """This process's resident memory now, in MiB (Linux), else its peak so far."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def memory_profile(rs: Any, case: Case, epochs: int = 1500) -> list:
    """Resident memory (MiB) at epochs 1, 10, 150, 750 and ``epochs`` of one long ``fw.fit``."""
    x, t = case_data(case)
    g = rs.Generator(0)
    model = _model(rs, case.sizes, g)
    opt = rs.SGD(model.param(), lr=LR)
    marks = {1, 10, 150, 750, epochs}
    seen: list = []

    def on_epoch(e: int, loss: float) -> None:
        if e in marks:
            seen.append((e, _rss_mib()))

    rs.fit(model, rs.MSELoss(), opt, rs.tensor(x), rs.tensor(t), epochs, case.batch, g, on_epoch=on_epoch)
    return seen


PLAYGROUND = {"problem": "regression", "regDataset": "reg-plane", "points": "1000", "percTrainData": "50",
              "networkShape": "8,8", "batchSize": "10", "activation": "tanh", "learningRate": "0.03"}
"""The playground case: a 2-8-8-1 network on 500 training points (the README's frame-rate figure)."""


def playground_cycle(fw: Any, repeat: int, cycles: int = 20) -> float:
    """Seconds per step-and-redraw cycle of the playground on backend ``fw`` (fastest of ``repeat``)."""
    from pyfw import playground

    config, page = playground.config_of(dict(PLAYGROUND))
    run = playground.Run(fw, config, page)
    best = float("inf")
    try:
        with run.lock:
            for _ in range(repeat):
                t0 = time.perf_counter()
                for _ in range(cycles):
                    run.step()
                    run.snapshot = run._measure()
                best = min(best, (time.perf_counter() - t0) / cycles)
    finally:
        run.close()
    return best


def print_extras(rs: Any, known: dict, chosen: list, repeat: int) -> None:
    """The thread-scaling, memory and playground lines (cases ``threads``, ``memory``, ``playground``)."""
    if "threads" in chosen:
        print("\nthreads: fw.fit of one model alone, and of two models in two threads at once (fastest of "
              f"{repeat}); throughput of two = 2 x alone / together")
        for name in ("seed", "w256b100"):
            case = known[name]
            alone, together = thread_scaling(rs, case, repeat)
            print(f"  {name:10s} one alone {_fmt_time(alone):>8s}   two together {_fmt_time(together):>8s}   "
                  f"throughput {2 * alone / together:.2f}x of one", flush=True)
    if "memory" in chosen:
        prof = memory_profile(rs, known["seed"])
        marks = "  ".join(f"epoch {e}: {m:.1f}" for e, m in prof)
        growth = prof[-1][1] - prof[2][1]
        print(f"\nmemory: resident MiB over 1,500 epochs of the seed task's fw.fit: {marks}; "
              f"epoch 150 to 1,500: {growth:+.1f} MiB")
    if "playground" in chosen:
        import pyfw
        print("\nplayground: one epoch and the page's snapshot of a 2-8-8-1 network on 500 training points "
              f"(fastest of {repeat})")
        for fw in (rs, pyfw):
            sec = playground_cycle(fw, repeat, cycles=20 if fw is rs else 3)
            print(f"  {fw.__name__:8s} {sec * 1e3:7.1f} ms a cycle, {1 / sec:6.1f} a second", flush=True)


CONV_IMPLS = ("numpy", "loop", "fit", "torch", "pyfw")
CONV_LABELS = {
    "numpy": "strongest numpy (im2col)",
    "loop": "pyfw_rs, modules by hand",
    "fit": "pyfw_rs, fw.fit",
    "torch": "PyTorch, one thread",
    "pyfw": "pyfw (pure Python), fw.fit",
}


@dataclass
class ConvCase:
    """A convolution case: one ``Conv2d`` (``kind="layer"``, ``steps`` forward and backward
    passes) or the denoiser (``kind="denoise"``, ``steps`` epochs of ``n`` images)."""
    name: str
    kind: str
    steps: int
    c: int = 3
    o: int = 32
    size: int = 32
    batch: int = 16
    n: int = 0

    def flops(self) -> float:
        """Forward (2 N O C kH kW oH oW per convolution) plus backward (twice that), all steps."""
        if self.kind == "layer":
            return 3 * baselines.conv_flops(self.batch, self.c, self.o, 3, self.size, self.size) * self.steps
        return baselines.denoiser_flops(self.n, self.size) * self.steps

    def describe(self) -> str:
        if self.kind == "layer":
            return (f"Conv2d({self.c}, {self.o}, 3, padding=1) on {self.batch}x{self.c}x{self.size}x{self.size}, "
                    f"forward + backward x {self.steps}")
        return (f"denoiser, batch {self.batch}, {self.steps} epoch(s) of {self.n} images "
                f"3x{self.size}x{self.size}")


def conv_cases(epoch_scale: float) -> dict:
    steps = lambda k: max(1, round(k * epoch_scale))  # noqa: E731
    return {c.name: c for c in (
        ConvCase("conv3x32", "layer", steps(40), c=3, o=32, size=32),
        ConvCase("conv32x64", "layer", steps(15), c=32, o=64, size=16),
        ConvCase("denoise", "denoise", steps(1), n=512),
        ConvCase("denoise-small", "denoise", steps(1), size=16, n=64),
    )}


def _denoiser(fw: Any, g: Any) -> Any:
    (a, b, _), (_, c, _), (_, d, _), (_, e, _) = baselines.DENOISER
    return fw.Sequential(fw.Conv2d(a, b, 3, stride=2, padding=1, generator=g), fw.ReLU(),
                         fw.Conv2d(b, c, 3, stride=2, padding=1, generator=g), fw.ReLU(),
                         fw.Upsample(scale_factor=2), fw.Conv2d(c, d, 3, padding=1, generator=g), fw.ReLU(),
                         fw.Upsample(scale_factor=2), fw.Conv2d(d, e, 3, padding=1, generator=g), fw.Sigmoid())


def conv_data(case: ConvCase, rs: Any) -> tuple:
    """``(x, t)`` as nested lists: random input and output gradient (layer), or noisy pairs (denoiser)."""
    if case.kind == "layer":
        rng = random.Random(0)
        rand = lambda *shape: [rand(*shape[1:]) for _ in range(shape[0])] if shape else rng.uniform(-1, 1)  # noqa: E731
        return rand(case.batch, case.c, case.size, case.size), rand(case.batch, case.o, case.size, case.size)
    fw = rs if rs is not None else pyfw  # the same bits; pyfw_rs draws them faster
    a, b, _ = fw.data.denoise_pairs(case.n, size=case.size, generator=fw.Generator(0))
    return a.tolist(), b.tolist()


def make_fw_conv(fw: Any, case: ConvCase, x: list, t: list, impl: str, images: int) -> Callable[[], None]:
    """Setup of a pyfw or pyfw_rs run of the case; the callable runs it (the denoiser on ``images``)."""
    g = fw.Generator(0)
    if case.kind == "layer":
        m = fw.Conv2d(case.c, case.o, 3, padding=1, generator=g)
        xs, gy = fw.tensor(x), fw.tensor(t)

        def passes() -> None:
            for _ in range(case.steps):
                m(xs)
                m.backward(gy)
        return passes
    model = _denoiser(fw, g)
    crit, opt = fw.MSELoss(), fw.SGD(model.param(), lr=LR)
    xs, ts = fw.tensor(x[:images]), fw.tensor(t[:images])

    def fit() -> None:
        fw.fit(model, crit, opt, xs, ts, case.steps, case.batch, g)

    def loop() -> None:
        for _ in range(case.steps):
            order = fw.randperm(images, generator=g)
            for s in range(0, images, case.batch):
                idx = order[s:s + case.batch]
                opt.zero_grad()
                loss = crit(model(xs[idx]), ts[idx])
                model.backward(crit.backward())
                opt.step()
                del loss
    return loop if impl == "loop" else fit


def run_conv_case(case: ConvCase, impls: list, mods: dict, args: argparse.Namespace) -> list:
    """Time each implementation (interleaved over ``--repeat`` rounds) and return the rows."""
    np, rs, torch = mods.get("numpy"), mods.get("pyfw_rs"), mods.get("torch")
    x, t = conv_data(case, rs)
    slow = min(case.n, max(case.batch, args.slow_images)) if case.kind == "denoise" else 0
    makers: dict = {}
    for impl in impls:
        if impl == "numpy":
            if case.kind == "layer":
                rng = np.random.default_rng(0)
                k = 1.0 / math.sqrt(case.c * 9)
                w, b = rng.uniform(-k, k, (case.o, case.c, 3, 3)), rng.uniform(-k, k, case.o)
                make = lambda: baselines.make_numpy_conv_step(np, np.array(x), np.array(t), w, b, 1, 1,  # noqa: E731
                                                              case.steps)
            else:
                make = lambda: baselines.make_numpy_denoiser(np, np.array(x), np.array(t), case.steps,  # noqa: E731
                                                             case.batch, LR)
            makers[impl] = (make, case.n, args.repeat)
        elif impl == "torch":
            if case.kind == "layer":
                make = lambda: baselines.make_torch_conv_step(torch, x, t, case.c, case.o, case.steps)  # noqa: E731
            else:
                make = lambda: baselines.make_torch_denoiser(torch, x, t, case.steps, case.batch, LR)  # noqa: E731
            makers[impl] = (make, case.n, args.repeat)
        elif impl in ("loop", "fit"):
            makers[impl] = ((lambda i=impl: make_fw_conv(rs, case, x, t, i, case.n)), case.n, args.repeat)
        elif impl == "pyfw":
            makers[impl] = (lambda: make_fw_conv(pyfw, case, x, t, "fit", slow), slow, args.slow_repeat)
    times: dict = {k: [] for k in makers}
    for r in range(max(v[2] for v in makers.values()) if makers else 0):
        for impl, (make, _, rep) in makers.items():
            if r >= rep:
                continue
            fn = make()
            t0 = time.perf_counter()
            fn()
            times[impl].append(time.perf_counter() - t0)
    rows = []
    for impl, (_, ran, _) in makers.items():
        med = statistics.median(times[impl])
        full = med * case.n / ran if case.kind == "denoise" else med
        spread = (max(times[impl]) - min(times[impl])) / med if len(times[impl]) > 1 else 0.0
        rows.append({"impl": impl, "time": full, "ran": ran, "runs": len(times[impl]), "spread": spread,
                     "gflops": case.flops() / full / 1e9})
    for ref in ("numpy", "torch"):
        base = next((r["time"] for r in rows if r["impl"] == ref), None)
        for row in rows:
            row[ref] = None if base is None else row["time"] / base
    return [case, rows]


def print_conv_case(case: ConvCase, rows: list) -> None:
    print(f"\n{case.name}: {case.describe()}; {case.flops() / 1e6:.0f} MFLOP")
    per = "per step" if case.kind == "layer" else "per epoch"
    print(f"  {'implementation':28s} {'time':>9s} {per:>10s} {'GFLOP/s':>8s}  {'against numpy':16s} "
          f"{'against torch':16s} runs, spread")
    for r in rows:
        note = f"  (ran {r['ran']} images, scaled)" if case.kind == "denoise" and r["ran"] != case.n else ""
        each = r["time"] / case.steps
        each_s = f"{1e3 * each:.3g}ms" if each < 1 else _fmt_time(each)
        print(f"  {CONV_LABELS[r['impl']]:28s} {_fmt_time(r['time']):>9s} {each_s:>10s} {r['gflops']:8.2f}  "
              f"{_ratio(r['numpy']):16s} {_ratio(r['torch']):16s} {r['runs']}, {100 * r['spread']:.0f}%{note}",
              flush=True)


def print_conv_markdown(results: list) -> None:
    print("\n| case | implementation | time | GFLOP/s | against numpy | against torch |")
    print("|---|---|---|---|---|---|")
    for case, rows in results:
        what = case.describe()
        for r in rows:
            scaled = f" (from {r['ran']} images)" if case.kind == "denoise" and r["ran"] != case.n else ""
            print(f"| {what} | {CONV_LABELS[r['impl']]} | {_fmt_time(r['time'])}{scaled} | {r['gflops']:.2f} | "
                  f"{_ratio(r['numpy'])} | {_ratio(r['torch'])} |")
            what = ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="all",
                    help="comma-separated: seed, small, wide, mnist, conv, all, or names such as w64b10 (default: all)")
    ap.add_argument("--only", default="", help="comma-separated subset of: " + ",".join(IMPLS)
                    + " (the convolution cases: " + ",".join(CONV_IMPLS) + ")")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each implementation per case (default 5)")
    ap.add_argument("--slow-repeat", type=int, default=3, help="runs of pyfw and naive (default 3)")
    ap.add_argument("--slow-epochs", type=int, default=10,
                    help="epochs for pyfw and naive, scaled to the case's (default 10)")
    ap.add_argument("--epoch-scale", type=float, default=1.0, help="multiply every case's epochs (default 1)")
    ap.add_argument("--slow-images", type=int, default=16,
                    help="images pyfw trains on in denoise-small, scaled to the case's (default 16)")
    ap.add_argument("--no-count", action="store_true", help="skip the instrumented run counting executed terms")
    ap.add_argument("--markdown", action="store_true", help="also print one markdown table of every case")
    ap.add_argument("--keep-openblas-env", action="store_true",
                    help="keep OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE if set")
    args = ap.parse_args()

    known = all_cases(args.epoch_scale)
    convs = conv_cases(args.epoch_scale)
    extras = ["threads", "memory", "playground"]
    groups = {"all": [*known, *convs, *extras], "wide": [k for k in known if k.startswith("w")], "seed": ["seed"],
              "small": ["seed", "p16", "w64b10"], "mnist": ["mnist"], "conv": list(convs)}
    chosen: list = []
    for name in args.cases.split(","):
        name = name.strip()
        names = groups.get(name, [name])
        for k in names:
            if k not in known and k not in convs and k not in extras:
                ap.error(f"unknown case {k!r}; known: {', '.join([*known, *convs, *extras])}, "
                         "or seed, small, wide, mnist, conv, all")
            if k not in chosen:
                chosen.append(k)
    wanted = [i for i in IMPLS if not args.only or i in args.only.split(",")]
    wanted_conv = [i for i in CONV_IMPLS if not args.only or i in args.only.split(",")]

    mods = {name: _optional(name) for name in ("numpy", "pyfw_rs", "torch")}
    if mods["torch"] is not None:
        mods["torch"].set_num_threads(1)
    need = {"numpy": "numpy", "numpy-simple": "numpy", "torch": "torch", "fit": "pyfw_rs", "loop": "pyfw_rs"}

    print(f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("threads: OPENBLAS_NUM_THREADS=OMP_NUM_THREADS=MKL_NUM_THREADS=1 set before importing numpy")
    removed = {k: v for k, v in _REMOVED.items() if v is not None}
    if removed:
        how = "kept (--keep-openblas-env)" if args.keep_openblas_env else "removed for this process"
        print("  " + ", ".join(f"{k}={v}" for k, v in removed.items()) + f": {how}")
    if mods["numpy"] is not None:
        for line in blas_report(mods["numpy"]):
            print(line)
    if mods["pyfw_rs"] is not None:
        print(f"pyfw_rs: {_build_id(mods['pyfw_rs'])}")
        simd = getattr(getattr(mods["pyfw_rs"], "_native", None), "_simd_path", None)
        if simd is not None:
            cap = os.environ.get("PYFW_SIMD")
            print(f"pyfw_rs SIMD path: {simd()}" + (f" (PYFW_SIMD={cap})" if cap else ""))
    if mods["torch"] is not None:
        print(f"torch {mods['torch'].__version__}, {mods['torch'].get_num_threads()} thread(s)")
    for impl in wanted:
        if impl in need and mods[need[impl]] is None:
            print(f"  ({need[impl]} is not importable: {impl} skipped)")

    results = []
    for name in (c for c in chosen if c in known):
        case = known[name]
        impls = [i for i in wanted if (i not in need or mods[need[i]] is not None)
                 and (i not in SLOW or name == "seed")]
        result = run_case(case, impls, mods, args)
        print_case(*result)
        results.append(result)
    if results:
        print("\nGFLOP/s: dense counts 2 flops per multiply-add of each Linear's forward, weight gradient and "
              "input gradient, every sample;\nexecuted counts only the terms pyfw's sums add (first factor "
              "nonzero), measured in one instrumented pyfw_rs run;\nBLAS skips nothing, so for numpy and "
              "torch executed = dense. Times are medians; spread is (max - min) / median.")
    conv_results = []
    for name in (c for c in chosen if c in convs):
        case = convs[name]
        impls = [i for i in wanted_conv if (i not in need or mods[need[i]] is not None)
                 and (i != "pyfw" or name == "denoise-small") and (i != "fit" or case.kind == "denoise")]
        result = run_conv_case(case, impls, mods, args)
        print_conv_case(*result)
        conv_results.append(result)
    if conv_results:
        print("\nGFLOP/s of the convolution cases: 2 N O C kH kW oH oW flops per convolution forward, twice that "
              "for its backward\n(the first layer's input gradient included). Times are medians; spread is "
              "(max - min) / median.")
    if mods["pyfw_rs"] is not None and (set(extras) & set(chosen)):
        print_extras(mods["pyfw_rs"], known, chosen, args.repeat)
    if args.markdown:
        if results:
            print_markdown(results)
        if conv_results:
            print_conv_markdown(conv_results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
