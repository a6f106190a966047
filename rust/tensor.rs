//! The tensor type: a 1-D or 2-D array of float64 in one row-major buffer.
//!
//! Mirrors `pyfw/tensor.py`. A 2-D tensor of shape `(r, c)` holds `r * c`
//! values; a 1-D tensor of shape `(n,)` holds `n` values and is walked as a
//! single row. Tensors are never empty, and tensors built from user data hold
//! only finite numbers.

use std::fmt;

use crate::error::{checked_size, try_zeros, Error, Result};

/// The shape of a tensor: `(n,)` or `(rows, cols)`; never empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A 1-D tensor of `n` values.
    Vector(usize),
    /// A 2-D tensor of `rows` rows of `cols` values.
    Matrix(usize, usize),
}

impl Shape {
    /// The size of the first dimension (what `len()` gives).
    pub fn len(&self) -> usize {
        match *self {
            Shape::Vector(n) => n,
            Shape::Matrix(r, _) => r,
        }
    }

    /// Always false: shapes are never empty (kept for clippy's `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        self.numel() == 0
    }

    /// The number of storage rows: 1 for a 1-D tensor.
    pub fn rows(&self) -> usize {
        match *self {
            Shape::Vector(_) => 1,
            Shape::Matrix(r, _) => r,
        }
    }

    /// The length of a storage row.
    pub fn cols(&self) -> usize {
        match *self {
            Shape::Vector(n) => n,
            Shape::Matrix(_, c) => c,
        }
    }

    /// The number of elements (saturating, so that an impossible shape fails to allocate).
    pub fn numel(&self) -> usize {
        self.rows().saturating_mul(self.cols())
    }

    /// 1 or 2.
    pub fn ndim(&self) -> usize {
        match self {
            Shape::Vector(_) => 1,
            Shape::Matrix(..) => 2,
        }
    }
}

impl fmt::Display for Shape {
    /// As Python prints the tuple: `(2, 3)` or `(4,)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Shape::Vector(n) => write!(f, "({n},)"),
            Shape::Matrix(r, c) => write!(f, "({r}, {c})"),
        }
    }
}

/// A 1-D or 2-D float64 array.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    shape: Shape,
    data: Vec<f64>,
}

impl Tensor {
    /// Adopt `data` for `shape`; the lengths must agree and the shape must be non-empty.
    pub fn new(shape: Shape, data: Vec<f64>) -> Result<Tensor> {
        if shape.numel() == 0 {
            return Err(Error::Value(format!(
                "tensor: shape {shape} is empty; tensors need at least one element"
            )));
        }
        if data.len() != shape.numel() {
            return Err(Error::Value(format!(
                "tensor: {} values do not fill shape {shape}",
                data.len()
            )));
        }
        Ok(Tensor { shape, data })
    }

    /// Zeros of `shape`.
    pub fn zeros(shape: Shape) -> Result<Tensor> {
        let data = try_zeros(shape.numel(), "tensor")?;
        Tensor::new(shape, data)
    }

    /// The shape.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// The values in row-major order.
    pub fn data(&self) -> &[f64] {
        &self.data
    }

    /// The values in row-major order, for in-place updates.
    pub fn data_mut(&mut self) -> &mut [f64] {
        &mut self.data
    }

    /// The buffer, consuming the tensor.
    pub fn into_data(self) -> Vec<f64> {
        self.data
    }

    /// Storage row `r` (row 0 of a 1-D tensor is all of it).
    pub fn row(&self, r: usize) -> &[f64] {
        let c = self.shape.cols();
        &self.data[r * c..(r + 1) * c]
    }

    /// The nested rows, as `tolist()` gives them.
    pub fn to_rows(&self) -> Vec<Vec<f64>> {
        (0..self.shape.rows())
            .map(|r| self.row(r).to_vec())
            .collect()
    }

    /// Items of the first dimension at the already-normalised indices `idx`:
    /// rows of a 2-D tensor, values of a 1-D tensor. The shape stays 2-D or 1-D.
    pub fn select(&self, idx: &[usize]) -> Result<Tensor> {
        let n = self.shape.len();
        if idx.is_empty() {
            return Err(Error::Value(format!(
                "Tensor: index selects no rows from shape {}; empty tensors are not supported",
                self.shape
            )));
        }
        if let Some(&bad) = idx.iter().find(|&&i| i >= n) {
            return Err(Error::Index(format!(
                "Tensor: index {bad} is out of range for size {n}"
            )));
        }
        let c = self.shape.cols();
        let len = match self.shape {
            Shape::Vector(_) => idx.len(),
            Shape::Matrix(..) => checked_size(idx.len(), c, "Tensor")?,
        };
        let mut data = try_zeros(len, "Tensor")?;
        match self.shape {
            Shape::Vector(_) => {
                for (d, &i) in data.iter_mut().zip(idx) {
                    *d = self.data[i];
                }
                Tensor::new(Shape::Vector(idx.len()), data)
            }
            Shape::Matrix(..) => {
                for (row, &i) in data.chunks_exact_mut(c).zip(idx) {
                    row.copy_from_slice(&self.data[i * c..(i + 1) * c]);
                }
                Tensor::new(Shape::Matrix(idx.len(), c), data)
            }
        }
    }

    /// A copy that shares no storage, or `Error::Memory` instead of an abort.
    pub fn try_clone(&self) -> Result<Tensor> {
        let mut data = try_zeros(self.data.len(), "Tensor")?;
        data.copy_from_slice(&self.data);
        Ok(Tensor {
            shape: self.shape,
            data,
        })
    }
}

/// `i` as an index into a dimension of size `n`, Python style (negative counts from the end).
pub fn normalize_index(i: i64, n: usize) -> Result<usize> {
    let ni = n as i128;
    let ii = i as i128;
    if ii < -ni || ii >= ni {
        return Err(Error::Index(format!(
            "Tensor: index {i} is out of range for size {n}"
        )));
    }
    Ok(if ii < 0 {
        (ii + ni) as usize
    } else {
        ii as usize
    })
}

/// `repr(v)` as Python writes it: the shortest digits that round-trip, in
/// positional notation for exponents from -4 to 15 and as `d.ddde±XX` otherwise.
pub fn py_float_repr(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    // Rust's `{:e}` gives the same shortest round-trip digits: "-1.2345e-7".
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        let n = digits.len() as i32;
        let body = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point >= n {
            format!("{digits}{}.0", "0".repeat((point - n) as usize))
        } else {
            let (int, frac) = digits.split_at(point as usize);
            format!("{int}.{frac}")
        };
        return format!("{sign}{body}");
    }
    let (first, rest) = digits.split_at(1);
    let frac = if rest.is_empty() {
        String::new()
    } else {
        format!(".{rest}")
    };
    let esign = if exp < 0 { '-' } else { '+' };
    format!("{sign}{first}{frac}e{esign}{:02}", exp.abs())
}

#[cfg(test)]
// The references spell each fold out literally, index by index.
#[allow(clippy::needless_range_loop, clippy::assign_op_pattern)]
mod tests {
    use super::*;

    #[test]
    fn shapes_print_like_python_tuples() {
        assert_eq!(Shape::Matrix(2, 3).to_string(), "(2, 3)");
        assert_eq!(Shape::Vector(4).to_string(), "(4,)");
        assert_eq!(Shape::Matrix(2, 3).numel(), 6);
        assert_eq!(Shape::Vector(4).rows(), 1);
    }

    #[test]
    fn new_checks_the_length_and_emptiness() {
        let t = Tensor::new(Shape::Matrix(2, 2), vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(t.to_rows(), vec![vec![1.0, 2.0], vec![3.0, 4.0]]);
        assert!(matches!(
            Tensor::new(Shape::Vector(2), vec![1.0]),
            Err(Error::Value(_))
        ));
        assert!(matches!(
            Tensor::new(Shape::Matrix(0, 2), vec![]),
            Err(Error::Value(_))
        ));
    }

    #[test]
    fn select_gathers_rows_and_values() {
        let t = Tensor::new(Shape::Matrix(3, 2), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let s = t.select(&[2, 0, 2]).unwrap();
        assert_eq!(
            s.to_rows(),
            vec![vec![5.0, 6.0], vec![1.0, 2.0], vec![5.0, 6.0]]
        );
        let v = Tensor::new(Shape::Vector(3), vec![1.0, 2.0, 3.0]).unwrap();
        assert_eq!(v.select(&[1]).unwrap().data(), &[2.0]);
        assert_eq!(v.try_clone().unwrap(), v);
        assert_eq!(Shape::Matrix(usize::MAX, 2).numel(), usize::MAX);
        assert!(matches!(
            Tensor::zeros(Shape::Matrix(usize::MAX, 2)),
            Err(Error::Memory(_))
        ));
        assert!(matches!(t.select(&[]), Err(Error::Value(_))));
        assert!(matches!(t.select(&[3]), Err(Error::Index(_))));
    }

    #[test]
    fn floats_print_as_python_repr() {
        let cases = [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e-5, "1e-05"),
            (1e-4, "0.0001"),
            (0.00012345, "0.00012345"),
            (1.5e-7, "1.5e-07"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789012345.6, "123456789012345.6"),
            (1.2345e22, "1.2345e+22"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (f64::NAN, "nan"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for (v, want) in cases {
            assert_eq!(py_float_repr(v), want, "{v:e}");
        }
    }

    #[test]
    fn python_style_indices() {
        assert_eq!(normalize_index(-1, 3).unwrap(), 2);
        assert_eq!(normalize_index(0, 3).unwrap(), 0);
        assert!(matches!(normalize_index(3, 3), Err(Error::Index(_))));
        assert!(matches!(normalize_index(-4, 3), Err(Error::Index(_))));
        assert!(matches!(normalize_index(i64::MIN, 3), Err(Error::Index(_))));
    }
}
