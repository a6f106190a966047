//! Binding of `SGD` (see `pyfw/optim.py`).

use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyList, PyTuple};

use super::tensor::PyTensor;
use super::{is_real, type_name, IntoPyResult};
use crate::optim::{check_lr, sgd_step, sgd_step_self};

fn lr_of(lr: &Bound<'_, PyAny>, who: &str) -> PyResult<f64> {
    if !is_real(lr)? {
        return Err(PyTypeError::new_err(format!(
            "{who}: lr must be a real number, got {}",
            type_name(lr)
        )));
    }
    let v = lr.extract::<f64>().map_err(|e| {
        if e.is_instance_of::<PyOverflowError>(lr.py()) {
            PyValueError::new_err(format!(
                "{who}: lr must be finite and non-negative, got a value too large for a float"
            ))
        } else {
            e
        }
    })?;
    check_lr(v, who).py()
}

/// A learning-rate argument, checked as `pyfw.optim._check_lr`.
struct Lr(f64);

impl<'a, 'py> FromPyObject<'a, 'py> for Lr {
    type Error = PyErr;

    fn extract(obj: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<Lr> {
        lr_of(&obj, "SGD").map(Lr)
    }
}

/// Plain stochastic gradient descent: `p = p - (lr * g)` for every element.
#[allow(clippy::upper_case_acronyms)] // the Python name
#[pyclass(subclass, module = "pyfw_rs", name = "SGD")]
pub struct SGD {
    lr: f64,
    pairs: Vec<(Py<PyTensor>, Py<PyTensor>)>,
}

#[pymethods]
impl SGD {
    #[new]
    #[pyo3(signature = (params, lr = Lr(1e-3)), text_signature = "(params, lr=0.001)")]
    fn new(params: &Bound<'_, PyAny>, lr: Lr) -> PyResult<SGD> {
        let who = "SGD";
        let lr = lr.0;
        let iter = params.try_iter().map_err(|_| {
            PyTypeError::new_err(format!(
                "{who}: params must be a list of (parameter, gradient) pairs, got {}",
                type_name(params)
            ))
        })?;
        let mut pairs = Vec::new();
        for (i, pair) in iter.enumerate() {
            let pair = pair?;
            let ok = (pair.is_instance_of::<PyTuple>() || pair.is_instance_of::<PyList>())
                && pair.len()? == 2;
            if !ok {
                return Err(PyTypeError::new_err(format!(
                    "{who}: params[{i}] is not a (parameter, gradient) pair"
                )));
            }
            let (p, g) = (pair.get_item(0)?, pair.get_item(1)?);
            let (Ok(pt), Ok(gt)) = (p.cast::<PyTensor>(), g.cast::<PyTensor>()) else {
                return Err(PyTypeError::new_err(format!(
                    "{who}: params[{i}] must hold two pyfw_rs Tensors, got {} and {}",
                    type_name(&p),
                    type_name(&g)
                )));
            };
            let (ps, gs) = (pt.try_borrow()?.t.shape(), gt.try_borrow()?.t.shape());
            if ps != gs {
                return Err(PyValueError::new_err(format!(
                    "{who}: params[{i}] has parameter shape {ps} and gradient shape {gs}"
                )));
            }
            pairs.push((pt.clone().unbind(), gt.clone().unbind()));
        }
        if pairs.is_empty() {
            return Err(PyValueError::new_err(format!(
                "{who}: got an empty parameter list"
            )));
        }
        Ok(SGD { lr, pairs })
    }

    /// The learning rate.
    #[getter]
    fn get_lr(&self) -> f64 {
        self.lr
    }

    #[setter]
    fn set_lr(&mut self, lr: &Bound<'_, PyAny>) -> PyResult<()> {
        self.lr = lr_of(lr, "SGD")?;
        Ok(())
    }

    /// Update every parameter in place from its gradient.
    fn step(&self, py: Python<'_>) -> PyResult<()> {
        for (p, g) in &self.pairs {
            if p.is(g) {
                sgd_step_self(p.bind(py).try_borrow_mut()?.t.data_mut(), self.lr);
            } else {
                let gt = g.bind(py).try_borrow()?;
                sgd_step(
                    p.bind(py).try_borrow_mut()?.t.data_mut(),
                    gt.t.data(),
                    self.lr,
                );
            }
        }
        Ok(())
    }

    /// Set every gradient to zero, in place.
    fn zero_grad(&self, py: Python<'_>) -> PyResult<()> {
        for (_, g) in &self.pairs {
            g.bind(py).try_borrow_mut()?.t.data_mut().fill(0.0);
        }
        Ok(())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("SGD(lr={})", PyFloat::new(py, self.lr).repr()?))
    }
}

/// Register the optimizer classes and `OPTIMIZERS`, their names in table order.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SGD>()?;
    m.add("OPTIMIZERS", vec!["SGD"])
}
