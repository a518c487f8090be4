//! Benchmarks: shared fixtures.
