//! Bybit `tickers.SYM`: a snapshot carries every field, a delta **only the changed ones**
//! (PROTOCOLS.md §C.3, DATA.md §3 5.3), so the feed keeps one merged [`Ticker`] per symbol.
//!
//! Three states per field matter when merging: absent from a delta (unchanged), an empty string
//! (Bybit's "not applicable", e.g. `fundingRate:""` on dated futures: never parsed as 0) and a value.
//! Only the fields the engine uses are decoded; the rest (`price24hPcnt`, `turnover24h`, `basis`, …)
//! are skipped as the object is walked.

use qalpha_engine::event::MarkPrice;
use qalpha_engine::{Price, Qty, Symbol};
use simd_json::prelude::*;
use simd_json::tape::{Object, Value};

use crate::stats::{DecodeError, MsgKind};
use crate::tape::{dec, sym, uint, FromFixed};

/// One ticker field as a frame carries it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Field<T> {
    /// Not in the frame: a delta leaves the merged value as it was.
    #[default]
    Absent,
    /// `""`: the venue says the field does not apply (now).
    NotApplicable,
    Value(T),
}

impl<T: Copy> Field<T> {
    /// Merges into `slot`: a snapshot sets every field (absent → unknown); a delta only what it carries.
    fn merge_into(self, slot: &mut Option<T>, snapshot: bool) {
        match self {
            Field::Value(v) => *slot = Some(v),
            Field::NotApplicable => *slot = None,
            Field::Absent if snapshot => *slot = None,
            Field::Absent => {}
        }
    }
}

/// The ticker fields the engine uses, as one frame carries them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TickerFields {
    pub last_px: Field<Price>,
    pub mark_px: Field<Price>,
    pub index_px: Field<Price>,
    pub funding_rate: Field<Qty>,
    pub next_funding_ms: Field<u64>,
    pub open_interest: Field<Qty>,
    pub bid1_px: Field<Price>,
    pub bid1_qty: Field<Qty>,
    pub ask1_px: Field<Price>,
    pub ask1_qty: Field<Qty>,
}

const K: MsgKind = MsgKind::Ticker;

fn fixed<T: FromFixed>(v: Value<'_, '_>, what: &'static str) -> Result<Field<T>, DecodeError> {
    if v.as_str() == Some("") {
        return Ok(Field::NotApplicable);
    }
    dec(v, K, what).map(Field::Value)
}

fn time(v: Value<'_, '_>, what: &'static str) -> Result<Field<u64>, DecodeError> {
    if v.as_str() == Some("") {
        return Ok(Field::NotApplicable);
    }
    uint(v, K, what).map(Field::Value)
}

/// Walks a ticker `data` object once; returns its `symbol` (if present) and the fields it carries.
pub fn decode_ticker_fields(
    obj: Object<'_, '_>,
) -> Result<(Option<Symbol>, TickerFields), DecodeError> {
    let mut s = None;
    let mut f = TickerFields::default();
    for (k, v) in obj.iter() {
        match k {
            "symbol" => s = Some(sym(v, K)?),
            "lastPrice" => f.last_px = fixed(v, "lastPrice")?,
            "markPrice" => f.mark_px = fixed(v, "markPrice")?,
            "indexPrice" => f.index_px = fixed(v, "indexPrice")?,
            "fundingRate" => f.funding_rate = fixed(v, "fundingRate")?,
            // A string of ms.
            "nextFundingTime" => f.next_funding_ms = time(v, "nextFundingTime")?,
            "openInterest" => f.open_interest = fixed(v, "openInterest")?,
            "bid1Price" => f.bid1_px = fixed(v, "bid1Price")?,
            "bid1Size" => f.bid1_qty = fixed(v, "bid1Size")?,
            "ask1Price" => f.ask1_px = fixed(v, "ask1Price")?,
            "ask1Size" => f.ask1_qty = fixed(v, "ask1Size")?,
            _ => {}
        }
    }
    Ok((s, f))
}

/// One symbol's ticker, merged from its last snapshot and every delta since. `None`: unknown or
/// not applicable.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Ticker {
    pub last_px: Option<Price>,
    pub mark_px: Option<Price>,
    pub index_px: Option<Price>,
    pub funding_rate: Option<Qty>,
    pub next_funding_ms: Option<u64>,
    pub open_interest: Option<Qty>,
    pub bid1_px: Option<Price>,
    pub bid1_qty: Option<Qty>,
    pub ask1_px: Option<Price>,
    pub ask1_qty: Option<Qty>,
    /// `cs` of the last merged frame.
    pub cross_seq: u64,
    /// `ts` of the last merged frame, ms.
    pub exch_ms: u64,
}

impl Ticker {
    /// Merges one frame. A snapshot replaces everything, a delta only the fields it carries.
    pub fn apply(&mut self, snapshot: bool, f: &TickerFields, cross_seq: u64, exch_ms: u64) {
        f.last_px.merge_into(&mut self.last_px, snapshot);
        f.mark_px.merge_into(&mut self.mark_px, snapshot);
        f.index_px.merge_into(&mut self.index_px, snapshot);
        f.funding_rate.merge_into(&mut self.funding_rate, snapshot);
        f.next_funding_ms
            .merge_into(&mut self.next_funding_ms, snapshot);
        f.open_interest
            .merge_into(&mut self.open_interest, snapshot);
        f.bid1_px.merge_into(&mut self.bid1_px, snapshot);
        f.bid1_qty.merge_into(&mut self.bid1_qty, snapshot);
        f.ask1_px.merge_into(&mut self.ask1_px, snapshot);
        f.ask1_qty.merge_into(&mut self.ask1_qty, snapshot);
        self.cross_seq = cross_seq;
        self.exch_ms = exch_ms;
    }

    /// The engine's mark-price event, once a mark price is known. Fields that do not apply (dated
    /// futures have no funding) read as zero, as Binance's absent index price does.
    pub fn mark_price(&self) -> Option<MarkPrice> {
        Some(MarkPrice {
            mark_px: self.mark_px?,
            index_px: self.index_px.unwrap_or(Price::ZERO),
            funding_rate: self.funding_rate.unwrap_or(Qty::ZERO),
            next_funding_ms: self.next_funding_ms.unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::JsonParser;

    fn fields(data: &str) -> Result<(Option<Symbol>, TickerFields), DecodeError> {
        let mut p = JsonParser::new(256);
        p.parse(data.as_bytes(), |v| {
            decode_ticker_fields(v.as_object().expect("object"))
        })
        .expect("valid JSON")
    }
    fn px(s: &str) -> Price {
        Price::parse(s).unwrap()
    }

    #[test]
    fn delta_merges_only_what_it_carries() {
        let (s, snap) = fields(r#"{"symbol":"BTCUSDT","markPrice":"28552.81","indexPrice":"28562.25","nextFundingTime":"1680681600000","fundingRate":"0.0001","bid1Price":"28550.70","zz":{"a":[1]}}"#).unwrap();
        assert_eq!(s.unwrap().as_str(), "BTCUSDT");
        let mut t = Ticker::default();
        t.apply(true, &snap, 10, 1);
        let m = t.mark_price().unwrap();
        assert_eq!(
            (m.mark_px, m.index_px, m.funding_rate, m.next_funding_ms),
            (
                px("28552.81"),
                px("28562.25"),
                Qty::parse("0.0001").unwrap(),
                1680681600000
            )
        );
        let (_, delta) = fields(r#"{"markPrice":"28553","bid1Price":""}"#).unwrap();
        t.apply(false, &delta, 11, 2);
        assert_eq!(t.mark_px, Some(px("28553")));
        assert_eq!(t.index_px, Some(px("28562.25")), "absent: unchanged");
        assert_eq!(t.bid1_px, None, "empty string: not applicable");
        assert_eq!((t.cross_seq, t.exch_ms), (11, 2));
        // A snapshot replaces everything, including fields it does not carry.
        let (_, bare) = fields(r#"{"lastPrice":"1"}"#).unwrap();
        t.apply(true, &bare, 12, 3);
        assert_eq!((t.mark_px, t.last_px), (None, Some(px("1"))));
        assert_eq!(t.mark_price(), None);
    }

    #[test]
    fn dated_futures_have_no_funding() {
        let (_, f) =
            fields(r#"{"markPrice":"29023.60","nextFundingTime":"","fundingRate":""}"#).unwrap();
        assert_eq!(
            (f.funding_rate, f.next_funding_ms),
            (Field::NotApplicable, Field::NotApplicable)
        );
        let mut t = Ticker::default();
        t.apply(true, &f, 0, 0);
        let m = t.mark_price().unwrap();
        assert_eq!((m.funding_rate, m.next_funding_ms), (Qty::ZERO, 0));
    }

    #[test]
    fn bad_values_are_errors() {
        for d in [
            r#"{"markPrice":"1e3"}"#,
            r#"{"markPrice":1.5}"#,
            r#"{"nextFundingTime":"soon"}"#,
            r#"{"symbol":"BTC-6JAN23-17500-C"}"#,
        ] {
            assert_eq!(fields(d).unwrap_err().kind, MsgKind::Ticker, "{d}");
        }
    }
}
