//! An exponential that vectorizes.
//!
//! `f32::exp` and `f64::exp` are calls into libm, one element at a time: a softmax over
//! 1024 × 1000 logits spent most of its time in them. These are straight-line code (no calls,
//! no branches, no tables), so a loop over them vectorizes, in whichever `multiversion` build
//! of the loop runs. The method is the classic one: `exp(x) = 2^k · exp(r)` with
//! `k = round(x / ln 2)` and `|r| <= ln 2 / 2`, `r` computed with ln 2 split in two parts so
//! that `k · ln2_hi` is exact, and a polynomial for `exp(r)`.
//!
//! Accuracy, against `std`'s exp over a dense sweep (see the tests): f64 within 1 ulp, f32
//! within 1 ulp. Overflow gives `inf`, large negative arguments underflow through the
//! subnormals to 0, `-inf` gives 0 and NaN gives NaN.
//!
//! The `_in` forms take `FMA`: whether the calling loop is built with fused multiply-add (a
//! `multiversion` build for AVX2 + FMA or AVX-512 says so with `target_cfg_f!`). Fused, the
//! exponential over 1M float32 took 156 instead of 236 µs on one Zen 5 core; unfused, the
//! baseline x86-64 build (no FMA instruction) avoids a library call per multiply-add. The two
//! differ in the last bit now and then, so results can differ between machines, never between
//! thread counts on one machine.

use crate::Float;

/// `exp(x)` for `f32` or `f64`; inline, branch-free, so loops over it vectorize.
#[inline(always)]
pub fn exp<T: Float>(x: T) -> T {
    exp_in::<T, false>(x)
}

/// [`exp`] with fused multiply-adds when `FMA` (for a caller built with the instruction).
#[inline(always)]
pub fn exp_in<T: Float, const FMA: bool>(x: T) -> T {
    // Resolved at compile time for each `T`; the conversions are exact round trips that the
    // compiler removes.
    if std::mem::size_of::<T>() == 4 {
        T::from_f64(exp_f32_in::<FMA>(x.as_f64() as f32) as f64)
    } else {
        T::from_f64(exp_f64_in::<FMA>(x.as_f64()))
    }
}

/// `a·b + c`: one rounding when `FMA`, two otherwise.
#[inline(always)]
fn mad<F: num_traits::Float, const FMA: bool>(a: F, b: F, c: F) -> F {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// `exp(x)` in double precision, within 1 ulp.
#[inline(always)]
pub fn exp_f64(x: f64) -> f64 {
    exp_f64_in::<false>(x)
}

#[inline(always)]
pub fn exp_f64_in<const FMA: bool>(x: f64) -> f64 {
    // exp(709.79) overflows and exp(-745.2) is below half the smallest subnormal: clamping
    // there keeps `k` in range and still gives `inf` and 0 (`clamp` keeps NaN).
    let x = x.clamp(-745.2, 709.79);
    // Adding 1.5·2^52 rounds to an integer, which is then in the low bits of `t`.
    const ROUND: f64 = 6_755_399_441_055_744.0;
    const LN2_HI: f64 = 0.693_147_180_369_123_8; // 32 trailing zero bits: k·LN2_HI is exact
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    let t = mad::<f64, FMA>(x, std::f64::consts::LOG2_E, ROUND);
    let k = t - ROUND;
    let r = mad::<f64, FMA>(-k, LN2_LO, mad::<f64, FMA>(-k, LN2_HI, x));
    // Taylor to r^13 (|r| <= 0.35: the next term is below 2^-58): 1 + r + r²·q(r), summed so
    // that the rounding of the small part barely shows after adding 1.
    const C: [f64; 12] = [
        1.0 / 2.0,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5040.0,
        1.0 / 40320.0,
        1.0 / 362880.0,
        1.0 / 3628800.0,
        1.0 / 39916800.0,
        1.0 / 479001600.0,
        1.0 / 6227020800.0,
    ];
    let r2 = r * r;
    // Estrin-like pairs shorten the dependency chain; Horner over r² from the highest.
    let m = |a: f64, b: f64, c: f64| mad::<f64, FMA>(a, b, c);
    let mut q = m(r, C[11], C[10]);
    q = m(r2, q, m(r, C[9], C[8]));
    q = m(r2, q, m(r, C[7], C[6]));
    q = m(r2, q, m(r, C[5], C[4]));
    q = m(r2, q, m(r, C[3], C[2]));
    q = m(r2, q, m(r, C[1], C[0]));
    let p = 1.0 + m(r2, q, r);
    // 2^k as two factors, so that results in the subnormal range (k < -1022) round once, in
    // the last multiply, and k = 1024 overflows to inf there.
    let k = (t.to_bits() as i64).wrapping_sub(ROUND.to_bits() as i64);
    let half = k >> 1;
    let s1 = f64::from_bits((half.wrapping_add(1023) as u64) << 52);
    let s2 = f64::from_bits((k.wrapping_sub(half).wrapping_add(1023) as u64) << 52);
    p * s1 * s2
}

/// `exp(x)` in single precision, within 1 ulp.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    exp_f32_in::<false>(x)
}

#[inline(always)]
pub fn exp_f32_in<const FMA: bool>(x: f32) -> f32 {
    // exp(88.73) overflows; exp(-104) is below half the smallest subnormal.
    let x = x.clamp(-104.0, 88.73);
    const ROUND: f32 = 12_582_912.0; // 1.5·2^23
    const LN2_HI: f32 = 355.0 / 512.0; // 9 significant bits: k·LN2_HI is exact
    const LN2_LO: f32 = -2.121_944_4e-4;
    let t = mad::<f32, FMA>(x, std::f32::consts::LOG2_E, ROUND);
    let k = t - ROUND;
    let r = mad::<f32, FMA>(-k, LN2_LO, mad::<f32, FMA>(-k, LN2_HI, x));
    // Cephes' minimax polynomial for (exp(r) − 1 − r)/r² on |r| <= ln 2 / 2.
    let r2 = r * r;
    let m = |a: f32, b: f32, c: f32| mad::<f32, FMA>(a, b, c);
    let q = m(
        m(m(m(m(1.987_569_1e-4, r, 1.398_199_9e-3), r, 8.333_452e-3), r, 4.166_579_6e-2), r, 0.166_666_66),
        r,
        0.5,
    );
    let p = 1.0 + m(r2, q, r);
    let k = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let half = k >> 1;
    let s1 = f32::from_bits((half.wrapping_add(127) as u32) << 23);
    let s2 = f32::from_bits((k.wrapping_sub(half).wrapping_add(127) as u32) << 23);
    p * s1 * s2
}

/// `ln(1 + e)` for `e` in `[0, 1]` (binary cross-entropy's `ln(1 + exp(−|z|))`), inline and
/// branch-free like [`exp`]; within 2 ulp. NaN gives NaN.
#[inline(always)]
pub fn ln_1p_unit<T: Float>(e: T) -> T {
    if std::mem::size_of::<T>() == 4 {
        T::from_f64(ln_1p_unit_f32(e.as_f64() as f32) as f64)
    } else {
        T::from_f64(ln_1p_unit_f64(e.as_f64()))
    }
}

// ln(1 + e) = 2·atanh(s) with s = e/(2 + e), or, past e = √2 − 1, ln 2 + 2·atanh(s) with
// s = (e − 1)/(e + 3) (the same for (1 + e)/2): either way |s| <= 0.1716, where the odd series
// 2s·(1 + s²/3 + s⁴/5 + …) converges fast. Both forms use `e` itself, so the rounding of 1 + e
// never enters (ln(1 + e) = e for tiny e comes out right).

/// `ln(1 + e)` for `e` in `[0, 1]`, double precision.
#[inline(always)]
pub fn ln_1p_unit_f64(e: f64) -> f64 {
    let big = e > std::f64::consts::SQRT_2 - 1.0;
    let (num, den, j) = if big { (e - 1.0, e + 3.0, std::f64::consts::LN_2) } else { (e, e + 2.0, 0.0) };
    let s = num / den;
    let s2 = s * s;
    // Terms to s^20 (the next is below 2^-56 of the first).
    const C: [f64; 10] = [
        1.0 / 3.0,
        1.0 / 5.0,
        1.0 / 7.0,
        1.0 / 9.0,
        1.0 / 11.0,
        1.0 / 13.0,
        1.0 / 15.0,
        1.0 / 17.0,
        1.0 / 19.0,
        1.0 / 21.0,
    ];
    let mut q = C[9];
    for &c in C[..9].iter().rev() {
        q = c + s2 * q;
    }
    let two_s = s + s;
    j + (two_s + two_s * s2 * q)
}

/// `ln(1 + e)` for `e` in `[0, 1]`, single precision.
#[inline(always)]
pub fn ln_1p_unit_f32(e: f32) -> f32 {
    let big = e > std::f32::consts::SQRT_2 - 1.0;
    let (num, den, j) = if big { (e - 1.0, e + 3.0, std::f32::consts::LN_2) } else { (e, e + 2.0, 0.0) };
    let s = num / den;
    let s2 = s * s;
    // Terms to s^10 (the next is below 2^-27 of the first).
    let q = (((1.0 / 11.0 * s2 + 1.0 / 9.0) * s2 + 1.0 / 7.0) * s2 + 1.0 / 5.0) * s2 + 1.0 / 3.0;
    let two_s = s + s;
    j + (two_s + two_s * s2 * q)
}

/// `tanh(x)` for `f32` or `f64`, inline and branch-free like [`exp`]; within 2 ulp. Its
/// exponential uses fused multiply-adds when `FMA`.
#[inline(always)]
pub fn tanh_in<T: Float, const FMA: bool>(x: T) -> T {
    if std::mem::size_of::<T>() == 4 {
        T::from_f64(tanh_f32_in::<FMA>(x.as_f64() as f32) as f64)
    } else {
        T::from_f64(tanh_f64_in::<FMA>(x.as_f64()))
    }
}

// Cephes' method: below |x| = 0.625 a rational (f64) or polynomial (f32) fit of
// (tanh(x) − x)/x³; above, 1 − 2/(exp(2|x|) + 1) with the sign of x, which loses nothing to
// cancellation there (the result is at least 0.55) and reaches ±1 where exp overflows. Both are
// computed and one is selected, so the loop stays branch-free; NaN gives NaN.

/// `tanh(x)` in double precision.
#[inline(always)]
pub fn tanh_f64(x: f64) -> f64 {
    tanh_f64_in::<false>(x)
}

#[inline(always)]
pub fn tanh_f64_in<const FMA: bool>(x: f64) -> f64 {
    let a = x.abs();
    let s = x * x;
    let p = (-9.643_991_794_250_523e-1 * s - 9.928_772_310_019_186e1) * s - 1.614_687_684_417_084_5e3;
    let q = ((s + 1.128_116_784_916_329_3e2) * s + 2.235_488_390_601_004_5e3) * s + 4.844_063_053_251_255e3;
    let small = (x + x * s * (p / q)).copysign(x); // copysign: tanh(−0) = −0
    let large = (1.0 - 2.0 / (exp_f64_in::<FMA>(a + a) + 1.0)).copysign(x);
    if a < 0.625 {
        small
    } else {
        large
    }
}

/// `tanh(x)` in single precision.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    tanh_f32_in::<false>(x)
}

#[inline(always)]
pub fn tanh_f32_in<const FMA: bool>(x: f32) -> f32 {
    let a = x.abs();
    let s = x * x;
    let p = (((-5.704_988_7e-3 * s + 2.063_908_8e-2) * s - 5.373_971_5e-2) * s + 1.333_144_2e-1) * s
        - 0.333_332_8;
    let small = (x + x * s * p).copysign(x);
    let large = (1.0 - 2.0 / (exp_f32_in::<FMA>(a + a) + 1.0)).copysign(x);
    if a < 0.625 {
        small
    } else {
        large
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two finite floats of one sign, or 0/inf.
    fn ulps_f64(a: f64, b: f64) -> u64 {
        if a == b {
            return 0;
        }
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    fn ulps_f32(a: f32, b: f32) -> u32 {
        if a == b {
            return 0;
        }
        (a.to_bits() as i32 - b.to_bits() as i32).unsigned_abs()
    }

    #[test]
    fn f64_within_one_ulp_of_std_over_the_whole_range() {
        let (lo, hi, n) = (-746.0f64, 710.0f64, 2_000_000);
        let mut worst = (0u64, 0.0f64);
        for i in 0..=n {
            let x = lo + (hi - lo) * (i as f64 / n as f64);
            let u = ulps_f64(exp_f64(x), x.exp()).max(ulps_f64(exp_f64_in::<true>(x), x.exp()));
            if u > worst.0 {
                worst = (u, x);
            }
        }
        // Small arguments, where exp is near 1.
        for i in -100_000..=100_000 {
            let x = i as f64 * 1e-7;
            let u = ulps_f64(exp_f64(x), x.exp()).max(ulps_f64(exp_f64_in::<true>(x), x.exp()));
            if u > worst.0 {
                worst = (u, x);
            }
        }
        assert!(worst.0 <= 1, "{} ulp at {}", worst.0, worst.1);
    }

    #[test]
    fn f32_within_one_ulp_of_the_rounded_exact_value() {
        // Every 17th f32 from -105 to 89, against the double exponential rounded to f32.
        let (lo, hi) = (-105.0f32, 89.0f32);
        let mut worst = (0u32, 0.0f32);
        for bits in (0..u32::MAX).step_by(17) {
            let x = f32::from_bits(bits);
            if !(x >= lo && x <= hi) {
                continue;
            }
            let exact = (x as f64).exp() as f32;
            let u = ulps_f32(exp_f32(x), exact).max(ulps_f32(exp_f32_in::<true>(x), exact));
            if u > worst.0 {
                worst = (u, x);
            }
        }
        assert!(worst.0 <= 1, "{} ulp at {}", worst.0, worst.1);
    }

    #[test]
    fn fused_edge_cases() {
        let f64s = [f64::INFINITY, 710.0, f64::NEG_INFINITY, -746.0, 0.0, -745.1, 709.78];
        for x in f64s {
            assert_eq!(exp_f64_in::<true>(x), exp_f64(x), "{x}");
        }
        assert!(exp_f64_in::<true>(f64::NAN).is_nan() && exp_f32_in::<true>(f32::NAN).is_nan());
        for x in [f32::INFINITY, 89.0, f32::NEG_INFINITY, -104.0, 0.0] {
            assert_eq!(exp_f32_in::<true>(x), exp_f32(x), "{x}");
        }
        assert_eq!(tanh_in::<f64, true>(-0.0).to_bits(), (-0.0f64).to_bits());
        assert_eq!(tanh_in::<f32, true>(f32::NEG_INFINITY), -1.0);
    }

    #[test]
    fn edge_cases() {
        for x in [f64::INFINITY, 709.79, 710.0, 1e300] {
            assert_eq!(exp_f64(x), f64::INFINITY, "{x}");
        }
        for x in [f64::NEG_INFINITY, -745.2, -746.0, -1e300] {
            assert_eq!(exp_f64(x), 0.0, "{x}");
        }
        assert!(exp_f64(f64::NAN).is_nan());
        assert_eq!(exp_f64(0.0), 1.0);
        assert_eq!(exp_f64(-0.0), 1.0);
        assert_eq!(exp_f64(709.78), 709.78f64.exp());
        assert_eq!(exp_f64(-745.1), 5e-324); // the smallest subnormal
        assert!(ulps_f64(exp_f64(-740.0), (-740.0f64).exp()) <= 1);
        for x in [f32::INFINITY, 88.73, 89.0, 1e30] {
            assert_eq!(exp_f32(x), f32::INFINITY, "{x}");
        }
        for x in [f32::NEG_INFINITY, -104.0, -1e30] {
            assert_eq!(exp_f32(x), 0.0, "{x}");
        }
        assert!(exp_f32(f32::NAN).is_nan());
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f32(88.72), 88.72f32.exp());
        assert!(ulps_f32(exp_f32(-103.0), (-103.0f64).exp() as f32) <= 1);
        assert_eq!(exp::<f32>(1.0), exp_f32(1.0));
        assert_eq!(exp::<f64>(1.0), exp_f64(1.0));
    }
    #[test]
    fn ln_1p_unit_within_two_ulp_of_std() {
        let mut worst = (0u64, 0.0f64);
        let n = 1_000_000;
        let points = (0..=n).map(|i| i as f64 / n as f64).chain((0..1100).map(|i| 2f64.powi(-i)));
        for e in points {
            let u = ulps_f64(ln_1p_unit_f64(e), e.ln_1p());
            if u > worst.0 {
                worst = (u, e);
            }
        }
        assert!(worst.0 <= 2, "f64: {} ulp at {}", worst.0, worst.1);
        let mut worst = (0u32, 0.0f32);
        for bits in 0..=1.0f32.to_bits() {
            let e = f32::from_bits(bits);
            let u = ulps_f32(ln_1p_unit_f32(e), (e as f64).ln_1p() as f32);
            if u > worst.0 {
                worst = (u, e);
            }
        }
        assert!(worst.0 <= 2, "f32: {} ulp at {}", worst.0, worst.1);
        assert!(ln_1p_unit_f64(f64::NAN).is_nan() && ln_1p_unit_f32(f32::NAN).is_nan());
        assert_eq!(ln_1p_unit_f64(0.0), 0.0);
        assert_eq!(ln_1p_unit::<f32>(1.0), ln_1p_unit_f32(1.0));
    }
    #[test]
    fn tanh_within_two_ulp_of_std() {
        let mut worst = (0u64, 0.0f64);
        let n = 2_000_000;
        let points =
            (0..=n).map(|i| -25.0 + 50.0 * i as f64 / n as f64).chain((0..1100).map(|i| 2f64.powi(-i)));
        for x in points {
            let u = ulps_f64(tanh_f64(x), x.tanh()).max(ulps_f64(tanh_f64_in::<true>(x), x.tanh()));
            if u > worst.0 {
                worst = (u, x);
            }
        }
        assert!(worst.0 <= 2, "f64: {} ulp at {}", worst.0, worst.1);
        let mut worst = (0u32, 0.0f32);
        for bits in (0..u32::MAX).step_by(7) {
            let x = f32::from_bits(bits);
            if x.is_nan() {
                continue;
            }
            let exact = (x as f64).tanh() as f32;
            let u = ulps_f32(tanh_f32(x), exact).max(ulps_f32(tanh_f32_in::<true>(x), exact));
            if u > worst.0 {
                worst = (u, x);
            }
        }
        assert!(worst.0 <= 2, "f32: {} ulp at {}", worst.0, worst.1);
        assert!(tanh_f64(f64::NAN).is_nan() && tanh_f32(f32::NAN).is_nan());
        assert_eq!((tanh_f64(f64::INFINITY), tanh_f64(f64::NEG_INFINITY)), (1.0, -1.0));
        assert_eq!((tanh_f32(f32::INFINITY), tanh_f32(-1e30)), (1.0, -1.0));
        assert_eq!(tanh_f64(-0.0).to_bits(), (-0.0f64).to_bits());
        assert_eq!(tanh_in::<f64, false>(0.3), tanh_f64(0.3));
    }
}
