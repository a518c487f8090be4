//! The golden model files (v1 and v2): the writer must reproduce them byte for byte, and the
//! engine must give the recorded outputs. Regenerate (after a deliberate format change) with
//! `PI_CORE_BLESS=1 cargo test -p pi-core --features std --test golden`.

mod common;

use pi_core::spec::{Encoding, LayerSpec, MaskSpec, ModelSpec, OpSpec};
use pi_core::{Error, Model, Shape};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/tiny.pic");
const GOLDEN_V2: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/tiny-v2.pic");

/// The v2 golden file: the same spec with 16-bit activations and i8 weights in the conv and
/// linear layers (their weights already fit i8).
fn tiny_v2_encoding() -> Encoding {
    Encoding::v2(16, vec![true, false, false, false, true])
}

/// The spec behind `pi_core::testing::TINY_MODEL`.
fn tiny_spec() -> ModelSpec {
    let conv_weights: Vec<i16> = (0..18).map(|i| (i * 37 % 23 - 11) * 9).collect();
    let mut mask = vec![false; 32];
    for i in (0..32).step_by(3) {
        mask[i] = true;
    }
    ModelSpec {
        activation_frac_bits: 8,
        input: Shape::new(1, 4, 4),
        layers: vec![
            LayerSpec::new(OpSpec::Conv2d {
                out_channels: 2,
                kernel_h: 3,
                kernel_w: 3,
                stride: 1,
                padding: 1,
                weight_frac_bits: 7,
                weights: conv_weights,
                bias: Some(vec![-300, 500]),
            }),
            LayerSpec::new(OpSpec::MaskedRelu {
                mask: MaskSpec::Elements(mask),
            }),
            LayerSpec::new(OpSpec::AvgPool2d {
                kernel: 2,
                stride: 2,
            }),
            LayerSpec::new(OpSpec::Flatten),
            LayerSpec::new(OpSpec::Linear {
                out_features: 3,
                weight_frac_bits: 6,
                weights: (0..24).map(|i| (i * 13 % 17 - 8) * 5).collect(),
                bias: Some(vec![100, -200, 0]),
            }),
        ],
    }
}

#[test]
fn writer_reproduces_the_golden_file() {
    let bytes = tiny_spec().to_bytes().unwrap();
    if std::env::var_os("PI_CORE_BLESS").is_some() {
        std::fs::write(GOLDEN, &bytes).unwrap();
    }
    let golden = std::fs::read(GOLDEN).unwrap();
    assert_eq!(
        bytes, golden,
        "writer output changed: bless only for a deliberate format change"
    );
    assert_eq!(pi_core::testing::TINY_MODEL, &golden[..]);
}

#[test]
fn golden_file_header_bytes() {
    let golden = std::fs::read(GOLDEN).unwrap();
    // magic, version 1, 8 frac bits, input 1x4x4, 5 layers.
    assert_eq!(&golden[..10], &[b'P', b'I', b'C', b'1', 1, 8, 1, 4, 4, 5]);
    // First layer: input tensor 0, op 0 (Conv2d), 2 out channels, 3x3, stride 1, padding 1,
    // 7 frac bits, then 36 weight bytes.
    assert_eq!(&golden[10..18], &[0, 0, 2, 3, 3, 1, 1, 7]);
    assert_eq!(golden[18], 36);
}

#[test]
fn golden_model_gives_the_reference_output() {
    let model = Model::parse(pi_core::testing::TINY_MODEL).unwrap();
    let input: Vec<i32> = (0..16).map(|i| (i * 29 % 11 - 5) * 51).collect();
    let mut arena = vec![0; model.arena_words()];
    let out = model.infer(&input, &mut arena).unwrap();
    assert_eq!(out, &common::reference_eval(&tiny_spec(), &input)[..]);
    assert_eq!(model.relu_count().kept, 11);
    assert_eq!(model.relu_count().total, 32);
    assert_eq!(model.macs(), 2 * 16 * 9 + 3 * 8);
}

#[test]
fn writer_reproduces_the_golden_v2_file() {
    let bytes = tiny_spec().to_bytes_with(&tiny_v2_encoding()).unwrap();
    if std::env::var_os("PI_CORE_BLESS").is_some() {
        std::fs::write(GOLDEN_V2, &bytes).unwrap();
    }
    let golden = std::fs::read(GOLDEN_V2).unwrap();
    assert_eq!(
        bytes, golden,
        "writer output changed: bless only for a deliberate format change"
    );
}

#[test]
fn golden_v2_file_layout() {
    let golden = std::fs::read(GOLDEN_V2).unwrap();
    // magic, version 2, 8 frac bits, 16-bit activations, input 1x4x4, 5 layers.
    assert_eq!(
        &golden[..11],
        &[b'P', b'I', b'C', b'1', 2, 8, 16, 1, 4, 4, 5]
    );
    // First layer: input tensor 0, op 7 (Conv2d with i8 weights), 2 out channels, 3x3,
    // stride 1, padding 1, 7 frac bits, then 18 weight bytes (one per weight).
    assert_eq!(&golden[11..19], &[0, 7, 2, 3, 3, 1, 1, 7]);
    assert_eq!(golden[19], 18);
    // The last four bytes: the CRC-32 (IEEE) of everything before them, little-endian.
    let (body, crc) = golden.split_at(golden.len() - 4);
    assert_eq!(crc, pi_core::crc::crc32(body).to_le_bytes());
}

#[test]
fn golden_v2_model_gives_the_reference_output() {
    let golden = std::fs::read(GOLDEN_V2).unwrap();
    let model = Model::parse(&golden).unwrap();
    assert_eq!((model.format_version(), model.activation_bits()), (2, 16));
    assert_eq!(model.encoding(), tiny_v2_encoding());
    // Inputs beyond i16 too: they are saturated on the way in.
    let input: Vec<i32> = (0..16).map(|i| (i * 29 % 11 - 5) * 9000).collect();
    let mut arena = vec![0; model.arena_words()];
    let out = model.infer(&input, &mut arena).unwrap();
    assert_eq!(
        out,
        &common::reference_eval_with(&tiny_spec(), &input, 16)[..]
    );
}

/// A v1 file still parses, as v1, byte for byte as before format v2.
#[test]
fn v1_file_still_parses() {
    let golden = std::fs::read(GOLDEN).unwrap();
    let model = Model::parse(&golden).unwrap();
    assert_eq!((model.format_version(), model.activation_bits()), (1, 32));
    assert_eq!(model.encoding(), Encoding::V1.canonical(5));
    assert_eq!(model.to_spec().to_bytes().unwrap(), golden);
}

/// Flipping any single bit of the golden v2 file, every bit of every byte, is rejected.
#[test]
fn every_single_bit_flip_of_the_v2_file_is_rejected() {
    let golden = std::fs::read(GOLDEN_V2).unwrap();
    let mut checksum_errors = 0;
    for byte in 0..golden.len() {
        for bit in 0..8 {
            let mut flipped = golden.clone();
            flipped[byte] ^= 1 << bit;
            match Model::parse(&flipped) {
                Ok(_) => panic!("flipping bit {bit} of byte {byte} still parses"),
                Err(Error::ChecksumMismatch { .. }) => checksum_errors += 1,
                Err(_) => {}
            }
        }
    }
    // Everything after the magic and version is caught by the CRC itself.
    assert!(
        checksum_errors >= 8 * (golden.len() - 5),
        "{checksum_errors}"
    );
}
