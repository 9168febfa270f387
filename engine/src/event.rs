//! Market events: fixed-size, heap-free `Copy` values that cross the SPSC rings.
//!
//! Every event carries `recv_ns` (stamped right after the socket read, or taken from the capture
//! record in replay), `decoded_ns` (stamped when the feed thread finished decoding and applying it)
//! and the exchange's own time. They derive `rkyv::Archive` so the same bytes can go into journal
//! files and be read back from a memory map without deserialization. Order, execution and risk
//! events join this module in later issues.

use crate::{Price, Qty, Symbol};

/// A trading venue.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
#[rkyv(derive(Debug, PartialEq))]
#[repr(u8)]
pub enum Venue {
    BinanceUsdm = 1,
    BybitLinear = 2,
}

impl Venue {
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::BinanceUsdm),
            2 => Some(Self::BybitLinear),
            _ => None,
        }
    }

    /// Short name used in configs, CLI flags and capture headers.
    pub fn name(self) -> &'static str {
        match self {
            Self::BinanceUsdm => "binance",
            Self::BybitLinear => "bybit",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "binance" | "binance-usdm" => Some(Self::BinanceUsdm),
            "bybit" | "bybit-linear" => Some(Self::BybitLinear),
            _ => None,
        }
    }
}

/// Order or aggressor side.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
#[rkyv(derive(Debug, PartialEq))]
#[repr(u8)]
pub enum Side {
    Buy = 1,
    Sell = 2,
}

/// Top of book: best bid and ask with their sizes, at an exchange update id.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Default, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
#[rkyv(derive(Debug, PartialEq))]
pub struct TopOfBook {
    /// Exchange book update id the state corresponds to (Binance `u`; Bybit `seq`, the cross
    /// sequence shared by every depth of a symbol, since each depth's `u` counts on its own).
    pub update_id: u64,
    pub bid_px: Price,
    pub bid_qty: Qty,
    pub ask_px: Price,
    pub ask_qty: Qty,
}

/// What kind of trade printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug, PartialEq))]
#[repr(u8)]
pub enum TradeKind {
    /// A normal match (Binance `X:"MARKET"` or absent).
    Market,
    /// Aggregated trade (Binance `aggTrade`): ids span `first_id..=last_id`.
    Aggregated,
    InsuranceFund,
    Adl,
    Other,
}

/// A public trade.
#[derive(Clone, Copy, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug, PartialEq))]
pub struct Trade {
    pub trade_id: u64,
    /// Last trade id folded into an aggregated trade (equals `trade_id` otherwise).
    pub last_trade_id: u64,
    pub px: Price,
    pub qty: Qty,
    /// The taker's side (Binance `m == true` means the buyer was maker, so the taker sold).
    pub aggressor: Side,
    pub kind: TradeKind,
    /// Matching-engine time of the trade, ms.
    pub trade_time_ms: u64,
}

/// Mark price, index price and funding.
#[derive(Clone, Copy, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug, PartialEq))]
pub struct MarkPrice {
    pub mark_px: Price,
    /// Zero when the venue did not send it (Binance frames before 2020).
    pub index_px: Price,
    /// Funding rate as an exact fraction in `10^-8` units (`"0.00010000"` → 10_000).
    pub funding_rate: Qty,
    pub next_funding_ms: u64,
}

/// A candlestick update.
#[derive(Clone, Copy, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug, PartialEq))]
pub struct Kline {
    pub open_ms: u64,
    /// Interval length in seconds (`1m` → 60).
    pub interval_s: u32,
    /// Number of trades in the bar.
    pub trades: u32,
    pub open: Price,
    pub high: Price,
    pub low: Price,
    pub close: Price,
    /// Base volume.
    pub volume: Qty,
    /// Taker-buy base volume (order-flow feature: buy share of volume).
    pub taker_buy_volume: Qty,
    /// Only closed bars are final.
    pub closed: bool,
}

impl Kline {
    /// Last millisecond of the bar (`open + interval − 1 ms`, as Binance's `T`).
    pub fn close_ms(&self) -> u64 {
        self.open_ms + self.interval_s as u64 * 1000 - 1
    }
}

/// A liquidation order (Binance `forceOrder`).
#[derive(Clone, Copy, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug, PartialEq))]
pub struct Liquidation {
    pub side: Side,
    pub px: Price,
    pub avg_px: Price,
    pub qty: Qty,
    pub filled_qty: Qty,
    pub trade_time_ms: u64,
}

/// Why a book stopped being trustworthy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug, PartialEq))]
#[repr(u8)]
pub enum StaleReason {
    /// A diff's `pu` (Binance) or `u` (Bybit) did not continue the previous update.
    SequenceGap,
    /// A snapshot could not be bridged to the buffered diffs; another is needed.
    SnapshotTooOld,
    /// A diff carried a level that could not be parsed.
    MalformedDiff,
    /// The connection dropped.
    Disconnected,
    /// The market-data ring was full and an update was dropped.
    RingOverflow,
    /// The rebuilt book came out crossed (best bid ≥ best ask): the venue's data was corrupt or a
    /// message was lost unnoticed. Never published; the book resyncs.
    CrossedBook,
}

impl TopOfBook {
    /// Both sides present and the best bid at or above the best ask.
    pub fn is_crossed(&self) -> bool {
        self.bid_px.raw() > 0 && self.ask_px.raw() > 0 && self.bid_px >= self.ask_px
    }
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug, PartialEq))]
pub enum MarketPayload {
    /// The rebuilt book's top after applying an update (emitted only while the book is in sync).
    BookTop(TopOfBook),
    /// The venue's own best bid/offer (Binance `bookTicker`, Bybit `orderbook.1`).
    Quote(TopOfBook),
    Trade(Trade),
    MarkPrice(MarkPrice),
    Kline(Kline),
    Liquidation(Liquidation),
    /// The book for this symbol is not in sync; nothing may use it until `BookSynced`.
    BookStale {
        reason: StaleReason,
        last_update_id: u64,
    },
    /// The book is in sync again (snapshot bridged), at this update id.
    BookSynced {
        update_id: u64,
    },
}

/// One market event for one venue and symbol.
#[derive(Clone, Copy, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug, PartialEq))]
pub struct MarketEvent {
    pub venue: Venue,
    pub symbol: Symbol,
    /// Local receive time of the frame that produced this event, ns since the Unix epoch.
    pub recv_ns: u64,
    /// When the feed thread finished decoding (and applying) it, same clock.
    pub decoded_ns: u64,
    /// Exchange event time (Binance `E`, Bybit `ts`), ms since the epoch.
    pub exch_ms: u64,
    pub payload: MarketPayload,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> MarketEvent {
        MarketEvent {
            venue: Venue::BinanceUsdm,
            symbol: Symbol::parse("BTCUSDT").unwrap(),
            recv_ns: 1_721_347_021_281_597_601,
            decoded_ns: 1_721_347_021_281_599_000,
            exch_ms: 1_721_347_022_759,
            payload: MarketPayload::BookTop(TopOfBook {
                update_id: 4_984_028_384_061,
                bid_px: Price::parse("63943.90").unwrap(),
                bid_qty: Qty::parse("46.372").unwrap(),
                ask_px: Price::parse("63944.00").unwrap(),
                ask_qty: Qty::parse("0.095").unwrap(),
            }),
        }
    }

    #[test]
    fn event_is_small_and_copy() {
        fn is_copy<T: Copy>() {}
        is_copy::<MarketEvent>();
        // One or two cache lines: the ring moves them by value.
        assert!(
            std::mem::size_of::<MarketEvent>() <= 128,
            "{}",
            std::mem::size_of::<MarketEvent>()
        );
    }

    #[test]
    fn rkyv_round_trip_and_zero_copy_access() {
        let ev = sample();
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&ev).unwrap();
        let archived = rkyv::access::<ArchivedMarketEvent, rkyv::rancor::Error>(&bytes).unwrap();
        assert_eq!(archived.recv_ns.to_native(), ev.recv_ns);
        let back: MarketEvent = rkyv::deserialize::<_, rkyv::rancor::Error>(archived).unwrap();
        assert_eq!(back, ev);
    }

    #[test]
    fn venue_names_round_trip() {
        for v in [Venue::BinanceUsdm, Venue::BybitLinear] {
            assert_eq!(Venue::from_name(v.name()), Some(v));
            assert_eq!(Venue::from_u8(v as u8), Some(v));
        }
        assert_eq!(Venue::from_u8(0), None);
    }
}
