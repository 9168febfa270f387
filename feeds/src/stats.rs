//! Decode counters: frames seen, decoded, ignored and malformed per message kind.
//!
//! A malformed frame is counted and logged the first time its kind goes wrong, never again
//! (a flood of bad frames must not turn into a flood of log lines on the feed thread).

/// Message kinds a feed distinguishes, for counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum MsgKind {
    /// Could not be parsed as JSON, or no recognisable shape.
    Unknown = 0,
    DepthUpdate,
    DepthSnapshot,
    BookTicker,
    Trade,
    AggTrade,
    MarkPrice,
    Kline,
    ForceOrder,
    Control,
    /// Bybit `orderbook.{1,50,200,500}.SYM`, snapshot or delta.
    OrderBook,
    /// Bybit `publicTrade.SYM`.
    PublicTrade,
    /// Bybit `tickers.SYM`, snapshot or delta.
    Ticker,
    /// Bybit `liquidation.SYM` and `allLiquidation.SYM`.
    Liquidation,
}

pub const MSG_KINDS: usize = 14;

impl MsgKind {
    pub const ALL: [MsgKind; MSG_KINDS] = [
        MsgKind::Unknown,
        MsgKind::DepthUpdate,
        MsgKind::DepthSnapshot,
        MsgKind::BookTicker,
        MsgKind::Trade,
        MsgKind::AggTrade,
        MsgKind::MarkPrice,
        MsgKind::Kline,
        MsgKind::ForceOrder,
        MsgKind::Control,
        MsgKind::OrderBook,
        MsgKind::PublicTrade,
        MsgKind::Ticker,
        MsgKind::Liquidation,
    ];

    pub fn name(self) -> &'static str {
        match self {
            MsgKind::Unknown => "unknown",
            MsgKind::DepthUpdate => "depthUpdate",
            MsgKind::DepthSnapshot => "depthSnapshot",
            MsgKind::BookTicker => "bookTicker",
            MsgKind::Trade => "trade",
            MsgKind::AggTrade => "aggTrade",
            MsgKind::MarkPrice => "markPriceUpdate",
            MsgKind::Kline => "kline",
            MsgKind::ForceOrder => "forceOrder",
            MsgKind::Control => "control",
            MsgKind::OrderBook => "orderbook",
            MsgKind::PublicTrade => "publicTrade",
            MsgKind::Ticker => "tickers",
            MsgKind::Liquidation => "liquidation",
        }
    }
}

/// A frame that could not be decoded: which kind it looked like and what was wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed {} frame: {what}", kind.name())]
pub struct DecodeError {
    pub kind: MsgKind,
    pub what: &'static str,
}

impl DecodeError {
    pub const fn new(kind: MsgKind, what: &'static str) -> Self {
        Self { kind, what }
    }
}

/// Counters for one feed.
#[derive(Clone, Debug, Default)]
pub struct DecodeStats {
    /// Data frames handed to the decoder.
    pub frames: u64,
    /// Frames decoded into a known message.
    pub decoded: u64,
    /// Well-formed frames of a kind this feed does not use (e.g. `24hrTicker`).
    pub ignored: u64,
    pub malformed: u64,
    pub malformed_by_kind: [u64; MSG_KINDS],
}

impl DecodeStats {
    /// Counts a malformed frame; logs it only the first time its kind fails.
    #[cold]
    pub fn malformed(&mut self, venue: &str, err: DecodeError, frame: &[u8]) {
        self.malformed += 1;
        let n = &mut self.malformed_by_kind[err.kind as usize];
        *n += 1;
        if *n == 1 {
            let shown = &frame[..frame.len().min(160)];
            tracing::warn!(
                venue,
                kind = err.kind.name(),
                what = err.what,
                frame = %String::from_utf8_lossy(shown),
                "malformed frame (counted; further ones of this kind are counted silently)"
            );
        }
    }

    pub fn merge(&mut self, o: &DecodeStats) {
        self.frames += o.frames;
        self.decoded += o.decoded;
        self.ignored += o.ignored;
        self.malformed += o.malformed;
        for (a, b) in self.malformed_by_kind.iter_mut().zip(o.malformed_by_kind) {
            *a += b;
        }
    }
}
