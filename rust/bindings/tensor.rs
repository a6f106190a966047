//! Binding of `Tensor` and `tensor()` (see `pyfw/tensor.py`).

use pyo3::exceptions::{
    PyIndexError, PyMemoryError, PyOverflowError, PyRuntimeError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::pyclass::CompareOp;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMemoryView, PySlice, PyTuple,
};
use pyo3::{PyTraverseError, PyVisit};

use super::generator::resolve;
use super::{
    described, is_integral, is_real, is_seq, mixed, py_repr, py_str, saturating_i64, type_name,
    Arg, Borrow, IntoPyResult,
};
use crate::error::try_zeros;
use crate::tensor::{
    binary, binary_inplace, binary_scalar, matmul, matmul_plan, normalize_dim, normalize_index,
    py_float_repr, reduce, unary, unary_inplace, BinOp, Pick, Reduce, Shape, Tensor, UnOp,
    MAX_RANK,
};

/// The error of `t.grad = t`, as `pyfw` words it.
const OWN_GRADIENT: &str =
    "Tensor.grad: a tensor cannot be its own gradient (a module would add its \
     gradient into its values, and a step would read the gradient it is overwriting)";

/// A float64 array of any rank. Build one with `tensor()`.
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
            "{who}: ragged or too deeply nested list (a list where a number was expected)"
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
/// non-empty dimensions, read through `tobytes()` with no Python-level loop;
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
    let shape = match dims.extract::<Vec<usize>>() {
        Ok(d) if !d.is_empty() && d.len() <= MAX_RANK && !d.contains(&0) => Shape::new(&d).py()?,
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
    let items = seq_items(data, who)?;
    if items.is_empty() {
        return Err(PyValueError::new_err(format!(
            "{who}: empty data; tensors need at least one element"
        )));
    }
    let deep = is_seq(&items[0]) && seq_first(&items[0])?.is_some_and(|v| is_seq(&v));
    if deep {
        return parse_nd(data, who);
    }
    if !is_seq(&items[0]) {
        let mut values = Vec::new();
        reserve(&mut values, items.len(), who)?;
        for v in &items {
            values.push(number(v, who)?);
        }
        return Tensor::new(Shape::Vector(values.len()), values).py();
    }
    // Rows, checked one by one as they are read.
    let width = seq_len(&items[0])?;
    let total = crate::error::checked_size(items.len(), width, who).py()?;
    let mut values = Vec::new();
    reserve(&mut values, total, who)?;
    let mut row = Vec::new();
    for (r, obj) in items.iter().enumerate() {
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
    Tensor::new(Shape::Matrix(items.len(), width), values).py()
}

/// A nested list of rank 3 or more, checked level by level as `pyfw.tensor._parse_nd`
/// checks it (so that both backends name the same fault first).
fn parse_nd(data: &Bound<'_, PyAny>, who: &str) -> PyResult<Tensor> {
    let mut sizes = Vec::new();
    let mut first = data.clone();
    while is_seq(&first) {
        let items = seq_items(&first, who)?;
        if items.is_empty() {
            return Err(PyValueError::new_err(format!(
                "{who}: empty list at depth {}; tensors need at least one element",
                sizes.len()
            )));
        }
        sizes.push(items.len());
        if sizes.len() > MAX_RANK {
            return Err(PyValueError::new_err(format!(
                "{who}: nested deeper than the {MAX_RANK} dimensions a tensor can have"
            )));
        }
        first = items[0].clone();
    }
    let total = crate::tensor::checked_numel(&sizes, who).py()?;
    let mut level = vec![data.clone()];
    for (depth, &size) in sizes[..sizes.len() - 1].iter().enumerate() {
        let mut next = Vec::new();
        for v in &level {
            let items = seq_items(v, who)?;
            if items.len() != size {
                return Err(PyValueError::new_err(format!(
                    "{who}: ragged nested list: a list at depth {depth} has {} items, the first has {size}",
                    items.len()
                )));
            }
            if let Some(x) = items.iter().find(|x| !is_seq(x)) {
                return Err(PyValueError::new_err(format!(
                    "{who}: ragged nested list: a {} at depth {}, where the first entry has a list",
                    type_name(x),
                    depth + 1
                )));
            }
            reserve(&mut next, items.len(), who)?;
            next.extend(items);
        }
        level = next;
    }
    let width = sizes[sizes.len() - 1];
    let mut values = Vec::new();
    reserve(&mut values, total, who)?;
    let mut row = Vec::new();
    for v in &level {
        read_items(v, &mut row, who)?;
        if row.len() != width {
            return Err(PyValueError::new_err(format!(
                "{who}: ragged nested list: a row has {} items, the first has {width}",
                row.len()
            )));
        }
        for x in &row {
            values.push(number(x, who)?);
        }
    }
    Tensor::new(Shape::new(&sizes).py()?, values).py()
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
    if item.is_exact_instance_of::<PyInt>() {
        // The common case (a mini-batch's indices), without the checks below.
        if let Ok(i) = item.extract::<i64>() {
            return normalize_index(i, n).py();
        }
    }
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
    shape.dims().to_vec()
}

impl PyTensor {
    /// Item `i` of the first dimension, already normalised: a float or a tensor of
    /// one rank less.
    fn first_dim_item<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Bound<'py, PyAny>> {
        let shape = self.t.shape();
        let d = shape.dims();
        if d.len() == 1 {
            return py_float(py, self.t.data()[i]);
        }
        let block = self.t.data().len() / d[0];
        let sub = PyTensor::wrap(
            Shape::new(&d[1..]).py()?,
            try_copy(&self.t.data()[i * block..(i + 1) * block])?,
        )?;
        Ok(Bound::new(py, sub)?.into_any())
    }
}

/// A new Python object of a native tensor.
fn new_tensor(py: Python<'_>, t: Tensor) -> PyResult<Bound<'_, PyAny>> {
    Ok(Bound::new(py, PyTensor::from_tensor(t))?.into_any())
}

/// The values `v` with sizes `dims` as a tensor, or a Python float when `dims` is
/// empty (a result of rank 0).
fn tensor_or_float<'py>(
    py: Python<'py>,
    v: Vec<f64>,
    dims: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    if dims.is_empty() {
        return py_float(py, v[0]);
    }
    new_tensor(py, Tensor::new(Shape::new(dims).py()?, v).py()?)
}

/// `v` as a nested list of Python ints with sizes `dims` (an int when `dims` is empty).
fn index_list<'py>(py: Python<'py>, v: &[usize], dims: &[usize]) -> PyResult<Bound<'py, PyAny>> {
    if dims.is_empty() {
        return Ok(v[0].into_pyobject(py)?.into_any());
    }
    Ok(list_from_bytes(py, v.len() * 8, "q", dims, |buf| {
        for (b, &i) in buf.chunks_exact_mut(8).zip(v) {
            b.copy_from_slice(&(i as i64).to_ne_bytes());
        }
    })?
    .into_any())
}

/// A Python scalar operand (`bool`, `int`, `float` or another real number, through
/// `float()`), or None for anything else.
fn scalar(v: &Bound<'_, PyAny>) -> PyResult<Option<f64>> {
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(Some(if b.is_true() { 1.0 } else { 0.0 }));
    }
    if let Ok(f) = v.cast::<PyFloat>() {
        return Ok(Some(f.value()));
    }
    if is_real(v)? {
        return Ok(Some(v.extract::<f64>()?));
    }
    Ok(None)
}

/// The `TypeError` of an operand that is not a pyfw_rs tensor (or, when `scalars`,
/// a number), as `pyfw.tensor._operand` words it.
fn bad_operand(who: &str, other: &Bound<'_, PyAny>, scalars: bool) -> PyErr {
    let want = if scalars { " or a number" } else { "" };
    let hint = mixed(&[other]);
    if !hint.is_empty() {
        return PyTypeError::new_err(format!(
            "{who}: expected a pyfw_rs Tensor{want}, got a {}{hint}",
            described(other)
        ));
    }
    if is_seq(other) {
        return PyTypeError::new_err(format!(
            "{who}: expected a pyfw_rs Tensor{want}, got a {}; convert it with fw.tensor()",
            type_name(other)
        ));
    }
    PyTypeError::new_err(format!(
        "{who}: expected a pyfw_rs Tensor{want}, got {}",
        described(other)
    ))
}

/// A number as `pyfw.tensor._scalar` takes it (bools too), or its `TypeError`.
fn scalar_arg(v: &Bound<'_, PyAny>, who: &str) -> PyResult<f64> {
    scalar(v)?.ok_or_else(|| {
        PyTypeError::new_err(format!("{who}: expected a number, got {}", type_name(v)))
    })
}

/// The values and shape of an operand of an in-place operation or an assignment: a
/// number (shape `(1,)`), a native tensor (copied) or nested data (through `tensor()`);
/// with `check_finite` (`add_`, as ever) its values must be finite.
fn operand_data(
    other: &Bound<'_, PyAny>,
    who: &str,
    check_finite: bool,
) -> PyResult<(Vec<f64>, Shape)> {
    if let Some(s) = scalar(other)? {
        if check_finite {
            check_all_finite(&[s], who)?;
        }
        return Ok((vec![s], Shape::Vector(1)));
    }
    let (data, shape) = if other.cast::<PyTensor>().is_ok() {
        tensor_data(other, who)?
    } else if is_seq(other) {
        let who = if check_finite { who } else { "tensor" };
        checked_tensor_data(other, who)?
    } else {
        return Err(bad_operand(who, other, true));
    };
    if check_finite {
        check_all_finite(&data, who)?;
    }
    Ok((data, shape))
}

/// Sizes given as ints or as one tuple or list of ints (`zeros(2, 3)`, `zeros((2, 3))`),
/// checked as `pyfw.tensor._size_args`: `TypeError` for a non-int, `ValueError` for no
/// size or a size below 1 (`-1` allowed once when `infer`, and returned as `None`).
fn size_args(args: &Bound<'_, PyTuple>, who: &str, infer: bool) -> PyResult<Vec<Option<usize>>> {
    let items = if args.len() == 1 && is_seq(&args.get_item(0)?) {
        seq_items(&args.get_item(0)?, who)?
    } else {
        args.iter().collect()
    };
    let text = || -> PyResult<String> { py_str(PyTuple::new(args.py(), &items)?.as_any()) };
    if items.is_empty() {
        return Err(PyValueError::new_err(format!(
            "{who}: expected at least one size; tensors have rank >= 1"
        )));
    }
    let mut dims = Vec::new();
    reserve(&mut dims, items.len(), who)?;
    for d in &items {
        if !is_integral(d)? {
            return Err(PyTypeError::new_err(format!(
                "{who}: sizes must be ints, got {} {}",
                type_name(d),
                py_repr(d)?
            )));
        }
        let v = saturating_i64(d)?;
        if v < 1 && !(infer && v == -1) {
            return Err(PyValueError::new_err(format!(
                "{who}: size {} in {} is not positive; tensors are never empty",
                py_str(d)?,
                text()?
            )));
        }
        dims.push(usize::try_from(v).ok());
    }
    if infer && dims.iter().filter(|d| d.is_none()).count() > 1 {
        return Err(PyValueError::new_err(format!(
            "{who}: only one size may be -1, got {}",
            text()?
        )));
    }
    if items.len() > MAX_RANK {
        return Err(PyValueError::new_err(format!(
            "{who}: {} sizes are more than the {MAX_RANK} dimensions a tensor can have",
            items.len()
        )));
    }
    Ok(dims)
}

/// Sizes as [`size_args`] checks them, none inferred.
fn sizes_of(args: &Bound<'_, PyTuple>, who: &str) -> PyResult<Vec<usize>> {
    Ok(size_args(args, who, false)?
        .into_iter()
        .map(|d| d.unwrap_or(0))
        .collect())
}

/// A shape of sizes `dims`, with room for its values checked before anything is
/// allocated (`MemoryError`).
fn shape_of(dims: &[usize], who: &str) -> PyResult<Shape> {
    crate::tensor::checked_numel(dims, who).py()?;
    Shape::new(dims).py()
}

/// A dimension argument: an int (`TypeError` else), normalised for `rank` (`IndexError`).
fn dim_of(v: &Bound<'_, PyAny>, rank: usize, who: &str) -> PyResult<usize> {
    if !is_integral(v)? {
        return Err(PyTypeError::new_err(format!(
            "{who}: dim must be an int, got {}",
            type_name(v)
        )));
    }
    normalize_dim(saturating_i64(v)?, rank, who).py()
}

/// The dimensions a reduction folds: all for None, else an int or a tuple or list of
/// ints (sorted; a repeated dim is a `ValueError`).
fn reduced_dims(dim: Option<&Bound<'_, PyAny>>, rank: usize, who: &str) -> PyResult<Vec<usize>> {
    let dim = match dim {
        Some(d) if !d.is_none() => d,
        _ => return Ok((0..rank).collect()),
    };
    let mut out = if is_seq(dim) {
        let items = seq_items(dim, who)?;
        if items.is_empty() {
            return Ok((0..rank).collect());
        }
        items
            .iter()
            .map(|d| dim_of(d, rank, who))
            .collect::<PyResult<Vec<_>>>()?
    } else {
        vec![dim_of(dim, rank, who)?]
    };
    out.sort_unstable();
    if out.windows(2).any(|w| w[0] == w[1]) {
        let items = seq_items(dim, who)?;
        return Err(PyValueError::new_err(format!(
            "{who}: dim {} names a dim more than once",
            py_str(PyTuple::new(dim.py(), &items)?.as_any())?
        )));
    }
    Ok(out)
}

/// The sizes of a reduction's result: the kept sizes, with 1 for each reduced
/// dimension when `keepdim`.
fn reduced_shape(shape: Shape, reduced: &[usize], keepdim: bool) -> Vec<usize> {
    shape
        .dims()
        .iter()
        .enumerate()
        .filter_map(|(d, &n)| match (reduced.contains(&d), keepdim) {
            (false, _) => Some(n),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect()
}

/// The selection of an index expression: one [`Pick`] per dimension, and whether
/// each dimension stays in the result (an int removes it).
fn selection(index: &Bound<'_, PyAny>, shape: Shape) -> PyResult<(Vec<Pick>, Vec<bool>)> {
    let d = shape.dims();
    let who = "Tensor";
    if let Ok(l) = index.cast::<PyList>() {
        let items = seq_items(l.as_any(), who)?;
        let mut idx = Vec::new();
        reserve(&mut idx, items.len(), who)?;
        for item in &items {
            idx.push(index_of(item, d[0])?);
        }
        if idx.is_empty() {
            return Err(empty(shape));
        }
        let mut picks = vec![Pick::List(idx)];
        picks.extend(d[1..].iter().map(|&n| Pick::all(n)));
        return Ok((picks, vec![true; d.len()]));
    }
    let entries: Vec<Bound<'_, PyAny>> = match index.cast::<PyTuple>() {
        Ok(t) if t.len() == 1 && t.get_item(0)?.is_instance_of::<PyList>() => {
            return selection(&t.get_item(0)?, shape);
        }
        Ok(t) => t.iter().collect(),
        Err(_) => vec![index.clone()],
    };
    let py = index.py();
    let ellipses = entries.iter().filter(|e| e.is(py.Ellipsis())).count();
    if ellipses > 1 {
        return Err(PyIndexError::new_err(
            "Tensor: an index can hold only one ellipsis (...)",
        ));
    }
    let used = entries.len() - ellipses;
    if used > d.len() {
        return Err(PyIndexError::new_err(format!(
            "Tensor: too many indices ({used}) for a tensor of rank {} (shape {shape})",
            d.len()
        )));
    }
    let mut picks = Vec::with_capacity(d.len());
    let mut keep = Vec::with_capacity(d.len());
    for e in &entries {
        let dim = picks.len();
        if e.is(py.Ellipsis()) {
            for &n in &d[dim..dim + d.len() - used] {
                picks.push(Pick::all(n));
                keep.push(true);
            }
        } else if let Ok(s) = e.cast::<PySlice>() {
            let n = d[dim];
            let step = s.getattr("step")?;
            if !step.is_none() {
                if !is_integral(&step)? {
                    return Err(PyTypeError::new_err(format!(
                        "Tensor: slice steps must be ints, got {}",
                        type_name(&step)
                    )));
                }
                if step.lt(1)? {
                    return Err(PyValueError::new_err(format!(
                        "Tensor: slice step must be positive, got {} (dim {dim})",
                        py_str(&step)?
                    )));
                }
            }
            let ind = s.indices(n as isize)?;
            if ind.slicelength == 0 {
                return Err(empty(shape));
            }
            picks.push(Pick::Range {
                start: ind.start as usize,
                step: ind.step as usize,
                len: ind.slicelength,
            });
            keep.push(true);
        } else if is_integral(e)? {
            let i = index_of(e, d[dim])?;
            picks.push(Pick::Range {
                start: i,
                step: 1,
                len: 1,
            });
            keep.push(false);
        } else if e.is_instance_of::<PyList>() {
            return Err(PyTypeError::new_err(
                "Tensor: advanced indexing (a list inside a tuple index) is not supported; a \
                 list of ints is allowed only as the whole index",
            ));
        } else {
            return Err(PyTypeError::new_err(format!(
                "Tensor: indices must be ints, got {}",
                type_name(e)
            )));
        }
    }
    for &n in &d[picks.len()..] {
        picks.push(Pick::all(n));
        keep.push(true);
    }
    Ok((picks, keep))
}

/// The `ValueError` of an index that selects nothing.
fn empty(shape: Shape) -> PyErr {
    PyValueError::new_err(format!(
        "Tensor: index selects no elements from shape {shape}; empty tensors are not supported"
    ))
}

/// The sizes a selection keeps.
fn kept_sizes(picks: &[Pick], keep: &[bool]) -> Vec<usize> {
    picks
        .iter()
        .zip(keep)
        .filter(|(_, &k)| k)
        .map(|(p, _)| p.len())
        .collect()
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
                    Some(t.first_dim_item(py, self.i)?)
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

/// The shared body of the binary operators: `self op other`, or `other op self`
/// when `reflected`.
fn arith<'py>(
    slf: &Bound<'py, PyTensor>,
    other: &Bound<'py, PyAny>,
    op: BinOp,
    who: &str,
    reflected: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let py = slf.py();
    let me = slf.busy_ref()?;
    if let Ok(o) = other.cast::<PyTensor>() {
        let o = o.busy_ref()?;
        let (a, b) = if reflected {
            (&o.t, &me.t)
        } else {
            (&me.t, &o.t)
        };
        return new_tensor(py, binary(op, a, b, who).py()?);
    }
    match scalar(other)? {
        Some(s) => new_tensor(py, binary_scalar(op, &me.t, s, reflected).py()?),
        None => Err(bad_operand(who, other, true)),
    }
}

/// Whether `==` / `!=` compare element by element with `v` (numbers, lists, tuples
/// and array-likes, which then get an answer or a `TypeError`), as `pyfw.tensor._comparable`.
fn comparable(v: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(v.cast::<PyTensor>().is_ok()
        || v.is_instance_of::<PyBool>()
        || is_real(v)?
        || is_seq(v)
        || (v.hasattr("tolist")? && v.hasattr("shape")?))
}

/// `op` of every element of `slf`, as a new tensor.
fn map<'py>(slf: &Bound<'py, PyTensor>, op: UnOp) -> PyResult<Bound<'py, PyAny>> {
    let t = unary(op, &slf.busy_ref()?.t).py()?;
    new_tensor(slf.py(), t)
}

/// A bound of `clamp`: None, or a number.
fn bound(v: Option<&Bound<'_, PyAny>>, who: &str, what: &str) -> PyResult<Option<f64>> {
    match v {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => scalar_arg(v, &format!("{who} {what}")).map(Some),
    }
}

/// The bounds of `clamp`/`clamp_`; both None is a `ValueError`, as torch.
fn bounds(
    min: Option<&Bound<'_, PyAny>>,
    max: Option<&Bound<'_, PyAny>>,
    who: &str,
) -> PyResult<UnOp> {
    let given = |v: Option<&Bound<'_, PyAny>>| v.is_some_and(|v| !v.is_none());
    if !given(min) && !given(max) {
        return Err(PyValueError::new_err(format!(
            "{who}: at least one of min and max must be given"
        )));
    }
    Ok(UnOp::Clamp(
        bound(min, who, "min")?,
        bound(max, who, "max")?,
    ))
}

/// `a @ b` of two native tensors: a tensor, or a float for 1-D @ 1-D.
fn product<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let who = "matmul";
    let (Ok(ta), Ok(tb)) = (a.cast::<PyTensor>(), b.cast::<PyTensor>()) else {
        let bad = if a.cast::<PyTensor>().is_ok() { b } else { a };
        return Err(bad_operand(who, bad, false));
    };
    let (ta, tb) = (ta.busy_ref()?, tb.busy_ref()?);
    let plan = matmul_plan(ta.t.shape(), tb.t.shape()).py()?;
    let (a, b) = (&ta.t, &tb.t);
    // Large products run without the interpreter lock; the borrows keep both tensors.
    let v = py.detach(|| matmul(a, b, &plan)).py()?;
    tensor_or_float(py, v, &plan.out)
}

/// A reduction with its index (`max`/`min` with a dim): `(values, indices)`.
fn extreme<'py>(
    slf: &Bound<'py, PyTensor>,
    dim: Option<&Bound<'py, PyAny>>,
    keepdim: Option<&Bound<'py, PyAny>>,
    op: Reduce,
    who: &str,
    want: Extreme,
) -> PyResult<Bound<'py, PyAny>> {
    let keepdim = flag(keepdim, false, who, "keepdim")?;
    let py = slf.py();
    let me = slf.busy_ref()?;
    let shape = me.t.shape();
    let rank = shape.ndim();
    let reduced = match dim {
        Some(d) if !d.is_none() => vec![dim_of(d, rank, who)?],
        _ => (0..rank).collect(),
    };
    let full = !matches!(dim, Some(d) if !d.is_none());
    let (vals, _, idx) = reduce(&me.t, &reduced, op).py()?;
    if full && keepdim {
        let out = reduced_shape(shape, &reduced, true);
        return match want {
            Extreme::Both => tensor_or_float(py, vals, &out),
            Extreme::Index => index_list(py, &idx, &out),
        };
    }
    if full {
        // The value, or the index of the winner among all elements in row-major order.
        return match want {
            Extreme::Both => py_float(py, vals[0]),
            Extreme::Index => Ok(idx[0].into_pyobject(py)?.into_any()),
        };
    }
    let out = reduced_shape(shape, &reduced, keepdim);
    match want {
        Extreme::Index => index_list(py, &idx, &out),
        Extreme::Both => {
            let v = tensor_or_float(py, vals, &out)?;
            let i = index_list(py, &idx, &out)?;
            Ok(PyTuple::new(py, [v, i])?.into_any())
        }
    }
}

/// What `max`/`min` (`Both`) and `argmax`/`argmin` (`Index`) return.
#[derive(Clone, Copy)]
enum Extreme {
    /// The value (a full reduction), or with a dim the pair `(values, indices)`.
    Both,
    /// The index, or with a dim the indices.
    Index,
}

/// A bool argument such as `keepdim` (`TypeError` for anything else), or `default`.
fn flag(v: Option<&Bound<'_, PyAny>>, default: bool, who: &str, what: &str) -> PyResult<bool> {
    match v {
        None => Ok(default),
        Some(v) => <bool as Arg>::extract(v, who, what),
    }
}

/// The shared body of `sum`, `mean` and `var`.
fn fold<'py>(
    slf: &Bound<'py, PyTensor>,
    dim: Option<&Bound<'py, PyAny>>,
    keepdim: Option<&Bound<'py, PyAny>>,
    op: Reduce,
    who: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let keepdim = flag(keepdim, false, who, "keepdim")?;
    let py = slf.py();
    let me = slf.busy_ref()?;
    let shape = me.t.shape();
    let reduced = reduced_dims(dim, shape.ndim(), who)?;
    let (vals, _, _) = reduce(&me.t, &reduced, op).py()?;
    let full = reduced.len() == shape.ndim();
    let out = if full && !keepdim {
        Vec::new()
    } else {
        reduced_shape(shape, &reduced, keepdim)
    };
    tensor_or_float(py, vals, &out)
}

/// The shared body of `add_`, `sub_`, `mul_` and `div_`.
fn in_place<'py>(
    slf: &Bound<'py, PyTensor>,
    other: &Bound<'py, PyAny>,
    op: BinOp,
    alpha: Option<f64>,
    who: &str,
) -> PyResult<Bound<'py, PyTensor>> {
    let (data, shape) = operand_data(other, who, op == BinOp::Add)?;
    let mut me = slf.busy_mut()?;
    binary_inplace(op, &mut me.t, &data, shape, alpha, who).py()?;
    drop(me);
    Ok(slf.clone())
}

/// A number argument such as `alpha`: finite, as `pyfw.tensor._number` checks it.
fn alpha_of(alpha: Option<&Bound<'_, PyAny>>, who: &str) -> PyResult<f64> {
    match alpha {
        Some(v) => number(v, &format!("{who} alpha")),
        None => Ok(1.0),
    }
}

#[pymethods]
impl PyTensor {
    #[new]
    fn new(data: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        Ok(PyTensor::from_tensor(parse(data, "tensor")?))
    }

    /// The shape, a tuple of sizes.
    #[getter]
    fn shape<'py>(slf: &Bound<'py, Self>, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let this = slf.busy_ref()?;
        PyTuple::new(py, this.t.shape().dims())
    }

    /// The number of dimensions.
    #[getter]
    fn ndim(slf: &Bound<'_, Self>) -> PyResult<usize> {
        let this = slf.busy_ref()?;
        Ok(this.t.shape().ndim())
    }

    /// The number of dimensions (as `torch.Tensor.dim`).
    fn dim(slf: &Bound<'_, Self>) -> PyResult<usize> {
        let this = slf.busy_ref()?;
        Ok(this.t.shape().ndim())
    }

    /// The number of elements.
    fn numel(slf: &Bound<'_, Self>) -> PyResult<usize> {
        let this = slf.busy_ref()?;
        Ok(this.t.shape().numel())
    }

    /// The value of a one-element tensor as a Python float.
    fn item<'py>(slf: &Bound<'py, Self>, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let this = slf.busy_ref()?;
        let n = this.t.shape().numel();
        if n != 1 {
            return Err(PyValueError::new_err(format!(
                "item: a tensor of {n} elements (shape {}) has no single value; only \
                 one-element tensors can be converted to a Python float",
                this.t.shape()
            )));
        }
        py_float(py, this.t.data()[0])
    }

    /// A fresh nested list of Python floats, nested to the tensor's rank.
    fn tolist<'py>(slf: &Bound<'py, Self>, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let this = slf.busy_ref()?;
        let values = this.t.data();
        let shape = this.t.shape();
        if values.len() > 1024 || shape.ndim() > 2 {
            // CPython builds the items from the bytes at C speed, into preallocated lists.
            return list_from_bytes(py, values.len() * 8, "d", &dims(shape), |buf| {
                for (b, v) in buf.chunks_exact_mut(8).zip(values) {
                    b.copy_from_slice(&v.to_ne_bytes());
                }
            });
        }
        if shape.ndim() == 1 {
            return floats_list(py, values);
        }
        let rows = PyList::empty(py);
        for i in 0..shape.rows() {
            rows.append(floats_list(py, this.t.row(i))?)?;
        }
        Ok(rows)
    }

    /// A copy that shares no storage with this tensor.
    fn clone(slf: &Bound<'_, Self>) -> PyResult<PyTensor> {
        let this = slf.busy_ref()?;
        Ok(PyTensor::from_tensor(this.t.try_clone().py()?))
    }

    /// The same values in row-major order with a new shape (ints or one tuple or list;
    /// one size may be -1, inferred), as a new tensor.
    #[pyo3(signature = (*shape))]
    fn reshape(slf: &Bound<'_, Self>, shape: &Bound<'_, PyTuple>) -> PyResult<PyTensor> {
        let who = "reshape";
        let me = slf.busy_ref()?;
        let dims = size_args(shape, who, true)?;
        let numel = me.t.shape().numel();
        let known = dims
            .iter()
            .flatten()
            .fold(1usize, |a, &b| a.saturating_mul(b));
        let text = |d: &[Option<usize>]| {
            let parts: Vec<String> = d
                .iter()
                .map(|v| v.map_or("-1".to_string(), |n| n.to_string()))
                .collect();
            if parts.len() == 1 {
                format!("({},)", parts[0])
            } else {
                format!("({})", parts.join(", "))
            }
        };
        let bad = |d: &[Option<usize>]| {
            PyValueError::new_err(format!(
                "{who}: shape {} is invalid for a tensor of {numel} elements (shape {})",
                text(d),
                me.t.shape()
            ))
        };
        let mut sizes: Vec<usize> = Vec::with_capacity(dims.len());
        for d in &dims {
            match d {
                Some(n) => sizes.push(*n),
                None => {
                    if numel % known != 0 {
                        return Err(bad(&dims));
                    }
                    sizes.push(numel / known);
                }
            }
        }
        let full: Vec<Option<usize>> = sizes.iter().map(|&n| Some(n)).collect();
        if sizes.iter().fold(1usize, |a, &b| a.saturating_mul(b)) != numel {
            return Err(bad(&full));
        }
        let new = Shape::new(&sizes).py()?;
        Ok(PyTensor::from_tensor(me.t.reshaped(new).py()?))
    }

    /// Dimensions `start_dim..=end_dim` merged into one, as a new tensor.
    #[pyo3(signature = (start_dim = None, end_dim = None), text_signature = "($self, start_dim=0, end_dim=-1)")]
    fn flatten(
        slf: &Bound<'_, Self>,
        start_dim: Option<&Bound<'_, PyAny>>,
        end_dim: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyTensor> {
        let who = "flatten";
        let me = slf.busy_ref()?;
        let shape = me.t.shape();
        let d = shape.dims();
        let s = match start_dim {
            Some(v) => dim_of(v, d.len(), who)?,
            None => 0,
        };
        let e = match end_dim {
            Some(v) => dim_of(v, d.len(), who)?,
            None => d.len() - 1,
        };
        if s > e {
            let text = |v: Option<&Bound<'_, PyAny>>, default: &str| match v {
                Some(v) => py_str(v),
                None => Ok(default.to_string()),
            };
            return Err(PyValueError::new_err(format!(
                "{who}: start_dim {} comes after end_dim {} (tensor of shape {shape})",
                text(start_dim, "0")?,
                text(end_dim, "-1")?
            )));
        }
        let mut sizes = d[..s].to_vec();
        sizes.push(d[s..=e].iter().product());
        sizes.extend_from_slice(&d[e + 1..]);
        let new = Shape::new(&sizes).py()?;
        Ok(PyTensor::from_tensor(me.t.reshaped(new).py()?))
    }

    /// Dimensions `dim0` and `dim1` swapped, as a new tensor.
    fn transpose(
        slf: &Bound<'_, Self>,
        dim0: &Bound<'_, PyAny>,
        dim1: &Bound<'_, PyAny>,
    ) -> PyResult<PyTensor> {
        let who = "transpose";
        let me = slf.busy_ref()?;
        let rank = me.t.shape().ndim();
        let (a, b) = (dim_of(dim0, rank, who)?, dim_of(dim1, rank, who)?);
        let mut perm: Vec<usize> = (0..rank).collect();
        perm.swap(a, b);
        Ok(PyTensor::from_tensor(me.t.permuted(&perm).py()?))
    }

    /// The dimensions in the order `dims` (ints or one tuple or list), as a new tensor.
    #[pyo3(signature = (*dims))]
    fn permute(slf: &Bound<'_, Self>, dims: &Bound<'_, PyTuple>) -> PyResult<PyTensor> {
        let who = "permute";
        let me = slf.busy_ref()?;
        let rank = me.t.shape().ndim();
        let items = if dims.len() == 1 && is_seq(&dims.get_item(0)?) {
            seq_items(&dims.get_item(0)?, who)?
        } else {
            dims.iter().collect()
        };
        if items.len() != rank {
            return Err(PyValueError::new_err(format!(
                "{who}: expected {rank} dims for a tensor of shape {}, got {}",
                me.t.shape(),
                items.len()
            )));
        }
        let perm = items
            .iter()
            .map(|d| dim_of(d, rank, who))
            .collect::<PyResult<Vec<_>>>()?;
        let mut seen = vec![false; rank];
        for &p in &perm {
            seen[p] = true;
        }
        if seen.contains(&false) {
            return Err(PyValueError::new_err(format!(
                "{who}: dims {} are not a permutation of the {rank} dims of {}",
                py_str(PyTuple::new(dims.py(), &items)?.as_any())?,
                me.t.shape()
            )));
        }
        Ok(PyTensor::from_tensor(me.t.permuted(&perm).py()?))
    }

    /// The transpose of a 2-D tensor (a copy of a 1-D one), as a new tensor.
    #[getter(T)]
    fn transposed(slf: &Bound<'_, Self>) -> PyResult<PyTensor> {
        let me = slf.busy_ref()?;
        match me.t.shape().ndim() {
            1 => Ok(PyTensor::from_tensor(me.t.try_clone().py()?)),
            2 => Ok(PyTensor::from_tensor(me.t.permuted(&[1, 0]).py()?)),
            _ => Err(PyValueError::new_err(format!(
                "T: defined for 1-D and 2-D tensors, got shape {}; use permute",
                me.t.shape()
            ))),
        }
    }

    /// The float64 numpy array of the values (`numpy.asarray(t)`), always a fresh copy;
    /// numpy is imported only here. `dtype` converts it; `copy=False` is a `ValueError`.
    #[pyo3(signature = (dtype = None, copy = None))]
    fn __array__<'py>(
        slf: &Bound<'py, Self>,
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
        let me = slf.busy_ref()?;
        let values = me.t.data();
        let buf = PyByteArray::new_with(py, values.len() * 8, |buf| {
            for (b, v) in buf.chunks_exact_mut(8).zip(values) {
                b.copy_from_slice(&v.to_ne_bytes());
            }
            Ok(())
        })?;
        let flat = np.call_method1("frombuffer", (buf, np.getattr("float64")?))?;
        let arr = flat.call_method1("reshape", (PyTuple::new(py, dims(me.t.shape()))?,))?;
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

    /// `self = self + (alpha * other)` element by element, in place, `other` (a
    /// tensor, nested list or number) broadcast to this shape; returns self.
    #[pyo3(signature = (other, alpha = None), text_signature = "($self, other, alpha=1.0)")]
    fn add_<'py>(
        slf: &Bound<'py, Self>,
        other: &Bound<'py, PyAny>,
        alpha: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, Self>> {
        let a = alpha_of(alpha, "Tensor.add_")?;
        in_place(slf, other, BinOp::Add, Some(a), "Tensor.add_")
    }

    /// `self = self - (alpha * other)`, in place, as `add_`; returns self.
    #[pyo3(signature = (other, alpha = None), text_signature = "($self, other, alpha=1.0)")]
    fn sub_<'py>(
        slf: &Bound<'py, Self>,
        other: &Bound<'py, PyAny>,
        alpha: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, Self>> {
        let a = alpha_of(alpha, "Tensor.sub_")?;
        in_place(slf, other, BinOp::Sub, Some(a), "Tensor.sub_")
    }

    /// `self = self * other`, in place, `other` broadcast to this shape; returns self.
    fn mul_<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Bound<'py, Self>> {
        in_place(slf, other, BinOp::Mul, None, "Tensor.mul_")
    }

    /// `self = self / other`, in place, `other` broadcast to this shape; returns self.
    fn div_<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Bound<'py, Self>> {
        in_place(slf, other, BinOp::Div, None, "Tensor.div_")
    }

    /// `clamp(min, max)` in place; returns self.
    #[pyo3(signature = (min = None, max = None))]
    fn clamp_<'py>(
        slf: &Bound<'py, Self>,
        min: Option<&Bound<'py, PyAny>>,
        max: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, Self>> {
        let op = bounds(min, max, "clamp")?;
        unary_inplace(op, slf.busy_mut()?.t.data_mut());
        Ok(slf.clone())
    }

    /// Each element limited to `[min, max]` (either may be None), as a new tensor.
    #[pyo3(signature = (min = None, max = None))]
    fn clamp<'py>(
        slf: &Bound<'py, Self>,
        min: Option<&Bound<'py, PyAny>>,
        max: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let op = bounds(min, max, "clamp")?;
        map(slf, op)
    }

    /// `|x|` of each element, as a new tensor.
    fn abs<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        map(slf, UnOp::Abs)
    }

    /// `exp(x)` of each element (C's), as a new tensor.
    fn exp<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        map(slf, UnOp::Exp)
    }

    /// `log(x)` of each element (C's; -inf at 0, NaN below), as a new tensor.
    fn log<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        map(slf, UnOp::Log)
    }

    /// `sqrt(x)` of each element (NaN below 0), as a new tensor.
    fn sqrt<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        map(slf, UnOp::Sqrt)
    }

    /// `tanh(x)` of each element (C's), as a new tensor.
    fn tanh<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        map(slf, UnOp::Tanh)
    }

    /// The logistic sigmoid of each element (the `Sigmoid` activation's formula).
    fn sigmoid<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        map(slf, UnOp::Sigmoid)
    }

    /// `self @ other` by torch's rules (a float for 1-D @ 1-D).
    fn matmul<'py>(
        slf: &Bound<'py, Self>,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        product(slf.py(), slf.as_any(), other)
    }

    /// The sum over `dim` (None: all, an int, or a tuple of ints); a float for a full sum.
    #[pyo3(signature = (dim = None, keepdim = None), text_signature = "($self, dim=None, keepdim=False)")]
    fn sum<'py>(
        slf: &Bound<'py, Self>,
        dim: Option<&Bound<'py, PyAny>>,
        keepdim: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        fold(slf, dim, keepdim, Reduce::Sum, "sum")
    }

    /// The mean over `dim`, as `sum`.
    #[pyo3(signature = (dim = None, keepdim = None), text_signature = "($self, dim=None, keepdim=False)")]
    fn mean<'py>(
        slf: &Bound<'py, Self>,
        dim: Option<&Bound<'py, PyAny>>,
        keepdim: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        fold(slf, dim, keepdim, Reduce::Mean, "mean")
    }

    /// The variance over `dim` (over `n - 1` when `unbiased`), as `sum`.
    #[pyo3(
        signature = (dim = None, unbiased = None, keepdim = None),
        text_signature = "($self, dim=None, unbiased=True, keepdim=False)"
    )]
    fn var<'py>(
        slf: &Bound<'py, Self>,
        dim: Option<&Bound<'py, PyAny>>,
        unbiased: Option<&Bound<'py, PyAny>>,
        keepdim: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let unbiased = flag(unbiased, true, "var", "unbiased")?;
        fold(slf, dim, keepdim, Reduce::Var(unbiased), "var")
    }

    /// The largest element (a float), or with `dim` the pair `(values, indices)`.
    #[pyo3(signature = (dim = None, keepdim = None), text_signature = "($self, dim=None, keepdim=False)")]
    fn max<'py>(
        slf: &Bound<'py, Self>,
        dim: Option<&Bound<'py, PyAny>>,
        keepdim: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        extreme(slf, dim, keepdim, Reduce::Max, "max", Extreme::Both)
    }

    /// The smallest element (a float), or with `dim` the pair `(values, indices)`.
    #[pyo3(signature = (dim = None, keepdim = None), text_signature = "($self, dim=None, keepdim=False)")]
    fn min<'py>(
        slf: &Bound<'py, Self>,
        dim: Option<&Bound<'py, PyAny>>,
        keepdim: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        extreme(slf, dim, keepdim, Reduce::Min, "min", Extreme::Both)
    }

    /// The index of the largest element: an int (row-major, for dim None), or with
    /// `dim` a nested list of ints.
    #[pyo3(signature = (dim = None, keepdim = None), text_signature = "($self, dim=None, keepdim=False)")]
    fn argmax<'py>(
        slf: &Bound<'py, Self>,
        dim: Option<&Bound<'py, PyAny>>,
        keepdim: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        extreme(slf, dim, keepdim, Reduce::Max, "argmax", Extreme::Index)
    }

    /// The index of the smallest element, as `argmax`.
    #[pyo3(signature = (dim = None, keepdim = None), text_signature = "($self, dim=None, keepdim=False)")]
    fn argmin<'py>(
        slf: &Bound<'py, Self>,
        dim: Option<&Bound<'py, PyAny>>,
        keepdim: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        extreme(slf, dim, keepdim, Reduce::Min, "argmin", Extreme::Index)
    }

    fn __add__<'py>(
        slf: &Bound<'py, Self>,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        arith(slf, other, BinOp::Add, "add", false)
    }

    fn __radd__<'py>(
        slf: &Bound<'py, Self>,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        arith(slf, other, BinOp::Add, "add", true)
    }

    fn __sub__<'py>(
        slf: &Bound<'py, Self>,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        arith(slf, other, BinOp::Sub, "sub", false)
    }

    fn __rsub__<'py>(
        slf: &Bound<'py, Self>,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        arith(slf, other, BinOp::Sub, "sub", true)
    }

    fn __mul__<'py>(
        slf: &Bound<'py, Self>,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        arith(slf, other, BinOp::Mul, "mul", false)
    }

    fn __rmul__<'py>(
        slf: &Bound<'py, Self>,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        arith(slf, other, BinOp::Mul, "mul", true)
    }

    fn __truediv__<'py>(
        slf: &Bound<'py, Self>,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        arith(slf, other, BinOp::Div, "div", false)
    }

    fn __rtruediv__<'py>(
        slf: &Bound<'py, Self>,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        arith(slf, other, BinOp::Div, "div", true)
    }

    fn __matmul__<'py>(
        slf: &Bound<'py, Self>,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        product(slf.py(), slf.as_any(), other)
    }

    fn __rmatmul__<'py>(
        slf: &Bound<'py, Self>,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        product(slf.py(), other, slf.as_any())
    }

    /// `self ** exponent` for a number exponent (C's `pow`).
    fn __pow__<'py>(
        slf: &Bound<'py, Self>,
        exponent: &Bound<'py, PyAny>,
        _modulo: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if exponent.cast::<PyTensor>().is_ok() {
            return Err(PyTypeError::new_err(
                "pow: the exponent must be a number (int or float), not a tensor",
            ));
        }
        match scalar(exponent)? {
            Some(e) => map(slf, UnOp::Pow(e)),
            None => Err(bad_operand("pow", exponent, true)),
        }
    }

    fn __neg__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        map(slf, UnOp::Neg)
    }

    fn __abs__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        map(slf, UnOp::Abs)
    }

    /// Comparisons give float tensors of 0.0 and 1.0.
    fn __richcmp__<'py>(
        slf: &Bound<'py, Self>,
        other: &Bound<'py, PyAny>,
        op: CompareOp,
    ) -> PyResult<Bound<'py, PyAny>> {
        if matches!(op, CompareOp::Eq | CompareOp::Ne) && !comparable(other)? {
            let same = slf.as_any().is(other);
            let eq = matches!(op, CompareOp::Eq);
            return Ok(PyBool::new(slf.py(), same == eq).to_owned().into_any());
        }
        let (b, who) = match op {
            CompareOp::Lt => (BinOp::Lt, "lt"),
            CompareOp::Le => (BinOp::Le, "le"),
            CompareOp::Gt => (BinOp::Gt, "gt"),
            CompareOp::Ge => (BinOp::Ge, "ge"),
            CompareOp::Eq => (BinOp::Eq, "eq"),
            CompareOp::Ne => (BinOp::Ne, "ne"),
        };
        arith(slf, other, b, who, false)
    }

    /// Identity, as `object.__hash__`: `==` compares values element by element.
    fn __hash__(slf: &Bound<'_, Self>) -> isize {
        let h = (slf.as_ptr() as usize).rotate_right(4) as isize;
        if h == -1 {
            -2
        } else {
            h
        }
    }

    /// The truth of a one-element tensor's value; more elements are ambiguous.
    fn __bool__(slf: &Bound<'_, Self>) -> PyResult<bool> {
        let me = slf.busy_ref()?;
        let n = me.t.shape().numel();
        if n != 1 {
            return Err(PyRuntimeError::new_err(format!(
                "bool of a tensor of {n} elements is ambiguous"
            )));
        }
        Ok(me.t.data()[0] != 0.0)
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

    /// Index as torch does for basic cases: ints, slices (step >= 1), `...`, a tuple
    /// of those, or a list of ints (the first dimension). A copy: a new tensor, or a
    /// float when every dimension is indexed by an int.
    fn __getitem__<'py>(
        slf: &Bound<'py, Self>,
        index: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let this = slf.busy_ref()?;
        let py = index.py();
        let shape = this.t.shape();
        if let Ok(l) = index.cast::<PyList>() {
            // Rows gathered by a list (a mini-batch, at every step): whole blocks copied.
            let mut idx = Vec::new();
            reserve(&mut idx, l.len(), "Tensor")?;
            for item in l.iter() {
                idx.push(index_of(&item, shape.len())?);
            }
            let t = this.t.select(&idx).py()?;
            return Ok(Bound::new(py, PyTensor::from_tensor(t))?.into_any());
        }
        if shape.ndim() == 1 {
            // The common case of a row or an element, without building a selection.
            if is_integral(index)? {
                return py_float(py, this.t.data()[index_of(index, shape.len())?]);
            }
        } else if is_integral(index)? {
            return this.first_dim_item(py, index_of(index, shape.len())?);
        }
        let (picks, keep) = selection(index, shape)?;
        let v = this.t.gather(&picks).py()?;
        tensor_or_float(py, v, &kept_sizes(&picks, &keep))
    }

    /// Write `value` (a number, a pyfw_rs tensor or nested list broadcast to the
    /// selected shape) into the elements an index selects, in place.
    fn __setitem__(
        slf: &Bound<'_, Self>,
        index: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let who = "Tensor.__setitem__";
        let shape = slf.busy_ref()?.t.shape();
        let (picks, keep) = selection(index, shape)?;
        let kept = kept_sizes(&picks, &keep);
        let (data, vshape) = operand_data(value, who, false)?;
        // Leading sizes of 1 beyond the selection's rank drop out (as numpy and torch).
        let vd = vshape.dims();
        let mut lead = 0;
        while vd.len() - lead > kept.len().max(1) && vd[lead] == 1 {
            lead += 1;
        }
        let vs = Shape::new(&vd[lead..]).py()?;
        let sel = Shape::new(if kept.is_empty() { &[1] } else { &kept }).py()?;
        if !kept.is_empty() {
            // The message of a failed broadcast names the value's own shape.
            crate::tensor::broadcast_shapes(vs, sel, who).map_err(|_| {
                PyValueError::new_err(format!("{who}: shapes {vshape} and {sel} do not broadcast"))
            })?;
        }
        let fits = crate::tensor::broadcast_shapes(vs, sel, who).is_ok_and(|b| b == sel)
            && (!kept.is_empty() || vs.numel() == 1);
        if !fits {
            let sel_text = if kept.is_empty() {
                "()".to_string()
            } else {
                sel.to_string()
            };
            return Err(PyValueError::new_err(format!(
                "{who}: a value of shape {vshape} does not broadcast to the selected shape {sel_text}"
            )));
        }
        slf.busy_mut()?.t.scatter(&picks, sel, &data, vs).py()
    }

    fn __iter__(slf: &Bound<'_, Self>) -> TensorIterator {
        TensorIterator {
            t: Some(slf.clone().unbind()),
            i: 0,
        }
    }

    /// `tensor([...])`; past 1000 elements, summarized as torch does (`pyfw.tensor.format_repr`).
    fn __repr__(slf: &Bound<'_, Self>, py: Python<'_>) -> PyResult<String> {
        let this = slf.busy_ref()?;
        let tensor = py.import("pyfw.tensor")?;
        let threshold: usize = tensor.getattr("SUMMARY_THRESHOLD")?.extract()?;
        let edge: usize = tensor.getattr("EDGE_ITEMS")?.extract()?;
        let shape = this.t.shape();
        let summarize = shape.numel() > threshold;
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
        let nest = Nest {
            py,
            data: this.t.data(),
            dims: shape.dims(),
            strides: &shape.strides(),
            shown: &shown,
            ellipsis: ellipsis.bind(py),
        };
        let items = nest.level(0, 0)?;
        tensor.call_method1("format_repr", (items,))?.extract()
    }
}

/// What `__repr__` needs to build the (summarized) nested list of a tensor.
struct Nest<'a, 'py> {
    py: Python<'py>,
    data: &'a [f64],
    dims: &'a [usize],
    strides: &'a [usize],
    shown: &'a dyn Fn(usize) -> Vec<Option<usize>>,
    ellipsis: &'a Bound<'py, PyAny>,
}

impl<'py> Nest<'_, 'py> {
    /// The nested list of the block of dimension `k` at offset `off`.
    fn level(&self, k: usize, off: usize) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(self.py);
        for i in (self.shown)(self.dims[k]) {
            match i {
                None => list.append(self.ellipsis)?,
                Some(i) if k + 1 == self.dims.len() => {
                    list.append(py_float(self.py, self.data[off + i])?)?
                }
                Some(i) => list.append(self.level(k + 1, off + i * self.strides[k])?)?,
            }
        }
        Ok(list)
    }
}

/// Build a float64 tensor from a rectangular nested list of any depth, a numpy array
/// or a tensor.
///
/// Raises `TypeError` for non-numbers and `ValueError` for ragged, empty or
/// non-finite data.
#[pyfunction]
fn tensor(data: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
    Ok(PyTensor::from_tensor(parse(data, "tensor")?))
}

/// A tensor of zeros of the given sizes (ints, or one tuple or list of ints).
#[pyfunction]
#[pyo3(signature = (*size))]
fn zeros(size: &Bound<'_, PyTuple>) -> PyResult<PyTensor> {
    let s = shape_of(&sizes_of(size, "zeros")?, "zeros")?;
    Ok(PyTensor::from_tensor(Tensor::full(s, 0.0).py()?))
}

/// A tensor of ones of the given sizes.
#[pyfunction]
#[pyo3(signature = (*size))]
fn ones(size: &Bound<'_, PyTuple>) -> PyResult<PyTensor> {
    let s = shape_of(&sizes_of(size, "ones")?, "ones")?;
    Ok(PyTensor::from_tensor(Tensor::full(s, 1.0).py()?))
}

/// A tensor of the sizes `size` (an int, or a tuple or list of ints) filled with
/// `fill_value` (any float, inf and NaN included).
#[pyfunction]
fn full(size: &Bound<'_, PyAny>, fill_value: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
    let who = "full";
    let args = PyTuple::new(size.py(), [size])?;
    let s = shape_of(&sizes_of(&args, who)?, who)?;
    let v = scalar_arg(fill_value, "full fill_value")?;
    Ok(PyTensor::from_tensor(Tensor::full(s, v).py()?))
}

/// The shape of a `*_like` argument, which must be a pyfw_rs tensor.
fn like_shape(t: &Bound<'_, PyAny>, who: &str) -> PyResult<Shape> {
    match t.cast::<PyTensor>() {
        Ok(t) => Ok(t.busy_ref()?.t.shape()),
        Err(_) => Err(bad_operand(who, t, false)),
    }
}

/// Zeros of the shape of `t`.
#[pyfunction]
fn zeros_like(t: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
    let s = like_shape(t, "zeros_like")?;
    Ok(PyTensor::from_tensor(Tensor::full(s, 0.0).py()?))
}

/// Ones of the shape of `t`.
#[pyfunction]
fn ones_like(t: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
    let s = like_shape(t, "ones_like")?;
    Ok(PyTensor::from_tensor(Tensor::full(s, 1.0).py()?))
}

/// A tensor of the sizes given, each value one draw of `draw` in row-major order.
fn drawn(
    py: Python<'_>,
    size: &Bound<'_, PyTuple>,
    generator: Option<&Bound<'_, PyAny>>,
    who: &str,
    draw: fn(&mut crate::generator::Generator) -> f64,
) -> PyResult<PyTensor> {
    let s = shape_of(&sizes_of(size, who)?, who)?;
    let g = resolve(py, generator)?;
    let mut t = Tensor::zeros(s).py()?;
    let mut g = g.busy_mut()?;
    for v in t.data_mut() {
        *v = draw(&mut g.g);
    }
    Ok(PyTensor::from_tensor(t))
}

/// Uniform values in [0, 1): one `random()` per element, row-major.
#[pyfunction]
#[pyo3(signature = (*size, generator = None))]
fn rand(
    py: Python<'_>,
    size: &Bound<'_, PyTuple>,
    generator: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyTensor> {
    drawn(py, size, generator, "rand", |g| g.random())
}

/// Standard normal values: one `normal()` per element, row-major.
#[pyfunction]
#[pyo3(signature = (*size, generator = None))]
fn randn(
    py: Python<'_>,
    size: &Bound<'_, PyTuple>,
    generator: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyTensor> {
    drawn(py, size, generator, "randn", |g| g.normal(0.0, 1.0))
}

/// The tensors joined along `dim`.
#[pyfunction]
#[pyo3(signature = (tensors, dim = None), text_signature = "(tensors, dim=0)")]
fn cat(tensors: &Bound<'_, PyAny>, dim: Option<&Bound<'_, PyAny>>) -> PyResult<PyTensor> {
    let who = "cat";
    if !is_seq(tensors) {
        return Err(PyTypeError::new_err(format!(
            "{who}: expected a list or tuple of tensors, got {}",
            type_name(tensors)
        )));
    }
    let items = seq_items(tensors, who)?;
    let mut refs = Vec::with_capacity(items.len());
    for t in &items {
        match t.cast::<PyTensor>() {
            Ok(t) => refs.push(t.busy_ref()?),
            Err(_) => return Err(bad_operand(who, t, false)),
        }
    }
    if refs.is_empty() {
        return Err(PyValueError::new_err(format!(
            "{who}: expected at least one tensor; tensors are never empty"
        )));
    }
    let first = refs[0].t.shape();
    let d = match dim {
        Some(d) => dim_of(d, first.ndim(), who)?,
        None => 0,
    };
    for r in &refs[1..] {
        let s = r.t.shape();
        let (a, b) = (first.dims(), s.dims());
        if a.len() != b.len() || a[..d] != b[..d] || a[d + 1..] != b[d + 1..] {
            let text = match dim {
                Some(v) => py_str(v)?,
                None => "0".into(),
            };
            return Err(PyValueError::new_err(format!(
                "{who}: shapes {first} and {s} differ in a dim other than dim {text}"
            )));
        }
    }
    let ts: Vec<&Tensor> = refs.iter().map(|r| &r.t).collect();
    Ok(PyTensor::from_tensor(Tensor::cat(&ts, d).py()?))
}

/// The element-wise function of two operands: a tensor, and a tensor or a number.
fn pairwise<'py>(
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    op: BinOp,
    who: &str,
) -> PyResult<Bound<'py, PyAny>> {
    match a.cast::<PyTensor>() {
        Ok(t) => arith(t, b, op, who, false),
        Err(_) => Err(bad_operand(who, a, false)),
    }
}

/// Element-wise maximum (NaN if either is NaN; the first on ties).
#[pyfunction]
fn maximum<'py>(a: &Bound<'py, PyAny>, b: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    pairwise(a, b, BinOp::Maximum, "maximum")
}

/// Element-wise minimum (NaN if either is NaN; the first on ties).
#[pyfunction]
fn minimum<'py>(a: &Bound<'py, PyAny>, b: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    pairwise(a, b, BinOp::Minimum, "minimum")
}

/// `a @ b` by torch's rules (a float for 1-D @ 1-D).
#[pyfunction(name = "matmul")]
fn matmul_fn<'py>(a: &Bound<'py, PyAny>, b: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    product(a.py(), a, b)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTensor>()?;
    m.add_function(wrap_pyfunction!(tensor, m)?)?;
    m.add_function(wrap_pyfunction!(zeros, m)?)?;
    m.add_function(wrap_pyfunction!(ones, m)?)?;
    m.add_function(wrap_pyfunction!(full, m)?)?;
    m.add_function(wrap_pyfunction!(zeros_like, m)?)?;
    m.add_function(wrap_pyfunction!(ones_like, m)?)?;
    m.add_function(wrap_pyfunction!(rand, m)?)?;
    m.add_function(wrap_pyfunction!(randn, m)?)?;
    m.add_function(wrap_pyfunction!(cat, m)?)?;
    m.add_function(wrap_pyfunction!(maximum, m)?)?;
    m.add_function(wrap_pyfunction!(minimum, m)?)?;
    m.add_function(wrap_pyfunction!(matmul_fn, m)?)?;
    Ok(())
}
