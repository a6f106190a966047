//! The layer family's kernels, mirroring `pyfw/modules.py`: `Linear` and `Dropout`,
//! the family's table (`layer_table!`), and the one stack runner ([`Stack`]).
//!
//! The kernels are free functions over row-major slices, so that the binding
//! layer runs them on the live storage of Python-visible tensors. Each layer
//! also has a small state struct (`LinearState`, `DropoutState`) that keeps what
//! `backward` needs in plain buffers; the bindings hold one per Python object.
//! A [`Layer`] lends any of them, with its parameter slots in table order, to
//! the [`Stack`], which runs a stack of layers for both the native `Sequential`
//! and the native epoch of `fit`; it is the only code that dispatches on the
//! kind of a layer.
//!
//! Linear, for `g = dL/dy` (docs/NUMERICS.md, "Linear"):
//!
//! ```text
//! y = x W^T + b,   dL/dW += g^T x,   dL/db += sum over the batch of g,   dL/dx = g W
//! ```
//!
//! Every sum is a left fold in increasing index order that skips the terms whose
//! first factor is exactly zero. Each loop nest keeps that order for every output
//! element and runs its innermost loop across independent outputs (contiguous in
//! memory), so the compiler vectorizes it without changing any result.

use crate::activations::ActState;
use crate::conv_layers::{ConvState, PoolState, UpsampleState};
use crate::error::{
    check_grad, checked_size, copy_into, pooled_zeros, recycle, try_zeros, Error, Owner, Result,
};
use crate::generator::Generator;
use crate::simd::dispatch;
use crate::tensor::{normalize_dim, Shape};

/// The sizes of one Linear call: `x` is (batch, in_f), `W` is (out_f, in_f).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    /// Samples in the batch.
    pub batch: usize,
    /// Input features.
    pub in_f: usize,
    /// Output features.
    pub out_f: usize,
}

/// `Linear(in -> out)`, the name used in error messages.
pub fn linear_name(in_features: usize, out_features: usize) -> String {
    format!("Linear({in_features} -> {out_features})")
}

/// The initial `(weight, bias)` of `Linear(in, out)`: U(-k, k) with `k = 1 / sqrt(in)`,
/// each value `lo + span * random()` with `lo = -k` and `span = k - lo`; all of the
/// weight in row-major order, then the bias (none, and no draw, without `bias`).
pub fn linear_init(
    g: &mut Generator,
    in_features: usize,
    out_features: usize,
    bias: bool,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let who = linear_name(in_features, out_features);
    let n = checked_size(in_features, out_features, &who)?;
    let mut w = try_zeros(n, &who)?;
    let mut b = try_zeros(if bias { out_features } else { 0 }, &who)?;
    let k = 1.0 / (in_features as f64).sqrt();
    let lo = -k;
    let span = k - lo;
    for v in w.iter_mut() {
        *v = lo + span * g.random();
    }
    for v in b.iter_mut() {
        *v = lo + span * g.random();
    }
    Ok((w, b))
}

/// Check a Linear input shape `(..., in)` of any rank; returns the batch size, the
/// number of rows of all dims but the last.
pub fn check_linear_input(in_features: usize, out_features: usize, shape: Shape) -> Result<usize> {
    let c = shape.cols();
    if c != in_features {
        return Err(Error::Value(format!(
            "{}: expected input with {in_features} columns, got {c} (input shape {shape})",
            linear_name(in_features, out_features)
        )));
    }
    Ok(shape.rows())
}

/// `shape` with its last size replaced by `n`: the output shape `(..., out)` of an input `(..., in)`.
pub fn with_cols(shape: Shape, n: usize) -> Shape {
    let mut dims = [0; crate::tensor::MAX_RANK];
    let d = shape.dims();
    dims[..d.len()].copy_from_slice(d);
    dims[d.len() - 1] = n;
    Shape::new(&dims[..d.len()]).unwrap_or(shape)
}

/// Rows a register tile holds at once: their partial sums stay in registers, and
/// their independent folds hide the latency of the additions.
const TILE_ROWS: usize = 4;

/// The size (in values) up to which a row-major right-hand matrix is read in
/// place: it stays in the first-level cache whatever its row length.
const IN_PLACE: usize = 2048;

/// Scratch space of the Linear kernels, kept between calls so that a step
/// allocates nothing once the sizes are known: the nonzero terms of every row,
/// packed as (index, coefficient) in increasing index order.
#[derive(Clone, Debug, Default)]
pub struct Terms {
    index: Vec<u32>,
    coef: Vec<f64>,
    len: Vec<usize>,
    panel: Vec<f64>,
}

impl Terms {
    /// Pack, for every row `m < rows`, the `k < depth` with `a(m, k) != 0.0`, in
    /// increasing order. Branch-free: ReLU makes the zero pattern unpredictable,
    /// and a mispredicted branch per term would cost more than the term itself.
    #[inline(always)]
    fn pack(&mut self, rows: usize, depth: usize, a: impl Fn(usize, usize) -> f64) {
        let n = rows * depth;
        if self.index.len() < n {
            self.index.resize(n, 0);
            self.coef.resize(n, 0.0);
        }
        self.len.clear();
        self.len.resize(rows, 0);
        for m in 0..rows {
            let index = &mut self.index[m * depth..(m + 1) * depth];
            let coef = &mut self.coef[m * depth..(m + 1) * depth];
            let mut t = 0;
            let mut k = 0;
            // Four at a time: each is written where it goes if it is nonzero (a
            // zero is overwritten by what follows), so the running count is the
            // only dependency from one group to the next.
            while k + 4 <= depth {
                let v = [a(m, k), a(m, k + 1), a(m, k + 2), a(m, k + 3)];
                let f = v.map(|x| usize::from(x != 0.0));
                let at = [t, t + f[0], t + f[0] + f[1], t + f[0] + f[1] + f[2]];
                for i in 0..4 {
                    index[at[i]] = (k + i) as u32;
                    coef[at[i]] = v[i];
                }
                t = at[3] + f[3];
                k += 4;
            }
            for k in k..depth {
                let v = a(m, k);
                index[t] = k as u32;
                coef[t] = v;
                t += usize::from(v != 0.0);
            }
            self.len[m] = t;
        }
    }
}

thread_local! {
    /// The scratch space of the Linear kernels on this thread.
    static TERMS: std::cell::RefCell<Terms> = std::cell::RefCell::new(Terms::default());
}

/// Run `f` with this thread's scratch space (a fresh one if it is in use).
pub fn with_terms<T>(f: impl FnOnce(&mut Terms) -> T) -> T {
    TERMS.with(|t| match t.try_borrow_mut() {
        Ok(mut t) => f(&mut t),
        Err(_) => f(&mut Terms::default()),
    })
}

/// The first `W` values of `s` as an array (`s` has at least `W`).
#[inline(always)]
fn lanes<const W: usize>(s: &[f64]) -> [f64; W] {
    let mut a = [0.0; W];
    a.copy_from_slice(&s[..W]);
    a
}

/// `acc[l] = acc[l] + v * s[l]` for every lane `l` (`s` has exactly `W` values).
#[inline(always)]
fn axpy<const W: usize>(acc: &mut [f64; W], v: f64, s: &[f64]) {
    let s = lanes::<W>(s);
    for l in 0..W {
        acc[l] += v * s[l];
    }
}

/// The right-hand matrix of [`skip_gemm`], (depth, cols), in either layout.
#[derive(Clone, Copy)]
pub(crate) enum Right<'a> {
    /// Row-major: `b[k][j]` at `k * cols + j`.
    Rows(&'a [f64]),
    /// Stored transposed, as (cols, depth): `b[k][j]` at `j * depth + k`. A
    /// Linear's weight (out, in) is the (in, out) matrix of the forward pass.
    Cols(&'a [f64]),
}

/// The one loop nest of the Linear kernels, a matrix product that skips zeros:
/// for every row `m < rows` and column `j < cols`, in place,
///
/// ```text
/// c[m][j] = c[m][j] + a(m, k) * b[k][j]   for k in 0..depth, in increasing order,
/// ```
///
/// skipping the `k` whose `a(m, k)` is exactly zero, each `c[m][j]` its own left
/// fold. `b` is (depth, cols) and `c` (rows, cols), row-major. The work runs over
/// tiles of [`TILE_ROWS`] rows by `W` columns (independent outputs, so the
/// compiler vectorizes across columns without changing a result), with the rows
/// blocked for the cache. `W` is the width a SIMD path chooses; every `W` gives
/// the same bits.
#[inline(always)]
pub(crate) fn skip_gemm<const W: usize>(
    (rows, depth, cols): (usize, usize, usize),
    a: impl Fn(usize, usize) -> f64,
    right: Right<'_>,
    c: &mut [f64],
    terms: &mut Terms,
) {
    terms.pack(rows, depth, a);
    if terms.panel.len() < depth * W {
        terms.panel.resize(depth * W, 0.0);
    }
    let g = Gemm {
        rows,
        depth,
        cols,
        right,
    };
    let mut j0 = 0;
    while j0 + W <= cols {
        g.block::<W>(j0, c, terms);
        j0 += W;
    }
    // The last columns, in narrower blocks of the same loop nest.
    if W > 8 && cols - j0 >= 8 {
        g.block::<8>(j0, c, terms);
        j0 += 8;
    }
    if W > 4 && cols - j0 >= 4 {
        g.block::<4>(j0, c, terms);
        j0 += 4;
    }
    if W > 2 && cols - j0 >= 2 {
        g.block::<2>(j0, c, terms);
        j0 += 2;
    }
    if j0 < cols {
        g.block::<1>(j0, c, terms);
    }
}

/// The sizes and the right-hand matrix of one [`skip_gemm`].
struct Gemm<'a> {
    rows: usize,
    depth: usize,
    cols: usize,
    right: Right<'a>,
}

impl Gemm<'_> {
    /// Columns `j0..j0 + W` of every row of `c`.
    #[inline(always)]
    fn block<const W: usize>(&self, j0: usize, c: &mut [f64], terms: &mut Terms) {
        let Gemm {
            rows,
            depth,
            cols,
            right,
        } = *self;
        let Terms {
            index,
            coef,
            len,
            panel,
        } = terms;
        let row_terms = |m: usize| {
            let at = m * depth;
            (&index[at..at + len[m]], &coef[at..at + len[m]])
        };
        // Columns j0..j0 + W of the right-hand matrix: read in place when it is
        // row-major and small enough to stay in the first-level cache, else
        // copied into a contiguous panel (depth, W) that every row reads.
        let (b, stride, off): (&[f64], usize, usize) = match right {
            Right::Rows(src) if depth * cols <= IN_PLACE => (src, cols, j0),
            Right::Rows(src) => {
                let p = &mut panel[..depth * W];
                for (k, p) in p.chunks_exact_mut(W).enumerate() {
                    p.copy_from_slice(&src[k * cols + j0..k * cols + j0 + W]);
                }
                (p, W, 0)
            }
            Right::Cols(src) => {
                let p = &mut panel[..depth * W];
                for l in 0..W {
                    let col = &src[(j0 + l) * depth..(j0 + l + 1) * depth];
                    for (k, &v) in col.iter().enumerate() {
                        p[k * W + l] = v;
                    }
                }
                (p, W, 0)
            }
        };
        let lane = |k: usize| &b[k * stride + off..k * stride + off + W];
        let at = |m: usize| m * cols + j0..m * cols + j0 + W;
        let mut m = 0;
        while m + TILE_ROWS <= rows {
            let mut acc = [
                lanes::<W>(&c[at(m)]),
                lanes::<W>(&c[at(m + 1)]),
                lanes::<W>(&c[at(m + 2)]),
                lanes::<W>(&c[at(m + 3)]),
            ];
            let ts = [
                row_terms(m),
                row_terms(m + 1),
                row_terms(m + 2),
                row_terms(m + 3),
            ];
            // The terms all four rows have, interleaved; then each row's remainder.
            let common = ts.iter().map(|t| t.0.len()).fold(depth, usize::min);
            for t in 0..common {
                for r in 0..TILE_ROWS {
                    let k = ts[r].0[t] as usize;
                    axpy(&mut acc[r], ts[r].1[t], lane(k));
                }
            }
            for (r, (ks, vs)) in ts.iter().enumerate() {
                // A local copy: indexing `acc` with `r` would keep the sums in memory.
                let mut a = acc[r];
                for (&k, &v) in ks[common..].iter().zip(&vs[common..]) {
                    axpy(&mut a, v, lane(k as usize));
                }
                c[at(m + r)].copy_from_slice(&a);
            }
            m += TILE_ROWS;
        }
        for m in m..rows {
            let mut acc = lanes::<W>(&c[at(m)]);
            let (ks, vs) = row_terms(m);
            for (&k, &v) in ks.iter().zip(vs) {
                let k = k as usize;
                axpy(&mut acc, v, lane(k));
            }
            c[at(m)].copy_from_slice(&acc);
        }
    }
}

/// `y = x W^T + b` for `x` (batch, in); `y` is (batch, out).
pub struct LinearForward<'a> {
    /// The sizes.
    pub d: Dims,
    /// The input, (batch, in).
    pub x: &'a [f64],
    /// The weight, (out, in).
    pub w: &'a [f64],
    /// The bias, (out,), or empty for none (the sums start at 0.0).
    pub b: &'a [f64],
    /// The output, (batch, out).
    pub y: &'a mut [f64],
    /// Scratch space.
    pub terms: &'a mut Terms,
}

impl LinearForward<'_> {
    /// `y[n][:] = b[:] + x[n][i] * W^T[i][:]` over `i` in order, skipping `x[n][i] == 0`.
    #[inline(always)]
    fn go<const W: usize>(self) {
        let Dims { batch, in_f, out_f } = self.d;
        for yr in self.y.chunks_exact_mut(out_f) {
            if self.b.is_empty() {
                yr.fill(0.0);
            } else {
                yr.copy_from_slice(self.b);
            }
        }
        let x = self.x;
        skip_gemm::<W>(
            (batch, in_f, out_f),
            |n, i| x[n * in_f + i],
            Right::Cols(self.w),
            self.y,
            self.terms,
        );
    }
}

/// Accumulate `dL/dW` into `gw` (out, in) and `dL/db` into `gb` (out,), and write
/// `dL/dx` (batch, in) into `dx` unless it is `None` (a first layer), from the
/// input `x`, the gradient `g` (batch, out) and the weight `w` (out, in).
pub struct LinearBackward<'a> {
    /// The sizes.
    pub d: Dims,
    /// The input of the forward pass, (batch, in).
    pub x: &'a [f64],
    /// `dL/dy`, (batch, out).
    pub g: &'a [f64],
    /// The weight, (out, in).
    pub w: &'a [f64],
    /// The weight gradient, accumulated in place.
    pub gw: &'a mut [f64],
    /// The bias gradient, accumulated in place; empty for no bias.
    pub gb: &'a mut [f64],
    /// `dL/dx`, written.
    pub dx: Option<&'a mut [f64]>,
    /// Scratch space.
    pub terms: &'a mut Terms,
}

impl LinearBackward<'_> {
    #[inline(always)]
    fn go<const W: usize>(self) {
        let Dims { batch, in_f, out_f } = self.d;
        let (x, g, w) = (self.x, self.g, self.w);
        // dL/dW[o][:] = dL/dW[o][:] + g[n][o] * x[n][:] over n in order, skipping g[n][o] == 0.
        if in_f * out_f <= IN_PLACE {
            // Small: sample by sample, a rank-one update of the rows o with g[n][o] != 0;
            // each dW[o][i] still takes its terms in the order of n.
            let t = &mut *self.terms;
            t.pack(batch, out_f, |n, o| g[n * out_f + o]);
            for n in 0..batch {
                let xr = &x[n * in_f..(n + 1) * in_f];
                let at = n * out_f;
                for (&o, &v) in t.index[at..at + t.len[n]].iter().zip(&t.coef[at..]) {
                    let row = &mut self.gw[o as usize * in_f..(o as usize + 1) * in_f];
                    for (a, &xi) in row.iter_mut().zip(xr) {
                        *a += v * xi;
                    }
                }
            }
        } else {
            skip_gemm::<W>(
                (out_f, batch, in_f),
                |o, n| g[n * out_f + o],
                Right::Rows(x),
                self.gw,
                self.terms,
            );
        }
        // dL/db[:] = dL/db[:] + g[n][:] over n in order.
        for gr in g.chunks_exact(out_f) {
            for (a, &v) in self.gb.iter_mut().zip(gr) {
                *a += v;
            }
        }
        // dL/dx[n][:] = 0.0 + g[n][o] * W[o][:] over o in order, skipping g[n][o] == 0.
        if let Some(dx) = self.dx {
            dx.fill(0.0);
            skip_gemm::<W>(
                (batch, out_f, in_f),
                |n, o| g[n * out_f + o],
                Right::Rows(w),
                dx,
                self.terms,
            );
        }
    }
}

/// The tiled kernels (Linear's, and matmul's in `tensor.rs`) run tiles 8 outputs wide, and
/// 16 on the AVX-512 path.
macro_rules! tiled_kernels {
    ($($k:ident),*) => {$(
        impl $crate::simd::Kernel for $k<'_> {
            #[inline(always)]
            fn run(self) {
                self.go::<8>()
            }

            #[inline(always)]
            fn run_wide(self) {
                self.go::<16>()
            }
        }
    )*};
}

tiled_kernels!(LinearForward, LinearBackward);
pub(crate) use tiled_kernels;

/// What a Linear layer keeps between `forward` and `backward`: its sizes and the
/// last input.
#[derive(Clone, Debug, Default)]
pub struct LinearState {
    in_f: usize,
    out_f: usize,
    input: Option<Vec<f64>>,
    /// The shape of the kept input; None for a (batch, in) input kept by `remember`.
    in_shape: Option<Shape>,
    owner: Owner,
}

impl LinearState {
    /// The state of `Linear(in_f -> out_f)` before any forward.
    pub fn new(in_f: usize, out_f: usize) -> LinearState {
        LinearState {
            in_f,
            out_f,
            input: None,
            in_shape: None,
            owner: Owner::default(),
        }
    }

    /// The number of input features.
    pub fn in_features(&self) -> usize {
        self.in_f
    }

    /// The number of output features.
    pub fn out_features(&self) -> usize {
        self.out_f
    }

    /// `Linear(in -> out)`, for error messages.
    pub fn name(&self) -> String {
        linear_name(self.in_f, self.out_f)
    }

    /// `x W^T + b` for `x` of `shape` (..., in), with `w` (out, in) and `b` (out,), over
    /// the rows of all dims but the last; the output is (..., out). Keeps `x` for
    /// `backward`, unless grad mode is off.
    pub fn forward(
        &mut self,
        x: Vec<f64>,
        shape: Shape,
        w: &[f64],
        b: &[f64],
    ) -> Result<(Vec<f64>, Shape)> {
        let batch = check_linear_input(self.in_f, self.out_f, shape)?;
        let d = Dims {
            batch,
            in_f: self.in_f,
            out_f: self.out_f,
        };
        let mut y = pooled_zeros(checked_size(batch, d.out_f, "Linear")?, "Linear")?;
        with_terms(|terms| {
            dispatch(LinearForward {
                d,
                x: &x,
                w,
                b,
                y: &mut y,
                terms,
            })
        });
        // Under no_grad, nothing is kept and the last input is dropped.
        let kept = self.owner.forward().then_some(x);
        if let Some(old) = std::mem::replace(&mut self.input, kept) {
            recycle(old);
        }
        self.in_shape = Some(shape);
        Ok((y, with_cols(shape, d.out_f)))
    }

    /// Keep `x`, a (batch, in) input, for `backward`, as `forward` does; for a
    /// training loop that ran the kernels on buffers of its own.
    pub fn remember(&mut self, x: &[f64]) -> Result<()> {
        let kept = self.input.get_or_insert_with(Vec::new);
        copy_into(kept, x, "Linear")?;
        self.in_shape = None;
        self.owner.set();
        Ok(())
    }

    /// Accumulate the weight and bias gradients into `gw` and `gb` from `g` of `shape`
    /// (..., out), the output's; returns `dL/dx`, of the input's shape.
    pub fn backward(
        &self,
        g: &[f64],
        shape: Shape,
        w: &[f64],
        gw: &mut [f64],
        gb: &mut [f64],
    ) -> Result<(Vec<f64>, Shape)> {
        let x = self
            .input
            .as_ref()
            .ok_or_else(|| self.owner.not_forwarded(&self.name()))?;
        let batch = x.len() / self.in_f;
        let in_shape = self.in_shape.unwrap_or(Shape::Matrix(batch, self.in_f));
        let out_shape = with_cols(in_shape, self.out_f);
        // The name is formatted only for an error: this runs at every step.
        if self.owner.check("").is_err() || shape != out_shape {
            self.owner.check(&self.name())?;
            check_grad(&self.name(), shape, out_shape)?;
        }
        let mut dx = pooled_zeros(x.len(), "Linear")?;
        let d = Dims {
            batch,
            in_f: self.in_f,
            out_f: self.out_f,
        };
        with_terms(|terms| {
            dispatch(LinearBackward {
                d,
                x,
                g,
                w,
                gw,
                gb,
                dx: Some(&mut dx),
                terms,
            })
        });
        Ok((dx, in_shape))
    }
}

/// Check a dropout probability: `0 <= p < 1`.
pub fn check_dropout_p(p: f64) -> Result<f64> {
    if (0.0..1.0).contains(&p) {
        Ok(p)
    } else {
        Err(Error::Value(format!(
            "Dropout: p must be in [0, 1), got {}",
            crate::tensor::py_float_repr(p)
        )))
    }
}

/// What a Dropout layer keeps between `forward` and `backward`: `p` and the last mask.
#[derive(Clone, Debug)]
pub struct DropoutState {
    p: f64,
    /// The mask of the last forward: empty for the identity; None before any forward.
    mask: Option<(Vec<f64>, Shape)>,
    owner: Owner,
}

impl DropoutState {
    /// `Dropout(p)` with `p` checked.
    pub fn new(p: f64) -> Result<DropoutState> {
        Ok(DropoutState {
            p: check_dropout_p(p)?,
            mask: None,
            owner: Owner::default(),
        })
    }

    /// The probability of zeroing an element.
    pub fn p(&self) -> f64 {
        self.p
    }

    /// Whether a forward in this training mode draws from the generator.
    pub fn draws(&self, training: bool) -> bool {
        training && self.p > 0.0
    }

    /// `y = x * m` with a fresh mask drawn from `rng` (docs/NUMERICS.md, "Dropout");
    /// without a generator (eval mode, or `p = 0`) the identity.
    pub fn forward(
        &mut self,
        mut x: Vec<f64>,
        shape: Shape,
        rng: Option<&mut Generator>,
    ) -> Result<Vec<f64>> {
        let keep = self.owner.forward();
        let Some(g) = rng else {
            self.mask = keep.then(|| (Vec::new(), shape));
            return Ok(x);
        };
        let mut mask = try_zeros(x.len(), "Dropout")?;
        self.draw_mask(g, &mut mask);
        for (v, &m) in x.iter_mut().zip(&mask) {
            *v *= m;
        }
        self.mask = keep.then_some((mask, shape));
        Ok(x)
    }

    /// Fill `mask` with a fresh mask: one draw per element in order, `0.0` when it
    /// is below `p`, else `1 / (1 - p)`.
    pub fn draw_mask(&self, g: &mut Generator, mask: &mut [f64]) {
        let scale = 1.0 / (1.0 - self.p);
        for m in mask.iter_mut() {
            *m = if g.random() < self.p { 0.0 } else { scale };
        }
    }

    /// Keep `mask` (empty for the identity) for inputs of `shape`, as `forward` does;
    /// for a training loop that ran the kernels on buffers of its own.
    pub fn remember(&mut self, mask: &[f64], shape: Shape) -> Result<()> {
        let (kept, s) = self.mask.get_or_insert_with(|| (Vec::new(), shape));
        copy_into(kept, mask, "Dropout")?;
        *s = shape;
        self.owner.set();
        Ok(())
    }

    /// `dx = g * m` with the mask of the last forward.
    pub fn backward(&self, mut g: Vec<f64>, shape: Shape) -> Result<Vec<f64>> {
        let (mask, ms) = self
            .mask
            .as_ref()
            .ok_or_else(|| self.owner.not_forwarded("Dropout"))?;
        self.owner.check("Dropout")?;
        check_grad("Dropout", shape, *ms)?;
        if !mask.is_empty() {
            for (v, &m) in g.iter_mut().zip(mask) {
                *v *= m;
            }
        }
        Ok(g)
    }
}

// ---------------------------------------------------------------- LayerNorm

/// `(x - mean, 1 / sqrt(var + eps))` of one row, into `d` (docs/NUMERICS.md, "LayerNorm").
fn layer_norm_stats(r: &[f64], eps: f64, d: &mut [f64]) -> f64 {
    let c = r.len() as f64;
    let mut acc = 0.0;
    for &v in r {
        acc += v;
    }
    let mean = acc / c;
    for (o, &v) in d.iter_mut().zip(r) {
        *o = v - mean;
    }
    let mut acc = 0.0;
    for &v in d.iter() {
        acc += v * v;
    }
    1.0 / (acc / c + eps).sqrt()
}

/// `y` from `x`, rows of `c` values: each row normalized, times `w`, plus `b`.
pub fn layer_norm_forward(
    x: &[f64],
    c: usize,
    eps: f64,
    w: Option<&[f64]>,
    b: Option<&[f64]>,
    y: &mut [f64],
) {
    for (r, out) in x.chunks_exact(c).zip(y.chunks_exact_mut(c)) {
        let rstd = layer_norm_stats(r, eps, out);
        for o in out.iter_mut() {
            *o *= rstd;
        }
        if let Some(w) = w {
            for (o, &wv) in out.iter_mut().zip(w) {
                *o *= wv;
            }
        }
        if let Some(b) = b {
            for (o, &bv) in out.iter_mut().zip(b) {
                *o += bv;
            }
        }
    }
}

/// Accumulate `gw` and `gb` and write `dx` (unless `None`) from the input `x`
/// and the output gradient `g`, rows of `c` values.
#[allow(clippy::too_many_arguments)]
pub fn layer_norm_backward(
    x: &[f64],
    c: usize,
    eps: f64,
    w: Option<&[f64]>,
    g: &[f64],
    mut gw: Option<&mut [f64]>,
    mut gb: Option<&mut [f64]>,
    mut dx: Option<&mut [f64]>,
) {
    let mut xhat = vec![0.0; c];
    let mut gh = vec![0.0; c];
    for (n, (r, gr)) in x.chunks_exact(c).zip(g.chunks_exact(c)).enumerate() {
        let rstd = layer_norm_stats(r, eps, &mut xhat);
        for v in xhat.iter_mut() {
            *v *= rstd;
        }
        if let Some(gw) = gw.as_deref_mut() {
            for ((a, &gv), &xv) in gw.iter_mut().zip(gr).zip(&xhat) {
                *a += gv * xv;
            }
        }
        if let Some(gb) = gb.as_deref_mut() {
            for (a, &gv) in gb.iter_mut().zip(gr) {
                *a += gv;
            }
        }
        let Some(dx) = dx.as_deref_mut() else {
            continue;
        };
        match w {
            Some(w) => {
                for ((o, &gv), &wv) in gh.iter_mut().zip(gr).zip(w) {
                    *o = gv * wv;
                }
            }
            None => gh.copy_from_slice(gr),
        }
        let (mut s1, mut s2) = (0.0, 0.0);
        for (&gv, &xv) in gh.iter().zip(&xhat) {
            s1 += gv;
            s2 += gv * xv;
        }
        let (m1, m2) = (s1 / c as f64, s2 / c as f64);
        for ((o, &gv), &xv) in dx[n * c..(n + 1) * c].iter_mut().zip(&gh).zip(&xhat) {
            *o = ((gv - m1) - xv * m2) * rstd;
        }
    }
}

/// What a LayerNorm keeps between `forward` and `backward`: its arguments and the last input.
#[derive(Clone, Debug)]
pub struct LayerNormState {
    c: usize,
    eps: f64,
    affine: bool,
    bias: bool,
    input: Option<(Vec<f64>, Shape)>,
    owner: Owner,
}

impl LayerNormState {
    /// `LayerNorm(c, eps, elementwise_affine, bias)` before any forward.
    pub fn new(c: usize, eps: f64, affine: bool, bias: bool) -> LayerNormState {
        LayerNormState {
            c,
            eps,
            affine,
            bias: affine && bias,
            input: None,
            owner: Owner::default(),
        }
    }

    /// The size of the normalized (last) dimension.
    pub fn size(&self) -> usize {
        self.c
    }

    /// `eps`.
    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// Whether it has a weight, and whether it has a bias.
    pub fn slots(&self) -> (bool, bool) {
        (self.affine, self.bias)
    }

    /// `LayerNorm(c)`, for error messages.
    pub fn name(&self) -> String {
        format!("LayerNorm({})", self.c)
    }

    /// Check that an input of `shape` has `c` values in its last dimension.
    pub fn check_input(&self, shape: Shape) -> Result<()> {
        if shape.cols() != self.c {
            return Err(Error::Value(format!(
                "{}: expected an input whose last dimension is {}, got shape {shape}",
                self.name(),
                self.c
            )));
        }
        Ok(())
    }

    /// The output for `x` of `shape`; keeps `x` for `backward`, unless grad mode is off.
    pub fn forward(
        &mut self,
        x: Vec<f64>,
        shape: Shape,
        w: Option<&[f64]>,
        b: Option<&[f64]>,
    ) -> Result<Vec<f64>> {
        self.check_input(shape)?;
        let mut y = try_zeros(x.len(), "LayerNorm")?;
        layer_norm_forward(&x, self.c, self.eps, w, b, &mut y);
        // Under no_grad, nothing is kept and the last input is dropped.
        self.input = self.owner.forward().then_some((x, shape));
        Ok(y)
    }

    /// Keep `x` of `shape` for `backward`, as `forward` does.
    pub fn remember(&mut self, x: &[f64], shape: Shape) -> Result<()> {
        let (kept, s) = self.input.get_or_insert_with(|| (Vec::new(), shape));
        copy_into(kept, x, "LayerNorm")?;
        *s = shape;
        self.owner.set();
        Ok(())
    }

    /// Accumulate the weight and bias gradients from `g` of `shape`; returns dL/dx.
    pub fn backward(
        &self,
        g: &[f64],
        shape: Shape,
        w: Option<&[f64]>,
        gw: Option<&mut [f64]>,
        gb: Option<&mut [f64]>,
    ) -> Result<Vec<f64>> {
        let (x, s) = self
            .input
            .as_ref()
            .ok_or_else(|| self.owner.not_forwarded(&self.name()))?;
        self.owner.check(&self.name())?;
        check_grad(&self.name(), shape, *s)?;
        let mut dx = try_zeros(x.len(), "LayerNorm")?;
        layer_norm_backward(x, self.c, self.eps, w, g, gw, gb, Some(&mut dx));
        Ok(dx)
    }
}

// ---------------------------------------------------------------- Flatten and Unflatten

/// What a reshaping layer does to the shape of its input (docs/NUMERICS.md,
/// "Flatten and Unflatten"); the values pass through unchanged, in row-major order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reshape {
    /// `Flatten(start_dim, end_dim)`: dims `start_dim..=end_dim` merged into one.
    Flatten(i64, i64),
    /// `Unflatten(dim, unflattened_size)`: dim `dim` split into these sizes, one
    /// of which may be `None` (given as -1), inferred.
    Unflatten(i64, Vec<Option<usize>>),
}

impl Reshape {
    /// The class name, which its errors start with.
    pub fn name(&self) -> &'static str {
        match self {
            Reshape::Flatten(..) => "Flatten",
            Reshape::Unflatten(..) => "Unflatten",
        }
    }

    /// The output shape for an input of `shape`.
    pub fn out_shape(&self, shape: Shape) -> Result<Shape> {
        let who = self.name();
        let d = shape.dims();
        let mut sizes = Vec::with_capacity(d.len() + 1);
        match self {
            Reshape::Flatten(start, end) => {
                let s = normalize_dim(*start, d.len(), who)?;
                let e = normalize_dim(*end, d.len(), who)?;
                if s > e {
                    return Err(Error::Value(format!(
                        "{who}: start_dim {start} comes after end_dim {end} (input shape {shape})"
                    )));
                }
                sizes.extend_from_slice(&d[..s]);
                sizes.push(d[s..=e].iter().product());
                sizes.extend_from_slice(&d[e + 1..]);
            }
            Reshape::Unflatten(dim, split) => {
                let k = normalize_dim(*dim, d.len(), who)?;
                let n = d[k];
                let known = split
                    .iter()
                    .flatten()
                    .fold(1usize, |a, &b| a.saturating_mul(b));
                let fits = if split.contains(&None) {
                    n.is_multiple_of(known)
                } else {
                    known == n
                };
                if !fits {
                    return Err(Error::Value(format!(
                        "{who}: unflattened_size {} does not fit dim {dim} of size {n} (input shape {shape})",
                        size_text(split)
                    )));
                }
                sizes.extend_from_slice(&d[..k]);
                sizes.extend(split.iter().map(|v| v.unwrap_or(n / known)));
                sizes.extend_from_slice(&d[k + 1..]);
            }
        }
        Shape::new(&sizes)
    }

    /// Whether it maps every input of shape `(rows, width)` to the same shape,
    /// as a stack's buffers need (a `Flatten` of one dim, an `Unflatten` of the
    /// last dim into itself).
    pub fn keeps_rows(&self, width: usize) -> bool {
        let norm = |d: i64| normalize_dim(d, 2, "").ok();
        match self {
            Reshape::Flatten(s, e) => norm(*s).is_some() && norm(*s) == norm(*e),
            Reshape::Unflatten(d, split) => {
                norm(*d) == Some(1)
                    && matches!(split[..], [None] | [Some(_)])
                    && split[0].is_none_or(|k| k == width)
            }
        }
    }
}

/// `(2, -1)`: sizes as Python writes a tuple of them.
pub fn size_text(sizes: &[Option<usize>]) -> String {
    let parts: Vec<String> = sizes
        .iter()
        .map(|v| v.map_or("-1".to_string(), |n| n.to_string()))
        .collect();
    match parts.len() {
        1 => format!("({},)", parts[0]),
        _ => format!("({})", parts.join(", ")),
    }
}

/// What a `Flatten` or `Unflatten` keeps between `forward` and `backward`: the
/// shapes of its last input and output.
#[derive(Clone, Debug)]
pub struct ReshapeState {
    op: Reshape,
    shapes: Option<(Shape, Shape)>,
    owner: Owner,
}

impl ReshapeState {
    /// The layer doing `op`, before any forward.
    pub fn new(op: Reshape) -> ReshapeState {
        ReshapeState {
            op,
            shapes: None,
            owner: Owner::default(),
        }
    }

    /// What it does to a shape.
    pub fn op(&self) -> &Reshape {
        &self.op
    }

    /// `x` of `shape`, unchanged, and its new shape; keeps both shapes for
    /// `backward`, unless grad mode is off.
    pub fn forward(&mut self, x: Vec<f64>, shape: Shape) -> Result<(Vec<f64>, Shape)> {
        let out = self.op.out_shape(shape)?;
        self.shapes = self.owner.forward().then_some((shape, out));
        Ok((x, out))
    }

    /// Keep the shapes of an input of `shape`, as `forward` does.
    pub fn remember(&mut self, shape: Shape) -> Result<()> {
        self.shapes = Some((shape, self.op.out_shape(shape)?));
        self.owner.set();
        Ok(())
    }

    /// `g` of `shape` (the last output's), unchanged, with the last input's shape.
    pub fn backward(&self, g: Vec<f64>, shape: Shape) -> Result<(Vec<f64>, Shape)> {
        let who = self.op.name();
        let (input, output) = self.shapes.ok_or_else(|| self.owner.not_forwarded(who))?;
        self.owner.check(who)?;
        check_grad(who, shape, output)?;
        Ok((g, input))
    }
}

// ---------------------------------------------------------------- BatchNorm1d

/// The sizes of a BatchNorm1d input: `(n, c)` or `(n, c, l)` (then `l = 1`),
/// channel `k` of sample `i` at position `j` is element `(i * c + k) * l + j`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BnDims {
    /// Samples.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Positions per channel (1 for an `(n, c)` input).
    pub l: usize,
}

impl BnDims {
    /// The values per channel, `n * l`.
    fn m(&self) -> usize {
        self.n * self.l
    }

    /// The indices of channel `k`'s values, sample by sample, position by position.
    fn channel(&self, k: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.n).flat_map(move |i| {
            let at = (i * self.c + k) * self.l;
            at..at + self.l
        })
    }
}

/// The running statistics of a BatchNorm1d: `running_mean` (C,), `running_var`
/// (C,) and `num_batches_tracked` (1,), a float.
pub struct Running<'a> {
    /// `running_mean`.
    pub mean: &'a mut [f64],
    /// `running_var`.
    pub var: &'a mut [f64],
    /// `num_batches_tracked`.
    pub count: &'a mut [f64],
}

/// The `(mean, rstd)` a BatchNorm1d normalizes channel `k` with: `stats[k]` and
/// `stats[c + k]`. In training mode (or without running statistics) from the
/// batch, with the biased variance, updating `running` (docs/NUMERICS.md,
/// "BatchNorm1d"); else from `running`.
pub fn batch_norm_stats(
    x: &[f64],
    d: BnDims,
    eps: f64,
    momentum: Option<f64>,
    batch: bool,
    running: Option<&mut Running<'_>>,
    stats: &mut [f64],
) -> Result<()> {
    let c = d.c;
    if !batch {
        let r = running.expect("eval mode with running statistics");
        for k in 0..c {
            stats[k] = r.mean[k];
            stats[c + k] = 1.0 / (r.var[k] + eps).sqrt();
        }
        return Ok(());
    }
    let m = d.m();
    if m < 2 {
        return Err(Error::Value(format!(
            "BatchNorm1d({c}): expected more than 1 value per channel when training, got {m}"
        )));
    }
    let mut running = running;
    let f = running.as_deref_mut().map(|r| {
        r.count[0] += 1.0;
        momentum.unwrap_or(1.0 / r.count[0])
    });
    for k in 0..c {
        let mut acc = 0.0;
        for i in d.channel(k) {
            acc += x[i];
        }
        let mean = acc / m as f64;
        let mut acc = 0.0;
        for i in d.channel(k) {
            let v = x[i] - mean;
            acc += v * v;
        }
        stats[k] = mean;
        stats[c + k] = 1.0 / (acc / m as f64 + eps).sqrt();
        if let (Some(r), Some(f)) = (running.as_deref_mut(), f) {
            r.mean[k] = (1.0 - f) * r.mean[k] + f * mean;
            r.var[k] = (1.0 - f) * r.var[k] + f * (acc / (m - 1) as f64);
        }
    }
    Ok(())
}

/// `y = ((x - mean) * rstd) * w + b`, channel by channel, with `stats` of [`batch_norm_stats`].
pub fn batch_norm_forward(
    x: &[f64],
    d: BnDims,
    stats: &[f64],
    w: Option<&[f64]>,
    b: Option<&[f64]>,
    y: &mut [f64],
) {
    for k in 0..d.c {
        let (mean, rstd) = (stats[k], stats[d.c + k]);
        for i in d.channel(k) {
            let mut v = (x[i] - mean) * rstd;
            if let Some(w) = w {
                v *= w[k];
            }
            if let Some(b) = b {
                v += b[k];
            }
            y[i] = v;
        }
    }
}

/// Accumulate `gw` and `gb` and write `dx` (unless `None`) from the input `x`, the
/// `stats` it was normalized with and the output gradient `g`; `batch`: the
/// statistics came from the batch, and the gradient flows through them.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward(
    x: &[f64],
    d: BnDims,
    stats: &[f64],
    batch: bool,
    w: Option<&[f64]>,
    g: &[f64],
    mut gw: Option<&mut [f64]>,
    mut gb: Option<&mut [f64]>,
    mut dx: Option<&mut [f64]>,
) {
    let m = d.m() as f64;
    for k in 0..d.c {
        let (mean, rstd) = (stats[k], stats[d.c + k]);
        let wk = w.map(|w| w[k]);
        let (mut s1, mut s2) = (0.0, 0.0);
        for i in d.channel(k) {
            let xhat = (x[i] - mean) * rstd;
            if let Some(gw) = gw.as_deref_mut() {
                gw[k] += g[i] * xhat;
            }
            if let Some(gb) = gb.as_deref_mut() {
                gb[k] += g[i];
            }
            let gh = wk.map_or(g[i], |wv| g[i] * wv);
            s1 += gh;
            s2 += gh * xhat;
        }
        let Some(dx) = dx.as_deref_mut() else {
            continue;
        };
        let (m1, m2) = (s1 / m, s2 / m);
        for i in d.channel(k) {
            let gh = wk.map_or(g[i], |wv| g[i] * wv);
            dx[i] = if batch {
                let xhat = (x[i] - mean) * rstd;
                ((gh - m1) - xhat * m2) * rstd
            } else {
                gh * rstd
            };
        }
    }
}

/// What a BatchNorm1d keeps: its arguments, the statistics of its last forward
/// and, for `backward`, its last input.
#[derive(Clone, Debug)]
pub struct BatchNormState {
    c: usize,
    eps: f64,
    momentum: Option<f64>,
    affine: bool,
    track: bool,
    /// A `BatchNorm2d`: inputs `(N, C, H, W)`, whose `H * W` positions are its `L`.
    two_d: bool,
    /// `(mean, rstd)` per channel of the last forward, and whether from the batch.
    stats: Vec<f64>,
    batch: bool,
    input: Option<(Vec<f64>, Shape)>,
    owner: Owner,
}

impl BatchNormState {
    /// `BatchNorm1d(c, eps, momentum, affine, track_running_stats)` before any forward.
    pub fn new(
        c: usize,
        eps: f64,
        momentum: Option<f64>,
        affine: bool,
        track: bool,
    ) -> BatchNormState {
        BatchNormState {
            c,
            eps,
            momentum,
            affine,
            track,
            two_d: false,
            stats: Vec::new(),
            batch: true,
            input: None,
            owner: Owner::default(),
        }
    }

    /// The same layer as a `BatchNorm2d`, on inputs `(N, C, H, W)`.
    pub fn two_d(mut self) -> BatchNormState {
        self.two_d = true;
        self
    }

    /// Whether it is a `BatchNorm2d`.
    pub fn is_two_d(&self) -> bool {
        self.two_d
    }

    /// `num_features`.
    pub fn size(&self) -> usize {
        self.c
    }

    /// `eps`.
    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// `momentum` (None: the cumulative average).
    pub fn momentum(&self) -> Option<f64> {
        self.momentum
    }

    /// `(affine, track_running_stats)`.
    pub fn flags(&self) -> (bool, bool) {
        (self.affine, self.track)
    }

    /// `BatchNorm1d(c)` or `BatchNorm2d(c)`, for error messages.
    pub fn name(&self) -> String {
        format!("BatchNorm{}d({})", if self.two_d { 2 } else { 1 }, self.c)
    }

    /// The sizes of an input of `shape`: `(N, C)` or `(N, C, L)`; `(N, C, H, W)`
    /// for a `BatchNorm2d`, whose `L` is `H * W`.
    pub fn dims(&self, shape: Shape) -> Result<BnDims> {
        let d = shape.dims();
        if self.two_d {
            return match d {
                [n, c, h, w] if *c == self.c => Ok(BnDims {
                    n: *n,
                    c: *c,
                    l: h * w,
                }),
                _ => Err(Error::Value(format!(
                    "{}: expected an input of shape (N, {c}, H, W), got shape {shape}",
                    self.name(),
                    c = self.c
                ))),
            };
        }
        match d {
            [n, c] | [n, c, _] if *c == self.c => Ok(BnDims {
                n: *n,
                c: *c,
                l: d.get(2).copied().unwrap_or(1),
            }),
            _ => Err(Error::Value(format!(
                "{}: expected an input of shape (N, {c}) or (N, {c}, L), got shape {shape}",
                self.name(),
                c = self.c
            ))),
        }
    }

    /// Normalize `x` (dims `d`) into `y`: from the batch in `training` mode or
    /// without `running` statistics (updating them), else from them.
    #[allow(clippy::too_many_arguments)]
    pub fn run_forward(
        &mut self,
        x: &[f64],
        d: BnDims,
        training: bool,
        running: Option<&mut Running<'_>>,
        w: Option<&[f64]>,
        b: Option<&[f64]>,
        y: &mut [f64],
    ) -> Result<()> {
        self.batch = training || running.is_none();
        if self.batch && d.m() < 2 {
            return Err(Error::Value(format!(
                "{}: expected more than 1 value per channel when training, got {}",
                self.name(),
                d.m()
            )));
        }
        self.stats.resize(2 * self.c, 0.0);
        batch_norm_stats(
            x,
            d,
            self.eps,
            self.momentum,
            self.batch,
            running,
            &mut self.stats,
        )?;
        batch_norm_forward(x, d, &self.stats, w, b, y);
        Ok(())
    }

    /// Accumulate the weight and bias gradients and write `dx` from the input `x`
    /// of the last `run_forward` and the output gradient `g`.
    #[allow(clippy::too_many_arguments)]
    pub fn run_backward(
        &self,
        x: &[f64],
        d: BnDims,
        w: Option<&[f64]>,
        g: &[f64],
        gw: Option<&mut [f64]>,
        gb: Option<&mut [f64]>,
        dx: Option<&mut [f64]>,
    ) {
        batch_norm_backward(x, d, &self.stats, self.batch, w, g, gw, gb, dx);
    }

    /// The output for `x` of `shape`; keeps `x` for `backward`, unless grad mode is off.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &mut self,
        x: Vec<f64>,
        shape: Shape,
        training: bool,
        running: Option<&mut Running<'_>>,
        w: Option<&[f64]>,
        b: Option<&[f64]>,
    ) -> Result<Vec<f64>> {
        let d = self.dims(shape)?;
        let mut y = try_zeros(x.len(), "BatchNorm1d")?;
        self.run_forward(&x, d, training, running, w, b, &mut y)?;
        self.input = self.owner.forward().then_some((x, shape));
        Ok(y)
    }

    /// Keep `x` of `shape` for `backward`, as `forward` does.
    pub fn remember(&mut self, x: &[f64], shape: Shape) -> Result<()> {
        let (kept, s) = self.input.get_or_insert_with(|| (Vec::new(), shape));
        copy_into(kept, x, "BatchNorm1d")?;
        *s = shape;
        self.owner.set();
        Ok(())
    }

    /// Accumulate the weight and bias gradients from `g` of `shape`; returns dL/dx.
    pub fn backward(
        &self,
        g: &[f64],
        shape: Shape,
        w: Option<&[f64]>,
        gw: Option<&mut [f64]>,
        gb: Option<&mut [f64]>,
    ) -> Result<Vec<f64>> {
        let (x, s) = self
            .input
            .as_ref()
            .ok_or_else(|| self.owner.not_forwarded(&self.name()))?;
        self.owner.check(&self.name())?;
        check_grad(&self.name(), shape, *s)?;
        let d = self.dims(*s)?;
        let mut dx = try_zeros(x.len(), "BatchNorm1d")?;
        self.run_backward(x, d, w, g, gw, gb, Some(&mut dx));
        Ok(dx)
    }
}

// ---------------------------------------------------------------- the family's table

/// The members of the family. `layer_table!(m)` calls the macro `m` with one line
/// per member: `Name [parameter slots] [buffer slots] "(python signature)";`.
/// The slots are the member's `state_dict` keys, in order (a slot a member may
/// leave out, as `bias=False`, is listed); the signature is its constructor's,
/// as `pyfw` and the stub write it. The convolution family (`Conv1d` to
/// `Upsample`) are classes of `pyfw/conv.py` over the native `_SpatialLayer`
/// (`rust/bindings/conv.rs`), the others native classes.
#[macro_export]
macro_rules! layer_table {
    ($callback:ident) => {
        $callback! {
            /// `y = x W^T + b`.
            Linear ["weight", "bias"] [] "(in_features, out_features, bias=True, generator=None)";
            /// `y = x * m` with a fresh mask in training mode; the identity in eval mode.
            Dropout [] [] "(p=0.5, generator=None)";
            /// Each row normalized over its last dimension, times `weight`, plus `bias`.
            LayerNorm ["weight", "bias"] [] "(normalized_shape, eps=1e-05, elementwise_affine=True, bias=True)";
            /// Dims `start_dim..=end_dim` merged into one; the values unchanged.
            Flatten [] [] "(start_dim=1, end_dim=-1)";
            /// Dim `dim` split into `unflattened_size`; the values unchanged.
            Unflatten [] [] "(dim, unflattened_size)";
            /// Each channel normalized over the batch (training) or by the running statistics (eval).
            BatchNorm1d ["weight", "bias"] ["running_mean", "running_var", "num_batches_tracked"] "(num_features, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)";
            /// `BatchNorm1d` on `(N, C, H, W)`: each channel over its `N * H * W` values.
            BatchNorm2d ["weight", "bias"] ["running_mean", "running_var", "num_batches_tracked"] "(num_features, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)";
            /// A 1-D convolution over `(N, C, L)`: `Conv2d`'s kernel with a height of 1.
            Conv1d ["weight", "bias"] [] "(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True, padding_mode='zeros', generator=None)";
            /// A 2-D convolution over `(N, C, H, W)`.
            Conv2d ["weight", "bias"] [] "(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True, padding_mode='zeros', generator=None)";
            /// The input gradient of a `Conv2d`, as a layer; weight `(in, out, kH, kW)`.
            ConvTranspose2d ["weight", "bias"] [] "(in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1, bias=True, dilation=1, padding_mode='zeros', generator=None)";
            /// The maximum of each window over `(N, C, H, W)`, the padding being -inf.
            MaxPool2d [] [] "(kernel_size, stride=None, padding=0)";
            /// The mean of each window over `(N, C, H, W)`, the zero padding counted.
            AvgPool2d [] [] "(kernel_size, stride=None, padding=0)";
            /// Nearest upsampling of `(N, C, H, W)` by an integer factor.
            Upsample [] [] "(size=None, scale_factor=None, mode='nearest', align_corners=None, recompute_scale_factor=None)";
            /// The container: its children in order.
            Sequential [] [] "(*modules)";
        }
    };
}

/// One member of the layer family as its table line lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerInfo {
    /// The class name.
    pub name: &'static str,
    /// The parameter slots, in `state_dict` order.
    pub params: &'static [&'static str],
    /// The buffer slots, in `state_dict` order.
    pub buffers: &'static [&'static str],
    /// The constructor's Python signature.
    pub signature: &'static str,
}

macro_rules! layer_infos {
    ($($(#[$doc:meta])* $name:ident [$($p:literal),*] [$($b:literal),*] $sig:literal;)*) => {
        /// The members, in table order.
        pub const LAYERS: &[LayerInfo] = &[$(LayerInfo {
            name: stringify!($name),
            params: &[$($p),*],
            buffers: &[$($b),*],
            signature: $sig,
        }),*];
    };
}
crate::layer_table!(layer_infos);

// ---------------------------------------------------------------- the stack runner

/// A parameter slot of a layer, borrowed for a run: its values and its gradient.
pub struct Slot<'a> {
    /// The values.
    pub value: &'a mut [f64],
    /// The gradient, accumulated by `backward`.
    pub grad: &'a mut [f64],
}

/// The most parameter slots a layer has (a `weight` and a `bias`).
pub const MAX_SLOTS: usize = 2;

/// A layer's parameter slots, in the order of its table line: a fixed array, so
/// that lending a layer to the runner allocates nothing. It reads as a slice of
/// the slots that are there.
pub struct Slots<'a> {
    slots: [Slot<'a>; MAX_SLOTS],
    len: usize,
}

impl<'a> Slots<'a> {
    /// No slots.
    pub fn new() -> Slots<'a> {
        Slots {
            slots: std::array::from_fn(|_| Slot {
                value: &mut [],
                grad: &mut [],
            }),
            len: 0,
        }
    }

    /// Add `slot` after the others; a layer has at most [`MAX_SLOTS`].
    pub fn push(&mut self, slot: Slot<'a>) {
        assert!(
            self.len < MAX_SLOTS,
            "a layer has at most {MAX_SLOTS} parameter slots"
        );
        self.slots[self.len] = slot;
        self.len += 1;
    }
}

impl Default for Slots<'_> {
    fn default() -> Self {
        Slots::new()
    }
}

impl<'a> FromIterator<Slot<'a>> for Slots<'a> {
    fn from_iter<I: IntoIterator<Item = Slot<'a>>>(iter: I) -> Self {
        let mut out = Slots::new();
        for s in iter {
            out.push(s);
        }
        out
    }
}

impl<'a> std::ops::Deref for Slots<'a> {
    type Target = [Slot<'a>];
    fn deref(&self) -> &[Slot<'a>] {
        &self.slots[..self.len]
    }
}

impl<'a> std::ops::DerefMut for Slots<'a> {
    fn deref_mut(&mut self) -> &mut [Slot<'a>] {
        &mut self.slots[..self.len]
    }
}

/// What runs one layer of a stack: its kernel state, borrowed from its module.
pub enum LayerKind<'a> {
    /// A `Linear`; its slots are `weight` (out, in) and `bias` (out,).
    Linear(&'a mut LinearState),
    /// Any member of the activation family.
    Activation(&'a mut ActState),
    /// A `Dropout`, and the index in the runner's generators of the one it
    /// draws from, or `None` when it is the identity (eval mode, or `p = 0`).
    Dropout(&'a mut DropoutState, Option<usize>),
    /// A `LayerNorm`; its slots are those of `weight` and `bias` it has.
    LayerNorm(&'a mut LayerNormState),
    /// A `Flatten` or an `Unflatten`.
    Reshape(&'a mut ReshapeState),
    /// A `BatchNorm1d`, whether it is in training mode, and its running
    /// statistics (None without `track_running_stats`); its slots are those
    /// of `weight` and `bias` it has.
    BatchNorm(&'a mut BatchNormState, bool, Option<Running<'a>>),
    /// A `Conv1d`, `Conv2d` or `ConvTranspose2d`; its slots are `weight` and, if
    /// it has one, `bias`.
    Conv(&'a mut ConvState),
    /// A `MaxPool2d` or an `AvgPool2d`.
    Pool(&'a mut PoolState),
    /// A nearest `Upsample`.
    Upsample(&'a mut UpsampleState),
}

/// A Linear's `weight` slot and its bias gradient (empty without a bias).
fn linear_slots<'s, 'a>(params: &'s mut [Slot<'a>]) -> (&'s mut Slot<'a>, &'s mut [f64]) {
    let (w, rest) = params.split_first_mut().expect("a Linear has a weight");
    let gb = rest.first_mut().map_or(&mut [][..], |s| &mut *s.grad);
    (w, gb)
}

/// The values of the optional `weight` and `bias` slots, which are there as `has` says.
fn weight_bias<'s>(
    params: &'s [Slot<'_>],
    has: (bool, bool),
) -> (Option<&'s [f64]>, Option<&'s [f64]>) {
    let mut it = params.iter().map(|s| &*s.value);
    let w = if has.0 { it.next() } else { None };
    let b = if has.1 { it.next() } else { None };
    (w, b)
}

/// The optional `weight` slot's values and the gradients of `weight` and `bias`.
#[allow(clippy::type_complexity)]
fn weight_grads<'s>(
    params: &'s mut [Slot<'_>],
    has: (bool, bool),
) -> (
    Option<&'s [f64]>,
    Option<&'s mut [f64]>,
    Option<&'s mut [f64]>,
) {
    let mut it = params.iter_mut();
    let (w, gw) = match if has.0 { it.next() } else { None } {
        Some(s) => (Some(&*s.value), Some(&mut *s.grad)),
        None => (None, None),
    };
    let gb = match if has.1 { it.next() } else { None } {
        Some(s) => Some(&mut *s.grad),
        None => None,
    };
    (w, gw, gb)
}

/// One layer of a stack: its kernel state and its parameter slots, in the
/// order of its table line.
pub struct Layer<'a> {
    /// The kernel state.
    pub kind: LayerKind<'a>,
    /// The parameter slots.
    pub params: Slots<'a>,
}

impl Layer<'_> {
    /// The output shape for an input of `shape`, or the error its forward would raise.
    pub fn out_shape(&self, shape: Shape) -> Result<Shape> {
        match &self.kind {
            LayerKind::Linear(s) => {
                check_linear_input(s.in_features(), s.out_features(), shape)?;
                Ok(with_cols(shape, s.out_features()))
            }
            LayerKind::Activation(_) | LayerKind::Dropout(..) => Ok(shape),
            LayerKind::LayerNorm(s) => s.check_input(shape).map(|()| shape),
            LayerKind::BatchNorm(s, ..) => s.dims(shape).map(|_| shape),
            LayerKind::Reshape(s) => s.op().out_shape(shape),
            LayerKind::Conv(s) => s.out_shape(shape),
            LayerKind::Pool(s) => s.out_shape(shape),
            LayerKind::Upsample(s) => s.out_shape(shape),
        }
    }

    /// The name its kernel errors start with, when a subclass's name should
    /// replace it (`None`: the errors name the layer's sizes).
    pub fn kind_name(&self) -> Option<&'static str> {
        match &self.kind {
            LayerKind::Linear(_)
            | LayerKind::LayerNorm(_)
            | LayerKind::BatchNorm(..)
            | LayerKind::Conv(_)
            | LayerKind::Pool(_)
            | LayerKind::Upsample(_) => None,
            LayerKind::Activation(a) => Some(a.kind().name()),
            LayerKind::Dropout(..) => Some("Dropout"),
            LayerKind::Reshape(s) => Some(s.op().name()),
        }
    }

    /// Multiply-adds of a forward on an input of `numel` elements (`backward`
    /// false), or of a backward from a gradient of `numel` elements.
    pub fn work(&self, numel: usize, backward: bool) -> usize {
        match &self.kind {
            LayerKind::Linear(s) if backward => numel.saturating_mul(s.in_features()),
            LayerKind::Linear(s) => numel.saturating_mul(s.out_features()),
            LayerKind::Conv(s) => {
                let c = s.config();
                let k = c.kernel.0 * c.kernel.1;
                numel.saturating_mul(k.saturating_mul(c.out_channels.max(c.in_channels)))
            }
            LayerKind::Pool(_) | LayerKind::Upsample(_) => numel,
            _ => 0,
        }
    }

    /// Forward on `x` of `shape`, keeping what `backward_kept` needs in the
    /// layer's own state; replaces `x` and `shape` by the output and its shape
    /// (in place: a shape is 136 bytes, and this runs for every layer of every call).
    pub fn forward_kept(
        &mut self,
        x: &mut Vec<f64>,
        shape: &mut Shape,
        gens: &mut [&mut Generator],
    ) -> Result<()> {
        let input = std::mem::take(x);
        match &mut self.kind {
            LayerKind::Linear(s) => {
                let b = self.params.get(1).map_or(&[][..], |s| &*s.value);
                (*x, *shape) = s.forward(input, *shape, self.params[0].value, b)?;
            }
            LayerKind::Activation(a) => *x = a.forward(input, *shape)?,
            LayerKind::Dropout(d, gen) => {
                let g = gen.map(|i| &mut *gens[i]);
                *x = d.forward(input, *shape, g)?;
            }
            LayerKind::LayerNorm(s) => {
                let (w, b) = weight_bias(&self.params, s.slots());
                *x = s.forward(input, *shape, w, b)?;
            }
            LayerKind::Reshape(s) => (*x, *shape) = s.forward(input, *shape)?,
            LayerKind::BatchNorm(s, training, running) => {
                let has = (s.flags().0, s.flags().0);
                let (w, b) = weight_bias(&self.params, has);
                *x = s.forward(input, *shape, *training, running.as_mut(), w, b)?;
            }
            LayerKind::Conv(s) => {
                let b = self.params.get(1).map(|s| &*s.value);
                (*x, *shape) = s.forward(input, *shape, self.params[0].value, b)?;
            }
            LayerKind::Pool(s) => (*x, *shape) = s.forward(&input, *shape)?,
            LayerKind::Upsample(s) => (*x, *shape) = s.forward(&input, *shape)?,
        }
        Ok(())
    }

    /// Backward from `g` of `shape` with what the last `forward_kept` kept:
    /// accumulates the parameter gradients and replaces `g` and `shape` by
    /// dL/dx and its shape.
    pub fn backward_kept(&mut self, g: &mut Vec<f64>, shape: &mut Shape) -> Result<()> {
        match &mut self.kind {
            // The gradient just consumed goes back to the pool for the next layer's.
            LayerKind::Linear(s) => {
                let (w, gb) = linear_slots(&mut self.params);
                let (dx, dx_shape) = s.backward(g, *shape, w.value, w.grad, gb)?;
                recycle(std::mem::replace(g, dx));
                *shape = dx_shape;
            }
            LayerKind::Activation(a) => {
                let dx = a.backward(g, *shape)?;
                recycle(std::mem::replace(g, dx));
            }
            LayerKind::Dropout(d, _) => *g = d.backward(std::mem::take(g), *shape)?,
            LayerKind::LayerNorm(s) => {
                let (w, gw, gb) = weight_grads(&mut self.params, s.slots());
                *g = s.backward(g, *shape, w, gw, gb)?;
            }
            LayerKind::Reshape(s) => (*g, *shape) = s.backward(std::mem::take(g), *shape)?,
            LayerKind::BatchNorm(s, ..) => {
                let has = (s.flags().0, s.flags().0);
                let (w, gw, gb) = weight_grads(&mut self.params, has);
                *g = s.backward(g, *shape, w, gw, gb)?;
            }
            LayerKind::Conv(s) => {
                let (w, rest) = self
                    .params
                    .split_first_mut()
                    .expect("a convolution has a weight");
                let gb = rest.first_mut().map(|s| &mut *s.grad);
                (*g, *shape) = s.backward(g, *shape, w.value, w.grad, gb)?;
            }
            LayerKind::Pool(s) => (*g, *shape) = s.backward(g, *shape)?,
            LayerKind::Upsample(s) => (*g, *shape) = s.backward(g, *shape)?,
        }
        Ok(())
    }

    /// Whether the forward draws a mask.
    fn draws(&self) -> bool {
        matches!(self.kind, LayerKind::Dropout(_, Some(_)))
    }

    /// `y` from `x`, buffers of the shapes `xs` and `ys`, drawing a fresh `mask` if it draws.
    fn forward(
        &mut self,
        (x, xs): (&[f64], &Shape),
        (y, ys): (&mut [f64], &Shape),
        mask: &mut [f64],
        gens: &mut [&mut Generator],
    ) -> Result<()> {
        match &mut self.kind {
            LayerKind::Linear(_) => {
                let d = Dims {
                    batch: xs.rows(),
                    in_f: xs.cols(),
                    out_f: ys.cols(),
                };
                let w = &*self.params[0].value;
                let b = self.params.get(1).map_or(&[][..], |s| &*s.value);
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
            LayerKind::Activation(a) => a.kind().forward(x, *xs, y)?,
            LayerKind::Dropout(d, gen) => match gen {
                Some(g) => {
                    d.draw_mask(gens[*g], mask);
                    for ((o, &v), &m) in y.iter_mut().zip(x.iter()).zip(mask.iter()) {
                        *o = v * m;
                    }
                }
                None => y.copy_from_slice(x),
            },
            LayerKind::LayerNorm(s) => {
                let (w, b) = weight_bias(&self.params, s.slots());
                layer_norm_forward(x, xs.cols(), s.eps(), w, b, y);
            }
            LayerKind::Reshape(_) => y.copy_from_slice(x),
            LayerKind::BatchNorm(s, training, running) => {
                let has = (s.flags().0, s.flags().0);
                let (w, b) = weight_bias(&self.params, has);
                let d = s.dims(*xs)?;
                s.run_forward(x, d, *training, running.as_mut(), w, b, y)?;
            }
            LayerKind::Conv(s) => {
                let b = self.params.get(1).map(|s| &*s.value);
                y.copy_from_slice(&s.run_forward(x, *xs, self.params[0].value, b)?);
            }
            LayerKind::Pool(s) => y.copy_from_slice(&s.run_forward(x, *xs)?),
            LayerKind::Upsample(s) => y.copy_from_slice(&s.run_forward(x, *xs)?),
        }
        Ok(())
    }

    /// Accumulate the parameter gradients and write `dx` (unless `None`: nothing
    /// reads it) from the input `x`, output `y`, mask and output gradient `gy`.
    fn backward(
        &mut self,
        (x, xs): (&[f64], &Shape),
        (y, ys): (&[f64], &Shape),
        mask: &[f64],
        gy: &[f64],
        dx: Option<&mut [f64]>,
    ) -> Result<()> {
        match &mut self.kind {
            LayerKind::Linear(_) => {
                let d = Dims {
                    batch: xs.rows(),
                    in_f: xs.cols(),
                    out_f: ys.cols(),
                };
                let (w, gb) = linear_slots(&mut self.params);
                with_terms(|terms| {
                    dispatch(LinearBackward {
                        d,
                        x,
                        g: gy,
                        w: w.value,
                        gw: w.grad,
                        gb,
                        dx,
                        terms,
                    })
                });
            }
            LayerKind::LayerNorm(s) => {
                let (w, gw, gb) = weight_grads(&mut self.params, s.slots());
                layer_norm_backward(x, xs.cols(), s.eps(), w, gy, gw, gb, dx);
            }
            LayerKind::BatchNorm(s, ..) => {
                let has = (s.flags().0, s.flags().0);
                let (w, gw, gb) = weight_grads(&mut self.params, has);
                let d = s.dims(*xs)?;
                s.run_backward(x, d, w, gy, gw, gb, dx);
            }
            LayerKind::Conv(s) => {
                let (w, rest) = self
                    .params
                    .split_first_mut()
                    .expect("a convolution has a weight");
                let gb = rest.first_mut().map(|s| &mut *s.grad);
                let want = dx.is_some();
                let out = s.run_backward(x, *xs, w.value, gy, w.grad, gb, want)?;
                if let (Some(dx), Some(out)) = (dx, out) {
                    dx.copy_from_slice(&out);
                }
            }
            _ if dx.is_none() => {}
            LayerKind::Reshape(_) => {
                if let Some(dx) = dx {
                    dx.copy_from_slice(gy);
                }
            }
            LayerKind::Activation(a) => {
                if let Some(dx) = dx {
                    a.kind().backward(x, y, gy, *xs, dx)?;
                }
            }
            LayerKind::Dropout(_, gen) => {
                if let Some(out) = dx {
                    if gen.is_some() {
                        for ((o, &v), &m) in out.iter_mut().zip(gy).zip(mask) {
                            *o = v * m;
                        }
                    } else {
                        out.copy_from_slice(gy);
                    }
                }
            }
            LayerKind::Pool(s) => {
                if let Some(dx) = dx {
                    dx.copy_from_slice(&s.run_backward(gy, *xs)?);
                }
            }
            LayerKind::Upsample(s) => {
                if let Some(dx) = dx {
                    dx.copy_from_slice(&s.run_backward(gy, *xs)?);
                }
            }
        }
        Ok(())
    }

    /// Keep what `forward` keeps for `backward`, from the buffers of a run.
    pub(crate) fn remember(
        &mut self,
        x: &[f64],
        y: &[f64],
        mask: &[f64],
        shape: Shape,
    ) -> Result<()> {
        match &mut self.kind {
            LayerKind::Linear(state) => state.remember(x),
            LayerKind::Activation(a) => a.remember(x, y, shape),
            LayerKind::Dropout(d, gen) => {
                let mask: &[f64] = if gen.is_some() { mask } else { &[] };
                d.remember(mask, shape)
            }
            LayerKind::LayerNorm(s) => s.remember(x, shape),
            LayerKind::Reshape(s) => s.remember(shape),
            LayerKind::BatchNorm(s, ..) => s.remember(x, shape),
            LayerKind::Conv(s) => s.remember(x, shape),
            LayerKind::Pool(s) => s.remember(shape),
            LayerKind::Upsample(s) => s.remember(shape),
        }
    }
}

/// The shape of a batch of `rows` samples of shape `sample` (`(rows,)` for a sample of no dims).
fn batch_shape(rows: usize, sample: &[usize]) -> Result<Shape> {
    let mut dims = [0; crate::tensor::MAX_RANK];
    if sample.len() >= dims.len() {
        return Shape::new(&[0; crate::tensor::MAX_RANK + 1]);
    }
    dims[0] = rows;
    dims[1..=sample.len()].copy_from_slice(sample);
    Shape::new(&dims[..=sample.len()])
}

/// The one runner of a stack of layers: the native `Sequential` and the native
/// epoch of `fit` both run their layers through it. It holds the buffers between
/// the layers, allocated once for batches of up to `rows` samples, so a forward
/// and backward pass allocate nothing but what a convolution's kernels do.
///
/// Each layer maps a batch of samples to a batch of as many samples: the
/// buffers hold a batch as rows of one sample each, of the shape a sample has
/// there (any rank: `(C,)` for a Linear's input, `(C, H, W)` for a Conv2d's).
pub struct Stack {
    /// The input of layer `l` is `acts[l]`; the stack's output is `acts[layers]`.
    acts: Vec<Vec<f64>>,
    /// The shape of one sample in each of `acts`, without the batch dimension.
    samples: Vec<Vec<usize>>,
    /// The values of one sample in each of `acts` (the product of its shape).
    widths: Vec<usize>,
    /// The shapes of `acts` for a batch of `batch` samples (that of the last pass).
    shapes: Vec<Shape>,
    batch: usize,
    /// One mask per layer (empty but for drawing `Dropout` layers).
    masks: Vec<Vec<f64>>,
    /// Two gradient buffers, used in turn; `grad[0]` takes the output gradient.
    grad: [Vec<f64>; 2],
    /// The layers whose forward has run in the current pass.
    done: usize,
}

impl Stack {
    /// The buffers for `layers` on inputs of up to `rows` rows of `width` columns.
    pub fn new(layers: &[Layer<'_>], width: usize, rows: usize, who: &str) -> Result<Stack> {
        Stack::with_sample(layers, &[width], rows, who)
    }

    /// The shape of a sample after each layer, for samples of shape `sample`:
    /// the error a layer's forward would raise on a batch of them, or a
    /// `ValueError` for a layer that mixes the samples of a batch (a reshape
    /// of the batch dimension), which a stack cannot hold.
    pub fn samples(layers: &[Layer<'_>], sample: &[usize], rows: usize) -> Result<Vec<Vec<usize>>> {
        let mut out = vec![sample.to_vec()];
        for (l, layer) in layers.iter().enumerate() {
            let cur = out.last().expect("the input's sample");
            // On a batch of `rows` samples and on one sample: each gives as many
            // samples, of the same shape.
            let many = layer.out_shape(batch_shape(rows.max(1), cur)?)?;
            let one = layer.out_shape(batch_shape(1, cur)?)?;
            if many.dims()[0] != rows.max(1)
                || one.dims()[0] != 1
                || many.dims()[1..] != one.dims()[1..]
            {
                return Err(Error::Value(format!(
                    "layer {l} does not map a batch of samples to as many samples"
                )));
            }
            out.push(one.dims()[1..].to_vec());
        }
        Ok(out)
    }

    /// The buffers for `layers` on batches of up to `rows` samples of shape `sample`.
    pub fn with_sample(
        layers: &[Layer<'_>],
        sample: &[usize],
        rows: usize,
        who: &str,
    ) -> Result<Stack> {
        let size = |w: usize| {
            rows.checked_mul(w)
                .ok_or_else(|| Error::Memory(format!("{who}: batch too large")))
        };
        let samples = Stack::samples(layers, sample, rows)?;
        let mut widths = Vec::with_capacity(samples.len());
        for s in &samples {
            let w = s
                .iter()
                .try_fold(1usize, |a, &b| a.checked_mul(b))
                .ok_or_else(|| Error::Memory(format!("{who}: sample too large")))?;
            widths.push(w);
        }
        let mut acts = Vec::new();
        for &w in &widths {
            acts.push(try_zeros(size(w)?, who)?);
        }
        let mut masks = Vec::new();
        for (l, &w) in layers.iter().zip(&widths) {
            let n = if l.draws() { size(w)? } else { 0 };
            masks.push(try_zeros(n, who)?);
        }
        let widest = size(widths.iter().copied().max().unwrap_or(0))?;
        let grad = [try_zeros(widest, who)?, try_zeros(widest, who)?];
        let shapes = samples
            .iter()
            .map(|s| batch_shape(rows, s))
            .collect::<Result<Vec<_>>>()?;
        Ok(Stack {
            acts,
            samples,
            widths,
            shapes,
            batch: rows,
            masks,
            grad,
            done: 0,
        })
    }

    /// The values per sample of the stack's output.
    pub fn out_width(&self) -> usize {
        *self.widths.last().unwrap_or(&0)
    }

    /// The shape of the output of a batch of `rows` samples.
    pub fn out_shape(&mut self, rows: usize) -> Shape {
        self.set_batch(rows);
        *self.shapes.last().expect("the output's shape")
    }

    /// Make `shapes` those of a batch of `rows` samples.
    fn set_batch(&mut self, rows: usize) {
        if rows != self.batch {
            for (shape, s) in self.shapes.iter_mut().zip(&self.samples) {
                *shape = batch_shape(rows, s).expect("checked by Stack::samples");
            }
            self.batch = rows;
        }
    }

    /// The input buffer for `rows` rows, to fill before `forward`.
    pub fn input_mut(&mut self, rows: usize) -> &mut [f64] {
        &mut self.acts[0][..rows * self.widths[0]]
    }

    /// The output of the last `forward` on `rows` rows.
    pub fn output(&self, rows: usize) -> &[f64] {
        let n = self.widths.len() - 1;
        &self.acts[n][..rows * self.widths[n]]
    }

    /// The output gradient buffer for `rows` rows, to fill before `backward`.
    pub fn grad_mut(&mut self, rows: usize) -> &mut [f64] {
        let w = self.out_width();
        &mut self.grad[0][..rows * w]
    }

    /// `optimizer.zero_grad()` over the layers' parameter slots.
    pub fn zero_grad(layers: &mut [Layer<'_>]) {
        for l in layers.iter_mut() {
            for s in l.params.iter_mut() {
                s.grad.fill(0.0);
            }
        }
    }

    /// Run every layer's forward, in order, on the input's `rows` rows; `gens` are
    /// the generators the drawing `Dropout`s name.
    pub fn forward(
        &mut self,
        layers: &mut [Layer<'_>],
        rows: usize,
        gens: &mut [&mut Generator],
    ) -> Result<()> {
        self.set_batch(rows);
        self.done = 0;
        for (l, layer) in layers.iter_mut().enumerate() {
            let (wi, wo) = (self.widths[l], self.widths[l + 1]);
            let (xs, ys) = (&self.shapes[l], &self.shapes[l + 1]);
            let (before, after) = self.acts.split_at_mut(l + 1);
            let (x, y) = (&before[l][..rows * wi], &mut after[0][..rows * wo]);
            let mask = &mut self.masks[l];
            let mask = if mask.is_empty() {
                &mut mask[..]
            } else {
                &mut mask[..rows * wi]
            };
            layer.forward((x, xs), (y, ys), mask, gens)?;
            self.done = l + 1;
        }
        Ok(())
    }

    /// Run every layer's backward, in reverse, from the output gradient in
    /// `grad_mut(rows)`; the first layer computes no input gradient (nothing reads it).
    pub fn backward(&mut self, layers: &mut [Layer<'_>], rows: usize) -> Result<()> {
        self.set_batch(rows);
        let [ga, gb] = &mut self.grad;
        let (mut g, mut dx) = (ga, gb);
        for l in (0..layers.len()).rev() {
            let (wi, wo) = (self.widths[l], self.widths[l + 1]);
            let x = &self.acts[l][..rows * wi];
            let y = &self.acts[l + 1][..rows * wo];
            let mask = &self.masks[l];
            let mask = if mask.is_empty() {
                &mask[..]
            } else {
                &mask[..rows * wi]
            };
            let dxs = if l == 0 {
                None
            } else {
                Some(&mut dx[..rows * wi])
            };
            let (xs, ys) = (&self.shapes[l], &self.shapes[l + 1]);
            layers[l].backward((x, xs), (y, ys), mask, &g[..rows * wo], dxs)?;
            std::mem::swap(&mut g, &mut dx);
        }
        Ok(())
    }

    /// The native `Sequential`'s forward pass: each layer in order, keeping
    /// what its `backward` needs in its own state (between a forward and a
    /// backward, a caller may run any layer alone). `x` and `shape` become the
    /// output and its shape. On an error, the index of the layer that raised it.
    pub fn forward_kept(
        layers: &mut [Layer<'_>],
        x: &mut Vec<f64>,
        shape: &mut Shape,
        gens: &mut [&mut Generator],
    ) -> std::result::Result<(), (usize, Error)> {
        for (l, layer) in layers.iter_mut().enumerate() {
            layer.forward_kept(x, shape, gens).map_err(|e| (l, e))?;
        }
        Ok(())
    }

    /// The native `Sequential`'s backward pass: each layer in reverse, from
    /// what its last forward kept; `g` and `shape` become dL/dx and its shape.
    /// On an error, the index of the layer.
    pub fn backward_kept(
        layers: &mut [Layer<'_>],
        g: &mut Vec<f64>,
        shape: &mut Shape,
    ) -> std::result::Result<(), (usize, Error)> {
        for (l, layer) in layers.iter_mut().enumerate().rev() {
            layer.backward_kept(g, shape).map_err(|e| (l, e))?;
        }
        Ok(())
    }

    /// Let every layer whose forward ran in the last pass, on `rows` rows, keep
    /// what its own `forward` would have kept. A layer whose forward failed, and
    /// those after it, keep what they had.
    pub fn remember(&mut self, layers: &mut [Layer<'_>], rows: usize) -> Result<()> {
        self.set_batch(rows);
        for (l, layer) in layers.iter_mut().enumerate().take(self.done) {
            let (wi, wo) = (self.widths[l], self.widths[l + 1]);
            let mask = &self.masks[l];
            let mask = if mask.is_empty() {
                &mask[..]
            } else {
                &mask[..rows * wi]
            };
            layer.remember(
                &self.acts[l][..rows * wi],
                &self.acts[l + 1][..rows * wo],
                mask,
                self.shapes[l],
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
// The references spell each fold out literally, index by index.
#[allow(clippy::needless_range_loop, clippy::assign_op_pattern)]
mod tests {
    use super::*;
    use crate::simd::portable;
    use crate::testing::{bits, weighted_sum};

    /// (batch, in, out): tails of every width, several tiles, tile remainders of
    /// 1 to 3 rows, products below and above the size read in place.
    const SHAPES: [(usize, usize, usize); 11] = [
        (1, 1, 1),
        (3, 2, 25),
        (10, 2, 25),
        (10, 25, 25),
        (4, 25, 2),
        (3, 25, 2),
        (7, 9, 17),
        (7, 17, 9),
        (37, 70, 35),
        (64, 33, 16),
        (64, 16, 33),
    ];

    /// The SIMD paths a test compares with the documented folds.
    const PATHS: [&str; 4] = ["portable", "dispatch", "avx2", "avx512"];

    /// Run `k` on `path`; false when this CPU lacks it (the comparison is skipped).
    fn run_on<K: crate::simd::Kernel>(path: &str, k: K) -> bool {
        match path {
            "portable" => portable(k),
            "dispatch" => dispatch(k),
            #[cfg(target_arch = "x86_64")]
            "avx2" => return crate::simd::on_avx2(k).is_ok(),
            #[cfg(target_arch = "x86_64")]
            "avx512" => return crate::simd::on_avx512(k).is_ok(),
            _ => return false,
        }
        true
    }

    fn rand_vec(g: &mut Generator, n: usize, zero_every: usize) -> Vec<f64> {
        (0..n)
            .map(|k| {
                if zero_every > 0 && k % zero_every == 0 {
                    0.0
                } else {
                    g.uniform(-1.0, 1.0)
                }
            })
            .collect()
    }

    /// A naive transcription of the documented forward fold, one element at a time.
    fn reference_forward(d: Dims, x: &[f64], w: &[f64], b: &[f64]) -> Vec<f64> {
        let mut out = vec![];
        for n in 0..d.batch {
            for o in 0..d.out_f {
                let mut acc = b[o];
                for i in 0..d.in_f {
                    let xi = x[n * d.in_f + i];
                    if xi != 0.0 {
                        acc = acc + xi * w[o * d.in_f + i];
                    }
                }
                out.push(acc);
            }
        }
        out
    }

    #[test]
    fn forward_matches_the_documented_fold_on_every_path() {
        let mut g = Generator::new(1);
        for &(batch, in_f, out_f) in &SHAPES {
            let d = Dims { batch, in_f, out_f };
            let (w, b) = linear_init(&mut g, in_f, out_f, true).unwrap();
            let x = rand_vec(&mut g, batch * in_f, 3);
            let mut st = LinearState::new(in_f, out_f);
            let (y, shape) = st
                .forward(x.clone(), Shape::Matrix(batch, in_f), &w, &b)
                .unwrap();
            assert_eq!(shape, Shape::Matrix(batch, out_f));
            assert_eq!(bits(&y), bits(&reference_forward(d, &x, &w, &b)));
            for path in PATHS {
                let mut y2 = vec![0.0; batch * out_f];
                let k = LinearForward {
                    d,
                    x: &x,
                    w: &w,
                    b: &b,
                    y: &mut y2,
                    terms: &mut Terms::default(),
                };
                if run_on(path, k) {
                    assert_eq!(bits(&y), bits(&y2), "path {path}");
                }
            }
        }
    }

    #[test]
    fn backward_matches_the_documented_folds_on_every_path() {
        let mut g = Generator::new(9);
        for &(batch, in_f, out_f) in &SHAPES {
            let d = Dims { batch, in_f, out_f };
            let x = rand_vec(&mut g, batch * in_f, 3);
            let gy = rand_vec(&mut g, batch * out_f, 4);
            let w = rand_vec(&mut g, out_f * in_f, 0);
            let gw0 = rand_vec(&mut g, out_f * in_f, 0);
            let gb0 = rand_vec(&mut g, out_f, 0);
            let mut rgw = gw0.clone();
            for o in 0..out_f {
                for i in 0..in_f {
                    for n in 0..batch {
                        let gn = gy[n * out_f + o];
                        if gn != 0.0 {
                            rgw[o * in_f + i] = rgw[o * in_f + i] + gn * x[n * in_f + i];
                        }
                    }
                }
            }
            let mut rgb = gb0.clone();
            for n in 0..batch {
                for o in 0..out_f {
                    rgb[o] = rgb[o] + gy[n * out_f + o];
                }
            }
            let mut rdx = vec![0.0; batch * in_f];
            for n in 0..batch {
                for i in 0..in_f {
                    let mut acc = 0.0;
                    for o in 0..out_f {
                        let gn = gy[n * out_f + o];
                        if gn != 0.0 {
                            acc = acc + gn * w[o * in_f + i];
                        }
                    }
                    rdx[n * in_f + i] = acc;
                }
            }
            for path in PATHS {
                let (mut gw, mut gb, mut dx) = (gw0.clone(), gb0.clone(), vec![9.0; batch * in_f]);
                let k = LinearBackward {
                    d,
                    x: &x,
                    g: &gy,
                    w: &w,
                    gw: &mut gw,
                    gb: &mut gb,
                    dx: Some(&mut dx),
                    terms: &mut Terms::default(),
                };
                if run_on(path, k) {
                    assert_eq!(bits(&gw), bits(&rgw), "path {path}");
                    assert_eq!(bits(&gb), bits(&rgb), "path {path}");
                    assert_eq!(bits(&dx), bits(&rdx), "path {path}");
                }
            }
        }
    }

    #[test]
    fn init_draws_weight_then_bias() {
        let mut g = Generator::new(0);
        let (w, b) = linear_init(&mut g, 4, 3, true).unwrap();
        let mut h = Generator::new(0);
        let k = 1.0 / 2.0;
        let expect: Vec<f64> = (0..15).map(|_| -k + (k - -k) * h.random()).collect();
        assert_eq!(w, &expect[..12]);
        assert_eq!(b, &expect[12..]);
    }

    #[test]
    fn linear_gradients_match_finite_differences() {
        let (batch, in_f, out_f) = (3, 5, 4);
        let mut g = Generator::new(2);
        let (w, b) = linear_init(&mut g, in_f, out_f, true).unwrap();
        let x = rand_vec(&mut g, batch * in_f, 0);
        let c = rand_vec(&mut g, batch * out_f, 0);
        let xs = Shape::Matrix(batch, in_f);
        let loss = |x: &[f64], w: &[f64], b: &[f64]| {
            let mut st = LinearState::new(in_f, out_f);
            weighted_sum(&st.forward(x.to_vec(), xs, w, b).unwrap().0, &c)
        };
        let mut st = LinearState::new(in_f, out_f);
        st.forward(x.clone(), xs, &w, &b).unwrap();
        let (mut gw, mut gb) = (vec![0.0; w.len()], vec![0.0; b.len()]);
        let (dx, _) = st
            .backward(&c, Shape::Matrix(batch, out_f), &w, &mut gw, &mut gb)
            .unwrap();
        let h = 1e-6;
        // (analytic gradient, which argument to nudge: 0 = x, 1 = w, 2 = b)
        for (analytic, which) in [(&dx, 0), (&gw, 1), (&gb, 2)] {
            for k in 0..analytic.len() {
                let at = |step: f64| {
                    let (mut x2, mut w2, mut b2) = (x.clone(), w.clone(), b.clone());
                    [&mut x2, &mut w2, &mut b2][which][k] += step;
                    loss(&x2, &w2, &b2)
                };
                let numeric = (at(h) - at(-h)) / (2.0 * h);
                assert!((numeric - analytic[k]).abs() < 1e-6, "{which}[{k}]");
            }
        }
        // Gradients accumulate: a second backward adds the same amounts again.
        let before = gw.clone();
        st.backward(&c, Shape::Matrix(batch, out_f), &w, &mut gw, &mut gb)
            .unwrap();
        for (a, b) in gw.iter().zip(&before) {
            assert!((*a - 2.0 * *b).abs() < 1e-12);
        }
    }

    #[test]
    fn dropout_draws_one_value_per_element_and_scales_the_rest() {
        let p = 0.3;
        let x: Vec<f64> = (0..40).map(|k| k as f64 - 20.5).collect();
        let shape = Shape::Matrix(8, 5);
        let mut st = DropoutState::new(p).unwrap();
        let mut g = Generator::new(5);
        let y = st.forward(x.clone(), shape, Some(&mut g)).unwrap();
        let mut h = Generator::new(5);
        let scale = 1.0 / (1.0 - p);
        for (k, &v) in y.iter().enumerate() {
            let m = if h.random() < p { 0.0 } else { scale };
            assert_eq!(v.to_bits(), (x[k] * m).to_bits());
        }
        assert_eq!(g.next_u64(), h.next_u64(), "exactly one draw per element");
        let dx = st.backward(vec![1.0; 40], shape).unwrap();
        for (d, v) in dx.iter().zip(&y) {
            // x is never 0, so y is 0 exactly where the mask is.
            assert_eq!(*d, if *v == 0.0 { 0.0 } else { scale });
        }
        // Without a generator it is the identity.
        let y = st.forward(x.clone(), shape, None).unwrap();
        assert_eq!(y, x);
        assert_eq!(st.backward(x.clone(), shape).unwrap(), x);
        assert!(!st.draws(false) && st.draws(true));
        assert!(!DropoutState::new(0.0).unwrap().draws(true));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let mut st = LinearState::new(2, 3);
        let (w, b) = (vec![0.5; 6], vec![0.0; 3]);
        let e = st
            .forward(vec![1.0, 2.0, 3.0], Shape::Vector(3), &w, &b)
            .unwrap_err();
        assert!(matches!(e, Error::Value(_)));
        // Any rank: the rows of all dims but the last are the batch.
        let x: Vec<f64> = (0..12).map(|k| k as f64 * 0.25 - 1.0).collect();
        let s3 = Shape::new(&[2, 3, 2]).unwrap();
        let (y3, ys) = st.forward(x.clone(), s3, &w, &b).unwrap();
        assert_eq!(ys, Shape::new(&[2, 3, 3]).unwrap());
        let (dx3, dxs) = st
            .backward(&y3, ys, &w, &mut [0.0; 6], &mut [0.0; 3])
            .unwrap();
        assert_eq!(dxs, s3);
        let (y2, _) = st.forward(x, Shape::Matrix(6, 2), &w, &b).unwrap();
        assert_eq!(y2, y3);
        let (dx2, _) = st
            .backward(&y2, Shape::Matrix(6, 3), &w, &mut [0.0; 6], &mut [0.0; 3])
            .unwrap();
        assert_eq!(dx2, dx3);
        let mut st = LinearState::new(2, 3);
        let e = st
            .forward(vec![1.0, 2.0, 3.0], Shape::Matrix(1, 3), &w, &b)
            .unwrap_err();
        assert_eq!(
            e.message(),
            "Linear(2 -> 3): expected input with 2 columns, got 3 (input shape (1, 3))"
        );
        let (mut gw, mut gb) = (vec![0.0; 6], vec![0.0; 3]);
        let g1 = [1.0, 2.0, 3.0];
        let shape = Shape::Matrix(1, 3);
        assert!(matches!(
            st.backward(&g1, shape, &w, &mut gw, &mut gb),
            Err(Error::Runtime(_))
        ));
        st.forward(vec![1.0, 2.0], Shape::Matrix(1, 2), &w, &b)
            .unwrap();
        assert!(matches!(
            st.backward(&g1[..2], Shape::Vector(2), &w, &mut gw, &mut gb),
            Err(Error::Value(_))
        ));
        assert!(matches!(
            linear_init(&mut Generator::new(0), usize::MAX, 3, true),
            Err(Error::Memory(_))
        ));
        for p in [-0.1, 1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(DropoutState::new(p), Err(Error::Value(_))));
        }
        let d = DropoutState::new(0.5).unwrap();
        assert!(matches!(
            d.backward(vec![1.0], Shape::Vector(1)),
            Err(Error::Runtime(_))
        ));
    }

    /// A layer's slots read as a slice of those pushed, in order, up to two.
    #[test]
    fn slots_hold_up_to_two_in_order() {
        let (mut a, mut ga, mut b, mut gb) = ([1.0], [2.0], [3.0, 4.0], [5.0, 6.0]);
        let mut s = Slots::new();
        assert!(s.is_empty());
        s.push(Slot {
            value: &mut a,
            grad: &mut ga,
        });
        s.push(Slot {
            value: &mut b,
            grad: &mut gb,
        });
        assert_eq!(s.len(), 2);
        s[1].grad.fill(0.0);
        assert_eq!((&*s[0].value, &*s[1].value), (&[1.0][..], &[3.0, 4.0][..]));
        let more = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let mut s = s;
            s.push(Slot {
                value: &mut [],
                grad: &mut [],
            })
        }));
        assert!(more.is_err());
        assert_eq!(gb, [0.0, 0.0]);
    }

    /// The stack runner gives the same bits on its preallocated buffers (the
    /// native epoch) as through each layer's own state (the native `Sequential`):
    /// outputs, parameter gradients, masks, and what a layer keeps.
    #[test]
    fn the_stack_runs_the_same_bits_on_buffers_and_through_the_states() {
        let (rows, widths) = (5usize, [3usize, 4, 4, 4, 2]);
        let mut g = Generator::new(3);
        let (w1, b1) = linear_init(&mut g, widths[0], widths[1], true).unwrap();
        let (w2, b2) = linear_init(&mut g, widths[3], widths[4], true).unwrap();
        let x: Vec<f64> = (0..rows * widths[0])
            .map(|i| 0.37 * i as f64 - 2.0)
            .collect();
        let gy: Vec<f64> = (0..rows * widths[4])
            .map(|i| 0.11 * i as f64 - 0.4)
            .collect();
        let relu = crate::activations::Activation::from(crate::activations::ReLU::default());
        // Two copies of every state and tensor: one per way of running.
        let run = |kept: bool| {
            let (mut s1, mut s2) = (LinearState::new(3, 4), LinearState::new(4, 2));
            let mut a = ActState::new(relu);
            let mut d = DropoutState::new(0.25).unwrap();
            let (mut w1, mut b1, mut w2, mut b2) = (w1.clone(), b1.clone(), w2.clone(), b2.clone());
            let (mut gw1, mut gb1) = (vec![0.0; w1.len()], vec![0.0; b1.len()]);
            let (mut gw2, mut gb2) = (vec![0.0; w2.len()], vec![0.0; b2.len()]);
            let mut gen = Generator::new(11);
            let mut layers = vec![
                Layer {
                    kind: LayerKind::Linear(&mut s1),
                    params: [
                        Slot {
                            value: &mut w1,
                            grad: &mut gw1,
                        },
                        Slot {
                            value: &mut b1,
                            grad: &mut gb1,
                        },
                    ]
                    .into_iter()
                    .collect(),
                },
                Layer {
                    kind: LayerKind::Activation(&mut a),
                    params: Slots::new(),
                },
                Layer {
                    kind: LayerKind::Dropout(&mut d, Some(0)),
                    params: Slots::new(),
                },
                Layer {
                    kind: LayerKind::Linear(&mut s2),
                    params: [
                        Slot {
                            value: &mut w2,
                            grad: &mut gw2,
                        },
                        Slot {
                            value: &mut b2,
                            grad: &mut gb2,
                        },
                    ]
                    .into_iter()
                    .collect(),
                },
            ];
            let mut gens = [&mut gen];
            let shape = Shape::Matrix(rows, widths[0]);
            let y = if kept {
                let (mut y, mut s) = (x.clone(), shape);
                Stack::forward_kept(&mut layers, &mut y, &mut s, &mut gens).unwrap();
                let (mut g, mut s) = (gy.clone(), Shape::Matrix(rows, 2));
                Stack::backward_kept(&mut layers, &mut g, &mut s).unwrap();
                y
            } else {
                let mut stack = Stack::new(&layers, widths[0], rows, "test").unwrap();
                stack.input_mut(rows).copy_from_slice(&x);
                stack.forward(&mut layers, rows, &mut gens).unwrap();
                stack.grad_mut(rows).copy_from_slice(&gy);
                stack.backward(&mut layers, rows).unwrap();
                stack.remember(&mut layers, rows).unwrap();
                stack.output(rows).to_vec()
            };
            drop(layers);
            // What each layer kept: its backward from the same gradient gives the same bits.
            let g4 = vec![0.5; rows * 4];
            let kept = (
                bits(&a.backward(&g4, Shape::Matrix(rows, 4)).unwrap()),
                bits(&d.backward(g4.clone(), Shape::Matrix(rows, 4)).unwrap()),
            );
            (
                bits(&y),
                bits(&gw1),
                bits(&gb1),
                bits(&gw2),
                bits(&gb2),
                kept,
            )
        };
        assert_eq!(run(false), run(true));
    }

    /// Flatten and Unflatten change the shape only, and the stack's buffers take
    /// only those that keep a batch of rows as it is.
    #[test]
    fn reshapes_change_the_shape_only() {
        let s3 = Shape::new(&[2, 3, 4]).unwrap();
        let flat = Reshape::Flatten(1, -1);
        assert_eq!(flat.out_shape(s3).unwrap(), Shape::Matrix(2, 12));
        let un = Reshape::Unflatten(1, vec![Some(3), None]);
        assert_eq!(un.out_shape(Shape::Matrix(2, 12)).unwrap(), s3);
        assert!(matches!(
            Reshape::Flatten(2, 1).out_shape(s3),
            Err(Error::Value(_))
        ));
        assert!(matches!(
            Reshape::Flatten(3, -1).out_shape(s3),
            Err(Error::Index(_))
        ));
        assert!(matches!(
            Reshape::Unflatten(1, vec![Some(5)]).out_shape(s3),
            Err(Error::Value(_))
        ));
        let mut st = ReshapeState::new(un);
        let x: Vec<f64> = (0..24).map(|k| k as f64).collect();
        let (y, ys) = st.forward(x.clone(), Shape::Matrix(2, 12)).unwrap();
        assert_eq!((y.clone(), ys), (x.clone(), s3));
        assert_eq!(st.backward(y, s3).unwrap(), (x, Shape::Matrix(2, 12)));
        assert!(st.backward(vec![0.0; 24], Shape::Matrix(2, 12)).is_err());
        assert!(flat.keeps_rows(5) && Reshape::Flatten(0, 0).keeps_rows(5));
        assert!(!Reshape::Flatten(0, 1).keeps_rows(5));
        assert!(Reshape::Unflatten(-1, vec![None]).keeps_rows(5));
        assert!(Reshape::Unflatten(1, vec![Some(5)]).keeps_rows(5));
        assert!(!Reshape::Unflatten(1, vec![Some(4)]).keeps_rows(5));
        assert!(!Reshape::Unflatten(0, vec![None]).keeps_rows(5));
        assert!(!Reshape::Unflatten(1, vec![Some(5), Some(1)]).keeps_rows(5));
    }

    /// BatchNorm1d: the batch statistics move the running ones by momentum (unbiased
    /// variance) and count the batch; backward through them matches finite differences.
    #[test]
    fn batch_norm_moves_the_running_statistics_and_its_gradient_is_right() {
        let (n, c, l) = (3, 2, 2);
        let shape = Shape::new(&[n, c, l]).unwrap();
        let x: Vec<f64> = (0..12).map(|k| ((k * 7) % 5) as f64 * 0.5 - 1.0).collect();
        let (w, b) = (vec![1.5, -0.5], vec![0.25, 2.0]);
        let mut st = BatchNormState::new(c, 1e-5, Some(0.1), true, true);
        let (mut rm, mut rv, mut count) = (vec![0.0; 2], vec![1.0; 2], vec![0.0]);
        let mut run = Running {
            mean: &mut rm,
            var: &mut rv,
            count: &mut count,
        };
        st.forward(x.clone(), shape, true, Some(&mut run), Some(&w), Some(&b))
            .unwrap();
        let ch0: Vec<f64> = [0, 1, 4, 5, 8, 9].iter().map(|&i| x[i]).collect();
        let mean = ch0.iter().sum::<f64>() / 6.0;
        let var = ch0.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / 5.0;
        assert!((rm[0] - 0.1 * mean).abs() < 1e-15 && (rv[0] - (0.9 + 0.1 * var)).abs() < 1e-15);
        assert_eq!(count, [1.0]);
        let gy: Vec<f64> = (0..12).map(|k| (k as f64 * 0.37).sin()).collect();
        let loss = |x: &[f64]| {
            let mut s = BatchNormState::new(c, 1e-5, Some(0.1), true, false);
            let y = s
                .forward(x.to_vec(), shape, true, None, Some(&w), Some(&b))
                .unwrap();
            weighted_sum(&y, &gy)
        };
        let (mut gw, mut gb) = (vec![0.0; 2], vec![0.0; 2]);
        let dx = st
            .backward(&gy, shape, Some(&w), Some(&mut gw), Some(&mut gb))
            .unwrap();
        for k in 0..12 {
            let at = |h: f64| {
                let mut x2 = x.clone();
                x2[k] += h;
                loss(&x2)
            };
            let numeric = (at(1e-6) - at(-1e-6)) / 2e-6;
            assert!((numeric - dx[k]).abs() < 1e-6, "dx[{k}]");
        }
        assert!(matches!(
            st.forward(vec![1.0, 2.0], Shape::Matrix(1, 2), true, None, None, None),
            Err(Error::Value(_))
        ));
    }
}
