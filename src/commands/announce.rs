//! `pacxfer announce`: publishes this node's `/pacxfer` directory under its own key, so LAN
//! peers find what this machine seeded (`ipfs::lan::announce`).
//!
//! Publishing a name waits until the record is stored on other peers: milliseconds on a LAN,
//! but up to a minute when the node also knows the internet's DHT, and as long as a dial
//! timeout when a peer has just gone away. A download never waits for it: after sharing a file,
//! pacxfer starts this command in the background ([`start_in_background`]). One runs at a time
//! (a lock in the cache places); the one running publishes again until the directory it
//! published is the newest, so a file seeded meanwhile is never left out.

use std::process::{ExitCode, Stdio};

use anyhow::Result;
use rustix::fs::{flock, FlockOperation};

use crate::ipfs::lan;
use crate::ui::progress::Progress;

use super::Session;

/// The lock file in the cache places.
const LOCK: &str = "lan-announce.lock";

/// How long one publication may take.
const PUBLISH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(180);

/// `pacxfer announce`.
pub fn announce(session: &Session) -> Result<ExitCode> {
    let progress = Progress::plain(session.verbosity);
    let share = &session.config.share;
    if !share.lan {
        progress.info("announce: [share] lan = false; nothing published");
        return Ok(ExitCode::SUCCESS);
    }
    let rpc = crate::ipfs::rpc::Rpc::new(&share.api, share.api_auth.as_deref(), PUBLISH_TIMEOUT)
        .map_err(|e| anyhow::anyhow!("[share] api: {e}"))?;
    let published = loop {
        let Some(held) = lock(session) else {
            progress.note("another pacxfer announce is running; it publishes the newest directory");
            return Ok(ExitCode::SUCCESS);
        };
        let root = lan::announce(&rpc)
            .map_err(|e| anyhow::anyhow!("LAN peers will not find what is seeded here: {e}"))?;
        drop(held);
        // A pacxfer that seeded while the lock was held, and found it taken, relies on this
        // look after letting go.
        match lan::mfs_root(&rpc) {
            Ok(now) if now != root => continue,
            _ => break root,
        }
    };
    progress.info(&format!(
        "announce: {} ({published}) published under this node's peer ID for LAN peers",
        crate::ipfs::seed::MFS_DIR
    ));
    Ok(ExitCode::SUCCESS)
}

/// The lock, held until dropped: `None` when another announce holds it. With no writable
/// cache place there is no lock (publishing twice at once is only wasted work).
fn lock(session: &Session) -> Option<Option<std::fs::File>> {
    let Some(dir) = session.places.writable() else {
        return Some(None);
    };
    let path = dir.path().join(LOCK);
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&path);
    match file {
        Ok(file) => match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Some(Some(file)),
            Err(_) => None,
        },
        // A lock that cannot be made (a link planted there) is no reason not to publish.
        Err(_) => Some(None),
    }
}

/// Starts `pacxfer announce` with this session's configuration, detached: no terminal, its
/// own process group (pacman's signals do not reach it), not waited for.
pub(super) fn start_in_background(session: &Session, progress: &Progress) {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return progress.note(&format!("not announced to LAN peers: {e}")),
    };
    let mut cmd = std::process::Command::new(exe);
    if let Some(config) = &session.config_path {
        cmd.arg("--config").arg(config);
    }
    if let Some(dir) = &session.cache_dir_arg {
        cmd.arg("--cache-dir").arg(dir);
    }
    use std::os::unix::process::CommandExt;
    cmd.arg("announce")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    match cmd.spawn() {
        Ok(_) => progress.note("announcing to LAN peers in the background"),
        Err(e) => progress.note(&format!("not announced to LAN peers: {e}")),
    }
}
