"""pyfw.io: JSON state-dict files (the second format), exact round trips, atomic writes, corrupt files."""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from pyfw import io
from fwtest import hexes, sd_hex, seed_model


def test_round_trip_is_exact(fw: ModuleType, tmp_path: Path) -> None:
    model = seed_model(fw, 3)
    path = tmp_path / "model.json"
    io.save(model.state_dict(), str(path))
    loaded = io.load(str(path))
    assert list(loaded) == list(model.state_dict())
    assert sd_hex(loaded) == sd_hex(model.state_dict())
    other = seed_model(fw, 4)
    other.load_state_dict(loaded)
    assert sd_hex(other.state_dict()) == sd_hex(model.state_dict())


def test_round_trip_of_awkward_floats(tmp_path: Path) -> None:
    vals = [5e-324, -0.0, 1.7976931348623157e308, 0.1, 1 / 3, -2.2250738585072014e-308, 1e-17, 123456789.123456789]
    path = str(tmp_path / "f.json")
    io.save({"v": vals, "m": [vals[:4], vals[4:]]}, path)
    got = io.load(path)
    assert hexes(got["v"]) == hexes(vals)
    assert hexes(got["m"]) == hexes([vals[:4], vals[4:]])


def test_file_format(tmp_path: Path) -> None:
    import pyfw
    path = tmp_path / "lin.json"
    lin = pyfw.Linear(2, 3, generator=pyfw.Generator(0))
    io.save(lin.state_dict(), str(path))
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["format"] == "pyfw.state_dict" and doc["version"] == 1
    assert doc["tensors"]["weight"]["shape"] == [3, 2] and doc["tensors"]["bias"]["shape"] == [3]
    assert doc["tensors"]["weight"]["data"] == lin.weight.tolist()


def test_save_replaces_and_leaves_no_temporary_files(fw: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    io.save(seed_model(fw, 1).state_dict(), str(path))
    io.save(seed_model(fw, 2).state_dict(), str(path))
    assert sorted(os.listdir(tmp_path)) == ["m.json"]
    assert sd_hex(io.load(str(path))) == sd_hex(seed_model(fw, 2).state_dict())


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_failed_save_keeps_the_old_file(tmp_path: Path, bad: float) -> None:
    path = tmp_path / "m.json"
    io.save({"w": [[1.0, 2.0]]}, str(path))
    old = path.read_bytes()
    with pytest.raises(ValueError):
        io.save({"w": [[1.0, bad]]}, str(path))
    assert path.read_bytes() == old
    assert sorted(os.listdir(tmp_path)) == ["m.json"]


def test_interrupted_save_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.json"
    io.save({"w": [[1.0, 2.0]]}, str(path))
    old = path.read_bytes()

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        io.save({"w": [[3.0, 4.0]]}, str(path))
    monkeypatch.undo()
    assert path.read_bytes() == old
    assert sorted(os.listdir(tmp_path)) == ["m.json"]


def test_save_into_missing_folder(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "m.json"
    with pytest.raises(OSError):
        io.save({"w": [1.0]}, str(path))
    assert not (tmp_path / "nope").exists()
    assert os.listdir(tmp_path) == []


def test_save_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        io.save([("w", [1.0])], str(tmp_path / "a.json"))
    with pytest.raises(TypeError):
        io.save({1: [1.0]}, str(tmp_path / "a.json"))
    assert os.listdir(tmp_path) == []


def _write(tmp_path: Path, content: str | bytes, name: str = "bad.json") -> str:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return str(path)


GOOD_ENTRY = {"shape": [2], "data": [1.0, 2.0]}


@pytest.mark.parametrize("content", [
    "not json at all",
    "{\"format\": \"pyfw.state_dict\", ",
    b"\xff\xfe\x00garbage",
    "",
    json.dumps([1, 2, 3]),
    json.dumps({"format": "torch", "version": 1, "tensors": {"b": GOOD_ENTRY}}),
    json.dumps({"version": 1, "tensors": {"b": GOOD_ENTRY}}),
    json.dumps({"format": "pyfw.state_dict", "version": 2, "tensors": {"b": GOOD_ENTRY}}),
    json.dumps({"format": "pyfw.state_dict", "tensors": {"b": GOOD_ENTRY}}),
    json.dumps({"format": "pyfw.state_dict", "version": 1}),
    json.dumps({"format": "pyfw.state_dict", "version": 1, "tensors": [1]}),
    json.dumps({"format": "pyfw.state_dict", "version": 1, "tensors": {"b": [1.0, 2.0]}}),
    json.dumps({"format": "pyfw.state_dict", "version": 1, "tensors": {"b": {"shape": [3], "data": [1.0, 2.0]}}}),
    json.dumps({"format": "pyfw.state_dict", "version": 1, "tensors": {"w": {"shape": [2, 2], "data": [[1.0, 2.0]]}}}),
    json.dumps({"format": "pyfw.state_dict", "version": 1, "tensors": {"w": {"shape": [1, 2], "data": [[1.0, "x"]]}}}),
    json.dumps({"format": "pyfw.state_dict", "version": 1, "tensors": {"w": {"shape": [2], "data": [1.0, True]}}}),
    json.dumps({"format": "pyfw.state_dict", "version": 1, "tensors": {"w": {"data": [1.0]}}}),
    "{\"format\": \"pyfw.state_dict\", \"version\": 1, \"tensors\": {\"w\": {\"shape\": [1], \"data\": [NaN]}}}",
], ids=["text", "truncated", "binary", "empty-file", "json-list", "other-format", "no-format", "v2",
        "no-v", "no-tensor-table", "tensor-table-list", "entry-not-object", "shape-mismatch",
        "row-count-mismatch", "string-value", "bool-value", "no-shape", "nan"])
def test_corrupt_file_raises_value_error_naming_it(tmp_path: Path, content: str | bytes) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(ValueError) as e:
        io.load(path)
    assert path in str(e.value)


@pytest.mark.parametrize("data", [[[1.0], [2.0, 3.0]], [], 3.0, [[1.0, "x"]]],
                         ids=["ragged", "empty", "scalar", "string"])
def test_corrupt_entry_with_empty_shape_header(tmp_path: Path, data: object) -> None:
    path = _write(tmp_path, json.dumps({"format": "pyfw.state_dict", "version": 1,
                                        "tensors": {"w": {"shape": [], "data": data}}}))
    with pytest.raises(ValueError):
        io.load(path)


def test_save_rejects_ragged_data(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    with pytest.raises(ValueError):
        io.save({"w": [[1.0], [2.0, 3.0]]}, str(path))
    assert not path.exists()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        io.load(str(tmp_path / "absent.json"))


def test_corrupt_file_changes_nothing(fw: ModuleType, tmp_path: Path) -> None:
    model = seed_model(fw, 1)
    before = sd_hex(model.state_dict())
    good = tmp_path / "good.json"
    io.save(seed_model(fw, 2).state_dict(), str(good))
    doc = json.loads(good.read_text(encoding="utf-8"))
    doc["tensors"]["6.bias"] = {"shape": [3], "data": [0.0, 0.0, 0.0]}
    bad = _write(tmp_path, json.dumps(doc), "mismatch.json")
    with pytest.raises(ValueError):
        model.load_state_dict(io.load(bad))
    assert sd_hex(model.state_dict()) == before


def test_save_takes_what_tensor_takes(tmp_path: Path) -> None:
    class Real(float):
        pass

    path = tmp_path / "s.json"
    io.save({"w": ((1, Real(2.5)),), "b": (0.5,)}, str(path))
    assert io.load(str(path)) == {"w": [[1.0, 2.5]], "b": [0.5]}


@pytest.mark.parametrize("body", [
    "[" * 100000 + "]" * 100000,
    '{"format": "pyfw.state_dict", "version": 1, "tensors": {"w": {"shape": [1], "data": [' + "9" * 400 + "]}}}",
    '{"format": "pyfw.state_dict", "version": 1, "tensors": {"w": {"shape": [1], "data": [1e400]}}}',
], ids=["deep", "huge-int", "inf"])
def test_odd_files_are_value_errors(tmp_path: Path, body: str) -> None:
    path = tmp_path / "odd.json"
    path.write_text(body)
    with pytest.raises(ValueError, match="odd.json"):
        io.load(str(path))


def test_save_rejects_numbers_too_large_for_a_float(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        io.save({"w": [10**400]}, str(tmp_path / "w.json"))
    assert not list(tmp_path.iterdir())


def test_write_atomic_text_and_bytes(tmp_path: Path) -> None:
    path = tmp_path / "f"
    io.write_atomic(path, "h\u00e9\n")
    assert path.read_bytes() == "h\u00e9\n".encode("utf-8")
    io.write_atomic(str(path), b"\x00\xff\r\n")
    assert path.read_bytes() == b"\x00\xff\r\n"
    assert os.listdir(tmp_path) == ["f"]


def test_write_atomic_errors_name_the_users_path(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "out.json"
    with pytest.raises(FileNotFoundError) as e:
        io.write_atomic(str(path), "x")
    assert e.value.filename == str(path) and ".part" not in str(e.value)
    folder = tmp_path / "dir"
    folder.mkdir()
    with pytest.raises(OSError) as e:
        io.write_atomic(str(folder), "x")  # renaming a file over a folder fails
    assert ".part" not in str(e.value)
    assert sorted(os.listdir(tmp_path)) == ["dir"] and os.listdir(folder) == []


FSIZE_LIMIT = 4096  # bytes: a model file of the seed task is larger


def _limited(limit: int) -> None:
    """In the child: files may grow to ``limit`` bytes; a longer write fails with EFBIG (not SIGXFSZ)."""
    import resource
    import signal
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


def _run_limited(args: list, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, *args], cwd=str(cwd), capture_output=True, text=True, timeout=300,
                          env=env, preexec_fn=lambda: _limited(FSIZE_LIMIT))


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="no file size limit here")
def test_a_failed_write_names_the_file(tmp_path: Path) -> None:
    """A write that fails midway (here: the file size limit, as a full disk would) names the file,
    keeps the old content and leaves no temporary file."""
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    code = ("import sys; from pyfw import io\n"
            "try:\n    io.write_atomic(sys.argv[1], b'x' * 100000)\n"
            "except OSError as e:\n    print(type(e).__name__, e.errno, e.filename); print(e)\n")
    p = _run_limited(["-c", code, str(path)], Path(io.__file__).parent.parent)
    assert p.returncode == 0, p.stderr
    kind, text = p.stdout.splitlines()
    assert kind == f"OSError {errno.EFBIG} {path}"
    assert str(path) in text and "File too large" in text
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.bin"]


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="no file size limit here")
def test_a_failed_write_is_one_cli_line_naming_the_file(tmp_path: Path) -> None:
    out = tmp_path / "m.safetensors"
    p = _run_limited(["-m", "pyfw", "train", "--epochs", "1", "--n-train", "20", "--n-test", "20", "--quiet",
                      "--save", str(out)], Path(io.__file__).parent.parent)
    assert p.returncode == 1 and len(p.stderr.splitlines()) == 1, p.stderr
    assert str(out) in p.stderr and "File too large" in p.stderr and "Traceback" not in p.stderr
    assert os.listdir(tmp_path) == []


def test_a_vanished_folder_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "gone"
    folder.mkdir()
    path = folder / "run.json"
    folder.rmdir()
    with pytest.raises(FileNotFoundError) as e:
        io.write_atomic(path, "{}")
    assert e.value.filename == str(path) and str(path) in str(e.value)


def test_save_rejects_a_tensor_that_overflowed(fw: ModuleType, tmp_path: Path) -> None:
    t = fw.tensor([1e308, 1.0])
    try:
        t.add_([1e308, 0.0])  # may leave inf in the tensor
    except ValueError:
        pytest.skip("this backend refuses the overflow itself")
    with pytest.raises(ValueError):
        io.save({"t": t}, str(tmp_path / "t.json"))
    assert os.listdir(tmp_path) == []


def test_load_of_a_safetensors_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    io.save_safetensors({"w": [1.0, 2.0]}, path)
    with pytest.raises(ValueError, match="load_safetensors") as e:
        io.load(str(path))
    assert str(path) in str(e.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_load_of_a_fifo_does_not_wait(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        io.load(str(fifo))
