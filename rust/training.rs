//! The training loop of `pyfw/training.py` (`train_epoch`) for a network whose
//! every piece is native: one epoch of gather, forward, loss, backward and
//! optimizer step, with no Python object in sight.
//!
//! Each step does exactly what the Python loop does through the bindings, in
//! the same order, so the bits are the same: `optimizer.zero_grad()`, the
//! forward pass of every layer, the loss, its gradient, the backward pass of
//! every layer (the first layer computes no input gradient: nothing reads it),
//! then the update rule on every parameter. The buffers between layers are
//! allocated once per epoch, so a step allocates nothing. After the last step
//! (or a failing one) every layer and the loss keep what their `forward` would
//! have kept, so `backward` after training behaves as after the Python loop.

use crate::activations::ActState;
use crate::error::{try_zeros, Error, Result};
use crate::generator::Generator;
use crate::losses::{LossState, Target};
use crate::modules::{with_terms, Dims, DropoutState, LinearBackward, LinearForward, LinearState};
use crate::optim::{regularize, Optimizer, ParamState};
use crate::simd::dispatch;
use crate::tensor::Shape;

/// One layer of the network, borrowed from its module for the epoch.
pub enum Layer<'a> {
    /// A `Linear`: its state, weight (out, in), bias, and their gradients.
    Linear {
        /// What `backward` keeps.
        state: &'a mut LinearState,
        /// The weight, (out, in).
        w: &'a mut [f64],
        /// The bias, (out,).
        b: &'a mut [f64],
        /// The weight gradient.
        gw: &'a mut [f64],
        /// The bias gradient.
        gb: &'a mut [f64],
    },
    /// Any member of the activation family.
    Activation(&'a mut ActState),
    /// A `Dropout`, and the index in [`Epoch::generators`] of the generator it
    /// draws from, or `None` when it is the identity (eval mode, or `p = 0`).
    Dropout(&'a mut DropoutState, Option<usize>),
}

impl Layer<'_> {
    /// The output width for an input of `width` columns.
    fn width_out(&self, width: usize) -> usize {
        match self {
            Layer::Linear { b, .. } => b.len(),
            _ => width,
        }
    }
}

/// Which parameter of a Linear layer an optimizer entry updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// The weight.
    Weight,
    /// The bias.
    Bias,
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
    /// The optimizer's entries in its order: the layer, the parameter, its state.
    pub params: Vec<(usize, Which, &'a mut ParamState)>,
    /// `fw.optim.Regularized`: which entries of `params` get the penalties'
    /// gradient before the step (empty: none), and the rates `(l1, l2)`.
    pub regularized: Vec<bool>,
    /// The L1 and L2 rates of `regularized`.
    pub penalties: (f64, f64),
    /// The inputs, (samples, in) row-major.
    pub x: &'a [f64],
    /// The number of input columns.
    pub in_f: usize,
    /// The targets.
    pub targets: Targets<'a>,
    /// The order of the samples (a permutation drawn by the caller), and the batch size.
    pub order: &'a [usize],
    /// Samples per batch; the last batch may be smaller.
    pub batch_size: usize,
}

/// The buffers of one epoch, sized for a full batch.
struct Buffers {
    /// The input of layer `l` is `acts[l]`; the network's output is `acts[layers]`.
    acts: Vec<Vec<f64>>,
    /// The widths of `acts`.
    widths: Vec<usize>,
    /// One mask per layer (empty but for drawing `Dropout` layers).
    masks: Vec<Vec<f64>>,
    /// Two gradient buffers, used in turn.
    grad: [Vec<f64>; 2],
    /// The targets of the batch.
    values: Vec<f64>,
    classes: Vec<i64>,
    /// The layers whose forward has run in the current step.
    done: usize,
}

impl Buffers {
    fn new(e: &Epoch<'_>) -> Result<Buffers> {
        let rows = e.batch_size.min(e.order.len());
        let size = |w: usize| {
            rows.checked_mul(w)
                .ok_or_else(|| Error::Memory("fit: batch too large".into()))
        };
        let mut widths = vec![e.in_f];
        for l in &e.layers {
            let w = l.width_out(*widths.last().unwrap_or(&e.in_f));
            widths.push(w);
        }
        let mut acts = Vec::new();
        for &w in &widths {
            acts.push(try_zeros(size(w)?, "fit")?);
        }
        let mut masks = Vec::new();
        for (l, &w) in e.layers.iter().zip(&widths) {
            let n = match l {
                Layer::Dropout(_, Some(_)) => size(w)?,
                _ => 0,
            };
            masks.push(try_zeros(n, "fit")?);
        }
        let widest = size(widths.iter().copied().max().unwrap_or(0))?;
        let grad = [try_zeros(widest, "fit")?, try_zeros(widest, "fit")?];
        let (values, classes) = match e.targets {
            Targets::Values(_, cols) => (try_zeros(size(cols)?, "fit")?, Vec::new()),
            Targets::Classes(_) => {
                let mut c = Vec::new();
                c.try_reserve_exact(rows)
                    .map_err(|_| Error::Memory("fit: batch too large".into()))?;
                (Vec::new(), c)
            }
        };
        Ok(Buffers {
            acts,
            widths,
            masks,
            grad,
            values,
            classes,
            done: 0,
        })
    }
}

/// Run one epoch; returns the fold `((0.0 + l_0 * m_0) + l_1 * m_1) + ...` of the
/// batch losses `l_k` over `m_k` samples (the caller divides by the sample count).
///
/// The caller has checked the shapes: the layers chain, the targets fit the
/// network's output, every index of `order` is a row of `x`. An error of a
/// kernel (a loss input outside [0, 1], an update rule's check) stops the
/// epoch where the Python loop would stop, with the same state.
pub fn train_epoch(mut e: Epoch<'_>) -> Result<f64> {
    let mut buf = Buffers::new(&e)?;
    let mut total = 0.0;
    let mut last = 0;
    let mut outcome = Ok(());
    for idx in e.order.chunks(e.batch_size) {
        last = idx.len();
        match step(&mut e, &mut buf, idx) {
            Ok(loss) => total += loss * idx.len() as f64,
            Err(err) => {
                outcome = Err(err);
                break;
            }
        }
    }
    remember(&mut e, &buf, last)?;
    outcome.map(|()| total)
}

/// One step on the samples `idx`; returns the batch loss.
fn step(e: &mut Epoch<'_>, buf: &mut Buffers, idx: &[usize]) -> Result<f64> {
    let rows = idx.len();
    // Gather the batch.
    let in_f = e.in_f;
    for (r, &i) in idx.iter().enumerate() {
        buf.acts[0][r * in_f..(r + 1) * in_f].copy_from_slice(&e.x[i * in_f..(i + 1) * in_f]);
    }
    let target = match e.targets {
        Targets::Values(t, cols) => {
            for (r, &i) in idx.iter().enumerate() {
                buf.values[r * cols..(r + 1) * cols].copy_from_slice(&t[i * cols..(i + 1) * cols]);
            }
            Target::Values(&buf.values[..rows * cols], Shape::Matrix(rows, cols))
        }
        Targets::Classes(k) => {
            buf.classes.clear();
            buf.classes.extend(idx.iter().map(|&i| k[i]));
            Target::Classes(&buf.classes)
        }
    };
    // optimizer.zero_grad()
    for l in e.layers.iter_mut() {
        if let Layer::Linear { gw, gb, .. } = l {
            gw.fill(0.0);
            gb.fill(0.0);
        }
    }
    // forward
    buf.done = 0;
    for (l, layer) in e.layers.iter_mut().enumerate() {
        let (wi, wo) = (buf.widths[l], buf.widths[l + 1]);
        let (before, after) = buf.acts.split_at_mut(l + 1);
        let (x, y) = (&before[l][..rows * wi], &mut after[0][..rows * wo]);
        match layer {
            Layer::Linear { w, b, .. } => {
                let d = Dims {
                    batch: rows,
                    in_f: wi,
                    out_f: wo,
                };
                with_terms(|terms| {
                    dispatch(LinearForward {
                        d,
                        x,
                        w,
                        b,
                        y,
                        terms,
                    })
                });
            }
            Layer::Activation(a) => a.kind().forward(x, Shape::Matrix(rows, wi), y)?,
            Layer::Dropout(d, gen) => match gen {
                Some(g) => {
                    let mask = &mut buf.masks[l][..rows * wi];
                    d.draw_mask(e.generators[*g], mask);
                    for ((o, &v), &m) in y.iter_mut().zip(x.iter()).zip(mask.iter()) {
                        *o = v * m;
                    }
                }
                None => y.copy_from_slice(x),
            },
        }
        buf.done = l + 1;
    }
    // loss, and its gradient
    let nl = e.layers.len();
    let wl = buf.widths[nl];
    let loss = e
        .loss
        .forward(&buf.acts[nl][..rows * wl], Shape::Matrix(rows, wl), target)?;
    let [ga, gb_] = &mut buf.grad;
    let (mut g, mut dx) = (ga, gb_);
    e.loss.backward_into(&mut g[..rows * wl])?;
    // backward
    for l in (0..nl).rev() {
        let (wi, wo) = (buf.widths[l], buf.widths[l + 1]);
        let x = &buf.acts[l][..rows * wi];
        let gy = &g[..rows * wo];
        match &mut e.layers[l] {
            Layer::Linear { w, gw, gb, .. } => {
                let d = Dims {
                    batch: rows,
                    in_f: wi,
                    out_f: wo,
                };
                let dxs = if l == 0 {
                    None
                } else {
                    Some(&mut dx[..rows * wi])
                };
                with_terms(|terms| {
                    dispatch(LinearBackward {
                        d,
                        x,
                        g: gy,
                        w,
                        gw,
                        gb,
                        dx: dxs,
                        terms,
                    })
                });
            }
            _ if l == 0 => {} // nothing reads the input gradient
            Layer::Activation(a) => {
                let y = &buf.acts[l + 1][..rows * wo];
                a.kind()
                    .backward(x, y, gy, Shape::Matrix(rows, wi), &mut dx[..rows * wi])?;
            }
            Layer::Dropout(_, gen) => {
                let out = &mut dx[..rows * wi];
                if gen.is_some() {
                    for ((o, &v), &m) in out.iter_mut().zip(gy).zip(&buf.masks[l][..rows * wi]) {
                        *o = v * m;
                    }
                } else {
                    out.copy_from_slice(gy);
                }
            }
        }
        std::mem::swap(&mut g, &mut dx);
    }
    // Regularized.step(): the penalties' gradient on every regularized entry, then the rule
    for ((l, which, _), _) in e.params.iter().zip(&e.regularized).filter(|(_, &on)| on) {
        if let Layer::Linear { w, b, gw, gb, .. } = &mut e.layers[*l] {
            let (l1, l2) = e.penalties;
            match which {
                Which::Weight => regularize(w, gw, l1, l2),
                Which::Bias => regularize(b, gb, l1, l2),
            }
        }
    }
    // optimizer.step()
    for (l, which, state) in e.params.iter_mut() {
        if let Layer::Linear { w, b, gw, gb, .. } = &mut e.layers[*l] {
            match which {
                Which::Weight => e.rule.update(w, gw, state)?,
                Which::Bias => e.rule.update(b, gb, state)?,
            }
        }
    }
    Ok(loss)
}

/// Let every layer whose forward ran on the last batch, of `rows` samples, keep
/// what that `forward` kept. A layer whose forward failed, and those after it,
/// keep what they had: as in the Python loop, since a forward fails only for
/// a shape, in the epoch's first batch, before the layer kept anything.
fn remember(e: &mut Epoch<'_>, buf: &Buffers, rows: usize) -> Result<()> {
    for (l, layer) in e.layers.iter_mut().enumerate().take(buf.done) {
        let (wi, wo) = (buf.widths[l], buf.widths[l + 1]);
        let x = &buf.acts[l][..rows * wi];
        match layer {
            Layer::Linear { state, .. } => state.remember(x)?,
            Layer::Activation(a) => {
                a.remember(x, &buf.acts[l + 1][..rows * wo], Shape::Matrix(rows, wi))?
            }
            Layer::Dropout(d, gen) => {
                let mask: &[f64] = match gen {
                    Some(_) => &buf.masks[l][..rows * wi],
                    None => &[],
                };
                d.remember(mask, Shape::Matrix(rows, wi))?
            }
        }
    }
    Ok(())
}
