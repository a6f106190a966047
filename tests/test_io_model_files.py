"""pyfw.io model files: save_model / load_model / load_preprocess on both backends.

A model file is a safetensors file whose metadata holds the architecture and
the input preprocessing. The members come from the tables (``LAYERS``,
``ACTIVATIONS``); no test names an activation.
"""

from __future__ import annotations

import copy
import inspect
import json
import math
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from conftest import load_backend
from fwtest import around, example, hexes, sd_hex, seed_model, state_hex, th
import pyfw
from pyfw import io, task

SEED_PRE = {"kind": "affine", "shift": -0.5, "scale": task.SCALE}

#: Non-default values for constructor arguments, by argument name (members are not named).
OTHER_ARGS = {"negative_slope": 0.2, "alpha": 0.7, "beta": 2.0, "threshold": 10.0, "dim": 0,
              "min_val": -2.0, "max_val": 0.5}


def every_activation(fw: ModuleType, other: bool) -> list:
    """One instance of every member of ``fw.ACTIVATIONS``, with default or other arguments."""
    out = []
    for cls in fw.ACTIVATIONS.values():
        params = inspect.signature(cls).parameters
        kwargs = {p: OTHER_ARGS[p] for p in params if other and p in OTHER_ARGS}
        out.append(cls(**kwargs))
    return out


def big_model(fw: ModuleType, seed: int = 0) -> Any:
    """Linear, every activation (twice: default and other arguments), every member of the layer
    table (fwtest's example of it, between the layers of ``around`` for one that takes samples
    other than rows of 3), Dropout, nested Sequentials."""
    g = fw.Generator(seed)
    layers: list = [fw.Linear(3, 4, generator=g)]
    for a, b in zip(every_activation(fw, False), every_activation(fw, True)):
        layers += [a, b]
    layers.append(fw.Linear(4, 3, generator=g))
    for name in fw.LAYERS:
        if name != "Sequential":
            before, after = around(fw, name, g)
            layers += [*before, example(fw, name), *after]
    inner = fw.Sequential(fw.Linear(3, 5, generator=g), fw.Dropout(0.25), fw.Sequential(fw.Linear(5, 4, generator=g)))
    return fw.Sequential(*layers, inner, fw.Dropout(0.0), fw.Linear(4, 2, generator=g))


def inputs(fw: ModuleType, cols: int = 3, rows: int = 7, seed: int = 11) -> Any:
    g = fw.Generator(seed)
    return fw.tensor([[g.uniform(-3.0, 3.0) for _ in range(cols)] for _ in range(rows)])


def arch(path: Path) -> dict:
    return json.loads(io.load_safetensors_metadata(path)["pyfw.architecture"])


# ---- round trips ---------------------------------------------------------------------------

def test_seed_model_round_trip(fw: ModuleType, tmp_path: Path) -> None:
    model = seed_model(fw, 3)
    path = tmp_path / "m.safetensors"
    io.save_model(model, path, preprocess=SEED_PRE)
    loaded = io.load_model(path, fw=fw)
    assert isinstance(loaded, fw.Sequential) and not loaded.training
    assert list(loaded.state_dict()) == list(model.state_dict())
    assert sd_hex(loaded.state_dict()) == sd_hex(model.state_dict())
    assert repr(loaded) == repr(model)
    x = inputs(fw, 2)
    assert th(loaded(x)) == th(model(x))


def test_metadata_of_the_seed_model(tmp_path: Path) -> None:
    import pyfw
    path = tmp_path / "m.safetensors"
    io.save_model(seed_model(pyfw, 0), path, preprocess=SEED_PRE)
    meta = io.load_safetensors_metadata(path)
    assert meta["pyfw.format"] == "model" and meta["pyfw.format_version"] == "1"
    assert json.loads(meta["pyfw.preprocess"]) == SEED_PRE
    lin = [{"kind": "Linear", "args": {"in_features": i, "out_features": o, "bias": True}} for i, o in
           ((2, 25), (25, 25), (25, 25), (25, 2))]
    relu = {"kind": "ReLU", "args": {}}
    assert arch(path) == {"kind": "Sequential", "layers": [lin[0], relu, lin[1], relu, lin[2], relu, lin[3]]}
    assert meta == io.model_metadata(seed_model(pyfw, 0), SEED_PRE)


def test_every_member_and_nesting_round_trip(fw: ModuleType, tmp_path: Path) -> None:
    model = big_model(fw)
    path = tmp_path / "big.safetensors"
    io.save_model(model, path)
    loaded = io.load_model(path, fw=fw)
    assert repr(loaded) == repr(model)
    for a, b in zip(model, loaded):
        assert type(a) is type(b)
        if type(a).__name__ in fw.ACTIVATIONS:
            for p in inspect.signature(type(a)).parameters:
                assert getattr(a, p) == getattr(b, p), (type(a).__name__, p)
    assert sd_hex(loaded.state_dict()) == sd_hex(model.state_dict())
    model.eval()
    x = inputs(fw)
    assert th(loaded(x)) == th(model(x))
    kinds = [d["kind"] for d in arch(path)["layers"]]
    assert set(fw.ACTIVATIONS) <= set(kinds)
    assert set(fw.LAYERS) <= set(kinds)


def test_nested_keys_are_torch_keys(fw: ModuleType, tmp_path: Path) -> None:
    g = fw.Generator(0)
    model = fw.Sequential(fw.Sequential(fw.Linear(2, 3, generator=g)), fw.Tanh(), fw.Linear(3, 1, generator=g))
    path = tmp_path / "n.safetensors"
    io.save_model(model, path)
    assert sorted(io.load_safetensors(path)) == ["0.0.bias", "0.0.weight", "2.bias", "2.weight"]
    assert list(io.load_model(path, fw=fw).state_dict()) == ["0.0.weight", "0.0.bias", "2.weight", "2.bias"]


def test_a_single_layer_is_a_model_too(fw: ModuleType, tmp_path: Path) -> None:
    lin = fw.Linear(4, 2, generator=fw.Generator(1))
    path = tmp_path / "l.safetensors"
    io.save_model(lin, path)
    assert sorted(io.load_safetensors(path)) == ["bias", "weight"]
    loaded = io.load_model(path, fw=fw)
    assert type(loaded) is fw.Linear and sd_hex(loaded.state_dict()) == sd_hex(lin.state_dict())
    act = list(fw.ACTIVATIONS.values())[0]()
    io.save_model(act, path)
    assert type(io.load_model(path, fw=fw)) is type(act)
    io.save_model(fw.Sequential(), path)
    assert len(io.load_model(path, fw=fw)) == 0


def test_dropout_is_restored_and_eval_mode(fw: ModuleType, tmp_path: Path) -> None:
    model = fw.Sequential(fw.Linear(2, 2, generator=fw.Generator(0)), fw.Dropout(0.3, generator=fw.Generator(1)))
    path = tmp_path / "d.safetensors"
    io.save_model(model, path)
    loaded = io.load_model(path, fw=fw)
    assert loaded[1].p == 0.3 and loaded[1].generator is None
    assert not loaded.training and not loaded[1].training
    x = inputs(fw, 2)
    assert th(loaded(x)) == th(loaded[0](x))


@pytest.mark.parametrize("src,dst", [("py", "rs"), ("rs", "py")])
def test_model_files_cross_backends_bit_for_bit(src: str, dst: str, tmp_path: Path) -> None:
    a, b = load_backend(src), load_backend(dst)
    for name, make in (("seed", lambda fw: seed_model(fw, 9)), ("big", lambda fw: big_model(fw, 9))):
        pa, pb = tmp_path / f"{name}-a.safetensors", tmp_path / f"{name}-b.safetensors"
        model = make(a)
        model.eval()
        io.save_model(model, pa, preprocess=SEED_PRE)
        io.save_model(make(b), pb, preprocess=SEED_PRE)
        assert pa.read_bytes() == pb.read_bytes()
        loaded = io.load_model(pa, fw=b)
        assert isinstance(loaded, b.Sequential)
        cols = model.state_dict()["0.weight"].shape[1]
        pre = io.load_preprocess(pa)
        xa, xb = pre(inputs(a, cols, 50)), pre(inputs(b, cols, 50))
        assert th(xa) == th(xb)
        assert th(loaded(xb)) == th(model(xa))
        grad = b.tensor([[1.0] * 2] * 50)
        assert th(loaded.backward(grad)) == th(model.backward(a.tensor(grad.tolist())))


def test_loading_draws_nothing_from_the_default_generator(fw: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    io.save_model(big_model(fw), path)
    fw.manual_seed(17)
    before = fw.default_generator.get_state()
    io.load_model(path, fw=fw)
    assert fw.default_generator.get_state() == before


def test_save_model_is_atomic_and_replaces(fw: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    io.save_model(seed_model(fw, 1), path)
    io.save_model(seed_model(fw, 2), path)
    assert os.listdir(tmp_path) == ["m.safetensors"]
    assert sd_hex(io.load_model(path, fw=fw).state_dict()) == sd_hex(seed_model(fw, 2).state_dict())


# ---- preprocessing ---------------------------------------------------------------------------

def test_seed_standardization_is_reproduced_bit_for_bit(fw: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    io.save_model(seed_model(fw), path, preprocess=SEED_PRE)
    pre = io.load_preprocess(path)
    assert pre.spec == SEED_PRE and pre == io.Preprocess(SEED_PRE)
    x, _ = fw.data.disk(300, generator=fw.Generator(4))
    got = pre(x)
    assert isinstance(got, fw.Tensor)
    assert th(got) == th(task.standardize(fw, x))
    assert hexes(pre(x.tolist())) == th(task.standardize(fw, x))
    assert hexes(pre(x[0].tolist())) == th(task.standardize(fw, x[0:1]))[0]


def test_no_preprocess_is_the_identity(fw: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    io.save_model(seed_model(fw), path)
    pre = io.load_preprocess(path)
    assert pre.spec is None and json.loads(io.load_safetensors_metadata(path)["pyfw.preprocess"]) is None
    x = inputs(fw, 2)
    assert pre(x) is x


def test_per_column_affine(fw: ModuleType, tmp_path: Path) -> None:
    spec = {"kind": "affine", "shift": [1.0, -2.0], "scale": [0.5, 3]}
    path = tmp_path / "m.safetensors"
    io.save_model(seed_model(fw), path, preprocess=io.Preprocess(spec))
    pre = io.load_preprocess(path)
    assert pre.spec == {"kind": "affine", "shift": [1.0, -2.0], "scale": [0.5, 3.0]}
    assert pre(fw.tensor([[1.0, 1.0], [0.1, 0.2]])).tolist() == [[1.0, -3.0], [(0.1 + 1.0) * 0.5, (0.2 - 2.0) * 3.0]]
    with pytest.raises(ValueError, match="columns"):
        pre(fw.tensor([[1.0, 2.0, 3.0]]))
    with pytest.raises(ValueError, match="overflows"):
        io.Preprocess({"kind": "affine", "shift": 0.0, "scale": 1e300})(fw.tensor([[1e10, 1.0]]))


@pytest.mark.parametrize("spec,exc", [
    ("affine", TypeError),
    ({"kind": "log"}, ValueError),
    ({"kind": "affine", "shift": 1.0}, ValueError),
    ({"kind": "affine", "shift": 1.0, "scale": 1.0, "extra": 0}, ValueError),
    ({"kind": "affine", "shift": math.nan, "scale": 1.0}, ValueError),
    ({"kind": "affine", "shift": 0.0, "scale": math.inf}, ValueError),
    ({"kind": "affine", "shift": "0.5", "scale": 1.0}, ValueError),
    ({"kind": "affine", "shift": True, "scale": 1.0}, ValueError),
    ({"kind": "affine", "shift": [], "scale": 1.0}, ValueError),
    ({"kind": "affine", "shift": [1.0, 2.0], "scale": [1.0]}, ValueError),
    ({"kind": "affine", "shift": 10 ** 400, "scale": 1.0}, ValueError),
])
def test_bad_preprocess_writes_nothing(fw: ModuleType, tmp_path: Path, spec: Any, exc: type) -> None:
    path = tmp_path / "m.safetensors"
    with pytest.raises(exc):
        io.save_model(seed_model(fw), path, preprocess=spec)
    assert os.listdir(tmp_path) == []


# ---- what cannot be described ---------------------------------------------------------------

def _custom_modules(fw: ModuleType) -> list:
    class Mine(fw.Module):
        def forward(self, x: Any) -> Any:
            return x

    act = next(iter(fw.ACTIVATIONS.values()))
    SubAct = type("SubAct", (act,), {})
    SubLinear = type("SubLinear", (fw.Linear,), {})
    g = fw.Generator(0)
    return [Mine(), fw.Sequential(fw.Linear(2, 2, generator=g), Mine()), SubAct(),
            fw.Sequential(fw.Sequential(SubLinear(2, 2, generator=g)))]


def test_custom_modules_are_stored_as_their_state_dict(fw: ModuleType, tmp_path: Path) -> None:
    """A module of a class of one's own is saved with its state dict and class name; loading it
    needs ``model=`` (a clear ValueError without), which loads the weights bit for bit."""
    path = tmp_path / "m.safetensors"
    for model in _custom_modules(fw):
        io.save_model(model, path)
        with pytest.raises(ValueError, match=r"class of your own.*model="):
            fw.io.load_model(path)
        twin = copy.deepcopy(model)
        for p in twin.parameters():
            p.zero_()
        assert fw.io.load_model(path, model=twin) is twin
        assert state_hex(twin) == state_hex(model)
    with pytest.raises(TypeError, match="not a module"):
        io.save_model("not a model", path)


def test_diverged_model_writes_nothing(fw: ModuleType, tmp_path: Path) -> None:
    model = seed_model(fw)
    w = model[0].weight
    rows = w.tolist()
    rows[0][0] = 1e308
    w.copy_(rows)
    w.add_(rows)  # 1e308 + 1e308 = inf
    path = tmp_path / "m.safetensors"
    with pytest.raises(ValueError):
        io.save_model(model, path)
    assert os.listdir(tmp_path) == []


# ---- hostile model files -------------------------------------------------------------------------

def _meta(architecture: Any, preprocess: str = "null", **extra: str) -> dict:
    text = architecture if isinstance(architecture, str) else json.dumps(architecture)
    return {"pyfw.format": "model", "pyfw.format_version": "1", "pyfw.architecture": text,
            "pyfw.preprocess": preprocess, **extra}


LIN = {"kind": "Linear", "args": {"in_features": 2, "out_features": 1}}
W = {"weight": [[1.0, 2.0]], "bias": [0.5]}
SEQ_W = {"0.weight": [[1.0, 2.0]], "0.bias": [0.5]}


def _deep(n: int) -> dict:
    d: dict = LIN
    for _ in range(n):
        d = {"kind": "Sequential", "layers": [d]}
    return d


BAD_MODELS = {
    "no-metadata": (W, None),
    "other-format": (W, {**_meta(LIN), "pyfw.format": "checkpoint"}),
    "version-3": (W, {**_meta(LIN), "pyfw.format_version": "3"}),
    "no-version": (W, {k: v for k, v in _meta(LIN).items() if k != "pyfw.format_version"}),
    "no-architecture": (W, {k: v for k, v in _meta(LIN).items() if k != "pyfw.architecture"}),
    "architecture-not-json": (W, _meta("{kind: Linear")),
    "architecture-list": (W, _meta([LIN])),
    "architecture-duplicate-key": (W, _meta('{"kind": "Linear", "kind": "Linear", "args": {}}')),
    "architecture-nan": (W, _meta('{"kind": "Dropout", "args": {"p": NaN}}')),
    "unknown-kind": (W, _meta({"kind": "Conv2d", "args": {}})),
    "kind-not-string": (W, _meta({"kind": 3, "args": {}})),
    "module-kind": (W, _meta({"kind": "Module", "args": {}})),
    "no-args": (W, _meta({"kind": "Linear"})),
    "args-list": (W, _meta({"kind": "Linear", "args": [2, 1]})),
    "extra-field": (W, _meta({**LIN, "bias": True})),
    "linear-missing-arg": (W, _meta({"kind": "Linear", "args": {"in_features": 2}})),
    "linear-extra-arg": (W, _meta({"kind": "Linear", "args": {**LIN["args"], "bias": False}})),
    "linear-bool": (W, _meta({"kind": "Linear", "args": {"in_features": True, "out_features": 1}})),
    "linear-float": (W, _meta({"kind": "Linear", "args": {"in_features": 2.0, "out_features": 1}})),
    "linear-zero": (W, _meta({"kind": "Linear", "args": {"in_features": 0, "out_features": 1}})),
    "linear-huge": (W, _meta({"kind": "Linear", "args": {"in_features": 10 ** 6, "out_features": 10 ** 6}})),
    "dropout-p": (SEQ_W, _meta({"kind": "Sequential", "layers": [LIN, {"kind": "Dropout", "args": {"p": 1.5}}]})),
    "dropout-p-string": (SEQ_W, _meta({"kind": "Sequential", "layers": [LIN, {"kind": "Dropout", "args": {"p": "x"}}]})),
    "dropout-unknown-arg": (SEQ_W, _meta({"kind": "Sequential", "layers": [LIN, {"kind": "Dropout", "args": {"q": 1}}]})),
    "sequential-no-layers": (W, _meta({"kind": "Sequential"})),
    "sequential-layers-dict": (W, _meta({"kind": "Sequential", "layers": {"0": LIN}})),
    "sequential-args": (W, _meta({"kind": "Sequential", "args": {}, "layers": []})),
    "too-deep": ({"0." * 200 + "weight": [[1.0, 2.0]], "0." * 200 + "bias": [0.5]}, _meta(_deep(200))),
    "very-deep-json": (W, _meta("[" * 100000 + "]" * 100000)),
    "missing-weight": ({"weight": [[1.0, 2.0]]}, _meta(LIN)),
    "extra-weight": ({**W, "extra": [1.0]}, _meta(LIN)),
    "sequential-names": (W, _meta({"kind": "Sequential", "layers": [LIN]})),
    "wrong-shape": ({"weight": [[1.0], [2.0]], "bias": [0.5, 0.5]}, _meta(LIN)),
    "wrong-bias-shape": ({"weight": [[1.0, 2.0]], "bias": [[0.5]]}, _meta(LIN)),
    "preprocess-not-json": (W, _meta(LIN, preprocess="{")),
    "preprocess-kind": (W, _meta(LIN, preprocess='{"kind": "log", "shift": 0, "scale": 1}')),
    "preprocess-nan": (W, _meta(LIN, preprocess='{"kind": "affine", "shift": NaN, "scale": 1}')),
    "preprocess-huge": (W, _meta(LIN, preprocess='{"kind": "affine", "shift": 1e999, "scale": 1}')),
    "preprocess-string": (W, _meta(LIN, preprocess='"affine"')),
}


@pytest.mark.parametrize("name", list(BAD_MODELS))
def test_bad_model_file_is_a_value_error_naming_it(fw: ModuleType, name: str, tmp_path: Path) -> None:
    tensors, meta = BAD_MODELS[name]
    path = tmp_path / f"{name}.safetensors"
    io.save_safetensors(tensors, path, metadata=meta)
    fw.manual_seed(3)
    before = fw.default_generator.get_state()
    with pytest.raises(ValueError) as e:
        io.load_model(path, fw=fw)
    assert str(path) in str(e.value)
    assert len(str(e.value)) < 1000
    assert fw.default_generator.get_state() == before


@pytest.mark.parametrize("name", [n for n in BAD_MODELS if n.startswith("preprocess")]
                         + ["no-metadata", "other-format", "version-3", "no-version", "no-architecture"])
def test_bad_model_file_preprocess(name: str, tmp_path: Path) -> None:
    tensors, meta = BAD_MODELS[name]
    path = tmp_path / f"{name}.safetensors"
    io.save_safetensors(tensors, path, metadata=meta)
    if name == "no-architecture":
        io.load_preprocess(path)  # the preprocessing alone is fine
        return
    with pytest.raises(ValueError, match=name):
        io.load_preprocess(path)


def test_a_good_hand_written_file_loads(fw: ModuleType, tmp_path: Path) -> None:
    """Arguments left out take their defaults; layers of any member of the table load."""
    act = next(n for n, c in fw.ACTIVATIONS.items() if inspect.signature(c).parameters)
    desc = {"kind": "Sequential", "layers": [LIN, {"kind": act, "args": {}}, {"kind": "Dropout", "args": {}}]}
    path = tmp_path / "hand.safetensors"
    io.save_safetensors(SEQ_W, path, metadata=_meta(desc))
    model = io.load_model(path, fw=fw)
    assert repr(model[1]) == repr(fw.ACTIVATIONS[act]()) and model[2].p == 0.5
    assert model(fw.tensor([[1.0, 1.0]])).tolist() == [[3.5]]


def test_old_json_and_plain_files_are_value_errors(fw: ModuleType, tmp_path: Path) -> None:
    old = tmp_path / "m.json"
    io.save(seed_model(fw).state_dict(), old)
    with pytest.raises(ValueError, match="m.json"):
        io.load_model(old, fw=fw)
    plain = tmp_path / "plain.safetensors"
    io.save_safetensors(seed_model(fw).state_dict(), plain)
    with pytest.raises(ValueError, match="not a pyfw model file"):
        io.load_model(plain, fw=fw)


def test_build_model_from_metadata(fw: ModuleType) -> None:
    model = seed_model(fw, 6)
    rebuilt = io.build_model(io.model_metadata(model), model.state_dict(), fw=fw)
    assert sd_hex(rebuilt.state_dict()) == sd_hex(model.state_dict())
    with pytest.raises(ValueError, match="build_model"):
        io.build_model({}, model.state_dict(), fw=fw)


# ---- torch (optional) --------------------------------------------------------------------------

def test_torch_sequential_loads_our_file(fw: ModuleType, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    model = seed_model(fw, 2)
    path = tmp_path / "m.safetensors"
    io.save_model(model, path)
    net = torch.nn.Sequential(torch.nn.Linear(2, 25), torch.nn.ReLU(), torch.nn.Linear(25, 25), torch.nn.ReLU(),
                              torch.nn.Linear(25, 25), torch.nn.ReLU(), torch.nn.Linear(25, 2)).double()
    net.load_state_dict(st_torch.load_file(str(path)))
    x = inputs(fw, 2)
    with torch.no_grad():
        out = net(torch.tensor(x.tolist(), dtype=torch.float64)).tolist()
    assert max(abs(a - b) for r, s in zip(out, model(x).tolist()) for a, b in zip(r, s)) < 1e-12


def test_torch_loads_a_convolutional_file(fw: ModuleType, tmp_path: Path) -> None:
    """A file of convolution layers and BatchNorm2d (after a training-mode forward, so its
    running statistics and ``num_batches_tracked`` moved) loads into the matching torch
    modules, which then compute the same outputs in eval mode."""
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    g = fw.Generator(1)
    model = fw.Sequential(fw.Conv2d(3, 4, 3, stride=2, padding=1, generator=g), fw.BatchNorm2d(4), fw.ReLU(),
                          fw.MaxPool2d(2), fw.Upsample(scale_factor=2), fw.AvgPool2d(3, stride=1, padding=1),
                          fw.Upsample(scale_factor=2), fw.ConvTranspose2d(4, 2, 3, padding=1, generator=g),
                          fw.Sigmoid())
    x = fw.randn(2, 3, 8, 8, generator=g)
    model(x)
    model.eval()
    path = tmp_path / "conv.safetensors"
    io.save_model(model, path)
    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Upsample(scale_factor=2), nn.AvgPool2d(3, stride=1, padding=1),
                        nn.Upsample(scale_factor=2), nn.ConvTranspose2d(4, 2, 3, padding=1), nn.Sigmoid()).double()
    net.load_state_dict(st_torch.load_file(str(path)))
    net.eval()
    assert int(net[1].num_batches_tracked) == 1
    with torch.no_grad():
        out = net(torch.tensor(x.tolist(), dtype=torch.float64)).flatten().tolist()
    ours = fw.tensor(model(x).tolist()).flatten().tolist()
    assert max(abs(a - b) for a, b in zip(out, ours)) < 1e-12


def test_a_linear_without_the_bias_argument_loads_with_a_bias(fw: ModuleType, tmp_path: Path) -> None:
    """Files written before ``bias=False`` existed name no ``bias``: the Linear has one."""
    lin = fw.Linear(2, 3, generator=fw.Generator(2))
    path = tmp_path / "old.safetensors"
    meta = io.model_metadata(lin)
    meta["pyfw.architecture"] = json.dumps({"kind": "Linear", "args": {"in_features": 2, "out_features": 3}})
    io.save_safetensors(lin.state_dict(), path, meta)
    loaded = io.load_model(path, fw=fw)
    assert loaded.bias is not None and sd_hex(loaded.state_dict()) == sd_hex(lin.state_dict())
