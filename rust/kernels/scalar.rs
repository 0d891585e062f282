//! The element types the kernels work on.

/// A floating-point element type: `f32` or `f64`.
pub trait Float:
    num_traits::Float
    + faer::traits::RealField
    + Send
    + Sync
    + Copy
    + Default
    + std::fmt::Debug
    + std::iter::Sum
    + 'static
{
    fn from_f64(x: f64) -> Self;
    fn as_f64(self) -> f64;
}

impl Float for f32 {
    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn as_f64(self) -> f64 {
        self as f64
    }
}

impl Float for f64 {
    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn as_f64(self) -> f64 {
        self
    }
}

/// Converts a small constant to `T`.
#[inline(always)]
pub fn cst<T: Float>(x: f64) -> T {
    T::from_f64(x)
}
