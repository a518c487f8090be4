//! Private inferences end to end in one process: the server session and the client session
//! (pi-core) in separate threads with separate state, over a metered in-process channel or TCP
//! loopback; then the check against the plaintext engine.

use std::collections::HashSet;
use std::thread;
use std::time::Duration;

use pi_core::Model;
use pi_core::cost::{Direction, Protocol};
use pi_core::share::Delivery;

use crate::SimError;
use crate::channel::{Meter, Metered, Stats, pipe, tcp_loopback};
use crate::client_garbler;
use crate::entropy::Entropy;
use crate::server::ServerMessage;
use crate::session::{self, ServeOptions, ServedSession};

/// How the parties are connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// An in-process channel.
    #[default]
    Channel,
    /// A TCP connection over 127.0.0.1.
    Tcp,
}

/// How to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Reproducible randomness from this public number (insecure), or the OS's (`None`).
    pub seed: Option<u64>,
    /// Connection between the parties.
    pub mode: Mode,
    /// How the client gets its material.
    pub delivery: Delivery,
    /// Keep every online payload in the stats (tests).
    pub capture: bool,
    /// How long either party waits for the other before giving up.
    pub timeout: Duration,
    /// The split ReLU on this many sign bits in every layer (`None`: the full ReLU).
    pub split_sign_bits: Option<u8>,
    /// Bound on the inputs (LSBs) the split ReLU's ranges are proven from.
    pub input_bound: Option<u64>,
    /// Override of the split ReLU's range `h` (must still cover the proven bound).
    pub range_bits: Option<u8>,
    /// Which garbled-circuit protocol: [`Protocol::RingGc`] (server garbles) or
    /// [`Protocol::ClientGarbler`].
    pub protocol: Protocol,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            seed: None,
            mode: Mode::Channel,
            delivery: Delivery::Stored,
            capture: false,
            timeout: Duration::from_secs(60),
            split_sign_bits: None,
            input_bound: None,
            range_bits: None,
            protocol: Protocol::RingGc,
        }
    }
}

/// The outcome of one private inference.
#[derive(Debug, Clone)]
pub struct Inference {
    /// The reconstructed output (fixed point, the model's activation scale).
    pub private: Vec<i64>,
    /// pi-core's plaintext output for the same input.
    pub plain: Vec<i32>,
    /// What went over the wire in the online phase, as the client saw it.
    pub stats: Stats,
    /// Kinds and sizes of the server's online messages, in order.
    pub server_sent: Vec<(ServerMessage, usize)>,
    /// Split-ReLU sign faults and split ReLUs evaluated (simulation-only audit).
    pub sign_faults: (usize, usize),
}

impl Inference {
    /// Largest `|private - plain|` over the outputs.
    pub fn max_abs_diff(&self) -> u64 {
        self.private
            .iter()
            .zip(&self.plain)
            .map(|(&a, &b)| a.abs_diff(b as i64))
            .max()
            .unwrap_or(0)
    }

    /// Whether the private and plaintext argmax agree (first maximum on ties).
    pub fn argmax_agrees(&self) -> bool {
        argmax(&self.private) == pi_core::fixed::argmax(&self.plain)
    }
}

/// Index of the first largest value.
pub fn argmax(v: &[i64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// The model with every weight and bias removed: what the client knows (the architecture and
/// the scales, which Delphi treats as public).
pub fn architecture_only(model: &Model<'_>) -> Result<Vec<u8>, SimError> {
    Ok(model.to_spec().architecture_only().to_bytes()?)
}

/// The two parties' randomness for a run: the OS's, or two disjoint reproducible streams.
pub fn entropies(seed: Option<u64>) -> (Entropy, Entropy) {
    match seed {
        None => (Entropy::os(), Entropy::os()),
        Some(s) => (Entropy::reproducible(s, 0), Entropy::reproducible(s, 1)),
    }
}

/// Runs one session of private inferences of `model_bytes`, one per input, and checks each
/// against the plaintext engine's output.
pub fn run_session(
    model_bytes: &[u8],
    inputs: &[Vec<i32>],
    options: &Options,
) -> Result<(Vec<Inference>, ServedSession), SimError> {
    let server_model = Model::parse(model_bytes)?;
    let client_bytes = architecture_only(&server_model)?;
    let client_model = Model::parse(&client_bytes)?;
    let layers = server_model.layer_count();
    let (mut client_entropy, mut server_entropy) = entropies(options.seed);
    let client_meter = Meter::new(layers, options.capture);
    let server_meter = Meter::new(layers, false);
    let client_garbler = match options.protocol {
        Protocol::RingGc => false,
        Protocol::ClientGarbler => true,
        other => {
            return Err(SimError::Usage(format!(
                "run simulates ring-gc and client-garbler, not {other}"
            )));
        }
    };

    let (outcomes, served) = thread::scope(|scope| -> Result<_, SimError> {
        macro_rules! parties {
            ($client_end:expr, $server_end:expr) => {{
                let (client_end, server_end) = ($client_end, $server_end);
                let server = scope.spawn(|| {
                    let mut io = Metered::new(server_end, server_meter.clone(), Direction::Down);
                    let serve = if client_garbler {
                        client_garbler::serve
                    } else {
                        session::serve
                    };
                    serve(
                        &server_model,
                        &mut io,
                        &mut server_entropy,
                        &mut HashSet::new(),
                        &ServeOptions {
                            delivery: Some(options.delivery),
                            input_bound: options.input_bound,
                            range_bits: options.range_bits,
                        },
                    )
                });
                let client = scope.spawn(|| {
                    let mut io = Metered::new(client_end, client_meter.clone(), Direction::Up);
                    let client = if client_garbler {
                        client_garbler::client
                    } else {
                        session::client
                    };
                    client(
                        &client_model,
                        &mut io,
                        &mut client_entropy,
                        options.delivery,
                        options.split_sign_bits,
                        inputs,
                    )
                });
                let client = client.join().map_err(|_| SimError::Panic("client"))?;
                let server = server.join().map_err(|_| SimError::Panic("server"))?;
                (client, server)
            }};
        }
        let (client, server) = match options.mode {
            Mode::Channel => {
                let (c, s) = pipe(options.timeout);
                parties!(c, s)
            }
            Mode::Tcp => {
                let (c, s) = tcp_loopback(options.timeout)?;
                parties!(c, s)
            }
        };
        // The client's error explains a failure better than the server's "peer closed".
        let outcomes = client?;
        Ok((outcomes, server?))
    })?;

    let mut plain_arena = vec![0i32; server_model.arena_words()];
    let mut results = Vec::with_capacity(inputs.len());
    for ((input, outcome), served) in inputs.iter().zip(outcomes).zip(&served.inferences) {
        let plain = server_model.infer(input, &mut plain_arena)?.to_vec();
        results.push(Inference {
            private: outcome.output,
            plain,
            stats: outcome.stats,
            server_sent: served.sent.clone(),
            sign_faults: served.sign_faults,
        });
    }
    Ok((results, served))
}

/// Runs one private inference of `model_bytes` on `input` with reproducible randomness from
/// `seed` (a test and benchmark helper); `capture` keeps every payload in the stats.
pub fn infer(
    model_bytes: &[u8],
    input: &[i32],
    seed: u64,
    mode: Mode,
    capture: bool,
) -> Result<Inference, SimError> {
    let options = Options {
        seed: Some(seed),
        mode,
        capture,
        ..Options::default()
    };
    let (mut results, _) = run_session(model_bytes, &[input.to_vec()], &options)?;
    results
        .pop()
        .ok_or(SimError::Usage("the session ran no inference".into()))
}
