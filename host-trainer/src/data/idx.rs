//! IDX files (MNIST, Fashion-MNIST), raw or gzip-compressed.
//!
//! Format: big-endian header `0x00 0x00 <type=0x08 (u8)> <ndims>`, then `ndims` u32 sizes,
//! then the data. Images are `[n, rows, cols]`, labels `[n]`.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{DataError, FETCH_SCRIPT, ImageSet, ImageShape, TrainTest};

/// A parsed IDX u8 array: its dimensions and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Sizes, outermost first.
    pub dims: Vec<usize>,
    /// `dims.product()` bytes.
    pub data: Vec<u8>,
}

/// Parses an IDX u8 array; gzip input (magic `1f 8b`) is decompressed first.
pub fn parse(bytes: &[u8], origin: &Path) -> Result<IdxArray, DataError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut raw)
            .map_err(|e| DataError::io(origin, e))?;
        return parse_raw(&raw, origin);
    }
    parse_raw(bytes, origin)
}

fn parse_raw(bytes: &[u8], origin: &Path) -> Result<IdxArray, DataError> {
    let bad = |why: String| DataError::format(origin, why);
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad("not an IDX file (bad magic)".into()));
    }
    if bytes[2] != 0x08 {
        return Err(bad(format!(
            "IDX element type {:#04x}, only u8 (0x08) is supported",
            bytes[2]
        )));
    }
    let ndims = bytes[3] as usize;
    let header = 4 + 4 * ndims;
    if ndims == 0 || bytes.len() < header {
        return Err(bad("truncated IDX header".into()));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let expected = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    match expected {
        Some(n) if bytes.len() - header == n => Ok(IdxArray {
            dims,
            data: bytes[header..].to_vec(),
        }),
        _ => Err(bad(format!(
            "IDX dims {dims:?} do not match the {} data bytes",
            bytes.len() - header
        ))),
    }
}

/// Reads `dir/name` or, if absent, `dir/name.gz`.
fn read_either(dataset: &'static str, dir: &Path, name: &str) -> Result<IdxArray, DataError> {
    let raw = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    let path: PathBuf = if raw.is_file() {
        raw
    } else if gz.is_file() {
        gz
    } else {
        return Err(DataError::Missing {
            dataset,
            path: raw,
            hint: format!("run `{FETCH_SCRIPT}` from the repository root (or pass --data-dir)"),
        });
    };
    let bytes = std::fs::read(&path).map_err(|e| DataError::io(&path, e))?;
    parse(&bytes, &path)
}

fn images_and_labels(
    dataset: &'static str,
    dir: &Path,
    images: &str,
    labels: &str,
) -> Result<ImageSet, DataError> {
    let img = read_either(dataset, dir, images)?;
    let lab = read_either(dataset, dir, labels)?;
    let path = dir.join(images);
    let [n, h, w] = img.dims[..] else {
        return Err(DataError::format(&path, "image file is not 3-dimensional"));
    };
    if lab.dims != [n] {
        return Err(DataError::format(
            &path,
            format!("{n} images but labels {:?}", lab.dims),
        ));
    }
    if lab.data.iter().any(|&l| l > 9) {
        return Err(DataError::format(&dir.join(labels), "label above 9"));
    }
    Ok(ImageSet {
        shape: ImageShape {
            channels: 1,
            height: h,
            width: w,
        },
        pixels: img.data,
        labels: lab.data,
    })
}

/// Loads the four standard files (`{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`) of
/// MNIST or Fashion-MNIST from `dir`.
pub fn load_mnist_style(dataset: &'static str, dir: &Path) -> Result<TrainTest, DataError> {
    Ok(TrainTest {
        train: images_and_labels(
            dataset,
            dir,
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
        )?,
        test: images_and_labels(
            dataset,
            dir,
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn parses_raw_and_gzip_identically() {
        let raw = idx(&[2, 1, 2], &[1, 2, 3, 4]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&raw).expect("write");
        let gz = gz.finish().expect("finish");
        let a = parse(&raw, Path::new("a")).expect("raw");
        let b = parse(&gz, Path::new("b")).expect("gz");
        assert_eq!(a, b);
        assert_eq!(a.dims, vec![2, 1, 2]);
        assert_eq!(a.data, vec![1, 2, 3, 4]);
    }

    #[test]
    fn rejects_bad_magic_type_and_length() {
        assert!(parse(&[1, 0, 8, 1, 0, 0, 0, 0], Path::new("x")).is_err());
        assert!(parse(&[0, 0, 0x0d, 1, 0, 0, 0, 0], Path::new("x")).is_err());
        let short = idx(&[3], &[1, 2]);
        let err = parse(&short, Path::new("x")).expect_err("length mismatch");
        assert!(err.to_string().contains("do not match"), "{err}");
    }

    #[test]
    fn missing_dataset_names_the_fetch_script() {
        let dir = std::env::temp_dir().join("host-trainer-no-such-dataset");
        let err = load_mnist_style("mnist", &dir).expect_err("missing");
        assert!(matches!(err, DataError::Missing { .. }));
        assert!(err.to_string().contains(FETCH_SCRIPT), "{err}");
    }

    #[test]
    fn loads_mnist_from_data_dir_when_present() {
        let paths = crate::data::DataPaths::default();
        let dir = paths.data_dir.join("mnist");
        if !dir.is_dir() {
            eprintln!(
                "skipped: MNIST not in {} (run {FETCH_SCRIPT})",
                dir.display()
            );
            return;
        }
        let tt = load_mnist_style("mnist", &dir).expect("mnist");
        assert_eq!((tt.train.len(), tt.test.len()), (60_000, 10_000));
        assert_eq!(tt.train.labels[..10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
        assert_eq!(tt.test.class_counts(10)[1], 1135);
    }

    #[test]
    fn loads_fashion_gz_from_data_dir_when_present() {
        let paths = crate::data::DataPaths::default();
        let dir = paths.data_dir.join("fashion-mnist");
        if !dir.is_dir() {
            eprintln!(
                "skipped: Fashion-MNIST not in {} (run {FETCH_SCRIPT})",
                dir.display()
            );
            return;
        }
        let tt = load_mnist_style("fashion-mnist", &dir).expect("fashion");
        assert_eq!(tt.train.class_counts(10), vec![6000; 10]);
        assert_eq!((tt.train.labels[0], tt.test.labels[0]), (9, 9));
    }
}
