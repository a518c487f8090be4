//! The linearization methods and their registry.
//!
//! A method is one file in this folder implementing [`Linearizer`]: its own configuration (with a
//! `fast` and a `paper` preset), its own command-line flags (a clap `Args` struct, flattened into
//! `linearize` and `sweep`), its own state (saved in every checkpoint), and the hooks the driver
//! calls (prepare, mask-phase epochs, final masks, fine-tune losses). Adding a method is one new
//! file plus its line in the `registry!` list below.

use std::fmt;
use std::str::FromStr;

use anyhow::{Context, Result, bail};
use burn::optim::ModuleOptimizer;
use burn::tensor::Tensor;
use clap::{ArgMatches, Args, Command, FromArgMatches};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::config::{Preset, Recipe};
use super::masks::{FinalMasks, Student};
use super::objective::LossWeights;
use super::run::Run;
use crate::train::epoch::EpochStats;

/// A linearization method.
pub trait Linearizer: Sized + 'static {
    /// Name on the command line, in run folders and in reports.
    const NAME: &'static str;
    /// One line for `--help` and the docs.
    const ABOUT: &'static str;
    /// The method's hyper-parameters (stored in `linearize.json`).
    type Config: Serialize + DeserializeOwned + Clone + fmt::Debug + PartialEq;
    /// Its command-line flags; each given flag overrides one value of the preset.
    type Flags: Args + FromArgMatches;
    /// What it carries from epoch to epoch (stored in every checkpoint).
    type State: Serialize + DeserializeOwned + Default;

    /// The recipe and the configuration of `preset`.
    fn preset(preset: Preset) -> (Recipe, Self::Config);
    /// Applies the flags that were given to `config`.
    fn apply_flags(flags: &Self::Flags, config: &mut Self::Config);
    /// The method of a run with `config`.
    fn new(config: Self::Config) -> Self;

    /// Before the first epoch: allocations, initial mask parameters or masks.
    fn prepare(&self, run: &mut Run, state: &mut Self::State, student: Student) -> Result<Student>;
    /// Epochs of the mask phase (the recipe's, unless the method spends them differently).
    fn mask_epochs(&self, run: &Run, _state: &Self::State) -> usize {
        run.cfg.recipe.mask_epochs
    }
    /// One epoch of the mask phase.
    fn mask_epoch(
        &self,
        run: &mut Run,
        state: &mut Self::State,
        student: Student,
        optim: &mut ModuleOptimizer,
        epoch: usize,
    ) -> Result<(Student, EpochStats)>;
    /// Whether the mask phase is over before its last epoch (e.g. SNL at its budget).
    fn mask_phase_done(&self, _state: &Self::State) -> bool {
        false
    }
    /// ReLUs the student keeps right now (for the log and the metrics).
    fn live_relus(&self, run: &Run, state: &Self::State, student: &Student) -> usize;
    /// Masks of the forward pass now, if not the network's own (validation during the mask
    /// phase uses them).
    fn eval_masks(
        &self,
        _run: &Run,
        _state: &Self::State,
        _student: &Student,
    ) -> Option<Vec<Tensor<3>>> {
        None
    }
    /// Whether a mask-phase epoch may be selected as the final model (its masks are binary
    /// and close enough to the budget); only AutoReP's published recipe does this.
    fn selectable(&self, _run: &Run, _state: &Self::State, _student: &Student) -> bool {
        false
    }
    /// The final binary masks and per-unit scores (for the cut to the budget); may also replace
    /// the student (DeepReDuce takes its best candidate).
    fn finalize(
        &self,
        run: &mut Run,
        state: &mut Self::State,
        student: Student,
    ) -> Result<(Student, FinalMasks)>;
    /// Loss terms of frozen-mask fine-tuning.
    fn finetune_losses(&self, _run: &Run) -> LossWeights {
        LossWeights::ce_kd()
    }
    /// Method-specific progress for the epoch log line (e.g. SNL's λ).
    fn status(&self, _state: &Self::State) -> String {
        String::new()
    }
}

/// A method bound to its configuration and state, behind one object-safe interface.
pub(crate) trait MethodRun {
    fn prepare(&mut self, run: &mut Run, s: Student) -> Result<Student>;
    fn mask_epochs(&self, run: &Run) -> usize;
    fn mask_epoch(
        &mut self,
        run: &mut Run,
        s: Student,
        optim: &mut ModuleOptimizer,
        epoch: usize,
    ) -> Result<(Student, EpochStats)>;
    fn mask_phase_done(&self) -> bool;
    fn live_relus(&self, run: &Run, s: &Student) -> usize;
    fn eval_masks(&self, run: &Run, s: &Student) -> Option<Vec<Tensor<3>>>;
    fn selectable(&self, run: &Run, s: &Student) -> bool;
    fn finalize(&mut self, run: &mut Run, s: Student) -> Result<(Student, FinalMasks)>;
    fn finetune_losses(&self, run: &Run) -> LossWeights;
    fn status(&self) -> String;
    fn state(&self) -> Result<serde_json::Value>;
}

struct Bound<M: Linearizer> {
    method: M,
    state: M::State,
}

impl<M: Linearizer> MethodRun for Bound<M> {
    fn prepare(&mut self, run: &mut Run, s: Student) -> Result<Student> {
        self.method.prepare(run, &mut self.state, s)
    }
    fn mask_epochs(&self, run: &Run) -> usize {
        self.method.mask_epochs(run, &self.state)
    }
    fn mask_epoch(
        &mut self,
        run: &mut Run,
        s: Student,
        optim: &mut ModuleOptimizer,
        epoch: usize,
    ) -> Result<(Student, EpochStats)> {
        self.method
            .mask_epoch(run, &mut self.state, s, optim, epoch)
    }
    fn mask_phase_done(&self) -> bool {
        self.method.mask_phase_done(&self.state)
    }
    fn live_relus(&self, run: &Run, s: &Student) -> usize {
        self.method.live_relus(run, &self.state, s)
    }
    fn eval_masks(&self, run: &Run, s: &Student) -> Option<Vec<Tensor<3>>> {
        self.method.eval_masks(run, &self.state, s)
    }
    fn selectable(&self, run: &Run, s: &Student) -> bool {
        self.method.selectable(run, &self.state, s)
    }
    fn finalize(&mut self, run: &mut Run, s: Student) -> Result<(Student, FinalMasks)> {
        self.method.finalize(run, &mut self.state, s)
    }
    fn finetune_losses(&self, run: &Run) -> LossWeights {
        self.method.finetune_losses(run)
    }
    fn status(&self) -> String {
        self.method.status(&self.state)
    }
    fn state(&self) -> Result<serde_json::Value> {
        Ok(serde_json::to_value(&self.state)?)
    }
}

/// A method's recipe and configuration (JSON) for a preset, with the given flags applied.
pub type Configure = fn(Preset, Option<&ArgMatches>) -> Result<(Recipe, serde_json::Value)>;

/// A method bound to a configuration and, when resuming, its saved state.
type Bind = fn(&serde_json::Value, Option<&serde_json::Value>) -> Result<Box<dyn MethodRun>>;

/// One registered method: its name and the functions that configure and run it.
pub struct Entry {
    /// Command-line name.
    pub name: &'static str,
    /// One line of description.
    pub about: &'static str,
    /// Adds the method's flags to a command.
    pub add_flags: fn(Command) -> Command,
    /// The recipe and configuration (JSON) of a preset, with the given flags applied.
    pub configure: Configure,
    bind: Bind,
    check_config: fn(&serde_json::Value) -> Result<()>,
}

impl Entry {
    /// The ids of the method's flags.
    pub fn flag_ids(&self) -> Vec<String> {
        (self.add_flags)(Command::new(self.name))
            .get_arguments()
            .map(|a| a.get_id().to_string())
            .collect()
    }

    /// Checks that `config` is a valid configuration of this method.
    pub fn check(&self, config: &serde_json::Value) -> Result<()> {
        (self.check_config)(config)
    }

    /// The method with `config`, fresh (`state` None) or as saved in a checkpoint.
    pub(crate) fn bind(
        &self,
        config: &serde_json::Value,
        state: Option<&serde_json::Value>,
    ) -> Result<Box<dyn MethodRun>> {
        (self.bind)(config, state)
    }
}

/// Overrides `dst` with a flag's value when the flag was given.
pub fn set<T: Clone>(dst: &mut T, flag: &Option<T>) {
    if let Some(v) = flag {
        *dst = v.clone();
    }
}

fn add_flags<M: Linearizer>(cmd: Command) -> Command {
    M::Flags::augment_args(cmd)
}

fn configure<M: Linearizer>(
    preset: Preset,
    matches: Option<&ArgMatches>,
) -> Result<(Recipe, serde_json::Value)> {
    let (recipe, mut config) = M::preset(preset);
    if let Some(m) = matches {
        let flags = M::Flags::from_arg_matches(m).map_err(|e| anyhow::anyhow!("{e}"))?;
        M::apply_flags(&flags, &mut config);
    }
    Ok((recipe, serde_json::to_value(config)?))
}

fn parse_config<M: Linearizer>(config: &serde_json::Value) -> Result<M::Config> {
    serde_json::from_value(config.clone())
        .with_context(|| format!("invalid {} configuration", M::NAME))
}

fn check_config<M: Linearizer>(config: &serde_json::Value) -> Result<()> {
    parse_config::<M>(config).map(drop)
}

fn bind<M: Linearizer>(
    config: &serde_json::Value,
    state: Option<&serde_json::Value>,
) -> Result<Box<dyn MethodRun>> {
    let method = M::new(parse_config::<M>(config)?);
    let state = match state {
        Some(s) => serde_json::from_value(s.clone())
            .with_context(|| format!("invalid {} state in the checkpoint", M::NAME))?,
        None => M::State::default(),
    };
    Ok(Box::new(Bound { method, state }))
}

/// The registry entry of method `M`.
pub const fn entry<M: Linearizer>() -> Entry {
    Entry {
        name: M::NAME,
        about: M::ABOUT,
        add_flags: add_flags::<M>,
        configure: configure::<M>,
        bind: bind::<M>,
        check_config: check_config::<M>,
    }
}

/// Declares the method modules and the registry in one list: adding a method is adding its
/// file and its line here.
macro_rules! registry {
    ($($module:ident :: $method:ident),* $(,)?) => {
        $(pub mod $module;)*
        /// Every method, in the order used in tables.
        pub static METHODS: &[Entry] = &[$(entry::<$module::$method>()),*];
    };
}

registry! {
    snl::Snl,
    autorep::Autorep,
    senet::Senet,
    streamlinet::Streamlinet,
    deepreduce::Deepreduce,
}

/// The entry of method `name`.
pub fn find(name: &str) -> Result<&'static Entry> {
    let key = name.trim().to_ascii_lowercase();
    match METHODS.iter().find(|e| e.name == key) {
        Some(e) => Ok(e),
        None => bail!("unknown method `{name}`: use {}", names().join(", ")),
    }
}

/// Both presets of every method, as `--help` shows them: the recipe and the method's settings.
pub fn presets_help() -> String {
    let mut out = String::from(
        "Presets (the values a run starts from; flags override them; each paper value is cited in the method's file):\n",
    );
    for e in METHODS {
        // A method whose paper publishes no values (no official code, silent paper) has a
        // `paper` preset equal to `fast`; the help says so rather than implying a recipe.
        let silent =
            (e.configure)(Preset::Paper, None).ok() == (e.configure)(Preset::Fast, None).ok();
        for p in [Preset::Fast, Preset::Paper] {
            let Ok((recipe, config)) = (e.configure)(p, None) else {
                continue;
            };
            let settings = match &config {
                serde_json::Value::Object(m) => m
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                other => other.to_string(),
            };
            out.push_str(&format!(
                "  {} {}: {}; {}{}\n",
                e.name,
                p.name(),
                recipe.summary(),
                if settings.is_empty() {
                    "no settings"
                } else {
                    &settings
                },
                if silent && p == Preset::Paper {
                    " (the same as fast: the paper publishes no values for these; see the method's file)"
                } else {
                    ""
                }
            ));
        }
    }
    out
}

/// The names of every method, in table order.
pub fn names() -> Vec<&'static str> {
    METHODS.iter().map(|e| e.name).collect()
}

/// A method name checked against the registry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MethodName(pub(crate) String);

impl MethodName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The registry entry.
    pub fn entry(&self) -> &'static Entry {
        find(&self.0).expect("a MethodName is always registered")
    }
}

impl FromStr for MethodName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        find(s)
            .map(|e| Self(e.name.to_string()))
            .map_err(|e| e.to_string())
    }
}

impl TryFrom<String> for MethodName {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<MethodName> for String {
    fn from(m: MethodName) -> String {
        m.0
    }
}

impl fmt::Display for MethodName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Every method's flags on one command (`linearize`, `sweep`), each under its own heading; the
/// parsed matches are kept and each method reads its own flags from them.
#[derive(Debug, Clone, Default)]
pub struct MethodFlags {
    matches: Option<ArgMatches>,
}

impl MethodFlags {
    /// The parsed command line.
    pub fn matches(&self) -> Option<&ArgMatches> {
        self.matches.as_ref()
    }

    /// Errors when a flag of a method outside `methods` was given (it would be silently
    /// ignored otherwise).
    pub fn check_used_by(&self, methods: &[&str]) -> Result<()> {
        let Some(m) = &self.matches else {
            return Ok(());
        };
        for e in METHODS.iter().filter(|e| !methods.contains(&e.name)) {
            for id in e.flag_ids() {
                if m.value_source(&id) == Some(clap::parser::ValueSource::CommandLine) {
                    bail!(
                        "--{} is a flag of {}, which this run does not use",
                        id.replace('_', "-"),
                        e.name
                    );
                }
            }
        }
        Ok(())
    }
}

impl FromArgMatches for MethodFlags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(Self {
            matches: Some(matches.clone()),
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.matches = Some(matches.clone());
        Ok(())
    }
}

impl Args for MethodFlags {
    fn augment_args(cmd: Command) -> Command {
        METHODS.iter().fold(cmd, |c, e| (e.add_flags)(c))
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}
