"""Command line: ``python -m pyfw train`` trains the seed task; ``python -m pyfw demo``
trains it with both backends and compares them bit for bit."""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
import time
from typing import Any, Optional

from . import io, task
from .metrics import error_rate
from .training import fit


def load_backend(name: str) -> Any:
    """``pyfw`` for ``py``, ``pyfw_rs`` for ``rs``."""
    if name == "py":
        return importlib.import_module("pyfw")
    try:
        return importlib.import_module("pyfw_rs")
    except ImportError as e:
        raise SystemExit(f"pyfw: --backend rs needs the native module pyfw_rs ({e}); "
                         "build it with 'make build' or 'pip install .'") from None


def run(backend: str = "py", epochs: int = 150, batch_size: int = 10, lr: float = 0.1,
        activation: str = "relu", seed: int = 0, n_train: int = 1000, n_test: int = 1000,
        on_epoch: Any = None, on_batch: Any = None) -> dict:
    """Train the seed task once; returns the metrics and the trained model under ``"model"``."""
    fw = load_backend(backend)
    g = fw.Generator(seed)
    x_train, y_train, x_test, y_test = task.make_data(fw, g, n_train, n_test)
    model = task.make_model(fw, g, activation)
    criterion = fw.MSELoss()
    optimizer = fw.SGD(model.param(), lr=lr)
    targets = fw.data.one_hot(y_train, 2)
    start = time.perf_counter()
    losses = fit(model, criterion, optimizer, x_train, targets, epochs, batch_size, g,
                 on_epoch=on_epoch, on_batch=on_batch)
    seconds = time.perf_counter() - start
    model.eval()
    return {
        "backend": backend, "epochs": epochs, "batch_size": batch_size, "lr": lr,
        "activation": activation, "seed": seed, "n_train": n_train, "n_test": n_test,
        "train_error": error_rate(model(x_train), y_train),
        "test_error": error_rate(model(x_test), y_test),
        "final_loss": losses[-1], "losses": losses, "seconds": seconds, "model": model,
    }


class Progress:
    """A live progress line on a terminal (stderr) and one log line per epoch (stdout)."""

    def __init__(self, epochs: int, quiet: bool = False, stream: Any = None) -> None:
        self.epochs, self.quiet = epochs, quiet
        self.stream = stream if stream is not None else sys.stderr
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty() and not quiet
        self.epoch = 1
        self.start = time.perf_counter()
        self.shown = 0.0

    def batch(self, k: int, n: int, loss: float) -> None:
        """Redraw the live line, at most ten times a second."""
        if not self.live:
            return
        now = time.perf_counter()
        if now - self.shown >= 0.1:
            self.shown = now
            done = int(20 * k / n)
            self.stream.write(f"\repoch {self.epoch}/{self.epochs} [{'#' * done}{'.' * (20 - done)}] "
                              f"batch {k}/{n} loss {loss:.6f}")
            self.stream.flush()

    def end_epoch(self, epoch: int, loss: float) -> None:
        """Clear the live line and log the epoch's loss."""
        if self.live:
            self.stream.write("\r\x1b[K")
        if not self.quiet:
            print(f"epoch {epoch:4d}/{self.epochs}  loss {loss:.6f}  {time.perf_counter() - self.start:7.2f} s",
                  flush=True)
        self.epoch = epoch + 1


def _positive_int(text: str) -> int:
    v = int(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {v}")
    return v


def _lr(text: str) -> float:
    v = float(text)
    if not v >= 0.0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be finite and non-negative, got {text}")
    return v


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m pyfw``."""
    p = argparse.ArgumentParser(prog="python -m pyfw", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    d = task.DEFAULTS
    for name, helptext in (("train", "train the seed task (disk classification)"),
                           ("demo", "train the seed task with both backends and compare them bit for bit")):
        s = sub.add_parser(name, help=helptext)
        s.add_argument("--epochs", type=_positive_int, default=d["epochs"])
        s.add_argument("--batch-size", type=_positive_int, default=d["batch_size"])
        s.add_argument("--lr", type=_lr, default=d["lr"], help="learning rate of SGD")
        s.add_argument("--activation", choices=task.ACTIVATIONS, default=d["activation"])
        s.add_argument("--seed", type=int, default=d["seed"])
        s.add_argument("--n-train", type=_positive_int, default=d["n_train"])
        s.add_argument("--n-test", type=_positive_int, default=d["n_test"])
        s.add_argument("--quiet", action="store_true", help="no per-epoch log")
        if name == "train":
            s.add_argument("--backend", choices=("py", "rs"), default="py")
            s.add_argument("--json", metavar="PATH", help="write the run's metrics as JSON")
            s.add_argument("--save", metavar="PATH", help="write the trained state dict as JSON")
    return p


def _config(args: argparse.Namespace) -> dict:
    return {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
            "activation": args.activation, "seed": args.seed, "n_train": args.n_train, "n_test": args.n_test}


def cmd_train(args: argparse.Namespace) -> int:
    """Train once and report."""
    prog = Progress(args.epochs, args.quiet)
    res = run(args.backend, **_config(args), on_epoch=prog.end_epoch, on_batch=prog.batch)
    model = res.pop("model")
    print(f"train error {100 * res['train_error']:.2f}%  test error {100 * res['test_error']:.2f}%  "
          f"final loss {res['final_loss']:.6f}  ({res['epochs']} epochs, {res['seconds']:.2f} s, "
          f"backend {res['backend']})")
    if args.json:
        io.write_atomic(args.json, json.dumps(_finite_or_null(res), indent=2) + "\n")
    if args.save:
        try:
            io.save(model.state_dict(), args.save)
        except ValueError as e:
            print(f"pyfw: not saved: {e} (did training diverge?)", file=sys.stderr)
            return 1
    return 0


def _finite_or_null(obj: Any) -> Any:
    """JSON has no NaN or infinity: a diverged run reports them as null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, list):
        return [_finite_or_null(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _finite_or_null(v) for k, v in obj.items()}
    return obj


def cmd_demo(args: argparse.Namespace) -> int:
    """Train with both backends; print errors, times, and whether the results are bit-identical."""
    results = {}
    for backend in ("py", "rs"):
        print(f"--- backend {backend} ---", flush=True)
        prog = Progress(args.epochs, True)
        res = run(backend, **_config(args), on_batch=prog.batch)
        if prog.live:
            sys.stderr.write("\r\x1b[K")
        results[backend] = res
        print(f"train error {100 * res['train_error']:.2f}%  test error {100 * res['test_error']:.2f}%  "
              f"final loss {res['final_loss']:.6f}  time {res['seconds']:.2f} s", flush=True)
    py, rs = results["py"], results["rs"]
    same_w = _hex_state(py["model"]) == _hex_state(rs["model"])
    same_l = [v.hex() for v in py["losses"]] == [v.hex() for v in rs["losses"]]
    print(f"speed-up of pyfw_rs over pyfw: {py['seconds'] / rs['seconds']:.1f}x")
    print(f"final weights bit-identical: {'yes' if same_w else 'NO'}; "
          f"epoch losses bit-identical: {'yes' if same_l else 'NO'}")
    return 0 if same_w and same_l else 1


def _hex_state(model: Any) -> dict:
    out = {}
    for name, t in model.state_dict().items():
        v = t.tolist()
        out[name] = [[x.hex() for x in r] for r in v] if isinstance(v[0], list) else [x.hex() for x in v]
    return out


def main(argv: Optional[list] = None) -> int:
    """Entry point of ``python -m pyfw``."""
    args = parser().parse_args(argv)
    if args.command == "train":
        return cmd_train(args)
    return cmd_demo(args)
