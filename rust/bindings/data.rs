//! Binding of `data.disk` and `data.one_hot` (see `pyfw/data.py`).

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyList};

use super::generator::{check_len, resolve};
use super::tensor::{list_from_bytes, list_of, reserve, seq_items, PyTensor};
use super::{
    is_integral, is_seq, py_str, saturating_i64, to_pyerr, type_name, Borrow, Given, IntoPyResult,
};
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
    let (x, labels) = data::disk(n, &mut g.busy_mut()?.g).py()?;
    // Built by CPython, which raises MemoryError where PyO3's PyList::new would panic.
    let labels = list_from_bytes(py, labels.len(), "B", &[labels.len()], |buf| {
        buf.copy_from_slice(&labels)
    })?;
    Ok((PyTensor::from_tensor(x), labels))
}

/// The number of classes of `one_hot`: an `i64`, or a Python int past its range.
enum Classes<'py> {
    Small(i64),
    Big(Bound<'py, PyAny>),
}

impl Classes<'_> {
    fn text(&self) -> PyResult<String> {
        Ok(match self {
            Classes::Small(k) => k.to_string(),
            Classes::Big(k) => py_str(k)?,
        })
    }
}

/// An (n, num_classes) tensor with 1.0 at each label's column and 0.0 elsewhere.
/// `num_classes=-1` means `max(labels) + 1`, as in torch.
///
/// Checked in `pyfw.data.one_hot`'s order; labels and class counts past `i64` are
/// compared as Python ints, so that every message shows the value as given.
#[pyfunction]
#[pyo3(signature = (labels, num_classes = Given::Missing), text_signature = "(labels, num_classes=-1)")]
fn one_hot<'py>(labels: &Bound<'py, PyAny>, num_classes: Given<'py>) -> PyResult<PyTensor> {
    let who = "data.one_hot";
    let py = labels.py();
    if labels.is_instance_of::<PyTensor>() || !is_seq(labels) {
        return Err(PyTypeError::new_err(format!(
            "{who}: labels must be a list of ints, got {}",
            type_name(labels)
        )));
    }
    let items = seq_items(labels, who)?;
    if items.is_empty() {
        return Err(PyValueError::new_err(format!("{who}: labels is empty")));
    }
    let mut values = Vec::new();
    reserve(&mut values, items.len(), who)?;
    for (i, v) in items.iter().enumerate() {
        if !is_integral(v)? {
            return Err(PyTypeError::new_err(format!(
                "{who}: labels[{i}] is a {}, not an int",
                type_name(v)
            )));
        }
        values.push(saturating_i64(v)?); // the sign is exact; past i64, the value is in `items`
    }
    if let Some(i) = values.iter().position(|&v| v < 0) {
        return Err(PyValueError::new_err(format!(
            "{who}: labels[{i}] = {} is negative",
            py_str(&items[i])?
        )));
    }
    let given = match &num_classes {
        Given::Missing => None,
        Given::Value(v) => Some(v),
    };
    if let Some(v) = given {
        if !is_integral(v)? {
            return Err(PyTypeError::new_err(format!(
                "{who}: num_classes must be an int, got {}",
                type_name(v)
            )));
        }
    }
    let requested = match given {
        Some(v) => saturating_i64(v)?,
        None => -1,
    };
    let k = if requested == -1 {
        match values.iter().copied().max().unwrap_or(0) {
            i64::MAX => {
                // int(max(labels)) + 1, as pyfw computes it
                let labels = list_of(py, items.iter().cloned())?;
                let top = py.import("builtins")?.getattr("max")?.call1((labels,))?;
                Classes::Big(py.get_type::<PyInt>().call1((top,))?.add(1)?)
            }
            top => Classes::Small(top + 1),
        }
    } else if requested <= 0 {
        let text = match given {
            Some(v) => py_str(v)?,
            None => requested.to_string(),
        };
        return Err(PyValueError::new_err(format!(
            "{who}: num_classes must be positive, got {text}"
        )));
    } else if let (i64::MAX, Some(v)) = (requested, given) {
        Classes::Big(py.get_type::<PyInt>().call1((v,))?)
    } else {
        Classes::Small(requested)
    };
    for (i, (&v, item)) in values.iter().zip(&items).enumerate() {
        let inside = match &k {
            Classes::Small(k) => v < *k,
            Classes::Big(k) => v < i64::MAX || item.lt(k)?,
        };
        if !inside {
            return Err(PyValueError::new_err(format!(
                "{who}: labels[{i}] = {} is outside [0, {})",
                py_str(item)?,
                k.text()?
            )));
        }
    }
    match k {
        Classes::Small(k) => Ok(PyTensor::from_tensor(data::one_hot(&values, k).py()?)),
        Classes::Big(k) => Err(to_pyerr(data::one_hot_too_large(
            values.len(),
            &py_str(&k)?,
        ))),
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(disk, m)?)?;
    m.add_function(wrap_pyfunction!(one_hot, m)?)?;
    m.add("DISK_RADIUS2", DISK_RADIUS2)?;
    Ok(())
}
