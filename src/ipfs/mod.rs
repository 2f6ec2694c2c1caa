//! IPFS as pacxfer sees it: CIDs and how they relate to the sync databases' SHA-256
//! (`cid`), the gateway path templates that name a file in a node (`template`), the client of
//! the node's RPC API (`rpc`), and seeding files into the node's MFS by SHA-256 (`seed`, the
//! engine of `pacxfer seed`), and finding what LAN peers seeded (`lan`). The gateway as a download source, and published views, are
//! `sources`. Uses `ui` and `db`'s checksum parsing.

pub mod cid;
pub mod lan;
pub mod rpc;
pub mod seed;
pub mod template;
