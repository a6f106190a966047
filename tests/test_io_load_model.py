"""Each backend's io builds models of its own backend, and load_model(path, model=m) loads a
file into a given module (a class of your own included), checking names and shapes first."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from conftest import BACKENDS, load_backend
from fwtest import sd_hex, seed_model, th

import pyfw


def test_each_backends_io_builds_its_own_models(fw: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    fw.io.save_model(seed_model(fw, 1), path)
    loaded = fw.io.load_model(path)
    assert isinstance(loaded, fw.Sequential) and not loaded.training
    assert all(isinstance(t, fw.Tensor) for t in loaded.state_dict().values())
    assert all(isinstance(t, fw.Tensor) for t in fw.io.load_safetensors(path).values())
    meta = fw.io.load_safetensors_metadata(path)
    assert isinstance(fw.io.build_model(meta, fw.io.load_safetensors(path)), fw.Sequential)
    assert type(pyfw.io.load_model(path)) is pyfw.Sequential, "pyfw.io keeps building pyfw models"


@pytest.mark.parametrize("other", BACKENDS)
def test_fw_argument_still_chooses_the_backend(fw: ModuleType, other: str, tmp_path: Path) -> None:
    ofw = load_backend(other)
    path = tmp_path / "m.safetensors"
    model = seed_model(fw, 2)
    fw.io.save_model(model, path)
    loaded = fw.io.load_model(path, fw=ofw)
    assert type(loaded) is ofw.Sequential
    assert sd_hex(loaded.state_dict()) == sd_hex(model.state_dict())
    assert type(fw.io.load_model(path, ofw)) is ofw.Sequential


def test_pyfw_rs_io_is_pyfw_io_written_once() -> None:
    rs = load_backend("rs")
    assert rs.io is not pyfw.io
    for name in ("save_model", "save_safetensors", "write_atomic", "save_checkpoint", "load_checkpoint",
                 "Preprocess", "load_preprocess", "save", "load", "MODEL_FORMAT"):
        assert getattr(rs.io, name) is getattr(pyfw.io, name)
    assert "load_model" in dir(rs.io) and "write_atomic" in dir(rs.io)
    with pytest.raises(AttributeError, match="pyfw_rs.io"):
        rs.io.no_such_name  # noqa: B018


class Scaled(pyfw.Module):
    """A module of your own: one Linear and a fixed factor."""

    def __init__(self, fw: ModuleType) -> None:
        super().__init__()
        self.lin = fw.Linear(2, 3, generator=fw.Generator(5))
        self.factor = 2.0

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.lin(x) * self.factor

    def param(self) -> list:
        return self.lin.param()

    def state_dict(self) -> dict:
        return {"lin." + k: v for k, v in self.lin.state_dict().items()}

    def load_state_dict(self, sd: dict) -> None:
        self.lin.load_state_dict({k[len("lin."):] if k.startswith("lin.") else k: v for k, v in sd.items()})


def test_model_argument_loads_into_a_given_module(fw: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    trained = seed_model(fw, 3)
    fw.io.save_model(trained, path)
    target = seed_model(fw, 4)
    target.train()
    got = fw.io.load_model(path, model=target)
    assert got is target and not target.training
    assert sd_hex(target.state_dict()) == sd_hex(trained.state_dict())
    x = fw.tensor([[0.1, 0.2], [0.7, -0.3]])
    assert th(target(x)) == th(trained(x))


def test_model_argument_works_with_a_plain_state_dict_file(tmp_path: Path) -> None:
    path = tmp_path / "sd.safetensors"
    src = pyfw.Linear(2, 3, generator=pyfw.Generator(9))
    pyfw.io.save_safetensors({"lin." + k: v for k, v in src.state_dict().items()}, path)  # no architecture
    custom = Scaled(pyfw)
    assert pyfw.io.load_model(path, model=custom) is custom
    assert sd_hex(custom.lin.state_dict()) == sd_hex(src.state_dict())


def test_model_argument_checks_names_and_shapes_and_changes_nothing(fw: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    fw.io.save_model(fw.Sequential(fw.Linear(2, 4, generator=fw.Generator(0))), path)
    for target in (fw.Sequential(fw.Linear(2, 3, generator=fw.Generator(1))),
                   fw.Sequential(fw.Linear(2, 4, generator=fw.Generator(1)), fw.ReLU(),
                                 fw.Linear(4, 1, generator=fw.Generator(1)))):
        before = sd_hex(target.state_dict())
        with pytest.raises(ValueError, match=f"load_model: {path} does not fit the given Sequential"):
            fw.io.load_model(path, model=target)
        assert sd_hex(target.state_dict()) == before
    with pytest.raises(TypeError, match="model must be a module"):
        fw.io.load_model(path, model="not a module")


def test_model_argument_names_only_what_differs(fw: ModuleType, tmp_path: Path) -> None:
    """A module of other layers: the message lists the missing or the unexpected keys (never an
    empty list), and the shapes that differ for the keys both have, the file's first."""
    path = tmp_path / "m.safetensors"
    g = fw.Generator(0)
    fw.io.save_model(fw.Sequential(fw.Linear(2, 4, generator=g), fw.ReLU(), fw.Linear(4, 2, generator=g)), path)
    longer = fw.Sequential(fw.Linear(3, 4, generator=g), fw.ReLU(), fw.Linear(4, 2, generator=g), fw.ReLU(),
                           fw.Linear(2, 1, generator=g))
    with pytest.raises(ValueError) as e:
        fw.io.load_model(path, model=longer)
    message = str(e.value)
    assert message.endswith("Sequential.load_state_dict: missing keys ['4.weight', '4.bias']; "
                            "shapes that differ: '0.weight' (4, 2) given, (4, 3) in the module"), message
    with pytest.raises(ValueError) as e:
        fw.io.load_model(path, model=fw.Sequential(fw.Linear(2, 4, generator=g)))
    message = str(e.value)
    assert "unexpected keys ['2.weight', '2.bias']" in message or "unexpected keys ['2.bias', '2.weight']" in message
    assert "missing" not in message and "[]" not in message and "shapes" not in message, message


@pytest.mark.parametrize("other", BACKENDS)
def test_model_argument_and_fw_must_agree(fw: ModuleType, other: str, tmp_path: Path) -> None:
    ofw = load_backend(other)
    path = tmp_path / "m.safetensors"
    fw.io.save_model(seed_model(fw, 0), path)
    target = seed_model(ofw, 1)
    assert fw.io.load_model(path, model=target) is target, "the model's backend, whatever the io"
    if ofw is not fw:
        with pytest.raises(TypeError, match="fw is"):
            fw.io.load_model(path, fw=fw, model=target)
