//! The command line: `train`, `export`, `eval`, `demo`, `relus`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::backend::Backend;
use crate::data::{DataPaths, DatasetKind};
use crate::eval::{EvalReport, eval_file};
use crate::export::{ExportOptions, ExportSidecar, export_run};
use crate::model::{Arch, Chw, relu_table};
use crate::train::{OptimizerKind, RunOptions, TrainConfig, TrainSummary, resume, train};

/// Train, export and evaluate PI-friendly CNNs (burn) for pi-core.
#[derive(Debug, Parser)]
#[command(name = "host-trainer", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train a model; the run folder gets config, checkpoints, metrics, model and report.
    Train(TrainArgs),
    /// Fold BatchNorm, quantize, and write a pi-core model file (plus `<file>.json`).
    Export {
        /// Run folder (from `train`).
        #[arg(long)]
        run: PathBuf,
        /// Output model file.
        #[arg(long, default_value = "model.pic")]
        out: PathBuf,
        /// Force the activation scale 2^N instead of calibrating it.
        #[arg(long)]
        act_frac: Option<u8>,
        /// Write ONNX (opset 17) to this file instead of a pi-core model, plus `<file>.json`
        /// with the kept ReLUs per layer and the number the target evaluates.
        #[arg(long, conflicts_with = "act_frac")]
        onnx: Option<PathBuf>,
        /// ONNX form: generic (any runtime), crypten (crypten.nn.from_onnx, removed ReLUs not
        /// evaluated) or ezpc (channel-wise masks only). Default: generic.
        #[arg(long, value_enum, requires = "onnx")]
        profile: Option<crate::onnx::Profile>,
        /// Write format v1 (32-bit activations, i16 weights) instead of the narrowest widths
        /// that keep parity with the float model (format v2).
        #[arg(long, conflicts_with = "onnx")]
        wide: bool,
    },
    /// Run the test set through pi-core and compare with the float model.
    Eval {
        /// Model file (from `export`).
        #[arg(long)]
        model: PathBuf,
        /// Dataset (default: the one the model was trained on).
        #[arg(long, value_enum)]
        dataset: Option<DatasetKind>,
        /// Run folder of the float model (default: the one recorded at export).
        #[arg(long)]
        run: Option<PathBuf>,
        /// Evaluate only the first N test images.
        #[arg(long)]
        limit: Option<usize>,
        /// Also write firmware samples here (`scripts/gen-firmware-model.sh --samples`): the
        /// first correctly classified test image of each class, quantized as evaluated.
        #[arg(long)]
        samples_out: Option<PathBuf>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// The main job: train on the embedded digits, export, evaluate through pi-core, summarise.
    Demo {
        /// Run folder (a numbered suffix is added if it exists).
        #[arg(long, default_value = "runs/demo")]
        out: PathBuf,
        /// Epochs.
        #[arg(long, default_value_t = 30)]
        epochs: usize,
        /// Seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// No progress bars.
        #[arg(long)]
        quiet: bool,
    },
    /// Linearize a trained model to a ReLU budget (snl, autorep, senet, streamlinet, deepreduce).
    #[command(after_long_help = crate::linearize::methods::presets_help())]
    Linearize(crate::linearize::args::LinearizeArgs),
    /// Linearize with several methods and budgets: results.csv and plots.
    Sweep(crate::sweep::SweepArgs),
    /// Import an ONNX CNN as a run folder (MaxPool becomes average pooling; every Relu a mask
    /// site); the run then takes `train --from`, `linearize`, `export`, `eval` and `sweep`.
    Import {
        /// The ONNX model (one N x C x H x W input, one logits output).
        #[arg(long)]
        onnx: PathBuf,
        /// Run folder to create (must not exist).
        #[arg(long)]
        out: PathBuf,
        /// Dataset (default: the one whose image shape the model's input has).
        #[arg(long, value_enum)]
        dataset: Option<DatasetKind>,
        /// Input shape C,H,W when the model leaves it open (default: the dataset's).
        #[arg(long, value_parser = parse_chw)]
        input_shape: Option<Chw>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Print the ReLU count per layer of an architecture.
    Relus {
        /// Architecture.
        #[arg(long)]
        arch: Arch,
        /// Dataset (fixes the input shape).
        #[arg(long, value_enum, default_value = "cifar10")]
        dataset: DatasetKind,
        /// Width.
        #[arg(long)]
        width: Option<usize>,
    },
}

#[derive(Debug, Args)]
struct DataArgs {
    /// Folder with mnist/ and fashion-mnist/ (default: $PI_DATA_DIR or data/).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// CIFAR-10 JPEG archive (default: the shared archive).
    #[arg(long)]
    cifar_archive: Option<PathBuf>,
}

impl DataArgs {
    fn paths(&self) -> Option<DataPaths> {
        if self.data_dir.is_none() && self.cifar_archive.is_none() {
            return None;
        }
        let mut p = DataPaths::default();
        if let Some(d) = &self.data_dir {
            p.data_dir = d.clone();
        }
        if let Some(a) = &self.cifar_archive {
            p.cifar_archive = a.clone();
        }
        Some(p)
    }
}

#[derive(Debug, Args)]
struct TrainArgs {
    /// Run folder.
    #[arg(long)]
    out: PathBuf,
    /// Continue the run in --out from its last checkpoint (other options but --epochs are
    /// taken from its config.json).
    #[arg(long)]
    resume: bool,
    /// Dataset (default: digits, or the --from run's).
    #[arg(long, value_enum)]
    dataset: Option<DatasetKind>,
    /// Fine-tune: start from this run's final weights and take its graph (e.g. an imported run).
    #[arg(long, conflicts_with_all = ["arch", "width"])]
    from: Option<PathBuf>,
    /// Architecture: digits-cnn, lenet, resnet8, resnet20, resnet18, ... (default: by dataset).
    #[arg(long)]
    arch: Option<Arch>,
    /// Width (channels of the first layer).
    #[arg(long)]
    width: Option<usize>,
    /// Epochs.
    #[arg(long)]
    epochs: Option<usize>,
    /// Batch size.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Optimizer.
    #[arg(long, value_enum)]
    optimizer: Option<OptimizerKind>,
    /// Peak learning rate (cosine schedule to 0).
    #[arg(long)]
    lr: Option<f64>,
    /// SGD momentum.
    #[arg(long)]
    momentum: Option<f64>,
    /// Weight decay.
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Seed (init, validation split, shuffles, augmentation).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Share of the training set held out for validation.
    #[arg(long)]
    val_fraction: Option<f64>,
    /// Use only N training images (a seeded random subset).
    #[arg(long)]
    train_limit: Option<usize>,
    /// Disable augmentation (CIFAR-10 augments by default).
    #[arg(long)]
    no_augment: bool,
    /// Backend.
    #[arg(long, value_enum, default_value = "flex")]
    backend: Backend,
    /// No progress bars or terminal output.
    #[arg(long)]
    quiet: bool,
    /// Stop after this many epochs in total (resume later with --resume).
    #[arg(long)]
    stop_after: Option<usize>,
    #[command(flatten)]
    data: DataArgs,
}

fn default_arch(d: DatasetKind) -> Arch {
    match d {
        DatasetKind::Digits => Arch::DigitsCnn,
        DatasetKind::Mnist | DatasetKind::FashionMnist => Arch::Lenet,
        DatasetKind::Cifar10 => Arch::Resnet { depth: 20 },
    }
}

/// `C,H,W` (e.g. `1,8,8`).
fn parse_chw(s: &str) -> Result<Chw, String> {
    let v: Vec<usize> = s
        .split(',')
        .map(|x| x.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("`{s}`: {e} (expected C,H,W such as 1,8,8)"))?;
    match v.as_slice() {
        [c, h, w] if *c > 0 && *h > 0 && *w > 0 => Ok(Chw {
            c: *c,
            h: *h,
            w: *w,
        }),
        _ => Err(format!(
            "`{s}`: expected three positive sizes C,H,W such as 1,8,8"
        )),
    }
}

fn config_from(a: &TrainArgs) -> Result<TrainConfig> {
    let from = match &a.from {
        Some(f) => Some(
            crate::train::RunDir::new(f)
                .read_config()
                .with_context(|| format!("--from {}", f.display()))?,
        ),
        None => None,
    };
    let dataset = a
        .dataset
        .or(from.as_ref().map(|f| f.dataset))
        .unwrap_or(DatasetKind::Digits);
    let arch = match &from {
        Some(f) => f.arch,
        None => a.arch.unwrap_or(default_arch(dataset)),
    };
    let mut c = TrainConfig::defaults(dataset, arch);
    c.width = a.width;
    if let (Some(f), Some(path)) = (&from, &a.from) {
        if f.dataset != dataset {
            anyhow::bail!(
                "--from {} was trained on {}, not {}",
                path.display(),
                f.dataset.name(),
                dataset.name()
            );
        }
        c.width = f.width;
        c.spec = Some(crate::train::run_dir::spec_of(f)?);
        c.normalization = f.normalization.clone();
        c.init_from = Some(path.clone());
    }
    c.epochs = a.epochs.unwrap_or(c.epochs);
    c.batch_size = a.batch_size.unwrap_or(c.batch_size);
    c.optimizer = a.optimizer.unwrap_or(c.optimizer);
    c.lr = a.lr.unwrap_or(c.lr);
    c.momentum = a.momentum.unwrap_or(c.momentum);
    c.weight_decay = a.weight_decay.unwrap_or(c.weight_decay);
    c.seed = a.seed;
    c.val_fraction = a.val_fraction.unwrap_or(c.val_fraction);
    c.train_limit = a.train_limit;
    c.augment = c.augment && !a.no_augment;
    c.backend = a.backend;
    c.data_dir = a.data.data_dir.clone();
    c.cifar_archive = a.data.cifar_archive.clone();
    Ok(c)
}

fn print_summary(s: &TrainSummary) {
    println!(
        "best validation accuracy {:.2}% (epoch {}), {:.0} training images/s",
        100.0 * s.best_val_acc,
        s.best_epoch,
        s.train_images_per_s
    );
    if let Some(t) = s.test_acc {
        println!("test accuracy of the selected model: {:.2}%", 100.0 * t);
    }
}

fn print_export(side: &ExportSidecar, out: &Path) {
    println!(
        "exported {} to {} (activation scale 2^{}, calibration max |x| {:.2}; ReLUs {}/{})",
        side.arch,
        out.display(),
        side.info.act_frac,
        side.info.max_abs_activation,
        side.info.relus_kept,
        side.info.relus_total
    );
    let bits: Vec<String> = side
        .info
        .weight_frac_bits
        .iter()
        .map(|(n, b)| format!("{n}:{b}"))
        .collect();
    println!("weight fractional bits: {}", bits.join(" "));
    let w = &side.info.widths;
    let narrow: Vec<String> = side
        .info
        .weight_frac_bits
        .iter()
        .zip(&w.i8_weights)
        .map(|((n, _), &b)| format!("{n}:{}", if b { "i8" } else { "i16" }))
        .collect();
    println!(
        "format v{}: {}-bit activations, weights {}",
        side.info.format_version,
        w.activation_bits,
        narrow.join(" ")
    );
    for note in &side.info.width_notes {
        println!("wider than the narrowest: {note}");
    }
}

fn print_eval(r: &EvalReport) {
    println!("test images:            {}", r.images);
    println!("pi-core fixed point:    {:.2}%", 100.0 * r.fixed_acc);
    match (r.float_acc, r.agreement) {
        (Some(f), Some(a)) => {
            println!(
                "float model:            {:.2}%  (difference {:+.2} points)",
                100.0 * f,
                100.0 * (r.fixed_acc - f)
            );
            println!("argmax agreement:       {:.2}%", 100.0 * a);
        }
        _ => println!("float model:            (run folder not found; pass --run)"),
    }
    println!(
        "ReLUs (kept / total):   {} / {}",
        r.relus_kept, r.relus_total
    );
}

/// A folder name that does not exist yet: `base`, else `base-2`, `base-3`, ...
fn fresh_dir(base: &Path) -> PathBuf {
    if !base.exists() {
        return base.to_path_buf();
    }
    (2..)
        .map(|i| PathBuf::from(format!("{}-{i}", base.display())))
        .find(|p| !p.exists())
        .expect("some suffix is free")
}

fn demo(out: &Path, epochs: usize, seed: u64, quiet: bool) -> Result<()> {
    let start = Instant::now();
    let run = fresh_dir(out);
    let mut cfg = TrainConfig::defaults(DatasetKind::Digits, Arch::DigitsCnn);
    cfg.epochs = epochs;
    cfg.seed = seed;
    println!(
        "== 1/4 train: {} on the embedded optical digits -> {}",
        cfg.arch,
        run.display()
    );
    let s = train(
        &cfg,
        &run,
        &RunOptions {
            quiet,
            ..Default::default()
        },
    )?;
    print_summary(&s);

    let lin = run.join("linearized");
    println!(
        "== 2/4 linearize: keep 10% of the {} ReLUs (learned masks, KD fine-tune) -> {}",
        s.relus,
        lin.display()
    );
    crate::linearize::print_quick(&crate::linearize::run_quick(&run, &lin, quiet)?);

    // The model worth shipping is the linearized one: export it and run the test split through
    // pi-core, then set it against the all-ReLU teacher trained in step 1.
    let model = lin.join("model.pic");
    println!(
        "== 3/4 export the linearized model: fold BatchNorm, quantize -> {}",
        model.display()
    );
    let side = export_run(&lin, &model, &ExportOptions::default())?;
    print_export(&side, &model);

    println!("== 4/4 eval: test set through pi-core");
    let r = eval_file(&model, None, Some(&lin), None, None, None)?;
    print_eval(&r);
    println!(
        "== summary: digits-cnn on {} test images, {:.0}s total\n   all ReLUs:  {:>5} kept, test accuracy {:.2}% (float)\n   linearized: {:>5} kept ({:.1}%), test accuracy {:.2}% through pi-core fixed point ({:.2}% float, argmax agreement {:.2}%)",
        r.images,
        start.elapsed().as_secs_f64(),
        s.relus,
        100.0 * s.test_acc.unwrap_or(f64::NAN),
        r.relus_kept,
        100.0 * r.relus_kept as f64 / r.relus_total.max(1) as f64,
        100.0 * r.fixed_acc,
        100.0 * r.float_acc.unwrap_or(f64::NAN),
        100.0 * r.agreement.unwrap_or(f64::NAN),
    );
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(a) => {
            let opts = RunOptions {
                quiet: a.quiet,
                stop_after_epochs: a.stop_after,
            };
            let s = if a.resume {
                resume(&a.out, a.epochs, &opts)?
            } else {
                train(&config_from(&a)?, &a.out, &opts)?
            };
            print_summary(&s);
        }
        Command::Export {
            run,
            onnx: Some(onnx),
            profile,
            ..
        } => {
            let profile = profile.unwrap_or(crate::onnx::Profile::Generic);
            let side = crate::onnx::export_onnx(&run, &onnx, profile)
                .with_context(|| format!("exporting {} as ONNX", run.display()))?;
            println!(
                "exported {} to {} ({} profile, opset {}): ReLUs kept {}/{}, evaluated by the target {}; per layer in {}",
                run.display(),
                onnx.display(),
                profile.name(),
                side.opset,
                side.relus_kept,
                side.relus_total,
                side.relus_evaluated,
                crate::onnx::export::sidecar_path(&onnx).display()
            );
        }
        Command::Export {
            run,
            out,
            act_frac,
            wide,
            ..
        } => {
            let side = export_run(&run, &out, &ExportOptions { act_frac, wide })
                .with_context(|| format!("exporting {}", run.display()))?;
            print_export(&side, &out);
        }
        Command::Eval {
            model,
            dataset,
            run,
            limit,
            samples_out,
            data,
        } => {
            let r = eval_file(
                &model,
                dataset,
                run.as_deref(),
                limit,
                data.paths().as_ref(),
                samples_out.as_deref(),
            )?;
            print_eval(&r);
        }
        Command::Demo {
            out,
            epochs,
            seed,
            quiet,
        } => demo(&out, epochs, seed, quiet)?,
        Command::Import {
            onnx,
            out,
            dataset,
            input_shape,
            data,
        } => {
            let opts = crate::onnx::ImportOptions {
                dataset,
                input: input_shape,
                data: data.paths(),
            };
            let r = crate::onnx::import_onnx(&onnx, &out, &opts)?;
            let cfg = crate::train::RunDir::new(&out).read_config()?;
            print!(
                "{}",
                crate::onnx::import::report_text(&r, &crate::train::run_dir::spec_of(&cfg)?)
            );
        }
        Command::Linearize(a) => crate::linearize::args::run(a)?,
        Command::Sweep(a) => crate::sweep::run(a)?,
        Command::Relus {
            arch,
            dataset,
            width,
        } => {
            let s = dataset.shape();
            let spec = arch.spec(
                Chw {
                    c: s.channels,
                    h: s.height,
                    w: s.width,
                },
                width,
                dataset.classes(),
            )?;
            print!("{}", relu_table(&spec, &[]));
        }
    }
    Ok(())
}

/// Parses the command line and runs it; errors are printed with their causes.
pub fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
