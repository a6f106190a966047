"""Cross-implementation suite: every kernel of pyfw_rs is bit-identical to pyfw (float.hex)."""

import os
import random

import pytest

import pyfw
from fwtest import hexes, state_hex, th

try:
    import pyfw_rs
except ImportError as e:  # pragma: no cover - depends on the build
    if os.environ.get("PYFW_REQUIRE_RS"):
        raise
    pytest.skip(f"pyfw_rs is not built ({e})", allow_module_level=True)

BACKENDS = (pyfw, pyfw_rs)






def rand_values(rng, n, zero_frac=0.25):
    out = []
    for _ in range(n):
        u = rng.random()
        if u < zero_frac / 2:
            out.append(0.0)
        elif u < zero_frac:
            out.append(-0.0)
        else:
            out.append(rng.uniform(-2.0, 2.0) * 10.0 ** rng.randint(-3, 2))
    return out


def rand_rows(rng, r, c, zero_frac=0.25):
    return [rand_values(rng, c, zero_frac) for _ in range(r)]


SEEDS = [0, 1, -1, 42, 2**64 - 5, 2**63, -2**63, 123456789]


@pytest.mark.parametrize("seed", SEEDS)
def test_generator_streams(seed):
    gp, gr = pyfw.Generator(seed), pyfw_rs.Generator(seed)
    assert gp.initial_seed() == gr.initial_seed()
    assert [gp.next_u64() for _ in range(50)] == [gr.next_u64() for _ in range(50)]
    assert [gp.random().hex() for _ in range(50)] == [gr.random().hex() for _ in range(50)]
    for lo, hi in [(0.0, 1.0), (-3.5, 2.25), (1e-3, 1e3), (5.0, -5.0)]:
        assert gp.uniform(lo, hi).hex() == gr.uniform(lo, hi).hex()
    for n in [1, 2, 3, 7, 10, 1000, 2**32 + 1, 3 * 2**62, 2**63 + 1, 2**64 - 1]:
        assert [gp.randbelow(n) for _ in range(5)] == [gr.randbelow(n) for _ in range(5)]
    assert gp.manual_seed(seed + 1 if seed != -1 else 7) is gp
    assert gr.manual_seed(seed + 1 if seed != -1 else 7) is gr
    assert gp.next_u64() == gr.next_u64()
    assert repr(gp) == repr(gr)


@pytest.mark.parametrize("n", [1, 2, 3, 10, 1000])
def test_randperm(n):
    for seed in (0, 9):
        gp, gr = pyfw.Generator(seed), pyfw_rs.Generator(seed)
        assert pyfw.randperm(n, generator=gp) == pyfw_rs.randperm(n, generator=gr)
        assert gp.next_u64() == gr.next_u64()


def test_default_generator_and_manual_seed():
    for fw in BACKENDS:
        assert fw.manual_seed(5) is fw.default_generator
    assert pyfw.randperm(20) == pyfw_rs.randperm(20)
    assert th(pyfw.Linear(3, 4).weight) == th(pyfw_rs.Linear(3, 4).weight)
    a, b = pyfw.data.disk(10), pyfw_rs.data.disk(10)
    assert th(a[0]) == th(b[0]) and a[1] == b[1]


@pytest.mark.parametrize("n", [1, 5, 1000])
def test_disk_and_one_hot(n):
    gp, gr = pyfw.Generator(n), pyfw_rs.Generator(n)
    xp, yp = pyfw.data.disk(n, generator=gp)
    xr, yr = pyfw_rs.data.disk(n, generator=gr)
    assert th(xp) == th(xr)
    assert yp == yr and all(type(v) is int for v in yr)
    assert th(pyfw.data.one_hot(yp, 2)) == th(pyfw_rs.data.one_hot(yr, 2))
    labels = [random.Random(n).randrange(5) for _ in range(n)]
    assert th(pyfw.data.one_hot(labels)) == th(pyfw_rs.data.one_hot(labels))
    assert th(pyfw.data.one_hot(tuple(labels), 7)) == th(pyfw_rs.data.one_hot(tuple(labels), 7))


@pytest.mark.parametrize("shape", [(1, 1), (2, 25), (25, 25), (25, 2), (7, 3), (100, 1)])
def test_linear_init(shape):
    i, o = shape
    lp = pyfw.Linear(i, o, generator=pyfw.Generator(i * 100 + o))
    lr = pyfw_rs.Linear(i, o, generator=pyfw_rs.Generator(i * 100 + o))
    assert th(lp.weight) == th(lr.weight) and th(lp.bias) == th(lr.bias)
    assert lr.weight.shape == (o, i) and lr.bias.shape == (o,)
    assert th(lp.weight_grad) == th(lr.weight_grad)


def test_tensor_roundtrip_and_indexing():
    rng = random.Random(3)
    rows = rand_rows(rng, 7, 3)
    for data in (rows, rows[0], [[1, 2], [3, 4]], [5], ((1.5, 2), (3, 4))):
        tp, tr = pyfw.tensor(data), pyfw_rs.tensor(data)
        assert tp.shape == tr.shape and tp.ndim == tr.ndim and tp.dim() == tr.dim()
        assert tp.numel() == tr.numel() and len(tp) == len(tr)
        assert th(tp) == th(tr) and repr(tp) == repr(tr)
        n = len(tp)
        for idx in [0, -1, n - 1, slice(None), slice(1, None), slice(None, None, -1), slice(0, n, 2),
                    [0], [n - 1, 0, n - 1], list(range(n))[::-1], [-1, -n]]:
            try:
                a = tp[idx]
            except ValueError:
                with pytest.raises(ValueError):
                    tr[idx]
                continue
            b = tr[idx]
            if isinstance(a, float):
                assert isinstance(b, float) and a.hex() == b.hex()
            else:
                assert a.shape == b.shape and th(a) == th(b)
        assert [hexes(x.tolist() if hasattr(x, "tolist") else x) for x in tp] == \
               [hexes(x.tolist() if hasattr(x, "tolist") else x) for x in tr]
    # Each backend accepts the other's tensors.
    tp, tr = pyfw.tensor(rows), pyfw_rs.tensor(rows)
    assert th(pyfw_rs.tensor(tp)) == th(tp) and th(pyfw.tensor(tr)) == th(tr)
    c = tr.clone()
    assert th(c) == th(tr) and c is not tr


def pair_linear(rng, i, o):
    seed = rng.randrange(2**64)
    return (pyfw.Linear(i, o, generator=pyfw.Generator(seed)),
            pyfw_rs.Linear(i, o, generator=pyfw_rs.Generator(seed)))


def test_linear_forward_backward_random_shapes():
    rng = random.Random(11)
    for _ in range(60):
        b, i, o = rng.randint(1, 12), rng.randint(1, 30), rng.randint(1, 30)
        lp, lr = pair_linear(rng, i, o)
        for _rep in range(2):  # gradients accumulate
            x = rand_rows(rng, b, i, zero_frac=rng.choice([0.0, 0.3, 0.9]))
            g = rand_rows(rng, b, o, zero_frac=rng.choice([0.0, 0.3, 0.9]))
            yp, yr = lp(pyfw.tensor(x)), lr(pyfw_rs.tensor(x))
            assert th(yp) == th(yr)
            assert th(lp.forward(x)) == th(lr.forward(x))  # nested lists too
            dp, dr = lp.backward(pyfw.tensor(g)), lr.backward(pyfw_rs.tensor(g))
            assert th(dp) == th(dr)
            assert th(lp.weight_grad) == th(lr.weight_grad)
            assert th(lp.bias_grad) == th(lr.bias_grad)


def test_linear_all_zero_input_and_negative_zero():
    lp, lr = pair_linear(random.Random(1), 3, 4)
    for x in ([[0.0, 0.0, 0.0]], [[-0.0, -0.0, -0.0], [0.0, 1.0, -0.0]]):
        assert th(lp(pyfw.tensor(x))) == th(lr(pyfw_rs.tensor(x)))
        g = [[-0.0] * 4 for _ in x]
        assert th(lp.backward(g)) == th(lr.backward(g))
        assert th(lp.weight_grad) == th(lr.weight_grad) and th(lp.bias_grad) == th(lr.bias_grad)


@pytest.mark.parametrize("act", ["ReLU", "Tanh"])
def test_activations(act):
    rng = random.Random(act)
    for _ in range(30):
        if rng.random() < 0.3:
            x = rand_values(rng, rng.randint(1, 20))
            g = rand_values(rng, len(x))
        else:
            r, c = rng.randint(1, 10), rng.randint(1, 20)
            x, g = rand_rows(rng, r, c), rand_rows(rng, r, c)
        ap, ar = getattr(pyfw, act)(), getattr(pyfw_rs, act)()
        assert th(ap(pyfw.tensor(x))) == th(ar(pyfw_rs.tensor(x)))
        assert th(ap.backward(pyfw.tensor(g))) == th(ar.backward(pyfw_rs.tensor(g)))


def test_mse_loss():
    rng = random.Random(5)
    for _ in range(40):
        if rng.random() < 0.3:
            x = rand_values(rng, rng.randint(1, 30))
            t = rand_values(rng, len(x))
        else:
            r, c = rng.randint(1, 12), rng.randint(1, 6)
            x, t = rand_rows(rng, r, c), rand_rows(rng, r, c)
        lp, lr = pyfw.MSELoss(), pyfw_rs.MSELoss()
        vp, vr = lp(pyfw.tensor(x), pyfw.tensor(t)), lr(pyfw_rs.tensor(x), pyfw_rs.tensor(t))
        assert type(vr) is float and vp.hex() == vr.hex()
        assert th(lp.backward()) == th(lr.backward())
        assert lp.forward(x, t).hex() == lr.forward(x, t).hex()  # nested lists too


def test_sgd_step():
    rng = random.Random(8)
    for _ in range(10):
        i, o = rng.randint(1, 25), rng.randint(1, 25)
        lp, lr = pair_linear(rng, i, o)
        x, g = rand_rows(rng, 4, i), rand_rows(rng, 4, o)
        lp(x), lr(x)
        lp.backward(g), lr.backward(g)
        step = rng.choice([0.1, 0.01, 0.3333, 0.0])
        op, orr = pyfw.SGD(lp.param(), lr=step), pyfw_rs.SGD(lr.param(), lr=step)
        op.step(), orr.step()
        assert th(lp.weight) == th(lr.weight) and th(lp.bias) == th(lr.bias)
        op.zero_grad(), orr.zero_grad()
        assert th(lp.weight_grad) == th(lr.weight_grad)
        assert all(v == 0.0 for r in lr.weight_grad.tolist() for v in r)


def test_in_place_tensor_ops():
    rng = random.Random(11)
    for _ in range(20):
        r, c = rng.randint(1, 6), rng.randint(1, 6)
        a, b = rand_rows(rng, r, c), rand_rows(rng, r, c)
        alpha = rng.choice([1.0, -0.5, rng.uniform(-3, 3)])
        outs = []
        for fw in BACKENDS:
            t = fw.tensor(a)
            assert t.add_(fw.tensor(b), alpha=alpha) is t
            t.add_(b)
            u = fw.tensor(a).copy_(t)
            outs.append((th(t), th(u), th(fw.tensor(a).zero_())))
        assert outs[0] == outs[1]


def build_pair(rng):
    seed = rng.randrange(2**32)
    sizes = [rng.randint(1, 12) for _ in range(rng.randint(2, 5))]
    acts = [rng.choice(["ReLU", "Tanh"]) for _ in sizes[2:]]
    models = []
    for fw in BACKENDS:
        g = fw.Generator(seed)
        mods = []
        for k in range(len(sizes) - 1):
            mods.append(fw.Linear(sizes[k], sizes[k + 1], generator=g))
            if k < len(acts):
                mods.append(getattr(fw, acts[k])())
        models.append(fw.Sequential(*mods))
    return sizes, models


def test_sequential_forward_backward():
    rng = random.Random(21)
    for _ in range(25):
        sizes, (mp, mr) = build_pair(rng)
        for _rep in range(2):
            x = rand_rows(rng, rng.randint(1, 8), sizes[0])
            yp, yr = mp(pyfw.tensor(x)), mr(pyfw_rs.tensor(x))
            assert th(yp) == th(yr)
            g = rand_rows(rng, len(x), sizes[-1])
            assert th(mp.backward(pyfw.tensor(g))) == th(mr.backward(pyfw_rs.tensor(g)))
            for (a, ga), (b, gb) in zip(mp.param(), mr.param()):
                assert th(a) == th(b) and th(ga) == th(gb)
        assert list(mp.state_dict()) == list(mr.state_dict())


def test_nested_sequential():
    rng = random.Random(4)
    models = []
    for fw in BACKENDS:
        g = fw.Generator(3)
        inner = fw.Sequential(fw.Linear(4, 5, generator=g), fw.Tanh())
        models.append(fw.Sequential(fw.Linear(3, 4, generator=g), fw.ReLU(), inner, fw.Linear(5, 2, generator=g)))
    x, g = rand_rows(rng, 6, 3), rand_rows(rng, 6, 2)
    assert th(models[0](x)) == th(models[1](x))
    assert th(models[0].backward(g)) == th(models[1].backward(g))
    assert list(models[0].state_dict()) == list(models[1].state_dict()) == \
        ["0.weight", "0.bias", "2.0.weight", "2.0.bias", "3.weight", "3.bias"]
    for (a, ga), (b, gb) in zip(models[0].param(), models[1].param()):
        assert th(ga) == th(gb)




def test_seed_task_few_epochs():
    from pyfw import cli
    for act in ("relu", "tanh"):
        rp = cli.run("py", epochs=3, activation=act, n_train=300, n_test=200, seed=4)
        rr = cli.run("rs", epochs=3, activation=act, n_train=300, n_test=200, seed=4)
        assert [v.hex() for v in rp["losses"]] == [v.hex() for v in rr["losses"]]
        assert state_hex(rp["model"]) == state_hex(rr["model"])
        assert rp["test_error"] == rr["test_error"] and rp["train_error"] == rr["train_error"]


def test_seed_task_default_two_epochs_odd_batch():
    from pyfw import cli
    rp = cli.run("py", epochs=2, batch_size=7)
    rr = cli.run("rs", epochs=2, batch_size=7)
    assert [v.hex() for v in rp["losses"]] == [v.hex() for v in rr["losses"]]
    assert state_hex(rp["model"]) == state_hex(rr["model"])


@pytest.mark.slow
def test_seed_task_full_run():
    from pyfw import cli
    rp = cli.run("py")
    rr = cli.run("rs")
    assert [v.hex() for v in rp["losses"]] == [v.hex() for v in rr["losses"]]
    assert state_hex(rp["model"]) == state_hex(rr["model"])
    assert rp["test_error"] == rr["test_error"] <= 0.03
    assert rp["train_error"] == rr["train_error"]
