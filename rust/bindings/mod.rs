//! PyO3 wrappers, one file per kernel file (`kernels/X.rs` <-> `bindings/X.rs`): check the
//! arrays through the one guard ([`arrays::Args`]), pick the float type once
//! ([`arrays::with_float`]), release the GIL, call the kernel, map the error.

mod activation;
mod arrays;
mod clip;
mod gather;
mod loss;
mod matmul;
mod norm;
mod optim;
mod parallel;
mod scalars;

use pyo3::prelude::*;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(activation::activation_forward, m)?)?;
    m.add_function(wrap_pyfunction!(activation::activation_backward, m)?)?;
    m.add_function(wrap_pyfunction!(gather::gather_rows, m)?)?;
    m.add_function(wrap_pyfunction!(loss::mse_loss, m)?)?;
    m.add_function(wrap_pyfunction!(loss::l1_loss, m)?)?;
    m.add_function(wrap_pyfunction!(loss::binary_cross_entropy_with_logits, m)?)?;
    m.add_function(wrap_pyfunction!(loss::cross_entropy, m)?)?;
    m.add_function(wrap_pyfunction!(loss::softmax, m)?)?;
    m.add_function(wrap_pyfunction!(loss::log_softmax, m)?)?;
    m.add_function(wrap_pyfunction!(loss::one_hot, m)?)?;
    m.add_function(wrap_pyfunction!(matmul::dense_forward, m)?)?;
    m.add_function(wrap_pyfunction!(matmul::dense_backward, m)?)?;
    m.add_function(wrap_pyfunction!(norm::batch_norm_statistics, m)?)?;
    m.add_function(wrap_pyfunction!(norm::batch_norm_forward_train, m)?)?;
    m.add_function(wrap_pyfunction!(norm::batch_norm_normalize, m)?)?;
    m.add_function(wrap_pyfunction!(norm::batch_norm_backward, m)?)?;
    m.add_function(wrap_pyfunction!(norm::layer_norm_forward, m)?)?;
    m.add_function(wrap_pyfunction!(norm::layer_norm_backward, m)?)?;
    m.add_function(wrap_pyfunction!(norm::dropout_forward, m)?)?;
    m.add_function(wrap_pyfunction!(optim::sgd_step, m)?)?;
    m.add_function(wrap_pyfunction!(optim::adagrad_step, m)?)?;
    m.add_function(wrap_pyfunction!(optim::rmsprop_step, m)?)?;
    m.add_function(wrap_pyfunction!(optim::adam_step, m)?)?;
    m.add_function(wrap_pyfunction!(clip::norm_part, m)?)?;
    m.add_function(wrap_pyfunction!(clip::all_finite, m)?)?;
    m.add_function(wrap_pyfunction!(clip::scale_, m)?)?;
    m.add_function(wrap_pyfunction!(clip::clamp_, m)?)?;
    m.add_function(wrap_pyfunction!(parallel::set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(parallel::get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_in_kernel, m)?)?;
    Ok(())
}

/// Panics inside [`arrays::Args::run`], as a kernel with a bug would: for the test that such a
/// panic reaches Python as a `RuntimeError`, not a `PanicException`.
#[pyfunction]
#[allow(clippy::panic)]
fn _panic_in_kernel(py: Python<'_>, message: String) -> Result<(), crate::error::Error> {
    arrays::Args::new(py, "_panic_in_kernel").run(|| -> Result<(), _> { panic!("{message}") })
}
