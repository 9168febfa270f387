#!/usr/bin/env bash
# Fuzzes every reader of outside input for a fixed number of executions per target:
#   tools/fuzz.sh [RUNS]          (default 100000)
# With nightly Rust and cargo-fuzz installed (`cargo install cargo-fuzz`): coverage-guided libFuzzer
# on the targets in fuzz/, each corpus seeded from `qalpha fuzz --seeds-out` (the bundled sample and
# ../shared/data) plus fuzz/regressions. Otherwise: the stable mutation fuzzer `qalpha fuzz` on the
# same targets. Findings go to fuzz/artifacts/<target>/ (libFuzzer) or target/fuzz-findings/;
# once fixed, copy each under fuzz/regressions/<target>/ — `cargo test` replays them.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-100000}"
targets=(binance_frames bybit_frames capture journals config)
cargo build --release -q -p qalpha-tools --bin qalpha
if cargo +nightly fuzz --version >/dev/null 2>&1; then
  target/release/qalpha fuzz --seeds-out fuzz/corpus
  for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    cp -n fuzz/regressions/"$t"/* "fuzz/corpus/$t/" 2>/dev/null || true
    echo "== cargo fuzz run $t ($runs runs)"
    (cd fuzz && cargo +nightly fuzz run "$t" "corpus/$t" -- -runs="$runs")
  done
else
  echo "cargo-fuzz (nightly) not found: running the stable mutation fuzzer"
  target/release/qalpha fuzz --runs "$runs"
fi
