//! Writing response heads and whole responses into the connection's output buffer.
//! No allocation beyond the buffer's own growth: numbers go through `itoa`, the
//! `Date` comes from the per-thread cache.

use super::date;

/// The reason phrase for the statuses gvhttpd sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        204 => "No Content",
        206 => "Partial Content",
        304 => "Not Modified",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// What the `Connection` header of a response says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persist {
    /// HTTP/1.1 keep-alive: no header needed.
    Default,
    /// HTTP/1.0 keep-alive: `Connection: keep-alive`.
    KeepAlive10,
    /// `Connection: close`; the server closes after this response.
    Close,
}

/// A response head about to be written.
#[derive(Clone, Copy, Debug)]
pub struct HeadSpec<'a> {
    /// The `Date` value ([`date::at`] of the event time).
    pub date: &'a [u8; date::DATE_LEN],
    pub status: u16,
    pub content_type: Option<&'a [u8]>,
    /// `None` only for 1xx, 204 and 304, which carry no Content-Length.
    pub content_length: Option<u64>,
    pub persist: Persist,
    pub allow: Option<&'static str>,
}

/// Append a complete response head (status line through the blank line).
pub fn write_head(out: &mut Vec<u8>, h: &HeadSpec<'_>) {
    write_head_with(out, h, |_| {});
}

/// [`write_head`] with more fields: `fields` appends them, each after a CRLF
/// (a static file's validators, ranges and coding), before `Connection`.
pub fn write_head_with(out: &mut Vec<u8>, h: &HeadSpec<'_>, fields: impl FnOnce(&mut Vec<u8>)) {
    let mut num = itoa::Buffer::new();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(num.format(h.status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason(h.status).as_bytes());
    out.extend_from_slice(b"\r\nServer: gvhttpd\r\nDate: ");
    out.extend_from_slice(h.date);
    if let Some(ct) = h.content_type {
        out.extend_from_slice(b"\r\nContent-Type: ");
        out.extend_from_slice(ct);
    }
    if let Some(len) = h.content_length {
        out.extend_from_slice(b"\r\nContent-Length: ");
        out.extend_from_slice(num.format(len).as_bytes());
    }
    if let Some(allow) = h.allow {
        out.extend_from_slice(b"\r\nAllow: ");
        out.extend_from_slice(allow.as_bytes());
    }
    fields(out);
    match h.persist {
        Persist::Default => {}
        Persist::KeepAlive10 => out.extend_from_slice(b"\r\nConnection: keep-alive"),
        Persist::Close => out.extend_from_slice(b"\r\nConnection: close"),
    }
    out.extend_from_slice(b"\r\n\r\n");
}

/// Append an error response: text body naming the problem, `Connection: close`.
pub fn write_error(
    out: &mut Vec<u8>,
    date: &[u8; date::DATE_LEN],
    status: u16,
    why: &str,
    with_body: bool,
) {
    let len = reason(status).len() + 2 + why.len() + 1;
    write_head(
        out,
        &HeadSpec {
            date,
            status,
            content_type: Some(b"text/plain; charset=utf-8"),
            content_length: Some(len as u64),
            persist: Persist::Close,
            allow: None,
        },
    );
    if with_body {
        out.extend_from_slice(reason(status).as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(why.as_bytes());
        out.push(b'\n');
    }
}

/// The response sent, best effort and never waited for, to a connection refused
/// because `--max-conns` is reached (`http-behaviour.md` case 42).
pub fn write_refused(out: &mut Vec<u8>) {
    write_error(
        out,
        &date::now(),
        503,
        "server is at its connection limit",
        true,
    );
}

/// A response whose bytes never change but for `Date` (the built-in routes' fixed
/// replies), rendered once: answering it is one copy of the whole response and a
/// fixed-size copy of the date over its placeholder.
#[derive(Debug, Clone)]
pub struct Prerendered {
    status: u16,
    /// Offset of the `Date` value in every rendering (the status line and `Server`
    /// come first, and they do not depend on [`Persist`]).
    date_at: usize,
    /// The whole response, by [`Persist`] (`Default`, `KeepAlive10`, `Close`), with
    /// a placeholder where the date goes.
    full: [Box<[u8]>; 3],
    /// The same without the body (the reply to HEAD).
    head_only: [Box<[u8]>; 3],
}

impl Prerendered {
    pub fn new(status: u16, content_type: &[u8], body: &[u8]) -> Prerendered {
        let date = [b'D'; date::DATE_LEN];
        let render = |persist| {
            let mut out = Vec::new();
            write_head(
                &mut out,
                &HeadSpec {
                    date: &date,
                    status,
                    content_type: Some(content_type),
                    content_length: Some(body.len() as u64),
                    persist,
                    allow: None,
                },
            );
            out
        };
        let dflt = render(Persist::Default);
        let date_at = dflt
            .windows(6)
            .position(|w| w == b"Date: ")
            .map_or(0, |i| i + 6);
        let both = |persist| -> (Box<[u8]>, Box<[u8]>) {
            let head = render(persist);
            debug_assert_eq!(head[..date_at], dflt[..date_at]);
            let mut full = head.clone();
            full.extend_from_slice(body);
            (full.into(), head.into())
        };
        let (f0, h0) = both(Persist::Default);
        let (f1, h1) = both(Persist::KeepAlive10);
        let (f2, h2) = both(Persist::Close);
        Prerendered {
            status,
            date_at,
            full: [f0, f1, f2],
            head_only: [h0, h1, h2],
        }
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    /// Bytes of the body (what a GET of it sends after the head).
    pub fn body_len(&self) -> usize {
        self.full[0].len() - self.head_only[0].len()
    }

    /// Append the response (its head only when `head_only`).
    #[inline]
    pub fn write(
        &self,
        out: &mut Vec<u8>,
        date: &[u8; date::DATE_LEN],
        persist: Persist,
        head_only: bool,
    ) {
        let i = match persist {
            Persist::Default => 0,
            Persist::KeepAlive10 => 1,
            Persist::Close => 2,
        };
        let whole = if head_only {
            &self.head_only[i]
        } else {
            &self.full[i]
        };
        let at = out.len() + self.date_at;
        out.extend_from_slice(whole);
        out[at..at + date::DATE_LEN].copy_from_slice(date);
    }
}

/// The interim response sent before reading a body the client is holding back.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_response_is_complete_and_closes() {
        let mut out = Vec::new();
        write_error(&mut out, &date::now(), 400, "bare LF", true);
        let s = String::from_utf8(out).unwrap();
        let (head, body) = s.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\nServer: gvhttpd\r\nDate: "));
        assert!(head.contains("\r\nConnection: close"));
        let len: usize = head
            .split("Content-Length: ")
            .nth(1)
            .unwrap()
            .split("\r\n")
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(body.len(), len);
        assert_eq!(body, "Bad Request: bare LF\n");
    }

    #[test]
    fn no_content_length_when_none() {
        let mut out = Vec::new();
        let h = HeadSpec {
            date: &date::now(),
            status: 204,
            content_type: None,
            content_length: None,
            persist: Persist::Default,
            allow: None,
        };
        write_head(&mut out, &h);
        assert!(!String::from_utf8(out).unwrap().contains("Content-Length"));
    }

    #[test]
    fn prerendered_equals_the_written_response() {
        let p = Prerendered::new(200, b"text/plain", b"Hello");
        let d = date::now();
        for persist in [Persist::Default, Persist::KeepAlive10, Persist::Close] {
            for head_only in [false, true] {
                let mut want = Vec::new();
                write_head(
                    &mut want,
                    &HeadSpec {
                        date: &d,
                        status: 200,
                        content_type: Some(b"text/plain"),
                        content_length: Some(5),
                        persist,
                        allow: None,
                    },
                );
                if !head_only {
                    want.extend_from_slice(b"Hello");
                }
                let mut got = Vec::new();
                p.write(&mut got, &d, persist, head_only);
                assert_eq!(got, want, "{persist:?} head_only={head_only}");
            }
        }
    }
}
