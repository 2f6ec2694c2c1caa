//! Where bytes come from: the IPFS gateway (`gateway`, cache-only first, the network within a
//! budget), HTTP and `file://` mirrors (`mirror`), the circuit breaker that skips a gateway
//! that is down or hung (`breaker`), published cache views and their age (`views`), and why a
//! source did not deliver (`error`), and a database built from a publisher's update list
//! (`updates`, checked against the SHA-256 the publisher recorded before the mirror is asked
//! about it). They know nothing of a package's verification: the transfer judges what they
//! send. Uses `ui`, `cache`, `pacman`, `db`, `http` and `config`.

pub mod breaker;
pub mod error;
pub mod gateway;
pub mod mirror;
pub mod updates;
pub mod views;
