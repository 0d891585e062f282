//! The one guard between Python and the kernels: every binding makes one [`Args`] per call,
//! borrows each array argument through it and runs its kernel with [`Args::run`].
//!
//! [`Args`]'s methods are the only way to borrow an argument, so no binding can skip a check:
//! the type and dtype, C-contiguity, alignment, writeability, the shape, and that no written array
//! shares memory with any other array of the call (an empty array covers no memory). [`Args::run`]
//! releases the GIL and turns a panic in a kernel into a Python `RuntimeError` (never a
//! `PanicException`). [`with_float!`] is the one dtype dispatch.

use crate::error::Error;
use numpy::{BorrowError, Element, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn};
use numpy::{PyReadwriteArrayDyn, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use saddlepoint_kernels::error::shape_str;
use saddlepoint_kernels::KernelError;
use std::fmt::{self, Display};
use std::ops::{Deref, DerefMut};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// An array argument as it comes from Python (checked when borrowed through [`Args`]).
pub type Arr<'a, 'py> = &'a Bound<'py, PyAny>;
/// An optional array argument.
pub type OptArr<'a, 'py> = Option<&'a Bound<'py, PyAny>>;

/// Runs `$body` with `$T` the element type of the array `$first`, `f32` or `f64` (any other
/// dtype is a `TypeError` naming `$name`). The one dtype dispatch of the bindings, in the style
/// of candle's `Map1`: the body is written once, generic over `$T`, and compiled for each type.
macro_rules! with_float {
    ($first:expr, $name:expr, |$T:ident| $body:expr) => {
        if $crate::bindings::arrays::is_f32($first, $name)? {
            type $T = f32;
            $body
        } else {
            type $T = f64;
            $body
        }
    };
}
pub(crate) use with_float;

/// A checked read-only array of `T`: its data is `&[T]` (`&*x`).
pub struct In<'py, T: Element>(PyReadonlyArrayDyn<'py, T>);
/// A checked writable array of `T`: its data is `&mut [T]` (`&mut *x`).
pub struct Out<'py, T: Element>(PyReadwriteArrayDyn<'py, T>);

/// How a binding takes an array: read-only ([`In`]) or writable ([`Out`]).
pub trait Borrow<'py>: Sized {
    type T: Element;
    const WRITTEN: bool;
    fn take(array: &Bound<'py, PyArrayDyn<Self::T>>) -> Result<Self, BorrowError>;
    fn shape(&self) -> &[usize];
}

impl<'py, T: Element> Borrow<'py> for In<'py, T> {
    type T = T;
    const WRITTEN: bool = false;
    fn take(array: &Bound<'py, PyArrayDyn<T>>) -> Result<Self, BorrowError> {
        array.try_readonly().map(In)
    }
    fn shape(&self) -> &[usize] {
        self.0.shape()
    }
}

impl<'py, T: Element> Borrow<'py> for Out<'py, T> {
    type T = T;
    const WRITTEN: bool = true;
    fn take(array: &Bound<'py, PyArrayDyn<T>>) -> Result<Self, BorrowError> {
        array.try_readwrite().map(Out)
    }
    fn shape(&self) -> &[usize] {
        self.0.shape()
    }
}

// The arrays were checked C-contiguous, so `as_slice` cannot fail; if it ever did, the kernel
// would get an empty slice and reject its length (a ValueError, never a wrong result).
impl<T: Element> Deref for In<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.0.as_slice().unwrap_or(&[])
    }
}

impl<T: Element> Deref for Out<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.0.as_slice().unwrap_or(&[])
    }
}

impl<T: Element> DerefMut for Out<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        self.0.as_slice_mut().unwrap_or(&mut [])
    }
}

/// The shape an array argument must have: [`ANY`], or exactly the given one (`x.shape()`, `&[n]`).
#[derive(Clone, Copy)]
pub struct Shape<'s>(Option<&'s [usize]>);
/// Any shape.
pub const ANY: Shape = Shape(None);

impl<'s> From<&'s [usize]> for Shape<'s> {
    fn from(shape: &'s [usize]) -> Self {
        Shape(Some(shape))
    }
}

impl<'s, const N: usize> From<&'s [usize; N]> for Shape<'s> {
    fn from(shape: &'s [usize; N]) -> Self {
        Shape(Some(shape))
    }
}

/// An argument's name in messages: `x`, or `param[2]` for an array of a list (formatted only
/// for a message, so a call that passes allocates no names).
#[derive(Clone, Copy)]
pub struct Name(&'static str, Option<usize>);

impl Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Some(i) => write!(f, "{}[{i}]", self.0),
            None => f.write_str(self.0),
        }
    }
}

/// The bytes `[start, end)` one array of the call occupies, and whether the kernel writes them.
struct Region {
    name: Name,
    start: usize,
    end: usize,
    written: bool,
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
        Args { py, function, regions: Vec::with_capacity(8) }
    }

    /// The array `obj`, read ([`In`]) or written ([`Out`]), checked to have `shape`.
    pub fn arg<'s, B: Borrow<'py>>(
        &mut self, obj: Arr<'_, 'py>, name: &'static str, shape: impl Into<Shape<'s>>,
    ) -> Result<B, Error> {
        self.borrow(obj, Name(name, None), shape.into())
    }

    /// An optional array: None, or [`Args::arg`].
    pub fn opt<'s, B: Borrow<'py>>(
        &mut self, obj: OptArr<'_, 'py>, name: &'static str, shape: impl Into<Shape<'s>>,
    ) -> Result<Option<B>, Error> {
        obj.map(|o| self.arg(o, name, shape)).transpose()
    }

    /// Every array of `list`, each with the shape of the same-index entry of `like` (any shape
    /// when `like` is None).
    pub fn list<B: Borrow<'py>>(
        &mut self, list: &List<'py>, like: Option<&[Vec<usize>]>,
    ) -> Result<Vec<B>, Error> {
        let shape = |i: usize| Shape(like.and_then(|l| l.get(i)).map(Vec::as_slice));
        list.items.iter().enumerate().map(|(i, obj)| self.borrow(obj, list.item(i), shape(i))).collect()
    }

    /// An optional list: None for each of the `like.len()` tensors, or [`Args::list`].
    pub fn opt_list<B: Borrow<'py>>(
        &mut self, list: &Option<List<'py>>, like: &[Vec<usize>],
    ) -> Result<Vec<Option<B>>, Error> {
        match list {
            Some(list) => Ok(self.list(list, Some(like))?.into_iter().map(Some).collect()),
            None => Ok(like.iter().map(|_| None).collect()),
        }
    }

    /// The checks of one array, in this order: type, dtype, layout, writeability (by
    /// rust-numpy's borrow), shape. Its overlap with the other arrays of the call is checked
    /// by [`Args::run`], once all are borrowed.
    fn borrow<B: Borrow<'py>>(&mut self, obj: Arr<'_, 'py>, name: Name, shape: Shape) -> Result<B, Error> {
        let array = typed::<B::T>(obj, name)?;
        let start = array.data() as usize;
        let end = start.saturating_add(array.len().saturating_mul(std::mem::size_of::<B::T>()));
        let region = Region { name, start, end, written: B::WRITTEN };
        let borrowed = B::take(array).map_err(|e| self.borrow_error(&region, e))?;
        self.regions.push(region);
        if let Shape(Some(shape)) = shape {
            check_shape(name, array.shape(), shape)?;
        }
        Ok(borrowed)
    }

    /// Runs `kernel` with the GIL released. A panic (a bug: kernels return errors) becomes a
    /// `RuntimeError` naming the function, instead of PyO3's `PanicException`, which is not an
    /// `Exception` and escapes `except Exception`.
    ///
    /// First the overlap check of every array borrowed for the call (see [`Args::overlap`]).
    pub fn run<R: Send>(&self, kernel: impl FnOnce() -> Result<R, KernelError> + Send) -> Result<R, Error> {
        if let Some((first, second)) = self.overlap() {
            return Err(overlap_error(first, second));
        }
        match self.py.detach(|| catch_unwind(AssertUnwindSafe(kernel))) {
            Ok(result) => Ok(result?),
            Err(payload) => Err(Error::Internal(format!(
                "internal error in saddlepoint._core.{}: {}; please report it",
                self.function,
                panic_message(payload.as_ref())
            ))),
        }
    }

    /// Two arrays of the call that share memory where at least one is written, in the order
    /// they were borrowed. Two arrays that are only read may share memory (the same array as
    /// input and target, say): nothing changes under them. One sweep in address order, so a
    /// call with a list of hundreds of tensors costs O(n log n), not a comparison per pair: a
    /// region meets an earlier-starting one exactly when the furthest-reaching earlier region
    /// (of any kind if it is written, of the written ones if it is read) ends past its start.
    fn overlap(&self) -> Option<(&Region, &Region)> {
        let regions = self.regions.iter().enumerate().filter(|(_, r)| r.start < r.end);
        let mut order: Vec<(usize, &Region)> = regions.collect();
        order.sort_by_key(|(_, r)| r.start); // stable: equal starts stay in call order
        let (mut widest, mut widest_written) = (None::<(usize, &Region)>, None::<(usize, &Region)>);
        for (i, r) in order {
            let earlier = if r.written { widest } else { widest_written };
            if let Some((j, o)) = earlier.filter(|(_, o)| o.end > r.start) {
                return Some(if j < i { (o, r) } else { (r, o) });
            }
            let reaches = |w: Option<(usize, &Region)>| w.is_none_or(|(_, w)| r.end > w.end);
            if reaches(widest) {
                widest = Some((i, r));
            }
            if r.written && reaches(widest_written) {
                widest_written = Some((i, r));
            }
        }
        None
    }

    /// rust-numpy refused the borrow: read-only, or (a coarser overlap check than ours, per
    /// base object) the memory is borrowed for writing by this call or by another thread. The
    /// array borrowed before that `region` intersects, where either of the two is written, is
    /// named.
    fn borrow_error(&self, region: &Region, e: BorrowError) -> Error {
        let name = &region.name;
        let intersects =
            |r: &&Region| (r.written || region.written) && region.start < r.end && r.start < region.end;
        match (e, self.regions.iter().find(intersects)) {
            (BorrowError::NotWriteable, _) => {
                Error::Value(format!("{name} must be writeable, got a read-only array; pass a copy"))
            }
            (_, Some(other)) => overlap_error(region, other),
            (_, None) => Error::Value(format!(
                "{name} is in use by a kernel running in another thread; pass a separate array"
            )),
        }
    }
}

fn overlap_error(region: &Region, other: &Region) -> Error {
    Error::Value(format!(
        "{} and {} share memory and one of them is written by this call; pass separate arrays (a copy of one)",
        other.name, region.name
    ))
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    match (payload.downcast_ref::<&str>(), payload.downcast_ref::<String>()) {
        (Some(s), _) => s.to_string(),
        (_, Some(s)) => s.clone(),
        _ => "a panic without a message".to_string(),
    }
}

fn type_name(obj: Arr) -> String {
    obj.get_type().name().map_or_else(|_| "an unknown type".to_string(), |n| n.to_string())
}

fn untyped<'a, 'py>(obj: Arr<'a, 'py>, name: impl Display) -> Result<&'a Bound<'py, PyUntypedArray>, Error> {
    let got = || Error::Type(format!("{name} must be a numpy.ndarray, got {}", type_name(obj)));
    obj.cast::<PyUntypedArray>().map_err(|_| got())
}

/// The dtype of `obj` as a string, e.g. "float32".
pub fn dtype_name(obj: Arr, name: impl Display) -> Result<String, Error> {
    Ok(untyped(obj, name)?.dtype().to_string())
}

/// Whether `obj` is an array of `T` (cheaper than comparing dtype names).
pub fn has_dtype<T: Element>(obj: Arr, name: impl Display) -> Result<bool, Error> {
    Ok(untyped(obj, name)?.dtype().is_equiv_to(&numpy::dtype::<T>(obj.py())))
}

/// Whether `obj` needs the f32 kernel (float32) rather than the f64 one (float64); any other
/// dtype is a `TypeError`.
pub fn is_f32(obj: Arr, name: impl Display) -> Result<bool, Error> {
    if has_dtype::<f32>(obj, &name)? {
        return Ok(true);
    } else if has_dtype::<f64>(obj, &name)? {
        return Ok(false);
    }
    let dtype = dtype_name(obj, &name)?;
    Err(Error::Type(format!("{name} must have dtype float32 or float64, got {dtype}")))
}

/// `obj` as an array of `T` whose data the kernels can take as a slice: C-contiguous and
/// aligned for `T` (a view at an odd byte offset into a buffer is not).
fn typed<'a, 'py, T: Element>(obj: Arr<'a, 'py>, name: Name) -> Result<&'a Bound<'py, PyArrayDyn<T>>, Error> {
    let (dtype, expected) = (untyped(obj, name)?.dtype(), numpy::dtype::<T>(obj.py()));
    let array = match obj.cast::<PyArrayDyn<T>>() {
        Ok(array) if dtype.is_equiv_to(&expected) => array,
        _ => return Err(Error::Type(format!("{name} must have dtype {expected}, got {dtype}"))),
    };
    if !array.is_c_contiguous() {
        return Err(Error::Value(format!(
            "{name} must be C-contiguous, got a strided view; pass numpy.ascontiguousarray({name})"
        )));
    }
    let align = std::mem::align_of::<T>();
    if array.len() > 0 && (array.data() as usize) % align != 0 {
        return Err(Error::Value(format!(
            "{name} is not aligned: its data starts at an address that is not a multiple of {align} bytes, as \
             {expected} needs (a view at an odd offset into a buffer, e.g. from numpy.frombuffer); pass a copy, \
             {name}.copy() (numpy.ascontiguousarray keeps the misalignment)"
        )));
    }
    Ok(array)
}

/// Checks that an array has exactly the shape `expected`.
pub fn check_shape(name: impl Display, actual: &[usize], expected: &[usize]) -> Result<(), Error> {
    if actual == expected {
        return Ok(());
    }
    let (expected, actual) = (shape_str(expected), shape_str(actual));
    Err(Error::Value(format!("{name} must have shape {expected}, got {actual}")))
}

/// The items of a Python list or tuple; None for anything else.
fn sequence<'py>(obj: Arr<'_, 'py>) -> Option<Vec<Bound<'py, PyAny>>> {
    match (obj.cast::<PyList>(), obj.cast::<PyTuple>()) {
        (Ok(list), _) => Some(list.iter().collect()),
        (_, Ok(tuple)) => Some(tuple.iter().collect()),
        _ => None,
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
        let single = obj.cast::<PyUntypedArray>().is_ok();
        let items = match sequence(obj) {
            _ if single => vec![obj.clone()],
            Some(items) => items,
            None => {
                return Err(Error::Type(format!(
                    "{name} must be a list of numpy.ndarray, got {}",
                    type_name(obj)
                )))
            }
        };
        match tensors {
            Some(n) if n != items.len() => Err(Error::Value(format!(
                "{name} must have one array per param array ({n}), got {}",
                items.len()
            ))),
            _ => Ok(List { name, items, single }),
        }
    }

    /// An optional list: None, or a list of `tensors` arrays.
    pub fn opt(obj: OptArr<'_, 'py>, name: &'static str, tensors: usize) -> Result<Option<Self>, Error> {
        obj.map(|o| List::new(o, name, Some(tensors))).transpose()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// The first array and its name (None for an empty list).
    pub fn first(&self) -> Option<(&Bound<'py, PyAny>, Name)> {
        self.items.first().map(|o| (o, self.item(0)))
    }

    /// The name of array `i` in messages: `param[2]`, or `param` for a single array.
    fn item(&self, i: usize) -> Name {
        Name(self.name, (!self.single).then_some(i))
    }
}

/// A per-tensor scalar of a multi-tensor call: one value for every tensor, or a list (or tuple)
/// of `tensors` values, each converted by `convert` (one of [`super::scalars`]).
pub fn per_tensor<V: Copy>(
    obj: Arr, name: &str, tensors: usize, convert: fn(&Bound<'_, PyAny>) -> PyResult<V>,
) -> Result<Vec<V>, Error> {
    let named = |e: PyErr| {
        let message = format!("{name}: {}", e.value(obj.py()));
        if e.is_instance_of::<PyTypeError>(obj.py()) {
            Error::Type(message)
        } else {
            Error::Value(message)
        }
    };
    let Some(items) = sequence(obj) else {
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
