"""The denoiser's data and metric: ``fw.data.denoise_pairs`` and ``fw.metrics.psnr``."""

from __future__ import annotations

import math
from types import ModuleType

import pytest

from conftest import load_backend
from fwtest import th
from pyfw import metrics


def _flat(t: object) -> list:
    out: list = []
    stack = [t.tolist()]  # type: ignore[attr-defined]
    while stack:
        v = stack.pop()
        if isinstance(v, list):
            stack.extend(reversed(v))
        else:
            out.append(v)
    return out


def test_denoise_pairs_shapes_and_range(fw: ModuleType) -> None:
    a, b, clean = fw.data.denoise_pairs(3, size=8, channels=2, noise=0.2, generator=fw.Generator(4))
    for t in (a, b, clean):
        assert isinstance(t, fw.Tensor) and tuple(t.shape) == (3, 2, 8, 8)
        assert all(0.0 <= v <= 1.0 for v in _flat(t))
    assert th(a) != th(b) and th(a) != th(clean)  # two independent noises
    assert len(set(_flat(clean))) > 10  # not a flat picture


def test_denoise_pairs_bit_identical_in_both_backends() -> None:
    py, rs = load_backend("py"), load_backend("rs")
    got_py = py.data.denoise_pairs(4, size=12, channels=3, noise=0.1, generator=py.Generator(7))
    got_rs = rs.data.denoise_pairs(4, size=12, channels=3, noise=0.1, generator=rs.Generator(7))
    assert [th(t) for t in got_py] == [th(t) for t in got_rs]


def test_denoise_pairs_draw_order(fw: ModuleType) -> None:
    """The clean images first (as clean_images draws them), then randn for a, then randn for b."""
    n, size, channels, noise = 2, 6, 3, 0.3
    a, b, clean = fw.data.denoise_pairs(n, size, channels, noise, generator=fw.Generator(11))
    g = fw.Generator(11)
    from pyfw.data import clean_images
    flat = clean_images(n, size, channels, g)
    assert [v.hex() for v in _flat(clean)] == [v.hex() for v in flat]
    shape = (n, channels, size, size)
    za = _flat(fw.randn(*shape, generator=g))
    zb = _flat(fw.randn(*shape, generator=g))
    for noisy, z in ((a, za), (b, zb)):
        want = [min(max(c + zz * noise, 0.0), 1.0) for c, zz in zip(flat, z)]
        assert [v.hex() for v in _flat(noisy)] == [v.hex() for v in want]
    # The same generator, continued, is where denoise_pairs left it.
    g2 = fw.Generator(11)
    fw.data.denoise_pairs(n, size, channels, noise, generator=g2)
    assert g2.get_state() == g.get_state()


def _block_average_psnr(flat: list, size: int) -> float:
    """The PSNR of images (a flat list of planes of ``size`` x ``size``) against themselves averaged
    over 2 x 2 blocks: how much of their content a network that halves the resolution can keep."""
    acc = 0.0
    plane = size * size
    for start in range(0, len(flat), plane):
        p = flat[start:start + plane]
        for h in range(size):
            for w in range(size):
                k = (h - h % 2) * size + w - w % 2
                e = (p[k] + p[k + 1] + p[k + size] + p[k + size + 1]) / 4.0 - p[h * size + w]
                acc = acc + e * e
    return 10.0 * math.log10(len(flat) / acc)


def test_clean_images_are_resolvable_but_not_flat() -> None:
    """Anti-aliased edges and stripes 4 to 8 pixels apart: averaged over 2 x 2 blocks, 40 clean
    images of 32 x 32 are 26.47 dB from themselves (measured; with hard edges and stripes down to a
    period of 1.6 pixels they were 24.81 dB). Shapes with edges remain: far from a flat picture."""
    from pyfw import Generator
    from pyfw.data import clean_images
    flat = clean_images(40, 32, 3, Generator(5))
    bound = _block_average_psnr(flat, 32)
    assert 26.0 < bound < 32.0, bound
    assert len(set(clean_images(1, 32, 1, Generator(5)))) > 200  # shading and edges: many distinct values in one image


def test_denoise_pairs_default_generator(fw: ModuleType) -> None:
    fw.manual_seed(3)
    first = fw.data.denoise_pairs(1, size=4)
    fw.manual_seed(3)
    again = fw.data.denoise_pairs(1, size=4, generator=None)
    assert [th(t) for t in first] == [th(t) for t in again]


@pytest.mark.parametrize("kwargs,exc", [
    ({"n": 0}, ValueError), ({"size": -1}, ValueError), ({"channels": 1.5}, TypeError),
    ({"noise": -0.1}, ValueError), ({"noise": math.inf}, ValueError), ({"noise": "0.1"}, TypeError),
])
def test_denoise_pairs_bad_arguments(fw: ModuleType, kwargs: dict, exc: type) -> None:
    args = {"n": 1, "size": 4, "channels": 1, "noise": 0.1, **kwargs}
    with pytest.raises(exc, match="denoise_pairs"):
        fw.data.denoise_pairs(**args, generator=fw.Generator(0))


def test_psnr_by_hand(fw: ModuleType) -> None:
    out = fw.tensor([[[[0.5, 0.25]], [[1.0, 0.0]]]])
    tgt = fw.tensor([[[[0.5, 0.5]], [[0.75, 0.125]]]])
    acc = 0.0
    for e in (0.0, -0.25, 0.25, -0.125):
        acc = acc + e * e
    mse = acc / 4.0
    assert mse == 0.03515625
    want = 10.0 * math.log10(1.0 / mse)
    assert metrics.psnr(out, tgt).hex() == want.hex()
    assert fw.metrics.psnr(out, tgt, data_range=255.0).hex() == (10.0 * math.log10(65025.0 / mse)).hex()
    assert fw.metrics.psnr(out, tgt, max_val=2.0).hex() == (10.0 * math.log10(4.0 / mse)).hex()
    assert metrics.psnr(out.tolist(), tgt).hex() == want.hex()


def test_psnr_mse_is_mse_loss(fw: ModuleType) -> None:
    a, b, clean = fw.data.denoise_pairs(2, size=8, noise=0.1, generator=fw.Generator(2))
    mse = fw.MSELoss()(a, clean)
    assert fw.metrics.psnr(a, clean).hex() == (10.0 * math.log10(1.0 / mse)).hex()
    assert 15.0 < fw.metrics.psnr(a, clean) < 25.0  # noise 0.1 gives about 20 dB


def test_psnr_edges(fw: ModuleType) -> None:
    t = fw.tensor([0.1, 0.2])
    assert metrics.psnr(t, t) == math.inf
    with pytest.raises(ValueError, match="psnr.*shape"):
        metrics.psnr(t, fw.tensor([[0.1, 0.2]]))
    with pytest.raises(ValueError, match="data_range"):
        metrics.psnr(t, t, data_range=0.0)
    with pytest.raises(TypeError, match="data_range"):
        metrics.psnr(t, t, data_range="1")
