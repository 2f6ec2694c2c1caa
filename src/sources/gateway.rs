//! The IPFS gateway as a source: a GET on one expanded template, first with
//! `Cache-Control: only-if-cached` so that a node lacking the file answers 412 at once, and
//! the statuses a gateway uses mapped to why it did not serve. Never trusted: what it sends
//! is verified by the download loop like any other source.

use std::time::Duration;

use crate::cache::Places;
use crate::config::Config;
use crate::http::client::{Client, ClientOptions, Get, HttpError, Stream};
use crate::sources::breaker::{Breaker, State};
use crate::sources::error::SourceError;

/// The gateway: its HTTP agent and its circuit breaker.
pub struct Gateway {
    client: Client,
    breaker: Breaker,
}

/// The gateway of `config`: short connect timeout, no proxy for a loopback address, and the
/// breaker kept with the indexes.
pub fn client(config: &Config) -> Result<Gateway, HttpError> {
    Ok(Gateway {
        client: http_client(config)?,
        breaker: breaker(config),
    })
}

/// The HTTP agent for the configured gateway (also what update lists are read through).
pub(crate) fn http_client(config: &Config) -> Result<Client, HttpError> {
    Client::new(&ClientOptions {
        connect_timeout: config.gateway.connect_timeout,
        stall_timeout: config.gateway.stall_timeout,
        max_redirects: 3,
        proxy: crate::http::client::proxy_for(config.gateway_base(), |k| std::env::var(k).ok()),
        user_agent: crate::USER_AGENT.to_string(),
    })
}

/// The circuit breaker of the configured gateway.
pub fn breaker(config: &Config) -> Breaker {
    Breaker::new(
        Places::new(config.cache_dir.as_deref()),
        config.gateway_base(),
        config.gateway.breaker,
    )
}

impl Gateway {
    /// Closes or opens the breaker once a request is over: a whole answer (the file, or a
    /// status saying why not) closes it; an answer that then stalled or dripped below the
    /// speed floor opens it, so the next calls do not wait on the same hung node. A request that
    /// brought no answer was already handled by [`open`]. `Err(None)`: the source answered,
    /// and its bytes were judged wrong.
    pub fn settle(&self, outcome: Result<(), Option<&SourceError>>) {
        match outcome {
            Ok(()) => self.breaker.reset(),
            Err(Some(SourceError::Request(_) | SourceError::NoBudget)) => {}
            // Searching the network or not, a node that stalls mid-body would stall the next
            // call the same way.
            Err(Some(SourceError::Stalled)) => self
                .breaker
                .trip("answered, then stalled or sent less than 1 byte/s"),
            Err(_) => self.breaker.reset(),
        }
    }
}

/// Asks the gateway for `url` from byte `from` on. `response_timeout` bounds the wait for the
/// first answer when the node may search the network. A gateway whose breaker is open is not
/// asked at all; one that cannot be reached or hangs opens it. Whether its answer closes the
/// breaker is decided once the body has been read (see [`Gateway::settle`]).
pub fn open(
    gateway: &Gateway,
    url: &str,
    cached_only: bool,
    from: u64,
    response_timeout: Option<Duration>,
) -> Result<Stream, SourceError> {
    if let State::Open { left, reason } = gateway.breaker.state() {
        return Err(SourceError::Request(HttpError::Connect(format!(
            "skipped for {}s more (circuit open after: {reason})",
            left.as_secs()
        ))));
    }
    let reply = match gateway.client.get(
        url,
        &Get {
            from,
            only_if_cached: cached_only,
            response_timeout,
            ..Get::default()
        },
    ) {
        Ok(reply) => reply,
        Err(e) => {
            // A node still searching the network under a time budget is not down.
            if matches!(e, HttpError::Connect(_))
                || (cached_only && matches!(e, HttpError::Timeout(_)))
            {
                gateway.breaker.trip(&e.to_string());
            }
            return Err(SourceError::Request(e));
        }
    };
    match reply.status {
        200 | 206 | 416 => reply.into_stream(from).map_err(SourceError::Range),
        412 => Err(SourceError::NotCached),
        status => Err(SourceError::Status(status)),
    }
}
