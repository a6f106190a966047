"""An object that native code of another thread is using (an epoch of a native ``fit``)
is refused with a ``RuntimeError`` that names it and says so, never PyO3's bare
"Already borrowed"; and a tensor cannot be its own gradient, in either backend."""

from __future__ import annotations

import threading
from types import ModuleType

import pytest

from conftest import load_backend
from pyfw.training import fit


def test_objects_held_by_a_native_fit_say_so() -> None:
    fw = load_backend("rs")
    g = fw.Generator(0)
    model = fw.Sequential(fw.Linear(2, 128, generator=g), fw.ReLU(), fw.Linear(128, 128, generator=g),
                          fw.ReLU(), fw.Linear(128, 2, generator=g))
    opt = fw.SGD(model.parameters(), lr=0.01)
    weight = model[0].weight
    x = fw.tensor([[0.1 * (i % 7), 0.2 * (i % 5)] for i in range(8000)])
    y = [i % 2 for i in range(8000)]
    reads: dict = {
        "Sequential": lambda: model.state_dict(), "Linear": lambda: model[0].weight,
        "parameters": lambda: list(model.parameters()), "SGD": lambda: opt.state_dict(),
        "param_groups": lambda: opt.param_groups, "Tensor": lambda: weight.tolist(),
        "repr": lambda: repr(model), "forward": lambda: model(x[[0]]), "zero_grad": lambda: model.zero_grad(),
    }
    done = threading.Event()
    errors: list = []

    def run() -> None:
        try:
            fit(model, fw.CrossEntropyLoss(), opt, x, y, epochs=4, batch_size=20, generator=g)
        finally:
            done.set()

    thread = threading.Thread(target=run)
    thread.start()
    seen: set = set()
    while not done.is_set():
        for name, read in reads.items():
            try:
                read()
            except RuntimeError as e:
                errors.append(str(e))
                seen.add(name)
    thread.join()
    assert errors, "the reads should have met a running epoch"
    for message in errors:
        assert "Already" not in message
        assert "in use by native code in another thread (an epoch of a native fit" in message, message
        assert message.split(":")[0] in ("Linear", "SGD", "Tensor"), message


def test_a_tensor_cannot_be_its_own_gradient(fw: ModuleType) -> None:
    """A module would add its gradient into its values; refused in both backends."""
    w = fw.tensor([[1.0, 2.0]])
    with pytest.raises(ValueError, match="Tensor.grad: a tensor cannot be its own gradient"):
        w.grad = w
    assert w.grad is None
    other = fw.tensor([[0.0, 0.0]])
    w.grad = other
    assert w.grad is other
