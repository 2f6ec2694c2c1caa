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

# The tests keep pacxfer's caches below the checkout, and pacxfer uses a cache directory only
# when every directory above it belongs to root or to the user and nobody else can write it
# (see README, "The trust rule"). Say so at once when the checkout lies below one that fails.
dir=$(pwd -P)
while :; do
    read -r owner mode < <(stat -c '%u %a' "$dir")
    perm=$((8#$mode))
    if { [ "$owner" != 0 ] && [ "$owner" != "$(id -u)" ]; } ||
       { [ $((perm & 8#022)) != 0 ] && [ $((perm & 8#1000)) = 0 ]; }; then
        say "error: $dir (owner uid $owner, mode $mode) may be changed by another user; pacxfer's caches below it are refused by design. Run the tests from a checkout below directories owned by root or $(id -un)."
        exit 1
    fi
    [ "$dir" = / ] && break
    dir=$(dirname "$dir")
done

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
