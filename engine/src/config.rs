//! Engine configuration (TOML): trading mode, feed threads, venues, symbols, streams, order entry,
//! recorder.
//!
//! ```toml
//! mode = "paper"      # paper | testnet | live (default paper: live market data, no orders sent)
//!
//! [[feed_threads]]
//! name = "feed-0"
//! core = 2            # optional: pin to this core
//! wait = "spin"       # spin | yield | park
//!
//! [[venues]]
//! venue = "binance"                       # binance | bybit
//! ws_url = "wss://fstream.binance.com"    # base URL; routes/paths are added per venue
//! rest_url = "https://fapi.binance.com"
//! symbols = ["BTCUSDT", "ETHUSDT"]
//! streams = ["depth@0ms", "bookTicker", "trade", "markPrice@1s"]
//! feed_thread = "feed-0"
//! ca_file = "/tmp/mock/ca.pem"            # optional: trust this CA instead of the webpki roots
//! order_ws_url = "wss://ws-fapi.binance.com/ws-fapi/v1"   # optional: WebSocket order entry
//! private_ws_url = "wss://fstream.binance.com/private"    # optional: private (user data) stream
//! order_via = "ws"                        # ws | rest (default ws)
//! dead_man_ms = 10000                     # optional: dead-man switch armed in live mode
//!
//! [recorder]
//! rotate_bytes = 1073741824
//!
//! [risk]              # optional: read by `qalpha_risk::RiskConfig::from_engine`
//! daily_loss_limit = "300"
//!
//! [strategy]          # optional: read by the strategy crate
//!
//! [fees]              # optional: the simulated venue's fees (backtests), read by `qalpha backtest`
//! maker_bps = "2"
//! taker_bps = "5"
//!
//! [account]           # optional: the backtest's starting equity (quote currency)
//! initial_equity = "10000"
//!
//! [alerts]            # optional: alert channels and limits, read by `qalpha_tools::alerts`
//! ```
//!
//! URLs left out fall back to the venue's own for the mode (`qalpha_venues::endpoints`, which
//! parses `mode`; the engine does not depend on the venues crate, so the mode is kept as text here
//! and checked against [`MODES`]).
//!
//! `[risk]`, `[strategy]`, `[fees]`, `[account]` and `[alerts]` are carried as raw tables and checked by the code
//! that reads them (the engine depends on none of it). [`apply_set`] and [`parse_with_overrides`] apply `--set key.path=value`
//! overrides to the document before it is read, so every key, theirs included, can be overridden
//! from the command line.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::event::Venue;
use crate::runtime::WaitMode;
use crate::transport::url::Endpoint;

/// Errors loading a config, naming the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("config {path}: {why}")]
    Invalid { path: String, why: String },
}

/// The trading modes `mode` accepts.
pub const MODES: [&str; 3] = ["paper", "testnet", "live"];

/// The order-entry channels `order_via` accepts.
pub const ORDER_VIA: [&str; 2] = ["ws", "rest"];

/// The whole file.
#[derive(Clone, Debug, Deserialize)]
#[serde(from = "ConfigFile")]
pub struct EngineConfig {
    /// `paper` (default), `testnet` or `live`.
    pub mode: String,
    pub feed_threads: Vec<FeedThreadConfig>,
    pub venues: Vec<VenueConfig>,
    /// The order-entry keys of each `[[venues]]` entry, index-aligned with `venues` (read them
    /// with [`EngineConfig::order_entry_of`], which covers venues added in code).
    pub order_entry: Vec<OrderEntryConfig>,
    pub recorder: RecorderConfig,
    /// The raw `[risk]` table (checked by `qalpha_risk::RiskConfig::from_engine`); `None` when absent.
    pub risk: Option<toml::Table>,
    /// The raw `[strategy]` table (checked by the strategy crate); `None` when absent.
    pub strategy: Option<toml::Table>,
    /// The raw `[fees]` table (`maker_bps`, `taker_bps`: the simulated venue's fees in backtests
    /// and paper runs); `None` when absent.
    pub fees: Option<toml::Table>,
    /// The raw `[account]` table (`initial_equity` of a backtest); `None` when absent.
    pub account: Option<toml::Table>,
    /// The raw `[alerts]` table (checked by `qalpha_tools::alerts`); `None` when absent.
    pub alerts: Option<toml::Table>,
    /// Where the config came from (the file, or what [`EngineConfig::parse`] was told), for the
    /// errors of the crates that read `risk` / `strategy`; empty for a config built in code.
    pub origin: String,
}

/// One feed thread.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedThreadConfig {
    pub name: String,
    pub core: Option<usize>,
    #[serde(default = "default_wait")]
    pub wait: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            mode: default_mode(),
            feed_threads: Vec::new(),
            venues: Vec::new(),
            order_entry: Vec::new(),
            recorder: RecorderConfig::default(),
            risk: None,
            strategy: None,
            fees: None,
            account: None,
            alerts: None,
            origin: String::new(),
        }
    }
}

fn default_mode() -> String {
    "paper".into()
}

fn default_wait() -> String {
    "yield".into()
}

fn default_order_via() -> String {
    "ws".into()
}

/// One venue's market data.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VenueConfig {
    pub venue: String,
    pub ws_url: Option<String>,
    pub rest_url: Option<String>,
    pub symbols: Vec<String>,
    #[serde(default)]
    pub streams: Vec<String>,
    pub feed_thread: Option<String>,
    pub ca_file: Option<PathBuf>,
    /// REST depth snapshot size (Binance: 5…1000).
    pub snapshot_limit: Option<u32>,
}

/// One venue's order entry: the order-entry keys of its `[[venues]]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderEntryConfig {
    /// WebSocket order entry (Binance WS API, Bybit Trade WS); default: the venue's for the mode.
    pub order_ws_url: Option<String>,
    /// Private (user data) stream; default: the venue's for the mode.
    pub private_ws_url: Option<String>,
    /// Order entry over `ws` (default) or `rest`.
    pub order_via: String,
    /// Dead-man switch interval armed in live mode (Binance `countdownCancelAll`, Bybit
    /// disconnection protection: whole seconds, 3 s to 300 s).
    pub dead_man_ms: Option<u64>,
}

impl Default for OrderEntryConfig {
    fn default() -> Self {
        Self {
            order_ws_url: None,
            private_ws_url: None,
            order_via: default_order_via(),
            dead_man_ms: None,
        }
    }
}

/// The file as written. A `[[venues]]` entry carries market-data and order-entry keys; they are
/// split into [`VenueConfig`] and [`OrderEntryConfig`] so code that builds a `VenueConfig` by hand
/// does not have to know about order entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default = "default_mode")]
    mode: String,
    #[serde(default)]
    feed_threads: Vec<FeedThreadConfig>,
    #[serde(default)]
    venues: Vec<VenueEntry>,
    #[serde(default)]
    recorder: RecorderConfig,
    risk: Option<toml::Table>,
    strategy: Option<toml::Table>,
    fees: Option<toml::Table>,
    account: Option<toml::Table>,
    alerts: Option<toml::Table>,
}

/// A `[[venues]]` entry as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VenueEntry {
    venue: String,
    ws_url: Option<String>,
    rest_url: Option<String>,
    symbols: Vec<String>,
    #[serde(default)]
    streams: Vec<String>,
    feed_thread: Option<String>,
    ca_file: Option<PathBuf>,
    snapshot_limit: Option<u32>,
    order_ws_url: Option<String>,
    private_ws_url: Option<String>,
    #[serde(default = "default_order_via")]
    order_via: String,
    dead_man_ms: Option<u64>,
}

impl From<ConfigFile> for EngineConfig {
    fn from(f: ConfigFile) -> Self {
        let (venues, order_entry) = f
            .venues
            .into_iter()
            .map(|v| {
                let market = VenueConfig {
                    venue: v.venue,
                    ws_url: v.ws_url,
                    rest_url: v.rest_url,
                    symbols: v.symbols,
                    streams: v.streams,
                    feed_thread: v.feed_thread,
                    ca_file: v.ca_file,
                    snapshot_limit: v.snapshot_limit,
                };
                let orders = OrderEntryConfig {
                    order_ws_url: v.order_ws_url,
                    private_ws_url: v.private_ws_url,
                    order_via: v.order_via,
                    dead_man_ms: v.dead_man_ms,
                };
                (market, orders)
            })
            .unzip();
        Self {
            mode: f.mode,
            feed_threads: f.feed_threads,
            venues,
            order_entry,
            recorder: f.recorder,
            risk: f.risk,
            strategy: f.strategy,
            fees: f.fees,
            account: f.account,
            alerts: f.alerts,
            origin: String::new(),
        }
    }
}

impl OrderEntryConfig {
    /// Checks the fields for `venue`; the error starts with the field name.
    fn validate(&self, venue: &str) -> Result<(), String> {
        for (field, url) in [
            ("order_ws_url", &self.order_ws_url),
            ("private_ws_url", &self.private_ws_url),
        ] {
            if let Some(url) = url {
                let ws = Endpoint::parse(url)
                    .is_ok_and(|_| url.starts_with("ws://") || url.starts_with("wss://"));
                if !ws {
                    return Err(format!(
                        "{field} = {url:?}: use a ws:// or wss:// URL with a host"
                    ));
                }
            }
        }
        if !ORDER_VIA.contains(&self.order_via.as_str()) {
            return Err(format!("order_via = {:?}: use ws or rest", self.order_via));
        }
        if let Some(ms) = self.dead_man_ms {
            let bybit = Venue::from_name(venue) == Some(Venue::BybitLinear);
            // Bybit's disconnection-protection window is an integer number of seconds in [3, 300].
            if bybit && (ms % 1000 != 0 || !(3_000..=300_000).contains(&ms)) {
                return Err(format!(
                    "dead_man_ms = {ms}: Bybit takes whole seconds from 3000 to 300000"
                ));
            }
            if ms == 0 {
                return Err(
                    "dead_man_ms = 0: leave dead_man_ms out to run without a dead-man switch"
                        .into(),
                );
            }
        }
        Ok(())
    }
}

/// Recorder settings.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecorderConfig {
    pub out: Option<PathBuf>,
    pub rotate_bytes: Option<u64>,
}

impl EngineConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: p.clone(),
            source,
        })?;
        Self::parse(&text, &p)
    }

    /// Parses and validates; `origin` names the source in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let cfg: EngineConfig = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: origin.to_string(),
            why: e.to_string(),
        })?;
        cfg.checked(origin)
    }

    /// [`EngineConfig::load`] with `--set key.path=value` overrides applied (see [`apply_set`]);
    /// without a file the document starts empty, so `--set` alone can describe a config.
    pub fn load_with_overrides(path: Option<&Path>, sets: &[String]) -> Result<Self, ConfigError> {
        match path {
            Some(path) => {
                let p = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: p.clone(),
                    source,
                })?;
                parse_with_overrides(&text, &p, sets)
            }
            None => parse_with_overrides("", SET_ORIGIN, sets),
        }
    }

    fn checked(mut self, origin: &str) -> Result<Self, ConfigError> {
        self.validate(origin)?;
        self.origin = origin.to_string();
        Ok(self)
    }

    fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let bad = |why: String| ConfigError::Invalid {
            path: origin.to_string(),
            why,
        };
        if !MODES.contains(&self.mode.as_str()) {
            return Err(bad(format!(
                "mode = {:?}: use paper, testnet or live",
                self.mode
            )));
        }
        for (i, t) in self.feed_threads.iter().enumerate() {
            if WaitMode::parse(&t.wait).is_none() {
                return Err(bad(format!(
                    "feed_threads[{i}].wait = {:?}: use spin, yield or park",
                    t.wait
                )));
            }
        }
        for (i, v) in self.venues.iter().enumerate() {
            if Venue::from_name(&v.venue).is_none() {
                return Err(bad(format!(
                    "venues[{i}].venue = {:?}: use binance or bybit",
                    v.venue
                )));
            }
            if v.symbols.is_empty() {
                return Err(bad(format!("venues[{i}].symbols is empty")));
            }
            if let Some(t) = &v.feed_thread {
                if !self.feed_threads.iter().any(|f| &f.name == t) {
                    return Err(bad(format!(
                        "venues[{i}].feed_thread = {t:?} names no [[feed_threads]] entry"
                    )));
                }
            }
            self.order_entry_of(i)
                .validate(&v.venue)
                .map_err(|why| bad(format!("venues[{i}].{why}")))?;
        }
        Ok(())
    }

    /// The order-entry settings of `venues[i]` (the defaults for a venue added in code).
    pub fn order_entry_of(&self, i: usize) -> OrderEntryConfig {
        self.order_entry.get(i).cloned().unwrap_or_default()
    }

    /// The wait mode of a feed thread entry (validated at load).
    pub fn wait_of(t: &FeedThreadConfig) -> WaitMode {
        WaitMode::parse(&t.wait).unwrap_or(WaitMode::Yield)
    }
}

/// The origin named in errors about a config made of `--set` overrides alone.
const SET_ORIGIN: &str = "--set";

/// Applies one `--set key.path=value` override to a parsed document.
///
/// The value is read as a TOML value (`1`, `1.5`, `"x"`, `true`, `[1, 2]`, `{ a = 1 }`), else taken
/// as a plain string (`--set mode=live`). Missing tables on the dotted path are created; a path
/// that runs through a value that is not a table (an array such as `venues`, a number) is refused.
pub fn apply_set(doc: &mut toml::Table, assignment: &str) -> Result<(), ConfigError> {
    let bad = |why: &str| ConfigError::Invalid {
        path: SET_ORIGIN.to_string(),
        why: format!("{assignment:?}: {why}"),
    };
    let (path, value) = assignment
        .split_once('=')
        .ok_or_else(|| bad("expected key.path=value"))?;
    let keys: Vec<&str> = path.trim().split('.').map(str::trim).collect();
    if keys.iter().any(|k| k.is_empty()) {
        return Err(bad(
            "empty key: write the dotted key before '=' (risk.daily_loss_limit=300)",
        ));
    }
    let value = value.trim();
    let value = value
        .parse::<toml::Value>()
        .unwrap_or_else(|_| toml::Value::String(value.to_string()));
    let (last, parents) = keys.split_last().ok_or_else(|| bad("empty key"))?;
    let mut table = doc;
    for (depth, key) in parents.iter().enumerate() {
        let slot = table
            .entry(key.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = match slot {
            toml::Value::Table(t) => t,
            other => {
                return Err(bad(&format!(
                    "{} is not a table (it holds a value of type {}), so it cannot hold {}",
                    keys[..=depth].join("."),
                    other.type_str(),
                    keys[depth + 1],
                )))
            }
        };
    }
    table.insert(last.to_string(), value);
    Ok(())
}

/// [`EngineConfig::parse`] with `--set` overrides applied to the document first (in order, so a
/// later one wins); the result is read and validated exactly as a file is.
pub fn parse_with_overrides(
    text: &str,
    origin: &str,
    sets: &[String],
) -> Result<EngineConfig, ConfigError> {
    if sets.is_empty() {
        // Straight from the text: its errors keep their line and column.
        return EngineConfig::parse(text, origin);
    }
    let bad = |why: String| ConfigError::Invalid {
        path: origin.to_string(),
        why,
    };
    let mut doc: toml::Table = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
    for set in sets {
        apply_set(&mut doc, set)?;
    }
    let cfg: EngineConfig = doc
        .try_into()
        // Without a text span, the error names the key as "... in `recorder.rotate_bytes`".
        .map_err(|e: toml::de::Error| {
            bad(format!(
                "after --set: {}",
                e.to_string().trim().replace('\n', " ")
            ))
        })?;
    cfg.checked(origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_validates() {
        let c = EngineConfig::parse(
            r#"
[[feed_threads]]
name = "feed-0"
wait = "spin"
[[venues]]
venue = "binance"
symbols = ["BTCUSDT"]
streams = ["depth@0ms", "bookTicker"]
feed_thread = "feed-0"
[[venues]]
venue = "bybit"
symbols = ["BTCUSDT"]
feed_thread = "feed-0"
"#,
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.venues.len(), 2);
        assert_eq!(EngineConfig::wait_of(&c.feed_threads[0]), WaitMode::Spin);
        let e = EngineConfig::parse(
            "[[venues]]\nvenue = \"kraken\"\nsymbols = [\"X\"]\n",
            "t.toml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("venues[0].venue"), "{e}");
        let e = EngineConfig::parse(
            "[[venues]]\nvenue = \"bybit\"\nsymbols = [\"X\"]\nfeed_thread = \"nope\"\n",
            "t.toml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("names no [[feed_threads]]"), "{e}");
        let e = EngineConfig::parse("bogus = 1\n", "t.toml").unwrap_err();
        assert!(e.to_string().contains("t.toml"));
    }

    #[test]
    fn mode_and_order_entry_fields() {
        let c = EngineConfig::parse(
            "[[venues]]\nvenue = \"bybit\"\nsymbols = [\"X\"]\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.mode, "paper");
        assert_eq!(c.order_entry_of(0), OrderEntryConfig::default());
        assert_eq!(c.order_entry_of(7).order_via, "ws");
        let c = EngineConfig::parse(
            r#"
mode = "live"
[[venues]]
venue = "binance"
symbols = ["BTCUSDT"]
order_ws_url = "wss://ws-fapi.binance.com/ws-fapi/v1"
private_ws_url = "wss://fstream.binance.com/private"
order_via = "rest"
dead_man_ms = 1500
"#,
            "t.toml",
        )
        .unwrap();
        let v = c.order_entry_of(0);
        assert_eq!(
            (c.mode.as_str(), v.order_via.as_str(), v.dead_man_ms),
            ("live", "rest", Some(1500))
        );
        let venue = "[[venues]]\nsymbols = [\"X\"]\n";
        for (text, field) in [
            (
                format!("mode = \"real\"\n{venue}venue = \"bybit\"\n"),
                "mode = \"real\"",
            ),
            (
                format!("{venue}venue = \"bybit\"\norder_via = \"fix\"\n"),
                "venues[0].order_via",
            ),
            (
                format!("{venue}venue = \"bybit\"\norder_ws_url = \"https://x\"\n"),
                "venues[0].order_ws_url",
            ),
            (
                format!("{venue}venue = \"bybit\"\nprivate_ws_url = \"wss://\"\n"),
                "venues[0].private_ws_url",
            ),
            (
                format!("{venue}venue = \"bybit\"\ndead_man_ms = 1500\n"),
                "venues[0].dead_man_ms",
            ),
            (
                format!("{venue}venue = \"binance\"\ndead_man_ms = 0\n"),
                "venues[0].dead_man_ms",
            ),
        ] {
            let e = EngineConfig::parse(&text, "t.toml")
                .unwrap_err()
                .to_string();
            assert!(e.contains(field), "{e}");
        }
        assert!(EngineConfig::parse(
            "[[venues]]\nvenue = \"bybit\"\nsymbols = [\"X\"]\ndead_man_ms = 10000\n",
            "t.toml"
        )
        .is_ok());
    }
}

#[cfg(test)]
mod overrides {
    use super::*;

    fn sets(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn set_values_are_toml_else_strings_and_paths_create_tables() {
        let mut doc = toml::Table::new();
        for a in [
            "a.int=1",
            "a.float = 1.5",
            "a.quoted=\"x y\"",
            "a.flag=true",
            "a.list=[1,2]",
            "a.plain=BTCUSDT",
            "a.b.c.d=0.1",
        ] {
            apply_set(&mut doc, a).unwrap();
        }
        let a = doc["a"].as_table().unwrap();
        assert_eq!(a["int"].as_integer(), Some(1));
        assert_eq!(a["float"].as_float(), Some(1.5));
        assert_eq!(a["quoted"].as_str(), Some("x y"));
        assert_eq!(a["flag"].as_bool(), Some(true));
        assert_eq!(a["list"].as_array().map(Vec::len), Some(2));
        assert_eq!(a["plain"].as_str(), Some("BTCUSDT"));
        assert_eq!(a["b"]["c"]["d"].as_float(), Some(0.1));
        for (bad, says) in [
            ("novalue", "key.path=value"),
            ("=1", "empty key"),
            ("a..b=1", "empty key"),
            ("a.int.x=1", "a.int is not a table"),
        ] {
            let e = apply_set(&mut doc, bad).unwrap_err().to_string();
            assert!(e.contains(says) && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn overrides_apply_before_validation() {
        let text = "[[venues]]\nvenue = \"bybit\"\nsymbols = [\"X\"]\n[risk]\nmax_leverage = 5\n";
        let c = parse_with_overrides(
            text,
            "t.toml",
            &sets(&["mode=testnet", "risk.max_leverage=3", "strategy.k=1"]),
        )
        .unwrap();
        assert_eq!((c.mode.as_str(), c.origin.as_str()), ("testnet", "t.toml"));
        assert_eq!(c.risk.unwrap()["max_leverage"].as_integer(), Some(3));
        assert_eq!(c.strategy.unwrap()["k"].as_integer(), Some(1));
        let e = parse_with_overrides(text, "t.toml", &sets(&["mode=real"])).unwrap_err();
        assert!(e.to_string().contains("mode = \"real\""), "{e}");
        let e = parse_with_overrides(text, "t.toml", &sets(&["bogus=1"])).unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        let e =
            parse_with_overrides(text, "t.toml", &sets(&["recorder.rotate_bytes=x"])).unwrap_err();
        assert!(e.to_string().contains("recorder.rotate_bytes"), "{e}");
        let c =
            EngineConfig::load_with_overrides(None, &sets(&["risk.daily_loss_limit=1"])).unwrap();
        assert!(c.venues.is_empty() && c.risk.is_some() && c.strategy.is_none());
        let plain = EngineConfig::parse(text, "t.toml").unwrap();
        assert_eq!(plain.risk.unwrap()["max_leverage"].as_integer(), Some(5));
    }
}

#[cfg(test)]
mod shipped_configs {
    use super::*;

    #[test]
    fn every_config_in_configs_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                let c = EngineConfig::load(&p).unwrap_or_else(|e| panic!("{e}"));
                assert!(!c.venues.is_empty(), "{}", p.display());
                n += 1;
            }
        }
        assert!(n >= 2);
    }
}
