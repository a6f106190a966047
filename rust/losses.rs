//! Loss functions, mirroring `pyfw/losses.py`.
//!
//! MSE over all `N` elements: `L = (1/N) sum (x - t)^2`, `dL/dx = 2 (x - t) / N`
//! (docs/NUMERICS.md, "MSELoss").

use crate::error::{Error, Result};
use crate::tensor::Shape;

/// The `ValueError` of mismatched shapes.
pub fn check_mse_shapes(input: Shape, target: Shape) -> Result<()> {
    if input != target {
        return Err(Error::Value(format!(
            "MSELoss: input shape {input} and target shape {target} differ"
        )));
    }
    Ok(())
}

/// Write `d = x - t` into `diff` (resized) and return the mean of `d * d`.
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

#[cfg(test)]
// The references spell each fold out literally, index by index.
#[allow(clippy::needless_range_loop, clippy::assign_op_pattern)]
mod tests {
    use super::*;

    #[test]
    fn value_is_the_left_fold_over_n() {
        let (x, t) = ([0.1, 0.7, 0.3, -0.2], [0.0, 1.0, 1.0, 0.0]);
        let mut diff = Vec::new();
        let v = mse_forward(&x, &t, &mut diff);
        let d: [f64; 4] = [0.1 - 0.0, 0.7 - 1.0, 0.3 - 1.0, -0.2 - 0.0];
        let expect = (((d[0] * d[0] + d[1] * d[1]) + d[2] * d[2]) + d[3] * d[3]) / 4.0;
        assert_eq!(v.to_bits(), expect.to_bits());
        let mut g = [0.0; 4];
        mse_backward(&diff, &mut g);
        for (gv, dv) in g.iter().zip(d) {
            assert_eq!(gv.to_bits(), (2.0 * dv / 4.0).to_bits());
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let (x, t) = ([0.3, -1.2, 2.5], [1.0, 0.0, 2.0]);
        let mut diff = Vec::new();
        mse_forward(&x, &t, &mut diff);
        let mut g = [0.0; 3];
        mse_backward(&diff, &mut g);
        let h = 1e-6;
        for k in 0..3 {
            let at = |step: f64| {
                let mut xs = x;
                xs[k] += step;
                mse_forward(&xs, &t, &mut Vec::new())
            };
            let fd = (at(h) - at(-h)) / (2.0 * h);
            assert!((fd - g[k]).abs() < 1e-6);
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        let e = check_mse_shapes(Shape::Vector(2), Shape::Matrix(1, 2)).unwrap_err();
        assert_eq!(
            e,
            Error::Value("MSELoss: input shape (2,) and target shape (1, 2) differ".into())
        );
    }
}
