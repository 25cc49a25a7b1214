//! The target: an `http://` URL resolved to socket addresses, and the request
//! bytes, serialised once before the run.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// A parsed `http://host[:port][/path]` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// Host as written (brackets removed for IPv6 literals).
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
    /// The `Host` header value (`host` or `host:port` as written).
    pub authority: String,
}

impl Url {
    /// Parses `s`; the error names what is wrong.
    pub fn parse(s: &str) -> Result<Url, String> {
        let rest = match s.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) => {
                return Err(format!(
                    "bad URL '{s}': scheme '{scheme}' is not supported (only http://)"
                ))
            }
            None => return Err(format!("bad URL '{s}': expected http://host[:port]/path")),
        };
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], rest[i..].split('#').next().unwrap_or("")),
            None => (rest, "/"),
        };
        let path = if !path.starts_with('/') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        if authority.is_empty() {
            return Err(format!("bad URL '{s}': no host"));
        }
        if authority.contains('@') {
            return Err(format!("bad URL '{s}': user info is not supported"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("bad URL '{s}': unclosed '[' in host"))?;
            let port =
                match after {
                    "" => None,
                    p => Some(p.strip_prefix(':').ok_or_else(|| {
                        format!("bad URL '{s}': unexpected '{p}' after IPv6 host")
                    })?),
                };
            (h, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/') {
            return Err(format!("bad URL '{s}': bad host '{host}'"));
        }
        let port = match port {
            None => 80,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| format!("bad URL '{s}': bad port '{p}'"))?,
        };
        if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("bad URL '{s}': path contains whitespace"));
        }
        Ok(Url {
            host: host.to_string(),
            port,
            path,
            authority: authority.to_string(),
        })
    }

    /// Resolves the host (DNS for names); the error is one line.
    pub fn resolve(&self) -> Result<Vec<SocketAddr>, String> {
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve host '{}': {e}", self.host))?
            .collect();
        if addrs.is_empty() {
            return Err(format!("cannot resolve host '{}': no addresses", self.host));
        }
        Ok(addrs)
    }
}

/// Connects once to check the target is reachable before the run starts; returns
/// the address that answered.
pub fn preflight(addrs: &[SocketAddr], timeout: Duration) -> Result<SocketAddr, String> {
    let mut last = String::new();
    for &a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(_) => return Ok(a),
            Err(e) => last = format!("cannot connect to {a}: {e}"),
        }
    }
    Err(last)
}

/// What goes into the request.
#[derive(Debug, Clone)]
pub struct RequestSpec<'a> {
    pub method: &'a str,
    pub url: &'a Url,
    /// `Name: value` headers as given; a `Host` here replaces the default one.
    pub headers: &'a [String],
    pub body: &'a [u8],
    pub keepalive: bool,
}

/// Serialises one request; the error names a bad header or method.
pub fn serialise(spec: &RequestSpec<'_>) -> Result<Vec<u8>, String> {
    if spec.method.is_empty() || !spec.method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(format!("bad method '{}': letters only", spec.method));
    }
    let mut out = Vec::with_capacity(256 + spec.body.len());
    out.extend_from_slice(spec.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(spec.url.path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut has_host = false;
    let mut has_length = false;
    for h in spec.headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| format!("bad header '{h}': expected 'Name: value'"))?;
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
            return Err(format!("bad header '{h}': bad name"));
        }
        if value.contains(['\r', '\n']) {
            return Err(format!("bad header '{h}': line break in value"));
        }
        has_host |= name.eq_ignore_ascii_case("host");
        has_length |= name.eq_ignore_ascii_case("content-length");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.trim().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !has_host {
        out.extend_from_slice(b"Host: ");
        out.extend_from_slice(spec.url.authority.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !spec.keepalive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    if !has_length && (!spec.body.is_empty() || matches!(spec.method, "POST" | "PUT" | "PATCH")) {
        out.extend_from_slice(format!("Content-Length: {}\r\n", spec.body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(spec.body);
    Ok(out)
}
