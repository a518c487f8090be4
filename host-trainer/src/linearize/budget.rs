//! ReLU budgets: parsing (`1234` or `10%`), per-layer allocation from a score
//! (`f_l = min(1, c·s_l)` with the global scale `c` solved for the budget, linearization.md §4.1
//! and §11.2c) and top-k projection of scores onto a budget.
//!
//! Masks are handled in *units*: one unit is one element (per-element granularity, cost 1) or one
//! channel (per-channel granularity, cost `H·W` ReLUs). Budgets are always in ReLUs per image.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A ReLU budget as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Budget {
    /// Kept ReLUs per image.
    Absolute(usize),
    /// Share of the model's ReLUs (`10%` is `Fraction(0.1)`).
    Fraction(f64),
}

/// A budget the model cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "budget of {budget} ReLUs exceeds the model's {total} ReLUs: give at most {total} or a share such as 10%"
)]
pub struct BudgetTooLarge {
    /// The budget asked for.
    pub budget: usize,
    /// ReLUs of the model.
    pub total: usize,
}

impl Budget {
    /// The budget in ReLUs for a model with `total` ReLUs: at least 1; an absolute budget above
    /// `total` is an error (a silent clamp would run a different experiment than asked).
    pub fn resolve(self, total: usize) -> Result<usize, BudgetTooLarge> {
        match self {
            Self::Absolute(n) if n > total => Err(BudgetTooLarge { budget: n, total }),
            Self::Absolute(n) => Ok(n.max(1)),
            Self::Fraction(f) => Ok(((f * total as f64).round() as usize).clamp(1, total.max(1))),
        }
    }
}

impl FromStr for Budget {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some(p) = s.strip_suffix('%') {
            let f: f64 = p
                .trim()
                .parse()
                .map_err(|_| format!("bad budget `{s}`: expected e.g. 10% or 1500"))?;
            if !(f > 0.0 && f <= 100.0) {
                return Err(format!("budget `{s}` must be in (0%, 100%]"));
            }
            Ok(Self::Fraction(f / 100.0))
        } else {
            let n: usize = s
                .parse()
                .map_err(|_| format!("bad budget `{s}`: expected e.g. 10% or 1500"))?;
            if n == 0 {
                return Err("budget must be at least 1 ReLU".into());
            }
            Ok(Self::Absolute(n))
        }
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Absolute(n) => write!(f, "{n}"),
            Self::Fraction(x) => write!(f, "{}%", 100.0 * x),
        }
    }
}

/// Smallest count a method may end with: 97% of the budget (rounded up).
pub fn floor_of(budget: usize) -> usize {
    (budget * 97).div_ceil(100)
}

/// Per-layer ReLU counts from per-layer scores: `f_l = min(1, c·s_l)` with `c` found by
/// bisection so that `Σ_l N_l·f_l = budget` (`N_l` = ReLUs of layer `l`), then rounded to whole
/// units of `cost[l]` ReLUs. With unit cost 1 the counts sum to `budget` exactly (largest
/// remainders get the leftover ReLUs); with larger units the sum is the largest reachable value
/// not above `budget` by the same greedy rule.
///
/// `units[l]` is the number of units of layer `l`. Layers with score 0 get nothing unless every
/// score is 0 (then the scores are taken as equal).
pub fn allocate(units: &[usize], cost: &[usize], scores: &[f64], budget: usize) -> Vec<usize> {
    let n: Vec<f64> = units
        .iter()
        .zip(cost)
        .map(|(&u, &c)| (u * c) as f64)
        .collect();
    let total: f64 = n.iter().sum();
    let scores: Vec<f64> = if !scores.iter().any(|&s| s > 0.0) {
        vec![1.0; units.len()]
    } else {
        scores.iter().map(|&s| s.max(0.0)).collect()
    };
    let b = (budget as f64).min(total);
    let kept = |c: f64| -> f64 {
        n.iter()
            .zip(&scores)
            .map(|(&nl, &s)| nl * (c * s).min(1.0))
            .sum()
    };
    // kept(c) is continuous and non-decreasing; bracket, then bisect.
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    while kept(hi) < b && hi < 1e30 {
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if kept(mid) < b {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let frac: Vec<f64> = scores.iter().map(|&s| (hi * s).min(1.0)).collect();
    let budget = budget.min(total as usize);
    // Whole units: layers with the largest units first, each rounded to the nearest unit, the
    // rounding error carried on to the layers with smaller units (cost-1 layers absorb it
    // exactly); then any slack goes to the layer that misses the most of its share.
    let target: Vec<f64> = frac.iter().zip(&n).map(|(f, nl)| f * nl).collect();
    let mut order: Vec<usize> = (0..units.len()).collect();
    order.sort_by(|&a, &b| cost[b].cmp(&cost[a]).then(a.cmp(&b)));
    let mut k = vec![0usize; units.len()];
    let (mut carry, mut used) = (0.0f64, 0usize);
    for &l in &order {
        if scores[l] <= 0.0 {
            continue;
        }
        let want = (target[l] + carry).max(0.0);
        let fit = (budget - used) / cost[l];
        k[l] = ((want / cost[l] as f64).round() as usize)
            .min(units[l])
            .min(fit);
        used += k[l] * cost[l];
        carry = want - (k[l] * cost[l]) as f64;
    }
    loop {
        let best = (0..units.len())
            .filter(|&l| k[l] < units[l] && used + cost[l] <= budget && scores[l] > 0.0)
            .max_by(|&a, &b| {
                let ra = target[a] - (k[a] * cost[a]) as f64;
                let rb = target[b] - (k[b] * cost[b]) as f64;
                ra.total_cmp(&rb).then(b.cmp(&a))
            });
        match best {
            Some(l) => {
                k[l] += 1;
                used += cost[l];
            }
            None => break,
        }
    }
    k.iter().zip(cost).map(|(k, c)| k * c).collect()
}

/// Keeps the `k` highest-scoring of `scores` (ties: lower index first).
pub fn topk_layer(scores: &[f32], k: usize) -> Vec<bool> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut keep = vec![false; scores.len()];
    for &i in order.iter().take(k) {
        keep[i] = true;
    }
    keep
}

/// Global top-k projection: the units with the highest scores over all layers, taken in score
/// order while their cost fits `budget` (a unit that does not fit is skipped, smaller ones may
/// still fit). With unit costs of 1 exactly `min(budget, units)` ReLUs are kept.
pub fn topk_global(scores: &[Vec<f32>], cost: &[usize], budget: usize) -> Vec<Vec<bool>> {
    let mut all: Vec<(usize, usize)> = scores
        .iter()
        .enumerate()
        .flat_map(|(l, s)| (0..s.len()).map(move |i| (l, i)))
        .collect();
    all.sort_by(|&(la, ia), &(lb, ib)| {
        scores[lb][ib]
            .total_cmp(&scores[la][ia])
            .then((la, ia).cmp(&(lb, ib)))
    });
    let mut keep: Vec<Vec<bool>> = scores.iter().map(|s| vec![false; s.len()]).collect();
    let mut used = 0;
    for (l, i) in all {
        if used + cost[l] <= budget {
            keep[l][i] = true;
            used += cost[l];
        }
    }
    keep
}

/// ReLUs kept by unit masks.
pub fn kept(masks: &[Vec<bool>], cost: &[usize]) -> usize {
    masks
        .iter()
        .zip(cost)
        .map(|(m, c)| m.iter().filter(|&&b| b).count() * c)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_parsing_and_resolution() {
        assert_eq!("10%".parse::<Budget>(), Ok(Budget::Fraction(0.1)));
        assert_eq!("1500".parse::<Budget>(), Ok(Budget::Absolute(1500)));
        assert!("0".parse::<Budget>().is_err());
        assert!("150%".parse::<Budget>().is_err());
        assert!("x".parse::<Budget>().is_err());
        assert_eq!(Budget::Fraction(0.1).resolve(15_872), Ok(1587));
        assert_eq!(Budget::Absolute(100).resolve(100), Ok(100));
        let err = Budget::Absolute(999_999_999)
            .resolve(1536)
            .expect_err("too large");
        assert!(
            err.to_string().contains("exceeds the model's 1536 ReLUs"),
            "{err}"
        );
        assert_eq!(floor_of(1000), 970);
        assert_eq!(floor_of(101), 98);
    }
}
