//! pcap interop, import from real wire captures on 127.0.0.1: a loopback exchange (tungstenite
//! server + plain HTTP depth snapshot) and the plaintext mock exchange, captured by the real
//! `tcpdump` → `import pcap` → the same frames, in order → `replay --check-book` finds no mismatch.
//! Skips with a message when tcpdump is absent or capturing is not permitted.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use qalpha_engine::capture::{CaptureReader, CaptureWriter, RecordKind, Transport, WriterOptions};
use qalpha_engine::event::Venue;
use qalpha_tools::pcap::net::{self, Decoded};
use qalpha_tools::pcap::read::PacketReader;
use qalpha_tools::pcap::{import_pcap, PcapImportOptions};
mod common;
use common::*;

// ---- loopback capture with the real tcpdump ----

/// tcpdump on `lo`, started and listening, or `None` (with the reason printed) when it cannot run.
struct Tcpdump {
    child: std::process::Child,
    stderr: mpsc::Receiver<String>,
}

impl Tcpdump {
    fn start(out: &Path, port: u16) -> Option<Self> {
        if !have("tcpdump") {
            return None;
        }
        let mut child = Command::new("tcpdump")
            .args(["-i", "lo", "-n", "-U", "-B", "16384", "-w"])
            .arg(out)
            .arg(format!("tcp port {port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .ok()?;
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take()?;
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut seen = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(l) if l.contains("listening on") => {
                    return Some(Self { child, stderr: rx });
                }
                Ok(l) => seen.push(l),
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    eprintln!(
                        "skip: tcpdump cannot capture on lo here: {}",
                        seen.join(" | ")
                    );
                    return None;
                }
            }
        }
    }

    /// SIGINT (tcpdump then writes out what it holds), wait, and return its summary lines.
    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let mut lines = Vec::new();
        while let Ok(l) = self.stderr.recv_timeout(Duration::from_secs(5)) {
            lines.push(l);
        }
        lines.join(" | ")
    }
}

/// Polls the capture file until it holds `fins` FIN segments (the exchange is fully on disk).
fn wait_for_fins(pcap: &Path, fins: usize) {
    for _ in 0..300 {
        let mut n = 0;
        if let Ok(mut r) = PacketReader::open(pcap) {
            while let Ok(Some(p)) = r.next_packet() {
                if let Decoded::Tcp(s) = net::decode(p.link_type, p.data) {
                    n += usize::from(s.flags.fin());
                }
            }
        }
        if n >= fins {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct SampleExchange {
    /// WebSocket messages (binary?, payload) in the order served.
    frames: Vec<(bool, Vec<u8>)>,
    /// How many frames precede the REST snapshot in the sample.
    snapshot_after: usize,
    snapshot: Vec<u8>,
}

fn sample_exchange(records: usize) -> SampleExchange {
    let r = CaptureReader::open(SAMPLE).unwrap();
    let mut ex = SampleExchange {
        frames: Vec::new(),
        snapshot_after: 0,
        snapshot: Vec::new(),
    };
    for rec in r.records().take(records) {
        match rec.kind {
            RecordKind::RestResponse => {
                ex.snapshot_after = ex.frames.len();
                ex.snapshot = rec.payload.to_vec();
            }
            // Every 500th frame goes out as a binary message, to cover that path too.
            _ => ex
                .frames
                .push((ex.frames.len() % 500 == 499, rec.payload.to_vec())),
        }
    }
    ex
}

/// Serves the WebSocket stream (some messages fragmented around a ping) and, on the other
/// connection, the depth snapshot (chunked). Frames after the snapshot position wait until the
/// snapshot was served, as in the real captures.
fn serve(listener: TcpListener, ex: std::sync::Arc<SampleExchange>) {
    use tungstenite::protocol::frame::coding::{Data, OpCode};
    use tungstenite::protocol::frame::Frame;
    use tungstenite::Message;
    let (served_tx, served_rx) = mpsc::channel::<()>();
    let mut served_rx = Some(served_rx);
    for _ in 0..2 {
        let (stream, _) = listener.accept().unwrap();
        let mut head = vec![0u8; 4096];
        let n = loop {
            let n = stream.peek(&mut head).unwrap();
            if head[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                break n;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let text = String::from_utf8_lossy(&head[..n]).to_ascii_lowercase();
        if text.contains("upgrade: websocket") {
            let ex = ex.clone();
            let rx = served_rx.take().unwrap();
            std::thread::spawn(move || {
                // Each flush its own segment: frames end up split across many segments.
                stream.set_nodelay(true).unwrap();
                let mut ws = tungstenite::accept(stream).unwrap();
                for (i, (binary, f)) in ex.frames.iter().enumerate() {
                    if i == ex.snapshot_after {
                        ws.flush().unwrap();
                        rx.recv().unwrap();
                    }
                    let op = OpCode::Data(if *binary { Data::Binary } else { Data::Text });
                    if i % 97 == 5 && f.len() > 10 {
                        let (a, rest) = f.split_at(f.len() / 3);
                        let (b, c) = rest.split_at(rest.len() / 2);
                        ws.write(Message::Frame(Frame::message(a.to_vec(), op, false)))
                            .unwrap();
                        ws.write(Message::Ping(b"keepalive".to_vec().into()))
                            .unwrap();
                        let cont = OpCode::Data(Data::Continue);
                        ws.write(Message::Frame(Frame::message(b.to_vec(), cont, false)))
                            .unwrap();
                        ws.write(Message::Frame(Frame::message(c.to_vec(), cont, true)))
                            .unwrap();
                    } else if *binary {
                        ws.write(Message::binary(f.clone())).unwrap();
                    } else {
                        ws.write(Message::text(String::from_utf8(f.clone()).unwrap()))
                            .unwrap();
                    }
                    if i % 10 == 0 {
                        ws.flush().unwrap();
                    }
                }
                ws.close(None).unwrap();
                while ws.read().is_ok() {}
            });
        } else {
            let mut stream = stream;
            let mut req = vec![0u8; text.find("\r\n\r\n").unwrap() + 4];
            stream.read_exact(&mut req).unwrap();
            assert!(
                String::from_utf8_lossy(&req).starts_with(&format!("GET {DEPTH_PATH} HTTP/1.1"))
            );
            let mut resp = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
            for chunk in ex.snapshot.chunks(8000) {
                resp.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                resp.extend_from_slice(chunk);
                resp.extend_from_slice(b"\r\n");
            }
            resp.extend_from_slice(b"0\r\n\r\n");
            stream.write_all(&resp).unwrap();
            let _ = stream.shutdown(std::net::Shutdown::Write);
            let _ = stream.read_to_end(&mut Vec::new());
            served_tx.send(()).unwrap();
        }
    }
}

/// The client side: reads every message, fetching the snapshot at the sample's position.
fn consume(port: u16, ex: &SampleExchange) -> Vec<(bool, Vec<u8>)> {
    use tungstenite::Message;
    let url = format!("ws://127.0.0.1:{port}{STREAMS}");
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (mut ws, _) = tungstenite::client(url, tcp).unwrap();
    let mut got = Vec::new();
    let fetch = || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            s,
            "GET {DEPTH_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).unwrap();
        assert!(resp.starts_with(b"HTTP/1.1 200 OK"));
    };
    if ex.snapshot_after == 0 {
        fetch();
    }
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => got.push((false, t.as_bytes().to_vec())),
            Ok(Message::Binary(b)) => got.push((true, b.to_vec())),
            Ok(_) => continue,
            Err(_) => break,
        }
        if got.len() == ex.snapshot_after {
            fetch();
        }
    }
    got
}

#[test]
fn tcpdump_loopback_capture_imports_and_replays() {
    let tmp = tempfile::tempdir().unwrap();
    // tcpdump started as root drops to its own user before opening the output file.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let pcap = tmp.path().join("loopback.pcap");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let Some(dump) = Tcpdump::start(&pcap, port) else {
        return;
    };

    let ex = std::sync::Arc::new(sample_exchange(3000));
    assert!(ex.snapshot_after > 0 && !ex.snapshot.is_empty());
    let server = {
        let ex = ex.clone();
        std::thread::spawn(move || serve(listener, ex))
    };
    let got = consume(port, &ex);
    server.join().unwrap();
    assert_eq!(got, ex.frames, "the client itself read every frame");
    wait_for_fins(&pcap, 4);
    let summary = dump.stop();

    let qcap = tmp.path().join("loopback.qcap");
    let rep = qalpha(&[
        "import",
        "pcap",
        pcap.to_str().unwrap(),
        "--out",
        qcap.to_str().unwrap(),
        "--venue",
        "binance",
    ]);
    let ctx = format!("tcpdump: {summary}\nimport: {rep:#}");
    eprintln!("{ctx}");
    assert_eq!(rep["tcp"]["gaps"], 0, "{ctx}");
    assert_eq!(rep["websocket_connections"], 1, "{ctx}");
    assert_eq!(rep["rest_connections"], 1, "{ctx}");
    assert_eq!(rep["rest_responses"], 1, "{ctx}");
    assert!(
        rep["server_ws"]["fragmented_messages"].as_u64() > Some(10),
        "{ctx}"
    );
    assert!(
        rep["client_ws"]["masked_frames"].as_u64() > Some(0),
        "pongs and close: {ctx}"
    );

    let r = CaptureReader::open(&qcap).unwrap();
    let ws_url = format!("ws://127.0.0.1:{port}{STREAMS}");
    let rest_url = format!("http://127.0.0.1:{port}{DEPTH_PATH}");
    let urls: Vec<_> = r
        .connections()
        .iter()
        .map(|c| (c.url.clone(), c.transport))
        .collect();
    assert_eq!(
        urls,
        vec![(ws_url, Transport::WebSocket), (rest_url, Transport::Rest)],
        "{ctx}"
    );
    let mut frames = Vec::new();
    let mut snapshot_at = None;
    for rec in r.records() {
        match rec.kind {
            RecordKind::WsText | RecordKind::WsBinary => {
                frames.push((rec.kind == RecordKind::WsBinary, rec.payload.to_vec()))
            }
            RecordKind::RestResponse => {
                assert_eq!(rec.payload, &ex.snapshot[..]);
                snapshot_at = Some(frames.len());
            }
            _ => {}
        }
    }
    assert_eq!(frames.len(), ex.frames.len(), "{ctx}");
    assert!(
        frames == ex.frames,
        "imported frames differ from the frames served"
    );
    assert_eq!(snapshot_at, Some(ex.snapshot_after));

    // The replay syncs from the snapshot and checks the book, exactly as on the sample's records.
    let rp = qalpha(&["replay", qcap.to_str().unwrap(), "--check-book", "--json"]);
    assert_eq!(
        (rp["malformed"].as_u64(), rp["gaps"].as_u64()),
        (Some(0), Some(0)),
        "{rp}"
    );
    assert_eq!(rp["book_mismatches"], 0, "{rp}");
    assert!(rp["book_checks"].as_u64() > Some(0), "{rp}");
    let direct = tmp.path().join("direct.qcap");
    let src = CaptureReader::open(SAMPLE).unwrap();
    let mut w = CaptureWriter::create(
        &direct,
        src.connections().to_vec(),
        WriterOptions::default(),
    )
    .unwrap();
    for rec in src.records().take(3000) {
        w.write(rec.recv_ns, rec.conn_id, rec.kind, rec.payload)
            .unwrap();
    }
    w.finish().unwrap();
    let want = qalpha(&["replay", direct.to_str().unwrap(), "--check-book", "--json"]);
    for k in ["book_checks", "diffs_applied", "syncs", "frames"] {
        assert_eq!(rp[k], want[k], "{k}: imported {rp} vs sample {want}");
    }

    // Damaged copies of the real capture: a report or an error, never a panic.
    let bytes = std::fs::read(&pcap).unwrap();
    let bad = tmp.path().join("bad.pcap");
    let out = tmp.path().join("bad.qcap");
    for i in 0..60usize {
        let mut b = bytes[..bytes.len() * (i + 1) / 61].to_vec();
        if i % 2 == 1 {
            let at = 24 + (i * 7919) % (b.len().max(25) - 24);
            b[at] ^= 0x5a;
        }
        std::fs::write(&bad, &b).unwrap();
        let _ = import_pcap(&bad, &out, &PcapImportOptions::default());
    }
}

/// The round trip with the engine's own pieces: the mock exchange serving a real capture in
/// plaintext, the live feed recording it, tcpdump watching the wire. The pcap import must hold the
/// same WebSocket frames, in order, as the engine's own recording, and replay to exact books.
#[test]
fn tcpdump_of_the_plaintext_mock_matches_the_engines_recording() {
    use qalpha_engine::replay::Speed;
    use qalpha_venues::mock::{FaultSpec, MarketSource, MockExchange, MockOptions};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let tmp = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let mock = MockExchange::start(MockOptions {
        venue: Venue::BinanceUsdm,
        source: MarketSource::Capture(SAMPLE.into()),
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: false,
        cert_out: None,
        speed: Speed::Factor(50.0),
        faults: FaultSpec::default(),
        seed: 1,
    })
    .unwrap();
    let pcap = tmp.path().join("mock.pcap");
    let Some(dump) = Tcpdump::start(&pcap, mock.addr.port()) else {
        return;
    };
    let o = qalpha_tools::live_cmd::RecordOverrides {
        venue: Some("binance".into()),
        symbols: Some(vec!["BTCUSDT".into()]),
        streams: Some(vec![
            "depth@0ms".into(),
            "bookTicker".into(),
            "trade".into(),
        ]),
        ws_url: Some(format!("ws://{}", mock.addr)),
        rest_url: Some(format!("http://{}", mock.addr)),
        ca_file: None,
        // Park: epoll waits instead of spinning, so parallel tests do not starve each other.
        wait: Some(qalpha_engine::runtime::WaitMode::Park),
    };
    let cfg = qalpha_tools::live_cmd::effective_config(None, &o).unwrap();
    let own = tmp.path().join("own.qcap");
    let stop = Arc::new(AtomicBool::new(false));
    let (s2, own2) = (stop.clone(), own.clone());
    let rec = std::thread::spawn(move || {
        qalpha_tools::live_cmd::record(&cfg, own2, None, s2, Default::default()).unwrap()
    });
    let mut last = (u64::MAX, std::time::Instant::now());
    loop {
        let sent = mock.counters.frames_sent.load(Ordering::Relaxed);
        if sent != last.0 {
            last = (sent, std::time::Instant::now());
        }
        if mock.tape_finished() && last.1.elapsed() > Duration::from_millis(300) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    let live = rec.join().unwrap();
    assert_eq!(live.book_mismatches, 0);
    // Both connections are closed by now; give tcpdump a moment to write the last segments.
    std::thread::sleep(Duration::from_millis(500));
    let summary = dump.stop();

    let imported = tmp.path().join("imported.qcap");
    let rep = qalpha(&[
        "import",
        "pcap",
        pcap.to_str().unwrap(),
        "--out",
        imported.to_str().unwrap(),
        "--venue",
        "binance",
    ]);
    let ctx = format!("tcpdump: {summary}\nimport: {rep:#}");
    assert_eq!(rep["tcp"]["gaps"], 0, "{ctx}");
    let frames = |p: &Path| -> Vec<Vec<u8>> {
        CaptureReader::open(p)
            .unwrap()
            .records()
            .filter(|r| r.kind == RecordKind::WsText)
            .map(|r| r.payload.to_vec())
            .collect()
    };
    let (a, b) = (frames(&imported), frames(&own));
    assert!(a.len() > 20_000, "{ctx}");
    assert_eq!(a.len(), b.len(), "{ctx}");
    assert!(a == b, "the wire and the engine's recording differ");
    let replay = qalpha(&[
        "replay",
        imported.to_str().unwrap(),
        "--check-book",
        "--json",
    ]);
    assert_eq!(replay["book_mismatches"], 0, "{replay}");
    assert_eq!(replay["gaps"], 0, "{replay}");
    assert!(replay["book_checks"].as_u64() > Some(300), "{replay}");
}
