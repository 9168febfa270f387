//! Engine configuration (TOML): feed threads, venues, symbols, streams, recorder.
//!
//! ```toml
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
//!
//! [recorder]
//! rotate_bytes = 1073741824
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::event::Venue;
use crate::runtime::WaitMode;

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

/// The whole file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    #[serde(default)]
    pub feed_threads: Vec<FeedThreadConfig>,
    #[serde(default)]
    pub venues: Vec<VenueConfig>,
    #[serde(default)]
    pub recorder: RecorderConfig,
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

fn default_wait() -> String {
    "yield".into()
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
        cfg.validate(origin)?;
        Ok(cfg)
    }

    fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let bad = |why: String| ConfigError::Invalid {
            path: origin.to_string(),
            why,
        };
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
        }
        Ok(())
    }

    /// The wait mode of a feed thread entry (validated at load).
    pub fn wait_of(t: &FeedThreadConfig) -> WaitMode {
        WaitMode::parse(&t.wait).unwrap_or(WaitMode::Yield)
    }
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
