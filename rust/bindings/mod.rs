//! The PyO3 binding layer: the only code that touches Python. It validates
//! every argument, converts data at the boundary (`tensor()`, `tolist()`,
//! indexing), and runs the kernels of the parent crate on the live storage of
//! the Python-visible objects. Kernel errors become the Python exception type
//! that `pyfw` raises for the same input; no code path here panics on bad input.

use pyo3::exceptions::{
    PyIndexError, PyMemoryError, PyOverflowError, PyRuntimeError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::pyclass::boolean_struct::False;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};
use pyo3::PyClass;

use crate::error::{check_real, Error};

mod activations;
mod base;
mod conv;
mod data;
mod generator;
mod losses;
mod modules;
mod optim;
mod tensor;
mod training;

/// The `RuntimeError` of an object whose storage native code running in another
/// thread holds (an epoch of a native `fit`, or a `forward` or `backward`, which
/// release the interpreter lock): it names the object, where PyO3 would say only
/// "Already borrowed".
pub(crate) fn in_use(obj: &Bound<'_, PyAny>) -> PyErr {
    PyRuntimeError::new_err(format!(
        "{}: in use by native code in another thread (an epoch of a native fit, or a forward \
         or backward); use it after that call returns (for example in fit's on_epoch)",
        type_name(obj)
    ))
}

/// Borrows of a native object that fail with [`in_use`] instead of PyO3's bare message.
pub(crate) trait Borrow<'py, T: PyClass> {
    /// `try_borrow`, or [`in_use`].
    fn busy_ref(&self) -> PyResult<PyRef<'py, T>>;
    /// `try_borrow_mut`, or [`in_use`].
    fn busy_mut(&self) -> PyResult<PyRefMut<'py, T>>
    where
        T: PyClass<Frozen = False>;
}

impl<'py, T: PyClass> Borrow<'py, T> for Bound<'py, T> {
    fn busy_ref(&self) -> PyResult<PyRef<'py, T>> {
        self.try_borrow().map_err(|_| in_use(self.as_any()))
    }

    fn busy_mut(&self) -> PyResult<PyRefMut<'py, T>>
    where
        T: PyClass<Frozen = False>,
    {
        self.try_borrow_mut().map_err(|_| in_use(self.as_any()))
    }
}

/// `type_name(obj)`, prefixed with its backend for an object of `pyfw` or `pyfw_rs`
/// (`"pyfw Linear"`), as `pyfw.error.described`.
pub(crate) fn described(obj: &Bound<'_, PyAny>) -> String {
    let module = obj
        .get_type()
        .module()
        .and_then(|m| m.to_cow().map(|c| c.into_owned()))
        .unwrap_or_default();
    let root = module.split('.').next().unwrap_or("");
    match root {
        "pyfw" | "pyfw_rs" => format!("{root} {}", type_name(obj)),
        _ => type_name(obj),
    }
}

/// The hint of a message about `objs` when one of them is a `pyfw` object, as
/// `pyfw.error.mixed`.
pub(crate) fn mixed(objs: &[&Bound<'_, PyAny>]) -> String {
    if objs.iter().any(|o| described(o).starts_with("pyfw ")) {
        " (the two backends do not mix: build everything with pyfw_rs)".to_string()
    } else {
        String::new()
    }
}

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

/// A kernel error of a module, with the message's leading `kind` (the native
/// class's name) replaced by the name of `obj`'s class when a Python subclass
/// differs, as `pyfw` names `type(self).__name__`.
pub(crate) fn renamed(e: Error, kind: &str, obj: &Bound<'_, PyAny>) -> PyErr {
    let name = type_name(obj);
    let prefix = format!("{kind}:");
    let e = match e {
        Error::Type(m) => Error::Type(rename_prefix(m, &prefix, &name)),
        Error::Value(m) => Error::Value(rename_prefix(m, &prefix, &name)),
        Error::Runtime(m) => Error::Runtime(rename_prefix(m, &prefix, &name)),
        Error::Index(m) => Error::Index(rename_prefix(m, &prefix, &name)),
        Error::Memory(m) => Error::Memory(rename_prefix(m, &prefix, &name)),
    };
    to_pyerr(e)
}

fn rename_prefix(m: String, prefix: &str, name: &str) -> String {
    match m.strip_prefix(prefix) {
        Some(rest) => format!("{name}:{rest}"),
        None => m,
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
        .and_then(|s| s.to_cow().map(|c| c.into_owned()))
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
    if obj.is_instance_of::<PyFloat>() || obj.is_instance_of::<PyInt>() {
        return Ok(true); // the common case, without the ABC check
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
            py_str(obj)?
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

/// A constructor argument as the caller gave it (None included), or `Missing`.
pub(crate) enum Given<'py> {
    /// Left out: the default applies.
    Missing,
    /// Passed, possibly as None.
    Value(Bound<'py, PyAny>),
}

impl<'a, 'py> FromPyObject<'a, 'py> for Given<'py> {
    type Error = PyErr;

    fn extract(obj: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<Given<'py>> {
        Ok(Given::Value(obj.to_owned()))
    }
}

impl Given<'_> {
    /// The checked value, or `default` when the argument was left out.
    pub(crate) fn or<T: Arg>(&self, default: T, who: &str, what: &str) -> PyResult<T> {
        match self {
            Given::Missing => Ok(default),
            Given::Value(v) => T::extract(v, who, what),
        }
    }
}

/// A constructor argument of a member, checked as `pyfw.error` checks it.
pub(crate) trait Arg: Sized {
    /// The value of `v` for argument `what` of class `who`.
    fn extract(v: &Bound<'_, PyAny>, who: &str, what: &str) -> PyResult<Self>;
    /// Python's repr of the value.
    fn repr(&self, py: Python<'_>) -> PyResult<String>;
}

impl Arg for f64 {
    fn extract(v: &Bound<'_, PyAny>, who: &str, what: &str) -> PyResult<f64> {
        if !is_real(v)? {
            return Err(PyTypeError::new_err(format!(
                "{who}: {what} must be a real number, got {}",
                type_name(v)
            )));
        }
        let f = match v.extract::<f64>() {
            Ok(f) => f,
            Err(e) if e.is_instance_of::<PyOverflowError>(v.py()) => f64::INFINITY,
            Err(e) => return Err(e),
        };
        check_real(f, who, what).py()
    }

    fn repr(&self, py: Python<'_>) -> PyResult<String> {
        py_repr(&PyFloat::new(py, *self))
    }
}

impl Arg for i64 {
    fn extract(v: &Bound<'_, PyAny>, who: &str, what: &str) -> PyResult<i64> {
        if !is_integral(v)? {
            return Err(PyTypeError::new_err(format!(
                "{who}: {what} must be an int, got {}",
                type_name(v)
            )));
        }
        v.extract::<i64>().map_err(|_| match v.str() {
            Ok(text) => PyValueError::new_err(format!("{who}: {what} is out of range, got {text}")),
            Err(e) => e,
        })
    }

    fn repr(&self, _: Python<'_>) -> PyResult<String> {
        Ok(self.to_string())
    }
}

impl Arg for crate::losses::Reduction {
    fn extract(v: &Bound<'_, PyAny>, who: &str, what: &str) -> PyResult<crate::losses::Reduction> {
        let Ok(s) = v.cast::<PyString>() else {
            return Err(PyTypeError::new_err(format!(
                "{who}: {what} must be a str, got {}",
                type_name(v)
            )));
        };
        let name = s.to_cow().ok();
        match name
            .as_deref()
            .and_then(crate::losses::Reduction::from_name)
        {
            Some(r) => Ok(r),
            None => Err(to_pyerr(crate::losses::bad_reduction(who, &py_repr(v)?))),
        }
    }

    fn repr(&self, py: Python<'_>) -> PyResult<String> {
        py_repr(&PyString::new(py, self.name()))
    }
}

impl Arg for bool {
    fn extract(v: &Bound<'_, PyAny>, who: &str, what: &str) -> PyResult<bool> {
        match v.cast::<PyBool>() {
            Ok(b) => Ok(b.is_true()),
            Err(_) => Err(PyTypeError::new_err(format!(
                "{who}: {what} must be a bool, got {}",
                type_name(v)
            ))),
        }
    }

    fn repr(&self, _: Python<'_>) -> PyResult<String> {
        Ok(if *self { "True" } else { "False" }.into())
    }
}

/// A pair of finite reals given as a tuple or list, such as Adam's `betas`.
impl Arg for (f64, f64) {
    fn extract(v: &Bound<'_, PyAny>, who: &str, what: &str) -> PyResult<(f64, f64)> {
        if !is_seq(v) || v.len()? != 2 {
            return Err(PyTypeError::new_err(format!(
                "{who}: {what} must be a pair of real numbers, got {}",
                type_name(v)
            )));
        }
        let a = <f64 as Arg>::extract(&v.get_item(0)?, who, &format!("{what}[0]"))?;
        let b = <f64 as Arg>::extract(&v.get_item(1)?, who, &format!("{what}[1]"))?;
        Ok((a, b))
    }

    fn repr(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("({}, {})", self.0.repr(py)?, self.1.repr(py)?))
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
    training::register(m)?;
    conv::register(m)?;
    Ok(())
}

/// `str(obj)` as a Rust string. Formatting a Python object with `{}` would call
/// `str()` again and, should that fail (`str()` also checks for signals, so a
/// pending Ctrl-C fails it), print the error as "ignored" and go on; this
/// returns the error instead.
pub(crate) fn py_str(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(obj.str()?.to_cow()?.into_owned())
}

/// `repr(obj)` as a Rust string, with the error returned as for [`py_str`].
pub(crate) fn py_repr(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(obj.repr()?.to_cow()?.into_owned())
}
