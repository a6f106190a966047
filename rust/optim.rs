//! Optimizers, mirroring `pyfw/optim.py`: SGD, `p = p - (lr * g)` for every element.

use crate::error::{Error, Result};
use crate::tensor::Tensor;

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

/// Plain stochastic gradient descent over owned `(parameter, gradient)` pairs.
#[derive(Clone, Debug)]
pub struct SGD {
    /// The learning rate.
    pub lr: f64,
}

impl SGD {
    /// SGD with learning rate `lr` (checked).
    pub fn new(lr: f64) -> Result<SGD> {
        Ok(SGD {
            lr: check_lr(lr, "SGD")?,
        })
    }

    /// Update `p` in place from `g`; the shapes must agree.
    pub fn step(&self, p: &mut Tensor, g: &Tensor) -> Result<()> {
        if p.shape() != g.shape() {
            return Err(Error::Value(format!(
                "SGD: parameter shape {} and gradient shape {} differ",
                p.shape(),
                g.shape()
            )));
        }
        sgd_step(p.data_mut(), g.data(), self.lr);
        Ok(())
    }
}

#[cfg(test)]
// The references spell each fold out literally, index by index.
#[allow(clippy::needless_range_loop, clippy::assign_op_pattern)]
mod tests {
    use super::*;

    #[test]
    fn step_is_p_minus_lr_times_g() {
        let mut p = Tensor::from_vec(vec![1.0, -0.5, 0.25]).unwrap();
        let g = Tensor::from_vec(vec![0.3, 0.1, -0.7]).unwrap();
        let before = p.clone();
        SGD::new(0.1).unwrap().step(&mut p, &g).unwrap();
        for k in 0..3 {
            assert_eq!(
                p.data()[k].to_bits(),
                (before.data()[k] - 0.1 * g.data()[k]).to_bits()
            );
        }
        let mut q = before.data().to_vec();
        sgd_step_self(&mut q, 0.5);
        assert_eq!(q[0], 1.0 - 0.5 * 1.0);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(matches!(SGD::new(-1.0), Err(Error::Value(_))));
        assert!(matches!(SGD::new(f64::NAN), Err(Error::Value(_))));
        let mut p = Tensor::from_vec(vec![1.0]).unwrap();
        let g = Tensor::from_vec(vec![1.0, 2.0]).unwrap();
        assert!(matches!(
            SGD::new(0.1).unwrap().step(&mut p, &g),
            Err(Error::Value(_))
        ));
    }
}
