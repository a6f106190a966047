//! Binding of the convolution family's kernels (`rust/conv.rs`) and layers
//! (`rust/conv_layers.rs`).
//!
//! The classes (`Conv1d`, `Conv2d`, `MaxPool2d`, `AvgPool2d`, `ConvTranspose2d`,
//! `Upsample`), lines of the layer table (`layer_table!`), are written once, in
//! `pyfw/conv.py`, and bound in
//! `python/pyfw_rs/conv.py` to [`SpatialLayer`], a native `Module` whose
//! `forward` and `backward` run the layer through the stack runner, as every
//! native layer runs: alone, inside a native `Sequential`, or in the native
//! epoch of `fit`. The functions below run the kernels on tensors, for tests
//! and benchmarks.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::base::{keeps, module_base, runs_natively, Module};
use super::generator::PyGenerator;
use super::modules::{run_alone, Held, HeldLayer, LayerClass, SlotRefs, DETACH_WORK};
use super::tensor::PyTensor;
use super::{type_name, Borrow, IntoPyResult};
use crate::conv::{
    avg_pool_backward, avg_pool_forward, backward, channel_sums, forward, input_grad,
    max_pool_backward, max_pool_forward, upsample_backward, upsample_forward, weight_grad_into,
    Geom,
};
use crate::conv_layers::{
    ConvConfig, ConvKind, ConvState, PoolConfig, PoolKind, PoolState, UpsampleState,
};
use crate::modules::{Layer, LayerKind, Slot, Slots};
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

// ---------------------------------------------------------------- the layers

/// What a member of the convolution family runs: its kernel state, set from
/// the module's attributes each time the module is held.
pub(crate) enum SpatialState {
    /// Before the first run.
    Empty,
    /// `Conv1d`, `Conv2d` or `ConvTranspose2d`.
    Conv(ConvState),
    /// `MaxPool2d` or `AvgPool2d`.
    Pool(PoolState),
    /// `Upsample`.
    Upsample(UpsampleState),
}

/// The native part of every member of the convolution family: the kernel
/// state of the layer, whose arguments and tensors are the module's Python
/// attributes (`pyfw/conv.py`), and the `forward` and `backward` that run it
/// through the stack runner. The class attribute `_native_kind` names the
/// member (`"Conv2d"`, ...).
#[pyclass(extends = Module, subclass, dict, module = "pyfw_rs._native", name = "_SpatialLayer")]
pub struct SpatialLayer {
    state: SpatialState,
}

/// A pair attribute of `m` (a tuple of one or two ints): one int `v` is `(fill, v)`.
fn pair_attr(m: &Bound<'_, PyAny>, name: &str, fill: usize) -> PyResult<Pair> {
    let v: Vec<usize> = m.getattr(name)?.extract()?;
    match v[..] {
        [a] => Ok((fill, a)),
        [a, b] => Ok((a, b)),
        _ => Err(PyValueError::new_err(format!(
            "{}: {name} must hold 1 or 2 ints, got {}",
            type_name(m),
            v.len()
        ))),
    }
}

/// Set `state` from the attributes of `m`, a member of the family.
fn configure(m: &Bound<'_, PyAny>, state: &mut SpatialState) -> PyResult<()> {
    let kind: String = m.getattr(intern!(m.py(), "_native_kind"))?.extract()?;
    let class = type_name(m);
    let conv = |kind: ConvKind| -> PyResult<ConvConfig> {
        let one = kind == ConvKind::Conv1d;
        let t = kind == ConvKind::ConvTranspose2d;
        Ok(ConvConfig {
            kind,
            in_channels: m.getattr("in_channels")?.extract()?,
            out_channels: m.getattr("out_channels")?.extract()?,
            kernel: pair_attr(m, "kernel_size", 1)?,
            stride: pair_attr(m, "stride", 1)?,
            padding: pair_attr(m, "padding", 0)?,
            dilation: if one || !t {
                pair_attr(m, "dilation", 1)?
            } else {
                (1, 1)
            },
            output_padding: if t {
                pair_attr(m, "output_padding", 0)?
            } else {
                (0, 0)
            },
        })
    };
    let pool = |kind: PoolKind| -> PyResult<PoolConfig> {
        Ok(PoolConfig {
            kind,
            kernel: pair_attr(m, "kernel_size", 1)?,
            stride: pair_attr(m, "stride", 1)?,
            padding: pair_attr(m, "padding", 0)?,
        })
    };
    match kind.as_str() {
        "Conv1d" | "Conv2d" | "ConvTranspose2d" => {
            let k = match kind.as_str() {
                "Conv1d" => ConvKind::Conv1d,
                "Conv2d" => ConvKind::Conv2d,
                _ => ConvKind::ConvTranspose2d,
            };
            let cfg = conv(k)?;
            match state {
                SpatialState::Conv(s) => s.configure(cfg, &class),
                _ => *state = SpatialState::Conv(ConvState::new(cfg, &class)),
            }
        }
        "MaxPool2d" | "AvgPool2d" => {
            let k = if kind == "MaxPool2d" {
                PoolKind::Max
            } else {
                PoolKind::Avg
            };
            let cfg = pool(k)?;
            match state {
                SpatialState::Pool(s) => s.configure(cfg, &class),
                _ => *state = SpatialState::Pool(PoolState::new(cfg, &class)),
            }
        }
        "Upsample" => {
            let scale = pair_attr(m, "scale_factor", 1)?;
            match state {
                SpatialState::Upsample(s) => s.configure(scale),
                _ => *state = SpatialState::Upsample(UpsampleState::new(scale)),
            }
        }
        other => {
            return Err(PyTypeError::new_err(format!(
                "{class}: _native_kind {other:?} is not a member of the convolution family"
            )))
        }
    }
    Ok(())
}

/// A borrowed parameter tensor and the gradient tensor (its `.grad`) the layer accumulates into.
type HeldPair<'py> = (PyRefMut<'py, PyTensor>, PyRefMut<'py, PyTensor>);

/// A member of the family and its parameter tensors, borrowed.
pub(crate) struct HeldSpatial<'py> {
    me: PyRefMut<'py, SpatialLayer>,
    tensors: [Option<HeldPair<'py>>; 2],
    /// The parameters and their gradients, for [`HeldLayer::slots`].
    refs: Vec<(Py<PyTensor>, Py<PyTensor>)>,
}

/// The `weight` (and `bias`) of a convolution `m`, checked against the shapes its arguments imply.
fn conv_params(m: &Bound<'_, PyAny>, s: &ConvState) -> PyResult<Vec<(Py<PyTensor>, Py<PyTensor>)>> {
    let py = m.py();
    let who = s.name();
    let c = s.config();
    let mut out = Vec::new();
    let out_c = c.out_channels;
    for (name, want) in [
        ("weight", Shape::new(&c.weight_shape()).py()?),
        ("bias", Shape::Vector(out_c)),
    ] {
        let v = m.getattr(name)?;
        if v.is_none() && name == "bias" {
            continue;
        }
        let t = v
            .cast_into::<PyTensor>()
            .map_err(|_| PyTypeError::new_err(format!("{who}: {name} must be a pyfw_rs Tensor")))?;
        let (shape, grad) = {
            let r = t.busy_ref()?;
            (r.t.shape(), r.grad.as_ref().map(|g| g.clone_ref(py)))
        };
        let Some(grad) = grad else {
            return Err(PyValueError::new_err(format!(
                "{who}: {name} has no .grad to accumulate into"
            )));
        };
        if shape != want || grad.bind(py).busy_ref()?.t.shape() != want {
            return Err(PyValueError::new_err(format!(
                "{who}: {name} (and its .grad) must have shape {want}, got {shape}"
            )));
        }
        out.push((t.unbind(), grad));
    }
    Ok(out)
}

fn hold_spatial<'py>(
    m: &Bound<'py, PyAny>,
    _gens: &mut Vec<Bound<'py, PyGenerator>>,
    _draw: bool,
) -> PyResult<Held<'py>> {
    let py = m.py();
    let layer = m.cast::<SpatialLayer>()?;
    let refs = {
        let mut me = layer.busy_mut()?;
        configure(m, &mut me.state)?;
        match &me.state {
            SpatialState::Conv(s) => conv_params(m, s)?,
            _ => Vec::new(),
        }
    };
    let me = layer.busy_mut()?;
    let mut tensors = [None, None];
    for ((t, g), held) in refs.iter().zip(&mut tensors) {
        *held = Some((t.bind(py).busy_mut()?, g.bind(py).busy_mut()?));
    }
    Ok(Held::Spatial(HeldSpatial { me, tensors, refs }))
}

impl HeldLayer for HeldSpatial<'_> {
    fn layer(&mut self) -> Layer<'_> {
        let params: Slots<'_> = self
            .tensors
            .iter_mut()
            .flatten()
            .map(|(t, g)| Slot {
                value: t.t.data_mut(),
                grad: g.t.data_mut(),
            })
            .collect();
        let kind = match &mut self.me.state {
            SpatialState::Conv(s) => LayerKind::Conv(s),
            SpatialState::Pool(s) => LayerKind::Pool(s),
            SpatialState::Upsample(s) => LayerKind::Upsample(s),
            SpatialState::Empty => unreachable!("configured when held"),
        };
        Layer { kind, params }
    }

    fn slots(&self) -> Vec<SlotRefs<'_>> {
        self.refs.iter().map(|(t, g)| (t, g, Some(g))).collect()
    }
}

/// The run of one member of the convolution family.
pub(crate) const SPATIAL: LayerClass = LayerClass {
    keeps: keeps::<SpatialLayer>,
    who: |m| Ok(type_name(m)),
    hold: hold_spatial,
};

#[pymethods]
impl SpatialLayer {
    /// Accepts any arguments: the class of `pyfw/conv.py` checks and sets them.
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(
        _args: &Bound<'_, PyTuple>,
        _kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyClassInitializer<SpatialLayer> {
        module_base().add_subclass(SpatialLayer {
            state: SpatialState::Empty,
        })
    }

    /// The layer's output for `x` (docs/NUMERICS.md gives each member's folds).
    fn forward<'py>(slf: &Bound<'py, Self>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        run_alone(slf.as_any(), &SPATIAL, x, false)
    }

    /// Accumulate the parameter gradients; return dL/dx.
    fn backward<'py>(
        slf: &Bound<'py, Self>,
        grad: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        run_alone(slf.as_any(), &SPATIAL, grad, true)
    }

    #[pyo3(signature = (*input))]
    fn __call__<'py>(
        slf: &Bound<'py, Self>,
        input: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if input.len() == 1 && runs_natively::<SpatialLayer>(slf.as_any())? {
            return SpatialLayer::forward(slf, &input.get_item(0)?);
        }
        slf.call_method1(intern!(slf.py(), "forward"), input)
    }
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
