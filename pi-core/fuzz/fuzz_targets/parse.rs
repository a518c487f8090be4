//! Any byte string given to the parser returns Ok or a typed error, never panics, never loops
//! forever, never reads out of bounds; and any model that parses runs without failing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pi_core::{Error, Model, ParseOptions};

/// Keep each run small: the fuzzer should explore formats, not multiply huge tensors. The same
/// figure a server would cap (`Model::ops`); it also bounds the arena to `2 · MAX_OPS` words.
const MAX_OPS: u64 = 1 << 22;

fuzz_target!(|data: &[u8]| {
    // Give the fuzzer a head start past the magic and version, which it would otherwise have
    // to guess before reaching any layer code; and past a v2 file's CRC-32, which it could
    // never guess: a first byte with low bits `10` means "the rest is a v2 file without its
    // CRC", which is appended here (run.sh seeds the golden v2 file that way).
    let mut bytes = Vec::with_capacity(data.len() + 5);
    match data.first() {
        Some(b) if b & 1 == 1 => {
            bytes.extend_from_slice(b"PIC1\x01");
            bytes.extend_from_slice(&data[1..]);
        }
        Some(b) if b & 3 == 2 => {
            bytes.extend_from_slice(&data[1..]);
            let crc = pi_core::crc::crc32(&bytes);
            bytes.extend_from_slice(&crc.to_le_bytes());
        }
        _ => bytes.extend_from_slice(data),
    }
    let options = ParseOptions::new().with_max_ops(MAX_OPS);
    let model = match Model::parse_with(&bytes, &options) {
        Ok(model) => model,
        Err(Error::TooMuchWork { ops, limit }) => {
            // Rejected for its work alone: without the limit it parses, with that exact cost.
            assert_eq!(limit, MAX_OPS);
            let unlimited = Model::parse(&bytes).expect("only the limit rejected it");
            assert!(ops > MAX_OPS && unlimited.ops() == ops);
            return;
        }
        Err(_) => return,
    };
    assert!(model.ops() <= MAX_OPS);
    assert!(model.arena_words() as u64 <= 2 * model.ops());
    let input = vec![-3000; model.input_shape().elements()];
    let mut arena = vec![0; model.arena_words()];
    let output = model.infer(&input, &mut arena).expect("a parsed model always runs");
    assert_eq!(output.len(), model.output_shape().elements());
    let relus = model.relu_count();
    assert!(relus.kept <= relus.total);
});
