//! The loss family's kernels, mirroring `pyfw/losses.py`: the same members, in
//! the same order, under the same names.
//!
//! [`loss_table!`](crate::loss_table) lists the members once: each line names
//! a member, its own constructor arguments with their types and defaults, and
//! its Python signature (which ends with the `reduction` every member takes).
//! From it come the member structs, the [`Loss`] enum that dispatches to them,
//! and (in the bindings) one Python class per member.
//!
//! [`LossState`] owns everything but the math: the [`Reduction`], the checks of
//! the target, the one fold that adds the terms up, and the gradient kept for
//! `backward`. A member writes only its kernel, as a [`LossKernel`] impl below:
//! the loss terms (one per element, or one per row for the class losses) and
//! the derivative of their sum with respect to each input element. The order
//! of floating-point operations of each kernel and of the fold is in
//! docs/NUMERICS.md, section "Losses".

use crate::activations::sigmoid;
use crate::error::{try_zeros, Error, Owner, Result};
use crate::tensor::{py_float_repr, Shape};

/// The members of the family. `loss_table!(m)` calls the macro `m` with one
/// line per member: `Name { arg: type = default, ... } "(python signature)";`.
#[macro_export]
macro_rules! loss_table {
    ($callback:ident) => {
        $callback! {
            /// Squared error: term `(x - t)^2`.
            MSELoss {} "(reduction='mean')";
            /// Absolute error: term `|x - t|`.
            L1Loss {} "(reduction='mean')";
            /// Quadratic for `|x - t| < delta`, linear beyond.
            HuberLoss { delta: f64 = 1.0 } "(delta=1.0, reduction='mean')";
            /// Quadratic over `beta` for `|x - t| < beta`, linear beyond; L1 for `beta = 0`.
            SmoothL1Loss { beta: f64 = 1.0 } "(beta=1.0, reduction='mean')";
            /// Cross-entropy of logits (N, C) against class indices or class probabilities.
            CrossEntropyLoss { label_smoothing: f64 = 0.0 } "(label_smoothing=0.0, reduction='mean')";
            /// Negative log-likelihood of log-probabilities (N, C) at class indices.
            NLLLoss {} "(reduction='mean')";
            /// Binary cross-entropy of probabilities.
            BCELoss {} "(reduction='mean')";
            /// Binary cross-entropy of logits, stable for any logit.
            BCEWithLogitsLoss {} "(reduction='mean')";
        }
    };
}

/// `BCELoss` clamps its log terms at this value, as torch does.
pub const BCE_LOG_MIN: f64 = -100.0;

/// `BCELoss`'s backward divides by `max((1 - x) x, BCE_EPS)`, as torch does.
pub const BCE_EPS: f64 = 1e-12;

/// How the terms become the value: their fold divided by their count, or the fold itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    /// The fold divided by the number of terms (`"mean"`, the default).
    Mean,
    /// The fold (`"sum"`).
    Sum,
}

impl Reduction {
    /// The reduction named `name`, if any.
    pub fn from_name(name: &str) -> Option<Reduction> {
        match name {
            "mean" => Some(Reduction::Mean),
            "sum" => Some(Reduction::Sum),
            _ => None,
        }
    }

    /// `"mean"` or `"sum"`.
    pub fn name(self) -> &'static str {
        match self {
            Reduction::Mean => "mean",
            Reduction::Sum => "sum",
        }
    }
}

/// The `ValueError` of a `reduction` string other than `"mean"` and `"sum"`;
/// `repr` is Python's repr of the string.
pub fn bad_reduction(who: &str, repr: &str) -> Error {
    Error::Value(format!(
        "{who}: reduction must be 'mean' or 'sum', got {repr} \
         ('none' is not supported: a loss returns one Python float)"
    ))
}

/// What a member takes as its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Targets {
    /// Values of the input's shape.
    Values,
    /// One class index per row of an (N, C) input.
    Classes,
    /// Class indices, or an (N, C) tensor of class probabilities.
    Either,
}

/// A target as the caller gives it.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// Values, and their shape.
    Values(&'a [f64], Shape),
    /// Class indices, one per row of the input (checked against the input's shape).
    Classes(&'a [i64]),
}

/// A checked target, as a member's kernel sees it.
#[derive(Clone, Copy, Debug)]
pub enum Checked<'a> {
    /// Values of the input's shape.
    Values(&'a [f64]),
    /// One class index per row, each below the number of columns.
    Classes(&'a [usize]),
}

/// The target of one row of a class member.
#[derive(Clone, Copy, Debug)]
pub enum RowTarget<'a> {
    /// A class index.
    Class(usize),
    /// A row of class probabilities.
    Probabilities(&'a [f64]),
}

/// One member's kernel, and what it takes.
pub trait LossKernel {
    /// The targets the member takes (the base parses and checks them).
    fn targets(&self) -> Targets {
        Targets::Values
    }
    /// Whether every input value must lie in [0, 1].
    fn input_probs(&self) -> bool {
        false
    }
    /// Whether every target value must lie in [0, 1].
    fn target_probs(&self) -> bool {
        false
    }
    /// Check the arguments; the constructors call it.
    fn check(&self) -> Result<()> {
        Ok(())
    }
    /// Push the terms onto `terms` in order and write the derivative of their
    /// sum with respect to each element of `x` into `deriv` (zeros on entry).
    fn terms(
        &self,
        x: &[f64],
        shape: Shape,
        t: Checked<'_>,
        terms: &mut Vec<f64>,
        deriv: &mut [f64],
    );
}

macro_rules! define_members {
    ($($(#[$doc:meta])* $name:ident { $($arg:ident : $ty:ty = $default:expr),* } $sig:literal;)*) => {
        $crate::family_members! {
            Loss, "arguments";
            $($(#[$doc])* $name { $($arg : $ty = $default),* } $sig;)*
        }

        impl Loss {
            /// See [`LossKernel::targets`].
            pub fn targets(&self) -> Targets {
                match self {
                    $(Loss::$name(k) => k.targets(),)*
                }
            }

            /// See [`LossKernel::input_probs`].
            pub fn input_probs(&self) -> bool {
                match self {
                    $(Loss::$name(k) => k.input_probs(),)*
                }
            }

            /// See [`LossKernel::target_probs`].
            pub fn target_probs(&self) -> bool {
                match self {
                    $(Loss::$name(k) => k.target_probs(),)*
                }
            }

            /// See [`LossKernel::check`].
            pub fn check(&self) -> Result<()> {
                match self {
                    $(Loss::$name(k) => k.check(),)*
                }
            }

            /// See [`LossKernel::terms`].
            pub fn terms(
                &self,
                x: &[f64],
                shape: Shape,
                t: Checked<'_>,
                terms: &mut Vec<f64>,
                deriv: &mut [f64],
            ) {
                match self {
                    $(Loss::$name(k) => k.terms(x, shape, t, terms, deriv),)*
                }
            }
        }
    };
}

crate::loss_table!(define_members);

// ---------------------------------------------------------------- checks

/// The `ValueError` of a target whose shape differs from the input's.
pub fn check_same_shape(who: &str, input: Shape, target: Shape) -> Result<()> {
    if input != target {
        return Err(Error::Value(format!(
            "{who}: input shape {input} and target shape {target} differ"
        )));
    }
    Ok(())
}

/// Every value of `v` (of `shape`) in [0, 1], else a `ValueError` naming the first one outside.
pub fn check_probabilities(who: &str, what: &str, v: &[f64], shape: Shape) -> Result<()> {
    for (i, &p) in v.iter().enumerate() {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::Value(format!(
                "{who}: {what} values must be probabilities in [0, 1], got {} at {} of shape {shape}",
                py_float_repr(p),
                position(shape.dims(), i)
            )));
        }
    }
    Ok(())
}

/// The index tuple of element `i` (in row-major order) of a tensor of sizes `dims`, as
/// Python prints it: `(3,)`, `(1, 2)`.
pub fn position(dims: &[usize], mut i: usize) -> String {
    let mut at = vec![0; dims.len()];
    for (a, &d) in at.iter_mut().zip(dims).rev() {
        *a = i % d;
        i /= d;
    }
    match at.as_slice() {
        [k] => format!("({k},)"),
        _ => {
            let parts: Vec<String> = at.iter().map(|k| k.to_string()).collect();
            format!("({})", parts.join(", "))
        }
    }
}

/// `(N * d1 * ..., C)` of the input `(N, C, d1, ...)` of a class member (the number of
/// class indices it needs, and the number of classes), or the `ValueError` of a 1-D input.
pub fn class_input(who: &str, shape: Shape) -> Result<(usize, usize)> {
    let d = shape.dims();
    if d.len() < 2 {
        return Err(Error::Value(format!(
            "{who}: expected an input of shape (N, C) or (N, C, d1, ...), got shape {shape}"
        )));
    }
    Ok((shape.numel() / d[1], d[1]))
}

/// The sizes `(N, d1, ...)` of the class indices of an input `(N, C, d1, ...)`.
pub fn class_dims(shape: Shape) -> Vec<usize> {
    let d = shape.dims();
    let mut out = vec![d[0]];
    out.extend_from_slice(d.get(2..).unwrap_or(&[]));
    out
}

/// The position of class index `pos` (in row-major order) for an input of `shape`, as in
/// the messages: `3` for an (N, C) input, `(0, 2)` for (N, C, d1).
fn class_position(shape: Shape, pos: usize) -> String {
    if shape.ndim() == 2 {
        pos.to_string()
    } else {
        position(&class_dims(shape), pos)
    }
}

/// The `ValueError` of a number of class indices other than the input's rows.
pub fn check_class_count(who: &str, shape: Shape, got: usize) -> Result<()> {
    let (n, _) = class_input(who, shape)?;
    if got != n {
        return Err(Error::Value(format!(
            "{who}: input shape {shape} needs {n} class indices, got {got}"
        )));
    }
    Ok(())
}

/// The `ValueError` of nested class indices of sizes `got` other than `(N, d1, ...)`.
pub fn check_class_dims(who: &str, shape: Shape, got: &[usize]) -> Result<()> {
    let want = class_dims(shape);
    if got != want.as_slice() {
        let text = |d: &[usize]| Shape::new(d).map_or_else(|_| "()".into(), |s| s.to_string());
        return Err(Error::Value(format!(
            "{who}: input shape {shape} needs class indices of shape {}, got shape {}",
            text(&want),
            text(got)
        )));
    }
    Ok(())
}

/// The `TypeError` of a class index that is not an int; `type_name` is its Python type's
/// name; `floats` says that integral floats were admitted (a tensor's indices).
pub fn class_not_int(who: &str, shape: Shape, type_name: &str, pos: usize, floats: bool) -> Error {
    let kind = if floats {
        "ints (or a tensor of integral values)"
    } else {
        "ints"
    };
    Error::Type(format!(
        "{who}: class indices must be {kind}, got {type_name} at position {}",
        class_position(shape, pos)
    ))
}

/// The `ValueError` of a class index out of range; `value` is the index as Python prints it.
pub fn class_out_of_range(who: &str, shape: Shape, pos: usize, value: &str) -> Error {
    Error::Value(format!(
        "{who}: class index {value} at position {} is out of range \
         for input shape {shape} ({} classes)",
        class_position(shape, pos),
        shape.dims().get(1).copied().unwrap_or(0)
    ))
}

/// The class index `k` at position `pos` as an index below the input's number of classes.
pub fn check_class(who: &str, shape: Shape, pos: usize, k: i64) -> Result<usize> {
    match usize::try_from(k) {
        Ok(u) if shape.ndim() >= 2 && u < shape.dims()[1] => Ok(u),
        _ => Err(class_out_of_range(who, shape, pos, &k.to_string())),
    }
}

/// The `TypeError` of a target other than class indices for a member that takes only those.
pub fn not_class_indices(who: &str, shape: Shape) -> Error {
    if shape.ndim() == 2 {
        return Error::Type(format!(
            "{who}: target must be a list of class indices (ints), one per row of input shape {shape}"
        ));
    }
    let want = Shape::new(&class_dims(shape)).map_or_else(|_| String::new(), |s| s.to_string());
    Error::Type(format!(
        "{who}: target must be class indices (ints) of shape {want} for input shape {shape}"
    ))
}

/// The lines along dim 1 of `x`, of shape `(N, C, d1, ...)`, as rows of C in row-major order
/// of `(n, d1, ...)`: the `(N * d1 * ..., C)` input the class kernels see. `back` reverses it.
fn class_rows(x: &[f64], shape: Shape, back: bool, out: &mut [f64]) {
    let d = shape.dims();
    let (n, c) = (d[0], d[1]);
    let inner = x.len() / (n * c);
    for b in 0..n {
        for j in 0..inner {
            for k in 0..c {
                let (src, dst) = ((b * c + k) * inner + j, (b * inner + j) * c + k);
                if back {
                    out[src] = x[dst];
                } else {
                    out[dst] = x[src];
                }
            }
        }
    }
}

// ---------------------------------------------------------------- the base

/// What `backward` needs: the derivative, the divisor of `"mean"`, and the input's shape.
#[derive(Clone, Debug)]
struct Saved {
    deriv: Vec<f64>,
    divisor: Option<f64>,
    shape: Shape,
}

/// What a loss keeps: its member, its reduction, and the gradient of the last
/// `forward` for `backward`.
#[derive(Clone, Debug)]
pub struct LossState {
    kind: Loss,
    reduction: Reduction,
    terms: Vec<f64>,
    classes: Vec<usize>,
    saved: Option<Saved>,
    owner: Owner,
}

impl LossState {
    /// A fresh state for `kind` with `reduction`.
    pub fn new(kind: Loss, reduction: Reduction) -> LossState {
        LossState {
            kind,
            reduction,
            terms: Vec::new(),
            classes: Vec::new(),
            saved: None,
            owner: Owner::default(),
        }
    }

    /// The member and its arguments.
    pub fn kind(&self) -> Loss {
        self.kind
    }

    /// The reduction.
    pub fn reduction(&self) -> Reduction {
        self.reduction
    }

    /// The loss of `x` (of `shape`) against `target`; keeps the gradient for `backward`.
    ///
    /// The checks run in the order of `pyfw.losses.Loss._target`. The value is the
    /// fold of the terms starting at 0.0, divided by their count for `Mean`.
    pub fn forward(&mut self, x: &[f64], shape: Shape, target: Target<'_>) -> Result<f64> {
        let kind = self.kind;
        let who = kind.name();
        // A class member's input (N, C, d1, ...) is seen as the (N * d1 * ..., C) input of its
        // lines along dim 1 (docs/NUMERICS.md, "Losses"); `lines` holds them, and the target's.
        let mut lines: Option<(Vec<f64>, Vec<f64>)> = None;
        let checked = match (kind.targets(), target) {
            (Targets::Values, Target::Values(t, ts)) => {
                check_same_shape(who, shape, ts)?;
                if kind.input_probs() {
                    check_probabilities(who, "input", x, shape)?;
                }
                if kind.target_probs() {
                    check_probabilities(who, "target", t, ts)?;
                }
                Checked::Values(t)
            }
            (Targets::Values, Target::Classes(_)) => {
                return Err(Error::Type(format!(
                    "{who}: target must be a tensor of the input's shape {shape}, not class indices"
                )))
            }
            (tk, target) => {
                class_input(who, shape)?;
                match target {
                    Target::Classes(ks) => {
                        check_class_count(who, shape, ks.len())?;
                        self.classes.clear();
                        for (i, &k) in ks.iter().enumerate() {
                            self.classes.push(check_class(who, shape, i, k)?);
                        }
                        Checked::Classes(&self.classes)
                    }
                    Target::Values(_, _) if tk == Targets::Classes => {
                        return Err(not_class_indices(who, shape));
                    }
                    Target::Values(t, ts) => {
                        check_same_shape(who, shape, ts)?;
                        if kind.target_probs() {
                            check_probabilities(who, "target", t, ts)?;
                        }
                        Checked::Values(t)
                    }
                }
            }
        };
        let in_shape = shape;
        let (x, shape, checked) = if kind.targets() != Targets::Values && shape.ndim() > 2 {
            let mut xl = try_zeros(x.len(), who)?;
            class_rows(x, shape, false, &mut xl);
            let mut tl = Vec::new();
            if let Checked::Values(t) = checked {
                tl = try_zeros(t.len(), who)?;
                class_rows(t, shape, false, &mut tl);
            }
            let (xl, tl) = lines.insert((xl, tl));
            let (rows, c) = class_input(who, shape)?;
            let checked = match checked {
                Checked::Values(_) => Checked::Values(tl),
                classes => classes,
            };
            (&xl[..], Shape::Matrix(rows, c), checked)
        } else {
            (x, shape, checked)
        };
        // The buffer of the last gradient is reused: a training loop allocates nothing per step.
        let mut deriv = self.saved.take().map(|s| s.deriv).unwrap_or_default();
        deriv.clear();
        deriv
            .try_reserve(x.len())
            .map_err(|_| Error::Memory(format!("{who}: cannot allocate {} elements", x.len())))?;
        deriv.resize(x.len(), 0.0);
        self.terms.clear();
        kind.terms(x, shape, checked, &mut self.terms, &mut deriv);
        if let Some((xl, _)) = lines.as_mut() {
            // The derivative of the lines, back in the input's layout.
            class_rows(&deriv, in_shape, true, xl);
            deriv.copy_from_slice(xl);
        }
        let mut total = 0.0;
        for &v in &self.terms {
            total += v;
        }
        let divisor = match self.reduction {
            Reduction::Mean => Some(self.terms.len() as f64),
            Reduction::Sum => None,
        };
        // Under no_grad, nothing is kept: the gradient's buffer is dropped, and the
        // scratch buffers that a training loop reuses at every step too.
        if self.owner.forward() {
            self.saved = Some(Saved {
                deriv,
                divisor,
                shape: in_shape,
            });
        } else {
            self.terms = Vec::new();
            self.classes = Vec::new();
        }
        Ok(match divisor {
            Some(n) => total / n,
            None => total,
        })
    }

    /// dL/d(input) of the last `forward`, and the input's shape.
    pub fn backward(&self) -> Result<(Vec<f64>, Shape)> {
        let s = self.saved()?;
        let mut g = try_zeros(s.deriv.len(), self.kind.name())?;
        self.backward_into(&mut g)?;
        Ok((g, s.shape))
    }

    /// dL/d(input) of the last `forward` into `g`, which has the input's size.
    pub fn backward_into(&self, g: &mut [f64]) -> Result<()> {
        let s = self.saved()?;
        check_same_shape(
            self.kind.name(),
            Shape::Vector(g.len()),
            Shape::Vector(s.deriv.len()),
        )?;
        match s.divisor {
            Some(n) => {
                for (o, &d) in g.iter_mut().zip(&s.deriv) {
                    *o = d / n;
                }
            }
            None => g.copy_from_slice(&s.deriv),
        }
        Ok(())
    }

    /// What the last `forward` kept, on the thread that ran it.
    fn saved(&self) -> Result<&Saved> {
        let who = self.kind.name();
        let s = self
            .saved
            .as_ref()
            .ok_or_else(|| self.owner.not_forwarded(who))?;
        self.owner.check(who)?;
        Ok(s)
    }
}

// ---------------------------------------------------------------- kernels

/// Element-wise members: `f(x, t) -> (term, derivative)` for every element, in
/// row-major order. The base gives these members values only.
#[inline(always)]
fn each(
    x: &[f64],
    t: Checked<'_>,
    terms: &mut Vec<f64>,
    deriv: &mut [f64],
    f: impl Fn(f64, f64) -> (f64, f64),
) {
    let Checked::Values(t) = t else {
        return;
    };
    for ((d, &xv), &tv) in deriv.iter_mut().zip(x).zip(t) {
        let (v, g) = f(xv, tv);
        terms.push(v);
        *d = g;
    }
}

/// Class members: `f(row, target, derivative row) -> term` for every row; the
/// derivative row holds zeros on entry.
#[inline(always)]
fn by_rows(
    x: &[f64],
    shape: Shape,
    t: Checked<'_>,
    terms: &mut Vec<f64>,
    deriv: &mut [f64],
    f: impl Fn(&[f64], RowTarget<'_>, &mut [f64]) -> f64,
) {
    let c = shape.cols();
    for (r, (xr, dr)) in x.chunks_exact(c).zip(deriv.chunks_exact_mut(c)).enumerate() {
        let tr = match t {
            Checked::Classes(ks) => ks.get(r).map(|&k| RowTarget::Class(k)),
            Checked::Values(p) => p.get(r * c..(r + 1) * c).map(RowTarget::Probabilities),
        };
        let Some(tr) = tr else {
            return;
        };
        terms.push(f(xr, tr, dr));
    }
}

/// `|d|` and `sign(d)` (0 at `d = 0`) for `d = x - t`.
#[inline(always)]
fn l1(x: f64, t: f64) -> (f64, f64) {
    let d = x - t;
    let g = if d > 0.0 {
        1.0
    } else if d < 0.0 {
        -1.0
    } else {
        0.0
    };
    (d.abs(), g)
}

/// `max(log(v), -100)`, and -100 for `v = 0`.
#[inline(always)]
fn log_clamped(v: f64) -> f64 {
    if v > 0.0 {
        let l = v.ln();
        if l > BCE_LOG_MIN {
            l
        } else {
            BCE_LOG_MIN
        }
    } else {
        BCE_LOG_MIN
    }
}

/// `max(log1p(-v), -100)`, and -100 for `v = 1`.
#[inline(always)]
fn log1m_clamped(v: f64) -> f64 {
    if v < 1.0 {
        let l = (-v).ln_1p();
        if l > BCE_LOG_MIN {
            l
        } else {
            BCE_LOG_MIN
        }
    } else {
        BCE_LOG_MIN
    }
}

impl LossKernel for MSELoss {
    fn terms(&self, x: &[f64], _: Shape, t: Checked<'_>, terms: &mut Vec<f64>, deriv: &mut [f64]) {
        each(x, t, terms, deriv, |x, t| {
            let d = x - t;
            (d * d, 2.0 * d)
        })
    }
}

impl LossKernel for L1Loss {
    fn terms(&self, x: &[f64], _: Shape, t: Checked<'_>, terms: &mut Vec<f64>, deriv: &mut [f64]) {
        each(x, t, terms, deriv, l1)
    }
}

impl LossKernel for HuberLoss {
    fn check(&self) -> Result<()> {
        if self.delta <= 0.0 {
            return Err(Error::Value(format!(
                "HuberLoss: delta must be positive, got {}",
                py_float_repr(self.delta)
            )));
        }
        Ok(())
    }
    fn terms(&self, x: &[f64], _: Shape, t: Checked<'_>, terms: &mut Vec<f64>, deriv: &mut [f64]) {
        let delta = self.delta;
        each(x, t, terms, deriv, |x, t| {
            let d = x - t;
            let z = d.abs();
            let v = if z < delta {
                0.5 * z * z
            } else {
                delta * (z - 0.5 * delta)
            };
            let g = if d < -delta {
                -delta
            } else if d > delta {
                delta
            } else {
                d
            };
            (v, g)
        })
    }
}

impl LossKernel for SmoothL1Loss {
    fn check(&self) -> Result<()> {
        if self.beta < 0.0 {
            return Err(Error::Value(format!(
                "SmoothL1Loss: beta must be non-negative, got {}",
                py_float_repr(self.beta)
            )));
        }
        Ok(())
    }
    fn terms(&self, x: &[f64], _: Shape, t: Checked<'_>, terms: &mut Vec<f64>, deriv: &mut [f64]) {
        let beta = self.beta;
        if beta == 0.0 {
            return each(x, t, terms, deriv, l1);
        }
        each(x, t, terms, deriv, |x, t| {
            let d = x - t;
            let z = d.abs();
            let v = if z < beta {
                0.5 * z * z / beta
            } else {
                z - 0.5 * beta
            };
            let g = if d <= -beta {
                -1.0
            } else if d >= beta {
                1.0
            } else {
                d / beta
            };
            (v, g)
        })
    }
}

impl LossKernel for CrossEntropyLoss {
    fn targets(&self) -> Targets {
        Targets::Either
    }
    fn target_probs(&self) -> bool {
        true
    }
    fn check(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.label_smoothing) {
            return Err(Error::Value(format!(
                "CrossEntropyLoss: label_smoothing must be between 0.0 and 1.0, got {}",
                py_float_repr(self.label_smoothing)
            )));
        }
        Ok(())
    }
    fn terms(
        &self,
        x: &[f64],
        shape: Shape,
        t: Checked<'_>,
        terms: &mut Vec<f64>,
        deriv: &mut [f64],
    ) {
        let c = shape.cols();
        let keep = 1.0 - self.label_smoothing;
        let spread = self.label_smoothing / c as f64;
        by_rows(x, shape, t, terms, deriv, |x, t, d| {
            let q = |k: usize| {
                let p = match t {
                    RowTarget::Class(y) => {
                        if k == y {
                            1.0
                        } else {
                            0.0
                        }
                    }
                    RowTarget::Probabilities(p) => p[k],
                };
                p * keep + spread
            };
            let mut m = x[0];
            for &v in x {
                if v > m {
                    m = v;
                }
            }
            // d holds e_k = exp(x_k - m) until the last loop.
            let mut s = 0.0;
            for (e, &v) in d.iter_mut().zip(x) {
                *e = (v - m).exp();
                s += *e;
            }
            let lse = s.ln();
            let mut term = 0.0;
            let mut total_q = 0.0;
            for (k, &v) in x.iter().enumerate() {
                let qk = q(k);
                if qk != 0.0 {
                    term += qk * (lse - (v - m));
                }
                total_q += qk;
            }
            for (k, e) in d.iter_mut().enumerate() {
                *e = *e / s * total_q - q(k);
            }
            term
        })
    }
}

impl LossKernel for NLLLoss {
    fn targets(&self) -> Targets {
        Targets::Classes
    }
    fn terms(
        &self,
        x: &[f64],
        shape: Shape,
        t: Checked<'_>,
        terms: &mut Vec<f64>,
        deriv: &mut [f64],
    ) {
        by_rows(x, shape, t, terms, deriv, |x, t, d| {
            // The base gives this member class indices only.
            let RowTarget::Class(y) = t else {
                return 0.0;
            };
            d[y] = -1.0;
            -x[y]
        })
    }
}

impl LossKernel for BCELoss {
    fn input_probs(&self) -> bool {
        true
    }
    fn target_probs(&self) -> bool {
        true
    }
    fn terms(&self, x: &[f64], _: Shape, t: Checked<'_>, terms: &mut Vec<f64>, deriv: &mut [f64]) {
        each(x, t, terms, deriv, |x, t| {
            let v = (t - 1.0) * log1m_clamped(x) - t * log_clamped(x);
            let w = (1.0 - x) * x;
            (v, (x - t) / if w > BCE_EPS { w } else { BCE_EPS })
        })
    }
}

impl LossKernel for BCEWithLogitsLoss {
    fn target_probs(&self) -> bool {
        true
    }
    fn terms(&self, x: &[f64], _: Shape, t: Checked<'_>, terms: &mut Vec<f64>, deriv: &mut [f64]) {
        each(x, t, terms, deriv, |x, t| {
            let v = ((if x > 0.0 { x } else { 0.0 }) - x * t) + (-x.abs()).exp().ln_1p();
            (v, sigmoid(x) - t)
        })
    }
}

#[cfg(test)]
// The references spell each fold out literally, index by index.
#[allow(clippy::needless_range_loop, clippy::assign_op_pattern)]
mod tests {
    use super::*;
    use crate::generator::Generator;

    /// Every member with its default arguments, then with other arguments where it has some.
    fn members() -> Vec<Loss> {
        let mut out = vec![];
        macro_rules! each_member {
            ($($(#[$doc:meta])* $name:ident { $($arg:ident : $ty:ty = $default:expr),* } $sig:literal;)*) => {
                $(out.push($name::default().into());)*
            };
        }
        crate::loss_table!(each_member);
        out.push(HuberLoss { delta: 0.3 }.into());
        out.push(SmoothL1Loss { beta: 0.4 }.into());
        out.push(SmoothL1Loss { beta: 0.0 }.into());
        out.push(
            CrossEntropyLoss {
                label_smoothing: 0.2,
            }
            .into(),
        );
        out
    }

    /// An input and a target of `shape` for `kind`, away from every kink:
    /// (input, values target, class target).
    fn sample(kind: Loss, g: &mut Generator, shape: Shape) -> (Vec<f64>, Vec<f64>, Vec<i64>) {
        let n = shape.numel();
        let probs = |g: &mut Generator, k: usize| (0..k).map(|_| g.uniform(0.05, 0.95)).collect();
        let x: Vec<f64> = if kind.input_probs() {
            probs(g, n)
        } else {
            (0..n).map(|_| g.uniform(-3.0, 3.0)).collect()
        };
        let t: Vec<f64> = if kind.target_probs() || kind.input_probs() {
            probs(g, n)
        } else {
            // |x - t| in [0.6, 0.9] or [1.1, 1.9]: away from 0 and from the arguments above
            x.iter()
                .map(|&v| {
                    let gap = if g.random() < 0.5 {
                        g.uniform(0.6, 0.9)
                    } else {
                        g.uniform(1.1, 1.9)
                    };
                    if g.random() < 0.5 {
                        v - gap
                    } else {
                        v + gap
                    }
                })
                .collect()
        };
        let classes = (0..shape.rows())
            .map(|_| g.randbelow(shape.cols() as u64).unwrap() as i64)
            .collect();
        (x, t, classes)
    }

    fn value(kind: Loss, reduction: Reduction, x: &[f64], shape: Shape, t: Target<'_>) -> f64 {
        LossState::new(kind, reduction)
            .forward(x, shape, t)
            .unwrap()
    }

    #[test]
    fn the_table_lists_every_member_once() {
        assert_eq!(Loss::NAMES.len(), members().len() - 4);
        for (i, n) in Loss::NAMES.iter().enumerate() {
            assert!(!Loss::NAMES[i + 1..].contains(n), "{n}");
        }
        assert_eq!(members()[2].name(), "HuberLoss");
        assert_eq!(Reduction::from_name("sum"), Some(Reduction::Sum));
        assert_eq!(Reduction::from_name("none"), None);
        assert_eq!(Reduction::Mean.name(), "mean");
    }

    #[test]
    fn gradients_match_finite_differences() {
        let mut g = Generator::new(5);
        let shape = Shape::Matrix(3, 4);
        for kind in members() {
            for reduction in [Reduction::Mean, Reduction::Sum] {
                let (x, t, classes) = sample(kind, &mut g, shape);
                let mut targets = vec![Target::Values(&t, shape)];
                if kind.targets() != Targets::Values {
                    targets.push(Target::Classes(&classes));
                }
                if kind.targets() == Targets::Classes {
                    targets.remove(0);
                }
                for target in targets {
                    let mut st = LossState::new(kind, reduction);
                    st.forward(&x, shape, target).unwrap();
                    let (dx, s) = st.backward().unwrap();
                    assert_eq!(s, shape);
                    let h = 1e-6;
                    for k in 0..x.len() {
                        let at = |step: f64| {
                            let mut xs = x.clone();
                            xs[k] += step;
                            value(kind, reduction, &xs, shape, target)
                        };
                        let numeric = (at(h) - at(-h)) / (2.0 * h);
                        assert!(
                            (numeric - dx[k]).abs() < 1e-6 * (1.0 + numeric.abs()),
                            "{kind:?} {reduction:?} {target:?} dx[{k}]: {numeric} vs {}",
                            dx[k]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn documented_values() {
        // MSE: the left fold from 0.0 in row-major order, then / N
        let (x, t) = ([0.1, 0.7, 0.3, -0.2], [0.0, 1.0, 1.0, 0.0]);
        let d: [f64; 4] = [0.1 - 0.0, 0.7 - 1.0, 0.3 - 1.0, -0.2 - 0.0];
        let expect = ((((0.0 + d[0] * d[0]) + d[1] * d[1]) + d[2] * d[2]) + d[3] * d[3]) / 4.0;
        let shape = Shape::Matrix(2, 2);
        let mut st = LossState::new(MSELoss {}.into(), Reduction::Mean);
        let v = st.forward(&x, shape, Target::Values(&t, shape)).unwrap();
        assert_eq!(v.to_bits(), expect.to_bits());
        let (gr, _) = st.backward().unwrap();
        for (gv, dv) in gr.iter().zip(d) {
            assert_eq!(gv.to_bits(), (2.0 * dv / 4.0).to_bits());
        }
        // cross-entropy of equal logits: log 2 per row; sum over two rows
        let s2 = Shape::Matrix(2, 2);
        let ce = value(
            CrossEntropyLoss::default().into(),
            Reduction::Sum,
            &[0.0, 0.0, 5.0, 5.0],
            s2,
            Target::Classes(&[1, 0]),
        );
        assert_eq!(ce, 2.0_f64.ln() + 2.0_f64.ln());
        // the subgradients at the kinks: L1 at 0, Huber at |d| = delta, SmoothL1 at |d| = beta
        let kinks: [(Loss, f64, f64); 4] = [
            (L1Loss {}.into(), 0.0, 0.0),
            (HuberLoss { delta: 0.5 }.into(), 0.5, 0.5),
            (SmoothL1Loss { beta: 0.5 }.into(), 0.5, 1.0),
            (SmoothL1Loss { beta: 0.0 }.into(), 0.0, 0.0),
        ];
        for (kind, d, want) in kinks {
            let mut st = LossState::new(kind, Reduction::Sum);
            let s = Shape::Vector(2);
            st.forward(&[d, -d], s, Target::Values(&[0.0, 0.0], s))
                .unwrap();
            assert_eq!(st.backward().unwrap().0, vec![want, -want], "{kind:?}");
        }
        // BCE clamps its logs at -100, and its backward divides by at least 1e-12
        let s1 = Shape::Vector(1);
        let mut st = LossState::new(BCELoss {}.into(), Reduction::Mean);
        let v = st.forward(&[0.0], s1, Target::Values(&[1.0], s1)).unwrap();
        assert_eq!(v, 100.0);
        assert_eq!(st.backward().unwrap().0, vec![-1.0 / 1e-12]);
    }

    #[test]
    fn large_magnitudes_give_finite_values() {
        let s = Shape::Matrix(2, 2);
        let x = [1e300, -1e300, -1e300, 1e300];
        for label_smoothing in [0.0, 0.1] {
            let mut st =
                LossState::new(CrossEntropyLoss { label_smoothing }.into(), Reduction::Mean);
            let v = st.forward(&x, s, Target::Classes(&[1, 1])).unwrap();
            assert!(v.is_finite() && v > 0.0);
            assert!(st.backward().unwrap().0.iter().all(|g| g.is_finite()));
        }
        let v = value(
            CrossEntropyLoss::default().into(),
            Reduction::Sum,
            &x,
            s,
            Target::Classes(&[0, 1]),
        );
        assert_eq!(v, 0.0);
        let logits = [-1e4, -800.0, 800.0, 1e4];
        let s4 = Shape::Vector(4);
        let mut st = LossState::new(BCEWithLogitsLoss {}.into(), Reduction::Sum);
        let v = st
            .forward(&logits, s4, Target::Values(&[1.0, 1.0, 0.0, 0.0], s4))
            .unwrap();
        assert_eq!(v, 1e4 + 800.0 + 800.0 + 1e4);
        assert_eq!(st.backward().unwrap().0, vec![-1.0, -1.0, 1.0, 1.0]);
        let v = value(
            BCEWithLogitsLoss {}.into(),
            Reduction::Sum,
            &logits,
            s4,
            Target::Values(&[0.0, 0.0, 1.0, 1.0], s4),
        );
        assert_eq!(v, 0.0);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let m = Shape::Matrix(2, 3);
        let x = [0.5; 6];
        let mut ce = LossState::new(CrossEntropyLoss::default().into(), Reduction::Mean);
        assert!(matches!(ce.backward(), Err(Error::Runtime(_))));
        let e = ce.forward(&x, m, Target::Classes(&[0, 3])).unwrap_err();
        assert_eq!(
            e,
            Error::Value(
                "CrossEntropyLoss: class index 3 at position 1 is out of range \
                 for input shape (2, 3) (3 classes)"
                    .into()
            )
        );
        assert!(matches!(
            ce.forward(&x, m, Target::Classes(&[-1, 0])),
            Err(Error::Value(_))
        ));
        assert!(matches!(
            ce.forward(&x, m, Target::Classes(&[0])),
            Err(Error::Value(_))
        ));
        let e = ce
            .forward(&x[..3], Shape::Vector(3), Target::Classes(&[0]))
            .unwrap_err();
        assert_eq!(
            e.message(),
            "CrossEntropyLoss: expected an input of shape (N, C) or (N, C, d1, ...), got shape (3,)"
        );
        let p = [0.5, 0.5, 0.0, 1.5, 0.0, 0.0];
        let e = ce.forward(&x, m, Target::Values(&p, m)).unwrap_err();
        assert_eq!(
            e.message(),
            "CrossEntropyLoss: target values must be probabilities in [0, 1], got 1.5 at (1, 0) of shape (2, 3)"
        );
        assert!(matches!(ce.backward(), Err(Error::Runtime(_))));
        let mut nll = LossState::new(NLLLoss {}.into(), Reduction::Sum);
        assert!(matches!(
            nll.forward(&x, m, Target::Values(&x, m)),
            Err(Error::Type(_))
        ));
        let mut mse = LossState::new(MSELoss {}.into(), Reduction::Mean);
        let e = mse
            .forward(
                &[1.0, 2.0],
                Shape::Vector(2),
                Target::Values(&[1.0, 2.0], Shape::Matrix(1, 2)),
            )
            .unwrap_err();
        assert_eq!(
            e,
            Error::Value("MSELoss: input shape (2,) and target shape (1, 2) differ".into())
        );
        assert!(matches!(
            mse.forward(&x, m, Target::Classes(&[0, 0])),
            Err(Error::Type(_))
        ));
        let mut bce = LossState::new(BCELoss {}.into(), Reduction::Mean);
        let v = Shape::Vector(2);
        let e = bce
            .forward(&[0.5, -0.25], v, Target::Values(&[0.0, 1.0], v))
            .unwrap_err();
        assert_eq!(
            e.message(),
            "BCELoss: input values must be probabilities in [0, 1], got -0.25 at (1,) of shape (2,)"
        );
        assert!(HuberLoss { delta: 0.0 }.check().is_err());
        assert!(SmoothL1Loss { beta: -1.0 }.check().is_err());
        assert!(SmoothL1Loss { beta: 0.0 }.check().is_ok());
        assert!(CrossEntropyLoss {
            label_smoothing: 1.5
        }
        .check()
        .is_err());
        assert_eq!(
            bad_reduction("L1Loss", "'none'").message(),
            "L1Loss: reduction must be 'mean' or 'sum', got 'none' \
             ('none' is not supported: a loss returns one Python float)"
        );
    }
}
