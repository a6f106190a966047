"""`predict` and `plot --model` on an image model (the denoiser), in both backends: safetensors
in and out, the SVG grid of noisy, denoised and clean images, and one-line errors."""

from __future__ import annotations

import base64
import re
import struct
import zlib
from pathlib import Path
from types import ModuleType

import pytest

from conftest import BACKENDS, load_backend
from fwtest import hexes
from pyfw import cli, io, task

TINY_ARGS = ["--task", "denoise", "--n-train", "8", "--n-test", "7", "--image-size", "8", "--epochs", "1",
             "--channels", "4,8", "--quiet"]


@pytest.fixture(scope="module")
def denoiser(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny denoiser's model file, as `train --task denoise --save` writes it."""
    path = tmp_path_factory.mktemp("model") / "denoiser.safetensors"
    assert cli.main(["train", *TINY_ARGS, "--backend", "py", "--save", str(path)]) == 0
    return path


def images(fw: ModuleType, n: int = 5, size: int = 8) -> tuple:
    """``(noisy, clean)``: n images of ``data.denoise_pairs``."""
    a, _, c = fw.data.denoise_pairs(n, size, generator=fw.Generator(3))
    return a, c


def decode_png(data: bytes) -> tuple:
    """``(width, height, colour type, rows of bytes)`` of a PNG written with filter 0, CRCs checked."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        assert struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0] == zlib.crc32(kind + body)
        chunks.append((kind, body))
        pos += 12 + n
    assert [k for k, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    w, h, depth, colour, _, _, _ = struct.unpack(">IIBBBBB", chunks[0][1])
    assert depth == 8
    raw = zlib.decompress(chunks[1][1])
    stride = 1 + w * (3 if colour == 2 else 1)
    rows = [raw[i * stride:(i + 1) * stride] for i in range(h)]
    assert len(raw) == h * stride and all(r[0] == 0 for r in rows)
    return w, h, colour, [r[1:] for r in rows]


@pytest.mark.parametrize("backend", BACKENDS)
def test_predict_maps_images_to_images(backend: str, denoiser: Path, tmp_path: Path) -> None:
    fw = load_backend(backend)
    noisy, clean = images(fw)
    src, out = tmp_path / "in.safetensors", tmp_path / "out.safetensors"
    io.save_safetensors({"input": noisy, "clean": clean}, str(src))  # the tensor named input is taken
    assert cli.main(["predict", str(denoiser), "--input", str(src), "--output", str(out), "--backend", backend]) == 0
    got = io.load_safetensors(str(out), fw=fw)
    assert list(got) == ["output"] and got["output"].shape == (5, 3, 8, 8)
    with fw.no_grad():
        want = io.load_model(str(denoiser), fw=fw)(noisy)
    assert hexes(got["output"].tolist()) == hexes(want.tolist())
    only = tmp_path / "only.safetensors"
    io.save_safetensors({"images": noisy}, str(only))  # or the file's only tensor, whatever its name
    assert cli.main(["predict", str(denoiser), "--input", str(only), "--output", str(out), "--force",
                     "--backend", backend]) == 0
    assert hexes(io.load_safetensors(str(out), fw=fw)["output"].tolist()) == hexes(want.tolist())


@pytest.mark.parametrize("backend", BACKENDS)
def test_predict_errors_are_one_line(backend: str, denoiser: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture) -> None:
    fw = load_backend(backend)
    noisy, clean = images(fw)
    cases = {
        "two.safetensors": ({"a": noisy, "b": clean}, 1, "holds 2 tensors (a, b)"),
        "flat.safetensors": ({"x": noisy.reshape(5, 3, 64)}, 1, "has shape (5, 3, 64); images must be N x C x H x W"),
        "grey.safetensors": ({"x": noisy[:, 0:1]}, 1, "(5, 1, 8, 8), 1 channels; the model takes 3"),
    }
    out = tmp_path / "out.safetensors"
    for name, (tensors, status, said) in cases.items():
        path = tmp_path / name
        io.save_safetensors(tensors, str(path))
        argv = ["predict", str(denoiser), "--input", str(path), "--output", str(out), "--backend", backend]
        assert cli.main(argv) == status, name
        err = capsys.readouterr().err
        assert said in err and err.count("\n") == 1, err
        assert not out.exists()
    notes = tmp_path / "notes.safetensors"
    notes.write_bytes(b"not a safetensors file")
    assert cli.main(["predict", str(denoiser), "--input", str(notes), "--output", str(out), "--backend", backend]) == 1
    err = capsys.readouterr().err
    assert "cannot read it as a safetensors file of images" in err and err.count("\n") == 1
    src = tmp_path / "in.safetensors"
    io.save_safetensors({"input": noisy}, str(src))
    for argv, said in ((["--input", str(src)], "give --output OUT.safetensors"),
                       (["--input", str(src), "--output", str(tmp_path / "o.csv")], "give --output OUT.safetensors"),
                       (["--input", str(tmp_path / "rows.csv")], "give --input a safetensors file")):
        if "rows.csv" in argv[-1]:
            Path(argv[-1]).write_text("1,2\n")
        assert cli.main(["predict", str(denoiser), *argv, "--backend", backend]) == 2
        err = capsys.readouterr().err
        assert said in err and err.count("\n") == 1, err
    # a model of rows refuses a file of images
    mlp = tmp_path / "mlp.safetensors"
    io.save_model(task.make_model(fw, fw.Generator(0)), str(mlp))
    assert cli.main(["predict", str(mlp), "--input", str(src), "--backend", backend]) == 2
    assert "takes rows of numbers" in capsys.readouterr().err


def _pngs(svg: str) -> list:
    return [decode_png(base64.b64decode(m)) for m in re.findall(r'href="data:image/png;base64,([^"]+)"', svg)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_plot_draws_noisy_denoised_clean(backend: str, denoiser: Path, tmp_path: Path) -> None:
    svg_path = tmp_path / "d.svg"
    assert cli.main(["plot", "--model", str(denoiser), "-o", str(svg_path), "--backend", backend]) == 0
    svg = svg_path.read_text()
    for column in (">noisy<", ">denoised<", ">clean<", "validation images (seed 0, noise 0.1)"):
        assert column in svg
    pngs = _pngs(svg)
    assert len(pngs) == 3 * cli.PLOT_IMAGES and {p[:3] for p in pngs} == {(8, 8, 2)}
    # the third column is the clean validation image, pixel for pixel
    fw = load_backend(backend)
    _, clean = task.validation_images(fw, task.stored_config(str(denoiser)))
    first = clean.tolist()[0]
    assert pngs[2][3][0] == bytes(int(first[c][0][x] * 255 + 0.5) for x in range(8) for c in range(3))
    # --data: the file's images (input, with clean when it has it)
    noisy, clean = images(fw, 2)
    data = tmp_path / "imgs.safetensors"
    io.save_safetensors({"input": noisy, "clean": clean}, str(data))
    assert cli.main(["plot", "--model", str(denoiser), "--data", str(data), "-o", str(svg_path), "--force",
                     "--backend", backend]) == 0
    assert len(_pngs(svg_path.read_text())) == 6
    io.save_safetensors({"input": noisy}, str(data))
    assert cli.main(["plot", "--model", str(denoiser), "--data", str(data), "-o", str(svg_path), "--force",
                     "--backend", backend]) == 0
    svg = svg_path.read_text()
    assert len(_pngs(svg)) == 4 and ">output<" in svg


def test_plot_errors(denoiser: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    fw = load_backend("py")
    bare = tmp_path / "bare.safetensors"
    io.save_model(io.load_model(str(denoiser), fw=fw), str(bare))  # no stored run configuration
    svg = tmp_path / "d.svg"
    assert cli.main(["plot", "--model", str(bare), "-o", str(svg), "--backend", "py"]) == 2
    err = capsys.readouterr().err
    assert "give them with --data FILE.safetensors" in err and err.count("\n") == 1
    rows = tmp_path / "rows.csv"
    rows.write_text("0.1,0.2,1\n")
    assert cli.main(["plot", "--model", str(denoiser), "--data", str(rows), "-o", str(svg), "--backend", "py"]) == 2
    assert "is an image model" in capsys.readouterr().err
    assert not svg.exists()
