//! A ReLU budget from a latency target: the largest number of kept ReLUs whose end-to-end
//! latency on a device and link meets the target, whichever ReLUs they are.
//!
//! Every kept ReLU of a protocol costs the same bytes and cycles wherever it sits, so latency
//! depends on the mask only through the total and through which ReLU layers keep any (a layer
//! with none sends no message). The budget is priced with the *worst* placement of `n` ReLUs:
//! every ReLU layer keeps at least one, and each keeps `ceil(n · size / total)`, which sums to at
//! least `n`. Any mask with `n` kept ReLUs then costs at most the figure reported, so a model
//! linearized to the budget meets the target whatever its mask. With `ring-gc`'s split ReLU
//! the per-ReLU cost depends on the layer's sign width only, so the argument holds for a plan
//! that gives every layer one width, as `protocol-sim` and the trainer build it.

use core::fmt;

use crate::layer::Layer;
use crate::model::Model;

use super::{CostModel, Totals};

/// What a deployment promises: a latency, with or without the preprocessing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LatencyTarget {
    /// End-to-end latency per inference, µs.
    pub latency_us: u64,
    /// Whether the preprocessing (its bytes and the client's preprocessing compute) counts, as
    /// when it cannot run ahead of time. The one-time setup never counts.
    pub include_offline: bool,
}

/// The answer: the largest budget and what it costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Budget {
    /// Kept ReLUs that meet the target, at most the model's ReLU sites.
    pub relus: u64,
    /// ReLU sites of the model.
    pub relus_total: u64,
    /// Latency bound at [`Budget::relus`], µs.
    pub latency_us: u64,
    /// Latency bound with one more ReLU (`None` when every ReLU is kept), µs.
    pub next_latency_us: Option<u64>,
    /// Latency with no ReLU kept, µs.
    pub floor_us: u64,
}

/// Why no budget meets the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BudgetError {
    /// Even with every ReLU linearized, the linear layers and the output take longer.
    Unreachable {
        /// Latency with no ReLU kept, µs.
        floor_us: u64,
    },
}

impl fmt::Display for BudgetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BudgetError::Unreachable { floor_us } => write!(
                f,
                "unreachable: with no ReLU kept the inference already takes {}.{:03} s",
                floor_us / 1_000_000,
                floor_us % 1_000_000 / 1_000
            ),
        }
    }
}

impl core::error::Error for BudgetError {}

/// A latency as people write it: `2s`, `1500ms`, `250us`, or a bare number of seconds
/// (`0.5`); `None` unless it is a positive finite duration. Returns microseconds.
pub fn parse_latency(text: &str) -> Option<u64> {
    let t = text.trim();
    let (number, scale) = if let Some(v) = t.strip_suffix("ms") {
        (v, 1e3)
    } else if let Some(v) = t.strip_suffix("us") {
        (v, 1.0)
    } else if let Some(v) = t.strip_suffix('s') {
        (v, 1e6)
    } else {
        (t, 1e6)
    };
    match number.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Some(libm::round(v * scale) as u64),
        _ => None,
    }
}

impl CostModel {
    /// Totals with `n` ReLUs kept in the worst placement (see the module docs): an upper bound
    /// for any mask of `model` that keeps `n` ReLUs.
    pub fn bound_for(&self, model: &Model<'_>, n: u64) -> Totals {
        let total = model.relu_count().total;
        let kept = move |_: &Layer<'_>, size: u64| -> u64 {
            if n == 0 || size == 0 {
                return 0;
            }
            let share = (n as u128 * size as u128).div_ceil(total.max(1) as u128);
            (share as u64).clamp(1, size)
        };
        self.for_each_layer_with(model, &kept, |_| {})
    }

    /// The largest number of kept ReLUs of `model` (its architecture; the masks are ignored)
    /// whose latency bound meets `target`.
    pub fn budget(&self, model: &Model<'_>, target: LatencyTarget) -> Result<Budget, BudgetError> {
        let total = model.relu_count().total;
        let latency = |n: u64| self.bound_for(model, n).latency_us(target.include_offline);
        let floor_us = latency(0);
        if floor_us > target.latency_us {
            return Err(BudgetError::Unreachable { floor_us });
        }
        // Latency grows with n (per-layer counts are monotone), so bisect: lo meets, hi fails.
        let (mut lo, mut hi) = (0u64, total.saturating_add(1));
        if latency(total) <= target.latency_us {
            lo = total;
        } else {
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if latency(mid) <= target.latency_us {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
        }
        Ok(Budget {
            relus: lo,
            relus_total: total,
            latency_us: latency(lo),
            next_latency_us: (lo < total).then(|| latency(lo + 1)),
            floor_us,
        })
    }
}
