//! Inputs for `protocol-sim run --dataset D`:
//!
//! * `random`: uniform fixed-point inputs in `[-1, 1]` (seeded);
//! * `digits`: host-trainer's embedded optical digits (`host-trainer/data/digits.csv.gz`,
//!   file order);
//! * `mnist`, `fashion-mnist`: the IDX test sets under `data/` (fetched by
//!   `scripts/fetch-datasets.sh`);
//! * a path to a samples file (`label v0 v1 …` per line, inputs already quantized, `#`
//!   comments), as `firmware-example/model/samples.txt`.
//!
//! Images are normalised as `(pixel / scale − mean) / std` with the exporter's sidecar
//! (`<model>.pic.json`) when it exists, else the trainer's published constants, then quantized
//! at the model's activation scale. A missing file is an error naming the path.

use std::io::Read;
use std::path::{Path, PathBuf};

use pi_core::fixed::quantize;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use crate::SimError;

/// One input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// True label, when the dataset has one.
    pub label: Option<u8>,
    /// Quantized input (CHW).
    pub input: Vec<i32>,
}

/// `x = (pixel / scale − mean) / std` (one channel).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalization {
    /// Raw pixel maximum (16 for digits, 255 otherwise).
    pub scale: f64,
    /// Mean after scaling.
    pub mean: f64,
    /// Standard deviation after scaling.
    pub std: f64,
}

/// What `load` needs to know about the model.
#[derive(Debug, Clone, Copy)]
pub struct Target<'p> {
    /// Input elements the model expects.
    pub elements: usize,
    /// Activation frac bits.
    pub frac_bits: u8,
    /// The model file (to find its sidecar), if any.
    pub model_path: Option<&'p Path>,
}

fn workspace_path(rel: &str) -> PathBuf {
    let here = Path::new(rel);
    if here.exists() {
        return here.to_path_buf();
    }
    // Fall back to the workspace the binary was built in (tests, `cargo run` from elsewhere).
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn read(path: &Path) -> Result<Vec<u8>, SimError> {
    std::fs::read(path)
        .map_err(|e| SimError::Usage(format!("dataset file {}: {e}", path.display())))
}

/// The sidecar's normalisation, if the model has one with a single channel.
fn sidecar(model: Option<&Path>) -> Option<Normalization> {
    let mut path = model?.as_os_str().to_owned();
    path.push(".json");
    let text = std::fs::read_to_string(PathBuf::from(path)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let n = v.get("normalization")?;
    Some(Normalization {
        scale: n.get("scale")?.as_f64()?,
        mean: n.get("mean")?.get(0)?.as_f64()?,
        std: n.get("std")?.get(0)?.as_f64()?,
    })
}

/// The largest `|input|` (in LSBs at `frac_bits`) a model exported with a sidecar can be given:
/// the normalized range of a pixel in `[0, scale]`. `None` without a sidecar.
pub fn input_bound(model: &Path, frac_bits: u8) -> Option<u64> {
    let n = sidecar(Some(model))?;
    let extreme = ((0.0 - n.mean) / n.std)
        .abs()
        .max(((1.0 - n.mean) / n.std).abs());
    Some((extreme * f64::from(1u32 << frac_bits)).ceil() as u64 + 1)
}

fn quantized(pixels: &[u8], n: Normalization, frac_bits: u8) -> Vec<i32> {
    pixels
        .iter()
        .map(|&p| quantize(((p as f64 / n.scale - n.mean) / n.std) as f32, frac_bits))
        .collect()
}

fn check_len(samples: &[Sample], t: &Target<'_>, what: &str) -> Result<(), SimError> {
    match samples.first() {
        Some(s) if s.input.len() != t.elements => Err(SimError::Usage(format!(
            "{what} inputs have {} elements, the model expects {}",
            s.input.len(),
            t.elements
        ))),
        _ => Ok(()),
    }
}

/// Loads `count` samples of dataset `name` for the model described by `target`.
pub fn load(
    name: &str,
    count: usize,
    seed: u64,
    target: Target<'_>,
) -> Result<Vec<Sample>, SimError> {
    let samples = match name {
        "random" => {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let one = 1i64 << target.frac_bits;
            (0..count)
                .map(|_| Sample {
                    label: None,
                    input: (0..target.elements)
                        .map(|_| (rng.next_u64() % (2 * one as u64 + 1)) as i64 - one)
                        .map(|v| v as i32)
                        .collect(),
                })
                .collect()
        }
        "digits" => digits(count, &target)?,
        "mnist" | "fashion-mnist" => idx(name, count, &target)?,
        path => samples_file(Path::new(path), count)?,
    };
    check_len(&samples, &target, name)?;
    Ok(samples)
}

fn digits(count: usize, t: &Target<'_>) -> Result<Vec<Sample>, SimError> {
    let path = workspace_path("host-trainer/data/digits.csv.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&read(&path)?[..])
        .read_to_string(&mut text)
        .map_err(|e| SimError::Usage(format!("{}: {e}", path.display())))?;
    let norm = sidecar(t.model_path).unwrap_or(Normalization {
        scale: 16.0,
        mean: 0.3053,
        std: 0.3760,
    });
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()).take(count) {
        let fields: Vec<u8> = line
            .split(',')
            .map(|f| f.trim().parse::<f64>().map(|v| v as u8))
            .collect::<Result<_, _>>()
            .map_err(|_| SimError::Usage(format!("{}: bad line", path.display())))?;
        let Some((&label, pixels)) = fields.split_last() else {
            continue;
        };
        out.push(Sample {
            label: Some(label),
            input: quantized(pixels, norm, t.frac_bits),
        });
    }
    Ok(out)
}

fn idx(name: &str, count: usize, t: &Target<'_>) -> Result<Vec<Sample>, SimError> {
    let dir = workspace_path(&format!("data/{name}"));
    let images = read(&dir.join("t10k-images-idx3-ubyte"))?;
    let labels = read(&dir.join("t10k-labels-idx1-ubyte"))?;
    let bad = || SimError::Usage(format!("{}: not an IDX image/label pair", dir.display()));
    let be = |b: &[u8], at: usize| -> Result<usize, SimError> {
        let w = b.get(at..at + 4).ok_or_else(bad)?;
        Ok(u32::from_be_bytes([w[0], w[1], w[2], w[3]]) as usize)
    };
    if be(&images, 0)? != 0x0803 || be(&labels, 0)? != 0x0801 {
        return Err(bad());
    }
    let (n, rows, cols) = (be(&images, 4)?, be(&images, 8)?, be(&images, 12)?);
    let norm = sidecar(t.model_path).unwrap_or(if name == "mnist" {
        Normalization {
            scale: 255.0,
            mean: 0.1307,
            std: 0.3081,
        }
    } else {
        Normalization {
            scale: 255.0,
            mean: 0.2860,
            std: 0.3530,
        }
    });
    let size = rows * cols;
    (0..n.min(count))
        .map(|i| {
            let pixels = images
                .get(16 + i * size..16 + (i + 1) * size)
                .ok_or_else(bad)?;
            Ok(Sample {
                label: labels.get(8 + i).copied(),
                input: quantized(pixels, norm, t.frac_bits),
            })
        })
        .collect()
}

fn samples_file(path: &Path, count: usize) -> Result<Vec<Sample>, SimError> {
    let text = String::from_utf8(read(path)?)
        .map_err(|_| SimError::Usage(format!("{}: not UTF-8", path.display())))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || SimError::Usage(format!("{}:{}: bad sample line", path.display(), n + 1));
        let mut fields = line.split_whitespace();
        let label = fields
            .next()
            .and_then(|f| f.parse::<u8>().ok())
            .ok_or_else(bad)?;
        let input = fields
            .map(|f| f.parse::<i32>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| bad())?;
        out.push(Sample {
            label: Some(label),
            input,
        });
        if out.len() == count {
            break;
        }
    }
    Ok(out)
}
