//! pcap interop, import from synthetic captures: every container, byte order and link type;
//! reordered, duplicated and missing segments; truncated and garbled files. Needs neither tcpdump nor
//! privileges.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use qalpha_engine::capture::{CaptureReader, RecordKind};
use qalpha_tools::pcap::synth::{ethernet, pcap_file, pcapng_file, Conversation, NgBlock, Side};
use qalpha_tools::pcap::websocket::encode_frame;
use qalpha_tools::pcap::{import_pcap, PcapImportOptions, PcapImportReport};

mod common;
use common::*;

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
    // The first server → WebSocket-client data segment from a quarter of the way in (where exactly
    // the segments fall depends on the gzip body's length, which depends on the flate2 backend).
    let server_data = |ip: &[u8]| {
        ip.len() > 40 && ip[20..22] == 8080u16.to_be_bytes() && ip[22..24] == 51000u16.to_be_bytes()
    };
    let victim = (s.packets.len() / 4..s.packets.len())
        .find(|&i| server_data(&s.packets[i].1))
        .expect("a server data segment after the first quarter");
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
