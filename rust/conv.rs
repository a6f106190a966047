//! The convolution family's kernels (see `pyfw/conv.py`): a 2-D convolution
//! over `(N, C, H, W)` with zero padding, stride and dilation (`Conv1d` runs it
//! with `H = 1`), and max and average pooling.
//!
//! Every output is a left fold in the order docs/NUMERICS.md ("Conv2d") gives,
//! the same as `pyfw`'s loops. Loops run across independent outputs (the
//! output positions `j` of one row) innermost, never along a fold, and no
//! multiply-add is fused, so the bits match `pyfw`'s.

use crate::error::{checked_size, try_zeros, Error, Result};
use crate::simd::{dispatch, Kernel};

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
    forward_on(Path::Dispatch, g, x, weight, bias, &mut y)?;
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
/// Eight channels run together, each its own fold, so that their additions overlap.
pub fn channel_sums(t: &[f64], n: usize, plane: usize, acc: &mut [f64]) {
    const ROWS: usize = 8;
    let ch = acc.len();
    for o0 in (0..ch).step_by(ROWS) {
        let rr = tile_rows::<ROWS>(o0, ch);
        let mut s = rr.map(|o| acc[o]);
        for k in 0..n {
            let rows = rr.map(|o| &t[(k * ch + o) * plane..][..plane]);
            for p in 0..plane {
                for (a, row) in s.iter_mut().zip(&rows) {
                    *a += row[p];
                }
            }
        }
        for (r, v) in s.iter().enumerate().take(ch - o0) {
            acc[o0 + r] = *v;
        }
    }
}

/// The weight gradient of [`backward`], folded into `weight_grad`.
pub fn weight_grad_into(g: &Geom, x: &[f64], gy: &[f64], weight_grad: &mut [f64]) {
    weight_grad_on(Path::Dispatch, g, x, gy, weight_grad);
}

/// The input gradient of [`backward`]; each `dx[n, c]` plane starts at `start[c]` instead of
/// `0.0` when given (the bias of `ConvTranspose2d`, whose forward this is).
pub fn input_grad(g: &Geom, weight: &[f64], gy: &[f64], start: Option<&[f64]>) -> Result<Vec<f64>> {
    let mut dx = zeros(&[g.n, g.c, g.h, g.w])?;
    input_grad_on(Path::Dispatch, g, weight, gy, start, &mut dx)?;
    Ok(dx)
}

/// A tap of a product over positions: where its value sits relative to a
/// position's base in the source, and the row and column shift it adds to the
/// position (the value exists when the shifted position falls inside the source).
#[derive(Clone, Copy, Debug, Default)]
struct Tap {
    off: isize,
    dh: isize,
    dv: isize,
}

/// A row of positions of a product over positions: `count` positions whose
/// lane `l` reads the source at `base + l * vstep` (row `h0`, column
/// `v0 + l * vstep` there) and writes `dst` at `out + l * ostep`.
#[derive(Clone, Copy, Debug, Default)]
struct Row {
    base: isize,
    h0: isize,
    v0: isize,
    out: usize,
    count: usize,
}

/// One step of a tile (a tap): its offset in the source from a block's base,
/// and the lanes `lo..hi` that read inside the source (the others keep their sums).
#[derive(Clone, Copy, Debug, Default)]
struct Step {
    off: isize,
    lo: usize,
    hi: usize,
}

/// A position of a product over positions: its base in the source, its row and
/// column there, and where its outputs go (row `r`'s at `out + r * row_stride`).
#[derive(Clone, Copy, Debug, Default)]
struct Pos {
    base: isize,
    h0: isize,
    v0: isize,
    out: usize,
}

impl Pos {
    /// Whether tap `t` reads a value inside a source of `lim` rows and columns.
    #[inline(always)]
    fn reads(&self, t: &Tap, lim: (isize, isize)) -> bool {
        let (h, v) = (self.h0 + t.dh, self.v0 + t.dv);
        0 <= h && h < lim.0 && 0 <= v && v < lim.1
    }
}

/// The packed panel of a product, its lane masks and step flags.
#[derive(Clone, Debug, Default)]
struct Bufs {
    panel: Vec<f64>,
    mask: Vec<u64>,
    flags: Vec<bool>,
}

/// Scratch space of the convolution kernels, kept between calls so that a call
/// allocates only its result once the sizes are known.
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    bufs: Bufs,
    inner: Vec<Pos>,
    outer: Vec<Pos>,
    panel: Vec<f64>,
    steps: Vec<Step>,
    taps: Vec<Tap>,
    rows: Vec<Row>,
    apack: Vec<f64>,
    mask: Vec<u64>,
    flags: Vec<bool>,
}

thread_local! {
    /// The scratch space of the convolution kernels on this thread.
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// Run `f` with this thread's scratch space (a fresh one if it is in use).
fn with_scratch<T>(f: impl FnOnce(&mut Scratch) -> T) -> T {
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut s) => f(&mut s),
        Err(_) => f(&mut Scratch::default()),
    })
}

/// How a kernel runs: through [`dispatch`], or on one chosen path (the tests
/// compare them all).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Path {
    Dispatch,
    #[cfg(test)]
    Portable,
    #[cfg(all(test, target_arch = "x86_64"))]
    Avx2,
    #[cfg(all(test, target_arch = "x86_64"))]
    Avx512,
}

impl Path {
    /// Run `k`; false when this CPU lacks the path (nothing ran).
    fn run<K: Kernel>(self, k: K) -> bool {
        match self {
            Path::Dispatch => dispatch(k),
            #[cfg(test)]
            Path::Portable => crate::simd::portable(k),
            #[cfg(all(test, target_arch = "x86_64"))]
            Path::Avx2 => return crate::simd::on_avx2(k).is_ok(),
            #[cfg(all(test, target_arch = "x86_64"))]
            Path::Avx512 => return crate::simd::on_avx512(k).is_ok(),
        }
        true
    }
}

/// Values a packed panel holds at most (256 KiB), so that it stays in the second-level cache.
const PANEL: usize = 32768;

/// Rows of a register tile: their lanes stay in registers over a whole fold,
/// and their independent sums hide the latency of the additions.
const TILE_ROWS: usize = 4;

/// The first `W` values of `s` as an array.
#[inline(always)]
fn lanes<const W: usize>(s: &[f64]) -> [f64; W] {
    let mut a = [0.0; W];
    a.copy_from_slice(&s[..W]);
    a
}

/// The rows `r0..r0 + MR` of a product with `rows` rows, the last one repeated
/// past the end (its results are computed and dropped).
#[inline(always)]
fn tile_rows<const MR: usize>(r0: usize, rows: usize) -> [usize; MR] {
    std::array::from_fn(|r| (r0 + r).min(rows - 1))
}

/// `acc[r][l] = acc[r][l] + av[r] * bv[l]` for the lanes `l` in `lo..hi` (all
/// lanes when `all`); the other lanes keep their value: they are not given
/// `+ 0.0`, which could change the sign of a zero or make NaN of `0 * inf`.
#[inline(always)]
fn add_terms<const MR: usize, const W: usize>(
    acc: &mut [[f64; W]; MR],
    av: [f64; MR],
    bv: [f64; W],
    keep: Option<[bool; W]>,
) {
    match keep {
        None => {
            for r in 0..MR {
                for l in 0..W {
                    acc[r][l] += av[r] * bv[l];
                }
            }
        }
        Some(keep) => {
            for r in 0..MR {
                for l in 0..W {
                    let sum = acc[r][l] + av[r] * bv[l];
                    acc[r][l] = if keep[l] { sum } else { acc[r][l] };
                }
            }
        }
    }
}

/// The register tile of the products over positions: for every row `r < MR`
/// and lane `l < W`, in place, `acc[r][l] = acc[r][l] + a[r][t] * b[at(t, s) + l]`
/// for the steps `s = steps[t]` in order, each adding only to its lanes
/// `s.lo..s.hi` (every lane below `len` counts; the lanes from `len` on are
/// dropped). The lanes are independent outputs; no fold is reordered.
#[inline(always)]
fn tile<const MR: usize, const W: usize>(
    acc: &mut [[f64; W]; MR],
    a: [&[f64]; MR],
    steps: &[Step],
    b: &[f64],
    at: impl Fn(usize, &Step) -> usize,
    len: usize,
) {
    let a = a.map(|r| &r[..steps.len()]);
    let mut s = *acc;
    for (t, st) in steps.iter().enumerate() {
        let bv = lanes::<W>(&b[at(t, st)..]);
        let av = a.map(|r| r[t]);
        if st.lo == 0 && st.hi >= len {
            add_terms(&mut s, av, bv, None);
        } else {
            let keep = std::array::from_fn(|l| st.lo <= l && l < st.hi);
            add_terms(&mut s, av, bv, Some(keep));
        }
    }
    *acc = s;
}

/// [`tile`] when every step is tap `t` in order with all its lanes, at `b[t * W..]`.
#[inline(always)]
fn dense<const MR: usize, const W: usize>(acc: &mut [[f64; W]; MR], a: [&[f64]; MR], b: &[f64]) {
    let depth = b.len() / W;
    let a = a.map(|r| &r[..depth]);
    let mut s = *acc;
    for (t, bv) in b.chunks_exact(W).enumerate() {
        add_terms(&mut s, a.map(|r| r[t]), lanes::<W>(bv), None);
    }
    *acc = s;
}

/// What a slot of [`Rowwise`]'s steps was built for: the rows' `(count, v0)`
/// (None: a block of a row some of whose taps' rows are outside), the lowest and
/// highest offset its steps read, and whether every step takes every lane.
#[derive(Clone, Copy, Debug)]
struct Built {
    key: Option<(usize, isize)>,
    off_lo: isize,
    off_hi: isize,
    full: bool,
}

impl Default for Built {
    fn default() -> Built {
        Built {
            key: None,
            off_lo: isize::MAX,
            off_hi: isize::MIN,
            full: false,
        }
    }
}

/// One product over rows of positions, for products of few rows (a panel would
/// serve only one tile, so the lanes are read in place where they can be): for
/// every row `r < rows` and position of the position rows, `dst[out + r * row_stride]` is a fold over the taps `t` in
/// order of `a[r * taps + t] * src[base + taps[t].off]`, starting at `init[r]`
/// (`0.0` without), leaving out the taps that read outside the source (`lim`
/// rows and columns). The lanes of a tile are `W` positions of one row.
struct Rowwise<'a> {
    a: &'a [f64],
    rows: usize,
    init: Option<&'a [f64]>,
    taps: &'a [Tap],
    lim: (isize, isize),
    src: &'a [f64],
    row_stride: usize,
    /// The position rows, and their lane steps in the source and in `dst`.
    pos: &'a [Row],
    vstep: usize,
    ostep: usize,
    dst: &'a mut [f64],
    panel: &'a mut Vec<f64>,
    steps: &'a mut Vec<Step>,
}

impl Rowwise<'_> {
    #[inline(always)]
    fn go<const MR: usize, const W: usize>(self) {
        let nt = self.taps.len();
        if self.rows == 0 {
            return;
        }
        let vs = self.vstep as isize;
        self.panel.resize(nt * W, 0.0);
        let ext = extent(self.taps);
        // The steps depend on a block's column and on which taps' rows are inside:
        // they are built once per column for the rows whose taps' rows are all
        // inside (slots 0..cols), and for each block of the other rows (slot cols).
        let cols = self.pos.first().map_or(0, |r| r.count.div_ceil(W));
        self.steps.clear();
        self.steps.resize((cols + 1) * nt, Step::default());
        let mut built = vec![Built::default(); cols + 1];
        for row in self.pos {
            let rows_inside = nt > 0 && row.h0 + ext.0 >= 0 && row.h0 + ext.1 < self.lim.0;
            for l0 in (0..row.count).step_by(W) {
                let len = W.min(row.count - l0);
                let base = row.base + (l0 * self.vstep) as isize;
                let v0 = row.v0 + (l0 * self.vstep) as isize;
                let key = Some((row.count, row.v0));
                let slot = if rows_inside && l0 / W < cols {
                    l0 / W
                } else {
                    cols
                };
                let steps = &mut self.steps[slot * nt..(slot + 1) * nt];
                if !(rows_inside && built[slot].key == key) {
                    // Each tap, with the lanes for which it reads inside (none when its
                    // row is outside).
                    let (mut off_lo, mut off_hi) = (isize::MAX, isize::MIN);
                    for (st, tap) in steps.iter_mut().zip(self.taps) {
                        let h = row.h0 + tap.dh;
                        let v = v0 + tap.dv;
                        let lo = if v >= 0 { 0 } else { (-v + vs - 1) / vs };
                        let room = self.lim.1 - v;
                        let hi = if room <= 0 { 0 } else { (room + vs - 1) / vs };
                        let (lo, hi) = ((lo as usize).min(len), (hi as usize).min(W));
                        *st = if h < 0 || h >= self.lim.0 || lo >= hi.min(len) {
                            Step {
                                off: 0,
                                lo: 0,
                                hi: 0,
                            }
                        } else {
                            (off_lo, off_hi) = (off_lo.min(tap.off), off_hi.max(tap.off));
                            Step {
                                off: tap.off,
                                lo,
                                hi,
                            }
                        };
                    }
                    // A tap that reads nothing reads (and drops) the lanes of another.
                    for st in steps.iter_mut().filter(|st| st.lo >= st.hi) {
                        st.off = off_lo.min(off_hi);
                    }
                    let full = steps.iter().all(|st| st.lo == 0 && st.hi >= len);
                    built[slot] = Built {
                        key: if rows_inside { key } else { None },
                        off_lo,
                        off_hi,
                        full,
                    };
                }
                let Built {
                    off_lo,
                    off_hi,
                    full,
                    ..
                } = built[slot];
                let steps = &self.steps[slot * nt..(slot + 1) * nt];
                // Read in place when every step's lanes lie in the source, else packed.
                let in_place = self.vstep == 1
                    && off_lo <= off_hi
                    && base + off_lo >= 0
                    && (base + off_hi) as usize + W <= self.src.len();
                if !in_place {
                    for (k, st) in steps.iter().enumerate() {
                        let vals = &mut self.panel[k * W..k * W + W];
                        let at = base + st.off;
                        for (l, v) in vals.iter_mut().enumerate() {
                            *v = if st.lo <= l && l < st.hi.min(len) {
                                self.src[(at + l as isize * vs) as usize]
                            } else {
                                0.0
                            };
                        }
                    }
                }
                let out = row.out + l0 * self.ostep;
                for r0 in (0..self.rows).step_by(MR) {
                    let rr = tile_rows::<MR>(r0, self.rows);
                    let a = rr.map(|r| &self.a[r * nt..(r + 1) * nt]);
                    let mut acc = rr.map(|r| [self.init.map_or(0.0, |b| b[r]); W]);
                    if in_place {
                        let at = |_: usize, st: &Step| (base + st.off) as usize;
                        tile(&mut acc, a, steps, self.src, at, len);
                    } else if full {
                        dense(&mut acc, a, &self.panel[..nt * W]);
                    } else {
                        tile(&mut acc, a, steps, self.panel, |t, _| t * W, len);
                    }
                    for (r, lanes) in acc.iter().enumerate().take(self.rows - r0) {
                        let at = out + (r0 + r) * self.row_stride;
                        if self.ostep == 1 {
                            self.dst[at..at + len].copy_from_slice(&lanes[..len]);
                        } else {
                            for (l, &v) in lanes[..len].iter().enumerate() {
                                self.dst[at + l * self.ostep] = v;
                            }
                        }
                    }
                }
            }
        }
    }
}

impl Rowwise<'_> {
    /// [`Rowwise::go`] with tiles of as many rows as the product has, up to [`TILE_ROWS`].
    #[inline(always)]
    fn fit<const W: usize>(self) {
        match self.rows {
            1 => self.go::<1, W>(),
            2 => self.go::<2, W>(),
            3 => self.go::<3, W>(),
            _ => self.go::<TILE_ROWS, W>(),
        }
    }
}

impl Kernel for Rowwise<'_> {
    #[inline(always)]
    fn run(self) {
        self.fit::<8>()
    }

    #[inline(always)]
    fn run_wide(self) {
        self.fit::<16>()
    }
}

/// The register tile of [`Listed`]: for every row `r < MR` and
/// lane `l < W`, in place,
///
/// ```text
/// acc[r][l] = acc[r][l] + a[r][t] * b[t * W + l]   for t in 0..depth, in order,
/// ```
///
/// with `depth = b.len() / W`. Given a mask, a step `t` with `flags[t]` adds its
/// term only to the lanes whose `mask[t * W + l]` is set: the others keep their
/// value (they are not given `+ 0.0`, which could change the sign of a zero or
/// make NaN of `0 * inf`). The lanes are independent outputs; no fold is reordered.
#[inline(always)]
fn tile_masked<const MR: usize, const W: usize>(
    acc: &mut [[f64; W]; MR],
    a: [&[f64]; MR],
    b: &[f64],
    mask: Option<(&[u64], &[bool])>,
) {
    let depth = b.len() / W;
    let a = a.map(|r| &r[..depth]);
    let mut s = *acc;
    match mask {
        None => {
            for (t, bv) in b.chunks_exact(W).enumerate() {
                let bv = lanes::<W>(bv);
                for r in 0..MR {
                    let av = a[r][t];
                    for l in 0..W {
                        s[r][l] += av * bv[l];
                    }
                }
            }
        }
        Some((mask, flags)) => {
            let flags = &flags[..depth];
            for ((t, bv), on) in b.chunks_exact(W).enumerate().zip(mask.chunks_exact(W)) {
                let bv = lanes::<W>(bv);
                if flags[t] {
                    let mut keep = [0u64; W];
                    keep.copy_from_slice(on);
                    for r in 0..MR {
                        let av = a[r][t];
                        for l in 0..W {
                            let sum = s[r][l] + av * bv[l];
                            s[r][l] = if keep[l] != 0 { sum } else { s[r][l] };
                        }
                    }
                } else {
                    for r in 0..MR {
                        let av = a[r][t];
                        for l in 0..W {
                            s[r][l] += av * bv[l];
                        }
                    }
                }
            }
        }
    }
    *acc = s;
}

/// One product over listed positions, for products of many rows (the panel is
/// packed once for all their tiles): for every row `r < rows` and position `q` of a
/// list, `dst[q.out + r * row_stride]` is a fold over the taps `t` in order of
/// `a[r * taps + t] * src[q.base + taps[t].off]`, starting at `init[r]` (`0.0`
/// without), leaving out the taps that read outside the source. The lanes of a
/// tile are positions.
#[derive(Clone, Copy)]
struct Listed<'a> {
    a: &'a [f64],
    rows: usize,
    init: Option<&'a [f64]>,
    taps: &'a [Tap],
    lim: (isize, isize),
    src: &'a [f64],
    row_stride: usize,
}

/// The extent of a list of taps: `(min dh, max dh, min dv, max dv)`.
fn extent(taps: &[Tap]) -> (isize, isize, isize, isize) {
    taps.iter().fold(
        (isize::MAX, isize::MIN, isize::MAX, isize::MIN),
        |(a, b, c, d), t| (a.min(t.dh), b.max(t.dh), c.min(t.dv), d.max(t.dv)),
    )
}

impl Listed<'_> {
    /// Run the product for the positions `list`; `masked` when some of their taps
    /// read outside the source (else none may).
    #[inline(always)]
    fn run<const MR: usize, const W: usize>(
        &self,
        list: &[Pos],
        masked: bool,
        dst: &mut [f64],
        bufs: &mut Bufs,
    ) {
        let nt = self.taps.len();
        if self.rows == 0 || list.is_empty() {
            return;
        }
        let Bufs { panel, mask, flags } = bufs;
        let chunk = (PANEL / nt.max(1) / W * W).clamp(W, 64 * W);
        for part in list.chunks(chunk) {
            let nb = part.len().div_ceil(W);
            panel.resize(nb * nt * W, 0.0);
            if masked {
                mask.resize(nb * nt * W, 0);
                flags.resize(nb * nt, false);
            }
            for lb in 0..nb {
                let here = &part[lb * W..part.len().min(lb * W + W)];
                for (t, tap) in self.taps.iter().enumerate() {
                    let at = (lb * nt + t) * W;
                    let vals = &mut panel[at..at + W];
                    if !masked {
                        for (v, q) in vals.iter_mut().zip(here) {
                            *v = self.src[(q.base + tap.off) as usize];
                        }
                        vals[here.len()..].fill(0.0);
                        continue;
                    }
                    let on = &mut mask[at..at + W];
                    let mut off = false;
                    for ((v, m), q) in vals.iter_mut().zip(on.iter_mut()).zip(here) {
                        let inside = q.reads(tap, self.lim);
                        *v = if inside {
                            self.src[(q.base + tap.off) as usize]
                        } else {
                            0.0
                        };
                        *m = if inside { u64::MAX } else { 0 };
                        off |= !inside;
                    }
                    vals[here.len()..].fill(0.0);
                    on[here.len()..].fill(0);
                    flags[lb * nt + t] = off;
                }
            }
            for lb in 0..nb {
                let b = &panel[lb * nt * W..(lb + 1) * nt * W];
                let m = masked.then(|| {
                    (
                        &mask[lb * nt * W..(lb + 1) * nt * W],
                        &flags[lb * nt..(lb + 1) * nt],
                    )
                });
                let here = &part[lb * W..part.len().min(lb * W + W)];
                for r0 in (0..self.rows).step_by(MR) {
                    let rr = tile_rows::<MR>(r0, self.rows);
                    let a = rr.map(|r| &self.a[r * nt..(r + 1) * nt]);
                    let mut acc = rr.map(|r| [self.init.map_or(0.0, |b| b[r]); W]);
                    tile_masked(&mut acc, a, b, m);
                    for (r, row) in acc.iter().enumerate().take(self.rows - r0) {
                        let at = (r0 + r) * self.row_stride;
                        for (q, &v) in here.iter().zip(row) {
                            dst[q.out + at] = v;
                        }
                    }
                }
            }
        }
    }

    /// Split positions into `inner` (every tap reads inside the source) and `outer`.
    fn split(
        &self,
        q: Pos,
        ext: (isize, isize, isize, isize),
        inner: &mut Vec<Pos>,
        outer: &mut Vec<Pos>,
    ) {
        let (h_lo, h_hi, v_lo, v_hi) = ext;
        let inside = self.taps.is_empty()
            || (q.h0 + h_lo >= 0
                && q.h0 + h_hi < self.lim.0
                && q.v0 + v_lo >= 0
                && q.v0 + v_hi < self.lim.1);
        if inside {
            inner.push(q);
        } else {
            outer.push(q);
        }
    }
}

/// A [`Listed`] product run by a SIMD path: the inner positions without masks,
/// then the outer ones with.
struct ListedProduct<'a> {
    p: Listed<'a>,
    inner: &'a [Pos],
    outer: &'a [Pos],
    dst: &'a mut [f64],
    bufs: &'a mut Bufs,
}

impl ListedProduct<'_> {
    #[inline(always)]
    fn go<const MR: usize, const W: usize>(self) {
        self.p.run::<MR, W>(self.inner, false, self.dst, self.bufs);
        self.p.run::<MR, W>(self.outer, true, self.dst, self.bufs);
    }
}

impl Kernel for ListedProduct<'_> {
    #[inline(always)]
    fn run(self) {
        self.go::<TILE_ROWS, 8>()
    }

    #[inline(always)]
    fn run_wide(self) {
        self.go::<TILE_ROWS, 16>()
    }
}

/// The taps `(c, ki, kj)` of a convolution in row-major order, read from its input
/// (`cs` apart from one channel to the next: `h * w`, or 1 in a channels-last copy).
fn input_taps(g: &Geom, taps: &mut Vec<Tap>) {
    taps.clear();
    for c in 0..g.c {
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let (dh, dv) = ((ki * g.dilation.0) as isize, (kj * g.dilation.1) as isize);
                taps.push(Tap {
                    off: (c * g.h * g.w) as isize + dh * g.w as isize + dv,
                    dh,
                    dv,
                });
            }
        }
    }
}

/// Where output `(i, j)` of sample `n` reads the input: `(base, h0, v0)`.
#[inline(always)]
fn reads_at(g: &Geom, n: usize, i: usize, j: usize) -> (isize, isize, isize) {
    let h0 = (i * g.stride.0) as isize - g.padding.0 as isize;
    let v0 = (j * g.stride.1) as isize - g.padding.1 as isize;
    let base = (n * g.c * g.h * g.w) as isize + h0 * g.w as isize + v0;
    (base, h0, v0)
}

/// Empty `v` with room for `n` positions, or a `MemoryError`.
fn reserve(v: &mut Vec<Pos>, n: usize) -> Result<()> {
    v.clear();
    v.try_reserve(n)
        .map_err(|_| Error::Memory(format!("convolution family: cannot allocate {n} positions")))
}

/// Run the product `p` over the position rows in `s.rows`, whose lanes step
/// `vstep` in the source and `ostep` in `dst`: as a [`Rowwise`] product for few
/// rows, else as a [`Listed`] one over their positions.
#[allow(clippy::too_many_arguments)]
fn run_product(
    path: Path,
    p: Listed<'_>,
    rows: &[Row],
    vstep: usize,
    ostep: usize,
    dst: &mut [f64],
    s: &mut Scratch,
) -> Result<bool> {
    if p.rows <= TILE_ROWS {
        return Ok(path.run(Rowwise {
            a: p.a,
            rows: p.rows,
            init: p.init,
            taps: p.taps,
            lim: p.lim,
            src: p.src,
            row_stride: p.row_stride,
            pos: rows,
            vstep,
            ostep,
            dst,
            panel: &mut s.panel,
            steps: &mut s.steps,
        }));
    }
    let all = rows.iter().map(|r| r.count).sum();
    reserve(&mut s.inner, all)?;
    reserve(&mut s.outer, all)?;
    let ext = extent(p.taps);
    for r in rows {
        for l in 0..r.count {
            let q = Pos {
                base: r.base + (l * vstep) as isize,
                h0: r.h0,
                v0: r.v0 + (l * vstep) as isize,
                out: r.out + l * ostep,
            };
            p.split(q, ext, &mut s.inner, &mut s.outer);
        }
    }
    Ok(path.run(ListedProduct {
        p,
        inner: &s.inner,
        outer: &s.outer,
        dst,
        bufs: &mut s.bufs,
    }))
}

/// [`forward`] into `y`, on `path`; false when this CPU lacks it.
pub(crate) fn forward_on(
    path: Path,
    g: &Geom,
    x: &[f64],
    weight: &[f64],
    bias: Option<&[f64]>,
    y: &mut [f64],
) -> Result<bool> {
    let (oh, ow) = g.out_size().expect("conv: the caller checks the sizes");
    with_scratch(|s| {
        let mut taps = std::mem::take(&mut s.taps);
        let mut rows = std::mem::take(&mut s.rows);
        input_taps(g, &mut taps);
        rows.clear();
        for n in 0..g.n {
            for i in 0..oh {
                let (base, h0, v0) = reads_at(g, n, i, 0);
                rows.push(Row {
                    base,
                    h0,
                    v0,
                    out: n * g.o * oh * ow + i * ow,
                    count: ow,
                });
            }
        }
        let p = Listed {
            a: weight,
            rows: g.o,
            init: bias,
            taps: &taps,
            lim: (g.h as isize, g.w as isize),
            src: x,
            row_stride: oh * ow,
        };
        let ran = run_product(path, p, &rows, g.stride.1, 1, y, s);
        s.taps = taps;
        s.rows = rows;
        ran
    })
}

/// [`input_grad`] into `dx` (which holds anything), on `path`; false when this CPU lacks it.
///
/// The input positions fall into classes by their row and column modulo the
/// stride: those of one class are read through the same kernel rows `ki` and
/// columns `kj` (the others reach no output from them), so each class is one
/// product over its positions whose taps are its `(o, ki, kj)` in row-major order.
pub(crate) fn input_grad_on(
    path: Path,
    g: &Geom,
    weight: &[f64],
    gy: &[f64],
    start: Option<&[f64]>,
    dx: &mut [f64],
) -> Result<bool> {
    let (oh, ow) = g.out_size().expect("conv: the caller checks the sizes");
    let (sh, sw) = g.stride;
    let (ph, pw) = g.padding;
    let (dh, dw) = g.dilation;
    let plane = oh * ow;
    with_scratch(|s| {
        let mut taps = std::mem::take(&mut s.taps);
        let mut rows = std::mem::take(&mut s.rows);
        let mut apack = std::mem::take(&mut s.apack);
        let mut ran = Ok(true);
        'classes: for a in 0..sh.min(g.h) {
            for b in 0..sw.min(g.w) {
                // Row h (of class a) and kernel row ki meet at output row
                // i = (h + ph - ki dh) / sh when the division is exact: when
                // ki dh = ra (mod sh), ra = (a + ph) mod sh; then i = qh - di with
                // qh = (h + ph) / sh and di = (ki dh - ra) / sh >= 0.
                let (ra, rb) = ((a + ph) % sh, (b + pw) % sw);
                let kis: Vec<usize> = (0..g.kh).filter(|ki| ki * dh % sh == ra).collect();
                let kjs: Vec<usize> = (0..g.kw).filter(|kj| kj * dw % sw == rb).collect();
                taps.clear();
                apack.clear();
                let nt = g.o * kis.len() * kjs.len();
                match numel(&[g.c, nt]) {
                    Ok(size) => apack.resize(size, 0.0),
                    Err(e) => {
                        ran = Err(e);
                        break 'classes;
                    }
                }
                for o in 0..g.o {
                    for &ki in &kis {
                        for &kj in &kjs {
                            let (di, dj) = ((ki * dh - ra) / sh, (kj * dw - rb) / sw);
                            let t = taps.len();
                            for c in 0..g.c {
                                apack[c * nt + t] = weight[((o * g.c + c) * g.kh + ki) * g.kw + kj];
                            }
                            taps.push(Tap {
                                off: (o * plane) as isize - (di * ow + dj) as isize,
                                dh: -(di as isize),
                                dv: -(dj as isize),
                            });
                        }
                    }
                }
                rows.clear();
                let qv = (b + pw) / sw;
                for n in 0..g.n {
                    for h in (a..g.h).step_by(sh) {
                        let qh = (h + ph) / sh;
                        rows.push(Row {
                            base: (n * g.o * plane + qh * ow + qv) as isize,
                            h0: qh as isize,
                            v0: qv as isize,
                            out: n * g.c * g.h * g.w + h * g.w + b,
                            count: (g.w - b).div_ceil(sw),
                        });
                    }
                }
                let p = Listed {
                    a: &apack,
                    rows: g.c,
                    init: start,
                    taps: &taps,
                    lim: (oh as isize, ow as isize),
                    src: gy,
                    row_stride: g.h * g.w,
                };
                ran = run_product(path, p, &rows, 1, sw, dx, s);
                if ran != Ok(true) {
                    break 'classes;
                }
            }
        }
        s.taps = taps;
        s.rows = rows;
        s.apack = apack;
        ran
    })
}

/// The weight gradient, lanes over weight elements `k = (c, ki, kj)`: for each
/// of output channel `o`, a fold over the output positions `(n, i, j)` in
/// row-major order, the positions packed with a mask where some of their taps
/// read the padding. For inputs of few channels.
struct WeightGrad<'a> {
    g: Geom,
    x: &'a [f64],
    gy: &'a [f64],
    gw: &'a mut [f64],
    taps: &'a [Tap],
    panel: &'a mut Vec<f64>,
    mask: &'a mut Vec<u64>,
    flags: &'a mut Vec<bool>,
}

impl WeightGrad<'_> {
    #[inline(always)]
    fn go<const MR: usize, const W: usize>(self) {
        let g = &self.g;
        let (oh, ow) = g.out_size().expect("conv: the caller checks the sizes");
        let plane = oh * ow;
        let k = self.taps.len();
        if k == 0 || g.o == 0 {
            return;
        }
        let nkb = k.div_ceil(W);
        let chunk = (PANEL / (nkb * W)).clamp(8, 512);
        let lim = (g.h as isize, g.w as isize);
        let ext = extent(self.taps);
        let (panel, mask, flags) = (self.panel, self.mask, self.flags);
        for n in 0..g.n {
            for p0 in (0..plane).step_by(chunk) {
                let len = chunk.min(plane - p0);
                panel.resize(nkb * len * W, 0.0);
                mask.resize(nkb * len * W, 0);
                flags.resize(len, false);
                for (p, flag) in flags[..len].iter_mut().enumerate() {
                    let (i, j) = ((p0 + p) / ow, (p0 + p) % ow);
                    let (base, h0, v0) = reads_at(g, n, i, j);
                    let inside = h0 + ext.0 >= 0
                        && h0 + ext.1 < lim.0
                        && v0 + ext.2 >= 0
                        && v0 + ext.3 < lim.1;
                    *flag = !inside;
                    for kb in 0..nkb {
                        let at = (kb * len + p) * W;
                        let ts = &self.taps[kb * W..k.min(kb * W + W)];
                        let vals = &mut panel[at..at + W];
                        if inside {
                            for (v, tap) in vals.iter_mut().zip(ts) {
                                *v = self.x[(base + tap.off) as usize];
                            }
                            vals[ts.len()..].fill(0.0);
                            continue;
                        }
                        let on = &mut mask[at..at + W];
                        for ((v, m), tap) in vals.iter_mut().zip(on.iter_mut()).zip(ts) {
                            let (h, c) = (h0 + tap.dh, v0 + tap.dv);
                            let read = 0 <= h && h < lim.0 && 0 <= c && c < lim.1;
                            *v = if read {
                                self.x[(base + tap.off) as usize]
                            } else {
                                0.0
                            };
                            *m = if read { u64::MAX } else { 0 };
                        }
                        vals[ts.len()..].fill(0.0);
                        on[ts.len()..].fill(u64::MAX);
                    }
                }
                for kb in 0..nkb {
                    let b = &panel[kb * len * W..(kb + 1) * len * W];
                    let m = &mask[kb * len * W..(kb + 1) * len * W];
                    let width = W.min(k - kb * W);
                    for o0 in (0..g.o).step_by(MR) {
                        let rr = tile_rows::<MR>(o0, g.o);
                        let a = rr.map(|o| &self.gy[(n * g.o + o) * plane + p0..][..len]);
                        let mut acc = rr.map(|o| {
                            let mut v = [0.0; W];
                            v[..width].copy_from_slice(&self.gw[o * k + kb * W..][..width]);
                            v
                        });
                        for p in 0..len {
                            let av = a.map(|r| r[p]);
                            let bv = lanes::<W>(&b[p * W..]);
                            if flags[p] {
                                let keep = std::array::from_fn(|l| m[p * W + l] != 0);
                                add_terms(&mut acc, av, bv, Some(keep));
                            } else {
                                add_terms(&mut acc, av, bv, None);
                            }
                        }
                        for (r, row) in acc.iter().enumerate().take(g.o - o0) {
                            self.gw[(o0 + r) * k + kb * W..][..width]
                                .copy_from_slice(&row[..width]);
                        }
                    }
                }
            }
        }
    }
}

impl Kernel for WeightGrad<'_> {
    #[inline(always)]
    fn run(self) {
        self.go::<TILE_ROWS, 8>()
    }

    #[inline(always)]
    fn run_wide(self) {
        self.go::<TILE_ROWS, 16>()
    }
}

/// The weight gradient, lanes over input channels: for each `(ki, kj)` and
/// block of channels `c`, the fold over the output positions `(n, i, j)` in
/// row-major order of `gy[n, o, i, j] * x[n, c, h, v]`, over the positions whose
/// `(h, v)` falls inside the input (the others are left out for every lane at
/// once), reading `x` from a channels-last copy `xt` (N, H, W, C).
struct WeightGradC<'a> {
    g: Geom,
    xt: &'a [f64],
    gy: &'a [f64],
    gw: &'a mut [f64],
}

impl WeightGradC<'_> {
    #[inline(always)]
    fn go<const MR: usize, const W: usize>(self) {
        let g = &self.g;
        let (oh, ow) = g.out_size().expect("conv: the caller checks the sizes");
        let plane = oh * ow;
        let (sh, sw) = g.stride;
        let (ph, pw) = g.padding;
        let (dh, dw) = g.dilation;
        // Output rows per pass: about 256 positions, whose gradients stay in the cache.
        let band = (256 / ow).max(1);
        for n in 0..g.n {
            for ia in (0..oh).step_by(band) {
                let ib = oh.min(ia + band);
                for o0 in (0..g.o).step_by(MR) {
                    let rr = tile_rows::<MR>(o0, g.o);
                    let grows = rr.map(|o| &self.gy[(n * g.o + o) * plane..][..plane]);
                    for ki in 0..g.kh {
                        let offh = (ki * dh) as isize - ph as isize;
                        let (i0, i1) = span(offh, sh, g.h, oh);
                        let (i0, i1) = (i0.max(ia), i1.min(ib));
                        for kj in 0..g.kw {
                            let offw = (kj * dw) as isize - pw as isize;
                            let (j0, j1) = span(offw, sw, g.w, ow);
                            for c0 in (0..g.c).step_by(W) {
                                let width = W.min(g.c - c0);
                                let at =
                                    |o: usize, c: usize| ((o * g.c + c) * g.kh + ki) * g.kw + kj;
                                let mut acc = rr.map(|o| {
                                    let mut v = [0.0; W];
                                    for (l, a) in v[..width].iter_mut().enumerate() {
                                        *a = self.gw[at(o, c0 + l)];
                                    }
                                    v
                                });
                                for i in i0..i1 {
                                    let h = ((i * sh) as isize + offh) as usize;
                                    let xrow = &self.xt[(n * g.h + h) * g.w * g.c..];
                                    for j in j0..j1 {
                                        let v = ((j * sw) as isize + offw) as usize;
                                        let bv = lanes::<W>(&xrow[v * g.c + c0..]);
                                        let av = grows.map(|r| r[i * ow + j]);
                                        add_terms(&mut acc, av, bv, None);
                                    }
                                }
                                for (r, row) in acc.iter().enumerate().take(g.o - o0) {
                                    for (l, &v) in row[..width].iter().enumerate() {
                                        self.gw[at(o0 + r, c0 + l)] = v;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

impl Kernel for WeightGradC<'_> {
    #[inline(always)]
    fn run(self) {
        self.go::<TILE_ROWS, 8>()
    }

    #[inline(always)]
    fn run_wide(self) {
        self.go::<TILE_ROWS, 16>()
    }
}

/// Input channels from which the weight gradient runs its lanes over channels.
const CHANNEL_LANES: usize = 8;

/// [`weight_grad_into`] on `path`; false when this CPU lacks it.
pub(crate) fn weight_grad_on(
    path: Path,
    g: &Geom,
    x: &[f64],
    gy: &[f64],
    weight_grad: &mut [f64],
) -> bool {
    with_scratch(|s| {
        if g.c >= CHANNEL_LANES {
            // A channels-last copy of x, with room for a tile's lanes past the last channel.
            let (hw, c) = (g.h * g.w, g.c);
            s.panel.clear();
            s.panel.resize(g.n * hw * c + 16, 0.0);
            for n in 0..g.n {
                let xs = &x[n * c * hw..(n + 1) * c * hw];
                let xt = &mut s.panel[n * hw * c..(n + 1) * hw * c];
                for (ci, plane) in xs.chunks_exact(hw).enumerate() {
                    for (p, &v) in plane.iter().enumerate() {
                        xt[p * c + ci] = v;
                    }
                }
            }
            return path.run(WeightGradC {
                g: *g,
                xt: &s.panel,
                gy,
                gw: weight_grad,
            });
        }
        input_taps(g, &mut s.taps);
        path.run(WeightGrad {
            g: *g,
            x,
            gy,
            gw: weight_grad,
            taps: &s.taps,
            panel: &mut s.panel,
            mask: &mut s.mask,
            flags: &mut s.flags,
        })
    })
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

/// Every SIMD path against the folds of docs/NUMERICS.md written out element by element.
#[cfg(test)]
// The references spell each fold out literally, index by index.
#[allow(clippy::needless_range_loop, clippy::assign_op_pattern)]
mod paths {
    use super::*;

    /// The paths compared; a path this CPU lacks is skipped.
    fn paths() -> Vec<Path> {
        #[allow(unused_mut)]
        let mut v = vec![Path::Dispatch, Path::Portable];
        #[cfg(target_arch = "x86_64")]
        v.extend([Path::Avx2, Path::Avx512]);
        v
    }

    /// `(n, c, h, w, o, kh, kw, stride, padding, dilation)`: odd sizes, rows and lanes
    /// with tails, stride 2 and 3, dilation 2, padding, 1x1 kernels, kernels larger
    /// than the stride and rows no tap reaches; few and many channels on both sides
    /// (the per-row and the listed products, both weight gradients).
    type Case = (
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        (usize, usize),
        (usize, usize),
        (usize, usize),
    );
    const CASES: [Case; 11] = [
        (2, 3, 7, 9, 5, 3, 3, (1, 1), (1, 1), (1, 1)),
        (2, 9, 11, 10, 3, 3, 3, (2, 2), (1, 1), (1, 1)),
        (1, 4, 12, 13, 6, 3, 2, (1, 2), (2, 1), (2, 2)),
        (3, 8, 5, 6, 7, 1, 1, (1, 1), (0, 0), (1, 1)),
        (2, 2, 9, 8, 4, 5, 5, (2, 3), (2, 2), (1, 1)),
        (1, 17, 6, 37, 9, 3, 3, (1, 1), (1, 1), (1, 1)),
        (2, 1, 3, 3, 1, 3, 3, (1, 1), (0, 0), (1, 1)),
        (1, 3, 10, 5, 2, 2, 3, (3, 1), (1, 2), (1, 1)),
        (2, 20, 5, 19, 2, 3, 3, (2, 1), (1, 1), (1, 2)),
        (1, 5, 4, 33, 18, 3, 1, (1, 2), (1, 0), (1, 1)),
        (2, 32, 8, 8, 64, 3, 3, (2, 2), (1, 1), (1, 1)),
    ];

    fn geom(case: Case) -> Geom {
        let (n, c, h, w, o, kh, kw, stride, padding, dilation) = case;
        Geom {
            n,
            c,
            h,
            w,
            o,
            kh,
            kw,
            stride,
            padding,
            dilation,
        }
    }

    /// Uniform values in [-0.5, 0.5), with every `zero_every`-th a zero of either sign.
    fn values(n: usize, seed: u64, zero_every: usize) -> Vec<f64> {
        let mut s = seed;
        (0..n)
            .map(|k| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let v = ((s >> 11) as f64 / (1u64 << 53) as f64) - 0.5;
                match (zero_every, k % 7) {
                    (0, _) => v,
                    (z, 3) if k % z == 0 => -0.0,
                    (z, _) if k % z == 0 => 0.0,
                    _ => v,
                }
            })
            .collect()
    }

    /// The input position output `(i, j)` reads through `(ki, kj)`, if any.
    fn reads(g: &Geom, i: usize, j: usize, ki: usize, kj: usize) -> Option<(usize, usize)> {
        let h = (i * g.stride.0 + ki * g.dilation.0) as isize - g.padding.0 as isize;
        let v = (j * g.stride.1 + kj * g.dilation.1) as isize - g.padding.1 as isize;
        (h >= 0 && v >= 0 && h < g.h as isize && v < g.w as isize)
            .then_some((h as usize, v as usize))
    }

    fn naive_forward(g: &Geom, x: &[f64], w: &[f64], b: Option<&[f64]>) -> Vec<f64> {
        let (oh, ow) = g.out_size().unwrap();
        let mut y = vec![];
        for n in 0..g.n {
            for o in 0..g.o {
                for i in 0..oh {
                    for j in 0..ow {
                        let mut acc = b.map_or(0.0, |b| b[o]);
                        for c in 0..g.c {
                            for ki in 0..g.kh {
                                for kj in 0..g.kw {
                                    if let Some((h, v)) = reads(g, i, j, ki, kj) {
                                        acc = acc
                                            + x[((n * g.c + c) * g.h + h) * g.w + v]
                                                * w[((o * g.c + c) * g.kh + ki) * g.kw + kj];
                                    }
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

    fn naive_weight_grad(g: &Geom, x: &[f64], gy: &[f64], gw0: &[f64]) -> Vec<f64> {
        let (oh, ow) = g.out_size().unwrap();
        let mut gw = gw0.to_vec();
        for o in 0..g.o {
            for c in 0..g.c {
                for ki in 0..g.kh {
                    for kj in 0..g.kw {
                        let k = ((o * g.c + c) * g.kh + ki) * g.kw + kj;
                        let mut acc = gw[k];
                        for n in 0..g.n {
                            for i in 0..oh {
                                for j in 0..ow {
                                    if let Some((h, v)) = reads(g, i, j, ki, kj) {
                                        acc = acc
                                            + gy[((n * g.o + o) * oh + i) * ow + j]
                                                * x[((n * g.c + c) * g.h + h) * g.w + v];
                                    }
                                }
                            }
                        }
                        gw[k] = acc;
                    }
                }
            }
        }
        gw
    }

    fn naive_input_grad(g: &Geom, w: &[f64], gy: &[f64], start: Option<&[f64]>) -> Vec<f64> {
        let (oh, ow) = g.out_size().unwrap();
        let mut dx = vec![];
        for n in 0..g.n {
            for c in 0..g.c {
                for h in 0..g.h {
                    for v in 0..g.w {
                        let mut acc = start.map_or(0.0, |s| s[c]);
                        for o in 0..g.o {
                            for ki in 0..g.kh {
                                for kj in 0..g.kw {
                                    // The one (i, j), if any, that reads (h, v) through (ki, kj):
                                    // i sh + ki dh - ph = h, j sw + kj dw - pw = v.
                                    let at =
                                        |x: usize,
                                         k: usize,
                                         s: usize,
                                         p: usize,
                                         d: usize,
                                         n: usize| {
                                            let num = (x + p) as isize - (k * d) as isize;
                                            (num >= 0
                                                && (num as usize).is_multiple_of(s)
                                                && (num as usize) / s < n)
                                                .then(|| num as usize / s)
                                        };
                                    let i = at(h, ki, g.stride.0, g.padding.0, g.dilation.0, oh);
                                    let j = at(v, kj, g.stride.1, g.padding.1, g.dilation.1, ow);
                                    if let (Some(i), Some(j)) = (i, j) {
                                        debug_assert_eq!(reads(g, i, j, ki, kj), Some((h, v)));
                                        acc = acc
                                            + gy[((n * g.o + o) * oh + i) * ow + j]
                                                * w[((o * g.c + c) * g.kh + ki) * g.kw + kj];
                                    }
                                }
                            }
                        }
                        dx.push(acc);
                    }
                }
            }
        }
        dx
    }

    fn naive_bias_grad(g: &Geom, gy: &[f64], gb0: &[f64]) -> Vec<f64> {
        let (oh, ow) = g.out_size().unwrap();
        let mut gb = gb0.to_vec();
        for o in 0..g.o {
            for n in 0..g.n {
                for p in 0..oh * ow {
                    gb[o] = gb[o] + gy[(n * g.o + o) * oh * ow + p];
                }
            }
        }
        gb
    }

    /// The same bits, or both NaN (IEEE leaves a NaN's sign and payload to the hardware).
    fn same(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
    }

    /// Check every kernel on every path against the references.
    fn check(g: &Geom, x: &[f64], w: &[f64], b: &[f64], gy: &[f64], gw0: &[f64], what: &str) {
        let (oh, ow) = g.out_size().unwrap();
        let want_y = naive_forward(g, x, w, Some(b));
        let want_y0 = naive_forward(g, x, w, None);
        let want_gw = naive_weight_grad(g, x, gy, gw0);
        let want_dx = naive_input_grad(g, w, gy, None);
        let start: Vec<f64> = b.iter().take(g.c).copied().cycle().take(g.c).collect();
        let want_dxs = naive_input_grad(g, w, gy, Some(&start));
        let want_gb = naive_bias_grad(g, gy, &b[..g.o]);
        let mut gb = b[..g.o].to_vec();
        channel_sums(gy, g.n, oh * ow, &mut gb);
        assert!(same(&gb, &want_gb), "{what} {g:?}: bias gradient");
        for path in paths() {
            let mut y = vec![7.0; g.n * g.o * oh * ow];
            if !forward_on(path, g, x, w, Some(b), &mut y).unwrap() {
                continue;
            }
            assert!(same(&y, &want_y), "{what} {g:?} {path:?}: forward");
            forward_on(path, g, x, w, None, &mut y).unwrap();
            assert!(
                same(&y, &want_y0),
                "{what} {g:?} {path:?}: forward without bias"
            );
            let mut gw = gw0.to_vec();
            assert!(weight_grad_on(path, g, x, gy, &mut gw));
            assert!(
                same(&gw, &want_gw),
                "{what} {g:?} {path:?}: weight gradient"
            );
            let mut dx = vec![7.0; g.n * g.c * g.h * g.w];
            assert!(input_grad_on(path, g, w, gy, None, &mut dx).unwrap());
            assert!(same(&dx, &want_dx), "{what} {g:?} {path:?}: input gradient");
            assert!(input_grad_on(path, g, w, gy, Some(&start), &mut dx).unwrap());
            assert!(
                same(&dx, &want_dxs),
                "{what} {g:?} {path:?}: input gradient from a start"
            );
        }
    }

    #[test]
    fn every_path_follows_the_documented_folds() {
        for (k, &case) in CASES.iter().enumerate() {
            let g = geom(case);
            let (oh, ow) = g.out_size().unwrap();
            let s = 10 * k as u64;
            let x = values(g.n * g.c * g.h * g.w, s + 1, 5);
            let w = values(g.o * g.c * g.kh * g.kw, s + 2, 0);
            let b = values(g.o.max(g.c), s + 3, 0);
            let gy = values(g.n * g.o * oh * ow, s + 4, 3);
            let gw0 = values(w.len(), s + 5, 0);
            check(&g, &x, &w, &b, &gy, &gw0, "finite");
        }
    }

    /// Infinities and NaN in the weights, the input and the gradient, and zeros of
    /// both signs where the padding's terms are left out: a kernel that added
    /// `0.0 * w` for the padding would make NaN of `0 * inf` and `+0.0` of `-0.0 + 0.0`.
    #[test]
    fn every_path_leaves_out_the_padding_with_non_finite_values() {
        for (k, &case) in CASES.iter().enumerate() {
            let g = geom(case);
            let (oh, ow) = g.out_size().unwrap();
            let s = 10 * k as u64 + 5;
            let mut x = values(g.n * g.c * g.h * g.w, s + 1, 4);
            let mut w = values(g.o * g.c * g.kh * g.kw, s + 2, 0);
            let mut b = values(g.o.max(g.c), s + 3, 0);
            let mut gy = values(g.n * g.o * oh * ow, s + 4, 3);
            // The first and last weights (taps that often read the padding) are infinite, one
            // in the middle NaN; a few inputs and gradients too; every other bias is -0.0.
            w[0] = f64::INFINITY;
            let last = w.len() - 1;
            w[last] = f64::NEG_INFINITY;
            let (nw, nx, ng) = (w.len(), x.len(), gy.len());
            w[nw / 2] = f64::NAN;
            x[nx / 3] = f64::INFINITY;
            x[nx - 1] = f64::NAN;
            gy[ng / 2] = f64::NEG_INFINITY;
            for v in b.iter_mut().step_by(2) {
                *v = -0.0;
            }
            let gw0 = vec![-0.0; w.len()];
            check(&g, &x, &w, &b, &gy, &gw0, "non-finite");
            // Every value a zero of either sign and the padding's taps infinite:
            // the outputs that read only padding keep their start's sign.
            let zx: Vec<f64> = (0..x.len())
                .map(|k| if k % 2 == 0 { -0.0 } else { 0.0 })
                .collect();
            let zw: Vec<f64> = (0..w.len())
                .map(|k| if k % 3 == 0 { f64::INFINITY } else { -0.0 })
                .collect();
            let zb = vec![-0.0; b.len()];
            check(&g, &zx, &zw, &zb, &gy, &gw0, "zeros");
        }
    }
}
