//! Text tables and JSON for the CLI.

use std::fmt::Write as _;

use pi_core::cost::{CostModel, CostReport, LayerCost, Totals, Traffic};
use serde_json::{Value, json};

use crate::channel::Stats;

/// `1234567` → `1.2 MB` (decimal units, as link speeds are).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Microseconds as seconds or milliseconds.
pub fn duration(us: u64) -> String {
    if us >= 1_000_000 {
        format!("{:.2} s", us as f64 / 1e6)
    } else {
        format!("{:.1} ms", us as f64 / 1e3)
    }
}

fn layer_json(c: &LayerCost) -> Value {
    json!({
        "index": c.index,
        "kind": c.kind.name(),
        "relus_kept": c.relus_kept,
        "relus_total": c.relus_total,
        "and_gates": c.and_gates,
        "offline_up": c.offline.up,
        "offline_down": c.offline.down,
        "online_up": c.online.up,
        "online_down": c.online.down,
        "flights": c.flights,
        "client_storage": c.client_storage,
        "server_storage": c.server_storage,
        "client_cycles": c.client_cycles,
    })
}

/// The totals as JSON.
pub fn totals_json(t: &Totals) -> Value {
    json!({
        "relus_kept": t.relus_kept,
        "relus_total": t.relus_total,
        "and_gates": t.and_gates,
        "offline_up": t.offline.up,
        "offline_down": t.offline.down,
        "setup_up": t.setup.up,
        "setup_down": t.setup.down,
        "online_up": t.online.up,
        "online_down": t.online.down,
        "output_bytes": t.output_bytes,
        "flights": t.flights,
        "client_storage": t.client_storage,
        "server_storage": t.server_storage,
        "client_cycles": t.client_cycles,
        "online_latency_us": t.online_latency_us,
        "offline_latency_us": t.offline_latency_us,
        "client_material_fits": t.fit.name(),
        "material_delivery": t.delivery.name(),
        "material_streamed_bytes": t.streamed,
    })
}

/// A cost report (and its all-ReLU counterpart) as JSON.
pub fn cost_json(m: &CostModel, what: &str, r: &CostReport, all: &Totals) -> Value {
    json!({
        "model": what,
        "protocol": m.protocol.to_string(),
        "device": m.device.name,
        "link": m.link.name,
        "layers": r.layers.iter().map(layer_json).collect::<Vec<_>>(),
        "total": totals_json(&r.total),
        "all_relu_total": totals_json(all),
    })
}

fn summary(out: &mut String, label: &str, t: &Totals) {
    let _ = writeln!(
        out,
        "{label:<10} {:>9} ReLUs  online {:>9} up {:>9} down, {:>4} flights, {:>10}  | offline {:>9} | client storage {:>9} ({}) | online latency {}",
        t.relus_kept,
        bytes(t.online.up),
        bytes(t.online.down),
        t.flights,
        format!("{:.1} Mcyc", t.client_cycles as f64 / 1e6),
        bytes(t.offline.total()),
        bytes(t.client_storage),
        t.fit.name(),
        duration(t.online_latency_us),
    );
}

/// The `cost` table: per layer, total, latency and the all-ReLU comparison.
pub fn cost_table(m: &CostModel, what: &str, r: &CostReport, all: &Totals) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{what}: protocol {}, device {}, link {}",
        m.protocol, m.device.name, m.link.name
    );
    let _ = writeln!(
        out,
        "{:>5} {:<8} {:>15} {:>10} {:>10} {:>7} {:>11} {:>11} {:>11}",
        "layer",
        "kind",
        "relus kept/all",
        "online up",
        "online dn",
        "flights",
        "offline",
        "client mem",
        "client Mcyc"
    );
    for c in r.layers.iter() {
        let relus = if c.relus_total > 0 {
            format!("{}/{}", c.relus_kept, c.relus_total)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{:>5} {:<8} {:>15} {:>10} {:>10} {:>7} {:>11} {:>11} {:>11.2}",
            c.index,
            c.kind.name(),
            relus,
            bytes(c.online.up),
            bytes(c.online.down),
            c.flights,
            bytes(c.offline.total()),
            bytes(c.client_storage),
            c.client_cycles as f64 / 1e6,
        );
    }
    let t = &r.total;
    let _ = writeln!(
        out,
        "{:>5} {:<8} {:>15} {:>10} {:>10} {:>7}",
        "",
        "output",
        "",
        "",
        bytes(t.output_bytes),
        ""
    );
    summary(&mut out, "total", t);
    summary(&mut out, "all-ReLU", all);
    if t.streamed > 0 {
        let _ = writeln!(
            out,
            "client material streamed in the online phase: {} (counted in online down and latency)",
            bytes(t.streamed)
        );
    }
    if t.setup.total() > 0 {
        let _ = writeln!(out, "one-time setup: {} each way", bytes(t.setup.up));
    }
    let _ = writeln!(
        out,
        "linearization saves {} online bytes ({:.1}x), {} of offline material, {} of online latency",
        bytes(all.online.total().saturating_sub(t.online.total())),
        all.online.total() as f64 / t.online.total().max(1) as f64,
        bytes(all.offline.total().saturating_sub(t.offline.total())),
        duration(all.online_latency_us.saturating_sub(t.online_latency_us)),
    );
    out
}

/// The `run` table: measured bytes per layer against the cost model.
pub fn run_table(r: &CostReport, measured: &Stats) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>5} {:<8} {:>10} {:>12} {:>12} {:>12} {:>12} {:>6}",
        "layer",
        "kind",
        "relus kept",
        "measured up",
        "model up",
        "measured dn",
        "model dn",
        "equal"
    );
    let row = |out: &mut String, idx: String, kind: &str, kept: u64, m: Traffic, c: Traffic| {
        let _ = writeln!(
            out,
            "{idx:>5} {kind:<8} {kept:>10} {:>12} {:>12} {:>12} {:>12} {:>6}",
            m.up,
            c.up,
            m.down,
            c.down,
            if m == c { "yes" } else { "NO" }
        );
    };
    for c in r.layers.iter() {
        let m = measured.per_layer.get(c.index).copied().unwrap_or_default();
        row(
            &mut out,
            c.index.to_string(),
            c.kind.name(),
            c.relus_kept,
            m,
            c.online,
        );
    }
    let out_m = measured.per_layer.last().copied().unwrap_or_default();
    let out_c = Traffic {
        up: 0,
        down: r.total.output_bytes,
    };
    row(&mut out, String::new(), "output", 0, out_m, out_c);
    row(
        &mut out,
        String::new(),
        "total",
        r.total.relus_kept,
        measured.total,
        r.total.online,
    );
    let _ = writeln!(
        out,
        "flights: measured {}, model {}",
        measured.flights, r.total.flights
    );
    out
}
