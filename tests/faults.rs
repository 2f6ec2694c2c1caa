//! Every gateway fault against every mirror fault, from an empty output and from resumed
//! `.part` files, with the real pacxfer binary and the real sync database: pacxfer either exits
//! 0 with the right bytes, or exits non-zero leaving no more than a prefix, within a bounded
//! time. The matrix and its counts are printed with the test output.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::faultd::{Fault, FaultServer};
use crate::fixtures::{self, REPO};
use crate::util::{pacxfer, run_within, show, Run, TestDir};

const GATEWAY_CONNECT: Duration = Duration::from_millis(500);
const GATEWAY_STALL: Duration = Duration::from_secs(1);
const MIRROR_CONNECT: Duration = Duration::from_secs(1);
const MIRROR_STALL: Duration = Duration::from_secs(1);
/// Process start, reading the database, and a loaded 2-core machine.
const SLACK: Duration = Duration::from_secs(10);
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

    /// The longest the case may take: per source it may be made to wait, its connect and
    /// stall timeouts, each attempt (a resumed whole found wrong is fetched once more).
    fn bound(&self) -> Duration {
        let gateway = if self.listed {
            (GATEWAY_CONNECT + self.gateway.wait(GATEWAY_STALL)) * 2
        } else {
            Duration::ZERO
        };
        gateway + (MIRROR_CONNECT + self.mirror.wait(MIRROR_STALL)) * 2 + SLACK
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
        let file = std::fs::read(&fx.other.path).expect("read package");
        let server = FaultServer::start(file.clone());
        Bench {
            dir,
            file,
            filename: fx.other.filename.clone(),
            server,
        }
    }

    /// The config for one gateway fault, written once.
    fn config(&self, gateway: Fault) -> PathBuf {
        let path = self.dir.join(format!("conf/{}.conf", gateway.name()));
        if !path.exists() {
            let text = format!(
                "dbpath = {:?}\ncache_dir = {:?}\n\n[gateway]\nurl = {:?}\npaths = [\"/ipfs/{{cid}}\"]\n\
                 connect_timeout = \"{}ms\"\nstall_timeout = \"{}ms\"\n\n\
                 [mirror]\nconnect_timeout = \"{}ms\"\nstall_timeout = \"{}ms\"\nmax_redirects = 5\n",
                self.dir.join("db").display().to_string(),
                self.dir.join("cache").display().to_string(),
                self.server.base(gateway),
                GATEWAY_CONNECT.as_millis(),
                GATEWAY_STALL.as_millis(),
                MIRROR_CONNECT.as_millis(),
                MIRROR_STALL.as_millis(),
            );
            self.dir
                .write(&format!("conf/{}.conf", gateway.name()), text);
        }
        path
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
        let url = format!("{}/{REPO}/os/x86_64/{name}", self.server.base(case.mirror));
        let mut cmd = pacxfer();
        // Each case is a call of its own: what one leaves in the cache (a kept partial
        // download, a breaker) is never another's, whatever runs alongside it.
        cmd.env("PACXFER_CACHE_DIR", self.dir.join(format!("cache/{index}")))
            .arg("--config")
            .arg(self.config(case.gateway))
            .arg(&url)
            .arg(&out);
        let bound = case.bound();
        let (run, took) = run_within(&mut cmd, bound + Duration::from_secs(20));
        let result = judge(&case, &run, &out, &self.file, before.as_deref()).and_then(|o| {
            if took > bound {
                Err(format!(
                    "took {:.1}s, more than the {:.1}s bound",
                    took.as_secs_f64(),
                    bound.as_secs_f64()
                ))
            } else {
                Ok(o)
            }
        });
        let result = result.map_err(|why| run.explain(&format!("{}: {why}", case.describe())));
        Done { case, took, result }
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
) -> Result<Outcome, String> {
    if run.stderr().contains("panicked") {
        return Err("panicked".into());
    }
    let got = std::fs::read(out).ok();
    let success = run.output.status.success();
    let outcome = if success {
        let got = got.as_deref().unwrap_or_default();
        if got == file {
            if run.stderr().contains("from ipfs") {
                Outcome::Ipfs
            } else if run.stderr().contains("from mirror") {
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
    cases.sort_by_key(|c| std::cmp::Reverse(c.bound()));
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

/// One case on its own, which must end as `expected`.
fn single(name: &str, case: Case, expected: Outcome) {
    let bench = Bench::new(name);
    let done = bench.run(0, case);
    match done.result {
        Ok(o) => assert_eq!(o, expected, "{}", case.describe()),
        Err(why) => panic!("{why}"),
    }
}

#[test]
fn regression_an_unlisted_part_is_not_stitched_to_another_answer() {
    // A `.db.part` from an earlier call, then a newer database on the mirror: resuming would
    // have joined the old head to the new tail and exited 0.
    single(
        "unlisted-part",
        Case {
            gateway: Fault::Down,
            mirror: Fault::Good,
            part: Part::WrongHalf,
            listed: false,
        },
        Outcome::Mirror,
    );
}

#[test]
fn regression_an_html_page_is_not_taken_for_an_unlisted_file() {
    single(
        "unlisted-html",
        Case {
            gateway: Fault::Down,
            mirror: Fault::Html200,
            part: Part::None,
            listed: false,
        },
        Outcome::Failed,
    );
}
