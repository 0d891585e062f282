//! The one error type of the bindings, mapped to Python exceptions.

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::PyErr;
use saddlepoint_kernels::KernelError;

/// Why a call from Python failed; every variant names the argument (or function) at fault.
#[derive(Debug)]
pub enum Error {
    /// Wrong type or dtype: `TypeError`.
    Type(String),
    /// Wrong shape, layout or value: `ValueError`.
    Value(String),
    /// A bug inside the extension (a kernel panicked): `RuntimeError`, an ordinary `Exception`.
    Internal(String),
}

impl From<KernelError> for Error {
    fn from(e: KernelError) -> Self {
        Error::Value(e.to_string())
    }
}

impl From<Error> for PyErr {
    fn from(e: Error) -> Self {
        match e {
            Error::Type(message) => PyTypeError::new_err(message),
            Error::Value(message) => PyValueError::new_err(message),
            Error::Internal(message) => PyRuntimeError::new_err(message),
        }
    }
}
