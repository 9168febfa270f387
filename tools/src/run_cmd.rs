//! `qalpha run --config FILE`: the engine on a config's venue — paper, testnet or live, as the
//! config's `mode` says — with the same threads, supervision, metrics, control API, alerts and
//! journals as the demo ([`crate::demo_cmd::run_engine`]).
//!
//! One venue entry (`--venue`, default the first) and one of its symbols (`--symbol`, default the
//! first) are traded: the feed thread serves that entry's streams, the strategy thread trades the
//! symbol, and in testnet/live mode the gateway thread sends the orders (keys from the key store
//! `--keystore`, else `QALPHA_<VENUE>_API_KEY/SECRET`). Paper mode fills orders locally on the live
//! market data and needs no keys. Live mode trades real money and refuses to start without
//! `--live`. It runs until SIGINT/SIGTERM (or `--duration`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use qalpha_engine::{Symbol, Venue};
use qalpha_feeds::live::plan_venue;
use qalpha_venues::endpoints::Mode;
use qalpha_venues::gateway::session::GatewayConfig;
use qalpha_venues::sign::Signer;

use crate::demo_cmd::{finish_run, run_engine, DemoMode, EngineArgs, Target};
use crate::keys_cmd::StoreArgs;
use crate::live_cmd::parse_dur;

/// `qalpha run` arguments.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The `[[venues]]` entry to trade, by venue name (default: the first).
    #[arg(long)]
    pub venue: Option<String>,
    /// The symbol to trade (default: the entry's first).
    #[arg(long)]
    pub symbol: Option<String>,
    /// Stop after this long (default: run until SIGINT/SIGTERM).
    #[arg(long, value_parser = parse_dur)]
    pub duration: Option<Duration>,
    /// Required when the config's mode is `live`: orders go to the real venue with real money.
    #[arg(long)]
    pub live: bool,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// Runs `qalpha run`.
pub fn run(a: RunArgs) -> Result<()> {
    let config: PathBuf = a.engine.config.clone().context(
        "--config FILE is required: mode, [[venues]] with their endpoints, [risk], [strategy], [alerts]",
    )?;
    let (base, cfg) = a.engine.options()?;
    let mode: Mode = cfg
        .mode
        .parse()
        .map_err(|e| anyhow::anyhow!("{}: mode: {e}", config.display()))?;
    if mode == Mode::Live && !a.live {
        bail!(
            "{}: mode = \"live\" trades real money; add --live to confirm",
            config.display()
        );
    }
    let i = match &a.venue {
        None if cfg.venues.is_empty() => bail!("{}: no [[venues]] entry", config.display()),
        None => 0,
        Some(v) => cfg
            .venues
            .iter()
            .position(|x| &x.venue == v)
            .with_context(|| format!("--venue {v}: no such [[venues]] entry in the config"))?,
    };
    let vc = &cfg.venues[i];
    let venue = Venue::from_name(&vc.venue)
        .with_context(|| format!("venues[{i}].venue: unknown venue {:?}", vc.venue))?;
    let symbol_name = match &a.symbol {
        Some(s) => s.to_ascii_uppercase(),
        None => vc
            .symbols
            .first()
            .with_context(|| format!("venues[{i}] ({}): no symbols", vc.venue))?
            .to_ascii_uppercase(),
    };
    if !vc
        .symbols
        .iter()
        .any(|s| s.eq_ignore_ascii_case(&symbol_name))
    {
        bail!(
            "--symbol {symbol_name}: not among venues[{i}]'s symbols ({})",
            vc.symbols.join(",")
        );
    }
    let symbol = Symbol::parse(&symbol_name).with_context(|| format!("symbol {symbol_name:?}"))?;
    let plan = plan_venue(vc).map_err(|e| anyhow::anyhow!("venues[{i}] ({}): {e}", vc.venue))?;
    // The gateway (testnet/live): endpoints from the config, keys from the store or environment.
    let gateway =
        match GatewayConfig::from_engine_config(&cfg, i, |_| Some("from-the-key-store".into()))
            .map_err(|e| anyhow::anyhow!("{}: {e}", config.display()))?
        {
            None => None,
            Some(mut g) => {
                let k = crate::keys_cmd::load_keys(&a.store, venue)?;
                g.signer = Signer::new(k.key, k.secret);
                g.symbols = vec![symbol];
                Some(g)
            }
        };
    let o = crate::demo_cmd::DemoOptions {
        mode: match mode {
            Mode::Paper => DemoMode::Paper,
            Mode::Testnet => DemoMode::Testnet,
            Mode::Live => DemoMode::Live,
        },
        duration: a
            .duration
            .unwrap_or(Duration::from_secs(100 * 365 * 86_400)),
        ..base
    };
    let decider = o
        .strategy
        .build()
        .map_err(|e| anyhow::anyhow!("--strategy {}: {e}", o.strategy.name))?;
    eprintln!(
        "qalpha run: {} {} on {} ({:?} mode), strategy {}",
        symbol.as_str(),
        match &gateway {
            Some(g) => g.rest_url.clone(),
            None => "paper fills".into(),
        },
        venue.name(),
        mode,
        o.strategy.name
    );
    let rep = run_engine(
        &o,
        decider,
        Target {
            plans: vec![plan],
            gateway,
            venue,
            symbol,
            mock: None,
        },
        crate::live_cmd::ctrl_c_flag(),
        Instant::now(),
    )?;
    if let Some(path) = &o.json {
        std::fs::write(path, serde_json::to_string_pretty(&rep)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    finish_run(&rep)
}
