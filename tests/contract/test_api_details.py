"""API details that follow PyTorch: children/named_children, load_state_dict's result and
``strict``, settable ``SGD.lr``, and modules that skip ``super().__init__()``."""

from __future__ import annotations

from types import ModuleType

import pytest

from fwtest import seed_model


def test_children_and_named_children(fw: ModuleType) -> None:
    inner = fw.Sequential(fw.Linear(2, 3), fw.ReLU())
    m = fw.Sequential(inner, fw.Tanh())
    names = [n for n, _ in m.named_children()]
    kids = m.children()
    assert names == ["0", "1"]
    assert kids[0] is inner and isinstance(kids[1], fw.Tanh)
    assert fw.Linear(2, 2).children() == [] and fw.Linear(2, 2).named_children() == []
    for c in m.children():
        c.eval()
    assert inner[0].training is False


def test_load_state_dict_reports_skipped_keys(fw: ModuleType) -> None:
    m = seed_model(fw)
    sd = m.state_dict()
    res = m.load_state_dict(sd)
    assert res.missing_keys == [] and res.unexpected_keys == []
    del sd["6.bias"]
    sd["extra"] = [1.0]
    res = m.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["6.bias"] and res.unexpected_keys == ["extra"]
    missing, unexpected = res
    assert (missing, unexpected) == (["6.bias"], ["extra"])


@pytest.mark.parametrize("strict", [0, None, "", []])
def test_strict_follows_truthiness(fw: ModuleType, strict: object) -> None:
    m = seed_model(fw)
    sd = m.state_dict()
    sd["extra"] = [1.0]
    assert m.load_state_dict(sd, strict=strict).unexpected_keys == ["extra"]
    with pytest.raises(ValueError):
        m.load_state_dict(sd, strict=1)


def test_sgd_lr_is_checked_when_set(fw: ModuleType) -> None:
    opt = fw.SGD(fw.Linear(2, 2).param(), lr=0.1)
    opt.lr = 1
    assert opt.lr == 1.0 and isinstance(opt.lr, float)
    for bad, exc in ((-1.0, ValueError), (float("nan"), ValueError), (float("inf"), ValueError),
                     ("0.1", TypeError), (True, TypeError)):
        with pytest.raises(exc):
            opt.lr = bad
    assert opt.lr == 1.0


def test_module_without_super_init_is_in_training_mode(fw: ModuleType) -> None:
    class Bare(fw.Module):
        def __init__(self) -> None:
            pass

    assert Bare().training is True


def test_huge_sizes_are_memory_errors(fw: ModuleType) -> None:
    with pytest.raises(MemoryError):
        fw.Linear(2**70, 2)
    with pytest.raises(MemoryError):
        fw.randperm(2**64 - 1)


def test_uniform_converts_bounds_to_float(fw: ModuleType) -> None:
    g = fw.Generator(3)
    a = g.uniform(2**53 + 1, 2**53 + 3)
    h = fw.Generator(3)
    assert a.hex() == h.uniform(float(2**53 + 1), float(2**53 + 3)).hex()
    with pytest.raises(TypeError):
        g.uniform("0", 1)
