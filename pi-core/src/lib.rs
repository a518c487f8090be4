//! # pi-core
//!
//! The client core of a private-inference (PI) toolkit: a `#![no_std]`, heap-free engine for
//! CNNs whose ReLUs have been partly replaced by the identity ("linearized"), because in PI every
//! ReLU costs a garbled circuit or an OT comparison while linear layers are cheap.
//!
//! * [`Model::parse`] validates a model file once: magic, version, every shape, length, ReLU mask,
//!   tensor reference and accumulator bound, plans the activation buffer and counts the work of
//!   one inference ([`Model::ops`]). Any byte string gives `Ok` or a typed [`Error`]; it never
//!   panics. [`Model::parse_with`] also rejects models above a caller's work limit
//!   ([`ParseOptions`]).
//! * [`Model::infer`] then runs in a caller-provided `i32` arena of [`Model::arena_words`] words.
//!   Weights are borrowed from the file bytes (a model in flash stays in flash).
//! * [`Model::relu_count`] is the number PI pays for.
//! * [`share`] is the client's side of a Delphi-style private inference: additive shares over
//!   `Z_2^64` at the same scales, a half-gates garbled ReLU (fixed-key AES) and the online
//!   phase over a caller-supplied transport; [`cost`] prices a model's private inference
//!   (Delphi, ring-GC, client-garbler, CrypTFlow2, Cheetah) on a device and link: bytes per
//!   phase, setup, latency, both parties' memory with the device verdict, and the ReLU budget that
//!   meets a latency target. See `docs/PROTOCOL.md`.
//!
//! ```
//! # fn main() -> Result<(), pi_core::Error> {
//! let model = pi_core::Model::parse(pi_core::testing::TINY_MODEL)?;
//! let mut arena = [0i32; 64];
//! let image = [0.5f32; 16];
//! let mut input = [0i32; 16];
//! for (q, x) in input.iter_mut().zip(image) {
//!     *q = pi_core::fixed::quantize(x, model.activation_frac_bits());
//! }
//! let logits = model.infer(&input, &mut arena)?;
//! let class = pi_core::fixed::argmax(logits);
//! let relus = model.relu_count();
//! assert!(class < 3 && relus.kept <= relus.total);
//! # Ok(()) }
//! ```
//!
//! ## Numbers
//!
//! Fixed point throughout; the rules live in [`fixed`]. Activations are `i32` (or `i16`, a
//! format v2 option) at one model-wide scale `2^a`. Conv and linear layers hold `i16` weights
//! (or `i8`, format v2) at a per-layer scale `2^s` and `i32`
//! biases at `2^(a+s)`, accumulate exactly in `i64` (parsing proves no accumulator can reach
//! `2^62`; convolutions whose inputs fit `i16` run on dual 16-bit MACs, in `i32` where parsing
//! also proves `|bias| + 2^15 · Σ|w| + 2^(s-1) < 2^31`, with the same result), then round half up by `s` bits and saturate to `i32`. Pools divide their exact `i64`
//! sum by the pool size `n` and round half up, exactly for every `n` ([`fixed::pool_mean`]).
//! Residual adds saturate. Secret-shared evaluation uses
//! the same scales, so a reconstructed private result can be compared with the plaintext one.
//!
//! ## Cost and limits
//!
//! Parsing counts the work of one inference in **ops**, one unit per elementary step of the
//! engine, whatever the kernel:
//!
//! | Step | Ops |
//! |---|---|
//! | copying the input into the arena | its elements |
//! | Conv2d | multiply-accumulates: `out elements · in channels · kh · kw` (padding taps included) |
//! | Linear | multiply-accumulates: `out · in` |
//! | AvgPool2d | input elements summed: `out elements · kernel²` |
//! | GlobalAvgPool | input elements summed: `C · H · W` |
//! | MaskedRelu, Add, Flatten | elements written: the output's elements |
//!
//! [`Layer::ops`] gives a layer's share, [`Model::ops`] the total ([`Model::macs`] still counts
//! only multiply-accumulates). Every step is a bounded amount of machine work, so ops bound an
//! inference's time up to a constant per target; they also bound its memory,
//! [`Model::arena_words`] `<= 2 · ops`. Because the figure is known once the file is validated,
//! a caller that takes model files from elsewhere (a server, the fuzzer) sets
//! [`ParseOptions::max_ops`] and [`Model::parse_with`] rejects heavier models with
//! [`Error::TooMuchWork`], which reports the model's exact ops. For example, the 16-byte file
//! `PIC1 01 00 01 80 08 80 08 01 00 03 FF 01` (one AvgPool2d, kernel 255, stride 1, on a
//! 1x1024x1024 input) costs `1024² + 770² · 255² = 38,554,371,076` ops although it has no
//! multiply-accumulate.
//!
//! ## Model format v1
//!
//! A file is the 4 magic bytes `PIC1` followed by [postcard](https://postcard.jamesmunns.com)
//! records. Postcard writes `u8` as one byte, `u16`/`u32` as LEB128 varints (7 bits per byte,
//! low first, high bit = more), enums as a varint variant index followed by the fields, and byte
//! strings as a varint length followed by the raw bytes (borrowed zero-copy when parsing).
//!
//! | Bytes | Field | Encoding |
//! |---|---|---|
//! | 0..4 | magic | `50 49 43 31` (`PIC1`) |
//! | | version | `u16` varint, `01` |
//! | | activation frac bits `a` | `u8` (0..=24) |
//! | | input channels, height, width | 3 × `u16` varint |
//! | | layer count | `u16` varint (1..=[`MAX_LAYERS`]) |
//! | | layers | `layer count` layer records, nothing after the last |
//!
//! A layer record is its input tensor id (`u16` varint: 0 = model input, `k` = output of layer
//! `k-1`, must be `<=` the layer's own index) then the operation, a varint variant index:
//!
//! | Index | Operation | Fields after the index |
//! |---|---|---|
//! | 0 | Conv2d | out channels `u16`; kernel h `u8`; kernel w `u8`; stride `u8`; padding `u8` (< kernel); weight frac bits `u8` (<= 30); weights: byte string of `out·in·kh·kw` LE `i16`, `[out][in][kh][kw]`; bias: byte string, empty or `out` LE `i32` |
//! | 1 | Linear | out features `u16`; weight frac bits `u8`; weights: byte string of `out·in` LE `i16`, `[out][in]`; bias: byte string, empty or `out` LE `i32`. Input must be `(n,1,1)` |
//! | 2 | MaskedRelu | mask: varint tag then payload: `0` all kept; `1` none kept; `2` bitmap: byte string of `ceil(n/8)` bytes, bit `i%8` of byte `i/8`, unused bits 0; `3` indices: byte string of strictly increasing LE `u32` |
//! | 3 | AvgPool2d | kernel `u8`; stride `u8` (no padding) |
//! | 4 | GlobalAvgPool | none |
//! | 5 | Add | other tensor id `u16` varint (same shape as the input) |
//! | 6 | Flatten | none |
//!
//! Tensors are CHW. Every tensor has at most [`MAX_TENSOR_ELEMENTS`] elements and each
//! dimension fits a `u16`. The golden file `tests/golden/tiny.pic` is checked byte for byte.
//!
//! ## Model format v2
//!
//! Version 2 adds an integrity check, a per-model activation width and optional `i8` weights.
//! Everything not listed here is as in v1 (records, encodings, limits). v1 files still parse,
//! byte for byte as before; the writer (`spec`, feature `std`) writes v1 with `ModelSpec::to_bytes`
//! and either version with `ModelSpec::to_bytes_with`.
//!
//! | Bytes | Field | Encoding |
//! |---|---|---|
//! | 0..4 | magic | `50 49 43 31` (`PIC1`) |
//! | | version | `u16` varint, `02` |
//! | | activation frac bits `a` | `u8` (0..=24) |
//! | | activation bits | `u8`: `16` or `32` |
//! | | input channels, height, width | 3 × `u16` varint |
//! | | layer count | `u16` varint (1..=[`MAX_LAYERS`]) |
//! | | layers | `layer count` layer records |
//! | last 4 | CRC-32 | `u32` little-endian: CRC-32 (IEEE 802.3, reflected polynomial `0xEDB88320`, see [`crc`]) of every byte before it, magic included |
//!
//! `parse` reads the magic and the version, then checks the CRC-32 before it reads anything
//! else ([`Error::ChecksumMismatch`]); every single-bit error in a file is caught (a test flips
//! each bit of the golden v2 file). Layer records are v1's, plus two operations whose
//! weights are `i8` (one byte each, same order and scale `2^s`; everything else as v1's
//! Conv2d and Linear):
//!
//! | Index | Operation | Fields after the index |
//! |---|---|---|
//! | 7 | Conv2d, `i8` weights | as index 0, but weights: byte string of `out·in·kh·kw` `i8` |
//! | 8 | Linear, `i8` weights | as index 1, but weights: byte string of `out·in` `i8` |
//!
//! A v1 file naming index 7 or 8 is rejected. With **16-bit activations** every tensor holds
//! values in the `i16` range: the input is saturated to it when copied in, and conv, linear
//! and add outputs saturate to it when they are rounded (instead of to `i32`); pools and ReLUs
//! of `i16` values stay in range. Values still travel as `i32` in the arena. Then every
//! convolution runs on the dual 16-bit MAC kernels, and with `i8` weights the parse-time bound
//! `|bias| + 2^15 · Σ|w| + 2^(s-1) < 2^31` holds for any fan-in up to about 500, so they
//! accumulate in `i32`. The golden file `tests/golden/tiny-v2.pic` (16-bit activations, `i8`
//! conv and linear weights) is checked byte for byte.
//!
//! ## Unsafe code
//!
//! `unsafe_code` is denied crate-wide; only the Arm DSP helpers in the kernels allow it, for
//! inline assembly (`smlad`, `smlald`, `sxtb16` and one multiply-accumulate loop; stable Rust
//! has no intrinsics for them), each with its safety argument.
//!
//! ## Features
//!
//! * `std`: the writer (module `spec`) and conversions to owned types, for host tools.
//! * `defmt`: `defmt::Format` for the public types (firmware logging).
#![cfg_attr(not(test), no_std)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(any(feature = "std", test))]
extern crate std;

pub mod cost;
pub mod crc;
mod engine;
mod error;
pub mod fixed;
mod format;
mod kernels;
mod layer;
mod mask;
mod model;
mod plan;
pub mod share;
#[cfg(feature = "std")]
pub mod spec;
pub mod testing;

pub use error::Error;
pub use format::{FORMAT_VERSION, MAGIC, NumberFormat, OLDEST_FORMAT_VERSION, Shape};
pub use layer::{Bias, Conv2d, Layer, Linear, Op, WeightWidth, Weights};
pub use mask::{MaskEncoding, ReluMask};
pub use model::{Layers, MAX_LAYERS, MAX_TENSOR_ELEMENTS, Model, ParseOptions, ReluCount};
