"""pyfw.io safetensors: the exact layout, round trips on both backends, F32, hostile files.

The optional tests at the end compare with the real ``safetensors`` package
(with numpy); they skip when it is not installed, and ``make test`` never
installs it.
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from types import ModuleType
from typing import Any, Optional

import pytest

from conftest import load_backend
from fwtest import hexes, sd_hex, seed_model
from pyfw import io

AWKWARD = [5e-324, -0.0, 1.7976931348623157e308, 0.1, 1 / 3, -2.2250738585072014e-308, 1e-17,
           123456789.123456789]


def build(header: Any, data: bytes = b"", n: Optional[int] = None, pad: bool = True) -> bytes:
    """A safetensors file by hand: ``header`` is a dict (dumped compactly) or raw bytes."""
    text = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text) if n is None else n) + text + data


def f64(*vals: float) -> bytes:
    return struct.pack(f"<{len(vals)}d", *vals)


def f32(*vals: float) -> bytes:
    return struct.pack(f"<{len(vals)}f", *vals)


def entry(dtype: str, shape: list, begin: int, end: int) -> dict:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


# ---- the layout ----------------------------------------------------------------------------

def test_layout_is_the_reference_writers(tmp_path: Path) -> None:
    """Compact JSON, __metadata__ first, tensors sorted by name with contiguous offsets,
    the header padded with spaces to a multiple of 8, then little-endian float64 data."""
    path = tmp_path / "t.safetensors"
    io.save_safetensors({"b": [1.0, 2.0], "a": [[0.5], [-3.0]]}, path, metadata={"k": "v"})
    header = (b'{"__metadata__":{"k":"v"},"a":{"dtype":"F64","shape":[2,1],"data_offsets":[0,16]},'
              b'"b":{"dtype":"F64","shape":[2],"data_offsets":[16,32]}}')
    header += b" " * (-len(header) % 8)
    assert path.read_bytes() == struct.pack("<Q", len(header)) + header + f64(0.5, -3.0, 1.0, 2.0)


def test_empty_files_match_the_reference_test_vectors(tmp_path: Path) -> None:
    """safetensors' own tests: ``serialize({}, None)`` and ``serialize({}, {"framework": "pt"})``."""
    path = tmp_path / "e.safetensors"
    io.save_safetensors({}, path)
    assert list(path.read_bytes()) == [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]
    io.save_safetensors({}, path, metadata={"framework": "pt"})
    assert list(path.read_bytes()) == [
        40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97, 116, 97, 95,
        95, 34, 58, 123, 34, 102, 114, 97, 109, 101, 119, 111, 114, 107, 34, 58, 34, 112,
        116, 34, 125, 125, 32, 32, 32, 32, 32]
    assert io.load_safetensors(path) == {}
    assert io.load_safetensors_metadata(path) == {"framework": "pt"}


def test_names_sort_as_the_reference_sorts(tmp_path: Path) -> None:
    """By code point (the reference compares UTF-8 bytes, the same order): "10" before "2"."""
    path = tmp_path / "o.safetensors"
    names = ["2.weight", "10.weight", "0.bias", "é", "Z", "a"]
    io.save_safetensors({n: [float(i)] for i, n in enumerate(names)}, path)
    assert list(io.load_safetensors(path)) == sorted(names)
    n = struct.unpack("<Q", path.read_bytes()[:8])[0]
    assert n % 8 == 0
    assert list(json.loads(path.read_bytes()[8:8 + n])) == sorted(names)


# ---- round trips ---------------------------------------------------------------------------

def test_round_trip_is_exact(fw: ModuleType, tmp_path: Path) -> None:
    model = seed_model(fw, 3)
    path = tmp_path / "m.safetensors"
    io.save_safetensors(model.state_dict(), path)
    loaded = io.load_safetensors(path, fw=fw)
    assert sorted(loaded) == sorted(model.state_dict())
    assert all(isinstance(t, fw.Tensor) for t in loaded.values())
    assert sd_hex(loaded) == sd_hex(model.state_dict())
    other = seed_model(fw, 4)
    other.load_state_dict(loaded)
    assert sd_hex(other.state_dict()) == sd_hex(model.state_dict())


def test_default_backend_is_pyfw(tmp_path: Path) -> None:
    import pyfw
    path = tmp_path / "v.safetensors"
    io.save_safetensors({"v": [1.0]}, path)
    assert type(io.load_safetensors(path)["v"]) is pyfw.Tensor
    assert type(io.load_safetensors(path, fw=None)["v"]) is pyfw.Tensor


def test_round_trip_of_awkward_floats(fw: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "f.safetensors"
    io.save_safetensors({"v": AWKWARD, "m": [AWKWARD[:4], AWKWARD[4:]]}, path)
    got = io.load_safetensors(path, fw=fw)
    assert hexes(got["v"].tolist()) == hexes(AWKWARD)
    assert hexes(got["m"].tolist()) == hexes([AWKWARD[:4], AWKWARD[4:]])
    assert got["v"].shape == (8,) and got["m"].shape == (2, 4)


@pytest.mark.parametrize("src,dst", [("py", "rs"), ("rs", "py")])
def test_files_cross_backends(src: str, dst: str, tmp_path: Path) -> None:
    a, b = load_backend(src), load_backend(dst)
    pa, pb = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    io.save_safetensors(seed_model(a, 8).state_dict(), pa)
    io.save_safetensors(seed_model(b, 8).state_dict(), pb)
    assert pa.read_bytes() == pb.read_bytes()
    model = seed_model(b, 1)
    model.load_state_dict(io.load_safetensors(pa, fw=b))
    assert sd_hex(model.state_dict()) == sd_hex(seed_model(a, 8).state_dict())


def test_values_of_either_backend_and_nested_lists(tmp_path: Path) -> None:
    py, rs = load_backend("py"), load_backend("rs")
    path = tmp_path / "mix.safetensors"
    io.save_safetensors({"p": py.tensor([[1.0, 2.0]]), "r": rs.tensor([3.0]), "l": ((4, 5.5),)}, path)
    got = io.load_safetensors(path)
    assert {k: v.tolist() for k, v in got.items()} == {"l": [[4.0, 5.5]], "p": [[1.0, 2.0]], "r": [3.0]}


def test_metadata(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    meta = {"a": "1", "ü": "ß\n\"x\"", "": ""}
    io.save_safetensors({"w": [1.0]}, path, metadata=meta)
    assert io.load_safetensors_metadata(path) == meta
    io.save_safetensors({"w": [1.0]}, path)
    assert io.load_safetensors_metadata(path) == {}
    path.write_bytes(build({"__metadata__": None, "w": entry("F64", [1], 0, 8)}, f64(2.0)))
    assert io.load_safetensors_metadata(path) == {}
    assert io.load_safetensors(path)["w"].tolist() == [2.0]


def test_path_like_and_replace(tmp_path: Path) -> None:
    path = tmp_path / "p.safetensors"
    io.save_safetensors({"w": [1.0]}, path)
    io.save_safetensors({"w": [2.0]}, str(path))
    assert io.load_safetensors(str(path))["w"].tolist() == [2.0]
    assert os.listdir(tmp_path) == ["p.safetensors"]


# ---- reading what others write --------------------------------------------------------------

def test_f32_is_widened_exactly(fw: ModuleType, tmp_path: Path) -> None:
    vals = [0.1, -1.5, 3.4028234663852886e38, 1e-45, 2.0 ** -126, -0.0]
    as32 = [struct.unpack("<f", struct.pack("<f", v))[0] for v in vals]
    header = {"w": entry("F32", [2, 3], 0, 24), "b": entry("F64", [2], 24, 40)}
    path = tmp_path / "f32.safetensors"
    path.write_bytes(build(header, f32(*vals) + f64(0.25, 0.1)))
    got = io.load_safetensors(path, fw=fw)
    assert hexes(got["w"].tolist()) == hexes([as32[:3], as32[3:]])
    assert got["w"].tolist()[0][0] == 0.10000000149011612
    assert got["b"].tolist() == [0.25, 0.1]


def test_file_order_not_header_order(tmp_path: Path) -> None:
    header = {"z": entry("F64", [1], 8, 16), "__metadata__": {"x": "y"}, "a": entry("F64", [1], 16, 24),
              "m": entry("F64", [1], 0, 8)}
    path = tmp_path / "o.safetensors"
    path.write_bytes(build(header, f64(1.0, 2.0, 3.0)))
    got = io.load_safetensors(path)
    assert [(k, v.tolist()) for k, v in got.items()] == [("m", [1.0]), ("z", [2.0]), ("a", [3.0])]


def test_unpadded_header_and_extra_entry_fields_are_read(tmp_path: Path) -> None:
    """The reference reader accepts any header length and ignores unknown fields of an entry."""
    path = tmp_path / "u.safetensors"
    path.write_bytes(build({"w": {**entry("F64", [1], 0, 8), "note": 1}}, f64(4.0), pad=False))
    assert io.load_safetensors(path)["w"].tolist() == [4.0]


# ---- writing errors: nothing is written --------------------------------------------------------

@pytest.mark.parametrize("tensors,metadata,exc", [
    ([("w", [1.0])], None, TypeError),
    ({1: [1.0]}, None, TypeError),
    ({"__metadata__": [1.0]}, None, ValueError),
    ({"w": [1.0, math.nan]}, None, ValueError),
    ({"w": [[1.0], [math.inf]]}, None, ValueError),
    ({"w": [[1.0], [2.0, 3.0]]}, None, ValueError),
    ({"w": []}, None, ValueError),
    ({"w": [[[1.0]], [[2.0, 3.0]]]}, None, ValueError),
    ({"w": "abc"}, None, TypeError),
    ({"w": [10 ** 400]}, None, ValueError),
    ({"w": [1.0]}, {"k": 1}, TypeError),
    ({"w": [1.0]}, {1: "v"}, TypeError),
    ({"w": [1.0]}, [("k", "v")], TypeError),
    ({"\ud800": [1.0]}, None, ValueError),
    ({"w": [1.0]}, {"k": "\udfff"}, ValueError),
], ids=["not-dict", "int-name", "reserved-name", "nan", "inf", "ragged", "empty", "ragged-3-d", "string",
        "huge-int", "meta-value", "meta-key", "meta-not-dict", "surrogate-name", "surrogate-meta"])
def test_bad_input_writes_nothing(tmp_path: Path, tensors: Any, metadata: Any, exc: type) -> None:
    path = tmp_path / "m.safetensors"
    io.save_safetensors({"old": [1.0]}, path)
    old = path.read_bytes()
    with pytest.raises(exc):
        io.save_safetensors(tensors, path, metadata)
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ["m.safetensors"]


def test_save_into_missing_folder_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "m.safetensors"
    with pytest.raises(OSError) as e:
        io.save_safetensors({"w": [1.0]}, path)
    assert e.value.filename == str(path)
    assert os.listdir(tmp_path) == []


# ---- hostile files ---------------------------------------------------------------------------

W = {"w": entry("F64", [2], 0, 16)}
TWO = f64(1.0, 2.0)
HUGE_DIGITS = b'{"w":{"dtype":"F64","shape":[' + b"9" * 5000 + b'],"data_offsets":[0,16]}}'

HOSTILE = {
    "empty": b"",
    "seven-bytes": b"\x08\x00\x00\x00\x00\x00\x00",
    "length-only": struct.pack("<Q", 0),
    "max-length": struct.pack("<Q", 2 ** 64 - 1) + b"{}" * 8,
    "over-cap": struct.pack("<Q", io.MAX_HEADER_SIZE + 1) + b"{}" * 8,
    "past-eof": build(W, TWO, n=1000),
    "at-cap-past-eof": build(W, TWO, n=io.MAX_HEADER_SIZE),
    "not-utf8": build(b'{"w\xff":{}}'),
    "not-json": build(b"hello world"),
    "truncated-json": build(b'{"w":{"dtype":"F64",'),
    "json-list": build(b"[1,2,3]"),
    "json-string": build(b'"x"'),
    "empty-header": build(b"", TWO),
    "nan-constant": build(b'{"w":{"dtype":"F64","shape":[NaN],"data_offsets":[0,16]}}', TWO),
    "deep-json": build(b"[" * 100000 + b"]" * 100000),
    "huge-int-literal": build(HUGE_DIGITS, TWO),
    "duplicate-name": build(b'{"w":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},'
                            b'"w":{"dtype":"F64","shape":[1],"data_offsets":[8,16]}}', TWO),
    "duplicate-field": build(b'{"w":{"dtype":"F64","shape":[2],"shape":[2],"data_offsets":[0,16]}}', TWO),
    "duplicate-metadata-key": build(b'{"__metadata__":{"a":"1","a":"2"},'
                                    b'"w":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}}', TWO),
    "entry-not-object": build({"w": [1, 2]}, TWO),
    "no-dtype": build({"w": {"shape": [2], "data_offsets": [0, 16]}}, TWO),
    "no-shape": build({"w": {"dtype": "F64", "data_offsets": [0, 16]}}, TWO),
    "no-offsets": build({"w": {"dtype": "F64", "shape": [2]}}, TWO),
    "unknown-dtype": build({"w": entry("F65", [2], 0, 16)}, TWO),
    "dtype-lowercase": build({"w": entry("f64", [2], 0, 16)}, TWO),
    "dtype-not-string": build({"w": entry(64, [2], 0, 16)}, TWO),  # type: ignore[arg-type]
    "dtype-f16": build({"w": entry("F16", [8], 0, 16)}, TWO),
    "dtype-bf16": build({"w": entry("BF16", [8], 0, 16)}, TWO),
    "dtype-i64": build({"w": entry("I64", [2], 0, 16)}, TWO),
    "dtype-bool": build({"w": entry("BOOL", [16], 0, 16)}, TWO),
    "shape-negative": build({"w": entry("F64", [-2], 0, 16)}, TWO),
    "shape-float": build({"w": entry("F64", [2.0], 0, 16)}, TWO),
    "shape-bool": build({"w": entry("F64", [True, True], 0, 16)}, TWO),
    "shape-string": build({"w": entry("F64", "2", 0, 16)}, TWO),  # type: ignore[arg-type]
    "shape-0d": build({"w": entry("F64", [], 0, 8)}, f64(1.0)),
    "shape-17d": build({"w": entry("F64", [1] * 16 + [2], 0, 16)}, TWO),
    "shape-zero": build({"w": entry("F64", [0], 0, 0)}),
    "shape-zero-2d": build({"w": entry("F64", [2, 0], 0, 0)}),
    "shape-overflow": build({"w": entry("F64", [2 ** 63, 2 ** 63], 0, 16)}, TWO),
    "shape-too-big": build({"w": entry("F64", [2 ** 40], 0, 16)}, TWO),
    "shape-too-small": build({"w": entry("F64", [1], 0, 16)}, TWO),
    "offsets-one": build({"w": {"dtype": "F64", "shape": [2], "data_offsets": [0]}}, TWO),
    "offsets-three": build({"w": {"dtype": "F64", "shape": [2], "data_offsets": [0, 8, 16]}}, TWO),
    "offsets-negative": build({"w": entry("F64", [2], -16, 0)}, TWO),
    "offsets-float": build({"w": entry("F64", [2], 0.0, 16.0)}, TWO),  # type: ignore[arg-type]
    "offsets-huge": build({"w": entry("F64", [2], 2 ** 64, 2 ** 64 + 16)}, TWO),
    "offsets-not-at-zero": build({"w": entry("F64", [2], 8, 24)}, f64(0.0, 1.0, 2.0)),
    "offsets-reversed": build({"w": entry("F64", [2], 16, 0)}, TWO),
    "hole": build({"a": entry("F64", [1], 0, 8), "b": entry("F64", [1], 16, 24)}, f64(1.0, 2.0, 3.0)),
    "overlap": build({"a": entry("F64", [2], 0, 16), "b": entry("F64", [2], 8, 24)}, f64(1.0, 2.0, 3.0)),
    "same-range": build({"a": entry("F64", [2], 0, 16), "b": entry("F64", [2], 0, 16)}, TWO),
    "trailing-bytes": build(W, TWO + b"\x00"),
    "truncated-data": build(W, TWO[:-1]),
    "no-data": build(W),
    "data-nan": build(W, f64(1.0, math.nan)),
    "data-inf": build(W, f64(math.inf, 1.0)),
    "data-neg-inf": build(W, f64(1.0, -math.inf)),
    "f32-nan": build({"w": entry("F32", [2], 0, 8)}, f32(math.nan, 1.0)),
    "f32-inf": build({"w": entry("F32", [2], 0, 8)}, struct.pack("<2I", 0x7F800000, 0)),
    "metadata-value-int": build({"__metadata__": {"a": 1}, **W}, TWO),
    "metadata-value-null": build({"__metadata__": {"a": None}, **W}, TWO),
    "metadata-list": build({"__metadata__": ["a"], **W}, TWO),
    "metadata-string": build({"__metadata__": "a", **W}, TWO),
    "long-name-17d": build({"n" * 100000: entry("F64", [1] * 16 + [2], 0, 16)}, TWO),
    "long-shape": build({"w": entry("F64", [1] * 100000, 0, 16)}, TWO),
    "long-shape-3d": build({"w": entry("F64", [1] * 100000 + [2], 0, 16)}, TWO),
    "json-state-dict": json.dumps({"format": "pyfw.state_dict", "version": 1,
                                   "tensors": {"w": {"shape": [1], "data": [1.0]}}}).encode(),
}


def _with(extra: bytes, name: bytes = b"w", meta: bytes = b"") -> bytes:
    """A valid header text for ``TWO`` with ``extra`` (``,"key":value``) added to the entry of ``name``."""
    return meta + b'{"' + name + b'":{"dtype":"F64","shape":[2],"data_offsets":[0,16]' + extra + b"}}"


# What Python's json takes but the reference reader (serde_json) refuses: pyfw refuses it too.
REFERENCE_REFUSES = {
    "bom": build(b"\xef\xbb\xbf" + _with(b""), TWO),
    "utf-16": build(_with(b"").decode().encode("utf-16-le"), TWO),
    "lone-high-surrogate-name": build(_with(b"", name=b"\\ud800"), TWO),
    "lone-low-surrogate-name": build(_with(b"", name=b"\\udc00"), TWO),
    "reversed-surrogates-name": build(_with(b"", name=b"\\udc00\\ud800"), TWO),
    "lone-surrogate-metadata-value": build(b'{"__metadata__":{"k":"\\ud800"},' + _with(b"")[1:], TWO),
    "lone-surrogate-metadata-key": build(b'{"__metadata__":{"\\udbff":"v"},' + _with(b"")[1:], TWO),
    "lone-surrogate-ignored-value": build(_with(b',"x":["\\ud800"]'), TWO),
    "lone-surrogate-ignored-key": build(_with(b',"\\ud800":1'), TWO),
    "1e400-ignored": build(_with(b',"x":1e400'), TWO),
    "minus-1e400-ignored": build(_with(b',"x":-1e400'), TWO),
    "1e400-top-level": build(b'{"x":1e400,' + _with(b"")[1:], TWO),
    "1e400-in-metadata": build(b'{"__metadata__":{"k":1e400},' + _with(b"")[1:], TWO),
    "huge-integer-ignored": build(_with(b',"x":' + b"9" * 309), TWO),
    "huge-negative-integer-ignored": build(_with(b',"x":-' + b"9" * 309), TWO),
    "minus-zero-offset": build(b'{"w":{"dtype":"F64","shape":[2],"data_offsets":[-0,16]}}', TWO),
    "nested-128-deep": build(_with(b',"x":' + b"[" * 126 + b"]" * 126), TWO),
}

# Unusual headers that the reference reads: pyfw reads them too.
REFERENCE_READS = {
    "surrogate-pair-name": build(_with(b"", name=b"\\ud83d\\ude00"), TWO),
    "1e-400-ignored": build(_with(b',"x":1e-400'), TWO),
    "big-integer-ignored": build(_with(b',"x":' + b"9" * 308), TWO),
    "minus-zero-ignored": build(_with(b',"x":-0'), TWO),
    "nested-127-deep": build(_with(b',"x":' + b"[" * 125 + b"]" * 125), TWO),
    "leading-whitespace": build(b" \n\t" + _with(b""), TWO),
    "tab-padding": build(_with(b"") + b"\t" * (-len(_with(b"")) % 8), TWO, pad=False),
    "metadata-null": build(b'{"__metadata__":null,' + _with(b"")[1:], TWO),
}


@pytest.mark.parametrize("name", list(REFERENCE_REFUSES))
def test_as_strict_as_the_reference(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.safetensors"
    path.write_bytes(REFERENCE_REFUSES[name])
    for read in (io.load_safetensors, io.load_safetensors_metadata):
        with pytest.raises(ValueError, match=f"{name}.safetensors is not a valid safetensors file") as e:
            read(path)
        assert len(str(e.value)) < 1000


@pytest.mark.parametrize("name", list(REFERENCE_READS))
def test_as_lenient_as_the_reference(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.safetensors"
    path.write_bytes(REFERENCE_READS[name])
    assert [hexes(t.tolist()) for t in io.load_safetensors(path).values()] == [hexes([1.0, 2.0])]


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_file_is_a_value_error_naming_it(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.safetensors"
    path.write_bytes(HOSTILE[name])
    with pytest.raises(ValueError) as e:
        io.load_safetensors(path)
    assert str(path) in str(e.value)
    assert len(str(e.value)) < 1000


@pytest.mark.parametrize("name", ["past-eof", "over-cap", "offsets-not-at-zero", "duplicate-name", "trailing-bytes"])
def test_metadata_reader_checks_the_header_too(name: str, tmp_path: Path) -> None:
    path = tmp_path / "h.safetensors"
    path.write_bytes(HOSTILE[name])
    with pytest.raises(ValueError, match="h.safetensors"):
        io.load_safetensors_metadata(path)


@pytest.mark.parametrize("name", ["data-nan", "truncated-data", "shape-17d", "dtype-f16", "hole", "duplicate-name"])
def test_hostile_file_changes_nothing(fw: ModuleType, name: str, tmp_path: Path) -> None:
    """A model keeps its weights: nothing is returned, so nothing can be loaded into it."""
    model = seed_model(fw, 1)
    before = sd_hex(model.state_dict())
    path = tmp_path / "bad.safetensors"
    path.write_bytes(HOSTILE[name])
    with pytest.raises(ValueError, match="bad.safetensors"):
        model.load_state_dict(io.load_safetensors(path, fw=fw))
    assert sd_hex(model.state_dict()) == before


def test_mismatched_weights_change_nothing(fw: ModuleType, tmp_path: Path) -> None:
    model = seed_model(fw, 1)
    before = sd_hex(model.state_dict())
    sd = seed_model(fw, 2).state_dict()
    sd["6.bias"] = [0.0, 0.0, 0.0]
    path = tmp_path / "mismatch.safetensors"
    io.save_safetensors(sd, path)
    with pytest.raises(ValueError):
        model.load_state_dict(io.load_safetensors(path, fw=fw))
    assert sd_hex(model.state_dict()) == before


def test_every_truncation_of_a_good_file_is_a_value_error(tmp_path: Path) -> None:
    good = tmp_path / "good.safetensors"
    io.save_safetensors({"w": [[1.0, 2.0], [3.0, 4.0]], "b": [5.0, 6.0]}, good, metadata={"k": "v"})
    blob = good.read_bytes()
    path = tmp_path / "cut.safetensors"
    for n in range(len(blob)):
        path.write_bytes(blob[:n])
        with pytest.raises(ValueError, match="cut.safetensors"):
            io.load_safetensors(path)


def test_every_flipped_header_byte_is_handled(tmp_path: Path) -> None:
    """Any single corrupted byte of the length or header reads back or is a ValueError, never a crash."""
    good = tmp_path / "good.safetensors"
    io.save_safetensors({"w": [[1.0, 2.0], [3.0, 4.0]], "b": [5.0, 6.0]}, good, metadata={"k": "v"})
    blob = good.read_bytes()
    n = struct.unpack("<Q", blob[:8])[0]
    path = tmp_path / "flip.safetensors"
    for i in range(8 + n):
        for x in (0x01, 0x80, 0xFF):
            bad = bytearray(blob)
            bad[i] ^= x
            path.write_bytes(bytes(bad))
            try:
                io.load_safetensors(path)
            except ValueError as e:
                assert "flip.safetensors" in str(e)


def test_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        io.load_safetensors(tmp_path / "absent.safetensors")


def test_a_folder_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises((ValueError, OSError)) as e:
        io.load_safetensors(tmp_path)
    assert str(tmp_path) in str(e.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_does_not_hang(tmp_path: Path) -> None:
    path = tmp_path / "fifo.safetensors"
    os.mkfifo(path)
    with pytest.raises(ValueError, match="not a regular file"):
        io.load_safetensors(path)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_an_endless_device_is_not_read() -> None:
    with pytest.raises(ValueError, match="not a regular file"):
        io.load_safetensors("/dev/zero")


def test_bad_backend_argument(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    io.save_safetensors({"w": [1.0]}, path)
    for bad in ("pyfw", 1, json):
        with pytest.raises(TypeError):
            io.load_safetensors(path, fw=bad)  # type: ignore[arg-type]


# ---- the real safetensors package (optional) ------------------------------------------------------

def _real() -> tuple:
    np = pytest.importorskip("numpy")
    st = pytest.importorskip("safetensors.numpy")
    safetensors = pytest.importorskip("safetensors")
    return np, st, safetensors


def test_real_package_reads_our_files(fw: ModuleType, tmp_path: Path) -> None:
    np, st, safetensors = _real()
    model = seed_model(fw, 5)
    path = tmp_path / "ours.safetensors"
    io.save_safetensors(model.state_dict(), path, metadata={"who": "pyfw", "n": "1"})
    arrays = st.load_file(str(path))
    assert sorted(arrays) == sorted(model.state_dict())
    for name, t in model.state_dict().items():
        assert arrays[name].dtype == np.float64 and arrays[name].shape == t.shape
        assert hexes(arrays[name].tolist()) == hexes(t.tolist())
    with safetensors.safe_open(str(path), framework="numpy") as f:
        assert f.metadata() == {"who": "pyfw", "n": "1"}


def test_real_package_writes_the_same_bytes(tmp_path: Path) -> None:
    np, st, _ = _real()
    tensors = {"b": [1.0, 2.0], "a": [[0.5, 0.25], [-3.0, 1e-300]], "10.weight": [[AWKWARD[0]]]}
    ours, theirs = tmp_path / "ours.safetensors", tmp_path / "theirs.safetensors"
    io.save_safetensors(tensors, ours, metadata={"k": "v"})
    st.save_file({k: np.array(v, dtype=np.float64) for k, v in tensors.items()}, str(theirs), metadata={"k": "v"})
    assert ours.read_bytes() == theirs.read_bytes()


def test_we_read_the_real_packages_files(fw: ModuleType, tmp_path: Path) -> None:
    np, st, _ = _real()
    rng = np.random.default_rng(0)
    arrays = {"w64": rng.standard_normal((3, 4)), "b64": rng.standard_normal(4),
              "w32": rng.standard_normal((5, 2)).astype(np.float32), "b32": np.float32([0.1, -2.5])}
    path = tmp_path / "theirs.safetensors"
    st.save_file(arrays, str(path), metadata={"framework": "np"})
    got = io.load_safetensors(path, fw=fw)
    assert sorted(got) == sorted(arrays)
    for name, a in arrays.items():
        assert got[name].shape == a.shape
        assert hexes(got[name].tolist()) == hexes(a.astype(np.float64).tolist())
    assert io.load_safetensors_metadata(path) == {"framework": "np"}


@pytest.mark.parametrize("name", list(REFERENCE_REFUSES) + list(REFERENCE_READS))
def test_the_real_package_agrees_on_unusual_headers(name: str, tmp_path: Path) -> None:
    """The reference refuses exactly the files pyfw refuses above, and reads the others."""
    _, st, _ = _real()
    refused = name in REFERENCE_REFUSES
    path = tmp_path / f"{name}.safetensors"
    path.write_bytes(REFERENCE_REFUSES[name] if refused else REFERENCE_READS[name])
    try:
        st.load_file(str(path))
    except Exception:  # SafetensorError
        assert refused, "the reference refuses it"
    else:
        assert not refused, "the reference reads it"
