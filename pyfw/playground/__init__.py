"""``pyfw playground``: a live, reproducible neural-network playground in the browser.

The server is the standard library's threaded ``http.server``; the page is plain
HTML, CSS and JavaScript from ``static/`` (no network, no CDN). Each browser tab
owns a run (:class:`Run`): its network trains on the server in a background thread,
one epoch at a time, exactly as ``pyfw train`` trains it, and the page polls
``GET /api/run/ID`` for the latest snapshot (epoch, losses, heatmaps, weights).

API (JSON in and out; a bad request gets a 400 with ``{"error": ...}``):

- ``POST /api/run`` with ``{"settings": {...}}``: a new run, paused at epoch 0;
  returns its ``id`` and first snapshot. The settings use Playground's hash names
  (see :func:`config_of`).
- ``POST /api/run/ID`` with ``{"action": "play" | "pause" | "step" | "reset" | "regenerate"}``
  or ``{"settings": {...}}`` (rebuilds the run, paused at epoch 0).
- ``GET /api/run/ID``: the latest snapshot; ``GET /api/run/ID/export``: the
  ``pyfw train`` command, a Python snippet (both ``null`` at epoch 0: ``pyfw train``
  runs at least one epoch) and the configuration;
  ``GET /api/run/ID/model``: the model file (safetensors) after the current epoch.
- ``GET /api/info``: the backend and the bounds of every setting.
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import math
import os
import shlex
import socketserver
import sys
import tempfile
import threading
import time
import uuid
from typing import Any, Optional
from urllib.parse import urlsplit

from .. import io, task
from ..training import train_epoch

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
"""The folder of the page's files: the only files the server serves."""

MAX_BODY = 64 * 1024
MAX_RUNS = 32
IDLE_SECONDS = 600.0
GRID = 50            # output heatmap: GRID x GRID cells over [-6, 6]^2
NEURON_GRID = 16     # per-neuron heatmaps
EXTENT = 6.0

PLAYGROUND_SETS = {"circle": "circle", "xor": "xor", "gauss": "gauss", "spiral": "spiral", "moons": "moons"}
REGRESSION_SETS = {"reg-plane": "plane", "reg-gauss": "gauss_regression"}
FEATURE_FLAGS = (("x", "x1"), ("y", "x2"), ("xSquared", "x1^2"), ("ySquared", "x2^2"), ("xTimesY", "x1*x2"),
                 ("sinX", "sin(x1)"), ("sinY", "sin(x2)"))
"""Playground's hash names of the features, in its order, and ours."""

ACTIVATIONS = {"linear": "identity", **{k: k for k in task.ACTIVATION_CHOICES if k not in ("softmax", "logsoftmax")}}
"""The page's activations: Playground's names (``linear`` is our Identity) and the other members."""

BOUNDS = {"noise": (0, 50), "percTrainData": (10, 90), "batchSize": (1, 500), "layers": (0, 8),
          "neurons": (1, 32), "learningRate": (0.0, 10.0), "regularizationRate": (0.0, 10.0),
          "seed": (0, 2 ** 32 - 1), "dropout": (0.0, 0.9), "classes": (2, 8), "points": (20, 2000)}
"""The bounds of every numeric setting, inclusive."""

POINTS = {"classification": 500, "regression": 1200}
"""Playground's number of points (train and test together) by problem type."""


class BadRequest(ValueError):
    """A request the server refuses with status 400 and this message."""


def _number(settings: dict, key: str, default: Any, kind: type) -> Any:
    """``settings[key]`` (a number, or a decimal string as in a URL hash) as ``kind``, bounds-checked."""
    value = settings.get(key, default)
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, str):
            value = float(value) if kind is float else int(value, 10)
        if kind is int and isinstance(value, float):
            if not value.is_integer():
                raise ValueError
            value = int(value)
        value = kind(value)
    except (TypeError, ValueError, OverflowError):
        raise BadRequest(f"{key} must be {'a number' if kind is float else 'an integer'}, got {value!r:.50}") from None
    lo, hi = BOUNDS[key]
    if not (lo <= value <= hi) or (kind is float and not math.isfinite(value)):
        raise BadRequest(f"{key} must be in [{lo}, {hi}], got {value!r}")
    return value


def _flag(settings: dict, key: str, default: bool) -> bool:
    value = settings.get(key, default)
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise BadRequest(f"{key} must be true or false, got {value!r:.50}")


def _choice(settings: dict, key: str, default: str, choices: Any) -> str:
    value = settings.get(key, default)
    if not isinstance(value, str) or value not in choices:
        raise BadRequest(f"{key} must be one of {', '.join(choices)}, got {value!r:.50}")
    return value


def config_of(settings: Any) -> tuple:
    """``(Config, page)`` from the page's settings (Playground's hash names and value formats):
    ``dataset``, ``regDataset``, ``problem``, ``noise`` (percent), ``percTrainData``, ``batchSize``,
    ``networkShape`` (``"4,2"``), ``activation``, ``learningRate``, ``regularization``
    (``none``, ``L1``, ``L2``), ``regularizationRate``, ``seed`` (a decimal string), the feature
    flags ``x``, ``y``, ``xSquared``, ``ySquared``, ``xTimesY``, ``sinX``, ``sinY``, and ours:
    ``optimizer``, ``loss``, ``dropout``, ``classes`` (spiral arms), ``points``. ``page`` holds
    what only the page uses (``showTestData``, ``discretize``). Anything out of bounds is a
    :class:`BadRequest`."""
    if not isinstance(settings, dict):
        raise BadRequest("settings must be a JSON object")
    problem = _choice(settings, "problem", "classification", ("classification", "regression"))
    if problem == "classification":
        name = PLAYGROUND_SETS[_choice(settings, "dataset", "circle", tuple(PLAYGROUND_SETS))]
    else:
        name = REGRESSION_SETS[_choice(settings, "regDataset", "reg-plane", tuple(REGRESSION_SETS))]
    total = _number(settings, "points", POINTS[problem], int)
    perc = _number(settings, "percTrainData", 50, int)
    n_train = max(1, min(total - 1, total * perc // 100))
    shape = settings.get("networkShape", "4,2")
    if isinstance(shape, list):
        shape = ",".join(str(v) for v in shape)
    if not isinstance(shape, str):
        raise BadRequest("networkShape must be comma-separated sizes such as \"4,2\"")
    sizes = []
    for part in [p for p in shape.split(",") if p != ""]:
        if not (part.isascii() and part.isdigit()):
            raise BadRequest(f"networkShape must be comma-separated sizes, got {shape!r:.50}")
        sizes.append(_number({"neurons": int(part)}, "neurons", 1, int))
    if len(sizes) > BOUNDS["layers"][1]:
        raise BadRequest(f"networkShape has {len(sizes)} layers, at most {BOUNDS['layers'][1]}")
    features = [ours for flag, ours in FEATURE_FLAGS if _flag(settings, flag, flag in ("x", "y"))]
    if not features:
        raise BadRequest("at least one feature must be on")
    reg = _choice(settings, "regularization", "none", ("none", "L1", "L2"))
    rate = _number(settings, "regularizationRate", 0.0, float)
    default_loss = "mse"
    loss = _choice(settings, "loss", default_loss,
                   task.REGRESSION_LOSSES if problem == "regression" else tuple(task.LOSS_CHOICES))
    fields = {
        "task": name, "noise": _number(settings, "noise", 0, int) / 100.0, "n_train": n_train,
        "n_test": total - n_train, "batch_size": _number(settings, "batchSize", 10, int),
        "layers": ",".join(str(v) for v in sizes) or "0", "features": ",".join(features),
        "activation": ACTIVATIONS[_choice(settings, "activation", "tanh", tuple(ACTIVATIONS))],
        "lr": _number(settings, "learningRate", 0.03, float),
        "l1": rate if reg == "L1" else 0.0, "l2": rate if reg == "L2" else 0.0,
        "seed": _number(settings, "seed", 0, int),
        "optimizer": _choice(settings, "optimizer", "sgd", tuple(task.OPTIMIZER_CHOICES)), "loss": loss,
        "dropout": _number(settings, "dropout", 0.0, float), "classes": _number(settings, "classes", 2, int),
        "epochs": 1,
    }
    try:
        config = task.Config(**fields)
    except (TypeError, ValueError) as e:
        raise BadRequest(str(e)) from None
    page = {"showTestData": _flag(settings, "showTestData", False), "discretize": _flag(settings, "discretize", False)}
    return config, page


def command_of(config: task.Config, epochs: int) -> str:
    """The ``pyfw train`` command that repeats ``config``'s run for ``epochs`` epochs (one or more:
    ``pyfw train`` runs at least one) and saves the model."""
    if epochs < 1:
        raise ValueError(f"command_of: a pyfw train command runs at least one epoch, got {epochs}")
    defaults = {**{f.name: f.default for f in dataclasses.fields(task.Config)}, **task.TASK_DEFAULTS[config.task]}
    argv = ["pyfw", "train", "--task", config.task]
    for f in dataclasses.fields(task.Config):
        value = getattr(config, f.name)
        if f.name in ("task", "epochs") or value == defaults[f.name]:
            continue
        argv += ["--" + f.name.replace("_", "-"), repr(value) if isinstance(value, float) else str(value)]
    argv += ["--epochs", str(epochs), "--save", "model.safetensors"]
    return " ".join(shlex.quote(a) for a in argv)


def python_of(config: task.Config, epochs: int) -> str:
    """A Python snippet that repeats the run for ``epochs`` epochs (one or more) and saves the same model file."""
    if epochs < 1:
        raise ValueError(f"python_of: the snippet trains at least one epoch, got {epochs}")
    fields = {k: v for k, v in dataclasses.asdict(config).items() if k != "epochs"}
    return ("import pyfw_rs as fw  # or: import pyfw as fw (the same bits)\n"
            "from pyfw import task\n"
            f"config = task.Config(**{fields!r}, epochs={epochs})\n"
            "res = task.train(fw, config)\n"
            "fw.io.save_model(res['model'], 'model.safetensors', preprocess=task.preprocess_of(config))\n")


class Run:
    """One tab's run: its config, the built objects, and a worker thread that trains while playing."""

    def __init__(self, fw: Any, config: task.Config, page: dict) -> None:
        self.fw = fw
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)
        self.playing = False
        self.closed = False
        self.touched = time.monotonic()
        self.version = 0
        self._build(config, page)
        self.thread = threading.Thread(target=self._work, daemon=True)
        self.thread.start()

    def _build(self, config: task.Config, page: dict) -> None:
        """(Re)build the run at epoch 0 (called with the lock held, or before the thread starts)."""
        self.config, self.page = config, page
        self.parts = task.build_run(self.fw, config)
        self.epoch = 0
        self.history: list = []
        self.version += 1
        self.snapshot = self._measure()

    def _measure(self) -> dict:
        """The snapshot the page shows: losses, the output grid, neuron grids, weights, points."""
        fw, p = self.fw, self.parts
        model = p["model"]
        model.eval()
        criterion = getattr(fw, task.LOSS_CHOICES[self.config.loss])()
        with fw.no_grad():  # inference: the modules keep nothing for backward
            train_loss = criterion(model(p["x_train"]), p["targets"])
            test_loss = criterion(model(p["x_test"]), p["test_targets"])
            names = self.config.features.split(",")
            out = self._grid(GRID, names)[-1]
            neurons = self._grid(NEURON_GRID, names)
        model.train()
        if not self.history or self.history[-1][0] != self.epoch:
            self.history.append([self.epoch, _finite(train_loss), _finite(test_loss)])
        weights = [[[_finite(v) for v in row] for row in m.weight.tolist()] for m in model if isinstance(m, fw.Linear)]
        biases = [[_finite(v) for v in m.bias.tolist()] for m in model if isinstance(m, fw.Linear)]
        return {"epoch": self.epoch, "playing": self.playing, "train_loss": _finite(train_loss),
                "test_loss": _finite(test_loss), "history": self.history[-500:], "output": out,
                "neurons": neurons[:-1], "weights": weights,
                "biases": biases, "features": names, "regression": p["regression"], "version": self.version,
                "classes": task.outputs_of(self.config), "page": self.page}

    def _grid(self, size: int, names: list) -> list:
        """The activations of every layer over a size x size grid of [-6, 6]^2 (rows from y = 6 down):
        for each hidden layer a list of per-neuron grids, and last the output per cell (the score:
        ``o1 - o0`` for two classes, the class index and margin for more, the value for regression)."""
        fw, model = self.fw, self.parts["model"]
        step = 2.0 * EXTENT / (size - 1)
        points = [[-EXTENT + j * step, EXTENT - i * step] for i in range(size) for j in range(size)]
        x = fw.data.features(fw.tensor(points), names)
        layers = []
        for m in model:
            x = m(x)
            if type(m).__name__ in task.ACTIVATION_CHOICES.values() and m is not model[len(model) - 1]:
                cols = list(zip(*x.tolist()))
                layers.append([[_finite(v) for v in col] for col in cols])
        rows = x.tolist()
        if self.parts["regression"]:
            out = [_finite(r[0]) for r in rows]
        elif len(rows[0]) == 2:
            out = [_finite(r[1] - r[0]) for r in rows]
        else:
            out = []
            for r in rows:
                best = max(range(len(r)), key=lambda k: r[k])
                out.append([best, _finite(r[best])])
        return layers + [out]

    def points(self) -> dict:
        """The train and test points and their labels (raw coordinates)."""
        cfg = self.config
        fw, p = self.fw, self.parts
        # the raw points: features hold them only when x1 and x2 are the first two; redraw them instead
        g = fw.Generator(cfg.seed)
        make = getattr(fw.data, cfg.task)
        extra = {"classes": cfg.classes} if cfg.task == "spiral" else {}
        xtr, ytr = make(cfg.n_train, cfg.noise, generator=g, **extra)
        xte, yte = make(cfg.n_test, cfg.noise, generator=g, **extra)
        return {"train": [r + [y] for r, y in zip(xtr.tolist(), ytr)],
                "test": [r + [y] for r, y in zip(xte.tolist(), yte)], "version": self.version}

    def step(self) -> None:
        """One epoch, as ``fit`` runs it (called with the lock held)."""
        p = self.parts
        train_epoch(p["model"], p["criterion"], p["optimizer"], p["x_train"], p["targets"],
                    self.config.batch_size, p["generator"], True)
        if p["scheduler"] is not None:
            p["scheduler"].step()
        self.epoch += 1

    def _work(self) -> None:
        """The worker: trains an epoch at a time while playing; a snapshot at most every 50 ms."""
        last = 0.0
        with self.lock:
            while not self.closed:
                if not self.playing:
                    self.wake.wait(1.0)
                    continue
                try:
                    self.step()
                    now = time.monotonic()
                    if now - last >= 0.05:
                        self.snapshot = self._measure()
                        last = now
                except Exception as e:  # a diverged run stops; the page shows why
                    self.playing = False
                    self.snapshot = {**self.snapshot, "playing": False, "error": f"{type(e).__name__}: {e}"}
                if self.playing:  # let requests in between epochs
                    self.wake.wait(0.001)
            self.playing = False

    def control(self, action: str) -> None:
        """play, pause, step, reset or regenerate (a new seed is the page's business: reset rebuilds)."""
        with self.lock:
            if action == "play":
                self.playing = True
            elif action == "pause":
                self.playing = False
                self.snapshot = self._measure()
            elif action == "step":
                self.playing = False
                self.step()
                self.snapshot = self._measure()
            elif action in ("reset", "regenerate"):
                self.playing = False
                self._build(self.config, self.page)
            else:
                raise BadRequest(f"action must be play, pause, step, reset or regenerate, got {action!r:.50}")
            self.snapshot["playing"] = self.playing
            self.wake.notify_all()

    def model_file(self) -> bytes:
        """The model after the current epoch, as a model file's bytes."""
        with self.lock:
            fd, path = tempfile.mkstemp(suffix=".safetensors")
            os.close(fd)
            try:
                io.save_model(self.parts["model"], path, preprocess=task.preprocess_of(self.config))
                with open(path, "rb") as f:
                    return f.read()
            finally:
                os.unlink(path)

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.wake.notify_all()


def _finite(v: float) -> Optional[float]:
    return v if math.isfinite(v) else None


class Runs:
    """The runs by id, capped at :data:`MAX_RUNS`; runs idle for :data:`IDLE_SECONDS` are closed."""

    def __init__(self, fw: Any) -> None:
        self.fw = fw
        self.lock = threading.Lock()
        self.runs: dict = {}

    def sweep(self) -> None:
        now = time.monotonic()
        with self.lock:
            for key in [k for k, r in self.runs.items() if now - r.touched > IDLE_SECONDS]:
                self.runs.pop(key).close()

    def new(self, settings: Any) -> tuple:
        self.sweep()
        config, page = config_of(settings)
        with self.lock:
            if len(self.runs) >= MAX_RUNS:
                oldest = min(self.runs, key=lambda k: self.runs[k].touched)
                self.runs.pop(oldest).close()
            key = uuid.uuid4().hex
            run = Run(self.fw, config, page)
            self.runs[key] = run
        return key, run

    def get(self, key: str) -> Optional[Run]:
        with self.lock:
            run = self.runs.get(key)
        if run is not None:
            run.touched = time.monotonic()
        return run


class Handler(http.server.BaseHTTPRequestHandler):
    """The playground's requests: static files, and the JSON API (see the module docstring)."""

    server_version = "pyfw-playground"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: no line per request
        pass

    def _send(self, status: int, body: bytes, kind: str, extra: Optional[dict] = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj, allow_nan=False).encode(), "application/json")

    def _allowed_host(self) -> bool:
        port = self.server.server_address[1]
        host = self.headers.get("Host", "")
        names = {self.server.public_host, "localhost", "127.0.0.1"}
        return host in {f"{n}:{port}" for n in names}

    def _foreign_origin(self) -> bool:
        origin = self.headers.get("Origin")
        if origin is None:
            return False
        port = self.server.server_address[1]
        names = {self.server.public_host, "localhost", "127.0.0.1"}
        return origin not in {f"http://{n}:{port}" for n in names}

    def _guard(self, changes: bool) -> bool:
        if not self._allowed_host():
            self._json(403, {"error": "Host header not served here (DNS rebinding protection)"})
            return False
        if changes and self._foreign_origin():
            self._json(403, {"error": "foreign Origin refused"})
            return False
        return True

    def do_GET(self) -> None:
        """Static files and the read-only API."""
        if not self._guard(False):
            return
        path = urlsplit(self.path).path
        try:
            if path in ("/", "/index.html"):
                return self._static("index.html")
            if path.startswith("/static/"):
                return self._static(path[len("/static/"):])
            if path == "/api/info":
                return self._json(200, {"backend": self.server.fw.__name__, "bounds": BOUNDS,
                                        "activations": list(ACTIVATIONS), "optimizers": list(task.OPTIMIZER_CHOICES),
                                        "losses": list(task.LOSS_CHOICES),
                                        "regression_losses": list(task.REGRESSION_LOSSES)})
            parts = path.split("/")
            if len(parts) >= 4 and parts[1:3] == ["api", "run"]:
                run = self.server.runs.get(parts[3])
                if run is None:
                    return self._json(404, {"error": "no such run (it may have been closed when idle)"})
                tail = parts[4:]
                if tail == []:
                    return self._json(200, run.snapshot)
                if tail == ["points"]:
                    with run.lock:
                        return self._json(200, run.points())
                if tail == ["export"]:
                    with run.lock:
                        config, epoch = run.config, run.epoch
                    # at epoch 0 there is no command: pyfw train runs at least one epoch
                    return self._json(200, {"command": command_of(config, epoch) if epoch else None,
                                            "python": python_of(config, epoch) if epoch else None,
                                            "epoch": epoch, "config": dataclasses.asdict(config)})
                if tail == ["model"]:
                    return self._send(200, run.model_file(), "application/octet-stream",
                                      {"Content-Disposition": 'attachment; filename="model.safetensors"'})
            self._json(404, {"error": f"not found: {path[:100]}"})
        except BadRequest as e:
            self._json(400, {"error": str(e)})

    do_HEAD = do_GET

    def _static(self, name: str) -> None:
        """A file of the static folder by its exact name; anything else is a 404."""
        if name not in os.listdir(STATIC):
            return self._json(404, {"error": "not found"})
        kinds = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".png": "image/png"}
        with open(os.path.join(STATIC, name), "rb") as f:
            self._send(200, f.read(), kinds.get(os.path.splitext(name)[1], "application/octet-stream"))

    def do_POST(self) -> None:
        """The state-changing API: new runs, settings and controls."""
        if not self._guard(True):
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            return self._json(413 if length > MAX_BODY else 400, {"error": f"request body must be at most {MAX_BODY} bytes"})
        try:
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except (ValueError, UnicodeDecodeError):
                raise BadRequest("the request body must be JSON") from None
            if not isinstance(body, dict):
                raise BadRequest("the request body must be a JSON object")
            parts = urlsplit(self.path).path.split("/")
            if parts[1:] == ["api", "run"]:
                key, run = self.server.runs.new(body.get("settings", {}))
                return self._json(200, {"id": key, **run.snapshot})
            if len(parts) == 4 and parts[1:3] == ["api", "run"]:
                run = self.server.runs.get(parts[3])
                if run is None:
                    return self._json(404, {"error": "no such run (it may have been closed when idle)"})
                if "settings" in body:
                    config, page = config_of(body["settings"])
                    with run.lock:
                        run.playing = False
                        run._build(config, page)
                else:
                    action = body.get("action")
                    if not isinstance(action, str):
                        raise BadRequest("give an action or settings")
                    run.control(action)
                return self._json(200, run.snapshot)
            self._json(404, {"error": "not found"})
        except BadRequest as e:
            self._json(400, {"error": str(e)})


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """The threaded HTTP server, with the runs and the backend."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int, fw: Any) -> None:
        super().__init__((host, port), Handler)
        self.fw = fw
        self.runs = Runs(fw)
        self.public_host = host
        self.stopping = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A request that failed outside the handler's own answers (a client gone, or the server
        stopping under Ctrl-C): one line on stderr, never a traceback; nothing once stopping."""
        if self.stopping:
            return
        e = sys.exc_info()[1]
        if isinstance(e, ConnectionError):
            return
        print(f"pyfw: playground: a request from {client_address[0]} failed: {type(e).__name__}: {e}",
              file=sys.stderr, flush=True)


def make_server(host: str = "127.0.0.1", port: int = 8000, fw: Any = None) -> Server:
    """A :class:`Server` bound to ``host:port`` (port 0: any free one) on backend ``fw``."""
    if fw is None:
        import pyfw as fw
    return Server(host, port, fw)


def serve(host: str, port: int, fw: Any, open_browser: bool = False, out: Any = None) -> None:
    """Serve until Ctrl-C (which propagates as ``KeyboardInterrupt``)."""
    out = out or sys.stdout
    server = make_server(host, port, fw)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{server.server_address[1]}/"
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"pyfw: warning: serving on {host}, not only this machine: anyone who can reach it can start runs",
              file=sys.stderr)
    print(f"pyfw playground on {fw.__name__}: {url}  (Ctrl-C stops it)", file=out, flush=True)
    if open_browser:
        import webbrowser
        threading.Timer(0.3, webbrowser.open, (url,)).start()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.stopping = True
        server.server_close()
