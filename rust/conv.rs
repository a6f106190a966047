//! The convolution family's kernels (see `pyfw/conv.py`): a 2-D convolution
//! over `(N, C, H, W)` with zero padding, stride and dilation (`Conv1d` runs it
//! with `H = 1`), and max and average pooling.
//!
//! Every output is a left fold in the order docs/NUMERICS.md ("Conv2d") gives,
//! the same as `pyfw`'s loops. Loops run across independent outputs (the
//! output positions `j` of one row) innermost, never along a fold, and no
//! multiply-add is fused, so the bits match `pyfw`'s.

use crate::error::{checked_size, try_zeros, Error, Result};

/// Sizes of one convolution: input `(n, c, h, w)`, weight `(o, c, kh, kw)`,
/// stride, zero padding and dilation per spatial dimension, output `(n, o, oh, ow)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geom {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: (usize, usize),
    pub padding: (usize, usize),
    pub dilation: (usize, usize),
}

impl Geom {
    /// `(oh, ow)`: `(size + 2 padding - dilation (k - 1) - 1) / stride + 1` per
    /// dimension (torch's formula), or None when the dilated kernel does not fit
    /// in the padded input or a size is 0.
    pub fn out_size(&self) -> Option<(usize, usize)> {
        let one = |size: usize, k: usize, s: usize, p: usize, d: usize| {
            let span = d.checked_mul(k.checked_sub(1)?)?.checked_add(1)?;
            let padded = size.checked_add(p.checked_mul(2)?)?;
            if s == 0 || d == 0 || k == 0 || size == 0 || padded < span {
                return None;
            }
            Some((padded - span) / s + 1)
        };
        let (sh, sw) = self.stride;
        let (ph, pw) = self.padding;
        let (dh, dw) = self.dilation;
        Some((
            one(self.h, self.kh, sh, ph, dh)?,
            one(self.w, self.kw, sw, pw, dw)?,
        ))
    }
}

/// The output positions `lo..hi` (of `out` in all) whose input position
/// `pos * stride + off` falls inside `0..size`; `off` is `k * dilation - padding`.
/// A buffer of `dims`' product of zeros, or a `MemoryError` (never an abort) when the
/// size overflows or cannot be allocated: outputs grow with padding, stride and scale.
fn zeros(dims: &[usize]) -> Result<Vec<f64>> {
    try_zeros(numel(dims)?, "convolution family")
}

/// The product of `dims`, or a `MemoryError` when it overflows.
fn numel(dims: &[usize]) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| checked_size(acc, d, "convolution family"))
}

/// An empty buffer with room for `n` items, or a `MemoryError`.
fn room<T>(n: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| Error::Memory(format!("convolution family: cannot allocate {n} elements")))?;
    Ok(v)
}

fn span(off: isize, stride: usize, size: usize, out: usize) -> (usize, usize) {
    let s = stride as isize;
    let lo = if off < 0 { (-off + s - 1) / s } else { 0 };
    let last = size as isize - 1 - off;
    let hi = if last < 0 { 0 } else { last / s + 1 };
    let (lo, hi) = ((lo as usize).min(out), (hi as usize).min(out));
    (lo, hi.max(lo))
}

/// `y[n, o, i, j]`: a fold over `(c, ki, kj)` in row-major order of
/// `x[n, c, i sh + ki dh - ph, j sw + kj dw - pw] * w[o, c, ki, kj]`, starting at
/// `bias[o]` (`0.0` without a bias); terms that fall in the padding are skipped.
/// `oh`, `ow` are [`Geom::out_size`]'s.
pub fn forward(g: &Geom, x: &[f64], weight: &[f64], bias: Option<&[f64]>) -> Result<Vec<f64>> {
    let (oh, ow) = g.out_size().expect("conv: the caller checks the sizes");
    let mut y = zeros(&[g.n, g.o, oh, ow])?;
    let (sh, sw) = g.stride;
    let (ph, pw) = g.padding;
    let (dh, dw) = g.dilation;
    for n in 0..g.n {
        for o in 0..g.o {
            let plane = &mut y[(n * g.o + o) * oh * ow..][..oh * ow];
            plane.fill(bias.map_or(0.0, |b| b[o]));
            for c in 0..g.c {
                let xplane = &x[(n * g.c + c) * g.h * g.w..][..g.h * g.w];
                for ki in 0..g.kh {
                    let offh = (ki * dh) as isize - ph as isize;
                    let (i0, i1) = span(offh, sh, g.h, oh);
                    for kj in 0..g.kw {
                        let wv = weight[((o * g.c + c) * g.kh + ki) * g.kw + kj];
                        let offw = (kj * dw) as isize - pw as isize;
                        let (j0, j1) = span(offw, sw, g.w, ow);
                        for i in i0..i1 {
                            let hi = (i * sh) as isize + offh;
                            let xrow = &xplane[hi as usize * g.w..][..g.w];
                            let yrow = &mut plane[i * ow..][..ow];
                            let base = (j0 * sw) as isize + offw;
                            let base = base as usize;
                            for (t, yv) in yrow[j0..j1].iter_mut().enumerate() {
                                *yv += xrow[base + t * sw] * wv;
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(y)
}

/// The backward pass for the output gradient `gy` (shape `(n, o, oh, ow)`):
/// accumulates into `weight_grad` and `bias_grad` and returns `dx`.
///
/// * `dW[o, c, ki, kj]`: a fold over `(n, i, j)` in row-major order of
///   `gy[n, o, i, j] * x[n, c, ...]`, starting at the gradient already there,
///   skipping the padding;
/// * `db[o]`: a fold over `(n, i, j)` of `gy[n, o, i, j]`, starting at the gradient there;
/// * `dx[n, c, h, w]`: a fold over `(o, ki, kj)` in row-major order of
///   `gy[n, o, i, j] * w[o, c, ki, kj]` for the `(i, j)` that read `(h, w)`, starting at `0.0`.
pub fn backward(
    g: &Geom,
    x: &[f64],
    weight: &[f64],
    gy: &[f64],
    weight_grad: &mut [f64],
    bias_grad: Option<&mut [f64]>,
) -> Result<Vec<f64>> {
    let (oh, ow) = g.out_size().expect("conv: the caller checks the sizes");
    if let Some(gb) = bias_grad {
        channel_sums(gy, g.n, oh * ow, gb);
    }
    weight_grad_into(g, x, gy, weight_grad);
    input_grad(g, weight, gy, None)
}

/// Adds to `acc[o]`, for each channel `o` of `t` (`n` samples of `acc.len()` channels of
/// `plane` values), a fold over `(n, position)` in row-major order of its values.
pub fn channel_sums(t: &[f64], n: usize, plane: usize, acc: &mut [f64]) {
    let ch = acc.len();
    for (o, a) in acc.iter_mut().enumerate() {
        for s in 0..n {
            for v in &t[(s * ch + o) * plane..][..plane] {
                *a += v;
            }
        }
    }
}

/// The weight gradient of [`backward`], folded into `weight_grad`.
pub fn weight_grad_into(g: &Geom, x: &[f64], gy: &[f64], weight_grad: &mut [f64]) {
    let (oh, ow) = g.out_size().expect("conv: the caller checks the sizes");
    let (sh, sw) = g.stride;
    let (ph, pw) = g.padding;
    let (dh, dw) = g.dilation;
    for o in 0..g.o {
        for c in 0..g.c {
            for ki in 0..g.kh {
                let offh = (ki * dh) as isize - ph as isize;
                let (i0, i1) = span(offh, sh, g.h, oh);
                for kj in 0..g.kw {
                    let offw = (kj * dw) as isize - pw as isize;
                    let (j0, j1) = span(offw, sw, g.w, ow);
                    let base = ((j0 * sw) as isize + offw) as usize;
                    let idx = ((o * g.c + c) * g.kh + ki) * g.kw + kj;
                    let mut acc = weight_grad[idx];
                    for n in 0..g.n {
                        let xplane = &x[(n * g.c + c) * g.h * g.w..][..g.h * g.w];
                        let gp = &gy[(n * g.o + o) * oh * ow..][..oh * ow];
                        for i in i0..i1 {
                            let hi = ((i * sh) as isize + offh) as usize;
                            let xrow = &xplane[hi * g.w..][..g.w];
                            for (t, gv) in gp[i * ow + j0..i * ow + j1].iter().enumerate() {
                                acc += gv * xrow[base + t * sw];
                            }
                        }
                    }
                    weight_grad[idx] = acc;
                }
            }
        }
    }
}

/// The input gradient of [`backward`]; each `dx[n, c]` plane starts at `start[c]` instead of
/// `0.0` when given (the bias of `ConvTranspose2d`, whose forward this is).
pub fn input_grad(g: &Geom, weight: &[f64], gy: &[f64], start: Option<&[f64]>) -> Result<Vec<f64>> {
    let (oh, ow) = g.out_size().expect("conv: the caller checks the sizes");
    let (sh, sw) = g.stride;
    let (ph, pw) = g.padding;
    let (dh, dw) = g.dilation;
    let mut dx = zeros(&[g.n, g.c, g.h, g.w])?;
    for n in 0..g.n {
        for c in 0..g.c {
            let dplane = &mut dx[(n * g.c + c) * g.h * g.w..][..g.h * g.w];
            if let Some(b) = start {
                dplane.fill(b[c]);
            }
            for o in 0..g.o {
                let gp = &gy[(n * g.o + o) * oh * ow..][..oh * ow];
                for ki in 0..g.kh {
                    let offh = (ki * dh) as isize - ph as isize;
                    let (i0, i1) = span(offh, sh, g.h, oh);
                    for kj in 0..g.kw {
                        let wv = weight[((o * g.c + c) * g.kh + ki) * g.kw + kj];
                        let offw = (kj * dw) as isize - pw as isize;
                        let (j0, j1) = span(offw, sw, g.w, ow);
                        let base = ((j0 * sw) as isize + offw) as usize;
                        for i in i0..i1 {
                            let hi = ((i * sh) as isize + offh) as usize;
                            let drow = &mut dplane[hi * g.w..][..g.w];
                            for (t, gv) in gp[i * ow + j0..i * ow + j1].iter().enumerate() {
                                drow[base + t * sw] += gv * wv;
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(dx)
}

/// Nearest upsampling of `planes` planes of `h` x `w` by `(sh, sw)`: `y[h, v] = x[h / sh, v / sw]`.
pub fn upsample_forward(
    x: &[f64],
    planes: usize,
    h: usize,
    w: usize,
    s: (usize, usize),
) -> Result<Vec<f64>> {
    let (sh, sw) = s;
    let mut y = room(numel(&[planes, h, sh, w, sw])?)?;
    for p in 0..planes {
        for i in 0..h {
            let row = &x[(p * h + i) * w..][..w];
            for _ in 0..sh {
                for &v in row {
                    for _ in 0..sw {
                        y.push(v);
                    }
                }
            }
        }
    }
    Ok(y)
}

/// Its gradient: `dx[i, j]`, a fold over `(a, b)` in row-major order of `gy[i sh + a, j sw + b]`,
/// starting at `0.0` (`h`, `w` are the input's).
pub fn upsample_backward(
    gy: &[f64],
    planes: usize,
    h: usize,
    w: usize,
    s: (usize, usize),
) -> Result<Vec<f64>> {
    let (sh, sw) = s;
    let ow = w * sw;
    let mut dx = zeros(&[planes, h, w])?;
    for p in 0..planes {
        for i in 0..h {
            let drow = &mut dx[(p * h + i) * w..][..w];
            for a in 0..sh {
                let grow = &gy[(p * h * sh + i * sh + a) * ow..][..ow];
                for b in 0..sw {
                    for (j, d) in drow.iter_mut().enumerate() {
                        *d += grow[j * sw + b];
                    }
                }
            }
        }
    }
    Ok(dx)
}

/// Max pooling of `planes` planes of `h` x `w` (the `n` of `g`, with `c = o = 1` and
/// dilation 1): `(y, argmax)`, the window's first value then each later one that is
/// greater or NaN (the padding is -inf, never kept), and its flat input position.
pub fn max_pool_forward(g: &Geom, x: &[f64]) -> Result<(Vec<f64>, Vec<usize>)> {
    let (oh, ow) = g.out_size().expect("max_pool: the caller checks the sizes");
    let (sh, sw) = g.stride;
    let (ph, pw) = g.padding;
    let mut y = room(numel(&[g.n, oh, ow])?)?;
    let mut arg = room(y.capacity())?;
    for p in 0..g.n {
        let base = p * g.h * g.w;
        for i in 0..oh {
            let top = (i * sh) as isize - ph as isize;
            let (h0, h1) = (
                top.max(0) as usize,
                ((top + g.kh as isize) as usize).min(g.h),
            );
            for j in 0..ow {
                let left = (j * sw) as isize - pw as isize;
                let (v0, v1) = (
                    left.max(0) as usize,
                    ((left + g.kw as isize) as usize).min(g.w),
                );
                let mut best = base + h0 * g.w + v0;
                let mut acc = x[best];
                for h in h0..h1 {
                    let start = base + h * g.w + v0;
                    for (k, &v) in x[start..base + h * g.w + v1].iter().enumerate() {
                        let k = start + k;
                        if v > acc || v.is_nan() {
                            acc = v;
                            best = k;
                        }
                    }
                }
                y.push(acc);
                arg.push(best);
            }
        }
    }
    Ok((y, arg))
}

/// `dx` of max pooling: a fold over the outputs in row-major order of `gy` into the
/// input position each took its maximum from, starting at `0.0`.
pub fn max_pool_backward(n: usize, argmax: &[usize], gy: &[f64]) -> Result<Vec<f64>> {
    let mut dx = zeros(&[n])?;
    for (&k, &gv) in argmax.iter().zip(gy) {
        dx[k] += gv;
    }
    Ok(dx)
}

/// Average pooling (`g` as for [`max_pool_forward`]): a fold over `(ki, kj)` in row-major
/// order of the window's input values, starting at `0.0` and skipping the padding,
/// divided by `kh * kw`.
pub fn avg_pool_forward(g: &Geom, x: &[f64]) -> Result<Vec<f64>> {
    let (oh, ow) = g.out_size().expect("avg_pool: the caller checks the sizes");
    let (sh, sw) = g.stride;
    let (ph, pw) = g.padding;
    let div = (g.kh * g.kw) as f64;
    let mut y = zeros(&[g.n, oh, ow])?;
    for p in 0..g.n {
        let xplane = &x[p * g.h * g.w..][..g.h * g.w];
        let plane = &mut y[p * oh * ow..][..oh * ow];
        for ki in 0..g.kh {
            let offh = ki as isize - ph as isize;
            let (i0, i1) = span(offh, sh, g.h, oh);
            for kj in 0..g.kw {
                let offw = kj as isize - pw as isize;
                let (j0, j1) = span(offw, sw, g.w, ow);
                let base = ((j0 * sw) as isize + offw) as usize;
                for i in i0..i1 {
                    let hi = ((i * sh) as isize + offh) as usize;
                    let xrow = &xplane[hi * g.w..][..g.w];
                    for (t, yv) in plane[i * ow + j0..i * ow + j1].iter_mut().enumerate() {
                        *yv += xrow[base + t * sw];
                    }
                }
            }
        }
        for v in plane.iter_mut() {
            *v /= div;
        }
    }
    Ok(y)
}

/// `dx` of average pooling: a fold over `(ki, kj)` in row-major order of
/// `gy[i, j] / (kh * kw)` for the window `(i, j)` that reads the input position
/// through `(ki, kj)`, starting at `0.0`.
pub fn avg_pool_backward(g: &Geom, gy: &[f64]) -> Result<Vec<f64>> {
    let (oh, ow) = g.out_size().expect("avg_pool: the caller checks the sizes");
    let (sh, sw) = g.stride;
    let (ph, pw) = g.padding;
    let div = (g.kh * g.kw) as f64;
    let gd: Vec<f64> = gy.iter().map(|v| v / div).collect();
    let mut dx = zeros(&[g.n, g.h, g.w])?;
    for p in 0..g.n {
        let dplane = &mut dx[p * g.h * g.w..][..g.h * g.w];
        let gp = &gd[p * oh * ow..][..oh * ow];
        for ki in 0..g.kh {
            let offh = ki as isize - ph as isize;
            let (i0, i1) = span(offh, sh, g.h, oh);
            for kj in 0..g.kw {
                let offw = kj as isize - pw as isize;
                let (j0, j1) = span(offw, sw, g.w, ow);
                let base = ((j0 * sw) as isize + offw) as usize;
                for i in i0..i1 {
                    let hi = ((i * sh) as isize + offh) as usize;
                    let drow = &mut dplane[hi * g.w..][..g.w];
                    for (t, gv) in gp[i * ow + j0..i * ow + j1].iter().enumerate() {
                        drow[base + t * sw] += gv;
                    }
                }
            }
        }
    }
    Ok(dx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geom(h: usize, w: usize, k: usize, s: usize, p: usize, d: usize) -> Geom {
        Geom {
            n: 2,
            c: 2,
            h,
            w,
            o: 3,
            kh: k,
            kw: k,
            stride: (s, s),
            padding: (p, p),
            dilation: (d, d),
        }
    }

    fn values(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) - 0.5
            })
            .collect()
    }

    /// The folds of the docs, written element by element.
    fn naive(g: &Geom, x: &[f64], w: &[f64], b: &[f64]) -> Vec<f64> {
        let (oh, ow) = g.out_size().unwrap();
        let mut y = Vec::new();
        for n in 0..g.n {
            for o in 0..g.o {
                for i in 0..oh {
                    for j in 0..ow {
                        let mut acc = b[o];
                        for c in 0..g.c {
                            for ki in 0..g.kh {
                                for kj in 0..g.kw {
                                    let hi = (i * g.stride.0 + ki * g.dilation.0) as isize
                                        - g.padding.0 as isize;
                                    let wj = (j * g.stride.1 + kj * g.dilation.1) as isize
                                        - g.padding.1 as isize;
                                    if hi < 0 || wj < 0 || hi >= g.h as isize || wj >= g.w as isize
                                    {
                                        continue;
                                    }
                                    let xv =
                                        x[((n * g.c + c) * g.h + hi as usize) * g.w + wj as usize];
                                    acc += xv * w[((o * g.c + c) * g.kh + ki) * g.kw + kj];
                                }
                            }
                        }
                        y.push(acc);
                    }
                }
            }
        }
        y
    }

    #[test]
    fn forward_matches_the_documented_folds() {
        for (h, w, k, s, p, d) in [(5, 5, 3, 1, 0, 1), (7, 6, 3, 2, 1, 1), (8, 9, 2, 3, 2, 2)] {
            let g = geom(h, w, k, s, p, d);
            let x = values(g.n * g.c * h * w, 1);
            let wt = values(g.o * g.c * k * k, 2);
            let b = values(g.o, 3);
            let y = forward(&g, &x, &wt, Some(&b)).unwrap();
            let want = naive(&g, &x, &wt, &b);
            assert_eq!(crate::testing::bits(&y), crate::testing::bits(&want));
        }
    }

    #[test]
    fn backward_matches_finite_differences() {
        let g = geom(6, 5, 3, 2, 1, 1);
        let (oh, ow) = g.out_size().unwrap();
        let x = values(g.n * g.c * g.h * g.w, 4);
        let wt = values(g.o * g.c * 9, 5);
        let b = values(g.o, 6);
        let cy = values(g.n * g.o * oh * ow, 7);
        let mut gw = vec![0.0; wt.len()];
        let mut gb = vec![0.0; 3];
        let dx = backward(&g, &x, &wt, &cy, &mut gw, Some(&mut gb)).unwrap();
        let loss = |x: &[f64], w: &[f64], b: &[f64]| {
            crate::testing::weighted_sum(&forward(&g, x, w, Some(b)).unwrap(), &cy)
        };
        let eps = 1e-6;
        let check = |v: &[f64], k: usize, which: usize, analytic: f64| {
            let (mut p, mut m) = (v.to_vec(), v.to_vec());
            p[k] += eps;
            m[k] -= eps;
            let f = |t: &[f64]| match which {
                0 => loss(t, &wt, &b),
                1 => loss(&x, t, &b),
                _ => loss(&x, &wt, t),
            };
            let num = (f(&p) - f(&m)) / (2.0 * eps);
            assert!(
                (num - analytic).abs() < 1e-7,
                "{which} {k}: {num} vs {analytic}"
            );
        };
        for (k, &a) in dx.iter().enumerate() {
            check(&x, k, 0, a);
        }
        for (k, &a) in gw.iter().enumerate() {
            check(&wt, k, 1, a);
        }
        for (k, &a) in gb.iter().enumerate() {
            check(&b, k, 2, a);
        }
    }

    #[test]
    fn pools_match_finite_differences_and_keep_the_first_maximum() {
        let g = Geom {
            n: 3,
            c: 1,
            h: 5,
            w: 6,
            o: 1,
            kh: 3,
            kw: 2,
            stride: (2, 1),
            padding: (1, 1),
            dilation: (1, 1),
        };
        let (oh, ow) = g.out_size().unwrap();
        let x = values(g.n * g.h * g.w, 8);
        let cy = values(g.n * oh * ow, 9);
        let dx = avg_pool_backward(&g, &cy).unwrap();
        let eps = 1e-6;
        for k in 0..x.len() {
            let (mut p, mut m) = (x.clone(), x.clone());
            p[k] += eps;
            m[k] -= eps;
            let f =
                |t: &[f64]| crate::testing::weighted_sum(&avg_pool_forward(&g, t).unwrap(), &cy);
            assert!(((f(&p) - f(&m)) / (2.0 * eps) - dx[k]).abs() < 1e-7);
        }
        let ties = vec![1.0; g.n * g.h * g.w];
        let (y, arg) = max_pool_forward(&g, &ties).unwrap();
        assert!(y.iter().all(|&v| v == 1.0));
        // The first element of window (0, 0) is (0, 0): rows -1..2, columns -1..1.
        assert_eq!(arg[0], 0);
        let dx = max_pool_backward(ties.len(), &arg, &cy).unwrap();
        assert_eq!(dx[0], cy[0] + cy[1]);
    }

    #[test]
    fn out_size_refuses_a_kernel_larger_than_the_input() {
        assert_eq!(geom(2, 5, 3, 1, 0, 1).out_size(), None);
        assert_eq!(geom(2, 5, 3, 1, 1, 1).out_size(), Some((2, 5)));
        assert_eq!(geom(5, 5, 3, 1, 0, 3).out_size(), None);
    }
}

#[cfg(test)]
mod sizes {
    use super::*;

    #[test]
    fn an_output_too_large_is_a_memory_error_not_an_abort() {
        let x = [1.0; 4];
        assert!(matches!(
            upsample_forward(&x, 1, 2, 2, (usize::MAX / 2, 3)),
            Err(Error::Memory(_))
        ));
    }
}
