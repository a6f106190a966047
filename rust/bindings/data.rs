//! Binding of `data.disk` and `data.one_hot` (see `pyfw/data.py`).

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use super::generator::{check_len, resolve};
use super::tensor::PyTensor;
use super::{is_integral, is_seq, saturating_i64, type_name, IntoPyResult};
use crate::data::{self, DISK_RADIUS2};

/// `n` points uniform in [0, 1]^2, labelled 1 inside the disk of centre
/// (0.5, 0.5) and radius 1/sqrt(2 pi), else 0. Returns `(inputs, labels)`:
/// an (n, 2) tensor and a list of ints.
#[pyfunction]
#[pyo3(signature = (n, generator = None))]
fn disk<'py>(
    py: Python<'py>,
    n: &Bound<'py, PyAny>,
    generator: Option<&Bound<'py, PyAny>>,
) -> PyResult<(PyTensor, Bound<'py, PyList>)> {
    let n = check_len(n, "data.disk")?;
    let g = resolve(py, generator)?;
    let (x, labels) = data::disk(n, &mut g.try_borrow_mut()?.g).py()?;
    Ok((PyTensor::from_tensor(x), PyList::new(py, labels)?))
}

/// `num_classes` as given: an int (saturated to `i64`), or the name of the wrong type,
/// reported only after the labels are checked (the order of `pyfw.data.one_hot`).
struct Classes(Result<i64, String>);

impl<'a, 'py> FromPyObject<'a, 'py> for Classes {
    type Error = PyErr;

    fn extract(obj: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<Classes> {
        if !is_integral(&obj)? {
            return Ok(Classes(Err(type_name(&obj))));
        }
        Ok(Classes(Ok(saturating_i64(&obj)?)))
    }
}

/// An (n, num_classes) tensor with 1.0 at each label's column and 0.0 elsewhere.
/// `num_classes=-1` means `max(labels) + 1`, as in torch.
#[pyfunction]
#[pyo3(signature = (labels, num_classes = Classes(Ok(-1))), text_signature = "(labels, num_classes=-1)")]
fn one_hot(labels: &Bound<'_, PyAny>, num_classes: Classes) -> PyResult<PyTensor> {
    let who = "data.one_hot";
    if labels.is_instance_of::<PyTensor>() || !is_seq(labels) {
        return Err(PyTypeError::new_err(format!(
            "{who}: labels must be a list of ints, got {}",
            type_name(labels)
        )));
    }
    let items: Vec<Bound<'_, PyAny>> = if let Ok(l) = labels.cast::<PyList>() {
        l.iter().collect()
    } else {
        labels.cast::<PyTuple>()?.iter().collect()
    };
    if items.is_empty() {
        return Err(PyValueError::new_err(format!("{who}: labels is empty")));
    }
    let mut values = Vec::with_capacity(items.len());
    for (i, v) in items.iter().enumerate() {
        if !is_integral(v)? {
            return Err(PyTypeError::new_err(format!(
                "{who}: labels[{i}] is a {}, not an int",
                type_name(v)
            )));
        }
        values.push(saturating_i64(v)?);
    }
    let k = num_classes.0.map_err(|name| {
        PyTypeError::new_err(format!("{who}: num_classes must be an int, got {name}"))
    })?;
    Ok(PyTensor::from_tensor(data::one_hot(&values, k).py()?))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(disk, m)?)?;
    m.add_function(wrap_pyfunction!(one_hot, m)?)?;
    m.add("DISK_RADIUS2", DISK_RADIUS2)?;
    Ok(())
}
