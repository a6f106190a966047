"""What a module saves for backward is a snapshot: in-place changes to the tensors it
received or returned, made between forward and backward, do not change the gradients."""

from __future__ import annotations

from types import ModuleType

from fwtest import th


def grads(fw: ModuleType, mutate: bool) -> tuple:
    lin = fw.Linear(3, 2, generator=fw.Generator(5))
    act = fw.Tanh()
    relu = fw.ReLU()
    x = fw.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
    h = lin(x)
    y = act(h)
    z = relu(y)
    if mutate:
        x.zero_()
        h.add_(h)
        y.copy_([[9.0, 9.0], [9.0, 9.0]])
        z.zero_()
    dz = fw.tensor([[1.0, -2.0], [0.5, 3.0]])
    dy = relu.backward(dz)
    dh = act.backward(dy)
    dx = lin.backward(dh)
    return th(dx), th(lin.weight_grad), th(lin.bias_grad), th(dh), th(dy)


def test_in_place_changes_after_forward_do_not_reach_backward(fw: ModuleType) -> None:
    assert grads(fw, mutate=True) == grads(fw, mutate=False)


def test_python_module_changing_its_input_in_place(fw: ModuleType) -> None:
    class Double(fw.Module):
        def forward(self, x):
            return x.add_(x)

        def backward(self, g):
            return g.add_(g)

    m = fw.Sequential(fw.Tanh(), Double())
    m(fw.tensor([[0.5]]))
    got = m.backward(fw.tensor([[1.0]])).tolist()[0][0]
    t = fw.Tanh()
    t(fw.tensor([[0.5]]))
    assert got.hex() == t.backward(fw.tensor([[2.0]])).tolist()[0][0].hex()


def test_linear_backward_of_its_own_gradient_tensor(fw: ModuleType) -> None:
    lin = fw.Linear(2, 2, generator=fw.Generator(1))
    lin([[1.0, 2.0], [3.0, 4.0]])
    lin.backward([[1.0, 1.0], [0.5, 0.25]])
    g = lin.weight_grad.tolist()  # the same values, in a separate tensor
    twin = fw.Linear(2, 2, generator=fw.Generator(1))
    twin([[1.0, 2.0], [3.0, 4.0]])
    twin.backward([[1.0, 1.0], [0.5, 0.25]])
    dx_own = lin.backward(lin.weight_grad)
    dx_copy = twin.backward(fw.tensor(g))
    assert th(dx_own) == th(dx_copy)
    assert th(lin.bias_grad) == th(twin.bias_grad)
    assert th(lin.weight_grad) == th(twin.weight_grad)
