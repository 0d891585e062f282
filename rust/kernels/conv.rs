//! 2-D convolution on NCHW arrays (PyTorch's `conv2d`): im2col + the dense layer's GEMM
//! ([`crate::matmul`]) for the forward pass and the weight gradient, GEMM + col2im for the input
//! gradient. A 1×1 kernel with stride 1 and no padding multiplies the input directly. The weight
//! gradient of a large sample with many channels multiplies its patches (pixels × taps ×
//! channels) instead of its column matrix transposed, which the product reads faster.
//!
//! Samples run in parallel. The column matrix of one sample (and group) lives in a buffer each
//! thread keeps ([`ConvFloat`]), so a call allocates nothing once the buffers have grown; or, when
//! the caller gives a `columns` array, the forward pass writes every sample's columns there and
//! the backward pass reads them back instead of building them again (a layer keeps them between
//! its two passes). The
//! weight and bias gradients, sums over the batch, are summed in chunks of samples whose count
//! depends on the shape alone, the chunks' partial sums added in order: results are bit-identical
//! for any thread count.

use crate::error::{check_len, checked_product, dims, shape_str};
use crate::matmul::matmul;
use crate::parallel::{install, join, worth_parallel_above};
use crate::{Float, KernelError};
use faer::MatRef;
use multiversion::multiversion;
use std::cell::Cell;

/// From this many multiply-adds on, a call runs its samples in parallel.
const PAR_MIN_MULTIPLY_ADDS: usize = 1 << 18;

/// At most this many chunks of samples for the weight gradient (each but the first has its own
/// partial sums), and at most [`PARTIAL_ELEMENTS`] elements of partial sums in all.
const MAX_CHUNKS: usize = 16;
const PARTIAL_ELEMENTS: usize = 1 << 21;

/// Samples with small outputs are multiplied in blocks whose column matrices sit side by side, so
/// one product has at least this many columns (LeNet's second convolution, 8×8 outputs: 8
/// samples per product) ...
const BLOCK_COLUMNS: usize = 512;
/// ... and a column matrix of at most this many elements.
const MAX_BLOCK_ELEMENTS: usize = 1 << 18;

/// The weight gradient of a sample with at least this many input channels a group multiplies
/// its patches, not its column matrix: see [`weight_from_patches`].
const PATCH_MIN_CHANNELS: usize = 16;

/// See [`ConvShape::padded`]: 25 taps of 28×28 outputs on a 32×32 padded plane pass (19), 9 taps
/// of 32×32 on 34×34 do not (8).
const PADDED_SHARE: usize = 12;

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

    /// Elements of the column matrices of every sample and group: the length of the `columns`
    /// arrays of [`conv2d_forward`] and [`conv2d_backward`] (saturated: never a slice's length
    /// when it overflows).
    pub fn columns_len(&self) -> usize {
        self.batch
            .saturating_mul(self.in_channels * self.kernel_h * self.kernel_w)
            .saturating_mul(self.out_pixels())
    }

    /// Elements of the weight.
    pub fn weight_len(&self) -> usize {
        self.out_channels * self.group_k()
    }

    /// The same convolution of a group's input with its padding made part of it: when the
    /// padded plane is at most a [`PADDED_SHARE`]th of the column matrix, [`im2col`] and
    /// [`col2im`] first copy the input into (or the gradient out of) a zero-padded plane, so
    /// that every kernel tap reads whole rows, with no padding to test or fill row by row
    /// (LeNet's first convolution, 5×5 with padding 2 on 28×28 images, forward and backward
    /// 770 -> 580 µs on one core). With fewer taps the copy is a larger share of the work and
    /// saves less (a 3×3 convolution of 64 channels on 32×32 maps: no measurable difference).
    fn padded(&self) -> Option<ConvShape> {
        let [ph, pw] = self.padding;
        if ph == 0 && pw == 0 {
            return None;
        }
        let (in_h, in_w) = (self.in_h + 2 * ph, self.in_w + 2 * pw);
        let plane = in_h.checked_mul(in_w)?;
        (plane > 0 && plane.saturating_mul(PADDED_SHARE) <= self.kernel_h * self.kernel_w * self.out_pixels())
            .then_some(ConvShape { in_h, in_w, padding: [0, 0], ..*self })
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
        let per_chunk = self.batch.div_ceil(chunks.min(self.batch).max(1)).max(1);
        per_chunk.next_multiple_of(self.samples_per_block())
    }

    /// Whether the weight gradient of a sample multiplies its patches ([`weight_from_patches`])
    /// rather than its column matrix: a sample multiplied alone, with at least
    /// [`PATCH_MIN_CHANNELS`] input channels a group, at least as many output pixels as rows of
    /// columns, and a padded input no larger than its column matrix. Fixed by the shape alone.
    /// Measured (3×3, padding 1, batch 32, 2 cores, f32; weight and bias gradients): 16->16 on
    /// 32×32 maps 1.00 -> 0.68 ms, 32->32 2.7 -> 2.1, 64->64 8.2 -> 7.2; with fewer pixels than
    /// rows, no gain (128->128 on 32×32, 32->32 on 16×16) or a loss (64->64 on 16×16 2.2 -> 2.3,
    /// 128->128 6.6 -> 8.2, 256->256 on 8×8 7.3 -> 19.9).
    fn weight_from_patches(&self) -> bool {
        let plane = self.padded_pixels().and_then(|p| p.checked_mul(self.in_per_group()));
        !self.pointwise()
            && self.samples_per_block() == 1
            && self.in_per_group() >= PATCH_MIN_CHANNELS
            && self.out_pixels() >= self.group_k()
            && plane.is_some_and(|p| p <= self.group_k() * self.out_pixels())
    }

    /// Pixels of the input plane with its padding, if that many fit.
    fn padded_pixels(&self) -> Option<usize> {
        let [ph, pw] = self.padding;
        let h = ph.checked_mul(2)?.checked_add(self.in_h)?;
        h.checked_mul(pw.checked_mul(2)?.checked_add(self.in_w)?)
    }

    /// Samples whose column matrices are multiplied together (see [`BLOCK_COLUMNS`]): fixed by
    /// the shape alone. One for a pointwise convolution, which multiplies the input directly.
    fn samples_per_block(&self) -> usize {
        let pixels = self.out_pixels().max(1);
        if self.pointwise() || pixels >= BLOCK_COLUMNS {
            return 1;
        }
        let by_memory = MAX_BLOCK_ELEMENTS / (self.group_k() * pixels).max(1);
        BLOCK_COLUMNS.div_ceil(pixels).min(by_memory).clamp(1, self.batch.max(1))
    }
}

/// The largest buffer a thread keeps for the next call (16 MB in f32): what a batch of small
/// images or one 64-channel 3×3 convolution of a 32×32 sample needs many times over.
const KEEP_ELEMENTS: usize = 1 << 22;

/// The element types of the convolution: a [`Float`] with two buffers per thread, for column
/// matrices and for partial sums.
pub trait ConvFloat: Float {
    /// Runs `f` with this thread's buffer `which` of `len` elements (grown if needed; kept for
    /// the next call up to [`KEEP_ELEMENTS`]; a nested call for the same buffer gets a fresh
    /// one). Its contents are whatever the last call left.
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
    /// A block's product, or its gathered output gradients.
    Products,
    /// A sample's input (or input gradient) with its padding: see [`ConvShape::padded`].
    Padded,
}

macro_rules! conv_float {
    ($t:ty, $columns:ident, $partials:ident, $products:ident, $padded:ident) => {
        thread_local! {
            static $columns: Cell<Vec<$t>> = const { Cell::new(Vec::new()) };
            static $partials: Cell<Vec<$t>> = const { Cell::new(Vec::new()) };
            static $products: Cell<Vec<$t>> = const { Cell::new(Vec::new()) };
            static $padded: Cell<Vec<$t>> = const { Cell::new(Vec::new()) };
        }
        impl ConvFloat for $t {
            fn with_buffer<R>(which: Buffer, len: usize, f: impl FnOnce(&mut [$t]) -> R) -> R {
                let key = match which {
                    Buffer::Columns => &$columns,
                    Buffer::Partials => &$partials,
                    Buffer::Products => &$products,
                    Buffer::Padded => &$padded,
                };
                let mut buffer = key.take();
                if buffer.len() < len {
                    buffer.resize(len, 0.0);
                }
                let result = f(&mut buffer[..len]);
                // A buffer grown past KEEP_ELEMENTS by one large call is freed, not kept.
                if buffer.len() <= KEEP_ELEMENTS {
                    key.set(buffer);
                }
                result
            }
        }
    };
}
conv_float!(f32, COLUMNS_F32, PARTIALS_F32, PRODUCTS_F32, PADDED_F32);
conv_float!(f64, COLUMNS_F64, PARTIALS_F64, PRODUCTS_F64, PADDED_F64);

/// Runs `f` with `kept` (the caller's columns) when given, else with this thread's column buffer
/// of `len` elements.
fn with_columns_in<T: ConvFloat, R>(kept: Option<&mut [T]>, len: usize, f: impl FnOnce(&mut [T]) -> R) -> R {
    match kept {
        Some(columns) => f(columns),
        None => T::with_columns(len, f),
    }
}

/// Part `index` of `len` elements of `columns`, if given.
fn part<T>(columns: Option<&mut [T]>, index: usize, len: usize) -> Option<&mut [T]> {
    columns.map(|c| &mut c[index * len..(index + 1) * len])
}

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

    /// The input column of output column `lo` (when `lo < hi`).
    fn first_col(&self, s: &ConvShape) -> usize {
        ((self.lo * s.stride[1]) as isize + self.col_offset) as usize
    }
}

/// `dst = src` for the short rows of small images without a `memcpy` call per row (which
/// cost more than the copy: LeNet's 8-pixel rows): blocks of 8, the last one overlapping.
#[inline(always)]
fn copy_short<T: Float>(dst: &mut [T], src: &[T]) {
    const BLOCK: usize = 8;
    let len = dst.len().min(src.len());
    if len < BLOCK {
        for (d, &v) in dst.iter_mut().zip(src) {
            *d = v;
        }
        return;
    }
    let block = |dst: &mut [T], src: &[T]| {
        if let (Ok(d), Ok(v)) = (<&mut [T; BLOCK]>::try_from(dst), <&[T; BLOCK]>::try_from(src)) {
            *d = *v;
        }
    };
    for (d, v) in dst.chunks_exact_mut(BLOCK).zip(src.chunks_exact(BLOCK)) {
        block(d, v);
    }
    let tail = len - BLOCK;
    block(&mut dst[tail..len], &src[tail..len]);
}

/// Whether the whole-row runs of a tap with stride 1 and no padding columns (`out_w` elements
/// from `ih · in_w + first` of a channel of `channel_len`, to `oh · out_w` of a row of `row_len`,
/// for `oh` in `rows`) lie inside both: true by construction, checked once per row so that the
/// unchecked copies below can never leave them.
fn runs_fit(
    s: &ConvShape, tap: &Tap, rows: &std::ops::Range<usize>, first: usize, channel_len: usize, row_len: usize,
) -> bool {
    let Some(last) = rows.end.checked_sub(1).filter(|&last| last >= rows.start) else { return true };
    let (top, bottom) = (
        (rows.start * s.stride[0]) as isize + tap.row_offset,
        (last * s.stride[0]) as isize + tap.row_offset,
    );
    top >= 0
        && first + s.out_w <= s.in_w
        && (bottom as usize) < s.in_h
        && s.in_h * s.in_w <= channel_len
        && rows.end * s.out_w <= row_len
}

/// `dst[..len] = src[..len]` in blocks of 16 elements, or of 8 for a run shorter than 16 (the
/// last block overlapping), inlined: no `memcpy` call per short row, and one AVX-512 store per
/// 16 f32 (LeNet's 28-pixel rows: two stores instead of four).
///
/// # Safety
/// `src` must be valid for `len` reads and `dst` for `len` writes, in separate memory.
#[inline(always)]
unsafe fn copy_run<T: Copy>(dst: *mut T, src: *const T, len: usize) {
    if len >= 16 {
        copy_blocks::<T, 16>(dst, src, len);
    } else if len >= 8 {
        copy_blocks::<T, 8>(dst, src, len);
    } else {
        for k in 0..len {
            *dst.add(k) = *src.add(k);
        }
    }
}

/// [`copy_run`] in blocks of `BLOCK`, for `len >= BLOCK`.
///
/// # Safety
/// As [`copy_run`].
#[inline(always)]
unsafe fn copy_blocks<T: Copy, const BLOCK: usize>(dst: *mut T, src: *const T, len: usize) {
    let mut k = 0;
    while k + BLOCK <= len {
        (dst.add(k) as *mut [T; BLOCK]).write_unaligned((src.add(k) as *const [T; BLOCK]).read_unaligned());
        k += BLOCK;
    }
    if k < len {
        let tail = len - BLOCK;
        (dst.add(tail) as *mut [T; BLOCK])
            .write_unaligned((src.add(tail) as *const [T; BLOCK]).read_unaligned());
    }
}

/// `dst[..len] += src[..len]`.
///
/// # Safety
/// As [`copy_run`].
#[inline(always)]
unsafe fn add_run<T: Float>(dst: *mut T, src: *const T, len: usize) {
    for k in 0..len {
        *dst.add(k) = *dst.add(k) + *src.add(k);
    }
}

/// `dst = 0`, without a call for an empty `dst` (most rows have no padding).
#[inline(always)]
fn fill_zero<T: Float>(dst: &mut [T]) {
    if !dst.is_empty() {
        dst.fill(T::zero());
    }
}

/// Calls `f(tap, rows, c)` for each kernel tap and input channel `c` of a group, with the
/// output rows `rows` whose input row the tap reaches; `tap` is None where it reaches no input.
#[inline(always)]
fn for_each_tap_row(s: &ConvShape, mut f: impl FnMut(Option<&Tap>, std::ops::Range<usize>, usize, usize)) {
    let taps = s.kernel_h * s.kernel_w;
    for i in 0..s.kernel_h {
        for j in 0..s.kernel_w {
            let tap = Tap::new(s, i, j);
            let (oh_lo, oh_hi) = valid_range(tap.row_offset, s.stride[0], s.in_h, s.out_h);
            let reaches = tap.lo < tap.hi && oh_lo < oh_hi;
            for c in 0..s.in_per_group() {
                f(reaches.then_some(&tap), oh_lo..oh_hi, c, c * taps + i * s.kernel_w + j);
            }
        }
    }
}

/// Columns `offset..offset + out_pixels` of `columns` (group_k rows of `stride` elements) = the
/// patches of `x` (in_per_group × in_h × in_w): row `(c, i, j)` holds, for each output pixel,
/// the input under tap `(i, j)` of channel `c` (0 in the padding). Built for AVX2 and AVX-512
/// too (chosen at run time): wider copies of the short rows.
fn im2col<T: ConvFloat>(x: &[T], columns: &mut [T], s: &ConvShape, stride: usize, offset: usize) {
    let Some(padded) = s.padded() else { return im2col_direct(x, columns, s, stride, offset) };
    let plane = padded.in_h * padded.in_w;
    T::with_buffer(Buffer::Padded, s.in_per_group() * plane, |buffer| {
        let (ph, pw, width) = (s.padding[0], s.padding[1], s.in_w);
        for (c, to) in buffer.chunks_exact_mut(plane).enumerate() {
            to[..ph * padded.in_w].fill(T::zero());
            to[(ph + s.in_h) * padded.in_w..].fill(T::zero());
            for r in 0..s.in_h {
                let row = &mut to[(ph + r) * padded.in_w..(ph + r + 1) * padded.in_w];
                row[..pw].fill(T::zero());
                row[pw + width..].fill(T::zero());
                let from = (c * s.in_h + r) * width;
                copy_short(&mut row[pw..pw + width], &x[from..from + width]);
            }
        }
        im2col_direct(buffer, columns, &padded, stride, offset);
    });
}

/// [`im2col`] reading `x` as it is, its padding tested row by row.
#[multiversion(targets("x86_64+avx2+fma+avx512f+avx512vl+avx512dq+avx512bw", "x86_64+avx2+fma"))]
fn im2col_direct<T: Float>(x: &[T], columns: &mut [T], s: &ConvShape, stride: usize, offset: usize) {
    let (plane, pixels, out_w, (sh, sw)) =
        (s.in_h * s.in_w, s.out_pixels(), s.out_w, (s.stride[0], s.stride[1]));
    for_each_tap_row(s, |tap, rows, c, r| {
        let row = &mut columns[r * stride + offset..r * stride + offset + pixels];
        let Some(tap) = tap.filter(|_| plane > 0) else {
            row.fill(T::zero()); // the tap reaches only padding
            return;
        };
        let channel = &x[c * plane..(c + 1) * plane];
        fill_zero(&mut row[..rows.start * out_w]);
        fill_zero(&mut row[rows.end * out_w..]);
        let (first, (lo, hi)) = (tap.first_col(s), (tap.lo, tap.hi));
        if sw == 1 && lo == 0 && hi == out_w && runs_fit(s, tap, &rows, first, channel.len(), row.len()) {
            let (src, dst) = (channel.as_ptr(), row.as_mut_ptr());
            for oh in rows {
                let ih = ((oh * sh) as isize + tap.row_offset) as usize;
                // SAFETY: `runs_fit` checked that every run read (`out_w` elements from
                // `ih · in_w + first`) lies in `channel` and every run written in `row`.
                unsafe { copy_run(dst.add(oh * out_w), src.add(ih * s.in_w + first), out_w) };
            }
            return;
        }
        for oh in rows {
            let ih = ((oh * sh) as isize + tap.row_offset) as usize;
            let out = &mut row[oh * out_w..(oh + 1) * out_w];
            fill_zero(&mut out[..lo]);
            fill_zero(&mut out[hi..]);
            let src = &channel[ih * s.in_w + first..(ih + 1) * s.in_w];
            if sw == 1 {
                copy_short(&mut out[lo..hi], &src[..hi - lo]);
            } else {
                for (o, &v) in out[lo..hi].iter_mut().zip(src.iter().step_by(sw)) {
                    *o = v;
                }
            }
        }
    });
}

/// `dx (in_per_group × in_h × in_w) += ` columns `offset..offset + out_pixels` of `columns`
/// (rows of `stride` elements) scattered back to where [`im2col`] took them.
fn col2im<T: ConvFloat>(columns: &[T], dx: &mut [T], s: &ConvShape, stride: usize, offset: usize) {
    let Some(padded) = s.padded() else { return col2im_direct(columns, dx, s, stride, offset) };
    let plane = padded.in_h * padded.in_w;
    T::with_buffer(Buffer::Padded, s.in_per_group() * plane, |buffer| {
        buffer.fill(T::zero());
        col2im_direct(columns, buffer, &padded, stride, offset);
        // The plane's inside added to dx: the same sums, in the same order, as col2im_direct's.
        let (ph, pw, width) = (s.padding[0], s.padding[1], s.in_w);
        for (from, to) in buffer.chunks_exact(plane).zip(dx.chunks_exact_mut((s.in_h * width).max(1))) {
            for (r, dst) in to.chunks_exact_mut(width.max(1)).enumerate() {
                let src = &from[(ph + r) * padded.in_w + pw..(ph + r) * padded.in_w + pw + width];
                dst.iter_mut().zip(src).for_each(|(d, &v)| *d += v);
            }
        }
    });
}

/// [`col2im`] writing to `dx` as it is, its padding tested row by row.
#[multiversion(targets("x86_64+avx2+fma+avx512f+avx512vl+avx512dq+avx512bw", "x86_64+avx2+fma"))]
fn col2im_direct<T: Float>(columns: &[T], dx: &mut [T], s: &ConvShape, stride: usize, offset: usize) {
    let (plane, pixels, out_w, (sh, sw)) =
        (s.in_h * s.in_w, s.out_pixels(), s.out_w, (s.stride[0], s.stride[1]));
    for_each_tap_row(s, |tap, rows, c, r| {
        let Some(tap) = tap.filter(|_| plane > 0) else { return };
        let row = &columns[r * stride + offset..r * stride + offset + pixels];
        let channel = &mut dx[c * plane..(c + 1) * plane];
        let (first, (lo, hi)) = (tap.first_col(s), (tap.lo, tap.hi));
        if sw == 1 && lo == 0 && hi == out_w && runs_fit(s, tap, &rows, first, channel.len(), row.len()) {
            let (src, dst) = (row.as_ptr(), channel.as_mut_ptr());
            for oh in rows {
                let ih = ((oh * sh) as isize + tap.row_offset) as usize;
                // SAFETY: as in `im2col`, with `row` read and `channel` (another array) written.
                unsafe { add_run(dst.add(ih * s.in_w + first), src.add(oh * out_w), out_w) };
            }
            return;
        }
        for oh in rows {
            let ih = ((oh * sh) as isize + tap.row_offset) as usize;
            let from = &row[oh * out_w + lo..oh * out_w + hi];
            let dst = &mut channel[ih * s.in_w + first..(ih + 1) * s.in_w];
            if sw == 1 {
                for (d, &v) in dst.iter_mut().zip(from) {
                    *d += v;
                }
            } else {
                for (d, &v) in dst.iter_mut().step_by(sw).zip(from) {
                    *d += v;
                }
            }
        }
    });
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
///
/// The items are halved recursively with [`crate::parallel::join`] rather than handed to a
/// rayon iterator: the pool then measures whether sharing pays on these halves, and the matrix
/// products inside run their own halves unmeasured. (Under a rayon iterator each product's join
/// was measured alone, found no gain while the other thread worked on another sample, and turned
/// the pool serial.)
fn try_each<I: Send, F: Fn(I) -> Result<(), KernelError> + Sync + Send>(
    items: Vec<I>, parallel: bool, f: F,
) -> Result<(), KernelError> {
    let mut items: Vec<Option<I>> = items.into_iter().map(Some).collect();
    if parallel && items.len() > 1 {
        install(|| halves(&mut items, &f))
    } else {
        items.iter_mut().filter_map(Option::take).try_for_each(f)
    }
}

fn halves<I: Send, F: Fn(I) -> Result<(), KernelError> + Sync + Send>(
    items: &mut [Option<I>], f: &F,
) -> Result<(), KernelError> {
    if items.len() <= 1 {
        return items.iter_mut().filter_map(Option::take).try_for_each(f);
    }
    let (first, second) = items.split_at_mut(items.len() / 2);
    let (a, b) = join(|| halves(first, f), || halves(second, f));
    a.and(b)
}

/// Forward pass: `out = conv2d(x, weight) + bias`, PyTorch's cross-correlation.
///
/// `columns` ([`ConvShape::columns_len`] elements), when given, receives the column matrices of
/// every sample, for [`conv2d_backward`] to reuse (unused by a pointwise convolution).
pub fn conv2d_forward<T: ConvFloat>(
    x: &[T], weight: &[T], bias: Option<&[T]>, out: &mut [T], columns: Option<&mut [T]>, s: ConvShape,
) -> Result<(), KernelError> {
    check_lengths(&s, x, weight, bias, "out", out)?;
    if let Some(c) = &columns {
        check_len("columns", c, s.columns_len())?;
    }
    if out.is_empty() {
        return Ok(());
    }
    let (k, pixels, out_g) = (s.group_k(), s.out_pixels(), s.out_per_group());
    let (sample_in, in_plane, sample_out) =
        (s.sample_in(), s.in_per_group() * s.in_h * s.in_w, s.sample_out());
    let per_block = s.samples_per_block();
    let mut kept =
        columns.filter(|_| !s.pointwise()).map(|c| c.chunks_mut(per_block * s.groups * k * pixels));
    // (block index, its output, its kept columns)
    let blocks: Vec<(usize, &mut [T], Option<_>)> = out
        .chunks_mut(per_block * sample_out)
        .enumerate()
        .map(|(block, out_b)| (block, out_b, kept.as_mut().and_then(Iterator::next)))
        .collect();
    let parallel = worth_parallel_above(s.multiply_adds(), PAR_MIN_MULTIPLY_ADDS);
    try_each(blocks, parallel, |(block, out_b, mut kept_b)| {
        let (first, samples) = (block * per_block, out_b.len() / sample_out);
        let x_b = &x[first * sample_in..(first + samples) * sample_in];
        if samples == 1 {
            return forward_sample(x_b, weight, bias, out_b, kept_b, &s);
        }
        // The block's column matrices side by side: one product, then each sample's part of it
        // to its place in `out`, plus the bias.
        let width = samples * pixels;
        for g in 0..s.groups {
            let w = MatRef::from_row_major_slice(&weight[g * out_g * k..(g + 1) * out_g * k], out_g, k);
            with_columns_in(part(kept_b.as_deref_mut(), g, k * width), k * width, |columns| {
                for n in 0..samples {
                    let x_g = &x_b[n * sample_in + g * in_plane..n * sample_in + (g + 1) * in_plane];
                    im2col(x_g, columns, &s, width, n * pixels);
                }
                T::with_buffer(Buffer::Products, out_g * width, |product| {
                    matmul(w, MatRef::from_row_major_slice(columns, k, width), product, false)?;
                    for (n, out_n) in out_b.chunks_exact_mut(sample_out).enumerate() {
                        let planes =
                            out_n[g * out_g * pixels..(g + 1) * out_g * pixels].chunks_exact_mut(pixels);
                        for (o, plane) in planes.enumerate() {
                            let from = &product[o * width + n * pixels..o * width + (n + 1) * pixels];
                            let b = bias.map_or(T::zero(), |b| b[g * out_g + o]);
                            plane.iter_mut().zip(from).for_each(|(y, &v)| *y = v + b);
                        }
                    }
                    Ok(())
                })
            })?;
        }
        Ok(())
    })
}

/// The forward pass of one sample, each group's product written in place; its column matrices
/// in `kept` when given.
fn forward_sample<T: ConvFloat>(
    x_n: &[T], weight: &[T], bias: Option<&[T]>, out_n: &mut [T], mut kept: Option<&mut [T]>, s: &ConvShape,
) -> Result<(), KernelError> {
    let (k, pixels, out_g) = (s.group_k(), s.out_pixels(), s.out_per_group());
    let in_plane = s.in_per_group() * s.in_h * s.in_w;
    if let Some(b) = bias {
        for (plane, &v) in out_n.chunks_exact_mut(pixels).zip(b) {
            plane.fill(v);
        }
    }
    for (g, (y_g, w_g)) in
        out_n.chunks_exact_mut(out_g * pixels).zip(weight.chunks_exact(out_g * k)).enumerate()
    {
        let x_g = &x_n[g * in_plane..(g + 1) * in_plane];
        let w = MatRef::from_row_major_slice(w_g, out_g, k);
        if s.pointwise() {
            matmul(w, MatRef::from_row_major_slice(x_g, k, pixels), y_g, bias.is_some())?;
        } else {
            with_columns_in(part(kept.as_deref_mut(), g, k * pixels), k * pixels, |columns| {
                im2col(x_g, columns, s, pixels, 0);
                matmul(w, MatRef::from_row_major_slice(columns, k, pixels), y_g, bias.is_some())
            })?;
        }
    }
    Ok(())
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
    /// The column matrices of its samples, when the caller kept them.
    columns: Option<&'a [T]>,
    /// `weight_len + out_channels` elements: the weight gradient, then the bias gradient.
    partial_weight: Option<&'a mut [T]>,
    partial_bias: Option<&'a mut [T]>,
    /// Whether the first sample adds to the partial sums (the first chunk, when accumulating
    /// into the caller's gradients) or overwrites them.
    accumulate: bool,
}

/// Backward pass. Parameter gradients accumulate unless `grads.accumulate` is false; the input
/// gradient is overwritten. A batch of no samples adds nothing (or zeroes, not accumulating).
///
/// `columns`, when given, holds what [`conv2d_forward`] wrote to its `columns` for this `x`: the
/// weight gradient multiplies them instead of building them again (same values, same results).
pub fn conv2d_backward<T: ConvFloat>(
    x: &[T], weight: &[T], grad_out: &[T], columns: Option<&[T]>, grads: ConvGrads<'_, T>, s: ConvShape,
) -> Result<(), KernelError> {
    check_lengths(&s, x, weight, None, "grad_output", grad_out)?;
    if let Some(c) = columns {
        check_len("columns", c, s.columns_len())?;
    }
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
    let per_chunk = if wants_params { s.samples_per_chunk() } else { s.samples_per_block() };
    let chunk_count = s.batch.div_ceil(per_chunk);
    let weight_len = s.weight_len();
    let partial_len = weight_len + s.out_channels;
    // Chunks 1.. sum into partial sums, overwritten by their first sample (no zeroing).
    let partials_len = if wants_params { (chunk_count - 1) * partial_len } else { 0 };
    T::with_buffer(Buffer::Partials, partials_len, |partials| {
        let mut chunks: Vec<Chunk<'_, T>> = Vec::with_capacity(chunk_count);
        let mut gx_chunks = gx.map(|g| g.chunks_mut((per_chunk * s.sample_in()).max(1)));
        let sample_columns = s.groups * s.group_k() * s.out_pixels();
        let mut column_chunks =
            columns.filter(|_| !s.pointwise()).map(|c| c.chunks((per_chunk * sample_columns).max(1)));
        let mut partial_chunks = partials.chunks_exact_mut(partial_len);
        let (wants_weight, wants_bias) = (gw.is_some(), gb.is_some());
        let (mut first_weight, mut first_bias) = (gw.as_deref_mut(), gb.as_deref_mut());
        for c in 0..chunk_count {
            let first = c * per_chunk;
            let grad_input = gx_chunks.as_mut().and_then(Iterator::next);
            let columns = column_chunks.as_mut().and_then(Iterator::next);
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
            chunks.push(Chunk {
                first,
                samples,
                grad_input,
                columns,
                partial_weight,
                partial_bias,
                accumulate,
            });
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

/// The samples of one chunk, in blocks (see [`ConvShape::samples_per_block`]): their weight and
/// bias gradients summed in `chunk`'s partial sums, their input gradients written.
fn backward_chunk<T: ConvFloat>(
    x: &[T], weight: &[T], grad_out: &[T], chunk: Chunk<'_, T>, s: &ConvShape,
) -> Result<(), KernelError> {
    let (k, pixels, out_g, sample_in) = (s.group_k(), s.out_pixels(), s.out_per_group(), s.sample_in());
    let (in_plane, sample_out, per_block) =
        (s.in_per_group() * s.in_h * s.in_w, s.sample_out(), s.samples_per_block());
    let sample_columns = s.groups * k * pixels;
    let Chunk { first, samples, mut grad_input, columns, mut partial_weight, mut partial_bias, accumulate } =
        chunk;
    let end = first + samples;
    for start in (first..end).step_by(per_block) {
        let count = per_block.min(end - start);
        let add = accumulate || start > first;
        let x_b = &x[start * sample_in..(start + count) * sample_in];
        let dy_b = &grad_out[start * sample_out..(start + count) * sample_out];
        let local = start - first;
        let kept_b = columns.map(|c| &c[local * sample_columns..(local + count) * sample_columns]);
        if let Some(gb) = partial_bias.as_deref_mut() {
            for (n, dy_n) in dy_b.chunks_exact(sample_out).enumerate() {
                for (acc, plane) in gb.iter_mut().zip(dy_n.chunks_exact(pixels)) {
                    *acc = if add || n > 0 { *acc + sum(plane) } else { sum(plane) };
                }
            }
        }
        let mut dx_b = grad_input.as_deref_mut().map(|g| {
            let dx = &mut g[local * sample_in..(local + count) * sample_in];
            if !s.pointwise() {
                dx.fill(T::zero());
            }
            dx
        });
        let width = count * pixels;
        for g in 0..s.groups {
            let (rows, weights) = (g * out_g..(g + 1) * out_g, g * out_g * k..(g + 1) * out_g * k);
            let w = MatRef::from_row_major_slice(&weight[weights.clone()], out_g, k);
            let dw_g = partial_weight.as_deref_mut().map(|gw| &mut gw[weights]);
            let kept_g = kept_b.map(|c| &c[g * k * width..(g + 1) * k * width]);
            if count == 1 {
                // One sample: its gradient rows are already a matrix.
                let dy = MatRef::from_row_major_slice(
                    &dy_b[rows.start * pixels..rows.end * pixels],
                    out_g,
                    pixels,
                );
                let x_g = &x_b[g * in_plane..(g + 1) * in_plane];
                let dx_g = dx_b.as_deref_mut().map(|dx| &mut dx[g * in_plane..(g + 1) * in_plane]);
                if s.pointwise() {
                    if let Some(dw) = dw_g {
                        matmul(dy, MatRef::from_row_major_slice(x_g, k, pixels).transpose(), dw, add)?;
                    }
                    if let Some(dx) = dx_g {
                        matmul(w.transpose(), dy, dx, false)?;
                    }
                    continue;
                }
                match dw_g {
                    Some(dw) if s.weight_from_patches() => weight_from_patches(x_g, dy, dw, add, s)?,
                    Some(dw) => {
                        weight_product(dy, kept_g, dw, add, k, |columns| im2col(x_g, columns, s, pixels, 0))?
                    }
                    None => {}
                }
                if let Some(dx) = dx_g {
                    T::with_columns(k * pixels, |columns| {
                        matmul(w.transpose(), dy, columns, false)?;
                        col2im(columns, dx, s, pixels, 0);
                        Ok::<(), KernelError>(())
                    })?;
                }
                continue;
            }
            // Several samples: their gradient rows gathered side by side, one product each.
            T::with_buffer(Buffer::Products, out_g * width, |gathered| {
                for (n, dy_n) in dy_b.chunks_exact(sample_out).enumerate() {
                    for (o, plane) in
                        dy_n[rows.start * pixels..rows.end * pixels].chunks_exact(pixels).enumerate()
                    {
                        gathered[o * width + n * pixels..o * width + (n + 1) * pixels].copy_from_slice(plane);
                    }
                }
                let dy = MatRef::from_row_major_slice(&*gathered, out_g, width);
                if let Some(dw) = dw_g {
                    weight_product(dy, kept_g, dw, add, k, |columns| {
                        for n in 0..count {
                            let x_g = &x_b[n * sample_in + g * in_plane..n * sample_in + (g + 1) * in_plane];
                            im2col(x_g, columns, s, width, n * pixels);
                        }
                    })?;
                }
                if let Some(dx_b) = dx_b.as_deref_mut() {
                    T::with_columns(k * width, |columns| {
                        matmul(w.transpose(), dy, columns, false)?;
                        // (an input of no pixels has no gradient to write)
                        for (n, dx_n) in dx_b.chunks_exact_mut(sample_in.max(1)).enumerate() {
                            col2im(
                                columns,
                                &mut dx_n[g * in_plane..(g + 1) * in_plane],
                                s,
                                width,
                                n * pixels,
                            );
                        }
                        Ok::<(), KernelError>(())
                    })?;
                }
                Ok::<(), KernelError>(())
            })?;
        }
    }
    Ok(())
}

/// `dw (+)= dy · columnsᵀ` for a group's input `x_g`, multiplying its patches (output pixels ×
/// taps × channels, row-major, from [`patches`]) rather than its column matrix transposed: the
/// product's packing reads rows of the patches but columns of a transposed column matrix,
/// measured 311 against 397 µs for a 3×3 convolution 64->64 of a 32×32 sample (one core, f32).
/// The product's columns are in tap-major order, put back in `dw`'s channel-major order.
fn weight_from_patches<T: ConvFloat>(
    x_g: &[T], dy: MatRef<'_, T>, dw: &mut [T], add: bool, s: &ConvShape,
) -> Result<(), KernelError> {
    let (k, pixels, cg, taps) = (s.group_k(), s.out_pixels(), s.in_per_group(), s.kernel_h * s.kernel_w);
    let plane_len = s.padded_pixels().unwrap_or(0) * cg; // fits: see `weight_from_patches`
    T::with_buffer(Buffer::Padded, plane_len, |plane| {
        T::with_columns(pixels * k, |rows| {
            pad_to_pixels(x_g, plane, s);
            patches(plane, rows, s);
            T::with_buffer(Buffer::Products, dy.nrows() * k, |product| {
                matmul(dy, MatRef::from_row_major_slice(&*rows, pixels, k), product, false)?;
                for (to, from) in dw.chunks_exact_mut(k).zip(product.chunks_exact(k)) {
                    for (c, to) in to.chunks_exact_mut(taps).enumerate() {
                        for (d, &v) in to.iter_mut().zip(from[c..].iter().step_by(cg)) {
                            *d = if add { *d + v } else { v };
                        }
                    }
                }
                Ok(())
            })
        })
    })
}

/// `plane` (padded pixels × channels) = `x_g` (in_per_group × in_h × in_w) with its padding,
/// in tiles of 16 channels × 16 pixels, read along rows into a local array and written out
/// along pixels (a channel at a time, with strided writes, it took 3 times longer).
#[multiversion(targets("x86_64+avx2+fma+avx512f+avx512vl+avx512dq+avx512bw", "x86_64+avx2+fma"))]
fn pad_to_pixels<T: Float>(x_g: &[T], plane: &mut [T], s: &ConvShape) {
    const TILE: usize = 16;
    let (cg, [ph, pw], (h, w)) = (s.in_per_group(), s.padding, (s.in_h, s.in_w));
    let wp = w + 2 * pw;
    plane.fill(T::zero());
    let mut tile = [[T::zero(); TILE]; TILE];
    for r in 0..h {
        let row = &mut plane[((r + ph) * wp + pw) * cg..((r + ph) * wp + pw + w) * cg];
        for c0 in (0..cg).step_by(TILE) {
            let channels = TILE.min(cg - c0);
            for w0 in (0..w).step_by(TILE) {
                let cols = TILE.min(w - w0);
                for (c, line) in tile.iter_mut().enumerate().take(channels) {
                    let from = ((c0 + c) * h + r) * w + w0;
                    line.iter_mut().zip(&x_g[from..from + cols]).for_each(|(t, &v)| *t = v);
                }
                for col in 0..cols {
                    let pixel = &mut row[(w0 + col) * cg + c0..(w0 + col) * cg + c0 + channels];
                    for (c, v) in pixel.iter_mut().enumerate() {
                        *v = tile[c][col];
                    }
                }
            }
        }
    }
}

/// `rows` (output pixels × kernel taps × channels) = the patches under each output pixel of
/// `plane` (from [`pad_to_pixels`]): each tap's patch is a run of channels, each kernel
/// row's (dilation 1) a run of `kernel_w` taps.
#[multiversion(targets("x86_64+avx2+fma+avx512f+avx512vl+avx512dq+avx512bw", "x86_64+avx2+fma"))]
fn patches<T: Float>(plane: &[T], rows: &mut [T], s: &ConvShape) {
    let (cg, [sh, sw], [dh, dw]) = (s.in_per_group(), s.stride, s.dilation);
    let (wp, run, k) = (s.in_w + 2 * s.padding[1], s.kernel_w * cg, s.group_k());
    for (pixel, patch) in rows.chunks_exact_mut(k.max(1)).enumerate() {
        let (oh, ow) = (pixel / s.out_w, pixel % s.out_w);
        for (i, taps) in patch.chunks_exact_mut(run).enumerate() {
            let start = ((oh * sh + i * dh) * wp + ow * sw) * cg;
            if dw == 1 {
                taps.copy_from_slice(&plane[start..start + run]);
                continue;
            }
            for (j, tap) in taps.chunks_exact_mut(cg).enumerate() {
                tap.copy_from_slice(&plane[start + j * dw * cg..start + (j * dw + 1) * cg]);
            }
        }
    }
}

/// `dw (+)= dy · columnsᵀ` for a group's `k` rows of columns: `kept` when the caller kept them,
/// else built by `build` in this thread's buffer.
fn weight_product<T: ConvFloat>(
    dy: MatRef<'_, T>, kept: Option<&[T]>, dw: &mut [T], add: bool, k: usize, build: impl FnOnce(&mut [T]),
) -> Result<(), KernelError> {
    let width = dy.ncols();
    match kept {
        Some(columns) => matmul(dy, MatRef::from_row_major_slice(columns, k, width).transpose(), dw, add),
        None => T::with_columns(k * width, |columns| {
            build(columns);
            matmul(dy, MatRef::from_row_major_slice(&*columns, k, width).transpose(), dw, add)
        }),
    }
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
            ([2, 2, 12, 12], [3, 2, 5, 5], [1, 1], [2, 2], [1, 1], 1), // through a padded copy
            ([2, 16, 32, 32], [4, 16, 3, 3], [1, 1], [1, 1], [1, 1], 1), // weight from patches
            ([2, 32, 40, 33], [6, 16, 3, 3], [2, 1], [1, 2], [1, 2], 2), // ... tap by tap
        ];
        for (xs, ws, stride, padding, dilation, groups) in geometries {
            let s = ConvShape::of(&xs, &ws, stride, padding, dilation, groups).unwrap();
            assert_eq!(s.padded().is_some(), xs[2] == 12);
            assert_eq!(s.weight_from_patches(), xs[1] >= 16);
            let (x, w) = (data(xs.iter().product(), 0.5), data(ws.iter().product(), 1.5));
            let mut out = vec![f64::NAN; s.batch * s.sample_out()];
            conv2d_forward(&x, &w, None, &mut out, None, s).unwrap();
            let expected = naive(&x, &w, &s);
            assert!(out.iter().zip(&expected).all(|(a, e)| (a - e).abs() < 1e-12));
            // The gradients are the adjoints: <dy, conv(x, w)> is linear in each.
            let dy = data(out.len(), 2.5);
            let (mut gw, mut gx) = (vec![0.0; w.len()], vec![f64::NAN; x.len()]);
            let grads =
                ConvGrads { weight: Some(&mut gw), bias: None, input: Some(&mut gx), accumulate: false };
            conv2d_backward(&x, &w, &dy, None, grads, s).unwrap();
            let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(a, b)| a * b).sum::<f64>();
            let lhs = dot(&dy, &expected);
            assert!((dot(&gw, &w) - lhs).abs() < 1e-10 * lhs.abs().max(1.0));
            assert!((dot(&gx, &x) - lhs).abs() < 1e-10 * lhs.abs().max(1.0));
            // With the forward's columns kept and reused: the same bits.
            let mut columns = vec![f64::NAN; s.columns_len()];
            let mut kept_out = vec![f64::NAN; out.len()];
            conv2d_forward(&x, &w, None, &mut kept_out, Some(&mut columns), s).unwrap();
            let (mut kept_gw, mut kept_gx) = (vec![0.0; w.len()], vec![f64::NAN; x.len()]);
            let grads = ConvGrads {
                weight: Some(&mut kept_gw),
                bias: None,
                input: Some(&mut kept_gx),
                accumulate: false,
            };
            conv2d_backward(&x, &w, &dy, Some(&columns), grads, s).unwrap();
            let bits = |v: &[f64]| v.iter().map(|a| a.to_bits()).collect::<Vec<_>>();
            assert_eq!((bits(&kept_out), bits(&kept_gw), bits(&kept_gx)), (bits(&out), bits(&gw), bits(&gx)));
            assert!(conv2d_forward(&x, &w, None, &mut kept_out, Some(&mut columns[1..]), s).is_err());
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
        conv2d_forward::<f32>(&[], &[1.0], Some(&[1.0]), &mut [], None, s).unwrap();
        let mut gw = [3.0f32];
        let grads = ConvGrads { weight: Some(&mut gw), bias: None, input: Some(&mut []), accumulate: false };
        conv2d_backward::<f32>(&[], &[1.0], &[], None, grads, s).unwrap();
        assert_eq!(gw, [0.0]);
    }
}
