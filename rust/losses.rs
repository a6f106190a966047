//! Loss functions, mirroring `pyfw/losses.py`.
//!
//! MSE over all `N` elements with `d = input - target` in row-major order:
//!
//! ```text
//! L     = (...((d[0]*d[0] + d[1]*d[1]) + d[2]*d[2]) + ...) / N
//! dL/dx = (2.0 * d) / N        for each element
//! ```

use crate::error::{Error, Result};
use crate::tensor::{Shape, Tensor};

/// The `ValueError` of mismatched shapes.
pub fn check_mse_shapes(input: Shape, target: Shape) -> Result<()> {
    if input != target {
        return Err(Error::Value(format!(
            "MSELoss: input shape {input} and target shape {target} differ"
        )));
    }
    Ok(())
}

/// Write `d = x - t` into `diff` (resized) and return the mean of `d * d` (left fold from `d[0]*d[0]`).
pub fn mse_forward(x: &[f64], t: &[f64], diff: &mut Vec<f64>) -> f64 {
    diff.clear();
    diff.extend(x.iter().zip(t).map(|(a, b)| a - b));
    let mut sq = diff.iter().map(|d| d * d);
    let first = sq.next().unwrap_or(0.0);
    let total = sq.fold(first, |acc, v| acc + v);
    total / diff.len() as f64
}

/// `(2.0 * d) / N` for each element of `diff`.
pub fn mse_backward(diff: &[f64], dx: &mut [f64]) {
    let n = diff.len() as f64;
    for (o, &d) in dx.iter_mut().zip(diff) {
        *o = 2.0 * d / n;
    }
}

/// Mean squared error that keeps `input - target` for `backward`.
#[derive(Clone, Debug, Default)]
pub struct MSELoss {
    diff: Vec<f64>,
    shape: Option<Shape>,
}

impl MSELoss {
    /// A fresh loss.
    pub fn new() -> MSELoss {
        MSELoss::default()
    }

    /// The mean of `(input - target)**2`.
    pub fn forward(&mut self, input: &Tensor, target: &Tensor) -> Result<f64> {
        check_mse_shapes(input.shape(), target.shape())?;
        self.shape = Some(input.shape());
        Ok(mse_forward(input.data(), target.data(), &mut self.diff))
    }

    /// `2 (input - target) / N`.
    pub fn backward(&self) -> Result<Tensor> {
        let shape = self
            .shape
            .ok_or_else(|| Error::Runtime("MSELoss: backward called before forward".into()))?;
        let mut dx = vec![0.0; self.diff.len()];
        mse_backward(&self.diff, &mut dx);
        Tensor::new(shape, dx)
    }
}

#[cfg(test)]
// The references spell each fold out literally, index by index.
#[allow(clippy::needless_range_loop, clippy::assign_op_pattern)]
mod tests {
    use super::*;

    #[test]
    fn value_is_the_left_fold_over_n() {
        let x = Tensor::from_rows(&[vec![0.1, 0.7], vec![0.3, -0.2]]).unwrap();
        let t = Tensor::from_rows(&[vec![0.0, 1.0], vec![1.0, 0.0]]).unwrap();
        let mut l = MSELoss::new();
        let v = l.forward(&x, &t).unwrap();
        let d: [f64; 4] = [0.1 - 0.0, 0.7 - 1.0, 0.3 - 1.0, -0.2 - 0.0];
        let expect = (((d[0] * d[0] + d[1] * d[1]) + d[2] * d[2]) + d[3] * d[3]) / 4.0;
        assert_eq!(v.to_bits(), expect.to_bits());
        let g = l.backward().unwrap();
        for (gv, dv) in g.data().iter().zip(d) {
            assert_eq!(gv.to_bits(), (2.0 * dv / 4.0).to_bits());
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let x = Tensor::from_vec(vec![0.3, -1.2, 2.5]).unwrap();
        let t = Tensor::from_vec(vec![1.0, 0.0, 2.0]).unwrap();
        let mut l = MSELoss::new();
        l.forward(&x, &t).unwrap();
        let g = l.backward().unwrap();
        let h = 1e-6;
        for k in 0..3 {
            let mut xp = x.clone();
            xp.data_mut()[k] += h;
            let mut xm = x.clone();
            xm.data_mut()[k] -= h;
            let fd = (l.clone().forward(&xp, &t).unwrap() - l.clone().forward(&xm, &t).unwrap())
                / (2.0 * h);
            assert!((fd - g.data()[k]).abs() < 1e-6);
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        let l = MSELoss::new();
        assert!(matches!(l.backward(), Err(Error::Runtime(_))));
        let x = Tensor::from_vec(vec![0.3, -1.2]).unwrap();
        let t = Tensor::from_rows(&[vec![0.3, -1.2]]).unwrap();
        let e = MSELoss::new().forward(&x, &t).unwrap_err();
        assert_eq!(
            e,
            Error::Value("MSELoss: input shape (2,) and target shape (1, 2) differ".into())
        );
    }
}
