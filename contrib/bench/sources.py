#!/usr/bin/env python3
"""Build sources by checksum (BENCHMARKS.md, "Build sources by checksum").

    contrib/bench/sources.py [--rate 5] [--latency 40] [--rounds 3] [--work DIR] [--keep]

Three PKGBUILDs shaped like tests/makepkg/sources.rs's (a 3 MB source pinned by sha256 with a
local patch, a split package with a 0.5 MB per-architecture source pinned by sha512, a 100 MB
source pinned by b2 alone) whose sources live on an upstream server behind a simulated link
(bench.py serve: one token bucket of --rate MB/s shared by all connections, --latency ms per
request). For each, the download phase of real makepkg (`makepkg -o`: download, check the
sums) run as the unprivileged `builder` user, timed from spawn to exit, with:

- makepkg's own agent (curl, /etc/makepkg.conf's DLAGENTS) from upstream;
- `pacxfer dlagent` while the node holds nothing (from upstream: the agent's own cost);
- `pacxfer dlagent` with the sources in the node (shared by the agent's first run);
- makepkg's own part: the same run with every source already in place (nothing downloaded;
  makepkg still starts, reads the PKGBUILD and checks every sum);
- the node's floor: curl of each source from the node's gateway by CID, one after the other.

Rounds run interleaved (A B C D A B C D ...); medians, minima and maxima are printed with the
ratio to curl from upstream. Needs root (runuser), a `builder` user (made when missing),
makepkg, curl, Kubo (.kubo/bin/ipfs or PATH) and a release build (target/release/pacxfer).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import ENV, TOP, fresh_work, start_kubo, start_server, stop  # noqa: E402

PACXFER = TOP / "target" / "release" / "pacxfer"


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def random_bytes(n: int, seed: int) -> bytes:
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha512(f"{seed}-{i}".encode()).digest()
        i += 1
    return bytes(out[:n])


def pkgbuild(head: str, body: str) -> str:
    return (f"pkgver=1.0\npkgrel=1\npkgdesc='pacxfer sources benchmark'\nlicense=(MIT)\n"
            f"options=(!strip !debug)\n{head}\n{body}\n")


def run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(argv, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise SystemExit(f"exit status {r.returncode} from {' '.join(argv)}:\n{r.stderr}")
    return r


def as_builder(argv: list[str], cwd: Path, env: dict[str, str]) -> list[str]:
    pairs = [f"{k}={v}" for k, v in env.items()]
    return ["runuser", "-u", "builder", "--", "env", "-i", *pairs, *argv]


def timed(argv: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    took = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"exit status {r.returncode} from {' '.join(argv)}:\n{r.stderr}")
    return took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=5.0, help="upstream link, MB/s")
    ap.add_argument("--latency", type=float, default=40.0, help="upstream latency per request, ms")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--work", type=Path, default=Path("/tmp/pacxfer-bench-sources"))
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: makepkg runs as the `builder` user through runuser")
    if not PACXFER.exists():
        raise SystemExit("build pacxfer first: cargo build --release")
    subprocess.run(["useradd", "-m", "builder"], capture_output=True)
    work = args.work
    fresh_work(work)
    os.chmod(work, 0o755)
    upstream = work / "upstream"
    upstream.mkdir()
    procs: list[subprocess.Popen] = []
    try:
        server, base = start_server(
            [sys.executable, str(Path(__file__).parent / "bench.py"), "serve", "--root",
             str(upstream), "--rate", str(args.rate), "--latency", str(args.latency),
             "--log", str(work / "upstream.log")], work / "server.log")
        procs.append(server)
        kubo, api, gateway = start_kubo(work / "ipfs", work / "kubo.log")
        procs.append(kubo)
        shutil.copy(PACXFER, work / "pacxfer")
        os.chmod(work / "pacxfer", 0o755)

        files = {
            "alpha-src.bin": random_bytes(3_000_000, 1),
            "beta-x86_64.bin": random_bytes(500_000, 2),
            "beta-aarch64.bin": random_bytes(400_000, 3),
            "gamma-big.bin": random_bytes(100 << 20, 4),
        }
        for name, data in files.items():
            (upstream / name).write_bytes(data)
        total = sum(len(d) for n, d in files.items() if n != "beta-aarch64.bin")
        sha256 = lambda n: hashlib.sha256(files[n]).hexdigest()  # noqa: E731
        patch = b"--- a\n+++ b\n"
        pkgs = {
            "alpha": (pkgbuild(
                f"pkgname=alpha\narch=(any)\nsource=(\"alpha-$pkgver.bin::{base}/alpha-src.bin\" "
                f"alpha.patch)\nsha256sums=('{sha256('alpha-src.bin')}' "
                f"'{hashlib.sha256(patch).hexdigest()}')",
                "package() { :; }"), {"alpha.patch": patch}),
            "beta": (pkgbuild(
                f"pkgbase=beta\npkgname=(beta beta-doc)\narch=(x86_64 aarch64)\n"
                f"source_x86_64=(\"{base}/beta-x86_64.bin\")\n"
                f"source_aarch64=(\"{base}/beta-aarch64.bin\")\n"
                f"sha512sums_x86_64=('{hashlib.sha512(files['beta-x86_64.bin']).hexdigest()}')\n"
                f"sha512sums_aarch64=('{hashlib.sha512(files['beta-aarch64.bin']).hexdigest()}')",
                "package_beta() { :; }\npackage_beta-doc() { :; }"), {}),
            "gamma": (pkgbuild(
                f"pkgname=gamma\narch=(any)\nsource=(\"{base}/gamma-big.bin\")\n"
                f"b2sums=('{hashlib.blake2b(files['gamma-big.bin']).hexdigest()}')",
                "package() { :; }"), {}),
        }
        home = work / "home"
        home.mkdir()
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C"}
        for name, (text, local) in pkgs.items():
            d = work / "pkgs" / name
            d.mkdir(parents=True)
            (d / "PKGBUILD").write_text(text)
            for f, data in local.items():
                (d / f).write_bytes(data)
        run(["chown", "-R", "builder:", str(work / "pkgs"), str(home)])
        for name in pkgs:
            d = work / "pkgs" / name
            r = run(as_builder(["makepkg", "--printsrcinfo"], d, env), cwd=d)
            (d / ".SRCINFO").write_text(r.stdout)
        run(["chown", "-R", "builder:", str(work / "pkgs")])

        conf = work / "pacxfer.conf"
        cache = work / "cache"
        cache.mkdir()
        run(["chown", "builder:", str(cache)])
        conf.write_text(
            f"cache_dir = {str(cache)!r}\n[gateway]\nurl = {gateway!r}\npaths = []\n"
            f"[share]\napi = {api!r}\nafter_fetch = true\nlan = false\n".replace("'", '"'))
        os.chmod(conf, 0o644)
        base_conf = Path("/etc/makepkg.conf").read_text()
        agent = f"{work / 'pacxfer'} --config {conf} dlagent --srcinfo $startdir"
        curl_conf = work / "makepkg-curl.conf"
        curl_conf.write_text(base_conf + "\nPKGEXT=.pkg.tar.zst\nCARCH=x86_64\n")
        ours_conf = work / "makepkg-pacxfer.conf"
        ours_conf.write_text(
            base_conf + f'\nDLAGENTS=("http::{agent} %u %o" "https::{agent} %u %o")\n'
            "PKGEXT=.pkg.tar.zst\nCARCH=x86_64\n")

        def clean() -> None:
            for name, (_, local) in pkgs.items():
                d = work / "pkgs" / name
                for p in d.iterdir():
                    if p.name in ("PKGBUILD", ".SRCINFO") or p.name in local:
                        continue
                    if p.is_dir():
                        shutil.rmtree(p)
                    else:
                        p.unlink()

        def download_phase(makepkg_conf: Path, fresh: bool = True) -> float:
            if fresh:
                clean()
            took = 0.0
            for name in pkgs:
                d = work / "pkgs" / name
                took += timed(as_builder(["makepkg", "--config", str(makepkg_conf), "-o",
                                          "--nodeps", "--noconfirm"], d, env), d)
            return took

        def clear_node() -> None:
            r = urllib.request.urlopen(urllib.request.Request(
                f"{api}/api/v0/files/rm?arg=/pacxfer&recursive=true&force=true", method="POST"))
            r.read()
            urllib.request.urlopen(urllib.request.Request(
                f"{api}/api/v0/repo/gc", method="POST")).read()

        cids: list[str] = []

        def node_floor() -> float:
            took = 0.0
            for cid in cids:
                took += timed(["curl", "-sSfo", "/dev/null", f"{gateway}/ipfs/{cid}"], work)
            return took

        results: dict[str, list[float]] = {k: [] for k in
                                           ("curl", "pacxfer-empty", "pacxfer-node", "makepkg", "floor")}
        for rnd in range(args.rounds):
            say(f"round {rnd + 1}/{args.rounds}")
            results["curl"].append(download_phase(curl_conf))
            clear_node()
            results["pacxfer-empty"].append(download_phase(ours_conf))
            # The agent shared each source after that run: the node now holds them all.
            if not cids:
                for name in files:
                    if name == "beta-aarch64.bin":
                        continue
                    req = urllib.request.Request(
                        f"{api}/api/v0/files/stat?arg=/pacxfer/{sha256(name)}", method="POST")
                    cids.append(json.load(urllib.request.urlopen(req))["Hash"])
            results["pacxfer-node"].append(download_phase(ours_conf))
            # makepkg's own part: the same run with every source already in place.
            results["makepkg"].append(download_phase(ours_conf, fresh=False))
            results["floor"].append(node_floor())
        hits = (work / "upstream.log").read_text().count("gamma-big.bin")
        base_med = statistics.median(results["curl"])
        print(f"sources: {total / 1e6:.1f} MB in 3 PKGBUILDs; upstream {args.rate:g} MB/s, "
              f"{args.latency:g} ms; {args.rounds} rounds; upstream sent gamma {hits} times")
        print("| case | median | min | max | x faster than curl |")
        print("|---|---:|---:|---:|---:|")
        labels = {
            "curl": "makepkg -o, curl from upstream",
            "pacxfer-empty": "makepkg -o, pacxfer dlagent, node empty (from upstream)",
            "pacxfer-node": "makepkg -o, pacxfer dlagent, sources in the node",
            "makepkg": "makepkg -o with every source already in place (makepkg's own part)",
            "floor": "the node's floor: curl of each source from its gateway",
        }
        for key, label in labels.items():
            ts = results[key]
            med = statistics.median(ts)
            print(f"| {label} | {med:.2f} s | {min(ts):.2f} s | {max(ts):.2f} s | "
                  f"{base_med / med:.2f} |")
    finally:
        stop(procs)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
