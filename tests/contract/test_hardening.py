"""Bad values stopped at every door, whatever their type, and the same submodules in
both backends."""

from __future__ import annotations

import pytest
from conftest import load_backend

import pyfw


def overflowed(fw):
    """A tensor of ``fw`` that holds inf: ``add_`` can overflow."""
    t = fw.tensor([1e308, 1.0])
    t.add_(fw.tensor([1e308, 0.0]))
    assert t.tolist()[0] == float("inf")
    return t


@pytest.mark.parametrize("door", ["tensor", "copy_", "add_", "load_state_dict"])
def test_non_finite_values_are_stopped_at_every_door(door: str) -> None:
    rs = load_backend("rs")
    msgs = []
    for fw in (pyfw, rs):
        bad = overflowed(fw)
        lin = fw.Linear(2, 1)
        before = lin.state_dict()["weight"].tolist()
        use = {
            "tensor": lambda: fw.tensor(bad),
            "copy_": lambda: fw.tensor([0.0, 0.0]).copy_(bad),
            "add_": lambda: fw.tensor([0.0, 0.0]).add_(bad),
            "load_state_dict": lambda: lin.load_state_dict({"weight": fw.tensor([bad.tolist()]),
                                                            "bias": fw.tensor([0.0])}),
        }[door]
        with pytest.raises(ValueError) as e:
            use()
        msgs.append(str(e.value))
        assert lin.state_dict()["weight"].tolist() == before
    assert msgs[0] == msgs[1]


def test_float_subclasses_become_floats() -> None:
    """A float subclass that overrides arithmetic does not reach the kernels."""
    class Loud(float):
        def __mul__(self, other):  # noqa: ANN001, ANN204
            return 42.0
        __rmul__ = __mul__

    rs = load_backend("rs")
    for fw in (pyfw, rs):
        t = fw.tensor([[Loud(0.5), 2.0]])
        assert [type(v) for v in t.tolist()[0]] == [float, float]
        lin = fw.Linear(2, 1, generator=fw.Generator(0))
        ref = lin(fw.tensor([[0.5, 2.0]])).tolist()
        assert lin(t).tolist() == ref


def test_the_same_submodules_in_both_backends() -> None:
    rs = load_backend("rs")
    for name in ("optim", "init", "data", "io", "losses", "activations"):
        assert hasattr(pyfw, name) and hasattr(rs, name), name
    assert list(rs.losses.LOSSES) == list(pyfw.losses.LOSSES)
    assert list(rs.activations.ACTIVATIONS) == list(pyfw.activations.ACTIVATIONS)
    assert rs.activations.ReLU is rs.ReLU and rs.losses.MSELoss is rs.MSELoss
    import pyfw_rs.optim.lr_scheduler as sched
    assert sched is pyfw.optim.lr_scheduler


@pytest.mark.parametrize("make", ["linear", "tanh", "dropout", "sequential", "loss"])
def test_backward_in_another_thread_than_the_forward_is_refused(make: str) -> None:
    """Another thread's forward replaces the input a module saved: its backward would
    compute a wrong gradient, so it raises instead, in both backends."""
    import threading
    rs = load_backend("rs")
    msgs = []
    for fw in (pyfw, rs):
        m = {"linear": lambda: fw.Linear(2, 2), "tanh": fw.Tanh, "dropout": lambda: fw.Dropout(0.5),
             "sequential": lambda: fw.Sequential(fw.Linear(2, 2), fw.ReLU()), "loss": fw.MSELoss}[make]()

        def forward() -> None:
            if make == "loss":
                m(fw.tensor([[1.0, 2.0]]), fw.tensor([[0.0, 0.0]]))
            else:
                m(fw.tensor([[1.0, 2.0]]))

        def backward() -> None:
            if make == "loss":
                m.backward()
            else:
                m.backward(fw.tensor([[1.0, 1.0]]))

        forward()
        t = threading.Thread(target=forward)
        t.start()
        t.join()
        with pytest.raises(RuntimeError) as e:
            backward()
        msgs.append(str(e.value))
        forward()
        backward()  # the same thread again: fine
    assert msgs[0] == msgs[1] and "another thread" in msgs[0]


DEEP = """
import sys, importlib
fw = importlib.import_module(sys.argv[1])
outer = fw.Sequential(fw.Tanh())
inner = outer
for _ in range(100000):  # each append checks only the inner Sequential: the chain grows unchecked
    new = fw.Sequential(fw.Tanh())
    inner.append(new)
    inner = new
try:
    outer([[0.5]])
except RecursionError:
    print("RecursionError")
del outer, inner, new
print("freed")
"""


@pytest.mark.parametrize("backend", ["pyfw", "pyfw_rs"])
def test_a_chain_of_100000_nested_sequentials_raises_and_is_freed(backend: str) -> None:
    """Run in a child process, so that a crash fails this test instead of the suite."""
    import subprocess
    import sys
    load_backend("rs" if backend == "pyfw_rs" else "py")
    p = subprocess.run([sys.executable, "-c", DEEP, backend], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, (p.returncode, p.stderr[-500:])
    assert p.stdout.split() == ["RecursionError", "freed"]


def test_load_state_dict_is_atomic_with_respect_to_forward_and_state_dict() -> None:
    """While one thread loads two states in turn, another thread's outputs and snapshots
    are always wholly one state or the other, in both backends."""
    import sys
    import threading
    rs = load_backend("rs")
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for fw in (pyfw, rs):
            model = fw.Sequential(fw.Linear(3, 4), fw.ReLU(), fw.Linear(4, 2))
            states = [{k: [[c] * len(r) for r in v.tolist()] if isinstance(v.tolist()[0], list) else [c] * len(v)
                       for k, v in model.state_dict().items()} for c in (0.5, -0.25)]
            outs = []
            for sd in states:
                model.load_state_dict(sd)
                outs.append(model([[1.0, 2.0, 3.0]]).tolist())
            stop, seen, mixed = threading.Event(), set(), []

            def load() -> None:
                k = 0
                while not stop.is_set():
                    model.load_state_dict(states[k % 2])
                    k += 1

            t = threading.Thread(target=load)
            t.start()
            try:
                for _ in range(300):
                    y = model([[1.0, 2.0, 3.0]]).tolist()
                    seen.add(repr(y))
                    if y not in outs:
                        mixed.append(y)
                    snap = {tuple(sorted({x for r in ([v.tolist()] if not isinstance(v.tolist()[0], list)
                                                        else v.tolist()) for x in r}))
                            for v in model.state_dict().values()}
                    if len(snap) != 1:
                        mixed.append(snap)
            finally:
                stop.set()
                t.join()
            assert not mixed, (fw.__name__, mixed[:2])
    finally:
        sys.setswitchinterval(old)


def test_threads_training_their_own_wide_models_get_the_same_bits() -> None:
    """Wide Linear kernels run without the interpreter lock; each thread's results are
    still those of the same run alone."""
    import threading
    from fwtest import th
    rs = load_backend("rs")

    def run(seed: int, out: dict) -> None:
        g = rs.Generator(seed)
        m = rs.Sequential(rs.Linear(64, 256, generator=g), rs.Tanh(), rs.Linear(256, 8, generator=g))
        x = rs.tensor([[g.uniform(-1.0, 1.0) for _ in range(64)] for _ in range(64)])
        opt = rs.SGD(m.parameters(), lr=0.01)
        for _ in range(5):
            opt.zero_grad()
            y = m(x)
            m.backward(y)
            opt.step()
        out[seed] = th(m(x))

    alone: dict = {}
    for s in range(3):
        run(s, alone)
    together: dict = {}
    ts = [threading.Thread(target=run, args=(s, together)) for s in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert together == alone


def test_rmsprop_with_alpha_above_one_gives_the_same_nan_in_both_backends() -> None:
    """torch allows alpha > 1; the running average may turn negative, and its square root
    is NaN in both backends rather than an exception halfway through a step in one."""
    from fwtest import th
    rs = load_backend("rs")
    out = []
    for fw in (pyfw, rs):
        p = fw.tensor([1.0, -2.0, 0.5])
        p.grad = fw.tensor([3.0, 1.0, -2.0])
        opt = fw.RMSprop([p], lr=0.1, alpha=1.5)
        for _ in range(3):
            opt.step()
        out.append(th(p))
    assert out[0] == out[1]
    assert any(v == "nan" for v in out[0])


JUNK_PARAMS = [None, "ab", [{}], [(1, 2)], [(None,)], [[1.0, 2.0, 3.0]], 5, [("w", "g")]]


@pytest.mark.parametrize("junk", JUNK_PARAMS, ids=[repr(j) for j in JUNK_PARAMS])
@pytest.mark.parametrize("use", ["zero_grad", "state_dict", "parameters", "named_param"])
def test_a_garbage_param_gets_the_same_error_in_both_backends(junk: object, use: str) -> None:
    rs = load_backend("rs")
    got = []
    for fw in (pyfw, rs):
        class Junk(fw.Module):
            def param(self) -> object:
                return junk
        m = Junk()
        try:
            r = getattr(m, use)()
            list(r) if use == "parameters" else None
            got.append(None)
        except Exception as e:  # noqa: BLE001 - compared across backends
            got.append((type(e), str(e).replace("pyfw_rs", "pyfw")))
    assert got[0] == got[1]
    assert got[0] is not None and got[0][0] is TypeError
