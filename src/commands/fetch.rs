//! `pacxfer fetch WHAT [-o PATH]`: a download from a shell, through the same plan and
//! verification as pacman's calls.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};

use crate::ui::progress::Progress;

use super::resolve::resolve;
use super::xfer::{deliver, Delivery};
use super::Session;

/// `pacxfer fetch WHAT [-o PATH]`: a download from a shell, written to `PATH.part` and renamed
/// once verified.
pub fn fetch(session: &Session, what: &str, output: Option<&Path>) -> Result<ExitCode> {
    let early = Progress::plain(session.verbosity);
    let resolved = resolve(session, what, &early)?;
    let dest = match output {
        Some(p) if p.is_dir() => p.join(&resolved.file),
        Some(p) => p.to_path_buf(),
        None => PathBuf::from(&resolved.file),
    };
    let mut part = dest.clone().into_os_string();
    part.push(".part");
    let part = PathBuf::from(part);
    let progress = Progress::new(&resolved.file, session.verbosity);
    let plan = resolved.plan(session, &progress);
    let locked = deliver(
        session,
        &resolved.file,
        &plan,
        &part,
        &progress,
        Delivery {
            what_next: "run it again to resume",
            later: None,
            existing: None,
            server_time: false,
            sums: None,
        },
    )?;
    std::fs::rename(&part, &dest)
        .with_context(|| format!("cannot rename {} to {}", part.display(), dest.display()))?;
    drop(locked);
    Ok(ExitCode::SUCCESS)
}
