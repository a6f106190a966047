//! The activation family's kernels, mirroring `pyfw/activations.py`: the same
//! members, in the same order, under the same names.
//!
//! [`activation_table!`](crate::activation_table) lists the members once: each
//! line names a member, its constructor arguments with their types and
//! defaults, and its Python signature. From it come the member structs, the
//! [`Activation`] enum that dispatches to them, and (in the bindings) one
//! Python class per member. A member writes only its two kernels, as an
//! [`ActivationKernel`] impl below. The order of floating-point operations of
//! each kernel is in docs/NUMERICS.md, section "Activations".

use crate::error::{check_grad, copy_into, pooled_zeros, recycle, try_zeros, Error, Owner, Result};
use crate::tensor::Shape;

/// The members of the family. `activation_table!(m)` calls the macro `m` with
/// one line per member: `Name { arg: type = default, ... } "(python signature)";`.
#[macro_export]
macro_rules! activation_table {
    ($callback:ident) => {
        $callback! {
            /// `y = max(x, 0)`.
            ReLU {} "()";
            /// `y = tanh(x)`.
            Tanh {} "()";
            /// `y = 1 / (1 + exp(-x))`.
            Sigmoid {} "()";
            /// `y = x` for `x > 0`, else `negative_slope * x`.
            LeakyReLU { negative_slope: f64 = 0.01 } "(negative_slope=0.01)";
            /// `y = x` for `x > 0`, else `alpha * (exp(x) - 1)`.
            ELU { alpha: f64 = 1.0 } "(alpha=1.0)";
            /// `y = x * Phi(x)`, the exact (erf) form.
            GELU {} "()";
            /// `y = x * sigmoid(x)`.
            SiLU {} "()";
            /// `y = log(1 + exp(beta x)) / beta`, and `x` past the threshold.
            Softplus { beta: f64 = 1.0, threshold: f64 = 20.0 } "(beta=1.0, threshold=20.0)";
            /// `y = exp(x - max) / sum(exp(x - max))` along `dim`.
            Softmax { dim: i64 = 1 } "(dim=1)";
            /// `y = (x - max) - log(sum(exp(x - max)))` along `dim`.
            LogSoftmax { dim: i64 = 1 } "(dim=1)";
            /// `y = x`.
            Identity {} "()";
            /// `y = x` clamped to `[min_val, max_val]`.
            Hardtanh { min_val: f64 = -1.0, max_val: f64 = 1.0 } "(min_val=-1.0, max_val=1.0)";
        }
    };
}

/// One member's two kernels over a whole buffer of `shape`, of any rank.
pub trait ActivationKernel {
    /// Check the arguments; the constructors call it.
    fn check(&self) -> Result<()> {
        Ok(())
    }
    /// Write `y` from `x`; an error for a shape the member does not accept.
    fn forward(&self, x: &[f64], shape: Shape, y: &mut [f64]) -> Result<()>;
    /// Write `dx` from the saved input `x`, output `y` and the gradient `g`.
    fn backward(&self, x: &[f64], y: &[f64], g: &[f64], shape: Shape, dx: &mut [f64])
        -> Result<()>;
}

macro_rules! define_members {
    ($($(#[$doc:meta])* $name:ident { $($arg:ident : $ty:ty = $default:expr),* } $sig:literal;)*) => {
        $crate::family_members! {
            Activation, "arguments";
            $($(#[$doc])* $name { $($arg : $ty = $default),* } $sig;)*
        }

        impl Activation {
            /// See [`ActivationKernel::forward`].
            pub fn forward(&self, x: &[f64], shape: Shape, y: &mut [f64]) -> Result<()> {
                match self {
                    $(Activation::$name(k) => k.forward(x, shape, y),)*
                }
            }

            /// See [`ActivationKernel::backward`].
            pub fn backward(
                &self,
                x: &[f64],
                y: &[f64],
                g: &[f64],
                shape: Shape,
                dx: &mut [f64],
            ) -> Result<()> {
                match self {
                    $(Activation::$name(k) => k.backward(x, y, g, shape, dx),)*
                }
            }
        }
    };
}

crate::activation_table!(define_members);

/// What an activation keeps between `forward` and `backward`: its member and
/// the last input and output.
#[derive(Clone, Debug)]
pub struct ActState {
    kind: Activation,
    saved: Option<(Vec<f64>, Vec<f64>, Shape)>,
    owner: Owner,
}

impl ActState {
    /// A fresh state for `kind`.
    pub fn new(kind: Activation) -> ActState {
        ActState {
            kind,
            saved: None,
            owner: Owner::default(),
        }
    }

    /// The member and its arguments.
    pub fn kind(&self) -> Activation {
        self.kind
    }

    /// The output for `x` of `shape`; keeps `x` and the output for `backward`, unless
    /// grad mode is off.
    pub fn forward(&mut self, x: Vec<f64>, shape: Shape) -> Result<Vec<f64>> {
        let mut y = pooled_zeros(x.len(), self.kind.name())?;
        self.kind.forward(&x, shape, &mut y)?;
        if !self.owner.forward() {
            self.saved = None; // under no_grad: nothing kept, the last forward's state dropped
            return Ok(y);
        }
        match &mut self.saved {
            Some((sx, sy, s)) => {
                recycle(std::mem::replace(sx, x));
                sy.clear();
                sy.extend_from_slice(&y);
                *s = shape;
            }
            None => {
                let mut copy = try_zeros(y.len(), self.kind.name())?;
                copy.copy_from_slice(&y);
                self.saved = Some((x, copy, shape));
            }
        }
        Ok(y)
    }

    /// Keep `x` and its output `y`, of `shape`, for `backward`, as `forward` does;
    /// for a training loop that ran the kernels on buffers of its own.
    pub fn remember(&mut self, x: &[f64], y: &[f64], shape: Shape) -> Result<()> {
        let who = self.kind.name();
        let (sx, sy, s) = self
            .saved
            .get_or_insert_with(|| (Vec::new(), Vec::new(), shape));
        copy_into(sx, x, who)?;
        copy_into(sy, y, who)?;
        *s = shape;
        self.owner.set();
        Ok(())
    }

    /// The input gradient from `g` of `shape`, the shape of the last output.
    pub fn backward(&self, g: &[f64], shape: Shape) -> Result<Vec<f64>> {
        let who = self.kind.name();
        let (x, y, s) = self
            .saved
            .as_ref()
            .ok_or_else(|| self.owner.not_forwarded(who))?;
        self.owner.check(who)?;
        check_grad(who, shape, *s)?;
        let mut dx = pooled_zeros(y.len(), who)?;
        self.kind.backward(x, y, g, shape, &mut dx)?;
        Ok(dx)
    }
}

/// `y[k] = f(x[k])` for every element.
#[inline(always)]
fn map(x: &[f64], y: &mut [f64], f: impl Fn(f64) -> f64) -> Result<()> {
    for (o, &v) in y.iter_mut().zip(x) {
        *o = f(v);
    }
    Ok(())
}

/// `dx[k] = f(x[k], y[k], g[k])` for every element.
#[inline(always)]
fn map_grad(
    x: &[f64],
    y: &[f64],
    g: &[f64],
    dx: &mut [f64],
    f: impl Fn(f64, f64, f64) -> f64,
) -> Result<()> {
    for (((d, &xv), &yv), &gv) in dx.iter_mut().zip(x).zip(y).zip(g) {
        *d = f(xv, yv, gv);
    }
    Ok(())
}

/// `1 / (1 + exp(-x))` for `x >= 0`, else `exp(x) / (1 + exp(x))`: never NaN.
#[inline(always)]
pub(crate) fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// The C library's `erf`, as Python's `math.erf` (Rust's standard library has none).
fn erf(x: f64) -> f64 {
    mod libm {
        extern "C" {
            pub fn erf(x: f64) -> f64;
        }
    }
    // SAFETY: `erf` (C99 7.12.8.1) is defined for every double, takes its
    // argument by value and touches no memory.
    unsafe { libm::erf(x) }
}

/// 1/sqrt(2) and 1/sqrt(2*pi) as float64 (the same values as the literals in pyfw/activations.py).
const SQRT1_2: f64 = std::f64::consts::FRAC_1_SQRT_2;
const INV_SQRT_2PI: f64 = 0.3989422804014327;

impl ActivationKernel for ReLU {
    fn forward(&self, x: &[f64], _: Shape, y: &mut [f64]) -> Result<()> {
        map(x, y, |v| if v > 0.0 { v } else { 0.0 })
    }
    fn backward(&self, x: &[f64], y: &[f64], g: &[f64], _: Shape, dx: &mut [f64]) -> Result<()> {
        map_grad(x, y, g, dx, |_, y, g| if y > 0.0 { g } else { 0.0 })
    }
}

impl ActivationKernel for Tanh {
    fn forward(&self, x: &[f64], _: Shape, y: &mut [f64]) -> Result<()> {
        map(x, y, f64::tanh)
    }
    fn backward(&self, x: &[f64], y: &[f64], g: &[f64], _: Shape, dx: &mut [f64]) -> Result<()> {
        map_grad(x, y, g, dx, |_, y, g| g * (1.0 - y * y))
    }
}

impl ActivationKernel for Sigmoid {
    fn forward(&self, x: &[f64], _: Shape, y: &mut [f64]) -> Result<()> {
        map(x, y, sigmoid)
    }
    fn backward(&self, x: &[f64], y: &[f64], g: &[f64], _: Shape, dx: &mut [f64]) -> Result<()> {
        map_grad(x, y, g, dx, |_, y, g| g * (y * (1.0 - y)))
    }
}

impl ActivationKernel for LeakyReLU {
    fn forward(&self, x: &[f64], _: Shape, y: &mut [f64]) -> Result<()> {
        let s = self.negative_slope;
        map(x, y, |v| if v > 0.0 { v } else { v * s })
    }
    fn backward(&self, x: &[f64], y: &[f64], g: &[f64], _: Shape, dx: &mut [f64]) -> Result<()> {
        let s = self.negative_slope;
        map_grad(x, y, g, dx, |x, _, g| if x > 0.0 { g } else { g * s })
    }
}

impl ActivationKernel for ELU {
    fn forward(&self, x: &[f64], _: Shape, y: &mut [f64]) -> Result<()> {
        let a = self.alpha;
        map(x, y, |v| if v > 0.0 { v } else { a * v.exp_m1() })
    }
    fn backward(&self, x: &[f64], y: &[f64], g: &[f64], _: Shape, dx: &mut [f64]) -> Result<()> {
        let a = self.alpha;
        map_grad(
            x,
            y,
            g,
            dx,
            |x, _, g| if x > 0.0 { g } else { g * (a * x.exp()) },
        )
    }
}

impl ActivationKernel for GELU {
    fn forward(&self, x: &[f64], _: Shape, y: &mut [f64]) -> Result<()> {
        map(x, y, |v| v * (0.5 * (1.0 + erf(v * SQRT1_2))))
    }
    fn backward(&self, x: &[f64], y: &[f64], g: &[f64], _: Shape, dx: &mut [f64]) -> Result<()> {
        map_grad(x, y, g, dx, |x, _, g| {
            let cdf = 0.5 * (1.0 + erf(x * SQRT1_2));
            let pdf = INV_SQRT_2PI * (-0.5 * (x * x)).exp();
            g * (cdf + x * pdf)
        })
    }
}

impl ActivationKernel for SiLU {
    fn forward(&self, x: &[f64], _: Shape, y: &mut [f64]) -> Result<()> {
        map(x, y, |v| v * sigmoid(v))
    }
    fn backward(&self, x: &[f64], y: &[f64], g: &[f64], _: Shape, dx: &mut [f64]) -> Result<()> {
        map_grad(x, y, g, dx, |x, _, g| {
            let s = sigmoid(x);
            g * (s * (1.0 + x * (1.0 - s)))
        })
    }
}

impl ActivationKernel for Softplus {
    fn check(&self) -> Result<()> {
        if self.beta == 0.0 {
            return Err(Error::Value(format!(
                "Softplus: beta must be nonzero, got {}",
                crate::tensor::py_float_repr(self.beta)
            )));
        }
        Ok(())
    }
    fn forward(&self, x: &[f64], _: Shape, y: &mut [f64]) -> Result<()> {
        let (beta, threshold) = (self.beta, self.threshold);
        map(x, y, |v| {
            let z = v * beta;
            if z > threshold {
                v
            } else {
                ((if z > 0.0 { z } else { 0.0 }) + (-z.abs()).exp().ln_1p()) / beta
            }
        })
    }
    fn backward(&self, x: &[f64], y: &[f64], g: &[f64], _: Shape, dx: &mut [f64]) -> Result<()> {
        let (beta, threshold) = (self.beta, self.threshold);
        map_grad(x, y, g, dx, |x, _, g| {
            let z = x * beta;
            if z > threshold {
                g
            } else {
                g * sigmoid(z)
            }
        })
    }
}

/// The lines of a buffer along one dimension: `count` lines of `len` elements,
/// in row-major order of the other dims; element `k` of line `l` is at
/// `(l / inner) * len * inner + l % inner + k * inner`.
struct Lines {
    count: usize,
    len: usize,
    inner: usize,
}

impl Lines {
    /// The lines of `shape` along `dim`, any dim of any rank.
    fn of(shape: Shape, dim: i64, who: &str) -> Result<Lines> {
        let nd = shape.ndim() as i64;
        if !(-nd..nd).contains(&dim) {
            return Err(Error::Value(format!(
                "{who}: dim {dim} is out of range for a {nd}-D input of shape {shape}"
            )));
        }
        let d = dim.rem_euclid(nd) as usize;
        let dims = shape.dims();
        let len = dims[d];
        let inner: usize = dims[d + 1..].iter().product();
        Ok(Lines {
            count: shape.numel() / len,
            len,
            inner,
        })
    }

    /// The buffer indices of line `l`, in order.
    fn at(&self, l: usize) -> impl Iterator<Item = usize> + '_ {
        let start = (l / self.inner) * self.len * self.inner + l % self.inner;
        (0..self.len).map(move |k| start + k * self.inner)
    }

    /// The first maximal value of line `l` of `x`.
    fn max(&self, x: &[f64], l: usize) -> f64 {
        let mut it = self.at(l);
        let mut m = it.next().map_or(0.0, |i| x[i]);
        for i in it {
            if x[i] > m {
                m = x[i];
            }
        }
        m
    }
}

impl ActivationKernel for Softmax {
    fn forward(&self, x: &[f64], shape: Shape, y: &mut [f64]) -> Result<()> {
        let lines = Lines::of(shape, self.dim, "Softmax")?;
        for l in 0..lines.count {
            let m = lines.max(x, l);
            let mut s = 0.0;
            for i in lines.at(l) {
                y[i] = (x[i] - m).exp();
                s += y[i];
            }
            for i in lines.at(l) {
                y[i] /= s;
            }
        }
        Ok(())
    }
    fn backward(
        &self,
        _: &[f64],
        y: &[f64],
        g: &[f64],
        shape: Shape,
        dx: &mut [f64],
    ) -> Result<()> {
        let lines = Lines::of(shape, self.dim, "Softmax")?;
        for l in 0..lines.count {
            let mut d = 0.0;
            for i in lines.at(l) {
                d += g[i] * y[i];
            }
            for i in lines.at(l) {
                dx[i] = y[i] * (g[i] - d);
            }
        }
        Ok(())
    }
}

impl ActivationKernel for LogSoftmax {
    fn forward(&self, x: &[f64], shape: Shape, y: &mut [f64]) -> Result<()> {
        let lines = Lines::of(shape, self.dim, "LogSoftmax")?;
        for l in 0..lines.count {
            let m = lines.max(x, l);
            let mut s = 0.0;
            for i in lines.at(l) {
                y[i] = x[i] - m;
                s += y[i].exp();
            }
            let lse = s.ln();
            for i in lines.at(l) {
                y[i] -= lse;
            }
        }
        Ok(())
    }
    fn backward(
        &self,
        _: &[f64],
        y: &[f64],
        g: &[f64],
        shape: Shape,
        dx: &mut [f64],
    ) -> Result<()> {
        let lines = Lines::of(shape, self.dim, "LogSoftmax")?;
        for l in 0..lines.count {
            let mut gs = 0.0;
            for i in lines.at(l) {
                gs += g[i];
            }
            for i in lines.at(l) {
                dx[i] = g[i] - y[i].exp() * gs;
            }
        }
        Ok(())
    }
}

impl ActivationKernel for Identity {
    fn forward(&self, x: &[f64], _: Shape, y: &mut [f64]) -> Result<()> {
        y.copy_from_slice(x);
        Ok(())
    }
    fn backward(&self, _: &[f64], _: &[f64], g: &[f64], _: Shape, dx: &mut [f64]) -> Result<()> {
        dx.copy_from_slice(g);
        Ok(())
    }
}

impl ActivationKernel for Hardtanh {
    fn check(&self) -> Result<()> {
        if self.max_val <= self.min_val {
            return Err(Error::Value(format!(
                "Hardtanh: max_val must be above min_val, got {} and {}",
                crate::tensor::py_float_repr(self.min_val),
                crate::tensor::py_float_repr(self.max_val)
            )));
        }
        Ok(())
    }
    fn forward(&self, x: &[f64], _: Shape, y: &mut [f64]) -> Result<()> {
        let (lo, hi) = (self.min_val, self.max_val);
        map(x, y, |v| {
            if v < lo {
                lo
            } else if v > hi {
                hi
            } else {
                v
            }
        })
    }
    fn backward(&self, x: &[f64], y: &[f64], g: &[f64], _: Shape, dx: &mut [f64]) -> Result<()> {
        let (lo, hi) = (self.min_val, self.max_val);
        map_grad(
            x,
            y,
            g,
            dx,
            |x, _, g| if lo < x && x < hi { g } else { 0.0 },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::Generator;
    use crate::testing::weighted_sum;

    /// Every member with its default arguments, and with other arguments where it has some.
    fn members() -> Vec<Activation> {
        let mut out = vec![];
        macro_rules! each {
            ($($(#[$doc:meta])* $name:ident { $($arg:ident : $ty:ty = $default:expr),* } $sig:literal;)*) => {
                $(out.push($name::default().into());)*
            };
        }
        crate::activation_table!(each);
        out.push(
            LeakyReLU {
                negative_slope: -0.3,
            }
            .into(),
        );
        out.push(ELU { alpha: 0.4 }.into());
        out.push(
            Softplus {
                beta: 2.0,
                threshold: 1.5,
            }
            .into(),
        );
        out.push(Softmax { dim: 0 }.into());
        out.push(LogSoftmax { dim: -2 }.into());
        out
    }

    #[test]
    fn the_table_lists_every_member_once() {
        assert_eq!(Activation::NAMES.len(), members().len() - 5);
        for (i, n) in Activation::NAMES.iter().enumerate() {
            assert!(!Activation::NAMES[i + 1..].contains(n), "{n}");
        }
        assert_eq!(members()[3].name(), "LeakyReLU");
    }

    #[test]
    fn gradients_match_finite_differences() {
        let mut g = Generator::new(3);
        let shape = Shape::Matrix(4, 6);
        for kind in members() {
            // entries in [-3, -0.1] or [0.1, 3]: away from every kink
            let x: Vec<f64> = (0..24)
                .map(|_| {
                    let v = g.uniform(0.1, 3.0);
                    if g.random() < 0.5 {
                        -v
                    } else {
                        v
                    }
                })
                .collect();
            let c: Vec<f64> = (0..24).map(|_| g.uniform(-1.0, 1.0)).collect();
            let mut st = ActState::new(kind);
            st.forward(x.clone(), shape).unwrap();
            let dx = st.backward(&c, shape).unwrap();
            let h = 1e-6;
            for k in 0..24 {
                let at = |step: f64| {
                    let mut xs = x.clone();
                    xs[k] += step;
                    let y = ActState::new(kind).forward(xs, shape).unwrap();
                    weighted_sum(&y, &c)
                };
                let numeric = (at(h) - at(-h)) / (2.0 * h);
                assert!(
                    (numeric - dx[k]).abs() < 1e-6 * (1.0 + numeric.abs()),
                    "{kind:?} dx[{k}]: {numeric} vs {}",
                    dx[k]
                );
            }
        }
    }

    #[test]
    fn large_magnitudes_give_no_nan() {
        let x = [-1e300, -800.0, -0.0, 0.0, 800.0, 1e300];
        for kind in members() {
            let mut st = ActState::new(kind);
            let shape = Shape::Matrix(2, 3);
            let y = st.forward(x.to_vec(), shape).unwrap();
            let dx = st.backward(&[1.0; 6], shape).unwrap();
            assert!(y.iter().chain(&dx).all(|v| !v.is_nan()), "{kind:?}");
        }
        let mut y = [0.0; 2];
        Sigmoid {}
            .forward(&[-800.0, 800.0], Shape::Vector(2), &mut y)
            .unwrap();
        assert_eq!(y, [0.0, 1.0]);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let mut st = ActState::new(Tanh {}.into());
        assert!(matches!(
            st.backward(&[1.0], Shape::Vector(1)),
            Err(Error::Runtime(_))
        ));
        st.forward(vec![1.0, 2.0], Shape::Vector(2)).unwrap();
        assert!(matches!(
            st.backward(&[1.0], Shape::Vector(1)),
            Err(Error::Value(_))
        ));
        let mut sm = ActState::new(Softmax::default().into());
        let e = sm.forward(vec![1.0, 2.0], Shape::Vector(2)).unwrap_err();
        assert_eq!(
            e.message(),
            "Softmax: dim 1 is out of range for a 1-D input of shape (2,)"
        );
    }
}
