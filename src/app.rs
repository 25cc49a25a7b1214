//! The one handler every model runs: request → [`Reply`].
//!
//! A reply is ready now, ready after a delay (`/sleep/<ms>`: the model uses its own
//! timer) or a file to send (`/static/...`: the model uses its own file I/O). That is
//! how one handler exercises waiting and storage I/O under all three models.
//!
//! | route | methods | reply |
//! |---|---|---|
//! | `/`, `/plaintext` | GET, HEAD | `200 text/plain` `Hello, World!` |
//! | `/json` | GET, HEAD | `200 application/json` `{"message":"Hello, World!"}` |
//! | `/echo` | POST | the request body, with its Content-Type |
//! | `/static/<path>` | GET, HEAD | a file beneath `--root`: its type by extension ([`content_type_for`]), a precompressed `FILE.br` / `FILE.gz` when `Accept-Encoding` allows, and the request's conditions and range ([`crate::http::representation`]) |
//! | `/sleep/<ms>` | GET, HEAD | bench route: after `<ms>` (0–60000) ms: `slept <ms>ms` |
//! | `/work/<µs>` | GET, HEAD | bench route: burns `<µs>` (0–1000000) µs of the worker thread's CPU time in the handler, in slices of `--work-slice`: `worked <µs>us` |
//! | `/stats` | GET, HEAD | bench route: JSON counters ([`crate::stats`]) |
//!
//! The bench routes answer only when [`Config::bench_routes`] says so (by default,
//! only on a loopback address); otherwise they are 404 like any unknown path.
//!
//! `OPTIONS` on a known path (or `*`) answers 200 with `Allow`; a known path with
//! another method answers 405 with `Allow`; anything else is 404.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::error::ServeError;
use crate::files::StaticRoot;
use crate::http::representation::{Codings, Conditions};
use crate::http::Method;
pub use crate::http::{
    FileError, FileReply, Handler, Prerendered, Reply, Request, Response, Slice, Work,
};
use crate::stats::Registry;

/// Longest `/sleep/<ms>` delay.
pub const MAX_SLEEP_MS: u32 = 60_000;

/// Longest `/work/<µs>` CPU burn.
pub const MAX_WORK_US: u32 = 1_000_000;

/// The handler and what it needs: the stats registry and the static root.
#[derive(Debug)]
pub struct App {
    registry: Arc<Registry>,
    root: Option<StaticRoot>,
    hello: Prerendered,
    json: Prerendered,
    /// `/work`, `/sleep` and `/stats` answer (else they are 404).
    bench_routes: bool,
    /// `--upstream`: targets under `/proxy/` go there (the driver streams them).
    upstream: Option<crate::config::Upstreams>,
}

const TEXT: &[u8] = b"text/plain; charset=utf-8";
const HELLO: &[u8] = b"Hello, World!";
const JSON_HELLO: &[u8] = br#"{"message":"Hello, World!"}"#;
const JSON: &[u8] = b"application/json";
const ALLOW_GET: &str = "GET, HEAD, OPTIONS";
const ALLOW_POST: &str = "POST, OPTIONS";
const ALLOW_ANY: &str = "GET, HEAD, POST, OPTIONS";

impl App {
    pub fn new(cfg: &Config, registry: Arc<Registry>) -> Result<App, ServeError> {
        let root = cfg.root.as_deref().map(StaticRoot::open).transpose()?;
        Ok(App {
            registry,
            root,
            hello: Prerendered::new(200, TEXT, HELLO),
            json: Prerendered::new(200, JSON, JSON_HELLO),
            bench_routes: cfg.bench_routes(),
            upstream: cfg.upstream.clone(),
        })
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn registry_arc(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    /// The directory static files are opened beneath, if `--root` was given.
    pub fn static_root(&self) -> Option<&StaticRoot> {
        self.root.as_ref()
    }
}

impl Handler for App {
    /// Route one request. `body` is the complete request body.
    fn handle<'a>(&'a self, req: &Request<'a>, body: &'a [u8]) -> Reply<'a> {
        use Method::*;
        // The benchmarks' route first: `GET /` is answered before any routing.
        if req.target == "/" && matches!(req.method, Get | Head) {
            return Reply::Fixed(&self.hello);
        }
        if req.target == "*" {
            return match req.method {
                Options => Reply::Now(options(ALLOW_ANY)),
                _ => Reply::Now(text(400, "'*' is only for OPTIONS\n")),
            };
        }
        if req.method == Connect {
            return Reply::Now(text(
                501,
                "CONNECT is not supported: gvhttpd is not a proxy\n",
            ));
        }
        let Some(path) = route_path(req.target) else {
            return Reply::Now(text(400, "request target is not a path or absolute URL\n"));
        };
        let bench = self.bench_routes;
        let allow = match path {
            "/" | "/plaintext" | "/json" => ALLOW_GET,
            "/echo" => ALLOW_POST,
            p if p.starts_with("/static/") => ALLOW_GET,
            "/stats" if bench => ALLOW_GET,
            p if bench && (p.starts_with("/sleep/") || p.starts_with("/work/")) => ALLOW_GET,
            _ => return Reply::Now(text(404, "no such route\n")),
        };
        match (req.method, allow) {
            (Options, _) => return Reply::Now(options(allow)),
            (Get | Head, ALLOW_GET) | (Post, ALLOW_POST) => {}
            _ => {
                let mut r = text(405, "method not allowed on this path\n");
                r.allow = Some(allow);
                return Reply::Now(r);
            }
        }
        match path {
            "/" | "/plaintext" => Reply::Fixed(&self.hello),
            "/json" => Reply::Fixed(&self.json),
            "/echo" => Reply::Now(Response {
                status: 200,
                content_type: Some(req.content_type.unwrap_or(b"application/octet-stream")),
                body: Cow::Borrowed(body),
                allow: None,
            }),
            "/stats" => {
                let mut s = String::with_capacity(768);
                self.registry.render_json(&mut s);
                Reply::Now(Response {
                    status: 200,
                    content_type: Some(JSON),
                    body: Cow::Owned(s.into_bytes()),
                    allow: None,
                })
            }
            p if p.starts_with("/work/") => match parse_work_us(&p["/work/".len()..]) {
                Some(us) => Reply::Work(Work {
                    arg: u64::from(us),
                    left: u64::from(us) * 1000,
                    state: u64::from(us),
                }),
                None => Reply::Now(text(400, "work takes 0 to 1000000 microseconds\n")),
            },
            p => match (p.strip_prefix("/sleep/"), p.strip_prefix("/static/")) {
                (Some(ms), _) => match parse_ms(ms) {
                    Some(ms) => Reply::Sleep(ms),
                    None => Reply::Now(text(400, "sleep takes 0 to 60000 milliseconds\n")),
                },
                (_, Some(rel)) => match (self.root.is_some(), static_path(rel)) {
                    (true, Some(rel)) => Reply::File(file_reply(req, rel)),
                    _ => Reply::Now(text(404, "no such file\n")),
                },
                _ => Reply::Now(text(404, "no such route\n")),
            },
        }
    }

    fn upstream(&self) -> Option<&crate::config::Upstreams> {
        self.upstream.as_ref()
    }

    fn work(&self, job: &mut Work, budget: Option<Duration>) -> Slice {
        work_slice(job, budget)
    }
}

fn text(status: u16, msg: &'static str) -> Response<'static> {
    Response {
        status,
        content_type: Some(TEXT),
        body: Cow::Borrowed(msg.as_bytes()),
        allow: None,
    }
}

fn options(allow: &'static str) -> Response<'static> {
    Response {
        status: 200,
        content_type: None,
        body: Cow::Borrowed(b""),
        allow: Some(allow),
    }
}

/// The path of an origin-form or absolute-form target, without the query.
fn route_path(target: &str) -> Option<&str> {
    let path = if target.starts_with('/') {
        target
    } else {
        let scheme_end = target.find("://")?;
        let scheme = &target[..scheme_end];
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return None;
        }
        let rest = &target[scheme_end + 3..];
        rest.find('/').map_or("/", |i| &rest[i..])
    };
    let end = path.bytes().position(|b| b == b'?').unwrap_or(path.len());
    Some(&path[..end])
}

/// `0`..=`60000`, digits only.
fn parse_ms(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|&ms| ms <= MAX_SLEEP_MS)
}

/// `/work/<µs>`, one slice: hash for `budget` (or what is left, if less) of this
/// thread's CPU time, so one request can hog its worker the way a real
/// computation would — and time the OS gives another thread (a worker sharing the
/// CPU, a preemption) is not counted as work. `job.left` is the nanoseconds of
/// CPU still to burn, `job.state` the digest.
fn work_slice(job: &mut Work, budget: Option<Duration>) -> Slice {
    use std::hash::{BuildHasher, BuildHasherDefault};
    let hasher = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default();
    let left = Duration::from_nanos(job.left);
    let run = budget.map_or(left, |b| b.min(left));
    let start = thread_cpu();
    let mut digest = job.state;
    let spent = loop {
        // Always some progress, even on a zero budget; the clock is a syscall, so
        // it is read every few microseconds of hashing.
        for _ in 0..256 {
            digest = hasher.hash_one(std::hint::black_box(digest));
        }
        let spent = thread_cpu().saturating_sub(start);
        if spent >= run {
            break spent;
        }
    };
    job.state = std::hint::black_box(digest);
    job.left = job
        .left
        .saturating_sub(u64::try_from(spent.as_nanos()).unwrap_or(u64::MAX));
    if job.left > 0 {
        return Slice::More;
    }
    Slice::Done(Response {
        status: 200,
        content_type: Some(TEXT),
        body: Cow::Owned(format!("worked {}us", job.arg).into_bytes()),
        allow: None,
    })
}

/// The calling thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`).
fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        t.tv_sec.unsigned_abs(),
        t.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// `0`..=`1000000`, digits only.
fn parse_work_us(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 7 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|&us| us <= MAX_WORK_US)
}

/// Percent-decode a static path and refuse anything that could leave the root
/// lexically (the kernel's `RESOLVE_BENEATH` also guards symlinks at open time).
fn static_path(rel: &str) -> Option<String> {
    let mut out = Vec::with_capacity(rel.len());
    let mut bytes = rel.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = (bytes.next()? as char).to_digit(16)?;
            let lo = (bytes.next()? as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
        } else {
            out.push(b);
        }
    }
    let s = String::from_utf8(out).ok()?;
    let bad_segment = s.split('/').any(|seg| seg == "..");
    if s.is_empty() || s.starts_with('/') || s.contains('\0') || bad_segment {
        return None;
    }
    Some(s)
}

/// A static file's reply: its type, the precompressed variants the request
/// accepts (`FILE.br`, `FILE.gz`: sent with `Content-Encoding` when they exist
/// beside it, as nginx's `gzip_static`), and the request's conditional and range
/// fields, read from the head only here (the cold path).
fn file_reply(req: &Request<'_>, mut rel: String) -> FileReply {
    let content_type = content_type_for(&rel);
    let codings = Codings::from_accept_encoding(req.headers("accept-encoding"));
    rel.reserve(".br".len()); // room for a variant's suffix
    FileReply::new(rel, content_type)
        .with_codings(codings)
        .with_conditions(Conditions::from_request(req))
}

/// `Content-Type` by file extension (ASCII case-insensitive), the one table:
/// text types say `charset=utf-8`; anything else is `application/octet-stream`.
const CONTENT_TYPES: &[(&str, &str)] = &[
    ("html", "text/html; charset=utf-8"),
    ("htm", "text/html; charset=utf-8"),
    ("css", "text/css; charset=utf-8"),
    ("js", "text/javascript; charset=utf-8"),
    ("mjs", "text/javascript; charset=utf-8"),
    ("txt", "text/plain; charset=utf-8"),
    ("md", "text/markdown; charset=utf-8"),
    ("csv", "text/csv; charset=utf-8"),
    ("xml", "application/xml"),
    ("json", "application/json"),
    ("map", "application/json"),
    ("webmanifest", "application/manifest+json"),
    ("svg", "image/svg+xml"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("avif", "image/avif"),
    ("ico", "image/x-icon"),
    ("bmp", "image/bmp"),
    ("woff", "font/woff"),
    ("woff2", "font/woff2"),
    ("ttf", "font/ttf"),
    ("otf", "font/otf"),
    ("wasm", "application/wasm"),
    ("pdf", "application/pdf"),
    ("zip", "application/zip"),
    ("gz", "application/gzip"),
    ("mp4", "video/mp4"),
    ("webm", "video/webm"),
    ("mp3", "audio/mpeg"),
    ("ogg", "audio/ogg"),
    ("wav", "audio/wav"),
];

/// `Content-Type` for a static file, by the extension of its name
/// (`CONTENT_TYPES`).
pub fn content_type_for(path: &str) -> &'static [u8] {
    let name = path.rsplit('/').next().unwrap_or(path);
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
    CONTENT_TYPES
        .iter()
        .find(|(e, _)| e.eq_ignore_ascii_case(ext))
        .map_or(&b"application/octet-stream"[..], |(_, t)| t.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_paths() {
        let cases = [
            ("/", Some("/")),
            ("/json?x=1", Some("/json")),
            ("http://example.com/json", Some("/json")),
            ("HTTP://example.com", Some("/")),
            ("ftp://example.com/x", None),
            ("example.com:80", None),
        ];
        for (t, want) in cases {
            assert_eq!(route_path(t), want, "{t}");
        }
    }

    #[test]
    fn sleep_bounds() {
        let cases = [
            ("0", Some(0)),
            ("60000", Some(60000)),
            ("60001", None),
            ("", None),
            ("-1", None),
            ("1e3", None),
            ("000010", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_ms(s), want, "{s}");
        }
    }

    #[test]
    fn work_bounds() {
        for (s, want) in [
            ("0", Some(0)),
            ("1000000", Some(1_000_000)),
            ("1000001", None),
        ] {
            assert_eq!(parse_work_us(s), want, "{s}");
        }
        for s in ["", "-1", "1e3", "12x", "99999999"] {
            assert_eq!(parse_work_us(s), None, "{s}");
        }
    }

    #[test]
    fn static_paths_never_escape() {
        let cases = [
            ("a.txt", Some("a.txt")),
            ("dir/b%20c.html", Some("dir/b c.html")),
            ("../etc/passwd", None),
            ("a/../../x", None),
            ("%2e%2e/x", None),
            ("%2Fetc/passwd", None),
            ("a%00b", None),
            ("%zz", None),
            ("", None),
        ];
        for (p, want) in cases {
            assert_eq!(static_path(p).as_deref(), want, "{p}");
        }
    }

    #[test]
    fn content_types() {
        let cases: &[(&str, &str)] = &[
            ("x/INDEX.HTML", "text/html; charset=utf-8"),
            ("a.htm", "text/html; charset=utf-8"),
            ("a.css", "text/css; charset=utf-8"),
            ("a.js", "text/javascript; charset=utf-8"),
            ("a.mjs", "text/javascript; charset=utf-8"),
            ("a.json", "application/json"),
            ("a.js.map", "application/json"),
            ("a.svg", "image/svg+xml"),
            ("a.png", "image/png"),
            ("a.JPG", "image/jpeg"),
            ("a.jpeg", "image/jpeg"),
            ("a.gif", "image/gif"),
            ("a.webp", "image/webp"),
            ("a.avif", "image/avif"),
            ("favicon.ico", "image/x-icon"),
            ("a.woff", "font/woff"),
            ("a.woff2", "font/woff2"),
            ("a.txt", "text/plain; charset=utf-8"),
            ("a.wasm", "application/wasm"),
            ("a.pdf", "application/pdf"),
            ("a.mp4", "video/mp4"),
            ("a.webm", "video/webm"),
            ("a.xml", "application/xml"),
            ("a.csv", "text/csv; charset=utf-8"),
            ("noext", "application/octet-stream"),
            ("a.unknown", "application/octet-stream"),
            ("a.", "application/octet-stream"),
            // The extension is the file name's, not a directory's.
            ("dir.css/noext", "application/octet-stream"),
            // A variant asked for by name is what it is.
            ("a.css.br", "application/octet-stream"),
        ];
        for (path, want) in cases {
            assert_eq!(content_type_for(path), want.as_bytes(), "{path}");
        }
        // Text types, and only they, say their charset.
        for (ext, t) in CONTENT_TYPES {
            assert_eq!(
                t.starts_with("text/"),
                t.ends_with("; charset=utf-8"),
                "{ext}"
            );
        }
    }
}
