//! The fuzz targets (`qalpha_tools::fuzz`) on every test run: each input under
//! `fuzz/regressions/<target>/` (what fuzzing found, fixed) must run without a panic, and a bounded
//! mutation run of every target from its seeds (the bundled sample, `../shared/data`) must find
//! nothing. The mutation seed is fixed, so the inputs are the same on every machine.

use std::path::PathBuf;

use qalpha_tools::fuzz::{fuzz, regressions, run_target, seeds, TARGETS};

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

#[test]
fn every_regression_input_runs_clean() {
    let mut n = 0;
    for t in TARGETS {
        for (p, bytes) in regressions(t, &repo()) {
            eprintln!("{t}: {}", p.display());
            run_target(t, &bytes);
            n += 1;
        }
    }
    assert!(n >= 1, "no regression inputs found under fuzz/regressions");
}

#[test]
fn seeds_come_from_real_data() {
    for t in TARGETS {
        let s = seeds(t, &repo());
        assert!(!s.is_empty(), "{t}");
    }
    // The frame targets are seeded from the shared captures when present.
    if repo()
        .join("../shared/data/bybit-v5/public-frames.jsonl")
        .is_file()
    {
        assert!(seeds("bybit_frames", &repo()).len() >= 10);
        assert!(seeds("binance_frames", &repo()).len() >= 10);
    }
}

#[test]
fn a_bounded_mutation_run_finds_nothing() {
    let findings = tempfile::tempdir().unwrap();
    for t in TARGETS {
        let r = fuzz(t, 3_000, 1, &repo(), findings.path()).unwrap();
        assert_eq!(r.runs, 3_000);
        assert!(r.findings.is_empty(), "{t}: {:?}", r.findings);
    }
}
