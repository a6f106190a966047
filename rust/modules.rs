//! Modules: the kernels of `Linear`, `ReLU` and `Tanh`, mirroring `pyfw/modules.py`.
//!
//! The kernels are free functions over row-major slices, so that the binding
//! layer can run them on the live storage of Python-visible tensors; the small
//! owned types `Linear`, `ReLU` and `Tanh` put them together for pure-Rust use.
//!
//! Linear, for `g = dL/dy`, every sum a left fold in increasing index order that
//! skips the terms whose first factor is exactly zero (`acc = acc + (a * b)`):
//!
//! ```text
//! y[n][o]     = b[o]        + sum over i with x[n][i] != 0 of x[n][i] * W[o][i]
//! dL/dW[o][i] = dL/dW[o][i] + sum over n with g[n][o] != 0 of g[n][o] * x[n][i]
//! dL/db[o]    = dL/db[o]    + sum over n of g[n][o]
//! dL/dx[n][i] = 0.0         + sum over o with g[n][o] != 0 of g[n][o] * W[o][i]
//! ```
//!
//! Each loop nest keeps that order for every output element and runs its
//! innermost loop across independent outputs (contiguous in memory), so the
//! compiler vectorises it without changing any result.

use crate::error::{checked_size, try_zeros, Error, Result};
use crate::generator::Generator;
use crate::tensor::{Shape, Tensor};

/// `Linear(in -> out)`, the name used in error messages.
pub fn linear_name(in_features: usize, out_features: usize) -> String {
    format!("Linear({in_features} -> {out_features})")
}

/// The initial `(weight, bias)` of `Linear(in, out)`: U(-k, k) with `k = 1 / sqrt(in)`,
/// each value `lo + span * random()` with `lo = -k` and `span = k - lo`; all of the
/// weight in row-major order, then the bias.
pub fn linear_init(
    g: &mut Generator,
    in_features: usize,
    out_features: usize,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let n = checked_size(in_features, out_features, "Linear")?;
    let mut w = try_zeros(n, "Linear")?;
    let mut b = try_zeros(out_features, "Linear")?;
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

/// Check a Linear input shape; returns the batch size.
pub fn check_linear_input(in_features: usize, out_features: usize, shape: Shape) -> Result<usize> {
    let who = linear_name(in_features, out_features);
    match shape {
        Shape::Vector(_) => Err(Error::Value(format!(
            "{who}: expected a 2-D input (batch, {in_features}), got shape {shape}"
        ))),
        Shape::Matrix(_, c) if c != in_features => Err(Error::Value(format!(
            "{who}: expected input with {in_features} columns, got {c} (input shape {shape})"
        ))),
        Shape::Matrix(r, _) => Ok(r),
    }
}

/// Check that a gradient has the shape of the output it belongs to.
pub fn check_grad(who: &str, got: Shape, expected: Shape) -> Result<()> {
    if got != expected {
        return Err(Error::Value(format!(
            "{who}: gradient has shape {got}, the output had shape {expected}"
        )));
    }
    Ok(())
}

/// The `RuntimeError` of `backward` before `forward`.
pub fn not_forwarded(who: &str) -> Error {
    Error::Runtime(format!("{who}: backward called before forward"))
}

/// `wt[i][o] = w[o][i]` for a (rows, cols) matrix `w`; `wt` is resized to fit.
pub fn transpose_into(w: &[f64], rows: usize, cols: usize, wt: &mut Vec<f64>) {
    wt.clear();
    wt.resize(rows * cols, 0.0);
    for (o, wr) in w.chunks_exact(cols).enumerate() {
        for (i, &v) in wr.iter().enumerate() {
            wt[i * rows + o] = v;
        }
    }
}

/// Outputs per register block: a block's partial sums stay in registers while a
/// fold runs over all of its terms.
const BLOCK: usize = 8;

/// The indices `k` in `0..count` with `coef(k) != 0.0`, in increasing order, into `nz`.
/// Branch-free: ReLU makes the zero pattern unpredictable, and a mispredicted
/// branch per term would cost more than the term itself.
#[inline(always)]
fn nonzero_terms(count: usize, coef: impl Fn(usize) -> f64, nz: &mut Vec<usize>) {
    nz.clear();
    nz.resize(count, 0);
    let mut m = 0;
    for k in 0..count {
        nz[m] = k;
        m += usize::from(coef(k) != 0.0);
    }
    nz.truncate(m);
}

/// The one loop nest of the Linear kernels: for every `j`, in place,
/// `out[j] = out[j] + coef(k) * src(k)[j]` for `k` in `0..count` in increasing
/// order, skipping the `k` whose `coef(k)` is exactly zero. Each `out[j]` is its
/// own left fold; the work runs over blocks of `j` (independent outputs).
/// `nz` is scratch space.
#[inline(always)]
fn fold_rows<'a>(
    out: &mut [f64],
    count: usize,
    coef: impl Fn(usize) -> f64,
    src: impl Fn(usize) -> &'a [f64],
    nz: &mut Vec<usize>,
) {
    nonzero_terms(count, &coef, nz);
    let width = out.len();
    let mut j0 = 0;
    while j0 + BLOCK <= width {
        let mut acc = [0.0f64; BLOCK];
        acc.copy_from_slice(&out[j0..j0 + BLOCK]);
        for &k in nz.iter() {
            let c = coef(k);
            let s = &src(k)[j0..j0 + BLOCK];
            for b in 0..BLOCK {
                acc[b] += c * s[b];
            }
        }
        out[j0..j0 + BLOCK].copy_from_slice(&acc);
        j0 += BLOCK;
    }
    if j0 < width {
        let tail = &mut out[j0..];
        for &k in nz.iter() {
            let c = coef(k);
            for (a, &v) in tail.iter_mut().zip(&src(k)[j0..]) {
                *a += c * v;
            }
        }
    }
}

#[inline(always)]
fn forward_impl(x: &[f64], in_f: usize, out_f: usize, wt: &[f64], b: &[f64], y: &mut [f64]) {
    let mut nz = Vec::with_capacity(in_f);
    for (xr, yr) in x.chunks_exact(in_f).zip(y.chunks_exact_mut(out_f)) {
        yr.copy_from_slice(b);
        fold_rows(
            yr,
            in_f,
            |i| xr[i],
            |i| &wt[i * out_f..(i + 1) * out_f],
            &mut nz,
        );
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_impl(
    x: &[f64],
    g: &[f64],
    in_f: usize,
    out_f: usize,
    w: &[f64],
    gw: &mut [f64],
    gb: &mut [f64],
    dx: &mut [f64],
) {
    let batch = g.len() / out_f;
    let mut nz = Vec::with_capacity(batch.max(out_f));
    // dL/dW[o][:] = dL/dW[o][:] + g[n][o] * x[n][:] over n in order, skipping g[n][o] == 0.
    for (o, gwr) in gw.chunks_exact_mut(in_f).enumerate() {
        fold_rows(
            gwr,
            batch,
            |n| g[n * out_f + o],
            |n| &x[n * in_f..(n + 1) * in_f],
            &mut nz,
        );
    }
    // dL/db[:] = dL/db[:] + g[n][:] over n in order.
    for gr in g.chunks_exact(out_f) {
        for (a, &v) in gb.iter_mut().zip(gr) {
            *a += v;
        }
    }
    // dL/dx[n][:] = 0.0 + g[n][o] * W[o][:] over o in order, skipping g[n][o] == 0.
    for (gr, dxr) in g.chunks_exact(out_f).zip(dx.chunks_exact_mut(in_f)) {
        dxr.fill(0.0);
        fold_rows(
            dxr,
            out_f,
            |o| gr[o],
            |o| &w[o * in_f..(o + 1) * in_f],
            &mut nz,
        );
    }
}

/// The same kernels compiled for AVX2 (wider vectors over independent outputs; the
/// same IEEE operations in the same order, no FMA), used when the CPU has it.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    #[target_feature(enable = "avx2")]
    pub(super) fn forward(
        x: &[f64],
        in_f: usize,
        out_f: usize,
        wt: &[f64],
        b: &[f64],
        y: &mut [f64],
    ) {
        super::forward_impl(x, in_f, out_f, wt, b, y)
    }

    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2")]
    pub(super) fn backward(
        x: &[f64],
        g: &[f64],
        in_f: usize,
        out_f: usize,
        w: &[f64],
        gw: &mut [f64],
        gb: &mut [f64],
        dx: &mut [f64],
    ) {
        super::backward_impl(x, g, in_f, out_f, w, gw, gb, dx)
    }
}

#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

/// `y = x W^T + b` with `wt = W^T` (in, out), for `x` (batch, in); `y` is (batch, out).
///
/// For each sample the fold over inputs starts at the bias, runs in increasing
/// order and skips `x[n][i] == 0`.
pub fn linear_forward(x: &[f64], in_f: usize, out_f: usize, wt: &[f64], b: &[f64], y: &mut [f64]) {
    debug_assert_eq!(wt.len(), in_f * out_f);
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the only precondition of a `target_feature(enable = "avx2")`
        // function is that the CPU supports AVX2, which was detected at run time
        // just above. The kernel itself is safe code.
        unsafe { avx2::forward(x, in_f, out_f, wt, b, y) };
        return;
    }
    forward_impl(x, in_f, out_f, wt, b, y)
}

/// Accumulate `dL/dW` and `dL/db` into `gw` (out, in) and `gb` (out,), and write `dL/dx`
/// (batch, in) into `dx`, from the input `x` (batch, in), the gradient `g` (batch, out)
/// and the weight `w` (out, in).
#[allow(clippy::too_many_arguments)]
pub fn linear_backward(
    x: &[f64],
    g: &[f64],
    in_f: usize,
    out_f: usize,
    w: &[f64],
    gw: &mut [f64],
    gb: &mut [f64],
    dx: &mut [f64],
) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: as in `linear_forward`: AVX2 support was detected at run time.
        unsafe { avx2::backward(x, g, in_f, out_f, w, gw, gb, dx) };
        return;
    }
    backward_impl(x, g, in_f, out_f, w, gw, gb, dx)
}

/// The portable kernels, without run-time dispatch (for tests that compare both paths).
pub fn linear_forward_portable(
    x: &[f64],
    in_f: usize,
    out_f: usize,
    wt: &[f64],
    b: &[f64],
    y: &mut [f64],
) {
    forward_impl(x, in_f, out_f, wt, b, y)
}

/// See [`linear_forward_portable`].
#[allow(clippy::too_many_arguments)]
pub fn linear_backward_portable(
    x: &[f64],
    g: &[f64],
    in_f: usize,
    out_f: usize,
    w: &[f64],
    gw: &mut [f64],
    gb: &mut [f64],
    dx: &mut [f64],
) {
    backward_impl(x, g, in_f, out_f, w, gw, gb, dx)
}

/// `y = x if x > 0 else 0`, element by element.
pub fn relu_forward(x: &[f64], y: &mut [f64]) {
    for (o, &v) in y.iter_mut().zip(x) {
        *o = if v > 0.0 { v } else { 0.0 };
    }
}

/// `dL/dx = g if y > 0 else 0`, from the forward output `y`.
pub fn relu_backward(y: &[f64], g: &[f64], dx: &mut [f64]) {
    for ((d, &yv), &gv) in dx.iter_mut().zip(y).zip(g) {
        *d = if yv > 0.0 { gv } else { 0.0 };
    }
}

/// `y = tanh(x)` (the C library's `tanh`, as Python's `math.tanh`).
pub fn tanh_forward(x: &[f64], y: &mut [f64]) {
    for (o, &v) in y.iter_mut().zip(x) {
        *o = v.tanh();
    }
}

/// `dL/dx = g * (1.0 - (y * y))`, from the forward output `y`.
pub fn tanh_backward(y: &[f64], g: &[f64], dx: &mut [f64]) {
    for ((d, &yv), &gv) in dx.iter_mut().zip(y).zip(g) {
        *d = gv * (1.0 - yv * yv);
    }
}

/// A fully connected layer owning its parameters (pure-Rust use; the Python
/// class keeps its parameters in shared tensors and calls the same kernels).
#[derive(Clone, Debug)]
pub struct Linear {
    /// (out, in)
    pub weight: Tensor,
    /// (out,)
    pub bias: Tensor,
    /// (out, in), accumulated by `backward`
    pub weight_grad: Tensor,
    /// (out,), accumulated by `backward`
    pub bias_grad: Tensor,
    input: Option<Tensor>,
    wt: Vec<f64>,
}

impl Linear {
    /// `Linear(in, out)` initialised from `g` as in pyfw.
    pub fn new(in_features: usize, out_features: usize, g: &mut Generator) -> Result<Linear> {
        if in_features == 0 || out_features == 0 {
            return Err(Error::Value(format!(
                "Linear: in_features and out_features must be positive, got {in_features} and {out_features}"
            )));
        }
        let (w, b) = linear_init(g, in_features, out_features)?;
        let ws = Shape::Matrix(out_features, in_features);
        let bs = Shape::Vector(out_features);
        Ok(Linear {
            weight: Tensor::new(ws, w)?,
            bias: Tensor::new(bs, b)?,
            weight_grad: Tensor::zeros(ws)?,
            bias_grad: Tensor::zeros(bs)?,
            input: None,
            wt: Vec::new(),
        })
    }

    /// `(in_features, out_features)`.
    pub fn features(&self) -> (usize, usize) {
        (self.weight.shape().cols(), self.weight.shape().rows())
    }

    /// `x W^T + b` for a (batch, in) input; keeps `x` for `backward`.
    pub fn forward(&mut self, x: &Tensor) -> Result<Tensor> {
        let (i, o) = self.features();
        let batch = check_linear_input(i, o, x.shape())?;
        transpose_into(self.weight.data(), o, i, &mut self.wt);
        let mut y = try_zeros(checked_size(batch, o, "Linear")?, "Linear")?;
        linear_forward(x.data(), i, o, &self.wt, self.bias.data(), &mut y);
        self.input = Some(x.clone());
        Tensor::new(Shape::Matrix(batch, o), y)
    }

    /// Accumulate the parameter gradients; return dL/dx.
    pub fn backward(&mut self, g: &Tensor) -> Result<Tensor> {
        let (i, o) = self.features();
        let who = linear_name(i, o);
        let x = self.input.as_ref().ok_or_else(|| not_forwarded(&who))?;
        let batch = x.shape().rows();
        check_grad(&who, g.shape(), Shape::Matrix(batch, o))?;
        let mut dx = try_zeros(x.shape().numel(), &who)?;
        linear_backward(
            x.data(),
            g.data(),
            i,
            o,
            self.weight.data(),
            self.weight_grad.data_mut(),
            self.bias_grad.data_mut(),
            &mut dx,
        );
        Tensor::new(x.shape(), dx)
    }

    /// Set both gradients to zero.
    pub fn zero_grad(&mut self) {
        self.weight_grad.data_mut().fill(0.0);
        self.bias_grad.data_mut().fill(0.0);
    }
}

/// Which element-wise activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActivationKind {
    /// max(x, 0)
    ReLU,
    /// tanh(x)
    Tanh,
}

impl ActivationKind {
    /// The class name, used in error messages.
    pub fn name(self) -> &'static str {
        match self {
            ActivationKind::ReLU => "ReLU",
            ActivationKind::Tanh => "Tanh",
        }
    }

    /// Apply the activation to `x` into `y`.
    pub fn forward(self, x: &[f64], y: &mut [f64]) {
        match self {
            ActivationKind::ReLU => relu_forward(x, y),
            ActivationKind::Tanh => tanh_forward(x, y),
        }
    }

    /// The input gradient from the forward output `y` and the output gradient `g`.
    pub fn backward(self, y: &[f64], g: &[f64], dx: &mut [f64]) {
        match self {
            ActivationKind::ReLU => relu_backward(y, g, dx),
            ActivationKind::Tanh => tanh_backward(y, g, dx),
        }
    }
}

/// An element-wise activation that keeps its output for `backward`.
#[derive(Clone, Debug)]
pub struct Activation {
    /// ReLU or Tanh.
    pub kind: ActivationKind,
    output: Option<Tensor>,
}

impl Activation {
    /// A fresh activation.
    pub fn new(kind: ActivationKind) -> Activation {
        Activation { kind, output: None }
    }

    /// Apply it to every element of a 1-D or 2-D tensor.
    pub fn forward(&mut self, x: &Tensor) -> Result<Tensor> {
        let mut y = try_zeros(x.shape().numel(), self.kind.name())?;
        self.kind.forward(x.data(), &mut y);
        let out = Tensor::new(x.shape(), y)?;
        self.output = Some(out.clone());
        Ok(out)
    }

    /// The input gradient.
    pub fn backward(&mut self, g: &Tensor) -> Result<Tensor> {
        let who = self.kind.name();
        let y = self.output.as_ref().ok_or_else(|| not_forwarded(who))?;
        check_grad(who, g.shape(), y.shape())?;
        let mut dx = try_zeros(y.shape().numel(), who)?;
        self.kind.backward(y.data(), g.data(), &mut dx);
        Tensor::new(y.shape(), dx)
    }
}

#[cfg(test)]
// The references spell each fold out literally, index by index.
#[allow(clippy::needless_range_loop, clippy::assign_op_pattern)]
mod tests {
    use super::*;

    fn rand_tensor(g: &mut Generator, shape: Shape, zero_every: usize) -> Tensor {
        let data = (0..shape.numel())
            .map(|k| {
                if zero_every > 0 && k % zero_every == 0 {
                    0.0
                } else {
                    g.uniform(-1.0, 1.0)
                }
            })
            .collect();
        Tensor::new(shape, data).unwrap()
    }

    /// A naive transcription of the documented folds, one element at a time.
    fn reference_forward(x: &Tensor, w: &Tensor, b: &Tensor) -> Vec<f64> {
        let (bn, i_n) = (x.shape().rows(), x.shape().cols());
        let o_n = w.shape().rows();
        let mut out = vec![];
        for n in 0..bn {
            for o in 0..o_n {
                let mut acc = b.data()[o];
                for i in 0..i_n {
                    let xi = x.data()[n * i_n + i];
                    if xi != 0.0 {
                        acc = acc + xi * w.data()[o * i_n + i];
                    }
                }
                out.push(acc);
            }
        }
        out
    }

    #[test]
    fn forward_matches_the_documented_fold_bit_for_bit() {
        let mut g = Generator::new(1);
        for &(bn, i_n, o_n) in &[(1, 1, 1), (3, 2, 25), (10, 25, 25), (4, 25, 2), (7, 9, 17)] {
            let mut lin = Linear::new(i_n, o_n, &mut g).unwrap();
            let x = rand_tensor(&mut g, Shape::Matrix(bn, i_n), 3);
            let y = lin.forward(&x).unwrap();
            let r = reference_forward(&x, &lin.weight, &lin.bias);
            let yb: Vec<u64> = y.data().iter().map(|v| v.to_bits()).collect();
            let rb: Vec<u64> = r.iter().map(|v| v.to_bits()).collect();
            assert_eq!(yb, rb);
        }
    }

    #[test]
    fn backward_matches_the_documented_folds_and_the_portable_path() {
        let mut g = Generator::new(9);
        for &(bn, i_n, o_n) in &[(1, 1, 1), (10, 2, 25), (10, 25, 25), (3, 25, 2), (7, 17, 9)] {
            let x = rand_tensor(&mut g, Shape::Matrix(bn, i_n), 3);
            let gy = rand_tensor(&mut g, Shape::Matrix(bn, o_n), 4);
            let w = rand_tensor(&mut g, Shape::Matrix(o_n, i_n), 0);
            let gw0 = rand_tensor(&mut g, Shape::Matrix(o_n, i_n), 0);
            let gb0 = rand_tensor(&mut g, Shape::Vector(o_n), 0);
            // reference, one element at a time
            let mut rgw = gw0.data().to_vec();
            for o in 0..o_n {
                for i in 0..i_n {
                    for n in 0..bn {
                        let gn = gy.data()[n * o_n + o];
                        if gn != 0.0 {
                            rgw[o * i_n + i] = rgw[o * i_n + i] + gn * x.data()[n * i_n + i];
                        }
                    }
                }
            }
            let mut rgb = gb0.data().to_vec();
            for n in 0..bn {
                for o in 0..o_n {
                    rgb[o] = rgb[o] + gy.data()[n * o_n + o];
                }
            }
            let mut rdx = vec![0.0; bn * i_n];
            for n in 0..bn {
                for i in 0..i_n {
                    let mut acc = 0.0;
                    for o in 0..o_n {
                        let gn = gy.data()[n * o_n + o];
                        if gn != 0.0 {
                            acc = acc + gn * w.data()[o * i_n + i];
                        }
                    }
                    rdx[n * i_n + i] = acc;
                }
            }
            let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            for portable in [false, true] {
                let (mut gw, mut gb, mut dx) = (
                    gw0.data().to_vec(),
                    gb0.data().to_vec(),
                    vec![9.0; bn * i_n],
                );
                if portable {
                    linear_backward_portable(
                        x.data(),
                        gy.data(),
                        i_n,
                        o_n,
                        w.data(),
                        &mut gw,
                        &mut gb,
                        &mut dx,
                    );
                } else {
                    linear_backward(
                        x.data(),
                        gy.data(),
                        i_n,
                        o_n,
                        w.data(),
                        &mut gw,
                        &mut gb,
                        &mut dx,
                    );
                }
                assert_eq!(bits(&gw), bits(&rgw));
                assert_eq!(bits(&gb), bits(&rgb));
                assert_eq!(bits(&dx), bits(&rdx));
            }
            let mut wt = Vec::new();
            transpose_into(w.data(), o_n, i_n, &mut wt);
            let (mut y1, mut y2) = (vec![0.0; bn * o_n], vec![0.0; bn * o_n]);
            linear_forward(x.data(), i_n, o_n, &wt, gb0.data(), &mut y1);
            linear_forward_portable(x.data(), i_n, o_n, &wt, gb0.data(), &mut y2);
            assert_eq!(bits(&y1), bits(&y2));
        }
    }

    #[test]
    fn init_draws_weight_then_bias() {
        let mut g = Generator::new(0);
        let lin = Linear::new(4, 3, &mut g).unwrap();
        let mut h = Generator::new(0);
        let k = 1.0 / 2.0;
        let expect: Vec<f64> = (0..15).map(|_| -k + (k - -k) * h.random()).collect();
        assert_eq!(lin.weight.data(), &expect[..12]);
        assert_eq!(lin.bias.data(), &expect[12..]);
    }

    /// Changes one input or parameter value of a finite-difference check by a step.
    type Nudge = dyn Fn(&mut Linear, &mut Tensor, usize, f64);

    /// Loss L = sum of c[k] * y[k] for fixed c; dL/dy = c.
    fn weighted_sum(y: &Tensor, c: &[f64]) -> f64 {
        let mut acc = 0.0;
        for (a, b) in y.data().iter().zip(c) {
            acc += a * b;
        }
        acc
    }

    #[test]
    fn linear_gradients_match_finite_differences() {
        let mut g = Generator::new(2);
        let mut lin = Linear::new(5, 4, &mut g).unwrap();
        let x = rand_tensor(&mut g, Shape::Matrix(3, 5), 0);
        let y = lin.forward(&x).unwrap();
        let c: Vec<f64> = (0..y.shape().numel())
            .map(|_| g.uniform(-1.0, 1.0))
            .collect();
        let gy = Tensor::new(y.shape(), c.clone()).unwrap();
        let dx = lin.backward(&gy).unwrap();
        // Central difference of L after nudging one value that `nudge` picks.
        let fd = |k: usize, nudge: &Nudge| {
            let h = 1e-6;
            let at = |d: f64| {
                let (mut l, mut xx) = (lin.clone(), x.clone());
                nudge(&mut l, &mut xx, k, d);
                weighted_sum(&l.forward(&xx).unwrap(), &c)
            };
            (at(h) - at(-h)) / (2.0 * h)
        };
        let checks: [(&[f64], &Nudge); 3] = [
            (dx.data(), &|_, xx, k, d| xx.data_mut()[k] += d),
            (lin.weight_grad.data(), &|l, _, k, d| {
                l.weight.data_mut()[k] += d
            }),
            (lin.bias_grad.data(), &|l, _, k, d| {
                l.bias.data_mut()[k] += d
            }),
        ];
        for (which, (analytic, nudge)) in checks.iter().enumerate() {
            for (k, &a) in analytic.iter().enumerate() {
                let numeric = fd(k, nudge);
                assert!(
                    (numeric - a).abs() < 1e-6,
                    "check {which}, [{k}]: {numeric} vs {a}"
                );
            }
        }
        // Gradients accumulate until zero_grad.
        let before = lin.weight_grad.clone();
        lin.forward(&x).unwrap();
        lin.backward(&gy).unwrap();
        for (a, b) in lin.weight_grad.data().iter().zip(before.data()) {
            assert!((*a - 2.0 * *b).abs() < 1e-12);
        }
        lin.zero_grad();
        assert!(lin.weight_grad.data().iter().all(|&v| v == 0.0));
    }

    #[test]
    fn activation_gradients_match_finite_differences() {
        let mut g = Generator::new(3);
        for kind in [ActivationKind::ReLU, ActivationKind::Tanh] {
            let mut act = Activation::new(kind);
            let x = rand_tensor(&mut g, Shape::Matrix(4, 6), 0);
            let y = act.forward(&x).unwrap();
            let c: Vec<f64> = (0..24).map(|_| g.uniform(-1.0, 1.0)).collect();
            let dx = act
                .backward(&Tensor::new(y.shape(), c.clone()).unwrap())
                .unwrap();
            let h = 1e-6;
            for k in 0..24 {
                let mut xp = x.clone();
                xp.data_mut()[k] += h;
                let mut xm = x.clone();
                xm.data_mut()[k] -= h;
                let mut a2 = Activation::new(kind);
                let fd = (weighted_sum(&a2.forward(&xp).unwrap(), &c)
                    - weighted_sum(&a2.forward(&xm).unwrap(), &c))
                    / (2.0 * h);
                assert!((fd - dx.data()[k]).abs() < 1e-6, "{kind:?} dx[{k}]");
            }
        }
    }

    #[test]
    fn relu_and_tanh_follow_the_documented_formulas() {
        let x = [-1.0, 0.0, -0.0, 2.0];
        let mut y = [9.0; 4];
        relu_forward(&x, &mut y);
        assert_eq!(y, [0.0, 0.0, 0.0, 2.0]);
        let mut dx = [9.0; 4];
        relu_backward(&y, &[1.0; 4], &mut dx);
        assert_eq!(dx, [0.0, 0.0, 0.0, 1.0]);
        tanh_forward(&x, &mut y);
        assert_eq!(y[3], 2.0f64.tanh());
        tanh_backward(&y, &[3.0; 4], &mut dx);
        assert_eq!(dx[3], 3.0 * (1.0 - y[3] * y[3]));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let mut g = Generator::new(0);
        let mut lin = Linear::new(2, 3, &mut g).unwrap();
        let v = Tensor::from_vec(vec![1.0, 2.0]).unwrap();
        assert!(matches!(lin.forward(&v), Err(Error::Value(_))));
        let wide = Tensor::from_rows(&[vec![1.0, 2.0, 3.0]]).unwrap();
        let e = lin.forward(&wide).unwrap_err();
        assert_eq!(
            e.message(),
            "Linear(2 -> 3): expected input with 2 columns, got 3 (input shape (1, 3))"
        );
        let g1 = Tensor::from_rows(&[vec![1.0, 2.0, 3.0]]).unwrap();
        assert!(matches!(lin.backward(&g1), Err(Error::Runtime(_))));
        lin.forward(&Tensor::from_rows(&[vec![1.0, 2.0]]).unwrap())
            .unwrap();
        assert!(matches!(lin.backward(&v), Err(Error::Value(_))));
        assert!(matches!(Linear::new(0, 3, &mut g), Err(Error::Value(_))));
        assert!(matches!(
            Linear::new(usize::MAX, 3, &mut g),
            Err(Error::Memory(_))
        ));
        let mut act = Activation::new(ActivationKind::Tanh);
        assert!(matches!(act.backward(&v), Err(Error::Runtime(_))));
        act.forward(&wide).unwrap();
        assert!(matches!(act.backward(&v), Err(Error::Value(_))));
    }
}
