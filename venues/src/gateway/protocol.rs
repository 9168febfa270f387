//! Each venue's order-entry protocol behind one interface, so the gateway thread
//! ([`super::session`]) is venue-agnostic: WebSocket order messages and their answers, REST
//! requests and their answers, reconciliation queries, private-stream set-up and decoding, and the
//! dead-man switch.
//!
//! | | Binance USD-M | Bybit v5 linear |
//! |---|---|---|
//! | WS order entry | ws-fapi `order.place/cancel/modify` (B.6), signed per request | Trade WS `order.create/cancel/amend` (C.7) after `auth` |
//! | WS answer | the order object (`result`) or `error{code,msg}` | `{orderId, orderLinkId}` or `retCode` |
//! | cancel-all | REST `DELETE /fapi/v1/allOpenOrders` | REST `POST /v5/order/cancel-all` |
//! | private stream | listenKey (REST) → `/private/ws/<key>`, `ORDER_TRADE_UPDATE` | `/v5/private` `auth` + `subscribe` `order`, `execution` (+ `dcp`) |
//! | dead-man | `POST /fapi/v1/countdownCancelAll` refreshed | `POST /v5/order/disconnected-cancel-all` + `dcp` topic |

use qalpha_engine::order::{ClientOrderId, ExecReport, OrderAction};
use qalpha_engine::{Side, Symbol, Venue};
use serde_json::Value;

use super::account::{binance_position_risk, bybit_position_list, VenuePosition};
use super::request::{Method, SignedRequest};
use super::snapshot::{binance_order, bybit_order, OrderSnapshot};
use super::{binance, bybit, hash_order_id};
use crate::errors::{binance_kind, bybit_kind, parse_binance, parse_bybit, VenueError};
use crate::sign::Signer;

/// What an order-entry answer (WebSocket or REST) says.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// The order as the venue now has it (Binance).
    Order(OrderSnapshot),
    /// Accepted; the outcome follows on the private stream (Bybit).
    Accepted {
        client_id: Option<ClientOrderId>,
        venue_order_id: u64,
    },
    /// Done with no order in the answer (cancel-all, dead-man, listenKey keep-alive).
    Done,
}

/// A WebSocket message from the order-entry connection.
#[derive(Clone, Debug, PartialEq)]
pub enum WsMessage {
    /// The answer to request `id`.
    Answer {
        id: String,
        result: Result<Answer, VenueError>,
    },
    /// `auth` answered (Bybit): ok or the venue's error.
    Auth(Result<(), VenueError>),
    /// Pong and anything else that needs no action.
    Other,
}

/// A venue's protocol with the account's key.
#[derive(Clone, Debug)]
pub struct Protocol {
    pub venue: Venue,
    pub signer: Signer,
}

impl Protocol {
    pub fn new(venue: Venue, signer: Signer) -> Self {
        Self { venue, signer }
    }

    /// The server-time path.
    pub fn time_path(&self) -> &'static str {
        match self.venue {
            Venue::BinanceUsdm => "/fapi/v1/time",
            Venue::BybitLinear => "/v5/market/time",
        }
    }

    pub fn parse_time(&self, body: &[u8]) -> Option<u64> {
        match self.venue {
            Venue::BinanceUsdm => crate::clock_sync::parse_binance_time(body),
            Venue::BybitLinear => crate::clock_sync::parse_bybit_time(body),
        }
    }

    /// The WebSocket message for `action` under request id `id`; `None` when the venue has no
    /// WebSocket method for it (cancel-all goes over REST). `side` is the order's side (Binance's
    /// modify needs it).
    pub fn ws_order(
        &self,
        id: &str,
        symbol: Symbol,
        action: &OrderAction,
        side: Side,
        ts: u64,
    ) -> Option<String> {
        match self.venue {
            Venue::BinanceUsdm => {
                let (method, params) = match action {
                    OrderAction::New(o) => ("order.place", binance::new_order_params(o)),
                    OrderAction::Cancel { client_id } => (
                        "order.cancel",
                        vec![
                            ("symbol", symbol.to_string()),
                            ("origClientOrderId", client_id.to_string()),
                        ],
                    ),
                    OrderAction::Amend {
                        client_id,
                        price,
                        qty,
                    } => (
                        "order.modify",
                        vec![
                            ("symbol", symbol.to_string()),
                            ("origClientOrderId", client_id.to_string()),
                            ("side", binance_side(side).into()),
                            ("quantity", qty.to_string()),
                            ("price", price.to_string()),
                        ],
                    ),
                    OrderAction::CancelAll => return None,
                };
                Some(binance::ws_request(&self.signer, id, method, params, ts))
            }
            Venue::BybitLinear => {
                let (op, args) = match action {
                    OrderAction::New(o) => ("order.create", bybit::create_args(o)),
                    OrderAction::Cancel { client_id } => (
                        "order.cancel",
                        format!("{{\"category\":\"linear\",\"symbol\":\"{symbol}\",\"orderLinkId\":\"{client_id}\"}}"),
                    ),
                    OrderAction::Amend {
                        client_id,
                        price,
                        qty,
                    } => (
                        "order.amend",
                        format!("{{\"category\":\"linear\",\"symbol\":\"{symbol}\",\"orderLinkId\":\"{client_id}\",\"qty\":\"{qty}\",\"price\":\"{price}\"}}"),
                    ),
                    OrderAction::CancelAll => return None,
                };
                Some(bybit::ws_request(id, op, &args, ts))
            }
        }
    }

    /// The REST request for `action`.
    pub fn rest_order(
        &self,
        symbol: Symbol,
        action: &OrderAction,
        side: Side,
        ts: u64,
    ) -> SignedRequest {
        let s = &self.signer;
        match (self.venue, action) {
            (Venue::BinanceUsdm, OrderAction::New(o)) => binance::rest_new_order(s, o, ts),
            (Venue::BinanceUsdm, OrderAction::Cancel { client_id }) => {
                binance::rest_cancel(s, symbol, *client_id, ts)
            }
            (
                Venue::BinanceUsdm,
                OrderAction::Amend {
                    client_id,
                    price,
                    qty,
                },
            ) => binance::rest_amend(s, symbol, *client_id, side, *price, *qty, ts),
            (Venue::BinanceUsdm, OrderAction::CancelAll) => binance::rest_cancel_all(s, symbol, ts),
            (Venue::BybitLinear, OrderAction::New(o)) => bybit::rest_create(s, o, ts),
            (Venue::BybitLinear, OrderAction::Cancel { client_id }) => {
                bybit::rest_cancel(s, symbol, *client_id, ts)
            }
            (
                Venue::BybitLinear,
                OrderAction::Amend {
                    client_id,
                    price,
                    qty,
                },
            ) => bybit::rest_amend(s, symbol, *client_id, *price, *qty, ts),
            (Venue::BybitLinear, OrderAction::CancelAll) => bybit::rest_cancel_all(s, symbol, ts),
        }
    }

    /// A REST answer: the venue's typed error, or what it says.
    pub fn parse_rest(&self, status: u16, body: &[u8]) -> Result<Answer, VenueError> {
        match self.venue {
            Venue::BinanceUsdm => {
                if let Some(e) = parse_binance(status, body) {
                    return Err(e);
                }
                let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
                Ok(binance_order(&v).map_or(Answer::Done, Answer::Order))
            }
            Venue::BybitLinear => {
                if let Some(e) = parse_bybit(status, body) {
                    return Err(e);
                }
                let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
                Ok(bybit_accepted(&v["result"]))
            }
        }
    }

    /// A message on the order-entry WebSocket.
    pub fn parse_ws(&self, frame: &[u8]) -> WsMessage {
        let Ok(v) = serde_json::from_slice::<Value>(frame) else {
            return WsMessage::Other;
        };
        match self.venue {
            Venue::BinanceUsdm => {
                let Some(id) = id_string(&v["id"]) else {
                    return WsMessage::Other;
                };
                let status = v["status"].as_u64().unwrap_or(0) as u16;
                let result = if status == 200 {
                    Ok(binance_order(&v["result"]).map_or(Answer::Done, Answer::Order))
                } else {
                    let code = v["error"]["code"].as_i64().unwrap_or(0);
                    Err(VenueError {
                        venue: self.venue,
                        http_status: status,
                        code,
                        msg: v["error"]["msg"].as_str().unwrap_or("").to_string(),
                        kind: binance_kind(status, code),
                    })
                };
                WsMessage::Answer { id, result }
            }
            Venue::BybitLinear => {
                let code = v["retCode"].as_i64().unwrap_or(0);
                let err = || VenueError {
                    venue: self.venue,
                    http_status: 200,
                    code,
                    msg: v["retMsg"].as_str().unwrap_or("").to_string(),
                    kind: bybit_kind(200, code),
                };
                match v["op"].as_str() {
                    Some("auth") => WsMessage::Auth(if code == 0 { Ok(()) } else { Err(err()) }),
                    Some(op) if op.starts_with("order.") => {
                        let Some(id) = id_string(&v["reqId"]) else {
                            return WsMessage::Other;
                        };
                        let result = if code == 0 {
                            Ok(bybit_accepted(&v["data"]))
                        } else {
                            Err(err())
                        };
                        WsMessage::Answer { id, result }
                    }
                    _ => WsMessage::Other,
                }
            }
        }
    }

    /// Open orders of `symbol` (reconciliation).
    pub fn rest_open_orders(&self, symbol: Symbol, ts: u64) -> SignedRequest {
        match self.venue {
            Venue::BinanceUsdm => binance::rest_open_orders(&self.signer, symbol, ts),
            Venue::BybitLinear => bybit::rest_open_orders(&self.signer, symbol, ts),
        }
    }

    /// One order by client id, open or recently closed (reconciliation).
    pub fn rest_query_order(&self, symbol: Symbol, id: ClientOrderId, ts: u64) -> SignedRequest {
        match self.venue {
            Venue::BinanceUsdm => binance::rest_query_order(&self.signer, symbol, id, ts),
            Venue::BybitLinear => bybit::rest_query_order(&self.signer, symbol, id, ts),
        }
    }

    /// The orders in an open-orders or query answer.
    pub fn parse_orders(&self, status: u16, body: &[u8]) -> Result<Vec<OrderSnapshot>, VenueError> {
        let v: Value = match self.venue {
            Venue::BinanceUsdm => {
                if let Some(e) = parse_binance(status, body) {
                    return Err(e);
                }
                serde_json::from_slice(body).unwrap_or(Value::Null)
            }
            Venue::BybitLinear => {
                if let Some(e) = parse_bybit(status, body) {
                    return Err(e);
                }
                let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
                v["result"]["list"].clone()
            }
        };
        Ok(match &v {
            Value::Array(a) => a
                .iter()
                .filter_map(|o| match self.venue {
                    Venue::BinanceUsdm => binance_order(o),
                    Venue::BybitLinear => bybit_order(o),
                })
                .collect(),
            o => binance_order(o).into_iter().collect(),
        })
    }

    /// A private-stream message → reports (appended to `out`). `Err` for a message that cannot be
    /// read; `Ok(false)` for a message that ends the stream (Binance `listenKeyExpired`).
    pub fn parse_private(
        &self,
        frame: &[u8],
        recv_ns: u64,
        out: &mut Vec<ExecReport>,
    ) -> Result<bool, String> {
        match self.venue {
            Venue::BinanceUsdm => {
                if frame.windows(16).any(|w| w == b"listenKeyExpired") {
                    return Ok(false);
                }
                if let Some(r) =
                    binance::parse_order_update(frame, recv_ns).map_err(|e| e.to_string())?
                {
                    out.push(r);
                }
                Ok(true)
            }
            Venue::BybitLinear => {
                out.extend(bybit::parse_private(frame, recv_ns).map_err(|e| e.to_string())?);
                Ok(true)
            }
        }
    }

    /// Positions (one symbol's, or every one), for reconciliation.
    pub fn rest_positions(&self, symbol: Option<Symbol>, ts: u64) -> SignedRequest {
        match self.venue {
            Venue::BinanceUsdm => binance::rest_positions(&self.signer, symbol, ts),
            Venue::BybitLinear => bybit::rest_positions(&self.signer, symbol, ts),
        }
    }

    /// The positions in a positions answer.
    pub fn parse_positions(&self, status: u16, body: &[u8]) -> Result<Vec<VenuePosition>, String> {
        let err = match self.venue {
            Venue::BinanceUsdm => parse_binance(status, body),
            Venue::BybitLinear => parse_bybit(status, body),
        };
        if let Some(e) = err {
            return Err(e.to_string());
        }
        match self.venue {
            Venue::BinanceUsdm => binance_position_risk(body),
            Venue::BybitLinear => bybit_position_list(body),
        }
    }

    /// Bybit: the `auth` message for the private and Trade WebSockets.
    pub fn ws_auth(&self, expires_ms: u64) -> Option<String> {
        (self.venue == Venue::BybitLinear).then(|| bybit::ws_auth(&self.signer, expires_ms))
    }

    /// Bybit: the private subscription (with `dcp` when the dead-man switch is armed).
    pub fn private_subscribe(&self, dcp: bool) -> Option<String> {
        (self.venue == Venue::BybitLinear).then(|| {
            let topics = if dcp {
                r#""order","execution","position","wallet","dcp""#
            } else {
                r#""order","execution","position","wallet""#
            };
            format!("{{\"req_id\":\"sub\",\"op\":\"subscribe\",\"args\":[{topics}]}}")
        })
    }

    /// Bybit: whether a private-stream message acknowledges the subscription (`Some(false)`: refused).
    pub fn private_subscribed(&self, frame: &[u8]) -> Option<bool> {
        let v: Value = serde_json::from_slice(frame).ok()?;
        (v["op"] == "subscribe").then(|| v["success"].as_bool().unwrap_or(false))
    }

    /// Binance: `POST` (create), `PUT` (keep alive) or `DELETE` `/fapi/v1/listenKey` — API key only.
    pub fn listen_key(&self, method: Method) -> Option<SignedRequest> {
        (self.venue == Venue::BinanceUsdm).then(|| SignedRequest {
            method,
            path: "/fapi/v1/listenKey".into(),
            query: String::new(),
            body: String::new(),
            headers: vec![("X-MBX-APIKEY".into(), self.signer.api_key().into())],
        })
    }

    /// The dead-man switch: Binance `countdownCancelAll` for `symbol` (refresh it within `ms`),
    /// Bybit disconnection protection with a window of `ms` (rounded up to whole seconds, 3…300).
    pub fn dead_man(&self, symbol: Symbol, ms: u64, ts: u64) -> SignedRequest {
        match self.venue {
            Venue::BinanceUsdm => binance::rest_countdown_cancel_all(&self.signer, symbol, ms, ts),
            Venue::BybitLinear => {
                let secs = ms.div_ceil(1000).clamp(3, 300);
                bybit::rest_disconnected_cancel_all(&self.signer, secs, ts)
            }
        }
    }
}

fn binance_side(s: Side) -> &'static str {
    match s {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    }
}

fn id_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn bybit_accepted(result: &Value) -> Answer {
    match result["orderId"].as_str() {
        Some(oid) => Answer::Accepted {
            client_id: result["orderLinkId"]
                .as_str()
                .and_then(ClientOrderId::parse),
            venue_order_id: hash_order_id(oid),
        },
        None => Answer::Done,
    }
}
