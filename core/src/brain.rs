//! Whole-brain networks: mean-field nodes coupled through a connectome, with conduction delays,
//! additive noise and stochastic Heun steps, on buffers that the caller owns.
//!
//! Node `i` receives the input
//!
//! ```text
//! c_i(t) = G g_i sum_j W_ij x_j(t - d_ij)
//! ```
//!
//! where `x_j` is node `j`'s coupling variable ([`Model::COUPLING_VAR`]: the rate `r` of MPR,
//! Chen-Campbell and the MLP, `S_E` of reduced Wong-Wang), `G` the global coupling,
//! `g_i` the model's [`Model::coupling_gain`] (`J_N` for RWW, else 1), `W` the (normalised)
//! weights with `W_ij` the link from `j` to `i`, and `d_ij` a delay in whole steps (tract length
//! over conduction speed, rounded to the nearest step, as TVB does). Every state variable gets
//! additive noise `sigma_k dW`.
//!
//! ## Storage
//!
//! [`Connectome::build`] turns a dense `n x n` weight matrix and delay matrix into two
//! compressed-row lists of the non-zero links, one for links without delay and one for delayed
//! links, in slices the caller sizes with [`count_links`]. Only the coupling variable's history
//! is kept: per region a ring of `L = max_delay + 1` time slots followed by copies of its first
//! `BLOCK - 1` slots (`R = L + BLOCK - 1` values per region, region-major), so that any
//! `BLOCK` consecutive times are contiguous (when `L >= BLOCK`, the only case with blocked
//! links; a shorter ring only serves single reads). A link stores where its source's ring starts and
//! its lag `L - d`; a read is one wrap-around test on the lag. (A ring stored twice over would
//! spare that test but doubles the history memory; on TVB's 76-region connectome, 51 ms of
//! delays at dt = 0.1 ms, the two layouts took the same number of cycles, so the smaller one
//! was kept.)
//!
//! Delay blocking: a link with delay `d >= B` ([`BLOCK`] steps) only reaches back to states at
//! least `B` steps old, so at the start of every block of `B` steps the delayed input of all
//! `B` coming steps is summed at once, `B` contiguous history values per link (vectorised
//! multiply-adds instead of `B` scattered gathers). Links with `1 <= d < B` are gathered step by
//! step.
//!
//! ## Step
//!
//! One [`Brain::step`] is a stochastic Heun step of the whole network, exactly
//! [`crate::integrate::stochastic_heun_in`] per node: predictor
//! `p = P(x + dt f(x, c(t)) + sigma sqrt(dt) z)`, corrector
//! `x' = P(x + dt/2 (f(x, c(t)) + f(p, c(t + dt))) + sigma sqrt(dt) z)`, `P` the model's
//! [`Model::project`]. The corrector's coupling `c(t + dt)` uses the predictor for links without
//! delay and the stored history for delayed ones (a delay of at least one step only reaches
//! back to states already computed), so the scheme keeps its second order in the drift for any
//! delays. The delayed part of `c(t + dt)` is also the delayed part of the next step's `c(t)`,
//! so each step gathers the delayed links once.
//!
//! Node `i` draws its noise from stream `i + 1` of the run's seed ([`Gaussian::new`]), so with
//! `G = 0` node `i` reproduces, bit for bit, [`crate::sim::simulate`] with
//! `Gaussian::new(seed, i + 1)`, constant zero input and Heun. The draws are made [`BLOCK`]
//! steps at a time per region (the same numbers in the same order, with the stream's state kept
//! in registers for the whole block), so when a run stops mid-block its streams have moved past
//! the noise it used; [`Brain::reset_history`] does not discard drawn noise.
//!
//! ```
//! use nmm_core::brain::{Brain, Connectome, Link, count_links};
//! use nmm_core::models::Mpr;
//! use nmm_core::rng::Gaussian;
//! use nmm_core::Model;
//! // Two regions linked both ways, 5 steps of delay.
//! let w = [0.0, 1.0, 1.0, 0.0];
//! let d = [0, 5, 5, 0];
//! let counts = count_links(2, &w, &d).unwrap();
//! // Caller-owned buffers, no allocation: fixed arrays with room to spare, sliced to the
//! // lengths the connectome needs (as firmware would with statics).
//! type B = Brain<'static, f64, Mpr<f64>, 2>;
//! let (mut ir, mut dr) = ([0; 3], [0; 5]);
//! let (mut il, mut dl) = ([Link::default(); 4], [Link::default(); 4]);
//! let conn = Connectome::build(
//!     2, &w, &d, &mut ir, &mut il[..counts.instant], &mut dr, &mut dl[..counts.delayed],
//! ).unwrap();
//! let models = [Mpr::<f64>::default(); 2];
//! let mut x = [models[0].initial_state(); 2];
//! let (mut hist, mut work, mut coupling) = ([0.0; 128], [[0.0; 2]; 64], [0.0; 64]);
//! let hist = &mut hist[..B::history_len(&conn)];
//! let work = &mut work[..B::work_len(2)];
//! let coupling = &mut coupling[..B::coupling_len(2)];
//! let mut noise = [Gaussian::new(7, 1), Gaussian::new(7, 2)];
//! let mut brain = Brain::new(
//!     conn, &models, 0.1, [0.0, 0.0], 0.01, &mut x, hist, work, coupling, &mut noise,
//! ).unwrap();
//! for _ in 0..1000 {
//!     brain.step();
//! }
//! assert!(brain.state().iter().all(|s| s[0] > 0.0));
//! ```

use crate::Model;
use crate::real::Real;
use crate::rng::{Gaussian, NormalSource};
use core::fmt;
use core::ops::Mul;

/// One link of a [`Connectome`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Link<T> {
    /// Weight `W_ij` after normalisation (dimensionless).
    pub w: T,
    /// For a link without delay, the source region `j`; for a delayed link, where region `j`'s
    /// ring starts in the history: `R j`.
    pub at: u32,
    /// For a delayed link, `L - d_ij`: `x_j(t + dt - d_ij)` is in ring slot
    /// `(slot of t + dt + lag) mod L`. Zero for links without delay.
    pub lag: u32,
}

/// Sizes of the link lists of a connectome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkCounts {
    /// Non-zero links without delay (the diagonal, and links shorter than half a step).
    pub instant: usize,
    /// Non-zero links with a delay of at least one step.
    pub delayed: usize,
    /// Of those, links with a delay of at least [`BLOCK`] steps (summed in blocks).
    pub blocked: usize,
    /// Longest delay of a non-zero link, in steps.
    pub max_delay: usize,
}

/// A problem with a network's description or buffers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BrainError {
    /// A buffer or matrix does not have the length the region count implies.
    Length {
        /// Which buffer.
        what: &'static str,
        /// Length required.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// A weight is NaN or infinite.
    NonFiniteWeight {
        /// Target region.
        i: usize,
        /// Source region.
        j: usize,
    },
    /// The history of the longest delay does not fit the 32-bit offsets (`R n >= 2^32`).
    TooLong,
    /// The time step is not positive and finite.
    BadStep,
    /// A noise amplitude or the global coupling is NaN or infinite, or a noise amplitude is
    /// negative.
    BadConstant(&'static str),
}

impl fmt::Display for BrainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BrainError::Length {
                what,
                expected,
                got,
            } => write!(f, "{what} has length {got}, expected {expected}"),
            BrainError::NonFiniteWeight { i, j } => {
                write!(
                    f,
                    "weight W[{i}][{j}] (from region {j} to {i}) is not finite"
                )
            }
            BrainError::TooLong => f.write_str(
                "the delays are too long for this many regions (history of 2^32 values or more)",
            ),
            BrainError::BadStep => f.write_str("the time step must be positive and finite"),
            BrainError::BadConstant(what) => write!(f, "{what} must be finite (and >= 0)"),
        }
    }
}

impl core::error::Error for BrainError {}

fn check_len(what: &'static str, expected: usize, got: usize) -> Result<(), BrainError> {
    if expected == got {
        Ok(())
    } else {
        Err(BrainError::Length {
            what,
            expected,
            got,
        })
    }
}

/// Counts the non-zero links of an `n x n` row-major weight matrix (`weights[i n + j]` from `j`
/// to `i`) and its delays in steps (`delays` of the same shape, or empty for no delays).
///
/// # Errors
/// [`BrainError::Length`] for wrong shapes, [`BrainError::NonFiniteWeight`] for NaN or infinite
/// weights, [`BrainError::TooLong`] if `(max_delay + BLOCK) n` exceeds `u32::MAX`.
pub fn count_links<T: Real>(
    n: usize,
    weights: &[T],
    delays: &[u32],
) -> Result<LinkCounts, BrainError> {
    let nn = n.checked_mul(n).ok_or(BrainError::TooLong)?;
    check_len("weights", nn, weights.len())?;
    if !delays.is_empty() {
        check_len("delays", nn, delays.len())?;
    }
    let mut c = LinkCounts {
        instant: 0,
        delayed: 0,
        blocked: 0,
        max_delay: 0,
    };
    for (k, &w) in weights.iter().enumerate() {
        if !w.is_finite() {
            return Err(BrainError::NonFiniteWeight { i: k / n, j: k % n });
        }
        if w == T::ZERO {
            continue;
        }
        let d = delays.get(k).copied().unwrap_or(0) as usize;
        if d == 0 {
            c.instant += 1;
        } else {
            c.delayed += 1;
            c.blocked += usize::from(d >= BLOCK);
            c.max_delay = c.max_delay.max(d);
        }
    }
    if c.max_delay
        .checked_add(BLOCK)
        .and_then(|r| r.checked_mul(n))
        .is_none_or(|h| h > u32::MAX as usize)
    {
        return Err(BrainError::TooLong);
    }
    Ok(c)
}

/// A connectome in compressed rows, borrowed from the caller's slices.
#[derive(Clone, Copy, Debug)]
pub struct Connectome<'a, T> {
    n: usize,
    slots: usize,
    inst_rows: &'a [u32],
    inst: &'a [Link<T>],
    del_rows: &'a [u32],
    del: &'a [Link<T>],
    /// Some link has a delay of 1 to `BLOCK - 1` steps.
    has_short: bool,
}

impl<'a, T: Real> Connectome<'a, T> {
    /// Fills the link lists from a dense weight matrix and delays in steps (see
    /// [`count_links`] for the layout) and returns the connectome that borrows them.
    ///
    /// `inst_rows` needs `n + 1` entries, `del_rows` `2 n + 1` (row `i`'s links with delays
    /// below [`BLOCK`] are `del[del_rows[2i]..del_rows[2i+1]]`, the others
    /// `del[del_rows[2i+1]..del_rows[2i+2]]`); `inst` and `del` the counts that [`count_links`]
    /// returns.
    ///
    /// # Errors
    /// As [`count_links`], and [`BrainError::Length`] if a buffer has the wrong length.
    #[allow(clippy::too_many_arguments)] // the matrix and the four output buffers
    pub fn build(
        n: usize,
        weights: &[T],
        delays: &[u32],
        inst_rows: &'a mut [u32],
        inst: &'a mut [Link<T>],
        del_rows: &'a mut [u32],
        del: &'a mut [Link<T>],
    ) -> Result<Self, BrainError> {
        let c = count_links(n, weights, delays)?;
        check_len("instant row index", n + 1, inst_rows.len())?;
        check_len("delayed row index", 2 * n + 1, del_rows.len())?;
        check_len("instant links", c.instant, inst.len())?;
        check_len("delayed links", c.delayed, del.len())?;
        let slots = c.max_delay + 1;
        let (mut ki, mut kd) = (0usize, 0usize);
        for i in 0..n {
            inst_rows[i] = ki as u32;
            del_rows[2 * i] = kd as u32;
            // Short delays first, then blocked ones.
            for blocked in [false, true] {
                if blocked {
                    del_rows[2 * i + 1] = kd as u32;
                }
                for j in 0..n {
                    let w = weights[i * n + j];
                    if w == T::ZERO {
                        continue;
                    }
                    let d = delays.get(i * n + j).copied().unwrap_or(0) as usize;
                    if d == 0 {
                        if !blocked {
                            inst[ki] = Link {
                                w,
                                at: j as u32,
                                lag: 0,
                            };
                            ki += 1;
                        }
                    } else if (d >= BLOCK) == blocked {
                        del[kd] = Link {
                            w,
                            at: (ring_len(slots) * j) as u32,
                            lag: (slots - d) as u32,
                        };
                        kd += 1;
                    }
                }
            }
        }
        inst_rows[n] = ki as u32;
        del_rows[2 * n] = kd as u32;
        Ok(Self {
            n,
            slots,
            inst_rows,
            inst,
            has_short: c.delayed > c.blocked,
            del_rows,
            del,
        })
    }

    /// Number of regions.
    pub fn regions(&self) -> usize {
        self.n
    }

    /// Number of stored (non-zero) links.
    pub fn links(&self) -> usize {
        self.inst.len() + self.del.len()
    }

    /// Longest delay in steps.
    pub fn max_delay(&self) -> usize {
        self.slots - 1
    }

    /// Sum of `w x_j` over region `i`'s links without delay (zero when the connectome has
    /// none). Inlined by force: as a call it cost a call, spills and a `vzeroupper` per region.
    #[inline(always)]
    fn instant_input<V: Real + Mul<T, Output = V>, const N: usize>(
        &self,
        i: usize,
        x: &[[V; N]],
        cv: usize,
    ) -> V {
        if self.inst.is_empty() {
            V::ZERO
        } else {
            let row = &self.inst[self.inst_rows[i] as usize..self.inst_rows[i + 1] as usize];
            instant_sum(row, x, cv)
        }
    }
}

/// Sum of `w x_j` over a row of links without delay, `x_j` the coupling variable of region `j`,
/// in four partial sums as [`delayed_sum`] (one running sum made every link wait for the
/// previous addition: on a batch of 16 f32 lanes, 40 % of the step's time on TVB's 76-region
/// connectome without delays).
#[inline(always)]
fn instant_sum<W: Copy, V: Real + Mul<W, Output = V>, const N: usize>(
    links: &[Link<W>],
    x: &[[V; N]],
    cv: usize,
) -> V {
    let mut acc = [V::ZERO; 4];
    let mut chunks = links.chunks_exact(4);
    for c in &mut chunks {
        for k in 0..4 {
            acc[k] += x[c[k].at as usize][cv] * c[k].w;
        }
    }
    for (k, l) in chunks.remainder().iter().enumerate() {
        acc[k] += x[l.at as usize][cv] * l.w;
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

/// Ring slots per region for `slots = L` time slots: `L + BLOCK - 1` (see the module docs).
const fn ring_len(slots: usize) -> usize {
    slots + BLOCK - 1
}

/// Index in the history of link `l`'s value for the time whose slot is `base` (`< L`).
#[inline(always)]
fn hist_index<T>(l: &Link<T>, base: usize, slots: usize) -> usize {
    let p = l.lag as usize + base;
    l.at as usize + if p >= slots { p - slots } else { p }
}

/// Sum of `w x_j(t - d)` over a row of delayed links, `base` the ring slot of `t`, in four
/// partial sums so the gathers overlap (the order of additions is fixed, so results do not
/// depend on the machine).
#[inline(always)]
fn delayed_sum<W: Copy, V: Real + Mul<W, Output = V>>(
    links: &[Link<W>],
    hist: &[V],
    base: usize,
    slots: usize,
) -> V {
    let mut acc = [V::ZERO; 4];
    let mut chunks = links.chunks_exact(4);
    for c in &mut chunks {
        for k in 0..4 {
            acc[k] += hist[hist_index(&c[k], base, slots)] * c[k].w;
        }
    }
    for (k, l) in chunks.remainder().iter().enumerate() {
        acc[k] += hist[hist_index(l, base, slots)] * l.w;
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

/// Steps per block of the delayed coupling (see the module docs).
pub const BLOCK: usize = 16;

/// Adds `w x_j` of every link for the `BLOCK` consecutive times from the one in ring slot
/// `base` on to `acc` (the delayed input of `BLOCK` steps), in link order.
#[inline(always)]
fn block_sum<W: Copy, V: Real + Mul<W, Output = V>>(
    links: &[Link<W>],
    hist: &[V],
    base: usize,
    slots: usize,
    acc: &mut [V; BLOCK],
) {
    *acc = [V::ZERO; BLOCK];
    for l in links {
        let start = hist_index(l, base, slots);
        if let Some(h) = hist.get(start..start + BLOCK) {
            for (a, &x) in acc.iter_mut().zip(h) {
                *a += x * l.w;
            }
        }
    }
}

/// A network of `n` nodes of model `M` (`N` state variables each) on a [`Connectome`], with
/// noise from one `S` per region (a [`Gaussian`] stream; with `T` a
/// [`Lanes`](crate::lanes::Lanes) batch, one stream per lane, see
/// [`LaneGaussian`](crate::rng::LaneGaussian)), on link weights of type `W` (`T` itself, or
/// for a batch the lanes' scalar: one weight per link, broadcast to the lanes, keeps the links
/// in L1 cache; weights stored as 16 lanes made the batched step wait on L2).
#[derive(Debug)]
pub struct Brain<'a, T, M, const N: usize, S = Gaussian<T>, W = T> {
    conn: Connectome<'a, W>,
    models: &'a [M],
    g: T,
    sigma: [T; N],
    dt: T,
    /// `sqrt(dt)`, computed once: per step, on a batch of lanes, it was one scalar `sqrtss`
    /// or `sqrtsd` per lane (libm's inline assembly, legacy-encoded amid 256-bit code), a
    /// fifth of the MPR step's time (perf, f32).
    sq: T,
    x: &'a mut [[T; N]],
    hist: &'a mut [T],
    work: &'a mut [[T; N]],
    coupling: &'a mut [T],
    noise: &'a mut [S],
    step: u64,
    /// Steps of pre-drawn noise already used (`BLOCK`: draw the next block).
    noise_used: usize,
    /// Every region has the same model parameters.
    uniform: bool,
}

impl<'a, T, M, const N: usize, S, W> Brain<'a, T, M, N, S, W>
where
    T: Real + Mul<W, Output = T>,
    M: Model<T, N>,
    S: NormalSource<T>,
    W: Real,
{
    /// Length of the history buffer for `conn`: `(max_delay + BLOCK) n`.
    pub fn history_len(conn: &Connectome<'_, W>) -> usize {
        ring_len(conn.slots) * conn.n
    }

    /// Length of the per-node work buffer for `n` regions: `(2 + BLOCK) n` states (two Heun
    /// stages and `BLOCK` steps of pre-drawn noise).
    pub const fn work_len(n: usize) -> usize {
        (2 + BLOCK) * n
    }

    /// Length of the coupling buffer for `n` regions: `(2 + BLOCK) n` values.
    pub const fn coupling_len(n: usize) -> usize {
        (2 + BLOCK) * n
    }

    /// A network at state `x` (one state per region, kept as the constant past of every
    /// delay), with per-region models (`models.len() == n`), global coupling `g`, noise
    /// amplitudes `sigma` per state variable (unit of the variable per sqrt(time unit)) and step
    /// `dt` (the models' time unit). `hist` needs [`Brain::history_len`] values, `work`
    /// [`Brain::work_len`] states, `coupling` [`Brain::coupling_len`] values, `noise` one
    /// stream per region.
    ///
    /// # Errors
    /// [`BrainError::Length`] for a buffer of the wrong length, [`BrainError::BadStep`],
    /// [`BrainError::BadConstant`] for a non-finite `g` or a negative or non-finite `sigma`.
    #[allow(clippy::too_many_arguments)] // constants plus the caller's buffers
    pub fn new(
        conn: Connectome<'a, W>,
        models: &'a [M],
        g: T,
        sigma: [T; N],
        dt: T,
        x: &'a mut [[T; N]],
        hist: &'a mut [T],
        work: &'a mut [[T; N]],
        coupling: &'a mut [T],
        noise: &'a mut [S],
    ) -> Result<Self, BrainError>
    where
        M: PartialEq,
    {
        let n = conn.n;
        check_len("models", n, models.len())?;
        check_len("state", n, x.len())?;
        check_len("history", Self::history_len(&conn), hist.len())?;
        check_len("work", Self::work_len(n), work.len())?;
        check_len("coupling", Self::coupling_len(n), coupling.len())?;
        check_len("noise streams", n, noise.len())?;
        if !(dt.is_finite() && dt > T::ZERO) {
            return Err(BrainError::BadStep);
        }
        if !g.is_finite() {
            return Err(BrainError::BadConstant("the global coupling G"));
        }
        if sigma.iter().any(|s| !s.is_finite() || *s < T::ZERO) {
            return Err(BrainError::BadConstant("every noise amplitude"));
        }
        let mut b = Self {
            conn,
            models,
            g,
            sigma,
            dt,
            sq: dt.sqrt(),
            x,
            hist,
            work,
            coupling,
            noise,
            step: 0,
            noise_used: BLOCK,
            uniform: models.windows(2).all(|w| w[0] == w[1]),
        };
        b.reset_history();
        Ok(b)
    }

    /// Fills every history slot with the current state (a constant past) and recomputes the
    /// delayed coupling; call after changing the state with [`Brain::state_mut`].
    pub fn reset_history(&mut self) {
        let cv = M::COUPLING_VAR;
        let len = ring_len(self.conn.slots);
        for (ring, x) in self.hist.chunks_exact_mut(len).zip(self.x.iter()) {
            ring.fill(x[cv]);
        }
        self.step = 0;
        let conn = self.conn;
        let (cd, _) = self.coupling.split_at_mut(conn.n);
        for (i, c) in cd.iter_mut().enumerate() {
            let row = &conn.del[conn.del_rows[2 * i] as usize..conn.del_rows[2 * i + 2] as usize];
            *c = delayed_sum(row, self.hist, 0, conn.slots);
        }
    }

    /// Number of regions.
    pub fn regions(&self) -> usize {
        self.conn.n
    }

    /// Steps taken since construction or the last [`Brain::reset_history`].
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// The state of every region.
    pub fn state(&self) -> &[[T; N]] {
        self.x
    }

    /// Mutable state (follow with [`Brain::reset_history`] to restart the delays from it).
    pub fn state_mut(&mut self) -> &mut [[T; N]] {
        self.x
    }

    /// The input each region received at the start of the last step (`G g_i sum_j W_ij x_j`).
    pub fn last_input(&self) -> &[T] {
        &self.coupling[self.conn.n..2 * self.conn.n]
    }

    /// Advances the network by one step (see the module docs). Returns `false`, leaving the
    /// network in its new state, if any state variable became NaN or infinite.
    pub fn step(&mut self) -> bool
    where
        M: Clone,
    {
        let Some(first) = self.models.first() else {
            self.step += 1; // no regions: only time moves
            return true;
        };
        if self.uniform {
            // One local copy of the shared parameters: the compiler then keeps what the model
            // derives from them (MPR's 1/tau, Delta/(pi tau)) out of the region loops. Same
            // operations on the same values, so the results are those of the per-region path.
            // (`PartialEq` counts -0.0 and 0.0 as equal: parameters that differ only in the
            // sign of a zero all run with the first region's, which no model distinguishes.)
            let m = first.clone();
            self.step_impl::<true>(&m)
        } else {
            self.step_impl::<false>(first)
        }
    }

    /// Draws the next [`BLOCK`] steps of noise of every region, `sigma_k sqrt(dt) z`, in each
    /// stream's order (steps, then variables, as a single-node run draws them), into the work
    /// buffer step-major (`[2 n + s n + i]` for step `s` of the block and region `i`).
    #[inline(never)]
    fn draw_noise(&mut self, sq: T) {
        let n = self.conn.n;
        let dwb = &mut self.work[2 * n..(2 + BLOCK) * n];
        if S::INDEPENDENT_CHAINS {
            // Steps outside, regions inside: consecutive draws come from different regions'
            // generators, whose updates the core overlaps (one generator's draws form a chain
            // of dependent updates, too long to wait for once per draw).
            for step in dwb.chunks_exact_mut(n) {
                for (dw, gauss) in step.iter_mut().zip(self.noise[..n].iter_mut()) {
                    for (d, s) in dw.iter_mut().zip(&self.sigma) {
                        *d = *s * sq * gauss.next_normal();
                    }
                }
            }
        } else {
            for (i, gauss) in self.noise[..n].iter_mut().enumerate() {
                for dw in dwb[i..].iter_mut().step_by(n) {
                    for (d, s) in dw.iter_mut().zip(&self.sigma) {
                        *d = *s * sq * gauss.next_normal();
                    }
                }
            }
        }
        self.noise_used = 0;
    }

    /// The delayed input of links with delays of at least [`BLOCK`] steps for the `BLOCK`
    /// steps from `next` on, into `coupling` step-major (`[2 n + s n + i]`).
    #[inline(never)]
    fn fill_blocks(&mut self, next: u64) {
        let conn = self.conn;
        let n = conn.n;
        let base = (next % conn.slots as u64) as usize;
        let hist = &*self.hist;
        let blocks = &mut self.coupling[2 * n..(2 + BLOCK) * n];
        for i in 0..n {
            let row =
                &conn.del[conn.del_rows[2 * i + 1] as usize..conn.del_rows[2 * i + 2] as usize];
            let mut a = [T::ZERO; BLOCK];
            block_sum(row, hist, base, conn.slots, &mut a);
            for (b, v) in blocks[i..].iter_mut().step_by(n).zip(a) {
                *b = v;
            }
        }
    }

    #[inline(always)]
    fn step_impl<const UNIFORM: bool>(&mut self, m0: &M) -> bool {
        let n = self.conn.n;
        let cv = M::COUPLING_VAR;
        let dt = self.dt;
        let sq = self.sq;
        let h = dt * T::HALF;
        let g = self.g;
        let conn = self.conn;
        if self.noise_used == BLOCK {
            self.draw_noise(sq);
        }
        let used = self.noise_used;
        self.noise_used += 1;
        // Delayed part of c(t + dt) = c at step `next`, links with long delays: at the start
        // of each block, the sums for its BLOCK steps (they only read states at least BLOCK
        // steps old, all computed by now).
        let next = self.step + 1;
        let in_block = (self.step % BLOCK as u64) as usize;
        if in_block == 0 {
            self.fill_blocks(next);
        }
        // Buffers sliced to their lengths up front, so the region loops index without checks.
        let models = &self.models[..n];
        let xs = &mut self.x[..n];
        let (cd, rest) = self.coupling.split_at_mut(n);
        let (c, blocks) = rest.split_at_mut(n);
        let blocked = &blocks[in_block * n..(in_block + 1) * n];
        let (k1s, rest) = self.work.split_at_mut(n);
        let (ps, dwb) = rest.split_at_mut(n);
        let dws = &dwb[used * n..(used + 1) * n];
        let has_short = conn.has_short;

        // Predictor, with c(t) = G g_i (delayed part + instant part at x(t)).
        for i in 0..n {
            let m = if UNIFORM { m0 } else { &models[i] };
            c[i] = g * m.coupling_gain() * (cd[i] + conn.instant_input(i, xs, cv));
            let (x, dw) = (&xs[i], &dws[i]);
            let k1 = m.deriv(x, c[i]);
            // Loops over the variables, not `array::from_fn`: on a batch of lanes the closure
            // was left as a call per variable.
            let mut p = *x;
            for k in 0..N {
                p[k] = x[k] + dt * k1[k] + dw[k];
            }
            ps[i] = m.project(p);
            k1s[i] = k1;
        }

        // Corrector with c(t + dt): the predictor for links without delay, the stored history
        // for delayed ones (their sum `cd` is also the delayed part of the next step's c(t);
        // short delays are gathered here). Then x(t + dt) goes into its slot `base` of the
        // region's ring, and into the copy at `base + L` for the first BLOCK - 1 slots; no
        // delayed read of this step touches them (a delay d in 1..L reads slot
        // `(base - d) mod L`, and only the blocked sums, made before this loop, read copies).
        let base = (next % conn.slots as u64) as usize;
        let len = ring_len(conn.slots);
        let hist = &mut self.hist[..n * len];
        let mut finite = true;
        for i in 0..n {
            cd[i] = if has_short {
                let short =
                    &conn.del[conn.del_rows[2 * i] as usize..conn.del_rows[2 * i + 1] as usize];
                delayed_sum(short, hist, base, conn.slots) + blocked[i]
            } else {
                blocked[i]
            };
            let m = if UNIFORM { m0 } else { &models[i] };
            let c2 = g * m.coupling_gain() * (cd[i] + conn.instant_input(i, ps, cv));
            let k2 = m.deriv(&ps[i], c2);
            let (x, k1, dw) = (&xs[i], &k1s[i], &dws[i]);
            let mut xn = *x;
            for k in 0..N {
                xn[k] = x[k] + h * (k1[k] + k2[k]) + dw[k];
            }
            let xn = m.project(xn);
            for v in &xn {
                finite &= v.is_finite();
            }
            xs[i] = xn;
            // Read back from the stored state: indexing `xn` itself made the compiler spill it
            // with two 8-byte stores and reload it with one 16-byte load, a store-forwarding
            // stall of about 10 cycles per region.
            let v = xs[i][cv];
            if let Some(ring) = hist.get_mut(i * len..(i + 1) * len) {
                ring[base] = v;
                if base < BLOCK - 1 {
                    ring[base + conn.slots] = v;
                }
            }
        }
        self.step = next;
        finite
    }
}
