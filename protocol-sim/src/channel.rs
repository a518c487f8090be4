//! The byte pipe between the parties: an in-process channel or TCP, wrapped in a [`Metered`]
//! endpoint that counts every byte it sends and receives, per layer and per kind, counts
//! flights, and gives up with a typed error when the peer stays silent past a timeout.
//!
//! A *flight* is a maximal run of online messages in the same direction: the server cannot
//! answer before the client's flight has arrived, so latency pays half a round trip per flight.
//! Each party's endpoint sees every message of the connection in the order it happened for that
//! party, so either side's count is the whole picture.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pi_core::cost::{Direction, Traffic};
use pi_core::share::{ProtocolError, Transport};

/// What a message is, for accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The online phase (streamed material included): what the cost model's online figures
    /// price, flights counted.
    Online,
    /// Client material sent before the online phase (stored delivery).
    Material,
    /// Session framing: handshake and inference start/end frames (and the simulation's dealer
    /// seed they carry).
    Control,
}

/// What was measured on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Online bytes each way over the whole run.
    pub total: Traffic,
    /// Online bytes each way attributed to each layer (index `layer_count` is the final output).
    pub per_layer: Vec<Traffic>,
    /// One-way online flights.
    pub flights: u32,
    /// Material bytes sent before the online phase.
    pub material: Traffic,
    /// Session framing bytes.
    pub control: Traffic,
    /// Every online message, in order: direction, layer and payload (kept only when capture is
    /// on).
    pub captured: Vec<(Direction, usize, Vec<u8>)>,
    last: Option<Direction>,
}

/// A thread-safe byte counter (cloned handles share the counts).
#[derive(Debug, Clone)]
pub struct Meter {
    inner: Arc<Mutex<Stats>>,
    capture: bool,
}

fn add(t: &mut Traffic, dir: Direction, n: u64) {
    match dir {
        Direction::Up => t.up += n,
        Direction::Down => t.down += n,
    }
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

    fn record(&self, dir: Direction, kind: Kind, layer: usize, bytes: &[u8]) {
        // A poisoned lock only means another thread panicked; the counts are still usable.
        let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let n = bytes.len() as u64;
        match kind {
            Kind::Control => add(&mut s.control, dir, n),
            Kind::Material => add(&mut s.material, dir, n),
            Kind::Online => {
                add(&mut s.total, dir, n);
                if let Some(t) = s.per_layer.get_mut(layer) {
                    add(t, dir, n);
                }
                if s.last != Some(dir) {
                    s.flights += 1;
                    s.last = Some(dir);
                }
                if self.capture {
                    s.captured.push((dir, layer, bytes.to_vec()));
                }
            }
        }
    }

    /// A copy of the counts so far.
    pub fn snapshot(&self) -> Stats {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Starts a new inference: online counts (and flights) restart; material and control bytes
    /// keep accumulating over the session.
    pub fn reset_online(&self) {
        let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let layers = s.per_layer.len();
        s.total = Traffic::default();
        s.per_layer = vec![Traffic::default(); layers];
        s.flights = 0;
        s.captured.clear();
        s.last = None;
    }
}

fn opposite(dir: Direction) -> Direction {
    match dir {
        Direction::Up => Direction::Down,
        Direction::Down => Direction::Up,
    }
}

/// One end of an in-process pipe (`Read + Write` over an mpsc channel of byte chunks), with a
/// read timeout like a socket's.
#[derive(Debug)]
pub struct Pipe {
    tx: Sender<Vec<u8>>,
    rx: Receiver<Vec<u8>>,
    pending: Vec<u8>,
    pos: usize,
    timeout: Duration,
}

/// Two connected [`Pipe`] ends whose reads give up after `timeout`.
pub fn pipe(timeout: Duration) -> (Pipe, Pipe) {
    let (a_tx, b_rx) = channel();
    let (b_tx, a_rx) = channel();
    let end = |tx, rx| Pipe {
        tx,
        rx,
        pending: Vec::new(),
        pos: 0,
        timeout,
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
            match self.rx.recv_timeout(self.timeout) {
                Ok(chunk) => {
                    self.pending = chunk;
                    self.pos = 0;
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "peer silent"));
                }
                Err(RecvTimeoutError::Disconnected) => return Ok(0),
            }
        }
        let n = buf.len().min(self.pending.len() - self.pos);
        buf[..n].copy_from_slice(&self.pending[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Sets the timeouts and no-delay on a TCP connection: small messages go out at once, and a
/// silent peer is an error after `timeout`, never a hang.
pub fn configure_tcp(stream: &TcpStream, timeout: Duration) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))
}

/// Two ends of a TCP connection over the loopback interface, both with `timeout`.
pub fn tcp_loopback(timeout: Duration) -> io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let client = TcpStream::connect(listener.local_addr()?)?;
    let (server, _) = listener.accept()?;
    configure_tcp(&client, timeout)?;
    configure_tcp(&server, timeout)?;
    Ok((client, server))
}

/// The protocol error an I/O error stands for.
pub fn protocol_error(e: &io::Error) -> ProtocolError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ProtocolError::Timeout,
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => ProtocolError::Closed,
        _ => ProtocolError::Transport,
    }
}

/// A party's endpoint: sends in direction `dir`, receives in the other, counting both into its
/// [`Meter`].
#[derive(Debug)]
pub struct Metered<S> {
    stream: S,
    meter: Meter,
    dir: Direction,
    layer: usize,
    kind: Kind,
}

impl<S: Read + Write> Metered<S> {
    /// Wraps a stream; `dir` is the direction of this party's sends.
    pub fn new(stream: S, meter: Meter, dir: Direction) -> Self {
        Self {
            stream,
            meter,
            dir,
            layer: 0,
            kind: Kind::Control,
        }
    }

    /// Sends `bytes`, counted.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> Result<(), ProtocolError> {
        self.meter.record(self.dir, self.kind, self.layer, bytes);
        self.stream.write_all(bytes).map_err(|e| protocol_error(&e))
    }

    /// Receives exactly `bytes.len()` bytes, counted once they are in.
    pub fn recv_bytes(&mut self, bytes: &mut [u8]) -> Result<(), ProtocolError> {
        self.stream.flush().map_err(|e| protocol_error(&e))?;
        self.stream
            .read_exact(bytes)
            .map_err(|e| protocol_error(&e))?;
        self.meter
            .record(opposite(self.dir), self.kind, self.layer, bytes);
        Ok(())
    }

    /// Sends share words (little-endian `u64`).
    pub fn send_words(&mut self, words: &[u64]) -> Result<(), ProtocolError> {
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        self.send_bytes(&bytes)
    }

    /// Receives `n` share words.
    pub fn recv_words(&mut self, n: usize) -> Result<Vec<u64>, ProtocolError> {
        let mut bytes = vec![0u8; n * 8];
        self.recv_bytes(&mut bytes)?;
        Ok(bytes
            .chunks_exact(8)
            .map(|c| {
                let mut w = [0u8; 8];
                w.copy_from_slice(c);
                u64::from_le_bytes(w)
            })
            .collect())
    }

    /// Attributes the following sends to layer `layer`.
    pub fn set_layer(&mut self, layer: usize) {
        self.layer = layer;
    }

    /// Counts the following sends as `kind`.
    pub fn set_kind(&mut self, kind: Kind) {
        self.kind = kind;
    }

    /// The meter this endpoint counts into.
    pub fn meter(&self) -> &Meter {
        &self.meter
    }
}

impl<S: Read + Write> Read for Metered<S> {
    /// Reads what is there, counted like [`Metered::recv_bytes`].
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.flush()?;
        let n = self.stream.read(buf)?;
        self.meter
            .record(opposite(self.dir), self.kind, self.layer, &buf[..n]);
        Ok(n)
    }
}

impl<S: Read + Write> Transport for Metered<S> {
    fn send(&mut self, bytes: &[u8]) -> Result<(), ProtocolError> {
        self.send_bytes(bytes)
    }
    fn recv(&mut self, bytes: &mut [u8]) -> Result<(), ProtocolError> {
        self.recv_bytes(bytes)
    }
    fn layer_start(&mut self, layer: usize) {
        self.set_layer(layer);
    }
}
