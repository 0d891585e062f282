//! Fused, in-place parameter updates.

use crate::error::check_len;
use crate::parallel::{for_each_chunk_mut, worth_parallel};
use crate::scalar::cst;
use crate::{Float, KernelError};

const CHUNK: usize = 16384;

/// Plain gradient descent: `param −= lr · grad`.
pub fn sgd_step<T: Float>(param: &mut [T], grad: &[T], lr: f64) -> Result<(), KernelError> {
    check_len("grad", grad, param.len())?;
    let lr = cst::<T>(lr);
    for_each_chunk_mut(param, CHUNK, worth_parallel(grad.len()), |i, p| {
        let (start, end) = (i * CHUNK, i * CHUNK + p.len());
        for (pi, &g) in p.iter_mut().zip(&grad[start..end]) {
            *pi = *pi - lr * g;
        }
    });
    Ok(())
}
