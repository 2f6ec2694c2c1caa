//! The batch: each file to fetch, planned like a single call and run in a bounded pool of
//! threads into the first writable CacheDir through `<file>.part`, renamed only once verified;
//! a package's `.sig` follows it. Once the disk is full no further file is started.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::space::give_back;
use super::Job;
use crate::config::Config;
use crate::transfer::download::{self, Context, Delivered, Undelivered};
use crate::transfer::plan::Plan;
use crate::ui::progress::{Batch, Progress};

/// What became of one job.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub filename: String,
    pub result: Result<Fetched, String>,
    /// The file or its `.sig` could not be written for lack of space (or quota), or was not
    /// started because another file of the batch had run out of it.
    pub no_space: bool,
}

/// A file that arrived.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// `this node`, `IPFS network`, `mirror`, ...; `None` when it was there already and only
    /// its signature was fetched.
    pub source: Option<&'static str>,
    pub bytes: u64,
    /// What happened to its `.sig`, when it has one to fetch: `Err` when it could not be had.
    pub sig: Option<Result<(), String>>,
}

/// Where a delivery came from, in words for the summary.
pub fn source_kind(plan: &Plan, done: &Delivered) -> &'static str {
    match crate::transfer::log::origin(plan, done) {
        "node" => "this node",
        "lan" => "LAN peers",
        "network" => "the IPFS network",
        "view" => "a cache view",
        "db-signature" => "the database",
        "partial" => "an earlier try",
        _ => "mirror",
    }
}

/// `dest` through `dest.part` ([`download::into_file`]), with a failure for lack of space
/// told apart: it marks the batch `full`, and once the batch is full, a file that fails gives
/// back what this run wrote of it ([`give_back`]) while its lock is still held. Otherwise what
/// arrived stays in the `.part` for the next try.
fn into_cache(
    ctx: &Context<'_>,
    plan: &Plan,
    dest: &Path,
    progress: &Progress,
    full: &AtomicBool,
) -> Result<Delivered, Undelivered> {
    let result = download::into_file(ctx, plan, dest, progress, |out, no_space| {
        if no_space {
            full.store(true, Ordering::SeqCst);
        }
        if full.load(Ordering::SeqCst) {
            Some(give_back(out))
        } else {
            download::keep_what_arrived(out, no_space)
        }
    });
    if let Err(Undelivered { no_space: true, .. }) = &result {
        full.store(true, Ordering::SeqCst);
    }
    result
}

/// Runs `jobs` with `threads` at a time; each ends with `after` (seeding) when it arrived.
/// Once a file could not be written for lack of space, no further file is started: each
/// would fail the same way after taking what space is left.
pub fn run_batch(
    config: &Config,
    places: &crate::cache::Places,
    jobs: &[Job],
    threads: usize,
    batch: &Batch,
    after: &(dyn Fn(&Job, &Path) + Sync),
) -> Vec<Outcome> {
    let next = AtomicUsize::new(0);
    let done = AtomicU64::new(0);
    let full = AtomicBool::new(false);
    let outcomes = Mutex::new(Vec::new());
    let files = jobs.len() as u64;
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, jobs.len().max(1)) {
            scope.spawn(|| {
                // One context per worker: its agents keep their connections from one file
                // to the next.
                let mut ctx = Context::new(config);
                ctx.lan_places = Some(places.clone());
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(job) = jobs.get(i) else {
                        return;
                    };
                    let (result, no_space) = if full.load(Ordering::SeqCst) {
                        let why = format!("not started: {} is out of space", job.dir.display());
                        (Err(why), true)
                    } else {
                        match fetch_one(&ctx, places, job, batch, after, &full) {
                            Ok((fetched, sig_no_space)) => (Ok(fetched), sig_no_space),
                            Err(missed) => {
                                batch.line(&format!(
                                    "{}: not prefetched: {}",
                                    job.filename, missed.why
                                ));
                                (Err(missed.why), missed.no_space)
                            }
                        }
                    };
                    let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                    batch.file_over(result.as_ref().map(|f| f.bytes).unwrap_or(0), n, files);
                    if let Ok(mut all) = outcomes.lock() {
                        all.push(Outcome {
                            filename: job.filename.clone(),
                            result,
                            no_space,
                        });
                    }
                }
            });
        }
    });
    batch.finish();
    outcomes.into_inner().unwrap_or_default()
}

/// One job: the package (unless only its `.sig` is missing), then its `.sig`. With the
/// package, whether the `.sig` failed for lack of space.
fn fetch_one(
    ctx: &Context<'_>,
    places: &crate::cache::Places,
    job: &Job,
    batch: &Batch,
    after: &(dyn Fn(&Job, &Path) + Sync),
    full: &AtomicBool,
) -> Result<(Fetched, bool), Undelivered> {
    // A bar only for a package that moves; a signature alone goes quietly.
    let progress = match job.plan {
        Some(_) => batch.file(&job.filename),
        None => Progress::plain(crate::ui::progress::Verbosity::Quiet),
    };
    let dest = job.dir.join(&job.filename);
    let started = std::time::Instant::now();
    let (source, bytes) = match &job.plan {
        Some(plan) => {
            let d = into_cache(ctx, plan, &dest, &progress, full)?;
            let source = source_kind(plan, &d);
            progress.done(&job.filename, source, &d.url, d.bytes, d.resumed);
            crate::transfer::log::record(
                places,
                &crate::transfer::log::Record::new(&job.filename, plan, &d, started.elapsed()),
            );
            after(job, &dest);
            (Some(source), d.bytes)
        }
        None => (None, 0),
    };
    let mut sig_no_space = false;
    let sig = job.sig.as_ref().map(|plan| {
        let name = format!("{}.sig", job.filename);
        let quiet = Progress::plain(crate::ui::progress::Verbosity::Quiet);
        into_cache(ctx, plan, &job.dir.join(&name), &quiet, full)
            .map(|_| ())
            .map_err(|m| {
                sig_no_space = m.no_space;
                m.why
            })
    });
    Ok((Fetched { source, bytes, sig }, sig_no_space))
}
