//! Binding of the convolution family's kernels (`rust/conv.rs`).
//!
//! The classes (`Conv1d`, `Conv2d`) are written once, in `pyfw/conv.py`, and
//! bound to the native `Module` in `python/pyfw_rs/conv.py`; they call these two
//! functions with `pyfw_rs` tensors, as `pyfw`'s classes call its Python loops.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::tensor::PyTensor;
use super::{Borrow, IntoPyResult};
use crate::conv::{backward, forward, Geom};
use crate::tensor::Shape;

type Pair = (usize, usize);

/// `(O, C, kH, kW)` of a weight (O, C, kH, kW), or (O, C, kW) for a kernel of height 1.
fn kernel_dims(ws: Shape) -> Option<(usize, usize, usize, usize)> {
    match *ws.dims() {
        [o, c, kh, kw] => Some((o, c, kh, kw)),
        [o, c, kw] => Some((o, c, 1, kw)),
        _ => None,
    }
}

/// The geometry of `x` (N, C, H, W) and `weight` (O, C, kH, kW), checked.
fn geom(
    who: &str,
    xs: Shape,
    ws: Shape,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
) -> PyResult<Geom> {
    let (&[n, c, h, w], Some((o, wc, kh, kw))) = (xs.dims(), kernel_dims(ws)) else {
        return Err(PyValueError::new_err(format!(
            "{who}: expected a 4-D input and a 3-D or 4-D weight, got shapes {xs} and {ws}"
        )));
    };
    let g = Geom {
        n,
        c,
        h,
        w,
        o,
        kh,
        kw,
        stride,
        padding,
        dilation,
    };
    if wc != c || g.out_size().is_none() {
        return Err(PyValueError::new_err(format!(
            "{who}: input of shape {xs} does not fit the weight of shape {ws} \
             (stride {stride:?}, padding {padding:?}, dilation {dilation:?})"
        )));
    }
    Ok(g)
}

/// The convolution of `x` (N, C, H, W) by `weight` (O, C, kH, kW) or (O, C, kW), plus `bias` (O,) if
/// given: a new tensor (N, O, oH, oW) (docs/NUMERICS.md, "Conv2d").
#[pyfunction]
#[pyo3(signature = (who, x, weight, bias, stride, padding, dilation))]
fn _conv2d_forward(
    who: &str,
    x: &Bound<'_, PyTensor>,
    weight: &Bound<'_, PyTensor>,
    bias: Option<&Bound<'_, PyTensor>>,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
) -> PyResult<PyTensor> {
    let (x, w) = (x.busy_ref()?, weight.busy_ref()?);
    let g = geom(who, x.t.shape(), w.t.shape(), stride, padding, dilation)?;
    let b = bias.map(|b| b.busy_ref()).transpose()?;
    if let Some(b) = &b {
        if b.t.shape() != Shape::Vector(g.o) {
            return Err(PyValueError::new_err(format!(
                "{who}: bias of shape {} for {} output channels",
                b.t.shape(),
                g.o
            )));
        }
    }
    let (oh, ow) = g.out_size().unwrap_or((1, 1));
    let y = forward(&g, x.t.data(), w.t.data(), b.as_ref().map(|b| b.t.data()));
    PyTensor::wrap(Shape::new(&[g.n, g.o, oh, ow]).py()?, y)
}

/// The backward pass of [`_conv2d_forward`] for the output gradient `grad`: adds into
/// `weight_grad` and `bias_grad` (if given) in place and returns the input gradient.
#[pyfunction]
#[pyo3(signature = (who, grad, x, weight, weight_grad, bias_grad, stride, padding, dilation))]
#[allow(clippy::too_many_arguments)]
fn _conv2d_backward(
    who: &str,
    grad: &Bound<'_, PyTensor>,
    x: &Bound<'_, PyTensor>,
    weight: &Bound<'_, PyTensor>,
    weight_grad: &Bound<'_, PyTensor>,
    bias_grad: Option<&Bound<'_, PyTensor>>,
    stride: Pair,
    padding: Pair,
    dilation: Pair,
) -> PyResult<PyTensor> {
    let (gy, xr, w) = (grad.busy_ref()?, x.busy_ref()?, weight.busy_ref()?);
    let g = geom(who, xr.t.shape(), w.t.shape(), stride, padding, dilation)?;
    let (oh, ow) = g.out_size().unwrap_or((1, 1));
    let want = Shape::new(&[g.n, g.o, oh, ow]).py()?;
    if gy.t.shape() != want {
        return Err(PyValueError::new_err(format!(
            "{who}: expected a gradient of shape {want}, got {}",
            gy.t.shape()
        )));
    }
    let mut gw = weight_grad.busy_mut()?;
    if gw.t.shape() != w.t.shape() {
        return Err(PyValueError::new_err(format!(
            "{who}: weight_grad has shape {}, the weight {}",
            gw.t.shape(),
            w.t.shape()
        )));
    }
    let mut gb = bias_grad.map(|b| b.busy_mut()).transpose()?;
    if let Some(b) = &gb {
        if b.t.shape() != Shape::Vector(g.o) {
            return Err(PyValueError::new_err(format!(
                "{who}: bias_grad of shape {} for {} output channels",
                b.t.shape(),
                g.o
            )));
        }
    }
    let dx = backward(
        &g,
        xr.t.data(),
        w.t.data(),
        gy.t.data(),
        gw.t.data_mut(),
        gb.as_mut().map(|b| b.t.data_mut()),
    );
    PyTensor::wrap(xr.t.shape(), dx)
}

/// Register the kernels' two functions.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_conv2d_forward, m)?)?;
    m.add_function(wrap_pyfunction!(_conv2d_backward, m)?)
}
