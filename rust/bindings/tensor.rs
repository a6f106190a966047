//! Binding of `Tensor` and `tensor()` (see `pyfw/tensor.py`).

use pyo3::exceptions::{PyIndexError, PyMemoryError, PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{
    PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMemoryView, PySlice, PyTuple,
};
use pyo3::{PyTraverseError, PyVisit};

use super::{is_integral, is_real, is_seq, py_repr, py_str, type_name, Borrow, IntoPyResult};
use crate::error::try_zeros;
use crate::tensor::{normalize_index, py_float_repr, Shape, Tensor};

/// The error of `t.grad = t`, as `pyfw` words it.
const OWN_GRADIENT: &str =
    "Tensor.grad: a tensor cannot be its own gradient (a module would add its \
     gradient into its values, and a step would read the gradient it is overwriting)";

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
        match v.extract::<f64>() {
            Ok(f) => f,
            Err(e) if e.is_instance_of::<PyOverflowError>(v.py()) => {
                return Err(PyValueError::new_err(format!(
                    "{who}: expected finite numbers, got {}, too large for a float",
                    value_text(v)?
                )));
            }
            Err(e) => return Err(e),
        }
    } else {
        return Err(PyTypeError::new_err(format!(
            "{who}: expected real numbers, got {} {}",
            type_name(v),
            py_repr(v)?
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

/// How `pyfw.tensor._value_text` shows a value in a message: its repr, shortened past
/// 40 characters to its ends and its length; an int too long for `repr` by its bits.
pub(crate) fn value_text(v: &Bound<'_, PyAny>) -> PyResult<String> {
    let py = v.py();
    let text = match v.repr() {
        Ok(r) => r.to_cow()?.into_owned(),
        Err(e) if e.is_instance_of::<PyValueError>(py) => {
            let bits = py
                .get_type::<PyInt>()
                .call1((v,))?
                .call_method0("bit_length")?;
            format!("an int of {bits} bits")
        }
        Err(e) => return Err(e),
    };
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= 40 {
        return Ok(text);
    }
    let head: String = chars[..20].iter().collect();
    let tail: String = chars[chars.len() - 10..].iter().collect();
    Ok(format!("{head}...{tail} ({} characters)", chars.len()))
}

/// Room for `n` more items in `v`, or `MemoryError` instead of an abort.
pub(crate) fn reserve<T>(v: &mut Vec<T>, n: usize, who: &str) -> PyResult<()> {
    v.try_reserve_exact(n)
        .map_err(|_| PyMemoryError::new_err(format!("{who}: cannot allocate {n} elements")))
}

/// The length of a list or tuple as its storage holds it (never a subclass's `__len__`).
pub(crate) fn seq_len(obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    if let Ok(l) = obj.cast::<PyList>() {
        Ok(l.len())
    } else {
        Ok(obj.cast::<PyTuple>()?.len())
    }
}

/// The first item of a list or tuple as its storage holds it, or None when it is empty.
pub(crate) fn seq_first<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    if let Ok(l) = obj.cast::<PyList>() {
        Ok(l.get_item(0).ok())
    } else {
        Ok(obj.cast::<PyTuple>()?.get_item(0).ok())
    }
}

/// Replace `out` by the items of a list or tuple, read from its storage (a subclass's
/// `__len__` and `__iter__` are not consulted), or `MemoryError`. No Python code runs
/// while they are read, so the snapshot is consistent even if the list changes later.
pub(crate) fn read_items<'py>(
    obj: &Bound<'py, PyAny>,
    out: &mut Vec<Bound<'py, PyAny>>,
    who: &str,
) -> PyResult<()> {
    out.clear();
    if let Ok(l) = obj.cast::<PyList>() {
        reserve(out, l.len(), who)?;
        out.extend(l.iter().take(l.len()));
    } else {
        let t = obj.cast::<PyTuple>()?;
        reserve(out, t.len(), who)?;
        out.extend(t.iter());
    }
    Ok(())
}

/// The items of a list or tuple (see [`read_items`]).
pub(crate) fn seq_items<'py>(
    obj: &Bound<'py, PyAny>,
    who: &str,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let mut out = Vec::new();
    read_items(obj, &mut out, who)?;
    Ok(out)
}

/// The typestr of a native-endian float64 array in `__array_interface__`.
const NATIVE_F8: &str = if cfg!(target_endian = "little") {
    "<f8"
} else {
    ">f8"
};

/// A float64 array (numpy's, or anything with `__array_interface__` and `tobytes()`) of
/// 1 or 2 non-empty dimensions, read through `tobytes()` with no Python-level loop;
/// None for any other array, which then goes through `tolist()` as before.
fn float64_array(data: &Bound<'_, PyAny>, who: &str) -> PyResult<Option<Tensor>> {
    let Ok(ai) = data.getattr("__array_interface__") else {
        return Ok(None);
    };
    let Ok(ai) = ai.cast::<PyDict>() else {
        return Ok(None);
    };
    let (Some(typestr), Some(dims)) = (ai.get_item("typestr")?, ai.get_item("shape")?) else {
        return Ok(None);
    };
    if typestr.extract::<String>().ok().as_deref() != Some(NATIVE_F8) {
        return Ok(None);
    }
    let shape = match dims.extract::<Vec<usize>>().ok().as_deref() {
        Some(&[n]) if n > 0 => Shape::Vector(n),
        Some(&[r, c]) if r > 0 && c > 0 => Shape::Matrix(r, c),
        _ => return Ok(None),
    };
    let bytes = data.call_method0("tobytes")?; // C order, whatever the layout
    let Ok(bytes) = bytes.cast::<PyBytes>() else {
        return Ok(None);
    };
    let raw = bytes.as_bytes();
    if Some(raw.len()) != shape.numel().checked_mul(8) {
        return Ok(None);
    }
    let mut values = try_zeros(shape.numel(), who).py()?;
    for (v, b) in values.iter_mut().zip(raw.chunks_exact(8)) {
        let mut word = [0u8; 8];
        word.copy_from_slice(b);
        *v = f64::from_ne_bytes(word);
    }
    check_all_finite(&values, who)?;
    Tensor::new(shape, values).py().map(Some)
}

/// Check `data` and return a fresh tensor (`pyfw.tensor._parse`); errors name `who`.
///
/// Every buffer whose size comes from `data` is reserved fallibly (`MemoryError`), and
/// lists are read from their storage, so a list subclass whose `__len__` lies or whose
/// items change while numbers are converted gets the values it held, never a panic.
pub(crate) fn parse(data: &Bound<'_, PyAny>, who: &str) -> PyResult<Tensor> {
    if let Ok(t) = data.cast::<PyTensor>() {
        let t = t.busy_ref()?;
        check_all_finite(t.t.data(), who)?;
        return t.t.try_clone().py();
    }
    let converted;
    let mut data = data;
    if !is_seq(data) && data.hasattr("tolist")? && data.hasattr("shape")? {
        if let Some(t) = float64_array(data, who)? {
            return Ok(t);
        }
        converted = data.call_method0("tolist")?; // a tensor of the other backend, or an array
        data = &converted;
    }
    if !is_seq(data) {
        return Err(PyTypeError::new_err(format!(
            "{who}: expected a nested list of numbers, got {}",
            type_name(data)
        )));
    }
    let rows = seq_items(data, who)?;
    if rows.is_empty() {
        return Err(PyValueError::new_err(format!(
            "{who}: empty data; tensors need at least one element"
        )));
    }
    if is_seq(&rows[0]) {
        let width = seq_len(&rows[0])?;
        let total = crate::error::checked_size(rows.len(), width, who).py()?;
        let mut values = Vec::new();
        reserve(&mut values, total, who)?;
        let mut row = Vec::new();
        for (r, obj) in rows.iter().enumerate() {
            if !is_seq(obj) {
                return Err(PyValueError::new_err(format!(
                    "{who}: ragged nested list: row {r} is a {}, row 0 is a list",
                    type_name(obj)
                )));
            }
            read_items(obj, &mut row, who)?;
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
    let mut values = Vec::new();
    reserve(&mut values, rows.len(), who)?;
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
        check_all_finite(t.busy_ref()?.t.data(), who)?;
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
        let t = t.busy_ref()?;
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
            py_str(item)?
        ))),
    }
}

/// A list built by `memoryview(bytes).cast(format, dims).tolist()` from `len` bytes that
/// `fill` writes: nested when `dims` has two sizes. CPython allocates every item and
/// raises `MemoryError` when it cannot, where PyO3's list and number constructors panic.
pub(crate) fn list_from_bytes<'py>(
    py: Python<'py>,
    len: usize,
    format: &str,
    dims: &[usize],
    fill: impl FnOnce(&mut [u8]),
) -> PyResult<Bound<'py, PyList>> {
    let bytes = PyBytes::new_with(py, len, |buf| {
        fill(buf);
        Ok(())
    })?;
    let view = PyMemoryView::from(bytes.as_any())?;
    let view = view.call_method1("cast", (format, PyTuple::new(py, dims)?))?;
    Ok(view.call_method0("tolist")?.cast_into::<PyList>()?)
}

/// A list of `items`, grown by `append`, which raises `MemoryError` where `PyList::new`
/// would panic (for lists whose length the user chooses, such as the parameters).
pub(crate) fn list_of<'py>(
    py: Python<'py>,
    items: impl IntoIterator<Item = Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for item in items {
        list.append(item)?;
    }
    Ok(list)
}

/// A Python float, or the `MemoryError` CPython raises when it cannot allocate one
/// (`PyFloat::new` panics instead, which would make `tolist()` of a large tensor under
/// memory pressure a PanicException).
fn py_float(py: Python<'_>, v: f64) -> PyResult<Bound<'_, PyAny>> {
    // SAFETY: the GIL is held (`py`); PyFloat_FromDouble returns a new reference, or NULL
    // with the exception set, and `from_owned_ptr_or_err` takes over exactly that.
    unsafe { Bound::from_owned_ptr_or_err(py, pyo3::ffi::PyFloat_FromDouble(v)) }
}

/// `values` as a list of Python floats; every allocation can fail as `MemoryError`
/// (for small tensors: [`list_from_bytes`] costs a few Python calls more).
fn floats_list<'py>(py: Python<'py>, values: &[f64]) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for &v in values {
        list.append(py_float(py, v)?)?;
    }
    Ok(list)
}

/// The dimensions of `shape`, as `memoryview.cast` takes them.
fn dims(shape: Shape) -> Vec<usize> {
    match shape {
        Shape::Vector(n) => vec![n],
        Shape::Matrix(r, c) => vec![r, c],
    }
}

impl PyTensor {
    /// Item `i` of the first dimension, already normalised: a float or a 1-D row.
    fn item<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Bound<'py, PyAny>> {
        match self.t.shape() {
            Shape::Vector(_) => Ok(PyFloat::new(py, self.t.data()[i]).into_any()),
            Shape::Matrix(_, c) => {
                let row = PyTensor::wrap(Shape::Vector(c), try_copy(self.t.row(i))?)?;
                Ok(Bound::new(py, row)?.into_any())
            }
        }
    }
}

/// The iterator of `iter(tensor)`: the items of the first dimension, one at a time
/// (as `pyfw.Tensor.__iter__`, a generator), never all at once.
#[pyclass(module = "pyfw_rs", name = "TensorIterator")]
pub struct TensorIterator {
    t: Option<Py<PyTensor>>,
    i: usize,
}

#[pymethods]
impl TensorIterator {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let item = match &self.t {
            None => None,
            Some(t) => {
                let t = t.bind(py).busy_ref()?;
                if self.i < t.t.shape().len() {
                    Some(t.item(py, self.i)?)
                } else {
                    None
                }
            }
        };
        match item {
            Some(_) => self.i += 1,
            None => self.t = None,
        }
        Ok(item)
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some(t) = &self.t {
            visit.call(t)?;
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        self.t = None;
    }
}

#[pymethods]
impl PyTensor {
    #[new]
    fn new(data: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        Ok(PyTensor::from_tensor(parse(data, "tensor")?))
    }

    /// The shape: `(rows, cols)` or `(n,)`.
    #[getter]
    fn shape<'py>(slf: &Bound<'py, Self>, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let this = slf.busy_ref()?;
        match this.t.shape() {
            Shape::Vector(n) => PyTuple::new(py, [n]),
            Shape::Matrix(r, c) => PyTuple::new(py, [r, c]),
        }
    }

    /// The number of dimensions, 1 or 2.
    #[getter]
    fn ndim(slf: &Bound<'_, Self>) -> PyResult<usize> {
        let this = slf.busy_ref()?;
        Ok(this.t.shape().ndim())
    }

    /// The number of dimensions, 1 or 2 (as `torch.Tensor.dim`).
    fn dim(slf: &Bound<'_, Self>) -> PyResult<usize> {
        let this = slf.busy_ref()?;
        Ok(this.t.shape().ndim())
    }

    /// The number of elements.
    fn numel(slf: &Bound<'_, Self>) -> PyResult<usize> {
        let this = slf.busy_ref()?;
        Ok(this.t.shape().numel())
    }

    /// A fresh nested list of Python floats (flat for a 1-D tensor).
    fn tolist<'py>(slf: &Bound<'py, Self>, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let this = slf.busy_ref()?;
        let values = this.t.data();
        if values.len() > 1024 {
            // CPython builds the items from the bytes at C speed, into preallocated lists.
            return list_from_bytes(py, values.len() * 8, "d", &dims(this.t.shape()), |buf| {
                for (b, v) in buf.chunks_exact_mut(8).zip(values) {
                    b.copy_from_slice(&v.to_ne_bytes());
                }
            });
        }
        match this.t.shape() {
            Shape::Vector(_) => floats_list(py, values),
            Shape::Matrix(r, _) => {
                let rows = PyList::empty(py);
                for i in 0..r {
                    rows.append(floats_list(py, this.t.row(i))?)?;
                }
                Ok(rows)
            }
        }
    }

    /// A copy that shares no storage with this tensor.
    fn clone(slf: &Bound<'_, Self>) -> PyResult<PyTensor> {
        let this = slf.busy_ref()?;
        Ok(PyTensor::from_tensor(this.t.try_clone().py()?))
    }

    /// The float64 numpy array of the values (`numpy.asarray(t)`), always a fresh copy;
    /// numpy is imported only here. `dtype` converts it; `copy=False` is a `ValueError`.
    #[pyo3(signature = (dtype = None, copy = None))]
    fn __array__<'py>(
        &self,
        py: Python<'py>,
        dtype: Option<&Bound<'py, PyAny>>,
        copy: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let Some(c) = copy {
            if !c.is_none() && !c.is_truthy()? {
                return Err(PyValueError::new_err(
                    "Tensor.__array__: the array is always a copy; copy=False cannot be honoured",
                ));
            }
        }
        let np = py.import("numpy")?;
        let values = self.t.data();
        let buf = PyByteArray::new_with(py, values.len() * 8, |buf| {
            for (b, v) in buf.chunks_exact_mut(8).zip(values) {
                b.copy_from_slice(&v.to_ne_bytes());
            }
            Ok(())
        })?;
        let flat = np.call_method1("frombuffer", (buf, np.getattr("float64")?))?;
        let arr = flat.call_method1("reshape", (PyTuple::new(py, dims(self.t.shape()))?,))?;
        match dtype {
            Some(d) if !d.is_none() => arr.call_method1("astype", (d,)),
            _ => Ok(arr),
        }
    }

    /// Set every element to 0.0, in place; returns self.
    fn zero_<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, Self>> {
        slf.busy_mut()?.t.data_mut().fill(0.0);
        Ok(slf.clone())
    }

    /// Copy `src` (a tensor of either backend or a nested list) of the same shape, in place.
    fn copy_<'py>(slf: &Bound<'py, Self>, src: &Bound<'py, PyAny>) -> PyResult<Bound<'py, Self>> {
        let (data, shape) = checked_tensor_data(src, "Tensor.copy_")?;
        let mut me = slf.busy_mut()?;
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
        let mut me = slf.busy_mut()?;
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
    fn get_grad(slf: &Bound<'_, Self>, py: Python<'_>) -> PyResult<Option<Py<PyTensor>>> {
        let this = slf.busy_ref()?;
        Ok(this.grad.as_ref().map(|g| g.clone_ref(py)))
    }

    #[setter]
    fn set_grad(slf: &Bound<'_, Self>, grad: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let new = match grad {
            None => None,
            Some(g) if g.is_none() => None,
            Some(g) => {
                let t = g.cast::<PyTensor>().map_err(|_| {
                    PyTypeError::new_err(format!(
                        "Tensor.grad: expected a pyfw_rs Tensor or None, got {}",
                        type_name(g)
                    ))
                })?;
                if t.is(slf) {
                    return Err(PyValueError::new_err(OWN_GRADIENT));
                }
                let shape = t.busy_ref()?.t.shape();
                let mine = slf.busy_ref()?.t.shape();
                if shape != mine {
                    return Err(PyValueError::new_err(format!(
                        "Tensor.grad: gradient shape {shape} differs from {mine}"
                    )));
                }
                Some(t.clone().unbind())
            }
        };
        slf.busy_mut()?.grad = new;
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

    fn __len__(slf: &Bound<'_, Self>) -> PyResult<usize> {
        let this = slf.busy_ref()?;
        Ok(this.t.shape().len())
    }

    /// Index the first dimension by an int, a slice, or a list of ints.
    ///
    /// On a 2-D tensor an int gives a 1-D row and a slice or list gives a 2-D
    /// tensor of those rows. On a 1-D tensor an int gives a float and a slice
    /// or list gives a 1-D tensor.
    fn __getitem__<'py>(
        slf: &Bound<'py, Self>,
        index: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let this = slf.busy_ref()?;
        let py = index.py();
        let n = this.t.shape().len();
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
            let mut idx = Vec::new();
            reserve(&mut idx, l.len(), "Tensor")?;
            for item in l.iter() {
                idx.push(index_of(&item, n)?);
            }
            idx
        } else if is_integral(index)? {
            let i = index_of(index, n)?;
            return this.item(py, i);
        } else {
            return Err(PyTypeError::new_err(format!(
                "Tensor: indices must be ints, slices or lists of ints, got {}",
                type_name(index)
            )));
        };
        let t = this.t.select(&picked).py()?;
        Ok(Bound::new(py, PyTensor::from_tensor(t))?.into_any())
    }

    fn __iter__(slf: &Bound<'_, Self>) -> TensorIterator {
        TensorIterator {
            t: Some(slf.clone().unbind()),
            i: 0,
        }
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
