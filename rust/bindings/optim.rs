//! Binding of the optimizer family (see `pyfw/optim/__init__.py`).
//!
//! One native base class, `Optimizer`, holds everything: the parameters (with
//! their gradients, or read from `.grad`), `param_groups` and `defaults` (plain
//! Python dicts, so schedulers written in Python set `"lr"`, `"momentum"` or
//! `"betas"` there), the state of every parameter, and the member's rule. Each
//! `step()` reads the hyperparameters from `param_groups[0]`, checks them as
//! the constructor does, and runs the rule of `rust/optim.rs` on the live
//! storage of the parameter tensors. The member classes (`SGD`, `Adam`, ...)
//! are thin subclasses generated from `optimizer_table!`: a constructor that
//! checks the arguments and nothing else.

use pyo3::exceptions::{PyKeyError, PyMemoryError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyList, PyString, PyTuple};
use pyo3::{IntoPyObjectExt, PyTraverseError, PyVisit};

use super::tensor::{list_of, reserve, tensor_data, PyTensor};
use super::{
    described, is_integral, is_seq, mixed, py_repr, type_name, Arg, Borrow, Given, IntoPyResult,
};
use crate::optim::{self as kernels, ParamState, UpdateRule};

/// One parameter: the tensor, and its gradient (a pair's second element), or
/// `None` to read the parameter's `.grad` at every step.
pub(crate) struct Entry {
    pub(crate) p: Py<PyTensor>,
    pub(crate) g: Option<Py<PyTensor>>,
}

/// The parameters of `params`: `(parameter, gradient)` pairs or tensors carrying `.grad`.
fn param_list(params: &Bound<'_, PyAny>, who: &str) -> PyResult<Vec<Entry>> {
    let not_iterable = || {
        PyTypeError::new_err(format!(
            "{who}: params must be an iterable of Tensors or (parameter, gradient) pairs, got {}",
            type_name(params)
        ))
    };
    if params.cast::<PyTensor>().is_ok() || params.cast::<PyDict>().is_ok() {
        return Err(not_iterable());
    }
    let iter = params.try_iter().map_err(|_| not_iterable())?;
    let mut out = Vec::new();
    for (i, item) in iter.enumerate() {
        let item = item?;
        // Amortized growth that fails as MemoryError (a long list of one pair) instead of aborting.
        out.try_reserve(1)
            .map_err(|_| PyMemoryError::new_err(format!("{who}: too many parameters")))?;
        if let Ok(p) = item.cast::<PyTensor>() {
            out.push(Entry {
                p: p.clone().unbind(),
                g: None,
            });
            continue;
        }
        if item.cast::<PyDict>().is_ok() {
            return Err(PyTypeError::new_err(format!(
                "{who}: params[{i}] is a dict; parameter groups are not supported \
                 (one group: set its values in param_groups[0])"
            )));
        }
        if !is_seq(&item) || item.len()? != 2 {
            return Err(PyTypeError::new_err(format!(
                "{who}: params[{i}] is neither a pyfw_rs Tensor nor a (parameter, gradient) pair, \
                 got {}{}",
                described(&item),
                mixed(&[&item])
            )));
        }
        let (p, g) = (item.get_item(0)?, item.get_item(1)?);
        let (Ok(pt), Ok(gt)) = (p.cast::<PyTensor>(), g.cast::<PyTensor>()) else {
            return Err(PyTypeError::new_err(format!(
                "{who}: params[{i}] must hold two pyfw_rs Tensors, got {} and {}{}",
                described(&p),
                described(&g),
                mixed(&[&p, &g])
            )));
        };
        let (ps, gs) = (pt.busy_ref()?.t.shape(), gt.busy_ref()?.t.shape());
        if ps != gs {
            return Err(PyValueError::new_err(format!(
                "{who}: params[{i}] has parameter shape {ps} and gradient shape {gs}"
            )));
        }
        out.push(Entry {
            p: pt.clone().unbind(),
            g: Some(gt.clone().unbind()),
        });
    }
    if out.is_empty() {
        return Err(PyValueError::new_err(format!(
            "{who}: got an empty parameter list"
        )));
    }
    Ok(out)
}

/// The `KeyError` of a hyperparameter missing from `param_groups[0]` at a step.
fn missing_at_step(who: &str, name: &str) -> PyErr {
    PyKeyError::new_err(format!("{who}: param_groups[0] has no '{name}'"))
}

/// The `ValueError` of a hyperparameter missing from a loaded state dict.
fn missing_in_load(who: &str, name: &str) -> PyErr {
    PyValueError::new_err(format!(
        "{who}.load_state_dict: param_groups[0] has no '{name}'"
    ))
}

/// A `step` count of a loaded state: a whole number in `[0, 2**53]`.
fn step_count(v: &Bound<'_, PyAny>, at: &str) -> PyResult<u64> {
    const MAX: u64 = 1 << 53;
    let bad = || -> PyResult<PyErr> {
        Ok(PyValueError::new_err(format!(
            "{at}['step'] must be a whole number in [0, 2**53], got {}",
            py_repr(v)?
        )))
    };
    if is_integral(v)? {
        return match v.extract::<u64>() {
            Ok(t) if t <= MAX => Ok(t),
            _ => Err(bad()?),
        };
    }
    if let Ok(f) = v.cast::<PyFloat>() {
        let f = f.value();
        return if f.fract() == 0.0 && (0.0..=MAX as f64).contains(&f) {
            Ok(f as u64)
        } else {
            Err(bad()?)
        };
    }
    Err(PyTypeError::new_err(format!(
        "{at}['step'] must be an int, got {}",
        type_name(v)
    )))
}

/// Base of the optimizer family: the parameters, `param_groups`, `defaults`,
/// the state of every parameter, `step`, `zero_grad` and the state dict.
///
/// It holds one parameter group. Every hyperparameter is read from
/// `param_groups[0]` and checked at every `step()`.
#[pyclass(subclass, module = "pyfw_rs")]
pub struct Optimizer {
    /// The member and its hyperparameters as last read.
    pub(crate) kind: kernels::Optimizer,
    pub(crate) params: Vec<Entry>,
    pub(crate) states: Vec<ParamState>,
    param_groups: Py<PyList>,
    defaults: Py<PyDict>,
}

impl Optimizer {
    /// The base of a member class: checks `params`, builds the group and the initial state.
    fn init(kind: kernels::Optimizer, params: &Bound<'_, PyAny>) -> PyResult<Optimizer> {
        let py = params.py();
        let entries = param_list(params, kind.name())?;
        let mut states = Vec::new();
        reserve(&mut states, entries.len(), kind.name())?;
        for e in &entries {
            let n = e.p.bind(py).busy_ref()?.t.data().len();
            states.push(kind.initial_state(n).py()?);
        }
        let defaults = PyDict::new(py);
        let group = PyDict::new(py);
        group.set_item("params", param_tensors(py, &entries)?)?;
        for (name, v) in rule_items(&kind, py)? {
            defaults.set_item(name, &v)?;
            group.set_item(name, v)?;
        }
        Ok(Optimizer {
            kind,
            params: entries,
            states,
            param_groups: PyList::new(py, [group])?.unbind(),
            defaults: defaults.unbind(),
        })
    }

    /// An optimizer whose `__init__` has not run: no parameters and no group.
    fn uninitialized(py: Python<'_>, kind: kernels::Optimizer) -> PyResult<Optimizer> {
        Ok(Optimizer {
            kind,
            params: Vec::new(),
            states: Vec::new(),
            param_groups: PyList::empty(py).unbind(),
            defaults: PyDict::new(py).unbind(),
        })
    }

    /// `RuntimeError` if `__init__` has not run (a subclass that skipped it).
    fn initialized(&self) -> PyResult<()> {
        if self.params.is_empty() {
            return Err(PyRuntimeError::new_err(format!(
                "{}: not initialized; a subclass's __init__ must call super().__init__(params, ...)",
                self.kind.name()
            )));
        }
        Ok(())
    }

    /// `param_groups[0]`, which must be the one dict of the list.
    fn group<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.initialized()?;
        let who = self.kind.name();
        let groups = self.param_groups.bind(py);
        if groups.len() != 1 {
            return Err(PyValueError::new_err(format!(
                "{who}: param_groups must hold exactly one group, got {}",
                groups.len()
            )));
        }
        let g = groups.get_item(0)?;
        g.cast_into::<PyDict>().map_err(|e| {
            PyTypeError::new_err(format!(
                "{who}: param_groups[0] must be a dict, got {}",
                type_name(e.into_inner().as_any())
            ))
        })
    }

    /// The rule with the hyperparameters of `param_groups[0]`, checked, as a step
    /// reads them (before any mutable borrow: the checks may run Python code).
    pub(crate) fn rule_now(slf: &Bound<'_, Self>) -> PyResult<kernels::Optimizer> {
        let (kind, group) = {
            let me = slf.busy_ref()?;
            (me.kind, me.group(slf.py())?)
        };
        read_rule(&kind, &group, missing_at_step)
    }

    /// The gradient tensor of entry `e`: its pair's, or the parameter's `.grad`.
    fn grad_of(e: &Entry, py: Python<'_>) -> PyResult<Option<Py<PyTensor>>> {
        Ok(match &e.g {
            Some(g) => Some(g.clone_ref(py)),
            None => {
                e.p.bind(py)
                    .busy_ref()?
                    .grad
                    .as_ref()
                    .map(|g| g.clone_ref(py))
            }
        })
    }
}

/// `regularize_(params, l1, l2)`: Playground's L1 and L2 penalties' gradient
/// added to every gradient of `params` (see `pyfw.optim.regularize_`), every
/// argument checked before any gradient changes.
#[pyfunction]
pub(crate) fn regularize_(
    params: &Bound<'_, PyAny>,
    l1: &Bound<'_, PyAny>,
    l2: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let who = "regularize_";
    let l1 = <f64 as Arg>::extract(l1, who, "l1")?;
    let l2 = <f64 as Arg>::extract(l2, who, "l2")?;
    kernels::check_penalties(who, l1, l2).py()?;
    let py = params.py();
    for e in &param_list(params, who)? {
        let Some(g) = Optimizer::grad_of(e, py)? else {
            continue;
        };
        let w = e.p.bind(py).busy_ref()?.t.data().to_vec();
        kernels::regularize(&w, g.bind(py).busy_mut()?.t.data_mut(), l1, l2);
    }
    Ok(())
}

/// The parameter tensors as a new list (`param_groups[0]["params"]`).
fn param_tensors<'py>(py: Python<'py>, entries: &[Entry]) -> PyResult<Bound<'py, PyList>> {
    list_of(py, entries.iter().map(|e| e.p.bind(py).clone().into_any()))
}

#[pymethods]
impl Optimizer {
    /// Update every parameter in place, with the hyperparameters of `param_groups[0]`.
    fn step(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let rule = Optimizer::rule_now(slf)?;
        let mut me = slf.busy_mut()?;
        me.kind = rule;
        let Optimizer { params, states, .. } = &mut *me;
        for (e, s) in params.iter().zip(states.iter_mut()) {
            let Some(g) = Optimizer::grad_of(e, py)? else {
                continue; // as torch: a parameter without a gradient is left alone
            };
            if e.p.is(&g) {
                let gv = g.bind(py).busy_ref()?.t.data().to_vec();
                let mut pt = e.p.bind(py).busy_mut()?;
                rule.update(pt.t.data_mut(), &gv, s).py()?;
            } else {
                let gt = g.bind(py).busy_ref()?;
                let mut pt = e.p.bind(py).busy_mut()?;
                rule.update(pt.t.data_mut(), gt.t.data(), s).py()?;
            }
        }
        Ok(())
    }

    /// Set every gradient to zero, in place.
    fn zero_grad(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let me = slf.busy_ref()?;
        me.initialized()?;
        for e in &me.params {
            if let Some(g) = Optimizer::grad_of(e, py)? {
                g.bind(py).busy_mut()?.t.data_mut().fill(0.0);
            }
        }
        Ok(())
    }

    /// `[{"params": [tensors], "lr": ..., ...}]`: one group, whose values every step reads.
    #[getter]
    fn param_groups(slf: &Bound<'_, Self>, py: Python<'_>) -> PyResult<Py<PyList>> {
        let this = slf.busy_ref()?;
        this.initialized()?;
        Ok(this.param_groups.clone_ref(py))
    }

    /// The hyperparameters given to the constructor.
    #[getter]
    fn defaults(slf: &Bound<'_, Self>, py: Python<'_>) -> PyResult<Py<PyDict>> {
        let this = slf.busy_ref()?;
        this.initialized()?;
        Ok(this.defaults.clone_ref(py))
    }

    /// The learning rate, `param_groups[0]["lr"]`; setting it checks it.
    #[getter]
    fn get_lr<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let me = slf.busy_ref()?;
        let who = me.kind.name();
        me.group(slf.py())?
            .get_item("lr")?
            .ok_or_else(|| missing_at_step(who, "lr"))
    }

    #[setter]
    fn set_lr(slf: &Bound<'_, Self>, lr: &Bound<'_, PyAny>) -> PyResult<()> {
        let (who, group) = {
            let me = slf.busy_ref()?;
            (me.kind.name(), me.group(slf.py())?)
        };
        let v = <f64 as Arg>::extract(lr, who, "lr")?;
        kernels::check_lr(who, v).py()?;
        group.set_item("lr", v)
    }

    /// For `copy` and `pickle` of Python subclasses (the members themselves are
    /// registered with `copyreg`): see `pyfw_rs/_pickle.py`.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        super::base::reduce(slf.as_any())
    }

    /// `{"state": {index: {"step": ..., buffer: Tensor, ...}}, "param_groups": [{..., "params": [0, 1, ...]}]}`,
    /// torch's layout; the tensors are copies.
    fn state_dict<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyDict>> {
        let py = slf.py();
        let me = slf.busy_ref()?;
        let state = PyDict::new(py);
        for (i, (e, s)) in me.params.iter().zip(&me.states).enumerate() {
            if s.is_empty() {
                continue;
            }
            let shape = e.p.bind(py).busy_ref()?.t.shape();
            let entry = PyDict::new(py);
            if let Some(t) = s.step {
                entry.set_item("step", t)?;
            }
            for (name, b) in me.kind.buffers().iter().zip(&s.buffers) {
                if let Some(b) = b {
                    entry.set_item(*name, Bound::new(py, PyTensor::wrap(shape, b.clone())?)?)?;
                }
            }
            state.set_item(i, entry)?;
        }
        let items = me.group(py)?.items();
        let n = me.params.len();
        drop(me);
        let packed = PyDict::new(py);
        for kv in items.iter() {
            let (k, v) = kv.extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>()?;
            if k.ne("params")? {
                packed.set_item(k, v)?;
            }
        }
        // list(range(n)), by CPython: MemoryError where PyList::new would panic
        let ids = py.import("builtins")?.getattr("range")?.call1((n,))?;
        packed.set_item("params", py.get_type::<PyList>().call1((ids,))?)?;
        let out = PyDict::new(py);
        out.set_item("state", state)?;
        out.set_item("param_groups", PyList::new(py, [packed])?)?;
        Ok(out)
    }

    /// Load a dict of `state_dict()`'s layout (tensors of either backend or nested
    /// lists). Everything is checked before anything changes.
    fn load_state_dict(slf: &Bound<'_, Self>, state_dict: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        let (kind, n, shapes) = {
            let me = slf.busy_ref()?;
            let mut shapes = Vec::with_capacity(me.params.len());
            for e in &me.params {
                shapes.push(e.p.bind(py).busy_ref()?.t.shape());
            }
            (me.kind, me.params.len(), shapes)
        };
        let who = kind.name();
        let at = format!("{who}.load_state_dict");
        let sd = state_dict.cast::<PyDict>().map_err(|_| {
            PyTypeError::new_err(format!(
                "{at}: expected a dict with 'state' and 'param_groups', got {}",
                type_name(state_dict)
            ))
        })?;
        let mut top = Vec::new();
        for key in ["state", "param_groups"] {
            top.push(
                sd.get_item(key)?.ok_or_else(|| {
                    PyValueError::new_err(format!("{at}: the dict has no '{key}'"))
                })?,
            );
        }
        for k in sd.keys().iter() {
            if k.ne("state")? && k.ne("param_groups")? {
                return Err(PyValueError::new_err(format!(
                    "{at}: unexpected key {}",
                    py_repr(&k)?
                )));
            }
        }
        let (state, groups) = (&top[0], &top[1]);
        if !is_seq(groups) {
            return Err(PyTypeError::new_err(format!(
                "{at}: param_groups must be a list, got {}",
                type_name(groups)
            )));
        }
        if groups.len()? != 1 {
            return Err(PyValueError::new_err(format!(
                "{at}: expected 1 parameter group, got {}",
                groups.len()?
            )));
        }
        let saved = groups.get_item(0)?;
        let saved = saved.cast::<PyDict>().map_err(|_| {
            PyTypeError::new_err(format!(
                "{at}: param_groups[0] must be a dict, got {}",
                type_name(&saved)
            ))
        })?;
        let ids = saved.get_item("params")?.ok_or_else(|| {
            PyValueError::new_err(format!("{at}: param_groups[0] has no 'params'"))
        })?;
        if !is_seq(&ids) {
            return Err(PyTypeError::new_err(format!(
                "{at}: param_groups[0]['params'] must be a list, got {}",
                type_name(&ids)
            )));
        }
        if ids.len()? != n {
            return Err(PyValueError::new_err(format!(
                "{at}: the saved group has {} parameters, this optimizer has {n}",
                ids.len()?
            )));
        }
        let index = PyDict::new(py);
        for (k, id) in ids.try_iter()?.enumerate() {
            let id = id?;
            if !is_integral(&id)? {
                return Err(PyTypeError::new_err(format!(
                    "{at}: parameter ids must be ints, got {}",
                    type_name(&id)
                )));
            }
            index.set_item(id, k)?;
        }
        if index.len() != n {
            return Err(PyValueError::new_err(format!(
                "{at}: the saved parameter ids repeat"
            )));
        }
        let rule = read_rule(&kind, saved, missing_in_load)?;
        let state = state.cast::<PyDict>().map_err(|_| {
            PyTypeError::new_err(format!(
                "{at}: state must be a dict, got {}",
                type_name(state)
            ))
        })?;
        let buffers = kind.buffers();
        let mut allowed: Vec<&str> = Vec::new();
        if kind.counts_steps() {
            allowed.push("step");
        }
        allowed.extend_from_slice(buffers);
        let required = &allowed[..allowed.len() - buffers.len() + kind.required()];
        let mut new_states: Vec<ParamState> =
            (0..n).map(|_| ParamState::empty(buffers.len())).collect();
        for kv in state.items().iter() {
            let (key, entry) = kv.extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>()?;
            if !is_integral(&key)? {
                return Err(PyTypeError::new_err(format!(
                    "{at}: state keys must be int parameter ids, got {} {}",
                    type_name(&key),
                    py_repr(&key)?
                )));
            }
            let Some(k) = index.get_item(&key)? else {
                return Err(PyValueError::new_err(format!(
                    "{at}: state has an entry for parameter {}, which the saved group does not list",
                    py_repr(&key)?
                )));
            };
            let k: usize = k.extract()?;
            let place = format!("{at}: state[{}]", py_repr(&key)?);
            let entry = entry.cast::<PyDict>().map_err(|_| {
                PyTypeError::new_err(format!("{place} must be a dict, got {}", type_name(&entry)))
            })?;
            for name in entry.keys().iter() {
                let known = match name.cast::<PyString>() {
                    Ok(s) => allowed.contains(&&*s.to_cow()?),
                    Err(_) => false,
                };
                if !known {
                    return Err(PyValueError::new_err(format!(
                        "{place} has an unexpected key {}",
                        py_repr(&name)?
                    )));
                }
            }
            if entry.is_empty() {
                continue;
            }
            for r in required {
                if !entry.contains(*r)? {
                    return Err(PyValueError::new_err(format!("{place} lacks '{r}'")));
                }
            }
            let s = &mut new_states[k];
            for name in &allowed {
                let Some(v) = entry.get_item(*name)? else {
                    continue;
                };
                if *name == "step" {
                    s.step = Some(step_count(&v, &place)?);
                    continue;
                }
                let (data, shape) = tensor_data(&v, &format!("{place}['{name}']"))?;
                if shape != shapes[k] {
                    return Err(PyValueError::new_err(format!(
                        "{place}['{name}'] has shape {shape}, the parameter has shape {}",
                        shapes[k]
                    )));
                }
                if kind.non_negative().contains(name) {
                    if let Some(i) = data.iter().position(|&x| x < 0.0) {
                        return Err(PyValueError::new_err(format!(
                            "{place}['{name}'] must be non-negative, got {} at element {i}",
                            py_repr(&PyFloat::new(py, data[i]))?
                        )));
                    }
                }
                let b = buffers.iter().position(|b| b == name).unwrap_or(0);
                s.buffers[b] = Some(data);
            }
        }
        // Everything is checked: apply.
        let new_group = PyDict::new(py);
        let rule_values = rule_items(&rule, py)?;
        {
            let me = slf.busy_ref()?;
            new_group.set_item("params", param_tensors(py, &me.params)?)?;
        }
        for kv in saved.items().iter() {
            let (k, v) = kv.extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>()?;
            if k.eq("params")? {
                continue;
            }
            let checked = match k.cast::<PyString>() {
                Ok(s) => {
                    let s = s.to_cow()?;
                    rule_values.iter().find(|(name, _)| *name == s)
                }
                Err(_) => None,
            };
            match checked {
                Some((_, value)) => new_group.set_item(k, value)?,
                None => new_group.set_item(k, v)?,
            }
        }
        let mut me = slf.busy_mut()?;
        if me.states.len() != n {
            return Err(PyValueError::new_err(format!(
                "{at}: the optimizer changed while loading"
            )));
        }
        me.states = new_states;
        let groups = me.param_groups.bind(py);
        let current = match groups.len() {
            1 => groups.get_item(0)?.cast_into::<PyDict>().ok(),
            _ => None,
        };
        match current {
            Some(g) => {
                g.clear();
                g.update(new_group.as_mapping())?;
            }
            None => {
                while !groups.is_empty() {
                    groups.del_item(0)?;
                }
                groups.append(new_group)?;
            }
        }
        Ok(())
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let py = slf.py();
        let me = slf.busy_ref()?;
        let names = me.kind.hyperparameters();
        let group = me.group(py)?;
        drop(me);
        let mut args = Vec::with_capacity(names.len());
        for name in names {
            let v = match group.get_item(*name)? {
                Some(v) => py_repr(&v)?,
                None => "None".to_string(),
            };
            args.push(format!("{name}={v}"));
        }
        Ok(format!("{}({})", type_name(slf.as_any()), args.join(", ")))
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        for e in &self.params {
            visit.call(&e.p)?;
            if let Some(g) = &e.g {
                visit.call(g)?;
            }
        }
        visit.call(&self.param_groups)?;
        visit.call(&self.defaults)?;
        Ok(())
    }
}

/// Per line of `optimizer_table!`: one Python class, its arms in `read_rule` and
/// `rule_items`, and `register`.
macro_rules! py_members {
    ($($(#[$doc:meta])* $name:ident { $($arg:ident : $ty:ty = $default:expr),* } $sig:literal;)*) => {
        $(
            $(#[$doc])*
            #[allow(clippy::upper_case_acronyms)] // the Python names
            #[pyclass(extends = Optimizer, subclass, module = "pyfw_rs")]
            pub struct $name {}

            #[pymethods]
            impl $name {
                /// Accepts any arguments; `__init__` checks them and builds the
                /// optimizer, so that Python subclasses may have constructors of their own.
                #[new]
                #[pyo3(signature = (*_args, **_kwargs), text_signature = $sig)]
                fn new(
                    py: Python<'_>,
                    _args: &Bound<'_, PyTuple>,
                    _kwargs: Option<&Bound<'_, PyDict>>,
                ) -> PyResult<PyClassInitializer<$name>> {
                    let base = Optimizer::uninitialized(py, kernels::$name::default().into())?;
                    Ok(PyClassInitializer::from(base).add_subclass($name {}))
                }

                #[pyo3(signature = (params, $($arg = Given::Missing),*))]
                #[allow(clippy::too_many_arguments)] // the member's hyperparameters
                fn __init__(
                    slf: &Bound<'_, Self>,
                    params: &Bound<'_, PyAny>,
                    $($arg: Given<'_>),*
                ) -> PyResult<()> {
                    let who = stringify!($name);
                    let d = kernels::$name::default();
                    let k = kernels::$name {
                        $($arg: $arg.or(d.$arg, who, stringify!($arg))?),*
                    };
                    k.check().py()?;
                    let built = Optimizer::init(k.into(), params)?;
                    let mut me = slf.busy_mut()?;
                    let base: &mut Optimizer = me.as_super();
                    *base = built;
                    Ok(())
                }
            }
        )*

        /// The hyperparameters of `group` for the member `kind`, each checked as
        /// the constructor checks it; `missing` makes the error of an absent one.
        fn read_rule(
            kind: &kernels::Optimizer,
            group: &Bound<'_, PyDict>,
            missing: fn(&str, &str) -> PyErr,
        ) -> PyResult<kernels::Optimizer> {
            match kind {
                $(kernels::Optimizer::$name(_) => {
                    let who = stringify!($name);
                    let k = kernels::$name {
                        $($arg: {
                            let what = stringify!($arg);
                            // An interned key: read at every step, never built again.
                            let key = pyo3::intern!(group.py(), stringify!($arg));
                            let v = group.get_item(key)?.ok_or_else(|| missing(who, what))?;
                            <$ty as Arg>::extract(&v, who, what)?
                        }),*
                    };
                    k.check().py()?;
                    Ok(k.into())
                })*
            }
        }

        /// The hyperparameters of `rule` as Python values, in signature order.
        fn rule_items<'py>(
            rule: &kernels::Optimizer,
            py: Python<'py>,
        ) -> PyResult<Vec<(&'static str, Bound<'py, PyAny>)>> {
            match rule {
                $(kernels::Optimizer::$name(k) => Ok(vec![
                    $((stringify!($arg), k.$arg.into_bound_py_any(py)?)),*
                ]),)*
            }
        }

        /// Register the base class, every member and `OPTIMIZERS`, their names in table order.
        pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
            m.add_class::<Optimizer>()?;
            $(m.add_class::<$name>()?;)*
            m.add_function(wrap_pyfunction!(regularize_, m)?)?;
            m.add("OPTIMIZERS", kernels::Optimizer::NAMES.to_vec())?;
            Ok(())
        }
    };
}

crate::optimizer_table!(py_members);
