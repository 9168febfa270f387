//! The demo's (and the latency bench's) wiring to the mock exchange: the mock serving a capture, the
//! feed's plan against it, the gateway's settings for its order API.

use anyhow::{Context, Result};
use qalpha_engine::event::Venue;
use qalpha_engine::replay::Speed;
use qalpha_engine::runtime::WaitMode;
use qalpha_engine::Symbol;
use qalpha_feeds::live::{plan_venue, VenuePlan};
use qalpha_venues::gateway::session::{GatewayConfig, Via};
use qalpha_venues::mock::{FaultSpec, MarketSource, MockExchange, MockOptions};
use qalpha_venues::sign::Signer;

use crate::live_cmd::{effective_config, RecordOverrides};

/// The mock exchange serving `capture` as Binance USD-M over TLS (its CA written to `cert_dir`),
/// paced at `speed`× the recorded pace, with `faults`.
pub(crate) fn start_mock(
    capture: &std::path::Path,
    speed: f64,
    faults: FaultSpec,
    cert_dir: &std::path::Path,
) -> Result<MockExchange> {
    MockExchange::start(MockOptions {
        venue: Venue::BinanceUsdm,
        source: MarketSource::Capture(capture.to_path_buf()),
        listen: "127.0.0.1:0".parse()?,
        tls: true,
        cert_out: Some(cert_dir.to_path_buf()),
        speed: Speed::Factor(speed),
        faults,
        seed: 7,
    })
    .context("mock exchange")
}

/// The feed's plan against `mock`: `symbol`'s depth@0ms, bookTicker and trade streams plus the REST
/// snapshots, as `qalpha record` would subscribe them.
pub(crate) fn mock_feed_plans(
    mock: &MockExchange,
    symbol: Symbol,
    wait: WaitMode,
) -> Result<Vec<VenuePlan>> {
    let cfg = effective_config(
        None,
        &RecordOverrides {
            venue: Some("binance".into()),
            symbols: Some(vec![symbol.to_string()]),
            streams: Some(vec![
                "depth@0ms".into(),
                "bookTicker".into(),
                "trade".into(),
            ]),
            ws_url: Some(format!("wss://{}", mock.addr)),
            rest_url: Some(format!("https://{}", mock.addr)),
            ca_file: mock.ca_file.clone(),
            wait: Some(wait),
        },
    )?;
    let plan = plan_venue(&cfg.venues[0]).map_err(|e| anyhow::anyhow!("venue binance: {e}"))?;
    Ok(vec![plan])
}

/// The gateway's settings for the mock: orders over its ws-fapi WebSocket API, fills from its
/// user-data stream, the test account's keys.
pub(crate) fn mock_gateway_config(mock: &MockExchange, symbol: Symbol) -> GatewayConfig {
    let signer = Signer::new(
        qalpha_venues::mock::TEST_API_KEY,
        qalpha_venues::mock::TEST_API_SECRET,
    );
    let mut gc = GatewayConfig::new(
        Venue::BinanceUsdm,
        &format!("https://{}", mock.addr),
        signer,
    );
    gc.ca_file = mock.ca_file.clone();
    gc.via = Via::Ws;
    gc.order_ws_url = Some(format!("wss://{}/ws-fapi/v1", mock.addr));
    gc.private_ws_url = Some(format!("wss://{}/private", mock.addr));
    gc.symbols = vec![symbol];
    gc
}
