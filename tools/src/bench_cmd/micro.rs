//! Micro-benchmarks for `qalpha bench`, each next to the alternative a reader would ask about, on
//! the bundled capture's real frames: decode per frame type with simd-json (the engine's
//! `JsonParser` + decoder) vs serde_json (`Value`, the same fields read); one ring hop, the engine's
//! rtrb ring vs crossbeam's `ArrayQueue`; the feed's decode + book apply per frame in capture order;
//! order-flow feature update per event; order encode + HMAC per venue; tract inference per Trinity
//! model; capture read throughput.
//!
//! A quick in-process timer (median of batches, `Instant` around each batch), not criterion: the
//! criterion suites in `bench/benches/` are the careful version of the same measurements (and hold
//! the onnxruntime comparison, which needs the library from the Python wheel).

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use qalpha_engine::capture::{CaptureReader, RecordKind};
use qalpha_engine::event::MarketEvent;
use qalpha_engine::order::{ClientOrderId, NewOrder, OrderType, TimeInForce};
use qalpha_engine::ring::{ring, FullPolicy};
use qalpha_engine::runtime::WaitMode;
use qalpha_engine::{Price, Qty, Side, Symbol, Venue};
use qalpha_feeds::binance::decode;
use qalpha_feeds::json::JsonParser;
use qalpha_venues::gateway::{binance, bybit};
use qalpha_venues::sign::Signer;
use serde::Serialize;

/// One measurement.
#[derive(Clone, Debug, Serialize)]
pub struct Micro {
    pub name: String,
    pub ns_per_op: f64,
    /// What the figure is compared with (another entry's name), if anything.
    pub versus: Option<String>,
    pub note: String,
}

fn m(name: &str, ns: f64, versus: Option<&str>, note: &str) -> Micro {
    Micro {
        name: name.into(),
        ns_per_op: ns,
        versus: versus.map(str::to_string),
        note: note.into(),
    }
}

/// Median ns per call of `f` over `batches` batches of `per_batch` calls.
fn time_ns(batches: usize, per_batch: usize, mut f: impl FnMut(usize)) -> f64 {
    let mut v: Vec<f64> = (0..batches.max(1))
        .map(|_| {
            let t = Instant::now();
            for i in 0..per_batch {
                f(i);
            }
            t.elapsed().as_nanos() as f64 / per_batch.max(1) as f64
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The capture's WebSocket text frames: (receive ns, bytes).
fn frames(capture: &Path) -> Result<Vec<(u64, Vec<u8>)>> {
    let r = CaptureReader::open(capture)
        .with_context(|| format!("cannot read capture {}", capture.display()))?;
    Ok(r.records()
        .filter(|rec| rec.kind == RecordKind::WsText)
        .map(|rec| (rec.recv_ns, rec.payload.to_vec()))
        .collect())
}

/// The order the encode benchmarks sign: a post-only BTCUSDT buy (the criterion `order_encode` suite
/// uses it too).
pub fn sample_order(venue: Venue) -> NewOrder {
    NewOrder {
        venue,
        symbol: Symbol::parse("BTCUSDT").unwrap_or_default(),
        client_id: ClientOrderId::parse("qamwwcsbxe-1234").unwrap_or_default(),
        side: Side::Buy,
        order_type: OrderType::Limit,
        tif: TimeInForce::PostOnly,
        price: Price::parse("63943.9").unwrap_or_default(),
        qty: Qty::parse("0.012").unwrap_or_default(),
        reduce_only: false,
    }
}

/// Every micro-benchmark; `quick` runs fewer batches.
pub fn run(capture: &Path, models: Option<&Path>, quick: bool) -> Result<Vec<Micro>> {
    let batches = if quick { 5 } else { 21 };
    let frames = frames(capture)?;
    let mut out = Vec::new();

    // Feed path: decode + sync + book apply + event, every record in capture order.
    let t = Instant::now();
    let (evs, records) = events(capture)?;
    let per = t.elapsed().as_nanos() as f64 / records.max(1) as f64;
    out.push(m(
        "feed_record_decode_book_apply",
        per,
        None,
        "VenueRouter::route over the capture in order (decode, sync, book apply, events), one pass",
    ));

    // Decode per frame type: simd-json (the engine) vs serde_json.
    let mut parser = JsonParser::new(4096);
    for (kind, tag) in [
        ("depth", "\"e\":\"depthUpdate\""),
        ("trade", "\"e\":\"trade\""),
        ("bookTicker", "\"e\":\"bookTicker\""),
    ] {
        let sel: Vec<&[u8]> = frames
            .iter()
            .map(|f| &f.1[..])
            .filter(|b| std::str::from_utf8(b).is_ok_and(|s| s.contains(tag)))
            .take(512)
            .collect();
        if sel.is_empty() {
            continue;
        }
        let simd = time_ns(batches, 2048, |i| {
            let f = sel[i % sel.len()];
            let ok = parser
                .parse(f, |root| decode(root).is_ok())
                .unwrap_or(false);
            black_box(ok);
        });
        let serde = time_ns(batches, 2048, |i| {
            let f = sel[i % sel.len()];
            let v: serde_json::Value = serde_json::from_slice(f).unwrap_or_default();
            black_box((v.get("e"), v.get("u"), v.get("t"), v.get("b"), v.get("a")));
        });
        let simd_name = format!("decode_{kind}_simd_json");
        out.push(m(
            &simd_name,
            simd,
            None,
            "JsonParser::parse + binance::decode (levels lazy)",
        ));
        out.push(m(
            &format!("decode_{kind}_serde_json"),
            serde,
            Some(&simd_name),
            "serde_json::Value, the same fields read",
        ));
    }

    // One ring hop (push + pop on one thread: the ring's own cost, no cache-line transfer).
    let Some(&ev) = evs.first() else {
        anyhow::bail!("the capture has no market events");
    };
    let (mut tx, mut rx) = ring::<MarketEvent>(1 << 12, FullPolicy::DropNewest, WaitMode::Spin);
    let rtrb = time_ns(batches, 1 << 16, |_| {
        tx.push(black_box(ev));
        black_box(rx.pop().ok());
    });
    let q = crossbeam::queue::ArrayQueue::<MarketEvent>::new(1 << 12);
    let aq = time_ns(batches, 1 << 16, |_| {
        let _ = q.push(black_box(ev));
        black_box(q.pop());
    });
    out.push(m(
        "ring_hop_rtrb",
        rtrb,
        None,
        "engine ring (rtrb) push + pop, 64-byte MarketEvent",
    ));
    out.push(m(
        "ring_hop_crossbeam_arrayqueue",
        aq,
        Some("ring_hop_rtrb"),
        "crossbeam ArrayQueue push + pop (MPMC)",
    ));

    // Order-flow features per event.
    let mut flow = qalpha_strategy::orderflow::OrderFlow::new(&[1_000, 10_000, 60_000]);
    let of = time_ns(batches, evs.len().clamp(1, 20_000), |i| {
        flow.on_event(black_box(&evs[i % evs.len().max(1)]));
    });
    out.push(m(
        "feature_update_orderflow",
        of,
        None,
        "OrderFlow::on_event (windows 1 s, 10 s, 60 s)",
    ));

    // Order encode + sign per venue.
    let s = Signer::new("bench-key-0123456789", "bench-secret-0123456789abcdef");
    let (bn, bb, ts) = (
        sample_order(Venue::BinanceUsdm),
        sample_order(Venue::BybitLinear),
        1_700_000_000_000u64,
    );
    let b_ws = time_ns(batches, 4096, |_| {
        black_box(binance::ws_request(
            &s,
            "r1",
            "order.place",
            binance::new_order_params(&bn),
            ts,
        ));
    });
    let b_rest = time_ns(batches, 4096, |_| {
        black_box(binance::rest_new_order(&s, &bn, ts));
    });
    let y_ws = time_ns(batches, 4096, |_| {
        black_box(bybit::ws_request(
            "r1",
            "order.create",
            &bybit::create_args(&bb),
            ts,
        ));
    });
    let y_rest = time_ns(batches, 4096, |_| {
        black_box(bybit::rest_create(&s, &bb, ts));
    });
    out.push(m(
        "order_encode_sign_binance_ws",
        b_ws,
        None,
        "ws-fapi order.place: params + HMAC-SHA256 + JSON",
    ));
    out.push(m(
        "order_encode_sign_binance_rest",
        b_rest,
        Some("order_encode_sign_binance_ws"),
        "REST query + HMAC-SHA256",
    ));
    out.push(m(
        "order_encode_bybit_ws",
        y_ws,
        None,
        "Trade WS order.create JSON (the connection is authenticated once)",
    ));
    out.push(m(
        "order_encode_sign_bybit_rest",
        y_rest,
        Some("order_encode_bybit_ws"),
        "REST body + HMAC-SHA256 headers",
    ));

    // Capture read throughput.
    let t = Instant::now();
    let reader = CaptureReader::open(capture)?;
    let (mut recs, mut bytes) = (0u64, 0u64);
    for r in reader.records() {
        recs += 1;
        bytes += r.payload.len() as u64;
    }
    let per = t.elapsed().as_nanos() as f64 / recs.max(1) as f64;
    out.push(m(
        "capture_read_per_record",
        per,
        None,
        &format!(
            "mmap'd capture, {recs} records, {:.1} MB",
            bytes as f64 / 1e6
        ),
    ));

    // tract inference per Trinity model.
    if let Some(dir) = models {
        out.extend(inference(dir, batches)?);
    }
    Ok(out)
}

/// The capture's market events and its record count.
fn events(capture: &Path) -> Result<(Vec<MarketEvent>, u64)> {
    use qalpha_engine::replay::CaptureHandler;
    let r = CaptureReader::open(capture)?;
    let mut router = qalpha_feeds::replay::VenueRouter::new();
    router.begin_file(r.connections());
    let (mut evs, mut n) = (Vec::new(), 0u64);
    for rec in r.records() {
        n += 1;
        router.route(&rec, &mut evs);
    }
    Ok((evs, n))
}

/// One tract run per model of the Trinity in `dir` (windows filled with zero rows).
fn inference(dir: &Path, batches: usize) -> Result<Vec<Micro>> {
    use qalpha_strategy::trinity::TrinityModels;
    let cols = qalpha_strategy::trinity::Trinity::feature_columns();
    let mut models = TrinityModels::load(dir, &cols, None).map_err(|e| anyhow::anyhow!("{e}"))?;
    let row = vec![0.0f64; cols.len()];
    for _ in 0..models.max_window() {
        models.push(&row);
    }
    let all = time_ns(batches, 64, |_| {
        black_box(models.run(0.01).ok());
    });
    Ok(vec![m(
        "inference_trinity_tract",
        all,
        None,
        "guardian + oracle + strategist, one tract run each (criterion `inference` has each model and onnxruntime)",
    )])
}
