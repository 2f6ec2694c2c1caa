//! Why a source did not deliver, as the source itself can tell: no connection, a status that
//! carries no file, a range answer that does not continue the file, silence. What the bytes
//! then prove (wrong size, wrong hash, too many) is the transfer's to judge: it maps these into
//! its own failures (`transfer::download::Failure`).

use std::fmt;
use std::io;

use crate::http::client::{HttpError, RangeError};

/// Why one source did not deliver.
#[derive(Debug)]
pub enum SourceError {
    /// The local IPFS node does not hold it (412 to `only-if-cached`).
    NotCached,
    /// No response: connection refused, unreachable, timeout, TLS.
    Request(HttpError),
    /// An HTTP status that carries no file.
    Status(u16),
    /// 304 (not modified) to a request that set no condition: there is no file to keep.
    UnaskedNotModified,
    /// A range answer that does not continue the file.
    Range(RangeError),
    /// The source went silent for the stall timeout.
    Stalled,
    /// No time left to let the IPFS node search the network.
    NoBudget,
    /// A local (`file://`) source could not be read.
    Local(io::Error),
    /// Anything else, said in words.
    Other(String),
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceError::NotCached => write!(f, "not in the local IPFS node"),
            SourceError::Request(e) => write!(f, "{e}"),
            SourceError::Status(code) => write!(f, "HTTP {code}"),
            SourceError::UnaskedNotModified => write!(
                f,
                "HTTP 304 (not modified) to a request that asked for no condition"
            ),
            SourceError::Range(RangeError::NotSatisfiable) => {
                write!(f, "HTTP 416: cannot resume from this offset")
            }
            SourceError::Range(RangeError::Wrong(why)) => write!(f, "bad range answer: {why}"),
            SourceError::Stalled => write!(f, "stalled: no data within the stall timeout"),
            SourceError::NoBudget => write!(f, "network_timeout used up"),
            SourceError::Local(e) => write!(f, "{e}"),
            SourceError::Other(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for SourceError {}
