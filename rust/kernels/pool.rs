//! 2-D pooling on NCHW arrays: max pooling (which records where each maximum came from, for its
//! backward pass and the R-operator), average pooling, and adaptive average pooling, with
//! PyTorch's semantics (`ceil_mode=False`; average pooling counts the padding in its divisor).
//!
//! Each `N·C` plane is pooled on its own, so the planes are split among the threads and every
//! output element is computed the same way whatever the thread count: results are bit-identical.
//! Backward passes scatter into disjoint planes of the input gradient, so they need no atomics.

use crate::error::{dims, shape_str};
use crate::parallel::{install, worth_parallel_above};
use crate::{Float, KernelError};
use multiversion::multiversion;
use rayon::prelude::*;

/// Input elements per task: big enough to amortize a task, small enough to balance two threads.
const ELEMENTS_PER_TASK: usize = 16 * 1024;
/// Input elements from which a pooling pass runs on several threads: from two tasks on. On 2
/// cores shared with other work, two threads ran average pooling's forward and backward on 32k
/// elements 1.7 times as fast as one (median of 30); max pooling's from 128k elements, best
/// times 1.7-1.8 times; below, the results were a tie within the noise.
const PAR_MIN_POOL_ELEMENTS: usize = 2 * ELEMENTS_PER_TASK;

/// The geometry of a pooling: `x` is `(batch, channels, height, width)`, the output
/// `(batch, channels, out_height, out_width)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pool2d {
    pub batch: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub out_height: usize,
    pub out_width: usize,
}

fn pair_str(p: [usize; 2]) -> String {
    format!("({}, {})", p[0], p[1])
}

impl Pool2d {
    /// The pooling of an input of shape `x` (named `name` in errors) with `kernel`, `stride` and
    /// `padding` (each (height, width)). Errors: `x` not 4-D, a zero kernel or stride, padding
    /// over half the kernel (PyTorch's rule), a kernel larger than the padded input.
    pub fn new(
        name: &'static str, x: &[usize], kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2],
    ) -> Result<Pool2d, KernelError> {
        let [batch, channels, height, width] = nchw(name, x)?;
        if kernel.contains(&0) {
            return Err(KernelError::value(
                "kernel_size",
                format!("must be positive, got {}", pair_str(kernel)),
            ));
        }
        if stride.contains(&0) {
            return Err(KernelError::value("stride", format!("must be positive, got {}", pair_str(stride))));
        }
        if padding[0] > kernel[0] / 2 || padding[1] > kernel[1] / 2 {
            return Err(KernelError::value(
                "padding",
                format!(
                    "must be at most half of kernel_size {}, got {}",
                    pair_str(kernel),
                    pair_str(padding)
                ),
            ));
        }
        // `padding <= kernel / 2`, and a kernel size fits in memory, so these cannot overflow
        // unless the input's own dimensions are absurd: checked all the same.
        let padded = |size: usize, pad: usize| pad.checked_mul(2).and_then(|p| size.checked_add(p));
        let (Some(padded_h), Some(padded_w)) = (padded(height, padding[0]), padded(width, padding[1])) else {
            return Err(KernelError::shape(name, "a size that fits in memory", shape_str(x)));
        };
        if kernel[0] > padded_h || kernel[1] > padded_w {
            return Err(KernelError::value(
                "kernel_size",
                format!(
                    "{} is larger than the padded input: {name} has (height, width) ({height}, {width}), \
                     padded by {} on each side",
                    pair_str(kernel),
                    pair_str(padding)
                ),
            ));
        }
        Ok(Pool2d {
            batch,
            channels,
            height,
            width,
            kernel,
            stride,
            padding,
            out_height: (padded_h - kernel[0]) / stride[0] + 1,
            out_width: (padded_w - kernel[1]) / stride[1] + 1,
        })
    }

    /// The output's shape `(batch, channels, out_height, out_width)`.
    pub fn out_shape(&self) -> [usize; 4] {
        [self.batch, self.channels, self.out_height, self.out_width]
    }

    fn planes(&self) -> usize {
        self.batch * self.channels
    }

    fn in_plane(&self) -> usize {
        self.height * self.width
    }

    fn out_plane(&self) -> usize {
        self.out_height * self.out_width
    }

    /// The input rows (or columns, `axis` 1) under output row `o`: `[start, end)` clipped to the
    /// input (the padding holds nothing).
    #[inline(always)]
    fn window(&self, axis: usize, o: usize) -> (usize, usize) {
        let size = if axis == 0 { self.height } else { self.width };
        let start = o * self.stride[axis];
        let (start, end) =
            (start.saturating_sub(self.padding[axis]), start + self.kernel[axis] - self.padding[axis]);
        (start, end.min(size))
    }

    fn sizes(&self) -> Pool2dSizes {
        Pool2dSizes { planes: self.planes(), in_plane: self.in_plane(), out_plane: self.out_plane() }
    }

    /// Whether the windows are 2 × 2 side by side, the most common pooling, which has its own
    /// loops (no window clipping, so they vectorize).
    fn is_2x2(&self) -> bool {
        self.kernel == [2, 2] && self.stride == [2, 2] && self.padding == [0, 0]
    }
}

fn check_len_n(name: &'static str, len: usize, expected: usize) -> Result<(), KernelError> {
    if len == expected {
        Ok(())
    } else {
        Err(KernelError::shape(name, format!("{expected} elements"), format!("{len} elements")))
    }
}

/// The four dimensions of an NCHW array, or an error naming it.
pub fn nchw(name: &str, shape: &[usize]) -> Result<[usize; 4], KernelError> {
    if shape.len() != 4 {
        return Err(KernelError::Message(format!(
            "{name} must be 4-dimensional (batch, channels, height, width), got shape {}",
            shape_str(shape)
        )));
    }
    let [batch, channels, height, width] = dims::<4>(name, shape)?;
    if channels == 0 || height == 0 || width == 0 {
        return Err(KernelError::Message(format!(
            "{name} must have at least one channel, row and column (only the batch may be empty), got shape {}",
            shape_str(shape)
        )));
    }
    Ok([batch, channels, height, width])
}

/// How many planes one task pools: about [`ELEMENTS_PER_TASK`] elements of the larger side.
fn planes_per_task(p: &Pool2dSizes) -> usize {
    (ELEMENTS_PER_TASK / p.in_plane.max(p.out_plane).max(1)).max(1)
}

/// The plane sizes a pass walks: `planes` planes of `in_plane` input and `out_plane` output
/// elements.
struct Pool2dSizes {
    planes: usize,
    in_plane: usize,
    out_plane: usize,
}

/// Calls `f(first_plane, piece)` for each piece of the writable arguments (a group of whole
/// planes, cut by the caller with [`planes_per_task`]), on several threads when the pass is
/// large. A plane is always pooled whole by one call, so any split gives the same bits.
fn for_each_group<W: Send>(
    sizes: &Pool2dSizes, pieces: impl Iterator<Item = W>, f: impl Fn(usize, W) + Sync + Send,
) {
    let per_task = planes_per_task(sizes);
    let work = sizes.planes.saturating_mul(sizes.in_plane.max(sizes.out_plane));
    let pieces = pieces.enumerate().map(|(g, w)| (g * per_task, w));
    if sizes.planes > per_task && worth_parallel_above(work, PAR_MIN_POOL_ELEMENTS) {
        let pieces: Vec<(usize, W)> = pieces.collect();
        install(|| pieces.into_par_iter().for_each(|(first, w)| f(first, w)));
    } else {
        pieces.for_each(|(first, w)| f(first, w));
    }
}

impl Pool2dSizes {
    /// Checks the lengths of an input-shaped slice (`input`: name, length) and of output-shaped
    /// ones.
    fn check(
        &self, input: (&'static str, usize), outputs: &[(&'static str, usize)],
    ) -> Result<(), KernelError> {
        let too_big = |name| KernelError::shape(name, "a size that fits in memory", "more");
        let in_len = self.planes.checked_mul(self.in_plane).ok_or_else(|| too_big(input.0))?;
        check_len_n(input.0, input.1, in_len)?;
        for &(name, len) in outputs {
            let out_len = self.planes.checked_mul(self.out_plane).ok_or_else(|| too_big(name))?;
            check_len_n(name, len, out_len)?;
        }
        Ok(())
    }
}

/// Max pooling forward: `out` is the maximum of each window (the padding is -inf), `indices`
/// where in its input plane it is, as the flat index `h · width + w` (PyTorch's
/// `return_indices`). Ties pick the first maximum in row-major order; a NaN in a window is its
/// maximum (the last NaN, as in PyTorch).
pub fn max_pool2d_forward<T: Float>(
    x: &[T], out: &mut [T], indices: &mut [i64], p: &Pool2d,
) -> Result<(), KernelError> {
    let sizes = p.sizes();
    sizes.check(("x", x.len()), &[("out", out.len()), ("indices", indices.len())])?;
    let per_task = planes_per_task(&sizes);
    let pieces =
        out.chunks_mut(per_task * sizes.out_plane).zip(indices.chunks_mut(per_task * sizes.out_plane));
    for_each_group(&sizes, pieces, |first, (out, indices)| {
        let x = &x[first * sizes.in_plane..];
        max_planes(p, x, out, indices);
    });
    Ok(())
}

/// Max pooling of the planes of `out` (and `indices`) from the first planes of `x`: one call
/// per task, so that the instruction set is chosen once, not per plane.
#[multiversion(targets("x86_64+avx2+fma+avx512f+avx512vl+avx512dq+avx512bw", "x86_64+avx2+fma"))]
fn max_planes<T: Float>(p: &Pool2d, x: &[T], out: &mut [T], indices: &mut [i64]) {
    let (in_plane, out_plane) = (p.height * p.width, p.out_height * p.out_width);
    let planes = out.chunks_exact_mut(out_plane).zip(indices.chunks_exact_mut(out_plane));
    let two_by_two = p.is_2x2();
    for ((out, indices), x) in planes.zip(x.chunks_exact(in_plane)) {
        if two_by_two {
            max_plane_2x2(p, x, out, indices);
        } else {
            max_plane(p, x, out, indices);
        }
    }
}

/// Whether `v` replaces `best` as a window's maximum: PyTorch's `v > best || isnan(v)` (a NaN is
/// taken, and kept unless another NaN follows: the last NaN). Without short-circuit, so that
/// the callers' updates compile to selects: on random data a branch mispredicts half the time.
#[inline(always)]
fn replaces<T: Float>(v: T, best: T) -> bool {
    (v > best) | v.is_nan()
}

#[inline(always)]
fn max_plane<T: Float>(p: &Pool2d, x: &[T], out: &mut [T], indices: &mut [i64]) {
    let width = p.width;
    for oh in 0..p.out_height {
        let (h0, h1) = p.window(0, oh);
        let (out, indices) = (&mut out[oh * p.out_width..], &mut indices[oh * p.out_width..]);
        for ow in 0..p.out_width {
            let (w0, w1) = p.window(1, ow);
            // The first element of the window starts as the maximum: PyTorch starts from -inf
            // at the first position, which gives the same value and position.
            let (mut best, mut at) = (x[h0 * width + w0], h0 * width + w0);
            for h in h0..h1 {
                for (w, &v) in x[h * width..h * width + w1].iter().enumerate().skip(w0) {
                    let take = replaces(v, best);
                    (best, at) = if take { (v, h * width + w) } else { (best, at) };
                }
            }
            out[ow] = best;
            indices[ow] = at as i64;
        }
    }
}

/// [`max_plane`] for the most common pooling, 2 × 2 windows side by side: no window clipping,
/// and the four candidates compared in PyTorch's order, so that the loop vectorizes.
#[inline(always)]
fn max_plane_2x2<T: Float>(p: &Pool2d, x: &[T], out: &mut [T], indices: &mut [i64]) {
    let (width, out_width) = (p.width, p.out_width);
    let rows = out.chunks_exact_mut(out_width).zip(indices.chunks_exact_mut(out_width));
    for (oh, (out, indices)) in rows.enumerate().take(p.out_height) {
        let top = 2 * oh * width;
        let (upper, lower) = (&x[top..top + 2 * out_width], &x[top + width..top + width + 2 * out_width]);
        let step = width as i64;
        // Indexing, not `chunks_exact(2)`: this form compiles to selects and vectorizes, the
        // iterator form to branches (4 times slower on random data).
        for (ow, (o, at)) in out.iter_mut().zip(indices.iter_mut()).enumerate() {
            let (a, b, c, d) = (upper[2 * ow], upper[2 * ow + 1], lower[2 * ow], lower[2 * ow + 1]);
            let (mut best, mut offset) = (a, 0i64);
            (best, offset) = if replaces(b, best) { (b, 1) } else { (best, offset) };
            (best, offset) = if replaces(c, best) { (c, step) } else { (best, offset) };
            (best, offset) = if replaces(d, best) { (d, step + 1) } else { (best, offset) };
            *o = best;
            *at = (top + 2 * ow) as i64 + offset;
        }
    }
}

/// Max pooling backward: `grad_input` (overwritten) is zero except where a maximum came from,
/// which receives the sum of the gradients of the outputs it was the maximum of. `indices` are
/// those [`max_pool2d_forward`] recorded; each must be in `[0, height · width)`.
pub fn max_pool2d_backward<T: Float>(
    grad_output: &[T], indices: &[i64], grad_input: &mut [T], planes: usize, in_plane: usize,
    out_plane: usize,
) -> Result<(), KernelError> {
    if in_plane == 0 || out_plane == 0 {
        return Err(KernelError::Message("a pooled plane must have at least one element".into()));
    }
    let sizes = Pool2dSizes { planes, in_plane, out_plane };
    sizes.check(
        ("grad_input", grad_input.len()),
        &[("grad_output", grad_output.len()), ("indices", indices.len())],
    )?;
    if let Some((i, &at)) =
        indices.iter().enumerate().find(|&(_, &at)| at < 0 || at as u64 >= in_plane as u64)
    {
        return Err(KernelError::value(
            "indices",
            format!("must be in [0, {in_plane}) (positions in a plane of the input), got {at} at flat position {i}"),
        ));
    }
    let per_task = planes_per_task(&sizes);
    for_each_group(&sizes, grad_input.chunks_mut(per_task * in_plane), |first, grad_input| {
        let (grad_output, indices) = (&grad_output[first * out_plane..], &indices[first * out_plane..]);
        for (plane, grad_input) in grad_input.chunks_exact_mut(in_plane).enumerate() {
            grad_input.fill(T::zero());
            let range = plane * out_plane..(plane + 1) * out_plane;
            for (&g, &at) in grad_output[range.clone()].iter().zip(&indices[range]) {
                grad_input[at as usize] += g;
            }
        }
    });
    Ok(())
}

/// Average pooling forward: each window's sum over the input divided by the kernel's area (the
/// padding counts as zeros: PyTorch's `count_include_pad=True`).
pub fn avg_pool2d_forward<T: Float>(x: &[T], out: &mut [T], p: &Pool2d) -> Result<(), KernelError> {
    let sizes = p.sizes();
    sizes.check(("x", x.len()), &[("out", out.len())])?;
    let area = T::from_f64((p.kernel[0] * p.kernel[1]) as f64);
    let per_task = planes_per_task(&sizes);
    for_each_group(&sizes, out.chunks_mut(per_task * sizes.out_plane), |first, out| {
        let x = &x[first * sizes.in_plane..];
        if p.is_2x2() {
            return avg_planes_2x2(p, x, out);
        }
        for (plane, out) in out.chunks_exact_mut(sizes.out_plane).enumerate() {
            let x = &x[plane * sizes.in_plane..(plane + 1) * sizes.in_plane];
            for oh in 0..p.out_height {
                let (h0, h1) = p.window(0, oh);
                for ow in 0..p.out_width {
                    let (w0, w1) = p.window(1, ow);
                    let mut sum = T::zero();
                    for h in h0..h1 {
                        for &v in &x[h * p.width + w0..h * p.width + w1] {
                            sum += v;
                        }
                    }
                    out[oh * p.out_width + ow] = sum / area;
                }
            }
        }
    });
    Ok(())
}

/// Average pooling backward: `grad_input` (overwritten) receives each output's gradient divided
/// by the kernel's area, over the output's window.
pub fn avg_pool2d_backward<T: Float>(
    grad_output: &[T], grad_input: &mut [T], p: &Pool2d,
) -> Result<(), KernelError> {
    let sizes = p.sizes();
    sizes.check(("grad_input", grad_input.len()), &[("grad_output", grad_output.len())])?;
    let area = T::from_f64((p.kernel[0] * p.kernel[1]) as f64);
    let per_task = planes_per_task(&sizes);
    for_each_group(&sizes, grad_input.chunks_mut(per_task * sizes.in_plane), |first, grad_input| {
        let grad_output = &grad_output[first * sizes.out_plane..];
        if p.is_2x2() {
            return avg_backward_planes_2x2(p, grad_output, grad_input);
        }
        for (plane, grad_input) in grad_input.chunks_exact_mut(sizes.in_plane).enumerate() {
            grad_input.fill(T::zero());
            let grad_output = &grad_output[plane * sizes.out_plane..(plane + 1) * sizes.out_plane];
            for oh in 0..p.out_height {
                let (h0, h1) = p.window(0, oh);
                for ow in 0..p.out_width {
                    let (w0, w1) = p.window(1, ow);
                    let share = grad_output[oh * p.out_width + ow] / area;
                    for h in h0..h1 {
                        for g in &mut grad_input[h * p.width + w0..h * p.width + w1] {
                            *g += share;
                        }
                    }
                }
            }
        }
    });
    Ok(())
}

/// Average pooling of 2 × 2 windows side by side, for the planes of `out`: the four terms added
/// from zero in PyTorch's order (the same bits), in a loop over a row of outputs that vectorizes.
#[multiversion(targets("x86_64+avx2+fma+avx512f+avx512vl+avx512dq+avx512bw", "x86_64+avx2+fma"))]
fn avg_planes_2x2<T: Float>(p: &Pool2d, x: &[T], out: &mut [T]) {
    let (width, out_width) = (p.width, p.out_width);
    let four = T::from_f64(4.0);
    let planes = out.chunks_exact_mut(p.out_height * out_width).zip(x.chunks_exact(p.height * width));
    for (out, x) in planes {
        for (oh, out) in out.chunks_exact_mut(out_width).enumerate() {
            let top = 2 * oh * width;
            let (upper, lower) = (&x[top..top + 2 * out_width], &x[top + width..top + width + 2 * out_width]);
            for (ow, o) in out.iter_mut().enumerate() {
                let sum = T::zero() + upper[2 * ow] + upper[2 * ow + 1] + lower[2 * ow] + lower[2 * ow + 1];
                *o = sum / four;
            }
        }
    }
}

/// [`avg_planes_2x2`]' backward pass: each input under a window takes a quarter of its output's
/// gradient; a last odd row or column, under none, takes zero.
#[multiversion(targets("x86_64+avx2+fma+avx512f+avx512vl+avx512dq+avx512bw", "x86_64+avx2+fma"))]
fn avg_backward_planes_2x2<T: Float>(p: &Pool2d, grad_output: &[T], grad_input: &mut [T]) {
    let (width, out_width) = (p.width, p.out_width);
    let four = T::from_f64(4.0);
    let planes =
        grad_input.chunks_exact_mut(p.height * width).zip(grad_output.chunks_exact(p.out_height * out_width));
    for (grad_input, grad_output) in planes {
        if p.height % 2 == 1 || width % 2 == 1 {
            grad_input.fill(T::zero());
        }
        for (oh, grads) in grad_output.chunks_exact(out_width).enumerate() {
            let rows = &mut grad_input[2 * oh * width..(2 * oh + 2) * width];
            let (upper, lower) = rows.split_at_mut(width);
            for (ow, &g) in grads.iter().enumerate() {
                let share = g / four;
                upper[2 * ow] = share;
                upper[2 * ow + 1] = share;
                lower[2 * ow] = share;
                lower[2 * ow + 1] = share;
            }
        }
    }
}

/// The geometry of an adaptive average pooling of `(batch, channels, height, width)` to
/// `(batch, channels, out_height, out_width)`: output row `i` averages the input rows
/// `[floor(i · height / out_height), ceil((i + 1) · height / out_height))`, as in PyTorch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdaptivePool2d {
    pub batch: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub out_height: usize,
    pub out_width: usize,
}

impl AdaptivePool2d {
    /// From the shapes of the input (`input`, named so in errors) and the output (`output`).
    pub fn new(
        input: (&'static str, &[usize]), output: (&'static str, &[usize]),
    ) -> Result<AdaptivePool2d, KernelError> {
        let [batch, channels, height, width] = nchw(input.0, input.1)?;
        let [out_batch, out_channels, out_height, out_width] = nchw(output.0, output.1)?;
        if (out_batch, out_channels) != (batch, channels) {
            let expected = format!("the batch and channels of {} ({batch}, {channels}, ...)", input.0);
            return Err(KernelError::shape(output.0, expected, shape_str(output.1)));
        }
        Ok(AdaptivePool2d { batch, channels, height, width, out_height, out_width })
    }

    fn sizes(&self) -> Pool2dSizes {
        Pool2dSizes {
            planes: self.batch * self.channels,
            in_plane: self.height * self.width,
            out_plane: self.out_height * self.out_width,
        }
    }
}

/// PyTorch's adaptive window `[start, end)` of output index `o` of `outputs` over `inputs`:
/// `floor(o · inputs / outputs)` to `ceil((o + 1) · inputs / outputs)`, without overflow.
#[inline(always)]
fn adaptive_window(o: usize, outputs: usize, inputs: usize) -> (usize, usize) {
    let start = (o / outputs) * inputs + ((o % outputs) * inputs) / outputs;
    let end = 1 + ((o + 1) * inputs - 1) / outputs;
    (start, end)
}

/// Adaptive average pooling forward: each window's mean (its sum divided by its height, then
/// by its width, as PyTorch rounds it). An output of size 1 × 1 is global average pooling:
/// each plane's sum in interleaved lanes divided by its size (PyTorch takes a mean there too).
pub fn adaptive_avg_pool2d_forward<T: Float>(
    x: &[T], out: &mut [T], p: &AdaptivePool2d,
) -> Result<(), KernelError> {
    let sizes = p.sizes();
    sizes.check(("x", x.len()), &[("out", out.len())])?;
    let per_task = planes_per_task(&sizes);
    let global = p.out_height == 1 && p.out_width == 1;
    for_each_group(&sizes, out.chunks_mut(per_task * sizes.out_plane), |first, out| {
        let x = &x[first * sizes.in_plane..];
        if global {
            return plane_means(&x[..out.len() * sizes.in_plane], out);
        }
        for (plane, out) in out.chunks_exact_mut(sizes.out_plane).enumerate() {
            let x = &x[plane * sizes.in_plane..(plane + 1) * sizes.in_plane];
            for oh in 0..p.out_height {
                let (h0, h1) = adaptive_window(oh, p.out_height, p.height);
                let rows = T::from_f64((h1 - h0) as f64);
                for ow in 0..p.out_width {
                    let (w0, w1) = adaptive_window(ow, p.out_width, p.width);
                    let mut sum = T::zero();
                    for h in h0..h1 {
                        for &v in &x[h * p.width + w0..h * p.width + w1] {
                            sum += v;
                        }
                    }
                    out[oh * p.out_width + ow] = sum / rows / T::from_f64((w1 - w0) as f64);
                }
            }
        }
    });
    Ok(())
}

/// The mean of each of the `out.len()` planes of `x` (global average pooling), summed in
/// interleaved lanes then added in order: a vectorized sum, where one running sum is bound by
/// the latency of each addition (PyTorch's global pooling is a vectorized mean too). Small
/// planes (7 × 7 at the end of a ResNet) take fewer lanes, so that they fill some.
#[multiversion(targets("x86_64+avx2+fma+avx512f+avx512vl+avx512dq+avx512bw", "x86_64+avx2+fma"))]
fn plane_means<T: Float>(x: &[T], out: &mut [T]) {
    let plane = (x.len() / out.len().max(1)).max(1);
    let count = T::from_f64(plane as f64);
    for (mean, x) in out.iter_mut().zip(x.chunks_exact(plane)) {
        let sum = if plane >= 256 { lane_sum::<T, 64>(x) } else { lane_sum::<T, 8>(x) };
        *mean = sum / count;
    }
}

/// `Σ x` in `N` interleaved lanes (`N` multiple of a vector), then the lanes and the rest in order.
#[inline(always)]
fn lane_sum<T: Float, const N: usize>(x: &[T]) -> T {
    let mut lanes = [T::zero(); N];
    let blocks = x.chunks_exact(N);
    let rest = blocks.remainder().iter().fold(T::zero(), |a, &v| a + v);
    for block in blocks {
        for (acc, &v) in lanes.iter_mut().zip(block) {
            *acc += v;
        }
    }
    lanes.iter().fold(T::zero(), |a, &v| a + v) + rest
}

/// Adaptive average pooling backward: `grad_input` (overwritten) receives each output's
/// gradient divided by its window's height and width, over the window (by the plane's size
/// for global average pooling, as PyTorch's mean).
pub fn adaptive_avg_pool2d_backward<T: Float>(
    grad_output: &[T], grad_input: &mut [T], p: &AdaptivePool2d,
) -> Result<(), KernelError> {
    let sizes = p.sizes();
    sizes.check(("grad_input", grad_input.len()), &[("grad_output", grad_output.len())])?;
    let global = p.out_height == 1 && p.out_width == 1;
    let per_task = planes_per_task(&sizes);
    for_each_group(&sizes, grad_input.chunks_mut(per_task * sizes.in_plane), |first, grad_input| {
        let grad_output = &grad_output[first * sizes.out_plane..];
        if global {
            let count = T::from_f64(sizes.in_plane as f64);
            for (grad_input, &g) in grad_input.chunks_exact_mut(sizes.in_plane).zip(grad_output) {
                grad_input.fill(g / count);
            }
            return;
        }
        for (plane, grad_input) in grad_input.chunks_exact_mut(sizes.in_plane).enumerate() {
            grad_input.fill(T::zero());
            let grad_output = &grad_output[plane * sizes.out_plane..(plane + 1) * sizes.out_plane];
            for oh in 0..p.out_height {
                let (h0, h1) = adaptive_window(oh, p.out_height, p.height);
                let rows = T::from_f64((h1 - h0) as f64);
                for ow in 0..p.out_width {
                    let (w0, w1) = adaptive_window(ow, p.out_width, p.width);
                    let share = grad_output[oh * p.out_width + ow] / rows / T::from_f64((w1 - w0) as f64);
                    for h in h0..h1 {
                        for g in &mut grad_input[h * p.width + w0..h * p.width + w1] {
                            *g += share;
                        }
                    }
                }
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(x: &[usize], kernel: usize, stride: usize, padding: usize) -> Result<Pool2d, KernelError> {
        Pool2d::new("x", x, [kernel; 2], [stride; 2], [padding; 2])
    }

    #[test]
    fn max_pooling_picks_the_first_maximum_and_propagates_nan() {
        let nan = f64::NAN;
        #[rustfmt::skip]
        let x = [1.0, 1.0, nan, 2.0,
                 0.0, 0.0, 3.0, nan,
                 f64::NEG_INFINITY, f64::NEG_INFINITY, 5.0, 5.0,
                 f64::NEG_INFINITY, f64::NEG_INFINITY, 5.0, 4.0];
        let p = pool(&[1, 1, 4, 4], 2, 2, 0).unwrap();
        let (mut out, mut at) = ([0.0; 4], [0i64; 4]);
        max_pool2d_forward(&x, &mut out, &mut at, &p).unwrap();
        assert_eq!(out[0], 1.0);
        assert!(out[1].is_nan());
        assert_eq!((out[2], out[3]), (f64::NEG_INFINITY, 5.0));
        assert_eq!(at, [0, 7, 8, 10]);
        // The general path (padding) agrees where the windows are the same.
        let p = Pool2d::new("x", &[1, 1, 4, 4], [2, 2], [2, 2], [1, 0]).unwrap();
        let (mut out, mut at) = ([0.0; 6], [0i64; 6]);
        max_pool2d_forward(&x, &mut out, &mut at, &p).unwrap();
        assert_eq!(at[..2], [0, 2]);
        let mut grad = [9.0; 16];
        max_pool2d_backward(&[1.0; 6], &at, &mut grad, 1, 16, 6).unwrap();
        assert_eq!(grad.iter().sum::<f64>(), 6.0);
    }

    #[test]
    fn average_pooling_counts_the_padding_in_the_divisor() {
        let x = [1.0f32, 2.0, 3.0, 4.0];
        let p = pool(&[1, 1, 2, 2], 2, 1, 1).unwrap();
        assert_eq!(p.out_shape(), [1, 1, 3, 3]);
        let mut out = [0.0; 9];
        avg_pool2d_forward(&x, &mut out, &p).unwrap();
        assert_eq!(out, [0.25, 0.75, 0.5, 1.0, 2.5, 1.5, 0.75, 1.75, 1.0]);
        let mut grad = [0.0; 4];
        avg_pool2d_backward(&[4.0; 9], &mut grad, &p).unwrap();
        assert_eq!(grad, [4.0; 4]);
    }

    #[test]
    fn adaptive_windows_follow_pytorch() {
        assert_eq!((0..3).map(|o| adaptive_window(o, 3, 7)).collect::<Vec<_>>(), [(0, 3), (2, 5), (4, 7)]);
        assert_eq!((0..3).map(|o| adaptive_window(o, 3, 2)).collect::<Vec<_>>(), [(0, 1), (0, 2), (1, 2)]);
        let p = AdaptivePool2d::new(("x", &[1, 1, 2, 3]), ("out", &[1, 1, 1, 1])).unwrap();
        let mut out = [0.0f64];
        adaptive_avg_pool2d_forward(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &mut out, &p).unwrap();
        assert_eq!(out, [3.5]);
    }

    #[test]
    fn bad_geometry_and_bad_indices_are_errors_naming_the_argument() {
        let message = |r: Result<Pool2d, KernelError>| r.unwrap_err().to_string();
        assert!(message(pool(&[1, 1, 4], 2, 2, 0)).contains("x must be 4-dimensional"));
        assert!(message(pool(&[1, 1, 4, 4], 0, 2, 0)).starts_with("kernel_size: must be positive"));
        assert!(message(pool(&[1, 1, 4, 4], 2, 0, 0)).starts_with("stride: must be positive"));
        assert!(message(pool(&[1, 1, 4, 4], 2, 1, 2)).starts_with("padding: must be at most half"));
        assert!(message(pool(&[1, 1, 4, 4], 7, 1, 1)).contains("larger than the padded input"));
        assert!(message(pool(&[1, 1, 0, 4], 1, 1, 0)).contains("at least one channel, row and column"));
        assert_eq!(pool(&[1, 1, 4, 4], 6, 1, 1).unwrap().out_shape(), [1, 1, 1, 1]);
        let mut grad = [0.0f32; 4];
        assert!(max_pool2d_backward(&[1.0], &[4], &mut grad, 1, 4, 1).is_err());
        assert!(max_pool2d_backward(&[1.0], &[-1], &mut grad, 1, 4, 1).is_err());
        assert_eq!(grad, [0.0; 4]);
    }

    #[test]
    fn an_empty_batch_gives_empty_results() {
        let p = pool(&[0, 3, 4, 4], 2, 2, 0).unwrap();
        max_pool2d_forward::<f32>(&[], &mut [], &mut [], &p).unwrap();
        avg_pool2d_backward::<f32>(&[], &mut [], &p).unwrap();
        max_pool2d_backward::<f64>(&[], &[], &mut [], 0, 16, 4).unwrap();
    }
}
