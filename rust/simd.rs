//! Run-time dispatch to the widest vector instructions the CPU offers.
//!
//! A kernel is a value that implements [`Kernel`] with an `#[inline(always)]`
//! `run`. [`dispatch`] runs it inside a function compiled for AVX2 when the CPU
//! has it, so the compiler vectorizes the same loops more widely. The
//! operations, their order and their results are the same on every path (no
//! FMA is enabled), which `cargo test` checks against [`portable`].

/// A kernel call with its arguments; `run` must be `#[inline(always)]` so that
/// it is compiled into each dispatch target.
pub trait Kernel {
    /// Do the work.
    fn run(self);
}

/// Run `k` with AVX2 code when the CPU supports it, else with the portable build.
#[inline]
pub fn dispatch<K: Kernel>(k: K) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the only precondition of a `target_feature(enable = "avx2")`
        // function is that the CPU supports AVX2, which was detected at run time
        // just above. The kernel itself is safe code.
        unsafe { avx2(k) };
        return;
    }
    k.run()
}

/// Run `k` without dispatch (the portable build), for tests that compare both paths.
pub fn portable<K: Kernel>(k: K) {
    k.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn avx2<K: Kernel>(k: K) {
    k.run()
}
