//! The `[risk]` section: every limit, with its unit in the key name or in its doc line.
//!
//! Quote-currency amounts (USDT for both venues' linear contracts) and base quantities are exact
//! decimals (`Qty`, 10⁻⁸); percentages and basis points are exact decimals too, so money derived from
//! them never rounds through a float. Only the model-disagreement threshold (models are floats) is an
//! `f64`.
//!
//! Read from the engine config's raw `[risk]` table ([`RiskConfig::from_engine`]) — the engine does
//! not depend on this crate. Every key is the field's name (`max_leverage`,
//! `symbols.BTCUSDT.max_position_qty`); a key left out keeps its default. Amounts, quantities, pct,
//! bps and factors take a TOML integer, float or decimal string and are read exactly: a float goes
//! through its shortest decimal (`1.5` → `"1.5"`), and more than eight decimals is refused rather
//! than rounded. Counts take non-negative TOML integers. Cold path: read once at start.

use std::collections::BTreeMap;

use qalpha_engine::config::EngineConfig;
use qalpha_engine::decimal::DecimalError;
use qalpha_engine::Qty;

/// A `[risk]` key that could not be read or broke its rule.
///
/// Displays as `config FILE: risk.max_leverage: must be in (0, 125], got 200`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("config {origin}: {key}: {why}")]
pub struct RiskConfigError {
    /// The config file (or whatever the caller named the source).
    pub origin: String,
    /// The full dotted key, `risk.` included.
    pub key: String,
    /// What is wrong and what the key accepts.
    pub why: String,
}

/// One symbol's own position limits (override the defaults).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymbolLimits {
    /// Largest |position|, base units.
    pub max_position_qty: Option<Qty>,
    /// Largest |position| × price, quote currency.
    pub max_position_notional: Option<Qty>,
}

/// Every risk limit. Defaults are the product's (DESIGN; issue 5).
#[derive(Clone, Debug, PartialEq)]
pub struct RiskConfig {
    /// Account equity before any PnL, quote currency (used until the venue reports balances).
    pub initial_equity: Qty,
    /// Largest gross notional ÷ equity (×). Default 10.
    pub max_leverage: Qty,
    /// Largest |position| per symbol, base units (default for symbols without their own).
    pub max_position_qty: Qty,
    /// Largest |position| × price per symbol, quote currency.
    pub max_position_notional: Qty,
    /// Per-symbol overrides (`[risk.symbols.BTCUSDT]`).
    pub symbols: BTreeMap<String, SymbolLimits>,
    /// Largest loss at the stop per order, % of equity. Default 1, at most 2.
    pub risk_per_trade_pct: Qty,
    /// The stop distance assumed when an order gives none, basis points of its price.
    pub volatility_proxy_bps: Qty,
    /// Largest price × qty of one order, quote currency.
    pub max_order_notional: Qty,
    /// Largest distance of a limit price from the mark (or best price), basis points.
    pub price_band_bps: Qty,
    /// Largest number of open orders (all symbols).
    pub max_open_orders: u32,
    /// Largest number of new orders per second.
    pub max_orders_per_s: u32,
    /// Today's (UTC) loss that halts trading, quote currency (realized + fees + funding +
    /// unrealized change since the day began).
    pub daily_loss_limit: Qty,
    /// Losing trades in a row that halt trading.
    pub max_consecutive_losses: u32,
    /// Realized-volatility window, seconds.
    pub vol_window_s: u32,
    /// Realized volatility over the window (stdev of 1 s log-returns × √window, bps) that starts
    /// reducing.
    pub vol_spike_bps: Qty,
    /// Fraction of each position kept when a volatility spike starts reducing (0.5 = cut by half).
    pub vol_cut_factor: Qty,
    /// Rejects + timeouts per minute that halt trading.
    pub api_errors_per_min: u32,
    /// Largest disagreement between the Trinity's outputs (0…1) before conservative mode.
    pub model_disagreement_max: f64,
    /// Size multiplier in conservative mode (0…1).
    pub conservative_size_factor: Qty,
}

fn q(s: &str) -> Qty {
    Qty::parse(s).unwrap_or(Qty::ZERO)
}

impl Default for RiskConfig {
    fn default() -> Self {
        Self {
            initial_equity: q("10000"),
            max_leverage: q("10"),
            max_position_qty: q("1"),
            max_position_notional: q("100000"),
            symbols: BTreeMap::new(),
            risk_per_trade_pct: q("1"),
            volatility_proxy_bps: q("50"),
            max_order_notional: q("50000"),
            price_band_bps: q("100"),
            max_open_orders: 50,
            max_orders_per_s: 20,
            daily_loss_limit: q("300"),
            max_consecutive_losses: 10,
            vol_window_s: 60,
            vol_spike_bps: q("300"),
            vol_cut_factor: q("0.5"),
            api_errors_per_min: 30,
            model_disagreement_max: 0.5,
            conservative_size_factor: q("0.5"),
        }
    }
}

/// The keys of `[risk.symbols.<SYMBOL>]`.
const SYMBOL_KEYS: [&str; 2] = ["max_position_qty", "max_position_notional"];

/// Where a key's value goes and the rule it must keep.
enum Slot<'a> {
    /// An exact decimal > 0, and ≤ the bound when there is one.
    Decimal(&'a mut Qty, Option<i64>),
    /// A count ≥ the minimum.
    Count(&'a mut u32, u32),
    /// A float in [0, 1].
    Fraction(&'a mut f64),
}

impl RiskConfig {
    /// The scalar keys of `[risk]`, in the struct's order, each with its slot and rule (one list
    /// for reading, validating and writing, so a new field cannot miss one of them).
    fn slots(&mut self) -> [(&'static str, Slot<'_>); 18] {
        use Slot::{Count, Decimal, Fraction};
        [
            ("initial_equity", Decimal(&mut self.initial_equity, None)),
            ("max_leverage", Decimal(&mut self.max_leverage, Some(125))),
            (
                "max_position_qty",
                Decimal(&mut self.max_position_qty, None),
            ),
            (
                "max_position_notional",
                Decimal(&mut self.max_position_notional, None),
            ),
            (
                "risk_per_trade_pct",
                Decimal(&mut self.risk_per_trade_pct, Some(2)),
            ),
            (
                "volatility_proxy_bps",
                Decimal(&mut self.volatility_proxy_bps, None),
            ),
            (
                "max_order_notional",
                Decimal(&mut self.max_order_notional, None),
            ),
            ("price_band_bps", Decimal(&mut self.price_band_bps, None)),
            ("max_open_orders", Count(&mut self.max_open_orders, 1)),
            ("max_orders_per_s", Count(&mut self.max_orders_per_s, 1)),
            (
                "daily_loss_limit",
                Decimal(&mut self.daily_loss_limit, None),
            ),
            (
                "max_consecutive_losses",
                Count(&mut self.max_consecutive_losses, 1),
            ),
            ("vol_window_s", Count(&mut self.vol_window_s, 2)),
            ("vol_spike_bps", Decimal(&mut self.vol_spike_bps, None)),
            ("vol_cut_factor", Decimal(&mut self.vol_cut_factor, Some(1))),
            ("api_errors_per_min", Count(&mut self.api_errors_per_min, 1)),
            (
                "model_disagreement_max",
                Fraction(&mut self.model_disagreement_max),
            ),
            (
                "conservative_size_factor",
                Decimal(&mut self.conservative_size_factor, Some(1)),
            ),
        ]
    }

    /// Every key `[risk]` accepts (`symbols` holds the per-symbol tables).
    pub fn keys() -> Vec<&'static str> {
        let mut keys: Vec<_> = Self::default().slots().map(|(k, _)| k).into();
        keys.push("symbols");
        keys
    }

    /// The `[risk]` section of an engine config, validated; the defaults when it has none.
    pub fn from_engine(cfg: &EngineConfig) -> Result<Self, RiskConfigError> {
        let origin = if cfg.origin.is_empty() {
            "(built in code)"
        } else {
            &cfg.origin
        };
        match &cfg.risk {
            Some(t) => Self::from_table(t, origin),
            None => Ok(Self::default()),
        }
    }

    /// Reads a `[risk]` table (its contents, not the whole document) over the defaults and
    /// validates the result; `origin` names the source in errors.
    pub fn from_table(t: &toml::Table, origin: &str) -> Result<Self, RiskConfigError> {
        let err = |key: String, why: String| RiskConfigError {
            origin: origin.to_string(),
            key,
            why,
        };
        let mut cfg = Self::default();
        for (name, value) in t {
            let key = format!("risk.{name}");
            if name == "symbols" {
                cfg.symbols = read_symbols(value).map_err(|(key, why)| err(key, why))?;
                continue;
            }
            let mut slots = cfg.slots();
            let Some((_, slot)) = slots.iter_mut().find(|(k, _)| k == name) else {
                let known = Self::keys().join(", ");
                return Err(err(key, format!("unknown key; known keys: {known}")));
            };
            match slot {
                Slot::Decimal(q, _) => **q = read_decimal(value).map_err(|why| err(key, why))?,
                Slot::Count(n, _) => **n = read_count(value).map_err(|why| err(key, why))?,
                Slot::Fraction(f) => **f = read_float(value).map_err(|why| err(key, why))?,
            }
        }
        cfg.validate(origin)?;
        Ok(cfg)
    }

    /// Checks every rule (a config built in code should pass through here too); the error names
    /// the first key that breaks one.
    pub fn validate(&self, origin: &str) -> Result<(), RiskConfigError> {
        let err = |key: String, why: String| RiskConfigError {
            origin: origin.to_string(),
            key,
            why,
        };
        // `slots` hands out `&mut`; a copy keeps `validate` on `&self` (cold path).
        for (name, slot) in self.clone().slots() {
            check(&slot).map_err(|why| err(format!("risk.{name}"), why))?;
        }
        for (symbol, limits) in &self.symbols {
            let own = [limits.max_position_qty, limits.max_position_notional];
            for (name, value) in SYMBOL_KEYS.iter().zip(own) {
                let Some(mut q) = value else { continue };
                check(&Slot::Decimal(&mut q, None))
                    .map_err(|why| err(format!("risk.symbols.{symbol}.{name}"), why))?;
            }
        }
        Ok(())
    }

    /// The section as TOML (for reports and the journal): amounts as exact decimal strings, counts
    /// as integers; [`RiskConfig::from_table`] reads it back to an equal config.
    pub fn to_toml(&self) -> toml::Table {
        let mut t = toml::Table::new();
        for (name, slot) in self.clone().slots() {
            let v = match slot {
                Slot::Decimal(q, _) => toml::Value::String(q.to_string()),
                Slot::Count(n, _) => toml::Value::Integer(i64::from(*n)),
                Slot::Fraction(f) => toml::Value::Float(*f),
            };
            t.insert(name.to_string(), v);
        }
        if !self.symbols.is_empty() {
            let mut symbols = toml::Table::new();
            for (symbol, limits) in &self.symbols {
                let own = [limits.max_position_qty, limits.max_position_notional];
                let table: toml::Table = SYMBOL_KEYS
                    .iter()
                    .zip(own)
                    .filter_map(|(k, v)| Some((k.to_string(), toml::Value::String(v?.to_string()))))
                    .collect();
                symbols.insert(symbol.clone(), toml::Value::Table(table));
            }
            t.insert("symbols".into(), toml::Value::Table(symbols));
        }
        t
    }

    /// The position limits for `symbol` (its own, else the defaults).
    pub fn limits_for(&self, symbol: &str) -> (Qty, Qty) {
        let own = self.symbols.get(symbol);
        (
            own.and_then(|l| l.max_position_qty)
                .unwrap_or(self.max_position_qty),
            own.and_then(|l| l.max_position_notional)
                .unwrap_or(self.max_position_notional),
        )
    }
}

/// The rule of one slot, as the text of the error when it is broken.
fn check(slot: &Slot<'_>) -> Result<(), String> {
    match slot {
        Slot::Decimal(q, bound) => {
            let q = **q;
            match bound {
                Some(max) if q <= Qty::ZERO || q > Qty::from_units(*max) => {
                    Err(format!("must be in (0, {max}], got {q}"))
                }
                None if q <= Qty::ZERO => Err(format!("must be > 0, got {q}")),
                _ => Ok(()),
            }
        }
        Slot::Count(n, min) if **n < *min => Err(format!("must be at least {min}, got {n}")),
        Slot::Fraction(f) if !(0.0..=1.0).contains(*f) => {
            Err(format!("must be in [0, 1], got {f}"))
        }
        _ => Ok(()),
    }
}

/// An exact non-negative decimal from a TOML integer, float or decimal string.
fn read_decimal(v: &toml::Value) -> Result<Qty, String> {
    let text = match v {
        toml::Value::Integer(i) => i.to_string(),
        // `Display` for f64 is the shortest decimal that reads back to the same float, never in
        // exponent form: `0.1` → "0.1", so the Qty is the decimal the user wrote.
        toml::Value::Float(f) if f.is_finite() => f.to_string(),
        toml::Value::Float(f) => return Err(format!("must be a finite number, got {f}")),
        toml::Value::String(s) => s.trim().to_string(),
        other => {
            return Err(format!(
                "expected a number or a decimal string (\"0.5\"), got {}",
                other.type_str()
            ))
        }
    };
    let q = Qty::parse(&text).map_err(|e| match e {
        DecimalError::TooPrecise => format!("{text}: more than 8 decimals"),
        DecimalError::Overflow => format!("{text}: too large (at most {})", Qty(i64::MAX)),
        DecimalError::Empty | DecimalError::InvalidChar => {
            format!("{text:?} is not a plain decimal (write it as 0.5 or \"0.5\")")
        }
    })?;
    if q < Qty::ZERO {
        return Err(format!("must not be negative, got {text}"));
    }
    Ok(q)
}

/// A count from a non-negative TOML integer.
fn read_count(v: &toml::Value) -> Result<u32, String> {
    match v {
        toml::Value::Integer(i) => u32::try_from(*i)
            .map_err(|_| format!("must be a whole number from 0 to {}, got {i}", u32::MAX)),
        other => Err(format!("expected a whole number, got {other}")),
    }
}

/// A float from a TOML float or integer (the range is checked by [`check`]).
fn read_float(v: &toml::Value) -> Result<f64, String> {
    match v {
        toml::Value::Float(f) if f.is_nan() => Err("must be a number, got nan".into()),
        toml::Value::Float(f) => Ok(*f),
        // Small integers (0, 1) are exact in an f64.
        toml::Value::Integer(i) => Ok(*i as f64),
        other => Err(format!("expected a number, got {other}")),
    }
}

/// `[risk.symbols]`: one table per symbol with its own limits. Errors carry their full key.
fn read_symbols(v: &toml::Value) -> Result<BTreeMap<String, SymbolLimits>, (String, String)> {
    let table = v.as_table().ok_or_else(|| {
        (
            "risk.symbols".to_string(),
            "expected a table of symbols ([risk.symbols.BTCUSDT])".to_string(),
        )
    })?;
    let mut out = BTreeMap::new();
    for (symbol, limits) in table {
        let at = format!("risk.symbols.{symbol}");
        let limits = limits.as_table().ok_or_else(|| {
            (
                at.clone(),
                format!("expected a table ([{at}] with max_position_qty / max_position_notional)"),
            )
        })?;
        let mut own = SymbolLimits {
            max_position_qty: None,
            max_position_notional: None,
        };
        for (name, value) in limits {
            let key = format!("{at}.{name}");
            let slot = match name.as_str() {
                "max_position_qty" => &mut own.max_position_qty,
                "max_position_notional" => &mut own.max_position_notional,
                _ => {
                    let known = SYMBOL_KEYS.join(", ");
                    return Err((key, format!("unknown key; known keys: {known}")));
                }
            };
            *slot = Some(read_decimal(value).map_err(|why| (key, why))?);
        }
        out.insert(symbol.clone(), own);
    }
    Ok(out)
}
