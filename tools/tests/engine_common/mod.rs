//! Helpers for the tests that run `qalpha run` against the mock exchange: the mock on the bundled
//! capture, a config pointing at it, the binary with a clean environment, a plain HTTP GET.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;

use qalpha_engine::event::Venue;
use qalpha_engine::replay::Speed;
use qalpha_venues::mock::{FaultSpec, MarketSource, MockExchange, MockOptions};

pub const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/sample/btcusdt-usdm-20230404.qcap"
);

pub fn mock(dir: &Path) -> MockExchange {
    MockExchange::start(MockOptions {
        venue: Venue::BinanceUsdm,
        source: MarketSource::Capture(SAMPLE.into()),
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: true,
        cert_out: Some(dir.to_path_buf()),
        speed: Speed::Factor(5.0),
        faults: FaultSpec::default(),
        seed: 7,
    })
    .unwrap()
}

pub fn config(mode: &str, m: &MockExchange) -> String {
    let a = m.addr;
    format!(
        r#"mode = "{mode}"

[[venues]]
venue = "binance"
ws_url = "wss://{a}"
rest_url = "https://{a}"
symbols = ["BTCUSDT"]
streams = ["depth@0ms", "bookTicker", "trade"]
ca_file = "{}"
order_ws_url = "wss://{a}/ws-fapi/v1"
private_ws_url = "wss://{a}/private"
order_via = "ws"

[risk]
daily_loss_limit = 1000
"#,
        m.ca_file.as_ref().unwrap().display()
    )
}

pub fn qalpha() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_qalpha"));
    c.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env_remove("QALPHA_KEYSTORE")
        .env_remove("QALPHA_BINANCE_API_KEY")
        .env_remove("QALPHA_BINANCE_API_SECRET");
    c
}

pub fn get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    buf.split_once("\r\n\r\n").unwrap().1.to_string()
}
