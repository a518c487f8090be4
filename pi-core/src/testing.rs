//! Small example models for documentation, tests and benchmarks on any target.

/// A 1×4×4 input, conv 3×3 (2 channels, padding 1), masked ReLU (some elements kept), 2×2
/// average pool, flatten, linear to 3 outputs. Activation frac bits 8. This is the golden file
/// `tests/golden/tiny.pic`, checked byte for byte by the tests.
pub const TINY_MODEL: &[u8] = include_bytes!("../tests/golden/tiny.pic");
