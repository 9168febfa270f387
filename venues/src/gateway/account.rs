//! The account as each venue reports it — positions and balances — from REST queries
//! (`GET /fapi/v2/positionRisk`, `GET /v5/position/list`) and from the private streams (Binance
//! `ACCOUNT_UPDATE`, Bybit `position` and `wallet`), normalised for reconciliation.

use qalpha_engine::{Price, Qty, Symbol};
use serde_json::Value;

use super::json;

/// One symbol's position at the venue (one-way mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VenuePosition {
    pub symbol: Symbol,
    /// Signed size (+ long, − short).
    pub size: Qty,
    /// Average entry price (zero when flat).
    pub entry_price: Price,
    pub exch_ms: u64,
}

/// One asset's balance at the venue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Balance {
    pub asset: String,
    pub wallet: Qty,
}

/// What one message or answer says about the account.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountUpdate {
    pub positions: Vec<VenuePosition>,
    pub balances: Vec<Balance>,
}

fn symbol(v: &Value) -> Option<Symbol> {
    Symbol::parse(v.as_str()?)
}

/// `GET /fapi/v2/positionRisk` (hedge-mode `LONG`/`SHORT` rows are skipped: one-way mode only).
pub fn binance_position_risk(body: &[u8]) -> Result<Vec<VenuePosition>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("positionRisk: {e}"))?;
    let rows = v.as_array().ok_or("positionRisk: not a list")?;
    Ok(rows
        .iter()
        .filter(|r| r["positionSide"].as_str().is_none_or(|s| s == "BOTH"))
        .filter_map(|r| {
            Some(VenuePosition {
                symbol: symbol(&r["symbol"])?,
                size: json::qty(&r["positionAmt"])?,
                entry_price: json::price(&r["entryPrice"]),
                exch_ms: json::ms(&r["updateTime"]),
            })
        })
        .collect())
}

/// `GET /v5/position/list` (`size` unsigned with `side` `Buy`/`Sell`/`""`).
pub fn bybit_position_list(body: &[u8]) -> Result<Vec<VenuePosition>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("position/list: {e}"))?;
    let rows = v["result"]["list"]
        .as_array()
        .ok_or("position/list: no result.list")?;
    Ok(rows.iter().filter_map(bybit_position).collect())
}

fn bybit_position(r: &Value) -> Option<VenuePosition> {
    if r["positionIdx"].as_u64().is_some_and(|i| i != 0) {
        return None; // hedge-mode rows
    }
    let size = json::qty(&r["size"])?;
    let signed = match r["side"].as_str() {
        Some("Sell") => Qty(-size.raw()),
        Some("Buy") => size,
        _ => Qty::ZERO,
    };
    let entry = match json::price(&r["entryPrice"]) {
        Price::ZERO => json::price(&r["avgPrice"]),
        e => e,
    };
    Some(VenuePosition {
        symbol: symbol(&r["symbol"])?,
        size: signed,
        entry_price: entry,
        exch_ms: json::ms(&r["updatedTime"]),
    })
}

/// A private-stream message's account content: Binance `ACCOUNT_UPDATE`, Bybit `position` /
/// `wallet`; `None` for anything else.
pub fn private_account(frame: &[u8]) -> Option<AccountUpdate> {
    let v: Value = serde_json::from_slice(frame).ok()?;
    if v["e"] == "ACCOUNT_UPDATE" {
        let a = &v["a"];
        let t = json::ms(&v["T"]);
        return Some(AccountUpdate {
            positions: a["P"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter(|r| r["ps"].as_str().is_none_or(|s| s == "BOTH"))
                .filter_map(|r| {
                    Some(VenuePosition {
                        symbol: symbol(&r["s"])?,
                        size: json::qty(&r["pa"])?,
                        entry_price: json::price(&r["ep"]),
                        exch_ms: t,
                    })
                })
                .collect(),
            balances: a["B"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(|b| {
                    Some(Balance {
                        asset: b["a"].as_str()?.to_string(),
                        wallet: json::qty(&b["wb"])?,
                    })
                })
                .collect(),
        });
    }
    let data = v["data"].as_array()?;
    match v["topic"].as_str()?.split('.').next()? {
        "position" => Some(AccountUpdate {
            positions: data
                .iter()
                .filter(|r| r["category"].as_str().is_none_or(|c| c == "linear"))
                .filter_map(bybit_position)
                .collect(),
            balances: Vec::new(),
        }),
        "wallet" => Some(AccountUpdate {
            positions: Vec::new(),
            balances: data
                .iter()
                .flat_map(|acct| acct["coin"].as_array().cloned().unwrap_or_default())
                .filter_map(|c| {
                    Some(Balance {
                        asset: c["coin"].as_str()?.to_string(),
                        wallet: json::qty(&c["walletBalance"])?,
                    })
                })
                .collect(),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binance_account_update_from_the_docs() {
        // B.5's ACCOUNT_UPDATE example, abridged.
        let f = br#"{"e":"ACCOUNT_UPDATE","E":1564745798939,"T":1564745798938,"a":{"m":"ORDER",
            "B":[{"a":"USDT","wb":"122624.12345678","cw":"100.12345678","bc":"50.12345678"}],
            "P":[{"s":"BTCUSDT","pa":"-20","ep":"6563.66500","cr":"0","up":"2850.21200","mt":"isolated","iw":"13200.70726908","ps":"BOTH"},
                 {"s":"BTCUSDT","pa":"30","ep":"6563.6","cr":"0","up":"0","mt":"isolated","iw":"0","ps":"LONG"}]}}"#;
        let u = private_account(f).unwrap();
        assert_eq!(u.positions.len(), 1, "hedge-mode rows are skipped");
        assert_eq!(u.positions[0].size, Qty::parse("-20").unwrap());
        assert_eq!(
            u.positions[0].entry_price,
            Price::parse("6563.665").unwrap()
        );
        assert_eq!(u.balances[0].wallet, Qty::parse("122624.12345678").unwrap());
    }

    #[test]
    fn bybit_position_rows_are_signed_by_side() {
        let body = br#"{"retCode":0,"result":{"list":[
            {"positionIdx":0,"symbol":"BTCUSDT","side":"Sell","size":"0.010","avgPrice":"60000.1","updatedTime":"1700000000000"},
            {"positionIdx":0,"symbol":"ETHUSDT","side":"","size":"0","avgPrice":"0","updatedTime":"1"}]}}"#;
        let l = bybit_position_list(body).unwrap();
        assert_eq!(l[0].size, Qty::parse("-0.01").unwrap());
        assert_eq!(l[0].entry_price, Price::parse("60000.1").unwrap());
        assert_eq!(l[1].size, Qty::ZERO);
        let f = br#"{"topic":"wallet","data":[{"coin":[{"coin":"USDT","walletBalance":"99.5"}]}]}"#;
        assert_eq!(
            private_account(f).unwrap().balances[0].wallet,
            Qty::parse("99.5").unwrap()
        );
        assert!(private_account(br#"{"topic":"order","data":[]}"#).is_none());
    }
}
