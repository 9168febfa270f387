//! Shared helpers for the `qalpha-bench` criterion suites: real frames from the bundled sample.
//!
//! Every benchmark in `benches/` runs on frames recorded from Binance USD-M
//! (`data/sample/btcusdt-usdm-20230404.qcap`, see its `NOTICE.md`), never on invented ones, so
//! the numbers reflect real frame sizes, level counts and field orders. This module:
//!
//! - loads the capture with [`CaptureReader`] and copies each data frame out of the map
//!   ([`Sample::load`]), labelled with its message kind as the production decoder sees it;
//! - picks a few hundred frames of one kind spread over the whole capture ([`Sample::spread`]),
//!   so a benchmark cycling through them does not let the branch predictor memorise one frame;
//! - builds a [`BinanceFeed`] whose book has been synced from the capture's REST snapshot
//!   ([`Sample::synced_feed`]), so depth benchmarks measure the in-sync apply path;
//! - loads the snapshot into a bare [`OrderBook`] ([`Sample::snapshot_book`]);
//! - provides [`CountingSink`], an [`EventSink`] that counts events instead of storing them.
//!
//! The helpers are untimed set-up; only the code under `benches/` is measured.

use std::fmt;
use std::hint::black_box;
use std::path::Path;

use qalpha_engine::capture::{CaptureError, CaptureReader, RecordKind, Transport};
use qalpha_engine::event::MarketEvent;
use qalpha_engine::ring::PushOutcome;
use qalpha_engine::Symbol;
use qalpha_feeds::binance::feed::EventSink;
use qalpha_feeds::binance::{decode, BinanceFeed, BinanceMsg};
use qalpha_feeds::book::{BookSide, OrderBook};
use qalpha_feeds::json::JsonParser;
use qalpha_feeds::replay::url_symbol;
use qalpha_feeds::stats::MsgKind;

/// The bundled real capture: 32,000 Binance USD-M BTCUSDT records (depth diffs, bookTicker,
/// trade, markPrice and one REST depth snapshot), 2023-04-04.
pub const SAMPLE_CAPTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/sample/btcusdt-usdm-20230404.qcap"
);

/// One data frame (WebSocket message or REST body) copied out of the capture.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Receive time recorded in the capture, ns since the Unix epoch.
    pub recv_ns: u64,
    /// The record kind (`WsText`, `WsBinary` or `RestResponse`).
    pub record: RecordKind,
    /// The message kind the production decoder gives this frame. Well-formed messages the engine
    /// ignores are [`MsgKind::Unknown`]; control replies are [`MsgKind::Control`].
    pub kind: MsgKind,
    /// The frame's bytes, exactly as received.
    pub bytes: Vec<u8>,
}

/// Why a capture could not be used as a benchmark sample.
#[derive(Debug)]
pub enum SampleError {
    /// The file could not be opened or is not a capture.
    Capture(CaptureError),
    /// A frame failed to parse or decode (the sample is meant to be clean).
    Malformed { index: usize, why: String },
    /// No REST depth snapshot on a connection whose URL names a symbol.
    NoSnapshot,
}

impl fmt::Display for SampleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SampleError::Capture(e) => write!(f, "cannot read the capture: {e}"),
            SampleError::Malformed { index, why } => write!(f, "frame {index}: {why}"),
            SampleError::NoSnapshot => write!(f, "the capture has no REST depth snapshot"),
        }
    }
}

impl std::error::Error for SampleError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SampleError::Capture(e) => Some(e),
            _ => None,
        }
    }
}

impl From<CaptureError> for SampleError {
    fn from(e: CaptureError) -> Self {
        SampleError::Capture(e)
    }
}

/// The data frames of a capture, in capture order, with the first REST depth snapshot located.
#[derive(Debug)]
pub struct Sample {
    /// Every WebSocket frame and REST body, in capture order (connect/disconnect records are left
    /// out).
    pub frames: Vec<Frame>,
    /// Records in the file (all kinds), i.e. what a replay iterates.
    pub records: u64,
    /// Index into [`frames`](Self::frames) of the first REST depth snapshot.
    pub snapshot: usize,
    /// The snapshot's symbol (from its REST URL's `symbol=`).
    pub symbol: Symbol,
}

impl Sample {
    /// Loads the bundled sample ([`SAMPLE_CAPTURE`]).
    ///
    /// # Panics
    /// If the bundled file is missing or not the clean capture it is supposed to be.
    pub fn load() -> Self {
        Self::open(SAMPLE_CAPTURE).unwrap_or_else(|e| panic!("{SAMPLE_CAPTURE}: {e}"))
    }

    /// Loads any capture holding Binance USD-M frames and at least one REST depth snapshot.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SampleError> {
        let reader = CaptureReader::open(path)?;
        let mut parser = JsonParser::new(64 * 1024);
        let mut frames = Vec::with_capacity(reader.record_count() as usize);
        let mut snapshot = None;
        for rec in reader.records() {
            if !matches!(
                rec.kind,
                RecordKind::WsText | RecordKind::WsBinary | RecordKind::RestResponse
            ) {
                continue;
            }
            let index = frames.len();
            let kind = classify(&mut parser, rec.payload)
                .map_err(|why| SampleError::Malformed { index, why })?;
            if snapshot.is_none()
                && rec.kind == RecordKind::RestResponse
                && kind == MsgKind::DepthSnapshot
            {
                let symbol = reader
                    .connection(rec.conn_id)
                    .filter(|c| c.transport == Transport::Rest)
                    .and_then(|c| url_symbol(&c.url));
                if let Some(symbol) = symbol {
                    snapshot = Some((index, symbol));
                }
            }
            frames.push(Frame {
                recv_ns: rec.recv_ns,
                record: rec.kind,
                kind,
                bytes: rec.payload.to_vec(),
            });
        }
        let (snapshot, symbol) = snapshot.ok_or(SampleError::NoSnapshot)?;
        Ok(Self {
            frames,
            records: reader.record_count(),
            snapshot,
            symbol,
        })
    }

    /// Frames of one kind, in capture order.
    pub fn of_kind(&self, kind: MsgKind) -> impl Iterator<Item = &Frame> + '_ {
        self.frames.iter().filter(move |f| f.kind == kind)
    }

    /// Up to `n` frames of `kind`, evenly spread over the whole capture (every frame when there
    /// are fewer than `n`), so a benchmark cycling through them sees the capture's variety.
    pub fn spread(&self, kind: MsgKind, n: usize) -> Vec<&Frame> {
        let all: Vec<&Frame> = self.of_kind(kind).collect();
        if all.len() <= n {
            return all;
        }
        (0..n).map(|i| all[i * all.len() / n]).collect()
    }

    /// The REST depth snapshot frame.
    pub fn snapshot_frame(&self) -> &Frame {
        &self.frames[self.snapshot]
    }

    /// A feed that has seen every frame up to and including the one that brought the book in
    /// sync (the snapshot, or the first diff bridging it). Returns the feed and the index of the
    /// first frame after that point.
    ///
    /// # Panics
    /// If the book never syncs (the bundled sample syncs on the diff right after the snapshot).
    pub fn synced_feed(&self) -> (BinanceFeed, usize) {
        let mut feed = BinanceFeed::new();
        let mut sink = CountingSink::default();
        for (i, f) in self.frames.iter().enumerate() {
            if i == self.snapshot {
                feed.on_snapshot(f.recv_ns, self.symbol, &f.bytes, &mut sink);
            } else if f.record == RecordKind::RestResponse {
                continue;
            } else {
                feed.on_ws_frame(f.recv_ns, &f.bytes, &mut sink);
            }
            if i >= self.snapshot && feed.book(self.symbol).is_some_and(|b| b.is_synced()) {
                return (feed, i + 1);
            }
        }
        panic!("the {} book never synced", self.symbol);
    }

    /// An order book holding the REST snapshot's levels (1000 per side in the bundled sample).
    pub fn snapshot_book(&self) -> OrderBook {
        let mut parser = JsonParser::new(64 * 1024);
        let mut book = OrderBook::with_capacity(4096);
        parser
            .parse(&self.snapshot_frame().bytes, |root| {
                let Ok(BinanceMsg::Snapshot(s)) = decode(root) else {
                    panic!("snapshot frame does not decode as a snapshot");
                };
                for (side, levels) in [(BookSide::Bid, s.bids), (BookSide::Ask, s.asks)] {
                    for l in levels.iter() {
                        let (px, qty) = l.expect("snapshot level");
                        book.set(side, px, qty);
                    }
                }
            })
            .expect("snapshot is valid JSON");
        book
    }
}

/// The message kind the production decoder gives a frame, or why it could not decode it.
pub fn classify(parser: &mut JsonParser, frame: &[u8]) -> Result<MsgKind, String> {
    parser
        .parse(frame, |root| match decode(root) {
            Ok(BinanceMsg::Depth(_)) => Ok(MsgKind::DepthUpdate),
            Ok(BinanceMsg::Snapshot(_)) => Ok(MsgKind::DepthSnapshot),
            Ok(BinanceMsg::Event { kind, .. }) => Ok(kind),
            Ok(BinanceMsg::Control { .. }) => Ok(MsgKind::Control),
            Ok(BinanceMsg::Ignored) => Ok(MsgKind::Unknown),
            Err(e) => Err(e.to_string()),
        })
        .map_err(|e| format!("invalid JSON: {e}"))?
}

/// An [`EventSink`] that counts events and discards them (through [`black_box`], so building the
/// event is not optimised away). Stands in for the ring when only the feed is measured.
#[derive(Clone, Copy, Debug, Default)]
pub struct CountingSink {
    /// Events emitted so far.
    pub events: u64,
}

impl EventSink for CountingSink {
    #[inline]
    fn emit(&mut self, ev: MarketEvent) -> PushOutcome {
        black_box(ev);
        self.events += 1;
        PushOutcome::Pushed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_sample_loads_and_syncs() {
        let s = Sample::load();
        assert_eq!(s.records, 32_000);
        assert_eq!(s.frames.len(), 32_000);
        assert_eq!(s.symbol.as_str(), "BTCUSDT");
        assert_eq!(s.snapshot_frame().kind, MsgKind::DepthSnapshot);
        for kind in [MsgKind::DepthUpdate, MsgKind::Trade, MsgKind::BookTicker] {
            assert_eq!(s.spread(kind, 300).len(), 300, "{}", kind.name());
        }
        let (feed, next) = s.synced_feed();
        assert!(next > s.snapshot);
        assert_eq!(feed.counters().decode.malformed, 0);
        let book = s.snapshot_book();
        assert_eq!((book.bid_levels(), book.ask_levels()), (1000, 1000));
        assert!(!book.is_crossed());
    }
}
