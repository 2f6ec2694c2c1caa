//! `pacxfer publish` (`src/publish/`): runs of the publisher against a real node
//! (`runs`) and pins in a real ipfs-cluster (`cluster_pins`).

pub(crate) mod cluster_pins;
pub(crate) mod runs;
pub(crate) mod updates;
