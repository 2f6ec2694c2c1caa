//! Every gateway fault against every mirror fault, from an empty output and from resumed
//! `.part` files, with the real pacxfer binary and the real sync database: pacxfer either exits
//! 0 with the right bytes from the first source that can deliver them, or exits non-zero with
//! one error line, leaving no more than a prefix; and every run ends on its own (a source that
//! never answers is given up on, never waited for). Which sources each run asked is read from
//! the fault server's log. The matrix and its counts are printed with the test output.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::harness::faultd::{Fault, FaultServer, Hit};
use crate::harness::fixtures::{self, REPO};
use crate::harness::util::{pacxfer, run_within, show, Run, TestDir};

const GATEWAY_CONNECT: Duration = Duration::from_millis(500);
const GATEWAY_STALL: Duration = Duration::from_secs(1);
const MIRROR_CONNECT: Duration = Duration::from_secs(1);
const MIRROR_STALL: Duration = Duration::from_secs(1);
/// A run still going after this long is killed and counted as broken: only so that a pacxfer
/// that waits for ever on a source that never answers fails the test instead of hanging it.
/// The fault server holds such connections open longer than this (`faultd::HOLD`), so only
/// pacxfer's own timeouts can end the run in time. No verdict depends on how long a run took.
const HUNG: Duration = Duration::from_secs(120);
/// Cases run at once: most of a case's time is spent waiting on a stalled or dripping server.
const PARALLEL: usize = 16;

/// What OUTPUT holds before pacxfer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// No file.
    None,
    /// The first half of the right bytes, as a stalled earlier call leaves it.
    RightHalf,
    /// Half the file's length of wrong bytes.
    WrongHalf,
}

impl Part {
    const ALL: [Part; 3] = [Part::None, Part::RightHalf, Part::WrongHalf];

    fn name(self) -> &'static str {
        match self {
            Part::None => "no .part",
            Part::RightHalf => ".part with the right first half",
            Part::WrongHalf => ".part with a wrong first half",
        }
    }

    fn bytes(self, file: &[u8]) -> Option<Vec<u8>> {
        let half = &file[..file.len() / 2];
        match self {
            Part::None => None,
            Part::RightHalf => Some(half.to_vec()),
            Part::WrongHalf => Some(half.iter().map(|b| b ^ 0xa5).collect()),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Case {
    gateway: Fault,
    mirror: Fault,
    part: Part,
    /// Whether the file is in the sync database (else the gateway is never asked).
    listed: bool,
}

impl Case {
    fn describe(&self) -> String {
        format!(
            "gateway {} x mirror {}, {}, {}",
            self.gateway.name(),
            self.mirror.name(),
            self.part.name(),
            if self.listed { "listed" } else { "unlisted" }
        )
    }

    /// How long the faults can make this case wait (connect and stall timeouts, a drip), for
    /// running the slow cases first; never a limit.
    fn expected_wait(&self) -> Duration {
        let gateway = if self.listed {
            GATEWAY_CONNECT + self.gateway.wait(GATEWAY_STALL)
        } else {
            Duration::ZERO
        };
        gateway + MIRROR_CONNECT + self.mirror.wait(MIRROR_STALL)
    }
}

/// How a case ended, when it kept the invariant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ipfs,
    Mirror,
    /// A file no database lists, taken as the mirror sent it: another file that only pacman's
    /// signature check can refuse.
    Unverifiable,
    Failed,
}

impl Outcome {
    fn mark(self) -> char {
        match self {
            Outcome::Ipfs => 'I',
            Outcome::Mirror => 'M',
            Outcome::Unverifiable => 'u',
            Outcome::Failed => '.',
        }
    }
}

struct Done {
    case: Case,
    took: Duration,
    /// pacxfer's error output.
    stderr: String,
    result: Result<Outcome, String>,
}

/// The fixture the matrix serves, and the directory it runs in.
struct Bench {
    dir: TestDir,
    file: Vec<u8>,
    filename: String,
    server: FaultServer,
}

impl Bench {
    fn new(name: &str) -> Bench {
        let fx = fixtures::get();
        let dir = TestDir::new(name);
        std::fs::create_dir_all(dir.join("db/sync")).expect("mkdir sync");
        std::fs::copy(fx.db(), dir.join(format!("db/sync/{REPO}.db"))).expect("copy db");
        // No repository lists the fault server's URLs as its Server: each run tries the URL it
        // was given and no other.
        dir.write("pacman.conf", "[options]\nArchitecture = x86_64\n");
        let file = std::fs::read(&fx.other.path).expect("read package");
        let server = FaultServer::start(file.clone());
        Bench {
            dir,
            file,
            filename: fx.other.filename.clone(),
            server,
        }
    }

    /// The config of one case: its gateway below the case's own path (`/<fault>/c<index>`),
    /// its own cache directory (a kept partial download or a breaker is never another case's),
    /// a pacman.conf of the bench's own, never the machine's, and a node API on a port nothing
    /// listens on, never the machine's own node.
    fn config(&self, index: usize, gateway: Fault) -> PathBuf {
        let name = format!("conf/{index}.conf");
        let text = format!(
            "dbpath = {:?}\npacman_conf = {:?}\ncache_dir = {:?}\n\n[gateway]\nurl = \"{}/c{index}\"\n\
             paths = [\"/ipfs/{{cid}}\"]\nconnect_timeout = \"{}ms\"\nstall_timeout = \"{}ms\"\n\n\
             [mirror]\nconnect_timeout = \"{}ms\"\nstall_timeout = \"{}ms\"\nmax_redirects = 5\n\n\
             [share]\napi = \"http://127.0.0.1:{}\"\n",
            self.dir.join("db").display().to_string(),
            self.dir.join("pacman.conf").display().to_string(),
            self.dir.join(format!("cache/{index}")).display().to_string(),
            self.server.base(gateway),
            GATEWAY_CONNECT.as_millis(),
            GATEWAY_STALL.as_millis(),
            MIRROR_CONNECT.as_millis(),
            MIRROR_STALL.as_millis(),
            crate::harness::util::dead_port(),
        );
        self.dir.write(&name, text)
    }

    fn run(&self, index: usize, case: Case) -> Done {
        let out = self.dir.join(format!("out/{index}.part"));
        let _ = std::fs::remove_file(&out);
        std::fs::create_dir_all(self.dir.join("out")).expect("mkdir out");
        let before = case.part.bytes(&self.file);
        if let Some(b) = &before {
            std::fs::write(&out, b).expect("write .part");
        }
        let name = if case.listed {
            self.filename.clone()
        } else {
            "unlisted-1.0-1-any.pkg.tar.zst".to_string()
        };
        let url = format!(
            "{}/c{index}/{REPO}/os/x86_64/{name}",
            self.server.base(case.mirror)
        );
        let mut cmd = pacxfer();
        cmd.env_remove("PACXFER_CACHE_DIR")
            .arg("--config")
            .arg(self.config(index, case.gateway))
            .arg(&url)
            .arg(&out);
        let (run, took) = run_within(&mut cmd, HUNG);
        // This case's requests: its paths carry `/c<index>/`.
        let tag = format!("/c{index}/");
        let asked: Vec<Hit> = self
            .server
            .log()
            .into_iter()
            .filter(|h| h.path.contains(&tag))
            .collect();
        let result = judge(&case, &run, &out, &self.file, before.as_deref(), &asked)
            .map_err(|why| run.explain(&format!("{}: {why}", case.describe())));
        Done {
            case,
            took,
            stderr: run.stderr(),
            result,
        }
    }

    /// Runs every case, `PARALLEL` at a time.
    fn run_all(&self, cases: &[Case]) -> Vec<Done> {
        let next = AtomicUsize::new(0);
        let done = Mutex::new(Vec::with_capacity(cases.len()));
        std::thread::scope(|s| {
            for _ in 0..PARALLEL {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(case) = cases.get(i) else { break };
                    let d = self.run(i, *case);
                    done.lock().expect("results lock").push(d);
                });
            }
        });
        done.into_inner().expect("results lock")
    }
}

/// The invariant for one case, and the outcome the faults call for.
fn judge(
    case: &Case,
    run: &Run,
    out: &Path,
    file: &[u8],
    before: Option<&[u8]>,
    asked: &[Hit],
) -> Result<Outcome, String> {
    if run.output.status.signal() == Some(9) {
        return Err(format!(
            "still running after {}s, killed: a source that never answers held it",
            HUNG.as_secs()
        ));
    }
    if run.stderr().contains("panicked") {
        return Err("panicked".into());
    }
    let log = || {
        asked
            .iter()
            .map(|h| format!("{} (range from {:?})", h.path, h.from))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let gateway_asked = asked.iter().any(|h| h.path.contains("/ipfs/"));
    let mirror_asked = asked.iter().any(|h| h.path.contains(&format!("/{REPO}/")));
    if !case.listed && gateway_asked {
        return Err(format!(
            "the gateway was asked for a file no database lists: {}",
            log()
        ));
    }
    // IPFS first: a listed file is asked of a gateway that listens before the mirror.
    if case.listed && case.gateway != Fault::Down && !gateway_asked {
        return Err(format!("the gateway was never asked: {}", log()));
    }
    let got = std::fs::read(out).ok();
    let success = run.output.status.success();
    let outcome = if success {
        let got = got.as_deref().unwrap_or_default();
        if got == file {
            if run.stderr().contains("from ipfs") {
                if mirror_asked {
                    return Err(format!(
                        "said from ipfs, but the mirror was asked: {}",
                        log()
                    ));
                }
                Outcome::Ipfs
            } else if run.stderr().contains("from mirror") {
                if !mirror_asked {
                    return Err(format!(
                        "said from mirror, but the mirror was never asked: {}",
                        log()
                    ));
                }
                Outcome::Mirror
            } else {
                return Err("exit 0 without saying where from".into());
            }
        } else if !case.listed && case.mirror.serves_another_file() {
            Outcome::Unverifiable
        } else {
            return Err(format!("exit 0 with {} wrong bytes in OUTPUT", got.len()));
        }
    } else {
        if run.stderr().lines().count() != 1 || !run.stderr().starts_with("pacxfer: error: ") {
            return Err("a failure must be one error line".into());
        }
        if let Some(got) = &got {
            if got.len() >= file.len() {
                return Err(format!(
                    "failed, leaving {} bytes: pacman could take it for the whole file",
                    got.len()
                ));
            }
            // A wrong `.part` from an earlier call cannot be told wrong until its end: it may
            // stay, with right bytes after it.
            let kept_old_start =
                case.part == Part::WrongHalf && before.is_some_and(|b| got.starts_with(b));
            if !(file.starts_with(got) || kept_old_start) {
                return Err(format!(
                    "failed, leaving {} bytes that are not a prefix of the file",
                    got.len()
                ));
            }
        }
        Outcome::Failed
    };
    // Which source must serve: the first one that can deliver.
    let expected = if case.listed && case.gateway.delivers() {
        Outcome::Ipfs
    } else if case.mirror.delivers() {
        Outcome::Mirror
    } else if !case.listed && case.mirror.serves_another_file() {
        // Either taken as it is, or refused for what HTTP itself shows.
        return Ok(outcome);
    } else {
        Outcome::Failed
    };
    if outcome != expected {
        return Err(format!("ended {outcome:?}, expected {expected:?}"));
    }
    Ok(outcome)
}

/// The matrix as a table: a row per gateway fault, a column per mirror fault.
fn table(done: &[Done], part: Part, listed: bool) -> String {
    let faults = Fault::ALL;
    let mut s = format!(
        "\n{} file, {} (I ipfs, M mirror, u unverifiable taken, . failed cleanly, ! broke the invariant)\n",
        if listed { "listed" } else { "unlisted" },
        part.name()
    );
    s.push_str(&format!("{:>16}  ", "gateway \\ mirror"));
    for (j, _) in faults.iter().enumerate() {
        s.push_str(&format!("{:>2}", j % 100));
    }
    s.push_str("   max s\n");
    let rows: Vec<Fault> = if listed {
        faults.to_vec()
    } else {
        vec![Fault::Down]
    };
    for g in rows {
        s.push_str(&format!(
            "{:>16}  ",
            if listed {
                g.name()
            } else {
                "(not asked)".into()
            }
        ));
        let mut worst = Duration::ZERO;
        for m in faults {
            let cell = done.iter().find(|d| {
                d.case.gateway == g
                    && d.case.mirror == *m
                    && d.case.part == part
                    && d.case.listed == listed
            });
            let mark = match cell {
                Some(d) => {
                    worst = worst.max(d.took);
                    match &d.result {
                        Ok(o) => o.mark(),
                        Err(_) => '!',
                    }
                }
                None => ' ',
            };
            s.push_str(&format!("{mark:>2}"));
        }
        s.push_str(&format!("  {:>6.1}\n", worst.as_secs_f64()));
    }
    s.push_str("columns: ");
    let names: Vec<String> = faults
        .iter()
        .enumerate()
        .map(|(j, f)| format!("{j} {}", f.name()))
        .collect();
    s.push_str(&names.join(", "));
    s.push('\n');
    s
}

fn summary(done: &[Done]) -> String {
    let count = |o: Outcome| {
        done.iter()
            .filter(|d| d.result.as_ref().ok() == Some(&o))
            .count()
    };
    let broken = done.iter().filter(|d| d.result.is_err()).count();
    let slowest = done.iter().map(|d| d.took).max().unwrap_or_default();
    format!(
        "fault matrix: {} cases ({} faults x {} faults x {} .part states, and {} unlisted): \
         {} from ipfs, {} from mirror, {} unverifiable taken, {} failed cleanly, {} broke the \
         invariant; slowest case {:.1}s\n",
        done.len(),
        Fault::ALL.len(),
        Fault::ALL.len(),
        Part::ALL.len(),
        done.iter().filter(|d| !d.case.listed).count(),
        count(Outcome::Ipfs),
        count(Outcome::Mirror),
        count(Outcome::Unverifiable),
        count(Outcome::Failed),
        broken,
        slowest.as_secs_f64()
    )
}

/// Every gateway fault meets every mirror fault from each `.part` state (and a file no
/// database lists meets every mirror fault): each run keeps the invariant (exit 0 only with
/// OUTPUT byte-identical to the file; otherwise one error line and OUTPUT absent or shorter,
/// holding a prefix), ends with the outcome the faults call for (the first source that can
/// deliver serves, as the fault server's log confirms), and ends on its own.
#[test]
fn every_gateway_fault_against_every_mirror_fault() {
    let bench = Bench::new("fault-matrix");
    let mut cases = Vec::new();
    for part in Part::ALL {
        for &gateway in Fault::ALL {
            for &mirror in Fault::ALL {
                cases.push(Case {
                    gateway,
                    mirror,
                    part,
                    listed: true,
                });
            }
        }
        for &mirror in Fault::ALL {
            cases.push(Case {
                gateway: Fault::Down,
                mirror,
                part,
                listed: false,
            });
        }
    }
    // The slow cases first, so the parallel runs end together.
    cases.sort_by_key(|c| std::cmp::Reverse(c.expected_wait()));
    let started = std::time::Instant::now();
    let done = bench.run_all(&cases);
    let mut report = String::new();
    for part in Part::ALL {
        report.push_str(&table(&done, part, true));
    }
    for part in Part::ALL {
        report.push_str(&table(&done, part, false));
    }
    report.push_str(&summary(&done));
    report.push_str(&format!(
        "fault matrix took {:.1}s with {PARALLEL} cases at a time\n",
        started.elapsed().as_secs_f64()
    ));
    show(&report);
    let broken: Vec<&String> = done
        .iter()
        .filter_map(|d| d.result.as_ref().err())
        .collect();
    assert!(
        broken.is_empty(),
        "{} cases broke the invariant; the first ones:\n{}",
        broken.len(),
        broken
            .iter()
            .take(5)
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// One case on its own, which must end as `expected`; the bench, whose server log tells what
/// was asked.
fn single(name: &str, case: Case, expected: Outcome) -> (Bench, Done) {
    let bench = Bench::new(name);
    let done = bench.run(0, case);
    match &done.result {
        Ok(o) => assert_eq!(*o, expected, "{}", case.describe()),
        Err(why) => panic!("{why}"),
    }
    (bench, done)
}

/// A `.db.part` from an earlier call, then a newer database on the mirror: resuming would
/// join the old head to the new tail and exit 0. The `.part` is emptied and the mirror asked
/// for the whole file, with no `Range`.
#[test]
fn regression_an_unlisted_part_is_not_stitched_to_another_answer() {
    let (bench, _) = single(
        "unlisted-part",
        Case {
            gateway: Fault::Down,
            mirror: Fault::Good,
            part: Part::WrongHalf,
            listed: false,
        },
        Outcome::Mirror,
    );
    let log = bench.server.log();
    assert!(
        !log.is_empty() && log.iter().all(|h| h.from.is_none()),
        "the mirror was asked to resume: {}",
        bench.server.log_text()
    );
}

/// `200 OK` with `Content-Type: text/html` is refused for a file no database lists (a captive
/// portal's page is not a database), while the same file served as a file is taken.
#[test]
fn regression_an_html_page_is_not_taken_for_an_unlisted_file() {
    let (_, done) = single(
        "unlisted-html",
        Case {
            gateway: Fault::Down,
            mirror: Fault::Html200,
            part: Part::None,
            listed: false,
        },
        Outcome::Failed,
    );
    let (_, control) = single(
        "unlisted-html-control",
        Case {
            gateway: Fault::Down,
            mirror: Fault::Good,
            part: Part::None,
            listed: false,
        },
        Outcome::Mirror,
    );
    assert!(done.stderr.contains("HTML page"), "{}", done.stderr);
    assert!(control.stderr.contains("from mirror"), "{}", control.stderr);
}
