//! One file's transfer (`src/transfer/`): the XferCommand call end to end (`xfer`) and
//! the fault matrix of every gateway fault against every mirror fault (`faults`).

pub(crate) mod faults;
pub(crate) mod xfer;
