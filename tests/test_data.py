"""Data: the disk task (shapes, labels, draw order, determinism) and one_hot;
metrics: argmax_rows and error_rate."""

from __future__ import annotations

import math
from types import ModuleType

import pytest

import pyfw
from typing import Any
from conftest import BACKENDS, load_backend
from fwtest import state_hex
from pyfw.training import fit

R2 = 1.0 / (2.0 * math.pi)


def test_disk_shapes_and_labels(fw: ModuleType) -> None:
    x, y = fw.data.disk(1000, generator=fw.Generator(0))
    assert isinstance(x, fw.Tensor) and x.shape == (1000, 2)
    assert isinstance(y, list) and len(y) == 1000
    assert all(type(v) is int and v in (0, 1) for v in y)
    assert all(0.0 <= v < 1.0 for r in x.tolist() for v in r)


def test_disk_draw_order_and_label_formula(fw: ModuleType) -> None:
    """Point k is (random(), random()) from the generator; label 1 iff dx*dx + dy*dy < 1/(2 pi)."""
    x, y = fw.data.disk(500, generator=fw.Generator(3))
    g = fw.Generator(3)
    for (a, b), label in zip(x.tolist(), y):
        u, v = g.random(), g.random()
        assert (a.hex(), b.hex()) == (u.hex(), v.hex())
        dx, dy = u - 0.5, v - 0.5
        assert label == (1 if dx * dx + dy * dy < R2 else 0)
    g2 = fw.Generator(3)
    fw.data.disk(500, generator=g2)
    g3 = fw.Generator(3)
    for _ in range(1000):
        g3.next_u64()
    assert g2.next_u64() == g3.next_u64(), "disk(n) consumes exactly 2n draws"


def test_disk_is_half_inside(fw: ModuleType) -> None:
    _, y = fw.data.disk(10000, generator=fw.Generator(1))
    frac = sum(y) / len(y)
    assert 0.45 <= frac <= 0.55


def test_disk_deterministic(fw: ModuleType) -> None:
    a = fw.data.disk(200, generator=fw.Generator(7))
    b = fw.data.disk(200, generator=fw.Generator(7))
    c = fw.data.disk(200, generator=fw.Generator(8))
    assert a[0].tolist() == b[0].tolist() and a[1] == b[1]
    assert a[0].tolist() != c[0].tolist()


def test_disk_default_generator(fw: ModuleType) -> None:
    fw.manual_seed(4)
    a = fw.data.disk(50)
    b = fw.data.disk(50, generator=fw.Generator(4))
    assert a[0].tolist() == b[0].tolist() and a[1] == b[1]


def test_disk_single_point(fw: ModuleType) -> None:
    x, y = fw.data.disk(1, generator=fw.Generator(0))
    assert x.shape == (1, 2) and len(y) == 1


@pytest.mark.parametrize("n, exc", [(0, ValueError), (-1, ValueError), (2.5, TypeError), ("10", TypeError),
                                    (True, TypeError)], ids=["0", "-1", "2.5", "str", "bool"])
def test_disk_bad_count(fw: ModuleType, n: object, exc: type) -> None:
    with pytest.raises(exc):
        fw.data.disk(n, generator=fw.Generator(0))


# ---- one_hot ------------------------------------------------------------------------

def test_one_hot_values(fw: ModuleType) -> None:
    t = fw.data.one_hot([0, 1, 1, 0, 2], 3)
    assert isinstance(t, fw.Tensor) and t.shape == (5, 3)
    assert t.tolist() == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    assert all(type(v) is float for r in t.tolist() for v in r)


def test_one_hot_disk_labels(fw: ModuleType) -> None:
    _, y = fw.data.disk(100, generator=fw.Generator(0))
    t = fw.data.one_hot(y, 2).tolist()
    assert [r.index(1.0) for r in t] == y and all(sorted(r) == [0.0, 1.0] for r in t)


def test_one_hot_default_class_count_like_torch(fw: ModuleType) -> None:
    assert fw.data.one_hot([0, 3]).shape == (2, 4)
    assert fw.data.one_hot((1, 0), 2).tolist() == [[0.0, 1.0], [1.0, 0.0]]


@pytest.mark.parametrize("labels, k, exc", [
    ([0, 2], 2, ValueError),
    ([0, -1], 2, ValueError),
    ([-1], -1, ValueError),
    ([0, 1.0], 2, TypeError),
    ([0, "1"], 2, TypeError),
    ([0, True], 2, TypeError),
    ([0, None], 2, TypeError),
    ([], 2, ValueError),
    ([0, 1], 0, ValueError),
    ([0, 1], -2, ValueError),
    ([0, 1], 2.0, TypeError),
    (5, 2, TypeError),
], ids=["too-big", "negative", "negative-inferred", "float", "str", "bool", "none", "empty",
        "k0", "k-2", "k-float", "not-a-list"])
def test_one_hot_bad_input(fw: ModuleType, labels: object, k: object, exc: type) -> None:
    with pytest.raises(exc):
        fw.data.one_hot(labels, k)


# ---- metrics (pure Python, shared by both backends) ---------------------------------------

def test_argmax_rows_lists() -> None:
    assert pyfw.argmax_rows([[0.1, 0.9], [0.8, 0.2], [-1.0, -2.0, -0.5]]) == [1, 0, 2]


def test_argmax_rows_ties_take_the_lowest_index() -> None:
    assert pyfw.argmax_rows([[0.5, 0.5], [1.0, 1.0, 1.0], [0.0, 2.0, 2.0], [-0.0, 0.0]]) == [0, 0, 1, 0]


def test_argmax_rows_tensor(fw: ModuleType) -> None:
    assert pyfw.metrics.argmax_rows(fw.tensor([[0.1, 0.9], [0.8, 0.2]])) == [1, 0]


@pytest.mark.parametrize("bad", [[], [[]], [1.0, 2.0], [[1.0], []]], ids=["empty", "empty-row", "flat", "one-empty"])
def test_argmax_rows_bad(bad: list) -> None:
    with pytest.raises(ValueError):
        pyfw.argmax_rows(bad)


def test_argmax_rows_1d_tensor_is_rejected(fw: ModuleType) -> None:
    with pytest.raises(ValueError):
        pyfw.argmax_rows(fw.tensor([1.0, 2.0]))


def test_error_rate(fw: ModuleType) -> None:
    out = fw.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    assert pyfw.error_rate(out, [0, 1, 0, 1]) == 0.0
    assert pyfw.error_rate(out, [1, 1, 0, 1]) == 0.25
    assert pyfw.error_rate(out, [1, 0, 1, 0]) == 1.0
    assert pyfw.error_rate(out.tolist(), (0, 0, 0, 0)) == 0.5
    assert type(pyfw.error_rate(out, [0, 1, 0, 1])) is float


def test_error_rate_one_hot_targets(fw: ModuleType) -> None:
    out = fw.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    assert pyfw.error_rate(out, fw.data.one_hot([0, 0, 0], 2)) == 1 / 3
    assert pyfw.error_rate(out, [[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]) == 1 / 3


def test_error_rate_ties_count_as_class_zero() -> None:
    assert pyfw.error_rate([[0.5, 0.5]], [0]) == 0.0
    assert pyfw.error_rate([[0.5, 0.5]], [1]) == 1.0


def test_error_rate_exported_by_backend(fw: ModuleType) -> None:
    assert fw.error_rate([[0.1, 0.9]], [1]) == 0.0
    assert fw.argmax_rows([[0.1, 0.9]]) == [1]


@pytest.mark.parametrize("labels, exc", [([0, 1], ValueError), ([0, 1, 0, 1], ValueError), ([], ValueError),
                                         ([0, 1.0, 0], TypeError), ([0, "1", 0], TypeError)],
                         ids=["short", "long", "empty", "float", "str"])
def test_error_rate_bad_labels(labels: list, exc: type) -> None:
    with pytest.raises(exc):
        pyfw.error_rate([[0.1, 0.9], [0.8, 0.2], [0.5, 0.5]], labels)


# fw.data.TensorDataset and fw.data.DataLoader on both backends: a hand-written loop
# over a shuffling loader gives fit's bits, the order without shuffling, drop_last,
# one randperm per iter(), class-index targets gathered as lists, and bad arguments.

def setup(fw: ModuleType, seed: int = 0, n: int = 40, lr: float = 0.1) -> tuple:
    g = fw.Generator(seed)
    x, y = fw.data.disk(n, generator=g)
    model = fw.Sequential(fw.Linear(2, 25, generator=g), fw.ReLU(), fw.Linear(25, 25, generator=g), fw.Tanh(),
                          fw.Linear(25, 2, generator=g))
    return model, fw.MSELoss(), fw.SGD(model.param(), lr=lr), x, fw.data.one_hot(y, 2), y, g


class OneHotMSE:
    """MSELoss on one-hot targets that takes class indices (a list of ints) as targets."""

    def __init__(self, fw: ModuleType) -> None:
        self.fw, self.mse = fw, fw.MSELoss()

    def __call__(self, out: Any, labels: Any) -> float:
        assert type(labels) is list and all(type(v) is int for v in labels)
        return self.mse(out, self.fw.data.one_hot(labels, 2))

    def backward(self) -> Any:
        return self.mse.backward()


def loader_loop(fw: ModuleType, model: Any, crit: Any, opt: Any, loader: Any, epochs: int) -> list:
    """The training loop a user writes over a DataLoader."""
    model.train()
    n = len(loader.dataset)
    losses = []
    for _ in range(epochs):
        total = 0.0
        for xb, tb in loader:
            opt.zero_grad()
            loss = crit(model(xb), tb)
            model.backward(crit.backward())
            opt.step()
            total += loss * len(xb)
        losses.append(total / n)
    return losses


@pytest.mark.parametrize("n, batch, epochs", [(23, 10, 3), (20, 5, 2), (7, 10, 2), (5, 1, 2), (40, 40, 2)])
def test_loader_loop_equals_fit(fw: ModuleType, n: int, batch: int, epochs: int) -> None:
    a = setup(fw, 5, n)
    b = setup(fw, 5, n)
    la = fit(*a[:5], epochs=epochs, batch_size=batch, generator=a[6])
    model, crit, opt, x, t, _, g = b
    loader = fw.data.DataLoader(fw.data.TensorDataset(x, t), batch_size=batch, shuffle=True, generator=g)
    lb = loader_loop(fw, model, crit, opt, loader, epochs)
    assert [v.hex() for v in la] == [v.hex() for v in lb]
    assert state_hex(a[0]) == state_hex(model)
    assert a[6].next_u64() == g.next_u64(), "one randperm per epoch in both"


def test_loader_with_class_indices_equals_fit_with_one_hot(fw: ModuleType) -> None:
    a = setup(fw, 8, 30)
    b = setup(fw, 8, 30)
    la = fit(*a[:5], epochs=2, batch_size=7, generator=a[6])
    model, _, opt, x, _, y, g = b
    loader = fw.data.DataLoader(fw.data.TensorDataset(x, y), batch_size=7, shuffle=True, generator=g)
    lb = loader_loop(fw, model, OneHotMSE(fw), opt, loader, 2)
    assert [v.hex() for v in la] == [v.hex() for v in lb]
    assert state_hex(a[0]) == state_hex(model)


def test_default_generator_is_the_backends(fw: ModuleType) -> None:
    """Without generator= the loader draws from the backend's default generator, as fit does."""
    _, _, _, x, t, _, _ = setup(fw, 1, 12)
    loader = fw.data.DataLoader(fw.data.TensorDataset(x, t), batch_size=5, shuffle=True)
    fw.manual_seed(42)
    got = [xb.tolist() for xb, _ in loader]
    fw.manual_seed(42)
    perm = fw.randperm(12)
    assert got == [x[perm[i:i + 5]].tolist() for i in (0, 5, 10)]


def test_shuffle_draws_one_randperm_at_each_iter(fw: ModuleType) -> None:
    _, _, _, x, t, y, _ = setup(fw, 2, 11)
    g, ref = fw.Generator(7), fw.Generator(7)
    loader = fw.data.DataLoader(fw.data.TensorDataset(x, t, y), batch_size=4, shuffle=True, generator=g)
    for _ in range(2):  # two epochs, two different permutations
        it = iter(loader)
        perm = fw.randperm(11, generator=ref)
        state = (g.next_u64(), ref.next_u64())
        assert state[0] == state[1], "iter() draws the permutation before the first batch"
        batches = list(it)
        assert [len(b[0]) for b in batches] == [4, 4, 3]
        for k, (xb, tb, yb) in enumerate(batches):
            idx = perm[4 * k:4 * k + 4]
            assert xb.tolist() == x[idx].tolist() and tb.tolist() == t[idx].tolist()
            assert yb == [y[i] for i in idx]
    assert g.next_u64() == ref.next_u64()


def test_no_shuffle_keeps_order_and_draws_nothing(fw: ModuleType) -> None:
    _, _, _, x, t, y, _ = setup(fw, 3, 10)
    g = fw.Generator(3)
    loader = fw.data.DataLoader(fw.data.TensorDataset(x, y), batch_size=4, generator=g)
    got = list(loader)
    assert [xb.tolist() for xb, _ in got] == [x[0:4].tolist(), x[4:8].tolist(), x[8:10].tolist()]
    assert [yb for _, yb in got] == [y[0:4], y[4:8], y[8:10]]
    assert g.next_u64() == fw.Generator(3).next_u64()
    # batch_size=1 by default: one sample per batch, in order
    ones = list(fw.data.DataLoader(fw.data.TensorDataset(x, t)))
    assert len(ones) == 10 and [xb.tolist() for xb, _ in ones] == [[r] for r in x.tolist()]


@pytest.mark.parametrize("n, batch, drop, sizes", [
    (10, 4, False, [4, 4, 2]), (10, 4, True, [4, 4]), (8, 4, True, [4, 4]), (8, 4, False, [4, 4]),
    (3, 5, True, []), (3, 5, False, [3]), (7, 1, True, [1] * 7),
])
@pytest.mark.parametrize("shuffle", [False, True])
def test_drop_last(fw: ModuleType, n: int, batch: int, drop: bool, sizes: list, shuffle: bool) -> None:
    _, _, _, x, t, _, g = setup(fw, 4, n)
    loader = fw.data.DataLoader(fw.data.TensorDataset(x, t), batch, shuffle, drop, g)
    assert len(loader) == len(sizes)
    batches = list(loader)
    assert [len(xb) for xb, _ in batches] == sizes == [len(tb) for _, tb in batches]
    if not shuffle and batches:
        flat = [r for xb, _ in batches for r in xb.tolist()]
        assert flat == x.tolist()[:len(flat)]


def test_tensor_dataset_indexing(fw: ModuleType) -> None:
    _, _, _, x, t, y, _ = setup(fw, 6, 6)
    ds = fw.data.TensorDataset(x, y)
    assert len(ds) == 6 and ds.tensors[0] is x and ds.tensors[1] == y
    xi, yi = ds[2]
    assert xi.tolist() == x.tolist()[2] and yi == y[2]
    xs, ys = ds[1:3]
    assert xs.tolist() == x.tolist()[1:3] and ys == y[1:3]
    xg, yg = ds[[4, 0, 4]]
    assert xg.tolist() == [x.tolist()[i] for i in (4, 0, 4)] and yg == [y[4], y[0], y[4]]
    tds = fw.data.TensorDataset(x, t)
    assert tds[[1]][1].tolist() == [t.tolist()[1]]
    assert fw.data.TensorDataset(x, tuple(y)).tensors[1] == y  # a tuple of labels is kept as a list


def test_a_dataset_of_your_own(fw: ModuleType) -> None:
    """Any dataset with __len__ and a __getitems__ that takes a list of indices (torch's name for
    a batched fetch) is asked for whole batches; without a generator it shuffles with the default
    generator of the backend whose DataLoader it is."""

    class Squares:
        def __len__(self) -> int:
            return 9

        def __getitem__(self, i: int) -> int:
            raise AssertionError("the batched fetch is used")

        def __getitems__(self, idx: list) -> list:
            return [i * i for i in idx]

    g, ref = fw.Generator(1), fw.Generator(1)
    got = list(fw.data.DataLoader(Squares(), batch_size=4, shuffle=True, generator=g))
    perm = fw.randperm(9, generator=ref)
    assert got == [[i * i for i in perm[k:k + 4]] for k in (0, 4, 8)]
    assert list(fw.data.DataLoader(Squares(), batch_size=5)) == [[0, 1, 4, 9, 16], [25, 36, 49, 64]]
    loader = fw.data.DataLoader(Squares(), batch_size=9, shuffle=True)
    fw.manual_seed(3)
    got = list(loader)
    fw.manual_seed(3)
    assert got == [[i * i for i in fw.randperm(9)]]


def test_exported_by_both_backends(fw: ModuleType) -> None:
    import pyfw
    for name in ("TensorDataset", "DataLoader"):  # written once: pyfw_rs's only sets its default backend
        cls = getattr(fw.data, name)
        assert cls is getattr(pyfw.data, name) or (
            cls.__bases__ == (getattr(pyfw.data, name),)
            and set(vars(cls)) <= {"__module__", "__doc__", "__qualname__", "_default_backend"})
    assert {"TensorDataset", "DataLoader"} <= set(getattr(fw.data, "__all__", dir(fw.data)))


@pytest.mark.parametrize("kwargs, exc", [
    ({"batch_size": 0}, ValueError), ({"batch_size": -2}, ValueError), ({"batch_size": 1.5}, TypeError),
    ({"batch_size": True}, TypeError), ({"batch_size": None}, TypeError), ({"batch_size": "4"}, TypeError),
    ({"shuffle": "yes"}, TypeError), ({"shuffle": 1}, TypeError), ({"drop_last": None}, TypeError),
    ({"generator": 5}, TypeError),
], ids=["bs-0", "bs-neg", "bs-float", "bs-bool", "bs-none", "bs-str", "shuffle-str", "shuffle-int",
        "drop-none", "gen-int"])
def test_bad_loader_arguments(fw: ModuleType, kwargs: dict, exc: type) -> None:
    _, _, _, x, t, _, _ = setup(fw, 0, 5)
    with pytest.raises(exc):
        fw.data.DataLoader(fw.data.TensorDataset(x, t), **kwargs)


def test_bad_dataset(fw: ModuleType) -> None:
    _, _, _, x, t, y, _ = setup(fw, 0, 5)
    with pytest.raises(TypeError):
        fw.data.DataLoader(5)
    with pytest.raises(TypeError):
        fw.data.TensorDataset()
    with pytest.raises(TypeError, match="rows"):
        fw.data.TensorDataset(y, x)
    with pytest.raises(ValueError, match="rows"):
        fw.data.TensorDataset(x, y[:4])
    with pytest.raises(ValueError, match="rows"):
        fw.data.TensorDataset(x, t[0:3])
    with pytest.raises(TypeError):
        fw.data.TensorDataset(x, {"a": 1})


@pytest.mark.parametrize("other", BACKENDS)
def test_backends_do_not_mix(fw: ModuleType, other: str) -> None:
    ofw = load_backend(other)
    if ofw is fw:
        pytest.skip("same backend")
    _, _, _, x, t, _, _ = setup(fw, 0, 5)
    ox = ofw.tensor(t.tolist())
    with pytest.raises(TypeError):
        fw.data.TensorDataset(x, ox)
    with pytest.raises(TypeError, match="Generator"):
        fw.data.DataLoader(fw.data.TensorDataset(x, t), shuffle=True, generator=ofw.Generator(0))


def test_loader_with_cross_entropy_is_bit_identical_across_backends() -> None:
    """A DataLoader loop with CrossEntropyLoss on class indices and Adam: the same bits in
    both backends, and fit's bits."""
    runs = []
    for name in BACKENDS:
        fw = load_backend(name)
        for use_fit in (False, True):
            model, _, _, x, _, y, g = setup(fw, 13, 37)
            opt = fw.Adam(model.param(), lr=1e-2)
            crit = fw.CrossEntropyLoss()
            if use_fit:
                losses = fit(model, crit, opt, x, y, epochs=3, batch_size=6, generator=g)
            else:
                loader = fw.data.DataLoader(fw.data.TensorDataset(x, y), 6, shuffle=True, generator=g)
                losses = loader_loop(fw, model, crit, opt, loader, 3)
            runs.append(([v.hex() for v in losses], state_hex(model), g.next_u64()))
    assert all(r == runs[0] for r in runs)


# ---- map-style datasets, numpy and nested lists, pickling -----------------------------------

class PairsDataset:
    """A torch-style map-style dataset: __len__ and __getitem__(int) giving (row, label)."""

    def __init__(self, rows: list, labels: list) -> None:
        self.rows, self.labels = rows, labels

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple:
        if not isinstance(i, int):
            raise TypeError(f"index must be an int, got {type(i).__name__}")
        return self.rows[i], self.labels[i]


def test_a_map_style_dataset_trains_as_fit(fw: ModuleType) -> None:
    """A torch-style dataset of (row, label) pairs: the same batches, so the same bits, as fit."""
    a = setup(fw, 8, 30)
    b = setup(fw, 8, 30)
    la = fit(*a[:5], epochs=2, batch_size=7, generator=a[6])
    model, _, opt, x, _, y, g = b
    loader = fw.data.DataLoader(PairsDataset(x.tolist(), y), batch_size=7, shuffle=True, generator=g)
    lb = loader_loop(fw, model, OneHotMSE(fw), opt, loader, 2)
    assert [v.hex() for v in la] == [v.hex() for v in lb]
    assert state_hex(a[0]) == state_hex(model)


def test_a_list_of_pairs_collates_into_the_loaders_backend(fw: ModuleType) -> None:
    pairs = [([0.5, 1.5], 1), ([2.0, -1.0], 0), ([3.0, 4.0], 1)]
    (xb, yb), (xc, yc) = list(fw.data.DataLoader(pairs, batch_size=2))
    assert isinstance(xb, fw.Tensor) and xb.shape == (2, 2) and xb.tolist() == [[0.5, 1.5], [2.0, -1.0]]
    assert yb == [1, 0] and type(yb) is list and yc == [1] and xc.tolist() == [[3.0, 4.0]]
    # rows given as tensors of the backend stack into one tensor; floats become a column
    rows = [(fw.tensor([[float(i), 1.0]])[0], 0.25 * i, "s%d" % i) for i in range(3)]
    (xb, tb, names), = list(fw.data.DataLoader(rows, batch_size=3))
    assert xb.tolist() == [[0.0, 1.0], [1.0, 1.0], [2.0, 1.0]]
    assert isinstance(tb, fw.Tensor) and tb.shape == (3, 1) and tb.tolist() == [[0.0], [0.25], [0.5]]
    assert names == ["s0", "s1", "s2"]
    # a sample that is not a tuple is one field; dicts collate by key
    assert [b.tolist() for b in fw.data.DataLoader([[1.0, 2.0], [3.0, 4.0]], batch_size=2)] == [[[1.0, 2.0],
                                                                                                [3.0, 4.0]]]
    batch, = list(fw.data.DataLoader([{"x": [1.0], "y": 0}, {"x": [2.0], "y": 1}], batch_size=2))
    assert batch["x"].tolist() == [[1.0], [2.0]] and batch["y"] == [0, 1]


def test_each_backends_loader_builds_its_own_tensors() -> None:
    import pyfw
    for name in BACKENDS:
        fw = load_backend(name)
        xb, _ = next(iter(fw.data.DataLoader([([1.0, 2.0], 0)])))
        assert type(xb) is fw.Tensor
        ds = fw.data.TensorDataset([[1.0, 2.0], [3.0, 4.0]], [0, 1])
        assert type(ds.tensors[0]) is fw.Tensor and ds.tensors[1] == [0, 1]
    rs = load_backend("rs")
    # a tensor given decides, whichever backend's class builds the dataset
    assert type(pyfw.data.TensorDataset(rs.tensor([[1.0]]), [[2.0]]).tensors[1]) is rs.Tensor


def test_bad_samples_are_named(fw: ModuleType) -> None:
    with pytest.raises(TypeError, match="sample 1 of the batch is not a tuple of 2"):
        list(fw.data.DataLoader([([1.0], 0), [1.0]], batch_size=2))
    with pytest.raises(ValueError, match="DataLoader: field 0"):
        list(fw.data.DataLoader([([1.0], 0), ([1.0, 2.0], 1)], batch_size=2))
    two_d = fw.tensor([[1.0, 2.0]])
    with pytest.raises(TypeError, match="1-D"):
        list(fw.data.DataLoader([(two_d, 0), (two_d, 1)], batch_size=2))


def test_tensor_dataset_takes_nested_lists(fw: ModuleType) -> None:
    _, _, _, x, t, y, g = setup(fw, 2, 9)
    ds = fw.data.TensorDataset(x.tolist(), t.tolist(), tuple(y))
    assert [type(v) for v in ds.tensors] == [fw.Tensor, fw.Tensor, list]
    assert ds.tensors[0].tolist() == x.tolist() and ds.tensors[1].tolist() == t.tolist() and ds.tensors[2] == y
    with pytest.raises(ValueError, match="TensorDataset: item 0"):
        fw.data.TensorDataset([[1.0, 2.0], [3.0]])


def test_tensor_dataset_takes_numpy(fw: ModuleType) -> None:
    np = pytest.importorskip("numpy")
    _, _, _, x, t, y, g = setup(fw, 2, 9)
    ds = fw.data.TensorDataset(np.array(x.tolist()), np.array(y))
    assert type(ds.tensors[0]) is fw.Tensor and ds.tensors[0].tolist() == x.tolist()
    assert ds.tensors[1] == y and all(type(v) is int for v in ds.tensors[1])
    g2 = fw.Generator(4)
    got = [xb.tolist() for xb, _ in fw.data.DataLoader(ds, batch_size=4, shuffle=True, generator=g2)]
    ref = [xb.tolist() for xb, _ in fw.data.DataLoader(fw.data.TensorDataset(x, y), batch_size=4, shuffle=True,
                                                       generator=fw.Generator(4))]
    assert got == ref
    pairs = [(np.array(r), np.int64(v)) for r, v in zip(x.tolist(), y)]  # numpy rows and numpy labels
    (xb, yb), = list(fw.data.DataLoader(pairs, batch_size=9))
    assert xb.tolist() == x.tolist() and yb == y


@pytest.mark.parametrize("copier", ["pickle", "deepcopy"])
@pytest.mark.parametrize("kind", ["tensors", "pairs"])
def test_a_loader_pickles_and_deep_copies(fw: ModuleType, copier: str, kind: str) -> None:
    import copy
    import pickle
    _, _, _, x, t, y, _ = setup(fw, 3, 11)
    ds = fw.data.TensorDataset(x, t) if kind == "tensors" else PairsDataset(x.tolist(), y)
    loader = fw.data.DataLoader(ds, batch_size=4, shuffle=True, drop_last=True, generator=fw.Generator(6))
    twin = pickle.loads(pickle.dumps(loader)) if copier == "pickle" else copy.deepcopy(loader)
    assert type(twin) is type(loader) and twin.generator is not loader.generator
    assert (twin.batch_size, twin.shuffle, twin.drop_last, len(twin)) == (4, True, True, 2)
    for _ in range(2):
        a, b = list(loader), list(twin)
        assert [[v.tolist() if hasattr(v, "tolist") else v for v in batch] for batch in a] == \
               [[v.tolist() if hasattr(v, "tolist") else v for v in batch] for batch in b]
    assert loader.generator.next_u64() == twin.generator.next_u64()
