//! Binding of `Tensor` and `tensor()` (see `pyfw/tensor.py`).

use pyo3::exceptions::{PyIndexError, PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyList, PySlice, PyTuple};
use pyo3::{PyTraverseError, PyVisit};

use super::{is_integral, is_real, is_seq, type_name, IntoPyResult};
use crate::error::try_zeros;
use crate::tensor::{normalize_index, py_float_repr, Shape, Tensor};

/// A 1-D or 2-D float64 array. Build one with `tensor()`.
///
/// `grad` is None, or for a parameter the tensor its module accumulates the
/// gradient into (the one `param()` pairs it with).
#[pyclass(module = "pyfw_rs", name = "Tensor")]
pub struct PyTensor {
    pub(crate) t: Tensor,
    pub(crate) grad: Option<Py<PyTensor>>,
}

impl PyTensor {
    /// A tensor without a gradient.
    pub(crate) fn from_tensor(t: Tensor) -> PyTensor {
        PyTensor { t, grad: None }
    }

    /// Wrap a buffer whose length the caller has matched to `shape`.
    pub(crate) fn wrap(shape: Shape, data: Vec<f64>) -> PyResult<PyTensor> {
        Ok(PyTensor::from_tensor(Tensor::new(shape, data).py()?))
    }
}

/// A number of a nested list, checked as `pyfw.tensor._number`.
fn number(v: &Bound<'_, PyAny>, who: &str) -> PyResult<f64> {
    let f = if let Ok(f) = v.cast::<PyFloat>() {
        f.value()
    } else if is_seq(v) {
        return Err(PyValueError::new_err(format!(
            "{who}: ragged or deeper than 2-D nested list"
        )));
    } else if is_real(v)? {
        v.extract::<f64>().map_err(|e| {
            if e.is_instance_of::<PyOverflowError>(v.py()) {
                PyValueError::new_err(format!(
                    "{who}: expected finite numbers, got a value too large for a float"
                ))
            } else {
                e
            }
        })?
    } else {
        return Err(PyTypeError::new_err(format!(
            "{who}: expected real numbers, got {} {}",
            type_name(v),
            v.repr()?
        )));
    };
    if !f.is_finite() {
        return Err(PyValueError::new_err(format!(
            "{who}: expected finite numbers, got {}",
            py_float_repr(f)
        )));
    }
    Ok(f)
}

/// The items of a list or tuple.
fn items<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyAny>>> {
    if let Ok(l) = obj.cast::<PyList>() {
        Ok(l.iter().collect())
    } else {
        Ok(obj.cast::<PyTuple>()?.iter().collect())
    }
}

/// Check `data` and return a fresh tensor (`pyfw.tensor._parse`); errors name `who`.
pub(crate) fn parse(data: &Bound<'_, PyAny>, who: &str) -> PyResult<Tensor> {
    if let Ok(t) = data.cast::<PyTensor>() {
        let t = t.try_borrow()?;
        check_all_finite(t.t.data(), who)?;
        return Ok(t.t.clone());
    }
    let converted;
    let mut data = data;
    if !is_seq(data) && data.hasattr("tolist")? && data.hasattr("shape")? {
        converted = data.call_method0("tolist")?; // a tensor of the other backend, or an array
        data = &converted;
    }
    if !is_seq(data) {
        return Err(PyTypeError::new_err(format!(
            "{who}: expected a nested list of numbers, got {}",
            type_name(data)
        )));
    }
    let rows = items(data)?;
    if rows.is_empty() {
        return Err(PyValueError::new_err(format!(
            "{who}: empty data; tensors need at least one element"
        )));
    }
    if is_seq(&rows[0]) {
        let width = rows[0].len()?;
        let mut values = Vec::with_capacity(rows.len() * width);
        for (r, row) in rows.iter().enumerate() {
            if !is_seq(row) {
                return Err(PyValueError::new_err(format!(
                    "{who}: ragged nested list: row {r} is a {}, row 0 is a list",
                    type_name(row)
                )));
            }
            let row = items(row)?;
            if row.len() != width {
                return Err(PyValueError::new_err(format!(
                    "{who}: ragged nested list: row {r} has {} items, row 0 has {width}",
                    row.len()
                )));
            }
            for v in &row {
                values.push(number(v, who)?);
            }
        }
        if width == 0 {
            return Err(PyValueError::new_err(format!(
                "{who}: rows are empty; tensors need at least one element"
            )));
        }
        return Tensor::new(Shape::Matrix(rows.len(), width), values).py();
    }
    let mut values = Vec::with_capacity(rows.len());
    for v in &rows {
        values.push(number(v, who)?);
    }
    Tensor::new(Shape::Vector(values.len()), values).py()
}

/// `ValueError` for the first non-finite value, as `number` words it.
fn check_all_finite(values: &[f64], who: &str) -> PyResult<()> {
    match values.iter().find(|v| !v.is_finite()) {
        Some(&bad) => Err(PyValueError::new_err(format!(
            "{who}: expected finite numbers, got {}",
            py_float_repr(bad)
        ))),
        None => Ok(()),
    }
}

/// As [`tensor_data`], and a native tensor must hold finite values too (the door of
/// `tensor()`, `copy_`, `add_` and `load_state_dict`, as `pyfw.tensor._parse`).
pub(crate) fn checked_tensor_data(
    obj: &Bound<'_, PyAny>,
    who: &str,
) -> PyResult<(Vec<f64>, Shape)> {
    if let Ok(t) = obj.cast::<PyTensor>() {
        check_all_finite(t.try_borrow()?.t.data(), who)?;
    }
    tensor_data(obj, who)
}

/// The values and shape of `obj`: copied from a native tensor, else parsed.
pub(crate) fn tensor_data(obj: &Bound<'_, PyAny>, who: &str) -> PyResult<(Vec<f64>, Shape)> {
    tensor_data_with(obj, || who.to_string())
}

/// As [`tensor_data`], with the name for error messages built only when `obj` must be parsed.
pub(crate) fn tensor_data_with(
    obj: &Bound<'_, PyAny>,
    who: impl FnOnce() -> String,
) -> PyResult<(Vec<f64>, Shape)> {
    if let Ok(t) = obj.cast::<PyTensor>() {
        let t = t.try_borrow()?;
        let data = try_copy(t.t.data())?;
        return Ok((data, t.t.shape()));
    }
    let t = parse(obj, &who())?;
    let shape = t.shape();
    Ok((t.into_data(), shape))
}

/// A copy of `v`, or `MemoryError`.
pub(crate) fn try_copy(v: &[f64]) -> PyResult<Vec<f64>> {
    let mut out = try_zeros(v.len(), "Tensor").py()?;
    out.copy_from_slice(v);
    Ok(out)
}

fn index_of(item: &Bound<'_, PyAny>, n: usize) -> PyResult<usize> {
    if !is_integral(item)? {
        return Err(PyTypeError::new_err(format!(
            "Tensor: indices must be ints, got {}",
            type_name(item)
        )));
    }
    match item.extract::<i64>() {
        Ok(i) => normalize_index(i, n).py(),
        Err(_) => Err(PyIndexError::new_err(format!(
            "Tensor: index {} is out of range for size {n}",
            item.str()?
        ))),
    }
}

fn list_of_floats<'py>(py: Python<'py>, values: &[f64]) -> PyResult<Bound<'py, PyList>> {
    PyList::new(py, values.iter().map(|&v| PyFloat::new(py, v)))
}

#[pymethods]
impl PyTensor {
    #[new]
    fn new(data: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        Ok(PyTensor::from_tensor(parse(data, "tensor")?))
    }

    /// The shape: `(rows, cols)` or `(n,)`.
    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        match self.t.shape() {
            Shape::Vector(n) => PyTuple::new(py, [n]),
            Shape::Matrix(r, c) => PyTuple::new(py, [r, c]),
        }
    }

    /// The number of dimensions, 1 or 2.
    #[getter]
    fn ndim(&self) -> usize {
        self.t.shape().ndim()
    }

    /// The number of dimensions, 1 or 2 (as `torch.Tensor.dim`).
    fn dim(&self) -> usize {
        self.t.shape().ndim()
    }

    /// The number of elements.
    fn numel(&self) -> usize {
        self.t.shape().numel()
    }

    /// A fresh nested list of Python floats (flat for a 1-D tensor).
    fn tolist<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        match self.t.shape() {
            Shape::Vector(_) => list_of_floats(py, self.t.data()),
            Shape::Matrix(r, _) => {
                let rows = (0..r)
                    .map(|i| list_of_floats(py, self.t.row(i)))
                    .collect::<PyResult<Vec<_>>>()?;
                PyList::new(py, rows)
            }
        }
    }

    /// A copy that shares no storage with this tensor.
    fn clone(&self) -> PyTensor {
        PyTensor::from_tensor(self.t.clone())
    }

    /// Set every element to 0.0, in place; returns self.
    fn zero_<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, Self>> {
        slf.try_borrow_mut()?.t.data_mut().fill(0.0);
        Ok(slf.clone())
    }

    /// Copy `src` (a tensor of either backend or a nested list) of the same shape, in place.
    fn copy_<'py>(slf: &Bound<'py, Self>, src: &Bound<'py, PyAny>) -> PyResult<Bound<'py, Self>> {
        let (data, shape) = checked_tensor_data(src, "Tensor.copy_")?;
        let mut me = slf.try_borrow_mut()?;
        if shape != me.t.shape() {
            return Err(PyValueError::new_err(format!(
                "Tensor.copy_: source shape {} differs from {}",
                shape,
                me.t.shape()
            )));
        }
        me.t.data_mut().copy_from_slice(&data);
        drop(me);
        Ok(slf.clone())
    }

    /// `self = self + (alpha * other)` element by element, in place; returns self.
    #[pyo3(signature = (other, alpha = None), text_signature = "($self, other, alpha=1.0)")]
    fn add_<'py>(
        slf: &Bound<'py, Self>,
        other: &Bound<'py, PyAny>,
        alpha: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, Self>> {
        let a = match alpha {
            Some(v) => number(v, "Tensor.add_ alpha")?,
            None => 1.0,
        };
        let (data, shape) = checked_tensor_data(other, "Tensor.add_")?;
        let mut me = slf.try_borrow_mut()?;
        if shape != me.t.shape() {
            return Err(PyValueError::new_err(format!(
                "Tensor.add_: other has shape {}, this tensor {}",
                shape,
                me.t.shape()
            )));
        }
        for (p, &v) in me.t.data_mut().iter_mut().zip(&data) {
            *p += a * v;
        }
        drop(me);
        Ok(slf.clone())
    }

    /// The gradient tensor of a parameter, or None.
    #[getter]
    fn get_grad(&self, py: Python<'_>) -> Option<Py<PyTensor>> {
        self.grad.as_ref().map(|g| g.clone_ref(py))
    }

    #[setter]
    fn set_grad(&mut self, grad: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        self.grad = match grad {
            None => None,
            Some(g) if g.is_none() => None,
            Some(g) => {
                let t = g.cast::<PyTensor>().map_err(|_| {
                    PyTypeError::new_err(format!(
                        "Tensor.grad: expected a pyfw_rs Tensor or None, got {}",
                        type_name(g)
                    ))
                })?;
                let shape = t.try_borrow()?.t.shape();
                if shape != self.t.shape() {
                    return Err(PyValueError::new_err(format!(
                        "Tensor.grad: gradient shape {shape} differs from {}",
                        self.t.shape()
                    )));
                }
                Some(t.clone().unbind())
            }
        };
        Ok(())
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some(g) = &self.grad {
            visit.call(g)?;
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        self.grad = None;
    }

    fn __len__(&self) -> usize {
        self.t.shape().len()
    }

    /// Index the first dimension by an int, a slice, or a list of ints.
    ///
    /// On a 2-D tensor an int gives a 1-D row and a slice or list gives a 2-D
    /// tensor of those rows. On a 1-D tensor an int gives a float and a slice
    /// or list gives a 1-D tensor.
    fn __getitem__<'py>(&self, index: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = index.py();
        let n = self.t.shape().len();
        let picked = if let Ok(s) = index.cast::<PySlice>() {
            let ind = s.indices(n as isize)?;
            let mut idx = Vec::with_capacity(ind.slicelength);
            let mut i = ind.start;
            for _ in 0..ind.slicelength {
                idx.push(i as usize);
                i += ind.step;
            }
            idx
        } else if let Ok(l) = index.cast::<PyList>() {
            let mut idx = Vec::with_capacity(l.len());
            for item in l.iter() {
                idx.push(index_of(&item, n)?);
            }
            idx
        } else if is_integral(index)? {
            let i = index_of(index, n)?;
            return match self.t.shape() {
                Shape::Vector(_) => Ok(PyFloat::new(py, self.t.data()[i]).into_any()),
                Shape::Matrix(_, c) => {
                    let row = PyTensor::wrap(Shape::Vector(c), self.t.row(i).to_vec())?;
                    Ok(Bound::new(py, row)?.into_any())
                }
            };
        } else {
            return Err(PyTypeError::new_err(format!(
                "Tensor: indices must be ints, slices or lists of ints, got {}",
                type_name(index)
            )));
        };
        let t = self.t.select(&picked).py()?;
        Ok(Bound::new(py, PyTensor::from_tensor(t))?.into_any())
    }

    fn __iter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let me = slf.try_borrow()?;
        let list = PyList::empty(py);
        for i in 0..me.t.shape().len() {
            list.append(me.__getitem__(&i.into_pyobject(py)?.into_any())?)?;
        }
        Ok(list.try_iter()?.into_any())
    }

    /// `tensor([...])`; past 1000 elements, summarized as torch does (`pyfw.tensor.format_repr`).
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let tensor = py.import("pyfw.tensor")?;
        let threshold: usize = tensor.getattr("SUMMARY_THRESHOLD")?.extract()?;
        let edge: usize = tensor.getattr("EDGE_ITEMS")?.extract()?;
        let summarize = self.t.shape().numel() > threshold;
        // The indices shown of a dimension of size n: all, or the edges around `...` (None).
        let shown = |n: usize| -> Vec<Option<usize>> {
            if summarize && n > 2 * edge {
                (0..edge)
                    .map(Some)
                    .chain(std::iter::once(None))
                    .chain((n - edge..n).map(Some))
                    .collect()
            } else {
                (0..n).map(Some).collect()
            }
        };
        let ellipsis = py.Ellipsis();
        let line = |values: &[f64]| -> PyResult<Bound<'_, PyList>> {
            let items = shown(values.len()).into_iter().map(|k| match k {
                Some(k) => PyFloat::new(py, values[k]).into_any(),
                None => ellipsis.bind(py).clone(),
            });
            PyList::new(py, items)
        };
        let items = match self.t.shape() {
            Shape::Vector(_) => line(self.t.data())?,
            Shape::Matrix(r, _) => {
                let rows = PyList::empty(py);
                for k in shown(r) {
                    match k {
                        Some(k) => rows.append(line(self.t.row(k))?)?,
                        None => rows.append(ellipsis.bind(py))?,
                    }
                }
                rows
            }
        };
        tensor.call_method1("format_repr", (items,))?.extract()
    }
}

/// Build a float64 tensor from a rectangular nested list (1-D or 2-D) or a tensor.
///
/// Raises `TypeError` for non-numbers and `ValueError` for ragged, empty,
/// deeper-than-2-D or non-finite data.
#[pyfunction]
fn tensor(data: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
    Ok(PyTensor::from_tensor(parse(data, "tensor")?))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTensor>()?;
    m.add_function(wrap_pyfunction!(tensor, m)?)?;
    Ok(())
}
