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

    /// The MFS path of the file with this SHA-256.
    pub fn mfs_path(sha256: &[u8; 32]) -> String {
        format!("{MFS_DIR}/{}", hex::encode(sha256))
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

    /// Adds a file (`file`, read from its position to its end) without linking or pinning
    /// it, hashing with `algos` what it sends: the CID, and the digests and length of exactly
    /// the bytes the node got. The caller links it (`link_source`) only when those match; an
    /// unlinked, unpinned addition goes with the node's next garbage collection.
    pub fn add_hashed(
        &self,
        file: std::fs::File,
        name: &str,
        algos: &[Algo],
    ) -> Result<(String, Vec<Sum>, u64), RpcError> {
        let mut args: Vec<(&str, &str)> = PROFILE.to_vec();
        args.push(("pin", "false"));
        let mut reader = HashingReader::new(file, algos);
        let added = self.rpc.add_open(&mut reader, name, &args)?;
        let cid = added.hash;
        if cid.is_empty() || !cid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(RpcError::BadAnswer {
                command: "add".into(),
                why: format!("{cid:?} is not a CID"),
            });
        }
        let (sums, len) = reader.sums();
        Ok((cid, sums, len))
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
        let mut rels: Vec<(String, String)> = vec![(hex::encode(sha256), MFS_DIR.to_string())];
        for sum in others
            .iter()
            .filter(|s| s.algo.strong() && s.algo != Algo::Sha256)
        {
            rels.push((sum.rel_path(), format!("{MFS_DIR}/sources/{}", sum.algo)));
        }
        if self.pin {
            self.rpc.call("pin/add", &[("arg", cid)])?;
        }
        let mut made = false;
        for (rel, dir) in rels {
            let target = format!("{MFS_DIR}/{rel}");
            match self.seeded_at(&rel)? {
                Some(s) if s.cid == cid => continue,
                Some(_) => {
                    self.rpc.call("files/rm", &[("arg", &target)])?;
                }
                None => {}
            }
            self.rpc
                .call("files/mkdir", &[("arg", &dir), ("parents", "true")])?;
            match self.rpc.call(
                "files/cp",
                &[("arg", &format!("/ipfs/{cid}")), ("arg", &target)],
            ) {
                Ok(_) => made = true,
                Err(RpcError::Failed { message, .. })
                    if message.contains("already exists")
                        || message.contains("already has entry") => {}
                Err(e) => return Err(e),
            }
        }
        let cid = cid.to_string();
        Ok(if made {
            Outcome::Added { cid }
        } else {
            Outcome::Present { cid }
        })
    }

    /// Adds the file at `path`, whose SHA-256 and size a database lists, and links it as
    /// `/pacxfer/<sha256>`; a copy of that size already there is left as it is.
    pub fn seed(&self, path: &Path, sha256: &[u8; 32], size: u64) -> Result<Outcome, RpcError> {
        let target = Sharer::mfs_path(sha256);
        let stale = match self.seeded(sha256)? {
            Some(s) if s.size == size => return Ok(Outcome::Present { cid: s.cid }),
            Some(_) => true,
            None => false,
        };
        let mut args: Vec<(&str, &str)> = PROFILE.to_vec();
        args.push(("pin", if self.pin { "true" } else { "false" }));
        let name = hex::encode(sha256);
        let added = self.rpc.add_file(path, &name, &args)?;
        if !added.hash.bytes().all(|b| b.is_ascii_alphanumeric()) || added.hash.is_empty() {
            return Err(RpcError::BadAnswer {
                command: "add".into(),
                why: format!("{:?} is not a CID", added.hash),
            });
        }
        self.rpc
            .call("files/mkdir", &[("arg", MFS_DIR), ("parents", "true")])?;
        if stale {
            self.rpc.call("files/rm", &[("arg", &target)])?;
        }
        let source = format!("/ipfs/{}", added.hash);
        match self
            .rpc
            .call("files/cp", &[("arg", &source), ("arg", &target)])
        {
            Ok(_) => {}
            // Another pacxfer linked it meanwhile.
            Err(RpcError::Failed { message, .. })
                if message.contains("already exists") || message.contains("already has entry") => {}
            Err(e) => return Err(e),
        }
        Ok(Outcome::Added { cid: added.hash })
    }
}

/// Opens a file to share: never through a symbolic link, never blocking on a FIFO, and only
/// a regular file.
pub fn open_regular(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(file)
}

/// SHA-256 and length of a file.
pub fn hash_file(path: &Path) -> std::io::Result<([u8; 32], u64)> {
    let (sums, len) = crate::makepkg::sums::hash_file(path, &[Algo::Sha256])?;
    let sha256 = sums
        .first()
        .and_then(|s| <[u8; 32]>::try_from(s.digest.as_slice()).ok())
        .ok_or_else(|| std::io::Error::other("no SHA-256 computed"))?;
    Ok((sha256, len))
}
