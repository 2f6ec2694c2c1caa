#!/usr/bin/env bash
# pacxfer's benchmark, one command: installs what it needs, builds pacxfer (release), then runs
# contrib/bench/bench.py, which generates an Arch-sized repository (15,000 db entries, 50 real
# packages, ~250 MB), starts an offline Kubo node (contrib/deps.sh's .kubo/bin/ipfs, else the
# `ipfs` on PATH), a mirror behind a simulated 20 MB/s, 50 ms link and a loopback file server,
# and prints the table that BENCHMARKS.md shows.
#
# Run it as root (case 6's `pacman -Sw` refuses other users), on Debian 12 or Arch.
#
#   ./contrib/bench.sh            # the full run (~5 minutes on 2 cores)
#   ./contrib/bench.sh --quick    # a smoke run (~2 minutes)
#   ./contrib/bench.sh --rate 50 --latency 20 --keep --markdown /tmp/table.md
#   ./contrib/bench.sh --publish  # `pacxfer publish` of 15,000 packages (~45 min; --quick ~1 min)
#   ./contrib/bench.sh --prefetch # an upgrade of 40 packages: `pacxfer prefetch` + `pacman -Syu`
#                                 # against pacman's own downloader (~4 minutes; --quick ~1)
#
# Options go to bench.py (`contrib/bench/bench.py run --help`, `... publish --help`,
# `... prefetch --help`). Everything happens under --work (default /tmp/pacxfer-bench), removed
# at the end unless --keep; the pacxfer processes keep their indexes and breaker state there
# (PACXFER_CACHE_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

say() { printf '==> %s\n' "$*" >&2; }

case=run
case "${1:-}" in
    --publish) case=publish; shift ;;
    --prefetch) case=prefetch; shift ;;
esac
[ "$case" = publish ] || [ "$(id -u)" = 0 ] ||
    { say "run as root: pacman (case 6 of run, every scenario of prefetch) refuses other users"; exit 1; }
./contrib/deps.sh
# Beyond what the tests need: Python 3 (standard library only) and openssl (sha256 speed).
missing=()
for tool in python3 openssl gzip; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    if command -v apt-get >/dev/null; then
        say "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        say "install ${missing[*]} first"
        exit 1
    fi
fi

say "building pacxfer (release)"
cargo build --release --locked --quiet

say "load before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
exec python3 contrib/bench/bench.py "$case" --pacxfer "$top/target/release/pacxfer" "$@"
