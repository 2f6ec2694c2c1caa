//! The command line, and nothing else: what each argument and option means.

use std::path::PathBuf;

use clap::builder::TypedValueParser;
use clap::{Args, Parser, Subcommand};

const AFTER_HELP: &str = "\
Use it as pacman's downloader, in /etc/pacman.conf under [options]:

    XferCommand = /usr/bin/pacxfer %u %o

Each file is looked up in the sync databases, fetched from the local IPFS node when it has it,
otherwise from the mirror pacman gave, and written to OUTPUT only when it matches the
database's SHA-256. Configuration: /etc/pacxfer.conf (see pacxfer.conf(5)).";

/// Download pacman's files from IPFS first, verified against the sync databases, with the
/// HTTP mirror as fallback.
#[derive(Debug, Parser)]
#[command(
    name = "pacxfer",
    version,
    after_help = AFTER_HELP,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The URL to download (pacman's %u).
    #[arg(value_name = "URL", required = true)]
    pub url: Option<String>,

    /// Where to write it (pacman's %o); pacman renames it when pacxfer exits 0.
    #[arg(value_name = "OUTPUT", required = true)]
    pub output: Option<PathBuf>,

    #[command(flatten)]
    pub global: Global,
}

/// Options for every form.
#[derive(Debug, Args)]
pub struct Global {
    /// Configuration file [default: /etc/pacxfer.conf, which may be absent].
    #[arg(long, global = true, env = "PACXFER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// pacman's database directory (holds sync/*.db) [default: config's dbpath, then
    /// `pacman-conf DBPath`, then /var/lib/pacman/].
    #[arg(long, global = true, env = "PACXFER_DBPATH", value_name = "DIR")]
    pub dbpath: Option<PathBuf>,

    /// Where database indexes and gateway state are kept; "" for none; used only when owned
    /// by root or this user and not writable by others [default: config's cache_dir, else
    /// /var/cache/pacxfer, else $XDG_CACHE_HOME/pacxfer].
    #[arg(
        long,
        global = true,
        env = "PACXFER_CACHE_DIR",
        value_name = "DIR",
        value_parser = clap::builder::OsStringValueParser::new().map(PathBuf::from)
    )]
    pub cache_dir: Option<PathBuf>,

    /// Say which sources are tried and why each was passed over.
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub verbose: bool,

    /// Print nothing on success.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Download one file from a shell: a URL, a package file name, or a package name.
    Fetch {
        /// A URL, a package file name (looked up in the sync databases), or a package name.
        what: String,
        /// Where to write it [default: ./<file name>]; a directory keeps the file name.
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
    },
    /// Share package files through the local IPFS node: add them with Kubo's unixfs-v1-2025
    /// settings and link them as /pacxfer/<sha256> in its MFS. Only files a sync database
    /// lists with their exact SHA-256 are shared.
    Seed {
        /// The files [default: every package file in pacman's CacheDir].
        #[arg(value_name = "FILE", conflicts_with = "stdin")]
        files: Vec<PathBuf>,
        /// Read package names from standard input, one per line (an ALPM hook's targets),
        /// and seed their files from pacman's CacheDir.
        #[arg(long)]
        stdin: bool,
        /// Share build sources instead: each argument is a PKGBUILD directory (with
        /// .SRCINFO), or a directory of them [default: the current directory]; every source
        /// found there or in $SRCDEST that matches a strong sum (sha256, sha512, b2, ...) its
        /// PKGBUILD pins is shared, linked by SHA-256 and under /pacxfer/sources/<algo>/<hex>.
        #[arg(long, conflicts_with = "stdin")]
        sources: bool,
        /// When the node's API cannot be reached, say so with -v and exit 0 (for hooks).
        #[arg(long)]
        if_running: bool,
    },
    /// Fill and refresh a package cache in IPFS: fetch each repository's database and every
    /// package the cache lacks (verified), add them to the node, link them into one root
    /// (by SHA-256, and in the mirror layout) and publish it to an IPNS key.
    Publish(PublishArgs),
    /// Fetch the next upgrade into pacman's cache ahead of time, several files at once,
    /// without touching pacman's sync databases; `pacman -Syu` then only installs. With
    /// package names: those and their missing dependencies.
    Prefetch(PrefetchArgs),
    /// Publish this node's /pacxfer directory under its own key (its peer ID), so that LAN
    /// peers find what this machine seeded. pacxfer starts it in the background after it
    /// shared a download and after `seed`; `prefetch --seed` publishes when it ends. A record
    /// of that key that pacxfer did not publish is never replaced without --force.
    Announce {
        /// Replace the node's own record even when pacxfer did not publish it.
        #[arg(long)]
        force: bool,
    },
    /// Check the setup, one line per check with the fix for each that fails: pacman and its
    /// XferCommand, the databases, the IPFS node, published views, the prefetch timer.
    Doctor {
        /// Print one JSON array of the checks.
        #[arg(long)]
        json: bool,
    },
    /// What came from where over the last days, from the log of completed downloads: files
    /// and bytes by source, the IPFS hit rate, unchanged databases, time saved.
    Stats {
        /// How many days back.
        #[arg(long, default_value_t = 30, value_name = "N")]
        days: u64,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// makepkg's download agent, for DLAGENTS in makepkg.conf:
    /// 'https::/usr/bin/pacxfer dlagent %u %o'. It reads the sums the PKGBUILD pins for the
    /// file (its .SRCINFO, or makepkg --printsrcinfo), fetches the file from IPFS by them when
    /// a node has it and from upstream otherwise, and writes OUTPUT only with bytes that match.
    Dlagent {
        /// The .SRCINFO to read, or the PKGBUILD's directory [default: found from makepkg].
        #[arg(long, value_name = "PATH")]
        srcinfo: Option<String>,
        /// The source's URL (makepkg's %u), then where to write it (makepkg's %o,
        /// <file>.part). makepkg splits its agent line at spaces: words before these two
        /// are the rest of a --srcinfo path that holds spaces.
        #[arg(value_name = "URL OUTPUT", num_args = 2.., required = true)]
        args: Vec<String>,
    },
    /// Print a completion script for a shell (bash, zsh, fish, ...) on standard output.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Show what the sync databases say about a file or package, and the sources pacxfer
    /// would try, in order; for a PKGBUILD directory, each source's sums and what `dlagent`
    /// would try for it.
    Lookup {
        /// A package file name, a package name, a URL, or a PKGBUILD directory (a path with
        /// a /, or .).
        what: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// The options of `publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// A Server-style mirror URL with $repo and $arch, e.g.
    /// https://mirror.example/$repo/os/$arch.
    #[arg(long, value_name = "URL", conflicts_with = "from_cache")]
    pub mirror: Option<String>,
    /// Publish this machine's sync databases and the packages in pacman's CacheDir
    /// (verified against them), downloading nothing.
    #[arg(long)]
    pub from_cache: bool,
    /// A repository to publish (repeat for several).
    #[arg(
        long = "repo",
        value_name = "NAME",
        required_unless_present = "sources"
    )]
    pub repos: Vec<String>,
    /// Publish a source cache: the build sources of the PKGBUILDs in DIR (one with a
    /// PKGBUILD and its .SRCINFO, or a directory of them such as AUR clones), fetched from
    /// upstream, verified against their sums and linked as sources/<algo>/<hex> (repeat for
    /// several).
    #[arg(long = "sources", value_name = "DIR")]
    pub sources: Vec<PathBuf>,
    /// The architecture for $arch.
    #[arg(long, default_value = "x86_64", value_name = "ARCH")]
    pub arch: String,
    /// The publisher's state (SQLite) [default: /var/lib/pacxfer/publish.sqlite for root,
    /// else $XDG_STATE_HOME/pacxfer/publish.sqlite].
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Unlink files no database has listed for this many days.
    #[arg(long = "keep", default_value_t = 60, value_name = "DAYS")]
    pub keep_days: u64,
    /// Keep at most this many versions of each package (0: no limit).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub keep_versions: usize,
    /// Publish the repositories' databases and their update lists only, no packages (what
    /// `[databases]` clients read; packages already published stay as they are).
    #[arg(long)]
    pub databases_only: bool,
    /// The IPNS key the root is published to (made when missing).
    #[arg(long, default_value = "pacxfer", value_name = "NAME")]
    pub ipns_key: String,
    /// The node's RPC API [default: [share] api].
    #[arg(long, value_name = "ADDRESS")]
    pub api: Option<String>,
    /// Pin the root in this ipfs-cluster (its REST API: http://HOST:PORT,
    /// /ip4/ADDR/tcp/PORT or /unix/PATH) in place of the previous root [default:
    /// [publish] cluster].
    #[arg(long, value_name = "URL")]
    pub cluster: Option<String>,
    /// Print one JSON object as the last line of standard output.
    #[arg(long)]
    pub json: bool,
}

/// The options of `prefetch`.
#[derive(Debug, Args)]
pub struct PrefetchArgs {
    /// Packages to fetch with their missing dependencies [default: the upgrade].
    #[arg(value_name = "PKG")]
    pub packages: Vec<String>,
    /// Downloads at the same time.
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Seed each file into the IPFS node once it arrived (see `seed`).
    #[arg(long)]
    pub seed: bool,
    /// When a complete upgrade is ready, also tell the logged-in users with a desktop
    /// notification (notify-send), as root.
    #[arg(long)]
    pub notify: bool,
}
