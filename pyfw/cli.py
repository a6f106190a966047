"""Command line: ``python -m pyfw train`` trains the seed task, ``predict`` applies a
model file to the rows of a CSV file, ``plot`` draws a run's curves or a model's
decision regions as SVG, and ``demo`` trains with both backends and compares them
bit for bit.

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
status 2. Every path of a command is checked before any work (:func:`check_paths`):
two that name one file are refused, and an existing output needs ``--force``.
Numbers are ASCII decimals (:func:`parse_number`). Any other error is one
line with exit status 1 (a loss that becomes NaN or infinite stops the run at
once); Ctrl-C is one line and exit status 130.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import math
import os
import re
import stat
import sys
import tempfile
import time
import typing
from typing import Any, Callable, NoReturn, Optional

from . import io, plot, task
from .metrics import argmax_rows, error_rate


class CLIError(Exception):
    """An error the CLI reports as one line on stderr, with exit status ``status``."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


class Diverged(CLIError):
    """The training loss became NaN or infinite."""


def check_output(path: str, option: str, stdout_ok: bool = False) -> None:
    """Check, before any work, that ``path`` can be written: its folder exists and
    takes a new file, and it is not a folder; a stream that exists (a FIFO,
    ``/dev/null``) is written in place. ``-`` is standard output where allowed."""
    if stdout_ok and path == "-":
        return
    if os.path.isdir(path):
        raise CLIError(f"{option} {path}: is a folder, not a file", 2)
    if os.path.exists(path) and not os.path.isfile(path):  # a FIFO, /dev/null, a terminal: written in place
        if not os.access(path, os.W_OK):
            raise CLIError(f"{option} {path}: cannot be written (permission denied)", 2)
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CLIError(f"{option} {path}: the folder {folder} does not exist", 2)
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".pyfw-probe-"):
            pass
    except OSError as e:
        raise CLIError(f"{option} {path}: cannot write into {folder} ({e.strerror})", 2) from None


def check_input(path: str, option: str, stdin_ok: bool = False) -> None:
    """Check that ``path`` can be read: it exists and is not a folder. A FIFO or a
    device such as ``/dev/stdin`` is read as a stream; ``-`` is standard input where allowed."""
    if stdin_ok and path == "-":
        return
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise CLIError(f"{option} {path}: does not exist", 2) from None
    except OSError as e:
        raise CLIError(f"{option} {path}: cannot be read ({e.strerror})", 2) from None
    if stat.S_ISDIR(mode):
        raise CLIError(f"{option} {path}: is a folder", 2)
    if not os.access(path, os.R_OK):
        raise CLIError(f"{option} {path}: cannot be read (permission denied)", 2)


def _same_file(a: str, b: str) -> bool:
    """Whether writing ``a`` would destroy ``b`` or the other way round: one regular
    file under two names (links and hard links included), or one path not yet written.
    A stream (a FIFO, ``/dev/null``, a terminal) named twice is no collision."""
    def status(path: str) -> Optional[os.stat_result]:
        try:
            return os.stat(path)
        except OSError:
            return None
    sa, sb = status(a), status(b)
    if sa is not None and sb is not None:
        return os.path.samestat(sa, sb) and stat.S_ISREG(sa.st_mode)
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def check_paths(inputs: list, outputs: list, force: bool = False, stdio: tuple = (), kept: tuple = ()) -> None:
    """Check every path of a command before any work. ``inputs`` (read) and
    ``outputs`` (written) are ``(option, path)`` pairs; a ``None`` path is left out,
    and ``-`` is standard input or output for the options in ``stdio``.

    Each input must be readable (:func:`check_input`) and each output writable
    (:func:`check_output`). Two paths that name the same file, when at least one
    of them is written, are refused even with ``force``. An output that is an
    existing regular file is refused unless ``force``; the options in ``kept``
    (a checkpoint, which only ``--resume`` continues) are left to the caller.
    Every refusal is a :class:`CLIError` with exit status 2.
    """
    inputs = [(o, p) for o, p in inputs if p is not None]
    outputs = [(o, p) for o, p in outputs if p is not None]
    for option, path in inputs:
        check_input(path, option, stdin_ok=option in stdio)
    for option, path in outputs:
        check_output(path, option, stdout_ok=option in stdio)
    named = [(o, p, False) for o, p in inputs] + [(o, p, True) for o, p in outputs]
    named = [(o, p, w) for o, p, w in named if not (p == "-" and o in stdio)]
    for i, (oa, a, wa) in enumerate(named):
        for ob, b, wb in named[i + 1:]:
            if (wa or wb) and _same_file(a, b):
                raise CLIError(f"{oa} {a} and {ob} {b} are the same file: give each its own path", 2)
    for option, path in outputs:
        if option in kept or (path == "-" and option in stdio):
            continue
        try:
            regular = stat.S_ISREG(os.stat(path).st_mode)
        except OSError:
            continue  # not there yet
        if regular and not force:
            raise CLIError(f"{option} {path} exists: add --force to replace it", 2)


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
    """A live progress line on a terminal (stderr) and one log line per epoch (``log``, stdout).

    It also stops a run whose loss stops being finite, by raising :class:`Diverged`.
    """

    def __init__(self, epochs: int, quiet: bool = False, stream: Any = None, log: Any = None,
                 live: Optional[bool] = None) -> None:
        self.epochs, self.quiet = epochs, quiet
        self.stream = stream if stream is not None else sys.stderr
        self.log = log if log is not None else sys.stdout
        tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.live = tty and (not quiet if live is None else live)
        self.epoch = 1
        self.start = time.perf_counter()
        self.shown = 0.0

    def batch(self, k: int, n: int, loss: float) -> None:
        """Redraw the live line, at most ten times a second; stop at a non-finite loss."""
        if not math.isfinite(loss):
            self.clear()
            raise Diverged(f"training diverged: the loss is {loss} at epoch {self.epoch}, batch {k} of {n}"
                           " (try a smaller --lr); nothing was saved")
        if not self.live:
            return
        now = time.perf_counter()
        if now - self.shown >= 0.1:
            self.shown = now
            done = int(20 * k / n)
            self.stream.write(f"\repoch {self.epoch}/{self.epochs} [{'#' * done}{'.' * (20 - done)}] "
                              f"batch {k}/{n} loss {loss:.6f}")
            self.stream.flush()

    def clear(self) -> None:
        """Erase the live line."""
        if self.live:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def end_epoch(self, epoch: int, loss: float) -> None:
        """Clear the live line and log the epoch's loss."""
        self.clear()
        if not self.quiet:
            print(f"epoch {epoch:4d}/{self.epochs}  loss {loss:.6f}  {time.perf_counter() - self.start:7.2f} s",
                  file=self.log, flush=True)
        self.epoch = epoch + 1


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are one line on stderr and exit status 2.

    The line is ``PROG: error: MESSAGE (see PROG --help)``; argparse's usage block
    is left out, as is any traceback.
    """

    def error(self, message: str) -> NoReturn:
        """Print the one-line error and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?(nan|inf|infinity)",
                      re.ASCII | re.IGNORECASE)


def parse_number(text: str, kind: type = float) -> Any:
    """``text`` as an ``int`` or a ``float`` (``kind``), written as an ASCII decimal
    number: ``2``, ``-1.5``, ``.5``, ``1e-3`` (and, for floats, ``nan`` and ``inf``,
    which the callers refuse with their own words). Python's other spellings, such
    as ``1_0``, surrounding spaces, or Arabic-Indic and fullwidth digits, are a
    ``ValueError``: the CSV reader and the option parser take the same numbers."""
    pattern = _INTEGER if kind is int else _DECIMAL
    if not isinstance(text, str) or pattern.fullmatch(text) is None:
        raise ValueError(f"not an ASCII decimal {'integer' if kind is int else 'number'}: {text!r}")
    return kind(text)


def _field_type(f: "dataclasses.Field[Any]", kind: type) -> Callable[[str], Any]:
    """The argparse ``type`` of a Config field: parse the text as ``kind`` and check it
    with the field's ``valid``; either failure names the requirement and the text."""
    def parse(text: str) -> Any:
        try:
            value = parse_number(text, kind) if kind in (int, float) else kind(text)
        except ValueError:
            value = None
        if value is None or not f.metadata["valid"](value):
            raise argparse.ArgumentTypeError(f"must be {f.metadata['must_be']}, got {text!r}")
        return value
    parse.__name__ = kind.__name__
    return parse


def add_config_options(p: argparse.ArgumentParser) -> None:
    """One option per field of :class:`pyfw.task.Config`: ``--batch-size`` for ``batch_size``,
    with the field's help, choices (or checked type) and metavar, and ``--preset``.

    An option left out is absent from the parsed arguments (its default shows in
    the help), so that :func:`config_from_args` can tell it from one given
    explicitly: explicit options override the preset, the preset overrides the
    defaults.
    """
    p.add_argument("--preset", choices=tuple(task.PRESETS), default="seed",
                   help="a named recipe: " + "; ".join(f"{k}: {v[0]}" for k, v in task.PRESETS.items())
                   + "; the options given override it")
    hints = typing.get_type_hints(task.Config)
    for f in dataclasses.fields(task.Config):
        md = f.metadata
        kw: dict = {"dest": f.name, "default": argparse.SUPPRESS, "help": f"{md['help']} (default: {f.default})"}
        if "choices" in md:
            kw["choices"] = md["choices"]
        else:
            kw["type"] = _field_type(f, hints[f.name])
        if "metavar" in md:
            kw["metavar"] = md["metavar"]
        p.add_argument("--" + f.name.replace("_", "-"), **kw)


def config_from_args(args: argparse.Namespace) -> task.Config:
    """The :class:`pyfw.task.Config` of parsed arguments: the preset's values, overridden by
    the options given (the CLI-only ones are ignored)."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(task.Config) if hasattr(args, f.name)}
    return task.Config(**{**task.PRESETS[getattr(args, "preset", "seed")][1], **given})


def _add_backend(s: argparse.ArgumentParser) -> None:
    s.add_argument("--backend", choices=tuple(task.BACKENDS), default="py",
                   help="py: pure-Python pyfw; rs: pyfw_rs with Rust kernels (same bits)")


def _add_force(s: argparse.ArgumentParser) -> None:
    s.add_argument("--force", action="store_true",
                   help="replace an output file that exists (never a path this command also reads or writes "
                        "under another option, nor a --checkpoint)")


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m pyfw``; ``--help`` shows every default."""
    fmt = argparse.ArgumentDefaultsHelpFormatter
    p = ArgumentParser(prog="python -m pyfw", description=__doc__.split("\n\n")[0], formatter_class=fmt)
    sub = p.add_subparsers(dest="command", required=True, metavar="{train,predict,plot,demo}")
    for name, helptext in (("train", "train the seed task (disk classification)"),
                           ("demo", "train the seed task with both backends and compare them bit for bit")):
        s = sub.add_parser(name, help=helptext, description=helptext, formatter_class=fmt)
        add_config_options(s)
        # The CLI-only options: not fields of task.Config (see the module docstring).
        s.add_argument("--quiet", action="store_true", help="no per-epoch log")
        if name == "train":
            _add_backend(s)
            s.add_argument("--json", metavar="PATH",
                           help="write the run's metrics and epoch losses as JSON ('-': standard output)")
            s.add_argument("--save", metavar="MODEL",
                           help="write the trained model as a safetensors model file, usable with "
                                "'predict' and 'plot --model', and loadable into torch.nn.Sequential")
            s.add_argument("--checkpoint", metavar="PATH",
                           help="write the whole run's state there after every epoch (atomically)")
            s.add_argument("--track-errors", action="store_true",
                           help="also measure the train and test error after every epoch (in eval mode, which "
                                "draws nothing) and write them to --json, for 'plot'")
            s.add_argument("--resume", action="store_true",
                           help="continue from --checkpoint if it exists; the result is the same, bit for "
                                "bit, as a run never stopped")
            _add_force(s)
    s = sub.add_parser("predict", help="predict the class of each row of a CSV file with a model file",
                       description="Print one line per input row: the predicted class and the class "
                                   "scores (the model's outputs), as CSV with a header line. The model file "
                                   "alone is used: its architecture and input preprocessing are inside it.",
                       formatter_class=fmt)
    s.add_argument("model", metavar="MODEL", help="a model file written by 'train --save'")
    s.add_argument("--input", required=True, metavar="CSV",
                   help="rows of raw inputs, one per line, separated by commas or spaces ('-': standard input); "
                        "a first line that is not numbers is taken as a header")
    s.add_argument("--output", metavar="CSV", help="write the predictions to this file instead of standard output")
    _add_force(s)
    _add_backend(s)
    s = sub.add_parser("plot", help="draw a run's training curves, or a model's decision regions, as SVG",
                       description="With RUN.json (from 'train --json'): the loss per epoch and the errors. "
                                   "With --model: the model's decision regions over [0, 1]^2, the test "
                                   "points of the seed task (drawn as 'train' draws them from --seed, "
                                   "--n-train and --n-test) and the true circle.",
                       formatter_class=fmt)
    s.add_argument("run", nargs="?", metavar="RUN.json", help="a run written by 'train --json'")
    s.add_argument("--model", metavar="MODEL", help="a model file written by 'train --save'")
    s.add_argument("-o", "--output", required=True, metavar="SVG", help="the SVG file to write")
    _add_force(s)
    for f in dataclasses.fields(task.Config):
        if f.name in ("seed", "n_train", "n_test"):
            s.add_argument("--" + f.name.replace("_", "-"), dest=f.name, default=f.default,
                           type=_field_type(f, typing.get_type_hints(task.Config)[f.name]),
                           metavar=f.metadata.get("metavar", "N"), help=f"with --model: {f.metadata['help']}")
    _add_backend(s)
    return p


def cmd_train(args: argparse.Namespace) -> int:
    """Train once and report; write the JSON and the model file if asked."""
    config = config_from_args(args)
    check_paths([], [("--json", args.json), ("--save", args.save), ("--checkpoint", args.checkpoint)],
                args.force, stdio=("--json",), kept=("--checkpoint",))
    fit_options: dict = {}
    stored, done = None, 0
    if args.checkpoint:
        if os.path.exists(args.checkpoint) and not args.resume:
            raise CLIError(f"--checkpoint {args.checkpoint} exists: add --resume to continue that run, "
                           "or remove the file to start a new one"
                           + (" (--force never replaces a checkpoint)" if args.force else ""), 2)
        stored, done = _stored_run(args.checkpoint) if args.resume else (None, 0)
        if stored is not None and stored != dataclasses.asdict(config):
            diff = ", ".join(f"{k} {stored.get(k)!r} there, {v!r} here" for k, v in dataclasses.asdict(config).items()
                             if stored.get(k) != v)
            raise CLIError(f"--checkpoint {args.checkpoint} belongs to another run ({diff})", 2)
        fit_options = {"checkpoint": args.checkpoint, "resume": args.resume,
                       "checkpoint_extra": {"config": dataclasses.asdict(config)}}
    elif args.resume:
        raise CLIError("--resume needs --checkpoint PATH", 2)
    fw = load_backend(args.backend)
    log = sys.stderr if args.json == "-" else sys.stdout
    if stored is not None:
        print(f"resuming from {args.checkpoint} after epoch {done}", file=log, flush=True)
    prog = Progress(config.epochs, args.quiet, log=log)
    try:
        res = task.train(fw, config, on_epoch=prog.end_epoch, on_batch=prog.batch, fit_options=fit_options,
                         track_errors=args.track_errors)
    except ValueError as e:
        if args.checkpoint and str(args.checkpoint) in str(e):
            raise CLIError(str(e)) from None
        raise
    model = res.pop("model")
    print(f"train error {100 * res['train_error']:.2f}%  test error {100 * res['test_error']:.2f}%  "
          f"final loss {res['final_loss']:.6f}  ({res['epochs']} epochs, {res['seconds']:.2f} s, "
          f"backend {res['backend']})", file=log, flush=True)
    if res["train_error"] >= 0.4 and res["epochs"] >= 5:
        print(f"pyfw: warning: the training error is {100 * res['train_error']:.1f}%, about chance: the run did "
              "not learn (try another --lr; Adam-like optimizers want about 0.001 to 0.01)", file=sys.stderr)
    if args.save:
        io.save_model(model, args.save, preprocess=task.PREPROCESS)
    if args.json == "-":
        sys.stdout.write(json.dumps(_finite_or_null(res), indent=2) + "\n")
    elif args.json:
        io.write_atomic(args.json, json.dumps(_finite_or_null(res), indent=2) + "\n")
    return 0


def _stored_run(path: str) -> tuple:
    """``(configuration, epoch)`` stored in a checkpoint file; ``(None, 0)`` if the file does not exist yet."""
    if not os.path.exists(path):
        return None, 0
    try:
        meta = io.load_safetensors_metadata(path)
        doc = io._parse_json(meta["pyfw.checkpoint"], "checkpoint metadata")
        extra = doc.get("extra") if isinstance(doc, dict) else None
        if not isinstance(extra, dict) or not isinstance(extra.get("config"), dict):
            raise ValueError("it holds no run configuration (it was not written by 'train')")
        return extra["config"], doc.get("epoch")
    except (ValueError, KeyError, TypeError) as e:
        raise CLIError(f"--checkpoint {path}: not a checkpoint of 'train': {e}") from None


def _read_rows(path: str) -> list:
    """The rows of numbers of a CSV file (``-``: standard input), separated by commas or
    by spaces; a first line that is not numbers is a header and is skipped. A bad row is
    a one-line error naming it."""
    name = "standard input" if path == "-" else path
    try:
        if path == "-":
            lines = sys.stdin.read().splitlines()
        else:
            with open(path, newline="", encoding="utf-8-sig") as f:
                lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise CLIError(f"--input {name}: cannot read it ({e})") from None
    rows: list = []
    header_possible = True
    for k, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        first, header_possible = header_possible, False
        cells = re.split(r"\s*[,;]\s*|\s+", line.strip().lstrip("\ufeff"))
        try:
            row = [parse_number(c) for c in cells]
        except ValueError:
            if first and not any(_is_number(c) for c in cells):
                continue  # a header: the first line, and nothing in it that Python reads as a number
            bad = next(c for c in cells if not _is_number(c, strict=True))
            raise CLIError(f"--input {name}, line {k}: not a row of numbers: {line.strip()[:60]!r} ({bad[:20]!r} "
                           "is not an ASCII decimal number such as -1.5, 2 or 1e-3)") from None
        if not all(math.isfinite(v) for v in row):
            raise CLIError(f"--input {name}, line {k}: NaN or infinite value")
        if rows and len(row) != len(rows[0]):
            raise CLIError(f"--input {name}, line {k}: {len(row)} values, the first row has {len(rows[0])}")
        rows.append(row)
    if not rows:
        raise CLIError(f"--input {name}: no rows of numbers")
    return rows


def _is_number(text: str, strict: bool = False) -> bool:
    """Whether ``text`` is a number: for :func:`parse_number` (``strict``), or in any
    spelling Python's ``float`` reads (so that ``1_0`` is no header cell)."""
    try:
        parse_number(text) if strict else float(text)
    except ValueError:
        return False
    return True


def _load_model(path: str, fw: Any) -> tuple:
    """``(model, preprocess)`` of a model file, or a one-line error."""
    check_input(path, "MODEL")
    try:
        return io.load_model(path, fw=fw), io.load_preprocess(path)
    except (ValueError, OSError) as e:
        raise CLIError(str(e)) from None


def cmd_predict(args: argparse.Namespace) -> int:
    """Print (or write) the predicted class and the scores of each input row."""
    check_paths([("MODEL", args.model), ("--input", args.input)], [("--output", args.output)], args.force,
                stdio=("--input",))
    fw = load_backend(args.backend)
    model, pre = _load_model(args.model, fw)
    rows = _read_rows(args.input)
    try:
        out = model(pre(fw.tensor(rows))).tolist()
    except (ValueError, TypeError) as e:
        raise CLIError(f"{args.model}: cannot apply the model to {args.input}: {e}") from None
    labels = argmax_rows(out)
    width = len(out[0])
    lines = ["label," + ",".join(f"score_{j}" for j in range(width))]
    lines += [f"{lab}," + ",".join(repr(v) for v in r) for lab, r in zip(labels, out)]
    text = "\n".join(lines) + "\n"
    if args.output:
        io.write_atomic(args.output, text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    """Write the curves of a run, or the decision regions of a model, as SVG."""
    if (args.run is None) == (args.model is None):
        raise CLIError("plot: give either RUN.json or --model MODEL (see python -m pyfw plot --help)", 2)
    check_paths([("RUN.json", args.run), ("--model", args.model), ("--data", getattr(args, "data", None))],
                [("-o", args.output)], args.force)
    if args.run is not None:
        try:
            with open(args.run, encoding="utf-8") as f:
                run = json.load(f)
            svg = plot.curves_svg(run)
        except (OSError, ValueError, TypeError) as e:
            raise CLIError(f"{args.run}: not a run written by 'train --json' ({e})") from None
        except RecursionError:
            raise CLIError(f"{args.run}: not a run written by 'train --json' (it is nested too deeply)") from None
    else:
        fw = load_backend(args.backend)
        model, pre = _load_model(args.model, fw)
        g = fw.Generator(args.seed)
        fw.data.disk(args.n_train, generator=g)
        points, labels = fw.data.disk(args.n_test, generator=g)

        def predict(rows: list) -> list:
            return argmax_rows(model(pre(fw.tensor(rows))))
        try:
            error = error_rate(model(pre(fw.tensor(points.tolist()))), labels)
            svg = plot.boundary_svg(predict, points, labels, error=error)
        except (ValueError, TypeError) as e:
            raise CLIError(f"{args.model}: cannot draw its decision regions: {e}") from None
    plot.write_svg(args.output, svg)
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
        prog = Progress(config.epochs, True, live=True)
        res = task.train(load_backend(backend), config, on_batch=prog.batch, on_epoch=prog.end_epoch)
        prog.clear()
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


COMMANDS = {"train": cmd_train, "predict": cmd_predict, "plot": cmd_plot, "demo": cmd_demo}
"""The subcommands and the functions that run them."""


def main(argv: Optional[list] = None) -> int:
    """Entry point of ``python -m pyfw`` and of the ``pyfw`` command: returns the exit status."""
    try:
        args = parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        if sys.stderr.isatty():
            sys.stderr.write("\r\x1b[K")  # erase a live progress line
        print("pyfw: interrupted", file=sys.stderr)
        return 130
    except CLIError as e:
        print(f"pyfw: {e}", file=sys.stderr)
        return e.status
    except (OSError, ValueError, TypeError, RuntimeError, MemoryError, RecursionError) as e:
        print(f"pyfw: {type(e).__name__}: {e}".splitlines()[0], file=sys.stderr)
        return 1
