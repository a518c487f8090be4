//! The cost model against the Cortex-M4 measurement committed by `scripts/pi-on-device.sh
//! --report firmware-example/pi/measured.txt`: the calibrated device profile must predict the
//! measured instructions per garbled ReLU within 10%, and its byte figures exactly. When the
//! garbling code changes, rerun the script, commit the file and recalibrate the profile
//! (`pi_core::cost::M4_*`) from its calibration lines.

use std::collections::HashMap;

use pi_core::Model;
use pi_core::cost::{
    BLE, CORTEX_M4_64, CostModel, M4_CHACHA_PER_BYTE, M4_GC_AND_OVERHEAD,
    M4_GC_GARBLE_AND_OVERHEAD, M4_SOFT_AES_PER_BLOCK, Protocol,
};
use pi_core::share::{Delivery, ReluPlan};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../firmware-example/pi");

fn measured() -> HashMap<String, String> {
    let text = std::fs::read_to_string(format!("{DIR}/measured.txt"))
        .expect("firmware-example/pi/measured.txt is committed");
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn number(m: &HashMap<String, String>, key: &str) -> f64 {
    m.get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("measured.txt lacks a number for {key}"))
}

#[test]
fn the_m4_profile_predicts_the_measured_garbled_relu_within_ten_percent() {
    let m = measured();
    let model_bytes = std::fs::read(format!("{DIR}/model.pic")).unwrap();
    let model = Model::parse(&model_bytes).unwrap();
    assert_eq!(
        number(&m, "relus_kept") as u64,
        model.relu_count().kept,
        "the measurement is of another model: rerun scripts/pi-on-device.sh --report"
    );
    // The run's ReLU protocol (the split ReLU's cost depends on its sign width only).
    let plan = match m.get("relu").map(String::as_str) {
        Some("split") => {
            let t = number(&m, "sign_bits") as u8;
            ReluPlan::split_with(&model, t, |_| t).unwrap()
        }
        _ => ReluPlan::full(),
    };
    let costs = CostModel::new(Protocol::RingGc, CORTEX_M4_64, BLE)
        .with_delivery(Delivery::Streamed)
        .with_relu_plan(plan);
    let params = plan.relu_layers(&model).next().unwrap().1;
    let estimate = costs.relu_cycles(params) as f64;
    let per_relu = number(&m, "insns_per_garbled_relu");
    let off = (estimate - per_relu).abs() / per_relu;
    assert!(
        off <= 0.10,
        "model {estimate} vs measured {per_relu}: {:.1}% off",
        100.0 * off
    );
    // The profile's constants are the calibration the same run measured.
    let near = |a: f64, b: u64| (a - b as f64).abs() <= 0.02 * a.max(1.0);
    assert!(near(
        number(&m, "aes_insns_per_block"),
        M4_SOFT_AES_PER_BLOCK
    ));
    assert!(near(
        number(&m, "gc_and_overhead_insns"),
        M4_GC_AND_OVERHEAD
    ));
    assert!(near(
        number(&m, "chacha_insns_per_byte"),
        M4_CHACHA_PER_BYTE
    ));
    assert!(near(
        number(&m, "gc_garble_and_overhead_insns"),
        M4_GC_GARBLE_AND_OVERHEAD
    ));
    // A client garbler's garbling of one ReLU (its AES blocks and the other work of its ANDs)
    // predicts the measured garbling region within 10%.
    let garble = pi_core::cost::ReluPrice::CLIENT_GARBLER.offline_work;
    let garble = pi_core::cost::Work {
        chacha_bytes: 0,
        word_ops: 0,
        ..garble
    }
    .cycles(&CORTEX_M4_64) as f64;
    let measured = number(&m, "garble_insns_calibration");
    assert!(
        (garble - measured).abs() <= 0.10 * measured,
        "garbling: model {garble} vs measured {measured}"
    );
    // Bytes and flights on the device are the cost model's, exactly.
    let t = costs.estimate(&model).total;
    assert_eq!(number(&m, "bytes_up") as u64, t.online.up);
    assert_eq!(number(&m, "bytes_down") as u64, t.online.down);
    assert_eq!(number(&m, "flights") as u32, t.flights);
    // And the device ran within the RAM budget the firmware README states.
    assert!(number(&m, "peak_ram_bytes") <= 64.0 * 1024.0);
}
