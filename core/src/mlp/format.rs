//! The "NMMW" weight file, version 1: one MLP mean field with its normalisation and free-form
//! metadata, little-endian, protected by a CRC-32.
//!
//! | offset        | size      | field                                                      |
//! |---------------|-----------|------------------------------------------------------------|
//! | 0             | 4         | magic `b"NMMW"`                                            |
//! | 4             | 2         | `u16` version = 1                                          |
//! | 6             | 2         | `u16` activation: 0 = tanh hidden layers, linear output    |
//! | 8             | 2         | `u16` number of layer sizes = 4                            |
//! | 10            | 2         | `u16` flags = 0 (reserved; keeps the floats 4-byte aligned)|
//! | 12            | 8         | `u16` sizes `[n_in, h1, h2, n_out]` = `[6, 6, 6, 2]`       |
//! | 20            | 4 F       | `f32` block: `in_mean[n_in]`, `in_scale[n_in]`, `out_scale[n_out]`, `out_offset[n_out]`, then `l1.w` (`h1 x n_in`, row-major: one row per output), `l1.b[h1]`, `l2.w` (`h2 x h1`), `l2.b[h2]`, `l3.w` (`n_out x h2`), `l3.b[n_out]` |
//! | 20 + 4F       | 4         | `u32` metadata length `L` in bytes                         |
//! | 24 + 4F       | L         | metadata, UTF-8 (the trainer writes JSON: command, seed, training ranges) |
//! | 24 + 4F + L   | 4         | `u32` CRC-32 (IEEE 802.3 / ISO-HDLC, as zlib's `crc32`) of every preceding byte |
//!
//! `F = 2 n_in + 2 n_out + h1 (n_in + 1) + h2 (h1 + 1) + n_out (h2 + 1)` floats; for the
//! default shape `F = 114`, the float block ends at byte 476 and a file is `484 + L` bytes.
//! Values are IEEE-754 binary32; an `f64` model is rounded to nearest when written. Readers
//! reject any other version, activation, layer count or flags, a length that does not match
//! the header exactly, a wrong checksum, non-finite values, zero input scales and metadata
//! that is not UTF-8; nothing in a malformed file can make the reader panic.
//!
//! Reading it from Python:
//!
//! ```text
//! import json, struct, zlib, numpy as np
//! b = open("mlp.nmmw", "rb").read()
//! assert b[:4] == b"NMMW" and zlib.crc32(b[:-4]) == struct.unpack("<I", b[-4:])[0]
//! n_in, h1, h2, n_out = struct.unpack("<4H", b[12:20])
//! F = 2*n_in + 2*n_out + h1*(n_in+1) + h2*(h1+1) + n_out*(h2+1)
//! f = np.frombuffer(b, "<f4", F, 20)
//! (L,) = struct.unpack("<I", b[20+4*F:24+4*F]); meta = json.loads(b[24+4*F:24+4*F+L])
//! ```

use super::{MlpMeanField, MlpScalar, Normalisation, locate};
use crate::real::Real;
use core::fmt;

/// File magic.
pub const MAGIC: [u8; 4] = *b"NMMW";
/// The format version this code reads and writes.
pub const VERSION: u16 = 1;
/// Activation code: tanh on the hidden layers, linear output.
pub const ACTIVATION_TANH: u16 = 0;
/// Bytes before the float block.
pub const HEADER_LEN: usize = 20;

/// Why a weight file could not be read or written (or a network could not be accepted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// The file does not start with `b"NMMW"`.
    BadMagic,
    /// The file's format version is not 1.
    UnsupportedVersion(u16),
    /// The activation code is not 0 (tanh).
    UnknownActivation(u16),
    /// The header does not list 4 layer sizes (three dense layers).
    BadLayerCount(u16),
    /// Reserved header flags are set.
    UnsupportedFlags(u16),
    /// The file is shorter than its header says.
    Truncated {
        /// Bytes needed (as far as the header could be read).
        needed: usize,
        /// Bytes present.
        got: usize,
    },
    /// Bytes follow the checksum.
    TrailingBytes {
        /// Number of extra bytes.
        extra: usize,
    },
    /// The stored CRC-32 does not match the contents.
    ChecksumMismatch {
        /// CRC stored in the file.
        stored: u32,
        /// CRC of the contents.
        computed: u32,
    },
    /// The layer sizes differ from the model type's.
    ShapeMismatch {
        /// Sizes `[n_in, h1, h2, n_out]` of the model type.
        expected: [u16; 4],
        /// Sizes in the file.
        found: [u16; 4],
    },
    /// A weight or normalisation value is NaN or infinite (or too large for `f32`).
    NonFinite {
        /// Array name: `in_mean`, `in_scale`, `out_scale`, `out_offset`, `l1.w`, `l1.b`,
        /// `l2.w`, `l2.b`, `l3.w` or `l3.b`.
        array: &'static str,
        /// Index within the array (row-major for weights).
        index: usize,
    },
    /// An input scale is zero.
    ZeroScale {
        /// Input index (0 = r, 1 = v, 2 = eta, 3 = p, 4 = J, 5 = I).
        index: usize,
    },
    /// The metadata is not valid UTF-8.
    BadUtf8 {
        /// Offset of the first invalid byte within the metadata.
        valid_up_to: usize,
    },
    /// The metadata is longer than `u32::MAX` bytes.
    MetadataTooLong {
        /// Its length.
        len: usize,
    },
    /// The output buffer cannot hold the encoded file.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        got: usize,
    },
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BadMagic => f.write_str("not an nmm weight file (magic is not \"NMMW\")"),
            Self::UnsupportedVersion(v) => {
                write!(
                    f,
                    "weight file version {v} is not supported (expected {VERSION})"
                )
            }
            Self::UnknownActivation(a) => write!(f, "unknown activation code {a} (0 = tanh)"),
            Self::BadLayerCount(n) => write!(f, "weight file lists {n} layer sizes, expected 4"),
            Self::UnsupportedFlags(x) => write!(f, "unsupported weight file flags {x:#06x}"),
            Self::Truncated { needed, got } => {
                write!(f, "weight file truncated: {got} bytes, needs {needed}")
            }
            Self::TrailingBytes { extra } => {
                write!(
                    f,
                    "{extra} unexpected bytes after the weight file's checksum"
                )
            }
            Self::ChecksumMismatch { stored, computed } => write!(
                f,
                "weight file checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            Self::ShapeMismatch { expected, found } => {
                write!(
                    f,
                    "weight file has layer sizes {found:?}, expected {expected:?}"
                )
            }
            Self::NonFinite { array, index } => write!(f, "{array}[{index}] is not finite"),
            Self::ZeroScale { index } => write!(f, "in_scale[{index}] is zero"),
            Self::BadUtf8 { valid_up_to } => {
                write!(f, "weight file metadata is not UTF-8 (byte {valid_up_to})")
            }
            Self::MetadataTooLong { len } => {
                write!(
                    f,
                    "metadata of {len} bytes exceeds the format's 4 GiB limit"
                )
            }
            Self::BufferTooSmall { needed, got } => {
                write!(
                    f,
                    "output buffer of {got} bytes is too small, needs {needed}"
                )
            }
        }
    }
}

impl core::error::Error for FormatError {}

const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// CRC-32 (IEEE 802.3, reflected, polynomial 0x04C11DB7, as zlib's and Python's
/// `zlib.crc32`) of `bytes`.
///
/// ```
/// assert_eq!(nmm_core::mlp::format::crc32(b"123456789"), 0xCBF4_3926);
/// ```
pub fn crc32(bytes: &[u8]) -> u32 {
    CRC.checksum(bytes)
}

/// What [`inspect`] learnt from a structurally valid file.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FileInfo<'a> {
    /// Format version (1).
    pub version: u16,
    /// Layer sizes `[n_in, h1, h2, n_out]`.
    pub sizes: [u16; 4],
    /// The metadata text.
    pub metadata: &'a str,
    /// The float block (little-endian `f32`s).
    floats: &'a [u8],
}

impl<'a> FileInfo<'a> {
    /// The values of the float block in file order.
    fn values(&self) -> impl Iterator<Item = f32> + 'a {
        self.floats.chunks_exact(4).map(|c| match c.try_into() {
            Ok(b) => f32::from_le_bytes(b),
            Err(_) => f32::NAN,
        })
    }
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    let s: [u8; 2] = b.get(off..off.checked_add(2)?)?.try_into().ok()?;
    Some(u16::from_le_bytes(s))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s: [u8; 4] = b.get(off..off.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(s))
}

/// Number of floats in the float block for layer sizes `s` (u64: cannot overflow for u16
/// sizes).
fn float_count(s: [u64; 4]) -> u64 {
    let [i, h1, h2, o] = s;
    2 * i + 2 * o + h1 * (i + 1) + h2 * (h1 + 1) + o * (h2 + 1)
}

/// `n` as usize, saturating (only matters on 16/32-bit targets for absurd headers).
fn sat_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Validates a weight file's structure, checksum and metadata without decoding the weights,
/// and returns its version, layer sizes and metadata. Accepts any layer sizes.
///
/// Checks, in order: magic, header length, version, activation, layer count, flags, total
/// length against the header, CRC-32, UTF-8 of the metadata.
///
/// ```
/// use nmm_core::mlp::{Mlp, MlpMeanField, Normalisation, format};
/// let m = MlpMeanField::new(Mlp::<f32>::splat(0.5), Normalisation::identity()).unwrap();
/// let mut buf = [0u8; 512];
/// let n = m.to_bytes("{}", &mut buf).unwrap();
/// let info = format::inspect(&buf[..n]).unwrap();
/// assert_eq!((info.version, info.sizes, info.metadata), (1, [6, 6, 6, 2], "{}"));
/// ```
pub fn inspect(bytes: &[u8]) -> Result<FileInfo<'_>, FormatError> {
    let got = bytes.len();
    let head = bytes.get(..got.min(MAGIC.len())).unwrap_or(&[]);
    if MAGIC.get(..head.len()) != Some(head) {
        return Err(FormatError::BadMagic);
    }
    let truncated = |needed: usize| FormatError::Truncated { needed, got };
    let field = |off: usize| u16_at(bytes, off).ok_or(truncated(HEADER_LEN));
    let version = field(4)?;
    if version != VERSION {
        return Err(FormatError::UnsupportedVersion(version));
    }
    let activation = field(6)?;
    if activation != ACTIVATION_TANH {
        return Err(FormatError::UnknownActivation(activation));
    }
    let n_sizes = field(8)?;
    if n_sizes != 4 {
        return Err(FormatError::BadLayerCount(n_sizes));
    }
    let flags = field(10)?;
    if flags != 0 {
        return Err(FormatError::UnsupportedFlags(flags));
    }
    let sizes = [field(12)?, field(14)?, field(16)?, field(18)?];

    // Layout from the sizes, in u64 so no header can overflow the arithmetic.
    let floats_end = HEADER_LEN as u64 + 4 * float_count(sizes.map(u64::from));
    let meta_start = floats_end + 4;
    let meta_len_off = usize::try_from(floats_end).map_err(|_| truncated(usize::MAX))?;
    let meta_len = u32_at(bytes, meta_len_off).ok_or(truncated(sat_usize(meta_start + 4)))?;
    let total = meta_start + u64::from(meta_len) + 4;
    let total_usize = sat_usize(total);
    if (got as u64) < total {
        return Err(truncated(total_usize));
    }
    if (got as u64) > total {
        return Err(FormatError::TrailingBytes {
            extra: got - total_usize,
        });
    }
    // From here `total == got`, so every offset below fits in usize and lies inside `bytes`.
    let crc_off = total_usize - 4;
    let stored = u32_at(bytes, crc_off).ok_or(truncated(total_usize))?;
    let body = bytes.get(..crc_off).ok_or(truncated(total_usize))?;
    let computed = crc32(body);
    if stored != computed {
        return Err(FormatError::ChecksumMismatch { stored, computed });
    }
    let floats = bytes
        .get(HEADER_LEN..meta_len_off)
        .ok_or(truncated(total_usize))?;
    let meta = bytes
        .get(meta_len_off + 4..crc_off)
        .ok_or(truncated(total_usize))?;
    let metadata = core::str::from_utf8(meta).map_err(|e| FormatError::BadUtf8 {
        valid_up_to: e.valid_up_to(),
    })?;
    Ok(FileInfo {
        version,
        sizes,
        metadata,
        floats,
    })
}

/// The metadata text of a weight file, borrowed from `bytes`, after validating the whole
/// file as [`inspect`] does.
///
/// ```
/// use nmm_core::mlp::{Mlp, MlpMeanField, Normalisation, format};
/// let m = MlpMeanField::new(Mlp::<f64>::splat(0.5), Normalisation::identity()).unwrap();
/// let meta = r#"{"seed": 7, "p": [0.6, 1.0]}"#;
/// let mut storage = [0u8; 1024]; // a fixed buffer, as firmware would use
/// let buf = &mut storage[..MlpMeanField::<f64>::encoded_len(meta.len())];
/// let n = m.to_bytes(meta, buf).unwrap();
/// assert_eq!(format::metadata(&buf[..n]), Ok(meta));
/// ```
pub fn metadata(bytes: &[u8]) -> Result<&str, FormatError> {
    inspect(bytes).map(|i| i.metadata)
}

/// Sequential writer into a caller buffer whose size was checked beforehand.
struct Writer<'a> {
    out: &'a mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), FormatError> {
        let got = self.out.len();
        let end = self.pos.saturating_add(bytes.len());
        let dst = self
            .out
            .get_mut(self.pos..end)
            .ok_or(FormatError::BufferTooSmall { needed: end, got })?;
        dst.copy_from_slice(bytes);
        self.pos = end;
        Ok(())
    }
}

impl<T: Real + MlpScalar, const H1: usize, const H2: usize> MlpMeanField<T, H1, H2> {
    /// Size in bytes of the encoded file with `metadata_len` bytes of metadata
    /// (`484 + metadata_len` for the default shape).
    pub const fn encoded_len(metadata_len: usize) -> usize {
        let floats = 2 * 6 + 2 * 2 + H1 * 7 + H2 * (H1 + 1) + 2 * (H2 + 1);
        (HEADER_LEN + 4 * floats + 8).saturating_add(metadata_len)
    }

    /// Reads a model from an NMMW v1 file; parameters take their defaults.
    ///
    /// Weights are stored as `f32`, so reading into `f32` or `f64` and writing back gives the
    /// same bytes.
    ///
    /// # Errors
    /// Everything [`inspect`] rejects, [`FormatError::ShapeMismatch`] unless the sizes are
    /// `[6, H1, H2, 2]`, and what [`MlpMeanField::new`] rejects (non-finite values, zero
    /// scales).
    ///
    /// ```
    /// use nmm_core::mlp::{FormatError, MlpMeanField};
    /// let e = MlpMeanField::<f32>::from_bytes(b"NMMW\x02\x00").unwrap_err();
    /// assert_eq!(e, FormatError::UnsupportedVersion(2));
    /// assert_eq!(MlpMeanField::<f32>::from_bytes(b"PK\x03\x04"), Err(FormatError::BadMagic));
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FormatError> {
        let info = inspect(bytes)?;
        let expected = Self::SIZES.map(|s| u16::try_from(s).unwrap_or(u16::MAX));
        if info.sizes != expected {
            return Err(FormatError::ShapeMismatch {
                expected,
                found: info.sizes,
            });
        }
        let mut values = info.values().map(T::from_f32);
        let mut norm = Normalisation {
            in_mean: [<T as Real>::ZERO; 6],
            in_scale: [<T as Real>::ZERO; 6],
            out_scale: [<T as Real>::ZERO; 2],
            out_offset: [<T as Real>::ZERO; 2],
        };
        for dst in norm.iter_mut() {
            *dst = values.next().unwrap_or(T::from_f64(f64::NAN));
        }
        let mut net = super::Mlp::splat(<T as Real>::ZERO);
        for dst in net.iter_mut() {
            *dst = values.next().unwrap_or(T::from_f64(f64::NAN));
        }
        Self::new(net, norm)
    }

    /// Writes the model as an NMMW v1 file with `metadata` into `out` and returns the number
    /// of bytes written ([`Self::encoded_len`]`(metadata.len())`). Weights are rounded to
    /// `f32`. Parameters are not stored.
    ///
    /// # Errors
    /// [`FormatError::BufferTooSmall`] (nothing written), [`FormatError::MetadataTooLong`],
    /// [`FormatError::NonFinite`] for an `f64` value beyond the `f32` range (then `out` holds
    /// a partial file without a valid checksum).
    ///
    /// ```
    /// use nmm_core::mlp::{Mlp, MlpMeanField, Normalisation};
    /// let m = MlpMeanField::new(Mlp::<f64>::splat(0.25), Normalisation::identity()).unwrap();
    /// let mut buf = [0u8; 512]; // a fixed buffer with room to spare
    /// assert_eq!(MlpMeanField::<f64>::encoded_len(2), 486);
    /// assert_eq!(m.to_bytes("{}", &mut buf), Ok(486));
    /// assert_eq!(&buf[..4], b"NMMW");
    /// ```
    pub fn to_bytes(&self, metadata: &str, out: &mut [u8]) -> Result<usize, FormatError> {
        let needed = Self::encoded_len(metadata.len());
        let meta_len = u32::try_from(metadata.len()).map_err(|_| FormatError::MetadataTooLong {
            len: metadata.len(),
        })?;
        if out.len() < needed {
            return Err(FormatError::BufferTooSmall {
                needed,
                got: out.len(),
            });
        }
        let mut w = Writer { out, pos: 0 };
        w.put(&MAGIC)?;
        let sizes = Self::SIZES.map(|s| u16::try_from(s).unwrap_or(u16::MAX));
        for h in [VERSION, ACTIVATION_TANH, 4, 0].into_iter().chain(sizes) {
            w.put(&h.to_le_bytes())?;
        }
        for (k, v) in self.norm.iter().chain(self.net.iter()).enumerate() {
            let x = v.to_f32();
            if !x.is_finite() {
                let (array, index) = locate(Self::SIZES, k);
                return Err(FormatError::NonFinite { array, index });
            }
            w.put(&x.to_le_bytes())?;
        }
        w.put(&meta_len.to_le_bytes())?;
        w.put(metadata.as_bytes())?;
        let crc = crc32(w.out.get(..w.pos).unwrap_or(&[]));
        w.put(&crc.to_le_bytes())?;
        Ok(w.pos)
    }
}
