//! The error type of the kernels, and the argument and shape checks that every
//! family shares (mirrors `pyfw/error.py`). Each variant maps to one Python exception
//! type in the binding layer, the same type that `pyfw` raises for the same input.

use std::fmt;

use crate::tensor::Shape;

/// A kernel error; the message names the module and the shapes, as in `pyfw`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Python `TypeError`: a value of the wrong kind.
    Type(String),
    /// Python `ValueError`: a wrong shape, a ragged list, a non-finite number.
    Value(String),
    /// Python `RuntimeError`: e.g. `backward` before `forward`.
    Runtime(String),
    /// Python `IndexError`: an index out of range.
    Index(String),
    /// Python `MemoryError`: a size too large to allocate.
    Memory(String),
}

/// The result type of the kernels.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The message, without the kind.
    pub fn message(&self) -> &str {
        match self {
            Error::Type(m)
            | Error::Value(m)
            | Error::Runtime(m)
            | Error::Index(m)
            | Error::Memory(m) => m,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Error::Type(_) => "TypeError",
            Error::Value(_) => "ValueError",
            Error::Runtime(_) => "RuntimeError",
            Error::Index(_) => "IndexError",
            Error::Memory(_) => "MemoryError",
        };
        write!(f, "{kind}: {}", self.message())
    }
}

impl std::error::Error for Error {}

/// A vector of `n` zeros, or `Error::Memory` instead of an abort when `n` is too large.
pub fn try_zeros(n: usize, who: &str) -> Result<Vec<f64>> {
    let mut v: Vec<f64> = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| Error::Memory(format!("{who}: cannot allocate {n} elements")))?;
    v.resize(n, 0.0);
    Ok(v)
}

/// The most buffers [`recycle`] keeps per thread, and the largest it keeps (in
/// elements, 256 KiB): a training loop's layers hand buffers of a few sizes
/// back and forth, and anything larger costs more to fill than to allocate.
const POOL_BUFFERS: usize = 8;
const POOL_LARGEST: usize = 1 << 15;

thread_local! {
    /// Buffers handed back by [`recycle`], for [`pooled_zeros`] on the same thread.
    static POOL: std::cell::RefCell<Vec<Vec<f64>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// As [`try_zeros`], reusing a buffer that [`recycle`] handed back on this thread
/// when there is one (one large enough if any): the layers of a hand-written
/// training loop then allocate nothing per step.
pub fn pooled_zeros(n: usize, who: &str) -> Result<Vec<f64>> {
    let reused = POOL
        .try_with(|p| {
            let mut p = p.try_borrow_mut().ok()?;
            let i = match p.iter().position(|b| b.capacity() >= n) {
                Some(i) => i,
                None => p.len().checked_sub(1)?,
            };
            Some(p.swap_remove(i))
        })
        .ok()
        .flatten();
    let Some(mut v) = reused else {
        return try_zeros(n, who);
    };
    v.clear();
    v.try_reserve_exact(n)
        .map_err(|_| Error::Memory(format!("{who}: cannot allocate {n} elements")))?;
    v.resize(n, 0.0);
    Ok(v)
}

/// Hand `v`, no longer needed, back for a later [`pooled_zeros`] on this thread;
/// it is dropped instead when the pool is full or `v` is large.
pub fn recycle(v: Vec<f64>) {
    if v.capacity() == 0 || v.capacity() > POOL_LARGEST {
        return;
    }
    let mut v = Some(v);
    let _ = POOL.try_with(|p| {
        if let Ok(mut p) = p.try_borrow_mut() {
            if p.len() < POOL_BUFFERS {
                p.extend(v.take());
            }
        }
    });
}

/// Make `dst` a copy of `src`, reusing its allocation; `Error::Memory` instead of an abort.
pub fn copy_into(dst: &mut Vec<f64>, src: &[f64], who: &str) -> Result<()> {
    dst.clear();
    dst.try_reserve(src.len())
        .map_err(|_| Error::Memory(format!("{who}: cannot allocate {} elements", src.len())))?;
    dst.extend_from_slice(src);
    Ok(())
}

/// `a * b`, or `Error::Memory` when the product overflows `usize`.
pub fn checked_size(a: usize, b: usize, who: &str) -> Result<usize> {
    a.checked_mul(b)
        .ok_or_else(|| Error::Memory(format!("{who}: size {a} x {b} is too large")))
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

/// The thread that called `forward`: `backward` must run in the same one.
///
/// A model shared by threads keeps one saved input per module; a forward in
/// another thread replaces it, and `backward` would then compute with the wrong
/// input. `check` turns that into a `RuntimeError` instead of a wrong number.
/// It also records whether that `forward` ran under `no_grad`, for the error of a
/// `backward` that finds nothing kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Owner {
    thread: Option<std::thread::ThreadId>,
    no_grad: bool,
}

thread_local! {
    /// The calling thread's id, read once: `std::thread::current()` takes a reference
    /// to the thread's handle, and `Owner` asks at every layer of every step.
    static THREAD: std::thread::ThreadId = std::thread::current().id();
}

/// The calling thread's id.
fn this_thread() -> std::thread::ThreadId {
    THREAD.with(|t| *t)
}

impl Owner {
    /// Record the calling thread (when a training loop keeps what `forward` would keep).
    pub fn set(&mut self) {
        self.thread = Some(this_thread());
        self.no_grad = false;
    }

    /// Record a `forward` in the calling thread and its grad mode (one thread-local
    /// read); returns whether that `forward` keeps what `backward` needs.
    pub fn forward(&mut self) -> bool {
        let keep = crate::grad_mode::is_enabled();
        self.thread = Some(this_thread());
        self.no_grad = !keep;
        keep
    }

    /// The error of a `backward` that finds nothing kept: before any `forward`, or
    /// after one under `no_grad`.
    pub fn not_forwarded(&self, who: &str) -> Error {
        if self.no_grad {
            forwarded_without_grad(who)
        } else {
            not_forwarded(who)
        }
    }

    /// `RuntimeError` unless the calling thread is the one recorded (at `backward`).
    pub fn check(&self, who: &str) -> Result<()> {
        match self.thread {
            Some(t) if t != this_thread() => Err(Error::Runtime(format!(
                "{who}: backward in another thread than the last forward, whose input it would use; \
                 give each thread its own model"
            ))),
            _ => Ok(()),
        }
    }
}

/// The `RuntimeError` of `backward` before `forward`.
pub fn not_forwarded(who: &str) -> Error {
    Error::Runtime(format!("{who}: backward called before forward"))
}

/// The `RuntimeError` of `backward` after a `forward` under `no_grad`.
pub fn forwarded_without_grad(who: &str) -> Error {
    Error::Runtime(format!(
        "{who}: backward after a forward under no_grad, which keeps nothing for backward; \
         run the forward with grad enabled"
    ))
}

/// A finite real argument, or the `ValueError` of `pyfw.error.check_real`.
pub fn check_real(v: f64, who: &str, what: &str) -> Result<f64> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(Error::Value(format!(
            "{who}: {what} must be finite, got {}",
            crate::tensor::py_float_repr(v)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recycled_buffer_comes_back_zeroed_on_its_own_thread_only() {
        let v = vec![1.0; 300];
        let at = v.as_ptr();
        recycle(v);
        let w = pooled_zeros(250, "t").unwrap();
        assert_eq!(w.as_ptr(), at, "the recycled allocation is reused");
        assert_eq!(w, vec![0.0; 250]);
        recycle(w);
        let elsewhere = std::thread::spawn(|| {
            let v = pooled_zeros(250, "t").unwrap();
            v.as_ptr() as usize
        });
        assert_ne!(elsewhere.join().unwrap(), at as usize);
        // A buffer too small grows; one too large is never kept.
        let grown = pooled_zeros(400, "t").unwrap();
        assert_eq!(grown, vec![0.0; 400]);
        recycle(vec![0.0; POOL_LARGEST + 1]);
        assert!(POOL.with(|p| p.borrow().iter().all(|b| b.capacity() <= POOL_LARGEST)));
        assert!(matches!(
            pooled_zeros(usize::MAX, "t"),
            Err(Error::Memory(_))
        ));
    }
}
