//! The NMMW v1 weight file: pinned layout, exact round trips, and a parser that rejects every
//! corruption and truncation without panicking (property tests on random and damaged files).

use nmm_core::mlp::format::{self, FormatError, HEADER_LEN};
use nmm_core::mlp::{Mlp, MlpMeanField, Normalisation};
use proptest::prelude::*;

type M32 = MlpMeanField<f32>;

/// A model whose every value differs, so misplaced bytes show.
fn sample_model() -> M32 {
    let flat: Vec<f32> = (0..98).map(|k| (k as f32 - 49.0) / 16.0).collect();
    let net = Mlp::from_flat(&flat).unwrap();
    let norm = Normalisation {
        in_mean: [0.5, -1.0, -5.0, 0.8, 10.0, 0.0],
        in_scale: [0.5, 1.5, 3.0, 0.125, 6.0, 1.0],
        out_scale: [2.0, 20.0],
        out_offset: [0.25, -1.0],
    };
    MlpMeanField::new(net, norm).unwrap()
}

fn encode(m: &M32, meta: &str) -> Vec<u8> {
    let mut buf = vec![0u8; M32::encoded_len(meta.len())];
    let n = m.to_bytes(meta, &mut buf).unwrap();
    assert_eq!(n, buf.len());
    buf
}

/// Recomputes the trailing CRC after a deliberate edit.
fn reseal(buf: &mut [u8]) {
    let n = buf.len() - 4;
    let crc = format::crc32(&buf[..n]);
    buf[n..].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn crc32_is_the_ieee_check_value() {
    assert_eq!(format::crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(format::crc32(b""), 0);
}

#[test]
fn golden_layout() {
    let meta = r#"{"seed":1}"#;
    let buf = encode(&sample_model(), meta);
    assert_eq!(M32::encoded_len(0), 484);
    assert_eq!(buf.len(), 484 + meta.len());
    #[rustfmt::skip]
    let header: [u8; HEADER_LEN] = [
        b'N', b'M', b'M', b'W',
        1, 0,             // version
        0, 0,             // activation: tanh
        4, 0,             // four layer sizes
        0, 0,             // flags
        6, 0, 6, 0, 6, 0, 2, 0, // sizes
    ];
    assert_eq!(buf[..HEADER_LEN], header);
    let f32_at = |off: usize| f32::from_le_bytes(buf[off..off + 4].try_into().unwrap());
    assert_eq!(&buf[20..24], &0.5f32.to_le_bytes()); // in_mean[0]
    assert_eq!(f32_at(20 + 4 * 6), 0.5); // in_scale[0]
    assert_eq!(f32_at(20 + 4 * 9), 0.125); // in_scale[3]
    assert_eq!(f32_at(20 + 4 * 12), 2.0); // out_scale[0]
    assert_eq!(f32_at(20 + 4 * 15), -1.0); // out_offset[1]
    assert_eq!(f32_at(84), -49.0 / 16.0); // l1.w[0][0]
    assert_eq!(f32_at(84 + 4 * 7), -42.0 / 16.0); // l1.w[1][1]
    assert_eq!(f32_at(84 + 4 * 36), -13.0 / 16.0); // l1.b[0]
    assert_eq!(f32_at(472), 48.0 / 16.0); // l3.b[1], the last float
    assert_eq!(&buf[476..480], &(meta.len() as u32).to_le_bytes());
    assert_eq!(&buf[480..480 + meta.len()], meta.as_bytes());
    let crc = u32::from_le_bytes(buf[buf.len() - 4..].try_into().unwrap());
    assert_eq!(crc, format::crc32(&buf[..buf.len() - 4]));
    // Pins every byte of the file. The same value comes from Python building the file from
    // the documented layout: struct.pack("<4s4H4H114fI", ...) + metadata, then zlib.crc32.
    assert_eq!(crc, 0x385E_C9D0, "actual crc {crc:#010x}");
}

#[test]
fn inspect_and_metadata_borrow_the_input() {
    let meta = "{\"command\": \"nmm mlp train\", \"p\": [0.6, 1.0], \"note\": \"η̄ ✓\"}";
    let buf = encode(&sample_model(), meta);
    let info = format::inspect(&buf).unwrap();
    assert_eq!(info.version, 1);
    assert_eq!(info.sizes, [6, 6, 6, 2]);
    assert_eq!(info.metadata, meta);
    let m: &str = format::metadata(&buf).unwrap();
    assert_eq!(m.as_ptr(), buf[480..].as_ptr());
}

#[test]
fn f32_and_f64_round_trips_are_exact() {
    let m = sample_model();
    let buf = encode(&m, "x");
    let back = M32::from_bytes(&buf).unwrap();
    assert_eq!(back.net(), m.net());
    assert_eq!(back.norm(), m.norm());
    assert_eq!(encode(&back, "x"), buf);

    let m64 = MlpMeanField::<f64>::from_bytes(&buf).unwrap();
    let mut buf64 = vec![0u8; MlpMeanField::<f64>::encoded_len(1)];
    m64.to_bytes("x", &mut buf64).unwrap();
    assert_eq!(buf64, buf);
}

#[test]
fn other_shapes_are_checked() {
    let net = Mlp::<f32, 6, 8, 5, 2>::splat(0.5);
    let m = MlpMeanField::<f32, 8, 5>::new(net, Normalisation::identity()).unwrap();
    let len = MlpMeanField::<f32, 8, 5>::encoded_len(0);
    assert_eq!(len, 20 + 4 * (16 + 8 * 7 + 5 * 9 + 2 * 6) + 8);
    let mut buf = vec![0u8; len];
    m.to_bytes("", &mut buf).unwrap();
    assert_eq!(format::inspect(&buf).unwrap().sizes, [6, 8, 5, 2]);
    assert_eq!(
        MlpMeanField::<f32, 8, 5>::from_bytes(&buf).unwrap().net(),
        &net
    );
    assert_eq!(
        M32::from_bytes(&buf),
        Err(FormatError::ShapeMismatch {
            expected: [6, 6, 6, 2],
            found: [6, 8, 5, 2]
        })
    );
}

#[test]
fn header_errors() {
    let good = encode(&sample_model(), "");
    let with = |off: usize, v: u16| {
        let mut b = good.clone();
        b[off..off + 2].copy_from_slice(&v.to_le_bytes());
        reseal(&mut b);
        M32::from_bytes(&b)
    };
    assert_eq!(with(4, 2), Err(FormatError::UnsupportedVersion(2)));
    assert_eq!(with(6, 1), Err(FormatError::UnknownActivation(1)));
    assert_eq!(with(8, 3), Err(FormatError::BadLayerCount(3)));
    assert_eq!(with(10, 1), Err(FormatError::UnsupportedFlags(1)));
    assert_eq!(
        with(14, 7),
        Err(FormatError::Truncated {
            needed: good.len() + 4 * 13,
            got: good.len()
        })
    );
    assert_eq!(M32::from_bytes(b"NMMX"), Err(FormatError::BadMagic));
    assert_eq!(M32::from_bytes(b"\x89PNG\r\n"), Err(FormatError::BadMagic));
    assert_eq!(
        M32::from_bytes(b"NM"),
        Err(FormatError::Truncated { needed: 20, got: 2 })
    );
    assert_eq!(
        M32::from_bytes(b""),
        Err(FormatError::Truncated { needed: 20, got: 0 })
    );
    // A header promising enormous layers is a truncated file, not an allocation or overflow.
    let mut huge = good[..HEADER_LEN].to_vec();
    huge[12..20].copy_from_slice(&[0xFF; 8]);
    assert!(matches!(
        M32::from_bytes(&huge),
        Err(FormatError::Truncated { .. })
    ));
}

#[test]
fn content_errors_name_the_problem() {
    let good = encode(&sample_model(), "meta");
    // NaN in l2.w[3]: floats start at 20, l2.w after 16 + 42 values.
    let mut b = good.clone();
    let off = 20 + 4 * (16 + 42 + 3);
    b[off..off + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    reseal(&mut b);
    let e = M32::from_bytes(&b).unwrap_err();
    assert_eq!(
        e,
        FormatError::NonFinite {
            array: "l2.w",
            index: 3
        }
    );
    assert_eq!(e.to_string(), "l2.w[3] is not finite");

    let mut b = good.clone();
    b[20 + 4 * 7..20 + 4 * 8].copy_from_slice(&0.0f32.to_le_bytes()); // in_scale[1]
    reseal(&mut b);
    assert_eq!(
        M32::from_bytes(&b),
        Err(FormatError::ZeroScale { index: 1 })
    );

    let mut b = good.clone();
    b[481] = 0xFF; // metadata "meta" -> "m\xFFta"
    reseal(&mut b);
    assert_eq!(
        M32::from_bytes(&b),
        Err(FormatError::BadUtf8 { valid_up_to: 1 })
    );
    assert_eq!(
        format::metadata(&b),
        Err(FormatError::BadUtf8 { valid_up_to: 1 })
    );

    let mut b = good.clone();
    b.push(0);
    assert_eq!(
        M32::from_bytes(&b),
        Err(FormatError::TrailingBytes { extra: 1 })
    );

    let mut b = good.clone();
    b[100] ^= 1;
    let e = M32::from_bytes(&b).unwrap_err();
    assert!(matches!(e, FormatError::ChecksumMismatch { .. }));
    assert!(e.to_string().contains("checksum mismatch"), "{e}");
}

#[test]
fn writer_errors() {
    let m = sample_model();
    let mut small = [0u8; 100];
    assert_eq!(
        m.to_bytes("ab", &mut small),
        Err(FormatError::BufferTooSmall {
            needed: 486,
            got: 100
        })
    );
    assert!(
        small.iter().all(|&b| b == 0),
        "nothing written on BufferTooSmall"
    );
    // A larger buffer is fine; only the returned prefix is the file.
    let mut big = [0u8; 600];
    let n = m.to_bytes("ab", &mut big).unwrap();
    assert_eq!(M32::from_bytes(&big[..n]).unwrap().net(), m.net());

    let mut net = Mlp::<f64>::splat(0.1);
    net.l1.b[2] = 1e39; // finite in f64, infinite in f32
    let m64 = MlpMeanField::new(net, Normalisation::identity()).unwrap();
    assert_eq!(
        m64.to_bytes("", &mut big),
        Err(FormatError::NonFinite {
            array: "l1.b",
            index: 2
        })
    );
}

#[test]
fn every_truncation_is_rejected() {
    let good = encode(&sample_model(), r#"{"seed": 42}"#);
    for n in 0..good.len() {
        match M32::from_bytes(&good[..n]) {
            Err(FormatError::Truncated { got, .. }) => assert_eq!(got, n),
            other => panic!("prefix of {n} bytes gave {other:?}"),
        }
    }
    assert!(M32::from_bytes(&good).is_ok());
}

#[test]
fn every_single_byte_corruption_is_rejected() {
    let good = encode(&sample_model(), r#"{"seed": 42}"#);
    let mut b = good.clone();
    for pos in 0..good.len() {
        for flip in [0x01u8, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xFF, 0x5A] {
            b[pos] ^= flip;
            assert!(
                M32::from_bytes(&b).is_err(),
                "byte {pos} ^ {flip:#04x} was accepted"
            );
            b[pos] = good[pos];
        }
    }
}

fn arb_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        any::<u32>()
            .prop_map(f32::from_bits)
            .prop_filter("finite", |x| x.is_finite()),
        -4.0f32..4.0,
        Just(0.0f32),
        Just(-0.0f32),
        Just(f32::MIN_POSITIVE / 4.0), // subnormal
    ]
}

fn arb_model() -> impl Strategy<Value = M32> {
    (
        proptest::collection::vec(arb_f32(), 98),
        proptest::collection::vec(arb_f32(), 16),
    )
        .prop_map(|(w, n)| {
            let net = Mlp::from_flat(&w).unwrap();
            let scale = |x: f32| if x == 0.0 { 1.0 } else { x };
            let norm = Normalisation {
                in_mean: n[0..6].try_into().unwrap(),
                in_scale: <[f32; 6]>::try_from(&n[6..12]).unwrap().map(scale),
                out_scale: n[12..14].try_into().unwrap(),
                out_offset: n[14..16].try_into().unwrap(),
            };
            MlpMeanField::new(net, norm).unwrap()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any finite weights (subnormals, -0, extremes) and any metadata survive a round trip
    /// bit for bit, and re-encoding gives the same bytes.
    #[test]
    fn round_trip_is_bitwise(m in arb_model(), meta in ".{0,200}") {
        let buf = encode(&m, &meta);
        let back = M32::from_bytes(&buf).unwrap();
        let bits = |m: &M32| m.norm().iter().chain(m.net().iter()).map(f32::to_bits).collect::<Vec<_>>();
        prop_assert_eq!(bits(&back), bits(&m));
        prop_assert_eq!(format::metadata(&buf).unwrap(), meta.as_str());
        prop_assert_eq!(encode(&back, &meta), buf);
    }

    /// Arbitrary bytes never panic and are never accepted.
    #[test]
    fn random_bytes_are_rejected(bytes in proptest::collection::vec(any::<u8>(), 0..1200)) {
        prop_assert!(M32::from_bytes(&bytes).is_err());
        prop_assert!(format::inspect(&bytes).is_err());
    }

    /// A valid header followed by arbitrary bytes (so the parser reaches the length, CRC and
    /// value checks) never panics and is never accepted.
    #[test]
    fn valid_header_then_garbage_is_rejected(
        sizes in proptest::array::uniform4(any::<u16>()),
        tail in proptest::collection::vec(any::<u8>(), 0..1200),
    ) {
        let mut b = b"NMMW\x01\x00\x00\x00\x04\x00\x00\x00".to_vec();
        for s in sizes {
            b.extend_from_slice(&s.to_le_bytes());
        }
        b.extend_from_slice(&tail);
        prop_assert!(M32::from_bytes(&b).is_err());
    }

    /// Any damage to one byte of a valid file (any position, any non-zero xor) is an error.
    #[test]
    fn corrupted_file_is_rejected(m in arb_model(), pos in any::<prop::sample::Index>(), x in 1u8..=255) {
        let mut buf = encode(&m, "{}");
        let i = pos.index(buf.len());
        buf[i] ^= x;
        prop_assert!(M32::from_bytes(&buf).is_err(), "byte {} ^ {:#04x} accepted", i, x);
    }
}
