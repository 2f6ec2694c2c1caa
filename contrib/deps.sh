#!/usr/bin/env bash
# Installs what pacxfer's tests and demo need: pacman and its tools (makepkg, repo-add),
# bsdtar, zstd, fakeroot, gpg, and the test IPFS node's npm packages (tests/ipfs-node).
# Works on Debian 12 (as root, or with sudo) and on Arch. Safe to run again: it only
# installs what is missing.
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
        local want=(pacman-package-manager makepkg libarchive-tools zstd fakeroot gpg passwd curl ca-certificates)
        command -v npm >/dev/null || want+=(npm)
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
        as_root pacman -S --needed --noconfirm pacman base-devel libarchive zstd gnupg npm curl >/dev/null
    else
        say "unknown system: install pacman, makepkg, repo-add, bsdtar, zstd, fakeroot, gpg and npm by hand"
    fi
}

install_ipfs_node() {
    local dir=tests/ipfs-node stamp=tests/ipfs-node/node_modules/.pacxfer-lock
    if [ -x "$dir/node_modules/.bin/node" ] && [ -f "$stamp" ] && cmp -s "$dir/package-lock.json" "$stamp"; then
        return
    fi
    say "installing the test IPFS node (npm ci)"
    (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    cp "$dir/package-lock.json" "$stamp"
}

install_system_packages
install_ipfs_node
