//! Each kill switch end to end: the demo in paper mode (the real sample capture served by the mock,
//! the feed, the default strategy (`maker`, post-only quotes at the touch) with the risk engine inline, the paper venue) with one limit set low
//! through `--set`. Each run must end in the switch's state, flat (halts flatten), with no open
//! orders, the reason in the risk journal — and a restart with the same journal must come back
//! halted without sending an order.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use qalpha_engine::config::EngineConfig;
use qalpha_engine::runtime::WaitMode;
use qalpha_risk::journal::{JournalReader, RiskEventKind};
use qalpha_risk::{RiskConfig, RiskState, SwitchKind};
use qalpha_tools::demo_cmd::{run_demo, DemoMode, DemoOptions, DemoReport};
use qalpha_venues::mock::FaultSpec;

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/sample/btcusdt-usdm-20230404.qcap"
);

/// The demo in paper mode with `--set` overrides, journaling to `journal`.
fn run(sets: &[&str], journal: &Path) -> DemoReport {
    run_in(DemoMode::Paper, FaultSpec::default(), sets, journal)
}

fn run_in(mode: DemoMode, faults: FaultSpec, sets: &[&str], journal: &Path) -> DemoReport {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let cfg = EngineConfig::load_with_overrides(None, &sets).unwrap();
    let o = DemoOptions {
        duration: Duration::from_secs(12),
        speed: 20.0,
        capture: SAMPLE.into(),
        wait: WaitMode::Park,
        progress_every: None,
        json: None,
        mode,
        faults,
        risk: RiskConfig::from_engine(&cfg).unwrap(),
        risk_journal: Some(journal.to_path_buf()),
        ..Default::default()
    };
    run_demo(&o, Arc::new(AtomicBool::new(false))).unwrap()
}

/// The state changes in the journal: (to, switch).
fn changes(journal: &Path) -> Vec<(RiskState, SwitchKind)> {
    let r = JournalReader::open(journal).unwrap();
    r.events()
        .filter_map(|e| match e.kind {
            RiskEventKind::StateChange { to, switch, .. } => Some((to, switch)),
            _ => None,
        })
        .collect()
}

fn flat(r: &DemoReport) -> bool {
    r.final_positions.values().all(|q| q == "0")
}

/// Ends halted by `switch`: flat, nothing open, the reason journaled; a restart stays halted and
/// sends nothing.
fn halts(sets: &[&str], switch: SwitchKind) {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("risk.qrisk");
    let r = run(sets, &journal);
    assert_eq!(r.final_state, "halted", "{r:?}");
    assert_eq!(r.halt_reason.as_deref(), Some(switch.name()), "{r:?}");
    assert!(r.halted_at_ns.is_some());
    assert!(flat(&r), "halted flat: {:?}", r.final_positions);
    assert_eq!(r.open_orders, 0, "{r:?}");
    assert_eq!(r.orders_on_stale_book, 0);
    assert!(changes(&journal).contains(&(RiskState::Halted, switch)));

    // Restart on the same journal: the halt (and its reason) come back; no order goes out.
    let again = run(sets, &journal);
    assert_eq!(again.final_state, "halted", "{again:?}");
    assert_eq!(again.halt_reason.as_deref(), Some(switch.name()));
    assert_eq!(again.orders, 0, "a restart never resets a limit: {again:?}");
}

#[test]
fn daily_loss_limit_halts_flattens_and_survives_a_restart() {
    // The quoter pays fees on every fill: a 0.05 USDT daily loss is reached within seconds.
    halts(&["risk.daily_loss_limit=0.05"], SwitchKind::DailyLoss);
}

#[test]
fn consecutive_losing_trades_halt() {
    halts(
        &["risk.max_consecutive_losses=1"],
        SwitchKind::ConsecutiveLosses,
    );
}

#[test]
fn api_error_rate_halts() {
    // The mock exchange refuses a third of the new orders for margin (its `reject` fault, through
    // the gateway like a real venue): each refusal is an API error. (Post-only orders refused for
    // crossing are not: the market moved, the API did not fail.)
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("risk.qrisk");
    let faults = FaultSpec::parse("reject=0.35").unwrap();
    let r = run_in(
        DemoMode::Mock,
        faults,
        &["risk.api_errors_per_min=2"],
        &journal,
    );
    let ch = changes(&journal);
    assert!(
        ch.contains(&(RiskState::Halted, SwitchKind::ApiErrorRate)),
        "{ch:?} {r:?}"
    );
    assert_eq!(r.final_state, "halted", "{r:?}");
    assert_eq!(r.orders_on_stale_book, 0);
}

#[test]
fn volatility_spike_reduces_and_opens_nothing_new() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("risk.qrisk");
    let r = run(&["risk.vol_spike_bps=0.5", "risk.vol_window_s=3"], &journal);
    let ch = changes(&journal);
    assert!(
        ch.contains(&(RiskState::Reducing, SwitchKind::VolatilitySpike)),
        "{ch:?} {r:?}"
    );
    assert_ne!(r.final_state, "halted");
    // Only reducing orders pass while reducing: every refusal names it.
    assert!(
        r.risk_rejected_by
            .keys()
            .all(|k| k == "reducing" || k == "order_rate"),
        "{r:?}"
    );
    assert_eq!(r.orders_on_stale_book, 0);
}
