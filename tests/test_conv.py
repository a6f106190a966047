"""The convolution family (``Conv1d``, ``Conv2d``) in both backends: finite differences,
bits across backends, the folds of docs/NUMERICS.md ("Conv2d"), init, the module tree,
bad arguments and input, and torch where it is installed."""

from __future__ import annotations

import copy
import math
import pickle
from types import ModuleType
from typing import Any

import pytest

import pyfw
from fwtest import state_hex, th
from conftest import load_backend

# (member, constructor arguments, input shape)
CASES = [
    ("Conv2d", dict(in_channels=2, out_channels=3, kernel_size=3), (2, 2, 5, 5)),
    ("Conv2d", dict(in_channels=2, out_channels=2, kernel_size=(2, 3), stride=2, padding=1), (2, 2, 6, 7)),
    ("Conv2d", dict(in_channels=1, out_channels=2, kernel_size=3, stride=(2, 1), padding=(0, 2),
                    dilation=(1, 2)), (1, 1, 7, 5)),
    ("Conv2d", dict(in_channels=3, out_channels=1, kernel_size=2, stride=3, dilation=2, bias=False), (2, 3, 8, 9)),
    ("Conv2d", dict(in_channels=2, out_channels=2, kernel_size=1, padding=2), (1, 2, 3, 2)),
    ("Conv1d", dict(in_channels=2, out_channels=3, kernel_size=3), (2, 2, 7)),
    ("Conv1d", dict(in_channels=1, out_channels=2, kernel_size=2, stride=2, padding=1, dilation=3), (3, 1, 9)),
    ("Conv1d", dict(in_channels=3, out_channels=2, kernel_size=4, stride=3, padding=2, bias=False), (1, 3, 5)),
]
IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(CASES)]


def build(fw: ModuleType, name: str, kwargs: dict, shape: tuple, seed: int = 0) -> tuple:
    """The module (weights from ``Generator(seed)``) and a random input of ``shape``."""
    m = getattr(fw, name)(**kwargs, generator=fw.Generator(seed))
    x = fw.randn(*shape, generator=fw.Generator(seed + 1))
    return m, x


def naive(m: Any, x: list, d: int) -> list:
    """The output by docs/NUMERICS.md's text, one element at a time: ``y[n, o, i, j]`` is a
    fold over ``(c, ki, kj)`` in row-major order of ``x * w`` starting at ``b[o]`` (0.0
    without a bias), skipping the terms in the zero padding."""
    w = m.weight.tolist()
    b = m.bias.tolist() if m.bias is not None else None
    if d == 1:  # height 1
        x = [[[row] for row in xn] for xn in x]
        w = [[[row] for row in wo] for wo in w]
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (1, *m.kernel_size), (1, *m.stride), (0, *m.padding), \
            (1, *m.dilation)
    else:
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = m.kernel_size, m.stride, m.padding, m.dilation
    H, W = len(x[0][0]), len(x[0][0][0])
    oh = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = []
    for xn in x:
        yn = []
        for o in range(len(w)):
            plane = []
            for i in range(oh):
                row = []
                for j in range(ow):
                    acc = b[o] if b is not None else 0.0
                    for c in range(len(xn)):
                        for ki in range(kh):
                            for kj in range(kw):
                                h, v = i * sh + ki * dh - ph, j * sw + kj * dw - pw
                                if 0 <= h < H and 0 <= v < W:
                                    acc = acc + xn[c][h][v] * w[o][c][ki][kj]
                    row.append(acc)
                plane.append(row)
            yn.append(plane[0] if d == 1 else plane)
        out.append(yn)
    return out


@pytest.mark.parametrize("name,kwargs,shape", CASES, ids=IDS)
def test_gradcheck(fw: ModuleType, name: str, kwargs: dict, shape: tuple) -> None:
    m, x = build(fw, name, kwargs, shape)
    assert fw.gradcheck(m, x)


@pytest.mark.parametrize("name,kwargs,shape", CASES, ids=IDS)
def test_output_follows_the_documented_fold(fw: ModuleType, name: str, kwargs: dict, shape: tuple) -> None:
    m, x = build(fw, name, kwargs, shape)
    assert th(m(x)) == th(pyfw.tensor(naive(m, x.tolist(), len(shape) - 2)))


@pytest.mark.parametrize("name,kwargs,shape", CASES, ids=IDS)
def test_backends_agree_bit_for_bit(name: str, kwargs: dict, shape: tuple) -> None:
    seen = []
    for backend in ("py", "rs"):
        fw = load_backend(backend)
        m, x = build(fw, name, kwargs, shape, seed=3)
        y = m(x)
        g = fw.randn(*y.shape, generator=fw.Generator(9))
        dx = m.backward(g)
        m(x)
        m.backward(g)  # accumulates
        seen.append((th(y), th(dx), state_hex(m), {n: th(p.grad) for n, p in m.named_parameters()}))
    assert seen[0] == seen[1]


def test_init_draws_weight_then_bias_as_torch(fw: ModuleType) -> None:
    m = fw.Conv2d(2, 3, (2, 3), generator=fw.Generator(5))
    g = fw.Generator(5)
    k = 1.0 / math.sqrt(2 * 2 * 3)
    want_w = [-k + (k - -k) * g.random() for _ in range(3 * 2 * 2 * 3)]
    want_b = [-k + (k - -k) * g.random() for _ in range(3)]
    assert th(m.weight.flatten()) == [v.hex() for v in want_w]
    assert th(m.bias) == [v.hex() for v in want_b]
    assert m.weight.shape == (3, 2, 2, 3) and fw.Conv1d(4, 5, 3).weight.shape == (5, 4, 3)
    assert fw.Conv2d(2, 3, 3, bias=False).bias is None


def test_module_tree_and_copies(fw: ModuleType) -> None:
    m, x = build(fw, "Conv2d", dict(in_channels=2, out_channels=3, kernel_size=3, padding=1), (2, 2, 4, 4))
    assert list(m.state_dict()) == ["weight", "bias"]
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]
    assert list(fw.Conv1d(2, 3, 3, bias=False).state_dict()) == ["weight"]
    other = fw.Conv2d(2, 3, 3, padding=1, generator=fw.Generator(7))
    other.load_state_dict(m.state_dict())
    assert th(other(x)) == th(m(x))
    for c in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert th(c(x)) == th(m(x)) and repr(c) == repr(m)
    assert repr(m) == "Conv2d(2, 3, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))"


def test_no_grad_keeps_nothing(fw: ModuleType) -> None:
    m, x = build(fw, "Conv2d", dict(in_channels=2, out_channels=3, kernel_size=3), (1, 2, 4, 4))
    y = m(x)
    with fw.no_grad():
        y2 = m(x)
    assert th(y) == th(y2)
    with pytest.raises(RuntimeError, match="no_grad"):
        m.backward(fw.ones(*y.shape))


def test_trains_in_sequential_with_fit(fw: ModuleType) -> None:
    g = fw.Generator(0)
    model = fw.Sequential(fw.Conv2d(1, 2, 3, padding=1, generator=g), fw.ReLU(),
                          fw.Conv2d(2, 1, 3, padding=1, generator=g))
    x = fw.randn(4, 1, 4, 4, generator=fw.Generator(1))
    t = x * 0.5
    loss = fw.MSELoss()
    before = loss(model(x), t)
    opt = fw.optim.SGD(model.parameters(), lr=0.1)
    fw.fit(model, loss, opt, x, t, epochs=5, batch_size=2, generator=fw.Generator(2))
    assert loss(model(x), t) < before


def test_fit_bits_agree_across_backends() -> None:
    seen = []
    for backend in ("py", "rs"):
        fw = load_backend(backend)
        g = fw.Generator(0)
        model = fw.Sequential(fw.Conv1d(1, 2, 3, stride=2, generator=g), fw.Tanh(),
                              fw.Conv1d(2, 1, 2, padding=1, generator=g))
        x = fw.randn(6, 1, 9, generator=fw.Generator(1))
        t = fw.randn(6, 1, 5, generator=fw.Generator(2))
        opt = fw.optim.Adam(model.parameters(), lr=0.01)
        fw.fit(model, fw.MSELoss(), opt, x, t, epochs=3, batch_size=4, generator=fw.Generator(3))
        seen.append(state_hex(model))
    assert seen[0] == seen[1]


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(groups=2), ValueError, "groups"),
    (dict(padding_mode="reflect"), ValueError, "padding_mode"),
    (dict(padding="same"), ValueError, "padding"),
    (dict(kernel_size=(3, 3, 3)), ValueError, "kernel_size"),
    (dict(kernel_size=0), ValueError, "kernel_size"),
    (dict(stride=0), ValueError, "stride"),
    (dict(padding=-1), ValueError, "padding"),
    (dict(dilation=1.5), TypeError, "dilation"),
    (dict(in_channels=0), ValueError, "in_channels"),
])
def test_bad_arguments(fw: ModuleType, kwargs: dict, error: type, match: str) -> None:
    args = dict(in_channels=2, out_channels=3, kernel_size=3)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        fw.Conv2d(**args)


@pytest.mark.parametrize("name,shape,match", [
    ("Conv2d", (2, 2, 5), r"Conv2d\(2 -> 3.*4-D input .*\(2, 2, 5\)"),
    ("Conv2d", (1, 3, 5, 5), r"Conv2d\(2 -> 3.*2 input channels, got 3 .*\(1, 3, 5, 5\)"),
    ("Conv2d", (1, 2, 2, 5), r"Conv2d\(2 -> 3.*smaller than the kernel.*\(1, 2, 2, 5\)"),
    ("Conv1d", (2, 2, 5, 5), r"Conv1d\(2 -> 3.*3-D input .*\(2, 2, 5, 5\)"),
    ("Conv1d", (1, 2, 2), r"Conv1d\(2 -> 3.*smaller than the kernel"),
])
def test_bad_input(fw: ModuleType, name: str, shape: tuple, match: str) -> None:
    m = getattr(fw, name)(2, 3, 3)
    with pytest.raises(ValueError, match=match):
        m(fw.zeros(*shape))


def test_bad_gradient_and_backward_first(fw: ModuleType) -> None:
    m, x = build(fw, "Conv2d", dict(in_channels=2, out_channels=3, kernel_size=3), (1, 2, 4, 4))
    with pytest.raises(RuntimeError, match="before forward"):
        m.backward(fw.zeros(1, 3, 2, 2))
    m(x)
    with pytest.raises(ValueError, match=r"gradient has shape \(1, 3, 2, 3\)"):
        m.backward(fw.zeros(1, 3, 2, 3))


@pytest.mark.parametrize("name,kwargs,shape", CASES, ids=IDS)
def test_matches_torch(fw: ModuleType, name: str, kwargs: dict, shape: tuple) -> None:
    torch = pytest.importorskip("torch")
    m, x = build(fw, name, kwargs, shape)
    ref = getattr(torch.nn, name)(**kwargs).double()
    ref.load_state_dict({k: torch.tensor(v.tolist(), dtype=torch.float64) for k, v in m.state_dict().items()})
    tx = torch.tensor(x.tolist(), dtype=torch.float64, requires_grad=True)
    ty = ref(tx)
    y = m(x)
    g = fw.randn(*y.shape, generator=fw.Generator(4))
    ty.backward(torch.tensor(g.tolist(), dtype=torch.float64))
    dx = m.backward(g)
    close = lambda a, b: torch.allclose(torch.tensor(a.tolist(), dtype=torch.float64), b, atol=1e-12)  # noqa: E731
    assert close(y, ty.detach()) and close(dx, tx.grad) and close(m.weight.grad, ref.weight.grad)
    if m.bias is not None:
        assert close(m.bias.grad, ref.bias.grad)


# ---- pooling: (member, constructor arguments, input shape)
POOLS = [
    ("MaxPool2d", dict(kernel_size=2), (2, 2, 4, 5)),
    ("MaxPool2d", dict(kernel_size=3, stride=2, padding=1), (1, 3, 7, 6)),
    ("MaxPool2d", dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 0)), (2, 1, 5, 5)),
    ("AvgPool2d", dict(kernel_size=2), (2, 2, 4, 5)),
    ("AvgPool2d", dict(kernel_size=3, stride=2, padding=1), (1, 3, 7, 6)),
    ("AvgPool2d", dict(kernel_size=(2, 3), stride=(3, 1), padding=(1, 1)), (2, 1, 5, 4)),
]
POOL_IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(POOLS)]


def naive_pool(name: str, m: Any, x: list) -> list:
    """docs/NUMERICS.md's text for pooling, one window at a time: the first value of the window
    then each later greater one (max), or the fold from 0.0 of its values over ``kH * kW`` (avg)."""
    (kh, kw), (sh, sw), (ph, pw) = m.kernel_size, m.stride, m.padding
    H, W = len(x[0][0]), len(x[0][0][0])
    oh, ow = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    out = []
    for xn in x:
        yn = []
        for plane in xn:
            rows = []
            for i in range(oh):
                row = []
                for j in range(ow):
                    vals = [plane[h][v] for h in range(i * sh - ph, i * sh - ph + kh)
                            for v in range(j * sw - pw, j * sw - pw + kw) if 0 <= h < H and 0 <= v < W]
                    if name == "MaxPool2d":
                        acc = vals[0]
                        for v in vals[1:]:
                            acc = v if v > acc else acc
                    else:
                        acc = 0.0
                        for v in vals:
                            acc = acc + v
                        acc = acc / (kh * kw)
                    row.append(acc)
                rows.append(row)
            yn.append(rows)
        out.append(yn)
    return out


@pytest.mark.parametrize("name,kwargs,shape", POOLS, ids=POOL_IDS)
def test_pool_gradcheck_and_fold(fw: ModuleType, name: str, kwargs: dict, shape: tuple) -> None:
    m = getattr(fw, name)(**kwargs)
    x = fw.randn(*shape, generator=fw.Generator(1))
    assert fw.gradcheck(m, x)
    assert th(m(x)) == th(pyfw.tensor(naive_pool(name, m, x.tolist())))


@pytest.mark.parametrize("name,kwargs,shape", POOLS, ids=POOL_IDS)
def test_pool_backends_agree_bit_for_bit(name: str, kwargs: dict, shape: tuple) -> None:
    seen = []
    for backend in ("py", "rs"):
        fw = load_backend(backend)
        m = getattr(fw, name)(**kwargs)
        x = fw.randn(*shape, generator=fw.Generator(2))
        x = fw.tensor([[[[round(v, 1) for v in r] for r in p] for p in xn] for xn in x.tolist()])  # ties
        y = m(x)
        dx = m.backward(fw.randn(*y.shape, generator=fw.Generator(3)))
        seen.append((th(y), th(dx)))
    assert seen[0] == seen[1]


def test_max_pool_gradient_goes_to_the_first_maximum(fw: ModuleType) -> None:
    m = fw.MaxPool2d(2, stride=1)
    x = fw.tensor([[[[1.0, 3.0, 3.0], [3.0, 0.0, 3.0]]]])
    assert m(x).tolist() == [[[[3.0, 3.0]]]]
    dx = m.backward(fw.tensor([[[[1.0, 10.0]]]]))
    assert dx.tolist() == [[[[0.0, 11.0, 0.0], [0.0, 0.0, 0.0]]]]


def test_avg_pool_counts_the_padding(fw: ModuleType) -> None:
    m = fw.AvgPool2d(2, padding=1)
    y = m(fw.ones(1, 1, 2, 2))
    assert y.tolist() == [[[[0.25, 0.25], [0.25, 0.25]]]]
    assert m(fw.ones(1, 1, 3, 3)).tolist() == [[[[0.25, 0.5], [0.5, 1.0]]]]


def test_pool_module_tree_copies_and_no_grad(fw: ModuleType) -> None:
    m = fw.MaxPool2d(2)
    x = fw.randn(1, 2, 4, 4, generator=fw.Generator(0))
    assert m.state_dict() == {} and m.param() == []
    assert repr(m) == "MaxPool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))"
    y = m(x)
    for c in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert th(c(x)) == th(y)
    with fw.no_grad():
        m(x)
    with pytest.raises(RuntimeError, match="no_grad"):
        m.backward(y)
    model = fw.Sequential(fw.Conv2d(2, 3, 3, padding=1, generator=fw.Generator(1)), fw.ReLU(), fw.AvgPool2d(2),
                          fw.Conv2d(3, 1, 2, generator=fw.Generator(2)), fw.MaxPool2d(1))
    assert fw.gradcheck(model, x)


@pytest.mark.parametrize("name,kwargs,error,match", [
    ("MaxPool2d", dict(kernel_size=2, padding=2), ValueError, "at most half"),
    ("AvgPool2d", dict(kernel_size=0), ValueError, "kernel_size"),
    ("AvgPool2d", dict(kernel_size=2, stride=(1, 2, 3)), ValueError, "stride"),
    ("MaxPool2d", dict(kernel_size="2"), TypeError, "kernel_size"),
])
def test_pool_bad_arguments(fw: ModuleType, name: str, kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        getattr(fw, name)(**kwargs)


@pytest.mark.parametrize("name", ["MaxPool2d", "AvgPool2d"])
def test_pool_bad_input(fw: ModuleType, name: str) -> None:
    m = getattr(fw, name)(3)
    with pytest.raises(ValueError, match=rf"{name}\(kernel_size=\(3, 3\)\).*4-D input.*\(2, 5, 5\)"):
        m(fw.zeros(2, 5, 5))
    with pytest.raises(ValueError, match=rf"{name}.*smaller than the kernel.*\(1, 1, 2, 5\)"):
        m(fw.zeros(1, 1, 2, 5))
    m(fw.zeros(1, 1, 3, 3))
    with pytest.raises(ValueError, match=r"gradient has shape \(1, 1, 2, 1\)"):
        m.backward(fw.zeros(1, 1, 2, 1))


@pytest.mark.parametrize("name,kwargs,shape", POOLS, ids=POOL_IDS)
def test_pool_matches_torch(fw: ModuleType, name: str, kwargs: dict, shape: tuple) -> None:
    torch = pytest.importorskip("torch")
    m = getattr(fw, name)(**kwargs)
    x = fw.randn(*shape, generator=fw.Generator(1))
    ref = getattr(torch.nn, name)(**kwargs)
    tx = torch.tensor(x.tolist(), dtype=torch.float64, requires_grad=True)
    ty = ref(tx)
    y = m(x)
    g = fw.randn(*y.shape, generator=fw.Generator(4))
    ty.backward(torch.tensor(g.tolist(), dtype=torch.float64))
    dx = m.backward(g)
    assert torch.allclose(torch.tensor(y.tolist(), dtype=torch.float64), ty.detach(), atol=1e-12)
    assert torch.allclose(torch.tensor(dx.tolist(), dtype=torch.float64), tx.grad, atol=1e-12)


# ---- ConvTranspose2d and Upsample: (member, constructor arguments, input shape)
UPS = [
    ("ConvTranspose2d", dict(in_channels=2, out_channels=3, kernel_size=3), (2, 2, 3, 4)),
    ("ConvTranspose2d", dict(in_channels=1, out_channels=2, kernel_size=(3, 2), stride=(2, 3), padding=1,
                             output_padding=(1, 2)), (2, 1, 4, 3)),
    ("ConvTranspose2d", dict(in_channels=3, out_channels=1, kernel_size=2, stride=2, bias=False), (1, 3, 3, 2)),
    ("ConvTranspose2d", dict(in_channels=2, out_channels=2, kernel_size=4, stride=3, padding=2,
                             output_padding=1), (1, 2, 2, 3)),
    ("Upsample", dict(scale_factor=2), (2, 2, 3, 4)),
    ("Upsample", dict(scale_factor=(1, 3)), (1, 3, 2, 2)),
]
UP_IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(UPS)]


def make(fw: ModuleType, name: str, kwargs: dict, seed: int = 0) -> Any:
    if name == "Upsample":
        return fw.Upsample(**kwargs)
    return getattr(fw, name)(**kwargs, generator=fw.Generator(seed))


def naive_transpose(m: Any, x: list) -> list:
    """docs/NUMERICS.md's text for ConvTranspose2d, one output at a time: ``y[n][o][h][v]`` a fold
    over ``(c, ki, kj)`` in row-major order of ``x[n][c][i][j] * w[c][o][ki][kj]`` for the ``(i, j)``
    with ``i sH + ki - pH = h`` and ``j sW + kj - pW = v``, starting at ``b[o]``."""
    w = m.weight.tolist()
    b = m.bias.tolist() if m.bias is not None else None
    (kh, kw), (sh, sw), (ph, pw), (oph, opw) = m.kernel_size, m.stride, m.padding, m.output_padding
    H, W = len(x[0][0]), len(x[0][0][0])
    OH, OW = (H - 1) * sh - 2 * ph + kh + oph, (W - 1) * sw - 2 * pw + kw + opw
    out = []
    for xn in x:
        yn = []
        for o in range(len(w[0])):
            plane = []
            for h in range(OH):
                row = []
                for v in range(OW):
                    acc = b[o] if b is not None else 0.0
                    for c in range(len(xn)):
                        for ki in range(kh):
                            for kj in range(kw):
                                i, ri = divmod(h + ph - ki, sh)
                                j, rj = divmod(v + pw - kj, sw)
                                if ri == 0 and rj == 0 and 0 <= i < H and 0 <= j < W:
                                    acc = acc + xn[c][i][j] * w[c][o][ki][kj]
                    row.append(acc)
                plane.append(row)
            yn.append(plane)
        out.append(yn)
    return out


def naive_upsample(m: Any, x: list) -> list:
    sh, sw = m.scale_factor
    return [[[[row[v // sw] for v in range(len(row) * sw)] for row in plane for _ in range(sh)] for plane in xn]
            for xn in x]


@pytest.mark.parametrize("name,kwargs,shape", UPS, ids=UP_IDS)
def test_up_gradcheck_and_fold(fw: ModuleType, name: str, kwargs: dict, shape: tuple) -> None:
    m = make(fw, name, kwargs)
    x = fw.randn(*shape, generator=fw.Generator(1))
    assert fw.gradcheck(m, x)
    want = naive_upsample(m, x.tolist()) if name == "Upsample" else naive_transpose(m, x.tolist())
    assert th(m(x)) == th(pyfw.tensor(want))


@pytest.mark.parametrize("name,kwargs,shape", UPS, ids=UP_IDS)
def test_up_backends_agree_bit_for_bit(name: str, kwargs: dict, shape: tuple) -> None:
    seen = []
    for backend in ("py", "rs"):
        fw = load_backend(backend)
        m = make(fw, name, kwargs, seed=3)
        x = fw.randn(*shape, generator=fw.Generator(2))
        y = m(x)
        g = fw.randn(*y.shape, generator=fw.Generator(9))
        dx = m.backward(g)
        m(x)
        m.backward(g)
        seen.append((th(y), th(dx), state_hex(m), {n: th(p.grad) for n, p in m.named_parameters()}))
    assert seen[0] == seen[1]


def test_transpose_init_uses_out_channels_for_fan_in(fw: ModuleType) -> None:
    m = fw.ConvTranspose2d(2, 3, (2, 3), generator=fw.Generator(5))
    g = fw.Generator(5)
    k = 1.0 / math.sqrt(3 * 2 * 3)
    want_w = [-k + (k - -k) * g.random() for _ in range(2 * 3 * 2 * 3)]
    want_b = [-k + (k - -k) * g.random() for _ in range(3)]
    assert m.weight.shape == (2, 3, 2, 3)
    assert th(m.weight.flatten()) == [v.hex() for v in want_w] and th(m.bias) == [v.hex() for v in want_b]
    assert list(m.state_dict()) == ["weight", "bias"]
    assert repr(m) == "ConvTranspose2d(2, 3, kernel_size=(2, 3), stride=(1, 1))"


def test_denoiser_shape_trains_in_both_backends_with_the_same_bits() -> None:
    seen = []
    for backend in ("py", "rs"):
        fw = load_backend(backend)
        g = fw.Generator(0)
        model = fw.Sequential(fw.Conv2d(1, 2, 3, stride=2, padding=1, generator=g), fw.ReLU(),
                              fw.Upsample(scale_factor=2), fw.Conv2d(2, 2, 3, padding=1, generator=g), fw.ReLU(),
                              fw.ConvTranspose2d(2, 1, 3, padding=1, generator=g), fw.Sigmoid())
        x = fw.rand(4, 1, 6, 6, generator=fw.Generator(1))
        t = fw.rand(4, 1, 6, 6, generator=fw.Generator(2))
        opt = fw.optim.SGD(model.parameters(), lr=0.5)
        losses = fw.fit(model, fw.MSELoss(), opt, x, t, epochs=3, batch_size=2, generator=fw.Generator(3))
        for c in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
            assert th(c(x)) == th(model(x))
        seen.append(([v.hex() for v in losses], state_hex(model)))
    assert seen[0] == seen[1]


@pytest.mark.parametrize("kwargs,match", [
    (dict(dilation=2), "dilation"),
    (dict(groups=2), "groups"),
    (dict(padding_mode="circular"), "padding_mode"),
    (dict(output_padding=1), "output_padding"),
    (dict(stride=2, output_padding=(0, 2)), "output_padding"),
])
def test_transpose_bad_arguments(fw: ModuleType, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fw.ConvTranspose2d(2, 3, 3, **kwargs)


def test_transpose_bad_input(fw: ModuleType) -> None:
    m = fw.ConvTranspose2d(2, 3, 3, padding=2)
    with pytest.raises(ValueError, match=r"ConvTranspose2d\(2 -> 3.*4-D input.*\(2, 5\)"):
        m(fw.zeros(2, 5))
    with pytest.raises(ValueError, match=r"ConvTranspose2d\(2 -> 3.*2 input channels, got 1"):
        m(fw.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"ConvTranspose2d\(2 -> 3.*too small.*\(1, 2, 1, 4\)"):
        m(fw.zeros(1, 2, 1, 4))


@pytest.mark.parametrize("kwargs,match", [
    (dict(size=4), "size"),
    (dict(scale_factor=2, mode="bilinear"), "mode"),
    (dict(), "scale_factor"),
    (dict(scale_factor=1.5), "scale_factor"),
    (dict(scale_factor=0), "scale_factor"),
])
def test_upsample_bad_arguments(fw: ModuleType, kwargs: dict, match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        fw.Upsample(**kwargs)


def test_upsample_bad_input_and_no_grad(fw: ModuleType) -> None:
    m = fw.Upsample(scale_factor=2.0)
    assert m.scale_factor == (2, 2)
    with pytest.raises(ValueError, match=r"Upsample.*4-D input.*\(2, 3\)"):
        m(fw.zeros(2, 3))
    x = fw.ones(1, 1, 2, 2)
    y = m(x)
    with fw.no_grad():
        assert th(m(x)) == th(y)
    with pytest.raises(RuntimeError, match="no_grad"):
        m.backward(y)


@pytest.mark.parametrize("name,kwargs,shape", UPS, ids=UP_IDS)
def test_up_matches_torch(fw: ModuleType, name: str, kwargs: dict, shape: tuple) -> None:
    torch = pytest.importorskip("torch")
    m = make(fw, name, kwargs)
    x = fw.randn(*shape, generator=fw.Generator(1))
    ref = getattr(torch.nn, name)(**kwargs).double()
    if name != "Upsample":
        ref.load_state_dict({k: torch.tensor(v.tolist(), dtype=torch.float64) for k, v in m.state_dict().items()})
    tx = torch.tensor(x.tolist(), dtype=torch.float64, requires_grad=True)
    ty = ref(tx)
    y = m(x)
    g = fw.randn(*y.shape, generator=fw.Generator(4))
    ty.backward(torch.tensor(g.tolist(), dtype=torch.float64))
    dx = m.backward(g)
    close = lambda a, b: torch.allclose(torch.tensor(a.tolist(), dtype=torch.float64), b, atol=1e-12)  # noqa: E731
    assert close(y, ty.detach()) and close(dx, tx.grad)
    if name != "Upsample":
        assert close(m.weight.grad, ref.weight.grad)


@pytest.mark.parametrize("name,args", [("Conv2d", (1, 1, 1)), ("Conv1d", (1, 1, 1)), ("ConvTranspose2d", (1, 1, 1)),
                                       ("MaxPool2d", (1,)), ("AvgPool2d", (1,)), ("Upsample", ())])
def test_backward_in_another_thread_is_refused(fw: ModuleType, name: str, args: tuple) -> None:
    import threading
    m = fw.Upsample(scale_factor=1) if name == "Upsample" else getattr(fw, name)(*args)
    x = fw.ones(1, 1, 2) if name == "Conv1d" else fw.ones(1, 1, 2, 2)
    y = m(x)
    errors: list = []

    def run() -> None:
        try:
            m.backward(y)
        except RuntimeError as e:
            errors.append(str(e))

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert len(errors) == 1 and "another thread" in errors[0]
    m.backward(y)  # the forward's own thread may


@pytest.mark.parametrize("make, shape", [
    (lambda fw: fw.Upsample(scale_factor=100000), (1, 1, 10, 10)),
    (lambda fw: fw.Conv2d(1, 1, 3, padding=10**6), (1, 1, 4, 4)),
    (lambda fw: fw.ConvTranspose2d(1, 1, 3, stride=10**6), (1, 1, 4, 4)),
], ids=["upsample", "conv-padding", "transpose-stride"])
def test_an_output_too_large_for_memory_is_a_memory_error_at_once(fw: ModuleType, make: Any, shape: tuple) -> None:
    """Outputs grow with the scale, the padding and the stride: an impossible one is refused
    before anything is built (pyfw_rs aborted the process; pyfw filled the memory)."""
    with pytest.raises(MemoryError, match="cannot allocate"):
        make(fw)(fw.ones(*shape))


# Shapes that take every kernel path of pyfw_rs (few and many channels on either side, rows with
# lane tails, stride, dilation), with infinities, NaN and zeros of both signs in the weights, the
# bias and the input: the terms in the padding are left out, never added as ``0.0 * w``.
WIDE = [
    ("Conv2d", dict(in_channels=9, out_channels=6, kernel_size=3, padding=1), (2, 9, 5, 19)),
    ("Conv2d", dict(in_channels=3, out_channels=2, kernel_size=3, stride=2, padding=1, dilation=2), (1, 3, 9, 21)),
    ("Conv2d", dict(in_channels=10, out_channels=3, kernel_size=(1, 3), stride=(1, 2), padding=(0, 2)), (1, 10, 2, 23)),
    ("ConvTranspose2d", dict(in_channels=6, out_channels=9, kernel_size=3, stride=2, padding=1, output_padding=1),
     (1, 6, 4, 9)),
    ("ConvTranspose2d", dict(in_channels=2, out_channels=3, kernel_size=3, padding=1), (2, 2, 5, 17)),
]
WIDE_IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(WIDE)]


def poisoned(fw: ModuleType, values: Any, every: int) -> Any:
    """``values`` with the first element inf, the last -inf, the middle NaN and every ``every``-th
    -0.0 (tensors take finite numbers only: the others come from overflowing products)."""
    flat = [float(v) for v in values.flatten().tolist()]
    n = len(flat)
    for k in range(0, n, every):
        flat[k] = -0.0
    big = [0.0] * n
    big[0], big[-1] = 1e308, -1e308
    huge = fw.tensor(big) * fw.tensor([1e308] * n)  # inf, -inf and zeros
    mid = [0.0] * n
    mid[n // 2] = 1e308
    inf_mid = fw.tensor(mid) * fw.tensor(mid)
    for k in (0, n - 1, n // 2):
        flat[k] = 0.0
    out = fw.tensor(flat) + huge + (inf_mid - inf_mid)  # NaN in the middle
    return out.reshape(*values.shape)


def poison_(fw: ModuleType, p: Any, every: int) -> None:
    """Make parameter ``p`` as :func:`poisoned` makes a tensor, through two SGD steps (in-place
    updates take finite numbers only; a step that overflows makes infinities, then NaN)."""
    shape, n = p.shape, len(p.flatten().tolist())
    flat = [float(v) for v in p.flatten().tolist()]
    for k in range(0, n, every):
        flat[k] = -0.0
    flat[0], flat[-1], flat[n // 2] = 1e308, -1e308, 1e308
    p.copy_(fw.tensor(flat).reshape(*shape))
    opt = fw.SGD([p], lr=10.0)
    for step in ({0: -1e308, n - 1: 1e308, n // 2: -1e308}, {n // 2: 1e308}):  # to +-inf, then inf - inf
        g = [0.0] * n
        for k, v in step.items():
            g[k] = v
        p.grad.copy_(fw.tensor(g).reshape(*shape))
        opt.step()


@pytest.mark.parametrize("name,kwargs,shape", WIDE, ids=WIDE_IDS)
@pytest.mark.parametrize("poison", [False, True], ids=["finite", "inf-nan"])
def test_backends_agree_bit_for_bit_on_every_kernel_path(name: str, kwargs: dict, shape: tuple,
                                                         poison: bool) -> None:
    seen = []
    for backend in ("py", "rs"):
        fw = load_backend(backend)
        m, x = build(fw, name, kwargs, shape, seed=5)
        if poison:
            poison_(fw, m.weight, 7)
            poison_(fw, m.bias, 2)
            m.zero_grad()
            x = poisoned(fw, x, 5)
        y = m(x)
        g = fw.randn(*y.shape, generator=fw.Generator(9))
        dx = m.backward(g)
        seen.append((th(y), th(dx), {n: th(p.grad) for n, p in m.named_parameters()}))
    assert seen[0] == seen[1]
