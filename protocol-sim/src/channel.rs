//! The byte pipe between the parties: an in-process channel or TCP loopback, wrapped in a
//! [`Metered`] endpoint that counts every byte, message and flight, per layer.
//!
//! A *flight* is a maximal run of sends in the same direction: the server cannot answer before
//! the client's flight has arrived, so latency pays half a round trip per flight. Sends are
//! recorded before they leave, and the protocol only sends in response to what it received, so
//! the shared log is in causal order.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use pi_core::cost::{Direction, Traffic};
use pi_core::share::{ProtocolError, Transport};

/// What was measured on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes each way over the whole run.
    pub total: Traffic,
    /// Bytes each way attributed to each layer (index `layer_count` is the final output).
    pub per_layer: Vec<Traffic>,
    /// One-way flights.
    pub flights: u32,
    /// Every send, in order: direction and payload (kept only when capture is on).
    pub captured: Vec<(Direction, Vec<u8>)>,
    last: Option<Direction>,
}

/// A shared, thread-safe byte counter.
#[derive(Debug, Clone)]
pub struct Meter {
    inner: Arc<Mutex<Stats>>,
    capture: bool,
}

impl Meter {
    /// A fresh meter for a model with `layers` layers; `capture` keeps every payload (tests).
    pub fn new(layers: usize, capture: bool) -> Self {
        let stats = Stats {
            per_layer: vec![Traffic::default(); layers + 1],
            ..Stats::default()
        };
        Self {
            inner: Arc::new(Mutex::new(stats)),
            capture,
        }
    }

    fn record(&self, dir: Direction, layer: usize, bytes: &[u8]) {
        // A poisoned lock only means another thread panicked; the counts are still usable.
        let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let n = bytes.len() as u64;
        let add = |t: &mut Traffic| match dir {
            Direction::Up => t.up += n,
            Direction::Down => t.down += n,
        };
        add(&mut s.total);
        if let Some(t) = s.per_layer.get_mut(layer) {
            add(t);
        }
        if s.last != Some(dir) {
            s.flights += 1;
            s.last = Some(dir);
        }
        if self.capture {
            s.captured.push((dir, bytes.to_vec()));
        }
    }

    /// A copy of the counts so far.
    pub fn snapshot(&self) -> Stats {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// One end of an in-process pipe (`Read + Write` over an mpsc channel of byte chunks).
#[derive(Debug)]
pub struct Pipe {
    tx: Sender<Vec<u8>>,
    rx: Receiver<Vec<u8>>,
    pending: Vec<u8>,
    pos: usize,
}

/// Two connected [`Pipe`] ends.
pub fn pipe() -> (Pipe, Pipe) {
    let (a_tx, b_rx) = channel();
    let (b_tx, a_rx) = channel();
    let end = |tx, rx| Pipe {
        tx,
        rx,
        pending: Vec::new(),
        pos: 0,
    };
    (end(a_tx, a_rx), end(b_tx, b_rx))
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx
            .send(buf.to_vec())
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "peer hung up"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.pending.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.pending = chunk;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.pending.len() - self.pos);
        buf[..n].copy_from_slice(&self.pending[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Two ends of a TCP connection over the loopback interface.
pub fn tcp_loopback() -> io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let client = TcpStream::connect(listener.local_addr()?)?;
    let (server, _) = listener.accept()?;
    // Small messages back to back: do not wait to coalesce them.
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    Ok((client, server))
}

/// A party's endpoint: sends in direction `dir`, counting into a shared [`Meter`].
#[derive(Debug)]
pub struct Metered<S> {
    stream: S,
    meter: Meter,
    dir: Direction,
    layer: usize,
}

impl<S: Read + Write> Metered<S> {
    /// Wraps a stream; `dir` is the direction of this party's sends.
    pub fn new(stream: S, meter: Meter, dir: Direction) -> Self {
        Self {
            stream,
            meter,
            dir,
            layer: 0,
        }
    }

    /// Sends `bytes`, counted.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.meter.record(self.dir, self.layer, bytes);
        self.stream.write_all(bytes)
    }

    /// Receives exactly `bytes.len()` bytes.
    pub fn recv_bytes(&mut self, bytes: &mut [u8]) -> io::Result<()> {
        self.stream.flush()?;
        self.stream.read_exact(bytes)
    }

    /// Sends share words (little-endian `u64`).
    pub fn send_words(&mut self, words: &[u64]) -> io::Result<()> {
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        self.send_bytes(&bytes)
    }

    /// Receives `n` share words.
    pub fn recv_words(&mut self, n: usize) -> io::Result<Vec<u64>> {
        let mut bytes = vec![0u8; n * 8];
        self.recv_bytes(&mut bytes)?;
        Ok(bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect())
    }

    /// Attributes the following sends to layer `layer`.
    pub fn set_layer(&mut self, layer: usize) {
        self.layer = layer;
    }
}

impl<S: Read + Write> Transport for Metered<S> {
    fn send(&mut self, bytes: &[u8]) -> Result<(), ProtocolError> {
        self.send_bytes(bytes).map_err(|_| ProtocolError::Transport)
    }
    fn recv(&mut self, bytes: &mut [u8]) -> Result<(), ProtocolError> {
        self.recv_bytes(bytes).map_err(|_| ProtocolError::Transport)
    }
    fn layer_start(&mut self, layer: usize) {
        self.set_layer(layer);
    }
}
