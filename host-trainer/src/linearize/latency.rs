//! A ReLU budget from a latency target on a device and link: pi-core's cost model
//! ([`pi_core::cost::CostModel::budget`], the same code as `protocol-sim budget`) gives the
//! largest number of kept ReLUs whose end-to-end latency meets the target on the teacher's
//! architecture, and that count becomes the run's absolute budget. The bound holds for any
//! placement of the kept ReLUs, so the linearized model meets the target whatever its masks.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use pi_core::cost::{
    CostModel, DEVICES, DeviceProfile, LINKS, LatencyTarget, LinkProfile, Protocol,
};
use pi_core::share::ReluPlan;
use serde::{Deserialize, Serialize};

use crate::export::{ExportOptions, to_model_spec};
use crate::train::run_dir::{RunDir, load_trained};

/// Where a private inference runs: protocol, device and link presets of pi-core's cost model.
#[derive(Debug, Clone, PartialEq, Eq, Args, Serialize, Deserialize)]
pub struct Deployment {
    /// Client device preset (pi-core cost model): cortex-m4-64, cortex-m4-100,
    /// cortex-m4-cryp-168, stm32h7-cryp-600, stm32u5-aes-160, cortex-m0plus-48,
    /// phone.
    #[arg(long, default_value = "cortex-m4-64")]
    pub device: String,
    /// Network preset: lan, wan, lte, ble.
    #[arg(long, default_value = "ble")]
    pub link: String,
    /// Protocol: delphi, ring-gc, client-garbler, cryptflow2, cheetah.
    #[arg(long, default_value = "ring-gc")]
    pub protocol: String,
    /// Ring width of cryptflow2/cheetah.
    #[arg(long, default_value_t = 64)]
    pub bits: u8,
    /// Count the preprocessing in the latency (as when it cannot run ahead of time).
    #[arg(long)]
    pub include_offline: bool,
    /// Price ring-gc's split ReLU (garbled sign on this many bits plus a multiplexer) instead
    /// of the full garbled ReLU.
    #[arg(long, value_parser = clap::value_parser!(u8).range(2..=64))]
    #[serde(default)]
    pub sign_bits: Option<u8>,
}

impl Default for Deployment {
    fn default() -> Self {
        Self {
            device: "cortex-m4-64".into(),
            link: "ble".into(),
            protocol: "ring-gc".into(),
            bits: 64,
            include_offline: false,
            sign_bits: None,
        }
    }
}

impl Deployment {
    /// The cost model of this deployment.
    pub fn cost_model(&self) -> Result<CostModel> {
        let protocol = Protocol::by_name(&self.protocol, self.bits)
            .map_err(|e| anyhow!("--protocol {}: {e}", self.protocol))?;
        let device = DeviceProfile::by_name(&self.device).with_context(|| {
            let names: Vec<_> = DEVICES.iter().map(|d| d.name).collect();
            format!(
                "unknown --device {:?} (known: {})",
                self.device,
                names.join(", ")
            )
        })?;
        let link = LinkProfile::by_name(&self.link).with_context(|| {
            let names: Vec<_> = LINKS.iter().map(|l| l.name).collect();
            format!(
                "unknown --link {:?} (known: {})",
                self.link,
                names.join(", ")
            )
        })?;
        if self.sign_bits.is_some() && protocol != Protocol::RingGc {
            bail!("--sign-bits prices ring-gc's split ReLU, not {protocol}");
        }
        Ok(CostModel::new(protocol, device, link))
    }

    /// The cost model of this deployment for `model` (its ReLU layers get the split ReLU's
    /// plan when `--sign-bits` is given; the costs depend on the sign width only).
    pub fn cost_model_for(&self, model: &pi_core::Model<'_>) -> Result<CostModel> {
        let m = self.cost_model()?;
        Ok(match self.sign_bits {
            None => m,
            Some(t) => m.with_relu_plan(
                ReluPlan::split_with(model, t, |_| t).map_err(|e| anyhow!("--sign-bits: {e}"))?,
            ),
        })
    }

    /// End-to-end latency (µs) and client bytes per inference (online, both directions,
    /// streamed material included) of the model file `model`.
    pub fn price(&self, model: &Path) -> Result<(u64, u64)> {
        let bytes = std::fs::read(model).with_context(|| format!("reading {}", model.display()))?;
        let m = pi_core::Model::parse(&bytes).map_err(|e| anyhow!("{}: {e}", model.display()))?;
        let t = self.cost_model_for(&m)?.estimate(&m).total;
        Ok((t.latency_us(self.include_offline), t.online.total()))
    }

    /// Short description for logs.
    pub fn describe(&self) -> String {
        let split = self
            .sign_bits
            .map_or(String::new(), |t| format!(" (split ReLU, {t} sign bits)"));
        format!(
            "{}{split} on {} over {}{}",
            self.protocol,
            self.device,
            self.link,
            if self.include_offline {
                ", offline included"
            } else {
                ""
            }
        )
    }
}

/// `--latency` in microseconds (`2s`, `1500ms`, `0.5`: [`pi_core::cost::parse_latency`]).
pub fn parse_latency(text: &str) -> Result<u64> {
    pi_core::cost::parse_latency(text).with_context(|| {
        format!("--latency {text:?}: expected a positive duration such as 2s, 1500ms or 0.5")
    })
}

/// The teacher's architecture as a pi-core model (every ReLU kept; weights irrelevant).
fn architecture(teacher: &Path) -> Result<Vec<u8>> {
    let run = RunDir::new(teacher);
    let cfg = run.read_config()?;
    let device = cfg.backend.device()?;
    let (_, net) = load_trained(&run, &device)?;
    // Any activation scale gives the same architecture, so skip calibration.
    let opts = ExportOptions {
        act_frac: Some(8),
        ..Default::default()
    };
    let (spec, _) = to_model_spec(&net, 1.0, &opts)?;
    spec.architecture_only()
        .to_bytes()
        .map_err(|e| anyhow!("pi-core could not encode the architecture: {e}"))
}

/// The budget (kept ReLUs) meeting `latency_us` for the teacher in `teacher` deployed as `d`,
/// with the bound it guarantees (µs).
pub fn budget_for(teacher: &Path, latency_us: u64, d: &Deployment) -> Result<(usize, u64)> {
    let bytes = architecture(teacher)?;
    let model = pi_core::Model::parse(&bytes).map_err(|e| anyhow!("architecture: {e}"))?;
    let target = LatencyTarget {
        latency_us,
        include_offline: d.include_offline,
    };
    let b = d
        .cost_model_for(&model)?
        .budget(&model, target)
        .map_err(|e| anyhow!("{}: {e}", d.describe()))?;
    if b.relus == 0 {
        bail!(
            "{}: not even one ReLU fits {:.3} s (one ReLU: {:.3} s); linearize everything or relax the target",
            d.describe(),
            latency_us as f64 / 1e6,
            b.next_latency_us.unwrap_or(0) as f64 / 1e6
        );
    }
    Ok((b.relus as usize, b.latency_us))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_parse_with_units() {
        assert_eq!(parse_latency("2s").unwrap(), 2_000_000);
        assert_eq!(parse_latency("1500ms").unwrap(), 1_500_000);
        assert_eq!(parse_latency("0.5").unwrap(), 500_000);
        assert_eq!(parse_latency("250us").unwrap(), 250);
        assert!(parse_latency("-1s").is_err());
        assert!(parse_latency("fast").is_err());
        assert!(Deployment::default().cost_model().is_ok());
        let bad = Deployment {
            device: "toaster".into(),
            ..Deployment::default()
        };
        assert!(
            bad.cost_model()
                .unwrap_err()
                .to_string()
                .contains("cortex-m4-64")
        );
        let split_delphi = Deployment {
            protocol: "delphi".into(),
            sign_bits: Some(16),
            ..Deployment::default()
        };
        assert!(split_delphi.cost_model().is_err());
    }
}
