//! `protocol-sim`: private-inference cost tables and end-to-end simulated runs.
//!
//! ```text
//! protocol-sim cost (--arch A [--budget N] | --model M.pic) [--protocol P] [--bits B]
//!                   [--device D] [--link L] [--json]
//! protocol-sim run --model M.pic [--dataset D] [--samples K] [--seed S] [--tcp]
//!                  [--device D] [--link L] [--json]
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use pi_core::Model;
use pi_core::cost::{CostModel, DEVICES, DeviceProfile, LINKS, LinkProfile, Protocol};
use pi_core::share::tolerance::output_tolerance;
use protocol_sim::dataset::{self, Target};
use protocol_sim::run::{Mode, infer};
use protocol_sim::{SimError, arch, report};
use serde_json::json;

const USAGE: &str = "usage:
  protocol-sim cost (--arch A [--budget N] | --model M.pic) [--protocol P] [--bits B]
                    [--device D] [--link L] [--json]
  protocol-sim run --model M.pic [--dataset D] [--samples K] [--seed S] [--tcp]
                   [--device D] [--link L] [--json]
protocols: delphi, ring-gc (default), cryptflow2, cheetah (--bits 32|37|41|64, default 64)
datasets: random (default), digits, mnist, fashion-mnist, or a samples file";

struct Args {
    flags: HashMap<String, String>,
    switches: Vec<String>,
}

impl Args {
    fn parse(args: &[String]) -> Result<Self, SimError> {
        let mut flags = HashMap::new();
        let mut switches = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let Some(name) = a.strip_prefix("--") else {
                return Err(SimError::Usage(format!(
                    "unexpected argument {a:?}\n{USAGE}"
                )));
            };
            match name {
                "json" | "tcp" => switches.push(name.to_string()),
                _ => {
                    let v = it
                        .next()
                        .ok_or_else(|| SimError::Usage(format!("--{name} needs a value")))?;
                    flags.insert(name.to_string(), v.clone());
                }
            }
        }
        Ok(Self { flags, switches })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.flags.get(name).map(String::as_str)
    }

    fn switch(&self, name: &str) -> bool {
        self.switches.iter().any(|s| s == name)
    }

    fn number<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, SimError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| SimError::Usage(format!("--{name}: not a number: {v:?}"))),
        }
    }

    fn cost_model(&self) -> Result<CostModel, SimError> {
        let bits = self.number("bits", 64u8)?;
        let protocol = Protocol::by_name(self.get("protocol").unwrap_or("ring-gc"), bits)
            .map_err(|e| SimError::Usage(e.to_string()))?;
        let device_name = self.get("device").unwrap_or("cortex-m4-64");
        let device = DeviceProfile::by_name(device_name).ok_or_else(|| {
            let names: Vec<_> = DEVICES.iter().map(|d| d.name).collect();
            SimError::Usage(format!(
                "unknown device {device_name:?} (known: {})",
                names.join(", ")
            ))
        })?;
        let link_name = self.get("link").unwrap_or("lte");
        let link = LinkProfile::by_name(link_name).ok_or_else(|| {
            let names: Vec<_> = LINKS.iter().map(|l| l.name).collect();
            SimError::Usage(format!(
                "unknown link {link_name:?} (known: {})",
                names.join(", ")
            ))
        })?;
        Ok(CostModel::new(protocol, device, link))
    }
}

fn read_model(path: &str) -> Result<Vec<u8>, SimError> {
    std::fs::read(path).map_err(|e| SimError::Usage(format!("model file {path}: {e}")))
}

/// Model bytes, its all-ReLU counterpart, and a description.
fn cost_inputs(args: &Args) -> Result<(Vec<u8>, Vec<u8>, String), SimError> {
    match (args.get("arch"), args.get("model")) {
        (Some(name), None) => {
            let mut spec = arch::spec(name)?;
            let all = spec.to_bytes()?;
            let budget = args
                .get("budget")
                .map(|_| args.number("budget", 0u64))
                .transpose()?;
            arch::apply_budget(&mut spec, budget)?;
            let what = match budget {
                Some(b) => format!("{name} (budget {b})"),
                None => name.to_string(),
            };
            Ok((spec.to_bytes()?, all, what))
        }
        (None, Some(path)) => {
            let bytes = read_model(path)?;
            let all = arch::all_relu(&Model::parse(&bytes)?.to_spec()).to_bytes()?;
            Ok((bytes, all, path.to_string()))
        }
        _ => Err(SimError::Usage(format!(
            "cost needs exactly one of --arch or --model\n{USAGE}"
        ))),
    }
}

fn cost(args: &Args) -> Result<(), SimError> {
    let m = args.cost_model()?;
    let (bytes, all_bytes, what) = cost_inputs(args)?;
    let report = m.estimate(&Model::parse(&bytes)?);
    let all = m.estimate(&Model::parse(&all_bytes)?).total;
    if args.switch("json") {
        println!("{:#}", report::cost_json(&m, &what, &report, &all));
    } else {
        print!("{}", report::cost_table(&m, &what, &report, &all));
    }
    Ok(())
}

fn run(args: &Args) -> Result<(), SimError> {
    let m = args.cost_model()?;
    if !matches!(m.protocol, Protocol::RingGc) {
        return Err(SimError::Usage(
            "run simulates the ring-gc protocol only".into(),
        ));
    }
    let path = args
        .get("model")
        .ok_or_else(|| SimError::Usage(format!("run needs --model\n{USAGE}")))?;
    let bytes = read_model(path)?;
    let model = Model::parse(&bytes)?;
    let count = args.number("samples", 10usize)?;
    let seed = args.number("seed", 1u64)?;
    let mode = if args.switch("tcp") {
        Mode::Tcp
    } else {
        Mode::Channel
    };
    let target = Target {
        elements: model.input_shape().elements(),
        frac_bits: model.activation_frac_bits(),
        model_path: Some(Path::new(path)),
    };
    let samples = dataset::load(args.get("dataset").unwrap_or("random"), count, seed, target)?;
    if samples.is_empty() {
        return Err(SimError::Usage("the dataset has no samples".into()));
    }
    let report = m.estimate(&model);
    let all_bytes = arch::all_relu(&model.to_spec()).to_bytes()?;
    let all = m.estimate(&Model::parse(&all_bytes)?).total;
    let tolerance = output_tolerance(&model);

    let started = Instant::now();
    let (mut agree, mut correct, mut labelled, mut worst, mut exact_bytes) = (0, 0, 0, 0u64, true);
    let mut first = None;
    for (i, s) in samples.iter().enumerate() {
        let r = infer(&bytes, &s.input, seed.wrapping_add(i as u64), mode, false)?;
        agree += usize::from(r.argmax_agrees());
        worst = worst.max(r.max_abs_diff());
        exact_bytes &=
            r.stats.total == report.total.online && r.stats.flights == report.total.flights;
        if let Some(label) = s.label {
            labelled += 1;
            correct += usize::from(protocol_sim::run::argmax(&r.private) == label as usize);
        }
        first.get_or_insert(r);
    }
    let secs = started.elapsed().as_secs_f64();
    let n = samples.len();
    let Some(first) = first else {
        return Err(SimError::Usage("no samples".into()));
    };
    if args.switch("json") {
        let v = json!({
            "model": path,
            "samples": n,
            "argmax_agree": agree,
            "max_abs_diff": worst,
            "tolerance": tolerance,
            "labelled": labelled,
            "private_correct": correct,
            "bytes_equal_model": exact_bytes,
            "measured_online_up": first.stats.total.up,
            "measured_online_down": first.stats.total.down,
            "measured_flights": first.stats.flights,
            "seconds": secs,
            "cost": report::cost_json(&m, path, &report, &all),
        });
        println!("{v:#}");
    } else {
        println!(
            "{path}: {n} private inferences ({}), ring-gc, {}",
            if mode == Mode::Tcp {
                "TCP loopback"
            } else {
                "in-process channel"
            },
            if exact_bytes {
                "measured bytes equal the cost model for every sample"
            } else {
                "MEASURED BYTES DIFFER FROM THE COST MODEL"
            }
        );
        print!("{}", report::run_table(&report, &first.stats));
        println!(
            "argmax agrees on {agree}/{n}; max |private - plaintext| = {worst} LSB (bound {tolerance})"
        );
        if labelled > 0 {
            println!("private accuracy on labelled samples: {correct}/{labelled}");
        }
        println!(
            "{:.1} inferences/s ({:.3} s each, both parties and offline phase on this host)",
            n as f64 / secs,
            secs / n as f64
        );
        print!("{}", report::cost_table(&m, path, &report, &all));
    }
    if agree * 1000 < n * 999 || worst > tolerance || !exact_bytes {
        return Err(SimError::Usage(
            "private results or bytes disagree with the plaintext/cost model".into(),
        ));
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.split_first() {
        Some((cmd, rest)) => Args::parse(rest).and_then(|a| match cmd.as_str() {
            "cost" => cost(&a),
            "run" => run(&a),
            _ => Err(SimError::Usage(USAGE.to_string())),
        }),
        None => Err(SimError::Usage(USAGE.to_string())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("protocol-sim: {e}");
            ExitCode::FAILURE
        }
    }
}
