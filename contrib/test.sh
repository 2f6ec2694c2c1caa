#!/usr/bin/env bash
# Installs everything pacxfer's tests need, then runs them all: formatting, lints, unit tests,
# and the end-to-end tests against real pacman and real Kubo nodes (contrib/deps.sh builds Kubo).
#
#   ./contrib/test.sh            # from the repository, on Debian 12 (as root) or Arch
#
# Nothing is skipped: the end-to-end tests fail when pacman or the IPFS node is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*" >&2; }

./contrib/deps.sh

# Nothing the tests run depends on where the checkout lies: each test's directory, its caches
# and the pacxfer binary it runs live below /tmp (tests/harness/util.rs, shared_root), and every
# command gets the test's own environment, not this shell's (no proxy, no PACXFER_*, no XDG_*).

say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
say "cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --locked -- --test-threads "${PACXFER_TEST_THREADS:-2}" 2>&1 | tee "$log" || status=$?
# One closing line for the whole run, summed over the test binaries.
awk '/^test result:/ { p += $4; f += $6; i += $8 }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, i }' "$log"
exit "$status"
