//! Sharing on a LAN: how one machine's node learns, from the SHA-256 alone, the CID of a file
//! that another machine on the same network seeded.
//!
//! Each machine that seeds (`pacxfer seed`, `[share] after_fetch`) links its files as
//! `/pacxfer/<sha256>` in its node's MFS ([`crate::ipfs::seed`]) and, after each change,
//! publishes that directory under the node's own key ([`announce`]). A node's own key is its
//! peer ID, so the directory of every peer is `/ipns/<peer ID>`, and the peers are the ones the
//! node is connected to: Kubo finds those on a LAN by itself (mDNS). To find a file, pacxfer
//! asks its own node for the peers connected over a LAN address ([`lan_peers`]), resolves
//! each one's name afresh (the LAN DHT answers within milliseconds; Kubo's own cache of names
//! was seen to answer with a directory replaced many minutes before) and stats `/ipfs/<root>/<sha256>` ([`Finder::find`]). All of
//! it goes through the user's own node; nothing is trusted: the CID only names what to ask
//! for, and the transfer verifies the bytes.
//!
//! A peer that has never published a directory (no pacxfer there) is remembered for
//! [`NO_VIEW_FOR`] so the next files do not ask again. A peer that is no longer connected is
//! not asked at all.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::ipfs::rpc::{Rpc, RpcError};
use crate::ipfs::seed::MFS_DIR;

/// The longest list of LAN peers asked about one file.
pub const PEERS_MAX: usize = 64;

/// How many peers are asked at once.
const PARALLEL: usize = 16;

/// The TTL written into this node's record: how long other nodes may answer from their cache
/// before they look again. Short, so a file seeded now is found within seconds.
pub const RECORD_TTL: &str = "15s";

/// How long a record stays valid without being republished (Kubo republishes its own).
pub const RECORD_LIFETIME: &str = "48h";

/// How long a peer without a directory is not asked again.
pub const NO_VIEW_FOR: Duration = Duration::from_secs(600);

/// How long a peer that answered nothing in time is not asked again.
pub const SILENT_FOR: Duration = Duration::from_secs(60);

/// A copy of the file that LAN peers list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanCopy {
    pub cid: String,
    /// The size the peer's node gives (unknown for one raw block, which is not fetched to
    /// ask).
    pub size: Option<u64>,
    /// The peers whose directories list it.
    pub peers: Vec<String>,
}

/// What asking the LAN peers about one file found.
#[derive(Debug, Default)]
pub struct Found {
    /// The copies, one per CID (every pacxfer adds with the same settings, so usually one).
    pub copies: Vec<LanCopy>,
    /// Peers that have published no directory (remember them).
    pub no_view: Vec<String>,
    /// Peers that did not answer in time or answered something unusable, with why.
    pub failed: Vec<(String, String)>,
    /// Peers not asked before pacxfer's own time for the lookup ran out (not their fault).
    pub unknown: Vec<String>,
}

/// Whether `addr`, a connection's remote multiaddr, is on this machine's network: a private,
/// shared (CGNAT) or link-local IPv4 address, or a unique-local or link-local IPv6 address,
/// reached directly (not through a relay). Loopback is not: a peer there is a node on this
/// machine, possibly a less privileged user's.
pub fn is_lan_addr(addr: &str) -> bool {
    if addr.contains("/p2p-circuit") {
        return false;
    }
    // A link-local IPv6 address comes with its zone: `/ip6zone/<interface>/ip6/fe80::...`.
    let addr = match addr.strip_prefix("/ip6zone/") {
        Some(rest) => rest.find('/').map_or("", |at| &rest[at..]),
        None => addr,
    };
    let addr = if addr.starts_with('/') {
        addr
    } else {
        return false;
    };
    let mut parts = addr.split('/').skip(1);
    let (Some(proto), Some(host)) = (parts.next(), parts.next()) else {
        return false;
    };
    match proto {
        "ip4" => host.parse::<Ipv4Addr>().is_ok_and(is_lan_v4),
        "ip6" => host.parse::<Ipv6Addr>().is_ok_and(is_lan_v6),
        _ => false,
    }
}

fn is_lan_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    // Not loopback: a peer there runs on this very machine, maybe as a less privileged user.
    ip.is_private()
        || ip.is_link_local()
        // 100.64.0.0/10, shared address space: carrier-grade NAT and many community networks.
        || (o[0] == 100 && (o[1] & 0xc0) == 64)
}

fn is_lan_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_lan_v4(v4);
    }
    let first = ip.segments()[0];
    (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
}

/// Whether `id` looks like a libp2p peer ID (base58btc multihash) and nothing else.
pub fn is_peer_id(id: &str) -> bool {
    (id.starts_with("12D3Koo") || id.starts_with("Qm"))
        && (40..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() && !matches!(b, b'0' | b'O' | b'I' | b'l'))
}

/// The peers the node is connected to, each once, in the node's order, with whether one of
/// its connections is over a LAN address.
fn connected(rpc: &Rpc) -> Result<Vec<(String, bool)>, RpcError> {
    let answer = rpc.call("swarm/peers", &[])?;
    let mut out: Vec<(String, bool)> = Vec::new();
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for p in answer["Peers"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let (Some(addr), Some(peer)) = (p["Addr"].as_str(), p["Peer"].as_str()) else {
            continue;
        };
        if !is_peer_id(peer) {
            continue;
        }
        let lan = is_lan_addr(addr);
        match seen.get(peer) {
            Some(&at) => out[at].1 |= lan,
            None => {
                seen.insert(peer, out.len());
                out.push((peer.to_string(), lan));
            }
        }
    }
    Ok(out)
}

/// The peers the node is connected to over a LAN address, each once, in the node's order; at
/// most [`PEERS_MAX`].
pub fn lan_peers(rpc: &Rpc) -> Result<Vec<String>, RpcError> {
    Ok(connected(rpc)?
        .into_iter()
        .filter_map(|(peer, lan)| lan.then_some(peer))
        .take(PEERS_MAX)
        .collect())
}

/// How many peers the node is connected to, and how many of them over a LAN address.
pub fn peer_counts(rpc: &Rpc) -> Result<(usize, usize), RpcError> {
    let peers = connected(rpc)?;
    Ok((peers.len(), peers.iter().filter(|(_, lan)| *lan).count()))
}

/// What one peer's directory says about one file.
enum PeerAnswer {
    Has { cid: String, size: Option<u64> },
    Lacks,
    NoView,
    Failed(String),
    Unknown,
}

/// Asks LAN peers' directories for files by SHA-256, through the user's node.
pub struct Finder<'a> {
    rpc: &'a Rpc,
    /// How long a peer's name may take to resolve when the node has no fresh answer.
    resolve_for: Duration,
}

impl<'a> Finder<'a> {
    pub fn new(rpc: &'a Rpc, resolve_for: Duration) -> Finder<'a> {
        Finder { rpc, resolve_for }
    }

    /// The copies of the file with this SHA-256 that `peers` list.
    pub fn find(&self, sha256: &[u8; 32], peers: &[String]) -> Found {
        self.find_at(&hex::encode(sha256), peers)
    }

    /// The copies `peers` list at `<root>/<rel>` (a SHA-256, or `sources/<algo>/<hex>` for a
    /// build source).
    pub fn find_at(&self, rel: &str, peers: &[String]) -> Found {
        let name = rel.to_string();
        let mut answers: Vec<(String, PeerAnswer)> = Vec::new();
        for group in peers.chunks(PARALLEL) {
            std::thread::scope(|s| {
                let handles: Vec<_> = group
                    .iter()
                    .map(|peer| {
                        let name = name.as_str();
                        s.spawn(move || (peer.clone(), self.ask(peer, name)))
                    })
                    .collect();
                for h in handles {
                    if let Ok(answer) = h.join() {
                        answers.push(answer);
                    }
                }
            });
        }
        let mut found = Found::default();
        for (peer, answer) in answers {
            match answer {
                PeerAnswer::Has { cid, size } => {
                    match found
                        .copies
                        .iter_mut()
                        .find(|c| c.cid == cid && c.size == size)
                    {
                        Some(c) => c.peers.push(peer),
                        None => found.copies.push(LanCopy {
                            cid,
                            size,
                            peers: vec![peer],
                        }),
                    }
                }
                PeerAnswer::Lacks => {}
                PeerAnswer::NoView => found.no_view.push(peer),
                PeerAnswer::Failed(why) => found.failed.push((peer, why)),
                PeerAnswer::Unknown => found.unknown.push(peer),
            }
        }
        found
    }

    /// One peer: its directory's root, then the entry.
    fn ask(&self, peer: &str, name: &str) -> PeerAnswer {
        let secs = format!("{}ms", self.resolve_for.as_millis().max(1));
        let asked = std::time::Instant::now();
        let resolved = self.rpc.call(
            "name/resolve",
            &[
                ("arg", &format!("/ipns/{peer}")),
                ("recursive", "false"),
                // Kubo's own cache of names can answer with a directory long replaced.
                ("nocache", "true"),
                ("dht-record-count", "1"),
                ("dht-timeout", &secs),
            ],
        );
        let root = match resolved {
            Ok(v) => match v["Path"].as_str().and_then(|p| p.strip_prefix("/ipfs/")) {
                Some(root) if is_cid(root) => root.to_string(),
                _ => return PeerAnswer::Failed("its name resolves to no /ipfs/ path".into()),
            },
            // Kubo: "could not resolve name", both for a peer that has no record and for one
            // that did not answer within the DHT bound: the time taken tells them apart.
            Err(RpcError::Failed { message, .. })
                if message.contains("could not resolve") || message.contains("not found") =>
            {
                return if asked.elapsed() >= self.resolve_for.mul_f32(0.9) {
                    PeerAnswer::Failed(format!(
                        "its name did not resolve within {}ms",
                        self.resolve_for.as_millis()
                    ))
                } else {
                    PeerAnswer::NoView
                };
            }
            Err(RpcError::Timeout { .. }) => return PeerAnswer::Unknown,
            Err(e) => return PeerAnswer::Failed(e.to_string()),
        };
        // `resolve` walks the directory without fetching the file's own block: `files/stat`
        // would bring a file of one raw block (up to 1 MiB) whole into the node.
        let cid = match self
            .rpc
            .call("resolve", &[("arg", &format!("/ipfs/{root}/{name}"))])
        {
            Ok(v) => match v["Path"].as_str().and_then(|p| p.strip_prefix("/ipfs/")) {
                Some(cid) if is_cid(cid) => cid.to_string(),
                _ => return PeerAnswer::Failed("its entry resolves to no /ipfs/ path".into()),
            },
            // Kubo: `no link named "<name>" under <root>`.
            Err(RpcError::Failed { message, .. })
                if message.contains("no link named") || message.contains("not exist") =>
            {
                return PeerAnswer::Lacks
            }
            Err(RpcError::Timeout { .. }) => return PeerAnswer::Unknown,
            Err(e) => return PeerAnswer::Failed(e.to_string()),
        };
        if is_raw_block(&cid) {
            return PeerAnswer::Has { cid, size: None };
        }
        // A larger file's root block is small; its size lets a wrong entry be passed over
        // before a byte of it is fetched.
        match self
            .rpc
            .call("files/stat", &[("arg", &format!("/ipfs/{cid}"))])
        {
            Ok(stat) => match (stat["Type"].as_str(), stat["Size"].as_u64()) {
                (Some("file"), Some(size)) => PeerAnswer::Has {
                    cid,
                    size: Some(size),
                },
                _ => PeerAnswer::Lacks,
            },
            Err(RpcError::Timeout { .. }) => PeerAnswer::Unknown,
            Err(e) => PeerAnswer::Failed(e.to_string()),
        }
    }
}

/// Whether `cid` names one raw block (CIDv1, codec raw, sha2-256: `bafkrei...`): the whole
/// file is that block, at most 1 MiB.
fn is_raw_block(cid: &str) -> bool {
    cid.starts_with("bafkrei")
}

/// Whether `text` can be a CID (letters and digits only).
fn is_cid(text: &str) -> bool {
    !text.is_empty() && text.len() <= 128 && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The entry that marks a directory as pacxfer's: an empty file (the identity CID of no
/// bytes, which every node holds). A record of the node's own key that points at a directory
/// without it was published by someone else, and is never replaced without `--force`.
pub const MARKER: &str = ".pacxfer-lan";

/// Who published what the node's own name points at now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// No record: the name is free.
    Nobody,
    /// A `/pacxfer` directory (marked, or the one pacxfer published last).
    Pacxfer,
    /// Something else (a site, another program's directory): this path.
    Other(String),
    /// Cannot be told (the directory's block is no longer in the node): why.
    Unknown(String),
}

/// Who published the record of the node's own key `peer`, asking only the node's own store;
/// `last` is the root pacxfer published last on this machine, when known.
pub fn owner(rpc: &Rpc, peer: &str, last: Option<&str>) -> Result<Owner, RpcError> {
    let path = match rpc.call(
        "name/resolve",
        &[
            ("arg", &format!("/ipns/{peer}")),
            ("recursive", "false"),
            ("offline", "true"),
        ],
    ) {
        Ok(v) => v["Path"].as_str().unwrap_or("").to_string(),
        Err(RpcError::Failed { message, .. })
            if message.contains("could not resolve") || message.contains("not found") =>
        {
            return Ok(Owner::Nobody)
        }
        Err(e) => return Err(e),
    };
    let Some(root) = path.strip_prefix("/ipfs/").filter(|r| is_cid(r)) else {
        return Ok(Owner::Other(path));
    };
    if last == Some(root) {
        return Ok(Owner::Pacxfer);
    }
    match rpc.call(
        "resolve",
        &[
            ("arg", &format!("/ipfs/{root}/{MARKER}")),
            ("offline", "true"),
        ],
    ) {
        Ok(_) => Ok(Owner::Pacxfer),
        // A block the node no longer holds cannot tell; anything else (no such entry, a file
        // rather than a directory) is not pacxfer's directory.
        Err(RpcError::Failed { message, .. })
            if message.contains("not found") || message.contains("offline") =>
        {
            Ok(Owner::Unknown(message))
        }
        Err(RpcError::Failed { .. }) => Ok(Owner::Other(path)),
        Err(e) => Err(e),
    }
}

/// Publishes this node's `/pacxfer` directory under its own key, so LAN peers find what it
/// seeded. When another pacxfer changed the directory meanwhile, publishes again, so the
/// record never names an older directory than the last seeding left. Returns the root. The
/// caller has made sure the record is pacxfer's to replace ([`owner`]).
pub fn announce(rpc: &Rpc) -> Result<String, RpcError> {
    match rpc.call(
        "files/cp",
        &[
            ("arg", "/ipfs/bafkqaaa"),
            ("arg", &format!("{MFS_DIR}/{MARKER}")),
        ],
    ) {
        Ok(_) => {}
        Err(RpcError::Failed { message, .. })
            if message.contains("already exists") || message.contains("already has entry") => {}
        Err(e) => return Err(e),
    }
    let mut last = String::new();
    for _ in 0..3 {
        let root = mfs_root(rpc)?;
        if root == last {
            return Ok(root);
        }
        rpc.call(
            "name/publish",
            &[
                ("arg", &format!("/ipfs/{root}")),
                ("key", "self"),
                ("resolve", "false"),
                ("allow-offline", "true"),
                ("ttl", RECORD_TTL),
                ("lifetime", RECORD_LIFETIME),
            ],
        )?;
        last = root;
    }
    Ok(last)
}

/// The CID of this node's `/pacxfer` directory.
pub fn mfs_root(rpc: &Rpc) -> Result<String, RpcError> {
    let stat = rpc.call("files/stat", &[("arg", MFS_DIR), ("hash", "true")])?;
    match stat["Hash"].as_str() {
        Some(cid) if is_cid(cid) => Ok(cid.to_string()),
        _ => Err(RpcError::BadAnswer {
            command: "files/stat".into(),
            why: format!("no CID for {MFS_DIR}"),
        }),
    }
}

/// What this node's own name resolves to now, if anything (for `doctor`).
pub fn own_record(rpc: &Rpc, peer: &str) -> Result<Option<String>, RpcError> {
    match rpc.call(
        "name/resolve",
        &[
            ("arg", &format!("/ipns/{peer}")),
            ("recursive", "false"),
            ("nocache", "true"),
            ("dht-record-count", "1"),
            ("dht-timeout", "1s"),
        ],
    ) {
        Ok(v) => Ok(v["Path"]
            .as_str()
            .and_then(|p| p.strip_prefix("/ipfs/"))
            .filter(|c| is_cid(c))
            .map(str::to_string)),
        Err(RpcError::Failed { message, .. }) if message.contains("could not resolve") => Ok(None),
        Err(e) => Err(e),
    }
}

/// The node's own peer ID.
pub fn own_id(rpc: &Rpc) -> Result<String, RpcError> {
    let id = rpc.call("id", &[])?;
    match id["ID"].as_str() {
        Some(peer) if is_peer_id(peer) => Ok(peer.to_string()),
        _ => Err(RpcError::BadAnswer {
            command: "id".into(),
            why: "no peer ID".into(),
        }),
    }
}

/// The cache file naming LAN peers not to ask for a while.
const SKIPPED: &str = "lan-skipped";

/// The peers not to ask now, with until when (milliseconds since 1970).
pub fn skipped(places: &crate::cache::Places, now_ms: u64) -> Vec<(String, u64)> {
    places
        .read_first(SKIPPED, 64 * 1024)
        .map(|b| parse_no_view(&String::from_utf8_lossy(&b), now_ms))
        .unwrap_or_default()
}

/// Remembers `peers` as not to be asked for `how_long`, beside those already remembered.
pub fn skip(places: &crate::cache::Places, peers: &[String], how_long: Duration) {
    if peers.is_empty() {
        return;
    }
    let now = crate::unix_millis();
    let until = now.saturating_add(how_long.min(NO_VIEW_FOR).as_millis() as u64);
    // The newest first, so that a full list drops the oldest.
    let mut all: Vec<(String, u64)> = peers.iter().map(|p| (p.clone(), until)).collect();
    all.extend(
        skipped(places, now)
            .into_iter()
            .filter(|(p, _)| !peers.contains(p)),
    );
    let text: String = all
        .iter()
        .take(PEERS_MAX * 4)
        .map(|(peer, until)| format!("{peer} {until}\n"))
        .collect();
    places.write_first(SKIPPED, text.as_bytes());
}

/// Peers remembered not to be asked, as kept in the cache: one `PEER UNTIL_MS` per line.
pub fn parse_no_view(text: &str, now_ms: u64) -> Vec<(String, u64)> {
    let longest = now_ms.saturating_add(NO_VIEW_FOR.as_millis() as u64);
    text.lines()
        .take(PEERS_MAX * 4)
        .filter_map(|line| {
            let (peer, until) = line.split_once(' ')?;
            let until: u64 = until.parse().ok()?;
            (is_peer_id(peer) && until > now_ms && until <= longest)
                .then(|| (peer.to_string(), until))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lan_addresses() {
        for a in [
            "/ip4/10.1.2.3/tcp/4001",
            "/ip4/192.168.1.5/udp/4001/quic-v1",
            "/ip4/172.20.0.1/tcp/4001",
            "/ip4/100.64.3.4/tcp/4001",
            "/ip4/169.254.9.9/tcp/4001",
            "/ip6/fd00::1/tcp/4001",
            "/ip6/fe80::1/tcp/4001",
            "/ip6zone/eth0/ip6/fe80::1/tcp/4001",
            "/ip6/::ffff:192.168.0.2/tcp/4001",
        ] {
            assert!(is_lan_addr(a), "{a}");
        }
        for a in [
            "/ip4/8.8.8.8/tcp/4001",
            "/ip4/127.0.0.1/tcp/4001",
            "/ip6/::1/tcp/4001",
            "/ip6zone/eth0",
            "/ip4/100.128.0.1/tcp/4001",
            "/ip6/2001:db8::1/tcp/4001",
            "/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWx/p2p-circuit",
            "/dns4/example.org/tcp/4001",
            "/ip4/not-an-ip/tcp/1",
            "",
        ] {
            assert!(!is_lan_addr(a), "{a}");
        }
    }

    #[test]
    fn peer_ids() {
        assert!(is_peer_id(
            "12D3KooWRMMXVcsK7DyJL3dHMsuQVzpSMtPtcVVaZUPhooz5EC3P"
        ));
        assert!(is_peer_id("QmYCXXrKGQMWf2r8mMbGhSKxd3WCT5qsGcwmHHZJeHHDG9"));
        assert!(!is_peer_id("12D3Koo/../x"));
        assert!(!is_peer_id(
            "k51qzi5uqu5dlxoqbuxufabro92pek3y28ll1kgkn2fxcdyw06uu0dmhf4hw1q"
        ));
        assert!(!is_peer_id(&format!("12D3Koo{}", "a".repeat(100))));
    }

    #[test]
    fn no_view_records_are_bounded() {
        let now = 1_000_000;
        let peer = "12D3KooWRMMXVcsK7DyJL3dHMsuQVzpSMtPtcVVaZUPhooz5EC3P";
        let text = format!(
            "{peer} {}\n{peer} {}\n{peer} {}\nbad line\nx 5\n",
            now + 1000,
            now - 1,
            now + 10_000_000_000
        );
        assert_eq!(
            parse_no_view(&text, now),
            vec![(peer.to_string(), now + 1000)]
        );
    }
}
