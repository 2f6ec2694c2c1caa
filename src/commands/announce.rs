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

/// The cache file holding the root pacxfer published last.
const LAST: &str = "lan-announced";

/// `pacxfer announce [--force]`.
pub fn announce(session: &Session, force: bool) -> Result<ExitCode> {
    let progress = Progress::plain(session.verbosity);
    let share = &session.config.share;
    if !share.lan {
        progress.info("announce: [share] lan = false; nothing published");
        return Ok(ExitCode::SUCCESS);
    }
    let rpc = crate::ipfs::rpc::Rpc::new(&share.api, share.api_auth.as_deref(), PUBLISH_TIMEOUT)
        .map_err(|e| anyhow::anyhow!("[share] api: {e}"))?;
    match lan::mfs_root(&rpc) {
        Ok(_) => {}
        Err(crate::ipfs::rpc::RpcError::Failed { message, .. })
            if message.contains("does not exist") =>
        {
            progress.info("announce: nothing seeded here yet; nothing published");
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => anyhow::bail!("LAN peers will not find what is seeded here: {e}"),
    }
    if !force {
        let last = session
            .places
            .read_first(LAST, 256)
            .map(|b| String::from_utf8_lossy(&b).trim().to_string());
        let id = lan::own_id(&rpc)?;
        match lan::owner(&rpc, &id, last.as_deref())? {
            lan::Owner::Nobody | lan::Owner::Pacxfer => {}
            lan::Owner::Other(path) => anyhow::bail!(
                "this node's own name (/ipns/{id}) points at {}, which pacxfer did not publish: \
                 not replaced; set [share] lan = false to keep it, or run `pacxfer announce \
                 --force` to share on the LAN instead",
                crate::ui::answer::one_line(&path)
            ),
            lan::Owner::Unknown(why) => anyhow::bail!(
                "cannot tell whether this node's own name (/ipns/{id}) is pacxfer's ({}): not \
                 replaced; run `pacxfer announce --force` if it is",
                crate::ui::answer::one_line(&why)
            ),
        }
    }
    let published = loop {
        let Some(held) = lock(session) else {
            progress.note("another pacxfer announce is running; it publishes the newest directory");
            return Ok(ExitCode::SUCCESS);
        };
        let root = lan::announce(&rpc)
            .map_err(|e| anyhow::anyhow!("LAN peers will not find what is seeded here: {e}"))?;
        session.places.write_first(LAST, root.as_bytes());
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
/// cache place there is no lock (publishing twice at once is only wasted work). The file is
/// opened under the cache place's rules (no link, no FIFO, owned by this user), read-only:
/// `flock` needs no more.
fn lock(session: &Session) -> Option<Option<std::fs::File>> {
    let Some(dir) = session.places.writable() else {
        return Some(None);
    };
    if matches!(dir.open_file(LOCK, 64), Ok(None)) {
        let _ = dir.write(LOCK, b"");
    }
    match dir.open_file(LOCK, 64) {
        Ok(Some(file)) => match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Some(Some(file)),
            Err(_) => None,
        },
        // A lock that cannot be had (something planted there) is no reason not to publish.
        _ => Some(None),
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
