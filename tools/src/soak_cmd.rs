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
    /// Fail when resident memory grew more than this after the warm-up (MiB).
    #[arg(long, default_value_t = 32.0)]
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
    pub passed: bool,
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
    let (base, _) = a.engine.options()?;
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
        passed: growth <= a.max_growth_mb && samples.len() >= 4,
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
    if r.samples.len() < 4 {
        bail!(
            "too few samples ({}): run longer or sample more often",
            r.samples.len()
        );
    }
    if !r.passed {
        bail!(
            "resident memory grew {:.2} MiB after the warm-up (limit {} MiB)",
            r.growth_mb,
            r.max_growth_mb
        );
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
