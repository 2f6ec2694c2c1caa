//! The harness every test uses: a fresh directory per test and the one way to spawn pacxfer
//! with a cleaned environment (`util`), one test's world of mirror, databases, node and configs
//! (`world`), the test mirror (`httpd`), a server with one canned reply for faults (`canned`) and the fault-injecting server (`faultd`), throwaway Kubo
//! nodes (`kubo`), a simulated LAN of machines in network namespaces (`lan`) and ipfs-cluster peers (`cluster`), the pacman 7 root (`chroot`), and the
//! packages and repository built once with makepkg (`fixtures`).

pub(crate) mod builder;
pub(crate) mod canned;
pub(crate) mod chroot;
pub(crate) mod cluster;
pub(crate) mod faultd;
pub(crate) mod fixtures;
pub(crate) mod history;
pub(crate) mod httpd;
pub(crate) mod kubo;
pub(crate) mod lan;
pub(crate) mod util;
pub(crate) mod world;
