//! Text tables and JSON for the CLI.

use std::fmt::Write as _;

use pi_core::cost::{
    Budget, ClientMemory, CostModel, CostReport, LatencyTarget, LayerCost, PartyMemory, Protocol,
    Totals, Traffic, WorkingSet,
};
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
        "client_offline_cycles": c.client_offline_cycles,
    })
}

fn working_json(w: &WorkingSet) -> Value {
    json!({
        "bytes": w.bytes,
        "largest": w.largest.describe(),
        "largest_bytes": w.largest_bytes,
    })
}

fn party_json(m: &PartyMemory) -> Value {
    json!({
        "stored": m.stored,
        "offline_working": working_json(&m.offline),
        "online_working": working_json(&m.online),
    })
}

fn client_memory_json(c: &ClientMemory) -> Value {
    json!({
        "memory": party_json(&c.memory),
        "verdict": c.verdict.name(),
        "reason": c.reason().to_string(),
        "online_phase_verdict": c.online_verdict.name(),
        "ram": c.ram,
        "flash": c.flash,
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
        "client_offline_cycles": t.client_offline_cycles,
        "online_latency_us": t.online_latency_us,
        "offline_latency_us": t.offline_latency_us,
        "setup_latency_us": t.setup_latency_us,
        "client_memory": client_memory_json(&t.client_memory),
        "server_memory": party_json(&t.server_memory),
        "client_material_fits": t.fit.name(),
        "material_delivery": t.delivery.name(),
        "material_streamed_bytes": t.streamed,
    })
}

/// The protocol as the reports name it, with the split ReLU's sign width when it is priced.
fn protocol_label(m: &CostModel) -> String {
    match m.relu.narrowest_split() {
        Some(t) if m.protocol == Protocol::RingGc => {
            format!("{} (split ReLU, {t} sign bits)", m.protocol)
        }
        _ => m.protocol.to_string(),
    }
}

/// A cost report (and its all-ReLU counterpart) as JSON.
pub fn cost_json(m: &CostModel, what: &str, r: &CostReport, all: &Totals) -> Value {
    json!({
        "model": what,
        "protocol": protocol_label(m),
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
        protocol_label(m),
        m.device.name,
        m.link.name
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
    let _ = writeln!(
        out,
        "offline (per inference): {} up, {} down, client {:.1} Mcyc; {}",
        bytes(t.offline.up),
        bytes(t.offline.down),
        t.client_offline_cycles as f64 / 1e6,
        duration(t.offline_latency_us),
    );
    let _ = writeln!(
        out,
        "one-time setup (HE keys, base OTs{}): {} up, {} down; {}",
        if t.setup.down > 100_000 {
            ", silent-OT bootstrap"
        } else {
            ""
        },
        bytes(t.setup.up),
        bytes(t.setup.down),
        duration(t.setup_latency_us),
    );
    memory_lines(&mut out, t);
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

fn memory_lines(out: &mut String, t: &Totals) {
    let c = &t.client_memory;
    let (m, s) = (&c.memory, &t.server_memory);
    let _ = writeln!(
        out,
        "client memory: stored {}, working set offline {} / online {} (largest: {}): {} ({})",
        bytes(m.stored),
        bytes(m.offline.bytes),
        bytes(m.online.bytes),
        m.peak_working().1.largest.describe(),
        c.verdict.name().to_uppercase(),
        c.reason(),
    );
    let _ = writeln!(
        out,
        "  online phase alone (preprocessing elsewhere): {}",
        c.online_verdict.name()
    );
    let _ = writeln!(
        out,
        "server memory: stored {}, working set offline {} / online {}",
        bytes(s.stored),
        bytes(s.offline.bytes),
        bytes(s.online.bytes),
    );
}

fn target_text(target: LatencyTarget) -> String {
    format!(
        "{} {}",
        duration(target.latency_us),
        if target.include_offline {
            "online + offline"
        } else {
            "online (offline excluded)"
        }
    )
}

/// The `budget` answer as text.
pub fn budget_text(
    m: &CostModel,
    what: &str,
    target: LatencyTarget,
    b: &Budget,
    at: &Totals,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{what}: protocol {}, device {}, link {}, target {}",
        protocol_label(m),
        m.device.name,
        m.link.name,
        target_text(target)
    );
    let _ = writeln!(
        out,
        "budget: {} of {} ReLUs (latency bound {}; {}; no ReLU: {})",
        b.relus,
        b.relus_total,
        duration(b.latency_us),
        match b.next_latency_us {
            Some(next) => format!("{} ReLUs: {}", b.relus + 1, duration(next)),
            None => "every ReLU kept".to_string(),
        },
        duration(b.floor_us),
    );
    let _ = writeln!(
        out,
        "at the budget: online {} up / {} down in {} flights, client {:.1} Mcyc online; offline {}; client storage {} ({})",
        bytes(at.online.up),
        bytes(at.online.down),
        at.flights,
        at.client_cycles as f64 / 1e6,
        duration(at.offline_latency_us),
        bytes(at.client_storage),
        at.delivery.name(),
    );
    let _ = writeln!(
        out,
        "the bound holds for any placement of the kept ReLUs (priced with every ReLU layer keeping some)"
    );
    out
}

/// The `budget` answer as JSON.
pub fn budget_json(
    m: &CostModel,
    what: &str,
    target: LatencyTarget,
    b: &Budget,
    at: &Totals,
) -> Value {
    json!({
        "model": what,
        "protocol": protocol_label(m),
        "device": m.device.name,
        "link": m.link.name,
        "target_us": target.latency_us,
        "include_offline": target.include_offline,
        "relus": b.relus,
        "relus_total": b.relus_total,
        "latency_us": b.latency_us,
        "next_latency_us": b.next_latency_us,
        "floor_us": b.floor_us,
        "at_budget": totals_json(at),
    })
}

/// One `compare` row as JSON.
pub fn compare_json(m: &CostModel, t: &Totals) -> Value {
    json!({
        "protocol": protocol_label(m),
        "device": m.device.name,
        "link": m.link.name,
        "total": totals_json(t),
    })
}

/// The `compare` table: per device and link, each protocol's client storage, compute and
/// latency.
pub fn compare_table(what: &str, rows: &[(CostModel, Totals)]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{what}: every device and link preset");
    let _ = writeln!(
        out,
        "{:<19} {:<5} {:<15} {:>11} {:>12} {:>12} {:>11} {:>11} {:>11} {:<17}",
        "device",
        "link",
        "protocol",
        "client mem",
        "online Mcyc",
        "offline Mcyc",
        "online",
        "offline",
        "on+off",
        "online phase"
    );
    for (m, t) in rows {
        let _ = writeln!(
            out,
            "{:<19} {:<5} {:<15} {:>11} {:>12.1} {:>12.1} {:>11} {:>11} {:>11} {:<17}",
            m.device.name,
            m.link.name,
            m.protocol.to_string(),
            bytes(t.client_storage),
            t.client_cycles as f64 / 1e6,
            t.client_offline_cycles as f64 / 1e6,
            duration(t.online_latency_us),
            duration(t.offline_latency_us),
            duration(t.latency_us(true)),
            t.client_memory.online_verdict.name(),
        );
    }
    let _ = writeln!(
        out,
        "client mem: material stored between the phases; online phase: the device verdict for the online phase alone (HE preprocessing elsewhere)"
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
