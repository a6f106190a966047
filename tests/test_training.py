"""The shared training loop: fit / train_epoch on either backend, replayed by hand
bit for bit, with uneven last batches, callbacks and bad arguments."""

from __future__ import annotations

from types import ModuleType

import pytest

import pyfw
from pyfw.training import fit, train_epoch
from fwtest import state_hex


def setup(fw: ModuleType, seed: int = 0, n: int = 200, lr: float = 0.1) -> tuple:
    g = fw.Generator(seed)
    x, y = fw.data.disk(n, generator=g)
    model = fw.Sequential(fw.Linear(2, 25, generator=g), fw.ReLU(), fw.Linear(25, 25, generator=g), fw.ReLU(),
                          fw.Linear(25, 2, generator=g))
    return model, fw.MSELoss(), fw.SGD(model.param(), lr=lr), x, fw.data.one_hot(y, 2), y, g




def test_losses_decrease_on_the_disk_task(fw: ModuleType) -> None:
    model, crit, opt, x, t, y, g = setup(fw, 0, n=300)
    err0 = pyfw.error_rate(model(x), y)
    losses = fit(model, crit, opt, x, t, epochs=8, batch_size=10, generator=g)
    assert len(losses) == 8 and all(type(v) is float for v in losses)
    assert losses[-1] < losses[0]
    assert losses[-1] < 0.9 * losses[0]
    assert sum(b < a for a, b in zip(losses, losses[1:])) >= 5
    assert pyfw.error_rate(model(x), y) <= err0


def test_backend_exports_fit(fw: ModuleType) -> None:
    assert callable(fw.fit) and callable(fw.train_epoch)


def _replay_epoch(fw: ModuleType, model: object, crit: object, opt: object, x: object, t: object,
                  batch_size: int, g: object) -> float:
    """train_epoch written out from its docstring."""
    n = len(x)
    order = fw.randperm(n, generator=g)
    total = 0.0
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        opt.zero_grad()
        loss = crit(model(x[idx]), t[idx])
        model.backward(crit.backward())
        opt.step()
        total = total + loss * len(idx)
    return total / n


@pytest.mark.parametrize("n, batch", [(23, 10), (20, 10), (7, 10), (5, 1)])
def test_train_epoch_matches_hand_replay(fw: ModuleType, n: int, batch: int) -> None:
    a = setup(fw, 5, n=n)
    b = setup(fw, 5, n=n)
    calls: list = []
    la = train_epoch(*a[:5], batch_size=batch, generator=a[6], on_batch=lambda k, m, l: calls.append((k, m, l)))
    lb = _replay_epoch(fw, *b[:5], batch, b[6])
    assert la.hex() == lb.hex()
    assert state_hex(a[0]) == state_hex(b[0])
    nb = -(-n // batch)
    assert [(k, m) for k, m, _ in calls] == [(k, nb) for k in range(1, nb + 1)]
    assert a[6].next_u64() == b[6].next_u64(), "one randperm per epoch, nothing else"


def test_fit_matches_repeated_train_epoch(fw: ModuleType) -> None:
    a = setup(fw, 6, n=45)
    b = setup(fw, 6, n=45)
    seen: list = []
    la = fit(*a[:5], epochs=3, batch_size=7, generator=a[6], on_epoch=lambda e, l: seen.append((e, l)))
    lb = [train_epoch(*b[:5], batch_size=7, generator=b[6]) for _ in range(3)]
    assert [v.hex() for v in la] == [v.hex() for v in lb]
    assert seen == [(1, la[0]), (2, la[1]), (3, la[2])]
    assert state_hex(a[0]) == state_hex(b[0])


def test_no_shuffle_keeps_order_and_draws_nothing(fw: ModuleType) -> None:
    model, crit, opt, x, t, _, g = setup(fw, 2, n=30)
    g.manual_seed(99)
    ref = fw.Generator(99)
    train_epoch(model, crit, opt, x, t, batch_size=30, generator=g, shuffle=False)
    assert g.next_u64() == ref.next_u64()
    # a full-batch epoch without shuffling equals one hand-written step on all rows
    m2, c2, o2, x2, t2, _, _ = setup(fw, 2, n=30)
    o2.zero_grad()
    c2(m2(x2), t2)
    m2.backward(c2.backward())
    o2.step()
    assert state_hex(model) == state_hex(m2)


def test_batch_larger_than_data(fw: ModuleType) -> None:
    model, crit, opt, x, t, _, g = setup(fw, 3, n=6)
    calls: list = []
    loss = train_epoch(model, crit, opt, x, t, batch_size=100, generator=g,
                       on_batch=lambda k, m, l: calls.append((k, m)))
    assert calls == [(1, 1)] and loss > 0.0


def test_fit_sets_training_mode(fw: ModuleType) -> None:
    model, crit, opt, x, t, _, g = setup(fw, 1, n=10)
    model.eval()
    fit(model, crit, opt, x, t, epochs=1, generator=g)
    assert model.training


def test_same_seed_same_losses(fw: ModuleType) -> None:
    runs = []
    for _ in range(2):
        model, crit, opt, x, t, _, g = setup(fw, 11, n=60)
        runs.append([v.hex() for v in fit(model, crit, opt, x, t, epochs=2, batch_size=8, generator=g)])
    assert runs[0] == runs[1]


@pytest.mark.parametrize("epochs, exc", [(0, ValueError), (-1, ValueError), (1.5, TypeError), ("2", TypeError),
                                         (None, TypeError), (True, TypeError)],
                         ids=["0", "-1", "1.5", "str", "none", "bool"])
def test_bad_epochs(fw: ModuleType, epochs: object, exc: type) -> None:
    model, crit, opt, x, t, _, g = setup(fw, 0, n=10)
    before = state_hex(model)
    with pytest.raises(exc):
        fit(model, crit, opt, x, t, epochs=epochs, generator=g)
    assert state_hex(model) == before


@pytest.mark.parametrize("batch, exc", [(0, ValueError), (-10, ValueError), (2.5, TypeError), ("10", TypeError),
                                        (None, TypeError), (True, TypeError)],
                         ids=["0", "-10", "2.5", "str", "none", "bool"])
def test_bad_batch_size(fw: ModuleType, batch: object, exc: type) -> None:
    model, crit, opt, x, t, _, g = setup(fw, 0, n=10)
    before = state_hex(model)
    with pytest.raises(exc):
        train_epoch(model, crit, opt, x, t, batch_size=batch, generator=g)
    with pytest.raises(exc):
        fit(model, crit, opt, x, t, epochs=1, batch_size=batch, generator=g)
    assert state_hex(model) == before


def test_mismatched_lengths(fw: ModuleType) -> None:
    model, crit, opt, x, t, _, g = setup(fw, 0, n=10)
    with pytest.raises(ValueError):
        train_epoch(model, crit, opt, x, t[0:9], generator=g)


# ---------------------------------------------------------------- schedulers, early stopping, data kinds

class OneHotMSE:
    """MSELoss on one-hot targets that takes class indices (a list of ints) as targets."""

    def __init__(self, fw: ModuleType) -> None:
        self.fw, self.mse = fw, fw.MSELoss()

    def __call__(self, out: object, labels: object) -> float:
        assert type(labels) is list and all(type(v) is int for v in labels)
        return self.mse(out, self.fw.data.one_hot(labels, 2))

    def backward(self) -> object:
        return self.mse.backward()


def test_fit_steps_the_scheduler_after_each_epoch(fw: ModuleType) -> None:
    from pyfw.optim.lr_scheduler import StepLR
    a = setup(fw, 4, n=33)
    b = setup(fw, 4, n=33)
    opt_a = a[2]
    sched = StepLR(opt_a, step_size=1, gamma=0.5)
    seen: list = []
    la = fit(a[0], a[1], opt_a, a[3], a[4], epochs=3, batch_size=8, generator=a[6], scheduler=sched,
             on_epoch=lambda e, l: seen.append(opt_a.param_groups[0]["lr"]))
    assert seen == [0.05, 0.025, 0.0125] and sched.last_epoch == 3
    # by hand: epoch e runs with lr 0.1 * 0.5**e (exact: halving)
    opt_b = b[2]
    lb = []
    for e in range(3):
        opt_b.param_groups[0]["lr"] = 0.1 * 0.5 ** e
        lb.append(train_epoch(b[0], b[1], opt_b, b[3], b[4], batch_size=8, generator=b[6]))
    assert [v.hex() for v in la] == [v.hex() for v in lb]
    assert state_hex(a[0]) == state_hex(b[0])


def test_plateau_gets_the_epoch_loss(fw: ModuleType) -> None:
    from pyfw.optim.lr_scheduler import ReduceLROnPlateau

    class Recording(ReduceLROnPlateau):
        def step(self, metrics: float) -> None:  # type: ignore[override]
            self.seen.append(metrics)
            super().step(metrics)

    model, crit, opt, x, t, _, g = setup(fw, 9, n=20)
    sched = Recording(opt, patience=0)
    sched.seen = []
    losses = fit(model, crit, sched.optimizer, x, t, epochs=3, generator=g, scheduler=sched)
    assert sched.seen == losses and sched.best == min(losses)


def test_scheduler_then_on_epoch_and_early_stopping(fw: ModuleType) -> None:
    events: list = []

    class Counting:
        def step(self) -> None:
            events.append("step")

    def stop_at_3(e: int, loss: float) -> object:
        events.append(e)
        return False if e == 3 else (None if e % 2 else True)

    a = setup(fw, 2, n=25)
    la = fit(*a[:5], epochs=10, batch_size=6, generator=a[6], scheduler=Counting(), on_epoch=stop_at_3)
    assert len(la) == 3 and events == ["step", 1, "step", 2, "step", 3]
    b = setup(fw, 2, n=25)
    lb = fit(*b[:5], epochs=3, batch_size=6, generator=b[6])
    assert [v.hex() for v in la] == [v.hex() for v in lb]
    assert state_hex(a[0]) == state_hex(b[0])
    assert a[6].next_u64() == b[6].next_u64(), "no permutation drawn after the stop"


@pytest.mark.parametrize("result", [None, True, 0, "", [], 1], ids=["none", "true", "zero", "empty", "list", "one"])
def test_only_false_stops(fw: ModuleType, result: object) -> None:
    model, crit, opt, x, t, _, g = setup(fw, 0, n=10)
    assert len(fit(model, crit, opt, x, t, epochs=3, generator=g, on_epoch=lambda e, l: result)) == 3


def _same_fit(fw: ModuleType, inputs: object, targets: object, crit: object = None, seed: int = 12) -> None:
    """fit on converted data gives the bits of fit on tensors."""
    a = setup(fw, seed, n=27)
    b = setup(fw, seed, n=27)
    la = fit(*a[:5], epochs=2, batch_size=5, generator=a[6])
    lb = fit(b[0], crit or b[1], b[2], inputs(b), targets(b), epochs=2, batch_size=5, generator=b[6])
    assert [v.hex() for v in la] == [v.hex() for v in lb]
    assert state_hex(a[0]) == state_hex(b[0])


def test_fit_accepts_nested_lists(fw: ModuleType) -> None:
    _same_fit(fw, lambda s: s[3].tolist(), lambda s: s[4].tolist())
    _same_fit(fw, lambda s: tuple(tuple(r) for r in s[3].tolist()), lambda s: tuple(s[4].tolist()))


def test_fit_accepts_class_indices(fw: ModuleType) -> None:
    _same_fit(fw, lambda s: s[3], lambda s: s[5], crit=OneHotMSE(fw))
    _same_fit(fw, lambda s: s[3].tolist(), lambda s: tuple(s[5]), crit=OneHotMSE(fw))
    a = setup(fw, 3, n=14)
    b = setup(fw, 3, n=14)
    la = train_epoch(a[0], a[1], a[2], a[3], a[4], batch_size=4, generator=a[6])
    lb = train_epoch(b[0], OneHotMSE(fw), b[2], b[3].tolist(), b[5], batch_size=4, generator=b[6])
    assert la.hex() == lb.hex() and state_hex(a[0]) == state_hex(b[0])


def test_fit_accepts_numpy(fw: ModuleType) -> None:
    np = pytest.importorskip("numpy")
    _same_fit(fw, lambda s: np.array(s[3].tolist()), lambda s: np.array(s[4].tolist()))
    _same_fit(fw, lambda s: np.array(s[3].tolist(), dtype=np.float64), lambda s: np.array(s[5], dtype=np.int64),
              crit=OneHotMSE(fw))
    _same_fit(fw, lambda s: s[3], lambda s: list(np.array(s[5])), crit=OneHotMSE(fw))  # numpy ints in a list


def test_fit_finds_the_backend_of_a_subclassed_model(fw: ModuleType) -> None:
    from pyfw.training import backend_of

    class Net(fw.Sequential):
        pass

    net = Net(fw.Linear(2, 2))
    assert backend_of(net) is fw
    losses = fit(net, fw.MSELoss(), fw.SGD(net.param(), lr=0.1), [[0.0, 1.0], [1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]],
                 epochs=1, generator=fw.Generator(0))
    assert len(losses) == 1


BAD_DATA = [
    ("inputs-str", lambda s: ("abc", s[4]), TypeError, "fit: inputs"),
    ("inputs-int", lambda s: (5, s[4]), TypeError, "fit: inputs"),
    ("inputs-ragged", lambda s: ([[0.1, 0.2]] * 9 + [[0.1]], s[4]), ValueError, "fit: inputs"),
    ("inputs-1d", lambda s: ([0.1] * 10, s[4]), ValueError, "2-D"),
    ("inputs-nan", lambda s: ([[0.1, float("nan")]] * 10, s[4]), ValueError, "fit: inputs"),
    ("targets-floats", lambda s: (s[3], [0.0] * 10), TypeError, "class indices"),
    ("targets-bools", lambda s: (s[3], [True] * 10), TypeError, "class indices"),
    ("targets-mixed", lambda s: (s[3], [0] * 9 + [[1.0, 0.0]]), TypeError, "class indices"),
    ("targets-dict", lambda s: (s[3], {"a": 1}), TypeError, "fit: targets"),
    ("targets-none", lambda s: (s[3], None), TypeError, "fit: targets"),
    ("targets-empty", lambda s: (s[3], []), ValueError, "empty"),
    ("targets-short", lambda s: (s[3], s[5][:9]), ValueError, "10 inputs but 9 targets"),
    ("targets-ragged", lambda s: (s[3], [[1.0, 0.0]] * 9 + [[1.0]]), ValueError, "fit: targets"),
]


@pytest.mark.parametrize("make, exc, match", [c[1:] for c in BAD_DATA], ids=[c[0] for c in BAD_DATA])
def test_fit_says_what_it_needs(fw: ModuleType, make: object, exc: type, match: str) -> None:
    s = setup(fw, 0, n=10)
    before = state_hex(s[0])
    inputs, targets = make(s)
    with pytest.raises(exc, match=match):
        fit(s[0], s[1], s[2], inputs, targets, epochs=1, generator=s[6])
    assert state_hex(s[0]) == before
    assert s[6].next_u64() == setup(fw, 0, n=10)[6].next_u64(), "nothing drawn"


def test_fit_rejects_the_other_backends_tensors(fw: ModuleType) -> None:
    from conftest import BACKENDS, load_backend
    s = setup(fw, 0, n=10)
    for name in BACKENDS:
        other = load_backend(name)
        if other is fw:
            continue
        with pytest.raises(TypeError, match="tolist"):
            fit(s[0], s[1], s[2], other.tensor(s[3].tolist()), s[4], epochs=1, generator=s[6])
        with pytest.raises(TypeError, match="tolist"):
            fit(s[0], s[1], s[2], s[3], other.tensor(s[4].tolist()), epochs=1, generator=s[6])


def test_fit_bad_scheduler_and_callback(fw: ModuleType) -> None:
    model, crit, opt, x, t, _, g = setup(fw, 0, n=10)
    before = state_hex(model)
    with pytest.raises(TypeError, match="scheduler"):
        fit(model, crit, opt, x, t, epochs=1, generator=g, scheduler=0.5)
    with pytest.raises(TypeError, match="on_epoch"):
        fit(model, crit, opt, x, t, epochs=1, generator=g, on_epoch="print")
    assert state_hex(model) == before


def test_a_model_of_no_backend_needs_tensors(fw: ModuleType) -> None:
    """A duck-typed model works with tensors (their backend draws the permutation), not with lists."""
    model, crit, opt, x, t, _, g = setup(fw, 0, n=10)

    class Wrapper:
        def __call__(self, v: object) -> object:
            return model(v)

        def backward(self, grad: object) -> object:
            return model.backward(grad)

        def train(self) -> None:
            model.train()

    assert len(fit(Wrapper(), crit, opt, x, t, epochs=1, generator=g)) == 1
    with pytest.raises(TypeError, match="backend"):
        fit(Wrapper(), crit, opt, x.tolist(), t, epochs=1, generator=g)
