//! The ordered list of sources for one file, decided before any byte moves: the signature
//! embedded in the database, then the IPFS gateway (the node's own seeded copy and each path
//! template, asking only the local node), then copies LAN peers list (fetched through the
//! node), then, if allowed, the templates again letting the node search the network, then
//! the mirror URLs.
//!
//! Pure: no I/O happens here, so `pacxfer lookup` prints exactly what a download would try.

use crate::config::Config;
use crate::db::entry::Entry;
use crate::ipfs::cid;
use crate::ipfs::template;
use crate::makepkg::sums::Sums;
use crate::transfer::verify::Expected;

/// One place the bytes may come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The detached signature embedded in the database (`%PGPSIG%`): no network at all.
    DbSignature { repo: String, bytes: Vec<u8> },
    /// An IPFS gateway URL. `cached_only` asks the node not to search the network.
    Gateway {
        url: String,
        cached_only: bool,
        expect: Vec<Expected>,
    },
    /// A copy that LAN peers list (`ipfs::lan`), fetched through the gateway by its CID.
    Lan {
        url: String,
        peers: Vec<String>,
        expect: Vec<Expected>,
    },
    /// A mirror URL (`http(s)://` or `file://`). An empty `expect` means the file is not
    /// listed in any database and cannot be checked here.
    Mirror { url: String, expect: Vec<Expected> },
}

impl Source {
    /// Where the bytes came from, as the success line says it.
    pub fn label(&self) -> &'static str {
        match self {
            Source::DbSignature { .. } => "db-signature",
            Source::Gateway { .. } => "ipfs",
            Source::Lan { .. } => "lan",
            Source::Mirror { .. } => "mirror",
        }
    }

    /// A URL or description for lists and notes.
    pub fn describe(&self) -> String {
        match self {
            Source::DbSignature { repo, .. } => format!("%PGPSIG% in {repo}.db"),
            Source::Gateway {
                url, cached_only, ..
            } => {
                if *cached_only {
                    url.clone()
                } else {
                    format!("{url} (from the IPFS network)")
                }
            }
            Source::Lan { url, peers, .. } => format!("{url} (from LAN {})", peer_list(peers)),
            Source::Mirror { url, .. } => url.clone(),
        }
    }

    /// The plain URL, when there is one.
    pub fn url(&self) -> Option<&str> {
        match self {
            Source::DbSignature { .. } => None,
            Source::Gateway { url, .. } | Source::Lan { url, .. } | Source::Mirror { url, .. } => {
                Some(url)
            }
        }
    }

    /// What the bytes must be (empty for a file no database lists or a signature).
    pub fn expect(&self) -> &[Expected] {
        match self {
            Source::Gateway { expect, .. }
            | Source::Lan { expect, .. }
            | Source::Mirror { expect, .. } => expect,
            Source::DbSignature { .. } => &[],
        }
    }

    /// Whether the bytes come through the IPFS gateway.
    pub fn through_gateway(&self) -> bool {
        matches!(self, Source::Gateway { .. } | Source::Lan { .. })
    }
}

/// "peer 12D3…" or "peers 12D3…, 12D3… and 3 more", for lines.
pub fn peer_list(peers: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut text = if peers.len() == 1 { "peer " } else { "peers " }.to_string();
    text.push_str(
        &peers
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
    );
    if peers.len() > SHOWN {
        text.push_str(&format!(" and {} more", peers.len() - SHOWN));
    }
    text
}

/// A copy of the file by CID: one the node holds because this machine seeded it (`files/stat`
/// of `/pacxfer/<sha256>` found it; `peers` empty), or one that LAN peers' directories list
/// (`peers` names them; see `ipfs::lan`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seeded {
    pub expect: Expected,
    pub cid: String,
    pub peers: Vec<String>,
}

/// The sources for one file, and anything odd met while choosing them.
#[derive(Debug, Default)]
pub struct Plan {
    pub sources: Vec<Source>,
    pub notes: Vec<String>,
}

impl Plan {
    /// The same file from other mirror URLs only (Server lines tried after this plan failed),
    /// checked as this plan's mirrors are.
    pub fn mirrors_only(&self, urls: &[String]) -> Plan {
        let expect = self
            .sources
            .iter()
            .find_map(|s| match s {
                Source::Mirror { expect, .. } => Some(expect.clone()),
                _ => None,
            })
            .unwrap_or_else(|| self.expected());
        Plan {
            sources: urls
                .iter()
                .map(|url| Source::Mirror {
                    url: url.clone(),
                    expect: expect.clone(),
                })
                .collect(),
            notes: Vec::new(),
        }
    }

    /// What the bytes must be, from the sources that check them (empty for a file no
    /// database lists).
    pub fn expected(&self) -> Vec<Expected> {
        let mut out: Vec<Expected> = Vec::new();
        for x in self.sources.iter().flat_map(Source::expect) {
            if !out.contains(x) {
                out.push(*x);
            }
        }
        out
    }
}

/// Which of several entries that list the same file name may be the one asked for: when they
/// disagree on the contents, those of a repository named in the URL path; otherwise all of
/// them, and the bytes decide.
pub fn choose<'a>(candidates: &'a [Entry], url_dirs: &[String]) -> Vec<&'a Entry> {
    let named: Vec<&Entry> = candidates
        .iter()
        .filter(|e| url_dirs.contains(&e.repo))
        .collect();
    if named.is_empty() {
        candidates.iter().collect()
    } else {
        named
    }
}

/// What the bytes may be, from every chosen entry; empty when any of them cannot be checked.
pub fn expectations(chosen: &[&Entry]) -> Vec<Expected> {
    let mut out: Vec<Expected> = Vec::new();
    for e in chosen {
        let Some((sha256, size)) = e.verifiable() else {
            return Vec::new();
        };
        let x = Expected { sha256, size };
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

/// The gateway URLs for one entry, one per template that has every value it names.
pub fn gateway_urls(entry: &Entry, config: &Config) -> Vec<String> {
    let known_cid = cid::for_entry(entry, config.gateway.raw_block_max);
    let sha_hex = entry.sha256.map(hex::encode);
    let base = config.gateway_base();
    config
        .gateway
        .paths
        .iter()
        .filter_map(|t| {
            template::expand(t, |var| match var {
                "cid" => known_cid.as_ref().map(|c| c.as_str().to_string()),
                "sha256" => sha_hex.clone(),
                "filename" => Some(entry.filename.clone()),
                "name" => Some(entry.name.clone()),
                "version" => Some(entry.version.clone()),
                "repo" => Some(entry.repo.clone()),
                "arch" => Some(entry.arch.clone()),
                _ => None,
            })
        })
        .map(|path| format!("{base}{path}"))
        .collect()
}

/// A copy of a build source by CID: one the node holds (`peers` empty) or one LAN peers list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceCopy {
    pub cid: String,
    pub peers: Vec<String>,
}

/// The gateway URLs for a build source pinned by `sums`: one per template and strong sum
/// whose placeholders are all among `algo`, `hex` and `sha256`.
fn source_gateway_urls(sums: &[Sums], config: &Config) -> Vec<String> {
    let base = config.gateway_base();
    let mut urls: Vec<String> = Vec::new();
    for s in sums {
        let sha = s.sha256().map(hex::encode);
        for sum in s.strong() {
            for t in &config.gateway.paths {
                let path = template::expand(t, |var| match var {
                    "algo" => Some(sum.algo.name().to_string()),
                    "hex" => Some(sum.hex()),
                    "sha256" => sha.clone(),
                    _ => None,
                });
                if let Some(url) = path.map(|p| format!("{base}{p}")) {
                    if !urls.contains(&url) {
                        urls.push(url);
                    }
                }
            }
        }
    }
    urls
}

/// Plans the download of a build source a PKGBUILD pins by `sums` (one set per entry that may
/// be meant): the node's own copies and the templates asking only the node, then copies LAN
/// peers list, then the templates letting the node search the network, then upstream. Only
/// when some sum pins the content; otherwise upstream alone. Nothing here is checked by a
/// database: the download judges the bytes by the sums.
pub fn for_source(
    sums: &[Sums],
    config: &Config,
    copies: &[SourceCopy],
    upstream: &[String],
) -> Plan {
    let mut plan = Plan::default();
    if config.gateway.enabled && !sums.is_empty() && sums.iter().all(Sums::pins_content) {
        let base = config.gateway_base();
        let mut urls: Vec<String> = Vec::new();
        for c in copies.iter().filter(|c| c.peers.is_empty()) {
            let url = format!("{base}/ipfs/{}", c.cid);
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
        for url in source_gateway_urls(sums, config) {
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
        let gateway = |url: &String, cached_only: bool| Source::Gateway {
            url: url.clone(),
            cached_only,
            expect: Vec::new(),
        };
        plan.sources.extend(urls.iter().map(|u| gateway(u, true)));
        if !config.gateway.network_wait().is_zero() {
            for c in copies.iter().filter(|c| !c.peers.is_empty()) {
                plan.sources.push(Source::Lan {
                    url: format!("{base}/ipfs/{}", c.cid),
                    peers: c.peers.clone(),
                    expect: Vec::new(),
                });
            }
        }
        if config.gateway.searches_network() {
            plan.sources.extend(urls.iter().map(|u| gateway(u, false)));
        }
    }
    plan.sources
        .extend(upstream.iter().map(|url| Source::Mirror {
            url: url.clone(),
            expect: Vec::new(),
        }));
    plan
}

/// Plans the download of one file.
///
/// `candidates` are the entries listing the file (for a `.sig`, listing its package);
/// `url_dirs` the URL's path segments; `seeded` the copies the node holds by SHA-256, tried
/// before the templates; `mirrors` the mirror URLs to end with, in order.
pub fn plan(
    is_sig: bool,
    candidates: &[Entry],
    url_dirs: &[String],
    config: &Config,
    seeded: &[Seeded],
    mirrors: &[String],
) -> Plan {
    let mut plan = Plan::default();
    let chosen = choose(candidates, url_dirs);

    if is_sig {
        // A signature is not listed by checksum; it is either embedded in the database or
        // fetched from the mirror as is (pacman checks it).
        match embedded_signature(&chosen) {
            Ok(Some(source)) => plan.sources.push(source),
            Ok(None) => {}
            Err(note) => plan.notes.push(note),
        }
        plan.sources
            .extend(mirrors.iter().map(|url| Source::Mirror {
                url: url.clone(),
                expect: Vec::new(),
            }));
        return plan;
    }

    let expect = expectations(&chosen);
    if config.gateway.enabled && !expect.is_empty() {
        let mut urls: Vec<(String, Expected)> = Vec::new();
        for s in seeded
            .iter()
            .filter(|s| s.peers.is_empty() && expect.contains(&s.expect))
        {
            let url = format!("{}/ipfs/{}", config.gateway_base(), s.cid);
            if !urls.iter().any(|(u, _)| *u == url) {
                urls.push((url, s.expect));
            }
        }
        for entry in &chosen {
            let Some((sha256, size)) = entry.verifiable() else {
                continue;
            };
            for url in gateway_urls(entry, config) {
                if !urls.iter().any(|(u, _)| *u == url) {
                    urls.push((url, Expected { sha256, size }));
                }
            }
        }
        plan.sources
            .extend(urls.iter().map(|(url, x)| Source::Gateway {
                url: url.clone(),
                cached_only: true,
                expect: vec![*x],
            }));
        if !config.gateway.network_wait().is_zero() {
            for s in seeded
                .iter()
                .filter(|s| !s.peers.is_empty() && expect.contains(&s.expect))
            {
                plan.sources.push(Source::Lan {
                    url: format!("{}/ipfs/{}", config.gateway_base(), s.cid),
                    peers: s.peers.clone(),
                    expect: vec![s.expect],
                });
            }
        }
        if config.gateway.searches_network() {
            plan.sources
                .extend(urls.iter().map(|(url, x)| Source::Gateway {
                    url: url.clone(),
                    cached_only: false,
                    expect: vec![*x],
                }));
        }
    }
    plan.sources
        .extend(mirrors.iter().map(|url| Source::Mirror {
            url: url.clone(),
            expect: expect.clone(),
        }));
    plan
}

/// The `%PGPSIG%` source, when the chosen entries agree on one signature.
fn embedded_signature(chosen: &[&Entry]) -> Result<Option<Source>, String> {
    let Some(first) = chosen.first() else {
        return Ok(None);
    };
    let Some(sig) = &first.pgpsig else {
        return Ok(None);
    };
    if chosen.iter().any(|e| e.pgpsig.as_ref() != Some(sig)) {
        return Ok(None);
    }
    let text: String = sig.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    match data_encoding::BASE64.decode(text.as_bytes()) {
        Ok(bytes) if !bytes.is_empty() => Ok(Some(Source::DbSignature {
            repo: first.repo.clone(),
            bytes,
        })),
        _ => Err(format!(
            "%PGPSIG% of {} in {}.db is not valid base64; using the mirror's .sig",
            first.filename, first.repo
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(repo: &str, sha: u8, size: u64) -> Entry {
        Entry {
            repo: repo.into(),
            filename: "foo-1.0-1-x86_64.pkg.tar.zst".into(),
            name: "foo".into(),
            version: "1.0-1".into(),
            arch: "x86_64".into(),
            sha256: Some([sha; 32]),
            csize: Some(size),
            pgpsig: None,
            cid: None,
        }
    }

    fn config(paths: &[&str], network: bool) -> Config {
        let mut c = Config::default();
        c.gateway.url = "http://127.0.0.1:8080/".into();
        c.gateway.paths = paths.iter().map(|s| s.to_string()).collect();
        if network {
            c.gateway.network_timeout = Some(std::time::Duration::from_secs(5));
        }
        c
    }

    fn urls(p: &Plan) -> Vec<String> {
        p.sources.iter().map(Source::describe).collect()
    }

    #[test]
    fn small_file_gets_raw_cid_then_mirror() {
        let p = plan(
            false,
            &[entry("core", 1, 1000)],
            &[],
            &config(&["/ipfs/{cid}"], false),
            &[],
            &["http://m/core/os/x86_64/foo-1.0-1-x86_64.pkg.tar.zst".into()],
        );
        let u = urls(&p);
        assert_eq!(u.len(), 2);
        assert!(
            u[0].starts_with("http://127.0.0.1:8080/ipfs/bafkrei"),
            "{u:?}"
        );
        assert_eq!(p.sources[1].label(), "mirror");
    }

    #[test]
    fn large_file_skips_cid_template_without_cid() {
        let c = config(&["/ipfs/{cid}", "/ipns/cache/{sha256}"], false);
        let p = plan(false, &[entry("core", 0xab, 5 << 20)], &[], &c, &[], &[]);
        assert_eq!(
            urls(&p),
            vec![format!(
                "http://127.0.0.1:8080/ipns/cache/{}",
                "ab".repeat(32)
            )]
        );
    }

    #[test]
    fn database_cid_is_used_for_large_files() {
        let mut e = entry("core", 1, 5 << 20);
        e.cid = Some("bafybeiexample".into());
        let p = plan(false, &[e], &[], &config(&["/ipfs/{cid}"], false), &[], &[]);
        assert_eq!(urls(&p), vec!["http://127.0.0.1:8080/ipfs/bafybeiexample"]);
    }

    #[test]
    fn network_pass_comes_after_every_cached_pass() {
        let c = config(&["/ipfs/{cid}", "/ipns/cache/{repo}/{filename}"], true);
        let p = plan(
            false,
            &[entry("core", 1, 10)],
            &[],
            &c,
            &[],
            &["http://m/x".into()],
        );
        let kinds: Vec<(bool, &str)> = p
            .sources
            .iter()
            .map(|s| match s {
                Source::Gateway { cached_only, .. } => (*cached_only, "ipfs"),
                _ => (false, "mirror"),
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                (true, "ipfs"),
                (true, "ipfs"),
                (false, "ipfs"),
                (false, "ipfs"),
                (false, "mirror")
            ]
        );
    }

    #[test]
    fn repo_in_url_picks_among_conflicting_entries() {
        let both = [entry("core", 1, 10), entry("testing", 2, 20)];
        let dirs = vec!["testing".to_string(), "os".into(), "x86_64".into()];
        let p = plan(
            false,
            &both,
            &dirs,
            &config(&["/ipfs/{cid}"], false),
            &[],
            &["http://m/x".into()],
        );
        let Source::Mirror { expect, .. } = &p.sources[1] else {
            panic!("mirror last")
        };
        assert_eq!(
            expect,
            &vec![Expected {
                sha256: [2; 32],
                size: 20
            }]
        );
        // Without a hint, both are acceptable and the bytes decide.
        let p = plan(
            false,
            &both,
            &[],
            &config(&["/ipfs/{cid}"], false),
            &[],
            &["http://m/x".into()],
        );
        assert_eq!(p.sources.len(), 3);
        let Source::Mirror { expect, .. } = &p.sources[2] else {
            panic!("mirror last")
        };
        assert_eq!(expect.len(), 2);
    }

    #[test]
    fn unlisted_or_unverifiable_goes_to_the_mirror_unchecked() {
        let p = plan(
            false,
            &[],
            &[],
            &config(&["/ipfs/{cid}"], false),
            &[],
            &["http://m/core.db".into()],
        );
        assert_eq!(
            p.sources,
            vec![Source::Mirror {
                url: "http://m/core.db".into(),
                expect: vec![]
            }]
        );
        let mut e = entry("core", 1, 10);
        e.sha256 = None;
        let p = plan(
            false,
            &[e],
            &[],
            &config(&["/ipfs/{cid}"], false),
            &[],
            &["http://m/x".into()],
        );
        assert_eq!(p.sources.len(), 1);
    }

    #[test]
    fn signature_from_the_database() {
        let mut e = entry("core", 1, 10);
        e.pgpsig = Some("aGVsbG8=".into());
        let p = plan(
            true,
            std::slice::from_ref(&e),
            &[],
            &config(&["/ipfs/{cid}"], false),
            &[],
            &["http://m/x.sig".into()],
        );
        assert_eq!(
            p.sources[0],
            Source::DbSignature {
                repo: "core".into(),
                bytes: b"hello".to_vec()
            }
        );
        assert_eq!(p.sources[1].label(), "mirror");
        e.pgpsig = Some("not base64!".into());
        let p = plan(
            true,
            &[e],
            &[],
            &config(&["/ipfs/{cid}"], false),
            &[],
            &["http://m/x.sig".into()],
        );
        assert_eq!(p.sources.len(), 1);
        assert_eq!(p.notes.len(), 1);
    }

    fn copy(sha: u8, size: u64, cid: &str, peers: &[&str]) -> Seeded {
        Seeded {
            expect: Expected {
                sha256: [sha; 32],
                size,
            },
            cid: cid.into(),
            peers: peers.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn lan_copies_come_after_the_local_node_and_before_a_network_search() {
        let e = entry("core", 7, 5 << 20);
        let seeded = [
            copy(7, 5 << 20, "bafylocal", &[]),
            copy(7, 5 << 20, "bafylan", &["12D3KooWA", "12D3KooWB"]),
            // Another file's copy is never used for this one.
            copy(8, 5 << 20, "bafyother", &["12D3KooWC"]),
        ];
        let c = config(&["/ipns/cache/{sha256}"], true);
        let p = plan(
            false,
            std::slice::from_ref(&e),
            &[],
            &c,
            &seeded,
            &["http://m/f".into()],
        );
        let labels: Vec<(&str, String)> = p
            .sources
            .iter()
            .map(|s| (s.label(), s.url().unwrap_or("").to_string()))
            .collect();
        let sha = hex::encode([7u8; 32]);
        assert_eq!(
            labels,
            vec![
                ("ipfs", "http://127.0.0.1:8080/ipfs/bafylocal".to_string()),
                ("ipfs", format!("http://127.0.0.1:8080/ipns/cache/{sha}")),
                ("lan", "http://127.0.0.1:8080/ipfs/bafylan".to_string()),
                ("ipfs", "http://127.0.0.1:8080/ipfs/bafylocal".to_string()),
                ("ipfs", format!("http://127.0.0.1:8080/ipns/cache/{sha}")),
                ("mirror", "http://m/f".to_string()),
            ]
        );
        assert!(p.sources[2]
            .describe()
            .contains("peers 12D3KooWA, 12D3KooWB"));

        // network_timeout unset: the LAN copy within the LAN wait, and no network search.
        let mut c = config(&["/ipns/cache/{sha256}"], false);
        let p = plan(false, std::slice::from_ref(&e), &[], &c, &seeded, &[]);
        assert_eq!(
            p.sources.iter().map(Source::label).collect::<Vec<_>>(),
            vec!["ipfs", "ipfs", "lan"]
        );
        // "0": nothing fetched from other peers, LAN included.
        c.gateway.network_timeout = Some(std::time::Duration::ZERO);
        let p = plan(false, &[e], &[], &c, &seeded, &[]);
        assert_eq!(
            p.sources.iter().map(Source::label).collect::<Vec<_>>(),
            vec!["ipfs", "ipfs"]
        );
    }

    #[test]
    fn peer_lists_are_short() {
        let peers: Vec<String> = (0..5).map(|i| format!("p{i}")).collect();
        assert_eq!(peer_list(&peers[..1]), "peer p0");
        assert_eq!(peer_list(&peers), "peers p0, p1, p2 and 2 more");
    }
}
