//! The capture handler used by replay: routes each record to its venue's feed by connection.
//!
//! WebSocket frames go to the feed of the connection's venue; REST responses on a depth-snapshot
//! URL go to that feed's book for the URL's `symbol=`; a disconnect marks that venue's books stale.
//! Bybit sends its book snapshots in-stream, so a Bybit connection only carries WebSocket frames.

use qalpha_engine::capture::{Connection, Record, RecordKind, Transport};
use qalpha_engine::event::{MarketEvent, Venue};
use qalpha_engine::replay::{CaptureHandler, EventConsumer};
use qalpha_engine::ring::Producer;
use qalpha_engine::Symbol;

use crate::binance::BinanceFeed;
use crate::book_check::BookChecker;
use crate::bybit::BybitFeed;
use crate::stats::DecodeStats;

#[derive(Clone, Debug)]
struct ConnRoute {
    id: u16,
    venue: Option<Venue>,
    transport: Transport,
    /// For REST connections: the `symbol=` of the URL.
    symbol: Option<Symbol>,
    /// Losing it loses book updates (see [`carries_books`]).
    carries_books: bool,
}

/// Routes recorded frames to venue feeds.
#[derive(Default)]
pub struct VenueRouter {
    pub binance: BinanceFeed,
    pub bybit: BybitFeed,
    routes: Vec<ConnRoute>,
    /// Records on connections of venues this build does not decode.
    pub unrouted: u64,
    /// Connect / disconnect records seen.
    pub connects: u64,
    pub disconnects: u64,
}

/// Whether losing this connection loses book updates: a Binance URL that lists its streams carries
/// books only if one is a depth stream (a `/market` connection does not); a URL without a stream
/// list (live `SUBSCRIBE`) or any Bybit public connection may.
fn carries_books(url: &str) -> bool {
    let lists_streams = url.contains("streams=") || url.contains("/ws/");
    !lists_streams || url.contains("@depth")
}

/// `symbol=BTCUSDT` from a URL's query string.
pub fn url_symbol(url: &str) -> Option<Symbol> {
    let q = url.split_once('?')?.1;
    q.split('&')
        .find_map(|kv| kv.strip_prefix("symbol="))
        .and_then(Symbol::parse)
}

impl VenueRouter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares (or re-declares) a connection: its venue, transport and, for REST, its symbol.
    pub fn learn(&mut self, c: &Connection) {
        let r = ConnRoute {
            id: c.id,
            venue: c.venue,
            transport: c.transport,
            symbol: url_symbol(&c.url),
            carries_books: carries_books(&c.url),
        };
        match self.routes.iter_mut().find(|x| x.id == c.id) {
            Some(x) => *x = r,
            None => self.routes.push(r),
        }
    }

    /// Total decode counters over all venues.
    pub fn decode_stats(&self) -> DecodeStats {
        let mut s = DecodeStats::default();
        s.merge(&self.binance.counters().decode);
        s.merge(&self.bybit.counters().decode);
        s
    }

    /// Handles one record, writing events to `sink`.
    #[inline]
    pub fn route<S: crate::binance::feed::EventSink>(&mut self, rec: &Record<'_>, sink: &mut S) {
        let Some(route) = self.routes.iter().find(|r| r.id == rec.conn_id) else {
            self.unrouted += 1;
            return;
        };
        let (venue, transport, symbol, carries) = (
            route.venue,
            route.transport,
            route.symbol,
            route.carries_books,
        );
        match (rec.kind, venue) {
            (RecordKind::WsText | RecordKind::WsBinary, Some(Venue::BinanceUsdm)) => {
                self.binance.on_ws_frame(rec.recv_ns, rec.payload, sink)
            }
            (RecordKind::WsText | RecordKind::WsBinary, Some(Venue::BybitLinear)) => {
                self.bybit.on_ws_frame(rec.recv_ns, rec.payload, sink)
            }
            (RecordKind::RestResponse, Some(Venue::BinanceUsdm)) => match (transport, symbol) {
                (Transport::Rest, Some(sym)) => {
                    self.binance
                        .on_snapshot(rec.recv_ns, sym, rec.payload, sink)
                }
                _ => self.unrouted += 1,
            },
            (RecordKind::Connect, _) => {
                self.connects += 1;
                if let Ok((c, _)) = Connection::decode(rec.payload) {
                    self.learn(&c);
                }
            }
            (RecordKind::Disconnect, Some(Venue::BinanceUsdm)) => {
                self.disconnects += 1;
                if transport == Transport::WebSocket && carries {
                    self.binance.on_disconnect(rec.recv_ns, sink);
                }
            }
            (RecordKind::Disconnect, Some(Venue::BybitLinear)) => {
                self.disconnects += 1;
                if transport == Transport::WebSocket {
                    self.bybit.on_disconnect(rec.recv_ns, sink);
                }
            }
            (RecordKind::Disconnect, _) => self.disconnects += 1,
            _ => self.unrouted += 1,
        }
    }
}

impl CaptureHandler for VenueRouter {
    fn begin_file(&mut self, connections: &[Connection]) {
        for c in connections {
            self.learn(c);
        }
    }

    fn on_record(&mut self, rec: &Record<'_>, out: &mut Producer<MarketEvent>) {
        self.route(rec, out);
    }

    fn finish(&mut self) {
        self.binance.finish();
        self.bybit.finish();
    }
}

/// The replay consumer: counts events and, when asked, checks books against venue quotes.
#[derive(Default)]
pub struct ReplayConsumer {
    pub check_books: bool,
    pub checker: BookChecker,
    pub events: u64,
    pub book_tops: u64,
    pub quotes: u64,
    pub trades: u64,
    pub stale_events: u64,
}

impl EventConsumer for ReplayConsumer {
    #[inline]
    fn on_event(&mut self, ev: &MarketEvent) {
        use qalpha_engine::event::MarketPayload as P;
        self.events += 1;
        match ev.payload {
            P::BookTop(_) => self.book_tops += 1,
            P::Quote(_) => self.quotes += 1,
            P::Trade(_) => self.trades += 1,
            P::BookStale { .. } => self.stale_events += 1,
            _ => {}
        }
        if self.check_books {
            self.checker.on_event(ev);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbol_from_url() {
        assert_eq!(
            url_symbol("https://fapi.binance.com/fapi/v1/depth?symbol=BTCUSDT&limit=1000")
                .unwrap()
                .as_str(),
            "BTCUSDT"
        );
        assert_eq!(
            url_symbol("https://x/y?limit=5&symbol=ethusdt")
                .unwrap()
                .as_str(),
            "ETHUSDT"
        );
        assert!(url_symbol("wss://fstream.binance.com/stream?streams=a").is_none());
    }
}
