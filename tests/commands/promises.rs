//! The promises of README's "What it guarantees" and of pacxfer.conf(5) that no other module
//! proves, one test each, named after the promise. Each refusal comes with its control: the
//! same run without the bad input (or with the limit just met) does the work, so the refusal
//! is the guard's doing and not the setup's.
//!
//! Which source served a file is read from the servers' own logs: the test mirror's, the fault
//! server's, and the request lines the small servers of this file record.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::commands::hardening::use_api;
use crate::harness::canned::Canned;
use crate::harness::chroot::Pacman7;
use crate::harness::faultd::{Fault, FaultServer};
use crate::harness::fixtures::REPO;
use crate::harness::util::{pacxfer, pacxfer_bin, run, run_within, sha256_hex, Run};
use crate::harness::world::World;

/// The longest any one call here is waited for: only so that a call that hangs fails the test
/// with a message instead of holding the run. No verdict depends on it.
const HUNG: Duration = Duration::from_secs(180);

/// An HTTP/1.1 answer: `status`, `Content-Length: length`, then `body` (which may be shorter
/// than `length`: the connection is closed after it).
fn http_answer(status: &str, length: usize, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\nContent-Length: \
         {length}\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// Adds `lines` under the `[share]` table of the world's config.
fn share_lines(w: &World, lines: &str) {
    let text = std::fs::read_to_string(&w.config).expect("read config");
    assert!(text.contains("[share]\n"), "no [share] table in\n{text}");
    let text = text.replacen("[share]\n", &format!("[share]\n{lines}"), 1);
    std::fs::write(&w.config, text).expect("write config");
}

/// Adds `lines` under the `[mirror]` table of the world's config.
fn mirror_lines(w: &World, lines: &str) {
    let text = std::fs::read_to_string(&w.config).expect("read config");
    assert!(text.contains("[mirror]\n"), "no [mirror] table in\n{text}");
    let text = text.replacen("[mirror]\n", &format!("[mirror]\n{lines}"), 1);
    std::fs::write(&w.config, text).expect("write config");
}

/// Sets the top-level `key` of the world's config to `value` (a TOML value).
fn top_level(w: &World, key: &str, value: &str) {
    let text = std::fs::read_to_string(&w.config).expect("read config");
    assert!(
        text.lines().any(|l| l.starts_with(&format!("{key} = "))),
        "no {key} in\n{text}"
    );
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with(&format!("{key} = ")) {
                format!("{key} = {value}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&w.config, text).expect("write config");
}

/// `pacxfer --config <world> ARGS`, killed (and the test failed) if it has not ended within
/// [`HUNG`].
#[track_caller]
fn pacxfer_within(w: &World, args: &[&str]) -> Run {
    let mut cmd = pacxfer();
    cmd.env_remove("PACXFER_CACHE_DIR")
        .arg("--config")
        .arg(&w.config)
        .args(args);
    let (r, _) = run_within(&mut cmd, HUNG);
    assert!(
        r.code().is_some(),
        "{}",
        r.explain(&format!("did not end by itself within {}s", HUNG.as_secs()))
    );
    r
}

// ---------------------------------------------------------------------------------------
// CacheServer lines (pacman 7's pacman-conf knows them; the host's 6.0 does not).
// ---------------------------------------------------------------------------------------

/// A world whose pacman.conf lists `lines` (`CacheServer = ...`, `Server = ...`) for the
/// repository, and whose gateway and node are dead ports.
fn world_with_lines(name: &str, lines: &[String]) -> World {
    let w = World::new(name, false);
    std::fs::set_permissions(w.dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod world");
    let text = format!(
        "[options]\nArchitecture = x86_64\nSigLevel = Never\nDBPath = {}/\n\n[{REPO}]\n{}\n",
        w.dbpath.display(),
        lines.join("\n")
    );
    std::fs::write(&w.pacman_conf, text).expect("write pacman.conf");
    w
}

/// `pacxfer -v URL OUTPUT` inside the pacman 7 root, so that it asks pacman 7's pacman-conf.
fn xfer_in_pacman7_root(w: &World, url: &str, out: &Path) -> Run {
    let p7 = Pacman7::get();
    let dirs = w.dir.path().parent().expect("the tests' directories");
    let bin = pacxfer_bin();
    let argv: Vec<String> = vec![
        bin.display().to_string(),
        "--config".into(),
        w.config.display().to_string(),
        "-v".into(),
        url.into(),
        out.display().to_string(),
    ];
    p7.run(&[dirs, &bin], &argv, HUNG)
}

/// The faults the fault server's log shows, in order.
fn faults_asked(f: &FaultServer) -> Vec<String> {
    f.log()
        .iter()
        .map(|h| {
            h.path
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// For a package, pacman orders a repository's CacheServer lines before its Server lines;
/// when the CacheServer pacman gave fails, pacxfer tries the next CacheServer, then the
/// Server lines, in that order. Here both CacheServers fail (500, then 502) and only the
/// Server serves: the download succeeds only if the CacheServer lines are in the list, and
/// before the Server lines.
#[test]
fn cache_servers_come_first_for_packages() {
    let faults = FaultServer::start(Vec::new());
    let big = crate::harness::fixtures::get().big.clone();
    let repo_path = format!("/{REPO}/os/x86_64");
    // The world's mirror is made inside World::new; its URL is only known afterwards.
    let mut w = world_with_lines("promise-cacheserver-pkg", &[]);
    let lines = [
        format!("CacheServer = {}", faults.base(Fault::Status(500))),
        format!("CacheServer = {}", faults.base(Fault::Status(502))),
        format!("Server = {}{repo_path}", w.mirror.url()),
    ];
    w = rewrite_lines(w, &lines);
    let out = w.out(&format!("{}.part", big.filename));
    let url = format!("{}/{}", faults.base(Fault::Status(500)), big.filename);
    let r = xfer_in_pacman7_root(&w, &url, &out);
    r.success();
    w.assert_same(&out, &big.path, &r);
    assert_eq!(
        faults_asked(&faults),
        ["status-500", "status-502"],
        "{}",
        r.explain(&faults.log_text())
    );
    assert_eq!(
        w.mirror.hits_for(&big.filename).len(),
        1,
        "{}",
        w.mirror.log_text()
    );
}

/// pacman asks only Server lines for a database, never a CacheServer; pacxfer's list for a
/// database holds only the Server lines too. The realistic half: Server 1 fails, Server 2
/// serves, and the CacheServer is never asked. The half that tells: a database URL on the
/// CacheServer is no Server line of the repository, so it is the only one tried (had the
/// CacheServer lines been in the database's list, the Server lines after it would have served).
#[test]
fn a_database_never_goes_to_a_cache_server() {
    let db = crate::harness::fixtures::get().db();
    let faults = FaultServer::start(std::fs::read(&db).expect("read db"));
    let repo_path = format!("/{REPO}/os/x86_64");
    let w = world_with_lines("promise-cacheserver-db", &[]);
    let lines = [
        format!("CacheServer = {}", faults.base(Fault::Status(502))),
        format!("Server = {}", faults.base(Fault::Status(500))),
        format!("Server = {}{repo_path}", w.mirror.url()),
    ];
    let w = rewrite_lines(w, &lines);
    let name = format!("{REPO}.db");

    let out = w.out("first/testrepo.db.part");
    std::fs::create_dir_all(out.parent().expect("dir")).expect("mkdir");
    let url = format!("{}/{name}", faults.base(Fault::Status(500)));
    let r = xfer_in_pacman7_root(&w, &url, &out);
    r.success();
    w.assert_same(&out, &db, &r);
    assert_eq!(
        faults_asked(&faults),
        ["status-500"],
        "{}",
        r.explain(&faults.log_text())
    );
    assert_eq!(w.mirror.hits_for(&name).len(), 1, "{}", w.mirror.log_text());

    let out = w.out("second/testrepo.db.part");
    std::fs::create_dir_all(out.parent().expect("dir")).expect("mkdir");
    let url = format!("{}/{name}", faults.base(Fault::Status(502)));
    let r = xfer_in_pacman7_root(&w, &url, &out);
    r.failure();
    assert_eq!(
        faults_asked(&faults),
        ["status-500", "status-502"],
        "{}",
        r.explain(&faults.log_text())
    );
    assert_eq!(
        w.mirror.hits_for(&name).len(),
        1,
        "{}",
        r.explain(&w.mirror.log_text())
    );
    assert!(!out.exists(), "{}", r.explain("an empty output was left"));
}

/// Replaces the repository's lines of the world's pacman.conf.
fn rewrite_lines(w: World, lines: &[String]) -> World {
    let text = std::fs::read_to_string(&w.pacman_conf).expect("read pacman.conf");
    let head = text
        .split_once(&format!("[{REPO}]"))
        .map(|(h, _)| h.to_string())
        .expect("repository section");
    std::fs::write(
        &w.pacman_conf,
        format!("{head}[{REPO}]\n{}\n", lines.join("\n")),
    )
    .expect("write pacman.conf");
    w
}

// ---------------------------------------------------------------------------------------
// pacman-conf gets 10 s, and a hang is not remembered.
// ---------------------------------------------------------------------------------------

/// Whether any process has `fifo` open for reading (opening it to write without blocking
/// fails with ENXIO when none has).
fn fifo_has_reader(fifo: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(fifo)
        .is_ok()
}

/// Lets every reader of `fifo` through, with an empty file (opens it to write, closes it at
/// once: no byte is written, so the FIFO's mtime and size stay as they were), until dropped.
struct FifoFeeder {
    fifo: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FifoFeeder {
    fn start(fifo: &Path) -> FifoFeeder {
        let stop = Arc::new(AtomicBool::new(false));
        let (path, flag) = (fifo.to_path_buf(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                // Blocks until a reader opens it.
                let _ = std::fs::OpenOptions::new().write(true).open(&path);
            }
        });
        FifoFeeder {
            fifo: fifo.to_path_buf(),
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FifoFeeder {
    fn drop(&mut self) {
        use std::os::unix::fs::OpenOptionsExt;
        self.stop.store(true, Ordering::SeqCst);
        // A reader of our own lets the blocked open through.
        let _reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open(&self.fifo);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// pacman-conf blocked by what pacman.conf includes (a FIFO nobody writes) is given 10 s,
/// then killed: the call goes on and says so, and no pacman-conf is left behind. That failure
/// is not remembered (unlike a refusal): once the FIFO lets readers through, the next call
/// asks pacman-conf again and downloads through the Server lines it names.
#[test]
fn pacman_conf_gets_ten_seconds_and_a_hang_is_not_remembered() {
    let w = World::new("promise-pacman-conf-hang", false);
    let fifo = w.dir.join("include.fifo");
    run(Command::new("mkfifo").arg(&fifo)).success();
    let conf = std::fs::read_to_string(&w.pacman_conf).expect("read pacman.conf");
    std::fs::write(
        &w.pacman_conf,
        conf.replacen(
            "[options]\n",
            &format!("[options]\nInclude = {}\n", fifo.display()),
            1,
        ),
    )
    .expect("write pacman.conf");
    let tiny = w.fx.tiny.clone();
    let outdir = w.dir.join("fetched");
    std::fs::create_dir_all(&outdir).expect("mkdir");
    let fetch =
        |w: &World| pacxfer_within(w, &["fetch", "tiny", "-o", outdir.to_str().expect("utf8")]);

    let r = fetch(&w);
    r.failure()
        .stderr_has("gave no answer within 10s (does pacman.conf include a FIFO");
    assert!(
        !fifo_has_reader(&fifo),
        "{}",
        r.explain("a pacman-conf still waits on the FIFO after pacxfer ended")
    );
    assert!(
        w.mirror.hits_for(&tiny.filename).is_empty(),
        "{}",
        w.mirror.log_text()
    );

    let feeder = FifoFeeder::start(&fifo);
    let r = fetch(&w);
    drop(feeder);
    r.success().stderr_has("from mirror");
    assert!(
        !r.stderr().contains("remembered"),
        "{}",
        r.explain("remembered")
    );
    assert_eq!(
        sha256_hex(&outdir.join(&tiny.filename)),
        tiny.sha256,
        "{}",
        r.explain("fetched file")
    );
    assert_eq!(
        w.mirror.hits_for(&tiny.filename).len(),
        1,
        "{}",
        w.mirror.log_text()
    );
}

// ---------------------------------------------------------------------------------------
// A source announcing more bytes than the database lists.
// ---------------------------------------------------------------------------------------

/// A gateway that announces `announced` bytes for tiny, sends its first half, and closes.
fn half_then_close(tiny: &[u8], announced: usize) -> Canned {
    let half = tiny[..tiny.len() / 2].to_vec();
    Canned::start(move |_| Some(http_answer("200 OK", announced, &half)))
}

/// A source whose `Content-Length` is more than the database lists is refused on its headers:
/// none of its bytes reach the output, so the mirror is asked for the whole file. The control
/// is the same gateway announcing the listed size: its half is kept, and the mirror is asked
/// only for the rest (`Range`).
#[test]
fn a_source_announcing_more_bytes_than_listed_is_refused_before_any_byte_moves() {
    let mut w = World::new("promise-announced-oversize", false);
    let tiny = w.fx.tiny.clone();
    let bytes = std::fs::read(&tiny.path).expect("read tiny");
    let half = bytes.len() / 2;

    for (announced, range) in [
        (bytes.len() + 4096, None),
        (bytes.len(), Some(format!("bytes={half}-"))),
    ] {
        let gateway = half_then_close(&bytes, announced);
        w.configure(&gateway.url, &["/ipfs/{cid}"], "breaker = \"0\"");
        let before = w.mirror.hits_for(&tiny.filename).len();
        let out = w.out(&format!("{announced}/{}.part", tiny.filename));
        std::fs::create_dir_all(out.parent().expect("dir")).expect("mkdir");
        let r = w.xfer_verbose(&w.url(&tiny.filename), &out);
        r.success().stderr_has("from mirror");
        w.assert_same(&out, &tiny.path, &r);
        assert_eq!(gateway.requests().len(), 1, "{:?}", gateway.requests());
        let hits = w.mirror.hits_for(&tiny.filename);
        assert_eq!(hits.len(), before + 1, "{}", w.mirror.log_text());
        assert_eq!(
            hits.last().and_then(|h| h.range.clone()),
            range,
            "{}",
            r.explain(&format!(
                "announced {announced} of a {}-byte file: what the mirror was asked",
                bytes.len()
            ))
        );
    }
}

// ---------------------------------------------------------------------------------------
// The database limits: 2 GiB decompressed, 500,000 members, values of 255 bytes.
// ---------------------------------------------------------------------------------------

/// A tar header (GNU) for a member of `size` bytes at `path` (under 100 bytes).
fn tar_header(path: &str, size: u64) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_path(path).expect("tar path");
    h.set_size(size);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// A tar member: header, data, padding to 512.
fn tar_member(path: &str, data: &[u8]) -> Vec<u8> {
    let mut out = tar_header(path, data.len() as u64);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

/// The `desc` of a package named `name` whose file is `filename`.
fn desc(name: &str, version: &str, filename: &str) -> String {
    format!(
        "%FILENAME%\n{filename}\n\n%NAME%\n{name}\n\n%VERSION%\n{version}\n\n%ARCH%\nany\n\n\
         %CSIZE%\n1000\n\n%SHA256SUMS%\n{sha}\n\n%SHA256SUM%\n{sha}\n\n",
        sha = "ab".repeat(32)
    )
}

/// Writes `sync/<repo>.db` of the world: zstd of what `write` puts out (through the `zstd`
/// program, so that gigabytes of zeros cost seconds and a few KiB of disk).
fn crafted_db(w: &World, repo: &str, write: impl FnOnce(&mut dyn Write)) {
    let path = w.dbpath.join("sync").join(format!("{repo}.db"));
    let mut child = Command::new("zstd")
        .args(["-q", "-1", "-f", "-o"])
        .arg(&path)
        .stdin(Stdio::piped())
        .spawn()
        .expect("run zstd (contrib/deps.sh installs it)");
    {
        let mut stdin =
            std::io::BufWriter::with_capacity(1 << 20, child.stdin.take().expect("stdin"));
        write(&mut stdin);
        stdin.flush().expect("feed zstd");
    }
    assert!(child.wait().expect("wait zstd").success(), "zstd failed");
}

/// `lookup FILE` against the world's databases.
fn lookup(w: &World, what: &str) -> Run {
    pacxfer_within(w, &["lookup", what])
}

const BEYOND: &str = "beyond-1-1-any.pkg.tar.zst";

/// A database that decompresses to more than 2 GiB is refused, naming the limit, and the
/// others still answer; its entry after the 2 GiB is never read. The control: the same
/// database with its filler just under the limit is read to its end.
#[test]
fn a_database_larger_than_2_gib_decompressed_is_refused() {
    let w = World::new("promise-db-2gib", false);
    let entry = tar_member("beyond-1-1/desc", desc("beyond", "1-1", BEYOND).as_bytes());
    let with_filler = |size: u64| {
        let entry = entry.clone();
        move |out: &mut dyn Write| {
            out.write_all(&tar_header("filler-1-1/blob", size))
                .expect("write");
            let zeros = vec![0u8; 1 << 20];
            let mut left = size.div_ceil(512) * 512;
            while left > 0 {
                let n = left.min(zeros.len() as u64) as usize;
                out.write_all(&zeros[..n]).expect("write");
                left -= n as u64;
            }
            out.write_all(&entry).expect("write");
            out.write_all(&[0u8; 1024]).expect("write");
        }
    };
    crafted_db(&w, "hostile", with_filler(2 << 30));
    let r = lookup(&w, BEYOND);
    r.failure()
        .stderr_has("hostile.db is damaged or hostile (larger than 2 GiB once decompressed)");
    lookup(&w, &w.fx.tiny.filename)
        .success()
        .stdout_has("repo:      testrepo")
        .stderr_has("larger than 2 GiB once decompressed");

    // Control: 4 MiB less filler, and the whole database is read.
    crafted_db(&w, "hostile", with_filler((2 << 30) - (4 << 20)));
    let r = lookup(&w, BEYOND);
    r.success().stdout_has("repo:      hostile");
    assert!(
        !r.stderr().contains("hostile.db"),
        "{}",
        r.explain("warning")
    );
}

/// A database of more than 500,000 members is refused, naming the limit; the control holds
/// exactly 500,000 (its last one the entry looked for) and is read to its end.
#[test]
fn a_database_of_more_than_500000_members_is_refused() {
    let w = World::new("promise-db-members", false);
    let entry = tar_member("beyond-1-1/desc", desc("beyond", "1-1", BEYOND).as_bytes());
    let members = |fillers: usize| {
        let entry = entry.clone();
        move |out: &mut dyn Write| {
            let filler = tar_header("f/x", 0);
            for _ in 0..fillers {
                out.write_all(&filler).expect("write");
            }
            out.write_all(&entry).expect("write");
            out.write_all(&[0u8; 1024]).expect("write");
        }
    };
    crafted_db(&w, "hostile", members(500_000));
    lookup(&w, BEYOND)
        .failure()
        .stderr_has("hostile.db is damaged or hostile (more than 500000 members)");

    crafted_db(&w, "hostile", members(499_999));
    let r = lookup(&w, BEYOND);
    r.success().stdout_has("repo:      hostile");
    assert!(
        !r.stderr().contains("hostile.db"),
        "{}",
        r.explain("warning")
    );
}

/// `%NAME%`, `%VERSION%` and `%FILENAME%` of more than 255 bytes make the entry unreadable (a
/// warning naming the key; the entry is not used); 255 bytes are read.
#[test]
fn database_values_over_255_bytes_are_refused() {
    let w = World::new("promise-db-values", false);
    let long = |c: char, n: usize| c.to_string().repeat(n);
    // Each case: (what is looked up, the desc's name, version, file name, the key named).
    let cases = |n: usize| {
        [
            (
                long('n', n),
                long('n', n),
                "1-1".to_string(),
                format!("n{n}-1-1-any.pkg.tar.zst"),
                "%NAME%",
            ),
            (
                format!("v{n}-x-any.pkg.tar.zst"),
                format!("v{n}"),
                long('1', n),
                format!("v{n}-x-any.pkg.tar.zst"),
                "%VERSION%",
            ),
            (
                format!("{}.pkg.tar.zst", long('f', n - ".pkg.tar.zst".len())),
                format!("f{n}"),
                "1-1".to_string(),
                format!("{}.pkg.tar.zst", long('f', n - ".pkg.tar.zst".len())),
                "%FILENAME%",
            ),
        ]
    };
    crafted_db(&w, "crafted", |out| {
        for n in [255, 256] {
            for (i, (_, name, version, filename, _)) in cases(n).into_iter().enumerate() {
                // No dashes: a member directory that does not name a package may hold any
                // entry, so its problems are always reported.
                let member = format!("e{n}x{i}/desc");
                out.write_all(&tar_member(
                    &member,
                    desc(&name, &version, &filename).as_bytes(),
                ))
                .expect("write");
            }
        }
        out.write_all(&[0u8; 1024]).expect("write");
    });
    for (what, _, _, _, key) in cases(256) {
        lookup(&w, &what)
            .failure()
            .stderr_has(&format!("{key} is 256 bytes long, more than 255"));
    }
    for (what, _, _, filename, _) in cases(255) {
        let r = lookup(&w, &what);
        r.success()
            .stdout_has("repo:      crafted")
            .stdout_has(&format!("filename:  {filename}"));
        assert!(
            !r.stderr().contains("is 255 bytes long"),
            "{}",
            r.explain("a 255-byte value refused")
        );
    }
}

// ---------------------------------------------------------------------------------------
// Partial downloads are kept a week at most.
// ---------------------------------------------------------------------------------------

/// A failed download's bytes are kept in the cache place as `partial-<sha256>.part`; kept
/// prefixes older than a week are dropped when the next one is kept. Here one planted 8 days
/// ago is gone after a failed download of big (its file then starts from byte 0), one of 6
/// days is still there (its file resumes with `Range`), and big's own resumes.
#[test]
fn a_kept_partial_download_is_dropped_after_a_week() {
    let w = World::new("promise-partial-week", false);
    let (tiny, big, other) = (w.fx.tiny.clone(), w.fx.big.clone(), w.fx.other.clone());
    let cache = w.cache_dir();
    std::fs::create_dir_all(&cache).expect("mkdir cache");
    let plant = |pkg: &crate::harness::fixtures::Pkg, age: &str| {
        let path = cache.join(format!("partial-{}.part", pkg.sha256));
        let bytes = std::fs::read(&pkg.path).expect("read");
        std::fs::write(&path, &bytes[..1000]).expect("plant");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        run(Command::new("touch").args(["-d", age]).arg(&path)).success();
        path
    };
    let eight_days = plant(&tiny, "8 days ago");
    let six_days = plant(&other, "6 days ago");

    // big is cut off half-way on a source that is no Server line: it fails with bytes in hand.
    let faults = FaultServer::start(std::fs::read(&big.path).expect("read big"));
    let out = w.out(&format!("cut/{}.part", big.filename));
    std::fs::create_dir_all(out.parent().expect("dir")).expect("mkdir");
    let cut = format!("{}/{}", faults.base(Fault::TruncLying), big.filename);
    let r = w.xfer(&cut, &out);
    r.failure();
    let kept = cache.join(format!("partial-{}.part", big.sha256));
    assert_eq!(
        std::fs::metadata(&kept).map(|m| m.len()).ok(),
        Some(big.size / 2),
        "{}",
        r.explain("big's bytes were not kept")
    );
    assert!(
        !eight_days.exists(),
        "{}",
        r.explain("the 8-day-old prefix is still kept")
    );
    assert!(
        six_days.exists(),
        "{}",
        r.explain("the 6-day-old prefix is gone")
    );

    // Each file from the mirror into an empty OUTPUT: what the mirror was asked shows which
    // kept prefix was taken back.
    for (pkg, range) in [
        (&tiny, None),
        (&other, Some("bytes=1000-".to_string())),
        (&big, Some(format!("bytes={}-", big.size / 2))),
    ] {
        let out = w.out(&format!("fresh/{}.part", pkg.filename));
        std::fs::create_dir_all(out.parent().expect("dir")).expect("mkdir");
        let r = w.xfer(&w.url(&pkg.filename), &out);
        r.success();
        w.assert_same(&out, &pkg.path, &r);
        let hits = w.mirror.hits_for(&pkg.filename);
        assert_eq!(
            hits.iter().map(|h| h.range.clone()).collect::<Vec<_>>(),
            [range],
            "{}",
            r.explain(&format!("{}: {}", pkg.filename, w.mirror.log_text()))
        );
    }
}

// ---------------------------------------------------------------------------------------
// The node API's breaker.
// ---------------------------------------------------------------------------------------

/// Every download first asks the node's API for a seeded copy. An API that accepts and never
/// answers is waited on once: the breaker then skips it on later calls (`[gateway] breaker`),
/// while the files still come from the mirror. The control: with `breaker = "0"` every call
/// asks it again.
#[test]
fn a_node_api_that_does_not_answer_is_skipped_by_later_calls() {
    let mut w = World::new("promise-api-breaker", false);
    let api = Canned::start(|_| None);
    let tiny = w.fx.tiny.clone();
    let download = |w: &World, name: &str| {
        let out = w.out(name);
        let r = w.xfer_verbose(&w.url(&tiny.filename), &out);
        r.success().stderr_has("from mirror");
        w.assert_same(&out, &tiny.path, &r);
        r
    };
    let gateway = format!("http://127.0.0.1:{}", crate::harness::util::dead_port());
    for (breaker, asked) in [("", [1, 1, 1]), ("breaker = \"0\"", [2, 3, 4])] {
        w.configure(&gateway, &["/ipfs/{cid}"], breaker);
        use_api(&w, &api.url);
        for (i, want) in asked.into_iter().enumerate() {
            let r = download(&w, &format!("{}-{i}", breaker.len()));
            assert_eq!(
                api.requests().len(),
                want,
                "{}",
                r.explain(&format!("{breaker:?}, call {i}: {:?}", api.requests()))
            );
            assert!(
                api.requests()
                    .iter()
                    .all(|l| l.contains("/api/v0/files/stat")),
                "{:?}",
                api.requests()
            );
        }
        if breaker.is_empty() {
            // The breaker lasts two minutes: the next configuration starts with it closed.
            std::fs::remove_dir_all(w.cache_dir()).expect("rm cache");
        }
    }
}

// ---------------------------------------------------------------------------------------
// No standard input.
// ---------------------------------------------------------------------------------------

/// Runs `pacxfer --config <world> ARGS` with standard input a pipe that holds `data` and is
/// never closed while it runs; returns the run and what was left in the pipe after it ended.
fn with_open_stdin(w: &World, args: &[&str], data: &[u8]) -> (Run, Vec<u8>) {
    let (reader, mut writer) = std::io::pipe().expect("pipe");
    writer.write_all(data).expect("fill the pipe");
    let mut cmd = pacxfer();
    cmd.env_remove("PACXFER_CACHE_DIR")
        .arg("--config")
        .arg(&w.config)
        .args(args);
    let cmdline = format!("{cmd:?}");
    let mut child = cmd
        .stdin(reader.try_clone().expect("dup"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pacxfer");
    let started = std::time::Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > HUNG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmdline} waited on its open standard input");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("output");
    drop(writer);
    let mut left = Vec::new();
    let mut reader = reader;
    reader.read_to_end(&mut left).expect("read what is left");
    (Run { cmdline, output }, left)
}

/// No command but `seed --stdin` reads standard input: each runs to its end with stdin a pipe
/// that holds data and is never closed, and every byte is still there afterwards. The
/// control: `seed --stdin` on the same pipe does read it.
#[test]
fn no_command_reads_standard_input() {
    let w = World::new("promise-no-stdin", true);
    let tiny = w.fx.tiny.clone();
    let data: Vec<u8> = b"tiny\n".repeat(200);
    let out = w.out(&format!("{}.part", tiny.filename));
    let out_s = out.to_str().expect("utf8").to_string();
    let url = w.url(&tiny.filename);
    let fetched = w.dir.join("fetched");
    std::fs::create_dir_all(&fetched).expect("mkdir");
    let fetched_s = fetched.to_str().expect("utf8").to_string();
    for (i, args) in [
        vec![url.as_str(), out_s.as_str()],
        vec!["fetch", "tiny", "-o", fetched_s.as_str()],
        vec!["lookup", "tiny"],
        vec!["doctor"],
        vec!["stats"],
        vec!["seed", tiny.path.to_str().expect("utf8")],
    ]
    .into_iter()
    .enumerate()
    {
        let (r, left) = with_open_stdin(&w, &args, &data);
        assert!(
            left == data,
            "{}",
            r.explain(&format!(
                "{} of {} bytes of stdin were read",
                data.len() - left.len(),
                data.len()
            ))
        );
        match i {
            0 => w.assert_same(&out, &tiny.path, r.success()),
            1 => w.assert_same(&fetched.join(&tiny.filename), &tiny.path, r.success()),
            2 => {
                r.success().stdout_has(&tiny.sha256);
            }
            _ => {}
        }
    }

    // Control: the one command that reads it.
    let mut cmd = pacxfer();
    cmd.env_remove("PACXFER_CACHE_DIR")
        .arg("--config")
        .arg(&w.config)
        .args(["seed", "--stdin"]);
    let (reader, mut writer) = std::io::pipe().expect("pipe");
    writer.write_all(&data).expect("fill");
    drop(writer);
    let mut reader_left = reader.try_clone().expect("dup");
    let output = cmd
        .stdin(reader)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run seed --stdin");
    let mut left = Vec::new();
    reader_left.read_to_end(&mut left).expect("read");
    assert!(
        left.is_empty(),
        "seed --stdin left {} bytes unread: {}",
        left.len(),
        String::from_utf8_lossy(&output.stderr)
    );
}

// ---------------------------------------------------------------------------------------
// pacxfer.conf(5), key by key, where no other module proves the key does what it says.
// ---------------------------------------------------------------------------------------

/// One download of tiny with `[gateway]` lines `gateway_extra` and `[share]` lines
/// `share_extra`, against a gateway that serves tiny and a node API that answers every
/// question with an error; how often each was asked.
fn who_is_asked(name: &str, gateway_extra: &str, share_extra: &str) -> (usize, usize) {
    let mut w = World::new(name, false);
    let tiny = w.fx.tiny.clone();
    let gateway = FaultServer::start(std::fs::read(&tiny.path).expect("read tiny"));
    let api = Canned::start(|_| {
        let body = br#"{"Message":"no","Code":0,"Type":"error"}"#;
        Some(http_answer("500 Internal Server Error", body.len(), body))
    });
    w.configure(&gateway.base(Fault::Good), &["/ipfs/{cid}"], gateway_extra);
    use_api(&w, &api.url);
    share_lines(&w, share_extra);
    let out = w.out(&format!("{}.part", tiny.filename));
    let r = w.xfer(&w.url(&tiny.filename), &out);
    r.success();
    w.assert_same(&out, &tiny.path, &r);
    let mirror = w.mirror.hits_for(&tiny.filename).len();
    let served_by_gateway = gateway.hits(Fault::Good);
    assert_eq!(
        served_by_gateway + mirror,
        1,
        "{}",
        r.explain(&format!(
            "one source serves\n{}\n{}",
            gateway.log_text(),
            w.mirror.log_text()
        ))
    );
    (served_by_gateway, api.requests().len())
}

/// `[gateway] enabled = false`: neither the gateway nor the node's API is asked, the mirror
/// serves. The control: the same world with the key left out asks both, and the gateway
/// serves.
#[test]
fn gateway_enabled_false_asks_neither_the_gateway_nor_the_node() {
    assert_eq!(who_is_asked("promise-enabled-control", "", ""), (1, 1));
    assert_eq!(
        who_is_asked("promise-enabled-false", "enabled = false", ""),
        (0, 0)
    );
}

/// `[share] seeded = false`: the node's API is not asked for a seeded copy; the gateway still
/// is (the control, with the key left out, asks both).
#[test]
fn share_seeded_false_never_asks_the_node_for_a_seeded_copy() {
    assert_eq!(who_is_asked("promise-seeded-control", "", ""), (1, 1));
    assert_eq!(
        // `lan` asks the node for its LAN peers whatever `seeded` says: off too here.
        who_is_asked("promise-seeded-false", "", "seeded = false\nlan = false\n"),
        (1, 0)
    );
}

/// `[gateway] breaker = "0"` turns the breaker off: a gateway that accepts and never answers
/// is waited on by every call. The control: by default the second call skips it.
#[test]
fn gateway_breaker_0_asks_a_hung_gateway_on_every_call() {
    let mut w = World::new("promise-breaker-off", false);
    let tiny = w.fx.tiny.clone();
    for (extra, asked) in [("", [1, 1]), ("breaker = \"0\"", [1, 2])] {
        let gateway = Canned::start(|_| None);
        w.configure(
            &gateway.url,
            &["/ipfs/{cid}"],
            &format!("stall_timeout = \"1s\"\n{extra}"),
        );
        for (i, want) in asked.into_iter().enumerate() {
            let out = w.out(&format!("{}-{i}", extra.len()));
            let r = w.xfer(&w.url(&tiny.filename), &out);
            r.success().stderr_has("from mirror");
            w.assert_same(&out, &tiny.path, &r);
            assert_eq!(
                gateway.requests().len(),
                want,
                "{}",
                r.explain(&format!("{extra:?}, call {i}: {:?}", gateway.requests()))
            );
        }
    }
}

/// A server that redirects `/hop/N/...` to `/hop/N-1/...` and serves `file` at `/hop/0/...`.
fn redirect_chain(file: Vec<u8>) -> Canned {
    let base: Arc<Mutex<String>> = Arc::default();
    let at = base.clone();
    let server = Canned::start(move |line| {
        let path = line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let mut parts = path.trim_start_matches('/').splitn(3, '/');
        let (Some("hop"), Some(n), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
            return Some(http_answer("404 Not Found", 0, b""));
        };
        match n.parse::<u32>() {
            Ok(0) => Some(http_answer("200 OK", file.len(), &file)),
            Ok(n) => {
                let to = format!("{}/hop/{}/{rest}", at.lock().expect("base"), n - 1);
                Some(
                    format!(
                        "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\n\
                         Connection: close\r\n\r\n"
                    )
                    .into_bytes(),
                )
            }
            Err(_) => Some(http_answer("404 Not Found", 0, b"")),
        }
    });
    *base.lock().expect("base") = server.url.clone();
    server
}

/// `[mirror] max_redirects`: a chain of exactly that many redirects is followed, one more is
/// refused; 10 when the key is left out.
#[test]
fn mirror_max_redirects_bounds_the_redirects_followed() {
    let w = World::new("promise-max-redirects", false);
    let tiny = w.fx.tiny.clone();
    let chain = redirect_chain(std::fs::read(&tiny.path).expect("read tiny"));
    let fetch = |w: &World, hops: u32| {
        let out = w.out(&format!("{hops}-{}", chain.requests().len()));
        let r = w.xfer(&format!("{}/hop/{hops}/{}", chain.url, tiny.filename), &out);
        (r, out)
    };
    for (hops, ok) in [(10, true), (11, false)] {
        let (r, out) = fetch(&w, hops);
        if ok {
            w.assert_same(&out, &tiny.path, r.success());
        } else {
            r.failure();
            assert!(!out.exists(), "{}", r.explain("output left"));
        }
    }
    mirror_lines(&w, "max_redirects = 3\n");
    for (hops, ok) in [(3, true), (4, false)] {
        let (r, out) = fetch(&w, hops);
        if ok {
            w.assert_same(&out, &tiny.path, r.success());
        } else {
            r.failure().stderr_has("redirect");
        }
    }
}

/// `cache_dir = ""` keeps nothing: no index anywhere, not in `$HOME/.cache` or
/// `$XDG_CACHE_HOME` either; `PACXFER_CACHE_DIR` comes before the config, and `--cache-dir`
/// before both.
#[test]
fn cache_dir_empty_keeps_nothing_and_the_option_and_environment_come_first() {
    let w = World::new("promise-cache-dir", false);
    top_level(&w, "cache_dir", "\"\"");
    let (home, xdg, env_dir, opt_dir) = (
        w.dir.join("home"),
        w.dir.join("xdg"),
        w.dir.join("from-env"),
        w.dir.join("from-option"),
    );
    for d in [&home, &xdg, &env_dir, &opt_dir] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    let listing = |d: &Path| -> Vec<String> {
        let mut names: Vec<String> = walk(d)
            .into_iter()
            .map(|p| p.strip_prefix(d).expect("below").display().to_string())
            .collect();
        names.sort();
        names
    };
    let lookup_with = |env: Option<&Path>, opt: Option<&Path>| {
        let mut cmd = pacxfer();
        cmd.env_remove("PACXFER_CACHE_DIR")
            .env("HOME", &home)
            .env("XDG_CACHE_HOME", &xdg);
        if let Some(e) = env {
            cmd.env("PACXFER_CACHE_DIR", e);
        }
        cmd.arg("--config").arg(&w.config);
        if let Some(o) = opt {
            cmd.arg("--cache-dir").arg(o);
        }
        let r = run(cmd.args(["-v", "lookup", &w.fx.tiny.filename]));
        r.success().stdout_has("repo:      testrepo");
        r
    };
    let indexed = |d: &Path| listing(d).iter().any(|n| n.ends_with(".idx"));

    let r = lookup_with(None, None);
    // Nowhere else either (the machine's own places are not the test's to list): the database
    // was searched, not indexed.
    r.stderr_has("no index kept; searched");
    for d in [&home, &xdg, &w.cache_dir()] {
        assert_eq!(
            listing(d),
            Vec::<String>::new(),
            "{}",
            r.explain(&d.display().to_string())
        );
    }
    let r = lookup_with(Some(&env_dir), None);
    assert!(
        indexed(&env_dir),
        "{}",
        r.explain("no index in PACXFER_CACHE_DIR")
    );
    std::fs::remove_dir_all(&env_dir).expect("rm");
    std::fs::create_dir_all(&env_dir).expect("mkdir");
    let r = lookup_with(Some(&env_dir), Some(&opt_dir));
    assert!(
        indexed(&opt_dir),
        "{}",
        r.explain("no index in --cache-dir")
    );
    assert_eq!(
        listing(&env_dir),
        Vec::<String>::new(),
        "{}",
        r.explain("env used")
    );
    for d in [&home, &xdg] {
        assert_eq!(
            listing(d),
            Vec::<String>::new(),
            "{}",
            r.explain(&d.display().to_string())
        );
    }
}

/// Every file below `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// `dbpath`: the config's, unless `PACXFER_DBPATH` names another, unless `--dbpath` does.
/// Here the config's holds no database, so only the one that comes first finds tiny.
#[test]
fn dbpath_from_the_command_line_or_environment_comes_before_the_config() {
    let w = World::new("promise-dbpath", false);
    let empty = w.dir.join("empty-db");
    std::fs::create_dir_all(empty.join("sync")).expect("mkdir");
    top_level(&w, "dbpath", &format!("{:?}", empty.display().to_string()));
    let lookup_with = |env: Option<&Path>, opt: Option<&Path>| {
        let mut cmd = pacxfer();
        cmd.env_remove("PACXFER_CACHE_DIR");
        if let Some(e) = env {
            cmd.env("PACXFER_DBPATH", e);
        }
        cmd.arg("--config").arg(&w.config);
        if let Some(o) = opt {
            cmd.arg("--dbpath").arg(o);
        }
        run(cmd.args(["lookup", &w.fx.tiny.filename]))
    };
    lookup_with(None, None).failure();
    lookup_with(Some(&w.dbpath), None)
        .success()
        .stdout_has("repo:      testrepo");
    lookup_with(Some(&empty), Some(&w.dbpath))
        .success()
        .stdout_has("repo:      testrepo");
    lookup_with(Some(&w.dbpath), Some(&empty)).failure();
}

/// `[share] after_fetch_timeout` bounds the seeding after a download: a node API that accepts
/// and never answers does not hold the call (it would for the API client's own two minutes),
/// and the download has succeeded all the same. The wait here is only a bound to fail on.
#[test]
fn share_after_fetch_timeout_bounds_seeding_on_a_hung_node() {
    let w = World::new("promise-after-fetch-timeout", false);
    let big = w.fx.big.clone();
    let api = Canned::start(|_| None);
    use_api(&w, &api.url);
    // No seeded-copy question first: the seeding is the only thing the node is asked.
    share_lines(
        &w,
        "seeded = false\nlan = false\nafter_fetch = true\nafter_fetch_timeout = \"1s\"\n",
    );
    let out = w.out(&format!("{}.part", big.filename));
    let mut cmd = pacxfer();
    cmd.env_remove("PACXFER_CACHE_DIR")
        .arg("--config")
        .arg(&w.config)
        .arg(w.url(&big.filename))
        .arg(&out);
    let (r, _) = run_within(&mut cmd, Duration::from_secs(60));
    assert!(
        r.code().is_some(),
        "{}",
        r.explain("the seeding held the call past any after_fetch_timeout")
    );
    r.success().stderr_has("from mirror");
    w.assert_same(&out, &big.path, &r);
    assert_eq!(api.requests().len(), 1, "{:?}", api.requests());
    assert!(
        api.requests()[0].contains("/api/v0/"),
        "{:?}",
        api.requests()
    );
}
