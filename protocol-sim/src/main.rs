//! `protocol-sim`: private-inference cost tables, end-to-end runs in one process, and the server
//! and client as separate processes. `protocol-sim <command> --help` lists every option.

use std::collections::HashSet;
use std::io::Write as _;
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};
use pi_core::cost::{
    CostModel, CostReport, DEVICES, DeviceProfile, Direction, LINKS, LatencyTarget, LinkProfile,
    Protocol, Totals,
};
use pi_core::share::tolerance::output_tolerance;
use pi_core::share::{Delivery, ReluPlan};
use pi_core::{Model, ParseOptions};
use protocol_sim::channel::{Meter, Metered, configure_tcp};
use protocol_sim::dataset::{self, Sample, Target};
use protocol_sim::entropy::{Entropy, INSECURE_SEED_WARNING};
use protocol_sim::run::{Inference, Mode, Options, architecture_only, run_session};
use protocol_sim::session::ServeOptions;
use protocol_sim::{SimError, arch, report, session};
use serde_json::json;

#[derive(Parser)]
#[command(
    name = "protocol-sim",
    version,
    about = "Private inference of pi-core models: cost tables, simulated runs, server and client"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Price a private inference with the cost model (per layer and in total).
    Cost(CostArgs),
    /// The largest number of kept ReLUs whose latency on a device and link meets a target.
    Budget(BudgetArgs),
    /// Server-garbler next to client-garbler (or any protocols) on every device and link preset.
    Compare(CompareArgs),
    /// Run private inferences end to end in one process and check them against plaintext.
    Run(RunArgs),
    /// Serve private inferences: the server with the weights, and the dealer standing in for
    /// HE and OT.
    Serve(ServeArgs),
    /// Run private inferences as the client against a `serve` process.
    Client(ClientArgs),
}

/// Protocol, device and link of the cost model.
#[derive(Args)]
struct Pricing {
    /// Protocol: delphi, ring-gc, client-garbler, cryptflow2 or cheetah.
    #[arg(long, default_value = "ring-gc")]
    protocol: String,
    /// Ring width of cryptflow2/cheetah: 32, 37, 41 or 64.
    #[arg(long, default_value_t = 64)]
    bits: u8,
    /// Client device preset.
    #[arg(long, default_value = "cortex-m4-64")]
    device: String,
    /// Network preset.
    #[arg(long, default_value = "lte")]
    link: String,
}

impl Pricing {
    fn model(&self) -> Result<CostModel, SimError> {
        let protocol = Protocol::by_name(&self.protocol, self.bits)
            .map_err(|e| SimError::Usage(format!("--protocol {}: {e}", self.protocol)))?;
        let device = DeviceProfile::by_name(&self.device).ok_or_else(|| {
            let names: Vec<_> = DEVICES.iter().map(|d| d.name).collect();
            SimError::Usage(format!(
                "unknown device {:?} (known: {})",
                self.device,
                names.join(", ")
            ))
        })?;
        let link = LinkProfile::by_name(&self.link).ok_or_else(|| {
            let names: Vec<_> = LINKS.iter().map(|l| l.name).collect();
            SimError::Usage(format!(
                "unknown link {:?} (known: {})",
                self.link,
                names.join(", ")
            ))
        })?;
        Ok(CostModel::new(protocol, device, link))
    }
}

/// How the client's offline material reaches it.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DeliveryArg {
    /// Sent before the online phase; the client stores it.
    Stored,
    /// Streamed during the online phase just before the client uses it.
    Streamed,
}

/// The ReLU protocol.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReluArg {
    /// The full garbled ReLU (189 AND gates).
    Full,
    /// Garbled sign on --sign-bits bits plus a multiplexer (Circa's split ReLU).
    Split,
}

/// Which ReLU protocol the client asks for.
#[derive(Args)]
struct ReluChoice {
    /// ReLU protocol in every layer.
    #[arg(long, value_enum, default_value = "full")]
    relu: ReluArg,
    /// Sign width t of the split ReLU (2 to 64; 64 is exact). Each layer's range h comes from
    /// the model's proven activation bounds on the server; the k = h - t lowest bits are
    /// dropped. The costs depend on t only.
    #[arg(long, default_value_t = 64)]
    sign_bits: u8,
}

impl ReluChoice {
    /// The sign width when split.
    fn split_sign_bits(&self) -> Option<u8> {
        (self.relu == ReluArg::Split).then_some(self.sign_bits)
    }

    /// The plan to price: the split ReLU's cost depends on `t` only.
    fn cost_plan(&self, model: &Model<'_>) -> Result<ReluPlan, SimError> {
        match self.split_sign_bits() {
            None => Ok(ReluPlan::full()),
            Some(t) => ReluPlan::split_with(model, t, |_| t)
                .map_err(|e| SimError::Usage(format!("--sign-bits: {e}"))),
        }
    }

    /// `m` with this ReLU protocol priced (the split ReLU is a `ring-gc` construction).
    fn price(&self, m: CostModel, model: &Model<'_>) -> Result<CostModel, SimError> {
        if self.relu == ReluArg::Split && m.protocol != Protocol::RingGc {
            return Err(SimError::Usage(format!(
                "--relu split runs with ring-gc only, not {}",
                m.protocol
            )));
        }
        Ok(m.with_relu_plan(self.cost_plan(model)?))
    }

    /// How a run names it.
    fn describe(&self) -> String {
        self.split_sign_bits()
            .map_or("full".to_string(), |t| format!("split, {t} sign bits"))
    }
}

/// The most work a model may take before an inference command refuses it.
#[derive(Args)]
struct WorkLimit {
    /// Refuse a model whose inference takes more than this many ops (pi-core's `Model::ops`:
    /// multiply-accumulates plus pooled, added and rectified elements), so that a hostile or
    /// mistaken file cannot stall the run. The committed digits CNN takes 87,488.
    #[arg(long, default_value_t = 4_000_000_000)]
    max_ops: u64,
}

impl WorkLimit {
    /// Parses `bytes`, refusing a model above the limit.
    fn parse<'a>(&self, bytes: &'a [u8]) -> Result<Model<'a>, SimError> {
        Ok(Model::parse_with(
            bytes,
            &ParseOptions::new().with_max_ops(self.max_ops),
        )?)
    }
}

/// What the server proves the split ReLU's ranges from.
#[derive(Args)]
struct RangeArgs {
    /// Bound on |input| (real value, after normalization) the split ReLU's ranges are proven
    /// from; default: the range the export sidecar's normalization gives (`run` on random
    /// inputs: 1).
    #[arg(long)]
    input_bound: Option<f64>,
    /// Use this range h in every split layer instead of the narrowest the proven bound allows
    /// (refused if it does not cover the bound).
    #[arg(long)]
    range_bits: Option<u8>,
}

impl RangeArgs {
    /// The input bound in LSBs: the flag, else the sidecar's normalization, else 1.0 when the
    /// inputs are the random ones.
    fn input_bound(&self, model: &Model<'_>, path: &Path, dataset: Option<&str>) -> Option<u64> {
        let scale = f64::from(1u32 << model.activation_frac_bits());
        match self.input_bound {
            Some(b) => Some((b.abs() * scale).ceil() as u64 + 1),
            None => dataset::input_bound(path, model.activation_frac_bits())
                .or((dataset == Some("random")).then_some(scale as u64)),
        }
    }
}

impl From<DeliveryArg> for Delivery {
    fn from(d: DeliveryArg) -> Self {
        match d {
            DeliveryArg::Stored => Delivery::Stored,
            DeliveryArg::Streamed => Delivery::Streamed,
        }
    }
}

/// What to price: a standard architecture or an exported model.
#[derive(Args)]
struct Source {
    /// A standard architecture (resnet18, resnet20, resnet32, digits-cnn, lenet).
    #[arg(long, conflicts_with = "model", required_unless_present = "model")]
    arch: Option<String>,
    /// Kept ReLUs for --arch (same keep fraction in every ReLU layer).
    #[arg(long, requires = "arch")]
    budget: Option<u64>,
    /// An exported pi-core model file.
    #[arg(long)]
    model: Option<PathBuf>,
}

#[derive(Args)]
struct CostArgs {
    #[command(flatten)]
    source: Source,
    #[command(flatten)]
    pricing: Pricing,
    /// Force the material delivery (default: streamed only when it fits neither RAM nor flash).
    #[arg(long, value_enum)]
    delivery: Option<DeliveryArg>,
    #[command(flatten)]
    relu: ReluChoice,
    /// JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct BudgetArgs {
    /// A standard architecture (resnet18, resnet20, resnet32, digits-cnn, lenet).
    #[arg(long, conflicts_with = "model", required_unless_present = "model")]
    arch: Option<String>,
    /// An exported pi-core model file (its architecture; its masks are ignored).
    #[arg(long)]
    model: Option<PathBuf>,
    #[command(flatten)]
    pricing: Pricing,
    /// End-to-end latency target per inference: `2s`, `1500ms`, `0.5` (seconds).
    #[arg(long)]
    latency: String,
    /// Count the preprocessing (its bytes and the client's garbling) in the latency, as when it
    /// cannot run ahead of time. The one-time setup never counts.
    #[arg(long)]
    include_offline: bool,
    #[command(flatten)]
    relu: ReluChoice,
    /// JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct CompareArgs {
    #[command(flatten)]
    source: Source,
    /// Protocols to compare, comma-separated.
    #[arg(long, default_value = "ring-gc,client-garbler", value_delimiter = ',')]
    protocols: Vec<String>,
    /// Ring width of cryptflow2/cheetah: 32, 37, 41 or 64.
    #[arg(long, default_value_t = 64)]
    bits: u8,
    /// JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Where the inputs come from.
#[derive(Args)]
struct Inputs {
    /// random, digits, mnist, fashion-mnist, or a samples file (`label v0 v1 ...` per line).
    #[arg(long, default_value = "random")]
    dataset: String,
    /// How many samples.
    #[arg(long, default_value_t = 10)]
    samples: usize,
}

/// Randomness and patience shared by the commands that run the protocol.
#[derive(Args)]
struct Session {
    /// Reproducible randomness from this public number. INSECURE: for tests and benchmarks
    /// only; by default every seed, label and mask comes from the operating system.
    #[arg(long)]
    seed: Option<u64>,
    /// Seconds to wait for the peer before giving up.
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
}

impl Session {
    fn timeout(&self) -> Result<Duration, SimError> {
        Duration::try_from_secs_f64(self.timeout)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                SimError::Usage(format!(
                    "--timeout {}: not a positive duration",
                    self.timeout
                ))
            })
    }

    fn warn_if_seeded(&self) {
        if self.seed.is_some() {
            eprintln!("protocol-sim: {INSECURE_SEED_WARNING}");
        }
    }
}

#[derive(Args)]
struct RunArgs {
    /// The model file (the server's, with weights).
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    inputs: Inputs,
    #[command(flatten)]
    session: Session,
    /// Connect the parties over TCP loopback instead of an in-process channel.
    #[arg(long)]
    tcp: bool,
    /// How the client gets its material.
    #[arg(long, value_enum, default_value = "stored")]
    delivery: DeliveryArg,
    #[command(flatten)]
    relu: ReluChoice,
    #[command(flatten)]
    ranges: RangeArgs,
    #[command(flatten)]
    pricing: Pricing,
    /// JSON instead of tables.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    limit: WorkLimit,
}

#[derive(Args)]
struct ServeArgs {
    /// The model file (with weights).
    #[arg(long)]
    model: PathBuf,
    /// Which garbled-circuit protocol to serve: ring-gc (the server garbles) or client-garbler.
    #[arg(long, default_value = "ring-gc")]
    protocol: String,
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long)]
    listen: String,
    /// Stop after this many sessions (exit status 1 if any failed); default: serve forever.
    #[arg(long)]
    sessions: Option<u64>,
    /// Accept only this delivery (default: whatever the client asks for).
    #[arg(long, value_enum)]
    delivery: Option<DeliveryArg>,
    /// Without --input-bound or the export sidecar, the split ReLU is refused.
    #[command(flatten)]
    ranges: RangeArgs,
    #[command(flatten)]
    session: Session,
    #[command(flatten)]
    limit: WorkLimit,
}

#[derive(Args)]
struct ClientArgs {
    /// The server's address.
    #[arg(long)]
    connect: String,
    /// The model file: only its architecture is used (the weights may be zero).
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    inputs: Inputs,
    /// How the client gets its material.
    #[arg(long, value_enum, default_value = "stored")]
    delivery: DeliveryArg,
    #[command(flatten)]
    relu: ReluChoice,
    /// Also compare with the plaintext engine (test harness: needs the weights in --model).
    #[arg(long)]
    check: bool,
    #[command(flatten)]
    session: Session,
    #[command(flatten)]
    pricing: Pricing,
    #[command(flatten)]
    limit: WorkLimit,
}

fn read_model(path: &Path) -> Result<Vec<u8>, SimError> {
    std::fs::read(path).map_err(|e| SimError::Usage(format!("model file {}: {e}", path.display())))
}

fn load_inputs(
    inputs: &Inputs,
    model: &Model<'_>,
    path: &Path,
    seed: u64,
) -> Result<Vec<Sample>, SimError> {
    let target = Target {
        elements: model.input_shape().elements(),
        frac_bits: model.activation_frac_bits(),
        model_path: Some(path),
    };
    let samples = dataset::load(&inputs.dataset, inputs.samples, seed, target)?;
    if samples.is_empty() {
        return Err(SimError::Usage("the dataset has no samples".into()));
    }
    Ok(samples)
}

/// Model bytes, its all-ReLU counterpart, and a description.
fn cost_inputs(args: &Source) -> Result<(Vec<u8>, Vec<u8>, String), SimError> {
    match (&args.arch, &args.model) {
        (Some(name), None) => {
            let mut spec = arch::spec(name)?;
            let all = spec.to_bytes()?;
            arch::apply_budget(&mut spec, args.budget)?;
            let what = match args.budget {
                Some(b) => format!("{name} (budget {b})"),
                None => name.to_string(),
            };
            Ok((spec.to_bytes()?, all, what))
        }
        (None, Some(path)) => {
            let bytes = read_model(path)?;
            let all = arch::all_relu(&Model::parse(&bytes)?.to_spec()).to_bytes()?;
            Ok((bytes, all, path.display().to_string()))
        }
        _ => Err(SimError::Usage(
            "cost needs exactly one of --arch or --model".into(),
        )),
    }
}

fn cost(args: &CostArgs) -> Result<(), SimError> {
    let mut m = args.pricing.model()?;
    if let Some(d) = args.delivery {
        m = m.with_delivery(d.into());
    }
    let (bytes, all_bytes, what) = cost_inputs(&args.source)?;
    let model = Model::parse(&bytes)?;
    let m = args.relu.price(m, &model)?;
    let report = m.estimate(&model);
    let all = m.estimate(&Model::parse(&all_bytes)?).total;
    if args.json {
        println!("{:#}", report::cost_json(&m, &what, &report, &all));
    } else {
        print!("{}", report::cost_table(&m, &what, &report, &all));
    }
    Ok(())
}

/// `--latency` in microseconds.
fn parse_latency(text: &str) -> Result<u64, SimError> {
    pi_core::cost::parse_latency(text).ok_or_else(|| {
        SimError::Usage(format!(
            "--latency {text:?}: expected a positive duration such as 2s, 1500ms or 0.5"
        ))
    })
}

fn budget(args: &BudgetArgs) -> Result<(), SimError> {
    let m = args.pricing.model()?;
    let source = Source {
        arch: args.arch.clone(),
        budget: None,
        model: args.model.clone(),
    };
    let (_, all_bytes, what) = cost_inputs(&source)?;
    let model = Model::parse(&all_bytes)?;
    let m = args.relu.price(m, &model)?;
    let target = LatencyTarget {
        latency_us: parse_latency(&args.latency)?,
        include_offline: args.include_offline,
    };
    let b = m
        .budget(&model, target)
        .map_err(|e| SimError::Usage(format!("{what}: {e}")))?;
    let at = m.bound_for(&model, b.relus);
    if args.json {
        println!("{:#}", report::budget_json(&m, &what, target, &b, &at));
    } else {
        print!("{}", report::budget_text(&m, &what, target, &b, &at));
    }
    Ok(())
}

fn compare(args: &CompareArgs) -> Result<(), SimError> {
    let (bytes, _, what) = cost_inputs(&args.source)?;
    let model = Model::parse(&bytes)?;
    let protocols = args
        .protocols
        .iter()
        .map(|name| {
            Protocol::by_name(name.trim(), args.bits)
                .map_err(|e| SimError::Usage(format!("--protocols {name}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut rows = Vec::new();
    for device in DEVICES {
        for link in LINKS {
            for &p in &protocols {
                let m = CostModel::new(p, device, link);
                rows.push((m, m.estimate(&model).total));
            }
        }
    }
    if args.json {
        let v: Vec<_> = rows
            .iter()
            .map(|(m, t)| report::compare_json(m, t))
            .collect();
        println!("{:#}", json!({ "model": what, "rows": v }));
    } else {
        print!("{}", report::compare_table(&what, &rows));
    }
    Ok(())
}

/// Agreement with plaintext and with the cost model over a batch of inferences.
#[derive(Default)]
struct Checks {
    agree: usize,
    correct: usize,
    labelled: usize,
    worst: u64,
    exact_bytes: bool,
}

impl Checks {
    fn of(results: &[Inference], samples: &[Sample], report: &CostReport) -> Self {
        let mut c = Checks {
            exact_bytes: true,
            ..Checks::default()
        };
        for (r, s) in results.iter().zip(samples) {
            c.agree += usize::from(r.argmax_agrees());
            c.worst = c.worst.max(r.max_abs_diff());
            c.exact_bytes &= matches_model(&r.stats, &report.total);
            if let Some(label) = s.label {
                c.labelled += 1;
                c.correct += usize::from(protocol_sim::run::argmax(&r.private) == label as usize);
            }
        }
        c
    }
}

fn matches_model(stats: &protocol_sim::channel::Stats, t: &Totals) -> bool {
    stats.total == t.online && stats.flights == t.flights
}

fn run(args: &RunArgs) -> Result<(), SimError> {
    let delivery: Delivery = args.delivery.into();
    let m = args.pricing.model()?.with_delivery(delivery);
    garbler(m.protocol)?;
    args.session.warn_if_seeded();
    let bytes = read_model(&args.model)?;
    let model = args.limit.parse(&bytes)?;
    let samples = load_inputs(
        &args.inputs,
        &model,
        &args.model,
        args.session.seed.unwrap_or(1),
    )?;
    let tolerance = output_tolerance(&model);
    let options = Options {
        seed: args.session.seed,
        mode: if args.tcp { Mode::Tcp } else { Mode::Channel },
        delivery,
        capture: false,
        timeout: args.session.timeout()?,
        split_sign_bits: args.relu.split_sign_bits(),
        input_bound: args
            .ranges
            .input_bound(&model, &args.model, Some(&args.inputs.dataset)),
        range_bits: args.ranges.range_bits,
        protocol: m.protocol,
    };
    let inputs: Vec<Vec<i32>> = samples.iter().map(|s| s.input.clone()).collect();
    let started = Instant::now();
    let (results, served) = run_session(&bytes, &inputs, &options)?;
    let secs = started.elapsed().as_secs_f64();
    // Price what the parties agreed on.
    let m = m.with_relu_plan(served.plan);
    let report = m.estimate(&model);
    let all_bytes = arch::all_relu(&model.to_spec()).to_bytes()?;
    let all = m.estimate(&Model::parse(&all_bytes)?).total;
    let (faults, split_relus) = results.iter().fold((0, 0), |(f, n), r| {
        (f + r.sign_faults.0, n + r.sign_faults.1)
    });
    let exact = served
        .plan
        .relu_layers(&model)
        .all(|(_, p)| p.dropped_bits() == 0);
    let c = Checks::of(&results, &samples, &report);
    let n = results.len();
    let first = results
        .first()
        .ok_or(SimError::Usage("no samples".into()))?;
    let path = args.model.display().to_string();
    if args.json {
        let v = json!({
            "model": path,
            "samples": n,
            "delivery": delivery.name(),
            "relu": args.relu.describe(),
            "sign_faults": faults,
            "split_relus": split_relus,
            "reproducible_seed": args.session.seed.is_some(),
            "argmax_agree": c.agree,
            "max_abs_diff": c.worst,
            "tolerance": tolerance,
            "labelled": c.labelled,
            "private_correct": c.correct,
            "bytes_equal_model": c.exact_bytes,
            "measured_online_up": first.stats.total.up,
            "measured_online_down": first.stats.total.down,
            "measured_flights": first.stats.flights,
            "material_bytes": served.material.down,
            "control_bytes": served.control.up + served.control.down,
            "seconds": secs,
            "cost": report::cost_json(&m, &path, &report, &all),
        });
        println!("{v:#}");
    } else {
        println!(
            "{path}: {n} private inferences ({}, {} material), {}, {}",
            if args.tcp {
                "TCP loopback"
            } else {
                "in-process channel"
            },
            delivery.name(),
            m.protocol,
            if c.exact_bytes {
                "measured bytes equal the cost model for every sample"
            } else {
                "MEASURED BYTES DIFFER FROM THE COST MODEL"
            }
        );
        print!("{}", report::run_table(&report, &first.stats));
        println!(
            "argmax agrees on {}/{n}; max |private - plaintext| = {} LSB (bound {tolerance})",
            c.agree, c.worst
        );
        if c.labelled > 0 {
            println!(
                "private accuracy on labelled samples: {}/{}",
                c.correct, c.labelled
            );
        }
        if split_relus > 0 {
            let ranges: Vec<String> = served
                .plan
                .relu_layers(&model)
                .map(|(l, p)| format!("layer {l}: h {} k {}", p.range_bits(), p.dropped_bits()))
                .collect();
            println!(
                "split ReLU, {} sign bits ({}); sign faults: {faults} of {split_relus} ({:.4}%)",
                args.relu.sign_bits,
                ranges.join(", "),
                100.0 * faults as f64 / split_relus as f64
            );
        }
        println!(
            "{:.1} inferences/s ({:.3} s each, both parties and the offline phase on this host)",
            n as f64 / secs,
            secs / n as f64
        );
        print!("{}", report::cost_table(&m, &path, &report, &all));
    }
    // Reduced sign widths trade exactness for cost on purpose: then only the bytes must match.
    if !c.exact_bytes || (exact && (c.agree * 1000 < n * 999 || c.worst > tolerance)) {
        return Err(SimError::Usage(
            "private results or bytes disagree with the plaintext/cost model".into(),
        ));
    }
    Ok(())
}

/// The session function of a protocol `run`, `serve` and `client` can execute.
fn garbler(protocol: Protocol) -> Result<bool, SimError> {
    match protocol {
        Protocol::RingGc => Ok(false),
        Protocol::ClientGarbler => Ok(true),
        other => Err(SimError::Usage(format!(
            "only ring-gc and client-garbler run end to end, not {other}"
        ))),
    }
}

fn serve(args: &ServeArgs) -> Result<(), SimError> {
    args.session.warn_if_seeded();
    let protocol = Protocol::by_name(&args.protocol, 64)
        .map_err(|e| SimError::Usage(format!("--protocol {}: {e}", args.protocol)))?;
    let serve_session = if garbler(protocol)? {
        protocol_sim::client_garbler::serve
    } else {
        session::serve
    };
    let timeout = args.session.timeout()?;
    let bytes = read_model(&args.model)?;
    let model = args.limit.parse(&bytes)?;
    let listener = TcpListener::bind(&args.listen)
        .map_err(|e| SimError::Usage(format!("--listen {}: {e}", args.listen)))?;
    println!(
        "protocol-sim serve: listening on {}",
        listener.local_addr()?
    );
    std::io::stdout().flush()?;
    let mut entropy = match args.session.seed {
        Some(s) => Entropy::reproducible(s, 1),
        None => Entropy::os(),
    };
    let mut seen = HashSet::new();
    let options = ServeOptions {
        delivery: args.delivery.map(Delivery::from),
        input_bound: args.ranges.input_bound(&model, &args.model, None),
        range_bits: args.ranges.range_bits,
    };
    let (mut served, mut failed) = (0u64, 0u64);
    while args.sessions.is_none_or(|n| served < n) {
        let (stream, peer) = listener.accept()?;
        served += 1;
        configure_tcp(&stream, timeout)?;
        let mut io = Metered::new(
            stream,
            Meter::new(model.layer_count(), false),
            Direction::Down,
        );
        let started = Instant::now();
        match serve_session(&model, &mut io, &mut entropy, &mut seen, &options) {
            Ok(log) => {
                let last = log
                    .inferences
                    .last()
                    .map(|i| i.stats.total)
                    .unwrap_or_default();
                println!(
                    "session {served} from {peer}: {} inferences, {} material, {:.2} s; last online {} B up / {} B down in {} flights; material sent first {} B; framing {} B up / {} B down",
                    log.inferences.len(),
                    log.delivery.name(),
                    started.elapsed().as_secs_f64(),
                    last.up,
                    last.down,
                    log.inferences.last().map_or(0, |i| i.stats.flights),
                    log.material.down,
                    log.control.up,
                    log.control.down,
                );
            }
            Err(e) => {
                failed += 1;
                println!("session {served} from {peer}: failed: {e}");
            }
        }
        std::io::stdout().flush()?;
    }
    if failed > 0 {
        return Err(SimError::Usage(format!(
            "{failed} of {served} sessions failed"
        )));
    }
    Ok(())
}

fn connect(addr: &str, timeout: Duration) -> Result<TcpStream, SimError> {
    let mut last = None;
    let addrs = addr
        .to_socket_addrs()
        .map_err(|e| SimError::Usage(format!("--connect {addr}: {e}")))?;
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(SimError::Usage(format!(
        "--connect {addr}: {}",
        last.map_or("no address".to_string(), |e| e.to_string())
    )))
}

fn client(args: &ClientArgs) -> Result<(), SimError> {
    args.session.warn_if_seeded();
    let timeout = args.session.timeout()?;
    let delivery: Delivery = args.delivery.into();
    let m = args.pricing.model()?.with_delivery(delivery);
    let run_client = if garbler(m.protocol)? {
        protocol_sim::client_garbler::client
    } else {
        session::client
    };
    let bytes = read_model(&args.model)?;
    let full = args.limit.parse(&bytes)?;
    // The protocol only ever sees the architecture.
    let arch_bytes = architecture_only(&full)?;
    let model = Model::parse(&arch_bytes)?;
    let samples = load_inputs(
        &args.inputs,
        &model,
        &args.model,
        args.session.seed.unwrap_or(1),
    )?;
    let stream = connect(&args.connect, timeout)?;
    configure_tcp(&stream, timeout)?;
    let mut io = Metered::new(
        stream,
        Meter::new(model.layer_count(), false),
        Direction::Up,
    );
    let mut entropy = match args.session.seed {
        Some(s) => Entropy::reproducible(s, 0),
        None => Entropy::os(),
    };
    let inputs: Vec<Vec<i32>> = samples.iter().map(|s| s.input.clone()).collect();
    let started = Instant::now();
    let split = args.relu.split_sign_bits();
    let outcomes = run_client(&model, &mut io, &mut entropy, delivery, split, &inputs)?;
    let secs = started.elapsed().as_secs_f64();
    // The bytes depend on the sign width only, not on the server's ranges.
    let plan = args.relu.cost_plan(&model)?;
    let report = m.with_relu_plan(plan).estimate(&model);
    let mut exact = true;
    for (i, (o, s)) in outcomes.iter().zip(&samples).enumerate() {
        exact &= matches_model(&o.stats, &report.total);
        let class = protocol_sim::run::argmax(&o.output);
        let label = s.label.map_or("-".to_string(), |l| l.to_string());
        println!(
            "sample {i}: predicted {class} (label {label}); online {} B up / {} B down in {} flights",
            o.stats.total.up, o.stats.total.down, o.stats.flights
        );
    }
    println!(
        "{} private inferences in {secs:.2} s ({} material); {}",
        outcomes.len(),
        delivery.name(),
        if exact {
            "measured bytes equal the cost model for every sample"
        } else {
            "MEASURED BYTES DIFFER FROM THE COST MODEL"
        }
    );
    let mut ok = exact;
    if args.check {
        let tolerance = output_tolerance(&full);
        let mut arena = vec![0i32; full.arena_words()];
        let (mut agree, mut worst) = (0, 0u64);
        for (o, s) in outcomes.iter().zip(&samples) {
            let plain = full.infer(&s.input, &mut arena)?;
            agree +=
                usize::from(protocol_sim::run::argmax(&o.output) == pi_core::fixed::argmax(plain));
            worst = o
                .output
                .iter()
                .zip(plain)
                .map(|(&a, &b)| a.abs_diff(b as i64))
                .fold(worst, u64::max);
        }
        println!(
            "check against plaintext: argmax agrees on {agree}/{}; max |private - plaintext| = {worst} LSB (bound {tolerance})",
            outcomes.len()
        );
        // A reduced sign width is inexact on purpose (faults just above zero).
        let exact_protocol = split.is_none_or(|t| t == 64);
        ok &= !exact_protocol || (agree == outcomes.len() && worst <= tolerance);
    }
    if !ok {
        return Err(SimError::Usage(
            "private results or bytes disagree with the plaintext/cost model".into(),
        ));
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Cost(a) => cost(a),
        Command::Budget(a) => budget(a),
        Command::Compare(a) => compare(a),
        Command::Run(a) => run(a),
        Command::Serve(a) => serve(a),
        Command::Client(a) => client(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("protocol-sim: {e}");
            ExitCode::FAILURE
        }
    }
}
