//! Optimizers, mirroring `pyfw/optim.py`: SGD, `p = p - (lr * g)` for every element.

use crate::error::{Error, Result};

/// Check a learning rate: finite and non-negative.
pub fn check_lr(lr: f64, who: &str) -> Result<f64> {
    if !lr.is_finite() || lr < 0.0 {
        return Err(Error::Value(format!(
            "{who}: lr must be finite and non-negative, got {}",
            crate::tensor::py_float_repr(lr)
        )));
    }
    Ok(lr)
}

/// `p = p - (lr * g)` element by element.
pub fn sgd_step(p: &mut [f64], g: &[f64], lr: f64) {
    for (pv, &gv) in p.iter_mut().zip(g) {
        *pv -= lr * gv;
    }
}

/// `p = p - (lr * p)`: the step for a pair whose gradient is the parameter itself.
pub fn sgd_step_self(p: &mut [f64], lr: f64) {
    for pv in p.iter_mut() {
        *pv -= lr * *pv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_is_p_minus_lr_times_g() {
        let before = [1.0, -0.5, 0.25];
        let g = [0.3, 0.1, -0.7];
        let mut p = before;
        sgd_step(&mut p, &g, 0.1);
        for k in 0..3 {
            assert_eq!(p[k].to_bits(), (before[k] - 0.1 * g[k]).to_bits());
        }
        let mut q = before;
        sgd_step_self(&mut q, 0.5);
        assert_eq!(q[0], 1.0 - 0.5 * 1.0);
    }

    #[test]
    fn bad_lr_is_an_error() {
        assert!(matches!(check_lr(-1.0, "SGD"), Err(Error::Value(_))));
        assert!(matches!(check_lr(f64::NAN, "SGD"), Err(Error::Value(_))));
    }
}
