"""Checkpoints that always load again: non-finite floats in the saved state, the generators
that modules hold, a resume asked for fewer epochs than were run, files that are not
checkpoints, and a ``checkpoint_extra`` that is not JSON; at the io level, through ``fit``,
``task`` and the CLI, in both backends."""

from __future__ import annotations

import json
import math
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import load_backend
from fwtest import hexes, sd_hex, state_hex

import pyfw
from pyfw import io, task

REPO = Path(pyfw.__file__).resolve().parent.parent
SMALL = {"n_train": 60, "n_test": 40, "batch_size": 16}


def nan_with(bits: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


def float_bits(v: Any) -> Any:
    """Every float of a JSON-like value as its 64 bits (so NaNs compare, payload and sign too)."""
    if isinstance(v, float):
        return struct.unpack("<Q", struct.pack("<d", v))[0]
    if isinstance(v, dict):
        return {k: float_bits(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [float_bits(x) for x in v]
    return v


def small_run(fw: ModuleType, dropout_seed: int = 9) -> tuple:
    """A model with a Dropout that holds its own generator, its optimizer, data and fit's generator."""
    g = fw.Generator(3)
    model = fw.Sequential(fw.Linear(2, 8, generator=g), fw.Tanh(),
                          fw.Sequential(fw.Dropout(0.5, generator=fw.Generator(dropout_seed))),
                          fw.Linear(8, 2, generator=g))
    x, labels = fw.data.disk(40, generator=g)
    opt = fw.SGD(model.param(), lr=0.05, momentum=0.9)
    return model, opt, x, fw.data.one_hot(labels, 2), fw.Generator(5)


# ---- non-finite floats ---------------------------------------------------------------------------

def test_non_finite_floats_read_back_bit_for_bit(fw: ModuleType, tmp_path: Path) -> None:
    model, opt, *_ = small_run(fw)
    sched = fw.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max")  # best and mode_worse: -inf
    sched.step(1.5)
    odd = [math.inf, -math.inf, math.nan, nan_with(0xFFF8000000000000), nan_with(0x7FF0000000000001), -0.0, 5e-324]
    extra = {"odd": odd, "nested": [{"x": -math.inf}], "tuple": (math.inf, 1.0)}
    path = tmp_path / "ck.safetensors"
    io.save_checkpoint(path, model, opt, sched, fw.Generator(1), 1, [0.5, math.inf, math.nan], extra)
    assert "Infinity" not in io.load_safetensors_metadata(path)["pyfw.checkpoint"]  # plain JSON only
    model2, opt2, *_ = small_run(fw)
    sched2 = fw.optim.lr_scheduler.ReduceLROnPlateau(opt2)
    info = io.load_checkpoint(path, model2, opt2, sched2, fw.Generator(0))
    assert float_bits(info["losses"]) == float_bits([0.5, math.inf, math.nan])
    assert float_bits(info["extra"]) == float_bits({**extra, "tuple": [math.inf, 1.0]})
    assert float_bits(sched2.state_dict()) == float_bits(sched.state_dict())
    assert sched2.state_dict()["mode_worse"] == -math.inf
    assert io.checkpoint_info(path)["epoch"] == 1


def test_the_float_tag_is_reserved_and_checked(fw: ModuleType, tmp_path: Path) -> None:
    model, opt, *_ = small_run(fw)
    path = tmp_path / "ck.safetensors"
    with pytest.raises(TypeError, match="pyfw.float"):
        io.save_checkpoint(path, model, opt, extra={"v": {io.FLOAT_TAG: "inf"}})
    assert not path.exists()
    io.save_checkpoint(path, model, opt, extra={"v": {io.FLOAT_TAG: "inf", "other": 1}})  # not a tag: kept
    assert io.checkpoint_info(path)["extra"] == {"v": {io.FLOAT_TAG: "inf", "other": 1}}
    meta = io.load_safetensors_metadata(path)
    for bad in ("Inf", "nan", "nan:7ff0000000000000", "nan:7FF8000000000000", 1.0):
        doc = json.loads(meta["pyfw.checkpoint"])
        doc["losses"] = [{io.FLOAT_TAG: bad}]
        io.save_safetensors(io.load_safetensors(path), path, {**meta, "pyfw.checkpoint": json.dumps(doc)})
        with pytest.raises(ValueError, match="invalid checkpoint metadata"):
            io.load_checkpoint(path, model, opt)


def test_a_tensor_that_is_not_finite_is_refused_and_the_old_checkpoint_kept(fw: ModuleType, tmp_path: Path) -> None:
    model, opt, *_ = small_run(fw)
    path = tmp_path / "ck.safetensors"
    io.save_checkpoint(path, model, opt, epoch=1, losses=[1.0])
    before = path.read_bytes()
    w = model.param()[0][0]
    try:
        w.add_([[1e308] * 2] * 8)
        w.add_([[1e308] * 2] * 8)  # inf, where the backend lets a tensor overflow
    except ValueError:
        pytest.skip("this backend refuses the overflow itself")
    with pytest.raises(ValueError, match="save_checkpoint: .*ck.safetensors is not written, a checkpoint holds finite"):
        io.save_checkpoint(path, model, opt, epoch=2, losses=[1.0, 2.0])
    assert path.read_bytes() == before


@pytest.mark.parametrize("first, second", [("py", "py"), ("rs", "rs"), ("py", "rs")])
def test_reducelronplateau_resumes_bit_identically(tmp_path: Path, first: str, second: str) -> None:
    fa, fb = load_backend(first), load_backend(second)
    config = task.Config(**SMALL, epochs=5, schedule="reducelronplateau", optimizer="adam", lr=0.01)
    full = task.train(fb, config)
    path = tmp_path / "ck.safetensors"
    task.train(fa, config, on_epoch=lambda e, loss: e < 2, fit_options={"checkpoint": str(path)})
    resumed = task.train(fb, config, fit_options={"checkpoint": str(path), "resume": True})
    assert [v.hex() for v in resumed["losses"]] == [v.hex() for v in full["losses"]]
    assert state_hex(resumed["model"]) == state_hex(full["model"])


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pyfw", *args], cwd=str(REPO), capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("backend", ["py", "rs"])
def test_cli_resumes_a_reducelronplateau_checkpoint(tmp_path: Path, backend: str) -> None:
    load_backend(backend)
    ck, first, again = tmp_path / "ck.safetensors", tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    args = ["train", "--epochs", "2", "--n-train", "40", "--n-test", "20", "--quiet", "--schedule",
            "reducelronplateau", "--backend", backend, "--checkpoint", str(ck)]
    p = run_cli(*args, "--save", str(first))
    assert p.returncode == 0, p.stderr
    p = run_cli(*args, "--resume", "--save", str(again))
    assert p.returncode == 0, p.stderr
    assert again.read_bytes() == first.read_bytes()


# ---- generators held by modules ------------------------------------------------------------------

def test_resume_with_a_dropout_generator_is_bit_identical(fw: ModuleType, tmp_path: Path) -> None:
    """Fit 2 epochs with a checkpoint, then resume to 4 from fresh objects (as a killed and
    restarted process does): the same bits as 4 epochs never stopped."""
    model_full, opt, x, t, g = small_run(fw)
    full = fw.fit(model_full, fw.MSELoss(), opt, x, t, 4, batch_size=8, generator=g)
    path = tmp_path / "ck.safetensors"
    model, opt, x, t, g = small_run(fw)
    fw.fit(model, fw.MSELoss(), opt, x, t, 2, batch_size=8, generator=g, checkpoint=str(path))
    model, opt, x, t, g = small_run(fw)
    resumed = fw.fit(model, fw.MSELoss(), opt, x, t, 4, batch_size=8, generator=g, checkpoint=str(path),
                     resume=True)
    assert hexes(resumed) == hexes(full)
    assert state_hex(model) == state_hex(model_full)
    assert model[2][0].generator.get_state() == model_full[2][0].generator.get_state()


def test_module_generators_are_stored_by_dotted_name(fw: ModuleType, tmp_path: Path) -> None:
    model, opt, *_ = small_run(fw)
    path = tmp_path / "ck.safetensors"
    model[2][0].generator.random()
    io.save_checkpoint(path, model, opt)
    doc = json.loads(io.load_safetensors_metadata(path)["pyfw.checkpoint"])
    assert doc["module_generators"] == {"2.0": model[2][0].generator.get_state()}


def test_a_checkpoint_without_the_dropout_generator_is_refused(fw: ModuleType, tmp_path: Path) -> None:
    """A checkpoint of a model whose Dropout uses the default generator cannot continue one whose
    Dropout has its own: that would not be bit for bit. The load changes nothing."""
    path = tmp_path / "ck.safetensors"
    model, opt, *_ = small_run(fw)
    plain = fw.Sequential(fw.Linear(2, 8), fw.Tanh(), fw.Sequential(fw.Dropout(0.5)), fw.Linear(8, 2))
    io.save_checkpoint(path, plain, fw.SGD(plain.param(), lr=0.05, momentum=0.9))
    before = (state_hex(model), model[2][0].generator.get_state())
    with pytest.raises(ValueError, match="no state for the generator of module '2.0'") as e:
        io.load_checkpoint(path, model, opt)
    assert str(path) in str(e.value)
    assert (state_hex(model), model[2][0].generator.get_state()) == before
    io.save_checkpoint(path, model, opt)
    with pytest.raises(ValueError, match="generators of modules"):
        io.load_checkpoint(path, plain, fw.SGD(plain.param(), lr=0.05, momentum=0.9))


def test_a_refused_generator_state_puts_everything_back(fw: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "ck.safetensors"
    model, opt, *_ = small_run(fw)
    io.save_checkpoint(path, model, opt, generator=fw.Generator(2))
    meta = io.load_safetensors_metadata(path)
    doc = json.loads(meta["pyfw.checkpoint"])
    doc["module_generators"]["2.0"]["state"] = -1
    io.save_safetensors(io.load_safetensors(path), path, {**meta, "pyfw.checkpoint": json.dumps(doc)})
    other, opt2, *_ = small_run(fw, dropout_seed=4)
    g = fw.Generator(7)
    before = (state_hex(other), other[2][0].generator.get_state(), g.get_state())
    with pytest.raises(ValueError, match="does not fit this run"):
        io.load_checkpoint(path, other, opt2, generator=g)
    assert (state_hex(other), other[2][0].generator.get_state(), g.get_state()) == before


def opt_hex(opt: Any) -> dict:
    """An optimizer's state, every buffer as ``float.hex`` strings."""
    return {i: sd_hex(entry) for i, entry in opt.state_dict()["state"].items()}


def test_optimizer_indices_that_alias_are_refused(fw: ModuleType, tmp_path: Path) -> None:
    """A checkpoint writes parameter index i as str(i); "01" (or "+1", " 1", "1_0") would be the
    same int as "1", so the last of the two would win without a word."""
    path = tmp_path / "ck.safetensors"
    model, opt, x, t, g = small_run(fw)
    fw.fit(model, fw.MSELoss(), opt, x, t, 1, batch_size=8, generator=g)
    io.save_checkpoint(path, model, opt, epoch=1, losses=[1.0])
    meta = io.load_safetensors_metadata(path)
    tensors = io.load_safetensors(path)
    assert "optimizer.1.momentum_buffer" in tensors

    def rewrite(doc_edit: Any = None, rename: Any = None) -> None:
        doc = json.loads(meta["pyfw.checkpoint"])
        if doc_edit:
            doc_edit(doc["optimizer"]["state"])
        named = {rename(k) if rename else k: v for k, v in tensors.items()}
        io.save_safetensors(named, path, {**meta, "pyfw.checkpoint": json.dumps(doc)})

    def spell(text: str) -> Any:
        return lambda k: k.replace("optimizer.1.", f"optimizer.{text}.")

    cases = [(lambda s: s.update({"01": s["1"]}), None, "the state key '01'")]
    for text in ("01", "+1", " 1", "1_0", "\u0661"):
        cases.append((None, spell(text), f"the index of tensor 'optimizer.{text}.momentum_buffer'"))
    for text in ("+1", "1 ", "٠1"):
        cases.append((lambda s, text=text: s.update({text: s.pop("1")}), None, f"the state key {text!r}"))
    for doc_edit, rename, said in cases:
        rewrite(doc_edit, rename)
        fresh, opt2, *_ = small_run(fw)
        before = (state_hex(fresh), opt_hex(opt2))
        with pytest.raises(ValueError, match="invalid optimizer state") as e:
            io.load_checkpoint(path, fresh, opt2)
        assert str(path) in str(e.value) and said in str(e.value), str(e.value)
        assert (state_hex(fresh), opt_hex(opt2)) == before
    rewrite()  # as written: loads
    fresh, opt2, *_ = small_run(fw)
    io.load_checkpoint(path, fresh, opt2)
    assert opt_hex(opt2) == opt_hex(opt)


# ---- what fit and the CLI refuse -----------------------------------------------------------------

def test_resume_with_fewer_epochs_than_stored_is_refused(fw: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "ck.safetensors"
    model, opt, x, t, g = small_run(fw)
    fw.fit(model, fw.MSELoss(), opt, x, t, 2, batch_size=8, generator=g, checkpoint=str(path))
    model, opt, x, t, g = small_run(fw)
    before = state_hex(model)
    with pytest.raises(ValueError, match=r"holds 2 finished epochs, more than the epochs=1 asked for") as e:
        fw.fit(model, fw.MSELoss(), opt, x, t, 1, batch_size=8, generator=g, checkpoint=str(path), resume=True)
    assert str(path) in str(e.value)
    assert state_hex(model) == before
    assert len(fw.fit(model, fw.MSELoss(), opt, x, t, 2, batch_size=8, generator=g, checkpoint=str(path),
                      resume=True)) == 2


def test_checkpoint_extra_that_is_not_json_is_refused_before_training(fw: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "ck.safetensors"
    model, opt, x, t, g = small_run(fw)
    before = state_hex(model)
    epochs: list = []
    with pytest.raises(TypeError, match="fit: checkpoint_extra cannot be written as JSON"):
        fw.fit(model, fw.MSELoss(), opt, x, t, 2, generator=g, checkpoint=str(path),
               checkpoint_extra={"seen": {1, 2}}, on_epoch=lambda e, loss: epochs.append(e))
    assert epochs == [] and state_hex(model) == before and not path.exists()


def test_a_model_file_is_not_a_checkpoint(fw: ModuleType, tmp_path: Path) -> None:
    model, opt, *_ = small_run(fw)
    path = tmp_path / "m.safetensors"
    io.save_model(fw.Sequential(fw.Linear(2, 2)), path)
    for call in (lambda: io.load_checkpoint(path, model, opt), lambda: io.checkpoint_info(path)):
        with pytest.raises(ValueError, match="is not a pyfw checkpoint: it is a pyfw model file") as e:
            call()
        assert str(path) in str(e.value)
    io.save_safetensors({"w": [1.0]}, path, {"pyfw.format": "checkpoint", "pyfw.format_version": "1",
                                             "pyfw.checkpoint": json.dumps({"epoch": 1})})
    with pytest.raises(ValueError, match="it has no 'losses', 'optimizer'"):
        io.load_checkpoint(path, model, opt)


def test_cli_resume_from_a_model_file_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    io.save_model(pyfw.Sequential(pyfw.Linear(2, 2)), path)
    before = path.read_bytes()
    p = run_cli("train", "--epochs", "1", "--quiet", "--checkpoint", str(path), "--resume")
    assert p.returncode in (1, 2) and len(p.stderr.splitlines()) == 1 and "Traceback" not in p.stderr, p.stderr
    assert str(path) in p.stderr and "not a pyfw checkpoint" in p.stderr and "model file" in p.stderr
    assert path.read_bytes() == before
