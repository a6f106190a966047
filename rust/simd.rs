//! Run-time dispatch to the widest vector instructions the CPU offers.
//!
//! A kernel is a value that implements [`Kernel`] with `#[inline(always)]`
//! methods. [`dispatch`] runs it inside a function compiled for AVX-512 or AVX2
//! when the CPU has them, so the compiler vectorizes the same loops more widely.
//! The operations, their order and their results are the same on every path:
//! Rust never contracts `a * b + c` into a fused multiply-add, even where the
//! target has one (AVX-512 implies FMA), and nothing here asks for one. `cargo
//! test` checks every path against [`portable`] through [`on_avx2`] and
//! [`on_avx512`] (a path the CPU lacks is skipped).
//!
//! The environment variable `PYFW_SIMD` (`portable`, `avx2` or `avx512`), read
//! once, caps the path [`dispatch`] takes, to measure a narrower one on a wider
//! CPU; a path the CPU lacks is never taken, and any other value is ignored.

/// A kernel call with its arguments; its methods must be `#[inline(always)]` so
/// that they are compiled into each dispatch target.
pub trait Kernel: Sized {
    /// Do the work.
    fn run(self);

    /// Do the work on the AVX-512 path: the same results, with wider register
    /// tiles if the kernel has them.
    #[inline(always)]
    fn run_wide(self) {
        self.run()
    }
}

/// The code paths, narrowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Path {
    /// The portable build (SSE2 on x86-64).
    Portable,
    /// AVX2.
    Avx2,
    /// AVX-512F.
    Avx512,
}

impl Path {
    /// `"portable"`, `"avx2"` or `"avx512"`, as `PYFW_SIMD` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Path::Portable => "portable",
            Path::Avx2 => "avx2",
            Path::Avx512 => "avx512",
        }
    }

    /// The widest path this CPU runs.
    pub fn detected() -> Path {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Path::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Path::Avx2;
            }
        }
        Path::Portable
    }
}

/// The path [`dispatch`] takes: the widest this CPU runs, capped by `PYFW_SIMD`.
pub fn path() -> Path {
    static PATH: std::sync::OnceLock<Path> = std::sync::OnceLock::new();
    *PATH.get_or_init(|| {
        let cap = match std::env::var("PYFW_SIMD").as_deref() {
            Ok("portable") => Path::Portable,
            Ok("avx2") => Path::Avx2,
            _ => Path::Avx512,
        };
        cap.min(Path::detected())
    })
}

/// Run `k` on the path of [`path`]: with AVX-512 or AVX2 code when the CPU
/// supports it, else with the portable build.
#[inline]
pub fn dispatch<K: Kernel>(k: K) {
    #[cfg(target_arch = "x86_64")]
    match path() {
        // SAFETY: `path` names a vector path only when the CPU supports it
        // (detected at run time); the kernel itself is safe code.
        Path::Avx512 => return unsafe { avx512(k) },
        // SAFETY: as above, for AVX2.
        Path::Avx2 => return unsafe { avx2(k) },
        Path::Portable => {}
    }
    k.run()
}

/// Run `k` without dispatch (the portable build), for tests that compare the paths.
pub fn portable<K: Kernel>(k: K) {
    k.run()
}

/// Run `k` on the AVX2 path; gives `k` back when the CPU lacks AVX2.
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn on_avx2<K: Kernel>(k: K) -> Result<(), K> {
    if !std::arch::is_x86_feature_detected!("avx2") {
        return Err(k);
    }
    // SAFETY: the only precondition of a `target_feature` function is that the
    // CPU supports the feature, detected at run time just above. The kernel
    // itself is safe code.
    unsafe { avx2(k) };
    Ok(())
}

/// Run `k` on the AVX-512 path; gives `k` back when the CPU lacks AVX-512F.
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn on_avx512<K: Kernel>(k: K) -> Result<(), K> {
    if !std::arch::is_x86_feature_detected!("avx512f") {
        return Err(k);
    }
    // SAFETY: as in `on_avx2`, for AVX-512F.
    unsafe { avx512(k) };
    Ok(())
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn avx2<K: Kernel>(k: K) {
    k.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn avx512<K: Kernel>(k: K) {
    k.run_wide()
}
