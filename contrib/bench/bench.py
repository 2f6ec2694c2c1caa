#!/usr/bin/env python3
"""pacxfer's benchmark: builds an Arch-sized repository, starts an offline Kubo node (IPFS), a
mirror behind a simulated internet link and a plain loopback file server, times pacxfer against
curl, gzip and pacman's own downloader, and prints one table of medians, minima, maxima and
ratios, with the targets they are held to.

    contrib/bench/bench.py run [--quick] [--work DIR] [--keep] ...
    contrib/bench/bench.py publish [--quick] [--work DIR] [--entries N] [--keep] ...
    contrib/bench/bench.py prefetch [--quick] [--rate MB/s] [--latency MS] [--keep] ...  (root)
    contrib/bench/bench.py serve --root DIR [--rate MB/s] [--latency MS] [--log FILE]

`run` is what contrib/bench.sh calls; `publish` (contrib/bench.sh --publish) times `pacxfer
publish` filling an offline Kubo node from a loopback mirror of N small packages (BENCHMARKS.md,
"Publishing at Arch's scale"). `prefetch` (contrib/bench.sh --prefetch) times an upgrade of 40
real packages on a throwaway pacman root from a mirror behind the simulated link: pacman's own
downloader against `pacxfer prefetch` + `pacman -Syu`, with the IPFS node empty and with the
packages in it (BENCHMARKS.md, "Prefetching an upgrade"). `serve` is the HTTP file server they
start: as the mirror (bandwidth shared by all connections through one token bucket, latency
added to each request), or unthrottled (sendfile) for loopback-speed transfers; like nginx, it
sends each file's mtime as Last-Modified and answers 304 to an If-Modified-Since not older.

Processes are timed from spawn to exit (posix_spawn + waitpid), so each figure includes
process start. Commands that are compared run interleaved (A B A B ...), so a change of
machine load hits both sides alike. Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import email.utils
import hashlib
import http.client
import http.server
import json
import os
import random
import re
import shutil
import signal
import socket
import socketserver
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
# Kubo's `unixfs-v1-2025` import settings, spelled out (as tests/harness/kubo.rs does): CIDv1, raw
# leaves, 1 MiB chunks, sha2-256, so a file of at most 1 MiB is one raw block.
PROFILE = "cid-version=1&raw-leaves=true&chunker=size-1048576&hash=sha2-256"
MB = 1_000_000
MiB = 1 << 20
KiB = 1 << 10


def say(msg: str) -> None:
    print(f"==> {msg}", file=sys.stderr, flush=True)


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


# ----------------------------------------------------------------------------- the mirror


class Link:
    """One simulated internet link: `rate` bytes/s shared by every connection (a token bucket
    with a small burst, served first come first served)."""

    def __init__(self, rate: float, burst: int = 64 * KiB):
        self.rate = rate
        self.burst = burst
        self.lock = threading.Lock()
        self.free_at = 0.0

    def take(self, n: int) -> None:
        with self.lock:
            now = time.monotonic()
            start = max(self.free_at, now - self.burst / self.rate)
            self.free_at = start + n / self.rate
            wait = self.free_at - now
        if wait > 0:
            time.sleep(wait)


class FileHandler(http.server.BaseHTTPRequestHandler):
    """GET and HEAD of files under the root, with one `Range: bytes=A-[B]`, keep-alive."""

    protocol_version = "HTTP/1.1"
    server_version = "bench-mirror"
    root: Path
    link: Link | None
    latency: float
    log_file = None
    log_lock = threading.Lock()

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass

    def log(self, status: int, sent: int) -> None:
        if self.log_file is not None:
            with self.log_lock:
                self.log_file.write(f"{self.command} {self.path} {status} {sent}\n")
                self.log_file.flush()

    def do_HEAD(self):
        self.answer(body=False)

    def do_GET(self):
        self.answer(body=True)

    def plain(self, status: int, text: str, extra: dict | None = None) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.log(status, 0)

    def answer(self, body: bool) -> None:
        if self.latency > 0:
            time.sleep(self.latency)
        rel = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
        path = (self.root / rel).resolve()
        if self.root not in path.parents or not path.is_file():
            return self.plain(404, "not found\n")
        st = path.stat()
        size = st.st_size
        modified = email.utils.formatdate(int(st.st_mtime), usegmt=True)
        since = self.headers.get("If-Modified-Since")
        if since:
            try:
                asked = email.utils.parsedate_to_datetime(since).timestamp()
            except (TypeError, ValueError):
                asked = None
            if asked is not None and int(st.st_mtime) <= asked:
                self.send_response(304)
                self.send_header("Last-Modified", modified)
                self.end_headers()
                return self.log(304, 0)
        start, end = 0, size - 1
        status = 200
        rng = self.headers.get("Range")
        if rng:
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
            if not m:
                return self.plain(416, "bad range\n", {"Content-Range": f"bytes */{size}"})
            start = int(m.group(1))
            if m.group(2):
                end = min(int(m.group(2)), size - 1)
            if start >= size or start > end:
                return self.plain(416, "bad range\n", {"Content-Range": f"bytes */{size}"})
            status = 206
        length = end - start + 1
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Last-Modified", modified)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if not body:
            return self.log(status, 0)
        sent = 0
        try:
            with open(path, "rb") as f:
                if self.link is None:
                    self.wfile.flush()
                    sent = self.connection.sendfile(f, start, length)
                else:
                    f.seek(start)
                    while sent < length:
                        chunk = f.read(min(64 * KiB, length - sent))
                        if not chunk:
                            break
                        self.link.take(len(chunk))
                        self.wfile.write(chunk)
                        sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        self.log(status, sent)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 128


def serve(args) -> None:
    handler = type(
        "Handler",
        (FileHandler,),
        {
            "root": Path(args.root).resolve(),
            "link": Link(args.rate * MB) if args.rate > 0 else None,
            "latency": args.latency / 1000.0,
            "log_file": open(args.log, "a") if args.log else None,
        },
    )
    httpd = Server((args.host, args.port), handler)
    print(f"listening http://{args.host}:{httpd.server_address[1]}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    httpd.serve_forever()


# ------------------------------------------------------------------- the sync database

WORDS = (
    "lib py gtk qt x font perl ruby go rust node haskell java kde gnome xorg lua ocaml r "
    "texlive vim emacs mesa vulkan gst plugins tools utils daemon server client data doc git "
    "http json xml yaml crypto ssl ssh net audio video image pdf sql db cache cli core base "
    "common theme icons wayland sdl2 opencv boost llvm clang cmake meson ninja docker aws zig "
    "nim dart openblas cuda rocm hip dbus systemd polkit pipewire pulse alsa jack ffmpeg x264 "
    "webkit chromium firefox thunderbird libreoffice gimp inkscape blender krita"
).split()
PREFIXES = ["python", "perl", "ruby", "haskell", "lib32", "lib", "qt6", "qt5", "kf6", "rust",
            "nodejs", "texlive", "gst", "xf86", "ttf", "otf", "java", "ocaml", "r", "go"]
DESC_WORDS = (
    "a an the library for and of to with in tool fast small simple modern cross platform "
    "bindings implementation command line interface data parser format support framework "
    "server client daemon utilities plugin extension module toolkit graphical desktop "
    "environment network protocol file system image audio video codec driver font terminal "
    "manager editor compiler runtime development documentation wrapper api python rust perl "
    "qt gtk kde gnome secure encrypted compression archive database engine"
).split()
LICENSES = ["MIT", "GPL-2.0-or-later", "GPL-3.0-or-later", "LGPL-2.1-or-later",
            "Apache-2.0", "BSD-3-Clause", "MPL-2.0", "custom", "ISC", "Artistic-2.0"]
PACKAGERS = ["Anna Berg", "Jan Novak", "Maria Lopez", "Felix Wagner", "Sofia Rossi",
             "Lukas Meyer", "Chen Wei", "Olga Ivanova", "Tom Baker", "Eva Schmidt"]


@dataclass
class Pkg:
    """One database entry; `path` is set for the entries that have a real file."""

    name: str
    version: str
    arch: str
    desc: str
    csize: int
    isize: int
    sha256: str
    pgpsig: str
    url: str
    license: str
    builddate: int
    packager: str
    base: str
    depends: list[str] = field(default_factory=list)
    optdepends: list[str] = field(default_factory=list)
    makedepends: list[str] = field(default_factory=list)
    checkdepends: list[str] = field(default_factory=list)
    provides: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    path: Path | None = None

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}-{self.arch}.pkg.tar.zst"

    def desc_text(self) -> str:
        blocks = [
            ("FILENAME", [self.filename]), ("NAME", [self.name]), ("BASE", [self.base]),
            ("VERSION", [self.version]), ("DESC", [self.desc]), ("CSIZE", [str(self.csize)]),
            ("ISIZE", [str(self.isize)]), ("SHA256SUM", [self.sha256]),
            ("PGPSIG", [self.pgpsig]), ("URL", [self.url]), ("LICENSE", [self.license]),
            ("ARCH", [self.arch]), ("BUILDDATE", [str(self.builddate)]),
            ("PACKAGER", [self.packager]), ("CONFLICTS", self.conflicts),
            ("PROVIDES", self.provides), ("DEPENDS", self.depends),
            ("OPTDEPENDS", self.optdepends), ("MAKEDEPENDS", self.makedepends),
            ("CHECKDEPENDS", self.checkdepends),
        ]
        return "".join(f"%{k}%\n" + "".join(v + "\n" for v in vals) + "\n"
                       for k, vals in blocks if vals)


def synthetic_packages(count: int, rng: random.Random) -> list[Pkg]:
    """`count` entries with the field sizes of Arch's extra: names, versions, descriptions,
    dependency lists, a SHA-256 and a 330-byte detached signature each."""
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < count:
        parts = []
        if rng.random() < 0.45:
            parts.append(rng.choice(PREFIXES))
        parts += rng.sample(WORDS, rng.choice([1, 1, 2, 2, 2, 3]))
        name = "-".join(parts)
        if rng.random() < 0.2:
            name += str(rng.randint(2, 9))
        if name not in seen:
            seen.add(name)
            names.append(name)
    pkgs = []
    for i, name in enumerate(names):
        ver = ".".join(str(rng.randint(0, 30)) for _ in range(rng.choice([2, 3, 3, 4])))
        if rng.random() < 0.08:
            ver = f"r{rng.randint(10, 3000)}.{rng.getrandbits(28):07x}"
        if rng.random() < 0.07:
            ver = f"{rng.randint(1, 3)}:{ver}"
        ver += f"-{rng.choice([1, 1, 1, 2, 3])}"
        csize = int(min(rng.lognormvariate(12.3, 1.6), 400 * MiB))
        pool = max(i, 30)

        def some(counts):
            picked = {names[rng.randrange(pool)] for _ in range(rng.choice(counts))}
            return sorted(picked - {name})

        deps = [d + (f">={rng.randint(1, 9)}.{rng.randint(0, 9)}" if rng.random() < 0.1 else "")
                for d in some([0, 1, 2, 3, 4, 5, 6, 8, 12])]
        pkgs.append(Pkg(
            name=name, version=ver, arch="any" if rng.random() < 0.25 else "x86_64",
            desc=" ".join(rng.choices(DESC_WORDS, k=rng.randint(3, 16))).capitalize(),
            csize=csize, isize=int(csize * rng.uniform(1.5, 4.5)),
            sha256=rng.randbytes(32).hex(),
            pgpsig=base64.b64encode(rng.randbytes(330)).decode(),
            url=f"https://github.com/{rng.choice(WORDS)}/{name}",
            license=rng.choice(LICENSES), builddate=1_700_000_000 + rng.randint(0, 60_000_000),
            packager=(lambda p: f"{p} <{p.split()[0].lower()}@archlinux.org>")(
                rng.choice(PACKAGERS)),
            base=name, depends=deps,
            optdepends=[f"{d}: {' '.join(rng.choices(DESC_WORDS, k=rng.randint(2, 7)))}"
                        for d in some([0, 0, 1, 3])],
            makedepends=some([0, 1, 2, 4]),
            checkdepends=some([0, 0, 0, 2]),
            provides=[f"lib{name}.so=1-64"] if rng.random() < 0.1 else [],
            conflicts=[f"{name}-git"] if rng.random() < 0.05 else [],
        ))
    return pkgs


def write_db(pkgs: list[Pkg], path: Path) -> None:
    """A gzip'd tar of `<name>-<version>/` and its `desc`, as repo-add writes it."""
    tmp = path.with_suffix(".tmp")
    with tarfile.open(tmp, "w:gz", compresslevel=6, format=tarfile.PAX_FORMAT) as tar:
        for p in sorted(pkgs, key=lambda p: p.name):
            d = tarfile.TarInfo(f"{p.name}-{p.version}")
            d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o755, p.builddate
            tar.addfile(d)
            data = p.desc_text().encode()
            f = tarfile.TarInfo(f"{p.name}-{p.version}/desc")
            f.size, f.mode, f.mtime = len(data), 0o644, p.builddate
            tar.addfile(f, _Bytes(data))
    tmp.rename(path)


class _Bytes:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def read(self, n: int = -1) -> bytes:
        n = len(self.data) - self.pos if n < 0 else n
        out = self.data[self.pos:self.pos + n]
        self.pos += len(out)
        return out


def write_random(path: Path, size: int, rng: random.Random) -> None:
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 8 * MiB)
            f.write(rng.randbytes(n))
            left -= n


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * MiB):
            h.update(chunk)
    return h.hexdigest()


def package_sizes(count: int, total: int, rng: random.Random) -> list[int]:
    """Mostly small, some MBs: 40 % below 1 MiB (one raw IPFS block), the rest log-uniform
    from 1.2 MiB up, scaled so that all of them add up to `total`."""
    small = [int(2 ** rng.uniform(13, 19.9)) for _ in range(count * 2 // 5)]
    large = [2 ** rng.uniform(20.3, 25.3) for _ in range(count - len(small))]
    scale = (total - sum(small)) / sum(large)
    return small + [max(int(s * scale), 1100 * KiB) for s in large]


def build_package(pkg: Pkg, size: int, dest: Path, scratch: Path, rng: random.Random) -> None:
    """A package pacman accepts (.PKGINFO, .MTREE, one data file), made with bsdtar and zstd
    instead of makepkg; its contents are random, so its size is about `size`."""
    root = scratch / pkg.name
    shutil.rmtree(root, ignore_errors=True)
    data_dir = root / "usr" / "share" / pkg.name
    data_dir.mkdir(parents=True)
    write_random(data_dir / "data", max(size - 2048, 0), rng)
    (root / ".PKGINFO").write_text(
        f"pkgname = {pkg.name}\npkgbase = {pkg.base}\npkgver = {pkg.version}\n"
        f"pkgdesc = {pkg.desc}\nurl = {pkg.url}\nbuilddate = {pkg.builddate}\n"
        f"packager = {pkg.packager}\nsize = {size}\narch = {pkg.arch}\n"
        f"license = {pkg.license}\n")
    env = dict(os.environ, LANG="C")
    subprocess.run(
        ["bsdtar", "-czf", ".MTREE", "--format=mtree",
         "--options=!all,use-set,type,uid,gid,mode,time,size,md5,sha256,link",
         ".PKGINFO", "usr"], cwd=root, check=True, env=env)
    out = dest / pkg.filename
    with open(out, "wb") as f:
        tar = subprocess.Popen(["bsdtar", "--uid", "0", "--gid", "0", "-cf", "-",
                                ".MTREE", ".PKGINFO", "usr"], cwd=root, stdout=subprocess.PIPE)
        subprocess.run(["zstd", "-q", "-1", "-c"], stdin=tar.stdout, stdout=f, check=True)
        tar.stdout.close()
        if tar.wait() != 0:
            raise SystemExit(f"bsdtar failed for {pkg.name}")
    shutil.rmtree(root)
    pkg.path = out
    pkg.csize = out.stat().st_size
    pkg.isize = size
    pkg.sha256 = sha256_of(out)
    pkg.depends = pkg.optdepends = pkg.makedepends = pkg.checkdepends = []
    pkg.provides = pkg.conflicts = []


def plain_file(pkg: Pkg, size: int, dest: Path, rng: random.Random) -> None:
    """A file that only pacxfer and curl will fetch (never installed): random bytes."""
    out = dest / pkg.filename
    write_random(out, size, rng)
    pkg.path, pkg.csize, pkg.sha256 = out, size, sha256_of(out)


# ---------------------------------------------------------------------- processes


def clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["LANG"] = "C"
    return env


ENV = clean_env()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a running process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Spawner:
    """Runs one command, stdout to /dev/null, stderr to a log, and times it. Also notes the
    CPU time the command used (`cpu`) and, when `watch` names a process (the IPFS node), the
    CPU time that process used meanwhile (`watched`)."""

    def __init__(self, log: Path):
        self.log = open(log, "ab")
        self.devnull = os.open(os.devnull, os.O_RDWR)
        self.watch: int | None = None
        self.cpu = 0.0
        self.watched = 0.0

    def run(self, argv: list[str]) -> float:
        exe = argv[0] if "/" in argv[0] else shutil.which(argv[0])
        if exe is None:
            raise SystemExit(f"{argv[0]} not found")
        self.log.write(("$ " + " ".join(argv) + "\n").encode())
        self.log.flush()
        actions = [(os.POSIX_SPAWN_DUP2, self.devnull, 0),
                   (os.POSIX_SPAWN_DUP2, self.devnull, 1),
                   (os.POSIX_SPAWN_DUP2, self.log.fileno(), 2)]
        before = cpu_seconds(self.watch) if self.watch else 0.0
        t0 = time.perf_counter()
        pid = os.posix_spawn(exe, argv, ENV, file_actions=actions)
        _, status, usage = os.wait4(pid, 0)
        took = time.perf_counter() - t0
        self.cpu = usage.ru_utime + usage.ru_stime
        self.watched = cpu_seconds(self.watch) - before if self.watch else 0.0
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            raise SystemExit(f"exit status {code} from: {' '.join(argv)} (see {self.log.name})")
        return took


@dataclass
class Variant:
    key: str
    argv: list[str]
    prepare: object = None  # a callable run before each run, untimed


def measure(sp: Spawner, variants: list[Variant], rounds: int, batch: int = 1,
            warmup: int = 1, cpu: dict | None = None) -> dict:
    """Runs the variants in rounds, rotating which goes first. In each round a variant runs
    `warmup` times untimed, then `batch` times timed, back to back: a short command is timed
    on a CPU that is already busy (after an idle pause the same call takes about 1.5 ms more
    on this kind of VM), and a change of machine load between rounds hits every variant
    alike. Returns the seconds of each timed run, per key; `cpu`, when given, gets the
    (command, watched process) CPU seconds of each timed run, per key."""
    times: dict[str, list[float]] = {v.key: [] for v in variants}
    for i in range(rounds):
        shift = i % len(variants)
        for v in variants[shift:] + variants[:shift]:
            for j in range(warmup + batch):
                if v.prepare:
                    v.prepare()
                t = sp.run(v.argv)
                if j >= warmup:
                    times[v.key].append(t)
                    if cpu is not None:
                        cpu.setdefault(v.key, []).append((sp.cpu, sp.watched))
    return times


def first_line_source(argv: list[str]) -> str:
    """Runs a pacxfer download once and returns where its success line says the bytes came
    from (`ipfs`, `mirror`...)."""
    r = subprocess.run(argv, env=ENV, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise SystemExit(f"pacxfer failed: {' '.join(argv)}\n{r.stderr}")
    m = re.search(r" from (\S+) in ", r.stderr)
    return m.group(1) if m else f"? ({r.stderr.strip()})"


def start_server(argv: list[str], log: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=open(log, "ab"), text=True, env=ENV)
    line = proc.stdout.readline().strip()
    if not line.startswith("listening "):
        proc.kill()
        raise SystemExit(f"{argv[0]} did not start (see {log}): {line!r}")
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    return proc, line.removeprefix("listening ")


def ipfs_bin() -> str:
    """Kubo's `ipfs`: the one contrib/deps.sh built, else the one on PATH (tests/harness/kubo.rs's
    rule)."""
    built = TOP / ".kubo" / "bin" / "ipfs"
    if built.exists():
        return str(built)
    found = shutil.which("ipfs")
    if found is None:
        raise SystemExit("no Kubo: run ./contrib/deps.sh (builds .kubo/bin/ipfs) or put an "
                         "`ipfs` >= 0.43.1 on PATH")
    return found


def start_kubo(repo: Path, log: Path) -> tuple[subprocess.Popen, str, str]:
    """An offline Kubo daemon with a fresh repository at `repo`, made by `ipfs init
    --profile=test` (loopback only, no bootstrap peers, no mDNS, flatfs without fsync) and
    otherwise left at its defaults; nothing is enabled that reaches the network. Its RPC API,
    gateway and swarm listen on ports the kernel picks, read back from the daemon's output,
    which goes to `log`. Returns the process, the RPC API's URL and the gateway's URL."""
    ipfs = ipfs_bin()
    env = dict(ENV, IPFS_PATH=str(repo), GOLOG_LOG_LEVEL="error")
    r = subprocess.run([ipfs, "init", "--profile=test"], env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"ipfs init failed: {r.stderr.strip()}")
    config_path = repo / "config"
    config = json.loads(config_path.read_text())
    addresses = config.setdefault("Addresses", {})
    addresses["API"] = "/ip4/127.0.0.1/tcp/0"
    addresses["Gateway"] = "/ip4/127.0.0.1/tcp/0"
    addresses["Swarm"] = ["/ip4/127.0.0.1/tcp/0"]
    config_path.write_text(json.dumps(config, indent=2))
    with open(log, "ab") as out:
        proc = subprocess.Popen([ipfs, "daemon", "--offline"], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 60
    while True:
        text = log.read_text(errors="replace")
        if "Daemon is ready" in text:
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise SystemExit(f"the Kubo daemon did not start (see {log}):\n{text}")
        time.sleep(0.05)

    def port(prefix: str) -> str:
        m = re.search(rf"^{prefix} listening on \S*/tcp/(\d+)", text, re.M)
        if not m:
            proc.kill()
            proc.wait()
            raise SystemExit(f"no {prefix!r} line in {log}:\n{text}")
        return m.group(1)

    return (proc, f"http://127.0.0.1:{port('RPC API server')}",
            f"http://127.0.0.1:{port('Gateway server')}")


def fresh_work(work: Path) -> None:
    """Empties the work directory for a run; only one an earlier run made (it holds the
    marker `.pacxfer-bench`) is ever removed."""
    marker = work / ".pacxfer-bench"
    if work.exists():
        if not marker.exists():
            raise SystemExit(f"{work} exists and is not a benchmark directory")
        shutil.rmtree(work)
    work.mkdir(parents=True)
    marker.touch()


def stop(procs: list[subprocess.Popen]) -> None:
    """Ends the servers and nodes a run started, by their process ids."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def host_rows(work: Path, pacxfer: str) -> list[tuple[str, str]]:
    """The context rows for the machine (CPUs, memory, the work directory's file system) and
    the pacxfer measured (commit, and whether src/ or Cargo files differ from it)."""
    info = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((l.split(":", 1)[1].strip() for l in info if l.startswith("model name")), "?")
    mem = next(l.split()[1] for l in Path("/proc/meminfo").read_text().splitlines()
               if l.startswith("MemTotal"))
    fs = subprocess.run(["df", "--output=fstype,source", str(work)],
                        capture_output=True, text=True).stdout.split()[-2:]
    rev = subprocess.run(["git", "-C", str(TOP), "rev-parse", "--short=12", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(TOP), "status", "--porcelain", "--", "src",
                            "Cargo.toml", "Cargo.lock"], capture_output=True,
                           text=True).stdout.strip()
    return [
        ("machine", f"{os.cpu_count()} CPUs, {cpu}, {int(mem) / 1024 / 1024:.1f} GiB memory; "
         f"work directory on {' '.join(fs)}"),
        ("pacxfer", f"commit {rev}{' + uncommitted changes to src/ or Cargo' if dirty else ''}"
         f", {pacxfer}"),
    ]


def link_speed(base: str, pkgs: list[Pkg]) -> tuple[float, float]:
    """The mirror's link as one curl sees it: bytes/s and seconds to the first byte, for the
    largest of `pkgs` under 8 MB."""
    pkg = max((p for p in pkgs if p.csize < 8 * MB), key=lambda p: p.csize)
    r = subprocess.run(["curl", "-fsS", "-o", "/dev/null", "-w",
                        "%{speed_download} %{time_starttransfer}",
                        f"{base}/{urllib.parse.quote(pkg.filename)}"],
                       capture_output=True, text=True, env=ENV, check=True)
    speed, ttfb = map(float, r.stdout.split())
    return speed, ttfb


def curl_json(argv: list[str]) -> list[dict]:
    out = subprocess.run(["curl", "-fsS", *argv], check=True, capture_output=True, text=True,
                         env=ENV).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


# --------------------------------------------------------------------------- figures


def fmt_time(s: float) -> str:
    if s < 0.01:
        return f"{s * 1000:.2f} ms"
    if s < 1:
        return f"{s * 1000:.1f} ms"
    return f"{s:.2f} s"


def stats(ts: list[float]) -> tuple[float, float, float]:
    return statistics.median(ts), min(ts), max(ts)


def cell(ts: list[float], size: int | None = None) -> str:
    med, lo, hi = stats(ts)
    text = f"{fmt_time(med)} ({fmt_time(lo)} – {fmt_time(hi)}, n={len(ts)})"
    if size:
        text += f", {size / med / MiB:.0f} MiB/s"
    return text


@dataclass
class Row:
    case: str
    what: str
    ours: str
    against: str
    theirs: str
    result: str
    target: str
    met: str
    load: str


# ------------------------------------------------------------------------------ run


class Harness:
    """What every benchmark here does around its own part (`body`): an emptied work
    directory, its servers ended by process id whatever happens, the load and the run's
    length at the end, the report, and the work directory removed unless --keep."""

    args: argparse.Namespace
    work: Path
    procs: list[subprocess.Popen]
    context: list[tuple[str, str]]

    def body(self) -> None:
        raise NotImplementedError

    def report(self) -> None:
        raise NotImplementedError

    def emit(self, lines: list[str]) -> None:
        """Prints a table, then the context table, and writes both to --markdown if given."""
        lines = lines + ["", "| context | |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in self.context]
        text = "\n".join(lines) + "\n"
        print(text)
        if self.args.markdown:
            Path(self.args.markdown).write_text(text)

    def run(self) -> int:
        fresh_work(self.work)
        started = time.perf_counter()
        try:
            self.body()
        finally:
            stop(self.procs)
        self.context.append(("load at end", Path("/proc/loadavg").read_text().strip()))
        self.context.append(("whole run", f"{time.perf_counter() - started:.0f} s"))
        self.report()
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)
        return 0


class Bench(Harness):
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.work = Path(args.work).resolve()
        self.pacxfer = str(Path(args.pacxfer).resolve())
        # Indexes and the gateway's breaker state live in the work directory, for every
        # pacxfer started here and by pacman.
        ENV["PACXFER_CACHE_DIR"] = str(self.work / "cache")
        self.rows: list[Row] = []
        self.context: list[tuple[str, str]] = []
        self.procs: list[subprocess.Popen] = []
        self.rng = random.Random(20240611)

    def runs(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    # ---- setup

    def generate(self) -> None:
        a = self.args
        w = self.work
        self.repo = w / "mirror" / "extra" / "os" / "x86_64"
        self.repo.mkdir(parents=True)
        for d in ("db/sync", "out", "pm/root", "pm/cache", "pm/gnupg", "pm/hooks", "scratch"):
            (w / d).mkdir(parents=True)
        say(f"generating {a.entries} database entries")
        pkgs = synthetic_packages(a.entries, self.rng)
        plain = [p for p in pkgs if ":" not in p.version]
        step = len(plain) // (a.packages + 4)
        chosen = [plain[step * (i + 1)] for i in range(a.packages + 3)]
        self.tiny, self.miss, self.big = chosen[:3]
        self.real = chosen[3:]
        sizes = package_sizes(a.packages, int(a.packages_mb * MB), self.rng)
        self.rng.shuffle(sizes)
        say(f"building {a.packages} packages, {sum(sizes) / MB:.0f} MB, with bsdtar and zstd")
        for p, s in zip(self.real, sizes):
            build_package(p, s, self.repo, w / "scratch", self.rng)
        plain_file(self.tiny, 1 * KiB, self.repo, self.rng)
        plain_file(self.miss, 1 * KiB, self.repo, self.rng)
        say(f"writing a {a.big_mib} MiB file")
        plain_file(self.big, a.big_mib * MiB, self.repo, self.rng)
        self.lookup_pkg = pkgs[len(pkgs) // 2]
        self.db = w / "db" / "sync" / "extra.db"
        t = time.perf_counter()
        write_db(pkgs, self.db)
        shutil.copy(self.db, self.repo / "extra.db")
        raw = subprocess.run(["gzip", "-dc", str(self.db)], capture_output=True).stdout
        self.context.append(("sync db", f"{a.entries} entries, {self.db.stat().st_size / MB:.1f} MB"
                             f" gzip, {len(raw) / MB:.1f} MB as tar (written in "
                             f"{time.perf_counter() - t:.1f} s)"))
        built = [p.csize for p in self.real]
        self.context.append(("packages for case 6", f"{len(built)} packages, "
                             f"{sum(built) / MB:.0f} MB, smallest {min(built) / KiB:.0f} KiB, "
                             f"largest {max(built) / MB:.1f} MB, "
                             f"{sum(s <= MiB for s in built)} of them <= 1 MiB"))
        shutil.rmtree(w / "scratch")

    def start_servers(self) -> None:
        w, a = self.work, self.args
        say("starting the IPFS node (Kubo, offline), the mirror and the loopback file server")
        # The node is procs[0]: case 4 watches its CPU time.
        node, self.api, self.gateway = start_kubo(w / "ipfs", w / "ipfs-daemon.log")
        self.procs.append(node)
        me = [sys.executable, str(Path(__file__).resolve()), "serve", "--root", str(w / "mirror")]
        mirror, self.mirror = start_server(
            me + ["--rate", str(a.rate), "--latency", str(a.latency),
                  "--log", str(w / "mirror-access.log")], w / "mirror.err")
        fast, self.fast = start_server(me + ["--log", str(w / "fast-access.log")], w / "fast.err")
        self.procs += [mirror, fast]
        # A port nobody listens on, and one that accepts connections but never answers.
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.down = f"http://127.0.0.1:{s.getsockname()[1]}"
        s.close()
        self.hung_sock = socket.socket()
        self.hung_sock.bind(("127.0.0.1", 0))
        self.hung_sock.listen(128)
        self.hung = f"http://127.0.0.1:{self.hung_sock.getsockname()[1]}"

        say("adding the packages to the IPFS node (a directory named by SHA-256, 1 MiB chunks)")
        files = [self.tiny, self.big] + self.real
        form = []
        for p in files:
            form += ["-F", f"file=@{p.path};filename={p.sha256}"]
        t = time.perf_counter()
        added = curl_json(["-X", "POST", *form, f"{self.api}/api/v0/add?{PROFILE}"
                           "&wrap-with-directory=true&pin=true"])
        took = time.perf_counter() - t
        cids = {x["Name"]: x["Hash"] for x in added}
        curl_json(["-X", "POST", f"{self.api}/api/v0/key/gen?arg=pkgcache&type=ed25519"])
        published = curl_json(["-X", "POST", f"{self.api}/api/v0/name/publish?arg=/ipfs/"
                               f"{cids['']}&key=pkgcache&allow-offline=true&lifetime=1h"])
        # The gateway resolves the key's IPNS name (k51...), not the key's local name.
        self.ipns = published[-1]["Name"]
        self.tiny_cid = cids[self.tiny.sha256]
        # What pacxfer asks the node for each package: the raw-block CID of a file up to
        # 1 MiB, the sha256-named entry of the published directory for a larger one.
        self.node_urls = {p.filename: f"{self.gateway}/ipfs/{cids[p.sha256]}"
                          if p.csize <= MiB else f"{self.gateway}/ipns/{self.ipns}/{p.sha256}"
                          for p in files}
        self.context.append(("IPFS node", "Kubo, `ipfs init --profile=test` defaults, "
                             "`ipfs daemon --offline`, repository in the work directory"))
        self.context.append(("IPFS node add", f"{sum(p.csize for p in files) / MB:.0f} MB in "
                             f"{took:.1f} s"))

    def configs(self) -> None:
        w = self.work
        self.mirror_base = f"{self.mirror}/extra/os/x86_64"
        self.fast_base = f"{self.fast}/extra/os/x86_64"

        def pacxfer_conf(name: str, gateway: str, extra: str = "") -> Path:
            path = w / f"pacxfer-{name}.conf"
            path.write_text(
                f'dbpath = "{w / "db"}"\npacman_conf = "{w / "pacman-pacxfer.conf"}"\n'
                f'[gateway]\nurl = "{gateway}"\n'
                f'paths = ["/ipfs/{{cid}}", "/ipns/{self.ipns}/{{sha256}}"]\n{extra}')
            return path

        self.conf = pacxfer_conf("node", self.gateway)
        self.conf_down = pacxfer_conf("down", self.down)
        self.conf_hung = pacxfer_conf("hung", self.hung)
        self.conf_off = pacxfer_conf("off", self.gateway, "enabled = false\n")
        self.conf_nodb = w / "pacxfer-nodbpath.conf"
        self.conf_nodb.write_text(self.conf.read_text().replace(
            f'dbpath = "{w / "db"}"\n', ""))

        def pacman_conf(name: str, options: str) -> Path:
            path = w / f"pacman-{name}.conf"
            path.write_text(
                f"[options]\nRootDir = {w}/pm/root\nDBPath = {w}/db/\nCacheDir = {w}/pm/cache/\n"
                f"LogFile = {w}/pm/pacman.log\nGPGDir = {w}/pm/gnupg/\nHookDir = {w}/pm/hooks/\n"
                f"Architecture = x86_64\nSigLevel = Never\n{options}\n"
                f"[extra]\nServer = {self.mirror}/$repo/os/$arch\n")
            return path

        self.pm_pacxfer = pacman_conf(
            "pacxfer", f"XferCommand = {self.pacxfer} --config {self.conf} %u %o")
        self.pm_curl = pacman_conf("curl", "XferCommand = /usr/bin/curl -fsSL -o %o %u")
        self.pm_builtin = pacman_conf("builtin", "ParallelDownloads = 5")

    def xfer(self, conf: Path, url: str, out: Path) -> list[str]:
        return [self.pacxfer, "--config", str(conf), url, str(out)]

    def expect_source(self, case: str, conf: Path, url: str, out: Path, want: str) -> None:
        """One untimed call, to check that the setup makes the bytes come from `want`."""
        out.unlink(missing_ok=True)
        got = first_line_source(self.xfer(conf, url, out))
        out.unlink(missing_ok=True)
        if got != want:
            raise SystemExit(f"case {case}: {url} came from {got}, not {want}")

    # ---- context

    def machine(self) -> None:
        cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text()
                    .splitlines() if l.startswith("model name")), "?")
        flags = next((l for l in Path("/proc/cpuinfo").read_text().splitlines()
                      if l.startswith("flags")), "")
        mem = next(l.split()[1] for l in Path("/proc/meminfo").read_text().splitlines()
                   if l.startswith("MemTotal"))
        self.context.insert(0, ("machine", f"{os.cpu_count()} CPUs, {cpu}"
                                f"{', SHA-NI' if ' sha_ni' in flags else ', no SHA-NI'}, "
                                f"{int(mem) / 1024 / 1024:.1f} GiB memory"))
        self.context.insert(1, ("load at start", Path("/proc/loadavg").read_text().strip()))

        def first_line(argv: list[str], pattern: str = r".+") -> str:
            r = subprocess.run(argv, capture_output=True, text=True, env=ENV)
            m = re.search(pattern, r.stdout + r.stderr)
            return m.group(0).strip() if m else "?"

        rev = first_line(["git", "-C", str(TOP), "rev-parse", "--short=12", "HEAD"])
        dirty = subprocess.run(["git", "-C", str(TOP), "status", "--porcelain", "--", "src",
                                "Cargo.toml", "Cargo.lock"], capture_output=True, text=True).stdout
        state = " + uncommitted changes to src/ or Cargo" if dirty.strip() else ""
        self.context.insert(2, ("pacxfer", f"commit {rev}{state}, {self.pacxfer}"))
        self.context.insert(3, ("tools", ", ".join([
            first_line(["pacman", "--version"], r"Pacman v\S+"),
            first_line(["curl", "--version"], r"curl \S+"),
            first_line(["gzip", "--version"], r"gzip \S+"),
            f"Python {sys.version.split()[0]}",
            "Kubo " + first_line([ipfs_bin(), "version", "--number"]),
            first_line(["uname", "-sr"])])))
        out = subprocess.run(["openssl", "speed", "-evp", "sha256", "-bytes", "262144",
                              "-seconds", "2"], capture_output=True, text=True).stdout
        m = re.search(r"^sha256\s+([\d.]+)k", out, re.M)
        if m:
            self.context.append(("openssl sha256 (256 KiB blocks, one core)",
                                 f"{float(m.group(1)) * 1000 / MiB:.0f} MiB/s"))
        sp = Spawner(self.work / "context.log")
        runs = self.runs(40, 10)
        for label, argv in (("process start: /bin/true", ["/bin/true"]),
                            ("process start: pacxfer --version", [self.pacxfer, "--version"]),
                            ("process start: curl --version", ["curl", "--version"]),
                            ("pacman-conf --repo-list (pacxfer runs it for DBPath, "
                             "repository order and Server lines)",
                             ["pacman-conf", "--config", str(self.pm_pacxfer), "--repo-list"])):
            t = measure(sp, [Variant("x", argv)], 1, runs, 3)["x"]
            self.context.append((label, f"{fmt_time(statistics.median(t))} median"))
        # Loopback and the node's gateway as curl sees them, and the mirror's link.
        big = self.big.filename
        for label, url, n in (
                ("loopback HTTP (curl, sendfile server)", f"{self.fast_base}/{big}", 3),
                ("IPFS node gateway (curl, /ipns/<name>/<sha256>)",
                 f"{self.gateway}/ipns/{self.ipns}/{self.big.sha256}", 2)):
            speeds = []
            for _ in range(n):
                r = subprocess.run(["curl", "-fsS", "-o", "/dev/null", "-w", "%{speed_download}",
                                    url], capture_output=True, text=True, env=ENV, check=True)
                speeds.append(float(r.stdout))
            self.context.append((label, f"{max(speeds) / MiB:.0f} MiB/s (best of {n})"))
        speed, ttfb = link_speed(self.mirror_base, self.real)
        self.context.append(("mirror link (curl, one connection)",
                             f"{speed / MB:.1f} MB/s, first byte after {ttfb * 1000:.0f} ms "
                             f"(set: {self.args.rate:g} MB/s, {self.args.latency:g} ms)"))

    # ---- cases

    def row(self, *a) -> None:
        self.rows.append(Row(*a, load=loadavg()))

    def case1(self, sp: Spawner) -> None:
        say("case 1: pacxfer lookup, warm")
        f = self.lookup_pkg.filename
        ours = [self.pacxfer, "--config", str(self.conf), "lookup", f]
        url_form = [self.pacxfer, "--config", str(self.conf), "lookup", f"{self.mirror_base}/{f}"]
        # Re-reading: the same binary with `--cache-dir=` (no index: every call reads the db).
        base = [self.pacxfer, "--cache-dir=", "--config", str(self.conf), "lookup", f]
        variants = [Variant("ours", ours), Variant("base", base), Variant("url", url_form),
                    Variant("url-base", [*base[:-1], url_form[-1]])]
        sp.run(ours)  # builds the index
        t = measure(sp, variants, self.runs(6, 2), 5, 2)
        idle = measure(sp, [Variant("idle", ours, lambda: time.sleep(0.1))], 1,
                       self.runs(20, 6), 1)["idle"]
        for case, what, a, b, target in (
                ("1", "`pacxfer lookup FILE`, warm index", "ours", "base", "<= 3 ms, >= 30x"),
                ("1b", "`pacxfer lookup URL`, warm index (no `pacman-conf` calls)", "url",
                 "url-base", "(context)")):
            med = statistics.median(t[a])
            speedup = statistics.median(t[b]) / med
            self.row(case, what, cell(t[a]), "same, `--cache-dir=` (no index: reads the db)",
                     cell(t[b]), f"{speedup:.1f}x faster", target,
                     _met(med <= 0.003 and speedup >= 30) if case == "1" else "")
        self.row("1c", "`pacxfer lookup FILE`, warm index, each call after 100 ms idle",
                 cell(idle), "", "", "", "(context)", "")

    def case2(self, sp: Spawner) -> None:
        say("case 2: lookup right after the db changed, against gzip -dc")
        ours = [self.pacxfer, "--config", str(self.conf), "lookup", self.lookup_pkg.filename]
        stamp = [time.time()]

        def touch():
            stamp[0] += 1
            os.utime(self.db, (stamp[0], stamp[0]))

        t = measure(sp, [Variant("ours", ours, touch),
                         Variant("gzip", ["gzip", "-dc", str(self.db)])],
                    self.runs(15, 4))
        ratio = statistics.median(t["ours"]) / statistics.median(t["gzip"])
        self.row("2", "`pacxfer lookup FILE`, db just touched", cell(t["ours"]),
                 "`gzip -dc db > /dev/null`", cell(t["gzip"]), f"{ratio:.2f}x gzip",
                 "<= 1.3x", _met(ratio <= 1.3))

    def case3(self, sp: Spawner) -> None:
        say("case 3: 1 KiB file from the gateway")
        out = self.work / "out" / "tiny.part"
        url = f"{self.mirror_base}/{self.tiny.filename}"
        rm = lambda: out.unlink(missing_ok=True)  # noqa: E731
        self.expect_source("3", self.conf, url, out, "ipfs")
        variants = [Variant("ours", self.xfer(self.conf, url, out), rm),
                    Variant("curl", ["curl", "-fsS", "-o", str(out),
                                     f"{self.gateway}/ipfs/{self.tiny_cid}"], rm),
                    Variant("nodb", self.xfer(self.conf_nodb, url, out), rm)]
        t = measure(sp, variants, self.runs(6, 2), 5)
        ratio = statistics.median(t["ours"]) / statistics.median(t["curl"])
        self.row("3", "XferCommand, 1 KiB file from the node", cell(t["ours"]),
                 "`curl -fsS -o OUT` same gateway URL", cell(t["curl"]), f"{ratio:.2f}x curl",
                 "<= 1.25x", _met(ratio <= 1.25))
        ratio = statistics.median(t["nodb"]) / statistics.median(t["curl"])
        self.row("3b", "same, no `dbpath` in pacxfer.conf (asks `pacman-conf DBPath`)",
                 cell(t["nodb"]), "curl, as above", "", f"{ratio:.2f}x curl", "(context)", "")

    def case4(self, sp: Spawner) -> None:
        say(f"case 4: {self.args.big_mib} MiB file, verified, against curl")
        out = self.work / "out" / "big.part"
        size = self.big.csize
        rm = lambda: out.unlink(missing_ok=True)  # noqa: E731
        mirror_url = f"{self.mirror_base}/{self.big.filename}"
        fast_url = f"{self.fast_base}/{self.big.filename}"
        self.expect_source("4", self.conf, mirror_url, out, "ipfs")
        self.expect_source("4b", self.conf_off, fast_url, out, "mirror")
        variants = [Variant("ours", self.xfer(self.conf, mirror_url, out), rm),
                    Variant("curl", ["curl", "-fsS", "-o", str(out),
                                     f"{self.gateway}/ipns/{self.ipns}/{self.big.sha256}"],
                                    rm),
                    Variant("ours-fast", self.xfer(self.conf_off, fast_url, out), rm),
                    Variant("curl-fast", ["curl", "-fsS", "-o", str(out), fast_url], rm)]
        cpu: dict = {}
        sp.watch = self.procs[0].pid  # the IPFS node
        t = measure(sp, variants, self.runs(9, 2), warmup=0, cpu=cpu)
        sp.watch = None
        rm()
        med = {k: (statistics.median(c for c, _ in v), statistics.median(w for _, w in v))
               for k, v in cpu.items()}
        for case, what, a, b, against in (
                ("4", "XferCommand, big file from the IPFS node", "ours", "curl",
                 "curl, same gateway URL"),
                ("4b", "XferCommand, big file from a loopback sendfile server (gateway off)",
                 "ours-fast", "curl-fast", "curl, same URL")):
            tput = statistics.median(t[b]) / statistics.median(t[a])
            self.row(case, what, cell(t[a], size), against, cell(t[b], size),
                     f"{tput:.2f}x curl's throughput",
                     ">= 0.9x" if case == "4" else "(context)",
                     _met(tput >= 0.9) if case == "4" else "")
        self.row("4c", "CPU seconds per transfer of case 4 (median), the client's + the node's",
                 f"{med['ours'][0]:.2f} + {med['ours'][1]:.2f} s", "curl",
                 f"{med['curl'][0]:.2f} + {med['curl'][1]:.2f} s", "", "(context)", "")

    def case5(self, sp: Spawner) -> None:
        say("case 5: a miss before the mirror: 412, refused, hung")
        out = self.work / "out" / "miss.part"
        rm = lambda: out.unlink(missing_ok=True)  # noqa: E731
        url = f"{self.mirror_base}/{self.miss.filename}"
        curl = Variant("curl", ["curl", "-fsS", "-o", str(out), url], rm)
        # The hung gateway: its first call waits out the stall timeout, and may open the
        # circuit breaker; the timed calls come after it.
        def once() -> float:
            rm()
            t0 = time.perf_counter()
            first_line_source(self.xfer(self.conf_hung, url, out))
            return time.perf_counter() - t0

        first, second = once(), once()
        rounds = self.runs(5, 2)
        # Without a working breaker every hung call costs the stall timeout: time a few.
        hung = (rounds, 4) if second < 1 else (1, self.runs(3, 1))
        for case, what, conf, (rounds, batch) in (
                ("5a", "miss: node lacks the file (412)", self.conf, (rounds, 4)),
                ("5b", "miss: node down (connection refused)", self.conf_down, (rounds, 4)),
                ("5c", "miss: node hung (after one call timed out)", self.conf_hung, hung)):
            self.expect_source(case, conf, url, out, "mirror")
            t = measure(sp, [Variant("ours", self.xfer(conf, url, out), rm), curl], rounds, batch)
            over = statistics.median(t["ours"]) - statistics.median(t["curl"])
            self.row(case, what, cell(t["ours"]), "`curl -fsS -o OUT` on the mirror",
                     cell(t["curl"]), f"{over * 1000:+.1f} ms", "<= +5 ms", _met(over <= 0.005))
        self.row("5c'", "the hung node's first call (the wait that opens the breaker)",
                 fmt_time(first), "", "", f"second call {fmt_time(second)}", "(context)", "")
        rm()

    def case6(self, sp: Spawner) -> None:
        n = len(self.real)
        total = sum(p.csize for p in self.real)
        say(f"case 6: pacman -Sw of {n} packages ({total / MB:.0f} MB)")
        cache = self.work / "pm" / "cache"

        def clear():
            for f in cache.iterdir():
                if f.is_file():
                    f.unlink()

        names = [p.name for p in self.real]

        def argv(conf: Path) -> list[str]:
            return ["pacman", "--config", str(conf), "-Sw", "--noconfirm", *names]

        mirror_log = self.work / "mirror-access.log"

        def mirror_pkgs() -> int:
            return sum(".pkg.tar" in line for line in mirror_log.read_text().splitlines())

        # One untimed pacxfer run checks that every package comes from IPFS.
        clear()
        before = mirror_pkgs()
        sp.run(argv(self.pm_pacxfer))
        from_mirror = mirror_pkgs() - before
        for p in self.real:
            if sha256_of(cache / p.filename) != p.sha256:
                raise SystemExit(f"case 6: {p.filename} in the cache is wrong")
        # The node's floor: the same files fetched from it by curl, one process after another.
        node_out = self.work / "out" / "node.part"
        loop = "".join(f"curl -fsS -o {node_out} '{self.node_urls[p.filename]}' || exit 1\n"
                       for p in self.real)
        variants = [Variant("pacxfer", argv(self.pm_pacxfer), clear),
                    Variant("curl", argv(self.pm_curl), clear),
                    Variant("builtin", argv(self.pm_builtin), clear),
                    Variant("node", ["sh", "-c", loop])]
        t = measure(sp, variants, self.runs(5, 1), warmup=0)
        # pacman's own share: the same command with every package already in the cache.
        own = measure(sp, [Variant("own", argv(self.pm_pacxfer))], 1, self.runs(5, 2), 0)["own"]
        clear()
        ours = statistics.median(t["pacxfer"])
        vs_curl = statistics.median(t["curl"]) / ours
        vs_builtin = statistics.median(t["builtin"]) / ours
        what = (f"`pacman -Sw` {n} pkgs, {total / MB:.0f} MB, XferCommand = pacxfer "
                f"({n - from_mirror}/{n} from IPFS)")
        self.row("6", what, cell(t["pacxfer"], total),
                 "XferCommand = `curl -fsSL -o %o %u`", cell(t["curl"], total),
                 f"{vs_curl:.1f}x faster", ">= 5x curl", _met(vs_curl >= 5))
        self.row("6b", "same", "", "built-in downloader, ParallelDownloads = 5",
                 cell(t["builtin"], total), f"{vs_builtin:.1f}x faster",
                 "faster than built-in", _met(vs_builtin > 1))
        self.row("6c", "`pacman -Sw`, every package already in the cache (pacman's own time)",
                 cell(own), "", "", "", "(context)", "")
        self.row("6d", f"curl, the {n} packages from the IPFS node one after another "
                 "(the node's floor; add 6c for pacman)", cell(t["node"], total), "", "", "",
                 "(context)", "")
        node_out.unlink(missing_ok=True)

    # ---- all of it

    def body(self) -> None:
        a = self.args
        self.generate()
        self.start_servers()
        self.configs()
        self.machine()
        sp = Spawner(self.work / "runs.log")
        only = set(a.cases.split(",")) if a.cases else None
        for n, case in (("1", self.case1), ("2", self.case2), ("3", self.case3),
                        ("4", self.case4), ("6", self.case6), ("5", self.case5)):
            if only is None or n in only:
                case(sp)

    def report(self) -> None:
        order = {c: i for i, c in enumerate(["1", "1b", "1c", "2", "3", "3b", "4", "4b", "4c", "5a", "5b",
                                             "5c", "5c'", "6", "6b", "6c", "6d"])}
        rows = sorted(self.rows, key=lambda r: order.get(r.case, 99))
        lines = ["| # | pacxfer | median (min – max, runs) | against "
                 "| median (min – max, runs) | result | target | met | load |",
                 "|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r.case} | {r.what} | {r.ours} | {r.against} | {r.theirs} | "
                         f"{r.result} | {r.target} | {r.met} | {r.load} |")
        self.emit(lines)


# --------------------------------------------------------------------------- publish


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def rpc(api: str, command: str, args: list[tuple[str, str]] | tuple = ()) -> list:
    """One call to Kubo's RPC API; every JSON value of its answer (one per line)."""
    query = urllib.parse.urlencode(list(args))
    url = f"{api}/api/v0/{command}" + (f"?{query}" if query else "")
    with _NO_PROXY.open(urllib.request.Request(url, data=b"", method="POST"), timeout=600) as r:
        text = r.read().decode()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# UnixFS node types (unixfs.proto), as `Data`'s first field says.
UNIXFS_TYPES = {0: "raw", 1: "directory", 2: "file", 3: "metadata", 4: "symlink",
                5: "HAMT shard"}


def unixfs_type(node: dict) -> str:
    """The UnixFS type of a dag-pb node as `dag/get` (dag-json) shows it."""
    data = node.get("Data", {}).get("/", {}).get("bytes", "")
    raw = base64.b64decode(data + "=" * (-len(data) % 4))
    if len(raw) < 2 or raw[0] != 0x08:
        return "?"
    return UNIXFS_TYPES.get(raw[1], f"type {raw[1]}")


@dataclass
class DirShape:
    """The blocks of one UnixFS directory, entries excluded: a plain directory is one block;
    a HAMT is its root shard and every sub-shard."""

    kind: str
    root_bytes: int
    root_links: int
    blocks: int
    bytes: int
    depth: int
    entries: int


def dir_shape(api: str, cid: str) -> DirShape:
    """Walks a directory's own blocks: in a HAMT (fanout 256) a link named by the two hex
    digits of a bucket alone is a sub-shard, any longer name an entry."""
    kind = ""
    blocks = total = entries = depth = 0
    root_bytes = root_links = 0
    todo = [(cid, 1)]
    while todo:
        c, level = todo.pop()
        node = rpc(api, "dag/get", [("arg", c), ("output-codec", "dag-json")])[0]
        size = rpc(api, "block/stat", [("arg", c)])[0]["Size"]
        t = unixfs_type(node)
        links = node.get("Links", [])
        if not kind:
            kind, root_bytes, root_links = t, size, len(links)
        blocks += 1
        total += size
        depth = max(depth, level)
        for link in links:
            if t == "HAMT shard" and len(link["Name"]) == 2:
                todo.append((link["Hash"]["/"], level + 1))
            else:
                entries += 1
    return DirShape(kind, root_bytes, root_links, blocks, total, depth, entries)


class PublishBench(Harness):
    """`bench.py publish`: `pacxfer publish` from a loopback mirror of N small packages into
    an offline Kubo node: the first run, a run with nothing new, a run with one new package,
    the shape of the published root, and how fast the gateway resolves paths in it."""

    def __init__(self, args):
        self.args = args
        self.work = Path(args.work).resolve()
        self.pacxfer = str(Path(args.pacxfer).resolve())
        ENV["PACXFER_CACHE_DIR"] = str(self.work / "cache")
        self.rng = random.Random(20240612)
        self.procs: list[subprocess.Popen] = []
        self.rows: list[tuple[str, str, str]] = []
        self.context: list[tuple[str, str]] = []
        self.runs: dict[str, dict] = {}
        self.floor: tuple[float, bool, int] | None = None

    def row(self, what: str, figure: str, note: str = "") -> None:
        self.rows.append((what, figure, note))

    # ---- setup

    def generate(self) -> None:
        n = self.args.entries
        self.repo = self.work / "mirror" / "extra" / "os" / "x86_64"
        self.repo.mkdir(parents=True)
        (self.work / "db" / "sync").mkdir(parents=True)
        say(f"generating {n} + 1 packages of {self.args.min_kib}-{self.args.max_kib} KiB "
            "of random bytes")
        t = time.perf_counter()
        pkgs = synthetic_packages(n + 1, self.rng)
        for p in pkgs:
            size = self.rng.randint(self.args.min_kib * KiB, self.args.max_kib * KiB)
            plain_file(p, size, self.repo, self.rng)
        self.pkgs, self.newcomer = pkgs[:n], pkgs[n]
        # The newcomer waits outside the mirror's directory until the third run.
        spare = self.work / "spare"
        spare.mkdir()
        self.newcomer.path = self.newcomer.path.rename(spare / self.newcomer.filename)
        self.db = self.repo / "extra.db"
        write_db(self.pkgs, self.db)
        total = sum(p.csize for p in self.pkgs)
        self.total = total
        self.context.append(("repository", f"{n} packages, {total / MB:.1f} MB "
                             f"({total / n / KiB:.1f} KiB each on average), `extra.db` "
                             f"{self.db.stat().st_size / MB:.1f} MB (made in "
                             f"{time.perf_counter() - t:.0f} s)"))

    def start_servers(self) -> None:
        w = self.work
        say("starting the IPFS node (Kubo, offline) and the loopback file server")
        node, self.api, self.gateway = start_kubo(w / "ipfs", w / "ipfs-daemon.log")
        self.procs.append(node)
        self.node_pid = node.pid
        me = [sys.executable, str(Path(__file__).resolve()), "serve", "--root", str(w / "mirror")]
        fast, self.mirror = start_server(me + ["--log", str(w / "mirror-access.log")],
                                         w / "mirror.err")
        self.procs.append(fast)
        # Kubo's request log (`ipfs diag cmds`) keeps every call of a run, to count them and
        # add up the node's time for each command; its default keeps none once finished.
        rpc(self.api, "diag/cmds/set-time", [("arg", "24h")])
        self.conf = w / "pacxfer.conf"
        self.conf.write_text(f'dbpath = "{w / "db"}"\n[share]\napi = "{self.api}"\n')
        self.state = w / "state.sqlite"
        self.mirror_url = f"{self.mirror}/$repo/os/$arch"

    # ---- runs

    def node_cpu(self) -> float:
        return cpu_seconds(self.node_pid)

    def publish(self, label: str) -> dict:
        """One `pacxfer publish` run, timed from spawn to exit; its stderr lines are stamped
        with the time they came; the node's calls during the run are read back from its
        request log."""
        rpc(self.api, "diag/cmds/clear")
        argv = [self.pacxfer, "--config", str(self.conf), "publish", "--mirror",
                self.mirror_url, "--repo", "extra", "--state", str(self.state), "--json"]
        say(f"{label}: {' '.join(argv)}")
        lines: list[tuple[float, str]] = []
        node0 = self.node_cpu()
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=ENV)

        def read_stderr():
            for line in proc.stderr:
                lines.append((time.perf_counter() - t0, line.rstrip("\n")))

        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        took = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        reader.join()
        node_cpu = self.node_cpu() - node0
        with open(self.work / "publish-runs.log", "a") as log:
            log.write(f"$ {' '.join(argv)}\n")
            log.writelines(f"[{t:8.3f}] {line}\n" for t, line in lines)
        if proc.returncode != 0:
            raise SystemExit(f"{label}: pacxfer publish failed ({proc.returncode}):\n"
                             + "\n".join(line for _, line in lines[-20:]))
        summary = json.loads(out.strip().splitlines()[-1])
        # "[extra] N packages: A added (...), P already published" ends the repository's
        # part (database, downloads, adds, state); the rest is pruning, the view and IPNS.
        repo_done = next((t for t, line in lines if re.search(r"\[extra\] \d+ packages:", line)),
                         None)
        calls = self.calls()
        repo_size = rpc(self.api, "repo/stat", [("size-only", "true")])[0]["RepoSize"]
        r = dict(label=label, took=took, summary=summary, repo_done=repo_done, calls=calls,
                 cpu=usage.ru_utime + usage.ru_stime, node_cpu=node_cpu, repo_size=repo_size)
        say(f"{label}: {fmt_time(took)}, added {summary['added']}, present "
            f"{summary['present']}; calls: " + ", ".join(
                f"{c} {v['n']}x {v['seconds']:.1f}s" for c, v in calls.items()))
        self.runs[label] = r
        return r

    def calls(self) -> dict[str, dict]:
        """The node's commands since the last clear: per command, how many, the node's total
        time for them, the slowest, and the first and last start (seconds after the first
        call of all)."""
        entries = rpc(self.api, "diag/cmds")
        entries = entries[0] if entries and isinstance(entries[0], list) else entries

        def stamp(text: str) -> float:
            # RFC 3339 with nanoseconds (Python 3.11 reads it, dropping digits beyond 6).
            return datetime.datetime.fromisoformat(text).timestamp()

        done = [e for e in entries if not e.get("Active")
                and e["Command"] not in ("diag/cmds", "diag/cmds/clear")]
        if not done:
            return {}
        first = min(stamp(e["StartTime"]) for e in done)
        out: dict[str, dict] = {}
        for e in done:
            start, end = stamp(e["StartTime"]), stamp(e["EndTime"])
            v = out.setdefault(e["Command"], dict(n=0, seconds=0.0, slowest=0.0,
                                                   first=float("inf"), last=0.0, durations=[]))
            v["n"] += 1
            v["seconds"] += end - start
            v["slowest"] = max(v["slowest"], end - start)
            v["first"] = min(v["first"], start - first)
            v["last"] = max(v["last"], start - first)
            v["durations"].append((start - first, end - start))
        return dict(sorted(out.items(), key=lambda kv: -kv[1]["seconds"]))

    # ---- the root

    def measure_root(self, root: str) -> None:
        say("the published root: its blocks, and the gateway")
        mfs = "/pacxfer-publish/pacxfer"
        stat = rpc(self.api, "files/stat", [("arg", mfs)])[0]
        if stat["Hash"] != root:
            raise SystemExit(f"MFS {mfs} is {stat['Hash']}, the run said {root}")
        self.shapes = {"root (by SHA-256)": dir_shape(self.api, root)}
        sub = rpc(self.api, "files/stat", [("arg", f"{mfs}/extra/os/x86_64")])[0]["Hash"]
        self.shapes["extra/os/x86_64 (mirror layout)"] = dir_shape(self.api, sub)
        threshold = json.loads((self.work / "ipfs" / "config").read_text()).get(
            "Import", {}).get("UnixFSHAMTDirectorySizeThreshold") or "unset (Kubo's default, 256KiB)"
        self.context.append(("HAMT threshold", f"`Import.UnixFSHAMTDirectorySizeThreshold` "
                             f"{threshold}"))

        # The gateway: a few random files, each by four paths, order rotated.
        con = sqlite3.connect(self.state)
        cid_of = dict(con.execute("SELECT sha256, cid FROM files"))
        con.close()
        name = self.runs["first"]["summary"]["name"]
        picks = self.rng.sample(self.pkgs, self.args.samples)
        kinds = {
            "/ipfs/<root>/<sha256>": lambda p: f"/ipfs/{root}/{p.sha256}",
            "/ipfs/<root>/extra/os/x86_64/<filename>":
                lambda p: f"/ipfs/{root}/extra/os/x86_64/{urllib.parse.quote(p.filename)}",
            "/ipns/<name>/<sha256>": lambda p: f"/ipns/{name}/{p.sha256}",
            "/ipfs/<file CID> (no path: the floor)": lambda p: f"/ipfs/{cid_of[p.sha256]}",
        }
        names = list(kinds)

        def get(path: str) -> tuple[float, float]:
            r = subprocess.run(
                ["curl", "-sS", "-o", "/dev/null", "-H", "Cache-Control: only-if-cached",
                 "-w", "%{http_code} %{time_starttransfer} %{time_total}",
                 f"{self.gateway}{path}"], capture_output=True, text=True, env=ENV)
            code, ttfb, total = r.stdout.split()
            if code != "200":
                raise SystemExit(f"gateway: {path} answered {code} {r.stderr.strip()}")
            return float(ttfb), float(total)

        get(kinds[names[0]](picks[0]))  # the first request of all, untimed
        self.gw: dict[str, list[tuple[float, float]]] = {k: [] for k in names}
        for i, p in enumerate(picks):
            shift = i % len(names)
            for k in names[shift:] + names[:shift]:
                self.gw[k].append(get(kinds[k](p)))

    def view_floor(self, root: str) -> None:
        """What the node itself needs to build the same root: every link of the state copied
        into a fresh MFS directory with `files/cp` and `flush=false` (each call changes the
        directory in memory only), with a `files/flush` after every 256 of them (Kubo refuses
        more unflushed operations: `Internal.MFSNoFlushLimit`, 256 by default) and at the
        end, over one keep-alive connection. The result must be pacxfer's root, CID for
        CID."""
        say("the node's floor: the same links with files/cp flush=false, a flush per 256")
        con = sqlite3.connect(self.state)
        by_sha = list(con.execute("SELECT sha256, cid FROM files"))
        mirror = list(con.execute("SELECT l.filename, f.cid FROM listings l JOIN files f "
                                  "USING (sha256)"))
        mirror += list(con.execute("SELECT name, cid FROM dbfiles"))
        con.close()
        mfs = "/pacxfer-publish/pacxfer"
        json_cid = rpc(self.api, "files/stat", [("arg", f"{mfs}/pacxfer.json")])[0]["Hash"]
        host, port = urllib.parse.urlsplit(self.api).netloc.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=600)
        calls = 0

        def call(command: str, args: list[tuple[str, str]]) -> None:
            nonlocal calls
            conn.request("POST", f"/api/v0/{command}?{urllib.parse.urlencode(args)}")
            r = conn.getresponse()
            body = r.read()
            calls += 1
            if r.status != 200:
                raise SystemExit(f"floor: {command} {args}: {r.status} {body[:300]!r}")

        base = "/bench-floor"
        links = [(cid, f"{base}/{sha}") for sha, cid in by_sha]
        links += [(cid, f"{base}/extra/os/x86_64/{name}") for name, cid in mirror]
        links.append((json_cid, f"{base}/pacxfer.json"))
        t = time.perf_counter()
        for d in ("", "/extra", "/extra/os", "/extra/os/x86_64"):
            call("files/mkdir", [("arg", base + d), ("parents", "true"), ("cid-version", "1")])
        for i, (cid, dest) in enumerate(links):
            if i and i % 256 == 0:
                call("files/flush", [("arg", base)])
            call("files/cp", [("arg", f"/ipfs/{cid}"), ("arg", dest), ("flush", "false")])
        call("files/flush", [("arg", base)])
        took = time.perf_counter() - t
        conn.close()
        got = rpc(self.api, "files/stat", [("arg", base)])[0]["Hash"]
        self.floor = (took, got == root, calls)
        rpc(self.api, "files/rm", [("arg", base), ("recursive", "true")])

    # ---- all of it

    def body(self) -> None:
        a = self.args
        self.generate()
        self.start_servers()
        self.context.insert(0, ("load at start", Path("/proc/loadavg").read_text().strip()))
        self.machine()
        first = self.publish("first")
        if first["summary"]["added"] != a.entries:
            raise SystemExit(f"the first run added {first['summary']['added']}, "
                             f"not {a.entries}")
        again = self.publish("again")
        if again["summary"]["added"] != 0 or again["summary"]["present"] != a.entries:
            raise SystemExit(f"the second run: {again['summary']}")
        # One new package: into the mirror, and the database rebuilt with it.
        p = self.newcomer
        p.path = p.path.rename(self.repo / p.filename)
        write_db(self.pkgs + [p], self.db)
        one = self.publish("one new")
        if one["summary"]["added"] != 1 or one["summary"]["present"] != a.entries:
            raise SystemExit(f"the third run added {one['summary']['added']} and found "
                             f"{one['summary']['present']}, not 1 and {a.entries}")
        self.measure_root(one["summary"]["root"])
        self.view_floor(one["summary"]["root"])

    def machine(self) -> None:
        kubo = subprocess.run([ipfs_bin(), "version", "--number"], capture_output=True,
                              text=True).stdout.strip()
        self.context[:0] = host_rows(self.work, self.pacxfer) + [
            ("Kubo", f"{kubo}, `ipfs init --profile=test`, `ipfs daemon --offline`; "
             "`diag cmds set-time 24h` to count the calls"),
        ]

    def report(self) -> None:
        n = self.args.entries
        for label, what in (("first", f"first run: {n} packages, {self.total / MB:.1f} MB"),
                            ("again", "second run, nothing new"),
                            ("one new", "third run, one new package in the db")):
            r = self.runs[label]
            s = r["summary"]
            calls = r["calls"]
            ncalls = sum(v["n"] for v in calls.values())
            node_s = sum(v["seconds"] for v in calls.values())
            fig = fmt_time(r["took"])
            if label == "first":
                fig += f", {r['took'] / n * 1000:.1f} ms per package"
            note = (f"added {s['added']}, present {s['present']}; {ncalls} RPC calls, "
                    f"{node_s:.1f} s in the node; CPU {r['cpu']:.1f} s pacxfer, "
                    f"{r['node_cpu']:.1f} s node; node repository {r['repo_size'] / MB:.0f} MB "
                    "after it")
            self.row(what, fig, note)
            if r["repo_done"] is not None:
                entries = s["added"] + s["present"]
                self.row("  of which: database, downloads, adds, state",
                         fmt_time(r["repo_done"]),
                         f"{r['repo_done'] / entries * 1000:.2f} ms per database entry"
                         + (" (download, add, one state transaction each)" if not s["present"]
                            else " (one state transaction for all the entries already there)"))
                self.row("  of which: view (MFS), pacxfer.json, flush, IPNS",
                         fmt_time(r["took"] - r["repo_done"]), "")
            for c, v in list(calls.items())[:6]:
                self.row(f"    `{c}`", f"{v['n']} calls, {v['seconds']:.2f} s",
                         f"mean {v['seconds'] / v['n'] * 1000:.2f} ms, slowest "
                         f"{v['slowest'] * 1000:.1f} ms")
            cp = calls.get("files/cp")
            if cp and cp["n"] >= 100:
                d = [x for _, x in sorted(cp["durations"])]
                tenth = len(d) // 10
                means = [statistics.mean(d[i * tenth:(i + 1) * tenth]) * 1000
                         for i in range(10)]
                self.row("    `files/cp`, mean of each tenth of the calls, in order",
                         " ".join(f"{m:.1f}" for m in means) + " ms",
                         "the by-SHA-256 links come first, then the mirror layout's")
        if self.floor:
            took, same, calls = self.floor
            self.row("the node's floor for the first run's view: the same links by "
                     "`files/cp` with `flush=false`, one `files/flush` per 256",
                     fmt_time(took), f"{calls} calls; same root CID as pacxfer's: "
                     f"{'yes' if same else '**no**'}")
        for label, shape in self.shapes.items():
            self.row(f"{label}: kind, root block", f"{shape.kind}, {shape.root_bytes / KiB:.1f} "
                     f"KiB, {shape.root_links} links",
                     f"{shape.blocks} directory blocks, {shape.bytes / KiB:.0f} KiB in all, "
                     f"depth {shape.depth}, {shape.entries} entries")
        for k, v in self.gw.items():
            ttfb = statistics.median(t for t, _ in v)
            total = statistics.median(t for _, t in v)
            self.row(f"gateway `{k}`",
                     f"first byte {ttfb * 1000:.2f} ms, whole {total * 1000:.2f} ms",
                     f"median of {len(v)} files, `Cache-Control: only-if-cached`; slowest "
                     f"{max(t for _, t in v) * 1000:.2f} ms")
        lines = ["| publishing | figure | notes |", "|---|---|---|"]
        lines += [f"| {w} | {f} | {n} |" for w, f, n in self.rows]
        self.emit(lines)


# -------------------------------------------------------------------------- prefetch


PLAIN_VERSION = re.compile(r"(\d+(?:\.\d+)+)-(\d+)")


def older_version(version: str) -> str | None:
    """An earlier version of a plain `X.Y[.Z...]-REL` (its last non-zero component less one,
    release 1), or None when it has no such form or no such component."""
    m = PLAIN_VERSION.fullmatch(version)
    if not m:
        return None
    parts = [int(x) for x in m.group(1).split(".")]
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] > 0:
            parts[i] -= 1
            return ".".join(map(str, parts)) + "-1"
    return None


@dataclass
class Scenario:
    """One way of getting the older system to the new versions."""

    key: str
    what: str
    builtin: bool = False  # pacman's own downloader (ParallelDownloads = 5), else pacxfer
    node: str = "empty"  # which Kubo node pacxfer uses: "empty" or "full"
    jobs: int | None = None  # `pacxfer prefetch --jobs N` first; None: no prefetch
    floor: bool = False  # not pacman at all: curl of every file, 5 at a time


@dataclass
class Outcome:
    total: float
    prefetch: float | None
    syu: float | None
    load: str
    note: str = ""


class PrefetchBench(Harness):
    """`bench.py prefetch`: an upgrade of N real packages on a throwaway "older system" (a
    pacman root whose local database lists each package at an earlier version), from a mirror
    behind a simulated link: pacman's own downloader against `pacxfer prefetch` followed by
    `pacman -Syu` with pacxfer as XferCommand, with the IPFS node empty and with the packages
    in it. Every run starts from an empty CacheDir, no sync database and a fresh pacxfer cache
    directory, and is checked: all packages installed at the new version, and after a prefetch
    `pacman -Syu` fetched no package from the mirror."""

    def __init__(self, args):
        self.args = args
        self.work = Path(args.work).resolve()
        self.pacxfer = str(Path(args.pacxfer).resolve())
        self.rng = random.Random(20240613)
        self.procs: list[subprocess.Popen] = []
        self.context: list[tuple[str, str]] = []
        self.results: dict[str, list[Outcome]] = {}
        self.agent_pid: int | None = None
        self.ran: list[Scenario] = []

    # ---- setup

    def generate(self) -> None:
        a = self.args
        w = self.work
        self.repo = w / "mirror" / "extra" / "os" / "x86_64"
        self.repo.mkdir(parents=True)
        (w / "scratch").mkdir()
        t = time.perf_counter()
        pool = synthetic_packages(a.packages * 10, self.rng)
        pkgs: list[Pkg] = []
        self.old: dict[str, str] = {}
        for p in pool:
            old = older_version(p.version)
            if old is not None and len(pkgs) < a.packages:
                pkgs.append(p)
                self.old[p.name] = old
        if len(pkgs) < a.packages:
            raise SystemExit(f"only {len(pkgs)} packages with a plain version")
        sizes = package_sizes(a.packages, int(a.packages_mb * MB), self.rng)
        self.rng.shuffle(sizes)
        say(f"building {a.packages} packages, {sum(sizes) / MB:.0f} MB, with bsdtar and zstd")
        for p, s in zip(pkgs, sizes):
            build_package(p, s, self.repo, w / "scratch", self.rng)
        shutil.rmtree(w / "scratch")
        self.pkgs = sorted(pkgs, key=lambda p: p.name)
        # Each older version must sort before the new one by pacman's own rule.
        for p in self.pkgs:
            r = subprocess.run(["vercmp", self.old[p.name], p.version], capture_output=True,
                               text=True, check=True)
            if int(r.stdout) >= 0:
                raise SystemExit(f"{p.name}: {self.old[p.name]} is not older than {p.version}")
        self.sign()
        say("repo-add: the repository's database")
        subprocess.run(["repo-add", "-q", "extra.db.tar.gz", *[p.filename for p in self.pkgs]],
                       cwd=self.repo, check=True, env=ENV)
        built = [p.csize for p in self.pkgs]
        self.total = sum(built)
        self.context.append((
            "packages", f"{len(built)} packages, {self.total / MB:.1f} MB, smallest "
            f"{min(built) / KiB:.0f} KiB, largest {max(built) / MB:.1f} MB, "
            f"{sum(s <= MiB for s in built)} of them <= 1 MiB; `.PKGINFO` + `.MTREE` + one "
            "file of random bytes, bsdtar + `zstd -1`, each signed (`gpg --detach-sign`, a "
            "throwaway key), `repo-add` (embeds the signatures as `%PGPSIG%`, as Arch's "
            f"databases do); made in {time.perf_counter() - t:.0f} s"))

    def sign(self) -> None:
        """Detached signatures by a throwaway key, beside each package, as Arch's mirrors
        have them; `repo-add` 6.0 embeds them in the database. pacman runs with
        `SigLevel = Never` here, so nothing checks them: they are there so the database is
        shaped like Arch's (a database without `%PGPSIG%` would make prefetch ask the mirror
        for each `.sig`)."""
        home = self.work / "signer"
        home.mkdir(mode=0o700)
        env = dict(ENV, GNUPGHOME=str(home))
        gpg = ["gpg", "--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", ""]
        subprocess.run([*gpg, "--quick-gen-key", "pacxfer benchmark <bench@example.invalid>",
                        "ed25519", "sign", "never"], env=env, check=True,
                       capture_output=True)
        for p in self.pkgs:
            subprocess.run([*gpg, "--yes", "--detach-sign", "--no-armor", "-o",
                            f"{p.path}.sig", str(p.path)], env=env, check=True)
        # gpg started an agent for that key: end it, by its process id.
        r = subprocess.run(["gpg-connect-agent", "--no-autostart", "getinfo pid", "/bye"],
                           env=env, capture_output=True, text=True)
        m = re.search(r"^D (\d+)", r.stdout, re.M)
        if m:
            self.agent_pid = int(m.group(1))
            try:
                os.kill(self.agent_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def start_servers(self) -> None:
        w, a = self.work, self.args
        say("starting two offline Kubo nodes (one stays empty) and the mirror "
            f"({a.rate:g} MB/s shared, {a.latency:g} ms per request)")
        self.nodes: dict[str, tuple[str, str]] = {}
        for name in ("empty", "full"):
            proc, api, gateway = start_kubo(w / f"ipfs-{name}", w / f"ipfs-{name}.log")
            self.procs.append(proc)
            self.nodes[name] = (api, gateway)
        me = [sys.executable, str(Path(__file__).resolve()), "serve", "--root", str(w / "mirror")]
        self.mirror_log = w / "mirror-access.log"
        mirror, self.mirror = start_server(
            me + ["--rate", str(a.rate), "--latency", str(a.latency), "--log",
                  str(self.mirror_log)], w / "mirror.err")
        self.procs.append(mirror)
        self.base = f"{self.mirror}/extra/os/x86_64"

        # The full node holds every package as `pacxfer seed` leaves it: added with the
        # unixfs-v1-2025 settings (no pin) and linked in MFS as /pacxfer/<sha256>, where
        # pacxfer's seeded-copy source asks first (`files/stat`), large files included.
        api = self.nodes["full"][0]
        t = time.perf_counter()
        rpc(api, "files/mkdir", [("arg", "/pacxfer"), ("parents", "true")])
        for p in self.pkgs:
            added = curl_json(["-X", "POST", "-F", f"file=@{p.path};filename={p.sha256}",
                               f"{api}/api/v0/add?{PROFILE}&pin=false"])
            rpc(api, "files/cp", [("arg", f"/ipfs/{added[-1]['Hash']}"),
                                  ("arg", f"/pacxfer/{p.sha256}")])
        took = time.perf_counter() - t
        kubo = subprocess.run([ipfs_bin(), "version", "--number"], capture_output=True,
                              text=True).stdout.strip()
        self.context.append((
            "IPFS nodes", f"Kubo {kubo}, each `ipfs init --profile=test`, `ipfs daemon "
            "--offline`, as the main benchmark; pacxfer's config: `[gateway] url` and "
            "`[share] api` of one node, everything else at its default (`paths = "
            "[\"/ipfs/{cid}\"]`, seeded copies asked for). *empty*: nothing added. *full*: "
            f"the {len(self.pkgs)} packages added and linked as `/pacxfer/<sha256>` "
            f"(`pacxfer seed`'s layout) in {took:.1f} s"))

    # ---- one older system

    def older_system(self, d: Path, s: Scenario) -> tuple[Path, Path | None]:
        """A throwaway pacman root under `d` whose local database lists every package at its
        older version, no sync database, an empty CacheDir; its pacman.conf, and pacxfer's
        config when pacxfer is the XferCommand."""
        for sub in ("root", "db/local", "db/sync", "cache", "gnupg", "hooks", "pxcache"):
            (d / sub).mkdir(parents=True)
        local = d / "db" / "local"
        (local / "ALPM_DB_VERSION").write_text("9\n")
        for p in self.pkgs:
            entry = local / f"{p.name}-{self.old[p.name]}"
            entry.mkdir()
            (entry / "desc").write_text(
                f"%NAME%\n{p.name}\n\n%VERSION%\n{self.old[p.name]}\n\n%ARCH%\n{p.arch}\n\n"
                f"%INSTALLDATE%\n1700000000\n\n%SIZE%\n{p.isize}\n\n%REASON%\n0\n\n")
            (entry / "files").write_text("%FILES%\n\n")
        pacman_conf = d / "pacman.conf"
        pacxfer_conf = None
        if s.builtin:
            download = "ParallelDownloads = 5\n"
        else:
            pacxfer_conf = d / "pacxfer.conf"
            api, gateway = self.nodes[s.node]
            pacxfer_conf.write_text(
                f'dbpath = "{d / "db"}"\npacman_conf = "{pacman_conf}"\n'
                f'cache_dir = "{d / "pxcache"}"\n\n[gateway]\nurl = "{gateway}"\n\n'
                f'[share]\napi = "{api}"\n')
            download = f"XferCommand = {self.pacxfer} --config {pacxfer_conf} %u %o\n"
        pacman_conf.write_text(
            f"[options]\nRootDir = {d}/root/\nDBPath = {d}/db/\nCacheDir = {d}/cache/\n"
            f"LogFile = {d}/pacman.log\nGPGDir = {d}/gnupg/\nHookDir = {d}/hooks/\n"
            f"Architecture = x86_64\nSigLevel = Never\n{download}\n"
            f"[extra]\nServer = {self.mirror}/$repo/os/$arch\n")
        return pacman_conf, pacxfer_conf

    def pacman(self, d: Path, conf: Path, *args: str) -> list[str]:
        """pacman on the throwaway root only: its config, root, database and cache given."""
        return ["pacman", "--config", str(conf), "--root", f"{d}/root/", "--dbpath",
                f"{d}/db/", "--cachedir", f"{d}/cache/", *args]

    def timed(self, argv: list[str], log: Path, env: dict) -> float:
        with open(log, "ab") as out:
            out.write(("$ " + " ".join(argv) + "\n").encode())
            out.flush()
            t0 = time.perf_counter()
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                    env=env)
            code = proc.wait()
            took = time.perf_counter() - t0
        if code != 0:
            tail = log.read_text(errors="replace").splitlines()[-15:]
            raise SystemExit(f"exit status {code} from: {' '.join(argv)}\n" + "\n".join(tail))
        return took

    def mirror_gets(self) -> list[str]:
        return [line for line in self.mirror_log.read_text().splitlines()
                if line.startswith("GET ")]

    @staticmethod
    def package_gets(lines: list[str]) -> list[str]:
        return [line for line in lines
                if ".pkg.tar" in line.split()[1] and not line.split()[1].endswith(".sig")]

    def run_one(self, s: Scenario) -> Outcome:
        # pacman splits XferCommand into words itself: no quotes in the paths.
        d = self.work / "runs" / s.key.replace("'", "-prime")
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        log = d / "output.log"
        n = len(self.pkgs)
        before = len(self.mirror_gets())
        if s.floor:
            argv = ["curl", "-fsS", "--parallel", "--parallel-max", "5"]
            for p in self.pkgs:
                argv += ["-o", "/dev/null", f"{self.base}/{urllib.parse.quote(p.filename)}"]
            took = self.timed(argv, log, ENV)
            got = len(self.package_gets(self.mirror_gets()[before:]))
            if got != n:
                raise SystemExit(f"{s.key}: the mirror served {got} packages, not {n}")
            shutil.rmtree(d, ignore_errors=True)
            return Outcome(took, None, None, loadavg())
        conf, xconf = self.older_system(d, s)
        env = dict(ENV, PACXFER_CACHE_DIR=str(d / "pxcache"))
        note = ""
        prefetch_s = None
        if s.jobs is not None:
            prefetch_s = self.timed([self.pacxfer, "--config", str(xconf), "prefetch", "--jobs",
                                     str(s.jobs)], log, env)
            text = log.read_text(errors="replace")
            m = re.search(r"prefetched (\d+) of (\d+) files.*", text)
            if not m or m.group(1) != str(n) or m.group(2) != str(n):
                raise SystemExit(f"{s.key}: prefetch did not fetch all {n} files:\n{text}")
            if f"a complete upgrade is ready: {n} packages" not in text:
                raise SystemExit(f"{s.key}: prefetch did not say the upgrade is ready:\n{text}")
            from_mirror = len(self.package_gets(self.mirror_gets()[before:]))
            if s.node == "full" and from_mirror:
                raise SystemExit(f"{s.key}: prefetch took {from_mirror} packages from the "
                                 "mirror, though the node holds them all")
            note = "prefetch: " + re.sub(r"^.*?: (?=\d+ from)", "", m.group(0)).split(";")[0]
        mid = len(self.mirror_gets())
        syu_s = self.timed(self.pacman(d, conf, "-Syu", "--noconfirm"), log, env)
        syu_gets = self.package_gets(self.mirror_gets()[mid:])
        if s.jobs is not None and syu_gets:
            raise SystemExit(f"{s.key}: pacman -Syu downloaded {len(syu_gets)} packages after "
                             f"the prefetch, e.g. {syu_gets[0]}")
        if s.builtin and len(syu_gets) != n:
            raise SystemExit(f"{s.key}: pacman fetched {len(syu_gets)} packages, not {n}")
        if s.jobs is None and not s.builtin:
            note = f"pacman -Syu: {n - len(syu_gets)}/{n} packages from IPFS"
            if s.node == "full" and syu_gets:
                raise SystemExit(f"{s.key}: {len(syu_gets)} packages came from the mirror, "
                                 "though the node holds them all")
        self.verify(d, conf, s)
        if not self.args.keep:
            shutil.rmtree(d, ignore_errors=True)
        return Outcome((prefetch_s or 0) + syu_s, prefetch_s, syu_s, loadavg(), note)

    def verify(self, d: Path, conf: Path, s: Scenario) -> None:
        """Every package installed at its new version (`pacman -Q`), its file on disk."""
        r = subprocess.run(self.pacman(d, conf, "-Q"), capture_output=True, text=True,
                           env=ENV)
        have = dict(line.split() for line in r.stdout.splitlines() if line.strip())
        want = {p.name: p.version for p in self.pkgs}
        if r.returncode != 0 or have != want:
            wrong = sorted(k for k in want if have.get(k) != want[k])
            raise SystemExit(f"{s.key}: pacman -Q does not list the new versions: "
                             f"{wrong[:5]} {r.stderr.strip()}")
        for p in self.pkgs:
            data = d / "root" / "usr" / "share" / p.name / "data"
            if not data.is_file() or data.stat().st_size != max(p.isize - 2048, 0):
                raise SystemExit(f"{s.key}: {data} is missing or has the wrong size")

    # ---- all of it

    def scenarios(self) -> list[Scenario]:
        return [
            Scenario("A", "`pacman -Syu`, built-in downloader, ParallelDownloads = 5",
                     builtin=True),
            Scenario("B", "`pacxfer prefetch` (--jobs 4), IPFS empty; then `pacman -Syu`",
                     jobs=4),
            Scenario("B5", "same, `--jobs 5`", jobs=5),
            Scenario("C", "`pacxfer prefetch` (--jobs 4), packages in the node; then "
                     "`pacman -Syu`", node="full", jobs=4),
            Scenario("C5", "same, `--jobs 5`", node="full", jobs=5),
            Scenario("D", "`pacman -Syu`, XferCommand = pacxfer, no prefetch, IPFS empty "
                     "(one download at a time)"),
            Scenario("D'", "same, packages in the node", node="full"),
            Scenario("L", "link floor: `curl --parallel --parallel-max 5` of the "
                     f"{len(self.pkgs)} files", floor=True),
        ]

    def link_check(self) -> None:
        speed, ttfb = link_speed(self.base, self.pkgs)
        self.context.append(("link floor, computed", f"{self.total / MB:.1f} MB at "
                             f"{self.args.rate:g} MB/s: {self.total / MB / self.args.rate:.2f} s "
                             "(row L measures it, with the mirror's own costs)"))
        self.context.append(("mirror link (curl, one connection)",
                             f"{speed / MB:.1f} MB/s, first byte after {ttfb * 1000:.0f} ms "
                             f"(set: {self.args.rate:g} MB/s shared by all connections, "
                             f"{self.args.latency:g} ms added to each request)"))

    def machine(self) -> None:
        def version(argv: list[str], pattern: str) -> str:
            r = subprocess.run(argv, capture_output=True, text=True, env=ENV)
            m = re.search(pattern, r.stdout + r.stderr)
            return m.group(0) if m else "?"

        self.context[:0] = host_rows(self.work, self.pacxfer) + [
            ("tools", ", ".join([version(["pacman", "--version"], r"Pacman v\S+"),
                                 version(["curl", "--version"], r"curl \S+"),
                                 f"Python {sys.version.split()[0]}",
                                 version(["uname", "-sr"], r".+")])),
        ]

    def run(self) -> int:
        if os.geteuid() != 0:
            raise SystemExit("run as root: pacman installs into the throwaway root only, "
                             "but refuses to run as another user")
        return super().run()

    def body(self) -> None:
        a = self.args
        self.generate()
        self.start_servers()
        self.context.insert(0, ("load at start", Path("/proc/loadavg").read_text().strip()))
        self.machine()
        self.link_check()
        scenarios = self.scenarios()
        only = set(a.only.split(",")) if a.only else None
        scenarios = [s for s in scenarios if only is None or s.key in only]
        self.ran = scenarios
        for i in range(a.rounds):
            shift = i % len(scenarios)
            for s in scenarios[shift:] + scenarios[:shift]:
                o = self.run_one(s)
                self.results.setdefault(s.key, []).append(o)
                say(f"round {i + 1}/{a.rounds} {s.key}: {fmt_time(o.total)}"
                    + (f" = prefetch {fmt_time(o.prefetch)} + -Syu {fmt_time(o.syu)}"
                       if o.prefetch is not None else "") + f" (load {o.load})")
        # The empty node must still be empty: nothing pacxfer did put files into it.
        try:
            rpc(self.nodes["empty"][0], "files/stat", [("arg", "/pacxfer")])
            raise SystemExit("the empty node holds /pacxfer after the runs")
        except urllib.error.HTTPError:
            pass

    def report(self) -> None:
        scenarios = self.ran

        def med(key: str, attr: str) -> float | None:
            vals = [getattr(o, attr) for o in self.results.get(key, [])]
            vals = [v for v in vals if v is not None]
            return statistics.median(vals) if vals else None

        def spread(key: str, attr: str) -> str:
            vals = [getattr(o, attr) for o in self.results[key]]
            if any(v is None for v in vals):
                return ""
            m, lo, hi = stats(vals)
            return f"{fmt_time(m)} ({fmt_time(lo)} – {fmt_time(hi)})"

        a_total = med("A", "total")
        floor = med("L", "total")
        n = len(self.pkgs)
        lines = [
            f"| # | {n} packages, {self.total / MB:.0f} MB | total: median (min – max) "
            "| of which `pacxfer prefetch` | of which `pacman -Syu` | A's total ÷ this total "
            "| A's total ÷ this `-Syu` | this total ÷ link floor | notes | load |",
            "|---|---|---|---|---|---|---|---|---|---|"]
        for s in scenarios:
            key = s.key
            total = med(key, "total")
            syu = med(key, "syu")
            rows = len(self.results[key])
            vs_a = f"{a_total / total:.2f}x" if a_total else ""
            vs_a_syu = f"{a_total / syu:.2f}x" if a_total and syu and s.jobs else ""
            vs_floor = f"{total / floor:.2f}x" if floor else ""
            rate = f", {self.total / total / MB:.1f} MB/s" if s.floor or s.builtin else ""
            notes = sorted({o.note for o in self.results[key] if o.note})
            lines.append(
                f"| {key} | {s.what} | {spread(key, 'total')}{rate}, n={rows} "
                f"| {spread(key, 'prefetch') if s.jobs else ''} "
                f"| {spread(key, 'syu') if not s.floor else ''} "
                f"| {vs_a} | {vs_a_syu} | {vs_floor} | {'; '.join(notes)} "
                f"| {self.results[key][-1].load} |")
        self.emit(lines)


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="the HTTP file server (mirror or loopback)")
    s.add_argument("--root", required=True)
    s.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--rate", type=float, default=0, help="MB/s for all connections (0: unlimited)")
    s.add_argument("--latency", type=float, default=0, help="ms added to each request")
    s.add_argument("--log")
    r = sub.add_parser("run", help="the whole benchmark")
    r.add_argument("--quick", action="store_true", help="a short smoke run, fewer repetitions")
    r.add_argument("--pacxfer", default=str(TOP / "target" / "release" / "pacxfer"))
    r.add_argument("--work", default="/tmp/pacxfer-bench")
    r.add_argument("--keep", action="store_true", help="keep the work directory")
    r.add_argument("--rate", type=float, default=20, help="mirror link, MB/s in total")
    r.add_argument("--latency", type=float, default=50, help="mirror, ms added per request")
    r.add_argument("--entries", type=int, default=15000, help="sync db entries")
    r.add_argument("--packages", type=int, default=50, help="real packages for case 6")
    r.add_argument("--packages-mb", type=float, default=250, help="their total size, MB")
    r.add_argument("--big-mib", type=int, default=256, help="case 4's file, MiB")
    r.add_argument("--cases", help="only these cases, e.g. 1,2")
    r.add_argument("--markdown", help="also write the table to this file")
    q = sub.add_parser("publish", help="`pacxfer publish` at Arch's scale")
    q.add_argument("--quick", action="store_true", help="2,000 packages, 10 gateway samples")
    q.add_argument("--pacxfer", default=str(TOP / "target" / "release" / "pacxfer"),
                   help="the binary to time")
    q.add_argument("--work", default="/tmp/pacxfer-bench-publish",
                   help="where everything lives (emptied first; removed unless --keep)")
    q.add_argument("--keep", action="store_true", help="keep the work directory")
    q.add_argument("--entries", type=int, help="packages in the repository (default 15000)")
    q.add_argument("--min-kib", type=int, default=2, help="smallest package, KiB")
    q.add_argument("--max-kib", type=int, default=8, help="largest package, KiB")
    q.add_argument("--samples", type=int, help="files the gateway is timed on (default 20)")
    q.add_argument("--markdown", help="also write the table to this file")
    f = sub.add_parser("prefetch", help="an upgrade: `pacxfer prefetch` + `pacman -Syu` "
                       "against pacman's own downloader (root)")
    f.add_argument("--quick", action="store_true", help="one round instead of five")
    f.add_argument("--pacxfer", default=str(TOP / "target" / "release" / "pacxfer"),
                   help="the binary to time")
    f.add_argument("--work", default="/tmp/pacxfer-bench-prefetch",
                   help="where everything lives (emptied first; removed unless --keep)")
    f.add_argument("--keep", action="store_true", help="keep the work directory")
    f.add_argument("--rate", type=float, default=20, help="mirror link, MB/s in total")
    f.add_argument("--latency", type=float, default=40, help="mirror, ms added per request")
    f.add_argument("--packages", type=int, default=40, help="packages in the upgrade")
    f.add_argument("--packages-mb", type=float, default=120, help="their total size, MB")
    f.add_argument("--rounds", type=int, help="runs of each scenario (default 5)")
    f.add_argument("--only", help="only these scenarios, e.g. A,B,L")
    f.add_argument("--markdown", help="also write the table to this file")
    args = p.parse_args()
    if args.cmd == "prefetch":
        args.rounds = args.rounds or (1 if args.quick else 5)
        return PrefetchBench(args).run()
    if args.cmd == "publish":
        args.entries = args.entries or (2000 if args.quick else 15000)
        args.samples = args.samples or (10 if args.quick else 20)
        return PublishBench(args).run()
    if args.cmd == "serve":
        serve(args)
        return 0
    return Bench(args).run()


if __name__ == "__main__":
    sys.exit(main())
