#!/usr/bin/env bash
# pacxfer's main job, shown end to end on this machine: builds pacxfer, builds three small
# packages into a repository, serves it as a mirror on 127.0.0.1, starts an offline Kubo node
# (IPFS) holding two of the packages, and runs real pacman with pacxfer as its XferCommand.
# At the end it prints which package came from where (the mirror's log) and what Kubo's
# gateway answered (its own response counter: Kubo keeps no access log).
#
#   ./contrib/demo.sh        # Debian 12 as root (installs what it needs), or Arch
#
# Everything lives in a temporary directory that is removed on exit (KEEP=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

say() { printf '\n==> %s\n' "$*" >&2; }

./contrib/deps.sh
say "building pacxfer (release)"
cargo build --release --locked --quiet
pacxfer=$top/target/release/pacxfer

work=$(mktemp -d /tmp/pacxfer-demo.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "${KEEP:-0}" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

say "building packages with makepkg"
repo=$work/mirror/demo/os/x86_64
mkdir -p "$repo" "$work/build"
build_as=()
if [ "$(id -u)" = 0 ]; then
    id builder >/dev/null 2>&1 || useradd -m builder
    chown -R builder: "$work/build"
    build_as=(runuser -u builder --)
fi
for spec in "hello-ipfs:200000" "big-ipfs:3145728" "only-mirror:100000"; do
    name=${spec%%:*} size=${spec##*:}
    mkdir -p "$work/build/$name"
    cat >"$work/build/$name/PKGBUILD" <<PKG
pkgname=$name
pkgver=1.0
pkgrel=1
pkgdesc='pacxfer demo package'
arch=(any)
license=(MIT)
options=(!strip !debug)
package() {
  install -d "\$pkgdir/usr/share/$name"
  head -c $size /dev/urandom > "\$pkgdir/usr/share/$name/data"
}
PKG
    [ "$(id -u)" = 0 ] && chown -R builder: "$work/build/$name"
    (cd "$work/build/$name" && "${build_as[@]}" env PKGEXT=.pkg.tar.zst PKGDEST="$work/build/$name" \
        makepkg --nodeps --noconfirm --force >/dev/null 2>&1)
    cp "$work/build/$name"/*.pkg.tar.zst "$repo/"
done
(cd "$repo" && repo-add -q demo.db.tar.gz ./*.pkg.tar.zst)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Kubo: the `ipfs` that contrib/deps.sh built, else the one on PATH (as tests/harness/kubo.rs does).
if [ -x "$top/.kubo/bin/ipfs" ]; then ipfs=$top/.kubo/bin/ipfs; else ipfs=ipfs; fi
# Kubo's unixfs-v1-2025 import settings, spelled out: files up to 1 MiB are one raw block.
profile="cid-version=1&raw-leaves=true&chunker=size-1048576&hash=sha2-256"

say "starting the mirror (python3 http.server) and the IPFS node (Kubo $("$ipfs" version --number), offline)"
mirror_port=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$work/mirror" "$mirror_port" \
    >/dev/null 2>"$work/mirror.log" &
pids+=($!)
# A throwaway repository: loopback only, no bootstrap peers, no mDNS (--profile=test); RPC
# API, gateway and swarm on ports the kernel picks, read back from the daemon's output.
ipfs_repo=$work/ipfs
IPFS_PATH=$ipfs_repo "$ipfs" init --profile=test >"$work/ipfs-init.log" 2>&1 ||
    { cat "$work/ipfs-init.log" >&2; say "ipfs init failed"; exit 1; }
IPFS_PATH=$ipfs_repo "$ipfs" config Addresses.API /ip4/127.0.0.1/tcp/0
IPFS_PATH=$ipfs_repo "$ipfs" config Addresses.Gateway /ip4/127.0.0.1/tcp/0
IPFS_PATH=$ipfs_repo "$ipfs" config --json Addresses.Swarm '["/ip4/127.0.0.1/tcp/0"]'
IPFS_PATH=$ipfs_repo GOLOG_LOG_LEVEL=error "$ipfs" daemon --offline </dev/null >"$work/ipfs.log" 2>&1 &
ipfs_pid=$!
pids+=("$ipfs_pid")
for _ in $(seq 600); do
    grep -q "Daemon is ready" "$work/ipfs.log" 2>/dev/null && break
    kill -0 "$ipfs_pid" 2>/dev/null || break
    sleep 0.1
done
listening_port() { sed -n "s|^$1 listening on .*/tcp/\([0-9]*\).*|\1|p" "$work/ipfs.log" | head -n1; }
api_port=$(listening_port "RPC API server")
gateway_port=$(listening_port "Gateway server")
if ! grep -q "Daemon is ready" "$work/ipfs.log" || [ -z "$api_port" ] || [ -z "$gateway_port" ]; then
    cat "$work/ipfs.log" >&2
    say "the IPFS node did not start"
    exit 1
fi
api=http://127.0.0.1:$api_port
gateway=http://127.0.0.1:$gateway_port
echo "mirror:  http://127.0.0.1:$mirror_port   IPFS gateway: $gateway   Kubo RPC API: $api"

say "putting hello-ipfs (one raw block) and big-ipfs (a sha256-named directory, published under an IPNS key) into IPFS"
hello=$(ls "$repo"/hello-ipfs-*.pkg.tar.zst)
big=$(ls "$repo"/big-ipfs-*.pkg.tar.zst)
curl -fsS -X POST -F "file=@$hello" "$api/api/v0/add?$profile&pin=true" >/dev/null
big_sha=$(sha256sum "$big" | cut -d' ' -f1)
dir_cid=$(curl -fsS -X POST -F "file=@$big;filename=$big_sha" \
    "$api/api/v0/add?$profile&wrap-with-directory=true&pin=true" |
    sed -n 's/.*"Name":"","Hash":"\([^"]*\)".*/\1/p')
[ -n "$dir_cid" ] || { say "adding big-ipfs gave no directory CID"; exit 1; }
curl -fsS -X POST "$api/api/v0/key/gen?arg=pkgcache&type=ed25519" >/dev/null
# The gateway wants the key's IPNS name (k51...), not the key's local name.
ipns_name=$(curl -fsS -X POST \
    "$api/api/v0/name/publish?arg=/ipfs/$dir_cid&key=pkgcache&allow-offline=true&lifetime=1h" |
    sed -n 's/.*"Name":"\([^"]*\)".*/\1/p')
[ -n "$ipns_name" ] || { say "name/publish gave no IPNS name"; exit 1; }
echo "directory: /ipfs/$dir_cid   published as /ipns/$ipns_name"

mkdir -p "$work"/{root,db,cache,gnupg,hooks}
cat >"$work/pacxfer.conf" <<CONF
dbpath = "$work/db"
pacman_conf = "$work/pacman.conf"
[gateway]
url = "$gateway"
paths = ["/ipfs/{cid}", "/ipns/$ipns_name/{sha256}"]
CONF
cat >"$work/pacman.conf" <<CONF
[options]
RootDir = $work/root
DBPath = $work/db/
CacheDir = $work/cache/
LogFile = $work/pacman.log
GPGDir = $work/gnupg/
HookDir = $work/hooks/
Architecture = x86_64
SigLevel = Never
XferCommand = $pacxfer --config $work/pacxfer.conf %u %o

[demo]
Server = http://127.0.0.1:$mirror_port/\$repo/os/\$arch
CONF

say "pacman -Sy"
pacman --config "$work/pacman.conf" -Sy
say "pacman -S --noconfirm hello-ipfs big-ipfs only-mirror"
pacman --config "$work/pacman.conf" -S --noconfirm hello-ipfs big-ipfs only-mirror

say "where each package came from (not in the mirror's log: from the gateway)"
for f in "$repo"/*.pkg.tar.zst; do
    name=$(basename "$f")
    if grep -q "GET /demo/os/x86_64/$name" "$work/mirror.log"; then
        from="mirror (http://127.0.0.1:$mirror_port)"
    else
        from="ipfs (Kubo gateway $gateway)"
    fi
    if [ "$(sha256sum <"$work/cache/$name" | cut -d' ' -f1)" = "$(sha256sum <"$f" | cut -d' ' -f1)" ]; then
        ok="sha256 ok"
    else
        ok="SHA256 WRONG"
    fi
    printf '  %-40s %-44s %s\n' "$name" "$from" "$ok"
done
printf '  %-40s %s\n' "demo.db" "mirror (not listed in any database)"
echo
echo "Kubo gateway responses, by status (ipfs_http_gw_responses_total; Kubo keeps no access log):"
curl -fsS "$api/debug/metrics/prometheus" |
    sed -n 's/^ipfs_http_gw_responses_total{code="\([0-9]*\)"} \(.*\)/  \1: \2/p'
