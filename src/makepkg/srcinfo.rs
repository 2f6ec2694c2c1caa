//! `.SRCINFO` (what `makepkg --printsrcinfo` writes and the AUR serves beside each PKGBUILD):
//! the package base's sources, each with the sums its `<algo>sums[_<arch>]` arrays give it by
//! position, and the file name makepkg saves it under.
//!
//! Only the package base's section is read: split packages cannot have sources of their own.
//! Nothing in it is run; it is text the building user controls, read with bounded memory.

use super::sums::{Algo, Sum, Sums};

/// The most of a `.SRCINFO` read (the largest on the AUR are a few hundred KiB).
pub const SRCINFO_MAX: u64 = 4 << 20;

/// One entry of `source=()` or `source_<arch>=()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceEntry {
    /// `None` for `source`, the architecture for `source_<arch>`.
    pub arch: Option<String>,
    /// The file name makepkg saves it as (`name::` or the URL's last segment).
    pub name: String,
    /// What makepkg passes its download agent as `%u` (the text after `name::`).
    pub url: String,
    /// The scheme makepkg picks the agent by (`https` of `git+https://` is `git`).
    pub protocol: String,
    pub sums: Sums,
}

/// What a `.SRCINFO` says of the sources.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SrcInfo {
    pub pkgbase: String,
    pub sources: Vec<SourceEntry>,
    /// Arrays that could not be paired (a sums array of another length than its sources).
    pub problems: Vec<String>,
}

/// makepkg's `get_protocol`: the scheme after any `name::`, `git` for `git+https`.
pub fn protocol(netfile: &str) -> String {
    let url = url_of(netfile);
    match url.split_once("://") {
        Some((scheme, _)) => scheme.split('+').next().unwrap_or(scheme).to_string(),
        None => "local".to_string(),
    }
}

/// Whether makepkg fetches a protocol through `DLAGENTS` (not a VCS, not a local file).
pub fn fetched_by_agent(protocol: &str) -> bool {
    !matches!(protocol, "local" | "git" | "hg" | "svn" | "bzr" | "fossil")
}

/// makepkg's `get_url`: the text after the first `::`.
pub fn url_of(netfile: &str) -> &str {
    netfile.split_once("::").map_or(netfile, |(_, u)| u)
}

/// makepkg's `get_filename` for files fetched by an agent: the text before the first `::` as
/// it is, else the URL's last `/`-separated segment.
pub fn filename_of(netfile: &str) -> String {
    match netfile.split_once("::") {
        Some((name, _)) => name.to_string(),
        None => netfile.rsplit('/').next().unwrap_or(netfile).to_string(),
    }
}

/// Parses a `.SRCINFO`.
pub fn parse(text: &str) -> SrcInfo {
    let mut info = SrcInfo::default();
    // Per architecture suffix ("" for none): sources, and each algorithm's sums, in order.
    let mut sources: Vec<(String, Vec<String>)> = Vec::new();
    let mut sums: Vec<((String, Algo), Vec<String>)> = Vec::new();
    let mut in_base = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line
            .split_once(" = ")
            .or_else(|| line.strip_suffix(" =").map(|k| (k, "")))
        else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "pkgbase" => {
                in_base = true;
                info.pkgbase = value.to_string();
                continue;
            }
            "pkgname" => {
                in_base = false;
                continue;
            }
            _ if !in_base => continue,
            _ => {}
        }
        let (stem, arch) = match key.split_once('_') {
            Some((stem, arch)) => (stem, arch.to_string()),
            None => (key, String::new()),
        };
        if stem == "source" {
            push(&mut sources, arch, value);
        } else if let Some(algo) = stem.strip_suffix("sums").and_then(Algo::from_name) {
            push(&mut sums, (arch, algo), value);
        }
    }
    for (arch, list) in &sources {
        let mut entry_sums: Vec<Vec<Sum>> = vec![Vec::new(); list.len()];
        for ((sum_arch, algo), values) in sums.iter().filter(|((a, _), _)| a == arch) {
            if values.len() != list.len() {
                info.problems.push(format!(
                    "{}sums{} has {} entries for {} sources; not used",
                    algo,
                    suffix(sum_arch),
                    values.len(),
                    list.len()
                ));
                continue;
            }
            for (i, v) in values.iter().enumerate() {
                if let Some(sum) = Sum::parse(*algo, v) {
                    entry_sums[i].push(sum);
                }
            }
        }
        for (netfile, s) in list.iter().zip(entry_sums) {
            info.sources.push(SourceEntry {
                arch: (!arch.is_empty()).then(|| arch.clone()),
                name: filename_of(netfile),
                url: url_of(netfile).to_string(),
                protocol: protocol(netfile),
                sums: Sums(s),
            });
        }
    }
    info
}

fn suffix(arch: &str) -> String {
    if arch.is_empty() {
        String::new()
    } else {
        format!("_{arch}")
    }
}

fn push<K: PartialEq>(lists: &mut Vec<(K, Vec<String>)>, key: K, value: &str) {
    match lists.iter_mut().find(|(k, _)| *k == key) {
        Some((_, l)) => l.push(value.to_string()),
        None => lists.push((key, vec![value.to_string()])),
    }
}

impl SrcInfo {
    /// The entries makepkg would hand an agent `url` for, saved as `name`: those of this
    /// machine's architecture (or of none) first; the others only when no such entry names it.
    pub fn entries_for(&self, url: &str, name: &str, arch: &str) -> Vec<&SourceEntry> {
        let named: Vec<&SourceEntry> = self
            .sources
            .iter()
            .filter(|e| e.url == url && e.name == name)
            .collect();
        let ours: Vec<&SourceEntry> = named
            .iter()
            .copied()
            .filter(|e| e.arch.as_deref().is_none_or(|a| a == arch))
            .collect();
        if ours.is_empty() {
            named
        } else {
            ours
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "pkgbase = demo\n\tpkgver = 1.0\n\tarch = x86_64\n\tarch = aarch64\n\
\tsource = demo-1.0.tar.gz::https://example.org/dl/v1.0.tar.gz\n\
\tsource = https://example.org/patch.diff\n\
\tsource = git+https://example.org/repo.git#tag=v1\n\
\tsource_x86_64 = https://example.org/bin-x86_64.tar\n\
\tsource_aarch64 = https://example.org/bin-aarch64.tar\n\
\tsha256sums = 0000000000000000000000000000000000000000000000000000000000000001\n\
\tsha256sums = SKIP\n\
\tsha256sums = SKIP\n\
\tb2sums = 11111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111\n\
\tb2sums = SKIP\n\tb2sums = SKIP\n\
\tsha256sums_x86_64 = 0000000000000000000000000000000000000000000000000000000000000002\n\
\tmd5sums_aarch64 = 00000000000000000000000000000003\n\
\tmd5sums_aarch64 = 00000000000000000000000000000004\n\
\npkgname = demo\n\tsource = https://ignored.example/x\n\npkgname = demo-doc\n";

    #[test]
    fn sources_get_their_sums_by_position() {
        let info = parse(TEXT);
        assert_eq!(info.pkgbase, "demo");
        let names: Vec<(&str, &str, &str)> = info
            .sources
            .iter()
            .map(|e| (e.name.as_str(), e.url.as_str(), e.protocol.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                (
                    "demo-1.0.tar.gz",
                    "https://example.org/dl/v1.0.tar.gz",
                    "https"
                ),
                ("patch.diff", "https://example.org/patch.diff", "https"),
                (
                    "repo.git#tag=v1",
                    "git+https://example.org/repo.git#tag=v1",
                    "git"
                ),
                (
                    "bin-x86_64.tar",
                    "https://example.org/bin-x86_64.tar",
                    "https"
                ),
                (
                    "bin-aarch64.tar",
                    "https://example.org/bin-aarch64.tar",
                    "https"
                ),
            ]
        );
        let first = &info.sources[0].sums;
        assert!(first.pins_content());
        assert_eq!(first.0.len(), 2);
        assert!(info.sources[1].sums.0.is_empty());
        assert_eq!(info.sources[3].arch.as_deref(), Some("x86_64"));
        assert!(info.sources[3].sums.sha256().is_some());
        // aarch64's md5sums has two entries for one source: not paired.
        assert_eq!(info.problems.len(), 1, "{:?}", info.problems);
        assert!(info.sources[4].sums.0.is_empty());
    }

    #[test]
    fn an_entry_is_found_by_url_and_name() {
        let info = parse(TEXT);
        let found = info.entries_for(
            "https://example.org/dl/v1.0.tar.gz",
            "demo-1.0.tar.gz",
            "x86_64",
        );
        assert_eq!(found.len(), 1);
        assert!(info
            .entries_for(
                "https://example.org/dl/v1.0.tar.gz",
                "v1.0.tar.gz",
                "x86_64"
            )
            .is_empty());
        // Another architecture's entry is still found when nothing else names the file.
        assert_eq!(
            info.entries_for(
                "https://example.org/bin-aarch64.tar",
                "bin-aarch64.tar",
                "x86_64"
            )
            .len(),
            1
        );
    }

    #[test]
    fn filenames_as_makepkg_makes_them() {
        assert_eq!(filename_of("a.tar::https://h/x/y.tar"), "a.tar");
        assert_eq!(filename_of("d/a.tar::https://h/x/y.tar"), "d/a.tar");
        assert_eq!(filename_of("https://h/x/y.tar?dl=1"), "y.tar?dl=1");
        assert_eq!(url_of("a::b::c"), "b::c");
        assert_eq!(protocol("local.patch"), "local");
    }
}
