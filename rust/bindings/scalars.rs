//! Conversions of scalar arguments, used with `#[pyo3(from_py_with = ...)]`: a Python int out
//! of the argument's range is a `ValueError` (PyO3's own conversions raise `OverflowError`, which
//! is neither a `TypeError` nor a `ValueError`). A wrong type stays a `TypeError`; PyO3 adds a
//! note naming the argument to either.

use pyo3::exceptions::{PyOverflowError, PyValueError};
use pyo3::prelude::*;

/// `error`, with an `OverflowError` replaced by a `ValueError` saying which range `obj` missed.
fn out_of_range(obj: &Bound<'_, PyAny>, error: PyErr, range: &str) -> PyErr {
    if !error.is_instance_of::<PyOverflowError>(obj.py()) {
        return error;
    }
    let mut shown = obj.repr().map_or_else(|_| "a value out of range".to_string(), |r| r.to_string());
    if shown.chars().count() > 40 {
        shown = format!("{}... ({} digits)", shown.chars().take(20).collect::<String>(), shown.len());
    }
    PyValueError::new_err(format!("must be {range}, got {shown}"))
}

/// A float argument; an int beyond float range is a `ValueError`.
pub fn real(obj: &Bound<'_, PyAny>) -> PyResult<f64> {
    obj.extract::<f64>().map_err(|e| out_of_range(obj, e, "a float (an int beyond ±1.8e308 is not)"))
}

/// A non-negative 64-bit integer argument (a seed).
pub fn natural_u64(obj: &Bound<'_, PyAny>) -> PyResult<u64> {
    obj.extract::<u64>().map_err(|e| out_of_range(obj, e, "an integer in [0, 2**64)"))
}

/// A non-negative integer argument (a count).
pub fn natural_usize(obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    obj.extract::<usize>().map_err(|e| out_of_range(obj, e, "an integer in [0, 2**64)"))
}

/// A signed 64-bit integer argument.
pub fn int64(obj: &Bound<'_, PyAny>) -> PyResult<i64> {
    obj.extract::<i64>().map_err(|e| out_of_range(obj, e, "an integer in [-2**63, 2**63)"))
}
