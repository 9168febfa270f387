//! The `[risk]` section read from engine configs: defaults, exact decimals, per-symbol limits, every
//! validation rule, unknown keys, and `--set` overrides through the engine's config loader.

use qalpha_engine::config::{parse_with_overrides, EngineConfig};
use qalpha_engine::Qty;
use qalpha_risk::config::{RiskConfigError, SymbolLimits};
use qalpha_risk::RiskConfig;

fn q(s: &str) -> Qty {
    Qty::parse(s).unwrap()
}

fn risk_of(text: &str) -> Result<RiskConfig, RiskConfigError> {
    let cfg = EngineConfig::parse(text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    RiskConfig::from_engine(&cfg)
}

/// The error for `[risk]` holding only `line`.
fn refused(line: &str) -> String {
    match risk_of(&format!("[risk]\n{line}\n")) {
        Ok(c) => panic!("{line} accepted: {c:?}"),
        Err(e) => e.to_string(),
    }
}

fn sets(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| x.to_string()).collect()
}

#[test]
fn absent_section_gives_the_defaults() {
    let c = risk_of("mode = \"paper\"\n").unwrap();
    assert_eq!(c, RiskConfig::default());
    assert_eq!(c.max_leverage, q("10"));
    assert_eq!(c.risk_per_trade_pct, q("1"));
    RiskConfig::default().validate("defaults").unwrap();
    // An empty section is the defaults as well.
    assert_eq!(risk_of("[risk]\n").unwrap(), RiskConfig::default());
}

#[test]
fn full_section_is_read_exactly() {
    let c = risk_of(
        r#"
[risk]
initial_equity = 25000
max_leverage = "3.5"
max_position_qty = 0.25
max_position_notional = "120000.12345678"
risk_per_trade_pct = 0.1
volatility_proxy_bps = 35
max_order_notional = 40000.5
price_band_bps = "80"
max_open_orders = 12
max_orders_per_s = 7
daily_loss_limit = 1.5
max_consecutive_losses = 4
vol_window_s = 120
vol_spike_bps = 250.75
vol_cut_factor = "0.1"
api_errors_per_min = 9
model_disagreement_max = 0.35
conservative_size_factor = 0.3
"#,
    )
    .unwrap();
    let expected = RiskConfig {
        initial_equity: Qty::from_units(25_000),
        max_leverage: q("3.5"),
        max_position_qty: q("0.25"),
        max_position_notional: q("120000.12345678"),
        symbols: Default::default(),
        risk_per_trade_pct: q("0.1"),
        volatility_proxy_bps: q("35"),
        max_order_notional: q("40000.5"),
        price_band_bps: q("80"),
        max_open_orders: 12,
        max_orders_per_s: 7,
        daily_loss_limit: q("1.5"),
        max_consecutive_losses: 4,
        vol_window_s: 120,
        vol_spike_bps: q("250.75"),
        vol_cut_factor: q("0.1"),
        api_errors_per_min: 9,
        model_disagreement_max: 0.35,
        conservative_size_factor: q("0.3"),
    };
    assert_eq!(c, expected);
    // Exact to the last unit: 0.1 and 0.3 as floats do not drift.
    assert_eq!(c.risk_per_trade_pct.raw(), 10_000_000);
    assert_eq!(c.conservative_size_factor.raw(), 30_000_000);
    assert_eq!(c.daily_loss_limit.raw(), 150_000_000);
}

#[test]
fn per_symbol_limits_override_the_defaults() {
    let c = risk_of(
        r#"
[risk]
max_position_qty = 2
[risk.symbols.BTCUSDT]
max_position_qty = 0.5
max_position_notional = "30000"
[risk.symbols.ETHUSDT]
max_position_notional = 20000
"#,
    )
    .unwrap();
    assert_eq!(
        c.symbols["BTCUSDT"],
        SymbolLimits {
            max_position_qty: Some(q("0.5")),
            max_position_notional: Some(q("30000")),
        }
    );
    assert_eq!(c.limits_for("BTCUSDT"), (q("0.5"), q("30000")));
    assert_eq!(c.limits_for("ETHUSDT"), (q("2"), q("20000")));
    assert_eq!(c.limits_for("SOLUSDT"), (q("2"), q("100000")));
}

#[test]
fn to_toml_writes_exact_decimals_and_reads_back() {
    let c = risk_of(
        "[risk]\ndaily_loss_limit = 0.1\n[risk.symbols.BTCUSDT]\nmax_position_qty = \"0.00000001\"\n",
    )
    .unwrap();
    let t = c.to_toml();
    assert_eq!(t["daily_loss_limit"].as_str(), Some("0.1"));
    assert_eq!(t["max_open_orders"].as_integer(), Some(50));
    assert_eq!(
        t["symbols"]["BTCUSDT"]["max_position_qty"].as_str(),
        Some("0.00000001")
    );
    assert!(t["symbols"]["BTCUSDT"]
        .get("max_position_notional")
        .is_none());
    assert_eq!(RiskConfig::from_table(&t, "report").unwrap(), c);
    assert_eq!(
        RiskConfig::from_table(&RiskConfig::default().to_toml(), "report").unwrap(),
        RiskConfig::default()
    );
}

#[test]
fn every_rule_is_refused_naming_key_and_rule() {
    for (line, key, rule) in [
        (
            "risk_per_trade_pct = 0",
            "risk.risk_per_trade_pct",
            "(0, 2]",
        ),
        (
            "risk_per_trade_pct = 2.5",
            "risk.risk_per_trade_pct",
            "(0, 2]",
        ),
        ("max_leverage = 0", "risk.max_leverage", "(0, 125]"),
        ("max_leverage = 200", "risk.max_leverage", "(0, 125]"),
        ("vol_cut_factor = 0", "risk.vol_cut_factor", "(0, 1]"),
        ("vol_cut_factor = 1.01", "risk.vol_cut_factor", "(0, 1]"),
        (
            "conservative_size_factor = 0",
            "risk.conservative_size_factor",
            "(0, 1]",
        ),
        (
            "conservative_size_factor = 2",
            "risk.conservative_size_factor",
            "(0, 1]",
        ),
        ("initial_equity = 0", "risk.initial_equity", "> 0"),
        ("daily_loss_limit = 0", "risk.daily_loss_limit", "> 0"),
        (
            "max_order_notional = \"0\"",
            "risk.max_order_notional",
            "> 0",
        ),
        ("max_position_qty = 0.0", "risk.max_position_qty", "> 0"),
        (
            "max_position_notional = 0",
            "risk.max_position_notional",
            "> 0",
        ),
        ("price_band_bps = 0", "risk.price_band_bps", "> 0"),
        ("vol_spike_bps = 0", "risk.vol_spike_bps", "> 0"),
        (
            "volatility_proxy_bps = 0",
            "risk.volatility_proxy_bps",
            "> 0",
        ),
        ("vol_window_s = 1", "risk.vol_window_s", "at least 2"),
        (
            "max_orders_per_s = 0",
            "risk.max_orders_per_s",
            "at least 1",
        ),
        ("max_open_orders = 0", "risk.max_open_orders", "at least 1"),
        (
            "max_consecutive_losses = 0",
            "risk.max_consecutive_losses",
            "at least 1",
        ),
        (
            "api_errors_per_min = 0",
            "risk.api_errors_per_min",
            "at least 1",
        ),
        (
            "model_disagreement_max = 1.5",
            "risk.model_disagreement_max",
            "[0, 1]",
        ),
        (
            "model_disagreement_max = -0.1",
            "risk.model_disagreement_max",
            "[0, 1]",
        ),
        (
            "symbols.BTCUSDT.max_position_qty = 0",
            "risk.symbols.BTCUSDT.max_position_qty",
            "> 0",
        ),
        (
            "symbols.BTCUSDT.max_position_notional = \"0\"",
            "risk.symbols.BTCUSDT.max_position_notional",
            "> 0",
        ),
    ] {
        let e = refused(line);
        assert!(
            e.contains(&format!("{key}:")) && e.contains(rule),
            "{line}: {e}"
        );
    }
    assert_eq!(
        refused("max_leverage = 200"),
        "config t.toml: risk.max_leverage: must be in (0, 125], got 200"
    );
}

#[test]
fn values_that_cannot_be_read_exactly_are_refused() {
    for (line, key, why) in [
        ("daily_loss_limit = -5", "risk.daily_loss_limit", "negative"),
        (
            "daily_loss_limit = \"-0.5\"",
            "risk.daily_loss_limit",
            "negative",
        ),
        ("daily_loss_limit = nan", "risk.daily_loss_limit", "finite"),
        ("daily_loss_limit = inf", "risk.daily_loss_limit", "finite"),
        (
            "max_position_qty = \"0.000000001\"",
            "risk.max_position_qty",
            "more than 8 decimals",
        ),
        (
            "max_position_qty = 0.000000001",
            "risk.max_position_qty",
            "more than 8 decimals",
        ),
        (
            "max_leverage = \"ten\"",
            "risk.max_leverage",
            "plain decimal",
        ),
        (
            "max_leverage = \"1e2\"",
            "risk.max_leverage",
            "plain decimal",
        ),
        ("max_leverage = true", "risk.max_leverage", "got boolean"),
        (
            "max_open_orders = -1",
            "risk.max_open_orders",
            "whole number",
        ),
        (
            "max_open_orders = 2.5",
            "risk.max_open_orders",
            "whole number",
        ),
        (
            "max_open_orders = \"5\"",
            "risk.max_open_orders",
            "whole number",
        ),
        (
            "model_disagreement_max = nan",
            "risk.model_disagreement_max",
            "nan",
        ),
        (
            "model_disagreement_max = \"0.5\"",
            "risk.model_disagreement_max",
            "expected a number",
        ),
        ("symbols = 1", "risk.symbols", "table"),
        ("symbols.BTCUSDT = 1", "risk.symbols.BTCUSDT", "table"),
    ] {
        let e = refused(line);
        assert!(
            e.contains(&format!("{key}:")) && e.contains(why),
            "{line}: {e}"
        );
    }
}

#[test]
fn unknown_keys_are_refused_with_the_known_ones() {
    let e = refused("max_levrage = 5");
    assert!(e.contains("risk.max_levrage: unknown key"), "{e}");
    assert!(
        e.contains("max_leverage") && e.contains("conservative_size_factor"),
        "{e}"
    );
    let e = refused("symbols.BTCUSDT.max_qty = 1");
    assert!(
        e.contains("risk.symbols.BTCUSDT.max_qty: unknown key") && e.contains("max_position_qty"),
        "{e}"
    );
    assert_eq!(RiskConfig::keys().len(), 19);
}

#[test]
fn set_overrides_reach_the_risk_config() {
    let text = "[risk]\ndaily_loss_limit = 300\nmax_leverage = 5\n";
    let cfg = parse_with_overrides(
        text,
        "t.toml",
        &sets(&[
            "risk.daily_loss_limit=1",
            "risk.symbols.BTCUSDT.max_position_qty=0.5",
        ]),
    )
    .unwrap();
    let c = RiskConfig::from_engine(&cfg).unwrap();
    assert_eq!(c.daily_loss_limit, Qty::from_units(1));
    assert_eq!(c.max_leverage, q("5"));
    assert_eq!(c.symbols["BTCUSDT"].max_position_qty, Some(q("0.5")));
    assert_eq!(c.limits_for("BTCUSDT").0, q("0.5"));

    // Without a file, `--set` alone makes the section.
    let cfg =
        EngineConfig::load_with_overrides(None, &sets(&["risk.vol_cut_factor=\"0.25\""])).unwrap();
    assert_eq!(
        RiskConfig::from_engine(&cfg).unwrap().vol_cut_factor,
        q("0.25")
    );

    // The engine carries `[risk]` raw; the risk crate refuses the unknown key.
    let cfg = parse_with_overrides(text, "t.toml", &sets(&["risk.daily_loss=1"])).unwrap();
    let e = RiskConfig::from_engine(&cfg).unwrap_err();
    assert_eq!(
        (e.origin.as_str(), e.key.as_str()),
        ("t.toml", "risk.daily_loss")
    );
    assert!(e.why.contains("unknown key"), "{e}");
    let cfg = parse_with_overrides(text, "t.toml", &sets(&["risk.max_leverage=500"])).unwrap();
    let e = RiskConfig::from_engine(&cfg).unwrap_err().to_string();
    assert_eq!(
        e,
        "config t.toml: risk.max_leverage: must be in (0, 125], got 500"
    );
}

#[test]
fn shipped_configs_have_valid_risk_sections() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let cfg = EngineConfig::load(&p).unwrap_or_else(|e| panic!("{e}"));
            RiskConfig::from_engine(&cfg).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}
