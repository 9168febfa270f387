//! The mock's market-data REST endpoints (Binance `GET /fapi/v1/depth`, `/fapi/v1/time`; Bybit
//! `GET /v5/market/orderbook`, `/v5/market/time`) and the depth snapshot's faults:
//! `snapshot-delay=DUR` answers that much later (a client timeout), `snapshot-fail=P` answers the
//! venue's internal error (Binance HTTP 503 `-1001`, Bybit `retCode` 10016) with probability P.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use qalpha_engine::event::Venue;

use super::http::{respond, skip_body, Request};
use super::rng::Rng;
use super::server::{Ctx, ServerIo};

/// The snapshot faults: `Some(result)` when the request was answered (or dropped) by one.
fn snapshot_fault(io: &mut ServerIo, ctx: &Ctx) -> Option<std::io::Result<()>> {
    let f = &ctx.faults;
    if let Some(d) = f.snapshot_delay {
        std::thread::sleep(d);
    }
    let n = ctx.snapshot_draws.fetch_add(1, Ordering::Relaxed);
    if !Rng::new(ctx.seed ^ n.wrapping_mul(0x5851_F42D_4C95_7F2D)).chance(f.snapshot_fail) {
        return None;
    }
    ctx.counters.snapshot_faults.fetch_add(1, Ordering::Relaxed);
    Some(match ctx.venue {
        Venue::BinanceUsdm => respond(
            io,
            503,
            "Service Unavailable",
            &[],
            br#"{"code":-1001,"msg":"Internal error; unable to process your request. Please try again."}"#,
        ),
        Venue::BybitLinear => respond(
            io,
            200,
            "OK",
            &[],
            br#"{"retCode":10016,"retMsg":"Internal system error.","result":{},"retExtInfo":{},"time":0}"#,
        ),
    })
}

pub(super) fn rest(io: &mut ServerIo, req: &Request, ctx: &Ctx) -> std::io::Result<()> {
    if super::orders::handles(ctx.venue, req.path()) {
        return super::orders::serve(io, req, ctx);
    }
    // Market-data paths take no body; one sent anyway must not be read as the next request.
    skip_body(io, req)?;
    let limit = req.query("limit").and_then(|l| l.parse::<usize>().ok());
    let symbol = req.query("symbol").unwrap_or("").to_ascii_uppercase();
    if matches!(
        (ctx.venue, req.path()),
        (Venue::BinanceUsdm, "/fapi/v1/depth") | (Venue::BybitLinear, "/v5/market/orderbook")
    ) {
        if let Some(done) = snapshot_fault(io, ctx) {
            return done;
        }
    }
    match (ctx.venue, req.path()) {
        (Venue::BinanceUsdm, "/fapi/v1/depth") => {
            let limit = limit.unwrap_or(500);
            let weight = match limit {
                0..=50 => 2,
                51..=100 => 5,
                101..=500 => 10,
                _ => 20,
            };
            let used = {
                let mut w = ctx.weight.lock().unwrap_or_else(|p| p.into_inner());
                if w.0.elapsed() >= Duration::from_secs(60) {
                    *w = (Instant::now(), 0);
                }
                w.1 += weight;
                w.1
            };
            let hdr = [("X-MBX-USED-WEIGHT-1M", used.to_string())];
            if used > 2400 {
                return respond(
                    io,
                    429,
                    "Too Many Requests",
                    &hdr,
                    br#"{"code":-1003,"msg":"Too many requests."}"#,
                );
            }
            let body = ctx.hub.with_symbol(&symbol, |s| {
                s.map(|s| {
                    format!(
                        "{{\"lastUpdateId\":{},\"E\":{},\"T\":{},\"bids\":{},\"asks\":{}}}",
                        s.last_update_id,
                        s.last_ms,
                        s.last_ms,
                        s.book.levels_json(true, limit),
                        s.book.levels_json(false, limit)
                    )
                })
            });
            match body {
                Some(b) => respond(io, 200, "OK", &hdr, b.as_bytes()),
                None => respond(
                    io,
                    400,
                    "Bad Request",
                    &hdr,
                    br#"{"code":-1121,"msg":"Invalid symbol."}"#,
                ),
            }
        }
        (Venue::BinanceUsdm, "/fapi/v1/time") => {
            let body = format!("{{\"serverTime\":{}}}", ctx.clock_ns() / 1_000_000);
            respond(io, 200, "OK", &[], body.as_bytes())
        }
        (Venue::BybitLinear, "/v5/market/time") => {
            let ns = ctx.clock_ns();
            let (secs, ms) = (ns / 1_000_000_000, ns / 1_000_000);
            let body = format!("{{\"retCode\":0,\"retMsg\":\"OK\",\"result\":{{\"timeSecond\":\"{secs}\",\"timeNano\":\"{ns}\"}},\"retExtInfo\":{{}},\"time\":{ms}}}");
            respond(io, 200, "OK", &[], body.as_bytes())
        }
        (Venue::BybitLinear, "/v5/market/orderbook") => {
            let limit = limit.unwrap_or(25);
            let body = ctx.hub.with_symbol(&symbol, |s| {
                s.map(|s| {
                    let u = s.topic_u.values().copied().max().unwrap_or(0);
                    format!(
                        "{{\"retCode\":0,\"retMsg\":\"OK\",\"result\":{{\"s\":\"{symbol}\",\"b\":{},\"a\":{},\"ts\":{},\"u\":{u},\"seq\":{},\"cts\":{}}},\"retExtInfo\":{{}},\"time\":{}}}",
                        s.book.levels_json(true, limit),
                        s.book.levels_json(false, limit),
                        s.last_ms,
                        s.seq,
                        s.last_ms,
                        s.last_ms
                    )
                })
            });
            let body = body.unwrap_or_else(|| "{\"retCode\":10001,\"retMsg\":\"params error: symbol invalid\",\"result\":{},\"retExtInfo\":{},\"time\":0}".into());
            respond(io, 200, "OK", &[], body.as_bytes())
        }
        _ => respond(
            io,
            404,
            "Not Found",
            &[],
            br#"{"code":-1,"msg":"not found"}"#,
        ),
    }
}
