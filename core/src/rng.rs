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

use crate::lanes::Lanes;
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

/// A source of standard-normal draws of `T`, one per call: a [`Gaussian`] stream, or one
/// stream per lane of a [`Lanes`] batch ([`LaneGaussian`]).
pub trait NormalSource<T> {
    /// Whether a caller drawing from many sources should alternate between them (each draw a
    /// short chain of dependent vector operations, [`LaneGaussian`]) rather than take each
    /// source's draws in a row (a scalar stream, whose state then stays in registers).
    const INDEPENDENT_CHAINS: bool = false;
    /// The next draw.
    fn next_normal(&mut self) -> T;
}

impl<T: Real> NormalSource<T> for Gaussian<T> {
    #[inline]
    fn next_normal(&mut self) -> T {
        self.next()
    }
}

/// `L` independent [`Gaussian`] streams drawn together: lane `k` of every draw comes from
/// stream `k`, the numbers that stream gives alone, so a simulation run in lane `k` of a batch
/// sees exactly the noise of its own scalar run.
///
/// The draws are made in vector lanes: the `L` xoshiro256++ states are kept side by side and
/// advanced together, and `rand_distr`'s ziggurat fast path (one `u64` per draw: a layer from 8
/// bits, a uniform from 52, accepted when inside the layer's rectangle, about 98.8 % of draws)
/// runs on all lanes at once. A lane that falls outside its rectangle is rewound by that one
/// `u64` (the step inverted) and drawn again by `rand_distr`'s own sampler from the same state, which repeats the
/// rejected step and finishes it by the book (wedge or tail), so every lane's numbers and state
/// are exactly the scalar stream's. (Scalar draws cost about a quarter of a whole-brain step's
/// instructions; in lanes they vectorise with the rest.)
///
/// ```
/// use nmm_core::rng::{Gaussian, LaneGaussian, NormalSource};
/// let mut batch = LaneGaussian::new([Gaussian::<f64>::new(1, 3), Gaussian::new(2, 3)]);
/// let (mut a, mut b) = (Gaussian::<f64>::new(1, 3), Gaussian::new(2, 3));
/// for _ in 0..1000 {
///     let z = batch.next_normal();
///     assert_eq!(z.0, [a.next(), b.next()]);
/// }
/// assert_eq!(batch.lane(1).next(), b.next()); // the streams stay in step
/// ```
#[derive(Clone, Debug)]
pub struct LaneGaussian<T, const L: usize> {
    /// Word `w` of lane `k`'s xoshiro256++ state is `s[w][k]`.
    s: [[u64; L]; 4],
    _t: core::marker::PhantomData<T>,
}

impl<T: Real, const L: usize> LaneGaussian<T, L> {
    /// The streams of the `L` lanes, as they stand.
    pub fn new(lanes: [Gaussian<T>; L]) -> Self {
        let mut s = [[0; L]; 4];
        for (k, g) in lanes.iter().enumerate() {
            let bytes = g.rng.state();
            for (w, word) in bytes.chunks_exact(8).enumerate() {
                let mut b = [0; 8];
                b.copy_from_slice(word);
                s[w][k] = u64::from_le_bytes(b);
            }
        }
        Self {
            s,
            _t: core::marker::PhantomData,
        }
    }

    /// Lane `k`'s generator as it stands (a copy: drawing from it does not move the batch).
    ///
    /// # Panics
    /// If `k >= L`.
    pub fn lane(&self, k: usize) -> Gaussian<T> {
        Gaussian::from_rng(Self::generator(&self.s, k))
    }

    fn generator(s: &[[u64; L]; 4], k: usize) -> Xoshiro256PlusPlus {
        let mut bytes = [0; 32];
        for (w, chunk) in bytes.chunks_exact_mut(8).enumerate() {
            chunk.copy_from_slice(&s[w][k].to_le_bytes());
        }
        // Never all zero (unreachable from a seeded generator), so this is the state itself.
        Xoshiro256PlusPlus::from_seed(bytes)
    }
}

impl<T: Real, const L: usize> NormalSource<Lanes<T, L>> for LaneGaussian<T, L> {
    const INDEPENDENT_CHAINS: bool = true;
    #[inline(always)] // left out of line in a whole run, it cost a call and spills per draw
    fn next_normal(&mut self) -> Lanes<T, L> {
        use crate::ziggurat::ZIG_NORM_X;
        // xoshiro256++ in every lane (the loop vectorises).
        let mut bits = [0u64; L];
        for (k, b) in bits.iter_mut().enumerate() {
            *b = xoshiro_step(&mut self.s, k);
        }
        // rand_distr's ziggurat fast path: layer i from the low 8 bits, u in [-1, 1) from the
        // top 52 (a float in [2, 4) minus 3), accepted when |u x_i| < x_{i+1}.
        let mut x = [0.0f64; L];
        let mut inside = true;
        for k in 0..L {
            let i = (bits[k] & 0xff) as usize;
            let u = f64::from_bits((bits[k] >> 12) | (1024u64 << 52)) - 3.0;
            x[k] = u * ZIG_NORM_X[i];
            inside &= x[k].abs() < ZIG_NORM_X[i + 1];
        }
        if !inside {
            self.redraw_outside(&bits, &mut x);
        }
        Lanes(x.map(T::from_f64))
    }
}

impl<T: Real, const L: usize> LaneGaussian<T, L> {
    /// The lanes whose draw fell outside its rectangle, drawn again by `rand_distr` from their
    /// state `before` the draw (see the type's docs).
    #[cold]
    #[inline(never)]
    fn redraw_outside(&mut self, bits: &[u64; L], x: &mut [f64; L]) {
        use crate::ziggurat::ZIG_NORM_X;
        for k in 0..L {
            if x[k].abs() < ZIG_NORM_X[(bits[k] & 0xff) as usize + 1] {
                continue;
            }
            self.step_back(k);
            let mut g = LaneRng { s: &mut self.s, k };
            x[k] = rand_distr::Distribution::sample(&rand_distr::StandardNormal, &mut g);
        }
    }
}

impl<T, const L: usize> LaneGaussian<T, L> {
    /// Undoes lane `k`'s last xoshiro256++ step (the step is a bijection of the state; keeping
    /// a copy of the states before each draw instead cost registers on the fast path).
    fn step_back(&mut self, k: usize) {
        let [n0, n1, n2, n3] = self.s.map(|w| w[k]);
        // Forward: t = s1 << 17; s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t;
        // s3 = rotl(s3, 45). So rotr(n3, 45) = s3 ^ s1, s0 = n0 ^ (s3 ^ s1),
        // n1 ^ s0 = s1 ^ s2, n2 ^ s0 = s2 ^ (s1 << 17), and their xor is s1 ^ (s1 << 17),
        // which the xorshift inverse y ^ (y << 17) ^ (y << 34) ^ (y << 51) undoes.
        let s3_s1 = n3.rotate_right(45);
        let s0 = n0 ^ s3_s1;
        let (s1_s2, s2_t) = (n1 ^ s0, n2 ^ s0);
        let y = s1_s2 ^ s2_t;
        let s1 = y ^ (y << 17) ^ (y << 34) ^ (y << 51);
        for (w, v) in [s0, s1, s1_s2 ^ s1, s3_s1 ^ s1].into_iter().enumerate() {
            self.s[w][k] = v;
        }
    }
}

/// One xoshiro256++ step (Blackman and Vigna, as rand_xoshiro computes it) of lane `k` of
/// side-by-side states (word `w` of lane `k` is `s[w][k]`); returns the output.
#[inline(always)]
fn xoshiro_step<const L: usize>(s: &mut [[u64; L]; 4], k: usize) -> u64 {
    let [s0, s1, s2, s3] = s;
    let out = s0[k]
        .wrapping_add(s3[k])
        .rotate_left(23)
        .wrapping_add(s0[k]);
    let t = s1[k] << 17;
    s2[k] ^= s0[k];
    s3[k] ^= s1[k];
    s1[k] ^= s2[k];
    s0[k] ^= s3[k];
    s2[k] ^= t;
    s3[k] = s3[k].rotate_left(45);
    out
}

/// Lane `k` of a [`LaneGaussian`]'s states as a generator in its own right (xoshiro256++ on
/// `s[..][k]`), for `rand_distr`'s sampler: no copy of the state in or out.
struct LaneRng<'a, const L: usize> {
    s: &'a mut [[u64; L]; 4],
    k: usize,
}

impl<const L: usize> rand_core::TryRng for LaneRng<'_, L> {
    type Error = core::convert::Infallible;
    #[inline]
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(xoshiro_step(self.s, self.k))
    }
    /// The upper half of a `u64` draw, as rand_xoshiro's.
    #[inline]
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok((self.try_next_u64()? >> 32) as u32)
    }
    /// Little-endian `u64` draws, the last one cut short, as rand_xoshiro's.
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(8) {
            let b = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
        Ok(())
    }
}
