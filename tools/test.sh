#!/usr/bin/env bash
# The project's one test command (README, .ci/run): formatting, lints, and every test.
# Sets up what the tests need on a fresh machine: the Rust toolchain's components are checked here;
# the Python venv for tools/train (TA-Lib reference) is created below; later issues add the test
# servers they start.
set -euo pipefail
cd "$(dirname "$0")/.."

# Disk: a clean build's target/ is ~3.5 GB (Cargo.toml keeps only line tables for our crates and no
# debug info for dependencies; with full debug info it was ~40 GB and filled a CI disk) and the venv
# below ~6 GB. Under CI the build is done once, so no incremental caches.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi
echo "== disk: $(df -Ph . | awk 'NR==2 {print $4 " free on " $6}')"

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

# The metrics test (tools/tests/prometheus_scrape.rs) scrapes the engine with Debian's prometheus
# server and checks configs/ with its promtool; it skips with a message when they are missing.
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  sudo=()
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then sudo=(sudo); fi
  { "${sudo[@]}" apt-get update -qq &&
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus; } ||
    echo "warning: could not install prometheus; the Prometheus scrape test will skip"
fi

# tools/train/.venv: the Python side of the tests — the TA-Lib and backtesting.py references
# (requirements-ta.txt: strategy/tests/talib.rs, tools/tests/backtest_reference.rs) and the trainers
# (requirements-train.txt: PyTorch + Lightning, pyarrow; tools/train/tests, the dataset test).
# Reinstalled when either file changes (their hash is kept in a stamp file). The tests fail without
# it, so a missing Python or pip stops here rather than later.
echo "== tools/train/.venv (references and trainers)"
venv=tools/train/.venv
reqs=(tools/train/requirements-ta.txt tools/train/requirements-train.txt)
stamp="$venv/.requirements.sha256"
if ! command -v python3 >/dev/null; then
  echo "error: python3 not found; the Python tests need it (install python3 and python3-venv)" >&2
  exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv" || {
    echo "error: 'python3 -m venv $venv' failed; install python3-venv (Debian/Ubuntu) and rerun" >&2
    rm -rf "$venv"
    exit 1
  }
fi
want=$(cat "${reqs[@]}" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  rm -f "$stamp"
  "$venv/bin/python" -m pip --version >/dev/null 2>&1 || {
    echo "error: pip is not available in $venv; install python3-pip / python3-venv, delete $venv and rerun" >&2
    exit 1
  }
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "${reqs[0]}" -r "${reqs[1]}" || {
    echo "error: could not install ${reqs[*]} into $venv (network or PyPI unreachable?)" >&2
    exit 1
  }
  echo "$want" >"$stamp"
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
# Every test binary runs even after one fails, so a failure's report names all of them at its end.
cargo test --workspace --no-fail-fast
echo "== pytest tools/train (shapes, losses, export, resume, DDP on CPU; parity with tract through target/debug/qalpha)"
QALPHA_BIN="$PWD/target/debug/qalpha" "$venv/bin/python" -m pytest tools/train/tests -q
echo "== README run command: the demo on the bundled sample (mock exchange in-process, no keys)"
# The binary `cargo test` built (the same program; `cargo run -p qalpha-tools` alone would rebuild
# tract and the rest for its own feature set: this step took ~10 min on a clean clone here).
"$PWD/target/debug/qalpha" demo --json target/demo-summary.json
echo "== the bundled sample replays with every book checked"
"$PWD/target/debug/qalpha" replay data/sample/btcusdt-usdm-20230404.qcap --check-book --json
