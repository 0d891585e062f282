//! The one guard between Python and the kernels: every binding makes one [`Args`] per call,
//! borrows each array argument through it and runs its kernel with [`Args::run`].
//!
//! [`Args::read`] and [`Args::write`] are the only way to borrow an argument, so no binding can
//! skip a check: the type and dtype, C-contiguity, alignment, writeability, and that no written
//! argument shares memory with any other argument of the call. [`Args::run`] releases the GIL
//! and turns a panic in a kernel into a Python `RuntimeError` (never a `PanicException`).

use crate::error::Error;
use numpy::{
    BorrowError, Element, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn,
    PyReadwriteArrayDyn, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use saddlepoint_kernels::KernelError;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The float element types the kernels take.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FloatDtype {
    F32,
    F64,
}

/// The bytes `[start, end)` one argument of the call occupies, and whether the kernel writes them.
struct Region {
    name: &'static str,
    start: usize,
    end: usize,
    written: bool,
}

impl Region {
    fn intersects(&self, other: &Region) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// The arguments of one call from Python: each array borrowed so far and the memory it covers.
pub struct Args<'py> {
    py: Python<'py>,
    function: &'static str,
    regions: Vec<Region>,
}

impl<'py> Args<'py> {
    /// A new call of the binding `function` (named in internal-error messages).
    pub fn new(py: Python<'py>, function: &'static str) -> Self {
        Args {
            py,
            function,
            regions: Vec::with_capacity(8),
        }
    }

    /// A read-only borrow of a C-contiguous, aligned array of `T`.
    pub fn read<T: Element>(
        &mut self,
        obj: &Bound<'py, PyAny>,
        name: &'static str,
    ) -> Result<PyReadonlyArrayDyn<'py, T>, Error> {
        let array = typed::<T>(obj, name)?;
        let region = region(array, name, false);
        let borrowed = array
            .try_readonly()
            .map_err(|e| self.borrow_error(&region, e))?;
        self.register(region)?;
        Ok(borrowed)
    }

    /// A writable borrow of a C-contiguous, aligned array of `T` that shares no memory with any
    /// other argument of the call.
    pub fn write<T: Element>(
        &mut self,
        obj: &Bound<'py, PyAny>,
        name: &'static str,
    ) -> Result<PyReadwriteArrayDyn<'py, T>, Error> {
        let array = typed::<T>(obj, name)?;
        let region = region(array, name, true);
        let borrowed = array
            .try_readwrite()
            .map_err(|e| self.borrow_error(&region, e))?;
        self.register(region)?;
        Ok(borrowed)
    }

    /// A read-only argument that must have `shape`.
    pub fn read_shaped<T: Element>(
        &mut self,
        obj: &Bound<'py, PyAny>,
        name: &'static str,
        shape: &[usize],
    ) -> Result<PyReadonlyArrayDyn<'py, T>, Error> {
        let array = self.read::<T>(obj, name)?;
        check_shape(name, array.shape(), shape)?;
        Ok(array)
    }

    /// A writable argument that must have `shape`.
    pub fn write_shaped<T: Element>(
        &mut self,
        obj: &Bound<'py, PyAny>,
        name: &'static str,
        shape: &[usize],
    ) -> Result<PyReadwriteArrayDyn<'py, T>, Error> {
        let array = self.write::<T>(obj, name)?;
        check_shape(name, array.shape(), shape)?;
        Ok(array)
    }

    /// An optional read-only argument: borrowed and checked to have `shape` when given.
    pub fn read_opt<T: Element>(
        &mut self,
        obj: Option<&Bound<'py, PyAny>>,
        name: &'static str,
        shape: &[usize],
    ) -> Result<Option<PyReadonlyArrayDyn<'py, T>>, Error> {
        obj.map(|o| self.read_shaped(o, name, shape)).transpose()
    }

    /// An optional writable argument: borrowed and checked to have `shape` when given.
    pub fn write_opt<T: Element>(
        &mut self,
        obj: Option<&Bound<'py, PyAny>>,
        name: &'static str,
        shape: &[usize],
    ) -> Result<Option<PyReadwriteArrayDyn<'py, T>>, Error> {
        obj.map(|o| self.write_shaped(o, name, shape)).transpose()
    }

    /// Runs `kernel` with the GIL released. A panic (a bug: kernels return errors) becomes a
    /// `RuntimeError` naming the function, instead of PyO3's `PanicException`, which is not an
    /// `Exception` and escapes `except Exception`.
    pub fn run<R: Send>(
        &self,
        kernel: impl FnOnce() -> Result<R, KernelError> + Send,
    ) -> Result<R, Error> {
        match self.py.detach(|| catch_unwind(AssertUnwindSafe(kernel))) {
            Ok(result) => Ok(result?),
            Err(payload) => Err(Error::Internal(format!(
                "internal error in saddlepoint._core.{}: {}; please report it",
                self.function,
                panic_message(payload.as_ref())
            ))),
        }
    }

    /// Records `region`, refusing it if it intersects an argument borrowed before where either
    /// of the two is written. Two arguments that are only read may share memory (the same array
    /// as input and target, say): nothing changes under them, so the result is unchanged.
    fn register(&mut self, region: Region) -> Result<(), Error> {
        if let Some(other) = self.conflict(&region) {
            return Err(overlap_error(&region, other));
        }
        self.regions.push(region);
        Ok(())
    }

    fn conflict(&self, region: &Region) -> Option<&Region> {
        self.regions
            .iter()
            .find(|r| (r.written || region.written) && r.intersects(region))
    }

    /// rust-numpy refused the borrow: read-only, or (a coarser overlap check than ours, per
    /// base object) the memory is borrowed for writing by this call or by another thread.
    fn borrow_error(&self, region: &Region, e: BorrowError) -> Error {
        match e {
            BorrowError::NotWriteable => Error::Value(format!(
                "{} must be writeable, got a read-only array; pass a copy",
                region.name
            )),
            _ => match self.conflict(region) {
                Some(other) => overlap_error(region, other),
                None => Error::Value(format!(
                    "{} is in use by a kernel running in another thread; pass a separate array",
                    region.name
                )),
            },
        }
    }
}

fn overlap_error(region: &Region, other: &Region) -> Error {
    Error::Value(format!(
        "{} and {} share memory and one of them is written by this call; pass separate \
         arrays (a copy of one)",
        other.name, region.name
    ))
}

/// The memory `array` covers; an empty array covers none (and so overlaps nothing).
fn region<T: Element>(
    array: &Bound<'_, PyArrayDyn<T>>,
    name: &'static str,
    written: bool,
) -> Region {
    let start = array.data() as usize;
    let bytes = array.len().saturating_mul(std::mem::size_of::<T>());
    Region {
        name,
        start,
        end: start.saturating_add(bytes),
        written,
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
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

/// `obj` as an array of `T` whose data the kernels can take as a slice: C-contiguous and
/// aligned for `T` (a view at an odd byte offset into a buffer is not).
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
    let array = obj
        .cast::<PyArrayDyn<T>>()
        .map_err(|_| Error::Type(format!("{name} must have dtype {expected}")))?;
    if !array.is_c_contiguous() {
        return Err(Error::Value(format!(
            "{name} must be C-contiguous, got a strided view; pass numpy.ascontiguousarray({name})"
        )));
    }
    let align = std::mem::align_of::<T>();
    if array.len() > 0 && (array.data() as usize) % align != 0 {
        return Err(Error::Value(format!(
            "{name} is not aligned: its data starts at an address that is not a multiple of \
             {align} bytes, as {expected} needs (a view at an odd offset into a buffer, e.g. \
             from numpy.frombuffer); pass a copy, {name}.copy() (numpy.ascontiguousarray keeps \
             the misalignment)"
        )));
    }
    Ok(array)
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

/// The contiguous data of a checked borrow (never fails after [`Args::read`]).
pub fn slice<'a, T: Element>(
    a: &'a PyReadonlyArrayDyn<'_, T>,
    name: &str,
) -> Result<&'a [T], Error> {
    a.as_slice()
        .map_err(|_| Error::Value(format!("{name} must be C-contiguous and aligned")))
}

/// The contiguous data of a checked writable borrow (never fails after [`Args::write`]).
pub fn slice_mut<'a, T: Element>(
    a: &'a mut PyReadwriteArrayDyn<'_, T>,
    name: &str,
) -> Result<&'a mut [T], Error> {
    a.as_slice_mut()
        .map_err(|_| Error::Value(format!("{name} must be C-contiguous and aligned")))
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
