//! Spike delivery by counting. Every synapse of a network carries the same weight, so what a
//! neuron receives in one step is `w` times the number of spikes that reach it. Delivery
//! therefore only counts: for each block of [`BLOCK`] target neurons, one byte per neuron,
//! incremented once per arriving spike; the neuron update multiplies by `w`
//! ([`nmm_core::spiking::BlockInput`]).
//!
//! With the connectivity stored as a bit matrix (one bit per (source, target) pair, a
//! [`Row`] of [`BLOCK`] bits per source and block), counting a spike in a block is a
//! vectorised add of its row's bits into the byte counters: [`add_rows`] takes about five
//! AVX2 instructions per 32 targets, whatever p, where a scatter of the row's targets costs a
//! dependent load-add-store per target (about 1 ns per event on the bench machine).
//!
//! Counts are bytes: at most [`MAX_SPIKES`] spikes may be counted before the caller moves the
//! counts out (the network does so, in order, when a step has more spikes than that).
//!
//! The QIF block update on AVX2 (`advance_block`) and the row prefetch live here too: this
//! module holds every `unsafe` of the crate.
//!
//! Written by hand: no crate does bit-to-byte-counter expansion; the AVX2 kernel is the classic
//! broadcast / shuffle / mask / compare sequence, with a portable table-driven fallback that
//! gives the same counts.

use nmm_core::spiking::{BlockInput, Qif};

/// Neurons per block: the unit of parallel work and of connectivity generation (defined here,
/// where the kernels' layout depends on it, and re-exported by [`crate::network`]).
///
/// ```
/// assert!(nmm::network::BLOCK.is_power_of_two());
/// ```
pub const BLOCK: usize = 1024;
// Indices into a block are masked with BLOCK - 1 (no bounds checks on the hot paths).
const _: () = assert!(BLOCK.is_power_of_two());

/// 64-bit words in a row of [`BLOCK`] bits.
pub const WORDS: usize = BLOCK / 64;
const _: () = assert!(BLOCK.is_multiple_of(64));

/// The targets of one source in one block: bit `i` of word `i / 64` (bit `i % 64`) is set when
/// the block's neuron `i` is a target.
pub type Row = [u64; WORDS];

/// Most spikes whose counts fit in a byte.
pub const MAX_SPIKES: usize = u8::MAX as usize;

/// Spike counts of a block's neurons, aligned for whole-vector loads.
#[derive(Clone, Debug)]
#[repr(C, align(32))]
pub struct Counts(pub [u8; BLOCK]);

impl Default for Counts {
    fn default() -> Self {
        Counts([0; BLOCK])
    }
}

/// Adds one to the count of every target of every row. The caller guarantees that no count
/// exceeds [`MAX_SPIKES`] (e.g. counts start at zero and at most that many rows are added
/// before they are read out); counts of neurons past the block's length stay zero when the
/// rows have no bits there.
pub fn add_rows(rows: &[&Row], counts: &mut Counts) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above), the only requirement of this
        // target-feature function.
        unsafe { add_rows_avx2(rows, counts) };
        return;
    }
    add_rows_swar(rows, counts);
}

/// Byte `j` of `SPREAD[b]` is bit `j` of `b`.
const SPREAD: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut b = 0;
    while b < 256 {
        let mut j = 0;
        while j < 8 {
            if (b >> j) & 1 == 1 {
                t[b] |= 1 << (8 * j);
            }
            j += 1;
        }
        b += 1;
    }
    t
};

/// Portable [`add_rows`]: eight counters at a time in a `u64` (no carry crosses a byte, as
/// no count exceeds 255).
pub fn add_rows_swar(rows: &[&Row], counts: &mut Counts) {
    for (g, chunk) in counts.0.chunks_exact_mut(8).enumerate() {
        let mut acc = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        for row in rows {
            let byte = (row[g / 8] >> (8 * (g % 8))) as u8;
            acc = acc.wrapping_add(SPREAD[byte as usize]);
        }
        chunk.copy_from_slice(&acc.to_le_bytes());
    }
}

/// [`add_rows`] on AVX2: 32 counters per register; for each row the 32 bits are broadcast,
/// shuffled so byte `k` holds the bit's source byte, masked to the bit and compared, giving
/// -1 where set, which is subtracted.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn add_rows_avx2(rows: &[&Row], counts: &mut Counts) {
    use std::arch::x86_64::*;
    // Lane 0 (counters 0..16) takes bytes 0 and 1 of the 32 bits, lane 1 bytes 2 and 3.
    let shuf = _mm256_setr_epi8(
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3,
        3, 3,
    );
    let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201_u64 as i64);
    for (c, chunk) in counts.0.chunks_exact_mut(32).enumerate() {
        let p = chunk.as_mut_ptr().cast::<__m256i>();
        // SAFETY: `chunk` is 32 bytes long; unaligned load and store.
        let mut acc = unsafe { _mm256_loadu_si256(p) };
        for row in rows {
            let bits = (row[c / 2] >> (32 * (c % 2))) as u32;
            let x = _mm256_shuffle_epi8(_mm256_set1_epi32(bits as i32), shuf);
            let set = _mm256_cmpeq_epi8(_mm256_and_si256(x, bit), bit);
            acc = _mm256_sub_epi8(acc, set);
        }
        // SAFETY: as for the load.
        unsafe { _mm256_storeu_si256(p, acc) };
    }
}

/// Asks the CPU to bring `row` (two cache lines) into cache; a no-op off x86_64.
#[inline(always)]
pub(crate) fn prefetch(row: &Row) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let p = row.as_ptr().cast::<i8>();
        // SAFETY: SSE is part of the x86_64 baseline, and a prefetch never faults.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(p);
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(64));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
}

/// An all-zero row (padding of the row buffers).
pub(crate) static EMPTY_ROW: Row = [0; WORDS];

/// `Qif::advance_block`, on AVX2 when the CPU has it (bit-identical results); returns the sum
/// of the new `v` and lists in `crossed`, ascending, the neurons at or above `V_peak`.
#[inline]
pub(crate) fn advance_block(
    q: &Qif<f64>,
    v: &mut [f64],
    eta: &[f64],
    input: BlockInput<'_, f64>,
    crossed: &mut Vec<u32>,
) -> f64 {
    crossed.clear();
    #[cfg(target_arch = "x86_64")]
    if input.kick.is_empty() && std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above), the only requirement of this
        // target-feature function.
        return unsafe { advance_block_avx2(q, v, eta, input, crossed) };
    }
    let s = q.advance_block(v, eta, input);
    if s.max >= q.v_peak {
        // Chunks of 16 are tested at once (vectorised).
        for (c, chunk) in v.chunks(16).enumerate() {
            if chunk.iter().fold(false, |any, &x| any | (x >= q.v_peak)) {
                let at = chunk.iter().enumerate().filter(|(_, x)| **x >= q.v_peak);
                crossed.extend(at.map(|(o, _)| (c * 16 + o) as u32));
            }
        }
    }
    s.v
}

/// [`Qif::advance_block`] without per-neuron `kick`s, on AVX2: the same IEEE operations in the
/// same order (no fused multiply-adds), four neurons per instruction, so the results are
/// bit-identical to the core's generic code (tested against [`Qif::step`] below). Written with
/// intrinsics because LLVM vectorised the generic code only partly (two lanes, and a branch
/// per lane for the count conversion and the crossing test): the QIF bench run took 1.97e10
/// instructions with the generic code and 1.44e10 with this kernel.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn advance_block_avx2(
    q: &Qif<f64>,
    v: &mut [f64],
    eta: &[f64],
    input: BlockInput<'_, f64>,
    crossed: &mut Vec<u32>,
) -> f64 {
    use std::arch::x86_64::*;
    let n = v.len();
    let level = input.level;
    if !input.kick.is_empty()
        || eta.len() != n
        || input.counts.len() != n
        || !(level.is_empty() || level.len() == n)
    {
        panic!("advance_block_avx2: no kicks, and eta, counts (and level) as long as v");
    }
    // The whole groups of four here; the last n % 4 neurons by the generic code.
    let whole = n - n % 4;
    let (w, kick_all, current) = (
        _mm256_set1_pd(input.w),
        _mm256_set1_pd(input.kick_all),
        _mm256_set1_pd(input.current),
    );
    let (dtt, vp) = (_mm256_set1_pd(q.dt_over_tau), _mm256_set1_pd(q.v_peak));
    let mut acc = _mm256_setzero_pd();
    let with_level = !level.is_empty();
    let (vptr, eptr, lptr) = (v.as_mut_ptr(), eta.as_ptr(), level.as_ptr());
    // Four neurons from i with their counts as four i32 in `cnt4`.
    let mut four = |i: usize, cnt4: __m128i| {
        let cnt = _mm256_cvtepi32_pd(cnt4);
        // SAFETY: i + 4 <= whole <= n, the length of v and eta (and of level when used).
        let (x, e) = unsafe { (_mm256_loadu_pd(vptr.add(i)), _mm256_loadu_pd(eptr.add(i))) };
        // x = (v + count w) + kick_all
        let x = _mm256_add_pd(_mm256_add_pd(x, _mm256_mul_pd(cnt, w)), kick_all);
        let cur = if with_level {
            // SAFETY: as above.
            _mm256_add_pd(current, unsafe { _mm256_loadu_pd(lptr.add(i)) })
        } else {
            current
        };
        // x + dt/tau ((x x + eta) + current)
        let t = _mm256_add_pd(_mm256_add_pd(_mm256_mul_pd(x, x), e), cur);
        let xn = _mm256_add_pd(x, _mm256_mul_pd(dtt, t));
        // SAFETY: as above.
        unsafe { _mm256_storeu_pd(vptr.add(i), xn) };
        acc = _mm256_add_pd(acc, xn);
        // Crossings are rare (about one group in 700 in the bench): a well-predicted branch.
        let m = _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_GE_OQ>(xn, vp));
        if m != 0 {
            crossed.extend((0..4).filter(|l| m >> l & 1 == 1).map(|l| (i + l) as u32));
        }
    };
    // Counts are read 32 at a time with one load as wide as the delivery's stores (a narrower
    // load of bytes still in the store buffer would wait for them to drain).
    let mut i = 0;
    while i + 32 <= whole {
        let chunk: &mut [u8] = &mut input.counts[i..i + 32];
        // SAFETY: `chunk` is 32 bytes long; unaligned load and store.
        let c32 = unsafe { _mm256_loadu_si256(chunk.as_ptr().cast()) };
        unsafe { _mm256_storeu_si256(chunk.as_mut_ptr().cast(), _mm256_setzero_si256()) };
        let (lo, hi) = (
            _mm256_castsi256_si128(c32),
            _mm256_extracti128_si256::<1>(c32),
        );
        four(i, _mm_cvtepu8_epi32(lo));
        four(i + 4, _mm_cvtepu8_epi32(_mm_srli_si128::<4>(lo)));
        four(i + 8, _mm_cvtepu8_epi32(_mm_srli_si128::<8>(lo)));
        four(i + 12, _mm_cvtepu8_epi32(_mm_srli_si128::<12>(lo)));
        four(i + 16, _mm_cvtepu8_epi32(hi));
        four(i + 20, _mm_cvtepu8_epi32(_mm_srli_si128::<4>(hi)));
        four(i + 24, _mm_cvtepu8_epi32(_mm_srli_si128::<8>(hi)));
        four(i + 28, _mm_cvtepu8_epi32(_mm_srli_si128::<12>(hi)));
        i += 32;
    }
    while i < whole {
        let c = &mut input.counts[i..i + 4];
        let bytes = i32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        c.fill(0);
        four(i, _mm_cvtepu8_epi32(_mm_cvtsi32_si128(bytes)));
        i += 4;
    }
    let mut a = [0.0; 4];
    // SAFETY: four f64 into an array of four.
    unsafe { _mm256_storeu_pd(a.as_mut_ptr(), acc) };
    let sum = q
        .advance_tail(whole, v, eta, input, a, [f64::NEG_INFINITY; 4])
        .v;
    crossed.extend((whole..n).filter(|&j| v[j] >= q.v_peak).map(|j| j as u32));
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use nmm_core::rng::{Rng, SeedableRng, Xoshiro256PlusPlus};

    /// Both kernels give, for random rows of every density, exactly the count of set bits per
    /// position (a scalar count is the reference); also at the 255-spike limit.
    #[test]
    fn kernels_count_every_set_bit() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        for (nrows, density) in [(1, 1.0), (3, 0.1), (14, 0.5), (40, 0.02), (255, 0.9)] {
            let rows: Vec<Row> = (0..nrows)
                .map(|_| {
                    let mut r = [0u64; WORDS];
                    for i in 0..BLOCK {
                        let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                        if u < density {
                            r[i / 64] |= 1 << (i % 64);
                        }
                    }
                    r
                })
                .collect();
            let refs: Vec<&Row> = rows.iter().collect();
            let expected: Vec<u8> = (0..BLOCK)
                .map(|i| {
                    rows.iter()
                        .filter(|r| r[i / 64] >> (i % 64) & 1 == 1)
                        .count() as u8
                })
                .collect();
            let mut a = Counts::default();
            add_rows(&refs, &mut a);
            let mut b = Counts::default();
            add_rows_swar(&refs, &mut b);
            assert_eq!(a.0.to_vec(), expected, "{nrows} rows, density {density}");
            assert_eq!(b.0.to_vec(), expected, "{nrows} rows, density {density}");
        }
    }
}
