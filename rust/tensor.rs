//! The tensor type: an array of float64 of any rank in one row-major buffer,
//! and the kernels of tensor arithmetic (docs/NUMERICS.md, "Tensor arithmetic").
//!
//! Mirrors `pyfw/tensor.py`. A tensor of shape `(d0, ..., dk)` holds
//! `d0 * ... * dk` values in row-major order. The kernels of the layers walk it
//! as `rows()` storage rows of `cols()` values (the last dimension), so a 1-D
//! tensor is a single row and a 2-D tensor its rows. Tensors are never empty,
//! and tensors built from user data hold only finite numbers.

use std::fmt;

use crate::error::{checked_size, try_zeros, Error, Result};

/// The most dimensions a tensor can have. The shape lives inline (`Copy`, passed by
/// value), so this bounds its size: 16 sizes are 136 bytes.
pub const MAX_RANK: usize = 16;

/// The shape of a tensor: 1 to [`MAX_RANK`] sizes. Kept inline, so that it is
/// `Copy` and passes by value as the 1-D/2-D shapes always did.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    rank: u8,
    dims: [usize; MAX_RANK],
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Shape{self}")
    }
}

impl Shape {
    /// The shape `(n,)` (named as the variant of the 1-D/2-D shape it replaces,
    /// so that code building 1-D and 2-D shapes reads as before).
    #[allow(non_snake_case)]
    pub const fn Vector(n: usize) -> Shape {
        let mut dims = [0; MAX_RANK];
        dims[0] = n;
        Shape { rank: 1, dims }
    }

    /// The shape `(rows, cols)` (named as [`Shape::Vector`] is).
    #[allow(non_snake_case)]
    pub const fn Matrix(rows: usize, cols: usize) -> Shape {
        let mut dims = [0; MAX_RANK];
        dims[0] = rows;
        dims[1] = cols;
        Shape { rank: 2, dims }
    }

    /// The shape with sizes `dims`; `ValueError` for no sizes or more than [`MAX_RANK`].
    /// (Sizes of 0 are refused where a tensor is made, by [`Tensor::new`].)
    pub fn new(dims: &[usize]) -> Result<Shape> {
        if dims.is_empty() {
            return Err(Error::Value(
                "tensor: a shape needs at least one dimension".into(),
            ));
        }
        if dims.len() > MAX_RANK {
            return Err(Error::Value(format!(
                "tensor: {} dimensions are more than the {MAX_RANK} a tensor can have",
                dims.len()
            )));
        }
        let mut all = [0; MAX_RANK];
        all[..dims.len()].copy_from_slice(dims);
        Ok(Shape {
            rank: dims.len() as u8,
            dims: all,
        })
    }

    /// The sizes, one per dimension.
    pub fn dims(&self) -> &[usize] {
        &self.dims[..self.rank as usize]
    }

    /// `(n,)` as `Some(n)`; None for other ranks.
    pub fn as_vector(&self) -> Option<usize> {
        (self.rank == 1).then_some(self.dims[0])
    }

    /// `(rows, cols)` as `Some((rows, cols))`; None for other ranks.
    pub fn as_matrix(&self) -> Option<(usize, usize)> {
        (self.rank == 2).then_some((self.dims[0], self.dims[1]))
    }

    /// The size of the first dimension (what `len()` gives).
    pub fn len(&self) -> usize {
        self.dims[0]
    }

    /// Always false: shapes are never empty (kept for clippy's `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        self.numel() == 0
    }

    /// The number of storage rows: the product of every size but the last (1 for 1-D),
    /// saturating.
    pub fn rows(&self) -> usize {
        let d = self.dims();
        d[..d.len() - 1]
            .iter()
            .fold(1usize, |a, &b| a.saturating_mul(b))
    }

    /// The length of a storage row: the last size.
    pub fn cols(&self) -> usize {
        self.dims[self.rank as usize - 1]
    }

    /// The number of elements (saturating, so that an impossible shape fails to allocate).
    pub fn numel(&self) -> usize {
        self.dims().iter().fold(1usize, |a, &b| a.saturating_mul(b))
    }

    /// The number of dimensions.
    pub fn ndim(&self) -> usize {
        self.rank as usize
    }

    /// The row-major strides (in elements) of this shape.
    pub fn strides(&self) -> Vec<usize> {
        let d = self.dims();
        let mut s = vec![1usize; d.len()];
        for i in (0..d.len().saturating_sub(1)).rev() {
            s[i] = s[i + 1].saturating_mul(d[i + 1]);
        }
        s
    }
}

impl fmt::Display for Shape {
    /// As Python prints the tuple: `(2, 3)` or `(4,)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.dims() {
            [n] => write!(f, "({n},)"),
            d => {
                write!(f, "(")?;
                for (i, n) in d.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{n}")?;
                }
                write!(f, ")")
            }
        }
    }
}

/// A float64 array of any rank.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    shape: Shape,
    data: Vec<f64>,
}

impl Tensor {
    /// Adopt `data` for `shape`; the lengths must agree and the shape must be non-empty.
    pub fn new(shape: Shape, data: Vec<f64>) -> Result<Tensor> {
        if shape.numel() == 0 {
            return Err(Error::Value(format!(
                "tensor: shape {shape} is empty; tensors need at least one element"
            )));
        }
        if data.len() != shape.numel() {
            return Err(Error::Value(format!(
                "tensor: {} values do not fill shape {shape}",
                data.len()
            )));
        }
        Ok(Tensor { shape, data })
    }

    /// Zeros of `shape`.
    pub fn zeros(shape: Shape) -> Result<Tensor> {
        let data = try_zeros(shape.numel(), "tensor")?;
        Tensor::new(shape, data)
    }

    /// The shape.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// The values in row-major order.
    pub fn data(&self) -> &[f64] {
        &self.data
    }

    /// The values in row-major order, for in-place updates.
    pub fn data_mut(&mut self) -> &mut [f64] {
        &mut self.data
    }

    /// The buffer, consuming the tensor.
    pub fn into_data(self) -> Vec<f64> {
        self.data
    }

    /// Storage row `r` (row 0 of a 1-D tensor is all of it).
    pub fn row(&self, r: usize) -> &[f64] {
        let c = self.shape.cols();
        &self.data[r * c..(r + 1) * c]
    }

    /// The nested rows, as `tolist()` gives them.
    pub fn to_rows(&self) -> Vec<Vec<f64>> {
        (0..self.shape.rows())
            .map(|r| self.row(r).to_vec())
            .collect()
    }

    /// Items of the first dimension at the already-normalised indices `idx`, in
    /// that order: values of a 1-D tensor, rows of a 2-D one, blocks of a higher
    /// rank. The rank stays.
    pub fn select(&self, idx: &[usize]) -> Result<Tensor> {
        let n = self.shape.len();
        if idx.is_empty() {
            return Err(Error::Value(format!(
                "Tensor: index selects no rows from shape {}; empty tensors are not supported",
                self.shape
            )));
        }
        if let Some(&bad) = idx.iter().find(|&&i| i >= n) {
            return Err(Error::Index(format!(
                "Tensor: index {bad} is out of range for size {n}"
            )));
        }
        let block = self.data.len() / n;
        let len = checked_size(idx.len(), block, "Tensor")?;
        // Filled by appending the blocks (a mini-batch at every step): no zeroing first.
        let mut data: Vec<f64> = Vec::new();
        data.try_reserve_exact(len)
            .map_err(|_| Error::Memory(format!("Tensor: cannot allocate {len} elements")))?;
        for &i in idx {
            data.extend_from_slice(&self.data[i * block..(i + 1) * block]);
        }
        let mut shape = self.shape;
        shape.dims[0] = idx.len();
        Ok(Tensor { shape, data })
    }

    /// A copy that shares no storage, or `Error::Memory` instead of an abort.
    pub fn try_clone(&self) -> Result<Tensor> {
        let mut data = try_zeros(self.data.len(), "Tensor")?;
        data.copy_from_slice(&self.data);
        Ok(Tensor {
            shape: self.shape,
            data,
        })
    }
}

// ---------------------------------------------------------------------------
// Shape operations: they move values without arithmetic.
// ---------------------------------------------------------------------------

/// `d` as an index into the dimensions of a tensor of rank `rank`, Python style;
/// `IndexError` as torch words it when it is out of range.
pub fn normalize_dim(d: i64, rank: usize, who: &str) -> Result<usize> {
    let r = rank as i128;
    let dd = d as i128;
    if dd < -r || dd >= r {
        return Err(Error::Index(format!(
            "{who}: dim {d} is out of range for a tensor of rank {rank}"
        )));
    }
    Ok(if dd < 0 {
        (dd + r) as usize
    } else {
        dd as usize
    })
}

/// The product of `dims`, or `Error::Memory` when it overflows.
pub fn checked_numel(dims: &[usize], who: &str) -> Result<usize> {
    let mut n = 1usize;
    for &d in dims {
        n = checked_size(n, d, who)?;
    }
    Ok(n)
}

/// The sizes of one dimension a selection keeps: positions `start + j * step` for
/// `j < len`, or an explicit list of positions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pick {
    /// `len` positions from `start`, `step` apart (an int is one position).
    Range {
        /// The first position.
        start: usize,
        /// The distance between positions (at least 1).
        step: usize,
        /// The number of positions.
        len: usize,
    },
    /// These positions, in this order.
    List(Vec<usize>),
}

impl Pick {
    /// All of a dimension of size `n`.
    pub fn all(n: usize) -> Pick {
        Pick::Range {
            start: 0,
            step: 1,
            len: n,
        }
    }

    /// The number of positions.
    pub fn len(&self) -> usize {
        match self {
            Pick::Range { len, .. } => *len,
            Pick::List(v) => v.len(),
        }
    }

    /// True when it picks nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Position `j`.
    #[inline]
    fn at(&self, j: usize) -> usize {
        match self {
            Pick::Range { start, step, .. } => start + j * step,
            Pick::List(v) => v[j],
        }
    }
}

/// Call `f(k, offset)` for every element a selection picks, in row-major order
/// of the selection (`k` counts them), `offset` being its place in a buffer of
/// row-major `strides`. `picks` has one entry per dimension.
fn for_each_pick(picks: &[Pick], strides: &[usize], mut f: impl FnMut(usize, usize)) {
    let rank = picks.len();
    let last = &picks[rank - 1];
    let inner = last.len();
    let outer: usize = picks[..rank - 1].iter().map(Pick::len).product();
    let mut idx = vec![0usize; rank - 1];
    let mut k = 0;
    for _ in 0..outer {
        let base: usize = (0..rank - 1)
            .map(|d| picks[d].at(idx[d]) * strides[d])
            .sum();
        for j in 0..inner {
            f(k, base + last.at(j) * strides[rank - 1]);
            k += 1;
        }
        // The odometer over the outer dimensions, last fastest.
        for d in (0..rank - 1).rev() {
            idx[d] += 1;
            if idx[d] < picks[d].len() {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// `dims` broadcast against `other` (numpy's rules), or the `ValueError` naming `who`
/// and both shapes.
pub fn broadcast_shapes(a: Shape, b: Shape, who: &str) -> Result<Shape> {
    let (da, db) = (a.dims(), b.dims());
    let rank = da.len().max(db.len());
    let mut out = vec![0usize; rank];
    for (i, o) in out.iter_mut().enumerate() {
        let x = if i + da.len() >= rank {
            da[i + da.len() - rank]
        } else {
            1
        };
        let y = if i + db.len() >= rank {
            db[i + db.len() - rank]
        } else {
            1
        };
        *o = if x == y || y == 1 {
            x
        } else if x == 1 {
            y
        } else {
            return Err(Error::Value(format!(
                "{who}: shapes {a} and {b} do not broadcast"
            )));
        };
    }
    Shape::new(&out)
}

/// The strides of `src` read as `out` (a shape it broadcasts to): 0 along the
/// stretched and the missing leading dimensions.
fn broadcast_strides(src: Shape, out: Shape) -> Vec<usize> {
    let (ds, rank) = (src.dims(), out.ndim());
    let own = src.strides();
    let lead = rank - ds.len();
    (0..rank)
        .map(|i| {
            if i < lead || ds[i - lead] == 1 {
                0
            } else {
                own[i - lead]
            }
        })
        .collect()
}

/// Call `f(k, oa, ob)` for every element of `out` in row-major order (`k` counts
/// them), `oa` and `ob` being the places of its operands in buffers read with
/// `sa` and `sb` (from [`broadcast_strides`]).
fn for_each_broadcast(
    out: Shape,
    sa: &[usize],
    sb: &[usize],
    mut f: impl FnMut(usize, usize, usize),
) {
    let dims = out.dims();
    let rank = dims.len();
    let inner = dims[rank - 1];
    let (ia, ib) = (sa[rank - 1], sb[rank - 1]);
    let mut idx = vec![0usize; rank - 1];
    let (mut base_a, mut base_b) = (0usize, 0usize);
    let mut k = 0;
    for _ in 0..out.rows() {
        for j in 0..inner {
            f(k, base_a + j * ia, base_b + j * ib);
            k += 1;
        }
        // The odometer over the outer dimensions, last fastest.
        for d in (0..rank - 1).rev() {
            idx[d] += 1;
            base_a += sa[d];
            base_b += sb[d];
            if idx[d] < dims[d] {
                break;
            }
            base_a -= sa[d] * dims[d];
            base_b -= sb[d] * dims[d];
            idx[d] = 0;
        }
    }
}

impl Tensor {
    /// A tensor of `shape` with every value `v`.
    pub fn full(shape: Shape, v: f64) -> Result<Tensor> {
        let mut t = Tensor::zeros(shape)?;
        t.data.fill(v);
        Ok(t)
    }

    /// A copy with the same values in row-major order and shape `shape`, which
    /// must hold as many elements.
    pub fn reshaped(&self, shape: Shape) -> Result<Tensor> {
        if shape.numel() != self.data.len() {
            return Err(Error::Value(format!(
                "reshape: shape {shape} is invalid for a tensor of shape {} ({} elements)",
                self.shape,
                self.data.len()
            )));
        }
        let mut t = self.try_clone()?;
        t.shape = shape;
        Ok(t)
    }

    /// A copy with its dimensions in the order `perm` (a permutation of `0..rank`,
    /// which the caller has checked): dimension `i` of the result is `perm[i]` here.
    pub fn permuted(&self, perm: &[usize]) -> Result<Tensor> {
        let dims = self.shape.dims();
        let strides = self.shape.strides();
        let out_dims: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
        let out_strides: Vec<usize> = perm.iter().map(|&p| strides[p]).collect();
        let picks: Vec<Pick> = out_dims.iter().map(|&n| Pick::all(n)).collect();
        let mut data = try_zeros(self.data.len(), "permute")?;
        for_each_pick(&picks, &out_strides, |k, off| data[k] = self.data[off]);
        Tensor::new(Shape::new(&out_dims)?, data)
    }

    /// The values a selection picks (one [`Pick`] per dimension, none empty), in
    /// row-major order of the selection.
    pub fn gather(&self, picks: &[Pick]) -> Result<Vec<f64>> {
        let n = picks
            .iter()
            .try_fold(1usize, |a, p| checked_size(a, p.len(), "Tensor"))?;
        let mut data = try_zeros(n, "Tensor")?;
        let strides = self.shape.strides();
        for_each_pick(picks, &strides, |k, off| data[k] = self.data[off]);
        Ok(data)
    }

    /// Write `src` (of shape `src_shape`, broadcast to the selected sizes
    /// `sel_shape`) into the elements a selection picks, in its row-major order
    /// (a position picked twice keeps the later value).
    pub fn scatter(
        &mut self,
        picks: &[Pick],
        sel_shape: Shape,
        src: &[f64],
        src_shape: Shape,
    ) -> Result<()> {
        let out = broadcast_shapes(sel_shape, src_shape, "Tensor.__setitem__")?;
        if out != sel_shape {
            return Err(Error::Value(format!(
                "Tensor.__setitem__: a value of shape {src_shape} does not fit the selected shape {sel_shape}"
            )));
        }
        let vals = expand(src, src_shape, sel_shape)?;
        let strides = self.shape.strides();
        let data = &mut self.data;
        for_each_pick(picks, &strides, |k, off| data[off] = vals[k]);
        Ok(())
    }

    /// The tensors `ts` joined along dimension `dim` (same rank, same sizes elsewhere).
    pub fn cat(ts: &[&Tensor], dim: usize) -> Result<Tensor> {
        let first = ts[0].shape;
        let mut dims = first.dims().to_vec();
        let mut total = 0usize;
        for (i, t) in ts.iter().enumerate() {
            let d = t.shape.dims();
            let same = d.len() == dims.len()
                && d.iter()
                    .zip(first.dims())
                    .enumerate()
                    .all(|(k, (a, b))| k == dim || a == b);
            if !same {
                return Err(Error::Value(format!(
                    "cat: tensor {i} has shape {}, tensor 0 has shape {first}; all sizes but \
                     dim {dim} must match",
                    t.shape
                )));
            }
            total = total
                .checked_add(d[dim])
                .ok_or_else(|| Error::Memory("cat: the result is too large".into()))?;
        }
        dims[dim] = total;
        let n = checked_numel(&dims, "cat")?;
        let mut data = Vec::new();
        data.try_reserve_exact(n)
            .map_err(|_| Error::Memory(format!("cat: cannot allocate {n} elements")))?;
        let outer: usize = dims[..dim].iter().product();
        let inner: usize = dims[dim + 1..].iter().product();
        for o in 0..outer {
            for t in ts {
                let block = t.shape.dims()[dim] * inner;
                data.extend_from_slice(&t.data[o * block..(o + 1) * block]);
            }
        }
        Tensor::new(Shape::new(&dims)?, data)
    }
}

/// `src` (of shape `from`) broadcast to `to`, written out in row-major order.
pub fn expand(src: &[f64], from: Shape, to: Shape) -> Result<Vec<f64>> {
    if from == to {
        let mut v = try_zeros(src.len(), "Tensor")?;
        v.copy_from_slice(src);
        return Ok(v);
    }
    let mut v = try_zeros(to.numel(), "Tensor")?;
    let strides = broadcast_strides(from, to);
    for_each_broadcast(to, &strides, &strides, |k, off, _| v[k] = src[off]);
    Ok(v)
}

// ---------------------------------------------------------------------------
// Element-wise arithmetic: each output from its operands alone (IEEE 754).
// ---------------------------------------------------------------------------

/// A binary element-wise operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`
    Div,
    /// NaN if either is NaN, else the larger, `a` on ties.
    Maximum,
    /// NaN if either is NaN, else the smaller, `a` on ties.
    Minimum,
    /// `1.0` if `a < b` else `0.0`.
    Lt,
    /// `a <= b`
    Le,
    /// `a > b`
    Gt,
    /// `a >= b`
    Ge,
    /// `a == b`
    Eq,
    /// `a != b`
    Ne,
}

/// `1.0` for true, `0.0` for false.
#[inline(always)]
fn truth(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// `maximum(a, b)` of NUMERICS.
#[inline(always)]
pub fn maximum(a: f64, b: f64) -> f64 {
    if a.is_nan() {
        a
    } else if b.is_nan() || b > a {
        b
    } else {
        a
    }
}

/// `minimum(a, b)` of NUMERICS.
#[inline(always)]
pub fn minimum(a: f64, b: f64) -> f64 {
    if a.is_nan() {
        a
    } else if b.is_nan() || b < a {
        b
    } else {
        a
    }
}

/// Run `$body` with `$f` bound to the closure of `$op`, monomorphized per operation
/// so that each loop vectorizes.
macro_rules! with_binop {
    ($op:expr, $f:ident, $body:expr) => {
        match $op {
            BinOp::Add => {
                let $f = |a: f64, b: f64| a + b;
                $body
            }
            BinOp::Sub => {
                let $f = |a: f64, b: f64| a - b;
                $body
            }
            BinOp::Mul => {
                let $f = |a: f64, b: f64| a * b;
                $body
            }
            BinOp::Div => {
                let $f = |a: f64, b: f64| a / b;
                $body
            }
            BinOp::Maximum => {
                let $f = maximum;
                $body
            }
            BinOp::Minimum => {
                let $f = minimum;
                $body
            }
            BinOp::Lt => {
                let $f = |a: f64, b: f64| truth(a < b);
                $body
            }
            BinOp::Le => {
                let $f = |a: f64, b: f64| truth(a <= b);
                $body
            }
            BinOp::Gt => {
                let $f = |a: f64, b: f64| truth(a > b);
                $body
            }
            BinOp::Ge => {
                let $f = |a: f64, b: f64| truth(a >= b);
                $body
            }
            BinOp::Eq => {
                let $f = |a: f64, b: f64| truth(a == b);
                $body
            }
            BinOp::Ne => {
                let $f = |a: f64, b: f64| truth(a != b);
                $body
            }
        }
    };
}

/// `op(a, b)` element by element with broadcasting; `who` names the operation in errors.
pub fn binary(op: BinOp, a: &Tensor, b: &Tensor, who: &str) -> Result<Tensor> {
    let out = broadcast_shapes(a.shape, b.shape, who)?;
    let mut data = try_zeros(out.numel(), who)?;
    let (x, y) = (a.data(), b.data());
    with_binop!(op, f, {
        if a.shape == b.shape {
            for ((o, &p), &q) in data.iter_mut().zip(x).zip(y) {
                *o = f(p, q);
            }
        } else if y.len() == 1 && a.shape == out {
            let q = y[0];
            for (o, &p) in data.iter_mut().zip(x) {
                *o = f(p, q);
            }
        } else if x.len() == 1 && b.shape == out {
            let p = x[0];
            for (o, &q) in data.iter_mut().zip(y) {
                *o = f(p, q);
            }
        } else {
            let (sa, sb) = (
                broadcast_strides(a.shape, out),
                broadcast_strides(b.shape, out),
            );
            for_each_broadcast(out, &sa, &sb, |k, i, j| data[k] = f(x[i], y[j]));
        }
    });
    Tensor::new(out, data)
}

/// `op(a, s)` (or `op(s, a)` when `scalar_first`) for every element `a` of `t`.
pub fn binary_scalar(op: BinOp, t: &Tensor, s: f64, scalar_first: bool) -> Result<Tensor> {
    let mut data = try_zeros(t.data.len(), "Tensor")?;
    with_binop!(op, f, {
        if scalar_first {
            for (o, &p) in data.iter_mut().zip(&t.data) {
                *o = f(s, p);
            }
        } else {
            for (o, &p) in data.iter_mut().zip(&t.data) {
                *o = f(p, s);
            }
        }
    });
    Tensor::new(t.shape, data)
}

/// In place: `t[i] = op(t[i], o[j])` with `o` broadcast to `t`'s shape, which must be
/// the broadcast shape; `alpha` (when given) scales `o` first (`alpha * o`, rounded).
pub fn binary_inplace(
    op: BinOp,
    t: &mut Tensor,
    o: &[f64],
    o_shape: Shape,
    alpha: Option<f64>,
    who: &str,
) -> Result<()> {
    let out = broadcast_shapes(t.shape, o_shape, who)?;
    if out != t.shape {
        return Err(Error::Value(format!(
            "{who}: the result has the broadcast shape {out}, this tensor has shape {}; an \
             in-place operation cannot change the shape",
            t.shape
        )));
    }
    let mut vals = expand(o, o_shape, out)?;
    if let Some(a) = alpha {
        for v in vals.iter_mut() {
            *v *= a;
        }
    }
    with_binop!(op, f, {
        for (p, &q) in t.data.iter_mut().zip(&vals) {
            *p = f(*p, q);
        }
    });
    Ok(())
}

/// A unary element-wise operation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnOp {
    /// `-x`
    Neg,
    /// `|x|`
    Abs,
    /// `pow(x, e)`, C's (`f64::powf`).
    Pow(f64),
    /// `pow(b, x)`, C's, for a scalar base.
    RPow(f64),
    /// `exp(x)`
    Exp,
    /// `log(x)`
    Log,
    /// `sqrt(x)`
    Sqrt,
    /// `tanh(x)`
    Tanh,
    /// The `Sigmoid` activation's formula.
    Sigmoid,
    /// `clamp(min, max)` of NUMERICS.
    Clamp(Option<f64>, Option<f64>),
}

/// `clamp(x, lo, hi)` of NUMERICS: NaN stays; `lo` if below, then `hi` if above.
#[inline(always)]
pub fn clamp(x: f64, lo: Option<f64>, hi: Option<f64>) -> f64 {
    if x.is_nan() {
        return x;
    }
    let mut y = x;
    if let Some(lo) = lo {
        if y < lo {
            y = lo;
        }
    }
    if let Some(hi) = hi {
        if y > hi {
            y = hi;
        }
    }
    y
}

/// Apply `op` to every value of `v`, in place.
pub fn unary_inplace(op: UnOp, v: &mut [f64]) {
    match op {
        UnOp::Neg => v.iter_mut().for_each(|x| *x = -*x),
        UnOp::Abs => v.iter_mut().for_each(|x| *x = x.abs()),
        UnOp::Pow(e) => v.iter_mut().for_each(|x| *x = x.powf(e)),
        UnOp::RPow(b) => v.iter_mut().for_each(|x| *x = b.powf(*x)),
        UnOp::Exp => v.iter_mut().for_each(|x| *x = x.exp()),
        UnOp::Log => v.iter_mut().for_each(|x| *x = x.ln()),
        UnOp::Sqrt => v.iter_mut().for_each(|x| *x = x.sqrt()),
        UnOp::Tanh => v.iter_mut().for_each(|x| *x = x.tanh()),
        UnOp::Sigmoid => v
            .iter_mut()
            .for_each(|x| *x = crate::activations::sigmoid(*x)),
        UnOp::Clamp(lo, hi) => v.iter_mut().for_each(|x| *x = clamp(*x, lo, hi)),
    }
}

/// `op` of every value of `t`, as a new tensor.
pub fn unary(op: UnOp, t: &Tensor) -> Result<Tensor> {
    let mut out = t.try_clone()?;
    unary_inplace(op, &mut out.data);
    Ok(out)
}

// ---------------------------------------------------------------------------
// Reductions: each output a fold in row-major order of its reduced elements.
// ---------------------------------------------------------------------------

/// A reduction of NUMERICS.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reduce {
    /// `acc = t_0; acc = acc + t_k`
    Sum,
    /// `sum / n`
    Mean,
    /// The sum of squared deviations from the mean, over `n - 1` when `true`, else `n`.
    Var(bool),
    /// The first NaN, else the first of the largest.
    Max,
    /// The first NaN, else the first of the smallest.
    Min,
}

/// The values of `t` laid out as `(n_reduced, n_kept)`: the reduced dimensions first
/// (`reduced`, increasing), then the kept ones, so that block `k` holds term `k` of
/// every output. Returns the values (borrowed when no move is needed) and the sizes
/// of the kept dimensions.
fn reduction_layout<'a>(
    t: &'a Tensor,
    reduced: &[usize],
) -> Result<(std::borrow::Cow<'a, [f64]>, Vec<usize>)> {
    let rank = t.shape.ndim();
    let kept: Vec<usize> = (0..rank).filter(|d| !reduced.contains(d)).collect();
    let kept_dims: Vec<usize> = kept.iter().map(|&d| t.shape.dims()[d]).collect();
    let perm: Vec<usize> = reduced.iter().chain(&kept).copied().collect();
    if perm.iter().enumerate().all(|(i, &p)| i == p) {
        return Ok((std::borrow::Cow::Borrowed(&t.data), kept_dims));
    }
    Ok((std::borrow::Cow::Owned(t.permuted(&perm)?.data), kept_dims))
}

/// `op` over the dimensions `reduced` (sorted, distinct, in range) of `t`: the values
/// of the outputs in row-major order of the kept dimensions, and those sizes (empty
/// for a full reduction). For `Max`/`Min` also the index of each output's winner
/// among its terms (row-major over the reduced dimensions).
pub fn reduce(
    t: &Tensor,
    reduced: &[usize],
    op: Reduce,
) -> Result<(Vec<f64>, Vec<usize>, Vec<usize>)> {
    let (vals, kept_dims) = reduction_layout(t, reduced)?;
    let m: usize = kept_dims.iter().product();
    let n = vals.len() / m;
    let block = |k: usize| &vals[k * m..(k + 1) * m];
    let mut acc = try_zeros(m, "Tensor")?;
    acc.copy_from_slice(block(0));
    let mut idx = Vec::new();
    match op {
        Reduce::Sum | Reduce::Mean | Reduce::Var(_) => {
            for k in 1..n {
                for (a, &v) in acc.iter_mut().zip(block(k)) {
                    *a += v;
                }
            }
            if op != Reduce::Sum {
                let nf = n as f64;
                for a in acc.iter_mut() {
                    *a /= nf;
                }
            }
            if let Reduce::Var(unbiased) = op {
                let mean = acc;
                let mut sq = try_zeros(m, "Tensor")?;
                for ((s, &v), &mu) in sq.iter_mut().zip(block(0)).zip(&mean) {
                    let d = v - mu;
                    *s = d * d;
                }
                for k in 1..n {
                    for ((s, &v), &mu) in sq.iter_mut().zip(block(k)).zip(&mean) {
                        let d = v - mu;
                        *s += d * d;
                    }
                }
                let div = if unbiased { (n - 1) as f64 } else { n as f64 };
                for s in sq.iter_mut() {
                    *s /= div;
                }
                acc = sq;
            }
        }
        Reduce::Max | Reduce::Min => {
            idx = vec![0usize; m];
            let better = if op == Reduce::Max {
                |v: f64, b: f64| v > b
            } else {
                |v: f64, b: f64| v < b
            };
            for k in 1..n {
                for ((a, i), &v) in acc.iter_mut().zip(idx.iter_mut()).zip(block(k)) {
                    if !a.is_nan() && (v.is_nan() || better(v, *a)) {
                        *a = v;
                        *i = k;
                    }
                }
            }
        }
    }
    Ok((acc, kept_dims, idx))
}

// ---------------------------------------------------------------------------
// Matrix products.
// ---------------------------------------------------------------------------

/// The shape of `a @ b` by torch's rules, with the sizes of the product: the
/// batch shape (broadcast), `m`, `k`, `n`, and the result's dimensions (without
/// the dimensions a 1-D operand adds). `ValueError` names both shapes.
pub struct MatmulPlan {
    batch: Vec<usize>,
    a_batch: Vec<usize>,
    b_batch: Vec<usize>,
    m: usize,
    k: usize,
    n: usize,
    /// The dimensions of the result; empty for 1-D @ 1-D (a number).
    pub out: Vec<usize>,
}

/// Plan `a @ b` (see [`MatmulPlan`]).
pub fn matmul_plan(a: Shape, b: Shape) -> Result<MatmulPlan> {
    let bad = || Error::Value(format!("matmul: shapes {a} and {b} do not broadcast"));
    let (da, db) = (a.dims(), b.dims());
    // A 1-D left operand is a row (1, k), a 1-D right operand a column (k, 1).
    let (a_batch, m, ka) = match da {
        [k] => (&[][..], 1, *k),
        _ => (&da[..da.len() - 2], da[da.len() - 2], da[da.len() - 1]),
    };
    let (b_batch, kb, n) = match db {
        [k] => (&[][..], *k, 1),
        _ => (&db[..db.len() - 2], db[db.len() - 2], db[db.len() - 1]),
    };
    if ka != kb {
        return Err(Error::Value(format!(
            "matmul: shapes {a} and {b} cannot be multiplied ({ka} != {kb})"
        )));
    }
    let rank = a_batch.len().max(b_batch.len());
    let mut batch = vec![1usize; rank];
    for (i, o) in batch.iter_mut().enumerate() {
        let x = if i + a_batch.len() >= rank {
            a_batch[i + a_batch.len() - rank]
        } else {
            1
        };
        let y = if i + b_batch.len() >= rank {
            b_batch[i + b_batch.len() - rank]
        } else {
            1
        };
        *o = if x == y || y == 1 {
            x
        } else if x == 1 {
            y
        } else {
            return Err(bad());
        };
    }
    let mut out = batch.clone();
    if da.len() > 1 {
        out.push(m);
    }
    if db.len() > 1 {
        out.push(n);
    }
    Ok(MatmulPlan {
        batch,
        a_batch: a_batch.to_vec(),
        b_batch: b_batch.to_vec(),
        m,
        k: ka,
        n,
        out,
    })
}

/// One product `c = a @ b` of row-major `a` (m, k) and `b` (k, n) into `c`
/// (m, n), which holds zeros: each `c[i][j]` a skipping fold over `k` (the Linear
/// `dx` fold, on the same tiled loop nest).
struct Product<'a> {
    dims: (usize, usize, usize),
    a: &'a [f64],
    b: &'a [f64],
    c: &'a mut [f64],
    terms: &'a mut crate::modules::Terms,
}

impl Product<'_> {
    #[inline(always)]
    fn go<const W: usize>(self) {
        let (_, k, _) = self.dims;
        let a = self.a;
        crate::modules::skip_gemm::<W>(
            self.dims,
            |i, t| a[i * k + t],
            crate::modules::Right::Rows(self.b),
            self.c,
            self.terms,
        );
    }
}

crate::modules::tiled_kernels!(Product);

/// `a @ b` by [`matmul_plan`]: the values of the result in row-major order.
pub fn matmul(a: &Tensor, b: &Tensor, plan: &MatmulPlan) -> Result<Vec<f64>> {
    let (m, k, n) = (plan.m, plan.k, plan.n);
    if k > u32::MAX as usize {
        return Err(Error::Memory(format!(
            "matmul: an inner size of {k} is too large"
        )));
    }
    let nb: usize = checked_numel(&plan.batch, "matmul")?;
    let mn = checked_size(m, n, "matmul")?;
    let mut c = try_zeros(checked_size(nb, mn, "matmul")?, "matmul")?;
    let batch = Shape::new(if plan.batch.is_empty() {
        &[1]
    } else {
        &plan.batch
    })?;
    let shape_of = |dims: &[usize]| Shape::new(if dims.is_empty() { &[1] } else { dims });
    let sa = broadcast_strides(shape_of(&plan.a_batch)?, batch);
    let sb = broadcast_strides(shape_of(&plan.b_batch)?, batch);
    let mut pairs = Vec::new();
    for_each_broadcast(batch, &sa, &sb, |_, i, j| pairs.push((i, j)));
    let (mk, kn) = (m * k, k * n);
    crate::modules::with_terms(|terms| {
        for (c, &(i, j)) in c.chunks_exact_mut(mn).zip(&pairs) {
            crate::simd::dispatch(Product {
                dims: (m, k, n),
                a: &a.data[i * mk..(i + 1) * mk],
                b: &b.data[j * kn..(j + 1) * kn],
                c,
                terms,
            });
        }
    });
    Ok(c)
}

/// `i` as an index into a dimension of size `n`, Python style (negative counts from the end).
pub fn normalize_index(i: i64, n: usize) -> Result<usize> {
    let ni = n as i128;
    let ii = i as i128;
    if ii < -ni || ii >= ni {
        return Err(Error::Index(format!(
            "Tensor: index {i} is out of range for size {n}"
        )));
    }
    Ok(if ii < 0 {
        (ii + ni) as usize
    } else {
        ii as usize
    })
}

/// `repr(v)` as Python writes it: the shortest digits that round-trip, in
/// positional notation for exponents from -4 to 15 and as `d.ddde±XX` otherwise.
pub fn py_float_repr(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    // Rust's `{:e}` gives the same shortest round-trip digits: "-1.2345e-7".
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        let n = digits.len() as i32;
        let body = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point >= n {
            format!("{digits}{}.0", "0".repeat((point - n) as usize))
        } else {
            let (int, frac) = digits.split_at(point as usize);
            format!("{int}.{frac}")
        };
        return format!("{sign}{body}");
    }
    let (first, rest) = digits.split_at(1);
    let frac = if rest.is_empty() {
        String::new()
    } else {
        format!(".{rest}")
    };
    let esign = if exp < 0 { '-' } else { '+' };
    format!("{sign}{first}{frac}e{esign}{:02}", exp.abs())
}

#[cfg(test)]
// The references spell each fold out literally, index by index.
#[allow(clippy::needless_range_loop, clippy::assign_op_pattern)]
mod tests {
    use super::*;
    use crate::testing::bits;

    /// A tensor of `dims` with values `f(k)` for `k` in row-major order.
    fn t(dims: &[usize], f: impl Fn(usize) -> f64) -> Tensor {
        let s = Shape::new(dims).unwrap();
        Tensor::new(s, (0..s.numel()).map(f).collect()).unwrap()
    }

    /// Row-major coordinates of flat index `k` in `dims`.
    fn coords(mut k: usize, dims: &[usize]) -> Vec<usize> {
        let mut c = vec![0; dims.len()];
        for d in (0..dims.len()).rev() {
            c[d] = k % dims[d];
            k /= dims[d];
        }
        c
    }

    /// Flat index of coordinates `c` in `dims`.
    fn flat(c: &[usize], dims: &[usize]) -> usize {
        let mut k = 0;
        for d in 0..dims.len() {
            k = k * dims[d] + c[d];
        }
        k
    }

    /// Values with zeros, signed zeros, infinities and NaN among ordinary numbers.
    fn odd(k: usize) -> f64 {
        match k % 11 {
            0 => 0.0,
            1 => -0.0,
            2 => f64::INFINITY,
            3 => f64::NAN,
            4 => -1.5,
            _ => (k as f64 * 0.37).sin() * 3.0,
        }
    }

    #[test]
    fn shapes_of_any_rank() {
        let s = Shape::new(&[2, 3, 4]).unwrap();
        assert_eq!(s.to_string(), "(2, 3, 4)");
        assert_eq!((s.rows(), s.cols(), s.numel(), s.len()), (6, 4, 24, 2));
        assert_eq!(s.strides(), vec![12, 4, 1]);
        assert_eq!(Shape::Matrix(2, 3).as_matrix(), Some((2, 3)));
        assert_eq!(Shape::Vector(4).as_vector(), Some(4));
        assert!(s.as_matrix().is_none());
        assert!(Shape::new(&[]).is_err());
        assert!(Shape::new(&[1; MAX_RANK + 1]).is_err());
        assert_eq!(normalize_dim(-1, 3, "sum").unwrap(), 2);
        assert!(matches!(normalize_dim(3, 3, "sum"), Err(Error::Index(_))));
    }

    #[test]
    fn broadcasting_follows_numpy() {
        let b = |a: &[usize], c: &[usize]| {
            broadcast_shapes(Shape::new(a).unwrap(), Shape::new(c).unwrap(), "add")
                .map(|s| s.dims().to_vec())
        };
        assert_eq!(b(&[2, 1, 3], &[4, 1]).unwrap(), vec![2, 4, 3]);
        assert_eq!(b(&[3], &[2, 3]).unwrap(), vec![2, 3]);
        assert!(matches!(b(&[2, 3], &[3, 2]), Err(Error::Value(_))));
    }

    #[test]
    fn binary_operations_match_element_by_element_reference() {
        let cases: [(&[usize], &[usize]); 5] = [
            (&[2, 3], &[2, 3]),
            (&[2, 1, 3], &[4, 1]),
            (&[3], &[2, 2, 3]),
            (&[2, 3], &[1]),
            (&[1], &[5]),
        ];
        let ops = [
            (BinOp::Add, (|a, b| a + b) as fn(f64, f64) -> f64),
            (BinOp::Sub, |a, b| a - b),
            (BinOp::Mul, |a, b| a * b),
            (BinOp::Div, |a, b| a / b),
            (BinOp::Maximum, |a: f64, b: f64| {
                if a.is_nan() || b.is_nan() {
                    f64::NAN
                } else if b > a {
                    b
                } else {
                    a
                }
            }),
            (BinOp::Lt, |a, b| if a < b { 1.0 } else { 0.0 }),
            (BinOp::Ne, |a, b| if a != b { 1.0 } else { 0.0 }),
        ];
        for (sa, sb) in cases {
            let a = t(sa, odd);
            let b = t(sb, |k| odd(k + 5));
            let out = broadcast_shapes(a.shape(), b.shape(), "op").unwrap();
            let od = out.dims();
            for (op, f) in ops {
                let got = binary(op, &a, &b, "op").unwrap();
                assert_eq!(got.shape(), out);
                for k in 0..out.numel() {
                    let c = coords(k, od);
                    // The operand's coordinates: aligned at the end, 0 where it is stretched.
                    let pick = |d: &[usize]| {
                        let lead = od.len() - d.len();
                        let cc: Vec<usize> = (0..d.len())
                            .map(|i| if d[i] == 1 { 0 } else { c[i + lead] })
                            .collect();
                        flat(&cc, d)
                    };
                    let want = f(a.data()[pick(sa)], b.data()[pick(sb)]);
                    let g = got.data()[k];
                    assert!(
                        g.to_bits() == want.to_bits() || (g.is_nan() && want.is_nan()),
                        "{op:?} {sa:?} {sb:?} at {k}: {g} != {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn unary_operations_use_the_c_library() {
        let x = t(&[3, 4], odd);
        let y = unary(UnOp::Pow(-1.0), &x).unwrap();
        for (a, b) in x.data().iter().zip(y.data()) {
            let want = a.powf(-1.0);
            assert!(b.to_bits() == want.to_bits() || (b.is_nan() && want.is_nan()));
        }
        let z = unary(UnOp::Log, &t(&[3], |k| [0.0, -1.0, f64::INFINITY][k])).unwrap();
        assert_eq!(z.data()[0], f64::NEG_INFINITY);
        assert!(z.data()[1].is_nan());
        assert_eq!(z.data()[2], f64::INFINITY);
        let c = unary(
            UnOp::Clamp(Some(1.0), Some(0.0)),
            &t(&[2], |k| [f64::NAN, 5.0][k]),
        )
        .unwrap();
        assert!(c.data()[0].is_nan());
        assert_eq!(c.data()[1], 0.0);
        assert_eq!(maximum(-0.0, 0.0).to_bits(), (-0.0f64).to_bits());
    }

    /// The NUMERICS fold of `terms` for `op`, written out literally.
    fn reference(terms: &[f64], op: Reduce) -> (f64, usize) {
        let n = terms.len();
        let mut acc = terms[0];
        for k in 1..n {
            acc = acc + terms[k];
        }
        match op {
            Reduce::Sum => (acc, 0),
            Reduce::Mean => (acc / n as f64, 0),
            Reduce::Var(unbiased) => {
                let m = acc / n as f64;
                let mut s = (terms[0] - m) * (terms[0] - m);
                for k in 1..n {
                    s = s + (terms[k] - m) * (terms[k] - m);
                }
                (s / if unbiased { (n - 1) as f64 } else { n as f64 }, 0)
            }
            Reduce::Max | Reduce::Min => {
                let mut best = terms[0];
                let mut at = 0;
                for k in 1..n {
                    if best.is_nan() {
                        break;
                    }
                    let v = terms[k];
                    let better = if op == Reduce::Max {
                        v > best
                    } else {
                        v < best
                    };
                    if v.is_nan() || better {
                        best = v;
                        at = k;
                    }
                }
                (best, at)
            }
        }
    }

    #[test]
    fn reductions_match_the_documented_folds() {
        let dims = [3usize, 4, 5];
        let x = t(&dims, |k| {
            if k % 7 == 0 {
                odd(k)
            } else {
                (k as f64 * 1.3).cos() * 1e3
            }
        });
        let sets: [&[usize]; 6] = [&[0], &[1], &[2], &[0, 2], &[1, 2], &[0, 1, 2]];
        let ops = [
            Reduce::Sum,
            Reduce::Mean,
            Reduce::Var(true),
            Reduce::Var(false),
            Reduce::Max,
            Reduce::Min,
        ];
        for reduced in sets {
            let kept: Vec<usize> = (0..3).filter(|d| !reduced.contains(d)).collect();
            let kd: Vec<usize> = kept.iter().map(|&d| dims[d]).collect();
            let rd: Vec<usize> = reduced.iter().map(|&d| dims[d]).collect();
            let m: usize = kd.iter().product();
            let n: usize = rd.iter().product();
            for op in ops {
                let (vals, kept_dims, idx) = reduce(&x, reduced, op).unwrap();
                assert_eq!(kept_dims, kd);
                for o in 0..m {
                    let oc = coords(o, &kd);
                    // The terms in row-major order of the reduced coordinates.
                    let terms: Vec<f64> = (0..n)
                        .map(|r| {
                            let rc = coords(r, &rd);
                            let mut c = vec![0; 3];
                            for (i, &d) in kept.iter().enumerate() {
                                c[d] = oc[i];
                            }
                            for (i, &d) in reduced.iter().enumerate() {
                                c[d] = rc[i];
                            }
                            x.data()[flat(&c, &dims)]
                        })
                        .collect();
                    let (want, at) = reference(&terms, op);
                    let g = vals[o];
                    assert!(
                        g.to_bits() == want.to_bits() || (g.is_nan() && want.is_nan()),
                        "{op:?} over {reduced:?} at {o}: {g} != {want}"
                    );
                    if matches!(op, Reduce::Max | Reduce::Min) {
                        assert_eq!(idx[o], at);
                    }
                }
            }
        }
    }

    /// `a @ b` for 2-D row-major operands: skipping folds over k from 0.0.
    fn naive_mm(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0.0;
                for t in 0..k {
                    if a[i * k + t] != 0.0 {
                        acc = acc + a[i * k + t] * b[t * n + j];
                    }
                }
                c[i * n + j] = acc;
            }
        }
        c
    }

    #[test]
    fn matmul_is_the_skipping_fold_for_every_rank() {
        let val = |k: usize| {
            if k.is_multiple_of(3) {
                0.0
            } else {
                (k as f64 * 0.71).sin()
            }
        };
        // (a dims, b dims, m, k, n, batch pairs (a index, b index))
        let a = t(&[2, 1, 5, 7], val);
        let b = t(&[3, 7, 9], |k| val(k + 1));
        let plan = matmul_plan(a.shape(), b.shape()).unwrap();
        assert_eq!(plan.out, vec![2, 3, 5, 9]);
        let got = matmul(&a, &b, &plan).unwrap();
        for i in 0..2 {
            for j in 0..3 {
                let want = naive_mm(
                    &a.data()[i * 35..(i + 1) * 35],
                    &b.data()[j * 63..(j + 1) * 63],
                    5,
                    7,
                    9,
                );
                let at = (i * 3 + j) * 45;
                assert_eq!(bits(&got[at..at + 45]), bits(&want));
            }
        }
        // 1-D operands: a row on the left, a column on the right, a number for both.
        let v = t(&[7], val);
        let m = t(&[7, 40], |k| val(k + 2));
        let p = matmul_plan(v.shape(), m.shape()).unwrap();
        assert_eq!(p.out, vec![40]);
        assert_eq!(
            bits(&matmul(&v, &m, &p).unwrap()),
            bits(&naive_mm(v.data(), m.data(), 1, 7, 40))
        );
        let p = matmul_plan(v.shape(), v.shape()).unwrap();
        assert!(p.out.is_empty());
        assert_eq!(
            bits(&matmul(&v, &v, &p).unwrap()),
            bits(&naive_mm(v.data(), v.data(), 1, 7, 1))
        );
        assert!(matches!(
            matmul_plan(Shape::Matrix(2, 3), Shape::Matrix(4, 2)),
            Err(Error::Value(_))
        ));
        assert!(matches!(
            matmul_plan(
                Shape::new(&[2, 2, 3]).unwrap(),
                Shape::new(&[3, 3, 2]).unwrap()
            ),
            Err(Error::Value(_))
        ));
    }

    #[test]
    fn shape_operations_move_values() {
        let x = t(&[2, 3, 4], |k| k as f64);
        let p = x.permuted(&[2, 0, 1]).unwrap();
        assert_eq!(p.shape().dims(), &[4, 2, 3]);
        for k in 0..24 {
            let c = coords(k, &[4, 2, 3]);
            assert_eq!(p.data()[k], x.data()[flat(&[c[1], c[2], c[0]], &[2, 3, 4])]);
        }
        let picks = [
            Pick::List(vec![1, 0]),
            Pick::Range {
                start: 2,
                step: 1,
                len: 1,
            },
            Pick::Range {
                start: 1,
                step: 2,
                len: 2,
            },
        ];
        assert_eq!(x.gather(&picks).unwrap(), vec![21.0, 23.0, 9.0, 11.0]);
        let mut y = x.try_clone().unwrap();
        y.scatter(&picks, Shape::Matrix(2, 2), &[7.0, 8.0], Shape::Vector(2))
            .unwrap();
        assert_eq!(y.gather(&picks).unwrap(), vec![7.0, 8.0, 7.0, 8.0]);
        assert!(y
            .scatter(&picks, Shape::Matrix(2, 2), &[1.0; 3], Shape::Vector(3))
            .is_err());
        let c = Tensor::cat(&[&x, &t(&[2, 1, 4], |k| -(k as f64))], 1).unwrap();
        assert_eq!(c.shape().dims(), &[2, 4, 4]);
        assert_eq!(&c.data()[12..16], &[-0.0, -1.0, -2.0, -3.0]);
        assert!(Tensor::cat(&[&x, &t(&[2, 3], |_| 0.0)], 0).is_err());
        assert!(matches!(
            x.reshaped(Shape::Matrix(5, 5)),
            Err(Error::Value(_))
        ));
        let mut z = t(&[2, 3], |k| k as f64);
        binary_inplace(
            BinOp::Sub,
            &mut z,
            &[1.0, 2.0, 3.0],
            Shape::Vector(3),
            Some(2.0),
            "sub_",
        )
        .unwrap();
        assert_eq!(z.data(), &[-2.0, -3.0, -4.0, 1.0, 0.0, -1.0]);
        assert!(binary_inplace(
            BinOp::Add,
            &mut z,
            &[0.0; 12],
            Shape::Matrix(4, 3),
            None,
            "add_"
        )
        .is_err());
    }

    #[test]
    fn shapes_print_like_python_tuples() {
        assert_eq!(Shape::Matrix(2, 3).to_string(), "(2, 3)");
        assert_eq!(Shape::Vector(4).to_string(), "(4,)");
        assert_eq!(Shape::Matrix(2, 3).numel(), 6);
        assert_eq!(Shape::Vector(4).rows(), 1);
    }

    #[test]
    fn new_checks_the_length_and_emptiness() {
        let t = Tensor::new(Shape::Matrix(2, 2), vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(t.to_rows(), vec![vec![1.0, 2.0], vec![3.0, 4.0]]);
        assert!(matches!(
            Tensor::new(Shape::Vector(2), vec![1.0]),
            Err(Error::Value(_))
        ));
        assert!(matches!(
            Tensor::new(Shape::Matrix(0, 2), vec![]),
            Err(Error::Value(_))
        ));
    }

    #[test]
    fn select_gathers_rows_and_values() {
        let t = Tensor::new(Shape::Matrix(3, 2), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let s = t.select(&[2, 0, 2]).unwrap();
        assert_eq!(
            s.to_rows(),
            vec![vec![5.0, 6.0], vec![1.0, 2.0], vec![5.0, 6.0]]
        );
        let v = Tensor::new(Shape::Vector(3), vec![1.0, 2.0, 3.0]).unwrap();
        assert_eq!(v.select(&[1]).unwrap().data(), &[2.0]);
        assert_eq!(v.try_clone().unwrap(), v);
        assert_eq!(Shape::Matrix(usize::MAX, 2).numel(), usize::MAX);
        assert!(matches!(
            Tensor::zeros(Shape::Matrix(usize::MAX, 2)),
            Err(Error::Memory(_))
        ));
        assert!(matches!(t.select(&[]), Err(Error::Value(_))));
        assert!(matches!(t.select(&[3]), Err(Error::Index(_))));
    }

    #[test]
    fn floats_print_as_python_repr() {
        let cases = [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e-5, "1e-05"),
            (1e-4, "0.0001"),
            (0.00012345, "0.00012345"),
            (1.5e-7, "1.5e-07"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789012345.6, "123456789012345.6"),
            (1.2345e22, "1.2345e+22"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (f64::NAN, "nan"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for (v, want) in cases {
            assert_eq!(py_float_repr(v), want, "{v:e}");
        }
    }

    #[test]
    fn python_style_indices() {
        assert_eq!(normalize_index(-1, 3).unwrap(), 2);
        assert_eq!(normalize_index(0, 3).unwrap(), 0);
        assert!(matches!(normalize_index(3, 3), Err(Error::Index(_))));
        assert!(matches!(normalize_index(-4, 3), Err(Error::Index(_))));
        assert!(matches!(normalize_index(i64::MIN, 3), Err(Error::Index(_))));
    }
}
