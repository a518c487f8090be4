//! The embedded UCI optical digits (8x8, values 0..16), the default dataset.
//!
//! The file has no official train/test split, so a fixed permutation (independent of the run
//! seed, so every run reports on the same images) puts [`TEST_FRACTION`] of it in the test set.

use std::io::Read;
use std::path::Path;

use super::{DataError, ImageSet, ImageShape, TrainTest};
use crate::rng::Rng;

/// `digits.csv.gz` from scikit-learn (BSD-3; data: UCI, CC BY 4.0). See `data/README.md`.
const DIGITS_CSV_GZ: &[u8] = include_bytes!("../../data/digits.csv.gz");

/// Number of samples in the file.
pub const SAMPLES: usize = 1797;
/// Share of the file used as the test set.
pub const TEST_FRACTION: f64 = 0.2;
/// Seed of the fixed train/test permutation (not the run's `--seed`).
const SPLIT_SEED: u64 = 0x0D16_175E;

/// Parses the whole embedded file, in file order.
pub fn all() -> Result<ImageSet, DataError> {
    parse_csv_gz(DIGITS_CSV_GZ, Path::new("<embedded digits.csv.gz>"))
}

/// The embedded set, split into train (1437) and test (360).
pub fn load() -> Result<TrainTest, DataError> {
    let set = all()?;
    let perm = Rng::new(SPLIT_SEED).permutation(set.len());
    let n_test = (set.len() as f64 * TEST_FRACTION).round() as usize;
    let (test_idx, train_idx) = perm.split_at(n_test);
    Ok(TrainTest {
        train: set.select(train_idx),
        test: set.select(test_idx),
    })
}

/// Parses `digits.csv.gz`: 64 pixel values (0..=16) then the label, per line.
pub fn parse_csv_gz(bytes: &[u8], origin: &Path) -> Result<ImageSet, DataError> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .map_err(|e| DataError::io(origin, e))?;
    let shape = ImageShape {
        channels: 1,
        height: 8,
        width: 8,
    };
    let mut pixels = Vec::with_capacity(SAMPLES * 64);
    let mut labels = Vec::with_capacity(SAMPLES);
    for (line_no, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let bad = |why: &str| DataError::format(origin, format!("line {}: {why}", line_no + 1));
        let mut count = 0;
        for (i, field) in line.split(',').enumerate() {
            // Values are written as integers or as floats with a zero fraction ("16.0").
            let v: f64 = field.trim().parse().map_err(|_| bad("not a number"))?;
            if v.fract() != 0.0 {
                return Err(bad("value is not an integer"));
            }
            match i {
                0..64 if (0.0..=16.0).contains(&v) => pixels.push(v as u8),
                64 if (0.0..=9.0).contains(&v) => labels.push(v as u8),
                0..=64 => return Err(bad("value out of range")),
                _ => return Err(bad("more than 65 fields")),
            }
            count += 1;
        }
        if count != 65 {
            return Err(bad("expected 65 fields"));
        }
    }
    Ok(ImageSet {
        shape,
        pixels,
        labels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_file_has_the_documented_content() {
        let set = all().expect("embedded digits parse");
        assert_eq!(set.len(), SAMPLES);
        assert_eq!(
            set.class_counts(10),
            vec![178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
        );
        assert_eq!(set.labels[..3], [0, 1, 2]);
        assert_eq!(set.image(0)[..8], [0, 0, 5, 13, 9, 1, 0, 0]);
    }

    #[test]
    fn split_is_fixed_and_disjoint() {
        let a = load().expect("load");
        let b = load().expect("load");
        assert_eq!(a.test.len(), 359);
        assert_eq!(a.train.len() + a.test.len(), SAMPLES);
        assert_eq!(a.test.labels, b.test.labels);
        assert_eq!(a.test.pixels, b.test.pixels);
    }

    #[test]
    fn malformed_csv_is_a_format_error() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"1,2,3\n").expect("write");
        let bytes = gz.finish().expect("finish");
        let err = parse_csv_gz(&bytes, Path::new("x.csv.gz")).expect_err("must fail");
        assert!(err.to_string().contains("expected 65 fields"), "{err}");
    }
}
