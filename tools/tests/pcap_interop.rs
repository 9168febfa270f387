//! pcap interop, end to end on 127.0.0.1:
//!
//! - `export pcapng` of the bundled sample → the real `tshark` lists every record as a packet with
//!   the same timestamp, the same payload bytes, JSON dissected;
//! - a real exchange over loopback (tungstenite WebSocket server + a plain HTTP depth snapshot)
//!   captured by the real `tcpdump` → `import pcap` → the same frames, in order → `replay
//!   --check-book` syncs and finds no mismatch;
//! - synthetic captures (every container, byte order and link type; reordered, duplicated and
//!   missing segments; truncated and garbled files), which need neither tool nor privileges.
//!
//! Tests needing tcpdump/tshark skip with a message when the binaries are absent or capturing is
//! not permitted (`tools/test.sh` installs them).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use qalpha_engine::capture::{
    CaptureReader, CaptureWriter, Connection, RecordKind, Transport, WriterOptions,
};
use qalpha_engine::event::Venue;
use qalpha_tools::pcap::net::{self, Decoded};
use qalpha_tools::pcap::read::PacketReader;
use qalpha_tools::pcap::synth::{ethernet, pcap_file, pcapng_file, Conversation, NgBlock, Side};
use qalpha_tools::pcap::websocket::encode_frame;
use qalpha_tools::pcap::{import_pcap, PcapImportOptions, PcapImportReport};

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/sample/btcusdt-usdm-20230404.qcap"
);
const EXE: &str = env!("CARGO_BIN_EXE_qalpha");
const DEPTH_PATH: &str = "/fapi/v1/depth?symbol=BTCUSDT&limit=1000";
const STREAMS: &str =
    "/stream?streams=btcusdt@bookTicker/btcusdt@trade/btcusdt@depth@0ms/btcusdt@markPrice@1s";

fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skip: `{tool}` not found (tools/test.sh installs tshark and tcpdump)");
    }
    ok
}

fn qalpha(args: &[&str]) -> serde_json::Value {
    let out = Command::new(EXE).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "qalpha {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn unhex(s: &str) -> Vec<u8> {
    let s: Vec<u8> = s.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
    s.chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

/// `1680652700.423575000` → ns, exactly (no float).
fn epoch_ns(s: &str) -> u64 {
    let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
    let frac = format!("{frac:0<9}");
    sec.parse::<u64>().unwrap() * 1_000_000_000 + frac[..9].parse::<u64>().unwrap()
}

fn tshark_fields(file: &Path, filter: Option<&str>, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(file)
        .args(["-T", "fields", "-E", "separator=\t"]);
    if let Some(f) = filter {
        cmd.args(["-Y", f]);
    }
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

#[test]
fn exported_sample_reads_back_in_tshark_frame_for_frame() {
    if !have("tshark") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sample.pcapng");
    let rep = qalpha(&["export", "pcapng", SAMPLE, "--out", out.to_str().unwrap()]);
    assert_eq!(
        (rep["packets"].as_u64(), rep["snapped_packets"].as_u64()),
        (Some(32_000), Some(0))
    );

    let r = CaptureReader::open(SAMPLE).unwrap();
    let recs: Vec<_> = r.records().collect();
    let rows = tshark_fields(
        &out,
        None,
        &[
            "frame.time_epoch",
            "frame.protocols",
            "frame.comment",
            "exported_pdu.exported_pdu",
        ],
    );
    assert_eq!(rows.len(), recs.len(), "tshark lists one frame per record");
    for (i, (row, rec)) in rows.iter().zip(&recs).enumerate() {
        assert_eq!(epoch_ns(&row[0]), rec.recv_ns, "frame {i} timestamp");
        assert!(
            row[1].ends_with(":json"),
            "frame {i} dissected as {}",
            row[1]
        );
        let url = &r.connection(rec.conn_id).unwrap().url;
        assert_eq!(
            row[2],
            format!("conn={} kind={} url={url}", rec.conn_id, rec.kind.name())
        );
        let payload = unhex(&row[3]);
        assert_eq!(payload.len(), rec.payload.len(), "frame {i} length");
        // Cheap enough to compare every frame's bytes, not just a sample.
        assert!(payload == rec.payload, "frame {i} bytes differ");
    }
    // JSON is dissected: the snapshot is the one frame with a lastUpdateId key.
    let snap = tshark_fields(
        &out,
        Some("json.key == \"lastUpdateId\""),
        &["frame.number"],
    );
    let idx = recs
        .iter()
        .position(|r| r.kind == RecordKind::RestResponse)
        .unwrap();
    assert_eq!(snap, vec![vec![(idx + 1).to_string()]]);
    // The plain listing shows every frame as JSON.
    let list = Command::new("tshark").arg("-r").arg(&out).output().unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    assert_eq!(text.lines().count(), 32_000);
    assert!(text.lines().all(|l| l.contains("JSON")));
}

#[test]
fn connects_disconnects_and_oversized_records_export_readably() {
    if !have("tshark") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let q = tmp.path().join("mixed.qcap");
    let ws = |id, url: &str| Connection {
        id,
        venue: Some(Venue::BinanceUsdm),
        transport: Transport::WebSocket,
        url: url.into(),
    };
    let mut w =
        CaptureWriter::create(&q, vec![ws(0, "wss://a/first")], WriterOptions::default()).unwrap();
    w.write(1, 0, RecordKind::WsText, b"{\"a\":1}").unwrap();
    w.connect(2, ws(0, "wss://a/second")).unwrap();
    w.write(3, 0, RecordKind::WsBinary, &[0, 1, 2, 255])
        .unwrap();
    let big = format!("{{\"big\":\"{}\"}}", "x".repeat(300_000));
    w.write(4, 0, RecordKind::WsText, big.as_bytes()).unwrap();
    w.write(5, 0, RecordKind::Disconnect, b"tcp reset").unwrap();
    w.write(6, 0, RecordKind::WsText, b"pong").unwrap();
    w.finish().unwrap();
    let out = tmp.path().join("mixed.pcapng");
    let rep = qalpha(&[
        "export",
        "pcapng",
        q.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        (rep["packets"].as_u64(), rep["snapped_packets"].as_u64()),
        (Some(6), Some(1))
    );
    let rows = tshark_fields(
        &out,
        None,
        &[
            "frame.time_epoch",
            "frame.len",
            "frame.comment",
            "frame.protocols",
            "exported_pdu.exported_pdu",
        ],
    );
    assert_eq!(rows.len(), 6);
    assert_eq!(rows[0][2], "conn=0 kind=ws_text url=wss://a/first");
    assert_eq!(rows[1][2], "conn=0 kind=connect url=wss://a/second");
    assert_eq!(
        String::from_utf8(unhex(&rows[1][4])).unwrap(),
        "connect conn=0 venue=binance transport=websocket url=wss://a/second\n"
    );
    assert!(rows[2][3].ends_with(":data"), "{:?}", rows[2]);
    assert_eq!(unhex(&rows[2][4]), [0, 1, 2, 255]);
    assert!(
        rows[3][2].ends_with(&format!("snapped_from={}", big.len())),
        "{:?}",
        rows[3][2]
    );
    assert!(
        rows[3][1].parse::<usize>().unwrap() > 300_000,
        "orig_len keeps the true size"
    );
    assert_eq!(
        String::from_utf8(unhex(&rows[4][4])).unwrap(),
        "disconnect conn=0 reason=tcp reset\n"
    );
    assert!(
        rows[5][3].ends_with(":data-text-lines"),
        "not JSON: {:?}",
        rows[5]
    );
    assert_eq!(epoch_ns(&rows[5][0]), 6);
}

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

// ---- synthetic captures: no tools, no privileges ----

/// A WebSocket session and a REST fetch as IP packets, with what the importer should produce.
struct Synthetic {
    packets: Vec<(u64, Vec<u8>)>,
    messages: Vec<(bool, Vec<u8>)>,
    body: Vec<u8>,
}

fn synthetic() -> Synthetic {
    let client = (Ipv4Addr::new(10, 0, 0, 2), 51000);
    let server = (Ipv4Addr::new(10, 0, 0, 1), 8080);
    let mut ws = Conversation::new(client, server, 1_700_000_000_000_000_000);
    ws.mss = 700;
    ws.handshake().send(
        Side::Client,
        b"GET /ws/btcusdt@depth HTTP/1.1\r\nHost: fstream.local\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: x\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    let mut wire =
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
            .to_vec();
    let mut messages = Vec::new();
    for i in 0..40u32 {
        let m = format!(
            "{{\"e\":\"depthUpdate\",\"u\":{i},\"pad\":\"{}\"}}",
            "z".repeat((i as usize * 37) % 400)
        )
        .into_bytes();
        if i % 7 == 3 {
            wire.extend(encode_frame(false, 1, &m[..10], None));
            wire.extend(encode_frame(true, 9, b"hb", None));
            wire.extend(encode_frame(true, 0, &m[10..], None));
        } else {
            wire.extend(encode_frame(true, if i == 20 { 2 } else { 1 }, &m, None));
        }
        messages.push((i == 20, m));
    }
    ws.send(Side::Server, &wire[..wire.len() / 2]);
    ws.send(
        Side::Client,
        &encode_frame(true, 10, b"hb", Some([1, 2, 3, 4])),
    );
    ws.send(Side::Server, &wire[wire.len() / 2..]);
    ws.send(Side::Server, &encode_frame(true, 8, &[3, 232], None));
    ws.send(
        Side::Client,
        &encode_frame(true, 8, &[3, 232], Some([9, 8, 7, 6])),
    );
    ws.close(Side::Server);

    let mut rest = Conversation::new((Ipv4Addr::new(10, 0, 0, 2), 51001), server, ws.ts_ns);
    let body = br#"{"lastUpdateId":42,"bids":[["1.0","2"]],"asks":[["1.1","3"]]}"#.to_vec();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&body).unwrap();
    let gz = gz.finish().unwrap();
    let mut resp =
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for c in gz.chunks(20) {
        resp.extend(format!("{:x}\r\n", c.len()).bytes());
        resp.extend_from_slice(c);
        resp.extend_from_slice(b"\r\n");
    }
    resp.extend_from_slice(b"0\r\n\r\n");
    rest.mss = 30;
    rest.handshake()
        .send(
            Side::Client,
            b"GET /fapi/v1/depth?symbol=BTCUSDT&limit=5 HTTP/1.1\r\nHost: fapi.local:8080\r\n\r\n",
        )
        .send(Side::Server, &resp)
        .close(Side::Client);
    let mut packets = ws.packets;
    packets.extend(rest.packets);
    Synthetic {
        packets,
        messages,
        body,
    }
}

fn import_bytes(dir: &Path, name: &str, bytes: &[u8]) -> (PcapImportReport, PathBuf) {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    let out = dir.join(format!("{name}.qcap"));
    let rep = import_pcap(&p, &out, &PcapImportOptions::default()).unwrap();
    (rep, out)
}

/// What an imported capture holds, by kind.
struct Imported {
    ws: Vec<(bool, Vec<u8>)>,
    rest: Vec<Vec<u8>>,
    disconnects: Vec<String>,
    urls: Vec<String>,
}

fn contents(q: &Path) -> Imported {
    let r = CaptureReader::open(q).unwrap();
    let mut c = Imported {
        ws: Vec::new(),
        rest: Vec::new(),
        disconnects: Vec::new(),
        urls: r.connections().iter().map(|c| c.url.clone()).collect(),
    };
    for rec in r.records() {
        match rec.kind {
            RecordKind::WsText => c.ws.push((false, rec.payload.to_vec())),
            RecordKind::WsBinary => c.ws.push((true, rec.payload.to_vec())),
            RecordKind::RestResponse => c.rest.push(rec.payload.to_vec()),
            RecordKind::Disconnect => c
                .disconnects
                .push(String::from_utf8_lossy(rec.payload).into_owned()),
            RecordKind::Connect => {}
        }
    }
    c
}

#[test]
fn synthetic_capture_in_every_container_and_link_type() {
    let s = synthetic();
    let tmp = tempfile::tempdir().unwrap();
    let eth: Vec<_> = s
        .packets
        .iter()
        .map(|(t, p)| (*t, ethernet(p, 0x0800)))
        .collect();
    let sll2: Vec<_> = s
        .packets
        .iter()
        .map(|(t, p)| {
            let mut f = 0x0800u16.to_be_bytes().to_vec();
            f.resize(20, 0);
            f.extend_from_slice(p);
            (*t, f)
        })
        .collect();
    let null: Vec<_> = s
        .packets
        .iter()
        .map(|(t, p)| {
            let mut f = 2u32.to_le_bytes().to_vec();
            f.extend_from_slice(p);
            (*t, f)
        })
        .collect();
    let ng_blocks = |lt: u16, pk: &[(u64, Vec<u8>)]| -> Vec<u8> {
        let mut blocks = vec![
            NgBlock::Interface {
                link_type: 9999,
                tsresol: None,
            },
            NgBlock::Interface {
                link_type: lt,
                tsresol: Some(9),
            },
        ];
        blocks.extend(pk.iter().map(|(t, d)| NgBlock::Packet {
            interface: 1,
            ticks: *t,
            data: d,
        }));
        pcapng_file(lt == 101, &blocks)
    };
    let files = [
        ("eth-le-us.pcap", pcap_file(1, false, false, &eth)),
        ("raw-be-ns.pcap", pcap_file(101, true, true, &s.packets)),
        ("null.pcap", pcap_file(0, true, false, &null)),
        ("sll2.pcapng", ng_blocks(276, &sll2)),
        ("raw-be.pcapng", ng_blocks(101, &s.packets)),
    ];
    for (name, bytes) in &files {
        let (rep, q) = import_bytes(tmp.path(), name, bytes);
        let Imported {
            ws,
            rest,
            disconnects: disc,
            urls,
        } = contents(&q);
        assert!(
            ws == s.messages,
            "{name}: {} of {} messages: {rep:#?}",
            ws.len(),
            s.messages.len()
        );
        assert_eq!(rest, vec![s.body.clone()], "{name}");
        assert_eq!(
            urls,
            vec![
                "ws://fstream.local:8080/ws/btcusdt@depth".to_string(),
                "http://fapi.local:8080/fapi/v1/depth?symbol=BTCUSDT&limit=5".to_string()
            ],
            "{name}"
        );
        assert_eq!(
            disc,
            vec![
                "tcp closed; websocket close 1000".to_string(),
                "tcp closed".to_string()
            ],
            "{name}"
        );
        assert_eq!(
            (rep.tcp.gaps, rep.tcp_flows, rep.unidentified_flows),
            (0, 2, 0),
            "{name}"
        );
        assert_eq!(
            (
                rep.server_ws.fragmented_messages,
                rep.client_ws.masked_frames
            ),
            (6, 2),
            "{name}"
        );
        assert_eq!(rep.capture_end, Default::default());
    }
}

#[test]
fn reordered_duplicated_and_missing_segments() {
    let s = synthetic();
    let tmp = tempfile::tempdir().unwrap();
    // Reorder and repeat packets: the same records come out.
    let mut shuffled = s.packets.clone();
    // Data then its ACK alternate: swapping i and i+1 puts an ACK before its data (capture
    // reordering), swapping i and i+2 puts data of one direction out of order.
    for i in (3..shuffled.len() - 2).step_by(5) {
        shuffled.swap(i, i + 1 + i % 2);
    }
    let mut noisy = Vec::new();
    for (i, p) in shuffled.iter().enumerate() {
        noisy.push(p.clone());
        if i % 5 == 0 {
            noisy.push(p.clone());
        }
    }
    let (rep, q) = import_bytes(
        tmp.path(),
        "noisy.pcap",
        &pcap_file(101, true, false, &noisy),
    );
    let Imported { ws, rest, .. } = contents(&q);
    assert!(
        ws == s.messages,
        "{} of {} messages: {rep:#?}",
        ws.len(),
        s.messages.len()
    );
    assert_eq!(rest.len(), 1);
    assert!(
        rep.tcp.retransmitted_bytes > 0 && rep.tcp.out_of_order_segments > 0,
        "{rep:#?}"
    );
    assert_eq!(rep.tcp.gaps, 0);

    // Drop one server data segment in the middle of the stream: the client's ACK proves it was
    // sent, so it is a gap; the WebSocket ends there with a Disconnect, earlier frames are kept.
    let victim = s.packets.len() / 4;
    let (_, ip) = &s.packets[victim];
    assert!(
        ip.len() > 40 && ip[20..22] == 8080u16.to_be_bytes(),
        "a server data segment"
    );
    let mut lossy = s.packets.clone();
    lossy.remove(victim);
    let (rep, q) = import_bytes(
        tmp.path(),
        "lossy.pcap",
        &pcap_file(101, true, false, &lossy),
    );
    let Imported {
        ws,
        rest,
        disconnects: disc,
        ..
    } = contents(&q);
    assert_eq!(rep.tcp.gaps, 1, "{rep:#?}");
    assert!(!ws.is_empty() && ws.len() < s.messages.len());
    assert!(
        ws[..] == s.messages[..ws.len()],
        "the frames before the gap are intact"
    );
    assert_eq!(rest.len(), 1, "the other connection is unaffected");
    assert!(disc[0].starts_with("capture gap"), "{disc:?}");
    assert!(rep
        .warnings
        .iter()
        .any(|w| w.contains("missing from the capture")));
}

#[test]
fn truncated_and_garbled_captures_never_panic() {
    let s = synthetic();
    let tmp = tempfile::tempdir().unwrap();
    let files = [
        pcap_file(
            1,
            false,
            false,
            &s.packets
                .iter()
                .map(|(t, p)| (*t, ethernet(p, 0x0800)))
                .collect::<Vec<_>>(),
        ),
        pcapng_file(
            false,
            &std::iter::once(NgBlock::Interface {
                link_type: 101,
                tsresol: Some(9),
            })
            .chain(s.packets.iter().map(|(t, d)| NgBlock::Packet {
                interface: 0,
                ticks: *t,
                data: d,
            }))
            .collect::<Vec<_>>(),
        ),
    ];
    let (path, out) = (tmp.path().join("f.pcap"), tmp.path().join("f.qcap"));
    let mut seed = 0x9e37_79b9u32;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed as usize
    };
    for bytes in &files {
        let mut truncated_reports = 0;
        for cut in (0..bytes.len()).step_by(7) {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            match import_pcap(&path, &out, &PcapImportOptions::default()) {
                Ok(rep) => truncated_reports += usize::from(rep.capture_end != Default::default()),
                Err(e) => assert!(format!("{e:#}").contains("f.pcap"), "{e:#}"),
            }
        }
        assert!(truncated_reports > 0);
        for _ in 0..300 {
            let mut b = bytes.clone();
            for _ in 0..1 + rand() % 8 {
                let at = rand() % b.len();
                b[at] = rand() as u8;
            }
            std::fs::write(&path, &b).unwrap();
            let _ = import_pcap(&path, &out, &PcapImportOptions::default());
        }
    }
    // Not a capture at all: a clear error through the command line.
    std::fs::write(&path, b"this is not a capture").unwrap();
    let o = Command::new(EXE)
        .args([
            "import",
            "pcap",
            path.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("f.pcap") && err.contains("not a pcap or pcapng capture"),
        "{err}"
    );
    let o = Command::new(EXE)
        .args([
            "import",
            "pcap",
            path.to_str().unwrap(),
            "--out",
            "x.qcap",
            "--venue",
            "kraken",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("unknown venue"));
    for sub in [
        &["export", "pcapng", "--help"][..],
        &["import", "pcap", "--help"],
    ] {
        let o = Command::new(EXE).args(sub).output().unwrap();
        assert!(o.status.success() && !o.stdout.is_empty(), "{sub:?}");
    }
}

/// The issue's round trip with the engine's own pieces: the mock exchange serving a real capture in
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
