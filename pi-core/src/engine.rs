//! Plaintext inference over the caller's arena, following the buffer plan.

use core::ops::Range;

use crate::error::Error;
use crate::kernels;
use crate::layer::{Layer, Op, WeightWidth};
use crate::model::Model;

impl<'a> Model<'a> {
    /// Runs the model on a quantized input (CHW order, scale `2^activation_frac_bits`) and
    /// returns the output tensor, a slice of `arena`.
    ///
    /// `arena` must hold at least [`Model::arena_words`] words; its previous contents are
    /// ignored. Fails only on a wrong input length or a short arena.
    ///
    /// ```
    /// # fn main() -> Result<(), pi_core::Error> {
    /// let bytes = pi_core::testing::TINY_MODEL;
    /// let model = pi_core::Model::parse(bytes)?;
    /// let mut arena = [0i32; 64];
    /// let input = [256i32; 16]; // 1x4x4 image of ones at 8 frac bits
    /// let logits = model.infer(&input, &mut arena[..model.arena_words()])?;
    /// assert_eq!(logits.len(), model.output_shape().elements());
    /// # Ok(()) }
    /// ```
    pub fn infer<'b>(&self, input: &[i32], arena: &'b mut [i32]) -> Result<&'b [i32], Error> {
        self.infer_observed(input, arena, |_, _| {})
    }

    /// Like [`Model::infer`], and calls `observe(layer, output)` after each layer: for per-layer
    /// timing, instruction counts or comparisons with another implementation.
    pub fn infer_observed<'b>(
        &self,
        input: &[i32],
        arena: &'b mut [i32],
        mut observe: impl FnMut(&Layer<'a>, &[i32]),
    ) -> Result<&'b [i32], Error> {
        let plan = self.plan();
        let expected = self.input_shape().elements();
        if input.len() != expected {
            return Err(Error::InputLength {
                expected,
                found: input.len(),
            });
        }
        if arena.len() < plan.arena_words() {
            return Err(Error::BufferTooSmall {
                needed: plan.arena_words(),
                found: arena.len(),
            });
        }
        let first = arena.get_mut(plan.range(0)).ok_or(Error::Malformed)?;
        first.copy_from_slice(input);
        if self.activation_bits() == 16 {
            // A model with 16-bit activations holds every tensor in i16, its input too.
            kernels::saturate_i16(first);
        }
        for layer in self.layers() {
            let out = plan.range(layer.output());
            run_layer(&layer, plan.range(layer.input), out.clone(), self, arena)?;
            observe(&layer, arena.get(out).ok_or(Error::Malformed)?);
        }
        arena
            .get(plan.range(self.layer_count()))
            .ok_or(Error::Malformed)
    }
}

/// The readable part of the arena around one output range.
#[derive(Clone, Copy)]
struct Reader<'x> {
    before: &'x [i32],
    after: &'x [i32],
    after_start: usize,
}

impl<'x> Reader<'x> {
    /// Splits `arena` into the output range (mutable) and everything else (readable).
    fn split(arena: &'x mut [i32], out: Range<usize>) -> Option<(Self, &'x mut [i32])> {
        let (before, rest) = arena.split_at_mut_checked(out.start)?;
        let (output, after) = rest.split_at_mut_checked(out.len())?;
        let reader = Self {
            before,
            after,
            after_start: out.end,
        };
        Some((reader, output))
    }

    /// A read-only range that does not overlap the output.
    fn read(self, r: Range<usize>) -> Option<&'x [i32]> {
        if r.end <= self.before.len() {
            self.before.get(r)
        } else if r.start >= self.after_start {
            self.after
                .get(r.start - self.after_start..r.end - self.after_start)
        } else {
            None
        }
    }
}

fn run_layer(
    layer: &Layer<'_>,
    input: Range<usize>,
    out: Range<usize>,
    model: &Model<'_>,
    arena: &mut [i32],
) -> Result<(), Error> {
    // Only reached if the plan and the layer disagree, which validation rules out.
    let inconsistent = Error::Malformed;
    let in_place = input == out;
    let written = out.clone();
    let act16 = model.activation_bits() == 16;
    // Outputs that may leave i16 from i16 inputs, unless the kernel saturated them already:
    // rounded conv and linear results and sums. Pools and ReLUs stay within their inputs' range.
    let saturate = act16
        && match &layer.op {
            Op::Conv2d(c) => c.weights.width() != WeightWidth::I8,
            Op::Linear(_) | Op::Add { .. } => true,
            _ => false,
        };
    match &layer.op {
        Op::MaskedRelu(mask) => {
            if !in_place {
                copy(arena, input, out.start)?;
            }
            mask.apply(arena.get_mut(out).ok_or(inconsistent)?);
        }
        Op::Flatten => {
            if !in_place {
                copy(arena, input, out.start)?;
            }
        }
        Op::Add { other } => {
            let other = model.plan().range(*other);
            if in_place && other == out {
                kernels::double(arena.get_mut(out).ok_or(inconsistent)?);
            } else {
                if !in_place {
                    copy(arena, input, out.start)?;
                }
                let (reader, output) = Reader::split(arena, out).ok_or(inconsistent)?;
                kernels::add_into(output, reader.read(other).ok_or(inconsistent)?);
            }
        }
        op => {
            let (tensors, scratch) = arena
                .split_at_mut_checked(model.plan().tensor_words())
                .ok_or(inconsistent)?;
            let (reader, output) = Reader::split(tensors, out).ok_or(inconsistent)?;
            let x = reader.read(input).ok_or(inconsistent)?;
            let (ins, outs) = (layer.input_shape, layer.output_shape);
            match op {
                Op::Conv2d(c) => {
                    let narrow = model.narrow_accumulators(layer.index);
                    kernels::conv2d(c, ins, outs, x, output, scratch, narrow, act16)
                }
                Op::Linear(l) => kernels::linear(l, x, output),
                Op::AvgPool2d { kernel, stride } => {
                    kernels::avg_pool(*kernel, *stride, ins, outs, x, output)
                }
                Op::GlobalAvgPool => kernels::global_avg_pool(ins, x, output),
                _ => return Err(inconsistent),
            }
        }
    }
    if saturate {
        kernels::saturate_i16(arena.get_mut(written).ok_or(inconsistent)?);
    }
    Ok(())
}

/// `copy_within` that reports a bad range instead of panicking.
fn copy(arena: &mut [i32], from: Range<usize>, to: usize) -> Result<(), Error> {
    if from.end > arena.len() || to + from.len() > arena.len() {
        return Err(Error::Malformed);
    }
    arena.copy_within(from, to);
    Ok(())
}
