//! Where bytes come from: the IPFS gateway (`gateway`, cache-only first, the network within a
//! budget), HTTP and `file://` mirrors (`mirror`), the circuit breaker that skips a gateway
//! that is down or hung (`breaker`), published cache views and their age (`views`), and why a
//! source did not deliver (`error`). They know nothing of verification: the transfer judges
//! what they send. Uses `ui`, `cache`, `pacman`, `http` and `config`.

pub mod breaker;
pub mod error;
pub mod gateway;
pub mod mirror;
pub mod updates;
pub mod views;
