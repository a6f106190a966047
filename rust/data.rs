//! Data sets, mirroring `pyfw/data.py`: the disk task and one-hot encoding.

use crate::error::{checked_size, try_zeros, Error, Result};
use crate::generator::Generator;
use crate::tensor::{Shape, Tensor};

/// The squared radius of the disk: `1 / (2 pi)`, so that it covers half of the unit square.
pub const DISK_RADIUS2: f64 = 1.0 / (2.0 * std::f64::consts::PI);

/// `n` points uniform in [0, 1]^2 (`x = random()`, then `y = random()`, point by point),
/// labelled 1 when `(x - 0.5)*(x - 0.5) + (y - 0.5)*(y - 0.5) < 1 / (2 pi)`, else 0.
pub fn disk(n: usize, g: &mut Generator) -> Result<(Tensor, Vec<u8>)> {
    if n == 0 {
        return Err(Error::Value("data.disk: n must be positive, got 0".into()));
    }
    let too_large = || Error::Memory(format!("data.disk: n = {n} is too large to hold in memory"));
    let mut rows = checked_size(n, 2, "data.disk")
        .and_then(|size| try_zeros(size, "data.disk"))
        .map_err(|_| too_large())?;
    let mut labels = Vec::new();
    labels.try_reserve_exact(n).map_err(|_| too_large())?;
    for p in rows.chunks_exact_mut(2) {
        let x = g.random();
        let y = g.random();
        let (dx, dy) = (x - 0.5, y - 0.5);
        p[0] = x;
        p[1] = y;
        labels.push(u8::from(dx * dx + dy * dy < DISK_RADIUS2));
    }
    Ok((Tensor::new(Shape::Matrix(n, 2), rows)?, labels))
}

/// The `MemoryError` of an (n, k) one-hot tensor that cannot be allocated.
pub fn one_hot_too_large(n: usize, k: &str) -> Error {
    Error::Memory(format!(
        "data.one_hot: {n} labels x {k} classes do not fit in memory"
    ))
}

/// An (n, k) tensor with 1.0 at each label's column; `num_classes = -1` means `max + 1`.
/// Checked in `pyfw.data.one_hot`'s order: empty, negative labels, `num_classes`, each
/// label's range, then the size.
pub fn one_hot(labels: &[i64], num_classes: i64) -> Result<Tensor> {
    if labels.is_empty() {
        return Err(Error::Value("data.one_hot: labels is empty".into()));
    }
    if let Some((i, v)) = labels.iter().enumerate().find(|(_, &v)| v < 0) {
        return Err(Error::Value(format!(
            "data.one_hot: labels[{i}] = {v} is negative"
        )));
    }
    let k = if num_classes == -1 {
        labels.iter().copied().max().unwrap_or(0).saturating_add(1)
    } else {
        num_classes
    };
    if k <= 0 {
        return Err(Error::Value(format!(
            "data.one_hot: num_classes must be positive, got {num_classes}"
        )));
    }
    for (i, &v) in labels.iter().enumerate() {
        if v >= k {
            return Err(Error::Value(format!(
                "data.one_hot: labels[{i}] = {v} is outside [0, {k})"
            )));
        }
    }
    let n = labels.len();
    let too_large = || one_hot_too_large(n, &k.to_string());
    let k = usize::try_from(k).map_err(|_| too_large())?;
    let mut rows = checked_size(n, k, "data.one_hot")
        .and_then(|size| try_zeros(size, "data.one_hot"))
        .map_err(|_| too_large())?;
    for (row, &v) in rows.chunks_exact_mut(k).zip(labels) {
        row[v as usize] = 1.0;
    }
    Tensor::new(Shape::Matrix(n, k), rows)
}

#[cfg(test)]
// The references spell each fold out literally, index by index.
#[allow(clippy::needless_range_loop, clippy::assign_op_pattern)]
mod tests {
    use super::*;

    #[test]
    fn disk_draws_x_then_y_and_labels_by_the_formula() {
        let mut g = Generator::new(0);
        let (x, y) = disk(500, &mut g).unwrap();
        let mut h = Generator::new(0);
        let mut inside = 0;
        for n in 0..500 {
            let (a, b) = (h.random(), h.random());
            assert_eq!(x.row(n), &[a, b]);
            let lab = u8::from((a - 0.5) * (a - 0.5) + (b - 0.5) * (b - 0.5) < DISK_RADIUS2);
            assert_eq!(y[n], lab);
            inside += y[n] as usize;
        }
        assert!((200..300).contains(&inside));
        assert!(matches!(disk(0, &mut g), Err(Error::Value(_))));
    }

    #[test]
    fn one_hot_encodes_and_checks() {
        let t = one_hot(&[1, 0, 2], -1).unwrap();
        assert_eq!(
            t.to_rows(),
            vec![
                vec![0.0, 1.0, 0.0],
                vec![1.0, 0.0, 0.0],
                vec![0.0, 0.0, 1.0]
            ]
        );
        assert_eq!(one_hot(&[1], 4).unwrap().shape(), Shape::Matrix(1, 4));
        assert!(matches!(one_hot(&[], 2), Err(Error::Value(_))));
        assert!(matches!(one_hot(&[2], 2), Err(Error::Value(_))));
        assert!(matches!(one_hot(&[-1], 2), Err(Error::Value(_))));
        assert!(matches!(one_hot(&[0], 0), Err(Error::Value(_))));
        assert!(matches!(one_hot(&[0], -5), Err(Error::Value(_))));
        assert!(matches!(
            one_hot(&[i64::MAX - 1], -1),
            Err(Error::Memory(_))
        ));
        assert_eq!(
            one_hot(&[0, -3], 2).unwrap_err().message(),
            "data.one_hot: labels[1] = -3 is negative"
        );
        assert_eq!(
            one_hot(&[0, 1], 1 << 62).unwrap_err(),
            Error::Memory(format!(
                "data.one_hot: 2 labels x {} classes do not fit in memory",
                1u64 << 62
            ))
        );
        assert_eq!(
            disk(usize::MAX, &mut Generator::new(0)).unwrap_err(),
            Error::Memory(format!(
                "data.disk: n = {} is too large to hold in memory",
                usize::MAX
            ))
        );
    }
}
