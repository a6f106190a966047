//! The fused trainer of the stack runner (the layer family's runner, `rust/modules.rs`):
//! the native epoch of `fit` for a small stack, with every step in one pass over
//! buffers of its own.
//!
//! [`train_epoch`] of `rust/training.rs` takes this path when every layer is a
//! `Linear` or an element-wise activation (not `Softmax` or `LogSoftmax`), every
//! width is at most [`MAX_WIDTH`], the update rule is SGD (any momentum,
//! dampening, weight decay, Nesterov) and nothing is regularized; the loss is
//! any member, run by its own kernel. Anything else runs the general path.
//!
//! It does the operations of the general path in the same order
//! (docs/NUMERICS.md, "Linear", "Activations", "Losses", "Optimizers"), so the
//! bits are the same; it only lays the memory out for small widths:
//!
//! - Every buffer of a step is allocated once per epoch, 64-byte aligned, each
//!   row padded to whole tiles of `L` lanes (4 on the portable and AVX2 paths, 8
//!   on AVX-512). A layer's kernel is compiled for its number of tiles (a const
//!   generic), so its rows live in registers. The padding lanes are never read
//!   into a real one.
//! - Forward, one sample at a time: each nonzero input `x[n][i]` (walking the
//!   bits of a mask of the nonzero inputs) adds `x[n][i] * W[o][i]` to the lanes
//!   of every output `o`: the skipping fold of `y[n][o]` over `i` in order, for
//!   all outputs at once, from `W` held transposed.
//! - Backward, one sample at a time: each nonzero `g[n][o]` adds `g * W[o][:]`
//!   to `dx[n][:]` and `g * x[n][:]` to `dW[o][:]`, so the fold of `dx[n][i]`
//!   runs over `o` in order and that of `dW[o][i]` over `n` in order; `db` adds
//!   whole rows of `g`.
//! - SGD updates a layer's weight and bias as soon as its gradients are
//!   complete (its `dx` is done by then, and no other layer reads them), then
//!   refreshes the transposed copy. Each element goes through the rule of
//!   `rust/optim.rs` itself.
//! - The loss runs its own kernel on the batch's outputs, with its checks.
//!
//! After the epoch (or a failing step) the parameters, their gradients, the
//! momentum buffers and what every layer keeps for `backward` are written
//! back, as the general path leaves them.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::activations::Activation;
use crate::error::{try_zeros, Result};
use crate::losses::{Loss, Reduction, Target};
use crate::modules::LayerKind;
use crate::optim::{Optimizer, SGD};
use crate::simd::{Kernel, Path};
use crate::tensor::Shape;
use crate::training::{gather_targets, Epoch, Targets};

/// The widest layer the fused trainer takes (a row's nonzero pattern is one `u64`).
pub const MAX_WIDTH: usize = 64;

/// Steps run by the fused trainer in this process, for tests that check it is taken.
static STEPS: AtomicU64 = AtomicU64::new(0);

/// The number of steps the fused trainer has run in this process.
pub fn steps_run() -> u64 {
    STEPS.load(Ordering::Relaxed)
}

/// Call `$f::<N, ...>` for the run-time padded width `$n` (a multiple of 4 up to 64).
macro_rules! by_width {
    ($n:expr, $f:ident $(:: <$($extra:tt),*>)?($($arg:expr),*)) => {
        match $n {
            4 => $f::<4 $($(, $extra)*)?>($($arg),*),
            8 => $f::<8 $($(, $extra)*)?>($($arg),*),
            12 => $f::<12 $($(, $extra)*)?>($($arg),*),
            16 => $f::<16 $($(, $extra)*)?>($($arg),*),
            20 => $f::<20 $($(, $extra)*)?>($($arg),*),
            24 => $f::<24 $($(, $extra)*)?>($($arg),*),
            28 => $f::<28 $($(, $extra)*)?>($($arg),*),
            32 => $f::<32 $($(, $extra)*)?>($($arg),*),
            36 => $f::<36 $($(, $extra)*)?>($($arg),*),
            40 => $f::<40 $($(, $extra)*)?>($($arg),*),
            44 => $f::<44 $($(, $extra)*)?>($($arg),*),
            48 => $f::<48 $($(, $extra)*)?>($($arg),*),
            52 => $f::<52 $($(, $extra)*)?>($($arg),*),
            56 => $f::<56 $($(, $extra)*)?>($($arg),*),
            60 => $f::<60 $($(, $extra)*)?>($($arg),*),
            _ => $f::<64 $($(, $extra)*)?>($($arg),*),
        }
    };
}

/// One layer of a plan.
#[derive(Clone, Copy)]
enum Op {
    /// A `Linear`: `(in, out)`, and the indices in the optimizer's entries of its
    /// weight and bias (none without a bias).
    Linear(usize, usize, usize, Option<usize>),
    /// An element-wise activation.
    Act(Activation),
}

/// What the fused trainer runs: one op per layer, the widths between them, the rule.
pub struct Plan {
    ops: Vec<Op>,
    widths: Vec<usize>,
    sgd: SGD,
    /// `MSELoss` on value targets of the output's width, under grad mode: its
    /// reduction. The steps before the last compute it in place (its kernel's
    /// formulas); the last runs the loss itself, which keeps its gradient.
    mse: Option<Reduction>,
}

impl Plan {
    /// The plan for `e`, or `None` when the stack, the rule or the entries are
    /// not those the fused trainer takes.
    pub fn of(e: &Epoch<'_>) -> Option<Plan> {
        let Optimizer::SGD(sgd) = e.rule else {
            return None;
        };
        // Rows only: a sample of another shape runs the general path.
        if e.regularized.iter().any(|&r| r)
            || e.in_f > MAX_WIDTH
            || e.in_f == 0
            || e.in_sample.len() != 1
            || e.target_sample.len() > 1
        {
            return None;
        }
        // The entry of every parameter slot, each exactly once.
        let entry = |l: usize, slot: usize| {
            let mut it = e
                .params
                .iter()
                .enumerate()
                .filter(|(_, p)| (p.0, p.1) == (l, slot));
            let (k, _) = it.next()?;
            it.next().is_none().then_some(k)
        };
        let mut ops = Vec::with_capacity(e.layers.len());
        let mut widths = vec![e.in_f];
        let mut width = e.in_f;
        let mut slots = 0;
        for (l, layer) in e.layers.iter().enumerate() {
            let op = match &layer.kind {
                LayerKind::Linear(s) => {
                    let (i, o) = (s.in_features(), s.out_features());
                    if i != width || o == 0 || o > MAX_WIDTH {
                        return None;
                    }
                    let bias = match layer.params.len() {
                        1 => None,
                        2 => Some(entry(l, 1)?),
                        _ => return None,
                    };
                    slots += layer.params.len();
                    Op::Linear(i, o, entry(l, 0)?, bias)
                }
                LayerKind::Activation(a) => match a.kind() {
                    Activation::Softmax(_) | Activation::LogSoftmax(_) => return None,
                    k => Op::Act(k),
                },
                _ => return None,
            };
            if let Op::Linear(_, o, ..) = op {
                width = o;
            }
            ops.push(op);
            widths.push(width);
        }
        // Every entry is a slot of a Linear, its state fits it (the rule's own check).
        if slots != e.params.len() || !ops.iter().any(|o| matches!(o, Op::Linear(..))) {
            return None;
        }
        for (l, slot, state) in &e.params {
            let n = e.layers[*l].params[*slot].value.len();
            let grad = e.layers[*l].params[*slot].grad.len();
            let fits = grad == n
                && state.buffers.len() == 1
                && state.buffers.iter().flatten().all(|b| b.len() == n);
            if !fits {
                return None;
            }
        }
        let mse = match (e.loss.kind(), e.targets) {
            (Loss::MSELoss(_), Targets::Values(_, cols))
                if cols == width && crate::grad_mode::is_enabled() =>
            {
                Some(e.loss.reduction())
            }
            _ => None,
        };
        Some(Plan {
            ops,
            widths,
            sgd,
            mse,
        })
    }
}

/// Run the epoch of `e` with `plan` on the path [`crate::simd::dispatch`] takes.
pub fn train_epoch(plan: &Plan, e: &mut Epoch<'_>) -> Result<f64> {
    let mut out = None;
    crate::simd::dispatch(Run {
        path: crate::simd::path(),
        plan,
        e,
        out: &mut out,
    });
    out.unwrap_or(Ok(0.0))
}

/// Run the epoch of `e` with `plan` on `path`; `None` when this CPU lacks it.
pub fn train_epoch_on(path: Path, plan: &Plan, e: &mut Epoch<'_>) -> Option<Result<f64>> {
    let mut out = None;
    let k = Run {
        path,
        plan,
        e,
        out: &mut out,
    };
    match path {
        Path::Portable => crate::simd::portable(k),
        #[cfg(target_arch = "x86_64")]
        Path::Avx2 => crate::simd::on_avx2(k).ok()?,
        #[cfg(target_arch = "x86_64")]
        Path::Avx512 => crate::simd::on_avx512(k).ok()?,
        #[cfg(not(target_arch = "x86_64"))]
        _ => return None,
    }
    out
}

/// The epoch as a kernel of `rust/simd.rs`: tiles of 4 lanes, 8 on AVX-512.
struct Run<'p, 'e, 'a> {
    path: Path,
    plan: &'p Plan,
    e: &'e mut Epoch<'a>,
    out: &'e mut Option<Result<f64>>,
}

impl Kernel for Run<'_, '_, '_> {
    #[inline(always)]
    fn run(self) {
        *self.out = Some(epoch::<4>(self.path, self.plan, self.e));
    }

    #[inline(always)]
    fn run_wide(self) {
        *self.out = Some(epoch::<8>(self.path, self.plan, self.e));
    }
}

/// Whether the CPU has AVX2.
fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx2");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// `n` rounded up to a whole number of `l`-lane tiles (at least one).
fn padded(n: usize, l: usize) -> usize {
    n.div_ceil(l).max(1) * l
}

/// A zeroed buffer of `len` values starting on a 64-byte boundary.
struct Buf {
    v: Vec<f64>,
    at: usize,
    len: usize,
}

impl Buf {
    fn new(len: usize) -> Result<Buf> {
        let v = try_zeros(len + 8, "fit")?;
        let at = v.as_ptr().align_offset(64).min(8);
        Ok(Buf { v, at, len })
    }

    #[inline(always)]
    fn s(&self) -> &[f64] {
        &self.v[self.at..self.at + self.len]
    }

    #[inline(always)]
    fn m(&mut self) -> &mut [f64] {
        &mut self.v[self.at..self.at + self.len]
    }
}

/// A Linear's parameters and gradients, rows padded: `w` (out, ip), `wt` (in, op) its
/// transpose, `b` (op); the momentum buffers when the rule has a momentum.
struct Lin {
    in_f: usize,
    out_f: usize,
    ip: usize,
    op: usize,
    w: Buf,
    wt: Buf,
    gw: Buf,
    mw: Buf,
    b: Buf,
    gb: Buf,
    mb: Buf,
    /// The entries of the weight and the bias, and whether their momentum buffers are still to create.
    pw: usize,
    pb: Option<usize>,
    fresh: (bool, bool),
    /// Whether the transposed copy runs on AVX2 (on the AVX2 and AVX-512 paths).
    avx2: bool,
}

/// The buffers of an epoch.
struct Trainer<const L: usize> {
    /// One per op; `None` for an activation.
    lins: Vec<Option<Lin>>,
    /// The input of op `k` is `acts[k]`, (rows, padded width); the output is the last.
    acts: Vec<Buf>,
    pads: Vec<usize>,
    /// Two gradient buffers, used in turn.
    grad: [Buf; 2],
    /// The batch's output and its gradient, unpadded, for the loss.
    out: Vec<f64>,
    gout: Vec<f64>,
    values: Vec<f64>,
    classes: Vec<i64>,
}

/// `dst[r][..w] = src[r][..w]` for `rows` rows of strides `ds` and `ss`.
fn copy_rows(dst: &mut [f64], ds: usize, src: &[f64], ss: usize, w: usize, rows: usize) {
    for r in 0..rows {
        dst[r * ds..r * ds + w].copy_from_slice(&src[r * ss..r * ss + w]);
    }
}

impl<const L: usize> Trainer<L> {
    fn new(path: Path, plan: &Plan, e: &Epoch<'_>) -> Result<Trainer<L>> {
        let rows = e.batch_size.min(e.order.len()).max(1);
        let momentum = plan.sgd.momentum != 0.0;
        let pads: Vec<usize> = plan.widths.iter().map(|&w| padded(w, L)).collect();
        let mut lins = Vec::with_capacity(plan.ops.len());
        for (k, op) in plan.ops.iter().enumerate() {
            let Op::Linear(in_f, out_f, pw, pb) = *op else {
                lins.push(None);
                continue;
            };
            let (ip, op) = (pads[k], pads[k + 1]);
            let m = |n: usize| if momentum { n } else { 0 };
            let mut lin = Lin {
                in_f,
                out_f,
                ip,
                op,
                w: Buf::new(op * ip)?,
                wt: Buf::new((ip + 1) * op)?,
                gw: Buf::new(op * ip)?,
                mw: Buf::new(m(op * ip))?,
                b: Buf::new(op)?,
                gb: Buf::new(op)?,
                mb: Buf::new(m(op))?,
                pw,
                pb,
                fresh: (true, true),
                avx2: path >= Path::Avx2 && has_avx2(),
            };
            let layer = &e.layers[k];
            copy_rows(lin.w.m(), ip, layer.params[0].value, in_f, in_f, out_f);
            lin.fresh.0 = load_buffer(&e.params[pw].2.buffers[0], lin.mw.m(), ip, in_f, out_f);
            if let Some(pb) = pb {
                lin.b.m()[..out_f].copy_from_slice(layer.params[1].value);
                lin.fresh.1 = load_buffer(&e.params[pb].2.buffers[0], lin.mb.m(), op, out_f, 1);
            }
            // The row after the last of `wt` (row `ip`): -0.0, the partner of a `+0.0` that
            // pads a row out of terms (`+0.0 * -0.0 = -0.0` leaves any sum as it is).
            lin.wt.m()[ip * op..].fill(-0.0);
            lin.transpose();
            lins.push(Some(lin));
        }
        let mut acts = Vec::with_capacity(pads.len());
        for &p in &pads {
            acts.push(Buf::new(rows * p)?);
        }
        let widest = pads.iter().copied().max().unwrap_or(L);
        let ow = *plan.widths.last().unwrap_or(&0);
        let cols = match e.targets {
            Targets::Values(_, c) => c,
            Targets::Classes(_) => 0,
        };
        Ok(Trainer {
            lins,
            acts,
            pads,
            grad: [Buf::new(rows * widest)?, Buf::new(rows * widest)?],
            out: try_zeros(rows * ow, "fit")?,
            gout: try_zeros(rows * ow, "fit")?,
            values: try_zeros(rows * cols, "fit")?,
            classes: Vec::with_capacity(rows),
        })
    }

    /// Write the parameters, gradients and momentum buffers back into the epoch's tensors.
    fn store(&self, plan: &Plan, e: &mut Epoch<'_>) -> Result<()> {
        let momentum = plan.sgd.momentum != 0.0;
        for (k, lin) in self.lins.iter().enumerate() {
            let Some(lin) = lin else { continue };
            let (in_f, out_f, ip) = (lin.in_f, lin.out_f, lin.ip);
            let params = &mut e.layers[k].params;
            copy_rows(params[0].value, in_f, lin.w.s(), ip, in_f, out_f);
            copy_rows(params[0].grad, in_f, lin.gw.s(), ip, in_f, out_f);
            if lin.pb.is_some() {
                params[1].value.copy_from_slice(&lin.b.s()[..out_f]);
                params[1].grad.copy_from_slice(&lin.gb.s()[..out_f]);
            }
            if momentum {
                let mut buf = try_zeros(in_f * out_f, "SGD")?;
                copy_rows(&mut buf, in_f, lin.mw.s(), ip, in_f, out_f);
                e.params[lin.pw].2.buffers[0] = Some(buf);
                if let Some(pb) = lin.pb {
                    let mut buf = try_zeros(out_f, "SGD")?;
                    buf.copy_from_slice(&lin.mb.s()[..out_f]);
                    e.params[pb].2.buffers[0] = Some(buf);
                }
            }
        }
        Ok(())
    }

    /// Let every layer keep what its `forward` keeps, from the last step's `rows` rows.
    fn remember(&self, plan: &Plan, e: &mut Epoch<'_>, rows: usize) -> Result<()> {
        let compact = |k: usize| -> Result<Vec<f64>> {
            let w = plan.widths[k];
            let mut v = try_zeros(rows * w, "fit")?;
            copy_rows(&mut v, w, self.acts[k].s(), self.pads[k], w, rows);
            Ok(v)
        };
        let mut x = compact(0)?;
        for (k, layer) in e.layers.iter_mut().enumerate() {
            let y = compact(k + 1)?;
            layer.remember(&x, &y, &[], Shape::Matrix(rows, plan.widths[k]))?;
            x = y;
        }
        Ok(())
    }

    /// Let the loss keep what its `forward` keeps for the outputs of the samples
    /// `idx`, the step just run on them (whose fused MSE kept nothing).
    fn keep_loss(&mut self, plan: &Plan, e: &mut Epoch<'_>, idx: &[usize]) -> Result<()> {
        if plan.mse.is_none() {
            return Ok(());
        }
        let rows = idx.len();
        let target = gather_targets(
            e.targets,
            e.target_sample,
            idx,
            &mut self.values,
            &mut self.classes,
        )?;
        let last = plan.ops.len();
        let (ow, op) = (plan.widths[last], self.pads[last]);
        let out = &mut self.out[..rows * ow];
        copy_rows(out, ow, self.acts[last].s(), op, ow, rows);
        loss_of(e, out, ow, rows, target, &mut self.gout[..rows * ow]).map(drop)
    }

    /// One step on the samples `idx`; returns the batch loss.
    #[inline(always)]
    fn step(
        &mut self,
        plan: &Plan,
        e: &mut Epoch<'_>,
        idx: &[usize],
        last_step: bool,
    ) -> Result<f64> {
        let rows = idx.len();
        let in_f = e.in_f;
        let p0 = self.pads[0];
        let a0 = self.acts[0].m();
        for (r, &i) in idx.iter().enumerate() {
            a0[r * p0..r * p0 + in_f].copy_from_slice(&e.x[i * in_f..(i + 1) * in_f]);
        }
        let target = gather_targets(
            e.targets,
            e.target_sample,
            idx,
            &mut self.values,
            &mut self.classes,
        )?;
        // optimizer.zero_grad() is folded into the backward pass, which writes
        // `0.0 + t` at the first term of a gradient and zeroes the rows it never
        // reaches; a step that fails before it zeroes them here.
        // forward
        for (k, op) in plan.ops.iter().enumerate() {
            let (before, after) = self.acts.split_at_mut(k + 1);
            let (x, y) = (before[k].s(), after[0].m());
            match (op, &self.lins[k]) {
                (Op::Linear(..), Some(lin)) => linear_forward(lin, x, y, rows),
                (Op::Act(a), _) => act_forward(*a, x, y, rows, plan.widths[k], self.pads[k]),
                _ => {}
            }
        }
        // the loss and its gradient
        let last = plan.ops.len();
        let (ow, op) = (plan.widths[last], self.pads[last]);
        let gout = &mut self.gout[..rows * ow];
        let loss = match (plan.mse, target) {
            (Some(red), Target::Values(t, _)) if !last_step => {
                mse(red, self.acts[last].s(), op, t, ow, rows, gout)
            }
            _ => {
                let out = &mut self.out[..rows * ow];
                copy_rows(out, ow, self.acts[last].s(), op, ow, rows);
                loss_of(e, out, ow, rows, target, gout)
            }
        };
        let loss = match loss {
            Ok(loss) => loss,
            Err(err) => {
                self.lins.iter_mut().flatten().for_each(Lin::zero_grad);
                return Err(err);
            }
        };
        let [ga, gb] = &mut self.grad;
        let (mut g, mut dx) = (ga, gb);
        {
            let gm = g.m();
            for r in 0..rows {
                let row = &mut gm[r * op..(r + 1) * op];
                row[..ow].copy_from_slice(&gout[r * ow..(r + 1) * ow]);
                row[ow..].fill(0.0);
            }
        }
        // backward, each Linear updated as soon as its gradients are complete
        for k in (0..last).rev() {
            let (x, y) = (self.acts[k].s(), self.acts[k + 1].s());
            let want_dx = k > 0;
            match (&plan.ops[k], &mut self.lins[k]) {
                (Op::Linear(..), Some(lin)) => {
                    linear_backward(lin, x, g.s(), want_dx.then(|| dx.m()), rows);
                    lin.update(&plan.sgd);
                }
                (Op::Act(a), _) if want_dx => {
                    let (w, p) = (plan.widths[k], self.pads[k]);
                    act_backward(*a, x, y, g.s(), dx.m(), rows, w, p);
                }
                _ => {}
            }
            std::mem::swap(&mut g, &mut dx);
        }
        STEPS.fetch_add(1, Ordering::Relaxed);
        Ok(loss)
    }
}

/// The loss of the batch's outputs `out` (rows of `ow`) and its gradient into
/// `gout`, by the loss's own kernel.
fn loss_of(
    e: &mut Epoch<'_>,
    out: &[f64],
    ow: usize,
    rows: usize,
    target: Target<'_>,
    gout: &mut [f64],
) -> Result<f64> {
    let loss = e.loss.forward(out, Shape::Matrix(rows, ow), target)?;
    e.loss.backward_into(gout)?;
    Ok(loss)
}

/// `MSELoss` of the padded rows `y` (stride `p`) against `t` (rows of `w`), with its
/// gradient into `g`, by the formulas of its kernel (`rust/losses.rs`): the terms
/// `d * d` with `d = y - t` folded from 0.0 in row-major order, the derivative
/// `2.0 * d`; with `"mean"` both divided by the number of terms.
#[inline(always)]
fn mse(
    red: Reduction,
    y: &[f64],
    p: usize,
    t: &[f64],
    w: usize,
    rows: usize,
    g: &mut [f64],
) -> Result<f64> {
    let mut total = 0.0;
    let n = (rows * w) as f64;
    for r in 0..rows {
        let (yr, tr) = (&y[r * p..r * p + w], &t[r * w..(r + 1) * w]);
        for ((o, &yv), &tv) in g[r * w..(r + 1) * w].iter_mut().zip(yr).zip(tr) {
            let d = yv - tv;
            total += d * d;
            let deriv = 2.0 * d;
            *o = match red {
                Reduction::Mean => deriv / n,
                Reduction::Sum => deriv,
            };
        }
    }
    Ok(match red {
        Reduction::Mean => total / n,
        Reduction::Sum => total,
    })
}

/// Load a momentum buffer (rows of `w` values into rows of stride `stride`); returns
/// whether it is still to create.
fn load_buffer(
    b: &Option<Vec<f64>>,
    dst: &mut [f64],
    stride: usize,
    w: usize,
    rows: usize,
) -> bool {
    match b {
        Some(b) if !dst.is_empty() => {
            copy_rows(dst, stride, b, w, w, rows);
            false
        }
        _ => true,
    }
}

impl Lin {
    /// `wt[i][o] = w[o][i]` for the real rows and columns.
    #[inline(always)]
    fn transpose(&mut self) {
        let (w, ip, in_f, op) = (self.w.s(), self.ip, self.in_f, self.op);
        let wt = self.wt.m();
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: `avx2` is set only when the CPU has AVX2; `w` holds `op` rows of
            // `ip` values and `wt` `ip + 1` rows of `op` (the function checks).
            return unsafe { blocks::transpose(w, ip, in_f, op, wt) };
        }
        by_width!(op, transpose_into(w, ip, in_f, wt))
    }

    /// `gw = 0` and `gb = 0`: `optimizer.zero_grad()`.
    fn zero_grad(&mut self) {
        self.gw.m().fill(0.0);
        self.gb.m().fill(0.0);
    }

    /// The SGD step on the weight and the bias (padding included: it stays
    /// padding), then the transposed copy.
    #[inline(always)]
    fn update(&mut self, sgd: &SGD) {
        // The real rows (the padding rows stay zero).
        let n = self.out_f * self.ip;
        let mw = self.mw.m();
        let mw = if mw.is_empty() { mw } else { &mut mw[..n] };
        sgd.elements(&mut self.w.m()[..n], &self.gw.s()[..n], mw, self.fresh.0);
        self.fresh.0 = false;
        if self.pb.is_some() {
            sgd.elements(self.b.m(), self.gb.s(), self.mb.m(), self.fresh.1);
            self.fresh.1 = false;
        }
        self.transpose();
    }
}

/// The bits of the nonzero values among the first `n` of `row`.
#[inline(always)]
fn nonzero(row: &[f64], n: usize) -> u64 {
    let mut m = 0u64;
    for (k, &v) in row[..n].iter().enumerate() {
        m |= u64::from(v != 0.0) << k;
    }
    m
}

/// The first `N` values of `s`.
#[inline(always)]
fn row<const N: usize>(s: &[f64]) -> [f64; N] {
    let mut a = [0.0; N];
    a.copy_from_slice(&s[..N]);
    a
}

/// `acc[k] = acc[k] + v * s[k]` for every lane `k < N`: one flat loop over
/// contiguous lanes, which the compiler vectorizes along the row.
#[inline(always)]
fn axpy<const N: usize>(acc: &mut [f64; N], v: f64, s: &[f64]) {
    let s = &s[..N];
    for k in 0..N {
        acc[k] += v * s[k];
    }
}

/// `wt[i][o] = w[o][i]` for `i < in_f` and all `N` rows of `w` (padding rows included),
/// writing whole rows of `wt`.
#[inline(always)]
fn transpose_into<const N: usize>(w: &[f64], ip: usize, in_f: usize, wt: &mut [f64]) {
    let w = &w[..N * ip];
    for i in 0..in_f {
        let mut r = [0.0; N];
        for (o, v) in r.iter_mut().enumerate() {
            *v = w[o * ip + i];
        }
        wt[i * N..(i + 1) * N].copy_from_slice(&r);
    }
}

/// The transposed copy on AVX2: blocks of 4 rows by 4 columns of `w`, each
/// transposed in registers (a copy: no arithmetic).
#[cfg(target_arch = "x86_64")]
mod blocks {
    use std::arch::x86_64::*;

    /// `wt[i][o] = w[o][i]` for `i < in_f` rounded up to 4, `o < op`.
    ///
    /// # Safety
    /// The CPU has AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn transpose(w: &[f64], ip: usize, in_f: usize, op: usize, wt: &mut [f64]) {
        let in4 = in_f.div_ceil(4) * 4;
        assert!(op.is_multiple_of(4) && in4 <= ip && w.len() >= op * ip && wt.len() >= in4 * op);
        for o in (0..op).step_by(4) {
            for i in (0..in4).step_by(4) {
                // SAFETY: the loads read w[(o + k) * ip + i..][..4] with o + k < op and
                // i + 4 <= ip, the stores write wt[(i + k) * op + o..][..4] with
                // i + k < in4: inside the lengths asserted above.
                unsafe {
                    let p = w.as_ptr().add(o * ip + i);
                    let r0 = _mm256_loadu_pd(p);
                    let r1 = _mm256_loadu_pd(p.add(ip));
                    let r2 = _mm256_loadu_pd(p.add(2 * ip));
                    let r3 = _mm256_loadu_pd(p.add(3 * ip));
                    let t0 = _mm256_unpacklo_pd(r0, r1);
                    let t1 = _mm256_unpackhi_pd(r0, r1);
                    let t2 = _mm256_unpacklo_pd(r2, r3);
                    let t3 = _mm256_unpackhi_pd(r2, r3);
                    let q = wt.as_mut_ptr().add(i * op + o);
                    _mm256_storeu_pd(q, _mm256_permute2f128_pd::<0x20>(t0, t2));
                    _mm256_storeu_pd(q.add(op), _mm256_permute2f128_pd::<0x20>(t1, t3));
                    _mm256_storeu_pd(q.add(2 * op), _mm256_permute2f128_pd::<0x31>(t0, t2));
                    _mm256_storeu_pd(q.add(3 * op), _mm256_permute2f128_pd::<0x31>(t1, t3));
                }
            }
        }
    }
}

/// `y = x W^T + b` over `rows` padded rows.
#[inline(always)]
fn linear_forward(lin: &Lin, x: &[f64], y: &mut [f64], rows: usize) {
    by_width!(lin.op, forward_rows(lin, x, y, rows))
}

/// The next term of a row: the index of its lowest nonzero input and the input,
/// taken off `m`; once `m` is empty, the index `pad` (the -0.0 row) and `+0.0`.
#[inline(always)]
fn next_term(m: &mut u64, xr: &[f64], pad: usize) -> (usize, f64) {
    let i = (m.trailing_zeros() as usize).min(pad);
    let v = xr[i.min(xr.len() - 1)];
    let v = if *m != 0 { v } else { 0.0 };
    *m &= m.wrapping_sub(1);
    (i, v)
}

/// [`linear_forward`] with `N` padded outputs. Two rows run in lockstep, each
/// taking its own terms in order; the row with fewer terms adds `+0.0 * -0.0`
/// (from the row of -0.0 after the last of `wt`) until the other is done.
#[inline(always)]
fn forward_rows<const N: usize>(lin: &Lin, x: &[f64], y: &mut [f64], rows: usize) {
    let (ip, in_f) = (lin.ip, lin.in_f);
    let wt = lin.wt.s();
    let bias = row::<N>(lin.b.s());
    let mut n = 0;
    while n + 2 <= rows {
        let (x0, x1) = (&x[n * ip..(n + 1) * ip], &x[(n + 1) * ip..(n + 2) * ip]);
        let (mut a0, mut a1) = (bias, bias);
        let (mut m0, mut m1) = (nonzero(x0, in_f), nonzero(x1, in_f));
        while m0 | m1 != 0 {
            let (i0, v0) = next_term(&mut m0, x0, ip);
            let (i1, v1) = next_term(&mut m1, x1, ip);
            axpy(&mut a0, v0, &wt[i0 * N..]);
            axpy(&mut a1, v1, &wt[i1 * N..]);
        }
        y[n * N..(n + 1) * N].copy_from_slice(&a0);
        y[(n + 1) * N..(n + 2) * N].copy_from_slice(&a1);
        n += 2;
    }
    if n < rows {
        let xr = &x[n * ip..(n + 1) * ip];
        let mut acc = bias;
        let mut m = nonzero(xr, in_f);
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            axpy(&mut acc, xr[i], &wt[i * N..]);
        }
        y[n * N..(n + 1) * N].copy_from_slice(&acc);
    }
}

/// Accumulate `dW` and `db`, and write `dx` unless it is `None`, over `rows` padded rows.
#[inline(always)]
fn linear_backward(lin: &mut Lin, x: &[f64], g: &[f64], dx: Option<&mut [f64]>, rows: usize) {
    match dx {
        Some(dx) => by_width!(lin.ip, backward_rows::<true>(lin, x, g, dx, rows)),
        None => by_width!(lin.ip, backward_rows::<false>(lin, x, g, &mut [], rows)),
    }
}

/// [`linear_backward`] with `N` padded inputs.
#[inline(always)]
fn backward_rows<const N: usize, const DX: bool>(
    lin: &mut Lin,
    x: &[f64],
    g: &[f64],
    dx: &mut [f64],
    rows: usize,
) {
    let (op, out_f) = (lin.op, lin.out_f);
    let w = lin.w.s();
    let gw = lin.gw.m();
    let gb = lin.gb.m();
    // The rows of dW that have had a term in this step.
    let mut touched = 0u64;
    for n in 0..rows {
        let gr = &g[n * op..(n + 1) * op];
        let xr = row::<N>(&x[n * N..]);
        let mut acc = [0.0; N];
        let mut m = nonzero(gr, out_f);
        while m != 0 {
            let o = m.trailing_zeros() as usize;
            m &= m - 1;
            let v = gr[o];
            if DX {
                axpy(&mut acc, v, &w[o * N..]);
            }
            // The first term of dW[o][:] starts its fold at 0.0.
            let mut r = if touched & (1 << o) != 0 {
                row::<N>(&gw[o * N..])
            } else {
                [0.0; N]
            };
            touched |= 1 << o;
            axpy(&mut r, v, &xr);
            gw[o * N..(o + 1) * N].copy_from_slice(&r);
        }
        if DX {
            dx[n * N..(n + 1) * N].copy_from_slice(&acc);
        }
        if n == 0 {
            for (a, &v) in gb.iter_mut().zip(gr) {
                *a = 0.0 + v;
            }
        } else {
            for (a, &v) in gb.iter_mut().zip(gr) {
                *a += v;
            }
        }
    }
    // The rows no term reached.
    let mut m = !touched & (u64::MAX >> (64 - out_f));
    while m != 0 {
        let o = m.trailing_zeros() as usize;
        m &= m - 1;
        gw[o * N..(o + 1) * N].fill(0.0);
    }
}

/// An element-wise activation's forward on the first `w` values of each padded row.
#[inline(always)]
fn act_forward(a: Activation, x: &[f64], y: &mut [f64], rows: usize, w: usize, p: usize) {
    if let Activation::ReLU(_) = a {
        // The whole padded buffer: the formula of rust/activations.rs, vectorized.
        for (o, &v) in y[..rows * p].iter_mut().zip(&x[..rows * p]) {
            *o = if v > 0.0 { v } else { 0.0 };
        }
        return;
    }
    for r in 0..rows {
        let at = r * p..r * p + w;
        // Element-wise members take any shape.
        let _ = a.forward(&x[at.clone()], Shape::Vector(w), &mut y[at]);
    }
}

/// An element-wise activation's backward, as [`act_forward`].
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn act_backward(
    a: Activation,
    x: &[f64],
    y: &[f64],
    g: &[f64],
    dx: &mut [f64],
    rows: usize,
    w: usize,
    p: usize,
) {
    if let Activation::ReLU(_) = a {
        for ((d, &yv), &gv) in dx[..rows * p]
            .iter_mut()
            .zip(&y[..rows * p])
            .zip(&g[..rows * p])
        {
            *d = if yv > 0.0 { gv } else { 0.0 };
        }
        return;
    }
    for r in 0..rows {
        let at = r * p..r * p + w;
        let _ = a.backward(
            &x[at.clone()],
            &y[at.clone()],
            &g[at.clone()],
            Shape::Vector(w),
            &mut dx[at],
        );
    }
}

/// The epoch on `L`-lane tiles: steps as the general path's, then the state written back.
#[inline(always)]
fn epoch<const L: usize>(path: Path, plan: &Plan, e: &mut Epoch<'_>) -> Result<f64> {
    let mut t = Trainer::<L>::new(path, plan, e)?;
    let mut total = 0.0;
    let mut last = 0;
    let mut outcome = Ok(());
    let order = e.order;
    let steps = order.len().div_ceil(e.batch_size);
    let mut seen = 0;
    for (k, idx) in order.chunks(e.batch_size).enumerate() {
        last = idx.len();
        match t.step(plan, e, idx, k + 1 == steps) {
            Ok(loss) => total += loss * idx.len() as f64,
            Err(err) => {
                outcome = Err(err);
                break;
            }
        }
        seen += idx.len();
        if let Some(p) = e.progress.as_mut() {
            if !p.after(k + 1, steps, total, seen) {
                // Stopped before the last step: the loss keeps this batch, as its own kernel would.
                if let Err(err) = t.keep_loss(plan, e, idx) {
                    outcome = Err(err);
                }
                break;
            }
        }
    }
    if last > 0 {
        t.store(plan, e)?;
        t.remember(plan, e, last)?;
    }
    outcome.map(|()| total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activations::{ActState, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh, GELU};
    use crate::generator::Generator;
    use crate::losses::{CrossEntropyLoss, Loss, LossState, MSELoss, Reduction};
    use crate::modules::{linear_init, Layer, LinearState, Slot, Slots};
    use crate::optim::{Adam, ParamState};
    use crate::testing::bits;
    use crate::training::train_epoch_general;

    /// A layer of a test network.
    #[derive(Clone, Copy)]
    enum Spec {
        Linear(usize, usize, bool),
        Act(Activation),
    }

    /// A network with its own states and tensors, and a loss.
    #[derive(Clone)]
    struct Net {
        specs: Vec<Spec>,
        lins: Vec<LinearState>,
        acts: Vec<ActState>,
        values: Vec<Vec<f64>>,
        grads: Vec<Vec<f64>>,
        states: Vec<ParamState>,
        loss: LossState,
    }

    impl Net {
        fn new(specs: &[Spec], loss: Loss, seed: u64) -> Net {
            let mut g = Generator::new(seed);
            let (mut lins, mut acts, mut values) = (vec![], vec![], vec![]);
            for s in specs {
                match *s {
                    Spec::Linear(i, o, bias) => {
                        let (w, b) = linear_init(&mut g, i, o, bias).unwrap();
                        lins.push(LinearState::new(i, o));
                        values.push(w);
                        if bias {
                            values.push(b);
                        }
                    }
                    Spec::Act(a) => acts.push(ActState::new(a)),
                }
            }
            let grads = values.iter().map(|v| vec![0.0; v.len()]).collect();
            let states = values.iter().map(|_| ParamState::empty(1)).collect();
            Net {
                specs: specs.to_vec(),
                lins,
                acts,
                values,
                grads,
                states,
                loss: LossState::new(loss, Reduction::Mean),
            }
        }

        /// Borrow everything as an epoch.
        fn epoch<'a>(
            &'a mut self,
            rule: Optimizer,
            data: &'a Data,
            order: &'a [usize],
            batch_size: usize,
        ) -> Epoch<'a> {
            let mut lins = self.lins.iter_mut();
            let mut acts = self.acts.iter_mut();
            let mut slots = self.values.iter_mut().zip(self.grads.iter_mut());
            let mut states = self.states.iter_mut();
            let (mut layers, mut params) = (vec![], vec![]);
            for (l, s) in self.specs.iter().enumerate() {
                match *s {
                    Spec::Linear(_, _, bias) => {
                        let mut p = Slots::new();
                        for slot in 0..1 + usize::from(bias) {
                            let (value, grad) = slots.next().unwrap();
                            p.push(Slot { value, grad });
                            params.push((l, slot, states.next().unwrap()));
                        }
                        layers.push(Layer {
                            kind: LayerKind::Linear(lins.next().unwrap()),
                            params: p,
                        });
                    }
                    Spec::Act(_) => layers.push(Layer {
                        kind: LayerKind::Activation(acts.next().unwrap()),
                        params: Slots::new(),
                    }),
                }
            }
            let n = params.len();
            Epoch {
                layers,
                generators: vec![],
                loss: &mut self.loss,
                rule,
                params,
                regularized: vec![false; n],
                penalties: (0.0, 0.0),
                x: &data.x,
                in_f: data.in_f,
                in_sample: std::slice::from_ref(&data.in_f),
                target_sample: match &data.classes {
                    Some(_) => &[],
                    None => std::slice::from_ref(&data.cols),
                },
                targets: match &data.classes {
                    Some(k) => Targets::Classes(k),
                    None => Targets::Values(&data.t, data.cols),
                },
                order,
                batch_size,
                progress: None,
            }
        }

        /// Every bit a run leaves behind: parameters, gradients, momentum buffers,
        /// the loss's gradient and what each Linear keeps (through its backward).
        fn fingerprint(&self) -> Vec<Vec<u64>> {
            let mut out = vec![];
            out.extend(self.values.iter().map(|v| bits(v)));
            out.extend(self.grads.iter().map(|v| bits(v)));
            for s in &self.states {
                out.push(s.buffers[0].as_deref().map_or(vec![u64::MAX], bits));
            }
            out.push(self.loss.backward().map_or(vec![], |(g, _)| bits(&g)));
            let (mut k, mut li) = (0, 0);
            for s in &self.specs {
                if let Spec::Linear(i, o, bias) = *s {
                    let w = &self.values[k];
                    k += 1 + usize::from(bias);
                    let lin = &self.lins[li];
                    li += 1;
                    let Some(x_rows) = lin_rows(lin) else {
                        continue;
                    };
                    let g: Vec<f64> = (0..x_rows * o).map(|j| 0.25 * j as f64 - 1.0).collect();
                    let (mut gw, mut gb) = (vec![0.0; i * o], vec![0.0; o]);
                    let shape = Shape::Matrix(x_rows, o);
                    if let Ok((dx, _)) = lin.backward(&g, shape, w, &mut gw, &mut gb) {
                        out.push(bits(&dx));
                        out.push(bits(&gw));
                    }
                }
            }
            // What each activation kept: its backward from a gradient of its shape.
            for a in &self.acts {
                'found: for rows in 1..=16 {
                    for w in 1..=MAX_WIDTH {
                        let g: Vec<f64> = (0..rows * w).map(|j| 0.5 - 0.125 * j as f64).collect();
                        if let Ok(dx) = a.backward(&g, Shape::Matrix(rows, w)) {
                            out.push(bits(&dx));
                            break 'found;
                        }
                    }
                }
            }
            out
        }
    }

    /// The number of rows a Linear kept, found by trying its backward.
    fn lin_rows(lin: &LinearState) -> Option<usize> {
        let (i, o) = (lin.in_features(), lin.out_features());
        (1..=16).find(|&r| {
            let g = vec![0.0; r * o];
            let w = vec![0.0; i * o];
            let (mut gw, mut gb) = (vec![0.0; i * o], vec![0.0; o]);
            lin.backward(&g, Shape::Matrix(r, o), &w, &mut gw, &mut gb)
                .is_ok()
        })
    }

    /// Inputs and targets.
    struct Data {
        x: Vec<f64>,
        in_f: usize,
        t: Vec<f64>,
        cols: usize,
        classes: Option<Vec<i64>>,
    }

    /// `n` samples of `in_f` inputs (every `zero_every`-th exactly 0, alternately
    /// +0.0 and -0.0), with value targets of `cols` columns or class targets.
    fn data(n: usize, in_f: usize, cols: usize, classes: bool, zero_every: usize) -> Data {
        let mut g = Generator::new(7);
        let x = (0..n * in_f)
            .map(|k| match k % zero_every {
                0 if k % (2 * zero_every) == 0 => 0.0,
                0 => -0.0,
                _ => g.uniform(-2.0, 2.0),
            })
            .collect();
        let t = (0..n * cols).map(|_| g.uniform(-1.0, 1.0)).collect();
        let classes = classes.then(|| (0..n).map(|k| (k * 7 % cols) as i64).collect());
        Data {
            x,
            in_f,
            t,
            cols,
            classes,
        }
    }

    fn order(n: usize) -> Vec<usize> {
        let mut g = Generator::new(5);
        g.randperm(n).unwrap()
    }

    fn sgd(lr: f64, momentum: f64, dampening: f64, weight_decay: f64, nesterov: bool) -> Optimizer {
        SGD {
            lr,
            momentum,
            dampening,
            weight_decay,
            nesterov,
        }
        .into()
    }

    fn mlp(widths: &[usize], act: Activation, bias: bool) -> Vec<Spec> {
        let mut s = vec![];
        for (k, w) in widths.windows(2).enumerate() {
            s.push(Spec::Linear(w[0], w[1], bias || k % 2 == 1));
            if k + 2 < widths.len() {
                s.push(Spec::Act(act));
            }
        }
        s
    }

    /// Three epochs on the general path and on every fused path this CPU runs:
    /// the same losses and the same bits everywhere.
    fn same_bits(specs: &[Spec], loss: Loss, rule: Optimizer, d: &Data, batch: usize) {
        same_bits_with(specs, loss, Reduction::Mean, rule, d, batch)
    }

    fn same_bits_with(
        specs: &[Spec],
        loss: Loss,
        reduction: Reduction,
        rule: Optimizer,
        d: &Data,
        batch: usize,
    ) {
        let n = d.x.len() / d.in_f;
        let ord = order(n);
        let mut start = Net::new(specs, loss, 3);
        start.loss = LossState::new(loss, reduction);
        let mut general = start.clone();
        let mut want = vec![];
        for _ in 0..3 {
            let r = train_epoch_general(general.epoch(rule, d, &ord, batch));
            want.push(r.map(f64::to_bits).map_err(|e| e.to_string()));
        }
        let want_bits = general.fingerprint();
        let paths = [Path::Portable, Path::Avx2, Path::Avx512];
        let mut ran = 0;
        for path in paths.into_iter().map(Some).chain([None]) {
            let mut net = start.clone();
            let mut got = vec![];
            for _ in 0..3 {
                let mut e = net.epoch(rule, d, &ord, batch);
                let plan = Plan::of(&e).expect("the fused trainer takes this stack");
                let r = match path {
                    Some(p) => match train_epoch_on(p, &plan, &mut e) {
                        Some(r) => r,
                        None => break,
                    },
                    None => crate::training::train_epoch(e),
                };
                got.push(r.map(f64::to_bits).map_err(|e| e.to_string()));
            }
            if got.is_empty() {
                continue; // this CPU lacks the path
            }
            ran += 1;
            assert_eq!(got, want, "epoch losses on {path:?}");
            assert_eq!(
                net.fingerprint(),
                want_bits,
                "state after training on {path:?}"
            );
        }
        assert!(ran >= 2, "at least the portable path and dispatch ran");
    }

    fn relu() -> Activation {
        ReLU::default().into()
    }

    #[test]
    fn the_seed_network_gives_the_general_bits_on_every_path() {
        let d = data(200, 2, 2, false, 1000);
        let rule = sgd(0.1, 0.0, 0.0, 0.0, false);
        let specs = mlp(&[2, 25, 25, 25, 2], relu(), true);
        same_bits(&specs, MSELoss::default().into(), rule, &d, 10);
    }

    #[test]
    fn a_playground_net_with_momentum_and_a_batch_tail_gives_the_same_bits() {
        // 1000 samples at batch 7: a last batch of 6.
        let d = data(1000, 2, 1, false, 9);
        let specs = mlp(&[2, 16, 16, 1], Tanh::default().into(), true);
        let rule = sgd(0.03, 0.9, 0.0, 0.0, true);
        same_bits(&specs, MSELoss::default().into(), rule, &d, 7);
        let rule = sgd(0.03, 0.5, 0.1, 0.01, false);
        same_bits(&specs, MSELoss::default().into(), rule, &d, 7);
        let mse = MSELoss::default().into();
        same_bits_with(&specs, mse, Reduction::Sum, rule, &d, 7);
    }

    #[test]
    fn the_widest_net_with_cross_entropy_gives_the_same_bits() {
        let d = data(60, 2, 2, true, 5);
        let specs = mlp(&[2, 64, 64, 64, 2], relu(), true);
        let ce: Loss = CrossEntropyLoss::default().into();
        same_bits(&specs, ce, sgd(0.05, 0.9, 0.0, 0.0, false), &d, 7);
        // probabilities as targets
        let mut d = data(33, 2, 2, false, 4);
        for v in d.t.iter_mut() {
            *v = v.abs() / 2.0;
        }
        same_bits(&specs, ce, sgd(0.05, 0.0, 0.0, 0.0, false), &d, 8);
    }

    #[test]
    fn other_activations_widths_and_biases_give_the_same_bits() {
        let d = data(50, 3, 3, false, 3);
        for act in [
            Sigmoid::default().into(),
            GELU::default().into(),
            LeakyReLU {
                negative_slope: 0.2,
            }
            .into(),
        ] {
            // bias-free first and third layers; a last layer of width 3
            let specs = mlp(&[3, 9, 17, 5, 3], act, false);
            same_bits(
                &specs,
                MSELoss::default().into(),
                sgd(0.2, 0.0, 0.0, 0.0, false),
                &d,
                4,
            );
        }
        // an activation first, two in a row, an odd batch
        let specs = [
            Spec::Act(Tanh::default().into()),
            Spec::Linear(3, 33, true),
            Spec::Act(relu()),
            Spec::Act(Sigmoid::default().into()),
            Spec::Linear(33, 3, true),
        ];
        same_bits(
            &specs,
            MSELoss::default().into(),
            sgd(0.1, 0.0, 0.0, 0.0, false),
            &d,
            3,
        );
    }

    #[test]
    fn dead_relu_rows_and_signed_zeros_give_the_same_bits() {
        // A first layer whose outputs are all negative: every ReLU row is zero, and
        // the gradients behind it too; inputs hold +0.0 and -0.0.
        let d = data(40, 4, 2, false, 2);
        let specs = mlp(&[4, 8, 8, 2], relu(), true);
        let mut net = Net::new(&specs, MSELoss::default().into(), 3);
        for v in net.values[1].iter_mut() {
            *v = -100.0;
        }
        let rule = sgd(0.1, 0.9, 0.0, 0.0, false);
        let ord = order(40);
        let mut general = net.clone();
        let want = train_epoch_general(general.epoch(rule, &d, &ord, 6)).unwrap();
        for path in [Path::Portable, Path::Avx2, Path::Avx512] {
            let mut fused = net.clone();
            let mut e = fused.epoch(rule, &d, &ord, 6);
            let plan = Plan::of(&e).unwrap();
            let Some(got) = train_epoch_on(path, &plan, &mut e) else {
                continue;
            };
            assert_eq!(got.unwrap().to_bits(), want.to_bits());
            assert_eq!(fused.fingerprint(), general.fingerprint(), "{path:?}");
        }
        // Biases of -0.0, zero inputs and targets: the skipping folds keep -0.0
        // (adding 0 * w would give +0.0), ReLU turns it into +0.0, and the loss's
        // gradient shows the sign.
        let mut d = data(12, 2, 2, false, 1);
        d.t.fill(0.0);
        let ord = order(12);
        let rule = sgd(0.0, 0.0, 0.0, 0.0, false);
        for specs in [
            vec![Spec::Linear(2, 2, true)],
            vec![Spec::Linear(2, 2, true), Spec::Act(relu())],
            vec![
                Spec::Linear(2, 3, true),
                Spec::Act(
                    LeakyReLU {
                        negative_slope: 0.5,
                    }
                    .into(),
                ),
                Spec::Linear(3, 2, true),
            ],
        ] {
            let mut net = Net::new(&specs, MSELoss::default().into(), 4);
            for (k, v) in net.values.iter_mut().enumerate() {
                v.fill(if k % 2 == 1 { -0.0 } else { 0.5 });
            }
            let mut general = net.clone();
            train_epoch_general(general.epoch(rule, &d, &ord, 5)).unwrap();
            let want = general.fingerprint();
            for path in [Path::Portable, Path::Avx2, Path::Avx512] {
                let mut fused = net.clone();
                let mut e = fused.epoch(rule, &d, &ord, 5);
                let plan = Plan::of(&e).unwrap();
                if let Some(r) = train_epoch_on(path, &plan, &mut e) {
                    r.unwrap();
                    assert_eq!(fused.fingerprint(), want, "{path:?}");
                }
            }
        }
    }

    #[test]
    fn a_failing_step_leaves_the_state_of_the_general_path() {
        // A class index out of range at some sample: the epoch stops at that step.
        let mut d = data(30, 2, 2, true, 1000);
        if let Some(k) = d.classes.as_mut() {
            k[17] = 5;
        }
        let specs = mlp(&[2, 6, 2], relu(), true);
        same_bits(
            &specs,
            CrossEntropyLoss::default().into(),
            sgd(0.1, 0.9, 0.0, 0.0, false),
            &d,
            4,
        );
    }

    #[test]
    fn stacks_it_cannot_take_run_the_general_path() {
        let d = data(20, 2, 2, false, 1000);
        let ord = order(20);
        let mse: Loss = MSELoss::default().into();
        let takes = |specs: &[Spec], rule: Optimizer| {
            let mut net = Net::new(specs, mse, 3);
            let e = net.epoch(rule, &d, &ord, 5);
            Plan::of(&e).is_some()
        };
        let plain = sgd(0.1, 0.0, 0.0, 0.0, false);
        assert!(takes(&mlp(&[2, 64, 2], relu(), true), plain));
        assert!(!takes(&mlp(&[2, 65, 2], relu(), true), plain), "width 65");
        let adam: Optimizer = Adam {
            weight_decay: 0.01,
            ..Adam::default()
        }
        .into();
        assert!(!takes(&mlp(&[2, 8, 2], relu(), true), adam), "Adam");
        let softmax = [
            Spec::Linear(2, 4, true),
            Spec::Act(Softmax::default().into()),
            Spec::Linear(4, 2, true),
        ];
        assert!(!takes(&softmax, plain), "Softmax");
        // regularized
        let mut net = Net::new(&mlp(&[2, 8, 2], relu(), true), mse, 3);
        let mut e = net.epoch(plain, &d, &ord, 5);
        e.regularized[0] = true;
        assert!(Plan::of(&e).is_none(), "Regularized");
        // a state that does not fit: the rule's own error, on the general path
        let mut net = Net::new(&mlp(&[2, 8, 2], relu(), true), mse, 3);
        net.states[0].buffers[0] = Some(vec![0.0; 3]);
        let e = net.epoch(sgd(0.1, 0.9, 0.0, 0.0, false), &d, &ord, 5);
        assert!(
            Plan::of(&e).is_none(),
            "a momentum buffer of the wrong size"
        );
        let err = crate::training::train_epoch(e).unwrap_err().to_string();
        assert!(err.contains("does not fit"), "{err}");
    }

    /// The time of a step of the seed network, 2-16-16-1 and 2-64-64-64-2, at
    /// batches 10 and 100, on each fused path and on the general path (`None`),
    /// the best of 20 runs of 4 epochs: `cargo test --release step_times --
    /// --ignored --nocapture`.
    #[test]
    #[ignore]
    fn step_times() {
        let ord = order(1000);
        for widths in [
            &[2, 25, 25, 25, 2][..],
            &[2, 16, 16, 1],
            &[2, 64, 64, 64, 2],
        ] {
            let specs = mlp(widths, relu(), true);
            let d = data(1000, 2, widths[widths.len() - 1], false, 1000);
            for batch in [10, 100] {
                let paths = [
                    Some(Path::Avx512),
                    Some(Path::Avx2),
                    Some(Path::Portable),
                    None,
                ];
                for path in paths {
                    let mut net = Net::new(&specs, MSELoss::default().into(), 3);
                    let mut best = f64::MAX;
                    for _ in 0..20 {
                        let t0 = std::time::Instant::now();
                        for _ in 0..4 {
                            let rule = sgd(0.1, 0.0, 0.0, 0.0, false);
                            let mut e = net.epoch(rule, &d, &ord, batch);
                            let plan = Plan::of(&e).unwrap();
                            match path {
                                Some(p) => {
                                    if train_epoch_on(p, &plan, &mut e).is_none() {
                                        break;
                                    }
                                }
                                None => {
                                    train_epoch_general(e).unwrap();
                                }
                            }
                        }
                        let steps = 4.0 * (1000 / batch) as f64;
                        best = best.min(t0.elapsed().as_secs_f64() / steps * 1e6);
                    }
                    println!("{widths:?} batch {batch} {path:?}: {best:.3} µs a step");
                }
            }
        }
    }

    #[test]
    fn the_fused_trainer_counts_its_steps() {
        let d = data(20, 2, 2, false, 1000);
        let mut net = Net::new(&mlp(&[2, 8, 2], relu(), true), MSELoss::default().into(), 3);
        let before = steps_run();
        let ord = order(20);
        let e = net.epoch(sgd(0.1, 0.0, 0.0, 0.0, false), &d, &ord, 6);
        crate::training::train_epoch(e).unwrap();
        // other tests run in parallel and add theirs
        assert!(steps_run() >= before + 4);
    }
}
