"""Sweeps: the seed task's :class:`~pyfw.task.Config` over settings and seeds, on any executor.

``fw.sweep(configs, seeds, executor=None)`` trains ``task.train(fw, config)`` once for
every setting in ``configs`` and every seed in ``seeds``, each run on a
``concurrent.futures.Executor``: by default a thread pool for ``pyfw_rs``
(its native ``fit`` releases the interpreter lock) and a process pool for pure
``pyfw``; any other executor works too, such as Dask's
``distributed.Client(...).get_executor()`` for a cluster.

A run's seed is the sweep's seed value itself, so every setting sees the same
data, initialization and shuffling for a given seed (a paired comparison; the runs
are started seed by seed, every setting's run of one seed before the next), and
a run's numbers depend on its ``Config`` alone: the results are the same bits
whatever the executor, the number of workers and the order in which runs finish.
A worker receives the backend's name and the ``Config`` fields, nothing else.

Results stream to a JSON-lines file (``out=``), one line per finished run:
``{"setting": {...}, "backend": ..., <every Config field>, "train_error",
"test_error", "final_loss", "losses", "seconds"}`` (what ``task.train`` returns,
without the model; a non-finite loss is ``null``). With ``resume=True`` the runs
already in the file are skipped; a line cut short by a stop is dropped.

``fw.sweep`` is this module's :func:`sweep`; the rest (``grid``, ``summarize``,
``read_results``) is reached as ``pyfw.sweeps.X``.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import importlib
import itertools
import json
import math
import os
import signal
from typing import Any, Callable, Iterable, List, Mapping, Optional, Sequence

from . import task

PathLike = Any


def grid(spec: Mapping[str, Sequence[Any]]) -> List[dict]:
    """Every combination of the values of ``spec``, as settings: ``grid({"lr": [0.01, 0.1],
    "activation": ["relu", "silu"]})`` gives four dicts, the last key varying fastest.

    A key is a field of :class:`~pyfw.task.Config` other than ``seed``, or ``"preset"``
    (a name of ``task.PRESETS``, whose fields it sets)."""
    keys = list(spec)
    for k in keys:
        _check_key(k, "grid")
        if isinstance(spec[k], (str, bytes)) or not list(spec[k]):
            raise ValueError(f"grid: {k} needs a non-empty list of values, got {spec[k]!r:.60}")
    return [dict(zip(keys, values)) for values in itertools.product(*(list(spec[k]) for k in keys))]


def _check_key(key: Any, who: str) -> None:
    names = [f.name for f in dataclasses.fields(task.Config) if f.name != "seed"]
    if key not in names and key != "preset":
        raise ValueError(f"{who}: {key!r} is not a setting: use preset or a field of pyfw.task.Config "
                         f"other than seed ({', '.join(names)})")


def resolve(setting: Any, base: task.Config, who: str = "sweep") -> tuple:
    """``(setting dict, Config)`` of one entry of ``configs``: a ``Config`` (its setting: the
    fields where it differs from ``base``, seed left out) or a mapping of settings applied
    over ``base`` (a ``"preset"`` first, then the other keys)."""
    if isinstance(setting, task.Config):
        config = setting
        fields = dataclasses.asdict(config)
        return {k: v for k, v in fields.items() if k != "seed" and v != getattr(base, k)}, config
    if not isinstance(setting, Mapping):
        raise TypeError(f"{who}: each config must be a pyfw.task.Config or a dict of settings, "
                        f"got {type(setting).__name__}")
    fields = dataclasses.asdict(base)
    for k in setting:
        _check_key(k, who)
    if "preset" in setting:
        if setting["preset"] not in task.PRESETS:
            raise ValueError(f"{who}: preset must be one of {', '.join(task.PRESETS)}, got {setting['preset']!r}")
        fields.update(task.PRESETS[setting["preset"]][1])
    fields.update({k: v for k, v in setting.items() if k != "preset"})
    return dict(setting), task.Config(**fields)


def _key(config: task.Config) -> str:
    """What identifies a run: its Config, as canonical JSON."""
    return json.dumps(dataclasses.asdict(config), sort_keys=True)


def run_one(backend: str, fields: dict) -> dict:
    """Train one run: ``task.train`` of backend ``backend`` (a module name) on ``Config(**fields)``.

    Returns the result without the model, non-finite losses as None. This is what a
    worker runs; it takes and returns plain data, so any executor can ship it."""
    fw = importlib.import_module(backend)
    res = task.train(fw, task.Config(**fields))
    res.pop("model")
    res["losses"] = [v if math.isfinite(v) else None for v in res["losses"]]
    if not math.isfinite(res["final_loss"]):
        res["final_loss"] = None
    return res


def _ignore_sigint() -> None:
    """In a process-pool worker: Ctrl-C is the parent's to handle (it stops the sweep)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def default_executor(fw: Any, workers: Optional[int] = None) -> concurrent.futures.Executor:
    """A thread pool for ``pyfw_rs`` (its native ``fit`` runs without the interpreter lock),
    a process pool for ``pyfw``; ``workers`` defaults to the number of CPUs."""
    n = workers if workers is not None else (os.cpu_count() or 1)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"sweep: workers must be a positive integer, got {n!r}")
    if fw.__name__ == "pyfw_rs":
        return concurrent.futures.ThreadPoolExecutor(max_workers=n)
    return concurrent.futures.ProcessPoolExecutor(max_workers=n, initializer=_ignore_sigint)


def read_results(out: PathLike, who: str = "sweep") -> List[dict]:
    """The results in a sweep's JSON-lines file; a last line cut short (no newline) is left out."""
    path = os.fspath(out)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    elif lines:
        lines.pop()  # cut short by a stop while it was written
    results = []
    for k, line in enumerate(lines, start=1):
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict):
                raise ValueError("not a JSON object")
            task.Config(**{f.name: rec[f.name] for f in dataclasses.fields(task.Config)})
        except (ValueError, TypeError, KeyError) as e:
            raise ValueError(f"{who}: {path}, line {k}: not a result of a sweep ({type(e).__name__}: {e})") from None
        results.append(rec)
    return results


def _config_of(rec: Mapping[str, Any]) -> task.Config:
    return task.Config(**{f.name: rec[f.name] for f in dataclasses.fields(task.Config)})


def sweep(configs: Iterable[Any], seeds: Iterable[int], executor: Optional[concurrent.futures.Executor] = None,
          *, fw: Any = None, base: Optional[task.Config] = None, workers: Optional[int] = None,
          out: Optional[PathLike] = None, resume: bool = False,
          on_result: Optional[Callable[[dict, int, int], None]] = None,
          on_resumed: Optional[Callable[[List[dict], int], None]] = None) -> List[dict]:
    """Train every setting of ``configs`` with every seed of ``seeds``; return the results.

    ``configs``: ``pyfw.task.Config`` objects, or dicts of settings applied over ``base``
    (default ``Config()``), such as :func:`grid` makes. ``seeds``: ints; each run's
    ``Config.seed`` is the seed itself. ``executor``: any ``concurrent.futures.Executor``
    (left running); None makes :func:`default_executor` (``workers`` of them) and
    shuts it down. ``fw``: the backend (default: ``pyfw``; ``pyfw_rs.sweep`` defaults
    to ``pyfw_rs``). With ``out``, each result is appended to that JSON-lines file as
    it finishes; an existing file is refused (``FileExistsError``) unless ``resume``,
    which skips the runs it holds. ``on_result(result, done, total)`` is called in the
    caller's thread after each run; ``on_resumed(results, total)`` once before any run,
    with the results of this sweep that ``out`` already holds (so that a progress
    report counts them too). Returns one result per run, in the order of
    ``configs`` then ``seeds``, whatever order they finished in.
    """
    if fw is None:
        fw = importlib.import_module("pyfw")
    base = task.Config() if base is None else base
    if not isinstance(base, task.Config):
        raise TypeError(f"sweep: base must be a pyfw.task.Config, got {type(base).__name__}")
    seeds = list(seeds)
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int):
            raise TypeError(f"sweep: seeds must be ints, got {s!r:.40}")
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"sweep: seeds must be distinct and not empty, got {seeds!r:.100}")
    runs: list = []  # (key, setting, config), in order
    seen: dict = {}
    for i, entry in enumerate(configs):
        setting, config = resolve(entry, base)
        for s in seeds:
            c = dataclasses.replace(config, seed=s)
            k = _key(c)
            if k in seen:
                raise ValueError(f"sweep: configs[{i}] ({setting}) runs the same Config as "
                                 f"configs[{seen[k]}] with seed {s}")
            seen[k] = i
            runs.append((k, setting, c))
    if not runs:
        raise ValueError("sweep: configs is empty")
    done: dict = {}
    if out is not None:
        path = os.fspath(out)
        if os.path.exists(path):
            if not resume:
                raise FileExistsError(f"sweep: {path} exists; resume=True continues that sweep")
            wanted = {k for k, _, _ in runs}
            for rec in read_results(path):
                k = _key(_config_of(rec))
                if k in wanted:
                    done[k] = rec
            _drop_cut_line(path)
    total = len(runs)
    if on_resumed is not None:
        on_resumed([done[k] for k, _, _ in runs if k in done], total)
    results = dict(done)
    # Seed by seed (every setting's run of the first seed, then of the second, ...), so that
    # the settings can be compared early over the same seeds; the results do not depend on it.
    position = {s: i for i, s in enumerate(seeds)}
    todo = sorted([(k, setting, c) for k, setting, c in runs if k not in done], key=lambda r: position[r[2].seed])
    own = executor is None and bool(todo)
    if own:
        executor = default_executor(fw, min(workers or (os.cpu_count() or 1), len(todo)))
    f = open(os.fspath(out), "a", encoding="utf-8") if out is not None else None
    try:
        futures = {executor.submit(run_one, fw.__name__, dataclasses.asdict(c)): (k, setting)  # type: ignore
                   for k, setting, c in todo}
        for fut in concurrent.futures.as_completed(futures):
            k, setting = futures[fut]
            rec = {"setting": setting, **fut.result()}
            results[k] = rec
            if f is not None:
                f.write(json.dumps(rec, allow_nan=False) + "\n")
                f.flush()
                os.fsync(f.fileno())
            if on_result is not None:
                on_result(rec, len(results), total)
    except BaseException:
        if own:
            # The workers before shutdown, which forgets them: a pure-Python run can take a minute; stop it now.
            workers_left = list((getattr(executor, "_processes", None) or {}).values())
            executor.shutdown(wait=False, cancel_futures=True)  # type: ignore
            for p in workers_left:
                p.terminate()
            own = False
        raise
    finally:
        if f is not None:
            f.close()
        if own:
            executor.shutdown()  # type: ignore
    return [results[k] for k, _, _ in runs]


def _drop_cut_line(path: str) -> None:
    """Truncate a line cut short by a stop, so that appending starts on a line of its own."""
    with open(path, "rb+") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)


def label(setting: Mapping[str, Any]) -> str:
    """A setting as text: ``lr=0.1 activation=silu`` (``base`` when it sets nothing)."""
    return " ".join(f"{k}={v}" for k, v in setting.items()) or "base"


def summarize(results: Sequence[Mapping[str, Any]], metric: str = "test_error") -> List[dict]:
    """Per setting, in order of first appearance: ``setting``, ``runs``, ``seeds``, and the
    ``mean``, ``median``, ``best``, ``worst`` and ``spread`` (worst - best) of ``metric`` over
    its runs. The mean adds the values in seed order, as documented for every sum."""
    groups: dict = {}
    for rec in results:
        key = json.dumps(rec["setting"], sort_keys=True)
        g = groups.setdefault(key, {"setting": dict(rec["setting"]), "values": [], "seeds": []})
        g["values"].append((rec["seed"], float(rec[metric])))
    out = []
    for g in groups.values():
        pairs = sorted(g["values"])
        values = [v for _, v in pairs]
        total = 0.0
        for v in values:
            total += v
        ordered = sorted(values)
        n = len(ordered)
        median = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
        out.append({"setting": g["setting"], "runs": n, "seeds": [s for s, _ in pairs], "mean": total / n,
                    "median": median, "best": ordered[0], "worst": ordered[-1], "spread": ordered[-1] - ordered[0]})
    return out


def table(summary: Sequence[Mapping[str, Any]], metric: str = "test error") -> str:
    """The summary as a text table, values in percent."""
    names = [label(row["setting"]) for row in summary]
    w = max([len("setting")] + [len(n) for n in names])
    lines = [f"{'setting':<{w}}  {'runs':>4}  {'mean':>7}  {'median':>7}  {'worst':>7}  {'spread':>7}   ({metric}, %)"]
    for name, row in zip(names, summary):
        lines.append(f"{name:<{w}}  {row['runs']:>4}  " + "  ".join(
            f"{100 * row[k]:7.2f}" for k in ("mean", "median", "worst", "spread")))
    return "\n".join(lines) + "\n"
