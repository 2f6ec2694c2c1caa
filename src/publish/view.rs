//! The published root in the node's MFS (`/pacxfer-publish/<key>`), made to match the state:
//! each directory is listed once (`files/ls`), and only what differs is linked or unlinked, so
//! a run with nothing new costs a few calls whatever the size of the cache, and a root that
//! was changed behind the publisher's back, or lost, is repaired from the record. Then
//! `pacxfer.json` is written, the root flushed, and published to the IPNS key.

use std::collections::{BTreeMap, BTreeSet};

use super::state::State;
use super::{now, Job, PublishError};
use crate::ipfs::rpc::{Rpc, RpcError};

/// Where published roots live in MFS.
pub const MFS_BASE: &str = "/pacxfer-publish";

/// What a directory should hold: name -> CID (files only).
type Wanted = BTreeMap<String, String>;

/// A directory's entries as the node lists them: name -> (CID, is a directory).
fn list(rpc: &Rpc, dir: &str) -> Result<BTreeMap<String, (String, bool)>, RpcError> {
    let answer = match rpc.call("files/ls", &[("arg", dir), ("long", "true"), ("U", "true")]) {
        Ok(a) => a,
        Err(RpcError::Failed { message, .. }) if message.contains("does not exist") => {
            return Ok(BTreeMap::new())
        }
        Err(e) => return Err(e),
    };
    let mut out = BTreeMap::new();
    for e in answer["Entries"].as_array().into_iter().flatten() {
        let (Some(name), Some(hash)) = (e["Name"].as_str(), e["Hash"].as_str()) else {
            continue;
        };
        // Kubo: Type 0 is a file, 1 a directory.
        out.insert(
            name.to_string(),
            (hash.to_string(), e["Type"].as_u64() == Some(1)),
        );
    }
    Ok(out)
}

/// Makes the directory `dir` hold exactly the files `wanted` (and the subdirectories in
/// `keep_dirs`); returns how many links changed.
fn sync_dir(
    rpc: &Rpc,
    dir: &str,
    wanted: &Wanted,
    keep_dirs: &BTreeSet<String>,
    keep_files: &BTreeSet<&str>,
) -> Result<u64, RpcError> {
    rpc.call(
        "files/mkdir",
        &[("arg", dir), ("parents", "true"), ("cid-version", "1")],
    )?;
    let have = list(rpc, dir)?;
    let mut changes = 0;
    for (name, (cid, is_dir)) in &have {
        let keep = if *is_dir {
            keep_dirs.contains(name)
        } else {
            wanted.get(name) == Some(cid) || keep_files.contains(name.as_str())
        };
        if !keep {
            rpc.call(
                "files/rm",
                &[("arg", &format!("{dir}/{name}")), ("recursive", "true")],
            )?;
            changes += 1;
        }
    }
    for (name, cid) in wanted {
        let there = have
            .get(name)
            .is_some_and(|(have_cid, is_dir)| !is_dir && have_cid == cid);
        if !there {
            rpc.call(
                "files/cp",
                &[
                    ("arg", &format!("/ipfs/{cid}")),
                    ("arg", &format!("{dir}/{name}")),
                ],
            )?;
            changes += 1;
        }
    }
    Ok(changes)
}

/// Makes the root match the state, writes `pacxfer.json`, publishes; returns the root's CID
/// and the IPNS name.
pub fn update(
    rpc: &Rpc,
    state: &mut State,
    job: &Job,
    _changed: bool,
) -> Result<(String, String), PublishError> {
    let root = format!("{MFS_BASE}/{}", job.ipns_key);
    let files = state.files()?;
    let cid_of: BTreeMap<&str, &str> = files
        .iter()
        .map(|f| (f.sha256.as_str(), f.cid.as_str()))
        .collect();
    let listings = state.listings()?;
    let dbfiles = state.dbfiles()?;

    // The mirror view: <repo>/os/<arch>/<filename> and the database files.
    let mut mirror: BTreeMap<(String, String), Wanted> = BTreeMap::new();
    for l in &listings {
        if let Some(cid) = cid_of.get(l.sha256.as_str()) {
            mirror
                .entry((l.repo.clone(), l.arch.clone()))
                .or_default()
                .insert(l.filename.clone(), cid.to_string());
        }
    }
    for f in &dbfiles {
        mirror
            .entry((f.repo.clone(), f.arch.clone()))
            .or_default()
            .insert(f.name.clone(), f.cid.clone());
    }
    let repos: BTreeSet<String> = mirror.keys().map(|(r, _)| r.clone()).collect();
    let by_sha: Wanted = files
        .iter()
        .map(|f| (f.sha256.clone(), f.cid.clone()))
        .collect();
    let json_name = "pacxfer.json";
    sync_dir(rpc, &root, &by_sha, &repos, &BTreeSet::from([json_name]))?;
    for repo in &repos {
        let arches: BTreeSet<String> = mirror
            .keys()
            .filter(|(r, _)| r == repo)
            .map(|(_, a)| a.clone())
            .collect();
        sync_dir(
            rpc,
            &format!("{root}/{repo}"),
            &Wanted::new(),
            &BTreeSet::from(["os".to_string()]),
            &BTreeSet::new(),
        )?;
        sync_dir(
            rpc,
            &format!("{root}/{repo}/os"),
            &Wanted::new(),
            &arches,
            &BTreeSet::new(),
        )?;
        for arch in &arches {
            let wanted = mirror
                .get(&(repo.clone(), arch.clone()))
                .cloned()
                .unwrap_or_default();
            sync_dir(
                rpc,
                &format!("{root}/{repo}/os/{arch}"),
                &wanted,
                &BTreeSet::new(),
                &BTreeSet::new(),
            )?;
        }
    }

    // What clients read to judge the view's age and origin.
    let published = now();
    let doc = serde_json::json!({
        "format": "pacxfer-cache-1",
        "published": published,
        "mirror": job.mirror.as_deref().map(|m| crate::shown::redact(m).into_owned()),
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
            ("arg", &format!("{root}/{json_name}")),
            ("create", "true"),
            ("truncate", "true"),
            ("parents", "true"),
        ],
        json_name,
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
    state.set_meta("root", &root_cid)?;
    state.set_meta("published", &published.to_string())?;
    state.set_meta("name", &name)?;
    Ok((root_cid, name))
}
