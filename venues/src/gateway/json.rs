//! Reading the venues' JSON values: decimals arrive as strings (an empty string means "not
//! applicable", DATA.md §5.5), times as numbers or strings of milliseconds.

use qalpha_engine::{Price, Qty};
use serde_json::Value;

/// A decimal-string quantity; `None` when absent, empty or not a decimal (never rounded).
pub fn qty(v: &Value) -> Option<Qty> {
    v.as_str()
        .filter(|s| !s.is_empty())
        .and_then(|s| Qty::parse(s).ok())
}

/// [`qty`], zero when absent.
pub fn qty_or_zero(v: &Value) -> Qty {
    qty(v).unwrap_or(Qty::ZERO)
}

/// A decimal-string price, zero when absent or empty.
pub fn price(v: &Value) -> Price {
    v.as_str()
        .filter(|s| !s.is_empty())
        .and_then(|s| Price::parse(s).ok())
        .unwrap_or(Price::ZERO)
}

/// Milliseconds as a number or a numeric string, zero when absent.
pub fn ms(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}
