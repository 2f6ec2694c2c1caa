//! IPFS as pacxfer sees it: CIDs and how they relate to the sync databases' SHA-256
//! (`cid`), and the gateway path templates that name a file in a node (`template`).
//! The gateway as a download source lives in `gateway`. `rpc` talks to the node's RPC API to put
//! files into it; `views` judges the age of a published cache view.

pub mod cid;
pub mod rpc;
pub mod template;
pub mod views;
