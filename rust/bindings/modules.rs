//! Binding of the layer family: `Linear`, `Dropout` and `Sequential` (see `pyfw/modules.py`).
//!
//! Each layer holds its kernel-side state struct and its tensors. A native
//! `Sequential` sorts its children once, into three arms that never grow: a
//! native layer (a class of [`NATIVE`], whose class does not override
//! `forward`/`backward`), a nested `Sequential`, and any other module, which
//! runs through Python. Each run of consecutive native layers is borrowed at
//! once and goes through the kernels' stack runner, `Stack`, as the native
//! epoch of `fit` does. No borrow is held while Python code runs.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use pyo3::exceptions::{PyRecursionError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyList, PySlice, PyString, PyTuple};
use pyo3::{PyTraverseError, PyVisit};

use super::activations::Activation;
use super::base::{keeps, module_base, runs_natively, Module};
use super::conv::{HeldSpatial, SpatialLayer, SPATIAL};
use super::generator::{resolve, PyGenerator};
use super::tensor::{tensor_data, tensor_data_with, PyTensor};
use super::{
    check_size, described, is_integral, mixed, py_repr, renamed, to_pyerr, type_name, Borrow,
    Given, IntoPyResult, Truthy,
};
use crate::error::try_zeros;
use crate::generator::Generator;
use crate::modules::{
    linear_init, size_text, BatchNormState, DropoutState, Layer, LayerKind, LayerNormState,
    LinearState, Reshape, ReshapeState, Running, Slot, Slots, Stack, LAYERS,
};
use crate::tensor::Shape;

// ---------------------------------------------------------------- Linear

/// Multiply-adds of one Linear call from which its kernel runs with the
/// interpreter lock released, so that threads training models of their own run
/// in parallel; below it, releasing and taking the lock back would cost more.
/// The module stays borrowed meanwhile: another thread that touches it gets a
/// clean `RuntimeError`.
pub(super) const DETACH_WORK: usize = 1 << 16;

/// A fully connected layer: `y = x W^T + b`.
///
/// `weight` has shape (out, in) and `bias` shape (out,), both drawn from
/// U(-k, k) with `k = 1 / sqrt(in)`: all of `weight` in row-major order, then
/// `bias`. `weight.grad` is `weight_grad` and `bias.grad` is `bias_grad`. Sums
/// are left folds that skip terms whose first factor is exactly zero
/// (docs/NUMERICS.md, "Linear").
///
/// `__new__` accepts any arguments and `__init__` checks them and draws the
/// parameters, so that a Python subclass may have a constructor of its own and
/// call `super().__init__(in_features, out_features)`. Until `__init__` has run,
/// every use is a `RuntimeError`.
#[pyclass(extends = Module, subclass, module = "pyfw_rs", name = "Linear")]
pub struct Linear {
    pub(crate) p: Option<LinearParams>,
}

/// What an initialized Linear holds: its kernel state and its tensors (no bias
/// and no bias gradient for `bias=False`).
pub(crate) struct LinearParams {
    pub(crate) state: LinearState,
    pub(crate) weight: Py<PyTensor>,
    pub(crate) bias: Option<Py<PyTensor>>,
    pub(crate) weight_grad: Py<PyTensor>,
    pub(crate) bias_grad: Option<Py<PyTensor>>,
}

impl LinearParams {
    /// Adopt these tensors, as they are, after checking that their shapes fit a
    /// Linear (the bias and its gradient both None for `bias=False`).
    fn adopt(
        weight: Bound<'_, PyTensor>,
        bias: Option<Bound<'_, PyTensor>>,
        weight_grad: Bound<'_, PyTensor>,
        bias_grad: Option<Bound<'_, PyTensor>>,
    ) -> PyResult<LinearParams> {
        let ws = weight.busy_ref()?.t.shape();
        let Some((out_f, in_f)) = ws.as_matrix() else {
            return Err(PyValueError::new_err(
                "Linear._from_tensors: expected a 2-D weight and a 1-D bias",
            ));
        };
        let bias_fits = match (&bias, &bias_grad) {
            (None, None) => true,
            (Some(b), Some(g)) => {
                b.busy_ref()?.t.shape() == Shape::Vector(out_f)
                    && g.busy_ref()?.t.shape() == Shape::Vector(out_f)
            }
            _ => false,
        };
        if !bias_fits || weight_grad.busy_ref()?.t.shape() != ws {
            return Err(PyValueError::new_err(format!(
                "Linear._from_tensors: shapes do not fit a Linear({in_f} -> {out_f})"
            )));
        }
        weight.busy_mut()?.grad = Some(weight_grad.clone().unbind());
        if let (Some(b), Some(g)) = (&bias, &bias_grad) {
            b.busy_mut()?.grad = Some(g.clone().unbind());
        }
        Ok(LinearParams {
            state: LinearState::new(in_f, out_f),
            weight: weight.unbind(),
            bias: bias.map(Bound::unbind),
            weight_grad: weight_grad.unbind(),
            bias_grad: bias_grad.map(Bound::unbind),
        })
    }
}

/// The error of a Linear whose `__init__` never ran (a subclass that skipped `super().__init__`).
fn not_initialized() -> PyErr {
    PyRuntimeError::new_err(
        "Linear: not initialized; a subclass's __init__ must call \
         super().__init__(in_features, out_features)",
    )
}

impl Linear {
    fn params(&self) -> PyResult<&LinearParams> {
        self.p.as_ref().ok_or_else(not_initialized)
    }

    fn who(&self) -> PyResult<String> {
        Ok(self.params()?.state.name())
    }

    /// `Linear(in -> out)` of `slf`, for an error message (formatted only then).
    fn name_of(slf: &Bound<'_, Self>) -> String {
        slf.try_borrow()
            .ok()
            .and_then(|l| l.who().ok())
            .unwrap_or_else(|| "Linear".to_string())
    }

    /// Forward on a buffer of `shape`; returns the output and its shape.
    fn forward_buf(
        &mut self,
        py: Python<'_>,
        x: Vec<f64>,
        shape: Shape,
    ) -> PyResult<(Vec<f64>, Shape)> {
        let LinearParams {
            state,
            weight,
            bias,
            ..
        } = self.p.as_mut().ok_or_else(not_initialized)?;
        let w = weight.bind(py).busy_ref()?;
        let b = bias.as_ref().map(|b| b.bind(py).busy_ref()).transpose()?;
        let (wd, bd) = (w.t.data(), b.as_ref().map_or(&[][..], |b| b.t.data()));
        let work = shape.numel().saturating_mul(state.out_features());
        if work >= DETACH_WORK {
            py.detach(|| state.forward(x, shape, wd, bd)).py()
        } else {
            state.forward(x, shape, wd, bd).py()
        }
    }

    /// Backward from a gradient buffer of `shape`; returns dL/dx and its shape.
    fn backward_buf(&self, py: Python<'_>, g: &[f64], shape: Shape) -> PyResult<(Vec<f64>, Shape)> {
        let p = self.params()?;
        let w = p.weight.bind(py).busy_ref()?;
        let mut gw = p.weight_grad.bind(py).busy_mut()?;
        let mut gb = p
            .bias_grad
            .as_ref()
            .map(|g| g.bind(py).busy_mut())
            .transpose()?;
        let gbd = gb.as_mut().map_or(&mut [][..], |g| g.t.data_mut());
        let (wd, gwd, state) = (w.t.data(), gw.t.data_mut(), &p.state);
        let work = shape.numel().saturating_mul(state.in_features());
        if work >= DETACH_WORK {
            py.detach(|| state.backward(g, shape, wd, gwd, gbd)).py()
        } else {
            state.backward(g, shape, wd, gwd, gbd).py()
        }
    }
}

/// A parameter tensor whose `.grad` is a fresh zero tensor of the same shape.
fn parameter(
    py: Python<'_>,
    shape: Shape,
    data: Vec<f64>,
) -> PyResult<(Py<PyTensor>, Py<PyTensor>)> {
    let zeros = try_zeros(data.len(), "Linear").py()?;
    let grad = Py::new(py, PyTensor::wrap(shape, zeros)?)?;
    let mut p = PyTensor::wrap(shape, data)?;
    p.grad = Some(grad.clone_ref(py));
    Ok((Py::new(py, p)?, grad))
}

#[pymethods]
impl Linear {
    /// Accepts any arguments; `__init__` checks them and draws the parameters.
    #[new]
    #[pyo3(
        signature = (*_args, **_kwargs),
        text_signature = "(in_features, out_features, bias=True, generator=None)"
    )]
    fn new(
        _args: &Bound<'_, PyTuple>,
        _kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyClassInitializer<Linear> {
        module_base().add_subclass(Linear { p: None })
    }

    #[pyo3(signature = (in_features, out_features, bias = Truthy(true), generator = None))]
    fn __init__(
        slf: &Bound<'_, Self>,
        in_features: &Bound<'_, PyAny>,
        out_features: &Bound<'_, PyAny>,
        bias: Truthy,
        generator: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let py = slf.py();
        let in_f = check_size(in_features, "Linear", "in_features")?;
        let out_f = check_size(out_features, "Linear", "out_features")?;
        let g = resolve(py, generator)?;
        let (w, b) = linear_init(&mut g.busy_mut()?.g, in_f, out_f, bias.0).py()?;
        let (weight, weight_grad) = parameter(py, Shape::Matrix(out_f, in_f), w)?;
        let (bias, bias_grad) = match bias.0 {
            true => {
                let (b, g) = parameter(py, Shape::Vector(out_f), b)?;
                (Some(b), Some(g))
            }
            false => (None, None),
        };
        slf.busy_mut()?.p = Some(LinearParams {
            state: LinearState::new(in_f, out_f),
            weight,
            bias,
            weight_grad,
            bias_grad,
        });
        Ok(())
    }

    /// A Linear that adopts these four tensors, as they are (for `copy` and `pickle`,
    /// which must keep a parameter the same object as an optimizer's copy of it).
    #[staticmethod]
    fn _from_tensors(
        py: Python<'_>,
        weight: Bound<'_, PyTensor>,
        bias: Option<Bound<'_, PyTensor>>,
        weight_grad: Bound<'_, PyTensor>,
        bias_grad: Option<Bound<'_, PyTensor>>,
    ) -> PyResult<Py<Linear>> {
        let p = LinearParams::adopt(weight, bias, weight_grad, bias_grad)?;
        Py::new(py, module_base().add_subclass(Linear { p: Some(p) }))
    }

    /// Make this Linear (an instance of a Python subclass, for `copy` and `pickle`)
    /// adopt these four tensors, as `_from_tensors` does.
    fn _adopt(
        slf: &Bound<'_, Self>,
        weight: Bound<'_, PyTensor>,
        bias: Option<Bound<'_, PyTensor>>,
        weight_grad: Bound<'_, PyTensor>,
        bias_grad: Option<Bound<'_, PyTensor>>,
    ) -> PyResult<()> {
        let p = LinearParams::adopt(weight, bias, weight_grad, bias_grad)?;
        slf.busy_mut()?.p = Some(p);
        Ok(())
    }

    #[getter]
    fn in_features(slf: &Bound<'_, Self>) -> PyResult<usize> {
        let this = slf.busy_ref()?;
        Ok(this.params()?.state.in_features())
    }

    #[getter]
    fn out_features(slf: &Bound<'_, Self>) -> PyResult<usize> {
        let this = slf.busy_ref()?;
        Ok(this.params()?.state.out_features())
    }

    #[getter]
    fn weight(slf: &Bound<'_, Self>, py: Python<'_>) -> PyResult<Py<PyTensor>> {
        let this = slf.busy_ref()?;
        Ok(this.params()?.weight.clone_ref(py))
    }

    #[getter]
    fn bias(slf: &Bound<'_, Self>, py: Python<'_>) -> PyResult<Option<Py<PyTensor>>> {
        let this = slf.busy_ref()?;
        Ok(this.params()?.bias.as_ref().map(|b| b.clone_ref(py)))
    }

    #[getter]
    fn weight_grad(slf: &Bound<'_, Self>, py: Python<'_>) -> PyResult<Py<PyTensor>> {
        let this = slf.busy_ref()?;
        Ok(this.params()?.weight_grad.clone_ref(py))
    }

    #[getter]
    fn bias_grad(slf: &Bound<'_, Self>, py: Python<'_>) -> PyResult<Option<Py<PyTensor>>> {
        let this = slf.busy_ref()?;
        Ok(this.params()?.bias_grad.as_ref().map(|b| b.clone_ref(py)))
    }

    /// `x W^T + b` for a (batch, in) input.
    fn forward(slf: &Bound<'_, Self>, x: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        slf.busy_ref()?.params()?;
        let (data, shape) = tensor_data_with(x, || Linear::name_of(slf))?;
        let (y, shape) = slf.busy_mut()?.forward_buf(slf.py(), data, shape)?;
        PyTensor::wrap(shape, y)
    }

    /// Accumulate dL/dW and dL/db; return dL/dx.
    fn backward(slf: &Bound<'_, Self>, grad: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        slf.busy_ref()?.params()?;
        let (g, shape) = tensor_data_with(grad, || Linear::name_of(slf))?;
        let (dx, shape) = slf.busy_ref()?.backward_buf(slf.py(), &g, shape)?;
        PyTensor::wrap(shape, dx)
    }

    #[pyo3(signature = (*input))]
    fn __call__(slf: &Bound<'_, Self>, input: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
        if input.len() == 1 && runs_natively::<Linear>(slf.as_any())? {
            let y = Linear::forward(slf, &input.get_item(0)?)?;
            return Ok(Bound::new(slf.py(), y)?.into_any().unbind());
        }
        Ok(slf
            .call_method1(intern!(slf.py(), "forward"), input)?
            .unbind())
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some(p) = &self.p {
            visit.call(&p.weight)?;
            if let Some(b) = &p.bias {
                visit.call(b)?;
            }
            visit.call(&p.weight_grad)?;
            if let Some(b) = &p.bias_grad {
                visit.call(b)?;
            }
        }
        Ok(())
    }

    /// `[(weight, weight_grad), (bias, bias_grad)]` (no bias for `bias=False`).
    fn param<'py>(slf: &Bound<'py, Self>, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let this = slf.busy_ref()?;
        let p = this.params()?;
        let mut out = vec![(p.weight.clone_ref(py), p.weight_grad.clone_ref(py))];
        if let (Some(b), Some(g)) = (&p.bias, &p.bias_grad) {
            out.push((b.clone_ref(py), g.clone_ref(py)));
        }
        PyList::new(py, out)
    }

    fn _param_names<'py>(slf: &Bound<'py, Self>, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let this = slf.busy_ref()?;
        let names: &[&str] = match this.params()?.bias {
            Some(_) => &["weight", "bias"],
            None => &["weight"],
        };
        PyList::new(py, names)
    }

    fn _name(slf: &Bound<'_, Self>) -> PyResult<String> {
        let this = slf.busy_ref()?;
        this.who()
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let this = slf.busy_ref()?;
        Ok({
            match &this.p {
                Some(p) => format!(
                    "Linear(in_features={}, out_features={}, bias={})",
                    p.state.in_features(),
                    p.state.out_features(),
                    if p.bias.is_some() { "True" } else { "False" }
                ),
                None => "Linear(not initialized)".to_string(),
            }
        })
    }
}

// ---------------------------------------------------------------- Dropout

/// In training mode, zero each element with probability `p` and scale the others
/// by `1 / (1 - p)` (docs/NUMERICS.md, "Dropout"); the identity in eval mode.
///
/// `generator` is None for the default generator, looked up at each forward.
#[pyclass(extends = Module, subclass, module = "pyfw_rs", name = "Dropout")]
pub struct Dropout {
    pub(crate) state: DropoutState,
    pub(crate) generator: Option<Py<PyGenerator>>,
}

impl Dropout {
    /// Forward on a buffer, in the training mode of `slf`.
    fn forward_buf(slf: &Bound<'_, Self>, x: Vec<f64>, shape: Shape) -> PyResult<Vec<f64>> {
        let py = slf.py();
        let training = slf.as_super().busy_ref()?.training;
        let generator = slf.busy_ref()?.generator.as_ref().map(|g| g.clone_ref(py));
        let mut me = slf.busy_mut()?;
        let out = if me.state.draws(training) {
            let g = resolve(py, generator.as_ref().map(|g| g.bind(py).as_any()))?;
            let mut g = g.busy_mut()?;
            me.state.forward(x, shape, Some(&mut g.g))
        } else {
            me.state.forward(x, shape, None)
        };
        out.map_err(|e| renamed(e, "Dropout", slf.as_any()))
    }

    /// Backward on a buffer.
    fn backward_buf(slf: &Bound<'_, Self>, g: Vec<f64>, shape: Shape) -> PyResult<Vec<f64>> {
        slf.busy_ref()?
            .state
            .backward(g, shape)
            .map_err(|e| renamed(e, "Dropout", slf.as_any()))
    }
}

#[pymethods]
impl Dropout {
    /// Accepts any arguments; `__init__` checks and sets them, so that Python
    /// subclasses may have constructors of their own.
    #[new]
    #[pyo3(signature = (*_args, **_kwargs), text_signature = "(p=0.5, generator=None)")]
    fn new(
        _args: &Bound<'_, PyTuple>,
        _kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyClassInitializer<Dropout>> {
        let state = DropoutState::new(0.5).py()?;
        Ok(module_base().add_subclass(Dropout {
            state,
            generator: None,
        }))
    }

    #[pyo3(signature = (p = Given::Missing, generator = None))]
    fn __init__<'py>(
        slf: &Bound<'py, Self>,
        p: Given<'py>,
        generator: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<()> {
        let py = slf.py();
        let state = DropoutState::new(p.or(0.5, "Dropout", "p")?).py()?;
        let generator = match generator {
            Some(g) if !g.is_none() => Some(resolve(py, Some(g))?.unbind()),
            _ => None,
        };
        let mut me = slf.busy_mut()?;
        me.state = state;
        me.generator = generator;
        Ok(())
    }

    /// The probability of zeroing an element; setting it checks it as the constructor does.
    #[getter]
    fn get_p(slf: &Bound<'_, Self>) -> PyResult<f64> {
        let this = slf.busy_ref()?;
        Ok(this.state.p())
    }

    #[setter]
    fn set_p(slf: &Bound<'_, Self>, p: &Bound<'_, PyAny>) -> PyResult<()> {
        let p = Given::Value(p.clone()).or(0.5, "Dropout", "p")?;
        let state = DropoutState::new(p).py()?;
        slf.busy_mut()?.state = state;
        Ok(())
    }

    /// The generator given to the constructor, or None for the default generator.
    #[getter]
    fn generator(slf: &Bound<'_, Self>, py: Python<'_>) -> PyResult<Option<Py<PyGenerator>>> {
        let this = slf.busy_ref()?;
        Ok(this.generator.as_ref().map(|g| g.clone_ref(py)))
    }

    /// Drop and rescale (training mode), or pass `x` through (eval mode).
    fn forward(slf: &Bound<'_, Self>, x: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        let (data, shape) = tensor_data_with(x, || type_name(slf.as_any()))?;
        PyTensor::wrap(shape, Dropout::forward_buf(slf, data, shape)?)
    }

    /// `g * m` with the mask of the last forward.
    fn backward(slf: &Bound<'_, Self>, grad: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        let (g, shape) = tensor_data_with(grad, || type_name(slf.as_any()))?;
        PyTensor::wrap(shape, Dropout::backward_buf(slf, g, shape)?)
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some(g) = &self.generator {
            visit.call(g)?;
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        self.generator = None;
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let p = slf.busy_ref()?.state.p();
        Ok(format!(
            "{}(p={})",
            type_name(slf.as_any()),
            py_repr(&PyFloat::new(slf.py(), p))?
        ))
    }
}

// ---------------------------------------------------------------- LayerNorm

/// Each row normalized over its last dimension, times `weight`, plus `bias`
/// (docs/NUMERICS.md, "LayerNorm"). `weight` starts at 1 and `bias` at 0.
#[pyclass(extends = Module, subclass, module = "pyfw_rs", name = "LayerNorm")]
pub struct LayerNorm {
    state: LayerNormState,
    /// `weight` and `bias`, each with its gradient, those that are there.
    slots: Vec<(Py<PyTensor>, Py<PyTensor>)>,
}

/// The run of one LayerNorm.
const LAYER_NORM: LayerClass = LayerClass {
    keeps: keeps::<LayerNorm>,
    who: |m| Ok(m.cast::<LayerNorm>()?.busy_ref()?.state.name()),
    hold: |m, _, _| {
        let py = m.py();
        let me = m.cast::<LayerNorm>()?.busy_mut()?;
        let mut tensors = [None, None];
        for ((t, g), held) in me.slots.iter().zip(&mut tensors) {
            let (t, g) = (t.bind(py).clone(), g.bind(py).clone());
            *held = Some((t.busy_mut()?, g.busy_mut()?));
        }
        Ok(Held::LayerNorm(HeldLayerNorm(me, tensors)))
    },
};

/// A borrowed parameter tensor and its gradient tensor.
type HeldPair<'py> = (PyRefMut<'py, PyTensor>, PyRefMut<'py, PyTensor>);

/// A LayerNorm and its tensors, borrowed (as many as it has slots).
pub(crate) struct HeldLayerNorm<'py>(PyRefMut<'py, LayerNorm>, [Option<HeldPair<'py>>; 2]);

impl HeldLayer for HeldLayerNorm<'_> {
    fn layer(&mut self) -> Layer<'_> {
        Layer {
            kind: LayerKind::LayerNorm(&mut self.0.state),
            params: self
                .1
                .iter_mut()
                .flatten()
                .map(|(t, g)| Slot {
                    value: t.t.data_mut(),
                    grad: g.t.data_mut(),
                })
                .collect(),
        }
    }

    fn slots(&self) -> Vec<SlotRefs<'_>> {
        self.0
            .slots
            .iter()
            .zip(self.1.iter().flatten())
            .map(|((t, g), (tr, _))| (t, g, tr.grad.as_ref()))
            .collect()
    }
}

/// A parameter tensor and its gradient tensor, if the slot is there.
type MaybePair<'py> = (Option<Bound<'py, PyTensor>>, Option<Bound<'py, PyTensor>>);

/// The `weight` and `bias` slots (each with its gradient) a normalization layer
/// `kind` of `c` channels adopts as they are, for `copy` and `pickle`; `has` says
/// which it has, and a slot it has not is `(None, None)`.
fn adopt_slots(
    kind: &str,
    c: usize,
    has: (bool, bool),
    tensors: [MaybePair<'_>; 2],
) -> PyResult<Vec<(Py<PyTensor>, Py<PyTensor>)>> {
    let mut slots = Vec::new();
    for (there, (t, g)) in [has.0, has.1].into_iter().zip(tensors) {
        match (there, t, g) {
            (false, None, None) => {}
            (true, Some(t), Some(g)) => {
                let fits = t.busy_ref()?.t.shape() == Shape::Vector(c)
                    && g.busy_ref()?.t.shape() == Shape::Vector(c);
                if !fits {
                    return Err(PyValueError::new_err(format!(
                        "{kind}._adopt: tensors do not fit a {kind}({c})"
                    )));
                }
                t.busy_mut()?.grad = Some(g.clone().unbind());
                slots.push((t.unbind(), g.unbind()));
            }
            _ => {
                return Err(PyValueError::new_err(format!(
                    "{kind}._adopt: the tensors do not match its slots"
                )))
            }
        }
    }
    Ok(slots)
}

/// `normalized_shape`: an int, or a sequence of one int.
fn normalized_shape(v: &Bound<'_, PyAny>) -> PyResult<usize> {
    if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        let items: Vec<Bound<'_, PyAny>> = v.try_iter()?.collect::<PyResult<_>>()?;
        if items.len() != 1 {
            return Err(PyValueError::new_err(format!(
                "LayerNorm: normalized_shape must have one dimension (the last), got {}",
                py_repr(v)?
            )));
        }
        return check_size(&items[0], "LayerNorm", "normalized_shape");
    }
    check_size(v, "LayerNorm", "normalized_shape")
}

impl LayerNorm {
    fn slot(&self, py: Python<'_>, name: &str, grad: bool) -> Option<Py<PyTensor>> {
        let (w, b) = self.state.slots();
        let i = match name {
            "weight" if w => 0,
            "bias" if b => usize::from(w),
            _ => return None,
        };
        let (t, g) = &self.slots[i];
        Some(if grad { g } else { t }.clone_ref(py))
    }

    /// One run of this LayerNorm through the stack runner.
    fn run<'py>(
        slf: &Bound<'py, Self>,
        x: &Bound<'py, PyAny>,
        backward: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        run_alone(slf.as_any(), &LAYER_NORM, x, backward)
    }
}

#[pymethods]
impl LayerNorm {
    /// Accepts any arguments; `__init__` checks and sets them.
    #[new]
    #[pyo3(
        signature = (*_args, **_kwargs),
        text_signature = "(normalized_shape, eps=1e-05, elementwise_affine=True, bias=True)"
    )]
    fn new(
        _args: &Bound<'_, PyTuple>,
        _kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyClassInitializer<LayerNorm> {
        module_base().add_subclass(LayerNorm {
            state: LayerNormState::new(1, 1e-5, false, false),
            slots: Vec::new(),
        })
    }

    #[pyo3(signature = (normalized_shape, eps = Given::Missing, elementwise_affine = Truthy(true), bias = Truthy(true)))]
    fn __init__<'py>(
        slf: &Bound<'py, Self>,
        normalized_shape: &Bound<'py, PyAny>,
        eps: Given<'py>,
        elementwise_affine: Truthy,
        bias: Truthy,
    ) -> PyResult<()> {
        let py = slf.py();
        let c = self::normalized_shape(normalized_shape)?;
        let eps = eps.or(1e-5, "LayerNorm", "eps")?;
        let state = LayerNormState::new(c, eps, elementwise_affine.0, bias.0);
        let (w, b) = state.slots();
        let mut slots = Vec::new();
        for (there, value) in [(w, 1.0), (b, 0.0)] {
            if there {
                let data = vec![value; c];
                slots.push(parameter(py, Shape::Vector(c), data)?);
            }
        }
        let mut me = slf.busy_mut()?;
        me.state = state;
        me.slots = slots;
        Ok(())
    }

    /// Adopt these tensors, as they are (for `copy` and `pickle`); None for a slot that is not there.
    fn _adopt(
        slf: &Bound<'_, Self>,
        weight: Option<Bound<'_, PyTensor>>,
        bias: Option<Bound<'_, PyTensor>>,
        weight_grad: Option<Bound<'_, PyTensor>>,
        bias_grad: Option<Bound<'_, PyTensor>>,
    ) -> PyResult<()> {
        let (c, has) = {
            let me = slf.busy_ref()?;
            (me.state.size(), me.state.slots())
        };
        let tensors = [(weight, weight_grad), (bias, bias_grad)];
        slf.busy_mut()?.slots = adopt_slots("LayerNorm", c, has, tensors)?;
        Ok(())
    }

    #[getter]
    fn normalized_shape<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let c = slf.busy_ref()?.state.size();
        PyTuple::new(slf.py(), [c])
    }

    #[getter]
    fn eps(slf: &Bound<'_, Self>) -> PyResult<f64> {
        Ok(slf.busy_ref()?.state.eps())
    }

    #[getter]
    fn elementwise_affine(slf: &Bound<'_, Self>) -> PyResult<bool> {
        Ok(slf.busy_ref()?.state.slots().0)
    }

    #[getter]
    fn weight(slf: &Bound<'_, Self>) -> PyResult<Option<Py<PyTensor>>> {
        Ok(slf.busy_ref()?.slot(slf.py(), "weight", false))
    }

    #[getter]
    fn bias(slf: &Bound<'_, Self>) -> PyResult<Option<Py<PyTensor>>> {
        Ok(slf.busy_ref()?.slot(slf.py(), "bias", false))
    }

    #[getter]
    fn weight_grad(slf: &Bound<'_, Self>) -> PyResult<Option<Py<PyTensor>>> {
        Ok(slf.busy_ref()?.slot(slf.py(), "weight", true))
    }

    #[getter]
    fn bias_grad(slf: &Bound<'_, Self>) -> PyResult<Option<Py<PyTensor>>> {
        Ok(slf.busy_ref()?.slot(slf.py(), "bias", true))
    }

    /// Normalize every row of `x` over its last dimension.
    fn forward<'py>(slf: &Bound<'py, Self>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        LayerNorm::run(slf, x, false)
    }

    /// Accumulate dL/dweight and dL/dbias; return dL/dx.
    fn backward<'py>(
        slf: &Bound<'py, Self>,
        grad: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        LayerNorm::run(slf, grad, true)
    }

    #[pyo3(signature = (*input))]
    fn __call__<'py>(
        slf: &Bound<'py, Self>,
        input: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if input.len() == 1 && runs_natively::<LayerNorm>(slf.as_any())? {
            return LayerNorm::forward(slf, &input.get_item(0)?);
        }
        slf.call_method1(intern!(slf.py(), "forward"), input)
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        for (t, g) in &self.slots {
            visit.call(t)?;
            visit.call(g)?;
        }
        Ok(())
    }

    /// `[(weight, weight_grad), (bias, bias_grad)]`, those that are there.
    fn param<'py>(slf: &Bound<'py, Self>, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let this = slf.busy_ref()?;
        PyList::new(
            py,
            this.slots
                .iter()
                .map(|(t, g)| (t.clone_ref(py), g.clone_ref(py))),
        )
    }

    fn _param_names<'py>(slf: &Bound<'py, Self>, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let (w, b) = slf.busy_ref()?.state.slots();
        let names = [("weight", w), ("bias", b)];
        PyList::new(py, names.iter().filter(|(_, t)| *t).map(|(n, _)| *n))
    }

    fn _name(slf: &Bound<'_, Self>) -> PyResult<String> {
        Ok(slf.busy_ref()?.state.name())
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let (c, eps, affine) = {
            let me = slf.busy_ref()?;
            (me.state.size(), me.state.eps(), me.state.slots().0)
        };
        Ok(format!(
            "{}(({c},), eps={}, elementwise_affine={})",
            type_name(slf.as_any()),
            py_repr(&PyFloat::new(slf.py(), eps))?,
            if affine { "True" } else { "False" }
        ))
    }
}

// ---------------------------------------------------------------- BatchNorm1d and BatchNorm2d

/// What `BatchNorm1d` and `BatchNorm2d` share: each channel normalized by the
/// batch's statistics (training mode, which updates the running ones) or the
/// running statistics (eval mode), times `weight`, plus `bias` (docs/NUMERICS.md,
/// "BatchNorm1d"). `weight` starts at 1 and `bias` at 0; the buffers
/// `running_mean`, `running_var` and `num_batches_tracked` (a float tensor of
/// shape (1,)) are registered as torch names them.
#[pyclass(extends = Module, subclass, module = "pyfw_rs", name = "_BatchNorm")]
pub struct BatchNorm {
    state: BatchNormState,
    /// `weight` and `bias`, each with its gradient, with `affine`.
    slots: Vec<(Py<PyTensor>, Py<PyTensor>)>,
}

/// Each channel of an `(N, C)` or `(N, C, L)` input normalized (docs/NUMERICS.md, "BatchNorm1d").
#[pyclass(extends = BatchNorm, subclass, dict, module = "pyfw_rs", name = "BatchNorm1d")]
pub struct BatchNorm1d;

/// Each channel of an `(N, C, H, W)` input normalized over its `N * H * W` values
/// (docs/NUMERICS.md, "BatchNorm2d").
#[pyclass(extends = BatchNorm, subclass, dict, module = "pyfw_rs", name = "BatchNorm2d")]
pub struct BatchNorm2d;

/// The base part of a new BatchNorm1d or BatchNorm2d, before `__init__`.
fn batch_norm_base() -> PyClassInitializer<BatchNorm> {
    module_base().add_subclass(BatchNorm {
        state: BatchNormState::new(1, 1e-5, Some(0.1), false, false),
        slots: Vec::new(),
    })
}

#[pymethods]
impl BatchNorm1d {
    /// Accepts any arguments; `__init__` checks and sets them.
    #[new]
    #[pyo3(
        signature = (*_args, **_kwargs),
        text_signature = "(num_features, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)"
    )]
    fn new(
        _args: &Bound<'_, PyTuple>,
        _kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyClassInitializer<BatchNorm1d> {
        batch_norm_base().add_subclass(BatchNorm1d)
    }
}

#[pymethods]
impl BatchNorm2d {
    /// Accepts any arguments; `__init__` checks and sets them.
    #[new]
    #[pyo3(
        signature = (*_args, **_kwargs),
        text_signature = "(num_features, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)"
    )]
    fn new(
        _args: &Bound<'_, PyTuple>,
        _kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyClassInitializer<BatchNorm2d> {
        batch_norm_base().add_subclass(BatchNorm2d)
    }
}

/// The buffers of a BatchNorm1d, in `state_dict` order.
const BN_BUFFERS: [&str; 3] = ["running_mean", "running_var", "num_batches_tracked"];

/// The run of one BatchNorm1d or BatchNorm2d.
const BATCH_NORM: LayerClass = LayerClass {
    keeps: keeps::<BatchNorm>,
    who: |m| Ok(m.cast::<BatchNorm>()?.busy_ref()?.state.name()),
    hold: hold_batch_norm,
};

/// A BatchNorm1d or BatchNorm2d, its parameter tensors, its training mode and its buffers, borrowed.
pub(crate) struct HeldBatchNorm<'py>(
    PyRefMut<'py, BatchNorm>,
    [Option<HeldPair<'py>>; 2],
    bool,
    Option<[PyRefMut<'py, PyTensor>; 3]>,
);

fn hold_batch_norm<'py>(
    m: &Bound<'py, PyAny>,
    _gens: &mut Vec<Bound<'py, PyGenerator>>,
    _draw: bool,
) -> PyResult<Held<'py>> {
    let py = m.py();
    let bn = m.cast::<BatchNorm>()?;
    let training = bn.as_super().busy_ref()?.training;
    let (name, c) = {
        let me = bn.busy_ref()?;
        (me.state.name(), me.state.size())
    };
    // The buffers as they are now (None without running statistics).
    let mut found = Vec::new();
    for (k, b) in BN_BUFFERS.iter().enumerate() {
        let v = m.getattr(*b)?;
        if v.is_none() {
            continue;
        }
        let want = Shape::Vector(if k == 2 { 1 } else { c });
        let t = v.cast_into::<PyTensor>().map_err(|_| {
            PyTypeError::new_err(format!(
                "{name}: buffer {b} must be a pyfw_rs Tensor or None"
            ))
        })?;
        if t.busy_ref()?.t.shape() != want {
            return Err(PyValueError::new_err(format!(
                "{name}: buffer {b} must have shape {want}, got {}",
                t.busy_ref()?.t.shape()
            )));
        }
        found.push(t);
    }
    let running = match found.len() {
        0 => None,
        3 => Some([
            found[0].busy_mut()?,
            found[1].busy_mut()?,
            found[2].busy_mut()?,
        ]),
        _ => {
            return Err(PyValueError::new_err(format!(
                "{name}: the buffers {} must all be tensors or all None",
                BN_BUFFERS.join(", ")
            )))
        }
    };
    let me = bn.busy_mut()?;
    let mut tensors = [None, None];
    for ((t, g), held) in me.slots.iter().zip(&mut tensors) {
        let (t, g) = (t.bind(py).clone(), g.bind(py).clone());
        *held = Some((t.busy_mut()?, g.busy_mut()?));
    }
    Ok(Held::BatchNorm(HeldBatchNorm(
        me, tensors, training, running,
    )))
}

impl HeldLayer for HeldBatchNorm<'_> {
    fn layer(&mut self) -> Layer<'_> {
        let HeldBatchNorm(me, tensors, training, running) = self;
        Layer {
            kind: LayerKind::BatchNorm(
                &mut me.state,
                *training,
                running.as_mut().map(|[a, b, c]| Running {
                    mean: a.t.data_mut(),
                    var: b.t.data_mut(),
                    count: c.t.data_mut(),
                }),
            ),
            params: tensors
                .iter_mut()
                .flatten()
                .map(|(t, g)| Slot {
                    value: t.t.data_mut(),
                    grad: g.t.data_mut(),
                })
                .collect(),
        }
    }

    fn slots(&self) -> Vec<SlotRefs<'_>> {
        self.0
            .slots
            .iter()
            .zip(self.1.iter().flatten())
            .map(|((t, g), (tr, _))| (t, g, tr.grad.as_ref()))
            .collect()
    }
}

impl BatchNorm {
    fn slot(&self, py: Python<'_>, i: usize, grad: bool) -> Option<Py<PyTensor>> {
        let (t, g) = self.slots.get(i)?;
        Some(if grad { g } else { t }.clone_ref(py))
    }

    /// One run of this layer through the stack runner.
    fn run<'py>(
        slf: &Bound<'py, Self>,
        x: &Bound<'py, PyAny>,
        backward: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        run_alone(slf.as_any(), &BATCH_NORM, x, backward)
    }
}

#[pymethods]
impl BatchNorm {
    #[pyo3(signature = (num_features, eps = Given::Missing, momentum = Given::Missing, affine = Truthy(true), track_running_stats = Truthy(true)))]
    fn __init__<'py>(
        slf: &Bound<'py, Self>,
        num_features: &Bound<'py, PyAny>,
        eps: Given<'py>,
        momentum: Given<'py>,
        affine: Truthy,
        track_running_stats: Truthy,
    ) -> PyResult<()> {
        let py = slf.py();
        let two_d = slf.is_instance_of::<BatchNorm2d>();
        let who = if two_d { "BatchNorm2d" } else { "BatchNorm1d" };
        let c = check_size(num_features, who, "num_features")?;
        let eps = eps.or(1e-5, who, "eps")?;
        let momentum = match &momentum {
            Given::Value(v) if v.is_none() => None,
            m => Some(m.or(0.1, who, "momentum")?),
        };
        let mut state = BatchNormState::new(c, eps, momentum, affine.0, track_running_stats.0);
        if two_d {
            state = state.two_d();
        }
        let mut slots = Vec::new();
        if affine.0 {
            for value in [1.0, 0.0] {
                slots.push(parameter(py, Shape::Vector(c), vec![value; c])?);
            }
        }
        {
            let mut me = slf.busy_mut()?;
            me.state = state;
            me.slots = slots;
        }
        for (name, value, n) in [
            (BN_BUFFERS[0], 0.0, c),
            (BN_BUFFERS[1], 1.0, c),
            (BN_BUFFERS[2], 0.0, 1),
        ] {
            let t = if track_running_stats.0 {
                Some(Py::new(
                    py,
                    PyTensor::wrap(Shape::Vector(n), vec![value; n])?,
                )?)
            } else {
                None
            };
            slf.call_method1(intern!(py, "register_buffer"), (name, t))?;
        }
        Ok(())
    }

    /// Adopt these tensors, as they are (for `copy` and `pickle`); None for a slot that is not there.
    fn _adopt(
        slf: &Bound<'_, Self>,
        weight: Option<Bound<'_, PyTensor>>,
        bias: Option<Bound<'_, PyTensor>>,
        weight_grad: Option<Bound<'_, PyTensor>>,
        bias_grad: Option<Bound<'_, PyTensor>>,
    ) -> PyResult<()> {
        let (c, affine, two_d) = {
            let me = slf.busy_ref()?;
            (me.state.size(), me.state.flags().0, me.state.is_two_d())
        };
        let tensors = [(weight, weight_grad), (bias, bias_grad)];
        let kind = if two_d { "BatchNorm2d" } else { "BatchNorm1d" };
        slf.busy_mut()?.slots = adopt_slots(kind, c, (affine, affine), tensors)?;
        Ok(())
    }

    #[getter]
    fn num_features(slf: &Bound<'_, Self>) -> PyResult<usize> {
        Ok(slf.busy_ref()?.state.size())
    }

    #[getter]
    fn eps(slf: &Bound<'_, Self>) -> PyResult<f64> {
        Ok(slf.busy_ref()?.state.eps())
    }

    #[getter]
    fn momentum(slf: &Bound<'_, Self>) -> PyResult<Option<f64>> {
        Ok(slf.busy_ref()?.state.momentum())
    }

    #[getter]
    fn affine(slf: &Bound<'_, Self>) -> PyResult<bool> {
        Ok(slf.busy_ref()?.state.flags().0)
    }

    #[getter]
    fn track_running_stats(slf: &Bound<'_, Self>) -> PyResult<bool> {
        Ok(slf.busy_ref()?.state.flags().1)
    }

    #[getter]
    fn weight(slf: &Bound<'_, Self>) -> PyResult<Option<Py<PyTensor>>> {
        Ok(slf.busy_ref()?.slot(slf.py(), 0, false))
    }

    #[getter]
    fn bias(slf: &Bound<'_, Self>) -> PyResult<Option<Py<PyTensor>>> {
        Ok(slf.busy_ref()?.slot(slf.py(), 1, false))
    }

    #[getter]
    fn weight_grad(slf: &Bound<'_, Self>) -> PyResult<Option<Py<PyTensor>>> {
        Ok(slf.busy_ref()?.slot(slf.py(), 0, true))
    }

    #[getter]
    fn bias_grad(slf: &Bound<'_, Self>) -> PyResult<Option<Py<PyTensor>>> {
        Ok(slf.busy_ref()?.slot(slf.py(), 1, true))
    }

    /// Normalize every channel of `x`.
    fn forward<'py>(slf: &Bound<'py, Self>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        BatchNorm::run(slf, x, false)
    }

    /// Accumulate dL/dweight and dL/dbias; return dL/dx.
    fn backward<'py>(
        slf: &Bound<'py, Self>,
        grad: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        BatchNorm::run(slf, grad, true)
    }

    #[pyo3(signature = (*input))]
    fn __call__<'py>(
        slf: &Bound<'py, Self>,
        input: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if input.len() == 1 && runs_natively::<BatchNorm>(slf.as_any())? {
            return BatchNorm::forward(slf, &input.get_item(0)?);
        }
        slf.call_method1(intern!(slf.py(), "forward"), input)
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        for (t, g) in &self.slots {
            visit.call(t)?;
            visit.call(g)?;
        }
        Ok(())
    }

    /// `[(weight, weight_grad), (bias, bias_grad)]` with `affine`, else `[]`.
    fn param<'py>(slf: &Bound<'py, Self>, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let this = slf.busy_ref()?;
        PyList::new(
            py,
            this.slots
                .iter()
                .map(|(t, g)| (t.clone_ref(py), g.clone_ref(py))),
        )
    }

    fn _param_names<'py>(slf: &Bound<'py, Self>, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let affine = slf.busy_ref()?.state.flags().0;
        let names: &[&str] = if affine { &["weight", "bias"] } else { &[] };
        PyList::new(py, names)
    }

    fn _name(slf: &Bound<'_, Self>) -> PyResult<String> {
        Ok(slf.busy_ref()?.state.name())
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let py = slf.py();
        let (c, eps, momentum, (affine, track)) = {
            let me = slf.busy_ref()?;
            let s = &me.state;
            (s.size(), s.eps(), s.momentum(), s.flags())
        };
        let momentum = match momentum {
            Some(m) => py_repr(&PyFloat::new(py, m))?,
            None => "None".to_string(),
        };
        let flag = |b: bool| if b { "True" } else { "False" };
        Ok(format!(
            "{}({c}, eps={}, momentum={momentum}, affine={}, track_running_stats={})",
            type_name(slf.as_any()),
            py_repr(&PyFloat::new(py, eps))?,
            flag(affine),
            flag(track)
        ))
    }
}

// ---------------------------------------------------------------- Flatten and Unflatten

/// What `Flatten` and `Unflatten` share: each holds a [`ReshapeState`]
/// and runs through the stack runner as `$class`.
macro_rules! reshape_methods {
    ($ty:ident, $class:ident) => {
        impl HeldLayer for PyRefMut<'_, $ty> {
            fn layer(&mut self) -> Layer<'_> {
                Layer {
                    kind: LayerKind::Reshape(&mut self.state),
                    params: Slots::new(),
                }
            }

            fn slots(&self) -> Vec<SlotRefs<'_>> {
                Vec::new()
            }
        }

        /// The run of one layer of this class.
        const $class: LayerClass = LayerClass {
            keeps: keeps::<$ty>,
            who: |m| Ok(type_name(m)),
            hold: |m, _, _| Ok(Held::$ty(m.cast::<$ty>()?.busy_mut()?)),
        };

        impl $ty {
            /// One run of this layer through the stack runner.
            fn run<'py>(
                slf: &Bound<'py, Self>,
                x: &Bound<'py, PyAny>,
                backward: bool,
            ) -> PyResult<Bound<'py, PyAny>> {
                run_alone(slf.as_any(), &$class, x, backward)
            }
        }
    };
}

/// Dims `start_dim..=end_dim` of the input merged into one, as torch's
/// `nn.Flatten`; the values pass through unchanged (docs/NUMERICS.md,
/// "Flatten and Unflatten").
#[pyclass(extends = Module, subclass, module = "pyfw_rs", name = "Flatten")]
pub struct Flatten {
    state: ReshapeState,
}

reshape_methods!(Flatten, FLATTEN);

#[pymethods]
impl Flatten {
    /// Accepts any arguments; `__init__` checks and sets them.
    #[new]
    #[pyo3(signature = (*_args, **_kwargs), text_signature = "(start_dim=1, end_dim=-1)")]
    fn new(
        _args: &Bound<'_, PyTuple>,
        _kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyClassInitializer<Flatten> {
        module_base().add_subclass(Flatten {
            state: ReshapeState::new(Reshape::Flatten(1, -1)),
        })
    }

    #[pyo3(signature = (start_dim = Given::Missing, end_dim = Given::Missing))]
    fn __init__(slf: &Bound<'_, Self>, start_dim: Given<'_>, end_dim: Given<'_>) -> PyResult<()> {
        let s = start_dim.or(1i64, "Flatten", "start_dim")?;
        let e = end_dim.or(-1i64, "Flatten", "end_dim")?;
        slf.busy_mut()?.state = ReshapeState::new(Reshape::Flatten(s, e));
        Ok(())
    }

    #[getter]
    fn start_dim(slf: &Bound<'_, Self>) -> PyResult<i64> {
        match slf.busy_ref()?.state.op() {
            Reshape::Flatten(s, _) => Ok(*s),
            Reshape::Unflatten(..) => unreachable!("a Flatten flattens"),
        }
    }

    #[getter]
    fn end_dim(slf: &Bound<'_, Self>) -> PyResult<i64> {
        match slf.busy_ref()?.state.op() {
            Reshape::Flatten(_, e) => Ok(*e),
            Reshape::Unflatten(..) => unreachable!("a Flatten flattens"),
        }
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        Ok(format!(
            "{}(start_dim={}, end_dim={})",
            type_name(slf.as_any()),
            Flatten::start_dim(slf)?,
            Flatten::end_dim(slf)?
        ))
    }

    /// The input's values, unchanged, in the new shape.
    fn forward<'py>(slf: &Bound<'py, Self>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        Flatten::run(slf, x, false)
    }

    /// The gradient's values, unchanged, in the shape of the last input.
    fn backward<'py>(
        slf: &Bound<'py, Self>,
        grad: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Flatten::run(slf, grad, true)
    }

    #[pyo3(signature = (*input))]
    fn __call__<'py>(
        slf: &Bound<'py, Self>,
        input: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if input.len() == 1 && runs_natively::<Flatten>(slf.as_any())? {
            return Flatten::forward(slf, &input.get_item(0)?);
        }
        slf.call_method1(intern!(slf.py(), "forward"), input)
    }

    fn _name(slf: &Bound<'_, Self>) -> String {
        type_name(slf.as_any())
    }
}

/// Dim `dim` of the input split into `unflattened_size` (a tuple or list of
/// ints, one of which may be -1), as torch's `nn.Unflatten`; the values pass
/// through unchanged (docs/NUMERICS.md, "Flatten and Unflatten").
#[pyclass(extends = Module, subclass, module = "pyfw_rs", name = "Unflatten")]
pub struct Unflatten {
    state: ReshapeState,
}

/// `unflattened_size`, checked as `pyfw.modules.Unflatten` checks it.
fn unflattened_size(v: &Bound<'_, PyAny>) -> PyResult<Vec<Option<usize>>> {
    let who = "Unflatten";
    if !(v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>()) {
        return Err(PyTypeError::new_err(format!(
            "{who}: unflattened_size must be a tuple or list of ints, got {}",
            type_name(v)
        )));
    }
    let items: Vec<Bound<'_, PyAny>> = v.try_iter()?.collect::<PyResult<_>>()?;
    if items.is_empty() {
        return Err(PyValueError::new_err(format!(
            "{who}: unflattened_size must hold at least one size"
        )));
    }
    let mut sizes = Vec::with_capacity(items.len());
    for item in &items {
        let k = Given::Value(item.clone()).or(0i64, who, "unflattened_size")?;
        if k < 1 && k != -1 {
            return Err(PyValueError::new_err(format!(
                "{who}: the sizes of unflattened_size must be positive (or one -1), got {}",
                py_repr(v)?
            )));
        }
        sizes.push(usize::try_from(k).ok());
    }
    if sizes.iter().filter(|k| k.is_none()).count() > 1 {
        return Err(PyValueError::new_err(format!(
            "{who}: only one size of unflattened_size may be -1, got {}",
            py_repr(v)?
        )));
    }
    Ok(sizes)
}

reshape_methods!(Unflatten, UNFLATTEN);

#[pymethods]
impl Unflatten {
    /// Accepts any arguments; `__init__` checks and sets them.
    #[new]
    #[pyo3(signature = (*_args, **_kwargs), text_signature = "(dim, unflattened_size)")]
    fn new(
        _args: &Bound<'_, PyTuple>,
        _kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyClassInitializer<Unflatten> {
        module_base().add_subclass(Unflatten {
            state: ReshapeState::new(Reshape::Unflatten(-1, vec![None])),
        })
    }

    fn __init__<'py>(
        slf: &Bound<'py, Self>,
        dim: &Bound<'py, PyAny>,
        unflattened_size: &Bound<'py, PyAny>,
    ) -> PyResult<()> {
        let d = Given::Value(dim.clone()).or(0i64, "Unflatten", "dim")?;
        let sizes = self::unflattened_size(unflattened_size)?;
        slf.busy_mut()?.state = ReshapeState::new(Reshape::Unflatten(d, sizes));
        Ok(())
    }

    #[getter]
    fn dim(slf: &Bound<'_, Self>) -> PyResult<i64> {
        match slf.busy_ref()?.state.op() {
            Reshape::Unflatten(d, _) => Ok(*d),
            Reshape::Flatten(..) => unreachable!("an Unflatten unflattens"),
        }
    }

    #[getter]
    fn unflattened_size<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let sizes: Vec<i64> = match slf.busy_ref()?.state.op() {
            Reshape::Unflatten(_, s) => s.iter().map(|k| k.map_or(-1, |k| k as i64)).collect(),
            Reshape::Flatten(..) => unreachable!("an Unflatten unflattens"),
        };
        PyTuple::new(slf.py(), sizes)
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let text = match slf.busy_ref()?.state.op() {
            Reshape::Unflatten(_, s) => size_text(s),
            Reshape::Flatten(..) => unreachable!("an Unflatten unflattens"),
        };
        Ok(format!(
            "{}(dim={}, unflattened_size={text})",
            type_name(slf.as_any()),
            Unflatten::dim(slf)?
        ))
    }

    /// The input's values, unchanged, in the new shape.
    fn forward<'py>(slf: &Bound<'py, Self>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        Unflatten::run(slf, x, false)
    }

    /// The gradient's values, unchanged, in the shape of the last input.
    fn backward<'py>(
        slf: &Bound<'py, Self>,
        grad: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Unflatten::run(slf, grad, true)
    }

    #[pyo3(signature = (*input))]
    fn __call__<'py>(
        slf: &Bound<'py, Self>,
        input: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if input.len() == 1 && runs_natively::<Unflatten>(slf.as_any())? {
            return Unflatten::forward(slf, &input.get_item(0)?);
        }
        slf.call_method1(intern!(slf.py(), "forward"), input)
    }

    fn _name(slf: &Bound<'_, Self>) -> String {
        type_name(slf.as_any())
    }
}

// ---------------------------------------------------------------- Sequential

/// A native layer borrowed for a run of the stack runner: the borrows of its
/// module and its tensors, from which it lends the runner its [`Layer`] view.
pub(crate) trait HeldLayer {
    /// The runner's view of the layer.
    fn layer(&mut self) -> Layer<'_>;
    /// Its parameter slots in table order: the parameter, the gradient tensor
    /// the layer accumulates into, and the parameter's `.grad`.
    fn slots(&self) -> Vec<SlotRefs<'_>>;
}

/// A held layer: one arm per class of [`NATIVE`], so that holding a layer
/// allocates nothing.
pub(crate) enum Held<'py> {
    Linear(HeldLinear<'py>),
    Activation(PyRefMut<'py, Activation>),
    Dropout(HeldDropout<'py>),
    LayerNorm(HeldLayerNorm<'py>),
    Flatten(PyRefMut<'py, Flatten>),
    Unflatten(PyRefMut<'py, Unflatten>),
    BatchNorm(HeldBatchNorm<'py>),
    Spatial(HeldSpatial<'py>),
}

impl Held<'_> {
    /// The runner's view of the layer.
    pub(crate) fn layer(&mut self) -> Layer<'_> {
        match self {
            Held::Linear(h) => h.layer(),
            Held::Activation(h) => h.layer(),
            Held::Dropout(h) => h.layer(),
            Held::LayerNorm(h) => h.layer(),
            Held::Flatten(h) => h.layer(),
            Held::Unflatten(h) => h.layer(),
            Held::BatchNorm(h) => h.layer(),
            Held::Spatial(h) => h.layer(),
        }
    }

    /// Its parameter slots in table order (see [`HeldLayer::slots`]).
    pub(crate) fn slots(&self) -> Vec<SlotRefs<'_>> {
        match self {
            Held::Linear(h) => h.slots(),
            Held::Activation(h) => h.slots(),
            Held::Dropout(h) => h.slots(),
            Held::LayerNorm(h) => h.slots(),
            Held::Flatten(h) => h.slots(),
            Held::Unflatten(h) => h.slots(),
            Held::BatchNorm(h) => h.slots(),
            Held::Spatial(h) => h.slots(),
        }
    }
}

/// A parameter slot's tensors: the parameter, the gradient tensor the layer
/// accumulates into, and the parameter's `.grad`.
pub(crate) type SlotRefs<'a> = (&'a Py<PyTensor>, &'a Py<PyTensor>, Option<&'a Py<PyTensor>>);

/// See [`LayerClass::hold`].
pub(crate) type HoldFn =
    for<'py> fn(&Bound<'py, PyAny>, &mut Vec<Bound<'py, PyGenerator>>, bool) -> PyResult<Held<'py>>;

/// How the bindings run one native layer class; [`NATIVE`] lists them.
pub(crate) struct LayerClass {
    /// Whether a module is an instance that overrides none of these methods.
    pub(crate) keeps: for<'a, 'b, 'py> fn(
        &'a Bound<'py, PyAny>,
        &'b [&'b Bound<'py, PyString>],
    ) -> PyResult<bool>,
    /// The module's name in a message about its input.
    pub(crate) who: fn(&Bound<'_, PyAny>) -> PyResult<String>,
    /// Borrow the module (an instance of the class) for a run; with `draw`, a
    /// drawing `Dropout` adds the generator it draws from to the list.
    pub(crate) hold: HoldFn,
}

/// The native layer classes: a module of one of them that overrides neither
/// `forward` nor `backward` runs through the stack runner.
const NATIVE: [LayerClass; 8] = [
    LayerClass {
        keeps: keeps::<Linear>,
        who: |m| m.cast::<Linear>()?.busy_ref()?.who(),
        hold: hold_linear,
    },
    LayerClass {
        keeps: keeps::<Activation>,
        who: |m| Ok(type_name(m)),
        hold: |m, _, _| {
            let a = m.cast::<Activation>()?.busy_mut()?;
            Ok(Held::Activation(a))
        },
    },
    LayerClass {
        keeps: keeps::<Dropout>,
        who: |m| Ok(type_name(m)),
        hold: hold_dropout,
    },
    LAYER_NORM,
    FLATTEN,
    UNFLATTEN,
    BATCH_NORM,
    SPATIAL,
];

impl HeldLayer for PyRefMut<'_, Activation> {
    fn layer(&mut self) -> Layer<'_> {
        Layer {
            kind: LayerKind::Activation(&mut self.state),
            params: Slots::new(),
        }
    }

    fn slots(&self) -> Vec<SlotRefs<'_>> {
        Vec::new()
    }
}

/// A Linear and its four tensors, borrowed.
pub(crate) struct HeldLinear<'py> {
    lin: PyRefMut<'py, Linear>,
    w: PyRefMut<'py, PyTensor>,
    b: Option<PyRefMut<'py, PyTensor>>,
    gw: PyRefMut<'py, PyTensor>,
    gb: Option<PyRefMut<'py, PyTensor>>,
}

fn hold_linear<'py>(
    m: &Bound<'py, PyAny>,
    _gens: &mut Vec<Bound<'py, PyGenerator>>,
    _draw: bool,
) -> PyResult<Held<'py>> {
    let py = m.py();
    let lin = m.cast::<Linear>()?.busy_mut()?;
    let p = lin.params()?;
    let opt = |t: &Option<Py<PyTensor>>| t.as_ref().map(|t| t.bind(py).busy_mut()).transpose();
    let (w, b) = (p.weight.bind(py).busy_mut()?, opt(&p.bias)?);
    let (gw, gb) = (p.weight_grad.bind(py).busy_mut()?, opt(&p.bias_grad)?);
    Ok(Held::Linear(HeldLinear { lin, w, b, gw, gb }))
}

impl HeldLayer for HeldLinear<'_> {
    fn layer(&mut self) -> Layer<'_> {
        let p = self.lin.p.as_mut().expect("held only once initialized");
        let mut params = Slots::new();
        params.push(Slot {
            value: self.w.t.data_mut(),
            grad: self.gw.t.data_mut(),
        });
        if let (Some(b), Some(g)) = (self.b.as_mut(), self.gb.as_mut()) {
            params.push(Slot {
                value: b.t.data_mut(),
                grad: g.t.data_mut(),
            });
        }
        Layer {
            kind: LayerKind::Linear(&mut p.state),
            params,
        }
    }

    fn slots(&self) -> Vec<SlotRefs<'_>> {
        match self.lin.p.as_ref() {
            Some(p) => {
                let mut out = vec![(&p.weight, &p.weight_grad, self.w.grad.as_ref())];
                if let (Some(b), Some(g), Some(bt)) = (&p.bias, &p.bias_grad, &self.b) {
                    out.push((b, g, bt.grad.as_ref()));
                }
                out
            }
            None => Vec::new(),
        }
    }
}

/// A Dropout, borrowed, and the index of its generator in the run's list.
pub(crate) struct HeldDropout<'py>(PyRefMut<'py, Dropout>, Option<usize>);

fn hold_dropout<'py>(
    m: &Bound<'py, PyAny>,
    gens: &mut Vec<Bound<'py, PyGenerator>>,
    draw: bool,
) -> PyResult<Held<'py>> {
    let py = m.py();
    let d = m.cast::<Dropout>()?;
    let training = d.as_super().busy_ref()?.training;
    let me = d.busy_mut()?;
    let gen = if draw && me.state.draws(training) {
        let g = resolve(py, me.generator.as_ref().map(|g| g.bind(py).as_any()))?;
        Some(match gens.iter().position(|h| h.is(&g)) {
            Some(i) => i,
            None => {
                gens.push(g);
                gens.len() - 1
            }
        })
    } else {
        None
    };
    Ok(Held::Dropout(HeldDropout(me, gen)))
}

impl HeldLayer for HeldDropout<'_> {
    fn layer(&mut self) -> Layer<'_> {
        Layer {
            kind: LayerKind::Dropout(&mut self.0.state, self.1),
            params: Slots::new(),
        }
    }

    fn slots(&self) -> Vec<SlotRefs<'_>> {
        Vec::new()
    }
}

/// A child of a Sequential: a native layer runs through the stack runner, any
/// other module through Python.
pub(crate) enum Child {
    Layer(Py<PyAny>, &'static LayerClass),
    Seq(Py<Sequential>),
    Other(Py<PyAny>),
}

impl Child {
    fn clone_ref(&self, py: Python<'_>) -> Child {
        match self {
            Child::Layer(m, c) => Child::Layer(m.clone_ref(py), c),
            Child::Seq(m) => Child::Seq(m.clone_ref(py)),
            Child::Other(m) => Child::Other(m.clone_ref(py)),
        }
    }

    fn of(m: &Bound<'_, PyAny>) -> PyResult<Child> {
        let py = m.py();
        let names = [intern!(py, "forward"), intern!(py, "backward")];
        for class in &NATIVE {
            if (class.keeps)(m, &names)? {
                return Ok(Child::Layer(m.clone().unbind(), class));
            }
        }
        Ok(if runs_natively::<Sequential>(m)? {
            Child::Seq(m.cast::<Sequential>()?.clone().unbind())
        } else {
            Child::Other(m.clone().unbind())
        })
    }

    /// Borrow this child, a native layer, for a run (see [`LayerClass::hold`]).
    pub(crate) fn hold<'py>(
        &self,
        py: Python<'py>,
        gens: &mut Vec<Bound<'py, PyGenerator>>,
        draw: bool,
    ) -> PyResult<Option<Held<'py>>> {
        match self {
            Child::Layer(m, class) => Ok(Some((class.hold)(m.bind(py), gens, draw)?)),
            _ => Ok(None),
        }
    }
}

/// The layers of `model`, nested `Sequential`s flattened, when calling `model`
/// runs them all natively (neither `model`'s class nor the instance overrides
/// `forward`, `backward` or `__call__`); else `None`. Only native layers
/// are returned.
pub(crate) fn native_layers(model: &Bound<'_, PyAny>) -> PyResult<Option<Vec<Child>>> {
    let py = model.py();
    let names = [
        intern!(py, "forward"),
        intern!(py, "backward"),
        intern!(py, "__call__"),
    ];
    let mut own = keeps::<Sequential>(model, &names)?;
    for class in &NATIVE {
        own = own || (class.keeps)(model, &names)?;
    }
    if !own {
        return Ok(None);
    }
    let mut out = Vec::new();
    // (children, next index) for each Sequential being walked, outermost first.
    let mut stack: Vec<(Arc<[Child]>, usize)> = vec![(Arc::from([Child::of(model)?]), 0)];
    while let Some((kids, at)) = stack.last_mut() {
        let next = kids.get(*at).map(|k| k.clone_ref(py));
        *at += 1;
        match next {
            None => {
                stack.pop();
            }
            Some(Child::Seq(inner)) => {
                if stack.len() > FREE_DEPTH {
                    return Ok(None); // the Python loop raises what the depth check says
                }
                // In use by another thread: the Python loop reports it.
                let Ok(inner) = inner.bind(py).try_borrow() else {
                    return Ok(None);
                };
                stack.push((inner.kids.clone(), 0));
            }
            Some(Child::Other(_)) => return Ok(None),
            Some(layer) => out.push(layer),
        }
    }
    Ok(Some(out))
}

/// A value flowing between children: a native buffer, or whatever a Python child returned.
enum Flow<'py> {
    Buf(Vec<f64>, Shape),
    Obj(Bound<'py, PyAny>),
}

impl<'py> Flow<'py> {
    fn into_obj(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self {
            Flow::Buf(v, s) => Ok(Bound::new(py, PyTensor::wrap(s, v)?)?.into_any()),
            Flow::Obj(o) => Ok(o),
        }
    }
}

/// Nesting depth of native Sequentials below which no limit is checked.
const FREE_DEPTH: usize = 64;

/// `RecursionError` once `depth` nested Sequentials exceed Python's recursion limit,
/// as `pyfw` raises (a Sequential that contains itself, or absurd nesting).
fn check_depth(py: Python<'_>, depth: usize) -> PyResult<()> {
    if depth < FREE_DEPTH {
        return Ok(());
    }
    let limit: usize = py
        .import(intern!(py, "sys"))?
        .call_method0(intern!(py, "getrecursionlimit"))?
        .extract()?;
    if depth >= limit {
        return Err(PyRecursionError::new_err(
            "maximum recursion depth exceeded in Sequential",
        ));
    }
    Ok(())
}

/// One layer's forward (or backward) through the stack runner, on its own.
pub(crate) fn run_alone<'py>(
    m: &Bound<'py, PyAny>,
    class: &'static LayerClass,
    x: &Bound<'py, PyAny>,
    backward: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let py = m.py();
    let run = [Child::Layer(m.clone().unbind(), class)];
    let mut flow = Flow::Obj(x.clone());
    run_native(py, &run, &mut flow, backward)?;
    flow.into_obj(py)
}

/// Run `run`, consecutive native layers, through the stack runner: forward
/// from `x`, or (`backward`) backward from the gradient `x`; `x` becomes the
/// result (in place: a buffer and its shape, 160 bytes, are not moved around).
fn run_native<'py>(
    py: Python<'py>,
    run: &[Child],
    x: &mut Flow<'py>,
    backward: bool,
) -> PyResult<()> {
    if let Flow::Obj(o) = x {
        let first = if backward { run.last() } else { run.first() };
        let who = match first {
            Some(Child::Layer(m, class)) => (class.who)(m.bind(py))?,
            _ => String::new(),
        };
        let (data, shape) = tensor_data(o, &who)?;
        *x = Flow::Buf(data, shape);
    }
    let Flow::Buf(data, shape) = x else {
        unreachable!("the flow was just made a buffer")
    };
    let mut gens = Vec::new();
    let mut held = Vec::with_capacity(run.len());
    for kid in run {
        if let Some(h) = kid.hold(py, &mut gens, !backward)? {
            held.push(h);
        }
    }
    let mut gen_refs = Vec::with_capacity(gens.len());
    for g in &gens {
        gen_refs.push(g.busy_mut()?);
    }
    let mut gmut: Vec<&mut Generator> = gen_refs.iter_mut().map(|g| &mut g.g).collect();
    let mut layers: Vec<Layer<'_>> = held.iter_mut().map(|h| h.layer()).collect();
    let work = layers
        .iter()
        .map(|l| l.work(data.len(), backward))
        .fold(0, usize::saturating_add);
    let mut pass = || {
        if backward {
            Stack::backward_kept(&mut layers, data, shape)
        } else {
            Stack::forward_kept(&mut layers, data, shape, &mut gmut)
        }
    };
    let out = if work >= DETACH_WORK {
        py.detach(pass)
    } else {
        pass()
    };
    out.map_err(|(l, e)| match (layers[l].kind_name(), &run[l]) {
        (Some(kind), Child::Layer(m, _)) => renamed(e, kind, m.bind(py)),
        _ => to_pyerr(e),
    })
}

/// The length of the run of native layers at the start of `kids`.
fn native_run(kids: &[Child]) -> usize {
    kids.iter()
        .take_while(|k| matches!(k, Child::Layer(..)))
        .count()
}

fn run_forward<'py>(
    py: Python<'py>,
    kids: &[Child],
    mut x: Flow<'py>,
    depth: usize,
) -> PyResult<Flow<'py>> {
    check_depth(py, depth)?;
    let mut i = 0;
    while i < kids.len() {
        let n = native_run(&kids[i..]);
        if n > 0 {
            run_native(py, &kids[i..i + n], &mut x, false)?;
            i += n;
            continue;
        }
        x = match &kids[i] {
            Child::Seq(s) => {
                let inner = s.bind(py).busy_ref()?.kids.clone();
                run_forward(py, &inner, x, depth + 1)?
            }
            Child::Other(m) | Child::Layer(m, _) => {
                let arg = x.into_obj(py)?;
                Flow::Obj(m.bind(py).call_method1(intern!(py, "forward"), (arg,))?)
            }
        };
        i += 1;
    }
    Ok(x)
}

fn run_backward<'py>(
    py: Python<'py>,
    kids: &[Child],
    mut g: Flow<'py>,
    depth: usize,
) -> PyResult<Flow<'py>> {
    check_depth(py, depth)?;
    let mut end = kids.len();
    while end > 0 {
        let n = kids[..end]
            .iter()
            .rev()
            .take_while(|k| matches!(k, Child::Layer(..)))
            .count();
        if n > 0 {
            run_native(py, &kids[end - n..end], &mut g, true)?;
            end -= n;
            continue;
        }
        g = match &kids[end - 1] {
            Child::Seq(s) => {
                let inner = s.bind(py).busy_ref()?.kids.clone();
                run_backward(py, &inner, g, depth + 1)?
            }
            Child::Other(m) | Child::Layer(m, _) => {
                let arg = g.into_obj(py)?;
                Flow::Obj(m.bind(py).call_method1(intern!(py, "backward"), (arg,))?)
            }
        };
        end -= 1;
    }
    Ok(g)
}

/// `pyfw.modules.check_children`, written once in Python: no module twice, not
/// the container inside itself, nesting within Python's recursion limit.
fn check_children(
    py: Python<'_>,
    owner: Option<&Bound<'_, PyAny>>,
    modules: &[Py<PyAny>],
    who: &str,
) -> PyResult<()> {
    let list = PyList::new(py, modules.iter().map(|m| m.clone_ref(py)))?;
    let owner = match owner {
        Some(o) => o.clone(),
        None => py.None().into_bound(py),
    };
    py.import(intern!(py, "pyfw.modules"))?
        .call_method1(intern!(py, "check_children"), (owner, list, who))?;
    Ok(())
}

/// Modules applied in order; backward runs them in reverse. A module may appear only once.
#[pyclass(extends = Module, subclass, module = "pyfw_rs", name = "Sequential")]
pub struct Sequential {
    kids: Arc<[Child]>,
    modules: Vec<Py<PyAny>>,
}

impl Sequential {
    fn flow_in<'py>(x: &Bound<'py, PyAny>) -> PyResult<Flow<'py>> {
        if let Ok(t) = x.cast::<PyTensor>() {
            let t = t.busy_ref()?;
            return Ok(Flow::Buf(t.t.data().to_vec(), t.t.shape()));
        }
        Ok(Flow::Obj(x.clone()))
    }

    fn sort(py: Python<'_>, modules: &[Py<PyAny>]) -> PyResult<Arc<[Child]>> {
        modules
            .iter()
            .map(|m| Child::of(m.bind(py)))
            .collect::<PyResult<Vec<_>>>()
            .map(Arc::from)
    }

    fn modules_list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.modules.iter().map(|m| m.clone_ref(py)))
    }
}

thread_local! {
    /// Children of dropped Sequentials waiting to be released (see `Drop for Sequential`).
    static PENDING: RefCell<Vec<Py<PyAny>>> = const { RefCell::new(Vec::new()) };
    /// Whether a `Drop for Sequential` further up this thread's stack is releasing `PENDING`.
    static DRAINING: Cell<bool> = const { Cell::new(false) };
}

/// A Sequential releases its children one at a time from a queue, so a chain of
/// nested Sequentials of any depth is freed without deep native recursion (a
/// nested Sequential freed meanwhile only adds its children to the queue).
impl Drop for Sequential {
    fn drop(&mut self) {
        let kids = std::mem::replace(&mut self.kids, Arc::from(Vec::new()));
        let mut modules = std::mem::take(&mut self.modules);
        if modules.is_empty() && kids.is_empty() {
            return;
        }
        Python::attach(|_py| {
            // Our strong references to the children, in `modules`, outlive `kids`.
            drop(kids);
            PENDING.with(|p| p.borrow_mut().append(&mut modules));
            if DRAINING.with(|d| d.replace(true)) {
                return;
            }
            while let Some(m) = PENDING.with(|p| p.borrow_mut().pop()) {
                drop(m);
            }
            DRAINING.with(|d| d.set(false));
        });
    }
}

#[pymethods]
impl Sequential {
    /// Accepts any arguments; `__init__` checks and sets the modules, so that
    /// Python subclasses may have constructors of their own.
    #[new]
    #[pyo3(signature = (*_args, **_kwargs), text_signature = "(*modules)")]
    fn new(
        _args: &Bound<'_, PyTuple>,
        _kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyClassInitializer<Sequential> {
        module_base().add_subclass(Sequential {
            kids: Arc::from(Vec::new()),
            modules: Vec::new(),
        })
    }

    #[pyo3(signature = (*modules))]
    fn __init__(slf: &Bound<'_, Self>, modules: &Bound<'_, PyTuple>) -> PyResult<()> {
        let py = slf.py();
        let mut mods = Vec::with_capacity(modules.len());
        for (i, m) in modules.iter().enumerate() {
            if !m.is_instance_of::<Module>() {
                return Err(PyTypeError::new_err(format!(
                    "Sequential: item {i} is a {}, not a pyfw_rs Module{}",
                    described(&m),
                    mixed(&[&m])
                )));
            }
            mods.push(m.unbind());
        }
        check_children(py, Some(slf.as_any()), &mods, "Sequential")?;
        let kids = Sequential::sort(py, &mods)?;
        let mut me = slf.busy_mut()?;
        me.kids = kids;
        me.modules = mods;
        Ok(())
    }

    /// Feed `x` through every module in order.
    fn forward<'py>(slf: &Bound<'py, Self>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let kids = slf.busy_ref()?.kids.clone();
        run_forward(py, &kids, Sequential::flow_in(x)?, 0)?.into_obj(py)
    }

    /// Feed the gradient through every module in reverse order.
    fn backward<'py>(
        slf: &Bound<'py, Self>,
        grad: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let kids = slf.busy_ref()?.kids.clone();
        run_backward(py, &kids, Sequential::flow_in(grad)?, 0)?.into_obj(py)
    }

    #[pyo3(signature = (*input))]
    fn __call__<'py>(
        slf: &Bound<'py, Self>,
        input: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if input.len() == 1 && runs_natively::<Sequential>(slf.as_any())? {
            return Sequential::forward(slf, &input.get_item(0)?);
        }
        slf.call_method1(intern!(slf.py(), "forward"), input)
    }

    /// `[("0", first), ("1", second), ...]`.
    fn named_children<'py>(
        slf: &Bound<'py, Self>,
        py: Python<'py>,
    ) -> PyResult<Bound<'py, PyList>> {
        let this = slf.busy_ref()?;
        PyList::new(
            py,
            this.modules
                .iter()
                .enumerate()
                .map(|(i, m)| (i.to_string(), m.clone_ref(py))),
        )
    }

    /// Add `module` at the end; returns self.
    fn append<'py>(
        slf: &Bound<'py, Self>,
        module: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, Self>> {
        if !module.is_instance_of::<Module>() {
            return Err(PyTypeError::new_err(format!(
                "Sequential.append: expected a pyfw_rs Module, got {}{}",
                described(module),
                mixed(&[module])
            )));
        }
        let py = slf.py();
        let mut modules: Vec<Py<PyAny>> = slf
            .busy_ref()?
            .modules
            .iter()
            .map(|m| m.clone_ref(py))
            .collect();
        modules.push(module.clone().unbind());
        check_children(py, Some(slf.as_any()), &modules, "Sequential.append")?;
        let kids = Sequential::sort(py, &modules)?;
        let mut me = slf.busy_mut()?;
        me.modules = modules;
        me.kids = kids;
        Ok(slf.clone())
    }

    fn __len__(slf: &Bound<'_, Self>) -> PyResult<usize> {
        let this = slf.busy_ref()?;
        Ok(this.modules.len())
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        for m in &self.modules {
            visit.call(m)?;
        }
        for kid in self.kids.iter() {
            match kid {
                Child::Layer(m, _) | Child::Other(m) => visit.call(m)?,
                Child::Seq(q) => visit.call(q)?,
            }
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        self.kids = Arc::from(Vec::new());
        self.modules.clear();
    }

    /// The module at `index`, or a `Sequential` of the modules in a slice.
    fn __getitem__<'py>(
        slf: &Bound<'py, Self>,
        py: Python<'py>,
        index: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let list = slf.busy_ref()?.modules_list(py)?;
        if index.is_instance_of::<PySlice>() {
            let picked = list.as_any().get_item(index)?.cast_into::<PyList>()?;
            return py.get_type::<Sequential>().call1(picked.to_tuple());
        }
        if !is_integral(index)? {
            return Err(PyTypeError::new_err(format!(
                "Sequential indices must be integers or slices, not {}",
                type_name(index)
            )));
        }
        list.as_any().get_item(index)
    }

    fn __iter__<'py>(slf: &Bound<'py, Self>, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let this = slf.busy_ref()?;
        Ok(this.modules_list(py)?.try_iter()?.into_any())
    }

    fn __repr__(slf: &Bound<'_, Self>, py: Python<'_>) -> PyResult<String> {
        let this = slf.busy_ref()?;
        let mut inner = String::new();
        for (i, m) in this.modules.iter().enumerate() {
            let r = py_repr(m.bind(py))?;
            inner.push_str(&format!("\n  ({i}): {r}"));
        }
        Ok(format!("Sequential({inner}\n)"))
    }
}

// ---------------------------------------------------------------- grad mode

/// Whether a `forward` in the calling thread keeps what `backward` needs
/// (`rust/grad_mode.rs`; `pyfw_rs.no_grad` turns it off).
#[pyfunction]
fn is_grad_enabled() -> bool {
    crate::grad_mode::is_enabled()
}

/// Set the calling thread's grad mode; returns the mode it had.
#[pyfunction]
fn _set_grad_enabled(mode: bool) -> bool {
    crate::grad_mode::set_enabled(mode)
}

/// Register `Module`, the layer classes, `LAYERS`, their names in table order,
/// `LAYER_TABLE`, one `(name, parameter slots, buffer slots, signature)` per
/// line of `layer_table!`, and the grad mode's two functions. The convolution
/// family's lines name the Python classes of `python/pyfw_rs/conv.py` (over
/// [`SpatialLayer`]), which `pyfw_rs.LAYERS` takes from there.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(is_grad_enabled, m)?)?;
    m.add_function(wrap_pyfunction!(_set_grad_enabled, m)?)?;
    m.add_class::<Module>()?;
    m.add_class::<Linear>()?;
    m.add_class::<Dropout>()?;
    m.add_class::<LayerNorm>()?;
    m.add_class::<Flatten>()?;
    m.add_class::<Unflatten>()?;
    m.add_class::<BatchNorm>()?;
    m.add_class::<BatchNorm1d>()?;
    m.add_class::<BatchNorm2d>()?;
    m.add_class::<SpatialLayer>()?;
    m.add_class::<Sequential>()?;
    m.add("LAYERS", LAYERS.iter().map(|l| l.name).collect::<Vec<_>>())?;
    let table = LAYERS
        .iter()
        .map(|l| (l.name, l.params.to_vec(), l.buffers.to_vec(), l.signature))
        .collect::<Vec<_>>();
    m.add("LAYER_TABLE", table)
}
