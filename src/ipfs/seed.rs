//! Sharing back, the engine of `pacxfer seed` (`commands/seed.rs` is the command): putting a
//! package file this machine holds into its own IPFS node, so that
//! the node serves it to the LAN and the world, and finding it there again by SHA-256.
//!
//! A file is added with Kubo's `unixfs-v1-2025` import settings spelled out (CIDv1, raw
//! leaves, sha2-256, 1 MiB chunks), so the same file gets the same CID on every machine and
//! a file of up to 1 MiB keeps the CID pacxfer derives from its SHA-256. It is then linked into
//! the node's MFS as `/pacxfer/<sha256>`: the node keeps what MFS links from garbage
//! collection without a pin, and `files/stat` finds it by SHA-256 alone, large files included.
//!
//! Only files whose SHA-256 and size a sync database lists are ever shared (the caller checks
//! that); this module trusts its caller on that and the node on nothing: a seeded copy is
//! used as a source like any other, and verified.

use std::path::Path;

use std::time::{Duration, Instant};

use crate::ipfs::rpc::{Rpc, RpcError};
use crate::makepkg::sums::{Algo, HashingReader, Sum};

/// Where seeded files are linked in the node's MFS.
pub const MFS_DIR: &str = "/pacxfer";

/// Kubo's `unixfs-v1-2025` import settings, as `add` arguments.
pub const PROFILE: &[(&str, &str)] = &[
    ("cid-version", "1"),
    ("raw-leaves", "true"),
    ("chunker", "size-1048576"),
    ("hash", "sha2-256"),
];

/// The longest one call to the node may take when nothing else bounds it.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// A copy the node holds under `/pacxfer/<sha256>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seeded {
    pub cid: String,
    pub size: u64,
}

/// What seeding one file did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Added and linked.
    Added { cid: String },
    /// The node already held it.
    Present { cid: String },
}

/// The user's node, for sharing.
pub struct Sharer {
    rpc: Rpc,
    pin: bool,
}

impl Sharer {
    /// The node whose API is at `api` (`auth` in `ipfs --api-auth` form), pinning what it
    /// adds when `pin` says so; calls end by `deadline` when one is given.
    pub fn new(
        api: &str,
        auth: Option<&str>,
        pin: bool,
        deadline: Option<Instant>,
    ) -> Result<Sharer, String> {
        let rpc = Rpc::new(api, auth, CALL_TIMEOUT)?;
        Ok(Sharer {
            rpc: match deadline {
                Some(at) => rpc.until(at),
                None => rpc,
            },
            pin,
        })
    }

    /// The node's API client.
    pub fn rpc(&self) -> &Rpc {
        &self.rpc
    }

    /// The node's API address, for messages.
    pub fn endpoint(&self) -> String {
        self.rpc.endpoint().to_string()
    }

    /// The copy of the file with this SHA-256 the node holds, if any.
    pub fn seeded(&self, sha256: &[u8; 32]) -> Result<Option<Seeded>, RpcError> {
        self.seeded_at(&hex::encode(sha256))
    }

    /// The copy the node holds at `/pacxfer/<rel>` (a SHA-256, or `sources/<algo>/<hex>` for
    /// a build source), if any.
    pub fn seeded_at(&self, rel: &str) -> Result<Option<Seeded>, RpcError> {
        match self
            .rpc
            .call("files/stat", &[("arg", &format!("{MFS_DIR}/{rel}"))])
        {
            Ok(stat) => {
                let cid = stat["Hash"].as_str().unwrap_or("");
                let kind = stat["Type"].as_str().unwrap_or("");
                let size = stat["Size"].as_u64();
                match size {
                    Some(size)
                        if kind == "file"
                            && !cid.is_empty()
                            && cid.bytes().all(|b| b.is_ascii_alphanumeric()) =>
                    {
                        Ok(Some(Seeded {
                            cid: cid.to_string(),
                            size,
                        }))
                    }
                    _ => Ok(None),
                }
            }
            // Kubo: "file does not exist".
            Err(RpcError::Failed { message, .. }) if message.contains("does not exist") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Where a file pinned by `sum` is linked below `/pacxfer`: `<sha256>` like a package,
    /// `sources/<algo>/<hex>` for the other sums.
    pub fn rel_of(sum: &Sum) -> String {
        match sum.algo {
            Algo::Sha256 => sum.hex(),
            _ => sum.rel_path(),
        }
    }

    /// Links a build source the node holds as `cid`, whose bytes matched its PKGBUILD's sums,
    /// as `/pacxfer/<sha256>`, like a package, and as `/pacxfer/sources/<algo>/<hex>` for each
    /// other strong sum in `others`, so that it is found by whichever sum a PKGBUILD pins; a
    /// link to anything else is replaced. Pinned with `[share] pin`.
    pub fn link_source(
        &self,
        cid: &str,
        sha256: &[u8; 32],
        others: &[Sum],
    ) -> Result<Outcome, RpcError> {
        let mut rels: Vec<String> = vec![hex::encode(sha256)];
        rels.extend(
            others
                .iter()
                .filter(|s| s.algo.strong() && s.algo != Algo::Sha256)
                .map(Sharer::rel_of),
        );
        if self.pin {
            self.rpc.call("pin/add", &[("arg", cid)])?;
        }
        let mut made = false;
        for rel in rels {
            let stale = match self.seeded_at(&rel)? {
                Some(s) if s.cid == cid => continue,
                Some(_) => true,
                None => false,
            };
            self.link(cid, &rel, stale)?;
            made = true;
        }
        let cid = cid.to_string();
        Ok(if made {
            Outcome::Added { cid }
        } else {
            Outcome::Present { cid }
        })
    }

    /// Links `/ipfs/<cid>` as `/pacxfer/<rel>`, making the directories on the way and
    /// removing a `stale` link there first; another pacxfer that linked it meanwhile is fine.
    fn link(&self, cid: &str, rel: &str, stale: bool) -> Result<(), RpcError> {
        let target = format!("{MFS_DIR}/{rel}");
        let dir = target.rsplit_once('/').map_or(MFS_DIR, |(d, _)| d);
        self.rpc
            .call("files/mkdir", &[("arg", dir), ("parents", "true")])?;
        if stale {
            self.rpc.call("files/rm", &[("arg", &target)])?;
        }
        match self.rpc.call(
            "files/cp",
            &[("arg", &format!("/ipfs/{cid}")), ("arg", &target)],
        ) {
            Ok(_) => Ok(()),
            // Another pacxfer linked it meanwhile.
            Err(RpcError::Failed { message, .. })
                if message.contains("already exists") || message.contains("already has entry") =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Adds the file at `path`, whose SHA-256 and size a database lists, and links it as
    /// `/pacxfer/<sha256>`; a copy of that size already there is left as it is.
    pub fn seed(&self, path: &Path, sha256: &[u8; 32], size: u64) -> Result<Outcome, RpcError> {
        let stale = match self.seeded(sha256)? {
            Some(s) if s.size == size => return Ok(Outcome::Present { cid: s.cid }),
            Some(_) => true,
            None => false,
        };
        let mut args: Vec<(&str, &str)> = PROFILE.to_vec();
        args.push(("pin", if self.pin { "true" } else { "false" }));
        let name = hex::encode(sha256);
        let cid = checked_cid(self.rpc.add_file(path, &name, &args)?.hash)?;
        self.link(&cid, &name, stale)?;
        Ok(Outcome::Added { cid })
    }
}

/// A CID from the node's `add`: letters and digits only, never empty, or the node's answer
/// is refused.
pub fn checked_cid(hash: String) -> Result<String, RpcError> {
    if hash.is_empty() || !hash.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(RpcError::BadAnswer {
            command: "add".into(),
            why: format!("{hash:?} is not a CID"),
        });
    }
    Ok(hash)
}

/// Adds what `file` reads (from its position to its end) with the profile's settings,
/// neither linked nor pinned, hashing with `algos` what it sends: the CID, and the digests
/// and length of exactly the bytes the node got. The caller links it only when those match;
/// an unlinked, unpinned addition goes with the node's next garbage collection.
pub fn add_hashed(
    rpc: &Rpc,
    file: std::fs::File,
    name: &str,
    algos: &[Algo],
) -> Result<(String, Vec<Sum>, u64), RpcError> {
    let mut args: Vec<(&str, &str)> = PROFILE.to_vec();
    args.push(("pin", "false"));
    let mut reader = HashingReader::new(file, algos);
    let cid = checked_cid(rpc.add_open(&mut reader, name, &args)?.hash)?;
    let (sums, len) = reader.sums();
    Ok((cid, sums, len))
}

/// SHA-256 and length of a file.
pub fn hash_file(path: &Path) -> std::io::Result<([u8; 32], u64)> {
    let (sums, len) = crate::makepkg::sums::hash_file(path, &[Algo::Sha256])?;
    let sha256 = crate::makepkg::sums::sha256_of(&sums)
        .ok_or_else(|| std::io::Error::other("no SHA-256 computed"))?;
    Ok((sha256, len))
}
