//! `/work/<µs>`: a request that burns CPU in the handler (the CPU-skew scenario of
//! `bench compare`), under every model, over real sockets.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    assert_well_formed, parse_responses, read_response, read_to_close, shutdown_write, Server,
};
use gvhttpd::config::Variant;

/// A server with one worker and the given `--work-slice`.
fn one_worker(model: Variant, slice: &str, more: &[&str]) -> Server {
    let mut cmd = Command::new(common::BIN);
    cmd.args(["serve", "--model", model.name(), "--addr", "127.0.0.1:0"])
        .args(["--workers", "1", "--work-slice", slice])
        .args(more);
    Server::spawn(cmd, model)
}

/// How long a light `GET /` on its own connection waits while two other
/// connections each run `/work/300000` on the server's only worker. The heavy
/// replies are checked too.
fn light_wait_behind_two_heavy(s: &Server) -> Duration {
    let heavy: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut c = s.connect();
            c.write_all(b"GET /work/300000 HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
            c
        })
        .collect();
    // Let the work begin (an idle server takes it within microseconds).
    std::thread::sleep(Duration::from_millis(50));
    let t0 = Instant::now();
    let r = s.get("/");
    let waited = t0.elapsed();
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, World!"));
    for mut c in heavy {
        let r = read_response(&mut c, false);
        assert_eq!((r.status, r.text().as_str()), (200, "worked 300000us"));
    }
    waited
}

/// With the default slice the worker serves others between slices of work, in
/// every model: the light request is answered while the heavy ones still run.
fn work_slices_let_a_light_request_through(model: Variant) {
    let s = one_worker(model, "500us", &[]);
    let waited = light_wait_behind_two_heavy(&s);
    assert!(
        waited < Duration::from_millis(150),
        "{model}: light request waited {waited:?} behind two /work/300000 with 500us slices"
    );
    // 600 ms of work in slices of at most 500 us.
    let slices = s.stat("work_slices");
    assert!(slices >= 100, "{model}: only {slices} work slices");
}

/// The control: with `--work-slice 0` the work runs in one slice and freezes the
/// worker, so the light request waits behind it (proving the slices above do it).
fn work_slice_zero_freezes_the_worker(model: Variant) {
    let s = one_worker(model, "0", &[]);
    let waited = light_wait_behind_two_heavy(&s);
    assert!(
        waited >= Duration::from_millis(200),
        "{model}: light request took only {waited:?} behind unsliced /work/300000"
    );
    assert_eq!(s.stat("work_slices"), 2, "{model}: one slice per request");
}

/// A client that resets its connection mid-work is noticed at a slice boundary:
/// the connection closes long before the work would have ended.
fn reset_mid_work_is_noticed(model: Variant) {
    let s = one_worker(model, "500us", &[]);
    let c = s.connect();
    (&c).write_all(b"GET /work/1000000 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let t0 = Instant::now();
    socket2::SockRef::from(&c)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(c); // a RST
             // Only the /stats connection itself is left once the reset is noticed.
    while s.stats_open() > 1 {
        assert!(
            t0.elapsed() < Duration::from_millis(600),
            "{model}: reset connection still open after {:?}",
            t0.elapsed()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Shutdown cuts a long `/work` at the grace deadline, between two slices.
fn shutdown_grace_cuts_sliced_work(model: Variant) {
    let mut s = one_worker(model, "500us", &["--shutdown-grace", "300ms"]);
    let mut c = s.connect();
    c.write_all(b"GET /work/1000000 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let t0 = Instant::now();
    s.signal(15);
    assert_eq!(s.wait_exit(Duration::from_secs(3)), Some(0));
    let exited = t0.elapsed();
    assert!(
        exited < Duration::from_millis(800),
        "{model}: exit {exited:?} after the signal: the 1 s of work was not cut at the 300 ms grace"
    );
    let (got, _) = read_to_close(&mut c);
    assert!(got.is_empty(), "{model}: no response for cut work: {got:?}");
}

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

/// Pipelined heavy requests followed by a half-close: the responses are still
/// owed (case 36), but the CPU the connection may still spend on them is bounded
/// (`WORK_AFTER_EOF`, 1 s): of ten `/work/300000` (3 s of CPU) about three are
/// answered, then the connection is closed.
fn work_after_a_half_close_is_bounded(model: Variant) {
    let s = one_worker(model, "500us", &[]);
    let mut c = s.connect();
    let one = b"GET /work/300000 HTTP/1.1\r\nHost: t\r\n\r\n";
    c.write_all(&one.repeat(10)).unwrap();
    shutdown_write(&c);
    let (out, closed) = read_to_close(&mut c);
    assert!(closed, "{model}: the connection was closed");
    let answered = parse_responses(&out, false)
        .iter()
        .filter(|r| r.status == 200 && r.text() == "worked 300000us")
        .count();
    assert!(
        (1..10).contains(&answered),
        "{model}: {answered} of 10 heavy requests answered after the half-close"
    );
}

per_model!(
    work_burns_cpu_and_is_capped,
    work_slices_let_a_light_request_through,
    work_slice_zero_freezes_the_worker,
    reset_mid_work_is_noticed,
    shutdown_grace_cuts_sliced_work,
    work_after_a_half_close_is_bounded,
);

/// `--tokio-runtime multi-thread`: one runtime of `--workers` threads over one
/// listener, so a connection never waits behind a busy thread while another is
/// idle. Even with unsliced work (`--work-slice 0`) pinning one thread, every
/// light request is answered by the other (per-worker listeners would put about
/// half of them behind the work).
#[test]
fn tokio_multi_thread_serves_light_requests_beside_unsliced_work() {
    let mut cmd = Command::new(common::BIN);
    cmd.args(["serve", "--model", "tokio+multi", "--addr", "127.0.0.1:0"])
        .args(["--workers", "2", "--work-slice", "0"]);
    let s = Server::spawn(cmd, Variant::TokioMulti);
    let mut heavy = s.connect();
    heavy
        .write_all(b"GET /work/400000 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    for i in 0..6 {
        let t0 = Instant::now();
        assert_eq!(s.get("/").status, 200);
        let waited = t0.elapsed();
        assert!(
            waited < Duration::from_millis(150),
            "light request {i} waited {waited:?}: stuck behind the busy thread"
        );
    }
    let r = read_response(&mut heavy, false);
    assert_eq!(r.text(), "worked 400000us");
    // (Counted once it has served: readiness is announced before the runtime starts.)
    let threads = std::fs::read_dir(format!("/proc/{}/task", s.pid()))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        // "gvhttpd-tokio-multi", cut to the 15 bytes of a thread name.
        .filter(|name| name.trim_end() == "gvhttpd-tokio-m")
        .count();
    assert_eq!(threads, 2, "one multi-thread runtime, a thread per worker");
}
