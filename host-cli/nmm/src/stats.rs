//! Small statistics shared by the engines, each with one meaning.

/// Mean and **sample** standard deviation (divisor `n - 1`) of `v`; the deviation is NaN for
/// fewer than two values, the mean NaN for none. Used for features of runs (FC, FCD, BOLD).
///
/// ```
/// let (m, sd) = nmm::stats::mean_sd(&[1.0, 2.0, 3.0]);
/// assert_eq!((m, sd), (2.0, 1.0));
/// assert!(nmm::stats::mean_sd(&[4.0]).1.is_nan());
/// ```
pub fn mean_sd(v: &[f64]) -> (f64, f64) {
    if v.len() < 2 {
        return (v.first().copied().unwrap_or(f64::NAN), f64::NAN);
    }
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64;
    (m, var.sqrt())
}

/// Mean and **population** standard deviation (divisor `n`) of the values `x` yields; `(0, 1)`
/// for none. Used for scales of normalisation (training), where the spread of the data at hand
/// is wanted, not an estimate.
///
/// ```
/// let (m, sd) = nmm::stats::mean_sd_population([1.0, 3.0].into_iter());
/// assert_eq!((m, sd), (2.0, 1.0));
/// assert_eq!(nmm::stats::mean_sd_population(std::iter::empty()), (0.0, 1.0));
/// ```
pub fn mean_sd_population(x: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let (mut n, mut s) = (0usize, 0.0);
    for v in x.clone() {
        n += 1;
        s += v;
    }
    if n == 0 {
        return (0.0, 1.0);
    }
    let mean = s / n as f64;
    let var = x.map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
    (mean, var.sqrt())
}

/// Pearson correlation of `a` and `b` (same length); NaN when either is constant.
///
/// ```
/// let r = nmm::stats::pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 7.0]);
/// assert!((r - 0.9933992677987828).abs() < 1e-15);
/// assert!(nmm::stats::pearson(&[1.0, 1.0], &[1.0, 2.0]).is_nan());
/// ```
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let (ma, _) = mean_sd(a);
    let (mb, _) = mean_sd(b);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    if saa == 0.0 || sbb == 0.0 {
        return f64::NAN;
    }
    sab / (saa * sbb).sqrt()
}

/// `a / b` when `a` is a whole multiple `k >= 1` of `b > 0`, to within `1e-6 a`: loose enough
/// for steps typed with seven significant digits (1/3 ms as `3.333333e-4`, 30 of which make a
/// 0.01 bin), tight enough that no step a user means to differ passes (every caller then uses
/// `k` steps of `b`). One tolerance for every step check of nmm (spiking bins and pulses,
/// whole-brain BOLD steps, TRs and recording, training resampling).
///
/// ```
/// assert_eq!(nmm::stats::whole_multiple(5.0, 0.1), Some(50));
/// assert_eq!(nmm::stats::whole_multiple(0.01, 3.333333e-4), Some(30));
/// assert_eq!(nmm::stats::whole_multiple(0.25, 0.1), None);
/// assert_eq!(nmm::stats::whole_multiple(0.05, 0.1), None);
/// ```
pub fn whole_multiple(a: f64, b: f64) -> Option<usize> {
    let k = (a / b).round();
    (a.is_finite() && b.is_finite() && b > 0.0 && k >= 1.0 && (a - k * b).abs() <= 1e-6 * a)
        .then_some(k as usize)
}

/// The `p` quantile of ascending `sorted` values by linear interpolation between order
/// statistics (numpy's default `method="linear"`: position `p (n - 1)`); NaN for no values.
///
/// ```
/// let v = [1.0, 2.0, 4.0, 8.0];
/// assert_eq!(nmm::stats::quantile_sorted(&v, 0.5), 3.0);
/// assert_eq!(nmm::stats::quantile_sorted(&v, 1.0), 8.0);
/// assert_eq!(nmm::stats::quantile_sorted(&v, 0.25), 1.75);
/// ```
pub fn quantile_sorted(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let pos = p.clamp(0.0, 1.0) * (n - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    let f = pos - lo as f64;
    sorted[lo] + f * (sorted[hi] - sorted[lo])
}
