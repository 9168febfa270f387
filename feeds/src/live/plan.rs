//! From a venue's configuration to the connections that serve it (PROTOCOLS §A.1, §C.1–C.3).
//!
//! Binance USD-M: one combined-stream connection per route — `/public` for depth and bookTicker (and
//! `@trade`, which hftbacktest receives beside depth), `/market` for aggTrade, markPrice, kline and
//! forceOrder — plus a REST depth-snapshot URL per symbol. Bybit v5: one `/v5/public/linear`
//! connection with a `subscribe` message and an app-level ping every 20 s.

use qalpha_engine::capture::{Connection, Transport};
use qalpha_engine::config::VenueConfig;
use qalpha_engine::event::Venue;
use qalpha_engine::Symbol;

/// One WebSocket connection to open and keep open.
#[derive(Clone, Debug)]
pub struct ConnPlan {
    pub venue: Venue,
    pub url: String,
    /// Text messages to send after the handshake (Bybit subscribe).
    pub subscribe: Vec<String>,
    /// App-level ping to send periodically (Bybit), if any.
    pub app_ping: Option<String>,
    /// Symbols whose books this connection's frames maintain.
    pub book_symbols: Vec<Symbol>,
}

/// A venue's connections and REST snapshot URLs.
#[derive(Clone, Debug)]
pub struct VenuePlan {
    pub venue: Venue,
    pub conns: Vec<ConnPlan>,
    /// (symbol, REST depth snapshot URL) — Binance only.
    pub snapshots: Vec<(Symbol, String)>,
    pub ca_file: Option<std::path::PathBuf>,
}

impl VenuePlan {
    /// The connection-table entries (WebSocket ids from `first_id`, REST ids after them).
    pub fn connections(&self, first_id: u16) -> Vec<Connection> {
        let mut out: Vec<Connection> = self
            .conns
            .iter()
            .enumerate()
            .map(|(i, c)| Connection {
                id: first_id + i as u16,
                venue: Some(self.venue),
                transport: Transport::WebSocket,
                url: c.url.clone(),
            })
            .collect();
        let base = first_id + self.conns.len() as u16;
        out.extend(
            self.snapshots
                .iter()
                .enumerate()
                .map(|(i, (_, url))| Connection {
                    id: base + i as u16,
                    venue: Some(self.venue),
                    transport: Transport::Rest,
                    url: url.clone(),
                }),
        );
        out
    }
}

/// Binance route of a stream suffix (`depth@0ms`, `bookTicker`, `aggTrade`, …).
pub fn binance_route(stream: &str) -> &'static str {
    let s = stream.to_ascii_lowercase();
    if s.starts_with("depth") || s == "bookticker" || s == "trade" {
        "public"
    } else {
        "market"
    }
}

fn trim_base(url: &str) -> &str {
    url.trim_end_matches('/')
}

/// Builds the plan for one configured venue.
pub fn plan_venue(v: &VenueConfig) -> Result<VenuePlan, String> {
    let venue = Venue::from_name(&v.venue).ok_or_else(|| format!("unknown venue {:?}", v.venue))?;
    let symbols: Vec<Symbol> = v
        .symbols
        .iter()
        .map(|s| Symbol::parse(s).ok_or_else(|| format!("invalid symbol {s:?}")))
        .collect::<Result<_, _>>()?;
    match venue {
        Venue::BinanceUsdm => {
            let ws = trim_base(v.ws_url.as_deref().unwrap_or("wss://fstream.binance.com"));
            let rest = trim_base(v.rest_url.as_deref().unwrap_or("https://fapi.binance.com"));
            let streams: Vec<String> = if v.streams.is_empty() {
                vec!["depth@0ms".into(), "bookTicker".into(), "trade".into()]
            } else {
                v.streams.clone()
            };
            let mut conns = Vec::new();
            for route in ["public", "market"] {
                let names: Vec<String> = symbols
                    .iter()
                    .flat_map(|s| {
                        let lower = s.as_str().to_ascii_lowercase();
                        streams
                            .iter()
                            .filter(|st| binance_route(st) == route)
                            .map(move |st| format!("{lower}@{st}"))
                    })
                    .collect();
                if names.is_empty() {
                    continue;
                }
                let carries = names.iter().any(|n| n.contains("@depth"));
                conns.push(ConnPlan {
                    venue,
                    url: format!("{ws}/{route}/stream?streams={}", names.join("/")),
                    subscribe: Vec::new(),
                    app_ping: None,
                    book_symbols: if carries { symbols.clone() } else { Vec::new() },
                });
            }
            let limit = v.snapshot_limit.unwrap_or(1000);
            let has_depth = streams.iter().any(|s| {
                s.starts_with("depth") && !s[5..].starts_with(|c: char| c.is_ascii_digit())
            });
            let snapshots = if has_depth {
                symbols
                    .iter()
                    .map(|s| {
                        (
                            *s,
                            format!("{rest}/fapi/v1/depth?symbol={}&limit={limit}", s.as_str()),
                        )
                    })
                    .collect()
            } else {
                Vec::new()
            };
            Ok(VenuePlan {
                venue,
                conns,
                snapshots,
                ca_file: v.ca_file.clone(),
            })
        }
        Venue::BybitLinear => {
            let ws = trim_base(v.ws_url.as_deref().unwrap_or("wss://stream.bybit.com"));
            let streams: Vec<String> = if v.streams.is_empty() {
                vec![
                    "orderbook.50".into(),
                    "orderbook.1".into(),
                    "publicTrade".into(),
                    "tickers".into(),
                ]
            } else {
                v.streams.clone()
            };
            let topics: Vec<String> = symbols
                .iter()
                .flat_map(|s| {
                    streams
                        .iter()
                        .map(move |st| format!("\"{st}.{}\"", s.as_str()))
                })
                .collect();
            let subscribe = format!(
                "{{\"op\":\"subscribe\",\"args\":[{}],\"req_id\":\"qa-sub\"}}",
                topics.join(",")
            );
            Ok(VenuePlan {
                venue,
                conns: vec![ConnPlan {
                    venue,
                    url: format!("{ws}/v5/public/linear"),
                    subscribe: vec![subscribe],
                    app_ping: Some("{\"op\":\"ping\",\"req_id\":\"qa-ping\"}".into()),
                    book_symbols: symbols.clone(),
                }],
                snapshots: Vec::new(),
                ca_file: v.ca_file.clone(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(venue: &str, streams: &[&str]) -> VenueConfig {
        VenueConfig {
            venue: venue.into(),
            ws_url: Some("wss://127.0.0.1:9443/".into()),
            rest_url: Some("https://127.0.0.1:9443".into()),
            symbols: vec!["BTCUSDT".into(), "ETHUSDT".into()],
            streams: streams.iter().map(|s| s.to_string()).collect(),
            feed_thread: None,
            ca_file: None,
            snapshot_limit: None,
        }
    }

    #[test]
    fn binance_routes_split_streams() {
        let p = plan_venue(&cfg(
            "binance",
            &["depth@0ms", "bookTicker", "aggTrade", "markPrice@1s"],
        ))
        .unwrap();
        assert_eq!(p.conns.len(), 2);
        assert_eq!(
            p.conns[0].url,
            "wss://127.0.0.1:9443/public/stream?streams=btcusdt@depth@0ms/btcusdt@bookTicker/ethusdt@depth@0ms/ethusdt@bookTicker"
        );
        assert!(p.conns[1]
            .url
            .starts_with("wss://127.0.0.1:9443/market/stream?streams=btcusdt@aggTrade"));
        assert_eq!(p.conns[0].book_symbols.len(), 2);
        assert!(p.conns[1].book_symbols.is_empty());
        assert_eq!(
            p.snapshots[1].1,
            "https://127.0.0.1:9443/fapi/v1/depth?symbol=ETHUSDT&limit=1000"
        );
        let c = p.connections(0);
        assert_eq!((c.len(), c[2].transport, c[3].id), (4, Transport::Rest, 3));
    }

    #[test]
    fn bybit_subscribes_topics() {
        let p = plan_venue(&cfg("bybit", &[])).unwrap();
        assert_eq!(p.conns[0].url, "wss://127.0.0.1:9443/v5/public/linear");
        assert!(p.conns[0].subscribe[0].contains("\"orderbook.50.BTCUSDT\""));
        assert!(p.conns[0].subscribe[0].contains("\"tickers.ETHUSDT\""));
        assert!(p.snapshots.is_empty());
    }
}
