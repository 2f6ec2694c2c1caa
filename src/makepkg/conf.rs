//! makepkg.conf's `DLAGENTS`, as makepkg reads it: `/etc/makepkg.conf`, then
//! `/etc/makepkg.conf.d/*.conf`, then the user's `$XDG_CONFIG_HOME/pacman/makepkg.conf` or
//! `~/.makepkg.conf`; a later `DLAGENTS=(…)` replaces the array, `DLAGENTS+=(…)` extends it.
//! Read as text for `doctor` (a file is bash, and never run here): quoted and bare words of
//! the array, one entry each.

use std::path::{Path, PathBuf};

/// The most of one makepkg.conf read.
const CONF_MAX: u64 = 1 << 20;

/// The files makepkg reads, in its order, that exist.
pub fn files() -> Vec<PathBuf> {
    files_for(None)
}

/// The files makepkg reads with `main` as its makepkg.conf (`--config`, `MAKEPKG_CONF`), or
/// the default one, in its order, that exist.
pub fn files_for(main: Option<&Path>) -> Vec<PathBuf> {
    let main = main.map_or_else(|| PathBuf::from("/etc/makepkg.conf"), Path::to_path_buf);
    let mut out = vec![main.clone()];
    let mut dropins = main.into_os_string();
    dropins.push(".d");
    if let Ok(dir) = std::fs::read_dir(&dropins) {
        let mut more: Vec<PathBuf> = dir
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "conf"))
            .collect();
        more.sort();
        out.extend(more);
    }
    let user = crate::cache::xdg_dir("XDG_CONFIG_HOME", ".config")
        .map(|d| d.join("pacman/makepkg.conf"))
        .filter(|p| p.is_file())
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".makepkg.conf")));
    out.extend(user);
    out.into_iter().filter(|p| p.is_file()).collect()
}

/// The `DLAGENTS` entries after reading `files` in order, with the file that set each.
pub fn dlagents(files: &[PathBuf]) -> Vec<(String, PathBuf)> {
    let mut agents: Vec<(String, PathBuf)> = Vec::new();
    for file in files {
        let Some(text) = read(file) else { continue };
        for (append, entries) in assignments(&text) {
            let before = std::mem::take(&mut agents);
            if append {
                agents = before.clone();
            }
            for e in entries {
                // `DLAGENTS=("${DLAGENTS[@]}" ...)` keeps what was there, in its place.
                if e == "${DLAGENTS[@]}" {
                    agents.extend(before.iter().cloned());
                } else {
                    agents.push((e, file.clone()));
                }
            }
        }
    }
    agents
}

/// `CARCH` as the last of `files` sets it (`CARCH="x86_64"`), when one does.
pub fn carch(files: &[PathBuf]) -> Option<String> {
    let mut found = None;
    for file in files {
        let Some(text) = read(file) else { continue };
        for line in text.lines() {
            if let Some(v) = line.trim_start().strip_prefix("CARCH=") {
                let v = v
                    .split('#')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .trim_matches(['"', '\'']);
                if !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    found = Some(v.to_string());
                }
            }
        }
    }
    found
}

/// The agent makepkg would pick for `protocol` (the first entry for it).
pub fn agent_for<'a>(
    agents: &'a [(String, PathBuf)],
    protocol: &str,
) -> Option<&'a (String, PathBuf)> {
    agents
        .iter()
        .find(|(e, _)| e.split_once("::").is_some_and(|(p, _)| p == protocol))
}

fn read(path: &Path) -> Option<String> {
    super::read_at_most(path, CONF_MAX).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Each `DLAGENTS=(…)` (false) or `DLAGENTS+=(…)` (true) in `text`, with its entries.
pub fn assignments(text: &str) -> Vec<(bool, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("DLAGENTS") {
        let before = &rest[..at];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let commented = before[line_start..].trim_start().starts_with('#')
            || !before[line_start..].trim().is_empty();
        let after = &rest[at + "DLAGENTS".len()..];
        let (append, body) = if let Some(b) = after.strip_prefix("+=(") {
            (true, b)
        } else if let Some(b) = after.strip_prefix("=(") {
            (false, b)
        } else {
            rest = after;
            continue;
        };
        if commented {
            // Not an assignment: its words (and any `)`) are only text up to the line's end.
            rest = body.find('\n').map_or("", |i| &body[i..]);
            continue;
        }
        let (entries, used) = words(body);
        out.push((append, entries));
        rest = &body[used..];
    }
    out
}

/// What `$startdir` outside single quotes becomes in a word: bash expands it to the
/// PKGBUILD's directory when makepkg reads the file (in single quotes it stays `$startdir`).
pub const STARTDIR: &str = "<startdir>";

/// A `$` that bash would expand (outside single quotes), while a word is read.
const EXPANDED: char = '\u{1}';

/// A word as bash leaves it for the variables that matter here.
fn finish(word: String) -> String {
    word.replace(&format!("{EXPANDED}{{startdir}}"), STARTDIR)
        .replace(&format!("{EXPANDED}startdir"), STARTDIR)
        .replace(EXPANDED, "$")
}

/// The words of an array body up to its closing `)`, and how many bytes that took.
fn words(body: &str) -> (Vec<String>, usize) {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut comment = false;
    for (i, c) in body.char_indices() {
        if comment {
            if c == '\n' {
                comment = false;
            }
            continue;
        }
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '$') => word.push(EXPANDED),
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, ')') => {
                if in_word {
                    out.push(finish(word));
                }
                return (out, i + 1);
            }
            (None, '#') if !in_word => comment = true,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(finish(std::mem::take(&mut word)));
                    in_word = false;
                }
            }
            (None, '$') => {
                word.push(EXPANDED);
                in_word = true;
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    (out, body.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_as_makepkg_reads_them() {
        let text = "#DLAGENTS=('http::/bin/x %u')\nDLAGENTS=('file::/usr/bin/curl -qgC - -o %o %u'\n  # a comment\n  \"https::/usr/bin/pacxfer dlagent --srcinfo $startdir %u %o\")\nDLAGENTS+=('http::/usr/bin/pacxfer dlagent %u %o')\n";
        let a = assignments(text);
        assert_eq!(a.len(), 2, "{a:?}");
        assert!(!a[0].0 && a[1].0);
        assert_eq!(a[0].1.len(), 2);
        assert_eq!(
            a[0].1[1],
            "https::/usr/bin/pacxfer dlagent --srcinfo <startdir> %u %o"
        );
        // In single quotes, bash leaves it as it is.
        let single = assignments("DLAGENTS=('https::/x dlagent --srcinfo $startdir %u %o')");
        assert_eq!(
            single[0].1[0],
            "https::/x dlagent --srcinfo $startdir %u %o"
        );
        let agents: Vec<(String, PathBuf)> = a
            .into_iter()
            .flat_map(|(_, e)| e)
            .map(|e| (e, PathBuf::from("f")))
            .collect();
        assert!(agent_for(&agents, "http").is_some_and(|(e, _)| e.contains("pacxfer")));
        assert!(agent_for(&agents, "ftp").is_none());
    }

    #[test]
    fn commented_arrays_and_the_array_kept_in_place() {
        let dir = std::env::temp_dir().join(format!("pacxfer-conf-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let a = dir.join("a.conf");
        let b = dir.join("b.conf");
        std::fs::write(&a, "#DLAGENTS=('http::/bin/x %u'\n#  'https::/bin/y')\nDLAGENTS=('https::/usr/bin/curl %u %o')\nCARCH=\"armv7h\"\n").expect("write");
        std::fs::write(
            &b,
            "DLAGENTS=(\"${DLAGENTS[@]}\" 'https::/usr/bin/pacxfer dlagent %u %o')\n",
        )
        .expect("write");
        let agents = dlagents(&[a.clone(), b.clone()]);
        assert_eq!(agents.len(), 2, "{agents:?}");
        assert!(agent_for(&agents, "https").is_some_and(|(e, _)| e.contains("curl")));
        assert_eq!(carch(&[a, b]).as_deref(), Some("armv7h"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
