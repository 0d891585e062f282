//! The one error type of the kernels; the bindings map it to Python exceptions.

use std::fmt;

/// What went wrong in a kernel call. Every variant becomes a Python `ValueError`.
#[derive(Debug, Clone, PartialEq)]
pub enum KernelError {
    /// An argument has the wrong number of elements or the wrong shape.
    Shape { name: &'static str, expected: String, actual: String },
    /// An argument holds a value outside its allowed range (a label, a NaN target, ...).
    Value { name: &'static str, message: String },
    /// An argument's shape does not fit the kernel, in the words of `message`.
    Message(String),
}

impl KernelError {
    pub fn shape(name: &'static str, expected: impl fmt::Display, actual: impl fmt::Display) -> Self {
        KernelError::Shape { name, expected: expected.to_string(), actual: actual.to_string() }
    }

    pub fn value(name: &'static str, message: impl Into<String>) -> Self {
        KernelError::Value { name, message: message.into() }
    }
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelError::Shape { name, expected, actual } => {
                write!(f, "{name} must have {expected}, got {actual}")
            }
            KernelError::Value { name, message } => write!(f, "{name}: {message}"),
            KernelError::Message(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for KernelError {}

/// Checks that a slice has exactly `expected` elements.
pub fn check_len<T>(name: &'static str, slice: &[T], expected: usize) -> Result<(), KernelError> {
    if slice.len() == expected {
        Ok(())
    } else {
        Err(KernelError::shape(name, format!("{expected} elements"), format!("{} elements", slice.len())))
    }
}

/// `rows · cols`, or an error naming `name` when the product does not fit in memory (lengths
/// from Python are never trusted to multiply safely).
pub fn checked_product(name: &'static str, rows: usize, cols: usize) -> Result<usize, KernelError> {
    rows.checked_mul(cols)
        .ok_or_else(|| KernelError::shape(name, "a size that fits in memory", format!("{rows} × {cols}")))
}

/// Formats a shape the way NumPy prints it: `(3, 4)`, `(5,)`.
pub fn shape_str(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    if shape.len() == 1 {
        format!("({},)", dims.join(""))
    } else {
        format!("({})", dims.join(", "))
    }
}

/// The dimensions of an array `name` of shape `shape` that must have `N` of them.
pub fn dims<const N: usize>(name: &str, shape: &[usize]) -> Result<[usize; N], KernelError> {
    let got =
        || KernelError::Message(format!("{name} must be {N}-dimensional, got shape {}", shape_str(shape)));
    <[usize; N]>::try_from(shape).map_err(|_| got())
}
