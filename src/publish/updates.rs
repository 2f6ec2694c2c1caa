//! The update lists of a repository's databases (`core.db`, `core.files`): what a client
//! that names this publisher needs to go from the version it holds to the current one by
//! moving only what changed.
//!
//! For each database the run fetched, its canonical form (`db::canonical`) is made; when it
//! differs from the last version recorded, a new version is numbered, the step from the
//! previous version (whose canonical copy the run keeps in its work directory, named by its
//! SHA-256) is added to the node zstd-compressed, and so is the whole canonical archive. The
//! view links them under `updates/<repo>/<arch>/<name>/`:
//!
//! - `head`: JSON, written by the view on every run (`view::write_heads`): the current
//!   version's number, SHA-256 and size, when the publisher last checked the mirror
//!   (`checked`), the mirror's `Last-Modified` for it, and the first version from which every
//!   step is there (`first_step`, from the versions recorded);
//! - `steps/.../<n>`: the step from version n-1 to n (`db::canonical::step_path`: two levels
//!   of at most 64 links, so the directories on the way stay small);
//! - `full`: the current canonical archive, zstd-compressed, for a client with no version.
//!
//! Versions older than `keep_days` are forgotten, as packages are. A repository whose
//! database is signed (`<repo>.db.sig`) gets no update list: pacman needs its exact signed
//! bytes. Killed at any moment, a run loses nothing: the node holds what is added before the
//! state records it, and a canonical copy is removed only once a newer one is recorded.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::db::canonical::{self, Step, Version};

use super::state::{DbHead, DbVersion};
use super::{PublishError, Publisher};

/// The most a database may hold once decompressed for its canonical form (in memory).
const CANON_MAX: u64 = 2 << 30;

/// zstd levels: steps are small and fetched often; the whole archive is large.
const STEP_LEVEL: i32 = 19;
const FULL_LEVEL: i32 = 12;

impl Publisher<'_> {
    /// The update lists of `repo`'s databases, from the files this run fetched.
    pub(super) fn update_lists(
        &mut self,
        repo: &str,
        fetched: &[(String, Option<PathBuf>)],
    ) -> Result<(), PublishError> {
        let arch = self.job.arch.clone();
        let signed = fetched
            .iter()
            .any(|(n, p)| n.ends_with(".db.sig") && p.is_some());
        for (name, path) in fetched {
            if !(name.ends_with(".db") || name.ends_with(".files")) {
                continue;
            }
            match path {
                Some(path) if !signed => match self.update_list(repo, &arch, name, path) {
                    Ok(()) => {}
                    // The repository's packages and database files are published all the
                    // same; its clients take the whole database until a run can make it.
                    Err(e @ PublishError::Database { .. }) => self
                        .progress
                        .warn(&format!("{e}; no new update list for it")),
                    Err(e) => return Err(e),
                },
                _ => self.state.drop_db_updates(repo, &arch, name)?,
            }
        }
        Ok(())
    }

    fn update_list(
        &mut self,
        repo: &str,
        arch: &str,
        name: &str,
        fetched: &Path,
    ) -> Result<(), PublishError> {
        let dir = fetched.parent().unwrap_or(Path::new(".")).to_path_buf();
        let damaged = |why: String| PublishError::Database {
            repo: repo.to_string(),
            why: format!("{name}: {why}"),
        };
        let files =
            canonical::read_files(fetched, CANON_MAX).map_err(|e| damaged(e.to_string()))?;
        let canon_part = dir.join(format!("{name}.canon.part"));
        let out = std::fs::File::create(&canon_part)
            .map_err(|e| PublishError::Io(canon_part.clone(), e))?;
        let (out, version) = canonical::write(&files, std::io::BufWriter::new(out))
            .map_err(|e| PublishError::Io(canon_part.clone(), e))?;
        drop(out);
        let canon = |v: &str| dir.join(format!("{name}.{v}.canon"));
        let mirror_modified = std::fs::metadata(fetched)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .filter(|d| d.subsec_nanos() == 0)
            .map(|d| d.as_secs() as i64);
        let last = self
            .state
            .db_versions()?
            .into_iter()
            .rfind(|v| v.repo == repo && v.arch == arch && v.name == name);
        let new = match &last {
            Some(l) if l.sha256 == version.hex() => {
                // Kept as the copy the next step is made from, when the work directory lost it.
                let kept = canon(&version.hex());
                if kept.exists() {
                    let _ = std::fs::remove_file(&canon_part);
                } else {
                    std::fs::rename(&canon_part, &kept)
                        .map_err(|e| PublishError::Io(kept.clone(), e))?;
                }
                None
            }
            _ => {
                let seq = last.as_ref().map_or(1, |l| l.seq + 1);
                let kept = canon(&version.hex());
                std::fs::rename(&canon_part, &kept)
                    .map_err(|e| PublishError::Io(kept.clone(), e))?;
                let step = match &last {
                    Some(l) => {
                        self.step(repo, name, l, &files, version, &canon(&l.sha256), &dir)?
                    }
                    None => None,
                };
                let full_path = dir.join(format!("{name}.full.zst"));
                compress(&kept, &full_path).map_err(|e| PublishError::Io(full_path.clone(), e))?;
                let full_cid = self.add(&full_path, "full")?;
                let _ = std::fs::remove_file(&full_path);
                let (step_cid, step_size) = match step {
                    Some((cid, size)) => (Some(cid), size),
                    None => (None, 0),
                };
                self.progress.info(&format!(
                    "[{repo}] {name}: version {seq}{}",
                    if step_size > 0 {
                        format!(
                            ", a step of {} from version {}",
                            crate::ui::progress::size(step_size),
                            seq - 1
                        )
                    } else {
                        String::new()
                    }
                ));
                Some(DbVersion {
                    repo: repo.to_string(),
                    arch: arch.to_string(),
                    name: name.to_string(),
                    seq,
                    sha256: version.hex(),
                    size: version.size,
                    step_cid,
                    step_size,
                    full_cid,
                    published: self.started,
                })
            }
        };
        let current = new.as_ref().or(last.as_ref()).cloned();
        let Some(current) = current else {
            return Ok(());
        };
        self.state.set_db_version(
            new.as_ref(),
            &DbHead {
                repo: repo.to_string(),
                arch: arch.to_string(),
                name: name.to_string(),
                mirror_modified,
                checked: self.started,
            },
            self.horizon(),
        )?;
        // Recorded: the older canonical copies are no longer needed.
        if let Ok(list) = std::fs::read_dir(&dir) {
            let current_name = format!("{name}.{}.canon", current.sha256);
            for e in list.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.starts_with(&format!("{name}.")) && n.ends_with(".canon") && n != current_name
                {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(())
    }

    /// The step from `last` to `version`, added to the node: (CID, size). `None` when the
    /// last version's canonical copy is not at hand or not what the state recorded.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        repo: &str,
        name: &str,
        last: &DbVersion,
        files: &canonical::Files,
        version: Version,
        last_canon: &Path,
        dir: &Path,
    ) -> Result<Option<(String, u64)>, PublishError> {
        // Lost from the work directory: the node holds the last version's whole archive.
        if !last_canon.exists() {
            if let Err(e) = self.restore(last, last_canon) {
                self.progress.note(&format!(
                    "[{repo}] {name}: version {} could not be read back from the node: {e}",
                    last.seq
                ));
            }
        }
        // The kept copy is a canonical archive: its own hash says which version it is.
        let is_last = crate::ipfs::seed::hash_file(last_canon)
            .is_ok_and(|(sha, size)| hex::encode(sha) == last.sha256 && size == last.size);
        if !is_last {
            self.progress.note(&format!(
                "[{repo}] {name}: {} is not version {}: no step; clients that hold it take the whole archive",
                last_canon.display(),
                last.seq
            ));
            let _ = std::fs::remove_file(last_canon);
            return Ok(None);
        }
        let old = match canonical::read_files(last_canon, CANON_MAX) {
            Ok(old) => old,
            Err(e) => {
                self.progress.note(&format!(
                    "[{repo}] {name}: no step from version {} ({}: {e}); clients that hold it take the whole database",
                    last.seq,
                    last_canon.display()
                ));
                return Ok(None);
            }
        };
        let Some(from) = hex::decode(&last.sha256)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
        else {
            return Ok(None);
        };
        let step = Step {
            from: Version {
                sha256: from,
                size: last.size,
            },
            to: version,
            changes: canonical::diff(&old, files),
        };
        let raw: u64 = step
            .changes
            .iter()
            .map(|(p, c)| p.len() as u64 + c.as_ref().map_or(0, |c| c.len() as u64) + 16)
            .sum();
        if raw > canonical::STEP_MAX / 2 {
            self.progress.note(&format!(
                "[{repo}] {name}: the step from version {} changes {raw} bytes: clients take the whole archive",
                last.seq
            ));
            return Ok(None);
        }
        let bytes = canonical::encode(&step, STEP_LEVEL)
            .map_err(|e| PublishError::Io(dir.to_path_buf(), e))?;
        let path = dir.join(format!("{name}.step"));
        std::fs::write(&path, &bytes).map_err(|e| PublishError::Io(path.clone(), e))?;
        let cid = self.add(&path, "step")?;
        let _ = std::fs::remove_file(&path);
        Ok(Some((cid, bytes.len() as u64)))
    }
}

impl Publisher<'_> {
    /// Writes `version`'s canonical archive at `to` from its whole archive in the node.
    fn restore(&self, version: &DbVersion, to: &Path) -> Result<(), String> {
        let mut part = to.as_os_str().to_owned();
        part.push(".part");
        let part = PathBuf::from(part);
        let file = std::fs::File::create(&part).map_err(|e| e.to_string())?;
        let mut out = zstd::stream::write::Decoder::new(std::io::BufWriter::new(file))
            .map_err(|e| e.to_string())?;
        let limit = version.size.saturating_add(1 << 20);
        self.rpc
            .cat_into(&version.full_cid, &mut out, limit)
            .map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
        drop(out);
        let (sha, size) = crate::ipfs::seed::hash_file(&part).map_err(|e| e.to_string())?;
        if hex::encode(sha) != version.sha256 || size != version.size {
            let _ = std::fs::remove_file(&part);
            return Err("the node's archive is not the recorded version".into());
        }
        std::fs::rename(&part, to).map_err(|e| e.to_string())
    }
}

/// zstd-compresses `from` into `to`.
fn compress(from: &Path, to: &Path) -> std::io::Result<()> {
    let mut input = std::fs::File::open(from)?;
    let out = std::fs::File::create(to)?;
    let mut enc = zstd::stream::write::Encoder::new(std::io::BufWriter::new(out), FULL_LEVEL)?;
    std::io::copy(&mut input, &mut enc)?;
    enc.finish()?.flush()
}
