//! pyfw_rs: the kernels of pyfw in Rust, bit-identical to the pure-Python reference.
//!
//! The kernel modules mirror `pyfw/*.py` file by file and use no Python types,
//! so `cargo test` exercises them without libpython. The PyO3 binding layer
//! lives in `bindings/` and is compiled only with the `python` feature (which
//! maturin turns on).
//!
//! Numerics: every kernel follows the order of floating-point operations written
//! in docs/NUMERICS.md, as `pyfw` does. There is no fused
//! multiply-add (Rust never contracts `a * b + c` on its own, and the code asks
//! for no fused operation), no reassociation, and loops are vectorised only
//! across independent outputs, never along a reduction.

pub mod activations;
pub mod conv;
pub mod conv_layers;
pub mod data;
pub mod error;
pub mod family;
pub mod fused;
pub mod generator;
pub mod grad_mode;
pub mod losses;
pub mod modules;
pub mod optim;
pub mod simd;
pub mod tensor;
pub mod training;

#[cfg(feature = "python")]
mod bindings;

pub use error::{Error, Result};
pub use generator::Generator;
pub use tensor::{Shape, Tensor};

/// Helpers shared by the kernel tests.
#[cfg(test)]
pub(crate) mod testing {
    /// L = sum of c[k] * y[k] for fixed c, so that dL/dy = c (for finite-difference checks).
    pub fn weighted_sum(y: &[f64], c: &[f64]) -> f64 {
        let mut acc = 0.0;
        for (a, b) in y.iter().zip(c) {
            acc += a * b;
        }
        acc
    }

    /// The bit patterns of `v`, for bit-for-bit comparisons.
    pub fn bits(v: &[f64]) -> Vec<u64> {
        v.iter().map(|f| f.to_bits()).collect()
    }
}
