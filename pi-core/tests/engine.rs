//! The engine against the naive reference, round trips through the writer, and hostile bytes.

mod common;

use common::{Rng, random_input, random_spec, random_v2, reference_eval, reference_eval_with};
use pi_core::spec::{LayerSpec, MaskSpec, ModelSpec, OpSpec};
use pi_core::{Error, Model, ParseOptions, Shape};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Random valid models give exactly the reference's output, for any inputs.
    #[test]
    fn engine_matches_reference(seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let spec = random_spec(&mut rng);
        let bytes = spec.to_bytes().expect("generator makes valid models");
        let model = Model::parse(&bytes).expect("written models parse");
        // ops bound the memory as the docs say, and count every layer.
        prop_assert!(model.arena_words() as u64 <= 2 * model.ops());
        let layer_ops: u64 = model.layers().map(|l| l.ops()).sum();
        prop_assert_eq!(model.ops(), spec.input.elements() as u64 + layer_ops);
        let mut arena = vec![0i32; model.arena_words()];
        for _ in 0..3 {
            let input = random_input(&mut rng, spec.input.elements());
            // Garbage in the arena must not leak into the result.
            arena.iter_mut().for_each(|w| *w = rng.next_u64() as i32);
            let got = model.infer(&input, &mut arena).expect("valid buffers");
            prop_assert_eq!(got, &reference_eval(&spec, &input)[..]);
        }
    }

    /// parse(write(m)) == m, in canonical form.
    #[test]
    fn write_then_parse_round_trips(seed in any::<u64>()) {
        let spec = random_spec(&mut Rng::new(seed));
        let bytes = spec.to_bytes().unwrap();
        let back = Model::parse(&bytes).unwrap().to_spec();
        prop_assert_eq!(&back, &spec.canonical());
        prop_assert_eq!(back.to_bytes().unwrap(), bytes);
    }

    /// Format v2 (16- or 32-bit activations, i8 weights in random layers): the engine gives
    /// exactly the reference's output, which saturates every tensor to i16 with 16 bits.
    #[test]
    fn engine_matches_reference_v2(seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let base = random_spec(&mut rng);
        let (spec, encoding) = random_v2(&mut rng, &base);
        let bytes = spec.to_bytes_with(&encoding).expect("narrowed models stay valid");
        let model = Model::parse(&bytes).expect("written models parse");
        prop_assert_eq!(model.format_version(), 2);
        prop_assert_eq!(model.activation_bits(), encoding.activation_bits);
        let mut arena = vec![0i32; model.arena_words()];
        for _ in 0..3 {
            let input = random_input(&mut rng, spec.input.elements());
            arena.iter_mut().for_each(|w| *w = rng.next_u64() as i32);
            let got = model.infer(&input, &mut arena).expect("valid buffers");
            let want = reference_eval_with(&spec, &input, encoding.activation_bits);
            prop_assert_eq!(got, &want[..]);
        }
    }

    /// parse(write(m)) == m for v2 too: the spec, and the encoding it was written with.
    #[test]
    fn write_then_parse_round_trips_v2(seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let base = random_spec(&mut rng);
        let (spec, encoding) = random_v2(&mut rng, &base);
        let bytes = spec.to_bytes_with(&encoding).unwrap();
        let model = Model::parse(&bytes).unwrap();
        prop_assert_eq!(&model.to_spec(), &spec.canonical());
        prop_assert_eq!(&model.encoding(), &encoding.canonical(spec.layers.len()));
        prop_assert_eq!(model.to_spec().to_bytes_with(&model.encoding()).unwrap(), bytes);
    }

    /// Arbitrary bytes, with or without the magic, give Ok or an error: never a panic.
    #[test]
    fn random_bytes_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..300), magic in any::<bool>()) {
        let mut bytes = if magic { b"PIC1\x01".to_vec() } else { Vec::new() };
        bytes.extend(tail);
        if let Ok(model) = Model::parse(&bytes) {
            run_whatever(&model);
        }
    }

    /// Corrupting, truncating or extending a valid file never panics, and any file that still
    /// parses still runs.
    #[test]
    fn mutated_models_never_panic(seed in any::<u64>(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6), cut in any::<usize>()) {
        let bytes = random_spec(&mut Rng::new(seed)).to_bytes().unwrap();
        let mut mutated = bytes.clone();
        for (at, value) in flips {
            let i = at % mutated.len();
            mutated[i] = value;
        }
        if let Ok(model) = Model::parse(&mutated) {
            run_whatever(&model);
        }
        let truncated = &bytes[..cut % bytes.len()];
        prop_assert!(Model::parse(truncated).is_err());
        let mut extended = bytes.clone();
        extended.push(0);
        prop_assert_eq!(Model::parse(&extended).unwrap_err(), Error::TrailingBytes);
    }
}

fn run_whatever(model: &Model<'_>) {
    let input = vec![1000; model.input_shape().elements()];
    let mut arena = vec![0; model.arena_words()];
    let out = model.infer(&input, &mut arena).expect("parsed models run");
    assert_eq!(out.len(), model.output_shape().elements());
}

fn conv(out_channels: u16, in_channels: usize, k: u8, padding: u8, stride: u8) -> OpSpec {
    OpSpec::Conv2d {
        out_channels,
        kernel_h: k,
        kernel_w: k,
        stride,
        padding,
        weight_frac_bits: 8,
        weights: vec![1; out_channels as usize * in_channels * (k as usize).pow(2)],
        bias: None,
    }
}

fn chain(input: Shape, ops: Vec<OpSpec>) -> ModelSpec {
    ModelSpec {
        activation_frac_bits: 8,
        input,
        layers: ops.into_iter().map(LayerSpec::new).collect(),
    }
}

#[test]
fn short_arena_reports_the_size_needed() {
    let spec = chain(
        Shape::new(1, 8, 8),
        vec![conv(4, 1, 3, 1, 1), OpSpec::GlobalAvgPool],
    );
    let bytes = spec.to_bytes().unwrap();
    let model = Model::parse(&bytes).unwrap();
    let mut arena = vec![0; model.arena_words() - 1];
    assert_eq!(
        model.infer(&[0; 64], &mut arena).unwrap_err(),
        Error::BufferTooSmall {
            needed: model.arena_words(),
            found: model.arena_words() - 1
        }
    );
    assert_eq!(
        model.infer(&[0; 63], &mut arena).unwrap_err(),
        Error::InputLength {
            expected: 64,
            found: 63
        }
    );
}

#[test]
fn plan_reuses_words_along_a_chain() {
    // 1x16x16 -> conv 8ch -> relu (in place) -> conv 8ch -> relu -> pool: the peak is two
    // 8x16x16 tensors alive at once (a conv's input and output), not the sum of all tensors,
    // plus one receptive field (8 channels x 3 x 3) of kernel scratch.
    let spec = chain(
        Shape::new(1, 16, 16),
        vec![
            conv(8, 1, 3, 1, 1),
            OpSpec::MaskedRelu {
                mask: MaskSpec::All,
            },
            conv(8, 8, 3, 1, 1),
            OpSpec::MaskedRelu {
                mask: MaskSpec::All,
            },
            OpSpec::GlobalAvgPool,
        ],
    );
    let bytes = spec.to_bytes().unwrap();
    let model = Model::parse(&bytes).unwrap();
    assert_eq!(model.arena_words(), 2 * 8 * 256 + 8 * 9);
    // The in-place ReLU shares its input's words.
    assert_eq!(model.tensor_offset(1), model.tensor_offset(2));
    // And the arena is exactly enough.
    let mut arena = vec![0; model.arena_words()];
    model.infer(&[7; 256], &mut arena).unwrap();
}

#[test]
fn residual_input_stays_alive_until_the_add() {
    // t0 input, t1 conv, t2 relu, t3 conv, t4 = t3 + t1: t1 must not be overwritten by t3, and
    // the ReLU must not write over t1 in place because the add reads it later.
    let mut spec = chain(
        Shape::new(2, 6, 6),
        vec![
            conv(2, 2, 3, 1, 1),
            OpSpec::MaskedRelu {
                mask: MaskSpec::All,
            },
            conv(2, 2, 3, 1, 1),
            OpSpec::Add { other: 1 },
        ],
    );
    spec.layers.push(LayerSpec::new(OpSpec::Flatten));
    let bytes = spec.to_bytes().unwrap();
    let model = Model::parse(&bytes).unwrap();
    assert_ne!(model.tensor_offset(1), model.tensor_offset(2));
    let mut rng = Rng::new(5);
    let input = random_input(&mut rng, 72);
    let mut arena = vec![0; model.arena_words()];
    assert_eq!(
        model.infer(&input, &mut arena).unwrap(),
        &reference_eval(&spec, &input)[..]
    );
}

#[test]
fn relu_accounting_counts_kept_elements() {
    let mut mask = vec![false; 32];
    mask[3] = true;
    mask[17] = true;
    let spec = chain(
        Shape::new(2, 4, 4),
        vec![
            OpSpec::MaskedRelu {
                mask: MaskSpec::Elements(mask),
            },
            OpSpec::MaskedRelu {
                mask: MaskSpec::All,
            },
            OpSpec::MaskedRelu {
                mask: MaskSpec::None,
            },
        ],
    );
    let bytes = spec.to_bytes().unwrap();
    let model = Model::parse(&bytes).unwrap();
    let count = model.relu_count();
    assert_eq!((count.kept, count.total, count.linearized()), (34, 96, 62));
    let kept: Vec<usize> = model
        .layers()
        .filter_map(|l| match l.op {
            pi_core::Op::MaskedRelu(m) => Some(m.kept()),
            _ => None,
        })
        .collect();
    assert_eq!(kept, [2, 32, 0]);
}

#[test]
fn sparse_masks_use_the_index_list() {
    let mut mask = vec![false; 4096];
    mask[100] = true;
    mask[4000] = true;
    let spec = chain(
        Shape::new(16, 16, 16),
        vec![OpSpec::MaskedRelu {
            mask: MaskSpec::Elements(mask),
        }],
    );
    let bytes = spec.to_bytes().unwrap();
    // magic + header + one record: two 4-byte indices, not a 512-byte bitmap.
    assert!(bytes.len() < 32, "{} bytes", bytes.len());
    let model = Model::parse(&bytes).unwrap();
    let Some(pi_core::Op::MaskedRelu(m)) = model.layer(0).map(|l| l.op) else {
        panic!()
    };
    assert!(matches!(m.encoding(), pi_core::MaskEncoding::Indices(_)));
    assert!(m.is_kept(100) && m.is_kept(4000) && !m.is_kept(101));
}

#[test]
fn invalid_models_get_typed_errors() {
    let ok = chain(Shape::new(1, 4, 4), vec![conv(2, 1, 3, 1, 1)]);
    assert!(ok.to_bytes().is_ok());

    let mut bad_weights = ok.clone();
    if let OpSpec::Conv2d { weights, .. } = &mut bad_weights.layers[0].op {
        weights.pop();
    }
    assert_eq!(
        bad_weights.to_bytes().err(),
        Some(Error::BadLength { layer: 0 })
    );

    let forward_ref = ModelSpec {
        layers: vec![LayerSpec::reading(1, OpSpec::Flatten)],
        ..ok.clone()
    };
    assert_eq!(
        forward_ref.to_bytes().err(),
        Some(Error::BadTensorRef { layer: 0 })
    );

    let linear_on_image = chain(
        Shape::new(1, 4, 4),
        vec![OpSpec::Linear {
            out_features: 2,
            weight_frac_bits: 0,
            weights: vec![0; 32],
            bias: None,
        }],
    );
    assert_eq!(
        linear_on_image.to_bytes().err(),
        Some(Error::BadShape { layer: 0 })
    );

    let add_mismatch = chain(
        Shape::new(1, 4, 4),
        vec![conv(2, 1, 3, 1, 1), OpSpec::Add { other: 0 }],
    );
    assert_eq!(
        add_mismatch.to_bytes().err(),
        Some(Error::BadShape { layer: 1 })
    );

    // Weights this large times any 32-bit input could pass 2^62.
    let huge = chain(
        Shape::new(64, 8, 8),
        vec![OpSpec::Conv2d {
            out_channels: 1,
            kernel_h: 3,
            kernel_w: 3,
            stride: 1,
            padding: 1,
            weight_frac_bits: 0,
            weights: vec![i16::MAX; 64 * 9],
            bias: None,
        }],
    );
    assert!(
        huge.to_bytes().is_ok(),
        "576 taps of 2^15 times 2^31 stay below 2^62"
    );
    // 8000 * 9 taps of 2^15 reach 2^31.1: times a 2^31 input that passes 2^62.
    let huger = chain(
        Shape::new(8000, 1, 1),
        vec![OpSpec::Conv2d {
            out_channels: 1,
            kernel_h: 3,
            kernel_w: 3,
            stride: 1,
            padding: 1,
            weight_frac_bits: 0,
            weights: vec![i16::MIN; 8000 * 9],
            bias: None,
        }],
    );
    assert_eq!(
        huger.to_bytes().err(),
        Some(Error::AccumulatorOverflow { layer: 0 })
    );

    let bytes = ok.to_bytes().unwrap();
    assert_eq!(Model::parse(&bytes[1..]).unwrap_err(), Error::BadMagic);
    let mut v3 = bytes.clone();
    v3[4] = 3;
    assert_eq!(
        Model::parse(&v3).unwrap_err(),
        Error::UnsupportedVersion { found: 3 }
    );
    // A v1 file relabelled v2 has no valid CRC-32 at its end.
    let mut v2 = bytes.clone();
    v2[4] = 2;
    assert!(matches!(
        Model::parse(&v2).unwrap_err(),
        Error::ChecksumMismatch { .. }
    ));
    // i8 weights exist only from v2 on: not in a v1 file, and only in conv and linear layers.
    use pi_core::spec::Encoding;
    let narrow = Encoding {
        version: 1,
        activation_bits: 32,
        i8_weights: vec![true],
    };
    assert_eq!(
        ok.to_bytes_with(&narrow).err(),
        Some(Error::BadParameter { layer: usize::MAX })
    );
    let mut small = ok.clone();
    if let OpSpec::Conv2d { weights, .. } = &mut small.layers[0].op {
        weights.iter_mut().for_each(|w| *w = (*w).clamp(-128, 127));
        weights[0] = 128;
    }
    // A weight beyond i8 cannot be stored as i8.
    let v2_narrow = Encoding::v2(32, vec![true]);
    assert_eq!(
        small.to_bytes_with(&v2_narrow).err(),
        Some(Error::BadParameter { layer: 0 })
    );
    if let OpSpec::Conv2d { weights, .. } = &mut small.layers[0].op {
        weights[0] = 127;
    }
    let v2_bytes = small.to_bytes_with(&v2_narrow).unwrap();
    // The same records under a v1 header (no activation width, no CRC): rejected at layer 0.
    let mut as_v1 = v2_bytes[..v2_bytes.len() - 4].to_vec();
    as_v1[4] = 1;
    as_v1.remove(6);
    assert_eq!(
        Model::parse(&as_v1).unwrap_err(),
        Error::BadParameter { layer: 0 }
    );
    let no_layers = ModelSpec {
        layers: vec![],
        ..ok.clone()
    };
    assert_eq!(no_layers.to_bytes().err(), Some(Error::NoLayers));
    let too_many = chain(
        Shape::new(1, 1, 1),
        vec![OpSpec::Flatten; pi_core::MAX_LAYERS + 1],
    );
    assert_eq!(
        too_many.to_bytes().err(),
        Some(Error::TooManyLayers {
            found: pi_core::MAX_LAYERS + 1
        })
    );
}

#[test]
fn errors_display_a_message() {
    let text = Error::BufferTooSmall {
        needed: 10,
        found: 3,
    }
    .to_string();
    assert_eq!(text, "buffer holds 3 words, 10 needed");
}

/// Pools over windows and planes of every kind of size (powers of two, odd, 112x112, 255x255)
/// give the exactly rounded mean, on large activations where a `round(2^16/n)` multiplier is
/// thousands of LSBs off.
#[test]
fn pools_give_the_exactly_rounded_mean() {
    let mut rng = Rng::new(12);
    let cases = [
        (Shape::new(3, 112, 112), OpSpec::GlobalAvgPool),
        (Shape::new(2, 7, 7), OpSpec::GlobalAvgPool),
        (Shape::new(1, 255, 255), OpSpec::GlobalAvgPool),
        (Shape::new(1, 1024, 1024), OpSpec::GlobalAvgPool),
        (Shape::new(2, 16, 16), OpSpec::GlobalAvgPool),
        (
            Shape::new(2, 21, 21),
            OpSpec::AvgPool2d {
                kernel: 3,
                stride: 3,
            },
        ),
        (
            Shape::new(1, 255, 255),
            OpSpec::AvgPool2d {
                kernel: 255,
                stride: 1,
            },
        ),
    ];
    for (input_shape, op) in cases {
        let spec = chain(input_shape, vec![op.clone()]);
        let bytes = spec.to_bytes().unwrap();
        let model = Model::parse(&bytes).unwrap();
        let mut arena = vec![0; model.arena_words()];
        let input: Vec<i32> = (0..input_shape.elements())
            .map(|_| rng.range(1 << 29, 1 << 30) as i32)
            .collect();
        let got = model.infer(&input, &mut arena).unwrap().to_vec();
        assert_eq!(got, reference_eval(&spec, &input), "{input_shape:?} {op:?}");
        if op == OpSpec::GlobalAvgPool {
            // The reference's rounding, spelled out: q is the mean rounded half up iff
            // -n < 2nq - 2Σ <= n.
            let n = input_shape.plane() as i128;
            for (q, plane) in got.iter().zip(input.chunks(input_shape.plane())) {
                let sum: i128 = plane.iter().map(|&x| x as i128).sum();
                let d = 2 * n * *q as i128 - 2 * sum;
                assert!(-n < d && d <= n, "{input_shape:?}: {q} for sum {sum}");
            }
        }
    }
}

/// The file: 12 bytes after the magic (version 1, 0 frac bits, input 1x1024x1024, one
/// layer reading tensor 0: AvgPool2d with kernel 255, stride 1). No multiply-accumulate, but
/// 770x770 windows of 255x255 elements each.
const HUGE_POOL: &[u8] = b"PIC1\x01\x00\x01\x80\x08\x80\x08\x01\x00\x03\xff\x01";

#[test]
fn a_huge_pool_is_costed_exactly_and_rejected_under_a_limit() {
    // Input copy 1024·1024, then (1024 − 255)/1 + 1 = 770 outputs a side, 255² inputs each.
    let expected = 1024 * 1024 + 770 * 770 * 255 * 255;
    assert_eq!(expected, 38_554_371_076u64);

    let model = Model::parse(HUGE_POOL).unwrap();
    assert_eq!(model.macs(), 0);
    assert_eq!(model.ops(), expected);
    assert_eq!(model.layer(0).unwrap().ops(), 770 * 770 * 255 * 255);

    // A billion ops is over 10,000 times the committed digits CNN (87,488 ops), and rejects
    // this file, reporting its exact cost.
    let limit = 1_000_000_000;
    let err = Model::parse_with(HUGE_POOL, &ParseOptions::new().with_max_ops(limit)).unwrap_err();
    assert_eq!(
        err,
        Error::TooMuchWork {
            ops: expected,
            limit
        }
    );
    assert_eq!(
        err.to_string(),
        "model takes 38554371076 ops per inference, more than the limit of 1000000000"
    );
    // The limit is inclusive.
    let exact = ParseOptions::new().with_max_ops(expected);
    assert_eq!(
        Model::parse_with(HUGE_POOL, &exact).unwrap().ops(),
        expected
    );
    let one_less = ParseOptions::new().with_max_ops(expected - 1);
    assert!(matches!(
        Model::parse_with(HUGE_POOL, &one_less),
        Err(Error::TooMuchWork { .. })
    ));
    // Without a limit, and with the default options, it parses (its cost is reported).
    assert!(Model::parse_with(HUGE_POOL, &ParseOptions::default()).is_ok());
}

/// Each kind of layer is costed as the crate docs say, checked by hand on small models.
#[test]
fn ops_count_every_kind_of_layer() {
    // TINY_MODEL: input 1x4x4 (16); conv 2x3x3, padding 1 -> 2x4x4: 32 outputs x 9 taps = 288;
    // masked ReLU on 32; avg pool 2/2 -> 2x2x2: 8 outputs x 4 = 32; flatten 8; linear 3x8 = 24.
    let tiny = Model::parse(pi_core::testing::TINY_MODEL).unwrap();
    let per_layer: Vec<u64> = tiny.layers().map(|l| l.ops()).collect();
    assert_eq!(per_layer, [288, 32, 32, 8, 24]);
    assert_eq!(tiny.ops(), 16 + 288 + 32 + 32 + 8 + 24);
    assert_eq!(tiny.macs(), 288 + 24);

    // Input 2x6x6 (72); conv 3 out, 3x3, stride 2, no padding -> 3x2x2: 12 x 2·9 = 216; add
    // of that tensor to itself: 12; global pool over 3 planes of 4: 12; linear 5x3 = 15.
    let spec = chain(
        Shape::new(2, 6, 6),
        vec![
            conv(3, 2, 3, 0, 2),
            OpSpec::Add { other: 1 },
            OpSpec::GlobalAvgPool,
            OpSpec::Linear {
                out_features: 5,
                weight_frac_bits: 0,
                weights: vec![1; 15],
                bias: None,
            },
        ],
    );
    let bytes = spec.to_bytes().unwrap();
    let model = Model::parse(&bytes).unwrap();
    let per_layer: Vec<u64> = model.layers().map(|l| l.ops()).collect();
    assert_eq!(per_layer, [216, 12, 12, 15]);
    assert_eq!(model.ops(), 72 + 216 + 12 + 12 + 15);
    assert_eq!(
        Model::parse_with(&bytes, &ParseOptions::new().with_max_ops(326)).unwrap_err(),
        Error::TooMuchWork {
            ops: 327,
            limit: 326
        }
    );
}
