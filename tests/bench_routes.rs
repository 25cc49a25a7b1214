//! The benchmark routes (`/work`, `/sleep`, `/stats`) answer only with
//! `--bench-routes`, which is on by default only on a loopback address: under
//! every model, over real sockets.

mod common;

use std::io::Write;

use common::{read_responses, Server};
use gvhttpd::config::Variant;

/// GET and OPTIONS of each bench route, and what a plain route answers beside them.
const BENCH: [&str; 3] = ["/work/1", "/sleep/1", "/stats"];

fn bench_routes_are_404_when_turned_off(model: Variant) {
    let s = Server::start_with(model, &["--bench-routes=false"]);
    for path in BENCH {
        let r = s.get(path);
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert_eq!(r.text(), "no such route\n", "{path}");
        // Nothing tells the route apart from one that does not exist.
        let out = s.exchange(
            format!("OPTIONS {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        let opt = common::parse_responses(&out, false);
        assert_eq!(opt.first().map(|r| r.status), Some(404), "OPTIONS {path}");
        assert_eq!(opt[0].header("allow"), None, "OPTIONS {path}");
    }
    // The other routes still answer, on the same keep-alive connection after a 404.
    let mut c = s.connect();
    c.write_all(b"GET /stats HTTP/1.1\r\nHost: t\r\n\r\nGET /json HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let rs = read_responses(&mut c, &[false, false]);
    assert_eq!((rs[0].status, rs[1].status), (404, 200));
}

fn bench_routes_answer_on_loopback_by_default(model: Variant) {
    // The harness listens on 127.0.0.1 without --bench-routes.
    let s = Server::start(model);
    let work = s.get("/work/1");
    assert_eq!((work.status, work.text().as_str()), (200, "worked 1us"));
    let sleep = s.get("/sleep/1");
    assert_eq!((sleep.status, sleep.text().as_str()), (200, "slept 1ms"));
    let stats = s.get("/stats");
    assert_eq!(stats.status, 200);
    assert!(
        stats.text().contains(&format!("\"model\":\"{model}\"")),
        "{}",
        stats.text()
    );
    // And --bench-routes says the same explicitly.
    let s = Server::start_with(model, &["--bench-routes"]);
    assert_eq!(s.get("/work/1").status, 200);
}

per_model!(
    bench_routes_are_404_when_turned_off,
    bench_routes_answer_on_loopback_by_default
);
