//! The mock exchange, market-data side: a real server on loopback that speaks Binance USD-M's and
//! Bybit v5's public protocols (TLS with its own CA, WebSocket framing, subscription messages, REST
//! depth snapshots consistent with the stream), fed by a recorded capture or a synthetic market, with
//! fault injection. It is what the integration tests, the demo and the latency benchmarks talk to.
//! Order entry over REST ([`orders`]): both venues' order endpoints, authenticated against the mock's
//! accounts (default: one test account, `qa-test-key` / `qa-test-secret`), matched by the fill model
//! against the book being served.

pub mod auth;
pub mod book;
pub mod certs;
pub mod deadman;
pub mod faults;
pub mod http;
pub mod instruments;
pub mod market;
pub mod orders;
mod orders_binance;
mod orders_bybit;
pub mod positions;
mod private_binance;
mod private_bybit;
pub mod probe;
mod rest_market;
pub mod rng;
pub mod server;
pub mod source;
mod stamped;
pub mod synthetic;
mod ws_binance;
mod ws_bybit;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use qalpha_engine::event::Venue;
use qalpha_engine::replay::Speed;

pub use faults::{FaultSpec, FAULT_HELP};
pub use orders::{default_accounts, TEST_API_KEY, TEST_API_SECRET};
pub use server::MockCounters;
pub use synthetic::SyntheticSpec;

/// Mock exchange errors.
#[derive(Debug, thiserror::Error)]
pub enum MockError {
    #[error("mock exchange configuration: {0}")]
    Config(String),
    #[error("mock exchange certificates: {0}")]
    Certs(String),
    #[error("mock exchange I/O: {0}")]
    Io(String),
}

/// Where the market comes from.
#[derive(Clone, Debug)]
pub enum MarketSource {
    /// Replay a `.qcap` capture of this venue.
    Capture(PathBuf),
    /// Generate a random-walk market.
    Synthetic(SyntheticSpec),
}

/// Mock settings.
#[derive(Clone, Debug)]
pub struct MockOptions {
    pub venue: Venue,
    pub source: MarketSource,
    /// `127.0.0.1:0` picks a free port.
    pub listen: SocketAddr,
    /// Serve TLS (default) or plaintext (for tcpdump captures).
    pub tls: bool,
    /// Where to write `ca.pem` (TLS only).
    pub cert_out: Option<PathBuf>,
    pub speed: Speed,
    pub faults: FaultSpec,
    pub seed: u64,
}

/// A running mock exchange. Dropping it stops it.
pub struct MockExchange {
    pub addr: SocketAddr,
    /// PEM of the CA that signed the server certificate (TLS only).
    pub ca_pem: Option<String>,
    /// Path of the written `ca.pem`, if `cert_out` was given.
    pub ca_file: Option<PathBuf>,
    pub counters: Arc<MockCounters>,
    pub hub: Arc<market::Hub>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl MockExchange {
    /// Binds, prepares the market and starts serving, accepting orders from the default test
    /// account ([`default_accounts`]: `qa-test-key` / `qa-test-secret`).
    pub fn start(opts: MockOptions) -> Result<Self, MockError> {
        Self::start_with_accounts(opts, default_accounts())
    }

    /// [`MockExchange::start`] with the accounts (API key + secret) whose signed order requests
    /// the mock accepts; any other key gets the venue's invalid-key error.
    pub fn start_with_accounts(
        opts: MockOptions,
        accounts: Vec<crate::sign::Signer>,
    ) -> Result<Self, MockError> {
        let listener = TcpListener::bind(opts.listen)
            .map_err(|e| MockError::Io(format!("bind {}: {e}", opts.listen)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| MockError::Io(e.to_string()))?;
        let (tls, ca_pem, ca_file) = if opts.tls {
            let certs = certs::MockCerts::generate()?;
            let file = match &opts.cert_out {
                Some(dir) => Some(certs.write_ca(dir)?),
                None => None,
            };
            (
                Some(certs.server_config.clone()),
                Some(certs.ca_pem.clone()),
                file,
            )
        } else {
            (None, None, None)
        };
        let hub = Arc::new(market::Hub::new(1 << 16));
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(MockCounters::default());
        let mut threads = Vec::new();

        let (venue, speed) = (opts.venue, opts.speed);
        match opts.source {
            MarketSource::Capture(path) => {
                let mut tape = source::CaptureTape::load(&path, venue)?;
                if tape.venue != venue {
                    return Err(MockError::Config("capture venue mismatch".into()));
                }
                // Seeded before the listener starts: a client asking for the instrument list at
                // once (the gateway's rules) must find the capture's symbols, not a race.
                tape.seed(&hub);
                let (hub, stop) = (hub.clone(), stop.clone());
                threads.push(spawn("mock-tape", move || tape.play(hub, speed, &stop))?);
            }
            MarketSource::Synthetic(spec) => {
                let (hub, stop) = (hub.clone(), stop.clone());
                let restart = opts.faults.venue_restart;
                threads.push(spawn("mock-synthetic", move || {
                    synthetic::run(venue, spec, hub, speed, restart, &stop)
                })?);
            }
        }
        let ctx = Arc::new(server::Ctx {
            venue,
            hub: hub.clone(),
            tls,
            faults: opts.faults,
            started: Instant::now(),
            stop: stop.clone(),
            counters: counters.clone(),
            seed: opts.seed,
            weight: Mutex::new((Instant::now(), 0)),
            orders: orders::OrderDesk::new(accounts, opts.seed),
            deadman: Mutex::new(deadman::DeadMan::default()),
            listen_keys: Mutex::new(private_binance::ListenKeys::new(opts.seed)),
            snapshot_draws: Default::default(),
        });
        {
            let ctx = ctx.clone();
            threads.push(spawn("mock-deadman", move || {
                while !ctx.stop.load(Ordering::Relaxed) {
                    deadman::tick(&ctx);
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            })?);
        }
        threads.push(spawn("mock-listener", move || {
            server::serve(listener, ctx)
        })?);
        Ok(Self {
            addr,
            ca_pem,
            ca_file,
            counters,
            hub,
            stop,
            threads,
        })
    }

    /// True once a capture tape has been played to its end.
    pub fn tape_finished(&self) -> bool {
        self.hub.finished.load(Ordering::Acquire)
    }

    /// Stops the market (no frame published, nothing on the book moves, no resting order fills)
    /// until [`MockExchange::resume`]; order entry and queries keep working. Playback resumes on
    /// its schedule shifted by the pause.
    pub fn pause(&self) {
        self.hub.paused.store(true, Ordering::Release);
    }

    /// Lets the market run again after [`MockExchange::pause`].
    pub fn resume(&self) {
        self.hub.paused.store(false, Ordering::Release);
    }

    /// Stops serving and joins the mock's own threads (connection threads end on their own).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for MockExchange {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, MockError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(|e| MockError::Io(format!("spawn {name}: {e}")))
}
