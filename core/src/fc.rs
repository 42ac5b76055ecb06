//! Streaming statistics, functional connectivity (FC) and its dynamics (FCD), in caller buffers.
//!
//! - [`Welford`]: running mean and co-moment matrix of `R` regional series, one sample at a
//!   time (Welford's update, Chan et al.'s merge), giving the sample covariance and the Pearson
//!   FC matrix at any time. Stable where naive sums of squares are not: a signal of 1e4 plus
//!   unit noise keeps its covariance to near working precision.
//! - [`fc_upper`]: the strict upper triangle of an FC matrix, the vector that FCD correlates.
//! - [`SlidingFc`]: FC of sliding windows (length `W` samples, step `S`), each emitted as soon
//!   as its last sample arrives.
//! - [`fcd`]: the FCD matrix, Pearson correlation between the FC vectors of all windows.
//! - [`pearson_two_pass`]: the plain two-pass FC of a stored series, as a reference.
//!
//! Layouts: matrices are `R x R` row-major; a *packed* triangle is the upper triangle
//! including the diagonal, row by row (`(0,0), (0,1), .., (0,R-1), (1,1), ..`, length
//! [`packed_len`]`(R)`); an *FC vector* is the strict upper triangle row by row
//! (`(0,1), (0,2), .., (R-2,R-1)`, length [`n_pairs`]`(R)`). Series are time-major: sample `t`
//! of region `i` at `t R + i`.
//!
//! Conventions: covariance divides by `n - 1`; a region with zero variance (a constant series)
//! has correlation 0 with every other region and 1 with itself, so FC stays free of NaN unless
//! the data hold NaN; correlations are clamped to `[-1, 1]` against rounding.
//!
//! ```
//! use nmm_core::fc::{Welford, packed_len};
//! let (mut mean, mut m2) = ([0.0; 2], [0.0; packed_len(2)]);
//! let mut acc = Welford::new(&mut mean, &mut m2).unwrap();
//! for t in 0..100 {
//!     let a = (t as f64 * 0.3).sin();
//!     acc.push(&[a, 2.0 * a + 1.0]);
//! }
//! let mut fc = [0.0; 4];
//! acc.pearson(&mut fc);
//! assert!((fc[1] - 1.0).abs() < 1e-12); // perfectly correlated
//! ```

use crate::real::Real;
use core::fmt;

/// Length of a packed upper triangle including the diagonal, `r (r + 1) / 2` (the co-moment
/// buffer of [`Welford`]). Saturates at `usize::MAX` instead of overflowing.
///
/// ```
/// assert_eq!(nmm_core::fc::packed_len(4), 10);
/// ```
pub const fn packed_len(r: usize) -> usize {
    if r.is_multiple_of(2) {
        (r / 2).saturating_mul(r + 1)
    } else {
        r.saturating_mul(r / 2 + 1)
    }
}

/// Number of region pairs, `r (r - 1) / 2`: the length of an FC vector (strict upper
/// triangle). Saturates at `usize::MAX` instead of overflowing.
///
/// ```
/// assert_eq!(nmm_core::fc::n_pairs(4), 6);
/// assert_eq!(nmm_core::fc::n_pairs(0), 0);
/// ```
pub const fn n_pairs(r: usize) -> usize {
    if r == 0 {
        0
    } else if r.is_multiple_of(2) {
        (r / 2).saturating_mul(r - 1)
    } else {
        r.saturating_mul((r - 1) / 2)
    }
}

/// Why an FC computation could not start: a buffer of the wrong length or a bad window.
///
/// ```
/// use nmm_core::fc::{FcError, Welford};
/// let (mut mean, mut m2) = ([0.0_f64; 3], [0.0; 5]);
/// assert_eq!(
///     Welford::new(&mut mean, &mut m2).err(),
///     Some(FcError::BufferLength { buffer: "m2", expected: 6, got: 5 })
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FcError {
    /// A buffer does not have the length the other arguments imply.
    BufferLength {
        /// The argument's name.
        buffer: &'static str,
        /// The length it must have.
        expected: usize,
        /// The length it has.
        got: usize,
    },
    /// A sliding window shorter than 2 samples, or a step of 0 samples.
    BadWindow,
}

impl fmt::Display for FcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FcError::BufferLength {
                buffer,
                expected,
                got,
            } => write!(f, "buffer `{buffer}` has length {got}, expected {expected}"),
            FcError::BadWindow => {
                f.write_str("FC window must be at least 2 samples and its step at least 1")
            }
        }
    }
}

impl core::error::Error for FcError {}

/// `Ok` if `buffer` has length `expected`.
fn check_len(buffer: &'static str, expected: usize, got: usize) -> Result<(), FcError> {
    if expected == got {
        Ok(())
    } else {
        Err(FcError::BufferLength {
            buffer,
            expected,
            got,
        })
    }
}

#[cold]
#[inline(never)]
fn length_panic(msg: &'static str) -> ! {
    panic!("{}", msg)
}

/// Correlation from a co-moment and two standard deviations (or root sums of squares):
/// 0 when either is 0, clamped to `[-1, 1]`, NaN kept.
#[inline]
fn corr<T: Real>(c: T, sd_i: T, sd_j: T) -> T {
    if sd_i == T::ZERO || sd_j == T::ZERO {
        return T::ZERO;
    }
    // Dividing twice never overflows (|c| <= sd_i sd_j) where the product sd_i sd_j might.
    let r = c / sd_i / sd_j;
    if r > T::ONE {
        T::ONE
    } else if r < -T::ONE {
        -T::ONE
    } else {
        r
    }
}

/// Index of the diagonal element `(i, i)` in a packed triangle of `r` rows.
#[inline]
fn diag_index(r: usize, i: usize) -> usize {
    i * (2 * r - i + 1) / 2
}

/// Running mean and co-moment matrix of `R` series, in caller buffers.
///
/// `mean` (length `R`) holds the running means; `m2` (length [`packed_len`]`(R)`, packed
/// upper triangle with diagonal) the co-moments `C_ij = sum_t (x_ti - mean_i)(x_tj - mean_j)`.
/// Each [`Welford::push`] costs `R (R + 1) / 2` multiply-adds and performs, with `n` the new
/// count and `d = x - mean` before the update,
///
/// ```text
/// C_ij += (n - 1)/n d_i d_j;   mean_i += d_i / n
/// ```
///
/// which only ever combines deviations from the mean, so a large common offset does not cancel
/// catastrophically as it does in `sum x_i x_j - n mean_i mean_j`.
///
/// ```
/// use nmm_core::fc::{Welford, packed_len};
/// let (mut mean, mut m2) = ([0.0_f32; 3], [0.0; packed_len(3)]);
/// let mut acc = Welford::new(&mut mean, &mut m2).unwrap();
/// acc.push(&[1.0, 2.0, 3.0]);
/// acc.push(&[3.0, 2.0, 1.0]);
/// assert_eq!(acc.mean(), &[2.0, 2.0, 2.0]);
/// let mut cov = [0.0; 9];
/// acc.covariance(&mut cov);
/// assert_eq!(cov, [2.0, 0.0, -2.0, 0.0, 0.0, 0.0, -2.0, 0.0, 2.0]);
/// ```
#[derive(Debug)]
pub struct Welford<'a, T> {
    mean: &'a mut [T],
    m2: &'a mut [T],
    n: usize,
}

impl<'a, T: Real> Welford<'a, T> {
    /// An empty accumulator over `mean.len()` regions; zeroes both buffers.
    ///
    /// # Errors
    /// [`FcError::BufferLength`] (buffer `"m2"`) unless `m2.len() == packed_len(mean.len())`.
    ///
    /// ```
    /// use nmm_core::fc::Welford;
    /// let (mut mean, mut m2) = ([1.0_f64; 2], [1.0; 3]);
    /// let acc = Welford::new(&mut mean, &mut m2).unwrap();
    /// assert_eq!((acc.regions(), acc.count()), (2, 0));
    /// assert_eq!(acc.mean(), &[0.0, 0.0]);
    /// ```
    pub fn new(mean: &'a mut [T], m2: &'a mut [T]) -> Result<Self, FcError> {
        check_len("m2", packed_len(mean.len()), m2.len())?;
        let mut acc = Self { mean, m2, n: 0 };
        acc.reset();
        Ok(acc)
    }

    /// Forgets every sample (zeroes the buffers).
    ///
    /// ```
    /// use nmm_core::fc::Welford;
    /// let (mut mean, mut m2) = ([0.0_f64; 1], [0.0; 1]);
    /// let mut acc = Welford::new(&mut mean, &mut m2).unwrap();
    /// acc.push(&[4.0]);
    /// acc.reset();
    /// assert_eq!((acc.count(), acc.mean()[0]), (0, 0.0));
    /// ```
    pub fn reset(&mut self) {
        self.mean.fill(T::ZERO);
        self.m2.fill(T::ZERO);
        self.n = 0;
    }

    /// Number of regions `R`.
    ///
    /// ```
    /// use nmm_core::fc::Welford;
    /// let (mut mean, mut m2) = ([0.0_f64; 3], [0.0; 6]);
    /// assert_eq!(Welford::new(&mut mean, &mut m2).unwrap().regions(), 3);
    /// ```
    pub fn regions(&self) -> usize {
        self.mean.len()
    }

    /// Number of samples pushed (or merged) since the last reset.
    ///
    /// ```
    /// use nmm_core::fc::Welford;
    /// let (mut mean, mut m2) = ([0.0_f64; 1], [0.0; 1]);
    /// let mut acc = Welford::new(&mut mean, &mut m2).unwrap();
    /// acc.push(&[1.0]);
    /// assert_eq!(acc.count(), 1);
    /// ```
    pub fn count(&self) -> usize {
        self.n
    }

    /// Running mean of each region (zeros before the first sample).
    ///
    /// ```
    /// use nmm_core::fc::Welford;
    /// let (mut mean, mut m2) = ([0.0_f64; 1], [0.0; 1]);
    /// let mut acc = Welford::new(&mut mean, &mut m2).unwrap();
    /// acc.push(&[1.0]);
    /// acc.push(&[2.0]);
    /// assert_eq!(acc.mean(), &[1.5]);
    /// ```
    pub fn mean(&self) -> &[T] {
        self.mean
    }

    /// Co-moments `sum_t (x_ti - mean_i)(x_tj - mean_j)` as a packed upper triangle.
    ///
    /// ```
    /// use nmm_core::fc::Welford;
    /// let (mut mean, mut m2) = ([0.0_f64; 1], [0.0; 1]);
    /// let mut acc = Welford::new(&mut mean, &mut m2).unwrap();
    /// acc.push(&[1.0]);
    /// acc.push(&[3.0]);
    /// assert_eq!(acc.comoment(), &[2.0]);
    /// ```
    pub fn comoment(&self) -> &[T] {
        self.m2
    }

    /// Adds one sample `x` (one value per region).
    ///
    /// # Panics
    /// With the message `Welford::push: x must have one element per region` if
    /// `x.len() != self.regions()`.
    ///
    /// ```
    /// use nmm_core::fc::Welford;
    /// let (mut mean, mut m2) = ([0.0_f64; 2], [0.0; 3]);
    /// let mut acc = Welford::new(&mut mean, &mut m2).unwrap();
    /// acc.push(&[1e4 + 1.0, 1e4 - 1.0]);
    /// acc.push(&[1e4 - 1.0, 1e4 + 1.0]);
    /// assert_eq!(acc.comoment(), &[2.0, -2.0, 2.0]);
    /// ```
    #[inline]
    pub fn push(&mut self, x: &[T]) {
        if x.len() != self.mean.len() {
            length_panic("Welford::push: x must have one element per region");
        }
        self.n += 1;
        let n = T::from_usize(self.n);
        let w = (n - T::ONE) / n;
        let mut rows = &mut self.m2[..];
        for (i, (&xi, &mi)) in x.iter().zip(self.mean.iter()).enumerate() {
            let (row, rest) = core::mem::take(&mut rows).split_at_mut(x.len() - i);
            rows = rest;
            let di = w * (xi - mi);
            for ((c, &xj), &mj) in row.iter_mut().zip(&x[i..]).zip(&self.mean[i..]) {
                *c += di * (xj - mj);
            }
        }
        for (m, &xi) in self.mean.iter_mut().zip(x) {
            *m += (xi - *m) / n;
        }
    }

    /// Absorbs the samples of `other` (Chan, Golub and LeVeque's pairwise update), as if they
    /// had been pushed here; `other` is unchanged.
    ///
    /// # Panics
    /// With the message `Welford::merge: both accumulators must have the same number of
    /// regions` if `other.regions() != self.regions()`.
    ///
    /// ```
    /// use nmm_core::fc::Welford;
    /// let (mut ma, mut ca, mut mb, mut cb) = ([0.0_f64; 1], [0.0; 1], [0.0; 1], [0.0; 1]);
    /// let mut a = Welford::new(&mut ma, &mut ca).unwrap();
    /// let mut b = Welford::new(&mut mb, &mut cb).unwrap();
    /// a.push(&[1.0]);
    /// b.push(&[3.0]);
    /// a.merge(&b);
    /// assert_eq!((a.count(), a.mean(), a.comoment()), (2, &[2.0][..], &[2.0][..]));
    /// ```
    pub fn merge(&mut self, other: &Welford<'_, T>) {
        if other.regions() != self.regions() {
            length_panic("Welford::merge: both accumulators must have the same number of regions");
        }
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            self.mean.copy_from_slice(other.mean);
            self.m2.copy_from_slice(other.m2);
            self.n = other.n;
            return;
        }
        let (na, nb) = (T::from_usize(self.n), T::from_usize(other.n));
        self.n += other.n;
        let n = T::from_usize(self.n);
        let w = na * nb / n;
        let r = self.regions();
        let mut k = 0;
        for i in 0..r {
            let di = w * (other.mean[i] - self.mean[i]);
            for j in i..r {
                self.m2[k] += other.m2[k] + di * (other.mean[j] - self.mean[j]);
                k += 1;
            }
        }
        for (m, &mb) in self.mean.iter_mut().zip(other.mean.iter()) {
            *m += (mb - *m) * nb / n;
        }
    }

    /// Writes the `R x R` sample covariance (divisor `n - 1`, row-major) to `out`; all zeros
    /// while fewer than 2 samples have been seen.
    ///
    /// # Panics
    /// With the message `Welford::covariance: out must have regions * regions elements` if
    /// `out.len() != R * R`.
    ///
    /// ```
    /// use nmm_core::fc::Welford;
    /// let (mut mean, mut m2) = ([0.0_f64; 1], [0.0; 1]);
    /// let mut acc = Welford::new(&mut mean, &mut m2).unwrap();
    /// for x in [1.0, 2.0, 3.0, 4.0] {
    ///     acc.push(&[x]);
    /// }
    /// let mut var = [0.0];
    /// acc.covariance(&mut var);
    /// assert!((var[0] - 5.0 / 3.0).abs() < 1e-15);
    /// ```
    pub fn covariance(&self, out: &mut [T]) {
        let r = self.regions();
        if out.len() != r * r {
            length_panic("Welford::covariance: out must have regions * regions elements");
        }
        if self.n < 2 {
            out.fill(T::ZERO);
            return;
        }
        let denom = T::from_usize(self.n - 1);
        let mut k = 0;
        for i in 0..r {
            for j in i..r {
                let c = self.m2[k] / denom;
                out[i * r + j] = c;
                out[j * r + i] = c;
                k += 1;
            }
        }
    }

    /// Writes the `R x R` Pearson correlation (FC) matrix, row-major, to `out`: diagonal 1,
    /// 0 between a constant region and any other, clamped to `[-1, 1]`. While fewer than 2
    /// samples have been seen every region is constant, so this is the identity.
    ///
    /// # Panics
    /// With the message `Welford::pearson: out must have regions * regions elements` if
    /// `out.len() != R * R`.
    ///
    /// ```
    /// use nmm_core::fc::Welford;
    /// let (mut mean, mut m2) = ([0.0_f64; 2], [0.0; 3]);
    /// let mut acc = Welford::new(&mut mean, &mut m2).unwrap();
    /// for x in [1.0, 2.0, 4.0] {
    ///     acc.push(&[x, 5.0]); // region 1 is constant
    /// }
    /// let mut fc = [f64::NAN; 4];
    /// acc.pearson(&mut fc);
    /// assert_eq!(fc, [1.0, 0.0, 0.0, 1.0]);
    /// ```
    pub fn pearson(&self, out: &mut [T]) {
        let r = self.regions();
        if out.len() != r * r {
            length_panic("Welford::pearson: out must have regions * regions elements");
        }
        // Root co-moments on the diagonal first, then the off-diagonal from them.
        for i in 0..r {
            out[i * r + i] = self.m2[diag_index(r, i)].sqrt();
        }
        let mut k = 0;
        for i in 0..r {
            k += 1; // skip (i, i)
            for j in i + 1..r {
                let c = corr(self.m2[k], out[i * r + i], out[j * r + j]);
                out[i * r + j] = c;
                out[j * r + i] = c;
                k += 1;
            }
        }
        for i in 0..r {
            out[i * r + i] = T::ONE;
        }
    }

    /// Writes the FC vector (strict upper triangle of [`Welford::pearson`], row by row) to
    /// `out`, bit for bit equal to `pearson` followed by [`fc_upper`] but without the `R x R`
    /// buffer.
    ///
    /// # Panics
    /// With the message `Welford::pearson_upper: out must have n_pairs(regions) elements` if
    /// `out.len() != n_pairs(R)`.
    ///
    /// ```
    /// use nmm_core::fc::Welford;
    /// let (mut mean, mut m2) = ([0.0_f64; 3], [0.0; 6]);
    /// let mut acc = Welford::new(&mut mean, &mut m2).unwrap();
    /// acc.push(&[0.0, 1.0, 0.0]);
    /// acc.push(&[1.0, 0.0, 1.0]);
    /// let mut v = [0.0; 3];
    /// acc.pearson_upper(&mut v);
    /// let want = [-1.0, 1.0, -1.0]; // (0,1), (0,2), (1,2)
    /// assert!(v.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-15));
    /// ```
    pub fn pearson_upper(&self, out: &mut [T]) {
        let r = self.regions();
        if out.len() != n_pairs(r) {
            length_panic("Welford::pearson_upper: out must have n_pairs(regions) elements");
        }
        let mut k = 0;
        let mut o = 0;
        for i in 0..r {
            let sd_i = self.m2[k].sqrt();
            k += 1;
            for j in i + 1..r {
                out[o] = corr(self.m2[k], sd_i, self.m2[diag_index(r, j)].sqrt());
                k += 1;
                o += 1;
            }
        }
    }
}

/// Copies the strict upper triangle of the `r x r` row-major matrix `corr` to `out`, row by
/// row: `(0,1), (0,2), .., (0,r-1), (1,2), ..` (length [`n_pairs`]`(r)`).
///
/// # Errors
/// [`FcError::BufferLength`] unless `corr.len() == r * r` (buffer `"corr"`) and
/// `out.len() == n_pairs(r)` (buffer `"out"`).
///
/// ```
/// use nmm_core::fc::fc_upper;
/// let m = [1.0, 0.1, 0.2, 0.1, 1.0, 0.3, 0.2, 0.3, 1.0];
/// let mut v = [0.0; 3];
/// fc_upper(&m, 3, &mut v).unwrap();
/// assert_eq!(v, [0.1, 0.2, 0.3]);
/// ```
pub fn fc_upper<T: Real>(corr: &[T], r: usize, out: &mut [T]) -> Result<(), FcError> {
    check_len("corr", r.saturating_mul(r), corr.len())?;
    check_len("out", n_pairs(r), out.len())?;
    let mut k = 0;
    for i in 0..r {
        for j in i + 1..r {
            out[k] = corr[i * r + j];
            k += 1;
        }
    }
    Ok(())
}

/// Mean of the `n` values of `xs`, computed around the first value so that a constant series
/// has exactly its value as mean (and exactly zero deviations); 0 when `n == 0`.
fn shifted_mean<T: Real>(mut xs: impl Iterator<Item = T>, n: usize) -> T {
    let Some(x0) = xs.next() else {
        return T::ZERO;
    };
    let mut s = T::ZERO;
    for x in xs {
        s += x - x0;
    }
    x0 + s / T::from_usize(n)
}

/// Two-pass correlation of paired values around given means.
fn centered_corr<T: Real>(pairs: impl Iterator<Item = (T, T)>, mx: T, my: T) -> T {
    let (mut sxy, mut sxx, mut syy) = (T::ZERO, T::ZERO, T::ZERO);
    for (x, y) in pairs {
        let (dx, dy) = (x - mx, y - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    corr(sxy, sxx.sqrt(), syy.sqrt())
}

/// Reference FC: Pearson correlation of the time-major `n_t x r` series (sample `t` of region
/// `i` at `series[t r + i]`) by the two-pass formula (means first, then centred sums), written
/// row-major to `out` (`r x r`), with the conventions of [`Welford::pearson`]. Costs
/// `O(r^2 n_t)` with strided reads; meant for checks and small data.
///
/// # Errors
/// [`FcError::BufferLength`] unless `series.len() == n_t * r` (buffer `"series"`) and
/// `out.len() == r * r` (buffer `"out"`).
///
/// ```
/// use nmm_core::fc::pearson_two_pass;
/// let series = [1.0, 2.0, 2.0, 4.0, 3.0, 6.5]; // 3 samples of 2 regions
/// let mut fc = [0.0; 4];
/// pearson_two_pass(&series, 3, 2, &mut fc).unwrap();
/// assert_eq!(fc[0], 1.0);
/// assert!(fc[1] > 0.99 && fc[1] == fc[2]);
/// ```
pub fn pearson_two_pass<T: Real>(
    series: &[T],
    n_t: usize,
    r: usize,
    out: &mut [T],
) -> Result<(), FcError> {
    check_len("series", n_t.saturating_mul(r), series.len())?;
    check_len("out", r.saturating_mul(r), out.len())?;
    let column = |i: usize| series.iter().skip(i).step_by(r).copied();
    // Means on the diagonal, then each pair from them.
    for i in 0..r {
        out[i * r + i] = shifted_mean(column(i), n_t);
    }
    for i in 0..r {
        for j in i + 1..r {
            let c = centered_corr(column(i).zip(column(j)), out[i * r + i], out[j * r + j]);
            out[i * r + j] = c;
            out[j * r + i] = c;
        }
    }
    for i in 0..r {
        out[i * r + i] = T::ONE;
    }
    Ok(())
}

/// FCD: the `n_windows x n_windows` Pearson correlation (row-major, to `out`) between the FC
/// vectors of `n_windows` windows, stored window by window in `fc_vectors` (`n_pairs` values
/// each, as produced by [`SlidingFc`] or [`fc_upper`]). Two-pass per pair, with the
/// conventions of [`Welford::pearson`] (diagonal 1, 0 against a constant FC vector).
///
/// # Errors
/// [`FcError::BufferLength`] unless `fc_vectors.len() == n_windows * n_pairs` (buffer
/// `"fc_vectors"`) and `out.len() == n_windows * n_windows` (buffer `"out"`).
///
/// ```
/// use nmm_core::fc::fcd;
/// let v = [0.1, 0.5, 0.9, 0.2, 0.6, 1.0, 0.9, 0.5, 0.1]; // 3 windows, 3 pairs
/// let mut m = [0.0_f64; 9];
/// fcd(&v, 3, 3, &mut m).unwrap();
/// assert!((m[1] - 1.0).abs() < 1e-12 && (m[2] + 1.0).abs() < 1e-12);
/// ```
pub fn fcd<T: Real>(
    fc_vectors: &[T],
    n_windows: usize,
    n_pairs: usize,
    out: &mut [T],
) -> Result<(), FcError> {
    check_len(
        "fc_vectors",
        n_windows.saturating_mul(n_pairs),
        fc_vectors.len(),
    )?;
    check_len("out", n_windows.saturating_mul(n_windows), out.len())?;
    let nw = n_windows;
    let row = |a: usize| &fc_vectors[a * n_pairs..(a + 1) * n_pairs];
    for a in 0..nw {
        out[a * nw + a] = shifted_mean(row(a).iter().copied(), n_pairs);
    }
    for a in 0..nw {
        for b in a + 1..nw {
            let pairs = row(a).iter().copied().zip(row(b).iter().copied());
            let c = centered_corr(pairs, out[a * nw + a], out[b * nw + b]);
            out[a * nw + b] = c;
            out[b * nw + a] = c;
        }
    }
    for a in 0..nw {
        out[a * nw + a] = T::ONE;
    }
    Ok(())
}

/// FC of sliding windows, streamed: window `k` covers samples `k S .. k S + W` (length `W`,
/// step `S`, samples counted from 0), and its FC vector is returned by the [`SlidingFc::push`]
/// that delivers its last sample.
///
/// At most `ceil(W / S)` windows overlap, so that many [`Welford`] accumulators live in the
/// caller's scratch slice and are reused in turn; samples between windows (when `S > W`)
/// are skipped. The scratch holds, in order, the accumulators (`R` means and
/// [`packed_len`]`(R)` co-moments each) and the output FC vector ([`n_pairs`]`(R)`):
/// [`SlidingFc::buffer_len`] gives the total. Each sample costs `ceil(W/S) R (R + 1) / 2`
/// multiply-adds at most.
///
/// ```
/// use nmm_core::fc::{SlidingFc, n_pairs};
/// const R: usize = 3;
/// let mut scratch = [0.0_f64; SlidingFc::<f64>::buffer_len(R, 15, 2)];
/// let mut sfc = SlidingFc::new(R, 15, 2, &mut scratch).unwrap();
/// let mut windows = 0;
/// for t in 0..100 {
///     let a = (t as f64 * 0.7).sin();
///     if let Some((k, fc)) = sfc.push(&[a, -a, (t as f64).cos()]) {
///         assert_eq!((k, fc.len()), (windows, n_pairs(R)));
///         assert!((fc[0] + 1.0).abs() < 1e-12); // regions 0 and 1 anti-correlated
///         windows += 1;
///     }
/// }
/// assert_eq!(windows, (100 - 15) / 2 + 1);
/// ```
#[derive(Debug)]
pub struct SlidingFc<'a, T> {
    r: usize,
    window: usize,
    step: usize,
    slots: usize,
    acc: &'a mut [T],
    out: &'a mut [T],
    samples: usize,
}

/// Number of accumulators that [`SlidingFc`] keeps: `ceil(w / s)`, at least 1.
const fn slot_count(w: usize, s: usize) -> usize {
    let k = w.div_ceil(s);
    if k == 0 { 1 } else { k }
}

impl<'a, T: Real> SlidingFc<'a, T> {
    /// Length of the scratch slice for `r` regions, window `w` and step `s` samples:
    /// `ceil(w / s) (r + r (r + 1) / 2) + r (r - 1) / 2`. Returns 0 for `s == 0` (rejected
    /// by [`SlidingFc::new`]) and saturates at `usize::MAX`.
    ///
    /// ```
    /// use nmm_core::fc::SlidingFc;
    /// // 68 regions, 15-sample windows every 2 samples: 8 accumulators of 68 + 2346 values,
    /// // plus 2278 for the output.
    /// assert_eq!(SlidingFc::<f32>::buffer_len(68, 15, 2), 8 * (68 + 2346) + 2278);
    /// ```
    pub const fn buffer_len(r: usize, w: usize, s: usize) -> usize {
        if s == 0 {
            return 0;
        }
        slot_count(w, s)
            .saturating_mul(r.saturating_add(packed_len(r)))
            .saturating_add(n_pairs(r))
    }

    /// Sliding FC over `r` regions, window `window` samples, step `step` samples, in
    /// `scratch`.
    ///
    /// # Errors
    /// [`FcError::BadWindow`] if `window < 2` or `step == 0`; [`FcError::BufferLength`]
    /// (buffer `"scratch"`) unless `scratch.len() == buffer_len(r, window, step)`.
    ///
    /// ```
    /// use nmm_core::fc::{FcError, SlidingFc};
    /// let mut scratch = [0.0_f32; 64];
    /// assert_eq!(SlidingFc::new(2, 1, 1, &mut scratch).err(), Some(FcError::BadWindow));
    /// assert!(SlidingFc::new(2, 10, 5, &mut scratch).is_err()); // needs 2 * 5 + 1 = 11
    /// assert!(SlidingFc::new(2, 10, 5, &mut scratch[..11]).is_ok());
    /// ```
    pub fn new(
        r: usize,
        window: usize,
        step: usize,
        scratch: &'a mut [T],
    ) -> Result<Self, FcError> {
        if window < 2 || step == 0 {
            return Err(FcError::BadWindow);
        }
        check_len("scratch", Self::buffer_len(r, window, step), scratch.len())?;
        let slots = slot_count(window, step);
        let (acc, out) = scratch.split_at_mut(slots * (r + packed_len(r)));
        Ok(Self {
            r,
            window,
            step,
            slots,
            acc,
            out,
            samples: 0,
        })
    }

    /// Adds one sample (one value per region); returns the index and FC vector of the window
    /// that this sample completes, if any (at most one window ends at each sample).
    ///
    /// # Panics
    /// With the message `SlidingFc::push: x must have one element per region` if
    /// `x.len() != r`.
    ///
    /// ```
    /// use nmm_core::fc::SlidingFc;
    /// let mut scratch = [0.0_f64; SlidingFc::<f64>::buffer_len(2, 3, 3)];
    /// let mut sfc = SlidingFc::new(2, 3, 3, &mut scratch).unwrap();
    /// assert!(sfc.push(&[0.0, 0.0]).is_none());
    /// assert!(sfc.push(&[1.0, 2.0]).is_none());
    /// let (k, fc) = sfc.push(&[2.0, 4.0]).unwrap(); // samples 0, 1, 2 complete window 0
    /// assert_eq!((k, fc.len()), (0, 1));
    /// assert!((fc[0] - 1.0).abs() < 1e-15);
    /// ```
    pub fn push(&mut self, x: &[T]) -> Option<(usize, &[T])> {
        if x.len() != self.r {
            length_panic("SlidingFc::push: x must have one element per region");
        }
        let (w, s) = (self.window, self.step);
        let t = self.samples;
        self.samples += 1;
        // Windows containing t: k S <= t <= k S + W - 1.
        let k_hi = t / s;
        let k_lo = if t + 1 >= w {
            (t + 1 - w).div_ceil(s)
        } else {
            0
        };
        for k in k_lo..=k_hi {
            let seen = t - k * s;
            let mut acc = self.slot(k % self.slots, seen);
            if seen == 0 {
                acc.reset();
            }
            acc.push(x);
        }
        if k_lo <= k_hi && k_lo * s + w - 1 == t {
            let r = self.r;
            let stride = r + packed_len(r);
            let slot = &mut self.acc[(k_lo % self.slots) * stride..][..stride];
            let (mean, m2) = slot.split_at_mut(r);
            Welford { mean, m2, n: w }.pearson_upper(self.out);
            return Some((k_lo, &*self.out));
        }
        None
    }

    /// Accumulator `i` as a [`Welford`] view holding `n` samples.
    fn slot(&mut self, i: usize, n: usize) -> Welford<'_, T> {
        let stride = self.r + packed_len(self.r);
        let (mean, m2) = self.acc[i * stride..][..stride].split_at_mut(self.r);
        Welford { mean, m2, n }
    }

    /// Restarts at sample 0 (window 0).
    ///
    /// ```
    /// use nmm_core::fc::SlidingFc;
    /// let mut scratch = [0.0_f64; SlidingFc::<f64>::buffer_len(1, 2, 1)];
    /// let mut sfc = SlidingFc::new(1, 2, 1, &mut scratch).unwrap();
    /// sfc.push(&[1.0]);
    /// sfc.reset();
    /// assert_eq!(sfc.samples(), 0);
    /// ```
    pub fn reset(&mut self) {
        self.samples = 0;
    }

    /// Samples pushed since construction or the last reset.
    ///
    /// ```
    /// use nmm_core::fc::SlidingFc;
    /// let mut scratch = [0.0_f64; SlidingFc::<f64>::buffer_len(1, 2, 1)];
    /// let mut sfc = SlidingFc::new(1, 2, 1, &mut scratch).unwrap();
    /// sfc.push(&[1.0]);
    /// assert_eq!(sfc.samples(), 1);
    /// ```
    pub fn samples(&self) -> usize {
        self.samples
    }

    /// Windows completed so far: `floor((samples - W) / S) + 1` once `samples >= W`, else 0.
    ///
    /// ```
    /// use nmm_core::fc::SlidingFc;
    /// let mut scratch = [0.0_f64; SlidingFc::<f64>::buffer_len(1, 4, 2)];
    /// let mut sfc = SlidingFc::new(1, 4, 2, &mut scratch).unwrap();
    /// for t in 0..9 {
    ///     sfc.push(&[t as f64]);
    /// }
    /// assert_eq!(sfc.windows(), 3); // samples 0-3, 2-5, 4-7
    /// ```
    pub fn windows(&self) -> usize {
        if self.samples < self.window {
            0
        } else {
            (self.samples - self.window) / self.step + 1
        }
    }

    /// Number of regions `R`.
    ///
    /// ```
    /// use nmm_core::fc::SlidingFc;
    /// let mut scratch = [0.0_f64; SlidingFc::<f64>::buffer_len(3, 4, 2)];
    /// assert_eq!(SlidingFc::new(3, 4, 2, &mut scratch).unwrap().regions(), 3);
    /// ```
    pub fn regions(&self) -> usize {
        self.r
    }
}
