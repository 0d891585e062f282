//! saddlepoint's Python extension module `saddlepoint._core`: thin bindings over the kernels.
//!
//! Nothing reachable from Python may panic: a failure is a Python exception. Clippy enforces it
//! (`cargo clippy --workspace --release`), and `bindings::arrays::Args::run` turns any panic that
//! still happens inside a kernel into a `RuntimeError`.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented,
        clippy::indexing_slicing
    )
)]

mod bindings;
mod error;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    bindings::register(m)
}
