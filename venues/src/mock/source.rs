//! Where the mock's frames come from: a recorded capture, played back at a chosen speed.
//!
//! Binance: the capture's REST depth snapshot seeds the exchange book, playback starts at the diff
//! that bridges it (`U <= lastUpdateId <= u`), and every later diff moves the book — so the REST
//! snapshots the mock serves are exact at the stream position reached. Frames are served verbatim
//! (a combined-stream client asking for the capture's stream names gets byte-identical frames).
//! Bybit: frames are whole v5 messages keyed by topic; order-book snapshots and deltas move the book.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qalpha_engine::capture::{CaptureReader, RecordKind};
use qalpha_engine::event::Venue;
use qalpha_engine::replay::Speed;
use qalpha_engine::{Price, Qty, Side};

use super::market::{binance_stream_key, Hub, SymbolState, TapeFrame};
use super::MockError;

/// Frames of a capture, prepared for playback.
pub struct CaptureTape {
    pub venue: Venue,
    /// (symbol, frame, book update) in playback order.
    frames: Vec<(String, TapeFrame, Option<BookUpdate>)>,
    /// Initial per-symbol state (Binance: from the snapshot).
    seeds: Vec<(String, SymbolState)>,
}

/// How a frame moves the exchange book.
#[derive(Clone, Debug)]
enum BookUpdate {
    /// Binance diff: levels and its final update id.
    BinanceDiff { json: String, u: u64, exch_ms: u64 },
    /// Bybit orderbook snapshot (replace) or delta.
    Bybit {
        json: String,
        topic: String,
        snapshot: bool,
        u: u64,
        seq: u64,
        ts: u64,
    },
    /// Matching-engine trade prints (price, quantity, aggressor) for the order-entry fill model.
    Trades(Vec<(Price, Qty, Side)>),
}

/// One print from a Binance `trade` (only `X == "MARKET"`: insurance-fund and ADL trades never
/// touched the book) or a Bybit `publicTrade` item (`p`, `v`, `S` = taker side).
fn print_of(v: &serde_json::Value, qty_key: &str) -> Option<(Price, Qty, Side)> {
    let px = Price::parse(v["p"].as_str()?).ok()?;
    let qty = Qty::parse(v[qty_key].as_str()?).ok()?;
    let aggressor = match (v["m"].as_bool(), v["S"].as_str()) {
        // Binance `m`: the buyer is the maker, so the seller took.
        (Some(true), _) | (None, Some("Sell")) => Side::Sell,
        (Some(false), _) | (None, Some("Buy")) => Side::Buy,
        _ => return None,
    };
    Some((px, qty, aggressor))
}

/// `{"stream":"X","data":{...}}` → (X, the data text); raw events → (None, whole).
fn split_envelope(text: &str) -> (Option<&str>, &str) {
    if let Some(rest) = text.strip_prefix("{\"stream\":\"") {
        if let Some(end) = rest.find("\",\"data\":") {
            let data = &rest[end + 9..];
            if let Some(body) = data.strip_suffix('}') {
                return (Some(&rest[..end]), body);
            }
        }
    }
    (None, text)
}

impl CaptureTape {
    /// Loads a capture for `venue`.
    pub fn load(path: &std::path::Path, venue: Venue) -> Result<Self, MockError> {
        let r = CaptureReader::open(path).map_err(|e| MockError::Config(e.to_string()))?;
        match venue {
            Venue::BinanceUsdm => Self::load_binance(&r),
            Venue::BybitLinear => Self::load_bybit(&r),
        }
    }

    fn load_binance(r: &CaptureReader) -> Result<Self, MockError> {
        let mut snapshot: Option<(String, u64, serde_json::Value)> = None;
        let mut stream_frames = Vec::new();
        for rec in r.records() {
            let Ok(text) = std::str::from_utf8(rec.payload) else {
                continue;
            };
            match rec.kind {
                RecordKind::RestResponse if snapshot.is_none() => {
                    let sym = r
                        .connection(rec.conn_id)
                        .and_then(|c| {
                            c.url
                                .split("symbol=")
                                .nth(1)
                                .map(|s| s.split('&').next().unwrap_or("").to_ascii_uppercase())
                        })
                        .unwrap_or_default();
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
                        if let Some(l) = v.get("lastUpdateId").and_then(|x| x.as_u64()) {
                            snapshot = Some((sym, l, v));
                        }
                    }
                }
                RecordKind::WsText => stream_frames.push((rec.recv_ns, text.to_string())),
                _ => {}
            }
        }
        let (sym, last_id, snap) = snapshot.ok_or_else(|| {
            MockError::Config(
                "the capture has no REST depth snapshot to seed the mock's book".into(),
            )
        })?;
        let mut seed = SymbolState::default();
        seed.book
            .apply_json_levels(true, &snap["bids"])
            .and_then(|()| seed.book.apply_json_levels(false, &snap["asks"]))
            .map_err(|e| MockError::Config(format!("capture snapshot: {e}")))?;
        seed.last_update_id = last_id;
        let mut frames = Vec::with_capacity(stream_frames.len());
        let mut bridged = false;
        for (recv_ns, text) in stream_frames {
            let (stream, body) = split_envelope(&text);
            let v: serde_json::Value = match serde_json::from_str(body) {
                Ok(v) => v,
                Err(_) => continue,
            };
            let stream = stream.map(str::to_string).unwrap_or_else(|| {
                let e = v["e"].as_str().unwrap_or("");
                let s = v["s"].as_str().unwrap_or("").to_ascii_lowercase();
                match e {
                    "depthUpdate" => format!("{s}@depth"),
                    other => format!("{s}@{other}"),
                }
            });
            let symbol = v["s"].as_str().unwrap_or(&sym).to_ascii_uppercase();
            let is_diff = v["e"] == "depthUpdate"
                && !stream.contains("@depth5")
                && !stream.contains("@depth10")
                && !stream.contains("@depth20");
            let mut update = None;
            if is_diff {
                let (first, u) = (v["U"].as_u64().unwrap_or(0), v["u"].as_u64().unwrap_or(0));
                if !bridged {
                    // Start at the diff that bridges the snapshot; drop everything before it.
                    if first <= last_id && last_id <= u {
                        bridged = true;
                    } else {
                        continue;
                    }
                }
                update = Some(BookUpdate::BinanceDiff {
                    json: body.to_string(),
                    u,
                    exch_ms: v["E"].as_u64().unwrap_or(0),
                });
            } else if !bridged {
                continue;
            } else if v["e"] == "trade" && v["X"] == "MARKET" {
                update = print_of(&v, "q").map(|t| BookUpdate::Trades(vec![t]));
            }
            let frame = TapeFrame {
                key: binance_stream_key(&stream),
                body: body.to_string(),
                is_diff,
                topic_u: 0,
                recv_ns,
            };
            frames.push((symbol, frame, update));
        }
        if !bridged {
            return Err(MockError::Config(
                "no diff in the capture bridges its snapshot".into(),
            ));
        }
        Ok(Self {
            venue: Venue::BinanceUsdm,
            frames,
            seeds: vec![(sym, seed)],
        })
    }

    fn load_bybit(r: &CaptureReader) -> Result<Self, MockError> {
        let mut frames = Vec::new();
        for rec in r.records() {
            if rec.kind != RecordKind::WsText {
                continue;
            }
            let Ok(text) = std::str::from_utf8(rec.payload) else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
                continue;
            };
            let Some(topic) = v["topic"].as_str() else {
                continue;
            };
            let symbol = topic.rsplit('.').next().unwrap_or("").to_string();
            let is_book = topic.starts_with("orderbook.");
            let snapshot = v["type"] == "snapshot";
            let u = v["data"]["u"].as_u64().unwrap_or(0);
            let trades: Vec<_> = if topic.starts_with("publicTrade.") {
                let items = v["data"].as_array().map(Vec::as_slice).unwrap_or_default();
                items.iter().filter_map(|t| print_of(t, "v")).collect()
            } else {
                Vec::new()
            };
            let update = is_book.then(|| BookUpdate::Bybit {
                json: text.to_string(),
                topic: topic.to_string(),
                snapshot,
                u,
                seq: v["data"]["seq"].as_u64().unwrap_or(0),
                ts: v["ts"].as_u64().unwrap_or(0),
            });
            let update = update.or((!trades.is_empty()).then_some(BookUpdate::Trades(trades)));
            let frame = TapeFrame {
                key: topic.to_string(),
                body: text.to_string(),
                is_diff: is_book && !snapshot,
                topic_u: u,
                recv_ns: rec.recv_ns,
            };
            frames.push((symbol, frame, update));
        }
        if frames.is_empty() {
            return Err(MockError::Config(
                "the capture holds no Bybit topic frames".into(),
            ));
        }
        Ok(Self {
            venue: Venue::BybitLinear,
            frames,
            seeds: Vec::new(),
        })
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Puts the capture's symbols and books into the hub now, so the exchange lists them (exchangeInfo,
    /// depth snapshots) from the moment it accepts connections, before playback starts.
    pub fn seed(&mut self, hub: &Hub) {
        for (sym, seed) in std::mem::take(&mut self.seeds) {
            hub.seed(&sym, seed);
        }
    }

    /// Seeds the hub (if [`CaptureTape::seed`] has not) and plays the tape once, paced by `speed`,
    /// starting when a client has subscribed.
    pub fn play(mut self, hub: Arc<Hub>, speed: Speed, stop: &std::sync::atomic::AtomicBool) {
        self.seed(&hub);
        while !hub.has_subscriber.load(Ordering::Acquire) {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let t0 = self.frames.first().map_or(0, |f| f.1.recv_ns);
        let mut w0 = Instant::now();
        for (sym, frame, update) in self.frames {
            w0 += hub.hold_while_paused(stop);
            if stop.load(Ordering::Relaxed) {
                return;
            }
            if let Speed::Factor(f) = speed {
                let due =
                    Duration::from_nanos((frame.recv_ns.saturating_sub(t0) as f64 / f) as u64);
                let now = w0.elapsed();
                if due > now {
                    std::thread::sleep(due - now);
                }
            }
            hub.publish(&sym, frame, |s| apply(s, update));
        }
        hub.finished.store(true, Ordering::Release);
    }
}

fn apply(s: &mut SymbolState, update: Option<BookUpdate>) {
    match update {
        None => {}
        Some(BookUpdate::BinanceDiff { json, u, exch_ms }) => {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&json) {
                let _ = s.book.apply_json_levels(true, &v["b"]);
                let _ = s.book.apply_json_levels(false, &v["a"]);
                s.orders.on_levels_json(Side::Buy, &v["b"]);
                s.orders.on_levels_json(Side::Sell, &v["a"]);
            }
            s.last_update_id = u;
            s.last_ms = exch_ms;
        }
        Some(BookUpdate::Bybit {
            json,
            topic,
            snapshot,
            u,
            seq,
            ts,
        }) => {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&json) {
                if snapshot {
                    s.book.clear();
                }
                let _ = s.book.apply_json_levels(true, &v["data"]["b"]);
                let _ = s.book.apply_json_levels(false, &v["data"]["a"]);
                s.orders.on_levels_json(Side::Buy, &v["data"]["b"]);
                s.orders.on_levels_json(Side::Sell, &v["data"]["a"]);
            }
            s.topic_u.insert(topic, u);
            s.seq = seq;
            s.last_ms = ts;
        }
        Some(BookUpdate::Trades(prints)) => {
            let now = qalpha_engine::clock::now_ns();
            for (px, qty, aggressor) in prints {
                s.orders.on_trade(px, qty, aggressor, now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_split() {
        let (s, b) = split_envelope(r#"{"stream":"btcusdt@trade","data":{"e":"trade","p":"1"}}"#);
        assert_eq!((s, b), (Some("btcusdt@trade"), r#"{"e":"trade","p":"1"}"#));
        assert_eq!(split_envelope(r#"{"e":"x"}"#), (None, r#"{"e":"x"}"#));
    }
}
