//! pcap interop, export side: `qalpha export pcapng` of real captures, read back with the real
//! `tshark` (every record a packet with the same timestamp and payload bytes, JSON dissected).
//! Skips with a message when tshark is absent (`tools/test.sh` installs it).

use std::process::Command;

use qalpha_engine::capture::{
    CaptureReader, CaptureWriter, Connection, RecordKind, Transport, WriterOptions,
};
use qalpha_engine::event::Venue;

mod common;
use common::*;

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
