//! The reverse proxy's sans-IO pieces (`serve --upstream`): request targets
//! under `/proxy/` go to an upstream. The driver decides everything about an
//! exchange (see `driver/proxy.rs`); these are its parts that know nothing of a
//! connection: the heads it rewrites ([`head`]), the chunked framing it finds
//! the end of ([`chunks`]), and the per-worker keep-alive pool every model keeps
//! its upstream sockets in ([`UpstreamPool`]).

pub mod chunks;
pub mod head;
mod pool;

pub use pool::{checkin, checkout, LocalPool, UpstreamPool};

/// A proxied request, as the protocol engine hands it to the driver: the head
/// to send upstream and what the driver needs to stream the rest.
#[derive(Debug)]
pub struct Start {
    /// The request head for the upstream ([`head::write_request`]).
    pub request: Vec<u8>,
    /// The client's body framing (the body follows in the connection's input).
    pub body: head::BodyFraming,
    /// `--max-body`, for a chunked body.
    pub max_body: u64,
    /// A HEAD request: the response has no body whatever its head says.
    pub head_request: bool,
    /// Safe to send again (GET or HEAD without a body): retried once on a fresh
    /// connection when a pooled one closed before any byte of the answer.
    pub safe: bool,
    /// The client speaks HTTP/1.0.
    pub http10: bool,
    /// The client's connection ends after this response.
    pub close: bool,
}

/// The prefix of the targets that are proxied; it is replaced by `/`.
pub const PREFIX: &str = "/proxy/";

/// The target to send upstream for a client's `target`, if it is proxied
/// (`/proxy/x?y` → `/x?y`).
pub fn upstream_target(target: &str) -> Option<&str> {
    target
        .starts_with(PREFIX)
        .then(|| &target[PREFIX.len() - 1..])
}

#[cfg(test)]
mod tests {
    #[test]
    fn targets() {
        assert_eq!(super::upstream_target("/proxy/x?y"), Some("/x?y"));
        assert_eq!(super::upstream_target("/proxy/"), Some("/"));
        assert_eq!(super::upstream_target("/proxy"), None);
        assert_eq!(super::upstream_target("/proxyx/"), None);
    }
}
