//! The supervisor: an engine thread that stops beating is found, trading is halted and the open
//! orders are cancelled over REST at the venue (the mock exchange), and the run stops with exit
//! code 3. The stall is injected into the strategy thread (the one that cannot cancel its own
//! orders once stuck, so the REST path must).

use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use qalpha_engine::runtime::WaitMode;
use qalpha_tools::demo_cmd::{run_demo, DemoMode, DemoOptions};

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/sample/btcusdt-usdm-20230404.qcap"
);

#[test]
fn a_stuck_strategy_thread_halts_trading_and_cancels_at_the_venue() {
    let o = DemoOptions {
        duration: Duration::from_secs(60),
        speed: 5.0,
        capture: SAMPLE.into(),
        wait: WaitMode::Park,
        progress_every: None,
        mode: DemoMode::Mock,
        stall_after: Duration::from_secs(1),
        stall_strategy_after: Some(Duration::from_secs(4)),
        ..Default::default()
    };
    let rep = run_demo(&o, Arc::new(AtomicBool::new(false))).unwrap();
    let e = rep
        .stall
        .as_ref()
        .expect("the supervisor did not find the stall");
    assert_eq!(e.thread, "strategy");
    assert!(!e.halted_by_strategy, "a stuck strategy cannot halt itself");
    assert_eq!(e.rest_error, None);
    let answer = e.rest_cancel_all.as_deref().unwrap();
    assert!(
        answer.contains("\"code\":200"),
        "cancel-all answer: {answer}"
    );
    assert_eq!(
        e.venue_open_orders_after,
        Some(0),
        "orders left open at the venue"
    );
    // The run traded before the stall and stopped long before its duration.
    assert!(rep.orders > 0 && rep.acks > 0, "{rep:?}");
    assert!(rep.elapsed_s < 30.0, "elapsed {}", rep.elapsed_s);
    assert!(!rep.tape_finished);
}

#[test]
fn the_cli_exits_3_after_a_stall() {
    let out = Command::new(env!("CARGO_BIN_EXE_qalpha"))
        .args([
            "demo",
            "--duration",
            "60s",
            "--speed",
            "5",
            "--stall-after",
            "1s",
        ])
        .args(["--fault-stall-strategy", "3s"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "stderr: {err}");
    assert!(err.contains("the strategy thread has stalled"), "{err}");
    assert!(err.contains("open at the venue after: 0"), "{err}");
}

/// `--flatten-on-exit`: a stop (what SIGTERM sets) with a position open ends flat — the open
/// orders cancelled, then the position closed at the venue. A run that happens to be flat at the
/// stop proves nothing, so up to three runs are tried for one that was not.
#[test]
fn flatten_on_exit_closes_the_position_at_the_venue() {
    for attempt in 0..3 {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let stopper = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(5 + attempt));
            s.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        let o = DemoOptions {
            duration: Duration::from_secs(60),
            speed: 5.0,
            capture: SAMPLE.into(),
            wait: WaitMode::Park,
            progress_every: None,
            mode: DemoMode::Mock,
            strategy: qalpha_tools::demo_cmd::strategy::StrategySpec::named("obi-taker"),
            flatten_on_exit: true,
            ..Default::default()
        };
        let rep = run_demo(&o, stop).unwrap();
        stopper.join().unwrap();
        assert!(!rep.tape_finished);
        assert_eq!(rep.open_orders, 0, "{rep:?}");
        let Some(was) = rep.flattened.clone() else {
            continue;
        };
        assert_ne!(was, "0");
        assert_eq!(
            rep.position, "0",
            "not flat after flattening {was}: {rep:?}"
        );
        assert!(
            rep.final_positions.values().all(|q| q == "0"),
            "{:?}",
            rep.final_positions
        );
        return;
    }
    panic!("three runs stopped flat: nothing to flatten");
}
