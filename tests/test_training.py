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
