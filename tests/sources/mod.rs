//! The sources (`src/sources/`): the gateway's circuit breaker (`breaker`).

pub(crate) mod breaker;
