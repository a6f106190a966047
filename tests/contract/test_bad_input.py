"""The errors the README promises for bad input, case by case, on every backend.

A wrong shape, a ragged nested list, a non-number or NaN/inf gets ValueError or
TypeError; backward before forward gets RuntimeError; bad counts and learning
rates are rejected; misuse from another thread still gets an exception.
(Named test_bad_input rather than test_errors: ``-k "not rs"`` matches substrings.)
"""

from __future__ import annotations

import threading
from types import ModuleType
from typing import Callable

import pytest

NAN, INF = float("nan"), float("inf")


def _cases(fw: ModuleType) -> list:
    """(id, thunk, exception) for every kind of bad input the contract names."""
    lin = fw.Linear(2, 3)
    return [
        # tensors
        ("tensor-ragged", lambda: fw.tensor([[1.0, 2.0], [3.0]]), ValueError),
        ("tensor-str", lambda: fw.tensor([["a", 1.0]]), TypeError),
        ("tensor-none", lambda: fw.tensor([None]), TypeError),
        ("tensor-nan", lambda: fw.tensor([[NAN]]), ValueError),
        ("tensor-inf", lambda: fw.tensor([INF, 1.0]), ValueError),
        ("tensor-empty", lambda: fw.tensor([]), ValueError),
        # modules
        ("linear-width", lambda: lin([[1.0, 2.0, 3.0]]), ValueError),
        ("linear-1d-width", lambda: lin([1.0, 2.0, 3.0]), ValueError),
        ("linear-ragged", lambda: lin([[1.0, 2.0], [1.0]]), ValueError),
        ("linear-nan", lambda: lin([[1.0, NAN]]), ValueError),
        ("linear-str", lambda: lin([[1.0, "2"]]), TypeError),
        ("linear-size-0", lambda: fw.Linear(0, 3), ValueError),
        ("linear-size-neg", lambda: fw.Linear(2, -3), ValueError),
        ("linear-size-float", lambda: fw.Linear(2.0, 3), TypeError),
        ("linear-backward-early", lambda: fw.Linear(2, 3).backward([[1.0, 1.0, 1.0]]), RuntimeError),
        ("relu-backward-early", lambda: fw.ReLU().backward([[1.0]]), RuntimeError),
        ("tanh-backward-early", lambda: fw.Tanh().backward([[1.0]]), RuntimeError),
        ("mse-backward-early", lambda: fw.MSELoss().backward(), RuntimeError),
        ("mse-shapes", lambda: fw.MSELoss()([[1.0, 2.0]], [[1.0], [2.0]]), ValueError),
        ("mse-nan", lambda: fw.MSELoss()([[1.0, NAN]], [[1.0, 2.0]]), ValueError),
        # optimizer
        ("sgd-lr-neg", lambda: fw.SGD(fw.Linear(2, 2).param(), lr=-0.1), ValueError),
        ("sgd-lr-nan", lambda: fw.SGD(fw.Linear(2, 2).param(), lr=NAN), ValueError),
        ("sgd-lr-str", lambda: fw.SGD(fw.Linear(2, 2).param(), lr="0.1"), TypeError),
        # generator, data
        ("randperm-0", lambda: fw.randperm(0), ValueError),
        ("randperm-neg", lambda: fw.randperm(-4), ValueError),
        ("disk-0", lambda: fw.data.disk(0, generator=fw.Generator(0)), ValueError),
        ("disk-neg", lambda: fw.data.disk(-5, generator=fw.Generator(0)), ValueError),
        ("disk-float", lambda: fw.data.disk(10.0, generator=fw.Generator(0)), TypeError),
        ("one-hot-range", lambda: fw.data.one_hot([0, 2], 2), ValueError),
        ("one-hot-classes", lambda: fw.data.one_hot([0, 1], 0), ValueError),
        ("one-hot-float", lambda: fw.data.one_hot([0.0, 1.0], 2), TypeError),
        # state dicts
        ("load-missing", lambda: fw.Linear(2, 3).load_state_dict({"weight": [[0.0, 0.0]] * 3}), ValueError),
        ("load-shape", lambda: fw.Linear(2, 3).load_state_dict(
            {"weight": [[0.0, 0.0]] * 2, "bias": [0.0] * 3}), ValueError),
    ]


CASE_IDS = [c[0] for c in _cases(pytest.importorskip("pyfw"))]


@pytest.mark.parametrize("case", CASE_IDS)
def test_bad_input_gets_the_documented_exception(fw: ModuleType, case: str) -> None:
    thunk, exc = {c[0]: c[1:] for c in _cases(fw)}[case]
    with pytest.raises(exc) as e:
        thunk()
    assert str(e.value), "the message must say what went wrong"
    if fw.__name__ != "pyfw":  # the same words as the reference, which names module and shapes
        ref_thunk, _ = {c[0]: c[1:] for c in _cases(pytest.importorskip("pyfw"))}[case]
        with pytest.raises(exc) as ref:
            ref_thunk()
        assert str(e.value) == str(ref.value)


def test_bad_input_from_another_thread(fw: ModuleType) -> None:
    """Misuse from a worker thread gets exceptions there, and the process carries on."""
    results: dict = {}

    def work(name: str, thunk: Callable[[], object]) -> None:
        try:
            thunk()
            results[name] = None
        except Exception as e:  # noqa: BLE001
            results[name] = type(e)

    cases = _cases(fw)
    threads = [threading.Thread(target=work, args=(c[0], c[1])) for c in cases]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert {c[0]: c[2] for c in cases} == {k: results.get(k) for k, _, _ in cases}
    # the framework still works afterwards
    assert fw.Linear(2, 1)([[1.0, 2.0]]).shape == (1, 1)


def test_shared_model_used_from_many_threads(fw: ModuleType) -> None:
    """Concurrent forward calls on one model must not crash or corrupt its parameters."""
    g = fw.Generator(0)
    model = fw.Sequential(fw.Linear(2, 8, generator=g), fw.Tanh(), fw.Linear(8, 2, generator=g))
    before = [p.tolist() for p, _ in model.param()]
    want = model([[0.5, 0.25]]).tolist()
    errors: list = []

    def work() -> None:
        try:
            for _ in range(50):
                out = model([[0.5, 0.25]]).tolist()
                if out != want:
                    errors.append(out)
                try:
                    model([[1.0, 2.0, 3.0]])
                except ValueError:
                    pass
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert [p.tolist() for p, _ in model.param()] == before
