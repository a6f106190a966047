//! The convolution family as layers of the stack runner (`rust/modules.rs`):
//! what `Conv1d`, `Conv2d`, `ConvTranspose2d`, `MaxPool2d`, `AvgPool2d` and
//! `Upsample` keep between `forward` and `backward`, their output shapes and
//! their input checks, over the kernels of `rust/conv.rs`. The checks and their
//! messages are those of `pyfw/conv.py`, so both backends refuse the same input
//! with the same words.

use crate::conv::{
    avg_pool_backward, avg_pool_forward, channel_sums, forward as conv_forward, input_grad,
    max_pool_backward, max_pool_forward, upsample_backward, upsample_forward, weight_grad_into,
    Geom,
};
use crate::error::{check_grad, copy_into, Error, Owner, Result};
use crate::tensor::Shape;

/// A pair of sizes, `(height, width)`.
pub type Pair = (usize, usize);

/// `(3,)` or `(3, 3)`: sizes as Python writes a tuple of them.
fn tuple_text<T: std::fmt::Display>(v: &[T]) -> String {
    let parts: Vec<String> = v.iter().map(|x| x.to_string()).collect();
    match parts.len() {
        1 => format!("({},)", parts[0]),
        _ => format!("({})", parts.join(", ")),
    }
}

/// The members a [`ConvState`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvKind {
    /// On `(N, C, L)`: the 2-D kernel with a height of 1.
    Conv1d,
    /// On `(N, C, H, W)`.
    Conv2d,
    /// On `(N, C, H, W)`: the input gradient of a `Conv2d`, as a layer.
    ConvTranspose2d,
}

/// The arguments of a convolution. A `Conv1d`'s are those of its 2-D kernel:
/// kernel `(1, k)`, stride `(1, s)`, padding `(0, p)`, dilation `(1, d)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvConfig {
    /// Which member.
    pub kind: ConvKind,
    /// `in_channels`.
    pub in_channels: usize,
    /// `out_channels`.
    pub out_channels: usize,
    /// `kernel_size`.
    pub kernel: Pair,
    /// `stride`.
    pub stride: Pair,
    /// `padding`.
    pub padding: Pair,
    /// `dilation` (`(1, 1)` for `ConvTranspose2d`).
    pub dilation: Pair,
    /// `output_padding` (`ConvTranspose2d` only).
    pub output_padding: Pair,
}

impl ConvConfig {
    /// The spatial entries of a pair: its second alone for `Conv1d`.
    fn spatial(&self, p: Pair) -> Vec<usize> {
        match self.kind {
            ConvKind::Conv1d => vec![p.1],
            _ => vec![p.0, p.1],
        }
    }

    /// The weight's shape: `(out, in, kH, kW)`, `(out, in, k)` for `Conv1d`, and
    /// `(in, out, kH, kW)` for `ConvTranspose2d`.
    pub fn weight_shape(&self) -> Vec<usize> {
        let (i, o, (kh, kw)) = (self.in_channels, self.out_channels, self.kernel);
        match self.kind {
            ConvKind::Conv1d => vec![o, i, kw],
            ConvKind::Conv2d => vec![o, i, kh, kw],
            ConvKind::ConvTranspose2d => vec![i, o, kh, kw],
        }
    }
}

/// What a convolution keeps between `forward` and `backward`: its arguments,
/// its name for messages and its last input.
#[derive(Clone, Debug)]
pub struct ConvState {
    cfg: ConvConfig,
    name: String,
    input: Option<(Vec<f64>, Shape)>,
    owner: Owner,
}

impl ConvState {
    /// The layer `class` (its class name) with these arguments, before any forward.
    pub fn new(cfg: ConvConfig, class: &str) -> ConvState {
        let k = tuple_text(&cfg.spatial(cfg.kernel));
        let name = format!(
            "{class}({} -> {}, kernel_size={k})",
            cfg.in_channels, cfg.out_channels
        );
        ConvState {
            cfg,
            name,
            input: None,
            owner: Owner::default(),
        }
    }

    /// Take these arguments and name; what the last forward kept stays only if they are the same.
    pub fn configure(&mut self, cfg: ConvConfig, class: &str) {
        let fresh = ConvState::new(cfg, class);
        if fresh.cfg != self.cfg || fresh.name != self.name {
            *self = fresh;
        }
    }

    /// The arguments.
    pub fn config(&self) -> &ConvConfig {
        &self.cfg
    }

    /// `Conv2d(3 -> 8, kernel_size=(3, 3))`, for error messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The output shape for an input of `shape`, or the error `pyfw` gives for it.
    pub fn out_shape(&self, shape: Shape) -> Result<Shape> {
        let c = &self.cfg;
        let who = &self.name;
        let d = shape.dims();
        let (rank, layout) = match c.kind {
            ConvKind::Conv1d => (3, "(N, C, L)"),
            _ => (4, "(N, C, H, W)"),
        };
        if d.len() != rank {
            return Err(Error::Value(format!(
                "{who}: expected a {rank}-D input {layout} with C = {}, got shape {shape}",
                c.in_channels
            )));
        }
        if d[1] != c.in_channels {
            return Err(Error::Value(format!(
                "{who}: expected {} input channels, got {} (input shape {shape})",
                c.in_channels, d[1]
            )));
        }
        let spatial = &d[2..];
        let (kernel, stride, padding) = (
            c.spatial(c.kernel),
            c.spatial(c.stride),
            c.spatial(c.padding),
        );
        let mut out = vec![d[0], c.out_channels];
        if c.kind == ConvKind::ConvTranspose2d {
            let op = c.spatial(c.output_padding);
            let sizes: Vec<isize> = (0..2)
                .map(|i| {
                    (spatial[i] as isize - 1) * stride[i] as isize - 2 * padding[i] as isize
                        + kernel[i] as isize
                        + op[i] as isize
                })
                .collect();
            if sizes.iter().any(|&o| o < 1) {
                return Err(Error::Value(format!(
                    "{who}: input of size {} gives an output of size {}, too small for padding {} \
                     (input shape {shape})",
                    tuple_text(spatial),
                    tuple_text(&sizes),
                    tuple_text(&padding)
                )));
            }
            out.extend(sizes.iter().map(|&o| o as usize));
            return Shape::new(&out);
        }
        let dilation = c.spatial(c.dilation);
        let span: Vec<usize> = (0..spatial.len())
            .map(|i| dilation[i] * (kernel[i] - 1) + 1)
            .collect();
        let padded: Vec<usize> = (0..spatial.len())
            .map(|i| spatial[i] + 2 * padding[i])
            .collect();
        if (0..spatial.len()).any(|i| padded[i] < span[i]) {
            return Err(Error::Value(format!(
                "{who}: input of size {} (padded to {}) is smaller than the kernel (dilated to {}) \
                 (input shape {shape})",
                tuple_text(spatial),
                tuple_text(&padded),
                tuple_text(&span)
            )));
        }
        out.extend((0..spatial.len()).map(|i| (padded[i] - span[i]) / stride[i] + 1));
        Shape::new(&out)
    }

    /// The geometry of the 2-D kernel for an input of `shape` (checked): for a
    /// `ConvTranspose2d`, that of the `Conv2d` whose input gradient it is.
    fn geom(&self, shape: Shape) -> Result<Geom> {
        let out = self.out_shape(shape)?;
        let c = &self.cfg;
        let d = shape.dims();
        let (h, w) = match c.kind {
            ConvKind::Conv1d => (1, d[2]),
            _ => (d[2], d[3]),
        };
        let g = match c.kind {
            ConvKind::ConvTranspose2d => {
                let od = out.dims();
                let g = Geom {
                    n: d[0],
                    c: c.out_channels,
                    h: od[2],
                    w: od[3],
                    o: c.in_channels,
                    kh: c.kernel.0,
                    kw: c.kernel.1,
                    stride: c.stride,
                    padding: c.padding,
                    dilation: (1, 1),
                };
                if g.out_size() != Some((h, w)) {
                    return Err(Error::Value(format!(
                        "{}: input of shape {shape} does not fit the output {out}",
                        self.name
                    )));
                }
                g
            }
            _ => Geom {
                n: d[0],
                c: c.in_channels,
                h,
                w,
                o: c.out_channels,
                kh: c.kernel.0,
                kw: c.kernel.1,
                stride: c.stride,
                padding: c.padding,
                dilation: c.dilation,
            },
        };
        Ok(g)
    }

    /// The output for `x` of `shape`, with `w` and the bias `b` (None without one).
    pub fn run_forward(
        &self,
        x: &[f64],
        shape: Shape,
        w: &[f64],
        b: Option<&[f64]>,
    ) -> Result<Vec<f64>> {
        let g = self.geom(shape)?;
        match self.cfg.kind {
            ConvKind::ConvTranspose2d => input_grad(&g, w, x, b),
            _ => conv_forward(&g, x, w, b),
        }
    }

    /// Accumulate the weight and bias gradients from the input `x` of `shape` and
    /// the output gradient `gy`; returns dL/dx when `want_dx`.
    #[allow(clippy::too_many_arguments)]
    pub fn run_backward(
        &self,
        x: &[f64],
        shape: Shape,
        w: &[f64],
        gy: &[f64],
        gw: &mut [f64],
        gb: Option<&mut [f64]>,
        want_dx: bool,
    ) -> Result<Option<Vec<f64>>> {
        let g = self.geom(shape)?;
        if self.cfg.kind == ConvKind::ConvTranspose2d {
            // As the Conv2d whose input gradient the forward is: its input is `gy`, its output gradient `x`.
            if let Some(gb) = gb {
                channel_sums(gy, g.n, g.h * g.w, gb);
            }
            weight_grad_into(&g, gy, x, gw);
            return want_dx.then(|| conv_forward(&g, gy, w, None)).transpose();
        }
        let (oh, ow) = g.out_size().unwrap_or((1, 1));
        if let Some(gb) = gb {
            channel_sums(gy, g.n, oh * ow, gb);
        }
        weight_grad_into(&g, x, gy, gw);
        want_dx.then(|| input_grad(&g, w, gy, None)).transpose()
    }

    /// The output for `x` of `shape` and its shape; keeps `x` for `backward`, unless grad mode is off.
    pub fn forward(
        &mut self,
        x: Vec<f64>,
        shape: Shape,
        w: &[f64],
        b: Option<&[f64]>,
    ) -> Result<(Vec<f64>, Shape)> {
        let out = self.out_shape(shape)?;
        let y = self.run_forward(&x, shape, w, b)?;
        self.input = self.owner.forward().then_some((x, shape));
        Ok((y, out))
    }

    /// Keep `x` of `shape` for `backward`, as `forward` does.
    pub fn remember(&mut self, x: &[f64], shape: Shape) -> Result<()> {
        let (kept, s) = self.input.get_or_insert_with(|| (Vec::new(), shape));
        copy_into(kept, x, "convolution family")?;
        *s = shape;
        self.owner.set();
        Ok(())
    }

    /// Accumulate the gradients from `g` of `shape` (the last output's); returns dL/dx and its shape.
    pub fn backward(
        &self,
        g: &[f64],
        shape: Shape,
        w: &[f64],
        gw: &mut [f64],
        gb: Option<&mut [f64]>,
    ) -> Result<(Vec<f64>, Shape)> {
        let (x, xs) = self
            .input
            .as_ref()
            .ok_or_else(|| self.owner.not_forwarded(&self.name))?;
        self.owner.check(&self.name)?;
        check_grad(&self.name, shape, self.out_shape(*xs)?)?;
        let dx = self.run_backward(x, *xs, w, g, gw, gb, true)?;
        Ok((dx.unwrap_or_default(), *xs))
    }
}

/// The poolings a [`PoolState`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// `MaxPool2d`: the gradient goes to the first maximum in scan order.
    Max,
    /// `AvgPool2d`: the padding counts in the average.
    Avg,
}

/// The arguments of a pooling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Which pooling.
    pub kind: PoolKind,
    /// `kernel_size`.
    pub kernel: Pair,
    /// `stride`.
    pub stride: Pair,
    /// `padding`.
    pub padding: Pair,
}

/// What a pooling keeps between `forward` and `backward`: the shape of its last
/// input and, for max pooling, where each maximum came from.
#[derive(Clone, Debug)]
pub struct PoolState {
    cfg: PoolConfig,
    name: String,
    in_shape: Option<Shape>,
    argmax: Vec<usize>,
    owner: Owner,
}

impl PoolState {
    /// The layer `class` (its class name) with these arguments, before any forward.
    pub fn new(cfg: PoolConfig, class: &str) -> PoolState {
        let (kh, kw) = cfg.kernel;
        PoolState {
            name: format!("{class}(kernel_size={})", tuple_text(&[kh, kw])),
            cfg,
            in_shape: None,
            argmax: Vec::new(),
            owner: Owner::default(),
        }
    }

    /// Take these arguments and name; what the last forward kept stays only if they are the same.
    pub fn configure(&mut self, cfg: PoolConfig, class: &str) {
        let fresh = PoolState::new(cfg, class);
        if fresh.cfg != self.cfg || fresh.name != self.name {
            *self = fresh;
        }
    }

    /// `MaxPool2d(kernel_size=(2, 2))`, for error messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The output shape for an input of `shape`, or the error `pyfw` gives for it.
    pub fn out_shape(&self, shape: Shape) -> Result<Shape> {
        let who = &self.name;
        let &[n, c, h, w] = shape.dims() else {
            return Err(Error::Value(format!(
                "{who}: expected a 4-D input (N, C, H, W), got shape {shape}"
            )));
        };
        let PoolConfig {
            kernel,
            stride,
            padding,
            ..
        } = self.cfg;
        let padded = [h + 2 * padding.0, w + 2 * padding.1];
        if padded[0] < kernel.0 || padded[1] < kernel.1 {
            return Err(Error::Value(format!(
                "{who}: input of size {} (padded to {}) is smaller than the kernel {} (input shape {shape})",
                tuple_text(&[h, w]),
                tuple_text(&padded),
                tuple_text(&[kernel.0, kernel.1])
            )));
        }
        Shape::new(&[
            n,
            c,
            (padded[0] - kernel.0) / stride.0 + 1,
            (padded[1] - kernel.1) / stride.1 + 1,
        ])
    }

    /// The planes of an input of `shape` (checked) as the kernels take them.
    fn geom(&self, shape: Shape) -> Result<Geom> {
        self.out_shape(shape)?;
        let d = shape.dims();
        Ok(Geom {
            n: d[0] * d[1],
            c: 1,
            h: d[2],
            w: d[3],
            o: 1,
            kh: self.cfg.kernel.0,
            kw: self.cfg.kernel.1,
            stride: self.cfg.stride,
            padding: self.cfg.padding,
            dilation: (1, 1),
        })
    }

    /// The output for `x` of `shape`; a max pooling notes where each maximum came from.
    pub fn run_forward(&mut self, x: &[f64], shape: Shape) -> Result<Vec<f64>> {
        let g = self.geom(shape)?;
        match self.cfg.kind {
            PoolKind::Max => {
                let (y, arg) = max_pool_forward(&g, x)?;
                self.argmax = arg;
                Ok(y)
            }
            PoolKind::Avg => avg_pool_forward(&g, x),
        }
    }

    /// dL/dx, for an input of `shape`, from the output gradient `gy` of the last `run_forward`.
    pub fn run_backward(&self, gy: &[f64], shape: Shape) -> Result<Vec<f64>> {
        match self.cfg.kind {
            PoolKind::Max => max_pool_backward(shape.numel(), &self.argmax, gy),
            PoolKind::Avg => avg_pool_backward(&self.geom(shape)?, gy),
        }
    }

    /// The output for `x` of `shape` and its shape; keeps what `backward` needs, unless grad mode is off.
    pub fn forward(&mut self, x: &[f64], shape: Shape) -> Result<(Vec<f64>, Shape)> {
        let out = self.out_shape(shape)?;
        let y = self.run_forward(x, shape)?;
        self.in_shape = self.owner.forward().then_some(shape);
        Ok((y, out))
    }

    /// Keep the input shape of the last `run_forward`, as `forward` does.
    pub fn remember(&mut self, shape: Shape) -> Result<()> {
        self.in_shape = Some(shape);
        self.owner.set();
        Ok(())
    }

    /// dL/dx and its shape from `g` of `shape` (the last output's).
    pub fn backward(&self, g: &[f64], shape: Shape) -> Result<(Vec<f64>, Shape)> {
        let xs = self
            .in_shape
            .ok_or_else(|| self.owner.not_forwarded(&self.name))?;
        self.owner.check(&self.name)?;
        check_grad(&self.name, shape, self.out_shape(xs)?)?;
        Ok((self.run_backward(g, xs)?, xs))
    }
}

/// What a nearest `Upsample` keeps between `forward` and `backward`: the shape of its last input.
#[derive(Clone, Debug)]
pub struct UpsampleState {
    scale: Pair,
    name: String,
    in_shape: Option<Shape>,
    owner: Owner,
}

impl UpsampleState {
    /// `Upsample(scale_factor=scale)` before any forward.
    pub fn new(scale: Pair) -> UpsampleState {
        UpsampleState {
            scale,
            name: format!("Upsample(scale_factor={})", tuple_text(&[scale.0, scale.1])),
            in_shape: None,
            owner: Owner::default(),
        }
    }

    /// Take this scale; what the last forward kept stays only if it is the same.
    pub fn configure(&mut self, scale: Pair) {
        if scale != self.scale {
            *self = UpsampleState::new(scale);
        }
    }

    /// `Upsample(scale_factor=(2, 2))`, for error messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The output shape for an input of `shape`, or the error `pyfw` gives for it.
    pub fn out_shape(&self, shape: Shape) -> Result<Shape> {
        let &[n, c, h, w] = shape.dims() else {
            return Err(Error::Value(format!(
                "{}: expected a 4-D input (N, C, H, W), got shape {shape}",
                self.name
            )));
        };
        let big = |a: usize, b: usize| {
            a.checked_mul(b)
                .ok_or_else(|| Error::Memory(format!("{}: output too large", self.name)))
        };
        Shape::new(&[n, c, big(h, self.scale.0)?, big(w, self.scale.1)?])
    }

    /// The output for `x` of `shape`.
    pub fn run_forward(&self, x: &[f64], shape: Shape) -> Result<Vec<f64>> {
        self.out_shape(shape)?;
        let d = shape.dims();
        upsample_forward(x, d[0] * d[1], d[2], d[3], self.scale)
    }

    /// dL/dx for an input of `shape`, from the output gradient `gy`.
    pub fn run_backward(&self, gy: &[f64], shape: Shape) -> Result<Vec<f64>> {
        let d = shape.dims();
        upsample_backward(gy, d[0] * d[1], d[2], d[3], self.scale)
    }

    /// The output for `x` of `shape` and its shape; keeps the shape, unless grad mode is off.
    pub fn forward(&mut self, x: &[f64], shape: Shape) -> Result<(Vec<f64>, Shape)> {
        let out = self.out_shape(shape)?;
        let y = self.run_forward(x, shape)?;
        self.in_shape = self.owner.forward().then_some(shape);
        Ok((y, out))
    }

    /// Keep the input shape, as `forward` does.
    pub fn remember(&mut self, shape: Shape) -> Result<()> {
        self.in_shape = Some(shape);
        self.owner.set();
        Ok(())
    }

    /// dL/dx and its shape from `g` of `shape` (the last output's).
    pub fn backward(&self, g: &[f64], shape: Shape) -> Result<(Vec<f64>, Shape)> {
        let xs = self
            .in_shape
            .ok_or_else(|| self.owner.not_forwarded(&self.name))?;
        self.owner.check(&self.name)?;
        check_grad(&self.name, shape, self.out_shape(xs)?)?;
        Ok((self.run_backward(g, xs)?, xs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activations::{ActState, Activation, ReLU};
    use crate::generator::Generator;
    use crate::modules::{
        BatchNormState, Layer, LayerKind, Reshape, ReshapeState, Running, Slot, Slots, Stack,
    };
    use crate::testing::bits;

    /// The slots `weight` and `bias`.
    fn slots<'a>(
        w: &'a mut [f64],
        gw: &'a mut [f64],
        b: &'a mut [f64],
        gb: &'a mut [f64],
    ) -> Slots<'a> {
        [Slot { value: w, grad: gw }, Slot { value: b, grad: gb }]
            .into_iter()
            .collect()
    }

    fn conv(kind: ConvKind, i: usize, o: usize, k: usize, s: usize, p: usize) -> ConvConfig {
        ConvConfig {
            kind,
            in_channels: i,
            out_channels: o,
            kernel: (k, k),
            stride: (s, s),
            padding: (p, p),
            dilation: (1, 1),
            output_padding: (s - 1, s - 1),
        }
    }

    /// A network of every kind of layer on (N, 2, 6, 6) images (to (N, 8)) runs to the same bits on the
    /// stack's buffers (the native epoch) and through each layer's own state (the native
    /// `Sequential`): outputs, parameter gradients, running statistics, and what each keeps.
    #[test]
    fn a_conv_stack_runs_the_same_bits_on_buffers_and_through_the_states() {
        let rows = 3;
        let mut g = Generator::new(5);
        let mut draw = |n: usize| (0..n).map(|_| g.uniform(-0.5, 0.5)).collect::<Vec<f64>>();
        let (w1, b1) = (draw(4 * 2 * 9), draw(4));
        let (w2, b2) = (draw(4 * 3 * 9), draw(3));
        let (w3, b3) = (draw(2 * 3 * 3 * 3), draw(2));
        let x = draw(rows * 2 * 6 * 6);
        let gy = draw(rows * 8);
        let run = |buffers: bool| {
            let mut c1 = ConvState::new(conv(ConvKind::Conv2d, 2, 4, 3, 2, 1), "Conv2d");
            let mut a = ActState::new(Activation::from(ReLU::default()));
            let mut up = UpsampleState::new((2, 2));
            let mut c2 = ConvState::new(
                conv(ConvKind::ConvTranspose2d, 4, 3, 3, 2, 1),
                "ConvTranspose2d",
            );
            let mut bn = BatchNormState::new(3, 1e-5, Some(0.1), false, true).two_d();
            let mut mp = PoolState::new(
                PoolConfig {
                    kind: PoolKind::Max,
                    kernel: (3, 3),
                    stride: (2, 2),
                    padding: (1, 1),
                },
                "MaxPool2d",
            );
            let mut ap = PoolState::new(
                PoolConfig {
                    kind: PoolKind::Avg,
                    kernel: (2, 2),
                    stride: (2, 2),
                    padding: (1, 1),
                },
                "AvgPool2d",
            );
            let mut c3 = ConvState::new(conv(ConvKind::Conv2d, 3, 2, 3, 1, 0), "Conv2d");
            let mut flat = ReshapeState::new(Reshape::Flatten(1, -1));
            let (mut w1, mut b1, mut w2, mut b2, mut w3, mut b3) = (
                w1.clone(),
                b1.clone(),
                w2.clone(),
                b2.clone(),
                w3.clone(),
                b3.clone(),
            );
            let mut grads: Vec<Vec<f64>> = [&w1, &b1, &w2, &b2, &w3, &b3]
                .iter()
                .map(|v| vec![0.0; v.len()])
                .collect();
            let (mut rm, mut rv, mut count) = (vec![0.0; 3], vec![1.0; 3], vec![0.0]);
            let [gw1, gb1, gw2, gb2, gw3, gb3] = &mut grads[..] else {
                unreachable!()
            };
            let bare = |kind| Layer {
                kind,
                params: Slots::new(),
            };
            let mut layers = vec![
                Layer {
                    kind: LayerKind::Conv(&mut c1),
                    params: slots(&mut w1, gw1, &mut b1, gb1),
                },
                bare(LayerKind::Activation(&mut a)),
                bare(LayerKind::Upsample(&mut up)),
                Layer {
                    kind: LayerKind::Conv(&mut c2),
                    params: slots(&mut w2, gw2, &mut b2, gb2),
                },
                bare(LayerKind::BatchNorm(
                    &mut bn,
                    true,
                    Some(Running {
                        mean: &mut rm,
                        var: &mut rv,
                        count: &mut count,
                    }),
                )),
                bare(LayerKind::Pool(&mut mp)),
                bare(LayerKind::Pool(&mut ap)),
                Layer {
                    kind: LayerKind::Conv(&mut c3),
                    params: slots(&mut w3, gw3, &mut b3, gb3),
                },
                bare(LayerKind::Reshape(&mut flat)),
            ];
            let shape = Shape::new(&[rows, 2, 6, 6]).unwrap();
            let y = if buffers {
                let mut stack = Stack::with_sample(&layers, &[2, 6, 6], rows, "test").unwrap();
                assert_eq!(stack.out_shape(rows), Shape::Matrix(rows, 8));
                stack.input_mut(rows).copy_from_slice(&x);
                stack.forward(&mut layers, rows, &mut []).unwrap();
                stack.grad_mut(rows).copy_from_slice(&gy);
                stack.backward(&mut layers, rows).unwrap();
                stack.remember(&mut layers, rows).unwrap();
                stack.output(rows).to_vec()
            } else {
                let (mut y, mut s) = (x.clone(), shape);
                Stack::forward_kept(&mut layers, &mut y, &mut s, &mut []).unwrap();
                assert_eq!(s, Shape::Matrix(rows, 8));
                let (mut g, mut s) = (gy.clone(), Shape::Matrix(rows, 8));
                Stack::backward_kept(&mut layers, &mut g, &mut s).unwrap();
                assert_eq!(s, shape);
                y
            };
            drop(layers);
            // What the first convolution kept: its backward from the same gradient gives the same bits.
            let g1 = vec![0.25; rows * 4 * 3 * 3];
            let gs = Shape::new(&[rows, 4, 3, 3]).unwrap();
            let (dx, _) = c1
                .backward(&g1, gs, &w1, &mut vec![0.0; w1.len()], None)
                .unwrap();
            let (dmp, _) = mp
                .backward(
                    &vec![1.0; rows * 3 * 6 * 6],
                    Shape::new(&[rows, 3, 6, 6]).unwrap(),
                )
                .unwrap();
            let all: Vec<Vec<u64>> = grads.iter().map(|v| bits(v)).collect();
            (
                bits(&y),
                all,
                bits(&rm),
                bits(&rv),
                count,
                bits(&dx),
                bits(&dmp),
            )
        };
        assert_eq!(run(true), run(false));
    }

    #[test]
    fn bad_inputs_name_the_layer_and_the_shapes() {
        let c = ConvState::new(conv(ConvKind::Conv2d, 3, 4, 3, 1, 0), "Conv2d");
        let s = |d: &[usize]| Shape::new(d).unwrap();
        assert_eq!(
            c.out_shape(s(&[2, 3, 5])).unwrap_err().message(),
            "Conv2d(3 -> 4, kernel_size=(3, 3)): expected a 4-D input (N, C, H, W) with C = 3, got shape (2, 3, 5)"
        );
        assert_eq!(
            c.out_shape(s(&[2, 2, 5, 5])).unwrap_err().message(),
            "Conv2d(3 -> 4, kernel_size=(3, 3)): expected 3 input channels, got 2 (input shape (2, 2, 5, 5))"
        );
        assert_eq!(
            c.out_shape(s(&[2, 3, 2, 5])).unwrap_err().message(),
            "Conv2d(3 -> 4, kernel_size=(3, 3)): input of size (2, 5) (padded to (2, 5)) is smaller than \
             the kernel (dilated to (3, 3)) (input shape (2, 3, 2, 5))"
        );
        let mut one = conv(ConvKind::Conv1d, 1, 1, 3, 1, 0);
        one.kernel = (1, 3);
        let c1 = ConvState::new(one, "Conv1d");
        assert_eq!(c1.name(), "Conv1d(1 -> 1, kernel_size=(3,))");
        assert_eq!(c1.out_shape(s(&[2, 1, 7])).unwrap(), s(&[2, 1, 5]));
        let u = UpsampleState::new((2, 2));
        assert!(matches!(u.out_shape(s(&[2, 3])), Err(Error::Value(_))));
        assert!(matches!(
            u.backward(&[1.0], s(&[1])),
            Err(Error::Runtime(_))
        ));
    }
}
