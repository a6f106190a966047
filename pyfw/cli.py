"""The command line of pyfw: ``train`` trains the seed task (or a Playground task, or the
image denoiser), ``predict`` applies a model file to the rows of a CSV file (an image
model: to a safetensors file of images), ``plot`` draws a run's curves or a model's
decision regions (a denoiser's images) as SVG, ``demo`` trains with both backends and compares them
bit for bit, ``sweep`` trains every combination of settings with many seeds, and
``playground`` serves a page that trains small networks live in the browser.

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
import shlex
import stat
import sys
import tempfile
import time
import typing
from typing import Any, Callable, NoReturn, Optional

from . import io, metrics, plot, task
from .metrics import argmax_rows


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


BACKEND_CHOICES = ("auto", *task.BACKENDS)
"""The values of ``--backend``: ``auto`` (the default), then the short names of :data:`pyfw.task.BACKENDS`."""

BUILD_HINT = ("'make build' in the checkout builds it into the checkout's .venv: run .venv/bin/pyfw there "
              "(or 'source .venv/bin/activate' first); 'pip install .' installs it into the current Python")
"""How to get ``pyfw_rs``, for the messages that say it is missing."""


def rs_unusable() -> Optional[str]:
    """Why ``pyfw_rs`` cannot serve as the backend here, or None when it can: it must be
    importable and built from the same version as ``pyfw`` (``__version__`` of both, and of
    the installed ``pyfw`` distribution when there is one)."""
    import pyfw
    try:
        rs = importlib.import_module("pyfw_rs")
    except ImportError as e:
        return f"pyfw_rs cannot be imported by {sys.executable} ({e})"
    versions = {"pyfw": pyfw.__version__, "pyfw_rs": getattr(rs, "__version__", None)}
    try:
        import importlib.metadata as metadata
        versions["the installed pyfw_rs build"] = metadata.version("pyfw")
    except Exception:  # no installed distribution (a bare checkout on sys.path): nothing to compare
        pass
    other = {k: v for k, v in versions.items() if v != pyfw.__version__}
    if other:
        said = ", ".join(f"{k} {v}" for k, v in other.items())
        return f"pyfw_rs is not of pyfw's version {pyfw.__version__} ({said}); rebuild it"
    return None


def load_backend(name: str, quiet: bool = False) -> Any:
    """The backend module for its short name: ``pyfw`` for ``py``, ``pyfw_rs`` for ``rs``.

    ``auto`` is ``pyfw_rs`` when :func:`rs_unusable` finds nothing against it, else ``pyfw``,
    with one line on stderr that says why (unless ``quiet``). ``rs`` when ``pyfw_rs``
    cannot be imported is a :class:`CLIError` that says how to build it and where it goes.
    """
    if name not in BACKEND_CHOICES:
        raise ValueError(f"load_backend: backend must be one of {', '.join(BACKEND_CHOICES)}, got {name!r}")
    if name == "auto":
        why = rs_unusable()
        if why is None:
            return importlib.import_module("pyfw_rs")
        if not quiet:
            hint = f"; {BUILD_HINT}" if "cannot be imported" in why else ""
            print(f"pyfw: note: using the pure-Python backend pyfw: {why}{hint}", file=sys.stderr, flush=True)
        return importlib.import_module("pyfw")
    try:
        return importlib.import_module(task.BACKENDS[name])
    except ImportError as e:
        if name == "py":
            raise
        raise CLIError(f"--backend rs needs the native module pyfw_rs, which {sys.executable} cannot import "
                       f"({e}); {BUILD_HINT}") from None


def _short_name(fw: Any) -> str:
    """The short name of a backend module (``py``, ``rs``), as ``--backend`` and results give it."""
    return {module: k for k, module in task.BACKENDS.items()}.get(fw.__name__, fw.__name__)


def sessions_label(backends: list) -> str:
    """The ``"backend"`` of a run from the backends of its sessions, in order: one name when
    they are all the same (``rs``), else each change of backend (``py, then rs``)."""
    changes = [b for i, b in enumerate(backends) if i == 0 or b != backends[i - 1]]
    return ", then ".join(changes)


def backend_line(fw: Any) -> str:
    """The line that says which backend a run uses, e.g. ``backend rs (pyfw_rs 0.1.0, Rust kernels)``."""
    short = _short_name(fw)
    kind = "Rust kernels" if short == "rs" else "pure Python"
    return f"backend {short} ({fw.__name__} {getattr(fw, '__version__', '?')}, {kind})"


def run(backend: str = "py", on_epoch: Optional[Callable[[int, float], None]] = None,
        on_batch: Optional[Callable[[int, int, float], None]] = None, **options: Any) -> dict:
    """Compatibility wrapper: ``task.train(load_backend(backend), task.Config(**options), ...)``.

    ``options`` are fields of :class:`pyfw.task.Config` (``epochs=2, n_train=50``);
    the ones not given keep their defaults. Returns what :func:`pyfw.task.train` returns.
    """
    return task.train(load_backend(backend), task.Config(**options), on_epoch=on_epoch, on_batch=on_batch)


class Progress:
    """A live progress line on a terminal (stderr) and one log line per epoch (``log``, stdout).

    With ``quiet``, no epoch lines; then ``every`` (seconds, 0: never), where the stream is
    not a terminal and so has no live line, logs an epoch line at most that often, so
    that a long run in a log file or a pipe still shows it is alive.
    It also stops a run whose loss stops being finite, by raising :class:`Diverged`.
    """

    def __init__(self, epochs: int, quiet: bool = False, stream: Any = None, log: Any = None,
                 live: Optional[bool] = None, every: float = 0.0) -> None:
        self.epochs, self.quiet = epochs, quiet
        self.stream = stream if stream is not None else sys.stderr
        self.log = log if log is not None else sys.stdout
        tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.live = tty and (not quiet if live is None else live)
        self.epoch = 1
        self.start = time.perf_counter()
        self.shown = 0.0
        self.every, self.logged = every, self.start
        self.note = ""  # appended to the next epoch line (the denoiser's validation PSNR)

    def batch(self, k: int, n: int, loss: float) -> None:
        """Redraw the live line, at most ten times a second; stop at a non-finite loss.

        ``fit``'s ``on_progress``: ``loss`` is the epoch's running mean loss after batch ``k`` of ``n``.
        """
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

    def line(self, text: str) -> None:
        """Show ``text`` on ``stream``: as the live line on a terminal (replacing the one
        before), else as a line of its own."""
        if self.live:
            self.stream.write("\r\x1b[K" + text)
            self.stream.flush()
        else:
            print(text, file=self.stream, flush=True)

    def keep(self) -> None:
        """End the live line, leaving its last text shown."""
        if self.live:
            self.stream.write("\n")
            self.stream.flush()

    def end_epoch(self, epoch: int, loss: float) -> None:
        """Clear the live line and log the epoch's loss."""
        self.clear()
        now = time.perf_counter()
        if not self.quiet or (self.every and not self.live and now - self.logged >= self.every):
            self.logged = now
            print(f"epoch {epoch:4d}/{self.epochs}  loss {loss:.6f}{self.note}  {now - self.start:7.2f} s",
                  file=self.log, flush=True)
        self.epoch = epoch + 1
        self.note = ""


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


def add_config_options(p: argparse.ArgumentParser, leave_out: tuple = ()) -> None:
    """One option per field of :class:`pyfw.task.Config`: ``--batch-size`` for ``batch_size``,
    with the field's help, its default (an empty text shown as "empty"), choices (or checked
    type) and metavar, and ``--preset``. The fields named in ``leave_out`` get no option.

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
        if f.name in leave_out:
            continue
        md = f.metadata
        shown = "empty" if f.default == "" else f.default
        kw: dict = {"dest": f.name, "default": argparse.SUPPRESS, "help": f"{md['help']} (default: {shown})"}
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
    preset = task.PRESETS[getattr(args, "preset", "seed")][1]
    name = given.get("task", preset.get("task", "disk"))
    return task.Config(**{**task.TASK_DEFAULTS.get(name, {}), **preset, **given})


def _add_backend(s: argparse.ArgumentParser) -> None:
    s.add_argument("--backend", choices=BACKEND_CHOICES, default="auto",
                   help="auto: pyfw_rs when it is importable and of pyfw's version, else pyfw (saying why); "
                        "py: pure-Python pyfw; rs: pyfw_rs with Rust kernels (the same bits)")


def plain(text: str) -> str:
    """reStructuredText markup as plain text for ``--help``: ````x```` becomes ``'x'``,
    ``:class:`x``` becomes ``x``, and the lines are joined."""
    text = re.sub(r":\w+:`~?([^`]*)`", r"\1", text)
    return " ".join(re.sub(r"``([^`]*)``", r"'\1'", text).split())


def _add_force(s: argparse.ArgumentParser) -> None:
    s.add_argument("--force", action="store_true",
                   help="replace an output file that exists (never a path this command also reads or writes "
                        "under another option, nor a --checkpoint)")


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with "(default: X)" after each option whose default means something: not
    after a required option or a positional one, nor after a default of None, False or an
    empty list (an output not written, a flag not given, nothing added)."""

    def _get_help_string(self, action: argparse.Action) -> Optional[str]:
        d = action.default
        if (action.required or not action.option_strings or d is None or d is False or d is argparse.SUPPRESS
                or (isinstance(d, list) and not d)):
            return action.help
        return super()._get_help_string(action)


def parser(prog: str = "pyfw") -> argparse.ArgumentParser:
    """The argument parser of the ``pyfw`` command (``prog``: how it was run, as usage lines
    show it, e.g. ``python -m pyfw``); ``--help`` shows every default that means something
    (:class:`DefaultsHelpFormatter`)."""
    fmt = DefaultsHelpFormatter
    p = ArgumentParser(prog=prog, description=plain(__doc__.split("\n\n")[0]), formatter_class=fmt)
    sub = p.add_subparsers(dest="command", required=True, metavar="{train,predict,plot,demo,sweep,playground}")
    for name, helptext in (("train", "train the seed task (disk classification), a Playground task or the "
                                     "image denoiser"),
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
                                "draws nothing) and write them to --json, for 'plot'; the denoiser measures its "
                                "validation PSNR after every epoch in any case")
            s.add_argument("--resume", action="store_true",
                           help="continue from --checkpoint if it exists; the result is the same, bit for "
                                "bit, as a run never stopped")
            _add_force(s)
    s = sub.add_parser("predict", help="predict the class of each row of a CSV file with a model file",
                       description="Print one line per input row: the predicted class and the class "
                                   "scores (the model's outputs), as CSV with a header line. The model file "
                                   "alone is used: its architecture and input preprocessing are inside it. "
                                   "With one output column the class is 1 where the output is above 0 (above "
                                   "0.5 for a model that ends in Sigmoid), else 0. A row whose outputs are "
                                   "not all finite (NaN or infinite) gets the label 'nan', and one warning "
                                   "line on stderr counts them. An image model (the denoiser) takes a "
                                   "safetensors file of N x C x H x W images instead (its tensor 'input', or its "
                                   "only tensor) and writes its outputs to --output OUT.safetensors (the tensor "
                                   "'output').",
                       formatter_class=fmt)
    s.add_argument("model", metavar="MODEL", help="a model file written by 'train --save'")
    s.add_argument("--input", required=True, metavar="CSV",
                   help="rows of raw inputs, one per line, separated by commas or spaces ('-': standard input); "
                        "a first line that is not numbers is taken as a header")
    s.add_argument("--output", metavar="CSV", help="write the predictions to this file instead of standard output")
    s.add_argument("--proba", action="store_true",
                   help="print class probabilities (columns p_0, p_1, ...) instead of the scores: the softmax "
                        "of the outputs, or for one output column the sigmoid (the probability of class 1, "
                        "column p_1); "
                        "a model that ends in Softmax or Sigmoid gives its outputs as they are, one that ends "
                        "in LogSoftmax their exp")
    _add_force(s)
    _add_backend(s)
    s = sub.add_parser("plot", help="draw a run's training curves, or a model's decision regions, as SVG",
                       description="With RUN.json (from 'train --json'): the loss per epoch and, for a run "
                                   "with --track-errors, the test loss and the errors. With --model: the "
                                   "model's decision regions (a model of 2 inputs, any number of classes), "
                                   "the points with their labels, misclassified points circled. The points "
                                   "are those of --data, over their range, or else the test points of the "
                                   "seed task (drawn as 'train' draws them from --seed, --n-train and "
                                   "--n-test) over [0, 1]^2, with the true circle. With --model of a denoiser: "
                                   "a grid of noisy, denoised and clean images (the run's validation images, "
                                   "or those of --data IMAGES.safetensors).",
                       formatter_class=fmt)
    s.add_argument("run", nargs="?", metavar="RUN.json", help="a run written by 'train --json'")
    s.add_argument("--model", metavar="MODEL", help="a model file written by 'train --save'")
    s.add_argument("--data", metavar="CSV",
                   help="with --model: the points to draw, one 'x,y,label' row per line (or 'x,y' without "
                        "labels; a header line is skipped); the plot covers their range. For an image model: "
                        "a safetensors file of images (its tensor 'input' or only tensor, and 'clean' if any)")
    s.add_argument("-o", "--output", required=True, metavar="SVG", help="the SVG file to write (ending in .svg)")
    _add_force(s)
    for f in dataclasses.fields(task.Config):
        if f.name in ("seed", "n_train", "n_test"):
            s.add_argument("--" + f.name.replace("_", "-"), dest=f.name, default=f.default,
                           type=_field_type(f, typing.get_type_hints(task.Config)[f.name]),
                           metavar=f.metadata.get("metavar", "N"), help=f"with --model: {f.metadata['help']}")
    _add_backend(s)
    add_sweep_parser(sub, fmt)
    s = sub.add_parser("playground", help="serve the playground: train small networks live in the browser",
                       description="Serve a page (standard library only, no network) where 2-D data sets, "
                                   "features and networks are chosen, trained live on this machine and "
                                   "exported as a model file or as the 'pyfw train' command that repeats "
                                   "the run. Ctrl-C stops it.", formatter_class=fmt)
    s.add_argument("--host", default="127.0.0.1", help="the address to serve (another than this machine's "
                                                       "own gets a warning)")
    s.add_argument("--port", type=_port, default=8000, help="the port (0: any free one)")
    s.add_argument("--open", action="store_true", help="open the page in the web browser")
    _add_backend(s)
    return p


def _port(text: str) -> int:
    value = parse_number(text, int)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port from 0 to 65535, got {text!r}")
    return value


def cmd_playground(args: argparse.Namespace) -> int:
    """Serve the playground until Ctrl-C."""
    from . import playground
    fw = load_backend(args.backend)
    try:
        playground.serve(args.host, args.port, fw, open_browser=args.open)
    except OSError as e:
        raise CLIError(f"cannot serve on {args.host}:{args.port}: {e.strerror or e}") from None
    return 0


class Interrupted(CLIError):
    """Ctrl-C, with what it left behind (exit status 130)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 130)


def _resume_command(args: argparse.Namespace) -> str:
    """The command line that continues this run from its checkpoint: the one typed, plus ``--resume``."""
    argv = list(getattr(args, "argv", None) or sys.argv[1:])
    if not args.resume:
        argv.append("--resume")
    return " ".join(shlex.quote(a) for a in [*getattr(args, "prog", "pyfw").split(), *argv])


def _check_resume(args: argparse.Namespace, config: task.Config) -> Optional[int]:
    """The epochs an existing checkpoint holds, after checking that this command continues its run.

    The run continues when its configuration is the stored one, or differs only in
    ``--epochs`` (to extend the run, or to finish a stopped one with another length)
    while the schedule does not use the epoch count, and ``--track-errors`` is as stored.
    Otherwise a one-line :class:`CLIError` (status 2) says why not. None: no checkpoint yet.
    """
    path = args.checkpoint
    if not os.path.exists(path):
        return None
    try:
        done, extra = task.stored_run(path)
        if not isinstance(extra, dict) or not isinstance(extra.get("config"), dict):
            raise ValueError("it holds no run configuration (it was not written by 'train')")
    except ValueError as e:
        raise CLIError(f"--checkpoint {path}: not a checkpoint of 'train': {e}") from None
    # A field missing from the stored config is one added since: the run had its default.
    defaults = {f.name: f.default for f in dataclasses.fields(task.Config)}
    stored, here = {**defaults, **extra["config"]}, dataclasses.asdict(config)
    diff = {k: (stored.get(k), v) for k, v in here.items() if stored.get(k) != v}
    if set(diff) - {"epochs"}:
        said = ", ".join(f"--{k.replace('_', '-')} {a!r} there, {b!r} here" for k, (a, b) in diff.items())
        raise CLIError(f"--checkpoint {path} belongs to another run ({said})", 2)
    if diff:
        before = stored.get("epochs")
        if config.schedule not in task.EPOCH_FREE_SCHEDULES:
            raise CLIError(f"--checkpoint {path}: its run cannot be changed from {before} to {config.epochs} "
                           f"epochs: its schedule {config.schedule} is built for {before} epochs, so another "
                           "length is another run (only --schedule "
                           f"{', '.join(sorted(task.EPOCH_FREE_SCHEDULES))} can be extended); start a new run", 2)
        if config.epochs < done:
            raise CLIError(f"--checkpoint {path} already holds {done} epochs: --epochs {config.epochs} would "
                           "end before it; give at least that many", 2)
    tracked = extra.get("history") is not None
    if tracked != bool(args.track_errors) and config.task != "denoise":  # the denoiser always tracks its PSNR
        raise CLIError(f"--checkpoint {path}: its run was trained {'with' if tracked else 'without'} "
                       f"--track-errors; resume it {'with' if tracked else 'without'} it too, so that its "
                       "history stays whole", 2)
    return done


def cmd_train(args: argparse.Namespace) -> int:
    """Train once and report; write the JSON and the model file if asked."""
    config = config_from_args(args)
    check_paths([], [("--json", args.json), ("--save", args.save), ("--checkpoint", args.checkpoint)],
                args.force, stdio=("--json",), kept=("--checkpoint",))
    fit_options: dict = {}
    done = None
    if args.checkpoint:
        if os.path.exists(args.checkpoint) and not args.resume:
            raise CLIError(f"--checkpoint {args.checkpoint} exists: add --resume to continue that run, "
                           "or remove the file to start a new one"
                           + (" (--force never replaces a checkpoint)" if args.force else ""), 2)
        done = _check_resume(args, config) if args.resume else None
        fit_options = {"checkpoint": args.checkpoint, "resume": args.resume,
                       "checkpoint_extra": {"config": dataclasses.asdict(config)}}
    elif args.resume:
        raise CLIError("--resume needs --checkpoint PATH", 2)
    log = sys.stderr if args.json == "-" else sys.stdout
    fw = load_backend(args.backend)
    backends = [_short_name(fw)]  # one per session of this run, this one last
    if args.checkpoint:
        if done is not None:
            earlier = (task.stored_run(args.checkpoint)[1] or {}).get("backends")
            ok = isinstance(earlier, list) and earlier and all(isinstance(b, str) for b in earlier)
            backends = (earlier if ok else ["unknown"]) + backends  # "unknown": a checkpoint that did not say
        fit_options["checkpoint_extra"]["backends"] = backends
    print(backend_line(fw), file=log, flush=True)
    if done is not None:
        print(f"resuming from {args.checkpoint} after epoch {done} of {config.epochs}", file=log, flush=True)
    prog = Progress(config.epochs, args.quiet, log=log)

    def measured_now(epoch: int, values: dict) -> None:
        if "test_psnrs" in values and values["test_psnrs"] is not None:
            prog.note = f"  val PSNR {values['test_psnrs']:.2f} dB"

    try:
        res = task.train(fw, config, on_epoch=prog.end_epoch, on_progress=prog.batch, fit_options=fit_options,
                         track_errors=args.track_errors, on_measure=measured_now)
    except ValueError as e:
        if args.checkpoint and str(args.checkpoint) in str(e):
            raise CLIError(str(e)) from None
        raise
    except KeyboardInterrupt:
        prog.clear()
        try:
            held = task.stored_run(args.checkpoint)[0] if args.checkpoint and os.path.exists(args.checkpoint) else 0
        except (ValueError, OSError, KeyboardInterrupt):
            held = 0
        if held:
            raise Interrupted(f"interrupted; {args.checkpoint} holds the run after epoch {held} of "
                              f"{config.epochs}; continue it with: {_resume_command(args)}") from None
        raise
    model = res.pop("model")
    res["backend"] = sessions_label(backends)
    measured = measured_text(config, res)
    timing = f"{res['seconds']:.2f} s"
    if done is not None:  # the time is this session's alone: say so
        n = config.epochs - done
        timing = f"this session: {n} epoch{'s' * (n != 1)} in {timing}"
    print(f"{measured}  final loss {res['final_loss']:.6f}  ({res['epochs']} epochs, {timing}, "
          f"backend {res['backend']})", file=log, flush=True)
    if res["train_error"] is not None and res["train_error"] >= 0.4 and res["epochs"] >= 5:
        print(f"pyfw: warning: the training error is {100 * res['train_error']:.1f}%, about chance: the run did "
              "not learn (try another --lr; Adam-like optimizers want about 0.001 to 0.01)", file=sys.stderr)
    if args.save:
        task.save_model(model, args.save, config)
    if args.json == "-":
        sys.stdout.write(json.dumps(_finite_or_null(res), indent=2) + "\n")
    elif args.json:
        io.write_atomic(args.json, json.dumps(_finite_or_null(res), indent=2) + "\n")
    return 0


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


def _last_layer(model: Any) -> str:
    """The class name of a Sequential's last module ('' for anything else)."""
    try:
        return type(model[len(model) - 1]).__name__
    except (TypeError, IndexError, KeyError):
        return ""


def classify(rows: list, model: Any) -> list:
    """The predicted class of each row of outputs, None for a row that is not all finite.

    The largest output's index (the first on ties); with one column, 1 where the output
    is above 0, or above 0.5 for a model that ends in Sigmoid (its outputs are
    probabilities), else 0.
    """
    cut = 0.5 if _last_layer(model) == "Sigmoid" else 0.0
    finite = [all(math.isfinite(v) for v in r) for r in rows]
    good = [r for r, ok in zip(rows, finite) if ok]
    if good and len(good[0]) == 1:
        labels = iter([1 if r[0] > cut else 0 for r in good])
    else:
        labels = iter(argmax_rows(good) if good else [])
    return [next(labels) if ok else None for ok in finite]


def probabilities(rows: list, model: Any, fw: Any) -> list:
    """Class probabilities of each row of outputs (``predict --proba``), NaN for a row that is
    not all finite: the softmax of the row, for one column the sigmoid; the outputs as they
    are for a model that ends in Softmax or Sigmoid, their exp for one that ends in LogSoftmax."""
    last = _last_layer(model)
    finite = [all(math.isfinite(v) for v in r) for r in rows]
    good = [r for r, ok in zip(rows, finite) if ok]
    if not good or last in ("Softmax", "Sigmoid"):
        probs = good
    elif last == "LogSoftmax":
        probs = [[math.exp(v) for v in r] for r in good]
    elif len(good[0]) == 1:
        probs = fw.Sigmoid()(fw.tensor(good)).tolist()
    else:
        probs = fw.Softmax(dim=1)(fw.tensor(good)).tolist()
    it = iter(probs)
    return [next(it) if ok else [math.nan] * len(r) for r, ok in zip(rows, finite)]


def warn_not_finite(model_path: str, count: int, total: int, what: str, effect: str) -> None:
    """One warning line on stderr: ``count`` of ``total`` rows had outputs that are NaN or infinite."""
    if count:
        print(f"pyfw: warning: {model_path}: the model's outputs are NaN or infinite for {count} of the {total} "
              f"{what}; {effect}", file=sys.stderr, flush=True)


def _is_safetensors(path: Optional[str]) -> bool:
    return path is not None and path.lower().endswith(".safetensors")


def image_channels(model: Any) -> Optional[int]:
    """The input channels of an image model (the ``in_channels`` of its first module that has
    one, such as a ``Conv2d``), None for a model of rows (an MLP)."""
    try:
        for m in model.modules():
            if isinstance(getattr(m, "in_features", None), int):
                return None
            if isinstance(getattr(m, "in_channels", None), int):
                return int(m.in_channels)
    except (AttributeError, TypeError):
        pass
    return None


def read_images(path: str, option: str, fw: Any, channels: Optional[int] = None) -> tuple:
    """``(images, tensors)`` of a safetensors file of images: the tensor named ``input``, or the
    file's only tensor, which must be N x C x H x W (C = ``channels`` when given), as an ``fw``
    tensor; ``tensors`` is every tensor of the file by name. Anything else is a one-line
    :class:`CLIError` naming the file and the shapes."""
    try:
        tensors = io.load_safetensors(path, fw=fw)
    except (ValueError, OSError) as e:
        raise CLIError(f"{option} {path}: cannot read it as a safetensors file of images ({e})") from None
    if "input" in tensors:
        name = "input"
    elif len(tensors) == 1:
        name = next(iter(tensors))
    else:
        names = ", ".join(sorted(tensors)[:8]) or "none"
        raise CLIError(f"{option} {path}: holds {len(tensors)} tensors ({names}): give the images as its only "
                       "tensor, or as one named 'input'")
    images = tensors[name]
    shape = tuple(images.shape)
    if len(shape) != 4 or 0 in shape:
        raise CLIError(f"{option} {path}: the tensor {name!r} has shape {shape}; images must be N x C x H x W")
    if channels is not None and shape[1] != channels:
        raise CLIError(f"{option} {path}: the tensor {name!r} has shape {shape}, {shape[1]} channels; "
                       f"the model takes {channels}")
    return images, tensors


def _predict_images(args: argparse.Namespace, fw: Any, model: Any, pre: Any, channels: int) -> int:
    """``predict`` on an image model: the outputs of the images of ``--input`` (a safetensors
    file) written to ``--output`` as a safetensors file, the tensor ``output``."""
    if not _is_safetensors(args.input):
        raise CLIError(f"{args.model} is an image model (it takes {channels} x H x W images): give --input a "
                       "safetensors file of N x C x H x W images (ending in .safetensors)", 2)
    if not _is_safetensors(args.output):
        raise CLIError(f"--input {args.input}: predict writes the outputs of images as a safetensors file: "
                       "give --output OUT.safetensors", 2)
    if args.proba:
        raise CLIError("--proba gives class probabilities, which an image model does not have", 2)
    images, _ = read_images(args.input, "--input", fw, channels)
    try:
        with fw.no_grad():  # inference: the modules keep nothing for backward
            out = model(pre(images))
        io.save_safetensors({"output": out}, args.output)
    except (ValueError, TypeError) as e:
        raise CLIError(f"{args.model}: cannot apply the model to --input {args.input} of shape "
                       f"{tuple(images.shape)}: {e}") from None
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Print (or write) the predicted class and the scores (or probabilities) of each input row;
    rows whose outputs are not finite get the label ``nan`` and one warning line. An image
    model maps a safetensors file of images to one of outputs (:func:`_predict_images`)."""
    check_paths([("MODEL", args.model), ("--input", args.input)], [("--output", args.output)], args.force,
                stdio=("--input",))
    fw = load_backend(args.backend)
    model, pre = _load_model(args.model, fw)
    channels = image_channels(model)
    if channels is not None:
        return _predict_images(args, fw, model, pre, channels)
    if _is_safetensors(args.input):
        raise CLIError(f"--input {args.input}: a safetensors file of images goes to an image model; "
                       f"{args.model} takes rows of numbers (give a CSV file)", 2)
    rows = _read_rows(args.input)
    try:
        with fw.no_grad():  # inference: the modules keep nothing for backward
            out = model(pre(fw.tensor(rows))).tolist()
    except (ValueError, TypeError) as e:
        source = "standard input" if args.input == "-" else args.input
        raise CLIError(f"{args.model}: cannot apply the model to {source}: {e}") from None
    labels = classify(out, model)
    bad = [i for i, lab in enumerate(labels) if lab is None]
    warn_not_finite(args.model, len(bad), len(out), "input rows",
                    f"their label is 'nan' (the first is data row {bad[0] + 1})" if bad else "")
    values = probabilities(out, model, fw) if args.proba else out
    width = len(out[0])
    name = "p" if args.proba else "score"
    columns = [1] if args.proba and width == 1 else range(width)  # one column: the probability of class 1
    lines = ["label," + ",".join(f"{name}_{j}" for j in columns)]
    lines += [f"{'nan' if lab is None else lab}," + ",".join(repr(v) for v in r) for lab, r in zip(labels, values)]
    text = "\n".join(lines) + "\n"
    if args.output:
        io.write_atomic(args.output, text)
    else:
        sys.stdout.write(text)
    return 0


PLOT_GRID = 100
"""Cells per side of the lattice on which ``plot --model`` evaluates the model."""


def _plot_data(path: str) -> tuple:
    """``(points, labels)`` of ``plot --data``: rows of ``x,y,label`` (labels: None for ``x,y`` rows)."""
    try:
        rows = _read_rows(path)
    except CLIError as e:
        raise CLIError(str(e).replace("--input", "--data", 1), e.status) from None
    width = len(rows[0])
    if width not in (2, 3):
        raise CLIError(f"--data {path}: rows of {width} values; plot needs 'x,y,label' or 'x,y' rows", 2)
    points = [r[:2] for r in rows]
    if width == 2:
        return points, None
    labels = []
    for k, r in enumerate(rows, start=1):
        if not (r[2] >= 0 and r[2] == int(r[2])):
            raise CLIError(f"--data {path}: data row {k}: the label must be a class number 0, 1, 2, ..., "
                           f"got {r[2]!r}")
        labels.append(int(r[2]))
    return points, labels


def _input_width(model: Any, pre: io.Preprocess) -> Optional[int]:
    """The number of raw input columns a model file takes (before its preprocessing), when it
    says so: 2 for a feature map, the length of a per-column affine map, else the
    ``in_features`` of the model's first layer that has one; None when nothing says."""
    spec = pre.spec or {}
    if spec.get("kind") == "features":
        return 2
    for key in ("shift", "scale"):
        if isinstance(spec.get(key), list):
            return len(spec[key])
    try:
        for m in model.modules():
            if isinstance(getattr(m, "in_features", None), int):
                return int(m.in_features)
    except (AttributeError, TypeError):
        pass
    return None


PLOT_IMAGES = 6
"""The validation images ``plot --model`` draws for an image model (a denoiser)."""


def _denoiser_svg(args: argparse.Namespace, fw: Any, model: Any, pre: Any, channels: int) -> str:
    """``plot --model`` of an image model: the first :data:`PLOT_IMAGES` images of ``--data`` (a
    safetensors file: its ``input`` or only tensor, and a tensor ``clean`` if it has one), or else
    of the validation set redrawn from the run's configuration stored in the model file."""
    if args.data is not None:
        if not _is_safetensors(args.data):
            raise CLIError(f"--data {args.data}: {args.model} is an image model: give a safetensors file of "
                           "N x C x H x W images (ending in .safetensors)", 2)
        noisy, tensors = read_images(args.data, "--data", fw, channels)
        clean = tensors.get("clean")
        if clean is not None and tuple(clean.shape) != tuple(noisy.shape):
            raise CLIError(f"--data {args.data}: its tensor 'clean' has shape {tuple(clean.shape)}, the input "
                           f"{tuple(noisy.shape)}; they must match")
        source = f"images of {os.path.basename(args.data)}"
    else:
        try:
            config = task.stored_config(args.model)
        except (ValueError, OSError) as e:
            raise CLIError(str(e)) from None
        if config is None or config.task != "denoise":
            raise CLIError(f"--model {args.model}: holds no configuration of a denoiser run (it was not written "
                           "by 'train --task denoise --save'), so its validation images cannot be redrawn: give "
                           "them with --data FILE.safetensors", 2)
        noisy, clean = task.validation_images(fw, config)
        source = f"validation images (seed {config.seed}, noise {config.noise:g})"
    k = min(PLOT_IMAGES, len(noisy))
    idx = list(range(k))
    noisy = noisy[idx]
    clean = clean[idx] if clean is not None else None
    try:
        with fw.no_grad():
            out = model(pre(noisy))
    except (ValueError, TypeError) as e:
        raise CLIError(f"{args.model}: cannot apply the model to images of shape {tuple(noisy.shape)}: {e}") from None
    if tuple(out.shape) != tuple(noisy.shape):
        raise CLIError(f"{args.model}: maps images of shape {tuple(noisy.shape)[1:]} to {tuple(out.shape)[1:]}; "
                       "plot draws models whose outputs are images of their input's shape")
    ns, os_, cs = noisy.tolist(), out.tolist(), clean.tolist() if clean is not None else None
    rows, captions = [], []
    for i in range(k):
        if cs is None:
            rows.append([ns[i], os_[i]])
            captions.append(["", ""])
            continue
        rows.append([ns[i], os_[i], cs[i]])
        captions.append([f"{metrics.psnr(ns[i], cs[i]):.2f} dB", f"{metrics.psnr(os_[i], cs[i]):.2f} dB", ""])
    columns = ["noisy", "denoised", "clean"] if cs is not None else ["input", "output"]
    subtitle = source + (", PSNR against clean" if cs is not None else "")
    try:
        return plot.images_svg(rows, columns, f"Denoiser {os.path.basename(args.model)}", captions=captions,
                               subtitle=subtitle)
    except ValueError as e:
        raise CLIError(f"{args.model}: cannot draw its images: {e}") from None


def cmd_plot(args: argparse.Namespace) -> int:
    """Write the curves of a run, or the decision regions of a model, as SVG."""
    prog = getattr(args, "prog", "pyfw")
    if (args.run is None) == (args.model is None):
        raise CLIError(f"plot: give either RUN.json or --model MODEL (see {prog} plot --help)", 2)
    if args.data is not None and args.model is None:
        raise CLIError("plot: --data goes with --model (a run's curves take no data)", 2)
    paths = ([("RUN.json", args.run), ("--model", args.model), ("--data", args.data)], [("-o", args.output)])
    check_paths(*paths, force=True)  # every path usable, no two the same file
    if not args.output.lower().endswith(".svg"):  # before --force is asked for, which would not help
        raise CLIError(f"-o {args.output}: plot writes SVG only; give a file name ending in .svg", 2)
    check_paths(*paths, force=args.force)  # an existing output needs --force
    if args.run is not None:
        try:
            with open(args.run, encoding="utf-8") as f:
                run = json.load(f)
            svg = plot.curves_svg(run)
        except (OSError, ValueError, TypeError) as e:
            raise CLIError(f"{args.run}: cannot draw it as a run written by 'train --json' ({e})") from None
        except RecursionError:
            raise CLIError(f"{args.run}: not a run written by 'train --json' (it is nested too deeply)") from None
    else:
        fw = load_backend(args.backend)
        model, pre = _load_model(args.model, fw)
        channels = image_channels(model)
        if channels is not None:
            plot.write_svg(args.output, _denoiser_svg(args, fw, model, pre, channels))
            return 0
        width = _input_width(model, pre)
        if width is not None and width != 2:
            raise CLIError(f"--model {args.model}: plot draws the decision regions of models of 2 inputs; "
                           f"this model takes {width} input{'s' * (width != 1)}")
        if args.data is not None:
            points, labels = _plot_data(args.data)
        else:
            g = fw.Generator(args.seed)
            fw.data.disk(args.n_train, generator=g)
            x, y = fw.data.disk(args.n_test, generator=g)
            points, labels = x.tolist(), list(y)

        @fw.no_grad()
        def outputs(rows: list) -> list:
            return model(pre(fw.tensor(rows))).tolist() if rows else []

        try:
            probe = outputs(points[:1] or [[0.5, 0.5]])
            classes = max(2, len(probe[0]))  # one output column: classes 0 and 1
            for k, v in enumerate(labels or [], start=1):
                if v >= classes:
                    raise CLIError(f"--data {args.data}: data row {k}: label {v} is not a class of the model "
                                   f"{args.model}, whose classes are 0 to {classes - 1}")
            at_points = classify(outputs(points), model) if points else []
            seen = {"bad": 0}

            def predict(rows: list) -> list:
                found = classify(outputs(rows), model)
                seen["bad"] += found[:len(found) - len(points)].count(None)
                return found

            error = None
            if labels is not None and points:
                error = len([p for p, t in zip(at_points, labels) if p != t]) / len(points)
            data_label = "error" if args.data is not None else "test error"
            svg = plot.boundary_svg(predict, points, labels, error=error, error_label=data_label,
                                    circle=args.data is None, classes=classes, grid=PLOT_GRID)
        except (ValueError, TypeError) as e:
            raise CLIError(f"{args.model}: cannot draw its decision regions: {e}") from None
        bad_points = at_points.count(None)
        if seen["bad"] or bad_points:
            warn_not_finite(args.model, seen["bad"] + bad_points, PLOT_GRID ** 2 + len(points),
                            f"grid cells and points ({seen['bad']} cells, {bad_points} points)",
                            "those cells are grey and those points count as errors, circled")
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


def measured_text(config: task.Config, res: dict) -> str:
    """What a finished run measured, for its summary line: the train and test error, a regression's
    losses, or the denoiser's validation PSNR next to the noisy input's."""
    if config.task == "denoise":
        return (f"val PSNR {res['test_psnr']:.2f} dB (noisy input {res['noisy_psnr']:.2f} dB, "
                f"{res['test_psnr'] - res['noisy_psnr']:+.2f} dB)")
    if res["train_error"] is None:  # a regression task: its losses over the whole splits
        return f"train loss {res['train_loss']:.6f}  test loss {res['test_loss']:.6f}"
    return f"train error {100 * res['train_error']:.2f}%  test error {100 * res['test_error']:.2f}%"


def cmd_demo(args: argparse.Namespace) -> int:
    """Train with both backends; print errors, times, and whether the results are bit-identical."""
    config = config_from_args(args)
    results = {}
    for backend in task.BACKENDS:
        print(f"--- backend {backend} ---", flush=True)
        prog = Progress(config.epochs, True, live=True, every=5.0)
        res = task.train(load_backend(backend), config, on_progress=prog.batch, on_epoch=prog.end_epoch)
        prog.clear()
        results[backend] = res
        print(f"{measured_text(config, res)}  final loss {res['final_loss']:.6f}  time {res['seconds']:.2f} s",
              flush=True)
    py, rs = results["py"], results["rs"]
    same_w = _hex_state(py["model"]) == _hex_state(rs["model"])
    same_l = [v.hex() for v in py["losses"]] == [v.hex() for v in rs["losses"]]
    print(f"speed-up of pyfw_rs over pyfw: {py['seconds'] / rs['seconds']:.1f}x")
    print(f"final weights bit-identical: {'yes' if same_w else 'NO'}; "
          f"epoch losses bit-identical: {'yes' if same_l else 'NO'}")
    return 0 if same_w and same_l else 1


def _hex_state(model: Any) -> dict:
    """The model's state dict as nested lists of ``float.hex`` strings, for tensors of any rank."""
    def hexes(v: Any) -> Any:
        return [hexes(x) for x in v] if isinstance(v, list) else float(v).hex()
    return {name: hexes(t.tolist()) for name, t in model.state_dict().items()}


def add_sweep_parser(sub: Any, fmt: Any) -> None:
    """The ``sweep`` subcommand's parser: the grid, the seeds, the results file, the executor's
    workers, and the Config options, which set the base every setting starts from."""
    helptext = "train the seed task for every combination of settings and seeds, on a pool of workers"
    s = sub.add_parser("sweep", help=helptext, formatter_class=fmt, description=(
        helptext + ". Each run's seed is the sweep's seed itself, so every setting sees the same data and "
        "initialization for a seed; the results are the same bits whatever the number of workers. Results "
        "stream to --out as JSON lines; a summary table (and with --plot an SVG) ends the sweep."))
    s.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="settings to sweep, such as \"lr=0.01,0.1 activation=relu,silu\" (space-separated, or "
                        "one --grid per key); a key is a train option without its dashes' prefix "
                        "(batch-size=10,100) or preset=seed,best")
    s.add_argument("--seeds", default="0-9", metavar="LIST",
                   help="the seeds: 0-9, 0,3,7 or 0-4,10")
    s.add_argument("--out", required=True, metavar="JSONL", help="the results file, one JSON line per run")
    s.add_argument("--resume", action="store_true", help="continue the sweep in --out, skipping its finished runs")
    s.add_argument("--workers", type=_positive_int, default=os.cpu_count() or 1, metavar="N",
                   help="runs at once: threads for pyfw_rs, processes for pyfw")
    s.add_argument("--plot", metavar="SVG", help="also draw the error against each swept setting as SVG")
    s.add_argument("--force", action="store_true", help="replace an existing --plot file")
    s.add_argument("--quiet", action="store_true", help="no progress line")
    add_config_options(s, leave_out=("seed",))
    # Not an option of the sweep (its help leaves it out): an early refusal that points to --seeds,
    # rather than argparse taking --seed for an abbreviation of --seeds.
    s.add_argument("--seed", type=_no_seed, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    _add_backend(s)


def _no_seed(text: str) -> NoReturn:
    raise argparse.ArgumentTypeError(f"a sweep's seeds are given by --seeds (e.g. --seeds {text}), "
                                     "each run's seed being the sweep's seed itself")


def _positive_int(text: str) -> int:
    if not re.fullmatch(r"[0-9]+", text) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return int(text)


def parse_seeds(text: str) -> list:
    """``0-9``, ``0,3,7`` or ``0-4,10`` as a list of distinct ints; a ``CLIError`` (status 2) otherwise."""
    seeds: list = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(-?[0-9]+)\s*(?:-\s*(-?[0-9]+)\s*)?", part)
        if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
            raise CLIError(f"--seeds {text}: expected seeds such as 0-9, 0,3,7 or 0-4,10", 2)
        lo = int(m.group(1))
        hi = lo if m.group(2) is None else int(m.group(2))
        seeds += range(lo, hi + 1)
    if len(set(seeds)) != len(seeds):
        raise CLIError(f"--seeds {text}: a seed is given twice", 2)
    return seeds


def parse_grid(items: list) -> dict:
    """The ``--grid`` texts as ``{key: [values]}``, each value parsed and checked as its option."""
    hints = typing.get_type_hints(task.Config)
    fields = {f.name: f for f in dataclasses.fields(task.Config) if f.name != "seed"}
    spec: dict = {}
    for token in " ".join(items).split():
        key, eq, values = token.partition("=")
        name = key.lstrip("-").replace("-", "_")
        if not eq or not values:
            raise CLIError(f"--grid {token}: expected KEY=V1,V2,...", 2)
        if name != "preset" and name not in fields:
            raise CLIError(f"--grid {token}: {key} is not an option of train (the seed is swept by --seeds)", 2)
        if name in spec:
            raise CLIError(f"--grid: {key} is given twice", 2)
        parsed = []
        for text in values.split(","):
            if name == "preset":
                ok, value = text in task.PRESETS, text
                must = "one of " + ", ".join(task.PRESETS)
            else:
                f = fields[name]
                must = f.metadata["must_be"]
                try:
                    value = text if "choices" in f.metadata else _field_type(f, hints[name])(text)
                    ok = text in f.metadata["choices"] if "choices" in f.metadata else True
                except argparse.ArgumentTypeError:
                    ok = False
            if not ok:
                raise CLIError(f"--grid {token}: {key} must be {must}, got {text!r}", 2)
            if value in parsed:
                raise CLIError(f"--grid {token}: {text} is given twice", 2)
            parsed.append(value)
        spec[name] = parsed
    return spec


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run a sweep: stream the results to --out, show progress, print the summary, draw --plot."""
    from . import sweeps as sw
    spec = parse_grid(args.grid)
    seeds = parse_seeds(args.seeds)
    base = config_from_args(args)
    check_output(args.out, "--out")
    if os.path.exists(args.out) and not args.resume:
        raise CLIError(f"--out {args.out} exists: add --resume to continue that sweep, or remove the file", 2)
    if args.plot:
        check_output(args.plot, "--plot")
        if os.path.realpath(args.plot) == os.path.realpath(args.out):
            raise CLIError(f"--plot {args.plot} is also --out: give two different files", 2)
        if os.path.exists(args.plot) and not args.force:
            raise CLIError(f"--plot {args.plot} exists: add --force to replace it", 2)
    try:
        settings = sw.grid(spec)
    except ValueError as e:
        raise CLIError(str(e), 2) from None
    fw = load_backend(args.backend)
    errors: dict = {}  # {setting's label: {seed: test error}} of the finished runs
    labels = [sw.label(s) for s in settings]
    pool = "threads" if fw.__name__ == "pyfw_rs" else "processes"
    start, first = time.perf_counter(), [None]
    prog = Progress(0, args.quiet, stream=sys.stderr)  # a live line on a terminal, else a line per run

    def count(rec: dict) -> None:
        errors.setdefault(sw.label(rec["setting"]), {})[rec["seed"]] = rec["test_error"]

    def best_so_far() -> str:
        """The best setting by its mean over the seeds every setting has finished (a paired
        comparison: the same data and initialization for each), and how many they are."""
        common = set(seeds)
        for name in labels:
            common &= set(errors.get(name, {}))
        if not common:
            return "none yet (no seed finished by every setting)"
        paired = sorted(common)
        means = {name: _mean([errors[name][s] for s in paired]) for name in labels}
        name = min(labels, key=lambda k: means[k])
        k = len(paired)
        return (f"{name} {100 * means[name]:.2f}% mean test error over the {k} seed{'s' * (k != 1)} "
                "every setting has finished")

    def resumed(recs: list, n: int) -> None:
        """Called once before any run: the header line; the runs already in --out count
        towards the best so far."""
        for rec in recs:
            count(rec)
        kept = f" ({len(recs)} finished in {args.out})" if recs else ""
        print(f"sweep: {len(settings)} setting{'s' * (len(settings) != 1)} x {len(seeds)} seeds = {n} runs{kept}, "
              f"backend {fw.__name__}, {args.workers} {pool}", file=sys.stderr, flush=True)

    def progress(rec: dict, done: int, n: int) -> None:
        if first[0] is None:
            first[0] = done - 1  # runs that were already in --out
        count(rec)
        new = done - first[0]
        eta = (time.perf_counter() - start) / new * (n - done)
        if not args.quiet:
            prog.line(f"[{done}/{n}] ETA {int(eta) // 60}:{int(eta) % 60:02d}  best so far: {best_so_far()}")

    try:
        results = sw.sweep(settings, seeds, None, fw=fw, base=base, workers=args.workers, out=args.out,
                           resume=args.resume, on_result=progress, on_resumed=resumed)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; the finished runs are in {args.out}; continue the sweep with: "
                          f"{_resume_command(args)}") from None
    except ValueError as e:
        prog.clear()
        raise CLIError(str(e)) from None
    if first[0] is not None:  # a run finished in this session: its line stays
        prog.keep()
    summary = sw.summarize(results)
    sys.stdout.write(sw.table(summary))
    if args.plot:
        plot.write_svg(args.plot, plot.sweep_svg(summary))
    return 0


def _mean(values: list) -> float:
    total = 0.0
    for v in values:
        total += v
    return total / len(values)


COMMANDS = {"train": cmd_train, "predict": cmd_predict, "plot": cmd_plot, "demo": cmd_demo, "sweep": cmd_sweep,
            "playground": cmd_playground}
"""The subcommands and the functions that run them."""


def main(argv: Optional[list] = None, prog: str = "pyfw") -> int:
    """Entry point of the ``pyfw`` command (and, with ``prog="python -m pyfw"``, of
    ``python -m pyfw``): returns the exit status. ``prog`` is how usage lines and the
    command that resumes an interrupted run show the command."""
    try:
        args = parser(prog).parse_args(argv)
        args.prog, args.argv = prog, list(sys.argv[1:] if argv is None else argv)
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        if sys.stderr.isatty():
            sys.stderr.write("\r\x1b[K")  # erase a live progress line
        print("pyfw: interrupted", file=sys.stderr)
        return 130
    except CLIError as e:
        if isinstance(e, Interrupted) and sys.stderr.isatty():
            sys.stderr.write("\r\x1b[K")  # erase a live progress line
        print(f"pyfw: {e}", file=sys.stderr)
        return e.status
    except (OSError, ValueError, TypeError, RuntimeError, MemoryError, RecursionError) as e:
        print(f"pyfw: {type(e).__name__}: {e}".splitlines()[0], file=sys.stderr)
        return 1
