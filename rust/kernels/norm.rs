//! Batch normalization, layer normalization and dropout.
//!
//! Batch norm works on `(batch, channels, length)` data (`length = 1` for `(batch, channels)`),
//! normalizing each channel over batch and length. Statistics are one pass of shifted sums over
//! fixed chunks of samples (blocks of 32 samples in the element type, then f64), merged in
//! order (thread-count independent); normalizing is a second pass. The backward pass is one reduction pass and one elementwise pass.

use crate::error::{check_len, checked_product, shape_str};
use crate::parallel::{for_each_chunk_mut, worth_parallel};
use crate::scalar::cst;
use crate::{Float, KernelError};
use multiversion::multiversion;
use rayon::prelude::*;

/// Elements per task (rounded to whole samples or rows): large enough that a 128 × 512 batch
/// is one chunk, so per-chunk set-up does not show next to the loops.
const CHUNK_ELEMENTS: usize = 65536;

/// Shape of batch-norm data: `batch × channels × length`, row-major.
#[derive(Clone, Copy, Debug)]
pub struct NormShape {
    pub batch: usize,
    pub channels: usize,
    pub length: usize,
}

impl NormShape {
    /// The shape of `x`: `(batch, channels)` or `(batch, channels, length)`.
    pub fn of(x: &[usize]) -> Result<NormShape, KernelError> {
        match *x {
            [batch, channels] => Ok(NormShape { batch, channels, length: 1 }),
            [batch, channels, length] => Ok(NormShape { batch, channels, length }),
            _ => Err(KernelError::shape(
                "x",
                "shape (batch, channels) or (batch, channels, length)",
                shape_str(x),
            )),
        }
    }

    /// `batch · channels · length`, or an error if it does not fit in memory. Every kernel
    /// checks `x` against it first, so [`NormShape::len`] and `sample` cannot overflow after.
    fn checked_len(&self) -> Result<usize, KernelError> {
        let sample = checked_product("x", self.channels, self.length)?;
        checked_product("x", self.batch, sample)
    }

    /// Values per channel: `batch · length`.
    fn count(&self) -> usize {
        self.batch * self.length
    }

    fn sample(&self) -> usize {
        self.channels * self.length
    }

    fn len(&self) -> usize {
        self.batch * self.sample()
    }

    /// Samples per chunk: fixed by the shape alone, so sums do not depend on thread count.
    fn samples_per_chunk(&self) -> usize {
        (CHUNK_ELEMENTS / self.sample().max(1)).max(1)
    }
}

/// Two per-channel sums, as separate arrays so the loops over channels vectorize.
struct ChannelSums<T> {
    first: Vec<T>,
    second: Vec<T>,
}

impl<T: Float> ChannelSums<T> {
    fn zeros(channels: usize) -> Self {
        ChannelSums { first: vec![T::zero(); channels], second: vec![T::zero(); channels] }
    }

    /// Adds `other` (converted to f64) into `self` and clears `other`.
    fn drain_into(other: &mut ChannelSums<T>, total: &mut ChannelSums<f64>) {
        for (t, o) in total.first.iter_mut().zip(other.first.iter_mut()) {
            *t += o.as_f64();
            *o = T::zero();
        }
        for (t, o) in total.second.iter_mut().zip(other.second.iter_mut()) {
            *t += o.as_f64();
            *o = T::zero();
        }
    }
}

/// Samples summed in the element type before the block is added to the f64 totals: wide
/// vectors for the inner loop, f64 accuracy across the batch.
const SAMPLES_PER_BLOCK: usize = 32;

/// Per-channel sums over chunks of samples, merged in chunk order: `f(samples, sums)` adds the
/// contribution of a block of at most [`SAMPLES_PER_BLOCK`] samples.
fn channel_sums<T: Float>(
    shape: NormShape, f: impl Fn(std::ops::Range<usize>, &mut ChannelSums<T>) + Sync + Send,
) -> ChannelSums<f64> {
    let per_chunk = shape.samples_per_chunk();
    let chunks = shape.batch.div_ceil(per_chunk);
    let partial = |i: usize| {
        let mut total = ChannelSums::<f64>::zeros(shape.channels);
        let mut block = ChannelSums::<T>::zeros(shape.channels);
        let end = ((i + 1) * per_chunk).min(shape.batch);
        for start in (i * per_chunk..end).step_by(SAMPLES_PER_BLOCK) {
            f(start..(start + SAMPLES_PER_BLOCK).min(end), &mut block);
            ChannelSums::drain_into(&mut block, &mut total);
        }
        total
    };
    let partials: Vec<ChannelSums<f64>> = if worth_parallel(shape.len()) && chunks > 1 {
        crate::parallel::install(|| (0..chunks).into_par_iter().map(partial).collect())
    } else {
        (0..chunks).map(partial).collect()
    };
    let mut total = ChannelSums::<f64>::zeros(shape.channels);
    for mut p in partials {
        ChannelSums::drain_into(&mut p, &mut total);
    }
    total
}

/// Adds `(x − shift)` and `(x − shift)²` of a block of samples into `acc` (per channel).
#[multiversion(targets("x86_64+avx2+fma"))]
fn accumulate_moments<T: Float>(samples: &[T], shift: &[T], length: usize, acc: &mut ChannelSums<T>) {
    let n = shift.len();
    let (s1, s2) = (&mut acc.first[..n], &mut acc.second[..n]);
    for one in samples.chunks_exact(n * length) {
        if length == 1 {
            // Indexing equal-length slices (bounds checks hoisted) vectorizes best.
            let (v, k) = (&one[..n], &shift[..n]);
            for c in 0..n {
                let d = v[c] - k[c];
                s1[c] += d;
                s2[c] += d * d;
            }
            continue;
        }
        for (c, values) in one.chunks_exact(length).enumerate() {
            let (mut a, mut b) = (T::zero(), T::zero());
            for &v in values {
                let d = v - shift[c];
                a += d;
                b += d * d;
            }
            s1[c] += a;
            s2[c] += b;
        }
    }
}

/// Writes each channel's batch mean and biased variance into `mean` and `var`.
///
/// Zero sizes: no channels give empty `mean` and `var`; channels with no values (zero batch or
/// zero length) have no statistics, an error.
pub fn batch_norm_statistics<T: Float>(
    x: &[T], shape: NormShape, mean: &mut [T], var: &mut [T],
) -> Result<(), KernelError> {
    check_len("x", x, shape.checked_len()?)?;
    check_len("mean", mean, shape.channels)?;
    check_len("var", var, shape.channels)?;
    if shape.channels == 0 {
        return Ok(());
    }
    let count = shape.count();
    if count == 0 {
        return Err(KernelError::shape("x", "at least one value per channel", "none"));
    }
    // Shifting by the first sample's values keeps the sums small, so E[d²] − E[d]² does not
    // cancel catastrophically when the mean is large next to the spread. `batch >= 1` and
    // `length >= 1` here (count > 0), so the first sample exists and the chunks are not empty.
    let shift: Vec<T> = x[..shape.sample()].chunks_exact(shape.length).map(|c| c[0]).collect();
    let sums = channel_sums(shape, |samples, acc| {
        let block = &x[samples.start * shape.sample()..samples.end * shape.sample()];
        accumulate_moments(block, &shift, shape.length, acc);
    });
    let moments = sums.first.iter().zip(&sums.second).zip(&shift);
    for ((m, v), ((s1, s2), &k)) in mean.iter_mut().zip(var.iter_mut()).zip(moments) {
        let d_mean = s1 / count as f64;
        *m = T::from_f64(k.as_f64() + d_mean);
        *v = T::from_f64((s2 / count as f64 - d_mean * d_mean).max(0.0));
    }
    Ok(())
}

/// `out = (x − mean)·scale + shift` per channel, with `scale = γ/σ` and `shift = β`.
#[multiversion(targets("x86_64+avx2+fma"))]
fn normalize_samples<T: Float>(x: &[T], out: &mut [T], mean: &[T], scale: &[T], shift: &[T], length: usize) {
    let sample = mean.len() * length;
    for (o_sample, x_sample) in out.chunks_exact_mut(sample).zip(x.chunks_exact(sample)) {
        if length == 1 {
            let n = mean.len();
            let (o, v, m, a, b) = (&mut o_sample[..n], &x_sample[..n], &mean[..n], &scale[..n], &shift[..n]);
            for c in 0..n {
                o[c] = (v[c] - m[c]) * a[c] + b[c];
            }
            continue;
        }
        let channels = o_sample.chunks_exact_mut(length).zip(x_sample.chunks_exact(length));
        for ((((o, v), &m), &a), &b) in channels.zip(mean).zip(scale).zip(shift) {
            for (o, &v) in o.iter_mut().zip(v) {
                *o = (v - m) * a + b;
            }
        }
    }
}

/// `out = (x − mean) · invstd · γ + β` per channel (`γ = 1`, `β = 0` when `None`). Zero sizes
/// give an empty `out`.
pub fn batch_norm_normalize<T: Float>(
    x: &[T], shape: NormShape, mean: &[T], invstd: &[T], gamma: Option<&[T]>, beta: Option<&[T]>,
    out: &mut [T],
) -> Result<(), KernelError> {
    check_len("x", x, shape.checked_len()?)?;
    check_len("out", out, shape.len())?;
    for (name, v) in [("mean", Some(mean)), ("invstd", Some(invstd)), ("weight", gamma), ("bias", beta)] {
        if let Some(v) = v {
            check_len(name, v, shape.channels)?;
        }
    }
    if out.is_empty() {
        return Ok(());
    }
    let scale: Vec<T> = match gamma {
        Some(g) => g.iter().zip(invstd).map(|(&g, &s)| g * s).collect(),
        None => invstd.to_vec(),
    };
    let shift: Vec<T> = beta.map_or_else(|| vec![T::zero(); shape.channels], <[T]>::to_vec);
    let chunk = shape.samples_per_chunk() * shape.sample();
    for_each_chunk_mut(out, chunk, worth_parallel(shape.len()), |i, o| {
        let start = i * chunk;
        normalize_samples(&x[start..start + o.len()], o, mean, &scale, &shift, shape.length);
    });
    Ok(())
}

/// Running statistics that a training step moves toward the batch's:
/// `r = (1 − factor)·r + factor·batch`, with the unbiased batch variance.
pub struct RunningStats<'a, T> {
    pub mean: &'a mut [T],
    pub var: &'a mut [T],
    pub factor: f64,
}

impl<'a, T> RunningStats<'a, T> {
    /// The running statistics when both `mean` and `var` are given, None when neither is.
    pub fn pair(
        mean: Option<&'a mut [T]>, var: Option<&'a mut [T]>, factor: f64,
    ) -> Result<Option<Self>, KernelError> {
        match (mean, var) {
            (Some(mean), Some(var)) => Ok(Some(RunningStats { mean, var, factor })),
            (None, None) => Ok(None),
            _ => Err(KernelError::Message("running_mean and running_var must be given together".into())),
        }
    }
}

/// Training-mode forward pass in one call: batch statistics, the running-statistics update,
/// `invstd = 1/√(var + eps)` and the normalization. Writes `out`, `save_mean` and
/// `save_invstd` (what the backward pass needs). Every length is checked before anything is
/// written. Zero sizes as [`batch_norm_statistics`]: no channels, empty results; no values per
/// channel, an error.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_forward_train<T: Float>(
    x: &[T], shape: NormShape, gamma: Option<&[T]>, beta: Option<&[T]>, eps: f64,
    running: Option<RunningStats<'_, T>>, out: &mut [T], save_mean: &mut [T], save_invstd: &mut [T],
) -> Result<(), KernelError> {
    check_len("x", x, shape.checked_len()?)?;
    check_len("out", out, shape.len())?;
    check_len("save_mean", save_mean, shape.channels)?;
    check_len("save_invstd", save_invstd, shape.channels)?;
    for (name, v) in [("weight", gamma), ("bias", beta)] {
        if let Some(v) = v {
            check_len(name, v, shape.channels)?;
        }
    }
    if let Some(r) = &running {
        check_len("running_mean", r.mean, shape.channels)?;
        check_len("running_var", r.var, shape.channels)?;
    }
    let mut var = vec![T::zero(); shape.channels];
    batch_norm_statistics(x, shape, save_mean, &mut var)?;
    if let Some(r) = running {
        let count = shape.count() as f64;
        let bessel = if count > 1.0 { count / (count - 1.0) } else { 1.0 };
        let (keep, take) = (cst::<T>(1.0 - r.factor), cst::<T>(r.factor));
        for ((rm, rv), (&m, &v)) in r.mean.iter_mut().zip(r.var.iter_mut()).zip(save_mean.iter().zip(&var)) {
            *rm = keep * *rm + take * m;
            *rv = keep * *rv + take * T::from_f64(v.as_f64() * bessel);
        }
    }
    for (s, &v) in save_invstd.iter_mut().zip(&var) {
        *s = T::from_f64(1.0 / (v.as_f64() + eps).sqrt());
    }
    batch_norm_normalize(x, shape, save_mean, save_invstd, gamma, beta, out)
}

/// Adds `dy` and `dy·(x − mean)` of a block of samples into `acc` (per channel).
#[multiversion(targets("x86_64+avx2+fma"))]
fn accumulate_grad_sums<T: Float>(x: &[T], dy: &[T], mean: &[T], length: usize, acc: &mut ChannelSums<T>) {
    let n = mean.len();
    let (s1, s2) = (&mut acc.first[..n], &mut acc.second[..n]);
    for (xs, dys) in x.chunks_exact(n * length).zip(dy.chunks_exact(n * length)) {
        if length == 1 {
            let (v, g, m) = (&xs[..n], &dys[..n], &mean[..n]);
            for c in 0..n {
                s1[c] += g[c];
                s2[c] += g[c] * (v[c] - m[c]);
            }
            continue;
        }
        for (c, (xc, dyc)) in xs.chunks_exact(length).zip(dys.chunks_exact(length)).enumerate() {
            let (mut a, mut b) = (T::zero(), T::zero());
            for (&v, &g) in xc.iter().zip(dyc) {
                a += g;
                b += g * (v - mean[c]);
            }
            s1[c] += a;
            s2[c] += b;
        }
    }
}

/// Per-channel coefficients of the input gradient: `dx = k1·dy + k2·(x − mean) + k3`.
struct GradCoefficients<T> {
    k1: Vec<T>,
    k2: Vec<T>,
    k3: Vec<T>,
}

#[multiversion(targets("x86_64+avx2+fma"))]
fn grad_of_input<T: Float>(
    x: &[T], dy: &[T], dx: &mut [T], mean: &[T], k: &GradCoefficients<T>, length: usize,
) {
    let sample = mean.len() * length;
    let samples = dx.chunks_exact_mut(sample).zip(x.chunks_exact(sample)).zip(dy.chunks_exact(sample));
    for ((dx_s, x_s), dy_s) in samples {
        if length == 1 {
            let n = mean.len();
            let (d, v, g, m) = (&mut dx_s[..n], &x_s[..n], &dy_s[..n], &mean[..n]);
            let (k1, k2, k3) = (&k.k1[..n], &k.k2[..n], &k.k3[..n]);
            for c in 0..n {
                d[c] = k1[c] * g[c] + k2[c] * (v[c] - m[c]) + k3[c];
            }
            continue;
        }
        let channels =
            dx_s.chunks_exact_mut(length).zip(x_s.chunks_exact(length)).zip(dy_s.chunks_exact(length));
        for (c, ((dx_c, x_c), dy_c)) in channels.enumerate() {
            let (m, k1, k2, k3) = (mean[c], k.k1[c], k.k2[c], k.k3[c]);
            for ((d, &v), &g) in dx_c.iter_mut().zip(x_c).zip(dy_c) {
                *d = k1 * g + k2 * (v - m) + k3;
            }
        }
    }
}

/// Gradients of batch norm's backward pass; `None` skips one.
pub struct BatchNormGrads<'a, T> {
    /// Overwritten with dL/dx.
    pub input: Option<&'a mut [T]>,
    /// Accumulated: `+= Σ dy·x̂`.
    pub weight: Option<&'a mut [T]>,
    /// Accumulated: `+= Σ dy`.
    pub bias: Option<&'a mut [T]>,
}

/// Backward pass of batch norm given the forward's `mean` and `invstd`. With `batch_stats`
/// (training) the input gradient includes the statistics' dependence on the batch:
/// `dx = γ·σ⁻¹/M · (M·dy − Σdy − x̂·Σdy·x̂)` with `M = batch·length`; without (eval, running
/// statistics) it is `dx = γ·σ⁻¹·dy`.
///
/// Zero sizes: no channels, or no values per channel, leave `grad_weight` and `grad_bias`
/// unchanged (they accumulate sums of nothing) and `grad_input` empty.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward<T: Float>(
    x: &[T], grad_out: &[T], shape: NormShape, mean: &[T], invstd: &[T], gamma: Option<&[T]>,
    batch_stats: bool, grads: BatchNormGrads<'_, T>,
) -> Result<(), KernelError> {
    check_len("x", x, shape.checked_len()?)?;
    check_len("grad_output", grad_out, shape.len())?;
    check_len("mean", mean, shape.channels)?;
    check_len("invstd", invstd, shape.channels)?;
    if let Some(g) = gamma {
        check_len("weight", g, shape.channels)?;
    }
    for (name, g) in [("grad_weight", &grads.weight), ("grad_bias", &grads.bias)] {
        if let Some(g) = g {
            check_len(name, g, shape.channels)?;
        }
    }
    if let Some(g) = &grads.input {
        check_len("grad_input", g, shape.len())?;
    }
    if shape.channels == 0 || shape.count() == 0 {
        return Ok(());
    }
    let sums = channel_sums(shape, |samples, acc| {
        let range = samples.start * shape.sample()..samples.end * shape.sample();
        accumulate_grad_sums(&x[range.clone()], &grad_out[range], mean, shape.length, acc);
    });
    if let Some(gw) = grads.weight {
        for ((g, s), &istd) in gw.iter_mut().zip(&sums.second).zip(invstd) {
            *g += T::from_f64(s * istd.as_f64());
        }
    }
    if let Some(gb) = grads.bias {
        for (g, s) in gb.iter_mut().zip(&sums.first) {
            *g += T::from_f64(*s);
        }
    }
    let Some(dx) = grads.input else { return Ok(()) };
    let count = shape.count() as f64;
    let mut k = GradCoefficients {
        k1: Vec::with_capacity(shape.channels),
        k2: Vec::with_capacity(shape.channels),
        k3: Vec::with_capacity(shape.channels),
    };
    for c in 0..shape.channels {
        let istd = invstd[c].as_f64();
        let a = gamma.map_or(1.0, |g| g[c].as_f64()) * istd;
        let (k2, k3) = if batch_stats {
            (-a * istd * istd * sums.second[c] / count, -a * sums.first[c] / count)
        } else {
            (0.0, 0.0)
        };
        k.k1.push(cst::<T>(a));
        k.k2.push(cst::<T>(k2));
        k.k3.push(cst::<T>(k3));
    }
    let chunk = shape.samples_per_chunk() * shape.sample();
    for_each_chunk_mut(dx, chunk, worth_parallel(shape.len()), |i, d| {
        let range = i * chunk..i * chunk + d.len();
        grad_of_input(&x[range.clone()], &grad_out[range], d, mean, &k, shape.length);
    });
    Ok(())
}

/// Rows of layer-norm input holding `features` values each.
fn layer_rows<T>(x: &[T], features: usize) -> Result<usize, KernelError> {
    if features == 0 || x.len() % features != 0 {
        return Err(KernelError::shape("x", format!("a multiple of {features} elements"), x.len()));
    }
    Ok(x.len() / features)
}

/// Rows per task of layer norm.
fn rows_per_chunk(features: usize) -> usize {
    (CHUNK_ELEMENTS / features.max(1)).max(1)
}

/// Rows of layer-norm input of shape `x` whose trailing dimensions hold `features` values.
pub fn layer_norm_rows(x: &[usize], features: usize) -> Result<usize, KernelError> {
    let total: usize = x.iter().product();
    if features == 0 || total % features != 0 {
        return Err(KernelError::Message(format!(
            "x's trailing dimensions must hold {features} values (normalized_shape), got shape {}",
            shape_str(x)
        )));
    }
    Ok(total / features)
}

/// Layer norm forward over rows of `features` values: writes `out`, and each row's `mean` and
/// `invstd = 1/√(var + eps)` (biased variance, two passes over the row, which is in cache).
/// Zero rows give empty results; zero features are an error (a row must hold values).
#[allow(clippy::too_many_arguments)]
pub fn layer_norm_forward<T: Float>(
    x: &[T], features: usize, gamma: Option<&[T]>, beta: Option<&[T]>, eps: f64, out: &mut [T],
    mean: &mut [T], invstd: &mut [T],
) -> Result<(), KernelError> {
    let rows = layer_rows(x, features)?;
    check_len("out", out, x.len())?;
    check_len("mean", mean, rows)?;
    check_len("invstd", invstd, rows)?;
    for (name, v) in [("weight", gamma), ("bias", beta)] {
        if let Some(v) = v {
            check_len(name, v, features)?;
        }
    }
    let per_chunk = rows_per_chunk(features);
    let parallel = worth_parallel(x.len());
    type RowChunk<'a, T> = (usize, (&'a mut [T], (&'a mut [T], &'a mut [T])));
    let work = |(i, (o, (m, s))): RowChunk<'_, T>| {
        let first = i * per_chunk;
        for (r, (o_row, (m, s))) in
            o.chunks_exact_mut(features).zip(m.iter_mut().zip(s.iter_mut())).enumerate()
        {
            let row = &x[(first + r) * features..(first + r + 1) * features];
            let mu = row.iter().map(|v| v.as_f64()).sum::<f64>() / features as f64;
            let var = row.iter().map(|v| (v.as_f64() - mu).powi(2)).sum::<f64>() / features as f64;
            let istd = 1.0 / (var + eps).sqrt();
            *m = T::from_f64(mu);
            *s = T::from_f64(istd);
            let (mu_t, istd_t) = (*m, *s);
            for (j, (o, &v)) in o_row.iter_mut().zip(row).enumerate() {
                let xhat = (v - mu_t) * istd_t;
                let scaled = gamma.map_or(xhat, |g| xhat * g[j]);
                *o = beta.map_or(scaled, |b| scaled + b[j]);
            }
        }
    };
    let chunks = out
        .chunks_mut(per_chunk * features)
        .zip(mean.chunks_mut(per_chunk).zip(invstd.chunks_mut(per_chunk)))
        .enumerate();
    if parallel {
        let chunks: Vec<_> = chunks.collect();
        crate::parallel::install(|| chunks.into_par_iter().for_each(work));
    } else {
        chunks.for_each(work);
    }
    Ok(())
}

/// Layer norm backward: overwrites `grad_input`, accumulates `grad_weight += Σ_rows dy·x̂` and
/// `grad_bias += Σ_rows dy` (per-chunk partial sums added in order). Zero rows leave
/// `grad_weight` and `grad_bias` unchanged; zero features are an error.
#[allow(clippy::too_many_arguments)]
pub fn layer_norm_backward<T: Float>(
    x: &[T], grad_out: &[T], features: usize, mean: &[T], invstd: &[T], gamma: Option<&[T]>,
    grad_input: &mut [T], grad_weight: Option<&mut [T]>, grad_bias: Option<&mut [T]>,
) -> Result<(), KernelError> {
    let rows = layer_rows(x, features)?;
    check_len("grad_output", grad_out, x.len())?;
    check_len("grad_input", grad_input, x.len())?;
    check_len("mean", mean, rows)?;
    check_len("invstd", invstd, rows)?;
    if let Some(g) = gamma {
        check_len("weight", g, features)?;
    }
    for (name, g) in [("grad_weight", &grad_weight), ("grad_bias", &grad_bias)] {
        if let Some(g) = g {
            check_len(name, g, features)?;
        }
    }
    let per_chunk = rows_per_chunk(features);
    let work = |(i, dx): (usize, &mut [T])| -> Vec<[f64; 2]> {
        let mut partial = vec![[0.0f64; 2]; features];
        let first = i * per_chunk;
        for (r, dx_row) in dx.chunks_exact_mut(features).enumerate() {
            let row = first + r;
            let xs = &x[row * features..(row + 1) * features];
            let dys = &grad_out[row * features..(row + 1) * features];
            let (mu, istd) = (mean[row], invstd[row]);
            // g = dy·γ; dx = σ⁻¹/D · (D·g − Σg − x̂·Σg·x̂)
            let (mut sum_g, mut sum_g_xhat) = (0.0f64, 0.0f64);
            for (j, (&v, &dy)) in xs.iter().zip(dys).enumerate() {
                let xhat = (v - mu) * istd;
                let g = gamma.map_or(dy, |w| dy * w[j]);
                sum_g += g.as_f64();
                sum_g_xhat += (g * xhat).as_f64();
                partial[j][0] += dy.as_f64();
                partial[j][1] += (dy * xhat).as_f64();
            }
            let d = features as f64;
            let (mean_g, mean_g_xhat) = (cst::<T>(sum_g / d), cst::<T>(sum_g_xhat / d));
            for (j, (out, (&v, &dy))) in dx_row.iter_mut().zip(xs.iter().zip(dys)).enumerate() {
                let xhat = (v - mu) * istd;
                let g = gamma.map_or(dy, |w| dy * w[j]);
                *out = istd * (g - mean_g - xhat * mean_g_xhat);
            }
        }
        partial
    };
    let chunks = grad_input.chunks_mut(per_chunk * features).enumerate();
    let partials: Vec<Vec<[f64; 2]>> = if worth_parallel(x.len()) {
        let chunks: Vec<_> = chunks.collect();
        crate::parallel::install(|| chunks.into_par_iter().map(work).collect())
    } else {
        chunks.map(work).collect()
    };
    let mut totals = vec![[0.0f64; 2]; features];
    for p in partials {
        for (t, v) in totals.iter_mut().zip(p) {
            t[0] += v[0];
            t[1] += v[1];
        }
    }
    if let Some(gb) = grad_bias {
        gb.iter_mut().zip(&totals).for_each(|(g, t)| *g += T::from_f64(t[0]));
    }
    if let Some(gw) = grad_weight {
        gw.iter_mut().zip(&totals).for_each(|(g, t)| *g += T::from_f64(t[1]));
    }
    Ok(())
}

/// SplitMix64's output function: a well-mixed 64-bit hash of `z`.
#[inline(always)]
fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Inverted dropout: element `i` is kept with probability `1 − p`, decided by a hash of
/// `(seed, i)` alone (so the mask does not depend on the thread count); kept elements are
/// scaled by `1/(1 − p)`. Writes `out = x·mask` and the `mask` (0 or `1/(1 − p)`); an empty `x`
/// gives empty results.
pub fn dropout_forward<T: Float>(
    x: &[T], p: f64, seed: u64, out: &mut [T], mask: &mut [T],
) -> Result<(), KernelError> {
    if !(0.0..1.0).contains(&p) {
        return Err(KernelError::value("p", format!("must be in [0, 1), got {p}")));
    }
    check_len("out", out, x.len())?;
    check_len("mask", mask, x.len())?;
    // Keep when the hash's top 53 bits, as a fraction of 2⁵³, are >= p.
    let threshold = (p * (1u64 << 53) as f64) as u64;
    let scale = cst::<T>(1.0 / (1.0 - p));
    let base = splitmix64(seed);
    const CHUNK: usize = 8192;
    for_each_chunk_mut(mask, CHUNK, worth_parallel(x.len()), |i, m| {
        for (j, v) in m.iter_mut().enumerate() {
            let index = (i * CHUNK + j) as u64;
            let bits = splitmix64(base ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15)) >> 11;
            *v = if bits >= threshold { scale } else { T::zero() };
        }
    });
    for_each_chunk_mut(out, CHUNK, worth_parallel(x.len()), |i, o| {
        let range = i * CHUNK..i * CHUNK + o.len();
        for ((o, &v), &m) in o.iter_mut().zip(&x[range.clone()]).zip(&mask[range]) {
            *o = v * m;
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_statistics_of_a_known_batch() {
        let x = [1.0f64, 10.0, 3.0, 10.0, 5.0, 10.0];
        let shape = NormShape { batch: 3, channels: 2, length: 1 };
        let (mut mean, mut var) = ([0.0; 2], [0.0; 2]);
        batch_norm_statistics(&x, shape, &mut mean, &mut var).unwrap();
        assert_eq!(mean, [3.0, 10.0]);
        assert!((var[0] - 8.0 / 3.0).abs() < 1e-15 && var[1] == 0.0);
    }

    #[test]
    fn dropout_keeps_about_one_minus_p_and_scales() {
        let x = vec![1.0f32; 100_000];
        let (mut out, mut mask) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        dropout_forward(&x, 0.3, 7, &mut out, &mut mask).unwrap();
        let kept = out.iter().filter(|&&v| v != 0.0).count() as f64 / x.len() as f64;
        assert!((kept - 0.7).abs() < 0.01, "kept {kept}");
        assert!(out.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.7).abs() < 1e-6));
        assert!(dropout_forward(&x, 1.0, 7, &mut out, &mut mask).is_err());
    }

    #[test]
    fn zero_sizes_give_defined_results() {
        let shape = |batch, channels, length| NormShape { batch, channels, length };
        let none: &mut [f64] = &mut [];
        // No channels: nothing to compute (this used to panic in chunks_exact(0)).
        batch_norm_statistics(&[0.0f64; 0], shape(2, 0, 4), &mut [], &mut []).unwrap();
        batch_norm_statistics(&[0.0f64; 0], shape(2, 0, 1), &mut [], &mut []).unwrap();
        batch_norm_forward_train(&[], shape(2, 0, 3), None, None, 1e-5, None, &mut [], &mut [], none)
            .unwrap();
        // Channels without values: no statistics, an error, and nothing written.
        let (mut mean, mut var) = ([7.0; 3], [7.0; 3]);
        assert!(batch_norm_statistics(&[], shape(2, 3, 0), &mut mean, &mut var).is_err());
        assert!(batch_norm_statistics(&[], shape(0, 3, 1), &mut mean, &mut var).is_err());
        let (mut rm, mut rv) = ([7.0; 3], [7.0; 3]);
        let running = RunningStats { mean: &mut rm, var: &mut rv, factor: 0.1 };
        let mut invstd = [7.0; 3];
        let r = batch_norm_forward_train(
            &[],
            shape(2, 3, 0),
            None,
            None,
            1e-5,
            Some(running),
            &mut [],
            &mut mean,
            &mut invstd,
        );
        assert!(r.is_err() && rm == [7.0; 3] && rv == [7.0; 3] && mean == [7.0; 3]);
        // Normalizing and the backward pass of no values are empty; sums of nothing add 0.
        batch_norm_normalize(&[], shape(2, 3, 0), &[0.0; 3], &[1.0; 3], None, None, &mut []).unwrap();
        let (mut gw, mut gb) = ([5.0; 3], [5.0; 3]);
        for s in [shape(2, 3, 0), shape(0, 3, 2)] {
            let grads = BatchNormGrads { input: Some(&mut []), weight: Some(&mut gw), bias: Some(&mut gb) };
            batch_norm_backward(&[], &[], s, &[0.0; 3], &[1.0; 3], None, true, grads).unwrap();
        }
        assert!(gw == [5.0; 3] && gb == [5.0; 3]);
        let grads = BatchNormGrads::<f64> { input: Some(&mut []), weight: Some(&mut []), bias: None };
        batch_norm_backward(&[], &[], shape(4, 0, 2), &[], &[], None, true, grads).unwrap();
        // Layer norm: zero rows are empty, zero features an error.
        layer_norm_forward(&[0.0f64; 0], 4, None, None, 1e-5, &mut [], &mut [], &mut []).unwrap();
        assert!(layer_norm_forward(&[0.0f64; 0], 0, None, None, 1e-5, &mut [], &mut [], &mut []).is_err());
        let mut gw = [5.0; 4];
        layer_norm_backward(&[], &[], 4, &[], &[], None, &mut [], Some(&mut gw), None).unwrap();
        assert_eq!(gw, [5.0; 4]);
        dropout_forward(&[0.0f64; 0], 0.5, 1, &mut [], &mut []).unwrap();
    }
}
