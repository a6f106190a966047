//! Binding of the activation family (see `pyfw/activations.py`).
//!
//! One native base class, `Activation`, holds the state of every member (an
//! [`ActState`]) and runs the kernels. The member classes (`ReLU`, `Tanh`, ...)
//! are thin subclasses generated from `activation_table!` in
//! `rust/activations.rs`: a constructor that checks the arguments, a getter per
//! argument and `__repr__`. A native `Sequential` runs any `Activation` whose
//! class does not override `forward`/`backward` without calling into Python.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple, PyType};

use super::base::{module_base, runs_natively, Module};
use super::tensor::{tensor_data_with, PyTensor};
use super::{renamed, type_name, Arg, Borrow, Given, IntoPyResult};
use crate::activations::{self as kernels, ActState};
use crate::tensor::Shape;

/// Base of the activation family: checks the input, keeps what `backward` needs, checks the gradient.
#[pyclass(extends = Module, subclass, module = "pyfw_rs")]
pub struct Activation {
    pub(crate) state: ActState,
}

impl Activation {
    /// The base of a member class, for `kind`.
    fn init(kind: kernels::Activation) -> PyClassInitializer<Activation> {
        module_base().add_subclass(Activation {
            state: ActState::new(kind),
        })
    }

    /// Forward on a buffer; the native `Sequential` calls it directly. Errors name `obj`'s class.
    pub(crate) fn forward_buf(
        &mut self,
        obj: &Bound<'_, PyAny>,
        x: Vec<f64>,
        shape: Shape,
    ) -> PyResult<Vec<f64>> {
        let kind = self.state.kind().name();
        self.state
            .forward(x, shape)
            .map_err(|e| renamed(e, kind, obj))
    }

    /// Backward on a buffer; the native `Sequential` calls it directly. Errors name `obj`'s class.
    pub(crate) fn backward_buf(
        &self,
        obj: &Bound<'_, PyAny>,
        g: &[f64],
        shape: Shape,
    ) -> PyResult<Vec<f64>> {
        let kind = self.state.kind().name();
        self.state
            .backward(g, shape)
            .map_err(|e| renamed(e, kind, obj))
    }
}

#[pymethods]
impl Activation {
    /// Apply the activation to an input of any shape.
    fn forward(slf: &Bound<'_, Self>, x: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        // Parse before borrowing, so that no borrow is held while Python code runs.
        let (data, shape) = tensor_data_with(x, || type_name(slf.as_any()))?;
        let y = slf.busy_mut()?.forward_buf(slf.as_any(), data, shape)?;
        PyTensor::wrap(shape, y)
    }

    /// The gradient with respect to the input.
    fn backward(slf: &Bound<'_, Self>, grad: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        let (g, shape) = tensor_data_with(grad, || type_name(slf.as_any()))?;
        let dx = slf.busy_ref()?.backward_buf(slf.as_any(), &g, shape)?;
        PyTensor::wrap(shape, dx)
    }

    #[pyo3(signature = (*input))]
    fn __call__(slf: &Bound<'_, Self>, input: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
        let native = is_member(&slf.get_type()) || runs_natively::<Activation>(slf.as_any())?;
        if input.len() == 1 && native {
            let y = Activation::forward(slf, &input.get_item(0)?)?;
            return Ok(Bound::new(slf.py(), y)?.into_any().unbind());
        }
        Ok(slf
            .call_method1(intern!(slf.py(), "forward"), input)?
            .unbind())
    }
}

/// One Python class per line of `activation_table!`, and `register`.
///
/// `__new__` accepts any arguments and builds the member with its defaults;
/// `__init__` checks the arguments and sets them, so a Python subclass may have
/// its own constructor and pass the member's arguments to `super().__init__`.
/// The arguments are read-only afterwards, as in `pyfw`.
macro_rules! py_members {
    ($($(#[$doc:meta])* $name:ident { $($arg:ident : $ty:ty = $default:expr),* } $sig:tt;)*) => {
        $(
            $(#[$doc])*
            #[allow(clippy::upper_case_acronyms)] // the Python names
            #[pyclass(extends = Activation, subclass, module = "pyfw_rs")]
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
                    Activation::init(k.into()).add_subclass($name { k })
                }

                #[pyo3(signature = ($($arg = Given::Missing),*))]
                fn __init__<'py>(slf: &Bound<'py, Self>, $($arg: Given<'py>),*) -> PyResult<()> {
                    #[allow(unused_variables)]
                    let d = kernels::$name::default();
                    let k = kernels::$name {
                        $($arg: $arg.or(d.$arg, stringify!($name), stringify!($arg))?),*
                    };
                    kernels::ActivationKernel::check(&k).py()?;
                    let mut me = slf.busy_mut()?;
                    me.k = k;
                    me.as_super().state = ActState::new(k.into());
                    Ok(())
                }

                $(
                    #[getter]
                    fn $arg(slf: &Bound<'_, Self>) -> PyResult<$ty> {
                        Ok(slf.busy_ref()?.k.$arg)
                    }
                )*

                fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
                    #[allow(unused_variables)]
                    let (py, k) = (slf.py(), slf.busy_ref()?.k);
                    let args: Vec<String> = vec![$(
                        format!("{}={}", stringify!($arg), Arg::repr(&k.$arg, py)?)
                    ),*];
                    Ok(format!("{}({})", type_name(slf.as_any()), args.join(", ")))
                }
            }
        )*

        /// Whether `ty` is one of the member classes themselves (not a Python subclass).
        fn is_member(ty: &Bound<'_, PyType>) -> bool {
            let py = ty.py();
            false $(|| ty.is(&py.get_type::<$name>()))*
        }

        /// Register the base class and every member.
        pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
            m.add_class::<Activation>()?;
            $(m.add_class::<$name>()?;)*
            m.add("ACTIVATIONS", kernels::Activation::NAMES.to_vec())?;
            Ok(())
        }
    };
}

crate::activation_table!(py_members);
