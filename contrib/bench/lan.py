#!/usr/bin/env python3
"""pacxfer's LAN benchmark (root): three machines, each in its own network namespace on one
bridge, upgrade the same 30 packages (about 100 MB) from a mirror behind a simulated uplink
(a fourth namespace; `tc tbf` limits its rate, the mirror adds latency to each request).
Machine 1 upgrades first, then machines 2 and 3 at the same moment, as in
tests/ipfs/lan.rs. Three ways: pacman's own downloader on every machine (three full
downloads); pacman with pacxfer as XferCommand and a Kubo node on each machine (mDNS, no
bootstrap peers) sharing nothing (what pacxfer costs when IPFS has nothing); and the same
with `[share] after_fetch = true`. Printed: bytes over the uplink (the mirror
namespace's interface counter) and wall times, and their ratios.

    contrib/bench/lan.py [--rate MB/s] [--latency MS] [--rounds N] [--pacxfer BIN] [--markdown F]

The packages are the test's (target/pacxfer-fixtures/lan-v1, made by the first run of
`cargo test --test integration three_machines`). Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
REPO = TOP / "target" / "pacxfer-fixtures" / "lan-v1" / "mirror"
MIRROR_IP = "10.77.0.100"
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C",
       "LC_ALL": "C", "HOME": "/root"}


def say(msg: str) -> None:
    print(f"==> {msg}", file=sys.stderr, flush=True)


def sh(*argv: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), check=check, capture_output=True, text=True, env=ENV, **kw)


def ipfs_bin() -> str:
    local = TOP / ".kubo" / "bin" / "ipfs"
    return str(local) if local.exists() else (shutil.which("ipfs") or "ipfs")


class Lan:
    def __init__(self, work: Path, rate: float, latency: float, kubo: bool, pacxfer: str,
                 share: bool = True):
        self.work, self.pacxfer, self.share = work, pacxfer, share
        self.tag = f"pxb{os.getpid() % 10000}"
        self.switch, self.wan = f"{self.tag}s", f"{self.tag}w"
        self.machines = [f"{self.tag}m{i}" for i in (1, 2, 3)]
        self.procs: list[subprocess.Popen] = []
        for ns in [self.switch, self.wan, *self.machines]:
            sh("ip", "netns", "del", ns, check=False)
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", self.switch, "link", "add", "br0", "type", "bridge", "mcast_snooping",
           "0", "stp_state", "0", "forward_delay", "0")
        sh("ip", "-n", self.switch, "link", "set", "br0", "up")
        self.plug(self.wan, "up0", "pw", f"{MIRROR_IP}/24")
        sh("ip", "netns", "exec", self.wan, "tc", "qdisc", "add", "dev", "up0", "root", "tbf",
           "rate", f"{int(rate * 8)}mbit", "burst", "256kb", "latency", "400ms")
        log = work / "mirror.log"
        self.procs.append(subprocess.Popen(
            ["ip", "netns", "exec", self.wan, sys.executable, str(TOP / "contrib/bench/bench.py"),
             "serve", "--root", str(work / "mirror"), "--host", MIRROR_IP, "--port", "8000",
             "--latency", str(latency), "--log", str(log)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, env=ENV))
        self.procs[-1].stdout.readline()
        for i, ns in enumerate(self.machines, 1):
            self.plug(ns, "lan0", f"p{i}", f"10.77.0.{i}/24")
            self.machine(i, ns, kubo)
        if kubo:
            self.wait_peers()

    def plug(self, ns: str, inside: str, port: str, addr: str) -> None:
        sh("ip", "link", "add", inside, "netns", ns, "type", "veth", "peer", "name", port,
           "netns", self.switch)
        sh("ip", "-n", self.switch, "link", "set", port, "master", "br0")
        sh("ip", "-n", self.switch, "link", "set", port, "up")
        sh("ip", "-n", ns, "addr", "add", addr, "dev", inside)
        sh("ip", "-n", ns, "link", "set", inside, "up")
        sh("ip", "-n", ns, "route", "add", "default", "dev", inside)

    def machine(self, i: int, ns: str, kubo: bool) -> None:
        d = self.work / f"m{i}"
        for sub in ["root", "db", "cache", "gnupg", "hooks", "pacxfer-cache"]:
            (d / sub).mkdir(parents=True, exist_ok=True)
        xfer = ""
        if kubo:
            repo = d / "ipfs"
            env = dict(ENV, IPFS_PATH=str(repo))
            subprocess.run(["ip", "netns", "exec", ns, ipfs_bin(), "init"], env=env, check=True,
                           capture_output=True)
            cfg = json.loads((repo / "config").read_text())
            cfg["Addresses"]["API"] = "/ip4/127.0.0.1/tcp/5001"
            cfg["Addresses"]["Gateway"] = "/ip4/127.0.0.1/tcp/8080"
            cfg["Addresses"]["Swarm"] = ["/ip4/0.0.0.0/tcp/4001"]
            cfg["Bootstrap"] = []
            cfg.setdefault("Discovery", {}).setdefault("MDNS", {})["Enabled"] = True
            (repo / "config").write_text(json.dumps(cfg))
            log = open(d / "ipfs.log", "w")
            p = subprocess.Popen(["ip", "netns", "exec", ns, ipfs_bin(), "daemon"],
                                 env=dict(env, GOLOG_LOG_LEVEL="error"),
                                 stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            self.procs.append(p)
            for _ in range(300):
                if "Daemon is ready" in (d / "ipfs.log").read_text():
                    break
                time.sleep(0.1)
            (d / "pacxfer.conf").write_text(
                f'dbpath = "{d}/db"\npacman_conf = "{d}/pacman.conf"\n'
                f'cache_dir = "{d}/pacxfer-cache"\n\n[gateway]\nurl = "http://127.0.0.1:8080"\n'
                '\n[share]\napi = "http://127.0.0.1:5001"\n'
                f'after_fetch = {"true" if self.share else "false"}\n'
                'after_fetch_timeout = "30s"\n')
            xfer = f"XferCommand = {self.pacxfer} --config {d}/pacxfer.conf %u %o\n"
        (d / "pacman.conf").write_text(
            f"[options]\nRootDir = {d}/root\nDBPath = {d}/db/\nCacheDir = {d}/cache/\n"
            f"LogFile = {d}/pacman.log\nGPGDir = {d}/gnupg/\nHookDir = {d}/hooks/\n"
            f"Architecture = x86_64\nSigLevel = Never\nParallelDownloads = 5\n{xfer}\n"
            f"[lanrepo]\nServer = http://{MIRROR_IP}:8000/$repo/os/$arch\n")

    def ipfs(self, i: int, *args: str) -> str:
        ns = self.machines[i - 1]
        env = dict(ENV, IPFS_PATH=str(self.work / f"m{i}" / "ipfs"))
        return subprocess.run(["ip", "netns", "exec", ns, ipfs_bin(), *args], env=env,
                              check=True, capture_output=True, text=True).stdout

    def wait_peers(self) -> None:
        t = time.time()
        while time.time() - t < 30:
            counts = [len({l.rsplit("/p2p/", 1)[-1] for l in self.ipfs(i, "swarm", "peers")
                           .split()}) for i in (1, 2, 3)]
            if all(c >= 2 for c in counts):
                return
            time.sleep(0.25)
        # Kubo's mDNS now and then leaves a pair apart for minutes (see tests/harness/lan.rs).
        ids = [self.ipfs(i, "id", "-f", "<id>").strip() for i in (1, 2, 3)]
        for i in (1, 2, 3):
            peers = self.ipfs(i, "swarm", "peers")
            for j, peer in enumerate(ids, 1):
                if j != i and peer not in peers:
                    say(f"mDNS left machines {i} and {j} apart: connecting them")
                    self.ipfs(i, "swarm", "connect", f"/ip4/10.77.0.{j}/tcp/4001/p2p/{peer}")

    def wait_published(self, i: int) -> float:
        t = time.time()
        while time.time() - t < 120:
            root = self.ipfs(i, "files", "stat", "--hash", "/pacxfer").strip()
            if self.ipfs(i, "name", "resolve", "--nocache").strip() == f"/ipfs/{root}":
                return time.time() - t
            time.sleep(0.1)
        raise SystemExit(f"machine {i} never published its directory")

    def uplink_bytes(self) -> int:
        out = sh("ip", "-n", self.wan, "-s", "-j", "link", "show", "up0").stdout
        return int(json.loads(out)[0]["stats64"]["tx"]["bytes"])

    def upgrade(self, i: int, names: list[str]) -> subprocess.Popen:
        ns, d = self.machines[i - 1], self.work / f"m{i}"
        cmd = (f"pacman --config {d}/pacman.conf -Sy --noconfirm >/dev/null && "
               f"pacman --config {d}/pacman.conf -S --noconfirm {' '.join(names)} >/dev/null")
        return subprocess.Popen(["ip", "netns", "exec", ns, "sh", "-c", cmd], env=ENV,
                                stderr=open(d / "pacman.err", "a"))

    def close(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        for ns in [*self.machines, self.switch, self.wan]:
            sh("ip", "netns", "del", ns, check=False)


VARIANTS = {
    "pacman": "pacman's own downloader",
    "quiet": "pacxfer + Kubo, nothing shared",
    "share": "pacxfer + Kubo, after_fetch",
}


def one_run(args, names: list[str], variant: str) -> dict:
    pacxfer = variant != "pacman"
    work = Path(args.work) / variant
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copytree(REPO, work / "mirror")
    lan = Lan(work, args.rate, args.latency, pacxfer, args.pacxfer, share=variant == "share")
    try:
        before = lan.uplink_bytes()
        t0 = time.time()
        if lan.upgrade(1, names).wait() != 0:
            raise SystemExit(f"machine 1 failed: {(work / 'm1/pacman.err').read_text()}")
        t1 = time.time()
        published = lan.wait_published(1) if variant == "share" else 0.0
        t2 = time.time()
        pair = [lan.upgrade(2, names), lan.upgrade(3, names)]
        if any(p.wait() != 0 for p in pair):
            raise SystemExit(f"machine 2 or 3 failed, see {work}")
        t3 = time.time()
        for i in (1, 2, 3):
            files = sorted((work / f"m{i}" / "cache").glob("*.pkg.tar.zst"))
            if len(files) != len(names):
                raise SystemExit(f"machine {i} has {len(files)} packages, not {len(names)}")
        return {"uplink": lan.uplink_bytes() - before, "first": t1 - t0, "published": published,
                "pair": t3 - t2, "total": (t1 - t0) + (t3 - t2)}
    finally:
        lan.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=5, help="uplink, MB/s")
    p.add_argument("--latency", type=float, default=80, help="mirror, ms added per request")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--pacxfer", default=str(TOP / "target" / "release" / "pacxfer"))
    p.add_argument("--work", default="/tmp/pacxfer-bench-lan")
    p.add_argument("--markdown", help="also write the table to this file")
    args = p.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (network namespaces)")
    if not (REPO / "lanrepo/os/x86_64/lanrepo.db").exists():
        raise SystemExit("no packages: run `cargo test --test integration three_machines` once")
    names = sorted(f.name.split("-1.0-1-")[0]
                   for f in (REPO / "lanrepo/os/x86_64").glob("*.pkg.tar.zst"))
    total = sum(f.stat().st_size for f in (REPO / "lanrepo/os/x86_64").glob("*.pkg.tar.zst"))
    runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    for r in range(args.rounds):
        for variant in VARIANTS:
            say(f"round {r + 1}: {VARIANTS[variant]}")
            runs[variant].append(one_run(args, names, variant))
    med = lambda xs: sorted(xs)[len(xs) // 2]
    rows = []
    for variant, title in VARIANTS.items():
        rs = runs[variant]
        rows.append((title,
                     med([x["uplink"] for x in rs]), med([x["first"] for x in rs]),
                     med([x["pair"] for x in rs]), med([x["total"] for x in rs]),
                     med([x["published"] for x in rs])))
    lines = [
        f"Three machines, {len(names)} packages ({total / 1e6:.1f} MB), uplink {args.rate:g} MB/s "
        f"(tc tbf) + {args.latency:g} ms per request; machine 1, then machines 2 and 3 at once; "
        f"median of {args.rounds} round(s).",
        "",
        "| downloader | uplink bytes | x the packages | machine 1 | machines 2+3 | total | "
        "publish wait |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, up, first, pair, tot, pub in rows:
        lines.append(f"| {name} | {up / 1e6:.1f} MB | {up / total:.2f} | {first:.1f} s | "
                     f"{pair:.1f} s | {tot:.1f} s | {pub:.2f} s |")
    lines.append("")
    lines.append(f"Sharing against pacman alone: uplink bytes {rows[2][1] / rows[0][1]:.2f}x, "
                 f"machine 1 {rows[2][2] / rows[0][2]:.2f}x, machines 2+3 "
                 f"{rows[2][3] / rows[0][3]:.2f}x, total {rows[2][4] / rows[0][4]:.2f}x. "
                 f"Nothing shared against pacman alone: machine 1 {rows[1][2] / rows[0][2]:.2f}x, "
                 f"total {rows[1][4] / rows[0][4]:.2f}x.")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
