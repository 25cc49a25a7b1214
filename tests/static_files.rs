//! `http-behaviour.md` cases 44–54, static files under every model over real
//! sockets: validators, conditional requests, byte ranges, Content-Type,
//! precompressed variants, and a file that shrinks while it is sent.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, SystemTime};

use common::{assert_well_formed, parse_responses, read_responses, read_to_close, Server, TempDir};
use gvhttpd::config::Variant;

/// A root holding `files` (name, bytes), and a server on it.
fn serve(model: Variant, tag: &str, files: &[(&str, &[u8])]) -> (TempDir, Server) {
    let dir = TempDir::new(&format!("{tag}-{model}"));
    for (name, bytes) in files {
        let path = dir.0.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    let s = Server::start_with(model, &["--root", dir.path()]);
    (dir, s)
}

/// One request (`fields`: extra field lines, each ending in CRLF) on a new
/// connection; exactly one well-formed response must come back, nothing after it.
fn ask(s: &Server, method: &str, path: &str, fields: &str) -> common::Response {
    let raw = format!("{method} {path} HTTP/1.1\r\nHost: t\r\n{fields}Connection: close\r\n\r\n");
    let out = s.exchange(raw.as_bytes());
    let rs = parse_responses(&out, method == "HEAD");
    let r = rs.into_iter().next().unwrap_or_else(|| {
        panic!(
            "no response to {raw:?}: {:?}",
            String::from_utf8_lossy(&out)
        )
    });
    assert_well_formed(&r);
    assert_eq!(
        r.raw.len(),
        out.len(),
        "bytes after the response to {raw:?}: {:?}",
        String::from_utf8_lossy(&out)
    );
    r
}

fn get(s: &Server, path: &str, fields: &str) -> common::Response {
    ask(s, "GET", path, fields)
}

/// The IMF-fixdate of `path`'s modification time, shifted by `secs`.
fn mtime_date(path: &std::path::Path, secs: i64) -> String {
    let m = std::fs::metadata(path).unwrap().modified().unwrap();
    let shifted = if secs >= 0 {
        m + Duration::from_secs(secs as u64)
    } else {
        m - Duration::from_secs(secs.unsigned_abs())
    };
    httpdate::fmt_http_date(shifted)
}

/// The headers of `r` but `Date` (two responses compared field by field).
fn fields_but_date(r: &common::Response) -> Vec<(String, String)> {
    r.headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("date"))
        .cloned()
        .collect()
}

fn validators_and_conditional_requests(model: Variant) {
    let (dir, s) = serve(
        model,
        "cond",
        &[
            ("page.html", b"<h1>hi</h1>"),
            ("style.css", b"a{}"),
            ("app.mjs", b"export {}"),
            ("logo.svg", b"<svg/>"),
            ("font.woff2", b"wOF2"),
            ("notes.TXT", b"notes"),
            ("blob.xyz", b"?"),
        ],
    );
    // Case 44: validators, Accept-Ranges, Vary and the type by extension.
    let r = get(&s, "/static/page.html", "");
    assert_eq!((r.status, r.text().as_str()), (200, "<h1>hi</h1>"));
    let lm = mtime_date(&dir.0.join("page.html"), 0);
    assert_eq!(r.header("last-modified"), Some(lm.as_str()), "{r:?}");
    let etag = r.header("etag").expect("ETag").to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2,
        "a strong tag: {etag}"
    );
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    assert_eq!(r.header("content-encoding"), None);
    for (name, ctype) in [
        ("page.html", "text/html; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("app.mjs", "text/javascript; charset=utf-8"),
        ("logo.svg", "image/svg+xml"),
        ("font.woff2", "font/woff2"),
        ("notes.TXT", "text/plain; charset=utf-8"),
        ("blob.xyz", "application/octet-stream"),
    ] {
        let r = get(&s, &format!("/static/{name}"), "");
        assert_eq!(r.header("content-type"), Some(ctype), "{name}");
    }
    // Another file has another tag.
    assert_ne!(
        get(&s, "/static/style.css", "").header("etag"),
        Some(&*etag)
    );

    // Case 45: If-None-Match → 304 without a body, validators kept.
    let not_modified = |fields: &str| {
        let r = get(&s, "/static/page.html", fields);
        assert_eq!(r.status, 304, "{fields}: {}", r.text());
        assert!(
            r.body.is_empty() && r.header("content-length").is_none(),
            "{r:?}"
        );
        assert_eq!(r.header("etag"), Some(&*etag), "{fields}");
        assert_eq!(r.header("last-modified"), Some(lm.as_str()), "{fields}");
        assert_eq!(r.header("vary"), Some("Accept-Encoding"), "{fields}");
    };
    let whole = |fields: &str| {
        let r = get(&s, "/static/page.html", fields);
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "<h1>hi</h1>"),
            "{fields}"
        );
    };
    not_modified(&format!("If-None-Match: {etag}\r\n"));
    not_modified(&format!("If-None-Match: W/{etag}\r\n"));
    not_modified(&format!("If-None-Match: \"other\", {etag}\r\n"));
    not_modified("If-None-Match: *\r\n");
    whole("If-None-Match: \"other\"\r\n");
    // If-None-Match wins over If-Modified-Since.
    let future = mtime_date(&dir.0.join("page.html"), 86_400);
    whole(&format!(
        "If-None-Match: \"other\"\r\nIf-Modified-Since: {future}\r\n"
    ));
    // Case 46: If-Modified-Since → 304 when not modified since; a bad date is ignored.
    not_modified(&format!("If-Modified-Since: {lm}\r\n"));
    not_modified(&format!("If-Modified-Since: {future}\r\n"));
    let past = mtime_date(&dir.0.join("page.html"), -86_400);
    whole(&format!("If-Modified-Since: {past}\r\n"));
    whole("If-Modified-Since: not a date\r\n");
    // HEAD answers as GET does.
    let r = ask(
        &s,
        "HEAD",
        "/static/page.html",
        &format!("If-Modified-Since: {lm}\r\n"),
    );
    assert_eq!(r.status, 304);
    // A 304 leaves the connection usable.
    let mut c = s.connect();
    c.write_all(
        format!(
            "GET /static/page.html HTTP/1.1\r\nHost: t\r\nIf-None-Match: {etag}\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let rs = read_responses(&mut c, &[false, false]);
    assert_eq!((rs[0].status, rs[1].status), (304, 200));
    assert_eq!(rs[1].text(), "Hello, World!");

    // Case 54: If-Match / If-Unmodified-Since → 412 when false, no file bytes.
    let failed = |method: &str, fields: &str| {
        let r = ask(&s, method, "/static/page.html", fields);
        assert_eq!(r.status, 412, "{method} {fields}: {}", r.text());
        assert_eq!(r.header("etag"), None, "{fields}");
        assert_eq!(r.header("vary"), Some("Accept-Encoding"), "{fields}");
        if method == "GET" {
            assert_eq!(r.text(), "precondition failed\n");
        }
    };
    failed("GET", "If-Match: \"other\"\r\n");
    failed("GET", &format!("If-Match: W/{etag}\r\n"));
    failed("HEAD", "If-Match: \"other\"\r\n");
    failed("GET", &format!("If-Unmodified-Since: {past}\r\n"));
    whole(&format!("If-Match: {etag}\r\n"));
    whole("If-Match: *\r\n");
    whole(&format!("If-Unmodified-Since: {lm}\r\n"));
    whole("If-Unmodified-Since: not a date\r\n");
    // A precondition comes before If-None-Match.
    not_modified(&format!("If-Match: {etag}\r\nIf-None-Match: {etag}\r\n"));
    failed(
        "GET",
        &format!("If-Match: \"x\"\r\nIf-None-Match: {etag}\r\n"),
    );
    // A 412 leaves the connection usable.
    let mut c = s.connect();
    c.write_all(
        b"GET /static/page.html HTTP/1.1\r\nHost: t\r\nIf-Match: \"x\"\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .unwrap();
    let rs = read_responses(&mut c, &[false, false]);
    assert_eq!((rs[0].status, rs[1].status), (412, 200));
}

fn byte_ranges(model: Variant) {
    let digits: Vec<u8> = (0..1000u32).map(|i| b'0' + (i % 10) as u8).collect();
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let (dir, s) = serve(
        model,
        "ranges",
        &[("d.txt", &digits), ("big.bin", &big), ("empty", b"")],
    );
    let etag = get(&s, "/static/d.txt", "")
        .header("etag")
        .unwrap()
        .to_owned();
    let lm = mtime_date(&dir.0.join("d.txt"), 0);
    let partial = |path: &str, fields: &str, body: &[u8], range: &str| {
        let r = get(&s, path, fields);
        assert_eq!(r.status, 206, "{fields}: {}", r.text());
        assert_eq!(r.header("content-range"), Some(range), "{fields}");
        assert_eq!(
            r.header("content-length"),
            Some(body.len().to_string().as_str())
        );
        assert!(r.body == body, "{fields}: {} bytes", r.body.len());
        assert_eq!(r.header("accept-ranges"), Some("bytes"));
        assert!(r.header("etag").is_some() && r.header("last-modified").is_some());
    };
    // Case 47: one range → 206 with exactly its bytes.
    partial(
        "/static/d.txt",
        "Range: bytes=10-19\r\n",
        &digits[10..20],
        "bytes 10-19/1000",
    );
    partial(
        "/static/d.txt",
        "Range: bytes=990-\r\n",
        &digits[990..],
        "bytes 990-999/1000",
    );
    partial(
        "/static/d.txt",
        "Range: bytes=-5\r\n",
        &digits[995..],
        "bytes 995-999/1000",
    );
    partial(
        "/static/d.txt",
        "Range: bytes=995-5000\r\n",
        &digits[995..],
        "bytes 995-999/1000",
    );
    partial(
        "/static/d.txt",
        "Range: bytes=-5000\r\n",
        &digits,
        "bytes 0-999/1000",
    );
    // Across read chunks, from an offset that is not a chunk's.
    partial(
        "/static/big.bin",
        "Range: bytes=65530-131080\r\n",
        &big[65530..=131080],
        "bytes 65530-131080/200000",
    );

    // Case 48: unsatisfiable → 416 with `bytes */LEN`; the connection stays open.
    for range in ["bytes=1000-", "bytes=5000-6000", "bytes=-0"] {
        let r = get(&s, "/static/d.txt", &format!("Range: {range}\r\n"));
        assert_eq!(r.status, 416, "{range}");
        assert_eq!(r.header("content-range"), Some("bytes */1000"), "{range}");
    }
    let r = get(&s, "/static/empty", "Range: bytes=0-\r\n");
    assert_eq!(
        (r.status, r.header("content-range")),
        (416, Some("bytes */0"))
    );
    let mut c = s.connect();
    c.write_all(b"GET /static/d.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=1000-\r\n\r\nGET /static/d.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=0-1\r\n\r\n").unwrap();
    let rs = read_responses(&mut c, &[false, false]);
    assert_eq!(
        (rs[0].status, rs[1].status, rs[1].text().as_str()),
        (416, 206, "01")
    );

    // Case 49: an invalid Range, another unit, or several ranges → the whole file.
    for range in [
        "bytes=5-2",
        "bytes=abc",
        "bytes=",
        "items=0-1",
        "bytes=0-1,3-4",
        "bytes=0-1, -1",
    ] {
        let r = get(&s, "/static/d.txt", &format!("Range: {range}\r\n"));
        assert_eq!(r.status, 200, "{range}");
        assert!(
            r.body == digits && r.header("content-range").is_none(),
            "{range}"
        );
    }

    // Case 50: If-Range: a current validator → 206, a stale one → 200 whole.
    let range = "Range: bytes=0-2\r\n";
    partial(
        "/static/d.txt",
        &format!("{range}If-Range: {etag}\r\n"),
        b"012",
        "bytes 0-2/1000",
    );
    partial(
        "/static/d.txt",
        &format!("{range}If-Range: {lm}\r\n"),
        b"012",
        "bytes 0-2/1000",
    );
    let past = mtime_date(&dir.0.join("d.txt"), -60);
    for if_range in ["\"stale\"".to_string(), format!("W/{etag}"), past] {
        let r = get(
            &s,
            "/static/d.txt",
            &format!("{range}If-Range: {if_range}\r\n"),
        );
        assert_eq!(r.status, 200, "{if_range}");
        assert!(r.body == digits, "{if_range}");
    }

    // Case 51: HEAD answers as GET would (status and fields), without a body.
    for fields in [
        "Range: bytes=10-19\r\n",
        "Range: bytes=1000-\r\n",
        "Range: bytes=0-1,3-4\r\n",
        "",
    ] {
        let g = get(&s, "/static/d.txt", fields);
        let h = ask(&s, "HEAD", "/static/d.txt", fields);
        assert_eq!(h.status, g.status, "{fields}");
        assert_eq!(fields_but_date(&h), fields_but_date(&g), "{fields}");
        assert!(h.body.is_empty());
    }
}

fn precompressed_variants(model: Variant) {
    let (_dir, s) = serve(
        model,
        "variants",
        &[
            ("app.js", b"plain js"),
            ("app.js.br", b"BR!"),
            ("app.js.gz", b"GZIP"),
            ("style.css", b"a{}"),
            ("style.css.gz", b"gz css"),
            ("page.txt", b"page"),
            ("page.txt.br/x", b"a directory, not a variant"),
            ("only.txt", b"only"),
        ],
    );
    let pick = |path: &str, fields: &str, body: &str, coding: Option<&str>| {
        let r = get(&s, path, fields);
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, body),
            "{path} {fields}"
        );
        assert_eq!(r.header("content-encoding"), coding, "{path} {fields}");
        assert_eq!(r.header("vary"), Some("Accept-Encoding"), "{path} {fields}");
        r
    };
    // Case 52: br before gzip when both are there and allowed.
    let br = pick(
        "/static/app.js",
        "Accept-Encoding: gzip, deflate, br\r\n",
        "BR!",
        Some("br"),
    );
    // The type is the file's, not the variant's.
    assert_eq!(
        br.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    let gz = pick(
        "/static/app.js",
        "Accept-Encoding: gzip\r\n",
        "GZIP",
        Some("gzip"),
    );
    pick(
        "/static/app.js",
        "Accept-Encoding: br;q=0, gzip\r\n",
        "GZIP",
        Some("gzip"),
    );
    let plain = pick(
        "/static/app.js",
        "Accept-Encoding: gzip;q=0\r\n",
        "plain js",
        None,
    );
    pick("/static/app.js", "", "plain js", None);
    pick(
        "/static/app.js",
        "Accept-Encoding: identity\r\n",
        "plain js",
        None,
    );
    // Each representation has its own tag.
    let tags = [&br, &gz, &plain].map(|r| r.header("etag").unwrap().to_owned());
    assert!(
        tags[0] != tags[1] && tags[1] != tags[2] && tags[0] != tags[2],
        "{tags:?}"
    );
    // A missing variant moves on to the next; a directory is no variant.
    pick(
        "/static/style.css",
        "Accept-Encoding: br, gzip\r\n",
        "gz css",
        Some("gzip"),
    );
    pick("/static/page.txt", "Accept-Encoding: br\r\n", "page", None);
    pick(
        "/static/only.txt",
        "Accept-Encoding: br, gzip\r\n",
        "only",
        None,
    );
    // Ranges apply to the representation sent.
    let r = get(
        &s,
        "/static/app.js",
        "Accept-Encoding: br\r\nRange: bytes=1-\r\n",
    );
    assert_eq!((r.status, r.text().as_str()), (206, "R!"));
    assert_eq!(r.header("content-range"), Some("bytes 1-2/3"));
    assert_eq!(r.header("content-encoding"), Some("br"));
    // A variant's tag validates that variant only.
    let inm = format!("If-None-Match: {}\r\n", tags[0]);
    assert_eq!(
        get(
            &s,
            "/static/app.js",
            &format!("Accept-Encoding: br\r\n{inm}")
        )
        .status,
        304
    );
    assert_eq!(get(&s, "/static/app.js", &inm).status, 200);
}

/// How `s` says it sends files (`/stats` `files`).
fn files_mode(s: &Server) -> String {
    let stats = s.stats();
    let at = stats
        .find("\"files\":\"")
        .expect("/stats names how files are sent")
        + 9;
    stats[at..].split('"').next().unwrap().to_string()
}

/// The zero-copy send (`sendfile(2)` in every model, the default) and the
/// read-and-send
/// fallbacks — forced by `GVHTTPD_ZERO_COPY=off`, and for the io_uring models a
/// kernel without `IORING_FEAT_FAST_POLL` (`GVHTTPD_URING_FAULT=no-fast-poll`) —
/// serve the same bytes and fields, whole files and ranges, sizes around the read
/// chunk; `/stats` says which path each server takes.
fn both_send_paths_serve_the_same_bytes(model: Variant) {
    let big: Vec<u8> = (0..(1u32 << 20) + 77)
        .map(|i| (i * 7 + i / 251) as u8)
        .collect();
    let chunk_plus: Vec<u8> = big[..64 * 1024 + 1].to_vec();
    let files: &[(&str, &[u8])] = &[
        ("empty.txt", b""),
        ("one.bin", b"x"),
        ("chunk.bin", &chunk_plus),
        ("big.bin", &big),
    ];
    let (dir, default) = serve(model, "paths", files);
    let zero_copy = Server::start_in_shell(
        model,
        "GVHTTPD_ZERO_COPY=on exec \"$@\"",
        &["--root", dir.path()],
    );
    let read_send = Server::start_in_shell(
        model,
        "GVHTTPD_ZERO_COPY=off exec \"$@\"",
        &["--root", dir.path()],
    );
    let no_fast_poll = Server::start_in_shell(
        model,
        "GVHTTPD_ZERO_COPY=on GVHTTPD_URING_FAULT=no-fast-poll exec \"$@\"",
        &["--root", dir.path()],
    );
    assert_eq!(files_mode(&zero_copy), "sendfile");
    assert_eq!(files_mode(&read_send), "read+send");
    // By default every model sends files by sendfile.
    assert_eq!(files_mode(&default), "sendfile");
    // tokio's sendfile needs no io_uring; the io_uring models' needs FAST_POLL.
    let fallback = if model.uses_io_uring() {
        "read+send"
    } else {
        "sendfile"
    };
    assert_eq!(files_mode(&no_fast_poll), fallback);
    for (name, bytes) in files {
        for range in ["", "Range: bytes=1-\r\n", "Range: bytes=-65537\r\n"] {
            let path = format!("/static/{name}");
            let a = get(&zero_copy, &path, range);
            for other in [&read_send, &no_fast_poll, &default] {
                let b = get(other, &path, range);
                assert_eq!((a.status, &a.body), (b.status, &b.body), "{name} {range:?}");
                assert_eq!(fields_but_date(&a), fields_but_date(&b), "{name} {range:?}");
            }
            if range.is_empty() {
                assert_eq!(&a.body[..], *bytes, "{name}");
            }
        }
    }
}

/// A client that reads slowly through a small receive buffer: the zero-copy send
/// finds the socket buffer full again and again (the models wait for
/// writability: tokio's reactor, an io_uring poll), and still delivers the whole
/// file, then serves the next request on the same connection.
fn a_slow_reader_gets_the_whole_file(model: Variant) {
    let big: Vec<u8> = (0..(4u32 << 20) + 3)
        .map(|i| (i ^ (i >> 9)) as u8)
        .collect();
    let (dir, _default) = serve(model, "slow", &[("big.bin", &big)]);
    let s = Server::start_in_shell(
        model,
        "GVHTTPD_ZERO_COPY=on exec \"$@\"",
        &["--root", dir.path()],
    );
    assert_eq!(files_mode(&s), "sendfile");
    let mut c = s.connect();
    socket2::SockRef::from(&c)
        .set_recv_buffer_size(16 * 1024)
        .unwrap();
    c.write_all(
        b"GET /static/big.bin HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .unwrap();
    let mut buf = [0u8; 4096];
    let mut got = Vec::new();
    let mut reads = 0u32;
    let rs = loop {
        let rs = parse_responses(&got, false);
        if rs.len() == 2 {
            break rs;
        }
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "closed after {} bytes", got.len());
        got.extend_from_slice(&buf[..n]);
        reads += 1;
        if reads.is_multiple_of(64) {
            std::thread::sleep(Duration::from_millis(1)); // let the buffers fill
        }
    };
    assert_eq!(rs[0].status, 200);
    assert!(rs[0].body == big, "the file arrived changed");
    assert_eq!(rs[1].status, 200);
}

/// Case 53, on both send paths: the zero-copy one (`GVHTTPD_ZERO_COPY=on`) and
/// read + send (`GVHTTPD_ZERO_COPY=off`).
fn a_file_truncated_while_sent_closes_the_connection(model: Variant) {
    truncated_while_sent(model, "GVHTTPD_ZERO_COPY=on exec \"$@\"", "sendfile");
    truncated_while_sent(model, "GVHTTPD_ZERO_COPY=off exec \"$@\"", "read+send");
}

fn truncated_while_sent(model: Variant, script: &str, mode: &str) {
    // More than the socket buffers of both ends hold, so the server is still
    // sending the file when it shrinks.
    const LEN: usize = 32 << 20;
    let dir = TempDir::new(&format!("shrink-{model}-{mode}"));
    let path = dir.0.join("big.bin");
    std::fs::write(&path, vec![b'x'; LEN]).unwrap();
    let s = Server::start_in_shell(model, script, &["--root", dir.path()]);
    assert_eq!(files_mode(&s), mode);
    let mut c = s.connect();
    socket2::SockRef::from(&c)
        .set_recv_buffer_size(64 * 1024)
        .unwrap();
    c.write_all(b"GET /static/big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the head");
        got.extend_from_slice(&buf[..n]);
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&got[..head_end]).into_owned();
    assert!(
        head.contains(&format!("Content-Length: {LEN}\r\n")),
        "{head}"
    );
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let t0 = SystemTime::now();
    let (rest, closed) = read_to_close(&mut c);
    assert!(
        closed,
        "the connection was not closed (waited {:?})",
        t0.elapsed()
    );
    let body = got.len() - head_end + rest.len();
    assert!(
        body < LEN,
        "{body} bytes of {LEN} presented as the whole file"
    );
    // The server goes on serving.
    assert_eq!(s.get("/").status, 200);
}

per_model!(
    validators_and_conditional_requests,
    byte_ranges,
    precompressed_variants,
    a_file_truncated_while_sent_closes_the_connection,
    both_send_paths_serve_the_same_bytes,
    a_slow_reader_gets_the_whole_file,
);
