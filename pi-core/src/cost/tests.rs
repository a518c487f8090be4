//! Cost figures checked against hand-computed values and the published per-ReLU constants.

extern crate std;

use std::vec;
use std::vec::Vec;

use super::*;
use crate::Shape;
use crate::spec::{LayerSpec, MaskSpec, ModelSpec, OpSpec};

/// One of Delphi's BFV ciphertexts as SEAL serializes it (`scripts/he-sizes.py`).
const CT: u64 = 432_312;

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
    // Offline: Delphi's HE: the conv uploads its one input ciphertext and its 9 rotations'
    // worth (9), the linear layer one; one ciphertext back each; per ReLU 64 OTs (16 B up,
    // 32 B down), 6048 B of tables, 1024 B of mask labels, 8 B of decoding bits.
    assert_eq!(t.offline.up, 10 * CT + 5 * 64 * 16);
    assert_eq!(t.offline.down, 2 * CT + 5 * (6048 + 1024 + 8 + 64 * 32));
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
    assert_eq!(t.offline.down, 2 * CT + 5 * (15_896 + 1_176 + 1_344));
    assert_eq!(t.offline.up, 10 * CT + 5 * 672);
    assert_eq!(t.client_storage, 32 * 8 + 5 * 18_248 + 3 * 8);
    assert_eq!(t.server_storage, 32 * 8 + 5 * 3_590 + 3 * 8);
}

/// Every per-ReLU constant against the figure it reproduces (docs/PROTOCOL.md §5 cites each).
#[test]
fn per_relu_constants_match_their_cited_figures() {
    // Delphi: 288 ANDs [C]; 662 blocks serialized at 24 B plus an 8-byte length = Cryptonite's
    // measured 15 896 B per GC [D]; 42 labels at 28 B [D]; client storage 18 248 B [D];
    // the garbler's 3 590 B [D], Garimella et al.'s ≈3.6 KB with the client as garbler.
    let delphi = Protocol::Delphi.relu_price();
    assert_eq!(delphi.and_gates, 288);
    assert_eq!(DELPHI_GC_BYTES, 8 + 662 * 24);
    assert_eq!(DELPHI_GC_BYTES, 15_896);
    assert_eq!(DELPHI_MASK_LABEL_BYTES, 42 * 28);
    assert_eq!(DELPHI_ONLINE_LABEL_BYTES, 42 * 28 + 8);
    assert_eq!(DELPHI_OT_RECEIVER_BYTES, 42 * 16);
    assert_eq!(delphi.client_storage, 18_248);
    assert_eq!(delphi.server_storage, 3_590);
    assert_eq!(delphi.online.down_deci, 11_840);
    assert_eq!(delphi.offline_down, 15_896 + 1_176 + 1_344);
    // ring-gc: 3ℓ − 3 ANDs, 8 104 B of client material, 1 KiB of labels online (measured equal by
    // protocol-sim run).
    let ring = Protocol::RingGc.relu_price();
    assert_eq!(ring.and_gates, 3 * 64 - 3);
    assert_eq!(ring.client_storage, 189 * 32 + 64 * 16 + 64 * 16 + 8);
    assert_eq!(ring.online.up_deci + ring.online.down_deci, 10 * (8 + 1024));
    assert_eq!(ring.online_work.aes_blocks, 694);
    // client-garbler: the same circuit the other way; the client keeps nothing per ReLU and
    // garbles with 1 388 AES blocks.
    let cg = Protocol::ClientGarbler.relu_price();
    assert_eq!(cg.client_storage, 0);
    assert_eq!(cg.offline_up, 189 * 32 + 64 * 16 + 8 + 64 * 32);
    assert_eq!(cg.server_storage, ring.client_storage + 8);
    assert_eq!(cg.offline_work.aes_blocks, 1388);
    assert_eq!((cg.online.up_deci, cg.online.down_deci), (10_240, 80));
    // CrypTFlow2 and Cheetah, measured [X].
    let cf2 = |bits| Protocol::by_name("cryptflow2", bits).unwrap();
    let cheetah = |bits| Protocol::by_name("cheetah", bits).unwrap();
    let bytes = |p: Protocol| p.ot_relu_bytes().unwrap().total_bytes();
    assert_eq!(bytes(cf2(32)), 532);
    assert_eq!(bytes(cf2(37)), 587);
    assert_eq!(bytes(cf2(41)), 661);
    assert_eq!(bytes(cf2(64)), 1105);
    assert_eq!(bytes(cheetah(32)), 52);
    assert_eq!(bytes(cheetah(37)), 57);
    assert_eq!(bytes(cheetah(41)), 68);
    assert_eq!(bytes(cheetah(64)), 101);
    assert_eq!(cf2(32).relu_flights(), 5);
    assert_eq!(cf2(41).relu_flights(), 6);
    assert_eq!(cheetah(64).relu_flights(), 6);
    assert_eq!(FERRET_SETUP_BYTES, 1_730_000);
    assert!(cf2(32).interactive_truncation());
    assert!(!cf2(64).interactive_truncation());
    assert!(matches!(
        Protocol::by_name("cheetah", 16),
        Err(ProtocolParseError::UnsupportedBits { bits: 16 })
    ));
    assert!(Protocol::by_name("yao", 64).is_err());
    for name in Protocol::NAMES {
        assert_eq!(Protocol::by_name(name, 64).unwrap().name(), name);
    }
}

#[test]
fn ot_protocols_run_linear_layers_with_online_he_and_pay_truncation_below_64_bits() {
    let bytes = small_model();
    let model = Model::parse(&bytes).unwrap();
    let t64 = CostModel::new(Protocol::CrypTFlow2 { bits: 64 }, PHONE, LAN)
        .estimate(&model)
        .total;
    // Conv and linear: one fresh ciphertext up, one mod-switched back, online; 5 ReLUs at
    // 958.5 B up / 146.5 B down, rounded up per layer; the output share.
    let (up, down) = (393_350, 262_275);
    assert_eq!(t64.online.up, 2 * up + 4793);
    assert_eq!(t64.online.down, 2 * down + 733 + 24);
    // No preprocessing, nothing stored.
    assert_eq!(t64.offline, Traffic::default());
    assert_eq!((t64.client_storage, t64.server_storage), (0, 0));
    let t32 = CostModel::new(Protocol::CrypTFlow2 { bits: 32 }, PHONE, LAN)
        .estimate(&model)
        .total;
    // ℓ = 32: the 32 conv + 8 pool + 3 linear outputs are truncated interactively (one ReLU's
    // bytes each).
    assert_eq!(
        t32.online.up,
        2 * up
            + (5 * 4548u64).div_ceil(10)
            + (32 * 4548u64).div_ceil(10)
            + (8 * 4548u64).div_ceil(10)
            + (3 * 4548u64).div_ceil(10)
    );
}

#[test]
fn cheetah_runs_linear_layers_with_online_he_on_its_own_parameters() {
    let bytes = small_model();
    let model = Model::parse(&bytes).unwrap();
    let r = CostModel::new(Protocol::Cheetah { bits: 64 }, PHONE, WAN).estimate(&model);
    let t = r.total;
    // Conv: 6×6 padded plane, 113 channels per 4096-coefficient ciphertext: 1 query (64 KiB),
    // and one reply per output channel (2), each its c1 (32 KiB) plus its 16 outputs; linear:
    // 1 query, 1 reply with 3 outputs.
    assert_eq!(
        r.layers[0].online,
        Traffic {
            up: 65_536,
            down: 2 * 32_768 + 32 * 8
        }
    );
    assert_eq!(r.layers[0].flights, 2);
    assert_eq!(
        r.layers[4].online,
        Traffic {
            up: 65_536,
            down: 32_768 + 3 * 8
        }
    );
    assert_eq!(t.offline, Traffic::default());
    assert_eq!(t.client_storage, 0);
    let relu = OtReluBytes::cheetah(64).unwrap();
    assert_eq!(r.layers[1].online.up, (5 * relu.up_deci).div_ceil(10));
    assert_eq!(t.online.up, 2 * 65_536 + (5 * relu.up_deci).div_ceil(10));
    // Setup: the client's public keys and Ferret's bootstrap each way, on its own line.
    assert_eq!(t.setup.up, 4 * 65_536 + 1_730_000);
    assert_eq!(t.setup.down, 1_730_000);
}

#[test]
fn setup_is_a_one_time_term_outside_the_per_inference_figures() {
    let bytes = small_model();
    let model = Model::parse(&bytes).unwrap();
    let keys = (541_690 + 52_041_690 + 2_167_016) / 2;
    for p in [Protocol::Delphi, Protocol::RingGc, Protocol::ClientGarbler] {
        let t = CostModel::new(p, PHONE, WAN).estimate(&model).total;
        assert_eq!(
            t.setup,
            Traffic {
                up: keys + 4096,
                down: 4096
            },
            "{p}"
        );
        assert_eq!(t.setup_latency_us, WAN.transfer_us(keys + 4096, 4096));
        // Offline still counts only per-inference material: no keys in it.
        assert!(t.offline.up < keys, "{p}");
    }
    let cf2 = CostModel::new(Protocol::CrypTFlow2 { bits: 64 }, PHONE, WAN)
        .estimate(&model)
        .total;
    assert_eq!(cf2.setup.up, (511_238 + 36_799_918) / 2 + 2 * 4096);
}

#[test]
fn client_garbler_small_network_matches_hand_computation() {
    let bytes = small_model();
    let model = Model::parse(&bytes).unwrap();
    let r = CostModel::new(Protocol::ClientGarbler, CORTEX_M4_64, BLE).estimate(&model);
    let t = r.total;
    // Online: conv 16·8 up; ReLU 5·8 down (the server's re-share) and 5·1024 up (the client's
    // labels); linear 8·8 up; output 3·8 down.
    assert_eq!(
        t.online,
        Traffic {
            up: 128 + 5 * 1024 + 64,
            down: 40 + 24
        }
    );
    // conv ↑, ReLU ↓ ↑ (the labels merge with the linear layer's ↑), output ↓.
    assert_eq!(t.flights, 4);
    assert_eq!(
        (r.layers[1].first, r.layers[1].flights),
        (Some(Direction::Down), 2)
    );
    // Offline: the circuits go up (6048 + 1024 + 8 B each) with the OT sender's 64 × 32 B;
    // the server's OT receiver matrix comes down.
    assert_eq!(t.offline.up, 10 * CT + 5 * (6048 + 1024 + 8 + 64 * 32));
    assert_eq!(t.offline.down, 2 * CT + 5 * 64 * 16);
    // The client stores only the linear shares; the server the circuits, its labels and p.
    assert_eq!(t.client_storage, (32 + 3) * 8);
    assert_eq!(t.server_storage, (32 + 3) * 8 + 5 * (7080 + 1024 + 8));
    // Online the client regenerates 64 labels and r' and encodes; offline it garbles.
    let online = 1032 * M4_CHACHA_PER_BYTE + 64 * CORTEX_M4_64.word_op_cycles;
    assert_eq!(
        t.client_cycles,
        (16 + 8) * 8 * M4_CHACHA_PER_BYTE + 5 * online
    );
    let garble = 1388 * M4_SOFT_AES_PER_BLOCK
        + 189 * M4_GC_GARBLE_AND_OVERHEAD
        + (3 * 1024 + 8) * M4_CHACHA_PER_BYTE
        + 128 * CORTEX_M4_64.word_op_cycles;
    assert_eq!(t.client_offline_cycles, 5 * garble);
    let compute = (t.client_offline_cycles * 1_000_000).div_ceil(64_000_000);
    assert_eq!(
        t.offline_latency_us,
        BLE.transfer_us(t.offline.up, t.offline.down) + compute
    );
    // Against server-garbler on the same device: far less online compute and storage.
    let ring = CostModel::new(Protocol::RingGc, CORTEX_M4_64, BLE)
        .estimate(&model)
        .total;
    let ring_rows = CostModel::new(Protocol::RingGc, CORTEX_M4_64, BLE).estimate(&model);
    assert!(r.layers[1].client_cycles * 50 < ring_rows.layers[1].client_cycles);
    assert!(t.client_storage < ring.client_storage);
    assert_eq!(t.online.total(), ring.online.total());
}

#[test]
fn the_verdict_refuses_a_256_kib_device_for_every_he_based_protocol() {
    let bytes = small_model();
    let model = Model::parse(&bytes).unwrap();
    let protocols = [
        Protocol::Delphi,
        Protocol::RingGc,
        Protocol::ClientGarbler,
        Protocol::CrypTFlow2 { bits: 64 },
        Protocol::Cheetah { bits: 32 },
    ];
    for p in protocols {
        let m = CostModel::new(p, CORTEX_M4_64, BLE)
            .estimate(&model)
            .total
            .client_memory;
        assert_eq!(m.ram, 256 * 1024);
        assert_eq!(m.verdict, Verdict::DoesNotFit, "{p}");
        let (_, w) = m.memory.peak_working();
        assert!(
            matches!(w.largest, WorkingItem::HeCiphertext | WorkingItem::OtBuffer),
            "{p}: {:?}",
            w.largest
        );
        let reason = std::format!("{}", m.reason());
        assert!(reason.contains("RAM is 262144 B"), "{reason}");
        // A phone holds all of it.
        let phone = CostModel::new(p, PHONE, BLE)
            .estimate(&model)
            .total
            .client_memory;
        assert_eq!(phone.verdict, Verdict::Fits, "{p}");
    }
    // HE ciphertext and key of Delphi's parameters in the preprocessing phase.
    let m = CostModel::new(Protocol::Delphi, CORTEX_M4_64, BLE)
        .estimate(&model)
        .total
        .client_memory;
    assert_eq!(m.memory.offline.largest_bytes, 524_288 + 327_680);
    // Cheetah's silent-OT buffer alone is beyond any microcontroller, online.
    let c = CostModel::new(Protocol::Cheetah { bits: 32 }, CORTEX_M4_64, BLE)
        .estimate(&model)
        .total
        .client_memory;
    assert_eq!(c.online_verdict, Verdict::DoesNotFit);
    assert_eq!(c.memory.online.largest, WorkingItem::OtBuffer);
    // The GC protocols' online phase alone (preprocessing elsewhere) fits the M4.
    for p in [Protocol::RingGc, Protocol::ClientGarbler] {
        let m = CostModel::new(p, CORTEX_M4_64, BLE)
            .estimate(&model)
            .total
            .client_memory;
        assert_eq!(m.online_verdict, Verdict::Fits, "{p}");
    }
}

#[test]
fn online_verdict_says_fits_if_streamed_when_only_the_material_is_too_big() {
    let bytes = small_model();
    let model = Model::parse(&bytes).unwrap();
    // 5 ReLUs of ring-gc material (40 KB) on a device with 16 KiB of RAM and 32 KiB of flash:
    // one ReLU's 8 KB buffer and the arena fit, the material does not.
    let small = DeviceProfile {
        sram_bytes: 16 * 1024,
        flash_bytes: 32 * 1024,
        ..CORTEX_M4_64
    };
    let m = CostModel::new(Protocol::RingGc, small, BLE)
        .estimate(&model)
        .total
        .client_memory;
    assert_eq!(m.online_verdict, Verdict::FitsIfStreamed);
    let tiny = DeviceProfile {
        sram_bytes: 4 * 1024,
        ..small
    };
    let m = CostModel::new(Protocol::RingGc, tiny, BLE)
        .estimate(&model)
        .total
        .client_memory;
    assert_eq!(m.online_verdict, Verdict::DoesNotFit);
}

#[test]
fn budget_is_the_largest_count_meeting_the_target_for_any_mask() {
    let bytes = small_model();
    let model = Model::parse(&bytes).unwrap();
    for (p, with_offline) in [
        (Protocol::RingGc, false),
        (Protocol::ClientGarbler, true),
        (Protocol::CrypTFlow2 { bits: 32 }, false),
    ] {
        let m = CostModel::new(p, CORTEX_M4_64, BLE);
        let at = |n| m.bound_for(&model, n).latency_us(with_offline);
        // Monotone.
        for n in 0..32 {
            assert!(at(n) <= at(n + 1), "{p} at {n}");
        }
        let target = LatencyTarget {
            latency_us: (at(10) + at(11)) / 2,
            include_offline: with_offline,
        };
        let b = m.budget(&model, target).unwrap();
        assert!(b.latency_us <= target.latency_us);
        assert!(b.next_latency_us.unwrap() > target.latency_us, "{p}");
        // Any mask keeping that many ReLUs costs at most the bound.
        let mut spec = model.to_spec();
        let n = b.relus as usize;
        for keep in [
            (0..32).map(|i| i < n).collect::<Vec<_>>(),
            (0..32).map(|i| i >= 32 - n).collect(),
        ] {
            spec.layers[1].op = OpSpec::MaskedRelu {
                mask: MaskSpec::Elements(keep),
            };
            let masked = spec.to_bytes().unwrap();
            let t = m.estimate(&Model::parse(&masked).unwrap()).total;
            assert_eq!(t.relus_kept, b.relus);
            assert!(t.latency_us(with_offline) <= b.latency_us, "{p}");
        }
    }
    // A target below the no-ReLU floor is refused with the floor.
    let m = CostModel::new(Protocol::RingGc, CORTEX_M4_64, BLE);
    let err = m
        .budget(
            &model,
            LatencyTarget {
                latency_us: 1,
                include_offline: false,
            },
        )
        .unwrap_err();
    assert!(matches!(err, BudgetError::Unreachable { floor_us } if floor_us > 1));
    // A generous target keeps everything.
    let all = m
        .budget(
            &model,
            LatencyTarget {
                latency_us: u64::MAX,
                include_offline: true,
            },
        )
        .unwrap();
    assert_eq!((all.relus, all.next_latency_us), (32, None));
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

/// [`small_model`] with a second ReLU layer (8 sites) after a hidden linear layer.
fn two_relu_layers(first: &[bool], second: &[bool]) -> Vec<u8> {
    let mut spec = Model::parse(&small_model()).unwrap().to_spec();
    spec.layers[1].op = OpSpec::MaskedRelu {
        mask: MaskSpec::Elements(first.to_vec()),
    };
    let last = spec.layers.pop().unwrap();
    spec.layers.push(LayerSpec::new(OpSpec::Linear {
        out_features: 8,
        weight_frac_bits: 8,
        weights: vec![1; 64],
        bias: None,
    }));
    spec.layers.push(LayerSpec::new(OpSpec::MaskedRelu {
        mask: MaskSpec::Elements(second.to_vec()),
    }));
    let mut tail = last;
    if let OpSpec::Linear { weights, .. } = &mut tail.op {
        *weights = vec![1; 24];
    }
    spec.layers.push(tail);
    spec.to_bytes().unwrap()
}

#[test]
fn the_budget_bound_covers_every_placement_over_several_relu_layers() {
    let all = two_relu_layers(&[true; 32], &[true; 8]);
    let model = Model::parse(&all).unwrap();
    for p in [Protocol::RingGc, Protocol::ClientGarbler, Protocol::Delphi] {
        let m = CostModel::new(p, CORTEX_M4_64, LTE);
        for n in 1..=6usize {
            let bound = m.bound_for(&model, n as u64).latency_us(true);
            // Every split of n kept ReLUs between the two layers, including all in one.
            for a in 0..=n {
                let first: Vec<bool> = (0..32).map(|i| i < a).collect();
                let second: Vec<bool> = (0..8).map(|i| i < n - a).collect();
                let bytes = two_relu_layers(&first, &second);
                let t = m.estimate(&Model::parse(&bytes).unwrap()).total;
                assert_eq!(t.relus_kept, n as u64);
                assert!(t.latency_us(true) <= bound, "{p}: {a} + {} of {n}", n - a);
            }
        }
    }
}
