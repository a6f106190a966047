"""pyfw_rs on its own: exception parity with pyfw, no PanicException, Python subclasses of
Module inside a native Sequential, threads, the .pyi stub, and the CLI with --backend rs."""

import ast
import numbers
import os
import random
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import pyfw

try:
    import pyfw_rs
    from pyfw_rs import _native
except ImportError as e:  # pragma: no cover - depends on the build
    if os.environ.get("PYFW_REQUIRE_RS"):
        raise
    pytest.skip(f"pyfw_rs is not built ({e})", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]


def _lin(fw):
    return fw.Linear(2, 3, generator=fw.Generator(0))


def _fwd(fw):
    m = _lin(fw)
    m(fw.tensor([[1.0, 2.0]]))
    return m


# (id, callable(fw)); each must raise the same exception type in both backends.
BAD = [
    ("tensor-empty", lambda fw: fw.tensor([])),
    ("tensor-ragged", lambda fw: fw.tensor([[1.0], [1.0, 2.0]])),
    ("tensor-deep-ragged", lambda fw: fw.tensor([[[1.0]], [[1.0, 2.0]]])),
    ("tensor-deep-1d", lambda fw: fw.tensor([1.0, [2.0]])),
    ("tensor-row-not-list", lambda fw: fw.tensor([[1.0], 2.0])),
    ("tensor-str", lambda fw: fw.tensor("abc")),
    ("tensor-none", lambda fw: fw.tensor(None)),
    ("tensor-str-item", lambda fw: fw.tensor([1.0, "a"])),
    ("tensor-bool", lambda fw: fw.tensor([True])),
    ("tensor-nan", lambda fw: fw.tensor([float("nan")])),
    ("tensor-inf", lambda fw: fw.tensor([[1.0, float("-inf")]])),
    ("tensor-empty-rows", lambda fw: fw.tensor([[], []])),
    ("tensor-complex", lambda fw: fw.tensor([1j])),
    ("index-range", lambda fw: fw.tensor([[1.0], [2.0]])[2]),
    ("index-neg-range", lambda fw: fw.tensor([1.0, 2.0])[-3]),
    ("index-huge", lambda fw: fw.tensor([1.0, 2.0])[2**70]),
    ("index-str", lambda fw: fw.tensor([1.0])["a"]),
    ("index-float", lambda fw: fw.tensor([1.0])[0.0]),
    ("index-tuple-none", lambda fw: fw.tensor([[1.0]])[(None,)]),
    ("index-list-str", lambda fw: fw.tensor([[1.0]])[[0, "a"]]),
    ("index-list-bool", lambda fw: fw.tensor([[1.0]])[[True]]),
    ("index-list-range", lambda fw: fw.tensor([[1.0]])[[0, 1]]),
    ("index-empty-slice", lambda fw: fw.tensor([[1.0]])[1:]),
    ("index-empty-list", lambda fw: fw.tensor([[1.0]])[[]]),
    ("gen-seed-float", lambda fw: fw.Generator(1.5)),
    ("gen-seed-none", lambda fw: fw.Generator(None)),
    ("gen-seed-bool", lambda fw: fw.Generator(True)),
    ("manual-seed-str", lambda fw: fw.manual_seed("1")),
    ("randbelow-0", lambda fw: fw.Generator(0).randbelow(0)),
    ("randbelow-neg", lambda fw: fw.Generator(0).randbelow(-3)),
    ("randbelow-float", lambda fw: fw.Generator(0).randbelow(2.0)),
    ("randbelow-huge", lambda fw: fw.Generator(0).randbelow(2**64)),
    ("uniform-str", lambda fw: fw.Generator(0).uniform("a", 1.0)),
    ("randperm-0", lambda fw: fw.randperm(0)),
    ("randperm-float", lambda fw: fw.randperm(3.0)),
    ("randperm-gen", lambda fw: fw.randperm(3, generator=5)),
    ("linear-0", lambda fw: fw.Linear(0, 2)),
    ("linear-neg", lambda fw: fw.Linear(2, -1)),
    ("linear-float", lambda fw: fw.Linear(1.5, 2)),
    ("linear-bool", lambda fw: fw.Linear(True, 2)),
    ("linear-gen", lambda fw: fw.Linear(2, 2, generator="g")),
    ("linear-1d-width", lambda fw: _lin(fw)(fw.tensor([1.0, 2.0, 3.0]))),
    ("linear-cols", lambda fw: _lin(fw)(fw.tensor([[1.0, 2.0, 3.0]]))),
    ("linear-str", lambda fw: _lin(fw)("x")),
    ("linear-ragged", lambda fw: _lin(fw)([[1.0, 2.0], [1.0]])),
    ("linear-back-first", lambda fw: _lin(fw).backward(fw.tensor([[1.0, 2.0, 3.0]]))),
    ("linear-back-shape", lambda fw: _fwd(fw).backward(fw.tensor([[1.0, 2.0]]))),
    ("linear-back-rows", lambda fw: _fwd(fw).backward(fw.tensor([[1.0, 2.0, 3.0]] * 2))),
    ("relu-back-first", lambda fw: fw.ReLU().backward(fw.tensor([1.0]))),
    ("tanh-back-first", lambda fw: fw.Tanh().backward(fw.tensor([1.0]))),
    ("tanh-back-shape", lambda fw: (lambda a: (a(fw.tensor([1.0, 2.0])), a.backward(fw.tensor([1.0]))))(fw.Tanh())),
    ("relu-str", lambda fw: fw.ReLU()("x")),
    ("mse-shape", lambda fw: fw.MSELoss()(fw.tensor([1.0, 2.0]), fw.tensor([[1.0, 2.0]]))),
    ("mse-back-first", lambda fw: fw.MSELoss().backward()),
    ("mse-target-nan", lambda fw: fw.MSELoss()(fw.tensor([1.0]), [float("nan")])),
    ("sgd-empty", lambda fw: fw.SGD([], lr=0.1)),
    ("sgd-not-iterable", lambda fw: fw.SGD(5, lr=0.1)),
    ("sgd-lr-neg", lambda fw: fw.SGD(_lin(fw).param(), lr=-1.0)),
    ("sgd-lr-nan", lambda fw: fw.SGD(_lin(fw).param(), lr=float("nan"))),
    ("sgd-lr-str", lambda fw: fw.SGD(_lin(fw).param(), lr="a")),
    ("sgd-lr-none", lambda fw: fw.SGD(_lin(fw).param(), lr=None)),
    ("sgd-lr-bool", lambda fw: fw.SGD(_lin(fw).param(), lr=True)),
    ("sgd-not-pair", lambda fw: fw.SGD([1], lr=0.1)),
    ("sgd-not-tensors", lambda fw: fw.SGD([(1, 2)], lr=0.1)),
    ("sgd-shapes", lambda fw: fw.SGD([(fw.tensor([1.0]), fw.tensor([1.0, 2.0]))], lr=0.1)),
    ("sgd-other-backend", lambda fw: fw.SGD(_lin(pyfw if fw is pyfw_rs else pyfw_rs).param(), lr=0.1)),
    # a module whose param() returns junk, handed to each optimizer
    *[(f"{opt.lower()}-param-{name}", lambda fw, opt=opt, junk=junk: getattr(fw, opt)(junk(fw), lr=0.1))
      for opt in ("SGD", "Adam", "AdamW", "Adagrad", "RMSprop")
      for name, junk in [("str", lambda fw: "ab"), ("none", lambda fw: None), ("ints", lambda fw: [1, 2]),
                         ("triple", lambda fw: [(1, 2, 3)]), ("dict-item", lambda fw: [{}]),
                         ("pair-of-lists", lambda fw: [([1.0], [1.0])]), ("empty-pair", lambda fw: [()]),
                         ("tensor-and-junk", lambda fw: [(fw.tensor([1.0]), None)])]],
    ("seq-not-module", lambda fw: fw.Sequential(fw.ReLU(), 3)),
    ("seq-other-backend", lambda fw: fw.Sequential((pyfw if fw is pyfw_rs else pyfw_rs).ReLU())),
    ("train-str", lambda fw: _lin(fw).train("yes")),
    ("train-none", lambda fw: _lin(fw).train(None)),
    ("load-not-dict", lambda fw: _lin(fw).load_state_dict([1])),
    ("load-missing", lambda fw: _lin(fw).load_state_dict({"weight": [[0.0, 0.0]] * 3})),
    ("load-extra", lambda fw: _lin(fw).load_state_dict({**_lin(fw).state_dict(), "x": [1.0]})),
    ("load-shape", lambda fw: _lin(fw).load_state_dict({"weight": [[0.0, 0.0]] * 2, "bias": [0.0] * 3})),
    ("load-nan", lambda fw: _lin(fw).load_state_dict({"weight": [[0.0, float("nan")]] * 3, "bias": [0.0] * 3})),
    ("module-forward", lambda fw: fw.Module()(fw.tensor([1.0]))),
    ("module-backward", lambda fw: fw.Module().backward(fw.tensor([1.0]))),
    ("disk-0", lambda fw: fw.data.disk(0)),
    ("disk-float", lambda fw: fw.data.disk(2.5)),
    ("disk-gen", lambda fw: fw.data.disk(3, generator=object())),
    ("onehot-empty", lambda fw: fw.data.one_hot([])),
    ("onehot-float", lambda fw: fw.data.one_hot([0, 1.0])),
    ("onehot-bool", lambda fw: fw.data.one_hot([True])),
    ("onehot-range", lambda fw: fw.data.one_hot([3], 2)),
    ("onehot-neg", lambda fw: fw.data.one_hot([-1], 2)),
    ("onehot-k0", lambda fw: fw.data.one_hot([0], 0)),
    ("onehot-k-none", lambda fw: fw.data.one_hot([0], None)),
    ("onehot-tensor", lambda fw: fw.data.one_hot(fw.tensor([0.0]))),
    ("onehot-str", lambda fw: fw.data.one_hot("01")),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_input_same_exception_type(case):
    _, f = case
    with pytest.raises(BaseException) as ep:
        f(pyfw)
    with pytest.raises(BaseException) as er:
        f(pyfw_rs)
    assert type(er.value) is type(ep.value), (ep.value, er.value)
    assert isinstance(er.value, Exception)  # never a PanicException (a BaseException)


def test_messages_name_module_and_shapes():
    with pytest.raises(ValueError, match=r"Linear\(2 -> 3\): expected input with 2 columns, got 3"):
        _lin(pyfw_rs)(pyfw_rs.tensor([[1.0, 2.0, 3.0]]))
    with pytest.raises(ValueError, match=r"MSELoss: input shape \(2,\) and target shape \(1, 2\) differ"):
        pyfw_rs.MSELoss()(pyfw_rs.tensor([1.0, 2.0]), pyfw_rs.tensor([[1.0, 2.0]]))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        pyfw_rs.ReLU().backward([1.0])


def test_failed_load_changes_nothing():
    m = pyfw_rs.Sequential(pyfw_rs.Linear(2, 3), pyfw_rs.ReLU(), pyfw_rs.Linear(3, 1))
    before = {k: v.tolist() for k, v in m.state_dict().items()}
    bad = m.state_dict()
    bad["0.weight"] = [[9.0, 9.0]] * 3
    bad["2.bias"] = [1.0, 2.0]
    with pytest.raises(ValueError):
        m.load_state_dict(bad)
    assert {k: v.tolist() for k, v in m.state_dict().items()} == before
    good = m.state_dict()
    good["0.weight"] = pyfw.tensor([[9.0, 9.0]] * 3)  # a tensor of the other backend
    m.load_state_dict(good)
    assert m[0].weight.tolist() == [[9.0, 9.0]] * 3
    m.load_state_dict({"2.bias": [5.0]}, strict=False)
    assert m[2].bias.tolist() == [5.0]


class _Lying(list):
    """A list whose __len__, __iter__ and __getitem__ lie."""

    def __len__(self):
        return 2**62

    def __iter__(self):
        return iter(["junk"])

    def __getitem__(self, i):
        raise RuntimeError("lying __getitem__")


class _Short(list):
    def __len__(self):
        return 0


class _Mutating:
    """A real number whose conversion changes the list being parsed."""

    def __init__(self, change):
        self.change = change
        self.target = None

    def __float__(self):
        if self.target is not None:
            self.change(self.target)
        return 1.0


def _mutating(rows, change, row):
    """``rows`` with its first number (in row ``row``, or the first item of a flat list)
    replaced by a _Mutating that applies ``change`` to ``rows``."""
    m = _Mutating(change)
    m.target = rows
    if row is None:
        rows[0] = m
    else:
        rows[row][0] = m
    return rows


numbers.Real.register(_Mutating)


def test_fuzz_never_panics():
    """Random junk into every entry point: only Exception subclasses come out."""
    rng = random.Random(0)
    junk = [None, 1, -1, 0, 2**80, 1.5, float("nan"), "s", b"b", [], [[]], [1.0], [[1.0, 2.0]], (1, 2),
            {"a": 1}, object(), pyfw_rs.tensor([[1.0, 2.0]]), pyfw_rs.tensor([3.0]), pyfw.tensor([[1.0]]),
            True, [[1.0], [2.0, 3.0]], [2**70], [-(2**70)],
            # sizes far past any memory (each fails at once: 8 TB and up), and lying containers
            10**12, 2**62, 2**63 - 1, 2**64 - 1, [10**12], [0, 2**63 - 1],
            _Lying([1.0, 2.0]), _Lying([[1.0, 2.0]]), [_Lying([1.0, 2.0])], _Lying([0, 1]), _Short([0]),
            _mutating([[0.0, 1.0], [2.0, 3.0]], list.clear, 0),
            _mutating([[0.0, 1.0], [2.0, 3.0]], lambda r: r.append([4.0]), 0),
            _mutating([0.0, 2.0], lambda r: r.append(3.0), None)]
    lin, act, seq = pyfw_rs.Linear(2, 2), pyfw_rs.Tanh(), pyfw_rs.Sequential(pyfw_rs.Linear(2, 1))
    loss, gen = pyfw_rs.MSELoss(), pyfw_rs.Generator(1)
    targets = [pyfw_rs.tensor, pyfw_rs.Tensor, pyfw_rs.Generator, pyfw_rs.manual_seed, pyfw_rs.randperm,
               pyfw_rs.Linear, lin, lin.backward, act, act.backward, seq, seq.backward, loss, loss.forward,
               pyfw_rs.SGD, pyfw_rs.data.disk, pyfw_rs.data.one_hot, lin.load_state_dict, lin.train,
               gen.randbelow, gen.uniform, gen.manual_seed, pyfw_rs.tensor([[1.0], [2.0]]).__getitem__,
               pyfw_rs.Sequential, seq.__getitem__, pyfw_rs.CrossEntropyLoss(), pyfw_rs.NLLLoss(),
               pyfw_rs.tensor([[1.0, 2.0]]).copy_, pyfw_rs.tensor([1.0]).add_, pyfw_rs.Adam]
    for _ in range(3000):
        f = rng.choice(targets)
        args = [rng.choice(junk) for _ in range(rng.randint(0, 3))]
        try:
            f(*args)
        except Exception:
            pass
    pyfw_rs.manual_seed(0)


class Scale:
    """A module with one parameter, written against the Module contract, for either backend."""

    @staticmethod
    def make(fw):
        class ScaleModule(fw.Module):
            def __init__(self, s):
                super().__init__()
                self.s = fw.tensor([s])
                self.gs = fw.tensor([0.0])
                self.x = None

            def forward(self, x):
                self.x = x.tolist()
                s = self.s.tolist()[0]
                return fw.tensor([[v * s for v in r] for r in self.x])

            def backward(self, g):
                s = self.s.tolist()[0]
                gl = g.tolist()
                acc = self.gs.tolist()[0]
                for r, gr in zip(self.x, gl):
                    for v, gv in zip(r, gr):
                        acc = acc + gv * v
                self.gs.copy_([acc])  # in place: SGD holds this tensor
                return fw.tensor([[gv * s for gv in gr] for gr in gl])

            def param(self):
                return [(self.s, self.gs)]

        return ScaleModule


def test_python_subclass_inside_native_sequential():
    models = []
    for fw in (pyfw, pyfw_rs):
        g = fw.Generator(7)
        S = Scale.make(fw)
        models.append(fw.Sequential(fw.Linear(3, 4, generator=g), fw.Tanh(), S(0.5), fw.Linear(4, 2, generator=g)))
    mp, mr = models
    assert isinstance(mr[2], pyfw_rs.Module)
    rng = random.Random(2)
    for _ in range(3):
        x = [[rng.uniform(-1, 1) for _ in range(3)] for _ in range(5)]
        t = [[rng.uniform(-1, 1) for _ in range(2)] for _ in range(5)]
        outs = []
        for fw, m in ((pyfw, mp), (pyfw_rs, mr)):
            opt = fw.SGD(m.param(), lr=0.1)
            opt.zero_grad()
            loss = fw.MSELoss()
            v = loss(m(fw.tensor(x)), fw.tensor(t))
            dx = m.backward(loss.backward())
            opt.step()
            outs.append((v.hex(), [[a.hex() for a in r] for r in dx.tolist()]))
        assert outs[0] == outs[1]
    assert list(mp.state_dict()) == list(mr.state_dict()) == \
        ["0.weight", "0.bias", "2.0", "3.weight", "3.bias"]
    for (a, ga), (b, gb) in zip(mp.param(), mr.param()):
        assert a.tolist() == b.tolist() and ga.tolist() == gb.tolist()
    mr.zero_grad()
    assert mr[2].gs.tolist() == [0.0]
    mr.eval()
    assert not mr.training and not mr[2].training and not mr[0].training
    mr.train()
    assert mr[2].training


def test_subclass_of_native_layer_overrides_are_called():
    calls = []

    class Loud(pyfw_rs.ReLU):
        def forward(self, x):
            calls.append("f")
            return super().forward(x)

    m = pyfw_rs.Sequential(pyfw_rs.Linear(2, 2), Loud())
    m(pyfw_rs.tensor([[1.0, -1.0]]))
    Loud()(pyfw_rs.tensor([1.0]))
    assert calls == ["f", "f"]
    assert "Loud" in repr(m)


def test_param_is_live_storage():
    lin = pyfw_rs.Linear(2, 2)
    (w, gw), (b, gb) = lin.param()
    assert w is lin.weight or w.tolist() == lin.weight.tolist()
    lin(pyfw_rs.tensor([[1.0, 2.0]]))
    lin.backward(pyfw_rs.tensor([[1.0, 1.0]]))
    assert gw.tolist() == lin.weight_grad.tolist() != [[0.0, 0.0], [0.0, 0.0]]
    before = w.tolist()
    pyfw_rs.SGD(lin.param(), lr=1.0).step()
    assert lin.weight.tolist() != before and w.tolist() == lin.weight.tolist()
    lin.zero_grad()
    assert gw.tolist() == [[0.0, 0.0], [0.0, 0.0]]
    p = pyfw_rs.tensor([1.0, 2.0])
    pyfw_rs.SGD([(p, p)], lr=0.5).step()  # a gradient that is the parameter itself
    assert p.tolist() == [1.0 - 0.5 * 1.0, 2.0 - 0.5 * 2.0]


def test_backend_of_and_reexports():
    assert pyfw.training.backend_of(pyfw_rs.tensor([1.0])) is pyfw_rs
    assert pyfw.training.backend_of(pyfw_rs.Linear(1, 1)) is pyfw_rs
    assert sorted(pyfw_rs.__all__) == sorted(pyfw.__all__)
    for name in pyfw.__all__:
        assert hasattr(pyfw_rs, name), name
    for name in ("fit", "train_epoch", "argmax_rows", "error_rate", "metrics", "training"):
        assert getattr(pyfw_rs, name) is getattr(pyfw, name)
    # pyfw_rs.io is pyfw.io's code with pyfw_rs as the default backend (tests/test_io_load_model.py)
    assert pyfw_rs.io.__name__ == "pyfw_rs.io" and pyfw_rs.io.save_model is pyfw.io.save_model
    import pyfw_rs.data as d
    from pyfw_rs import data
    assert d is data is pyfw_rs.data
    assert type(data.disk).__name__ == "builtin_function_or_method"
    assert pyfw_rs.Linear.__module__ == "pyfw_rs" and issubclass(pyfw_rs.Linear, pyfw_rs.Module)


def test_signatures_match_pyfw():
    import inspect

    def params(f):
        return [(p.name, p.kind, p.default) for p in inspect.signature(f).parameters.values()]

    for name in ("tensor", "manual_seed", "randperm", "Generator", "Linear", "SGD"):
        assert params(getattr(pyfw, name)) == params(getattr(pyfw_rs, name)), name
    for name in ("disk", "one_hot"):
        assert params(getattr(pyfw.data, name)) == params(getattr(pyfw_rs.data, name)), name


def test_threads_share_one_model():
    fw = pyfw_rs
    g = fw.Generator(0)
    model = fw.Sequential(fw.Linear(2, 25, generator=g), fw.ReLU(), fw.Linear(25, 2, generator=g))
    x = fw.data.disk(50, generator=g)[0]
    expect = [[v.hex() for v in r] for r in model(x).tolist()]
    errors, wrong = [], []

    def infer():
        for _ in range(300):
            try:
                out = [[v.hex() for v in r] for r in model(x).tolist()]
                if out != expect:
                    wrong.append(out)
            except RuntimeError:  # a clean borrow conflict is allowed
                pass
            except BaseException as e:  # noqa: BLE001 - anything else is a failure
                errors.append(e)

    def train():
        crit = fw.MSELoss()
        opt = fw.SGD(model.param(), lr=0.0)  # lr 0: parameters stay put, so outputs stay comparable
        t = fw.data.one_hot([0, 1] * 25, 2)
        for _ in range(200):
            try:
                opt.zero_grad()
                crit(model(x), t)
                model.backward(crit.backward())
                opt.step()
            except (RuntimeError, ValueError):
                pass
            except BaseException as e:  # noqa: BLE001
                errors.append(e)

    threads = [threading.Thread(target=infer) for _ in range(3)] + [threading.Thread(target=train) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and wrong == []


def _stub(name="_native"):
    tree = ast.parse((ROOT / "python" / "pyfw_rs" / f"{name}.pyi").read_text())
    top, classes = set(), {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            top.add(node.name)
            members = set()
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    members.add(item.name)
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    members.add(item.target.id)
            classes[node.name] = (members, [b.id for b in node.bases if isinstance(b, ast.Name)])
        elif isinstance(node, ast.FunctionDef):
            top.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            top.add(node.target.id)
    return top, classes


SPECIAL = {"__call__", "__len__", "__getitem__", "__iter__", "__repr__"}


def test_stub_matches_native_module():
    top, classes = _stub()
    native = {n for n in dir(_native) if not n.startswith("_")}
    assert native == {n for n in top if not n.startswith("_")}  # a private base (_BatchNorm) is checked below
    for name, (members, bases) in classes.items():
        cls = getattr(_native, name)
        own = {n for n in vars(cls) if not n.startswith("_") or n in SPECIAL}
        stub_members = {n for n in members if not n.startswith("_") or n in SPECIAL}
        # Methods inherited from Module appear in the stub only where the class overrides them.
        assert own == stub_members, (name, own ^ stub_members)
        assert [b.__name__ for b in cls.__bases__ if b is not object] == bases, name


def test_conv_stub_describes_what_users_see():
    """pyfw_rs.conv's classes are Python classes (pyfw/conv.py's, over the native _SpatialLayer):
    its stub lists each of them, as a _SpatialLayer, with the methods and the attributes an
    instance has; the classes are the layer table's."""
    from fwtest import example

    top, classes = _stub("conv")
    own = {n for n, v in vars(pyfw_rs.conv).items() if isinstance(v, type) and v.__module__ == "pyfw_rs.conv"}
    assert own == top == set(classes)
    for name, (members, bases) in classes.items():
        cls = getattr(pyfw_rs.conv, name)
        assert cls is pyfw_rs.LAYERS[name] and [getattr(_native, b) for b in bases] == [_native._SpatialLayer]
        assert issubclass(cls, _native._SpatialLayer)
        m = example(pyfw_rs, name)
        missing = [n for n in members if not hasattr(m, n)]
        assert missing == [], (name, missing)
        public = {n for n in vars(m) if not n.startswith("_")}
        assert public <= members, (name, public - members)


def test_cli_train_backend_rs(tmp_path):
    out = tmp_path / "m.safetensors"
    r = subprocess.run([sys.executable, "-m", "pyfw", "train", "--backend", "rs", "--epochs", "2",
                        "--save", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "test error" in r.stdout and "backend rs" in r.stdout
    sd = pyfw.io.load_safetensors(str(out), fw=pyfw_rs)
    m = pyfw_rs.Sequential(pyfw_rs.Linear(2, 25), pyfw_rs.ReLU(), pyfw_rs.Linear(25, 25), pyfw_rs.ReLU(),
                           pyfw_rs.Linear(25, 25), pyfw_rs.ReLU(), pyfw_rs.Linear(25, 2))
    m.load_state_dict(sd)
