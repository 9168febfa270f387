//! The mock exchange's checks on signed requests — API key, signature, timestamp window — answered
//! with the venues' real error bodies (PROTOCOLS.md B.1, B.7, C.5), so a gateway's signing and clock
//! handling are tested against the same rules the venues apply.

use crate::sign::Signer;

/// A rejected request: the HTTP status and body to answer with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub http_status: u16,
    pub body: String,
}

fn binance_refusal(http_status: u16, code: i64, msg: &str) -> Refusal {
    Refusal {
        http_status,
        body: format!("{{\"code\":{code},\"msg\":\"{msg}\"}}"),
    }
}

fn bybit_refusal(code: i64, msg: &str) -> Refusal {
    // Bybit answers business errors with HTTP 200 and a non-zero retCode.
    Refusal {
        http_status: 200,
        body: format!("{{\"retCode\":{code},\"retMsg\":\"{msg}\",\"result\":{{}},\"retExtInfo\":{{}},\"time\":0}}"),
    }
}

/// Splits `a=1&b=2` into pairs (values are not URL-decoded: the signature covers the raw bytes).
pub fn split_params(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.to_string(), String::new()),
        })
        .collect()
}

/// Checks a Binance signed REST request. `query` and `body` are the raw query string and
/// form body; returns the parameters (query values win over body values, as on Binance).
pub fn verify_binance(
    accounts: &[Signer],
    api_key: Option<&str>,
    query: &str,
    body: &str,
    server_ms: u64,
) -> Result<Vec<(String, String)>, Refusal> {
    let Some(signer) = api_key.and_then(|k| accounts.iter().find(|s| s.api_key() == k)) else {
        return Err(binance_refusal(
            401,
            -2015,
            "Invalid API-key, IP, or permissions for action.",
        ));
    };
    // The signature is the last parameter of the body if there is one, else of the query string;
    // what precedes it (query + body concatenated, as sent) is what was signed.
    let strip = |s: &str| -> Option<(String, String)> {
        if let Some(sig) = s.strip_prefix("signature=") {
            return Some((String::new(), sig.to_string()));
        }
        s.rfind("&signature=")
            .map(|i| (s[..i].to_string(), s[i + 11..].to_string()))
    };
    let split = if body.is_empty() {
        strip(query).map(|(q, sig)| (q, String::new(), sig))
    } else {
        strip(body).map(|(b, sig)| (query.to_string(), b, sig))
    };
    let Some((signed_query, signed_body, sig)) = split else {
        return Err(binance_refusal(
            400,
            -1102,
            "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
        ));
    };
    if !sig.eq_ignore_ascii_case(&signer.binance_rest(&signed_query, &signed_body)) {
        return Err(binance_refusal(
            400,
            -1022,
            "Signature for this request is not valid.",
        ));
    }
    let mut params = split_params(&signed_query);
    for (k, v) in split_params(&signed_body) {
        if !params.iter().any(|(q, _)| *q == k) {
            params.push((k, v));
        }
    }
    let get = |k: &str| {
        params
            .iter()
            .find(|(p, _)| p == k)
            .and_then(|(_, v)| v.parse::<u64>().ok())
    };
    let Some(ts) = get("timestamp") else {
        return Err(binance_refusal(
            400,
            -1102,
            "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.",
        ));
    };
    let recv_window = get("recvWindow").unwrap_or(5000);
    if ts >= server_ms + 1000 || server_ms.saturating_sub(ts) > recv_window {
        return Err(binance_refusal(
            400,
            -1021,
            "Timestamp for this request is outside of the recvWindow.",
        ));
    }
    Ok(params)
}

/// Checks a Bybit v5 signed REST request from its `X-BAPI-*` headers (`payload` is the raw JSON
/// body for POST, the query string for GET).
pub fn verify_bybit(
    accounts: &[Signer],
    header: impl Fn(&str) -> Option<String>,
    payload: &str,
    server_ms: u64,
) -> Result<(), Refusal> {
    let key = header("x-bapi-api-key");
    let Some(signer) = key
        .as_deref()
        .and_then(|k| accounts.iter().find(|s| s.api_key() == k))
    else {
        return Err(bybit_refusal(10003, "API key is invalid."));
    };
    let (Some(ts), Some(sign)) = (
        header("x-bapi-timestamp").and_then(|t| t.parse::<u64>().ok()),
        header("x-bapi-sign"),
    ) else {
        return Err(bybit_refusal(
            10001,
            "params error: missing X-BAPI-TIMESTAMP or X-BAPI-SIGN",
        ));
    };
    let recv_window = header("x-bapi-recv-window")
        .and_then(|r| r.parse::<u64>().ok())
        .unwrap_or(5000);
    if !sign.eq_ignore_ascii_case(&signer.bybit_rest(ts, recv_window, payload)) {
        return Err(bybit_refusal(
            10004,
            "Error sign, please check your signature generation algorithm.",
        ));
    }
    // server_time − recv_window ≤ timestamp < server_time + 1000
    if ts >= server_ms + 1000 || server_ms.saturating_sub(recv_window) > ts {
        return Err(bybit_refusal(
            10002,
            "The request time exceeds the time window range.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::{parse_binance, parse_bybit, ErrorKind};
    use crate::gateway::{binance, bybit};
    use qalpha_engine::order::{ClientOrderId, NewOrder, OrderType, TimeInForce};
    use qalpha_engine::{Price, Qty, Side, Symbol, Venue};

    fn order(venue: Venue) -> NewOrder {
        NewOrder {
            venue,
            symbol: Symbol::parse("BTCUSDT").unwrap(),
            client_id: ClientOrderId::parse("qa-1").unwrap(),
            side: Side::Buy,
            order_type: OrderType::Limit,
            tif: TimeInForce::Gtc,
            price: Price::parse("60000").unwrap(),
            qty: Qty::parse("0.001").unwrap(),
            reduce_only: false,
        }
    }

    #[test]
    fn binance_gateway_requests_pass_and_tampering_fails_with_real_codes() {
        let acct = vec![Signer::new("k1", "s1")];
        let now = 1_700_000_000_000;
        let r = binance::rest_new_order(&acct[0], &order(Venue::BinanceUsdm), now - 200);
        let params = verify_binance(&acct, r.header("X-MBX-APIKEY"), &r.query, "", now).unwrap();
        assert!(params
            .iter()
            .any(|(k, v)| k == "newClientOrderId" && v == "qa-1"));
        let code = |e: Refusal| parse_binance(e.http_status, e.body.as_bytes()).unwrap();
        let e = code(verify_binance(&acct, Some("k2"), &r.query, "", now).unwrap_err());
        assert_eq!((e.code, e.kind), (-2015, ErrorKind::Auth));
        let tampered = r.query.replace("price=60000", "price=60001");
        assert_eq!(
            code(verify_binance(&acct, Some("k1"), &tampered, "", now).unwrap_err()).code,
            -1022
        );
        let e = code(verify_binance(&acct, Some("k1"), &r.query, "", now + 6000).unwrap_err());
        assert_eq!((e.code, e.kind), (-1021, ErrorKind::Timestamp));
        // 1000 ms ahead of the server is refused too.
        let ahead = binance::rest_new_order(&acct[0], &order(Venue::BinanceUsdm), now + 1500);
        assert_eq!(
            code(verify_binance(&acct, Some("k1"), &ahead.query, "", now).unwrap_err()).code,
            -1021
        );
    }

    #[test]
    fn bybit_gateway_requests_pass_and_tampering_fails_with_real_codes() {
        let acct = vec![Signer::new("bk", "bs")];
        let now = 1_700_000_000_000;
        let r = bybit::rest_create(&acct[0], &order(Venue::BybitLinear), now - 100);
        let h = |r: &crate::gateway::SignedRequest| {
            let r = r.clone();
            move |k: &str| r.header(k).map(str::to_string)
        };
        verify_bybit(&acct, h(&r), &r.body, now).unwrap();
        let code = |e: Refusal| parse_bybit(e.http_status, e.body.as_bytes()).unwrap();
        let tampered = r.body.replace("0.001", "0.002");
        assert_eq!(
            code(verify_bybit(&acct, h(&r), &tampered, now).unwrap_err()).code,
            10004
        );
        let e = code(verify_bybit(&acct, h(&r), &r.body, now + 10_000).unwrap_err());
        assert_eq!((e.code, e.kind), (10002, ErrorKind::Timestamp));
        let other = vec![Signer::new("zz", "bs")];
        assert_eq!(
            code(verify_bybit(&other, h(&r), &r.body, now).unwrap_err()).kind,
            ErrorKind::Auth
        );
    }
}
