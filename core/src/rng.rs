//! Random numbers: xoshiro256++ streams and a standard-normal sampler.
//!
//! Every random draw in nmm comes from [`Xoshiro256PlusPlus`] seeded through SplitMix64
//! (`seed_from_u64`). Independent streams for nodes or neurons are successive `jump()`s of the
//! seeded generator (each jump advances 2^128 draws, so streams never overlap in practice);
//! [`Streams`] yields them in order at the cost of one jump each, [`stream`] gives one directly.
//!
//! [`Gaussian`] turns a stream into standard-normal draws with the ziggurat method of
//! `rand_distr` (Marsaglia and Tsang), about four times faster than Box-Muller with libm's
//! logarithm and sine: whole-brain runs draw one normal per state variable, region and step, so
//! this is on their hot path. Draws are made in `f64` and rounded to `T`, so f32 and f64 runs of
//! the same seed see the same noise, and every target gives the same numbers (on a Cortex-M4F the
//! f64 arithmetic is soft-float: a few operations per draw).
//!
//! ```
//! use nmm_core::rng::Gaussian;
//! let mut a = Gaussian::<f64>::new(42, 0);
//! let mut b = Gaussian::<f64>::new(42, 0);
//! assert_eq!(a.next(), b.next()); // reproducible from the seed
//! let mut c = Gaussian::<f64>::new(42, 1); // an independent stream
//! assert_ne!(a.next(), c.next());
//! ```

use crate::real::Real;
pub use rand_core::{Rng, SeedableRng};
pub use rand_xoshiro::Xoshiro256PlusPlus;

/// The generator seeded from `seed` and jumped `index` times: stream `index` of `seed`.
///
/// Costs `index` jumps (about a microsecond each); use [`Streams`] for many streams in order.
pub fn stream(seed: u64, index: u64) -> Xoshiro256PlusPlus {
    let mut g = Xoshiro256PlusPlus::seed_from_u64(seed);
    for _ in 0..index {
        g.jump();
    }
    g
}

/// Iterator over the streams `0, 1, 2, ...` of one seed, one jump per item.
///
/// ```
/// use nmm_core::rng::{Rng, Streams, stream};
/// let mut third = Streams::new(7).nth(2).unwrap();
/// assert_eq!(third.next_u64(), stream(7, 2).next_u64());
/// ```
#[derive(Clone, Debug)]
pub struct Streams {
    next: Xoshiro256PlusPlus,
}

impl Streams {
    /// Streams of `seed`, starting at stream 0.
    pub fn new(seed: u64) -> Self {
        Self {
            next: Xoshiro256PlusPlus::seed_from_u64(seed),
        }
    }
}

impl Iterator for Streams {
    type Item = Xoshiro256PlusPlus;
    fn next(&mut self) -> Option<Self::Item> {
        let out = self.next.clone();
        self.next.jump();
        Some(out)
    }
}

/// Uniform draw in the open-closed interval (0, 1] from the top 53 bits of one `u64`.
#[inline]
pub fn uniform_open0<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    ((rng.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Standard-normal draws by the ziggurat method (`rand_distr::StandardNormal`) from one
/// xoshiro256++ stream, computed in `f64` and rounded to `T`.
#[derive(Clone, Debug)]
pub struct Gaussian<T> {
    rng: Xoshiro256PlusPlus,
    _t: core::marker::PhantomData<T>,
}

impl<T: Real> Gaussian<T> {
    /// Normal draws from stream `index` of `seed`.
    pub fn new(seed: u64, index: u64) -> Self {
        Self::from_rng(stream(seed, index))
    }

    /// Normal draws from a given generator.
    pub fn from_rng(rng: Xoshiro256PlusPlus) -> Self {
        Self {
            rng,
            _t: core::marker::PhantomData,
        }
    }

    /// The next standard-normal draw.
    #[inline]
    #[allow(clippy::should_implement_trait)] // infinite stream; an Iterator would need Option
    pub fn next(&mut self) -> T {
        let z: f64 = rand_distr::Distribution::sample(&rand_distr::StandardNormal, &mut self.rng);
        T::from_f64(z)
    }

    /// An array of draws.
    #[inline]
    pub fn array<const N: usize>(&mut self) -> [T; N] {
        core::array::from_fn(|_| self.next())
    }

    /// Fills `out` with draws.
    pub fn fill(&mut self, out: &mut [T]) {
        for z in out {
            *z = self.next();
        }
    }

    /// The underlying generator (for uniform draws from the same stream).
    pub fn rng_mut(&mut self) -> &mut Xoshiro256PlusPlus {
        &mut self.rng
    }
}
