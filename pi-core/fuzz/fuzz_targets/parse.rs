//! Any byte string given to the parser returns Ok or a typed error, never panics, never loops
//! forever, never reads out of bounds; and any model that parses runs without failing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pi_core::Model;

fuzz_target!(|data: &[u8]| {
    // Give the fuzzer a head start past the magic and version, which it would otherwise have
    // to guess before reaching any layer code.
    let mut bytes = Vec::with_capacity(data.len() + 5);
    if data.first().is_some_and(|b| b & 1 == 1) {
        bytes.extend_from_slice(b"PIC1\x01");
        bytes.extend_from_slice(&data[1..]);
    } else {
        bytes.extend_from_slice(data);
    }
    let Ok(model) = Model::parse(&bytes) else {
        return;
    };
    // Keep each run small: the fuzzer should explore formats, not multiply huge tensors.
    if model.arena_words() > 1 << 20 || model.macs() > 1 << 22 {
        return;
    }
    let input = vec![-3000; model.input_shape().elements()];
    let mut arena = vec![0; model.arena_words()];
    let output = model.infer(&input, &mut arena).expect("a parsed model always runs");
    assert_eq!(output.len(), model.output_shape().elements());
    let relus = model.relu_count();
    assert!(relus.kept <= relus.total);
});
