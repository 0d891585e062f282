//! The one error type of the kernels; the bindings map it to Python exceptions.

use std::fmt;

/// What went wrong in a kernel call. Every variant becomes a Python `ValueError`.
#[derive(Debug, Clone, PartialEq)]
pub enum KernelError {
    /// An argument has the wrong number of elements or the wrong shape.
    Shape {
        name: &'static str,
        expected: String,
        actual: String,
    },
    /// An argument holds a value outside its allowed range (a label, a NaN target, ...).
    Value { name: &'static str, message: String },
}

impl KernelError {
    pub fn shape(
        name: &'static str,
        expected: impl fmt::Display,
        actual: impl fmt::Display,
    ) -> Self {
        KernelError::Shape {
            name,
            expected: expected.to_string(),
            actual: actual.to_string(),
        }
    }

    pub fn value(name: &'static str, message: impl Into<String>) -> Self {
        KernelError::Value {
            name,
            message: message.into(),
        }
    }
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelError::Shape {
                name,
                expected,
                actual,
            } => write!(f, "{name} must have {expected}, got {actual}"),
            KernelError::Value { name, message } => write!(f, "{name}: {message}"),
        }
    }
}

impl std::error::Error for KernelError {}

/// Checks that a slice has exactly `expected` elements.
pub fn check_len<T>(name: &'static str, slice: &[T], expected: usize) -> Result<(), KernelError> {
    if slice.len() == expected {
        Ok(())
    } else {
        Err(KernelError::shape(
            name,
            format!("{expected} elements"),
            format!("{} elements", slice.len()),
        ))
    }
}

/// `rows · cols`, or an error naming `name` when the product does not fit in memory (lengths
/// from Python are never trusted to multiply safely).
pub fn checked_product(name: &'static str, rows: usize, cols: usize) -> Result<usize, KernelError> {
    rows.checked_mul(cols).ok_or_else(|| {
        KernelError::shape(
            name,
            "a size that fits in memory",
            format!("{rows} × {cols}"),
        )
    })
}
