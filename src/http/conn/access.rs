//! The access-log side of the protocol engine: what a connection keeps for it, and
//! the records it makes as responses are written.

use super::Head;
use crate::http::parse::Version;
use crate::stats::WorkerStats;

/// What the access log needs of a connection beyond the request at hand.
#[derive(Debug)]
pub(super) struct ConnLog {
    pub(super) peer: std::net::SocketAddr,
    /// The request line fields of a deferred reply (sleep, file), logged when the
    /// reply is written: method, target, version, referer, user agent.
    pub(super) deferred: Option<Logged>,
}

/// An owned copy of what the access log records of a request.
#[derive(Debug)]
pub(super) struct Logged {
    method: Vec<u8>,
    target: Vec<u8>,
    version: &'static str,
    referer: Vec<u8>,
    user_agent: Vec<u8>,
}

/// The value of header field `name` (lowercase) in a complete request head.
fn field_value<'a>(head: &'a [u8], name: &'a [u8]) -> Option<&'a [u8]> {
    crate::http::parse::field_values(head, name).next()
}

/// Record one response in the access log (a no-op without `--access-log`).
/// `req` is the request's head bytes and parsed head, when there was one.
/// Inlined down to the one test, so a server without an access log pays a branch
/// per response, not a call.
#[inline]
pub(super) fn log_response(
    log: &mut Option<Box<ConnLog>>,
    stats: &WorkerStats,
    req: Option<(&[u8], &Head)>,
    status: u16,
    bytes: u64,
) {
    if let Some(cl) = log.as_mut() {
        record(cl, stats, req, status, bytes, None);
    }
}

/// Record the response to a proxied request, with the upstream's time.
pub(super) fn log_proxied(
    log: &mut Option<Box<ConnLog>>,
    stats: &WorkerStats,
    status: u16,
    bytes: u64,
    upstream: Option<std::time::Duration>,
) {
    if let Some(cl) = log.as_mut() {
        record(cl, stats, None, status, bytes, upstream);
    }
}

#[inline(never)]
fn record(
    cl: &mut ConnLog,
    stats: &WorkerStats,
    req: Option<(&[u8], &Head)>,
    status: u16,
    bytes: u64,
    upstream: Option<std::time::Duration>,
) {
    if !stats.logs_access() {
        // The peer is kept for `X-Forwarded-For` only (a proxy without a log).
        return;
    }
    let peer = cl.peer;
    let owned = if req.is_none() {
        cl.deferred.take()
    } else {
        None
    };
    let entry =
        |method: &[u8], target: &[u8], version, referer: Option<&[u8]>, ua: Option<&[u8]>| {
            stats.access_log(|l| {
                l.record(&crate::log::Entry {
                    peer,
                    method,
                    target,
                    version,
                    status,
                    bytes,
                    referer,
                    user_agent: ua,
                    upstream,
                })
            })
        };
    match (req, owned) {
        (Some((bytes, head)), _) => {
            let method = &bytes[..head.target.start.saturating_sub(1)];
            let method = method.rsplit(|&b| b == b'\n').next().unwrap_or(method);
            entry(
                method,
                &bytes[head.target.clone()],
                version_str(head.version),
                field_value(&bytes[..head.len], b"referer"),
                field_value(&bytes[..head.len], b"user-agent"),
            )
        }
        (None, Some(l)) => entry(
            &l.method,
            &l.target,
            l.version,
            Some(&l.referer),
            Some(&l.user_agent),
        ),
        (None, None) => entry(b"-", b"-", "-", None, None),
    }
}

/// Keep what the access log needs of a request whose reply comes later.
pub(super) fn log_defer(
    log: &mut Option<Box<ConnLog>>,
    stats: &WorkerStats,
    bytes: &[u8],
    head: &Head,
) {
    if !stats.logs_access() {
        return;
    }
    if let Some(cl) = log.as_mut() {
        let method = &bytes[..head.target.start.saturating_sub(1)];
        let method = method.rsplit(|&b| b == b'\n').next().unwrap_or(method);
        let own = |v: Option<&[u8]>| v.unwrap_or_default().to_vec();
        cl.deferred = Some(Logged {
            method: method.to_vec(),
            target: bytes[head.target.clone()].to_vec(),
            version: version_str(head.version),
            referer: own(field_value(&bytes[..head.len], b"referer")),
            user_agent: own(field_value(&bytes[..head.len], b"user-agent")),
        });
    }
}

fn version_str(v: Version) -> &'static str {
    match v {
        Version::Http10 => "HTTP/1.0",
        Version::Http11 => "HTTP/1.1",
    }
}
