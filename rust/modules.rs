//! The layer family's kernels, mirroring `pyfw/modules.py`: `Linear` and `Dropout`.
//!
//! The kernels are free functions over row-major slices, so that the binding
//! layer runs them on the live storage of Python-visible tensors. Each layer
//! also has a small state struct (`LinearState`, `DropoutState`) that keeps what
//! `backward` needs in plain buffers; the bindings hold one per Python object.
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

use crate::error::{check_grad, checked_size, not_forwarded, try_zeros, Error, Owner, Result};
use crate::generator::Generator;
use crate::simd::{dispatch, Kernel};
use crate::tensor::Shape;

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

/// `y = x W^T + b` with `wt = W^T` (in, out), for `x` (batch, in); `y` is (batch, out).
pub struct LinearForward<'a> {
    /// The sizes.
    pub d: Dims,
    /// The input, (batch, in).
    pub x: &'a [f64],
    /// The transposed weight, (in, out).
    pub wt: &'a [f64],
    /// The bias, (out,).
    pub b: &'a [f64],
    /// The output, (batch, out).
    pub y: &'a mut [f64],
}

impl Kernel for LinearForward<'_> {
    #[inline(always)]
    fn run(self) {
        let Dims { in_f, out_f, .. } = self.d;
        let (wt, b) = (self.wt, self.b);
        let mut nz = Vec::with_capacity(in_f);
        for (xr, yr) in self
            .x
            .chunks_exact(in_f)
            .zip(self.y.chunks_exact_mut(out_f))
        {
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
}

/// Accumulate `dL/dW` into `gw` (out, in) and `dL/db` into `gb` (out,), and write
/// `dL/dx` (batch, in) into `dx`, from the input `x`, the gradient `g` (batch, out)
/// and the weight `w` (out, in).
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
    /// The bias gradient, accumulated in place.
    pub gb: &'a mut [f64],
    /// `dL/dx`, written.
    pub dx: &'a mut [f64],
}

impl Kernel for LinearBackward<'_> {
    #[inline(always)]
    fn run(self) {
        let Dims { batch, in_f, out_f } = self.d;
        let (x, g, w) = (self.x, self.g, self.w);
        let mut nz = Vec::with_capacity(batch.max(out_f));
        // dL/dW[o][:] = dL/dW[o][:] + g[n][o] * x[n][:] over n in order, skipping g[n][o] == 0.
        for (o, gwr) in self.gw.chunks_exact_mut(in_f).enumerate() {
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
            for (a, &v) in self.gb.iter_mut().zip(gr) {
                *a += v;
            }
        }
        // dL/dx[n][:] = 0.0 + g[n][o] * W[o][:] over o in order, skipping g[n][o] == 0.
        for (gr, dxr) in g.chunks_exact(out_f).zip(self.dx.chunks_exact_mut(in_f)) {
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
}

/// What a Linear layer keeps between `forward` and `backward`: its sizes, the
/// last input, and a scratch buffer for the transposed weight.
#[derive(Clone, Debug, Default)]
pub struct LinearState {
    in_f: usize,
    out_f: usize,
    input: Option<Vec<f64>>,
    wt: Vec<f64>,
    owner: Owner,
}

impl LinearState {
    /// The state of `Linear(in_f -> out_f)` before any forward.
    pub fn new(in_f: usize, out_f: usize) -> LinearState {
        LinearState {
            in_f,
            out_f,
            input: None,
            wt: Vec::new(),
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

    /// `x W^T + b` for `x` of `shape` (batch, in), with `w` (out, in) and `b` (out,);
    /// keeps `x` for `backward`.
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
        let mut y = try_zeros(checked_size(batch, d.out_f, "Linear")?, "Linear")?;
        transpose_into(w, d.out_f, d.in_f, &mut self.wt);
        dispatch(LinearForward {
            d,
            x: &x,
            wt: &self.wt,
            b,
            y: &mut y,
        });
        self.input = Some(x);
        self.owner.set();
        Ok((y, Shape::Matrix(batch, d.out_f)))
    }

    /// Accumulate the weight and bias gradients into `gw` and `gb` from `g` of `shape`
    /// (batch, out); returns `dL/dx`.
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
            .ok_or_else(|| not_forwarded(&self.name()))?;
        self.owner.check(&self.name())?;
        let batch = x.len() / self.in_f;
        check_grad(&self.name(), shape, Shape::Matrix(batch, self.out_f))?;
        let mut dx = try_zeros(x.len(), "Linear")?;
        let d = Dims {
            batch,
            in_f: self.in_f,
            out_f: self.out_f,
        };
        dispatch(LinearBackward {
            d,
            x,
            g,
            w,
            gw,
            gb,
            dx: &mut dx,
        });
        Ok((dx, Shape::Matrix(batch, self.in_f)))
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
        self.owner.set();
        let Some(g) = rng else {
            self.mask = Some((Vec::new(), shape));
            return Ok(x);
        };
        let scale = 1.0 / (1.0 - self.p);
        let mut mask = try_zeros(x.len(), "Dropout")?;
        for m in mask.iter_mut() {
            *m = if g.random() < self.p { 0.0 } else { scale };
        }
        for (v, &m) in x.iter_mut().zip(&mask) {
            *v *= m;
        }
        self.mask = Some((mask, shape));
        Ok(x)
    }

    /// `dx = g * m` with the mask of the last forward.
    pub fn backward(&self, mut g: Vec<f64>, shape: Shape) -> Result<Vec<f64>> {
        let (mask, ms) = self.mask.as_ref().ok_or_else(|| not_forwarded("Dropout"))?;
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

#[cfg(test)]
// The references spell each fold out literally, index by index.
#[allow(clippy::needless_range_loop, clippy::assign_op_pattern)]
mod tests {
    use super::*;
    use crate::simd::portable;

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

    fn bits(v: &[f64]) -> Vec<u64> {
        v.iter().map(|f| f.to_bits()).collect()
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
    fn forward_matches_the_documented_fold_bit_for_bit() {
        let mut g = Generator::new(1);
        for &(batch, in_f, out_f) in &[(1, 1, 1), (3, 2, 25), (10, 25, 25), (4, 25, 2), (7, 9, 17)]
        {
            let d = Dims { batch, in_f, out_f };
            let (w, b) = linear_init(&mut g, in_f, out_f).unwrap();
            let x = rand_vec(&mut g, batch * in_f, 3);
            let mut st = LinearState::new(in_f, out_f);
            let (y, shape) = st
                .forward(x.clone(), Shape::Matrix(batch, in_f), &w, &b)
                .unwrap();
            assert_eq!(shape, Shape::Matrix(batch, out_f));
            assert_eq!(bits(&y), bits(&reference_forward(d, &x, &w, &b)));
            let mut wt = Vec::new();
            transpose_into(&w, out_f, in_f, &mut wt);
            let mut y2 = vec![0.0; batch * out_f];
            portable(LinearForward {
                d,
                x: &x,
                wt: &wt,
                b: &b,
                y: &mut y2,
            });
            assert_eq!(bits(&y), bits(&y2));
        }
    }

    #[test]
    fn backward_matches_the_documented_folds_and_the_portable_path() {
        let mut g = Generator::new(9);
        for &(batch, in_f, out_f) in &[(1, 1, 1), (10, 2, 25), (10, 25, 25), (3, 25, 2), (7, 17, 9)]
        {
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
            for portable_path in [false, true] {
                let (mut gw, mut gb, mut dx) = (gw0.clone(), gb0.clone(), vec![9.0; batch * in_f]);
                let k = LinearBackward {
                    d,
                    x: &x,
                    g: &gy,
                    w: &w,
                    gw: &mut gw,
                    gb: &mut gb,
                    dx: &mut dx,
                };
                if portable_path {
                    portable(k)
                } else {
                    dispatch(k)
                }
                assert_eq!(bits(&gw), bits(&rgw));
                assert_eq!(bits(&gb), bits(&rgb));
                assert_eq!(bits(&dx), bits(&rdx));
            }
        }
    }

    #[test]
    fn init_draws_weight_then_bias() {
        let mut g = Generator::new(0);
        let (w, b) = linear_init(&mut g, 4, 3).unwrap();
        let mut h = Generator::new(0);
        let k = 1.0 / 2.0;
        let expect: Vec<f64> = (0..15).map(|_| -k + (k - -k) * h.random()).collect();
        assert_eq!(w, &expect[..12]);
        assert_eq!(b, &expect[12..]);
    }

    /// L = sum of c[k] * y[k] for fixed c, so that dL/dy = c.
    fn weighted_sum(y: &[f64], c: &[f64]) -> f64 {
        let mut acc = 0.0;
        for (a, b) in y.iter().zip(c) {
            acc += a * b;
        }
        acc
    }

    #[test]
    fn linear_gradients_match_finite_differences() {
        let (batch, in_f, out_f) = (3, 5, 4);
        let mut g = Generator::new(2);
        let (w, b) = linear_init(&mut g, in_f, out_f).unwrap();
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
            .forward(vec![1.0, 2.0], Shape::Vector(2), &w, &b)
            .unwrap_err();
        assert!(matches!(e, Error::Value(_)));
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
            linear_init(&mut Generator::new(0), usize::MAX, 3),
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
}
