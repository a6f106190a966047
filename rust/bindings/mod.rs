//! The PyO3 binding layer: the only code that touches Python. It validates
//! every argument, converts data at the boundary (`tensor()`, `tolist()`,
//! indexing), and runs the kernels of the parent crate on the live storage of
//! the Python-visible objects. Kernel errors become the Python exception type
//! that `pyfw` raises for the same input; no code path here panics on bad input.

use pyo3::exceptions::{PyIndexError, PyMemoryError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyInt, PyList, PyTuple, PyType};

use crate::error::Error;

mod activations;
mod base;
mod data;
mod generator;
mod losses;
mod modules;
mod optim;
mod tensor;

/// A kernel error as the Python exception of the same kind.
pub(crate) fn to_pyerr(e: Error) -> PyErr {
    match e {
        Error::Type(m) => PyTypeError::new_err(m),
        Error::Value(m) => PyValueError::new_err(m),
        Error::Runtime(m) => PyRuntimeError::new_err(m),
        Error::Index(m) => PyIndexError::new_err(m),
        Error::Memory(m) => PyMemoryError::new_err(m),
    }
}

/// `.py()?` turns a kernel result into a `PyResult`.
pub(crate) trait IntoPyResult<T> {
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for crate::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(to_pyerr)
    }
}

/// `type(obj).__name__`.
pub(crate) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|s| s.to_string())
        .unwrap_or_else(|_| "object".into())
}

static INTEGRAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static REAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `isinstance(obj, numbers.Integral) and not isinstance(obj, bool)`.
pub(crate) fn is_integral(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    if obj.is_instance_of::<PyBool>() {
        return Ok(false);
    }
    if obj.is_instance_of::<PyInt>() {
        return Ok(true);
    }
    obj.is_instance(INTEGRAL.import(obj.py(), "numbers", "Integral")?)
}

/// `isinstance(obj, numbers.Real) and not isinstance(obj, bool)`.
pub(crate) fn is_real(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    if obj.is_instance_of::<PyBool>() {
        return Ok(false);
    }
    obj.is_instance(REAL.import(obj.py(), "numbers", "Real")?)
}

/// `isinstance(obj, (list, tuple))`.
pub(crate) fn is_seq(obj: &Bound<'_, PyAny>) -> bool {
    obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>()
}

/// An integral Python value as `i64`, saturating at the ends for huge ints.
pub(crate) fn saturating_i64(obj: &Bound<'_, PyAny>) -> PyResult<i64> {
    match obj.extract::<i64>() {
        Ok(v) => Ok(v),
        Err(_) => {
            let negative = obj.lt(0)?;
            Ok(if negative { i64::MIN } else { i64::MAX })
        }
    }
}

/// Check a size argument as `pyfw` does: an int (TypeError) that is positive (ValueError).
pub(crate) fn check_size(obj: &Bound<'_, PyAny>, who: &str, what: &str) -> PyResult<usize> {
    if !is_integral(obj)? {
        return Err(PyTypeError::new_err(format!(
            "{who}: {what} must be an int, got {}",
            type_name(obj)
        )));
    }
    let v = saturating_i64(obj)?;
    if v <= 0 {
        return Err(PyValueError::new_err(format!(
            "{who}: {what} must be positive, got {}",
            obj.str()?
        )));
    }
    usize::try_from(v)
        .map_err(|_| PyMemoryError::new_err(format!("{who}: {what} {v} is too large")))
}

/// An argument read by truthiness (`if not bias`), defaulting like a Python literal.
pub(crate) struct Truthy(pub(crate) bool);

impl<'a, 'py> FromPyObject<'a, 'py> for Truthy {
    type Error = PyErr;

    fn extract(obj: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<Truthy> {
        obj.is_truthy().map(Truthy)
    }
}

/// A strict bool argument (`isinstance(mode, bool)`).
pub(crate) struct StrictBool(pub(crate) bool);

impl<'a, 'py> FromPyObject<'a, 'py> for StrictBool {
    type Error = PyErr;

    fn extract(obj: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<StrictBool> {
        match obj.cast::<PyBool>() {
            Ok(b) => Ok(StrictBool(b.is_true())),
            Err(_) => Err(PyTypeError::new_err(format!(
                "mode must be a bool, got {}",
                type_name(&obj)
            ))),
        }
    }
}

/// The native module `pyfw_rs._native`; `pyfw_rs/__init__.py` re-exports it.
#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    tensor::register(m)?;
    generator::register(m)?;
    modules::register(m)?;
    activations::register(m)?;
    losses::register(m)?;
    optim::register(m)?;
    data::register(m)?;
    Ok(())
}
