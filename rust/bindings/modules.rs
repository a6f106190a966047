//! Binding of `Module`, `Linear`, `ReLU`, `Tanh` and `Sequential` (see `pyfw/modules.py`).
//!
//! `Module` is subclassable from Python; its generic methods (`train`,
//! `named_param`, `state_dict`, `load_state_dict`, `zero_grad`, `__call__`)
//! go through Python method lookup, so overrides in subclasses are honoured.
//! A native `Sequential` runs native children (exactly `Linear`, `ReLU`, `Tanh`
//! or `Sequential`) directly in Rust, passing plain buffers between them, and
//! calls `forward`/`backward` through Python for any other child. No borrow of a
//! module is held while Python code runs, so another thread using the same
//! model gets either a consistent result or a clean `RuntimeError`.

use std::sync::Arc;

use pyo3::exceptions::{PyNotImplementedError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PySlice, PyString, PyTuple};

use super::generator::resolve;
use super::tensor::{tensor_data, PyTensor};
use super::{check_size, type_name, IntoPyResult, StrictBool, Truthy};
use crate::error::{checked_size, try_zeros};
use crate::modules::{
    check_grad, check_linear_input, linear_backward, linear_forward, linear_init, linear_name,
    not_forwarded, transpose_into, ActivationKind,
};
use crate::tensor::Shape;

// ---------------------------------------------------------------- Module

/// Base class of every layer and loss.
///
/// Subclasses override `forward`, `backward` and, when they hold parameters,
/// `param`. A subclass that holds other modules overrides `named_children` so that
/// `train`/`eval` and `state_dict` reach them.
#[pyclass(subclass, module = "pyfw_rs", name = "Module")]
pub struct Module {
    /// Training mode (`train()` / `eval()`).
    #[pyo3(get, set)]
    training: bool,
}

impl Module {
    fn base() -> Module {
        Module { training: true }
    }
}

fn call_name(slf: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(slf
        .call_method0(intern!(slf.py(), "_name"))?
        .str()?
        .to_string())
}

/// The gradient tensor of a `(param, grad)` pair, which must be native.
fn native_pair<'py>(
    pair: &Bound<'py, PyAny>,
    who: &str,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTensor>)> {
    let p = pair.get_item(0)?;
    let g = pair.get_item(1)?;
    let g = g.cast_into::<PyTensor>().map_err(|e| {
        PyTypeError::new_err(format!(
            "{who}: gradients must be pyfw_rs Tensors, got {}",
            type_name(e.into_inner().as_any())
        ))
    })?;
    Ok((p, g))
}

#[pymethods]
impl Module {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Module {
        Module::base()
    }

    /// Accepts and ignores arguments, so that subclasses may call `super().__init__(...)`.
    #[pyo3(signature = (*_args, **_kwargs))]
    fn __init__(&self, _args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) {}

    /// Compute the output; subclasses override it.
    #[pyo3(signature = (*input))]
    fn forward(slf: &Bound<'_, Self>, input: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
        let _ = input;
        Err(PyNotImplementedError::new_err(format!(
            "{}.forward is not implemented",
            type_name(slf.as_any())
        )))
    }

    /// Accumulate parameter gradients and return the input gradient; subclasses override it.
    #[pyo3(signature = (*gradwrtoutput))]
    fn backward(slf: &Bound<'_, Self>, gradwrtoutput: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
        let _ = gradwrtoutput;
        Err(PyNotImplementedError::new_err(format!(
            "{}.backward is not implemented",
            type_name(slf.as_any())
        )))
    }

    /// `[(parameter, gradient), ...]`; empty for modules without parameters.
    fn param<'py>(&self, py: Python<'py>) -> Bound<'py, PyList> {
        PyList::empty(py)
    }

    /// `[(name, module), ...]` of directly held modules; empty by default.
    fn named_children<'py>(&self, py: Python<'py>) -> Bound<'py, PyList> {
        PyList::empty(py)
    }

    /// `[module, ...]`: the modules of `named_children()`, without their names.
    fn children<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(slf.py());
        for kid in slf
            .call_method0(intern!(slf.py(), "named_children"))?
            .try_iter()?
        {
            out.append(kid?.get_item(1)?)?;
        }
        Ok(out)
    }

    #[pyo3(signature = (*input))]
    fn __call__(slf: &Bound<'_, Self>, input: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
        Ok(slf
            .call_method1(intern!(slf.py(), "forward"), input)?
            .unbind())
    }

    /// Set every gradient in `param()` to zero, in place.
    fn zero_grad(slf: &Bound<'_, Self>) -> PyResult<()> {
        let who = format!("{}.zero_grad", call_name(slf.as_any())?);
        for pair in slf.call_method0(intern!(slf.py(), "param"))?.try_iter()? {
            let (_, g) = native_pair(&pair?, &who)?;
            g.try_borrow_mut()?.t.data_mut().fill(0.0);
        }
        Ok(())
    }

    /// Set training mode on this module and its children; returns self.
    #[pyo3(signature = (mode = StrictBool(true)), text_signature = "($self, mode=True)")]
    fn train<'py>(slf: &Bound<'py, Self>, mode: StrictBool) -> PyResult<Bound<'py, Self>> {
        let py = slf.py();
        let mode = mode.0;
        slf.setattr(intern!(py, "training"), mode)?;
        for kid in slf
            .call_method0(intern!(py, "named_children"))?
            .try_iter()?
        {
            kid?.get_item(1)?
                .call_method1(intern!(py, "train"), (mode,))?;
        }
        Ok(slf.clone())
    }

    /// Same as `train(False)`.
    fn eval<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.call_method1(intern!(slf.py(), "train"), (false,))
    }

    /// `[(name, parameter, gradient), ...]` with torch-style dotted names.
    #[pyo3(signature = (prefix = ""))]
    fn named_param<'py>(slf: &Bound<'py, Self>, prefix: &str) -> PyResult<Bound<'py, PyList>> {
        let py = slf.py();
        let out = PyList::empty(py);
        let kids: Vec<Bound<'py, PyAny>> = slf
            .call_method0(intern!(py, "named_children"))?
            .try_iter()?
            .collect::<PyResult<_>>()?;
        if !kids.is_empty() {
            for kid in kids {
                let name = kid.get_item(0)?.str()?;
                let child = kid.get_item(1)?;
                let sub = child
                    .call_method1(intern!(py, "named_param"), (format!("{prefix}{name}."),))?;
                for item in sub.try_iter()? {
                    out.append(item?)?;
                }
            }
            return Ok(out);
        }
        let names = slf.call_method0(intern!(py, "_param_names"))?;
        let params = slf.call_method0(intern!(py, "param"))?;
        for (n, pair) in names.try_iter()?.zip(params.try_iter()?) {
            let (n, pair) = (n?, pair?);
            let full = format!("{prefix}{}", n.str()?);
            out.append((full, pair.get_item(0)?, pair.get_item(1)?))?;
        }
        Ok(out)
    }

    fn _param_names<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyList>> {
        let n = slf.call_method0(intern!(slf.py(), "param"))?.len()?;
        PyList::new(slf.py(), (0..n).map(|i| i.to_string()))
    }

    /// `{name: copy of parameter}`, keys as in `torch.nn.Sequential`.
    fn state_dict<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyDict>> {
        let py = slf.py();
        let out = PyDict::new(py);
        for item in Module::named_param(slf, "")?.iter() {
            let p = item.get_item(1)?;
            out.set_item(item.get_item(0)?, p.call_method0(intern!(py, "clone"))?)?;
        }
        Ok(out)
    }

    /// Copy values into the parameters, in place.
    ///
    /// Values may be tensors of either backend or nested lists. Every key and
    /// shape is checked before anything is written, so a bad dict leaves the
    /// module unchanged. With `strict=False` missing and extra keys are skipped.
    /// Returns `IncompatibleKeys(missing_keys, unexpected_keys)`, as torch does.
    #[pyo3(signature = (state_dict, strict = Truthy(true)), text_signature = "($self, state_dict, strict=True)")]
    fn load_state_dict<'py>(
        slf: &Bound<'py, Self>,
        state_dict: &Bound<'py, PyAny>,
        strict: Truthy,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let strict = strict.0;
        let who = format!("{}.load_state_dict", call_name(slf.as_any())?);
        let Ok(sd) = state_dict.cast::<PyDict>() else {
            return Err(PyTypeError::new_err(format!(
                "{who}: expected a dict, got {}",
                type_name(state_dict)
            )));
        };
        let named = slf.call_method0(intern!(py, "named_param"))?;
        let named: Vec<Bound<'_, PyAny>> = named.try_iter()?.collect::<PyResult<_>>()?;
        let mut names = Vec::with_capacity(named.len());
        for item in &named {
            names.push(item.get_item(0)?);
        }
        let missing = PyList::empty(py);
        for n in &names {
            if !sd.contains(n)? {
                missing.append(n)?;
            }
        }
        let names_list = PyList::new(py, &names)?;
        let extra = PyList::empty(py);
        for k in sd.keys() {
            if !names_list.contains(&k)? {
                extra.append(k)?;
            }
        }
        if strict && (!missing.is_empty() || !extra.is_empty()) {
            return Err(PyValueError::new_err(format!(
                "{who}: missing keys {}, unexpected keys {}",
                missing.repr()?,
                extra.repr()?
            )));
        }
        let mut staged = Vec::new();
        for (item, name) in named.iter().zip(&names) {
            let Some(value) = sd.get_item(name)? else {
                continue;
            };
            let name_repr = name.repr()?;
            let (data, shape) = tensor_data(&value, &format!("{who}[{name_repr}]"))?;
            let p = item.get_item(1)?;
            let p = p.cast_into::<PyTensor>().map_err(|e| {
                PyTypeError::new_err(format!(
                    "{who}: parameter {name_repr} is a {}, not a pyfw_rs Tensor",
                    type_name(e.into_inner().as_any())
                ))
            })?;
            let expected = p.try_borrow()?.t.shape();
            if shape != expected {
                return Err(PyValueError::new_err(format!(
                    "{who}: {name_repr} has shape {shape}, the module expects {expected}"
                )));
            }
            staged.push((p, data));
        }
        for (p, data) in staged {
            p.try_borrow_mut()?.t.data_mut().copy_from_slice(&data);
        }
        py.import("pyfw.modules")?
            .getattr("IncompatibleKeys")?
            .call1((missing, extra))
    }

    fn _name(slf: &Bound<'_, Self>) -> String {
        type_name(slf.as_any())
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        Ok(format!("{}()", call_name(slf.as_any())?))
    }
}

// ---------------------------------------------------------------- Linear

/// Never called: `check_grad` has already returned an error on that path.
fn unreachable_pair() -> (Vec<f64>, Shape) {
    (Vec::new(), Shape::Vector(0))
}

/// A fully connected layer: `y = x W^T + b`.
///
/// `weight` has shape (out, in) and `bias` shape (out,), both drawn from
/// U(-k, k) with `k = 1 / sqrt(in)`: all of `weight` in row-major order, then `bias`.
/// Sums are left folds that skip terms whose first factor is exactly zero
/// (see `pyfw.Linear` for the exact order).
#[pyclass(extends = Module, subclass, module = "pyfw_rs", name = "Linear")]
pub struct Linear {
    in_f: usize,
    out_f: usize,
    weight: Py<PyTensor>,
    bias: Py<PyTensor>,
    weight_grad: Py<PyTensor>,
    bias_grad: Py<PyTensor>,
    /// The last input (batch * in values) kept for `backward`.
    input: Option<Vec<f64>>,
    /// Scratch: the weight transposed to (in, out) for the forward kernel.
    wt: Vec<f64>,
}

impl Linear {
    fn who(&self) -> String {
        linear_name(self.in_f, self.out_f)
    }

    /// Forward on a (batch, in) buffer whose shape the caller has checked.
    fn forward_buf(&mut self, py: Python<'_>, x: Vec<f64>, batch: usize) -> PyResult<Vec<f64>> {
        let mut y = try_zeros(checked_size(batch, self.out_f, "Linear").py()?, "Linear").py()?;
        {
            let w = self.weight.bind(py).try_borrow()?;
            let b = self.bias.bind(py).try_borrow()?;
            transpose_into(w.t.data(), self.out_f, self.in_f, &mut self.wt);
            linear_forward(&x, self.in_f, self.out_f, &self.wt, b.t.data(), &mut y);
        }
        self.input = Some(x);
        Ok(y)
    }

    /// Backward from a gradient buffer of shape `shape`; returns dL/dx (batch * in values).
    fn backward_buf(
        &mut self,
        py: Python<'_>,
        g: &[f64],
        shape: Shape,
    ) -> PyResult<(Vec<f64>, Shape)> {
        let x = self
            .input
            .as_ref()
            .ok_or_else(|| not_forwarded(&self.who()))
            .py()?;
        let batch = x.len() / self.in_f;
        let expected = Shape::Matrix(batch, self.out_f);
        if shape != expected {
            return check_grad(&self.who(), shape, expected)
                .py()
                .map(|_| unreachable_pair());
        }
        let mut dx = try_zeros(x.len(), "Linear").py()?;
        let w = self.weight.bind(py).try_borrow()?;
        let mut gw = self.weight_grad.bind(py).try_borrow_mut()?;
        let mut gb = self.bias_grad.bind(py).try_borrow_mut()?;
        linear_backward(
            x,
            g,
            self.in_f,
            self.out_f,
            w.t.data(),
            gw.t.data_mut(),
            gb.t.data_mut(),
            &mut dx,
        );
        Ok((dx, Shape::Matrix(batch, self.in_f)))
    }
}

#[pymethods]
impl Linear {
    #[new]
    #[pyo3(
        signature = (in_features, out_features, bias = Truthy(true), generator = None),
        text_signature = "(in_features, out_features, bias=True, generator=None)"
    )]
    fn new(
        py: Python<'_>,
        in_features: &Bound<'_, PyAny>,
        out_features: &Bound<'_, PyAny>,
        bias: Truthy,
        generator: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyClassInitializer<Linear>> {
        let in_f = check_size(in_features, "Linear", "in_features")?;
        let out_f = check_size(out_features, "Linear", "out_features")?;
        if !bias.0 {
            return Err(PyValueError::new_err("Linear: bias=False is not supported"));
        }
        let g = resolve(py, generator)?;
        let (w, b) = linear_init(&mut g.try_borrow_mut()?.g, in_f, out_f).py()?;
        let ws = Shape::Matrix(out_f, in_f);
        let bs = Shape::Vector(out_f);
        let zw = try_zeros(w.len(), "Linear").py()?;
        let zb = try_zeros(b.len(), "Linear").py()?;
        let lin = Linear {
            in_f,
            out_f,
            weight: Py::new(py, PyTensor::wrap(ws, w)?)?,
            bias: Py::new(py, PyTensor::wrap(bs, b)?)?,
            weight_grad: Py::new(py, PyTensor::wrap(ws, zw)?)?,
            bias_grad: Py::new(py, PyTensor::wrap(bs, zb)?)?,
            input: None,
            wt: Vec::new(),
        };
        Ok(PyClassInitializer::from(Module::base()).add_subclass(lin))
    }

    #[getter]
    fn in_features(&self) -> usize {
        self.in_f
    }

    #[getter]
    fn out_features(&self) -> usize {
        self.out_f
    }

    #[getter]
    fn weight(&self, py: Python<'_>) -> Py<PyTensor> {
        self.weight.clone_ref(py)
    }

    #[getter]
    fn bias(&self, py: Python<'_>) -> Py<PyTensor> {
        self.bias.clone_ref(py)
    }

    #[getter]
    fn weight_grad(&self, py: Python<'_>) -> Py<PyTensor> {
        self.weight_grad.clone_ref(py)
    }

    #[getter]
    fn bias_grad(&self, py: Python<'_>) -> Py<PyTensor> {
        self.bias_grad.clone_ref(py)
    }

    /// `x W^T + b` for a (batch, in) input.
    fn forward(slf: &Bound<'_, Self>, x: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        let py = slf.py();
        let (in_f, out_f) = {
            let me = slf.try_borrow()?;
            (me.in_f, me.out_f)
        };
        let (data, shape) = tensor_data(x, &linear_name(in_f, out_f))?;
        let batch = check_linear_input(in_f, out_f, shape).py()?;
        let y = slf.try_borrow_mut()?.forward_buf(py, data, batch)?;
        PyTensor::wrap(Shape::Matrix(batch, out_f), y)
    }

    /// Accumulate dL/dW and dL/db; return dL/dx.
    fn backward(slf: &Bound<'_, Self>, grad: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        let py = slf.py();
        let who = slf.try_borrow()?.who();
        let (g, shape) = tensor_data(grad, &who)?;
        let (dx, shape) = slf.try_borrow_mut()?.backward_buf(py, &g, shape)?;
        PyTensor::wrap(shape, dx)
    }

    #[pyo3(signature = (*input))]
    fn __call__(slf: &Bound<'_, Self>, input: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
        if slf.is_exact_instance_of::<Linear>() && input.len() == 1 {
            return Ok(
                Bound::new(slf.py(), Linear::forward(slf, &input.get_item(0)?)?)?
                    .into_any()
                    .unbind(),
            );
        }
        Ok(slf
            .call_method1(intern!(slf.py(), "forward"), input)?
            .unbind())
    }

    /// `[(weight, weight_grad), (bias, bias_grad)]`.
    fn param<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(
            py,
            [
                (self.weight.clone_ref(py), self.weight_grad.clone_ref(py)),
                (self.bias.clone_ref(py), self.bias_grad.clone_ref(py)),
            ],
        )
    }

    fn _param_names<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, ["weight", "bias"])
    }

    fn _name(&self) -> String {
        self.who()
    }

    fn __repr__(&self) -> String {
        format!(
            "Linear(in_features={}, out_features={}, bias=True)",
            self.in_f, self.out_f
        )
    }
}

// ---------------------------------------------------------------- activations

/// What an activation keeps between `forward` and `backward`.
struct ActState {
    kind: ActivationKind,
    output: Option<(Vec<f64>, Shape)>,
}

impl ActState {
    fn new(kind: ActivationKind) -> ActState {
        ActState { kind, output: None }
    }

    fn forward_buf(&mut self, x: &[f64], shape: Shape) -> PyResult<Vec<f64>> {
        let mut y = try_zeros(x.len(), self.kind.name()).py()?;
        self.kind.forward(x, &mut y);
        match &mut self.output {
            Some((buf, s)) => {
                buf.clear();
                buf.extend_from_slice(&y);
                *s = shape;
            }
            None => self.output = Some((y.clone(), shape)),
        }
        Ok(y)
    }

    fn backward_buf(&self, g: &[f64], shape: Shape) -> PyResult<Vec<f64>> {
        let who = self.kind.name();
        let (y, ys) = self
            .output
            .as_ref()
            .ok_or_else(|| not_forwarded(who))
            .py()?;
        check_grad(who, shape, *ys).py()?;
        let mut dx = try_zeros(y.len(), who).py()?;
        self.kind.backward(y, g, &mut dx);
        Ok(dx)
    }

    fn forward(&mut self, x: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        let (data, shape) = tensor_data(x, self.kind.name())?;
        let y = self.forward_buf(&data, shape)?;
        PyTensor::wrap(shape, y)
    }
}

macro_rules! activation {
    ($ty:ident, $name:literal, $kind:expr, $doc:literal) => {
        #[doc = $doc]
        #[pyclass(extends = Module, subclass, module = "pyfw_rs", name = $name)]
        pub struct $ty {
            state: ActState,
        }

        #[pymethods]
        impl $ty {
            #[new]
            fn new() -> PyClassInitializer<$ty> {
                PyClassInitializer::from(Module::base()).add_subclass($ty {
                    state: ActState::new($kind),
                })
            }

            /// Apply the activation to every element of a 1-D or 2-D input.
            fn forward(slf: &Bound<'_, Self>, x: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
                // Parse before borrowing, so that no borrow is held while Python code runs.
                let (data, shape) = tensor_data(x, $name)?;
                let y = slf.try_borrow_mut()?.state.forward_buf(&data, shape)?;
                PyTensor::wrap(shape, y)
            }

            /// The gradient with respect to the input.
            fn backward(slf: &Bound<'_, Self>, grad: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
                let (g, shape) = tensor_data(grad, $name)?;
                let dx = slf.try_borrow()?.state.backward_buf(&g, shape)?;
                PyTensor::wrap(shape, dx)
            }

            #[pyo3(signature = (*input))]
            fn __call__(slf: &Bound<'_, Self>, input: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
                if slf.is_exact_instance_of::<$ty>() && input.len() == 1 {
                    let t = slf.try_borrow_mut()?.state.forward(&input.get_item(0)?)?;
                    return Ok(Bound::new(slf.py(), t)?.into_any().unbind());
                }
                Ok(slf
                    .call_method1(intern!(slf.py(), "forward"), input)?
                    .unbind())
            }
        }
    };
}

activation!(
    ReLU,
    "ReLU",
    ActivationKind::ReLU,
    "`y = x if x > 0 else 0`; `dL/dx = dL/dy if x > 0 else 0` (so 0 at x = 0)."
);
activation!(
    Tanh,
    "Tanh",
    ActivationKind::Tanh,
    "`y = tanh(x)`; `dL/dx = dL/dy * (1 - y*y)`, evaluated as `g * (1.0 - (y * y))`."
);

// ---------------------------------------------------------------- Sequential

/// A child of a Sequential: native ones run in Rust, others through Python.
enum Child {
    Linear(Py<Linear>),
    ReLU(Py<ReLU>),
    Tanh(Py<Tanh>),
    Seq(Py<Sequential>),
    Other(Py<PyAny>),
}

/// A value flowing between children: a native buffer, or whatever a Python child returned.
enum Flow<'py> {
    Buf(Vec<f64>, Shape),
    Obj(Bound<'py, PyAny>),
}

impl<'py> Flow<'py> {
    /// The buffer; `who` (for error messages) is built only when a Python value must be parsed.
    fn into_buf(self, who: impl FnOnce() -> String) -> PyResult<(Vec<f64>, Shape)> {
        match self {
            Flow::Buf(v, s) => Ok((v, s)),
            Flow::Obj(o) => tensor_data(&o, &who()),
        }
    }

    fn into_obj(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self {
            Flow::Buf(v, s) => Ok(Bound::new(py, PyTensor::wrap(s, v)?)?.into_any()),
            Flow::Obj(o) => Ok(o),
        }
    }
}

/// An activation's forward on a flowing value (`name` is for error messages).
fn act_forward<'py>(state: &mut ActState, name: &str, x: Flow<'py>) -> PyResult<Flow<'py>> {
    let (data, shape) = x.into_buf(|| name.into())?;
    Ok(Flow::Buf(state.forward_buf(&data, shape)?, shape))
}

/// An activation's backward on a flowing gradient (`name` is for error messages).
fn act_backward<'py>(state: &ActState, name: &str, g: Flow<'py>) -> PyResult<Flow<'py>> {
    let (data, shape) = g.into_buf(|| name.into())?;
    Ok(Flow::Buf(state.backward_buf(&data, shape)?, shape))
}

fn run_forward<'py>(py: Python<'py>, kids: &[Child], mut x: Flow<'py>) -> PyResult<Flow<'py>> {
    for kid in kids {
        x = match kid {
            Child::Linear(l) => {
                let l = l.bind(py);
                let (in_f, out_f) = {
                    let me = l.try_borrow()?;
                    (me.in_f, me.out_f)
                };
                let (data, shape) = x.into_buf(|| linear_name(in_f, out_f))?;
                let batch = check_linear_input(in_f, out_f, shape).py()?;
                let y = l.try_borrow_mut()?.forward_buf(py, data, batch)?;
                Flow::Buf(y, Shape::Matrix(batch, out_f))
            }
            Child::ReLU(a) => act_forward(&mut a.bind(py).try_borrow_mut()?.state, "ReLU", x)?,
            Child::Tanh(a) => act_forward(&mut a.bind(py).try_borrow_mut()?.state, "Tanh", x)?,
            Child::Seq(s) => {
                let inner = s.bind(py).try_borrow()?.kids.clone();
                run_forward(py, &inner, x)?
            }
            Child::Other(m) => {
                let arg = x.into_obj(py)?;
                Flow::Obj(m.bind(py).call_method1(intern!(py, "forward"), (arg,))?)
            }
        };
    }
    Ok(x)
}

fn run_backward<'py>(py: Python<'py>, kids: &[Child], mut g: Flow<'py>) -> PyResult<Flow<'py>> {
    for kid in kids.iter().rev() {
        g = match kid {
            Child::Linear(l) => {
                let l = l.bind(py);
                let (data, shape) =
                    g.into_buf(|| l.try_borrow().map(|m| m.who()).unwrap_or_default())?;
                let (dx, shape) = l.try_borrow_mut()?.backward_buf(py, &data, shape)?;
                Flow::Buf(dx, shape)
            }
            Child::ReLU(a) => act_backward(&a.bind(py).try_borrow()?.state, "ReLU", g)?,
            Child::Tanh(a) => act_backward(&a.bind(py).try_borrow()?.state, "Tanh", g)?,
            Child::Seq(s) => {
                let inner = s.bind(py).try_borrow()?.kids.clone();
                run_backward(py, &inner, g)?
            }
            Child::Other(m) => {
                let arg = g.into_obj(py)?;
                Flow::Obj(m.bind(py).call_method1(intern!(py, "backward"), (arg,))?)
            }
        };
    }
    Ok(g)
}

/// Modules applied in order; backward runs them in reverse.
#[pyclass(extends = Module, subclass, module = "pyfw_rs", name = "Sequential")]
pub struct Sequential {
    kids: Arc<[Child]>,
    modules: Vec<Py<PyAny>>,
}

impl Sequential {
    fn flow_in<'py>(x: &Bound<'py, PyAny>) -> PyResult<Flow<'py>> {
        if let Ok(t) = x.cast::<PyTensor>() {
            let t = t.try_borrow()?;
            return Ok(Flow::Buf(t.t.data().to_vec(), t.t.shape()));
        }
        Ok(Flow::Obj(x.clone()))
    }
}

#[pymethods]
impl Sequential {
    #[new]
    #[pyo3(signature = (*modules))]
    fn new(modules: &Bound<'_, PyTuple>) -> PyResult<PyClassInitializer<Sequential>> {
        let mut kids = Vec::with_capacity(modules.len());
        let mut mods = Vec::with_capacity(modules.len());
        for (i, m) in modules.iter().enumerate() {
            if !m.is_instance_of::<Module>() {
                return Err(PyTypeError::new_err(format!(
                    "Sequential: item {i} is a {}, not a Module",
                    type_name(&m)
                )));
            }
            let kid = if m.is_exact_instance_of::<Linear>() {
                Child::Linear(m.cast::<Linear>()?.clone().unbind())
            } else if m.is_exact_instance_of::<ReLU>() {
                Child::ReLU(m.cast::<ReLU>()?.clone().unbind())
            } else if m.is_exact_instance_of::<Tanh>() {
                Child::Tanh(m.cast::<Tanh>()?.clone().unbind())
            } else if m.is_exact_instance_of::<Sequential>() {
                Child::Seq(m.cast::<Sequential>()?.clone().unbind())
            } else {
                Child::Other(m.clone().unbind())
            };
            kids.push(kid);
            mods.push(m.unbind());
        }
        Ok(
            PyClassInitializer::from(Module::base()).add_subclass(Sequential {
                kids: kids.into(),
                modules: mods,
            }),
        )
    }

    /// Feed `x` through every module in order.
    fn forward<'py>(slf: &Bound<'py, Self>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let kids = slf.try_borrow()?.kids.clone();
        run_forward(py, &kids, Sequential::flow_in(x)?)?.into_obj(py)
    }

    /// Feed the gradient through every module in reverse order.
    fn backward<'py>(
        slf: &Bound<'py, Self>,
        grad: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let kids = slf.try_borrow()?.kids.clone();
        run_backward(py, &kids, Sequential::flow_in(grad)?)?.into_obj(py)
    }

    #[pyo3(signature = (*input))]
    fn __call__<'py>(
        slf: &Bound<'py, Self>,
        input: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if slf.is_exact_instance_of::<Sequential>() && input.len() == 1 {
            return Sequential::forward(slf, &input.get_item(0)?);
        }
        slf.call_method1(intern!(slf.py(), "forward"), input)
    }

    /// The children's pairs, in module order.
    fn param<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for m in &self.modules {
            for pair in m.bind(py).call_method0(intern!(py, "param"))?.try_iter()? {
                out.append(pair?)?;
            }
        }
        Ok(out)
    }

    /// `[("0", first), ("1", second), ...]`.
    fn named_children<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(
            py,
            self.modules
                .iter()
                .enumerate()
                .map(|(i, m)| (i.to_string(), m.clone_ref(py))),
        )
    }

    fn __len__(&self) -> usize {
        self.modules.len()
    }

    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        index: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let list = PyList::new(py, self.modules.iter().map(|m| m.clone_ref(py)))?;
        if index.is_instance_of::<PySlice>() {
            return list.as_any().get_item(index);
        }
        if !super::is_integral(index)? {
            return Err(PyTypeError::new_err(format!(
                "Sequential indices must be integers or slices, not {}",
                type_name(index)
            )));
        }
        list.as_any().get_item(index)
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let list = PyList::new(py, self.modules.iter().map(|m| m.clone_ref(py)))?;
        Ok(list.try_iter()?.into_any())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let mut inner = String::new();
        for (i, m) in self.modules.iter().enumerate() {
            let r: Bound<'_, PyString> = m.bind(py).repr()?;
            inner.push_str(&format!("\n  ({i}): {r}"));
        }
        Ok(format!("Sequential({inner}\n)"))
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Module>()?;
    m.add_class::<Linear>()?;
    m.add_class::<ReLU>()?;
    m.add_class::<Tanh>()?;
    m.add_class::<Sequential>()?;
    Ok(())
}

/// The `Module` type, for other binding files.
pub(crate) fn module_base() -> PyClassInitializer<Module> {
    PyClassInitializer::from(Module::base())
}
