//! Operator order commands over REST (and, with `--via ws`, `order` / `cancel` over the venue's
//! order WebSocket — see [`crate::order_ws`]): `qalpha order`, `qalpha cancel`, `qalpha cancel-all`,
//! `qalpha open-orders`, `qalpha positions`.
//!
//! Each command reads the API key from `QALPHA_<VENUE>_API_KEY` / `QALPHA_<VENUE>_API_SECRET`,
//! syncs to the venue's clock (`GET /fapi/v1/time` or `GET /v5/market/time`), signs with the
//! gateway encoders (`qalpha_venues::gateway`), sends one request and prints the venue's JSON
//! answer. A venue error (Binance `code`, Bybit `retCode`) is returned as an error naming the venue,
//! its code and its message, so the binary exits non-zero. Instrument rules are checked locally
//! only when the operator passes `--tick` / `--step` (loading exchangeInfo comes later).
//!
//! Against the mock exchange: `QALPHA_BINANCE_API_KEY=qa-test-key
//! QALPHA_BINANCE_API_SECRET=qa-test-secret qalpha order --venue binance --rest-url
//! https://127.0.0.1:PORT --ca-file DIR/ca.pem …`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use qalpha_engine::order::{
    ClientIdGen, ClientOrderId, NewOrder, OrderAction, OrderType, TimeInForce,
};
use qalpha_engine::transport::{rest, TransportError};
use qalpha_engine::{Price, Qty, Side, Symbol, Venue};
use qalpha_venues::clock_sync::{parse_binance_time, parse_bybit_time, ClockOffset, TimeSample};
use qalpha_venues::endpoints::{defaults, Mode};
use qalpha_venues::errors::{parse_binance, parse_bybit};
use qalpha_venues::gateway::protocol::Protocol;
use qalpha_venues::gateway::{binance, bybit, SignedRequest};
use qalpha_venues::instrument::InstrumentRules;
use qalpha_venues::sign::Signer;

/// How long one REST request may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Where to send: venue, REST base URL, CA.
#[derive(clap::Args, Clone, Debug)]
pub struct ConnArgs {
    /// binance or bybit.
    #[arg(long)]
    pub venue: String,
    /// REST base URL (default: the venue's URL for `--mode`). For the mock: https://127.0.0.1:PORT.
    #[arg(long)]
    pub rest_url: Option<String>,
    /// PEM CA certificate to trust (the mock's `ca.pem`).
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Send `order` / `cancel` over the venue's order WebSocket (`ws`: Binance ws-fapi, Bybit Trade
    /// WS) or REST (`rest`, the default; other commands always use REST).
    #[arg(long, default_value = "rest")]
    pub via: String,
    /// Which of the venue's environments the default URLs point at: `live` (default) or `testnet`.
    #[arg(long, default_value = "live")]
    pub mode: String,
    /// Order WebSocket URL (default: the venue's URL for `--mode`). For the mock:
    /// wss://127.0.0.1:PORT/ws-fapi/v1 (Binance) or wss://127.0.0.1:PORT/v5/trade (Bybit).
    #[arg(long)]
    pub ws_url: Option<String>,
    /// Keys from the encrypted key store (`qalpha keys`) instead of the environment.
    #[command(flatten)]
    pub store: crate::keys_cmd::StoreArgs,
}

/// `qalpha order`.
#[derive(clap::Args, Clone, Debug)]
pub struct OrderArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[arg(long)]
    pub symbol: String,
    /// buy or sell.
    #[arg(long)]
    pub side: String,
    /// limit or market.
    #[arg(long = "type")]
    pub order_type: String,
    /// Limit price (required for limit orders).
    #[arg(long)]
    pub price: Option<String>,
    /// Quantity in base units.
    #[arg(long)]
    pub qty: String,
    /// Maker only (Binance GTX, Bybit PostOnly).
    #[arg(long)]
    pub post_only: bool,
    #[arg(long)]
    pub reduce_only: bool,
    /// Immediate or cancel.
    #[arg(long)]
    pub ioc: bool,
    /// Client order id (default: a fresh one, unique across restarts).
    #[arg(long)]
    pub client_id: Option<String>,
    /// Tick size to check the price against before sending (e.g. 0.1).
    #[arg(long)]
    pub tick: Option<String>,
    /// Lot step to check the quantity against before sending (e.g. 0.001).
    #[arg(long)]
    pub step: Option<String>,
}

/// `qalpha cancel`.
#[derive(clap::Args, Clone, Debug)]
pub struct CancelArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[arg(long)]
    pub symbol: String,
    /// Client order id of the order to cancel.
    #[arg(long)]
    pub client_id: String,
}

/// `qalpha open-orders`.
#[derive(clap::Args, Clone, Debug)]
pub struct OpenOrdersArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[arg(long)]
    pub symbol: String,
}

/// `qalpha cancel-all`.
#[derive(clap::Args, Clone, Debug)]
pub struct CancelAllArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[arg(long)]
    pub symbol: String,
}

/// `qalpha positions`.
#[derive(clap::Args, Clone, Debug)]
pub struct PositionsArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// One symbol (default: every symbol; on Bybit every USDT-settled one).
    #[arg(long)]
    pub symbol: Option<String>,
}

/// One HTTP exchange: method, URL, headers, body (the TLS configuration is captured inside).
type Transport = Box<
    dyn Fn(&str, &str, &[(String, String)], &[u8]) -> Result<rest::HttpResponse, TransportError>,
>;

/// A signed-request session with one venue: keys, transport, clock offset.
struct Session {
    venue: Venue,
    base: String,
    signer: Signer,
    http: Transport,
    clock: ClockOffset,
}

/// The signing keys: the key store when one is named, else the environment.
fn signer_for(c: &ConnArgs, venue: Venue) -> Result<Signer> {
    let k = crate::keys_cmd::load_keys(&c.store, venue)?;
    Ok(Signer::new(k.key, k.secret))
}

fn mode_of(c: &ConnArgs) -> Result<Mode> {
    match c.mode.parse::<Mode>() {
        Ok(Mode::Paper) => bail!("--mode paper sends no orders: use live or testnet"),
        Ok(m) => Ok(m),
        Err(e) => bail!("invalid --mode {:?}: {e}", c.mode),
    }
}

fn venue_of(name: &str) -> Result<Venue> {
    Venue::from_name(name).ok_or_else(|| anyhow!("unknown venue {name:?}: use binance or bybit"))
}

fn symbol_of(s: &str) -> Result<Symbol> {
    Symbol::parse(&s.to_ascii_uppercase()).ok_or_else(|| anyhow!("invalid symbol {s:?}"))
}

impl Session {
    fn open(c: &ConnArgs) -> Result<Self> {
        let venue = venue_of(&c.venue)?;
        let mode = mode_of(c)?;
        let signer = signer_for(c, venue)?;
        let base = c
            .rest_url
            .clone()
            .unwrap_or_else(|| defaults(venue, mode).rest);
        Self::with(venue, &base, c.ca_file.as_deref(), signer)
    }

    fn with(
        venue: Venue,
        base: &str,
        ca_file: Option<&std::path::Path>,
        signer: Signer,
    ) -> Result<Self> {
        let base = base.trim_end_matches('/').to_string();
        let tls = if base.starts_with("https://") {
            Some(qalpha_engine::transport::tls::client_config(ca_file)?)
        } else {
            None
        };
        let http: Transport = Box::new(move |method, url, headers, body| {
            rest::request(method, url, headers, body, tls.as_ref(), TIMEOUT)
        });
        let mut s = Self {
            venue,
            base,
            signer,
            http,
            clock: ClockOffset::default(),
        };
        s.sync_clock()?;
        Ok(s)
    }

    /// One server-time round trip, so the signed `timestamp` is inside the venue's window.
    fn sync_clock(&mut self) -> Result<()> {
        let path = match self.venue {
            Venue::BinanceUsdm => "/fapi/v1/time",
            Venue::BybitLinear => "/v5/market/time",
        };
        let url = format!("{}{path}", self.base);
        let sent_ns = qalpha_engine::clock::now_ns();
        let r = (self.http)("GET", &url, &[], b"")
            .with_context(|| format!("{} server time", self.venue.name()))?;
        let recv_ns = qalpha_engine::clock::now_ns();
        let server_ms = match self.venue {
            Venue::BinanceUsdm => parse_binance_time(&r.body),
            Venue::BybitLinear => parse_bybit_time(&r.body),
        }
        .ok_or_else(|| anyhow!("{url}: no server time in the answer (HTTP {})", r.status))?;
        self.clock.add(TimeSample {
            sent_ns,
            server_ms,
            recv_ns,
        });
        Ok(())
    }

    fn timestamp_ms(&self) -> u64 {
        self.clock.server_ms(qalpha_engine::clock::now_ns())
    }

    /// Whether `--via ws` was asked for (`rest` otherwise; anything else is an error).
    fn via_ws(c: &ConnArgs) -> Result<bool> {
        match c.via.as_str() {
            "ws" => Ok(true),
            "rest" => Ok(false),
            v => bail!("invalid --via {v:?}: use ws or rest"),
        }
    }

    /// Sends one order-WebSocket request built from `action`; the venue's answer as JSON text.
    fn send_ws(
        &self,
        c: &ConnArgs,
        symbol: Symbol,
        action: &OrderAction,
        side: Side,
    ) -> Result<String> {
        let mode = mode_of(c)?;
        let url = c
            .ws_url
            .clone()
            .unwrap_or_else(|| defaults(self.venue, mode).order_ws);
        let proto = Protocol::new(self.venue, self.signer.clone());
        let ts = self.timestamp_ms();
        crate::order_ws::exchange(
            self.venue,
            &url,
            c.ca_file.as_deref(),
            &self.signer,
            ts + 10_000,
            |id| proto.ws_order(id, symbol, action, side, ts),
        )
    }

    /// Sends a signed request; the body on success, the venue's typed error otherwise.
    fn send(&self, req: &SignedRequest) -> Result<String> {
        let url = format!("{}{}", self.base, req.target());
        let r = (self.http)(req.method.as_str(), &url, &req.headers, req.body.as_bytes())
            .with_context(|| format!("{} {}", req.method.as_str(), url))?;
        let err = match self.venue {
            Venue::BinanceUsdm => parse_binance(r.status, &r.body),
            Venue::BybitLinear => parse_bybit(r.status, &r.body),
        };
        if let Some(e) = err {
            bail!(e);
        }
        Ok(String::from_utf8_lossy(&r.body).into_owned())
    }
}

/// Builds the order from the operator's flags (and checks `--tick` / `--step` if given).
pub fn build_order(a: &OrderArgs) -> Result<NewOrder> {
    let venue = venue_of(&a.conn.venue)?;
    let symbol = symbol_of(&a.symbol)?;
    let side = match a.side.to_ascii_lowercase().as_str() {
        "buy" => Side::Buy,
        "sell" => Side::Sell,
        s => bail!("invalid --side {s:?}: use buy or sell"),
    };
    let order_type = match a.order_type.to_ascii_lowercase().as_str() {
        "limit" => OrderType::Limit,
        "market" => OrderType::Market,
        t => bail!("invalid --type {t:?}: use limit or market"),
    };
    let qty = Qty::parse(&a.qty).map_err(|e| anyhow!("invalid --qty {:?}: {e}", a.qty))?;
    let price = match (order_type, &a.price) {
        (OrderType::Limit, Some(p)) => {
            Price::parse(p).map_err(|e| anyhow!("invalid --price {p:?}: {e}"))?
        }
        (OrderType::Limit, None) => bail!("a limit order needs --price"),
        (OrderType::Market, Some(_)) => bail!("a market order takes no --price"),
        (OrderType::Market, None) => Price::ZERO,
    };
    let tif = match (a.post_only, a.ioc, order_type) {
        (true, true, _) => bail!("--post-only and --ioc exclude each other"),
        (true, false, OrderType::Market) => bail!("a market order cannot be --post-only"),
        (true, false, _) => TimeInForce::PostOnly,
        (false, true, _) | (false, false, OrderType::Market) => TimeInForce::Ioc,
        (false, false, OrderType::Limit) => TimeInForce::Gtc,
    };
    let client_id = match &a.client_id {
        Some(c) => ClientOrderId::parse(c).ok_or_else(|| {
            anyhow!("invalid --client-id {c:?}: 1 to 31 characters of [A-Za-z0-9_-]")
        })?,
        None => ClientIdGen::from_clock().next_id(),
    };
    let order = NewOrder {
        venue,
        symbol,
        client_id,
        side,
        order_type,
        tif,
        price,
        qty,
        reduce_only: a.reduce_only,
    };
    if a.tick.is_some() || a.step.is_some() {
        let parse = |flag: &str, v: &Option<String>| -> Result<i64> {
            v.as_deref().map_or(Ok(0), |s| {
                Price::parse(s)
                    .map(|p| p.raw())
                    .map_err(|e| anyhow!("invalid --{flag} {s:?}: {e}"))
            })
        };
        let rules = InstrumentRules {
            venue,
            symbol,
            trading: true,
            tick: Price(parse("tick", &a.tick)?),
            min_price: Price::ZERO,
            max_price: Price::ZERO,
            step: Qty(parse("step", &a.step)?),
            min_qty: Qty::ZERO,
            max_qty: Qty::ZERO,
            market_step: Qty::ZERO,
            market_max_qty: Qty::ZERO,
            min_notional: Qty::ZERO,
        };
        rules
            .check(&order, None)
            .map_err(|e| anyhow!("refused locally, not sent: {e}"))?;
    }
    Ok(order)
}

/// Places an order; returns the venue's JSON answer.
pub fn place(a: &OrderArgs) -> Result<String> {
    let order = build_order(a)?;
    let ws = Session::via_ws(&a.conn)?;
    let s = Session::open(&a.conn)?;
    if ws {
        return s.send_ws(&a.conn, order.symbol, &OrderAction::New(order), order.side);
    }
    let ts = s.timestamp_ms();
    let req = match s.venue {
        Venue::BinanceUsdm => binance::rest_new_order(&s.signer, &order, ts),
        Venue::BybitLinear => bybit::rest_create(&s.signer, &order, ts),
    };
    s.send(&req)
}

/// Cancels an order by client id; returns the venue's JSON answer.
pub fn cancel(a: &CancelArgs) -> Result<String> {
    let symbol = symbol_of(&a.symbol)?;
    let client_id = ClientOrderId::parse(&a.client_id).ok_or_else(|| {
        anyhow!(
            "invalid --client-id {:?}: 1 to 31 characters of [A-Za-z0-9_-]",
            a.client_id
        )
    })?;
    let ws = Session::via_ws(&a.conn)?;
    let s = Session::open(&a.conn)?;
    if ws {
        // The side is only needed by amends.
        return s.send_ws(
            &a.conn,
            symbol,
            &OrderAction::Cancel { client_id },
            Side::Buy,
        );
    }
    let ts = s.timestamp_ms();
    let req = match s.venue {
        Venue::BinanceUsdm => binance::rest_cancel(&s.signer, symbol, client_id, ts),
        Venue::BybitLinear => bybit::rest_cancel(&s.signer, symbol, client_id, ts),
    };
    s.send(&req)
}

/// Cancels every open order of a symbol; returns the venue's JSON answer.
pub fn cancel_all(a: &CancelAllArgs) -> Result<String> {
    let symbol = symbol_of(&a.symbol)?;
    let s = Session::open(&a.conn)?;
    let ts = s.timestamp_ms();
    let req = match s.venue {
        Venue::BinanceUsdm => binance::rest_cancel_all(&s.signer, symbol, ts),
        Venue::BybitLinear => bybit::rest_cancel_all(&s.signer, symbol, ts),
    };
    s.send(&req)
}

/// The supervisor's last resort when the thread that would cancel is stuck: every open order of
/// `symbol` cancelled over REST with the gateway's own endpoint and keys, then the venue asked what
/// is still open. Returns the cancel answer and the number of orders open after it.
pub fn emergency_cancel_all(
    cfg: &qalpha_venues::gateway::session::GatewayConfig,
    symbol: Symbol,
) -> Result<(String, usize)> {
    let s = Session::with(
        cfg.venue,
        &cfg.rest_url,
        cfg.ca_file.as_deref(),
        cfg.signer.clone(),
    )?;
    let ts = s.timestamp_ms();
    let req = match s.venue {
        Venue::BinanceUsdm => binance::rest_cancel_all(&s.signer, symbol, ts),
        Venue::BybitLinear => bybit::rest_cancel_all(&s.signer, symbol, ts),
    };
    let answer = s.send(&req)?;
    let req = match s.venue {
        Venue::BinanceUsdm => binance::rest_open_orders(&s.signer, symbol, s.timestamp_ms()),
        Venue::BybitLinear => bybit::rest_open_orders(&s.signer, symbol, s.timestamp_ms()),
    };
    let open: serde_json::Value =
        serde_json::from_str(&s.send(&req)?).context("the venue's open-order list is not JSON")?;
    let n = match s.venue {
        Venue::BinanceUsdm => open.as_array().map(Vec::len),
        Venue::BybitLinear => open["result"]["list"].as_array().map(Vec::len),
    }
    .ok_or_else(|| anyhow!("the venue's open-order list has no list: {open}"))?;
    Ok((answer, n))
}

/// Lists a symbol's open orders; returns the venue's JSON answer.
pub fn open_orders(a: &OpenOrdersArgs) -> Result<String> {
    let symbol = symbol_of(&a.symbol)?;
    let s = Session::open(&a.conn)?;
    let ts = s.timestamp_ms();
    let req = match s.venue {
        Venue::BinanceUsdm => binance::rest_open_orders(&s.signer, symbol, ts),
        Venue::BybitLinear => bybit::rest_open_orders(&s.signer, symbol, ts),
    };
    s.send(&req)
}

/// Lists positions (one symbol's, or all); returns the venue's JSON answer.
pub fn positions(a: &PositionsArgs) -> Result<String> {
    let symbol = a.symbol.as_deref().map(symbol_of).transpose()?;
    let s = Session::open(&a.conn)?;
    let ts = s.timestamp_ms();
    let req = match s.venue {
        Venue::BinanceUsdm => binance::rest_positions(&s.signer, symbol, ts),
        Venue::BybitLinear => bybit::rest_positions(&s.signer, symbol, ts),
    };
    s.send(&req)
}

/// `qalpha order`: prints the venue's acknowledgement.
pub fn run_order(a: OrderArgs) -> Result<()> {
    println!("{}", place(&a)?);
    Ok(())
}

/// `qalpha cancel`: prints the venue's answer.
pub fn run_cancel(a: CancelArgs) -> Result<()> {
    println!("{}", cancel(&a)?);
    Ok(())
}

/// `qalpha open-orders`: prints the venue's list.
pub fn run_open_orders(a: OpenOrdersArgs) -> Result<()> {
    println!("{}", open_orders(&a)?);
    Ok(())
}

/// `qalpha cancel-all`: prints the venue's answer.
pub fn run_cancel_all(a: CancelAllArgs) -> Result<()> {
    println!("{}", cancel_all(&a)?);
    Ok(())
}

/// `qalpha positions`: prints the venue's list.
pub fn run_positions(a: PositionsArgs) -> Result<()> {
    println!("{}", positions(&a)?);
    Ok(())
}
