//! Binding of `Module`, the base class that every layer, activation and loss
//! extends (see `pyfw/modules.py`).
//!
//! The module tree (registration of children, parameters and buffers on
//! assignment, `named_modules`, `param`, `train`, `apply`, the tree `repr`, ...)
//! is written once, in `pyfw/modules.py`: these methods call `pyfw.modules.Module`'s
//! with a native module as `self`, and those go through Python method lookup, so
//! overrides in subclasses are honoured. `state_dict` and `load_state_dict` copy
//! the tensors here, with the interpreter lock held throughout, so another thread
//! sees a load either wholly or not at all. No borrow of a module is held while
//! Python code runs.

use pyo3::exceptions::{PyNotImplementedError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use pyo3::PyTypeInfo;

use super::tensor::{checked_tensor_data, PyTensor};
use super::{py_repr, py_str, type_name, Borrow, StrictBool, Truthy};

// ---------------------------------------------------------------- Module

/// Base class of every layer and loss.
///
/// Subclasses override `forward` and `backward`. Assigning a module to an
/// attribute registers it as a child, assigning a `Parameter` (a tensor with
/// `.grad`) registers a parameter, and `register_buffer` registers state that is
/// saved but not trained, all in assignment order, as in torch. `param()` then
/// lists the registered parameters' `(parameter, gradient)` pairs, the
/// children's included; a module may override it instead.
#[pyclass(subclass, module = "pyfw_rs", name = "Module")]
pub struct Module {
    /// Training mode (`train()` / `eval()`); read and set through `training`.
    pub(crate) training: bool,
}

impl Module {
    fn base() -> Module {
        Module { training: true }
    }
}

fn call_name(slf: &Bound<'_, PyAny>) -> PyResult<String> {
    py_str(&slf.call_method0(intern!(slf.py(), "_name"))?)
}

/// `pyfw.modules.<name>`, the module tree's code, written once.
fn tree<'py>(py: Python<'py>, name: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyAny>> {
    py.import(intern!(py, "pyfw.modules"))?.getattr(name)
}

/// `pyfw.modules.Module.<name>`, called with a native module as `self`.
fn shared<'py>(
    slf: &Bound<'py, Module>,
    name: &Bound<'py, PyString>,
) -> PyResult<Bound<'py, PyAny>> {
    tree(slf.py(), intern!(slf.py(), "Module"))?.getattr(name)
}

/// `[(name, tensor), ...]` of every parameter and buffer of `slf`, as `state_dict` keys them.
fn state_entries<'py>(
    slf: &Bound<'py, Module>,
) -> PyResult<Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>> {
    let py = slf.py();
    let entries = tree(py, intern!(py, "_entries"))?.call1((slf, "", true))?;
    let mut out = Vec::new();
    for e in entries.try_iter()? {
        let e = e?;
        out.push((e.get_item(0)?, e.get_item(1)?));
    }
    Ok(out)
}

/// Whether `obj` has an instance `__dict__` (an instance of a Python subclass).
fn has_dict(obj: &Bound<'_, PyAny>) -> bool {
    obj.hasattr(intern!(obj.py(), "__dict__")).unwrap_or(false)
}

/// `object.__setattr__` (or, for `value` None, `object.__delattr__`), which Python
/// itself refuses to apply to a class whose base overrides `__setattr__`.
fn generic_setattr(
    obj: &Bound<'_, PyAny>,
    name: &Bound<'_, PyAny>,
    value: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let value = value.map_or(std::ptr::null_mut(), |v| v.as_ptr());
    // SAFETY: both pointers are live for the call (borrowed from `Bound`s); a null
    // value deletes, as the C API documents.
    let rc = unsafe { pyo3::ffi::PyObject_GenericSetAttr(obj.as_ptr(), name.as_ptr(), value) };
    if rc < 0 {
        return Err(PyErr::fetch(obj.py()));
    }
    Ok(())
}

#[pymethods]
impl Module {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Module {
        Module::base()
    }

    /// Accepts and ignores arguments, so that subclasses may call `super().__init__(...)`.
    #[pyo3(signature = (*_args, **_kwargs))]
    fn __init__(&self, _args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) {}

    /// Registers a module, a parameter or a buffer assigned to an attribute of an
    /// instance of a Python subclass (`pyfw.modules._register`); native classes
    /// have no attributes of their own and skip it.
    fn __setattr__(
        slf: &Bound<'_, Self>,
        name: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let py = slf.py();
        if has_dict(slf.as_any()) {
            tree(py, intern!(py, "_register"))?.call1((slf, name, value))?;
        }
        generic_setattr(slf.as_any(), name, Some(value))
    }

    /// Forgets a registered name, then deletes the attribute.
    fn __delattr__(slf: &Bound<'_, Self>, name: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        if has_dict(slf.as_any()) {
            tree(py, intern!(py, "_unregister"))?.call1((slf, name))?;
        }
        generic_setattr(slf.as_any(), name, None)
    }

    /// Compute the output; subclasses override it.
    #[pyo3(signature = (*input))]
    fn forward(slf: &Bound<'_, Self>, input: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
        let _ = input;
        Err(PyNotImplementedError::new_err(format!(
            "{}.forward is not implemented",
            type_name(slf.as_any())
        )))
    }

    /// Accumulate parameter gradients and return the input gradient; subclasses override it.
    #[pyo3(signature = (*gradwrtoutput))]
    fn backward(slf: &Bound<'_, Self>, gradwrtoutput: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
        let _ = gradwrtoutput;
        Err(PyNotImplementedError::new_err(format!(
            "{}.backward is not implemented",
            type_name(slf.as_any())
        )))
    }

    /// `[(parameter, gradient), ...]`: the registered parameters of this module and
    /// of its children, in the order of `named_parameters` (empty for none).
    fn param<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        shared(slf, intern!(slf.py(), "param"))?.call1((slf,))
    }

    /// Register `tensor` (or None) as the buffer `name`: saved in `state_dict` and
    /// loaded by `load_state_dict`, but not a parameter.
    fn register_buffer<'py>(
        slf: &Bound<'py, Self>,
        name: &Bound<'py, PyAny>,
        tensor: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        shared(slf, intern!(slf.py(), "register_buffer"))?.call1((slf, name, tensor))
    }

    /// `[(name, module), ...]` of the registered child modules, in assignment order.
    fn named_children<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        shared(slf, intern!(slf.py(), "named_children"))?.call1((slf,))
    }

    /// `[module, ...]`: the modules of `named_children()`, without their names.
    fn children<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        shared(slf, intern!(slf.py(), "children"))?.call1((slf,))
    }

    /// `(dotted name, module)` for this module (named `prefix`) and every module below it, pre-order.
    #[pyo3(signature = (prefix = "", remove_duplicate = true))]
    fn named_modules<'py>(
        slf: &Bound<'py, Self>,
        prefix: &str,
        remove_duplicate: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        shared(slf, intern!(slf.py(), "named_modules"))?.call1((slf, prefix, remove_duplicate))
    }

    /// This module and every module below it, each once, pre-order.
    fn modules<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        shared(slf, intern!(slf.py(), "modules"))?.call1((slf,))
    }

    #[pyo3(signature = (*input))]
    fn __call__(slf: &Bound<'_, Self>, input: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
        Ok(slf
            .call_method1(intern!(slf.py(), "forward"), input)?
            .unbind())
    }

    /// Set every gradient in `param()` to zero, in place.
    fn zero_grad<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        shared(slf, intern!(slf.py(), "zero_grad"))?.call1((slf,))
    }

    /// Training mode (`train()` / `eval()`). A module that a native fit holds says so.
    #[getter]
    fn get_training(slf: &Bound<'_, Self>) -> PyResult<bool> {
        Ok(slf.busy_ref()?.training)
    }

    #[setter]
    fn set_training(slf: &Bound<'_, Self>, mode: bool) -> PyResult<()> {
        slf.busy_mut()?.training = mode;
        Ok(())
    }

    /// Set training mode on this module and its children; returns self.
    #[pyo3(signature = (mode = StrictBool(true)), text_signature = "($self, mode=True)")]
    fn train<'py>(slf: &Bound<'py, Self>, mode: StrictBool) -> PyResult<Bound<'py, PyAny>> {
        shared(slf, intern!(slf.py(), "train"))?.call1((slf, mode.0))
    }

    /// Same as `train(False)`.
    fn eval<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.call_method1(intern!(slf.py(), "train"), (false,))
    }

    /// Call `fn` on every child (recursively, each child's own children first), then on this module; returns self.
    fn apply<'py>(slf: &Bound<'py, Self>, r#fn: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        shared(slf, intern!(slf.py(), "apply"))?.call1((slf, r#fn))
    }

    /// `[(name, parameter, gradient), ...]` with torch-style dotted names.
    #[pyo3(signature = (prefix = ""))]
    fn named_param<'py>(slf: &Bound<'py, Self>, prefix: &str) -> PyResult<Bound<'py, PyAny>> {
        shared(slf, intern!(slf.py(), "named_param"))?.call1((slf, prefix))
    }

    /// The parameter tensors in module order, each once; each carries its gradient as `.grad`.
    fn parameters<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        shared(slf, intern!(slf.py(), "parameters"))?.call1((slf,))
    }

    /// `(name, parameter)` pairs with torch's dotted names (`prefix.0.weight`), each parameter once.
    #[pyo3(signature = (prefix = ""))]
    fn named_parameters<'py>(slf: &Bound<'py, Self>, prefix: &str) -> PyResult<Bound<'py, PyAny>> {
        shared(slf, intern!(slf.py(), "named_parameters"))?.call1((slf, prefix))
    }

    /// The buffers of this module and of every module below it, each once.
    fn buffers<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        shared(slf, intern!(slf.py(), "buffers"))?.call1((slf,))
    }

    /// `(dotted name, buffer)` pairs, each buffer once.
    #[pyo3(signature = (prefix = ""))]
    fn named_buffers<'py>(slf: &Bound<'py, Self>, prefix: &str) -> PyResult<Bound<'py, PyAny>> {
        shared(slf, intern!(slf.py(), "named_buffers"))?.call1((slf, prefix))
    }

    fn _param_names<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        shared(slf, intern!(slf.py(), "_param_names"))?.call1((slf,))
    }

    /// `{name: copy of tensor}` for every parameter and buffer, with torch's dotted keys.
    fn state_dict<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyDict>> {
        let py = slf.py();
        let entries = state_entries(slf)?;
        let out = PyDict::new(py);
        for (name, t) in entries {
            out.set_item(name, t.call_method0(intern!(py, "clone"))?)?;
        }
        Ok(out)
    }

    /// Copy values into the parameters and buffers, in place.
    ///
    /// Values may be tensors of either backend or nested lists. Every key and
    /// shape is checked before anything is written, so a bad dict leaves the
    /// module unchanged. With `strict=False` missing and extra keys are skipped.
    /// Returns `IncompatibleKeys(missing_keys, unexpected_keys)`, as torch does.
    #[pyo3(signature = (state_dict, strict = Truthy(true)), text_signature = "($self, state_dict, strict=True)")]
    fn load_state_dict<'py>(
        slf: &Bound<'py, Self>,
        state_dict: &Bound<'py, PyAny>,
        strict: Truthy,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let strict = strict.0;
        let who = format!("{}.load_state_dict", call_name(slf.as_any())?);
        let Ok(sd) = state_dict.cast::<PyDict>() else {
            return Err(PyTypeError::new_err(format!(
                "{who}: expected a dict, got {}",
                type_name(state_dict)
            )));
        };
        let named = state_entries(slf)?;
        let missing = PyList::empty(py);
        for (n, _) in &named {
            if !sd.contains(n)? {
                missing.append(n)?;
            }
        }
        let names_list = PyList::new(py, named.iter().map(|(n, _)| n))?;
        let extra = PyList::empty(py);
        for k in sd.keys() {
            if !names_list.contains(&k)? {
                extra.append(k)?;
            }
        }
        if strict && (!missing.is_empty() || !extra.is_empty()) {
            // Only the parts that are not empty; for the keys both have, the shapes that differ.
            let mut parts = Vec::new();
            if !missing.is_empty() {
                parts.push(format!("missing keys {}", py_repr(&missing)?));
            }
            if !extra.is_empty() {
                parts.push(format!("unexpected keys {}", py_repr(&extra)?));
            }
            let mut differ = Vec::new();
            for (name, p) in &named {
                let Some(value) = sd.get_item(name)? else {
                    continue;
                };
                let name_repr = py_repr(name)?;
                // Not a tensor at all: reported once the keys match.
                let Ok((_, shape)) = checked_tensor_data(&value, &format!("{who}[{name_repr}]"))
                else {
                    continue;
                };
                let Ok(p) = p.cast::<PyTensor>() else {
                    continue;
                };
                let expected = p.busy_ref()?.t.shape();
                if shape != expected {
                    differ.push(format!(
                        "{name_repr} {shape} given, {expected} in the module"
                    ));
                }
            }
            if !differ.is_empty() {
                parts.push(format!("shapes that differ: {}", differ.join(", ")));
            }
            return Err(PyValueError::new_err(format!(
                "{who}: {}",
                parts.join("; ")
            )));
        }
        let mut staged = Vec::new();
        for (name, p) in named {
            let Some(value) = sd.get_item(&name)? else {
                continue;
            };
            let name_repr = py_repr(&name)?;
            let (data, shape) = checked_tensor_data(&value, &format!("{who}[{name_repr}]"))?;
            let p = p.cast_into::<PyTensor>().map_err(|e| {
                PyTypeError::new_err(format!(
                    "{who}: {name_repr} is a {}, not a pyfw_rs Tensor",
                    type_name(e.into_inner().as_any())
                ))
            })?;
            let expected = p.busy_ref()?.t.shape();
            if shape != expected {
                return Err(PyValueError::new_err(format!(
                    "{who}: {name_repr} has shape {shape}, the module expects {expected}"
                )));
            }
            staged.push((p, data));
        }
        for (p, data) in staged {
            p.busy_mut()?.t.data_mut().copy_from_slice(&data);
        }
        tree(py, intern!(py, "IncompatibleKeys"))?.call1((missing, extra))
    }

    fn _name(slf: &Bound<'_, Self>) -> String {
        type_name(slf.as_any())
    }

    /// What the tree `repr` shows inside this module's parentheses; empty by default.
    fn extra_repr(slf: &Bound<'_, Self>) -> PyResult<&'static str> {
        slf.busy_ref()?;
        Ok("")
    }

    /// For `copy` and `pickle` of Python subclasses (the native classes themselves
    /// are registered with `copyreg`): see `pyfw_rs/_pickle.py`.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        reduce(slf.as_any())
    }

    /// The tree, as torch prints it.
    fn __repr__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        shared(slf, intern!(slf.py(), "__repr__"))?.call1((slf,))
    }
}

/// `pyfw_rs._pickle.reduce(obj)`: what `copy` and `pickle` rebuild a Python
/// subclass of a native class from, its native state and its `__dict__`.
pub(crate) fn reduce<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    py.import(intern!(py, "pyfw_rs._pickle"))?
        .call_method1(intern!(py, "reduce"), (obj,))
}

/// A fresh `Module` base, for the classes that extend it.
pub(crate) fn module_base() -> PyClassInitializer<Module> {
    PyClassInitializer::from(Module::base())
}

/// Whether `obj` takes the native path of the class `T` it is an instance of:
/// neither its type nor the instance itself overrides `forward` or `backward`,
/// so running `T`'s kernels directly is what calling them through Python would
/// do. A `Sequential` decides this for its children when it is built.
pub(crate) fn runs_natively<T: PyTypeInfo>(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = obj.py();
    keeps::<T>(obj, &[intern!(py, "forward"), intern!(py, "backward")])
}

/// Whether `obj` is an instance of `T` whose type and instance override none of
/// the methods `names` of `T`.
pub(crate) fn keeps<T: PyTypeInfo>(
    obj: &Bound<'_, PyAny>,
    names: &[&Bound<'_, PyString>],
) -> PyResult<bool> {
    if obj.is_exact_instance_of::<T>() {
        return Ok(true);
    }
    if !obj.is_instance_of::<T>() {
        return Ok(false);
    }
    let py = obj.py();
    let (native, own) = (py.get_type::<T>(), obj.get_type());
    let inst = obj.getattr(intern!(py, "__dict__")).ok();
    for &name in names {
        if !own.getattr(name)?.is(&native.getattr(name)?) {
            return Ok(false);
        }
        if let Some(d) = &inst {
            if d.contains(name)? {
                return Ok(false);
            }
        }
    }
    Ok(true)
}
