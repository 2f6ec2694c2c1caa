//! The published root in the node's MFS (`/pacxfer-publish/<key>`), made to match the state.
//!
//! The view the state asks for is summed up in one digest. When the MFS root is still exactly
//! the root the state last recorded and the digest is the one recorded with it, nothing is
//! listed or linked: a run with nothing new costs a few calls whatever the size of the cache.
//! Otherwise each directory is listed once by its CID (`ls`, which reads the blocks and leaves
//! MFS's in-memory tree alone: `files/ls --long` would load every entry into it and make each
//! later flush rewrite them all) and only what differs is unlinked or linked; links are made
//! with `flush=false` and flushed every [`FLUSH_EVERY`] calls, so linking 15,000 packages
//! costs seconds, not the O(n²) of flushing after each. A root that was changed behind the
//! publisher's back, or lost, is repaired from the record. Then `pacxfer.json` is written,
//! the root flushed, and published to the IPNS key.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use super::state::State;
use super::{now, Job, PublishError};
use crate::ipfs::rpc::{Rpc, RpcError};

/// Where published roots live in MFS.
pub const MFS_BASE: &str = "/pacxfer-publish";

/// Links made with `flush=false` between two flushes. Kubo refuses more than
/// `Internal.MFSNoFlushLimit` (256 by default) unflushed operations, counted over all of its
/// clients; this leaves room for others.
pub const FLUSH_EVERY: u32 = 200;

/// The most a directory listing may take (about a million entries).
const LISTING_MAX: u64 = 256 << 20;

/// The file every view holds beside the packages.
const JSON_NAME: &str = "pacxfer.json";

/// The file each update list holds beside its steps, rewritten on every run like
/// [`JSON_NAME`] (its time says the publisher is still running): never part of the digest.
const HEAD_NAME: &str = "head";

/// What a directory should hold.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Dir {
    /// name -> CID.
    files: BTreeMap<String, String>,
    subdirs: BTreeSet<String>,
}

/// The whole view: each directory by its path below the root ("" for the root itself). In
/// this order a directory comes before the directories below it.
type Tree = BTreeMap<String, Dir>;

/// The view the state asks for, and its digest.
fn wanted(state: &State) -> Result<(Tree, String), PublishError> {
    let files = state.files()?;
    let cid_of: BTreeMap<&str, &str> = files
        .iter()
        .map(|f| (f.sha256.as_str(), f.cid.as_str()))
        .collect();
    let mut tree = Tree::new();
    let mut root = Dir::default();
    for f in &files {
        root.files.insert(f.sha256.clone(), f.cid.clone());
    }
    // The mirror view: <repo>/os/<arch>/<filename> and the database files.
    let mut mirror: BTreeMap<(String, String), BTreeMap<String, String>> = BTreeMap::new();
    for l in state.listings()? {
        if let Some(cid) = cid_of.get(l.sha256.as_str()) {
            mirror
                .entry((l.repo, l.arch))
                .or_default()
                .insert(l.filename, cid.to_string());
        }
    }
    for f in state.dbfiles()? {
        mirror
            .entry((f.repo, f.arch))
            .or_default()
            .insert(f.name, f.cid);
    }
    for ((repo, arch), names) in mirror {
        root.subdirs.insert(repo.clone());
        tree.entry(repo.clone())
            .or_default()
            .subdirs
            .insert("os".into());
        tree.entry(format!("{repo}/os"))
            .or_default()
            .subdirs
            .insert(arch.clone());
        tree.insert(
            format!("{repo}/os/{arch}"),
            Dir {
                files: names,
                subdirs: BTreeSet::new(),
            },
        );
    }
    // The update lists: updates/<repo>/<arch>/<name>/{head,full,steps/<n>}.
    let versions = state.db_versions()?;
    for h in state.db_heads()? {
        let mine: Vec<_> = versions
            .iter()
            .filter(|v| v.repo == h.repo && v.arch == h.arch && v.name == h.name)
            .collect();
        let Some(current) = mine.last() else {
            continue;
        };
        root.subdirs.insert("updates".into());
        tree.entry("updates".into())
            .or_default()
            .subdirs
            .insert(h.repo.clone());
        tree.entry(format!("updates/{}", h.repo))
            .or_default()
            .subdirs
            .insert(h.arch.clone());
        let base = format!("updates/{}/{}", h.repo, h.arch);
        tree.entry(base.clone())
            .or_default()
            .subdirs
            .insert(h.name.clone());
        let mut dir = Dir::default();
        dir.files.insert("full".into(), current.full_cid.clone());
        dir.subdirs.insert("steps".into());
        let list = format!("{base}/{}", h.name);
        tree.insert(list.clone(), dir);
        // Each step under its path (`db::canonical::step_path`), every directory on the way.
        tree.insert(format!("{list}/steps"), Dir::default());
        for v in &mine {
            let Some(cid) = &v.step_cid else {
                continue;
            };
            let path = crate::db::canonical::step_path(v.seq.max(0) as u64);
            let mut parent = list.clone();
            let mut parts = path.split('/').peekable();
            while let Some(part) = parts.next() {
                let dir = tree.entry(parent.clone()).or_default();
                if parts.peek().is_none() {
                    dir.files.insert(part.to_string(), cid.clone());
                } else {
                    dir.subdirs.insert(part.to_string());
                }
                parent = format!("{parent}/{part}");
            }
        }
    }
    // A source cache: sources/<algo>/<hex> and sources/names/<pkgbase>/<file>.
    let links = state.source_links()?;
    let listings = state.source_listings()?;
    if !links.is_empty() {
        root.subdirs.insert("sources".into());
    }
    for l in links {
        tree.entry("sources".into())
            .or_default()
            .subdirs
            .insert(l.algo.clone());
        tree.entry(format!("sources/{}", l.algo))
            .or_default()
            .files
            .insert(l.hex, l.cid);
    }
    let source_cid: BTreeMap<String, String> = state.source_cids()?.into_iter().collect();
    // Newest last: a name that named several files over time links the latest.
    for l in listings {
        let Some(cid) = source_cid.get(&l.sha256) else {
            continue;
        };
        tree.entry("sources".into())
            .or_default()
            .subdirs
            .insert("names".into());
        tree.entry("sources/names".into())
            .or_default()
            .subdirs
            .insert(l.pkgbase.clone());
        tree.entry(format!("sources/names/{}", l.pkgbase))
            .or_default()
            .files
            .insert(l.name, cid.clone());
    }
    tree.insert(String::new(), root);
    let mut digest = Sha256::new();
    for (path, dir) in &tree {
        for (name, cid) in &dir.files {
            digest.update(format!("{path}\0{name}\0{cid}\n"));
        }
        for name in &dir.subdirs {
            digest.update(format!("{path}\0{name}/\n"));
        }
    }
    Ok((tree, hex::encode(digest.finalize())))
}

/// Writes the head of every update list (`publish::updates`).
fn write_heads(rpc: &Rpc, state: &State, root: &str) -> Result<(), PublishError> {
    let versions = state.db_versions()?;
    for h in state.db_heads()? {
        let mine: Vec<_> = versions
            .iter()
            .filter(|v| v.repo == h.repo && v.arch == h.arch && v.name == h.name)
            .collect();
        let Some(current) = mine.last() else {
            continue;
        };
        // The first version from which every step to the current one is recorded.
        let mut first_step = current.seq + 1;
        for v in mine.iter().rev() {
            if v.seq != first_step - 1 || v.step_cid.is_none() {
                break;
            }
            first_step = v.seq;
        }
        let head = serde_json::json!({
            "pacxfer_db_updates": crate::db::canonical::HEAD_FORMAT,
            "repo": h.repo,
            "arch": h.arch,
            "name": h.name,
            "version": current.seq,
            "sha256": current.sha256,
            "size": current.size,
            "first_step": first_step,
            "checked": h.checked,
            "mirror_modified": h.mirror_modified,
        });
        rpc.upload(
            "files/write",
            &[
                (
                    "arg",
                    &format!(
                        "{root}/updates/{}/{}/{}/{HEAD_NAME}",
                        h.repo, h.arch, h.name
                    ),
                ),
                ("create", "true"),
                ("truncate", "true"),
                ("parents", "true"),
            ],
            HEAD_NAME,
            head.to_string().as_bytes(),
        )?;
    }
    Ok(())
}

/// The CID of the MFS entry at `path` and whether it is a directory; `None` when absent.
fn stat(rpc: &Rpc, path: &str) -> Result<Option<(String, bool)>, RpcError> {
    match rpc.call("files/stat", &[("arg", path)]) {
        Ok(answer) => {
            let cid = answer["Hash"].as_str().unwrap_or_default();
            if cid.is_empty() || !cid.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(RpcError::BadAnswer {
                    command: "files/stat".into(),
                    why: format!("no CID for {path}"),
                });
            }
            Ok(Some((
                cid.to_string(),
                answer["Type"].as_str() == Some("directory"),
            )))
        }
        Err(RpcError::Failed { message, .. }) if message.contains("does not exist") => Ok(None),
        Err(e) => Err(e),
    }
}

/// The entries of the directory `cid`: name -> CID.
fn list(rpc: &Rpc, cid: &str) -> Result<BTreeMap<String, String>, RpcError> {
    let mut out = BTreeMap::new();
    let args = [
        ("arg", format!("/ipfs/{cid}")),
        ("resolve-type", "false".into()),
        ("size", "false".into()),
        ("stream", "true".into()),
    ];
    let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
    rpc.each_line("ls", &args, LISTING_MAX, |line| {
        for object in line["Objects"].as_array().into_iter().flatten() {
            for link in object["Links"].as_array().into_iter().flatten() {
                if let (Some(name), Some(hash)) = (link["Name"].as_str(), link["Hash"].as_str()) {
                    out.insert(name.to_string(), hash.to_string());
                }
            }
        }
        Ok(())
    })?;
    Ok(out)
}

/// Changes to MFS below one root, links made unflushed and flushed in batches.
struct Mfs<'a> {
    rpc: &'a Rpc,
    root: String,
    unflushed: u32,
    /// Links made and removed.
    changes: u64,
}

impl Mfs<'_> {
    fn flush(&mut self) -> Result<(), RpcError> {
        self.rpc.call("files/flush", &[("arg", &self.root)])?;
        self.unflushed = 0;
        Ok(())
    }

    fn link(&mut self, cid: &str, to: &str) -> Result<(), RpcError> {
        if self.unflushed >= FLUSH_EVERY {
            self.flush()?;
        }
        let from = format!("/ipfs/{cid}");
        let args = [
            ("arg", from.as_str()),
            ("arg", to),
            ("flush", "false"),
            ("parents", "true"),
        ];
        match self.rpc.call("files/cp", &args) {
            Ok(_) => {}
            // Other clients' unflushed changes count against the same limit.
            Err(RpcError::Failed { message, .. }) if message.contains("unflushed") => {
                self.flush()?;
                self.rpc.call("files/cp", &args)?;
            }
            Err(e) => return Err(e),
        }
        self.unflushed += 1;
        self.changes += 1;
        Ok(())
    }

    fn remove(&mut self, path: &str) -> Result<(), RpcError> {
        // `files/rm` always flushes.
        self.rpc.call(
            "files/rm",
            &[("arg", path), ("recursive", "true"), ("force", "true")],
        )?;
        self.unflushed = 0;
        self.changes += 1;
        Ok(())
    }

    /// Makes the directory at `rel` hold exactly `want` (and the view's own file in the root).
    fn sync_dir(&mut self, rel: &str, want: &Dir) -> Result<(), RpcError> {
        let path = if rel.is_empty() {
            self.root.clone()
        } else {
            format!("{}/{rel}", self.root)
        };
        let have = match stat(self.rpc, &path)? {
            Some((cid, true)) => list(self.rpc, &cid)?,
            other => {
                if other.is_some() {
                    self.remove(&path)?;
                }
                self.rpc.call(
                    "files/mkdir",
                    &[("arg", &path), ("parents", "true"), ("cid-version", "1")],
                )?;
                BTreeMap::new()
            }
        };
        for (name, cid) in &have {
            let keep = want.files.get(name) == Some(cid)
                || want.subdirs.contains(name)
                || (rel.is_empty() && name == JSON_NAME)
                || (rel.starts_with("updates/") && name == HEAD_NAME);
            if !keep {
                self.remove(&format!("{path}/{name}"))?;
            }
        }
        for (name, cid) in &want.files {
            if have.get(name) != Some(cid) {
                self.link(cid, &format!("{path}/{name}"))?;
            }
        }
        Ok(())
    }
}

/// What [`update`] did.
pub struct Updated {
    pub root: String,
    pub name: String,
    /// Links made and removed; 0 when the view already matched the state.
    pub changes: u64,
}

/// Makes the root match the state, writes `pacxfer.json`, publishes.
pub fn update(rpc: &Rpc, state: &mut State, job: &Job) -> Result<Updated, PublishError> {
    let root = format!("{MFS_BASE}/{}", job.ipns_key);
    let (tree, digest) = wanted(state)?;
    let current = stat(rpc, &root)?;
    let recorded = state.meta("root")?;
    let clean = matches!(&current, Some((cid, true)) if Some(cid) == recorded.as_ref())
        && state.meta("view")?.as_deref() == Some(digest.as_str());
    let mut changes = 0;
    if !clean {
        let mut mfs = Mfs {
            rpc,
            root: root.clone(),
            unflushed: 0,
            changes: 0,
        };
        for (rel, dir) in &tree {
            mfs.sync_dir(rel, dir)?;
        }
        mfs.flush()?;
        changes = mfs.changes;
    }
    let files = state.files()?;
    let listings = state.listings()?;
    let dbfiles = state.dbfiles()?;

    // What clients read to judge the view's age and origin.
    let published = now();
    write_heads(rpc, state, &root)?;
    let doc = serde_json::json!({
        "format": "pacxfer-cache-1",
        "published": published,
        "mirror": job.mirror.as_deref().map(|m| crate::ui::shown::redact(m).into_owned()),
        "arch": job.arch,
        "repos": dbfiles.iter().filter(|f| f.name.ends_with(".db")).map(|f| serde_json::json!({
            "repo": f.repo,
            "arch": f.arch,
            "db_sha256": f.sha256,
            "packages": listings.iter().filter(|l| l.repo == f.repo && l.arch == f.arch).count(),
        })).collect::<Vec<_>>(),
        "files": files.len(),
        "generator": crate::USER_AGENT,
    });
    let text = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    rpc.upload(
        "files/write",
        &[
            ("arg", &format!("{root}/{JSON_NAME}")),
            ("create", "true"),
            ("truncate", "true"),
            ("parents", "true"),
        ],
        JSON_NAME,
        &text[..],
    )?;
    rpc.call("files/flush", &[("arg", &root)])?;
    let stat = rpc.call("files/stat", &[("arg", &root)])?;
    let root_cid = stat["Hash"]
        .as_str()
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric()))
        .ok_or_else(|| {
            PublishError::Rpc(RpcError::BadAnswer {
                command: "files/stat".into(),
                why: "no root CID".into(),
            })
        })?
        .to_string();

    let keys = rpc.call("key/list", &[])?;
    let exists = keys["Keys"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|k| k["Name"].as_str() == Some(job.ipns_key.as_str()));
    if !exists {
        rpc.call(
            "key/gen",
            &[("arg", job.ipns_key.as_str()), ("type", "ed25519")],
        )?;
    }
    let done = rpc.call(
        "name/publish",
        &[
            ("arg", &format!("/ipfs/{root_cid}")),
            ("key", job.ipns_key.as_str()),
            ("allow-offline", "true"),
        ],
    )?;
    let name = done["Name"].as_str().unwrap_or_default().to_string();
    state.set_meta(&[
        ("root", &root_cid),
        ("view", &digest),
        ("published", &published.to_string()),
        ("name", &name),
    ])?;
    Ok(Updated {
        root: root_cid,
        name,
        changes,
    })
}
