//! Binding of `MSELoss` (see `pyfw/losses.py`).

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::base::{module_base, Module};
use super::tensor::{tensor_data, PyTensor};
use super::IntoPyResult;
use crate::error::not_forwarded;
use crate::losses::{check_mse_shapes, mse_backward, mse_forward};
use crate::tensor::Shape;

/// Mean squared error over all N elements, as `torch.nn.MSELoss()`:
/// `L = (1/N) sum (x - t)^2` (docs/NUMERICS.md, "MSELoss").
#[pyclass(extends = Module, subclass, module = "pyfw_rs", name = "MSELoss")]
pub struct MSELoss {
    diff: Vec<f64>,
    shape: Option<Shape>,
}

impl MSELoss {
    fn run(
        slf: &Bound<'_, Self>,
        input: &Bound<'_, PyAny>,
        target: &Bound<'_, PyAny>,
    ) -> PyResult<f64> {
        // Fast path: two native tensors are read in place.
        if let (Ok(x), Ok(t)) = (input.cast::<PyTensor>(), target.cast::<PyTensor>()) {
            let (x, t) = (x.try_borrow()?, t.try_borrow()?);
            check_mse_shapes(x.t.shape(), t.t.shape()).py()?;
            let mut me = slf.try_borrow_mut()?;
            me.shape = Some(x.t.shape());
            return Ok(mse_forward(x.t.data(), t.t.data(), &mut me.diff));
        }
        let (x, xs) = tensor_data(input, "MSELoss input")?;
        let (t, ts) = tensor_data(target, "MSELoss target")?;
        check_mse_shapes(xs, ts).py()?;
        let mut me = slf.try_borrow_mut()?;
        me.shape = Some(xs);
        Ok(mse_forward(&x, &t, &mut me.diff))
    }
}

#[pymethods]
impl MSELoss {
    #[new]
    fn new() -> PyClassInitializer<MSELoss> {
        module_base().add_subclass(MSELoss {
            diff: Vec::new(),
            shape: None,
        })
    }

    /// The mean of `(input - target)**2` over all elements.
    fn forward(
        slf: &Bound<'_, Self>,
        input: &Bound<'_, PyAny>,
        target: &Bound<'_, PyAny>,
    ) -> PyResult<f64> {
        MSELoss::run(slf, input, target)
    }

    /// `2 (input - target) / N`, the gradient with respect to the input.
    fn backward(&self) -> PyResult<PyTensor> {
        let shape = self.shape.ok_or_else(|| not_forwarded("MSELoss")).py()?;
        let mut dx = vec![0.0; self.diff.len()];
        mse_backward(&self.diff, &mut dx);
        PyTensor::wrap(shape, dx)
    }

    #[pyo3(signature = (*input))]
    fn __call__(slf: &Bound<'_, Self>, input: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
        if slf.is_exact_instance_of::<MSELoss>() && input.len() == 2 {
            let v = MSELoss::run(slf, &input.get_item(0)?, &input.get_item(1)?)?;
            return Ok(v.into_pyobject(slf.py())?.into_any().unbind());
        }
        Ok(slf
            .call_method1(intern!(slf.py(), "forward"), input)?
            .unbind())
    }
}

/// Register the loss classes and `LOSSES`, their names in table order.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<MSELoss>()?;
    m.add("LOSSES", vec!["MSELoss"])
}
