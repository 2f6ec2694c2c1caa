#!/usr/bin/env bash
# Installs what pacxfer's tests and demo need: pacman and its tools (makepkg, repo-add),
# bsdtar, zstd, fakeroot, gpg, squid and openssl (the proxy tests start their own squid with a
# throwaway config), iproute2 (`ip netns` and `tc` for the simulated LAN), and Kubo (the IPFS
# node). Works on Debian 12 (as root, or with sudo) and on Arch. Safe to run again: it only installs what is missing.
#
# Kubo: an `ipfs` on PATH of at least KUBO_VERSION is used as it is (Arch: `pacman -S kubo`).
# Otherwise the pinned version is built from the Go module proxy into .kubo/bin/ipfs (ignored
# by git) and reused by later runs; the first build takes 3-6 minutes on 2 cores.
#
# ipfs-cluster: tests/publish/cluster_pins.rs runs a real two-peer cluster (`[publish] cluster`), with
# ipfs-cluster-service and ipfs-cluster-ctl CLUSTER_VERSION built from the Go module proxy into
# .cluster/bin (ignored by git) and reused by later runs; the first build takes 1-4 minutes.
#
# pacman 7: tests/pacman/pacman7.rs runs Debian trixie's pacman 7.0 in a minimal trixie root that
# debootstrap makes once into .pacman7/root (ignored by git), from the Debian mirror this
# machine's apt uses; about a minute (see install_pacman7_root).
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
        local want=(pacman-package-manager makepkg libarchive-tools zstd fakeroot gpg passwd curl ca-certificates util-linux systemd man-db groff-base zsh fish squid openssl time iproute2)
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
        as_root pacman -S --needed --noconfirm pacman base-devel libarchive zstd gnupg curl go squid openssl time iproute2 >/dev/null
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

# A writable copy of MODULE at VERSION (fetched by that exact version) in DEST, made anew.
copy_module() {
    local module=$1 version=$2 dest=$3 src
    src=$(go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p') || return 1
    [ -n "$src" ] || { echo "go mod download gave no directory for $module@$version"; return 1; }
    rm -rf "$dest" && mkdir -p "$(dirname "$dest")" || return 1
    cp -r "$src" "$dest" && chmod -R u+w "$dest"
}

build_kubo() {
    # `go install kubo@version` refuses modules with replace directives: build a copy of the
    # module instead. GOTOOLCHAIN=auto (Go's default) fetches a newer Go from the module proxy
    # when the module asks for one.
    copy_module "$KUBO_MODULE" "v$KUBO_VERSION" .kubo/src/kubo || return 1
    (
        cd .kubo/src/kubo || exit 1
        if grep -q '^replace github.com/libp2p/go-libp2p =>' go.mod; then
            go mod edit -dropreplace github.com/libp2p/go-libp2p \
                -require "github.com/libp2p/go-libp2p@$LIBP2P_RELEASE" || exit 1
        fi
        GOFLAGS=-mod=mod go build -trimpath -o ../../bin/ipfs ./cmd/ipfs
    )
}

CLUSTER_VERSION=1.1.6
CLUSTER_MODULE=github.com/ipfs-cluster/ipfs-cluster

install_cluster() {
    local bin=.cluster/bin log=.cluster/build.log
    if [ -x "$bin/ipfs-cluster-ctl" ] &&
        "$bin/ipfs-cluster-service" --version 2>/dev/null | grep -qx "ipfs-cluster-service version $CLUSTER_VERSION"; then
        return
    fi
    command -v go >/dev/null || { say "error: there is no Go to build ipfs-cluster $CLUSTER_VERSION; install Go"; exit 1; }
    mkdir -p "$bin"
    say "building ipfs-cluster $CLUSTER_VERSION from the Go module proxy into $bin (first time: 1-4 minutes; log: $log)"
    local started=$SECONDS
    if ! build_cluster >"$log" 2>&1; then
        say "error: building ipfs-cluster $CLUSTER_VERSION failed; see $log"
        tail -n 5 "$log" >&2
        exit 1
    fi
    say "built $("$bin/ipfs-cluster-service" --version) in $((SECONDS - started)) s"
}

build_cluster() {
    # `go install ipfs-cluster/cmd/...@v1.1.6` asks the proxy for the module's version list
    # (to look for a deprecation notice), which the proxy refuses: build a copy of the module,
    # fetched by its exact version, instead. Its go.mod asks for Go 1.26.
    copy_module "$CLUSTER_MODULE" "v$CLUSTER_VERSION" .cluster/src/ipfs-cluster || return 1
    (
        cd .cluster/src/ipfs-cluster || exit 1
        GOFLAGS=-mod=mod go build -trimpath -o ../../bin/ ./cmd/ipfs-cluster-service ./cmd/ipfs-cluster-ctl
    )
}

# pacman 7.0 for tests/pacman/pacman7.rs: Debian trixie's pacman-package-manager (7.0) with what
# it needs to run and to verify signatures (gpg), in a minimal trixie root made by debootstrap
# (`--variant=minbase`), plus the `alpm` user that `DownloadUser = alpm` switches to (Debian's
# package does not create it). The tests run pacman in it with chroot, in a private mount
# namespace (tests/harness/chroot.rs). Made once: .pacman7/root.done records the recipe it was made
# with, and a root without it (an interrupted run) is removed and made again, reusing the .debs
# already downloaded into .pacman7/debs. About a minute; its log is .pacman7/debootstrap.log.
# PACXFER_DEBIAN_MIRROR overrides the Debian mirror (default: the one apt uses here).
PACMAN7_DIR=.pacman7
PACMAN7_SUITE=trixie
PACMAN7_RECIPE="v1 $PACMAN7_SUITE minbase pacman-package-manager gpg user:alpm"

# The Debian archive this machine's apt uses (one-line .list or deb822 .sources files), so that
# a machine that reaches only its own mirror or proxy gets trixie from it too.
debian_mirror() {
    local files=() f uri
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && files+=("$f")
    done
    if [ ${#files[@]} -gt 0 ]; then
        uri=$(sed -n -e 's/^[[:space:]]*deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([a-z+]\+:\/\/[^[:space:]]\+\).*/\2/p' \
                     -e 's/^[[:space:]]*URIs:[[:space:]]*\(.*\)/\1/p' "${files[@]}" |
              tr ' ' '\n' | grep -E '^(https?|file)://' | grep -v -e security -e -ports | grep -E '/debian/?$' | head -n1) || true
    fi
    printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

# Unmounts whatever is still mounted below $1 (what an interrupted debootstrap leaves: proc, sys,
# a bound /dev), deepest first; fails if something stays mounted.
unmount_below() {
    local root m
    root=$(realpath "$1")
    awk -v r="$root" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/self/mounts | sort -r |
        while IFS= read -r m; do as_root umount -l "$m" || true; done
    ! awk -v r="$root" '$2 == r || index($2, r "/") == 1 { found = 1 } END { exit !found }' /proc/self/mounts
}

install_pacman7_root() {
    local dir=$PACMAN7_DIR root=$PACMAN7_DIR/root stamp=$PACMAN7_DIR/root.done log=$PACMAN7_DIR/debootstrap.log
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$PACMAN7_RECIPE" ] && [ -x "$root/usr/bin/pacman" ]; then
        return
    fi
    if ! command -v debootstrap >/dev/null; then
        if command -v apt-get >/dev/null; then
            say "installing debootstrap"
            as_root apt-get update -qq
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
        elif command -v pacman >/dev/null && [ -f /etc/arch-release ]; then
            as_root pacman -S --needed --noconfirm debootstrap debian-archive-keyring >/dev/null
        else
            say "error: debootstrap is missing: install it to make the pacman 7 root"; exit 1
        fi
    fi
    mkdir -p "$dir/debs"
    rm -f "$stamp"
    if [ -e "$root" ]; then
        say "removing the unfinished pacman 7 root $root"
        unmount_below "$root" || { say "error: something is still mounted below $root; unmount it and run again"; exit 1; }
        as_root rm -rf --one-file-system "$root"
    fi
    local mirror=${PACXFER_DEBIAN_MIRROR:-} started=$SECONDS
    [ -n "$mirror" ] || mirror=$(debian_mirror)
    say "making a Debian $PACMAN7_SUITE root with pacman 7 in $root from $mirror (once; about a minute; log: $log)"
    if ! as_root debootstrap --variant=minbase --include=pacman-package-manager,gpg \
            --cache-dir="$(realpath "$dir/debs")" "$PACMAN7_SUITE" "$root" "$mirror" >"$log" 2>&1; then
        unmount_below "$root" || true
        say "error: debootstrap of Debian $PACMAN7_SUITE from $mirror into $root failed; see $log"
        tail -n 5 "$log" >&2
        exit 1
    fi
    # DownloadUser = alpm: Arch's pacman package creates the user, Debian's does not.
    if ! as_root chroot "$root" getent passwd alpm >/dev/null; then
        as_root chroot "$root" useradd --system --no-create-home --home-dir / --shell /usr/sbin/nologin alpm >>"$log" 2>&1 ||
            { say "error: cannot create the alpm user in $root; see $log"; exit 1; }
    fi
    local version
    version=$(as_root chroot "$root" pacman --version 2>>"$log" | sed -n 's/.*Pacman v\([0-9.]*\).*/\1/p')
    case "$version" in
        7.*) ;;
        *) say "error: $root has pacman '${version:-none}', not 7.x; see $log"; exit 1 ;;
    esac
    printf '%s\n' "$PACMAN7_RECIPE" >"$stamp"
    say "made the pacman $version root in $((SECONDS - started)) s"
}

install_system_packages
install_kubo
install_cluster
install_pacman7_root
