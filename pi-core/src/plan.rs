//! The activation-buffer plan: where every tensor lives in the caller's arena.
//!
//! Tensors are placed first-fit in one `i32` arena so that two tensors alive at the same time
//! never share a word. Element-wise layers (masked ReLU, residual add) write over their input
//! when nothing reads it later, and `Flatten` never moves data, so a plain chain of layers needs
//! about two tensors' worth of words, and a residual block three.

use crate::format::Shape;
use crate::layer::{Layer, Op};
use crate::model::MAX_LAYERS;

const NONE: u16 = u16::MAX;

/// How a layer uses tensors, as far as planning cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LayerRefs {
    input: u16,
    other: u16,
    kind: Reuse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reuse {
    /// Output goes to fresh words that overlap nothing alive.
    Fresh,
    /// Output may overwrite the input when the input is read by no later layer.
    InPlace,
    /// Output is the input's words, unchanged (a reshape).
    Alias,
}

impl Default for LayerRefs {
    fn default() -> Self {
        Self {
            input: 0,
            other: NONE,
            kind: Reuse::Fresh,
        }
    }
}

impl LayerRefs {
    pub(crate) fn of(layer: &Layer<'_>) -> Self {
        let (other, kind) = match layer.op {
            Op::MaskedRelu(_) => (NONE, Reuse::InPlace),
            Op::Add { other } => (other as u16, Reuse::InPlace),
            Op::Flatten => (NONE, Reuse::Alias),
            _ => (NONE, Reuse::Fresh),
        };
        Self {
            input: layer.input as u16,
            other,
            kind,
        }
    }
}

/// The finished plan: shape and arena offset of every tensor, and the arena's size.
///
/// The arena is the tensors' words, then `scratch_words` for the convolution kernels (one
/// receptive field of the widest convolution).
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    shapes: [Shape; MAX_LAYERS + 1],
    offsets: [u32; MAX_LAYERS + 1],
    tensors: usize,
    tensor_words: usize,
    scratch_words: usize,
}

impl Plan {
    pub(crate) fn shape(&self, id: usize) -> Shape {
        self.shapes.get(id).copied().unwrap_or_default()
    }

    pub(crate) fn shapes(&self) -> &[Shape] {
        &self.shapes[..self.tensors]
    }

    pub(crate) fn offset(&self, id: usize) -> usize {
        self.offsets.get(id).map_or(0, |&o| o as usize)
    }

    /// Word range of tensor `id` in the arena.
    pub(crate) fn range(&self, id: usize) -> core::ops::Range<usize> {
        let start = self.offset(id);
        start..start + self.shape(id).elements()
    }

    pub(crate) fn arena_words(&self) -> usize {
        self.tensor_words + self.scratch_words
    }

    /// Words holding tensors; the kernels' scratch starts here.
    pub(crate) fn tensor_words(&self) -> usize {
        self.tensor_words
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Storage {
    offset: usize,
    words: usize,
    /// Layer that writes the first tensor held here (0 for the model input).
    birth: usize,
    /// Last layer that reads any tensor held here (`usize::MAX`: the model output, kept).
    last_use: usize,
}

impl Storage {
    fn overlaps_in_time(&self, other: &Storage) -> bool {
        self.birth <= other.last_use && other.birth <= self.last_use
    }
}

/// Plans tensors `0..shapes.len()` given the validated layer references (`refs[i]` produces
/// tensor `i + 1`), plus `scratch_words` of kernel scratch after them.
///
/// Two passes: walking the layers decides which tensors share storage (in-place and aliasing
/// layers) and each storage's lifetime; then storages are placed largest first, each at the lowest
/// offset that overlaps no already-placed storage alive at the same time (the greedy-by-size
/// strategy of TFLM's planner, which handles a small input in front of large feature maps well).
pub(crate) fn plan(shapes: &[Shape], refs: &[LayerRefs], scratch_words: usize) -> Plan {
    let tensors = shapes.len();
    let mut result = Plan {
        shapes: [Shape::default(); MAX_LAYERS + 1],
        offsets: [0; MAX_LAYERS + 1],
        tensors,
        tensor_words: 0,
        scratch_words,
    };
    result.shapes[..tensors].copy_from_slice(shapes);

    // Last layer reading each tensor; a tensor nobody reads dies right after it is written.
    let mut last_use = [0usize; MAX_LAYERS + 1];
    for (t, slot) in last_use.iter_mut().enumerate().take(tensors) {
        *slot = t.saturating_sub(1);
    }
    for (i, r) in refs.iter().enumerate() {
        for t in [r.input, r.other] {
            if let Some(slot) = last_use.get_mut(t as usize) {
                *slot = (*slot).max(i);
            }
        }
    }
    if let Some(out) = last_use.get_mut(tensors - 1) {
        *out = usize::MAX;
    }

    let mut storages = [Storage::default(); MAX_LAYERS + 1];
    let mut storage_of = [0usize; MAX_LAYERS + 1];
    storages[0] = Storage {
        offset: 0,
        words: shapes[0].elements(),
        birth: 0,
        last_use: last_use[0],
    };
    let mut count = 1;
    for (i, r) in refs.iter().enumerate() {
        let t = i + 1;
        let input_storage = storage_of[r.input as usize];
        let reuse = match r.kind {
            Reuse::Alias => true,
            Reuse::InPlace => storages[input_storage].last_use == i,
            Reuse::Fresh => false,
        };
        if reuse {
            storage_of[t] = input_storage;
            let s = &mut storages[input_storage];
            s.last_use = s.last_use.max(last_use[t]);
        } else {
            storages[count] = Storage {
                offset: 0,
                words: shapes[t].elements(),
                birth: i,
                last_use: last_use[t],
            };
            storage_of[t] = count;
            count += 1;
        }
    }

    // Largest first; ties keep layer order so the plan is deterministic.
    let mut order = [0usize; MAX_LAYERS + 1];
    for (k, slot) in order.iter_mut().enumerate().take(count) {
        *slot = k;
    }
    order[..count]
        .sort_unstable_by(|&a, &b| storages[b].words.cmp(&storages[a].words).then(a.cmp(&b)));
    for placed in 0..count {
        let s = order[placed];
        let offset = first_fit(&storages, &order[..placed], s);
        storages[s].offset = offset;
    }

    for t in 0..tensors {
        let s = storages[storage_of[t]];
        // Offsets are bounded by the sum of all tensor sizes (< 2^32, see MAX_TENSOR_ELEMENTS).
        result.offsets[t] = s.offset as u32;
        result.tensor_words = result.tensor_words.max(s.offset + s.words);
    }
    result
}

/// Lowest offset for storage `s` that overlaps none of the `placed` storages alive at the same
/// time.
fn first_fit(storages: &[Storage], placed: &[usize], s: usize) -> usize {
    let me = storages[s];
    let mut candidate = 0;
    loop {
        let clash = placed.iter().map(|&p| storages[p]).find(|p| {
            p.overlaps_in_time(&me)
                && p.offset < candidate + me.words
                && candidate < p.offset + p.words
        });
        match clash {
            Some(p) => candidate = p.offset + p.words,
            None => return candidate,
        }
    }
}
