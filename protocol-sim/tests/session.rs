//! The session layer against bad peers: every mismatch, silence, truncation or garbage is a
//! typed error within the timeout, never a hang or a panic; material and session ids are never
//! used twice. Also the two-process path (`serve` and `client` binaries) end to end.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use pi_core::Model;
use pi_core::Shape;
use pi_core::cost::{CORTEX_M4_64, CostModel, Direction, LTE, Protocol};
use pi_core::share::session::{Frame, HELLO_BYTES, PROTOCOL_VERSION, Status};
use pi_core::share::{
    Delivery, GcMaterial, HandshakeError, Hello, OfflineSource, ProtocolError, ProtocolName,
    ReluParams, Transport,
};
use pi_core::spec::{LayerSpec, MaskSpec, ModelSpec, OpSpec};
use protocol_sim::SimError;
use protocol_sim::channel::{Meter, Metered, configure_tcp};
use protocol_sim::entropy::Entropy;
use protocol_sim::offline::Preprocessing;
use protocol_sim::run::architecture_only;
use protocol_sim::session::{self, ServeOptions, ServedSession};

const SHORT: Duration = Duration::from_millis(400);
/// What "within the timeout" allows for scheduling on a loaded 2-core machine.
const BOUND: Duration = Duration::from_secs(5);

/// 1×4×4 → conv (2 ch) → ReLU keeping `keep` of 32 → flatten → linear 3.
fn small_model(keep: usize) -> Vec<u8> {
    let mut mask = vec![false; 32];
    mask.iter_mut().take(keep).for_each(|m| *m = true);
    ModelSpec {
        activation_frac_bits: 8,
        input: Shape::new(1, 4, 4),
        layers: vec![
            LayerSpec::new(OpSpec::Conv2d {
                out_channels: 2,
                kernel_h: 3,
                kernel_w: 3,
                stride: 1,
                padding: 1,
                weight_frac_bits: 6,
                weights: (0..18).map(|i| (i % 7) as i16 - 3).collect(),
                bias: Some(vec![5, -5]),
            }),
            LayerSpec::new(OpSpec::MaskedRelu {
                mask: MaskSpec::Elements(mask),
            }),
            LayerSpec::new(OpSpec::Flatten),
            LayerSpec::new(OpSpec::Linear {
                out_features: 3,
                weight_frac_bits: 6,
                weights: (0..96).map(|i| (i % 5) as i16 - 2).collect(),
                bias: None,
            }),
        ],
    }
    .to_bytes()
    .unwrap()
}

fn tcp_pair(timeout: Duration) -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    configure_tcp(&client, timeout).unwrap();
    configure_tcp(&server, timeout).unwrap();
    (client, server)
}

fn metered(stream: TcpStream, dir: Direction) -> Metered<TcpStream> {
    Metered::new(stream, Meter::new(8, false), dir)
}

fn inputs(n: usize) -> Vec<Vec<i32>> {
    (0..n)
        .map(|k| {
            (0..16)
                .map(|i| (i * 13 + k as i32 * 7) % 200 - 100)
                .collect()
        })
        .collect()
}

/// Runs a real server session (on `server_bytes`) against a real client (on `client_bytes`).
fn both(
    server_bytes: &[u8],
    client_bytes: &[u8],
    client_delivery: Delivery,
    server_delivery: Option<Delivery>,
    seen: &mut HashSet<[u8; 16]>,
    client_seed: u64,
) -> (
    Result<Vec<session::ClientOutcome>, SimError>,
    Result<ServedSession, ProtocolError>,
) {
    let server_model = Model::parse(server_bytes).unwrap();
    let arch = architecture_only(&Model::parse(client_bytes).unwrap()).unwrap();
    let client_model = Model::parse(&arch).unwrap();
    let (c, s) = tcp_pair(Duration::from_secs(20));
    thread::scope(|scope| {
        let server = scope.spawn(|| {
            let mut io = metered(s, Direction::Down);
            session::serve(
                &server_model,
                &mut io,
                &mut Entropy::os(),
                seen,
                &ServeOptions {
                    delivery: server_delivery,
                    ..ServeOptions::default()
                },
            )
        });
        let mut io = metered(c, Direction::Up);
        let mut entropy = Entropy::reproducible(client_seed, 0);
        let client = session::client(
            &client_model,
            &mut io,
            &mut entropy,
            client_delivery,
            None,
            &inputs(2),
        );
        drop(io);
        (client, server.join().unwrap())
    })
}

fn handshake_error(e: &SimError) -> HandshakeError {
    match e {
        SimError::Protocol(ProtocolError::Handshake(h)) => *h,
        other => panic!("expected a handshake error, got {other}"),
    }
}

fn server_handshake_error(e: &ProtocolError) -> HandshakeError {
    match e {
        ProtocolError::Handshake(h) => *h,
        other => panic!("expected a handshake error, got {other}"),
    }
}

#[test]
fn a_matching_session_runs_and_every_mismatch_fails_on_both_sides() {
    let a = small_model(5);
    let b = small_model(6);
    let mut seen = HashSet::new();
    let (client, server) = both(&a, &a, Delivery::Stored, None, &mut seen, 1);
    assert_eq!(client.unwrap().len(), 2);
    assert_eq!(server.unwrap().inferences.len(), 2);

    // Different models (one more kept ReLU): the digests differ.
    let (client, server) = both(&a, &b, Delivery::Stored, None, &mut seen, 2);
    assert!(matches!(
        handshake_error(&client.unwrap_err()),
        HandshakeError::ModelDigest { .. }
    ));
    assert!(matches!(
        server_handshake_error(&server.unwrap_err()),
        HandshakeError::ModelDigest { .. }
    ));

    // A server that only streams refuses a storing client.
    let (client, server) = both(
        &a,
        &a,
        Delivery::Stored,
        Some(Delivery::Streamed),
        &mut seen,
        3,
    );
    assert!(matches!(
        handshake_error(&client.unwrap_err()),
        HandshakeError::Delivery { .. }
    ));
    assert!(matches!(
        server_handshake_error(&server.unwrap_err()),
        HandshakeError::Delivery { .. }
    ));

    // The same session id again (same reproducible client randomness): refused, as its
    // material would be reused.
    let (client, server) = both(&a, &a, Delivery::Stored, None, &mut seen, 1);
    assert_eq!(
        handshake_error(&client.unwrap_err()),
        HandshakeError::SessionReused
    );
    assert_eq!(
        server_handshake_error(&server.unwrap_err()),
        HandshakeError::SessionReused
    );
}

/// Sends a hand-made hello to a real server and returns its welcome and its error.
fn raw_hello(bytes: [u8; HELLO_BYTES]) -> ([u8; HELLO_BYTES], ProtocolError) {
    let model_bytes = small_model(5);
    let model = Model::parse(&model_bytes).unwrap();
    let (mut c, s) = tcp_pair(SHORT);
    thread::scope(|scope| {
        let server = scope.spawn(|| {
            let mut io = metered(s, Direction::Down);
            session::serve(
                &model,
                &mut io,
                &mut Entropy::os(),
                &mut HashSet::new(),
                &ServeOptions::default(),
            )
        });
        c.write_all(&bytes).unwrap();
        let mut welcome = [0u8; HELLO_BYTES];
        c.read_exact(&mut welcome).unwrap();
        (welcome, server.join().unwrap().unwrap_err())
    })
}

#[test]
fn the_server_names_a_wrong_version_protocol_or_magic() {
    let model_bytes = small_model(5);
    let model = Model::parse(&model_bytes).unwrap();
    let good = Hello::new(ProtocolName::RING_GC, &model, [9; 16], Delivery::Streamed);

    let mut v = good;
    v.version += 1;
    let (welcome, err) = raw_hello(v.encode(None));
    assert_eq!(Hello::decode(&welcome, true).unwrap().1, Status::Version);
    assert!(matches!(
        server_handshake_error(&err),
        HandshakeError::Version {
            ours: PROTOCOL_VERSION,
            ..
        }
    ));

    let mut p = good;
    p.protocol = ProtocolName::new("delphi").unwrap();
    let (welcome, err) = raw_hello(p.encode(None));
    assert_eq!(Hello::decode(&welcome, true).unwrap().1, Status::Protocol);
    assert!(matches!(
        server_handshake_error(&err),
        HandshakeError::Protocol { .. }
    ));
    assert!(err.to_string().contains("delphi"), "{err}");

    let (welcome, err) = raw_hello([b'x'; HELLO_BYTES]);
    assert_eq!(Hello::decode(&welcome, true).unwrap().1, Status::Malformed);
    assert_eq!(server_handshake_error(&err), HandshakeError::BadMagic);
}

/// A client session against a fake server that runs `fake` on its end of the connection.
fn client_against(fake: impl FnOnce(TcpStream) + Send) -> (SimError, Duration) {
    let bytes = small_model(5);
    let model = Model::parse(&bytes).unwrap();
    let (c, s) = tcp_pair(SHORT);
    thread::scope(|scope| {
        scope.spawn(move || fake(s));
        let started = Instant::now();
        let mut io = metered(c, Direction::Up);
        let err = session::client(
            &model,
            &mut io,
            &mut Entropy::os(),
            Delivery::Stored,
            None,
            &inputs(1),
        )
        .unwrap_err();
        (err, started.elapsed())
    })
}

/// Reads the client's hello and answers with a valid welcome for it.
fn welcome(s: &mut TcpStream) {
    let mut hello = [0u8; HELLO_BYTES];
    s.read_exact(&mut hello).unwrap();
    let (theirs, _) = Hello::decode(&hello, false).unwrap();
    s.write_all(&theirs.encode(Some(Status::Ok))).unwrap();
}

fn drain(mut s: TcpStream) {
    let mut sink = [0u8; 4096];
    while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
}

#[test]
fn a_silent_server_is_a_timeout_within_bounded_time() {
    // Accepts and never answers the hello.
    let (err, took) = client_against(|s| {
        thread::sleep(SHORT * 4);
        drop(s);
    });
    assert!(
        matches!(err, SimError::Protocol(ProtocolError::Timeout)),
        "{err}"
    );
    assert!(took < BOUND, "gave up after {took:?}");

    // Answers the handshake, takes the start frame, then stalls.
    let (err, took) = client_against(|mut s| {
        welcome(&mut s);
        let mut start = [0u8; 37];
        s.read_exact(&mut start).unwrap();
        thread::sleep(SHORT * 4);
    });
    assert!(
        matches!(err, SimError::Protocol(ProtocolError::Timeout)),
        "{err}"
    );
    assert!(took < BOUND, "gave up after {took:?}");
}

#[test]
fn a_truncating_or_garbage_server_is_a_typed_error() {
    // Half a welcome, then hang up.
    let (err, _) = client_against(|mut s| {
        let mut hello = [0u8; HELLO_BYTES];
        s.read_exact(&mut hello).unwrap();
        s.write_all(&hello[..HELLO_BYTES / 2]).unwrap();
    });
    assert!(
        matches!(err, SimError::Protocol(ProtocolError::Closed)),
        "{err}"
    );

    // Not our protocol at all.
    let (err, _) = client_against(|mut s| {
        s.write_all(&[0x55; HELLO_BYTES]).unwrap();
        drain(s);
    });
    assert!(
        matches!(
            err,
            SimError::Protocol(ProtocolError::Handshake(HandshakeError::BadMagic))
        ),
        "{err}"
    );

    // A valid handshake, then random bytes for every message the client reads: it cannot
    // notice bad labels, but the reconstructed output falls outside every correct result.
    let bytes = small_model(5);
    let model = Model::parse(&bytes).unwrap();
    let t = CostModel::new(Protocol::RingGc, CORTEX_M4_64, LTE)
        .with_delivery(Delivery::Stored)
        .estimate(&model)
        .total;
    let everything = (t.client_storage + t.online.down) as usize;
    for seed in 0..4u64 {
        let (err, took) = client_against(move |mut s| {
            welcome(&mut s);
            let mut entropy = Entropy::reproducible(seed, 7);
            let mut junk = vec![0u8; everything];
            entropy.fill(&mut junk).unwrap();
            s.write_all(&junk).unwrap();
            drain(s);
        });
        assert!(
            matches!(
                err,
                SimError::Protocol(ProtocolError::OutputOutOfRange { .. })
            ),
            "garbage {seed}: {err}"
        );
        assert!(took < BOUND);
    }
}

/// A server session against a fake client running `fake`.
fn server_against(fake: impl FnOnce(TcpStream) + Send) -> (ProtocolError, Duration) {
    let bytes = small_model(5);
    let model = Model::parse(&bytes).unwrap();
    let (c, s) = tcp_pair(SHORT);
    thread::scope(|scope| {
        scope.spawn(move || fake(c));
        let started = Instant::now();
        let mut io = metered(s, Direction::Down);
        let err = session::serve(
            &model,
            &mut io,
            &mut Entropy::os(),
            &mut HashSet::new(),
            &ServeOptions::default(),
        )
        .unwrap_err();
        (err, started.elapsed())
    })
}

#[test]
fn a_silent_truncating_or_garbage_client_is_a_typed_error() {
    let bytes = small_model(5);
    let model = Model::parse(&bytes).unwrap();
    let hello = Hello::new(ProtocolName::RING_GC, &model, [3; 16], Delivery::Streamed);
    let start = |s: &mut TcpStream| {
        s.write_all(&hello.encode(None)).unwrap();
        let mut w = [0u8; HELLO_BYTES];
        s.read_exact(&mut w).unwrap();
        let mut frame = vec![1u8, 0, 0, 0, 0];
        frame.extend([5u8; 32]);
        s.write_all(&frame).unwrap();
    };
    // Connects and says nothing.
    let (err, took) = server_against(|s| {
        thread::sleep(SHORT * 4);
        drop(s);
    });
    assert_eq!(err, ProtocolError::Timeout);
    assert!(took < BOUND, "gave up after {took:?}");
    // Starts an inference, sends half of its masked input, hangs up.
    let (err, _) = server_against(|mut s| {
        start(&mut s);
        let mut share = vec![0u8; 32 * 8];
        s.read_exact(&mut share).unwrap(); // the streamed share of the conv layer
        s.write_all(&[0u8; 60]).unwrap();
    });
    assert_eq!(err, ProtocolError::Closed);
    // Starts an inference, then stalls.
    let (err, took) = server_against(|mut s| {
        start(&mut s);
        thread::sleep(SHORT * 4);
    });
    assert_eq!(err, ProtocolError::Timeout);
    assert!(took < BOUND);
    // An unknown frame after the handshake.
    let (err, _) = server_against(|mut s| {
        s.write_all(&hello.encode(None)).unwrap();
        let mut w = [0u8; HELLO_BYTES];
        s.read_exact(&mut w).unwrap();
        s.write_all(&[0xee; 40]).unwrap();
        drain(s);
    });
    assert_eq!(err, ProtocolError::Handshake(HandshakeError::Malformed));
}

/// Stored material can be taken once: the second read of any item is an error.
#[test]
fn stored_material_serves_one_inference() {
    struct NoWire;
    impl Transport for NoWire {
        fn send(&mut self, _: &[u8]) -> Result<(), ProtocolError> {
            Err(ProtocolError::Closed)
        }
        fn recv(&mut self, _: &mut [u8]) -> Result<(), ProtocolError> {
            Err(ProtocolError::Closed)
        }
    }
    let bytes = small_model(5);
    let model = Model::parse(&bytes).unwrap();
    let (mut client, _server) = Preprocessing::new(&model, [1; 32], [2; 32]).all().unwrap();
    let mut share = vec![0u64; 32];
    client.linear_share(0, &mut share, &mut NoWire).unwrap();
    assert_eq!(
        client.linear_share(0, &mut share, &mut NoWire),
        Err(ProtocolError::Offline { layer: 0 })
    );
    let mut m = GcMaterial::EMPTY;
    client
        .relu_material(1, 2, ReluParams::FULL, &mut m, &mut NoWire)
        .unwrap();
    assert_eq!(
        client.relu_material(1, 2, ReluParams::FULL, &mut m, &mut NoWire),
        Err(ProtocolError::Offline { layer: 1 })
    );
    client
        .relu_material(1, 3, ReluParams::FULL, &mut m, &mut NoWire)
        .unwrap();
    // Preprocessing is one pass: layers cannot be produced twice.
    let mut pre = Preprocessing::new(&model, [1; 32], [2; 32]);
    let first = model.layers().next().unwrap();
    assert!(pre.layer(&first).is_ok());
    assert!(pre.layer(&first).is_err());
}

#[test]
fn serve_and_client_processes_run_and_a_bad_client_does_not_stop_the_server() {
    let exe = env!("CARGO_BIN_EXE_protocol-sim");
    let model = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../firmware-example/model/model.pic"
    );
    let mut serve = Command::new(exe)
        .args([
            "serve",
            "--model",
            model,
            "--listen",
            "127.0.0.1:0",
            "--sessions",
            "3",
        ])
        .args(["--timeout", "20"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(serve.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first.rsplit(' ').next().unwrap().to_string();
    assert!(first.contains("listening on"), "{first}");
    // A client that sends junk and leaves.
    {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.write_all(&[0u8; HELLO_BYTES]).unwrap();
    }
    // Two real clients, stored and streamed, checked against plaintext.
    for delivery in ["stored", "streamed"] {
        let out = Command::new(exe)
            .args([
                "client",
                "--connect",
                &addr,
                "--model",
                model,
                "--dataset",
                "digits",
            ])
            .args(["--samples", "2", "--check", "--delivery", delivery])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{delivery}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("argmax agrees on 2/2"), "{text}");
        assert!(
            text.contains("measured bytes equal the cost model"),
            "{text}"
        );
    }
    let status = serve.wait().unwrap();
    let log: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(log[0].contains("failed"), "{log:?}");
    assert!(
        log[1].contains("2 inferences, stored") && log[2].contains("2 inferences, streamed"),
        "{log:?}"
    );
    // One of three sessions failed: the server says so in its exit status.
    assert!(!status.success());
}

#[test]
fn every_command_has_help() {
    let exe = env!("CARGO_BIN_EXE_protocol-sim");
    for cmd in ["cost", "run", "serve", "client"] {
        let out = Command::new(exe).args([cmd, "--help"]).output().unwrap();
        assert!(out.status.success(), "{cmd} --help");
        assert!(String::from_utf8_lossy(&out.stdout).contains("--timeout") || cmd == "cost");
    }
}

#[test]
fn frames_round_trip() {
    struct Buf(Vec<u8>);
    impl Transport for Buf {
        fn send(&mut self, b: &[u8]) -> Result<(), ProtocolError> {
            self.0.extend_from_slice(b);
            Ok(())
        }
        fn recv(&mut self, b: &mut [u8]) -> Result<(), ProtocolError> {
            if self.0.len() < b.len() {
                return Err(ProtocolError::Closed);
            }
            b.copy_from_slice(&self.0[..b.len()]);
            self.0.drain(..b.len());
            Ok(())
        }
    }
    let mut io = Buf(Vec::new());
    let start = Frame::Start {
        index: 7,
        dealer_seed: [4; 32],
    };
    start.send(&mut io).unwrap();
    Frame::End.send(&mut io).unwrap();
    assert_eq!(Frame::recv(&mut io).unwrap(), start);
    assert_eq!(Frame::recv(&mut io).unwrap(), Frame::End);
    assert_eq!(Frame::recv(&mut io), Err(ProtocolError::Closed));
}

/// The file (12 bytes after the magic): AvgPool2d with kernel 255, stride 1, on a
/// 1024x1024 input, which `parse` accepts and which takes 38,554,371,076 ops per inference.
#[test]
fn inference_commands_refuse_a_model_above_the_work_limit() {
    let exe = env!("CARGO_BIN_EXE_protocol-sim");
    let dir = std::env::temp_dir().join(format!("pi-huge-pool-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("huge.pic");
    std::fs::write(
        &path,
        b"PIC1\x01\x00\x01\x80\x08\x80\x08\x01\x00\x03\xff\x01",
    )
    .unwrap();
    let path = path.to_str().unwrap();
    let cases: [&[&str]; 3] = [
        &["run", "--model", path, "--samples", "1"],
        &[
            "serve",
            "--model",
            path,
            "--listen",
            "127.0.0.1:0",
            "--sessions",
            "1",
        ],
        &[
            "client",
            "--model",
            path,
            "--connect",
            "127.0.0.1:9",
            "--samples",
            "1",
        ],
    ];
    for args in cases {
        let out = Command::new(exe).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} accepted the model");
        assert!(
            err.contains("38554371076 ops per inference, more than the limit of 4000000000"),
            "{args:?}: {err}"
        );
    }
    // A caller who means it can raise the limit; the figure is the model's exact cost.
    let out = Command::new(exe)
        .args([
            "run",
            "--model",
            path,
            "--samples",
            "1",
            "--max-ops",
            "1000",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("limit of 1000"));
    std::fs::remove_dir_all(&dir).ok();
}
