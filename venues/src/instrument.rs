//! Instrument trading rules (tick size, lot step, limits, minimum notional), loaded from the venues'
//! own descriptions and checked *before* an order is sent: an off-tick price or off-step size is
//! refused locally with an error that names the rule — never rounded silently (PROTOCOLS.md B.4,
//! C.6). Exact integer arithmetic throughout.

use qalpha_engine::order::{NewOrder, OrderType};
use qalpha_engine::{Price, Qty, Symbol, Venue, FIXED_SCALE};

/// One instrument's rules. A zero field disables its check (Binance's convention).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstrumentRules {
    pub venue: Venue,
    pub symbol: Symbol,
    pub trading: bool,
    pub tick: Price,
    pub min_price: Price,
    pub max_price: Price,
    pub step: Qty,
    pub min_qty: Qty,
    pub max_qty: Qty,
    /// Market orders' own step and maximum (Binance MARKET_LOT_SIZE, Bybit maxMktOrderQty).
    pub market_step: Qty,
    pub market_max_qty: Qty,
    /// Minimum price × qty in quote units (10^-8).
    pub min_notional: Qty,
}

/// Why an order breaks its instrument's rules.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("{symbol}: trading is not open")]
    NotTrading { symbol: Symbol },
    #[error("{symbol}: price {price} is not on the tick size {tick} (from {min_price})")]
    OffTick {
        symbol: Symbol,
        price: Price,
        tick: Price,
        min_price: Price,
    },
    #[error("{symbol}: price {price} is outside [{min}, {max}]")]
    PriceOutOfRange {
        symbol: Symbol,
        price: Price,
        min: Price,
        max: Price,
    },
    #[error("{symbol}: quantity {qty} is not on the step size {step} (from {min_qty})")]
    OffStep {
        symbol: Symbol,
        qty: Qty,
        step: Qty,
        min_qty: Qty,
    },
    #[error("{symbol}: quantity {qty} is outside [{min}, {max}]")]
    QtyOutOfRange {
        symbol: Symbol,
        qty: Qty,
        min: Qty,
        max: Qty,
    },
    #[error(
        "{symbol}: notional {notional} is below the minimum {min} (reduce-only orders are exempt)"
    )]
    NotionalTooSmall {
        symbol: Symbol,
        notional: Qty,
        min: Qty,
    },
    #[error("{symbol}: a market order needs a reference (mark) price for the notional check")]
    NoReferencePrice { symbol: Symbol },
}

/// `price × qty` in quote units of 10^-8, exact (saturating at the i64 range).
pub fn notional(price: Price, qty: Qty) -> Qty {
    let n = price.raw() as i128 * qty.raw() as i128 / FIXED_SCALE as i128;
    Qty(n.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
}

fn on_grid(v: i64, origin: i64, step: i64) -> bool {
    step == 0 || (v - origin).rem_euclid(step) == 0
}

impl InstrumentRules {
    /// Checks an order; `reference` is the price a market order's notional is judged at (mark).
    pub fn check(&self, o: &NewOrder, reference: Option<Price>) -> Result<(), RuleError> {
        let symbol = self.symbol;
        if !self.trading {
            return Err(RuleError::NotTrading { symbol });
        }
        let market = o.order_type == OrderType::Market;
        if !market {
            if !on_grid(o.price.raw(), self.min_price.raw(), self.tick.raw()) {
                return Err(RuleError::OffTick {
                    symbol,
                    price: o.price,
                    tick: self.tick,
                    min_price: self.min_price,
                });
            }
            let above_max = self.max_price.raw() != 0 && o.price > self.max_price;
            if o.price.raw() <= 0 || o.price < self.min_price || above_max {
                return Err(RuleError::PriceOutOfRange {
                    symbol,
                    price: o.price,
                    min: self.min_price,
                    max: self.max_price,
                });
            }
        }
        // Market orders have their own step and maximum where the venue publishes them.
        let step = if market && self.market_step.raw() != 0 {
            self.market_step
        } else {
            self.step
        };
        let max = if market && self.market_max_qty.raw() != 0 {
            self.market_max_qty
        } else {
            self.max_qty
        };
        if !on_grid(o.qty.raw(), self.min_qty.raw(), step.raw()) {
            return Err(RuleError::OffStep {
                symbol,
                qty: o.qty,
                step,
                min_qty: self.min_qty,
            });
        }
        if o.qty.raw() <= 0 || o.qty < self.min_qty || (max.raw() != 0 && o.qty > max) {
            return Err(RuleError::QtyOutOfRange {
                symbol,
                qty: o.qty,
                min: self.min_qty,
                max,
            });
        }
        if self.min_notional.raw() != 0 && !o.reduce_only {
            let px = if market {
                reference.ok_or(RuleError::NoReferencePrice { symbol })?
            } else {
                o.price
            };
            let n = notional(px, o.qty);
            if n < self.min_notional {
                return Err(RuleError::NotionalTooSmall {
                    symbol,
                    notional: n,
                    min: self.min_notional,
                });
            }
        }
        Ok(())
    }
}

fn dec_p(v: &serde_json::Value) -> Price {
    v.as_str()
        .and_then(|s| Price::parse(s).ok())
        .unwrap_or(Price::ZERO)
}
fn dec_q(v: &serde_json::Value) -> Qty {
    v.as_str()
        .and_then(|s| Qty::parse(s).ok())
        .unwrap_or(Qty::ZERO)
}

/// Parses Binance USD-M `GET /fapi/v1/exchangeInfo` into rules for every symbol.
pub fn parse_binance_exchange_info(body: &str) -> Result<Vec<InstrumentRules>, String> {
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("exchangeInfo is not JSON: {e}"))?;
    let symbols = v["symbols"]
        .as_array()
        .ok_or("exchangeInfo has no symbols array")?;
    let mut out = Vec::with_capacity(symbols.len());
    for s in symbols {
        let Some(symbol) = s["symbol"].as_str().and_then(Symbol::parse) else {
            continue;
        };
        let mut r = InstrumentRules {
            venue: Venue::BinanceUsdm,
            symbol,
            trading: s["status"] == "TRADING",
            tick: Price::ZERO,
            min_price: Price::ZERO,
            max_price: Price::ZERO,
            step: Qty::ZERO,
            min_qty: Qty::ZERO,
            max_qty: Qty::ZERO,
            market_step: Qty::ZERO,
            market_max_qty: Qty::ZERO,
            min_notional: Qty::ZERO,
        };
        for f in s["filters"].as_array().into_iter().flatten() {
            match f["filterType"].as_str() {
                Some("PRICE_FILTER") => {
                    r.tick = dec_p(&f["tickSize"]);
                    r.min_price = dec_p(&f["minPrice"]);
                    r.max_price = dec_p(&f["maxPrice"]);
                }
                Some("LOT_SIZE") => {
                    r.step = dec_q(&f["stepSize"]);
                    r.min_qty = dec_q(&f["minQty"]);
                    r.max_qty = dec_q(&f["maxQty"]);
                }
                Some("MARKET_LOT_SIZE") => {
                    r.market_step = dec_q(&f["stepSize"]);
                    r.market_max_qty = dec_q(&f["maxQty"]);
                }
                Some("MIN_NOTIONAL") => r.min_notional = dec_q(&f["notional"]),
                _ => {}
            }
        }
        out.push(r);
    }
    Ok(out)
}

/// Parses Bybit v5 `GET /v5/market/instruments-info?category=linear` (`result.list`).
pub fn parse_bybit_instruments(body: &str) -> Result<Vec<InstrumentRules>, String> {
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("instruments-info is not JSON: {e}"))?;
    if v["retCode"].as_i64() != Some(0) {
        return Err(format!(
            "instruments-info retCode {} {}",
            v["retCode"], v["retMsg"]
        ));
    }
    let list = v["result"]["list"]
        .as_array()
        .ok_or("instruments-info has no result.list")?;
    Ok(list
        .iter()
        .filter_map(|s| {
            let symbol = s["symbol"].as_str().and_then(Symbol::parse)?;
            let pf = &s["priceFilter"];
            let lf = &s["lotSizeFilter"];
            Some(InstrumentRules {
                venue: Venue::BybitLinear,
                symbol,
                trading: s["status"] == "Trading",
                tick: dec_p(&pf["tickSize"]),
                min_price: dec_p(&pf["minPrice"]),
                max_price: dec_p(&pf["maxPrice"]),
                step: dec_q(&lf["qtyStep"]),
                min_qty: dec_q(&lf["minOrderQty"]),
                max_qty: dec_q(&lf["maxOrderQty"]),
                market_step: Qty::ZERO,
                market_max_qty: dec_q(&lf["maxMktOrderQty"]),
                min_notional: dec_q(&lf["minNotionalValue"]),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use qalpha_engine::order::{ClientOrderId, TimeInForce};
    use qalpha_engine::Side;

    fn order(sym: &str, px: &str, qty: &str) -> NewOrder {
        NewOrder {
            venue: Venue::BinanceUsdm,
            symbol: Symbol::parse(sym).unwrap(),
            client_id: ClientOrderId::parse("t1").unwrap(),
            side: Side::Buy,
            order_type: OrderType::Limit,
            tif: TimeInForce::Gtc,
            price: Price::parse(px).unwrap(),
            qty: Qty::parse(qty).unwrap(),
            reduce_only: false,
        }
    }

    fn real_exchange_info() -> Option<Vec<InstrumentRules>> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/data/binance-usdm/cryptofeed-2021/BINANCE_FUTURES.0");
        let Ok(text) = std::fs::read_to_string(&p) else {
            eprintln!("skip: {} not found", p.display());
            return None;
        };
        // Line form: `<url> -> <recv_ts>: <body>`.
        let body = text.lines().next()?.split_once(": ")?.1;
        Some(parse_binance_exchange_info(body).unwrap())
    }

    #[test]
    fn real_binance_exchange_info_rules() {
        let Some(rules) = real_exchange_info() else {
            return;
        };
        assert_eq!(rules.len(), 122);
        let btc = rules
            .iter()
            .find(|r| r.symbol.as_str() == "BTCUSDT")
            .unwrap();
        assert_eq!(btc.tick, Price::parse("0.01").unwrap());
        assert_eq!(btc.step, Qty::parse("0.001").unwrap());
        assert_eq!(btc.min_notional, Qty::parse("5").unwrap());
        assert!(btc
            .check(&order("BTCUSDT", "32000.01", "0.001"), None)
            .is_ok());
        let e = btc
            .check(&order("BTCUSDT", "32000.015", "0.001"), None)
            .unwrap_err();
        assert!(matches!(e, RuleError::OffTick { .. }), "{e}");
        assert!(e.to_string().contains("tick size 0.01"));
        assert!(matches!(
            btc.check(&order("BTCUSDT", "32000", "0.0015"), None),
            Err(RuleError::OffStep { .. })
        ));
        assert!(matches!(
            btc.check(&order("BTCUSDT", "100", "0.001"), None),
            Err(RuleError::PriceOutOfRange { .. })
        ));
        // 0.001 × 1000 = 1 USDT < 5: refused, unless reduce-only.
        assert!(matches!(
            btc.check(&order("BTCUSDT", "1000", "0.001"), None),
            Err(RuleError::NotionalTooSmall { .. })
        ));
        let mut ro = order("BTCUSDT", "1000", "0.001");
        ro.reduce_only = true;
        assert!(btc.check(&ro, None).is_ok());
        let mut mkt = order("BTCUSDT", "0", "0.001");
        mkt.order_type = OrderType::Market;
        assert!(matches!(
            btc.check(&mkt, None),
            Err(RuleError::NoReferencePrice { .. })
        ));
        assert!(btc
            .check(&mkt, Some(Price::parse("32000").unwrap()))
            .is_ok());
        // Every real symbol's own minimum order passes its own rules.
        for r in rules.iter().filter(|r| r.trading) {
            let px = if r.min_price.raw() > 0 {
                r.min_price
            } else {
                r.tick
            };
            let mut o = order(r.symbol.as_str(), &px.to_string(), &r.min_qty.to_string());
            o.reduce_only = true;
            assert!(
                r.check(&o, None).is_ok(),
                "{}: {:?}",
                r.symbol,
                r.check(&o, None)
            );
        }
    }

    #[test]
    fn bybit_instruments_shape() {
        // Field names per PROTOCOLS.md C.6 (values are the documented BTCUSDT example).
        let body = r#"{"retCode":0,"retMsg":"OK","result":{"category":"linear","list":[{"symbol":"BTCUSDT","status":"Trading","priceFilter":{"minPrice":"0.10","maxPrice":"199999.80","tickSize":"0.10"},"lotSizeFilter":{"maxOrderQty":"1190.000","minOrderQty":"0.001","qtyStep":"0.001","maxMktOrderQty":"119.000","minNotionalValue":"5"}}]}}"#;
        let r = &parse_bybit_instruments(body).unwrap()[0];
        assert_eq!(
            (r.tick, r.step),
            (Price::parse("0.1").unwrap(), Qty::parse("0.001").unwrap())
        );
        assert!(r.check(&order("BTCUSDT", "60000.1", "0.001"), None).is_ok());
        assert!(matches!(
            r.check(&order("BTCUSDT", "60000.15", "0.001"), None),
            Err(RuleError::OffTick { .. })
        ));
        let mut big = order("BTCUSDT", "0", "200");
        big.order_type = OrderType::Market;
        assert!(matches!(
            big_check(r, &big),
            Err(RuleError::QtyOutOfRange { .. })
        ));
        assert!(parse_bybit_instruments(r#"{"retCode":10001,"retMsg":"bad"}"#).is_err());
    }

    fn big_check(r: &InstrumentRules, o: &NewOrder) -> Result<(), RuleError> {
        r.check(o, Some(Price::parse("60000").unwrap()))
    }
}
