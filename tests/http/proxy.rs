//! Proxies as curl uses them, through Debian's real squid on loopback (a throwaway config on a
//! free port, its own log and state directory, stopped by its process id at the end): a plain
//! `http://` mirror is asked through the proxy in the absolute form (`GET http://...`), which
//! squid's default rules allow, and an `https://` mirror through `CONNECT`, which they allow only
//! to TLS ports. The https mirror is `openssl s_server -WWW` with a throwaway certificate that
//! pacxfer is told to trust through `SSL_CERT_FILE`. The mirror's name resolves only in squid's
//! own hosts file, so nothing reaches it but through the proxy.
//!
//! And TLS that fails counts as an unreachable gateway for the circuit breaker.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::fixtures::REPO;
use crate::harness::util::{dead_port, pacxfer, run, Run, TestDir};
use crate::harness::world::World;

/// The mirror's name: known to squid's hosts file only.
const HOST: &str = "mirror.pacxfer.test";

/// A process stopped by its id when dropped.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Waits until something listens on `port` of 127.0.0.1.
fn wait_listening(port: u16, what: &str, log: &Path) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what} did not listen on {port}:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A throwaway certificate for `names` (`DNS:x` or `IP:x`) in `dir`: (cert.pem, key.pem).
fn certificate(dir: &Path, cn: &str, names: &str) -> (PathBuf, PathBuf) {
    let mut c = Command::new("openssl");
    c.args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout"])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .args(["-days", "1", "-subj", &format!("/CN={cn}"), "-addext"])
        .arg(format!("subjectAltName={names}"))
        // A server's own certificate, not a CA's (webpki refuses a CA as a server).
        .args(["-addext", "basicConstraints=critical,CA:FALSE"]);
    run(&mut c).success();
    (dir.join("cert.pem"), dir.join("key.pem"))
}

/// `openssl s_server -WWW` serving the files below `root` over TLS with `cert`.
fn tls_server(root: &Path, cert: &Path, key: &Path, log: PathBuf) -> (Daemon, u16) {
    let port = dead_port();
    let out = std::fs::File::create(&log).expect("create log");
    let child = Command::new("openssl")
        .args(["s_server", "-quiet", "-WWW", "-cert"])
        .arg(cert)
        .arg("-key")
        .arg(key)
        .args(["-accept", &port.to_string()])
        .current_dir(root)
        .stdin(Stdio::piped())
        .stdout(out.try_clone().expect("dup log"))
        .stderr(out)
        .spawn()
        .expect("start openssl s_server");
    let d = Daemon { child, log };
    wait_listening(port, "openssl s_server", &d.log);
    (d, port)
}

/// squid on a free loopback port with its own config, logs and hosts file (`HOST` is
/// 127.0.0.1), allowing what Debian's default config allows: GET to any port from localhost,
/// CONNECT only to `tls_port`.
fn squid(dir: &Path, tls_port: u16) -> (Daemon, u16) {
    let state = dir.join("squid");
    std::fs::create_dir_all(&state).expect("mkdir squid");
    // squid drops to the `proxy` user: its directory must be its own, and reachable.
    run(Command::new("chown").arg("proxy:proxy").arg(&state)).success();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let port = dead_port();
    let hosts = state.join("hosts");
    std::fs::write(&hosts, format!("127.0.0.1 {HOST}\n")).expect("write hosts");
    let conf = state.join("squid.conf");
    std::fs::write(
        &conf,
        format!(
            "http_port 127.0.0.1:{port}\n\
             acl SSL_ports port {tls_port}\n\
             acl CONNECT method CONNECT\n\
             http_access deny CONNECT !SSL_ports\n\
             http_access allow localhost\n\
             http_access deny all\n\
             cache deny all\n\
             hosts_file {hosts}\n\
             dns_nameservers 127.0.0.1\n\
             access_log stdio:{state}/access.log\n\
             cache_log {state}/cache.log\n\
             pid_filename {state}/squid.pid\n\
             coredump_dir {state}\n\
             cache_effective_user proxy\n\
             shutdown_lifetime 0 seconds\n\
             visible_hostname pacxfer-test\n",
            hosts = hosts.display(),
            state = state.display(),
        ),
    )
    .expect("write squid.conf");
    let log = state.join("stderr.log");
    let out = std::fs::File::create(&log).expect("create log");
    let child = Command::new("squid")
        .args(["-N", "-f"])
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("dup log"))
        .stderr(out)
        .spawn()
        .expect("start squid (contrib/deps.sh installs it)");
    let d = Daemon { child, log };
    wait_listening(port, "squid", &d.log);
    (d, port)
}

/// squid's access log.
fn access_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("squid/access.log")).unwrap_or_default()
}

/// squid's access log once it holds `needle` (squid writes a CONNECT tunnel's line when the
/// tunnel closes, a moment after pacxfer has exited), or as it is after 5 s.
fn access_log_with(dir: &Path, needle: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let log = access_log(dir);
        if log.contains(needle) || std::time::Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// `pacxfer -v URL OUT` with `http_proxy`/`https_proxy` set to squid, and `SSL_CERT_FILE`.
fn through(w: &World, proxy: u16, cert: &Path, url: &str, out: &Path) -> Run {
    let mut cmd = pacxfer();
    cmd.env_remove("PACXFER_CACHE_DIR")
        .env("http_proxy", format!("http://127.0.0.1:{proxy}"))
        .env("https_proxy", format!("http://127.0.0.1:{proxy}"))
        .env("SSL_CERT_FILE", cert)
        .arg("--config")
        .arg(&w.config)
        .arg("-v")
        .arg(url)
        .arg(out);
    run(&mut cmd)
}

/// Through Debian's squid: an `http://` mirror is one GET in the absolute form (no CONNECT,
/// which squid refuses to that port, as `curl -p` shows), an `https://` mirror a CONNECT to
/// its TLS port then TLS to the mirror's own name.
#[test]
fn plain_http_goes_through_squid_as_curl_sends_it_and_https_through_connect() {
    let w = World::new("squid", false);
    let certs = w.dir.join("certs");
    std::fs::create_dir_all(&certs).expect("mkdir certs");
    let (cert, key) = certificate(&certs, HOST, &format!("DNS:{HOST}"));
    let (tls, tls_port) = tls_server(
        &w.dir.join("mirror"),
        &cert,
        &key,
        w.dir.join("s_server.log"),
    );
    let (squid, proxy) = squid(w.dir.path(), tls_port);
    let (tiny, other) = (w.fx.tiny.clone(), w.fx.other.clone());
    let path = |file: &str| format!("/{REPO}/os/x86_64/{file}");

    // http://: one GET in the absolute form, no CONNECT (squid would refuse it to this port).
    let url = format!("http://{HOST}:{}{}", w.mirror.port, path(&tiny.filename));
    let out = w.out("tiny.part");
    let r = through(&w, proxy, &cert, &url, &out);
    r.success().stderr_has("from mirror");
    w.assert_same(&out, &tiny.path, &r);
    let log = access_log_with(w.dir.path(), &format!("GET {url}"));
    assert!(
        log.contains(&format!("GET {url}")) && !log.contains("CONNECT"),
        "{}",
        r.explain(&format!("squid's access log:\n{log}\n{}", squid.log_text()))
    );
    assert_eq!(
        w.mirror.hits_for(&tiny.filename).len(),
        1,
        "{}",
        w.mirror.log_text()
    );

    // https://: CONNECT to the TLS port, then TLS to the mirror's own name.
    let url = format!("https://{HOST}:{tls_port}{}", path(&other.filename));
    let out = w.out("other.part");
    let r = through(&w, proxy, &cert, &url, &out);
    r.success().stderr_has("from mirror");
    w.assert_same(&out, &other.path, &r);
    let log = access_log_with(w.dir.path(), &format!("CONNECT {HOST}:{tls_port}"));
    assert!(
        log.contains(&format!("CONNECT {HOST}:{tls_port}")),
        "{}",
        r.explain(&format!("squid's access log:\n{log}\n{}", tls.log_text()))
    );
    // The plain mirror was not asked for it.
    assert!(w.mirror.hits_for(&other.filename).is_empty());

    // What ureq alone would have done: CONNECT for plain http. squid refuses it.
    let out = w.out("refused.part");
    let mut c = Command::new("curl");
    c.args(["-s", "-o"])
        .arg(&out)
        .args(["-w", "%{http_code}", "-p", "-x"])
        .arg(format!("http://127.0.0.1:{proxy}"))
        .arg(format!(
            "http://{HOST}:{}{}",
            w.mirror.port,
            path(&tiny.filename)
        ));
    let refused = run(&mut c);
    assert!(
        access_log_with(w.dir.path(), &format!("CONNECT {HOST}:{}", w.mirror.port))
            .contains(&format!("CONNECT {HOST}:{}", w.mirror.port)),
        "{}",
        refused.explain("curl -p did not tunnel")
    );
    assert!(
        !refused.output.status.success(),
        "{}",
        refused.explain("squid let a CONNECT to a plain http port through")
    );
}

/// A gateway whose certificate is refused opens the breaker like one that refuses
/// connections: the next call skips it.
#[test]
fn a_gateway_whose_tls_fails_is_skipped_like_a_dead_one() {
    let mut w = World::new("breaker-tls", false);
    let d = TestDir::new("breaker-tls-cert");
    let (cert, key) = certificate(d.path(), "127.0.0.1", "IP:127.0.0.1");
    // A certificate nobody trusts: the handshake fails.
    let (_tls, port) = tls_server(d.path(), &cert, &key, d.join("s_server.log"));
    w.configure(&format!("https://127.0.0.1:{port}"), &["/ipfs/{cid}"], "");
    let tiny = w.fx.tiny.clone();

    let r = w.xfer_verbose(&w.url(&tiny.filename), &w.out("1.part"));
    r.success()
        .stderr_has("TLS: invalid peer certificate")
        .stderr_has("from mirror");
    let r = w.xfer_verbose(&w.url(&tiny.filename), &w.out("2.part"));
    r.success()
        .stderr_has("circuit open after: cannot connect: TLS")
        .stderr_has("from mirror");
    w.assert_same(&w.out("2.part"), &tiny.path, &r);
}
