//! Which PKGBUILD a download agent call is for, and the sums it pins for the file asked for.
//!
//! makepkg tells its agent only `%u` and `%o`. The agent runs in `$SRCDEST`, which is the
//! PKGBUILD's directory unless `SRCDEST` is set; makepkg itself (the agent's parent, `bash
//! makepkg …`) keeps the directory it was started in as `PWD` in its environment, and its
//! command line names the build script when `-p` gives one. The places looked at, in order:
//! a `--srcinfo` given on the command line, the parent's directory and build script, and the
//! agent's own working directory.
//!
//! In each, `.SRCINFO` is read when it is at least as new as the build script. Only for the
//! place makepkg named (`--srcinfo $startdir`), a missing or older one is replaced by what
//! `makepkg --printsrcinfo` says (it sources the PKGBUILD being built, as the running makepkg
//! already did, and downloads nothing); an inferred place may hold a PKGBUILD nobody chose to
//! build, and nothing is run there (`Reading`). Everything here belongs to the user who
//! builds, and pacxfer runs as that user: as root, only files root owns are read.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::srcinfo::{self, SourceEntry, SRCINFO_MAX};

/// How long `makepkg --printsrcinfo` may take.
const PRINTSRCINFO_TIMEOUT: Duration = Duration::from_secs(60);

/// The most of a process's environment or command line read.
const PROC_MAX: u64 = 1 << 20;

/// What was found for one call.
#[derive(Debug, Default)]
pub struct Found {
    /// The entries naming the file (more than one only when several architectures do).
    pub entries: Vec<SourceEntry>,
    /// Where they were read.
    pub from: Option<PathBuf>,
    /// What was looked at and why it did not answer, for `-v`.
    pub notes: Vec<String>,
    /// Why no copy from IPFS may be used for this call, whatever the sums: makepkg is
    /// generating checksums (`-g`, `updpkgsums`) or skipping them, so the sums it has are not
    /// the ones the file will be judged by.
    pub upstream_only: Option<&'static str>,
}

/// What the agent's parent, when it is makepkg, tells of the call.
#[derive(Debug, Default, Clone)]
pub struct Parent {
    /// Its directory (`PWD`) and build script (`-p`), when it has a `PWD`.
    pub place: Option<Place>,
    /// Its options, after the script's own path.
    pub args: Vec<String>,
    /// The makepkg.conf it reads (`--config`, or `MAKEPKG_CONF` in its environment).
    pub config: Option<PathBuf>,
}

impl Parent {
    /// Whether an option (long, or a letter among grouped short options) is given.
    fn has(&self, long: &str, short: char) -> bool {
        self.args.iter().take_while(|a| *a != "--").any(|a| {
            a == long
                || (a.starts_with('-')
                    && !a.starts_with("--")
                    && a[1..].chars().take_while(|c| *c != 'p').any(|c| c == short))
        })
    }

    /// Why makepkg's own sums are not the file's, when they are not.
    pub fn upstream_only(&self) -> Option<&'static str> {
        if self.has("--geninteg", 'g') {
            Some("makepkg is generating checksums (-g, updpkgsums)")
        } else if self
            .args
            .iter()
            .any(|a| a == "--skipinteg" || a == "--skipchecksums")
        {
            Some("makepkg skips its integrity checks")
        } else {
            None
        }
    }
}

/// A place a PKGBUILD may be: its directory and the build script's name there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub dir: PathBuf,
    pub buildfile: String,
}

/// The places to look, in order, and how each may be read: `explicit` (a `.SRCINFO` or a
/// directory; with the parent's build script when the parent works in that same directory),
/// the one makepkg named; then the parent makepkg's, then the working directory, inferred.
pub fn places(explicit: Option<&Path>, parent: &Parent) -> Vec<(Place, Reading)> {
    let mut out: Vec<(Place, Reading)> = Vec::new();
    let mut add = |p: Place, how: Reading| {
        if !out.iter().any(|(q, _)| *q == p) {
            out.push((p, how));
        }
    };
    if let Some(path) = explicit {
        add(explicit_place(path, parent.place.as_ref()), Reading::Named);
    }
    if let Some(p) = &parent.place {
        add(p.clone(), Reading::Inferred);
    }
    if let Ok(cwd) = std::env::current_dir() {
        add(
            Place {
                dir: cwd,
                buildfile: "PKGBUILD".into(),
            },
            Reading::Inferred,
        );
    }
    out
}

/// What the `.SRCINFO` of a PKGBUILD directory says, read for `seed --sources`, `lookup` or
/// a publisher (`Reading::AnyAge`: nothing is ever run). `None` when the directory has
/// neither a PKGBUILD nor a `.SRCINFO`.
pub fn srcinfo_in(dir: &Path) -> Result<Option<srcinfo::SrcInfo>, String> {
    let place = Place {
        dir: dir.to_path_buf(),
        buildfile: "PKGBUILD".into(),
    };
    Ok(srcinfo_of(&place, Reading::AnyAge)?.map(|(text, _)| srcinfo::parse(&text)))
}

/// The PKGBUILD directories `dirs` name: each that holds a `.SRCINFO` or a PKGBUILD, else
/// its subdirectories that do (an AUR clone tree), in name order.
pub fn pkgbuild_dirs(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let is_pkg = |d: &Path| d.join(".SRCINFO").is_file() || d.join("PKGBUILD").is_file();
    let mut out = Vec::new();
    for dir in dirs {
        if is_pkg(dir) {
            out.push(dir.clone());
            continue;
        }
        let mut below: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|r| {
                r.flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path())
                    .filter(|p| is_pkg(p))
                    .collect()
            })
            .unwrap_or_default();
        below.sort();
        out.extend(below);
    }
    out
}

/// The place `--srcinfo` names: a directory, or a `.SRCINFO` in one. Its build script is the
/// parent's (`-p`) when the parent's directory is the same one (`$startdir` is the physical
/// path, the parent's `PWD` may be a logical one), else `PKGBUILD`.
fn explicit_place(path: &Path, parent: Option<&Place>) -> Place {
    let dir = if path.is_dir() {
        path.to_path_buf()
    } else {
        path.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    let same = |a: &Path, b: &Path| match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    };
    let buildfile = parent
        .filter(|p| same(&p.dir, &dir))
        .map_or_else(|| "PKGBUILD".to_string(), |p| p.buildfile.clone());
    Place { dir, buildfile }
}

/// The agent's parent, when it is makepkg.
pub fn parent() -> Option<Parent> {
    let ppid = rustix::process::getppid()?.as_raw_nonzero().get();
    let cmdline = read_proc(&format!("/proc/{ppid}/cmdline"))?;
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let at = args
        .iter()
        .take(2)
        .position(|a| a.rsplit('/').next() == Some("makepkg"))?;
    let args = args[at + 1..].to_vec();
    let environ = read_proc(&format!("/proc/{ppid}/environ")).unwrap_or_default();
    let env = |key: &[u8]| {
        environ
            .split(|b| *b == 0)
            .find_map(|v| v.strip_prefix(key))
            .map(|v| PathBuf::from(String::from_utf8_lossy(v).into_owned()))
    };
    let pwd = env(b"PWD=").filter(|p| p.is_absolute());
    let relative = |p: PathBuf| match &pwd {
        Some(pwd) if p.is_relative() => pwd.join(p),
        _ => p,
    };
    let config = option_value(&args, "--config")
        .map(PathBuf::from)
        .or_else(|| env(b"MAKEPKG_CONF="))
        .map(relative);
    let place = pwd.clone().map(|pwd| {
        let path = match buildscript_arg(&args) {
            Some(s) => pwd.join(s),
            None => pwd.join("PKGBUILD"),
        };
        Place {
            dir: path.parent().map(Path::to_path_buf).unwrap_or(pwd),
            buildfile: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "PKGBUILD".into()),
        }
    });
    Some(Parent {
        place,
        args,
        config,
    })
}

/// The value of a long option given as `--opt VALUE` or `--opt=VALUE`.
fn option_value(args: &[String], opt: &str) -> Option<String> {
    let mut it = args.iter();
    let mut found = None;
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if a == opt {
            found = it.next().cloned();
        } else if let Some(v) = a.strip_prefix(opt).and_then(|v| v.strip_prefix('=')) {
            found = Some(v.to_string());
        }
    }
    found
}

/// The build script makepkg's arguments name: `-p FILE`, `--file FILE`, `--file=FILE`, or
/// `p` ending a group of short options (`-sp FILE`).
pub fn buildscript_arg(args: &[String]) -> Option<String> {
    let mut it = args.iter();
    let mut found = None;
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if let Some(v) = a.strip_prefix("--file=") {
            found = Some(v.to_string());
        } else if a == "--file" || (a.starts_with('-') && !a.starts_with("--") && a.ends_with('p'))
        {
            found = it.next().cloned();
        }
    }
    found
}

fn read_proc(path: &str) -> Option<Vec<u8>> {
    super::read_at_most(Path::new(path), PROC_MAX)
}

/// The entries of the PKGBUILD this call is for that name `url` saved as `name`.
pub fn entries_for(url: &str, name: &str, explicit: Option<&Path>) -> Found {
    let parent = parent().unwrap_or_default();
    let arch = std::env::var("CARCH")
        .ok()
        .or_else(|| super::conf::carch(&super::conf::files_for(parent.config.as_deref())))
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let mut found = Found {
        upstream_only: parent.upstream_only(),
        ..Found::default()
    };
    for (place, how) in places(explicit, &parent) {
        let (info, from) = match srcinfo_of(&place, how) {
            Ok(Some((text, from))) => (srcinfo::parse(&text), from),
            Ok(None) => continue,
            Err(why) => {
                found.notes.push(why);
                continue;
            }
        };
        let entries: Vec<SourceEntry> = info
            .entries_for(url, name, &arch)
            .into_iter()
            .cloned()
            .collect();
        if entries.is_empty() {
            found.notes.push(format!(
                "{} does not list {name} from {url}",
                from.display()
            ));
            continue;
        }
        found.notes.extend(
            info.problems
                .iter()
                .map(|p| format!("{}: {p}", from.display())),
        );
        found.entries = entries;
        found.from = Some(from);
        return found;
    }
    found
}

/// How a `.SRCINFO` may be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// The PKGBUILD makepkg named itself (`--srcinfo $startdir`): a `.SRCINFO` as new as the
    /// PKGBUILD, else what `makepkg --printsrcinfo` says there (the PKGBUILD being built,
    /// which makepkg has already run; never as root). As root, only root's own files.
    Named,
    /// A place the agent inferred (its parent's directory, its own): only a `.SRCINFO` as
    /// new as the PKGBUILD, nothing run (the place may hold a PKGBUILD nobody chose to
    /// build). As root, only root's own files.
    Inferred,
    /// For `seed --sources`, `lookup` and a publisher, which read PKGBUILDs others may have
    /// written (AUR clones): the `.SRCINFO` whatever its age (every file is judged by its
    /// sums anyway), any owner's, nothing ever run.
    AnyAge,
}

/// The `.SRCINFO` text for a place, as `how` allows, and where it came from. `None` when the
/// place has no PKGBUILD or `.SRCINFO` that may be used.
pub fn srcinfo_of(place: &Place, how: Reading) -> Result<Option<(String, PathBuf)>, String> {
    let srcinfo = place.dir.join(".SRCINFO");
    let script = place.dir.join(&place.buildfile);
    // makepkg takes a build script through a link; `.SRCINFO` is never read through one.
    let script_meta = std::fs::metadata(&script).ok().filter(|m| m.is_file());
    let info_meta = std::fs::symlink_metadata(&srcinfo)
        .ok()
        .filter(|m| m.is_file());
    // `.SRCINFO` describes `PKGBUILD`: for another build script (`-p`) it is never current.
    let current = place.buildfile == "PKGBUILD"
        && match (&info_meta, &script_meta) {
            (Some(i), Some(s)) => i.mtime() >= s.mtime(),
            (Some(_), None) => true,
            _ => false,
        };
    if info_meta.is_some() && (current || how == Reading::AnyAge) {
        return read_srcinfo(&srcinfo, how == Reading::AnyAge).map(|t| Some((t, srcinfo)));
    }
    match (how, script_meta) {
        (_, None) => Ok(None),
        (Reading::Inferred, Some(_)) => Err(format!(
            "{} has no .SRCINFO as new as its {} (not used; `--srcinfo $startdir` in DLAGENTS \
             names the PKGBUILD being built)",
            place.dir.display(),
            place.buildfile
        )),
        (Reading::AnyAge, Some(_)) => Err(format!(
            "{} has no .SRCINFO (write one with `makepkg --printsrcinfo > .SRCINFO`; a \
             PKGBUILD is never run here)",
            place.dir.display()
        )),
        (Reading::Named, Some(_)) if rustix::process::geteuid().is_root() => Err(format!(
            "{} has no current .SRCINFO, and makepkg --printsrcinfo is not run as root",
            place.dir.display()
        )),
        (Reading::Named, Some(_)) => printsrcinfo(place).map(|t| Some((t, script))),
    }
}

/// What `makepkg --printsrcinfo` says of the build script at `place`, bounded in time and size.
fn printsrcinfo(place: &Place) -> Result<String, String> {
    let mut cmd = std::process::Command::new("makepkg");
    cmd.arg("--printsrcinfo")
        .arg("-p")
        .arg(&place.buildfile)
        .current_dir(&place.dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let out = crate::pacman::conf::run_bounded_max(&mut cmd, PRINTSRCINFO_TIMEOUT, SRCINFO_MAX)
        .map_err(|e| format!("makepkg --printsrcinfo in {}: {e}", place.dir.display()))?;
    if !out.status.success() {
        return Err(format!(
            "makepkg --printsrcinfo in {} failed: {}",
            place.dir.display(),
            crate::ui::answer::one_line(&String::from_utf8_lossy(&out.stderr))
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// As root, only root's own files are read: another user's PKGBUILD directory is theirs.
fn owned_well(meta: &std::fs::Metadata) -> bool {
    !rustix::process::geteuid().is_root() || meta.uid() == 0
}

/// Reads a `.SRCINFO`: a regular file (never a FIFO, never through a symbolic link), at most
/// `SRCINFO_MAX`.
fn read_srcinfo(path: &Path, any_owner: bool) -> Result<String, String> {
    use std::io::Read;
    let file = crate::cache::trust::open_foreign_path(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::InvalidInput {
            format!("{} is not a regular file", path.display())
        } else {
            format!("cannot read {}: {e}", path.display())
        }
    })?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !any_owner && !owned_well(&meta) {
        return Err(format!(
            "{} is not root's own; not read as root",
            path.display()
        ));
    }
    let mut buf = Vec::new();
    file.take(SRCINFO_MAX + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if buf.len() as u64 > SRCINFO_MAX {
        return Err(format!(
            "{} is larger than {} MiB; not read",
            path.display(),
            SRCINFO_MAX >> 20
        ));
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_build_script_argument() {
        assert_eq!(buildscript_arg(&args(&["/usr/bin/makepkg", "-o"])), None);
        assert_eq!(
            buildscript_arg(&args(&["/usr/bin/makepkg", "-p", "other.PKGBUILD", "-o"])),
            Some("other.PKGBUILD".into())
        );
        assert_eq!(
            buildscript_arg(&args(&["makepkg", "-sp", "x/PKGBUILD"])),
            Some("x/PKGBUILD".into())
        );
        assert_eq!(
            buildscript_arg(&args(&["makepkg", "--file=B"])),
            Some("B".into())
        );
        assert_eq!(buildscript_arg(&args(&["makepkg", "--", "-p", "B"])), None);
    }
}
