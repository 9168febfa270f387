//! Helpers for the gateway tests (`qalpha_venues::gateway::session` against the mock).

use std::time::{Duration, Instant};

use qalpha_engine::event::Venue;
use qalpha_engine::order::{
    ExecKind, ExecReport, NewOrder, OrderAction, OrderCommand, TimeInForce,
};
use qalpha_engine::{Qty, Side, Symbol};
use qalpha_venues::gateway::session::{Gateway, GatewayConfig, Via};
use qalpha_venues::mock::MockExchange;
use serde_json::Value;

use super::*;

/// `private`: with the private stream (without it the gateway polls open orders while any is open).
pub fn config(m: &MockExchange, venue: Venue, via: Via, private: bool) -> GatewayConfig {
    let base = format!("https://{}", m.addr);
    let mut c = GatewayConfig::new(venue, &base, signer());
    c.ca_file = m.ca_file.clone();
    c.via = via;
    c.symbols = vec![Symbol::parse("BTCUSDT").unwrap()];
    let ws = format!("wss://{}", m.addr);
    c.order_ws_url = Some(match venue {
        Venue::BinanceUsdm => format!("{ws}/ws-fapi/v1"),
        Venue::BybitLinear => format!("{ws}/v5/trade"),
    });
    if private {
        c.private_ws_url = Some(match venue {
            Venue::BinanceUsdm => format!("{ws}/private"),
            Venue::BybitLinear => format!("{ws}/v5/private"),
        });
    }
    c
}

pub fn connect(m: &MockExchange, venue: Venue, via: Via, private: bool) -> Gateway {
    let g = Gateway::connect(config(m, venue, via, private)).unwrap();
    if via == Via::Ws {
        assert!(
            g.order_ws_ready(),
            "order WebSocket: {:?}",
            g.stats.last_error
        );
    }
    assert_eq!(g.private_ready(), private, "{:?}", g.stats.last_error);
    g
}

pub fn new_order(o: &NewOrder) -> OrderCommand {
    OrderCommand {
        venue: o.venue,
        symbol: o.symbol,
        tick_recv_ns: qalpha_engine::clock::now_ns(),
        decided_ns: qalpha_engine::clock::now_ns(),
        action: OrderAction::New(*o),
    }
}

/// A post-only buy far below the touch: it rests, so the venue lists every order placed.
pub fn resting(m: &MockExchange, venue: Venue, id: &str) -> NewOrder {
    let (bid, _) = touch(m, venue);
    order(
        venue,
        id,
        Side::Buy,
        TimeInForce::PostOnly,
        ticks(bid, -50),
        "0.001",
    )
}

/// Polls the gateway until `done(reports)` or 10 s.
pub fn pump(
    g: &mut Gateway,
    out: &mut Vec<ExecReport>,
    done: impl Fn(&[ExecReport]) -> bool,
) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if done(out) {
            return true;
        }
        g.poll_io(Some(Duration::from_millis(5)), out);
    }
    done(out)
}

/// The final report (ack or reject) of order `id`, if any.
pub fn outcome<'a>(out: &'a [ExecReport], id: &str) -> Option<&'a ExecReport> {
    out.iter().find(|r| {
        r.client_id.as_str() == id && matches!(r.kind, ExecKind::Ack | ExecKind::Rejected)
    })
}

/// The venue's clock (its time endpoint): signed queries must follow it once it has jumped.
pub fn venue_ms(m: &MockExchange, venue: Venue) -> u64 {
    match venue {
        Venue::BinanceUsdm => send(m, "GET", "/fapi/v1/time", &[], "").1["serverTime"]
            .as_u64()
            .unwrap(),
        Venue::BybitLinear => send(m, "GET", "/v5/market/time", &[], "").1["time"]
            .as_u64()
            .unwrap(),
    }
}

/// Client ids of every order the venue holds for BTCUSDT (open and, on Bybit, closed), one entry
/// per order placed.
pub fn venue_ids(m: &MockExchange, venue: Venue) -> Vec<String> {
    let ts = venue_ms(m, venue);
    let ids = |list: &[Value], key: &str| -> Vec<String> {
        list.iter()
            .map(|v| v[key].as_str().unwrap().to_string())
            .collect()
    };
    match venue {
        Venue::BinanceUsdm => {
            let v = binance_open_orders_at(m, ts);
            ids(
                v.as_array().unwrap_or_else(|| panic!("{v}")),
                "clientOrderId",
            )
        }
        Venue::BybitLinear => ["", "&openOnly=1"]
            .iter()
            .flat_map(|extra| ids(&bybit_realtime_at(m, extra, ts), "orderLinkId"))
            .collect(),
    }
}

pub fn placed(listed: &[String], id: &str) -> usize {
    listed.iter().filter(|l| *l == id).count()
}

pub fn cmd(o: &NewOrder, action: OrderAction) -> OrderCommand {
    OrderCommand {
        venue: o.venue,
        symbol: o.symbol,
        tick_recv_ns: qalpha_engine::clock::now_ns(),
        decided_ns: qalpha_engine::clock::now_ns(),
        action,
    }
}

pub fn has(out: &[ExecReport], id: &str, kind: ExecKind) -> bool {
    out.iter()
        .any(|r| r.client_id.as_str() == id && r.kind == kind)
}

pub fn filled(out: &[ExecReport], id: &str) -> Qty {
    Qty(out
        .iter()
        .filter(|r| {
            r.client_id.as_str() == id && matches!(r.kind, ExecKind::Fill | ExecKind::PartialFill)
        })
        .map(|r| r.last_qty.raw())
        .sum())
}

/// The venue's view of one order: (status, executed quantity).
pub fn venue_order(m: &MockExchange, venue: Venue, id: &str) -> (String, Qty) {
    match venue {
        Venue::BinanceUsdm => {
            let s = signer();
            let q = format!(
                "symbol=BTCUSDT&origClientOrderId={id}&recvWindow=5000&timestamp={}",
                now_ms()
            );
            let sig = s.binance_rest(&q, "");
            let (st, v) = send(
                m,
                "GET",
                &format!("/fapi/v1/order?{q}&signature={sig}"),
                &[("X-MBX-APIKEY".into(), s.api_key().into())],
                "",
            );
            assert_eq!(st, 200, "{v}");
            (
                v["status"].as_str().unwrap().to_string(),
                qty(&v["executedQty"]),
            )
        }
        Venue::BybitLinear => {
            let l = bybit_realtime(m, &format!("&orderLinkId={id}"));
            let v: &Value = &l[0];
            (
                v["orderStatus"].as_str().unwrap().to_string(),
                qty(&v["cumExecQty"]),
            )
        }
    }
}

pub fn open_count(m: &MockExchange, venue: Venue) -> Vec<String> {
    let list: Vec<Value> = match venue {
        Venue::BinanceUsdm => binance_open_orders(m).as_array().unwrap().clone(),
        Venue::BybitLinear => bybit_realtime(m, ""),
    };
    let key = if venue == Venue::BinanceUsdm {
        "clientOrderId"
    } else {
        "orderLinkId"
    };
    list.iter()
        .map(|v| v[key].as_str().unwrap().to_string())
        .collect()
}

/// The venue's signed position in BTCUSDT (REST, parsed by the gateway's own account parsers).
pub fn venue_position(m: &MockExchange, venue: Venue) -> Qty {
    use qalpha_venues::gateway::{account, binance, bybit};
    let sym = Symbol::parse("BTCUSDT").unwrap();
    let ts = venue_ms(m, venue);
    let req = match venue {
        Venue::BinanceUsdm => binance::rest_positions(&signer(), Some(sym), ts),
        Venue::BybitLinear => bybit::rest_positions(&signer(), Some(sym), ts),
    };
    let r = qalpha_engine::transport::rest::request(
        req.method.as_str(),
        &format!("https://{}{}", m.addr, req.target()),
        &req.headers,
        req.body.as_bytes(),
        Some(&qalpha_engine::transport::tls::client_config(m.ca_file.as_deref()).unwrap()),
        Duration::from_secs(10),
    )
    .unwrap();
    let list = match venue {
        Venue::BinanceUsdm => account::binance_position_risk(&r.body),
        Venue::BybitLinear => account::bybit_position_list(&r.body),
    }
    .unwrap();
    list.iter()
        .find(|p| p.symbol == sym)
        .map_or(Qty::ZERO, |p| p.size)
}

/// The gateway's view of the BTCUSDT position (zero before the venue reported one).
pub fn gateway_position(g: &Gateway) -> Qty {
    g.position(Symbol::parse("BTCUSDT").unwrap())
        .map_or(Qty::ZERO, |p| p.size)
}
