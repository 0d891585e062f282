//! 2-D convolution on NCHW arrays (PyTorch's `conv2d`): im2col + the dense layer's GEMM
//! ([`crate::matmul`]) for the forward pass and the weight gradient, GEMM + col2im for the input
//! gradient. A 1×1 kernel with stride 1 and no padding multiplies the input directly.
//!
//! Samples run in parallel. The column matrix of one sample (and group) lives in a buffer each
//! thread keeps ([`ConvFloat`]), so a call allocates nothing once the buffers have grown. The
//! weight and bias gradients, sums over the batch, are summed in chunks of samples whose count
//! depends on the shape alone, the chunks' partial sums added in order: results are bit-identical
//! for any thread count.

use crate::error::{check_len, checked_product, dims, shape_str};
use crate::matmul::matmul;
use crate::parallel::{install, worth_parallel_above};
use crate::{Float, KernelError};
use faer::MatRef;
use rayon::prelude::*;
use std::cell::Cell;

/// From this many multiply-adds on, a call runs its samples in parallel.
const PAR_MIN_MULTIPLY_ADDS: usize = 1 << 18;

/// At most this many chunks of samples for the weight gradient (each but the first has its own
/// partial sums), and at most [`PARTIAL_ELEMENTS`] elements of partial sums in all.
const MAX_CHUNKS: usize = 16;
const PARTIAL_ELEMENTS: usize = 1 << 21;

/// The geometry of a convolution: `x` (batch, in_channels, in_h, in_w), `weight` (out_channels,
/// in_channels / groups, kernel_h, kernel_w), output (batch, out_channels, out_h, out_w).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    pub batch: usize,
    pub in_channels: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub out_channels: usize,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
    pub out_h: usize,
    pub out_w: usize,
}

/// `value` as a size, or an error naming `name` when it is below `min`.
fn size(name: &'static str, value: i64, min: i64) -> Result<usize, KernelError> {
    if value < min {
        let what = if min == 0 { ">= 0" } else { ">= 1" };
        return Err(KernelError::value(name, format!("must be {what}, got {value}")));
    }
    usize::try_from(value).map_err(|_| KernelError::value(name, format!("is too large: {value}")))
}

fn pair(name: &'static str, value: [i64; 2], min: i64) -> Result<[usize; 2], KernelError> {
    let [h, w] = value;
    match (size(name, h, min), size(name, w, min)) {
        (Ok(h), Ok(w)) => Ok([h, w]),
        _ => {
            let what = if min == 0 { "non-negative" } else { "positive" };
            Err(KernelError::value(name, format!("must be a pair of {what} integers, got ({h}, {w})")))
        }
    }
}

/// The output length along one axis, or an error when the dilated kernel does not fit in the
/// padded input.
fn out_len(
    axis: &str, input: usize, kernel: usize, stride: usize, padding: usize, dilation: usize,
) -> Result<usize, KernelError> {
    let too_large = || KernelError::Message(format!("the {axis} sizes are too large"));
    let padded = padding.checked_mul(2).and_then(|p| p.checked_add(input)).ok_or_else(too_large)?;
    let span = (kernel - 1).checked_mul(dilation).and_then(|s| s.checked_add(1)).ok_or_else(too_large)?;
    if span > padded {
        let expected =
            format!("a padded {axis} of at least the kernel's {span} (kernel {kernel}, dilation {dilation})");
        return Err(KernelError::shape("x", expected, format!("{input} + 2·{padding} = {padded}")));
    }
    Ok((padded - span) / stride + 1)
}

impl ConvShape {
    /// The geometry from the shapes of `x` and `weight` and the hyperparameters, each checked.
    pub fn of(
        x: &[usize], weight: &[usize], stride: [i64; 2], padding: [i64; 2], dilation: [i64; 2], groups: i64,
    ) -> Result<ConvShape, KernelError> {
        let [batch, in_channels, in_h, in_w] = dims::<4>("x", x)?;
        let [out_channels, weight_in, kernel_h, kernel_w] = dims::<4>("weight", weight)?;
        let stride = pair("stride", stride, 1)?;
        let padding = pair("padding", padding, 0)?;
        let dilation = pair("dilation", dilation, 1)?;
        let groups = size("groups", groups, 1)?;
        if in_channels % groups != 0 || out_channels % groups != 0 {
            return Err(KernelError::value(
                "groups",
                format!(
                    "must divide the input channels ({in_channels}) and the output channels ({out_channels}), got {groups}"
                ),
            ));
        }
        if in_channels == 0 {
            return Err(KernelError::shape("x", "at least one channel", shape_str(x)));
        }
        if weight_in * groups != in_channels || kernel_h == 0 || kernel_w == 0 || out_channels == 0 {
            let expected = format!(
                "shape (out_channels >= 1, {}, kernel_h >= 1, kernel_w >= 1) for x's {in_channels} channels in {groups} group(s)",
                in_channels / groups
            );
            return Err(KernelError::shape("weight", expected, shape_str(weight)));
        }
        let out_h = out_len("height", in_h, kernel_h, stride[0], padding[0], dilation[0])?;
        let out_w = out_len("width", in_w, kernel_w, stride[1], padding[1], dilation[1])?;
        let shape = ConvShape {
            batch,
            in_channels,
            in_h,
            in_w,
            out_channels,
            kernel_h,
            kernel_w,
            stride,
            padding,
            dilation,
            groups,
            out_h,
            out_w,
        };
        // Every length the kernels compute must fit (the arrays' own sizes were allocated, but
        // the column matrix and the output were not).
        let pixels = checked_product("out", out_h, out_w)?;
        checked_product("out", batch, checked_product("out", out_channels, pixels)?)?;
        checked_product("columns", shape.group_k(), pixels)?;
        Ok(shape)
    }

    /// The output's shape.
    pub fn out_shape(&self) -> [usize; 4] {
        [self.batch, self.out_channels, self.out_h, self.out_w]
    }

    /// Elements of one sample of `x`.
    fn sample_in(&self) -> usize {
        self.in_channels * self.in_h * self.in_w
    }

    /// Elements of one sample of the output.
    fn sample_out(&self) -> usize {
        self.out_channels * self.out_pixels()
    }

    fn out_pixels(&self) -> usize {
        self.out_h * self.out_w
    }

    fn in_per_group(&self) -> usize {
        self.in_channels / self.groups
    }

    fn out_per_group(&self) -> usize {
        self.out_channels / self.groups
    }

    /// Rows of a group's column matrix: one per input channel of the group and kernel tap.
    fn group_k(&self) -> usize {
        self.in_per_group() * self.kernel_h * self.kernel_w
    }

    /// Elements of the weight.
    pub fn weight_len(&self) -> usize {
        self.out_channels * self.group_k()
    }

    /// Whether the column matrix is the input itself (1×1 kernel, stride 1, no padding).
    fn pointwise(&self) -> bool {
        self.kernel_h == 1 && self.kernel_w == 1 && self.stride == [1, 1] && self.padding == [0, 0]
    }

    /// Multiply-adds of one pass (forward, weight gradient or input gradient).
    fn multiply_adds(&self) -> usize {
        self.batch.saturating_mul(self.sample_out()).saturating_mul(self.group_k())
    }

    /// Samples per chunk of the weight gradient's sum: fixed by the shape alone.
    fn samples_per_chunk(&self) -> usize {
        let chunks = (PARTIAL_ELEMENTS / (self.weight_len() + self.out_channels).max(1)).clamp(1, MAX_CHUNKS);
        self.batch.div_ceil(chunks.min(self.batch).max(1)).max(1)
    }
}

/// The element types of the convolution: a [`Float`] with two buffers per thread, for column
/// matrices and for partial sums.
pub trait ConvFloat: Float {
    /// Runs `f` with this thread's buffer `which` of `len` elements (grown if needed, never
    /// shrunk; a nested call for the same buffer gets a fresh one). Its contents are whatever
    /// the last call left.
    fn with_buffer<R>(which: Buffer, len: usize, f: impl FnOnce(&mut [Self]) -> R) -> R;

    fn with_columns<R>(len: usize, f: impl FnOnce(&mut [Self]) -> R) -> R {
        Self::with_buffer(Buffer::Columns, len, f)
    }
}

/// The buffers each thread keeps: see [`ConvFloat`].
#[derive(Clone, Copy)]
pub enum Buffer {
    Columns,
    Partials,
}

macro_rules! conv_float {
    ($t:ty, $columns:ident, $partials:ident) => {
        thread_local! {
            static $columns: Cell<Vec<$t>> = const { Cell::new(Vec::new()) };
            static $partials: Cell<Vec<$t>> = const { Cell::new(Vec::new()) };
        }
        impl ConvFloat for $t {
            fn with_buffer<R>(which: Buffer, len: usize, f: impl FnOnce(&mut [$t]) -> R) -> R {
                let key = match which {
                    Buffer::Columns => &$columns,
                    Buffer::Partials => &$partials,
                };
                let mut buffer = key.take();
                if buffer.len() < len {
                    buffer.resize(len, 0.0);
                }
                let result = f(&mut buffer[..len]);
                key.set(buffer);
                result
            }
        }
    };
}
conv_float!(f32, COLUMNS_F32, PARTIALS_F32);
conv_float!(f64, COLUMNS_F64, PARTIALS_F64);

/// The output columns `lo..hi` whose input column `ow·stride + offset` lies in `0..width`.
fn valid_range(offset: isize, stride: usize, width: usize, out_w: usize) -> (usize, usize) {
    let (s, w) = (stride as isize, width as isize);
    let lo = if offset >= 0 { 0 } else { (-offset + s - 1) / s };
    let hi = if w - offset <= 0 { 0 } else { (w - 1 - offset) / s + 1 };
    let hi = (hi as usize).min(out_w);
    ((lo as usize).min(hi), hi)
}

/// Rows and columns of the input a kernel tap `(i, j)` reads for each output pixel: `row(oh)`
/// (None in the padding) and the valid output columns with their input column offset.
struct Tap {
    row_offset: isize,
    col_offset: isize,
    lo: usize,
    hi: usize,
}

impl Tap {
    fn new(s: &ConvShape, i: usize, j: usize) -> Tap {
        let row_offset = (i * s.dilation[0]) as isize - s.padding[0] as isize;
        let col_offset = (j * s.dilation[1]) as isize - s.padding[1] as isize;
        let (lo, hi) = valid_range(col_offset, s.stride[1], s.in_w, s.out_w);
        Tap { row_offset, col_offset, lo, hi }
    }

    fn input_row(&self, s: &ConvShape, oh: usize) -> Option<usize> {
        let ih = (oh * s.stride[0]) as isize + self.row_offset;
        (ih >= 0 && (ih as usize) < s.in_h).then_some(ih as usize)
    }

    /// The input column of output column `lo` (when `lo < hi`).
    fn first_col(&self, s: &ConvShape) -> usize {
        ((self.lo * s.stride[1]) as isize + self.col_offset) as usize
    }
}

/// `columns` (group_k × out_pixels) = the patches of `x` (in_per_group × in_h × in_w): row
/// `(c, i, j)` holds, for each output pixel, the input under tap `(i, j)` of channel `c` (0 in
/// the padding).
fn im2col<T: Float>(x: &[T], columns: &mut [T], s: &ConvShape) {
    let (plane, pixels, sw) = (s.in_h * s.in_w, s.out_pixels(), s.stride[1]);
    if plane == 0 {
        columns.fill(T::zero()); // an input of no pixels: all padding
        return;
    }
    let mut rows = columns.chunks_exact_mut(pixels);
    for channel in x.chunks_exact(plane).take(s.in_per_group()) {
        for i in 0..s.kernel_h {
            for j in 0..s.kernel_w {
                let Some(row) = rows.next() else { return };
                let tap = Tap::new(s, i, j);
                for (oh, out) in row.chunks_exact_mut(s.out_w).enumerate() {
                    let Some(ih) = tap.input_row(s, oh).filter(|_| tap.lo < tap.hi) else {
                        out.fill(T::zero());
                        continue;
                    };
                    let src = &channel[ih * s.in_w..(ih + 1) * s.in_w];
                    out[..tap.lo].fill(T::zero());
                    out[tap.hi..].fill(T::zero());
                    let first = tap.first_col(s);
                    let valid = &mut out[tap.lo..tap.hi];
                    if sw == 1 {
                        valid.copy_from_slice(&src[first..first + valid.len()]);
                    } else {
                        for (o, &v) in valid.iter_mut().zip(src[first..].iter().step_by(sw)) {
                            *o = v;
                        }
                    }
                }
            }
        }
    }
}

/// `dx (in_per_group × in_h × in_w) += ` the columns scattered back to where [`im2col`] took them.
fn col2im<T: Float>(columns: &[T], dx: &mut [T], s: &ConvShape) {
    let (plane, pixels, sw) = (s.in_h * s.in_w, s.out_pixels(), s.stride[1]);
    if plane == 0 {
        return;
    }
    let mut rows = columns.chunks_exact(pixels);
    for channel in dx.chunks_exact_mut(plane).take(s.in_per_group()) {
        for i in 0..s.kernel_h {
            for j in 0..s.kernel_w {
                let Some(row) = rows.next() else { return };
                let tap = Tap::new(s, i, j);
                for (oh, out) in row.chunks_exact(s.out_w).enumerate() {
                    let Some(ih) = tap.input_row(s, oh).filter(|_| tap.lo < tap.hi) else { continue };
                    let dst = &mut channel[ih * s.in_w..(ih + 1) * s.in_w];
                    let first = tap.first_col(s);
                    let valid = &out[tap.lo..tap.hi];
                    if sw == 1 {
                        for (d, &v) in dst[first..first + valid.len()].iter_mut().zip(valid) {
                            *d += v;
                        }
                    } else {
                        for (d, &v) in dst[first..].iter_mut().step_by(sw).zip(valid) {
                            *d += v;
                        }
                    }
                }
            }
        }
    }
}

fn check_lengths<T>(
    s: &ConvShape, x: &[T], weight: &[T], bias: Option<&[T]>, out_name: &'static str, out: &[T],
) -> Result<(), KernelError> {
    check_len("x", x, checked_product("x", s.batch, s.sample_in())?)?;
    check_len("weight", weight, s.weight_len())?;
    if let Some(b) = bias {
        check_len("bias", b, s.out_channels)?;
    }
    check_len(out_name, out, s.batch * s.sample_out())
}

/// Runs `f(item)` for each of `items`, in parallel when the work pays; the first error, if any.
fn try_each<I: Send, F: Fn(I) -> Result<(), KernelError> + Sync + Send>(
    items: Vec<I>, parallel: bool, f: F,
) -> Result<(), KernelError> {
    if parallel && items.len() > 1 {
        install(|| items.into_par_iter().try_for_each(f))
    } else {
        items.into_iter().try_for_each(f)
    }
}

/// Forward pass: `out = conv2d(x, weight) + bias`, PyTorch's cross-correlation.
pub fn conv2d_forward<T: ConvFloat>(
    x: &[T], weight: &[T], bias: Option<&[T]>, out: &mut [T], s: ConvShape,
) -> Result<(), KernelError> {
    check_lengths(&s, x, weight, bias, "out", out)?;
    if out.is_empty() {
        return Ok(());
    }
    let (k, pixels, out_g) = (s.group_k(), s.out_pixels(), s.out_per_group());
    let (sample_in, in_plane) = (s.sample_in(), s.in_per_group() * s.in_h * s.in_w);
    let samples: Vec<(usize, &mut [T])> = out.chunks_exact_mut(s.sample_out()).enumerate().collect();
    let parallel = worth_parallel_above(s.multiply_adds(), PAR_MIN_MULTIPLY_ADDS);
    try_each(samples, parallel, |(n, out_n)| {
        if let Some(b) = bias {
            for (plane, &v) in out_n.chunks_exact_mut(pixels).zip(b) {
                plane.fill(v);
            }
        }
        let x_n = &x[n * sample_in..(n + 1) * sample_in];
        for (g, (y_g, w_g)) in
            out_n.chunks_exact_mut(out_g * pixels).zip(weight.chunks_exact(out_g * k)).enumerate()
        {
            let x_g = &x_n[g * in_plane..(g + 1) * in_plane];
            let w = MatRef::from_row_major_slice(w_g, out_g, k);
            if s.pointwise() {
                matmul(w, MatRef::from_row_major_slice(x_g, k, pixels), y_g, bias.is_some())?;
            } else {
                T::with_columns(k * pixels, |columns| {
                    im2col(x_g, columns, &s);
                    matmul(w, MatRef::from_row_major_slice(columns, k, pixels), y_g, bias.is_some())
                })?;
            }
        }
        Ok(())
    })
}

/// Gradients a convolution's backward pass writes; `None` skips that product.
pub struct ConvGrads<'a, T> {
    /// Like `weight`: `(+)= Σ_n grad_out_n · columns_nᵀ` per group.
    pub weight: Option<&'a mut [T]>,
    /// `out_channels`: `(+)= Σ grad_out` over samples and pixels.
    pub bias: Option<&'a mut [T]>,
    /// Whether the weight and bias gradients accumulate (PyTorch's semantics) or are overwritten.
    pub accumulate: bool,
    /// Like `x`, overwritten: `= col2im(weightᵀ · grad_out)`.
    pub input: Option<&'a mut [T]>,
}

/// One chunk of samples of the backward pass: its samples' input gradients and where its
/// partial weight and bias gradients go.
struct Chunk<'a, T> {
    first: usize,
    samples: usize,
    grad_input: Option<&'a mut [T]>,
    /// `weight_len + out_channels` elements: the weight gradient, then the bias gradient.
    partial_weight: Option<&'a mut [T]>,
    partial_bias: Option<&'a mut [T]>,
    /// Whether the first sample adds to the partial sums (the first chunk, when accumulating
    /// into the caller's gradients) or overwrites them.
    accumulate: bool,
}

/// Backward pass. Parameter gradients accumulate unless `grads.accumulate` is false; the input
/// gradient is overwritten. A batch of no samples adds nothing (or zeroes, not accumulating).
pub fn conv2d_backward<T: ConvFloat>(
    x: &[T], weight: &[T], grad_out: &[T], grads: ConvGrads<'_, T>, s: ConvShape,
) -> Result<(), KernelError> {
    check_lengths(&s, x, weight, None, "grad_output", grad_out)?;
    if let Some(gw) = &grads.weight {
        check_len("grad_weight", gw, s.weight_len())?;
    }
    if let Some(gb) = &grads.bias {
        check_len("grad_bias", gb, s.out_channels)?;
    }
    if let Some(gx) = &grads.input {
        check_len("grad_input", gx, s.batch * s.sample_in())?;
    }
    let ConvGrads { weight: gw, bias: gb, accumulate, input: gx } = grads;
    if s.batch == 0 {
        if !accumulate {
            gw.into_iter().chain(gb).for_each(|g| g.fill(T::zero()));
        }
        return Ok(());
    }
    let (mut gw, mut gb) = (gw, gb);
    let wants_params = gw.is_some() || gb.is_some();
    // Without parameter gradients there is nothing to sum: every sample is its own chunk.
    let per_chunk = if wants_params { s.samples_per_chunk() } else { 1 };
    let chunk_count = s.batch.div_ceil(per_chunk);
    let weight_len = s.weight_len();
    let partial_len = weight_len + s.out_channels;
    // Chunks 1.. sum into partial sums, overwritten by their first sample (no zeroing).
    let partials_len = if wants_params { (chunk_count - 1) * partial_len } else { 0 };
    T::with_buffer(Buffer::Partials, partials_len, |partials| {
        let mut chunks: Vec<Chunk<'_, T>> = Vec::with_capacity(chunk_count);
        let mut gx_chunks = gx.map(|g| g.chunks_mut((per_chunk * s.sample_in()).max(1)));
        let mut partial_chunks = partials.chunks_exact_mut(partial_len);
        let (wants_weight, wants_bias) = (gw.is_some(), gb.is_some());
        let (mut first_weight, mut first_bias) = (gw.as_deref_mut(), gb.as_deref_mut());
        for c in 0..chunk_count {
            let first = c * per_chunk;
            let grad_input = gx_chunks.as_mut().and_then(Iterator::next);
            let (partial_weight, partial_bias, accumulate) = if c == 0 {
                (first_weight.take(), first_bias.take(), accumulate)
            } else {
                match partial_chunks.next() {
                    Some(p) => {
                        let (w, b) = p.split_at_mut(weight_len);
                        (wants_weight.then_some(w), wants_bias.then_some(b), false)
                    }
                    None => (None, None, false),
                }
            };
            let samples = per_chunk.min(s.batch - first);
            chunks.push(Chunk { first, samples, grad_input, partial_weight, partial_bias, accumulate });
        }
        let passes =
            usize::from(wants_weight) + usize::from(chunks.first().is_some_and(|c| c.grad_input.is_some()));
        let parallel = worth_parallel_above(s.multiply_adds().saturating_mul(passes), PAR_MIN_MULTIPLY_ADDS);
        try_each(chunks, parallel, |chunk| backward_chunk(x, weight, grad_out, chunk, &s))?;
        // The chunks' partial sums, added to the first chunk's in chunk order.
        for p in partials.chunks_exact(partial_len) {
            let (w, b) = p.split_at(weight_len);
            for (target, part) in [(gw.as_deref_mut(), w), (gb.as_deref_mut(), b)] {
                if let Some(target) = target {
                    target.iter_mut().zip(part).for_each(|(t, &v)| *t += v);
                }
            }
        }
        Ok(())
    })
}

/// The samples of one chunk: their weight and bias gradients summed in `chunk`'s partial sums,
/// their input gradients written.
fn backward_chunk<T: ConvFloat>(
    x: &[T], weight: &[T], grad_out: &[T], chunk: Chunk<'_, T>, s: &ConvShape,
) -> Result<(), KernelError> {
    let (k, pixels, out_g, sample_in) = (s.group_k(), s.out_pixels(), s.out_per_group(), s.sample_in());
    let in_plane = s.in_per_group() * s.in_h * s.in_w;
    let Chunk { first, samples, mut grad_input, mut partial_weight, mut partial_bias, accumulate } = chunk;
    for n in first..first + samples {
        let add = accumulate || n > first;
        let x_n = &x[n * sample_in..(n + 1) * sample_in];
        let dy_n = &grad_out[n * s.sample_out()..(n + 1) * s.sample_out()];
        if let Some(gb) = partial_bias.as_deref_mut() {
            for (acc, plane) in gb.iter_mut().zip(dy_n.chunks_exact(pixels)) {
                *acc = if add { *acc + sum(plane) } else { sum(plane) };
            }
        }
        let mut dx_n = grad_input.as_deref_mut().map(|g| {
            let local = n - first;
            let dx = &mut g[local * sample_in..(local + 1) * sample_in];
            if !s.pointwise() {
                dx.fill(T::zero());
            }
            dx
        });
        for g in 0..s.groups {
            let x_g = &x_n[g * in_plane..(g + 1) * in_plane];
            let dy = MatRef::from_row_major_slice(
                &dy_n[g * out_g * pixels..(g + 1) * out_g * pixels],
                out_g,
                pixels,
            );
            let w = MatRef::from_row_major_slice(&weight[g * out_g * k..(g + 1) * out_g * k], out_g, k);
            let dw_g = partial_weight.as_deref_mut().map(|gw| &mut gw[g * out_g * k..(g + 1) * out_g * k]);
            let dx_g = dx_n.as_deref_mut().map(|dx| &mut dx[g * in_plane..(g + 1) * in_plane]);
            if s.pointwise() {
                if let Some(dw) = dw_g {
                    matmul(dy, MatRef::from_row_major_slice(x_g, k, pixels).transpose(), dw, add)?;
                }
                if let Some(dx) = dx_g {
                    matmul(w.transpose(), dy, dx, false)?;
                }
                continue;
            }
            T::with_columns(k * pixels, |columns| {
                if let Some(dw) = dw_g {
                    im2col(x_g, columns, s);
                    matmul(dy, MatRef::from_row_major_slice(columns, k, pixels).transpose(), dw, add)?;
                }
                if let Some(dx) = dx_g {
                    matmul(w.transpose(), dy, columns, false)?;
                    col2im(columns, dx, s);
                }
                Ok::<(), KernelError>(())
            })?;
        }
    }
    Ok(())
}

/// The sum of `values` in eight lanes, then the lanes in order: vectorizes, and is the same
/// on every call.
fn sum<T: Float>(values: &[T]) -> T {
    let mut lanes = [T::zero(); 8];
    let mut blocks = values.chunks_exact(8);
    for block in &mut blocks {
        for (lane, &v) in lanes.iter_mut().zip(block) {
            *lane += v;
        }
    }
    let tail: T = blocks.remainder().iter().copied().fold(T::zero(), |a, v| a + v);
    lanes.iter().copied().fold(T::zero(), |a, v| a + v) + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matmul::tests::data;

    /// `conv2d(x, w)` by direct loops over every output pixel and tap.
    fn naive(x: &[f64], w: &[f64], s: &ConvShape) -> Vec<f64> {
        let (cg, og) = (s.in_per_group(), s.out_per_group());
        let mut out = vec![0.0; s.batch * s.sample_out()];
        for n in 0..s.batch {
            for o in 0..s.out_channels {
                let g = o / og;
                for oh in 0..s.out_h {
                    for ow in 0..s.out_w {
                        let mut acc = 0.0;
                        for c in 0..cg {
                            for i in 0..s.kernel_h {
                                for j in 0..s.kernel_w {
                                    let ih = (oh * s.stride[0] + i * s.dilation[0]) as isize
                                        - s.padding[0] as isize;
                                    let iw = (ow * s.stride[1] + j * s.dilation[1]) as isize
                                        - s.padding[1] as isize;
                                    if ih < 0 || iw < 0 || ih as usize >= s.in_h || iw as usize >= s.in_w {
                                        continue;
                                    }
                                    let xi = ((n * s.in_channels + g * cg + c) * s.in_h + ih as usize)
                                        * s.in_w
                                        + iw as usize;
                                    let wi = ((o * cg + c) * s.kernel_h + i) * s.kernel_w + j;
                                    acc += x[xi] * w[wi];
                                }
                            }
                        }
                        out[((n * s.out_channels + o) * s.out_h + oh) * s.out_w + ow] = acc;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn forward_and_backward_match_direct_loops() {
        let geometries = [
            ([2, 4, 7, 6], [6, 2, 3, 2], [2, 1], [1, 2], [1, 2], 2),
            ([3, 2, 5, 5], [3, 2, 1, 1], [1, 1], [0, 0], [1, 1], 1),
            ([1, 1, 3, 3], [2, 1, 3, 3], [1, 1], [0, 0], [1, 1], 1),
        ];
        for (xs, ws, stride, padding, dilation, groups) in geometries {
            let s = ConvShape::of(&xs, &ws, stride, padding, dilation, groups).unwrap();
            let (x, w) = (data(xs.iter().product(), 0.5), data(ws.iter().product(), 1.5));
            let mut out = vec![f64::NAN; s.batch * s.sample_out()];
            conv2d_forward(&x, &w, None, &mut out, s).unwrap();
            let expected = naive(&x, &w, &s);
            assert!(out.iter().zip(&expected).all(|(a, e)| (a - e).abs() < 1e-12));
            // The gradients are the adjoints: <dy, conv(x, w)> is linear in each.
            let dy = data(out.len(), 2.5);
            let (mut gw, mut gx) = (vec![0.0; w.len()], vec![f64::NAN; x.len()]);
            let grads =
                ConvGrads { weight: Some(&mut gw), bias: None, input: Some(&mut gx), accumulate: false };
            conv2d_backward(&x, &w, &dy, grads, s).unwrap();
            let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(a, b)| a * b).sum::<f64>();
            let lhs = dot(&dy, &expected);
            assert!((dot(&gw, &w) - lhs).abs() < 1e-10 * lhs.abs().max(1.0));
            assert!((dot(&gx, &x) - lhs).abs() < 1e-10 * lhs.abs().max(1.0));
        }
    }

    #[test]
    fn bad_geometry_is_an_error_not_a_panic() {
        let of = |x: &[usize], w: &[usize], stride, padding, dilation, groups| {
            ConvShape::of(x, w, stride, padding, dilation, groups).map(|_| ())
        };
        assert!(of(&[1, 2, 3, 3], &[1, 2, 3, 3], [1, 1], [0, 0], [1, 1], 1).is_ok());
        assert!(of(&[1, 2, 3, 3], &[1, 2, 4, 3], [1, 1], [0, 0], [1, 1], 1).is_err());
        assert!(of(&[1, 2, 3, 3], &[1, 2, 3, 3], [0, 1], [0, 0], [1, 1], 1).is_err());
        assert!(of(&[1, 2, 3, 3], &[1, 2, 3, 3], [1, 1], [-1, 0], [1, 1], 1).is_err());
        assert!(of(&[1, 2, 3, 3], &[1, 1, 3, 3], [1, 1], [0, 0], [1, 1], 2).is_err());
        assert!(of(&[1, 2, 3, 3], &[1, 2, 3, 3], [1, 1], [i64::MAX, 0], [1, 1], 1).is_err());
        assert!(of(&[1, 2, 3], &[1, 2, 3, 3], [1, 1], [0, 0], [1, 1], 1).is_err());
        let s = ConvShape::of(&[0, 1, 2, 2], &[1, 1, 1, 1], [1, 1], [0, 0], [1, 1], 1).unwrap();
        conv2d_forward::<f32>(&[], &[1.0], Some(&[1.0]), &mut [], s).unwrap();
        let mut gw = [3.0f32];
        let grads = ConvGrads { weight: Some(&mut gw), bias: None, input: Some(&mut []), accumulate: false };
        conv2d_backward::<f32>(&[], &[1.0], &[], grads, s).unwrap();
        assert_eq!(gw, [0.0]);
    }
}
