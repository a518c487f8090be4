//! ReLU masks: which elements of a tensor keep their (expensive, in PI) ReLU.

use crate::format::MaskRecord;

/// A validated, borrowed ReLU mask over `len` elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReluMask<'a> {
    pub(crate) encoding: MaskEncoding<'a>,
    pub(crate) len: usize,
    pub(crate) kept: usize,
}

/// How a mask is stored in the model file (the writer picks the smallest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MaskEncoding<'a> {
    /// Every element keeps its ReLU.
    AllKept,
    /// No element keeps its ReLU.
    NoneKept,
    /// One bit per element, LSB first.
    Bitmap(&'a [u8]),
    /// Sorted little-endian `u32` indices of kept elements.
    Indices(&'a [u8]),
}

impl<'a> ReluMask<'a> {
    /// Checks a mask record against a tensor of `len` elements. `None` if it does not fit.
    pub(crate) fn validate(record: MaskRecord<'a>, len: usize) -> Option<Self> {
        let (encoding, kept) = match record {
            MaskRecord::AllKept => (MaskEncoding::AllKept, len),
            MaskRecord::NoneKept => (MaskEncoding::NoneKept, 0),
            MaskRecord::Bitmap(bits) => {
                if bits.len() != len.div_ceil(8) {
                    return None;
                }
                // Bits past `len` must be zero so the encoding is canonical.
                if !len.is_multiple_of(8) {
                    let last = *bits.last()?;
                    if last >> (len % 8) != 0 {
                        return None;
                    }
                }
                let kept = bits.iter().map(|b| b.count_ones() as usize).sum();
                (MaskEncoding::Bitmap(bits), kept)
            }
            MaskRecord::Indices(bytes) => {
                if !bytes.len().is_multiple_of(4) {
                    return None;
                }
                let mut previous: Option<u32> = None;
                for chunk in bytes.chunks_exact(4) {
                    let index = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                    if index as usize >= len || previous.is_some_and(|p| p >= index) {
                        return None;
                    }
                    previous = Some(index);
                }
                (MaskEncoding::Indices(bytes), bytes.len() / 4)
            }
        };
        Some(Self {
            encoding,
            len,
            kept,
        })
    }

    /// Number of elements the mask covers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mask covers no elements (never true for a parsed model).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of elements whose ReLU is kept: the ReLUs private inference pays for.
    pub fn kept(&self) -> usize {
        self.kept
    }

    /// How the mask is stored.
    pub fn encoding(&self) -> MaskEncoding<'a> {
        self.encoding
    }

    /// Whether element `i` keeps its ReLU (`false` past the end).
    pub fn is_kept(&self, i: usize) -> bool {
        if i >= self.len {
            return false;
        }
        match self.encoding {
            MaskEncoding::AllKept => true,
            MaskEncoding::NoneKept => false,
            MaskEncoding::Bitmap(bits) => bits.get(i / 8).is_some_and(|b| b >> (i % 8) & 1 == 1),
            MaskEncoding::Indices(bytes) => {
                // Binary search over the sorted index list.
                let (mut lo, mut hi) = (0usize, bytes.len() / 4);
                while lo < hi {
                    let mid = (lo + hi) / 2;
                    let at = index_at(bytes, mid);
                    if at as usize == i {
                        return true;
                    }
                    if (at as usize) < i {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                false
            }
        }
    }

    /// Applies the mask in place: kept elements become `max(x, 0)`, the others stay `x`.
    pub fn apply(&self, values: &mut [i32]) {
        match self.encoding {
            MaskEncoding::AllKept => {
                for v in values.iter_mut() {
                    *v = (*v).max(0);
                }
            }
            MaskEncoding::NoneKept => {}
            MaskEncoding::Bitmap(bits) => {
                for (chunk, &byte) in values.chunks_mut(8).zip(bits) {
                    for (bit, v) in chunk.iter_mut().enumerate() {
                        if byte >> bit & 1 == 1 {
                            *v = (*v).max(0);
                        }
                    }
                }
            }
            MaskEncoding::Indices(bytes) => {
                for chunk in bytes.chunks_exact(4) {
                    let i = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) as usize;
                    if let Some(v) = values.get_mut(i) {
                        *v = (*v).max(0);
                    }
                }
            }
        }
    }

    /// Calls `f` with the index of every kept element, in increasing order.
    pub fn for_each_kept(&self, mut f: impl FnMut(usize)) {
        match self.encoding {
            MaskEncoding::AllKept => (0..self.len).for_each(f),
            MaskEncoding::NoneKept => {}
            MaskEncoding::Bitmap(bits) => {
                for (byte_index, &byte) in bits.iter().enumerate() {
                    let mut rest = byte;
                    while rest != 0 {
                        let bit = rest.trailing_zeros() as usize;
                        f(byte_index * 8 + bit);
                        rest &= rest - 1;
                    }
                }
            }
            MaskEncoding::Indices(bytes) => {
                for chunk in bytes.chunks_exact(4) {
                    f(u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) as usize);
                }
            }
        }
    }
}

fn index_at(bytes: &[u8], k: usize) -> u32 {
    match bytes.get(4 * k..4 * k + 4) {
        Some(c) => u32::from_le_bytes([c[0], c[1], c[2], c[3]]),
        None => u32::MAX,
    }
}
