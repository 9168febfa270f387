//! Proactive connection rotation before Binance's 24-hour cut-off, without a gap.
//!
//! A standby connection to the same URL opens while the primary keeps serving. Its frames are held
//! (not routed) until, for every book the connection maintains, the standby's first depth diff is at
//! or before the primary book's last applied update id — from then on the standby's stream holds
//! everything after the primary's position. The feed then switches: the primary closes quietly (its
//! books stay in sync), the held frames are routed (diffs the book already has are dropped as
//! duplicates, trades by id), and the standby becomes the primary. Runs once a day per connection,
//! so holding frames in a `Vec` here is acceptable.

use qalpha_engine::Symbol;

use crate::binance::{decode, BinanceMsg};
use crate::json::JsonParser;
use crate::transport::ws::WsClient;

/// A connection opened to replace a primary.
pub struct Standby {
    pub client: WsClient,
    pub open: bool,
    /// (recv_ns, is_text, payload), in arrival order.
    pub held: Vec<(u64, bool, Vec<u8>)>,
    pub started_ns: u64,
    parser: JsonParser,
    /// First depth diff `u` seen per symbol on the standby.
    first_diff_u: Vec<(Symbol, u64)>,
}

impl Standby {
    pub fn new(client: WsClient, now: u64) -> Self {
        Self {
            client,
            open: false,
            held: Vec::with_capacity(1024),
            started_ns: now,
            parser: JsonParser::new(4096),
            first_diff_u: Vec::new(),
        }
    }

    /// Holds a frame and notes the first diff per symbol.
    pub fn hold(&mut self, recv_ns: u64, text: bool, payload: &[u8]) {
        self.held.push((recv_ns, text, payload.to_vec()));
        let firsts = &mut self.first_diff_u;
        let _ = self.parser.parse(payload, |root| {
            if let Ok(BinanceMsg::Depth(d)) = decode(root) {
                if !d.partial && !firsts.iter().any(|(s, _)| *s == d.symbol) {
                    firsts.push((d.symbol, d.first_id));
                }
            }
        });
    }

    /// True when the standby covers everything after the primary's position for every symbol
    /// (`primary_last(sym)` is the primary book's last applied id, `None` if it is not in sync).
    pub fn caught_up(
        &self,
        symbols: &[Symbol],
        primary_last: impl Fn(Symbol) -> Option<u64>,
    ) -> bool {
        self.open
            && symbols.iter().all(|s| match primary_last(*s) {
                // Not in sync: nothing to preserve, the book resyncs on the standby as it would anyway.
                None => true,
                // The standby's first diff starts at or before the next id the primary needs.
                Some(last) => self
                    .first_diff_u
                    .iter()
                    .any(|(x, first)| x == s && *first <= last + 1),
            })
    }
}
