//! Binding of `Module`, the base class that every layer, activation and loss
//! extends (see `pyfw/modules.py`).
//!
//! Its generic methods (`train`, `named_param`, `state_dict`,
//! `load_state_dict`, `zero_grad`, `__call__`) go through Python method
//! lookup, so overrides in subclasses are honoured. No borrow of a module is
//! held while Python code runs, so another thread using the same model gets
//! either a consistent result or a clean `RuntimeError`.

use pyo3::exceptions::{PyNotImplementedError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use pyo3::PyTypeInfo;

use super::tensor::{checked_tensor_data, PyTensor};
use super::{described, mixed, py_repr, py_str, type_name, Borrow, StrictBool, Truthy};

// ---------------------------------------------------------------- Module

/// Base class of every layer and loss.
///
/// Subclasses override `forward`, `backward` and, when they hold parameters,
/// `param`. A subclass that holds other modules overrides `named_children` so that
/// `train`/`eval` and `state_dict` reach them.
#[pyclass(subclass, module = "pyfw_rs", name = "Module")]
pub struct Module {
    /// Training mode (`train()` / `eval()`).
    #[pyo3(get, set)]
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

/// The gradient tensor of a `(param, grad)` pair, which must be native.
fn native_pair<'py>(
    pair: &Bound<'py, PyAny>,
    i: usize,
    who: &str,
) -> PyResult<(Bound<'py, PyTensor>, Bound<'py, PyTensor>)> {
    let is_pair =
        (pair.is_instance_of::<PyTuple>() || pair.is_instance_of::<PyList>()) && pair.len()? == 2;
    if !is_pair {
        return Err(PyTypeError::new_err(format!(
            "{who}: param()[{i}] is not a (parameter, gradient) pair"
        )));
    }
    let (p, g) = (pair.get_item(0)?, pair.get_item(1)?);
    match (p.cast::<PyTensor>(), g.cast::<PyTensor>()) {
        (Ok(pt), Ok(gt)) => Ok((pt.clone(), gt.clone())),
        _ => Err(PyTypeError::new_err(format!(
            "{who}: param()[{i}] must hold two pyfw_rs Tensors, got {} and {}{}",
            described(&p),
            described(&g),
            mixed(&[&p, &g])
        ))),
    }
}

/// `param()` of `slf`, checked as `pyfw.modules.Module._pairs` checks it.
fn checked_pairs<'py>(
    slf: &Bound<'py, PyAny>,
) -> PyResult<Vec<(Bound<'py, PyTensor>, Bound<'py, PyTensor>)>> {
    let who = call_name(slf)?;
    let pairs = slf.call_method0(intern!(slf.py(), "param"))?;
    if !(pairs.is_instance_of::<PyList>() || pairs.is_instance_of::<PyTuple>()) {
        return Err(PyTypeError::new_err(format!(
            "{who}: param() must return a list of (parameter, gradient) pairs, got {}",
            type_name(&pairs)
        )));
    }
    let mut out = Vec::new();
    for (i, pair) in pairs.try_iter()?.enumerate() {
        out.push(native_pair(&pair?, i, &who)?);
    }
    Ok(out)
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

    /// `[(parameter, gradient), ...]`; empty for modules without parameters.
    fn param<'py>(_slf: &Bound<'py, Self>, py: Python<'py>) -> Bound<'py, PyList> {
        PyList::empty(py)
    }

    /// `[(name, module), ...]` of directly held modules; empty by default.
    fn named_children<'py>(_slf: &Bound<'py, Self>, py: Python<'py>) -> Bound<'py, PyList> {
        PyList::empty(py)
    }

    /// `[module, ...]`: the modules of `named_children()`, without their names.
    fn children<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(slf.py());
        for kid in slf
            .call_method0(intern!(slf.py(), "named_children"))?
            .try_iter()?
        {
            out.append(kid?.get_item(1)?)?;
        }
        Ok(out)
    }

    #[pyo3(signature = (*input))]
    fn __call__(slf: &Bound<'_, Self>, input: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
        Ok(slf
            .call_method1(intern!(slf.py(), "forward"), input)?
            .unbind())
    }

    /// Set every gradient in `param()` to zero, in place.
    fn zero_grad(slf: &Bound<'_, Self>) -> PyResult<()> {
        for (_, g) in checked_pairs(slf.as_any())? {
            g.busy_mut()?.t.data_mut().fill(0.0);
        }
        Ok(())
    }

    /// Set training mode on this module and its children; returns self.
    #[pyo3(signature = (mode = StrictBool(true)), text_signature = "($self, mode=True)")]
    fn train<'py>(slf: &Bound<'py, Self>, mode: StrictBool) -> PyResult<Bound<'py, Self>> {
        let py = slf.py();
        let mode = mode.0;
        slf.setattr(intern!(py, "training"), mode)?;
        for kid in slf
            .call_method0(intern!(py, "named_children"))?
            .try_iter()?
        {
            kid?.get_item(1)?
                .call_method1(intern!(py, "train"), (mode,))?;
        }
        Ok(slf.clone())
    }

    /// Same as `train(False)`.
    fn eval<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.call_method1(intern!(slf.py(), "train"), (false,))
    }

    /// `[(name, parameter, gradient), ...]` with torch-style dotted names.
    #[pyo3(signature = (prefix = ""))]
    fn named_param<'py>(slf: &Bound<'py, Self>, prefix: &str) -> PyResult<Bound<'py, PyList>> {
        let py = slf.py();
        let out = PyList::empty(py);
        let kids: Vec<Bound<'py, PyAny>> = slf
            .call_method0(intern!(py, "named_children"))?
            .try_iter()?
            .collect::<PyResult<_>>()?;
        if !kids.is_empty() {
            for kid in kids {
                let name = py_str(&kid.get_item(0)?)?;
                let child = kid.get_item(1)?;
                let sub = child
                    .call_method1(intern!(py, "named_param"), (format!("{prefix}{name}."),))?;
                for item in sub.try_iter()? {
                    out.append(item?)?;
                }
            }
            return Ok(out);
        }
        let names = slf.call_method0(intern!(py, "_param_names"))?;
        for (n, (p, g)) in names.try_iter()?.zip(checked_pairs(slf.as_any())?) {
            let full = format!("{prefix}{}", py_str(&n?)?);
            out.append((full, p, g))?;
        }
        Ok(out)
    }

    /// The parameter tensors in module order, each once; each carries its gradient as `.grad`.
    fn parameters<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let out = PyList::empty(slf.py());
        for (_, p) in unique_params(slf, "")? {
            out.append(p)?;
        }
        Ok(out.try_iter()?.into_any())
    }

    /// `(name, parameter)` pairs with torch's dotted names (`prefix.0.weight`), each parameter once.
    #[pyo3(signature = (prefix = ""))]
    fn named_parameters<'py>(slf: &Bound<'py, Self>, prefix: &str) -> PyResult<Bound<'py, PyAny>> {
        let out = PyList::empty(slf.py());
        for pair in unique_params(slf, prefix)? {
            out.append(pair)?;
        }
        Ok(out.try_iter()?.into_any())
    }

    fn _param_names<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyList>> {
        let n = slf.call_method0(intern!(slf.py(), "param"))?.len()?;
        PyList::new(slf.py(), (0..n).map(|i| i.to_string()))
    }

    /// `{name: copy of parameter}`, keys as in `torch.nn.Sequential`.
    fn state_dict<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyDict>> {
        let py = slf.py();
        let out = PyDict::new(py);
        for item in Module::named_param(slf, "")?.iter() {
            let p = item.get_item(1)?;
            out.set_item(item.get_item(0)?, p.call_method0(intern!(py, "clone"))?)?;
        }
        Ok(out)
    }

    /// Copy values into the parameters, in place.
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
        let named = slf.call_method0(intern!(py, "named_param"))?;
        let named: Vec<Bound<'_, PyAny>> = named.try_iter()?.collect::<PyResult<_>>()?;
        let mut names = Vec::with_capacity(named.len());
        for item in &named {
            names.push(item.get_item(0)?);
        }
        let missing = PyList::empty(py);
        for n in &names {
            if !sd.contains(n)? {
                missing.append(n)?;
            }
        }
        let names_list = PyList::new(py, &names)?;
        let extra = PyList::empty(py);
        for k in sd.keys() {
            if !names_list.contains(&k)? {
                extra.append(k)?;
            }
        }
        if strict && (!missing.is_empty() || !extra.is_empty()) {
            return Err(PyValueError::new_err(format!(
                "{who}: missing keys {}, unexpected keys {}",
                py_repr(&missing)?,
                py_repr(&extra)?
            )));
        }
        let mut staged = Vec::new();
        for (item, name) in named.iter().zip(&names) {
            let Some(value) = sd.get_item(name)? else {
                continue;
            };
            let name_repr = py_repr(name)?;
            let (data, shape) = checked_tensor_data(&value, &format!("{who}[{name_repr}]"))?;
            let p = item.get_item(1)?;
            let p = p.cast_into::<PyTensor>().map_err(|e| {
                PyTypeError::new_err(format!(
                    "{who}: parameter {name_repr} is a {}, not a pyfw_rs Tensor",
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
        py.import("pyfw.modules")?
            .getattr("IncompatibleKeys")?
            .call1((missing, extra))
    }

    fn _name(slf: &Bound<'_, Self>) -> String {
        type_name(slf.as_any())
    }

    /// For `copy` and `pickle` of Python subclasses (the native classes themselves
    /// are registered with `copyreg`): see `pyfw_rs/_pickle.py`.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        reduce(slf.as_any())
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        Ok(format!("{}()", call_name(slf.as_any())?))
    }
}

/// `(name, parameter)` for every parameter of `slf`, the first time it appears
/// (a module held twice contributes once), named as torch names them.
fn unique_params<'py>(
    slf: &Bound<'py, Module>,
    prefix: &str,
) -> PyResult<Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>> {
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}.")
    };
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for item in Module::named_param(slf, &prefix)?.iter() {
        let p = item.get_item(1)?;
        if seen.insert(p.as_ptr() as usize) {
            out.push((item.get_item(0)?, p));
        }
    }
    Ok(out)
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
