//! IPFS (`src/ipfs/`): what Kubo's gateway answers and how pacxfer reads it
//! (`node_behaviour`), the RPC client (`rpc`), seeding and finding by SHA-256 (`seed`), sharing on a simulated LAN (`lan`).

pub(crate) mod lan;
pub(crate) mod node_behaviour;
pub(crate) mod rpc;
pub(crate) mod seed;
