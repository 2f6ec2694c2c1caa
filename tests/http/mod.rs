//! HTTP (`src/http/`): proxies as curl uses them (`proxy`), and servers that lie, stall
//! or flood (`hostile_servers`).

pub(crate) mod hostile_servers;
pub(crate) mod proxy;
