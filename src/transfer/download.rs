//! The download loop: walk the planned sources in order until one delivers bytes that match
//! the database, writing into the output file as they stream.
//!
//! This is the one place that decides what a failure costs:
//! - a source that sends nothing (412, 404, refused, timeout) is passed over;
//! - a source that stops early (a stall, a reset, a short body) leaves its bytes for the next
//!   source to resume with `Range`;
//! - a source that sends too much or wrong bytes has its bytes thrown away;
//! - a resumed file whose whole turns out wrong is fetched once more from byte 0;
//! - a file no database lists is never resumed: its bytes cannot be checked, so two answers
//!   (an old `.part` and a newer database on the mirror, or two mirrors out of step) are never
//!   stitched together, and an HTML page (a captive portal, an error page) is refused;
//! - a dead gateway is asked once, not once per template;
//! - writing the output failing (disk full) ends everything at once.
//!
//! Success is only ever returned with the output holding verified bytes (or, for a file no
//! database lists, a complete body).

use std::cell::OnceCell;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::http::client::{self as http, HttpError, RangeError, Stream};
use crate::makepkg::sums::Sums;
use crate::sources::error::SourceError;
use crate::sources::gateway;
use crate::sources::mirror;
use crate::transfer::output::Output;
use crate::transfer::plan::{Plan, Source};
use crate::transfer::verify::{self, Expected, PumpError, Verdict};
use crate::ui::progress::{self, Progress};

/// Why one source did not deliver: what the source itself said, or what its bytes proved.
#[derive(Debug)]
pub enum Failure {
    /// What the source said: no connection, a status that carries no file, a bad range
    /// answer, silence, no budget left (`sources::error`).
    Source(SourceError),
    /// Reading the body failed (reset, broken encoding, body shorter than announced).
    Read(io::Error),
    /// The body ended before the file did.
    Short { got: u64, want: u64 },
    /// The source sent, or announced, more bytes than the database lists.
    TooLarge { limit: u64 },
    /// The source sent more bytes than it announced itself (for a file no database lists).
    LongerThanAnnounced { announced: u64 },
    /// A database or signature (which no database lists) larger than pacman itself accepts.
    OverCap { cap: u64 },
    /// The bytes do not match the database's SHA-256.
    Mismatch,
    /// A build source whose checksums are not the PKGBUILD's.
    SumMismatch,
    /// An HTML page where a file no database lists was asked for.
    Html,
    /// The source's whole file has another size than the database lists.
    WrongSize { got: u64, want: u64 },
    /// Writing the output failed: nothing else can succeed.
    Write(io::Error),
    /// Anything else, said in words.
    Other(String),
}

impl From<SourceError> for Failure {
    fn from(e: SourceError) -> Failure {
        Failure::Source(e)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Source(e) => write!(f, "{e}"),
            Failure::Read(e) => write!(f, "transfer broke off: {e}"),
            Failure::Short { got, want } => {
                write!(f, "body ended early at {got} of {want} bytes")
            }
            Failure::TooLarge { limit } => {
                write!(f, "sent more than the {limit} bytes the database lists")
            }
            Failure::OverCap { cap } => write!(
                f,
                "sent more than {cap} bytes, more than pacman accepts for a file of this kind"
            ),
            Failure::LongerThanAnnounced { announced } => {
                write!(
                    f,
                    "sent more than the {announced} bytes the server announced"
                )
            }
            Failure::Mismatch => write!(f, "wrong bytes: SHA-256 does not match the database"),
            Failure::SumMismatch => write!(f, "wrong bytes: they do not match the PKGBUILD's sums"),
            Failure::Html => write!(
                f,
                "an HTML page instead of the file (a captive portal or an error page?)"
            ),
            Failure::WrongSize { got, want } => write!(
                f,
                "wrong bytes: its file is {got} bytes, the database lists {want}"
            ),
            Failure::Write(e) => write!(f, "cannot write output: {e}"),
            Failure::Other(why) => write!(f, "{why}"),
        }
    }
}

impl Failure {
    /// What the source said, when the failure is that.
    fn source_said(&self) -> Option<&SourceError> {
        match self {
            Failure::Source(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the source is not there at all, or hangs, so its other URLs need not be tried.
    fn unreachable(&self) -> bool {
        matches!(
            self,
            Failure::Source(
                SourceError::Request(HttpError::Connect(_) | HttpError::Timeout(_))
                    | SourceError::Stalled
            )
        )
    }

    /// Whether the source answered nothing in time: no first byte, or silence mid-body (not a
    /// source never asked because the time was already used up).
    fn silent(&self) -> bool {
        matches!(
            self,
            Failure::Source(SourceError::Request(HttpError::Timeout(_)) | SourceError::Stalled)
        )
    }

    /// Whether this says something is wrong with the source itself, not merely that it
    /// lacks the file: worth a warning even when another source then succeeds.
    fn alarming(&self) -> bool {
        matches!(
            self,
            Failure::Mismatch
                | Failure::SumMismatch
                | Failure::Html
                | Failure::WrongSize { .. }
                | Failure::TooLarge { .. }
                | Failure::LongerThanAnnounced { .. }
                | Failure::OverCap { .. }
                | Failure::Source(
                    SourceError::Range(RangeError::Wrong(_)) | SourceError::UnaskedNotModified
                )
        )
    }
}

/// Bytes delivered.
#[derive(Debug)]
pub struct Delivered {
    /// `ipfs`, `mirror`, `db-signature`, `partial` (an earlier `.part` was already whole),
    /// `unchanged` (the mirror answered 304: the copy pacman holds was copied), or `updates`
    /// (a 304 to the copy built from an update list; `url` says how it was built).
    pub source: &'static str,
    /// The URL that served, for `-v`.
    pub url: String,
    /// The position in the plan of the source that served (none for an earlier `.part`).
    pub index: Option<usize>,
    /// The file size.
    pub bytes: u64,
    /// Bytes that were already there from an earlier call.
    pub resumed: u64,
    /// Why IPFS did not serve, when a gateway was tried and another source did.
    pub ipfs_miss: Option<String>,
    /// When the source says the file last changed (`Last-Modified`, or the mtime of the copy
    /// a 304 kept).
    pub modified: Option<std::time::SystemTime>,
}

/// Every source failed.
#[derive(Debug)]
pub enum DownloadError {
    /// Nothing to try (no mirror URL and no gateway template applied).
    NoSources,
    /// Each source tried, with why it failed.
    AllFailed(Vec<(String, Failure)>),
    /// The output could not be written.
    Output(io::Error),
}

impl fmt::Display for DownloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownloadError::NoSources => write!(f, "no source to download from"),
            DownloadError::AllFailed(failures) => {
                let parts: Vec<String> = failures
                    .iter()
                    .map(|(source, why)| format!("{source}: {why}"))
                    .collect();
                write!(f, "{}", parts.join("; "))
            }
            DownloadError::Output(e) => write!(f, "cannot write the output file: {e}"),
        }
    }
}

impl std::error::Error for DownloadError {}

/// What a download needs besides the plan: the configuration and the agents, made once.
pub struct Context<'a> {
    pub config: &'a Config,
    gateway: OnceCell<Result<gateway::Gateway, String>>,
    /// The copy pacman holds of this database: HTTP mirrors are asked only if it changed.
    pub existing: Option<mirror::Existing>,
    /// Mirror agents made so far, by the proxy they go through: files fetched one after the
    /// other with the same context (prefetch's workers) reuse their connections.
    mirrors: std::cell::RefCell<Vec<(Option<String>, crate::http::client::Client)>>,
    /// Where LAN peers that went away or lied are remembered (`ipfs::lan::skip`); none: not
    /// remembered.
    pub lan_places: Option<crate::cache::Places>,
    /// A build source (makepkg's agent): its bytes must match every sum pacxfer computes of
    /// one of these, when there are any (none: a `SKIP` or unlisted source, taken as upstream
    /// sends it). Resumed like a package, and an HTML page is a file like any other. The
    /// output must keep those checksums (`Output::open_summing`). `None`: not a build source.
    pub sums: Option<Vec<Sums>>,
    /// Upstream's whole file that matches none of `sums` is kept, with a warning, for the
    /// caller's caller to judge (makepkg's agent: makepkg checks every sum itself); otherwise
    /// (a publisher) it is refused like any wrong copy.
    pub hand_on_mismatch: bool,
}

impl<'a> Context<'a> {
    pub fn new(config: &'a Config) -> Context<'a> {
        Context {
            config,
            gateway: OnceCell::new(),
            existing: None,
            mirrors: std::cell::RefCell::new(Vec::new()),
            lan_places: None,
            sums: None,
            hand_on_mismatch: false,
        }
    }

    /// The agent for a mirror URL, made once per proxy.
    fn mirror_client(
        &self,
        url: &str,
    ) -> Result<crate::http::client::Client, crate::http::client::HttpError> {
        let proxy = crate::http::client::proxy_for(url, |k| std::env::var(k).ok());
        if let Some((_, c)) = self.mirrors.borrow().iter().find(|(p, _)| *p == proxy) {
            return Ok(c.clone());
        }
        let made = mirror::client(self.config, url)?;
        self.mirrors.borrow_mut().push((proxy, made.clone()));
        Ok(made)
    }

    fn gateway_client(&self) -> Result<&gateway::Gateway, Failure> {
        self.gateway
            .get_or_init(|| gateway::client(self.config).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| Failure::Other(e.clone()))
    }
}

/// Why [`into_file`] delivered nothing.
#[derive(Debug)]
pub struct Undelivered {
    pub why: String,
    /// The filesystem (or the user's quota) ran out of space opening or writing the file.
    pub no_space: bool,
}

/// Whether an I/O error means the filesystem, or the user's quota, is full.
pub fn is_no_space(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

/// What becomes of the `.part` of a download that failed: what arrived stays for the next try
/// (pacman resumes a `.part` in its cache, and so does pacxfer as its XferCommand); an empty
/// one says nothing and is removed.
pub fn keep_what_arrived(out: &Output, _no_space: bool) -> Option<String> {
    let _ = out.remove_if_empty();
    None
}

/// Runs `plan` into `dest` through `dest.part`, renamed only once whole and verified; the
/// file gets the server's Last-Modified when it gave one. When it fails, `failed` decides
/// what becomes of the `.part` while its lock is still held (told whether the disk was full),
/// and may say what it did ([`keep_what_arrived`] keeps what arrived). The agents are `ctx`'s
/// (a prefetch worker's keep their connections from one file to the next).
pub fn into_file(
    ctx: &Context<'_>,
    plan: &Plan,
    dest: &Path,
    progress: &Progress,
    failed: impl FnOnce(&Output, bool) -> Option<String>,
) -> Result<Delivered, Undelivered> {
    let mut part = dest.as_os_str().to_owned();
    part.push(".part");
    let part = PathBuf::from(part);
    let undelivered = |why: String, no_space: bool| Undelivered { why, no_space };
    // A build source is judged by its PKGBUILD's sums: the output keeps them.
    let algos = crate::makepkg::sums::algos(ctx.sums.as_deref().unwrap_or(&[]));
    let mut out = Output::open_summing(&part, &algos, || {
        progress.info(&format!(
            "waiting for another pacxfer that is writing {}",
            part.display()
        ))
    })
    .map_err(|e| {
        progress.abandon();
        undelivered(format!("{}: {e}", part.display()), is_no_space(&e))
    })?;
    match run(plan, &mut out, ctx, progress) {
        Ok(done) => {
            out.finish()
                .map_err(|e| undelivered(format!("{}: {e}", part.display()), is_no_space(&e)))?;
            if let Some(time) = done.modified {
                // Without it the next run would ask unconditionally: only a cost.
                let _ = out.set_mtime(time);
            }
            std::fs::rename(&part, dest)
                .map_err(|e| undelivered(format!("{}: {e}", dest.display()), false))?;
            Ok(done)
        }
        Err(e) => {
            progress.abandon();
            let no_space = matches!(&e, DownloadError::Output(io) if is_no_space(io));
            let mut why = e.to_string();
            if let Some(did) = failed(&out, no_space) {
                why.push_str("; ");
                why.push_str(&did);
            }
            Err(undelivered(why, no_space))
        }
    }
}

/// The main loop: tries `plan`'s sources in order, writing into `out`.
pub fn run(
    plan: &Plan,
    out: &mut Output,
    ctx: &Context<'_>,
    progress: &Progress,
) -> Result<Delivered, DownloadError> {
    if plan.sources.is_empty() {
        return Err(DownloadError::NoSources);
    }
    if let Some(done) = already_whole(plan, out, ctx.sums.as_deref().unwrap_or(&[]), progress)? {
        return Ok(done);
    }

    let mut failures: Vec<(String, Failure)> = Vec::new();
    let mut ipfs_miss: Option<String> = None;
    let mut gateway_down = false;
    let mut network_deadline: Option<Instant> = None;
    for (i, source) in plan.sources.iter().enumerate() {
        if source.through_gateway() && gateway_down {
            continue;
        }
        let budget = match source {
            Source::Gateway {
                cached_only: false, ..
            }
            | Source::Lan { .. } => {
                let deadline = *network_deadline
                    .get_or_insert_with(|| Instant::now() + ctx.config.gateway.network_wait());
                Some(deadline.saturating_duration_since(Instant::now()))
            }
            _ => None,
        };
        progress.note(&format!("trying {}", source.describe()));
        let result = attempt(source, out, ctx, progress, budget);
        let lan = matches!(source, Source::Lan { .. });
        if source.through_gateway() {
            if let Ok(gateway) = ctx.gateway_client() {
                let outcome = result.as_ref().map(|_| ()).map_err(Failure::source_said);
                // A LAN peer that went away stalls the node's answer: that says nothing of
                // the node itself, so it opens no breaker.
                if !lan || outcome.is_ok() {
                    gateway.settle(outcome);
                }
            }
        }
        match result {
            Ok(Got {
                url,
                bytes,
                not_modified,
                modified,
            }) => {
                // Passed-over sources that misbehaved are worth a warning; on failure the
                // error line names them all instead.
                for (source, why) in failures.iter().filter(|(_, why)| why.alarming()) {
                    progress.warn(&format!("{source}: {why}"));
                }
                // A 304 to a copy built from an update list delivers that copy.
                let built = ctx
                    .existing
                    .as_ref()
                    .and_then(|e| e.built_how())
                    .filter(|_| not_modified);
                return Ok(Delivered {
                    source: match (not_modified, built) {
                        (true, Some(_)) => "updates",
                        (true, None) => "unchanged",
                        (false, _) => source.label(),
                    },
                    url: built.map_or(url, str::to_string),
                    index: Some(i),
                    bytes,
                    resumed: out.found().min(bytes),
                    ipfs_miss: ipfs_miss.filter(|_| !source.through_gateway()),
                    modified,
                });
            }
            Err(Failure::Write(e)) => return Err(DownloadError::Output(e)),
            Err(why) => {
                if let (Source::Lan { peers, .. }, Some(places)) = (source, &ctx.lan_places) {
                    // Peers that went away, or that sent what the database does not list, are
                    // not asked again for a while: the next files do not wait on them.
                    let rest = if why.silent() {
                        Some(crate::ipfs::lan::SILENT_FOR)
                    } else if why.alarming()
                        || matches!(why, Failure::Source(SourceError::Status(_)))
                    {
                        Some(crate::ipfs::lan::NO_VIEW_FOR)
                    } else {
                        None
                    };
                    if let Some(rest) = rest {
                        progress.note(&format!(
                            "{} not asked for {}s",
                            crate::transfer::plan::peer_list(peers),
                            rest.as_secs()
                        ));
                        crate::ipfs::lan::skip(places, peers, rest);
                    }
                }
                if source.through_gateway() {
                    gateway_down |= if lan {
                        matches!(
                            why,
                            Failure::Source(SourceError::Request(HttpError::Connect(_)))
                        )
                    } else {
                        why.unreachable()
                    };
                    ipfs_miss.get_or_insert_with(|| why.to_string());
                }
                match (source, plan.sources.get(i + 1)) {
                    // Moving from one Server to the next is worth a line: the user learns
                    // which mirror failed and which one is used instead.
                    (Source::Mirror { .. }, Some(next @ Source::Mirror { .. })) => {
                        progress.info(&format!(
                            "{}: {why}; trying the next Server: {}",
                            source.describe(),
                            next.describe()
                        ))
                    }
                    _ => progress.note(&format!("{}: {why}", source.describe())),
                }
                failures.push((source.describe(), why));
            }
        }
    }
    Err(DownloadError::AllFailed(failures))
}

/// A `.part` left by an earlier call may already be the whole file.
fn already_whole(
    plan: &Plan,
    out: &mut Output,
    ctx_sums: &[Sums],
    progress: &Progress,
) -> Result<Option<Delivered>, DownloadError> {
    if out.is_empty() {
        return Ok(None);
    }
    let expect: Vec<Expected> = plan
        .sources
        .iter()
        .flat_map(|s| s.expect().to_vec())
        .collect();
    if expect.is_empty() {
        // A build source's size is not known: a part that already matches is whole, any
        // other is resumed and judged at its end.
        if !ctx_sums.is_empty() && sums_match(ctx_sums, out) {
            return Ok(Some(partial_whole(out, progress)));
        }
        return Ok(None);
    }
    match verify::judge(&expect, out.len(), &out.sha256()) {
        Verdict::Match => Ok(Some(partial_whole(out, progress))),
        Verdict::Short => {
            progress.note(&format!(
                "resuming the partial file from an earlier call at {}",
                progress::size(out.len())
            ));
            Ok(None)
        }
        Verdict::Mismatch => {
            progress.note("the partial file from an earlier call is wrong; starting over");
            out.truncate().map_err(DownloadError::Output)?;
            Ok(None)
        }
    }
}

/// The partial file from an earlier call, found whole.
fn partial_whole(out: &Output, progress: &Progress) -> Delivered {
    progress.note("the partial file from an earlier call is already complete");
    Delivered {
        source: "partial",
        url: out.path().display().to_string(),
        index: None,
        bytes: out.len(),
        resumed: out.len(),
        ipfs_miss: None,
        modified: None,
    }
}

/// What one source delivered.
struct Got {
    /// The URL that served.
    url: String,
    bytes: u64,
    /// The mirror answered 304: the bytes are the copy pacman holds.
    not_modified: bool,
    /// `Last-Modified`, or the kept copy's mtime.
    modified: Option<std::time::SystemTime>,
}

/// One source, resumed from what `out` holds; once more from byte 0 when the resumed whole is
/// wrong or the source cannot resume.
fn attempt(
    source: &Source,
    out: &mut Output,
    ctx: &Context<'_>,
    progress: &Progress,
    budget: Option<Duration>,
) -> Result<Got, Failure> {
    if let Source::DbSignature { bytes, .. } = source {
        out.truncate().map_err(Failure::Write)?;
        out.append(bytes).map_err(Failure::Write)?;
        return Ok(Got {
            url: source.describe(),
            bytes: out.len(),
            not_modified: false,
            modified: None,
        });
    }
    if let Source::Mirror { expect, .. } = source {
        // Resumed only when something will judge the whole: a database's entry, or a
        // PKGBUILD's sums.
        let judged = ctx.sums.as_ref().is_some_and(|s| !s.is_empty());
        if expect.is_empty() && !judged && !out.is_empty() {
            progress.note(if ctx.sums.is_some() {
                "pinned by no sum, so not resumed; starting from byte 0"
            } else {
                "not listed in any database, so not resumed; starting from byte 0"
            });
            out.truncate().map_err(Failure::Write)?;
        }
    }
    let mut from_zero = out.is_empty();
    loop {
        let resumed = !out.is_empty();
        match transfer(source, out, ctx, progress, budget) {
            Err(
                Failure::Mismatch
                | Failure::SumMismatch
                | Failure::WrongSize { .. }
                | Failure::Source(SourceError::Range(_)),
            ) if resumed && !from_zero => {
                progress.note("resumed file is wrong or cannot be resumed; starting over");
                out.truncate().map_err(Failure::Write)?;
                from_zero = true;
            }
            other => return other,
        }
    }
}

/// One request to one source, streamed into `out` and judged.
fn transfer(
    source: &Source,
    out: &mut Output,
    ctx: &Context<'_>,
    progress: &Progress,
    budget: Option<Duration>,
) -> Result<Got, Failure> {
    let from = out.len();
    let (stream, expect) = match source {
        Source::Gateway { url, expect, .. } | Source::Lan { url, expect, .. } => {
            if budget.is_some_and(|b| b.is_zero()) {
                return Err(SourceError::NoBudget.into());
            }
            // A LAN copy is fetched by its CID: the node may go to its peers for it.
            let cached_only = matches!(
                source,
                Source::Gateway {
                    cached_only: true,
                    ..
                }
            );
            let client = ctx.gateway_client()?;
            (
                gateway::open(client, url, cached_only, from, budget)?,
                expect,
            )
        }
        Source::Mirror { url, expect } => {
            // Only a file no database lists (a database) is asked conditionally.
            let existing = ctx.existing.as_ref().filter(|_| expect.is_empty());
            if let Some(copy) = existing.filter(|_| from == 0) {
                progress.note(&format!(
                    "asking {url} only if changed since {}",
                    crate::http::date::format(copy.modified())
                ));
            }
            (
                mirror::open(url, from, existing, || ctx.mirror_client(url))?,
                expect,
            )
        }
        Source::DbSignature { .. } => return Err(Failure::Other("not a stream".into())),
    };
    let Stream {
        mut body,
        start,
        total,
        url,
        html,
        last_modified,
        not_modified,
    } = stream;
    let got = |url: String, bytes: u64| Got {
        url,
        bytes,
        not_modified,
        modified: last_modified,
    };
    if html && expect.is_empty() && ctx.sums.is_none() {
        return Err(Failure::Html);
    }
    let limit = verify::limit(expect)
        .or_else(|| ctx.sums.as_ref().map(|_| SOURCE_MAX))
        .or_else(|| unlisted_cap(&url));
    // What to call a body that runs past `limit`.
    let too_large = |limit: u64| {
        if expect.is_empty() {
            Failure::OverCap { cap: limit }
        } else {
            Failure::TooLarge { limit }
        }
    };
    if start == 0 && from > 0 {
        // The source ignored the range and sends the whole file.
        out.truncate().map_err(Failure::Write)?;
    }
    if let (Some(limit), Some(total)) = (limit, total) {
        // The source says how big its file is: a size the database does not list is the
        // wrong file, and not worth a byte of transfer.
        if total > limit {
            out.truncate().map_err(Failure::Write)?;
            return Err(too_large(limit));
        }
        if !expect.is_empty() && !expect.iter().any(|e| e.size == total) {
            out.truncate().map_err(Failure::Write)?;
            return Err(Failure::WrongSize {
                got: total,
                want: limit,
            });
        }
    }
    progress.start(
        if not_modified { "kept" } else { source.label() },
        total.or(limit),
        out.len(),
    );
    match verify::pump(&mut body, out, limit, progress) {
        Ok(_) => {}
        Err(PumpError::Write(e)) => return Err(Failure::Write(e)),
        Err(PumpError::TooLarge(limit)) => {
            out.truncate().map_err(Failure::Write)?;
            return Err(too_large(limit));
        }
        Err(PumpError::Read(e)) if http::is_stall(&e) => return Err(SourceError::Stalled.into()),
        Err(PumpError::Read(e)) => return Err(Failure::Read(e)),
    }
    if let Some(source_sums) = ctx.sums.as_ref().filter(|s| !s.is_empty()) {
        // A build source: its length is the source's, its bytes are the PKGBUILD's.
        if let Some(total) = total.filter(|t| out.len() < *t) {
            return Err(Failure::Short {
                got: out.len(),
                want: total,
            });
        }
        if sums_match(source_sums, out) {
            return Ok(got(url, out.len()));
        }
        if ctx.hand_on_mismatch && matches!(source, Source::Mirror { .. }) && start == 0 {
            // Upstream's own bytes, whole and not spliced onto an earlier part: makepkg
            // judges them itself (`updpkgsums`, `--skipinteg`, a tarball rolled again).
            // Never shared, since they match nothing pinned.
            progress.warn(&format!(
                "{url}: the file does not match the sums its PKGBUILD pins; handing it to \
                 makepkg, which checks them"
            ));
            return Ok(got(url, out.len()));
        }
        out.truncate().map_err(Failure::Write)?;
        return Err(Failure::SumMismatch);
    }
    if expect.is_empty() {
        // Not listed anywhere: complete when the source's own length says so.
        return match total {
            Some(total) if out.len() < total => Err(Failure::Short {
                got: out.len(),
                want: total,
            }),
            Some(total) if out.len() > total => {
                out.truncate().map_err(Failure::Write)?;
                Err(Failure::LongerThanAnnounced { announced: total })
            }
            _ => Ok(got(url, out.len())),
        };
    }
    match verify::judge(expect, out.len(), &out.sha256()) {
        Verdict::Match => Ok(got(url, out.len())),
        // The body ended cleanly: the source holds a shorter file than the database lists.
        Verdict::Short => {
            let got = out.len();
            out.truncate().map_err(Failure::Write)?;
            Err(Failure::WrongSize {
                got,
                want: limit.unwrap_or(0),
            })
        }
        Verdict::Mismatch => {
            out.truncate().map_err(Failure::Write)?;
            Err(Failure::Mismatch)
        }
    }
}

/// The most bytes a build source may have: no PKGBUILD says how large its sources are, and a
/// source that never ends must not fill the disk.
pub const SOURCE_MAX: u64 = 64 << 30;

/// Whether the output's checksums match one of the PKGBUILD's pinnings.
fn sums_match(sums: &[Sums], out: &Output) -> bool {
    let computed = out.sums();
    sums.iter().any(|s| s.matched_by(&computed))
}

/// The most bytes accepted for a file no database lists, by kind, as pacman's own
/// downloader limits them: a sync database (`.db`, `.files`) 128 MiB, a detached signature
/// 16 KiB. Anything else (a package of a repository not synced, `pacman -U URL`) is bounded
/// by the length its server announces.
pub fn unlisted_cap(url: &str) -> Option<u64> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let name = path.rsplit('/').next().unwrap_or(path);
    if name.ends_with(".sig") {
        Some(16 * 1024)
    } else if name.ends_with(".db")
        || name.ends_with(".files")
        || name.contains(".db.tar")
        || name.contains(".files.tar")
    {
        Some(128 << 20)
    } else {
        None
    }
}
