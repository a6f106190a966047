"""Grad mode (``no_grad``, ``enable_grad``, ``set_grad_enabled``, ``is_grad_enabled``), in
both backends: from the family tables, every activation, loss and layer gives the same bits
with and without ``no_grad``, keeps nothing under it (a ``backward`` then raises the same
``RuntimeError`` in both backends), and records again afterwards. Then nesting, the
decorator, threads, the refusal of ``fit``, and the code paths that run inference.

What a forward kept is released: pyfw's modules hold ``NO_GRAD`` in its place; pyfw_rs's
kernel states raise the ``no_grad`` error only when their saved buffers are gone (an
``Option`` set to ``None``), so the error itself shows that the memory was dropped.
"""

from __future__ import annotations

import random
import threading
from types import ModuleType
from typing import Any, Callable

import pytest
import test_activations
import test_losses
from conftest import load_backend
from fwtest import around, example, hexes, th

import pyfw
from pyfw import task
from pyfw.error import NO_GRAD

NO_GRAD_ERROR = "backward after a forward under no_grad, which keeps nothing for backward"


def rows(seed: int, n: int, c: int) -> list:
    rng = random.Random(seed)
    return [[rng.uniform(-3.0, 3.0) for _ in range(c)] for _ in range(n)]


def error_of(f: Callable[[], Any]) -> tuple:
    """``(type name, message)`` of what ``f()`` raises."""
    with pytest.raises(Exception) as info:
        f()
    return type(info.value).__name__, str(info.value)


def check_no_grad(fw: ModuleType, make: Callable[[], Any], forward: Callable[[Any], Any],
                  backward: Callable[[Any], Any]) -> tuple:
    """Run ``forward`` three times on a module from ``make`` (the second under ``no_grad``)
    and on a reference that records each time; check that the outputs agree bit for bit, that a ``backward`` after the ``no_grad``
    forward raises (also when an earlier forward had kept its state), and that a forward
    with grad records again. Returns the output and the error, to compare across backends."""
    ref = make()
    want = [hexes(forward(ref)) for _ in range(3)]  # a Dropout draws a new mask each time
    backward(ref)
    m = make()
    assert hexes(forward(m)) == want[0]  # kept ...
    with fw.no_grad():
        assert fw.is_grad_enabled() is False
        got = hexes(forward(m))  # ... and dropped
    assert fw.is_grad_enabled() is True
    assert got == want[1]
    kind, message = error_of(lambda: backward(m))
    assert kind == "RuntimeError" and NO_GRAD_ERROR in message, message
    if fw is pyfw:  # every module that keeps state holds NO_GRAD instead
        kept = [getattr(k, type(k)._forward_state[0]) for k in m.modules() if hasattr(k, type(k)._forward_state[0])]
        assert kept and all(v is NO_GRAD for v in kept), kept
    assert hexes(forward(m)) == want[2]  # grad enabled again: it records
    backward(m)
    return got, message


# ---- the families ------------------------------------------------------------------

@pytest.mark.parametrize("name, kw", test_activations.CASES, ids=test_activations.IDS)
def test_every_activation(name: str, kw: dict) -> None:
    x, g = rows(1, 4, 5), rows(2, 4, 5)
    out = [check_no_grad(fw, lambda: fw.ACTIVATIONS[name](**kw), lambda m: m(fw.tensor(x)).tolist(),
                         lambda m: m.backward(fw.tensor(g)))
           for fw in (pyfw, load_backend("rs"))]
    assert out[0] == out[1]


@pytest.mark.parametrize("name, kw", test_losses.CASES, ids=test_losses.IDS)
def test_every_loss(name: str, kw: dict) -> None:
    x, targets = test_losses.smooth_sample(name, kw, random.Random(5), 4, 3)
    for label, t in targets:
        out = [check_no_grad(fw, lambda: fw.LOSSES[name](**kw), lambda m: m(fw.tensor(x), t),
                             lambda m: m.backward()) for fw in (pyfw, load_backend("rs"))]
        assert out[0] == out[1], label


def _layers(fw: ModuleType) -> dict:
    """A maker of each member of the layer table, in training mode: fwtest's example of it on rows
    of 3 values (a member that takes samples of another shape inside a Sequential, between the
    layers of ``around``), and a Sequential of several layers."""
    def member(name: str) -> Callable[[], Any]:
        def make() -> Any:
            before, after = around(fw, name, fw.Generator(1))
            m = example(fw, name)
            return fw.Sequential(*before, m, *after) if before else m
        return make

    makers = {name: member(name) for name in fw.LAYERS if name != "Sequential"}
    makers["Sequential"] = lambda: fw.Sequential(fw.Linear(3, 4, generator=fw.Generator(3)), fw.Tanh(),
                                                 fw.LayerNorm(4), fw.Dropout(0.3, generator=fw.Generator(4)),
                                                 fw.Linear(4, 3, bias=False, generator=fw.Generator(5)))
    return makers


def test_the_layer_table_is_covered() -> None:
    assert list(_layers(pyfw)) == list(pyfw.LAYERS)


@pytest.mark.parametrize("name", list(pyfw.LAYERS))
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_every_layer(name: str, training: bool) -> None:
    """Dropout draws the same numbers under no_grad: its mask is still needed for the output."""
    x = rows(3, 6, 3)
    out = []
    for fw in (pyfw, load_backend("rs")):
        def make() -> Any:
            return _layers(fw)[name]().train(training)

        def forward(m: Any) -> list:
            return m(fw.tensor(x)).tolist()

        def backward(m: Any) -> Any:
            return m.backward(fw.tensor([[1.0] * len(r) for r in forward(make())]))
        out.append(check_no_grad(fw, make, forward, backward))
    assert out[0] == out[1]


def test_a_native_sequential_keeps_nothing_in_any_child() -> None:
    """pyfw_rs's Sequential runs its children natively (``native_layers``); each child's
    ``backward`` then raises, and the first to run (the last child) names itself."""
    rs = load_backend("rs")
    for fw in (pyfw, rs):
        model = _layers(fw)["Sequential"]()
        model(fw.tensor(rows(4, 3, 3)))
        with fw.no_grad():
            model(fw.tensor(rows(4, 3, 3)))
        for child in model:
            with pytest.raises(RuntimeError, match=NO_GRAD_ERROR):
                child.backward(fw.tensor([[1.0] * (child.out_features if isinstance(child, fw.Linear) else 4)] * 3))
        with pytest.raises(RuntimeError, match=r"^Linear\(4 -> 3\): " + NO_GRAD_ERROR):
            model.backward(fw.tensor([[1.0] * 3] * 3))


def test_a_custom_module_inside_a_native_sequential() -> None:
    """A Python module with registered children, run by a native Sequential through Python."""
    out = []
    for fw in (pyfw, load_backend("rs")):
        class Block(fw.Module):
            def __init__(self) -> None:
                super().__init__()
                self.fc = fw.Linear(3, 3, generator=fw.Generator(6))
                self.act = fw.ReLU()

            def forward(self, x: Any) -> Any:
                return self.act(self.fc(x))

            def backward(self, g: Any) -> Any:
                return self.fc.backward(self.act.backward(g))

        out.append(check_no_grad(fw, lambda: fw.Sequential(Block(), fw.Linear(3, 2, generator=fw.Generator(7))),
                                 lambda m: m(fw.tensor(rows(8, 4, 3))).tolist(),
                                 lambda m: m.backward(fw.tensor([[1.0, -1.0]] * 4))))
    assert out[0] == out[1]


# ---- the switch ----------------------------------------------------------------------

def test_blocks_nest_and_restore_the_mode(fw: ModuleType) -> None:
    assert fw.is_grad_enabled()
    with fw.no_grad():
        with fw.no_grad():
            assert not fw.is_grad_enabled()
        assert not fw.is_grad_enabled()
        with fw.enable_grad():
            assert fw.is_grad_enabled()
            with fw.set_grad_enabled(False):
                assert not fw.is_grad_enabled()
            assert fw.is_grad_enabled()
        assert not fw.is_grad_enabled()
    assert fw.is_grad_enabled()
    same = fw.no_grad()  # one object entered twice, nested
    with same:
        with same:
            pass
        assert not fw.is_grad_enabled()
    assert fw.is_grad_enabled()
    with pytest.raises(KeyError):
        with fw.no_grad():
            raise KeyError("x")
    assert fw.is_grad_enabled()


def test_set_grad_enabled_sets_at_once(fw: ModuleType) -> None:
    try:
        fw.set_grad_enabled(False)
        assert not fw.is_grad_enabled()
        fw.set_grad_enabled(True)
        assert fw.is_grad_enabled()
    finally:
        fw.set_grad_enabled(True)
    for bad in (0, 1, None, "False"):
        with pytest.raises(TypeError, match="set_grad_enabled: mode must be a bool"):
            fw.set_grad_enabled(bad)
    assert fw.is_grad_enabled()


def test_decorator_with_and_without_parentheses(fw: ModuleType) -> None:
    @fw.no_grad()
    def a(v: int) -> tuple:
        """Doc of a."""
        return v, fw.is_grad_enabled()

    @fw.no_grad
    def b() -> bool:
        return fw.is_grad_enabled()

    @fw.enable_grad()
    def c() -> bool:
        return fw.is_grad_enabled()

    assert a(3) == (3, False) and b() is False and fw.is_grad_enabled()
    assert a.__name__ == "a" and a.__doc__ == "Doc of a."
    with fw.no_grad():
        assert c() is True and not fw.is_grad_enabled()
    m = fw.Linear(2, 2, generator=fw.Generator(0))
    fw.no_grad()(m)(fw.tensor([[1.0, 2.0]]))  # any callable
    with pytest.raises(RuntimeError, match=NO_GRAD_ERROR):
        m.backward(fw.tensor([[1.0, 1.0]]))

    def gen() -> Any:
        yield fw.is_grad_enabled()
    with pytest.raises(TypeError, match="generator or coroutine function"):
        fw.no_grad()(gen)
    with pytest.raises(TypeError, match="can decorate a function"):
        fw.no_grad()(3)


def test_the_mode_is_per_thread(fw: ModuleType) -> None:
    """A thread starts with grad enabled and keeps what forward needs while another is in
    no_grad; a no_grad in that thread leaves this one recording."""
    x, g = fw.tensor(rows(9, 2, 2)), fw.tensor([[1.0, 1.0, 1.0]] * 2)
    seen: dict = {}

    def other() -> None:
        seen["mode"] = fw.is_grad_enabled()
        m = fw.Linear(2, 3, generator=fw.Generator(0))
        m(x)
        seen["dx"] = th(m.backward(g))

    with fw.no_grad():
        t = threading.Thread(target=other)
        t.start()
        t.join()
    ref = fw.Linear(2, 3, generator=fw.Generator(0))
    ref(x)
    assert seen == {"mode": True, "dx": th(ref.backward(g))}

    inside = threading.Event()
    leave = threading.Event()

    def quiet() -> None:
        with fw.no_grad():
            inside.set()
            leave.wait(10)

    t = threading.Thread(target=quiet)
    t.start()
    try:
        assert inside.wait(10)
        assert fw.is_grad_enabled()
        ref(x)
        ref.backward(g)
    finally:
        leave.set()
        t.join()


def test_the_two_backends_have_their_own_switch() -> None:
    rs = load_backend("rs")
    with pyfw.no_grad():
        assert rs.is_grad_enabled()
    with rs.no_grad():
        assert pyfw.is_grad_enabled()
    assert rs.no_grad is not pyfw.no_grad and rs.grad_mode.is_grad_enabled is rs._native.is_grad_enabled


# ---- training and inference ------------------------------------------------------------

@pytest.mark.parametrize("entry", ["fit", "train_epoch"])
def test_training_is_refused_under_no_grad(fw: ModuleType, entry: str) -> None:
    model = _layers(fw)["Sequential"]()
    before = {k: th(v) for k, v in model.state_dict().items()}
    opt = fw.SGD(model.parameters(), lr=0.1)
    args = (model, fw.MSELoss(), opt, rows(1, 4, 3), rows(2, 4, 3))
    with fw.no_grad():
        with pytest.raises(RuntimeError, match=rf"^{entry}: grad is disabled in this thread \(inside "
                                               rf"{fw.__name__}.no_grad\(\)\)"):
            fw.fit(*args, 1) if entry == "fit" else fw.train_epoch(*args)
    assert {k: th(v) for k, v in model.state_dict().items()} == before
    fw.fit(*args, 1)  # and runs outside


def test_tracked_errors_are_measured_under_no_grad(fw: ModuleType) -> None:
    """task.train measures errors after every epoch and at the end without recording (the
    model's layers keep nothing), and the numbers are those of a measure with grad."""
    config = task.Config(epochs=2, n_train=40, n_test=30, hidden=6, batch_size=10)
    res = task.train(fw, config, track_errors=True)
    model = res["model"]
    with pytest.raises(RuntimeError, match=NO_GRAD_ERROR):
        model.backward(fw.tensor([[1.0, 1.0]] * 30))
    run = task.build_run(fw, config)
    model.eval()
    assert res["test_error"] == pyfw.metrics.error_rate(model(run["x_test"]), run["y_test"])
    assert res["test_errors"][-1] == res["test_error"]


@pytest.mark.parametrize("command", ["predict", "plot"])
def test_the_cli_runs_its_model_under_no_grad(fw: ModuleType, command: str, tmp_path: Any,
                                               monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    """``predict`` and ``plot --model`` leave the loaded model holding nothing for backward."""
    from pyfw import cli, io
    path = tmp_path / "m.safetensors"
    io.save_model(task.make_model(fw, fw.Generator(0), hidden=4), str(path))
    loaded: list = []
    load = io.load_model
    monkeypatch.setattr(io, "load_model", lambda *a, **k: loaded.append(load(*a, **k)) or loaded[-1])
    backend = {"pyfw": "py", "pyfw_rs": "rs"}[fw.__name__]
    if command == "predict":
        csv = tmp_path / "x.csv"
        csv.write_text("x,y\n0.5,0.25\n-1.0,2.0\n", encoding="utf-8")
        args = ["predict", str(path), "--input", str(csv), "--backend", backend]
    else:
        args = ["plot", "--model", str(path), "-o", str(tmp_path / "p.svg"), "--n-test", "20", "--n-train", "20",
                "--backend", backend]
    assert cli.main(args) == 0
    capsys.readouterr()
    with pytest.raises(RuntimeError, match=NO_GRAD_ERROR):
        loaded[0].backward(fw.tensor([[1.0, 1.0]]))


def test_the_playground_measures_under_no_grad(fw: ModuleType) -> None:
    from pyfw import playground
    run = playground.Run(fw, task.Config(epochs=1, n_train=20, n_test=20, hidden=4), {})
    try:
        with run.lock:
            model = run.parts["model"]
            with pytest.raises(RuntimeError, match=NO_GRAD_ERROR):
                model.backward(fw.tensor([[1.0, 1.0]]))
    finally:
        run.close()
