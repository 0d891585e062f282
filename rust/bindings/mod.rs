//! PyO3 wrappers, one file per kernel file (`kernels/X.rs` <-> `bindings/X.rs`): check the
//! arrays through the one guard ([`arrays::Args`]), pick the float type once
//! ([`arrays::with_float`]), release the GIL, call the kernel, map the error.

// A binding takes the arguments of the Python function it is, however many.
#![allow(clippy::too_many_arguments)]

mod activation;
mod arrays;
mod clip;
mod conv;
mod dense;
mod gather;
mod loss;
mod matmul;
mod norm;
mod optim;
mod parallel;
mod pool;
mod scalars;

use pyo3::prelude::*;

/// Adds `module::function` for each listed function of each binding module to `m`.
macro_rules! add_functions {
    ($m:ident, [$($module:ident: $($function:ident)*;)*]) => {
        $($($m.add_function(wrap_pyfunction!($module::$function, $m)?)?;)*)*
    };
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    add_functions!(m, [
        activation: activation_forward activation_backward;
        clip: norm_part all_finite scale_ clamp_;
        dense: dense_forward dense_backward;
        conv: conv2d_forward conv2d_backward;
        gather: gather_rows;
        loss: mse_loss l1_loss binary_cross_entropy_with_logits cross_entropy softmax log_softmax one_hot;
        matmul: matmul_simd;
        norm: batch_norm_statistics batch_norm_forward_train batch_norm_normalize batch_norm_backward
              layer_norm_forward layer_norm_backward dropout_forward;
        optim: sgd_step adagrad_step rmsprop_step adam_step;
        parallel: set_num_threads get_num_threads;
        pool: max_pool2d_forward max_pool2d_backward avg_pool2d_forward avg_pool2d_backward
              adaptive_avg_pool2d_forward adaptive_avg_pool2d_backward;
    ]);
    m.add_function(wrap_pyfunction!(_panic_in_kernel, m)?)
}

/// Panics inside [`arrays::Args::run`], as a kernel with a bug would: for the test that such a
/// panic reaches Python as a `RuntimeError`, not a `PanicException`.
#[pyfunction]
#[allow(clippy::panic)]
fn _panic_in_kernel(py: Python<'_>, message: String) -> Result<(), crate::error::Error> {
    arrays::Args::new(py, "_panic_in_kernel").run(|| -> Result<(), _> { panic!("{message}") })
}
