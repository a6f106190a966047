//! Grad mode, mirroring `pyfw/grad_mode.py`: whether a layer's `forward` keeps what
//! its `backward` needs. It is per thread, as in torch: every thread starts with it
//! enabled. The layer states read it once per `forward` (through [`Owner`]); under
//! `no_grad` they compute the same output, keep nothing, and drop what an earlier
//! `forward` kept.
//!
//! [`Owner`]: crate::error::Owner

use std::cell::Cell;

thread_local! {
    static ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Whether a `forward` in the calling thread keeps what `backward` needs.
pub fn is_enabled() -> bool {
    ENABLED.with(Cell::get)
}

/// Set the calling thread's grad mode; returns the mode it had.
pub fn set_enabled(mode: bool) -> bool {
    ENABLED.with(|e| e.replace(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mode_is_per_thread() {
        assert!(is_enabled());
        assert!(set_enabled(false));
        assert!(!is_enabled());
        assert!(std::thread::spawn(is_enabled).join().unwrap());
        assert!(!set_enabled(true));
        assert!(is_enabled());
    }
}
