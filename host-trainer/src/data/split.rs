//! The seeded validation split, held out from the training set.

use super::ImageSet;
use crate::rng::Rng;

/// Splits `train` into (train, validation): a seeded permutation, the first
/// `round(len * val_fraction)` images (at least one, if `val_fraction > 0`) go to validation.
///
/// The split depends only on `seed`, so a resumed run, export and eval all see the same one.
pub fn train_val(train: &ImageSet, val_fraction: f64, seed: u64) -> (ImageSet, ImageSet) {
    let n = train.len();
    let mut n_val = (n as f64 * val_fraction.clamp(0.0, 0.9)).round() as usize;
    if val_fraction > 0.0 && n > 1 {
        n_val = n_val.clamp(1, n - 1);
    }
    // Stream 0xFA11 is reserved for the split: other streams (shuffles) never collide with it.
    let perm = Rng::derive(seed, 0xFA11).permutation(n);
    let (val_idx, train_idx) = perm.split_at(n_val);
    let mut val_idx = val_idx.to_vec();
    let mut train_idx = train_idx.to_vec();
    // Keep original order inside each part: cheaper to inspect, and the shuffle is per epoch.
    val_idx.sort_unstable();
    train_idx.sort_unstable();
    (train.select(&train_idx), train.select(&val_idx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ImageShape;

    fn set(n: usize) -> ImageSet {
        ImageSet {
            shape: ImageShape {
                channels: 1,
                height: 1,
                width: 1,
            },
            pixels: (0..n).map(|i| i as u8).collect(),
            labels: vec![0; n],
        }
    }

    #[test]
    fn disjoint_complete_and_seeded() {
        let s = set(100);
        let (t, v) = train_val(&s, 0.1, 5);
        assert_eq!((t.len(), v.len()), (90, 10));
        let mut all: Vec<u8> = t.pixels.iter().chain(&v.pixels).copied().collect();
        all.sort_unstable();
        assert_eq!(all, s.pixels);
        let (_, v2) = train_val(&s, 0.1, 5);
        assert_eq!(v.pixels, v2.pixels);
        let (_, v3) = train_val(&s, 0.1, 6);
        assert_ne!(v.pixels, v3.pixels);
    }
}
