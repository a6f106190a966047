"""Command line: ``python -m pyfw train`` trains the seed task; ``python -m pyfw demo``
trains it with both backends and compares them bit for bit.

The options of the seed task are not written here: the parser makes one option
per field of :class:`pyfw.task.Config` (``--batch-size`` from ``batch_size``),
with the field's default, help text, check and choices. What is written here are
the CLI-only options, which are deliberately not fields of ``Config``:

* ``--backend`` chooses the engine, which by the framework's promise changes
  speed and never results; ``demo`` runs both.
* ``--json``, ``--save`` and ``--quiet`` say where results go and how much is
  shown, not what is computed.

So a ``Config`` is exactly what determines a run's numbers: two runs with equal
``Config`` values give the same bits, whatever the backend and output options.

Errors in the arguments are one line on stderr, naming what was typed, with exit
status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import math
import sys
import time
import typing
from typing import Any, Callable, NoReturn, Optional

from . import io, task


def load_backend(name: str) -> Any:
    """The backend module for its short name: ``pyfw`` for ``py``, ``pyfw_rs`` for ``rs``."""
    if name not in task.BACKENDS:
        raise ValueError(f"load_backend: backend must be one of {', '.join(task.BACKENDS)}, got {name!r}")
    try:
        return importlib.import_module(task.BACKENDS[name])
    except ImportError as e:
        if name == "py":
            raise
        raise SystemExit(f"pyfw: --backend rs needs the native module pyfw_rs ({e}); "
                         "build it with 'make build' or 'pip install .'") from None


def run(backend: str = "py", on_epoch: Optional[Callable[[int, float], None]] = None,
        on_batch: Optional[Callable[[int, int, float], None]] = None, **options: Any) -> dict:
    """Compatibility wrapper: ``task.train(load_backend(backend), task.Config(**options), ...)``.

    ``options`` are fields of :class:`pyfw.task.Config` (``epochs=2, n_train=50``);
    the ones not given keep their defaults. Returns what :func:`pyfw.task.train` returns.
    """
    return task.train(load_backend(backend), task.Config(**options), on_epoch=on_epoch, on_batch=on_batch)


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


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are one line on stderr and exit status 2.

    The line is ``PROG: error: MESSAGE (see PROG --help)``; argparse's usage block
    is left out, as is any traceback.
    """

    def error(self, message: str) -> NoReturn:
        """Print the one-line error and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _field_type(f: "dataclasses.Field[Any]", kind: type) -> Callable[[str], Any]:
    """The argparse ``type`` of a Config field: parse the text as ``kind`` and check it
    with the field's ``valid``; either failure names the requirement and the text."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not f.metadata["valid"](value):
            raise argparse.ArgumentTypeError(f"must be {f.metadata['must_be']}, got {text!r}")
        return value
    parse.__name__ = kind.__name__
    return parse


def add_config_options(p: argparse.ArgumentParser) -> None:
    """One option per field of :class:`pyfw.task.Config`: ``--batch-size`` for ``batch_size``,
    with the field's default, help, choices (or checked type) and metavar."""
    hints = typing.get_type_hints(task.Config)
    for f in dataclasses.fields(task.Config):
        md = f.metadata
        kw: dict = {"dest": f.name, "default": f.default, "help": md["help"]}
        if "choices" in md:
            kw["choices"] = md["choices"]
        else:
            kw["type"] = _field_type(f, hints[f.name])
        if "metavar" in md:
            kw["metavar"] = md["metavar"]
        p.add_argument("--" + f.name.replace("_", "-"), **kw)


def config_from_args(args: argparse.Namespace) -> task.Config:
    """The :class:`pyfw.task.Config` of parsed arguments (the CLI-only ones are ignored)."""
    return task.Config(**{f.name: getattr(args, f.name) for f in dataclasses.fields(task.Config)})


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m pyfw``; ``--help`` shows every default."""
    fmt = argparse.ArgumentDefaultsHelpFormatter
    p = ArgumentParser(prog="python -m pyfw", description=__doc__.split("\n\n")[0], formatter_class=fmt)
    sub = p.add_subparsers(dest="command", required=True, metavar="{train,demo}")
    for name, helptext in (("train", "train the seed task (disk classification)"),
                           ("demo", "train the seed task with both backends and compare them bit for bit")):
        s = sub.add_parser(name, help=helptext, description=helptext, formatter_class=fmt)
        add_config_options(s)
        # The CLI-only options: not fields of task.Config (see the module docstring).
        s.add_argument("--quiet", action="store_true", help="no per-epoch log")
        if name == "train":
            s.add_argument("--backend", choices=tuple(task.BACKENDS), default="py",
                           help="py: pure-Python pyfw; rs: pyfw_rs with Rust kernels (same bits)")
            s.add_argument("--json", metavar="PATH", help="write the run's metrics as JSON")
            s.add_argument("--save", metavar="PATH", help="write the trained state dict as JSON")
    return p


def cmd_train(args: argparse.Namespace) -> int:
    """Train once and report."""
    config = config_from_args(args)
    prog = Progress(config.epochs, args.quiet)
    res = task.train(load_backend(args.backend), config, on_epoch=prog.end_epoch, on_batch=prog.batch)
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
    config = config_from_args(args)
    results = {}
    for backend in task.BACKENDS:
        print(f"--- backend {backend} ---", flush=True)
        prog = Progress(config.epochs, True)
        res = task.train(load_backend(backend), config, on_batch=prog.batch)
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
