//! HTTP as pacxfer speaks it: one blocking client for gateways and mirrors (`client`: GET with
//! Range and If-Modified-Since, bounded in time and size, redirects followed by hand), plain
//! http through a proxy in the absolute form curl uses (`proxy`), and HTTP dates (`date`).
//! Uses only `ui`.

pub mod client;
pub mod date;
pub mod proxy;
