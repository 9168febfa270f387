//! A gateway configuration from the engine's TOML config: the mode's endpoints with the entry's
//! overrides, the mode's keys, `order_via`, the symbols, and the dead-man switch (live mode only).

use qalpha_engine::config::EngineConfig;
use qalpha_engine::{Symbol, Venue};

use super::{GatewayConfig, Via};
use crate::endpoints::{keys_from, resolve, EndpointOverrides, Mode};
use crate::sign::Signer;

impl GatewayConfig {
    /// The gateway for `[[venues]]` entry `i` of `cfg`. `Ok(None)` in paper mode (orders are filled
    /// locally and never sent, so no keys are needed). `lookup` reads the keys' environment
    /// variables (`QALPHA_<VENUE>_API_KEY` / `_SECRET`; pass `|k| std::env::var(k).ok()`).
    pub fn from_engine_config(
        cfg: &EngineConfig,
        i: usize,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, String> {
        let mode: Mode = cfg.mode.parse().map_err(|e| format!("mode: {e}"))?;
        let v = cfg
            .venues
            .get(i)
            .ok_or_else(|| format!("venues[{i}]: no such entry"))?;
        let venue = Venue::from_name(&v.venue)
            .ok_or_else(|| format!("venues[{i}].venue: unknown venue {:?}", v.venue))?;
        if mode == Mode::Paper {
            return Ok(None);
        }
        let oe = cfg.order_entry_of(i);
        let ep = resolve(
            venue,
            mode,
            &EndpointOverrides {
                rest: v.rest_url.clone(),
                public_ws: v.ws_url.clone(),
                order_ws: oe.order_ws_url.clone(),
                private_ws: oe.private_ws_url.clone(),
            },
        );
        let keys = keys_from(venue, lookup).map_err(|e| e.to_string())?;
        let mut g = GatewayConfig::new(venue, &ep.rest, Signer::new(keys.key, keys.secret));
        g.order_ws_url = Some(ep.order_ws);
        g.private_ws_url = Some(ep.private_ws);
        g.ca_file = v.ca_file.clone();
        g.via = match oe.order_via.as_str() {
            "rest" => Via::Rest,
            _ => Via::Ws,
        };
        g.symbols = v
            .symbols
            .iter()
            .map(|s| {
                Symbol::parse(&s.to_ascii_uppercase())
                    .ok_or_else(|| format!("venues[{i}].symbols: invalid symbol {s:?}"))
            })
            .collect::<Result<_, _>>()?;
        // The dead-man switch protects real money; on a test network it would only surprise.
        g.dead_man_ms = if mode == Mode::Live {
            oe.dead_man_ms
        } else {
            None
        };
        Ok(Some(g))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = r#"
mode = "live"
[[venues]]
venue = "bybit"
symbols = ["btcusdt"]
order_via = "rest"
dead_man_ms = 10000
private_ws_url = "wss://127.0.0.1:9/v5/private"
"#;

    fn keys(k: &str) -> Option<String> {
        Some(format!("value-of-{k}"))
    }

    #[test]
    fn live_entry_resolves_endpoints_keys_and_the_dead_man_switch() {
        let cfg = EngineConfig::parse(CFG, "test").unwrap();
        let g = GatewayConfig::from_engine_config(&cfg, 0, keys)
            .unwrap()
            .unwrap();
        assert_eq!(g.venue, Venue::BybitLinear);
        assert_eq!(g.rest_url, "https://api.bybit.com");
        assert_eq!(
            g.order_ws_url.as_deref(),
            Some("wss://stream.bybit.com/v5/trade")
        );
        assert_eq!(
            g.private_ws_url.as_deref(),
            Some("wss://127.0.0.1:9/v5/private")
        );
        assert_eq!(g.signer.api_key(), "value-of-QALPHA_BYBIT_API_KEY");
        assert_eq!(g.via, Via::Rest);
        assert_eq!(g.symbols, vec![Symbol::parse("BTCUSDT").unwrap()]);
        assert_eq!(g.dead_man_ms, Some(10_000));
    }

    #[test]
    fn testnet_never_arms_the_dead_man_switch_and_paper_needs_no_gateway() {
        let cfg = EngineConfig::parse(&CFG.replace("\"live\"", "\"testnet\""), "t").unwrap();
        let g = GatewayConfig::from_engine_config(&cfg, 0, keys)
            .unwrap()
            .unwrap();
        assert_eq!(g.rest_url, "https://api-testnet.bybit.com");
        assert_eq!(g.dead_man_ms, None);
        let cfg = EngineConfig::parse(&CFG.replace("\"live\"", "\"paper\""), "p").unwrap();
        assert!(GatewayConfig::from_engine_config(&cfg, 0, |_| None)
            .unwrap()
            .is_none());
    }

    #[test]
    fn missing_keys_name_the_variable() {
        let cfg = EngineConfig::parse(CFG, "test").unwrap();
        let e = GatewayConfig::from_engine_config(&cfg, 0, |_| None).unwrap_err();
        assert!(e.contains("QALPHA_BYBIT_API_KEY"), "{e}");
    }
}
