//! `/work/<µs>`: a request that burns CPU in the handler (the CPU-skew scenario of
//! `bench compare`), under every model, over real sockets.

mod common;

use std::time::{Duration, Instant};

use common::{assert_well_formed, Server};
use gvhttpd::config::Variant;

/// Exact replies, real CPU spent (not a sleep), the cap and what lies beyond it.
fn work_burns_cpu_and_is_capped(model: Variant) {
    let s = Server::start(model);
    let r = s.get("/work/0");
    assert_well_formed(&r);
    assert_eq!((r.status, r.text().as_str()), (200, "worked 0us"), "{r:?}");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));

    let ticks = s.cpu_ticks();
    let t0 = Instant::now();
    let r = s.get("/work/200000");
    let wall = t0.elapsed();
    let burned = s.cpu_ticks() - ticks;
    assert_eq!((r.status, r.text().as_str()), (200, "worked 200000us"));
    // The burn lasts 200 ms by the monotonic clock, so the reply cannot come sooner.
    assert!(wall >= Duration::from_millis(200), "{wall:?}");
    // And it is CPU, not a wait: at 100 ticks/s a sleep would add about 0 ticks.
    // (The burn runs by the clock, so on a machine shared with other tests the
    // server may get a fraction of a core: 3 ticks is 15 % of the 200 ms.)
    assert!(
        burned >= 3,
        "only {burned} clock ticks of server CPU for 200 ms of work"
    );

    let head = s.exchange(b"HEAD /work/10 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    // The length of "worked 10us", and no body after the head.
    assert!(head.contains("Content-Length: 11\r\n"), "{head}");
    assert!(head.ends_with("\r\n\r\n"), "{head}");

    for bad in [
        "/work/1000001",
        "/work/99999999",
        "/work/",
        "/work/-1",
        "/work/5ms",
    ] {
        let r = s.get(bad);
        assert_well_formed(&r);
        assert_eq!(r.status, 400, "{bad}: {r:?}");
        assert_eq!(
            r.text(),
            "work takes 0 to 1000000 microseconds\n",
            "{bad}: the cap is named"
        );
    }
    let post = s.exchange(
        b"POST /work/5 HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    let post = String::from_utf8_lossy(&post);
    assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
    assert!(post.contains("Allow: GET, HEAD, OPTIONS\r\n"), "{post}");
}

per_model!(work_burns_cpu_and_is_capped);
