//! `qalpha soak`: the whole engine for a long time against the mock exchange's endless synthetic
//! market (accelerated), trading through the gateway, while a sampler reads the process's resident
//! memory (`/proc/self/status` VmRSS) and the rings' fill levels. Memory must stay flat: after a
//! warm-up (the first quarter of the run) the growth from the first to the last samples (medians of
//! a tenth of the samples each, so one allocation spike does not decide) must stay under
//! `--max-growth-mb`, else the command fails. Prints the samples' summary and the growth; `--json`
//! keeps every sample.
//!
//! `qalpha soak` runs an hour by default; `tools/tests/soak.rs` runs a short one.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use qalpha_engine::replay::Speed;
use qalpha_engine::{Symbol, Venue};
use qalpha_venues::mock::{FaultSpec, MarketSource, MockExchange, MockOptions, SyntheticSpec};

use crate::demo_cmd::{
    mock_feed_plans, mock_gateway_config, run_engine, DemoMode, EngineArgs, Target,
};
use crate::live_cmd::parse_dur;

/// `qalpha soak` arguments.
#[derive(clap::Args, Debug)]
pub struct SoakArgs {
    /// How long to run (e.g. 1h, 10m, 30s).
    #[arg(long, value_parser = parse_dur, default_value = "1h")]
    pub duration: Duration,
    /// Pace of the synthetic market (N times its natural pace).
    #[arg(long, default_value_t = 20.0)]
    pub speed: f64,
    /// Sampling interval.
    #[arg(long, value_parser = parse_dur, default_value = "5s")]
    pub sample_every: Duration,
    /// Fail when resident memory grew more than this after the warm-up (MiB). The hour at the
    /// defaults grows +0.04 MiB; the gateway tracker's unbounded maps grew +19.8 MiB (see
    /// docs/RELIABILITY.md), which the old limit of 32 let pass.
    #[arg(long, default_value_t = 8.0)]
    pub max_growth_mb: f64,
    /// Faults the mock injects meanwhile (e.g. `heavy`).
    #[arg(long)]
    pub faults: Option<String>,
    /// Write the summary and every sample as JSON here.
    #[arg(long = "soak-json", value_name = "FILE")]
    pub soak_json: Option<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// One sample.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Sample {
    pub t_s: f64,
    pub rss_kb: u64,
    pub md_ring: i64,
    pub order_ring: i64,
    pub events: u64,
    pub orders: u64,
}

/// The soak's result.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SoakReport {
    pub duration_s: f64,
    pub samples: Vec<Sample>,
    pub rss_start_kb: u64,
    pub rss_end_kb: u64,
    pub rss_max_kb: u64,
    /// Median of the first tenth after the warm-up → median of the last tenth, MiB.
    pub growth_mb: f64,
    pub max_growth_mb: f64,
    pub md_ring_max: i64,
    pub order_ring_max: i64,
    pub events: u64,
    pub orders: u64,
    pub fills: u64,
    pub book_mismatches: u64,
    pub duplicate_orders: u64,
    pub orders_on_stale_book: u64,
    /// Risk's state at the end (`active`, `reducing`, `halted`).
    pub final_state: String,
    /// Orders sent during the last tenth of the samples: the engine was still trading.
    pub orders_last_tenth: u64,
    pub passed: bool,
    /// Why not, when `passed` is false.
    pub failure: Option<String>,
}

/// Resident memory of this process, KiB.
pub fn rss_kb() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn median(v: &[u64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_unstable();
    if v.is_empty() {
        return 0.0;
    }
    v[v.len() / 2] as f64
}

/// Growth after the warm-up (the first quarter of the samples), MiB.
pub fn growth_mb(rss: &[u64]) -> f64 {
    let after = &rss[rss.len() / 4..];
    let k = (after.len() / 10).max(1);
    if after.len() < 2 {
        return 0.0;
    }
    (median(&after[after.len() - k..]) - median(&after[..k])) / 1024.0
}

/// The losing-streak and daily-loss switches would stop a soak on the synthetic random walk within
/// seconds, and a halted engine is not what a soak is for: unless `--config` or a `--set` names
/// them, they are raised out of the way. Every other check stays as configured.
const SOAK_RISK: [(&str, &str); 2] = [
    ("risk.max_consecutive_losses", "1000000"),
    ("risk.daily_loss_limit", "1000000000"),
];

fn soak_engine_args(e: &EngineArgs) -> EngineArgs {
    let mut e = e.clone();
    if e.config.is_none() {
        for (k, v) in SOAK_RISK {
            if !e.sets.iter().any(|s| s.split('=').next() == Some(k)) {
                e.sets.insert(0, format!("{k}={v}"));
            }
        }
    }
    e
}

/// Runs the soak (the engine on the synthetic mock, sampled).
pub fn soak(a: &SoakArgs) -> Result<SoakReport> {
    if a.sample_every.is_zero() {
        bail!("--sample-every must be positive");
    }
    let faults = match &a.faults {
        Some(f) => FaultSpec::parse(f).map_err(|e| anyhow::anyhow!("--faults: {e}"))?,
        None => FaultSpec::default(),
    };
    let cert_dir = std::env::temp_dir().join(format!(
        "qalpha-soak-{}-{}",
        std::process::id(),
        qalpha_engine::clock::now_ns()
    ));
    std::fs::create_dir_all(&cert_dir)
        .with_context(|| format!("cannot create {}", cert_dir.display()))?;
    let res = soak_in(a, faults, &cert_dir);
    let _ = std::fs::remove_dir_all(&cert_dir);
    res
}

fn soak_in(a: &SoakArgs, faults: FaultSpec, cert_dir: &std::path::Path) -> Result<SoakReport> {
    let mock = MockExchange::start(MockOptions {
        venue: Venue::BinanceUsdm,
        source: MarketSource::Synthetic(SyntheticSpec::default()),
        listen: "127.0.0.1:0".parse()?,
        tls: true,
        cert_out: Some(cert_dir.to_path_buf()),
        speed: Speed::Factor(a.speed),
        faults,
        seed: 7,
    })
    .context("mock exchange")?;
    let (base, _) = soak_engine_args(&a.engine).options()?;
    let symbol = Symbol::parse("BTCUSDT").context("symbol")?;
    let (tx, rx) = std::sync::mpsc::channel();
    let o = crate::demo_cmd::DemoOptions {
        mode: DemoMode::Mock,
        duration: a.duration,
        progress_every: None,
        sources_out: Some(tx),
        ..base
    };
    let decider = o
        .strategy
        .build()
        .map_err(|e| anyhow::anyhow!("--strategy {}: {e}", o.strategy.name))?;
    let stop = crate::live_cmd::ctrl_c_flag();
    let done = Arc::new(AtomicBool::new(false));
    let (every, d2) = (a.sample_every, done.clone());
    let started = Instant::now();
    let sampler = std::thread::spawn(move || {
        let mut samples = Vec::new();
        let Ok(src) = rx.recv_timeout(Duration::from_secs(60)) else {
            return samples;
        };
        let mut next = Instant::now();
        while !d2.load(Ordering::Relaxed) {
            if Instant::now() >= next {
                let (s, _, _) = src.strategy.as_ref().expect("strategy metrics");
                samples.push(Sample {
                    t_s: started.elapsed().as_secs_f64(),
                    rss_kb: rss_kb().unwrap_or(0),
                    md_ring: s.md_ring_level.get(),
                    order_ring: src.gateways.iter().map(|g| g.cmd_ring_level.get()).sum(),
                    events: s.events.load(Ordering::Relaxed),
                    orders: s.orders.load(Ordering::Relaxed),
                });
                next += every;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        samples
    });
    let target = Target {
        plans: mock_feed_plans(&mock, symbol, o.wait)?,
        gateway: Some(mock_gateway_config(&mock, symbol)),
        venue: Venue::BinanceUsdm,
        symbol,
        mock: Some(&mock),
    };
    let rep = run_engine(&o, decider, target, stop, started);
    done.store(true, Ordering::Relaxed);
    mock.stop();
    let samples = sampler
        .join()
        .map_err(|_| anyhow::anyhow!("sampler panicked"))?;
    let rep = rep?;
    let rss: Vec<u64> = samples.iter().map(|s| s.rss_kb).collect();
    let growth = growth_mb(&rss);
    let tail = samples
        .len()
        .saturating_sub((samples.len() / 10).max(1) + 1);
    let orders_last_tenth = match (samples.get(tail), samples.last()) {
        (Some(a), Some(b)) => b.orders.saturating_sub(a.orders),
        _ => 0,
    };
    let failure = if samples.len() < 4 {
        Some(format!(
            "too few samples ({}): run longer or sample more often",
            samples.len()
        ))
    } else if growth > a.max_growth_mb {
        Some(format!(
            "resident memory grew {growth:.2} MiB after the warm-up (limit {} MiB)",
            a.max_growth_mb
        ))
    } else if orders_last_tenth == 0 {
        Some(format!(
            "no orders in the last tenth of the run (risk state {}{}): memory was not measured under trading",
            rep.final_state,
            rep.halt_reason
                .as_deref()
                .map(|r| format!(", halted by {r}"))
                .unwrap_or_default()
        ))
    } else {
        None
    };
    Ok(SoakReport {
        duration_s: started.elapsed().as_secs_f64(),
        rss_start_kb: rss.first().copied().unwrap_or(0),
        rss_end_kb: rss.last().copied().unwrap_or(0),
        rss_max_kb: rss.iter().copied().max().unwrap_or(0),
        growth_mb: growth,
        max_growth_mb: a.max_growth_mb,
        md_ring_max: samples.iter().map(|s| s.md_ring).max().unwrap_or(0),
        order_ring_max: samples.iter().map(|s| s.order_ring).max().unwrap_or(0),
        events: rep.events,
        orders: rep.orders,
        fills: rep.fills,
        book_mismatches: rep.book_mismatches,
        duplicate_orders: rep.duplicate_orders,
        orders_on_stale_book: rep.orders_on_stale_book,
        final_state: rep.final_state.clone(),
        orders_last_tenth,
        passed: failure.is_none(),
        failure,
        samples,
    })
}

/// Runs `qalpha soak`.
pub fn run(a: SoakArgs) -> Result<()> {
    let r = soak(&a)?;
    if let Some(p) = &a.soak_json {
        std::fs::write(p, serde_json::to_string_pretty(&r)? + "\n")
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    println!(
        "soak {:.0} s: {} samples, RSS {:.1} → {:.1} MiB (max {:.1}), growth after warm-up {:+.2} MiB (limit {} MiB); rings max md {} / orders {}; {} events, {} orders, {} fills, {} book mismatches, {} duplicate orders, {} orders on a stale book",
        r.duration_s,
        r.samples.len(),
        r.rss_start_kb as f64 / 1024.0,
        r.rss_end_kb as f64 / 1024.0,
        r.rss_max_kb as f64 / 1024.0,
        r.growth_mb,
        r.max_growth_mb,
        r.md_ring_max,
        r.order_ring_max,
        r.events,
        r.orders,
        r.fills,
        r.book_mismatches,
        r.duplicate_orders,
        r.orders_on_stale_book
    );
    println!(
        "risk state at the end: {}; orders in the last tenth: {}",
        r.final_state, r.orders_last_tenth
    );
    if let Some(why) = &r.failure {
        bail!("{why}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_ignores_the_warm_up_and_single_spikes() {
        // Warm-up climbing, then flat with one spike.
        let mut rss: Vec<u64> = (0..25).map(|i| 10_000 + i * 1_000).collect();
        rss.extend(std::iter::repeat_n(40_000, 75));
        rss[90] = 90_000;
        assert!(growth_mb(&rss).abs() < 0.01, "{}", growth_mb(&rss));
        // A steady leak after the warm-up shows.
        let leak: Vec<u64> = (0..100).map(|i| 40_000 + i * 512).collect();
        assert!(growth_mb(&leak) > 30.0, "{}", growth_mb(&leak));
        assert!(rss_kb().is_some_and(|k| k > 0));
    }
}
