//! CID derivation: the one case where an IPFS CID follows from a SHA-256 alone.
//!
//! A file stored as a single raw block (CIDv1, codec raw 0x55, multihash sha2-256 0x12 of
//! length 32) has the CID `b` + base32-lower(0x01 0x55 0x12 0x20 <sha256>), which starts with
//! `bafkrei`. Larger files have a dag-pb root whose CID depends on how they were added, so it
//! cannot be computed here; it must come from the database (`%CID%`) or a path layout.

use crate::db::entry::Entry;

/// The CIDv1 of a file stored as one raw block with this SHA-256.
pub fn raw_block_cid(sha256: &[u8; 32]) -> String {
    let mut bytes = Vec::with_capacity(36);
    bytes.extend_from_slice(&[0x01, 0x55, 0x12, 0x20]);
    bytes.extend_from_slice(sha256);
    let mut cid = String::with_capacity(60);
    cid.push('b');
    cid.push_str(
        &data_encoding::BASE32_NOPAD
            .encode(&bytes)
            .to_ascii_lowercase(),
    );
    cid
}

/// Where an entry's CID comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KnownCid {
    /// `%CID%` in the database.
    Database(String),
    /// Derived: the file fits in one raw block.
    RawBlock(String),
}

impl KnownCid {
    pub fn as_str(&self) -> &str {
        match self {
            KnownCid::Database(c) | KnownCid::RawBlock(c) => c,
        }
    }
}

/// The CID of an entry, when one is known: `%CID%` first, else the raw-block CID for a file
/// no larger than `raw_block_max` bytes.
pub fn for_entry(entry: &Entry, raw_block_max: u64) -> Option<KnownCid> {
    if let Some(cid) = &entry.cid {
        return Some(KnownCid::Database(cid.clone()));
    }
    let (sha256, size) = entry.verifiable()?;
    (size <= raw_block_max).then(|| KnownCid::RawBlock(raw_block_cid(&sha256)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_raw_cid() {
        // The raw-leaf CIDv1 of the empty file, as IPFS nodes report it.
        let sha = crate::db::entry::parse_sha256(
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        )
        .expect("hex");
        assert_eq!(
            raw_block_cid(&sha),
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        );
    }

    #[test]
    fn hello_world_raw_cid() {
        // sha256("hello world") with raw leaves and CIDv1.
        let sha = crate::db::entry::parse_sha256(
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9",
        )
        .expect("hex");
        assert_eq!(
            raw_block_cid(&sha),
            "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
        );
    }
}
