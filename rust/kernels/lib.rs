//! saddlepoint's numeric kernels: pure Rust on slices, no Python.
//!
//! Every kernel is generic over [`Float`] (f32 and f64), checks the lengths of the slices it is
//! given against the dimensions it is told and returns [`KernelError`] instead of panicking.
//! Reductions are summed in fixed-size chunks in a fixed order, so results do not depend on the
//! number of threads (see [`parallel`]).
//!
//! Slices from Python are indexed only after their lengths were checked; the lints below keep
//! `unwrap`, `expect` and explicit panics out of the kernels (tests may use them).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

pub mod activation;
pub mod clip;
pub mod conv;
pub mod dense;
pub mod error;
pub mod exp;
pub mod gather;
pub mod loss;
pub mod matmul;
pub mod norm;
pub mod optim;
pub mod parallel;
pub mod pool;
pub mod reduce;
pub mod scalar;

pub use error::KernelError;
pub use scalar::Float;
