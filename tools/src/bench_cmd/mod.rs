//! `qalpha bench`: the latency benchmark suite a user runs on their own (colocated, CPU-isolated)
//! hardware — the wire-to-wire harness ([`wire`]) in its variants, the micro-benchmarks ([`micro`])
//! and the machine they ran on ([`machine`]); a table on stdout and `--json FILE`.
//!
//! `bench/README.md` explains how to prepare a box (isolcpus, nohz_full, IRQ affinity, governor) and
//! how to read the output; the criterion suites in `bench/benches/` are the careful versions of the
//! micro-benchmarks.

pub mod machine;
pub mod micro;
pub mod wire;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use qalpha_engine::runtime::WaitMode;
use serde_json::json;

use wire::{WireOptions, WireResult};

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Under two minutes on a 2-core machine: short micro-benchmark runs, 35 s at most per variant.
    #[arg(long)]
    pub quick: bool,
    /// Write the results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Cores for the feed, strategy and gateway threads, e.g. `2,3,4` (default: unpinned). Give
    /// isolated cores (`isolcpus`) on a prepared box.
    #[arg(long, value_delimiter = ',')]
    pub cores: Vec<usize>,
    /// The capture the mock streams.
    #[arg(long)]
    pub capture: Option<PathBuf>,
    /// Send an order for every K-th market event.
    #[arg(long, default_value_t = 2)]
    pub every: u64,
    /// With the Trinity on the path: an order for every K-th event (inference must fit between
    /// orders, or the strategy thread falls behind and the ring's queueing is what gets measured).
    #[arg(long, default_value_t = 25)]
    pub trinity_every: u64,
    /// Orders measured per variant (at most what the capture holds: the bundled sample gives about
    /// 13,000 at `--every 2`; a longer capture gives more).
    #[arg(long, default_value_t = 10_000)]
    pub orders: usize,
    /// Tape speed, × the recorded pace.
    #[arg(long, default_value_t = 20.0)]
    pub speed: f64,
    /// Skip the micro-benchmarks.
    #[arg(long)]
    pub no_micro: bool,
    /// Variants to run (comma-separated): spin, epoll, epoll+trinity, spin+trinity. Default: spin,
    /// epoll, epoll+trinity.
    #[arg(long, value_delimiter = ',')]
    pub variants: Vec<String>,
    /// The Trinity's models (default: the shipped `strategy/models`).
    #[arg(long)]
    pub models: Option<PathBuf>,
}

/// A path in the source tree (works from the repository root or anywhere with the build tree).
fn repo_path(rel: &str) -> PathBuf {
    let p = PathBuf::from(rel);
    if p.exists() {
        return p;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

/// Runs the suite.
pub fn run(a: BenchArgs) -> Result<()> {
    let capture = a
        .capture
        .clone()
        .unwrap_or_else(crate::demo_cmd::default_capture);
    let models = a
        .models
        .clone()
        .unwrap_or_else(|| repo_path("strategy/models"));
    let warmup = repo_path("data/sample/klines/BTCUSDT-1m-2026-04-sample.csv");
    let cores = match a.cores.as_slice() {
        [] => None,
        [f, s, g, ..] => Some([*f, *s, *g]),
        _ => bail!("--cores needs three cores (feed, strategy, gateway), e.g. --cores 2,3,4"),
    };
    let variants: Vec<String> = if a.variants.is_empty() {
        vec!["spin".into(), "epoll".into(), "epoll+trinity".into()]
    } else {
        a.variants.clone()
    };
    let machine = machine::detect();
    let mut results: Vec<WireResult> = Vec::new();
    for v in &variants {
        let (wait, trinity) = match v.as_str() {
            "spin" => (WaitMode::Spin, false),
            "epoll" => (WaitMode::Park, false),
            "spin+trinity" => (WaitMode::Spin, true),
            "epoll+trinity" => (WaitMode::Park, true),
            other => bail!("--variants {other:?}: use spin, epoll, spin+trinity or epoll+trinity"),
        };
        eprintln!("bench: wire-to-wire, {v} …");
        let o = WireOptions {
            capture: capture.clone(),
            every: if trinity { a.trinity_every } else { a.every },
            wait,
            cores,
            speed: a.speed,
            max_orders: a.orders,
            max_time: Duration::from_secs(if a.quick { 35 } else { 300 }),
            trinity: trinity.then(|| (models.clone(), warmup.clone())),
        };
        let r = wire::run(&o, v).with_context(|| format!("variant {v}"))?;
        if r.orders_matched == 0 {
            bail!(
                "variant {v}: no order could be paired with its frame (sent {})",
                r.orders_sent
            );
        }
        results.push(r);
    }
    let micro = if a.no_micro {
        Vec::new()
    } else {
        eprintln!("bench: micro-benchmarks …");
        micro::run(
            &capture,
            models.is_dir().then_some(models.as_path()),
            a.quick,
        )?
    };
    print!("{}", table(&machine, &results, &micro));
    if let Some(path) = &a.json {
        let main = results.iter().find(|r| !r.trinity).or(results.first());
        let v = json!({
            "machine": machine,
            "tick_to_order": main.map(|r| r.tick_to_order),
            "tick_to_order_variant": main.map(|r| r.variant.clone()),
            "stages": main.map(|r| r.stages.iter().map(|(k, d)| (k.clone(), json!(d))).collect::<serde_json::Map<_, _>>()),
            "variants": results,
            "micro": micro.iter().map(|m| (m.name.clone(), json!(m))).collect::<serde_json::Map<_, _>>(),
            "targets": {
                "tick_to_order_p99_us_without_models": 50,
                "tick_to_order_p99_us_with_trinity": 1000,
                "product_bound_p99_us": 10000,
            },
        });
        std::fs::write(path, serde_json::to_string_pretty(&v)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// The human table.
pub fn table(m: &machine::Machine, results: &[WireResult], micro: &[micro::Micro]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "machine: {} · {} cores · kernel {} · isolated {} · governor {}{}",
        m.cpu_model.as_deref().unwrap_or("?"),
        m.cores,
        m.kernel.as_deref().unwrap_or("?"),
        m.isolated_cpus
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or("none"),
        m.governor.as_deref().unwrap_or("?"),
        if m.virtualized == Some(true) {
            " · virtual machine"
        } else {
            ""
        },
    );
    let _ = writeln!(
        out,
        "\ntick-to-order, mock write → order read by the mock (µs; targets p99 < 50 without models, < 1000 with the Trinity)"
    );
    let _ = writeln!(
        out,
        "{:<16}{:>9}{:>9}{:>9}{:>9}{:>10}{:>10}{:>8}",
        "variant", "orders", "p50", "p90", "p99", "p99.9", "max", "pinned"
    );
    for r in results {
        let d = r.tick_to_order;
        let _ = writeln!(
            out,
            "{:<16}{:>9}{:>9.1}{:>9.1}{:>9.1}{:>10.1}{:>10.1}{:>8}",
            r.variant, d.samples, d.p50_us, d.p90_us, d.p99_us, d.p999_us, d.max_us, r.pinned
        );
    }
    if !results.is_empty() {
        let _ = writeln!(out, "\nstages, p50 / p99 µs");
        let _ = write!(out, "{:<14}", "stage");
        for r in results {
            let _ = write!(out, "{:>22}", r.variant);
        }
        out.push('\n');
        for (i, name) in wire::STAGES.iter().enumerate() {
            let _ = write!(out, "{name:<14}");
            for r in results {
                let d = r.stages[i].1;
                let _ = write!(out, "{:>22}", format!("{:.1} / {:.1}", d.p50_us, d.p99_us));
            }
            out.push('\n');
        }
    }
    if !micro.is_empty() {
        let _ = writeln!(out, "\nmicro-benchmarks (median ns per op)");
        for x in micro {
            let vs = x
                .versus
                .as_ref()
                .and_then(|v| micro.iter().find(|y| &y.name == v))
                .map(|y| format!("  ({:.2}× {})", x.ns_per_op / y.ns_per_op.max(1e-9), y.name))
                .unwrap_or_default();
            let _ = writeln!(out, "{:<36}{:>12.1}{vs}", x.name, x.ns_per_op);
        }
    }
    out
}
