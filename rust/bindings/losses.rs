//! Binding of the loss family (see `pyfw/losses.py`).
//!
//! One native base class, `Loss`, holds the state of every member (a
//! [`LossState`]), parses the input and the target, and runs the kernels. The
//! member classes (`MSELoss`, `CrossEntropyLoss`, ...) are thin subclasses
//! generated from `loss_table!` in `rust/losses.rs`: `__init__`, which checks
//! the arguments, a getter per argument and `__repr__`.
//!
//! What depends on Python objects is decided here, in the order of
//! `pyfw.losses.Loss._target`: a tensor or array target of a class member is
//! read through `tolist()` (its integral floats count as indices), a list or
//! tuple nested one level less deep than the input's rank holds class indices,
//! anything else is a tensor. Every check on numbers and shapes is the
//! kernel crate's.

use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyInt, PyTuple};

use super::base::{module_base, runs_natively, Module};
use super::tensor::{reserve, seq_first, seq_items, seq_len, tensor_data, PyTensor};
use super::{is_integral, is_seq, py_str, to_pyerr, type_name, Arg, Borrow, Given, IntoPyResult};
use crate::losses::{self as kernels, LossState, Reduction, Target, Targets};
use crate::tensor::Shape;

/// Base of the loss family: the reduction, the target, and the gradient for `backward`.
#[pyclass(extends = Module, subclass, module = "pyfw_rs")]
pub struct Loss {
    pub(crate) state: LossState,
}

/// Values parsed outside any borrow of the loss: a native tensor (read in
/// place later), or parsed data and its shape.
enum Values<'py> {
    Native(Bound<'py, PyTensor>),
    Owned(Vec<f64>, Shape),
}

/// A parsed target: values, or checked class indices.
enum Parsed<'py> {
    Values(Values<'py>),
    Classes(Vec<i64>),
}

/// The nesting depth of a list or tuple along its first items (0 for anything else).
fn seq_rank(obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    let mut r = 0;
    let mut v = Some(obj.clone());
    while let Some(x) = v {
        if !is_seq(&x) {
            break;
        }
        r += 1;
        v = seq_first(&x)?;
    }
    Ok(r)
}

/// The items of nested lists `depth` levels deep, in row-major order, and their sizes;
/// the `ValueError` of a ragged list (as `pyfw.losses._nested_items`).
fn nested_items<'py>(
    target: &Bound<'py, PyAny>,
    depth: usize,
    who: &str,
) -> PyResult<(Vec<Bound<'py, PyAny>>, Vec<usize>)> {
    let mut level = vec![target.clone()];
    let mut dims = Vec::new();
    for d in 0..depth {
        let size = seq_len(&level[0])?;
        let mut next = Vec::new();
        for v in &level {
            let got = if is_seq(v) {
                let items = seq_items(v, who)?;
                if items.len() == size {
                    next.extend(items);
                    continue;
                }
                format!("{} items", items.len())
            } else {
                format!("a {}", type_name(v))
            };
            return Err(PyValueError::new_err(format!(
                "{who}: ragged class indices: {got} at depth {d}, the first entry has {size} items"
            )));
        }
        dims.push(size);
        level = next;
    }
    Ok((level, dims))
}

/// The class indices of (nested) lists for an input of `shape` (N, C, d1, ...), in
/// row-major order, checked as `pyfw.losses._class_indices`: the shape (the count for an
/// (N, C) input), then each index's type and range. `floats` admits integral floats
/// (the values of a tensor).
fn class_indices(
    target: &Bound<'_, PyAny>,
    who: &str,
    shape: Shape,
    floats: bool,
) -> PyResult<Vec<i64>> {
    let items = if shape.ndim() == 2 {
        kernels::check_class_count(who, shape, seq_len(target)?).py()?;
        seq_items(target, who)?
    } else {
        let (items, dims) = nested_items(target, shape.ndim() - 1, who)?;
        kernels::check_class_dims(who, shape, &dims).py()?;
        items
    };
    let mut out = Vec::new();
    reserve(&mut out, items.len(), who)?;
    for (i, v) in items.iter().enumerate() {
        let mut v = v.clone();
        if floats && v.is_instance_of::<PyFloat>() && v.call_method0("is_integer")?.is_truthy()? {
            v = v.py().get_type::<PyInt>().call1((v,))?;
        }
        if !is_integral(&v)? {
            return Err(to_pyerr(kernels::class_not_int(
                who,
                shape,
                &type_name(&v),
                i,
                floats,
            )));
        }
        match v.extract::<i64>() {
            Ok(k) => {
                kernels::check_class(who, shape, i, k).py()?;
                out.push(k);
            }
            // Too large for i64, so out of range; Python prints every digit.
            Err(_) => {
                let value = py_str(&v)?;
                return Err(to_pyerr(kernels::class_out_of_range(who, shape, i, &value)));
            }
        }
    }
    Ok(out)
}

/// The target of member `kind` for an input of `shape`: class indices when its rank is
/// the input's less one, else values.
fn parse_target<'py>(
    kind: kernels::Loss,
    shape: Shape,
    target: &Bound<'py, PyAny>,
) -> PyResult<Parsed<'py>> {
    let who = kind.name();
    let targets = kind.targets();
    if targets == Targets::Values {
        if let Ok(t) = target.cast::<PyTensor>() {
            return Ok(Parsed::Values(Values::Native(t.clone())));
        }
        let (v, s) = tensor_data(target, &format!("{who} target"))?;
        return Ok(Parsed::Values(Values::Owned(v, s)));
    }
    kernels::class_input(who, shape).py()?;
    let rank = shape.ndim();
    if let Ok(t) = target.cast::<PyTensor>() {
        if t.busy_ref()?.t.shape().ndim() != rank - 1 {
            if targets == Targets::Classes {
                return Err(to_pyerr(kernels::not_class_indices(who, shape)));
            }
            return Ok(Parsed::Values(Values::Native(t.clone())));
        }
    }
    let converted;
    let mut target = target;
    let floats = !is_seq(target) && target.hasattr("tolist")? && target.hasattr("shape")?;
    if floats {
        converted = target.call_method0("tolist")?; // a tensor of either backend, or an array
        target = &converted;
    }
    // Read from the storage, as `class_indices` does: a subclass's `__len__` may lie.
    if is_seq(target) && seq_rank(target)? == rank - 1 {
        return Ok(Parsed::Classes(class_indices(target, who, shape, floats)?));
    }
    if targets == Targets::Classes {
        return Err(to_pyerr(kernels::not_class_indices(who, shape)));
    }
    let (v, s) = tensor_data(target, &format!("{who} target"))?;
    Ok(Parsed::Values(Values::Owned(v, s)))
}

impl Loss {
    /// The base of a member class, for `kind` with `reduction`.
    fn init(kind: kernels::Loss, reduction: Reduction) -> PyClassInitializer<Loss> {
        module_base().add_subclass(Loss {
            state: LossState::new(kind, reduction),
        })
    }

    /// Parse the input and the target (no borrow is held while Python code runs),
    /// then run the kernel; native tensors are read in place.
    fn run(
        slf: &Bound<'_, Self>,
        input: &Bound<'_, PyAny>,
        target: &Bound<'_, PyAny>,
    ) -> PyResult<f64> {
        let kind = slf.busy_ref()?.state.kind();
        let who = kind.name();
        let x_in = match input.cast::<PyTensor>() {
            Ok(x) => Values::Native(x.clone()),
            Err(_) => {
                let (v, s) = tensor_data(input, &format!("{who} input"))?;
                Values::Owned(v, s)
            }
        };
        let shape = match &x_in {
            Values::Native(x) => x.busy_ref()?.t.shape(),
            Values::Owned(_, s) => *s,
        };
        let parsed = parse_target(kind, shape, target)?;
        let xb;
        let (x, shape): (&[f64], Shape) = match &x_in {
            Values::Native(x) => {
                xb = x.busy_ref()?;
                (xb.t.data(), xb.t.shape())
            }
            Values::Owned(v, s) => (v, *s),
        };
        let tb;
        let t = match &parsed {
            Parsed::Values(Values::Native(t)) => {
                tb = t.busy_ref()?;
                Target::Values(tb.t.data(), tb.t.shape())
            }
            Parsed::Values(Values::Owned(v, s)) => Target::Values(v, *s),
            Parsed::Classes(k) => Target::Classes(k),
        };
        slf.busy_mut()?.state.forward(x, shape, t).py()
    }
}

#[pymethods]
impl Loss {
    /// The loss of `input` against `target`, as a Python float.
    fn forward(
        slf: &Bound<'_, Self>,
        input: &Bound<'_, PyAny>,
        target: &Bound<'_, PyAny>,
    ) -> PyResult<f64> {
        Loss::run(slf, input, target)
    }

    /// dL/d(input) of the last `forward`, in the input's shape.
    fn backward(slf: &Bound<'_, Self>) -> PyResult<PyTensor> {
        let (g, shape) = slf.busy_ref()?.state.backward().py()?;
        PyTensor::wrap(shape, g)
    }

    /// `"mean"` or `"sum"`.
    #[getter]
    fn reduction(slf: &Bound<'_, Self>) -> PyResult<&'static str> {
        Ok(slf.busy_ref()?.state.reduction().name())
    }

    #[pyo3(signature = (*input))]
    fn __call__(slf: &Bound<'_, Self>, input: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
        if input.len() == 2 && (is_member(slf.as_any()) || runs_natively::<Loss>(slf.as_any())?) {
            let v = Loss::run(slf, &input.get_item(0)?, &input.get_item(1)?)?;
            return Ok(v.into_pyobject(slf.py())?.into_any().unbind());
        }
        Ok(slf
            .call_method1(intern!(slf.py(), "forward"), input)?
            .unbind())
    }
}

/// One Python class per line of `loss_table!`, and `register`.
///
/// `__new__` accepts any arguments and builds the member with its defaults;
/// `__init__` checks the arguments and sets them, so a Python subclass may have
/// its own constructor and pass the member's arguments to `super().__init__`.
macro_rules! py_members {
    ($($(#[$doc:meta])* $name:ident { $($arg:ident : $ty:ty = $default:expr),* } $sig:tt;)*) => {
        $(
            $(#[$doc])*
            #[allow(clippy::upper_case_acronyms)] // the Python names
            #[pyclass(extends = Loss, subclass, module = "pyfw_rs")]
            pub struct $name {
                k: kernels::$name,
            }

            #[pymethods]
            impl $name {
                #[new]
                #[pyo3(signature = (*_args, **_kwargs), text_signature = $sig)]
                fn new(
                    _args: &Bound<'_, PyTuple>,
                    _kwargs: Option<&Bound<'_, PyDict>>,
                ) -> PyClassInitializer<$name> {
                    let k = kernels::$name::default();
                    Loss::init(k.into(), Reduction::Mean).add_subclass($name { k })
                }

                #[pyo3(signature = ($($arg = Given::Missing,)* reduction = Given::Missing))]
                fn __init__<'py>(
                    slf: &Bound<'py, Self>,
                    $($arg: Given<'py>,)*
                    reduction: Given<'py>,
                ) -> PyResult<()> {
                    #[allow(unused_variables)]
                    let d = kernels::$name::default();
                    let k = kernels::$name {
                        $($arg: $arg.or(d.$arg, stringify!($name), stringify!($arg))?),*
                    };
                    kernels::LossKernel::check(&k).py()?;
                    let reduction = reduction.or(Reduction::Mean, stringify!($name), "reduction")?;
                    let mut me = slf.busy_mut()?;
                    me.k = k;
                    me.as_super().state = LossState::new(k.into(), reduction);
                    Ok(())
                }

                $(
                    #[getter]
                    fn $arg(slf: &Bound<'_, Self>) -> PyResult<$ty> {
                        Ok(slf.busy_ref()?.k.$arg)
                    }
                )*

                fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
                    let py = slf.py();
                    let me = slf.busy_ref()?;
                    #[allow(unused_variables)]
                    let k = me.k;
                    let reduction = me.as_super().state.reduction();
                    #[allow(unused_mut)]
                    let mut args: Vec<String> = vec![$(
                        format!("{}={}", stringify!($arg), Arg::repr(&k.$arg, py)?)
                    ),*];
                    args.push(format!("reduction={}", Arg::repr(&reduction, py)?));
                    Ok(format!("{}({})", type_name(slf.as_any()), args.join(", ")))
                }
            }
        )*

        /// Whether `obj`'s type is exactly a member class (the common case of
        /// `__call__`, which then needs no look-up of overrides).
        pub(crate) fn is_member(obj: &Bound<'_, PyAny>) -> bool {
            false $(|| obj.is_exact_instance_of::<$name>())*
        }

        /// Register the base class, every member, and `LOSSES`, their names in table order.
        pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
            m.add_class::<Loss>()?;
            $(m.add_class::<$name>()?;)*
            m.add("LOSSES", kernels::Loss::NAMES.to_vec())?;
            Ok(())
        }
    };
}

crate::loss_table!(py_members);
