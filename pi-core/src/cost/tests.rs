//! Cost figures checked against hand-computed values and the published per-ReLU constants.

extern crate std;

use std::vec;
use std::vec::Vec;

use super::*;
use crate::Shape;
use crate::spec::{LayerSpec, MaskSpec, ModelSpec, OpSpec};

/// 1×4×4 → conv 3×3 pad 1 (2 ch) → ReLU keeping 5 of 32 → avg pool 2 → flatten → linear 3.
fn small_model() -> Vec<u8> {
    let mut keep = vec![false; 32];
    for i in [0, 3, 9, 17, 31] {
        keep[i] = true;
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
                weight_frac_bits: 8,
                weights: vec![1; 18],
                bias: None,
            }),
            LayerSpec::new(OpSpec::MaskedRelu {
                mask: MaskSpec::Elements(keep),
            }),
            LayerSpec::new(OpSpec::AvgPool2d {
                kernel: 2,
                stride: 2,
            }),
            LayerSpec::new(OpSpec::Flatten),
            LayerSpec::new(OpSpec::Linear {
                out_features: 3,
                weight_frac_bits: 8,
                weights: vec![1; 24],
                bias: None,
            }),
        ],
    }
    .to_bytes()
    .expect("valid model")
}

#[test]
fn ring_gc_small_network_matches_hand_computation() {
    let bytes = small_model();
    let model = Model::parse(&bytes).unwrap();
    let r = CostModel::new(Protocol::RingGc, CORTEX_M4_64, LTE).estimate(&model);
    let t = r.total;
    // conv 16·8 up; ReLU 5·8 up + 5·1024 down; linear 8·8 up; output 3·8 down.
    assert_eq!(
        t.online,
        Traffic {
            up: 128 + 40 + 64,
            down: 5 * 1024 + 24
        }
    );
    assert_eq!(t.output_bytes, 24);
    // conv ↑ (ReLU re-share ↑ merges) ↓ labels, linear ↑, output ↓.
    assert_eq!(t.flights, 4);
    assert_eq!(t.relus_kept, 5);
    assert_eq!(t.relus_total, 32);
    assert_eq!(t.and_gates, 5 * 189);
    // Offline: 2 linear layers × one BFV ciphertext each way; per ReLU 64 OTs (16 B up, 32 B
    // down), 6048 B of tables, 1024 B of mask labels, 8 B of decoding bits.
    assert_eq!(t.offline.up, 2 * 446_464 + 5 * 64 * 16);
    assert_eq!(
        t.offline.down,
        2 * 446_464 + 5 * (6048 + 1024 + 8 + 64 * 32)
    );
    assert_eq!(t.client_storage, 32 * 8 + 5 * 8104 + 3 * 8);
    assert_eq!(t.server_storage, 32 * 8 + 5 * (1024 + 8) + 3 * 8);
    assert_eq!(t.fit, MemoryFit::Ram);
    // Cycles: masks for 16 + 8 inputs, 5 garbled ReLUs on the M4 profile (694 AES blocks and
    // 189 ANDs' other work each, plus the re-share mask).
    let chacha = M4_CHACHA_PER_BYTE;
    let per_relu = 694 * M4_SOFT_AES_PER_BLOCK + 189 * M4_GC_AND_OVERHEAD + 8 * chacha;
    assert_eq!(t.client_cycles, (16 + 8) * 8 * chacha + 5 * per_relu);
    // Latency: 4 half-RTTs of 25 ms, bytes at 10/30 Mbit/s, compute at 64 MHz (all rounded up).
    let transfer = (232u64 * 8 * 1_000_000).div_ceil(10_000_000)
        + ((5 * 1024 + 24) * 8 * 1_000_000u64).div_ceil(30_000_000);
    let compute = (t.client_cycles * 1_000_000).div_ceil(64_000_000);
    assert_eq!(t.online_latency_us, 4 * 25_000 + transfer + compute);
    // Rows: one per layer, the ReLU row carries the GC figures.
    assert_eq!(r.layers.len(), 5);
    assert_eq!(r.layers[1].kind, LayerKind::Relu);
    assert_eq!(r.layers[1].flights, 2);
    assert_eq!(r.layers[2].online, Traffic::default());
    assert_eq!((t.delivery, t.streamed), (Delivery::Stored, 0));
}

#[test]
fn streamed_material_moves_into_the_online_phase() {
    let bytes = small_model();
    let model = Model::parse(&bytes).unwrap();
    let stored = CostModel::new(Protocol::RingGc, CORTEX_M4_64, LTE)
        .estimate(&model)
        .total;
    let streamed = CostModel::new(Protocol::RingGc, CORTEX_M4_64, LTE)
        .with_delivery(Delivery::Streamed)
        .estimate(&model);
    let t = streamed.total;
    assert_eq!(t.delivery, Delivery::Streamed);
    // Everything the client would store arrives online: the two linear shares and 5 ReLUs.
    assert_eq!(t.streamed, stored.client_storage);
    assert_eq!(t.online.down, stored.online.down + stored.client_storage);
    assert_eq!(t.online.up, stored.online.up);
    // The conv's share opens the inference with a down flight of its own; the linear layer's
    // share rides in the ReLU's down flight.
    assert_eq!(t.flights, stored.flights + 1);
    assert_eq!(streamed.layers[0].first, Some(Direction::Down));
    assert!(t.online_latency_us > stored.online_latency_us);
    // Auto delivery streams exactly when the material fits neither RAM nor flash.
    let tiny = DeviceProfile {
        sram_bytes: 1024,
        flash_bytes: 2048,
        ..CORTEX_M4_64
    };
    let auto = CostModel::new(Protocol::RingGc, tiny, LTE)
        .estimate(&model)
        .total;
    assert_eq!(
        (auto.fit, auto.delivery),
        (MemoryFit::Stream, Delivery::Streamed)
    );
    assert_eq!(auto.online, t.online);
}

#[test]
fn delphi_small_network_matches_hand_computation() {
    let bytes = small_model();
    let model = Model::parse(&bytes).unwrap();
    let t = CostModel::new(Protocol::Delphi, PHONE, WAN)
        .estimate(&model)
        .total;
    assert_eq!(
        t.online,
        Traffic {
            up: 128 + 64,
            down: 5 * 1184 + 24
        }
    );
    assert_eq!(t.flights, 4);
    assert_eq!(t.and_gates, 5 * 288);
    assert_eq!(t.offline.down, 2 * 446_464 + 5 * (15_896 + 1_176 + 1_344));
    assert_eq!(t.offline.up, 2 * 446_464 + 5 * 672);
    assert_eq!(t.client_storage, 32 * 8 + 5 * 18_248 + 3 * 8);
    assert_eq!(t.server_storage, 32 * 8 + 5 * 3_590 + 3 * 8);
}

#[test]
fn per_relu_constants_match_the_research_notes() {
    assert_eq!(Protocol::Delphi.and_gates_per_relu(), 288);
    assert_eq!(DELPHI_GC_BYTES, 8 + 662 * 24);
    assert_eq!(DELPHI_GC_BYTES, 15_896);
    assert_eq!(DELPHI_CLIENT_STORAGE, 18_248);
    assert_eq!(Protocol::RingGc.and_gates_per_relu(), 3 * 64 - 3);
    let cf2 = |bits| Protocol::by_name("cryptflow2", bits).unwrap();
    let cheetah = |bits| Protocol::by_name("cheetah", bits).unwrap();
    let bytes = |p: Protocol| p.ot_relu_bytes().unwrap().total_bytes();
    assert_eq!(bytes(cf2(32)), 532);
    assert_eq!(bytes(cf2(64)), 1105);
    assert_eq!(bytes(cheetah(32)), 52);
    assert_eq!(bytes(cheetah(41)), 68);
    assert_eq!(cf2(32).ot_relu_flights(), 5);
    assert_eq!(cf2(41).ot_relu_flights(), 6);
    assert_eq!(cheetah(64).ot_relu_flights(), 6);
    assert_eq!(cheetah(32).setup_bytes(), 1_730_000);
    assert!(cf2(32).interactive_truncation());
    assert!(!cf2(64).interactive_truncation());
    assert!(matches!(
        Protocol::by_name("cheetah", 16),
        Err(ProtocolParseError::UnsupportedBits { bits: 16 })
    ));
    assert!(Protocol::by_name("yao", 64).is_err());
}

#[test]
fn ot_protocols_scale_with_kept_relus_and_pay_truncation_below_64_bits() {
    let bytes = small_model();
    let model = Model::parse(&bytes).unwrap();
    let t64 = CostModel::new(Protocol::CrypTFlow2 { bits: 64 }, PHONE, LAN)
        .estimate(&model)
        .total;
    // 5 ReLUs at 958.5 B up / 146.5 B down, rounded up per layer; linear words of 8 B.
    assert_eq!(t64.online.up, 128 + 64 + 4793);
    assert_eq!(t64.online.down, 733 + 24);
    assert_eq!(t64.offline.down, 2 * 446_464);
    assert_eq!(t64.client_storage, (32 + 3) * 8);
    let t32 = CostModel::new(Protocol::CrypTFlow2 { bits: 32 }, PHONE, LAN)
        .estimate(&model)
        .total;
    // ℓ = 32: 4-byte words, and the 32 conv + 8 pool + 3 linear outputs are truncated
    // interactively (one ReLU's bytes each).
    let truncated = 32 + 8 + 3;
    assert_eq!(
        t32.online.up,
        64 + 32
            + (5 * 4548u64).div_ceil(10)
            + (32 * 4548u64).div_ceil(10)
            + (8 * 4548u64).div_ceil(10)
            + (3 * 4548u64).div_ceil(10)
    );
    assert!(t32.online.total() > (5 + truncated) * 531);
}

#[test]
fn memory_fit_follows_the_device() {
    let bytes = small_model();
    let model = Model::parse(&bytes).unwrap();
    // 40 KB of Delphi material per 5 ReLUs... 91 KB: beyond the M0+'s 32 KiB RAM, within flash.
    let m0 = CostModel::new(Protocol::Delphi, CORTEX_M0PLUS_48, BLE).estimate(&model);
    assert_eq!(m0.total.fit, MemoryFit::Flash);
    let phone = CostModel::new(Protocol::Delphi, PHONE, BLE).estimate(&model);
    assert_eq!(phone.total.fit, MemoryFit::Ram);
    assert!(DeviceProfile::by_name("cortex-m4-100").is_some());
    assert!(LinkProfile::by_name("ble").is_some());
    assert!(LinkProfile::by_name("carrier-pigeon").is_none());
}
