#!/usr/bin/env bash
# The project's one test command (README, .ci/run): formatting, lints, and every test.
# Sets up what the tests need on a fresh machine: the Rust toolchain's components are checked here;
# later issues add the Python venv for tools/train and the test servers they start.
set -euo pipefail
cd "$(dirname "$0")/.."

for comp in rustfmt clippy; do
  if ! cargo "${comp/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$comp"
  fi
done

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace
echo "== README run command on the bundled sample"
cargo run -q -p qalpha-tools --bin qalpha -- replay data/sample/btcusdt-usdm-20230404.qcap --check-book --json
