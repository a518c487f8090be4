//! One private inference end to end: offline phase, then client (pi-core) and server in separate
//! threads with separate state, over a metered channel; then the check against plaintext.

use std::io::{Read, Write};
use std::thread;

use pi_core::Model;
use pi_core::cost::Direction;
use pi_core::share::{Client, GcMaterial};
use pi_core::spec::OpSpec;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use crate::SimError;
use crate::channel::{Meter, Metered, Stats, pipe, tcp_loopback};
use crate::offline;
use crate::server::{self, ServerMessage};

/// How the parties are connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// An in-process channel.
    #[default]
    Channel,
    /// A TCP connection over 127.0.0.1.
    Tcp,
}

/// The outcome of one private inference.
#[derive(Debug, Clone)]
pub struct Inference {
    /// The reconstructed output (fixed point, the model's activation scale).
    pub private: Vec<i64>,
    /// pi-core's plaintext output for the same input.
    pub plain: Vec<i32>,
    /// What went over the wire.
    pub stats: Stats,
    /// Kinds and sizes of the server's messages, in order.
    pub server_sent: Vec<(ServerMessage, usize)>,
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
    let mut spec = model.to_spec();
    for layer in &mut spec.layers {
        match &mut layer.op {
            OpSpec::Conv2d { weights, bias, .. } | OpSpec::Linear { weights, bias, .. } => {
                weights.iter_mut().for_each(|w| *w = 0);
                *bias = None;
            }
            _ => {}
        }
    }
    Ok(spec.to_bytes()?)
}

/// 32 seed bytes from a number (a stand-in for a true random source in the simulation).
pub fn seed_bytes(seed: u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    ChaCha20Rng::seed_from_u64(seed).fill_bytes(&mut out);
    out
}

/// Runs one private inference of `model_bytes` on `input`. `seed` drives both parties' (and the
/// dealer's) randomness; `capture` keeps every payload in the stats (for tests).
pub fn infer(
    model_bytes: &[u8],
    input: &[i32],
    seed: u64,
    mode: Mode,
    capture: bool,
) -> Result<Inference, SimError> {
    let server_model = Model::parse(model_bytes)?;
    let client_bytes = architecture_only(&server_model)?;
    let client_model = Model::parse(&client_bytes)?;
    let client_seed = seed_bytes(seed.wrapping_mul(2));
    let server_seed = seed_bytes(seed.wrapping_mul(2).wrapping_add(1));
    let (mut client_offline, server_offline) =
        offline::prepare(&server_model, &client_seed, &server_seed);

    let meter = Meter::new(server_model.layer_count(), capture);
    let n_out = server_model.output_shape().elements();
    let mut arena = vec![0u64; client_model.arena_words()];
    let mut private = vec![0i64; n_out];

    let parties = Parties {
        server_model: &server_model,
        server_offline: &server_offline,
        client_model: &client_model,
        client_seed,
        meter: &meter,
    };
    let server_sent = match mode {
        Mode::Channel => {
            let (c, s) = pipe();
            parties.online(c, s, input, &mut arena, &mut client_offline, &mut private)?
        }
        Mode::Tcp => {
            let (c, s) = tcp_loopback()?;
            parties.online(c, s, input, &mut arena, &mut client_offline, &mut private)?
        }
    };

    let mut plain_arena = vec![0i32; server_model.arena_words()];
    let plain = server_model.infer(input, &mut plain_arena)?.to_vec();
    Ok(Inference {
        private,
        plain,
        stats: meter.snapshot(),
        server_sent,
    })
}

/// What each party starts the online phase with.
struct Parties<'p, 'a> {
    server_model: &'p Model<'a>,
    server_offline: &'p offline::ServerOffline,
    client_model: &'p Model<'a>,
    client_seed: [u8; 32],
    meter: &'p Meter,
}

impl Parties<'_, '_> {
    /// Runs both parties, each in its own thread, until both finish.
    fn online<C: Read + Write + Send, S: Read + Write + Send>(
        &self,
        client_end: C,
        server_end: S,
        input: &[i32],
        arena: &mut [u64],
        client_offline: &mut offline::ClientOffline,
        private: &mut [i64],
    ) -> Result<Vec<(ServerMessage, usize)>, SimError> {
        thread::scope(|scope| {
            let server = scope.spawn(|| {
                let mut io = Metered::new(server_end, self.meter.clone(), Direction::Down);
                server::run(self.server_model, self.server_offline, &mut io)
            });
            let client = scope.spawn(|| {
                let mut io = Metered::new(client_end, self.meter.clone(), Direction::Up);
                let mut material = Box::new(GcMaterial::EMPTY);
                Client::new(self.client_model, self.client_seed).run(
                    input,
                    arena,
                    &mut material,
                    client_offline,
                    &mut io,
                    private,
                )
            });
            let client_result = client.join().map_err(|_| SimError::Panic("client"))?;
            let server_result = server.join().map_err(|_| SimError::Panic("server"))?;
            client_result?;
            server_result
        })
    }
}
