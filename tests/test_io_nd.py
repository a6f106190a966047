"""pyfw.io with tensors of any rank: safetensors, JSON state dicts, model files of convolutional
networks and checkpoints, in both backends, bit for bit."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from conftest import load_backend
from fwtest import hexes, sd_hex, state_hex, th
from pyfw import io

SHAPES = [(3,), (2, 3), (2, 1, 3), (2, 3, 1, 2)]


def _values(shape: tuple, start: float = 0.1) -> list:
    """A nested list of ``shape`` with distinct awkward values."""
    count = 1
    for d in shape:
        count *= d
    flat = [(i + start) / 3.0 * (-1) ** i for i in range(count)]
    for size in reversed(shape[1:]):
        flat = [flat[i:i + size] for i in range(0, len(flat), size)]
    return flat


def _conv_net(fw: ModuleType, seed: int = 3) -> Any:
    """A small network with every member of the convolution family that has a place in a file."""
    g = fw.Generator(seed)
    return fw.Sequential(
        fw.Conv2d(3, 4, 3, stride=2, padding=1, generator=g), fw.ReLU(), fw.MaxPool2d(2),
        fw.Upsample(scale_factor=2), fw.ConvTranspose2d(4, 2, (3, 2), stride=2, output_padding=1, generator=g),
        fw.AvgPool2d(2), fw.Conv2d(2, 3, (1, 2), dilation=(1, 2), bias=False, generator=g), fw.Sigmoid())


@pytest.mark.parametrize("shape", SHAPES)
def test_safetensors_round_trip_any_rank(fw: ModuleType, shape: tuple, tmp_path: Path) -> None:
    """A tensor of rank 1 to 4 is written as F64 with its shape as given and read back bit for bit."""
    t = fw.tensor(_values(shape))
    path = tmp_path / "t.safetensors"
    io.save_safetensors({"t": t}, path)
    n = struct.unpack("<Q", path.read_bytes()[:8])[0]
    header = json.loads(path.read_bytes()[8:8 + n])
    assert header["t"]["shape"] == list(shape) and header["t"]["dtype"] == "F64"
    for back in ("py", "rs"):
        got = io.load_safetensors(path, fw=load_backend(back))["t"]
        assert tuple(got.shape) == shape and th(got) == th(t)


def test_safetensors_layout_of_a_4d_tensor(tmp_path: Path) -> None:
    """An N-d tensor is plain in safetensors: its shape as a list, its values row-major."""
    path = tmp_path / "t.safetensors"
    io.save_safetensors({"w": [[[[1.0, 2.0]], [[3.0, 4.0]]]]}, path)
    header = b'{"w":{"dtype":"F64","shape":[1,2,1,2],"data_offsets":[0,32]}}'
    header += b" " * (-len(header) % 8)
    assert path.read_bytes() == struct.pack("<Q", len(header)) + header + struct.pack("<4d", 1.0, 2.0, 3.0, 4.0)


def test_a_4d_weight_of_either_backend_is_written(fw: ModuleType, tmp_path: Path) -> None:
    """A conv weight (4-D) is written, never refused as a ragged or deeply nested list."""
    conv = fw.Conv2d(2, 3, 3, generator=fw.Generator(0))
    path = tmp_path / "c.safetensors"
    io.save_safetensors(conv.state_dict(), path)
    io.save(conv.state_dict(), tmp_path / "c.json")
    assert sd_hex(io.load_safetensors(path, fw=fw)) == state_hex(conv)
    assert sd_hex(io.load(tmp_path / "c.json")) == state_hex(conv)


def test_f32_of_rank_3_is_widened(fw: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "f.safetensors"
    vals = [0.1, -2.5, 3.0, 1e-3]
    header = json.dumps({"x": {"dtype": "F32", "shape": [2, 1, 2], "data_offsets": [0, 16]}},
                        separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)
    path.write_bytes(struct.pack("<Q", len(header)) + header + struct.pack("<4f", *vals))
    got = io.load_safetensors(path, fw=fw)["x"]
    widened = list(struct.unpack("<4f", struct.pack("<4f", *vals)))
    assert th(got) == hexes([[widened[:2]], [widened[2:]]])


@pytest.mark.parametrize("shape,what", [([], "at least one dimension"), ([1] * 17, "at most 16")])
def test_a_rank_pyfw_cannot_hold_is_refused_naming_the_file(shape: list, what: str, tmp_path: Path) -> None:
    path = tmp_path / "r.safetensors"
    header = json.dumps({"x": {"dtype": "F64", "shape": shape, "data_offsets": [0, 8]}},
                        separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)
    path.write_bytes(struct.pack("<Q", len(header)) + header + struct.pack("<d", 1.0))
    with pytest.raises(ValueError, match=what) as e:
        io.load_safetensors(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("shape", SHAPES)
def test_json_state_dict_any_rank(fw: ModuleType, shape: tuple, tmp_path: Path) -> None:
    t = fw.tensor(_values(shape))
    path = tmp_path / "t.json"
    io.save({"t": t}, path)
    doc = json.loads(path.read_text())
    assert doc["tensors"]["t"]["shape"] == list(shape)
    got = io.load(path)["t"]
    assert hexes(got) == th(t)
    assert th(fw.tensor(got)) == th(t)


def test_conv_model_round_trips_in_both_backends(fw: ModuleType, tmp_path: Path) -> None:
    """A Sequential of the convolution family is rebuilt from its file alone, in either backend,
    with the same weights and bit-identical outputs; the file is model format version 2."""
    model = _conv_net(fw)
    x = fw.randn(2, 3, 8, 8, generator=fw.Generator(5))
    model.eval()
    want = th(model(x))
    path = tmp_path / "m.safetensors"
    io.save_model(model, path)
    meta = io.load_safetensors_metadata(path)
    assert meta["pyfw.format_version"] == "2"
    arch = json.loads(meta["pyfw.architecture"])
    assert arch["layers"][0] == {"kind": "Conv2d", "args": {
        "in_channels": 3, "out_channels": 4, "kernel_size": [3, 3], "stride": [2, 2], "padding": [1, 1],
        "dilation": [1, 1], "bias": True}}
    assert arch["layers"][3] == {"kind": "Upsample", "args": {"scale_factor": [2, 2], "mode": "nearest"}}
    for back in ("py", "rs"):
        other = load_backend(back)
        loaded = io.load_model(path, fw=other)
        assert [type(m).__name__ for m in loaded] == [type(m).__name__ for m in model]
        assert state_hex(loaded) == state_hex(model)
        assert th(loaded(other.tensor(x.tolist()))) == want


def test_conv1d_model_round_trips(fw: ModuleType, tmp_path: Path) -> None:
    model = fw.Sequential(fw.Conv1d(2, 3, 3, padding=1, generator=fw.Generator(1)), fw.Tanh())
    path = tmp_path / "m.safetensors"
    io.save_model(model, path)
    loaded = io.load_model(path, fw=fw)
    assert state_hex(loaded) == state_hex(model)
    assert loaded[0].kernel_size == (3,) and loaded[0].padding == (1,)


def test_mlp_files_stay_version_1(fw: ModuleType, tmp_path: Path) -> None:
    model = fw.Sequential(fw.Linear(2, 3, generator=fw.Generator(0)), fw.ReLU())
    io.save_model(model, tmp_path / "m.safetensors")
    assert io.load_safetensors_metadata(tmp_path / "m.safetensors")["pyfw.format_version"] == "1"


@pytest.mark.parametrize("change,what", [
    (lambda a: a["layers"][0]["args"].update(kernel_size=[3]), "invalid kernel_size"),
    (lambda a: a["layers"][0]["args"].update(stride=[0, 1]), "invalid stride"),
    (lambda a: a["layers"][0]["args"].update(bias=1), "invalid bias"),
    (lambda a: a["layers"][0]["args"].pop("dilation"), "exactly the arguments"),
    (lambda a: a["layers"][3]["args"].update(mode="bilinear"), "invalid mode"),
    (lambda a: a["layers"][0]["args"].update(out_channels=5), "shape"),
    (lambda a: a["layers"][4]["args"].update(output_padding=[2, 2]), "output_padding"),
])
def test_a_wrong_conv_architecture_is_refused(change: Any, what: str, tmp_path: Path) -> None:
    import pyfw
    model = _conv_net(pyfw)
    meta = io.model_metadata(model)
    arch = json.loads(meta["pyfw.architecture"])
    change(arch)
    meta["pyfw.architecture"] = json.dumps(arch)
    path = tmp_path / "bad.safetensors"
    io.save_safetensors(model.state_dict(), path, meta)
    with pytest.raises(ValueError, match=what) as e:
        io.load_model(path)
    assert str(path) in str(e.value)


def test_load_model_into_a_given_conv_model(fw: ModuleType, tmp_path: Path) -> None:
    model = _conv_net(fw, 3)
    path = tmp_path / "m.safetensors"
    io.save_model(model, path)
    other = _conv_net(fw, 4)
    assert io.load_model(path, model=other) is other
    assert state_hex(other) == state_hex(model)


def test_checkpoint_of_a_conv_model(fw: ModuleType, tmp_path: Path) -> None:
    """Model and momentum buffers of rank 4 go through a checkpoint and come back bit for bit."""
    model = _conv_net(fw)
    opt = fw.SGD(model.param(), lr=0.1, momentum=0.9)
    x = fw.randn(2, 3, 8, 8, generator=fw.Generator(5))
    y = model(x)
    model.backward(fw.ones(*y.shape))
    opt.step()
    path = tmp_path / "c.safetensors"
    io.save_checkpoint(path, model, opt, epoch=1)
    model2 = _conv_net(fw, 9)
    opt2 = fw.SGD(model2.param(), lr=0.1, momentum=0.9)
    assert io.load_checkpoint(path, model2, opt2)["epoch"] == 1
    assert state_hex(model2) == state_hex(model)
    assert sd_hex({k: v for i, s in opt2.state_dict()["state"].items() for k, v in s.items()
                   if hasattr(v, "tolist")}) == sd_hex({k: v for i, s in opt.state_dict()["state"].items()
                                                        for k, v in s.items() if hasattr(v, "tolist")})


def test_real_package_reads_and_writes_nd(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    st = pytest.importorskip("safetensors.numpy")
    tensors = {"w": _values((2, 3, 1, 2)), "v": _values((2, 1, 3)), "b": _values((3,))}
    ours, theirs = tmp_path / "ours.safetensors", tmp_path / "theirs.safetensors"
    io.save_safetensors(tensors, ours)
    st.save_file({k: np.array(v, dtype=np.float64) for k, v in tensors.items()}, str(theirs))
    assert ours.read_bytes() == theirs.read_bytes()
    assert {k: hexes(v.tolist()) for k, v in st.load_file(str(ours)).items()} == {k: hexes(v) for k, v in tensors.items()}
