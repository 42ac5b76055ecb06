//! Spiking networks at full scale: QIF neurons (Montbrio et al. 2015; the sparse setup of
//! Woodman/Breyton et al. 2025) and Izhikevich neurons with adaptation (Chen and Campbell 2022),
//! all-to-all or Erdos-Renyi. The single-neuron updates are `nmm_core::spiking`; this module
//! owns the population: connectivity, spike delivery, parallel stepping and the observables.
//!
//! Determinism: neurons are grouped in fixed blocks of [`BLOCK`] (independent of the thread
//! count); within a block, spikes of the previous step are delivered in ascending source order,
//! and block results are combined in block order. The same seed therefore gives bit-identical
//! output on any number of threads.
//!
//! Delivery counts: all synapses carry the same weight, so a block counts, per neuron, the
//! spikes that reach it (one byte each, the `kernels` module) and the update adds count x
//! weight.
//!
//! Connectivity: the targets of source `j` inside block `b` are Bernoulli(p) draws from an
//! xoshiro256++ generator seeded by a hash of (seed, j, b). Stored connectivity keeps them as
//! a bit matrix for p >= 1/16 (N ceil(N/1024) 128 bytes: one bit per candidate pair, rows
//! padded to whole blocks; 1/(8p) bytes per synapse when N is a multiple of 1024) and as 16-bit
//! block-local indices below (2 bytes per synapse plus an 8-byte offset per source and block);
//! procedural connectivity regenerates each source's row of bits at each spike (no
//! per-synapse memory). All three give the same network for a seed. Autapses follow the same
//! Bernoulli rule (with p = 1, all-to-all, every neuron also excites itself, as in the
//! mean-field derivation).
//!
//! Memory per neuron: QIF 33 bytes (potential, excitability, jump accumulator, synaptic level,
//! spike count) plus, for the pulse synapse, 8 bytes per ring slot
//! (`(delay + width) / dt + 1` slots); Izhikevich 33 bytes (v, w, s, excitability, count).

pub(crate) mod kernels;

use crate::error::{Error, Result, bail};
use crate::progress::Progress;
use kernels::{Counts, EMPTY_ROW, MAX_SPIKES, Row, WORDS, add_rows, advance_block, prefetch};
use nmm_core::Model;
use nmm_core::models::Mpr;
use nmm_core::rng::{Gaussian, Rng, SeedableRng, Xoshiro256PlusPlus};
use nmm_core::spiking::{BlockInput, Izhikevich, Qif, lorentzian_draw, lorentzian_quantile};
use nmm_core::stim::{StimSpec, Stimulus};
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};

pub use kernels::BLOCK;

/// How the excitabilities `eta_j` are chosen.
///
/// ```
/// use nmm::network::Heterogeneity;
/// assert_ne!(Heterogeneity::Quantiles, Heterogeneity::Random);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heterogeneity {
    /// Deterministic Lorentzian quantiles (REFERENCE 1).
    Quantiles,
    /// Independent Lorentzian draws from the seed.
    Random,
}

/// Network connectivity.
///
/// ```
/// use nmm::network::Connectivity;
/// assert_eq!(Connectivity::AllToAll.p(), 1.0);
/// assert_eq!(Connectivity::Random { p: 0.6, procedural: true }.p(), 0.6);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Connectivity {
    /// Every neuron projects to every neuron (p = 1).
    AllToAll,
    /// Erdos-Renyi with connection probability `p`.
    Random {
        /// Connection probability.
        p: f64,
        /// Regenerate targets at each spike instead of storing them.
        procedural: bool,
    },
}

impl Connectivity {
    /// Connection probability.
    ///
    /// ```
    /// let c = nmm::network::Connectivity::Random { p: 0.25, procedural: false };
    /// assert_eq!(c.p(), 0.25);
    /// ```
    pub fn p(&self) -> f64 {
        match *self {
            Connectivity::AllToAll => 1.0,
            Connectivity::Random { p, .. } => p,
        }
    }
}

/// QIF synapse.
///
/// ```
/// use nmm::network::Synapse;
/// let pulse = Synapse::Pulse { delay: 0.01, width: 1e-3 };
/// assert_ne!(pulse, Synapse::Instant);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Synapse {
    /// Each emitted spike adds `w` to `v` of every non-refractory target at the next step.
    Instant,
    /// Each spike delivers a current pulse of unit area and width `width`, starting `delay`
    /// after the threshold crossing (time units of tau).
    Pulse {
        /// Delay from the threshold crossing (at least tau/V_peak, when the spike is emitted).
        delay: f64,
        /// Pulse width.
        width: f64,
    },
}

/// Settings shared by both neuron types.
///
/// ```
/// use nmm::network::{Common, Connectivity, Heterogeneity};
/// let c = Common {
///     n: 200,
///     dt: 1e-3,
///     t0: 0.0,
///     t_end: 1.0,
///     bin: 0.01,
///     conn: Connectivity::Random { p: 0.5, procedural: false },
///     normalise: false,
///     hetero: Heterogeneity::Quantiles,
///     stim: nmm_core::stim::StimSpec::None,
///     seed: 1,
///     stim_seed: 1,
///     record: 0,
///     threads: 1,
///     init: (0.1, -2.0),
/// };
/// assert_eq!(c.conn.p(), 0.5);
/// ```
#[derive(Clone, Debug)]
pub struct Common {
    /// Number of neurons.
    pub n: usize,
    /// Euler step (model time unit).
    pub dt: f64,
    /// Start time.
    pub t0: f64,
    /// End time.
    pub t_end: f64,
    /// Width of the bins of the population rate (model time unit); a multiple of `dt`.
    pub bin: f64,
    /// Connectivity.
    pub conn: Connectivity,
    /// Divide weights by p (`J/(pN)`) so the mean drive does not depend on p.
    pub normalise: bool,
    /// Excitabilities.
    pub hetero: Heterogeneity,
    /// External drive, common to all neurons.
    pub stim: StimSpec,
    /// Seed of the network's draws (connectivity, heterogeneity, initial state).
    pub seed: u64,
    /// Seed of the stimulus noise (stream 0 of it, as in `nmm mf`).
    pub stim_seed: u64,
    /// Record the spike times of neurons `0..record`.
    pub record: usize,
    /// Worker threads (0: rayon's default).
    pub threads: usize,
    /// Initial population state (r0, v0): membrane potentials are drawn from the Lorentzian
    /// of centre v0 and half-width pi tau r0 (the mean-field ansatz).
    pub init: (f64, f64),
}

/// QIF network parameters (REFERENCE 1-2).
///
/// ```
/// use nmm::network::{QifParams, Synapse};
/// // Montbrio et al. 2015: tau = 1, eta = -5, Delta = 1, J = 15, V_peak = -V_reset = 100.
/// let p = QifParams { tau: 1.0, eta_bar: -5.0, delta: 1.0, j: 15.0, v_peak: 100.0, v_reset: -100.0, synapse: Synapse::Instant };
/// assert!(p.v_peak > 0.0);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct QifParams {
    /// Membrane time constant.
    pub tau: f64,
    /// Centre of the excitabilities.
    pub eta_bar: f64,
    /// Half-width of the excitabilities.
    pub delta: f64,
    /// Coupling.
    pub j: f64,
    /// Threshold.
    pub v_peak: f64,
    /// Reset.
    pub v_reset: f64,
    /// Synapse.
    pub synapse: Synapse,
}

impl QifParams {
    /// The network of the mean field `mf` (its `tau`, `eta`, `Delta`, `J`), with threshold
    /// `v_peak`, reset `v_reset` and `synapse`.
    ///
    /// ```
    /// use nmm::network::{QifParams, Synapse};
    /// let p = QifParams::from_mpr(&nmm_core::models::Mpr::default(), 100.0, -100.0, Synapse::Instant);
    /// assert_eq!((p.eta_bar, p.j), (-5.0, 15.0));
    /// ```
    pub fn from_mpr(mf: &Mpr<f64>, v_peak: f64, v_reset: f64, synapse: Synapse) -> Self {
        Self {
            tau: mf.tau,
            eta_bar: mf.eta,
            delta: mf.delta,
            j: mf.j,
            v_peak,
            v_reset,
            synapse,
        }
    }
}

/// Izhikevich network parameters: the Chen-Campbell mean field's values plus threshold and reset.
///
/// ```
/// use nmm::network::IzhParams;
/// let p = IzhParams { mf: nmm_core::models::ChenCampbell::default(), v_peak: 200.0, v_reset: -200.0 };
/// assert_eq!(p.v_reset, -p.v_peak);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct IzhParams {
    /// Mean-field parameters (alpha, g, e_r, a, b, w_jump, s_jump, tau_s, delta, eta).
    pub mf: nmm_core::models::ChenCampbell<f64>,
    /// Threshold.
    pub v_peak: f64,
    /// Reset.
    pub v_reset: f64,
}

/// What a run produced: binned population observables and recorded spikes.
///
/// ```
/// use nmm::network::{Common, Connectivity, Heterogeneity};
/// let c = Common {
///     n: 200,
///     dt: 1e-3,
///     t0: 0.0,
///     t_end: 1.0,
///     bin: 0.01,
///     conn: Connectivity::Random { p: 0.5, procedural: false },
///     normalise: false,
///     hetero: Heterogeneity::Quantiles,
///     stim: nmm_core::stim::StimSpec::None,
///     seed: 1,
///     stim_seed: 1,
///     record: 0,
///     threads: 1,
///     init: (0.1, -2.0),
/// };
/// let p = nmm::network::QifParams { tau: 1.0, eta_bar: -5.0, delta: 1.0, j: 15.0, v_peak: 100.0, v_reset: -100.0, synapse: nmm::network::Synapse::Instant };
/// let out = nmm::network::run_qif(&c, &p, &nmm::progress::Silent)?;
/// assert_eq!((out.t.len(), out.r.len(), out.v.len()), (100, 100, 100));
/// # Ok::<(), nmm::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Output {
    /// Bin centres.
    pub t: Vec<f64>,
    /// Population rate in each bin (spikes per neuron per time unit).
    pub r: Vec<f64>,
    /// Mean membrane potential over non-refractory neurons, averaged over the bin.
    pub v: Vec<f64>,
    /// Mean adaptation (Izhikevich only).
    pub w: Vec<f64>,
    /// Mean synaptic gating (Izhikevich only).
    pub s: Vec<f64>,
    /// Drive at the bin centres.
    pub input: Vec<f64>,
    /// Times of recorded spikes.
    pub spike_t: Vec<f64>,
    /// Neuron of each recorded spike.
    pub spike_i: Vec<u32>,
    /// Synapses in the network (expected count for procedural connectivity).
    pub synapses: u64,
    /// Bytes held for connectivity.
    pub conn_bytes: u64,
    /// Bytes held for neuron state.
    pub state_bytes: u64,
    /// Total spikes emitted.
    pub spikes: u64,
    /// Total synaptic events delivered (spike x target).
    pub events: u64,
}

/// SplitMix64 finaliser: a well-mixed 64-bit hash.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Stored connectivity.
enum Stored {
    /// One bit per (source, target): row `src * nblocks + b` holds the targets of `src` in
    /// block `b`. `N ceil(N/1024) 128` bytes whatever p; chosen for p >= 1/16, where (for N a
    /// multiple of the block) it is no larger than 16-bit indices.
    Bits(Vec<Row>),
    /// 16-bit block-local target indices; `offsets[src * nblocks + b]..offsets[.. + 1]` are the
    /// targets of `src` in block `b`. Chosen for p < 1/16.
    Lists {
        offsets: Vec<u64>,
        targets: Vec<u16>,
    },
}

/// Connectivity graph in blocks.
pub(crate) struct Graph {
    n: usize,
    nblocks: usize,
    /// Bernoulli threshold on 32 random bits (p * 2^32).
    thresh: u64,
    all: bool,
    seed: u64,
    stored: Option<Stored>,
}

impl Graph {
    /// Builds the graph (stored connectivity is generated here, in parallel over sources).
    pub(crate) fn new(
        n: usize,
        conn: Connectivity,
        seed: u64,
        progress: &dyn Progress,
    ) -> Result<Self> {
        let nblocks = n.div_ceil(BLOCK);
        let p = conn.p();
        if !(p > 0.0 && p <= 1.0) {
            bail!("connection probability p must be in (0, 1], got {p}");
        }
        let need = stored_bytes(n, conn);
        if let Some(avail) = available_memory() {
            // Leave a fifth for the neurons, the outputs and everything else on the machine.
            let limit = avail / 5 * 4;
            if need > limit {
                return Err(Error::Resource {
                    needed: need,
                    limit,
                    message: format!(
                        "stored connectivity for N = {n} at p = {p} needs about {:.1} GB, more than \
                         the {:.1} GB of memory available; use --procedural (regenerates each \
                         source's targets at every spike, stores nothing) or a smaller --N",
                        need as f64 / 1e9,
                        limit as f64 / 1e9
                    ),
                });
            }
        }
        // Each candidate takes 32 random bits (two per draw): p is used to a precision of 2^-32.
        let thresh = (p * 2f64.powi(32)).round() as u64;
        let mut g = Graph {
            n,
            nblocks,
            thresh,
            all: thresh >= 1 << 32,
            seed: mix(seed ^ 0x636f_6e6e),
            stored: None,
        };
        let Connectivity::Random {
            procedural: false, ..
        } = conn
        else {
            return Ok(g);
        };
        if g.all {
            return Ok(g);
        }
        // Sources built so far, reported about every 1 % of them.
        let built = std::sync::atomic::AtomicU64::new(0);
        let every = (n as u64 / 100).max(1);
        let one_more = || {
            let k = built.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if k.is_multiple_of(every) {
                progress.set(k, n as u64);
            }
        };
        if 16.0 * p >= 1.0 {
            let mut rows = vec![EMPTY_ROW; n * nblocks];
            rows.par_chunks_mut(nblocks)
                .enumerate()
                .for_each(|(src, r)| {
                    for (b, row) in r.iter_mut().enumerate() {
                        g.generate_row(src, b, row);
                    }
                    one_more();
                });
            g.stored = Some(Stored::Bits(rows));
            return Ok(g);
        }
        // Per source: its targets block by block (ascending), and the count in each block.
        let lists: Vec<(Vec<u16>, Vec<u32>)> = (0..n)
            .into_par_iter()
            .map(|src| {
                let mut list = Vec::with_capacity((p * n as f64 * 1.1) as usize + 16);
                let mut counts = Vec::with_capacity(nblocks);
                let mut row = EMPTY_ROW;
                for b in 0..nblocks {
                    g.generate_row(src, b, &mut row);
                    let before = list.len();
                    for (w, &word) in row.iter().enumerate() {
                        let mut x = word;
                        while x != 0 {
                            list.push((w * 64 + x.trailing_zeros() as usize) as u16);
                            x &= x - 1;
                        }
                    }
                    counts.push((list.len() - before) as u32);
                }
                one_more();
                (list, counts)
            })
            .collect();
        let mut offsets = Vec::with_capacity(n * nblocks + 1);
        let mut targets = Vec::with_capacity(lists.iter().map(|(l, _)| l.len()).sum());
        offsets.push(0u64);
        for (list, counts) in lists {
            targets.extend_from_slice(&list);
            for c in counts {
                let last = *offsets.last().unwrap_or(&0);
                offsets.push(last + c as u64);
            }
        }
        g.stored = Some(Stored::Lists { offsets, targets });
        Ok(g)
    }

    fn block_len(&self, b: usize) -> usize {
        BLOCK.min(self.n - b * BLOCK)
    }

    /// The targets of `src` in block `b` (random connectivity) as a row of bits.
    ///
    /// Branch-free: candidate `i` is a target when its 32 random bits fall below the threshold
    /// (two candidates per 64-bit draw), and the outcome is written as a bit, so the 90 % of
    /// candidates that fail at p = 0.1 cost no mispredicted branch.
    fn generate_row(&self, src: usize, b: usize, row: &mut Row) {
        let len = self.block_len(b);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(mix(self.seed
            ^ mix(src as u64)
            ^ mix(b as u64 ^ 0x5eed_b10c_0000_0000)));
        let t = self.thresh;
        for (w, word) in row.iter_mut().enumerate() {
            let base = w * 64;
            if base >= len {
                *word = 0;
                continue;
            }
            let m = (len - base).min(64);
            let mut x = 0u64;
            for j in 0..m.div_ceil(2) {
                let r = rng.next_u64();
                let lo = u64::from((r & 0xffff_ffff) < t);
                let hi = u64::from((r >> 32) < t);
                x |= (lo | hi << 1) << (2 * j);
            }
            // An odd last candidate draws a pair; its unused second half is dropped.
            if m < 64 {
                x &= (1u64 << m) - 1;
            }
            *word = x;
        }
    }

    /// Adds one to `counts` for every target in block `b` of every source in `spikes` (at most
    /// [`MAX_SPIKES`], onto counts that are zero) and returns the number of targets reached.
    /// Random connectivity only (all-to-all is delivered as one jump of the whole block).
    pub(crate) fn count(&self, b: usize, spikes: &[u32], counts: &mut Counts) -> u64 {
        debug_assert!(spikes.len() <= MAX_SPIKES && !self.all);
        const CHUNK: usize = 16;
        let mut events = 0u64;
        match &self.stored {
            Some(Stored::Bits(rows)) => {
                // The same sources' rows in the next block are fetched from memory while this
                // block is counted and advanced (the matrix is far larger than the caches).
                if b + 1 < self.nblocks {
                    for &src in spikes {
                        prefetch(&rows[src as usize * self.nblocks + b + 1]);
                    }
                }
                let mut refs = [&EMPTY_ROW; CHUNK];
                for chunk in spikes.chunks(CHUNK) {
                    for (r, &src) in refs.iter_mut().zip(chunk) {
                        let row = &rows[src as usize * self.nblocks + b];
                        events += row.iter().map(|w| u64::from(w.count_ones())).sum::<u64>();
                        *r = row;
                    }
                    add_rows(&refs[..chunk.len()], counts);
                }
            }
            Some(Stored::Lists { offsets, targets }) => {
                for &src in spikes {
                    let k = src as usize * self.nblocks + b;
                    let list = &targets[offsets[k] as usize..offsets[k + 1] as usize];
                    // The mask proves the index in bounds of the fixed-size block array.
                    for &i in list {
                        let c = &mut counts.0[i as usize & (BLOCK - 1)];
                        *c = c.wrapping_add(1);
                    }
                    events += list.len() as u64;
                }
            }
            None => {
                let mut rows = [EMPTY_ROW; CHUNK];
                for chunk in spikes.chunks(CHUNK) {
                    for (row, &src) in rows.iter_mut().zip(chunk) {
                        self.generate_row(src as usize, b, row);
                        events += row.iter().map(|w| u64::from(w.count_ones())).sum::<u64>();
                    }
                    let mut refs = [&EMPTY_ROW; CHUNK];
                    for (r, row) in refs.iter_mut().zip(&rows) {
                        *r = row;
                    }
                    add_rows(&refs[..chunk.len()], counts);
                }
            }
        }
        events
    }

    /// True for all-to-all (delivery is a scalar).
    pub(crate) fn all_to_all(&self) -> bool {
        self.all
    }

    /// Synapses stored, or expected for procedural connectivity.
    pub(crate) fn synapses(&self, p: f64) -> u64 {
        match &self.stored {
            Some(Stored::Bits(rows)) => rows
                .iter()
                .flatten()
                .map(|w| u64::from(w.count_ones()))
                .sum(),
            Some(Stored::Lists { targets, .. }) => targets.len() as u64,
            None => (p * (self.n as f64) * (self.n as f64)) as u64,
        }
    }

    /// Bytes held for connectivity.
    pub(crate) fn bytes(&self) -> u64 {
        match &self.stored {
            Some(Stored::Bits(rows)) => (rows.len() * WORDS * 8) as u64,
            Some(Stored::Lists { offsets, targets }) => {
                (offsets.len() * 8 + targets.len() * 2) as u64
            }
            None => 0,
        }
    }
}

/// Per-step sums a block reports.
#[derive(Clone, Copy, Debug, Default)]
struct Sums {
    v: f64,
    w: f64,
    s: f64,
    active: usize,
    events: u64,
}

/// A block of neurons of one type.
trait Pop: Send {
    /// The block's spike counts, to which delivery adds (see [`Graph::count`]).
    fn counts(&mut self) -> &mut Counts;
    /// Moves the counts into the neurons' state and zeroes them (before more than
    /// [`MAX_SPIKES`] spikes have been counted in one step).
    fn absorb(&mut self, step: usize);
    /// All-to-all: `spikes` spikes reach every neuron of the block.
    fn deliver_all(&mut self, spikes: usize, step: usize);
    /// Neurons in the block.
    fn len(&self) -> usize;
    /// Takes the counts and advances one Euler step with external input `input`; pushes
    /// emitted spikes.
    fn advance(&mut self, input: f64, step: usize, spikes: &mut Vec<u32>) -> Sums;
}

/// A block with its spike buffer and sums, stepped in parallel.
struct Slot<P> {
    pop: P,
    spikes: Vec<u32>,
    sums: Sums,
}

/// A thread's contiguous range of blocks: index of its first block, and the blocks.
type Group<'a, P> = Mutex<(usize, &'a mut [Slot<P>])>;

/// Time grid of a run: steps and bins.
fn grid(c: &Common) -> Result<(usize, usize)> {
    let Some(steps) = nmm_core::integrate::step_count(c.t0, c.t_end, c.dt) else {
        bail!(
            "need t0 < t-end and dt > 0, all finite (got t0 = {}, t-end = {}, dt = {})",
            c.t0,
            c.t_end,
            c.dt
        );
    };
    let Some(per_bin) = crate::stats::whole_multiple(c.bin, c.dt) else {
        bail!(
            "the rate bin ({}) must be a whole multiple of dt ({})",
            c.bin,
            c.dt
        );
    };
    if c.n == 0 || c.n > u32::MAX as usize {
        bail!("N must be between 1 and {}", u32::MAX);
    }
    if steps < per_bin {
        bail!(
            "t-end - t0 = {} is shorter than one rate bin (bin = {}): the run would have no \
             output; run longer or use a smaller bin",
            c.t_end - c.t0,
            c.bin
        );
    }
    Ok((steps, per_bin))
}

/// Accumulates the per-step results into bins and recorded spikes (runs on one thread).
struct Recorder<'a> {
    c: &'a Common,
    per_bin: usize,
    out: Output,
    bin: (u64, f64, f64, f64, f64),
    /// Steps of the current bin with at least one active neuron.
    bin_active_steps: usize,
}

impl Recorder<'_> {
    /// Merges the blocks' results of step `k` (in block order) into `prev` and the bins.
    fn step<'s, P: 's>(
        &mut self,
        k: usize,
        input: f64,
        slots: impl Iterator<Item = &'s Slot<P>>,
        prev: &mut Vec<u32>,
    ) -> Result<()> {
        let c = self.c;
        prev.clear();
        let mut sums = Sums::default();
        for s in slots {
            prev.extend_from_slice(&s.spikes);
            sums.v += s.sums.v;
            sums.w += s.sums.w;
            sums.s += s.sums.s;
            sums.active += s.sums.active;
            self.out.events += s.sums.events;
        }
        let t = c.t0 + k as f64 * c.dt;
        for &i in prev.iter().take_while(|&&i| (i as usize) < c.record) {
            self.out.spike_t.push(t + c.dt);
            self.out.spike_i.push(i);
        }
        let nf = c.n as f64;
        let b = &mut self.bin;
        b.0 += prev.len() as u64;
        if sums.active > 0 {
            b.1 += sums.v / sums.active as f64;
            self.bin_active_steps += 1;
        }
        if !(sums.v.is_finite() && sums.w.is_finite() && sums.s.is_finite()) {
            bail!("the network state became non-finite near t = {t}; reduce dt");
        }
        b.2 += sums.w / nf;
        b.3 += sums.s / nf;
        b.4 += input;
        if (k + 1).is_multiple_of(self.per_bin) {
            let pb = self.per_bin as f64;
            let bin_t = pb * c.dt;
            let m = self.out.t.len() as f64;
            self.out.t.push(c.t0 + (m + 0.5) * bin_t);
            self.out.r.push(b.0 as f64 / (nf * bin_t));
            // Mean over the steps with active neurons (NaN if all were held the whole bin).
            self.out.v.push(if self.bin_active_steps > 0 {
                b.1 / self.bin_active_steps as f64
            } else {
                f64::NAN
            });
            self.bin_active_steps = 0;
            self.out.w.push(b.2 / pb);
            self.out.s.push(b.3 / pb);
            self.out.input.push(b.4 / pb);
            self.out.spikes += b.0;
            *b = (0, 0.0, 0.0, 0.0, 0.0);
        }
        Ok(())
    }
}

/// Advances a contiguous group of blocks (`first` is the index of the first) by one step.
///
/// Block by block: the block counts the previous step's spikes that reach each of its neurons
/// (integers: the result does not depend on the order), then advances. The block's counters
/// (1 KB at 1024 neurons) and then its voltages stay in L1 from the first delivery to the end
/// of the update. A step with more than [`MAX_SPIKES`] spikes is counted in chunks of that
/// many, in spike order, each moved into the neurons' state before the next.
fn work<P: Pop>(
    graph: &Graph,
    first: usize,
    group: &mut [Slot<P>],
    prev: &[u32],
    input: f64,
    k: usize,
) {
    for (o, s) in group.iter_mut().enumerate() {
        s.spikes.clear();
        let mut events = 0;
        if graph.all_to_all() {
            if !prev.is_empty() {
                s.pop.deliver_all(prev.len(), k);
            }
            events = prev.len() as u64 * s.pop.len() as u64;
        } else {
            for (c, chunk) in prev.chunks(MAX_SPIKES).enumerate() {
                if c > 0 {
                    s.pop.absorb(k);
                }
                events += graph.count(first + o, chunk, s.pop.counts());
            }
        }
        s.sums = s.pop.advance(input, k, &mut s.spikes);
        s.sums.events = events;
    }
}

/// A barrier that spins (then yields) instead of sleeping: a step at N = 10^4 takes tens of
/// microseconds, and waking threads through the OS (std's Barrier, or rayon's fork-join per
/// step) costs about as much again. Written here because it is a dozen lines and needs no
/// dependency.
struct SpinBarrier {
    n: usize,
    count: AtomicUsize,
    generation: AtomicUsize,
    /// Set when a participant panicked: waits return at once so nobody spins forever.
    poisoned: AtomicBool,
}

/// Poisons the barrier if its thread unwinds from a panic.
struct PoisonOnPanic<'a>(&'a SpinBarrier);

impl Drop for PoisonOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.poisoned.store(true, Ordering::Release);
        }
    }
}

impl SpinBarrier {
    fn new(n: usize) -> Self {
        Self {
            n,
            count: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            poisoned: AtomicBool::new(false),
        }
    }

    fn poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    fn wait(&self) {
        let g = self.generation.load(Ordering::Acquire);
        if self.count.fetch_add(1, Ordering::AcqRel) + 1 == self.n {
            self.count.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Release);
            return;
        }
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == g {
            if self.poisoned() {
                return;
            }
            if spins < 20_000 {
                std::hint::spin_loop();
                spins += 1;
            } else {
                std::thread::yield_now();
            }
        }
    }
}

/// Runs blocks of any neuron type on the common time grid and collects the observables.
///
/// With several threads, each owns a fixed contiguous range of blocks for the whole run and
/// the threads meet at a spin barrier twice per step; thread 0 evaluates the drive and merges
/// the blocks' spikes in block order, so results do not depend on the thread count.
fn drive<P: Pop>(
    c: &Common,
    graph: &Graph,
    pops: Vec<P>,
    progress: &dyn Progress,
) -> Result<Output> {
    let (steps, per_bin) = grid(c)?;
    progress.message("time steps");
    let nblocks = pops.len();
    let mut slots: Vec<Slot<P>> = pops
        .into_iter()
        .map(|pop| Slot {
            pop,
            spikes: Vec::new(),
            sums: Sums::default(),
        })
        .collect();
    let mut stim = Stimulus::<f64>::new(c.stim, c.stim_seed, c.t0);
    let mut rec = Recorder {
        c,
        per_bin,
        out: Output::default(),
        bin: (0, 0.0, 0.0, 0.0, 0.0),
        bin_active_steps: 0,
    };
    let threads = match c.threads {
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        t => t,
    }
    .min(nblocks)
    .max(1);
    let report = |k: usize| {
        if (k + 1).is_multiple_of(per_bin) {
            progress.set((k + 1) as u64, steps as u64);
        }
    };
    if threads == 1 {
        let mut prev: Vec<u32> = Vec::new();
        for k in 0..steps {
            let input = stim.value(c.t0 + k as f64 * c.dt);
            work(graph, 0, &mut slots, &prev, input, k);
            rec.step(k, input, slots.iter(), &mut prev)?;
            report(k);
        }
    } else {
        // Contiguous block ranges per thread, as even as possible.
        let mut groups: Vec<Group<P>> = Vec::with_capacity(threads);
        let mut rest: &mut [Slot<P>] = &mut slots;
        let mut first = 0;
        for g in 0..threads {
            let take = (nblocks - first) / (threads - g);
            let (head, tail) = rest.split_at_mut(take);
            groups.push(Mutex::new((first, head)));
            first += take;
            rest = tail;
        }
        let prev = RwLock::new(Vec::<u32>::new());
        let input_bits = AtomicU64::new(0);
        let stop = AtomicBool::new(false);
        let barrier = SpinBarrier::new(threads);
        let step_group = |g: usize, k: usize| {
            let input = f64::from_bits(input_bits.load(Ordering::Acquire));
            let prev = prev.read().unwrap_or_else(|e| e.into_inner());
            let mut guard = groups[g].lock().unwrap_or_else(|e| e.into_inner());
            let (first, group) = &mut *guard;
            work(graph, *first, group, &prev, input, k);
        };
        let result = std::thread::scope(|scope| -> Result<()> {
            for g in 1..threads {
                let (barrier, stop, step_group) = (&barrier, &stop, &step_group);
                scope.spawn(move || {
                    let _guard = PoisonOnPanic(barrier);
                    for k in 0..steps {
                        barrier.wait(); // inputs of step k are ready
                        if stop.load(Ordering::Acquire) || barrier.poisoned() {
                            return;
                        }
                        step_group(g, k);
                        barrier.wait(); // step k is done
                    }
                });
            }
            let _guard = PoisonOnPanic(&barrier);
            let mut outcome = Ok(());
            for k in 0..steps {
                input_bits.store(
                    stim.value(c.t0 + k as f64 * c.dt).to_bits(),
                    Ordering::Release,
                );
                barrier.wait();
                step_group(0, k);
                barrier.wait();
                if barrier.poisoned() {
                    bail!("a worker thread failed at step {k}");
                }
                let input = f64::from_bits(input_bits.load(Ordering::Acquire));
                let guards: Vec<_> = groups
                    .iter()
                    .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()))
                    .collect();
                let mut prev = prev.write().unwrap_or_else(|e| e.into_inner());
                outcome = rec.step(k, input, guards.iter().flat_map(|g| g.1.iter()), &mut prev);
                drop(guards);
                report(k);
                if outcome.is_err() && k + 1 < steps {
                    stop.store(true, Ordering::Release);
                    barrier.wait(); // release the workers, which see `stop` and return
                    break;
                }
            }
            outcome
        });
        result?;
    }
    let mut out = rec.out;
    out.synapses = graph.synapses(c.conn.p());
    out.conn_bytes = graph.bytes();
    Ok(out)
}

/// Uniform draw in the open interval (0, 1).
fn uniform_open(rng: &mut Xoshiro256PlusPlus) -> f64 {
    ((rng.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
}

/// Excitabilities: quantiles in index order, or draws from stream 2 of the seed.
fn etas(c: &Common, eta_bar: f64, delta: f64) -> Vec<f64> {
    match c.hetero {
        Heterogeneity::Quantiles => (0..c.n)
            .map(|j| lorentzian_quantile(eta_bar, delta, j, c.n))
            .collect(),
        Heterogeneity::Random => {
            let mut g = Gaussian::<f64>::new(c.seed, 2);
            (0..c.n)
                .map(|_| lorentzian_draw(eta_bar, delta, uniform_open(g.rng_mut())))
                .collect()
        }
    }
}

/// Initial potentials from stream 3 of the seed: Lorentzian with centre v0 and half-width
/// `width`, kept inside [v_reset, v_peak).
fn initial_v(c: &Common, width: f64, v_reset: f64, v_peak: f64) -> Vec<f64> {
    let mut g = Gaussian::<f64>::new(c.seed, 3);
    (0..c.n)
        .map(|_| {
            lorentzian_draw(c.init.1, width, uniform_open(g.rng_mut()))
                .clamp(v_reset, v_peak - 1e-9)
        })
        .collect()
}

fn weight_scale(c: &Common) -> f64 {
    if c.normalise { 1.0 / c.conn.p() } else { 1.0 }
}

/// A block of QIF neurons. Neurons in their refractory hold are listed in `refr` with their
/// remaining hold steps and parked at `V_reset` in `v` (their potential is not observed while
/// held, and parking keeps the branch-free update of the whole block from crossing `V_peak`).
struct QifBlock {
    neuron: Qif<f64>,
    v: Vec<f64>,
    eta: Vec<f64>,
    /// Spikes counted for each neuron this step (fixed block size; the first `len` used).
    counts: Box<Counts>,
    /// Jumps moved out of `counts` this step (only when a step has more than
    /// [`MAX_SPIKES`] spikes; `kicked` says so).
    kick: Box<[f64; BLOCK]>,
    kicked: bool,
    kick_all: f64,
    /// Pulse synapse: per-neuron current level and ring of level changes (slot-major).
    level: Vec<f64>,
    ring: Vec<f64>,
    level_all: f64,
    ring_all: Vec<f64>,
    slots: usize,
    onset: usize,
    width_steps: usize,
    pulse: bool,
    all: bool,
    w: f64,
    start: u32,
    /// (local index, remaining hold steps) of the neurons in their refractory hold.
    refr: Vec<(u32, u32)>,
    /// Neurons that reached `V_peak` in this step (scratch).
    crossed: Vec<u32>,
}

impl Pop for QifBlock {
    fn counts(&mut self) -> &mut Counts {
        &mut self.counts
    }

    fn absorb(&mut self, step: usize) {
        let len = self.v.len();
        let (w, counts) = (self.w, &mut self.counts.0[..len]);
        if self.pulse {
            let on = (step + self.onset) % self.slots * len;
            let off = (step + self.onset + self.width_steps) % self.slots * len;
            for (i, c) in counts.iter_mut().enumerate() {
                let d = f64::from(std::mem::take(c)) * w;
                self.ring[on + i] += d;
                self.ring[off + i] -= d;
            }
        } else {
            for (k, c) in self.kick[..len].iter_mut().zip(counts) {
                *k += f64::from(std::mem::take(c)) * w;
            }
            self.kicked = true;
        }
    }

    fn deliver_all(&mut self, spikes: usize, step: usize) {
        let d = spikes as f64 * self.w;
        if self.pulse {
            self.ring_all[(step + self.onset) % self.slots] += d;
            self.ring_all[(step + self.onset + self.width_steps) % self.slots] -= d;
        } else {
            self.kick_all += d;
        }
    }

    fn len(&self) -> usize {
        self.v.len()
    }

    fn advance(&mut self, input: f64, step: usize, spikes: &mut Vec<u32>) -> Sums {
        let len = self.v.len();
        let kick_all = std::mem::take(&mut self.kick_all);
        if self.pulse && !self.all {
            // The counted spikes start their pulses (before this step's slot is read: a pulse
            // may start at once).
            self.absorb(step);
        }
        if self.pulse {
            let slot = step % self.slots;
            self.level_all += std::mem::take(&mut self.ring_all[slot]);
            if !self.all {
                let ring = &mut self.ring[slot * len..(slot + 1) * len];
                for (l, d) in self.level.iter_mut().zip(ring.iter_mut()) {
                    *l += std::mem::take(d);
                }
            }
        }
        let base = input + self.level_all;
        // Every neuron in one branch-free (vectorised) pass ...
        let level: &[f64] = if self.pulse && !self.all {
            &self.level
        } else {
            &[]
        };
        let kick: &mut [f64] = if std::mem::take(&mut self.kicked) {
            &mut self.kick[..len]
        } else {
            &mut []
        };
        let mut sum = advance_block(
            &self.neuron,
            &mut self.v,
            &self.eta,
            BlockInput {
                counts: &mut self.counts.0[..len],
                w: self.w,
                kick,
                kick_all,
                current: base,
                level,
            },
            &mut self.crossed,
        );
        // ... then the few held neurons are put back (their stepped value leaves the sum),
        // count down, emit half-way, and are released at V_reset ...
        let (v_reset, emit_at) = (self.neuron.v_reset, self.neuron.emit_at);
        let mut j = 0;
        while j < self.refr.len() {
            let (i, h) = &mut self.refr[j];
            let i = *i as usize;
            sum -= self.v[i];
            self.v[i] = v_reset;
            *h -= 1;
            if *h == emit_at {
                spikes.push(self.start + i as u32);
            }
            if *h == 0 {
                sum += v_reset; // released: active again, at V_reset
                self.refr.swap_remove(j);
            } else {
                j += 1;
            }
        }
        // ... and the neurons that crossed V_peak start their hold.
        // (A held neuron whose stepped value reached V_peak, possible with V_reset close to
        // V_peak or a large step, is parked back at V_reset above and is not a crossing.)
        for &i in &self.crossed {
            let v = &mut self.v[i as usize];
            if *v < self.neuron.v_peak {
                continue;
            }
            sum -= *v;
            *v = v_reset;
            self.refr.push((i, self.neuron.hold_steps));
        }
        let sums = Sums {
            v: sum,
            active: len - self.refr.len(),
            ..Sums::default()
        };
        spikes.sort_unstable();
        sums
    }
}

/// The network's connectivity, with its memory on the progress display and the sources built
/// so far as the progress while it is built (the CLI prints the estimate before).
fn build_graph(c: &Common, progress: &dyn Progress) -> Result<Graph> {
    let bytes = stored_bytes(c.n, c.conn);
    if bytes > 0 {
        progress.message(&format!(
            "building connectivity ({:.1} MB): sources",
            bytes as f64 / 1e6
        ));
    }
    let graph = with_threads(c.threads, || Graph::new(c.n, c.conn, c.seed, progress))?;
    progress.message("");
    Ok(graph)
}

/// Simulates a QIF network.
///
/// ```
/// use nmm::network::{Common, Connectivity, Heterogeneity};
/// let c = Common {
///     n: 200,
///     dt: 1e-3,
///     t0: 0.0,
///     t_end: 1.0,
///     bin: 0.01,
///     conn: Connectivity::Random { p: 0.5, procedural: false },
///     normalise: false,
///     hetero: Heterogeneity::Quantiles,
///     stim: nmm_core::stim::StimSpec::None,
///     seed: 1,
///     stim_seed: 1,
///     record: 0,
///     threads: 1,
///     init: (0.1, -2.0),
/// };
/// let p = nmm::network::QifParams { tau: 1.0, eta_bar: -5.0, delta: 1.0, j: 15.0, v_peak: 100.0, v_reset: -100.0, synapse: nmm::network::Synapse::Instant };
/// let out = nmm::network::run_qif(&c, &p, &nmm::progress::Silent)?;
/// // The same seed gives the same network and the same spikes.
/// let again = nmm::network::run_qif(&c, &p, &nmm::progress::Silent)?;
/// assert_eq!(out.r, again.r);
/// assert!(out.r.iter().all(|r| r.is_finite() && *r >= 0.0));
/// # Ok::<(), nmm::Error>(())
/// ```
pub fn run_qif(c: &Common, p: &QifParams, progress: &dyn Progress) -> Result<Output> {
    grid(c)?;
    let finite = [p.tau, p.delta, p.eta_bar, p.j, p.v_peak, p.v_reset]
        .iter()
        .all(|x| x.is_finite());
    if !(finite && p.tau > 0.0 && p.delta >= 0.0 && p.v_peak > 0.0 && p.v_reset < p.v_peak - 1e-9) {
        bail!("need finite parameters with tau > 0, delta >= 0, V_peak > 0 and V_reset < V_peak");
    }
    let neuron = Qif::<f64>::new(p.tau, p.v_peak, p.v_reset, c.dt);
    let emit_delay = (neuron.hold_steps - neuron.emit_at) as usize;
    let (pulse, onset, width_steps, slots) = match p.synapse {
        Synapse::Instant => (false, 0, 0, 1),
        Synapse::Pulse { delay, width } => {
            let Some(ws) = crate::stats::whole_multiple(width, c.dt) else {
                bail!(
                    "the pulse width ({width}) must be a whole multiple of dt ({})",
                    c.dt
                );
            };
            let Some(d) = crate::stats::whole_multiple(delay, c.dt) else {
                bail!(
                    "the pulse delay ({delay}) must be a whole multiple of dt ({})",
                    c.dt
                );
            };
            if d < emit_delay {
                bail!(
                    "the pulse delay ({delay}) must be at least {} (the hold before the spike is emitted, tau/V_peak rounded to whole steps)",
                    emit_delay as f64 * c.dt
                );
            }
            let onset = d - emit_delay;
            let slots = onset + ws + 1;
            // The ring holds `slots` current changes per neuron.
            if (slots as f64) * (c.n.min(BLOCK) as f64) * (c.n.div_ceil(BLOCK) as f64) * 8.0 > 8e9 {
                bail!(
                    "pulse delay + width of {} steps would need a ring of more than 8 GB; use a larger dt",
                    onset + ws
                );
            }
            (true, onset, ws, slots)
        }
    };
    let graph = build_graph(c, progress)?;
    let nf = c.n as f64;
    let w = weight_scale(c)
        * match p.synapse {
            Synapse::Instant => p.j / nf,
            Synapse::Pulse { width, .. } => p.j * p.tau / (nf * width),
        };
    let eta = etas(c, p.eta_bar, p.delta);
    let v0 = initial_v(
        c,
        std::f64::consts::PI * p.tau * c.init.0,
        p.v_reset,
        p.v_peak,
    );
    let all = graph.all_to_all();
    let pops: Vec<QifBlock> = (0..c.n.div_ceil(BLOCK))
        .map(|b| {
            let r = b * BLOCK..((b + 1) * BLOCK).min(c.n);
            let len = r.len();
            QifBlock {
                neuron,
                v: v0[r.clone()].to_vec(),
                eta: eta[r.clone()].to_vec(),
                counts: Box::default(),
                kick: Box::new([0.0; BLOCK]),
                kicked: false,
                kick_all: 0.0,
                level: vec![0.0; len],
                ring: vec![0.0; if pulse && !all { len * slots } else { 0 }],
                level_all: 0.0,
                ring_all: vec![0.0; slots],
                slots,
                onset,
                width_steps,
                pulse,
                all,
                w,
                start: r.start as u32,
                refr: Vec::new(),
                crossed: Vec::new(),
            }
        })
        .collect();
    let state_bytes = pops
        .iter()
        .map(|b| {
            ((b.v.len() + b.eta.len() + b.level.len() + b.ring.len() + BLOCK) * 8 + BLOCK) as u64
        })
        .sum();
    let mut out = drive(c, &graph, pops, progress)?;
    out.state_bytes = state_bytes;
    Ok(out)
}

struct IzhBlock {
    neuron: Izhikevich<f64>,
    v: Vec<f64>,
    w: Vec<f64>,
    s: Vec<f64>,
    eta: Vec<f64>,
    /// Spikes counted for each neuron this step.
    counts: Box<Counts>,
    kick_all: f64,
    all: bool,
    jump: f64,
    start: u32,
}

impl Pop for IzhBlock {
    fn counts(&mut self) -> &mut Counts {
        &mut self.counts
    }

    fn absorb(&mut self, _step: usize) {
        let jump = self.jump;
        for (s, c) in self.s.iter_mut().zip(self.counts.0.iter_mut()) {
            *s += f64::from(std::mem::take(c)) * jump;
        }
    }

    fn deliver_all(&mut self, spikes: usize, _step: usize) {
        self.kick_all += spikes as f64 * self.jump;
    }

    fn len(&self) -> usize {
        self.v.len()
    }

    fn advance(&mut self, input: f64, step: usize, spikes: &mut Vec<u32>) -> Sums {
        if !self.all {
            self.absorb(step);
        }
        let mut sums = Sums::default();
        let kick = std::mem::take(&mut self.kick_all);
        for i in 0..self.v.len() {
            self.s[i] += kick;
            if self.neuron.step(
                &mut self.v[i],
                &mut self.w[i],
                &mut self.s[i],
                self.eta[i],
                input,
            ) {
                spikes.push(self.start + i as u32);
            }
            sums.v += self.v[i];
            sums.w += self.w[i];
            sums.s += self.s[i];
        }
        sums.active = self.v.len();
        sums
    }
}

/// Simulates an Izhikevich network with adaptation.
///
/// ```
/// use nmm::network::{Common, Connectivity, Heterogeneity};
/// let c = Common {
///     n: 200,
///     dt: 1e-3,
///     t0: 0.0,
///     t_end: 5.0,
///     bin: 0.1,
///     conn: Connectivity::Random { p: 0.5, procedural: false },
///     normalise: false,
///     hetero: Heterogeneity::Quantiles,
///     stim: nmm_core::stim::StimSpec::None,
///     seed: 1,
///     stim_seed: 1,
///     record: 0,
///     threads: 1,
///     init: (0.0, 0.0),
/// };
/// let p = nmm::network::IzhParams { mf: nmm_core::models::ChenCampbell::default(), v_peak: 200.0, v_reset: -200.0 };
/// let out = nmm::network::run_izh(&c, &p, &nmm::progress::Silent)?;
/// assert_eq!(out.w.len(), out.t.len());
/// # Ok::<(), nmm::Error>(())
/// ```
pub fn run_izh(c: &Common, p: &IzhParams, progress: &dyn Progress) -> Result<Output> {
    grid(c)?;
    if !(p.v_peak.is_finite() && p.v_reset.is_finite() && p.v_reset < p.v_peak - 1e-9) {
        bail!("need finite v_peak and v_reset with v_reset < v_peak");
    }
    p.mf.validate().map_err(|e| crate::error::input!("{e}"))?;
    let neuron = Izhikevich::from_mean_field(&p.mf, p.v_peak, p.v_reset, c.dt);
    let graph = build_graph(c, progress)?;
    let jump = weight_scale(c) * p.mf.s_jump / c.n as f64;
    let eta = etas(c, p.mf.eta, p.mf.delta);
    let v0 = initial_v(c, std::f64::consts::PI * c.init.0, p.v_reset, p.v_peak);
    let all = graph.all_to_all();
    let pops: Vec<IzhBlock> = (0..c.n.div_ceil(BLOCK))
        .map(|b| {
            let r = b * BLOCK..((b + 1) * BLOCK).min(c.n);
            let len = r.len();
            IzhBlock {
                neuron,
                v: v0[r.clone()].to_vec(),
                w: vec![0.0; len],
                s: vec![0.0; len],
                eta: eta[r.clone()].to_vec(),
                counts: Box::default(),
                kick_all: 0.0,
                all,
                jump,
                start: r.start as u32,
            }
        })
        .collect();
    let state_bytes = pops.iter().map(|b| (b.v.len() * 32 + BLOCK) as u64).sum();
    let mut out = drive(c, &graph, pops, progress)?;
    out.state_bytes = state_bytes;
    Ok(out)
}

/// Runs `f` (which may use rayon) on `threads` workers (0: rayon's global pool).
fn with_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    if threads == 0 {
        return f();
    }
    match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
        Ok(pool) => pool.install(f),
        Err(_) => f(),
    }
}

/// Bytes that a network will hold for its connectivity (and at most briefly twice that for 16-bit lists
/// while they are gathered) for `n` neurons with connectivity `conn`; 0 when nothing is
/// stored (all-to-all, procedural).
///
/// ```
/// use nmm::network::{Connectivity, stored_bytes};
/// let bits = stored_bytes(10_000, Connectivity::Random { p: 0.6, procedural: false });
/// assert_eq!(bits, 10_000 * 10 * 128); // N ceil(N / 1024) 128 bytes
/// assert_eq!(stored_bytes(10_000, Connectivity::AllToAll), 0);
/// ```
pub fn stored_bytes(n: usize, conn: Connectivity) -> u64 {
    let (n64, nblocks) = (n as u64, n.div_ceil(BLOCK) as u64);
    match conn {
        Connectivity::Random {
            p,
            procedural: false,
        } if p < 1.0 => {
            if 16.0 * p >= 1.0 {
                n64 * nblocks * (WORDS as u64) * 8
            } else {
                let synapses = (p * n as f64 * n as f64) as u64;
                2 * (synapses * 2 + (n64 * nblocks + 1) * 8)
            }
        }
        _ => 0,
    }
}

/// Memory the operating system says is available (Linux `MemAvailable`), or less when this
/// process runs under a tighter cgroup limit (a Slurm job's `--mem`): the cgroup v2
/// `memory.max` less `memory.current`, if it says.
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    let host = kb * 1024;
    // This process's cgroup (v2: the line `0::/PATH` of /proc/self/cgroup), else the root.
    let group = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("0::").map(|p| p.trim().to_string()))
        })
        .unwrap_or_default();
    let read = |f: &str| -> Option<u64> {
        std::fs::read_to_string(format!("/sys/fs/cgroup{group}/{f}"))
            .or_else(|_| std::fs::read_to_string(format!("/sys/fs/cgroup/{f}")))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let cgroup = match (read("memory.max"), read("memory.current")) {
        (Some(max), Some(cur)) => Some(max.saturating_sub(cur)),
        _ => None,
    };
    Some(cgroup.map_or(host, |c| c.min(host)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The block update (branch-free pass plus refractory bookkeeping) equals `Qif::step` on
    /// every neuron, bit for bit: same spikes at the same steps, same potentials whenever a
    /// neuron is not held; only the population sum may differ by rounding. Run with an even and
    /// an odd hold, with and without per-neuron synaptic levels and a population-wide jump;
    /// jumps are spike counts times w, on odd steps plus per-neuron kicks (so the AVX2 kernel,
    /// which takes counts only, and the generic code are both checked).
    #[test]
    fn block_update_equals_scalar_qif_step() {
        for (dt, with_level) in [(1e-3, false), (3e-4, true)] {
            let n = 700; // not a multiple of the 4 lanes
            let neuron = Qif::<f64>::new(1.0, 100.0, -100.0, dt);
            let eta: Vec<f64> = (0..n)
                .map(|j| lorentzian_quantile(-2.0, 1.0, j, n))
                .collect();
            let mut g = Gaussian::<f64>::new(5, 0);
            let v0: Vec<f64> = (0..n)
                .map(|_| (g.next() * 3.0).clamp(-100.0, 99.0))
                .collect();
            let level: Vec<f64> = (0..n)
                .map(|_| if with_level { 0.5 * g.next() } else { 0.0 })
                .collect();
            let mut block = QifBlock {
                neuron,
                v: v0.clone(),
                eta: eta.clone(),
                counts: Box::default(),
                kick: Box::new([0.0; BLOCK]),
                kicked: false,
                kick_all: 0.0,
                level: level.clone(),
                ring: vec![0.0; n],
                level_all: 0.0,
                ring_all: vec![0.0; 1],
                slots: 1,
                onset: 0,
                width_steps: 0,
                pulse: with_level,
                all: false,
                w: 0.037,
                start: 0,
                refr: Vec::new(),
                crossed: Vec::new(),
            };
            let (mut v, mut hold) = (v0, vec![0u32; n]);
            let mut total_spikes = 0;
            for step in 0..5000 {
                // Counts are jumps with the instant synapse (the pulse one turns them into ring
                // entries, which the scalar step does not model).
                let counts: Vec<u8> = (0..n)
                    .map(|_| {
                        if with_level {
                            0
                        } else {
                            (g.next().abs() * 2.0) as u8
                        }
                    })
                    .collect();
                let extra: Vec<f64> = (0..n)
                    .map(|_| if step % 2 == 1 { 0.05 * g.next() } else { 0.0 })
                    .collect();
                block.counts.0[..n].copy_from_slice(&counts);
                block.kick[..n].copy_from_slice(&extra);
                block.kicked = step % 2 == 1;
                let kicks: Vec<f64> = (0..n)
                    .map(|i| {
                        let jump = f64::from(counts[i]) * block.w;
                        if step % 2 == 1 { jump + extra[i] } else { jump }
                    })
                    .collect();
                let kick_all = if with_level { 0.01 } else { 0.0 };
                block.kick_all = kick_all;
                let input = 1.0 + (step as f64 * 0.01).sin();
                let mut spikes = Vec::new();
                block.advance(input, step, &mut spikes);
                let mut expected = Vec::new();
                for i in 0..n {
                    let current = input + level[i];
                    // The block adds the neuron's jumps first, then the population-wide one.
                    if hold[i] == 0 {
                        v[i] += kicks[i];
                    }
                    if neuron.step(&mut v[i], &mut hold[i], eta[i], current, kick_all) {
                        expected.push(i as u32);
                    }
                }
                assert_eq!(spikes, expected, "dt {dt}, step {step}");
                total_spikes += spikes.len();
                for i in 0..n {
                    if hold[i] == 0 {
                        assert_eq!(block.v[i], v[i], "dt {dt}, step {step}, neuron {i}");
                    }
                }
            }
            assert!(
                total_spikes > 500,
                "the test must exercise spikes: {total_spikes}"
            );
        }
    }

    /// Stored connectivity (a bit matrix at p >= 1/16, 16-bit lists below) and procedural
    /// connectivity are the same network: identical rates, potentials and event counts, also
    /// through a synchronous burst of more than 255 spikes in one step (counts moved out of
    /// the byte counters mid-step).
    #[test]
    fn stored_and_procedural_connectivity_agree() {
        for p in [0.1, 0.03] {
            let c = |procedural| Common {
                n: 3000,
                dt: 1e-3,
                t0: 0.0,
                t_end: 0.2,
                bin: 1e-3,
                conn: Connectivity::Random { p, procedural },
                normalise: true,
                hetero: Heterogeneity::Quantiles,
                stim: StimSpec::Const(3.0),
                seed: 4,
                stim_seed: 1,
                record: 0,
                threads: 1,
                // Potentials near V_peak: a burst in the first steps.
                init: (0.01, 90.0),
            };
            let q = QifParams {
                tau: 1.0,
                eta_bar: -5.0,
                delta: 1.0,
                j: 15.0,
                v_peak: 100.0,
                v_reset: -100.0,
                synapse: Synapse::Instant,
            };
            let stored = run_qif(&c(false), &q, &|_, _| {}).unwrap();
            let procedural = run_qif(&c(true), &q, &|_, _| {}).unwrap();
            let burst = stored
                .r
                .iter()
                .map(|r| r * 3000.0 * 1e-3)
                .fold(0.0, f64::max);
            assert!(burst > 255.0, "p {p}: largest step has {burst} spikes");
            assert!(stored.conn_bytes > 0 && procedural.conn_bytes == 0);
            assert_eq!(
                (&stored.r, &stored.v, stored.events),
                (&procedural.r, &procedural.v, procedural.events),
                "p {p}"
            );
        }
    }

    /// Event counts and outputs do not depend on the thread count, also when one thread owns
    /// more than 64 blocks (N > 65 536); all-to-all, every spike reaches all N neurons.
    #[test]
    fn events_are_counted_once_per_target_whatever_the_threads() {
        let c = |threads| Common {
            n: 70_000,
            dt: 1e-3,
            t0: 0.0,
            t_end: 0.3,
            bin: 0.01,
            conn: Connectivity::AllToAll,
            normalise: false,
            hetero: Heterogeneity::Quantiles,
            stim: StimSpec::Const(3.0),
            seed: 1,
            stim_seed: 1,
            record: 0,
            threads,
            init: (0.5, -0.5),
        };
        let p = QifParams {
            tau: 1.0,
            eta_bar: -5.0,
            delta: 1.0,
            j: 15.0,
            v_peak: 100.0,
            v_reset: -100.0,
            synapse: Synapse::Instant,
        };
        let a = run_qif(&c(1), &p, &|_, _| {}).unwrap();
        let b = run_qif(&c(2), &p, &|_, _| {}).unwrap();
        assert!(a.spikes > 0);
        // Every delivered spike reaches all N neurons; the spikes of the last step would be
        // delivered in the step after the run, so they are counted but not delivered.
        assert_eq!(a.events % 70_000, 0);
        assert!(
            a.events <= a.spikes * 70_000,
            "{} events for {} spikes",
            a.events,
            a.spikes
        );
        assert_eq!((a.r, a.v, a.events), (b.r, b.v, b.events));
    }
}
