//! Replay equivalence: a paper run against the mock exchange records its capture (`--record`);
//! backtesting that capture with the same strategy, params, risk limits and fees — the paper venue
//! as the fill (`--fill top`), zero feed and order latency — sends the same sequence of order
//! commands. Both sides run the same code in the same order (`demo_cmd::thread`, `backtest::tick_sim`);
//! this test holds them to it.
//!
//! Compared per command: what it does (new / cancel / cancel-all / amend), side, type, time in force,
//! price, quantity, reduce-only, the tick it answers (`tick_recv_ns`) and the time it was decided
//! (`decided_ns`). Client ids differ by design (the demo numbers from the clock, a backtest from the
//! data's start), so a cancel is compared by the index of the order it cancels.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qalpha_engine::config::EngineConfig;
use qalpha_engine::order::{ClientOrderId, OrderAction, OrderCommand, OrderType, TimeInForce};
use qalpha_engine::replay::ReplayOptions;
use qalpha_engine::runtime::WaitMode;
use qalpha_engine::{Price, Qty, Side};
use qalpha_risk::RiskConfig;
use qalpha_tools::backtest::cmd::{self, BacktestArgs};
use qalpha_tools::backtest::latency::Latency;
use qalpha_tools::backtest::tick_cmd;
use qalpha_tools::backtest::tick_sim::Fill;
use qalpha_tools::demo_cmd::strategy::StrategySpec;
use qalpha_tools::demo_cmd::{run_demo, DemoMode, DemoOptions, DemoReport};

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/sample/btcusdt-usdm-20230404.qcap"
);

/// One demo at a time: each runs three threads and a mock exchange, and the box has two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The paper venue's fees (`FeeSchedule::BINANCE_USDM_REGULAR`), as the backtest takes them.
const PAPER_FEES: [&str; 2] = ["fees.maker_bps=2", "fees.taker_bps=5"];

/// A paper demo of `name` with `--set sets`, recording to `capture`, its commands kept.
fn paper_run(name: &str, sets: &[&str], capture: &Path) -> DemoReport {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let cfg = EngineConfig::load_with_overrides(None, &sets).unwrap();
    let o = DemoOptions {
        duration: Duration::from_secs(8),
        speed: 20.0,
        capture: SAMPLE.into(),
        wait: WaitMode::Park,
        progress_every: None,
        json: None,
        mode: DemoMode::Paper,
        risk: RiskConfig::from_engine(&cfg).unwrap(),
        risk_journal: None,
        strategy: StrategySpec::from_config(name, &cfg).unwrap(),
        record: Some(capture.to_path_buf()),
        keep_commands: true,
        ..Default::default()
    };
    run_demo(&o, Arc::new(AtomicBool::new(false))).unwrap()
}

/// The backtest of `capture` with the same strategy and settings, the paper venue as the fill and
/// no latency: the commands that reached its venue.
fn backtest(
    name: &str,
    sets: &[&str],
    capture: PathBuf,
    order_latency_ns: u64,
) -> Vec<OrderCommand> {
    let a = BacktestArgs {
        config: None,
        data: vec![capture],
        strategy: name.into(),
        sets: sets
            .iter()
            .chain(PAPER_FEES.iter())
            .map(|s| s.to_string())
            .collect(),
        from: None,
        to: None,
        year: None,
        seed: 7,
        symbol: Some("BTCUSDT".into()),
        period: 60_000,
        json: None,
        report: None,
        feed_latency: Latency::Constant(0),
        order_latency: Latency::Constant(order_latency_ns),
        fill: Fill::Top,
        sweeps: Vec::new(),
    };
    let setup = cmd::setup(&a).unwrap();
    let mut runs = tick_cmd::simulate(&setup, &a).unwrap();
    assert_eq!(runs.len(), 1);
    runs.remove(0).out.commands
}

/// A command with its client ids replaced by the index of the order they name.
#[derive(Debug, PartialEq, Eq)]
enum Act {
    New {
        side: Side,
        order_type: OrderType,
        tif: TimeInForce,
        price: Price,
        qty: Qty,
        reduce_only: bool,
    },
    Cancel {
        order: Option<usize>,
    },
    Amend {
        order: Option<usize>,
        price: Price,
        qty: Qty,
    },
    CancelAll,
}

#[derive(Debug, PartialEq, Eq)]
struct Cmd {
    act: Act,
    tick_recv_ns: u64,
    decided_ns: u64,
}

fn normalized(cmds: &[OrderCommand]) -> Vec<Cmd> {
    let mut ids: Vec<ClientOrderId> = Vec::new();
    let index = |ids: &[ClientOrderId], id: ClientOrderId| ids.iter().position(|x| *x == id);
    cmds.iter()
        .map(|c| {
            let act = match c.action {
                OrderAction::New(o) => {
                    ids.push(o.client_id);
                    Act::New {
                        side: o.side,
                        order_type: o.order_type,
                        tif: o.tif,
                        price: o.price,
                        qty: o.qty,
                        reduce_only: o.reduce_only,
                    }
                }
                OrderAction::Cancel { client_id } => Act::Cancel {
                    order: index(&ids, client_id),
                },
                OrderAction::Amend {
                    client_id,
                    price,
                    qty,
                } => Act::Amend {
                    order: index(&ids, client_id),
                    price,
                    qty,
                },
                OrderAction::CancelAll => Act::CancelAll,
            };
            Cmd {
                act,
                tick_recv_ns: c.tick_recv_ns,
                decided_ns: c.decided_ns,
            }
        })
        .collect()
}

/// The paper run and the backtest of its recording send the same commands; the recording replays
/// with every book check passing.
fn equivalent(name: &str, sets: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join(format!("{name}.qcap"));
    let r = paper_run(name, sets, &capture);
    assert_eq!(
        r.ring_drops, 0,
        "{name}: the feed dropped {} events on the way to the strategy thread (the machine was too \
         busy); the backtest sees every recorded event, so the runs may differ legitimately — rerun \
         on a quieter machine. {r:?}",
        r.ring_drops
    );
    let rec = r.recorded.as_ref().expect("the demo reports its recording");
    assert_eq!(rec.file, capture);
    assert!(rec.records > 1000, "{name}: {rec:?}");

    let replay = qalpha_tools::replay_cmd::replay(
        std::slice::from_ref(&capture),
        true,
        &ReplayOptions::default(),
    )
    .unwrap();
    assert!(replay.book_checks > 100, "{name}: {replay:?}");
    assert_eq!(replay.book_mismatches, 0, "{name}: {replay:?}");

    let live = normalized(&r.commands);
    let sim = normalized(&backtest(name, sets, capture.clone(), 0));
    assert!(
        live.len() >= 5,
        "{name}: only {} commands in the paper run: {r:?}",
        live.len()
    );
    if let Some(i) = (0..live.len().min(sim.len())).find(|&i| live[i] != sim[i]) {
        panic!(
            "{name}: command {i} of {} (paper) / {} (backtest) differs:\n paper:    {:?}\n backtest: {:?}",
            live.len(),
            sim.len(),
            live[i],
            sim[i]
        );
    }
    assert_eq!(
        live.len(),
        sim.len(),
        "{name}: one run sent more commands: paper tail {:?}, backtest tail {:?}",
        live.get(sim.len()..),
        sim.get(live.len()..)
    );
    // The comparison has teeth: a millisecond on the order path changes the commands.
    let late = normalized(&backtest(name, sets, capture, 1_000_000));
    assert_ne!(live, late, "{name}: 1 ms of order latency changed nothing");
    eprintln!("{name}: {} commands identical", live.len());
}

#[test]
fn an_obi_taker_paper_run_backtests_to_the_same_orders() {
    equivalent("obi-taker", &["strategy.threshold=0.3"]);
}

#[test]
fn a_maker_paper_run_backtests_to_the_same_orders() {
    equivalent("maker", &[]);
}
