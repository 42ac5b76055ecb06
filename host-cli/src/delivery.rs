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
//! Written by hand: no crate does bit-to-byte-counter expansion; the AVX2 kernel is the classic
//! broadcast / shuffle / mask / compare sequence, with a portable table-driven fallback that
//! gives the same counts.

use crate::network::BLOCK;

/// 64-bit words in a row of [`BLOCK`] bits.
pub const WORDS: usize = BLOCK / 64;
const _: () = assert!(BLOCK % 64 == 0);

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
