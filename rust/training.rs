//! The training loop of `pyfw/training.py` (`train_epoch`) for a network whose
//! every piece is native: one epoch of gather, forward, loss, backward and
//! optimizer step, with no Python object in sight.
//!
//! Each step does exactly what the Python loop does through the bindings, in
//! the same order, so the bits are the same: `optimizer.zero_grad()`, the
//! forward pass of every layer, the loss, its gradient, the backward pass of
//! every layer (the first layer computes no input gradient: nothing reads it),
//! then the update rule on every parameter. The layers run through the stack
//! runner of `rust/modules.rs`, whose buffers between layers are allocated once
//! per epoch, so a step allocates nothing. A small stack of `Linear` layers and
//! element-wise activations under SGD runs through the runner's fused trainer
//! (`rust/fused.rs`) instead, with the same bits. After the last step
//! (or a failing one) every layer and the loss keep what their `forward` would
//! have kept, so `backward` after training behaves as after the Python loop.

use crate::error::{try_zeros, Error, Result};
use crate::generator::Generator;
use crate::losses::{LossState, Target};
use crate::modules::Stack;
pub use crate::modules::{Layer, LayerKind, Slot};
use crate::optim::{regularize, Optimizer, ParamState};
use crate::tensor::Shape;
use std::time::{Duration, Instant};

/// A report of an epoch's progress: `call(k, steps, loss)` after batch `k`
/// (1-based) of `steps`, with the running mean loss (the fold of the batch
/// losses times their sizes so far, divided by the samples so far). It is
/// called at most once every `every`, and at once the first time that mean is
/// not finite; never after the last batch (the caller reports that one, once
/// the epoch has released what it holds). `call` returning `false` stops the
/// epoch after that batch, with the state the step left.
pub struct Progress<'a> {
    /// The callback; `false` stops the epoch.
    pub call: &'a mut (dyn FnMut(usize, usize, f64) -> bool + Send),
    /// The least time between two calls.
    pub every: Duration,
    shown: Instant,
    flagged: bool,
}

impl<'a> Progress<'a> {
    /// A report through `call` at most once every `every`, counted from now.
    pub fn new(
        call: &'a mut (dyn FnMut(usize, usize, f64) -> bool + Send),
        every: Duration,
    ) -> Self {
        Progress {
            call,
            every,
            shown: Instant::now(),
            flagged: false,
        }
    }

    /// After batch `k` of `steps`, with the fold `total` over `seen` samples:
    /// report if it is time; `false` when the callback stops the epoch. A time
    /// check and nothing else when it does not report.
    #[inline]
    pub fn after(&mut self, k: usize, steps: usize, total: f64, seen: usize) -> bool {
        if k >= steps {
            return true;
        }
        let now = Instant::now();
        if total.is_finite() || self.flagged {
            if now.duration_since(self.shown) < self.every {
                return true;
            }
        } else {
            self.flagged = true;
        }
        self.shown = now;
        (self.call)(k, steps, total / seen as f64)
    }
}

/// The targets of the whole data set, one row per sample.
#[derive(Clone, Copy)]
pub enum Targets<'a> {
    /// Values, (samples, cols) row-major, and `cols`.
    Values(&'a [f64], usize),
    /// Class indices.
    Classes(&'a [i64]),
}

/// Everything one epoch needs, borrowed for its duration.
pub struct Epoch<'a> {
    /// The layers, in order (nested `Sequential`s flattened).
    pub layers: Vec<Layer<'a>>,
    /// The generators the `Dropout` layers draw from (each once, however many share it).
    pub generators: Vec<&'a mut Generator>,
    /// The loss.
    pub loss: &'a mut LossState,
    /// The update rule, with the hyperparameters of `param_groups[0]`.
    pub rule: Optimizer,
    /// The optimizer's entries in its order: the layer, its parameter slot, its state.
    pub params: Vec<(usize, usize, &'a mut ParamState)>,
    /// `fw.optim.Regularized`: which entries of `params` get the penalties'
    /// gradient before the step (empty: none), and the rates `(l1, l2)`.
    pub regularized: Vec<bool>,
    /// The L1 and L2 rates of `regularized`.
    pub penalties: (f64, f64),
    /// The inputs, (samples, in) row-major.
    pub x: &'a [f64],
    /// The number of input values per sample.
    pub in_f: usize,
    /// The shape of one input sample (`[in_f]` for rows; `[C, H, W]` for images).
    pub in_sample: &'a [usize],
    /// The shape of one target sample, for value targets (`[cols]` for rows).
    pub target_sample: &'a [usize],
    /// The targets.
    pub targets: Targets<'a>,
    /// The order of the samples (a permutation drawn by the caller), and the batch size.
    pub order: &'a [usize],
    /// Samples per batch; the last batch may be smaller.
    pub batch_size: usize,
    /// Where to report the progress, if anywhere.
    pub progress: Option<Progress<'a>>,
}

/// The buffers of one epoch, sized for a full batch: the stack's, and the targets of the batch.
struct Buffers {
    stack: Stack,
    values: Vec<f64>,
    classes: Vec<i64>,
}

impl Buffers {
    fn new(e: &Epoch<'_>) -> Result<Buffers> {
        let rows = e.batch_size.min(e.order.len());
        let stack = Stack::with_sample(&e.layers, e.in_sample, rows, "fit")?;
        let (values, classes) = match e.targets {
            Targets::Values(_, cols) => {
                let n = rows
                    .checked_mul(cols)
                    .ok_or_else(|| Error::Memory("fit: batch too large".into()))?;
                (try_zeros(n, "fit")?, Vec::new())
            }
            Targets::Classes(_) => {
                let mut c = Vec::new();
                c.try_reserve_exact(rows)
                    .map_err(|_| Error::Memory("fit: batch too large".into()))?;
                (Vec::new(), c)
            }
        };
        Ok(Buffers {
            stack,
            values,
            classes,
        })
    }
}

/// Run one epoch; returns the fold `((0.0 + l_0 * m_0) + l_1 * m_1) + ...` of the
/// batch losses `l_k` over `m_k` samples (the caller divides by the sample count),
/// up to the batch after which `e.progress` stopped the epoch, if it did.
///
/// The caller has checked the shapes: the layers chain, the targets fit the
/// network's output, every index of `order` is a row of `x`. An error of a
/// kernel (a loss input outside [0, 1], an update rule's check) stops the
/// epoch where the Python loop would stop, with the same state.
pub fn train_epoch(mut e: Epoch<'_>) -> Result<f64> {
    // A small stack of Linear layers and activations under SGD: the fused trainer.
    if let Some(plan) = crate::fused::Plan::of(&e) {
        return crate::fused::train_epoch(&plan, &mut e);
    }
    train_epoch_general(e)
}

/// [`train_epoch`] on the general path of the stack runner, whatever the stack.
pub fn train_epoch_general(mut e: Epoch<'_>) -> Result<f64> {
    let mut buf = Buffers::new(&e)?;
    let mut total = 0.0;
    let mut last = 0;
    let mut outcome = Ok(());
    let (order, batch_size) = (e.order, e.batch_size);
    let steps = order.len().div_ceil(batch_size);
    let mut seen = 0;
    for (k, idx) in order.chunks(batch_size).enumerate() {
        last = idx.len();
        match step(&mut e, &mut buf, idx) {
            Ok(loss) => total += loss * idx.len() as f64,
            Err(err) => {
                outcome = Err(err);
                break;
            }
        }
        seen += idx.len();
        if let Some(p) = e.progress.as_mut() {
            if !p.after(k + 1, steps, total, seen) {
                break;
            }
        }
    }
    buf.stack.remember(&mut e.layers, last)?;
    outcome.map(|()| total)
}

/// One step on the samples `idx`; returns the batch loss.
fn step(e: &mut Epoch<'_>, buf: &mut Buffers, idx: &[usize]) -> Result<f64> {
    let rows = idx.len();
    // Gather the batch.
    let in_f = e.in_f;
    let input = buf.stack.input_mut(rows);
    for (r, &i) in idx.iter().enumerate() {
        input[r * in_f..(r + 1) * in_f].copy_from_slice(&e.x[i * in_f..(i + 1) * in_f]);
    }
    let target = gather_targets(
        e.targets,
        e.target_sample,
        idx,
        &mut buf.values,
        &mut buf.classes,
    )?;
    // optimizer.zero_grad()
    Stack::zero_grad(&mut e.layers);
    buf.stack.forward(&mut e.layers, rows, &mut e.generators)?;
    // loss, and its gradient
    let out_shape = buf.stack.out_shape(rows);
    let loss = e.loss.forward(buf.stack.output(rows), out_shape, target)?;
    e.loss.backward_into(buf.stack.grad_mut(rows))?;
    buf.stack.backward(&mut e.layers, rows)?;
    // Regularized.step(): the penalties' gradient on every regularized entry, then the rule
    let (l1, l2) = e.penalties;
    for ((l, slot, _), _) in e.params.iter().zip(&e.regularized).filter(|(_, &on)| on) {
        let s = &mut e.layers[*l].params[*slot];
        regularize(s.value, s.grad, l1, l2);
    }
    // optimizer.step()
    for (l, slot, state) in e.params.iter_mut() {
        let s = &mut e.layers[*l].params[*slot];
        e.rule.update(s.value, s.grad, state)?;
    }
    Ok(loss)
}

/// The targets of the samples `idx`, gathered into `values` (rows of the
/// targets' width) or `classes`, both sized for a full batch.
pub(crate) fn gather_targets<'b>(
    targets: Targets<'_>,
    sample: &[usize],
    idx: &[usize],
    values: &'b mut [f64],
    classes: &'b mut Vec<i64>,
) -> Result<Target<'b>> {
    let rows = idx.len();
    Ok(match targets {
        Targets::Values(t, cols) => {
            for (r, &i) in idx.iter().enumerate() {
                values[r * cols..(r + 1) * cols].copy_from_slice(&t[i * cols..(i + 1) * cols]);
            }
            let mut dims = [0; crate::tensor::MAX_RANK];
            dims[0] = rows;
            dims[1..=sample.len()].copy_from_slice(sample);
            let shape = Shape::new(&dims[..=sample.len()])?;
            Target::Values(&values[..rows * cols], shape)
        }
        Targets::Classes(k) => {
            classes.clear();
            classes.extend(idx.iter().map(|&i| k[i]));
            Target::Classes(classes)
        }
    })
}
