//! The MLP's activation: `tanh` in `f64` and `f32` without calls, and for a single value
//! without branches, so that it vectorises, across a batch's lanes ([`crate::lanes`]) as well
//! as in a plain loop.
//!
//! libm's `tanh` is a call with branches per value; in a batch of lanes it stayed one call per
//! lane and the MLP mean field ran at 2.7e6 region-steps/s batched or not (24 calls per region
//! and step; benches/benches/batch.rs). This is Cephes' algorithm (S. L. Moshier, `tanh.c`
//! and `tanhf.c`, with the `exp` of `exp.c` and `expf.c`), written without a branch per value:
//! a single value computes both forms, a batch of lanes each form that one of its lanes
//! needs (one branch per form and batch), and each lane's is selected by a mask:
//!
//! - `|x| < 0.625`: `x + x^3 P(x^2) / Q(x^2)` (f64, a 2/3 rational) or `x + x^3 P(x^2)` (f32,
//!   degree 4);
//! - otherwise `1 - 2 / (exp(2|x|) + 1)` with the sign of `x`, `exp` by Cody-Waite reduction
//!   to `[-ln 2 / 2, ln 2 / 2]`, a Pade form (f64) or a polynomial (f32), and the power of two
//!   put into the exponent bits; `|x|` is capped where `tanh` rounds to 1 (22 in f64, 10 in
//!   f32).
//!
//! Rounding to the nearest integer uses the add-and-subtract of `1.5 2^52` (`1.5 2^23`), exact
//! for the reduced arguments here, and the integer is then read from the sum's low bits.
//! Accuracy, measured against `f64::tanh` of std on a grid of 2 10^6 points over [-30, 30] and
//! near 0 (the unit tests): at most 2 units in the last place in f64 (at x = -0.76) and 1 in f32 (at x = -5.72), NaN to NaN,
//! odd, `±0` kept.

/// `tanh(x)` in `f64` (see the module docs).
#[inline(always)]
pub fn tanh_f64(x: f64) -> f64 {
    let [y] = tanh_f64_lanes([x]);
    y
}

/// `tanh(x)` in `f32` (see the module docs).
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let [y] = tanh_f32_lanes([x]);
    y
}

/// Applies `f` to every lane: one short loop per stage of the computation, which the
/// compiler turns into one vector instruction per stage (a whole `tanh` per lane in one loop
/// body was left scalar).
macro_rules! stage {
    ($n:expr, |$k:ident| $e:expr) => {{
        let mut out = [Default::default(); $n];
        for $k in 0..$n {
            out[$k] = $e;
        }
        out
    }};
}

/// [`tanh_f64`] of every lane, the same operations lane by lane.
#[inline(always)]
pub fn tanh_f64_lanes<const L: usize>(x: [f64; L]) -> [f64; L] {
    const P: [f64; 3] = [
        -9.643_991_794_250_523e-1,
        -9.928_772_310_019_186e1,
        -1.614_687_684_417_084_5e3,
    ];
    const Q: [f64; 3] = [
        1.128_116_784_916_329_3e2,
        2.235_488_390_601_004_6e3,
        4.844_063_053_251_255e3,
    ];
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 2^52: t - MAGIC rounds y log2(e)
    let z: [f64; L] = stage!(L, |k| f64::from_bits(x[k].to_bits() & !SIGN64));
    // Each lane's form is taken by a bit mask (all ones where |x| < 0.625, from the sign of
    // |x| - 0.625): a `select` here was turned back into a branch per lane, which kept the
    // batch scalar. Then x's sign (so tanh(-0) = -0).
    let small_mask: [u64; L] = stage!(L, |k| ((z[k] - 0.625).to_bits() as i64 >> 63) as u64);
    let (any_small, any_big) = forms(&small_mask);
    let small: [f64; L] = if any_small {
        // Small |x|: the odd rational of Cephes' tanh, on |x| (odd: the sign goes on at the end).
        let s: [f64; L] = stage!(L, |k| z[k] * z[k]);
        let num: [f64; L] = stage!(L, |k| (P[0] * s[k] + P[1]) * s[k] + P[2]);
        let den: [f64; L] = stage!(L, |k| ((s[k] + Q[0]) * s[k] + Q[1]) * s[k] + Q[2]);
        stage!(L, |k| z[k] + z[k] * s[k] * (num[k] / den[k]))
    } else {
        [0.0; L]
    };
    let big: [f64; L] = if any_big {
        // Large |x|: 1 - 2 / (e^{2z} + 1), e^{2z} by Cephes' exp (capped: tanh(22) is 1 in f64).
        let y: [f64; L] = stage!(L, |k| 2.0 * if z[k] > 22.0 { 22.0 } else { z[k] });
        let t: [f64; L] = stage!(L, |k| y[k] * core::f64::consts::LOG2_E + MAGIC);
        let n: [f64; L] = stage!(L, |k| t[k] - MAGIC);
        let r: [f64; L] = stage!(L, |k| y[k]
            - n[k] * 6.931_457_519_531_25e-1
            - n[k] * 1.428_606_820_309_417_2e-6);
        let rr: [f64; L] = stage!(L, |k| r[k] * r[k]);
        let pr: [f64; L] = stage!(L, |k| r[k]
            * ((1.261_771_930_748_106e-4 * rr[k] + 3.029_944_077_074_419_6e-2) * rr[k] + 1.0));
        let qr: [f64; L] = stage!(L, |k| ((3.001_985_051_386_644_6e-6 * rr[k]
            + 2.524_483_403_496_841e-3)
            * rr[k]
            + 2.272_655_482_081_550_3e-1)
            * rr[k]
            + 2.0);
        let scale: [f64; L] = stage!(L, |k| f64::from_bits(
            t[k].to_bits().wrapping_add(1023) << 52
        ));
        let e: [f64; L] = stage!(L, |k| (1.0 + 2.0 * (pr[k] / (qr[k] - pr[k]))) * scale[k]);
        stage!(L, |k| 1.0 - 2.0 / (e[k] + 1.0))
    } else {
        [0.0; L]
    };
    stage!(L, |k| f64::from_bits(
        ((small[k].to_bits() & small_mask[k]) | (big[k].to_bits() & !small_mask[k]))
            | (x[k].to_bits() & SIGN64)
    ))
}

/// [`tanh_f32`] of every lane, the same operations lane by lane.
#[inline(always)]
#[allow(clippy::excessive_precision)] // Cephes' coefficients as published, rounded to f32
pub fn tanh_f32_lanes<const L: usize>(x: [f32; L]) -> [f32; L] {
    const MAGIC: f32 = 12_582_912.0; // 1.5 2^23
    let z: [f32; L] = stage!(L, |k| f32::from_bits(x[k].to_bits() & !SIGN32));
    let small_mask: [u32; L] = stage!(L, |k| ((z[k] - 0.625).to_bits() as i32 >> 31) as u32);
    let (any_small, any_big) = forms(&small_mask);
    let small: [f32; L] = if any_small {
        let s: [f32; L] = stage!(L, |k| z[k] * z[k]);
        stage!(L, |k| ((((-5.704_988_7e-3 * s[k] + 2.063_908_9e-2)
            * s[k]
            - 5.373_971_6e-2)
            * s[k]
            + 1.333_144_2e-1)
            * s[k]
            - 3.333_328_2e-1)
            * s[k]
            * z[k]
            + z[k])
    } else {
        [0.0; L]
    };
    let big: [f32; L] = if any_big {
        let y: [f32; L] = stage!(L, |k| 2.0 * if z[k] > 10.0 { 10.0 } else { z[k] });
        let t: [f32; L] = stage!(L, |k| y[k] * core::f32::consts::LOG2_E + MAGIC);
        let n: [f32; L] = stage!(L, |k| t[k] - MAGIC);
        let r: [f32; L] = stage!(L, |k| y[k] - n[k] * 0.693_359_375 - n[k] * -2.121_944_4e-4);
        let p: [f32; L] = stage!(L, |k| (((((1.987_569_1e-4 * r[k] + 1.398_199_9e-3)
            * r[k]
            + 8.333_452e-3)
            * r[k]
            + 4.166_579_6e-2)
            * r[k]
            + 1.666_666_5e-1)
            * r[k]
            + 5.000_000_1e-1)
            * (r[k] * r[k])
            + r[k]
            + 1.0);
        let scale: [f32; L] = stage!(L, |k| f32::from_bits(
            t[k].to_bits().wrapping_add(127) << 23
        ));
        stage!(L, |k| 1.0 - 2.0 / (p[k] * scale[k] + 1.0))
    } else {
        [0.0; L]
    };
    stage!(L, |k| f32::from_bits(
        ((small[k].to_bits() & small_mask[k]) | (big[k].to_bits() & !small_mask[k]))
            | (x[k].to_bits() & SIGN32)
    ))
}

/// Which forms to compute, `(small, large)`, given each lane's mask (all ones where the lane
/// takes the small form). In a batch (L > 1) a form only where some lane takes it: the lanes
/// of a batch mostly agree, so the branches are predictable, and skipping the unused form made
/// MLP batches 1.1-1.4x faster (issue 20, with two other changes). A form not computed is
/// masked out, so every lane's value is the same either way. A single value computes both,
/// without a branch (L is a constant: the test folds away).
#[inline(always)]
fn forms<U: Copy + PartialEq + Default, const L: usize>(small_mask: &[U; L]) -> (bool, bool) {
    let zero = U::default();
    (
        L == 1 || small_mask.iter().any(|&m| m != zero),
        L == 1 || small_mask.contains(&zero),
    )
}

const SIGN64: u64 = 1 << 63;
const SIGN32: u32 = 1 << 31;

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two finite values of one sign.
    fn ulps64(a: f64, b: f64) -> u64 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    fn grid() -> impl Iterator<Item = f64> {
        let dense = (0..2_000_000).map(|k| -30.0 + 60.0 * k as f64 / 2e6);
        let tiny = (0..2000).map(|k| 1e-12 * 1.02f64.powi(k)); // 1e-12 .. ~1.6e5
        dense.chain(tiny.clone()).chain(tiny.map(|v| -v))
    }

    #[test]
    fn f64_within_two_ulps_of_std() {
        let mut worst = (0, 0.0);
        for x in grid() {
            let (got, want) = (tanh_f64(x), libm::tanh(x));
            let u = ulps64(got, want);
            if u > worst.0 {
                worst = (u, x);
            }
        }
        assert!(worst.0 <= 2, "{worst:?}");
    }

    #[test]
    fn f32_within_two_ulps_of_the_rounded_f64() {
        let mut worst = (0, 0.0);
        for x in grid() {
            let x = x as f32;
            let (got, want) = (tanh_f32(x), libm::tanh(x as f64) as f32);
            let u = (got.to_bits() as i32 - want.to_bits() as i32).unsigned_abs();
            if u > worst.0 {
                worst = (u, x);
            }
        }
        assert!(worst.0 <= 2, "{worst:?}");
    }

    #[test]
    fn special_values() {
        assert!(tanh_f64(f64::NAN).is_nan() && tanh_f32(f32::NAN).is_nan());
        assert_eq!(tanh_f64(f64::INFINITY), 1.0);
        assert_eq!(tanh_f64(f64::NEG_INFINITY), -1.0);
        assert_eq!(tanh_f32(f32::INFINITY), 1.0);
        assert_eq!(tanh_f64(-0.0).to_bits(), (-0.0f64).to_bits());
        assert_eq!(tanh_f32(0.0).to_bits(), 0);
        assert_eq!(tanh_f64(1e300), 1.0);
        assert_eq!(tanh_f64(-3.0), -tanh_f64(3.0));
    }

    /// Lanes that take different forms (and batches where all take one, which skip the other)
    /// give each lane's value alone, bit for bit: the skipped form must not reach a lane. A
    /// value alone computes both forms, so this compares the skipping path with the
    /// unskipped one; the accuracy tests above hold the single values to libm's.
    #[test]
    fn mixed_lanes_equal_single_values() {
        // Each batch of 8 from a stride through [-3, 3] (every third batch [-0.6, 0.6]) plus
        // the edge cases: mixed, all-small and all-large batches all occur (counted below).
        let xs: [f64; 12] = [
            -3.0,
            -0.7,
            -0.625,
            -0.6,
            -1e-9,
            -0.0,
            0.0,
            0.3,
            0.625,
            0.62,
            2.5,
            f64::NAN,
        ];
        let mut kinds = [0; 3]; // all small, all large, mixed
        for start in 0..4000 {
            let v: [f64; 8] = core::array::from_fn(|k| {
                let i = start * 7 + k * 3;
                if i % 5 == 0 {
                    xs[i % 12]
                } else {
                    (-3.0 + 6.0 * ((i * 2654435761) % 10007) as f64 / 10007.0)
                        * if start % 3 == 0 { 0.2 } else { 1.0 }
                }
            });
            let small = v.iter().filter(|x| x.abs() < 0.625).count();
            kinds[if small == 8 {
                0
            } else if small == 0 {
                1
            } else {
                2
            }] += 1;
            let y64 = tanh_f64_lanes(v);
            let y32 = tanh_f32_lanes(v.map(|x| x as f32));
            for k in 0..8 {
                assert_eq!(
                    y64[k].to_bits(),
                    tanh_f64(v[k]).to_bits(),
                    "f64 lane {k} of {v:?}"
                );
                assert_eq!(
                    y32[k].to_bits(),
                    tanh_f32(v[k] as f32).to_bits(),
                    "f32 lane {k} of {v:?}"
                );
            }
        }
        assert!(
            kinds.iter().all(|&c| c >= 50),
            "batches (all small, all large, mixed): {kinds:?}"
        );
    }
}
