"""The layer family, tested from its tables: ``pyfw.LAYERS`` (with each member's
``_params``, ``_buffers`` and ``_param_shapes``) and ``pyfw_rs``'s ``LAYER_TABLE``
(generated from ``layer_table!`` in rust/modules.rs). Every member is built from
its signature, checked against both tables and the ``.pyi`` stubs, saved and
loaded, copied and pickled, checked with finite differences, and run natively
inside ``fit``. A new member is tested here without new test code: its example
arguments and the shape of its input sample, when it is not a row, are data of
tests/fwtest.py (``EXAMPLE_ARGS``, ``SAMPLES``)."""

from __future__ import annotations

import ast
import copy
import inspect
import math
import pickle
import random
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import load_backend
from fwtest import around, example, sd_hex, shaped, th

import pyfw

MEMBERS = [n for n in pyfw.LAYERS if n != "Sequential"]
STUBS = sorted((Path(__file__).resolve().parent.parent / "python" / "pyfw_rs").glob("*.pyi"))


def rs() -> ModuleType:
    return load_backend("rs")


def params(sig: inspect.Signature) -> list:
    """``(name, kind, default)`` of each parameter: what a signature must agree on."""
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


def parsed(text: str) -> inspect.Signature:
    """The signature written ``text`` (``"(a, b=1.0)"``)."""
    return inspect.signature(eval(f"lambda {text[1:-1]}: None"))  # noqa: S307 (the tables' own literals)


def stub_signature(name: str) -> inspect.Signature:
    """The signature of ``__init__`` of class ``name`` in pyfw_rs's stubs (``_native.pyi`` for a
    native class, ``conv.pyi`` for the convolution family), without ``self``."""
    nodes = [node for stub in STUBS for node in ast.parse(stub.read_text()).body]
    for node in nodes:
        if isinstance(node, ast.ClassDef) and node.name == name:
            for f in node.body:
                if isinstance(f, ast.FunctionDef) and f.name == "__init__":
                    a = f.args
                    names = [x.arg for x in a.args[1:]]
                    defaults = [ast.literal_eval(d) for d in a.defaults]
                    parts = [n if i < len(names) - len(defaults) else f"{n}={defaults[i - len(names) + len(defaults)]!r}"
                             for i, n in enumerate(names)]
                    if a.vararg is not None:
                        parts.append(f"*{a.vararg.arg}")
                    return parsed(f"({', '.join(parts)})")
    raise AssertionError(f"the stub has no class {name} with an __init__")


def test_both_tables_list_the_same_members() -> None:
    r = rs()
    table = r._native.LAYER_TABLE
    assert [row[0] for row in table] == list(r.LAYERS) == list(pyfw.LAYERS)
    for name in pyfw.LAYERS:
        assert getattr(pyfw, name) is pyfw.LAYERS[name] and getattr(r, name) is r.LAYERS[name]


def test_every_layer_class_is_a_member_of_the_table() -> None:
    """Each module class a backend exports, but an activation, a loss and the bases of modules of
    your own, is a line of the layer table: no layer has a listing of its own."""
    for fw in (pyfw, rs()):
        classes = {n for n in fw.__all__ if isinstance(getattr(fw, n), type) and issubclass(getattr(fw, n), fw.Module)}
        assert classes - set(fw.ACTIVATIONS) - set(fw.LOSSES) - {"Module", "ModuleList"} == set(fw.LAYERS)


@pytest.mark.parametrize("name", list(pyfw.LAYERS))
def test_signatures_match_the_tables_and_the_stub(name: str) -> None:
    """pyfw's constructor, the Rust table's signature, the native class's text signature
    and the stub's ``__init__`` agree on names, kinds and defaults."""
    r = rs()
    row = next(row for row in r._native.LAYER_TABLE if row[0] == name)
    want = params(inspect.signature(pyfw.LAYERS[name]))
    assert params(parsed(row[3])) == want
    assert params(inspect.signature(r.LAYERS[name])) == want
    assert params(stub_signature(name)) == want


@pytest.mark.parametrize("name", MEMBERS)
def test_slots_match_the_tables_and_the_state_dict(name: str) -> None:
    r = rs()
    _, slots, buffers, _ = next(row for row in r._native.LAYER_TABLE if row[0] == name)
    ref = pyfw.LAYERS[name]
    assert list(ref._buffers) == buffers
    m = example(pyfw, name)
    # The arguments as a model file stores them (a bias slot reads as whether it is there).
    args = {a: pyfw.io._arg_value(pyfw, getattr(m, a)) for a in ref._params}
    shapes = ref._param_shapes(**args) if slots else {}
    assert list(shapes) == slots
    for fw in (pyfw, r):
        m = example(fw, name)
        sd = m.state_dict()
        assert list(sd) == slots + buffers
        for key, shape in shapes.items():
            assert tuple(sd[key].shape) == shape
        assert [n for n, _ in m.named_parameters()] == slots


@pytest.mark.parametrize("name", MEMBERS)
@pytest.mark.parametrize("backend", ["py", "rs"])
def test_members_save_load_copy_and_pickle(name: str, backend: str, tmp_path: Path) -> None:
    fw = load_backend(backend)
    m = example(fw, name)
    m.eval()
    x = shaped(fw, name, [[0.5, -1.0, 2.0], [0.25, 0.0, -3.0]])
    want = th(m(x))
    path = tmp_path / "m.safetensors"
    fw.io.save_model(m, path)
    loaded = fw.io.load_model(path)
    assert type(loaded) is type(m) and sd_hex(loaded.state_dict()) == sd_hex(m.state_dict())
    for other in (copy.deepcopy(m), pickle.loads(pickle.dumps(m)), loaded):
        assert type(other) is type(m) and repr(other) == repr(m)
        assert th(other(x)) == want


@pytest.mark.parametrize("name", MEMBERS)
def test_members_train_natively_and_bit_identically(name: str) -> None:
    """``fit`` of ``Linear(2, 3) -> member -> Linear(3, 2)`` (with the layers of :func:`around`
    for a member that takes samples of another shape; a member that draws, in training mode)
    gives the same bits (losses, state, the optimizer's state) in pyfw, in pyfw_rs's Python
    loop (an ``on_batch`` makes ``fit`` run it) and in pyfw_rs's native epoch, which runs."""
    r = rs()
    out = []
    for fw, on_batch in ((pyfw, None), (r, lambda *_: None), (r, None)):
        fw.manual_seed(0)
        before, after = around(fw, name)
        model = fw.Sequential(fw.Linear(2, 3), *before, example(fw, name), *after, fw.Linear(3, 2))
        x = fw.tensor([[0.1 * i, 0.2 - 0.05 * i] for i in range(12)])
        y = fw.tensor([[0.3 * (i % 3), 0.1 * (i % 2)] for i in range(12)])
        opt = fw.Adam(model.parameters(), lr=0.01)
        losses = fw.fit(model, fw.MSELoss(), opt, x, y, epochs=2, batch_size=5, generator=fw.Generator(1),
                        on_batch=on_batch)
        moments = {i: sd_hex({k: v for k, v in st.items() if hasattr(v, "tolist")})
                   for i, st in opt.state_dict()["state"].items()}
        out.append(([v.hex() for v in losses], sd_hex(model.state_dict()), moments))
        if fw is r and on_batch is None:
            native = r._native._train_epoch(model, r.MSELoss(), opt, x, y, 5, r.Generator(1), True)
            assert native is not None
    assert out[0] == out[1] == out[2]


def wider(fw: ModuleType, name: str) -> Any:
    """An input one column (or channel) wider than :func:`example`'s members take."""
    return shaped(fw, name, [[0.5, -1.0, 2.0, 1.5], [0.25, 0.0, -3.0, 0.75]])


@pytest.mark.parametrize("name", MEMBERS)
def test_members_pass_gradcheck(fw: ModuleType, name: str) -> None:
    """Central differences agree with every member's input and parameter gradients (in eval
    mode: a member that draws is refused in training mode)."""
    m = example(fw, name)
    m.eval()
    x = shaped(fw, name, [[0.5, -1.0, 2.0], [0.25, 0.125, -3.0], [1.0, 2.0, 0.5]])
    assert fw.gradcheck(m, x)


@pytest.mark.parametrize("name", [n for n in MEMBERS if list(example(pyfw, n).parameters())])
def test_a_member_with_parameters_refuses_an_input_of_another_width(name: str) -> None:
    """The same exception type in both backends, naming the member."""
    errors = []
    for fw in (pyfw, rs()):
        with pytest.raises((ValueError, TypeError)) as e:
            example(fw, name)(wider(fw, name))
        assert name in str(e.value)
        errors.append(type(e.value))
    assert errors[0] is errors[1]


@pytest.mark.parametrize("name", MEMBERS)
@pytest.mark.parametrize("bad", [0, -2, 2.5, "3", None])
def test_bad_required_arguments_get_the_same_error(name: str, bad: Any) -> None:
    """Each required argument, given a bad value, gets the same exception type in both backends."""
    required = [p.name for p in inspect.signature(pyfw.LAYERS[name]).parameters.values()
                if p.default is p.empty and p.kind is p.POSITIONAL_OR_KEYWORD]
    for arg in required:
        errors = []
        for fw in (pyfw, rs()):
            kw = {a: 3 for a in required}
            kw[arg] = bad
            with pytest.raises((ValueError, TypeError)) as e:
                fw.LAYERS[name](**kw)
            errors.append(type(e.value))
        assert errors[0] is errors[1], (arg, bad, errors)


@pytest.mark.parametrize("bias", [False, None, 0])
def test_linear_without_bias(bias: Any, tmp_path: Path) -> None:
    """``Linear(in, out, bias=False)``: ``y = x W^T`` (sums from 0.0), only ``weight`` in the
    state dict and the parameters, the weight drawn as with a bias (the bias is not drawn),
    bit-identical in both backends, trained natively, and saved, loaded and copied."""
    out = {}
    for fw in (pyfw, rs()):
        with_bias = fw.Linear(3, 2, generator=fw.Generator(5))
        m = fw.Linear(3, 2, bias=bias, generator=fw.Generator(5))
        assert m.bias is None and m.bias_grad is None
        assert repr(m) == "Linear(in_features=3, out_features=2, bias=False)"
        assert list(m.state_dict()) == ["weight"] and len(m.param()) == 1
        assert th(m.weight) == th(with_bias.weight)
        x = fw.tensor([[0.5, -1.0, 2.0], [0.0, 0.0, 0.0]])
        y = m(x)
        assert th(y)[1] == [float(0.0).hex()] * 2
        assert fw.gradcheck(m, x)
        model = fw.Sequential(m, fw.Tanh(), fw.Linear(2, 1, bias=False, generator=fw.Generator(6)))
        opt = fw.SGD(model.parameters(), lr=0.1)
        data, target = fw.tensor([[0.1 * i, 0.3, -0.2 * i] for i in range(8)]), fw.tensor([[0.5]] * 8)
        fw.fit(model, fw.MSELoss(), opt, data, target, epochs=2, batch_size=3, generator=fw.Generator(1))
        if fw is not pyfw:
            twin = copy.deepcopy((model, opt))
            assert fw._native._train_epoch(twin[0], fw.MSELoss(), twin[1], data, target, 3, None, False) is not None
        path = tmp_path / f"{fw.__name__}.safetensors"
        fw.io.save_model(model, path)
        for other in (fw.io.load_model(path), copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
            assert repr(other) == repr(model) and sd_hex(other.state_dict()) == sd_hex(model.state_dict())
        out[fw.__name__] = (th(y), sd_hex(model.state_dict()))
    assert out["pyfw"] == out["pyfw_rs"]


def test_flatten_and_unflatten_reshape_and_back(fw: ModuleType) -> None:
    """``Flatten`` and ``Unflatten`` move no value: forward gives the input's values in the new
    shape, backward the gradient's in the input's shape, as torch's ``nn.Flatten``/``nn.Unflatten``."""
    vals = [[[float(i * 12 + j * 4 + k) for k in range(4)] for j in range(3)] for i in range(2)]
    x = fw.tensor(vals)
    flat = fw.Flatten()
    y = flat(x)
    assert tuple(y.shape) == (2, 12) and y.tolist() == [sum(r, []) for r in vals]
    un = fw.Unflatten(1, [3, -1])
    assert repr(un) == "Unflatten(dim=1, unflattened_size=(3, -1))" and repr(flat) == "Flatten(start_dim=1, end_dim=-1)"
    z = un(y)
    assert tuple(z.shape) == (2, 3, 4) and z.tolist() == vals
    g = un.backward(z)
    assert tuple(g.shape) == (2, 12) and g.tolist() == y.tolist()
    assert flat.backward(g).tolist() == vals
    assert tuple(fw.Flatten(0, 1)(x).shape) == (6, 4)
    assert tuple(fw.Unflatten(-1, (2, 1, 2))(x).shape) == (2, 3, 2, 1, 2)


@pytest.mark.parametrize("make, arg, error", [
    (lambda fw: fw.Flatten(2, 1), "x", ValueError),
    (lambda fw: fw.Flatten(start_dim=3), "x", IndexError),
    (lambda fw: fw.Unflatten(1, (4,)), "x", ValueError),
    (lambda fw: fw.Unflatten(2, (2, -1)), "x", ValueError),
    (lambda fw: fw.Flatten(), "backward", RuntimeError),
    (lambda fw: fw.Flatten(), "grad", ValueError),
    (lambda fw: fw.Unflatten(1, 3), None, TypeError),
    (lambda fw: fw.Unflatten(1, ()), None, ValueError),
    (lambda fw: fw.Unflatten(1, (-1, -1)), None, ValueError),
    (lambda fw: fw.Unflatten(1, (0, 2)), None, ValueError),
    (lambda fw: fw.Unflatten(1, (2, True)), None, TypeError),
    (lambda fw: fw.Flatten(1.0), None, TypeError),
])
def test_flatten_and_unflatten_errors_agree(make: Any, arg: Any, error: type) -> None:
    """The same exception and message in both backends, naming the class."""
    messages = []
    for fw in (pyfw, rs()):
        with pytest.raises(error) as e:
            m = make(fw)
            x = fw.tensor([[[1.0, 2.0, 3.0]] * 3] * 2)
            if arg == "x":
                m(x)
            elif arg == "backward":
                m.backward(x)
            else:
                m(x)
                m.backward(fw.tensor([[1.0] * 9]))
        assert "latten" in str(e.value)
        messages.append(str(e.value))
    assert messages[0] == messages[1]


def test_reshapes_train_bit_identically_natively_or_not() -> None:
    """A reshape that maps a batch of samples to as many samples (``Flatten()``, ``Unflatten(-1,
    (C,))``, or ``Unflatten(1, (2, 3))`` into samples of rank 2) runs in the native epoch of
    ``fit``; one that merges the samples of a batch (``Flatten(0, 1)``) falls back to the Python
    loop (None). All give the same bits in both backends, and so does a native Sequential on an
    input of rank 3."""
    r = rs()
    out = {}
    for fw in (pyfw, r):
        x = fw.tensor([[0.1 * i, 0.2 - 0.05 * i] for i in range(12)])
        y = fw.tensor([[0.3 * (i % 3), 0.1 * (i % 2)] for i in range(12)])
        models = [fw.Sequential(fw.Linear(2, 3, generator=fw.Generator(1)), fw.Flatten(), fw.Unflatten(-1, (3,)),
                                fw.Tanh(), fw.Linear(3, 2, generator=fw.Generator(2))),
                  fw.Sequential(fw.Linear(2, 6, generator=fw.Generator(3)), fw.Unflatten(1, (2, 3)),
                                fw.Tanh(), fw.Flatten(), fw.Linear(6, 2, generator=fw.Generator(4))),
                  fw.Sequential(fw.Linear(2, 3, generator=fw.Generator(6)), fw.Flatten(0, 1),
                                fw.Unflatten(0, (-1, 3)), fw.Tanh(), fw.Linear(3, 2, generator=fw.Generator(7)))]
        for k, model in enumerate(models):
            opt = fw.SGD(model.parameters(), lr=0.1)
            fw.fit(model, fw.MSELoss(), opt, x, y, epochs=2, batch_size=5, generator=fw.Generator(1))
            out[fw.__name__, k] = sd_hex(model.state_dict())
            if fw is r:
                native = r._native._train_epoch(model, r.MSELoss(), opt, x, y, 5, r.Generator(1), True)
                assert (native is None) == (k == 2)
        seq = fw.Sequential(fw.Flatten(), fw.Linear(6, 4, generator=fw.Generator(5)), fw.Unflatten(1, (2, 2)),
                            fw.LayerNorm(2))
        x3 = fw.tensor([[[0.5 * i - j, 0.25 * j, 1.0 - i] for j in range(2)] for i in range(3)])
        z = seq(x3)
        out[fw.__name__, "seq"] = (th(z), th(seq.backward(z)), sd_hex(seq.state_dict()))
    for key in [(1, 0), (1, 1), (1, 2), (1, "seq")]:
        assert out["pyfw", key[1]] == out["pyfw_rs", key[1]]


def _bn_reference(x: list, eps: float) -> tuple:
    """Batch norm of ``x`` (N, C, L) as torch defines it, written plainly: the output, and each
    channel's (mean, biased var, unbiased var)."""
    n, c, l = len(x), len(x[0]), len(x[0][0])
    stats = []
    for k in range(c):
        vals = [x[i][k][j] for i in range(n) for j in range(l)]
        mean = math.fsum(vals) / len(vals)
        ss = math.fsum((v - mean) ** 2 for v in vals)
        stats.append((mean, ss / len(vals), ss / (len(vals) - 1)))
    y = [[[(x[i][k][j] - stats[k][0]) / math.sqrt(stats[k][1] + eps) for j in range(l)] for k in range(c)]
         for i in range(n)]
    return y, stats


@pytest.mark.parametrize("rank", [2, 3])
def test_batchnorm1d_training_and_eval(rank: int) -> None:
    """Training mode normalizes by the batch (biased variance) and moves the running statistics
    by momentum (unbiased variance), counting batches; eval mode uses the running statistics;
    momentum=None averages them. Both backends give the same bits, close to the plain formulas."""
    g = random.Random(3)
    x3 = [[[g.uniform(-2.0, 2.0) for _ in range(4 if rank == 3 else 1)] for _ in range(3)] for _ in range(5)]
    xs = x3 if rank == 3 else [[v[0] for v in r] for r in x3]
    want, stats = _bn_reference(x3, 1e-5)
    out = []
    for fw in (pyfw, rs()):
        m = fw.BatchNorm1d(3)
        y = m(fw.tensor(xs)).tolist()
        flat = y if rank == 3 else [[[v] for v in r] for r in y]
        assert all(abs(a - b) < 1e-12 for r, s in zip(flat, want) for p, q in zip(r, s) for a, b in zip(p, q))
        rm, rv = m.running_mean.tolist(), m.running_var.tolist()
        for k, (mean, _, unbiased) in enumerate(stats):
            assert abs(rm[k] - 0.1 * mean) < 1e-15 and abs(rv[k] - (0.9 + 0.1 * unbiased)) < 1e-15
        m(fw.tensor(xs))
        assert m.num_batches_tracked.tolist() == [2.0]
        m.eval()
        ye = m(fw.tensor(xs)).tolist()
        rm, rv = m.running_mean.tolist(), m.running_var.tolist()
        assert m.num_batches_tracked.tolist() == [2.0]
        first = ye[0] if rank == 2 else [r[0] for r in ye[0]]
        x0 = xs[0] if rank == 2 else [r[0] for r in xs[0]]
        assert all(abs(a - (v - rm[k]) / math.sqrt(rv[k] + 1e-5)) < 1e-12 for k, (a, v) in enumerate(zip(first, x0)))
        avg = fw.BatchNorm1d(3, momentum=None)
        avg(fw.tensor(xs))
        assert [abs(a - s[0]) < 1e-15 for a, s in zip(avg.running_mean.tolist(), stats)] == [True] * 3
        free = fw.BatchNorm1d(3, affine=False, track_running_stats=False).eval()
        assert list(free.state_dict()) == [] and free.running_mean is None
        assert th(free(fw.tensor(xs))) == th(fw.BatchNorm1d(3)(fw.tensor(xs)))  # eval: still the batch's
        out.append((y, ye, sd_hex(m.state_dict()), repr(avg)))
    assert out[0] == out[1]
    assert out[0][3] == "BatchNorm1d(3, eps=1e-05, momentum=None, affine=True, track_running_stats=True)"


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batchnorm1d_backward(training: bool) -> None:
    """Backward through the batch statistics (training) or the affine map only (eval) passes
    gradcheck, which leaves the buffers as they were, and gives the same bits in both backends."""
    out = []
    for fw in (pyfw, rs()):
        m = fw.BatchNorm1d(2, momentum=0.3).train(training)
        m.weight.copy_(fw.tensor([1.5, -0.5]))
        m.bias.copy_(fw.tensor([0.25, 2.0]))
        m.running_mean.copy_(fw.tensor([0.5, -0.25]))
        m.running_var.copy_(fw.tensor([2.0, 0.5]))
        x = fw.tensor([[[0.5, -1.0, 2.0], [0.25, 0.125, -3.0]], [[1.0, 2.0, 0.5], [-0.75, 1.5, 0.0]]])
        before = sd_hex(m.state_dict())
        assert fw.gradcheck(m, x)
        assert sd_hex(m.state_dict()) == before
        m.zero_grad()
        y = m(x)
        dx = m.backward(fw.tensor([[[0.3, -0.2, 0.1], [1.0, 0.5, -0.5]], [[0.7, 0.0, -0.4], [0.2, 0.2, 0.9]]]))
        out.append((th(y), th(dx), th(m.weight_grad), th(m.bias_grad), sd_hex(m.state_dict())))
    assert out[0] == out[1]


def test_batchnorm1d_copies_keep_the_running_statistics_and_refuse_one_value(tmp_path: Path) -> None:
    """Copies, pickles and model files keep the buffers; training on one value per channel is a
    ValueError in both backends, as torch's."""
    for fw in (pyfw, rs()):
        m = fw.BatchNorm1d(3)
        m(fw.tensor([[0.5, -1.0, 2.0], [0.25, 0.0, -3.0]]))
        path = tmp_path / f"{fw.__name__}.safetensors"
        fw.io.save_model(m, path)
        for other in (copy.deepcopy(m), pickle.loads(pickle.dumps(m)), fw.io.load_model(path)):
            assert sd_hex(other.state_dict()) == sd_hex(m.state_dict())
            assert list(other.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
        with pytest.raises(ValueError, match=r"^BatchNorm1d\(3\): expected more than 1 value per channel"):
            m(fw.tensor([[0.5, -1.0, 2.0]]))


def _planes(g: random.Random, n: int, c: int, h: int, w: int) -> list:
    return [[[[g.uniform(-2.0, 2.0) for _ in range(w)] for _ in range(h)] for _ in range(c)] for _ in range(n)]


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batchnorm2d_is_batchnorm1d_over_the_planes(training: bool) -> None:
    """BatchNorm2d on (N, C, H, W) gives the bits of BatchNorm1d on (N, C, H * W): outputs, input
    and parameter gradients, running statistics; the same bits in both backends, and close to
    the plain formulas."""
    g = random.Random(5)
    n, c, h, w = 3, 2, 2, 3
    x4 = _planes(g, n, c, h, w)
    x3 = [[[v for row in plane for v in row] for plane in s] for s in x4]
    gy4 = _planes(g, n, c, h, w)
    gy3 = [[[v for row in plane for v in row] for plane in s] for s in gy4]
    want, _ = _bn_reference(x3, 1e-5)
    out = []
    for fw in (pyfw, rs()):
        got = []
        for m, x, gy in ((fw.BatchNorm2d(c, momentum=0.3), x4, gy4), (fw.BatchNorm1d(c, momentum=0.3), x3, gy3)):
            m.weight.copy_(fw.tensor([1.5, -0.5]))
            m.bias.copy_(fw.tensor([0.25, 2.0]))
            m(fw.tensor(x))  # moves the running statistics once
            m.train(training)
            y = m(fw.tensor(x))
            dx = m.backward(fw.tensor(gy))
            assert tuple(y.shape) == tuple(dx.shape) == tuple(fw.tensor(x).shape)
            got.append((th(y.reshape(n, c, h * w)), th(dx.reshape(n, c, h * w)), sd_hex(m.state_dict()),
                        th(m.weight_grad), th(m.bias_grad)))
        assert got[0] == got[1]
        plain = fw.BatchNorm2d(c)(fw.tensor(x4)).reshape(n, c, h * w).tolist()
        assert all(abs(a - b) < 1e-12 for r, s in zip(plain, want) for p, q in zip(r, s) for a, b in zip(p, q))
        out.append(got[0])
    assert out[0] == out[1]


def test_batchnorm2d_refuses_other_ranks_and_channels() -> None:
    """A wrong rank or number of channels: the same ValueError and message in both backends,
    naming BatchNorm2d and the shapes; so is one value per channel in training mode."""
    bad = [
        ((2, 3), r"^BatchNorm2d\(3\): expected an input of shape \(N, 3, H, W\), got shape \(2, 3\)$"),
        ((2, 3, 4), r"^BatchNorm2d\(3\): expected an input of shape \(N, 3, H, W\), got shape \(2, 3, 4\)$"),
        ((2, 4, 2, 2), r"^BatchNorm2d\(3\): expected an input of shape \(N, 3, H, W\), got shape \(2, 4, 2, 2\)$"),
        ((1, 3, 1, 1), r"^BatchNorm2d\(3\): expected more than 1 value per channel when training, got 1$"),
    ]
    for fw in (pyfw, rs()):
        m = fw.BatchNorm2d(3)
        for shape, message in bad:
            with pytest.raises(ValueError, match=message):
                m(fw.zeros(*shape))
        with pytest.raises(ValueError, match=r"^BatchNorm2d: num_features"):
            fw.BatchNorm2d(0)
        assert m.num_batches_tracked.tolist() == [0.0]


def test_batchnorm2d_matches_torch() -> None:
    """Against torch's nn.BatchNorm2d in float64, training then eval mode: outputs, gradients
    and buffers (num_batches_tracked as a float)."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    g = random.Random(8)
    x = _planes(g, 4, 3, 3, 2)
    gy = _planes(g, 4, 3, 3, 2)
    for fw in (pyfw, rs()):
        m = fw.BatchNorm2d(3, momentum=0.2)
        ref = torch.nn.BatchNorm2d(3, momentum=0.2).double()
        with torch.no_grad():
            ref.weight.copy_(torch.tensor([1.5, -0.5, 2.0], dtype=torch.float64))
            ref.bias.copy_(torch.tensor([0.25, 2.0, -1.0], dtype=torch.float64))
        m.weight.copy_(fw.tensor([1.5, -0.5, 2.0]))
        m.bias.copy_(fw.tensor([0.25, 2.0, -1.0]))
        for training in (True, False):
            m.train(training)
            ref.train(training)
            tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
            ty = ref(tx)
            ty.backward(torch.tensor(gy, dtype=torch.float64))
            m.zero_grad()
            y = m(fw.tensor(x))
            dx = m.backward(fw.tensor(gy))
            close = lambda a, b: torch.allclose(torch.tensor(a, dtype=torch.float64), b, atol=1e-12)  # noqa: E731
            assert close(y.tolist(), ty.detach()) and close(dx.tolist(), tx.grad)
            assert close(m.weight_grad.tolist(), ref.weight.grad) and close(m.bias_grad.tolist(), ref.bias.grad)
            ref.weight.grad = ref.bias.grad = None
            assert close(m.running_mean.tolist(), ref.running_mean) and close(m.running_var.tolist(), ref.running_var)
            assert m.num_batches_tracked.tolist() == [float(ref.num_batches_tracked)]
