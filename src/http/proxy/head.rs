//! The heads a reverse proxy rewrites: the request it sends upstream (new
//! target, hop-by-hop fields removed, `Via` and `X-Forwarded-For` added, the
//! body's framing restated) and the response it relays (parsed with httparse,
//! its framing decided as RFC 9112 §6.3 says, hop-by-hop fields removed, `Via`
//! added, `Connection` set for the client).

use std::net::IpAddr;

/// How a request body is framed towards the upstream (as the client framed it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    None,
    Length(u64),
    Chunked,
}

/// Fields RFC 9110 §7.6.1 names hop-by-hop (for this connection only), and
/// `Expect` (the proxy answers `100 Continue` itself).
const HOP_BY_HOP: [&[u8]; 6] = [
    b"connection",
    b"proxy-connection",
    b"keep-alive",
    b"te",
    b"transfer-encoding",
    b"upgrade",
];

fn trim(v: &[u8]) -> &[u8] {
    let s = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let e = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(s, |i| i + 1);
    &v[s..e.max(s)]
}

/// The field lines of a head (each `(name, value)`, value trimmed), after its
/// first line.
fn fields(head: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    head.split(|&b| b == b'\n').skip(1).filter_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|&b| b == b':')?;
        Some((&line[..colon], trim(&line[colon + 1..])))
    })
}

/// The tokens of every `Connection` field: the fields they name are
/// hop-by-hop too.
fn connection_tokens(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    fields(head)
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"connection"))
        .flat_map(|(_, v)| v.split(|&b| b == b',').map(trim))
        .filter(|t| !t.is_empty())
}

/// Which fields of one head are hop-by-hop: the names RFC 9110 fixes, and
/// those its `Connection` fields name. Whether it has any `Connection` token is
/// found once per head, so a head without one (the common case) is not scanned
/// again for every field.
struct HopByHop<'a> {
    head: &'a [u8],
    named: bool,
}

impl<'a> HopByHop<'a> {
    /// `head` is a request's: one quick pass over its lines looks for a
    /// `Connection` field (the name ends at the colon: RFC 9112 §5.1 allows no
    /// space before it, and the request parser refused any).
    fn new(head: &'a [u8]) -> Self {
        let named = head
            .split(|&b| b == b'\n')
            .skip(1)
            .any(|line| line.len() > 11 && line[..11].eq_ignore_ascii_case(b"connection:"))
            && connection_tokens(head).next().is_some();
        HopByHop { head, named }
    }

    /// `named`: the caller already knows whether the head has a `Connection`
    /// token (a response's fields were looked at one by one).
    fn with(head: &'a [u8], named: bool) -> Self {
        HopByHop { head, named }
    }

    fn contains(&self, name: &[u8]) -> bool {
        HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
            || (self.named && connection_tokens(self.head).any(|t| t.eq_ignore_ascii_case(name)))
    }
}

/// Append the request to send upstream: `method target HTTP/1.1`, the client's
/// fields less hop-by-hop ones, `Content-Length`, `Expect`, `Via` and
/// `X-Forwarded-For` (these three restated), then the body's framing.
/// `head` is the client's head from its request line to the blank line.
pub fn write_request(
    out: &mut Vec<u8>,
    method: &[u8],
    target: &str,
    head: &[u8],
    http10: bool,
    peer: Option<IpAddr>,
    body: BodyFraming,
) {
    out.extend_from_slice(method);
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut via: Option<&[u8]> = None;
    let mut xff: Option<&[u8]> = None;
    let mut host = false;
    let hop = HopByHop::new(head);
    for (name, value) in fields(head) {
        if name.eq_ignore_ascii_case(b"via") {
            via = Some(value);
            continue;
        }
        if name.eq_ignore_ascii_case(b"x-forwarded-for") {
            xff = Some(value);
            continue;
        }
        if name.eq_ignore_ascii_case(b"content-length")
            || name.eq_ignore_ascii_case(b"expect")
            || hop.contains(name)
        {
            continue;
        }
        host |= name.eq_ignore_ascii_case(b"host");
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    if !host {
        // HTTP/1.1 requires the field; the client named no authority.
        out.extend_from_slice(b"Host: \r\n");
    }
    out.extend_from_slice(b"Via: ");
    if let Some(v) = via {
        out.extend_from_slice(v);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(if http10 {
        b"1.0 gvhttpd"
    } else {
        b"1.1 gvhttpd"
    });
    if let Some(ip) = peer {
        out.extend_from_slice(b"\r\nX-Forwarded-For: ");
        if let Some(v) = xff {
            out.extend_from_slice(v);
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(ip.to_string().as_bytes());
    }
    match body {
        BodyFraming::None => {}
        BodyFraming::Length(n) => {
            out.extend_from_slice(b"\r\nContent-Length: ");
            out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        }
        BodyFraming::Chunked => out.extend_from_slice(b"\r\nTransfer-Encoding: chunked"),
    }
    out.extend_from_slice(b"\r\n\r\n");
}

/// How the upstream's response body is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RespFraming {
    /// No body (a HEAD request, 204, 304).
    None,
    Length(u64),
    Chunked,
    /// Until the upstream closes its connection.
    Close,
}

/// A parsed upstream response head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RespHead {
    pub status: u16,
    /// Bytes of the head, blank line included.
    pub len: usize,
    pub framing: RespFraming,
    /// The upstream may keep its connection (HTTP/1.1 without `close`, or
    /// HTTP/1.0 with `keep-alive`), as far as its head says.
    pub keep: bool,
    /// The body goes to the client without its chunked framing (an HTTP/1.0
    /// client cannot take it); the client's connection then ends with it.
    pub dechunk: bool,
    /// The client's connection closes after this response.
    pub close_client: bool,
}

/// What [`read_response`] found at the start of the upstream's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// The head is not complete yet.
    Partial,
    /// An interim (1xx) response of this many bytes: skip it.
    Interim(usize),
    /// A final response head (already rewritten into `out`).
    Head(RespHead),
    /// Not an HTTP/1.x response, or one this proxy cannot relay (101, a bad
    /// `Content-Length`): a 502.
    Bad,
}

/// Parse the upstream response at the start of `buf` and, once its head is
/// complete, append the head for the client to `out`. `head_request`: the
/// request was HEAD (no body follows whatever the head says); `http10` /
/// `close`: the client's version and whether its connection ends after this.
pub fn read_response(
    buf: &[u8],
    head_request: bool,
    http10: bool,
    close: bool,
    out: &mut Vec<u8>,
) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Bad,
    };
    let (Some(status), Some(version)) = (resp.code, resp.version) else {
        return Parsed::Bad;
    };
    if status == 101 || !(100..=999).contains(&status) {
        return Parsed::Bad;
    }
    if status < 200 {
        return Parsed::Interim(len);
    }
    let head = &buf[..len];
    let mut length: Option<u64> = None;
    let mut te: Option<&[u8]> = None;
    let mut close_token = false;
    let mut keep_alive_token = false;
    let mut named = false;
    for h in resp.headers.iter() {
        let v = trim(h.value);
        if h.name.eq_ignore_ascii_case("content-length") {
            let Some(n) = std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
            else {
                return Parsed::Bad;
            };
            if length.is_some_and(|l| l != n) {
                return Parsed::Bad;
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            te = Some(v);
        } else if h.name.eq_ignore_ascii_case("connection") {
            for t in v.split(|&b| b == b',').map(trim) {
                named |= !t.is_empty();
                close_token |= t.eq_ignore_ascii_case(b"close");
                keep_alive_token |= t.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    let chunked = te.is_some_and(|v| {
        v.rsplit(|&b| b == b',')
            .next()
            .is_some_and(|last| trim(last).eq_ignore_ascii_case(b"chunked"))
    });
    let framing = if head_request || status == 204 || status == 304 {
        RespFraming::None
    } else if te.is_some() {
        match chunked {
            true => RespFraming::Chunked,
            false => RespFraming::Close,
        }
    } else if let Some(n) = length {
        RespFraming::Length(n)
    } else {
        RespFraming::Close
    };
    let keep = framing != RespFraming::Close && !close_token && (version == 1 || keep_alive_token);
    let dechunk = framing == RespFraming::Chunked && http10;
    let close_client = close || framing == RespFraming::Close || dechunk;

    // The head for the client.
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(itoa::Buffer::new().format(status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(resp.reason.unwrap_or("").as_bytes());
    let mut via: Option<&[u8]> = None;
    let hop = HopByHop::with(head, named);
    for h in resp.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"via") {
            via = Some(trim(h.value));
            continue;
        }
        if hop.contains(name) || (te.is_some() && name.eq_ignore_ascii_case(b"content-length")) {
            continue;
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(trim(h.value));
    }
    if framing == RespFraming::Chunked && !dechunk {
        out.extend_from_slice(b"\r\nTransfer-Encoding: ");
        out.extend_from_slice(te.unwrap_or(b"chunked"));
    } else if head_request && te.is_some() && !http10 {
        // A HEAD answer keeps saying how the GET's body would be framed.
        out.extend_from_slice(b"\r\nTransfer-Encoding: ");
        out.extend_from_slice(te.unwrap_or(b"chunked"));
    }
    out.extend_from_slice(b"\r\nVia: ");
    if let Some(v) = via {
        out.extend_from_slice(v);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(if version == 0 {
        b"1.0 gvhttpd"
    } else {
        b"1.1 gvhttpd"
    });
    if close_client {
        out.extend_from_slice(b"\r\nConnection: close");
    } else if http10 {
        out.extend_from_slice(b"\r\nConnection: keep-alive");
    }
    out.extend_from_slice(b"\r\n\r\n");
    Parsed::Head(RespHead {
        status,
        len,
        framing,
        keep,
        dechunk,
        close_client,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(b: &[u8]) -> &str {
        std::str::from_utf8(b).unwrap()
    }

    #[test]
    fn request_drops_hop_by_hop_and_adds_via_and_xff() {
        let head = b"GET /proxy/a?b HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Secret\r\n\
            X-Secret: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\nUpgrade: x\r\nVia: 1.0 a\r\n\
            X-Forwarded-For: 10.0.0.1\r\nContent-Length: 3\r\nAccept: */*\r\n\r\n";
        let mut out = Vec::new();
        let peer = Some("127.0.0.9".parse().unwrap());
        write_request(
            &mut out,
            b"GET",
            "/a?b",
            head,
            false,
            peer,
            BodyFraming::Length(3),
        );
        assert_eq!(
            text(&out),
            "GET /a?b HTTP/1.1\r\nHost: h\r\nAccept: */*\r\nVia: 1.0 a, 1.1 gvhttpd\r\n\
             X-Forwarded-For: 10.0.0.1, 127.0.0.9\r\nContent-Length: 3\r\n\r\n"
        );
    }

    #[test]
    fn fields_a_connection_field_names_are_dropped_wherever_they_stand() {
        // The named field before the `Connection` field that names it, in any
        // case, in a request and in a response.
        let head = b"GET /proxy/ HTTP/1.1\r\nX-Hop: 1\r\nHost: h\r\nconnection: x-hop\r\n\r\n";
        let mut out = Vec::new();
        write_request(&mut out, b"GET", "/", head, false, None, BodyFraming::None);
        assert_eq!(
            text(&out),
            "GET / HTTP/1.1\r\nHost: h\r\nVia: 1.1 gvhttpd\r\n\r\n"
        );

        out.clear();
        let r = b"HTTP/1.1 200 OK\r\nX-Hop: 1\r\nContent-Length: 0\r\nCONNECTION: X-Hop\r\n\r\n";
        let Parsed::Head(h) = read_response(r, false, false, false, &mut out) else {
            panic!()
        };
        assert!(h.keep);
        assert_eq!(
            text(&out),
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nVia: 1.1 gvhttpd\r\n\r\n"
        );
    }

    #[test]
    fn response_framing_and_rewrite() {
        let mut out = Vec::new();
        let r =
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nKeep-Alive: timeout=5\r\nX: y\r\n\r\nhello";
        let Parsed::Head(h) = read_response(r, false, false, false, &mut out) else {
            panic!()
        };
        assert_eq!(h.framing, RespFraming::Length(5));
        assert!(h.keep && !h.close_client);
        assert_eq!(h.len, r.len() - 5);
        assert_eq!(
            text(&out),
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\nVia: 1.1 gvhttpd\r\n\r\n"
        );

        out.clear();
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n";
        let Parsed::Head(h) = read_response(r, false, true, false, &mut out) else {
            panic!()
        };
        assert!(h.dechunk && h.close_client);
        assert_eq!(
            text(&out),
            "HTTP/1.1 200 OK\r\nVia: 1.1 gvhttpd\r\nConnection: close\r\n\r\n"
        );

        out.clear();
        let r = b"HTTP/1.0 200 OK\r\n\r\n";
        let Parsed::Head(h) = read_response(r, false, false, false, &mut out) else {
            panic!()
        };
        assert_eq!(h.framing, RespFraming::Close);
        assert!(!h.keep && h.close_client);

        let r = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
        assert_eq!(
            read_response(r, false, false, false, &mut out),
            Parsed::Interim(25)
        );
        assert_eq!(
            read_response(b"HTTP/1.1 200 OK\r\n", false, false, false, &mut out),
            Parsed::Partial
        );
        assert_eq!(
            read_response(b"junk\r\n\r\n", false, false, false, &mut out),
            Parsed::Bad
        );
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(read_response(r, false, false, false, &mut out), Parsed::Bad);
    }
}
