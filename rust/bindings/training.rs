//! Binding of the native training loop (see `rust/training.rs` and `pyfw/training.py`).
//!
//! `_train_epoch` runs one epoch of `pyfw.training.train_epoch` in Rust when the
//! model, the loss and the optimizer are all native and nothing in between
//! would run Python code; it returns `None` otherwise, and the Python loop
//! runs instead (with the same bits, and the same errors at the same step).
//! It borrows every object it touches for the whole epoch and releases the
//! interpreter lock meanwhile: another thread that touches one of them gets a
//! clean `RuntimeError`.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyList;

use super::base::keeps;
use super::generator::{resolve, PyGenerator};
use super::losses::{is_member, Loss};
use super::modules::native_layers;
use super::optim::Optimizer;
use super::tensor::PyTensor;
use super::IntoPyResult;
use crate::losses::Targets as LossTargets;
use crate::modules::Stack;
use crate::optim::check_penalties;
use crate::training::{train_epoch, Epoch, Layer, Progress, Targets};

/// `Ok(None)` from a failed borrow: the object is in use, and the Python loop
/// reports that as it always does.
macro_rules! borrow_or_none {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(_) => return Ok(None),
        }
    };
}

/// One epoch of `train_epoch` in batches of `batch_size`, natively: the order
/// is `randperm(n, generator)` with `shuffle` (drawn once every check has
/// passed, as the Python loop draws it first), else `0..n`. Returns the fold of
/// `loss * batch size` over the batches, or `None`, having drawn nothing, when
/// the Python loop must run instead. `regularize`, `(params, l1, l2)`, is a
/// `fw.optim.Regularized` around `optimizer`: `params` (weight or bias tensors
/// of the model, each once, whose `.grad` the model accumulates into) get the
/// penalties' gradient before each step.
///
/// `progress(k, nbatches, loss)`, if given, is called after batch `k` with the
/// running mean loss, at most every `every` seconds and at once the first time
/// that mean is not finite, never after the last batch (the caller reports that
/// one): the interpreter lock is taken back for the call only, and pending
/// signals are checked first. An exception there (a `KeyboardInterrupt` from
/// Ctrl-C, or the callback's own) stops the epoch after that batch and is raised.
#[pyfunction]
#[pyo3(signature = (model, criterion, optimizer, inputs, targets, batch_size, generator, shuffle, regularize=None, progress=None, every=0.1))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn _train_epoch(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    criterion: &Bound<'_, PyAny>,
    optimizer: &Bound<'_, PyAny>,
    inputs: &Bound<'_, PyAny>,
    targets: &Bound<'_, PyAny>,
    batch_size: usize,
    generator: Option<&Bound<'_, PyAny>>,
    shuffle: bool,
    regularize: Option<(Vec<Bound<'_, PyAny>>, f64, f64)>,
    progress: Option<Py<PyAny>>,
    every: f64,
) -> PyResult<Option<f64>> {
    let Ok(every) = std::time::Duration::try_from_secs_f64(every.max(0.0)) else {
        return Ok(None);
    };
    let (reg_params, l1, l2) = regularize.unwrap_or((Vec::new(), 0.0, 0.0));
    // Bad rates: the Python loop's regularize_ says so.
    if !(l1.is_finite() && l2.is_finite()) || check_penalties("regularize_", l1, l2).is_err() {
        return Ok(None);
    }
    let Some(kids) = native_layers(model)? else {
        return Ok(None);
    };
    let Ok(loss) = criterion.cast::<Loss>() else {
        return Ok(None);
    };
    let call = [
        intern!(py, "forward"),
        intern!(py, "backward"),
        intern!(py, "__call__"),
    ];
    if !(is_member(loss.as_any()) || keeps::<Loss>(loss.as_any(), &call)?) {
        return Ok(None);
    }
    let Ok(opt) = optimizer.cast::<Optimizer>() else {
        return Ok(None);
    };
    if !keeps::<Optimizer>(
        opt.as_any(),
        &[intern!(py, "step"), intern!(py, "zero_grad")],
    )? {
        return Ok(None);
    }
    // A bad param_groups[0] raises at the first step of the Python loop.
    let Ok(rule) = Optimizer::rule_now(opt) else {
        return Ok(None);
    };
    let Ok(x) = inputs.cast::<PyTensor>() else {
        return Ok(None);
    };
    let x = borrow_or_none!(x.try_borrow());
    // One sample per entry of dim 0, of any shape.
    let xd = x.t.shape().dims().to_vec();
    if xd.len() < 2 {
        return Ok(None);
    }
    let (n, in_sample) = (xd[0], &xd[1..]);
    let in_f = x.t.shape().numel() / n.max(1);
    if batch_size == 0 {
        return Ok(None);
    }
    // A bad generator: the Python loop's randperm says so.
    let Ok(shuffler) = resolve(py, generator) else {
        return Ok(None);
    };
    let kind = borrow_or_none!(loss.try_borrow()).state.kind();
    let value_targets;
    let class_targets: Vec<i64>;
    let mut target_sample = Vec::new();
    let targets = if let Ok(t) = targets.cast::<PyTensor>() {
        value_targets = borrow_or_none!(t.try_borrow());
        let ts = value_targets.t.shape();
        let td = ts.dims();
        if td.len() < 2 || td[0] != n {
            return Ok(None);
        }
        target_sample.extend_from_slice(&td[1..]);
        let cols = value_targets.t.shape().numel() / n.max(1);
        Targets::Values(value_targets.t.data(), cols)
    } else if let Ok(list) = targets.cast::<PyList>() {
        // Class indices; a loss of values parses a list as a tensor instead.
        if kind.targets() == LossTargets::Values || list.len() != n {
            return Ok(None);
        }
        class_targets = match list.extract::<Vec<i64>>() {
            Ok(v) => v,
            Err(_) => return Ok(None),
        };
        Targets::Classes(&class_targets)
    } else {
        return Ok(None);
    };

    // Borrow every layer and the generators its Dropouts draw from.
    let mut held = Vec::with_capacity(kids.len());
    let mut gens: Vec<Bound<'_, PyGenerator>> = Vec::new();
    for kid in &kids {
        // In use, or not initialized: the Python loop says so.
        match kid.hold(py, &mut gens, true) {
            Ok(Some(h)) => held.push(h),
            _ => return Ok(None),
        }
    }
    let mut gen_refs = Vec::new();
    for g in &gens {
        gen_refs.push(borrow_or_none!(g.try_borrow_mut()));
    }

    // The optimizer's entries must be exactly the model's parameters, each once,
    // with the gradients the model accumulates into.
    let mut opt_ref = borrow_or_none!(opt.try_borrow_mut());
    let opt_mut = &mut *opt_ref;
    let mut params = Vec::new();
    let mut regularized = Vec::new();
    let mut seen: Vec<Vec<bool>> = held.iter().map(|h| vec![false; h.slots().len()]).collect();
    for (e, state) in opt_mut.params.iter().zip(opt_mut.states.iter_mut()) {
        let mut found = None;
        for (l, h) in held.iter().enumerate() {
            for (slot, (param, g, param_grad)) in h.slots().into_iter().enumerate() {
                if !e.p.is(param) {
                    continue;
                }
                let grad = e.g.as_ref().or(param_grad);
                if !grad.is_some_and(|gr| gr.is(g)) {
                    return Ok(None);
                }
                // regularize_ reads the parameter's own `.grad`
                let reg = reg_params.iter().any(|r| r.is(param));
                if reg && !param_grad.is_some_and(|gr| gr.is(g)) {
                    return Ok(None);
                }
                found = Some((l, slot, reg));
            }
        }
        let Some((l, slot, reg)) = found else {
            return Ok(None);
        };
        let seen_slot = &mut seen[l][slot];
        if *seen_slot {
            return Ok(None);
        }
        *seen_slot = true;
        params.push((l, slot, state));
        regularized.push(reg);
    }
    // Every regularized tensor is one of the entries, each once.
    if !seen.iter().all(|s| s.iter().all(|&b| b))
        || regularized.iter().filter(|&&r| r).count() != reg_params.len()
    {
        return Ok(None);
    }
    let layers: Vec<Layer<'_>> = held.iter_mut().map(|h| h.layer()).collect();
    // Shapes that do not chain, or a layer that mixes the samples: the Python loop says so.
    if Stack::samples(&layers, in_sample, batch_size).is_err() {
        return Ok(None);
    }

    let mut loss_ref = borrow_or_none!(loss.try_borrow_mut());
    // Everything is borrowed: draw the order (from the borrow a Dropout holds, if it
    // shares the generator).
    let order = if !shuffle {
        (0..n).collect()
    } else if let Some(i) = gens.iter().position(|g| g.is(&shuffler)) {
        gen_refs[i].g.randperm(n).py()?
    } else {
        borrow_or_none!(shuffler.try_borrow_mut())
            .g
            .randperm(n)
            .py()?
    };
    let mut stopped: Option<PyErr> = None;
    let mut report = |k: usize, steps: usize, mean: f64| -> bool {
        Python::attach(|py| {
            let called = py.check_signals().and_then(|()| match &progress {
                Some(f) => f.call1(py, (k, steps, mean)).map(drop),
                None => Ok(()),
            });
            called.map_err(|err| stopped = Some(err)).is_ok()
        })
    };
    let tracked = progress.is_some();
    let epoch = Epoch {
        layers,
        generators: gen_refs.iter_mut().map(|g| &mut g.g).collect(),
        loss: &mut loss_ref.state,
        rule,
        params,
        regularized,
        penalties: (l1, l2),
        x: x.t.data(),
        in_f,
        in_sample,
        target_sample: &target_sample,
        targets,
        order: &order,
        batch_size,
        progress: tracked.then(|| Progress::new(&mut report, every)),
    };
    let result = py.detach(|| train_epoch(epoch));
    opt_mut.kind = rule;
    if let Some(err) = stopped {
        return Err(err);
    }
    result.py().map(Some)
}

/// The number of steps the native epoch has run on its fused trainer in this
/// process (for tests that check which path a stack takes).
#[pyfunction]
pub(crate) fn _fused_steps() -> u64 {
    crate::fused::steps_run()
}

/// The SIMD path of the native kernels: `"avx512"`, `"avx2"` or `"portable"`
/// (the widest the CPU runs, capped by the environment variable `PYFW_SIMD`).
#[pyfunction]
pub(crate) fn _simd_path() -> &'static str {
    crate::simd::path().name()
}

/// Register `_train_epoch`, `_fused_steps` and `_simd_path`.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_train_epoch, m)?)?;
    m.add_function(wrap_pyfunction!(_fused_steps, m)?)?;
    m.add_function(wrap_pyfunction!(_simd_path, m)?)
}
