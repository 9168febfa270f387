//! Loopback TLS WebSocket latency: a frame written by a server on 127.0.0.1 → the decoded
//! `MarketEvent` on the feed side, with the feed thread busy-polling (`spin`: zero-timeout
//! `mio::Poll::poll`) versus sleeping in epoll (`epoll`: `poll(None)`, woken by readiness).
//!
//! The server (the mock exchange's TLS certificate and WebSocket upgrade, tungstenite over rustls)
//! sends Binance `bookTicker` frames whose `u` indexes a table of send times taken with the
//! process-wide clock right before each `write`; the client decodes each frame with `BinanceFeed`
//! and records `decoded_ns − send_ns` in an `hdrhistogram`. Frames are paced 50 µs apart so each is
//! measured on its own, not queued behind the previous one. Both threads are pinned when the machine
//! has the cores (server on the last core, client on the one before).
//!
//! Run: `cargo bench -p qalpha-bench --bench ws_latency`.

use std::io::Write;
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::{Events, Poll, Token};
use qalpha_engine::clock::now_ns;
use qalpha_engine::event::{MarketEvent, MarketPayload};
use qalpha_engine::ring::PushOutcome;
use qalpha_feeds::binance::feed::EventSink;
use qalpha_feeds::binance::BinanceFeed;
use qalpha_feeds::transport::url::Endpoint;
use qalpha_feeds::transport::ws::WsClient;
use qalpha_venues::mock::certs::MockCerts;
use qalpha_venues::mock::http::{accept_websocket, read_request};
use qalpha_venues::mock::server::ServerIo;
use rustls::{ServerConnection, StreamOwned};
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

const FRAMES: usize = 20_000;
const WARMUP: usize = 2_000;
const GAP: Duration = Duration::from_micros(50);

struct Sink(Vec<MarketEvent>);
impl EventSink for Sink {
    fn emit(&mut self, ev: MarketEvent) -> PushOutcome {
        self.0.push(ev);
        PushOutcome::Pushed
    }
}

/// Pins the calling thread (this harness's two threads are its own; the engine's runtime pins its
/// workers the same way, from an unpinned parent).
fn pin(core: Option<usize>) {
    if let Some(id) = core {
        if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
            eprintln!("could not pin to core {id}; running unpinned");
        }
    }
}

fn run(spin: bool, server_core: Option<usize>, client_core: Option<usize>) -> Histogram<u64> {
    let certs = MockCerts::generate().expect("certs");
    let dir = std::env::temp_dir().join(format!("qa-wslat-{}", std::process::id()));
    let ca = certs.write_ca(&dir).expect("ca");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..FRAMES).map(|_| AtomicU64::new(0)).collect());
    let cfg = certs.server_config.clone();
    let sent2 = sent.clone();
    let server = std::thread::spawn(move || {
        pin(server_core);
        let (sock, _) = listener.accept().expect("accept");
        sock.set_nodelay(true).ok();
        let conn = ServerConnection::new(cfg).expect("tls");
        let mut io = ServerIo::Tls(Box::new(StreamOwned::new(conn, sock)));
        let req = read_request(&mut io).expect("request");
        accept_websocket(&mut io, &req).expect("upgrade");
        let mut ws = WebSocket::from_raw_socket(io, Role::Server, None);
        std::thread::sleep(Duration::from_millis(200));
        let mut next = Instant::now();
        for u in 0..FRAMES {
            while Instant::now() < next {
                std::hint::spin_loop();
            }
            next += GAP;
            let text = format!(
                r#"{{"e":"bookTicker","u":{u},"s":"BTCUSDT","b":"63943.90","B":"46.371","a":"63944.00","A":"0.095","T":1721347022507,"E":1721347022507}}"#
            );
            sent2[u].store(now_ns(), Ordering::Release);
            ws.send(Message::text(text)).expect("send");
            ws.get_mut().flush().ok();
        }
        std::thread::sleep(Duration::from_millis(200));
    });

    pin(client_core);
    let tls = qalpha_feeds::transport::tls::client_config(Some(&ca)).expect("client tls");
    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(64);
    let ep = Endpoint::parse(&format!("wss://{addr}/ws/btcusdt@bookTicker")).expect("url");
    let mut client =
        WsClient::connect(addr, ep, Some(tls), poll.registry(), Token(0)).expect("connect");
    let mut feed = BinanceFeed::new();
    let mut sink = Sink(Vec::with_capacity(16));
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("hist");
    let mut seen = 0usize;
    let timeout = if spin { Some(Duration::ZERO) } else { None };
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen < FRAMES && Instant::now() < deadline {
        poll.poll(
            &mut events,
            if spin {
                timeout
            } else {
                Some(Duration::from_millis(100))
            },
        )
        .ok();
        if events.is_empty() && spin {
            continue;
        }
        let r = client.drive(&mut |recv_ns, _, payload| {
            sink.0.clear();
            feed.on_ws_frame(recv_ns, payload, &mut sink);
            for ev in &sink.0 {
                if let MarketPayload::Quote(q) = ev.payload {
                    let u = q.update_id as usize;
                    if u < FRAMES {
                        let s = sent[u].load(Ordering::Acquire);
                        if u >= WARMUP && s != 0 {
                            hist.record(ev.decoded_ns.saturating_sub(s).max(1)).ok();
                        }
                        seen = seen.max(u + 1);
                    }
                }
            }
        });
        if r.is_err() {
            break;
        }
    }
    server.join().ok();
    let _ = std::fs::remove_dir_all(&dir);
    hist
}

fn main() {
    let cores = qalpha_engine::runtime::available_cores();
    let (server_core, client_core) = if cores.len() >= 2 {
        (cores.last().copied(), cores.get(cores.len() - 2).copied())
    } else {
        (None, None)
    };
    println!(
        "ws_latency: {} frames ({} warm-up) {} µs apart, loopback TLS 1.3; server core {:?}, client core {:?}",
        FRAMES,
        WARMUP,
        GAP.as_micros(),
        server_core,
        client_core
    );
    println!(
        "{:<8} {:>8} {:>9} {:>9} {:>9} {:>10} {:>10}",
        "mode", "frames", "p50 µs", "p90 µs", "p99 µs", "p99.9 µs", "max µs"
    );
    for (name, spin) in [("spin", true), ("epoll", false)] {
        let h = run(spin, server_core, client_core);
        let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "{:<8} {:>8} {:>9.1} {:>9.1} {:>9.1} {:>10.1} {:>10.1}",
            name,
            h.len(),
            us(0.5),
            us(0.9),
            us(0.99),
            us(0.999),
            h.max() as f64 / 1000.0
        );
    }
}
