//! The IPFS gateway as a source: a GET on one expanded template, first with
//! `Cache-Control: only-if-cached` so that a node lacking the file answers 412 at once, and
//! the statuses a gateway uses mapped to why it did not serve. Never trusted: what it sends
//! is verified by the download loop like any other source.

use std::time::Duration;

use crate::download::Failure;
use crate::http::{Client, ClientOptions, Get, Stream};

/// The agent for the gateway: short connect timeout, no proxy for a loopback address.
pub fn client(config: &crate::config::Config) -> Result<Client, crate::http::HttpError> {
    let url = config.gateway_base();
    Client::new(&ClientOptions {
        connect_timeout: config.gateway.connect_timeout,
        stall_timeout: config.gateway.stall_timeout,
        max_redirects: 3,
        proxy: crate::http::proxy_for(url, |k| std::env::var(k).ok()),
        user_agent: crate::USER_AGENT.to_string(),
    })
}

/// Asks the gateway for `url` from byte `from` on. `response_timeout` bounds the wait for the
/// first answer when the node may search the network.
pub fn open(
    client: &Client,
    url: &str,
    cached_only: bool,
    from: u64,
    response_timeout: Option<Duration>,
) -> Result<Stream, Failure> {
    let reply = client
        .get(
            url,
            &Get {
                from,
                only_if_cached: cached_only,
                response_timeout,
            },
        )
        .map_err(Failure::Request)?;
    match reply.status {
        200 | 206 | 416 => reply.into_stream(from).map_err(Failure::Range),
        412 => Err(Failure::NotCached),
        status => Err(Failure::Status(status)),
    }
}
