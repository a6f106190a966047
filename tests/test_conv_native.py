"""The convolution family inside pyfw_rs's stack runner: a native ``Sequential`` and the native
epoch of ``fit`` run image networks of its members and ``BatchNorm2d`` in Rust, with the bits of
pyfw and of the Python loop; bad inputs fail as in the Python loop. (Each member alone trains
natively in tests/test_layers.py, from the layer table.)"""

from __future__ import annotations

import threading
from types import ModuleType
from typing import Any

import pytest
from conftest import load_backend
from fwtest import sd_hex, th

import pyfw


def rs() -> ModuleType:
    return load_backend("rs")


def _loop(*_: Any) -> None:
    """An ``on_batch`` that does nothing: it makes ``train_epoch`` run the Python loop."""


def _spy(monkeypatch: pytest.MonkeyPatch) -> list:
    """Record what ``pyfw_rs._train_epoch`` returns (None: the Python loop ran)."""
    r = rs()
    seen: list = []
    real = r._train_epoch

    def spy(*args: Any, **kw: Any) -> Any:
        seen.append(real(*args, **kw))
        return seen[-1]

    monkeypatch.setattr(r, "_train_epoch", spy)
    return seen


def _image_net(fw: ModuleType, transpose: bool) -> Any:
    """The denoiser's shape on 3 x 8 x 8 images (with BatchNorm2d and the poolings)."""
    g = fw.Generator(7)
    up = ([fw.ConvTranspose2d(6, 6, 3, stride=2, padding=1, output_padding=1, generator=g)] if transpose
          else [fw.Upsample(scale_factor=2), fw.Conv2d(6, 6, 3, padding=1, generator=g)])
    return fw.Sequential(fw.Conv2d(3, 4, 3, stride=2, padding=1, generator=g), fw.ReLU(), fw.BatchNorm2d(4),
                         fw.Conv2d(4, 6, 3, stride=2, padding=1, generator=g), fw.ReLU(), *up, fw.ReLU(),
                         fw.MaxPool2d(3, stride=1, padding=1), fw.AvgPool2d(3, stride=1, padding=1),
                         fw.Upsample(scale_factor=2), fw.Conv2d(6, 3, 3, padding=1, generator=g), fw.Sigmoid())


def _images(fw: ModuleType, n: int, size: int = 8) -> tuple:
    g = fw.Generator(11)
    return fw.rand(n, 3, size, size, generator=g), fw.rand(n, 3, size, size, generator=g)


@pytest.mark.parametrize("transpose", [False, True], ids=["upsample", "transpose"])
def test_an_image_network_trains_natively_with_the_bits_of_pyfw(monkeypatch: pytest.MonkeyPatch,
                                                                transpose: bool) -> None:
    """A Noise2Noise-shaped network on (N, 3, 8, 8) images with image targets: pyfw_rs's native
    fit, its Python loop, a hand-written loop and pyfw give the same bits (float.hex), and the
    network keeps what backward needs as after the Python loop."""
    seen = _spy(monkeypatch)
    results = []
    for fw, mode in ((pyfw, "fit"), (rs(), "fit"), (rs(), "loop"), (rs(), "hand")):
        model = _image_net(fw, transpose)
        x, y = _images(fw, 6)
        opt = fw.SGD(model.parameters(), lr=0.5, momentum=0.5)
        crit = fw.MSELoss()
        if mode == "hand":
            g = fw.Generator(2)
            losses = []
            for _ in range(2):
                order = fw.randperm(6, generator=g)
                total = 0.0
                for k in range(0, 6, 4):
                    idx = order[k:k + 4]
                    opt.zero_grad()
                    loss = crit(model(x[idx]), y[idx])
                    model.backward(crit.backward())
                    opt.step()
                    total += loss * len(idx)
                losses.append(total / 6)
        else:
            losses = fw.fit(model, crit, opt, x, y, epochs=2, batch_size=4, generator=fw.Generator(2),
                            on_batch=_loop if mode == "loop" else None)
        after = th(model.backward(crit.backward()))
        results.append(([v.hex() for v in losses], sd_hex(model.state_dict()), after))
    assert len(seen) == 2 and all(isinstance(v, float) for v in seen)  # the native fit's two epochs
    assert results[0] == results[1] == results[2] == results[3]


def test_a_conv_epoch_runs_without_the_interpreter_lock() -> None:
    """While a native epoch of a convolutional network runs in one thread, this thread runs Python
    code; the objects it holds say they are in use by native code in another thread."""
    fw = rs()
    g = fw.Generator(0)
    model = fw.Sequential(fw.Conv2d(3, 8, 3, padding=1, generator=g), fw.ReLU(), fw.BatchNorm2d(8),
                          fw.MaxPool2d(2), fw.Conv2d(8, 8, 3, padding=1, generator=g), fw.ReLU(),
                          fw.Upsample(scale_factor=2), fw.Conv2d(8, 3, 3, padding=1, generator=g))
    x, y = _images(fw, 48, 16)
    opt = fw.SGD(model.parameters(), lr=0.01)
    done = threading.Event()
    ticks = 0
    errors: list = []

    def run() -> None:
        try:
            fw.fit(model, fw.MSELoss(), opt, x, y, epochs=3, batch_size=8, generator=g)
        finally:
            done.set()

    thread = threading.Thread(target=run)
    thread.start()
    while not done.is_set():
        ticks += 1
        try:
            model[0].weight.tolist()
        except RuntimeError as e:
            errors.append(str(e))
    thread.join()
    assert ticks > 1 and errors, "the reads should have met a running epoch"
    assert all("in use by native code in another thread" in m for m in errors), errors[:3]


BAD: list = [
    ("channels", (4, 2, 8, 8), (4, 3, 8, 8), "Conv2d(3 -> 4, kernel_size=(3, 3)): expected 3 input channels, got 2"),
    ("rank", (4, 3, 8), (4, 3, 8, 8), "Conv2d(3 -> 4, kernel_size=(3, 3)): expected a 4-D input (N, C, H, W)"),
    ("target", (4, 3, 8, 8), (4, 3, 4, 4), "MSELoss"),
]


@pytest.mark.parametrize("case, xs, ys, start", BAD, ids=[b[0] for b in BAD])
def test_bad_inputs_fail_as_in_the_python_loop(monkeypatch: pytest.MonkeyPatch, case: str, xs: tuple, ys: tuple,
                                               start: str) -> None:
    """Data the network cannot take: the native epoch declines, or stops where the Python loop
    does, and both backends raise the same ValueError, naming the layer (or the loss) and the
    shapes; the parameters have not changed."""
    seen = _spy(monkeypatch)
    messages, states = [], []
    for fw in (pyfw, rs()):
        model = _image_net(fw, False)
        params = lambda: sd_hex(dict(model.named_parameters()))  # noqa: E731
        before = params()
        with pytest.raises(ValueError) as e:
            fw.fit(model, fw.MSELoss(), fw.SGD(model.parameters(), lr=0.1), fw.zeros(*xs), fw.zeros(*ys),
                   epochs=1, batch_size=2)
        messages.append(str(e.value))
        assert params() == before
        states.append(sd_hex(model.state_dict()))  # a forward that ran moved BatchNorm2d's statistics
    assert len(seen) <= 1
    assert messages[0] == messages[1] and messages[0].startswith(start), messages
    assert states[0] == states[1]
