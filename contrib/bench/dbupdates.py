#!/usr/bin/env python3
"""Sync databases through update lists (BENCHMARKS.md, "Databases through update lists").

    contrib/bench/dbupdates.py [--entries 15000] [--days 7] [--refreshes 8] [--work DIR] [--keep]

One synthetic repository of Arch's shape (bench.py's entries: names, dependency lists, a
330-byte signature each), evolved day by day: each day 2% of the entries rebuilt (new version,
checksum and signature), 15 added and 10 removed; then quarter-hour refreshes of 3 rebuilt
entries. On the same history it measures the bytes a client that holds the previous version
moves per refresh:

- the gzip database pacman downloads today (and the same tar compressed by zstd -19);
- pacxfer's update list: the step `pacxfer publish --databases-only` published for that version
  (from the publisher's state), plus the head;
- a directory of entries under IPFS (`ipfs add -r` of `<entry>/desc`, Kubo's HAMT sharding):
  the blocks of the new version the old one lacks;
- content-defined chunks of the uncompressed tar (Kubo's buzhash chunker, and rabin with
  casync's 16/64/256 KiB): the chunks the old version lacks.

Then, with real pacman 6 on a throwaway DBPath, the time `pacman -Sy` takes after a background
refresh (`pacxfer prefetch`) against pacman's own downloader fetching the changed gzip
database from a mirror behind a 5 MB/s, 40 ms link. Needs root (pacman -Sy), Kubo
(.kubo/bin/ipfs or PATH), zstd, and a release build of pacxfer (target/release/pacxfer).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402
from bench import MB, Pkg, fresh_work, start_kubo, start_server, stop, synthetic_packages, write_db  # noqa: E402

REPO = "benchrepo"
T0 = 1_780_000_000


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def evolve(pkgs: list[Pkg], rng: random.Random, changed: int, added: int, removed: int,
           fresh: list[Pkg]) -> list[Pkg]:
    """The next version: `removed` entries gone, `changed` rebuilt, `added` taken from `fresh`."""
    pkgs = list(pkgs)
    for _ in range(removed):
        pkgs.pop(rng.randrange(len(pkgs)))
    for i in rng.sample(range(len(pkgs)), changed):
        p = pkgs[i]
        base, _, rel = p.version.rpartition("-")
        pkgs[i] = Pkg(**{**p.__dict__, "version": f"{base}.{rng.randint(1, 9)}-{rel}",
                         "sha256": rng.randbytes(32).hex(),
                         "pgpsig": __import__("base64").b64encode(rng.randbytes(330)).decode(),
                         "builddate": p.builddate + rng.randint(1, 86_400),
                         "csize": max(1000, p.csize + rng.randint(-5000, 5000))})
    for _ in range(added):
        pkgs.append(fresh.pop())
    return pkgs


def plain_tar(pkgs: list[Pkg]) -> bytes:
    """The entries as one uncompressed tar in name order, owners and times fixed."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for p in sorted(pkgs, key=lambda p: f"{p.name}-{p.version}"):
            d = tarfile.TarInfo(f"{p.name}-{p.version}")
            d.type, d.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(d)
            data = p.desc_text().encode()
            f = tarfile.TarInfo(f"{p.name}-{p.version}/desc")
            f.size, f.mode = len(data), 0o644
            tar.addfile(f, io.BytesIO(data))
    return out.getvalue()


class Ipfs:
    def __init__(self, repo: Path):
        self.env = dict(bench.ENV, IPFS_PATH=str(repo))
        self.bin = bench.ipfs_bin()

    def run(self, *args: str, data: bytes | None = None) -> bytes:
        r = subprocess.run([self.bin, *args], input=data, capture_output=True, env=self.env)
        if r.returncode != 0:
            raise SystemExit(f"ipfs {' '.join(args)}: {r.stderr.decode(errors='replace')}")
        return r.stdout

    def blocks(self, cid: str) -> dict[bytes, int]:
        """Every block of the DAG under `cid`: CID bytes -> size (a CAR export, parsed)."""
        car = self.run("dag", "export", cid)
        at = 0

        def varint() -> int:
            nonlocal at
            n = shift = 0
            while True:
                b = car[at]
                at += 1
                n |= (b & 0x7F) << shift
                shift += 7
                if b < 0x80:
                    return n

        header = varint()
        at += header
        out: dict[bytes, int] = {}
        while at < len(car):
            length = varint()
            start = at
            if car[at] == 0x12 and car[at + 1] == 0x20:  # CIDv0
                cid_end = at + 34
            else:
                varint()  # version
                varint()  # codec
                varint()  # multihash code
                digest = varint()
                cid_end = at + digest
            cid_bytes = car[start:cid_end]
            out[cid_bytes] = length - (cid_end - start)
            at = start + length
        return out


def path_blocks(ipfs: Ipfs, root: str, files: list[str]) -> dict[str, int]:
    """The blocks a client reads to fetch `files` below `root`: every directory block on the
    way (a HAMT's inner shards are not counted) and every block of each file: CID -> size."""
    out: dict[str, int] = {}

    def size(cid: str) -> int:
        return int(json.loads(ipfs.run("block", "stat", "--enc=json", cid))["Size"])

    for f in files:
        parts = f.split("/")
        for depth in range(len(parts) + 1):
            path = "/".join([f"/ipfs/{root}"] + parts[:depth])
            cid = ipfs.run("resolve", path).decode().strip().removeprefix("/ipfs/")
            if cid not in out:
                out[cid] = size(cid)
        for ref in ipfs.run("refs", "-r", "-u", cid).decode().split():
            if ref not in out:
                out[ref] = size(ref)
    return out


def new_bytes(old: dict[bytes, int], new: dict[bytes, int]) -> int:
    return sum(size for cid, size in new.items() if cid not in old)


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=15_000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--refreshes", type=int, default=8)
    ap.add_argument("--work", type=Path, default=bench.TOP / "target" / "bench-dbupdates")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    pacxfer = bench.TOP / "target" / "release" / "pacxfer"
    if not pacxfer.exists():
        raise SystemExit("build it first: cargo build --release")
    work = args.work.resolve()
    fresh_work(work)
    procs: list[subprocess.Popen] = []
    try:
        return run(args, work, str(pacxfer), procs)
    finally:
        stop(procs)
        if not args.keep:
            import shutil
            shutil.rmtree(work, ignore_errors=True)


def run(args, work: Path, pacxfer: str, procs: list) -> int:
    rng = random.Random(20261203)
    say(f"generating {args.entries} entries")
    everyone = synthetic_packages(args.entries + 400, rng)
    pkgs, fresh = everyone[: args.entries], everyone[args.entries:]
    kubo, api, gateway = start_kubo(work / "kubo", work / "kubo.log")
    procs.append(kubo)
    ipfs = Ipfs(work / "kubo")
    mirror_root = work / "mirror"
    repo_dir = mirror_root / REPO / "os" / "x86_64"
    repo_dir.mkdir(parents=True)
    server, mirror = start_server([sys.executable, str(Path(bench.__file__)), "serve", "--root",
                                   str(mirror_root)], work / "mirror.log")
    procs.append(server)
    conf = work / "pacxfer.conf"
    state = work / "state.sqlite"

    def publish() -> dict:
        r = subprocess.run([pacxfer, "--config", str(conf), "publish", "--databases-only",
                            "--mirror", f"{mirror}/$repo/os/$arch", "--repo", REPO,
                            "--state", str(state), "--json"], capture_output=True, text=True,
                           env=bench.ENV)
        if r.returncode != 0:
            raise SystemExit(f"publish failed: {r.stderr}")
        return json.loads(r.stdout.strip().splitlines()[-1])

    conf.write_text(f'cache_dir = "{work / "cache"}"\n\n[gateway]\nurl = "{gateway}"\n\n'
                    f'[share]\napi = "{api}"\n')

    rows: dict[str, dict[str, list[int]]] = {}

    def note(kind: str, design: str, n: int) -> None:
        rows.setdefault(kind, {}).setdefault(design, []).append(n)

    prev = None
    version = 0
    mtime = T0
    schedule = [("daily", (len(pkgs) // 50, 15, 10))] * args.days + \
               [("15 min", (3, 0, 0))] * args.refreshes
    for i, (kind, change) in enumerate([("first", None)] + schedule):
        if change is not None:
            pkgs = evolve(pkgs, rng, *change, fresh)
            mtime += 86_400 if kind == "daily" else 900
        db = repo_dir / f"{REPO}.db"
        write_db(pkgs, db)
        os.utime(db, (mtime, mtime))
        tar = plain_tar(pkgs)
        zst = subprocess.run(["zstd", "-19", "-q", "-c"], input=tar, capture_output=True).stdout
        summary = publish()
        version += 1
        entries_dir = work / f"entries-{i}"
        for p in pkgs:
            d = entries_dir / f"{p.name}-{p.version}"
            d.mkdir(parents=True)
            (d / "desc").write_text(p.desc_text())
        flags = ["--cid-version=1", "--raw-leaves", "-Q", "--pin=false"]
        dir_cid = ipfs.run("add", "-r", *flags, str(entries_dir)).decode().strip()
        tar_path = work / f"tar-{i}"
        tar_path.write_bytes(tar)
        buz_cid = ipfs.run("add", *flags, "--chunker=buzhash", str(tar_path)).decode().strip()
        rab_cid = ipfs.run("add", *flags, "--chunker=rabin-16384-65536-262144",
                           str(tar_path)).decode().strip()
        now = {"dir": ipfs.blocks(dir_cid), "buzhash": ipfs.blocks(buz_cid),
               "rabin": ipfs.blocks(rab_cid)}
        lst = f"updates/{REPO}/x86_64/{REPO}.db"
        step_path = f"steps/{version >> 12}/{(version >> 6) & 63}/{version}"
        now["path"] = path_blocks(ipfs, summary["root"],
                                  [f"{lst}/head"] + ([f"{lst}/{step_path}"] if version > 1 else []))
        # The signed IPNS record a client resolves the name with.
        with urllib.request.urlopen(f"{gateway}/ipns/{summary['name']}?format=ipns-record") as r:
            ipns = len(r.read())
        if prev is not None:
            con = sqlite3.connect(state)
            step = con.execute("SELECT step_size FROM db_versions WHERE name = ? AND seq = ?",
                               (f"{REPO}.db", version)).fetchone()[0]
            con.close()
            head = len(ipfs.run("cat", f"/ipfs/{summary['root']}/updates/{REPO}/x86_64/{REPO}.db/head"))
            note(kind, "gzip database (today)", db.stat().st_size)
            note(kind, "zstd -19 database", len(zst))
            note(kind, "pacxfer update list (step + head)", step + head)
            note(kind, "  the same with the directories on the way", new_bytes(prev["path"], now["path"]) + ipns)
            note(kind, "directory of entries (HAMT)", new_bytes(prev["dir"], now["dir"]))
            note(kind, "CDC chunks, buzhash (Kubo)", new_bytes(prev["buzhash"], now["buzhash"]))
            note(kind, "CDC chunks, rabin 16/64/256 KiB", new_bytes(prev["rabin"], now["rabin"]))
            say(f"{kind}: version {version}, step {human(step)}, head {head} B")
        prev = now
        import shutil
        shutil.rmtree(entries_dir)
        tar_path.unlink()
        name = summary["name"]

    print(f"\nBytes a client holding the previous version moves per refresh ({args.entries} "
          f"entries; daily: {len(pkgs) // 50} rebuilt, 15 added, 10 removed; 15 min: 3 rebuilt)")
    print(f"{'design':38} {'daily (median)':>16} {'x fewer':>8} {'15 min (median)':>16} {'x fewer':>8}")
    gz = {k: statistics.median(rows[k]["gzip database (today)"]) for k in rows}
    for design in rows["daily"]:
        cells = []
        for kind in ("daily", "15 min"):
            if kind not in rows:
                cells += ["-", "-"]
                continue
            m = statistics.median(rows[kind][design])
            cells += [human(m), f"{gz[kind] / m:.0f}x" if m else "inf"]
        print(f"{design:38} {cells[0]:>16} {cells[1]:>8} {cells[2]:>16} {cells[3]:>8}")

    # pacman -Sy after a background refresh, against pacman's own downloader.
    say("pacman -Sy timings")
    times = sy_times(work, pacxfer, gateway, api, mirror, name, pkgs, rng, fresh, mtime, publish)
    print("\n`pacman -Sy` of this repository (real pacman 6, median of 5)")
    for label, ts in times:
        print(f"{label:60} {statistics.median(ts) * 1000:8.0f} ms")
    return 0


def sy_times(work, pacxfer, gateway, api, mirror, name, pkgs, rng, fresh, mtime, publish):
    """`pacman -Sy` after each of 5 quarter-hour changes, three ways, each with its own DBPath
    and cache that hold the previous version (a first round, not timed, fills them)."""
    slow, slow_url = start_server([sys.executable, str(Path(bench.__file__)), "serve", "--root",
                                   str(work / "mirror"), "--rate", "5", "--latency", "40"],
                                  work / "slow.log")
    variants = [("pacman -Sy after `pacxfer prefetch` (update list, mirror 304)", mirror, True, True),
                ("pacman -Sy through pacxfer, one step to build (mirror 304)", mirror, True, False),
                ("pacman -Sy, its own downloader, 5 MB/s + 40 ms (whole gzip)", slow_url, False, False)]
    results: dict[str, list[float]] = {v[0]: [] for v in variants}
    try:
        for rnd in range(7):
            pkgs = evolve(pkgs, rng, 3, 0, 0, fresh)
            mtime += 900
            db = work / "mirror" / REPO / "os" / "x86_64" / f"{REPO}.db"
            write_db(pkgs, db)
            os.utime(db, (mtime, mtime))
            publish()
            for i, (label, server, xfer, prefetch) in enumerate(variants):
                root = work / f"sy-{i}"
                dbpath = root / "db"
                conf = root / "pacxfer.conf"
                if rnd == 0:
                    (dbpath / "sync").mkdir(parents=True)
                    (dbpath / "local").mkdir()
                    (dbpath / "local" / "ALPM_DB_VERSION").write_text("9\n")
                    (root / "cache").mkdir()
                    conf.write_text(
                        f'dbpath = "{dbpath}"\npacman_conf = "{root / "pacman.conf"}"\n'
                        f'cache_dir = "{root / "pacxfer-cache"}"\n\n[gateway]\nurl = "{gateway}"\n\n'
                        f'[share]\napi = "{api}"\n\n[databases]\npublisher = "{name}"\n'
                        f'repos = ["{REPO}"]\n')
                    (root / "pacman.conf").write_text(
                        f"[options]\nRootDir = {root}\nDBPath = {dbpath}/\nCacheDir = {root / 'cache'}/\n"
                        f"LogFile = {root / 'pacman.log'}\nArchitecture = x86_64\nSigLevel = Never\n"
                        + (f"XferCommand = {pacxfer} --config {conf} %u %o\n" if xfer else "")
                        + f"\n[{REPO}]\nServer = {server}/$repo/os/$arch\n")
                if xfer and prefetch:
                    subprocess.run([pacxfer, "--config", str(conf), "prefetch"], env=bench.ENV,
                                   capture_output=True, check=True)
                t = time.monotonic()
                r = subprocess.run(["pacman", "--config", str(root / "pacman.conf"), "-Sy"],
                                   capture_output=True, text=True, env=bench.ENV)
                took = time.monotonic() - t
                if r.returncode != 0:
                    raise SystemExit(f"pacman -Sy failed: {r.stderr}")
                # Rounds 0 and 1 fill the copies (the mirror's, then the whole archive once).
                if rnd >= 2:
                    results[label].append(took)
    finally:
        stop([slow])
    return list(results.items())


if __name__ == "__main__":
    sys.exit(main())
