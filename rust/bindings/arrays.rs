//! The one guard between Python and the kernels: every binding makes one [`Args`] per call,
//! borrows each array argument through it and runs its kernel with [`Args::run`].
//!
//! [`Args::read`] and [`Args::write`] (and their list forms) are the only way to borrow an
//! argument, so no binding can skip a check: the type and dtype, C-contiguity, alignment,
//! writeability, the shape, and that no written array shares memory with any other array of the
//! call (an empty array covers no memory). [`Args::run`] releases the GIL and turns a panic in a
//! kernel into a Python `RuntimeError` (never a `PanicException`). [`with_float!`] is the one
//! dtype dispatch.

use crate::error::Error;
use numpy::{
    BorrowError, Element, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn,
    PyReadwriteArrayDyn, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use saddlepoint_kernels::KernelError;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// An array argument as it comes from Python (checked when borrowed through [`Args`]).
pub type Arr<'a, 'py> = &'a Bound<'py, PyAny>;
/// An optional array argument.
pub type OptArr<'a, 'py> = Option<&'a Bound<'py, PyAny>>;
/// A read-only borrow of a checked array.
pub type In<'py, T> = PyReadonlyArrayDyn<'py, T>;
/// A writable borrow of a checked array.
pub type Out<'py, T> = PyReadwriteArrayDyn<'py, T>;

/// The float element types the kernels take.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FloatDtype {
    F32,
    F64,
}

/// Runs `$body` once with `$T` the element type of the array `$first`, `f32` or `f64` (any
/// other dtype is a `TypeError` naming `$name`). The one dtype dispatch of the bindings, like
/// candle's `Map1`: the body is written once, generic over `$T`, and compiled for each type.
macro_rules! with_float {
    ($first:expr, $name:expr, |$T:ident| $body:expr) => {
        match $crate::bindings::arrays::float_dtype($first, $name)? {
            $crate::bindings::arrays::FloatDtype::F32 => {
                type $T = f32;
                $body
            }
            $crate::bindings::arrays::FloatDtype::F64 => {
                type $T = f64;
                $body
            }
        }
    };
}
pub(crate) use with_float;

/// The bytes `[start, end)` one array of the call occupies, and whether the kernel writes them.
struct Region {
    name: String,
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
        let regions = Vec::with_capacity(8);
        Args {
            py,
            function,
            regions,
        }
    }

    /// A read-only borrow of a C-contiguous, aligned array of `T`.
    pub fn read<T: Element>(&mut self, obj: Arr<'_, 'py>, name: &str) -> Result<In<'py, T>, Error> {
        let array = typed::<T>(obj, name)?;
        let region = region(array, name, false);
        let borrowed = array.try_readonly().map_err(|e| self.borrow_error(&region, e))?;
        self.register(region)?;
        Ok(borrowed)
    }

    /// A writable borrow of a C-contiguous, aligned array of `T` that shares no memory with any
    /// other array of the call.
    pub fn write<T: Element>(&mut self, obj: Arr<'_, 'py>, name: &str) -> Result<Out<'py, T>, Error> {
        let array = typed::<T>(obj, name)?;
        let region = region(array, name, true);
        let borrowed = array.try_readwrite().map_err(|e| self.borrow_error(&region, e))?;
        self.register(region)?;
        Ok(borrowed)
    }

    /// A read-only argument that must have `shape`.
    pub fn read_shaped<T: Element>(
        &mut self,
        obj: Arr<'_, 'py>,
        name: &str,
        shape: &[usize],
    ) -> Result<In<'py, T>, Error> {
        let array = self.read::<T>(obj, name)?;
        check_shape(name, array.shape(), shape)?;
        Ok(array)
    }

    /// A writable argument that must have `shape`.
    pub fn write_shaped<T: Element>(
        &mut self,
        obj: Arr<'_, 'py>,
        name: &str,
        shape: &[usize],
    ) -> Result<Out<'py, T>, Error> {
        let array = self.write::<T>(obj, name)?;
        check_shape(name, array.shape(), shape)?;
        Ok(array)
    }

    /// An optional read-only argument: borrowed and checked to have `shape` when given.
    pub fn read_opt<T: Element>(
        &mut self,
        obj: OptArr<'_, 'py>,
        name: &str,
        shape: &[usize],
    ) -> Result<Option<In<'py, T>>, Error> {
        obj.map(|o| self.read_shaped(o, name, shape)).transpose()
    }

    /// An optional writable argument: borrowed and checked to have `shape` when given.
    pub fn write_opt<T: Element>(
        &mut self,
        obj: OptArr<'_, 'py>,
        name: &str,
        shape: &[usize],
    ) -> Result<Option<Out<'py, T>>, Error> {
        obj.map(|o| self.write_shaped(o, name, shape)).transpose()
    }

    /// Every array of `list`, read-only, each with the shape of the same-index array in `like`.
    pub fn read_list<T: Element>(
        &mut self,
        list: &List<'py>,
        like: &[Vec<usize>],
    ) -> Result<Vec<In<'py, T>>, Error> {
        let each = list.items.iter().zip(like).enumerate();
        each.map(|(i, (o, s))| self.read_shaped(o, &list.item(i), s))
            .collect()
    }

    /// Every array of `list`, writable, each with the shape of the same-index array in `like`
    /// (any shape when `like` is None).
    pub fn write_list<T: Element>(
        &mut self,
        list: &List<'py>,
        like: Option<&[Vec<usize>]>,
    ) -> Result<Vec<Out<'py, T>>, Error> {
        let mut arrays = Vec::with_capacity(list.items.len());
        for (i, obj) in list.items.iter().enumerate() {
            let name = list.item(i);
            arrays.push(match like.and_then(|l| l.get(i)) {
                Some(shape) => self.write_shaped(obj, &name, shape)?,
                None => self.write(obj, &name)?,
            });
        }
        Ok(arrays)
    }

    /// An optional writable list (see [`Args::write_list`]) as one optional slice per tensor.
    pub fn write_opt_list<T: Element>(
        &mut self,
        list: &Option<List<'py>>,
        like: &[Vec<usize>],
    ) -> Result<Option<Vec<Out<'py, T>>>, Error> {
        list.as_ref().map(|l| self.write_list(l, Some(like))).transpose()
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
        match (e, self.conflict(region)) {
            (BorrowError::NotWriteable, _) => Error::Value(format!(
                "{} must be writeable, got a read-only array; pass a copy",
                region.name
            )),
            (_, Some(other)) => overlap_error(region, other),
            (_, None) => Error::Value(format!(
                "{} is in use by a kernel running in another thread; pass a separate array",
                region.name
            )),
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
fn region<T: Element>(array: &Bound<'_, PyArrayDyn<T>>, name: &str, written: bool) -> Region {
    let start = array.data() as usize;
    let bytes = array.len().saturating_mul(std::mem::size_of::<T>());
    let (name, end) = (name.to_string(), start.saturating_add(bytes));
    Region {
        name,
        start,
        end,
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

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    let name = obj.get_type().name();
    name.map_or_else(|_| "an unknown type".to_string(), |n| n.to_string())
}

fn untyped<'a, 'py>(obj: Arr<'a, 'py>, name: &str) -> Result<&'a Bound<'py, PyUntypedArray>, Error> {
    obj.cast::<PyUntypedArray>().map_err(|_| {
        Error::Type(format!("{name} must be a numpy.ndarray, got {}", type_name(obj)))
    })
}

/// The dtype of `obj` as a string, e.g. "float32".
pub fn dtype_name(obj: Arr, name: &str) -> Result<String, Error> {
    Ok(untyped(obj, name)?.dtype().to_string())
}

/// Whether `obj` is an array of `T` (cheaper than comparing dtype names).
pub fn has_dtype<T: Element>(obj: Arr, name: &str) -> Result<bool, Error> {
    let expected = numpy::dtype::<T>(obj.py());
    Ok(untyped(obj, name)?.dtype().is_equiv_to(&expected))
}

/// Which float kernel `obj` needs: float32 or float64, anything else is a `TypeError`.
pub fn float_dtype(obj: Arr, name: &str) -> Result<FloatDtype, Error> {
    if has_dtype::<f32>(obj, name)? {
        Ok(FloatDtype::F32)
    } else if has_dtype::<f64>(obj, name)? {
        Ok(FloatDtype::F64)
    } else {
        let dtype = dtype_name(obj, name)?;
        Err(Error::Type(format!("{name} must have dtype float32 or float64, got {dtype}")))
    }
}

/// `obj` as an array of `T` whose data the kernels can take as a slice: C-contiguous and
/// aligned for `T` (a view at an odd byte offset into a buffer is not).
fn typed<'a, 'py, T: Element>(obj: Arr<'a, 'py>, name: &str) -> Result<&'a Bound<'py, PyArrayDyn<T>>, Error> {
    let array = untyped(obj, name)?;
    let expected = numpy::dtype::<T>(obj.py());
    if !array.dtype().is_equiv_to(&expected) {
        let dtype = array.dtype();
        return Err(Error::Type(format!("{name} must have dtype {expected}, got {dtype}")));
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
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    match shape {
        [one] => format!("({one},)"),
        _ => format!("({})", dims.join(", ")),
    }
}

/// Checks that an array has exactly the shape `expected`.
pub fn check_shape(name: &str, actual: &[usize], expected: &[usize]) -> Result<(), Error> {
    if actual == expected {
        return Ok(());
    }
    let (expected, actual) = (shape_str(expected), shape_str(actual));
    Err(Error::Value(format!("{name} must have shape {expected}, got {actual}")))
}

/// The dimensions of an array that must have `N` of them.
pub fn dims<const N: usize>(name: &str, shape: &[usize]) -> Result<[usize; N], Error> {
    <[usize; N]>::try_from(shape).map_err(|_| {
        let shape = shape_str(shape);
        Error::Value(format!("{name} must be {N}-dimensional, got shape {shape}"))
    })
}

/// A checked borrow (or an optional one) whose data a kernel takes as a slice.
pub trait Data<'a> {
    type Slice;
    fn slice(self) -> Result<Self::Slice, Error>;
}

/// The data of a checked borrow: `&[T]`, `&mut [T]`, or an `Option` of one for an optional
/// argument. Never fails after [`Args`] checked the array.
pub fn data<'a, D: Data<'a>>(borrow: D) -> Result<D::Slice, Error> {
    borrow.slice()
}

/// The data of every borrow of a list.
pub fn data_all<'a, D: Data<'a>>(borrows: impl IntoIterator<Item = D>) -> Result<Vec<D::Slice>, Error> {
    borrows.into_iter().map(Data::slice).collect()
}

/// The data of an optional list, as one optional slice per tensor (all None when not given).
pub fn data_opt_all<'a, T: Element>(
    borrows: &'a mut Option<Vec<Out<'_, T>>>,
    tensors: usize,
) -> Result<Vec<Option<&'a mut [T]>>, Error> {
    match borrows {
        Some(b) => Ok(data_all(b)?.into_iter().map(Some).collect()),
        None => Ok((0..tensors).map(|_| None).collect()),
    }
}

fn not_contiguous() -> Error {
    Error::Value("an array argument must be C-contiguous and aligned".into())
}

impl<'a, T: Element> Data<'a> for &'a In<'_, T> {
    type Slice = &'a [T];
    fn slice(self) -> Result<&'a [T], Error> {
        self.as_slice().map_err(|_| not_contiguous())
    }
}

impl<'a, T: Element> Data<'a> for &'a mut Out<'_, T> {
    type Slice = &'a mut [T];
    fn slice(self) -> Result<&'a mut [T], Error> {
        self.as_slice_mut().map_err(|_| not_contiguous())
    }
}

impl<'a, T: Element> Data<'a> for &'a Option<In<'_, T>> {
    type Slice = Option<&'a [T]>;
    fn slice(self) -> Result<Self::Slice, Error> {
        self.as_ref().map(data).transpose()
    }
}

impl<'a, T: Element> Data<'a> for &'a mut Option<Out<'_, T>> {
    type Slice = Option<&'a mut [T]>;
    fn slice(self) -> Result<Self::Slice, Error> {
        self.as_mut().map(data).transpose()
    }
}

/// An array argument of a multi-tensor call: a list (or tuple) of arrays, one per parameter, or
/// one array, which is a list of one (named without an index in messages).
pub struct List<'py> {
    name: &'static str,
    items: Vec<Bound<'py, PyAny>>,
    single: bool,
}

impl<'py> List<'py> {
    /// The list `obj`; `tensors`, when given, is the length it must have (that of `param`).
    pub fn new(obj: Arr<'_, 'py>, name: &'static str, tensors: Option<usize>) -> Result<Self, Error> {
        let (items, single) = if obj.cast::<PyUntypedArray>().is_ok() {
            (vec![obj.clone()], true)
        } else if let Ok(list) = obj.cast::<PyList>() {
            (list.iter().collect(), false)
        } else if let Ok(tuple) = obj.cast::<PyTuple>() {
            (tuple.iter().collect(), false)
        } else {
            let got = type_name(obj);
            return Err(Error::Type(format!("{name} must be a list of numpy.ndarray, got {got}")));
        };
        let list = List { name, items, single };
        match tensors {
            Some(n) if n != list.items.len() => Err(Error::Value(format!(
                "{name} must have one array per param array ({n}), got {}",
                list.items.len()
            ))),
            _ => Ok(list),
        }
    }

    /// An optional list: None, or a list of `tensors` arrays.
    pub fn opt(obj: OptArr<'_, 'py>, name: &'static str, tensors: usize) -> Result<Option<Self>, Error> {
        obj.map(|o| List::new(o, name, Some(tensors))).transpose()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// The first array, which sets the dtype of the call (None for an empty list).
    pub fn first(&self) -> Option<(&Bound<'py, PyAny>, String)> {
        self.items.first().map(|o| (o, self.item(0)))
    }

    /// The name of array `i` in messages: `param[2]`, or `param` for a single array.
    fn item(&self, i: usize) -> String {
        if self.single {
            self.name.to_string()
        } else {
            format!("{}[{i}]", self.name)
        }
    }
}

/// A per-tensor scalar of a multi-tensor call: one value for every tensor, or a list (or tuple)
/// of `tensors` values, each converted by `convert` (one of [`crate::bindings::scalars`]).
pub fn per_tensor<V: Copy>(
    obj: Arr,
    name: &str,
    tensors: usize,
    convert: fn(&Bound<'_, PyAny>) -> PyResult<V>,
) -> Result<Vec<V>, Error> {
    let named = |e: PyErr| {
        let message = format!("{name}: {}", e.value(obj.py()));
        match e.is_instance_of::<PyTypeError>(obj.py()) {
            true => Error::Type(message),
            false => Error::Value(message),
        }
    };
    let items: Vec<Bound<'_, PyAny>> = if let Ok(list) = obj.cast::<PyList>() {
        list.iter().collect()
    } else if let Ok(tuple) = obj.cast::<PyTuple>() {
        tuple.iter().collect()
    } else {
        return Ok(vec![convert(obj).map_err(named)?; tensors]);
    };
    if items.len() != tensors {
        let got = items.len();
        return Err(Error::Value(format!(
            "{name} must have one value per param array ({tensors}), got {got}"
        )));
    }
    items.iter().map(|o| convert(o).map_err(named)).collect()
}
