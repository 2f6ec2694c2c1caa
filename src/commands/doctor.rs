//! `pacxfer doctor`: one line per check of the setup, each failing one with its fix, and a
//! non-zero exit when something keeps downloads from working. The checks look at pacman
//! (version, XferCommand, DownloadUser, database signatures on the mirrors), pacxfer's own
//! state (databases and their indexes, the breaker, published views) and the IPFS node
//! (gateway, RPC API, settings that matter), and the prefetch timer.

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

use super::Session;
use crate::db::entry::Query;
use crate::db::syncdb;
use crate::http::client::{Client, ClientOptions, Get};
use crate::ipfs::template;
use crate::sources::breaker::State;
use crate::sources::views;
use crate::ui::progress::Progress;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Works, but costs time or misses something.
    Warn,
    /// Downloads do not work as they should.
    Fail,
    /// Not applicable here.
    Skip,
}

/// One check's line.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub check: &'static str,
    pub status: Status,
    pub detail: String,
    /// What to do, when not ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn check(check: &'static str, status: Status, detail: impl Into<String>) -> Check {
    Check {
        check,
        status,
        detail: detail.into(),
        fix: None,
    }
}

impl Check {
    fn fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }
}

/// Runs `program args`, bounded; its stdout when it succeeded.
fn output(program: &str, args: &[&str]) -> Option<String> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = crate::pacman::conf::run_bounded(&mut cmd, Duration::from_secs(10)).ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// pacman-conf's answer to `args`, or `None` when it failed.
fn pacman_conf(session: &Session, args: &[&str]) -> Option<Vec<String>> {
    session.pacman_conf.lines(args).ok()
}

/// The first value pacman-conf gives for `key`, when it gives one.
pub(crate) fn pacman_conf_value(session: &Session, key: &str) -> Option<String> {
    pacman_conf(session, &[key])
        .and_then(|l| l.into_iter().next())
        .filter(|v| !v.is_empty())
}

/// The user id of `user` (bounded `id -u`).
pub(crate) fn uid_of(user: &str) -> Option<u32> {
    output("id", &["-u", user]).and_then(|s| s.trim().parse().ok())
}

fn pacman_version() -> Check {
    match output("pacman", &["--version"]) {
        Some(text) => {
            let version = text
                .split_whitespace()
                .find(|w| w.starts_with('v') && w[1..].starts_with(|c: char| c.is_ascii_digit()))
                .map(|w| w.trim_start_matches('v').to_string())
                .unwrap_or_else(|| "unknown".into());
            let major: u32 = version
                .split('.')
                .next()
                .and_then(|m| m.parse().ok())
                .unwrap_or(0);
            if (6..=7).contains(&major) {
                check("pacman", Status::Ok, format!("pacman {version}"))
            } else {
                check(
                    "pacman",
                    Status::Warn,
                    format!("pacman {version}: pacxfer is tested with 6.0 to 7.1"),
                )
            }
        }
        None => check("pacman", Status::Fail, "pacman --version did not answer")
            .fix("install pacman; pacxfer is its downloader"),
    }
}

fn xfer_command(session: &Session) -> Check {
    const LINE: &str = "XferCommand = /usr/bin/pacxfer %u %o";
    let Some(lines) = pacman_conf(session, &["XferCommand"]) else {
        return check("xfercommand", Status::Fail, "pacman-conf did not answer")
            .fix("check pacman.conf with `pacman-conf`");
    };
    let Some(line) = lines.first() else {
        return check(
            "xfercommand",
            Status::Warn,
            "no XferCommand: pacman downloads by itself and pacxfer is not used",
        )
        .fix(format!("add `{LINE}` under [options] in pacman.conf"));
    };
    let words: Vec<&str> = line.split_whitespace().collect();
    let names_pacxfer = words
        .first()
        .is_some_and(|w| Path::new(w).file_name().is_some_and(|n| n == "pacxfer"));
    if !names_pacxfer {
        return check(
            "xfercommand",
            Status::Warn,
            format!("XferCommand is {line:?}, not pacxfer"),
        )
        .fix(format!("to use pacxfer: `{LINE}`"));
    }
    if !(words.contains(&"%u") && words.contains(&"%o")) {
        return check(
            "xfercommand",
            Status::Fail,
            format!("XferCommand {line:?} does not pass %u and %o as separate words"),
        )
        .fix(format!("write it as `{LINE}`"));
    }
    if !Path::new(words[0]).is_file() {
        return check(
            "xfercommand",
            Status::Fail,
            format!("XferCommand names {}, which does not exist", words[0]),
        )
        .fix(format!("point it at the installed binary: `{LINE}`"));
    }
    check("xfercommand", Status::Ok, line.clone())
}

fn download_user(session: &Session) -> Check {
    let user = pacman_conf(session, &["DownloadUser"])
        .and_then(|l| l.into_iter().next())
        .filter(|u| !u.is_empty());
    let Some(user) = user else {
        return check(
            "download-user",
            Status::Skip,
            "no DownloadUser: pacxfer runs as root",
        );
    };
    let dir = Path::new("/var/cache/pacxfer");
    let owner = std::fs::metadata(dir)
        .ok()
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m));
    let uid = uid_of(&user);
    match (owner, uid) {
        (Some(o), Some(u)) if o == u => check(
            "download-user",
            Status::Ok,
            format!(
                "DownloadUser {user} keeps its indexes and breaker in {}",
                dir.display()
            ),
        ),
        (_, None) => check(
            "download-user",
            Status::Fail,
            format!("DownloadUser {user} does not exist"),
        )
        .fix("create it (pacman 7's package does) or remove the DownloadUser line"),
        _ => check(
            "download-user",
            Status::Warn,
            format!(
                "{} does not belong to DownloadUser {user}: each call reads the databases again \
                 and a dead gateway costs a timeout on every file",
                dir.display()
            ),
        )
        .fix(
            "install contrib/tmpfiles.d/pacxfer.conf as /usr/lib/tmpfiles.d/pacxfer.conf and run \
             `systemd-tmpfiles --create pacxfer.conf`",
        ),
    }
}

/// Repositories whose mirrors lack `.db.sig` under a SigLevel that asks for it.
fn database_signatures(session: &Session) -> Check {
    let Some(repos) = pacman_conf(session, &["--repo-list"]) else {
        return check("db-signatures", Status::Skip, "no repositories");
    };
    let (mut missing, mut asked, mut unanswered) = (Vec::new(), 0, Vec::new());
    for repo in &repos {
        let level = session.pacman_conf.sig_level(repo);
        let asks = !level
            .iter()
            .any(|l| l == "DatabaseNever" || l == "Never" || l == "DatabaseRequired");
        let optional = level
            .iter()
            .any(|l| l == "DatabaseOptional" || l == "Optional");
        if !(asks && optional) {
            continue;
        }
        let Some(server) = pacman_conf(session, &["--repo", repo, "Server"])
            .and_then(|s| s.into_iter().find(|u| u.starts_with("http")))
        else {
            continue;
        };
        let url = format!("{}/{repo}.db.sig", server.trim_end_matches('/'));
        // Through the proxy the environment names for this mirror, as downloads go.
        let reply = http_client(crate::http::client::proxy_for(&url, |k| {
            std::env::var(k).ok()
        }))
        .and_then(|c| c.get(&url, &Get::default()).ok());
        match reply {
            Some(r) if matches!(r.status, 404 | 410) => {
                asked += 1;
                missing.push(repo.clone());
            }
            Some(_) => asked += 1,
            None => unanswered.push(repo.clone()),
        }
    }
    if asked == 0 && !unanswered.is_empty() {
        return check(
            "db-signatures",
            Status::Warn,
            format!(
                "the mirrors of {} did not answer: their database signatures are not known",
                unanswered.join(", ")
            ),
        )
        .fix("check the network, a proxy (http_proxy), or the Server lines");
    }
    if asked == 0 {
        return check(
            "db-signatures",
            Status::Ok,
            "no repository asks for optional database signatures",
        );
    }
    if missing.is_empty() {
        return check(
            "db-signatures",
            Status::Ok,
            format!("the mirrors of all {asked} repositories that ask have their .db.sig"),
        );
    }
    check(
        "db-signatures",
        Status::Warn,
        format!(
            "no .db.sig on the mirror of {} while SigLevel asks for optional database \
             signatures: with an XferCommand pacman reports an error and waits 2 s per \
             repository on every -Sy",
            missing.join(", ")
        ),
    )
    .fix(format!(
        "under each of [{}] in pacman.conf: `SigLevel = Required DatabaseNever` (the \
         packages stay signed)",
        missing.join("], [")
    ))
}

fn databases(session: &Session) -> Check {
    let progress = Progress::plain(crate::ui::progress::Verbosity::Quiet);
    let dbs = match syncdb::list(&session.dbpath) {
        Ok(d) => d,
        Err(e) => {
            return check("databases", Status::Fail, e.to_string())
                .fix("run `pacman -Sy` once (pacxfer looks files up in the sync databases)")
        }
    };
    match session.find(Query::Filename("pacxfer-doctor-probe"), &[], &progress) {
        Ok(_) => {}
        Err(e) => return check("databases", Status::Fail, e.to_string()),
    }
    let indexed = dbs
        .iter()
        .filter(|db| {
            matches!(
                crate::db::index::lookup(
                    &session.places,
                    &db.path,
                    &db.repo,
                    Query::Filename("pacxfer-doctor-probe")
                ),
                Ok(crate::db::index::Lookup::Indexed(..))
            )
        })
        .count();
    let names: Vec<&str> = dbs.iter().map(|d| d.repo.as_str()).collect();
    if indexed == dbs.len() {
        check(
            "databases",
            Status::Ok,
            format!("{} readable and indexed ({})", dbs.len(), names.join(" ")),
        )
    } else {
        check(
            "databases",
            Status::Warn,
            format!(
                "{} readable, {indexed} indexed: no cache directory pacxfer may write, so each \
                 call reads the databases",
                dbs.len()
            ),
        )
        .fix(format!(
            "let pacxfer keep a cache: {}",
            session
                .places
                .refusals()
                .first()
                .cloned()
                .unwrap_or_else(|| "set cache_dir in /etc/pacxfer.conf".into())
        ))
    }
}

fn gateway(session: &Session, client: Option<&Client>) -> Vec<Check> {
    let config = &session.config;
    if !config.gateway.enabled {
        return vec![check("gateway", Status::Skip, "[gateway] enabled = false")];
    }
    let mut out = Vec::new();
    match crate::sources::gateway::breaker(config).state() {
        State::Closed => out.push(check("breaker", Status::Ok, "closed: the gateway is asked")),
        State::Open { left, reason } => out.push(
            check(
                "breaker",
                Status::Warn,
                format!(
                    "the gateway is skipped for {}s more after: {reason}",
                    left.as_secs()
                ),
            )
            .fix("it closes by itself; remove the breaker file in the cache to retry at once"),
        ),
    }
    let Some(client) = client else {
        return out;
    };
    // A CID no node holds: the SHA-256 of nothing-in-particular.
    let probe = crate::ipfs::cid::raw_block_cid(&[0x5a; 32]);
    let url = format!("{}/ipfs/{probe}", config.gateway_base());
    let started = Instant::now();
    let answer = client.get(
        &url,
        &Get {
            only_if_cached: true,
            ..Get::default()
        },
    );
    let took = started.elapsed();
    let ms = took.as_secs_f64() * 1000.0;
    out.push(match answer {
        Ok(r) if r.status == 412 && took < Duration::from_millis(500) => check(
            "gateway",
            Status::Ok,
            format!(
                "{} answers a missing block with 412 in {ms:.1} ms",
                config.gateway_base()
            ),
        ),
        Ok(r) if r.status == 412 => check(
            "gateway",
            Status::Warn,
            format!(
                "{} answers 412, but only after {ms:.0} ms",
                config.gateway_base()
            ),
        )
        .fix("a slow node makes every cache miss slower; check its load"),
        Ok(r) => check(
            "gateway",
            Status::Warn,
            format!(
                "{} answered HTTP {} to a cache-only request for a missing block, not 412",
                config.gateway_base(),
                r.status
            ),
        )
        .fix("use a Kubo gateway (it answers 412 to `Cache-Control: only-if-cached`)"),
        Err(e) => check(
            "gateway",
            Status::Warn,
            format!(
                "{}: {e}; downloads come from the mirror",
                config.gateway_base()
            ),
        )
        .fix(
            "start the IPFS node (`systemctl enable --now ipfs@USER` on Arch) or set [gateway] url",
        ),
    });
    for t in &config.gateway.paths {
        match template::validate(t) {
            Ok(_) => {}
            Err(e) => out.push(
                check("templates", Status::Fail, format!("{t:?}: {e}"))
                    .fix("correct [gateway] paths in /etc/pacxfer.conf"),
            ),
        }
        if let Some(view) = views::view_of(t) {
            out.push(match views::age(config, &session.places, view) {
                Some(views::Age::Published(at)) => {
                    let old = views::since(at);
                    if !config.gateway.max_age.is_zero() && old > config.gateway.max_age {
                        check(
                            "views",
                            Status::Warn,
                            format!(
                                "{view} was published {} ago, more than [gateway] max_age: not used",
                                views::shown_age(old)
                            ),
                        )
                        .fix("ask its publisher, or remove the template")
                    } else {
                        check(
                            "views",
                            Status::Ok,
                            format!("{view} published {} ago", views::shown_age(old)),
                        )
                    }
                }
                Some(views::Age::Unknown) => check(
                    "views",
                    Status::Ok,
                    format!("{view}: not a view pacxfer published (no pacxfer.json)"),
                ),
                None => check(
                    "views",
                    Status::Warn,
                    format!("{view}: the gateway did not say how old it is"),
                ),
            });
        }
    }
    if !out.iter().any(|c| c.check == "templates") {
        out.push(check(
            "templates",
            Status::Ok,
            format!("{} valid", config.gateway.paths.len()),
        ));
    }
    out
}

fn node_api(session: &Session) -> Vec<Check> {
    let share = &session.config.share;
    let rpc = match crate::ipfs::rpc::Rpc::new(
        &share.api,
        share.api_auth.as_deref(),
        Duration::from_secs(5),
    ) {
        Ok(r) => r,
        Err(e) => {
            return vec![
                check("api", Status::Fail, e).fix("correct [share] api in /etc/pacxfer.conf")
            ]
        }
    };
    let id = match rpc.call("version", &[]) {
        Ok(v) => v,
        Err(e) => {
            return vec![check(
                "api",
                Status::Warn,
                format!("{e}: nothing is seeded or found by SHA-256 in the node"),
            )
            .fix("start the IPFS node, or set [share] api")]
        }
    };
    let mut out = vec![check(
        "api",
        Status::Ok,
        format!(
            "{} answers (Kubo {})",
            rpc.endpoint(),
            id["Version"]
                .as_str()
                .unwrap_or("?")
                .chars()
                .take(64)
                .collect::<String>()
        ),
    )];
    let no_fetch = rpc
        .call("config", &[("arg", "Gateway.NoFetch")])
        .ok()
        .and_then(|v| v["Value"].as_bool())
        .unwrap_or(false);
    out.push(
        if no_fetch && !session.config.gateway.network_wait().is_zero() {
            check(
            "kubo-settings",
            Status::Warn,
            "Gateway.NoFetch is true, so the node can never fetch a file from LAN peers or the \
             IPFS network",
        )
        .fix("set Gateway.NoFetch to false, or network_timeout to \"0\"")
        } else {
            check(
                "kubo-settings",
                Status::Ok,
                format!(
                    "Gateway.NoFetch = {no_fetch}; pacxfer asks the node cache-only first{}",
                    if session.config.gateway.network_wait().is_zero() {
                        " and never waits on the network"
                    } else {
                        ""
                    }
                ),
            )
        },
    );
    // Seeded files: added with the profile, so the same file gives the same CID everywhere.
    // Listed by CID (`ls`), not `files/ls --long`, which would load every entry into the
    // node's MFS and slow each later seed.
    let root = rpc
        .call("files/stat", &[("arg", "/pacxfer")])
        .ok()
        .and_then(|v| v["Hash"].as_str().map(str::to_string))
        .filter(|h| h.bytes().all(|b| b.is_ascii_alphanumeric()));
    if let Some(root) = root {
        let (mut count, mut odd) = (0u64, Vec::new());
        let arg = format!("/ipfs/{root}");
        let listed = rpc.each_line(
            "ls",
            &[
                ("arg", arg.as_str()),
                ("resolve-type", "false"),
                ("size", "true"),
                ("stream", "true"),
            ],
            64 << 20,
            |line| {
                for o in line["Objects"].as_array().into_iter().flatten() {
                    for l in o["Links"].as_array().into_iter().flatten() {
                        count += 1;
                        let hash = l["Hash"].as_str().unwrap_or_default();
                        let size = l["Size"].as_u64().unwrap_or(u64::MAX);
                        // Up to 1 MiB the profile makes one raw block (`bafk...`); CIDv0
                        // (`Qm...`) is never the profile's.
                        let other = hash.starts_with("Qm")
                            || (size <= 1 << 20 && !hash.starts_with("bafk"));
                        if other && odd.len() < 5 {
                            odd.push(hash.to_string());
                        }
                    }
                }
                Ok(())
            },
        );
        out.push(match listed {
            Err(e) => check("seeded", Status::Warn, format!("/pacxfer not listed: {e}")),
            Ok(()) if odd.is_empty() => check(
                "seeded",
                Status::Ok,
                format!("{count} files seeded under /pacxfer"),
            ),
            Ok(()) => check(
                "seeded",
                Status::Warn,
                format!(
                    "seeded files added with other settings than unixfs-v1-2025 (e.g. {}): \
                     other machines cannot find them by the same CID",
                    odd[0]
                ),
            )
            .fix("seed them again: `pacxfer seed`"),
        });
    }
    out.push(lan(session, &rpc));
    out
}

/// Sharing on the LAN: how many LAN peers the node is connected to, whether the node finds
/// them by itself (mDNS), and whether what this machine seeded is published for them.
fn lan(session: &Session, rpc: &crate::ipfs::rpc::Rpc) -> Check {
    use crate::ipfs::lan;
    if !session.config.share.lan {
        return check("lan", Status::Skip, "[share] lan = false");
    }
    let (all, on_lan) = match lan::peer_counts(rpc) {
        Ok(c) => c,
        Err(e) => return check("lan", Status::Warn, format!("no peer list: {e}")),
    };
    let peers = format!("{on_lan} LAN peers connected ({all} peers in all)");
    let mdns = rpc
        .call("config", &[("arg", "Discovery.MDNS.Enabled")])
        .ok()
        .and_then(|v| v["Value"].as_bool())
        .unwrap_or(true);
    if !mdns {
        return check(
            "lan",
            Status::Warn,
            format!("{peers}; mDNS is off, so the node finds no LAN peer by itself"),
        )
        .fix("ipfs config --json Discovery.MDNS.Enabled true, then restart the node");
    }
    let root = match lan::mfs_root(rpc) {
        Ok(root) => root,
        Err(crate::ipfs::rpc::RpcError::Failed { message, .. })
            if message.contains("does not exist") =>
        {
            return check(
                "lan",
                Status::Ok,
                format!("{peers}; nothing seeded here yet for them to find"),
            )
        }
        Err(e) => {
            return check(
                "lan",
                Status::Warn,
                format!("{peers}; /pacxfer not read: {e}"),
            )
        }
    };
    let id = match lan::own_id(rpc) {
        Ok(id) => id,
        Err(e) => return check("lan", Status::Warn, format!("{peers}; no peer ID: {e}")),
    };
    if let Ok(lan::Owner::Other(path)) = lan::owner(rpc, &id, None) {
        return check(
            "lan",
            Status::Warn,
            format!(
                "{peers}; this node's own name points at {}, which pacxfer did not publish, so \
                 LAN peers cannot find what is seeded here",
                crate::ui::answer::one_line(&path)
            ),
        )
        .fix("[share] lan = false to keep that record, or `pacxfer announce --force`");
    }
    let published = lan::own_record(rpc, &id).map(|r| (id, r));
    match published {
        Ok((id, Some(r))) if r == root => check(
            "lan",
            Status::Ok,
            format!("{peers}; what is seeded here is published under {id}"),
        ),
        Ok((_, found)) => check(
            "lan",
            Status::Warn,
            format!(
                "{peers}; LAN peers {} this node's /pacxfer",
                if found.is_some() {
                    "see an older"
                } else {
                    "cannot find"
                }
            ),
        )
        .fix("pacxfer announce"),
        Err(e) => check(
            "lan",
            Status::Warn,
            format!("{peers}; not known whether /pacxfer is published: {e}"),
        ),
    }
}

/// `[databases]`: whether the publisher's update list answers for each repository named.
fn update_lists(session: &Session) -> Check {
    let db = &session.config.databases;
    if db.publisher.is_none() {
        return check("update lists", Status::Skip, "no [databases] publisher");
    }
    if db.repos.is_empty() {
        return check(
            "update lists",
            Status::Warn,
            "[databases] names a publisher but no repository",
        )
        .fix("list the repositories to sync through it in [databases] repos");
    }
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for repo in &db.repos {
        let Some(name) = db.publisher_for(repo) else {
            continue;
        };
        match crate::sources::updates::head_of(&session.config, name, repo, &format!("{repo}.db")) {
            Ok((version, age)) => good.push(format!(
                "{repo} version {version} (checked {} ago)",
                crate::sources::views::shown_age(age)
            )),
            Err(why) => bad.push(format!("{repo}: {why}")),
        }
    }
    if bad.is_empty() {
        check("update lists", Status::Ok, good.join(", "))
    } else {
        check(
            "update lists",
            Status::Warn,
            format!(
                "{} (those databases come whole from the mirror)",
                bad.join("; ")
            ),
        )
        .fix("check [databases] publisher and that the publisher's `pacxfer publish` runs")
    }
}

/// Whether makepkg's `DLAGENTS` send http and https sources through `pacxfer dlagent`.
fn build_sources() -> Check {
    use crate::makepkg::conf;
    let files = conf::files();
    let agents = conf::dlagents(&files);
    let ours = |proto: &str| {
        conf::agent_for(&agents, proto).filter(|(cmd, _)| {
            let words: Vec<&str> = cmd
                .split_once("::")
                .map_or("", |(_, c)| c)
                .split(' ')
                .collect();
            words.first().is_some_and(|w| w.ends_with("pacxfer")) && words.contains(&"dlagent")
        })
    };
    let line = "/usr/share/pacxfer/makepkg.conf.d/pacxfer.conf to /etc/makepkg.conf.d/ (or its DLAGENTS line, double-quoted with --srcinfo $startdir, to makepkg.conf)";
    match (ours("http"), ours("https")) {
        (Some((cmd, file)), Some(_)) => {
            let detail = format!(
                "http and https sources through pacxfer dlagent ({})",
                file.display()
            );
            if cmd.contains(&format!("--srcinfo {}", conf::STARTDIR)) {
                check("build sources", Status::Ok, detail)
            } else if cmd.contains("--srcinfo $startdir") {
                check(
                    "build sources",
                    Status::Warn,
                    format!("{detail}, but $startdir is in single quotes: makepkg passes it as it is, and the agent finds the PKGBUILD on its own"),
                )
                .fix(format!("copy {line}"))
            } else {
                check(
                    "build sources",
                    Status::Warn,
                    format!("{detail}, without --srcinfo: with SRCDEST set, a build started outside a shell takes its sources from upstream unchecked"),
                )
                .fix(format!("copy {line}"))
            }
        }
        (None, None) => check(
            "build sources",
            Status::Skip,
            "makepkg's DLAGENTS do not call pacxfer: PKGBUILD sources come from upstream only",
        )
        .fix(format!("to fetch them by their checksums, copy {line}")),
        _ => check(
            "build sources",
            Status::Warn,
            "only one of http and https goes through pacxfer dlagent in makepkg's DLAGENTS",
        )
        .fix(format!("copy {line}")),
    }
}

fn prefetch_timer() -> Check {
    let Some(text) = output(
        "systemctl",
        &[
            "show",
            "pacxfer-prefetch.timer",
            "pacxfer-prefetch.service",
            "--property=LoadState,ActiveState,LastTriggerUSec,Result",
        ],
    ) else {
        return check("prefetch", Status::Skip, "no systemd here");
    };
    let value = |key: &str| {
        text.lines()
            .filter_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let load = value("LoadState");
    if load.first().map(String::as_str) != Some("loaded") {
        return check(
            "prefetch",
            Status::Skip,
            "pacxfer-prefetch.timer is not installed",
        )
        .fix(
            "to fetch upgrades in the background: `systemctl enable --now pacxfer-prefetch.timer`",
        );
    }
    let last = value("LastTriggerUSec")
        .first()
        .cloned()
        .unwrap_or_default();
    let result = value("Result").last().cloned().unwrap_or_default();
    match result.as_str() {
        _ if value("ActiveState").first().map(String::as_str) != Some("active") => check(
            "prefetch",
            Status::Warn,
            "pacxfer-prefetch.timer is installed but not active: nothing is prefetched",
        )
        .fix("systemctl enable --now pacxfer-prefetch.timer"),
        "success" | "" => check(
            "prefetch",
            Status::Ok,
            format!(
                "timer {}, last run {}",
                value("ActiveState").first().cloned().unwrap_or_default(),
                if last.is_empty() || last == "n/a" {
                    "never"
                } else {
                    last.as_str()
                }
            ),
        ),
        other => check(
            "prefetch",
            Status::Warn,
            format!("the last prefetch ended with {other} ({last})"),
        )
        .fix("see `journalctl -u pacxfer-prefetch.service`"),
    }
}

/// A client with short timeouts for one question.
fn http_client(proxy: Option<String>) -> Option<Client> {
    Client::new(&ClientOptions {
        connect_timeout: Duration::from_secs(2),
        stall_timeout: Duration::from_secs(5),
        max_redirects: 3,
        proxy,
        user_agent: crate::USER_AGENT.to_string(),
    })
    .ok()
}

pub fn doctor(session: &Session, json: bool) -> Result<ExitCode> {
    let client = http_client(crate::http::client::proxy_for(
        session.config.gateway_base(),
        |k| std::env::var(k).ok(),
    ));
    let mut checks = vec![
        pacman_version(),
        xfer_command(session),
        download_user(session),
        databases(session),
    ];
    checks.push(database_signatures(session));
    checks.push(update_lists(session));
    checks.extend(gateway(session, client.as_ref()));
    checks.extend(node_api(session));
    checks.push(prefetch_timer());
    checks.push(build_sources());

    if json {
        println!("{}", crate::ui::answer::json_line(&checks)?);
    } else {
        for c in &checks {
            let tag = match c.status {
                Status::Ok => "ok  ",
                Status::Warn => "warn",
                Status::Fail => "FAIL",
                Status::Skip => "--  ",
            };
            let mut line = format!("{tag} {:<14} {}", c.check, c.detail);
            if let Some(fix) = &c.fix {
                line.push_str(&format!(" -> {fix}"));
            }
            println!("{}", crate::ui::shown::shown(&line));
        }
    }
    Ok(if checks.iter().any(|c| c.status == Status::Fail) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
