//! Models: architecture graphs ([`spec`]), the burn module that runs them ([`net`]), the masked
//! ReLU ([`masked_relu`]) and the architecture families.

pub mod digits_cnn;
pub mod lenet;
pub mod masked_relu;
pub mod net;
pub mod resnet;
pub mod spec;

use std::fmt;
use std::str::FromStr;

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

pub use net::Net;
pub use spec::{Chw, NetSpec, ReluSite, SpecError, Stage, StageKind};

/// An architecture family (its width is given separately).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Arch {
    /// `digits-cnn`: small CNN for 8x8 digits.
    DigitsCnn,
    /// `lenet`: LeNet-style CNN for 28x28.
    Lenet,
    /// `resnet<depth>`: CIFAR-style ResNet (8, 20, 32, ... = 6n+2; 18; 34).
    Resnet {
        /// Depth (number of weighted layers on the main path).
        depth: usize,
    },
    /// `imported`: a graph read from ONNX by `host-trainer import`; the graph itself is stored in
    /// the run's config (`TrainConfig::spec`), since no builder can rebuild it.
    Imported,
}

impl Arch {
    /// The width used when none is given.
    pub fn default_width(self) -> usize {
        match self {
            Self::DigitsCnn => digits_cnn::DEFAULT_WIDTH,
            Self::Lenet => lenet::DEFAULT_WIDTH,
            Self::Resnet { depth } => resnet::default_width(depth),
            // Not used: an imported graph has its widths already.
            Self::Imported => 0,
        }
    }

    /// The graph of this architecture for `input`-shaped images.
    pub fn spec(
        self,
        input: Chw,
        width: Option<usize>,
        classes: usize,
    ) -> Result<NetSpec, SpecError> {
        let w = width.unwrap_or(self.default_width());
        match self {
            Self::DigitsCnn => digits_cnn::spec(input, w, classes),
            Self::Lenet => lenet::spec(input, w, classes),
            Self::Resnet { depth } => resnet::spec(input, depth, w, classes),
            Self::Imported => Err(SpecError::new(
                "imported",
                "-",
                "an imported graph is read from its run's config.json (make one with `host-trainer import --onnx`)",
            )),
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DigitsCnn => f.write_str("digits-cnn"),
            Self::Lenet => f.write_str("lenet"),
            Self::Resnet { depth } => write!(f, "resnet{depth}"),
            Self::Imported => f.write_str("imported"),
        }
    }
}

impl FromStr for Arch {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "digits-cnn" => Ok(Self::DigitsCnn),
            "lenet" => Ok(Self::Lenet),
            "imported" => Ok(Self::Imported),
            _ => match s.strip_prefix("resnet").and_then(|d| d.parse().ok()) {
                Some(depth) if resnet::stages(depth).is_some() => Ok(Self::Resnet { depth }),
                _ => Err(format!(
                    "unknown architecture `{s}`: use digits-cnn, lenet, resnet8, resnet20, \
                     resnet32, ... (6n+2), resnet18 or resnet34"
                )),
            },
        }
    }
}

impl From<Arch> for String {
    fn from(a: Arch) -> String {
        a.to_string()
    }
}

impl TryFrom<String> for Arch {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// Reads any float tensor back as `f32` values (row-major).
pub fn to_f32_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .try_into_vec_as::<f32>()
        .expect("float tensors convert to f32")
}

/// The per-layer ReLU table: `(name, shape, total, kept)` per site, given each site's mask.
pub fn relu_table(spec: &NetSpec, kept: &[usize]) -> String {
    use std::fmt::Write;
    let sites = spec.relu_sites();
    let mut s = String::new();
    let _ = writeln!(s, "ReLU layers of {} (input {}):", spec.arch, spec.input);
    let _ = writeln!(
        s,
        "  {:<20} {:>12} {:>10} {:>10}",
        "layer", "shape", "ReLUs", "kept"
    );
    let (mut total, mut total_kept) = (0, 0);
    for (site, &k) in sites
        .iter()
        .zip(kept.iter().chain(std::iter::repeat(&usize::MAX)))
    {
        let n = site.shape.len();
        let k = if k == usize::MAX { n } else { k };
        total += n;
        total_kept += k;
        let _ = writeln!(
            s,
            "  {:<20} {:>12} {:>10} {:>10}",
            site.name,
            site.shape.to_string(),
            n,
            k
        );
    }
    let _ = writeln!(
        s,
        "  {:<20} {:>12} {:>10} {:>10}",
        "total", "", total, total_kept
    );
    if let Some(first) = sites.first() {
        // linearization.md §1.2: papers differ on the stem ReLU (SNL drops it); give both.
        let n = first.shape.len();
        let _ = writeln!(
            s,
            "  total without the first ReLU layer ({}): {}",
            first.name,
            total - n
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cifar() -> Chw {
        Chw { c: 3, h: 32, w: 32 }
    }

    #[test]
    fn resnet18_cifar_has_557056_relus() {
        let spec = Arch::Resnet { depth: 18 }
            .spec(cifar(), None, 10)
            .expect("spec");
        assert_eq!(spec.total_relus(), 557_056);
        let sites = spec.relu_sites();
        assert_eq!(sites.len(), 17);
        assert_eq!(sites[0].shape.len(), 65_536);
        // SNL variant (no stem ReLU): 491,520.
        assert_eq!(spec.total_relus() - sites[0].shape.len(), 491_520);
        // Stem + 4 stages of 2 blocks of 2 ReLUs; the stage outputs are the last post-add ReLUs.
        let stages = spec.stages();
        let names: Vec<&str> = stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["stem", "layer1", "layer2", "layer3", "layer4"]);
        assert!(stages[1..].iter().all(|s| s.sites.len() == 4));
        assert_eq!(
            sites[stages[4].output_site().unwrap()].name,
            "layer4.1.relu2"
        );
        assert_eq!(
            (
                sites[0].block,
                sites[1].block,
                sites[2].block,
                sites[3].block
            ),
            (None, Some(0), Some(0), Some(1))
        );
        assert_eq!(spec.output(), Chw { c: 10, h: 1, w: 1 });
    }

    #[test]
    fn resnet20_and_resnet8_counts() {
        // ResNet-20 w16: 16*1024 + 6*16*1024 + 6*32*256 + 6*64*64.
        let r20 = Arch::Resnet { depth: 20 }
            .spec(cifar(), None, 10)
            .expect("spec");
        assert_eq!(r20.total_relus(), 16_384 + 98_304 + 49_152 + 24_576);
        // ResNet-32 (CIFAR): 303,104, as cryptonite's count_relus gives (linearization.md §1.2).
        let r32 = Arch::Resnet { depth: 32 }
            .spec(cifar(), None, 10)
            .expect("spec");
        assert_eq!(r32.total_relus(), 303_104);
        let r8 = Arch::Resnet { depth: 8 }
            .spec(cifar(), Some(16), 10)
            .expect("spec");
        assert_eq!(
            r8.total_relus(),
            16_384 + 2 * 16_384 + 2 * 8_192 + 2 * 4_096
        );
    }

    #[test]
    fn small_models_counts() {
        let d = Arch::DigitsCnn
            .spec(Chw { c: 1, h: 8, w: 8 }, None, 10)
            .expect("spec");
        assert_eq!(d.total_relus(), 16 * 64 + 32 * 16);
        let l = Arch::Lenet
            .spec(Chw { c: 1, h: 28, w: 28 }, Some(16), 10)
            .expect("spec");
        assert_eq!(l.total_relus(), 16 * 784 + 32 * 100 + 128);
    }

    #[test]
    fn arch_names_round_trip() {
        for s in ["digits-cnn", "lenet", "resnet8", "resnet20", "resnet18"] {
            assert_eq!(s.parse::<Arch>().expect("parse").to_string(), s);
        }
        assert!("resnet19".parse::<Arch>().is_err());
        assert!("vgg".parse::<Arch>().is_err());
    }

    #[test]
    fn relu_table_lists_layers_and_totals() {
        let d = Arch::DigitsCnn
            .spec(Chw { c: 1, h: 8, w: 8 }, None, 10)
            .expect("spec");
        let t = relu_table(&d, &[]);
        assert!(t.contains("relu1") && t.contains("1536"), "{t}");
    }
}
