//! Progress bars (epoch and batch, with loss, accuracy and ETA) and the run log.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Writes timestamped lines to `train.log` and to the terminal (above the bars).
pub struct RunLog {
    file: Option<File>,
    start: Instant,
    bars: MultiProgress,
    quiet: bool,
}

impl RunLog {
    /// A log appending to `path`; `quiet` hides bars and terminal output (the file still gets
    /// every line).
    pub fn new(path: &Path, quiet: bool) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let bars = if quiet {
            MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
        } else {
            MultiProgress::new()
        };
        Ok(Self {
            file: Some(file),
            start: Instant::now(),
            bars,
            quiet,
        })
    }

    /// Logs one line.
    pub fn line(&mut self, msg: &str) {
        let t = self.start.elapsed().as_secs_f64();
        if let Some(f) = &mut self.file {
            // A log line that cannot be written must not stop training; drop the file instead.
            if writeln!(f, "[{t:9.1}s] {msg}").is_err() {
                self.file = None;
            }
        }
        if !self.quiet {
            // println through MultiProgress keeps the bars intact; when stderr is not a
            // terminal the bars are hidden and this prints nothing, so fall back to stdout.
            if self.bars.is_hidden() {
                println!("{msg}");
            } else {
                let _ = self.bars.println(msg);
            }
        }
    }

    /// The epoch bar.
    pub fn epoch_bar(&self, epochs: usize, done: usize) -> ProgressBar {
        let bar = self.bars.add(ProgressBar::new(epochs as u64));
        bar.set_style(
            ProgressStyle::with_template(
                "epoch {pos}/{len} [{elapsed_precise} < {eta_precise}] {msg}",
            )
            .expect("valid template"),
        );
        bar.set_position(done as u64);
        bar
    }

    /// A batch bar for one epoch (loss/acc go in the message).
    pub fn batch_bar(&self, batches: usize) -> ProgressBar {
        let bar = self.bars.add(ProgressBar::new(batches as u64));
        bar.set_style(
            ProgressStyle::with_template(
                "  {bar:30} {pos}/{len} batches  {msg}  {per_sec}  ETA {eta}",
            )
            .expect("valid template"),
        );
        bar
    }
}
