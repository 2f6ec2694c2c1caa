#!/usr/bin/env bash
# Installs what pacxfer's tests and demo need: pacman and its tools (makepkg, repo-add),
# bsdtar, zstd, fakeroot, gpg, and Kubo (the IPFS node). Works on Debian 12 (as root, or with
# sudo) and on Arch. Safe to run again: it only installs what is missing.
#
# Kubo: an `ipfs` on PATH of at least KUBO_VERSION is used as it is (Arch: `pacman -S kubo`).
# Otherwise the pinned version is built from the Go module proxy into .kubo/bin/ipfs (ignored
# by git) and reused by later runs; the first build takes 3-6 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else say "need root for: $*"; return 1
    fi
}

install_system_packages() {
    if command -v apt-get >/dev/null; then
        local want=(pacman-package-manager makepkg libarchive-tools zstd fakeroot gpg passwd curl ca-certificates util-linux)
        local missing=()
        for p in "${want[@]}"; do
            dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
        done
        if [ ${#missing[@]} -gt 0 ]; then
            say "installing ${missing[*]}"
            as_root apt-get update -qq
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        fi
    elif command -v pacman >/dev/null && [ -f /etc/arch-release ]; then
        as_root pacman -S --needed --noconfirm pacman base-devel libarchive zstd gnupg curl go >/dev/null
    else
        say "unknown system: install pacman, makepkg, repo-add, bsdtar, zstd, fakeroot, gpg and Go by hand"
    fi
}

KUBO_VERSION=0.43.1
KUBO_MODULE=github.com/ipfs/kubo
# Kubo v0.43.1's go.mod replaces go-libp2p with a pre-release fork that the Go module proxy
# does not serve; go-libp2p v0.50.0 is the release that followed that fork.
LIBP2P_RELEASE=v0.50.0

kubo_version_of() { "$1" version --number 2>/dev/null || true; }

at_least() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

install_kubo() {
    local dir=.kubo bin=.kubo/bin/ipfs log=.kubo/build.log
    local have
    if command -v ipfs >/dev/null; then
        have=$(kubo_version_of ipfs)
        if [ -n "$have" ] && at_least "$have" "$KUBO_VERSION"; then
            say "using Kubo $have from $(command -v ipfs)"
            rm -f "$bin"
            return
        fi
    fi
    if [ -x "$bin" ] && [ "$(kubo_version_of "$bin")" = "$KUBO_VERSION" ]; then
        return
    fi
    command -v go >/dev/null || { say "error: Kubo is not installed and there is no Go to build it; install Go or kubo"; exit 1; }
    mkdir -p "$dir/bin"
    say "building Kubo $KUBO_VERSION from the Go module proxy into $bin (first time: 3-6 minutes; log: $log)"
    local started=$SECONDS
    if ! build_kubo >"$log" 2>&1; then
        say "error: building Kubo $KUBO_VERSION failed; see $log"
        tail -n 5 "$log" >&2
        exit 1
    fi
    say "built Kubo $("$bin" version --number) in $((SECONDS - started)) s"
}

build_kubo() {
    # `go install kubo@version` refuses modules with replace directives: build a copy of the
    # module instead. GOTOOLCHAIN=auto (Go's default) fetches a newer Go from the module proxy
    # when the module asks for one.
    local src
    src=$(go mod download -json "$KUBO_MODULE@v$KUBO_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p') || return 1
    [ -n "$src" ] || { echo "go mod download gave no directory"; return 1; }
    rm -rf .kubo/src && mkdir -p .kubo/src || return 1
    cp -r "$src" .kubo/src/kubo && chmod -R u+w .kubo/src/kubo || return 1
    (
        cd .kubo/src/kubo || exit 1
        if grep -q '^replace github.com/libp2p/go-libp2p =>' go.mod; then
            go mod edit -dropreplace github.com/libp2p/go-libp2p \
                -require "github.com/libp2p/go-libp2p@$LIBP2P_RELEASE" || exit 1
        fi
        GOFLAGS=-mod=mod go build -trimpath -o ../../bin/ipfs ./cmd/ipfs
    )
}

install_system_packages
install_kubo
