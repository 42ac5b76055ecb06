//! `exp` and `ln` in `f64` without branches on the value or calls, so that a loop that applies
//! them to many values (the Balloon-Windkessel BOLD of every region, every lane of a batch)
//! vectorises; libm's are a call with branches per value. [`Real::exp_branch_free`](crate::Real::exp_branch_free) and
//! [`Real::ln_branch_free`](crate::Real::ln_branch_free) route `f64` here.
//!
//! - `exp`: Cephes' `exp.c` (S. L. Moshier): `n = round(x log2 e)`, Cody-Waite reduction
//!   `r = x - n ln 2` in two parts, `e^r = 1 + 2 r P(r^2) / (Q(r^2) - r P(r^2))`, then `2^n`
//!   put in as two powers of two of half the exponent each, so that results down to the
//!   subnormals and up to overflow come out right. `x` is clamped to `[-746, 710]` first (the
//!   result is 0 or infinite beyond), NaN stays NaN.
//! - `ln`: fdlibm's `e_log.c` (Sun Microsystems): `x = 2^k m` with `m` in
//!   `[sqrt(2)/2, sqrt(2))`, `f = m - 1`, `s = f / (2 + f)`, a degree-14 polynomial in `s`,
//!   `ln x = k ln2_hi - ((f^2/2 - (s (f^2/2 + R) + k ln2_lo)) - f)`; subnormal inputs are
//!   scaled by `2^54` first; 0 gives -inf, negatives and NaN give NaN, +inf gives +inf.
//!
//! Special cases are taken by bit masks, not `if`: a `select` per value was turned back into a
//! branch and kept the loop scalar (as in [`crate::mlp::tanh`]). Accuracy against libm on
//! grids of 4 10^6 points (the unit tests): `exp` within 2 units in the last place over
//! [-745, 709.7] (Cephes' own bound is about 1; libm's is under 1), `ln` within 1 over
//! [1e-310, 1e300].

/// e^x (see the module docs).
#[inline(always)]
pub fn exp(x: f64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 2^52: t - MAGIC rounds y log2(e)
    let y = x.clamp(-746.0, 710.0);
    let t = y * core::f64::consts::LOG2_E + MAGIC;
    let n = t - MAGIC;
    let r = y - n * 6.931_457_519_531_25e-1 - n * 1.428_606_820_309_417_2e-6;
    let rr = r * r;
    let pr = r * ((1.261_771_930_748_106e-4 * rr + 3.029_944_077_074_419_6e-2) * rr + 1.0);
    let qr = ((3.001_985_051_386_644_6e-6 * rr + 2.524_483_403_496_841e-3) * rr
        + 2.272_655_482_081_550_3e-1)
        * rr
        + 2.0;
    let er = 1.0 + 2.0 * (pr / (qr - pr));
    // n from t's low 51 bits (|n| <= 1076), split in halves so that each power of two is
    // normal.
    let ni = ((t.to_bits() << 13) as i64) >> 13;
    let n1 = ni >> 1;
    let n2 = ni - n1;
    let p1 = f64::from_bits(((n1 + 1023) as u64) << 52);
    let p2 = f64::from_bits(((n2 + 1023) as u64) << 52);
    let e = er * p1 * p2;
    // NaN in, NaN out, by a mask rather than through the arithmetic: all ones where x is NaN.
    let nan = (x.is_nan() as u64).wrapping_neg();
    f64::from_bits((e.to_bits() & !nan) | (x.to_bits() & nan))
}

/// Natural logarithm (see the module docs).
#[inline(always)]
pub fn ln(x: f64) -> f64 {
    // fdlibm's constants as published.
    #[allow(clippy::excessive_precision)]
    const LG: [f64; 7] = [
        6.666666666666735130e-01,
        3.999999999940941908e-01,
        2.857142874366239149e-01,
        2.222219843214978396e-01,
        1.818357216161805012e-01,
        1.531383769920937332e-01,
        1.479819860511658591e-01,
    ];
    #[allow(clippy::excessive_precision)]
    const LN2_HI: f64 = 6.93147180369123816490e-01;
    #[allow(clippy::excessive_precision)]
    const LN2_LO: f64 = 1.90821492927058770002e-10;
    const MANT: u64 = (1 << 52) - 1;
    // Subnormals scaled into the normal range (by 2^54, taken off k below).
    let sub = ((x < f64::MIN_POSITIVE) as u64).wrapping_neg();
    let xs =
        f64::from_bits(((x * 18_014_398_509_481_984.0).to_bits() & sub) | (x.to_bits() & !sub));
    let bits = xs.to_bits();
    // m in [sqrt(2)/2, sqrt(2)): the mantissa with exponent 0, or -1 where it is >= sqrt(2)
    // (mantissa bits 0x6a09e667f3bcd of sqrt(2)).
    let high = ((bits & MANT) >= 0x6_a09e_667f_3bcd) as u64;
    let m = f64::from_bits((bits & MANT) | ((1023 - high) << 52));
    let k = ((bits >> 52) & 0x7ff) as i64 - 1023 + high as i64 - (54 & sub as i64);
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG[1] + w * (LG[3] + w * LG[5]));
    let t2 = z * (LG[0] + w * (LG[2] + w * (LG[4] + w * LG[6])));
    let r = t2 + t1;
    let hfsq = 0.5 * f * f;
    let dk = k as f64;
    let v = dk * LN2_HI - ((hfsq - (s * (hfsq + r) + dk * LN2_LO)) - f);
    // x = +inf or NaN: x itself; x = 0: -inf; x < 0: NaN.
    let own = ((x == f64::INFINITY || x.is_nan()) as u64).wrapping_neg();
    let zero = ((x == 0.0) as u64).wrapping_neg();
    let neg = ((x < 0.0) as u64).wrapping_neg();
    let v = (v.to_bits() & !(own | zero | neg))
        | (x.to_bits() & own)
        | (f64::NEG_INFINITY.to_bits() & zero)
        | (f64::NAN.to_bits() & neg);
    f64::from_bits(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two values of one sign.
    fn ulps(a: f64, b: f64) -> u64 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    #[test]
    fn exp_within_two_ulps_of_libm() {
        let mut worst = (0, 0.0);
        let dense = (0..4_000_000).map(|k| -745.0 + 1454.7 * k as f64 / 4e6);
        let near0 = (0..2000)
            .map(|k| 1e-300 * 1.5f64.powi(k))
            .take_while(|v| *v < 1.0);
        for x in dense.chain(near0.clone()).chain(near0.map(|v| -v)) {
            let u = ulps(exp(x), libm::exp(x));
            if u > worst.0 {
                worst = (u, x);
            }
        }
        assert!(worst.0 <= 2, "{worst:?}");
    }

    #[test]
    fn ln_within_one_ulp_of_libm() {
        let mut worst = (0, 0.0);
        // Log-spaced from 1e-310 (subnormal) to 1e300, and dense around 1.
        let wide = (0..2_000_000).map(|k| 1e-310 * 10f64.powf(610.0 * k as f64 / 2e6));
        let near1 = (0..2_000_000).map(|k| 0.5 + 1.5 * k as f64 / 2e6);
        for x in wide.chain(near1) {
            let (got, want) = (ln(x), libm::log(x));
            // Near x = 1 the result is near 0: count ulps of the result's own size.
            let u = ulps(got, want);
            if u > worst.0 {
                worst = (u, x);
            }
        }
        assert!(worst.0 <= 1, "{worst:?}");
    }

    #[test]
    fn special_values() {
        assert!(exp(f64::NAN).is_nan() && ln(f64::NAN).is_nan());
        assert_eq!(exp(f64::INFINITY), f64::INFINITY);
        assert_eq!(exp(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp(710.0), f64::INFINITY);
        assert_eq!(exp(-746.0), 0.0);
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-0.0), 1.0);
        assert_eq!(exp(-745.0), libm::exp(-745.0)); // the smallest subnormal
        assert_eq!(ln(1.0).to_bits(), 0);
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
        assert_eq!(ln(-0.0), f64::NEG_INFINITY);
        assert!(ln(-1.0).is_nan());
        assert_eq!(ln(f64::INFINITY), f64::INFINITY);
        assert_eq!(
            ln(f64::MIN_POSITIVE / 4.0),
            libm::log(f64::MIN_POSITIVE / 4.0)
        );
        assert_eq!(ln(5e-324), libm::log(5e-324));
    }
}
