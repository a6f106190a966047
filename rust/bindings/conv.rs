//! Binding of the convolution family's kernels (`rust/conv.rs`).
//!
//! The classes (`Conv1d`, `Conv2d`, `MaxPool2d`, `AvgPool2d`, `ConvTranspose2d`,
//! `Upsample`) are written once, in `pyfw/conv.py`, and
//! bound to the native `Module` in `python/pyfw_rs/conv.py`; they call these
//! functions with `pyfw_rs` tensors, as `pyfw`'s classes call its Python loops.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::modules::DETACH_WORK;
use super::tensor::PyTensor;
use super::{Borrow, IntoPyResult};
use crate::conv::{
    avg_pool_backward, avg_pool_forward, backward, channel_sums, forward, input_grad,
    max_pool_backward, max_pool_forward, upsample_backward, upsample_forward, weight_grad_into,
    Geom,
};
use crate::tensor::Shape;

type Pair = (usize, usize);

/// Run `f` with the interpreter lock released when its `work` (multiply-adds) pays
/// for releasing and taking the lock back, so that threads training models of
/// their own run in parallel. The tensors stay borrowed meanwhile: another thread
/// that touches them gets a clean `RuntimeError`.
fn detached<T: Send>(py: Python<'_>, work: usize, f: impl FnOnce() -> T + Send) -> T {
    if work >= DETACH_WORK {
        py.detach(f)
    } else {
        f()
    }
}

/// The multiply-adds of one product of the convolution `g`.
fn work(g: &Geom) -> usize {
    let (oh, ow) = g.out_size().unwrap_or((1, 1));
    [g.n, g.o, g.c, g.kh, g.kw, oh, ow]
        .iter()
        .fold(1usize, |a, &b| a.saturating_mul(b))
}

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

/// The bias (`channels`,) of a convolution, borrowed, or a `ValueError` naming its shape.
fn checked_bias<'py>(
    who: &str,
    bias: Option<&Bound<'py, PyTensor>>,
    channels: usize,
) -> PyResult<Option<PyRef<'py, PyTensor>>> {
    let b = bias.map(|b| b.busy_ref()).transpose()?;
    if let Some(b) = &b {
        if b.t.shape() != Shape::Vector(channels) {
            return Err(PyValueError::new_err(format!(
                "{who}: bias of shape {} for {channels} output channels",
                b.t.shape()
            )));
        }
    }
    Ok(b)
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
    let b = checked_bias(who, bias, g.o)?;
    let (oh, ow) = g.out_size().unwrap_or((1, 1));
    let (xd, wd, bd) = (x.t.data(), w.t.data(), b.as_ref().map(|b| b.t.data()));
    let y = detached(weight.py(), work(&g), || forward(&g, xd, wd, bd));
    PyTensor::wrap(Shape::new(&[g.n, g.o, oh, ow]).py()?, y.py()?)
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
    let (xd, wd, gyd) = (xr.t.data(), w.t.data(), gy.t.data());
    let (gwd, gbd) = (gw.t.data_mut(), gb.as_mut().map(|b| b.t.data_mut()));
    let dx = detached(weight.py(), work(&g), || {
        backward(&g, xd, wd, gyd, gwd, gbd)
    });
    PyTensor::wrap(xr.t.shape(), dx.py()?)
}

/// The geometry of a pooling of `xs` (N, C, H, W) as planes, checked.
fn pool_geom(who: &str, xs: Shape, kernel: Pair, stride: Pair, padding: Pair) -> PyResult<Geom> {
    let &[n, c, h, w] = xs.dims() else {
        return Err(PyValueError::new_err(format!(
            "{who}: expected a 4-D input, got shape {xs}"
        )));
    };
    let g = Geom {
        n: n * c,
        c: 1,
        h,
        w,
        o: 1,
        kh: kernel.0,
        kw: kernel.1,
        stride,
        padding,
        dilation: (1, 1),
    };
    if g.out_size().is_none() || 2 * padding.0 > kernel.0 || 2 * padding.1 > kernel.1 {
        return Err(PyValueError::new_err(format!(
            "{who}: input of shape {xs} does not fit kernel {kernel:?} \
             (stride {stride:?}, padding {padding:?})"
        )));
    }
    Ok(g)
}

/// The input positions the maxima of a max pooling came from (what its backward needs).
#[pyclass(module = "pyfw_rs", name = "_Argmax", frozen)]
pub struct Argmax {
    picks: Vec<usize>,
    numel: usize,
}

/// `(y, argmax)` of a max pooling of `x` (N, C, H, W) (docs/NUMERICS.md, "MaxPool2d and AvgPool2d").
#[pyfunction]
fn _max_pool2d_forward(
    who: &str,
    x: &Bound<'_, PyTensor>,
    kernel: Pair,
    stride: Pair,
    padding: Pair,
) -> PyResult<(PyTensor, Argmax)> {
    let x = x.busy_ref()?;
    let xs = x.t.shape();
    let g = pool_geom(who, xs, kernel, stride, padding)?;
    let (oh, ow) = g.out_size().unwrap_or((1, 1));
    let (y, picks) = max_pool_forward(&g, x.t.data()).py()?;
    let dims = xs.dims();
    let y = PyTensor::wrap(Shape::new(&[dims[0], dims[1], oh, ow]).py()?, y)?;
    Ok((
        y,
        Argmax {
            picks,
            numel: xs.numel(),
        },
    ))
}

/// The input gradient of a max pooling, for the output gradient `grad`.
#[pyfunction]
fn _max_pool2d_backward(
    who: &str,
    grad: &Bound<'_, PyTensor>,
    argmax: &Bound<'_, Argmax>,
    shape: Vec<usize>,
) -> PyResult<PyTensor> {
    let gy = grad.busy_ref()?;
    let a = argmax.get();
    let shape = Shape::new(&shape).py()?;
    if gy.t.data().len() != a.picks.len() || shape.numel() != a.numel {
        return Err(PyValueError::new_err(format!(
            "{who}: gradient of shape {} does not fit the last forward",
            gy.t.shape()
        )));
    }
    PyTensor::wrap(
        shape,
        max_pool_backward(a.numel, &a.picks, gy.t.data()).py()?,
    )
}

/// The average pooling of `x` (N, C, H, W), the zero padding counting in each window.
#[pyfunction]
fn _avg_pool2d_forward(
    who: &str,
    x: &Bound<'_, PyTensor>,
    kernel: Pair,
    stride: Pair,
    padding: Pair,
) -> PyResult<PyTensor> {
    let x = x.busy_ref()?;
    let xs = x.t.shape();
    let g = pool_geom(who, xs, kernel, stride, padding)?;
    let (oh, ow) = g.out_size().unwrap_or((1, 1));
    let dims = xs.dims();
    PyTensor::wrap(
        Shape::new(&[dims[0], dims[1], oh, ow]).py()?,
        avg_pool_forward(&g, x.t.data()).py()?,
    )
}

/// The input gradient (of shape `shape`) of an average pooling, for the output gradient `grad`.
#[pyfunction]
fn _avg_pool2d_backward(
    who: &str,
    grad: &Bound<'_, PyTensor>,
    shape: Vec<usize>,
    kernel: Pair,
    stride: Pair,
    padding: Pair,
) -> PyResult<PyTensor> {
    let gy = grad.busy_ref()?;
    let xs = Shape::new(&shape).py()?;
    let g = pool_geom(who, xs, kernel, stride, padding)?;
    let (oh, ow) = g.out_size().unwrap_or((1, 1));
    if gy.t.shape() != Shape::new(&[shape[0], shape[1], oh, ow]).py()? {
        return Err(PyValueError::new_err(format!(
            "{who}: gradient of shape {} does not fit an input of shape {xs}",
            gy.t.shape()
        )));
    }
    PyTensor::wrap(xs, avg_pool_backward(&g, gy.t.data()).py()?)
}

/// The geometry of a transposed convolution of `xs` (N, in, H, W) by `ws` (in, out, kH, kW)
/// to an output of `(oh, ow)`: that of the `Conv2d` whose input gradient it is, checked.
fn transpose_geom(
    who: &str,
    xs: Shape,
    ws: Shape,
    stride: Pair,
    padding: Pair,
    out: Pair,
) -> PyResult<Geom> {
    let (&[n, c, h, w], &[wc, o, kh, kw]) = (xs.dims(), ws.dims()) else {
        return Err(PyValueError::new_err(format!(
            "{who}: expected a 4-D input and a 4-D weight, got shapes {xs} and {ws}"
        )));
    };
    let g = Geom {
        n,
        c: o,
        h: out.0,
        w: out.1,
        o: c,
        kh,
        kw,
        stride,
        padding,
        dilation: (1, 1),
    };
    if wc != c || g.out_size() != Some((h, w)) {
        return Err(PyValueError::new_err(format!(
            "{who}: input of shape {xs} does not fit the weight of shape {ws} and an output of {out:?} \
             (stride {stride:?}, padding {padding:?})"
        )));
    }
    Ok(g)
}

/// The transposed convolution of `x` (N, in, H, W) by `weight` (in, out, kH, kW), plus `bias`
/// (out,) if given, to (N, out, oH, oW) with `out = (oH, oW)` (docs/NUMERICS.md, "ConvTranspose2d").
#[pyfunction]
#[pyo3(signature = (who, x, weight, bias, stride, padding, out))]
fn _conv_transpose2d_forward(
    who: &str,
    x: &Bound<'_, PyTensor>,
    weight: &Bound<'_, PyTensor>,
    bias: Option<&Bound<'_, PyTensor>>,
    stride: Pair,
    padding: Pair,
    out: Pair,
) -> PyResult<PyTensor> {
    let (x, w) = (x.busy_ref()?, weight.busy_ref()?);
    let g = transpose_geom(who, x.t.shape(), w.t.shape(), stride, padding, out)?;
    let b = checked_bias(who, bias, g.c)?;
    let (wd, xd, bd) = (w.t.data(), x.t.data(), b.as_ref().map(|b| b.t.data()));
    let y = detached(weight.py(), work(&g), || input_grad(&g, wd, xd, bd));
    PyTensor::wrap(Shape::new(&[g.n, g.c, g.h, g.w]).py()?, y.py()?)
}

/// The backward pass of [`_conv_transpose2d_forward`]: adds into `weight_grad` and
/// `bias_grad` (if given) and returns the input gradient.
#[pyfunction]
#[pyo3(signature = (who, grad, x, weight, weight_grad, bias_grad, stride, padding))]
#[allow(clippy::too_many_arguments)]
fn _conv_transpose2d_backward(
    who: &str,
    grad: &Bound<'_, PyTensor>,
    x: &Bound<'_, PyTensor>,
    weight: &Bound<'_, PyTensor>,
    weight_grad: &Bound<'_, PyTensor>,
    bias_grad: Option<&Bound<'_, PyTensor>>,
    stride: Pair,
    padding: Pair,
) -> PyResult<PyTensor> {
    let (gy, xr, w) = (grad.busy_ref()?, x.busy_ref()?, weight.busy_ref()?);
    let gs = gy.t.shape();
    let &[_, _, oh, ow] = gs.dims() else {
        return Err(PyValueError::new_err(format!(
            "{who}: expected a 4-D gradient, got shape {gs}"
        )));
    };
    let g = transpose_geom(who, xr.t.shape(), w.t.shape(), stride, padding, (oh, ow))?;
    if gs != Shape::new(&[g.n, g.c, g.h, g.w]).py()? {
        return Err(PyValueError::new_err(format!(
            "{who}: gradient of shape {gs} does not fit the input of shape {}",
            xr.t.shape()
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
        if b.t.shape() != Shape::Vector(g.c) {
            return Err(PyValueError::new_err(format!(
                "{who}: bias_grad of shape {} for {} output channels",
                b.t.shape(),
                g.c
            )));
        }
    }
    let (gyd, xd, wd) = (gy.t.data(), xr.t.data(), w.t.data());
    let (gwd, gbd) = (gw.t.data_mut(), gb.as_mut().map(|b| b.t.data_mut()));
    let dx = detached(weight.py(), work(&g), || {
        if let Some(gb) = gbd {
            channel_sums(gyd, g.n, g.h * g.w, gb);
        }
        // As the Conv2d whose input gradient the forward is: its "x" is `grad`, its "gy" is `x`.
        weight_grad_into(&g, gyd, xd, gwd);
        forward(&g, gyd, wd, None)
    });
    PyTensor::wrap(xr.t.shape(), dx.py()?)
}

/// `(planes, h, w)` of a 4-D tensor shape.
fn planes(who: &str, s: Shape) -> PyResult<(usize, usize, usize)> {
    match *s.dims() {
        [n, c, h, w] => Ok((n * c, h, w)),
        _ => Err(PyValueError::new_err(format!(
            "{who}: expected a 4-D tensor, got shape {s}"
        ))),
    }
}

/// Nearest upsampling of `x` (N, C, H, W) by the integer factors `scale`.
#[pyfunction]
fn _upsample_nearest2d_forward(
    who: &str,
    x: &Bound<'_, PyTensor>,
    scale: Pair,
) -> PyResult<PyTensor> {
    let x = x.busy_ref()?;
    let xs = x.t.shape();
    let (p, h, w) = planes(who, xs)?;
    let d = xs.dims();
    let shape = Shape::new(&[d[0], d[1], h * scale.0, w * scale.1]).py()?;
    PyTensor::wrap(shape, upsample_forward(x.t.data(), p, h, w, scale).py()?)
}

/// The input gradient (of shape `shape`) of a nearest upsampling by `scale`.
#[pyfunction]
fn _upsample_nearest2d_backward(
    who: &str,
    grad: &Bound<'_, PyTensor>,
    shape: Vec<usize>,
    scale: Pair,
) -> PyResult<PyTensor> {
    let gy = grad.busy_ref()?;
    let xs = Shape::new(&shape).py()?;
    let (p, h, w) = planes(who, xs)?;
    if gy.t.shape() != Shape::new(&[shape[0], shape[1], h * scale.0, w * scale.1]).py()? {
        return Err(PyValueError::new_err(format!(
            "{who}: gradient of shape {} does not fit an input of shape {xs}",
            gy.t.shape()
        )));
    }
    PyTensor::wrap(xs, upsample_backward(gy.t.data(), p, h, w, scale).py()?)
}

/// Register the kernels' functions.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_conv2d_forward, m)?)?;
    m.add_function(wrap_pyfunction!(_conv2d_backward, m)?)?;
    m.add_function(wrap_pyfunction!(_max_pool2d_forward, m)?)?;
    m.add_function(wrap_pyfunction!(_max_pool2d_backward, m)?)?;
    m.add_function(wrap_pyfunction!(_avg_pool2d_forward, m)?)?;
    m.add_function(wrap_pyfunction!(_avg_pool2d_backward, m)?)?;
    m.add_function(wrap_pyfunction!(_conv_transpose2d_forward, m)?)?;
    m.add_function(wrap_pyfunction!(_conv_transpose2d_backward, m)?)?;
    m.add_function(wrap_pyfunction!(_upsample_nearest2d_forward, m)?)?;
    m.add_function(wrap_pyfunction!(_upsample_nearest2d_backward, m)?)
}
