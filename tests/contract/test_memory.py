"""Memory exhaustion and lying containers: a ``MemoryError`` or a clean ``TypeError`` /
``ValueError``, never an abort ("memory allocation of ... failed") or a PanicException.

The crash-prone cases run in a child process under an address-space limit
(``RLIMIT_AS``, set in ``preexec_fn``) and a timeout, so that an abort fails one test
instead of killing the suite. The child prints the name of what it caught and exits 0.
"""

from __future__ import annotations

import numbers
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import pytest

import pyfw

resource = pytest.importorskip("resource")  # POSIX only

ROOT = Path(__file__).resolve().parents[2]
GIB = 1 << 30

CHILD = """
import sys
fw = __import__(sys.argv[1])
try:
{body}
except MemoryError as e:
    print("MemoryError:", str(e)[:200])
except BaseException as e:  # a PanicException is a BaseException
    print("UNEXPECTED", type(e).__name__, str(e)[:200])
    sys.exit(3)
else:
    print("no error")
"""


def run_child(backend: str, body: str, limit: int = 2 * GIB, timeout: float = 60) -> str:
    """Run ``body`` (Python with ``fw`` bound to the backend) in a child process whose
    address space is capped at ``limit`` bytes; return its output, which must show a
    normal exit."""
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    code = CHILD.format(body=textwrap.indent(textwrap.dedent(body), "    "))
    p = subprocess.run([sys.executable, "-c", code, backend], cwd=str(ROOT), preexec_fn=cap,
                       capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr[-2000:])
    return p.stdout


def backend_name(fw: ModuleType) -> str:
    return fw.__name__


# (id, body): each must end in MemoryError, caught in the child, in both backends.
EXHAUSTING = [
    ("tensor-shared-rows", """
        row = [1.0, 2.0]
        fw.tensor([row] * 10**8)
    """),
    ("gather-10M-indices", """
        t = fw.tensor([[0.5] * 100] * 2)
        t[[0] * 10**7]
    """),
    ("tolist", """
        t = fw.data.one_hot([0] * 700, 100_000)  # 560 MB of values, as much again to list them
        t.tolist()
    """),
    ("randperm-10**12", "fw.randperm(10**12)"),
    ("disk-10**12", "fw.data.disk(10**12)"),
    ("one_hot-10**12-classes", "fw.data.one_hot([0, 1], 10**12)"),
    ("one_hot-huge-label", "fw.data.one_hot([0, 2**70])"),
]


@pytest.mark.parametrize("body", [c[1] for c in EXHAUSTING], ids=[c[0] for c in EXHAUSTING])
def test_memory_exhaustion_is_a_memory_error(fw: ModuleType, body: str) -> None:
    out = run_child(backend_name(fw), body, limit=GIB)
    assert out.startswith("MemoryError"), out


def test_tolist_building_the_items_runs_out_cleanly() -> None:
    """pyfw_rs: the buffer fits, the Python floats do not (the path that used to abort)."""
    pytest.importorskip("pyfw_rs")
    out = run_child("pyfw_rs", """
        t = fw.data.one_hot([0] * 250, 100_000)  # 200 MB of values, 800 MB of float objects
        t.tolist()
    """, limit=GIB)
    assert out.startswith("MemoryError"), out


def test_fuzz_sizes_near_the_limit() -> None:
    """Random sizes around a 1 GiB address-space limit into every allocating entry point
    of both backends, in one child: only Exception subclasses come out, never an abort."""
    pytest.importorskip("pyfw_rs")
    out = run_child("pyfw_rs", """
        import random
        import pyfw, pyfw_rs
        rng = random.Random(0)
        sizes = [10**6, 4 * 10**7, 1.3e8, 2**31, 10**12, 2**62, 2**63 - 1, 2**64 - 1, 2**70]
        def calls(m, n):
            small = m.tensor([[1.0, 2.0], [3.0, 4.0]])
            return [
                lambda: m.randperm(n),
                lambda: m.data.disk(n),
                lambda: m.data.one_hot([0, 1], n),
                lambda: m.data.one_hot([n]),
                lambda: m.tensor([[1.0] * 16] * (n // 16)),
                lambda: small[[0] * (n // 16)],
                lambda: m.tensor([[0.0] * 1000] * 2)[[1] * min(n // 1000, 10**6)].tolist(),
                lambda: m.CrossEntropyLoss()(small, [n, 0]),
                lambda: m.SGD([(small, small)] * (n // 10**3), lr=0.1),
            ]
        caught = set()
        for _ in range(30):
            n = int(rng.choice(sizes))
            if n > 2 * 10**8 and n < 10**12:
                n = 10**12
            for m in (pyfw, pyfw_rs) if n >= 10**12 else (pyfw_rs,):
                f = rng.choice(calls(m, n))
                try:
                    f()
                except (MemoryError, ValueError, TypeError, OverflowError, IndexError) as e:
                    caught.add(type(e).__name__)
        print("no error", sorted(caught))
    """, limit=GIB, timeout=120)
    assert out.startswith("no error"), out


# ---------------------------------------------------------------------------------------
# Lying containers: both backends read a list's own storage, so they agree.


class LyingList(list):
    """A list whose ``__len__`` lies and whose ``__iter__`` and ``__getitem__`` give junk."""

    def __len__(self) -> int:
        return 2**62

    def __iter__(self) -> Any:
        return iter(["junk"])

    def __getitem__(self, i: Any) -> Any:
        raise RuntimeError("__getitem__ of a lying list")


class ShortList(list):
    def __len__(self) -> int:
        return 0


class Mutating:
    """A real number whose conversion to float changes the list being parsed."""

    def __init__(self, target: list, action: Callable[[list], None]) -> None:
        self.target, self.action = target, action

    def __float__(self) -> float:
        self.action(self.target)
        return 1.0


numbers.Real.register(Mutating)


def outcome(f: Callable[[ModuleType], Any], fw: ModuleType) -> Any:
    try:
        r = f(fw)
    except Exception as e:  # a PanicException (BaseException) fails the test
        return type(e)
    return r.tolist() if hasattr(r, "tolist") else r


def mutating_rows(fw: ModuleType, action: Callable[[list], None], which: str) -> Any:
    row0: list = [0.0, 0.0]
    rows = [row0, [2.0, 3.0], [4.0, 5.0]]
    row0[0] = Mutating(rows if which == "outer" else rows[1], action)
    return fw.tensor(rows)


LYING = [
    ("tensor-1d", lambda fw: fw.tensor(LyingList([1.0, 2.0]))),
    ("tensor-outer", lambda fw: fw.tensor(LyingList([[1.0, 2.0], [3.0, 4.0]]))),
    ("tensor-row0", lambda fw: fw.tensor([LyingList([1.0, 2.0]), [3.0, 4.0]])),
    ("tensor-row1", lambda fw: fw.tensor([[1.0, 2.0], LyingList([3.0, 4.0])])),
    ("tensor-short-row0", lambda fw: fw.tensor([ShortList([1.0, 2.0]), [3.0, 4.0]])),
    ("tensor-short-empty", lambda fw: fw.tensor(ShortList([]))),
    ("copy_", lambda fw: fw.tensor([[0.0, 0.0]]).copy_([LyingList([1.0, 2.0])])),
    ("gather", lambda fw: fw.tensor([[1.0], [2.0]])[LyingList([1, 0, 1])]),
    ("one_hot", lambda fw: fw.data.one_hot(LyingList([0, 2]))),
    ("one_hot-short", lambda fw: fw.data.one_hot(ShortList([1]))),
    ("cross-entropy-target", lambda fw: fw.CrossEntropyLoss()(fw.tensor([[1.0, 2.0]]), LyingList([1]))),
    ("mutate-outer-clear", lambda fw: mutating_rows(fw, list.clear, "outer")),
    ("mutate-outer-grow", lambda fw: mutating_rows(fw, lambda r: r.append([9.0, 9.0]), "outer")),
    ("mutate-outer-ragged", lambda fw: mutating_rows(fw, lambda r: r.append([9.0]), "outer")),
    ("mutate-next-row-grow", lambda fw: mutating_rows(fw, lambda r: r.append(9.0), "row")),
    ("mutate-next-row-clear", lambda fw: mutating_rows(fw, list.clear, "row")),
]


@pytest.mark.parametrize("case", [c[1] for c in LYING], ids=[c[0] for c in LYING])
def test_lying_containers_agree_without_panic(case: Callable[[ModuleType], Any]) -> None:
    rs = pytest.importorskip("pyfw_rs")
    expected = outcome(case, pyfw)
    got = outcome(case, rs)
    assert got == expected
    if isinstance(expected, type):
        assert issubclass(expected, (TypeError, ValueError, IndexError)), expected


# ---------------------------------------------------------------------------------------
# Messages that name the function and the real value, the same text in both backends.


def messages(f: Callable[[ModuleType], Any], exc: type) -> set:
    texts = set()
    for name in ("pyfw", "pyfw_rs"):
        fw = pytest.importorskip(name)
        with pytest.raises(exc) as e:
            f(fw)
        texts.add(str(e.value))
    assert len(texts) == 1, texts
    return texts


@pytest.mark.parametrize("labels, k, exc, text", [
    ([0, 2**70], 3, ValueError, "data.one_hot: labels[1] = 1180591620717411303424 is outside [0, 3)"),
    ([0, -(2**70)], -1, ValueError, "data.one_hot: labels[1] = -1180591620717411303424 is negative"),
    ([0, 2**70], -1, MemoryError,
     "data.one_hot: 2 labels x 1180591620717411303425 classes do not fit in memory"),
    ([5, 2**64], 2**70, MemoryError, "data.one_hot: 2 labels x 1180591620717411303424 classes do not fit in memory"),
    ([2**71], 2**70, ValueError,
     "data.one_hot: labels[0] = 2361183241434822606848 is outside [0, 1180591620717411303424)"),
    ([2**63 - 1], -1, MemoryError, "data.one_hot: 1 labels x 9223372036854775808 classes do not fit in memory"),
    ([1], -(2**70), ValueError, "data.one_hot: num_classes must be positive, got -1180591620717411303424"),
    ([3], 2, ValueError, "data.one_hot: labels[0] = 3 is outside [0, 2)"),
])
def test_one_hot_messages_show_the_real_values(labels: list, k: int, exc: type, text: str) -> None:
    assert messages(lambda fw: fw.data.one_hot(labels, k), exc) == {text}


@pytest.mark.parametrize("value, shown", [
    (10**400, "10000000000000000000...0000000000 (401 characters)"),
    (-(2**1100), "-1358298529049385849...2744165376 (333 characters)"),
    (2**1024, "17976931348623159077...4224137216 (309 characters)"),
])
def test_huge_numbers_in_tensor_are_named(value: int, shown: str) -> None:
    text = f"tensor: expected finite numbers, got {shown}, too large for a float"
    assert messages(lambda fw: fw.tensor([[1.0, value]]), ValueError) == {text}
    assert messages(lambda fw: fw.tensor([value]), ValueError) == {text}


def test_huge_number_past_the_int_digit_limit_is_named_by_its_bits() -> None:
    if not hasattr(sys, "set_int_max_str_digits"):
        pytest.skip("no int digit limit before Python 3.11")
    value = 1 << 20000
    text = "tensor: expected finite numbers, got an int of 20001 bits, too large for a float"
    assert messages(lambda fw: fw.tensor([value]), ValueError) == {text}


# ---------------------------------------------------------------------------------------
# In-process checks of the same paths at sizes that fail at once on any machine.


def test_impossible_sizes_are_memory_errors_in_process(fw: ModuleType) -> None:
    for f in (lambda: fw.randperm(2**63 - 1), lambda: fw.data.disk(2**64 - 1),
              lambda: fw.data.one_hot([0], 2**62), lambda: fw.data.one_hot([2**62])):
        with pytest.raises(MemoryError):
            f()


def test_iteration_is_lazy(fw: ModuleType) -> None:
    t = fw.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    it = iter(t)
    assert iter(it) is it
    assert next(it).tolist() == [1.0, 2.0]
    assert [r.tolist() for r in it] == [[3.0, 4.0], [5.0, 6.0]]
    assert list(it) == []
    assert list(fw.tensor([1.5, -0.0])) == [1.5, -0.0]


def test_tolist_keeps_every_bit(fw: ModuleType) -> None:
    values = [5e-324, -0.0, 1.7976931348623157e308, 0.1, -2.5]
    assert [v.hex() for v in fw.tensor(values).tolist()] == [v.hex() for v in values]
    rows = fw.tensor([values, values[::-1]]).tolist()
    assert all(type(v) is float for r in rows for v in r)
    assert [[v.hex() for v in r] for r in rows] == [[v.hex() for v in values], [v.hex() for v in values[::-1]]]
    assert fw.randperm(5, generator=fw.Generator(3)) == pyfw.randperm(5, generator=pyfw.Generator(3))
    labels = fw.data.disk(20, generator=fw.Generator(1))[1]
    assert labels == pyfw.data.disk(20, generator=pyfw.Generator(1))[1]
    assert all(type(v) is int for v in labels)


@pytest.mark.parametrize("n", [10**12, 2**62, 2**64 - 1])
def test_impossible_sizes_name_n_alike(n: int) -> None:
    assert messages(lambda fw: fw.data.disk(n), MemoryError) == \
        {f"data.disk: n = {n} is too large to hold in memory"}
    assert messages(lambda fw: fw.randperm(n), MemoryError) == \
        {f"randperm: n = {n} is too large to hold in memory"}
