//! The handler's routes, under every model, over real sockets.

mod common;

use std::io::Write;
use std::os::unix::fs::symlink;

use common::{
    assert_well_formed, parse_responses, read_response, read_responses, read_to_close, Server,
    TempDir,
};
use gvhttpd::config::{Model, Variant};

fn fixed_routes(model: Variant) {
    let s = Server::start(model);
    let cases: &[(&str, u16, &str, &str)] = &[
        ("/", 200, "text/plain; charset=utf-8", "Hello, World!"),
        (
            "/plaintext",
            200,
            "text/plain; charset=utf-8",
            "Hello, World!",
        ),
        (
            "/json",
            200,
            "application/json",
            r#"{"message":"Hello, World!"}"#,
        ),
        (
            "/json?x=1",
            200,
            "application/json",
            r#"{"message":"Hello, World!"}"#,
        ),
        ("/sleep/0", 200, "text/plain; charset=utf-8", "slept 0ms"),
        ("/sleep/60001", 400, "text/plain; charset=utf-8", ""),
        ("/sleep/abc", 400, "text/plain; charset=utf-8", ""),
        ("/nope", 404, "text/plain; charset=utf-8", ""),
        ("/static/x", 404, "text/plain; charset=utf-8", ""),
    ];
    for (path, status, ctype, body) in cases {
        let r = s.get(path);
        assert_well_formed(&r);
        assert_eq!(r.status, *status, "{path}: {}", r.text());
        assert_eq!(r.header("content-type"), Some(*ctype), "{path}");
        if !body.is_empty() {
            assert_eq!(r.text(), *body, "{path}");
        }
    }
}

fn wrong_method_is_405_with_allow(model: Variant) {
    let s = Server::start(model);
    for (line, allow) in [
        ("PUT /json", "GET, HEAD, OPTIONS"),
        ("GET /echo", "POST, OPTIONS"),
        ("DELETE /", "GET, HEAD, OPTIONS"),
    ] {
        let out = s.exchange(
            format!("{line} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        let r = &parse_responses(&out, false)[0];
        assert_eq!(r.status, 405, "{line}");
        assert_eq!(r.header("allow"), Some(allow), "{line}");
    }
    let out = s.exchange(b"OPTIONS /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let r = &parse_responses(&out, false)[0];
    assert_eq!((r.status, r.header("allow")), (200, Some("POST, OPTIONS")));
}

fn echo_content_length_and_chunked(model: Variant) {
    let s = Server::start(model);
    let mut c = s.connect();
    c.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-test\r\nContent-Length: 11\r\n\r\nhello world").unwrap();
    let r = read_response(&mut c, false);
    assert_eq!((r.status, r.text().as_str()), (200, "hello world"));
    assert_eq!(r.header("content-type"), Some("application/x-test"));
    c.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n").unwrap();
    let r = read_response(&mut c, false);
    assert_eq!((r.status, r.text().as_str()), (200, "hello world"));
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    // A 1 MiB body (the default limit) in many writes.
    let body = vec![b'z'; 1024 * 1024];
    c.write_all(
        format!(
            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    let writer = {
        let mut c2 = c.try_clone().unwrap();
        let body = body.clone();
        std::thread::spawn(move || {
            for piece in body.chunks(50_000) {
                c2.write_all(piece).unwrap();
            }
        })
    };
    let r = read_response(&mut c, false);
    writer.join().unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body == body, "echoed body differs");
}

fn sleep_uses_the_models_timer(model: Variant) {
    // One worker: a sleep that blocked the worker thread would serialise them all.
    let s = Server::start_in_shell(model, "exec \"$@\"", &[]);
    let t0 = std::time::Instant::now();
    let r = s.get("/sleep/200");
    assert_eq!((r.status, r.text().as_str()), (200, "slept 200ms"));
    // Never early (a lower bound is not a speed claim).
    assert!(t0.elapsed() >= std::time::Duration::from_millis(200));
    // Many sleeps at once on one connection each are answered concurrently.
    let t0 = std::time::Instant::now();
    let conns: Vec<_> = (0..50)
        .map(|_| {
            let mut c = s.connect();
            c.write_all(b"GET /sleep/300 HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
            c
        })
        .collect();
    for mut c in conns {
        assert_eq!(read_response(&mut c, false).text(), "slept 300ms");
    }
    // One after another they would take 50 x 300 ms = 15 s on the one worker;
    // together, 300 ms plus generous slack (this bounds concurrency, not speed).
    let took = t0.elapsed();
    assert!(
        took < std::time::Duration::from_secs(5),
        "50 concurrent /sleep/300 took {took:?}: the sleeps ran one after another"
    );
    // The green model parks the green thread on its own timer.
    if model.model() == Model::Green {
        assert!(s.stat("sleep") >= 51, "{}", s.stats());
    }
}

fn stats_counts_requests(model: Variant) {
    let s = Server::start(model);
    for _ in 0..3 {
        assert_eq!(s.get("/").status, 200);
    }
    // Closes are counted by whichever worker owned the connection, possibly just
    // after this /stats request is served: wait until the count settles.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let mut stats = s.stats();
    while !stats.contains("\"open\":1,") && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(20));
        stats = s.stats();
    }
    assert!(
        stats.starts_with(&format!("{{\"model\":\"{model}\",\"workers\":2,")),
        "{stats}"
    );
    let count = |key: &str| -> u64 {
        let at = stats
            .find(key)
            .unwrap_or_else(|| panic!("{key} missing: {stats}"))
            + key.len();
        stats[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    // 3 requests to / and at least one to /stats, each on its own connection.
    assert!(
        count("\"2xx\":") >= 3 && count("\"requests\":") >= 4,
        "{stats}"
    );
    assert_eq!(count("\"accepted\":"), count("\"requests\":"), "{stats}");
    for key in ["uptime_s", "\"open\":1,", "bytes_in", "bytes_out"] {
        assert!(stats.contains(key), "{key} missing: {stats}");
    }
    if model.uses_io_uring() {
        assert!(
            stats.contains("\"sqes_submitted\":") && stats.contains("\"enter_calls\":"),
            "{stats}"
        );
    }
    if model.model() == Model::Green {
        assert!(
            stats.contains("\"context_switches\":") && stats.contains("\"alive\":"),
            "{stats}"
        );
    }
}

fn static_files_stay_beneath_root(model: Variant) {
    let dir = TempDir::new(&format!("static-{model}"));
    let root = dir.0.join("root");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("index.html"), "<h1>hi</h1>").unwrap();
    std::fs::write(root.join("sub/data.json"), "{}").unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(root.join("big.bin"), &big).unwrap();
    std::fs::write(dir.0.join("secret.txt"), "secret").unwrap();
    symlink(dir.0.join("secret.txt"), root.join("escape.txt")).unwrap();
    symlink("/etc/passwd", root.join("abs.txt")).unwrap();
    symlink("sub/data.json", root.join("inside.json")).unwrap();
    let s = Server::start_with(model, &["--root", root.to_str().unwrap()]);
    let ok: &[(&str, &str, &[u8])] = &[
        (
            "/static/index.html",
            "text/html; charset=utf-8",
            b"<h1>hi</h1>",
        ),
        ("/static/sub/data.json", "application/json", b"{}"),
        ("/static/inside.json", "application/json", b"{}"),
        ("/static/big.bin", "application/octet-stream", &big),
    ];
    for (path, ctype, body) in ok {
        let r = s.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.header("content-type"), Some(*ctype), "{path}");
        assert!(
            r.body == *body,
            "{path}: body differs ({} bytes)",
            r.body.len()
        );
    }
    for path in [
        "/static/escape.txt",
        "/static/abs.txt",
        "/static/sub",
        "/static/",
        "/static/../secret.txt",
        "/static/sub/../../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/missing",
    ] {
        assert_eq!(s.get(path).status, 404, "{path}");
    }
    // HEAD: same headers, no body; the connection stays usable.
    let mut c = s.connect();
    c.write_all(b"HEAD /static/big.bin HTTP/1.1\r\nHost: t\r\n\r\nGET /static/index.html HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    // Both responses may arrive in one read: read them together.
    let both = read_responses(&mut c, &[true, false]);
    assert_eq!(both[0].header("content-length"), Some("3000000"));
    assert_eq!(both[1].text(), "<h1>hi</h1>");
    // Keep-alive works after a large file.
    c.write_all(b"GET /static/big.bin HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    let (out, closed) = read_to_close(&mut c);
    let rs = parse_responses(&out, false);
    assert!(closed && rs.len() == 2 && rs[0].body == big && rs[1].text() == "Hello, World!");
}

per_model!(
    fixed_routes,
    wrong_method_is_405_with_allow,
    echo_content_length_and_chunked,
    sleep_uses_the_models_timer,
    stats_counts_requests,
    static_files_stay_beneath_root,
);
