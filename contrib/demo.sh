#!/usr/bin/env bash
# pacxfer's main job, shown end to end on this machine: builds pacxfer, builds three small
# packages into a repository, serves it as a mirror on 127.0.0.1, starts the test IPFS node
# holding two of the packages, and runs real pacman with pacxfer as its XferCommand.
# At the end it prints which package came from where, from the servers' own logs.
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

say "starting the mirror (python3 http.server) and the IPFS node"
mirror_port=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$work/mirror" "$mirror_port" \
    >/dev/null 2>"$work/mirror.log" &
pids+=($!)
node_dir=$top/tests/ipfs-node
"$node_dir/node_modules/.bin/node" "$node_dir/server.mjs" --repo "$work/ipfs" --port 0 \
    --log "$work/ipfs.log" >"$work/ipfs.out" 2>/dev/null &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/ipfs.out" 2>/dev/null && break; sleep 0.1; done
gateway=$(sed -n 's/^listening //p' "$work/ipfs.out")
[ -n "$gateway" ] || { say "the IPFS node did not start"; exit 1; }
echo "mirror:  http://127.0.0.1:$mirror_port   IPFS gateway: $gateway"

say "putting hello-ipfs (one raw block) and big-ipfs (a sha256-named directory) into IPFS"
hello=$(ls "$repo"/hello-ipfs-*.pkg.tar.zst)
big=$(ls "$repo"/big-ipfs-*.pkg.tar.zst)
curl -fsS -X POST -F "file=@$hello" "$gateway/api/v0/add?cid-version=1&raw-leaves=true&pin=true" >/dev/null
big_sha=$(sha256sum "$big" | cut -d' ' -f1)
dir_cid=$(curl -fsS -X POST -F "file=@$big;filename=$big_sha" \
    "$gateway/api/v0/add?cid-version=1&wrap-with-directory=true&pin=true" |
    sed -n 's/.*"Name":"","Hash":"\([^"]*\)".*/\1/p')
curl -fsS -X POST "$gateway/api/v0/name/publish?arg=/ipfs/$dir_cid&key=pkgcache" >/dev/null

mkdir -p "$work"/{root,db,cache,gnupg,hooks}
cat >"$work/pacxfer.conf" <<CONF
dbpath = "$work/db"
pacman_conf = "$work/pacman.conf"
[gateway]
url = "$gateway"
paths = ["/ipfs/{cid}", "/ipns/pkgcache/{sha256}"]
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

say "where each package came from (from the servers' logs)"
for f in "$repo"/*.pkg.tar.zst; do
    name=$(basename "$f")
    if grep -q "GET /demo/os/x86_64/$name" "$work/mirror.log"; then
        from="mirror (http://127.0.0.1:$mirror_port)"
    else
        from="IPFS node"
    fi
    if [ "$(sha256sum <"$work/cache/$name" | cut -d' ' -f1)" = "$(sha256sum <"$f" | cut -d' ' -f1)" ]; then
        ok="sha256 ok"
    else
        ok="SHA256 WRONG"
    fi
    printf '  %-40s %-34s %s\n' "$name" "$from" "$ok"
done
printf '  %-40s %s\n' "demo.db" "mirror (not listed in any database)"
echo
echo "IPFS node requests:"
sed 's/^/  /' "$work/ipfs.log"
