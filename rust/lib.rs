//! saddlepoint's Python extension module `saddlepoint._core`: thin bindings over the kernels.

mod bindings;
mod error;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    bindings::register(m)
}
