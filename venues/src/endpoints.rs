//! Trading modes, where each venue lives in each mode, and the API keys a mode needs.
//!
//! | mode | market data | orders | keys |
//! |---|---|---|---|
//! | `paper` | the live venues' public streams | never sent: filled locally by [`crate::fill`] | none |
//! | `testnet` | the venues' test networks | the test networks | testnet keys |
//! | `live` | the live venues | the live venues | live keys |
//!
//! URLs are PROTOCOLS A.1 (Binance USD-M) and C.1 (Bybit v5); config and command-line overrides win
//! over them ([`resolve`]). Keys come from `QALPHA_<VENUE>_API_KEY` / `QALPHA_<VENUE>_API_SECRET`
//! ([`keys_from_env`]).

use std::fmt;
use std::str::FromStr;

use qalpha_engine::event::Venue;

/// How orders are handled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Live market data, simulated fills; nothing is ever sent to a venue's order entry.
    #[default]
    Paper,
    /// The venues' test networks, with testnet keys.
    Testnet,
    /// Real orders with real money.
    Live,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Paper, Mode::Testnet, Mode::Live];

    /// The name used in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Paper => "paper",
            Mode::Testnet => "testnet",
            Mode::Live => "live",
        }
    }
}

/// An unknown mode name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown trading mode {0:?}: use paper, testnet or live")]
pub struct ModeError(pub String);

impl FromStr for Mode {
    type Err = ModeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| ModeError(s.to_string()))
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a mode needs API keys: testnet and live sign requests, paper sends none.
pub fn require_keys(mode: Mode) -> bool {
    mode != Mode::Paper
}

/// One venue's URLs in one mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// REST base URL (paths are added per request).
    pub rest: String,
    /// Public market data. Binance: the stream host (the route, `/public` or `/market`, and the
    /// streams are added per connection); Bybit: the linear public URL itself.
    pub public_ws: String,
    /// WebSocket order entry: Binance WS API (`ws-fapi`), Bybit Trade WS.
    pub order_ws: String,
    /// Private (user data) stream: Binance `/private` route (the listen key is added), Bybit
    /// `/v5/private`.
    pub private_ws: String,
}

/// The venue's own URLs for a mode (PROTOCOLS A.1, C.1). Paper gets the live URLs: it reads the
/// live public market data and never sends an order, so its order and private URLs are returned
/// only to keep the shape uniform — nothing connects to them in paper mode.
pub fn defaults(venue: Venue, mode: Mode) -> Endpoints {
    let testnet = mode == Mode::Testnet;
    let (rest, public_ws, order_ws, private_ws) = match (venue, testnet) {
        (Venue::BinanceUsdm, false) => (
            "https://fapi.binance.com",
            "wss://fstream.binance.com",
            "wss://ws-fapi.binance.com/ws-fapi/v1",
            "wss://fstream.binance.com/private",
        ),
        (Venue::BinanceUsdm, true) => (
            "https://demo-fapi.binance.com",
            "wss://fstream.binancefuture.com",
            "wss://testnet.binancefuture.com/ws-fapi/v1",
            "wss://fstream.binancefuture.com/private",
        ),
        (Venue::BybitLinear, false) => (
            "https://api.bybit.com",
            "wss://stream.bybit.com/v5/public/linear",
            "wss://stream.bybit.com/v5/trade",
            "wss://stream.bybit.com/v5/private",
        ),
        (Venue::BybitLinear, true) => (
            "https://api-testnet.bybit.com",
            "wss://stream-testnet.bybit.com/v5/public/linear",
            "wss://stream-testnet.bybit.com/v5/trade",
            "wss://stream-testnet.bybit.com/v5/private",
        ),
    };
    Endpoints {
        rest: rest.into(),
        public_ws: public_ws.into(),
        order_ws: order_ws.into(),
        private_ws: private_ws.into(),
    }
}

/// URLs given in the config (`rest_url`, `ws_url`, `order_ws_url`, `private_ws_url`) or on the
/// command line; each one set replaces the default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointOverrides {
    pub rest: Option<String>,
    pub public_ws: Option<String>,
    pub order_ws: Option<String>,
    pub private_ws: Option<String>,
}

/// The URLs to use: [`defaults`] with every override applied (a trailing `/` is dropped, so paths
/// join cleanly).
pub fn resolve(venue: Venue, mode: Mode, overrides: &EndpointOverrides) -> Endpoints {
    let d = defaults(venue, mode);
    let pick = |o: &Option<String>, d: String| match o {
        Some(url) if !url.trim().is_empty() => url.trim().trim_end_matches('/').to_string(),
        _ => d,
    };
    Endpoints {
        rest: pick(&overrides.rest, d.rest),
        public_ws: pick(&overrides.public_ws, d.public_ws),
        order_ws: pick(&overrides.order_ws, d.order_ws),
        private_ws: pick(&overrides.private_ws, d.private_ws),
    }
}

/// A venue API key and secret. `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeys {
    pub key: String,
    pub secret: String,
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeys")
            .field("key", &self.key)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A key that is not in the environment.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{missing} is not set: export the {venue} API key and secret as {key_var} / {secret_var} \
     (testnet and live modes need keys; paper mode does not; the mock exchange's test account is \
     qa-test-key / qa-test-secret)"
)]
pub struct KeyError {
    /// The variable that is missing or empty.
    pub missing: String,
    pub venue: &'static str,
    pub key_var: String,
    pub secret_var: String,
}

/// The environment variables holding a venue's key and secret:
/// `QALPHA_BINANCE_API_KEY` / `QALPHA_BINANCE_API_SECRET`, `QALPHA_BYBIT_…`.
pub fn key_vars(venue: Venue) -> (String, String) {
    let v = venue.name().to_ascii_uppercase();
    (
        format!("QALPHA_{v}_API_KEY"),
        format!("QALPHA_{v}_API_SECRET"),
    )
}

/// Reads a venue's key and secret from the process environment.
pub fn keys_from_env(venue: Venue) -> Result<ApiKeys, KeyError> {
    keys_from(venue, |name| std::env::var(name).ok())
}

/// Reads a venue's key and secret through `lookup` (variable name → value); an empty or
/// whitespace-only value counts as missing. [`keys_from_env`] passes the process environment.
pub fn keys_from(
    venue: Venue,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<ApiKeys, KeyError> {
    let (key_var, secret_var) = key_vars(venue);
    let get = |name: &str| {
        lookup(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| KeyError {
                missing: name.to_string(),
                venue: venue.name(),
                key_var: key_var.clone(),
                secret_var: secret_var.clone(),
            })
    };
    Ok(ApiKeys {
        key: get(&key_var)?,
        secret: get(&secret_var)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_print() {
        for m in Mode::ALL {
            assert_eq!(m.to_string().parse::<Mode>(), Ok(m));
        }
        let e = "Live".parse::<Mode>().unwrap_err();
        assert!(e.to_string().contains("use paper, testnet or live"), "{e}");
        assert_eq!(Mode::default(), Mode::Paper);
        assert!(!require_keys(Mode::Paper));
        assert!(require_keys(Mode::Testnet) && require_keys(Mode::Live));
    }

    #[test]
    fn defaults_follow_the_protocol_reference() {
        let b = defaults(Venue::BinanceUsdm, Mode::Live);
        assert_eq!(b.rest, "https://fapi.binance.com");
        assert_eq!(b.public_ws, "wss://fstream.binance.com");
        assert_eq!(b.order_ws, "wss://ws-fapi.binance.com/ws-fapi/v1");
        assert_eq!(b.private_ws, "wss://fstream.binance.com/private");
        let b = defaults(Venue::BinanceUsdm, Mode::Testnet);
        assert_eq!(b.rest, "https://demo-fapi.binance.com");
        assert_eq!(b.public_ws, "wss://fstream.binancefuture.com");
        assert_eq!(b.order_ws, "wss://testnet.binancefuture.com/ws-fapi/v1");
        assert_eq!(b.private_ws, "wss://fstream.binancefuture.com/private");
        let y = defaults(Venue::BybitLinear, Mode::Live);
        assert_eq!(y.rest, "https://api.bybit.com");
        assert_eq!(y.public_ws, "wss://stream.bybit.com/v5/public/linear");
        assert_eq!(y.order_ws, "wss://stream.bybit.com/v5/trade");
        assert_eq!(y.private_ws, "wss://stream.bybit.com/v5/private");
        let y = defaults(Venue::BybitLinear, Mode::Testnet);
        assert_eq!(y.rest, "https://api-testnet.bybit.com");
        assert_eq!(
            y.public_ws,
            "wss://stream-testnet.bybit.com/v5/public/linear"
        );
        assert_eq!(y.order_ws, "wss://stream-testnet.bybit.com/v5/trade");
        assert_eq!(y.private_ws, "wss://stream-testnet.bybit.com/v5/private");
        // Paper reads the live market.
        for v in [Venue::BinanceUsdm, Venue::BybitLinear] {
            assert_eq!(defaults(v, Mode::Paper), defaults(v, Mode::Live));
        }
    }

    #[test]
    fn overrides_win() {
        let o = EndpointOverrides {
            rest: Some("https://127.0.0.1:19443/".into()),
            order_ws: Some("wss://127.0.0.1:19443/ws-fapi/v1".into()),
            private_ws: Some("  ".into()),
            ..Default::default()
        };
        let e = resolve(Venue::BinanceUsdm, Mode::Testnet, &o);
        assert_eq!(e.rest, "https://127.0.0.1:19443");
        assert_eq!(e.order_ws, "wss://127.0.0.1:19443/ws-fapi/v1");
        assert_eq!(e.public_ws, "wss://fstream.binancefuture.com");
        assert_eq!(e.private_ws, "wss://fstream.binancefuture.com/private");
        let none = EndpointOverrides::default();
        assert_eq!(
            resolve(Venue::BybitLinear, Mode::Live, &none),
            defaults(Venue::BybitLinear, Mode::Live)
        );
    }

    #[test]
    fn keys_come_from_the_named_variables() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let k = keys_from(
            Venue::BybitLinear,
            env(&[
                ("QALPHA_BYBIT_API_KEY", "k1"),
                ("QALPHA_BYBIT_API_SECRET", "s3cr3t"),
            ]),
        )
        .unwrap();
        assert_eq!((k.key.as_str(), k.secret.as_str()), ("k1", "s3cr3t"));
        let shown = format!("{k:?}");
        assert!(shown.contains("k1") && !shown.contains("s3cr3t"), "{shown}");
        let e = keys_from(
            Venue::BinanceUsdm,
            env(&[
                ("QALPHA_BINANCE_API_KEY", "k"),
                ("QALPHA_BINANCE_API_SECRET", " "),
            ]),
        )
        .unwrap_err();
        assert_eq!(e.missing, "QALPHA_BINANCE_API_SECRET");
        assert!(
            e.to_string()
                .starts_with("QALPHA_BINANCE_API_SECRET is not set"),
            "{e}"
        );
        let e = keys_from(Venue::BinanceUsdm, env(&[])).unwrap_err();
        assert_eq!(e.missing, "QALPHA_BINANCE_API_KEY");
        // A venue's keys are never read from the other venue's variables.
        let e = keys_from(
            Venue::BinanceUsdm,
            env(&[
                ("QALPHA_BYBIT_API_KEY", "k"),
                ("QALPHA_BYBIT_API_SECRET", "s"),
            ]),
        )
        .unwrap_err();
        assert_eq!(e.missing, "QALPHA_BINANCE_API_KEY");
    }
}
