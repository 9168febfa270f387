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

# The pcap interop tests (tools/tests/pcap_*.rs) run Debian's tcpdump and tshark; they skip
# with a message when these are missing, so a failed install only warns.
if ! command -v tshark >/dev/null || ! command -v tcpdump >/dev/null; then
  sudo=()
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then sudo=(sudo); fi
  { "${sudo[@]}" apt-get update -qq &&
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tshark tcpdump; } ||
    echo "warning: could not install tshark/tcpdump; the pcap interop tests will skip"
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace
echo "== README run command: the demo on the bundled sample (mock exchange in-process, no keys)"
cargo run -q -p qalpha-tools --bin qalpha -- demo --json target/demo-summary.json
echo "== the bundled sample replays with every book checked"
cargo run -q -p qalpha-tools --bin qalpha -- replay data/sample/btcusdt-usdm-20230404.qcap --check-book --json
