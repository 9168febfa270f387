//! `qalpha bench` end to end on a small budget: the mock exchange streams the bundled capture over
//! TLS, the engine's feed, a trigger strategy and the gateway answer with orders, and every order is
//! paired with the frame that caused it. Asserts the shape and the bookkeeping of the report (every
//! order measured, every stage present, the micro-benchmarks there) — never a timing.

use std::process::Command;

use serde_json::Value;

#[test]
fn the_suite_measures_every_order_and_reports_stages_and_micro() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let out = Command::new(env!("CARGO_BIN_EXE_qalpha"))
        .args([
            "bench",
            "--quick",
            "--orders",
            "400",
            "--every",
            "4",
            "--trinity-every",
            "5",
            "--variants",
            "epoll,epoll+trinity",
            "--json",
        ])
        .arg(&json)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("tick-to-order"), "{text}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(v["machine"]["cores"].as_u64().unwrap() >= 1);
    let t = &v["tick_to_order"];
    assert_eq!(v["tick_to_order_variant"], "epoll");
    for k in ["samples", "p50_us", "p90_us", "p99_us", "p999_us", "max_us"] {
        assert!(t[k].as_f64().is_some(), "{k}: {t}");
    }
    let p = |k: &str| t[k].as_f64().unwrap();
    assert!(p("p50_us") <= p("p90_us") && p("p90_us") <= p("p99_us") && p("p99_us") <= p("max_us"));
    let variants = v["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 2);
    for r in variants {
        // Every order the strategy sent was seen by the mock and paired with its frame.
        assert_eq!(r["orders_sent"], 400, "{r}");
        assert_eq!(r["orders_matched"], r["orders_sent"], "{r}");
        assert_eq!(r["tick_to_order"]["samples"], 400);
        assert_eq!(r["risk_rejects"], 0);
        assert_eq!(
            r["venue_rejects"], 0,
            "the IOC orders expire, none is refused"
        );
        let stages = r["stages"].as_array().unwrap();
        assert_eq!(stages.len(), 9);
        for s in stages {
            assert_eq!(s[1]["samples"], 400, "{s}");
        }
    }
    assert_eq!(variants[1]["trinity"], true);
    for k in [
        "decode_depth_simd_json",
        "decode_depth_serde_json",
        "ring_hop_rtrb",
        "ring_hop_crossbeam_arrayqueue",
        "feed_record_decode_book_apply",
        "feature_update_orderflow",
        "order_encode_sign_binance_ws",
        "capture_read_per_record",
        "inference_trinity_tract",
    ] {
        assert!(v["micro"][k]["ns_per_op"].as_f64().unwrap() > 0.0, "{k}");
    }
    // Bad arguments are clear errors.
    let bad = Command::new(env!("CARGO_BIN_EXE_qalpha"))
        .args(["bench", "--variants", "fast", "--no-micro"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--variants \"fast\""));
}
