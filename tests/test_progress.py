"""``fit``'s ``on_progress``: the running mean loss after a batch, at most every
``PROGRESS_EVERY`` seconds and always after an epoch's last batch, in the Python loop
and in ``pyfw_rs``'s native epoch (general and fused), and the CLI on the native path."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Optional

import pytest

import pyfw
from pyfw import cli, io, training

N, BATCH, EPOCHS = 53, 8, 3
NBATCHES = -(-N // BATCH)


def _native(fw: ModuleType) -> Any:
    return getattr(fw, "_native", None)


def _fused_steps(fw: ModuleType) -> int:
    native = _native(fw)
    return native._fused_steps() if native is not None else 0


def _train(fw: ModuleType, on_progress: Optional[Callable], on_batch: Optional[Callable] = None,
           loss: str = "MSELoss", opt: str = "SGD", lr: float = 0.1) -> dict:
    """A small MLP (the fused trainer takes it under SGD) trained for EPOCHS epochs."""
    g = fw.Generator(7)
    model = fw.Sequential(fw.Linear(2, 12, generator=g), fw.Tanh(), fw.Linear(12, 2, generator=g))
    x = fw.rand(N, 2, generator=g)
    labels = [int(a + b > 1.0) for a, b in x.tolist()]
    t = labels if loss == "CrossEntropyLoss" else fw.data.one_hot(labels, 2)
    crit = getattr(fw, loss)()
    optimizer = getattr(fw, opt)(model.parameters(), lr=lr)
    losses = fw.fit(model, crit, optimizer, x, t, epochs=EPOCHS, batch_size=BATCH, generator=g,
                    on_batch=on_batch, on_progress=on_progress)
    out = crit.backward()
    return {"losses": [v.hex() for v in losses],
            "state": {k: [v.hex() for v in pyfw_flat(t.tolist())] for k, t in model.state_dict().items()},
            "dloss": [v.hex() for v in pyfw_flat(out.tolist())], "gen": g.get_state()}


def pyfw_flat(v: Any) -> list:
    """A nested list's numbers, in order."""
    return [x for r in v for x in pyfw_flat(r)] if isinstance(v, list) else [v]


@pytest.mark.parametrize("loss, opt", [("MSELoss", "SGD"), ("CrossEntropyLoss", "SGD"), ("MSELoss", "Adam")])
def test_every_batch_reports_the_running_mean_of_the_python_loop(fw: ModuleType, loss: str, opt: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """With no least time between calls, every batch is reported, with the bits the Python loop
    computes, and the native epoch (fused under SGD, general under Adam) stays native."""
    monkeypatch.setattr(training, "PROGRESS_EVERY", 0.0)
    want: list = []
    batches: list = []

    def on_batch(k: int, n: int, batch_loss: float) -> None:
        batches.append(batch_loss * min(BATCH, N - (k - 1) * BATCH))

    plain = _train(pyfw, None, on_batch, loss, opt)
    total = 0.0
    for i, m in enumerate(batches):  # the fold of the Python loop, over each epoch
        k = i % NBATCHES + 1
        total = (0.0 if k == 1 else total) + m
        want.append((k, NBATCHES, (total / min(k * BATCH, N)).hex()))
    got: list = []
    before = _fused_steps(fw)
    res = _train(fw, lambda k, n, v: got.append((k, n, v.hex())), None, loss, opt)
    assert got == want
    assert res == plain, "on_progress changes nothing of the training"
    if _native(fw) is not None and opt == "SGD":
        assert _fused_steps(fw) - before == EPOCHS * NBATCHES, "the epoch ran on the fused trainer"


def test_the_last_batch_of_each_epoch_is_always_reported(fw: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a long least time, only each epoch's last batch, with the epoch's loss."""
    monkeypatch.setattr(training, "PROGRESS_EVERY", 1e6)
    got: list = []
    res = _train(fw, lambda k, n, v: got.append((k, n, v.hex())))
    assert got == [(NBATCHES, NBATCHES, v) for v in res["losses"]]


def test_calls_are_throttled_by_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Python loop on a fake clock that moves 0.04 s a reading: the third batch, the sixth, the last."""
    clock = [0.0]

    def fake() -> float:
        clock[0] += 0.04
        return clock[0]

    monkeypatch.setattr(training, "_clock", fake)
    got: list = []
    _train(pyfw, lambda k, n, v: got.append(k))
    assert NBATCHES == 7 and got == [3, 6, 7] * EPOCHS


def test_a_non_finite_loss_is_reported_at_once(fw: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first batch whose running mean is not finite is reported whatever the clock says,
    at the batch the Python loop's on_batch sees the loss turn."""
    monkeypatch.setattr(training, "PROGRESS_EVERY", 1e6)
    first: list = []
    _train(pyfw, None, lambda k, n, v: first.append(k) if not math.isfinite(v) and not first else None, lr=1e120)
    got: list = []
    _train(fw, lambda k, n, v: got.append((k, math.isfinite(v))), lr=1e120)
    assert first and got[0] == (first[0], False)


class Stop(Exception):
    """The callback's own exception."""


@pytest.mark.parametrize("opt", ["SGD", "Adam"])
@pytest.mark.parametrize("at", [3, NBATCHES])
def test_an_exception_from_the_callback_stops_fit_after_that_batch(fw: ModuleType, at: int, opt: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Raised after batch ``at`` of the second epoch: fit raises it, and the model, the loss and the
    generator hold what pyfw's Python loop leaves after that batch."""
    monkeypatch.setattr(training, "PROGRESS_EVERY", 0.0)
    states = []
    for f in (pyfw, fw):
        seen: list = []

        def stop(k: int, n: int, v: float) -> None:
            seen.append(k)
            if len(seen) > NBATCHES and k == at:
                raise Stop

        g = f.Generator(7)
        model = f.Sequential(f.Linear(2, 12, generator=g), f.Tanh(), f.Linear(12, 2, generator=g))
        x = f.rand(N, 2, generator=g)
        t = f.data.one_hot([int(a + b > 1.0) for a, b in x.tolist()], 2)
        crit = f.MSELoss()
        optimizer = getattr(f, opt)(model.parameters(), lr=0.1)
        with pytest.raises(Stop):
            f.fit(model, crit, optimizer, x, t, epochs=EPOCHS, batch_size=BATCH, generator=g, on_progress=stop)
        assert seen[-1] == at and len(seen) == NBATCHES + at
        states.append(([v.hex() for p in model.parameters() for v in pyfw_flat(p.tolist())],
                       [v.hex() for v in pyfw_flat(crit.backward().tolist())], g.get_state(),
                       str(optimizer.state_dict())))
    assert states[0] == states[1]


def test_a_signal_during_a_native_epoch_stops_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A signal that arrives while the native epoch runs (the interpreter lock released) is acted on
    at its next report: the handler's exception stops the epoch there."""
    rs = pytest.importorskip("pyfw_rs") if os.environ.get("PYFW_REQUIRE_RS") != "1" else __import__("pyfw_rs")
    monkeypatch.setattr(training, "PROGRESS_EVERY", 0.0)

    def handler(signum: int, frame: Any) -> None:
        raise Stop

    g = rs.Generator(1)
    n = 1_000_000
    model = rs.Sequential(rs.Linear(2, 4, generator=g), rs.Tanh(), rs.Linear(4, 1, generator=g))
    x, t = rs.rand(n, 2, generator=g), rs.rand(n, 1, generator=g)
    old = signal.signal(signal.SIGALRM, handler)
    before = rs._native._fused_steps()
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        with pytest.raises(Stop):  # slice: a callback that runs no Python code, so only the signal check acts
            rs.fit(model, rs.MSELoss(), rs.SGD(model.parameters(), lr=0.01), x, t, epochs=1, batch_size=2,
                   generator=g, on_progress=slice)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert 0 < rs._native._fused_steps() - before < n // 2, "stopped within the epoch"


def test_the_cli_trains_natively(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                 capsys: pytest.CaptureFixture) -> None:
    """``pyfw train`` (a live line, tracked errors, a checkpoint) runs the seed task on the fused
    trainer in pyfw_rs, with the bits of pyfw."""
    rs = pytest.importorskip("pyfw_rs") if os.environ.get("PYFW_REQUIRE_RS") != "1" else __import__("pyfw_rs")
    args = ["train", "--epochs", "3", "--n-train", "60", "--n-test", "40", "--track-errors", "--json", "-"]
    outs = []
    for backend in ("py", "rs"):
        before = rs._native._fused_steps()
        ck = tmp_path / f"{backend}.ckpt"
        assert cli.main([*args, "--backend", backend, "--checkpoint", str(ck)]) == 0
        ran = rs._native._fused_steps() - before
        assert (ran > 0) == (backend == "rs"), ran
        out = capsys.readouterr().out
        outs.append({k: v for k, v in __import__("json").loads(out).items() if k not in ("seconds", "backend")})
        assert io.checkpoint_info(str(ck))["epoch"] == 3
    assert outs[0] == outs[1]


def test_ctrl_c_during_a_native_cli_run_exits_130_with_an_intact_checkpoint(tmp_path: Path) -> None:
    """SIGINT while pyfw_rs trains natively: one line, status 130, and a checkpoint that resumes."""
    pytest.importorskip("pyfw_rs") if os.environ.get("PYFW_REQUIRE_RS") != "1" else __import__("pyfw_rs")
    repo = Path(pyfw.__file__).parent.parent
    ck = tmp_path / "run.ckpt"
    p = subprocess.Popen([sys.executable, "-m", "pyfw", "train", "--quiet", "--backend", "rs", "--epochs", "100000",
                          "--n-train", "20000", "--checkpoint", str(ck)], cwd=str(repo),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not ck.exists() and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.05)
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, err
    assert len(err.strip().splitlines()) == 1 and "interrupted" in err and str(ck) in err, err
    held = io.checkpoint_info(str(ck))["epoch"]
    assert held >= 1


def test_a_diverging_native_cli_run_stops_where_the_python_loop_does(capsys: pytest.CaptureFixture) -> None:
    """The live line's divergence check runs inside the native epoch: the same one line as pyfw's."""
    pytest.importorskip("pyfw_rs") if os.environ.get("PYFW_REQUIRE_RS") != "1" else __import__("pyfw_rs")
    lines = []
    for backend in ("py", "rs"):
        assert cli.main(["train", "--lr", "100", "--quiet", "--backend", backend]) == 1
        err = capsys.readouterr().err.strip()
        assert "diverged" in err and "epoch 1," in err and len(err.splitlines()) == 1, err
        lines.append(err)
    assert lines[0] == lines[1]
