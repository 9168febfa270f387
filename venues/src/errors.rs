//! Venue error bodies → typed errors with a retry policy.
//!
//! Binance answers `{"code":<negative>,"msg":"…"}` with an HTTP 4xx/5xx (and inside `batchOrders`
//! arrays with HTTP 200); Bybit answers HTTP 200 with `retCode != 0`. What the gateway must do next
//! depends on the class of error, not its text: re-sync the clock and retry (-1021, 10002), back off
//! (-1003, 429, 10006), stop and page someone (418 ban, bad key/signature/IP), reconcile because the
//! order's fate is unknown (HTTP 503 "Unknown error", timeouts), or give up on this order (margin,
//! filters, post-only would take, reduce-only rejected).

use std::time::Duration;

use qalpha_engine::Venue;

/// The class of a venue error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Timestamp outside `recvWindow` (-1021, -5028, 10002): the clock offset is off.
    Timestamp,
    /// Request or order rate limit hit (-1003, -1015, -1008, HTTP 429, 10006, 10018).
    RateLimited,
    /// Automatic IP ban (HTTP 418).
    IpBanned,
    /// Key, signature, permission or IP allowlist problem (-2014, -2015, -1022, 10003, 10004, 10005,
    /// 10010, 33004).
    Auth,
    /// Not enough margin or balance (-2019, 110004, 110007, 110012, 110044).
    InsufficientMargin,
    /// A post-only order would have taken liquidity (-5022; Bybit reports it on the order stream).
    PostOnlyWouldTake,
    /// Reduce-only order refused (-2022, -1106 in hedge mode).
    ReduceOnlyRejected,
    /// Price/quantity/notional/precision rules (-1111, -4003, -4014, -4023, -4164, -4131, 110003,
    /// 110017, 110094).
    FilterViolation,
    /// The order is unknown or already final (-2011, -2013, 110001, 110008, 170213).
    UnknownOrder,
    /// The client order id was used already (-4116, 110072): the order exists — reconcile, do not resend.
    DuplicateClientId,
    /// Malformed or missing parameter (-1100…-1106, 10001).
    BadRequest,
    /// The venue failed; the order's fate is unknown (HTTP 503 "Unknown error", 5xx, 10016).
    Unknown,
    /// Too many open orders (-2025, 110020, 110009).
    TooManyOrders,
    Other,
}

/// What the gateway should do about an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryPolicy {
    /// Final for this request.
    Never,
    /// Re-sync the server-time offset, then retry once.
    AfterClockSync,
    /// Retry after this delay (rate limits).
    After(Duration),
    /// Do not resend: query the venue (order status / open orders) and adopt what it says.
    Reconcile,
    /// Stop trading on this venue and alert (bans, credentials).
    Halt,
}

/// A typed venue error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} error {code} (HTTP {http_status}): {msg}", venue.name())]
pub struct VenueError {
    pub venue: Venue,
    pub http_status: u16,
    /// Binance `code` / Bybit `retCode` (0 when only the HTTP status is known).
    pub code: i64,
    pub msg: String,
    pub kind: ErrorKind,
}

impl VenueError {
    pub fn retry_policy(&self) -> RetryPolicy {
        match self.kind {
            ErrorKind::Timestamp => RetryPolicy::AfterClockSync,
            ErrorKind::RateLimited => RetryPolicy::After(Duration::from_secs(1)),
            ErrorKind::IpBanned | ErrorKind::Auth => RetryPolicy::Halt,
            ErrorKind::Unknown | ErrorKind::DuplicateClientId => RetryPolicy::Reconcile,
            _ => RetryPolicy::Never,
        }
    }
}

/// Binance `code` → class.
pub fn binance_kind(http_status: u16, code: i64) -> ErrorKind {
    match code {
        -1021 | -5028 => ErrorKind::Timestamp,
        -1003 | -1015 | -1008 => ErrorKind::RateLimited,
        -2014 | -2015 | -1022 | -1002 => ErrorKind::Auth,
        -2019 | -2018 => ErrorKind::InsufficientMargin,
        -5022 => ErrorKind::PostOnlyWouldTake,
        -2022 => ErrorKind::ReduceOnlyRejected,
        -1111 | -4003 | -4014 | -4023 | -4164 | -4131 | -1013 | -4024 | -4025 => {
            ErrorKind::FilterViolation
        }
        -2011 | -2013 => ErrorKind::UnknownOrder,
        -4116 => ErrorKind::DuplicateClientId,
        -2025 => ErrorKind::TooManyOrders,
        // -1106 "Parameter … sent when not required": for reduceOnly in hedge mode it is the
        // reduce-only rule; other parameters are plain bad requests (the message says which).
        -1106..=-1100 => ErrorKind::BadRequest,
        -1000 | -1001 | -1006 | -1007 => ErrorKind::Unknown,
        _ => match http_status {
            418 => ErrorKind::IpBanned,
            429 => ErrorKind::RateLimited,
            401 | 403 => ErrorKind::Auth,
            500..=599 => ErrorKind::Unknown,
            _ => ErrorKind::Other,
        },
    }
}

/// Bybit `retCode` → class.
pub fn bybit_kind(http_status: u16, code: i64) -> ErrorKind {
    match code {
        10002 => ErrorKind::Timestamp,
        10006 | 10018 => ErrorKind::RateLimited,
        10003 | 10004 | 10005 | 10010 | 33004 => ErrorKind::Auth,
        110004 | 110007 | 110012 | 110044 => ErrorKind::InsufficientMargin,
        110003 | 110017 | 110094 => ErrorKind::FilterViolation,
        110001 | 110008 | 170213 => ErrorKind::UnknownOrder,
        110072 => ErrorKind::DuplicateClientId,
        110009 | 110020 => ErrorKind::TooManyOrders,
        10001 => ErrorKind::BadRequest,
        10016 => ErrorKind::Unknown,
        _ => match http_status {
            403 | 401 => ErrorKind::Auth,
            429 => ErrorKind::RateLimited,
            500..=599 => ErrorKind::Unknown,
            _ => ErrorKind::Other,
        },
    }
}

/// Parses a Binance error body (`{"code":…,"msg":…}`); `None` if the body is not an error.
pub fn parse_binance(http_status: u16, body: &[u8]) -> Option<VenueError> {
    let v: serde_json::Value = serde_json::from_slice(body)
        .ok()
        .unwrap_or(serde_json::Value::Null);
    let code = v.get("code").and_then(|c| c.as_i64());
    let msg = v.get("msg").and_then(|m| m.as_str()).map(str::to_string);
    match (code, msg) {
        // `{"code":200,"msg":"…done."}` is cancel-all's success body.
        (Some(c), Some(msg)) if c < 0 => Some(VenueError {
            venue: Venue::BinanceUsdm,
            http_status,
            code: c,
            kind: binance_kind(http_status, c),
            msg,
        }),
        _ if http_status >= 400 => Some(VenueError {
            venue: Venue::BinanceUsdm,
            http_status,
            code: 0,
            kind: binance_kind(http_status, 0),
            msg: String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
        }),
        _ => None,
    }
}

/// Parses a Bybit v5 response envelope; `None` when `retCode == 0` and the HTTP status is 2xx.
pub fn parse_bybit(http_status: u16, body: &[u8]) -> Option<VenueError> {
    let v: serde_json::Value = serde_json::from_slice(body)
        .ok()
        .unwrap_or(serde_json::Value::Null);
    let code = v.get("retCode").and_then(|c| c.as_i64());
    let msg = v
        .get("retMsg")
        .and_then(|m| m.as_str())
        .unwrap_or("")
        .to_string();
    match code {
        Some(0) if http_status < 400 => None,
        Some(c) => Some(VenueError {
            venue: Venue::BybitLinear,
            http_status,
            code: c,
            kind: bybit_kind(http_status, c),
            msg,
        }),
        None => Some(VenueError {
            venue: Venue::BybitLinear,
            http_status,
            code: 0,
            kind: bybit_kind(http_status, 0),
            msg: String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engines_reject_classes_match_the_venues_codes() {
        use qalpha_engine::order::is_post_only_bounce;
        use qalpha_engine::Venue;
        for code in -6000..=0i64 {
            assert_eq!(
                binance_kind(400, code) == ErrorKind::PostOnlyWouldTake,
                is_post_only_bounce(Venue::BinanceUsdm, code as i32),
                "binance {code}"
            );
        }
        use qalpha_engine::order::is_rate_limited;
        for code in -6000..=0i64 {
            assert_eq!(
                binance_kind(400, code) == ErrorKind::RateLimited,
                is_rate_limited(Venue::BinanceUsdm, code as i32),
                "binance {code}"
            );
        }
        for code in 0..200_000i64 {
            assert_eq!(
                bybit_kind(200, code) == ErrorKind::RateLimited,
                is_rate_limited(Venue::BybitLinear, code as i32),
                "bybit {code}"
            );
        }
        // Bybit accepts and then cancels a crossing post-only order: it has no such reject.
        for code in 0..200_000i64 {
            assert_ne!(
                bybit_kind(200, code),
                ErrorKind::PostOnlyWouldTake,
                "bybit {code}"
            );
            assert!(!is_post_only_bounce(Venue::BybitLinear, code as i32));
        }
    }

    fn shared(rel: &str) -> Option<String> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/data")
            .join(rel);
        match std::fs::read_to_string(&p) {
            Ok(s) => Some(s),
            Err(_) => {
                eprintln!("skip: {} not found", p.display());
                None
            }
        }
    }

    #[test]
    fn observed_real_error_bodies_are_typed() {
        let Some(text) = shared("binance-usdm/errors/observed_error_responses.jsonl") else {
            return;
        };
        let mut n = 0;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let rec: serde_json::Value = serde_json::from_str(line).unwrap();
            let status = rec["http_status"].as_u64().unwrap() as u16;
            let body = serde_json::to_vec(&rec["body"]).unwrap();
            let exchange = rec["exchange"].as_str().unwrap();
            let errs: Vec<VenueError> = if exchange.starts_with("bybit") {
                parse_bybit(status, &body).into_iter().collect()
            } else if let Some(arr) = rec["body"].as_array() {
                // batchOrders: HTTP 200 with a mix of orders and errors.
                arr.iter()
                    .filter_map(|e| parse_binance(status, &serde_json::to_vec(e).unwrap()))
                    .collect()
            } else {
                parse_binance(status, &body).into_iter().collect()
            };
            assert!(!errs.is_empty(), "{line}");
            for e in errs {
                let expect = match e.code {
                    -4003 | -4164 => ErrorKind::FilterViolation,
                    -1021 => ErrorKind::Timestamp,
                    -1106 => ErrorKind::BadRequest,
                    10001 => ErrorKind::BadRequest,
                    other => panic!("unexpected code {other} in {line}"),
                };
                assert_eq!(e.kind, expect, "{line}");
                n += 1;
            }
        }
        assert!(n >= 9, "{n}");
    }

    #[test]
    fn bybit_mapping_agrees_with_the_official_code_table() {
        let Some(csv) = shared("bybit-v5/error-codes.csv") else {
            return;
        };
        // (code, kind, a word the official message must contain)
        let expect = [
            (10002, ErrorKind::Timestamp, "time"),
            (10006, ErrorKind::RateLimited, "Rate Limit"),
            (10004, ErrorKind::Auth, "sign"),
            (10010, ErrorKind::Auth, "IP"),
            (110007, ErrorKind::InsufficientMargin, "balance"),
            (110044, ErrorKind::InsufficientMargin, "margin"),
            (110001, ErrorKind::UnknownOrder, "not exist"),
            (110072, ErrorKind::DuplicateClientId, "duplicate"),
            (110094, ErrorKind::FilterViolation, "notional"),
            (110017, ErrorKind::FilterViolation, "truncated"),
            (110020, ErrorKind::TooManyOrders, "500 active orders"),
            (10016, ErrorKind::Unknown, "error"),
        ];
        for (code, kind, word) in expect {
            assert_eq!(bybit_kind(200, code), kind, "{code}");
            let row = csv
                .lines()
                .find(|l| l.starts_with("UTA,") && l.split(',').nth(1) == Some(&code.to_string()))
                .unwrap_or_else(|| panic!("{code} not in the official table"));
            assert!(
                row.to_lowercase().contains(&word.to_lowercase()),
                "{code}: {row}"
            );
        }
    }

    #[test]
    fn policies_and_non_errors() {
        let e = parse_binance(
            400,
            br#"{"code":-1021,"msg":"Timestamp for this request is outside of the recvWindow."}"#,
        )
        .unwrap();
        assert_eq!(e.retry_policy(), RetryPolicy::AfterClockSync);
        assert!(e.to_string().contains("binance error -1021"));
        let e = parse_binance(
            503,
            b"Unknown error, please check your request or try again later.",
        )
        .unwrap();
        assert_eq!(
            (e.kind, e.retry_policy()),
            (ErrorKind::Unknown, RetryPolicy::Reconcile)
        );
        assert_eq!(
            parse_binance(418, b"").unwrap().retry_policy(),
            RetryPolicy::Halt
        );
        assert!(parse_binance(
            200,
            br#"{"code":200,"msg":"The operation of cancel all open order is done."}"#
        )
        .is_none());
        assert!(parse_binance(200, br#"{"orderId":1,"status":"NEW"}"#).is_none());
        assert!(parse_bybit(200, br#"{"retCode":0,"retMsg":"OK","result":{}}"#).is_none());
        assert_eq!(
            parse_bybit(
                200,
                br#"{"retCode":110072,"retMsg":"OrderLinkedID is duplicate"}"#
            )
            .unwrap()
            .retry_policy(),
            RetryPolicy::Reconcile
        );
        assert_eq!(
            parse_bybit(502, b"<html>bad gateway</html>").unwrap().kind,
            ErrorKind::Unknown
        );
    }
}
