//! Turning Python arguments into checked NumPy borrows, with errors that name the argument.

use crate::error::Error;
use numpy::{
    BorrowError, Element, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn,
    PyReadwriteArrayDyn, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::prelude::*;

/// The float element types the kernels take.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FloatDtype {
    F32,
    F64,
}

fn untyped<'a, 'py>(
    obj: &'a Bound<'py, PyAny>,
    name: &str,
) -> Result<&'a Bound<'py, PyUntypedArray>, Error> {
    obj.cast::<PyUntypedArray>().map_err(|_| {
        let type_name = obj
            .get_type()
            .name()
            .map_or_else(|_| "an unknown type".to_string(), |n| n.to_string());
        Error::Type(format!("{name} must be a numpy.ndarray, got {type_name}"))
    })
}

/// The dtype of `obj` as a string, e.g. "float32".
pub fn dtype_name(obj: &Bound<'_, PyAny>, name: &str) -> Result<String, Error> {
    Ok(untyped(obj, name)?.dtype().to_string())
}

/// Whether `obj` is an array of `T` (cheaper than comparing dtype names).
pub fn has_dtype<T: Element>(obj: &Bound<'_, PyAny>, name: &str) -> Result<bool, Error> {
    Ok(untyped(obj, name)?
        .dtype()
        .is_equiv_to(&numpy::dtype::<T>(obj.py())))
}

/// Which float kernel `obj` needs: float32 or float64, anything else is a `TypeError`.
pub fn float_dtype(obj: &Bound<'_, PyAny>, name: &str) -> Result<FloatDtype, Error> {
    let dtype = untyped(obj, name)?.dtype();
    let py = obj.py();
    if dtype.is_equiv_to(&numpy::dtype::<f32>(py)) {
        Ok(FloatDtype::F32)
    } else if dtype.is_equiv_to(&numpy::dtype::<f64>(py)) {
        Ok(FloatDtype::F64)
    } else {
        Err(Error::Type(format!(
            "{name} must have dtype float32 or float64, got {dtype}"
        )))
    }
}

fn typed<'a, 'py, T: Element>(
    obj: &'a Bound<'py, PyAny>,
    name: &str,
) -> Result<&'a Bound<'py, PyArrayDyn<T>>, Error> {
    let array = untyped(obj, name)?;
    let expected = numpy::dtype::<T>(obj.py());
    if !array.dtype().is_equiv_to(&expected) {
        return Err(Error::Type(format!(
            "{name} must have dtype {expected}, got {}",
            array.dtype()
        )));
    }
    if !array.is_c_contiguous() {
        return Err(Error::Value(format!(
            "{name} must be C-contiguous, got a strided view; pass numpy.ascontiguousarray({name})"
        )));
    }
    obj.cast::<PyArrayDyn<T>>()
        .map_err(|_| Error::Type(format!("{name} must have dtype {expected}")))
}

fn borrow_error(name: &str, e: BorrowError) -> Error {
    match e {
        BorrowError::NotWriteable => {
            Error::Value(format!("{name} must be writeable, got a read-only array"))
        }
        _ => Error::Value(format!(
            "{name} overlaps another array of this call that is written to; pass separate arrays"
        )),
    }
}

/// A read-only borrow of a C-contiguous array of `T`.
pub fn read<'py, T: Element>(
    obj: &Bound<'py, PyAny>,
    name: &str,
) -> Result<PyReadonlyArrayDyn<'py, T>, Error> {
    typed::<T>(obj, name)?
        .try_readonly()
        .map_err(|e| borrow_error(name, e))
}

/// A writable borrow of a C-contiguous array of `T`.
pub fn write<'py, T: Element>(
    obj: &Bound<'py, PyAny>,
    name: &str,
) -> Result<PyReadwriteArrayDyn<'py, T>, Error> {
    typed::<T>(obj, name)?
        .try_readwrite()
        .map_err(|e| borrow_error(name, e))
}

/// Formats a shape the way NumPy prints it: `(3, 4)`, `(5,)`.
pub fn shape_str(shape: &[usize]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Checks that an array has exactly the shape `expected`.
pub fn check_shape(name: &str, actual: &[usize], expected: &[usize]) -> Result<(), Error> {
    if actual == expected {
        Ok(())
    } else {
        Err(Error::Value(format!(
            "{name} must have shape {}, got {}",
            shape_str(expected),
            shape_str(actual)
        )))
    }
}

/// The dimensions of an array that must have `N` of them.
pub fn dims<const N: usize>(name: &str, shape: &[usize]) -> Result<[usize; N], Error> {
    <[usize; N]>::try_from(shape).map_err(|_| {
        Error::Value(format!(
            "{name} must be {N}-dimensional, got shape {}",
            shape_str(shape)
        ))
    })
}

/// Calls `$typed::<f32>` or `$typed::<f64>` by the dtype of the array `$first`.
macro_rules! dispatch_float {
    ($first:expr, $name:expr, $typed:ident($($arg:expr),* $(,)?)) => {
        match $crate::bindings::arrays::float_dtype($first, $name)? {
            $crate::bindings::arrays::FloatDtype::F32 => $typed::<f32>($($arg),*),
            $crate::bindings::arrays::FloatDtype::F64 => $typed::<f64>($($arg),*),
        }
    };
}
pub(crate) use dispatch_float;

/// The contiguous data of a checked borrow (never fails after `read`/`write`).
pub fn slice<'a, T: Element>(
    a: &'a PyReadonlyArrayDyn<'_, T>,
    name: &str,
) -> Result<&'a [T], Error> {
    a.as_slice()
        .map_err(|_| Error::Value(format!("{name} must be C-contiguous")))
}

/// The contiguous data of a checked writable borrow.
pub fn slice_mut<'a, T: Element>(
    a: &'a mut PyReadwriteArrayDyn<'_, T>,
    name: &str,
) -> Result<&'a mut [T], Error> {
    a.as_slice_mut()
        .map_err(|_| Error::Value(format!("{name} must be C-contiguous")))
}

/// A read-only argument that must have `shape`.
pub fn read_shaped<'py, T: Element>(
    obj: &Bound<'py, PyAny>,
    name: &str,
    shape: &[usize],
) -> Result<PyReadonlyArrayDyn<'py, T>, Error> {
    let array = read::<T>(obj, name)?;
    check_shape(name, array.shape(), shape)?;
    Ok(array)
}

/// A writable argument that must have `shape`.
pub fn write_shaped<'py, T: Element>(
    obj: &Bound<'py, PyAny>,
    name: &str,
    shape: &[usize],
) -> Result<PyReadwriteArrayDyn<'py, T>, Error> {
    let array = write::<T>(obj, name)?;
    check_shape(name, array.shape(), shape)?;
    Ok(array)
}

/// An optional read-only argument: borrowed and checked to have `shape` when given.
pub fn read_opt<'py, T: Element>(
    obj: Option<&Bound<'py, PyAny>>,
    name: &str,
    shape: &[usize],
) -> Result<Option<PyReadonlyArrayDyn<'py, T>>, Error> {
    obj.map(|o| read_shaped(o, name, shape)).transpose()
}

/// An optional writable argument: borrowed and checked to have `shape` when given.
pub fn write_opt<'py, T: Element>(
    obj: Option<&Bound<'py, PyAny>>,
    name: &str,
    shape: &[usize],
) -> Result<Option<PyReadwriteArrayDyn<'py, T>>, Error> {
    obj.map(|o| write_shaped(o, name, shape)).transpose()
}

/// The data of an optional read-only argument.
pub fn slice_opt<'a, T: Element>(
    a: &'a Option<PyReadonlyArrayDyn<'_, T>>,
    name: &str,
) -> Result<Option<&'a [T]>, Error> {
    a.as_ref().map(|a| slice(a, name)).transpose()
}

/// The data of an optional writable argument.
pub fn slice_mut_opt<'a, T: Element>(
    a: &'a mut Option<PyReadwriteArrayDyn<'_, T>>,
    name: &str,
) -> Result<Option<&'a mut [T]>, Error> {
    a.as_mut().map(|a| slice_mut(a, name)).transpose()
}
