"""Files, written once for both backends: safetensors, model files, and JSON state dicts.

Everything here is the standard library (``struct``, ``json``) and works with the
tensors and modules of either backend. The formats, the checks the reader makes
and the metadata of a model file are in docs/FILES.md.

* **safetensors** (:func:`save_safetensors`, :func:`load_safetensors`,
  :func:`load_safetensors_metadata`): the Hugging Face ``safetensors`` format,
  byte for byte as its reference writer lays it out. We write F64 and read F64
  and F32 (widened to float64, exactly).
* **Model files** (:func:`save_model`, :func:`load_model`,
  :func:`load_preprocess`): a safetensors file whose tensors are the model's
  ``state_dict`` (torch.nn.Sequential's keys) and whose ``__metadata__`` holds
  the architecture and any fixed input preprocessing, so the file is usable
  without the code that trained it.
* **JSON state dicts** (:func:`save`, :func:`load`): the older, second format,
  kept because it is plain text that shows every weight exactly (for reading
  and diffing) and because other tools read it. It holds tensors only.

The backend of what is read is chosen by the ``fw`` argument, the module
itself (``pyfw`` or ``pyfw_rs``), as ``pyfw.task`` takes it. Without it, each
backend's ``io`` builds its own backend's objects: this module gives ``pyfw``
tensors and models, and ``pyfw_rs.io`` (a thin module over this one) gives
``pyfw_rs`` ones.

Every writer is atomic (:func:`write_atomic`). Every reader raises ``ValueError``
naming the file for a file that is truncated, corrupt or hostile, and reads
nothing into any existing object: loading into a model happens only after the
whole file has been checked.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import re
import stat
import struct
import sys
from types import ModuleType
from typing import Any, Iterator, Optional, Union

from .tensor import MAX_RANK, Tensor, _parse

PathLike = Union[str, "os.PathLike[str]"]

FORMAT = "pyfw.state_dict"
"""The ``"format"`` of a JSON state-dict file."""
VERSION = 1
"""The ``"version"`` of a JSON state-dict file."""

MAX_HEADER_SIZE = 100_000_000
"""The largest safetensors header read, in bytes: the reference implementation's cap."""

DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "I16": 16, "U16": 16, "F16": 16,
    "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "F64": 64, "I64": 64, "U64": 64, "C64": 64,
}
"""Every dtype the reference safetensors implementation knows, with its size in bits."""

READ_DTYPES = {"F64": "d", "F32": "f"}
"""The dtypes this reader converts (to float64), with their ``struct`` codes."""

MODEL_FORMAT = "model"
"""The value of the ``"pyfw.format"`` metadata key in a model file."""
MODEL_VERSION = "2"
"""The newest ``"pyfw.format_version"`` of a model file: version 2 adds the convolution family
(the members of the layer table whose ``_file_version`` is ``"2"``), whose files carry tensors of
rank 3 and 4. A model without those members is written as version ``"1"``, byte for byte as
before, so older pyfw still reads it."""
MODEL_VERSIONS = ("1", MODEL_VERSION)
"""The model file versions this module reads."""

# MAX_RANK (from tensor): the most dimensions a tensor read from a file has, as in both backends.

MAX_DEPTH = 64
"""The deepest nesting of ``Sequential`` in a model file that is written or read."""

_U64 = 1 << 64


# --------------------------------------------------------------------------- atomic writes

def write_atomic(path: PathLike, data: Union[str, bytes]) -> None:
    """Write ``data`` (text, as UTF-8, or bytes) to ``path`` through a temporary file and a rename.

    The temporary file is new, in the same folder, with the usual permissions
    (0o666 less the umask); after the rename the folder is synced too, where the
    system allows it. On any failure the temporary file is removed and ``path``
    keeps its old content. An ``OSError`` names ``path``, never the temporary file.
    """
    given = os.fspath(path)
    path = os.path.realpath(given)  # through a symlink, to the file it names
    if os.path.exists(path) and not os.path.isfile(path):
        _write_stream(path, given, data)  # a FIFO, /dev/stdout, ...: written, not replaced
        return
    folder = os.path.dirname(path)
    base = os.path.basename(path)
    tmp = os.path.join(folder, f".{base}.{os.getpid()}.{os.urandom(6).hex()}.part")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as e:
        raise _renamed(e, given) from None
    try:
        if isinstance(data, str):
            f = os.fdopen(fd, "w", encoding="utf-8")
        else:
            f = os.fdopen(fd, "wb")
        with f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise _renamed(e, given) from None
        raise
    _sync_folder(folder)
    _remove_stale_parts(folder, base)


def _write_stream(path: str, given: str, data: Union[str, bytes]) -> None:
    """Write ``data`` to a target that is not a regular file, in place."""
    try:
        with open(path, "w" if isinstance(data, str) else "wb",
                  **({"encoding": "utf-8"} if isinstance(data, str) else {})) as f:
            f.write(data)
    except OSError as e:
        raise _renamed(e, given) from None


def _remove_stale_parts(folder: str, base: str) -> None:
    """Remove the temporary files of ``base`` left by processes that were killed mid-write."""
    prefix = f".{base}."
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".part")):
            continue
        pid = name[len(prefix):].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        try:
            os.unlink(os.path.join(folder, name))
        except OSError:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True
    return True


def _renamed(e: OSError, path: str) -> OSError:
    """``e`` naming ``path``: instead of the temporary file, or where it named no file at all
    (a failed ``write``, ``fsync`` or ``close``: disk full, file too large)."""
    if e.errno is not None:
        try:
            return type(e)(e.errno, e.strerror or os.strerror(e.errno), path)
        except Exception:  # a subclass with another constructor
            return OSError(e.errno, e.strerror or os.strerror(e.errno), path)
    return OSError(f"{path}: {e or type(e).__name__}")


def _sync_folder(folder: str) -> None:
    try:
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


# --------------------------------------------------------------------------- backends

def _backend(fw: Optional[ModuleType], who: str) -> ModuleType:
    """The backend module ``fw`` (``pyfw`` for None), checked."""
    if fw is None:
        import pyfw
        return pyfw
    if not isinstance(fw, ModuleType) or not all(hasattr(fw, a) for a in ("tensor", "Sequential", "ACTIVATIONS")):
        raise TypeError(f"{who}: fw must be a backend module (pyfw or pyfw_rs), got {type(fw).__name__}")
    return fw


def _nest(rows: list, shape: tuple) -> list:
    """The nested list of a tensor of ``shape`` whose last-axis rows are ``rows`` (row-major):
    ``rows[0]`` for 1-D, ``rows`` for 2-D, the rows grouped axis by axis for higher ranks."""
    if len(shape) == 1:
        return rows[0]
    level = rows
    for size in reversed(shape[1:-1]):
        level = [level[i:i + size] for i in range(0, len(level), size)]
    return level


def _make_tensor(fw: ModuleType, rows: list, shape: tuple) -> Any:
    """A tensor of ``fw`` holding ``rows`` (already checked finite)."""
    if getattr(fw, "Tensor", None) is Tensor:
        return Tensor._wrap(rows, shape)
    return fw.tensor(_nest(rows, shape))


def _loaded_backends() -> Iterator[ModuleType]:
    """``pyfw``, and ``pyfw_rs`` if it has been imported (a module of it can exist only then)."""
    import pyfw
    yield pyfw
    rs = sys.modules.get("pyfw_rs")
    if rs is not None:
        yield rs


# --------------------------------------------------------------------------- safetensors: writing

def save_safetensors(tensors: dict, path: PathLike, metadata: Optional[dict] = None) -> None:
    """Write ``{name: tensor}`` to ``path`` as a safetensors file of F64 tensors, atomically.

    Values are tensors of either backend or nested lists (of any rank >= 1, finite),
    checked as ``tensor()`` checks its data before anything is written.
    ``metadata``, if given, is a ``{str: str}`` map stored as ``__metadata__``.

    The layout is the reference writer's: an 8-byte little-endian header length
    ``N``; ``N`` bytes of compact JSON (``__metadata__`` first, then the tensors by
    name, each ``{"dtype": "F64", "shape": [...], "data_offsets": [begin, end]}``),
    padded with spaces to a multiple of 8; then each tensor's float64 values,
    little-endian, row-major, in the same order. ``TypeError`` for a value of the
    wrong kind, ``ValueError`` for a wrong value; either way nothing is written.
    """
    who = "save_safetensors"
    if not isinstance(tensors, dict):
        raise TypeError(f"{who}: expected a dict of tensors, got {type(tensors).__name__}")
    staged = []
    for name, value in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"{who}: tensor names must be strings, got {type(name).__name__}")
        if name == "__metadata__":
            raise ValueError(f"{who}: '__metadata__' is reserved and cannot name a tensor")
        rows, shape = _parse(value, f"{who}[{name!r}]", any_rank=True)
        for r in rows:  # _parse trusts a pyfw Tensor, whose in-place arithmetic may overflow
            if not all(map(math.isfinite, r)):
                bad = next(v for v in r if not math.isfinite(v))
                raise ValueError(f"{who}[{name!r:.80}]: expected finite numbers, got {bad!r}")
        staged.append((name, rows, shape))
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise TypeError(f"{who}: metadata must be a dict of strings, got {type(metadata).__name__}")
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError(f"{who}: metadata keys and values must be strings, "
                                f"got {type(k).__name__} -> {type(v).__name__}")
    staged.sort(key=lambda item: item[0])  # the reference sorts by dtype, then by name
    header: dict = {} if metadata is None else {"__metadata__": dict(metadata)}
    chunks = []
    offset = 0
    for name, rows, shape in staged:
        flat = [v for r in rows for v in r]
        chunk = struct.pack(f"<{len(flat)}d", *flat)
        header[name] = {"dtype": "F64", "shape": list(shape), "data_offsets": [offset, offset + len(chunk)]}
        offset += len(chunk)
        chunks.append(chunk)
    try:
        text = json.dumps(header, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"{who}: a name or a metadata string is not valid Unicode ({e.reason})") from None
    text += b" " * (-len(text) % 8)
    if len(text) > MAX_HEADER_SIZE:
        raise ValueError(f"{who}: the header would take {len(text)} bytes, more than {MAX_HEADER_SIZE}")
    write_atomic(path, b"".join([struct.pack("<Q", len(text)), text, *chunks]))


# --------------------------------------------------------------------------- safetensors: reading

class _Header:
    """A checked safetensors header: the entries in file order and the metadata."""

    __slots__ = ("entries", "metadata")

    def __init__(self, entries: list, metadata: dict) -> None:
        self.entries = entries  # [(name, dtype, shape, begin, end)], sorted by offset
        self.metadata = metadata


def _bad(who: str, path: str, what: str) -> ValueError:
    return ValueError(f"{who}: {path} is not a valid safetensors file: {what}")


def _open_regular(path: str, who: str) -> tuple:
    """``(binary file, size)`` for a regular file; never blocks on a FIFO or a device."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{who}: {path} is not a regular file")
        return os.fdopen(fd, "rb"), st.st_size
    except BaseException:
        os.close(fd)
        raise


def _read_exact(f: Any, n: int, who: str, path: str, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise _bad(who, path, f"the file ends inside the {what} (it changed while being read?)")
    return data


def _pairs_no_duplicates(pairs: list) -> dict:
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


class _DuplicateKey(ValueError):
    pass


class _Refused(ValueError):
    """Valid JSON to Python that the reference safetensors reader refuses; the message says why."""


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _bounded_int(text: str) -> int:
    """A JSON integer of at most 400 digits (more would not even fit a float): Pythons before the
    int-size limit of 3.11 would spend quadratic time on a huge one."""
    if len(text) > 401:
        raise ValueError(f"an integer of {len(text)} characters")
    return int(text)


def _header_int(text: str) -> Union[int, float]:
    """A header integer as the reference reads it: ``-0`` is the float ``-0.0`` (so never a
    size or an offset), and one beyond the range of a float64 is refused."""
    v = _bounded_int(text)
    if v == 0 and text.startswith("-"):
        return -0.0
    try:
        float(v)
    except OverflowError:
        raise _Refused(f"holds an integer of {len(text)} digits ({text[:12]}...), out of the range of a "
                       f"float64") from None
    return v


def _header_float(text: str) -> float:
    """A header number with a fraction or an exponent; one beyond the range of a float64
    (``1e400``) is refused, as the reference refuses it."""
    v = float(text)
    if not math.isfinite(v):
        raise _Refused(f"holds the number {text:.40}, out of the range of a float64")
    return v


MAX_HEADER_NESTING = 127
"""The most arrays and objects nested in one another that a safetensors header holds (the
header object counts): the reference reader's JSON parser refuses more."""


_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_header_tree(doc: Any) -> None:
    """Refuse what the reference's JSON parser refuses and Python's takes: a lone surrogate
    (``\\ud800`` not followed by a low surrogate) in any key or string, and deeper nesting than
    :data:`MAX_HEADER_NESTING`. Iterative, so any depth is walked."""
    stack = [(doc, 0)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, str):
            strings: Any = (v,)
        elif isinstance(v, (dict, list)):
            depth += 1
            if depth > MAX_HEADER_NESTING:
                raise _Refused(f"nests arrays and objects more than {MAX_HEADER_NESTING} deep")
            if isinstance(v, dict):
                strings = v.keys()
                stack.extend((x, depth) for x in v.values())
            else:
                strings = ()
                stack.extend((x, depth) for x in v)
        else:
            continue
        for text in strings:
            if _SURROGATE.search(text):
                raise _Refused(f"holds a lone surrogate escape (a half of a UTF-16 pair) in the string "
                               f"{text!r:.80}")


def _parse_json(text: Union[str, bytes], what: str, header: bool = False, floats: bool = False) -> Any:
    """Strict JSON: no duplicate keys, no NaN or Infinity; any failure is a ValueError saying so.

    Bytes are UTF-8 (never UTF-16 or UTF-32 guessed from the first bytes). With ``header``,
    also exactly as strict as the reference safetensors reader: no byte order mark, no
    number out of the range of a float64, no lone surrogate, at most
    :data:`MAX_HEADER_NESTING` levels. With ``floats``, a :data:`FLOAT_TAG` object is read as
    the non-finite float it stands for (a checkpoint's JSON).
    """
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        if header and text.startswith("\ufeff"):
            raise _Refused("starts with a byte order mark (U+FEFF), which JSON does not allow")
        doc = json.loads(text, object_pairs_hook=_untag_pairs if floats else _pairs_no_duplicates,
                         parse_constant=_no_constants,
                         parse_int=_header_int if header else _bounded_int,
                         parse_float=_header_float if header else None)
        if header:
            _check_header_tree(doc)
        return doc
    except _DuplicateKey as e:
        raise ValueError(f"the {what} repeats the key {e.args[0]!r:.80}") from None
    except _Refused as e:
        raise ValueError(f"the {what} {e}") from None
    except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError, int limits
        raise ValueError(f"the {what} is not valid JSON ({type(e).__name__}: {str(e):.200})") from None


def _is_u64(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < _U64


def _read_header(f: Any, size: int, path: str, who: str) -> _Header:
    """Read and check the header as the reference reader does, then pyfw's own limits."""
    if size < 8:
        raise _bad(who, path, f"it has {size} bytes, fewer than the 8 of the header length")
    raw = _read_exact(f, 8, who, path, "header length")
    n = struct.unpack("<Q", raw)[0]
    hint = " (it looks like JSON: a pyfw JSON state dict is read by pyfw.io.load)" if raw[:1] == b"{" else ""
    if n > MAX_HEADER_SIZE:
        raise _bad(who, path, f"the header length {n} exceeds the limit of {MAX_HEADER_SIZE} bytes{hint}")
    if 8 + n > size:
        raise _bad(who, path, f"the header length {n} runs past the end of the file ({size} bytes){hint}")
    try:
        doc = _parse_json(_read_exact(f, n, who, path, "header"), "header", header=True)
    except ValueError as e:
        raise _bad(who, path, str(e)) from None
    if not isinstance(doc, dict):
        raise _bad(who, path, f"the header is a JSON {type(doc).__name__}, not an object")
    metadata = doc.pop("__metadata__", None)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _bad(who, path, "__metadata__ must map strings to strings")
    entries = []
    for name, info in doc.items():
        if not isinstance(info, dict):
            raise _bad(who, path, f"the entry of tensor {name!r:.80} is not an object")
        for key in ("dtype", "shape", "data_offsets"):
            if key not in info:
                raise _bad(who, path, f"the entry of tensor {name!r:.80} has no {key!r}")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
            raise _bad(who, path, f"tensor {name!r:.80} has the unknown dtype {dtype!r:.40}")
        if not isinstance(shape, list) or not all(_is_u64(d) for d in shape):
            raise _bad(who, path, f"tensor {name!r:.80}: shape must be a list of non-negative integers")
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_u64(o) for o in offsets):
            raise _bad(who, path, f"tensor {name!r:.80}: data_offsets must be two non-negative integers")
        entries.append((name, dtype, shape, offsets[0], offsets[1]))
    entries.sort(key=lambda e: (e[3], e[4]))
    limit = 8 * size  # no tensor holds more bits than the file
    end = 0
    for name, dtype, shape, begin, stop in entries:
        if begin != end or stop < begin:
            raise _bad(who, path, f"invalid data_offsets [{begin}, {stop}] of tensor {name!r:.80}: "
                                  f"expected data to begin at {end}, contiguous, without holes or overlaps")
        end = stop
        bits = DTYPE_BITS[dtype]
        if 0 in shape:
            bits = 0
        for d in shape:
            bits *= d
            if bits > limit:
                break
        if bits % 8 or bits // 8 != stop - begin:
            raise _bad(who, path, f"tensor {name!r:.80} of shape {shape!r:.80} and dtype {dtype} does not "
                                  f"match its {stop - begin} bytes of data (data_offsets [{begin}, {stop}])")
    if 8 + n + end != size:
        raise _bad(who, path, f"the tensors end at byte {8 + n + end} but the file has {size} bytes")
    for name, dtype, shape, _, _ in entries:
        if dtype not in READ_DTYPES:
            raise ValueError(f"{who}: {path}: tensor {name!r:.80} has dtype {dtype}; pyfw reads F64 and F32")
        if not shape:
            raise ValueError(f"{who}: {path}: tensor {name!r:.80} has shape []; pyfw tensors have at least one "
                             f"dimension")
        if len(shape) > MAX_RANK:
            raise ValueError(f"{who}: {path}: tensor {name!r:.80} has {len(shape)} dimensions; pyfw reads at most "
                             f"{MAX_RANK} (as many as a pyfw_rs tensor can have)")
        if 0 in shape:
            raise ValueError(f"{who}: {path}: tensor {name!r:.80} has shape {shape!r:.80}; pyfw tensors are never empty")
    return _Header(entries, metadata)


def _read_tensors(f: Any, header: _Header, path: str, who: str) -> dict:
    """``{name: (rows, shape)}`` in file order, every value finite."""
    out = {}
    isfinite = math.isfinite
    for name, dtype, shape, begin, stop in header.entries:
        data = _read_exact(f, stop - begin, who, path, f"data of tensor {name!r:.80}")
        count = 1
        for d in shape:
            count *= d
        values = struct.unpack(f"<{count}{READ_DTYPES[dtype]}", data)
        del data
        if not all(map(isfinite, values)):
            bad = next(v for v in values if not isfinite(v))
            raise ValueError(f"{who}: {path}: tensor {name!r:.80} holds {bad!r}; pyfw tensors are finite")
        cols = shape[-1]
        rows = [list(values[i:i + cols]) for i in range(0, count, cols)]
        out[name] = (rows, tuple(shape))
    return out


def _read(path: PathLike, who: str, data: bool = True) -> tuple:
    """``(header, {name: (rows, shape)} or None)`` of a checked safetensors file."""
    path = os.fspath(path)
    f, size = _open_regular(path, who)
    with f:
        header = _read_header(f, size, path, who)
        tensors = _read_tensors(f, header, path, who) if data else None
    return header, tensors


def load_safetensors(path: PathLike, fw: Optional[ModuleType] = None) -> dict:
    """Read a safetensors file: ``{name: tensor}`` in file order, tensors of the backend ``fw``.

    ``fw`` is ``pyfw`` (the default) or ``pyfw_rs``. F64 and F32 tensors are read
    (F32 widened exactly to float64), of any rank >= 1, with finite values. The whole
    file is checked before anything is returned: a truncated, corrupt or hostile
    file, or one pyfw cannot hold, gets a ``ValueError`` that names it (docs/FILES.md
    lists every check). A file that cannot be opened gets the ``OSError`` of ``open``.
    """
    fw = _backend(fw, "load_safetensors")
    _, tensors = _read(path, "load_safetensors")
    return {name: _make_tensor(fw, rows, shape) for name, (rows, shape) in tensors.items()}


def load_safetensors_metadata(path: PathLike) -> dict:
    """The ``__metadata__`` of a safetensors file (``{}`` if it has none), reading only its header.

    The header is checked as :func:`load_safetensors` checks it (offsets against
    the file size included); the tensor data is not read.
    """
    header, _ = _read(path, "load_safetensors_metadata", data=False)
    return dict(header.metadata)


# --------------------------------------------------------------------------- model files

def _like(x: Any, rows: list, shape: tuple) -> Any:
    """``rows`` of ``shape`` as the kind of thing ``x`` is: a tensor of its backend, or nested lists."""
    if isinstance(x, Tensor):
        return Tensor._wrap(rows, shape)
    data = rows[0] if len(shape) == 1 else rows
    for fw in _loaded_backends():
        if isinstance(x, fw.Tensor):
            return fw.tensor(data)
    return data


class Preprocess:
    """A fixed map applied to a model's inputs, stored in its model file.

    ``spec`` is None (the identity) or ``{"kind": "affine", "shift": s, "scale": c}``,
    which maps each input element ``x`` of column ``j`` to ``(x + s_j) * c_j``,
    exactly in this order (two roundings). ``s`` and ``c`` are finite numbers, or
    lists with one finite number per input column. The seed task's
    standardization ``(x - 0.5) * sqrt(12.0)`` is ``shift=-0.5, scale=math.sqrt(12.0)``
    (``x + -0.5`` is ``x - 0.5`` bit for bit).
    """

    __slots__ = ("spec",)

    def __init__(self, spec: Optional[dict] = None) -> None:
        self.spec: Optional[dict] = _check_preprocess(spec, "Preprocess")

    def __call__(self, x: Any) -> Any:
        """``x`` mapped: a tensor of the same backend for a tensor, nested lists for anything else.

        The identity returns ``x`` itself. A 1-D input is one row. ``ValueError``
        if per-column lists do not match the number of columns, or if a result
        overflows to infinity.
        """
        if self.spec is None:
            return x
        rows, shape = _parse(x, "Preprocess")
        cols = shape[-1]
        if self.spec["kind"] == "features":
            from .data import feature_rows
            if cols != 2:
                raise ValueError(f"Preprocess: the features map takes 2 columns (x1, x2), the input has {cols} "
                                 f"(shape {shape})")
            out = feature_rows(rows if len(shape) == 2 else [rows], self.spec["names"], "Preprocess")
            shape = (len(out), len(out[0])) if len(shape) == 2 else (len(out[0]),)
            return _like(x, out, shape)
        shift, scale = self.spec["shift"], self.spec["scale"]
        shifts = shift if isinstance(shift, list) else [shift] * cols
        scales = scale if isinstance(scale, list) else [scale] * cols
        if len(shifts) != cols or len(scales) != cols:
            raise ValueError(f"Preprocess: the affine map has {max(len(shifts), len(scales))} columns, "
                             f"the input has {cols} (shape {shape})")
        out = [[(v + s) * c for v, s, c in zip(r, shifts, scales)] for r in rows]
        if not all(math.isfinite(v) for r in out for v in r):
            raise ValueError("Preprocess: the affine map overflows on this input")
        return _like(x, out, shape)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Preprocess) and self.spec == other.spec

    def __repr__(self) -> str:
        return f"Preprocess({self.spec!r})"


def _finite(v: Any) -> Optional[float]:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    try:
        f = float(v)
    except OverflowError:
        return None
    return f if math.isfinite(f) else None


def _check_preprocess(spec: Any, who: str) -> Optional[dict]:
    """``spec`` normalized (numbers as floats), or ``TypeError``/``ValueError``."""
    if spec is None:
        return None
    if isinstance(spec, Preprocess):
        return spec.spec
    if not isinstance(spec, dict):
        raise TypeError(f"{who}: preprocess must be None or a dict such as "
                        f"{{'kind': 'affine', 'shift': -0.5, 'scale': 2.0}}, got {type(spec).__name__}")
    if spec.get("kind") == "features" and set(spec) == {"kind", "names"}:
        from .data import FEATURES
        names = spec["names"]
        if (not isinstance(names, list) or not names or any(n not in FEATURES for n in names)
                or len(set(names)) != len(names)):
            raise ValueError(f"{who}: preprocess names must be a list of distinct features among "
                             f"{', '.join(FEATURES)}, got {names!r:.200}")
        return {"kind": "features", "names": list(names)}
    if spec.get("kind") != "affine" or set(spec) != {"kind", "shift", "scale"}:
        raise ValueError(f"{who}: preprocess must have exactly the keys 'kind' ('affine'), 'shift' and "
                         f"'scale', got {spec!r:.200}")
    out: dict = {"kind": "affine"}
    for key in ("shift", "scale"):
        v = spec[key]
        if isinstance(v, list):
            vals = [_finite(t) for t in v]
            if not vals or any(t is None for t in vals):
                raise ValueError(f"{who}: preprocess {key} must be a finite number or a non-empty list "
                                 f"of them, got {v!r:.200}")
            out[key] = vals
        else:
            f = _finite(v)
            if f is None:
                raise ValueError(f"{who}: preprocess {key} must be a finite number or a non-empty list "
                                 f"of them, got {v!r:.200}")
            out[key] = f
    if isinstance(out["shift"], list) and isinstance(out["scale"], list) and len(out["shift"]) != len(out["scale"]):
        raise ValueError(f"{who}: preprocess shift has {len(out['shift'])} values, scale {len(out['scale'])}")
    return out


def _arg_names(cls: type) -> tuple:
    """The constructor arguments of an activation class: ``_params`` in pyfw, the signature in pyfw_rs."""
    params = getattr(cls, "_params", None)
    if params is None:
        params = tuple(inspect.signature(cls).parameters)
    return tuple(params)


def _member(fw: ModuleType, kind: str) -> Any:
    """The class of a layer kind a model file may name in backend ``fw`` (a member of the
    layer table but its container, or of the activation table), or None."""
    if kind != "Sequential" and kind in fw.LAYERS:
        return fw.LAYERS[kind]
    return fw.ACTIVATIONS.get(kind)


def _reference(kind: str) -> Any:
    """The pure-Python class of a layer kind, whose table entries (``_params``,
    ``_param_shapes``) describe the member in both backends."""
    from . import activations, modules
    return _member(modules, kind) if kind in modules.LAYERS else activations.ACTIVATIONS.get(kind)


def _arg_value(fw: ModuleType, v: Any) -> Any:
    """A constructor argument as a model file stores it. An argument named as a parameter
    slot (torch's ``bias=True``) reads as the slot, a tensor or None: stored as whether it is there."""
    if v is None or isinstance(v, fw.Tensor):
        return v is not None
    return list(v) if isinstance(v, tuple) else v


def _describe(m: Any, depth: int) -> dict:
    """The architecture entry of module ``m`` (see docs/FILES.md)."""
    if depth > MAX_DEPTH:
        raise ValueError(f"save_model: Sequential is nested more than {MAX_DEPTH} deep")
    cls = type(m)
    for fw in _loaded_backends():
        if cls is fw.Sequential:
            return {"kind": "Sequential", "layers": [_describe(c, depth + 1) for c in m]}
        if _member(fw, cls.__name__) is cls:
            return {"kind": cls.__name__, "args": {a: _arg_value(fw, getattr(m, a))
                                                   for a in _arg_names(_reference(cls.__name__))}}
    if any(isinstance(m, fw.Module) for fw in _loaded_backends()):
        # A class of the user's own: its state dict is stored, its code is not.
        return {"kind": "Module", "class": f"{cls.__module__}.{cls.__qualname__}"}
    raise TypeError(f"save_model: cannot describe a {cls.__module__}.{cls.__qualname__}: it is not a module "
                    f"of pyfw or pyfw_rs")


def _file_version(desc: dict) -> str:
    """The model file version an architecture needs: the newest ``_file_version`` of its members
    (``"1"`` for those without one)."""
    version, stack = "1", [desc]
    while stack:
        d = stack.pop()
        if d["kind"] == "Sequential":
            stack.extend(d["layers"])
        else:
            version = max(version, getattr(_reference(d["kind"]), "_file_version", "1"))
    return version


class _NeedsModel(ValueError):
    """An architecture holds a module of the user's own class, which a file cannot rebuild."""


def model_metadata(model: Any, preprocess: Any = None) -> dict:
    """The ``__metadata__`` that :func:`save_model` writes for ``model``: a ``{str: str}`` map.

    ``"pyfw.format": "model"``, ``"pyfw.format_version"`` (``"2"`` when the model holds a member
    of the convolution family, else ``"1"``: see :func:`_file_version`), ``"pyfw.architecture"``
    (JSON of the module tree) and ``"pyfw.preprocess"`` (JSON of the preprocessing spec, ``null`` for none). ``TypeError`` for a module that cannot be described.
    """
    arch = _describe(model, 0)
    spec = _check_preprocess(preprocess, "save_model")
    return {
        "pyfw.format": MODEL_FORMAT,
        "pyfw.format_version": _file_version(arch),
        "pyfw.architecture": json.dumps(arch, allow_nan=False),
        "pyfw.preprocess": json.dumps(spec, allow_nan=False),
    }


def save_model(model: Any, path: PathLike, preprocess: Any = None) -> None:
    """Write ``model`` as a model file: a safetensors file that stands alone.

    The tensors are ``model.state_dict()`` (torch.nn.Sequential's keys, F64), so
    ``torch.nn.Sequential(...).load_state_dict(safetensors.torch.load_file(path))``
    works. The metadata (:func:`model_metadata`) holds the architecture, every
    layer with its constructor arguments, and ``preprocess``: None, a
    :class:`Preprocess`, or its spec ``{"kind": "affine", "shift": s, "scale": c}``.

    ``model`` is a module of either backend. The members of the layer and the
    activation tables are described with their arguments; a module of any other
    class (a Python-defined one, or a subclass of a member) is stored as its state
    dict and its class name only, so :func:`load_model` then needs ``model=``, an
    instance to load into, as torch does. A Dropout's generator is not stored.
    Written atomically.
    """
    metadata = model_metadata(model, preprocess)
    save_safetensors(model.state_dict(), path, metadata)


def _model_meta(header: _Header, path: str, who: str) -> dict:
    meta = header.metadata
    if meta.get("pyfw.format") != MODEL_FORMAT:
        raise ValueError(f"{who}: {path} is not a pyfw model file (its metadata has no \"pyfw.format\": "
                         f"\"model\"); read its tensors with load_safetensors")
    if meta.get("pyfw.format_version") not in MODEL_VERSIONS:
        raise ValueError(f"{who}: {path} has model format version {meta.get('pyfw.format_version')!r:.40}, "
                         f"this pyfw reads {' and '.join(map(repr, MODEL_VERSIONS))}")
    return meta


def _plan(desc: Any, prefix: str, params: dict, fw: ModuleType, depth: int, where: str) -> None:
    """Check one architecture entry against ``fw`` and collect the parameter shapes it implies."""
    if depth > MAX_DEPTH:
        raise ValueError(f"Sequential is nested more than {MAX_DEPTH} deep")
    if not isinstance(desc, dict) or not isinstance(desc.get("kind"), str):
        raise ValueError(f"layer {where or 'root'} is not an object with a string 'kind'")
    kind = desc["kind"]
    if kind == "Sequential":
        if set(desc) != {"kind", "layers"} or not isinstance(desc["layers"], list):
            raise ValueError(f"Sequential {where or 'root'} must have exactly 'kind' and a list 'layers'")
        for i, child in enumerate(desc["layers"]):
            _plan(child, f"{prefix}{i}.", params, fw, depth + 1, f"{prefix}{i}")
        return
    if kind == "Module" and set(desc) == {"kind", "class"} and isinstance(desc["class"], str):
        raise _NeedsModel(f"layer {where or 'root'} is a {desc['class']:.200}, a class of your own, whose code a "
                          "model file does not hold: build one and pass it as load_model(path, model=...) to load "
                          "the file's weights into it")
    if set(desc) != {"kind", "args"} or not isinstance(desc["args"], dict):
        raise ValueError(f"layer {where or 'root'} ({kind:.40}) must have exactly 'kind' and a dict 'args'")
    args = desc["args"]
    ref = _reference(kind)
    if ref is None or _member(fw, kind) is None:
        raise ValueError(f"layer {where or 'root'} has the unknown kind {kind!r:.40}")
    unknown = [a for a in args if a not in _arg_names(ref)]
    if unknown:
        raise ValueError(f"{kind} {where or 'root'} has unknown arguments {unknown!r:.200}")
    shapes = getattr(ref, "_param_shapes", None)
    if shapes is not None:
        try:
            found = shapes(**args)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{kind} {where or 'root'} has bad arguments {args!r:.200}: {e}") from None
        for name, shape in found.items():
            params[f"{prefix}{name}"] = shape
    buffers = getattr(ref, "_buffer_shapes", None)
    if buffers is not None:  # the table's buffer slots (a BatchNorm1d's running statistics)
        for name, shape in buffers(**args).items():
            params[f"{prefix}{name}"] = shape


def _build(desc: dict, fw: ModuleType) -> Any:
    """The module an architecture entry describes (already checked by :func:`_plan`)."""
    kind = desc["kind"]
    if kind == "Sequential":
        return fw.Sequential(*[_build(c, fw) for c in desc["layers"]])
    args = desc["args"]
    ref = _reference(kind)
    if getattr(ref, "_param_shapes", None) is not None and "generator" in inspect.signature(ref).parameters:
        # A throwaway generator: building draws the initial values, which the file replaces,
        # and must not move the default generator.
        return _member(fw, kind)(**args, generator=fw.Generator(0))
    return _member(fw, kind)(**args)


def build_model(metadata: dict, tensors: dict, fw: Optional[ModuleType] = None, source: str = "build_model") -> Any:
    """The model that a model file's ``metadata`` describes, in backend ``fw``, loaded with ``tensors``.

    ``fw`` defaults to the backend whose ``io`` this is (``pyfw`` here, ``pyfw_rs`` in ``pyfw_rs.io``).

    ``metadata`` is as :func:`model_metadata` writes it; ``tensors`` maps names to
    tensors of either backend or nested lists, and must hold exactly the
    parameters the architecture implies, with their shapes. The architecture is
    checked against the tensors before any module is built. ``ValueError``
    (prefixed with ``source``) for a missing or invalid architecture, an unknown
    layer kind, or weights that do not match. The model is returned in eval mode.
    """
    fw = _backend(fw, source)
    if not isinstance(tensors, dict):
        raise TypeError(f"{source}: tensors must be a dict, got {type(tensors).__name__}")
    staged = {}
    for name, value in tensors.items():
        rows, shape = _parse(value, f"{source}[{name!r}]", any_rank=True)
        staged[name] = (rows, shape)
    return _build_checked(metadata, staged, fw, source)


def _build_checked(metadata: Any, tensors: dict, fw: ModuleType, source: str) -> Any:
    """:func:`build_model` for ``tensors`` given as ``{name: (rows, shape)}``."""
    if not isinstance(metadata, dict) or not isinstance(metadata.get("pyfw.architecture"), str):
        raise ValueError(f"{source}: no architecture (\"pyfw.architecture\") in the metadata")
    params: dict = {}
    try:
        desc = _parse_json(metadata["pyfw.architecture"], "architecture")
        _plan(desc, "", params, fw, 0, "")
    except RecursionError:
        raise ValueError(f"{source}: invalid architecture: nested too deeply") from None
    except _NeedsModel as e:
        raise ValueError(f"{source}: {e}") from None
    except ValueError as e:
        raise ValueError(f"{source}: invalid architecture: {e}") from None
    missing = [k for k in params if k not in tensors]
    extra = [k for k in tensors if k not in params]
    if missing or extra:
        raise ValueError(f"{source}: the weights do not match the architecture: missing {missing!r:.300}, "
                         f"unexpected {extra!r:.300}")
    for name, shape in params.items():
        if tensors[name][1] != shape:
            raise ValueError(f"{source}: {name!r:.80} has shape {tensors[name][1]}, the architecture needs {shape}")
    try:
        model = _build(desc, fw)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{source}: invalid architecture: {e}") from None
    model.load_state_dict({k: _nest(rows, shape) for k, (rows, shape) in tensors.items()})
    model.eval()
    return model


def load_model(path: PathLike, fw: Optional[ModuleType] = None, model: Any = None) -> Any:
    """Rebuild the model of a model file written by :func:`save_model`, in backend ``fw``.

    ``fw`` is ``pyfw`` or ``pyfw_rs``; by default, the backend whose ``io`` this
    is: ``pyfw.io.load_model`` builds pyfw models and ``pyfw_rs.io.load_model``
    pyfw_rs models. Returns the ``Sequential`` (or the single module that was
    saved) with the file's weights, in eval mode; its outputs are bit-identical
    to the saved model's in either backend. The file's preprocessing is read by
    :func:`load_preprocess`. Building draws nothing from the default generator. A
    file that is not a valid pyfw model file (not safetensors, no or an invalid
    architecture, an unknown layer kind, weights that do not match) gets a
    ``ValueError`` naming it.

    With ``model``, a module of either backend (a class of your own included),
    the file's tensors are loaded into it instead, with ``model.load_state_dict``,
    which checks every name and shape before it changes anything; the file needs
    no architecture (any safetensors file of the model's ``state_dict`` works).
    The model is put in eval mode and returned. A file that does not fit the
    model gets a ``ValueError`` naming the file, and the model is unchanged.
    ``fw``, if given too, must be the model's backend.
    """
    return _load_model(path, fw, model, None)


def _load_model(path: PathLike, fw: Optional[ModuleType], model: Any, default: Optional[ModuleType]) -> Any:
    """:func:`load_model` with ``default`` as the backend when neither ``fw`` nor ``model`` says (None: pyfw)."""
    who = "load_model"
    if model is not None:
        own = _backend_of_module(model, who)
        if fw is not None and _backend(fw, who) is not own:
            raise TypeError(f"{who}: fw is {fw.__name__} but model is a {own.__name__} "
                            f"{type(model).__name__}; leave fw out to load into the model")
        path = os.fspath(path)
        _, tensors = _read(path, who)
        try:
            model.load_state_dict({k: _nest(rows, shape) for k, (rows, shape) in tensors.items()})
        except (TypeError, ValueError) as e:
            raise ValueError(f"{who}: {path} does not fit the given {type(model).__name__}: {e}") from None
        model.eval()
        return model
    fw = _backend(default if fw is None else fw, who)
    path = os.fspath(path)
    header, tensors = _read(path, who)
    meta = _model_meta(header, path, who)
    _check_stored_preprocess(meta, path, who)
    return _build_checked(meta, tensors, fw, f"{who}: {path}")


def _backend_of_module(model: Any, who: str) -> ModuleType:
    """The backend (``pyfw`` or ``pyfw_rs``) whose ``Module`` ``model`` is."""
    from .training import backend_of  # training imports this module
    try:
        fw = backend_of(model)
    except TypeError:
        fw = None
    if fw is None or not isinstance(model, fw.Module):
        raise TypeError(f"{who}: model must be a module of pyfw or pyfw_rs, got {type(model).__name__}")
    return fw


def _check_stored_preprocess(meta: dict, path: str, who: str) -> Preprocess:
    try:
        return Preprocess(_parse_json(meta.get("pyfw.preprocess", "null"), "preprocess metadata"))
    except (TypeError, ValueError, RecursionError) as e:
        raise ValueError(f"{who}: {path}: invalid preprocess metadata: {e}") from None


def load_preprocess(path: PathLike) -> Preprocess:
    """The fixed input preprocessing stored in a model file, as a callable :class:`Preprocess`.

    ``model(load_preprocess(path)(x))`` gives the outputs for raw inputs ``x``;
    the identity if the file stores none. Reads only the file's header.
    ``ValueError`` naming the file if it is not a valid pyfw model file.
    """
    who = "load_preprocess"
    path = os.fspath(path)
    header, _ = _read(path, who, data=False)
    return _check_stored_preprocess(_model_meta(header, path, who), path, who)


# --------------------------------------------------------------------------- checkpoints

CHECKPOINT_FORMAT = "checkpoint"
"""The ``"pyfw.format"`` of a checkpoint file."""
CHECKPOINT_VERSION = "1"
"""The ``"pyfw.format_version"`` of a checkpoint file."""
FLOAT_TAG = "pyfw.float"
"""The key of the object that stands for a non-finite float in a checkpoint's JSON:
``{"pyfw.float": "inf"}``, ``{"pyfw.float": "-inf"}`` or ``{"pyfw.float": "nan:7ff8000000000000"}``
(a NaN with its 64 bits in hex)."""

_NAN_TEXT = re.compile(r"nan:[0-9a-f]{16}")


def _is_tensor(v: Any) -> bool:
    return hasattr(v, "tolist") and hasattr(v, "shape") and not isinstance(v, (list, tuple))


def _tag_floats(v: Any) -> Any:
    """``v`` with every non-finite float replaced by its :data:`FLOAT_TAG` object (tuples as lists)."""
    if isinstance(v, float):
        if math.isfinite(v):
            return v
        if v != v:
            return {FLOAT_TAG: f"nan:{struct.unpack('<Q', struct.pack('<d', v))[0]:016x}"}
        return {FLOAT_TAG: "inf" if v > 0 else "-inf"}
    if isinstance(v, dict):
        if len(v) == 1 and FLOAT_TAG in v:
            raise ValueError(f"an object whose only key is {FLOAT_TAG!r} stands for a non-finite float, "
                             f"so it cannot be stored as itself: {v!r:.80}")
        return {k: _tag_floats(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_tag_floats(x) for x in v]
    return v


def _untag_pairs(pairs: list) -> Any:
    """The ``object_pairs_hook`` of a checkpoint's JSON: a :data:`FLOAT_TAG` object is its float."""
    d = _pairs_no_duplicates(pairs)
    if len(d) != 1 or FLOAT_TAG not in d:
        return d
    text = d[FLOAT_TAG]
    if text == "inf":
        return math.inf
    if text == "-inf":
        return -math.inf
    if isinstance(text, str) and _NAN_TEXT.fullmatch(text):
        v = struct.unpack("<d", struct.pack("<Q", int(text[4:], 16)))[0]
        if v != v:
            return v
    raise ValueError(f"{{{FLOAT_TAG!r}: {text!r:.40}}} is not \"inf\", \"-inf\" or the bits of a NaN "
                     f"(\"nan:\" and 16 hex digits)")


def _checkpoint_text(doc: dict, who: str) -> str:
    """``doc`` as the JSON of a checkpoint, non-finite floats tagged; ``TypeError`` if it cannot be."""
    try:
        return json.dumps(_tag_floats(doc), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as e:
        raise TypeError(f"{who} cannot be written as JSON: {e}") from None


def _module_generators(model: Any) -> dict:
    """``{dotted name: generator}`` for every module of ``model`` (itself: ``""``) that holds its own
    generator in its ``generator`` attribute (a ``Dropout(p, generator=g)``)."""
    kinds = tuple(fw.Generator for fw in _loaded_backends())
    out: dict = {}
    stack = [("", model)]
    seen: set = set()
    while stack:
        name, m = stack.pop()
        if id(m) in seen:
            continue
        seen.add(id(m))
        g = getattr(m, "generator", None)
        if isinstance(g, kinds):
            out[name] = g
        children = getattr(m, "named_children", None)
        if callable(children):
            stack.extend((f"{name}.{k}" if name else str(k), c) for k, c in reversed(children()))
    return out


def save_checkpoint(path: PathLike, model: Any, optimizer: Any, scheduler: Any = None, generator: Any = None,
                    epoch: int = 0, losses: Optional[list] = None, extra: Optional[dict] = None) -> None:
    """Write everything a run needs to continue as a safetensors file, atomically.

    Tensors: ``model.<key>`` for ``model.state_dict()`` and ``optimizer.<i>.<name>``
    for every tensor buffer of ``optimizer.state_dict()``. The metadata entry
    ``"pyfw.checkpoint"`` is JSON of the rest: the optimizer's other state and its
    ``param_groups``, ``scheduler.state_dict()`` (or null), ``generator.get_state()``
    (or null), the state of the generator of every module that holds its own (a
    ``Dropout`` given ``generator=``), by the module's dotted name, ``epoch``, the
    epoch ``losses`` so far, and ``extra`` (any JSON, such as the run's
    configuration). Floats are written so that they read back exactly: a non-finite
    one (a scheduler's ``inf``, a ``nan`` loss) as a :data:`FLOAT_TAG` object. So every
    checkpoint written loads again. ``TypeError`` if ``extra`` or a state is not JSON;
    ``ValueError`` if a tensor is not finite; either way nothing is written.
    """
    who = "save_checkpoint"
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    osd = optimizer.state_dict()
    state: dict = {}
    for i, buffers in osd["state"].items():
        plain = {}
        for name, v in buffers.items():
            if _is_tensor(v):
                tensors[f"optimizer.{i}.{name}"] = v
            else:
                plain[name] = v
        state[str(i)] = plain
    doc = {
        "epoch": epoch, "losses": list(losses or []), "extra": extra,
        "optimizer": {"state": state, "param_groups": osd["param_groups"]},
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "generator": generator.get_state() if generator is not None else None,
        "module_generators": {name: g.get_state() for name, g in _module_generators(model).items()},
    }
    text = _checkpoint_text(doc, f"{who}: the run's state")
    try:
        save_safetensors(tensors, path, {"pyfw.format": CHECKPOINT_FORMAT,
                                         "pyfw.format_version": CHECKPOINT_VERSION, "pyfw.checkpoint": text})
    except ValueError as e:
        raise ValueError(f"{who}: {os.fspath(path)} is not written, a checkpoint holds finite tensors: {e}") from None


class _Checkpoint:
    """A checkpoint file read and checked, not yet loaded into anything."""

    __slots__ = ("doc", "epoch", "losses", "tensors")

    def __init__(self, doc: dict, epoch: int, losses: list, tensors: Optional[dict]) -> None:
        self.doc, self.epoch, self.losses, self.tensors = doc, epoch, losses, tensors


def _read_checkpoint(path: str, who: str, data: bool = True) -> _Checkpoint:
    """Read and check a checkpoint file (its tensors too, with ``data``); ``ValueError`` naming it."""
    header, raw = _read(path, who, data)
    meta = header.metadata
    kind = meta.get("pyfw.format")
    if kind != CHECKPOINT_FORMAT:
        what = (" written by save_model or 'train --save'" if kind == MODEL_FORMAT else
                " (its metadata has no \"pyfw.format\": \"checkpoint\")")
        found = "a pyfw model file" if kind == MODEL_FORMAT else "a safetensors file"
        raise ValueError(f"{who}: {path} is not a pyfw checkpoint: it is {found}{what}")
    if meta.get("pyfw.format_version") != CHECKPOINT_VERSION:
        raise ValueError(f"{who}: {path} has checkpoint format version "
                         f"{meta.get('pyfw.format_version')!r:.40}, this pyfw reads {CHECKPOINT_VERSION!r}")
    try:
        if "pyfw.checkpoint" not in meta:
            raise ValueError("there is no \"pyfw.checkpoint\" entry")
        doc = _parse_json(meta["pyfw.checkpoint"], "checkpoint metadata", floats=True)
        if not isinstance(doc, dict):
            raise ValueError(f"it is a JSON {type(doc).__name__}, not an object")
        missing = [k for k in ("epoch", "losses", "optimizer") if k not in doc]
        if missing:
            raise ValueError(f"it has no {', '.join(map(repr, missing))}")
        epoch, losses = doc["epoch"], doc["losses"]
        if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch < 2**63:
            raise ValueError(f"epoch must be a non-negative int, got {epoch!r:.40}")
        if not isinstance(losses, list) or not all(isinstance(v, float) for v in losses):
            raise ValueError("losses must be a list of floats")
        opt = doc["optimizer"]
        if not isinstance(opt, dict) or not isinstance(opt.get("state"), dict) or "param_groups" not in opt:
            raise ValueError("optimizer must be an object with \"state\" (an object) and \"param_groups\"")
        gens = doc.get("module_generators", {})
        if not isinstance(gens, dict):
            raise ValueError(f"module_generators must be an object, got {type(gens).__name__}")
    except (ValueError, TypeError, RecursionError) as e:
        raise ValueError(f"{who}: {path}: invalid checkpoint metadata ({e})") from None
    return _Checkpoint(doc, epoch, losses, raw)


def checkpoint_info(path: PathLike) -> dict:
    """``{"epoch": ..., "losses": [...], "extra": ...}`` of a checkpoint file, reading only its header.

    The header is checked as :func:`load_checkpoint` checks it; a file that is not a
    pyfw checkpoint (a model file, say) gets a ``ValueError`` naming it and saying so.
    """
    ck = _read_checkpoint(os.fspath(path), "checkpoint_info", data=False)
    return {"epoch": ck.epoch, "losses": list(ck.losses), "extra": ck.doc.get("extra")}


def _param_id(text: str, what: str) -> int:
    """The parameter index that a checkpoint writes as ``str(i)`` in ``text``; ``ValueError`` for any
    other spelling (``"01"``, ``"+1"``, ``" 1"``, ``"1_0"``), which would alias another index."""
    if not (isinstance(text, str) and text.isascii() and text.isdigit() and str(int(text)) == text):
        raise ValueError(f"{what} {text!r:.40} is not a parameter index as save_checkpoint writes it "
                         f"(decimal digits without a leading zero), so it could alias another")
    return int(text)


def load_checkpoint(path: PathLike, model: Any, optimizer: Any, scheduler: Any = None,
                    generator: Any = None) -> dict:
    """Restore a run written by :func:`save_checkpoint` into the given objects.

    Returns ``{"epoch": ..., "losses": [...], "extra": ...}``. The file is read and
    checked first (the epoch a non-negative int, the losses floats); if any object
    then refuses its state, every object gets its previous state back and the
    ``ValueError`` names the file. So a failed load changes nothing. The generators
    that modules of ``model`` hold (a ``Dropout`` given ``generator=``) are restored
    too; the file must hold a state for each of them, by the module's dotted name.
    """
    who = "load_checkpoint"
    path = os.fspath(path)
    ck = _read_checkpoint(path, who)
    doc = ck.doc
    fw = _backend_of_module(model, "load_checkpoint")
    tensors = {name: _make_tensor(fw, rows, shape) for name, (rows, shape) in ck.tensors.items()}
    model_sd = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    state: dict = {}
    try:
        for key, plain in doc["optimizer"]["state"].items():
            state[_param_id(key, "the state key")] = dict(plain)
        for name, v in tensors.items():
            if name.startswith("optimizer."):
                _, i, buf = name.split(".", 2)
                state.setdefault(_param_id(i, f"the index of tensor {name!r:.80}"), {})[buf] = v
        optimizer_sd = {"state": state, "param_groups": doc["optimizer"]["param_groups"]}
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{who}: {path}: invalid optimizer state ({e})") from None
    held = _module_generators(model)
    stored = doc.get("module_generators", {})
    if set(held) != set(stored):
        lacking = [k for k in held if k not in stored]
        if lacking:
            raise ValueError(f"{who}: {path} does not fit this run: it holds no state for the generator of "
                             f"module {lacking[0]!r:.80} (a module with its own generator), so the run could "
                             f"not continue bit for bit")
        raise ValueError(f"{who}: {path} does not fit this run: it holds the generators of modules "
                         f"{sorted(stored)!r:.200}, this model has its own generators in {sorted(held)!r:.200}")
    before = (model.state_dict(), optimizer.state_dict(),
              scheduler.state_dict() if scheduler is not None else None,
              generator.get_state() if generator is not None else None,
              {name: g.get_state() for name, g in held.items()})
    try:
        model.load_state_dict(model_sd)
        optimizer.load_state_dict(optimizer_sd)
        if scheduler is not None:
            if doc.get("scheduler") is None:
                raise ValueError("it holds no scheduler state")
            scheduler.load_state_dict(doc["scheduler"])
        if generator is not None:
            if doc.get("generator") is None:
                raise ValueError("it holds no generator state")
            generator.set_state(doc["generator"])
        for name, g in held.items():
            g.set_state(stored[name])
    except Exception as e:  # whatever an object refuses with, put every state back
        model.load_state_dict(before[0])
        optimizer.load_state_dict(before[1])
        if scheduler is not None:
            scheduler.load_state_dict(before[2])
        if generator is not None:
            generator.set_state(before[3])
        for name, g in held.items():
            g.set_state(before[4][name])
        raise ValueError(f"{who}: {path} does not fit this run: {e}") from None
    return {"epoch": ck.epoch, "losses": list(ck.losses), "extra": doc.get("extra")}


# --------------------------------------------------------------------------- JSON state dicts

def save(state_dict: dict, path: PathLike) -> None:
    """Write a state dict (values are tensors of either backend, or nested lists) to ``path`` as JSON.

    The second file format (docs/FILES.md): ``{"format": "pyfw.state_dict",
    "version": 1, "tensors": {name: {"shape": [...], "data": nested list}}}``,
    every float written as the shortest text that reads back to the same bits.
    Every value is checked as ``tensor()`` checks its data before anything is written.
    """
    if not isinstance(state_dict, dict):
        raise TypeError(f"save: expected a dict, got {type(state_dict).__name__}")
    tensors = {}
    for name, value in state_dict.items():
        if not isinstance(name, str):
            raise TypeError(f"save: keys must be strings, got {type(name).__name__}")
        rows, shape = _parse(value, f"save[{name!r}]", any_rank=True)
        tensors[name] = {"shape": list(shape), "data": _nest(rows, shape)}
    try:
        text = json.dumps({"format": FORMAT, "version": VERSION, "tensors": tensors}, allow_nan=False)
    except ValueError:
        raise ValueError("save: expected finite numbers, got nan or inf") from None
    write_atomic(path, text)


def _looks_like_safetensors(path: str) -> bool:
    """An 8-byte length that fits the file, then ``{``: the start of a safetensors file."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return False
    return len(head) == 9 and head[8:] == b"{" and 8 + struct.unpack("<Q", head[:8])[0] <= size


def load(path: PathLike) -> dict:
    """Read a JSON state dict written by :func:`save`: ``{name: nested list}``.

    Either backend's ``load_state_dict`` takes the result. Raises ``ValueError``
    naming the file for anything that is not such a file.
    """
    path = os.fspath(path)
    f, _ = _open_regular(path, "load")
    with f:
        raw = f.read()
    try:
        doc = json.loads(raw.decode("utf-8"), parse_int=_bounded_int)
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        hint = " (it looks like safetensors: read it with pyfw.io.load_safetensors)" if _looks_like_safetensors(path) else ""
        raise ValueError(f"load: {path} is not a pyfw state dict file ({type(e).__name__}: {e}){hint}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"load: {path} is not a pyfw state dict file")
    if doc.get("version") != VERSION:
        raise ValueError(f"load: {path} has version {doc.get('version')!r}, this pyfw reads {VERSION}")
    tensors = doc.get("tensors")
    if not isinstance(tensors, dict):
        raise ValueError(f"load: {path} has no tensors table")
    out = {}
    for name, entry in tensors.items():
        if not isinstance(entry, dict) or "data" not in entry or "shape" not in entry:
            raise ValueError(f"load: {path}: entry {name!r} is malformed")
        try:
            _, shape = _parse(entry["data"], f"load: {path}: entry {name!r}", any_rank=True)
        except TypeError as e:
            raise ValueError(str(e)) from None
        if list(shape) != entry["shape"]:
            raise ValueError(f"load: {path}: entry {name!r} has data of shape {list(shape)}, "
                             f"header says {entry['shape']}")
        out[name] = entry["data"]
    return out
